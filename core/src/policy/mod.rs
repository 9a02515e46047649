//! The policy: what answers the survey questions and is trained by the update.
//!
//! [`Policy`] is everything the stages and the update ask of one: sample answers with exact
//! log-probs, write the gradient of a minibatch's loss into its trainable tensors, the
//! reference's log-probs for the KL penalty, the answer distribution used for evaluation, and
//! its trainable state by name (for the optimiser and checkpoints). Implementations: the MLP
//! on question features ([`MlpPolicy`]) and a pretrained language model with LoRA adapters
//! ([`LlmPolicy`]). The frozen reference belongs to the policy, shared
//! between rounds, never copied: a round's update forks only the trainable state.
mod adam;
mod llm;
mod mlp;
pub(crate) mod net;
mod pretrain;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::Tensor;

pub use adam::{Adam, NonFiniteGradient, Param};
pub use llm::{
    question_features, read_letter, survey_prompt, ChoicePrompts, LlmPolicy, LoraSettings, Writing,
};
#[cfg(test)]
pub(crate) use mlp::autograd_log_prob;
pub use mlp::MlpPolicy;
pub use net::{Activations, Net};
pub use pretrain::{fit as pretrain, PretrainStats};

use crate::ppo::{Loss, LossStats};
use crate::rng::Rng;
use crate::stage::QuestionBank;

/// How the MLP's rollouts express an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RolloutKind {
    /// Sample one option from softmax(logits); a group rewards the option.
    Choice,
    /// Sample z ~ N(μ, σ²) in R^K and answer with the distribution softmax(z) (logistic-normal);
    /// a group rewards how close that distribution is to its own.
    Distribution,
}

/// What a policy needs to score sampled answers again, one row per sample: its inputs in its
/// own layout (the MLP: question features [N, F]) and the actions taken.
///
/// A sample is one step (the MLP, an LLM choosing a letter) or a sequence of steps (an LLM
/// writing its answer token by token). One-step samples have log-probs and values of shape
/// [N] and no `mask`; sequences have [N, T] with `mask` [N, T] (float, 1 on each row's
/// first T_i steps, the tokens it wrote).
#[derive(Debug)]
pub struct Samples {
    pub inputs: Vec<Tensor>,
    /// Choice: option indices [N] (int64). Distribution: latent z [N, K]. Generated: tokens
    /// [N, T] (int64).
    pub actions: Tensor,
    pub mask: Option<Tensor>,
}

impl Samples {
    /// The rows `index` (int64 [M]), in that order.
    pub fn select(&self, index: &Tensor) -> Samples {
        Samples {
            inputs: self
                .inputs
                .iter()
                .map(|t| t.index_select(0, index))
                .collect(),
            actions: self.actions.index_select(0, index),
            mask: self.mask.as_ref().map(|m| m.index_select(0, index)),
        }
    }

    /// `len` rows from `start`.
    pub fn narrow(&self, start: i64, len: i64) -> Samples {
        Samples {
            inputs: self
                .inputs
                .iter()
                .map(|t| t.narrow(0, start, len))
                .collect(),
            actions: self.actions.narrow(0, start, len),
            mask: self.mask.as_ref().map(|m| m.narrow(0, start, len)),
        }
    }
}

/// A batch of sampled answers, with what the update needs to score them later.
#[derive(Debug)]
pub struct Rollouts {
    /// Question index (into the bank) of each rollout.
    pub questions: Vec<usize>,
    pub samples: Samples,
    /// log π_old of each step's action, [N] or [N, T] (see [`Samples`]).
    pub log_probs: Tensor,
    /// V_old before each step, shaped as `log_probs`.
    pub values: Tensor,
    /// The answer each rollout gives, as a distribution over options (one-hot for choice);
    /// `None` where a written answer names no option, which no group can score.
    pub answers: Vec<Option<Vec<f64>>>,
}

/// A policy's computation failed (a language model out of memory, a tensor on the wrong
/// device): the stage that asked fails with this message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// A trainable policy with its frozen reference.
pub trait Policy: std::fmt::Debug + Send {
    /// One answer per entry of `questions` (indices into `bank`), every random draw from `rng`.
    fn sample(
        &self,
        bank: &QuestionBank,
        questions: &[usize],
        rng: &mut Rng,
    ) -> Result<Rollouts, PolicyError>;

    /// log π_ref of the samples' actions under the frozen reference, shaped as the rollouts'
    /// log-probs.
    fn reference_log_prob(&self, samples: &Samples) -> Result<Tensor, PolicyError>;

    /// Writes ∂`loss`/∂θ on the minibatch `samples` into the trainable tensors' gradients
    /// (overwriting them) and returns the minibatch's statistics.
    fn backward(&self, samples: &Samples, loss: &Loss<'_>) -> Result<LossStats, PolicyError>;

    /// Mean entropy of the action distribution over the samples' steps.
    fn entropy(&self, samples: &Samples) -> Result<f64, PolicyError>;

    /// The answer distribution on each of `questions`, for evaluation.
    fn distributions(
        &self,
        bank: &QuestionBank,
        questions: &[usize],
    ) -> Result<Vec<Vec<f64>>, PolicyError>;

    /// What the optimiser updates, by name.
    fn trainable(&self) -> Vec<Param>;

    /// The trainable state by name as views (writing one restores it): what checkpoints hold.
    fn state(&self) -> Vec<(String, Tensor)>;

    /// A copy with its own trainable state (the next round's policy before its update); frozen
    /// parts, the reference among them, are shared.
    fn fork(&self) -> Box<dyn Policy>;
}

/// Features of `questions` as one [N, F] tensor.
pub fn stack(questions: &[usize], features: &[Vec<f32>]) -> Tensor {
    let f = features.first().map_or(0, Vec::len);
    let mut flat = Vec::with_capacity(questions.len() * f);
    for &q in questions {
        flat.extend_from_slice(&features[q]);
    }
    Tensor::from_slice(&flat).view([questions.len() as i64, f as i64])
}
