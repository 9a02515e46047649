//! `max`: r ↦ max_g R[g,r], the best-served group's reward (the seed paper's `max` baseline, an
//! upper reference for alignment that ignores fairness). Stateless.
//!
//! Logged weights: the share of rollouts on which each group is the best (ties split evenly).
use serde_json::Value;

use super::entry::{builtin, RuleEntry};
use super::{
    per_rollout, tie_shares, AggregateError, Aggregated, Aggregator, NoKnobs, RewardMatrix,
};

#[derive(Debug)]
pub(super) struct Max;

pub(super) fn rule() -> RuleEntry {
    builtin::<NoKnobs>("max", "the best-served group's reward", |_, _| {
        Ok(Box::new(Max))
    })
}

impl Aggregator for Max {
    fn aggregate(
        &self,
        rewards: &RewardMatrix<'_>,
        _round: u32,
        _state: &mut Value,
    ) -> Result<Aggregated, AggregateError> {
        per_rollout(rewards, |column| {
            let best = column.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            tie_shares(column, best);
            best
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::two_groups;
    use super::super::RewardMatrix;
    use super::*;

    #[test]
    fn hand_matrix() {
        // [[1.0, 0.8], [0.2, 0.4]]: max per column = [1.0, 0.8], both group 0's.
        let out = Max.aggregate(&two_groups(), 1, &mut Value::Null).unwrap();
        assert_eq!(out.rewards, [1.0, 0.8]);
        assert_eq!(out.weights, [1.0, 0.0]);
        // Three groups tied on the only rollout share it: weights 1/3 each.
        let m = RewardMatrix::new(3, 1, vec![0.5, 0.5, 0.5]).unwrap();
        let out = Max.aggregate(&m, 1, &mut Value::Null).unwrap();
        assert_eq!(out.rewards, [0.5]);
        assert_eq!(out.weights, [1.0 / 3.0; 3]);
    }
}
