//! The built-in fairness metrics, each a function of the per-group scores (alignments, all
//! ≥ 0). Every evaluation reports all six; plugins and `evaluate.metrics` add more.
use chorus_plugin::{Metric, MetricError};

use super::MetricEntry;
use crate::registry::{ParamError, Source};

/// A built-in metric: a plain function of the scores.
#[derive(Debug)]
struct Formula(fn(&[f64]) -> f64);

impl Metric for Formula {
    fn compute(&self, scores: &[f64]) -> Result<f64, MetricError> {
        if scores.is_empty() {
            return Err(MetricError("no groups to measure".to_owned()));
        }
        Ok((self.0)(scores))
    }
}

fn entry(
    name: &'static str,
    description: &str,
    higher_is_fairer: bool,
    formula: fn(&[f64]) -> f64,
) -> MetricEntry {
    MetricEntry::new(
        name.to_owned(),
        env!("CARGO_PKG_VERSION").to_owned(),
        description.to_owned(),
        serde_json::json!({"type": "object", "additionalProperties": false}),
        higher_is_fairer,
        Source::BuiltIn,
        Box::new(move |knobs| match knobs.keys().next() {
            None => Ok(Box::new(Formula(formula)) as Box<dyn Metric>),
            Some(knob) => Err(vec![ParamError::invalid(
                knob,
                format!("the built-in metric `{name}` takes no knobs"),
                "remove it",
            )]),
        }),
    )
}

/// name, description, higher is fairer, formula; in the order summary.csv lists them.
type Builtin = (&'static str, &'static str, bool, fn(&[f64]) -> f64);
const BUILTINS: [Builtin; 6] = [
    ("mean", "mean score over groups", true, mean),
    (
        "worst_group",
        "the worst group's score (Rawlsian view)",
        true,
        worst_group,
    ),
    ("gap", "best minus worst group", false, gap),
    (
        "jain",
        "Jain's index (Σa)²/(G·Σa²): 1 equal, 1/G one group has all",
        true,
        jain,
    ),
    (
        "gini",
        "Gini coefficient: mean absolute difference over twice the mean",
        false,
        gini,
    ),
    (
        "cv",
        "coefficient of variation: population standard deviation over the mean",
        false,
        cv,
    ),
];

pub(super) fn builtins() -> Vec<MetricEntry> {
    BUILTINS
        .iter()
        .map(|&(name, description, higher, formula)| entry(name, description, higher, formula))
        .collect()
}

fn all_equal(scores: &[f64]) -> bool {
    scores.iter().all(|s| *s == scores[0])
}

pub fn mean(scores: &[f64]) -> f64 {
    scores.iter().sum::<f64>() / scores.len() as f64
}

pub fn worst_group(scores: &[f64]) -> f64 {
    scores.iter().copied().fold(f64::INFINITY, f64::min)
}

pub fn gap(scores: &[f64]) -> f64 {
    scores.iter().copied().fold(f64::NEG_INFINITY, f64::max) - worst_group(scores)
}

/// Jain's index; 1 for equal scores, even all 0, where the ratio would divide by zero.
pub fn jain(scores: &[f64]) -> f64 {
    if all_equal(scores) {
        return 1.0;
    }
    let sum: f64 = scores.iter().sum();
    sum * sum / (scores.len() as f64 * scores.iter().map(|a| a * a).sum::<f64>())
}

pub fn gini(scores: &[f64]) -> f64 {
    if all_equal(scores) {
        return 0.0;
    }
    let n = scores.len() as f64;
    let diffs: f64 = scores
        .iter()
        .flat_map(|a| scores.iter().map(move |b| (a - b).abs()))
        .sum();
    diffs / (2.0 * n * n * mean(scores))
}

pub fn cv(scores: &[f64]) -> f64 {
    if all_equal(scores) {
        return 0.0;
    }
    let m = mean(scores);
    let var = scores.iter().map(|a| (a - m).powi(2)).sum::<f64>() / scores.len() as f64;
    var.sqrt() / m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_scores_are_perfectly_fair() {
        let s = [0.8; 4];
        assert_eq!(jain(&s), 1.0);
        assert_eq!(gini(&s), 0.0);
        assert_eq!(cv(&s), 0.0);
        assert_eq!(gap(&s), 0.0);
        assert_eq!(jain(&[0.0, 0.0]), 1.0);
    }

    #[test]
    fn known_values() {
        let s = [1.0, 0.0, 0.0, 0.0];
        assert!((jain(&s) - 0.25).abs() < 1e-12);
        assert!((gini(&s) - 0.75).abs() < 1e-12);
        let s = [0.9, 0.6, 0.6];
        assert!((mean(&s) - 0.7).abs() < 1e-12);
        assert_eq!(worst_group(&s), 0.6);
        assert!((gap(&s) - 0.3).abs() < 1e-12);
        // (2.1)² / (3 · 1.53) = 0.960784…
        assert!((jain(&s) - 4.41 / 4.59).abs() < 1e-12);
        // σ = √(0.02) = 0.141421…, / 0.7
        assert!((cv(&s) - 0.02f64.sqrt() / 0.7).abs() < 1e-12);
    }

    #[test]
    fn entries_build_and_refuse_knobs() {
        let all = builtins();
        let names: Vec<&str> = all.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["mean", "worst_group", "gap", "jain", "gini", "cv"]);
        let jain_entry = &all[3];
        let m = jain_entry.build(&Default::default()).unwrap();
        assert_eq!(m.compute(&[1.0, 0.0, 0.0, 0.0]).unwrap(), 0.25);
        assert!(m.compute(&[]).is_err());
        let knobs = serde_json::json!({"epsilon": 1})
            .as_object()
            .unwrap()
            .clone();
        let err = jain_entry.build(&knobs).unwrap_err();
        assert!(err[0].message().contains("`jain`"), "{err:?}");
    }
}
