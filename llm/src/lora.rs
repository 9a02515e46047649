//! LoRA adapters (Hu et al. 2022) on the decoder's projections: W x + (α/r) · B A x, with A
//! `[r, in]` and B `[out, r]` the only trainable tensors. B starts at zero, so a fresh adapter
//! leaves the model exactly as it was, and switching adapters off gives back the base model —
//! which is what the KL reference of RLHF needs, without a second copy of the weights.
//!
//! Names follow peft's (`layers.{l}.self_attn.q_proj.lora_A`), so a user can tell which
//! projection a tensor adapts; A is drawn from the caller's RNG as peft draws it
//! (uniform ±1/√in, its `kaiming_uniform_(a=√5)`).
use rand::{Rng as _, RngCore};
use tch::{Kind, Tensor};

use crate::model::Model;

/// A projection of a decoder block that can carry an adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    Q,
    K,
    V,
    O,
    Gate,
    Up,
    Down,
}

impl Target {
    pub const ALL: [Target; 7] = [
        Target::Q,
        Target::K,
        Target::V,
        Target::O,
        Target::Gate,
        Target::Up,
        Target::Down,
    ];

    /// The module's name in transformers and peft.
    pub fn name(self) -> &'static str {
        match self {
            Target::Q => "q_proj",
            Target::K => "k_proj",
            Target::V => "v_proj",
            Target::O => "o_proj",
            Target::Gate => "gate_proj",
            Target::Up => "up_proj",
            Target::Down => "down_proj",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Target::Q | Target::K | Target::V | Target::O => "self_attn",
            Target::Gate | Target::Up | Target::Down => "mlp",
        }
    }

    /// (in, out) features of this projection in `model`.
    fn dims(self, model: &Model) -> (i64, i64) {
        let c = model.config();
        let (hidden, ffn) = (c.hidden as i64, c.ffn as i64);
        let (q, kv) = (
            (c.heads * c.head_dim) as i64,
            (c.kv_heads * c.head_dim) as i64,
        );
        match self {
            Target::Q => (hidden, q),
            Target::K | Target::V => (hidden, kv),
            Target::O => (q, hidden),
            Target::Gate | Target::Up => (hidden, ffn),
            Target::Down => (ffn, hidden),
        }
    }
}

impl std::str::FromStr for Target {
    type Err = LoraError;

    fn from_str(s: &str) -> Result<Self, LoraError> {
        Target::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| LoraError::UnknownTarget(s.to_owned()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoraError {
    #[error("`{0}` is not a projection of this model\n  hint: the adaptable modules are q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj")]
    UnknownTarget(String),
    #[error("LoRA rank {0} must be at least 1")]
    Rank(usize),
    #[error("LoRA alpha {0} must be finite and > 0")]
    Alpha(f64),
    #[error("no target modules: name at least one of q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj")]
    NoTargets,
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// One adapted projection: A `[r, in]`, B `[out, r]`.
#[derive(Debug)]
struct Pair {
    a: Tensor,
    b: Tensor,
}

/// Adapters for every block of one model.
#[derive(Debug)]
pub struct Lora {
    rank: usize,
    /// α / r.
    scale: f64,
    targets: Vec<Target>,
    /// Per block, per target (in `targets` order).
    layers: Vec<Vec<Pair>>,
}

impl Lora {
    /// Fresh adapters (B = 0) of `rank` and scale `alpha / rank` on `targets` of every block of
    /// `model`, on its device, requiring gradients.
    pub fn new<R: RngCore + ?Sized>(
        model: &Model,
        rank: usize,
        alpha: f64,
        targets: &[Target],
        rng: &mut R,
    ) -> Result<Lora, LoraError> {
        if rank == 0 {
            return Err(LoraError::Rank(rank));
        }
        if !(alpha.is_finite() && alpha > 0.0) {
            return Err(LoraError::Alpha(alpha));
        }
        let mut targets = targets.to_vec();
        targets.sort();
        targets.dedup();
        if targets.is_empty() {
            return Err(LoraError::NoTargets);
        }
        let (device, r) = (model.device(), rank as i64);
        let layers = (0..model.config().layers)
            .map(|_| {
                targets
                    .iter()
                    .map(|t| {
                        let (fan_in, fan_out) = t.dims(model);
                        let bound = 1.0 / (fan_in as f64).sqrt();
                        let a: Vec<f32> = (0..r * fan_in)
                            .map(|_| rng.random_range(-bound..bound) as f32)
                            .collect();
                        Ok(Pair {
                            a: Tensor::f_from_slice(&a)?
                                .f_view([r, fan_in])?
                                .f_to_device(device)?
                                .set_requires_grad(true),
                            b: Tensor::f_zeros([fan_out, r], (Kind::Float, device))?
                                .set_requires_grad(true),
                        })
                    })
                    .collect::<Result<Vec<_>, LoraError>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Lora {
            rank,
            scale: alpha / rank as f64,
            targets,
            layers,
        })
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// Every adapter tensor by its peft name, sorted by name (shallow: writing one writes the
    /// adapter; its gradient is the adapter's gradient).
    pub fn named(&self) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = self
            .layers
            .iter()
            .enumerate()
            .flat_map(|(l, pairs)| {
                self.targets.iter().zip(pairs).flat_map(move |(t, p)| {
                    let stem = format!("layers.{l}.{}.{}", t.path(), t.name());
                    [
                        (format!("{stem}.lora_A"), p.a.shallow_clone()),
                        (format!("{stem}.lora_B"), p.b.shallow_clone()),
                    ]
                })
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// An independent copy of the adapter weights (requiring gradients, none accumulated).
    pub fn duplicate(&self) -> Lora {
        let copy = |t: &Tensor| t.detach().copy().set_requires_grad(true);
        Lora {
            rank: self.rank,
            scale: self.scale,
            targets: self.targets.clone(),
            layers: self
                .layers
                .iter()
                .map(|pairs| {
                    pairs
                        .iter()
                        .map(|p| Pair {
                            a: copy(&p.a),
                            b: copy(&p.b),
                        })
                        .collect()
                })
                .collect(),
        }
    }

    /// (α/r) · B A x for block `layer`'s projection `target` on `x` (`[tokens, in]`), in `x`'s
    /// dtype; `None` when that projection has no adapter.
    pub(crate) fn delta(
        &self,
        layer: usize,
        target: Target,
        x: &Tensor,
    ) -> Result<Option<Tensor>, tch::TchError> {
        let Some(i) = self.targets.iter().position(|&t| t == target) else {
            return Ok(None);
        };
        let p = &self.layers[layer][i];
        let (a, b) = (p.a.f_to_kind(x.kind())?, p.b.f_to_kind(x.kind())?);
        Ok(Some(
            x.f_linear(&a, None::<Tensor>)?
                .f_linear(&b, None::<Tensor>)?
                .f_mul_scalar(self.scale)?,
        ))
    }

    /// The merged weight delta (α/r) · B A of one projection, `[out, in]` (for tests and
    /// merged-weight evaluation).
    pub fn merged_delta(&self, layer: usize, target: Target) -> Option<Tensor> {
        let i = self.targets.iter().position(|&t| t == target)?;
        let p = &self.layers[layer][i];
        Some(p.b.detach().mm(&p.a.detach()) * self.scale)
    }
}
