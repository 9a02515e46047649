//! Progress: indicatif bars on a terminal, plain log lines (tracing, on stderr) otherwise, so
//! logs from Slurm jobs and CI stay readable.
use std::io::IsTerminal as _;

use chorus_core::graph::Phase;
use chorus_core::run::{Observer, StageStatus};
use chorus_core::spec::Loaded;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

pub enum Progress {
    Bars {
        rounds: Option<ProgressBar>,
        stages: ProgressBar,
    },
    Lines,
}

impl Progress {
    pub fn new(loaded: &Loaded) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(terminal)
            .with_target(false)
            .without_time()
            .init();
        if !terminal {
            return Progress::Lines;
        }
        let round_count = loaded.pipeline.rounds.unwrap_or(0) as u64;
        let per_round = loaded
            .dag
            .nodes
            .iter()
            .filter(|n| n.phase == Phase::Loop)
            .count() as u64;
        let once = loaded.dag.nodes.len() as u64 - per_round;
        let multi = MultiProgress::new();
        let style = |t: &str| ProgressStyle::with_template(t).expect("a valid template");
        let rounds = (round_count > 0).then(|| {
            let bar = multi.add(ProgressBar::new(round_count));
            bar.set_style(style(
                "rounds {bar:30} {pos}/{len} [{elapsed_precise} < {eta}]",
            ));
            bar
        });
        let stages = multi.add(ProgressBar::new(once + per_round * round_count));
        stages.set_style(style("stages {bar:30} {pos}/{len} {msg}"));
        Progress::Bars { rounds, stages }
    }

    pub fn finish(&self) {
        if let Progress::Bars { rounds, stages } = self {
            if let Some(r) = rounds {
                r.finish();
            }
            stages.finish();
        }
    }
}

impl Observer for Progress {
    fn stage(&self, id: &str, round: u32, status: &StageStatus) {
        match self {
            Progress::Bars { stages, .. } => {
                stages.inc(1);
                stages.set_message(format!("{id} (round {round})"));
                if let StageStatus::Failed(why) = status {
                    stages.println(format!("stage {id} failed in round {round}: {why}"));
                }
            }
            Progress::Lines => match status {
                StageStatus::Done { seconds } => {
                    tracing::info!("round {round}: {id} done in {seconds:.3}s")
                }
                StageStatus::Failed(why) => tracing::error!("round {round}: {id} failed: {why}"),
                StageStatus::Skipped => {
                    tracing::warn!("round {round}: {id} skipped (a stage it needs failed)")
                }
                StageStatus::Idle => {}
            },
        }
    }

    fn round(&self, round: u32, rounds: u32) {
        match self {
            Progress::Bars {
                rounds: Some(bar), ..
            } => bar.set_position(round as u64),
            Progress::Bars { .. } => {}
            Progress::Lines => tracing::info!("round {round}/{rounds} done"),
        }
    }
}
