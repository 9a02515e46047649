//! A small MLP trunk with a policy head and a value head (shared trunk, as in TRL's
//! value-head models), plus a learned log-std for logistic-normal rollouts.
//!
//! The backward pass is written out rather than left to autograd. On a network this small a
//! PPO step costs libtorch dispatch and graph bookkeeping, not arithmetic: hand-derived
//! gradients need a fraction of autograd's kernel calls, and with every parameter and every
//! gradient living in one flat buffer, gradient clipping and Adam are a handful of whole-buffer
//! ops instead of a dozen per tensor. The tests check every gradient against libtorch's
//! autograd. A policy too large to differentiate by hand (a language model) would bring its own
//! backward; what the optimiser needs is only the flat parameter and gradient buffers.
use rand::Rng as _;
use tch::{Device, Kind as DType, Tensor};

use super::adam::Param;
use crate::rng::Rng;

/// The sizes that fix the parameter layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub inputs: usize,
    pub hidden: usize,
    pub depth: usize,
    pub outputs: usize,
}

impl Shape {
    /// Parameters in the flat buffer: trunk layers (weight, bias) in order, then the policy and
    /// value heads as one matrix (policy rows, then the value row) and one bias, then log σ.
    fn len(&self) -> i64 {
        let mut width = self.inputs;
        let mut n = 0;
        for _ in 0..self.depth {
            n += (width + 1) * self.hidden;
            width = self.hidden;
        }
        (n + (width + 1) * (self.outputs + 1) + self.outputs) as i64
    }

    /// Views of `flat` (parameters, gradients or Adam moments), in layout order.
    fn views(&self, flat: &Tensor) -> Views {
        let mut offset = 0;
        let mut take = |dims: &[usize]| {
            let n: usize = dims.iter().product();
            let dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
            let view = flat.narrow(0, offset, n as i64).view(dims.as_slice());
            offset += n as i64;
            view
        };
        let mut width = self.inputs;
        let mut layers = Vec::with_capacity(self.depth);
        for _ in 0..self.depth {
            let w = take(&[self.hidden, width]);
            let b = take(&[self.hidden]);
            layers.push((w, b));
            width = self.hidden;
        }
        let head_w = take(&[self.outputs + 1, width]);
        let head_b = take(&[self.outputs + 1]);
        let log_std = take(&[self.outputs]);
        Views {
            layers,
            head_w,
            head_b,
            log_std,
        }
    }

    /// Named views of `flat`, sorted by name: the stable order and names of checkpoints.
    pub fn named(&self, flat: &Tensor) -> Vec<(String, Tensor)> {
        let v = self.views(flat);
        let k = self.outputs as i64;
        let mut named: Vec<(String, Tensor)> = v
            .layers
            .iter()
            .enumerate()
            .flat_map(|(i, (w, b))| {
                [
                    (format!("trunk{i}_weight"), w.shallow_clone()),
                    (format!("trunk{i}_bias"), b.shallow_clone()),
                ]
            })
            .collect();
        named.extend([
            ("policy_weight".to_owned(), v.head_w.narrow(0, 0, k)),
            ("value_weight".to_owned(), v.head_w.narrow(0, k, 1)),
            ("policy_bias".to_owned(), v.head_b.narrow(0, 0, k)),
            ("value_bias".to_owned(), v.head_b.narrow(0, k, 1)),
            ("log_std".to_owned(), v.log_std),
        ]);
        named.sort_by(|a, b| a.0.cmp(&b.0));
        named
    }

    /// A zeroed buffer of this layout.
    pub fn zeros(&self) -> Tensor {
        Tensor::zeros([self.len()], (DType::Float, Device::Cpu))
    }
}

/// Views into one flat buffer.
#[derive(Debug)]
struct Views {
    layers: Vec<(Tensor, Tensor)>,
    /// Policy head rows, then the value row: [outputs + 1, width].
    head_w: Tensor,
    head_b: Tensor,
    log_std: Tensor,
}

/// A forward pass, kept for its backward pass.
#[derive(Debug)]
pub struct Activations {
    input: Tensor,
    /// Each trunk layer's output (after tanh).
    hidden: Vec<Tensor>,
    /// Policy head outputs then the value: [N, outputs + 1].
    out: Tensor,
    outputs: i64,
}

impl Activations {
    /// Policy head output [N, K]: logits (choice) or μ (distribution).
    pub fn head(&self) -> Tensor {
        self.out.narrow(1, 0, self.outputs)
    }

    /// Value estimate [N].
    pub fn value(&self) -> Tensor {
        self.out.select(1, self.outputs)
    }
}

#[derive(Debug)]
pub struct Net {
    shape: Shape,
    /// Every parameter, in the layout of [`Shape`].
    params: Tensor,
    /// The gradient of the last [`Net::backward`], same layout.
    grad: Tensor,
    p: Views,
    g: Views,
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
        let shape = Shape {
            inputs,
            hidden,
            depth,
            outputs,
        };
        let net = Net::from_params(shape, shape.zeros());
        let mut uniform = |target: &Tensor, scale: f64| {
            let (fan_out, fan_in) = target.size2().expect("a weight matrix");
            let bound = scale / (fan_in as f64).sqrt();
            let w: Vec<f32> = (0..fan_in * fan_out)
                .map(|_| rng.random_range(-bound..bound) as f32)
                .collect();
            target
                .shallow_clone()
                .copy_(&Tensor::from_slice(&w).view([fan_out, fan_in]));
        };
        for (w, _) in &net.p.layers {
            uniform(w, 3f64.sqrt());
        }
        let k = outputs as i64;
        uniform(&net.p.head_w.narrow(0, 0, k), 0.01 * 3f64.sqrt());
        uniform(&net.p.head_w.narrow(0, k, 1), 3f64.sqrt());
        let _ = net.p.log_std.shallow_clone().fill_(init_log_std);
        net
    }

    fn from_params(shape: Shape, params: Tensor) -> Net {
        let grad = shape.zeros();
        Net {
            p: shape.views(&params),
            g: shape.views(&grad),
            shape,
            params,
            grad,
        }
    }

    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// The flat parameter buffer (updated in place by the optimiser).
    pub fn params(&self) -> &Tensor {
        &self.params
    }

    /// The flat gradient buffer, written by [`Net::backward`].
    pub fn grad(&self) -> &Tensor {
        &self.grad
    }

    /// What an optimiser updates: the whole flat buffer as one tensor, so that clipping and
    /// Adam are a few whole-buffer ops.
    pub fn trainable(&self) -> Vec<Param> {
        vec![Param {
            name: "net".to_owned(),
            value: self.params.shallow_clone(),
            grad: self.grad.shallow_clone(),
        }]
    }

    /// Parameters by name, as views: writing to one writes the network.
    pub fn named(&self) -> Vec<(String, Tensor)> {
        self.shape.named(&self.params)
    }

    pub fn forward(&self, x: &Tensor) -> Activations {
        let mut hidden = Vec::with_capacity(self.shape.depth);
        let mut h = x.shallow_clone();
        for (w, b) in &self.p.layers {
            let mut z = b.addmm(&h, &w.tr());
            h = z.tanh_();
            hidden.push(h.shallow_clone());
        }
        Activations {
            out: self.p.head_b.addmm(&h, &self.p.head_w.tr()),
            input: x.shallow_clone(),
            hidden,
            outputs: self.shape.outputs as i64,
        }
    }

    /// Writes into the gradient buffer the gradient of
    /// Σ d_head ⊙ head + Σ d_value ⊙ value + d_log_std · log σ at the parameters, given the
    /// upstream gradients of a forward pass (an absent one is zero). Each parameter's gradient
    /// is overwritten, never accumulated.
    pub fn backward(
        &self,
        acts: &Activations,
        d_head: &Tensor,
        d_value: Option<&Tensor>,
        d_log_std: Option<&Tensor>,
    ) {
        let d_value = match d_value {
            Some(d) => d.unsqueeze(1),
            None => d_head.zeros_like().narrow(1, 0, 1),
        };
        let d_out = Tensor::cat(&[d_head, &d_value], 1);
        let last = acts.hidden.last().unwrap_or(&acts.input);
        let _ = d_out.tr().mm_out(&self.g.head_w, last);
        let _ = d_out.sum_intlist_out(&self.g.head_b, [0i64].as_slice(), false, DType::Float);
        let mut d_h = d_out.mm(&self.p.head_w);
        for l in (0..self.shape.depth).rev() {
            let d_z = Tensor::tanh_backward(&d_h, &acts.hidden[l]);
            let input = if l == 0 {
                &acts.input
            } else {
                &acts.hidden[l - 1]
            };
            let (g_w, g_b) = &self.g.layers[l];
            let _ = d_z.tr().mm_out(g_w, input);
            let _ = d_z.sum_intlist_out(g_b, [0i64].as_slice(), false, DType::Float);
            if l > 0 {
                d_h = d_z.mm(&self.p.layers[l].0);
            }
        }
        let mut g_log_std = self.g.log_std.shallow_clone();
        match d_log_std {
            Some(d) => g_log_std.copy_(d),
            None => {
                let _ = g_log_std.zero_();
            }
        }
    }

    pub fn log_std(&self) -> Tensor {
        self.p.log_std.shallow_clone()
    }

    /// An independent copy with the same weights (the frozen reference, or the next round's
    /// policy before its update).
    pub fn duplicate(&self) -> Net {
        Net::from_params(self.shape, self.params.copy())
    }
}

/// The same network through libtorch's autograd, the oracle the hand-written gradients are
/// tested against: (leaf parameters by name, head, value).
#[cfg(test)]
pub(crate) fn autograd_forward(net: &Net, x: &Tensor) -> (Vec<(String, Tensor)>, Tensor, Tensor) {
    let leaves: Vec<(String, Tensor)> = net
        .named()
        .into_iter()
        .map(|(n, t)| (n, t.detach().copy().set_requires_grad(true)))
        .collect();
    let get = |name: &str| {
        &leaves
            .iter()
            .find(|(n, _)| n == name)
            .expect("a parameter")
            .1
    };
    let mut h = x.shallow_clone();
    for i in 0..net.shape.depth {
        let (w, b) = (
            get(&format!("trunk{i}_weight")),
            get(&format!("trunk{i}_bias")),
        );
        h = h.linear(w, Some(b)).tanh();
    }
    let head = h.linear(get("policy_weight"), Some(get("policy_bias")));
    let value = h
        .linear(get("value_weight"), Some(get("value_bias")))
        .squeeze_dim(-1);
    (leaves, head, value)
}

/// Asserts that `net`'s gradient buffer holds the autograd gradients of `leaves` (a leaf that
/// received none must have a zero gradient).
#[cfg(test)]
pub(crate) fn assert_grad_matches(net: &Net, leaves: &[(String, Tensor)]) {
    for ((name, leaf), (_, ours)) in leaves.iter().zip(net.shape.named(net.grad())) {
        let expected = leaf.grad();
        let expected = if expected.defined() {
            expected
        } else {
            ours.zeros_like()
        };
        let diff = (expected - &ours).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "{name}: differs from autograd by {diff}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net() -> Net {
        Net::new(3, 5, 2, 4, -0.3, &mut crate::rng::stream(1, &["net"]))
    }

    fn randn(dims: &[i64], seed: i64) -> Tensor {
        tch::manual_seed(seed);
        Tensor::randn(dims, (DType::Float, Device::Cpu))
    }

    /// The hand-written backward pass equals libtorch's autograd on the same function.
    #[test]
    fn backward_matches_autograd() {
        let net = net();
        let x = randn(&[7, 3], 1);
        let (d_head, d_value, d_log_std) = (randn(&[7, 4], 2), randn(&[7], 3), randn(&[4], 4));
        let acts = net.forward(&x);
        net.backward(&acts, &d_head, Some(&d_value), Some(&d_log_std));

        let (leaves, head, value) = autograd_forward(&net, &x);
        let log_std = &leaves[0].1;
        let objective = (head * &d_head).sum(DType::Float)
            + (value * &d_value).sum(DType::Float)
            + (log_std * &d_log_std).sum(DType::Float);
        objective.backward();
        assert_grad_matches(&net, &leaves);
    }

    #[test]
    fn named_views_cover_the_buffer_once() {
        let net = net();
        let total: i64 = net.named().iter().map(|(_, t)| t.numel() as i64).sum();
        assert_eq!(total, net.params().numel() as i64);
        let names: Vec<String> = net.named().into_iter().map(|(n, _)| n).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        // Writing through a view writes the network.
        let (name, log_std) = &net.named()[0];
        assert_eq!(name, "log_std");
        let _ = log_std.shallow_clone().fill_(2.0);
        assert_eq!(net.log_std().double_value(&[0]), 2.0);
    }

    #[test]
    fn a_duplicate_is_independent() {
        let net = net();
        let copy = net.duplicate();
        let _ = net.params().shallow_clone().fill_(0.0);
        assert!(copy.params().abs().sum(DType::Float).double_value(&[]) > 0.0);
    }
}
