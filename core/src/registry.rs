//! What a pipeline can name: aggregation rules and fairness metrics, built-in or loaded from
//! the plugin libraries the pipeline lists. One table per kind, filled the same way for both,
//! so a plugin is a peer of a built-in.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::aggregate::{RuleEntry, Rules};
use crate::metric::{MetricEntry, Metrics};
use crate::plugin::{Library, PluginError};

/// Where a rule or metric comes from.
#[derive(Debug, Clone)]
pub enum Source {
    BuiltIn,
    Plugin(Arc<Library>),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::BuiltIn => write!(f, "built-in"),
            Source::Plugin(lib) => write!(f, "plugin {}", lib.path().display()),
        }
    }
}

/// Why params make no rule (or metric). The caller turns it into a diagnostic at the place in
/// the pipeline file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamError {
    /// The params do not have the rule's shape (unknown knob, wrong type), in serde's words,
    /// at `path` inside the params.
    Shape { path: String, message: String },
    /// A knob's value is out of range or inconsistent; `field` is the path to blame inside
    /// the params (empty for the params as a whole), `hint` says what to write instead.
    Invalid {
        field: String,
        message: String,
        hint: String,
    },
}

impl ParamError {
    pub fn invalid(field: &str, message: impl Into<String>, hint: impl Into<String>) -> Self {
        ParamError::Invalid {
            field: field.to_owned(),
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// `value` of `field` is outside `range` (said as "be > 0", "lie in [0, 1)").
    pub fn range(field: &str, value: f64, range: &str, default: f64) -> Self {
        Self::invalid(
            field,
            format!("`{field}` is {value}; it must {range}"),
            format!(
                "set `{field}` to a value that does, or leave it out for the default {default}"
            ),
        )
    }

    /// One line, for errors raised after the file was checked.
    pub fn message(&self) -> &str {
        match self {
            ParamError::Shape { message, .. } | ParamError::Invalid { message, .. } => message,
        }
    }
}

/// Deserialises params into a built-in's type, with serde's path on failure.
pub(crate) fn typed<P: DeserializeOwned>(knobs: &Map<String, Value>) -> Result<P, ParamError> {
    serde_path_to_error::deserialize(Value::Object(knobs.clone())).map_err(|e| ParamError::Shape {
        path: crate::spec::path_string(e.path()),
        message: e.inner().to_string(),
    })
}

/// `P`'s JSON Schema with every subschema inlined, so it can stand alone (`chorus plugins
/// list`) or be embedded in the pipeline schema.
pub(crate) fn inline_schema<P: JsonSchema>() -> Value {
    let settings = schemars::generate::SchemaSettings::draft2020_12().with(|s| {
        s.inline_subschemas = true;
    });
    let mut schema = settings
        .into_generator()
        .into_root_schema_for::<P>()
        .to_value();
    if let Some(map) = schema.as_object_mut() {
        map.remove("$schema");
        map.remove("title");
    }
    schema
}

/// The rules and metrics of one run, and the libraries they came from.
#[derive(Debug, Default)]
pub struct Registry {
    pub rules: Rules,
    pub metrics: Metrics,
    libraries: Vec<Arc<Library>>,
}

/// A library that could not be added.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error("{0}")]
    Clash(String),
}

impl Registry {
    /// The libraries loaded, in the order the pipeline lists them.
    pub fn libraries(&self) -> &[Arc<Library>] {
        &self.libraries
    }

    /// Opens the library at `path` (never searched for) and adds its rules and metrics.
    pub fn load(&mut self, path: &Path) -> Result<(), RegistryError> {
        let lib = Library::open(path)?;
        if let Some(same) = self.libraries.iter().find(|l| l.sha256() == lib.sha256()) {
            return Err(RegistryError::Clash(format!(
                "{} is the same library as {}, which is already loaded",
                path.display(),
                same.path().display()
            )));
        }
        for (index, offer) in lib.rules().iter().enumerate() {
            let owner = Arc::clone(&lib);
            let build = Box::new(move |knobs: &Map<String, Value>, populations: &[f64]| {
                check(owner.check_rule_params(index, knobs), &owner)?;
                owner
                    .build_rule(index, knobs, populations)
                    .map_err(|e| vec![refused(e, &owner)])
            });
            let entry = RuleEntry::new(
                offer.name.clone(),
                offer.version.clone(),
                offer.description.clone(),
                offer.schema.clone(),
                Source::Plugin(Arc::clone(&lib)),
                build,
            );
            self.rules.add(entry).map_err(RegistryError::Clash)?;
        }
        for (index, offer) in lib.metrics().iter().enumerate() {
            let owner = Arc::clone(&lib);
            let build = Box::new(move |knobs: &Map<String, Value>| {
                check(owner.check_metric_params(index, knobs), &owner)?;
                owner
                    .build_metric(index, knobs)
                    .map_err(|e| vec![refused(e, &owner)])
            });
            let entry = MetricEntry::new(
                offer.name.clone(),
                offer.version.clone(),
                offer.description.clone(),
                offer.schema.clone(),
                offer.higher_is_fairer.unwrap_or(true),
                Source::Plugin(Arc::clone(&lib)),
                build,
            );
            self.metrics.add(entry).map_err(RegistryError::Clash)?;
        }
        self.libraries.push(lib);
        Ok(())
    }

    /// Every library's identity, for the manifest and the run's hash.
    pub fn library_records(&self) -> Vec<Value> {
        self.libraries
            .iter()
            .map(|lib| {
                serde_json::json!({
                    "path": lib.path(),
                    "sha256": lib.sha256(),
                    "name": lib.name(),
                    "version": lib.version(),
                    "rules": lib.rules().iter().map(|o| format!("{} {}", o.name, o.version)).collect::<Vec<_>>(),
                    "metrics": lib.metrics().iter().map(|o| format!("{} {}", o.name, o.version)).collect::<Vec<_>>(),
                })
            })
            .collect()
    }
}

/// Schema violations of a plugin's params as param errors.
fn check(violations: Vec<(String, String)>, lib: &Library) -> Result<(), Vec<ParamError>> {
    if violations.is_empty() {
        return Ok(());
    }
    Err(violations
        .into_iter()
        .map(|(field, message)| ParamError::Invalid {
            message: if field.is_empty() {
                message
            } else {
                format!("`{field}`: {message}")
            },
            field,
            hint: format!(
                "see the params schema with `chorus plugins inspect {}`",
                lib.path().display()
            ),
        })
        .collect())
}

/// A plugin's refusal to build with params that passed its schema.
fn refused(e: PluginError, lib: &Library) -> ParamError {
    ParamError::Invalid {
        field: String::new(),
        message: e.to_string(),
        hint: format!(
            "see the params schema with `chorus plugins inspect {}`",
            lib.path().display()
        ),
    }
}

/// Where a plugin path written in `file` points: relative paths are relative to the folder
/// of the pipeline file, never to the working directory or a search path.
/// The result is absolute, so the loader never searches its own path list for it.
pub fn resolve_path(file: &Path, written: &str) -> PathBuf {
    let written = Path::new(written);
    let joined = if written.is_absolute() {
        written.to_path_buf()
    } else {
        file.parent().unwrap_or(Path::new("")).join(written)
    };
    std::path::absolute(&joined).unwrap_or(joined)
}
