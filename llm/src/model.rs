//! The llama/qwen2 decoder on libtorch, and [`load`], which makes one from a GGUF file or a
//! Hugging Face directory.
//!
//! The math is transformers' `modeling_llama.py` / `modeling_qwen2.py`: token embedding;
//! per block RMSNorm (in float32) → q/k/v projections (+ biases for qwen2) → RoPE with the
//! "rotate half" convention → grouped-query attention (causal, padding-masked) → output
//! projection → residual; RMSNorm → SwiGLU MLP → residual; a final RMSNorm; an LM head that is
//! the embedding matrix when tied. Positions come from the attention mask (each row's first
//! real token is position 0), so left-padded batches give every row what it would get alone,
//! which is what batched scoring and generation rely on.
//!
//! Speed (CPU fp32 is the main target; the matmuls run near the CPU's peak, so the gains come
//! from not doing work): in a padded batch the projections and the MLP run on the real tokens
//! only; q/k/v are one matmul and gate/up another; attention is libtorch's fused
//! `scaled_dot_product_attention` with native GQA; the KV cache is preallocated and written in
//! place; the LM head is a separate step ([`Model::logits_at`]) so callers compute it only at
//! the positions, and for the vocabulary rows, they need.
use std::path::{Path, PathBuf};

use tch::{Device, Kind, TchError, Tensor};

use crate::config::{ConfigError, ModelConfig};
use crate::gguf::{Gguf, GgufError};
use crate::lora::{Lora, Target};
use crate::weights::{Weights, WeightsError};

/// Where to run a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    #[default]
    Cpu,
    Cuda(usize),
    /// The first CUDA device when libtorch sees one, else the CPU.
    Auto,
}

impl DeviceChoice {
    /// The tch device, or an error when a GPU is asked for and libtorch has none.
    pub fn resolve(self) -> Result<Device, ModelError> {
        match self {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Auto if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
            DeviceChoice::Auto => Ok(Device::Cpu),
            DeviceChoice::Cuda(index) => {
                let count = if tch::Cuda::is_available() {
                    tch::Cuda::device_count()
                } else {
                    0
                };
                if (index as i64) < count {
                    Ok(Device::Cuda(index))
                } else {
                    Err(ModelError::NoCuda { index, count })
                }
            }
        }
    }
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;

    /// `cpu`, `cuda` (device 0), `cuda:N` or `auto`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "cpu" => Ok(DeviceChoice::Cpu),
            "auto" => Ok(DeviceChoice::Auto),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceChoice::Cuda)
                .ok_or_else(|| format!("`{s}` is not a device; use cpu, cuda, cuda:N or auto")),
        }
    }
}

/// The dtype weights and activations are kept in. RMSNorm and the logits are float32 either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    F32,
    /// bfloat16, on CUDA only: CPU bf16 matmuls are slower than fp32 ones on most CPUs.
    Bf16,
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            _ => Err(format!("`{s}` is not a precision; use f32 or bf16")),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    pub device: DeviceChoice,
    pub precision: Precision,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("CUDA device {index} requested, but libtorch sees {count} CUDA device(s)\n  hint: use the cpu (or auto) device, or a CUDA build of libtorch (LIBTORCH) on a machine with a GPU")]
    NoCuda { index: usize, count: i64 },
    #[error(
        "bf16 is supported on CUDA only (asked for on {device:?})\n  hint: use f32 on the CPU"
    )]
    Bf16OnCpu { device: Device },
    #[error("bad input: {0}")]
    Input(String),
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error("libtorch: {0}")]
    Torch(#[from] TchError),
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: no such file or directory")]
    NotFound { path: PathBuf },
    #[error("{dir}: no config.json\n  hint: a Hugging Face model directory holds config.json and *.safetensors; otherwise pass a .gguf file")]
    NoConfig { dir: PathBuf },
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Weights(#[from] WeightsError),
    #[error("{path}: {cause}")]
    Model {
        path: PathBuf,
        cause: Box<ModelError>,
    },
}

/// A model and the configuration it was built from.
pub struct Loaded {
    pub config: ModelConfig,
    pub model: Model,
}

/// Loads a model: a path to a `.gguf` file, or to a Hugging Face directory (config.json and
/// safetensors). Any dtype on disk (quantized included) becomes `options.precision` on
/// `options.device`.
pub fn load(path: &Path, options: LoadOptions) -> Result<Loaded, LoadError> {
    if !path.exists() {
        return Err(LoadError::NotFound {
            path: path.to_path_buf(),
        });
    }
    let model_err = |cause| LoadError::Model {
        path: path.to_path_buf(),
        cause: Box::new(cause),
    };
    // Resolve the device first: a bad request should fail before seconds of dequantizing.
    let device = options.device.resolve().map_err(model_err)?;
    let (config, weights) = if path.is_dir() {
        let json = path.join("config.json");
        if !json.is_file() {
            return Err(LoadError::NoConfig {
                dir: path.to_path_buf(),
            });
        }
        let config = ModelConfig::from_hf_json(&json)?;
        let weights = Weights::from_hf_dir(path, &config)?;
        (config, weights)
    } else {
        let gguf = Gguf::open(path)?;
        let config = ModelConfig::from_gguf(&gguf)?;
        let weights = Weights::from_gguf(&gguf, &config)?;
        (config, weights)
    };
    let model =
        Model::new(config.clone(), weights, device, options.precision).map_err(model_err)?;
    Ok(Loaded { config, model })
}

/// One decoder block's parameters, plain tensors (no autograd state of their own; an adapter
/// such as LoRA adds its low-rank product to the matching slice of a fused projection's output).
struct Block {
    attn_norm: Tensor,
    /// Rows: q (heads × head_dim), k, v (kv_heads × head_dim each); `[rows, hidden]`.
    qkv: Tensor,
    qkv_bias: Option<Tensor>,
    o: Tensor,
    mlp_norm: Tensor,
    /// Rows: gate (ffn), up (ffn); `[2 ffn, hidden]`.
    gate_up: Tensor,
    down: Tensor,
}

/// The transformer. Inference entry points run without autograd; [`Model::forward`] without a
/// cache leaves grad mode to the caller so that adapters can be trained through it.
pub struct Model {
    config: ModelConfig,
    device: Device,
    kind: Kind,
    embed: Tensor,
    blocks: Vec<Block>,
    norm: Tensor,
    /// `None` when tied to `embed`.
    lm_head: Option<Tensor>,
    /// RoPE inverse frequencies, `[head_dim / 2]`, float32.
    inv_freq: Tensor,
}

/// How attention is masked in one forward.
enum Mask {
    /// Every key is visible (one new query per row, no padding).
    None,
    /// Lower-triangular, no padding, no cache: sdpa's own causal path.
    Causal,
    /// A boolean mask, `true` = may attend, broadcastable to `[B, heads, T, keys]`.
    Explicit(Tensor),
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("arch", &self.config.arch)
            .field("layers", &self.config.layers)
            .field("hidden", &self.config.hidden)
            .field("device", &self.device)
            .field("kind", &self.kind)
            .finish()
    }
}

impl Model {
    /// Builds the model from checked weights, moving them to `device` in `precision`.
    pub fn new(
        config: ModelConfig,
        mut weights: Weights,
        device: Device,
        precision: Precision,
    ) -> Result<Self, ModelError> {
        let kind = match precision {
            Precision::F32 => Kind::Float,
            Precision::Bf16 if device.is_cuda() => Kind::BFloat16,
            Precision::Bf16 => return Err(ModelError::Bf16OnCpu { device }),
        };
        let mut take = |name: &str| -> Result<Tensor, ModelError> {
            let t = weights.take(name)?;
            Ok(t.f_to_device(device)?.f_to_kind(kind)?.f_contiguous()?)
        };
        let embed = take("embed_tokens.weight")?;
        let mut blocks = Vec::with_capacity(config.layers);
        for l in 0..config.layers {
            let mut part = |name: &str| take(&format!("layers.{l}.{name}"));
            let qkv = Tensor::f_cat(
                &[
                    part("self_attn.q_proj.weight")?,
                    part("self_attn.k_proj.weight")?,
                    part("self_attn.v_proj.weight")?,
                ],
                0,
            )?;
            let qkv_bias = if config.qkv_bias {
                Some(Tensor::f_cat(
                    &[
                        part("self_attn.q_proj.bias")?,
                        part("self_attn.k_proj.bias")?,
                        part("self_attn.v_proj.bias")?,
                    ],
                    0,
                )?)
            } else {
                None
            };
            let gate_up = Tensor::f_cat(
                &[part("mlp.gate_proj.weight")?, part("mlp.up_proj.weight")?],
                0,
            )?;
            blocks.push(Block {
                attn_norm: part("input_layernorm.weight")?,
                qkv,
                qkv_bias,
                o: part("self_attn.o_proj.weight")?,
                mlp_norm: part("post_attention_layernorm.weight")?,
                gate_up,
                down: part("mlp.down_proj.weight")?,
            });
        }
        let norm = take("norm.weight")?;
        let lm_head = if config.tied_embeddings {
            None
        } else {
            Some(take("lm_head.weight")?)
        };
        // As transformers computes it: 1 / theta^(2i / head_dim), in float32.
        let hd = config.head_dim as i64;
        let exponents = Tensor::f_arange_start_step(0, hd, 2, (Kind::Int64, Device::Cpu))?
            .f_to_kind(Kind::Float)?
            .f_div_scalar(hd)?;
        let inv_freq = Tensor::f_pow_scalar(config.rope_theta, &exponents)?
            .f_reciprocal()?
            .f_to_device(device)?;
        Ok(Model {
            config,
            device,
            kind,
            embed,
            blocks,
            norm,
            lm_head,
            inv_freq,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// An empty KV cache for `batch` rows with room for `capacity` tokens (it grows if needed).
    pub fn new_cache(&self, batch: usize, capacity: usize) -> Result<KvCache, ModelError> {
        let c = &self.config;
        let b = batch as i64;
        let shape = [
            b,
            c.kv_heads as i64,
            capacity.max(1) as i64,
            c.head_dim as i64,
        ];
        let mut keys = Vec::with_capacity(c.layers);
        let mut values = Vec::with_capacity(c.layers);
        for _ in 0..c.layers {
            keys.push(Tensor::f_empty(shape, (self.kind, self.device))?);
            values.push(Tensor::f_empty(shape, (self.kind, self.device))?);
        }
        Ok(KvCache {
            keys,
            values,
            len: 0,
            mask: Tensor::f_ones([b, 0], (Kind::Bool, self.device))?,
            count: Tensor::f_zeros([b], (Kind::Int64, self.device))?,
            batch: b,
        })
    }

    /// Runs the decoder over `ids` (`[B, T]` integer token ids) with `attention_mask` (`[B, T]`,
    /// nonzero = real token, left padding) and returns the final-normed hidden states
    /// `[B, T, hidden]` (zeros in padding slots). With a cache, the tokens continue the cached
    /// ones (positions and mask included) and are appended to it; without, they are whole
    /// sequences.
    pub fn forward(
        &self,
        ids: &Tensor,
        attention_mask: &Tensor,
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor, ModelError> {
        self.forward_with(ids, attention_mask, cache, None)
    }

    /// [`Model::forward`] with LoRA adapters added to the projections they adapt. Without a
    /// cache, gradients flow to the adapters when grad mode is on (the base weights never take
    /// any); `None` is the base model.
    pub fn forward_with(
        &self,
        ids: &Tensor,
        attention_mask: &Tensor,
        cache: Option<&mut KvCache>,
        lora: Option<&Lora>,
    ) -> Result<Tensor, ModelError> {
        match cache {
            None => self.run(ids, attention_mask, None, lora),
            Some(cache) => {
                // Cached keys and values must not hold an autograd graph.
                let _guard = tch::no_grad_guard();
                self.run(ids, attention_mask, Some(cache), lora)
            }
        }
    }

    /// Logits (float32) from final hidden states `[..., hidden]` (e.g. `[B, hidden]` of the last
    /// positions): `[..., vocab]`, or `[..., rows.len()]` for just those vocabulary rows, in
    /// their order — the head is the biggest matmul of a small model, so compute only what is
    /// read.
    pub fn logits_at(&self, hidden: &Tensor, rows: Option<&[i64]>) -> Result<Tensor, ModelError> {
        let h = self.config.hidden as i64;
        if hidden.size().last() != Some(&h) {
            return Err(ModelError::Input(format!(
                "hidden states of shape {:?}, expected [..., {h}]",
                hidden.size()
            )));
        }
        let head = self.lm_head.as_ref().unwrap_or(&self.embed);
        let hidden = hidden.f_to_device(self.device)?.f_to_kind(self.kind)?;
        let logits = match rows {
            None => hidden.f_linear(head, None::<Tensor>)?,
            Some(rows) => {
                let vocab = self.config.vocab as i64;
                if let Some(bad) = rows.iter().find(|&&r| r < 0 || r >= vocab) {
                    return Err(ModelError::Input(format!(
                        "vocabulary row {bad} is outside 0..{vocab}"
                    )));
                }
                let index = Tensor::f_from_slice(rows)?.f_to_device(self.device)?;
                hidden.f_linear(&head.f_index_select(0, &index)?, None::<Tensor>)?
            }
        };
        Ok(logits.f_to_kind(Kind::Float)?)
    }

    /// Checks the inputs, and moves them to the model's device as int64 ids and a bool mask.
    fn inputs(
        &self,
        ids: &Tensor,
        attention_mask: &Tensor,
        cache: Option<&KvCache>,
    ) -> Result<(Tensor, Tensor), ModelError> {
        let bad = |m: String| Err(ModelError::Input(m));
        let size = ids.size();
        if size.len() != 2 || size[0] == 0 || size[1] == 0 {
            return bad(format!(
                "ids of shape {size:?}, expected [batch, tokens], both > 0"
            ));
        }
        if attention_mask.size() != size {
            return bad(format!(
                "attention mask of shape {:?} for ids of shape {size:?}",
                attention_mask.size()
            ));
        }
        if !matches!(
            ids.kind(),
            Kind::Int64 | Kind::Int | Kind::Int16 | Kind::Int8 | Kind::Uint8
        ) {
            return bad(format!("ids of dtype {:?}, expected integers", ids.kind()));
        }
        if let Some(c) = cache {
            if c.batch != size[0] || c.keys.len() != self.blocks.len() {
                return bad(format!(
                    "a KV cache for {} rows and {} layers used with {} rows and {} layers",
                    c.batch,
                    c.keys.len(),
                    size[0],
                    self.blocks.len()
                ));
            }
        }
        let ids = ids.f_to_device(self.device)?.f_to_kind(Kind::Int64)?;
        let (lo, hi) = (
            ids.f_min()?.f_int64_value(&[])?,
            ids.f_max()?.f_int64_value(&[])?,
        );
        let vocab = self.config.vocab as i64;
        if lo < 0 || hi >= vocab {
            return bad(format!(
                "token id {} is outside the vocabulary 0..{vocab}",
                if lo < 0 { lo } else { hi }
            ));
        }
        let mask = attention_mask.f_to_device(self.device)?.f_ne(0)?;
        Ok((ids, mask))
    }

    fn run(
        &self,
        ids: &Tensor,
        attention_mask: &Tensor,
        cache: Option<&mut KvCache>,
        lora: Option<&Lora>,
    ) -> Result<Tensor, ModelError> {
        let (ids, mask) = self.inputs(ids, attention_mask, cache.as_deref())?;
        if cache.as_deref().is_none_or(KvCache::is_empty) {
            if let Some(shared) = SharedPrefix::find(&ids, &mask)? {
                return self.run_shared(&ids, &shared, cache, lora);
            }
        }
        self.run_tokens(&ids, &mask, cache, lora)
    }

    /// Runs left-padded rows that all start with the same `shared.len` tokens: the prefix once,
    /// as a batch of one, then every row's rest against the prefix's keys and values (copied
    /// into each row's cache). Prompts built from one template (a chat system turn, survey
    /// instructions) share long prefixes, so this skips most of a batch's work. The hidden
    /// states are the same as a plain forward's, in the same layout.
    fn run_shared(
        &self,
        ids: &Tensor,
        shared: &SharedPrefix,
        cache: Option<&mut KvCache>,
        lora: Option<&Lora>,
    ) -> Result<Tensor, ModelError> {
        let (b, t) = ids.size2()?;
        let p = shared.len;
        let device = self.device;
        let row0 = ids
            .f_get(0)?
            .f_narrow(0, t - shared.lens[0], p)?
            .f_unsqueeze(0)?;
        let mut prefix_cache = self.new_cache(1, p as usize)?;
        let prefix = self.run_tokens(
            &row0,
            &Tensor::f_ones([1, p], (Kind::Bool, device))?,
            Some(&mut prefix_cache),
            lora,
        )?;
        // The rest of each row, right-aligned in `s` columns.
        let rests: Vec<i64> = shared.lens.iter().map(|len| len - p).collect();
        let s = rests.iter().copied().max().unwrap_or(0);
        let rest_mask = Tensor::f_arange(s, (Kind::Int64, device))?
            .f_unsqueeze(0)?
            .f_ge_tensor(
                &Tensor::f_from_slice(&rests)?
                    .f_to_device(device)?
                    .f_neg()?
                    .f_add_scalar(s)?
                    .f_unsqueeze(1)?,
            )?;
        let mut own = None;
        let cache = match cache {
            Some(c) => c,
            None => own.insert(self.new_cache(b as usize, (p + s) as usize)?),
        };
        cache.fill_from_prefix(&prefix_cache)?;
        let rest = self.run_tokens(&ids.f_narrow(1, t - s, s)?, &rest_mask, Some(cache), lora)?;
        // Back to the input layout: the rests are right-aligned already; the prefix goes to
        // each row's first real slots (overwriting the zeros of the rests' padding).
        let hidden = self.config.hidden as i64;
        let out = Tensor::f_cat(
            &[
                Tensor::f_zeros([b, t - s, hidden], (self.kind, device))?,
                rest,
            ],
            1,
        )?
        .f_view([b * t, hidden])?;
        let slots: Vec<i64> = (0..b)
            .flat_map(|row| {
                let first = row * t + t - shared.lens[row as usize];
                first..first + p
            })
            .collect();
        let slots = Tensor::f_from_slice(&slots)?.f_to_device(device)?;
        let prefix = prefix.f_view([p, hidden])?.f_repeat([b, 1])?;
        Ok(out
            .f_index_copy(0, &slots, &prefix)?
            .f_view([b, t, hidden])?)
    }

    /// The decoder over checked inputs (int64 ids and a bool mask on the model's device).
    fn run_tokens(
        &self,
        ids: &Tensor,
        mask: &Tensor,
        mut cache: Option<&mut KvCache>,
        lora: Option<&Lora>,
    ) -> Result<Tensor, ModelError> {
        let (b, t) = ids.size2()?;
        // A real token's position is the number of real tokens before it in its row.
        let before = mask.f_cumsum(1, Kind::Int64)?.f_sub_scalar(1)?;
        let (past, key_mask, positions) = match cache.as_deref_mut() {
            None => (0, mask.shallow_clone(), before),
            Some(c) => {
                c.reserve(c.len + t)?;
                let positions = before.f_add(&c.count.f_unsqueeze(1)?)?;
                (c.len, Tensor::f_cat(&[&c.mask, mask], 1)?, positions)
            }
        };
        let attn_mask = attention_mask_for(&key_mask, past, t)?;
        let layout = Layout::new(mask)?;
        let (cos, sin) = self.rope_tables(&layout.pack(&positions.f_flatten(0, 1)?)?)?;
        let mut x = Tensor::f_embedding(
            &self.embed,
            &layout.pack(&ids.f_flatten(0, 1)?)?,
            -1,
            false,
            false,
        )?;
        for (l, block) in self.blocks.iter().enumerate() {
            let layer_cache = cache.as_deref_mut().map(|c| (c, l));
            let step = Step {
                cos: &cos,
                sin: &sin,
                mask: &attn_mask,
                layout: &layout,
                lora: lora.map(|lora| (lora, l)),
            };
            x = self.block(&x, block, &step, layer_cache)?;
        }
        if let Some(c) = cache {
            c.len = past + t;
            c.count = c
                .count
                .f_add(&mask.f_sum_dim_intlist(1, false, Kind::Int64)?)?;
            c.mask = key_mask;
        }
        let x = self.rms_norm(&x, &self.norm)?;
        Ok(layout
            .unpack(&x)?
            .f_view([b, t, self.config.hidden as i64])?)
    }

    /// cos and sin of `positions × inv_freq`, each half repeated (`[tokens, 1, head_dim]`,
    /// broadcast over heads), computed in float32 as transformers does.
    fn rope_tables(&self, positions: &Tensor) -> Result<(Tensor, Tensor), ModelError> {
        let freqs = positions
            .f_to_kind(Kind::Float)?
            .f_unsqueeze(-1)?
            .f_mul(&self.inv_freq)?;
        let emb = Tensor::f_cat(&[&freqs, &freqs], -1)?.f_unsqueeze(1)?;
        Ok((
            emb.f_cos()?.f_to_kind(self.kind)?,
            emb.f_sin()?.f_to_kind(self.kind)?,
        ))
    }

    fn rms_norm(&self, x: &Tensor, weight: &Tensor) -> Result<Tensor, ModelError> {
        let h = [self.config.hidden as i64];
        let eps = self.config.rms_eps;
        if x.kind() == Kind::Float {
            return Ok(x.f_rms_norm(h, Some(weight), eps)?);
        }
        // Normalize in float32, then scale in the model dtype, as transformers does.
        let normed = x
            .f_to_kind(Kind::Float)?
            .f_rms_norm(h, None::<Tensor>, eps)?
            .f_to_kind(x.kind())?;
        Ok(normed.f_mul(weight)?)
    }

    /// One decoder block over the packed tokens `x` (`[tokens, hidden]`).
    fn block(
        &self,
        x: &Tensor,
        block: &Block,
        step: &Step<'_>,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Result<Tensor, ModelError> {
        let Step {
            cos,
            sin,
            mask,
            layout,
            lora,
        } = *step;
        let c = &self.config;
        let (nh, nkv, hd, f) = (
            c.heads as i64,
            c.kv_heads as i64,
            c.head_dim as i64,
            c.ffn as i64,
        );
        let (b, t) = (layout.batch, layout.len);
        let h = self.rms_norm(x, &block.attn_norm)?;
        let qkv = adapt(
            lora,
            &h,
            h.f_linear(&block.qkv, block.qkv_bias.as_ref())?,
            &[
                (Target::Q, nh * hd),
                (Target::K, nkv * hd),
                (Target::V, nkv * hd),
            ],
        )?
        .f_view([-1, nh + 2 * nkv, hd])?;
        // RoPE on q and k together: they are adjacent heads of the fused output.
        let qk = rotate(&qkv.f_narrow(1, 0, nh + nkv)?, cos, sin)?;
        let v = qkv.f_narrow(1, nh + nkv, nkv)?;
        // Attention needs the [B, heads, T, head_dim] layout.
        let (qk, v) = if layout.is_packed() {
            let all =
                layout
                    .unpack(&Tensor::f_cat(&[&qk, &v], 1)?)?
                    .f_view([b, t, nh + 2 * nkv, hd])?;
            (
                all.f_narrow(2, 0, nh + nkv)?,
                all.f_narrow(2, nh + nkv, nkv)?,
            )
        } else {
            (qk.f_view([b, t, nh + nkv, hd])?, v.f_view([b, t, nkv, hd])?)
        };
        let q = qk.f_narrow(2, 0, nh)?.f_transpose(1, 2)?;
        let k = qk.f_narrow(2, nh, nkv)?.f_transpose(1, 2)?;
        let v = v.f_transpose(1, 2)?;
        let (k, v) = match cache {
            Some((cache, layer)) => cache.append(layer, &k, &v)?,
            None => (k, v),
        };
        let (explicit, causal) = match mask {
            Mask::None => (None, false),
            Mask::Causal => (None, true),
            Mask::Explicit(m) => (Some(m), false),
        };
        let attn = Tensor::f_scaled_dot_product_attention(
            &q,
            &k,
            &v,
            explicit,
            0.0,
            causal,
            None::<f64>,
            nh != nkv,
        )?
        .f_transpose(1, 2)?
        .f_reshape([b * t, nh * hd])?;
        let attn = layout.pack(&attn)?;
        let o = adapt(
            lora,
            &attn,
            attn.f_linear(&block.o, None::<Tensor>)?,
            &[(Target::O, c.hidden as i64)],
        )?;
        let x = x.f_add(&o)?;
        let h = self.rms_norm(&x, &block.mlp_norm)?;
        let gate_up = adapt(
            lora,
            &h,
            h.f_linear(&block.gate_up, None::<Tensor>)?,
            &[(Target::Gate, f), (Target::Up, f)],
        )?;
        let act = gate_up
            .f_narrow(-1, 0, f)?
            .f_silu()?
            .f_mul(&gate_up.f_narrow(-1, f, f)?)?;
        let down = adapt(
            lora,
            &act,
            act.f_linear(&block.down, None::<Tensor>)?,
            &[(Target::Down, c.hidden as i64)],
        )?;
        Ok(x.f_add(&down)?)
    }
}

/// What every block of one forward shares.
#[derive(Clone, Copy)]
struct Step<'a> {
    cos: &'a Tensor,
    sin: &'a Tensor,
    mask: &'a Mask,
    layout: &'a Layout,
    /// The adapters and this block's index.
    lora: Option<(&'a Lora, usize)>,
}

/// `out` (a projection of `x`, possibly several fused along the last dimension with the
/// widths of `parts`) plus the adapters' deltas of the parts that have one.
fn adapt(
    lora: Option<(&Lora, usize)>,
    x: &Tensor,
    out: Tensor,
    parts: &[(Target, i64)],
) -> Result<Tensor, TchError> {
    let Some((lora, layer)) = lora else {
        return Ok(out);
    };
    let deltas = parts
        .iter()
        .map(|&(t, _)| lora.delta(layer, t, x))
        .collect::<Result<Vec<_>, _>>()?;
    if deltas.iter().all(Option::is_none) {
        return Ok(out);
    }
    if let [(_, _)] = parts {
        return out.f_add(deltas[0].as_ref().expect("checked above"));
    }
    let mut start = 0;
    let mut pieces = Vec::with_capacity(parts.len());
    for (&(_, width), delta) in parts.iter().zip(&deltas) {
        let piece = out.f_narrow(-1, start, width)?;
        pieces.push(match delta {
            Some(d) => piece.f_add(d)?,
            None => piece,
        });
        start += width;
    }
    Tensor::f_cat(&pieces, -1)
}

/// Where the real tokens of a `[B, T]` batch are. Without padding every slot is one, and
/// packing is the identity; with padding, the projections and the MLP (nearly all the work)
/// run on the real tokens only, packed as `[tokens, ...]`, and only attention sees the padded
/// layout — a batch of prompts of different lengths costs what its real tokens cost.
struct Layout {
    batch: i64,
    len: i64,
    /// Flat indices (into `B × T`) of the real tokens, when some slots are padding.
    real: Option<Tensor>,
}

impl Layout {
    fn new(mask: &Tensor) -> Result<Self, TchError> {
        let (batch, len) = mask.size2()?;
        let padded = mask.f_all()?.f_int64_value(&[])? == 0;
        let real = if padded {
            Some(mask.f_flatten(0, 1)?.f_nonzero()?.f_squeeze_dim(1)?)
        } else {
            None
        };
        Ok(Layout { batch, len, real })
    }

    fn is_packed(&self) -> bool {
        self.real.is_some()
    }

    /// `[B × T, ...]` → `[tokens, ...]`.
    fn pack(&self, x: &Tensor) -> Result<Tensor, TchError> {
        match &self.real {
            None => Ok(x.shallow_clone()),
            Some(real) => x.f_index_select(0, real),
        }
    }

    /// `[tokens, ...]` → `[B × T, ...]`, zeros in the padding slots.
    fn unpack(&self, x: &Tensor) -> Result<Tensor, TchError> {
        match &self.real {
            None => Ok(x.shallow_clone()),
            Some(real) => {
                let mut shape = x.size();
                shape[0] = self.batch * self.len;
                Tensor::f_zeros(shape.as_slice(), (x.kind(), x.device()))?.f_index_copy(0, real, x)
            }
        }
    }
}

/// transformers' `q * cos + rotate_half(q) * sin`, `rotate_half(x) = cat(-x2, x1)`.
fn rotate(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor, TchError> {
    let half = x.size().last().copied().unwrap_or(0) / 2;
    let x1 = x.f_narrow(-1, 0, half)?;
    let x2 = x.f_narrow(-1, half, half)?;
    let rotated = Tensor::f_cat(&[&x2.f_neg()?, &x1], -1)?;
    x.f_mul(cos)?.f_add(&rotated.f_mul(sin)?)
}

/// The attention mask of `t` new queries (absolute indices `past..past + t`) over keys
/// `0..past + t` whose validity is `key_mask` (`[B, keys]`). A query sees earlier valid keys and
/// always itself, so padding queries attend to one key instead of none (a fully masked row
/// would make sdpa return NaN, which the next layer's values would carry into real rows).
fn attention_mask_for(key_mask: &Tensor, past: i64, t: i64) -> Result<Mask, TchError> {
    let padded = key_mask.f_all()?.f_int64_value(&[])? == 0;
    if !padded && t == 1 {
        return Ok(Mask::None);
    }
    if !padded && past == 0 {
        return Ok(Mask::Causal);
    }
    let device = key_mask.device();
    let queries = Tensor::f_arange_start(past, past + t, (Kind::Int64, device))?.f_unsqueeze(1)?;
    let keys = Tensor::f_arange(past + t, (Kind::Int64, device))?.f_unsqueeze(0)?;
    let causal = keys.f_le_tensor(&queries)?;
    if !padded {
        return Ok(Mask::Explicit(causal));
    }
    let valid = key_mask.f_unsqueeze(1)?.f_unsqueeze(1)?;
    let mask = causal
        .f_logical_and(&valid)?
        .f_logical_or(&keys.f_eq_tensor(&queries)?)?;
    Ok(Mask::Explicit(mask))
}

/// The leading tokens all rows of a left-padded batch share (see [`Model::run_shared`]).
struct SharedPrefix {
    len: i64,
    /// Real tokens per row.
    lens: Vec<i64>,
}

impl SharedPrefix {
    /// Below this a separate pass for the prefix costs about what it saves.
    const MIN: i64 = 16;

    /// The shared prefix of a batch of two or more left-padded rows, if long enough. Every row
    /// keeps at least one token of its own, so that each has a rest to run.
    fn find(ids: &Tensor, mask: &Tensor) -> Result<Option<Self>, TchError> {
        let (b, t) = ids.size2()?;
        if b < 2 {
            return Ok(None);
        }
        let ids = Vec::<i64>::try_from(ids.f_flatten(0, 1)?)?;
        let mask = Vec::<bool>::try_from(mask.f_flatten(0, 1)?)?;
        let t = t as usize;
        let mut lens = Vec::with_capacity(b as usize);
        let mut rows = Vec::with_capacity(b as usize);
        for (row, valid) in ids.chunks_exact(t).zip(mask.chunks_exact(t)) {
            let len = valid.iter().rev().take_while(|&&v| v).count();
            if valid[..t - len].iter().any(|&v| v) {
                // Not left padding (a gap, or right padding): run it as it is.
                return Ok(None);
            }
            lens.push(len as i64);
            rows.push(&row[t - len..]);
        }
        let limit = rows
            .iter()
            .map(|r| r.len())
            .min()
            .unwrap_or(0)
            .saturating_sub(1);
        let len = (0..limit)
            .take_while(|&i| rows.iter().all(|r| r[i] == rows[0][i]))
            .count() as i64;
        Ok((len >= Self::MIN).then_some(SharedPrefix { len, lens }))
    }
}

/// Keys and values of past tokens for incremental decoding, preallocated per layer
/// (`[B, kv_heads, capacity, head_dim]`) and filled in place; also the past attention mask and
/// each row's count of real tokens (its next position).
pub struct KvCache {
    keys: Vec<Tensor>,
    values: Vec<Tensor>,
    len: i64,
    /// `[B, len]` bool.
    mask: Tensor,
    /// `[B]` int64.
    count: Tensor,
    batch: i64,
}

impl KvCache {
    /// Key/value slots in use per row: real tokens and padding (a shared prefix takes one
    /// slot per token, however long each row's padding was).
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Makes room for `needed` tokens, at least doubling so that growth stays amortized O(1).
    fn reserve(&mut self, needed: i64) -> Result<(), TchError> {
        let capacity = self.keys.first().map_or(0, |k| k.size()[2]);
        if needed <= capacity {
            return Ok(());
        }
        let new_capacity = needed.max(2 * capacity);
        for buffer in self.keys.iter_mut().chain(self.values.iter_mut()) {
            let mut shape = buffer.size();
            shape[2] = new_capacity;
            let grown = Tensor::f_empty(shape.as_slice(), (buffer.kind(), buffer.device()))?;
            grown
                .f_narrow(2, 0, self.len)?
                .f_copy_(&buffer.f_narrow(2, 0, self.len)?)?;
            *buffer = grown;
        }
        Ok(())
    }

    /// Starts an empty cache with the tokens of a one-row cache in every row.
    fn fill_from_prefix(&mut self, prefix: &KvCache) -> Result<(), TchError> {
        let p = prefix.len;
        self.reserve(p)?;
        let pairs = self
            .keys
            .iter()
            .zip(&prefix.keys)
            .chain(self.values.iter().zip(&prefix.values));
        for (dst, src) in pairs {
            // copy_ broadcasts the one row to all.
            dst.f_narrow(2, 0, p)?.f_copy_(&src.f_narrow(2, 0, p)?)?;
        }
        let device = self.count.device();
        self.len = p;
        self.mask = Tensor::f_ones([self.batch, p], (Kind::Bool, device))?;
        self.count = Tensor::f_full([self.batch], p, (Kind::Int64, device))?;
        Ok(())
    }

    /// Writes one layer's new keys/values after the cached ones and returns views of all of
    /// them. `reserve` has made room.
    fn append(
        &mut self,
        layer: usize,
        k: &Tensor,
        v: &Tensor,
    ) -> Result<(Tensor, Tensor), TchError> {
        let t = k.size()[2];
        let end = self.len + t;
        let mut views = Vec::with_capacity(2);
        for (buffer, new) in [(&self.keys[layer], k), (&self.values[layer], v)] {
            buffer.f_narrow(2, self.len, t)?.f_copy_(new)?;
            views.push(buffer.f_narrow(2, 0, end)?);
        }
        let v = views.pop().unwrap_or_else(Tensor::new);
        let k = views.pop().unwrap_or_else(Tensor::new);
        Ok((k, v))
    }
}

/// Left-pads token sequences into `[B, longest]` int64 ids (`pad` before each row's tokens) and
/// the matching int64 attention mask, on `device`.
pub fn left_pad(
    seqs: &[Vec<i64>],
    pad: i64,
    device: Device,
) -> Result<(Tensor, Tensor), ModelError> {
    let longest = seqs.iter().map(Vec::len).max().unwrap_or(0);
    if seqs.is_empty() || longest == 0 {
        return Err(ModelError::Input("no tokens to pad".into()));
    }
    let mut ids = Vec::with_capacity(seqs.len() * longest);
    let mut mask = Vec::with_capacity(seqs.len() * longest);
    for s in seqs {
        let gap = longest - s.len();
        ids.extend(std::iter::repeat_n(pad, gap).chain(s.iter().copied()));
        mask.extend(std::iter::repeat_n(0i64, gap).chain(std::iter::repeat_n(1, s.len())));
    }
    let shape = [seqs.len() as i64, longest as i64];
    Ok((
        Tensor::f_from_slice(&ids)?
            .f_view(shape)?
            .f_to_device(device)?,
        Tensor::f_from_slice(&mask)?
            .f_view(shape)?
            .f_to_device(device)?,
    ))
}
