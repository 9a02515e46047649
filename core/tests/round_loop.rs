//! The round loop: which stages run in which round, and what reaches the run folder.
use std::path::Path;

use chorus_core::graph::Phase;
use chorus_core::record::{Opened, Record, Summary};
use chorus_core::run::{run, Quiet};
use chorus_core::spec::load_str;

const LOOPED: &str = "
name: looped
seed: 4
rounds: 5
data: {kind: simulator, questions: 40, groups: {count: 3, minorities: 1}}
stages:
  - {id: split, kind: split}
  - {id: final, kind: evaluate, needs: [split, tick]}
loop:
  eval_every: 2
  stages:
    - {id: tick, kind: evaluate, needs: [split], params: {policy: population_mean}}
";

fn rows(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn phases_follow_needs() {
    let loaded = load_str(Path::new("looped.yaml"), LOOPED, &[]).unwrap();
    let phase = |id: &str| loaded.dag.nodes.iter().find(|n| n.id == id).unwrap().phase;
    assert_eq!(phase("split"), Phase::Before);
    assert_eq!(phase("tick"), Phase::Loop);
    // `final` is written outside the loop but needs a loop stage, so it runs after it.
    assert_eq!(phase("final"), Phase::After);
}

#[test]
fn evaluations_run_on_eval_rounds_and_after_the_loop() {
    let loaded = load_str(Path::new("looped.yaml"), LOOPED, &[]).unwrap();
    let out = tempfile::tempdir().unwrap();
    let Opened::New(record) = Record::create(&loaded, Some(out.path()), false).unwrap() else {
        panic!("fresh folder expected");
    };
    let summary = run(&loaded, &record, &Quiet, false).unwrap();
    let rows = rows(record.dir());
    // The returned summary is the last evaluation of each stage, as the rows and
    // summary.json have it.
    assert_eq!(Summary::read(record.dir()).unwrap(), summary);
    let tick = summary.evaluation("tick").unwrap();
    let last_jain = rows
        .iter()
        .rfind(|r| r["stage"] == "tick" && r["metric"] == "jain")
        .unwrap();
    let jain = tick.fairness.iter().find(|(m, _)| m == "jain").unwrap().1;
    assert_eq!(jain, last_jain["value"].as_f64().unwrap());
    assert_eq!(summary.evaluations.iter().map(|e| e.round).max(), Some(5));
    let rounds_of = |stage: &str| {
        let mut r: Vec<u64> = rows
            .iter()
            .filter(|r| r["stage"] == stage && r["metric"] == "jain")
            .map(|r| r["round"].as_u64().unwrap())
            .collect();
        r.dedup();
        r
    };
    // eval_every 2 over 5 rounds: rounds 2 and 4, plus the last round.
    assert_eq!(rounds_of("tick"), vec![2, 4, 5]);
    assert_eq!(rounds_of("final"), vec![5]);
    // One alignment row per group per evaluation.
    let alignment_rows = rows.iter().filter(|r| r["metric"] == "alignment").count();
    assert_eq!(alignment_rows, 3 * (3 + 1));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(record.dir().join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["status"], "complete");
}

#[test]
fn a_loop_stage_cannot_need_a_stage_that_runs_after_the_loop() {
    let text = LOOPED.replace(
        "{id: tick, kind: evaluate, needs: [split]",
        "{id: tick2, kind: evaluate, needs: [split, final]}\n    - {id: tick, kind: evaluate, needs: [split]",
    );
    let err = load_str(Path::new("looped.yaml"), &text, &[]).unwrap_err();
    assert!(
        err.to_string().contains("can only run after the loop"),
        "{err}"
    );
}

#[test]
fn a_failing_stage_is_named_and_marks_the_run_failed() {
    // Coverage so small that each group answers no training question: the split refuses.
    let text = LOOPED.replace(
        "{id: split, kind: split}",
        "{id: split, kind: split, params: {coverage: 0.001}}",
    );
    let loaded = load_str(Path::new("looped.yaml"), &text, &[]).unwrap();
    let out = tempfile::tempdir().unwrap();
    let Opened::New(record) = Record::create(&loaded, Some(out.path()), false).unwrap() else {
        panic!("fresh folder expected");
    };
    let err = run(&loaded, &record, &Quiet, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("stage `split` failed"), "{err}");
    assert!(
        err.contains("group `g0`") && err.contains("empty data split"),
        "{err}"
    );
    let manifest = std::fs::read_to_string(record.dir().join("manifest.json")).unwrap();
    assert!(manifest.contains("\"status\": \"failed\""));
}
