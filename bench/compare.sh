#!/usr/bin/env bash
# PPO update throughput, chorus (criterion's `ppo_update_256`) beside the PyTorch reference
# (bench/ppo_reference.py), both at batch 256 with one intra-op thread; prints both and the
# ratio. Run from anywhere: `bench/compare.sh`. The first run installs the Python side
# (bench/setup.sh, about 4.7 GB, once per machine).
#
# The two sides run one after the other, not at once, so neither steals the other's core;
# on a busy machine run it twice and trust the closer pair.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="$(bash bench/setup.sh | tail -n 1)"

# Criterion writes its estimates under $CRITERION_HOME; fixing it here means the parser
# below need not guess where the target directory is.
export CRITERION_HOME="${CRITERION_HOME:-${CARGO_TARGET_DIR:-$root/target}/criterion}"
cargo bench -p chorus-core --bench learning -- ppo_update_256 >&2

python_out="$("$py" bench/ppo_reference.py)"
echo "$python_out" >&2

"$py" - "$CRITERION_HOME" "$python_out" <<'EOF'
import json, re, sys
home, python_out = sys.argv[1], sys.argv[2]
batch = 256
print(f"{'kind':<13}{'chorus ms':>11}{'chorus /s':>11}{'python ms':>11}{'python /s':>11}{'ratio':>8}")
for kind in ("choice", "distribution"):
    with open(f"{home}/ppo_update_256/{kind}/new/estimates.json") as f:
        rust_ms = json.load(f)["median"]["point_estimate"] / 1e6
    py_ms = float(re.search(rf"^{kind} median_ms=([0-9.]+)", python_out, re.M).group(1))
    print(f"{kind:<13}{rust_ms:>11.2f}{batch / rust_ms * 1e3:>11.0f}"
          f"{py_ms:>11.2f}{batch / py_ms * 1e3:>11.0f}{py_ms / rust_ms:>7.2f}x")
EOF
