//! Build-script module shared by every crate that links libtorch (the `chorus` binary and
//! `chorus-core`).
//!
//! tch's own rpath stops at torch-sys, so binaries, tests and benches downstream would need
//! `LD_LIBRARY_PATH`. We read the libtorch lib dir that torch-sys found (`DEP_TCH_LIBTORCH_LIB`),
//! check it is the one libtorch version tch 0.26 was generated against, and bake it into the
//! rpath of everything this crate links.
use std::path::{Path, PathBuf};

/// tch 0.26 is generated against exactly this PyTorch release.
const TORCH_VERSION: &str = "2.13.0";

/// Bakes libtorch's lib dir into the rpath and tells the crate which libtorch it links.
pub fn link() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Some(lib) = std::env::var_os("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:rustc-env=CHORUS_LIBTORCH_VERSION=unknown");
        return;
    };
    let lib = PathBuf::from(lib);
    let lib = lib.canonicalize().unwrap_or(lib);
    let version = libtorch_version(&lib);
    if let Some(full) = &version {
        let found = full.split('+').next().unwrap_or(full);
        if found != TORCH_VERSION {
            panic!(
                "libtorch at {} is version {found}, but chorus needs {TORCH_VERSION}.\n\
                 Fix: unset LIBTORCH and run `./chorus.sh setup` (installs the pinned copy into the cache), \
                 or point LIBTORCH at a libtorch {TORCH_VERSION}.",
                lib.display()
            );
        }
    }
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    let version = version.unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=CHORUS_LIBTORCH_VERSION={version}");
}

/// Reads the full version (`2.13.0+cu130`) from a PyPI wheel (`torch/version.py`) or a libtorch archive (`build-version`).
fn libtorch_version(lib: &Path) -> Option<String> {
    let root = lib.parent()?;
    let raw = std::fs::read_to_string(root.join("build-version"))
        .ok()
        .or_else(|| {
            let py = std::fs::read_to_string(root.join("version.py")).ok()?;
            py.lines()
                .find_map(|l| l.strip_prefix("__version__ = "))
                .map(|v| v.trim_matches(['\'', '"']).to_owned())
        })?;
    Some(raw.trim().to_owned())
}
