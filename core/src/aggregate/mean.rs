//! `mean`: r ↦ (1/G) Σ_g R[g,r], every group counted equally (the seed paper's `average`
//! baseline); with `weighted: true`, r ↦ Σ_g pop_g R[g,r], each group counted by its public
//! population share, the utilitarian rule that a majority dominates. Stateless.
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::entry::{builtin, RuleEntry};
use super::{weighted_sum, AggregateError, Aggregated, Aggregator, RewardMatrix};
use crate::registry::ParamError;
use chorus_plugin::kit::{group_weights, population_shares};

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Knobs {
    /// Weight groups by their public population shares instead of equally; default false.
    #[serde(default)]
    weighted: bool,
}

pub(super) fn rule() -> RuleEntry {
    builtin::<Knobs>(
        "mean",
        "the mean of the groups' rewards, equal or population-weighted (utilitarian)",
        |k, populations| {
            let populations = k
                .weighted
                .then(|| population_weights(populations))
                .transpose()?;
            Ok(Box::new(Mean::new(populations)))
        },
    )
}

/// Population shares as mean weights, or the error that names `weighted`.
fn population_weights(populations: &[f64]) -> Result<Vec<f64>, ParamError> {
    population_shares(populations).ok_or_else(|| {
        ParamError::invalid(
            "weighted",
            format!(
                "`weighted: true` needs the groups' population shares, but they are {populations:?}"
            ),
            "give every group a finite, non-negative population share, or remove `weighted`",
        )
    })
}

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
    fn aggregate(
        &self,
        rewards: &RewardMatrix<'_>,
        _round: u32,
        _state: &mut Value,
    ) -> Result<Aggregated, AggregateError> {
        let weights = group_weights(self.populations.as_deref(), rewards.groups())?;
        weighted_sum(rewards, weights)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{close, two_groups};
    use super::*;

    fn weighted() -> serde_json::Map<String, Value> {
        serde_json::json!({"weighted": true})
            .as_object()
            .unwrap()
            .clone()
    }

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
        let agg = rule().build(&weighted(), &[3.0, 1.0]).unwrap();
        let out = agg.aggregate(&two_groups(), 1, &mut Value::Null).unwrap();
        assert!(close(out.rewards[0], 0.8, 1e-15) && close(out.rewards[1], 0.7, 1e-15));
        assert_eq!(out.weights, [0.75, 0.25]);
        // Shares for three groups do not fit a two-group matrix.
        let agg = rule().build(&weighted(), &[0.2, 0.3, 0.5]).unwrap();
        assert_eq!(
            agg.aggregate(&two_groups(), 1, &mut Value::Null),
            Err(AggregateError::Groups {
                expected: 3,
                groups: 2
            })
        );
    }

    #[test]
    fn weighted_mean_needs_usable_populations() {
        for bad in [&[][..], &[0.5, -0.1], &[0.0, 0.0], &[f64::NAN, 1.0]] {
            let err = rule().build(&weighted(), bad).unwrap_err();
            assert!(
                matches!(&err[0], ParamError::Invalid { field, .. } if field == "weighted"),
                "{bad:?}: {err:?}"
            );
        }
        assert!(rule().build(&weighted(), &[0.75, 0.25]).is_ok());
        // Unweighted, the populations are not read at all.
        assert!(rule().build(&Default::default(), &[]).is_ok());
    }
}
