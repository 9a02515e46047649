//! Reports of hand-built grids whose statistics are worked out by hand in the comments
//! (t_{0.975}: 12.706205 at 1 dof, 4.302653 at 2).
use std::path::PathBuf;

use serde_json::{json, Value};

use super::*;
use crate::record::{StageEvaluation, Summary};
use crate::stage::Evaluation;

fn evaluation(stage: &str, round: u32, alignment: [f64; 2], fairness: [f64; 4]) -> StageEvaluation {
    let names = ["mean", "worst_group", "jain", "gap"];
    StageEvaluation {
        stage: stage.to_owned(),
        round,
        evaluation: Evaluation {
            policy: "policy".to_owned(),
            groups: vec!["a".to_owned(), "b".to_owned()],
            alignment: alignment.to_vec(),
            fairness: names.iter().map(|n| n.to_string()).zip(fairness).collect(),
        },
    }
}

/// A paper.yaml-like run: `initial` at round 0 (alignment a 0.5, b 0.3; mean 0.4) and
/// `evaluate` at round 60 with mean alignment `mean` (a = mean + 0.05, b = mean − 0.05,
/// worst group mean − 0.05, Jain 0.99, gap 0.1).
fn trained(mean: f64, reward: f64, seconds: f64) -> Summary {
    Summary {
        evaluations: vec![
            evaluation(
                "evaluate",
                60,
                [mean + 0.05, mean - 0.05],
                [mean, mean - 0.05, 0.99, 0.1],
            ),
            evaluation("initial", 0, [0.5, 0.3], [0.4, 0.3, 0.94, 0.2]),
        ],
        final_reward: Some(reward),
        seconds,
    }
}

fn cell(index: usize, settings: &[(&str, Value)]) -> Cell {
    Cell {
        index,
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

fn outcome(index: usize, settings: &[(&str, Value)], result: Result<Summary, &str>) -> CellOutcome {
    let (summary, error) = match result {
        Ok(s) => (Some(s), None),
        Err(e) => (None, Some(e.to_owned())),
    };
    CellOutcome {
        cell: cell(index, settings),
        dir: PathBuf::from(format!("runs/grid/cells/paper-{index:02}")),
        summary,
        error,
    }
}

fn axis(key: &str, values: &[Value]) -> Axis {
    Axis {
        key: key.to_owned(),
        values: values.to_vec(),
    }
}

fn rule_seed_axes() -> Vec<Axis> {
    vec![
        axis(
            "aggregate.rule",
            &[json!("mean"), json!("min"), json!("max")],
        ),
        axis("seed", &[json!(1), json!(2), json!(3)]),
    ]
}

/// Rules × seeds 1..=3. Mean alignment: mean 0.70, 0.72, 0.74; min 0.71, 0.75, 0.76;
/// max 0.60, 0.64 and a failure on seed 3. Seconds: mean 10, 12, 14.5; min one more each.
fn rule_seed_outcomes() -> Vec<CellOutcome> {
    let at = |rule: &str, seed: i64| [("aggregate.rule", json!(rule)), ("seed", json!(seed))];
    vec![
        outcome(0, &at("mean", 1), Ok(trained(0.70, 0.3, 10.0))),
        outcome(1, &at("mean", 2), Ok(trained(0.72, 0.3, 12.0))),
        outcome(2, &at("mean", 3), Ok(trained(0.74, 0.3, 14.5))),
        outcome(3, &at("min", 1), Ok(trained(0.71, 0.2, 11.0))),
        outcome(4, &at("min", 2), Ok(trained(0.75, 0.2, 13.0))),
        outcome(5, &at("min", 3), Ok(trained(0.76, 0.2, 15.5))),
        outcome(6, &at("max", 1), Ok(trained(0.60, 0.2, 10.0))),
        outcome(7, &at("max", 2), Ok(trained(0.64, 0.2, 10.0))),
        outcome(
            8,
            &at("max", 3),
            Err("stage `ppo` failed: loss is NaN, at round 7\n  hint: lower the learning rate"),
        ),
    ]
}

fn report(baseline: Option<(&str, &Value)>) -> Report {
    Report::build(&rule_seed_axes(), &rule_seed_outcomes(), baseline).unwrap()
}

fn close(actual: f64, expected: f64) {
    assert!((actual - expected).abs() < 1e-6, "{actual} vs {expected}");
}

fn check(e: Option<Estimate>, n: usize, mean: f64, ci95: Option<f64>) {
    let e = e.expect("an estimate");
    assert_eq!(e.n, n);
    close(e.mean, mean);
    match (e.ci95, ci95) {
        (Some(a), Some(b)) => close(a, b),
        (a, b) => assert_eq!(a, b),
    }
}

fn stat(c: &Configuration, q: Quantity) -> Option<Estimate> {
    c.stats[q.slot()]
}

/// mean: 0.72, sd 0.02, half-width 4.302653 · 0.02/√3 = 0.049683.
/// min: 0.74, deviations −0.03, 0.01, 0.02, sd √(0.0014/2) = 0.026458, half-width 0.065724.
/// max: seeds 1 and 2 only: 0.62, sd 0.028284, half-width 12.706205 · 0.028284/√2 = 0.254124.
/// Seconds of mean: 12.1667, sd 2.254625, half-width 5.600799. Gap is 0.1 everywhere: CI 0.
#[test]
fn means_and_intervals_over_seeds() {
    let r = report(None);
    assert_eq!(r.columns, ["aggregate.rule"]);
    assert!(r.seeded);
    let [mean, min, max] = &r.configurations[..] else {
        panic!("three configurations, got {:?}", r.configurations.len());
    };
    assert_eq!(mean.values, [Some(json!("mean"))]);
    assert_eq!(mean.cells, [0, 1, 2]);
    check(
        stat(mean, Quantity::MeanAlignment),
        3,
        0.72,
        Some(0.049_683),
    );
    check(stat(mean, Quantity::WorstGroup), 3, 0.67, Some(0.049_683));
    check(stat(mean, Quantity::Gap), 3, 0.1, Some(0.0));
    check(stat(mean, Quantity::Jain), 3, 0.99, Some(0.0));
    check(stat(mean, Quantity::FinalReward), 3, 0.3, Some(0.0));
    check(
        stat(mean, Quantity::Seconds),
        3,
        12.166_667,
        Some(5.600_799),
    );
    check(stat(min, Quantity::MeanAlignment), 3, 0.74, Some(0.065_724));
    assert_eq!((max.n(), max.failed, max.missing), (2, 1, 0));
    check(stat(max, Quantity::MeanAlignment), 2, 0.62, Some(0.254_124));
    assert_eq!(r.counts(), (8, 1, 0));
}

/// Against mean, by seed: min − mean = 0.01, 0.03, 0.02 → 0.02, sd 0.01, half-width
/// 4.302653 · 0.01/√3 = 0.024841; seconds +1 each → 1 ± 0. max − mean on seeds 1 and 2
/// only (its seed 3 failed): −0.10, −0.08 → −0.09, sd 0.014142, half-width 12.706205 ·
/// 0.014142/√2 = 0.127062.
#[test]
fn differences_paired_by_seed() {
    let r = report(Some(("aggregate.rule", &json!("mean"))));
    assert_eq!(
        r.baseline,
        Some(("aggregate.rule".to_owned(), json!("mean")))
    );
    assert_eq!(r.configurations[0].paired, Paired::Baseline);
    let deltas = |i: usize| match &r.configurations[i].paired {
        Paired::Against { pairs, deltas } => (*pairs, *deltas),
        other => panic!("configuration {i} is {other:?}"),
    };
    let (pairs, min) = deltas(1);
    assert_eq!(pairs, 3);
    check(
        min[Quantity::MeanAlignment.slot()],
        3,
        0.02,
        Some(0.024_841),
    );
    check(min[Quantity::Seconds.slot()], 3, 1.0, Some(0.0));
    check(min[Quantity::FinalReward.slot()], 3, -0.1, Some(0.0));
    let (pairs, max) = deltas(2);
    assert_eq!(pairs, 2);
    check(
        max[Quantity::MeanAlignment.slot()],
        2,
        -0.09,
        Some(0.127_062),
    );
}

#[test]
fn markdown_shows_every_section() {
    let md = report(Some(("aggregate.rule", &json!("mean")))).markdown();
    for expected in [
        "# Grid report",
        "9 cells: 8 done, 1 failed, 0 missing; 3 configurations of `aggregate.rule`.",
        "final trained evaluation: stage `evaluate` at round 60.",
        "## Mean ± 95% CI over seeds",
        "| aggregate.rule | n | mean alignment | worst group | Jain | gap | final reward | seconds |",
        "| mean | 3 | 0.7200 ± 0.0497 | 0.6700 ± 0.0497 | 0.9900 ± 0.0000 | 0.1000 ± 0.0000 | 0.3000 ± 0.0000 | 12.2 ± 5.6 |",
        "| max | 2 (1 failed) | 0.6200 ± 0.2541 |",
        "## Paired by seed against aggregate.rule=mean",
        "| mean | — | 0 | 0 | 0 | 0 | 0 | 0 |",
        "| min | 3 | +0.0200 ± 0.0248 | +0.0200 ± 0.0248 | +0.0000 ± 0.0000 | +0.0000 ± 0.0000 | -0.1000 ± 0.0000 | +1.0 ± 0.0 |",
        "| max | 2 | -0.0900 ± 0.1271 |",
        "## Does the policy move?",
        "Initial: stage `initial` at round 0.",
        // mean: a 0.77 − 0.5 = +0.27, b 0.67 − 0.3 = +0.37 on average.
        "| mean | 3 | 0.4000 → 0.7200 (+0.3200) | +0.3700 (b) | +0.2700 (a) |",
        "## Failed cells",
        "- cell 8 (`aggregate.rule=max seed=3`, runs/grid/cells/paper-08): stage `ppo` failed: loss is NaN, at round 7\n",
    ] {
        assert!(md.contains(expected), "missing {expected:?} in\n{md}");
    }
    assert!(
        !md.contains("lower the learning rate"),
        "only an error's first line"
    );
}

/// Without a seed axis every configuration is one run: n = 1, no ±, and a pairing is one
/// pair without an interval.
#[test]
fn a_grid_without_seeds_has_no_intervals() {
    let axes = vec![axis("aggregate.rule", &[json!("mean"), json!("min")])];
    let outcomes = vec![
        outcome(
            0,
            &[("aggregate.rule", json!("mean"))],
            Ok(trained(0.70, 0.3, 10.0)),
        ),
        outcome(
            1,
            &[("aggregate.rule", json!("min"))],
            Ok(trained(0.75, 0.2, 11.0)),
        ),
    ];
    let r = Report::build(&axes, &outcomes, Some(("aggregate.rule", &json!("mean")))).unwrap();
    assert!(!r.seeded);
    check(
        stat(&r.configurations[1], Quantity::MeanAlignment),
        1,
        0.75,
        None,
    );
    let Paired::Against { pairs: 1, deltas } = r.configurations[1].paired else {
        panic!("{:?}", r.configurations[1].paired);
    };
    check(deltas[Quantity::MeanAlignment.slot()], 1, 0.05, None);
    let md = r.markdown();
    assert!(md.contains("n = 1"), "{md}");
    assert!(
        md.contains("| min | 1 | 0.7500 | 0.7000 | 0.9900 |"),
        "{md}"
    );
    assert!(md.contains("| min | 1 | +0.0500 | +0.0500 |"), "{md}");
    let rows = md.lines().filter(|l| l.starts_with('|'));
    assert!(rows.clone().all(|l| !l.contains('±')), "{md}");
}

#[test]
fn a_baseline_outside_the_grid_says_what_to_write() {
    let outcomes = rule_seed_outcomes();
    let build = |key: &str, value: Value| {
        Report::build(&rule_seed_axes(), &outcomes, Some((key, &value)))
            .unwrap_err()
            .to_string()
    };
    let value = build("aggregate.rule", json!("median"));
    assert!(
        value.contains("`aggregate.rule=median` is not a value"),
        "{value}"
    );
    assert!(
        value.contains("hint: write aggregate.rule=VALUE with VALUE one of: mean, min, max"),
        "{value}"
    );
    let key = build("aggregate.rules", json!("mean"));
    assert!(key.contains("`aggregate.rules` is not an axis"), "{key}");
    assert!(key.contains("KEY one of: aggregate.rule"), "{key}");
    assert!(!key.contains("seed"), "the seed is no baseline: {key}");
    let seed = build("seed", json!(1));
    assert!(
        seed.contains("paired by seed") && seed.contains("KEY one of: aggregate.rule"),
        "{seed}"
    );
}

/// `0.10` names the axis value `0.1`, and the report keeps the axis's spelling.
#[test]
fn numeric_baselines_match_by_value() {
    let axes = vec![
        axis("ppo.lr", &[json!(0.1), json!(1)]),
        axis("seed", &[json!(1)]),
    ];
    let outcomes = vec![
        outcome(
            0,
            &[("ppo.lr", json!(0.1)), ("seed", json!(1))],
            Ok(trained(0.7, 0.3, 1.0)),
        ),
        outcome(
            1,
            &[("ppo.lr", json!(1)), ("seed", json!(1))],
            Ok(trained(0.6, 0.3, 1.0)),
        ),
    ];
    let one = serde_json::from_str::<Value>("1.0").unwrap();
    let r = Report::build(&axes, &outcomes, Some(("ppo.lr", &one))).unwrap();
    assert_eq!(r.baseline, Some(("ppo.lr".to_owned(), json!(1))));
    assert_eq!(r.configurations[1].paired, Paired::Baseline);
}

/// Pairs match on every other setting: with two temperatures, each tilted configuration is
/// paired with the mean configuration of its own temperature, and a configuration only an
/// include entry makes (no baseline twin) is listed as not paired.
#[test]
fn pairs_match_every_other_setting() {
    let axes = vec![
        axis("aggregate.rule", &[json!("mean"), json!("tilted")]),
        axis("temperature", &[json!(-1), json!(-2)]),
        axis("seed", &[json!(1)]),
    ];
    let at = |rule: &str, t: i64| {
        [
            ("aggregate.rule", json!(rule)),
            ("temperature", json!(t)),
            ("seed", json!(1)),
        ]
    };
    let mut outcomes = vec![
        outcome(0, &at("mean", -1), Ok(trained(0.70, 0.3, 1.0))),
        outcome(1, &at("mean", -2), Ok(trained(0.60, 0.3, 1.0))),
        outcome(2, &at("tilted", -1), Ok(trained(0.71, 0.3, 1.0))),
        outcome(3, &at("tilted", -2), Ok(trained(0.65, 0.3, 1.0))),
    ];
    let mut extra = at("tilted", -1).to_vec();
    extra.push(("ppo.lr", json!(0.01)));
    outcomes.push(outcome(4, &extra, Ok(trained(0.5, 0.3, 1.0))));
    let r = Report::build(&axes, &outcomes, Some(("aggregate.rule", &json!("mean")))).unwrap();
    assert_eq!(r.columns, ["aggregate.rule", "temperature", "ppo.lr"]);
    let delta = |i: usize| match &r.configurations[i].paired {
        Paired::Against { deltas, .. } => deltas[Quantity::MeanAlignment.slot()].unwrap().mean,
        other => panic!("{other:?}"),
    };
    close(delta(2), 0.01);
    close(delta(3), 0.05);
    assert_eq!(r.configurations[4].paired, Paired::Unpaired);
    let md = r.markdown();
    assert!(md.contains("Not paired (no aggregate.rule=mean configuration with the same other settings): tilted -1 0.01."), "{md}");
}

/// The final evaluation is the largest round (ties: the first stage id); the initial one
/// the smallest round before it (ties likewise); a run evaluated once has no initial.
#[test]
fn final_and_initial_evaluations() {
    let e = |stage: &str, round: u32, mean: f64| {
        evaluation(stage, round, [mean, mean], [mean, mean, 1.0, 0.0])
    };
    let summary = Summary {
        evaluations: vec![
            e("b_late", 60, 0.8),
            e("a_late", 60, 0.9),
            e("mid", 30, 0.6),
            e("z_start", 0, 0.2),
            e("initial", 0, 0.3),
        ],
        final_reward: None,
        seconds: 2.0,
    };
    let m = Measured::of(&summary);
    assert_eq!(
        m.last,
        Some(StageRound {
            stage: "a_late".to_owned(),
            round: 60
        })
    );
    assert_eq!(
        m.initial,
        Some(StageRound {
            stage: "initial".to_owned(),
            round: 0
        })
    );
    assert_eq!(m.values[Quantity::MeanAlignment.slot()], Some(0.9));
    assert_eq!(m.values[Quantity::FinalReward.slot()], None);
    assert_eq!(m.initial_mean_alignment, Some(0.3));
    let once = Summary {
        evaluations: vec![e("uniform", 0, 0.5), e("majority", 0, 0.6)],
        final_reward: None,
        seconds: 1.0,
    };
    let m = Measured::of(&once);
    assert_eq!(m.last.map(|s| s.stage), Some("majority".to_owned()));
    assert_eq!((m.initial, m.groups.len()), (None, 0));
}

#[test]
fn missing_cells_are_counted_and_named() {
    let mut outcomes = rule_seed_outcomes();
    outcomes[5].summary = None;
    let r = Report::build(&rule_seed_axes(), &outcomes, None).unwrap();
    assert_eq!(r.counts(), (7, 1, 1));
    let md = r.markdown();
    assert!(
        md.contains("9 cells: 7 done, 1 failed, 1 missing (cells 5)"),
        "{md}"
    );
    assert!(md.contains("| min | 2 (1 missing) |"), "{md}");
}

/// Splits CSV text into records of fields (RFC 4180: quoted fields may hold commas, doubled
/// quotes and line breaks), as pandas' reader does.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut records, mut record, mut field) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(
        !quoted && field.is_empty() && record.is_empty(),
        "text ends mid-record"
    );
    records
}

/// Both CSVs parse into a header and rows of equal width, numbers read back as numbers, and
/// a value with a comma and quotes survives quoting.
#[test]
fn csv_files_parse() {
    let mut outcomes = rule_seed_outcomes();
    let odd = json!("say \"hi\", twice");
    for o in &mut outcomes {
        o.cell.settings.push(("note".to_owned(), odd.clone()));
    }
    outcomes[8].error = Some("failed, with \"quotes\"\nand a second line".to_owned());
    let r = Report::build(
        &rule_seed_axes(),
        &outcomes,
        Some(("aggregate.rule", &json!("mean"))),
    )
    .unwrap();
    for text in [r.csv(), r.cells_csv()] {
        let records = parse_csv(&text);
        let width = records[0].len();
        assert!(records.iter().all(|r| r.len() == width), "{text}");
        assert!(records[1..]
            .iter()
            .all(|r| r.contains(&"say \"hi\", twice".to_owned())));
    }
    let csv = parse_csv(&r.csv());
    let col = |name: &str| {
        csv[0]
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    assert_eq!(csv[0][..3], ["aggregate.rule", "note", "n"]);
    assert_eq!(csv.len(), 4);
    let number = |row: usize, name: &str| csv[row][col(name)].parse::<f64>().unwrap();
    close(number(1, "mean_alignment_mean"), 0.72);
    close(number(1, "mean_alignment_ci95"), 0.049_683);
    close(number(1, "initial_mean_alignment_mean"), 0.4);
    assert_eq!(csv[1][col("delta_mean_alignment_mean")], "0");
    assert_eq!(csv[1][col("pairs")], "");
    close(number(3, "delta_mean_alignment_mean"), -0.09);
    close(number(3, "delta_mean_alignment_ci95"), 0.127_062);
    assert_eq!(csv[3][col("pairs")], "2");
    assert_eq!(csv[3][col("failed")], "1");

    let cells = parse_csv(&r.cells_csv());
    let col = |name: &str| {
        cells[0]
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    assert_eq!(cells.len(), 10);
    assert_eq!(cells[1][col("dir")], "runs/grid/cells/paper-00");
    assert_eq!(cells[1][col("final_stage")], "evaluate");
    assert_eq!(cells[1][col("mean_alignment")], "0.7");
    assert_eq!(cells[1][col("alignment_initial:b")], "0.3");
    assert_eq!(cells[9][col("status")], "failed");
    assert_eq!(cells[9][col("error")], "failed, with \"quotes\"");
    assert_eq!(cells[9][col("mean_alignment")], "");
}
