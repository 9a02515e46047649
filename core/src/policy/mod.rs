//! The policy: question features → a distribution over the K answer options, with a value
//! head, on libtorch (tch).
//!
//! Everything a later language-model policy must also offer is on [`Policy`]: sample
//! rollouts with exact log-probs, the log-prob and entropy of given actions, the value
//! estimate, and the answer distribution used for evaluation. Weights are initialised from our
//! own seeded stream (not torch's global generator) so parallel stages stay deterministic.
mod adam;
pub(crate) mod net;
mod pretrain;

use rand::Rng as _;
use rand_distr::StandardNormal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::{Kind as DType, Tensor};

pub use adam::{Adam, NonFiniteGradient};
pub use net::{Activations, Net};
pub use pretrain::{fit as pretrain, PretrainStats};

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

/// A minibatch through the policy: log π of the given actions, with the forward pass kept
/// for the backward one.
#[derive(Debug)]
pub struct Scored {
    acts: Activations,
    actions: Tensor,
    /// log π(action), [N].
    pub log_prob: Tensor,
    /// Log-softmax (choice) or standardised latent (distribution), [N, K].
    aux: Tensor,
}

impl Scored {
    pub fn value(&self) -> Tensor {
        self.acts.value()
    }
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
        let x = stack(questions, features);
        let acts = self.net.forward(&x);
        let (head, values) = (acts.head(), acts.value().copy());
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
                let (lp, _) = self.log_prob(&head, &actions);
                (actions, lp, answers)
            }
            RolloutKind::Distribution => {
                let noise: Vec<f32> = (0..n * k)
                    .map(|_| rng.sample::<f32, _>(StandardNormal))
                    .collect();
                let eps = Tensor::from_slice(&noise).view([n as i64, k as i64]);
                let z = &head + eps * self.net.log_std().exp();
                let (lp, _) = self.log_prob(&head, &z);
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

    /// log π(action) given the policy head output (logits for choice, μ for distribution),
    /// and what its gradient needs: the log-softmax (choice) or the standardised latent
    /// (z − μ)/σ (distribution), both [N, K].
    fn log_prob(&self, head: &Tensor, actions: &Tensor) -> (Tensor, Tensor) {
        match self.kind {
            RolloutKind::Choice => {
                let log_softmax = head.log_softmax(-1, DType::Float);
                let lp = log_softmax
                    .gather(-1, &actions.unsqueeze(-1), false)
                    .squeeze_dim(-1);
                (lp, log_softmax)
            }
            RolloutKind::Distribution => {
                let log_std = self.net.log_std();
                let z = (actions - head) * (-&log_std).exp();
                let lp = (z.square() * -0.5 - &log_std - 0.5 * (2.0 * std::f64::consts::PI).ln())
                    .sum_dim_intlist(-1, false, DType::Float);
                (lp, z)
            }
        }
    }

    /// The policy's log-probabilities and values for `actions` taken on `x`, kept for
    /// [`Policy::backward`].
    pub fn score(&self, x: &Tensor, actions: &Tensor) -> Scored {
        let acts = self.net.forward(x);
        let (log_prob, aux) = self.log_prob(&acts.head(), actions);
        Scored {
            acts,
            actions: actions.shallow_clone(),
            log_prob,
            aux,
        }
    }

    /// Writes into the network's gradient buffer the gradient of
    /// Σ_i d_log_prob_i · log π(a_i) + Σ_i d_value_i · V_i + d_entropy · Σ_i H_i.
    ///
    /// Choice: ∂log π(a)/∂logits = onehot(a) − p, and ∂H/∂logits = −p ⊙ (log p + H).
    /// Distribution: with z = (a − μ)/σ, ∂log π/∂μ = z/σ and ∂log π/∂log σ = z² − 1; the
    /// entropy Σ log σ + const has ∂H/∂log σ = 1.
    pub fn backward(
        &self,
        s: &Scored,
        d_log_prob: &Tensor,
        d_value: Option<&Tensor>,
        d_entropy: f64,
    ) {
        let dl = d_log_prob.unsqueeze(1);
        match self.kind {
            RolloutKind::Choice => {
                let p = s.aux.exp();
                let mut d_head = &p * &(-&dl);
                let _ = d_head.scatter_add_(1, &s.actions.unsqueeze(1), &dl);
                if d_entropy != 0.0 {
                    let h = -(&p * &s.aux).sum_dim_intlist(-1, true, DType::Float);
                    d_head -= &p * (&s.aux + h) * d_entropy;
                }
                self.net.backward(&s.acts, &d_head, d_value, None);
            }
            RolloutKind::Distribution => {
                let d_head = &dl * &s.aux * (-self.net.log_std()).exp();
                let mut d_log_std = dl.tr().mm(&(s.aux.square() - 1.0)).squeeze_dim(0);
                if d_entropy != 0.0 {
                    d_log_std += d_entropy * s.aux.size()[0] as f64;
                }
                self.net
                    .backward(&s.acts, &d_head, d_value, Some(&d_log_std));
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
        let head = self.net.forward(&stack(questions, features)).head();
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

/// log π(actions) [N] and the entropy summed over the batch, in autograd-tracked ops on
/// [`net::autograd_forward`]'s outputs: the oracle the hand-written gradients are tested against.
#[cfg(test)]
pub(crate) fn autograd_log_prob(
    kind: RolloutKind,
    head: &Tensor,
    actions: &Tensor,
    log_std: &Tensor,
) -> (Tensor, Tensor) {
    match kind {
        RolloutKind::Choice => {
            let logp = head.log_softmax(-1, DType::Float);
            let lp = logp
                .gather(-1, &actions.unsqueeze(-1), false)
                .squeeze_dim(-1);
            (lp, -(logp.exp() * &logp).sum(DType::Float))
        }
        RolloutKind::Distribution => {
            let c = 0.5 * (2.0 * std::f64::consts::PI).ln();
            let z = (actions - head) / log_std.exp();
            let lp = (z.square() * -0.5 - log_std - c).sum_dim_intlist(-1, false, DType::Float);
            let n = head.size()[0] as f64;
            (lp, (log_std + 0.5 + c).sum(DType::Float) * n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::net::{assert_grad_matches, autograd_forward};
    use tch::Device;

    /// ∂/∂θ of Σ d_lp·log π + Σ d_v·V + d_H·ΣH, hand-written against autograd, for both
    /// rollout kinds, with and without the entropy term.
    #[test]
    fn backward_matches_autograd() {
        for kind in [RolloutKind::Choice, RolloutKind::Distribution] {
            for d_entropy in [0.0, -0.3] {
                let mut rng = crate::rng::stream(3, &["policy"]);
                let net = Net::new(3, 6, 2, 4, -0.4, &mut rng);
                let policy = Policy {
                    net,
                    kind,
                    options: 4,
                };
                let features: Vec<Vec<f32>> = (0..5)
                    .map(|q| (0..3).map(|f| ((q * 3 + f) as f32).sin()).collect())
                    .collect();
                let questions = [0, 1, 2, 3, 4, 0, 2, 4];
                let rollouts = policy.sample(&questions, &features, &mut rng);
                tch::manual_seed(9);
                let d_lp = Tensor::randn([8], (DType::Float, Device::Cpu));
                let d_v = Tensor::randn([8], (DType::Float, Device::Cpu));
                let s = policy.score(&rollouts.features, &rollouts.actions);
                policy.backward(&s, &d_lp, Some(&d_v), d_entropy);

                let (leaves, head, value) = autograd_forward(&policy.net, &rollouts.features);
                let log_std = &leaves[0].1;
                let (lp, entropy) = autograd_log_prob(kind, &head, &rollouts.actions, log_std);
                let objective = (lp * &d_lp).sum(DType::Float)
                    + (value * &d_v).sum(DType::Float)
                    + entropy * d_entropy;
                objective.backward();
                assert_grad_matches(&policy.net, &leaves);
            }
        }
    }
}
