"""The PyTorch side of bench/llm_ppo_compare.sh: one PPO update of SmolLM2-135M-Instruct through
LoRA adapters, written with torch autograd on transformers + peft, the same update chorus's
`ppo::update` makes of its `LlmPolicy` (core/examples/llm_ppo_bench.rs), at the thread count given.

    python bench/llm_ppo_reference.py GGUF UPDATE.json

UPDATE.json is what the chorus side wrote (with init.npz beside it): the 16 prompts' token ids
(chorus's chat template and survey wording, `ChoicePrompts::build`), the answer letters' token
ids, the 16 rollouts (question, sampled option, old log-prob, old value), their rewards, the PPO
config, the thread count, the minibatch permutations and chorus's statistics of its update.

The model: the same GGUF, dequantized to fp32 by transformers' loader; peft LoRA r=8, alpha=16
on q_proj and v_proj, no dropout; a value head nn.Linear(576, 1) on the last position's final
hidden state. One update, as chorus's (core/src/ppo/mod.rs, objective.rs, policy/llm.rs):
  - the reference forward over the 16 rollouts with the adapters off (peft's
    `disable_adapter()`, no second copy of the model), no grad;
  - k1 KL per rollout old_lp - ref_lp, KL-shaped reward r - 0.05 * KL, advantage = shaped reward
    - old value (GAE on length-1 episodes), whitened; returns = shaped reward;
  - 4 epochs x 4 minibatches of 4 rollouts; each: forward with the adapters on, the letter
    logits at the last position (only the letter rows of the tied head, as chorus computes
    them), log-softmax restricted to the question's options; loss = clipped surrogate (0.2)
    + 0.1 x ½·mean max((V-R)², (V_old + clip(V-V_old, ±0.2) - R)²) - 1.0 x mean entropy of the
    restricted letter distribution; backward; clip_grad_norm_(1.0); torch.optim.Adam(lr 5e-4,
    eps 1e-8);
  - the final entropy forward over the 16 rollouts with the adapters on, no grad.

Identical to chorus's update: the token ids, the rollouts and rewards, the starting adapters and
value head (read from init.npz, so the trajectories can be compared), the minibatch
permutations (chorus's RNG draws them; they are replayed here, so the same rows meet in the same
minibatches), the loss and optimiser arithmetic, the work per pass (no pass added or skipped).
Not identical: kernels and summation order (fp32 rounding, so the statistics printed beside
chorus's agree to a few decimals, not bit for bit); each minibatch here is left-padded to its
own longest prompt (the natural way with a tokenizer; chorus pads to the batch's longest but
runs its projections on the real tokens only), with position ids from the attention mask as
generation uses; chorus runs a prefix that all rows of a pass share once (its own optimisation,
which the reference's API has no counterpart for).

The update's time is the median of 3 after a warm-up, each rep from the same starting state with
fresh Adam moments, so every rep does the same work. Prints `name value` lines.
"""
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

REPS = 3


def median_seconds(fn):
    fn()
    times = []
    for _ in range(REPS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def left_pad(seqs, pad):
    width = max(len(s) for s in seqs)
    ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs])
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs])
    return ids, mask


class Reference:
    def __init__(self, gguf, spec, folder):
        self.spec = spec
        cfg = spec["config"]
        self.cfg = cfg
        lora = spec["lora"]
        where, name = os.path.split(os.path.abspath(gguf))
        base = AutoModelForCausalLM.from_pretrained(where, gguf_file=name, dtype=torch.float32)
        config = LoraConfig(
            r=lora["rank"],
            lora_alpha=lora["alpha"],
            target_modules=lora["targets"],
            lora_dropout=0.0,
            bias="none",
        )
        self.model = get_peft_model(base, config).eval()
        inner = self.model.get_base_model()
        self.backbone = inner.model  # the decoder, up to the final norm
        p = spec["prompts"]
        # The head's letter rows only: all the loss reads.
        self.head = inner.get_output_embeddings().weight.detach()[torch.tensor(p["letters"])]
        hidden = inner.config.hidden_size
        self.value_head = torch.nn.Linear(hidden, 1)
        # The starting state: chorus's adapters and value head, by peft name.
        init = np.load(os.path.join(folder, spec["init"]))
        self.init = {}
        for key, module in self.backbone.named_modules():
            for part in ("lora_A", "lora_B"):
                if key.endswith(part):
                    stem = key[: -len(part) - 1]
                    self.init[f"{stem}.{part}"] = (module["default"].weight, init[f"{stem}.{part}"])
        self.init["value_head.weight"] = (self.value_head.weight, init["value_head.weight"])
        self.init["value_head.bias"] = (self.value_head.bias, init["value_head.bias"])
        missing = set(init.files) - set(self.init)
        assert not missing, f"chorus tensors with no peft counterpart: {sorted(missing)[:4]}"
        self.params = [t for t, _ in self.init.values()]
        assert sum(t.numel() for t in self.params) == sum(
            t.numel() for t in self.model.parameters() if t.requires_grad
        ) + hidden + 1, "the trainable tensors are the adapters and the value head"
        # The rollouts.
        self.rows = [p["ids"][q] for q in spec["questions"]]
        self.pad = p["pad"]
        letters = len(p["letters"])
        self.allowed = torch.tensor(
            [[k < p["options"][q] for k in range(letters)] for q in spec["questions"]]
        )
        self.actions = torch.tensor(spec["actions"])
        self.old_lp = torch.tensor(spec["old_log_probs"], dtype=torch.float32)
        self.old_v = torch.tensor(spec["old_values"], dtype=torch.float32)
        self.rewards = np.array(spec["rewards"], dtype=np.float64)
        self.perms = [torch.tensor(perm) for perm in spec["permutations"]]
        self.all = torch.arange(len(self.rows))

    def reset(self):
        with torch.no_grad():
            for tensor, value in self.init.values():
                tensor.copy_(torch.from_numpy(value))
                tensor.grad = None
        return torch.optim.Adam(self.params, lr=self.cfg["lr"], eps=1e-8)

    def heads(self, index):
        """Letter log-probs (restricted to each row's options) [N, L] and values [N] of `index`."""
        ids, mask = left_pad([self.rows[i] for i in index.tolist()], self.pad)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        hidden = self.backbone(
            input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False
        ).last_hidden_state[:, -1]
        logits = (hidden @ self.head.T).masked_fill(~self.allowed[index], float("-inf"))
        return logits.log_softmax(-1), self.value_head(hidden).squeeze(-1)

    def log_prob(self, log_probs, index):
        return log_probs.gather(-1, self.actions[index].unsqueeze(-1)).squeeze(-1)

    @staticmethod
    def entropy(log_probs):
        finite = log_probs.isfinite()
        safe = torch.where(finite, log_probs, 0.0)
        return -torch.where(finite, safe.exp() * safe, 0.0).sum(-1)

    def reference_forward(self):
        with torch.no_grad(), self.model.disable_adapter():
            return self.log_prob(self.heads(self.all)[0], self.all)

    def entropy_forward(self):
        with torch.no_grad():
            return self.entropy(self.heads(self.all)[0]).mean().item()

    def adam_step(self, optimizer):
        torch.nn.utils.clip_grad_norm_(self.params, self.cfg["max_grad_norm"])
        optimizer.step()

    def update(self, optimizer):
        cfg = self.cfg
        ref_lp = self.reference_forward()
        kl = (self.old_lp - ref_lp).double().numpy()
        old_v = self.old_v.double().numpy()
        shaped = self.rewards - cfg["kl_coef"] * kl
        adv = shaped - old_v
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)  # population std, as chorus's
        adv = torch.from_numpy(adv).float()
        ret = torch.from_numpy(shaped).float()
        n = len(self.rows)
        size = -(-n // cfg["minibatches"])
        clipped, approx, vloss = [], [], []
        for perm in self.perms:
            for start in range(0, n, size):
                index = perm[start : start + size]
                optimizer.zero_grad(set_to_none=True)
                log_probs, value = self.heads(index)
                lp = self.log_prob(log_probs, index)
                old, a, v_old, r = self.old_lp[index], adv[index], self.old_v[index], ret[index]
                ratio = (lp - old).exp()
                pg = torch.maximum(-a * ratio, -a * ratio.clamp(1 - cfg["clip"], 1 + cfg["clip"]))
                v_clip = v_old + (value - v_old).clamp(-cfg["value_clip"], cfg["value_clip"])
                vf = 0.5 * torch.maximum((value - r).square(), (v_clip - r).square()).mean()
                entropy = self.entropy(log_probs).mean()
                loss = pg.mean() + cfg["vf_coef"] * vf - cfg["entropy_coef"] * entropy
                loss.backward()
                self.adam_step(optimizer)
                with torch.no_grad():
                    log_ratio = lp - old
                    clipped.append(((ratio - 1).abs() > cfg["clip"]).float().mean())
                    approx.append(((ratio - 1) - log_ratio).mean())
                    vloss.append(vf.detach())
        return {
            "reward": float(self.rewards.mean()),
            "kl": float(kl.mean()),
            "entropy": self.entropy_forward(),
            "clip_fraction": torch.stack(clipped).double().mean().item(),
            "value_loss": torch.stack(vloss).double().mean().item(),
            "approx_kl": torch.stack(approx).double().mean().item(),
        }


def main():
    gguf, update_json = sys.argv[1], sys.argv[2]
    with open(update_json) as f:
        spec = json.load(f)
    threads = spec["threads"]
    torch.set_num_threads(threads)
    ref = Reference(gguf, spec, os.path.dirname(os.path.abspath(update_json)))
    ref.reset()

    # Does this model score the rollouts as chorus's did when it sampled them?
    with torch.no_grad():
        log_probs, values = ref.heads(ref.all)
        lp = ref.log_prob(log_probs, ref.all)
    print(f"check old_log_prob_max_diff {(lp - ref.old_lp).abs().max().item():.2e}")
    print(f"check old_value_max_diff {(values - ref.old_v).abs().max().item():.2e}")

    stats = ref.update(ref.reset())  # the warm-up, whose statistics are compared
    times = []
    for _ in range(REPS):
        optimizer = ref.reset()
        start = time.perf_counter()
        ref.update(optimizer)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)

    reference_s = median_seconds(ref.reference_forward)
    entropy_s = median_seconds(ref.entropy_forward)
    optimizer = ref.reset()
    index = ref.perms[0][: len(ref.rows) // spec["config"]["minibatches"]]
    log_probs, value = ref.heads(index)
    (ref.log_prob(log_probs, index).sum() + value.sum()).backward()
    adam_s = median_seconds(lambda: ref.adam_step(optimizer))
    steps = spec["config"]["epochs"] * spec["config"]["minibatches"]

    n = len(ref.rows)
    print(f"update_samples_per_s {n / seconds:.3f}")
    print(f"update_s {seconds:.3f}")
    print(f"reference_forward_s {reference_s:.3f}")
    print(f"train_minibatches_s {seconds - reference_s - entropy_s - steps * adam_s:.3f}")
    print(f"adam_steps_s {steps * adam_s:.3f}")
    print(f"entropy_forward_s {entropy_s:.3f}")
    names = ("kl", "entropy", "clip_fraction", "value_loss", "approx_kl")
    print("stats " + " ".join(f"{k} {stats[k]:.6f}" for k in names))
    theirs = spec["chorus"]["stats"]
    print("check stats_vs_chorus " + " ".join(f"{k} {stats[k] - theirs[k]:+.1e}" for k in names))
    tokens = sum(len(r) for r in ref.rows)
    print(f"batch {n} prompt_tokens {tokens} threads {threads} reps {REPS} "
          f"torch {torch.__version__}")


if __name__ == "__main__":
    main()
