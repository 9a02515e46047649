//! A grid on a real Slurm cluster: `chorus grid FILE --emit slurm`, submitted with `sbatch` to
//! a one-node cluster that scripts/slurm-local.sh installs (Debian's slurm-wlm and munge) and
//! starts, ends with every array task succeeded, every cell done by `--status`, the report the
//! last task wrote equal to `chorus report`'s, and each cell's numbers equal to those of the same
//! grid run without Slurm. A cluster that cannot be installed or started fails the test.
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "common/grid_cli.rs"]
mod grid_cli;

use grid_cli::{chorus_in, ok};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/slurm-local.sh");

/// 2 rules × 2 seeds, at most two tasks at once.
const GRID: &str = "name: g
base: base.yaml
output: out
parallel: 1
axes:
  aggregate.rule: [mean, min]
  seed: [1, 2]
slurm: {cpus: 1, mem: 1G, time: \"00:05:00\", concurrency: 2}
";

/// How long the whole array may take before the test gives up (it takes seconds).
const ARRAY_DEADLINE: Duration = Duration::from_secs(300);

/// The one-node cluster of scripts/slurm-local.sh, its state in a temp folder; stopped on drop,
/// so a failing assertion does not leave daemons (or their jobs) behind.
struct Cluster {
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Cluster {
        let cluster = Cluster {
            dir: tempfile::tempdir().unwrap(),
        };
        let started = Instant::now();
        let o = Command::new(SCRIPT)
            .arg("start")
            .arg(cluster.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {SCRIPT}: {e}"));
        assert!(
            o.status.success(),
            "Slurm could not be installed or started by {SCRIPT} (exit {:?}):\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stderr)
        );
        eprintln!(
            "slurm cluster up in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        cluster
    }

    /// A Slurm client command talking to this cluster.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("SLURM_CONF", self.dir.path().join("slurm.conf"));
        command
    }

    /// The daemons' logs, for failure messages.
    fn logs(&self) -> String {
        ["slurmctld.log", "slurmd.log"]
            .iter()
            .map(|f| {
                let text = std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- {f}\n{}", tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(SCRIPT)
            .arg("stop")
            .arg(self.dir.path())
            .status();
    }
}

/// A folder holding the base pipeline and the grid.
fn experiment(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("base.yaml"), grid_cli::base(10, 5)).unwrap();
    std::fs::write(dir.join("grid.yaml"), GRID).unwrap();
    dir.to_path_buf()
}

/// Each cell folder's name (its run identity) with its numbers: summary.json without the wall
/// time, and metrics.jsonl as written.
fn cells(grid_dir: &Path) -> Vec<(String, Value, String)> {
    let mut out: Vec<(String, Value, String)> = std::fs::read_dir(grid_dir.join("cells"))
        .unwrap()
        .map(|e| {
            let dir = e.unwrap().path();
            let summary = std::fs::read_to_string(dir.join("summary.json")).unwrap();
            let mut summary: Value = serde_json::from_str(&summary).unwrap();
            summary.as_object_mut().unwrap().remove("seconds");
            let metrics = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            (name, summary, metrics)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// `sbatch --wait SCRIPT` in `dir`, given up after [`ARRAY_DEADLINE`].
fn submit_and_wait(cluster: &Cluster, dir: &Path, script: &Path) -> Output {
    let mut child = cluster
        .command("sbatch")
        .arg("--wait")
        .arg(script)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run sbatch: {e}"));
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > ARRAY_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the job array did not finish within {ARRAY_DEADLINE:?}\n{}",
                cluster.logs()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_grid_runs_as_a_slurm_job_array_with_the_numbers_of_a_local_run() {
    let cluster = Cluster::start();
    let tmp = tempfile::tempdir().unwrap();
    let on_slurm = experiment(&tmp.path().join("slurm"));
    let grid_dir = on_slurm.join("out/g");

    let emitted = ok(&on_slurm, &["grid", "grid.yaml", "--emit", "slurm"]);
    let script = grid_dir.join("slurm.sbatch");
    assert_eq!(
        emitted.lines().next(),
        Some("out/g/slurm.sbatch"),
        "{emitted}"
    );
    assert!(emitted.contains("sbatch out/g/slurm.sbatch"), "{emitted}");
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(text.contains("#SBATCH --array=0-3%2\n"), "{text}");

    let started = Instant::now();
    let submitted = submit_and_wait(&cluster, &on_slurm, &script);
    let seconds = started.elapsed().as_secs_f64();
    let task_logs: Vec<(String, String)> = std::fs::read_dir(grid_dir.join("slurm"))
        .map(|d| {
            d.flatten()
                .map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    (name, std::fs::read_to_string(e.path()).unwrap_or_default())
                })
                .collect()
        })
        .unwrap_or_default();
    let shown: Vec<String> = task_logs
        .iter()
        .map(|(name, text)| format!("--- {name}\n{text}"))
        .collect();
    // With --wait, sbatch exits with the highest exit code of the array's tasks.
    assert!(
        submitted.status.success(),
        "sbatch --wait: {:?}\n{}{}\ntask outputs:\n{}\n{}",
        submitted.status,
        String::from_utf8_lossy(&submitted.stdout),
        String::from_utf8_lossy(&submitted.stderr),
        shown.join("\n"),
        cluster.logs()
    );
    assert_eq!(
        task_logs.len(),
        4,
        "one output per task:\n{}",
        shown.join("\n")
    );
    eprintln!("job array of 4 cells done in {seconds:.1} s");

    let status = ok(&on_slurm, &["grid", "grid.yaml", "--status"]);
    assert!(status.contains("4 done, 0 failed, 0 missing"), "{status}");

    // The task that finished last wrote the whole grid's report; `chorus report` agrees.
    let by_tasks = std::fs::read_to_string(grid_dir.join("report.csv"))
        .expect("the last array task writes the report");
    let report = ok(&on_slurm, &["report", "out/g"]);
    assert_eq!(
        std::fs::read_to_string(grid_dir.join("report.csv")).unwrap(),
        by_tasks
    );
    for rule in ["mean", "min"] {
        assert!(report.contains(&format!("| {rule} | 2 |")), "{report}");
    }
    let listed = std::fs::read_to_string(grid_dir.join("cells.csv")).unwrap();
    assert_eq!(listed.lines().count(), 1 + 4, "{listed}");

    // The same grid without Slurm: the same cells (identities) with the same numbers.
    let local = experiment(&tmp.path().join("local"));
    ok(&local, &["grid", "grid.yaml"]);
    let (remote, here) = (cells(&grid_dir), cells(&local.join("out/g")));
    assert_eq!(remote.len(), 4);
    assert_eq!(remote, here);
}

/// `--emit` takes only what it can write, and not with the flags that run or inspect cells.
#[test]
fn emit_errors_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = experiment(tmp.path());
    let fails = |args: &[&str], wanted: &str| {
        let o = chorus_in(&dir, args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(wanted),
            "{args:?}: {wanted:?} missing from {err}"
        );
    };
    fails(
        &["grid", "grid.yaml", "--emit", "pbs"],
        "[possible values: slurm]",
    );
    for flag in ["--status", "--force"] {
        fails(
            &["grid", "grid.yaml", "--emit", "slurm", flag],
            "cannot be used with",
        );
    }
    fails(
        &["grid", "grid.yaml", "--emit", "slurm", "--cell", "0"],
        "cannot be used with",
    );
    fails(&["grid", "grid.yaml", "--out", "x.sbatch"], "--emit");
    assert!(!dir.join("out").exists(), "something ran");

    // `--out` puts the script elsewhere; the task output folder is made all the same.
    let out = ok(
        &dir,
        &[
            "grid",
            "grid.yaml",
            "--emit",
            "slurm",
            "--out",
            "jobs/g.sbatch",
        ],
    );
    assert_eq!(out.lines().next(), Some("jobs/g.sbatch"), "{out}");
    let text = std::fs::read_to_string(dir.join("jobs/g.sbatch")).unwrap();
    let workdir = std::fs::canonicalize(&dir).unwrap();
    assert!(
        text.contains(&format!("\ncd {}\n", workdir.display())),
        "{text}"
    );
    assert!(dir.join("out/g/slurm").is_dir());
}
