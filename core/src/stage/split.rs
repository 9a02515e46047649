//! The `split` stage: materialise the dataset and cut it along the federation boundary.
//!
//! Out come three things with different audiences: the public question bank (any stage),
//! one private shard per group (only that group's stages: its survey answers, as the
//! empirical distribution of a finite sample of respondents), and the oracle of true
//! distributions on held-out questions (only evaluation, and oracle-mode scoring).
use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::Rng as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Artifact, Context, Inputs, Stage, StageError};
use crate::data::{GroupInfo, Questions, Survey};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SplitParams {
    /// Share of questions held out for evaluation, in (0, 1); no group trains on them.
    #[serde(default = "d_eval_fraction")]
    pub eval_fraction: f64,
    /// Respondents surveyed per group and question (≥ 1); their answers form the group's data.
    /// Simulated data only: a real survey's published shares are its groups' data as they are.
    #[serde(default = "d_respondents")]
    pub respondents: u32,
    /// Share of the training questions each group answered, in (0, 1]; groups' subsets differ.
    #[serde(default = "d_coverage")]
    pub coverage: f64,
}

fn d_eval_fraction() -> f64 {
    0.2
}
fn d_respondents() -> u32 {
    100
}
fn d_coverage() -> f64 {
    1.0
}

impl SplitParams {
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !(self.eval_fraction > 0.0 && self.eval_fraction < 1.0) {
            return Err((
                "eval_fraction",
                format!(
                    "`eval_fraction` is {}; it must lie in (0, 1)",
                    self.eval_fraction
                ),
            ));
        }
        if self.respondents == 0 {
            return Err(("respondents", "`respondents` must be at least 1".to_owned()));
        }
        if !(self.coverage > 0.0 && self.coverage <= 1.0) {
            return Err((
                "coverage",
                format!("`coverage` is {}; it must lie in (0, 1]", self.coverage),
            ));
        }
        Ok(())
    }
}

/// Public: the questions and which are for training or evaluation.
#[derive(Debug)]
pub struct QuestionBank {
    pub questions: Questions,
    pub train: Vec<usize>,
    pub eval: Vec<usize>,
}

/// One group's private data: the questions it answered and its respondents' answer shares.
#[derive(Debug)]
pub struct GroupShard {
    pub questions: Vec<usize>,
    /// Answer shares per question, aligned with `questions`.
    pub answers: Vec<Vec<f64>>,
}

/// The true distributions: the experimenter's yardstick, never a training signal.
#[derive(Debug)]
pub struct Oracle(Survey);

impl Oracle {
    pub fn distribution(&self, g: usize, q: usize) -> &[f64] {
        self.0.distribution(g, q)
    }
}

#[derive(Debug)]
pub struct Split {
    pub bank: QuestionBank,
    pub groups: Vec<GroupInfo>,
    pub shards: Vec<GroupShard>,
    pub oracle: Oracle,
}

impl Split {
    pub fn group_names(&self) -> Vec<String> {
        self.groups.iter().map(|g| g.name.clone()).collect()
    }

    /// Indices of the groups that score and train (not evaluation-only).
    pub fn trainers(&self) -> Vec<usize> {
        (0..self.groups.len())
            .filter(|&g| !self.groups[g].eval_only)
            .collect()
    }
}

impl Stage for SplitParams {
    fn run(&self, ctx: &Context<'_>, _inputs: &Inputs<'_>) -> Result<Artifact, StageError> {
        let p = ctx.pipeline;
        let names = p.data.group_names();
        let survey = p.data.load(p.seed, ctx.base).map_err(StageError)?;
        let simulated = p.data.is_simulated();
        let q_n = survey.len();
        if q_n < 2 {
            return Err(StageError(format!(
                "the dataset has {q_n} question(s); holding out evaluation questions needs at least 2"
            )));
        }
        let mut order: Vec<usize> = (0..q_n).collect();
        order.shuffle(&mut ctx.rng(&["questions"]));
        let n_eval = ((q_n as f64 * self.eval_fraction).round() as usize).clamp(1, q_n - 1);
        let mut eval = order[..n_eval].to_vec();
        let mut train = order[n_eval..].to_vec();
        eval.sort_unstable();
        train.sort_unstable();
        let take = (train.len() as f64 * self.coverage).round() as usize;
        let shards = ctx.per_group(&names, |g| {
            if take == 0 {
                return Err(StageError(format!(
                    "empty data split: {} training questions × coverage {} leaves none; raise `coverage` or `data.questions`",
                    train.len(),
                    self.coverage
                )));
            }
            let mut rng = ctx.rng(&["group", &names[g]]);
            let mut questions = train.clone();
            questions.shuffle(&mut rng);
            questions.truncate(take);
            questions.sort_unstable();
            let mut answers = Vec::with_capacity(questions.len());
            if !simulated {
                // A real survey's shares are the group's data as published.
                for &q in &questions {
                    answers.push(survey.distribution(g, q).to_vec());
                }
                return Ok(GroupShard { questions, answers });
            }
            for &q in &questions {
                let p = survey.distribution(g, q);
                let mut counts = vec![0u32; p.len()];
                for _ in 0..self.respondents {
                    counts[sample(p, rng.random())] += 1;
                }
                answers.push(
                    counts
                        .iter()
                        .map(|&c| c as f64 / self.respondents as f64)
                        .collect(),
                );
            }
            Ok(GroupShard { questions, answers })
        })?;
        Ok(Artifact::Split(Arc::new(Split {
            bank: QuestionBank {
                questions: survey.questions.clone(),
                train,
                eval,
            },
            groups: survey.groups.clone(),
            shards,
            oracle: Oracle(survey),
        })))
    }
}

/// Inverse-CDF draw of an option index from `p` with a uniform `u` in [0, 1).
fn sample(p: &[f64], u: f64) -> usize {
    let mut acc = 0.0;
    for (i, &x) in p.iter().enumerate() {
        acc += x;
        if u < acc {
            return i;
        }
    }
    p.len() - 1
}
