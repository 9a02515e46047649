//! YAML text → a JSON value tree plus a map from every node's path to its line and column.
//!
//! Overrides (`-s KEY=VALUE`) must apply before validation, and every later error (a wrong
//! type deep in a stage's params, a cycle between stage ids) must still point at the user's
//! line. Deserialising straight from text loses the overrides; deserialising from a value
//! tree loses the positions. So we parse once with saphyr-parser's event stream (a maintained,
//! YAML 1.2 parser that reports markers), build the tree ourselves, and remember where each
//! node came from, keyed by the same dotted path (`stages[2].params.rule`) that
//! serde_path_to_error reports.
use std::collections::HashMap;
use std::path::Path;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};

use crate::diagnostic::{Diagnostic, Location, Origin};

/// Positions of the nodes of one parsed document.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    file: std::path::PathBuf,
    values: HashMap<String, (usize, usize)>,
    keys: HashMap<String, (usize, usize)>,
}

impl SourceMap {
    /// Where the value at `path` starts (falls back to the nearest ancestor that has a place).
    pub fn value(&self, path: &str) -> Option<Location> {
        let mut p = path;
        loop {
            if let Some(&(line, column)) = self.values.get(p) {
                return Some(self.loc(line, column));
            }
            p = parent(p)?;
        }
    }

    /// Where the key of the entry at `path` is written, for errors about the key itself.
    pub fn key(&self, path: &str) -> Option<Location> {
        match self.keys.get(path) {
            Some(&(line, column)) => Some(self.loc(line, column)),
            None => self.value(path),
        }
    }

    /// The origin to blame for `path`: its place in the file, or the file as a whole.
    pub fn origin(&self, path: &str) -> Origin {
        self.value(path)
            .map(Origin::At)
            .unwrap_or_else(|| Origin::File(self.file.clone()))
    }

    pub fn key_origin(&self, path: &str) -> Origin {
        self.key(path)
            .map(Origin::At)
            .unwrap_or_else(|| Origin::File(self.file.clone()))
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    fn loc(&self, line: usize, column: usize) -> Location {
        Location {
            file: self.file.clone(),
            line,
            column,
        }
    }
}

/// The path of `parent` extended by a mapping key.
pub fn child_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

/// The path of `parent` extended by a sequence index.
pub fn child_index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

/// Parses one YAML document. An empty file, a syntax error, a second document, a duplicate
/// key or a non-finite number are errors with a place and a hint.
pub fn parse(file: &Path, text: &str) -> Result<(Value, SourceMap), Diagnostic> {
    let mut builder = Builder {
        map: SourceMap {
            file: file.to_path_buf(),
            ..SourceMap::default()
        },
        anchors: HashMap::new(),
        stack: Vec::new(),
        root: None,
        documents: 0,
    };
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| {
            let m = e.marker();
            Diagnostic::new(
                Origin::At(builder.map.loc(m.line(), m.col() + 1)),
                format!("YAML syntax error: {}", e.info()),
                "check the indentation and quoting around this place (a YAML linter helps)",
            )
        })?;
        builder.event(event, span)?;
    }
    match builder.root {
        Some(Value::Null) | None => Err(Diagnostic::file(
            file,
            "the pipeline file is empty",
            "start from pipelines/quickstart.yaml: a pipeline needs at least `name`, `groups` and `stages`",
        )),
        Some(root) => Ok((root, builder.map)),
    }
}

/// A container being filled, with the path it lives at.
enum Frame {
    Seq {
        path: String,
        anchor: usize,
        items: Vec<Value>,
    },
    Map {
        path: String,
        anchor: usize,
        entries: Map<String, Value>,
        /// A key read and waiting for its value.
        pending: Option<String>,
    },
}

struct Builder {
    map: SourceMap,
    anchors: HashMap<usize, Value>,
    stack: Vec<Frame>,
    root: Option<Value>,
    documents: usize,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), Diagnostic> {
        let at = (span.start.line(), span.start.col() + 1);
        match event {
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(self.error(
                        at,
                        "the file holds more than one YAML document",
                        "keep one pipeline per file: remove the second `---` and what follows",
                    ));
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                // A scalar in key position is a key, never a value.
                if let Some(Frame::Map { pending, path, .. }) = self.stack.last_mut() {
                    if pending.is_none() {
                        let key = text.into_owned();
                        let key_path = child_key(path, &key);
                        self.map.keys.insert(key_path, at);
                        *pending = Some(key);
                        return Ok(());
                    }
                }
                let verbatim =
                    style != ScalarStyle::Plain || tag.as_ref().is_some_and(|t| t.suffix == "str");
                let value = if verbatim {
                    Value::String(text.into_owned())
                } else {
                    resolve_plain(&text).ok_or_else(|| {
                        self.error(
                            at,
                            format!("`{text}` is not a finite number"),
                            "use a finite number here (`.inf` and `.nan` are not accepted)",
                        )
                    })?
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, value.clone());
                }
                self.push_value(value, at)?;
            }
            Event::Alias(anchor) => {
                let value = self.anchors.get(&anchor).cloned().unwrap_or(Value::Null);
                self.push_value(value, at)?;
            }
            Event::SequenceStart(anchor, _) => {
                let path = self.next_path(at)?;
                self.stack.push(Frame::Seq {
                    path,
                    anchor,
                    items: Vec::new(),
                });
            }
            Event::MappingStart(anchor, _) => {
                let path = self.next_path(at)?;
                self.stack.push(Frame::Map {
                    path,
                    anchor,
                    entries: Map::new(),
                    pending: None,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (value, anchor) = match self.stack.pop() {
                    Some(Frame::Seq { items, anchor, .. }) => (Value::Array(items), anchor),
                    Some(Frame::Map {
                        entries, anchor, ..
                    }) => (Value::Object(entries), anchor),
                    None => return Ok(()),
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, value.clone());
                }
                self.attach(value, at)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The path the next value will live at, recorded with its position.
    fn next_path(&mut self, at: (usize, usize)) -> Result<String, Diagnostic> {
        let path = match self.stack.last() {
            None => String::new(),
            Some(Frame::Seq { path, items, .. }) => child_index(path, items.len()),
            Some(Frame::Map {
                path,
                pending: Some(key),
                ..
            }) => child_key(path, key),
            Some(Frame::Map { pending: None, .. }) => {
                return Err(self.error(
                    at,
                    "a mapping key must be a plain value, not a list or a mapping",
                    "write keys as plain words, e.g. `seed: 7`",
                ))
            }
        };
        self.map.values.insert(path.clone(), at);
        Ok(path)
    }

    fn push_value(&mut self, value: Value, at: (usize, usize)) -> Result<(), Diagnostic> {
        self.next_path(at)?;
        self.attach(value, at)
    }

    /// Puts a finished value into its parent container (or makes it the document root).
    fn attach(&mut self, value: Value, at: (usize, usize)) -> Result<(), Diagnostic> {
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map {
                entries,
                pending,
                path,
                ..
            }) => {
                let key = pending.take().unwrap_or_default();
                if entries.contains_key(&key) {
                    let message = format!("duplicate key `{key}` in `{}`", display_path(path));
                    return Err(self.error(at, message, "remove one of the two entries"));
                }
                entries.insert(key, value);
            }
        }
        Ok(())
    }

    fn error(&self, at: (usize, usize), message: impl Into<String>, hint: &str) -> Diagnostic {
        Diagnostic::new(Origin::At(self.map.loc(at.0, at.1)), message, hint)
    }
}

/// How a path reads in a message; the document root has no name of its own.
pub fn display_path(path: &str) -> &str {
    if path.is_empty() {
        "the top level"
    } else {
        path
    }
}

/// YAML 1.2 core-schema resolution of a plain scalar; `None` for `.inf`/`.nan`, which JSON
/// (and every numeric field of a pipeline) cannot hold.
fn resolve_plain(text: &str) -> Option<Value> {
    Some(match text {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => {
            if let Some(n) = parse_int(text) {
                Value::Number(n)
            } else if looks_like_float(text) {
                let f: f64 = text.parse().ok()?;
                Value::Number(Number::from_f64(f)?)
            } else if is_special_float(text) {
                return None;
            } else {
                Value::String(text.to_owned())
            }
        }
    })
}

fn parse_int(text: &str) -> Option<Number> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (radix, digits) = if let Some(h) = digits.strip_prefix("0x") {
        (16, h)
    } else if let Some(o) = digits.strip_prefix("0o") {
        (8, o)
    } else {
        (10, digits)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if neg {
        let v = i64::try_from(magnitude).ok()?;
        Some(Number::from(-v))
    } else {
        Some(Number::from(magnitude))
    }
}

fn looks_like_float(text: &str) -> bool {
    let body = text.trim_start_matches(['-', '+']);
    !body.is_empty()
        && body
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == '.')
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
        && body.chars().any(|c| c.is_ascii_digit())
}

fn is_special_float(text: &str) -> bool {
    let body = text.trim_start_matches(['-', '+']);
    matches!(body, ".inf" | ".Inf" | ".INF" | ".nan" | ".NaN" | ".NAN")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> (Value, SourceMap) {
        parse(Path::new("p.yaml"), text).unwrap()
    }

    #[test]
    fn scalars_resolve_like_yaml_core_schema() {
        let (v, _) = parse_ok("a: 3\nb: -4\nc: 0.5\nd: true\ne: ~\nf: '3'\ng: hello\nh: 1e-3\n");
        assert_eq!(v["a"], 3);
        assert_eq!(v["b"], -4);
        assert_eq!(v["c"], 0.5);
        assert_eq!(v["d"], true);
        assert_eq!(v["e"], Value::Null);
        assert_eq!(v["f"], "3");
        assert_eq!(v["g"], "hello");
        assert_eq!(v["h"], 0.001);
    }

    #[test]
    fn positions_are_recorded_per_path() {
        let text = "name: x\nstages:\n  - id: a\n    needs: [b, c]\n";
        let (_, map) = parse_ok(text);
        let at = |p: &str| {
            let l = map.value(p).unwrap();
            (l.line, l.column)
        };
        assert_eq!(at("name"), (1, 7));
        assert_eq!(at("stages[0].id"), (3, 9));
        assert_eq!(at("stages[0].needs[1]"), (4, 16));
        let key = map.key("stages[0].needs").unwrap();
        assert_eq!((key.line, key.column), (4, 5));
        // Unknown paths fall back to the nearest ancestor.
        assert_eq!(at("stages[0].params.rule"), (3, 5));
    }

    #[test]
    fn syntax_errors_and_duplicates_have_places() {
        let err = parse(Path::new("p.yaml"), "a: [1, 2\nb: 3\n").unwrap_err();
        assert!(matches!(err.origin, Origin::At(_)), "{err}");
        let err = parse(Path::new("p.yaml"), "a: 1\na: 2\n").unwrap_err();
        assert!(err.message.contains("duplicate key `a`"), "{err}");
        let err = parse(Path::new("p.yaml"), "a: .inf\n").unwrap_err();
        assert!(err.message.contains("finite"), "{err}");
        let err = parse(Path::new("p.yaml"), "# only a comment\n").unwrap_err();
        assert!(err.message.contains("empty"), "{err}");
    }

    #[test]
    fn anchors_and_aliases_copy_values() {
        let (v, _) = parse_ok("base: &b {x: 1}\nother: *b\n");
        assert_eq!(v["other"]["x"], 1);
    }
}
