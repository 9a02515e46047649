//! The shared World Values Survey files (`../shared/data/wvs7`, read-only, never copied into
//! the repository). The expected numbers come from an independent check,
//! `tests/independent_check.py`, which applies the rules documented in `src/wvs.rs` to the raw
//! JSON with Python's own parser (its docstring has the commands); they are copied here from
//! its output, not taken from this crate's.
use std::collections::BTreeMap;
use std::path::PathBuf;

use chorus_surveys::spec::{WvsSpec, DEFAULT_MAX_EXCESS, DEFAULT_MIN_ANSWERED};
use chorus_surveys::{DataSpec, Dataset, DropReason, Repair};

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/wvs7")
}

fn load(groups: &[&str], text_from: &str, min_answered: f64) -> Dataset {
    let spec = DataSpec::WvsJson(WvsSpec {
        groups: groups
            .iter()
            .map(|g| (g.to_string(), format!("{g}.json")))
            .collect(),
        text_from: text_from.into(),
        eval_only: vec![],
        min_answered,
        max_excess: DEFAULT_MAX_EXCESS,
    });
    spec.load(&shared()).expect("the shared WVS files load")
}

/// found, kept, (renormalised over substantive answers, as rounding), dropped by reason,
/// repaired by repair.
type Counts = (
    usize,
    usize,
    (usize, usize),
    Vec<(DropReason, usize)>,
    Vec<(Repair, usize)>,
);

fn assert_counts(d: &Dataset, group: &str, want: Counts) {
    let g = d.report.group(group).expect("group reported");
    let (found, kept, (substantive, rounding), dropped, repaired) = want;
    assert_eq!(
        (
            g.found,
            g.kept,
            g.renormalised_substantive,
            g.renormalised_rounding()
        ),
        (found, kept, substantive, rounding),
        "{group}: found, kept, renormalised over substantive answers, as rounding"
    );
    assert_eq!(g.renormalised, substantive + rounding);
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
fn us_cn_jp_at_the_default_bounds_match_the_independent_check() {
    let d = load(&["US", "CN", "JP"], "US", DEFAULT_MIN_ANSWERED);
    assert_counts(
        &d,
        "US",
        (
            104,
            54,
            (0, 54),
            vec![
                (NumberingNot1ToK, 8),
                (DistributionMismatch, 2),
                (SumAboveOne, 2),
                (IdenticalToAnotherGroup, 16),
                (NotInEveryGroup, 22),
            ],
            vec![(Repair::ZeroShareKeyRemoved, 4)],
        ),
    );
    assert_counts(
        &d,
        "CN",
        (
            103,
            54,
            (2, 52),
            vec![
                (NumberingNot1ToK, 7),
                (NotInEveryGroup, 23),
                (DroppedInAnotherGroup, 19),
            ],
            vec![],
        ),
    );
    // Japan's shares often sum to 0.56–0.94 ("don't know" and no answer are not options):
    // renormalised over substantive answers, none below `min_answered`.
    assert_counts(
        &d,
        "JP",
        (
            103,
            54,
            (38, 15),
            vec![
                (NumberingNot1ToK, 7),
                (IdenticalToAnotherGroup, 16),
                (NotInEveryGroup, 23),
                (DroppedInAnotherGroup, 3),
            ],
            vec![],
        ),
    );
    let ids: Vec<&str> = d.questions.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "Q1", "Q2", "Q3", "Q4", "Q5", "Q6", "Q27", "Q28", "Q29", "Q30", "Q31", "Q32", "Q33",
            "Q34", "Q35", "Q38", "Q39", "Q40", "Q41", "Q42", "Q43", "Q44", "Q45", "Q57", "Q58",
            "Q59", "Q60", "Q61", "Q62", "Q63", "Q142", "Q143", "Q152", "Q154", "Q156", "Q165",
            "Q166", "Q167", "Q168", "Q169", "Q173", "Q174", "Q175", "Q199", "Q200", "Q208", "Q209",
            "Q210", "Q211", "Q212", "Q213", "Q214", "Q216", "Q221"
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
    let note = &d.report.notes[1];
    assert!(
        note.contains("other than the largest share in CN 15, US 3;"),
        "{note}"
    );
    assert!(note.contains("absent in US 1"), "{note}");
}

#[test]
fn cn_jp_with_japanese_text_match_the_independent_check() {
    let d = load(&["CN", "JP"], "JP", DEFAULT_MIN_ANSWERED);
    assert_counts(
        &d,
        "CN",
        (
            103,
            90,
            (3, 87),
            vec![
                (NumberingNot1ToK, 7),
                (NotInEveryGroup, 1),
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
            90,
            (50, 36),
            vec![
                (NumberingNot1ToK, 7),
                (NotInEveryGroup, 1),
                (DuplicateText, 5),
            ],
            vec![(Repair::UnspacedNumber, 1)],
        ),
    );
    let q171 = d.questions.iter().find(|q| q.id == "Q171").unwrap();
    assert_eq!(q171.options[3], "特別な聖なる日のみ");
    // Q51–Q55 share one text in JP's file (the item is missing): none is kept.
    assert!(!d.questions.iter().any(|q| q.id == "Q51" || q.id == "Q55"));
    assert_eq!(d.max_options(), 8);
    let note = &d.report.notes[0];
    assert!(
        note.contains("other than the largest share in CN 25, JP 2"),
        "{note}"
    );
}

#[test]
fn a_higher_min_answered_keeps_fewer_japanese_questions_as_the_independent_check_says() {
    let d = load(&["US", "CN", "JP"], "US", 0.8);
    let kept: Vec<_> = d.report.groups.iter().map(|g| g.kept).collect();
    assert_eq!(kept, [38, 38, 38]);
    let count = |g: &str, r: DropReason| d.report.group(g).unwrap().dropped.get(&r).copied();
    let too_little: Vec<_> = ["US", "CN", "JP"]
        .iter()
        .map(|g| count(g, TooLittleAnswered))
        .collect();
    assert_eq!(too_little, [None, Some(1), Some(18)]);
    assert_eq!(count("US", SumAboveOne), Some(2));
    for g in ["US", "JP"] {
        assert_eq!(count(g, IdenticalToAnotherGroup), Some(16));
    }
    let jp = d.report.group("JP").unwrap();
    assert_eq!(
        (jp.renormalised_substantive, jp.renormalised_rounding()),
        (22, 15)
    );
    let note = &d.report.notes[1];
    assert!(note.contains("largest share in CN 14;"), "{note}");
    assert!(note.contains("absent in US 1"), "{note}");
}
