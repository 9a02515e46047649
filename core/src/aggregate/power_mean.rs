//! `power_mean`: the α-fair (power) mean of the groups' rewards,
//! M_α = ((1/G) Σ_g R'[g,r]^(1−α))^(1/(1−α)), with M_1 the geometric mean; the α-fairness family
//! of Mo & Walrand ("Fair end-to-end window-based congestion control", IEEE/ACM ToN 2000).
//! Stateless.
//!
//! α = 0 is the mean, α = 1 proportional fairness (the default, as in Mo & Walrand's
//! proportional-fair case), α → ∞ the min. Power means need positive inputs, so when the
//! round's smallest reward is ≤ 0 every reward is shifted by the same amount,
//! R' = R − min(all R) + 1e-3, and the shift is subtracted again from M_α: the output stays in
//! reward units and α = 0 is exactly the mean whatever the sign of the rewards. Computed as
//! exp of a log-sum-exp of (1−α)·ln R', so α = 50 and up cannot overflow.
//!
//! Logged weights: ∂M/∂R_g ∝ R'_g^(−α), normalised per rollout, then averaged.
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::entry::{builtin, RuleEntry};
use super::{
    log_sum_exp, per_rollout, softmax, AggregateError, Aggregated, Aggregator, RewardMatrix,
};
use crate::registry::ParamError;

/// How far above zero the smallest shifted reward lands.
const SHIFT_FLOOR: f64 = 1e-3;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Knobs {
    /// The fairness exponent α of the α-fair mean; ≥ 0, default 1.0 (geometric mean; 0 =
    /// arithmetic mean, large α approaches the minimum).
    #[serde(default = "default_alpha")]
    alpha: f64,
}

fn default_alpha() -> f64 {
    1.0
}

pub(super) fn rule() -> RuleEntry {
    builtin::<Knobs>(
        "power_mean",
        "the α-fair (power) mean: mean at α = 0, geometric at 1, min as α → ∞",
        |k, _| {
            let alpha = k.alpha;
            if !(alpha.is_finite() && alpha >= 0.0) {
                return Err(ParamError::range("alpha", alpha, "be ≥ 0", 1.0));
            }
            Ok(Box::new(PowerMean { alpha }))
        },
    )
}

#[derive(Debug)]
pub(super) struct PowerMean {
    /// α ≥ 0, finite.
    pub(super) alpha: f64,
}

impl Aggregator for PowerMean {
    fn aggregate(
        &self,
        rewards: &RewardMatrix<'_>,
        _round: u32,
        _state: &mut Value,
    ) -> Result<Aggregated, AggregateError> {
        let alpha = self.alpha;
        let groups = rewards.groups() as f64;
        let lowest = (0..rewards.groups())
            .flat_map(|g| rewards.row(g).iter().copied())
            .fold(f64::INFINITY, f64::min);
        let shift = if lowest <= 0.0 {
            SHIFT_FLOOR - lowest
        } else {
            0.0
        };
        let e = 1.0 - alpha;
        per_rollout(rewards, |column| {
            column.iter_mut().for_each(|v| *v = (*v + shift).ln());
            let log_mean = if e == 0.0 {
                column.iter().sum::<f64>() / groups
            } else {
                (log_sum_exp(column.iter().map(|l| e * l)) - groups.ln()) / e
            };
            column.iter_mut().for_each(|l| *l *= -alpha);
            softmax(column);
            log_mean.exp() - shift
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::close;
    use super::super::RewardMatrix;
    use super::*;

    fn power_mean(alpha: f64, m: &RewardMatrix) -> Aggregated {
        PowerMean { alpha }
            .aggregate(m, 1, &mut Value::Null)
            .unwrap()
    }

    #[test]
    fn hand_matrix() {
        // Columns [1, 4] and [4, 1]: α = 0 mean 2.5; α = 1 geometric √4 = 2;
        // α = 2 harmonic 2/(1 + 1/4) = 1.6.
        let m = RewardMatrix::new(2, 2, vec![1.0, 4.0, 4.0, 1.0]).unwrap();
        assert!(close(power_mean(0.0, &m).rewards[0], 2.5, 1e-12));
        assert!(close(power_mean(1.0, &m).rewards[1], 2.0, 1e-12));
        assert!(close(power_mean(2.0, &m).rewards[0], 1.6, 1e-12));
        // α = 1: shares ∝ 1/R' = [1, 1/4] → [0.8, 0.2] on column 0, [0.2, 0.8] on column 1.
        let out = power_mean(1.0, &m);
        assert!(close(out.weights[0], 0.5, 1e-12));
        // α = 0: every group counts the same.
        assert_eq!(power_mean(0.0, &m).weights, [0.5, 0.5]);
    }

    #[test]
    fn non_positive_rewards_are_shifted_and_back() {
        // [[-1], [1]]: shift 1.001 → R' = [0.001, 2.001]; √(0.001·2.001) − 1.001 = −0.956267
        let m = RewardMatrix::new(2, 1, vec![-1.0, 1.0]).unwrap();
        assert!(close(power_mean(1.0, &m).rewards[0], -0.956267, 1e-6));
        // α = 0 is still the plain mean, 0.
        assert!(close(power_mean(0.0, &m).rewards[0], 0.0, 1e-12));
    }

    #[test]
    fn large_alpha_approaches_min() {
        // Columns [0.9, 0.3, 0.6] and [0.2, 0.5, 0.8]; M_50 ≤ min·3^(1/49) = 1.0227·min.
        let m = RewardMatrix::new(3, 2, vec![0.9, 0.2, 0.3, 0.5, 0.6, 0.8]).unwrap();
        let out = power_mean(50.0, &m);
        assert!(
            out.rewards[0] > 0.3 && out.rewards[0] < 0.3 * 1.023,
            "{:?}",
            out.rewards
        );
        assert!(
            out.rewards[1] > 0.2 && out.rewards[1] < 0.2 * 1.023,
            "{:?}",
            out.rewards
        );
        // The worst group of each column carries almost all the weight.
        assert!(
            out.weights[1] > 0.49 && out.weights[0] > 0.49,
            "{:?}",
            out.weights
        );
        // Far beyond, still finite and still the min.
        assert!(close(power_mean(1e4, &m).rewards[1], 0.2, 1e-4));
    }
}
