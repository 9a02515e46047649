//! The `score` stage: each group scores every rollout with its own model, in parallel.
//! What leaves this stage is the reward matrix and the groups' public descriptions, nothing
//! of their data or models: this is the federation boundary.
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Artifact, Context, Inputs, Stage, StageError};
use crate::aggregate::RewardMatrix;
use crate::data::GroupInfo;

/// No settings: how to score is the reward models' business.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreParams {}

/// What the server receives from the groups.
#[derive(Debug)]
pub struct Rewards {
    /// Groups × answered rollouts; `None` when no written answer of the round named an option.
    pub matrix: Option<RewardMatrix<'static>>,
    /// Public facts about the groups (names, population shares), for weighting and logs.
    pub groups: Vec<GroupInfo>,
    /// The rollouts the matrix's columns score, in order: those whose answer names an
    /// option. The others (written answers that name none) are the server's to reward.
    pub answered: Vec<usize>,
    /// Rollouts in the round, answered or not.
    pub rollouts: usize,
    /// Whether the policy wrote its answers (and so may have named no option).
    pub written: bool,
}

impl Stage for ScoreParams {
    fn run(&self, ctx: &Context<'_>, inputs: &Inputs<'_>) -> Result<Artifact, StageError> {
        let batch = inputs.rollouts()?;
        let scorers = inputs.scorers()?;
        let split = inputs.split()?;
        // The scorers' groups: every group but the evaluation-only ones.
        let groups: Vec<GroupInfo> = split
            .trainers()
            .into_iter()
            .map(|g| split.groups[g].clone())
            .collect();
        // Only plain answers cross into the groups' parallel tasks, never the policy's tensors.
        let rollouts = &batch.rollouts;
        let answered: Vec<usize> = (0..rollouts.answers.len())
            .filter(|&i| rollouts.answers[i].is_some())
            .collect();
        let questions: Vec<usize> = answered.iter().map(|&i| rollouts.questions[i]).collect();
        let answers: Vec<Vec<f64>> = rollouts.answers.iter().flatten().cloned().collect();
        let (questions, answers) = (&questions, &answers);
        let rows = ctx.per_group(&scorers.groups, |g| {
            let row = scorers.scorers[g].score(questions, answers);
            match row.iter().position(|x| !x.is_finite()) {
                Some(i) => Err(StageError(format!(
                    "reward {} for rollout {i} is not finite",
                    row[i]
                ))),
                None => Ok(row),
            }
        })?;
        let matrix = (!answered.is_empty())
            .then(|| RewardMatrix::new(rows.len(), answered.len(), rows.concat()))
            .transpose()
            .map_err(|e| StageError(e.to_string()))?;
        Ok(Artifact::Rewards(Arc::new(Rewards {
            matrix,
            groups,
            answered,
            rollouts: rollouts.answers.len(),
            written: rollouts.samples.mask.is_some(),
        })))
    }
}
