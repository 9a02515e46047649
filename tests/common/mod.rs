//! What the plugin test binaries share: the workspace's plugin libraries, built once per
//! binary by cargo, and running the real `chorus` binary.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The target folder cargo builds into: `CARGO_TARGET_DIR`, else the workspace's `target`.
pub fn target_dir() -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|t| !t.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(ROOT).join("target"));
    std::path::absolute(dir).unwrap()
}

/// `libNAME.so` (`.dylib` on macOS) in the debug folder of `target`.
pub fn library(target: &Path, name: &str) -> PathBuf {
    let file = format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    target.join("debug").join(file)
}

/// The workspace plugin `name` (`chorus_cvar`, …), after building all of them once.
pub fn plugin(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let target = BUILT.get_or_init(|| {
        let target = target_dir();
        let o = Command::new(env!("CARGO"))
            .args(["build", "-p", "chorus-cvar", "-p", "chorus-borda"])
            .args(["-p", "chorus-atkinson", "-p", "chorus-testkit"])
            .current_dir(ROOT)
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "building the plugins failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        target
    });
    let lib = library(target, name);
    assert!(lib.is_file(), "{} was not built", lib.display());
    lib
}

pub fn chorus(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(args)
        .output()
        .unwrap()
}
