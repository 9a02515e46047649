//! The `rollout` stage: the server samples answers from the current policy.
use std::sync::{Arc, Mutex};

use rand::Rng as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Artifact, Context, Inputs, Stage, StageError};
use crate::policy::Rollouts;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutParams {
    /// Rollouts per round (questions × samples per question).
    #[serde(default = "d_batch")]
    pub batch: u32,
    /// Answers sampled per question; RLOO and GRPO need at least 2.
    #[serde(default = "d_samples")]
    pub samples_per_question: u32,
}

fn d_batch() -> u32 {
    256
}
fn d_samples() -> u32 {
    1
}

impl RolloutParams {
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.samples_per_question == 0 {
            return Err((
                "samples_per_question",
                "`samples_per_question` must be at least 1".to_owned(),
            ));
        }
        if self.batch < self.samples_per_question
            || !self.batch.is_multiple_of(self.samples_per_question)
        {
            return Err((
                "batch",
                format!(
                    "`batch` ({}) must be a positive multiple of `samples_per_question` ({})",
                    self.batch, self.samples_per_question
                ),
            ));
        }
        Ok(())
    }
}

/// One round's rollouts; samples of the same question are consecutive.
#[derive(Debug)]
pub struct RolloutBatch {
    pub rollouts: Rollouts,
    pub samples_per_question: usize,
}

impl Stage for RolloutParams {
    fn run(&self, ctx: &Context<'_>, inputs: &Inputs<'_>) -> Result<Artifact, StageError> {
        let bank = &inputs.split()?.bank;
        let state = inputs.policy()?;
        let mut rng = ctx.rng(&["rollout"]);
        let k = self.samples_per_question as usize;
        let questions: Vec<usize> = (0..self.batch as usize / k)
            .flat_map(|_| {
                let q = bank.train[rng.random_range(0..bank.train.len())];
                std::iter::repeat_n(q, k)
            })
            .collect();
        let rollouts = state
            .policy
            .sample(bank, &questions, &mut rng)
            .map_err(|e| StageError(e.to_string()))?;
        Ok(Artifact::Rollouts(Arc::new(Mutex::new(RolloutBatch {
            rollouts,
            samples_per_question: k,
        }))))
    }
}
