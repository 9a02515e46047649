//! Chat templates: the Jinja template a model ships to turn a conversation into its prompt
//! text, rendered as transformers' `apply_chat_template` renders it.
//!
//! Templates are written for transformers, which renders them with Jinja2 (`trim_blocks`,
//! `lstrip_blocks`, the loop-controls extension, a `raise_exception` function and a
//! `tojson` filter of its own). chorus renders them with minijinja, a real Jinja engine,
//! set up the same way: minijinja-contrib's pycompat supplies the Python string and dict
//! methods templates call (`.strip()`, `.startswith()`, `.items()`), and `tojson` writes
//! Python's `json.dumps` format (`", "` and `": "` separators, non-ASCII kept) rather than
//! minijinja's HTML-safe compact JSON.
//!
//! transformers also offers templates a `strftime_now` function; chorus does not, so that a
//! rendered prompt never depends on the day it was rendered (chorus runs are reproducible).
//! Templates that use it guard it with `is defined` and fall back to a fixed date.
//!
//! The variables are `messages` (a list of `{role, content}`), `add_generation_prompt`, and
//! `bos_token` / `eos_token` when the model has them (undefined otherwise, as in
//! transformers).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Value};

use crate::gguf::Gguf;

/// What templates are registered under (it appears in minijinja's error locations).
const NAME: &str = "chat_template";

/// One turn of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("{origin}: the model has no chat template ({looked})\n  hint: prompt it with plain text instead of messages")]
    Missing { origin: PathBuf, looked: String },
    #[error("{origin}: {cause}")]
    Read { origin: PathBuf, cause: String },
    #[error("{origin}: the chat template does not parse: {detail}")]
    Syntax { origin: PathBuf, detail: String },
    #[error("{origin}: the chat template refused the conversation: {message}")]
    Raised { origin: PathBuf, message: String },
    #[error("{origin}: rendering the chat template failed: {detail}")]
    Render { origin: PathBuf, detail: String },
}

/// A model's chat template, parsed, with the special tokens it may refer to.
pub struct ChatTemplate {
    env: Environment<'static>,
    /// The GGUF file or model folder it came from, for messages.
    origin: PathBuf,
    bos_token: Option<String>,
    eos_token: Option<String>,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("origin", &self.origin)
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .finish()
    }
}

/// The message `raise_exception` was called with, carried as the error's source so that it
/// is reported as the template's own refusal rather than as a template bug.
#[derive(Debug)]
struct Raised(String);

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Raised {}

impl ChatTemplate {
    /// `tokenizer.chat_template` of a GGUF file; BOS/EOS are the texts of its
    /// `tokenizer.ggml.bos_token_id`/`eos_token_id` tokens.
    pub fn from_gguf(gguf: &Gguf) -> Result<ChatTemplate, ChatError> {
        let origin = gguf.path.clone();
        let key = "tokenizer.chat_template";
        let source = match gguf.get(key) {
            None => {
                return Err(ChatError::Missing {
                    origin,
                    looked: format!("no {key} key"),
                })
            }
            Some(v) => v.as_str().ok_or_else(|| ChatError::Read {
                origin: origin.clone(),
                cause: format!("{key} is a {}, not a string", v.type_name()),
            })?,
        };
        let token = |key: &str| {
            let id = gguf.get(key)?.as_u64()?;
            let tokens = gguf.get("tokenizer.ggml.tokens")?.as_array()?;
            tokens
                .get(usize::try_from(id).ok()?)?
                .as_str()
                .map(str::to_owned)
        };
        ChatTemplate::new(
            origin,
            source.to_owned(),
            token("tokenizer.ggml.bos_token_id"),
            token("tokenizer.ggml.eos_token_id"),
        )
    }

    /// A Hugging Face model folder's template: `chat_template.jinja` (transformers 5), else
    /// `tokenizer_config.json`'s `chat_template` (a string, or a list of named templates of
    /// which `default` is taken). BOS/EOS come from `tokenizer_config.json`.
    pub fn from_dir(dir: &Path) -> Result<ChatTemplate, ChatError> {
        let read = |path: &Path| match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ChatError::Read {
                origin: path.to_path_buf(),
                cause: e.to_string(),
            }),
        };
        let config_path = dir.join("tokenizer_config.json");
        let config: Option<serde_json::Value> = read(&config_path)?
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|e| ChatError::Read {
                origin: config_path.clone(),
                cause: format!("not valid JSON: {e}"),
            })?;
        let from_config = || -> Option<String> {
            match config.as_ref()?.get("chat_template")? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Array(named) => named
                    .iter()
                    .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                    .and_then(|t| t.get("template")?.as_str().map(str::to_owned)),
                _ => None,
            }
        };
        let source = match read(&dir.join("chat_template.jinja"))? {
            Some(text) => text,
            None => from_config().ok_or_else(|| ChatError::Missing {
                origin: dir.to_path_buf(),
                looked: "no chat_template.jinja, no chat_template in tokenizer_config.json".into(),
            })?,
        };
        let token = |name: &str| {
            crate::tokenizer::token_text(config.as_ref()?.get(name)?).map(str::to_owned)
        };
        ChatTemplate::new(
            dir.to_path_buf(),
            source,
            token("bos_token"),
            token("eos_token"),
        )
    }

    fn new(
        origin: PathBuf,
        source: String,
        bos_token: Option<String>,
        eos_token: Option<String>,
    ) -> Result<ChatTemplate, ChatError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> Result<Value, Error> {
                Err(Error::new(ErrorKind::InvalidOperation, "raise_exception")
                    .with_source(Raised(message)))
            },
        );
        env.add_filter("tojson", tojson);
        env.add_template_owned(NAME, source)
            .map_err(|e| ChatError::Syntax {
                origin: origin.clone(),
                detail: describe(&e),
            })?;
        Ok(ChatTemplate {
            env,
            origin,
            bos_token,
            eos_token,
        })
    }

    /// The prompt text of `messages`; `add_generation_prompt` appends the opening of the
    /// assistant's turn, for the model to continue.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, ChatError> {
        let token = |t: &Option<String>| t.as_deref().map_or(Value::UNDEFINED, Value::from);
        let ctx = minijinja::context! {
            messages => Value::from_serialize(messages),
            add_generation_prompt => add_generation_prompt,
            bos_token => token(&self.bos_token),
            eos_token => token(&self.eos_token),
        };
        let template = self.env.get_template(NAME).map_err(|e| self.failed(e))?;
        template.render(ctx).map_err(|e| self.failed(e))
    }

    fn failed(&self, e: Error) -> ChatError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(cause) = source {
            if let Some(Raised(message)) = cause.downcast_ref::<Raised>() {
                return ChatError::Raised {
                    origin: self.origin.clone(),
                    message: message.clone(),
                };
            }
            source = cause.source();
        }
        ChatError::Render {
            origin: self.origin.clone(),
            detail: describe(&e),
        }
    }
}

/// minijinja's error with the template line it points at.
fn describe(e: &Error) -> String {
    let what = e
        .detail()
        .map_or_else(|| e.kind().to_string(), str::to_owned);
    match e.line() {
        Some(line) => format!("{what} (template line {line})"),
        None => what,
    }
}

/// transformers' `tojson`: Python's `json.dumps(x, ensure_ascii=False, indent=indent,
/// sort_keys=sort_keys)`.
fn tojson(value: Value, kwargs: Kwargs) -> Result<String, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let mut out = String::new();
    write_json(&mut out, &value, indent, sort_keys.unwrap_or(false), 0)?;
    Ok(out)
}

fn write_json(
    out: &mut String,
    v: &Value,
    indent: Option<usize>,
    sort_keys: bool,
    level: usize,
) -> Result<(), Error> {
    // With an indent Python puts each item on its own line and drops the space after commas.
    let open = |out: &mut String, level: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * level));
        }
    };
    let comma = if indent.is_some() { "," } else { ", " };
    match v.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number if v.is_integer() => out.push_str(&v.to_string()),
        ValueKind::Number => out.push_str(&python_float(f64::try_from(v.clone())?)),
        ValueKind::String => json_string(out, v.as_str().unwrap_or_default()),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(comma);
                }
                open(out, level + 1);
                write_json(out, item, indent, sort_keys, level + 1)?;
            }
            open(out, level);
            out.push(']');
        }
        ValueKind::Map => {
            let mut keys: Vec<Value> = v.try_iter()?.collect();
            if keys.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            if sort_keys {
                keys.sort();
            }
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(comma);
                }
                open(out, level + 1);
                // Python writes non-string keys (numbers, booleans) as strings.
                match key.as_str() {
                    Some(k) => json_string(out, k),
                    None => {
                        let mut k = String::new();
                        write_json(&mut k, key, None, false, 0)?;
                        json_string(out, &k);
                    }
                }
                out.push_str(": ");
                write_json(out, &v.get_item(key)?, indent, sort_keys, level + 1)?;
            }
            open(out, level);
            out.push('}');
        }
        other => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("tojson cannot write a value of kind {other}"),
            ))
        }
    }
    Ok(())
}

/// A JSON string as Python writes it with `ensure_ascii=False`: only `"`, `\` and control
/// characters escaped.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A float as Python's `repr` writes it: the shortest digits that round-trip, positional
/// for exponents -4..16 (`0.0001`, `1e+16`), `NaN` and `Infinity` as `json.dumps` does.
fn python_float(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    // `{:e}` gives the shortest round-trip digits: "-1.25e-7", "1e16".
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1;
        let text = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{text}")
    } else {
        let exp_sign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(source: &str) -> ChatTemplate {
        ChatTemplate::new(
            PathBuf::from("model.gguf"),
            source.into(),
            Some("<s>".into()),
            None,
        )
        .unwrap()
    }

    fn user(content: &str) -> Message {
        Message {
            role: "user".into(),
            content: content.into(),
        }
    }

    #[test]
    fn floats_print_as_python_repr_does() {
        for (x, python) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1.5e-7, "1.5e-07"),
            (0.0001, "0.0001"),
            (123456.789, "123456.789"),
            (1e22, "1e+22"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(python_float(x), python, "{x}");
        }
    }

    #[test]
    fn tojson_writes_python_json_dumps_format() {
        let t = template(
            "{{ {'name': 'café', 'args': [1, 2.5, true, none], 'q': 'say \"hi\"\\n'} | tojson }}|\
             {{ [] | tojson }}|{{ {'b': 1, 'a': {}} | tojson(indent=2, sort_keys=true) }}",
        );
        assert_eq!(
            t.render(&[], false).unwrap(),
            "{\"name\": \"café\", \"args\": [1, 2.5, true, null], \"q\": \"say \\\"hi\\\"\\n\"}|[]|\
             {\n  \"a\": {},\n  \"b\": 1\n}"
        );
    }

    #[test]
    fn python_string_methods_loop_controls_and_block_trimming_work() {
        let t = template(
            "{% for m in messages %}\n  {% if loop.index > 2 %}{% break %}{% endif %}\n\
             [{{ m.content.strip().upper() }}|{{ m['content'].startswith(' a') }}]\n{% endfor %}\
             {{ bos_token }}{{ eos_token }}",
        );
        let messages = [user(" a "), user("b"), user("c")];
        // trim_blocks drops the newline after a tag, lstrip_blocks the indent before one;
        // booleans print as Python's; an undefined eos_token renders as nothing.
        assert_eq!(
            t.render(&messages, false).unwrap(),
            "[A|True]\n[B|False]\n<s>"
        );
    }

    #[test]
    fn raise_exception_is_reported_as_the_templates_refusal() {
        let t = template("{% if messages[0].role != 'system' %}{{ raise_exception('Conversations must start with a system message') }}{% endif %}");
        let e = t.render(&[user("hi")], false).unwrap_err();
        assert!(matches!(e, ChatError::Raised { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "model.gguf: the chat template refused the conversation: Conversations must start with a system message"
        );
    }

    #[test]
    fn syntax_and_runtime_errors_name_the_source_and_line() {
        let e = ChatTemplate::new(
            PathBuf::from("m.gguf"),
            "{% for m in messages %}\n{{ m.content }\n{% endfor %}".into(),
            None,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("m.gguf: the chat template does not parse: "),
            "{e}"
        );
        assert!(e.contains("line 2"), "{e}");

        let t = template("\n{{ messages[0].content + 1 }}");
        let e = t.render(&[user("x")], false).unwrap_err().to_string();
        assert!(
            e.starts_with("model.gguf: rendering the chat template failed: "),
            "{e}"
        );
        assert!(e.contains("line 2"), "{e}");
    }
}
