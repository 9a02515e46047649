//! The `ppo` stage: one policy update on the round's rollouts and aggregated rewards.
use std::sync::{Arc, Mutex};

use super::{Artifact, Context, Inputs, PolicyState, Stage, StageError};
use crate::policy::Policy;
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
        let policy = Policy {
            net: state.policy.net.duplicate(),
            kind: state.policy.kind,
            options: state.policy.options,
        };
        let mut adam = state.adam.duplicate();
        adam.lr = self.lr;
        let mut rng = ctx.rng(&["minibatches"]);
        let data = Batch {
            rollouts: &batch.rollouts,
            rewards: &aggregated.rewards,
            group_size: batch.samples_per_question,
        };
        let stats = update(&policy, &state.reference, &mut adam, &data, self, &mut rng)
            .map_err(|e| StageError(e.to_string()))?;
        Ok(Artifact::Policy(Arc::new(Mutex::new(PolicyState {
            policy,
            reference: Policy {
                net: state.reference.net.duplicate(),
                kind: state.reference.kind,
                options: state.reference.options,
            },
            adam,
            stats: Some(stats),
            pretrained: None,
        }))))
    }
}
