/// Who a group is; public knowledge (a group's name and size are not private preference data).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GroupInfo {
    pub name: String,
    /// Share of the population, summing to 1 over groups.
    pub population: f64,
    pub minority: bool,
}

/// A question bank with every group's true answer distribution.
///
/// This is the experimenter's full view. The `split` stage cuts it into the public question
/// bank, per-group private shards and the evaluation oracle; no other stage sees a `Survey`.
#[derive(Debug, Clone)]
pub struct Survey {
    pub options: usize,
    /// Per question, a public feature vector (the policy's input).
    pub features: Vec<Vec<f32>>,
    pub groups: Vec<GroupInfo>,
    /// `truth[g]` holds group g's distributions, question-major: `[q * options + k]`.
    truth: Vec<Vec<f64>>,
}

impl Survey {
    pub fn new(
        options: usize,
        features: Vec<Vec<f32>>,
        groups: Vec<GroupInfo>,
        truth: Vec<Vec<f64>>,
    ) -> Self {
        debug_assert!(truth.iter().all(|t| t.len() == features.len() * options));
        Survey {
            options,
            features,
            groups,
            truth,
        }
    }

    pub fn questions(&self) -> usize {
        self.features.len()
    }

    /// Group g's answer distribution on question q.
    pub fn distribution(&self, g: usize, q: usize) -> &[f64] {
        &self.truth[g][q * self.options..(q + 1) * self.options]
    }
}
