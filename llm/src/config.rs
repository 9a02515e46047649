//! The hyper-parameters of a llama or qwen2 model, read from GGUF metadata or a Hugging Face
//! `config.json`.
//!
//! Both sources end in the same [`ModelConfig`], so the weights loader and the transformer never
//! care where a model came from. Anything that would change the computation and that the
//! transformer does not implement (RoPE scaling, sliding-window attention, other activations,
//! biases where the architecture has none) is refused here, by name, instead of silently
//! producing a model that computes something else.
//!
//! Supported `config.json` fields: `architectures` (`LlamaForCausalLM` or `Qwen2ForCausalLM`),
//! `model_type`, `vocab_size`, `hidden_size`, `num_hidden_layers`, `num_attention_heads`,
//! `num_key_value_heads`, `head_dim`, `intermediate_size`, `rope_theta` or
//! `rope_parameters.rope_theta` (transformers 5), `rope_parameters.rope_type` / `rope_scaling`
//! (only `default`/none), `rms_norm_eps`, `tie_word_embeddings`, `max_position_embeddings`,
//! `hidden_act` (only `silu`), `attention_bias` and `mlp_bias` (only false for llama),
//! `use_sliding_window` and `layer_types` (only full attention), `partial_rotary_factor` (only
//! 1), `bos_token_id`, `eos_token_id` (one id or a list), `pad_token_id`. Other fields (dropout,
//! initializer range, dtype, …) do not affect inference and are ignored.
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::gguf::{Gguf, GgufError, Value};

/// The transformer families chorus implements. They differ only in qwen2's q/k/v biases (and
/// in how llama.cpp stores llama's q/k rows, which the weights loader undoes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Qwen2,
}

impl Arch {
    /// The GGUF `general.architecture` value.
    pub fn gguf_name(self) -> &'static str {
        match self {
            Arch::Llama => "llama",
            Arch::Qwen2 => "qwen2",
        }
    }

    /// The transformers class named in `config.json`'s `architectures`.
    pub fn hf_name(self) -> &'static str {
        match self {
            Arch::Llama => "LlamaForCausalLM",
            Arch::Qwen2 => "Qwen2ForCausalLM",
        }
    }

    const ALL: [Arch; 2] = [Arch::Llama, Arch::Qwen2];
}

/// Everything the transformer needs to know about a model's shape and numerics.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub arch: Arch,
    pub vocab: usize,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    /// The MLP's inner width.
    pub ffn: usize,
    pub rope_theta: f64,
    pub rms_eps: f64,
    /// The LM head is the embedding matrix (no separate `lm_head`/`output` tensor).
    pub tied_embeddings: bool,
    /// The longest context the model was trained for (informative: RoPE itself has no limit).
    pub context_length: usize,
    /// q/k/v projections carry biases (qwen2).
    pub qkv_bias: bool,
    pub bos_token_id: Option<i64>,
    /// Generation stops at any of these; empty when the source names none.
    pub eos_token_ids: Vec<i64>,
    pub pad_token_id: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {cause}")]
    Read { path: PathBuf, cause: String },
    #[error("{path}: not a valid config.json: {cause}")]
    Json { path: PathBuf, cause: String },
    #[error("{path}: architecture `{found}` is not supported\n  hint: supported: {supported}")]
    Architecture {
        path: PathBuf,
        found: String,
        supported: String,
    },
    #[error("{path}: {what} is not supported\n  hint: {hint}")]
    Unsupported {
        path: PathBuf,
        what: String,
        hint: String,
    },
    #[error("{path}: `{key}` is missing")]
    Missing { path: PathBuf, key: String },
    #[error("{path}: `{key}` {why}")]
    Invalid {
        path: PathBuf,
        key: String,
        why: String,
    },
    #[error(transparent)]
    Gguf(#[from] GgufError),
}

impl ModelConfig {
    /// Reads a Hugging Face `config.json`.
    pub fn from_hf_json(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            cause: e.to_string(),
        })?;
        let raw: HfConfig = serde_json::from_str(&text).map_err(|e| ConfigError::Json {
            path: path.to_path_buf(),
            cause: e.to_string(),
        })?;
        raw.into_config(path)
    }

    /// Reads the GGUF metadata of a llama or qwen2 model. Whether the head is tied depends on
    /// the file having an `output.weight` tensor, as in llama.cpp.
    pub fn from_gguf(gguf: &Gguf) -> Result<Self, ConfigError> {
        let path = gguf.path.as_path();
        let found = gguf.architecture()?;
        let arch = Arch::ALL
            .into_iter()
            .find(|a| a.gguf_name() == found)
            .ok_or_else(|| ConfigError::Architecture {
                path: path.to_path_buf(),
                found: found.to_owned(),
                supported: Arch::ALL.map(Arch::gguf_name).join(", "),
            })?;
        let a = arch.gguf_name();
        let meta = Meta { gguf, path };
        if let Some(kind) = gguf.get(&format!("{a}.rope.scaling.type")) {
            if kind.as_str() != Some("none") {
                return Err(unsupported(
                    path,
                    format!("RoPE scaling `{}`", describe(kind)),
                    "only plain RoPE (no scaling) is implemented",
                ));
            }
        }
        if gguf.get(&format!("{a}.attention.sliding_window")).is_some() {
            return Err(unsupported(
                path,
                format!("`{a}.attention.sliding_window`"),
                "only full (non-windowed) attention is implemented",
            ));
        }
        let hidden = meta.usize(&format!("{a}.embedding_length"))?;
        let heads = meta.usize(&format!("{a}.attention.head_count"))?;
        let kv_heads = meta
            .usize_opt(&format!("{a}.attention.head_count_kv"))?
            .unwrap_or(heads);
        let head_key = format!("{a}.attention.key_length");
        let head_dim = match meta.usize_opt(&head_key)? {
            Some(d) => d,
            None => even_split(path, &format!("{a}.embedding_length"), hidden, heads)?,
        };
        if let Some(v) = meta.usize_opt(&format!("{a}.attention.value_length"))? {
            if v != head_dim {
                return Err(unsupported(
                    path,
                    format!("value heads of {v} dimensions with key heads of {head_dim} (`{a}.attention.value_length`)"),
                    "keys and values must have the same head dimension",
                ));
            }
        }
        if let Some(rot) = meta.usize_opt(&format!("{a}.rope.dimension_count"))? {
            if rot != head_dim {
                return Err(unsupported(
                    path,
                    format!("RoPE over {rot} of {head_dim} head dimensions (`{a}.rope.dimension_count`)"),
                    "only RoPE over the whole head is implemented",
                ));
            }
        }
        let vocab = match meta.usize_opt(&format!("{a}.vocab_size"))? {
            Some(v) => v,
            None => gguf
                .get("tokenizer.ggml.tokens")
                .and_then(Value::as_array)
                .map(<[Value]>::len)
                .ok_or_else(|| ConfigError::Missing {
                    path: path.to_path_buf(),
                    key: format!("{a}.vocab_size (or tokenizer.ggml.tokens)"),
                })?,
        };
        let config = ModelConfig {
            arch,
            vocab,
            hidden,
            layers: meta.usize(&format!("{a}.block_count"))?,
            heads,
            kv_heads,
            head_dim,
            ffn: meta.usize(&format!("{a}.feed_forward_length"))?,
            rope_theta: meta
                .f64_opt(&format!("{a}.rope.freq_base"))?
                .unwrap_or(10_000.0),
            rms_eps: meta.f64(&format!("{a}.attention.layer_norm_rms_epsilon"))?,
            tied_embeddings: gguf.tensor("output.weight").is_none(),
            context_length: meta.usize(&format!("{a}.context_length"))?,
            qkv_bias: arch == Arch::Qwen2,
            bos_token_id: meta.id_opt("tokenizer.ggml.bos_token_id")?,
            eos_token_ids: meta
                .id_opt("tokenizer.ggml.eos_token_id")?
                .into_iter()
                .collect(),
            pad_token_id: meta.id_opt("tokenizer.ggml.padding_token_id")?,
        };
        config.check(path)?;
        Ok(config)
    }

    /// Consistency checks shared by both sources: what the transformer's reshapes rely on.
    fn check(&self, path: &Path) -> Result<(), ConfigError> {
        let positive = [
            ("vocab size", self.vocab),
            ("hidden size", self.hidden),
            ("layer count", self.layers),
            ("head count", self.heads),
            ("KV head count", self.kv_heads),
            ("head dimension", self.head_dim),
            ("FFN size", self.ffn),
        ];
        for (what, n) in positive {
            if n == 0 {
                return Err(invalid(path, what, "is 0"));
            }
        }
        if !self.heads.is_multiple_of(self.kv_heads) {
            return Err(invalid(
                path,
                "KV head count",
                format!(
                    "({}) does not divide the head count ({})",
                    self.kv_heads, self.heads
                ),
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(invalid(
                path,
                "head dimension",
                format!("({}) is odd; RoPE needs it even", self.head_dim),
            ));
        }
        let finite_positive = [
            ("RoPE base", self.rope_theta),
            ("RMSNorm epsilon", self.rms_eps),
        ];
        for (what, x) in finite_positive {
            if !(x.is_finite() && x > 0.0) {
                return Err(invalid(path, what, format!("({x}) must be finite and > 0")));
            }
        }
        let ids = [self.bos_token_id, self.pad_token_id]
            .into_iter()
            .flatten()
            .chain(self.eos_token_ids.iter().copied());
        for id in ids {
            if id < 0 || id as u64 >= self.vocab as u64 {
                return Err(invalid(
                    path,
                    "special token id",
                    format!("{id} is outside the vocabulary (0..{})", self.vocab),
                ));
            }
        }
        Ok(())
    }
}

fn unsupported(path: &Path, what: String, hint: &str) -> ConfigError {
    ConfigError::Unsupported {
        path: path.to_path_buf(),
        what,
        hint: hint.to_owned(),
    }
}

fn invalid(path: &Path, key: &str, why: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_path_buf(),
        key: key.to_owned(),
        why: why.into(),
    }
}

/// `hidden / heads`, the head dimension when the source does not give one explicitly.
fn even_split(path: &Path, key: &str, hidden: usize, heads: usize) -> Result<usize, ConfigError> {
    if heads == 0 || !hidden.is_multiple_of(heads) {
        return Err(invalid(
            path,
            key,
            format!("({hidden}) is not a multiple of the head count ({heads}) and no head dimension is given"),
        ));
    }
    Ok(hidden / heads)
}

fn describe(v: &Value) -> String {
    match v.as_str() {
        Some(s) => s.to_owned(),
        None => format!("{v:?}"),
    }
}

/// Typed access to GGUF metadata with errors that name the file and key.
struct Meta<'a> {
    gguf: &'a Gguf,
    path: &'a Path,
}

impl Meta<'_> {
    fn missing(&self, key: &str) -> ConfigError {
        ConfigError::Missing {
            path: self.path.to_path_buf(),
            key: key.to_owned(),
        }
    }

    fn usize_opt(&self, key: &str) -> Result<Option<usize>, ConfigError> {
        let Some(v) = self.gguf.get(key) else {
            return Ok(None);
        };
        v.as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| {
                invalid(
                    self.path,
                    key,
                    format!("should be a non-negative integer, found {v:?}"),
                )
            })
    }

    fn usize(&self, key: &str) -> Result<usize, ConfigError> {
        self.usize_opt(key)?.ok_or_else(|| self.missing(key))
    }

    fn f64_opt(&self, key: &str) -> Result<Option<f64>, ConfigError> {
        let Some(v) = self.gguf.get(key) else {
            return Ok(None);
        };
        v.as_f64()
            .map(Some)
            .ok_or_else(|| invalid(self.path, key, format!("should be a number, found {v:?}")))
    }

    fn f64(&self, key: &str) -> Result<f64, ConfigError> {
        self.f64_opt(key)?.ok_or_else(|| self.missing(key))
    }

    fn id_opt(&self, key: &str) -> Result<Option<i64>, ConfigError> {
        Ok(self.usize_opt(key)?.and_then(|n| i64::try_from(n).ok()))
    }
}

/// `eos_token_id` is one id in most configs and a list in some (llama 3, qwen2.5).
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(i64),
    Many(Vec<i64>),
}

#[derive(Deserialize)]
struct RopeParameters {
    rope_theta: Option<f64>,
    rope_type: Option<String>,
    partial_rotary_factor: Option<f64>,
}

/// The supported subset of `config.json` (see the module docs); unknown fields are ignored.
#[derive(Deserialize)]
struct HfConfig {
    architectures: Option<Vec<String>>,
    model_type: Option<String>,
    vocab_size: Option<usize>,
    hidden_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    intermediate_size: Option<usize>,
    rope_theta: Option<f64>,
    rope_parameters: Option<RopeParameters>,
    rope_scaling: Option<serde_json::Value>,
    partial_rotary_factor: Option<f64>,
    rms_norm_eps: Option<f64>,
    tie_word_embeddings: Option<bool>,
    max_position_embeddings: Option<usize>,
    hidden_act: Option<String>,
    attention_bias: Option<bool>,
    mlp_bias: Option<bool>,
    use_sliding_window: Option<bool>,
    layer_types: Option<Vec<String>>,
    bos_token_id: Option<i64>,
    eos_token_id: Option<OneOrMany>,
    pad_token_id: Option<i64>,
}

impl HfConfig {
    fn arch(&self, path: &Path) -> Result<Arch, ConfigError> {
        let supported = || Arch::ALL.map(Arch::hf_name).join(", ");
        let names = self.architectures.as_deref().unwrap_or_default();
        let found = match names {
            [one] => one.as_str(),
            [] => {
                // Some configs name only the model type; accept the two we know.
                return match self.model_type.as_deref() {
                    Some("llama") => Ok(Arch::Llama),
                    Some("qwen2") => Ok(Arch::Qwen2),
                    other => Err(ConfigError::Architecture {
                        path: path.to_path_buf(),
                        found: other.unwrap_or("(none given)").to_owned(),
                        supported: supported(),
                    }),
                };
            }
            many => {
                return Err(ConfigError::Architecture {
                    path: path.to_path_buf(),
                    found: many.join(" + "),
                    supported: supported(),
                })
            }
        };
        Arch::ALL
            .into_iter()
            .find(|a| a.hf_name() == found)
            .ok_or_else(|| ConfigError::Architecture {
                path: path.to_path_buf(),
                found: found.to_owned(),
                supported: supported(),
            })
    }

    fn into_config(self, path: &Path) -> Result<ModelConfig, ConfigError> {
        let arch = self.arch(path)?;
        let need = |v: Option<usize>, key: &str| {
            v.ok_or_else(|| ConfigError::Missing {
                path: path.to_path_buf(),
                key: key.to_owned(),
            })
        };
        if let Some(act) = self.hidden_act.as_deref().filter(|a| *a != "silu") {
            return Err(unsupported(
                path,
                format!("`hidden_act` `{act}`"),
                "only the SwiGLU MLP (`silu`) is implemented",
            ));
        }
        if arch == Arch::Llama && self.attention_bias == Some(true) {
            return Err(unsupported(
                path,
                "`attention_bias: true` for llama".into(),
                "llama is implemented without attention biases",
            ));
        }
        if self.mlp_bias == Some(true) {
            return Err(unsupported(
                path,
                "`mlp_bias: true`".into(),
                "the MLP is implemented without biases",
            ));
        }
        let scaling = self.rope_scaling.as_ref().filter(|v| !v.is_null());
        let rope_type = self
            .rope_parameters
            .as_ref()
            .and_then(|r| r.rope_type.as_deref());
        if let Some(s) = scaling {
            return Err(unsupported(
                path,
                format!("`rope_scaling` {s}"),
                "only plain RoPE (rope_type `default`) is implemented",
            ));
        }
        if let Some(t) = rope_type.filter(|t| *t != "default") {
            return Err(unsupported(
                path,
                format!("`rope_parameters.rope_type` `{t}`"),
                "only plain RoPE (rope_type `default`) is implemented",
            ));
        }
        let partial = self.partial_rotary_factor.or(self
            .rope_parameters
            .as_ref()
            .and_then(|r| r.partial_rotary_factor));
        if let Some(f) = partial.filter(|f| *f != 1.0) {
            return Err(unsupported(
                path,
                format!("`partial_rotary_factor` {f}"),
                "only RoPE over the whole head is implemented",
            ));
        }
        if self.use_sliding_window == Some(true) {
            return Err(unsupported(
                path,
                "`use_sliding_window: true`".into(),
                "only full (non-windowed) attention is implemented",
            ));
        }
        if let Some(t) = self
            .layer_types
            .iter()
            .flatten()
            .find(|t| *t != "full_attention")
        {
            return Err(unsupported(
                path,
                format!("layer type `{t}` in `layer_types`"),
                "only full attention layers are implemented",
            ));
        }
        let hidden = need(self.hidden_size, "hidden_size")?;
        let heads = need(self.num_attention_heads, "num_attention_heads")?;
        let head_dim = match self.head_dim {
            Some(d) => d,
            None => even_split(path, "hidden_size", hidden, heads)?,
        };
        let rope_theta = self
            .rope_parameters
            .as_ref()
            .and_then(|r| r.rope_theta)
            .or(self.rope_theta)
            .unwrap_or(10_000.0);
        let config = ModelConfig {
            arch,
            vocab: need(self.vocab_size, "vocab_size")?,
            hidden,
            layers: need(self.num_hidden_layers, "num_hidden_layers")?,
            heads,
            kv_heads: self.num_key_value_heads.unwrap_or(heads),
            head_dim,
            ffn: need(self.intermediate_size, "intermediate_size")?,
            rope_theta,
            rms_eps: self.rms_norm_eps.unwrap_or(1e-6),
            tied_embeddings: self.tie_word_embeddings.unwrap_or(false),
            context_length: need(self.max_position_embeddings, "max_position_embeddings")?,
            qkv_bias: arch == Arch::Qwen2,
            bos_token_id: self.bos_token_id,
            eos_token_ids: match self.eos_token_id {
                None => Vec::new(),
                Some(OneOrMany::One(id)) => vec![id],
                Some(OneOrMany::Many(ids)) => ids,
            },
            pad_token_id: self.pad_token_id,
        };
        config.check(path)?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<ModelConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, json).unwrap();
        ModelConfig::from_hf_json(&path)
    }

    const BASE: &str = r#""vocab_size": 10, "hidden_size": 8, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 4, "max_position_embeddings": 16"#;

    #[test]
    fn old_top_level_rope_theta_and_defaults() {
        let c = parse(&format!(
            r#"{{"architectures": ["LlamaForCausalLM"], "rope_theta": 500.0, "eos_token_id": [3, 4], {BASE}}}"#
        ))
        .unwrap();
        assert_eq!(c.arch, Arch::Llama);
        assert_eq!((c.rope_theta, c.kv_heads, c.head_dim), (500.0, 2, 4));
        assert_eq!(c.eos_token_ids, vec![3, 4]);
        assert!(!c.tied_embeddings && !c.qkv_bias);
    }

    #[test]
    fn refusals_name_what_is_unsupported() {
        let cases = [
            (
                r#""architectures": ["MistralForCausalLM"]"#,
                "MistralForCausalLM",
            ),
            (
                r#""architectures": ["LlamaForCausalLM"], "rope_scaling": {"type": "linear", "factor": 2.0}"#,
                "rope_scaling",
            ),
            (
                r#""architectures": ["LlamaForCausalLM"], "rope_parameters": {"rope_type": "llama3", "rope_theta": 1.0}"#,
                "llama3",
            ),
            (
                r#""architectures": ["Qwen2ForCausalLM"], "use_sliding_window": true"#,
                "use_sliding_window",
            ),
            (
                r#""architectures": ["LlamaForCausalLM"], "attention_bias": true"#,
                "attention_bias",
            ),
            (
                r#""architectures": ["LlamaForCausalLM"], "hidden_act": "gelu""#,
                "gelu",
            ),
            (
                r#""architectures": ["LlamaForCausalLM"], "num_attention_heads": 3, "hidden_size": 8, "vocab_size": 10, "num_hidden_layers": 1, "intermediate_size": 4, "max_position_embeddings": 16"#,
                "multiple of the head count",
            ),
        ];
        for (fields, needle) in cases {
            let json = if fields.contains("max_position_embeddings") {
                format!("{{{fields}}}")
            } else {
                format!("{{{fields}, {BASE}}}")
            };
            let err = parse(&json).unwrap_err().to_string();
            assert!(err.contains(needle), "{json}\n→ {err}");
            assert!(err.contains("config.json"), "{err}");
        }
        let err = parse(r#"{"architectures": ["Gpt2"], "hidden_size": 8}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("LlamaForCausalLM, Qwen2ForCausalLM"), "{err}");
    }
}
