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
    pub matrix: RewardMatrix<'static>,
    /// Public facts about the groups (names, population shares), for weighting and logs.
    pub groups: Vec<GroupInfo>,
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
        let (questions, answers) = (&batch.rollouts.questions, &batch.rollouts.answers);
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
        let n = questions.len();
        let matrix = RewardMatrix::new(rows.len(), n, rows.concat())
            .map_err(|e| StageError(e.to_string()))?;
        Ok(Artifact::Rewards(Arc::new(Rewards { matrix, groups })))
    }
}
