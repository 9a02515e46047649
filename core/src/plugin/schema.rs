//! A plugin's params schema: compiled once when the library is opened, so that a broken
//! schema is the plugin's error at load time and not the user's at run time; and checking a
//! pipeline's params against it in the words the rest of chorus uses (`a.b[2].c`, "unknown
//! knob … did you mean …").
use std::fmt::Write;

use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::Location;
use jsonschema::{ValidationError, Validator};
use serde_json::{Map, Value};

use crate::diagnostic::nearest;

/// Parses `text` and compiles it (draft 2020-12 unless it names another in `$schema`; with
/// jsonschema's network and file resolution off, a remote `$ref` does not compile).
pub(super) fn compile(text: &str) -> Result<(Value, Validator), String> {
    let schema: Value =
        serde_json::from_str(text).map_err(|e| format!("params_schema is not JSON ({e})"))?;
    let validator = jsonschema::validator_for(&schema)
        .map_err(|e| format!("params_schema is not a valid JSON Schema ({e})"))?;
    Ok((schema, validator))
}

/// Every violation of `schema` by `params`, as (path inside params, message).
pub(super) fn check(
    validator: &Validator,
    schema: &Value,
    params: &Map<String, Value>,
) -> Vec<(String, String)> {
    let params = Value::Object(params.clone());
    let mut problems = Vec::new();
    for error in validator.iter_errors(&params) {
        let at = dotted(&params, error.instance_path());
        let unexpected = match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected }
            | ValidationErrorKind::UnevaluatedProperties { unexpected } => unexpected.clone(),
            // `additionalProperties: false` beside no `properties` compiles to a false schema
            // whose error names no key; every key of the object is one.
            ValidationErrorKind::FalseSchema
                if error
                    .schema_path()
                    .as_str()
                    .ends_with("/additionalProperties") =>
            {
                let object = params.pointer(error.instance_path().as_str());
                object
                    .and_then(Value::as_object)
                    .map(|o| o.keys().cloned().collect())
                    .unwrap_or_default()
            }
            _ => {
                problems.push((at, error.to_string()));
                continue;
            }
        };
        let known = known_knobs(schema, &error);
        for knob in unexpected {
            let message = unknown(&knob, &known);
            let path = if at.is_empty() {
                knob
            } else {
                format!("{at}.{knob}")
            };
            problems.push((path, message));
        }
    }
    problems
}

/// "unknown knob `qq`" and what to write instead.
fn unknown(knob: &str, known: &[&str]) -> String {
    match (nearest(knob, known.iter().copied()), known) {
        (Some(best), _) => format!("unknown knob `{knob}`; did you mean `{best}`?"),
        (None, []) => format!("unknown knob `{knob}`; this takes no knobs here"),
        (None, _) => format!("unknown knob `{knob}`; the knobs are {}", known.join(", ")),
    }
}

/// The property names of the (sub)schema whose `additionalProperties` or
/// `unevaluatedProperties` rejected a knob: the schema path minus its last keyword. Empty when
/// that path cannot be followed in the document (through a `$ref`, say).
fn known_knobs<'s>(schema: &'s Value, error: &ValidationError<'_>) -> Vec<&'s str> {
    let keyword = error.schema_path().as_str();
    let parent = keyword.rsplit_once('/').map_or("", |(parent, _)| parent);
    schema
        .pointer(parent)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// A JSON pointer into `root` as `a.b[2].c`: an index where the value is an array, a key
/// otherwise (so an object key "2" stays `.2`).
fn dotted(root: &Value, at: &Location) -> String {
    let mut out = String::new();
    let mut node = Some(root);
    for segment in at.segments() {
        let key = segment.to_string();
        match node {
            Some(Value::Array(items)) => {
                let _ = write!(out, "[{key}]");
                node = key.parse().ok().and_then(|i: usize| items.get(i));
            }
            _ => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&key);
                node = node.and_then(|n| n.get(&key));
            }
        }
    }
    out
}
