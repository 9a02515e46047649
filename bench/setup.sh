#!/usr/bin/env bash
# Creates (once) the Python environment that bench/ppo_reference.py runs in.
#
# The reference must import torch from Python, which the CPU-only libtorch that
# `./chorus.sh setup` installs cannot do (it leaves out torch's CUDA dependency tree,
# and `import torch` loads cuDNN and friends eagerly). So this installs the full
# torch==2.13.0 wheel with its dependencies (about 4.7 GB) into its own venv, beside
# the libtorch in the chorus cache. Same version as libtorch, so the comparison is
# between the two front ends over one kernel library, not between two PyTorch releases.
#
# Idempotent: a venv whose torch already reports 2.13.0 is reused as is.
# Prints the venv's python path as its last line.
set -euo pipefail

TORCH_VERSION=2.13.0
cache="${CHORUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chorus}"
venv="$cache/bench-venv"
py="$venv/bin/python"

have() { [ -x "$py" ] && "$py" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; }

if have; then
  echo "bench/setup.sh: reusing $venv (torch $TORCH_VERSION)" >&2
else
  command -v python3 >/dev/null || { echo "bench/setup.sh: python3 is needed" >&2; exit 1; }
  mkdir -p "$cache"
  [ -x "$py" ] || python3 -m venv "$venv"
  echo "bench/setup.sh: installing torch $TORCH_VERSION into $venv (about 4.7 GB, once per machine)" >&2
  "$py" -m pip install --quiet "torch==$TORCH_VERSION" numpy >&2
  have || { echo "bench/setup.sh: torch $TORCH_VERSION still does not import from $venv" >&2; exit 1; }
fi
echo "$py"
