//! Killing a run part-way, as a user's `kill -9` or a cluster's OOM killer would: SIGKILL as
//! soon as its checkpoint has reached a round.
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `chorus ARGS` (writing its run folder under `out`) and kills it with SIGKILL once
/// `out`'s run has checkpointed round `round` or later; returns that round. Fails the test when
/// no such checkpoint appears within `timeout` or the run finished before it could be killed.
// The child is always killed and reaped in the polling loop; only a failing unwrap there,
// which already fails the test, could leave it unreaped.
#[allow(clippy::zombie_processes)]
pub fn kill_at_checkpoint(args: &[&str], out: &Path, round: u64, timeout: Duration) -> u64 {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let reached = std::fs::read_dir(out)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| std::fs::read_to_string(e.unwrap().path().join("checkpoint.json")).ok())
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v["round"].as_u64())
            .filter(|&r| r >= round);
        if reached.is_some() || start.elapsed() > timeout {
            let finished_early = child.try_wait().unwrap().is_some();
            child.kill().unwrap(); // SIGKILL on Unix
            child.wait().unwrap();
            let reached = reached.expect("a checkpoint appeared in time");
            assert!(
                !finished_early,
                "the run finished before it could be killed"
            );
            return reached;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
