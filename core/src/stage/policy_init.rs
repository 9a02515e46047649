//! The `policy` stage: the initial policy, whose frozen copy is the KL reference.
use std::sync::{Arc, Mutex};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::artifact::Reading;
use super::{Artifact, Context, Inputs, Stage, StageError};
use chorus_plugin::kit::softmax;
use rand::Rng as _;
use rand_distr::StandardNormal;
use tch::Tensor;

use super::split::Split;
use crate::policy::{
    pretrain, stack, Adam, ChoicePrompts, LlmPolicy, LoraSettings, MlpPolicy, Net, Policy,
    PretrainStats, RolloutKind, Writing,
};
use crate::ppo::UpdateStats;
use crate::rng::Rng;
use chorus_llm::fetch;
use chorus_llm::lora::Target;
use chorus_llm::model::{DeviceChoice, LoadOptions, Precision};
use chorus_llm::pretrained::Pretrained;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyParams {
    /// How rollouts answer: one sampled option (`choice`), a sampled distribution over
    /// options (`distribution`, the MLP only), or a short answer written token by token and
    /// read for an option letter (`generate`, a language model only).
    #[serde(default = "d_rollout")]
    pub rollout: Rollout,
    /// The most tokens a written answer may take (`rollout: generate`).
    #[serde(default = "d_max_tokens")]
    pub max_tokens: u32,
    /// Width of the MLP trunk.
    #[serde(default = "d_hidden")]
    pub hidden: u32,
    /// Hidden layers of the trunk.
    #[serde(default = "d_depth")]
    pub depth: u32,
    /// Initial log σ of the logistic-normal rollouts (distribution mode).
    #[serde(default = "d_log_std")]
    pub init_log_std: f64,
    /// Fit the initial policy to an answer distribution first, so that the KL anchor is a base
    /// with opinions (as a pretrained LLM is) rather than a random network. Absent: no fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrain: Option<Pretrain>,
    /// A pretrained language model answers instead of the MLP: a known model's short name
    /// (`chorus model fetch --list`; fetched on first use), a .gguf file or a Hugging Face
    /// model folder. It reads each question's wording (real survey data) and answers with an
    /// option letter; only `lora`, `device` and `precision` apply to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The adapters a language model trains through (its own weights never change).
    #[serde(default)]
    pub lora: LoraParams,
    /// Where a language model runs: `cpu`, `cuda`, `cuda:N` or `auto`.
    #[serde(default = "d_device")]
    pub device: String,
    /// A language model's weights and activations: `f32`, or `bf16` on CUDA.
    #[serde(default = "d_precision")]
    pub precision: String,
}

/// How rollouts answer; each policy answers in the forms it can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rollout {
    Choice,
    Distribution,
    Generate,
}

/// LoRA settings (Hu et al. 2022; names as peft's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoraParams {
    /// Rank r of each adapter; 8.
    #[serde(default = "d_rank")]
    pub rank: u32,
    /// Scale α (the update is α/r · B A); 16.
    #[serde(default = "d_alpha")]
    pub alpha: f64,
    /// Projections that carry adapters; q_proj and v_proj (peft's default for llama).
    #[serde(default = "d_targets")]
    pub targets: Vec<String>,
}

impl Default for LoraParams {
    fn default() -> Self {
        LoraParams {
            rank: d_rank(),
            alpha: d_alpha(),
            targets: d_targets(),
        }
    }
}

fn d_rank() -> u32 {
    8
}
fn d_alpha() -> f64 {
    16.0
}
fn d_targets() -> Vec<String> {
    vec!["q_proj".to_owned(), "v_proj".to_owned()]
}
fn d_device() -> String {
    "cpu".to_owned()
}
fn d_precision() -> String {
    "f32".to_owned()
}

/// Supervised pre-training of the initial policy on the training questions (never the
/// evaluation ones). It stands in for a base model's pretraining corpus, text written by the
/// population, so it is the one reader of the true distributions besides evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pretrain {
    /// Whose answers the base learned: `population_mean` (the groups' distributions weighted
    /// by population share) or one group's name (a base that leans toward that group).
    pub target: String,
    /// Full-batch Adam steps on the training questions.
    #[serde(default = "d_epochs")]
    pub epochs: u32,
    /// Standard deviation of Gaussian noise added to the target's log-probabilities, per
    /// question and option: how imperfectly the base absorbed its target (0 = exactly).
    #[serde(default)]
    pub noise: f64,
    /// Adam's learning rate for the fit.
    #[serde(default = "d_pretrain_lr")]
    pub lr: f64,
}

/// The `target` that mixes every group by population share.
pub const POPULATION_MEAN: &str = "population_mean";

fn d_epochs() -> u32 {
    300
}
fn d_pretrain_lr() -> f64 {
    0.01
}

fn d_rollout() -> Rollout {
    Rollout::Choice
}
fn d_max_tokens() -> u32 {
    8
}
fn d_hidden() -> u32 {
    64
}
fn d_depth() -> u32 {
    2
}
fn d_log_std() -> f64 {
    -0.5
}

impl PolicyParams {
    /// Checks ranges, and that a pre-training target names `population_mean` or a group.
    pub fn check(&self, groups: &[String]) -> Result<(), (&'static str, String)> {
        if self.model.is_some() {
            return self.check_model();
        }
        if self.rollout == Rollout::Generate || self.max_tokens != d_max_tokens() {
            return Err((
                if self.rollout == Rollout::Generate { "rollout" } else { "max_tokens" },
                "only a language model (`model:`) writes its answers; the MLP answers with `rollout: choice` or `distribution`".to_owned(),
            ));
        }
        if self.hidden == 0 || self.depth == 0 {
            return Err((
                "hidden",
                "`hidden` and `depth` must be at least 1".to_owned(),
            ));
        }
        let Some(pre) = &self.pretrain else {
            return Ok(());
        };
        if pre.target != POPULATION_MEAN && !groups.contains(&pre.target) {
            return Err((
                "pretrain.target",
                format!(
                    "`{}` is neither `{POPULATION_MEAN}` nor a group; the groups are {}",
                    pre.target,
                    groups.join(", ")
                ),
            ));
        }
        if !(pre.noise.is_finite() && pre.noise >= 0.0) {
            return Err((
                "pretrain.noise",
                format!("`noise` must be a finite number ≥ 0, not {}", pre.noise),
            ));
        }
        if !(pre.lr.is_finite() && pre.lr > 0.0) {
            return Err((
                "pretrain.lr",
                format!("`lr` must be a finite number > 0, not {}", pre.lr),
            ));
        }
        if pre.epochs > 100_000 {
            return Err((
                "pretrain.epochs",
                format!("`epochs` must be at most 100000, not {}", pre.epochs),
            ));
        }
        Ok(())
    }
}

impl PolicyParams {
    /// A language-model policy's settings: the MLP's own are left at their defaults.
    fn check_model(&self) -> Result<(), (&'static str, String)> {
        if self.rollout == Rollout::Distribution {
            return Err((
                "rollout",
                "a language model answers with `rollout: choice` (one letter) or `generate` (a written answer); `distribution` is the MLP's".to_owned(),
            ));
        }
        if self.rollout != Rollout::Generate && self.max_tokens != d_max_tokens() {
            return Err((
                "max_tokens",
                "`max_tokens` applies to written answers; set `rollout: generate` or remove it"
                    .to_owned(),
            ));
        }
        if self.max_tokens == 0 || self.max_tokens > 256 {
            return Err((
                "max_tokens",
                format!("`max_tokens` must be 1 to 256, not {}", self.max_tokens),
            ));
        }
        let mlp_only = [
            ("hidden", self.hidden != d_hidden()),
            ("depth", self.depth != d_depth()),
            ("init_log_std", self.init_log_std != d_log_std()),
            ("pretrain", self.pretrain.is_some()),
        ];
        if let Some((field, _)) = mlp_only.iter().find(|(_, set)| *set) {
            return Err((
                field,
                format!("`{field}` applies to the MLP policy, not to a language model (`model:`); remove it"),
            ));
        }
        self.device
            .parse::<DeviceChoice>()
            .map_err(|e| ("device", e))?;
        self.precision
            .parse::<Precision>()
            .map_err(|e| ("precision", e))?;
        self.lora_settings().map(drop)
    }

    fn lora_settings(&self) -> Result<LoraSettings, (&'static str, String)> {
        let l = &self.lora;
        if l.rank == 0 {
            return Err(("lora.rank", "`lora.rank` must be at least 1".to_owned()));
        }
        if !(l.alpha.is_finite() && l.alpha > 0.0) {
            return Err((
                "lora.alpha",
                format!("`lora.alpha` must be a finite number > 0, not {}", l.alpha),
            ));
        }
        if l.targets.is_empty() {
            return Err((
                "lora.targets",
                "`lora.targets` is empty; name at least one projection, e.g. [q_proj, v_proj]"
                    .to_owned(),
            ));
        }
        let targets = l
            .targets
            .iter()
            .map(|t| {
                t.parse::<Target>()
                    .map_err(|e| ("lora.targets", e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LoraSettings {
            rank: l.rank as usize,
            alpha: l.alpha,
            targets,
        })
    }

    /// The language-model policy on `model`, answering the bank's questions.
    fn llm(&self, model: &str, split: &Split, rng: &mut Rng) -> Result<LlmPolicy, StageError> {
        let failed = |e: &dyn std::fmt::Display| StageError(e.to_string());
        let bank = &split.bank;
        let text = bank.questions.wording().ok_or_else(|| {
                StageError(
                    "a language model reads each question's wording, and this dataset has none (the simulator's questions are feature vectors); use real survey data (`data: {kind: wvs_json, ...}`) or the MLP policy".to_owned(),
                )
            })?;
        let path = fetch::resolve(model, &|m| tracing::info!("{m}")).map_err(|e| failed(&e))?;
        let options = LoadOptions {
            device: self.device.parse().map_err(|e: String| failed(&e))?,
            precision: self.precision.parse().map_err(|e: String| failed(&e))?,
        };
        let pretrained = Pretrained::load(&path, options).map_err(|e| failed(&e))?;
        let stop = pretrained.stop_tokens();
        let Pretrained {
            model: base,
            tokenizer,
            chat,
            ..
        } = pretrained;
        let chat = chat.ok_or_else(|| {
            StageError(format!(
                "{}: the model has no chat template, and survey prompts are chat turns; use an instruction-tuned model",
                path.display()
            ))
        })?;
        let prompts = ChoicePrompts::build(&text, &tokenizer, &chat).map_err(|e| failed(&e))?;
        let lora = self.lora_settings().map_err(|(_, e)| StageError(e))?;
        let writing = (self.rollout == Rollout::Generate).then(|| Writing {
            max_tokens: self.max_tokens as usize,
            stop,
            tokenizer,
        });
        LlmPolicy::new(base, prompts, &lora, writing, rng).map_err(|e| failed(&e))
    }
}

/// A policy with everything its training carries from round to round.
#[derive(Debug)]
pub struct PolicyState {
    /// The policy, holding the frozen reference the KL penalty pulls toward.
    pub policy: Box<dyn Policy>,
    pub adam: Adam,
    /// What the update that produced this state did (none for the initial policy).
    pub stats: Option<UpdateStats>,
    /// How the pre-training fit went (the initial policy only, when it was pre-trained).
    pub pretrained: Option<PretrainStats>,
}

impl PolicyState {
    pub fn readings(&self) -> Vec<Reading> {
        if let Some(p) = &self.pretrained {
            return vec![
                Reading::all("pretrain_kl_start", p.kl_start),
                Reading::all("pretrain_kl_end", p.kl_end),
            ];
        }
        let Some(s) = &self.stats else {
            return Vec::new();
        };
        vec![
            Reading::all("train_reward", s.reward),
            Reading::all("train_kl", s.kl),
            Reading::all("train_entropy", s.entropy),
            Reading::all("train_clip_fraction", s.clip_fraction),
            Reading::all("train_value_loss", s.value_loss),
            Reading::all("train_approx_kl", s.approx_kl),
        ]
    }
}

impl Stage for PolicyParams {
    fn run(&self, ctx: &Context<'_>, inputs: &Inputs<'_>) -> Result<Artifact, StageError> {
        if let Some(model) = &self.model {
            let policy = self.llm(model, inputs.split()?, &mut ctx.rng(&["init"]))?;
            let adam = Adam::new(&policy.trainable(), 3e-4);
            return Ok(Artifact::Policy(Arc::new(Mutex::new(PolicyState {
                policy: Box::new(policy),
                adam,
                stats: None,
                pretrained: None,
            }))));
        }
        let bank = &inputs.split()?.bank;
        let questions = &bank.questions;
        let options = match (questions.has_features(), questions.uniform_options()) {
            (true, Some(k)) => k,
            _ => {
                return Err(StageError(
                    "the MLP policy reads question features and answers with one option count, which this dataset does not have; give the policy a language model (`model:`)".to_owned(),
                ))
            }
        };
        let mut rng = ctx.rng(&["init"]);
        let net = Net::new(
            questions.features[0].len(),
            self.hidden as usize,
            self.depth as usize,
            options,
            self.init_log_std,
            &mut rng,
        );
        let pretrained = match &self.pretrain {
            Some(pre) => Some(pre.fit(&net, inputs.split()?, &mut ctx.rng(&["pretrain"]))?),
            None => None,
        };
        let kind = match self.rollout {
            Rollout::Distribution => RolloutKind::Distribution,
            // `check` leaves the MLP only choice and distribution.
            Rollout::Choice | Rollout::Generate => RolloutKind::Choice,
        };
        let policy = MlpPolicy::new(net, kind, options);
        let adam = Adam::new(&policy.trainable(), 3e-4);
        Ok(Artifact::Policy(Arc::new(Mutex::new(PolicyState {
            policy: Box::new(policy),
            adam,
            stats: None,
            pretrained,
        }))))
    }
}

impl Pretrain {
    /// Fits `net` to the target distribution on the training questions, noised from `rng`.
    fn fit(&self, net: &Net, split: &Split, rng: &mut Rng) -> Result<PretrainStats, StageError> {
        let bank = &split.bank;
        let k = net.shape().outputs;
        let weights: Vec<f64> = if self.target == POPULATION_MEAN {
            split.groups.iter().map(|g| g.population).collect()
        } else {
            split
                .groups
                .iter()
                .map(|g| f64::from(u8::from(g.name == self.target)))
                .collect()
        };
        let mut targets = Vec::with_capacity(bank.train.len() * k);
        for &q in &bank.train {
            let mut logits: Vec<f64> = (0..k)
                .map(|o| {
                    let p: f64 = weights
                        .iter()
                        .enumerate()
                        .map(|(g, w)| w * split.oracle.distribution(g, q)[o])
                        .sum();
                    let eps: f64 = rng.sample(StandardNormal);
                    p.max(1e-12).ln() + self.noise * eps
                })
                .collect();
            softmax(&mut logits);
            targets.extend(logits.iter().map(|&p| p as f32));
        }
        let n = bank.train.len() as i64;
        let targets = Tensor::from_slice(&targets).view([n, k as i64]);
        let x = stack(&bank.train, &bank.questions.features);
        pretrain(net, &x, &targets, self.epochs, self.lr).map_err(|e| {
            StageError(format!(
                "pre-training diverged ({e}); lower `pretrain.lr` (now {})",
                self.lr
            ))
        })
    }
}
