//! `tilted_plugin`: chorus-core's built-in `tilted` rule, ported operation for operation so
//! that its results are bit-identical, for the plugin-vs-built-in benchmark and tests. The
//! rule: r ↦ (1/t)·log((1/G) Σ_g exp(t·R[g,r])), the tilted mean (Li, Beirami, Sanjabi &
//! Smith, "Tilted Empirical Risk Minimization", ICLR 2021); logged weights the mean over
//! rollouts of softmax_g(t·R[g,r]). Stateless. Param `temperature` t: finite, ≠ 0, default −1.
use chorus_plugin::serde_json::{Map, Value};
use chorus_plugin::{AggregateError, Aggregated, Aggregator, PluginRule, RewardMatrix};

use crate::params::{number, only};
use chorus_plugin::kit::{per_rollout, softmax};

#[derive(Debug)]
pub struct TiltedPlugin {
    /// The tilt t: finite, ≠ 0.
    t: f64,
}

impl PluginRule for TiltedPlugin {
    const NAME: &'static str = "tilted_plugin";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "the built-in `tilted` rule as a plugin, bit for bit (for benchmarks and tests)";
    const PARAMS_SCHEMA: &'static str = r#"{
  "type": "object",
  "properties": {
    "temperature": {
      "type": "number",
      "not": {"const": 0},
      "default": -1.0,
      "description": "the tilt t; finite and != 0 (t < 0 leans to the worst group, t > 0 to the best)"
    }
  },
  "additionalProperties": false
}"#;

    fn new(params: &Map<String, Value>, _populations: &[f64]) -> Result<Self, String> {
        only(params, Self::NAME, &["temperature"])?;
        let t = number(params, "temperature", -1.0)?;
        if !(t.is_finite() && t != 0.0) {
            return Err(format!("`temperature` is {t}; it must be finite and ≠ 0"));
        }
        Ok(TiltedPlugin { t })
    }
}

impl Aggregator for TiltedPlugin {
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
    use chorus_plugin::serde_json::json;

    use super::*;

    fn tilted(params: Value) -> Result<TiltedPlugin, String> {
        TiltedPlugin::new(params.as_object().unwrap(), &[])
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn hand_matrix_as_core() {
        // core's tilted test: t = −1, columns [1.0, 0.2] and [0.8, 0.4]:
        // −ln(½(e^−1.0 + e^−0.2)) = −ln(½(0.367879 + 0.818731)) = 0.522047
        // −ln(½(e^−0.8 + e^−0.4)) = −ln(½(0.449329 + 0.670320)) = 0.580132
        let m = RewardMatrix::new(2, 2, vec![1.0, 0.8, 0.2, 0.4]).unwrap();
        let rule = tilted(json!({})).unwrap();
        let mut state = Value::Null;
        let out = rule.aggregate(&m, 1, &mut state).unwrap();
        assert_eq!(state, Value::Null);
        assert!(close(out.rewards[0], 0.522047, 1e-6), "{:?}", out.rewards);
        assert!(close(out.rewards[1], 0.580132, 1e-6), "{:?}", out.rewards);
        // Shares e^{tR_g}/Σ: [0.310026, 0.689974] and [0.401312, 0.598688]; their mean:
        assert!(close(out.weights[1], (0.689974 + 0.598688) / 2.0, 1e-6));
        assert!(close(out.weights.iter().sum(), 1.0, 1e-15));
        // t = 2: ½·ln(½(e^2.0 + e^0.4)) = ½·ln(½(7.389056 + 1.491825)) = 0.745377
        let out = tilted(json!({ "temperature": 2.0 }))
            .unwrap()
            .aggregate(&m, 1, &mut state)
            .unwrap();
        assert!(close(out.rewards[0], 0.745377, 1e-6), "{:?}", out.rewards);
    }

    #[test]
    fn one_group_is_its_reward() {
        // G = 1: (softmax([tR]) − ln 1)/t = tR/t = R, weight 1.
        let m = RewardMatrix::new(1, 2, vec![0.25, -0.5]).unwrap();
        let out = tilted(json!({}))
            .unwrap()
            .aggregate(&m, 1, &mut Value::Null)
            .unwrap();
        assert_eq!(out.rewards, [0.25, -0.5]);
        assert_eq!(out.weights, [1.0]);
    }

    #[test]
    fn bad_params_are_refused() {
        assert_eq!(tilted(json!({})).unwrap().t, -1.0);
        let err = tilted(json!({ "temperature": 0 })).unwrap_err();
        assert!(err.contains("≠ 0"), "{err}");
        assert!(tilted(json!({ "temperature": "cold" })).is_err());
        assert!(tilted(json!({ "beta": 0.5 }))
            .unwrap_err()
            .contains("`beta`"));
    }
}
