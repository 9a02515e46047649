//! Batch grids through the real binary: a grid runs every cell, a rerun runs nothing, new axis
//! values run only what is new, a grid killed with SIGKILL and rerun ends with the report of
//! an uninterrupted one, and the grid's bad inputs.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/grid_cli.rs"]
mod grid_cli;

use grid_cli::{chorus_in, ok};

const BIN: &str = env!("CARGO_BIN_EXE_chorus");

fn grid_file(dir: &Path, rules: &str, seeds: &str) -> PathBuf {
    std::fs::write(dir.join("base.yaml"), grid_cli::base(30, 10)).unwrap();
    let text = format!(
        "name: g\nbase: base.yaml\noutput: out\nparallel: 2\naxes:\n  aggregate.rule: {rules}\n  seed: {seeds}\n"
    );
    let file = dir.join("grid.yaml");
    std::fs::write(&file, text).unwrap();
    file
}

/// The report's table without its wall-time columns, which no two runs share.
fn numbers(grid_dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(grid_dir.join("report.csv")).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let keep: Vec<usize> = (0..header.len())
        .filter(|&i| !header[i].contains("seconds"))
        .collect();
    text.lines()
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            keep.iter().map(|&i| cells[i]).collect::<Vec<_>>().join(",")
        })
        .collect()
}

/// Each cell's started_at: a cell that was not rerun keeps it.
fn started(grid_dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(grid_dir.join("cells"))
        .unwrap()
        .map(|e| {
            let m = std::fs::read_to_string(e.unwrap().path().join("manifest.json")).unwrap();
            let v: serde_json::Value = serde_json::from_str(&m).unwrap();
            format!("{}", v["started_at"])
        })
        .collect();
    out.sort();
    out
}

#[test]
fn a_grid_runs_once_and_grows_by_what_is_new() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let file = grid_file(dir, "[mean, min]", "[1, 2, 3]");
    let out = ok(
        dir,
        &["grid", "grid.yaml", "--baseline", "aggregate.rule=mean"],
    );
    assert!(out.contains("| min | 3 |"), "{out}");
    assert!(
        out.contains("Paired by seed against aggregate.rule=mean"),
        "{out}"
    );
    let grid_dir = dir.join("out/g");
    for f in ["report.md", "report.csv", "cells.csv", "grid.json"] {
        assert!(grid_dir.join(f).is_file(), "{f}");
    }
    let first = started(&grid_dir);
    assert_eq!(first.len(), 6);
    // A rerun runs nothing.
    let report = numbers(&grid_dir);
    ok(
        dir,
        &["grid", "grid.yaml", "--baseline", "aggregate.rule=mean"],
    );
    assert_eq!(started(&grid_dir), first);
    assert_eq!(numbers(&grid_dir), report);
    // A new axis value runs only its cells.
    std::fs::write(
        &file,
        std::fs::read_to_string(&file)
            .unwrap()
            .replace("[mean, min]", "[mean, min, max]"),
    )
    .unwrap();
    ok(dir, &["grid", "grid.yaml"]);
    let grown = started(&grid_dir);
    assert_eq!(grown.len(), 9);
    assert!(
        first.iter().all(|s| grown.contains(s)),
        "old cells were rerun"
    );
    let status = ok(dir, &["grid", "grid.yaml", "--status"]);
    assert!(status.contains("9 done, 0 failed, 0 missing"), "{status}");
    // `chorus report` works on the folder alone.
    let report = ok(
        dir,
        &["report", "out/g", "--baseline", "aggregate.rule=max"],
    );
    assert!(report.contains("against aggregate.rule=max"), "{report}");
}

#[test]
#[allow(clippy::zombie_processes)] // killed and reaped in the loop
fn a_killed_grid_rerun_ends_with_the_uninterrupted_report() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let killed = tmp.path().join("killed");
    for d in [&whole, &killed] {
        std::fs::create_dir_all(d).unwrap();
        grid_file(d, "[mean, min]", "[1, 2]");
    }
    ok(&whole, &["grid", "grid.yaml"]);

    let mut child = Command::new(BIN)
        .args(["grid", "grid.yaml"])
        .current_dir(&killed)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    // Kill once some cell has a checkpoint (mid-run), so the rerun must resume it.
    loop {
        let checkpointed = std::fs::read_dir(killed.join("out/g/cells"))
            .map(|d| {
                d.flatten()
                    .any(|e| e.path().join("checkpoint.json").is_file())
            })
            .unwrap_or(false);
        if checkpointed || start.elapsed() > Duration::from_secs(60) {
            let early = child.try_wait().unwrap().is_some();
            child.kill().unwrap();
            child.wait().unwrap();
            assert!(!early, "the grid finished before it could be killed");
            assert!(checkpointed, "no checkpoint within a minute");
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    ok(&killed, &["grid", "grid.yaml"]);
    assert_eq!(
        numbers(&killed.join("out/g")),
        numbers(&whole.join("out/g"))
    );
}

#[test]
fn grid_bad_inputs_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    grid_file(dir, "[mean, min]", "[1]");
    let fails = |args: &[&str], wanted: &str| {
        let o = chorus_in(dir, args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(wanted),
            "{args:?}: {wanted:?} missing from {err}"
        );
    };
    fails(&["grid", "grid.yaml", "--max-cells", "1"], "--yes");
    fails(&["grid", "grid.yaml", "--cell", "7"], "cell 7");
    fails(&["report", "."], "not a chorus grid folder");
    ok(dir, &["grid", "grid.yaml", "--cell", "0"]);
    fails(
        &["report", "out/g", "--baseline", "aggregate.rule=median"],
        "median",
    );
}

/// A grid whose cells fit one at a time but not `parallel` at once is refused before any
/// cell runs, naming `parallel`.
#[test]
fn a_grid_that_cannot_fit_in_parallel_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("base.yaml"), grid_cli::base(30, 10)).unwrap();
    std::fs::write(
        dir.join("big.yaml"),
        "name: big\nbase: base.yaml\noutput: out\nparallel: 2\naxes:\n  data.questions: [2500000]\n  seed: [1, 2]\n",
    )
    .unwrap();
    // Each cell needs at least 2.5e6 × 4 options × (4 features + 2 × 4 groups) × 8 B = 0.89 GiB
    // by the estimate: one fits in 1 GiB, two at once do not.
    let o = Command::new(BIN)
        .args(["grid", "big.yaml"])
        .current_dir(dir)
        .env("CHORUS_MEMORY", (1u64 << 30).to_string())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("lower `parallel`"), "{err}");
    assert!(!dir.join("out").exists(), "cells ran");
}
