//! Build script of chorus-core: link libtorch with its rpath (../build/libtorch.rs), and digest
//! the code that computes a run's numbers.
//!
//! The digest is part of every run's identity (`record::pipeline_hash`), so that a run folder
//! is reused only by the very code that wrote it, without anyone having to remember to bump a
//! version: chorus-core's, chorus-llm's and chorus-plugin's sources (the stages, rules,
//! metrics, the language models and the kit the rules share) and Cargo.lock (the exact
//! dependencies, libtorch bindings included).
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

#[path = "../build/libtorch.rs"]
mod libtorch;

/// What the digest covers, relative to this crate's folder.
const CODE: [&str; 4] = ["src", "../llm/src", "../plugins/api/src", "../Cargo.lock"];

fn main() {
    libtorch::link();
    let here = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let mut files = Vec::new();
    for part in CODE {
        println!("cargo:rerun-if-changed={part}");
        collect(&here.join(part), &mut files);
    }
    files.sort();
    let mut hasher = Sha256::new();
    for file in &files {
        let name = file.strip_prefix(&here).unwrap_or(file);
        hasher.update(name.to_string_lossy().as_bytes());
        hasher.update([0]);
        hasher.update(std::fs::read(file).expect("a source file is readable"));
        hasher.update([0]);
    }
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    println!("cargo:rustc-env=CHORUS_CODE_DIGEST={digest}");
}

/// Every file under `path` (or `path` itself).
fn collect(path: &Path, files: &mut Vec<PathBuf>) {
    match std::fs::read_dir(path) {
        Ok(entries) => {
            for entry in entries {
                collect(&entry.expect("a readable folder").path(), files);
            }
        }
        Err(_) if path.is_file() => files.push(path.to_path_buf()),
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    }
}
