#!/usr/bin/env bash
# One entry point for a fresh clone:
#   ./chorus.sh run pipelines/quickstart.yaml   set up (first time only), build, run a pipeline
#   ./chorus.sh test                            set up, then the whole test suite (what CI runs)
#   ./chorus.sh setup                           only the set-up
#
# Set-up installs the one libtorch that tch 0.26 is built against (PyTorch 2.13.0, CPU wheel
# from PyPI, ~1.2 GB) into a cache outside the clone, so clones on the same machine share it:
#   ${CHORUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chorus}/libtorch-2.13.0
# To use your own libtorch 2.13.0 (e.g. a CUDA build on a GPU box), export LIBTORCH=/path first.
set -euo pipefail

TORCH_VERSION=2.13.0
# The CPU-only recipe: torch without its CUDA dependency tree, plus the two CUDA runtime
# libraries that libtorch links even when no GPU is used.
PIP_PACKAGES=(torch==2.13.0 nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${CHORUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/chorus}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"

say() { printf 'chorus.sh: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 2; }

# The version a libtorch directory declares (wheel: version.py; archive: build-version).
libtorch_version() {
  local dir=$1
  if [[ -f $dir/build-version ]]; then
    cut -d+ -f1 <"$dir/build-version"
  elif [[ -f $dir/version.py ]]; then
    sed -n "s/^__version__ = '\([^'+]*\).*/\1/p" "$dir/version.py"
  fi
}

ensure_libtorch() {
  local dir
  if [[ -n ${LIBTORCH:-} ]]; then
    dir=$LIBTORCH
    say "using LIBTORCH=$dir from the environment"
  else
    local root="$cache/libtorch-$TORCH_VERSION"
    dir="$root/torch"
    if [[ -d $dir/lib ]]; then
      say "reusing libtorch $TORCH_VERSION in $root"
    else
      command -v python3 >/dev/null || die "python3 with pip is needed to fetch libtorch from PyPI (or export LIBTORCH=/path/to/libtorch-$TORCH_VERSION)"
      say "installing libtorch $TORCH_VERSION from PyPI into $root (about 1.2 GB, once per machine)"
      rm -rf "$root.partial"
      mkdir -p "$cache"
      python3 -m pip install --quiet --disable-pip-version-check --no-deps \
        --target "$root.partial" "${PIP_PACKAGES[@]}" ||
        die "pip could not install ${PIP_PACKAGES[*]}; check access to PyPI, then rerun ./chorus.sh setup"
      mv "$root.partial" "$root"
    fi
  fi
  [[ -d $dir/lib && -d $dir/include ]] ||
    die "$dir is not a libtorch (no lib/ and include/); unset LIBTORCH and run ./chorus.sh setup"
  local found
  found=$(libtorch_version "$dir")
  [[ $found == "$TORCH_VERSION" ]] ||
    die "libtorch at $dir is version ${found:-unknown}, chorus needs $TORCH_VERSION; unset LIBTORCH and run ./chorus.sh setup"
  ln -sfn "$(cd "$dir" && pwd -P)" "$here/.libtorch"
  # The resolved path, not the per-clone symlink: every clone then shares one torch-sys build.
  export LIBTORCH="$here/.libtorch"
  LIBTORCH="$(cd "$LIBTORCH" && pwd -P)"
}

setup() {
  command -v cargo >/dev/null || die "cargo is needed: install Rust from https://rustup.rs"
  ensure_libtorch
  # Optimised: the binary users run is the one they time (the debug build runs the paper
  # pipeline 1.45x slower). The example plugins are built beside it, ready for `plugins:`.
  say "building chorus and the example plugins, optimised (target dir $CARGO_TARGET_DIR)"
  (cd "$here" && cargo build --quiet --release --bins &&
    cargo build --quiet --release -p chorus-cvar -p chorus-borda -p chorus-atkinson)
}

cmd=${1:-}
[[ $# -gt 0 ]] && shift
case $cmd in
  setup)
    setup
    say "ready: $CARGO_TARGET_DIR/release/chorus (or ./chorus.sh run FILE)"
    ;;
  run)
    [[ $# -gt 0 ]] || die "usage: ./chorus.sh run PIPELINE.yaml [-s KEY=VALUE]..."
    setup
    exec "$CARGO_TARGET_DIR/release/chorus" run "$@"
    ;;
  test)
    setup
    cd "$here"
    cargo fmt --all --check
    cargo clippy --quiet --workspace --all-targets -- -D warnings
    # cargo prints one `test result:` line per test binary, and the last one is often a
    # doc-test crate with nothing in it; the closing tally says what ran in all.
    log="$(mktemp)"
    trap 'rm -f "$log"' EXIT
    cargo test --workspace "$@" 2>&1 | tee "$log"
    awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
    ;;
  *)
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
    [[ -z $cmd ]] && exit 0
    die "unknown command '$cmd'"
    ;;
esac
