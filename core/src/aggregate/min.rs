//! `min`: r ↦ min_g R[g,r], the worst-served group's reward (the Rawlsian rule; the seed
//! paper's `min` baseline). Stateless.
//!
//! Logged weights: the share of rollouts on which each group is the worst (ties split evenly),
//! since only that group's reward moves the aggregate.
use serde_json::Value;

use super::entry::{builtin, RuleEntry};
use super::{
    per_rollout, tie_shares, AggregateError, Aggregated, Aggregator, NoKnobs, RewardMatrix,
};

#[derive(Debug)]
pub(super) struct Min;

pub(super) fn rule() -> RuleEntry {
    builtin::<NoKnobs>(
        "min",
        "the worst-served group's reward (Rawlsian)",
        |_, _| Ok(Box::new(Min)),
    )
}

impl Aggregator for Min {
    fn aggregate(
        &self,
        rewards: &RewardMatrix<'_>,
        _round: u32,
        _state: &mut Value,
    ) -> Result<Aggregated, AggregateError> {
        per_rollout(rewards, |column| {
            let worst = column.iter().copied().fold(f64::INFINITY, f64::min);
            tie_shares(column, worst);
            worst
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
        // [[1.0, 0.8], [0.2, 0.4]]: min per column = [0.2, 0.4]; group 1 is worst on both.
        let out = Min.aggregate(&two_groups(), 1, &mut Value::Null).unwrap();
        assert_eq!(out.rewards, [0.2, 0.4]);
        assert_eq!(out.weights, [0.0, 1.0]);
        // [[0.1, 0.9, 0.5, 0.7], [0.6, 0.3, 0.5, 0.2]]: min = [0.1, 0.3, 0.5, 0.2]; group 0 is
        // worst on rollout 0, group 1 on 1 and 3, they tie on 2: weights [1.5, 2.5] / 4.
        let m = RewardMatrix::new(2, 4, vec![0.1, 0.9, 0.5, 0.7, 0.6, 0.3, 0.5, 0.2]).unwrap();
        let out = Min.aggregate(&m, 1, &mut Value::Null).unwrap();
        assert_eq!(out.rewards, [0.1, 0.3, 0.5, 0.2]);
        assert_eq!(out.weights, [0.375, 0.625]);
    }
}
