//! What `chorus model inspect` prints: a model's architecture and sizes, how its tensors are
//! stored, its special tokens and chat template, read from the files without building the
//! model.
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::{ConfigError, ModelConfig};
use crate::gguf::{Gguf, GgufError};

/// A model as its files describe it.
#[derive(Debug)]
pub struct Summary {
    pub path: PathBuf,
    /// `GGUF v3` or `Hugging Face directory`.
    pub format: String,
    pub config: ModelConfig,
    pub bytes: u64,
    /// Storage type → (tensors, elements).
    pub storage: BTreeMap<String, (usize, u64)>,
    /// Role (`bos`, `eos`, `pad`) → (id, text when the files name it).
    pub special: Vec<(&'static str, i64, Option<String>)>,
    pub chat_template: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{path}: {cause}")]
    Read { path: PathBuf, cause: String },
    #[error("{0}: neither a .gguf file nor a folder with config.json\n  hint: pass a GGUF file, a Hugging Face model folder, or a known model's short name")]
    NotAModel(PathBuf),
}

/// Reads the summary of the GGUF file or Hugging Face folder at `path`.
pub fn summarize(path: &Path) -> Result<Summary, InspectError> {
    if path.is_dir() {
        if path.join("config.json").is_file() {
            return hf_dir(path);
        }
        return Err(InspectError::NotAModel(path.to_path_buf()));
    }
    gguf(path)
}

fn gguf(path: &Path) -> Result<Summary, InspectError> {
    let file = Gguf::open(path)?;
    let config = ModelConfig::from_gguf(&file)?;
    let mut storage = BTreeMap::new();
    for t in &file.tensors {
        let e: &mut (usize, u64) = storage.entry(t.ty.name().to_owned()).or_default();
        e.0 += 1;
        e.1 += t.dims.iter().product::<u64>();
    }
    let tokens = file.get("tokenizer.ggml.tokens").and_then(|v| v.as_array());
    let text = |id: i64| {
        tokens
            .and_then(|t| t.get(usize::try_from(id).ok()?))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    Ok(Summary {
        format: format!("GGUF v{}", file.version),
        bytes: std::fs::metadata(path).map_or(0, |m| m.len()),
        storage,
        special: special(&config, text),
        chat_template: file
            .get("tokenizer.chat_template")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        config,
        path: path.to_path_buf(),
    })
}

fn hf_dir(dir: &Path) -> Result<Summary, InspectError> {
    let config = ModelConfig::from_hf_json(&dir.join("config.json"))?;
    let read = |p: PathBuf| -> Result<Vec<u8>, InspectError> {
        std::fs::read(&p).map_err(|e| InspectError::Read {
            path: p.clone(),
            cause: e.to_string(),
        })
    };
    let mut storage = BTreeMap::new();
    let mut bytes = 0;
    let entries = std::fs::read_dir(dir).map_err(|e| InspectError::Read {
        path: dir.to_path_buf(),
        cause: e.to_string(),
    })?;
    for entry in entries.flatten() {
        let p = entry.path();
        if p.extension().is_some_and(|e| e == "safetensors") {
            bytes += entry.metadata().map_or(0, |m| m.len());
            for (dtype, elements) in safetensors_header(&p)? {
                let e: &mut (usize, u64) = storage.entry(dtype).or_default();
                e.0 += 1;
                e.1 += elements;
            }
        }
    }
    // Special tokens' text: tokenizer.json's added tokens, by id.
    let added: BTreeMap<i64, String> = read(dir.join("tokenizer.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            let list = v["added_tokens"].as_array()?.clone();
            Some(
                list.iter()
                    .filter_map(|t| Some((t["id"].as_i64()?, t["content"].as_str()?.to_owned())))
                    .collect(),
            )
        })
        .unwrap_or_default();
    let chat_template = std::fs::read_to_string(dir.join("chat_template.jinja"))
        .ok()
        .or_else(|| {
            let b = read(dir.join("tokenizer_config.json")).ok()?;
            let v: serde_json::Value = serde_json::from_slice(&b).ok()?;
            v["chat_template"].as_str().map(str::to_owned)
        });
    Ok(Summary {
        path: dir.to_path_buf(),
        format: "Hugging Face directory".to_owned(),
        bytes,
        storage,
        special: special(&config, |id| added.get(&id).cloned()),
        chat_template,
        config,
    })
}

fn special(
    config: &ModelConfig,
    text: impl Fn(i64) -> Option<String>,
) -> Vec<(&'static str, i64, Option<String>)> {
    let mut out = Vec::new();
    if let Some(id) = config.bos_token_id {
        out.push(("bos", id, text(id)));
    }
    for &id in &config.eos_token_ids {
        out.push(("eos", id, text(id)));
    }
    if let Some(id) = config.pad_token_id {
        out.push(("pad", id, text(id)));
    }
    out
}

/// (dtype, elements) of each tensor in a safetensors file's header.
fn safetensors_header(path: &Path) -> Result<Vec<(String, u64)>, InspectError> {
    let bad = |cause: String| InspectError::Read {
        path: path.to_path_buf(),
        cause,
    };
    use std::io::Read as _;
    let mut file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(|e| bad(e.to_string()))?;
    let len = u64::from_le_bytes(len);
    if len > 100 << 20 {
        return Err(bad(format!("a safetensors header of {len} bytes")));
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header)
        .map_err(|e| bad(e.to_string()))?;
    let header: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| bad(format!("bad header: {e}")))?;
    Ok(header
        .into_iter()
        .filter(|(k, _)| k != "__metadata__")
        .map(|(_, v)| {
            let dtype = v["dtype"].as_str().unwrap_or("?").to_owned();
            let elements = v["shape"]
                .as_array()
                .map_or(0, |s| s.iter().filter_map(|d| d.as_u64()).product());
            (dtype, elements)
        })
        .collect())
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        let parameters: u64 = self.storage.values().map(|(_, e)| e).sum();
        writeln!(f, "{}", self.path.display())?;
        writeln!(
            f,
            "  format        {} ({:.1} MB)",
            self.format,
            self.bytes as f64 / 1e6
        )?;
        writeln!(f, "  architecture  {}", c.arch.gguf_name())?;
        writeln!(f, "  parameters    {}", count(parameters))?;
        writeln!(
            f,
            "  layers {}, hidden {}, heads {} ({} key/value, head dim {}), FFN {}, vocab {}",
            c.layers, c.hidden, c.heads, c.kv_heads, c.head_dim, c.ffn, c.vocab
        )?;
        writeln!(
            f,
            "  RoPE base {}, RMSNorm eps {:e}, context {}, head {}{}",
            c.rope_theta,
            // Stored as f32 in GGUF: its shortest form, not the f64 widening's digits.
            c.rms_eps as f32,
            c.context_length,
            if c.tied_embeddings {
                "tied to the embeddings"
            } else {
                "separate"
            },
            if c.qkv_bias { ", q/k/v biases" } else { "" }
        )?;
        writeln!(f, "  tensors")?;
        for (ty, (n, e)) in &self.storage {
            writeln!(f, "    {ty:<6} {n:>4} tensors, {} elements", count(*e))?;
        }
        writeln!(f, "  special tokens")?;
        for (role, id, text) in &self.special {
            writeln!(
                f,
                "    {role:<4} {id:>6}  {}",
                text.as_deref().unwrap_or("?")
            )?;
        }
        match &self.chat_template {
            Some(t) => write!(f, "  chat template\n{}\n", indent(t)),
            None => writeln!(f, "  chat template: none"),
        }
    }
}

/// `134.5 M`, `21.6 k`, `512`.
fn count(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1} k", n as f64 / 1e3),
        _ => format!("{:.1} M", n as f64 / 1e6),
    }
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
