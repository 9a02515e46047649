use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Fairness of per-group scores (alignments, all ≥ 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Fairness {
    /// Mean score over groups.
    Mean,
    /// The worst group's score (Rawlsian view).
    WorstGroup,
    /// Best minus worst group.
    Gap,
    /// Jain's index (Σa)² / (G·Σa²): 1 when all groups are equal, 1/G when one group has all.
    Jain,
    /// Gini coefficient: mean absolute difference over twice the mean; 0 = equal.
    Gini,
    /// Coefficient of variation: population standard deviation over the mean; 0 = equal.
    Cv,
}

impl Fairness {
    pub const ALL: [Fairness; 6] = [
        Fairness::Mean,
        Fairness::WorstGroup,
        Fairness::Gap,
        Fairness::Jain,
        Fairness::Gini,
        Fairness::Cv,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fairness::Mean => "mean",
            Fairness::WorstGroup => "worst_group",
            Fairness::Gap => "gap",
            Fairness::Jain => "jain",
            Fairness::Gini => "gini",
            Fairness::Cv => "cv",
        }
    }

    /// The metric of `scores`; metrics of equal scores are the "all equal" value even when
    /// every score is 0, where the ratio forms would divide by zero.
    pub fn of(self, scores: &[f64]) -> f64 {
        let n = scores.len() as f64;
        let sum: f64 = scores.iter().sum();
        let mean = sum / n;
        let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let min = scores.iter().cloned().fold(f64::INFINITY, f64::min);
        let all_equal = max == min;
        match self {
            Fairness::Mean => mean,
            Fairness::WorstGroup => min,
            Fairness::Gap => max - min,
            Fairness::Jain if all_equal => 1.0,
            Fairness::Jain => sum * sum / (n * scores.iter().map(|a| a * a).sum::<f64>()),
            Fairness::Gini | Fairness::Cv if all_equal => 0.0,
            Fairness::Gini => {
                let diffs: f64 = scores
                    .iter()
                    .flat_map(|a| scores.iter().map(move |b| (a - b).abs()))
                    .sum();
                diffs / (2.0 * n * n * mean)
            }
            Fairness::Cv => {
                let var = scores.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / n;
                var.sqrt() / mean
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Fairness::*;

    #[test]
    fn equal_scores_are_perfectly_fair() {
        let s = [0.8; 4];
        assert_eq!(Jain.of(&s), 1.0);
        assert_eq!(Gini.of(&s), 0.0);
        assert_eq!(Cv.of(&s), 0.0);
        assert_eq!(Gap.of(&s), 0.0);
        assert_eq!(Jain.of(&[0.0, 0.0]), 1.0);
    }

    #[test]
    fn known_values() {
        let s = [1.0, 0.0, 0.0, 0.0];
        assert!((Jain.of(&s) - 0.25).abs() < 1e-12);
        assert!((Gini.of(&s) - 0.75).abs() < 1e-12);
        let s = [0.9, 0.6, 0.6];
        assert!((Mean.of(&s) - 0.7).abs() < 1e-12);
        assert_eq!(WorstGroup.of(&s), 0.6);
        assert!((Gap.of(&s) - 0.3).abs() < 1e-12);
        // (2.1)² / (3 · 1.53) = 0.960784…
        assert!((Jain.of(&s) - 4.41 / 4.59).abs() < 1e-12);
        // σ = √(0.02) = 0.141421…, / 0.7
        assert!((Cv.of(&s) - 0.02f64.sqrt() / 0.7).abs() < 1e-12);
    }
}
