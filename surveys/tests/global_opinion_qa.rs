//! The GlobalOpinionQA reader on a fixture CSV written for it
//! (`fixtures/global_opinion_qa/global_opinion_qa.csv`: each row carries one anomaly, named
//! in the comments below by data row, header not counted), and on the real CSV when it is
//! present.
use std::path::{Path, PathBuf};

use chorus_surveys::spec::{GlobalOpinionQaSpec, DEFAULT_MAX_EXCESS, DEFAULT_MIN_ANSWERED};
use chorus_surveys::{DataSpec, Dataset, DropReason, Repair};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/global_opinion_qa")
}

fn spec(groups: &[&str]) -> DataSpec {
    DataSpec::GlobalOpinionQa(GlobalOpinionQaSpec {
        path: "global_opinion_qa.csv".into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        eval_only: vec![],
        min_answered: DEFAULT_MIN_ANSWERED,
        max_excess: DEFAULT_MAX_EXCESS,
    })
}

fn load() -> Dataset {
    spec(&["Britain", "Germany"])
        .load(&dir())
        .expect("the fixture loads")
}

fn dropped(d: &Dataset, group: &str, reason: DropReason) -> usize {
    let g = d.report.group(group).unwrap();
    g.dropped.get(&reason).copied().unwrap_or(0)
}

fn question<'a>(d: &'a Dataset, id: &str) -> Option<(usize, &'a chorus_surveys::Question)> {
    d.questions.iter().enumerate().find(|(_, q)| q.id == id)
}

#[test]
fn each_country_is_counted_as_kept_or_under_one_reason() {
    let d = load();
    let ids: Vec<&str> = d.questions.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(
        ids,
        ["row-1", "row-2", "row-3", "row-4", "row-13", "row-18"]
    );
    let b = d.report.group("Britain").unwrap();
    let g = d.report.group("Germany").unwrap();
    assert_eq!((b.found, b.kept, b.renormalised), (15, 6, 2));
    assert_eq!((g.found, g.kept, g.renormalised), (14, 6, 2));
    assert_eq!(b.found, b.kept + b.dropped_total());
    assert_eq!(g.found, g.kept + g.dropped_total());
}

#[test]
fn options_in_both_quote_styles_with_escapes_are_read_as_python_would() {
    let d = load();
    assert_eq!(
        question(&d, "row-1").unwrap().1.options,
        ["Yes", "Don't know", "No"]
    );
    assert_eq!(
        question(&d, "row-2").unwrap().1.options,
        ["He said 'yes'", "She said \"no\"", "back\\slash"]
    );
    let (_, q) = question(&d, "row-13").unwrap();
    assert_eq!(q.text, "Which is true,\nA or B?");
    assert_eq!(q.topic, None);
}

#[test]
fn shares_near_one_or_well_below_are_renormalised_and_told_apart() {
    let d = load();
    let (i, _) = question(&d, "row-2").unwrap();
    let germany = &d.groups[1].distributions[i];
    for (got, raw) in germany.iter().zip([0.3, 0.3, 0.37]) {
        assert!((got - raw / 0.97).abs() < 1e-12, "{germany:?}");
    }
    let (i, _) = question(&d, "row-13").unwrap();
    assert!((d.groups[0].distributions[i][0] - 0.48 / 0.98).abs() < 1e-12);
    // Row 18: Britain's 0.6 and 0.3 leave a tenth outside the options, renormalised over
    // substantive answers; Germany's 0.55 and 0.4 sum to exactly 0.95, still rounding.
    let (i, _) = question(&d, "row-18").unwrap();
    assert!((d.groups[0].distributions[i][0] - 0.6 / 0.9).abs() < 1e-12);
    assert!((d.groups[1].distributions[i][0] - 0.55 / 0.95).abs() < 1e-12);
    let b = d.report.group("Britain").unwrap();
    let g = d.report.group("Germany").unwrap();
    assert_eq!(
        (b.renormalised_substantive, b.renormalised_rounding()),
        (1, 1)
    );
    assert_eq!(
        (g.renormalised_substantive, g.renormalised_rounding()),
        (0, 2)
    );
}

#[test]
fn a_second_spelling_is_renamed_merged_when_equal_and_dropped_when_not() {
    let d = load();
    let b = d.report.group("Britain").unwrap();
    assert_eq!(b.repaired.get(&Repair::SpellingNormalised), Some(&1)); // row 3
    assert_eq!(b.repaired.get(&Repair::SpellingsMerged), Some(&1)); // row 4
    let (i, _) = question(&d, "row-3").unwrap();
    assert_eq!(d.groups[0].distributions[i], [0.6, 0.4]);
    assert_eq!(dropped(&d, "Britain", DropReason::ConflictingSpellings), 1); // row 5
    assert!(question(&d, "row-5").is_none());
    let note = &d.report.notes[0];
    assert!(
        note.contains("`Great Britain` → `Britain` (3 rows)"),
        "{note}"
    );
    assert!(
        note.contains("`S. Korea` → `South Korea` (1 row)"),
        "{note}"
    );
}

#[test]
fn a_country_with_a_different_number_of_shares_than_options_is_dropped() {
    let d = load();
    assert_eq!(dropped(&d, "Germany", DropReason::ShareCountMismatch), 1); // row 6
    assert!(question(&d, "row-6").is_none());
}

#[test]
fn too_little_answered_or_a_sum_above_one_drops_the_row() {
    let d = load();
    assert_eq!(dropped(&d, "Britain", DropReason::TooLittleAnswered), 1); // row 7
    assert_eq!(dropped(&d, "Germany", DropReason::SumAboveOne), 1); // row 19
    assert!(question(&d, "row-7").is_none() && question(&d, "row-19").is_none());
}

#[test]
fn a_country_not_asked_drops_the_row_for_the_others() {
    let d = load();
    assert_eq!(dropped(&d, "Britain", DropReason::NotInEveryGroup), 1); // row 10

    // Rows 5 and 7 are dropped in Britain, rows 6, 12 and 19 in Germany.
    assert_eq!(dropped(&d, "Germany", DropReason::DroppedInAnotherGroup), 2);
    assert_eq!(dropped(&d, "Britain", DropReason::DroppedInAnotherGroup), 3);
}

#[test]
fn a_single_option_or_a_nan_share_drops_the_row() {
    let d = load();
    assert_eq!(dropped(&d, "Britain", DropReason::TooFewOptions), 1); // row 11
    assert_eq!(dropped(&d, "Germany", DropReason::TooFewOptions), 1);
    assert_eq!(dropped(&d, "Germany", DropReason::InvalidShare), 1); // row 12
}

#[test]
fn two_rows_with_the_same_question_and_options_are_both_dropped() {
    let d = load();
    assert!(question(&d, "row-16").is_none() && question(&d, "row-17").is_none());
    assert_eq!(dropped(&d, "Britain", DropReason::DuplicateText), 2);
    assert_eq!(dropped(&d, "Germany", DropReason::DuplicateText), 2);
}

#[test]
fn rows_that_do_not_parse_are_skipped_and_reported_by_row_and_line() {
    let d = load();
    let skipped: Vec<(usize, u64, &str)> = d
        .report
        .skipped_rows
        .iter()
        .map(|s| (s.row, s.line, s.reason.as_str()))
        .collect();
    assert_eq!(
        skipped,
        [
            (
                8,
                9,
                "`selections` does not parse: expected `,` or `]` at column 73"
            ),
            (
                9,
                10,
                "`options` does not parse: string not closed at column 9"
            ),
            (14, 16, "2 fields where the header has 4"),
            (
                15,
                17,
                "`selections` is not a dict from country names to lists"
            ),
        ]
    );
    let text = d.report.to_string();
    assert!(text.contains("skipped rows (4; no country is counted in them):"));
    assert!(text.contains("  row 14 (line 16): 2 fields where the header has 4"));
}

#[test]
fn an_unknown_country_suggests_the_nearest_name() {
    let e = spec(&["Britain", "Germny"])
        .load(&dir())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("global_opinion_qa.csv: country `Germny` is not in the data"),
        "{e}"
    );
    assert!(e.contains("did you mean `Germany`?"), "{e}");
    assert!(
        e.contains("4 countries in the file, 4 rows unreadable"),
        "{e}"
    );
    let e = spec(&["Great Britain"])
        .load(&dir())
        .unwrap_err()
        .to_string();
    assert!(e.contains("request `Britain`"), "{e}");
    let e = spec(&["Atlantis"]).load(&dir()).unwrap_err().to_string();
    assert!(e.contains("check the spelling"), "{e}");
}

#[test]
fn countries_never_asked_together_are_an_error() {
    let e = spec(&["Germany", "France"])
        .load(&dir())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no row of"), "{e}");
    assert!(e.contains("Germany in 14, France in 1"), "{e}");
}

/// The published CSV (github.com/anthropics, Hugging Face `Anthropic/llm_global_opinions`)
/// is not in the repository; where a checkout has it at `../shared/data/global_opinions.csv`
/// this test reads it. It checks only that the file loads with the accounting intact: its
/// real anomalies have not been surveyed the way the WVS files were.
#[test]
fn shared_global_opinions_csv_loads_when_present() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/global_opinions.csv");
    if !path.exists() {
        println!(
            "SKIPPED, nothing checked: {} is absent on this machine",
            path.display()
        );
        return;
    }
    let spec = DataSpec::GlobalOpinionQa(GlobalOpinionQaSpec {
        path: path.display().to_string(),
        groups: vec!["Britain".into(), "Germany".into()],
        eval_only: vec![],
        min_answered: DEFAULT_MIN_ANSWERED,
        max_excess: DEFAULT_MAX_EXCESS,
    });
    let d = spec.load(Path::new("/")).expect("the shared CSV loads");
    println!("{}", d.report);
    for g in &d.report.groups {
        assert_eq!(g.found, g.kept + g.dropped_total(), "{}", g.name);
    }
    assert!(d.report.questions > 0);
}
