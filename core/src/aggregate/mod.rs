//! Server-side reward aggregators: many groups' rewards for each rollout become one reward.
//!
//! This is the federation boundary in types. An [`Aggregator`] (the trait lives in
//! `chorus-plugin`, shared with plugins) is handed a [`RewardMatrix`] (groups × rollouts), the
//! round number and its own opaque JSON state, and nothing else: no survey, no shard, no group
//! names. So every quantity a rule needs about a group, such as how well the policy serves it,
//! must be derived from that group's rewards.
//!
//! Rules are looked up by name in a [`Rules`] table that the built-ins below and loaded
//! plugins fill alike. A built-in is one file with its params type and a `rule()` entry, plus
//! one line in [`builtins`].
mod adaptive_alpha;
mod entry;
mod group_dro;
mod max;
mod mean;
mod min;
mod nash;
mod normalize;
mod power_mean;
mod tilted;

use chorus_plugin::kit::{
    check_finite, check_state, log_softmax, log_sum_exp, per_rollout, softmax, tie_shares,
    weighted_sum,
};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

pub use crate::registry::{ParamError, Source};
pub use chorus_plugin::{AggregateError, Aggregated, Aggregator, RewardMatrix};
pub use entry::{RuleEntry, Rules};
pub use normalize::Normalize;

/// The built-in rules, in the order `chorus plugins list` shows them.
pub fn builtins() -> Vec<RuleEntry> {
    vec![
        min::rule(),
        max::rule(),
        mean::rule(),
        adaptive_alpha::rule(),
        tilted::rule(),
        power_mean::rule(),
        nash::rule(),
        group_dro::rule(),
    ]
}

/// The knobs of a rule that has none: any knob given is an error.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct NoKnobs {}

/// A stateful rule's state: `None` before its first round (`null`), else the struct it wrote.
/// Any other JSON, including another rule's state, is an error.
fn read_state<S: DeserializeOwned>(state: &Value) -> Result<Option<S>, AggregateError> {
    if state.is_null() {
        return Ok(None);
    }
    S::deserialize(state)
        .map(Some)
        .map_err(|e| AggregateError::State(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand matrix most rule tests share: group 0 is well served (mean 0.9), group 1
    /// poorly (mean 0.3).
    pub(super) fn two_groups() -> RewardMatrix<'static> {
        RewardMatrix::new(2, 2, vec![1.0, 0.8, 0.2, 0.4]).unwrap()
    }

    pub(super) fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// Every rule, at its defaults, on a matrix of the size a real round has: finite outputs,
    /// weights summing to 1, and stateful rules accepting the state they wrote.
    #[test]
    fn every_rule_at_scale() {
        let (groups, rollouts) = (16, 4096);
        let values = (0..groups * rollouts)
            .map(|i| ((i * 7919) % 1000) as f64 / 1000.0 - 0.2)
            .collect::<Vec<f64>>();
        let m = RewardMatrix::new(groups, rollouts, values).unwrap();
        for entry in builtins() {
            let rule = &entry.name;
            let agg = entry.build(&Default::default(), &[1.0 / 16.0; 16]).unwrap();
            let mut state = Value::Null;
            for round in 1..=3 {
                let out = agg.aggregate(&m, round, &mut state).unwrap();
                assert_eq!(out.rewards.len(), rollouts, "{rule}");
                assert!(out.rewards.iter().all(|r| r.is_finite()), "{rule}");
                assert_eq!(out.weights.len(), groups, "{rule}");
                let sum: f64 = out.weights.iter().sum();
                assert!(close(sum, 1.0, 1e-9), "{rule}: weights sum to {sum}");
            }
        }
    }

    /// Each built-in checks its own knobs and names the one to blame.
    #[test]
    fn out_of_range_knobs_name_their_field() {
        let cases = [
            ("adaptive_alpha", r#"{"temperature": 0.0}"#, "temperature"),
            ("adaptive_alpha", r#"{"temperature": -0.1}"#, "temperature"),
            ("adaptive_alpha", r#"{"beta": -0.1}"#, "beta"),
            ("adaptive_alpha", r#"{"beta": 1.0}"#, "beta"),
            (
                "adaptive_alpha",
                r#"{"form": "switching", "tau": 0.0}"#,
                "tau",
            ),
            (
                "adaptive_alpha",
                r#"{"form": "switching", "tau": 1.5}"#,
                "tau",
            ),
            ("adaptive_alpha", r#"{"tau": 0.5}"#, "tau"),
            ("tilted", r#"{"temperature": 0.0}"#, "temperature"),
            ("power_mean", r#"{"alpha": -1.0}"#, "alpha"),
            ("group_dro", r#"{"eta": 0.0}"#, "eta"),
            ("group_dro", r#"{"eta": -1.0}"#, "eta"),
        ];
        let rules = Rules::default();
        for (rule, knobs, field) in cases {
            let knobs: serde_json::Map<String, Value> = serde_json::from_str(knobs).unwrap();
            let err = rules
                .get(rule)
                .unwrap()
                .build(&knobs, &[0.5, 0.5])
                .unwrap_err();
            match &err[..] {
                [ParamError::Invalid {
                    field: f, message, ..
                }] => {
                    assert_eq!(f, field, "{rule} {knobs:?}");
                    assert!(message.contains(field), "{message}");
                }
                other => panic!("{rule} {knobs:?}: {other:?}"),
            }
        }
        // Range edges are accepted.
        for (rule, knobs) in [
            (
                "adaptive_alpha",
                r#"{"beta": 0.0, "form": "switching", "tau": 1.0}"#,
            ),
            ("power_mean", r#"{"alpha": 0.0}"#),
            ("tilted", r#"{"temperature": 2.0}"#),
        ] {
            let knobs: serde_json::Map<String, Value> = serde_json::from_str(knobs).unwrap();
            assert!(
                rules.get(rule).unwrap().build(&knobs, &[1.0]).is_ok(),
                "{rule}"
            );
        }
    }

    /// A knob the rule does not take, or of the wrong type, is a shape error at its path.
    #[test]
    fn unknown_and_mistyped_knobs_are_shape_errors() {
        let rules = Rules::default();
        for (rule, knobs, path) in [
            ("min", r#"{"beta": 0.5}"#, "beta"),
            ("nash", r#"{"temperature": 0.5}"#, "temperature"),
            ("tilted", r#"{"temperature": "hot"}"#, "temperature"),
        ] {
            let knobs: serde_json::Map<String, Value> = serde_json::from_str(knobs).unwrap();
            let err = rules.get(rule).unwrap().build(&knobs, &[1.0]).unwrap_err();
            assert!(
                matches!(&err[..], [ParamError::Shape { path: p, .. }] if p == path),
                "{rule}: {err:?}"
            );
        }
        assert!(rules.get("adaptive_alpha").unwrap().takes("beta"));
        assert!(!rules.get("min").unwrap().takes("beta"));
    }
}
