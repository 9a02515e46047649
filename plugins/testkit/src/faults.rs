//! Fault injectors: rules that break the contract on purpose, so chorus's tests can check
//! that the host survives each way a plugin can fail and says which. All stateless. While
//! they are not failing (before `from_round`, where they take it) they are the equal-weight
//! mean.
use chorus_plugin::serde_json::{Map, Value};
use chorus_plugin::{AggregateError, Aggregated, Aggregator, PluginRule, RewardMatrix, NO_PARAMS};

use crate::arith::mean;
use crate::params::{from_round, only, FROM_ROUND_SCHEMA};

/// The message `panics` panics with.
pub const PANIC_MESSAGE: &str = "testkit: deliberate panic";

/// `panics`: panics with [`PANIC_MESSAGE`] from round `from_round` on.
#[derive(Debug)]
pub struct Panics {
    from_round: u32,
}

impl PluginRule for Panics {
    const NAME: &'static str = "panics";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "test fault: panics in aggregate from round `from_round` on";
    const PARAMS_SCHEMA: &'static str = FROM_ROUND_SCHEMA;

    fn new(params: &Map<String, Value>, _populations: &[f64]) -> Result<Self, String> {
        Ok(Panics {
            from_round: from_round(params, Self::NAME)?,
        })
    }
}

impl Aggregator for Panics {
    fn aggregate(
        &self,
        rewards: &RewardMatrix<'_>,
        round: u32,
        _state: &mut Value,
    ) -> Result<Aggregated, AggregateError> {
        if round >= self.from_round {
            panic!("{PANIC_MESSAGE}");
        }
        mean(rewards)
    }
}

/// `nan`: every reward NaN from round `from_round` on (weights still valid).
#[derive(Debug)]
pub struct Nan {
    from_round: u32,
}

impl PluginRule for Nan {
    const NAME: &'static str = "nan";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "test fault: NaN rewards from round `from_round` on";
    const PARAMS_SCHEMA: &'static str = FROM_ROUND_SCHEMA;

    fn new(params: &Map<String, Value>, _populations: &[f64]) -> Result<Self, String> {
        Ok(Nan {
            from_round: from_round(params, Self::NAME)?,
        })
    }
}

impl Aggregator for Nan {
    fn aggregate(
        &self,
        rewards: &RewardMatrix<'_>,
        round: u32,
        _state: &mut Value,
    ) -> Result<Aggregated, AggregateError> {
        let mut out = mean(rewards)?;
        if round >= self.from_round {
            out.rewards.fill(f64::NAN);
        }
        Ok(out)
    }
}

/// `refuses`: `AggregateError::Other("testkit: refusing round N")` from round `from_round` on.
#[derive(Debug)]
pub struct Refuses {
    from_round: u32,
}

impl PluginRule for Refuses {
    const NAME: &'static str = "refuses";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "test fault: returns an error from round `from_round` on";
    const PARAMS_SCHEMA: &'static str = FROM_ROUND_SCHEMA;

    fn new(params: &Map<String, Value>, _populations: &[f64]) -> Result<Self, String> {
        Ok(Refuses {
            from_round: from_round(params, Self::NAME)?,
        })
    }
}

impl Aggregator for Refuses {
    fn aggregate(
        &self,
        rewards: &RewardMatrix<'_>,
        round: u32,
        _state: &mut Value,
    ) -> Result<Aggregated, AggregateError> {
        if round >= self.from_round {
            return Err(AggregateError::Other(format!(
                "testkit: refusing round {round}"
            )));
        }
        mean(rewards)
    }
}

/// `short`: one reward fewer than there are rollouts, every round.
#[derive(Debug)]
pub struct Short;

impl PluginRule for Short {
    const NAME: &'static str = "short";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "test fault: returns one reward fewer than rollouts";
    const PARAMS_SCHEMA: &'static str = NO_PARAMS;

    fn new(params: &Map<String, Value>, _populations: &[f64]) -> Result<Self, String> {
        only(params, Self::NAME, &[])?;
        Ok(Short)
    }
}

impl Aggregator for Short {
    fn aggregate(
        &self,
        rewards: &RewardMatrix<'_>,
        _round: u32,
        _state: &mut Value,
    ) -> Result<Aggregated, AggregateError> {
        let mut out = mean(rewards)?;
        out.rewards.pop();
        Ok(out)
    }
}

/// `bad_weights`: the mean's rewards with weights that sum to 2, every round.
#[derive(Debug)]
pub struct BadWeights;

impl PluginRule for BadWeights {
    const NAME: &'static str = "bad_weights";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "test fault: returns weights that sum to 2";
    const PARAMS_SCHEMA: &'static str = NO_PARAMS;

    fn new(params: &Map<String, Value>, _populations: &[f64]) -> Result<Self, String> {
        only(params, Self::NAME, &[])?;
        Ok(BadWeights)
    }
}

impl Aggregator for BadWeights {
    fn aggregate(
        &self,
        rewards: &RewardMatrix<'_>,
        _round: u32,
        _state: &mut Value,
    ) -> Result<Aggregated, AggregateError> {
        let mut out = mean(rewards)?;
        out.weights.iter_mut().for_each(|w| *w *= 2.0);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::panic::{catch_unwind, AssertUnwindSafe};

    use chorus_plugin::serde_json::json;

    use super::*;

    /// [[1.0, 0.8], [0.2, 0.4]]: the mean is [0.6, 0.6] with weights [½, ½].
    fn two_groups() -> RewardMatrix<'static> {
        RewardMatrix::new(2, 2, vec![1.0, 0.8, 0.2, 0.4]).unwrap()
    }

    fn build<R: PluginRule>(params: Value) -> Result<R, String> {
        R::new(params.as_object().unwrap(), &[])
    }

    fn is_mean(out: &Aggregated) -> bool {
        out.rewards.iter().all(|r| (r - 0.6).abs() < 1e-15) && out.weights == [0.5, 0.5]
    }

    fn round<R: PluginRule>(rule: &R, round: u32) -> Result<Aggregated, AggregateError> {
        rule.aggregate(&two_groups(), round, &mut Value::Null)
    }

    #[test]
    fn panics_from_its_round() {
        let rule: Panics = build(json!({ "from_round": 3 })).unwrap();
        assert!(is_mean(&round(&rule, 2).unwrap()));
        let panic = catch_unwind(AssertUnwindSafe(|| round(&rule, 3))).unwrap_err();
        assert_eq!(panic.downcast_ref::<String>().unwrap(), PANIC_MESSAGE);
        let rule: Panics = build(json!({})).unwrap();
        assert!(catch_unwind(AssertUnwindSafe(|| round(&rule, 1))).is_err());
    }

    #[test]
    fn nan_from_its_round() {
        let rule: Nan = build(json!({ "from_round": 2 })).unwrap();
        assert!(is_mean(&round(&rule, 1).unwrap()));
        let out = round(&rule, 2).unwrap();
        assert!(out.rewards.len() == 2 && out.rewards.iter().all(|r| r.is_nan()));
        assert_eq!(out.weights, [0.5, 0.5]);
    }

    #[test]
    fn refuses_from_its_round() {
        let rule: Refuses = build(json!({ "from_round": 2 })).unwrap();
        assert!(is_mean(&round(&rule, 1).unwrap()));
        assert_eq!(
            round(&rule, 5),
            Err(AggregateError::Other("testkit: refusing round 5".into()))
        );
    }

    #[test]
    fn short_and_bad_weights() {
        let out = round(&build::<Short>(json!({})).unwrap(), 1).unwrap();
        assert_eq!((out.rewards.len(), out.weights.len()), (1, 2));
        let out = round(&build::<BadWeights>(json!({})).unwrap(), 1).unwrap();
        assert_eq!(out.rewards.len(), 2);
        assert_eq!(out.weights.iter().sum::<f64>(), 2.0);
    }

    #[test]
    fn bad_params_are_refused() {
        assert!(build::<Panics>(json!({ "from_round": 0 })).is_err());
        assert!(build::<Nan>(json!({ "from_round": "2" })).is_err());
        assert!(build::<Refuses>(json!({ "round": 2 })).is_err());
        assert!(build::<Short>(json!({ "from_round": 2 })).is_err());
        assert!(build::<BadWeights>(json!({ "x": true })).is_err());
    }
}
