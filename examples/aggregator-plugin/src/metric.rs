//! The fairness metric this plugin exports. Edit this file: rename `MinMaxRatio`, change
//! `NAME`, the params, `HIGHER_IS_FAIRER` and `compute`, and keep the tests honest.
//!
//! `min_max_ratio`: the worst group's score over the best group's,
//!
//! ```text
//! scores ↦ min_g s_g / max_g s_g
//! ```
//!
//! 1 when every group is served equally, falling towards 0 as the worst-served group falls
//! behind the best-served one. Unlike the gap (max − min) it does not depend on the scale of
//! the scores: 0.2 against 0.4 is as unfair as 0.4 against 0.8. Higher is fairer.
//!
//! Scores must be finite and ≥ 0 (chorus passes alignments, each in [0, 1]). When every score
//! is 0 the ratio is 0/0; the groups are then equally (badly) served, so it is 1.
use chorus_plugin::serde_json::{Map, Value};
use chorus_plugin::{Metric, MetricError, PluginMetric};

#[derive(Debug)]
pub struct MinMaxRatio;

impl PluginMetric for MinMaxRatio {
    /// What a pipeline writes in an `evaluate` stage: `metrics: [min_max_ratio]`.
    const NAME: &'static str = "min_max_ratio";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "worst group's score over the best group's: 1 when equal, lower is less fair";
    /// The params a pipeline may give beside `metric` (`{metric: NAME, knob: value}`); chorus
    /// checks them against this schema before `new` runs. This metric has no knobs, so the
    /// schema allows none (the same as `chorus_plugin::NO_PARAMS`, written out as a start for
    /// your own).
    const PARAMS_SCHEMA: &'static str = r#"{
  "type": "object",
  "properties": {},
  "additionalProperties": false
}"#;
    /// Whether a larger value is fairer (Jain's index, this ratio) or less fair (Gini, the
    /// gap); chorus shows it beside the metric and plots read it.
    const HIGHER_IS_FAIRER: bool = true;

    /// Built once per evaluation stage. Return `Err` with a message for params you cannot use.
    fn new(params: &Map<String, Value>) -> Result<Self, String> {
        if let Some(key) = params.keys().next() {
            return Err(format!("min_max_ratio has no param `{key}`; it takes none"));
        }
        Ok(MinMaxRatio)
    }
}

impl Metric for MinMaxRatio {
    /// One value from the per-group scores (at least one, every one finite). Return an error
    /// with a message for scores the metric is not defined on, rather than NaN.
    fn compute(&self, scores: &[f64]) -> Result<f64, MetricError> {
        if scores.is_empty() {
            return Err(MetricError(
                "the min/max ratio needs at least one score".into(),
            ));
        }
        if let Some(g) = scores.iter().position(|s| !(s.is_finite() && *s >= 0.0)) {
            return Err(MetricError(format!(
                "the score of group {g} is {}; the min/max ratio needs finite scores ≥ 0",
                scores[g]
            )));
        }
        let worst = scores.iter().copied().fold(f64::INFINITY, f64::min);
        let best = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // best = 0 means every score is 0: equal, so 1 rather than 0/0.
        Ok(if best == 0.0 { 1.0 } else { worst / best })
    }
}

#[cfg(test)]
mod tests {
    use chorus_plugin::serde_json::{self, json};

    use super::*;

    fn ratio(scores: &[f64]) -> Result<f64, MetricError> {
        MinMaxRatio::new(&Map::new()).unwrap().compute(scores)
    }

    #[test]
    fn hand_values() {
        // 0.2 / 0.8 = 0.25; one group alone is equal to itself.
        assert!((ratio(&[0.8, 0.2, 0.5]).unwrap() - 0.25).abs() < 1e-15);
        assert_eq!(ratio(&[0.6, 0.6]).unwrap(), 1.0);
        assert_eq!(ratio(&[0.3]).unwrap(), 1.0);
        // Scale-free: halving every score leaves the ratio alone.
        assert_eq!(ratio(&[0.4, 0.2]).unwrap(), ratio(&[0.8, 0.4]).unwrap());
        // A group at 0 beside a served one is as unfair as it gets.
        assert_eq!(ratio(&[0.0, 0.9]).unwrap(), 0.0);
    }

    #[test]
    fn all_zero_is_equal() {
        assert_eq!(ratio(&[0.0, 0.0, 0.0]).unwrap(), 1.0);
    }

    #[test]
    fn bad_scores_and_params_are_refused() {
        assert!(ratio(&[]).is_err());
        assert!(ratio(&[0.5, -0.1]).is_err());
        let params = json!({ "epsilon": 0.5 });
        assert!(MinMaxRatio::new(params.as_object().unwrap()).is_err());
    }

    #[test]
    fn schema_is_json() {
        let schema: Value = serde_json::from_str(MinMaxRatio::PARAMS_SCHEMA).unwrap();
        assert_eq!(schema["additionalProperties"], false);
    }
}
