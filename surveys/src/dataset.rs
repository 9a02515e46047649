//! The one shape every reader produces: questions with their options, and per group an answer
//! distribution over each question's options.
use crate::error::DataError;
use crate::report::Report;

/// One survey question as the policy will see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    /// Stable within its source: the WVS id (`Q1`) or `row-N` for a GlobalOpinionQA row.
    pub id: String,
    pub text: String,
    /// Option texts in answer order, without any numbering the source put in front of them;
    /// at least two.
    pub options: Vec<String>,
    /// The source's subject heading, where it has one.
    pub topic: Option<String>,
}

/// One group (a country) and its answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub name: String,
    /// Evaluated but never trained on (the spec's `eval_only`): a held-out population.
    pub eval_only: bool,
    /// Per question (aligned with [`Dataset::questions`]), this group's answer shares over that
    /// question's options, summing to 1.
    pub distributions: Vec<Vec<f64>>,
}

/// Questions and every group's answers to all of them.
///
/// Every kept question has a distribution for every group: a question missing or dropped in
/// any requested group (eval-only ones included) is dropped for all of them and counted in
/// the report, because alignment across groups is only comparable on shared questions.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub questions: Vec<Question>,
    pub groups: Vec<Group>,
    /// How the files became this dataset.
    pub report: Report,
}

impl Dataset {
    /// The largest number of options of any question (0 without questions): how many answer
    /// letters a prompt format needs.
    pub fn max_options(&self) -> usize {
        self.questions
            .iter()
            .map(|q| q.options.len())
            .max()
            .unwrap_or(0)
    }

    /// Checks that every question can be answered with `letters` answer letters (A, B, …);
    /// names the first question that has more options than that.
    pub fn check_letters(&self, letters: usize) -> Result<(), DataError> {
        match self.questions.iter().find(|q| q.options.len() > letters) {
            Some(q) => Err(DataError::TooManyOptions {
                question: q.id.clone(),
                options: q.options.len(),
                letters,
            }),
            None => Ok(()),
        }
    }
}
