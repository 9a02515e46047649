//! The `reward_model` stage: every group trains its own scorer on its own shard, in parallel.
use std::sync::Arc;

use super::artifact::Reading;
use super::{Artifact, Context, Inputs, Stage, StageError};
use crate::reward::{calibration_error, GroupScorer, RewardModelConfig, Source};

/// The groups' scorers, index = group. Each was built from one shard only.
#[derive(Debug)]
pub struct Scorers {
    pub groups: Vec<String>,
    pub scorers: Vec<GroupScorer>,
    /// Calibration of each learned model on held-out questions (none in oracle mode).
    pub ece: Option<Vec<f64>>,
}

impl Scorers {
    pub fn readings(&self) -> Vec<Reading> {
        let Some(ece) = &self.ece else {
            return Vec::new();
        };
        self.groups
            .iter()
            .zip(ece)
            .map(|(g, e)| Reading::group(g, "reward_model_ece", *e))
            .collect()
    }
}

impl Stage for RewardModelConfig {
    fn run(&self, ctx: &Context<'_>, inputs: &Inputs<'_>) -> Result<Artifact, StageError> {
        let split = inputs.split()?;
        let names = split.group_names();
        let bank = &split.bank;
        let scorers = ctx.per_group(&names, |g| {
            Ok(match self.source {
                Source::Oracle => GroupScorer::oracle(
                    &split.oracle,
                    g,
                    bank.features.len(),
                    bank.options,
                    self.reward,
                ),
                Source::Model => {
                    let mut rng = ctx.rng(&["group", &names[g]]);
                    GroupScorer::train(
                        &split.shards[g],
                        &bank.features,
                        bank.options,
                        self,
                        &mut rng,
                    )
                    .map_err(|e| StageError(e.to_string()))?
                }
            })
        })?;
        // Calibration is the experimenter's check of each model against the truth; the
        // models themselves never saw it.
        let ece = (self.source == Source::Model).then(|| {
            scorers
                .iter()
                .enumerate()
                .map(|(g, s)| {
                    calibration_error(s, |q| split.oracle.distribution(g, q).to_vec(), &bank.eval)
                })
                .collect()
        });
        Ok(Artifact::Scorers(Arc::new(Scorers {
            groups: names,
            scorers,
            ece,
        })))
    }
}
