//! Adam with global grad-norm clipping, its state held as named tensors we own.
//!
//! tch's optimizer keeps Adam's moments inside libtorch where they cannot be saved, and a
//! resumed run must continue with the same moments to end on the same numbers as an
//! uninterrupted one. So the update is written out here (Kingma & Ba 2015, Algorithm 1).
use tch::nn::VarStore;
use tch::Tensor;

#[derive(Debug)]
pub struct Adam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Steps taken so far (for bias correction).
    pub step: i64,
    /// (parameter name, first moment, second moment), sorted by name.
    pub moments: Vec<(String, Tensor, Tensor)>,
}

impl Adam {
    pub fn new(vars: &VarStore, lr: f64) -> Adam {
        let moments = named(vars)
            .into_iter()
            .map(|(name, p)| (name, p.zeros_like(), p.zeros_like()))
            .collect();
        Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            step: 0,
            moments,
        }
    }

    /// An independent copy of the optimiser state, for the updated copy of the policy.
    pub fn duplicate(&self) -> Adam {
        let _guard = tch::no_grad_guard();
        Adam {
            moments: self
                .moments
                .iter()
                .map(|(n, m, v)| (n.clone(), m.copy(), v.copy()))
                .collect(),
            ..*self
        }
    }

    /// Backpropagates `loss`, rescales all gradients so their global L2 norm is at most
    /// `max_norm` (the "clip by global norm" of the PPO implementation-details list), takes
    /// one Adam step and clears the gradients. Returns the norm before clipping.
    pub fn backward_step_clip_norm(
        &mut self,
        vars: &VarStore,
        loss: &Tensor,
        max_norm: f64,
    ) -> f64 {
        let params = named(vars);
        for (_, p) in &params {
            p.shallow_clone().zero_grad();
        }
        loss.backward();
        let _guard = tch::no_grad_guard();
        let grads: Vec<Tensor> = params.iter().map(|(_, p)| p.grad()).collect();
        // One scalar read for the global norm, not one per parameter: every read from a
        // tensor is a synchronisation point.
        let norms: Vec<Tensor> = grads
            .iter()
            .filter(|g| g.defined())
            .map(|g| g.norm())
            .collect();
        let norm = if norms.is_empty() {
            0.0
        } else {
            Tensor::stack(&norms, 0).norm().double_value(&[])
        };
        let scale = if norm > max_norm {
            max_norm / (norm + 1e-6)
        } else {
            1.0
        };
        self.step += 1;
        let c1 = 1.0 - self.beta1.powi(self.step as i32);
        let c2 = 1.0 - self.beta2.powi(self.step as i32);
        // In place, few ops per tensor: on a small network the dispatch count, not the
        // arithmetic, is what costs. m ← m + (1−β1)(g − m) is β1·m + (1−β1)·g.
        for ((_, p), ((_, m, v), g)) in params.iter().zip(self.moments.iter_mut().zip(&grads)) {
            if !g.defined() {
                continue;
            }
            let mut g = g.shallow_clone();
            if scale != 1.0 {
                let _ = g.g_mul_scalar_(scale);
            }
            let _ = m.lerp_(&g, 1.0 - self.beta1);
            let _ = v.lerp_(&g.square(), 1.0 - self.beta2);
            let mut denom = v.sqrt();
            let _ = denom.g_div_scalar_(c2.sqrt());
            let _ = denom.g_add_scalar_(self.eps);
            let _ = p.shallow_clone().addcdiv_(&(&*m * (-self.lr / c1)), &denom);
        }
        norm
    }
}

/// Trainable variables sorted by name: a stable order for moments and checkpoints.
pub fn named(vars: &VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> = vars.variables().into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}
