//! The `ppo` stage: one policy update on the round's rollouts and aggregated rewards.
use std::sync::{Arc, Mutex};

use super::{Artifact, Context, Inputs, PolicyState, Stage, StageError};
use crate::ppo::{update, Algorithm, Batch, PpoConfig};

impl Stage for PpoConfig {
    fn run(&self, ctx: &Context<'_>, inputs: &Inputs<'_>) -> Result<Artifact, StageError> {
        let state = inputs.policy()?;
        let batch = inputs.rollouts()?;
        let aggregated = inputs.aggregated()?;
        if self.algorithm != Algorithm::Ppo && batch.samples_per_question < 2 {
            return Err(StageError(
                "RLOO and GRPO compare several answers to the same question: set the rollout stage's `samples_per_question` to 2 or more".to_owned(),
            ));
        }
        // Only the trainable state is copied; the reference stays shared.
        let policy = state.policy.fork();
        let mut adam = state.adam.duplicate();
        adam.lr = self.lr;
        let mut rng = ctx.rng(&["minibatches"]);
        let data = Batch {
            rollouts: &batch.rollouts,
            rewards: &aggregated.rewards,
            group_size: batch.samples_per_question,
        };
        let stats = update(policy.as_ref(), &mut adam, &data, self, &mut rng)
            .map_err(|e| StageError(e.to_string()))?;
        Ok(Artifact::Policy(Arc::new(Mutex::new(PolicyState {
            policy,
            adam,
            stats: Some(stats),
            pretrained: None,
        }))))
    }
}
