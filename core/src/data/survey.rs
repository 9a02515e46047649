/// Who a group is; public knowledge (a group's name and size are not private preference data).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GroupInfo {
    pub name: String,
    /// Share of the population, summing to 1 over groups.
    pub population: f64,
    pub minority: bool,
    /// Evaluated but never scoring or training: a population no group represents.
    pub eval_only: bool,
}

/// What a language model reads of a question: its wording and its options' wording.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QuestionText {
    pub id: String,
    pub text: String,
    pub options: Vec<String>,
}

/// Public knowledge about the questions, index = question.
#[derive(Debug, Clone, Default)]
pub struct Questions {
    /// How many answer options each question has (at least 2; may differ between questions).
    pub options: Vec<usize>,
    /// A feature vector per question (the MLP policy's input); empty vectors when the data
    /// has none (real surveys).
    pub features: Vec<Vec<f32>>,
    /// The wording, where the data has it (real surveys; the simulator has none).
    pub text: Vec<Option<QuestionText>>,
}

impl Questions {
    /// Questions known only by features, each with `options` options (no wording).
    pub fn with_features(options: usize, features: Vec<Vec<f32>>) -> Questions {
        Questions {
            options: vec![options; features.len()],
            text: vec![None; features.len()],
            features,
        }
    }

    pub fn len(&self) -> usize {
        self.options.len()
    }

    pub fn is_empty(&self) -> bool {
        self.options.is_empty()
    }

    /// The one option count of every question, if they share one.
    pub fn uniform_options(&self) -> Option<usize> {
        let first = *self.options.first()?;
        self.options.iter().all(|&k| k == first).then_some(first)
    }

    /// Every question's wording, if the data has it for all of them (real surveys).
    pub fn wording(&self) -> Option<Vec<&QuestionText>> {
        self.text.iter().map(Option::as_ref).collect()
    }

    /// Whether every question has a non-empty feature vector, all of one length.
    pub fn has_features(&self) -> bool {
        let width = self.features.first().map_or(0, Vec::len);
        width > 0 && self.features.iter().all(|f| f.len() == width)
    }
}

/// A question bank with every group's true answer distribution.
///
/// This is the experimenter's full view. The `split` stage cuts it into the public question
/// bank, per-group private shards and the evaluation oracle; no other stage sees a `Survey`.
#[derive(Debug, Clone)]
pub struct Survey {
    pub questions: Questions,
    pub groups: Vec<GroupInfo>,
    /// `truth[g][q]`: group g's distribution over question q's options.
    truth: Vec<Vec<Vec<f64>>>,
}

impl Survey {
    pub fn new(questions: Questions, groups: Vec<GroupInfo>, truth: Vec<Vec<Vec<f64>>>) -> Self {
        debug_assert!(truth.iter().all(|t| t.len() == questions.len()
            && t.iter().zip(&questions.options).all(|(p, &k)| p.len() == k)));
        Survey {
            questions,
            groups,
            truth,
        }
    }

    pub fn len(&self) -> usize {
        self.questions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.questions.is_empty()
    }

    /// Group g's answer distribution on question q.
    pub fn distribution(&self, g: usize, q: usize) -> &[f64] {
        &self.truth[g][q]
    }
}
