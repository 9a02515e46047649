//! The policy: question features → a distribution over the K answer options, with a value
//! head, on libtorch (tch).
//!
//! Everything a later language-model policy must also offer is on [`Policy`]: sample
//! rollouts with exact log-probs, the log-prob and entropy of given actions, the value
//! estimate, and the answer distribution used for evaluation. Weights are initialised from our
//! own seeded stream (not torch's global generator) so parallel stages stay deterministic.
mod adam;
mod net;

use rand::Rng as _;
use rand_distr::StandardNormal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::{Kind as DType, Tensor};

pub use adam::{named, Adam};
pub use net::Net;

use crate::rng::Rng;

/// How a rollout expresses an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RolloutKind {
    /// Sample one option from softmax(logits); a group rewards the option.
    Choice,
    /// Sample z ~ N(μ, σ²) in R^K and answer with the distribution softmax(z) (logistic-normal);
    /// a group rewards how close that distribution is to its own.
    Distribution,
}

/// A batch of sampled answers, with what PPO needs to score them later.
#[derive(Debug)]
pub struct Rollouts {
    /// Question index (into the bank) of each rollout.
    pub questions: Vec<usize>,
    /// Input features, [N, F].
    pub features: Tensor,
    /// Choice: option indices [N] (int64). Distribution: latent z [N, K].
    pub actions: Tensor,
    /// log π_old(action | question), [N].
    pub log_probs: Tensor,
    /// V_old(question), [N].
    pub values: Tensor,
    /// The answer each rollout gives, as a distribution over options (one-hot for choice).
    pub answers: Vec<Vec<f64>>,
}

/// A policy network and how it answers.
#[derive(Debug)]
pub struct Policy {
    pub net: Net,
    pub kind: RolloutKind,
    pub options: usize,
}

impl Policy {
    /// Samples one answer per entry of `questions`, using `rng` for every random draw.
    pub fn sample(&self, questions: &[usize], features: &[Vec<f32>], rng: &mut Rng) -> Rollouts {
        let _guard = tch::no_grad_guard();
        let x = stack(questions, features);
        let (head, values) = self.net.forward(&x);
        let n = questions.len();
        let k = self.options;
        let (actions, log_probs, answers) = match self.kind {
            RolloutKind::Choice => {
                let probs = head.softmax(-1, DType::Float);
                let flat: Vec<f32> =
                    Vec::<f32>::try_from(probs.flatten(0, -1)).expect("f32 probabilities");
                let mut picks = Vec::with_capacity(n);
                let mut answers = Vec::with_capacity(n);
                for row in flat.chunks(k) {
                    let u: f32 = rng.random();
                    let mut acc = 0.0;
                    let pick = row.iter().position(|&p| {
                        acc += p;
                        u < acc
                    });
                    let pick = pick.unwrap_or(k - 1);
                    picks.push(pick as i64);
                    let mut one_hot = vec![0.0; k];
                    one_hot[pick] = 1.0;
                    answers.push(one_hot);
                }
                let actions = Tensor::from_slice(&picks);
                let lp = self.log_prob(&head, &actions);
                (actions, lp, answers)
            }
            RolloutKind::Distribution => {
                let noise: Vec<f32> = (0..n * k)
                    .map(|_| rng.sample::<f32, _>(StandardNormal))
                    .collect();
                let eps = Tensor::from_slice(&noise).view([n as i64, k as i64]);
                let z = &head + eps * self.net.log_std().exp();
                let lp = self.log_prob(&head, &z);
                let dist = z.softmax(-1, DType::Float);
                let flat = Vec::<f32>::try_from(dist.flatten(0, -1)).expect("f32 answers");
                let answers = flat
                    .chunks(k)
                    .map(|r| r.iter().map(|&x| x as f64).collect())
                    .collect();
                (z, lp, answers)
            }
        };
        Rollouts {
            questions: questions.to_vec(),
            features: x,
            actions,
            log_probs,
            values,
            answers,
        }
    }

    /// log π(action) given the policy head output (logits for choice, μ for distribution).
    pub fn log_prob(&self, head: &Tensor, actions: &Tensor) -> Tensor {
        match self.kind {
            RolloutKind::Choice => head
                .log_softmax(-1, DType::Float)
                .gather(-1, &actions.unsqueeze(-1), false)
                .squeeze_dim(-1),
            RolloutKind::Distribution => {
                let log_std = self.net.log_std();
                let z = (actions - head) / log_std.exp();
                (z.square() * -0.5 - &log_std - 0.5 * (2.0 * std::f64::consts::PI).ln())
                    .sum_dim_intlist(-1, false, DType::Float)
            }
        }
    }

    /// Per-sample entropy of the action distribution.
    pub fn entropy(&self, head: &Tensor) -> Tensor {
        match self.kind {
            RolloutKind::Choice => {
                let logp = head.log_softmax(-1, DType::Float);
                -(logp.exp() * logp).sum_dim_intlist(-1, false, DType::Float)
            }
            RolloutKind::Distribution => {
                let per_dim = self.net.log_std() + 0.5 * (1.0 + (2.0 * std::f64::consts::PI).ln());
                per_dim.sum(DType::Float).expand([head.size()[0]], false)
            }
        }
    }

    /// The policy's answer distribution on each question, for evaluation: softmax of the logits
    /// (choice) or of the mean latent μ (distribution; the logistic-normal's central answer).
    pub fn distributions(&self, questions: &[usize], features: &[Vec<f32>]) -> Vec<Vec<f64>> {
        let _guard = tch::no_grad_guard();
        let (head, _) = self.net.forward(&stack(questions, features));
        let probs = head.softmax(-1, DType::Float);
        let flat = Vec::<f32>::try_from(probs.flatten(0, -1)).expect("f32 probabilities");
        flat.chunks(self.options)
            .map(|r| r.iter().map(|&x| x as f64).collect())
            .collect()
    }
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
