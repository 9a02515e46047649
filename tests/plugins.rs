//! Plugins end to end through the real binary: real shared libraries (the example and test
//! plugins built by cargo, a C plugin compiled here with `cc`) named in real pipelines; every
//! bad input of the plugin issue; plugin state across SIGKILL + resume.
mod common;
#[path = "common/kill.rs"]
mod kill;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{chorus, plugin, ROOT};
use kill::kill_at_checkpoint;

/// A short federated loop; `PLUGINS` and `RULE` are filled in per test.
const LOOP: &str = "name: plug
seed: 5
rounds: 12
plugins: PLUGINS
data: {kind: simulator, questions: 60, options: 4, features: 4, minority_shift: 2.5, groups: {count: 4, minorities: 1}}
stages:
  - {id: split, kind: split}
  - {id: reward_model, kind: reward_model, needs: [split], params: {epochs: 30}}
  - {id: policy, kind: policy, needs: [split], params: {rollout: distribution, hidden: 16}}
loop:
  eval_every: 4
  checkpoint_every: 3
  carry:
    - {from: policy, to: ppo}
  stages:
    - {id: rollout, kind: rollout, needs: [split, policy], params: {batch: 64}}
    - {id: score, kind: score, needs: [split, rollout, reward_model]}
    - {id: aggregate, kind: aggregate, needs: [score], params: RULE}
    - {id: ppo, kind: ppo, needs: [policy, rollout, aggregate]}
    - {id: evaluate, kind: evaluate, needs: [split, ppo], params: EVAL}
";

fn lib(name: &str) -> String {
    plugin(name).to_str().unwrap().to_owned()
}

/// Compiles plugins/c-test/`source` with `defines` into `dir` and returns the library.
fn c_plugin(dir: &Path, source: &str, stem: &str, defines: &[&str]) -> String {
    let out = dir.join(format!("lib{stem}.so"));
    let o = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2"])
        .arg(format!("-I{ROOT}/plugins/api/include"))
        .args(defines)
        .arg(format!("{ROOT}/plugins/c-test/{source}"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out.to_str().unwrap().to_owned()
}

fn pipeline(dir: &Path, plugins: &[&str], rule: &str, eval: &str) -> PathBuf {
    let list = format!(
        "[{}]",
        plugins
            .iter()
            .map(|p| format!("'{p}'"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let text = LOOP
        .replace("PLUGINS", &list)
        .replace("RULE", rule)
        .replace("EVAL", eval);
    let path = dir.join("plug.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The 1-based line of `file` that contains `text`.
fn line_of(file: &Path, text: &str) -> usize {
    let content = std::fs::read_to_string(file).unwrap();
    content.lines().position(|l| l.contains(text)).unwrap() + 1
}

fn run(file: &Path, out: &Path) -> Output {
    chorus(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn run_dir(out: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "one run folder in {}", out.display());
    dirs.pop().unwrap()
}

fn rows(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A third party's rule and metric run like built-ins; the manifest names the libraries by
/// content; each group's mean reward is logged beside the weights.
#[test]
fn plugin_rule_and_metric_run_and_are_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let (cvar, atkinson) = (lib("chorus_cvar"), lib("chorus_atkinson"));
    let file = pipeline(
        tmp.path(),
        &[&cvar, &atkinson],
        "{rule: cvar, q: 0.5}",
        "{metrics: [atkinson, {metric: jain}]}",
    );
    let o = run(&file, &tmp.path().join("out"));
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = run_dir(&tmp.path().join("out"));
    let summary = std::fs::read_to_string(dir.join("summary.csv")).unwrap();
    let header = summary.lines().next().unwrap();
    assert!(
        header.starts_with("stage,policy,round,mean,worst_group,gap,jain,gini,cv,atkinson,"),
        "{header}"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let libs = manifest["plugins"].as_array().unwrap();
    assert_eq!(libs.len(), 2);
    assert_eq!(libs[0]["path"], cvar.as_str());
    assert_eq!(libs[0]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(libs[0]["rules"][0], "cvar 0.2.0");
    let rows = rows(&dir);
    let of = |metric: &str| rows.iter().filter(|r| r["metric"] == metric).count();
    // 4 groups × 12 rounds of weights and of group rewards; atkinson on 3 evaluation rounds.
    assert_eq!(of("aggregate_weight"), 48);
    assert_eq!(of("group_reward"), 48);
    assert_eq!(of("atkinson"), 3);
    assert!(rows
        .iter()
        .filter(|r| r["metric"] == "group_reward")
        .all(|r| r["value"].as_f64().unwrap().is_finite()));
}

/// A plugin written in C against the header is a real peer of the built-in it mirrors.
#[test]
fn c_plugin_matches_the_built_in_mean() {
    let tmp = tempfile::tempdir().unwrap();
    let c = c_plugin(tmp.path(), "c_mean.c", "c_mean", &[]);
    let summary = |rule: &str, out: &str| {
        let file = pipeline(tmp.path(), &[&c], rule, "{}");
        let o = run(&file, &tmp.path().join(out));
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read_to_string(run_dir(&tmp.path().join(out)).join("summary.csv")).unwrap()
    };
    // The same arithmetic up to rounding; summary.csv prints 6 decimals.
    assert_eq!(
        summary("{rule: c_mean}", "c"),
        summary("{rule: mean}", "rust")
    );
}

/// Rebuilding a plugin changes the run's identity: the same pipeline with a changed library
/// is a new run folder, not the old run's results.
#[test]
fn a_changed_library_is_a_different_run() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("libcopy.so");
    std::fs::copy(lib("chorus_cvar"), &copy).unwrap();
    let file = pipeline(tmp.path(), &[copy.to_str().unwrap()], "{rule: cvar}", "{}");
    let out = tmp.path().join("out");
    assert!(run(&file, &out).status.success());
    // Bytes after an ELF image change its hash and nothing else.
    let mut bytes = std::fs::read(&copy).unwrap();
    bytes.extend_from_slice(b"rebuilt");
    std::fs::write(&copy, bytes).unwrap();
    assert!(run(&file, &out).status.success());
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 2);
}

/// Every bad input: exit 2, a message naming the library (and rule), no crash, no run folder
/// for errors found before the run.
#[test]
fn bad_libraries_are_clear_errors_before_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let text = tmp.path().join("libtext.so");
    std::fs::write(&text, "not a library").unwrap();
    let missing = tmp.path().join("libnothere.so");
    let no_symbols = c_plugin(tmp.path(), "no_symbols.c", "nosym", &[]);
    let abi99 = c_plugin(tmp.path(), "c_mean.c", "abi99", &["-DCHORUS_TEST_ABI=99"]);
    let clash = c_plugin(
        tmp.path(),
        "c_mean.c",
        "clash",
        &["-DCHORUS_TEST_RULE_NAME=\"mean\""],
    );
    let cases: [(&str, &[&str]); 5] = [
        (missing.to_str().unwrap(), &["libnothere.so"]),
        (text.to_str().unwrap(), &["libtext.so", "shared library"]),
        (&no_symbols, &["libnosym.so", "chorus_plugin_abi_version"]),
        (&abi99, &["libabi99.so", "99", "1"]),
        (&clash, &["libclash.so", "`mean`", "built-in"]),
    ];
    for (library, wanted) in cases {
        let file = pipeline(tmp.path(), &[library], "{rule: mean}", "{}");
        let out = tmp.path().join("out");
        let o = run(&file, &out);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("plug.yaml:4:"), "no line:col: {err}");
        for w in wanted {
            assert!(err.contains(w), "{w:?} missing from: {err}");
        }
        assert!(
            !out.exists(),
            "a run folder for a pipeline that failed to load"
        );
    }
}

/// Params are checked against the plugin's own schema when the pipeline loads, with the
/// place in the file.
#[test]
fn params_failing_the_plugin_schema_point_at_the_knob() {
    let tmp = tempfile::tempdir().unwrap();
    let cvar = lib("chorus_cvar");
    for (rule, wanted) in [
        ("{rule: cvar, q: 2}", "q"),
        ("{rule: cvar, qq: 0.5}", "qq"),
        ("{rule: cvar, q: high}", "q"),
    ] {
        let file = pipeline(tmp.path(), &[&cvar], rule, "{}");
        let o = chorus(&["validate", file.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!("plug.yaml:{}:", line_of(&file, "id: aggregate"))),
            "{rule}: {err}"
        );
        assert!(
            err.contains(wanted) && err.contains("cvar"),
            "{rule}: {err}"
        );
    }
    // A metric's knobs likewise.
    let atkinson = lib("chorus_atkinson");
    let file = pipeline(
        tmp.path(),
        &[&atkinson],
        "{rule: mean}",
        "{metrics: [{metric: atkinson, epsilon: -1}]}",
    );
    let o = chorus(&["validate", file.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let at = format!("plug.yaml:{}:", line_of(&file, "id: evaluate"));
    assert!(err.contains(&at) && err.contains("epsilon"), "{err}");
}

/// A plugin that panics, returns NaN, the wrong length or an error code fails the run
/// cleanly: exit 2, the library and rule named, the manifest marked failed, the last
/// checkpoint intact.
#[test]
fn faulty_plugins_fail_the_run_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let kit = lib("chorus_testkit");
    for (rule, wanted) in [
        ("{rule: panics, from_round: 5}", "deliberate panic"),
        ("{rule: nan, from_round: 5}", "NaN"),
        ("{rule: short}", "rollouts"),
        ("{rule: refuses, from_round: 5}", "refusing round 5"),
        ("{rule: bad_weights}", "sum"),
    ] {
        let file = pipeline(tmp.path(), &[&kit], rule, "{}");
        let out = tmp.path().join(rule.replace([' ', '{', '}', ':', ','], ""));
        let o = run(&file, &out);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{rule}: {err}");
        assert!(err.contains(wanted), "{rule}: {wanted:?} missing: {err}");
        assert!(err.contains("libchorus_testkit"), "{rule}: {err}");
        let dir = run_dir(&out);
        let manifest = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
        assert!(manifest.contains("\"status\": \"failed\""), "{rule}");
        if rule.contains("from_round: 5") {
            // Round 3's checkpoint was written before round 5 failed, and is still there.
            let index = std::fs::read_to_string(dir.join("checkpoint.json")).unwrap();
            assert!(index.contains("\"round\": 3"), "{rule}: {index}");
        }
    }
}

/// Plugin state is checkpointed like a built-in's: a run with a stateful plugin rule killed
/// with SIGKILL and resumed ends byte-identical to one never interrupted; state the plugin
/// cannot read on resume is a clear error.
#[test]
fn plugin_state_survives_kill_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let kit = lib("chorus_testkit");
    let file = pipeline(tmp.path(), &[&kit], "{rule: ema_weighted}", "{}");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("rounds: 12", "rounds: 40");
    std::fs::write(&file, text).unwrap();
    let whole = tmp.path().join("whole");
    assert!(run(&file, &whole).status.success());
    let whole_dir = run_dir(&whole);

    let killed = tmp.path().join("killed");
    let args = [
        "run",
        file.to_str().unwrap(),
        "--out",
        killed.to_str().unwrap(),
    ];
    kill_at_checkpoint(&args, &killed, 6, Duration::from_secs(60));
    let dir = run_dir(&killed);
    let index = std::fs::read_to_string(dir.join("checkpoint.json")).unwrap();
    assert!(
        index.contains("\"h\""),
        "the plugin's state is checkpointed: {index}"
    );
    // Resume from the run folder alone: the manifest says where the library is.
    let o = chorus(&["run", "--resume", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["metrics.jsonl", "summary.csv"] {
        assert!(
            std::fs::read(dir.join(f)).unwrap() == std::fs::read(whole_dir.join(f)).unwrap(),
            "{f} differs after resume"
        );
    }

    // The same checkpoint with state the plugin cannot read.
    let index = std::fs::read_to_string(whole_dir.join("checkpoint.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&index).unwrap();
    let saved = v["saved"].as_array_mut().unwrap();
    let agg = saved.iter_mut().find(|s| s[0] == "aggregate").unwrap();
    agg[1]["Aggregated"]["state"] = serde_json::json!({"h": "not a vector"});
    std::fs::write(whole_dir.join("checkpoint.json"), v.to_string()).unwrap();
    let o = chorus(&["run", "--resume", whole_dir.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("ema_weighted") && err.contains("libchorus_testkit"),
        "{err}"
    );
    assert!(err.contains("state"), "{err}");
}

/// Borda over each group's ranking is the mean of rank-normalised rewards: the plugin and
/// `normalize: rank` + the built-in `mean` must train the same policy.
#[test]
fn borda_equals_mean_after_rank_normalisation() {
    let tmp = tempfile::tempdir().unwrap();
    let borda = lib("chorus_borda");
    let summary = |rule: &str, out: &str| {
        let file = pipeline(tmp.path(), &[&borda], rule, "{}");
        let o = run(&file, &tmp.path().join(out));
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read_to_string(run_dir(&tmp.path().join(out)).join("summary.csv")).unwrap()
    };
    let plain = summary("{rule: mean}", "plain");
    let ranked = summary("{rule: mean, normalize: rank}", "ranked");
    assert_eq!(summary("{rule: borda}", "borda"), ranked);
    assert_ne!(plain, ranked, "normalisation changed nothing");
}

/// A misspelt normalisation and a metric that panics are clear errors too.
#[test]
fn bad_normalisation_and_a_panicking_metric() {
    let tmp = tempfile::tempdir().unwrap();
    let kit = lib("chorus_testkit");
    let file = pipeline(tmp.path(), &[&kit], "{rule: mean, normalize: zscor}", "{}");
    let o = chorus(&["validate", file.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("`zscore`"), "{err}");
    let file = pipeline(
        tmp.path(),
        &[&kit],
        "{rule: mean}",
        "{metrics: [panicking_metric]}",
    );
    let o = run(&file, &tmp.path().join("out"));
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("panicking_metric") && err.contains("libchorus_testkit"),
        "{err}"
    );
    assert!(err.contains("panicked"), "{err}");
}

/// A plugin's rule is an axis value like a built-in: a grid over `mean` and `cvar` runs both
/// and reports them paired.
#[test]
fn plugin_rules_are_grid_axis_values() {
    let tmp = tempfile::tempdir().unwrap();
    let base = pipeline(tmp.path(), &[&lib("chorus_cvar")], "{rule: mean}", "{}");
    std::fs::write(
        tmp.path().join("grid.yaml"),
        format!(
            "name: g\nbase: {}\noutput: out\naxes:\n  aggregate.rule: [mean, cvar]\n  seed: [1, 2]\n",
            base.display()
        ),
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(["grid", "grid.yaml", "--baseline", "aggregate.rule=mean"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.contains("| cvar | 2 |"), "{out}");
    assert!(
        out.contains("Paired by seed against aggregate.rule=mean"),
        "{out}"
    );
}
