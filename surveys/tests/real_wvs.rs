//! The shared World Values Survey files (`../shared/data/wvs7`, read-only, never copied into
//! the repository). The expected numbers come from an independent check: a Python script
//! that applies the rules documented in `src/wvs.rs` to the raw JSON, written and run when
//! these tests were; they are copied here, not taken from this crate's output.
use std::collections::BTreeMap;
use std::path::PathBuf;

use chorus_surveys::spec::{WvsSpec, DEFAULT_SUM_TOLERANCE};
use chorus_surveys::{DataSpec, Dataset, DropReason, Repair};

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/wvs7")
}

fn load(groups: &[&str], text_from: &str, tolerance: f64) -> Dataset {
    let spec = DataSpec::WvsJson(WvsSpec {
        groups: groups
            .iter()
            .map(|g| (g.to_string(), format!("{g}.json")))
            .collect(),
        text_from: text_from.into(),
        eval_only: vec![],
        sum_tolerance: tolerance,
    });
    spec.load(&shared()).expect("the shared WVS files load")
}

/// found, kept, renormalised, dropped by reason, repaired by repair.
type Counts = (
    usize,
    usize,
    usize,
    Vec<(DropReason, usize)>,
    Vec<(Repair, usize)>,
);

fn assert_counts(d: &Dataset, group: &str, want: Counts) {
    let g = d.report.group(group).expect("group reported");
    let (found, kept, renormalised, dropped, repaired) = want;
    assert_eq!(
        (g.found, g.kept, g.renormalised),
        (found, kept, renormalised),
        "{group}: found, kept, renormalised"
    );
    assert_eq!(
        g.dropped,
        dropped.into_iter().collect::<BTreeMap<_, _>>(),
        "{group}: dropped"
    );
    assert_eq!(
        g.repaired,
        repaired.into_iter().collect::<BTreeMap<_, _>>(),
        "{group}: repaired"
    );
    assert_eq!(
        g.found,
        g.kept + g.dropped_total(),
        "{group}: every entry counted once"
    );
}

use DropReason::*;

#[test]
fn us_cn_jp_at_the_default_tolerance_match_the_independent_check() {
    let d = load(&["US", "CN", "JP"], "US", DEFAULT_SUM_TOLERANCE);
    assert_counts(
        &d,
        "US",
        (
            104,
            16,
            16,
            vec![
                (NumberingNot1ToK, 8),
                (DistributionMismatch, 2),
                (SumOutOfTolerance, 9),
                (IdenticalToAnotherGroup, 9),
                (NotInEveryGroup, 22),
                (DroppedInAnotherGroup, 38),
            ],
            vec![(Repair::ZeroShareKeyRemoved, 3)],
        ),
    );
    assert_counts(
        &d,
        "CN",
        (
            103,
            16,
            16,
            vec![
                (NumberingNot1ToK, 7),
                (SumOutOfTolerance, 3),
                (NotInEveryGroup, 23),
                (DroppedInAnotherGroup, 54),
            ],
            vec![],
        ),
    );
    assert_counts(
        &d,
        "JP",
        (
            103,
            16,
            15,
            vec![
                (NumberingNot1ToK, 7),
                (SumOutOfTolerance, 51),
                (IdenticalToAnotherGroup, 9),
                (NotInEveryGroup, 18),
                (DroppedInAnotherGroup, 2),
            ],
            vec![],
        ),
    );
    let ids: Vec<&str> = d.questions.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "Q1", "Q2", "Q3", "Q4", "Q34", "Q41", "Q43", "Q44", "Q45", "Q58", "Q60", "Q156",
            "Q199", "Q200", "Q208", "Q221"
        ]
    );
    // Groups come out ordered by name; text is the US file's, numbering stripped.
    let names: Vec<&str> = d.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, ["CN", "JP", "US"]);
    let q1 = &d.questions[0];
    assert_eq!(q1.text, "How important is family in your life?");
    assert_eq!(q1.options[0], "Very important");
    assert_eq!(q1.topic.as_deref(), Some("SOCIAL VALUES"));
    // US Q1 is 0.91, 0.07, 0.01, 0.00 in the file: renormalised over their sum 0.99.
    let us = &d.groups[2].distributions[0];
    for (got, raw) in us.iter().zip([0.91, 0.07, 0.01, 0.0]) {
        assert!((got - raw / 0.99).abs() < 1e-12, "{us:?}");
    }
    // Q43 in the US file has a fourth key `"4": 0.0` and three options: kept with three.
    let q43 = d.questions.iter().position(|q| q.id == "Q43").unwrap();
    assert!(d.groups.iter().all(|g| g.distributions[q43].len() == 3));
    assert_eq!(d.max_options(), 5);
    // The US file holds the JP entries of 16 ethics questions, Japanese text included.
    assert_eq!(
        d.report.notes[0],
        "JP and US give identical shares for 16 questions, dropped: Q177, Q178, Q179, Q180, \
         Q181, Q182, Q184, Q185, Q187, Q188, Q189, Q190, Q191, Q192, Q194, Q195"
    );
    assert!(d.report.notes[1].contains("other than the largest share in CN 4"));
}

#[test]
fn cn_jp_with_japanese_text_match_the_independent_check() {
    let d = load(&["CN", "JP"], "JP", DEFAULT_SUM_TOLERANCE);
    assert_counts(
        &d,
        "CN",
        (
            103,
            39,
            39,
            vec![
                (NumberingNot1ToK, 7),
                (SumOutOfTolerance, 3),
                (NotInEveryGroup, 1),
                (DroppedInAnotherGroup, 48),
                (DuplicateText, 5),
            ],
            vec![],
        ),
    );
    // JP's Q171 lists `4.特別な聖なる日のみ`, without a space: kept, counted.
    assert_counts(
        &d,
        "JP",
        (
            103,
            39,
            35,
            vec![
                (NumberingNot1ToK, 7),
                (SumOutOfTolerance, 51),
                (DroppedInAnotherGroup, 1),
                (DuplicateText, 5),
            ],
            vec![(Repair::UnspacedNumber, 1)],
        ),
    );
    let q171 = d.questions.iter().find(|q| q.id == "Q171").unwrap();
    assert_eq!(q171.options[3], "特別な聖なる日のみ");
    // Q51–Q55 share one text in JP's file (the item is missing): none is kept.
    assert!(!d.questions.iter().any(|q| q.id == "Q51" || q.id == "Q55"));
    assert_eq!(
        d.report.notes[0].matches("CN 8").count(),
        1,
        "{}",
        d.report.notes[0]
    );
}

#[test]
fn a_wider_tolerance_keeps_more_japanese_questions_as_the_independent_check_says() {
    let d = load(&["US", "CN", "JP"], "US", 0.15);
    let kept: Vec<_> = d.report.groups.iter().map(|g| g.kept).collect();
    assert_eq!(kept, [33, 33, 33]);
    let sums: Vec<_> = ["US", "CN", "JP"]
        .iter()
        .map(|g| d.report.group(g).unwrap().dropped[&SumOutOfTolerance])
        .collect();
    assert_eq!(sums, [2, 1, 24]);
    for g in ["US", "JP"] {
        assert_eq!(
            d.report.group(g).unwrap().dropped[&IdenticalToAnotherGroup],
            16
        );
    }
    assert_eq!(d.report.group("JP").unwrap().renormalised, 32);
    let note = &d.report.notes[1];
    assert!(note.contains("largest share in CN 12;"), "{note}");
    assert!(note.contains("absent in US 1"), "{note}");
}
