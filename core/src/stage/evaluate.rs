//! The `evaluate` stage: alignment of a policy with each group and fairness across groups.
//!
//! Alignment with group g = mean over questions of 1 − JS distance(π(q), p_g(q)), measured
//! against the true distributions (the oracle), on held-out questions by default.
use std::sync::Arc;

use chorus_plugin::Metric;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Artifact, Context, Inputs, Reading, Split, Stage, StageError};
use crate::diagnostic::{suggest, Diagnostic};
use crate::metric::alignment;
use crate::registry::{ParamError, Registry};
use crate::spec::{child_path, Blame};

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
    /// Fairness metrics to report besides the built-in six (mean, worst_group, gap, jain,
    /// gini, cv), by name (`atkinson`) or with knobs (`{metric: atkinson, epsilon: 1.0}`);
    /// a plugin's metric needs its library under `plugins:`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricSpec>,
}

/// One extra metric: its name, or its name and knobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum MetricSpec {
    Name(String),
    /// `{metric: NAME, ...knobs}`.
    WithKnobs(Map<String, Value>),
}

fn d_on() -> Questions {
    Questions::Eval
}

/// One evaluation: per-group alignment and every fairness metric over it, by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub policy: String,
    pub groups: Vec<String>,
    pub alignment: Vec<f64>,
    pub fairness: Vec<(String, f64)>,
}

impl Evaluation {
    /// Alignment per group, then every fairness metric over the groups.
    pub fn readings(&self) -> Vec<Reading> {
        let per_group = self
            .groups
            .iter()
            .zip(&self.alignment)
            .map(|(g, a)| Reading::group(g, "alignment", *a));
        let overall = self.fairness.iter().map(|(f, v)| Reading::all(f, *v));
        per_group.chain(overall).collect()
    }
}

/// The `evaluate` stage as resolved: its params and the metrics it reports, built once.
#[derive(Debug)]
pub struct EvaluateStage {
    params: EvaluateParams,
    metrics: Vec<(String, Box<dyn Metric>)>,
}

impl EvaluateStage {
    /// Builds the default metrics and those `params.metrics` (at `path`) names.
    pub fn resolve(
        params: EvaluateParams,
        path: &str,
        blame: &Blame<'_>,
        registry: &Registry,
    ) -> Result<Self, Vec<Diagnostic>> {
        let mut metrics: Vec<(String, Box<dyn Metric>)> = registry
            .metrics
            .defaults()
            .map(|e| {
                let m = e
                    .build(&Map::new())
                    .expect("built-in metrics build without knobs");
                (e.name.clone(), m)
            })
            .collect();
        let mut errors = Vec::new();
        for (i, spec) in params.metrics.iter().enumerate() {
            let at = format!("{path}.metrics[{i}]");
            let (name, knobs, name_at) = match spec {
                MetricSpec::Name(name) => (name.clone(), Map::new(), at.clone()),
                MetricSpec::WithKnobs(map) => match map.get("metric") {
                    Some(Value::String(name)) => {
                        let mut knobs = map.clone();
                        knobs.remove("metric");
                        (name.clone(), knobs, format!("{at}.metric"))
                    }
                    _ => {
                        errors.push(Diagnostic::new(
                            blame.at(&at),
                            "a metric with knobs needs `metric: NAME`",
                            "write `{metric: atkinson, epsilon: 1.0}` or just the name",
                        ));
                        continue;
                    }
                },
            };
            let Some(entry) = registry.metrics.get(&name) else {
                errors.push(Diagnostic::new(
                    blame.at(&name_at),
                    format!("unknown metric `{name}`"),
                    format!(
                        "{}; a plugin's metric needs its library under `plugins:`",
                        suggest(&name, &registry.metrics.names(), "metrics")
                    ),
                ));
                continue;
            };
            if metrics.iter().any(|(n, _)| *n == name) {
                // A default listed again adds nothing; the same plugin metric twice would
                // give two columns of one name.
                if knobs.is_empty() {
                    continue;
                }
                errors.push(Diagnostic::new(
                    blame.at(&name_at),
                    format!("metric `{name}` is reported twice"),
                    "list each metric once",
                ));
                continue;
            }
            match entry.build(&knobs) {
                Ok(m) => metrics.push((name, m)),
                Err(problems) => errors.extend(problems.into_iter().map(|e| match e {
                    ParamError::Shape {
                        path: inner,
                        message,
                    } => blame.serde_at(&child_path(&at, &inner), &message),
                    ParamError::Invalid {
                        field,
                        message,
                        hint,
                    } => Diagnostic::new(
                        blame.at(&child_path(&at, &field)),
                        format!("metric `{name}` ({}): {message}", entry.source),
                        hint,
                    ),
                })),
            }
        }
        if errors.is_empty() {
            Ok(EvaluateStage { params, metrics })
        } else {
            Err(errors)
        }
    }

    /// Every metric of `alignment`; a metric that fails (a plugin's error) fails the stage.
    fn measure(
        &self,
        policy: String,
        groups: Vec<String>,
        alignment: Vec<f64>,
    ) -> Result<Evaluation, StageError> {
        let fairness = self
            .metrics
            .iter()
            .map(|(name, m)| match m.compute(&alignment) {
                Ok(v) if v.is_finite() => Ok((name.clone(), v)),
                Ok(v) => Err(StageError(format!("metric `{name}` returned {v}"))),
                Err(e) => Err(StageError(format!("metric `{name}`: {e}"))),
            })
            .collect::<Result<_, _>>()?;
        Ok(Evaluation {
            policy,
            groups,
            alignment,
            fairness,
        })
    }
}

/// A fixed reference policy's answer distribution on question q.
fn reference_on(policy: ReferencePolicy, split: &Split, q: usize) -> Vec<f64> {
    let k = split.bank.questions.options[q];
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

impl Stage for EvaluateStage {
    fn run(&self, ctx: &Context<'_>, inputs: &Inputs<'_>) -> Result<Artifact, StageError> {
        let split = inputs.split()?;
        let questions: Vec<usize> = match self.params.on {
            Questions::Eval => split.bank.eval.clone(),
            Questions::Train => split.bank.train.clone(),
            Questions::All => (0..split.bank.questions.len()).collect(),
        };
        let (name, policy): (String, Vec<Vec<f64>>) = match (self.params.policy, inputs.policy()) {
            (Some(reference), _) => (
                label(reference),
                questions
                    .iter()
                    .map(|&q| reference_on(reference, split, q))
                    .collect(),
            ),
            (None, Ok(state)) => (
                "trained".to_owned(),
                state
                    .policy
                    .distributions(&split.bank, &questions)
                    .map_err(|e| StageError(e.to_string()))?,
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
        Ok(Artifact::Evaluation(Arc::new(
            self.measure(name, names, scores)?,
        )))
    }
}

fn label(policy: ReferencePolicy) -> String {
    match policy {
        ReferencePolicy::Uniform => "uniform",
        ReferencePolicy::PopulationMean => "population_mean",
    }
    .to_owned()
}
