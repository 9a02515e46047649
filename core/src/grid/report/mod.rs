//! The statistics of a grid: cells grouped into configurations (their settings without the
//! seed), each quantity's mean ± 95% CI over seeds, differences paired by seed against a
//! baseline, and whether training moved the policy at all; as Markdown for people and CSV
//! for pandas, with one CSV row per cell so that every number can be traced to a run folder.
//!
//! Seeds are replicates: a difference between two rules is judged against the spread over
//! seeds, and pairing by seed removes the part of that spread both rules share (same survey,
//! same initial policy), which is why the paired table is the one to read for "is B better
//! than A".
mod render;
mod stats;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use serde_json::Value;

pub use stats::{t975, Estimate};

use super::{Axis, Cell, CellOutcome};
use crate::record::{StageEvaluation, Summary};
use crate::stage::Evaluation;

/// The axis whose values are replicates rather than configurations.
pub const SEED: &str = "seed";

/// A baseline that names nothing in the grid; each message says what to write instead.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("the baseline `{key}` is not an axis of this grid\n  hint: {}", baseline_keys(.axes))]
    UnknownAxis { key: String, axes: Vec<String> },
    #[error("the baseline `{key}={value}` is not a value of the axis `{key}`\n  hint: write {key}=VALUE with VALUE one of: {}", .values.join(", "))]
    UnknownValue {
        key: String,
        value: String,
        values: Vec<String>,
    },
    #[error("the seed axis cannot be the baseline: differences are paired by seed\n  hint: {}", baseline_keys(.axes))]
    SeedBaseline { axes: Vec<String> },
}

/// What to write as a baseline, given the axes that may be one.
fn baseline_keys(axes: &[String]) -> String {
    if axes.is_empty() {
        "this grid has no axis besides the seed to pair against; leave the baseline out".to_owned()
    } else {
        format!(
            "write the baseline as KEY=VALUE with KEY one of: {}",
            axes.join(", ")
        )
    }
}

/// What the report computes for each cell and configuration, in column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    /// Mean alignment over groups (the final evaluation's `mean`).
    MeanAlignment,
    WorstGroup,
    Jain,
    Gap,
    /// The mean aggregated reward of the last training round.
    FinalReward,
    /// The cell's wall time.
    Seconds,
}

impl Quantity {
    pub const ALL: [Quantity; 6] = [
        Quantity::MeanAlignment,
        Quantity::WorstGroup,
        Quantity::Jain,
        Quantity::Gap,
        Quantity::FinalReward,
        Quantity::Seconds,
    ];

    /// Its name in CSV headers.
    pub fn name(self) -> &'static str {
        match self {
            Quantity::MeanAlignment => "mean_alignment",
            Quantity::WorstGroup => "worst_group",
            Quantity::Jain => "jain",
            Quantity::Gap => "gap",
            Quantity::FinalReward => "final_reward",
            Quantity::Seconds => "seconds",
        }
    }

    /// Its Markdown column heading.
    pub fn label(self) -> &'static str {
        match self {
            Quantity::MeanAlignment => "mean alignment",
            Quantity::WorstGroup => "worst group",
            Quantity::Jain => "Jain",
            Quantity::Gap => "gap",
            Quantity::FinalReward => "final reward",
            Quantity::Seconds => "seconds",
        }
    }

    /// Decimals in Markdown: wall time varies by whole seconds, the rest lie in [0, 1].
    fn decimals(self) -> usize {
        match self {
            Quantity::Seconds => 1,
            _ => 4,
        }
    }

    /// Its slot in a [`Values`] array.
    fn slot(self) -> usize {
        self as usize
    }

    /// The value `summary` gives it, reading fairness metrics from `last`, the final
    /// trained evaluation.
    fn of(self, summary: &Summary, last: Option<&Evaluation>) -> Option<f64> {
        let fairness = |name: &str| last.and_then(|e| fairness(e, name));
        match self {
            Quantity::MeanAlignment => fairness("mean"),
            Quantity::WorstGroup => fairness("worst_group"),
            Quantity::Jain => fairness("jain"),
            Quantity::Gap => fairness("gap"),
            Quantity::FinalReward => summary.final_reward,
            Quantity::Seconds => Some(summary.seconds),
        }
    }
}

/// One value (or none) per [`Quantity`], in [`Quantity::ALL`] order.
pub type Values<T> = [Option<T>; Quantity::ALL.len()];

fn fairness(e: &Evaluation, name: &str) -> Option<f64> {
    e.fairness.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
}

/// An evaluation stage and the round its evaluation is from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StageRound {
    pub stage: String,
    pub round: u32,
}

impl StageRound {
    fn of(e: &StageEvaluation) -> StageRound {
        StageRound {
            stage: e.stage.clone(),
            round: e.round,
        }
    }
}

/// One group's alignment before and after training.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupAlignment {
    pub group: String,
    pub initial: f64,
    pub trained: f64,
}

/// What one completed cell measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// The final trained evaluation: the largest round among the trained policy's evaluations
    /// (any evaluation's if none is of the trained policy), ties to the first stage id.
    pub last: Option<StageRound>,
    /// The evaluation to compare it with: the smallest round before `last`'s among the same
    /// kind, ties to the first stage id (paper.yaml's `initial`, at round 0).
    pub initial: Option<StageRound>,
    pub values: Values<f64>,
    pub initial_mean_alignment: Option<f64>,
    /// The groups both evaluations measured, in the final evaluation's order.
    pub groups: Vec<GroupAlignment>,
}

impl Measured {
    fn of(summary: &Summary) -> Measured {
        // The trained policy's evaluations; reference policies (`uniform`, `population_mean`)
        // measure the data, not training, and are used only when nothing else was evaluated.
        let trained: Vec<_> = summary
            .evaluations
            .iter()
            .filter(|e| e.evaluation.policy == "trained")
            .cloned()
            .collect();
        let evaluations = if trained.is_empty() {
            &summary.evaluations
        } else {
            &trained
        };
        let last = evaluations
            .iter()
            .min_by(|a, b| b.round.cmp(&a.round).then_with(|| a.stage.cmp(&b.stage)));
        let initial = last.and_then(|l| {
            evaluations
                .iter()
                .filter(|e| e.round < l.round)
                .min_by(|a, b| a.round.cmp(&b.round).then_with(|| a.stage.cmp(&b.stage)))
        });
        let last_eval = last.map(|e| &e.evaluation);
        let values = Quantity::ALL.map(|q| q.of(summary, last_eval));
        Measured {
            last: last.map(StageRound::of),
            initial: initial.map(StageRound::of),
            values,
            initial_mean_alignment: initial.and_then(|e| fairness(&e.evaluation, "mean")),
            groups: match (initial, last) {
                (Some(i), Some(l)) => group_alignments(&i.evaluation, &l.evaluation),
                _ => Vec::new(),
            },
        }
    }
}

/// Each group of `trained` that `initial` also measured, matched by name.
fn group_alignments(initial: &Evaluation, trained: &Evaluation) -> Vec<GroupAlignment> {
    let before = |g: &str| {
        let at = initial.groups.iter().position(|x| x == g)?;
        initial.alignment.get(at).copied()
    };
    trained
        .groups
        .iter()
        .zip(&trained.alignment)
        .filter_map(|(g, &after)| {
            Some(GroupAlignment {
                group: g.clone(),
                initial: before(g)?,
                trained: after,
            })
        })
        .collect()
}

/// Where a cell stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Done(Measured),
    /// The run's error. A failed run may still have left a partial summary; its numbers
    /// are not the experiment's, so they are not used.
    Failed(String),
    /// Not run (yet).
    Missing,
}

impl Status {
    fn of(outcome: &CellOutcome) -> Status {
        match (&outcome.error, &outcome.summary) {
            (Some(e), _) => Status::Failed(e.clone()),
            (None, Some(s)) => Status::Done(Measured::of(s)),
            (None, None) => Status::Missing,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Status::Done(_) => "done",
            Status::Failed(_) => "failed",
            Status::Missing => "missing",
        }
    }

    fn measured(&self) -> Option<&Measured> {
        match self {
            Status::Done(m) => Some(m),
            _ => None,
        }
    }
}

/// One cell of the grid, as the report saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct CellRow {
    pub cell: Cell,
    /// Its run folder.
    pub dir: PathBuf,
    pub status: Status,
}

impl CellRow {
    fn seed(&self) -> Option<&Value> {
        self.cell.get(SEED)
    }
}

/// How a configuration compares with the baseline.
#[derive(Debug, Clone, PartialEq)]
pub enum Paired {
    /// No baseline was asked for, or no configuration is this one with the baseline value.
    Unpaired,
    /// It is a baseline configuration.
    Baseline,
    /// Mean difference (this − baseline) over the seeds both completed.
    Against {
        pairs: usize,
        deltas: Values<Estimate>,
    },
}

/// One configuration: the cells that share every setting but the seed.
#[derive(Debug, Clone, PartialEq)]
pub struct Configuration {
    /// Its value for each of [`Report::columns`] (`None` where its cells do not set it).
    pub values: Vec<Option<Value>>,
    /// Its cells, as positions in [`Report::cells`].
    pub cells: Vec<usize>,
    pub failed: usize,
    pub missing: usize,
    /// Over its completed cells.
    pub stats: Values<Estimate>,
    pub initial_mean_alignment: Option<Estimate>,
    /// Each group's mean change of alignment (trained − initial) over its completed cells.
    pub group_changes: Vec<(String, f64)>,
    pub paired: Paired,
}

impl Configuration {
    /// Completed cells.
    pub fn n(&self) -> usize {
        self.cells.len() - self.failed - self.missing
    }
}

/// A grid's report; [`Report::markdown`], [`Report::csv`] and [`Report::cells_csv`] print it.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Every key the cells set: the axes in order (the seed too), then keys only an
    /// `include` entry sets.
    pub keys: Vec<String>,
    /// The keys that tell configurations apart: `keys` without the seed axis.
    pub columns: Vec<String>,
    /// Whether the grid has a seed axis; without one each configuration is a single run
    /// and has no confidence interval.
    pub seeded: bool,
    /// The baseline as the axis spells its value.
    pub baseline: Option<(String, Value)>,
    /// In the order the outcomes came (the grid's cell order).
    pub cells: Vec<CellRow>,
    /// In order of their first cell.
    pub configurations: Vec<Configuration>,
}

impl Report {
    /// The report of `outcomes`, cells of the grid with `axes`; `baseline` (`(key, value)`)
    /// asks for differences paired by seed against the configurations with that value.
    pub fn build(
        axes: &[Axis],
        outcomes: &[CellOutcome],
        baseline: Option<(&str, &Value)>,
    ) -> Result<Report, ReportError> {
        let baseline = baseline
            .map(|(k, v)| check_baseline(axes, k, v))
            .transpose()?;
        let seeded = axes.iter().any(|a| a.key == SEED);
        let keys = keys(axes, outcomes);
        let columns: Vec<String> = keys
            .iter()
            .filter(|k| !(seeded && *k == SEED))
            .cloned()
            .collect();
        let cells: Vec<CellRow> = outcomes
            .iter()
            .map(|o| CellRow {
                cell: o.cell.clone(),
                dir: o.dir.clone(),
                status: Status::of(o),
            })
            .collect();
        let mut configurations = group(&columns, &cells);
        if let Some((key, value)) = &baseline {
            let at = columns
                .iter()
                .position(|c| c == key)
                .expect("a checked baseline is a non-seed axis, so a column");
            pair_all(&mut configurations, &cells, at, value);
        }
        Ok(Report {
            keys,
            columns,
            seeded,
            baseline,
            cells,
            configurations,
        })
    }

    /// Cells by status: (done, failed, missing).
    pub fn counts(&self) -> (usize, usize, usize) {
        let count = |name| {
            self.cells
                .iter()
                .filter(|c| c.status.name() == name)
                .count()
        };
        (count("done"), count("failed"), count("missing"))
    }
}

/// The baseline as the axis spells it, or why it names nothing. Numbers match by value, so
/// that `0.10` finds the axis value `0.1`.
fn check_baseline(axes: &[Axis], key: &str, value: &Value) -> Result<(String, Value), ReportError> {
    let candidates = || {
        axes.iter()
            .filter(|a| a.key != SEED)
            .map(|a| a.key.clone())
            .collect()
    };
    if key == SEED {
        return Err(ReportError::SeedBaseline { axes: candidates() });
    }
    let Some(axis) = axes.iter().find(|a| a.key == key) else {
        return Err(ReportError::UnknownAxis {
            key: key.to_owned(),
            axes: candidates(),
        });
    };
    match axis.values.iter().find(|v| same(v, value)) {
        Some(v) => Ok((key.to_owned(), v.clone())),
        None => Err(ReportError::UnknownValue {
            key: key.to_owned(),
            value: show(value),
            values: axis.values.iter().map(show).collect(),
        }),
    }
}

/// Equal values, numbers compared as numbers (JSON keeps `1` and `1.0` apart).
fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// A value as people write it: strings without quotes, the rest as JSON.
fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The axis keys, then keys that only some cells set, in order of first appearance.
fn keys(axes: &[Axis], outcomes: &[CellOutcome]) -> Vec<String> {
    let mut keys: Vec<String> = axes.iter().map(|a| a.key.clone()).collect();
    for (key, _) in outcomes.iter().flat_map(|o| &o.cell.settings) {
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }
    keys
}

/// The configurations of `cells`, told apart by their values on `columns`.
fn group(columns: &[String], cells: &[CellRow]) -> Vec<Configuration> {
    let mut members: Vec<(Vec<Option<Value>>, Vec<usize>)> = Vec::new();
    for (i, row) in cells.iter().enumerate() {
        let values: Vec<Option<Value>> = columns.iter().map(|k| row.cell.get(k).cloned()).collect();
        match members.iter_mut().find(|(v, _)| *v == values) {
            Some((_, cells)) => cells.push(i),
            None => members.push((values, vec![i])),
        }
    }
    members
        .into_iter()
        .map(|(values, members)| configuration(values, members, cells))
        .collect()
}

fn configuration(
    values: Vec<Option<Value>>,
    members: Vec<usize>,
    cells: &[CellRow],
) -> Configuration {
    let status = |name| {
        members
            .iter()
            .filter(|&&i| cells[i].status.name() == name)
            .count()
    };
    let done: Vec<&Measured> = members
        .iter()
        .filter_map(|&i| cells[i].status.measured())
        .collect();
    let estimate = |value: &dyn Fn(&Measured) -> Option<f64>| {
        Estimate::of(&done.iter().filter_map(|m| value(m)).collect::<Vec<_>>())
    };
    Configuration {
        stats: Quantity::ALL.map(|q| estimate(&|m| m.values[q.slot()])),
        initial_mean_alignment: estimate(&|m| m.initial_mean_alignment),
        group_changes: group_changes(&done),
        failed: status("failed"),
        missing: status("missing"),
        values,
        cells: members,
        paired: Paired::Unpaired,
    }
}

/// Each group's change of alignment, averaged over the cells that measured it.
fn group_changes(done: &[&Measured]) -> Vec<(String, f64)> {
    let mut changes: Vec<(String, Vec<f64>)> = Vec::new();
    for g in done.iter().flat_map(|m| &m.groups) {
        let change = g.trained - g.initial;
        match changes.iter_mut().find(|(name, _)| *name == g.group) {
            Some((_, all)) => all.push(change),
            None => changes.push((g.group.clone(), vec![change])),
        }
    }
    changes
        .into_iter()
        .map(|(group, all)| (group, all.iter().sum::<f64>() / all.len() as f64))
        .collect()
}

/// Marks the baseline configurations (value `value` in column `at`) and pairs every other
/// configuration with the baseline one that agrees with it on every other column.
fn pair_all(configurations: &mut [Configuration], cells: &[CellRow], at: usize, value: &Value) {
    let is_baseline = |c: &Configuration| c.values[at].as_ref() == Some(value);
    let paired: Vec<Paired> = configurations
        .iter()
        .map(|c| {
            if is_baseline(c) {
                return Paired::Baseline;
            }
            let others_agree = |b: &Configuration| {
                (0..c.values.len()).all(|k| k == at || b.values[k] == c.values[k])
            };
            match configurations
                .iter()
                .find(|b| is_baseline(b) && others_agree(b))
            {
                Some(b) => pair(cells, &c.cells, &b.cells),
                None => Paired::Unpaired,
            }
        })
        .collect();
    for (c, p) in configurations.iter_mut().zip(paired) {
        c.paired = p;
    }
}

/// Differences `ours − theirs` between completed cells of the same seed (each seed once).
fn pair(cells: &[CellRow], ours: &[usize], theirs: &[usize]) -> Paired {
    let done = |members: &[usize]| -> Vec<(Option<&Value>, &Measured)> {
        let mut seen = Vec::new();
        let mut done = Vec::new();
        for &i in members {
            if let Some(m) = cells[i].status.measured() {
                let seed = cells[i].seed();
                if !seen.contains(&seed) {
                    seen.push(seed);
                    done.push((seed, m));
                }
            }
        }
        done
    };
    let theirs = done(theirs);
    let pairs: Vec<(&Measured, &Measured)> = done(ours)
        .into_iter()
        .filter_map(|(seed, a)| {
            theirs
                .iter()
                .find(|(s, _)| *s == seed)
                .map(|(_, b)| (a, *b))
        })
        .collect();
    let delta = |q: Quantity| {
        let diffs: Vec<f64> = pairs
            .iter()
            .filter_map(|(a, b)| Some(a.values[q.slot()]? - b.values[q.slot()]?))
            .collect();
        Estimate::of(&diffs)
    };
    Paired::Against {
        pairs: pairs.len(),
        deltas: Quantity::ALL.map(delta),
    }
}
