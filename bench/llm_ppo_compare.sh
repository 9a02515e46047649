#!/usr/bin/env bash
# One PPO update of SmolLM2-135M-Instruct through LoRA adapters (rank 8, α 16, q_proj and v_proj),
# fp32 on the CPU: chorus (core/examples/llm_ppo_bench.rs, `ppo::update` on `LlmPolicy`) beside
# the same update written with torch autograd on transformers + peft (bench/llm_ppo_reference.py),
# at the same thread count. The batch is a round of pipelines/llm-wvs.yaml: 16 rollouts (4 World
# Values Survey questions × 4 samples), 4 epochs × 4 minibatches; chorus writes the prompts'
# token ids, the rollouts, the rewards, its starting adapters and the minibatch order to one
# folder, and the reference makes the update from them and checks its statistics against
# chorus's. Prints samples/s of both, where the time goes, and chorus's speed-up.
#   bench/llm_ppo_compare.sh [THREADS]   (default: the cores; the first run installs bench/setup.sh)
# The two sides run one after the other, so neither steals the other's cores.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
threads="${1:-$(nproc)}"
py="$(bash bench/setup.sh | tail -n 1)"
./chorus.sh setup
# The same libtorch path as chorus.sh exports, so cargo reuses its torch-sys build.
export LIBTORCH="$(cd .libtorch && pwd -P)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${CHORUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chorus}/target}"
bin="$CARGO_TARGET_DIR/release/chorus"
cargo build --release --quiet -p chorus-core --example llm_ppo_bench >&2
gguf="$("$bin" model fetch smollm2-135m-instruct)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
ours="$("$CARGO_TARGET_DIR/release/examples/llm_ppo_bench" "$gguf" "$work" "$threads")"
reference="$("$py" bench/llm_ppo_reference.py "$gguf" "$work/update.json" 2>/dev/null)"
echo "chorus:    $(echo "$ours" | tail -n 1)"
echo "reference: $(echo "$reference" | tail -n 1)"
# The reference's update against chorus's: the same starting state, rollouts and minibatch
# order, so the statistics agree up to fp32 rounding.
echo "$reference" | grep '^check ' | sed 's/^check /check: /'
printf '%-22s %14s %14s %9s\n' measurement torch+peft chorus speed-up
# update_s = reference_forward_s + train_minibatches_s (16 forward + backward passes of 4 prompts)
# + adam_steps_s (16) + entropy_forward_s; the parts other than the minibatches are timed apart.
for m in update_samples_per_s update_s reference_forward_s train_minibatches_s adam_steps_s \
  entropy_forward_s; do
  r=$(echo "$reference" | awk -v m="$m" '$1 == m { print $2 }')
  c=$(echo "$ours" | awk -v m="$m" '$1 == m { print $2 }')
  # Rates: higher is better; times: lower is better.
  awk -v m="$m" -v r="$r" -v c="$c" 'BEGIN {
    s = (m ~ /per_s$/) ? c / r : r / c
    printf "%-22s %14.3f %14.3f %8.2fx\n", m, r, c, s }'
done
