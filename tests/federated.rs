//! The federated RLHF loop through the real binary: learning, determinism, kill-and-resume,
//! and the loop's bad inputs.
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "common/kill.rs"]
mod kill;
use kill::kill_at_checkpoint;

const BIN: &str = env!("CARGO_BIN_EXE_chorus");

/// A small version of pipelines/paper.yaml: fast enough for a test, long enough to kill.
const LOOP: &str = "name: fed
seed: 3
rounds: 60
data: {kind: simulator, questions: 80, options: 4, features: 4, minority_shift: 2.5, groups: {count: 4, minorities: 1}}
stages:
  - {id: split, kind: split}
  - {id: reward_model, kind: reward_model, needs: [split], params: {epochs: 50}}
  - {id: policy, kind: policy, needs: [split], params: {rollout: distribution, hidden: 16}}
loop:
  eval_every: 10
  checkpoint_every: 5
  carry:
    - {from: policy, to: ppo}
  stages:
    - {id: rollout, kind: rollout, needs: [split, policy], params: {batch: 64}}
    - {id: score, kind: score, needs: [split, rollout, reward_model]}
    - {id: aggregate, kind: aggregate, needs: [score], params: {rule: adaptive_alpha}}
    - {id: ppo, kind: ppo, needs: [policy, rollout, aggregate]}
    - {id: evaluate, kind: evaluate, needs: [split, ppo]}
";

fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("fed.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn chorus(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

/// Runs `file` into `out` and returns the run folder; the run must succeed.
fn run_into(file: &Path, out: &Path) -> PathBuf {
    let o = chorus(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    run_dir(out)
}

/// Runs the loop with `from` replaced by `to`, which must fail as a user error (exit 2);
/// returns stderr and the output folder.
fn run_failing(tmp: &Path, from: &str, to: &str) -> (String, PathBuf) {
    let file = write(tmp, &LOOP.replace(from, to));
    let out = tmp.join("out");
    let o = chorus(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{err}");
    (err, out)
}

fn run_dir(out: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "one run folder in {}", out.display());
    dirs.pop().unwrap()
}

fn metric(dir: &Path, stage: &str, metric: &str) -> Vec<(u64, f64)> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["stage"] == stage && r["metric"] == metric && r["group"].is_null())
        .map(|r| (r["round"].as_u64().unwrap(), r["value"].as_f64().unwrap()))
        .collect()
}

/// The policy learns: mean alignment after training beats the first evaluation, and PPO's
/// per-round statistics reach the metrics file.
#[test]
fn training_improves_alignment_and_logs_ppo_statistics() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(tmp.path(), LOOP);
    let out = tmp.path().join("out");
    let dir = run_into(&file, &out);
    let mean = metric(&dir, "evaluate", "mean");
    assert_eq!(
        mean.iter().map(|m| m.0).collect::<Vec<_>>(),
        vec![10, 20, 30, 40, 50, 60]
    );
    assert!(
        mean[5].1 > mean[0].1 + 0.01,
        "alignment did not improve: {mean:?}"
    );
    for stat in [
        "train_reward",
        "train_kl",
        "train_entropy",
        "train_clip_fraction",
        "train_value_loss",
        "train_approx_kl",
    ] {
        let rows = metric(&dir, "ppo", stat);
        assert_eq!(rows.len(), 60, "{stat}");
        assert!(rows.iter().all(|r| r.1.is_finite()), "{stat}");
    }
    for figure in [
        "alignment.png",
        "alignment.svg",
        "mean_vs_worst.png",
        "fairness.svg",
    ] {
        assert!(dir.join(figure).is_file(), "{figure}");
    }
}

/// A run killed with SIGKILL and resumed ends with exactly the metrics of a run that was
/// never interrupted.
#[test]
fn killed_and_resumed_run_matches_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(tmp.path(), LOOP);
    let whole = tmp.path().join("whole");
    let whole_dir = run_into(&file, &whole);

    let killed = tmp.path().join("killed");
    let args = [
        "run",
        file.to_str().unwrap(),
        "--out",
        killed.to_str().unwrap(),
    ];
    let killed_at = kill_at_checkpoint(&args, &killed, 10, Duration::from_secs(60));
    let dir = run_dir(&killed);
    let manifest = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    assert!(
        manifest.contains("\"status\": \"running\""),
        "killed mid-run (after round {killed_at})"
    );

    let o = chorus(&["run", "--resume", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let read = |d: &Path, f: &str| std::fs::read(d.join(f)).unwrap();
    assert!(
        read(&dir, "metrics.jsonl") == read(&whole_dir, "metrics.jsonl"),
        "metrics differ after resume"
    );
    assert!(read(&dir, "summary.csv") == read(&whole_dir, "summary.csv"));
}

/// Each bad input of the loop is a clear error with exit 2.
#[test]
fn loop_bad_inputs_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "rule: adaptive_alpha",
            "rule: majority_vote",
            &["unknown aggregation rule", "adaptive_alpha", "group_dro"],
        ),
        (
            "rule: adaptive_alpha",
            "rule: adaptive_alpha, temperature: 0",
            &["temperature"],
        ),
        (
            "rule: adaptive_alpha",
            "rule: adaptive_alpha, beta: -0.5",
            &["beta"],
        ),
        ("rule: adaptive_alpha", "rule: group_dro, eta: 0", &["eta"]),
        (
            "groups: {count: 4, minorities: 1}",
            "groups: {count: 0}",
            &["data.groups.count"],
        ),
        ("options: 4,", "options: 1,", &["at least 2 options"]),
        (
            "params: {epochs: 50}",
            "params: {epochs: 50, source: oracle, fedavg: {rounds: 2}}",
            &["fedavg", "oracle"],
        ),
        (
            "params: {epochs: 50}",
            "params: {epochs: 0}",
            &["epochs", "fedavg"],
        ),
        (
            "params: {epochs: 50}",
            "params: {epochs: 50, fedavg: {rounds: 0}}",
            &["fedavg.rounds"],
        ),
        (
            "hidden: 16}",
            "hidden: 16, pretrain: {target: US}}",
            &["fed.yaml:8:", "`US`", "population_mean", "g0, g1, g2, g3"],
        ),
        (
            "hidden: 16}",
            "hidden: 16, pretrain: {target: g0, noise: -1}}",
            &["fed.yaml:8:", "noise"],
        ),
        (
            "hidden: 16}",
            "hidden: 16, pretrain: {target: g0, lr: 0}}",
            &["fed.yaml:8:", "lr"],
        ),
    ];
    for (from, to, expect) in cases {
        let file = write(tmp.path(), &LOOP.replace(from, to));
        let o = chorus(&["validate", file.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{to}: {err}");
        assert!(
            err.contains("fed.yaml:") && err.contains("hint:"),
            "{to}: {err}"
        );
        for e in *expect {
            assert!(err.contains(e), "{to}: expected `{e}` in\n{err}");
        }
    }
}

/// A pre-trained base leans toward its target: the fit is recorded (its KL falls), and the
/// initial policy is closer to the target group on the held-out questions than an
/// un-pretrained one is, and closer to it than to the minority.
#[test]
fn pretraining_gives_the_base_a_lean_and_records_the_fit() {
    let tmp = tempfile::tempdir().unwrap();
    let short = LOOP.replace("rounds: 60", "rounds: 10").replace(
        "loop:",
        "  - {id: initial, kind: evaluate, needs: [split, policy]}\nloop:",
    );
    let group = |dir: &Path, g: &str| -> f64 {
        std::fs::read_to_string(dir.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|r| r["round"] == 0 && r["metric"] == "alignment" && r["group"] == g)
            .unwrap()["value"]
            .as_f64()
            .unwrap()
    };
    let plain = run_into(&write(tmp.path(), &short), &tmp.path().join("plain"));
    let pre = short.replace(
        "hidden: 16}",
        "hidden: 16, pretrain: {target: g0, noise: 0.2}}",
    );
    let leaning = run_into(&write(tmp.path(), &pre), &tmp.path().join("pre"));
    let start = metric(&leaning, "policy", "pretrain_kl_start");
    let end = metric(&leaning, "policy", "pretrain_kl_end");
    assert_eq!((start.len(), end.len()), (1, 1));
    assert!(end[0].1 < 0.1 * start[0].1, "{start:?} → {end:?}");
    assert!(metric(&plain, "policy", "pretrain_kl_end").is_empty());
    assert!(
        group(&leaning, "g0") > group(&plain, "g0") + 0.05,
        "g0: pre-trained {} vs plain {}",
        group(&leaning, "g0"),
        group(&plain, "g0")
    );
    assert!(group(&leaning, "g0") > group(&leaning, "g3") + 0.05);
}

/// A group left without data stops the run with the group named; so does resuming from a
/// folder that is not a run, or from a run of another pipeline.
#[test]
fn empty_split_and_bad_resumes_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let (err, _) = run_failing(
        tmp.path(),
        "{id: split, kind: split}",
        "{id: split, kind: split, params: {coverage: 0.001}}",
    );
    assert!(
        err.contains("group `g0`") && err.contains("empty data split"),
        "{err}"
    );

    let o = chorus(&["run", "--resume", tmp.path().to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("not a chorus run folder"), "{err}");

    let good = write(tmp.path(), &LOOP.replace("rounds: 60", "rounds: 2"));
    let out = tmp.path().join("good");
    let dir = run_into(&good, &out);
    let o = chorus(&[
        "run",
        good.to_str().unwrap(),
        "-s",
        "seed=9",
        "--resume",
        dir.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("different pipeline"), "{err}");
}

/// A learning rate far too high makes the update's gradient non-finite: the run stops in that
/// round naming the stage and the fix, with the weights never overwritten by NaN and nothing
/// non-finite in the records.
#[test]
fn a_diverging_update_stops_the_run_with_its_cause() {
    let tmp = tempfile::tempdir().unwrap();
    let (err, out) = run_failing(
        tmp.path(),
        "{id: ppo, kind: ppo, needs: [policy, rollout, aggregate]}",
        "{id: ppo, kind: ppo, needs: [policy, rollout, aggregate], params: {lr: 1000}}",
    );
    for expected in [
        "stage `ppo` failed (round 1)",
        "diverged",
        "lower `lr` (now 1e3)",
    ] {
        assert!(err.contains(expected), "expected `{expected}` in\n{err}");
    }
    let dir = run_dir(&out);
    let manifest = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"status\": \"failed\""), "{manifest}");
    assert!(!dir.join("checkpoint.json").exists());
    let metrics = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    assert!(!metrics.is_empty());
    for line in metrics.lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        let value = row["value"].as_f64();
        assert!(value.is_some_and(f64::is_finite), "{line}");
    }
}

/// FedAvg rounds run end to end, log each group's held-out reward-model quality, and give
/// the same numbers on a second run (groups train in parallel; the average is ordered).
#[test]
fn fedavg_runs_and_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(
        tmp.path(),
        &LOOP.replace("rounds: 60", "rounds: 2").replace(
            "params: {epochs: 50}",
            "params: {epochs: 20, fedavg: {rounds: 3, local_epochs: 5}}",
        ),
    );
    let a = run_into(&file, &tmp.path().join("a"));
    let b = chorus(&[
        "run",
        file.to_str().unwrap(),
        "--force",
        "--out",
        tmp.path().join("b").to_str().unwrap(),
    ]);
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let b = run_dir(&tmp.path().join("b"));
    let read = |d: &Path| std::fs::read_to_string(d.join("metrics.jsonl")).unwrap();
    let quality: Vec<(String, f64)> = read(&a)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["metric"] == "reward_model_alignment")
        .map(|r| (r["group"].to_string(), r["value"].as_f64().unwrap()))
        .collect();
    assert_eq!(quality.len(), 4, "one reading per group: {quality:?}");
    assert!(
        quality.iter().all(|(_, v)| *v > 0.5 && *v <= 1.0),
        "{quality:?}"
    );
    assert_eq!(read(&a), read(&b));
}

/// The loop's feedback edge is drawn in both graph formats, marked as the next round's.
#[test]
fn graph_shows_the_carried_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(tmp.path(), LOOP);
    let mermaid = chorus(&["graph", file.to_str().unwrap(), "--format", "mermaid"]);
    assert!(String::from_utf8_lossy(&mermaid.stdout).contains("ppo -.->|next round| policy"));
    let dot =
        String::from_utf8_lossy(&chorus(&["graph", file.to_str().unwrap()]).stdout).into_owned();
    assert!(dot.contains("label=\"next round\""), "{dot}");
}

/// Resuming continues exactly or refuses with the reason: an unreadable checkpoint index is
/// an error (not a silent restart), and a folder with no checkpoint starts over without
/// keeping any row twice.
#[test]
fn resume_never_writes_rows_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(tmp.path(), &LOOP.replace("rounds: 60", "rounds: 12"));
    let whole_dir = run_into(&file, &tmp.path().join("whole"));
    let dir = run_into(&file, &tmp.path().join("again"));

    std::fs::write(dir.join("checkpoint.json"), "{ not json").unwrap();
    let o = chorus(&["run", "--resume", dir.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("checkpoint.json"), "{err}");

    std::fs::remove_file(dir.join("checkpoint.json")).unwrap();
    let o = chorus(&["run", "--resume", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let read = |d: &Path| std::fs::read_to_string(d.join("metrics.jsonl")).unwrap();
    assert_eq!(read(&dir), read(&whole_dir), "a restart keeps no old row");
}

/// Two processes never write one run folder: while a run is going, a second `chorus run` of
/// the same pipeline into the same place is refused; after the first is killed, the lock is
/// gone with it and the folder can be resumed.
#[test]
#[allow(clippy::zombie_processes)] // killed and reaped below
fn a_run_folder_has_one_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(tmp.path(), LOOP);
    let out = tmp.path().join("out");
    let mut first = Command::new(BIN)
        .args([
            "run",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !std::fs::read_dir(&out)
        .ok()
        .and_then(|mut d| d.next())
        .is_some_and(|e| e.unwrap().path().join("manifest.json").is_file())
    {
        assert!(start.elapsed() < Duration::from_secs(60), "no run folder");
        std::thread::sleep(Duration::from_millis(5));
    }
    let second = chorus(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let still_running = first.try_wait().unwrap().is_none();
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(
        still_running,
        "the first run ended before the second started"
    );
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(err.contains("another chorus process"), "{err}");
    let dir = run_dir(&out);
    let o = chorus(&["run", "--resume", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Sizes a typo can blow up are refused before anything is allocated: exit 2 at once, the
/// field named with the estimate, no run folder.
#[test]
fn sizes_that_cannot_fit_are_refused_up_front() {
    let tmp = tempfile::tempdir().unwrap();
    // The sizes of the shipped paper pipeline, where these typos were first found.
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/paper.yaml");
    let out = tmp.path().join("out");
    for (set, knob) in [
        ("data.questions=100000000", "data.questions"),
        ("rollout.batch=1000000000", "rollout.batch"),
        ("data.options=1000000", "data.options"),
    ] {
        let start = Instant::now();
        // A 16 GiB cap, so the test means the same on a machine with more memory.
        let o = Command::new(BIN)
            .args(["run", file.to_str().unwrap(), "--out"])
            .arg(&out)
            .args(["-s", set])
            .env("CHORUS_MEMORY", (16u64 << 30).to_string())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{set}: {err}");
        assert!(err.contains(&format!("lower `{knob}`")), "{set}: {err}");
        assert!(err.contains("GiB"), "{set}: {err}");
        assert!(start.elapsed() < Duration::from_secs(10), "{set} took long");
        assert!(!out.exists(), "{set} made a run folder");
    }
}
