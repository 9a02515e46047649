//! The `reward_model` stage: every group trains its own scorer on its own shard, in parallel,
//! optionally after federated averaging rounds in which the server sees only model weights.
use std::sync::{Arc, Mutex};

use super::artifact::Reading;
use super::split::Split;
use super::{Artifact, Context, Inputs, Stage, StageError};
use crate::policy::{question_features, ChoicePrompts, Net};
use crate::reward::{
    average, calibration_error, held_out_alignment, FedAvg, GroupScorer, RewardModelConfig, Source,
};
use chorus_llm::fetch;
use chorus_llm::model::LoadOptions;
use chorus_llm::pretrained::Pretrained;

/// The groups' scorers, index = group. Each was trained on one shard only (after FedAvg,
/// starting from a model the groups trained together through weights).
#[derive(Debug)]
pub struct Scorers {
    pub groups: Vec<String>,
    pub scorers: Vec<GroupScorer>,
    /// Each learned model on held-out questions (none in oracle mode).
    pub quality: Option<Vec<Quality>>,
}

/// How well a learned reward model knows its group on questions it never trained on.
#[derive(Debug, Clone, Copy)]
pub struct Quality {
    /// Expected calibration error of the top-1 prediction.
    pub ece: f64,
    /// Mean 1 − JS distance between predicted and true distributions.
    pub alignment: f64,
}

impl Scorers {
    pub fn readings(&self) -> Vec<Reading> {
        let Some(quality) = &self.quality else {
            return Vec::new();
        };
        self.groups
            .iter()
            .zip(quality)
            .flat_map(|(g, q)| {
                [
                    Reading::group(g, "reward_model_ece", q.ece),
                    Reading::group(g, "reward_model_alignment", q.alignment),
                ]
            })
            .collect()
    }
}

impl Stage for RewardModelConfig {
    fn run(&self, ctx: &Context<'_>, inputs: &Inputs<'_>) -> Result<Artifact, StageError> {
        let split = inputs.split()?;
        // Evaluation-only groups have no reward model: they never score.
        let trainers = split.trainers();
        let names: Vec<String> = trainers
            .iter()
            .map(|&g| split.groups[g].name.clone())
            .collect();
        let bank = &split.bank;
        let diverged = |e: crate::reward::TrainingDiverged| StageError(e.to_string());
        let scorers = match (self.source, &self.fedavg) {
            (Source::Oracle, _) => ctx.per_group(&names, |i| {
                Ok(GroupScorer::oracle(
                    &split.oracle,
                    trainers[i],
                    bank.questions.len(),
                    self.reward,
                ))
            })?,
            (Source::Model, fedavg) => {
                let features = &self.question_features(bank)?;
                let options = &bank.questions.options;
                let most = options.iter().copied().max().unwrap_or(0);
                let shared = match fedavg {
                    Some(fed) => Some(Mutex::new(federate(
                        ctx, split, features, &trainers, self, fed,
                    )?)),
                    None => None,
                };
                ctx.per_group(&names, |i| {
                    let net = match &shared {
                        Some(shared) => copy_of(shared)?,
                        None => GroupScorer::init(
                            features,
                            most,
                            self,
                            &mut ctx.rng(&["group", &names[i]]),
                        ),
                    };
                    let shard = &split.shards[trainers[i]];
                    GroupScorer::fit(&net, shard, features, options, self.epochs, self.lr)
                        .map_err(diverged)?;
                    Ok(GroupScorer::from_net(&net, features, options, self.reward))
                })?
            }
        };
        // Quality is the experimenter's check of each model against the truth; the models
        // themselves never saw it.
        let quality = (self.source == Source::Model).then(|| {
            scorers
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let truth = |q| split.oracle.distribution(trainers[i], q).to_vec();
                    Quality {
                        ece: calibration_error(s, truth, &bank.eval),
                        alignment: held_out_alignment(s, truth, &bank.eval),
                    }
                })
                .collect()
        });
        Ok(Artifact::Scorers(Arc::new(Scorers {
            groups: names,
            scorers,
            quality,
        })))
    }
}

/// FedAvg rounds: every group trains a copy of the shared model on its own shard, in
/// parallel, and the copies are averaged weighted by shard size (questions answered).
fn federate(
    ctx: &Context<'_>,
    split: &Split,
    features: &[Vec<f32>],
    trainers: &[usize],
    cfg: &RewardModelConfig,
    fed: &FedAvg,
) -> Result<Net, StageError> {
    let names: Vec<String> = trainers
        .iter()
        .map(|&g| split.groups[g].name.clone())
        .collect();
    let options = &split.bank.questions.options;
    let most = options.iter().copied().max().unwrap_or(0);
    let mut shared = GroupScorer::init(features, most, cfg, &mut ctx.rng(&["fedavg"]));
    let weights: Vec<f64> = trainers
        .iter()
        .map(|&g| split.shards[g].questions.len() as f64)
        .collect();
    for round in 1..=fed.rounds {
        let broadcast = Mutex::new(shared);
        let local = ctx.per_group(&names, |i| {
            let net = copy_of(&broadcast)?;
            let shard = &split.shards[trainers[i]];
            GroupScorer::fit(&net, shard, features, options, fed.local_epochs, cfg.lr)
                .map_err(|e| StageError(format!("FedAvg round {round}: {e}")))?;
            Ok(net)
        })?;
        shared = average(&local, &weights);
    }
    Ok(shared)
}

impl RewardModelConfig {
    /// The features a learned reward model reads: a language model's, when `features` names
    /// one, else the data's own.
    fn question_features(&self, bank: &super::QuestionBank) -> Result<Vec<Vec<f32>>, StageError> {
        let Some(model) = &self.features else {
            return match bank.questions.has_features() {
                true => Ok(bank.questions.features.clone()),
                false => Err(StageError(
                    "`source: model` learns from question features, which this dataset does not have; name a language model to compute them (`features: smollm2-135m-instruct`) or use `source: oracle`".to_owned(),
                )),
            };
        };
        let failed = |e: &dyn std::fmt::Display| StageError(e.to_string());
        let text = bank.questions.wording().ok_or_else(|| {
                StageError(
                    "`features:` reads each question's wording, and this dataset has none; the simulator's questions have features of their own (drop `features:`)".to_owned(),
                )
            })?;
        let path = fetch::resolve(model, &|m| tracing::info!("{m}")).map_err(|e| failed(&e))?;
        let pre = Pretrained::load(&path, LoadOptions::default()).map_err(|e| failed(&e))?;
        let chat = pre.chat.as_ref().ok_or_else(|| {
            StageError(format!(
                "{}: the model has no chat template, and survey prompts are chat turns",
                path.display()
            ))
        })?;
        let prompts = ChoicePrompts::build(&text, &pre.tokenizer, chat).map_err(|e| failed(&e))?;
        question_features(&pre.model, &prompts).map_err(|e| failed(&e))
    }
}

/// A group's own copy of the shared model (libtorch tensors may move between threads but not
/// be read from two at once, hence the lock).
fn copy_of(shared: &Mutex<Net>) -> Result<Net, StageError> {
    let net = shared.lock().map_err(|_| {
        StageError("the shared reward model was poisoned by a failed copy".to_owned())
    })?;
    Ok(net.duplicate())
}
