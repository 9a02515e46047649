//! Supervised pre-training of the initial policy: the simulator's stand-in for a pretrained
//! base model.
//!
//! Real RLHF starts from a pretrained model whose answers already lean toward the people who
//! wrote its corpus (base LLMs answer opinion surveys closer to the US than to most countries),
//! and the KL penalty anchors the update to that model. Fitting the initial policy to one
//! answer distribution per training question gives a simulated study the same shape: the
//! anchor is a base with opinions, not a random network with none.
use tch::{Kind as DType, Tensor};

use super::adam::{Adam, NonFiniteGradient};
use super::net::Net;

/// How far the fit got: mean KL(target ‖ policy) over the training questions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PretrainStats {
    pub kl_start: f64,
    pub kl_end: f64,
}

/// Fits `net`'s answer head by full-batch Adam (global norm clipped at 1) to `targets`
/// ([N, K], rows summing to 1) on the features `x` ([N, F]), minimising the mean
/// KL(target ‖ softmax(head)), whose gradient at the head is (p − target)/N. The value head
/// and log σ get zero gradient and stay as initialised.
pub fn fit(
    net: &Net,
    x: &Tensor,
    targets: &Tensor,
    epochs: u32,
    lr: f64,
) -> Result<PretrainStats, NonFiniteGradient> {
    let n = x.size()[0] as f64;
    let target_entropy = (targets * targets.clamp_min(1e-12).log())
        .sum(DType::Float)
        .double_value(&[])
        / n;
    let kl =
        |logp: &Tensor| target_entropy - (targets * logp).sum(DType::Float).double_value(&[]) / n;
    let mut adam = Adam::new(&net.trainable(), lr);
    let mut kl_start = f64::NAN;
    for epoch in 0..epochs {
        let acts = net.forward(x);
        let logp = acts.head().log_softmax(-1, DType::Float);
        if epoch == 0 {
            kl_start = kl(&logp);
        }
        let d_head = (logp.exp() - targets) / n;
        net.backward(&acts, &d_head, None, None);
        adam.step_clip_norm(&net.trainable(), 1.0)?;
    }
    let logp = net.forward(x).head().log_softmax(-1, DType::Float);
    let kl_end = kl(&logp);
    Ok(PretrainStats {
        kl_start: if epochs == 0 { kl_end } else { kl_start },
        kl_end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A net fitted to fixed targets ends close to them, and the KL falls.
    #[test]
    fn fitting_moves_the_answers_to_the_targets() {
        let mut rng = crate::rng::stream(3, &["pretrain-test"]);
        let net = Net::new(4, 16, 1, 3, -0.5, &mut rng);
        let x = Tensor::from_slice(&[
            1.0f32, 0.0, 0.0, 0.5, 0.0, 1.0, 0.0, -0.5, 0.0, 0.0, 1.0, 0.2,
        ])
        .view([3, 4]);
        let targets =
            Tensor::from_slice(&[0.7f32, 0.2, 0.1, 0.1, 0.8, 0.1, 0.25, 0.25, 0.5]).view([3, 3]);
        let stats = fit(&net, &x, &targets, 400, 0.02).unwrap();
        assert!(stats.kl_end < 1e-3, "{stats:?}");
        assert!(stats.kl_start > 10.0 * stats.kl_end, "{stats:?}");
        let p = net.forward(&x).head().softmax(-1, DType::Float);
        let gap = (p - &targets).abs().max().double_value(&[]);
        assert!(gap < 0.03, "largest gap {gap}");
    }
}
