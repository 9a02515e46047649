//! `atkinson`: Atkinson's inequality index of the per-group scores (A. B. Atkinson, "On the
//! measurement of inequality", Journal of Economic Theory 2(3), 1970):
//!
//! ```text
//! A_ε(x) = 1 − M_{1−ε}(x) / mean(x),   M_p(x) = ( (1/G) Σ_g x_g^p )^{1/p},   M_0 = geometric mean
//! ```
//!
//! M_{1−ε} is the "equally distributed equivalent": the score that, given to every group,
//! would be as good as x to someone with inequality aversion ε ≥ 0. So A is the share of the
//! mean alignment such an observer would give up for equality: 0 when every group scores the
//! same, up to 1. ε = 0 ignores inequality (A = 0 always); ε = 1 uses the geometric mean;
//! large ε approaches 1 − min/mean, the worst group's view. Unlike Gini or the coefficient of
//! variation, ε says how much the worst-off groups matter, which is the question a pluralistic
//! alignment experiment asks. Default ε = 0.5, a mild aversion and one of the values income
//! studies commonly report. Higher is less fair.
//!
//! Scores must be finite and ≥ 0 (alignments lie in [0, 1]). Conventions where the formula is
//! 0/0 or meets 0^p with p ≤ 0: equal scores (all 0 included) give 0; with ε ≥ 1 a zero score
//! makes M_{1−ε} = 0, so A = 1.
use chorus_plugin::serde_json::{Map, Value};
use chorus_plugin::{Metric, MetricError, PluginMetric};

/// The `atkinson` metric; built by [`PluginMetric::new`] from its params.
#[derive(Debug)]
pub struct Atkinson {
    /// Inequality aversion ε: finite, ≥ 0.
    epsilon: f64,
}

impl PluginMetric for Atkinson {
    const NAME: &'static str = "atkinson";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "Atkinson's inequality index of the per-group scores: 0 when equal, larger is less fair";
    const PARAMS_SCHEMA: &'static str = r#"{
  "type": "object",
  "properties": {
    "epsilon": {
      "type": "number",
      "minimum": 0,
      "default": 0.5,
      "description": "inequality aversion: 0 ignores inequality, 1 compares the geometric mean with the mean, larger weighs the worst-off groups more"
    }
  },
  "additionalProperties": false
}"#;
    const HIGHER_IS_FAIRER: bool = false;

    fn new(params: &Map<String, Value>) -> Result<Self, String> {
        let mut epsilon = 0.5;
        for (key, value) in params {
            match key.as_str() {
                "epsilon" => {
                    epsilon = value
                        .as_f64()
                        .ok_or_else(|| format!("`epsilon` must be a number, not {value}"))?;
                }
                other => {
                    return Err(format!(
                        "atkinson has no param `{other}`; it takes only `epsilon`"
                    ))
                }
            }
        }
        if !(epsilon.is_finite() && epsilon >= 0.0) {
            return Err(format!("`epsilon` is {epsilon}; it must be ≥ 0"));
        }
        Ok(Atkinson { epsilon })
    }
}

impl Metric for Atkinson {
    fn compute(&self, scores: &[f64]) -> Result<f64, MetricError> {
        let fail = |message: String| Err(MetricError(message));
        if scores.is_empty() {
            return fail("Atkinson's index needs at least one score".into());
        }
        if let Some(g) = scores.iter().position(|s| !(s.is_finite() && *s >= 0.0)) {
            return fail(format!(
                "the score of group {g} is {}; Atkinson's index needs finite scores ≥ 0",
                scores[g]
            ));
        }
        if scores.iter().all(|&s| s == scores[0]) {
            return Ok(0.0);
        }
        let p = 1.0 - self.epsilon;
        if p <= 0.0 && scores.contains(&0.0) {
            return Ok(1.0);
        }
        // The index is scale-invariant, so work with y = x / max ∈ [0, 1] (nothing overflows)
        // and with logs of y / mean(y): ln M_p = (log Σ exp(p·ln y_g) − ln G) / p stays finite
        // for any ε, where y_g^p itself would overflow for small y_g and large ε.
        let n = scores.len() as f64;
        let top = scores.iter().copied().fold(0.0, f64::max);
        let mean = scores.iter().map(|s| s / top).sum::<f64>() / n;
        let logs = scores.iter().map(|s| (s / top / mean).ln());
        let log_ede = if p == 0.0 {
            logs.sum::<f64>() / n
        } else {
            (log_sum_exp(logs.map(|l| p * l)) - n.ln()) / p
        };
        // M_p ≤ mean for p < 1, so A ≥ 0 but for rounding on nearly equal scores.
        Ok((1.0 - log_ede.exp()).max(0.0))
    }
}

/// log Σ_i exp(x_i), with the largest term factored out so that nothing overflows; x_i may be
/// −∞ (a zero score with p > 0), as long as one is finite.
fn log_sum_exp(x: impl Iterator<Item = f64> + Clone) -> f64 {
    let m = x.clone().fold(f64::NEG_INFINITY, f64::max);
    m + x.map(|v| (v - m).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use chorus_plugin::serde_json::json;

    use super::*;

    fn atkinson(epsilon: f64) -> Atkinson {
        let params = json!({ "epsilon": epsilon });
        Atkinson::new(params.as_object().unwrap()).unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn hand_values() {
        // Scores [0.25, 1.0], mean 0.625.
        let x = [0.25, 1.0];
        // ε = 0.5: M_½ = ((√0.25 + √1)/2)² = 0.75² = 0.5625; A = 1 − 0.5625/0.625 = 0.1.
        assert!(close(atkinson(0.5).compute(&x).unwrap(), 0.1));
        // ε = 1: geometric mean √0.25 = 0.5; A = 1 − 0.5/0.625 = 0.2.
        assert!(close(atkinson(1.0).compute(&x).unwrap(), 0.2));
        // ε = 2: harmonic mean 2/(4 + 1) = 0.4; A = 1 − 0.4/0.625 = 0.36.
        assert!(close(atkinson(2.0).compute(&x).unwrap(), 0.36));
        // ε = 0: the arithmetic mean itself; A = 0.
        assert!(close(atkinson(0.0).compute(&x).unwrap(), 0.0));
        // Scale-invariant: [25, 100] gives the same.
        assert!(close(atkinson(0.5).compute(&[25.0, 100.0]).unwrap(), 0.1));
    }

    #[test]
    fn grows_with_aversion_towards_one_minus_min_over_mean() {
        // [0.2, 0.6, 1.0], mean 0.6: as ε grows A rises towards 1 − 0.2/0.6 = 2/3.
        let x = [0.2, 0.6, 1.0];
        let mut previous = 0.0;
        for eps in [0.25, 0.5, 1.0, 2.0, 8.0] {
            let a = atkinson(eps).compute(&x).unwrap();
            assert!(a > previous, "ε = {eps}: {a} ≤ {previous}");
            previous = a;
        }
        // At ε = 1000 the worst group dominates: M_{−999} ≈ (⅓·0.2^{−999})^{−1/999}
        // = 0.2·3^{1/999} = 0.2·1.0011003 = 0.2002201; A = 1 − 0.2002201/0.6 = 0.6662999.
        let a = atkinson(1000.0).compute(&x).unwrap();
        assert!((a - 0.6662999).abs() < 1e-6, "{a}");
    }

    #[test]
    fn equal_and_zero_scores() {
        for eps in [0.0, 0.5, 1.0, 3.0] {
            assert_eq!(atkinson(eps).compute(&[0.7, 0.7, 0.7]).unwrap(), 0.0);
            assert_eq!(atkinson(eps).compute(&[0.0, 0.0]).unwrap(), 0.0);
            assert_eq!(atkinson(eps).compute(&[0.4]).unwrap(), 0.0);
        }
        // A zero score with ε ≥ 1: M_{1−ε} = 0, A = 1.
        assert_eq!(atkinson(1.0).compute(&[0.0, 0.5]).unwrap(), 1.0);
        assert_eq!(atkinson(2.5).compute(&[0.0, 0.5]).unwrap(), 1.0);
        // With ε < 1 a zero counts as 0^p = 0: ε = 0.5, [0, 1]: M = (½·1)² = 0.25, mean ½,
        // A = 0.5.
        assert!(close(atkinson(0.5).compute(&[0.0, 1.0]).unwrap(), 0.5));
    }

    #[test]
    fn bad_scores_are_errors() {
        let a = atkinson(0.5);
        assert!(a.compute(&[]).is_err());
        for bad in [f64::NAN, f64::INFINITY, -0.1] {
            let err = a.compute(&[0.5, bad]).unwrap_err();
            assert!(err.0.contains("group 1"), "{err}");
        }
    }

    #[test]
    fn bad_params_are_refused() {
        let new = |params: Value| Atkinson::new(params.as_object().unwrap());
        assert_eq!(new(json!({})).unwrap().epsilon, 0.5);
        assert!(new(json!({ "epsilon": -1.0 })).unwrap_err().contains("≥ 0"));
        assert!(new(json!({ "epsilon": "high" }))
            .unwrap_err()
            .contains("number"));
        assert!(new(json!({ "alpha": 1 })).unwrap_err().contains("`alpha`"));
    }

    #[test]
    fn schema_is_json() {
        let schema: Value = chorus_plugin::serde_json::from_str(Atkinson::PARAMS_SCHEMA).unwrap();
        assert_eq!(schema["properties"]["epsilon"]["default"], 0.5);
    }
}
