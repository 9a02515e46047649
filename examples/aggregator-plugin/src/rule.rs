//! The rule this plugin exports. Edit this file: rename `Softmin`, change `NAME`, the params
//! and `aggregate`, and keep the tests honest.
//!
//! `softmin`: per rollout, a smooth minimum of the groups' rewards,
//!
//! ```text
//! r ↦ −T · ln( (1/G) Σ_g exp(−R[g,r] / T) )
//! ```
//!
//! Small T approaches the worst group's reward (`min`), large T the mean; unlike `min`, every
//! group moves the aggregate a little, most of all the worst-served one. Stateless.
//! Logged weights: the mean over rollouts of softmax_g(−R[g,r]/T), which is ∂r/∂R[g,r].
use chorus_plugin::serde_json::{Map, Value};
use chorus_plugin::{AggregateError, Aggregated, Aggregator, PluginRule, RewardMatrix};

#[derive(Debug)]
pub struct Softmin {
    /// The temperature T > 0.
    temperature: f64,
}

impl PluginRule for Softmin {
    /// What a pipeline writes: `rule: softmin`.
    const NAME: &'static str = "softmin";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "smooth minimum of the groups' rewards, temperature T";
    /// The params a pipeline may give beside `rule`; chorus checks them against this schema
    /// before `new` runs.
    const PARAMS_SCHEMA: &'static str = r#"{
  "type": "object",
  "properties": {
    "temperature": {
      "type": "number",
      "exclusiveMinimum": 0,
      "default": 0.1,
      "description": "T > 0: small is close to min, large close to the mean"
    }
  },
  "additionalProperties": false
}"#;

    /// Built once per run. `populations` are the groups' public population shares (unused
    /// here). Return `Err` with a message for params you cannot use.
    fn new(params: &Map<String, Value>, _populations: &[f64]) -> Result<Self, String> {
        let mut temperature = 0.1;
        for (key, value) in params {
            match key.as_str() {
                "temperature" => {
                    temperature = value
                        .as_f64()
                        .ok_or_else(|| format!("`temperature` must be a number, not {value}"))?;
                }
                other => return Err(format!("softmin has no param `{other}`")),
            }
        }
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(format!("`temperature` is {temperature}; it must be > 0"));
        }
        Ok(Softmin { temperature })
    }
}

impl Aggregator for Softmin {
    /// One round: `rewards` is groups × rollouts, every value finite. Return one finite reward
    /// per rollout and one weight per group, summing to 1. A stateful rule reads and replaces
    /// `state` (`null` in round 1) and leaves it untouched when it returns an error.
    fn aggregate(
        &self,
        rewards: &RewardMatrix<'_>,
        _round: u32,
        _state: &mut Value,
    ) -> Result<Aggregated, AggregateError> {
        let t = self.temperature;
        let groups = rewards.groups();
        let mut column = vec![0.0; groups];
        let mut out = Vec::with_capacity(rewards.rollouts());
        let mut weights = vec![0.0; groups];
        for r in 0..rewards.rollouts() {
            rewards.column_into(r, &mut column);
            // x_g = −R[g,r]/T; subtract the largest before exp so that nothing overflows.
            column.iter_mut().for_each(|v| *v = -*v / t);
            let top = column.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            column.iter_mut().for_each(|v| *v = (*v - top).exp());
            let sum: f64 = column.iter().sum();
            out.push(-t * (top + (sum / groups as f64).ln()));
            for (w, e) in weights.iter_mut().zip(&column) {
                *w += e / sum;
            }
        }
        let n = rewards.rollouts() as f64;
        weights.iter_mut().for_each(|w| *w /= n);
        // Huge rewards with a tiny T can still overflow; say so instead of returning ∞.
        if let Some(r) = out.iter().position(|v| !v.is_finite()) {
            return Err(AggregateError::NotFinite(format!(
                "the softmin of rollout {r}"
            )));
        }
        Ok(Aggregated {
            rewards: out,
            weights,
        })
    }
}

#[cfg(test)]
mod tests {
    use chorus_plugin::serde_json::json;

    use super::*;

    fn softmin(params: Value) -> Result<Softmin, String> {
        Softmin::new(params.as_object().unwrap(), &[])
    }

    /// [[1.0, 0.8], [0.2, 0.4]]: group 0 is well served, group 1 poorly.
    fn two_groups() -> RewardMatrix<'static> {
        RewardMatrix::new(2, 2, vec![1.0, 0.8, 0.2, 0.4]).unwrap()
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn hand_matrix() {
        // T = 0.1, columns [1.0, 0.2] and [0.8, 0.4]:
        // −0.1·ln(½(e^−10 + e^−2)) = −0.1·ln(½(0.0000454 + 0.1353353)) = 0.269281
        // −0.1·ln(½(e^−8 + e^−4)) = −0.1·ln(½(0.0003355 + 0.0183156)) = 0.467500
        let mut state = Value::Null;
        let out = softmin(json!({}))
            .unwrap()
            .aggregate(&two_groups(), 1, &mut state)
            .unwrap();
        assert!(close(out.rewards[0], 0.269281, 1e-6), "{:?}", out.rewards);
        assert!(close(out.rewards[1], 0.467500, 1e-6), "{:?}", out.rewards);
        // Shares of group 1: e^−2/(e^−10 + e^−2) = 0.999665, e^−4/(e^−8 + e^−4) = 0.982014.
        assert!(close(out.weights[1], (0.999665 + 0.982014) / 2.0, 1e-6));
        assert!(close(out.weights.iter().sum(), 1.0, 1e-12));
        assert_eq!(state, Value::Null, "stateless");
    }

    #[test]
    fn between_min_and_mean() {
        let m = two_groups();
        let at = |t: f64| {
            softmin(json!({ "temperature": t }))
                .unwrap()
                .aggregate(&m, 1, &mut Value::Null)
                .unwrap()
                .rewards
        };
        // T → 0: the min per rollout, [0.2, 0.4], plus at most T·ln G = 6.9e-7 here;
        // T → ∞: the mean, [0.6, 0.6].
        let low = at(1e-6);
        assert!(
            close(low[0], 0.2, 1e-6) && close(low[1], 0.4, 1e-6),
            "{low:?}"
        );
        let high = at(1e6);
        assert!(
            close(high[0], 0.6, 1e-6) && close(high[1], 0.6, 1e-6),
            "{high:?}"
        );
    }

    #[test]
    fn bad_params_are_refused() {
        assert!(softmin(json!({ "temperature": 0.0 })).is_err());
        assert!(softmin(json!({ "temperature": "warm" })).is_err());
        assert!(softmin(json!({ "beta": 0.5 })).is_err());
    }
}
