#!/usr/bin/env bash
# Parallel efficiency of `chorus grid` on this machine, for an 8-cell grid (2 rules × 4 seeds
# of pipelines/paper.yaml), REPS alternated repetitions of:
#   single  the 8 cells run one after another as separate `chorus run` commands (sum of walls)
#   grid 1  the grid at `parallel: 1`
#   grid N  the grid at `parallel: N` (N = cores)
# and prints two efficiencies (1.0 is perfect):
#   vs runs    = single / (N × grid N)   the issue's definition: single-cell times / cores
#   vs grid 1  = grid 1 / (N × grid N)   strict scaling of the grid itself; bounded by the
#                                         serial start (libtorch's static initialisers) printed
#                                         as `start`: a grid whose cells are all done
#   ceiling    = alone / apart           what the machine allows: one cell's `chorus run` alone
#                                         vs N such runs as separate processes at once
#   bench/grid_efficiency.sh [REPS]        (needs ./chorus.sh setup: the release binary)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bin="${CARGO_TARGET_DIR:-${CHORUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chorus}/target}/release/chorus"
reps="${1:-3}"
cores="$(nproc)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp "$here/pipelines/paper.yaml" "$work/paper.yaml"
rules=(mean adaptive_alpha)
seeds=(1 2 3 4)
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }
grid() {
  printf 'name: eight\nbase: paper.yaml\noutput: out\nparallel: %s\naxes:\n  aggregate.rule: [%s]\n  seed: [%s]\n' \
    "$1" "$(IFS=,; echo "${rules[*]}")" "$(IFS=,; echo "${seeds[*]}")" >"$work/grid.yaml"
  [ "${2:-}" = keep ] || rm -rf "$work/out"
  local start
  start=$(now)
  (cd "$work" && "$bin" grid grid.yaml >/dev/null 2>&1)
  since "$start"
}
single() {
  rm -rf "$work/runs"
  local start
  start=$(now)
  for rule in "${rules[@]}"; do
    for seed in "${seeds[@]}"; do
      (cd "$work" && "$bin" run paper.yaml -s "aggregate.rule=$rule" -s "seed=$seed" --out runs >/dev/null 2>&1)
    done
  done
  since "$start"
}
apart() {
  rm -rf "$work/apart"
  local start i
  start=$(now)
  for i in $(seq "$cores"); do
    (cd "$work" && "$bin" run paper.yaml -s "seed=$i" --out "apart/$i" >/dev/null 2>&1) &
  done
  wait
  since "$start"
}
alone() {
  rm -rf "$work/alone"
  local start
  start=$(now)
  (cd "$work" && "$bin" run paper.yaml -s seed=1 --out alone >/dev/null 2>&1)
  since "$start"
}
printf 'rep  single (s)  grid 1 (s)  grid %s (s)  start (s)  vs runs  vs grid 1  ceiling\n' "$cores"
for rep in $(seq "$reps"); do
  s=$(single)
  one=$(grid 1)
  many=$(grid "$cores")
  start=$(grid "$cores" keep)
  a=$(alone)
  p=$(apart)
  awk -v r="$rep" -v s="$s" -v o="$one" -v m="$many" -v st="$start" -v c="$cores" -v a="$a" -v p="$p" \
    'BEGIN { printf "%3s  %10.2f  %10.2f  %10.2f  %9.2f  %7.3f  %9.3f  %7.3f\n", r, s, o, m, st, s / (c * m), o / (c * m), a / p }'
done
