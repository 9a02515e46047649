//! The MLP policy on question features: a [`Net`] whose gradients are written out by hand
//! (see net.rs for why), with its frozen initial copy as the KL reference.
use std::sync::{Arc, Mutex};

use rand::Rng as _;
use rand_distr::StandardNormal;
use tch::{Kind as DType, Tensor};

use super::{stack, Activations, Net, Param, Policy, PolicyError, RolloutKind, Rollouts, Samples};
use crate::ppo::{Loss, LossStats};
use crate::rng::Rng;
use crate::stage::QuestionBank;

/// A policy network, the reference it is pulled toward, and how it answers.
#[derive(Debug)]
pub struct MlpPolicy {
    pub net: Net,
    /// The frozen initial network, shared by every round's fork (a mutex because libtorch
    /// tensors may move between threads but not be shared).
    reference: Arc<Mutex<Net>>,
    pub kind: RolloutKind,
    pub options: usize,
}

/// A minibatch through the network: log π of the given actions, with the forward pass kept
/// for the backward one.
struct Scored {
    acts: Activations,
    /// log π(action), [N].
    log_prob: Tensor,
    /// Log-softmax (choice) or standardised latent (distribution), [N, K].
    aux: Tensor,
}

impl MlpPolicy {
    /// A policy starting at `net`, whose current weights become the frozen reference.
    pub fn new(net: Net, kind: RolloutKind, options: usize) -> MlpPolicy {
        MlpPolicy {
            reference: Arc::new(Mutex::new(net.duplicate())),
            net,
            kind,
            options,
        }
    }

    /// log π(action) given the head output (logits for choice, μ for distribution) and
    /// log σ, and what its gradient needs: the log-softmax (choice) or the standardised
    /// latent (z − μ)/σ (distribution), both [N, K].
    fn log_prob(&self, log_std: &Tensor, head: &Tensor, actions: &Tensor) -> (Tensor, Tensor) {
        match self.kind {
            RolloutKind::Choice => {
                let log_softmax = head.log_softmax(-1, DType::Float);
                let lp = log_softmax
                    .gather(-1, &actions.unsqueeze(-1), false)
                    .squeeze_dim(-1);
                (lp, log_softmax)
            }
            RolloutKind::Distribution => {
                let z = (actions - head) * (-log_std).exp();
                let lp = (z.square() * -0.5 - log_std - 0.5 * (2.0 * std::f64::consts::PI).ln())
                    .sum_dim_intlist(-1, false, DType::Float);
                (lp, z)
            }
        }
    }

    fn score(&self, samples: &Samples) -> Scored {
        let acts = self.net.forward(&samples.inputs[0]);
        let (log_prob, aux) = self.log_prob(&self.net.log_std(), &acts.head(), &samples.actions);
        Scored {
            acts,
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
    fn backward_scored(
        &self,
        s: &Scored,
        actions: &Tensor,
        d_log_prob: &Tensor,
        d_value: Option<&Tensor>,
        d_entropy: f64,
    ) {
        let dl = d_log_prob.unsqueeze(1);
        match self.kind {
            RolloutKind::Choice => {
                let p = s.aux.exp();
                let mut d_head = &p * &(-&dl);
                let _ = d_head.scatter_add_(1, &actions.unsqueeze(1), &dl);
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

    /// Per-sample entropy of the action distribution, given the head output.
    fn entropy_of(&self, head: &Tensor) -> Tensor {
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
}

impl Policy for MlpPolicy {
    fn sample(
        &self,
        bank: &QuestionBank,
        questions: &[usize],
        rng: &mut Rng,
    ) -> Result<Rollouts, PolicyError> {
        let x = stack(questions, &bank.questions.features);
        let acts = self.net.forward(&x);
        let (head, values) = (acts.head(), acts.value().copy());
        let n = questions.len();
        let k = self.options;
        let log_std = self.net.log_std();
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
                    answers.push(Some(one_hot));
                }
                let actions = Tensor::from_slice(&picks);
                let (lp, _) = self.log_prob(&log_std, &head, &actions);
                (actions, lp, answers)
            }
            RolloutKind::Distribution => {
                let noise: Vec<f32> = (0..n * k)
                    .map(|_| rng.sample::<f32, _>(StandardNormal))
                    .collect();
                let eps = Tensor::from_slice(&noise).view([n as i64, k as i64]);
                let z = &head + eps * log_std.exp();
                let (lp, _) = self.log_prob(&log_std, &head, &z);
                let dist = z.softmax(-1, DType::Float);
                let flat = Vec::<f32>::try_from(dist.flatten(0, -1)).expect("f32 answers");
                let answers = flat
                    .chunks(k)
                    .map(|r| Some(r.iter().map(|&x| x as f64).collect()))
                    .collect();
                (z, lp, answers)
            }
        };
        Ok(Rollouts {
            questions: questions.to_vec(),
            samples: Samples {
                inputs: vec![x],
                actions,
                mask: None,
            },
            log_probs,
            values,
            answers,
        })
    }

    fn reference_log_prob(&self, samples: &Samples) -> Result<Tensor, PolicyError> {
        let reference = self
            .reference
            .lock()
            .map_err(|_| PolicyError("the reference was poisoned by a failed stage".into()))?;
        let head = reference.forward(&samples.inputs[0]).head();
        Ok(self
            .log_prob(&reference.log_std(), &head, &samples.actions)
            .0)
    }

    fn backward(&self, samples: &Samples, loss: &Loss<'_>) -> Result<LossStats, PolicyError> {
        let scored = self.score(samples);
        let value = scored.acts.value();
        let g = loss.gradients(&scored.log_prob, &value);
        self.backward_scored(
            &scored,
            &samples.actions,
            &g.log_prob,
            g.value.as_ref(),
            g.entropy,
        );
        Ok(loss.stats(&scored.log_prob, &value))
    }

    fn entropy(&self, samples: &Samples) -> Result<f64, PolicyError> {
        let head = self.net.forward(&samples.inputs[0]).head();
        Ok(self.entropy_of(&head).mean(DType::Float).double_value(&[]))
    }

    /// Softmax of the logits (choice) or of the mean latent μ (distribution; the
    /// logistic-normal's central answer).
    fn distributions(
        &self,
        bank: &QuestionBank,
        questions: &[usize],
    ) -> Result<Vec<Vec<f64>>, PolicyError> {
        let head = self
            .net
            .forward(&stack(questions, &bank.questions.features))
            .head();
        let probs = head.softmax(-1, DType::Float);
        let flat = Vec::<f32>::try_from(probs.flatten(0, -1)).expect("f32 probabilities");
        Ok(flat
            .chunks(self.options)
            .map(|r| r.iter().map(|&x| x as f64).collect())
            .collect())
    }

    fn trainable(&self) -> Vec<Param> {
        self.net.trainable()
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        self.net.named()
    }

    fn fork(&self) -> Box<dyn Policy> {
        Box::new(MlpPolicy {
            net: self.net.duplicate(),
            reference: Arc::clone(&self.reference),
            kind: self.kind,
            options: self.options,
        })
    }
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
    use crate::data::Questions;
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
                let policy = MlpPolicy::new(net, kind, 4);
                let bank = QuestionBank {
                    questions: Questions::with_features(
                        4,
                        (0..5)
                            .map(|q| (0..3).map(|f| ((q * 3 + f) as f32).sin()).collect())
                            .collect(),
                    ),
                    train: Vec::new(),
                    eval: Vec::new(),
                };
                let questions = [0, 1, 2, 3, 4, 0, 2, 4];
                let rollouts = policy.sample(&bank, &questions, &mut rng).unwrap();
                let samples = &rollouts.samples;
                tch::manual_seed(9);
                let d_lp = Tensor::randn([8], (DType::Float, Device::Cpu));
                let d_v = Tensor::randn([8], (DType::Float, Device::Cpu));
                let s = policy.score(samples);
                policy.backward_scored(&s, &samples.actions, &d_lp, Some(&d_v), d_entropy);

                let (leaves, head, value) = autograd_forward(&policy.net, &samples.inputs[0]);
                let log_std = &leaves[0].1;
                let (lp, entropy) = autograd_log_prob(kind, &head, &samples.actions, log_std);
                let objective = (lp * &d_lp).sum(DType::Float)
                    + (value * &d_v).sum(DType::Float)
                    + entropy * d_entropy;
                objective.backward();
                assert_grad_matches(&policy.net, &leaves);
            }
        }
    }
}
