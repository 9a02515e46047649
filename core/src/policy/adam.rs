//! Adam with global grad-norm clipping, its state held as tensors we own.
//!
//! tch's optimiser keeps Adam's moments inside libtorch where they cannot be saved, and a
//! resumed run must continue with the same moments to end on the same numbers as an
//! uninterrupted one. So the update is written out here (Kingma & Ba 2015, Algorithm 1), on
//! the network's flat parameter and gradient buffers: a few whole-buffer ops per step,
//! whatever the number of layers.
use tch::Tensor;

use super::net::{Net, Shape};

/// A step refused because the gradient is not finite: the update has diverged (typically a
/// learning rate far too high). Parameters and moments are left as they were, so the last
/// good state, and any checkpoint of it, stays intact.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("the gradient norm is {0}")]
pub struct NonFiniteGradient(pub f64);

#[derive(Debug)]
pub struct Adam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Steps taken so far (for bias correction).
    pub step: i64,
    shape: Shape,
    /// First and second moments, in the network's flat layout.
    m: Tensor,
    v: Tensor,
}

impl Adam {
    pub fn new(net: &Net, lr: f64) -> Adam {
        let shape = net.shape();
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            step: 0,
            shape,
            m: shape.zeros(),
            v: shape.zeros(),
        }
    }

    /// An independent copy of the optimiser state, for the updated copy of the policy.
    pub fn duplicate(&self) -> Adam {
        Adam {
            m: self.m.copy(),
            v: self.v.copy(),
            ..*self
        }
    }

    /// (parameter name, first moment, second moment) as views, sorted by name: writing to
    /// them writes the optimiser state (checkpoints save and restore through these).
    pub fn moments(&self) -> Vec<(String, Tensor, Tensor)> {
        self.shape
            .named(&self.m)
            .into_iter()
            .zip(self.shape.named(&self.v))
            .map(|((name, m), (_, v))| (name, m, v))
            .collect()
    }

    /// Rescales `net`'s gradient so its global L2 norm is at most `max_norm` (the "clip by
    /// global norm" of the PPO implementation-details list) and takes one Adam step. Returns
    /// the norm before clipping.
    pub fn step_clip_norm(&mut self, net: &Net, max_norm: f64) -> Result<f64, NonFiniteGradient> {
        let mut g = net.grad().shallow_clone();
        // The one scalar read of the step: every read from a tensor is a synchronisation.
        let norm = g.norm().double_value(&[]);
        if !norm.is_finite() {
            return Err(NonFiniteGradient(norm));
        }
        if norm > max_norm {
            let _ = g.g_mul_scalar_(max_norm / (norm + 1e-6));
        }
        self.step += 1;
        let c1 = 1.0 - self.beta1.powi(self.step as i32);
        let c2 = 1.0 - self.beta2.powi(self.step as i32);
        // m ← β1·m + (1−β1)·g and v ← β2·v + (1−β2)·g², as lerps toward g and g².
        let _ = self.m.lerp_(&g, 1.0 - self.beta1);
        let _ = self.v.lerp_(&g.square(), 1.0 - self.beta2);
        let mut denom = self.v.sqrt();
        let _ = denom.g_div_scalar_(c2.sqrt());
        let _ = denom.g_add_scalar_(self.eps);
        let _ = net
            .params()
            .shallow_clone()
            .addcdiv_(&(&self.m * (-self.lr / c1)), &denom);
        Ok(norm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind as DType;

    /// One step on a known gradient moves every parameter by −lr·sign(g) (Adam's first step,
    /// m̂ = g and v̂ = g²), after clipping to the global norm.
    #[test]
    fn first_step_is_lr_times_the_sign() {
        let net = Net::new(2, 3, 1, 2, 0.0, &mut crate::rng::stream(1, &["adam"]));
        let before = net.params().copy();
        let _ = net.grad().shallow_clone().fill_(-3.0);
        let mut adam = Adam::new(&net, 0.01);
        let norm = adam.step_clip_norm(&net, 1.0).expect("a finite gradient");
        let n = net.params().numel() as f64;
        assert!((norm - 3.0 * n.sqrt()).abs() < 1e-4, "{norm}");
        let moved = (net.params() - before - 0.01).abs().max().double_value(&[]);
        assert!(moved < 1e-6, "{moved}");
        let m = adam.moments();
        assert_eq!(m.len(), net.named().len());
        let first = m[0].1.abs().sum(DType::Float).double_value(&[]);
        assert!(first > 0.0);
    }

    /// A NaN or infinite gradient is refused and changes nothing.
    #[test]
    fn a_non_finite_gradient_is_refused() {
        let net = Net::new(2, 3, 1, 2, 0.0, &mut crate::rng::stream(1, &["adam"]));
        let mut adam = Adam::new(&net, 0.01);
        let _ = net.grad().shallow_clone().fill_(1.0);
        adam.step_clip_norm(&net, 1.0).expect("a finite gradient");
        let (params, m) = (net.params().copy(), adam.moments()[0].1.copy());
        for bad in [f64::NAN, f64::INFINITY] {
            let _ = net.grad().shallow_clone().fill_(bad);
            let err = adam.step_clip_norm(&net, 1.0).expect_err("refused");
            assert!(!err.0.is_finite());
            assert!(net.params().equal(&params) && adam.moments()[0].1.equal(&m));
            assert_eq!(adam.step, 1);
        }
    }
}
