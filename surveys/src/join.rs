//! Joining the groups' answers on question id, the same way for every reader: a question is
//! kept only if every requested group answers it, with the same number of options, and no
//! other such question reads the same.
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use crate::dataset::{Group, Question};
use crate::report::{DropReason, GroupReport, Repair};

/// One group's valid answer to one question.
pub(crate) struct Answer {
    /// In option order, summing to 1.
    pub shares: Vec<f64>,
    pub renormalised: bool,
    /// Renormalised over substantive answers (the sum was well below 1), not for rounding.
    pub substantive: bool,
    pub repairs: Vec<Repair>,
}

/// One question as a group's file holds it; `id` is absent when the file gives none.
pub(crate) struct Entry {
    pub id: Option<String>,
    pub outcome: Result<Answer, DropReason>,
}

/// Everything one group's file said, in file order.
pub(crate) struct GroupEntries {
    pub name: String,
    pub eval_only: bool,
    pub file: PathBuf,
    pub entries: Vec<Entry>,
}

pub(crate) struct Joined {
    pub questions: Vec<Question>,
    pub groups: Vec<Group>,
    pub reports: Vec<GroupReport>,
}

/// Keeps the `candidates` (question texts, in output order) that every group answers validly
/// with as many options as the candidate has, unless another of them has the same text and
/// options; counts every entry of every group as kept or dropped, with the first reason that
/// applies.
pub(crate) fn join(candidates: Vec<Question>, groups: Vec<GroupEntries>) -> Joined {
    let lookup: Vec<HashMap<&str, &Result<Answer, DropReason>>> = groups
        .iter()
        .map(|g| {
            g.entries
                .iter()
                .filter_map(|e| Some((e.id.as_deref()?, &e.outcome)))
                .collect()
        })
        .collect();
    // Why a question valid in some group is still dropped; `None` when it can be kept.
    let cross_group = |id: &str| -> Option<DropReason> {
        let outcomes: Option<Vec<_>> = lookup.iter().map(|l| l.get(id)).collect();
        let Some(outcomes) = outcomes else {
            return Some(DropReason::NotInEveryGroup);
        };
        let answers: Option<Vec<&Answer>> = outcomes.iter().map(|o| o.as_ref().ok()).collect();
        let Some(answers) = answers else {
            return Some(DropReason::DroppedInAnotherGroup);
        };
        let k = answers[0].shares.len();
        if answers.iter().any(|a| a.shares.len() != k) {
            return Some(DropReason::OptionsDisagreeAcrossGroups);
        }
        None
    };

    let joinable: Vec<Question> = candidates
        .into_iter()
        .filter(|q| cross_group(&q.id).is_none())
        .collect();
    let mut readings: HashMap<(&str, &[String]), usize> = HashMap::new();
    for q in &joinable {
        *readings.entry((&q.text, &q.options)).or_default() += 1;
    }
    let ambiguous: HashSet<String> = joinable
        .iter()
        .filter(|q| readings[&(q.text.as_str(), q.options.as_slice())] > 1)
        .map(|q| q.id.clone())
        .collect();
    let reason = |id: &str| {
        cross_group(id).or_else(|| ambiguous.contains(id).then_some(DropReason::DuplicateText))
    };
    let questions: Vec<Question> = joinable
        .into_iter()
        .filter(|q| !ambiguous.contains(&q.id))
        .collect();
    let mut reports = Vec::with_capacity(groups.len());
    let mut out = Vec::with_capacity(groups.len());
    for (g, l) in groups.iter().zip(&lookup) {
        let mut report = GroupReport {
            name: g.name.clone(),
            eval_only: g.eval_only,
            file: g.file.clone(),
            found: g.entries.len(),
            ..GroupReport::default()
        };
        for e in &g.entries {
            let reason = match (&e.outcome, &e.id) {
                (Err(r), _) => Some(*r),
                (Ok(_), Some(id)) => reason(id),
                (Ok(_), None) => unreachable!("a reader accepted an entry without an id"),
            };
            match (reason, &e.outcome) {
                (Some(r), _) => *report.dropped.entry(r).or_default() += 1,
                (None, Ok(a)) => {
                    report.kept += 1;
                    report.renormalised += usize::from(a.renormalised);
                    report.renormalised_substantive += usize::from(a.substantive);
                    for r in &a.repairs {
                        *report.repaired.entry(*r).or_default() += 1;
                    }
                }
                (None, Err(_)) => unreachable!("an error outcome always has a reason"),
            }
        }
        debug_assert_eq!(
            report.kept,
            questions.len(),
            "a joinable id was not a candidate"
        );
        let distributions = questions
            .iter()
            .map(|q| match l[q.id.as_str()] {
                Ok(a) => a.shares.clone(),
                Err(_) => unreachable!("kept questions are valid in every group"),
            })
            .collect();
        out.push(Group {
            name: g.name.clone(),
            eval_only: g.eval_only,
            distributions,
        });
        reports.push(report);
    }
    Joined {
        questions,
        groups: out,
        reports,
    }
}

/// The smallest and largest option count among `questions`; `None` without questions.
pub(crate) fn option_range(questions: &[Question]) -> Option<(usize, usize)> {
    let counts = questions.iter().map(|q| q.options.len());
    Some((counts.clone().min()?, counts.max()?))
}
