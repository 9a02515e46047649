//! A model's tensors by name, from a GGUF file or a Hugging Face directory, as float32 CPU
//! tensors under one internal naming with shapes checked against the [`ModelConfig`].
//!
//! The internal names are the transformers ones without the `model.` prefix
//! (`embed_tokens.weight`, `layers.3.self_attn.q_proj.weight`, `norm.weight`,
//! `lm_head.weight`), so the transformer has one spelling to ask for. GGUF files get their
//! llama.cpp names mapped (as `convert_hf_to_gguf.py` writes them) and, for llama, the q/k rows
//! that the converter permuted for llama.cpp's RoPE put back in transformers' order, so both
//! sources give bit-identical weights. Every expected tensor must be present with the
//! expected shape and nothing else may be present: a tensor the transformer would not use
//! (RoPE frequency factors, an extra bias) means the file describes a model it does not
//! implement.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use tch::{Kind, Tensor};

use crate::config::{Arch, ModelConfig};
use crate::gguf::{Gguf, GgufError};

#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("{path}: tensor `{tensor}` is missing")]
    Missing { path: PathBuf, tensor: String },
    #[error("{path}: tensor `{tensor}` has shape {found:?}, expected {expected:?} (from the model's configuration)")]
    Shape {
        path: PathBuf,
        tensor: String,
        expected: Vec<i64>,
        found: Vec<i64>,
    },
    #[error("{path}: unexpected tensor `{tensor}`\n  hint: the {arch} architecture as implemented here has no such tensor; the file describes a variant chorus does not support")]
    Unexpected {
        path: PathBuf,
        tensor: String,
        arch: &'static str,
    },
    #[error("{path}: tensor `{tensor}` appears twice (also in {other})")]
    Duplicate {
        path: PathBuf,
        tensor: String,
        other: PathBuf,
    },
    #[error("{dir}: no weights: neither model.safetensors.index.json nor any *.safetensors file\n  hint: only safetensors checkpoints are read; convert a pytorch_model.bin with transformers' save_pretrained(safe_serialization=True)")]
    NoWeights { dir: PathBuf },
    #[error("{path}: {cause}")]
    Read { path: PathBuf, cause: String },
    #[error(transparent)]
    Gguf(#[from] GgufError),
}

/// The tensors of one model: float32, on the CPU, contiguous, named as the module docs say,
/// complete and of the shapes `expected(config)` lists.
pub struct Weights {
    /// Where they came from, for error messages.
    source: PathBuf,
    tensors: BTreeMap<String, Tensor>,
}

impl Weights {
    /// Moves a tensor out (the model takes ownership without copying).
    pub fn take(&mut self, name: &str) -> Result<Tensor, WeightsError> {
        self.tensors
            .remove(name)
            .ok_or_else(|| WeightsError::Missing {
                path: self.source.clone(),
                tensor: name.to_owned(),
            })
    }

    /// Reads and dequantizes every tensor of a GGUF model.
    pub fn from_gguf(gguf: &Gguf, config: &ModelConfig) -> Result<Self, WeightsError> {
        let path = gguf.path.clone();
        let expected = expected(config);
        let mut wanted = BTreeSet::new();
        let mut tensors = BTreeMap::new();
        for (internal, shape) in &expected {
            let name = gguf_name(internal);
            let info = gguf.tensor(&name).ok_or_else(|| WeightsError::Missing {
                path: path.clone(),
                tensor: name.clone(),
            })?;
            // ggml lists dimensions fastest first; a row-major shape is the reverse.
            let found: Vec<i64> = info
                .dims
                .iter()
                .rev()
                .map(|&d| i64::try_from(d).unwrap_or(i64::MAX))
                .collect();
            if &found != shape {
                return Err(WeightsError::Shape {
                    path,
                    tensor: name,
                    expected: shape.clone(),
                    found,
                });
            }
            let values = gguf.dequantize(info)?;
            let torch = |e: tch::TchError| WeightsError::Read {
                path: path.clone(),
                cause: format!("tensor `{name}`: {e}"),
            };
            let mut t = Tensor::f_from_slice(&values)
                .and_then(|t| t.f_reshape(shape.as_slice()))
                .map_err(torch)?;
            if config.arch == Arch::Llama {
                if let Some(n_head) = permuted_heads(internal, config) {
                    t = unpermute(&t, n_head).map_err(torch)?;
                }
            }
            tensors.insert(internal.clone(), t);
            wanted.insert(name);
        }
        if let Some(extra) = gguf.tensors.iter().find(|t| !wanted.contains(&t.name)) {
            return Err(WeightsError::Unexpected {
                path,
                tensor: extra.name.clone(),
                arch: config.arch.gguf_name(),
            });
        }
        Ok(Weights {
            source: path,
            tensors,
        })
    }

    /// Reads the safetensors of a Hugging Face directory: the shards listed by
    /// `model.safetensors.index.json` if there is one, else every `*.safetensors` file.
    /// Any float dtype is converted to float32.
    pub fn from_hf_dir(dir: &Path, config: &ModelConfig) -> Result<Self, WeightsError> {
        let files = safetensors_files(dir)?;
        let mut found: BTreeMap<String, (Tensor, PathBuf, String)> = BTreeMap::new();
        for file in &files {
            let read = Tensor::read_safetensors(file).map_err(|e| WeightsError::Read {
                path: file.clone(),
                cause: e.to_string(),
            })?;
            for (name, tensor) in read {
                let internal = name.strip_prefix("model.").unwrap_or(&name).to_owned();
                // Buffers some older checkpoints saved; transformers recomputes them.
                if internal.ends_with("rotary_emb.inv_freq") {
                    continue;
                }
                // Tied models may still carry a copy of the head; transformers ignores it.
                if config.tied_embeddings && internal == "lm_head.weight" {
                    continue;
                }
                if let Some((_, other, _)) = found.get(&internal) {
                    return Err(WeightsError::Duplicate {
                        path: file.clone(),
                        tensor: name,
                        other: other.clone(),
                    });
                }
                found.insert(internal, (tensor, file.clone(), name));
            }
        }
        let mut tensors = BTreeMap::new();
        for (internal, shape) in expected(config) {
            let (tensor, file, name) =
                found
                    .remove(&internal)
                    .ok_or_else(|| WeightsError::Missing {
                        path: dir.to_path_buf(),
                        tensor: format!("model.{internal}"),
                    })?;
            if tensor.size() != shape {
                return Err(WeightsError::Shape {
                    path: file,
                    tensor: name,
                    expected: shape,
                    found: tensor.size(),
                });
            }
            let tensor = tensor
                .f_to_kind(Kind::Float)
                .and_then(|t| t.f_contiguous())
                .map_err(|e| WeightsError::Read {
                    path: file.clone(),
                    cause: format!("tensor `{name}`: {e}"),
                })?;
            tensors.insert(internal, tensor);
        }
        if let Some((_, (_, file, name))) = found.into_iter().next() {
            return Err(WeightsError::Unexpected {
                path: file,
                tensor: name,
                arch: config.arch.hf_name(),
            });
        }
        Ok(Weights {
            source: dir.to_path_buf(),
            tensors,
        })
    }
}

/// Every tensor a model of this configuration has, with its row-major shape.
fn expected(c: &ModelConfig) -> Vec<(String, Vec<i64>)> {
    let n = |x: usize| x as i64;
    let (h, hd, f) = (n(c.hidden), n(c.head_dim), n(c.ffn));
    let (q, kv) = (n(c.heads) * hd, n(c.kv_heads) * hd);
    let mut out = vec![("embed_tokens.weight".to_owned(), vec![n(c.vocab), h])];
    for l in 0..c.layers {
        let p = format!("layers.{l}.");
        let mut push = |name: &str, shape: Vec<i64>| out.push((format!("{p}{name}"), shape));
        push("input_layernorm.weight", vec![h]);
        push("self_attn.q_proj.weight", vec![q, h]);
        push("self_attn.k_proj.weight", vec![kv, h]);
        push("self_attn.v_proj.weight", vec![kv, h]);
        if c.qkv_bias {
            push("self_attn.q_proj.bias", vec![q]);
            push("self_attn.k_proj.bias", vec![kv]);
            push("self_attn.v_proj.bias", vec![kv]);
        }
        push("self_attn.o_proj.weight", vec![h, q]);
        push("post_attention_layernorm.weight", vec![h]);
        push("mlp.gate_proj.weight", vec![f, h]);
        push("mlp.up_proj.weight", vec![f, h]);
        push("mlp.down_proj.weight", vec![h, f]);
    }
    out.push(("norm.weight".to_owned(), vec![h]));
    if !c.tied_embeddings {
        out.push(("lm_head.weight".to_owned(), vec![n(c.vocab), h]));
    }
    out
}

/// Internal name → llama.cpp name (`convert_hf_to_gguf.py`'s tensor map for llama/qwen2).
fn gguf_name(internal: &str) -> String {
    const GLOBAL: [(&str, &str); 3] = [
        ("embed_tokens.weight", "token_embd.weight"),
        ("norm.weight", "output_norm.weight"),
        ("lm_head.weight", "output.weight"),
    ];
    const LAYER: [(&str, &str); 9] = [
        ("input_layernorm", "attn_norm"),
        ("self_attn.q_proj", "attn_q"),
        ("self_attn.k_proj", "attn_k"),
        ("self_attn.v_proj", "attn_v"),
        ("self_attn.o_proj", "attn_output"),
        ("post_attention_layernorm", "ffn_norm"),
        ("mlp.gate_proj", "ffn_gate"),
        ("mlp.up_proj", "ffn_up"),
        ("mlp.down_proj", "ffn_down"),
    ];
    if let Some((_, g)) = GLOBAL.iter().find(|(i, _)| *i == internal) {
        return (*g).to_owned();
    }
    if let Some(rest) = internal.strip_prefix("layers.") {
        if let Some((layer, tail)) = rest.split_once('.') {
            for (hf, gg) in LAYER {
                if let Some(kind) = tail.strip_prefix(hf).and_then(|t| t.strip_prefix('.')) {
                    return format!("blk.{layer}.{gg}.{kind}");
                }
            }
        }
    }
    // `expected` only produces the names above.
    internal.to_owned()
}

/// The head count a llama GGUF q or k weight was permuted with, if this tensor is one.
fn permuted_heads(internal: &str, c: &ModelConfig) -> Option<i64> {
    if internal.ends_with("self_attn.q_proj.weight") {
        Some(c.heads as i64)
    } else if internal.ends_with("self_attn.k_proj.weight") {
        Some(c.kv_heads as i64)
    } else {
        None
    }
}

/// Inverts llama.cpp's `permute`: the converter wrote
/// `hf.reshape(n_head, 2, head_dim/2, cols).swapaxes(1, 2)` so that each head's two RoPE
/// halves interleave (llama.cpp rotates adjacent pairs); transformers rotates halves.
fn unpermute(t: &Tensor, n_head: i64) -> Result<Tensor, tch::TchError> {
    let (rows, cols) = t.size2()?;
    t.f_reshape([n_head, rows / n_head / 2, 2, cols])?
        .f_transpose(1, 2)?
        .f_reshape([rows, cols])
}

fn safetensors_files(dir: &Path) -> Result<Vec<PathBuf>, WeightsError> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let read = |cause: String| WeightsError::Read {
            path: index.clone(),
            cause,
        };
        let text = std::fs::read_to_string(&index).map_err(|e| read(e.to_string()))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| read(e.to_string()))?;
        let map = json
            .get("weight_map")
            .and_then(serde_json::Value::as_object)
            .ok_or_else(|| read("no `weight_map` object".into()))?;
        let mut files = BTreeSet::new();
        for (tensor, file) in map {
            let file = file
                .as_str()
                .filter(|f| !f.contains('/') && !f.contains('\\'))
                .ok_or_else(|| {
                    read(format!(
                        "`weight_map.{tensor}` should be a file name in this directory"
                    ))
                })?;
            files.insert(dir.join(file));
        }
        if files.is_empty() {
            return Err(read("`weight_map` is empty".into()));
        }
        return Ok(files.into_iter().collect());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| WeightsError::Read {
        path: dir.to_path_buf(),
        cause: e.to_string(),
    })?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| WeightsError::Read {
            path: dir.to_path_buf(),
            cause: e.to_string(),
        })?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "safetensors") && path.is_file() {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err(WeightsError::NoWeights {
            dir: dir.to_path_buf(),
        });
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gguf_names_follow_llama_cpp() {
        assert_eq!(gguf_name("embed_tokens.weight"), "token_embd.weight");
        assert_eq!(gguf_name("lm_head.weight"), "output.weight");
        assert_eq!(
            gguf_name("layers.12.self_attn.k_proj.bias"),
            "blk.12.attn_k.bias"
        );
        assert_eq!(
            gguf_name("layers.0.post_attention_layernorm.weight"),
            "blk.0.ffn_norm.weight"
        );
    }

    #[test]
    fn unpermute_inverts_the_converters_permute() {
        // 2 heads of dimension 4, 3 columns: the converter's permute, written out.
        let hf = Tensor::arange(24, (Kind::Float, tch::Device::Cpu)).reshape([8, 3]);
        let gguf = hf.reshape([2, 2, 2, 3]).transpose(1, 2).reshape([8, 3]);
        assert_ne!(gguf, hf);
        assert_eq!(unpermute(&gguf, 2).unwrap(), hf);
    }
}
