//! `mean`: r ↦ (1/G) Σ_g R[g,r], every group counted equally (the seed paper's `average`
//! baseline); with `weighted: true`, r ↦ Σ_g pop_g R[g,r], each group counted by its public
//! population share, the utilitarian rule that a majority dominates. Stateless.
use serde_json::Value;

use super::{weighted_sum, AggregateError, Aggregated, Aggregator, RewardMatrix};

#[derive(Debug)]
pub(super) struct Mean {
    /// Normalised population shares; `None` for the equal-weight mean.
    populations: Option<Vec<f64>>,
}

impl Mean {
    pub(super) fn new(populations: Option<Vec<f64>>) -> Self {
        Mean { populations }
    }
}

impl Aggregator for Mean {
    fn name(&self) -> &str {
        "mean"
    }

    fn aggregate(
        &self,
        rewards: &RewardMatrix,
        _round: u32,
        _state: &mut Value,
    ) -> Result<Aggregated, AggregateError> {
        let groups = rewards.groups();
        let weights = match &self.populations {
            None => vec![1.0 / groups as f64; groups],
            Some(p) if p.len() == groups => p.clone(),
            Some(p) => {
                return Err(AggregateError::Populations {
                    shares: p.len(),
                    groups,
                })
            }
        };
        weighted_sum("mean", rewards, weights)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{close, two_groups};
    use super::super::AggregateParams;
    use super::*;

    #[test]
    fn hand_matrix() {
        // [[1.0, 0.8], [0.2, 0.4]]: (1.0 + 0.2)/2 = 0.6, (0.8 + 0.4)/2 = 0.6.
        let out = Mean::new(None)
            .aggregate(&two_groups(), 1, &mut Value::Null)
            .unwrap();
        assert!(close(out.rewards[0], 0.6, 1e-15) && close(out.rewards[1], 0.6, 1e-15));
        assert_eq!(out.weights, [0.5, 0.5]);
    }

    #[test]
    fn population_weighted() {
        // Shares 3:1 → [0.75, 0.25]: 0.75·1.0 + 0.25·0.2 = 0.8, 0.75·0.8 + 0.25·0.4 = 0.7.
        let params = AggregateParams {
            weighted: Some(true),
            ..AggregateParams::new("mean")
        };
        let agg = params.build(&[3.0, 1.0]).unwrap();
        let out = agg.aggregate(&two_groups(), 1, &mut Value::Null).unwrap();
        assert!(close(out.rewards[0], 0.8, 1e-15) && close(out.rewards[1], 0.7, 1e-15));
        assert_eq!(out.weights, [0.75, 0.25]);
        // Shares for three groups do not fit a two-group matrix.
        let agg = params.build(&[0.2, 0.3, 0.5]).unwrap();
        assert_eq!(
            agg.aggregate(&two_groups(), 1, &mut Value::Null),
            Err(AggregateError::Populations {
                shares: 3,
                groups: 2
            })
        );
    }
}
