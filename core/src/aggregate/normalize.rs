//! Optional per-group normalisation of the reward matrix before any rule sees it
//! (`aggregate.normalize`): the "normalise, then combine" practice for rewards on different
//! scales, e.g. groups whose reward models are calibrated differently.
//!
//! Each row (one group's rewards this round) is normalised on its own, so what a rule then
//! compares across groups is each group's *relative* preference among this round's rollouts,
//! not its absolute level. That changes what some rules mean: `min` no longer finds the
//! worst-served group but the group that likes a rollout least relative to its other rollouts,
//! and the stateful rules (`adaptive_alpha`, `group_dro`) track normalised means, which are 0
//! (`zscore`) or ½ (`rank`) for every group, so their weights stop moving. Use it with
//! per-rollout rules (`mean`, `tilted`, `power_mean`, a plugin such as `cvar`); keep `none`
//! (the default) for rules that track alignment across rounds.
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How to normalise each group's rewards within a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    /// Rewards as the groups' reward models gave them.
    #[default]
    None,
    /// (r − mean) / standard deviation (population); a constant row becomes 0.
    Zscore,
    /// The rollout's rank among this round's rollouts, (rank)/(R − 1) in [0, 1], ties sharing
    /// their average rank; a constant row (or one rollout) becomes ½.
    Rank,
    /// (r − min) / (max − min) in [0, 1]; a constant row becomes ½.
    Minmax,
}

impl Normalize {
    /// Normalises one group's rewards in place.
    pub fn apply(self, row: &mut [f64]) {
        let n = row.len() as f64;
        match self {
            Normalize::None => {}
            Normalize::Zscore => {
                let mean = row.iter().sum::<f64>() / n;
                let sd = (row.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt();
                for r in row.iter_mut() {
                    *r = if sd > 0.0 { (*r - mean) / sd } else { 0.0 };
                }
            }
            Normalize::Minmax => {
                let lo = row.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                for r in row.iter_mut() {
                    *r = if hi > lo { (*r - lo) / (hi - lo) } else { 0.5 };
                }
            }
            Normalize::Rank => {
                let ranks = average_ranks(row);
                let top = n - 1.0;
                for (r, rank) in row.iter_mut().zip(ranks) {
                    *r = if top > 0.0 { rank / top } else { 0.5 };
                }
            }
        }
    }
}

/// 0-based ranks, ties sharing the mean of the ranks they span.
fn average_ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let rank = (start + end - 1) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalized(how: Normalize, row: &[f64]) -> Vec<f64> {
        let mut row = row.to_vec();
        how.apply(&mut row);
        row
    }

    #[test]
    fn hand_rows() {
        // mean 2, population sd √(2/3) = 0.816497: (1 − 2)/0.816497 = −1.224745
        let z = normalized(Normalize::Zscore, &[1.0, 2.0, 3.0]);
        assert!((z[0] + 1.224_744_871).abs() < 1e-9 && z[1] == 0.0, "{z:?}");
        assert_eq!(
            normalized(Normalize::Minmax, &[1.0, 2.0, 5.0]),
            [0.0, 0.25, 1.0]
        );
        // Ranks of [0.3, 0.1, 0.3, 0.9]: 0.1 → 0, the tied 0.3s share (1 + 2)/2, 0.9 → 3.
        assert_eq!(
            normalized(Normalize::Rank, &[0.3, 0.1, 0.3, 0.9]),
            [0.5, 0.0, 0.5, 1.0]
        );
        assert_eq!(normalized(Normalize::None, &[7.0, -1.0]), [7.0, -1.0]);
    }

    #[test]
    fn constant_rows_and_single_rollouts() {
        assert_eq!(normalized(Normalize::Zscore, &[4.0, 4.0]), [0.0, 0.0]);
        assert_eq!(normalized(Normalize::Minmax, &[4.0, 4.0]), [0.5, 0.5]);
        assert_eq!(normalized(Normalize::Rank, &[4.0, 4.0]), [0.5, 0.5]);
        assert_eq!(normalized(Normalize::Rank, &[4.0]), [0.5]);
    }
}
