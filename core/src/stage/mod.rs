//! Stages: the nodes of a pipeline. A stage reads typed artifacts from the stages it needs and
//! returns one artifact; it never reaches for global state, so the scheduler can run any two
//! independent stages at once and a run stays a function of its pipeline and seed.
mod artifact;
mod context;
mod evaluate;
mod split;

use std::fmt::Debug;
use std::sync::Arc;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use artifact::{Artifact, ArtifactKind, Inputs};
pub use context::Context;
pub use evaluate::{EvaluateParams, Evaluation};
pub use split::{GroupShard, Oracle, QuestionBank, Split, SplitParams};

use crate::diagnostic::Diagnostic;
use crate::spec::{params, Blame};

/// A stage failed; the scheduler adds which stage it was.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct StageError(pub String);

/// What every stage kind implements.
pub trait Stage: Send + Sync + Debug {
    fn run(&self, ctx: &Context<'_>, inputs: &Inputs<'_>) -> Result<Artifact, StageError>;
}

/// The stage kinds chorus knows; a pipeline names one per stage in `kind:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Materialises the dataset and cuts it into per-group private shards and held-out questions.
    Split,
    /// Per-group alignment (1 − JS distance) of a policy and fairness across groups.
    Evaluate,
}

impl Kind {
    pub const ALL: [Kind; 2] = [Kind::Split, Kind::Evaluate];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Split => "split",
            Kind::Evaluate => "evaluate",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|k| k.name()).collect()
    }

    /// Artifacts this kind must find among the outputs of the stages it needs.
    pub fn consumes(self) -> &'static [ArtifactKind] {
        match self {
            Kind::Split => &[],
            Kind::Evaluate => &[ArtifactKind::Split],
        }
    }

    pub fn produces(self) -> ArtifactKind {
        match self {
            Kind::Split => ArtifactKind::Split,
            Kind::Evaluate => ArtifactKind::Evaluation,
        }
    }

    /// Evaluation inside the loop runs only on evaluation rounds; everything else every round.
    pub fn every_round(self) -> bool {
        self != Kind::Evaluate
    }

    pub fn params_schema(self, generator: &mut SchemaGenerator) -> Schema {
        match self {
            Kind::Split => generator.subschema_for::<SplitParams>(),
            Kind::Evaluate => generator.subschema_for::<EvaluateParams>(),
        }
    }

    /// Checks the params (at `path` in the file) and builds the stage.
    pub fn build(
        self,
        raw: &Map<String, Value>,
        path: &str,
        blame: &Blame<'_>,
    ) -> Result<Arc<dyn Stage>, Diagnostic> {
        let value = Value::Object(raw.clone());
        Ok(match self {
            Kind::Split => {
                let p: SplitParams = params(&value, path, blame)?;
                p.check().map_err(|(field, msg)| {
                    Diagnostic::new(
                        blame.at(&format!("{path}.{field}")),
                        msg,
                        "see the `split` params in schemas/pipeline.schema.json",
                    )
                })?;
                Arc::new(p)
            }
            Kind::Evaluate => Arc::new(params::<EvaluateParams>(&value, path, blame)?),
        })
    }
}
