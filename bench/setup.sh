#!/usr/bin/env bash
# Creates (once) the Python environment that bench/ppo_reference.py, bench/llm_fixtures.py,
# bench/llm_reference.py and bench/llm_ppo_reference.py run in.
#
# The reference must import torch from Python, which the CPU-only libtorch that
# `./chorus.sh setup` installs cannot do (it leaves out torch's CUDA dependency tree,
# and `import torch` loads cuDNN and friends eagerly). So this installs the full
# torch==2.13.0 wheel with its dependencies (about 4.7 GB) into its own venv, beside
# the libtorch in the chorus cache. Same version as libtorch, so the comparison is
# between the two front ends over one kernel library, not between two PyTorch releases.
#
# Beside torch it installs the language-model reference stack that bench/llm_fixtures.py
# uses to write tests/fixtures/llm/ (about 170 MB more), each at an exact version checked to
# load GGUF files with torch 2.13.0: transformers, gguf (gguf-py, llama.cpp's reader/writer),
# accelerate, and transformers' own tokenizers/safetensors/huggingface_hub; and peft, the LoRA
# adapters of bench/llm_ppo_reference.py (0.21.2, whose only new package is itself; checked to
# wrap transformers 5.24.0's Llama on torch 2.13.0). (transformers 5.25.0
# requires kernels>=0.19.1, which the package index offers no release of; 5.24.0 has no such pin.)
# No sentencepiece or protobuf: every tokenizer involved is a byte-level BPE.
#
# Idempotent: a venv whose torch already reports 2.13.0 and whose LLM packages are at the
# pinned versions is reused as is; only what is missing or at another version is installed.
# Prints the venv's python path as its last line.
set -euo pipefail

TORCH_VERSION=2.13.0
LLM_PINS=(
  transformers==5.24.0
  gguf==0.19.0
  accelerate==1.16.0
  tokenizers==0.23.3
  safetensors==0.8.0
  huggingface_hub==2.4.0
  peft==0.21.2
)
cache="${CHORUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chorus}"
venv="$cache/bench-venv"
py="$venv/bin/python"

have() { [ -x "$py" ] && "$py" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; }

# Exits 0 when every pin in the arguments is installed at exactly its version.
have_pins() {
  [ -x "$py" ] && "$py" - "$@" 2>/dev/null <<'PY'
import sys
from importlib.metadata import version, PackageNotFoundError
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
}

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

if have_pins "${LLM_PINS[@]}"; then
  echo "bench/setup.sh: reusing the LLM reference packages (${LLM_PINS[*]})" >&2
else
  echo "bench/setup.sh: installing ${LLM_PINS[*]} into $venv" >&2
  # torch is named too, so that no dependency resolution may move it off $TORCH_VERSION.
  "$py" -m pip install --quiet "torch==$TORCH_VERSION" "${LLM_PINS[@]}" >&2
  have_pins "${LLM_PINS[@]}" || { echo "bench/setup.sh: the LLM reference packages are still not at ${LLM_PINS[*]}" >&2; exit 1; }
  have || { echo "bench/setup.sh: installing them moved torch off $TORCH_VERSION" >&2; exit 1; }
fi
echo "$py"
