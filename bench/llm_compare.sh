#!/usr/bin/env bash
# SmolLM2-135M-Instruct, fp32 on the CPU: chorus (llm/examples/llm_bench.rs) beside transformers
# (bench/llm_reference.py) on the same GGUF, the same 16 prompts of ~100 tokens (token ids shared
# through one file) and the same thread count; prints both and chorus's speed-up per measurement.
#   bench/llm_compare.sh [THREADS]      (default: the cores; the first run installs bench/setup.sh)
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
cargo build --release --quiet -p chorus-llm --example llm_bench >&2
gguf="$("$bin" model fetch smollm2-135m-instruct)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
prompts="$work/prompts.json"
reference="$("$py" bench/llm_reference.py "$gguf" "$prompts" "$threads" 2>/dev/null)"
ours="$("$CARGO_TARGET_DIR/release/examples/llm_bench" "$gguf" "$prompts" "$threads")"
echo "transformers: $(echo "$reference" | tail -n 1)"
printf '%-22s %14s %14s %9s\n' measurement transformers chorus speed-up
# forward_unshared: chorus without its shared-prefix pass, against the same transformers run.
for m in forward_tokens_per_s forward_unshared_tokens_per_s letters_ms greedy_tokens_per_s; do
  r=$(echo "$reference" | awk -v m="${m/_unshared/}" '$1 == m { print $2 }')
  c=$(echo "$ours" | awk -v m="$m" '$1 == m { print $2 }')
  # Rates: higher is better; times: lower is better.
  awk -v m="$m" -v r="$r" -v c="$c" 'BEGIN {
    s = (m ~ /_ms$/) ? r / c : c / r
    printf "%-22s %14.1f %14.1f %8.2fx\n", m, r, c, s }'
done
