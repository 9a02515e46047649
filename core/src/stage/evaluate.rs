//! The `evaluate` stage: alignment of a policy with each group and fairness across groups.
//!
//! Alignment with group g = mean over questions of 1 − JS distance(π(q), p_g(q)), measured
//! against the true distributions (the oracle), on held-out questions by default.
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Artifact, Context, Inputs, Split, Stage, StageError};
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
    /// The policy to evaluate.
    #[serde(default = "d_policy")]
    pub policy: ReferencePolicy,
    /// The questions to evaluate on.
    #[serde(default = "d_on")]
    pub on: Questions,
}

fn d_policy() -> ReferencePolicy {
    ReferencePolicy::Uniform
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

impl EvaluateParams {
    fn policy_on(&self, split: &Split, q: usize) -> Vec<f64> {
        let k = split.bank.options;
        match self.policy {
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
}

impl Stage for EvaluateParams {
    fn run(&self, ctx: &Context<'_>, inputs: &Inputs<'_>) -> Result<Artifact, StageError> {
        let split = inputs.split()?;
        let questions: Vec<usize> = match self.on {
            Questions::Eval => split.bank.eval.clone(),
            Questions::Train => split.bank.train.clone(),
            Questions::All => (0..split.bank.features.len()).collect(),
        };
        let policy: Vec<Vec<f64>> = questions
            .iter()
            .map(|&q| self.policy_on(split, q))
            .collect();
        let names = split.group_names();
        let scores = ctx.per_group(&names, |g| {
            let total: f64 = questions
                .iter()
                .zip(&policy)
                .map(|(&q, pi)| alignment(pi, split.oracle.distribution(g, q)))
                .sum();
            Ok(total / questions.len() as f64)
        })?;
        let name = serde_json::to_value(self.policy)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        Ok(Artifact::Evaluation(Arc::new(Evaluation::new(
            name, names, scores,
        ))))
    }
}
