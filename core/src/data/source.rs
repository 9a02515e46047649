//! Where a pipeline's data comes from (`data: {kind: ..., ...}`): the embedded simulator or a
//! real survey read by chorus-surveys. Each kind knows its groups before anything runs (for
//! checking the stages that name them), what it is wrong about (for `chorus validate`), the
//! files it reads (for the run's identity), and how to become a [`Survey`].
use std::path::{Path, PathBuf};

use chorus_surveys::dataset::Dataset;
use chorus_surveys::spec::{DataSpec as RealSpec, GlobalOpinionQaSpec, WvsSpec};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{GroupInfo, QuestionText, Questions, SimulatorSpec, Survey};

/// The data source; `kind` names it, its settings sit beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DataSpec {
    /// The embedded opinion-survey simulator: needs no download, fully seeded.
    Simulator(SimulatorSpec),
    /// World Values Survey answer distributions, one JSON file per country (paths relative to
    /// the pipeline file).
    WvsJson(WvsSpec),
    /// Anthropic's GlobalOpinionQA CSV (path relative to the pipeline file).
    GlobalOpinionQa(GlobalOpinionQaSpec),
}

impl DataSpec {
    /// The groups, in the order every stage and output uses.
    pub fn group_names(&self) -> Vec<String> {
        match self {
            DataSpec::Simulator(s) => s.groups.resolved_names(),
            DataSpec::WvsJson(s) => s.groups.keys().cloned().collect(),
            DataSpec::GlobalOpinionQa(s) => s.groups.clone(),
        }
    }

    /// The groups that score and train (all but the evaluation-only ones), in order.
    pub fn training_group_names(&self) -> Vec<String> {
        let eval_only: &[String] = match self {
            DataSpec::Simulator(_) => &[],
            DataSpec::WvsJson(s) => &s.eval_only,
            DataSpec::GlobalOpinionQa(s) => &s.eval_only,
        };
        self.group_names()
            .into_iter()
            .filter(|g| !eval_only.contains(g))
            .collect()
    }

    /// Whether answers are drawn from simulated respondents (the simulator) rather than
    /// published shares (a real survey, whose shares are the groups' data as they are).
    pub fn is_simulated(&self) -> bool {
        matches!(self, DataSpec::Simulator(_))
    }

    /// Settings that are out of range or inconsistent, as (field under `data`, message, hint).
    pub fn problems(&self) -> Vec<(String, String, String)> {
        match self {
            DataSpec::Simulator(s) => s.problems(),
            _ => match self.real().map(|r| r.validate()) {
                Some(Err(e)) => vec![(String::new(), e.to_string(), String::new())],
                _ => Vec::new(),
            },
        }
    }

    /// The files the data is read from, resolved against `base` (the pipeline's folder).
    pub fn files(&self, base: &Path) -> Vec<PathBuf> {
        match self {
            DataSpec::Simulator(_) => Vec::new(),
            DataSpec::WvsJson(s) => s.groups.values().map(|p| base.join(p)).collect(),
            DataSpec::GlobalOpinionQa(s) => vec![base.join(&s.path)],
        }
    }

    /// The survey, generated from `seed` or read from files under `base`.
    pub fn load(&self, seed: u64, base: &Path) -> Result<Survey, String> {
        match (self, self.real()) {
            (DataSpec::Simulator(s), _) => Ok(s.generate(seed)),
            (_, Some(real)) => real.load(base).map(from_dataset).map_err(|e| e.to_string()),
            (_, None) => Err("no data source".to_owned()),
        }
    }

    /// The spec chorus-surveys reads (`None` for the simulator).
    fn real(&self) -> Option<RealSpec> {
        match self {
            DataSpec::Simulator(_) => None,
            DataSpec::WvsJson(s) => Some(RealSpec::WvsJson(s.clone())),
            DataSpec::GlobalOpinionQa(s) => Some(RealSpec::GlobalOpinionQa(s.clone())),
        }
    }
}

/// A real dataset as a survey: every group weighs the same in the population (countries are
/// compared as peers, not by head count), none is a designated minority; evaluation-only
/// groups stay marked.
fn from_dataset(data: Dataset) -> Survey {
    let share = 1.0 / data.groups.len().max(1) as f64;
    let groups = data
        .groups
        .iter()
        .map(|g| GroupInfo {
            name: g.name.clone(),
            population: share,
            minority: false,
            eval_only: g.eval_only,
        })
        .collect();
    let questions = Questions {
        options: data.questions.iter().map(|q| q.options.len()).collect(),
        features: vec![Vec::new(); data.questions.len()],
        text: data
            .questions
            .iter()
            .map(|q| {
                Some(QuestionText {
                    id: q.id.clone(),
                    text: q.text.clone(),
                    options: q.options.clone(),
                })
            })
            .collect(),
    };
    let truth = data.groups.into_iter().map(|g| g.distributions).collect();
    Survey::new(questions, groups, truth)
}
