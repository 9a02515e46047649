//! A YAML file that holds a data spec: on its own (top-level `kind:`), or as a pipeline's
//! `data:` section, so that `chorus data inspect` takes either file as it is.
use std::path::Path;

use serde_json::Value;

use crate::error::DataError;
use crate::spec::DataSpec;

/// What a spec file's data section names.
#[derive(Debug, Clone, PartialEq)]
pub enum SpecFile {
    /// A real dataset to read.
    Data(DataSpec),
    /// A synthetic source (the simulator, named here): no file to inspect.
    Synthetic(String),
}

/// Reads and checks the spec in `path`. Relative paths inside it are relative to the file's
/// folder (pass `path.parent()` to [`DataSpec::load`]).
pub fn read(path: &Path) -> Result<SpecFile, DataError> {
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let (root, _) = chorus_yaml::parse(&text).map_err(|e| DataError::Yaml {
        path: path.to_path_buf(),
        line: e.line,
        column: e.column,
        message: e.message,
        hint: e.hint,
    })?;
    let invalid = |message: String, hint: &str| DataError::Spec {
        path: Some(path.to_path_buf()),
        message,
        hint: hint.to_owned(),
    };
    let not_a_spec = || {
        invalid(
            "neither a data spec (a top-level `kind:`) nor a pipeline with a `data:` mapping"
                .into(),
            "start the file with `kind: wvs_json` or `kind: global_opinion_qa`",
        )
    };
    let (section, prefix) = match (root.get("kind"), root.get("data")) {
        (Some(_), _) => (root.clone(), ""),
        (None, Some(data @ Value::Object(_))) => (data.clone(), "data."),
        _ => return Err(not_a_spec()),
    };
    // Today's pipelines name the simulator as a key (`data: {simulator: {…}}`); a spec names
    // its kind (`kind: simulator`). Either way there is nothing on disk to read.
    let synthetic = section.get("kind").and_then(Value::as_str) == Some("simulator")
        || (section.get("kind").is_none() && section.get("simulator").is_some());
    if synthetic {
        return Ok(SpecFile::Synthetic("simulator".into()));
    }
    if section.get("kind").is_none() {
        return Err(not_a_spec());
    }
    let spec: DataSpec = serde_path_to_error::deserialize(section).map_err(|e| {
        let at = e.path().to_string();
        let place = if at == "." {
            prefix.trim_end_matches('.').to_owned()
        } else {
            format!("{prefix}{at}")
        };
        let message = if place.is_empty() {
            e.inner().to_string()
        } else {
            format!("`{place}`: {}", e.inner())
        };
        invalid(
            message,
            "a data spec is `kind: wvs_json` with groups, text_from, eval_only, min_answered, \
             max_excess, or `kind: global_opinion_qa` with path, groups, eval_only, \
             min_answered, max_excess",
        )
    })?;
    spec.validate().map_err(|e| match e {
        DataError::Spec { message, hint, .. } => DataError::Spec {
            path: Some(path.to_path_buf()),
            message,
            hint,
        },
        other => other,
    })?;
    Ok(SpecFile::Data(spec))
}
