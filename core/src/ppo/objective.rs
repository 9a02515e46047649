//! The minibatch loss of the policy update. [`Loss::forward`] defines it, in differentiable
//! operations, for policies on autograd; [`Loss::gradients`] is its derivative with respect to
//! each sample's log π(a), value and entropy written out, for policies that differentiate by
//! hand (the MLP), and is tested against autograd on the definition.
//!
//! For m samples with advantages A, ratios r = exp(log π − log π_old) and returns R (for
//! written answers, the m steps are the tokens of the minibatch's rows, and each mean is over
//! them, as TRL's masked means are):
//!
//!   L = (1/m) Σ max(−A·r, −A·clip(r, 1 ± ε))                           clipped surrogate
//!     + c_v · (1/2m) Σ max((V − R)², (V_old + clip(V − V_old, ±ε_v) − R)²)  (PPO)
//!     + β · (1/m) Σ (ρ − 1 − log ρ),  ρ = π_ref/π                       (GRPO's k3)
//!     − c_H · (1/m) Σ H
//!
//! At a tie of the max (inside the clip range both branches are equal) the gradient is the
//! unclipped branch's, which is what autograd's half-and-half split sums to there.
use tch::{Kind as DType, Tensor};

use super::{Algorithm, PpoConfig};

/// What a minibatch's loss holds fixed, each [m] (or [m, T] under `mask`): from the rollouts, the reference and the
/// advantage pass.
pub struct Targets<'a> {
    pub old_log_prob: &'a Tensor,
    pub advantages: &'a Tensor,
    pub old_value: &'a Tensor,
    pub returns: &'a Tensor,
    /// log π_ref of the actions (GRPO's KL term only).
    pub ref_log_prob: &'a Tensor,
    /// Which entries are steps, for sequences ([m, T]); `None`: every entry is.
    pub mask: Option<&'a Tensor>,
}

/// The loss of one minibatch as a function of the policy's log π(a), V and H per sample.
pub struct Loss<'a> {
    pub cfg: &'a PpoConfig,
    pub targets: Targets<'a>,
}

/// ∂L per sample, for policies that differentiate by hand.
pub struct Gradients {
    pub log_prob: Tensor,
    /// Absent when the algorithm has no value loss.
    pub value: Option<Tensor>,
    /// ∂L/∂H_i, the same for every sample.
    pub entropy: f64,
}

/// What a minibatch step logs (scalar tensors, read once per update).
pub struct LossStats {
    pub clip_fraction: Tensor,
    pub approx_kl: Tensor,
    pub value_loss: Option<Tensor>,
}

impl Loss<'_> {
    /// L as the module doc writes it, in differentiable operations: the definition, which
    /// autograd policies differentiate and the hand-derived [`Loss::gradients`] are tested
    /// against.
    pub fn forward(&self, log_prob: &Tensor, value: &Tensor, entropy: &Tensor) -> Tensor {
        let (cfg, t) = (self.cfg, &self.targets);
        let ratio = (log_prob - t.old_log_prob).exp();
        let surrogate = (-t.advantages * &ratio)
            .maximum(&(-t.advantages * ratio.clamp(1.0 - cfg.clip, 1.0 + cfg.clip)));
        let mut loss = self.mean(&surrogate) - cfg.entropy_coef * self.mean(entropy);
        match cfg.algorithm {
            Algorithm::Ppo => loss += cfg.vf_coef * self.value_loss(value),
            Algorithm::Grpo => {
                let log_rho = t.ref_log_prob - log_prob;
                loss += cfg.kl_coef * self.mean(&(log_rho.exp() - 1.0 - log_rho));
            }
            Algorithm::Rloo => {}
        }
        loss
    }

    /// ½·mean max((V − R)², (V_old + clip(V − V_old, ±ε_v) − R)²).
    fn value_loss(&self, value: &Tensor) -> Tensor {
        let t = &self.targets;
        let v_clip =
            t.old_value + (value - t.old_value).clamp(-self.cfg.value_clip, self.cfg.value_clip);
        self.mean(
            &(value - t.returns)
                .square()
                .maximum(&(v_clip - t.returns).square()),
        ) * 0.5
    }

    /// The mean over the minibatch's steps.
    fn mean(&self, x: &Tensor) -> Tensor {
        match self.targets.mask {
            None => x.mean(DType::Float),
            Some(m) => (x * m).sum(DType::Float) / m.sum(DType::Float),
        }
    }

    /// The minibatch's clip fraction, approximate KL and (PPO) value loss.
    pub fn stats(&self, log_prob: &Tensor, value: &Tensor) -> LossStats {
        let log_ratio = log_prob - self.targets.old_log_prob;
        let ratio = log_ratio.exp();
        LossStats {
            clip_fraction: self.mean(&(&ratio - 1.0).abs().gt(self.cfg.clip).to_kind(DType::Float)),
            approx_kl: self.mean(&((&ratio - 1.0) - &log_ratio)),
            value_loss: (self.cfg.algorithm == Algorithm::Ppo)
                .then(|| self.value_loss(&value.detach())),
        }
    }

    /// ∂L/∂log π, ∂L/∂V and ∂L/∂H per sample, written out, for one-step samples (no mask).
    pub fn gradients(&self, log_prob: &Tensor, value: &Tensor) -> Gradients {
        let (cfg, t) = (self.cfg, &self.targets);
        let m = log_prob.size()[0] as f64;
        let ratio = (log_prob - t.old_log_prob).exp();
        let unclipped = t.advantages * &ratio;
        let clipped = t.advantages * ratio.clamp(1.0 - cfg.clip, 1.0 + cfg.clip);
        // −A·r is the max exactly when A·r ≤ A·clip(r); otherwise the clipped branch is, and
        // its gradient through r is 0. ∂(−A·r)/∂log π = −A·r.
        let live = unclipped.le_tensor(&clipped);
        let mut d_log_prob = (unclipped * (-1.0 / m)).where_scalarother(&live, 0.0);
        if cfg.algorithm == Algorithm::Grpo {
            // ∂(ρ − 1 − log ρ)/∂log π = 1 − ρ, with log ρ = log π_ref − log π.
            let rho = (t.ref_log_prob - log_prob).exp();
            d_log_prob += (1.0 - rho) * (cfg.kl_coef / m);
        }
        Gradients {
            log_prob: d_log_prob,
            value: (cfg.algorithm == Algorithm::Ppo).then(|| self.value_gradient(value, m)),
            entropy: -cfg.entropy_coef / m,
        }
    }

    /// ∂L/∂V per sample.
    fn value_gradient(&self, value: &Tensor, m: f64) -> Tensor {
        let t = &self.targets;
        let step = value - t.old_value;
        let error = value - t.returns;
        let clipped_error =
            t.old_value + step.clamp(-self.cfg.value_clip, self.cfg.value_clip) - t.returns;
        // Inside the clip range the two branches are the same value (up to rounding), and the
        // gradient is the unclipped one's; outside it, the clipped branch is constant in V.
        let inside = step.abs().le(self.cfg.value_clip);
        let live = inside.logical_or(&error.square().ge_tensor(&clipped_error.square()));
        (error * (self.cfg.vf_coef / m)).where_scalarother(&live, 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn cfg(algorithm: Algorithm) -> PpoConfig {
        let mut cfg: PpoConfig = serde_json::from_str("{}").expect("defaults");
        cfg.algorithm = algorithm;
        cfg.entropy_coef = 0.01;
        cfg
    }

    fn randn(seed: i64, scale: f64) -> Tensor {
        tch::manual_seed(seed);
        Tensor::randn([64], (DType::Float, Device::Cpu)) * scale
    }

    /// The hand-derived gradients equal autograd's on [`Loss::forward`], with ratios and value
    /// steps wide enough that many samples sit outside the clip ranges.
    #[test]
    fn gradients_match_autograd() {
        for algorithm in [Algorithm::Ppo, Algorithm::Grpo, Algorithm::Rloo] {
            let cfg = cfg(algorithm);
            let log_prob = randn(1, 0.3).set_requires_grad(true);
            let value = randn(2, 1.0).set_requires_grad(true);
            let entropy = randn(3, 1.0).set_requires_grad(true);
            let old_log_prob = randn(4, 0.3) + &log_prob.detach();
            let (advantages, old_value, returns) = (randn(5, 1.0), randn(6, 1.0), randn(7, 1.0));
            let ref_log_prob = randn(8, 0.5);
            let loss = Loss {
                cfg: &cfg,
                targets: Targets {
                    old_log_prob: &old_log_prob,
                    advantages: &advantages,
                    old_value: &old_value,
                    returns: &returns,
                    ref_log_prob: &ref_log_prob,
                    mask: None,
                },
            };
            let ours = loss.gradients(&log_prob.detach(), &value.detach());
            loss.forward(&log_prob, &value, &entropy).backward();
            let close = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]) < 1e-6;
            assert!(
                close(&log_prob.grad(), &ours.log_prob),
                "{algorithm:?} log π"
            );
            match &ours.value {
                Some(d) => assert!(close(&value.grad(), d), "{algorithm:?} value"),
                None => assert!(!value.grad().defined(), "{algorithm:?} has no value loss"),
            }
            let d_entropy = entropy.grad().mean(DType::Float).double_value(&[]);
            assert!((d_entropy - ours.entropy).abs() < 1e-9);
            // The test means something only if both sides of each clip were exercised.
            let stats = loss.stats(&log_prob.detach(), &value.detach());
            let share = stats.clip_fraction.double_value(&[]);
            assert!(
                share > 0.1 && share < 0.9,
                "share outside the clip range {share}"
            );
            assert_eq!(stats.value_loss.is_some(), algorithm == Algorithm::Ppo);
        }
    }
}
