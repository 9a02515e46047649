//! The table of aggregation rules by name, which built-ins and plugins fill alike.
//!
//! A pipeline writes `{rule: NAME, ...knobs}`; the knobs belong to the rule, so each rule
//! checks its own (a built-in through its serde type, a plugin through its JSON Schema) and a
//! plugin's knob is never rejected before its name is looked up.
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::Aggregator;
use crate::registry::{inline_schema, typed, ParamError, Source};

type Build = dyn Fn(&Map<String, Value>, &[f64]) -> Result<Box<dyn Aggregator>, Vec<ParamError>>
    + Send
    + Sync;

/// One rule: what `chorus plugins list` shows, and how to build it from its knobs.
pub struct RuleEntry {
    pub name: String,
    pub version: String,
    pub description: String,
    /// JSON Schema of the rule's knobs (the params without `rule`).
    pub schema: Value,
    pub source: Source,
    build: Box<Build>,
}

impl std::fmt::Debug for RuleEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RuleEntry({} {}, {})",
            self.name, self.version, self.source
        )
    }
}

impl RuleEntry {
    pub fn new(
        name: String,
        version: String,
        description: String,
        schema: Value,
        source: Source,
        build: Box<Build>,
    ) -> Self {
        RuleEntry {
            name,
            version,
            description,
            schema,
            source,
            build,
        }
    }

    /// Checks `knobs` and builds the rule for groups with these public population shares
    /// (summing to 1; `mean` with `weighted: true` reads them).
    pub fn build(
        &self,
        knobs: &Map<String, Value>,
        populations: &[f64],
    ) -> Result<Box<dyn Aggregator>, Vec<ParamError>> {
        (self.build)(knobs, populations)
    }

    /// Whether the rule's schema lists `knob` as one of its properties.
    pub fn takes(&self, knob: &str) -> bool {
        self.schema["properties"].get(knob).is_some()
    }
}

/// Checks a built-in's typed knobs and builds it for these population shares.
type Make<P> = fn(P, &[f64]) -> Result<Box<dyn Aggregator>, ParamError>;

/// A built-in rule: its knobs are the serde type `P` (which rejects unknown knobs) and `make`
/// checks their ranges and builds it.
pub(super) fn builtin<P: DeserializeOwned + JsonSchema + 'static>(
    name: &str,
    description: &str,
    make: Make<P>,
) -> RuleEntry {
    RuleEntry::new(
        name.to_owned(),
        env!("CARGO_PKG_VERSION").to_owned(),
        description.to_owned(),
        inline_schema::<P>(),
        Source::BuiltIn,
        Box::new(move |knobs, populations| {
            let p: P = typed(knobs).map_err(|e| vec![e])?;
            make(p, populations).map_err(|e| vec![e])
        }),
    )
}

/// The rules a pipeline can name: the built-ins, then what its plugins add.
#[derive(Debug)]
pub struct Rules(Vec<RuleEntry>);

impl Default for Rules {
    fn default() -> Self {
        Rules(super::builtins())
    }
}

impl Rules {
    /// Adds a rule; a name that is taken is an error naming both sources.
    pub fn add(&mut self, entry: RuleEntry) -> Result<(), String> {
        if let Some(old) = self.get(&entry.name) {
            return Err(format!(
                "rule `{}` of {} clashes with the rule of the same name from {}",
                entry.name, entry.source, old.source
            ));
        }
        self.0.push(entry);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&RuleEntry> {
        self.0.iter().find(|e| e.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &RuleEntry> {
        self.0.iter()
    }

    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|e| e.name.as_str()).collect()
    }
}
