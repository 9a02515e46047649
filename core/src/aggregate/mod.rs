//! Server-side reward aggregators: many groups' rewards for each rollout become one reward.
//!
//! This is the federation boundary in types. An [`Aggregator`] is handed a [`RewardMatrix`]
//! (groups × rollouts), the round number and its own opaque state, and nothing else: no
//! survey, no shard, no group names. So every quantity a rule needs about a group, such as
//! how well the policy serves it, must be derived from that group's rewards. Plugins will
//! mirror this shape over the C ABI, with params and state crossing as JSON, which is why the
//! state is a [`serde_json::Value`] and not a typed struct.
//!
//! Built-in rules, one file each: [`RULES`]. [`AggregateParams::build`] picks one and checks
//! its knobs.
mod adaptive_alpha;
mod group_dro;
mod max;
mod mean;
mod min;
mod nash;
mod params;
mod power_mean;
mod tilted;

use serde::de::DeserializeOwned;
use serde_json::Value;

pub use params::{AggregateParams, Form, ParamError};

/// The built-in rules, as `rule:` names them.
pub const RULES: [&str; 8] = [
    "min",
    "max",
    "mean",
    "adaptive_alpha",
    "tilted",
    "power_mean",
    "nash",
    "group_dro",
];

/// Why a round could not be aggregated. Every variant is a caller or data problem the run can
/// report; none is a panic.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AggregateError {
    #[error("a reward matrix needs at least one group and one rollout, got {groups} × {rollouts}")]
    Empty { groups: usize, rollouts: usize },
    #[error("a {groups} × {rollouts} reward matrix needs groups · rollouts values, got {len}")]
    Shape {
        groups: usize,
        rollouts: usize,
        len: usize,
    },
    #[error("group {group}'s reward for rollout {rollout} is {value}; rewards must be finite")]
    NonFinite {
        group: usize,
        rollout: usize,
        value: f64,
    },
    #[error("the population-weighted mean has {shares} population shares but the reward matrix has {groups} groups")]
    Populations { shares: usize, groups: usize },
    #[error("{rule}: the state is not one this rule wrote ({message}); pass null to start afresh")]
    State { rule: &'static str, message: String },
    #[error("{rule}: {what} is not finite; the rewards are too large for this rule's parameters")]
    NotFinite { rule: &'static str, what: String },
}

/// One round's rewards: row g holds group g's reward for every rollout.
///
/// Row-major because each group scores all rollouts with its own reward model, so a row is
/// what one group sends to the server.
#[derive(Debug, Clone, PartialEq)]
pub struct RewardMatrix {
    groups: usize,
    rollouts: usize,
    values: Vec<f64>,
}

impl RewardMatrix {
    /// Checks the shape and that every reward is finite, so no rule has to guard against NaN.
    pub fn new(groups: usize, rollouts: usize, values: Vec<f64>) -> Result<Self, AggregateError> {
        if groups == 0 || rollouts == 0 {
            return Err(AggregateError::Empty { groups, rollouts });
        }
        if groups.checked_mul(rollouts) != Some(values.len()) {
            return Err(AggregateError::Shape {
                groups,
                rollouts,
                len: values.len(),
            });
        }
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(AggregateError::NonFinite {
                group: i / rollouts,
                rollout: i % rollouts,
                value: values[i],
            });
        }
        Ok(RewardMatrix {
            groups,
            rollouts,
            values,
        })
    }

    pub fn groups(&self) -> usize {
        self.groups
    }

    pub fn rollouts(&self) -> usize {
        self.rollouts
    }

    /// Group `g`'s rewards, one per rollout. Panics if `g` is out of range, like indexing.
    pub fn row(&self, g: usize) -> &[f64] {
        &self.values[g * self.rollouts..(g + 1) * self.rollouts]
    }

    /// Group `g`'s reward for rollout `r`. Panics if either is out of range, like indexing.
    pub fn get(&self, g: usize, r: usize) -> f64 {
        assert!(r < self.rollouts, "rollout {r} of {}", self.rollouts);
        self.values[g * self.rollouts + r]
    }

    /// a_g, the mean of each group's rewards this round: the only per-group alignment signal
    /// the server may see, which is what the stateful rules track.
    pub fn group_means(&self) -> Vec<f64> {
        let n = self.rollouts as f64;
        (0..self.groups)
            .map(|g| self.row(g).iter().sum::<f64>() / n)
            .collect()
    }
}

/// One round's aggregate.
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregated {
    /// The aggregated reward of each rollout, all finite.
    pub rewards: Vec<f64>,
    /// Each group's effective weight this round, for logging; sums to 1. For rules that are a
    /// weighted mean it is their weight; for the others it is the mean over rollouts of how
    /// strongly the rollout's aggregate responds to each group's reward (∂r/∂R[g,r],
    /// normalised per rollout), e.g. for `min` the share of rollouts where the group is worst.
    pub weights: Vec<f64>,
}

/// A server-side aggregation rule. It sees only what crosses the federation boundary.
pub trait Aggregator: Send + Sync + std::fmt::Debug {
    /// The rule's name, one of [`RULES`] for built-ins.
    fn name(&self) -> &str;

    /// Aggregates one round. `round` counts from 1; `state` is the rule's own opaque state,
    /// `Value::Null` before its first round, which stateful rules read and replace and the
    /// caller checkpoints. Built-ins keep all they need in `state` (so a resumed run continues
    /// exactly) and do not read `round`. On error `state` is left as it was.
    fn aggregate(
        &self,
        rewards: &RewardMatrix,
        round: u32,
        state: &mut Value,
    ) -> Result<Aggregated, AggregateError>;
}

/// Runs a rule that looks at one rollout at a time. `rule` gets the rollout's rewards (one
/// per group) in a reusable buffer, returns the aggregate, and leaves in the buffer its
/// sensitivity shares (∂r/∂R[g,r], summing to 1); their mean is the logged weight. One buffer
/// for the whole matrix keeps the loop free of allocations.
fn per_rollout(
    rule: &'static str,
    m: &RewardMatrix,
    mut per: impl FnMut(&mut [f64]) -> f64,
) -> Result<Aggregated, AggregateError> {
    let mut rewards = Vec::with_capacity(m.rollouts);
    let mut weights = vec![0.0; m.groups];
    let mut column = vec![0.0; m.groups];
    for r in 0..m.rollouts {
        for (g, c) in column.iter_mut().enumerate() {
            *c = m.values[g * m.rollouts + r];
        }
        rewards.push(per(&mut column));
        for (w, share) in weights.iter_mut().zip(&column) {
            *w += share;
        }
    }
    let n = m.rollouts as f64;
    weights.iter_mut().for_each(|w| *w /= n);
    finish(rule, rewards, weights)
}

/// r ↦ Σ_g w_g R[g,r] for weights that are fixed for the round; walks the matrix row by row,
/// the order it is stored in.
fn weighted_sum(
    rule: &'static str,
    m: &RewardMatrix,
    weights: Vec<f64>,
) -> Result<Aggregated, AggregateError> {
    let mut rewards = vec![0.0; m.rollouts];
    for (g, w) in weights.iter().enumerate() {
        for (out, v) in rewards.iter_mut().zip(m.row(g)) {
            *out += w * v;
        }
    }
    finish(rule, rewards, weights)
}

/// Every output must be finite (the contract the host also enforces on plugins); extreme
/// rewards and parameters can still overflow, which becomes an error, not a NaN in PPO.
fn finish(
    rule: &'static str,
    rewards: Vec<f64>,
    weights: Vec<f64>,
) -> Result<Aggregated, AggregateError> {
    if let Some(r) = rewards.iter().position(|v| !v.is_finite()) {
        return Err(AggregateError::NotFinite {
            rule,
            what: format!("the aggregate of rollout {r}"),
        });
    }
    check_finite(rule, "weight", &weights)?;
    Ok(Aggregated { rewards, weights })
}

fn check_finite(rule: &'static str, what: &str, values: &[f64]) -> Result<(), AggregateError> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(g) => Err(AggregateError::NotFinite {
            rule,
            what: format!("the {what} of group {g}"),
        }),
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
fn read_state<S: DeserializeOwned>(
    rule: &'static str,
    state: &Value,
) -> Result<Option<S>, AggregateError> {
    if state.is_null() {
        return Ok(None);
    }
    S::deserialize(state)
        .map(Some)
        .map_err(|e| AggregateError::State {
            rule,
            message: e.to_string(),
        })
}

/// A per-group state vector must fit this round's matrix and be finite.
fn check_state(
    rule: &'static str,
    name: &str,
    values: &[f64],
    groups: usize,
) -> Result<(), AggregateError> {
    let fail = |message| Err(AggregateError::State { rule, message });
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
    pub(super) fn two_groups() -> RewardMatrix {
        RewardMatrix::new(2, 2, vec![1.0, 0.8, 0.2, 0.4]).unwrap()
    }

    pub(super) fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn matrix_accessors() {
        let m = two_groups();
        assert_eq!((m.groups(), m.rollouts()), (2, 2));
        assert_eq!(m.row(1), &[0.2, 0.4]);
        assert_eq!(m.get(0, 1), 0.8);
        // (1.0 + 0.8) / 2, (0.2 + 0.4) / 2
        let a = m.group_means();
        assert!(close(a[0], 0.9, 1e-15) && close(a[1], 0.3, 1e-15));
    }

    #[test]
    fn nan_reward_names_its_group() {
        let err = RewardMatrix::new(2, 2, vec![1.0, 2.0, f64::NAN, 4.0]).unwrap_err();
        assert!(matches!(
            err,
            AggregateError::NonFinite {
                group: 1,
                rollout: 0,
                ..
            }
        ));
        assert!(err.to_string().contains("group 1"), "{err}");
        let err = RewardMatrix::new(3, 1, vec![0.0, f64::INFINITY, 0.0]).unwrap_err();
        assert!(err.to_string().contains("group 1"), "{err}");
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(matches!(
            RewardMatrix::new(2, 2, vec![1.0; 3]),
            Err(AggregateError::Shape { len: 3, .. })
        ));
        assert!(matches!(
            RewardMatrix::new(0, 2, vec![]),
            Err(AggregateError::Empty { .. })
        ));
        assert!(matches!(
            RewardMatrix::new(2, 0, vec![]),
            Err(AggregateError::Empty { .. })
        ));
        assert!(matches!(
            RewardMatrix::new(usize::MAX, 2, vec![1.0]),
            Err(AggregateError::Shape { .. })
        ));
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
            .collect();
        let m = RewardMatrix::new(groups, rollouts, values).unwrap();
        for rule in RULES {
            let agg = AggregateParams::new(rule).build(&[]).unwrap();
            assert_eq!(agg.name(), rule);
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
}
