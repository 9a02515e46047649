//! The policy update: PPO (clipped ratio, clipped value loss, GAE, KL penalty to a frozen
//! reference, advantage whitening, global grad-norm clipping, epochs of shuffled minibatches)
//! and the critic-free RLOO and GRPO variants.
//!
//! Defaults and their sources: TRL's `PPOConfig` and Huang et al., "The N Implementation
//! Details of RLHF with PPO" (2024), and cleanrl's `ppo.py` for the small-network values
//! (learning rate, epochs, minibatches). Each answer here is one step of an episode whose
//! reward arrives at once (the question-answer bandit of the seed paper), so GAE runs on
//! length-1 episodes; [`gae`] is the general recursion so per-token rewards fit unchanged.
mod objective;

pub use objective::{Gradients, Loss, LossStats, Targets};

use rand::seq::SliceRandom;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tch::{Kind as DType, Tensor};

use crate::policy::{Adam, NonFiniteGradient, Policy, PolicyError, Rollouts};
use crate::rng::Rng;

/// Which update rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// PPO with a learned value baseline.
    Ppo,
    /// REINFORCE leave-one-out (Ahmadian et al. 2024): baseline = mean reward of the other
    /// samples of the same question; KL enters the reward.
    Rloo,
    /// GRPO (Shao et al. 2024): advantage = reward standardised within the question's samples;
    /// KL (k3) enters the loss.
    Grpo,
}

/// The KL estimator between the policy and the reference on a sampled action
/// (Schulman, "Approximating KL divergence", 2020).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KlEstimator {
    /// log π − log π_ref: unbiased, can be negative per sample (TRL's default `kl`).
    K1,
    /// (r − 1) − log r with r = π_ref/π: unbiased, never negative, lower variance.
    K3,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PpoConfig {
    /// Update rule.
    #[serde(default = "d_algorithm")]
    pub algorithm: Algorithm,
    /// Adam learning rate; 3e-4 (cleanrl's PPO default for small MLPs).
    #[serde(default = "d_lr")]
    pub lr: f64,
    /// Passes over each round's batch; 4 (TRL `num_ppo_epochs`).
    #[serde(default = "d_epochs")]
    pub epochs: u32,
    /// Minibatches per pass; 4 (cleanrl `num_minibatches`).
    #[serde(default = "d_minibatches")]
    pub minibatches: u32,
    /// Policy ratio clip ε; 0.2 (TRL `cliprange`).
    #[serde(default = "d_clip")]
    pub clip: f64,
    /// Value clip around the old value; 0.2 (TRL `cliprange_value`).
    #[serde(default = "d_clip")]
    pub value_clip: f64,
    /// Value loss weight; 0.1 (TRL `vf_coef`).
    #[serde(default = "d_vf_coef")]
    pub vf_coef: f64,
    /// Entropy bonus weight; 0 (TRL adds none).
    #[serde(default)]
    pub entropy_coef: f64,
    /// KL penalty weight β; 0.05 (TRL `kl_coef`).
    #[serde(default = "d_kl_coef")]
    pub kl_coef: f64,
    /// KL estimator; k1 (TRL `kl_estimator` default).
    #[serde(default = "d_kl")]
    pub kl_estimator: KlEstimator,
    /// Discount γ; 1 (TRL `gamma`).
    #[serde(default = "d_one")]
    pub gamma: f64,
    /// GAE λ; 0.95 (TRL `lam`).
    #[serde(default = "d_lam")]
    pub lam: f64,
    /// Whiten advantages per batch; on (implementation detail #1 of Huang et al.).
    #[serde(default = "d_true")]
    pub whiten: bool,
    /// Global gradient-norm clip; 1.0 (TRL `max_grad_norm`).
    #[serde(default = "d_one")]
    pub max_grad_norm: f64,
}

fn d_algorithm() -> Algorithm {
    Algorithm::Ppo
}
fn d_lr() -> f64 {
    3e-4
}
fn d_epochs() -> u32 {
    4
}
fn d_minibatches() -> u32 {
    4
}
fn d_clip() -> f64 {
    0.2
}
fn d_vf_coef() -> f64 {
    0.1
}
fn d_kl_coef() -> f64 {
    0.05
}
fn d_kl() -> KlEstimator {
    KlEstimator::K1
}
fn d_one() -> f64 {
    1.0
}
fn d_lam() -> f64 {
    0.95
}
fn d_true() -> bool {
    true
}

impl PpoConfig {
    /// Out-of-range settings as (field, message).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let positive = [
            ("lr", self.lr),
            ("clip", self.clip),
            ("value_clip", self.value_clip),
            ("max_grad_norm", self.max_grad_norm),
        ];
        for (name, v) in positive {
            if v <= 0.0 {
                return Err((name, format!("`{name}` is {v}; it must be > 0")));
            }
        }
        for (name, v) in [
            ("vf_coef", self.vf_coef),
            ("entropy_coef", self.entropy_coef),
            ("kl_coef", self.kl_coef),
        ] {
            if v < 0.0 {
                return Err((name, format!("`{name}` is {v}; it must be ≥ 0")));
            }
        }
        for (name, v) in [("gamma", self.gamma), ("lam", self.lam)] {
            if !(0.0..=1.0).contains(&v) {
                return Err((name, format!("`{name}` is {v}; it must lie in [0, 1]")));
            }
        }
        if self.epochs == 0 || self.minibatches == 0 {
            return Err((
                "epochs",
                "`epochs` and `minibatches` must be at least 1".to_owned(),
            ));
        }
        Ok(())
    }
}

/// What one update did, logged per round.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UpdateStats {
    /// Mean aggregated reward (before the KL penalty).
    pub reward: f64,
    /// Mean KL to the reference (the configured estimator) on the rollouts.
    pub kl: f64,
    pub entropy: f64,
    /// Share of samples whose ratio was clipped, averaged over minibatches.
    pub clip_fraction: f64,
    pub value_loss: f64,
    /// Mean of (r − 1) − log r over minibatches: how far the update moved the policy.
    pub approx_kl: f64,
}

/// Generalised advantage estimation over one episode: Â_t = Σ_l (γλ)^l δ_{t+l} with
/// δ_t = r_t + γ V_{t+1} − V_t and V after the last step = 0.
pub fn gae(rewards: &[f64], values: &[f64], gamma: f64, lam: f64) -> Vec<f64> {
    let mut adv = vec![0.0; rewards.len()];
    let mut running = 0.0;
    for t in (0..rewards.len()).rev() {
        let next = values.get(t + 1).copied().unwrap_or(0.0);
        let delta = rewards[t] + gamma * next - values[t];
        running = delta + gamma * lam * running;
        adv[t] = running;
    }
    adv
}

/// One round's training data: the rollouts and their aggregated rewards (one per rollout);
/// `group_size` answers per question sit next to each other (RLOO/GRPO baselines).
pub struct Batch<'a> {
    pub rollouts: &'a Rollouts,
    pub rewards: &'a [f64],
    pub group_size: usize,
}

/// Why an update stopped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpdateError {
    /// A minibatch's gradient was not finite. The policy keeps the parameters of the last
    /// finite step.
    #[error("the policy update diverged at epoch {epoch}, minibatch {minibatch} ({cause}); lower `lr` (now {lr:e})")]
    Diverged {
        epoch: u32,
        minibatch: usize,
        lr: f64,
        cause: NonFiniteGradient,
    },
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// One round's update of `policy` toward higher aggregated reward, pulled toward its frozen
/// reference.
pub fn update(
    policy: &dyn Policy,
    adam: &mut Adam,
    data: &Batch<'_>,
    cfg: &PpoConfig,
    rng: &mut Rng,
) -> Result<UpdateStats, UpdateError> {
    let (batch, rewards, group_size) = (data.rollouts, data.rewards, data.group_size);
    let n = rewards.len();
    let ref_logp = policy.reference_log_prob(&batch.samples)?;
    let old_logp = &batch.log_probs;
    let mask = batch.samples.mask.as_ref();
    let kl = match cfg.kl_estimator {
        KlEstimator::K1 => old_logp - &ref_logp,
        KlEstimator::K3 => {
            let log_r = &ref_logp - old_logp;
            log_r.exp() - 1.0 - &log_r
        }
    };
    let kl_steps = steps(&kl, mask);
    let value_steps = steps(&batch.values, mask);
    if let Some(row) = kl_steps.iter().position(Vec::is_empty) {
        return Err(UpdateError::Policy(PolicyError(format!(
            "rollout {row} took no step, so its reward has nowhere to go"
        ))));
    }
    let (advantages, returns) = advantages(cfg, rewards, &kl_steps, &value_steps, group_size);
    let advantages = if cfg.whiten && cfg.algorithm == Algorithm::Ppo {
        let lens: Vec<usize> = advantages.iter().map(Vec::len).collect();
        let flat = whiten(&advantages.concat());
        split(&flat, &lens)
    } else {
        advantages
    };
    let adv_t = pack(&advantages, mask);
    let ret_t = pack(&returns, mask);
    let per_sample = [old_logp, &adv_t, &batch.values, &ret_t, &ref_logp];
    let mut order: Vec<i64> = (0..n as i64).collect();
    let mb = n.div_ceil(cfg.minibatches as usize).max(1);
    // Per-minibatch statistics stay tensors until the end: reading a scalar out of a tensor
    // is a synchronisation point, and there are 16 minibatches per update by default.
    let (mut clipped, mut approx, mut vloss) = (Vec::new(), Vec::new(), Vec::new());
    for epoch in 1..=cfg.epochs {
        order.shuffle(rng);
        // One gather per epoch; each minibatch is then a contiguous slice of it.
        let perm = Tensor::from_slice(&order);
        let samples = batch.samples.select(&perm);
        let shuffled: Vec<Tensor> = per_sample
            .iter()
            .map(|t| t.index_select(0, &perm))
            .collect();
        for (minibatch, start) in (0..n).step_by(mb).enumerate() {
            let len = mb.min(n - start) as i64;
            let [old, adv, v_old, ret, ref_lp] =
                std::array::from_fn(|i| shuffled[i].narrow(0, start as i64, len));
            let minibatch_samples = samples.narrow(start as i64, len);
            let loss = Loss {
                cfg,
                targets: Targets {
                    old_log_prob: &old,
                    advantages: &adv,
                    old_value: &v_old,
                    returns: &ret,
                    ref_log_prob: &ref_lp,
                    mask: minibatch_samples.mask.as_ref(),
                },
            };
            let stats = policy.backward(&minibatch_samples, &loss)?;
            adam.step_clip_norm(&policy.trainable(), cfg.max_grad_norm)
                .map_err(|cause| UpdateError::Diverged {
                    epoch,
                    minibatch: minibatch + 1,
                    lr: adam.lr,
                    cause,
                })?;
            clipped.push(stats.clip_fraction);
            approx.push(stats.approx_kl);
            vloss.extend(stats.value_loss);
        }
    }
    Ok(UpdateStats {
        reward: rewards.iter().sum::<f64>() / n as f64,
        // Per rollout, summed over its steps (TRL's `objective/kl`).
        kl: kl_steps.iter().map(|k| k.iter().sum::<f64>()).sum::<f64>() / n as f64,
        entropy: policy.entropy(&batch.samples)?,
        clip_fraction: mean_of(&clipped),
        value_loss: mean_of(&vloss),
        approx_kl: mean_of(&approx),
    })
}

/// Per step of each rollout, the advantages (before whitening) and the value targets, from
/// its aggregated reward, its steps' KL to the reference and the values before them.
fn advantages(
    cfg: &PpoConfig,
    rewards: &[f64],
    kl_steps: &[Vec<f64>],
    value_steps: &[Vec<f64>],
    group_size: usize,
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let n = rewards.len();
    match cfg.algorithm {
        // The KL penalty at every step and the aggregated reward added at the last one (as
        // TRL's PPO trainer shapes them), then GAE along the row.
        Algorithm::Ppo => {
            let adv: Vec<Vec<f64>> = (0..n)
                .map(|i| {
                    let mut shaped: Vec<f64> =
                        kl_steps[i].iter().map(|k| -cfg.kl_coef * k).collect();
                    if let Some(last) = shaped.last_mut() {
                        *last += rewards[i];
                    }
                    gae(&shaped, &value_steps[i], cfg.gamma, cfg.lam)
                })
                .collect();
            let ret = adv
                .iter()
                .zip(value_steps)
                .map(|(a, v)| a.iter().zip(v).map(|(a, v)| a + v).collect())
                .collect();
            (adv, ret)
        }
        // The critic-free rules score whole rollouts: RLOO's reward carries the row's summed
        // KL; each row's advantage is then every one of its steps'.
        Algorithm::Rloo => {
            let shaped: Vec<f64> = rewards
                .iter()
                .zip(kl_steps)
                .map(|(r, k)| r - cfg.kl_coef * k.iter().sum::<f64>())
                .collect();
            broadcast(&leave_one_out(&shaped, group_size), kl_steps)
        }
        Algorithm::Grpo => broadcast(&standardise_groups(rewards, group_size), kl_steps),
    }
}

/// The mean of scalar tensors, read once (0 for none, as RLOO/GRPO have no value loss).
fn mean_of(scalars: &[Tensor]) -> f64 {
    if scalars.is_empty() {
        return 0.0;
    }
    Tensor::stack(scalars, 0)
        .mean(DType::Double)
        .double_value(&[])
}

fn to_vec(t: &Tensor) -> Vec<f64> {
    Vec::<f32>::try_from(t.to_kind(DType::Float).flatten(0, -1))
        .expect("f32 tensor")
        .into_iter()
        .map(f64::from)
        .collect()
}

/// Each row's steps of `t`: [N] is one step per row; [N, T] under `mask` is each row's
/// first T_i entries.
fn steps(t: &Tensor, mask: Option<&Tensor>) -> Vec<Vec<f64>> {
    let flat = to_vec(t);
    match mask {
        None => flat.into_iter().map(|x| vec![x]).collect(),
        Some(m) => {
            let lens = step_counts(m);
            let width = (flat.len() / lens.len().max(1)).max(1);
            flat.chunks(width)
                .zip(&lens)
                .map(|(row, &len)| row[..len].to_vec())
                .collect()
        }
    }
}

/// Steps per row of a [N, T] mask.
fn step_counts(mask: &Tensor) -> Vec<usize> {
    to_vec(&mask.sum_dim_intlist(-1, false, DType::Float))
        .into_iter()
        .map(|x| x as usize)
        .collect()
}

/// Rows of steps back into a tensor shaped as [`steps`] read them (zeros past each row's end).
fn pack(rows: &[Vec<f64>], mask: Option<&Tensor>) -> Tensor {
    let f32s = |xs: &[f64]| xs.iter().map(|&x| x as f32).collect::<Vec<_>>();
    match mask {
        None => Tensor::from_slice(&f32s(&rows.concat())),
        Some(m) => {
            let width = m.size()[1];
            let mut flat = vec![0.0f32; rows.len() * width as usize];
            for (row, out) in rows.iter().zip(flat.chunks_mut(width as usize)) {
                out[..row.len()].copy_from_slice(&f32s(row));
            }
            Tensor::from_slice(&flat).view([rows.len() as i64, width])
        }
    }
}

/// `flat` cut into consecutive rows of `lens`.
fn split(flat: &[f64], lens: &[usize]) -> Vec<Vec<f64>> {
    let mut rest = flat;
    lens.iter()
        .map(|&len| {
            let (row, tail) = rest.split_at(len);
            rest = tail;
            row.to_vec()
        })
        .collect()
}

/// Each row's one value at every one of its steps.
fn broadcast(per_row: &[f64], steps: &[Vec<f64>]) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let adv = per_row
        .iter()
        .zip(steps)
        .map(|(&a, s)| vec![a; s.len()])
        .collect();
    let ret = steps.iter().map(|s| vec![0.0; s.len()]).collect();
    (adv, ret)
}

fn whiten(xs: &[f64]) -> Vec<f64> {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    xs.iter()
        .map(|x| (x - mean) / (var.sqrt() + 1e-8))
        .collect()
}

/// r_i − mean of the other rewards of the same question.
fn leave_one_out(rewards: &[f64], group: usize) -> Vec<f64> {
    rewards
        .chunks(group)
        .flat_map(|g| {
            let sum: f64 = g.iter().sum();
            let k = g.len() as f64;
            g.iter().map(move |r| {
                if k > 1.0 {
                    r - (sum - r) / (k - 1.0)
                } else {
                    0.0
                }
            })
        })
        .collect()
}

/// (r_i − mean) / std within each question's samples.
fn standardise_groups(rewards: &[f64], group: usize) -> Vec<f64> {
    rewards
        .chunks(group)
        .flat_map(|g| {
            let k = g.len() as f64;
            let mean = g.iter().sum::<f64>() / k;
            let std = (g.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / k).sqrt();
            g.iter().map(move |r| (r - mean) / (std + 1e-4))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gae_matches_hand_computation() {
        // γ = 0.9, λ = 0.5, r = [1, 0, 2], V = [0.5, 0.4, 0.3]:
        // δ = [1 + .36 − .5, 0 + .27 − .4, 2 − .3] = [0.86, −0.13, 1.7]
        // A2 = 1.7, A1 = −0.13 + .45·1.7 = 0.635, A0 = 0.86 + .45·0.635 = 1.14575
        let a = gae(&[1.0, 0.0, 2.0], &[0.5, 0.4, 0.3], 0.9, 0.5);
        for (x, y) in a.iter().zip([1.14575, 0.635, 1.7]) {
            assert!((x - y).abs() < 1e-12, "{a:?}");
        }
        // A length-1 episode's advantage is r − V.
        let a = gae(&[0.75], &[0.25], 1.0, 0.95);
        assert_eq!(a, vec![0.5]);
    }

    /// A written answer's steps: the KL penalty at each, the reward added at the last, GAE
    /// along the row (γ = 1, λ = 0.95), ragged rows kept apart.
    #[test]
    fn per_token_advantages_match_hand_computation() {
        let cfg: PpoConfig = serde_json::from_str("{}").expect("defaults");
        assert_eq!((cfg.gamma, cfg.lam, cfg.kl_coef), (1.0, 0.95, 0.05));
        let kl = vec![vec![0.1, 0.2], vec![0.3]];
        let values = vec![vec![0.5, 0.4], vec![0.2]];
        let (adv, ret) = advantages(&cfg, &[1.0, 0.0], &kl, &values, 1);
        // Row 0: shaped [−0.005, 0.99]; δ = [−0.005 + 0.4 − 0.5, 0.99 − 0.4] = [−0.105, 0.59];
        // A = [−0.105 + 0.95·0.59, 0.59] = [0.4555, 0.59]. Row 1: A = −0.015 − 0.2.
        let expected = [vec![0.4555, 0.59], vec![-0.215]];
        let expected_ret = [vec![0.9555, 0.99], vec![-0.015]];
        for (got, want) in adv
            .iter()
            .chain(&ret)
            .zip(expected.iter().chain(&expected_ret))
        {
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 1e-12, "{adv:?} {ret:?}");
            }
        }
        let mask = Tensor::from_slice(&[1.0f32, 1.0, 1.0, 0.0]).view([2, 2]);
        let packed = pack(&adv, Some(&mask));
        assert_eq!(steps(&packed, Some(&mask)).concat().len(), 3);
        assert_eq!(to_vec(&packed)[3], 0.0);
    }

    #[test]
    fn baselines() {
        assert_eq!(
            leave_one_out(&[1.0, 2.0, 3.0], 3),
            vec![1.0 - 2.5, 0.0, 3.0 - 1.5]
        );
        let s = standardise_groups(&[1.0, 3.0, 5.0, 5.0], 2);
        assert!((s[0] + s[1]).abs() < 1e-12 && s[0] < 0.0 && s[2] == 0.0);
        let w = whiten(&[1.0, 2.0, 3.0]);
        assert!(w.iter().sum::<f64>().abs() < 1e-12);
    }

    /// One full-batch PPO step leaves in the gradient buffer what autograd gives for the same
    /// loss written out directly: the update's wiring (reference log-probs, KL-shaped reward,
    /// whitened advantages, returns, permuted minibatch) agrees with the textbook objective.
    #[test]
    fn a_full_batch_step_matches_autograd() {
        use crate::data::Questions;
        use crate::policy::net::{assert_grad_matches, autograd_forward};
        use crate::policy::{autograd_log_prob, MlpPolicy, Net, RolloutKind};
        use crate::stage::QuestionBank;
        use tch::Kind as DType;
        for kind in [RolloutKind::Choice, RolloutKind::Distribution] {
            let mut rng = crate::rng::stream(5, &["ppo"]);
            let policy = MlpPolicy::new(Net::new(3, 8, 2, 4, -0.5, &mut rng), kind, 4);
            // Away from its reference, so the KL penalty is not zero.
            let _ = policy.net.params().shallow_clone().g_add_scalar_(0.05);
            let bank = QuestionBank {
                questions: Questions::with_features(
                    4,
                    (0..16)
                        .map(|q| (0..3).map(|f| ((q * 5 + f) as f32 * 0.7).cos()).collect())
                        .collect(),
                ),
                train: Vec::new(),
                eval: Vec::new(),
            };
            let questions: Vec<usize> = (0..16).collect();
            let rollouts = policy.sample(&bank, &questions, &mut rng).unwrap();
            let (features, actions) = (&rollouts.samples.inputs[0], &rollouts.samples.actions);
            let rewards: Vec<f64> = (0..16).map(|i| (i as f64 * 1.3).sin()).collect();
            let mut cfg: PpoConfig = serde_json::from_str("{}").expect("defaults");
            (cfg.epochs, cfg.minibatches, cfg.entropy_coef) = (1, 1, 0.01);
            cfg.max_grad_norm = 1e9; // so clipping leaves the gradient buffer as it was

            let (leaves, head, value) = autograd_forward(&policy.net, features);
            let log_std = &leaves[0].1;
            let (lp, entropy) = autograd_log_prob(kind, &head, actions, log_std);
            // The loss's entropy term is the batch mean.
            let entropy = entropy / 16.0;
            let ref_lp = policy.reference_log_prob(&rollouts.samples).unwrap();
            let kl = to_vec(&(&rollouts.log_probs - &ref_lp));
            let old_v = to_vec(&rollouts.values);
            let shaped: Vec<f64> = rewards.iter().zip(&kl).map(|(r, k)| r - 0.05 * k).collect();
            let adv: Vec<f64> = shaped.iter().zip(&old_v).map(|(s, v)| s - v).collect();
            let f32s =
                |xs: &[f64]| Tensor::from_slice(&xs.iter().map(|&x| x as f32).collect::<Vec<_>>());
            let (adv_t, ret_t) = (f32s(&whiten(&adv)), f32s(&shaped));
            let ratio = (&lp - &rollouts.log_probs).exp();
            let pg = (-&adv_t * &ratio)
                .maximum(&(-&adv_t * ratio.clamp(0.8, 1.2)))
                .mean(DType::Float);
            let v_clip = &rollouts.values + (&value - &rollouts.values).clamp(-0.2, 0.2);
            let vf = (&value - &ret_t)
                .square()
                .maximum(&(v_clip - &ret_t).square())
                .mean(DType::Float)
                * 0.5;
            let loss: Tensor = pg + vf * 0.1 - entropy * 0.01;
            loss.backward();

            let mut adam = Adam::new(&policy.trainable(), 1e-3);
            let data = Batch {
                rollouts: &rollouts,
                rewards: &rewards,
                group_size: 1,
            };
            let stats = update(&policy, &mut adam, &data, &cfg, &mut rng).expect("finite");
            assert!(stats.kl.abs() > 1e-6, "the reference differs: {stats:?}");
            assert_grad_matches(&policy.net, &leaves);
        }
    }
}
