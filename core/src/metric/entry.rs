//! The table of fairness metrics by name, which built-ins and plugins fill alike.
use serde_json::{Map, Value};

use crate::registry::{ParamError, Source};
use chorus_plugin::Metric;

type Build = dyn Fn(&Map<String, Value>) -> Result<Box<dyn Metric>, Vec<ParamError>> + Send + Sync;

/// One metric: what `chorus plugins list` shows, and how to build it from its knobs.
pub struct MetricEntry {
    pub name: String,
    pub version: String,
    pub description: String,
    /// JSON Schema of the metric's knobs (its params without `metric`).
    pub schema: Value,
    /// Whether a larger value is fairer (Jain's index) or less fair (Gini).
    pub higher_is_fairer: bool,
    pub source: Source,
    build: Box<Build>,
}

impl std::fmt::Debug for MetricEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MetricEntry({} {}, {})",
            self.name, self.version, self.source
        )
    }
}

impl MetricEntry {
    pub fn new(
        name: String,
        version: String,
        description: String,
        schema: Value,
        higher_is_fairer: bool,
        source: Source,
        build: Box<Build>,
    ) -> Self {
        MetricEntry {
            name,
            version,
            description,
            schema,
            higher_is_fairer,
            source,
            build,
        }
    }

    pub fn build(&self, knobs: &Map<String, Value>) -> Result<Box<dyn Metric>, Vec<ParamError>> {
        (self.build)(knobs)
    }
}

/// The metrics a pipeline can name: the built-ins, then what its plugins add.
#[derive(Debug)]
pub struct Metrics(Vec<MetricEntry>);

impl Default for Metrics {
    fn default() -> Self {
        Metrics(super::fairness::builtins())
    }
}

impl Metrics {
    /// Adds a metric; a name that is taken is an error naming both sources.
    pub fn add(&mut self, entry: MetricEntry) -> Result<(), String> {
        if let Some(old) = self.get(&entry.name) {
            return Err(format!(
                "metric `{}` of {} clashes with the metric of the same name from {}",
                entry.name, entry.source, old.source
            ));
        }
        self.0.push(entry);
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&MetricEntry> {
        self.0.iter().find(|e| e.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &MetricEntry> {
        self.0.iter()
    }

    pub fn names(&self) -> Vec<&str> {
        self.0.iter().map(|e| e.name.as_str()).collect()
    }

    /// The metrics every evaluation reports, whatever else it asks for.
    pub fn defaults(&self) -> impl Iterator<Item = &MetricEntry> {
        self.0
            .iter()
            .filter(|e| matches!(e.source, Source::BuiltIn))
    }
}
