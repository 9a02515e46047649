#!/usr/bin/env bash
# Federated reward models on pipelines/paper.yaml: each group training alone (`local`), FedAvg
# then local fine-tuning (`fedavg`), and the FedAvg model shared by every group (`shared`,
# epochs 0), over 5 seeds, with ample shards (the pipeline as shipped) and scarce ones (10% of
# the training questions per group, 20 respondents each). Columns: held-out reward-model
# alignment (mean over groups and worst group), then the trained policy's mean alignment,
# worst-group alignment and Jain's index; mean ± 95% CI (t, 4 dof), then paired by seed
# against `local`.
#   scripts/fedavg_table.sh
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
bin="${CARGO_TARGET_DIR:-${CHORUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chorus}/target}/release/chorus"
out="${OUT:-$here/runs/fedavg-table}"
fed='reward_model.fedavg={rounds: 10}'
runs=()
for regime in ample scarce; do
  data=()
  [[ $regime == scarce ]] && data=(-s split.coverage=0.1 -s split.respondents=20)
  for variant in local fedavg shared; do
    extra=()
    [[ $variant == fedavg ]] && extra=(-s "$fed")
    [[ $variant == shared ]] && extra=(-s "$fed" -s reward_model.epochs=0)
    for seed in 1 2 3 4 5; do
      printed="$("$bin" run "$here/pipelines/paper.yaml" -s seed="$seed" "${data[@]}" "${extra[@]}" \
        --out "$out/$regime/$variant" 2>/dev/null)"
      runs+=("$regime/$variant/$seed=${printed%%$'\n'*}")
    done
  done
done
python3 - "${runs[@]}" <<'PY'
import csv, json, math, statistics, sys
T = 2.776  # t_{0.975, 4}
table = {}
for arg in sys.argv[1:]:
    key, folder = arg.split("=", 1)
    regime, variant, seed = key.split("/")
    quality = [json.loads(l)["value"] for l in open(f"{folder}/metrics.jsonl")
               if json.loads(l)["metric"] == "reward_model_alignment"]
    final = next(r for r in csv.DictReader(open(f"{folder}/summary.csv")) if r["stage"] == "evaluate")
    row = [statistics.mean(quality), min(quality)] + [float(final[c]) for c in ("mean", "worst_group", "jain")]
    table.setdefault(regime, {}).setdefault(variant, {})[seed] = row
def ci(xs):
    return f"{statistics.mean(xs):+.4f} ± {T * statistics.stdev(xs) / math.sqrt(len(xs)):.4f}"
head = "| RM alignment | RM worst group | policy mean | policy worst group | Jain |"
for regime, variants in table.items():
    print(f"\n{regime} shards\n\n| variant {head}\n|---|---|---|---|---|---|")
    for variant, seeds in variants.items():
        cols = zip(*seeds.values())
        print(f"| {variant} | " + " | ".join(ci(c).lstrip("+") for c in cols) + " |")
    base = variants["local"]
    for variant, seeds in variants.items():
        if variant != "local":
            cols = zip(*[[a - b for a, b in zip(seeds[s], base[s])] for s in seeds])
            print(f"| {variant} − local | " + " | ".join(ci(c) for c in cols) + " |")
PY
