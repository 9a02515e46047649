//! One test per WVS rule, on two tiny group files (`fixtures/wvs/rules/{A,B}.json`) whose
//! question ids name the anomaly they carry. A supplies the text; B is the other group.
use std::path::PathBuf;

use chorus_surveys::spec::{WvsSpec, DEFAULT_MAX_EXCESS, DEFAULT_MIN_ANSWERED};
use chorus_surveys::{DataSpec, Dataset, DropReason, Repair};

fn load() -> Dataset {
    let spec = DataSpec::WvsJson(WvsSpec {
        groups: [("A", "A.json"), ("B", "B.json")]
            .map(|(g, f)| (g.to_owned(), f.to_owned()))
            .into(),
        text_from: "A".into(),
        eval_only: vec!["B".into()],
        min_answered: DEFAULT_MIN_ANSWERED,
        max_excess: DEFAULT_MAX_EXCESS,
    });
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wvs/rules");
    spec.load(&dir).expect("the fixture loads")
}

fn dropped(d: &Dataset, group: &str, reason: DropReason) -> usize {
    let g = d.report.group(group).unwrap();
    g.dropped.get(&reason).copied().unwrap_or(0)
}

fn repaired(d: &Dataset, group: &str, repair: Repair) -> usize {
    let g = d.report.group(group).unwrap();
    g.repaired.get(&repair).copied().unwrap_or(0)
}

fn kept(d: &Dataset, id: &str) -> Option<usize> {
    d.questions.iter().position(|q| q.id == id)
}

#[test]
fn every_entry_is_counted_once_as_kept_or_under_one_reason() {
    let d = load();
    let a = d.report.group("A").unwrap();
    let b = d.report.group("B").unwrap();
    assert_eq!((a.found, a.kept, a.dropped_total()), (22, 6, 16));
    assert_eq!((b.found, b.kept, b.dropped_total()), (24, 6, 18));
    let ids: Vec<&str> = d.questions.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "clean",
            "renormalised",
            "mostly_answered",
            "unspaced",
            "reordered",
            "zero_share_extra_key"
        ]
    );
    assert!(d.groups[1].eval_only && !d.groups[0].eval_only);
    for g in &d.groups {
        for dist in &g.distributions {
            assert!((dist.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        }
    }
}

#[test]
fn shares_summing_near_one_are_renormalised_as_rounding() {
    let d = load();
    let q = kept(&d, "renormalised").expect("kept");
    let a = &d.groups[0].distributions[q];
    assert!((a[0] - 0.5 / 0.97).abs() < 1e-12 && (a[1] - 0.47 / 0.97).abs() < 1e-12);
    let clean = kept(&d, "clean").unwrap();
    assert_eq!(d.groups[0].distributions[clean], [0.6, 0.4]);
}

#[test]
fn shares_summing_well_below_one_are_renormalised_over_substantive_answers() {
    let d = load();
    // 0.5 and 0.3: a fifth chose no listed option; the rest split 5:3.
    let q = kept(&d, "mostly_answered").expect("kept");
    let a = &d.groups[0].distributions[q];
    assert!((a[0] - 0.625).abs() < 1e-12 && (a[1] - 0.375).abs() < 1e-12);
    let (ra, rb) = (d.report.group("A").unwrap(), d.report.group("B").unwrap());
    assert_eq!((ra.renormalised, ra.renormalised_substantive), (2, 1));
    assert_eq!(ra.renormalised_rounding(), 1);
    assert_eq!((rb.renormalised, rb.renormalised_substantive), (0, 0));
}

#[test]
fn too_little_answered_or_a_sum_above_one_plus_max_excess_drops_the_question() {
    let d = load();
    // 0.49 < 0.5, and 1.06 > 1.05.
    assert!(kept(&d, "too_little_answered").is_none() && kept(&d, "sum_above_one").is_none());
    assert_eq!(dropped(&d, "A", DropReason::TooLittleAnswered), 1);
    assert_eq!(dropped(&d, "A", DropReason::SumAboveOne), 1);
}

#[test]
fn a_missing_space_after_the_number_is_accepted_and_counted() {
    let d = load();
    let q = kept(&d, "unspaced").expect("kept");
    assert_eq!(d.questions[q].options, ["Yes", "No"]);
    assert_eq!(repaired(&d, "A", Repair::UnspacedNumber), 1);
}

#[test]
fn options_out_of_order_are_sorted_by_number_with_their_shares() {
    let d = load();
    let q = kept(&d, "reordered").expect("kept");
    assert_eq!(d.questions[q].options, ["Good", "So-so", "Bad"]);
    assert_eq!(d.groups[0].distributions[q], [0.2, 0.3, 0.5]);
    assert_eq!(repaired(&d, "A", Repair::OptionsReordered), 1);
}

#[test]
fn a_zero_share_key_without_option_is_removed_and_counted() {
    let d = load();
    let q = kept(&d, "zero_share_extra_key").expect("kept");
    assert_eq!(d.groups[0].distributions[q].len(), 3);
    assert_eq!(repaired(&d, "A", Repair::ZeroShareKeyRemoved), 1);
}

#[test]
fn keys_that_disagree_with_the_options_drop_the_question() {
    let d = load();
    assert!(kept(&d, "extra_key").is_none() && kept(&d, "missing_key").is_none());
    assert_eq!(dropped(&d, "A", DropReason::DistributionMismatch), 2);
}

#[test]
fn an_option_without_its_number_drops_the_question() {
    let d = load();
    assert!(kept(&d, "unnumbered").is_none());
    assert_eq!(dropped(&d, "A", DropReason::UnnumberedOption), 1);
}

#[test]
fn options_not_numbered_one_to_k_drop_the_question() {
    let d = load();
    assert!(kept(&d, "ends_only").is_none());
    assert_eq!(dropped(&d, "A", DropReason::NumberingNot1ToK), 1);
}

#[test]
fn a_single_option_drops_the_question() {
    let d = load();
    assert!(kept(&d, "one_option").is_none());
    assert_eq!(dropped(&d, "A", DropReason::TooFewOptions), 1);
}

#[test]
fn a_share_that_is_a_string_or_negative_drops_the_question() {
    let d = load();
    assert!(kept(&d, "string_share").is_none() && kept(&d, "negative_share").is_none());
    assert_eq!(dropped(&d, "A", DropReason::InvalidShare), 1);
    assert_eq!(dropped(&d, "B", DropReason::InvalidShare), 1);
}

#[test]
fn missing_fields_drop_the_entry_and_name_the_field() {
    let d = load();
    assert_eq!(dropped(&d, "A", DropReason::MissingField("options")), 1);
    assert_eq!(
        dropped(&d, "B", DropReason::MissingField("distribution")),
        1
    );
    assert_eq!(dropped(&d, "B", DropReason::MissingField("id")), 1);
    // Only the text group needs question text: B's `no_text` is valid, dropped for A's sake.
    assert_eq!(
        dropped(&d, "A", DropReason::MissingField("question_text")),
        1
    );
    assert!(kept(&d, "no_text").is_none());
}

#[test]
fn a_duplicated_id_drops_every_copy() {
    let d = load();
    assert!(kept(&d, "duplicated").is_none());
    assert_eq!(dropped(&d, "B", DropReason::DuplicateId), 2);
}

#[test]
fn shares_identical_to_another_groups_drop_the_question_in_both_and_are_noted() {
    let d = load();
    assert!(kept(&d, "copied").is_none());
    assert_eq!(dropped(&d, "A", DropReason::IdenticalToAnotherGroup), 1);
    assert_eq!(dropped(&d, "B", DropReason::IdenticalToAnotherGroup), 1);
    assert_eq!(
        d.report.notes[0],
        "A and B give identical shares for 1 question, dropped: copied"
    );
}

#[test]
fn a_question_missing_or_dropped_in_one_group_is_dropped_in_all() {
    let d = load();
    assert_eq!(dropped(&d, "A", DropReason::NotInEveryGroup), 1);
    assert_eq!(dropped(&d, "B", DropReason::NotInEveryGroup), 1);
    // A drops 10 that B has valid; B drops 3 that A has valid.
    assert_eq!(dropped(&d, "B", DropReason::DroppedInAnotherGroup), 10);
    assert_eq!(dropped(&d, "A", DropReason::DroppedInAnotherGroup), 3);
}

#[test]
fn different_option_counts_across_groups_drop_the_question() {
    let d = load();
    assert!(kept(&d, "option_count_differs").is_none());
    assert_eq!(dropped(&d, "A", DropReason::OptionsDisagreeAcrossGroups), 1);
    assert_eq!(dropped(&d, "B", DropReason::OptionsDisagreeAcrossGroups), 1);
}

#[test]
fn most_common_response_is_not_read_but_its_disagreements_are_noted() {
    let d = load();
    let note = &d.report.notes[1];
    assert!(
        note.contains("other than the largest share in A 1"),
        "{note}"
    );
    assert!(note.contains("absent in A 3, B 6"), "{note}");
}

#[test]
fn text_and_topic_come_from_the_text_group() {
    let d = load();
    let q = &d.questions[kept(&d, "clean").unwrap()];
    assert_eq!(q.text, "Question clean?");
    assert_eq!(q.topic.as_deref(), Some("TRUST"));
    assert_eq!(d.questions[1].topic, None);
    assert_eq!(d.max_options(), 3);
    assert!(d.check_letters(3).is_ok());
    let e = d.check_letters(2).unwrap_err().to_string();
    assert!(e.contains("question reordered has 3 options"), "{e}");
}

#[test]
fn the_report_prints_as_a_table() {
    let text = load().report.to_string();
    // Compared with runs of spaces squeezed, so that column widths may change.
    let squeezed: Vec<String> = text
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    for line in [
        "wvs_json: 6 questions kept for 2 groups, 2 to 3 options; shares summing to between 0.5 and 1 + 0.05 are divided by their sum",
        "group found kept renormalised dropped",
        "A 22 6 2 16",
        "B* 24 6 0 18",
        "(* evaluated only, never trained on)",
        "renormalised, among kept questions:",
        "A B*",
        "over_substantive_answers 1 0 sum below 0.95: divided among those who chose a listed option",
        "rounding 1 0 sum within 0.05 of 1",
        "too_little_answered 1 0 listed shares sum below `min_answered`: too few chose a listed option",
        "sum_above_one 1 0 listed shares sum above 1 + `max_excess`",
        "missing_field(question_text) 1 0 `question_text` missing, empty or of the wrong type",
        "duplicate_id 0 2 the id occurs more than once in the file",
        "options_reordered 1 0 options listed out of numeric order, sorted",
    ] {
        assert!(squeezed.iter().any(|l| l == line), "`{line}` not in:\n{text}");
    }
}
