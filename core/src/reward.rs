//! Local scoring: each group's reward model, trained on that group's shard alone.
//!
//! A group's model predicts its answer distribution for a question (a preference predictor,
//! as in PluralLLM), and scores an answer by how well it fits the prediction. In `oracle` mode
//! the group's true distribution stands in for the model, for controlled studies. Nothing
//! in this module ever sees another group's data: [`GroupScorer::fit`] takes one shard. With
//! federated averaging the server sees the groups' model weights, never their data
//! ([`average`]).
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::{Kind as DType, Tensor};

use crate::metric::js_distance;
use crate::policy::{stack, Adam, Net, NonFiniteGradient};
use crate::rng::Rng;
use crate::stage::{GroupShard, Oracle};

/// What a group's reward says about an answer `a` (a distribution over options; one-hot for
/// a single choice) given the group's (predicted) distribution p.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RewardShape {
    /// ⟨a, p⟩: the probability the group gives the answer (expected, for a distribution).
    Probability,
    /// log ⟨a, p⟩ (floored at 1e-6).
    LogProbability,
    /// 1 − Jensen–Shannon distance (base 2).
    Js,
    /// 1 − Wasserstein-1 distance over the ordered options, scaled to [0, 1] by K − 1.
    Wasserstein,
    /// Cosine similarity.
    Cosine,
    /// −KL(p ‖ a), a floored at 1e-6.
    Kl,
}

impl RewardShape {
    pub fn reward(self, answer: &[f64], p: &[f64]) -> f64 {
        match self {
            RewardShape::Probability => dot(answer, p),
            RewardShape::LogProbability => dot(answer, p).max(1e-6).ln(),
            RewardShape::Js => 1.0 - js_distance(answer, p),
            RewardShape::Wasserstein => {
                let (mut ca, mut cp, mut w) = (0.0, 0.0, 0.0);
                for (a, b) in answer.iter().zip(p) {
                    ca += a;
                    cp += b;
                    w += f64::abs(ca - cp);
                }
                1.0 - w / (p.len() as f64 - 1.0)
            }
            RewardShape::Cosine => {
                let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
                dot(answer, p) / (norm(answer) * norm(p)).max(1e-12)
            }
            RewardShape::Kl => -p
                .iter()
                .zip(answer)
                .filter(|(&pi, _)| pi > 0.0)
                .map(|(&pi, &ai)| pi * (pi / ai.max(1e-6)).ln())
                .sum::<f64>(),
        }
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Training settings of the local reward models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RewardModelConfig {
    /// `model`: learn from the group's shard; `oracle`: use the true distribution.
    #[serde(default = "d_source")]
    pub source: Source,
    /// How an answer is scored against the group's distribution.
    #[serde(default = "d_shape")]
    pub reward: RewardShape,
    /// Hidden width of the predictor (one tanh layer).
    #[serde(default = "d_hidden")]
    pub hidden: u32,
    /// Full passes over the shard.
    #[serde(default = "d_epochs")]
    pub epochs: u32,
    /// Adam learning rate.
    #[serde(default = "d_lr")]
    pub lr: f64,
    /// Where `source: model` gets question features on data that has none (real surveys): a
    /// language model (a known short name, a .gguf file or a model folder) whose final hidden
    /// state at the answer position of each question's prompt is that question's feature
    /// vector, computed once per run from the frozen base weights (the PluralLLM pattern).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<String>,
    /// Federated averaging before the local training: the groups first train one shared model
    /// together, then each fine-tunes it for `epochs` on its own shard (0: every group scores
    /// with the shared model). Off by default: each group trains alone from its own init.
    #[serde(default)]
    pub fedavg: Option<FedAvg>,
}

/// FedAvg (McMahan et al. 2017) across the groups' reward models, followed by local
/// adaptation: each round every group trains a copy of the shared model on its own shard
/// and the server replaces the shared model by the shard-size-weighted mean of the copies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FedAvg {
    /// Communication rounds; 10.
    #[serde(default = "d_fed_rounds")]
    pub rounds: u32,
    /// Full-batch epochs each group trains per round (Adam moments fresh each round, so the
    /// server keeps no optimiser state per group); 20.
    #[serde(default = "d_local_epochs")]
    pub local_epochs: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Model,
    Oracle,
}

fn d_source() -> Source {
    Source::Model
}
fn d_shape() -> RewardShape {
    RewardShape::Js
}
fn d_hidden() -> u32 {
    32
}
fn d_epochs() -> u32 {
    200
}
fn d_lr() -> f64 {
    1e-2
}
fn d_fed_rounds() -> u32 {
    10
}
fn d_local_epochs() -> u32 {
    20
}

impl RewardModelConfig {
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.hidden == 0 {
            return Err(("hidden", "`hidden` must be at least 1".to_owned()));
        }
        if self.epochs == 0 && self.fedavg.is_none() {
            return Err((
                "epochs",
                "`epochs` must be at least 1 (0 is allowed only with `fedavg`, where the groups score with the shared model)".to_owned(),
            ));
        }
        if self.features.is_some() && self.source == Source::Oracle {
            return Err((
                "features",
                "`features` feeds a learned reward model, and `source: oracle` has none; remove one of the two".to_owned(),
            ));
        }
        if let Some(fed) = &self.fedavg {
            if self.source == Source::Oracle {
                return Err((
                    "fedavg",
                    "`fedavg` trains reward models, and `source: oracle` has none; remove one of the two".to_owned(),
                ));
            }
            if fed.rounds == 0 || fed.local_epochs == 0 {
                return Err((
                    "fedavg",
                    "`fedavg.rounds` and `fedavg.local_epochs` must be at least 1".to_owned(),
                ));
            }
        }
        if self.lr <= 0.0 {
            return Err(("lr", format!("`lr` is {}; it must be > 0", self.lr)));
        }
        Ok(())
    }
}

/// A reward model's training stopped on a non-finite gradient.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("its reward model diverged at epoch {epoch} ({cause}); lower `lr` (now {lr:e})")]
pub struct TrainingDiverged {
    pub epoch: u32,
    pub lr: f64,
    pub cause: NonFiniteGradient,
}

/// One group's scorer: its predictions for every question of the bank (computed once).
#[derive(Debug)]
pub struct GroupScorer {
    /// Predicted distribution per question.
    predicted: Vec<Vec<f64>>,
    shape: RewardShape,
}

impl GroupScorer {
    /// A fresh predictor over `features` (one tanh layer of `cfg.hidden`).
    pub fn init(
        features: &[Vec<f32>],
        options: usize,
        cfg: &RewardModelConfig,
        rng: &mut Rng,
    ) -> Net {
        Net::new(features[0].len(), cfg.hidden as usize, 1, options, 0.0, rng)
    }

    /// Trains `net` in place on one shard for `epochs`: cross-entropy between the predicted
    /// distribution and the shard's empirical answer shares, full-batch Adam from fresh
    /// moments.
    ///
    /// Questions may have fewer options (`options[q]`) than the net has outputs: the logits of
    /// the options a question lacks are masked out, so they get no probability and no gradient.
    pub fn fit(
        net: &Net,
        shard: &GroupShard,
        features: &[Vec<f32>],
        options: &[usize],
        epochs: u32,
        lr: f64,
    ) -> Result<(), TrainingDiverged> {
        let mut adam = Adam::new(&net.trainable(), lr);
        let x = stack(&shard.questions, features);
        let n = shard.questions.len();
        let k = net.shape().outputs;
        let flat: Vec<f32> = shard
            .answers
            .iter()
            .flat_map(|a| (0..k).map(|i| a.get(i).map_or(0.0, |&x| x as f32)))
            .collect();
        let target = Tensor::from_slice(&flat).view([n as i64, k as i64]);
        let mass = target.sum_dim_intlist(-1, true, DType::Float);
        let lacking = lacking_options(&shard.questions, options, k);
        for epoch in 1..=epochs {
            // Loss −(1/n) Σ_i Σ_k t_ik log p_ik; its gradient in the logits is
            // (p_i · Σ_k t_ik − t_i)/n.
            let acts = net.forward(&x);
            let p = acts
                .head()
                .masked_fill(&lacking, f64::NEG_INFINITY)
                .softmax(-1, DType::Float);
            let d_head = (p * &mass - &target) / n as f64;
            net.backward(&acts, &d_head, None, None);
            adam.step_clip_norm(&net.trainable(), 1.0)
                .map_err(|cause| TrainingDiverged { epoch, lr, cause })?;
        }
        Ok(())
    }

    /// The scorer of a trained predictor: its predictions for every question of the bank.
    pub fn from_net(
        net: &Net,
        features: &[Vec<f32>],
        options: &[usize],
        shape: RewardShape,
    ) -> GroupScorer {
        let all: Vec<usize> = (0..features.len()).collect();
        let k = net.shape().outputs;
        let head = net
            .forward(&stack(&all, features))
            .head()
            .masked_fill(&lacking_options(&all, options, k), f64::NEG_INFINITY);
        let predicted = Vec::<f32>::try_from(head.softmax(-1, DType::Float).flatten(0, -1))
            .expect("f32 predictions");
        GroupScorer {
            predicted: predicted
                .chunks(k)
                .zip(options)
                .map(|(p, &n)| p[..n].iter().map(|&x| f64::from(x)).collect())
                .collect(),
            shape,
        }
    }

    /// The true distributions of group `g` as its scorer (oracle mode).
    pub fn oracle(oracle: &Oracle, g: usize, questions: usize, shape: RewardShape) -> GroupScorer {
        let predicted = (0..questions)
            .map(|q| oracle.distribution(g, q).to_vec())
            .collect();
        GroupScorer { predicted, shape }
    }

    /// The group's (predicted) distribution on question q.
    pub fn predicted(&self, q: usize) -> &[f64] {
        &self.predicted[q]
    }

    /// Rewards for answers to `questions`.
    pub fn score(&self, questions: &[usize], answers: &[Vec<f64>]) -> Vec<f64> {
        questions
            .iter()
            .zip(answers)
            .map(|(&q, a)| self.shape.reward(a, self.predicted(q)))
            .collect()
    }
}

/// `[questions, k]`, true where a question has no option of that index.
fn lacking_options(questions: &[usize], options: &[usize], k: usize) -> Tensor {
    let lacking: Vec<bool> = questions
        .iter()
        .flat_map(|&q| (0..k).map(move |i| i >= options[q]))
        .collect();
    Tensor::from_slice(&lacking).view([questions.len() as i64, k as i64])
}

/// FedAvg's server step: the mean of the groups' parameters weighted by `weights` (their
/// shard sizes), as a new network.
pub fn average(nets: &[Net], weights: &[f64]) -> Net {
    let total: f64 = weights.iter().sum();
    let mean = nets[0].duplicate();
    let mut params = mean.params().shallow_clone();
    let _ = params.zero_();
    for (net, w) in nets.iter().zip(weights) {
        params += net.params() * (w / total);
    }
    mean
}

/// Mean alignment (1 − JS distance) of a scorer's predictions with the truth on `questions`:
/// how well a reward model knows its group where it was not trained.
pub fn held_out_alignment(
    scorer: &GroupScorer,
    truth: impl Fn(usize) -> Vec<f64>,
    questions: &[usize],
) -> f64 {
    let total: f64 = questions
        .iter()
        .map(|&q| 1.0 - js_distance(scorer.predicted(q), &truth(q)))
        .sum();
    total / questions.len().max(1) as f64
}

/// Expected calibration error of a scorer's top-1 prediction against the true majority answer
/// on `questions` (10 equal-width confidence bins), as MORE reports for reward models.
pub fn calibration_error(
    scorer: &GroupScorer,
    truth: impl Fn(usize) -> Vec<f64>,
    questions: &[usize],
) -> f64 {
    let mut bins = [(0.0f64, 0.0f64, 0usize); 10];
    for &q in questions {
        let p = scorer.predicted(q);
        let (top, conf) = argmax(p);
        let hit = if argmax(&truth(q)).0 == top { 1.0 } else { 0.0 };
        let b = ((conf * 10.0) as usize).min(9);
        bins[b].0 += conf;
        bins[b].1 += hit;
        bins[b].2 += 1;
    }
    let n = questions.len() as f64;
    bins.iter()
        .filter(|b| b.2 > 0)
        .map(|(conf, hit, count)| (*count as f64 / n) * ((conf - hit) / *count as f64).abs())
        .sum()
}

fn argmax(p: &[f64]) -> (usize, f64) {
    p.iter()
        .copied()
        .enumerate()
        .fold((0, f64::NEG_INFINITY), |best, (i, x)| {
            if x > best.1 {
                (i, x)
            } else {
                best
            }
        })
}

#[cfg(test)]
mod tests {
    use super::RewardShape::*;

    #[test]
    fn reward_shapes() {
        let p = [0.5, 0.3, 0.2];
        let choice = [0.0, 1.0, 0.0];
        assert!((Probability.reward(&choice, &p) - 0.3).abs() < 1e-12);
        assert!((LogProbability.reward(&choice, &p) - 0.3f64.ln()).abs() < 1e-12);
        assert!((Js.reward(&p, &p) - 1.0).abs() < 1e-12);
        assert!((Cosine.reward(&p, &p) - 1.0).abs() < 1e-12);
        assert!(Kl.reward(&p, &p).abs() < 1e-12);
        // W1 between point masses on the first and last of 3 options is 2 = K − 1: reward 0.
        assert!(Wasserstein.reward(&[1.0, 0.0, 0.0], &[0.0, 0.0, 1.0]).abs() < 1e-12);
        assert!((Wasserstein.reward(&[1.0, 0.0, 0.0], &[0.0, 1.0, 0.0]) - 0.5).abs() < 1e-12);
    }

    /// FedAvg's server step is the weighted mean of the parameters, whatever their values.
    #[test]
    fn average_weights_by_shard_size() {
        use crate::policy::Net;
        let nets: Vec<Net> = [1.0, 5.0]
            .iter()
            .map(|&v| {
                let net = Net::new(2, 3, 1, 2, 0.0, &mut crate::rng::stream(1, &["avg"]));
                let _ = net.params().shallow_clone().fill_(v);
                net
            })
            .collect();
        let mean = super::average(&nets, &[30.0, 10.0]);
        // (30·1 + 10·5) / 40 = 2 everywhere; the inputs are untouched.
        let dev = (mean.params() - 2.0).abs().max().double_value(&[]);
        assert!(dev < 1e-6, "{dev}");
        assert_eq!(nets[1].params().double_value(&[0]), 5.0);
    }
}
