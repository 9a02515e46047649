use std::sync::Arc;

use super::{Evaluation, Split, StageError};

/// The typed value a stage hands to the stages that need it. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub enum Artifact {
    Split(Arc<Split>),
    Evaluation(Arc<Evaluation>),
}

/// The type of an artifact, for checking a DAG's wiring before anything runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArtifactKind {
    Split,
    Evaluation,
}

impl ArtifactKind {
    pub fn name(self) -> &'static str {
        match self {
            ArtifactKind::Split => "split",
            ArtifactKind::Evaluation => "evaluation",
        }
    }
}

impl Artifact {
    pub fn kind(&self) -> ArtifactKind {
        match self {
            Artifact::Split(_) => ArtifactKind::Split,
            Artifact::Evaluation(_) => ArtifactKind::Evaluation,
        }
    }
}

/// The outputs of the stages a stage needs, in `needs:` order.
pub struct Inputs<'a>(pub &'a [&'a Artifact]);

impl Inputs<'_> {
    pub fn split(&self) -> Result<&Split, StageError> {
        self.0
            .iter()
            .find_map(|a| match a {
                Artifact::Split(s) => Some(s.as_ref()),
                _ => None,
            })
            .ok_or_else(|| StageError("no `split` output among the inputs".to_owned()))
    }
}
