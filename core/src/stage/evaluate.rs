//! The `evaluate` stage: alignment of a policy with each group and fairness across groups.
//!
//! Alignment with group g = mean over questions of 1 − JS distance(π(q), p_g(q)), measured
//! against the true distributions (the oracle), on held-out questions by default.
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Artifact, Context, Inputs, Reading, Split, Stage, StageError};
use crate::metric::{alignment, Fairness};

/// Reference policies: fixed baselines that need no training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReferencePolicy {
    /// Every option equally likely.
    Uniform,
    /// The population-weighted mean of the groups' true distributions (a majority-leaning oracle).
    PopulationMean,
}

/// Which questions to evaluate on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Questions {
    /// Held-out questions no group trained on.
    Eval,
    /// The training questions.
    Train,
    /// Every question.
    All,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluateParams {
    /// A reference policy to evaluate. Without it, the stage evaluates the trained policy it
    /// needs (a `policy` or `ppo` stage), or the uniform policy when it needs none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<ReferencePolicy>,
    /// The questions to evaluate on.
    #[serde(default = "d_on")]
    pub on: Questions,
}

fn d_on() -> Questions {
    Questions::Eval
}

/// One evaluation: per-group alignment and every fairness metric over it.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub policy: String,
    pub groups: Vec<String>,
    pub alignment: Vec<f64>,
    pub fairness: Vec<(Fairness, f64)>,
}

impl Evaluation {
    /// Alignment per group, then every fairness metric over the groups.
    pub fn readings(&self) -> Vec<Reading> {
        let per_group = self
            .groups
            .iter()
            .zip(&self.alignment)
            .map(|(g, a)| Reading::group(g, "alignment", *a));
        let overall = self
            .fairness
            .iter()
            .map(|(f, v)| Reading::all(f.name(), *v));
        per_group.chain(overall).collect()
    }

    pub fn new(policy: String, groups: Vec<String>, alignment: Vec<f64>) -> Self {
        let fairness = Fairness::ALL
            .iter()
            .map(|f| (*f, f.of(&alignment)))
            .collect();
        Evaluation {
            policy,
            groups,
            alignment,
            fairness,
        }
    }
}

/// A fixed reference policy's answer distribution on question q.
fn reference_on(policy: ReferencePolicy, split: &Split, q: usize) -> Vec<f64> {
    let k = split.bank.options;
    match policy {
        ReferencePolicy::Uniform => vec![1.0 / k as f64; k],
        ReferencePolicy::PopulationMean => {
            let mut mix = vec![0.0; k];
            for (g, info) in split.groups.iter().enumerate() {
                for (m, p) in mix.iter_mut().zip(split.oracle.distribution(g, q)) {
                    *m += info.population * p;
                }
            }
            mix
        }
    }
}

impl Stage for EvaluateParams {
    fn run(&self, ctx: &Context<'_>, inputs: &Inputs<'_>) -> Result<Artifact, StageError> {
        let split = inputs.split()?;
        let questions: Vec<usize> = match self.on {
            Questions::Eval => split.bank.eval.clone(),
            Questions::Train => split.bank.train.clone(),
            Questions::All => (0..split.bank.features.len()).collect(),
        };
        let (name, policy): (String, Vec<Vec<f64>>) = match (self.policy, inputs.policy()) {
            (Some(reference), _) => (
                label(reference),
                questions
                    .iter()
                    .map(|&q| reference_on(reference, split, q))
                    .collect(),
            ),
            (None, Ok(state)) => (
                "trained".to_owned(),
                state.policy.distributions(&questions, &split.bank.features),
            ),
            (None, Err(_)) => (
                label(ReferencePolicy::Uniform),
                questions
                    .iter()
                    .map(|&q| reference_on(ReferencePolicy::Uniform, split, q))
                    .collect(),
            ),
        };
        let names = split.group_names();
        let scores = ctx.per_group(&names, |g| {
            let total: f64 = questions
                .iter()
                .zip(&policy)
                .map(|(&q, pi)| alignment(pi, split.oracle.distribution(g, q)))
                .sum();
            Ok(total / questions.len() as f64)
        })?;
        Ok(Artifact::Evaluation(Arc::new(Evaluation::new(
            name, names, scores,
        ))))
    }
}

fn label(policy: ReferencePolicy) -> String {
    match policy {
        ReferencePolicy::Uniform => "uniform",
        ReferencePolicy::PopulationMean => "population_mean",
    }
    .to_owned()
}
