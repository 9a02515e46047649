//! A small MLP trunk with a policy head and a value head (shared trunk, as in TRL's
//! value-head models), plus a learned log-std for logistic-normal rollouts.
use rand::Rng as _;
use tch::nn::VarStore;
use tch::{Device, Kind as DType, Tensor};

use crate::rng::Rng;

#[derive(Debug)]
pub struct Net {
    pub vars: VarStore,
    layers: Vec<(Tensor, Tensor)>,
    head: (Tensor, Tensor),
    value: (Tensor, Tensor),
    log_std: Tensor,
}

impl Net {
    /// `inputs` → `hidden` × `depth` (tanh) → `outputs` logits, and → 1 value.
    ///
    /// Init follows cleanrl's PPO: trunk at the usual scale, policy head 100× smaller so the
    /// first policy is near uniform, value head at scale 1. Uniform(±s/√fan_in) draws from
    /// our seeded stream keep runs reproducible whatever thread builds the net.
    pub fn new(
        inputs: usize,
        hidden: usize,
        depth: usize,
        outputs: usize,
        init_log_std: f64,
        rng: &mut Rng,
    ) -> Net {
        let vars = VarStore::new(Device::Cpu);
        let root = vars.root();
        let mut dense = |name: String, fan_in: usize, fan_out: usize, scale: f64| {
            let bound = scale / (fan_in as f64).sqrt();
            let w: Vec<f32> = (0..fan_in * fan_out)
                .map(|_| rng.random_range(-bound..bound) as f32)
                .collect();
            let w = Tensor::from_slice(&w).view([fan_out as i64, fan_in as i64]);
            let w = root.var_copy(&format!("{name}_weight"), &w);
            let b = root.var_copy(
                &format!("{name}_bias"),
                &Tensor::zeros([fan_out as i64], (DType::Float, Device::Cpu)),
            );
            (w, b)
        };
        let mut layers = Vec::with_capacity(depth);
        let mut width = inputs;
        for i in 0..depth {
            layers.push(dense(format!("trunk{i}"), width, hidden, 3f64.sqrt()));
            width = hidden;
        }
        let head = dense("policy".into(), width, outputs, 0.01 * 3f64.sqrt());
        let value = dense("value".into(), width, 1, 3f64.sqrt());
        let log_std = root.var_copy(
            "log_std",
            &Tensor::full([outputs as i64], init_log_std, (DType::Float, Device::Cpu)),
        );
        Net {
            vars,
            layers,
            head,
            value,
            log_std,
        }
    }

    /// (policy head output [N, K], value [N]).
    pub fn forward(&self, x: &Tensor) -> (Tensor, Tensor) {
        let mut h = x.shallow_clone();
        for (w, b) in &self.layers {
            h = h.linear(w, Some(b)).tanh();
        }
        let head = h.linear(&self.head.0, Some(&self.head.1));
        let value = h.linear(&self.value.0, Some(&self.value.1)).squeeze_dim(-1);
        (head, value)
    }

    pub fn log_std(&self) -> Tensor {
        self.log_std.shallow_clone()
    }

    /// An independent copy with the same weights (the frozen reference, or the next round's
    /// policy before its update).
    pub fn duplicate(&self) -> Net {
        let _guard = tch::no_grad_guard();
        let copy = |t: &Tensor| t.detach().copy();
        let vars = VarStore::new(Device::Cpu);
        let root = vars.root();
        let var = |name: &str, t: &Tensor| root.var_copy(name, &copy(t));
        let layers = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, (w, b))| {
                (
                    var(&format!("trunk{i}_weight"), w),
                    var(&format!("trunk{i}_bias"), b),
                )
            })
            .collect();
        let head = (
            var("policy_weight", &self.head.0),
            var("policy_bias", &self.head.1),
        );
        let value = (
            var("value_weight", &self.value.0),
            var("value_bias", &self.value.1),
        );
        let log_std = var("log_std", &self.log_std);
        Net {
            vars,
            layers,
            head,
            value,
            log_std,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy made inside a no-grad block (as the PPO stage makes its policy's) must still
    /// receive gradients and move under Adam.
    #[test]
    fn a_duplicate_trains() {
        let net = tch::no_grad(|| {
            Net::new(3, 4, 1, 2, 0.0, &mut crate::rng::stream(1, &["t"])).duplicate()
        });
        let x = Tensor::ones([5, 3], (DType::Float, Device::Cpu));
        let mut adam = crate::policy::Adam::new(&net.vars, 0.1);
        let before = net.forward(&x).1.sum(DType::Float).double_value(&[]);
        for _ in 0..3 {
            let loss = net.forward(&x).1.sum(DType::Float);
            let norm = adam.backward_step_clip_norm(&net.vars, &loss, 10.0);
            assert!(norm > 0.0, "no gradient reached the parameters");
        }
        let after = net.forward(&x).1.sum(DType::Float).double_value(&[]);
        assert!(after < before, "{before} -> {after}");
    }
}
