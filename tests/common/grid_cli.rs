//! What the grid test binaries share: the short federated loop they use as their base pipeline
//! (a cell takes a second or two, and `rounds` sets how long there is to kill it), and running
//! the real `chorus` binary in a folder.
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_chorus");

/// `chorus ARGS` run in `dir`.
pub fn chorus_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// `chorus ARGS` in `dir`, which must succeed; its stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let o = chorus_in(dir, args);
    assert!(
        o.status.success(),
        "chorus {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// The base pipeline with `rounds` rounds, evaluated every `eval_every`, checkpointed every 5.
pub fn base(rounds: u32, eval_every: u32) -> String {
    format!(
        "name: fed
seed: 1
rounds: {rounds}
data: {{kind: simulator, questions: 60, options: 4, features: 4, minority_shift: 2.5, groups: {{count: 4, minorities: 1}}}}
stages:
  - {{id: split, kind: split}}
  - {{id: reward_model, kind: reward_model, needs: [split], params: {{epochs: 30}}}}
  - {{id: policy, kind: policy, needs: [split], params: {{rollout: distribution, hidden: 16}}}}
  - {{id: initial, kind: evaluate, needs: [split, policy]}}
loop:
  eval_every: {eval_every}
  checkpoint_every: 5
  carry:
    - {{from: policy, to: ppo}}
  stages:
    - {{id: rollout, kind: rollout, needs: [split, policy], params: {{batch: 64}}}}
    - {{id: score, kind: score, needs: [split, rollout, reward_model]}}
    - {{id: aggregate, kind: aggregate, needs: [score], params: {{rule: mean}}}}
    - {{id: ppo, kind: ppo, needs: [policy, rollout, aggregate]}}
    - {{id: evaluate, kind: evaluate, needs: [split, ppo]}}
"
    )
}
