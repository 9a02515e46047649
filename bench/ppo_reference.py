"""PyTorch reference for the `ppo_update_256` bench (core/benches/learning.rs).

The same network (Linear 32→64 tanh, 64→64 tanh, policy head 64→4, value head 64→1,
learned log-std), the same batch of 256 and the same update as core/src/ppo/mod.rs with the
default PpoConfig: reference log-probs under no_grad, k1 KL, shaped reward r − β·KL,
advantage = shaped − V (GAE on one-step episodes) whitened, 4 epochs × 4 shuffled
minibatches of 64, clipped ratio, clipped value loss, global grad-norm clip, Adam 3e-4, the
per-minibatch statistics (kept as tensors, read once at the end) and the closing entropy
pass. Written as a PyTorch user would write it (autograd, torch.optim.Adam, which on CPU
takes its per-tensor path, and clip_grad_norm_), one intra-op thread. chorus computes the
same update with hand-derived gradients on one flat parameter buffer (core/src/policy/net.rs,
core/src/ppo/objective.rs); the ratio measures that against the usual Python path.

Each timed update starts from the same weights and zeroed Adam moments (restored outside
the timer), as each criterion iteration does. Prints one line per rollout kind:
`<kind> median_ms=<ms> samples_per_s=<n>`.
"""

import argparse
import math
import statistics
import time

import torch
from torch import nn

BATCH = 256
OPTIONS = 4
INPUTS = OPTIONS * 8
HIDDEN = 64
INIT_LOG_STD = -0.5
LR = 3e-4
EPOCHS = 4
MINIBATCHES = 4
CLIP = 0.2
VALUE_CLIP = 0.2
VF_COEF = 0.1
ENTROPY_COEF = 0.0
KL_COEF = 0.05
MAX_GRAD_NORM = 1.0
LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def dense(fan_in, fan_out, scale):
    """Uniform(±scale/√fan_in) weights and zero biases, the init of core/src/policy/net.rs."""
    layer = nn.Linear(fan_in, fan_out)
    bound = scale / math.sqrt(fan_in)
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound)
        layer.bias.zero_()
    return layer


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        s = math.sqrt(3)
        self.trunk = nn.Sequential(
            dense(INPUTS, HIDDEN, s), nn.Tanh(), dense(HIDDEN, HIDDEN, s), nn.Tanh()
        )
        self.head = dense(HIDDEN, OPTIONS, 0.01 * s)
        self.value = dense(HIDDEN, 1, s)
        self.log_std = nn.Parameter(torch.full((OPTIONS,), INIT_LOG_STD))

    def forward(self, x):
        h = self.trunk(x)
        return self.head(h), self.value(h).squeeze(-1)


def log_prob(net, kind, head, actions):
    if kind == "choice":
        return head.log_softmax(-1).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    z = (actions - head) / net.log_std.exp()
    return (-0.5 * z.square() - net.log_std - LOG_SQRT_2PI).sum(-1)


def entropy(net, kind, head):
    if kind == "choice":
        logp = head.log_softmax(-1)
        return -(logp.exp() * logp).sum(-1)
    return (net.log_std + 0.5 + LOG_SQRT_2PI).sum().expand(head.shape[0])


@torch.no_grad()
def sample(net, kind, x):
    head, values = net(x)
    if kind == "choice":
        actions = torch.multinomial(head.softmax(-1), 1).squeeze(-1)
    else:
        actions = head + torch.randn_like(head) * net.log_std.exp()
    return actions, log_prob(net, kind, head, actions), values


def update(net, reference, opt, kind, x, actions, old_logp, old_values, rewards):
    """One round's PPO update; mirrors `chorus_core::ppo::update` for Algorithm::Ppo."""
    n = rewards.shape[0]
    with torch.no_grad():
        ref_head, _ = reference(x)
        ref_logp = log_prob(reference, kind, ref_head, actions)
        kl = old_logp - ref_logp
        shaped = rewards - KL_COEF * kl
        adv = shaped - old_values
        returns = adv + old_values
        adv = (adv - adv.mean()) / (adv.std(correction=0) + 1e-8)
    mb = -(-n // MINIBATCHES)
    # Statistics stay tensors until the end and are read once, as in the Rust update.
    clipped, approx, vloss = [], [], []
    for _ in range(EPOCHS):
        for idx in torch.randperm(n).split(mb):
            head, value = net(x[idx])
            logp = log_prob(net, kind, head, actions[idx])
            log_ratio = logp - old_logp[idx]
            ratio = log_ratio.exp()
            a = adv[idx]
            pg_loss = torch.maximum(-a * ratio, -a * ratio.clamp(1 - CLIP, 1 + CLIP)).mean()
            # Same as the Rust update: no entropy graph when its weight is 0.
            ent = entropy(net, kind, head).mean() if ENTROPY_COEF > 0 else 0.0
            ret = returns[idx]
            v_old = old_values[idx]
            v_clip = v_old + (value - v_old).clamp(-VALUE_CLIP, VALUE_CLIP)
            vf = 0.5 * torch.maximum((value - ret).square(), (v_clip - ret).square()).mean()
            vloss.append(vf.detach())
            loss = pg_loss - ENTROPY_COEF * ent + VF_COEF * vf
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), MAX_GRAD_NORM)
            opt.step()
            with torch.no_grad():
                clipped.append(((ratio - 1).abs() > CLIP).float().mean())
                approx.append(((ratio - 1) - log_ratio).mean())
    with torch.no_grad():
        head, _ = net(x)
        final_entropy = entropy(net, kind, head).mean().item()
    return {
        "reward": rewards.mean().item(),
        "kl": kl.mean().item(),
        "entropy": final_entropy,
        "clip_fraction": torch.stack(clipped).double().mean().item(),
        "value_loss": torch.stack(vloss).double().mean().item(),
        "approx_kl": torch.stack(approx).double().mean().item(),
    }


def bench(kind, seconds, warmup, fused_adam):
    torch.manual_seed(7)
    net = Net()
    reference = Net()
    reference.load_state_dict(net.state_dict())
    initial = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(BATCH, INPUTS)
    actions, old_logp, old_values = sample(net, kind, x)
    rewards = torch.rand(BATCH)
    opt = torch.optim.Adam(net.parameters(), lr=LR, fused=fused_adam or None)

    def reset():
        """Back to the initial weights and a fresh Adam, untimed (criterion's setup)."""
        net.load_state_dict(initial)
        for state in opt.state.values():
            for t in state.values():
                t.zero_()

    def once():
        reset()
        start = time.perf_counter()
        update(net, reference, opt, kind, x, actions, old_logp, old_values, rewards)
        return time.perf_counter() - start

    end = time.perf_counter() + warmup
    while time.perf_counter() < end:
        once()
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(times) < 10:
        times.append(once())
    median = statistics.median(times)
    print(f"{kind} median_ms={median * 1e3:.3f} samples_per_s={BATCH / median:.0f} reps={len(times)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per kind")
    parser.add_argument("--warmup", type=float, default=3.0, help="untimed seconds per kind")
    parser.add_argument(
        "--fused-adam",
        action="store_true",
        help="torch.optim.Adam(fused=True): one kernel for all parameters, not the CPU default",
    )
    args = parser.parse_args()
    # One intra-op thread, as chorus's runner sets for every task.
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread")
    for kind in ("choice", "distribution"):
        bench(kind, args.seconds, args.warmup, args.fused_adam)


if __name__ == "__main__":
    main()
