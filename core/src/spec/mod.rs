//! The pipeline file: its serde/schemars types and the way a file becomes a checked [`Pipeline`].
//!
//! A pipeline is data, not code: a run is a pure function of its resolved pipeline (hashed into
//! the manifest), which is what lets grids, Slurm arrays and resume treat runs as values.
pub mod budget;
mod load;
mod overrides;
mod source;
mod validate;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use load::{child_path, load, load_str, load_str_at, params, path_string, Blame, Loaded};
pub use overrides::Override;
pub use source::SourceMap;
// Grid files are parsed and checked with the same machinery as pipelines.
pub(crate) use source::{child_index, child_key, display_path, parse};
pub(crate) use validate::{confined, is_name};

/// One experiment: where its data comes from, who the groups are, and the DAG of stages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// Names the run folder (`<output>/<name>-<hash>`); letters, digits, `-`, `_`, `.`.
    pub name: String,
    /// Seeds every random choice of the run; the same pipeline and seed give the same numbers.
    pub seed: u64,
    /// Folder that receives run folders, relative to the working directory; it may not leave it.
    #[serde(default = "default_output")]
    pub output: String,
    /// Plugin libraries whose aggregation rules and fairness metrics stages may name, as
    /// paths relative to this file (never searched for). Plugins are trusted native code
    /// that runs inside chorus; see plugins/api/README.md.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<String>,
    /// Number of training rounds of the `loop` block; required when there is a loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds: Option<u32>,
    /// Which dataset the `split` stage materialises, and with it the groups (countries,
    /// demographics) whose preferences it holds.
    pub data: DataSpec,
    /// Stages that run once: before the loop, or after it when they need a loop stage.
    pub stages: Vec<StageSpec>,
    /// Stages that run once per round, `rounds` times.
    #[serde(default, rename = "loop", skip_serializing_if = "Option::is_none")]
    pub round_loop: Option<LoopSpec>,
}

fn default_output() -> String {
    "runs".to_owned()
}

pub use crate::data::DataSpec;

/// One node of the DAG.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    /// Unique name; other stages list it in `needs`, overrides address it as `ID.PARAM`.
    pub id: String,
    /// What the stage does (see `chorus schema` for the kinds and their params).
    pub kind: String,
    /// Ids of the stages whose outputs this stage consumes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// Settings of the kind; checked against the kind's own schema.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub params: Map<String, Value>,
}

/// The per-round part of the pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoopSpec {
    /// Evaluation stages inside the loop run every `eval_every` rounds and at the last round.
    #[serde(default = "one")]
    pub eval_every: u32,
    /// Feedback across rounds: after each round, the output of `to` (a loop stage) replaces
    /// the output of `from` (a stage before the loop) for every stage that needs `from`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub carry: Vec<Carry>,
    /// Save the loop's state every this many rounds, so `chorus run --resume` can continue a
    /// killed run; 0 = never.
    #[serde(default = "ten")]
    pub checkpoint_every: u32,
    pub stages: Vec<StageSpec>,
}

/// One feedback edge of the loop, e.g. `{from: policy, to: ppo}`: round r + 1 rolls out the
/// policy that round r's update produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Carry {
    pub from: String,
    pub to: String,
}

fn one() -> u32 {
    1
}

fn ten() -> u32 {
    10
}

impl Pipeline {
    /// Every stage with where it sits: `stages[i]` or `loop.stages[i]`.
    pub fn all_stages(&self) -> impl Iterator<Item = (String, &StageSpec, bool)> {
        let outer = self
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("stages[{i}]"), s, false));
        let inner = self
            .round_loop
            .iter()
            .flat_map(|l| l.stages.iter().enumerate())
            .map(|(i, s)| (format!("loop.stages[{i}]"), s, true));
        outer.chain(inner)
    }
}

impl JsonSchema for StageSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StageSpec".into()
    }

    /// The derived shape plus one `if kind == K then params: schema(K)` rule per kind, so an
    /// editor checks each stage's params against its own kind.
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        #[derive(JsonSchema)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)] // only its schema is used
        struct StageSpecShape {
            /// Unique name; other stages list it in `needs`, overrides address it as `ID.PARAM`.
            id: String,
            /// What the stage does.
            kind: crate::stage::Kind,
            /// Ids of the stages whose outputs this stage consumes.
            #[serde(default)]
            needs: Vec<String>,
            /// Settings of the kind.
            #[serde(default)]
            params: Map<String, Value>,
        }
        let mut schema = StageSpecShape::json_schema(generator);
        let rules: Vec<Value> = crate::stage::Kind::ALL
            .iter()
            .map(|kind| {
                serde_json::json!({
                    "if": { "properties": { "kind": { "const": kind.name() } } },
                    "then": { "properties": { "params": kind.params_schema(generator) } }
                })
            })
            .collect();
        schema.insert("allOf".to_owned(), Value::Array(rules));
        schema
    }
}

/// The JSON Schema of a pipeline file.
pub fn json_schema() -> Value {
    schemars::schema_for!(Pipeline).to_value()
}

/// The schema as `chorus schema` writes it to `schemas/pipeline.schema.json` (and as the
/// freshness test expects it): pretty JSON with a trailing newline.
pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).expect("a schema serialises");
    text.push('\n');
    text
}
