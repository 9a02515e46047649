//! A YAML document → a JSON value, so that a spec file deserialises with serde like any JSON.
//!
//! The workspace reads YAML with saphyr-parser's event stream (no serde_yaml); a spec file
//! needs only its core: mappings, sequences, scalars resolved by the YAML 1.2 core schema,
//! anchors and aliases. What JSON cannot hold (non-string keys, `.inf`, a second document) and
//! what would be silently lost (a duplicate key) is an error with a place.
use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};

#[derive(Debug)]
pub(crate) struct YamlError {
    /// 1-based.
    pub line: usize,
    /// 1-based.
    pub column: usize,
    pub message: String,
}

enum Open {
    Seq(usize, Vec<Value>),
    /// Anchor, entries so far, a key waiting for its value (with where it is written).
    Map(usize, Map<String, Value>, Option<(String, YamlError)>),
}

pub(crate) fn to_json(text: &str) -> Result<Value, YamlError> {
    let mut stack: Vec<Open> = Vec::new();
    let mut anchors: Vec<(usize, Value)> = Vec::new();
    let mut root = None;
    let mut documents = 0;
    for item in Parser::new_from_str(text) {
        let (event, span) = item.map_err(|e| YamlError {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: e.info().to_owned(),
        })?;
        let fail = |message: String| error(&span, message);
        let (value, anchor) = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(fail("a second YAML document; a spec file holds one".into()));
                }
                continue;
            }
            Event::SequenceStart(anchor, _) => {
                stack.push(Open::Seq(anchor, Vec::new()));
                continue;
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Open::Map(anchor, Map::new(), None));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                Some(Open::Seq(anchor, items)) => (Value::Array(items), anchor),
                Some(Open::Map(anchor, entries, _)) => (Value::Object(entries), anchor),
                None => continue,
            },
            Event::Scalar(text, style, anchor, tag) => {
                if let Some(Open::Map(_, _, key @ None)) = stack.last_mut() {
                    let key_text = text.into_owned();
                    let duplicate = error(&span, format!("duplicate key `{key_text}`"));
                    *key = Some((key_text, duplicate));
                    continue;
                }
                let verbatim =
                    style != ScalarStyle::Plain || tag.is_some_and(|t| t.suffix == "str");
                let value = if verbatim {
                    Value::String(text.into_owned())
                } else {
                    plain(&text)
                        .ok_or_else(|| fail(format!("`{text}` is not a number JSON can hold")))?
                };
                (value, anchor)
            }
            Event::Alias(id) => match anchors.iter().rev().find(|(a, _)| *a == id) {
                Some((_, v)) => (v.clone(), 0),
                None => return Err(fail("an alias to an unknown anchor".into())),
            },
            _ => continue,
        };
        if anchor > 0 {
            anchors.push((anchor, value.clone()));
        }
        match stack.last_mut() {
            None => root = Some(value),
            Some(Open::Seq(_, items)) => items.push(value),
            Some(Open::Map(_, entries, key)) => {
                let Some((key, duplicate)) = key.take() else {
                    return Err(fail("a mapping key must be a plain value".into()));
                };
                if entries.contains_key(&key) {
                    return Err(duplicate);
                }
                entries.insert(key, value);
            }
        }
    }
    Ok(root.unwrap_or(Value::Null))
}

fn error(span: &Span, message: String) -> YamlError {
    YamlError {
        line: span.start.line(),
        column: span.start.col() + 1,
        message,
    }
}

/// The YAML 1.2 core schema for an unquoted scalar; `None` for `.inf` and `.nan`.
fn plain(text: &str) -> Option<Value> {
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
    fn a_spec_becomes_json() {
        let text = "kind: wvs_json\ngroups: {US: a/US.json, CN: 'b.json'}\ntext_from: US\n\
                    eval_only: [CN]\nmax_excess: 0.1\nn: 3\nyes: true\nnothing: ~\nquoted: '3'\n";
        assert_eq!(
            to_json(text).unwrap(),
            json!({"kind": "wvs_json", "groups": {"US": "a/US.json", "CN": "b.json"},
                   "text_from": "US", "eval_only": ["CN"], "max_excess": 0.1, "n": 3,
                   "yes": true, "nothing": null, "quoted": "3"})
        );
    }

    #[test]
    fn anchors_and_aliases_are_copied() {
        let text = "a: &x [1, 2]\nb: *x\n";
        assert_eq!(to_json(text).unwrap(), json!({"a": [1, 2], "b": [1, 2]}));
    }

    #[test]
    fn errors_have_places() {
        let e = to_json("a: 1\na: 2\n").unwrap_err();
        assert_eq!(
            (e.line, e.column, e.message.as_str()),
            (2, 1, "duplicate key `a`")
        );
        let e = to_json("a: [1, 2\n").unwrap_err();
        assert_eq!(e.line, 2, "{}", e.message);
        let e = to_json("a: .inf\n").unwrap_err();
        assert_eq!((e.line, e.column), (1, 4));
        assert!(to_json("a: 1\n---\nb: 2\n").is_err());
    }

    #[test]
    fn plain_scalars_follow_the_core_schema() {
        assert_eq!(plain("1e3"), Some(json!(1000.0)));
        assert_eq!(plain(".5"), Some(json!(0.5)));
        assert_eq!(plain("0x1f"), Some(json!(31)));
        assert_eq!(plain("1.2.3"), Some(json!("1.2.3")));
        assert_eq!(plain("e3"), Some(json!("e3")));
        assert_eq!(plain("-.nan"), None);
    }
}
