//! `ema_weighted`: chorus-core's built-in `adaptive_alpha` in its `weighted` form, ported
//! operation for operation, as the stateful plugin rule the checkpoint, kill and resume tests
//! run. Per round, with a_g the mean of group g's rewards:
//!
//! - history h_g ← β·h_g + (1 − β)·a_g, and h = a at the first round (state `null`);
//! - weights α = softmax((1 − h)/T), so the less-served a group's history, the larger its α;
//! - r ↦ Σ_g α_g R[g,r].
//!
//! State `{"h": [h_g …]}`; anything else (another shape, another key, another length) is
//! refused with [`AggregateError::State`] and left as it was. Params `beta` β in [0, 1),
//! default 0.8, and `temperature` T > 0, default 0.1, core's defaults.
use chorus_plugin::serde_json::{json, Map, Value};
use chorus_plugin::{AggregateError, Aggregated, Aggregator, PluginRule, RewardMatrix};

use crate::params::{number, only};
use chorus_plugin::kit::{check_finite, log_softmax, weighted_sum};

#[derive(Debug)]
pub struct EmaWeighted {
    /// T > 0.
    temperature: f64,
    /// β in [0, 1).
    beta: f64,
}

impl PluginRule for EmaWeighted {
    const NAME: &'static str = "ema_weighted";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "adaptive_alpha's weighted form as a plugin: softmax weights of an EMA of group means";
    const PARAMS_SCHEMA: &'static str = r#"{
  "type": "object",
  "properties": {
    "temperature": {
      "type": "number",
      "exclusiveMinimum": 0,
      "default": 0.1,
      "description": "temperature T of the weights softmax((1 - h)/T); smaller leans harder on the worst group"
    },
    "beta": {
      "type": "number",
      "minimum": 0,
      "exclusiveMaximum": 1,
      "default": 0.8,
      "description": "how much of the history each round keeps, h <- beta*h + (1 - beta)*a"
    }
  },
  "additionalProperties": false
}"#;

    fn new(params: &Map<String, Value>, _populations: &[f64]) -> Result<Self, String> {
        only(params, Self::NAME, &["temperature", "beta"])?;
        let temperature = number(params, "temperature", 0.1)?;
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(format!("`temperature` is {temperature}; it must be > 0"));
        }
        let beta = number(params, "beta", 0.8)?;
        if !(0.0..1.0).contains(&beta) {
            return Err(format!("`beta` is {beta}; it must lie in [0, 1)"));
        }
        Ok(EmaWeighted { temperature, beta })
    }
}

/// The history in `state`: `None` before the first round (`null`), else exactly
/// `{"h": [groups numbers]}`. (A JSON number is always finite, so unlike core's
/// `check_state` there is no finiteness to check.)
fn read_history(state: &Value, groups: usize) -> Result<Option<Vec<f64>>, AggregateError> {
    let fail = |message: String| Err(AggregateError::State(message));
    let fields = match state {
        Value::Null => return Ok(None),
        Value::Object(fields) => fields,
        other => return fail(format!("expected {{\"h\": [...]}}, got {other}")),
    };
    if let Some(key) = fields.keys().find(|k| *k != "h") {
        return fail(format!("unknown field `{key}`, expected only `h`"));
    }
    let Some(Value::Array(h)) = fields.get("h") else {
        return fail("`h` must be an array of numbers".into());
    };
    if h.len() != groups {
        return fail(format!(
            "`h` has {} entries but the reward matrix has {groups} groups",
            h.len()
        ));
    }
    h.iter()
        .enumerate()
        .map(|(g, v)| {
            v.as_f64().ok_or_else(|| {
                AggregateError::State(format!("`h` of group {g} is {v}, not a number"))
            })
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

impl Aggregator for EmaWeighted {
    fn aggregate(
        &self,
        rewards: &RewardMatrix<'_>,
        _round: u32,
        state: &mut Value,
    ) -> Result<Aggregated, AggregateError> {
        let a = rewards.group_means();
        let h = match read_history(state, rewards.groups())? {
            None => a,
            Some(mut h) => {
                for (h, a) in h.iter_mut().zip(&a) {
                    *h = self.beta * *h + (1.0 - self.beta) * a;
                }
                h
            }
        };
        check_finite("history", &h)?;
        let t = self.temperature;
        let mut log_alpha: Vec<f64> = h.iter().map(|h| (1.0 - h) / t).collect();
        log_softmax(&mut log_alpha);
        let out = weighted_sum(rewards, log_alpha.iter().map(|l| l.exp()).collect())?;
        *state = json!({ "h": h });
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> EmaWeighted {
        EmaWeighted::new(&Map::new(), &[]).unwrap()
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    fn two_groups() -> RewardMatrix<'static> {
        RewardMatrix::new(2, 2, vec![1.0, 0.8, 0.2, 0.4]).unwrap()
    }

    /// As core's adaptive_alpha test: round 1 on [[1.0, 0.8], [0.2, 0.4]]: h = a = [0.9, 0.3],
    /// (1 − h)/T = [1, 7], α = [1/(1 + e^6), e^6/(1 + e^6)] = [0.0024726, 0.9975274].
    const A0: f64 = 0.0024726231566347743;

    #[test]
    fn hand_matrix_as_core() {
        let mut state = Value::Null;
        let out = rule().aggregate(&two_groups(), 1, &mut state).unwrap();
        assert!(close(out.weights[0], A0, 1e-12) && close(out.weights[1], 1.0 - A0, 1e-12));
        assert!(close(out.weights.iter().sum(), 1.0, 1e-15));
        // α0·1.0 + α1·0.2 = 0.2019781, α0·0.8 + α1·0.4 = 0.4009890
        assert!(close(out.rewards[0], 0.2019781, 1e-7), "{:?}", out.rewards);
        assert!(close(out.rewards[1], 0.4009890, 1e-7), "{:?}", out.rewards);
        let h = state["h"].as_array().unwrap();
        assert!(close(h[0].as_f64().unwrap(), 0.9, 1e-15), "{state}");
        assert!(close(h[1].as_f64().unwrap(), 0.3, 1e-15), "{state}");
    }

    #[test]
    fn history_carries_over() {
        let agg = rule();
        let mut state = Value::Null;
        agg.aggregate(&two_groups(), 1, &mut state).unwrap();
        // Round 2 serves both equally (a = [0.5, 0.5]), but the history remembers:
        // h = 0.8·[0.9, 0.3] + 0.2·[0.5, 0.5] = [0.82, 0.34];
        // α1 = 1/(1 + e^{−(0.82 − 0.34)/0.1}) = 1/(1 + e^{−4.8}) = 0.9918374.
        let even = RewardMatrix::new(2, 2, vec![0.5; 4]).unwrap();
        let out = agg.aggregate(&even, 2, &mut state).unwrap();
        assert!(close(out.weights[1], 0.9918374, 1e-7), "{:?}", out.weights);
    }

    #[test]
    fn state_survives_json_and_foreign_state_is_refused() {
        let agg = rule();
        let m = RewardMatrix::new(3, 2, vec![0.91, 0.13, 0.37, 0.59, 0.6, 0.71]).unwrap();
        let mut state = Value::Null;
        agg.aggregate(&m, 1, &mut state).unwrap();
        // What a checkpoint does: the state as text and back, bit for bit.
        let text = chorus_plugin::serde_json::to_string(&state).unwrap();
        let mut reread: Value = chorus_plugin::serde_json::from_str(&text).unwrap();
        assert_eq!(reread, state);
        assert_eq!(
            agg.aggregate(&m, 2, &mut state),
            agg.aggregate(&m, 2, &mut reread)
        );
        assert_eq!(state, reread);
        for bad in [
            json!({ "w": [0.5, 0.25, 0.25] }),
            json!({ "h": [0.5, 0.5] }),
            json!({ "h": [0.5, "x", 0.5] }),
            json!({ "h": [0.5, 0.5, 0.5], "extra": 1 }),
            json!({ "h": 0.5 }),
            json!({}),
            json!("h"),
            json!([0.5, 0.5, 0.5]),
        ] {
            let mut state = bad.clone();
            let err = agg.aggregate(&m, 2, &mut state).unwrap_err();
            assert!(matches!(err, AggregateError::State(_)), "{bad}: {err}");
            assert_eq!(state, bad, "state must be left alone on error");
        }
    }

    #[test]
    fn one_group_takes_all_the_weight() {
        let m = RewardMatrix::new(1, 3, vec![0.1, 0.5, 0.9]).unwrap();
        let mut state = Value::Null;
        let out = rule().aggregate(&m, 1, &mut state).unwrap();
        assert_eq!(out.weights, [1.0]);
        assert_eq!(out.rewards, [0.1, 0.5, 0.9]);
    }

    #[test]
    fn overflowing_history_is_an_error_and_keeps_the_state() {
        // The mean of [MAX, MAX] overflows to ∞.
        let m = RewardMatrix::new(1, 2, vec![f64::MAX, f64::MAX]).unwrap();
        let mut state = Value::Null;
        let err = rule().aggregate(&m, 1, &mut state).unwrap_err();
        assert_eq!(
            err,
            AggregateError::NotFinite(
                "the history of group 0 (the rewards are too large for this rule's parameters)"
                    .into()
            )
        );
        assert_eq!(state, Value::Null);
    }

    #[test]
    fn bad_params_are_refused() {
        let new = |params: Value| EmaWeighted::new(params.as_object().unwrap(), &[]);
        for (bad, field) in [
            (json!({ "temperature": 0.0 }), "temperature"),
            (json!({ "temperature": -1 }), "temperature"),
            (json!({ "beta": 1.0 }), "beta"),
            (json!({ "beta": -0.1 }), "beta"),
            (json!({ "beta": "high" }), "beta"),
            (json!({ "tau": 0.9 }), "tau"),
        ] {
            let err = new(bad).unwrap_err();
            assert!(err.contains(field), "{err}");
        }
        let ok = new(json!({ "temperature": 0.5, "beta": 0.0 })).unwrap();
        assert_eq!((ok.temperature, ok.beta), (0.5, 0.0));
    }
}
