//! Test metrics: `spread`, a simple one a metric-plugin test can check by hand, and
//! `panicking_metric`, to check the host survives a metric that panics.
use chorus_plugin::serde_json::{Map, Value};
use chorus_plugin::{Metric, MetricError, PluginMetric, NO_PARAMS};

use crate::params::only;

/// `spread`: max − min of the per-group scores; 0 when equal, higher is less fair.
#[derive(Debug)]
pub struct Spread;

impl PluginMetric for Spread {
    const NAME: &'static str = "spread";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "max − min of the per-group scores";
    const PARAMS_SCHEMA: &'static str = NO_PARAMS;
    const HIGHER_IS_FAIRER: bool = false;

    fn new(params: &Map<String, Value>) -> Result<Self, String> {
        only(params, Self::NAME, &[])?;
        Ok(Spread)
    }
}

impl Metric for Spread {
    fn compute(&self, scores: &[f64]) -> Result<f64, MetricError> {
        if scores.is_empty() {
            return Err(MetricError("spread needs at least one score".into()));
        }
        let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let min = scores.iter().copied().fold(f64::INFINITY, f64::min);
        Ok(max - min)
    }
}

/// The message `panicking_metric` panics with.
pub const METRIC_PANIC_MESSAGE: &str = "testkit: deliberate panic in a metric";

/// `panicking_metric`: panics with [`METRIC_PANIC_MESSAGE`] whenever it computes.
#[derive(Debug)]
pub struct PanickingMetric;

impl PluginMetric for PanickingMetric {
    const NAME: &'static str = "panicking_metric";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "test fault: panics in compute";
    const PARAMS_SCHEMA: &'static str = NO_PARAMS;
    const HIGHER_IS_FAIRER: bool = true;

    fn new(params: &Map<String, Value>) -> Result<Self, String> {
        only(params, Self::NAME, &[])?;
        Ok(PanickingMetric)
    }
}

impl Metric for PanickingMetric {
    fn compute(&self, _scores: &[f64]) -> Result<f64, MetricError> {
        panic!("{METRIC_PANIC_MESSAGE}");
    }
}

#[cfg(test)]
mod tests {
    use std::panic::catch_unwind;

    use super::*;

    #[test]
    fn spread_by_hand() {
        let spread = Spread::new(&Map::new()).unwrap();
        // max 0.9 − min 0.25 = 0.65
        assert!((spread.compute(&[0.5, 0.9, 0.25]).unwrap() - 0.65).abs() < 1e-15);
        assert_eq!(spread.compute(&[0.4]).unwrap(), 0.0);
        assert!(spread.compute(&[]).is_err());
        let mut params = Map::new();
        params.insert("x".into(), Value::Bool(true));
        assert!(Spread::new(&params).is_err());
    }

    #[test]
    fn panicking_metric_panics() {
        let metric = PanickingMetric::new(&Map::new()).unwrap();
        let panic = catch_unwind(|| metric.compute(&[0.5])).unwrap_err();
        assert_eq!(
            panic.downcast_ref::<String>().unwrap(),
            METRIC_PANIC_MESSAGE
        );
    }
}
