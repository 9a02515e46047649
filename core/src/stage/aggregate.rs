//! The `aggregate` stage: the server turns the groups' reward matrix into one reward per
//! rollout. It sees the matrix, the round and its own previous state: nothing else.
use std::sync::Arc;

use serde_json::Value;

use super::artifact::Reading;
use super::{Artifact, Context, Inputs, Stage, StageError};
use crate::aggregate::AggregateParams;

/// The aggregated rewards, with the rule's state to carry into the next round.
#[derive(Debug)]
pub struct Aggregated {
    pub rewards: Vec<f64>,
    pub groups: Vec<String>,
    /// The effective weight each group got this round.
    pub weights: Vec<f64>,
    /// The rule's state after this round (checkpointed with the run).
    pub state: Value,
}

impl Aggregated {
    pub fn readings(&self) -> Vec<Reading> {
        self.groups
            .iter()
            .zip(&self.weights)
            .map(|(g, w)| Reading::group(g, "aggregate_weight", *w))
            .collect()
    }
}

impl Stage for AggregateParams {
    fn run(&self, ctx: &Context<'_>, inputs: &Inputs<'_>) -> Result<Artifact, StageError> {
        let rewards = inputs.rewards()?;
        let populations: Vec<f64> = rewards.groups.iter().map(|g| g.population).collect();
        let rule = self
            .build(&populations)
            .map_err(|e| StageError(e.message))?;
        let mut state = match ctx.previous {
            Some(Artifact::Aggregated(prev)) => prev.state.clone(),
            _ => Value::Null,
        };
        let round = ctx.round.unwrap_or(0);
        let out = rule
            .aggregate(&rewards.matrix, round, &mut state)
            .map_err(|e| StageError(format!("aggregator `{}`: {e}", rule.name())))?;
        Ok(Artifact::Aggregated(Arc::new(Aggregated {
            rewards: out.rewards,
            groups: rewards.groups.iter().map(|g| g.name.clone()).collect(),
            weights: out.weights,
            state,
        })))
    }
}
