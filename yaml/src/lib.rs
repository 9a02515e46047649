//! YAML text → a JSON value tree plus the line and column of every node, keyed by its dotted
//! path (`stages[2].params.rule`, the form serde_path_to_error reports).
//!
//! chorus validates a file after applying overrides (`-s KEY=VALUE`) to its tree, and every
//! later error (a wrong type deep in a stage's params, a cycle between stage ids, a data spec's
//! bad field) must still point at the user's line. Deserialising straight from text loses the
//! overrides; deserialising from a value tree loses the positions. So the workspace parses
//! once with saphyr-parser's event stream (a maintained YAML 1.2 parser that reports markers),
//! builds the tree itself, and remembers where each node came from. What JSON cannot hold
//! (`.inf`, non-string keys, a second document) and what would be silently lost (a duplicate
//! key) is an error with a place and a hint.
use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};

/// A document that does not parse, or holds what JSON cannot.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    /// 1-based.
    pub line: usize,
    /// 1-based.
    pub column: usize,
    pub message: String,
    /// How to fix it.
    pub hint: &'static str,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

impl std::error::Error for Error {}

/// Where each node of a parsed document is written: (line, column), 1-based.
#[derive(Debug, Clone, Default)]
pub struct Positions {
    /// Where the value at a path starts.
    pub values: HashMap<String, (usize, usize)>,
    /// Where the key of a mapping entry is written.
    pub keys: HashMap<String, (usize, usize)>,
}

/// Parses one YAML document; an empty one is `null`.
pub fn parse(text: &str) -> Result<(Value, Positions), Error> {
    let mut builder = Builder {
        positions: Positions::default(),
        anchors: HashMap::new(),
        stack: Vec::new(),
        root: None,
        documents: 0,
    };
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| Error {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: format!("YAML syntax error: {}", e.info()),
            hint: "check the indentation and quoting around this place (a YAML linter helps)",
        })?;
        builder.event(event, span)?;
    }
    Ok((builder.root.unwrap_or(Value::Null), builder.positions))
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
    positions: Positions,
    anchors: HashMap<usize, Value>,
    stack: Vec<Frame>,
    root: Option<Value>,
    documents: usize,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), Error> {
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
                        self.positions.keys.insert(key_path, at);
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
    fn next_path(&mut self, at: (usize, usize)) -> Result<String, Error> {
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
        self.positions.values.insert(path.clone(), at);
        Ok(path)
    }

    fn push_value(&mut self, value: Value, at: (usize, usize)) -> Result<(), Error> {
        self.next_path(at)?;
        self.attach(value, at)
    }

    /// Puts a finished value into its parent container (or makes it the document root).
    fn attach(&mut self, value: Value, at: (usize, usize)) -> Result<(), Error> {
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

    fn error(&self, at: (usize, usize), message: impl Into<String>, hint: &'static str) -> Error {
        Error {
            line: at.0,
            column: at.1,
            message: message.into(),
            hint,
        }
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
/// (and every numeric field of a spec) cannot hold.
fn resolve_plain(text: &str) -> Option<Value> {
    Some(match text {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => {
            if let Ok(i) = text.parse::<i64>() {
                Value::from(i)
            } else if let Some(hex) = text.strip_prefix("0x") {
                i64::from_str_radix(hex, 16).map_or_else(|_| string(text), Value::from)
            } else if let Some(oct) = text.strip_prefix("0o") {
                i64::from_str_radix(oct, 8).map_or_else(|_| string(text), Value::from)
            } else if is_float(text) {
                Value::Number(Number::from_f64(text.parse().ok()?)?)
            } else if matches!(
                text.trim_start_matches(['+', '-']).to_lowercase().as_str(),
                ".inf" | ".nan"
            ) {
                return None;
            } else {
                string(text)
            }
        }
    })
}

fn string(text: &str) -> Value {
    Value::String(text.to_owned())
}

/// The core schema's float syntax: `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`.
fn is_float(text: &str) -> bool {
    let t = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (mantissa, exponent) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (t, None),
    };
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => (!int.is_empty() || !frac.is_empty()) && digits(int) && digits(frac),
        None => !mantissa.is_empty() && digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scalars_resolve_like_yaml_core_schema() {
        let (v, _) = parse(
            "a: 3\nb: -4\nc: 0.5\nd: true\ne: ~\nf: '3'\ng: hello\nh: 1e-3\n\
                            i: 0x1f\nj: .5\nk: 1.2.3\nl: e3\nm: !!str 7\n",
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"a": 3, "b": -4, "c": 0.5, "d": true, "e": null, "f": "3", "g": "hello",
                   "h": 0.001, "i": 31, "j": 0.5, "k": "1.2.3", "l": "e3", "m": "7"})
        );
    }

    #[test]
    fn positions_are_recorded_per_path() {
        let text = "name: x\nstages:\n  - id: a\n    needs: [b, c]\n";
        let (_, at) = parse(text).unwrap();
        assert_eq!(at.values["name"], (1, 7));
        assert_eq!(at.values["stages[0].id"], (3, 9));
        assert_eq!(at.values["stages[0].needs[1]"], (4, 16));
        assert_eq!(at.keys["stages[0].needs"], (4, 5));
    }

    #[test]
    fn errors_have_places() {
        let place = |text: &str| {
            let e = parse(text).unwrap_err();
            (e.line, e.column, e.message)
        };
        assert_eq!(
            place("a: 1\na: 2\n"),
            (2, 4, "duplicate key `a` in `the top level`".to_owned())
        );
        assert_eq!(place("a: [1, 2\n").0, 2);
        assert_eq!(
            place("a: .inf\n"),
            (1, 4, "`.inf` is not a finite number".to_owned())
        );
        assert!(place("a: 1\n---\nb: 2\n")
            .2
            .contains("more than one YAML document"));
        assert!(place("? [a]\n: 1\n")
            .2
            .contains("mapping key must be a plain value"));
        assert_eq!(parse("# only a comment\n").unwrap().0, Value::Null);
    }

    #[test]
    fn anchors_and_aliases_copy_values() {
        let (v, _) = parse("base: &b {x: 1}\nother: *b\nlist: &l [1, 2]\nagain: *l\n").unwrap();
        assert_eq!(v["other"]["x"], 1);
        assert_eq!(v["again"], json!([1, 2]));
    }
}
