//! `nash`: Nash social welfare over the groups, r ↦ (1/G) Σ_g log(max(R[g,r] − d, 1e-6)), the
//! log of the geometric mean of each group's gain over the disagreement point d (Nash, "The
//! Bargaining Problem", Econometrica 1950). Stateless.
//!
//! d (`disagreement`, default 0.0) is the reward a group would get without agreement; a
//! rollout that leaves a group at or below it is penalised by log(1e-6) ≈ −13.8 for that group,
//! a large but finite penalty, where the exact welfare would be −∞.
//!
//! Logged weights: ∂r/∂R_g ∝ 1/(R_g − d) for groups above the floor (the worse-off group counts
//! more), 0 for groups on the floor (their reward does not move r); uniform for a rollout where
//! every group is on the floor. Averaged over rollouts.
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::entry::{builtin, RuleEntry};
use super::{per_rollout, AggregateError, Aggregated, Aggregator, RewardMatrix};
use crate::registry::ParamError;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Knobs {
    /// The disagreement point d, the reward a group gets without agreement; finite, default
    /// 0.0.
    #[serde(default)]
    disagreement: f64,
}

pub(super) fn rule() -> RuleEntry {
    builtin::<Knobs>(
        "nash",
        "Nash social welfare: the mean log gain of each group over a disagreement point",
        |k, _| {
            let d = k.disagreement;
            if !d.is_finite() {
                return Err(ParamError::range("disagreement", d, "be finite", 0.0));
            }
            Ok(Box::new(Nash { d }))
        },
    )
}

/// The smallest gain over d that enters the log.
const FLOOR: f64 = 1e-6;

#[derive(Debug)]
pub(super) struct Nash {
    /// The disagreement point d, finite.
    pub(super) d: f64,
}

impl Aggregator for Nash {
    fn aggregate(
        &self,
        rewards: &RewardMatrix<'_>,
        _round: u32,
        _state: &mut Value,
    ) -> Result<Aggregated, AggregateError> {
        let groups = rewards.groups() as f64;
        let floor_log = FLOOR.ln();
        per_rollout(rewards, |column| {
            let (mut welfare, mut total) = (0.0, 0.0);
            for v in column.iter_mut() {
                let gain = *v - self.d;
                if gain > FLOOR {
                    welfare += gain.ln();
                    *v = 1.0 / gain;
                    total += *v;
                } else {
                    welfare += floor_log;
                    *v = 0.0;
                }
            }
            if total > 0.0 {
                column.iter_mut().for_each(|v| *v /= total);
            } else {
                column.fill(1.0 / groups);
            }
            welfare / groups
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::close;
    use super::super::RewardMatrix;
    use super::*;

    #[test]
    fn hand_matrix() {
        // Column [1.0, 0.5], d = 0: ½(ln 1 + ln 0.5) = −0.346574; shares ∝ [1, 2] → [1/3, 2/3].
        // Column [1.0, 0.5], d = 0.6: gains [0.4, −0.1 → 1e-6]: ½(ln 0.4 + ln 1e-6) = −7.365901;
        // only group 0 moves r, so shares [1, 0].
        let m = RewardMatrix::new(2, 1, vec![1.0, 0.5]).unwrap();
        let out = Nash { d: 0.0 }.aggregate(&m, 1, &mut Value::Null).unwrap();
        assert!(close(out.rewards[0], -0.346574, 1e-6));
        assert!(close(out.weights[0], 1.0 / 3.0, 1e-12) && close(out.weights[1], 2.0 / 3.0, 1e-12));
        let out = Nash { d: 0.6 }.aggregate(&m, 1, &mut Value::Null).unwrap();
        assert!(close(out.rewards[0], -7.365901, 1e-6));
        assert_eq!(out.weights, [1.0, 0.0]);
        // Both on the floor: ln 1e-6 = −13.815511, weights uniform.
        let out = Nash { d: 2.0 }.aggregate(&m, 1, &mut Value::Null).unwrap();
        assert!(close(out.rewards[0], -13.815511, 1e-6));
        assert_eq!(out.weights, [0.5, 0.5]);
    }
}
