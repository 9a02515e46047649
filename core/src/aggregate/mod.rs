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

/// Runs a rule that looks at one rollout at a time. `rule` gets the rollout's rewards (one
/// per group) in a reusable buffer, returns the aggregate, and leaves in the buffer its
/// sensitivity shares (∂r/∂R[g,r], summing to 1); their mean is the logged weight. One buffer
/// for the whole matrix keeps the loop free of allocations.
fn per_rollout(
    m: &RewardMatrix<'_>,
    mut per: impl FnMut(&mut [f64]) -> f64,
) -> Result<Aggregated, AggregateError> {
    let mut rewards = Vec::with_capacity(m.rollouts());
    let mut weights = vec![0.0; m.groups()];
    let mut column = vec![0.0; m.groups()];
    for r in 0..m.rollouts() {
        m.column_into(r, &mut column);
        rewards.push(per(&mut column));
        for (w, share) in weights.iter_mut().zip(&column) {
            *w += share;
        }
    }
    let n = m.rollouts() as f64;
    weights.iter_mut().for_each(|w| *w /= n);
    finish(rewards, weights)
}

/// r ↦ Σ_g w_g R[g,r] for weights that are fixed for the round; walks the matrix row by row,
/// the order it is stored in.
fn weighted_sum(m: &RewardMatrix<'_>, weights: Vec<f64>) -> Result<Aggregated, AggregateError> {
    let mut rewards = vec![0.0; m.rollouts()];
    for (g, w) in weights.iter().enumerate() {
        for (out, v) in rewards.iter_mut().zip(m.row(g)) {
            *out += w * v;
        }
    }
    finish(rewards, weights)
}

/// Every output must be finite (the contract the host also enforces on plugins); extreme
/// rewards and parameters can still overflow, which becomes an error, not a NaN in PPO.
fn finish(rewards: Vec<f64>, weights: Vec<f64>) -> Result<Aggregated, AggregateError> {
    if let Some(r) = rewards.iter().position(|v| !v.is_finite()) {
        return Err(AggregateError::NotFinite(format!(
            "the aggregate of rollout {r} (the rewards are too large for this rule's parameters)"
        )));
    }
    check_finite("weight", &weights)?;
    Ok(Aggregated { rewards, weights })
}

fn check_finite(what: &str, values: &[f64]) -> Result<(), AggregateError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(g) => Err(AggregateError::NotFinite(format!(
            "the {what} of group {g} (the rewards are too large for this rule's parameters)"
        ))),
        None => Ok(()),
    }
}

/// Shares for `min`/`max`: the groups attaining `extreme` split the rollout evenly.
fn tie_shares(column: &mut [f64], extreme: f64) {
    let ties = column.iter().filter(|&&v| v == extreme).count() as f64;
    for v in column {
        *v = if *v == extreme { 1.0 / ties } else { 0.0 };
    }
}

/// log Σ_i exp(x_i), with the largest term factored out so that nothing overflows.
fn log_sum_exp(x: impl Iterator<Item = f64> + Clone) -> f64 {
    let m = x.clone().fold(f64::NEG_INFINITY, f64::max);
    m + x.map(|v| (v - m).exp()).sum::<f64>().ln()
}

/// Turns `x` into softmax(x) in place and returns log Σ_i exp(x_i): one exp per entry, for the
/// per-rollout loops, where the softmax is the rollout's sensitivity shares.
fn softmax(x: &mut [f64]) -> f64 {
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for v in x.iter_mut() {
        *v = (*v - m).exp();
        sum += *v;
    }
    x.iter_mut().for_each(|v| *v /= sum);
    m + sum.ln()
}

/// log softmax(x) in place: the log-weights of the multiplicative and softmax-weighted rules.
fn log_softmax(x: &mut [f64]) {
    let lse = log_sum_exp(x.iter().copied());
    x.iter_mut().for_each(|v| *v -= lse);
}

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

/// A per-group state vector must fit this round's matrix and be finite.
fn check_state(name: &str, values: &[f64], groups: usize) -> Result<(), AggregateError> {
    let fail = |message| Err(AggregateError::State(message));
    if values.len() != groups {
        return fail(format!(
            "`{name}` has {} entries but the reward matrix has {groups} groups",
            values.len()
        ));
    }
    if let Some(g) = values.iter().position(|v| !v.is_finite()) {
        return fail(format!("`{name}` of group {g} is not finite"));
    }
    Ok(())
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

    #[test]
    fn stable_helpers() {
        // log(e^1000 + e^1000) = 1000 + ln 2, where the naive sum overflows.
        assert!(close(
            log_sum_exp([1000.0, 1000.0].into_iter()),
            1000.0 + 2f64.ln(),
            1e-12
        ));
        let mut x = [1000.0, 1000.0 + 3f64.ln()];
        let lse = softmax(&mut x);
        // softmax = [1/4, 3/4] (to the precision of 1000 + ln 3); lse = 1000 + ln 4
        assert!(close(x[0], 0.25, 1e-12) && close(x[1], 0.75, 1e-12));
        assert!(close(lse, 1000.0 + 4f64.ln(), 1e-12));
        let mut x = [0.0, 3f64.ln()];
        log_softmax(&mut x);
        assert!(close(x[0], 0.25f64.ln(), 1e-15) && close(x[1], 0.75f64.ln(), 1e-15));
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
