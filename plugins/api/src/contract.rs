//! The two interfaces a rule or metric implements, built-in or loaded: the same traits on both
//! sides of the plugin boundary, so a plugin is a peer of a built-in.
use serde_json::Value;

use crate::RewardMatrix;

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

/// Why a round could not be aggregated. Every variant is a caller, data or parameter problem
/// the run can report; none is a panic.
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
    #[error("the rule was built for {expected} groups but the reward matrix has {groups}")]
    Groups { expected: usize, groups: usize },
    #[error("the state is not one this rule wrote ({0}); pass null to start afresh")]
    State(String),
    /// An output that overflowed or is NaN, e.g. "the aggregate of rollout 3".
    #[error("{0} is not finite")]
    NotFinite(String),
    /// Anything else the rule wants to say, in its own words.
    #[error("{0}")]
    Other(String),
}

/// A server-side aggregation rule. It sees only what crosses the federation boundary: the
/// reward matrix, the round and its own state. It is built once per run from its params and
/// is immutable afterwards; everything that changes from round to round lives in `state`.
pub trait Aggregator: Send + Sync + std::fmt::Debug {
    /// Aggregates one round. `round` counts from 1; `state` is the rule's own opaque state,
    /// `Value::Null` before its first round, which stateful rules read and replace and the
    /// host checkpoints. A rule should keep all it needs in `state` (so a resumed run
    /// continues exactly). On error `state` must be left as it was.
    fn aggregate(
        &self,
        rewards: &RewardMatrix<'_>,
        round: u32,
        state: &mut Value,
    ) -> Result<Aggregated, AggregateError>;
}

/// Why a metric has no value for these scores.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MetricError(pub String);

/// A fairness metric: one number from the per-group scores (alignments, each in [0, 1]).
/// Its name and direction (whether higher is fairer) are registered beside it.
pub trait Metric: Send + Sync + std::fmt::Debug {
    /// The metric of `scores` (one per group, at least one, all finite).
    fn compute(&self, scores: &[f64]) -> Result<f64, MetricError>;
}
