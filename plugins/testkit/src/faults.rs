//! Fault injectors: rules that break the contract on purpose, so chorus's tests can check
//! that the host survives each way a plugin can fail and says which. All stateless. While
//! they are not failing (before `from_round`, where they take it) they are the equal-weight
//! mean.
use chorus_plugin::serde_json::{Map, Value};
use chorus_plugin::{AggregateError, Aggregated, Aggregator, PluginRule, RewardMatrix, NO_PARAMS};

use crate::params::{from_round, only, FROM_ROUND_SCHEMA};
use chorus_plugin::kit::weighted_sum;

/// The message `panics` panics with.
pub const PANIC_MESSAGE: &str = "testkit: deliberate panic";

/// One way to break the contract: a name, whether it waits for `from_round`, and what it
/// does to an otherwise correct round.
pub trait Breaks: Send + Sync + std::fmt::Debug + 'static {
    const NAME: &'static str;
    const DESCRIPTION: &'static str;
    /// Whether the fault takes `from_round` (else it fires every round and takes no knobs).
    const TIMED: bool;
    fn breaks(out: Aggregated, round: u32) -> Result<Aggregated, AggregateError>;
}

/// A fault injector: the equal-weight mean until round `from_round`, then fault `B`.
#[derive(Debug)]
pub struct Fault<B: Breaks> {
    from_round: u32,
    breaks: std::marker::PhantomData<B>,
}

impl<B: Breaks> PluginRule for Fault<B> {
    const NAME: &'static str = B::NAME;
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = B::DESCRIPTION;
    const PARAMS_SCHEMA: &'static str = if B::TIMED {
        FROM_ROUND_SCHEMA
    } else {
        NO_PARAMS
    };

    fn new(params: &Map<String, Value>, _populations: &[f64]) -> Result<Self, String> {
        let from_round = if B::TIMED {
            from_round(params, B::NAME)?
        } else {
            only(params, B::NAME, &[])?;
            1
        };
        Ok(Fault {
            from_round,
            breaks: std::marker::PhantomData,
        })
    }
}

impl<B: Breaks> Aggregator for Fault<B> {
    fn aggregate(
        &self,
        rewards: &RewardMatrix<'_>,
        round: u32,
        _state: &mut Value,
    ) -> Result<Aggregated, AggregateError> {
        let out = weighted_sum(
            rewards,
            vec![1.0 / rewards.groups() as f64; rewards.groups()],
        )?;
        if round >= self.from_round {
            B::breaks(out, round)
        } else {
            Ok(out)
        }
    }
}

/// `panics`: panics with [`PANIC_MESSAGE`].
#[derive(Debug)]
pub struct PanicsNow;
impl Breaks for PanicsNow {
    const NAME: &'static str = "panics";
    const DESCRIPTION: &'static str = "test fault: panics in aggregate from round `from_round` on";
    const TIMED: bool = true;
    fn breaks(_: Aggregated, _: u32) -> Result<Aggregated, AggregateError> {
        panic!("{PANIC_MESSAGE}")
    }
}

/// `nan`: every reward NaN (weights still valid).
#[derive(Debug)]
pub struct NanRewards;
impl Breaks for NanRewards {
    const NAME: &'static str = "nan";
    const DESCRIPTION: &'static str = "test fault: NaN rewards from round `from_round` on";
    const TIMED: bool = true;
    fn breaks(mut out: Aggregated, _: u32) -> Result<Aggregated, AggregateError> {
        out.rewards.fill(f64::NAN);
        Ok(out)
    }
}

/// `refuses`: `AggregateError::Other("testkit: refusing round N")`.
#[derive(Debug)]
pub struct RefusesRound;
impl Breaks for RefusesRound {
    const NAME: &'static str = "refuses";
    const DESCRIPTION: &'static str = "test fault: returns an error from round `from_round` on";
    const TIMED: bool = true;
    fn breaks(_: Aggregated, round: u32) -> Result<Aggregated, AggregateError> {
        Err(AggregateError::Other(format!(
            "testkit: refusing round {round}"
        )))
    }
}

/// `short`: one reward fewer than there are rollouts, every round.
#[derive(Debug)]
pub struct OneShort;
impl Breaks for OneShort {
    const NAME: &'static str = "short";
    const DESCRIPTION: &'static str = "test fault: returns one reward fewer than rollouts";
    const TIMED: bool = false;
    fn breaks(mut out: Aggregated, _: u32) -> Result<Aggregated, AggregateError> {
        out.rewards.pop();
        Ok(out)
    }
}

/// `bad_weights`: the mean's rewards with weights that sum to 2, every round.
#[derive(Debug)]
pub struct DoubleWeights;
impl Breaks for DoubleWeights {
    const NAME: &'static str = "bad_weights";
    const DESCRIPTION: &'static str = "test fault: returns weights that sum to 2";
    const TIMED: bool = false;
    fn breaks(mut out: Aggregated, _: u32) -> Result<Aggregated, AggregateError> {
        out.weights.iter_mut().for_each(|w| *w *= 2.0);
        Ok(out)
    }
}

pub type Panics = Fault<PanicsNow>;
pub type Nan = Fault<NanRewards>;
pub type Refuses = Fault<RefusesRound>;
pub type Short = Fault<OneShort>;
pub type BadWeights = Fault<DoubleWeights>;

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
