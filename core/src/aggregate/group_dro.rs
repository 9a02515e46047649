//! `group_dro`: multiplicative weights on the groups, after the online Group DRO algorithm
//! (Sagawa, Koh, Hashimoto & Liang, "Distributionally Robust Neural Networks for Group Shifts",
//! ICLR 2020): the server plays an adversary that moves weight to the groups served worst.
//!
//! Per round, with a_g the mean of group g's rewards this round (the only per-group signal the
//! server may see) and 1 − a_g its loss: w_g ← w_g·exp(η·(1 − a_g)), renormalised, starting
//! from uniform w; then r ↦ Σ_g w_g R[g,r] with the updated weights, as Group DRO updates the
//! weights before the step. η defaults to 1.0, this project's choice for rewards in [0, 1]
//! (Sagawa et al. step per mini-batch with η = 0.01; here a step is a whole round). The update
//! runs in log space, so weights shrink towards 0 over many rounds but never overflow.
//! State: `{"w": [w_g …]}`.
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::entry::{builtin, RuleEntry};
use crate::registry::ParamError;

use super::{
    check_finite, check_state, log_softmax, read_state, weighted_sum, AggregateError, Aggregated,
    Aggregator, RewardMatrix,
};

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Knobs {
    /// Step size η of the multiplicative weights, w_g ← w_g·exp(η·(1 − a_g)); > 0, default
    /// 1.0.
    #[serde(default = "default_eta")]
    eta: f64,
}

fn default_eta() -> f64 {
    1.0
}

pub(super) fn rule() -> RuleEntry {
    builtin::<Knobs>(
        "group_dro",
        "Group DRO: multiplicative weights that move to the groups served worst",
        |k, _| {
            let eta = k.eta;
            if !(eta.is_finite() && eta > 0.0) {
                return Err(ParamError::range("eta", eta, "be > 0", 1.0));
            }
            Ok(Box::new(GroupDro { eta }))
        },
    )
}

#[derive(Debug)]
pub(super) struct GroupDro {
    /// η > 0.
    pub(super) eta: f64,
}

/// The state this rule writes and reads back.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Weights {
    w: Vec<f64>,
}

impl Aggregator for GroupDro {
    fn aggregate(
        &self,
        rewards: &RewardMatrix<'_>,
        _round: u32,
        state: &mut Value,
    ) -> Result<Aggregated, AggregateError> {
        let groups = rewards.groups();
        let w = match read_state::<Weights>(state)? {
            None => vec![1.0 / groups as f64; groups],
            Some(Weights { w }) => {
                check_state("w", &w, groups)?;
                if w.iter().any(|w| *w < 0.0) || w.iter().sum::<f64>() <= 0.0 {
                    return Err(AggregateError::State(
                        "`w` must be non-negative and not all 0".to_owned(),
                    ));
                }
                w
            }
        };
        let mut log_w: Vec<f64> = w
            .iter()
            .zip(rewards.group_means())
            .map(|(w, a)| w.ln() + self.eta * (1.0 - a))
            .collect();
        log_softmax(&mut log_w);
        let w: Vec<f64> = log_w.iter().map(|l| l.exp()).collect();
        check_finite("weight", &w)?;
        let out = weighted_sum(rewards, w)?;
        *state = serde_json::json!({ "w": out.weights });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{close, two_groups};
    use super::super::RewardMatrix;
    use super::*;

    #[test]
    fn hand_matrix_and_weights_move_to_the_worst_group() {
        let agg = GroupDro { eta: 1.0 };
        let mut state = Value::Null;
        // a = [0.9, 0.3]: w ∝ [½e^0.1, ½e^0.7], w1 = e^0.6/(1 + e^0.6) = 0.6456563.
        let out = agg.aggregate(&two_groups(), 1, &mut state).unwrap();
        assert!(close(out.weights[1], 0.6456563, 1e-7), "{:?}", out.weights);
        // 0.3543437·1.0 + 0.6456563·0.2 = 0.4834750, 0.3543437·0.8 + 0.6456563·0.4 = 0.5417375
        assert!(close(out.rewards[0], 0.4834750, 1e-7), "{:?}", out.rewards);
        assert!(close(out.rewards[1], 0.5417375, 1e-7), "{:?}", out.rewards);
        // Round 2, same rewards: w ∝ [e^0.2, e^1.4], w1 = 1/(1 + e^−1.2) = 0.7685248.
        let out = agg.aggregate(&two_groups(), 2, &mut state).unwrap();
        assert!(close(out.weights[1], 0.7685248, 1e-7), "{:?}", out.weights);
        // Many rounds on: the worst group takes all the weight (group 0's bottoms out at the
        // smallest subnormal), and everything stays finite.
        for round in 3..=2000 {
            agg.aggregate(&two_groups(), round, &mut state).unwrap();
        }
        let out = agg.aggregate(&two_groups(), 2001, &mut state).unwrap();
        assert!(
            out.weights[0] < 1e-300 && out.weights[1] == 1.0,
            "{:?}",
            out.weights
        );
        assert!(close(out.rewards[0], 0.2, 1e-15) && close(out.rewards[1], 0.4, 1e-15));
    }

    #[test]
    fn state_round_trips_and_foreign_state_is_an_error() {
        let agg = GroupDro { eta: 0.7 };
        let m = RewardMatrix::new(3, 2, vec![0.91, 0.13, 0.37, 0.59, 0.6, 0.71]).unwrap();
        let mut state = Value::Null;
        agg.aggregate(&m, 1, &mut state).unwrap();
        let mut reread: Value =
            serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
        assert_eq!(reread, state);
        let a = agg.aggregate(&m, 2, &mut state).unwrap();
        let b = agg.aggregate(&m, 2, &mut reread).unwrap();
        assert_eq!(a, b);
        for bad in [
            serde_json::json!({ "h": [0.5, 0.5, 0.5] }),
            serde_json::json!({ "w": [0.5, 0.5] }),
            serde_json::json!({ "w": [0.5, -0.5, 1.0] }),
            serde_json::json!({ "w": [0.0, 0.0, 0.0] }),
            serde_json::json!([0.5, 0.25, 0.25]),
        ] {
            let mut state = bad.clone();
            let err = agg.aggregate(&m, 2, &mut state).unwrap_err();
            assert!(matches!(err, AggregateError::State(_)), "{err}");
            assert_eq!(state, bad, "state must be left alone on error");
        }
    }
}
