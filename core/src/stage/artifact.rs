use std::sync::{Arc, Mutex, MutexGuard};

use super::{Aggregated, PolicyState, Rewards, RolloutBatch, Scorers};
use super::{Evaluation, Split, StageError};

/// The typed value a stage hands to the stages that need it. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub enum Artifact {
    Split(Arc<Split>),
    Scorers(Arc<Scorers>),
    // libtorch tensors may move between threads but not be shared; a mutex makes the two
    // torch-holding artifacts shareable by the scheduler's worker threads.
    Policy(Arc<Mutex<PolicyState>>),
    Rollouts(Arc<Mutex<RolloutBatch>>),
    Rewards(Arc<Rewards>),
    Aggregated(Arc<Aggregated>),
    Evaluation(Arc<Evaluation>),
}

/// The type of an artifact, for checking a DAG's wiring before anything runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    Split,
    Scorers,
    Policy,
    Rollouts,
    Rewards,
    Aggregated,
    Evaluation,
}

impl ArtifactKind {
    pub fn name(self) -> &'static str {
        match self {
            ArtifactKind::Split => "split",
            ArtifactKind::Scorers => "reward models",
            ArtifactKind::Policy => "policy",
            ArtifactKind::Rollouts => "rollouts",
            ArtifactKind::Rewards => "reward matrix",
            ArtifactKind::Aggregated => "aggregated rewards",
            ArtifactKind::Evaluation => "evaluation",
        }
    }
}

/// One number an artifact reports for the metrics file: per group, or over all groups.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub group: Option<String>,
    pub metric: String,
    pub value: f64,
}

impl Reading {
    pub fn all(metric: &str, value: f64) -> Reading {
        Reading {
            group: None,
            metric: metric.to_owned(),
            value,
        }
    }

    pub fn group(group: &str, metric: &str, value: f64) -> Reading {
        Reading {
            group: Some(group.to_owned()),
            metric: metric.to_owned(),
            value,
        }
    }
}

impl Artifact {
    pub fn kind(&self) -> ArtifactKind {
        match self {
            Artifact::Split(_) => ArtifactKind::Split,
            Artifact::Scorers(_) => ArtifactKind::Scorers,
            Artifact::Policy(_) => ArtifactKind::Policy,
            Artifact::Rollouts(_) => ArtifactKind::Rollouts,
            Artifact::Rewards(_) => ArtifactKind::Rewards,
            Artifact::Aggregated(_) => ArtifactKind::Aggregated,
            Artifact::Evaluation(_) => ArtifactKind::Evaluation,
        }
    }

    /// What this artifact contributes to `metrics.jsonl`.
    pub fn readings(&self) -> Vec<Reading> {
        match self {
            Artifact::Evaluation(e) => e.readings(),
            Artifact::Scorers(s) => s.readings(),
            Artifact::Policy(p) => p.lock().map(|p| p.readings()).unwrap_or_default(),
            Artifact::Aggregated(a) => a.readings(),
            Artifact::Split(_) | Artifact::Rollouts(_) | Artifact::Rewards(_) => Vec::new(),
        }
    }
}

/// The outputs of the stages a stage needs, in `needs:` order.
pub struct Inputs<'a>(pub &'a [&'a Artifact]);

macro_rules! input {
    ($name:ident, $variant:ident, $ty:ty, $label:literal) => {
        pub fn $name(&self) -> Result<&$ty, StageError> {
            self.0
                .iter()
                .find_map(|a| match a {
                    Artifact::$variant(x) => Some(x.as_ref()),
                    _ => None,
                })
                .ok_or_else(|| StageError(concat!("no ", $label, " among the inputs").to_owned()))
        }
    };
}

impl Inputs<'_> {
    input!(split, Split, Split, "split");
    input!(scorers, Scorers, Scorers, "reward models");
    input!(rewards, Rewards, Rewards, "reward matrix");
    input!(aggregated, Aggregated, Aggregated, "aggregated rewards");

    pub fn policy(&self) -> Result<MutexGuard<'_, PolicyState>, StageError> {
        self.0
            .iter()
            .find_map(|a| match a {
                Artifact::Policy(x) => Some(x),
                _ => None,
            })
            .ok_or_else(|| StageError("no policy among the inputs".to_owned()))?
            .lock()
            .map_err(|_| StageError("the policy was poisoned by a failed stage".to_owned()))
    }

    pub fn rollouts(&self) -> Result<MutexGuard<'_, RolloutBatch>, StageError> {
        self.0
            .iter()
            .find_map(|a| match a {
                Artifact::Rollouts(x) => Some(x),
                _ => None,
            })
            .ok_or_else(|| StageError("no rollouts among the inputs".to_owned()))?
            .lock()
            .map_err(|_| StageError("the rollouts were poisoned by a failed stage".to_owned()))
    }
}
