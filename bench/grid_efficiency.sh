#!/usr/bin/env bash
# Parallel efficiency of `chorus grid` on this machine: an 8-cell grid (2 rules × 4 seeds of
# pipelines/paper.yaml) run with `parallel: 1` and with `parallel: N` (N = cores), alternately,
# REPS times each. Efficiency = wall(parallel 1) / (N × wall(parallel N)); 1.0 is perfect.
#   bench/grid_efficiency.sh [REPS]        (needs ./chorus.sh setup: the release binary)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bin="${CARGO_TARGET_DIR:-${CHORUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chorus}/target}/release/chorus"
reps="${1:-3}"
cores="$(nproc)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/pipelines/paper.yaml" "$work/paper.yaml"
grid() {
  printf 'name: eight\nbase: paper.yaml\noutput: out\nparallel: %s\naxes:\n  aggregate.rule: [mean, adaptive_alpha]\n  seed: {range: [1, 5]}\n' "$1" >"$work/grid.yaml"
  rm -rf "$work/out"
  local start end
  start=$(date +%s.%N)
  (cd "$work" && "$bin" grid grid.yaml >/dev/null 2>&1)
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }'
}
printf 'rep  parallel 1 (s)  parallel %s (s)  efficiency\n' "$cores"
for rep in $(seq "$reps"); do
  one=$(grid 1)
  many=$(grid "$cores")
  awk -v r="$rep" -v o="$one" -v m="$many" -v c="$cores" \
    'BEGIN { printf "%3s  %14.2f  %14.2f  %10.3f\n", r, o, m, o / (c * m) }'
done
