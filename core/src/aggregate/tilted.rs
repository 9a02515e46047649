//! `tilted`: the tilted (exponential) mean of the groups' rewards,
//! r ↦ (1/t)·log((1/G) Σ_g exp(t·R[g,r])), after tilted empirical risk minimisation (Li,
//! Beirami, Sanjabi & Smith, "Tilted Empirical Risk Minimization", ICLR 2021). Stateless.
//!
//! One knob slides between the seed paper's baselines: t < 0 is a soft-min, t → −∞ the min,
//! t → 0 the mean, t → +∞ the max. Default t = −1.0, our choice: a mild lean to the worst
//! group for rewards in [0, 1]. Computed with a stable log-sum-exp, so |t| = 1000 is fine.
//!
//! Logged weights: the mean over rollouts of softmax_g(t·R[g,r]) = ∂r/∂R[g,r].
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::entry::{builtin, RuleEntry};
use super::{per_rollout, softmax, AggregateError, Aggregated, Aggregator, RewardMatrix};
use crate::registry::ParamError;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Knobs {
    /// The tilt t; finite and ≠ 0, default −1.0 (t < 0 leans to the worst group, t > 0 to the
    /// best, t → 0 is the mean).
    #[serde(default = "default_t")]
    temperature: f64,
}

fn default_t() -> f64 {
    -1.0
}

pub(super) fn rule() -> RuleEntry {
    builtin::<Knobs>(
        "tilted",
        "the tilted (exponential) mean: soft-min for t < 0, soft-max for t > 0",
        |k, _| {
            let t = k.temperature;
            if !(t.is_finite() && t != 0.0) {
                return Err(ParamError::range(
                    "temperature",
                    t,
                    "be finite and ≠ 0",
                    -1.0,
                ));
            }
            Ok(Box::new(Tilted { t }))
        },
    )
}

#[derive(Debug)]
pub(super) struct Tilted {
    /// The tilt t: finite, ≠ 0.
    pub(super) t: f64,
}

impl Aggregator for Tilted {
    fn aggregate(
        &self,
        rewards: &RewardMatrix<'_>,
        _round: u32,
        _state: &mut Value,
    ) -> Result<Aggregated, AggregateError> {
        let t = self.t;
        let log_groups = (rewards.groups() as f64).ln();
        per_rollout(rewards, |column| {
            column.iter_mut().for_each(|v| *v *= t);
            (softmax(column) - log_groups) / t
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{close, two_groups};
    use super::super::RewardMatrix;
    use super::*;

    fn tilted(t: f64, m: &RewardMatrix) -> Aggregated {
        Tilted { t }.aggregate(m, 1, &mut Value::Null).unwrap()
    }

    #[test]
    fn hand_matrix() {
        // t = −1, columns [1.0, 0.2] and [0.8, 0.4]:
        // −ln(½(e^−1.0 + e^−0.2)) = −ln(½(0.367879 + 0.818731)) = 0.522047
        // −ln(½(e^−0.8 + e^−0.4)) = −ln(½(0.449329 + 0.670320)) = 0.580132
        let out = tilted(-1.0, &two_groups());
        assert!(close(out.rewards[0], 0.522047, 1e-6), "{:?}", out.rewards);
        assert!(close(out.rewards[1], 0.580132, 1e-6), "{:?}", out.rewards);
        // Shares e^{tR_g}/Σ: [0.310026, 0.689974] and [0.401312, 0.598688]; their mean:
        assert!(close(out.weights[1], (0.689974 + 0.598688) / 2.0, 1e-6));
        // t = 2: ½·ln(½(e^2.0 + e^0.4)) = ½·ln(½(7.389056 + 1.491825)) = 0.745377
        let out = tilted(2.0, &two_groups());
        assert!(close(out.rewards[0], 0.745377, 1e-6), "{:?}", out.rewards);
    }

    #[test]
    fn limits_are_min_mean_and_max() {
        let m = RewardMatrix::new(3, 2, vec![0.9, 0.1, 0.3, 0.5, 0.6, 0.8]).unwrap();
        // Columns [0.9, 0.3, 0.6] and [0.1, 0.5, 0.8]: min [0.3, 0.1], mean [0.6, 0.466667],
        // max [0.9, 0.8]. At |t| = 1000 the gap is at most ln(3)/1000 = 0.0011.
        let low = tilted(-1e3, &m);
        assert!(close(low.rewards[0], 0.3, 1.2e-3) && close(low.rewards[1], 0.1, 1.2e-3));
        let mid = tilted(1e-6, &m);
        assert!(close(mid.rewards[0], 0.6, 1e-6) && close(mid.rewards[1], 1.4 / 3.0, 1e-6));
        let high = tilted(1e3, &m);
        assert!(close(high.rewards[0], 0.9, 1.2e-3) && close(high.rewards[1], 0.8, 1.2e-3));
        // At t = −1000 the shares go to the worst group of each column: groups 1 and 0.
        assert!(close(low.weights[0], 0.5, 1e-9) && close(low.weights[1], 0.5, 1e-9));
    }
}
