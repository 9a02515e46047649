//! The language-model policy in the federated loop on the real World Values Survey files,
//! through the real binary and pipelines/llm-wvs.yaml at small sizes: two PPO rounds move the
//! policy away from the base model; a run killed with SIGKILL resumes to the same numbers; bad
//! settings are refused by name.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

#[path = "common/kill.rs"]
mod kill;
use kill::kill_at_checkpoint;

const BIN: &str = env!("CARGO_BIN_EXE_chorus");
const PIPELINE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/llm-wvs.yaml");

/// Small sizes: 8 rollouts (4 questions × 2), one epoch of 2 minibatches.
const SMALL: [&str; 10] = [
    "-s",
    "rollout.batch=8",
    "-s",
    "rollout.samples_per_question=2",
    "-s",
    "ppo.epochs=1",
    "-s",
    "ppo.minibatches=2",
    "-s",
    "loop.eval_every=1",
];

/// The `generate` form at test sizes: answers of up to 6 tokens, no entropy bonus.
const WRITTEN: [&str; 6] = [
    "-s",
    "policy.rollout=generate",
    "-s",
    "policy.max_tokens=6",
    "-s",
    "ppo.entropy_coef=0",
];

fn chorus(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn args<'a>(rounds: &'a str, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec![
        "run",
        PIPELINE,
        "-s",
        rounds,
        "--out",
        out.to_str().unwrap(),
    ];
    all.extend(SMALL);
    all.extend(extra);
    all
}

fn run_dir(out: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "one run folder in {}", out.display());
    dirs.pop().unwrap()
}

/// (stage, round, group, metric, value) rows of a run.
fn metrics(dir: &Path) -> Vec<(String, u64, Option<String>, String, f64)> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["stage"].as_str().unwrap().to_owned(),
                v["round"].as_u64().unwrap(),
                v["group"].as_str().map(str::to_owned),
                v["metric"].as_str().unwrap().to_owned(),
                v["value"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn two_ppo_rounds_move_the_real_model_on_real_data() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = chorus(&args("rounds=2", &out, &[]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = metrics(&run_dir(&out));
    let alignment = |stage: &str, round: u64| -> Vec<f64> {
        rows.iter()
            .filter(|r| r.0 == stage && r.1 == round && r.3 == "alignment")
            .map(|r| r.4)
            .collect()
    };
    let (before, after) = (alignment("initial", 0), alignment("evaluate", 2));
    assert_eq!((before.len(), after.len()), (3, 3), "US, CN and JP");
    for a in before.iter().chain(&after) {
        assert!(
            a.is_finite() && (0.0..=1.0).contains(a),
            "{before:?} {after:?}"
        );
    }
    assert_ne!(before, after, "the adapters moved the answers");
    let kl: Vec<f64> = rows
        .iter()
        .filter(|r| r.0 == "ppo" && r.3 == "train_kl")
        .map(|r| r.4)
        .collect();
    assert_eq!(kl.len(), 2);
    assert!(kl[0].abs() < 1e-4, "round 1 samples from the base: {kl:?}");
    assert!(
        kl[1].abs() > 1e-6,
        "round 2 samples from a moved policy: {kl:?}"
    );
}

/// The `generate` form: the model writes each answer (up to 6 tokens), the answers are read
/// for a letter, and the update is per token. Two rounds run end to end, count the answers
/// that named no option, move the policy, and repeat to the same numbers.
#[test]
fn written_answers_train_the_real_model_per_token() {
    let tmp = tempfile::tempdir().unwrap();
    let (first, second) = (tmp.path().join("first"), tmp.path().join("second"));
    for out in [&first, &second] {
        let o = chorus(&args("rounds=2", out, &WRITTEN));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let read = |out: &Path| std::fs::read(run_dir(out).join("metrics.jsonl")).unwrap();
    assert!(
        read(&first) == read(&second),
        "the same seed, other numbers"
    );
    let rows = metrics(&run_dir(&first));
    let per_round = |metric: &str| -> Vec<f64> {
        rows.iter()
            .filter(|r| r.0 == "aggregate" && r.3 == metric)
            .map(|r| r.4)
            .collect()
    };
    let unparsed = per_round("unparsed_answers");
    assert_eq!(unparsed.len(), 2, "counted every round");
    assert!(
        unparsed.iter().all(|&n| (0.0..8.0).contains(&n)),
        "most of SmolLM2's answers name an option: {unparsed:?}"
    );
    let kl: Vec<f64> = rows
        .iter()
        .filter(|r| r.0 == "ppo" && r.3 == "train_kl")
        .map(|r| r.4)
        .collect();
    assert!(kl[0].abs() < 1e-4, "round 1 writes with the base: {kl:?}");
    assert!(kl[1].abs() > 1e-6, "round 2 with a moved policy: {kl:?}");
    let alignment = |stage: &str, round: u64| -> Vec<f64> {
        rows.iter()
            .filter(|r| r.0 == stage && r.1 == round && r.3 == "alignment")
            .map(|r| r.4)
            .collect()
    };
    assert_ne!(alignment("initial", 0), alignment("evaluate", 2));
}

#[test]
fn killed_and_resumed_llm_run_matches_an_uninterrupted_one() {
    kill_and_resume(&[]);
}

/// Written answers carry per-token rollouts and the unparsed-answer count through the same
/// checkpoint.
#[test]
fn killed_and_resumed_written_answers_run_matches_an_uninterrupted_one() {
    kill_and_resume(&WRITTEN);
}

/// Runs 3 rounds whole, and again killed with SIGKILL after the first checkpoint and resumed:
/// the metrics must be bit-identical.
fn kill_and_resume(form: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let mut each = vec!["-s", "loop.checkpoint_every=1"];
    each.extend(form);
    let whole = tmp.path().join("whole");
    let o = chorus(&args("rounds=3", &whole, &each));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let whole_dir = run_dir(&whole);

    let killed = tmp.path().join("killed");
    kill_at_checkpoint(
        &args("rounds=3", &killed, &each),
        &killed,
        1,
        Duration::from_secs(600),
    );
    let dir = run_dir(&killed);
    let o = chorus(&["run", "--resume", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let read = |d: &Path| std::fs::read(d.join("metrics.jsonl")).unwrap();
    assert!(
        read(&dir) == read(&whole_dir),
        "metrics differ after resume"
    );
    // The checkpoint holds adapters, value head and optimiser state only (0.46 M adapter
    // weights × 3 with Adam's moments, ~5.5 MB per saved policy state; the loop saves the
    // carried one and the update's), not the 540 MB of the model's fp32 weights.
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("checkpoint.json")).unwrap())
            .unwrap();
    let saved = dir.join(index["folder"].as_str().unwrap());
    let bytes: u64 = std::fs::read_dir(&saved)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(bytes < 16 << 20, "checkpoint of {bytes} bytes");
}

#[test]
fn bad_language_model_settings_are_refused_by_name() {
    let quickstart = concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/quickstart.yaml");
    for (file, sets, expected) in [
        (
            PIPELINE,
            vec!["policy.hidden=32"],
            vec!["`hidden` applies to the MLP policy"],
        ),
        (
            PIPELINE,
            vec!["policy.lora.targets=[qkv_proj]"],
            vec!["`qkv_proj`", "q_proj, k_proj, v_proj"],
        ),
        (
            PIPELINE,
            vec!["policy.device=gpu"],
            vec!["`gpu` is not a device"],
        ),
        (
            PIPELINE,
            vec!["policy.model=llama-70b"],
            vec!["`llama-70b`", "smollm2-135m-instruct"],
        ),
        (
            PIPELINE,
            vec!["policy.rollout=distribution"],
            vec!["`distribution` is the MLP's"],
        ),
        (
            PIPELINE,
            vec!["policy.max_tokens=4"],
            vec!["`max_tokens` applies to written answers"],
        ),
        (
            PIPELINE,
            vec!["policy.rollout=generate", "policy.max_tokens=0"],
            vec!["`max_tokens` must be 1 to 256"],
        ),
        (
            PIPELINE,
            vec!["aggregate.unparsed_reward=low"],
            vec!["`unparsed_reward` must be a finite number"],
        ),
        (
            quickstart,
            vec!["policy.rollout=generate"],
            vec!["only a language model (`model:`) writes its answers"],
        ),
        (
            quickstart,
            vec![
                "policy.model=smollm2-135m-instruct",
                "policy.rollout=choice",
            ],
            vec!["reads each question's wording", "wvs_json"],
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let mut all = vec!["run", file, "--out", tmp.path().to_str().unwrap()];
        for set in &sets {
            all.extend(["-s", set]);
        }
        let o = chorus(&all);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{sets:?}: {err}");
        for e in expected {
            assert!(err.contains(e), "{sets:?}: `{e}` not in {err}");
        }
    }
}

#[test]
fn an_evaluation_only_country_is_measured_but_never_scores() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = chorus(&args("rounds=1", &out, &["-s", "data.eval_only=[JP]"]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = metrics(&run_dir(&out));
    let groups = |metric: &str| -> Vec<String> {
        let mut g: Vec<String> = rows
            .iter()
            .filter(|r| r.3 == metric)
            .filter_map(|r| r.2.clone())
            .collect();
        g.sort();
        g.dedup();
        g
    };
    assert_eq!(groups("group_reward"), ["CN", "US"], "JP never scores");
    assert_eq!(groups("alignment"), ["CN", "JP", "US"], "JP is evaluated");

    for (set, expected) in [
        ("data.eval_only=[FR]", "`FR`"),
        ("data.eval_only=[US, CN, JP]", "train"),
    ] {
        let o = chorus(&["validate", PIPELINE, "-s", set]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{set}: {err}");
        assert!(err.contains(expected), "{set}: `{expected}` not in {err}");
    }
}

/// `source: model` on real data: each country's reward model learns on frozen SmolLM2
/// features of its own training questions, and is checked on held-out ones.
#[test]
fn reward_models_learn_on_frozen_language_model_features() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let learned = [
        "-s",
        "reward_model.source=model",
        "-s",
        "reward_model.features=smollm2-135m-instruct",
    ];
    let o = chorus(&args("rounds=1", &out, &learned));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let quality: Vec<(String, f64)> = metrics(&run_dir(&out))
        .into_iter()
        .filter(|r| r.3 == "reward_model_alignment")
        .map(|r| (r.2.unwrap(), r.4))
        .collect();
    assert_eq!(quality.len(), 3, "{quality:?}");
    for (g, a) in &quality {
        assert!(*a > 0.5 && *a <= 1.0, "{g}: held-out alignment {a}");
    }
    let o = chorus(&[
        "validate",
        PIPELINE,
        "-s",
        "reward_model.features=smollm2-135m-instruct",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("`source: oracle` has none"), "{err}");
}
