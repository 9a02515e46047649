//! Stages: the nodes of a pipeline. A stage reads typed artifacts from the stages it needs and
//! returns one artifact; it never reaches for global state, so the scheduler can run any two
//! independent stages at once and a run stays a function of its pipeline and seed.
mod aggregate;
mod artifact;
mod context;
mod evaluate;
mod policy_init;
mod ppo;
mod reward_model;
mod rollout;
mod score;
mod split;

use std::fmt::Debug;
use std::sync::Arc;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use aggregate::{AggregateStage, Aggregated};
pub use artifact::{Artifact, ArtifactKind, Inputs, Reading};
pub use context::Context;
pub use evaluate::{EvaluateParams, EvaluateStage, Evaluation, MetricSpec};
pub use policy_init::{PolicyParams, PolicyState};
pub use reward_model::Scorers;
pub use rollout::{RolloutBatch, RolloutParams};
pub use score::{Rewards, ScoreParams};
pub use split::{GroupShard, Oracle, QuestionBank, Split, SplitParams};

use crate::aggregate::Normalize;
use crate::diagnostic::Diagnostic;
use crate::ppo::PpoConfig;
use crate::registry::{inline_schema, Registry};
use crate::reward::RewardModelConfig;
use crate::spec::{params, Blame, Pipeline};

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
    /// Each group trains its own reward model on its own shard (or uses the oracle).
    RewardModel,
    /// The initial policy and its frozen copy, the KL reference.
    Policy,
    /// The server samples answers from the current policy.
    Rollout,
    /// Each group scores every rollout locally; out comes the groups × rollouts reward matrix.
    Score,
    /// The server aggregates the reward matrix into one reward per rollout.
    Aggregate,
    /// One PPO (or RLOO/GRPO) update of the policy.
    Ppo,
    /// Per-group alignment (1 − JS distance) of a policy and fairness across groups.
    Evaluate,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Split,
        Kind::RewardModel,
        Kind::Policy,
        Kind::Rollout,
        Kind::Score,
        Kind::Aggregate,
        Kind::Ppo,
        Kind::Evaluate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Split => "split",
            Kind::RewardModel => "reward_model",
            Kind::Policy => "policy",
            Kind::Rollout => "rollout",
            Kind::Score => "score",
            Kind::Aggregate => "aggregate",
            Kind::Ppo => "ppo",
            Kind::Evaluate => "evaluate",
        }
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|k| k.name()).collect()
    }

    /// Artifacts this kind must find among the outputs of the stages it needs. The
    /// aggregator's list is the federation boundary: the reward matrix and nothing else.
    pub fn consumes(self) -> &'static [ArtifactKind] {
        use ArtifactKind as A;
        match self {
            Kind::Split => &[],
            Kind::RewardModel | Kind::Policy | Kind::Evaluate => &[A::Split],
            Kind::Rollout => &[A::Split, A::Policy],
            Kind::Score => &[A::Split, A::Rollouts, A::Scorers],
            Kind::Aggregate => &[A::Rewards],
            Kind::Ppo => &[A::Policy, A::Rollouts, A::Aggregated],
        }
    }

    pub fn produces(self) -> ArtifactKind {
        match self {
            Kind::Split => ArtifactKind::Split,
            Kind::RewardModel => ArtifactKind::Scorers,
            Kind::Policy | Kind::Ppo => ArtifactKind::Policy,
            Kind::Rollout => ArtifactKind::Rollouts,
            Kind::Score => ArtifactKind::Rewards,
            Kind::Aggregate => ArtifactKind::Aggregated,
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
            Kind::RewardModel => generator.subschema_for::<RewardModelConfig>(),
            Kind::Policy => generator.subschema_for::<PolicyParams>(),
            Kind::Rollout => generator.subschema_for::<RolloutParams>(),
            Kind::Score => generator.subschema_for::<ScoreParams>(),
            Kind::Aggregate => aggregate_schema(),
            Kind::Ppo => generator.subschema_for::<PpoConfig>(),
            Kind::Evaluate => generator.subschema_for::<EvaluateParams>(),
        }
    }

    /// Checks the params (at `path` in the file) and builds the stage; rules and metrics are
    /// looked up in `registry`.
    pub fn build(
        self,
        raw: &Map<String, Value>,
        path: &str,
        blame: &Blame<'_>,
        pipeline: &Pipeline,
        registry: &Arc<Registry>,
    ) -> Result<Arc<dyn Stage>, Vec<Diagnostic>> {
        let value = Value::Object(raw.clone());
        let range = |(field, msg): (&str, String)| {
            Diagnostic::new(
                blame.at(&format!("{path}.{field}")),
                msg,
                format!(
                    "see the `{}` params in schemas/pipeline.schema.json",
                    self.name()
                ),
            )
        };
        Ok(match self {
            Kind::Split => {
                let p: SplitParams = params(&value, path, blame).map_err(one)?;
                p.check().map_err(range).map_err(one)?;
                Arc::new(p)
            }
            Kind::RewardModel => {
                let p: RewardModelConfig = params(&value, path, blame).map_err(one)?;
                p.check().map_err(range).map_err(one)?;
                Arc::new(p)
            }
            Kind::Policy => {
                let p: PolicyParams = params(&value, path, blame).map_err(one)?;
                p.check(&pipeline.data.group_names())
                    .map_err(range)
                    .map_err(one)?;
                Arc::new(p)
            }
            Kind::Rollout => {
                let p: RolloutParams = params(&value, path, blame).map_err(one)?;
                p.check().map_err(range).map_err(one)?;
                Arc::new(p)
            }
            Kind::Score => Arc::new(params::<ScoreParams>(&value, path, blame).map_err(one)?),
            Kind::Aggregate => Arc::new(AggregateStage::resolve(
                raw,
                path,
                blame,
                registry,
                pipeline.data.training_group_names().len(),
            )?),
            Kind::Ppo => {
                let p: PpoConfig = params(&value, path, blame).map_err(one)?;
                p.check().map_err(range).map_err(one)?;
                Arc::new(p)
            }
            Kind::Evaluate => {
                let p: EvaluateParams = params(&value, path, blame).map_err(one)?;
                Arc::new(EvaluateStage::resolve(p, path, blame, registry)?)
            }
        })
    }
}

fn one(d: Diagnostic) -> Vec<Diagnostic> {
    vec![d]
}

/// The `aggregate` params' schema: `rule`, `normalize`, and for each built-in rule its own
/// knobs (`if rule == R then …`). A plugin's rule is any other name; its knobs are checked
/// against the plugin's schema when the pipeline is loaded.
fn aggregate_schema() -> Schema {
    let builtins = crate::aggregate::builtins();
    let names: Vec<&str> = builtins.iter().map(|r| r.name.as_str()).collect();
    let rule = serde_json::json!({
        "type": "string",
        "description": format!(
            "The aggregation rule: built-in {}, or a rule of a library under `plugins:`.",
            names.join(", ")
        ),
        "examples": names,
    });
    let normalize = inline_schema::<Normalize>();
    let rules: Vec<Value> = builtins
        .iter()
        .map(|r| {
            let mut then = r.schema.clone();
            then["description"] = Value::String(r.description.clone());
            then["properties"]["rule"] = rule.clone();
            then["properties"]["normalize"] = normalize.clone();
            serde_json::json!({
                "if": { "properties": { "rule": { "const": r.name } }, "required": ["rule"] },
                "then": then
            })
        })
        .collect();
    let schema = serde_json::json!({
        "type": "object",
        "required": ["rule"],
        "properties": { "rule": rule, "normalize": normalize },
        "allOf": rules,
    });
    Schema::try_from(schema).expect("an object is a schema")
}
