//! A pipeline's memory, estimated from its sizes before anything is allocated, so that a
//! typo (`questions: 100000000`, `batch: 1000000000`) is refused at once with the field to
//! blame, instead of the process aborting with "memory allocation failed" minutes in.
//!
//! The estimate is a lower bound on the largest arrays a run holds at once: the survey
//! (option embeddings and every group's answer distributions, kept per group for its shard
//! and for the oracle) and one round's rollouts (each answer's distribution and features, the
//! groups × rollouts reward matrix, and the policy's per-sample tensors through PPO). A run
//! that passes may still need more; one that fails cannot fit.
use super::load::Blame;
use super::Pipeline;
use crate::diagnostic::Diagnostic;
use crate::stage::RolloutParams;

/// What part of a pipeline would need the most memory, and how much at least.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub bytes: f64,
    /// The path of the field that scales it most (the place to blame).
    pub field: String,
    /// The same field as an override key (`data.questions`, `rollout.batch`).
    pub knob: String,
    /// What the memory is for, in words.
    pub what: String,
}

/// f64 and f32 sizes: the survey and rewards are f64, the policy's tensors f32.
const F64: f64 = 8.0;
const F32: f64 = 4.0;
/// Per-sample f32 tensors a PPO update keeps for each option (logits, probabilities, their
/// gradients, the sampled answer, the reference's log-probabilities).
const PER_OPTION_TENSORS: f64 = 6.0;

/// The largest allocation `p` implies.
pub fn estimate(p: &Pipeline) -> Estimate {
    let groups = p.data.group_names().len() as f64;
    // A real survey is a few thousand shares (its files' size bounds it); what grows with
    // the settings is a simulated one and the rollouts.
    let (q, k, f, knob) = match &p.data {
        crate::spec::DataSpec::Simulator(sim) => (
            f64::from(sim.questions),
            f64::from(sim.options),
            f64::from(sim.features),
            if sim.questions >= sim.options {
                "data.questions"
            } else {
                "data.options"
            },
        ),
        _ => (0.0, 4.0, 0.0, "data"),
    };
    let survey = Estimate {
        bytes: q * k * (f + 2.0 * groups) * F64,
        field: String::new(),
        knob: knob.to_owned(),
        what: "the survey (each question's options, every group's answer shares)".to_owned(),
    };
    let rollouts = p
        .all_stages()
        .filter(|(_, s, _)| s.kind == "rollout")
        .filter_map(|(path, s, _)| {
            let params: RolloutParams =
                serde_json::from_value(serde_json::Value::Object(s.params.clone())).ok()?;
            let n = f64::from(params.batch);
            Some(Estimate {
                bytes: n * ((k * PER_OPTION_TENSORS + f) * F32 + groups * F64),
                field: format!("{path}.params.batch"),
                knob: format!("{}.batch", s.id),
                what: "one round's rollouts (answers, their tensors through PPO, every group's rewards)"
                    .to_owned(),
            })
        });
    let survey = Estimate {
        field: survey.knob.clone(),
        ..survey
    };
    std::iter::once(survey)
        .chain(rollouts)
        .max_by(|a, b| a.bytes.total_cmp(&b.bytes))
        .expect("the survey is always there")
}

/// Refuses a pipeline whose estimate exceeds `available` bytes.
pub fn check(p: &Pipeline, blame: &Blame<'_>, available: Option<u64>) -> Option<Diagnostic> {
    let available = available? as f64;
    let e = estimate(p);
    (e.bytes > available).then(|| {
        Diagnostic::new(
            blame.at(&e.field),
            format!(
                "this pipeline needs at least {} for {}, but the machine has {} available",
                gib(e.bytes),
                e.what,
                gib(available)
            ),
            format!("lower `{}` (or run on a machine with more memory)", e.knob),
        )
    })
}

/// The memory a run may use: the least of what the machine has available now (Linux
/// `MemAvailable`), the cgroup limit it runs under (a Slurm or container allocation), and
/// `CHORUS_MEMORY` in bytes (a cap the user sets); `None` when none of them can be read.
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
            let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib * 1024)
        });
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok());
    let cap = std::env::var("CHORUS_MEMORY")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok());
    [meminfo, cgroup, cap].into_iter().flatten().min()
}

fn gib(bytes: f64) -> String {
    format!("{:.1} GiB", bytes / f64::from(1u32 << 30))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::spec::load_str;

    const PIPELINE: &str = "name: m
seed: 1
data: {kind: simulator, questions: 200, options: 4, groups: {count: 6}}
stages:
  - {id: split, kind: split}
  - {id: rollout, kind: rollout, needs: [split, policy], params: {batch: 256}}
  - {id: policy, kind: policy, needs: [split]}
";

    fn pipeline() -> Pipeline {
        load_str(Path::new("m.yaml"), PIPELINE, &[])
            .unwrap()
            .pipeline
    }

    #[test]
    fn the_largest_term_names_its_field() {
        // Survey: 200 × 4 × (8 features + 2 × 6 groups) × 8 B = 128,000 B.
        // Rollouts: 256 × ((4 × 6 + 8) × 4 + 6 × 8) B = 256 × 176 = 45,056 B.
        let e = estimate(&pipeline());
        assert_eq!((e.field.as_str(), e.bytes), ("data.questions", 128_000.0));
        // Sizes a typo makes (set on the checked pipeline: loading would refuse them).
        let mut p = pipeline();
        p.stages[1]
            .params
            .insert("batch".into(), serde_json::json!(1_000_000_000u32));
        let e = estimate(&p);
        assert_eq!(e.field, "stages[1].params.batch");
        assert_eq!(e.knob, "rollout.batch");
        assert_eq!(e.bytes, 1e9 * 176.0);
        let mut p = pipeline();
        let crate::spec::DataSpec::Simulator(sim) = &mut p.data else {
            panic!("the test pipeline simulates")
        };
        sim.options = 1_000_000;
        assert_eq!(estimate(&p).knob, "data.options");
    }
}
