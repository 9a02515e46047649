#!/usr/bin/env bash
# The seed paper's comparison on pipelines/paper.yaml: each aggregation rule over 5 seeds,
# final mean alignment, worst-group alignment and Jain's index as mean ± 95% CI (Student t,
# 4 degrees of freedom), then the same differences paired by seed against `mean` (a seed fixes
# the simulated world, so pairing removes the world-to-world spread). Until batch grids land,
# this loops over the CLI.
#   scripts/paper_table.sh [RULE...]      (default: the six rules of the closing note)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bin="${CARGO_TARGET_DIR:-${CHORUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chorus}/target}/release/chorus"
out="${OUT:-$here/runs/paper-table}"
rules=("$@")
[[ ${#rules[@]} -gt 0 ]] || rules=(min max mean adaptive_alpha group_dro tilted)
# Each run prints its folder first; only those folders are read, so runs of an older chorus
# (another identity hash) left under $out never mix into the table.
folders=()
for rule in "${rules[@]}"; do
  for seed in 1 2 3 4 5; do
    printed="$("$bin" run "$here/pipelines/paper.yaml" -s aggregate.rule="$rule" -s seed="$seed" --out "$out/$rule" 2>/dev/null)"
    folders+=("$rule=${printed%%$'\n'*}")
  done
done
python3 - "${folders[@]}" <<'PY'
import csv, json, math, statistics, sys
folders = {}
for arg in sys.argv[1:]:
    rule, path = arg.split("=", 1)
    folders.setdefault(rule, []).append(path)
rules = list(folders)
T = 2.776  # t_{0.975, 4}
print(f"| rule | mean alignment | worst-group alignment | Jain's index |")
print(f"|---|---|---|---|")
for rule in rules:
    cols = {"mean": [], "worst_group": [], "jain": []}
    for folder in folders[rule]:
        for row in csv.DictReader(open(f"{folder}/summary.csv")):
            if row["stage"] == "evaluate":
                for c in cols:
                    cols[c].append(float(row[c]))
    def ci(xs):
        m = statistics.mean(xs)
        h = T * statistics.stdev(xs) / math.sqrt(len(xs)) if len(xs) > 1 else float("nan")
        return f"{m:.4f} ± {h:.4f}"
    print(f"| {rule} (n={len(cols['mean'])}) | {ci(cols['mean'])} | {ci(cols['worst_group'])} | {ci(cols['jain'])} |")

def by_seed(rule):
    d = {}
    for folder in folders[rule]:
        seed = json.load(open(f"{folder}/manifest.json"))["seed"]
        for row in csv.DictReader(open(f"{folder}/summary.csv")):
            if row["stage"] == "evaluate":
                d[seed] = {c: float(row[c]) for c in ("mean", "worst_group", "jain")}
    return d
if "mean" in rules:
    base = by_seed("mean")
    print()
    print("| rule − mean, paired by seed | Δ mean alignment | Δ worst group | Δ Jain |")
    print("|---|---|---|---|")
    for rule in (r for r in rules if r != "mean"):
        d = by_seed(rule)
        cells = []
        for c in ("mean", "worst_group", "jain"):
            xs = [d[s][c] - base[s][c] for s in sorted(d) if s in base]
            m = statistics.mean(xs)
            h = T * statistics.stdev(xs) / math.sqrt(len(xs))
            cells.append(f"{m:+.4f} ± {h:.4f}")
        print(f"| {rule} | " + " | ".join(cells) + " |")
PY
