//! `-s KEY=VALUE` overrides: the same keys a grid sweeps, applied to the value tree before
//! any check, so an override is validated exactly like the file it changes.
use std::path::Path;

use serde_json::Value;

use super::source::{self, child_key};
use crate::diagnostic::{suggest, Diagnostic, Origin};

/// One `-s KEY=VALUE`, as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub key: String,
    pub value: String,
}

impl std::str::FromStr for Override {
    type Err = String;

    fn from_str(arg: &str) -> Result<Self, String> {
        let (key, value) = arg
            .split_once('=')
            .ok_or_else(|| format!("`{arg}` is not KEY=VALUE (e.g. `aggregate.rule=min`)"))?;
        if key.is_empty() {
            return Err(format!("`{arg}` has an empty key"));
        }
        Ok(Override {
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }
}

impl std::fmt::Display for Override {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// Applies one override and returns the path (in the document) it set.
///
/// A key is either a top-level field, followed into nested mappings (`seed`,
/// `data.questions`), or a stage id and one of its params (`aggregate.rule`).
pub fn apply(file: &Path, doc: &mut Value, ov: &Override) -> Result<String, Diagnostic> {
    let origin = || Origin::Override(file.to_path_buf(), ov.to_string());
    let value = parse_value(&ov.value);
    let top_fields = top_level_fields();
    let (head, rest) = match ov.key.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (ov.key.as_str(), None),
    };
    let path = if top_fields.iter().any(|f| f == head) {
        ov.key.clone()
    } else if let Some(stage_path) = find_stage(doc, head) {
        let Some(param) = rest else {
            return Err(Diagnostic::new(
                origin(),
                format!("`{head}` is a stage; an override must name one of its params"),
                format!("write `-s {head}.PARAM=VALUE`, e.g. `-s {head}.seed=3`"),
            ));
        };
        format!("{stage_path}.params.{param}")
    } else {
        let mut candidates: Vec<String> = top_fields.clone();
        candidates.extend(stage_ids(doc));
        let names: Vec<&str> = candidates.iter().map(String::as_str).collect();
        return Err(Diagnostic::new(
            origin(),
            format!("`{head}` is neither a top-level field nor a stage id"),
            suggest(head, &names, "keys"),
        ));
    };
    set(doc, &path, value).map_err(|missing| {
        Diagnostic::new(
            origin(),
            format!(
                "the path `{missing}` does not exist in the pipeline, so `{}` cannot be set",
                ov.key
            ),
            "override an existing field, or add the section to the YAML file first",
        )
    })?;
    Ok(path)
}

/// Values are read as YAML scalars or flow collections: `3` is a number, `min` a string,
/// `[a, b]` a list; anything unparsable stays a plain string.
fn parse_value(text: &str) -> Value {
    if text.trim().is_empty() {
        return Value::Null;
    }
    match source::parse(Path::new("<override>"), text) {
        Ok((v, _)) => v,
        Err(_) => Value::String(text.to_owned()),
    }
}

fn top_level_fields() -> Vec<String> {
    let schema = super::json_schema();
    schema["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

fn stage_lists(doc: &Value) -> impl Iterator<Item = (&'static str, &Vec<Value>)> {
    let outer = doc
        .get("stages")
        .and_then(Value::as_array)
        .map(|s| ("stages", s));
    let inner = doc
        .get("loop")
        .and_then(|l| l.get("stages"))
        .and_then(Value::as_array)
        .map(|s| ("loop.stages", s));
    outer.into_iter().chain(inner)
}

fn stage_ids(doc: &Value) -> Vec<String> {
    stage_lists(doc)
        .flat_map(|(_, list)| list.iter())
        .filter_map(|s| s.get("id").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

fn find_stage(doc: &Value, id: &str) -> Option<String> {
    stage_lists(doc).find_map(|(prefix, list)| {
        list.iter()
            .position(|s| s.get("id").and_then(Value::as_str) == Some(id))
            .map(|i| format!("{prefix}[{i}]"))
    })
}

/// Sets `path` (dots and `[i]`), creating only the last key (and an empty `params` mapping);
/// returns the first missing prefix otherwise.
fn set(doc: &mut Value, path: &str, value: Value) -> Result<(), String> {
    let segments = split_path(path);
    let mut node = doc;
    let mut walked = String::new();
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match seg {
            Seg::Index(ix) => {
                walked = format!("{walked}[{ix}]");
                node = node
                    .as_array_mut()
                    .and_then(|a| a.get_mut(*ix))
                    .ok_or_else(|| walked.clone())?;
            }
            Seg::Key(key) => {
                walked = child_key(&walked, key);
                let obj = node.as_object_mut().ok_or_else(|| walked.clone())?;
                if last {
                    obj.insert((*key).to_owned(), value);
                    return Ok(());
                }
                if *key == "params" && !obj.contains_key("params") {
                    obj.insert("params".to_owned(), Value::Object(Default::default()));
                }
                node = obj.get_mut(*key).ok_or_else(|| walked.clone())?;
            }
        }
    }
    Ok(())
}

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn split_path(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, indices) = part.split_once('[').map_or((part, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(Seg::Key(key));
        }
        for ix in indices.split('[') {
            if let Ok(n) = ix.trim_end_matches(']').parse() {
                out.push(Seg::Index(n));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "name": "x", "seed": 1,
            "stages": [{"id": "split", "kind": "split"}],
            "loop": {"stages": [{"id": "aggregate", "kind": "evaluate", "params": {"rule": "mean"}}]}
        })
    }

    fn ov(s: &str) -> Override {
        s.parse().unwrap()
    }

    #[test]
    fn top_level_and_stage_params() {
        let mut d = doc();
        assert_eq!(
            apply(Path::new("p.yaml"), &mut d, &ov("seed=3")).unwrap(),
            "seed"
        );
        assert_eq!(d["seed"], 3);
        assert_eq!(
            apply(Path::new("p.yaml"), &mut d, &ov("aggregate.rule=min")).unwrap(),
            "loop.stages[0].params.rule"
        );
        assert_eq!(d["loop"]["stages"][0]["params"]["rule"], "min");
        apply(Path::new("p.yaml"), &mut d, &ov("split.eval_fraction=0.3")).unwrap();
        assert_eq!(d["stages"][0]["params"]["eval_fraction"], 0.3);
    }

    #[test]
    fn unknown_keys_are_errors_with_suggestions() {
        let mut d = doc();
        let e = apply(Path::new("p.yaml"), &mut d, &ov("agregate.rule=min")).unwrap_err();
        assert!(e.hint.contains("did you mean `aggregate`"), "{e}");
        let e = apply(Path::new("p.yaml"), &mut d, &ov("data.questions=3")).unwrap_err();
        assert!(e.message.contains("`data` does not exist"), "{e}");
        assert!("novalue".parse::<Override>().is_err());
    }
}
