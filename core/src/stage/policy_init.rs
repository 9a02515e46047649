//! The `policy` stage: the initial policy, and its frozen copy as the KL reference.
use std::sync::{Arc, Mutex};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::artifact::Reading;
use super::{Artifact, Context, Inputs, Stage, StageError};
use crate::policy::{Adam, Net, Policy, RolloutKind};
use crate::ppo::UpdateStats;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyParams {
    /// How rollouts answer: one sampled option, or a sampled distribution over options.
    #[serde(default = "d_rollout")]
    pub rollout: RolloutKind,
    /// Width of the MLP trunk.
    #[serde(default = "d_hidden")]
    pub hidden: u32,
    /// Hidden layers of the trunk.
    #[serde(default = "d_depth")]
    pub depth: u32,
    /// Initial log σ of the logistic-normal rollouts (distribution mode).
    #[serde(default = "d_log_std")]
    pub init_log_std: f64,
}

fn d_rollout() -> RolloutKind {
    RolloutKind::Choice
}
fn d_hidden() -> u32 {
    64
}
fn d_depth() -> u32 {
    2
}
fn d_log_std() -> f64 {
    -0.5
}

impl PolicyParams {
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.hidden == 0 || self.depth == 0 {
            return Err((
                "hidden",
                "`hidden` and `depth` must be at least 1".to_owned(),
            ));
        }
        Ok(())
    }
}

/// A policy with everything its training carries from round to round.
#[derive(Debug)]
pub struct PolicyState {
    pub policy: Policy,
    /// The frozen initial policy the KL penalty pulls toward.
    pub reference: Policy,
    pub adam: Adam,
    /// What the update that produced this state did (none for the initial policy).
    pub stats: Option<UpdateStats>,
}

impl PolicyState {
    pub fn readings(&self) -> Vec<Reading> {
        let Some(s) = &self.stats else {
            return Vec::new();
        };
        vec![
            Reading::all("train_reward", s.reward),
            Reading::all("train_kl", s.kl),
            Reading::all("train_entropy", s.entropy),
            Reading::all("train_clip_fraction", s.clip_fraction),
            Reading::all("train_value_loss", s.value_loss),
            Reading::all("train_approx_kl", s.approx_kl),
        ]
    }
}

impl Stage for PolicyParams {
    fn run(&self, ctx: &Context<'_>, inputs: &Inputs<'_>) -> Result<Artifact, StageError> {
        let bank = &inputs.split()?.bank;
        let mut rng = ctx.rng(&["init"]);
        let inputs_dim = bank.features.first().map_or(0, Vec::len);
        let net = Net::new(
            inputs_dim,
            self.hidden as usize,
            self.depth as usize,
            bank.options,
            self.init_log_std,
            &mut rng,
        );
        let reference = Policy {
            net: net.duplicate(),
            kind: self.rollout,
            options: bank.options,
        };
        let adam = Adam::new(&net, 3e-4);
        Ok(Artifact::Policy(Arc::new(Mutex::new(PolicyState {
            policy: Policy {
                net,
                kind: self.rollout,
                options: bank.options,
            },
            reference,
            adam,
            stats: None,
        }))))
    }
}
