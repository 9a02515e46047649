//! The short federated loop that grid tests use as their base pipeline: a cell takes a second
//! or two, and `rounds` sets how long there is to kill it.

/// The base pipeline with `rounds` rounds, evaluated every `eval_every`, checkpointed every 5.
pub fn base(rounds: u32, eval_every: u32) -> String {
    format!(
        "name: fed
seed: 1
rounds: {rounds}
data:
  simulator: {{questions: 60, options: 4, features: 4, minority_shift: 2.5}}
groups: {{count: 4, minorities: 1}}
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
