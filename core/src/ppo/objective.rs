//! The minibatch loss of the policy update, differentiated by hand with respect to each
//! sample's log π(a), value and entropy; [`crate::policy::Policy::backward`] takes it from
//! there to the parameters.
//!
//! For m samples with advantages A, ratios r = exp(log π − log π_old) and returns R:
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

/// One minibatch's inputs to the loss, each [m].
pub struct Minibatch<'a> {
    pub log_prob: &'a Tensor,
    pub old_log_prob: &'a Tensor,
    pub advantages: &'a Tensor,
    pub value: &'a Tensor,
    pub old_value: &'a Tensor,
    pub returns: &'a Tensor,
    /// log π_ref of the actions (GRPO's KL term only).
    pub ref_log_prob: &'a Tensor,
}

/// ∂L per sample, and the statistics logged for the minibatch (scalar tensors, read once
/// per update).
pub struct Gradients {
    pub log_prob: Tensor,
    /// Absent when the algorithm has no value loss.
    pub value: Option<Tensor>,
    /// ∂L/∂H_i, the same for every sample.
    pub entropy: f64,
    pub clip_fraction: Tensor,
    pub approx_kl: Tensor,
    pub value_loss: Option<Tensor>,
}

pub fn gradients(cfg: &PpoConfig, b: &Minibatch<'_>) -> Gradients {
    let m = b.log_prob.size()[0] as f64;
    let log_ratio = b.log_prob - b.old_log_prob;
    let ratio = log_ratio.exp();
    let unclipped = b.advantages * &ratio;
    let clipped = b.advantages * ratio.clamp(1.0 - cfg.clip, 1.0 + cfg.clip);
    // −A·r is the max exactly when A·r ≤ A·clip(r); otherwise the clipped branch is, and its
    // gradient through r is 0. ∂(−A·r)/∂log π = −A·r.
    let live = unclipped.le_tensor(&clipped);
    let mut d_log_prob = (unclipped * (-1.0 / m)).where_scalarother(&live, 0.0);
    if cfg.algorithm == Algorithm::Grpo {
        // ∂(ρ − 1 − log ρ)/∂log π = 1 − ρ, with log ρ = log π_ref − log π.
        let rho = (b.ref_log_prob - b.log_prob).exp();
        d_log_prob += (1.0 - rho) * (cfg.kl_coef / m);
    }
    let (value, value_loss) = if cfg.algorithm == Algorithm::Ppo {
        let (d, loss) = value_gradient(cfg, b, m);
        (Some(d), Some(loss))
    } else {
        (None, None)
    };
    Gradients {
        log_prob: d_log_prob,
        value,
        entropy: -cfg.entropy_coef / m,
        clip_fraction: (&ratio - 1.0)
            .abs()
            .gt(cfg.clip)
            .to_kind(DType::Float)
            .mean(DType::Float),
        approx_kl: ((&ratio - 1.0) - &log_ratio).mean(DType::Float),
        value_loss,
    }
}

/// (∂L/∂V per sample, the clipped value loss ½·mean max(…)).
fn value_gradient(cfg: &PpoConfig, b: &Minibatch<'_>, m: f64) -> (Tensor, Tensor) {
    let step = b.value - b.old_value;
    let error = b.value - b.returns;
    let clipped_error = b.old_value + step.clamp(-cfg.value_clip, cfg.value_clip) - b.returns;
    let (sq, clipped_sq) = (error.square(), clipped_error.square());
    let loss = sq.maximum(&clipped_sq).mean(DType::Float) * 0.5;
    // Inside the clip range the two branches are the same value (up to rounding), and the
    // gradient is the unclipped one's; outside it, the clipped branch is constant in V.
    let inside = step.abs().le(cfg.value_clip);
    let live = inside.logical_or(&sq.ge_tensor(&clipped_sq));
    let d = (error * (cfg.vf_coef / m)).where_scalarother(&live, 0.0);
    (d, loss)
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

    /// The hand-derived gradients equal autograd's on the loss written as in the module doc,
    /// with ratios and value steps wide enough that many samples sit outside the clip ranges.
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
            let b = Minibatch {
                log_prob: &log_prob.detach(),
                old_log_prob: &old_log_prob,
                advantages: &advantages,
                value: &value.detach(),
                old_value: &old_value,
                returns: &returns,
                ref_log_prob: &ref_log_prob,
            };
            let ours = gradients(&cfg, &b);

            let ratio = (&log_prob - &old_log_prob).exp();
            let pg = (-&advantages * &ratio)
                .maximum(&(-&advantages * ratio.clamp(1.0 - cfg.clip, 1.0 + cfg.clip)))
                .mean(DType::Float);
            let mut loss = pg - cfg.entropy_coef * entropy.mean(DType::Float);
            match algorithm {
                Algorithm::Ppo => {
                    let v_clip =
                        &old_value + (&value - &old_value).clamp(-cfg.value_clip, cfg.value_clip);
                    let vf = (&value - &returns)
                        .square()
                        .maximum(&(v_clip - &returns).square())
                        .mean(DType::Float)
                        * 0.5;
                    let ours_loss = ours.value_loss.as_ref().expect("PPO has a value loss");
                    assert!((&vf - ours_loss).abs().double_value(&[]) < 1e-6);
                    loss += cfg.vf_coef * vf;
                }
                Algorithm::Grpo => {
                    let log_rho = &ref_log_prob - &log_prob;
                    loss += cfg.kl_coef * (log_rho.exp() - 1.0 - log_rho).mean(DType::Float);
                }
                Algorithm::Rloo => {}
            }
            loss.backward();
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
            let out = (&ratio - 1.0).abs().gt(cfg.clip).to_kind(DType::Float);
            let share = out.mean(DType::Float).double_value(&[]);
            assert!(
                share > 0.1 && share < 0.9,
                "share outside the clip range {share}"
            );
        }
    }
}
