//! Adam with global grad-norm clipping, its state held as tensors we own, keyed by the name of
//! the tensor it updates.
//!
//! tch's optimiser keeps Adam's moments inside libtorch where they cannot be saved, and a
//! resumed run must continue with the same moments to end on the same numbers as an
//! uninterrupted one. So the update is written out here (Kingma & Ba 2015, Algorithm 1). It
//! works on whatever a model calls trainable: the MLP hands over its one flat buffer (a few
//! whole-buffer ops per step, whatever the number of layers), a language model its adapters
//! and value head, each by name.
use std::collections::BTreeMap;

use tch::{Kind, Tensor};

/// One trainable tensor: its value, updated in place, and the gradient written for it.
#[derive(Debug)]
pub struct Param {
    pub name: String,
    pub value: Tensor,
    pub grad: Tensor,
}

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
    /// First and second moments by parameter name, shaped as the parameter.
    moments: BTreeMap<String, (Tensor, Tensor)>,
}

impl Adam {
    /// Fresh moments for `params`.
    pub fn new(params: &[Param], lr: f64) -> Adam {
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            step: 0,
            moments: params
                .iter()
                .map(|p| (p.name.clone(), (p.value.zeros_like(), p.value.zeros_like())))
                .collect(),
        }
    }

    /// An independent copy of the optimiser state, for the updated copy of the policy.
    pub fn duplicate(&self) -> Adam {
        Adam {
            moments: self
                .moments
                .iter()
                .map(|(n, (m, v))| (n.clone(), (m.copy(), v.copy())))
                .collect(),
            ..*self
        }
    }

    /// (parameter name, first moment, second moment), sorted by name; writing to the tensors
    /// writes the optimiser state (checkpoints save and restore through these).
    pub fn moments(&self) -> Vec<(String, Tensor, Tensor)> {
        self.moments
            .iter()
            .map(|(n, (m, v))| (n.clone(), m.shallow_clone(), v.shallow_clone()))
            .collect()
    }

    /// Rescales the gradients of `params` so their global L2 norm is at most `max_norm` (the
    /// "clip by global norm" of the PPO implementation-details list) and takes one Adam step.
    /// Returns the norm before clipping.
    ///
    /// # Panics
    /// When `params` holds a name this optimiser has no moments for: the optimiser was built
    /// for another model, which is chorus's bug, not the user's.
    pub fn step_clip_norm(
        &mut self,
        params: &[Param],
        max_norm: f64,
    ) -> Result<f64, NonFiniteGradient> {
        // The one scalar read of the step: every read from a tensor is a synchronisation.
        let norm = match params {
            [one] => one.grad.norm().double_value(&[]),
            _ => {
                let squares: Vec<Tensor> = params
                    .iter()
                    .map(|p| p.grad.square().sum(Kind::Double))
                    .collect();
                Tensor::stack(&squares, 0)
                    .sum(Kind::Double)
                    .sqrt()
                    .double_value(&[])
            }
        };
        if !norm.is_finite() {
            return Err(NonFiniteGradient(norm));
        }
        // The update itself is no part of any graph (adapter weights require gradients).
        let _guard = tch::no_grad_guard();
        self.step += 1;
        let c1 = 1.0 - self.beta1.powi(self.step as i32);
        let c2 = 1.0 - self.beta2.powi(self.step as i32);
        for p in params {
            let (m, v) = self
                .moments
                .get_mut(&p.name)
                .unwrap_or_else(|| panic!("Adam has no moments for `{}`", p.name));
            let mut g = p.grad.shallow_clone();
            if norm > max_norm {
                let _ = g.g_mul_scalar_(max_norm / (norm + 1e-6));
            }
            // m ← β1·m + (1−β1)·g and v ← β2·v + (1−β2)·g², as lerps toward g and g².
            let _ = m.lerp_(&g, 1.0 - self.beta1);
            let _ = v.lerp_(&g.square(), 1.0 - self.beta2);
            let mut denom = v.sqrt();
            let _ = denom.g_div_scalar_(c2.sqrt());
            let _ = denom.g_add_scalar_(self.eps);
            let _ = p
                .value
                .shallow_clone()
                .addcdiv_(&(&*m * (-self.lr / c1)), &denom);
        }
        Ok(norm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::net::Net;
    use tch::Kind as DType;

    /// Keyed by name, two tensors take the same step as their concatenation: the global norm
    /// spans all of them, and each keeps its own moments.
    #[test]
    fn named_tensors_step_as_one_buffer() {
        let values = Tensor::from_slice(&[0.5f32, -1.0, 2.0, 0.25, 3.0]);
        let grads = Tensor::from_slice(&[1.0f32, -2.0, 0.5, 4.0, -1.5]);
        let whole = [Param {
            name: "all".to_owned(),
            value: values.copy(),
            grad: grads.copy(),
        }];
        let split: Vec<Param> = [("a", 0, 2), ("b", 2, 3)]
            .into_iter()
            .map(|(name, start, len)| Param {
                name: name.to_owned(),
                value: values.narrow(0, start, len).copy(),
                grad: grads.narrow(0, start, len).copy(),
            })
            .collect();
        let (mut one, mut two) = (Adam::new(&whole, 0.1), Adam::new(&split, 0.1));
        for _ in 0..3 {
            let a = one.step_clip_norm(&whole, 1.0).unwrap();
            let b = two.step_clip_norm(&split, 1.0).unwrap();
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        let joined = Tensor::cat(&[&split[0].value, &split[1].value], 0);
        assert!(joined.allclose(&whole[0].value, 1e-6, 1e-6, false));
        assert_eq!(two.moments().len(), 2);
    }

    /// One step on a known gradient moves every parameter by −lr·sign(g) (Adam's first step,
    /// m̂ = g and v̂ = g²), after clipping to the global norm.
    #[test]
    fn first_step_is_lr_times_the_sign() {
        let net = Net::new(2, 3, 1, 2, 0.0, &mut crate::rng::stream(1, &["adam"]));
        let before = net.params().copy();
        let _ = net.grad().shallow_clone().fill_(-3.0);
        let mut adam = Adam::new(&net.trainable(), 0.01);
        let norm = adam
            .step_clip_norm(&net.trainable(), 1.0)
            .expect("a finite gradient");
        let n = net.params().numel() as f64;
        assert!((norm - 3.0 * n.sqrt()).abs() < 1e-4, "{norm}");
        let moved = (net.params() - before - 0.01).abs().max().double_value(&[]);
        assert!(moved < 1e-6, "{moved}");
        let m = adam.moments();
        assert_eq!(m.len(), 1);
        let first = m[0].1.abs().sum(DType::Float).double_value(&[]);
        assert!(first > 0.0);
    }

    /// A NaN or infinite gradient is refused and changes nothing.
    #[test]
    fn a_non_finite_gradient_is_refused() {
        let net = Net::new(2, 3, 1, 2, 0.0, &mut crate::rng::stream(1, &["adam"]));
        let mut adam = Adam::new(&net.trainable(), 0.01);
        let _ = net.grad().shallow_clone().fill_(1.0);
        adam.step_clip_norm(&net.trainable(), 1.0)
            .expect("a finite gradient");
        let (params, m) = (net.params().copy(), adam.moments()[0].1.copy());
        for bad in [f64::NAN, f64::INFINITY] {
            let _ = net.grad().shallow_clone().fill_(bad);
            let err = adam
                .step_clip_norm(&net.trainable(), 1.0)
                .expect_err("refused");
            assert!(!err.0.is_finite());
            assert!(net.params().equal(&params) && adam.moments()[0].1.equal(&m));
            assert_eq!(adam.step, 1);
        }
    }
}
