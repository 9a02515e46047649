use rayon::prelude::*;

use super::{Artifact, StageError};
use crate::rng;
use crate::spec::Pipeline;

/// What a stage may know about the run besides its inputs: read-only, per call.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub pipeline: &'a Pipeline,
    /// The pipeline file's folder: the data's relative paths resolve against it.
    pub base: &'a std::path::Path,
    pub stage: &'a str,
    /// The training round, for stages inside the loop.
    pub round: Option<u32>,
    /// This stage's own output from the previous round: how a stateful stage (an adaptive
    /// aggregator) carries its state without any global.
    pub previous: Option<&'a Artifact>,
}

impl Context<'_> {
    /// This stage's own random stream for `labels` (independent of scheduling order).
    pub fn rng(&self, labels: &[&str]) -> rng::Rng {
        let round = self.round.map(|r| r.to_string()).unwrap_or_default();
        let mut all = vec![self.stage, round.as_str()];
        all.extend_from_slice(labels);
        rng::stream(self.pipeline.seed, &all)
    }

    /// Runs `task` once per group in parallel (rayon), results in group order. The error of
    /// the first failing group in group order is returned, naming the group: every group runs
    /// to the end, so which error is reported does not depend on scheduling.
    pub fn per_group<T, F>(&self, groups: &[String], task: F) -> Result<Vec<T>, StageError>
    where
        T: Send,
        F: Fn(usize) -> Result<T, StageError> + Sync,
    {
        let results: Vec<Result<T, StageError>> =
            (0..groups.len()).into_par_iter().map(&task).collect();
        results
            .into_iter()
            .enumerate()
            .map(|(g, r)| r.map_err(|e| StageError(format!("group `{}`: {}", groups[g], e.0))))
            .collect()
    }
}
