//! Runs a resolved pipeline: the stages before the loop, `rounds` rounds of the loop stages,
//! then the stages that need the loop's final outputs. Each phase goes through the scheduler;
//! evaluations are recorded as they arrive.
use std::time::Instant;

use crate::checkpoint::{self, CheckpointError};
use crate::graph::{Dag, Phase};
use crate::record::{Record, RecordError, Summary};
use crate::schedule::{self, Outcome};
use crate::spec::Loaded;
use crate::stage::{Artifact, Context, Inputs, StageError};

/// How a stage run ended, for progress displays.
#[derive(Debug, Clone, PartialEq)]
pub enum StageStatus {
    Done { seconds: f64 },
    Failed(String),
    Skipped,
    Idle,
}

/// Told about progress; the CLI draws bars or log lines from it. Called from worker threads.
pub trait Observer: Sync {
    fn stage(&self, _id: &str, _round: u32, _status: &StageStatus) {}
    fn round(&self, _round: u32, _rounds: u32) {}
}

/// Observes nothing (library use, tests).
pub struct Quiet;
impl Observer for Quiet {}

/// A stage that failed, in which round (0 = before the loop).
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub stage: String,
    pub round: u32,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{}", describe(.failed, .skipped))]
    Stages {
        failed: Vec<Failure>,
        skipped: Vec<String>,
    },
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

fn describe(failed: &[Failure], skipped: &[String]) -> String {
    let mut out: Vec<String> = failed
        .iter()
        .map(|f| {
            format!(
                "stage `{}` failed (round {}): {}",
                f.stage, f.round, f.message
            )
        })
        .collect();
    if !skipped.is_empty() {
        out.push(format!(
            "not run because of the failure: {}",
            skipped.join(", ")
        ));
    }
    out.join("\n")
}

/// Runs `loaded` into `record`, then marks the record complete (or failed) and returns what
/// the run found. With `resume`, the loop continues after the record's latest checkpoint
/// instead of starting at round 1.
pub fn run(
    loaded: &Loaded,
    record: &Record,
    observer: &dyn Observer,
    resume: bool,
) -> Result<Summary, RunError> {
    // Stages and groups already run in parallel on rayon; torch's own intra-op threads on top
    // oversubscribe the cores (measured: 30–300% slower), so each task gets one.
    tch::set_num_threads(1);
    let start = Instant::now();
    let result = run_phases(loaded, record, observer, resume);
    let status = if result.is_ok() { "complete" } else { "failed" };
    let summary = record.finish(status, start.elapsed().as_secs_f64())?;
    result.map(|()| summary)
}

fn run_phases(
    loaded: &Loaded,
    record: &Record,
    observer: &dyn Observer,
    resume: bool,
) -> Result<(), RunError> {
    let dag = &loaded.dag;
    let p = &loaded.pipeline;
    let mut artifacts: Vec<Option<Artifact>> = vec![None; dag.nodes.len()];
    let rounds = p.rounds.unwrap_or(0);
    let (eval_every, checkpoint_every) = p
        .round_loop
        .as_ref()
        .map_or((1, 0), |l| (l.eval_every, l.checkpoint_every));
    let ids: Vec<&str> = dag.nodes.iter().map(|n| n.id.as_str()).collect();
    // A resumed run recomputes the stages before the loop (pure functions of the pipeline)
    // without recording their readings again: the record already holds them.
    let phase =
        |artifacts: &mut Vec<Option<Artifact>>, phase, round, eval_round, record_readings| {
            let step = Step {
                phase,
                round,
                eval_round,
                record_readings,
            };
            run_phase(loaded, record, observer, artifacts, step)
        };
    phase(&mut artifacts, Phase::Before, 0, true, !resume)?;
    let first = if resume {
        let carried_from = |i: usize| {
            dag.carry
                .iter()
                .find(|(_, to)| *to == i)
                .map(|(from, _)| *from)
        };
        let round = checkpoint::restore(record.dir(), &ids, carried_from, &mut artifacts)?;
        record.log(&format!("resumed after round {round}"));
        round + 1
    } else {
        1
    };
    for round in first..=rounds {
        let eval_round = round % eval_every == 0 || round == rounds;
        phase(&mut artifacts, Phase::Loop, round, eval_round, true)?;
        for &(from, to) in &dag.carry {
            artifacts[from] = artifacts[to].clone();
        }
        // The last round is never checkpointed: a run killed after it reruns that round, so
        // rows of the final round are never kept from before a kill and written again after.
        if checkpoint_every > 0 && round % checkpoint_every == 0 && round < rounds {
            record.flush_metrics()?;
            checkpoint::save(record.dir(), round, &ids, &artifacts)?;
        }
        observer.round(round, rounds);
    }
    phase(&mut artifacts, Phase::After, rounds, true, true)
}

/// Which phase to run, in which round, and what to do with its readings.
struct Step {
    phase: Phase,
    round: u32,
    eval_round: bool,
    record_readings: bool,
}

fn run_phase(
    loaded: &Loaded,
    record: &Record,
    observer: &dyn Observer,
    artifacts: &mut [Option<Artifact>],
    step: Step,
) -> Result<(), RunError> {
    let Step {
        phase,
        round,
        eval_round,
        record_readings,
    } = step;
    let dag: &Dag = &loaded.dag;
    let members: Vec<usize> = (0..dag.nodes.len())
        .filter(|&i| dag.nodes[i].phase == phase)
        .collect();
    if members.is_empty() {
        return Ok(());
    }
    let mut local = vec![usize::MAX; dag.nodes.len()];
    for (l, &g) in members.iter().enumerate() {
        local[g] = l;
    }
    let needs: Vec<Vec<usize>> = members
        .iter()
        .map(|&g| {
            dag.nodes[g]
                .needs
                .iter()
                .filter(|&&n| local[n] != usize::MAX)
                .map(|&n| local[n])
                .collect()
        })
        .collect();
    let earlier: &[Option<Artifact>] = artifacts;
    let outcomes = schedule::run(&needs, |l, same_phase: &[&Artifact]| {
        let node = &dag.nodes[members[l]];
        if phase == Phase::Loop && !eval_round && !node.kind.every_round() {
            observer.stage(&node.id, round, &StageStatus::Idle);
            return Ok(None);
        }
        let mut same_phase = same_phase.iter();
        let inputs: Vec<&Artifact> = node
            .needs
            .iter()
            .map(|&n| match &earlier[n] {
                Some(a) if local[n] == usize::MAX => a,
                _ => same_phase.next().expect("one input per need in this phase"),
            })
            .collect();
        let ctx = Context {
            pipeline: &loaded.pipeline,
            base: &loaded.base,
            stage: &node.id,
            round: (phase == Phase::Loop).then_some(round),
            previous: earlier[members[l]]
                .as_ref()
                .filter(|_| phase == Phase::Loop),
        };
        let start = Instant::now();
        // A bug in one stage must not take the run down with it: a panic becomes that stage's
        // error, its dependants are skipped, and the run folder is marked failed.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            node.stage.run(&ctx, &Inputs(&inputs))
        }))
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic");
            Err(StageError(format!(
                "internal error (please report it): {what}"
            )))
        });
        let status = match &result {
            Ok(_) => StageStatus::Done {
                seconds: start.elapsed().as_secs_f64(),
            },
            Err(e) => StageStatus::Failed(e.0.clone()),
        };
        record.log(&match &status {
            StageStatus::Done { seconds } => {
                format!("round {round}: {} done in {seconds:.3}s", node.id)
            }
            other => format!("round {round}: {} {other:?}", node.id),
        });
        observer.stage(&node.id, round, &status);
        result.map(Some)
    });
    let mut failed = Vec::new();
    let mut skipped = Vec::new();
    // metrics.jsonl is rewritten whole, so it is written when an evaluation arrives (and at
    // checkpoints and the end), not after every round's training statistics.
    let mut evaluated = false;
    for (l, outcome) in outcomes.into_iter().enumerate() {
        let g = members[l];
        let id = &dag.nodes[g].id;
        match outcome {
            Outcome::Done(artifact) => {
                let readings = artifact.readings();
                if let Artifact::Evaluation(e) = &artifact {
                    record.keep_for_summary(id, round, e);
                    evaluated |= record_readings;
                }
                if record_readings && !readings.is_empty() {
                    let policy = match &artifact {
                        Artifact::Evaluation(e) => Some(e.policy.as_str()),
                        _ => None,
                    };
                    record.add_readings(id, round, policy, &readings);
                }
                artifacts[g] = Some(artifact);
            }
            Outcome::Failed(StageError(message)) => failed.push(Failure {
                stage: id.clone(),
                round,
                message,
            }),
            Outcome::Skipped { .. } => {
                observer.stage(id, round, &StageStatus::Skipped);
                skipped.push(id.clone());
            }
            Outcome::Idle => {}
        }
    }
    if evaluated {
        record.flush_metrics()?;
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(RunError::Stages { failed, skipped })
    }
}
