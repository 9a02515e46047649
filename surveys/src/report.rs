//! What reading a dataset did: per group, how many questions were found, kept, renormalised
//! (over substantive answers, or by a rounding correction), repaired and dropped (and by which
//! rule), plus rows that did not parse and dataset-wide notes. `chorus data inspect` prints it;
//! a run can record it beside its numbers.
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

/// A kept question whose listed shares summed further than this below 1 was renormalised over
/// substantive answers (respondents who chose no listed option, like "don't know", left out);
/// within it of 1, either side, the renormalisation was a rounding correction. Only the
/// report's split depends on it; which questions are kept depends on the spec's
/// `min_answered` and `max_excess`.
pub const ROUNDING: f64 = 0.05;

/// Why a question was dropped for a group. A dropped question counts once, under the first
/// reason that applies, in the order its reader documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// The named field is absent or of the wrong JSON type (or empty, for text).
    MissingField(&'static str),
    /// The id occurs more than once in the group's file; which copy is right is unknowable.
    DuplicateId,
    /// GlobalOpinionQA: two spellings of one country in one row with different shares.
    ConflictingSpellings,
    /// An option does not start with its number (`3. Disagree`).
    UnnumberedOption,
    /// The option numbers are not exactly 1..k: a gap (`1.` and `10.`, the two ends of a
    /// 10-point scale) or a repeat means the listed options are not the whole answer scale.
    NumberingNot1ToK,
    /// Fewer than two options: nothing to choose between.
    TooFewOptions,
    /// A share that is not a number, negative, or not finite.
    InvalidShare,
    /// WVS: the distribution's keys are not the option numbers (beyond zero-share extras).
    DistributionMismatch,
    /// GlobalOpinionQA: a country has a different number of shares than the row has options.
    ShareCountMismatch,
    /// The listed shares sum below the spec's `min_answered`: too few respondents chose a
    /// listed option for their distribution to stand for the group.
    TooLittleAnswered,
    /// The listed shares sum above 1 + the spec's `max_excess`: more than rounding, so the
    /// numbers are wrong.
    SumAboveOne,
    /// WVS: the shares are exactly another requested group's for the same id, so at least one
    /// file holds a copy of the other's entry (the shared US file holds the JP entries for
    /// Q177–Q195, Japanese text included), and which one is the real answer is unknowable.
    IdenticalToAnotherGroup,
    /// Fine here, but at least one requested group does not have the question.
    NotInEveryGroup,
    /// Fine here, but dropped in another requested group for one of the reasons above.
    DroppedInAnotherGroup,
    /// Fine in every group, but the groups list different numbers of options.
    OptionsDisagreeAcrossGroups,
    /// Fine in every group, but another such question has the same text and options: a policy
    /// shown the prompt could not tell them apart, yet would be scored against two different
    /// distributions (the shared CN and JP files word Q51–Q55 identically, the item left out).
    DuplicateText,
}

impl DropReason {
    /// A sentence for the report's legend.
    pub fn describe(&self) -> String {
        match self {
            DropReason::MissingField(field) => {
                format!("`{field}` missing, empty or of the wrong type")
            }
            DropReason::DuplicateId => "the id occurs more than once in the file".into(),
            DropReason::UnnumberedOption => "an option does not start with `N.`".into(),
            DropReason::NumberingNot1ToK => {
                "option numbers are not 1..k (e.g. only the ends 1 and 10 of a scale)".into()
            }
            DropReason::TooFewOptions => "fewer than two options".into(),
            DropReason::InvalidShare => "a share is not a finite number >= 0".into(),
            DropReason::DistributionMismatch => {
                "distribution keys differ from the option numbers".into()
            }
            DropReason::ShareCountMismatch => "number of shares differs from options".into(),
            DropReason::ConflictingSpellings => {
                "two spellings of the country in one row with different shares".into()
            }
            DropReason::TooLittleAnswered => {
                "listed shares sum below `min_answered`: too few chose a listed option".into()
            }
            DropReason::SumAboveOne => "listed shares sum above 1 + `max_excess`".into(),
            DropReason::IdenticalToAnotherGroup => {
                "shares identical to another group's (a copied entry)".into()
            }
            DropReason::NotInEveryGroup => "missing in another requested group".into(),
            DropReason::DroppedInAnotherGroup => "dropped in another requested group".into(),
            DropReason::OptionsDisagreeAcrossGroups => {
                "groups list different numbers of options".into()
            }
            DropReason::DuplicateText => {
                "same text and options as another question otherwise kept".into()
            }
        }
    }
}

/// Stable snake_case names, used in the report table and by tests.
impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            DropReason::MissingField(field) => return write!(f, "missing_field({field})"),
            DropReason::DuplicateId => "duplicate_id",
            DropReason::UnnumberedOption => "unnumbered_option",
            DropReason::NumberingNot1ToK => "numbering_not_1_to_k",
            DropReason::TooFewOptions => "too_few_options",
            DropReason::InvalidShare => "invalid_share",
            DropReason::DistributionMismatch => "distribution_mismatch",
            DropReason::ShareCountMismatch => "share_count_mismatch",
            DropReason::ConflictingSpellings => "conflicting_spellings",
            DropReason::TooLittleAnswered => "too_little_answered",
            DropReason::SumAboveOne => "sum_above_one",
            DropReason::IdenticalToAnotherGroup => "identical_to_another_group",
            DropReason::NotInEveryGroup => "not_in_every_group",
            DropReason::DroppedInAnotherGroup => "dropped_in_another_group",
            DropReason::OptionsDisagreeAcrossGroups => "options_disagree_across_groups",
            DropReason::DuplicateText => "duplicate_text",
        };
        f.write_str(name)
    }
}

/// A change made to a kept question so that it could be kept (renormalisation is counted on
/// its own, in [`GroupReport::renormalised`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Repair {
    /// WVS: `4.Only on holy days` had no space after its number; the number was still read.
    UnspacedNumber,
    /// WVS: options were listed out of numeric order (`5.` first); they were sorted by number,
    /// shares with them.
    OptionsReordered,
    /// WVS: a distribution key with no option but a share of exactly 0 was removed.
    ZeroShareKeyRemoved,
    /// GlobalOpinionQA: the country was spelled another way in this row and renamed.
    SpellingNormalised,
    /// GlobalOpinionQA: the row gave the country under two spellings with equal shares;
    /// they were merged into one.
    SpellingsMerged,
}

impl Repair {
    /// A sentence for the report's legend.
    pub fn describe(&self) -> &'static str {
        match self {
            Repair::UnspacedNumber => "option number not followed by a space (`4.Only`)",
            Repair::OptionsReordered => "options listed out of numeric order, sorted",
            Repair::ZeroShareKeyRemoved => "zero-share distribution key without option removed",
            Repair::SpellingNormalised => "country spelled differently in the row, renamed",
            Repair::SpellingsMerged => "country under two spellings with equal shares, merged",
        }
    }
}

impl fmt::Display for Repair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Repair::UnspacedNumber => "unspaced_number",
            Repair::OptionsReordered => "options_reordered",
            Repair::ZeroShareKeyRemoved => "zero_share_key_removed",
            Repair::SpellingNormalised => "spelling_normalised",
            Repair::SpellingsMerged => "spellings_merged",
        })
    }
}

/// One group's account: `found == kept + dropped.values().sum()`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupReport {
    pub name: String,
    pub eval_only: bool,
    /// The file this group was read from.
    pub file: PathBuf,
    /// Questions the file holds for this group (WVS: entries of `examples`; GlobalOpinionQA:
    /// parsed rows that list the country).
    pub found: usize,
    /// Questions in the dataset (the same number for every group).
    pub kept: usize,
    /// Kept questions whose shares did not sum to 1 and were divided by their sum.
    pub renormalised: usize,
    /// Of those, the ones whose shares summed below 1 − [`ROUNDING`]: renormalised over
    /// substantive answers (the respondents who chose a listed option). The rest,
    /// [`GroupReport::renormalised_rounding`], were rounding corrections.
    pub renormalised_substantive: usize,
    /// Kept questions that needed a repair, by repair (a question may count under several).
    pub repaired: BTreeMap<Repair, usize>,
    /// Dropped questions by the first reason that applied.
    pub dropped: BTreeMap<DropReason, usize>,
}

impl GroupReport {
    pub fn dropped_total(&self) -> usize {
        self.dropped.values().sum()
    }

    /// Kept questions renormalised because their shares summed within [`ROUNDING`] of 1.
    pub fn renormalised_rounding(&self) -> usize {
        self.renormalised - self.renormalised_substantive
    }
}

/// A GlobalOpinionQA row that could not be read at all, so no country could be counted in it.
#[derive(Debug, Clone, PartialEq)]
pub struct SkippedRow {
    /// 1-based among data rows (the header is not a row).
    pub row: usize,
    /// 1-based line of the file where the row starts (rows may span lines).
    pub line: u64,
    pub reason: String,
}

/// The account of one dataset read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    /// The spec's kind (`wvs_json`, `global_opinion_qa`).
    pub kind: String,
    /// The spec's smallest accepted sum of a question's listed shares.
    pub min_answered: f64,
    /// The spec's allowance for a sum above 1.
    pub max_excess: f64,
    /// Questions in the dataset.
    pub questions: usize,
    /// Smallest and largest option count among them (absent without questions).
    pub options: Option<(usize, usize)>,
    pub groups: Vec<GroupReport>,
    pub skipped_rows: Vec<SkippedRow>,
    /// Dataset-wide observations (fields that were not used and what they said, spellings
    /// normalised across the file, …).
    pub notes: Vec<String>,
}

impl Report {
    pub fn group(&self, name: &str) -> Option<&GroupReport> {
        self.groups.iter().find(|g| g.name == name)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let options = match self.options {
            Some((lo, hi)) if lo == hi => format!(", {lo} options each"),
            Some((lo, hi)) => format!(", {lo} to {hi} options"),
            None => String::new(),
        };
        writeln!(
            f,
            "{}: {} questions kept for {} groups{options}; shares summing to between {} and \
             1 + {} are divided by their sum",
            self.kind,
            self.questions,
            self.groups.len(),
            self.min_answered,
            self.max_excess
        )?;
        let files: Vec<_> = self.groups.iter().map(|g| &g.file).collect();
        if files.windows(2).all(|w| w[0] == w[1]) {
            if let Some(file) = files.first() {
                writeln!(f, "file: {}", file.display())?;
            }
        } else {
            for g in &self.groups {
                writeln!(f, "file of {}: {}", g.name, g.file.display())?;
            }
        }

        let names: Vec<String> = self
            .groups
            .iter()
            .map(|g| format!("{}{}", g.name, if g.eval_only { "*" } else { "" }))
            .collect();
        let name_width = names.iter().map(String::len).max().unwrap_or(0).max(5);
        writeln!(f)?;
        writeln!(
            f,
            "{:<name_width$}  {:>6}  {:>6}  {:>12}  {:>8}",
            "group", "found", "kept", "renormalised", "dropped"
        )?;
        for (g, name) in self.groups.iter().zip(&names) {
            writeln!(
                f,
                "{:<name_width$}  {:>6}  {:>6}  {:>12}  {:>8}",
                name,
                g.found,
                g.kept,
                g.renormalised,
                g.dropped_total()
            )?;
        }
        if self.groups.iter().any(|g| g.eval_only) {
            writeln!(f, "(* evaluated only, never trained on)")?;
        }

        let dropped: BTreeSet<DropReason> = self
            .groups
            .iter()
            .flat_map(|g| g.dropped.keys().copied())
            .collect();
        let dropped: Vec<Row> = dropped
            .iter()
            .map(|r| {
                let counts = self.groups.iter().map(|g| count(&g.dropped, r)).collect();
                (r.to_string(), r.describe(), counts)
            })
            .collect();
        let repaired: BTreeSet<Repair> = self
            .groups
            .iter()
            .flat_map(|g| g.repaired.keys().copied())
            .collect();
        let repaired: Vec<Row> = repaired
            .iter()
            .map(|r| {
                let counts = self.groups.iter().map(|g| count(&g.repaired, r)).collect();
                (r.to_string(), r.describe().to_owned(), counts)
            })
            .collect();
        let renormalised: Vec<Row> = if self.groups.iter().any(|g| g.renormalised > 0) {
            vec![
                (
                    "over_substantive_answers".into(),
                    format!(
                        "sum below {}: divided among those who chose a listed option",
                        1.0 - ROUNDING
                    ),
                    self.groups
                        .iter()
                        .map(|g| g.renormalised_substantive)
                        .collect(),
                ),
                (
                    "rounding".into(),
                    format!("sum within {ROUNDING} of 1"),
                    self.groups
                        .iter()
                        .map(GroupReport::renormalised_rounding)
                        .collect(),
                ),
            ]
        } else {
            Vec::new()
        };
        let width = dropped
            .iter()
            .chain(&repaired)
            .chain(&renormalised)
            .map(|r| r.0.len())
            .max();
        let width = width.unwrap_or(0);
        table(
            f,
            "renormalised, among kept questions",
            &names,
            &renormalised,
            width,
        )?;
        table(
            f,
            "dropped, by the first rule that applies",
            &names,
            &dropped,
            width,
        )?;
        table(
            f,
            "repaired, among kept questions",
            &names,
            &repaired,
            width,
        )?;

        if !self.skipped_rows.is_empty() {
            writeln!(
                f,
                "\nskipped rows ({}; no country is counted in them):",
                self.skipped_rows.len()
            )?;
            for s in &self.skipped_rows {
                writeln!(f, "  row {} (line {}): {}", s.row, s.line, s.reason)?;
            }
        }
        if !self.notes.is_empty() {
            writeln!(f, "\nnotes:")?;
            for n in &self.notes {
                writeln!(f, "  - {n}")?;
            }
        }
        Ok(())
    }
}

fn count<K: Ord>(map: &BTreeMap<K, usize>, key: &K) -> usize {
    map.get(key).copied().unwrap_or(0)
}

/// A table row: a reason's name, its meaning, its count per group.
type Row = (String, String, Vec<usize>);

/// A reason-by-group table with each reason's meaning at the end of its line.
fn table(
    f: &mut fmt::Formatter<'_>,
    title: &str,
    groups: &[String],
    rows: &[Row],
    label_width: usize,
) -> fmt::Result {
    if rows.is_empty() {
        return Ok(());
    }
    writeln!(f, "\n{title}:")?;
    write!(f, "  {:<label_width$}", "")?;
    for g in groups {
        write!(f, "  {:>w$}", g, w = g.len().max(4))?;
    }
    writeln!(f)?;
    for (label, meaning, counts) in rows {
        write!(f, "  {label:<label_width$}")?;
        for (g, c) in groups.iter().zip(counts) {
            write!(f, "  {:>w$}", c, w = g.len().max(4))?;
        }
        writeln!(f, "  {meaning}")?;
    }
    Ok(())
}
