//! World Values Survey answer distributions, one JSON file per group (`kind: wvs_json`).
//!
//! A file is a JSON object whose `examples` array holds one entry per question:
//! `{"id": "Q1", "topic": …, "question_text": …, "options": ["1. Very important", …],
//! "distribution": {"1": 0.91, …}, …}`. Groups are joined on `id`; question and option text
//! come from the `text_from` group (files may be in different languages, so answers are
//! matched by option number, never by text). `question_id` and `most_common_response` are not
//! read: the id and the distribution say the same with less room for error (a note counts
//! how often `most_common_response` disagrees with the distribution among kept questions).
//!
//! Each entry of each file meets these rules in this order; the first that fails drops the
//! entry for that group and is counted under its name (see [`DropReason`]):
//!
//! 1. `missing_field(id)`: the entry is not an object or has no non-empty string `id`.
//! 2. `duplicate_id`: the id occurs more than once in the file (every copy is dropped).
//! 3. `missing_field(options|distribution|question_text)`: `options` is not an array of
//!    strings, `distribution` is not an object, or (in the `text_from` file only)
//!    `question_text` is not a non-empty string. `topic` is optional.
//! 4. `unnumbered_option`: an option is not `N.` followed by text. The number is stripped
//!    from the option's text; a missing space after the dot (`4.Only`) is accepted and
//!    counted as the repair `unspaced_number`.
//! 5. `numbering_not_1_to_k`: the k option numbers are not exactly 1..k. This catches the
//!    10-point scales published as their two ends (`1. Completely disagree`,
//!    `10. Completely agree`), whose shares mean different things in different files.
//!    Options listed out of order (`5.` first) are sorted by number: `options_reordered`.
//! 6. `too_few_options`: fewer than two options.
//! 7. `invalid_share`: a share that is not a number, or is negative.
//! 8. `distribution_mismatch`: the distribution's keys are not the option numbers. A key with
//!    no option and a share of exactly 0 is removed first (`zero_share_key_removed`); any other
//!    extra key, or an option without a share, drops the entry (no share is invented).
//! 9. `too_little_answered`: the shares sum below `min_answered` (default 0.5): too few
//!    respondents chose a listed option for their distribution to stand for the group. The
//!    rest answered "don't know", refused or gave no answer, which are not among the options.
//! 10. `sum_above_one`: the shares sum above 1 + `max_excess` (`max_excess` defaults to
//!     0.05), more than rounding can add: the numbers are wrong.
//!
//!     Between the two the shares are divided by their sum, the distribution among those who
//!     chose a listed option (as OpinionQA and GlobalOpinionQA compare models with survey
//!     answers), and the question counts as `renormalised`: over substantive answers when the
//!     sum was below 0.95 (Japan's often are, 0.56–0.94), as a rounding correction otherwise;
//!     the report gives both counts.
//! 11. `identical_to_another_group`: another requested group's file has the same id with
//!     exactly the same shares (key by key). Real answers of two countries agreeing to every
//!     published digit is far less likely than a copied entry (the shared US file holds the
//!     JP entries for Q177–Q195 verbatim), and which file is right is unknowable, so every
//!     group involved drops it. A note lists the ids.
//!
//! Then across groups (see the crate's join): a question valid here is dropped as
//! `not_in_every_group` if some requested group's file lacks its id, as
//! `dropped_in_another_group` if some group dropped it, as
//! `options_disagree_across_groups` if the groups list different numbers of options, and as
//! `duplicate_text` if another question still standing has the same text and options in the
//! `text_from` file (CN's and JP's Q51–Q55 all read "how often did you experience [the item]",
//! the item missing).
//! A file that is not JSON, has no `examples` array or cannot be read, and groups that share
//! no question id at all, are errors.
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::dataset::{Dataset, Question};
use crate::error::DataError;
use crate::join::{self, Answer, Entry, GroupEntries};
use crate::report::{DropReason, Repair, Report};
use crate::shares;
use crate::spec::WvsSpec;

/// One group's file, parsed.
struct GroupFile {
    name: String,
    path: PathBuf,
    examples: Vec<Value>,
}

/// What a valid entry yields beyond its answer.
struct Checked {
    answer: Answer,
    /// Option texts in answer order.
    options: Vec<String>,
    /// Whether `most_common_response` names an option with the largest share; `None` when
    /// the field is absent.
    most_common_agrees: Option<bool>,
}

pub(crate) fn load(spec: &WvsSpec, base_dir: &Path) -> Result<Dataset, DataError> {
    let files = spec
        .groups
        .iter()
        .map(|(name, rel)| read_group(name, &base_dir.join(rel)))
        .collect::<Result<Vec<_>, _>>()?;
    check_shared_ids(&files)?;
    let shares: Vec<HashMap<&str, Vec<RawShares>>> = files.iter().map(raw_shares_by_id).collect();
    let mut identical: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();

    let mut candidates = Vec::new();
    let mut entries = Vec::with_capacity(files.len());
    let mut most_common = Vec::new();
    for (gi, file) in files.iter().enumerate() {
        let is_text = file.name == spec.text_from;
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for e in &file.examples {
            if let Some(id) = id_of(e) {
                *counts.entry(id).or_default() += 1;
            }
        }
        let mut group = Vec::with_capacity(file.examples.len());
        let mut verdicts = Vec::new();
        for e in &file.examples {
            let id = id_of(e);
            let outcome = match id {
                None => Err(DropReason::MissingField("id")),
                Some(id) if counts[id] > 1 => Err(DropReason::DuplicateId),
                Some(id) => {
                    let twins = twins(&files, &shares, gi, id, e);
                    for twin in &twins {
                        let pair = if file.name.as_str() < *twin {
                            (file.name.as_str(), *twin)
                        } else {
                            (*twin, file.name.as_str())
                        };
                        identical.entry(pair).or_default().insert(id);
                    }
                    let checked = check(e, is_text, spec.min_answered, spec.max_excess);
                    if twins.is_empty() {
                        checked
                    } else {
                        checked.and(Err(DropReason::IdenticalToAnotherGroup))
                    }
                }
            };
            let outcome = outcome.map(|c| {
                let id = id.expect("checked entries have ids").to_owned();
                verdicts.push((id.clone(), c.most_common_agrees));
                if is_text {
                    candidates.push(Question {
                        text: field_text(e, "question_text").unwrap_or_default(),
                        topic: field_text(e, "topic"),
                        options: c.options,
                        id,
                    });
                }
                c.answer
            });
            group.push(Entry {
                id: id.map(str::to_owned),
                outcome,
            });
        }
        most_common.push(verdicts);
        entries.push(GroupEntries {
            name: file.name.clone(),
            eval_only: spec.eval_only.contains(&file.name),
            file: file.path.clone(),
            entries: group,
        });
    }

    let joined = join::join(candidates, entries);
    let kept: HashSet<&str> = joined.questions.iter().map(|q| q.id.as_str()).collect();
    // Per group: kept questions where `most_common_response` disagrees, and where it is absent.
    let tallies: Vec<(&str, usize, usize)> = files
        .iter()
        .zip(&most_common)
        .map(|(f, verdicts)| {
            let kept = verdicts.iter().filter(|(id, _)| kept.contains(id.as_str()));
            let disagree = kept.clone().filter(|v| v.1 == Some(false)).count();
            let absent = kept.filter(|v| v.1.is_none()).count();
            (f.name.as_str(), disagree, absent)
        })
        .collect();
    let mut report = Report {
        kind: "wvs_json".into(),
        min_answered: spec.min_answered,
        max_excess: spec.max_excess,
        questions: joined.questions.len(),
        options: join::option_range(&joined.questions),
        groups: joined.reports,
        ..Report::default()
    };
    for ((a, b), ids) in &identical {
        let mut ids: Vec<&str> = ids.iter().copied().collect();
        ids.sort_by_key(|id| (id.len(), *id));
        let noun = if ids.len() == 1 {
            "question"
        } else {
            "questions"
        };
        report.notes.push(format!(
            "{a} and {b} give identical shares for {} {noun}, dropped: {}",
            ids.len(),
            ids.join(", ")
        ));
    }
    report.notes.push(most_common_note(&tallies));
    Ok(Dataset {
        questions: joined.questions,
        groups: joined.groups,
        report,
    })
}

fn read_group(name: &str, path: &Path) -> Result<GroupFile, DataError> {
    let text = std::fs::read_to_string(path).map_err(|source| DataError::GroupFile {
        group: name.to_owned(),
        path: path.to_path_buf(),
        source,
    })?;
    let mut root: Value = serde_json::from_str(&text).map_err(|e| {
        // serde_json's message ends with the position, which we print in front instead.
        let full = e.to_string();
        let place = format!(" at line {} column {}", e.line(), e.column());
        DataError::NotJson {
            path: path.to_path_buf(),
            line: e.line(),
            column: e.column(),
            message: full.strip_suffix(&place).unwrap_or(&full).to_owned(),
        }
    })?;
    let Some(Value::Array(examples)) = root.get_mut("examples").map(Value::take) else {
        return Err(DataError::NoExamples {
            path: path.to_path_buf(),
        });
    };
    Ok(GroupFile {
        name: name.to_owned(),
        path: path.to_path_buf(),
        examples,
    })
}

/// Files that share no id at all are not a data-quality problem but the wrong files (another
/// survey, another wave, a different id scheme): an error, not an empty dataset.
fn check_shared_ids(files: &[GroupFile]) -> Result<(), DataError> {
    let sets: Vec<HashSet<&str>> = files
        .iter()
        .map(|f| f.examples.iter().filter_map(id_of).collect())
        .collect();
    let mut shared = sets[0].clone();
    for s in &sets[1..] {
        shared.retain(|id| s.contains(id));
    }
    if shared.is_empty() {
        let summary = files
            .iter()
            .zip(&sets)
            .map(|(f, s)| {
                let mut ids: Vec<_> = s.iter().copied().collect();
                ids.sort_unstable();
                let sample = ids.iter().take(3).copied().collect::<Vec<_>>().join(", ");
                format!("{} has {} ids ({sample}…)", f.path.display(), s.len())
            })
            .collect::<Vec<_>>()
            .join("; ");
        return Err(DataError::NoSharedQuestion { summary });
    }
    Ok(())
}

/// A distribution as (key, share) pairs in key order; `None` unless every share is a number.
type RawShares = Option<Vec<(String, f64)>>;

fn raw_shares(e: &Value) -> RawShares {
    let distribution = e.get("distribution")?.as_object()?;
    distribution
        .iter()
        .map(|(k, v)| Some((k.clone(), v.as_f64()?)))
        .collect()
}

/// The other groups whose file has entry `id` with exactly the shares of `e` (group `gi`'s).
fn twins<'a>(
    files: &'a [GroupFile],
    shares: &[HashMap<&str, Vec<RawShares>>],
    gi: usize,
    id: &str,
    e: &Value,
) -> Vec<&'a str> {
    let mine = raw_shares(e);
    if mine.is_none() {
        return Vec::new();
    }
    files
        .iter()
        .zip(shares)
        .enumerate()
        .filter(|(gj, (_, by_id))| {
            *gj != gi && by_id.get(id).is_some_and(|all| all.contains(&mine))
        })
        .map(|(_, (f, _))| f.name.as_str())
        .collect()
}

/// Every entry's raw shares by id (a list, as an id may be duplicated).
fn raw_shares_by_id(file: &GroupFile) -> HashMap<&str, Vec<RawShares>> {
    let mut by_id: HashMap<&str, Vec<RawShares>> = HashMap::new();
    for e in &file.examples {
        if let Some(id) = id_of(e) {
            by_id.entry(id).or_default().push(raw_shares(e));
        }
    }
    by_id
}

fn id_of(e: &Value) -> Option<&str> {
    e.get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// A field's text, trimmed; `None` when absent, not a string, or empty.
fn field_text(e: &Value, field: &str) -> Option<String> {
    let text = e.get(field)?.as_str()?.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Rules 3–10 of the module documentation, for one entry that has a unique id.
fn check(
    e: &Value,
    is_text: bool,
    min_answered: f64,
    max_excess: f64,
) -> Result<Checked, DropReason> {
    let options: Vec<&str> = e
        .get("options")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(Value::as_str).collect())
        .ok_or(DropReason::MissingField("options"))?;
    let distribution: &Map<String, Value> = e
        .get("distribution")
        .and_then(Value::as_object)
        .ok_or(DropReason::MissingField("distribution"))?;
    if is_text && field_text(e, "question_text").is_none() {
        return Err(DropReason::MissingField("question_text"));
    }

    let mut repairs = Vec::new();
    let numbered: Vec<(usize, &str, bool)> = options
        .iter()
        .map(|o| numbered_option(o))
        .collect::<Option<_>>()
        .ok_or(DropReason::UnnumberedOption)?;
    if numbered.iter().any(|&(_, _, spaced)| !spaced) {
        repairs.push(Repair::UnspacedNumber);
    }
    let mut numbers: Vec<usize> = numbered.iter().map(|&(n, _, _)| n).collect();
    let in_order = numbers.is_sorted();
    numbers.sort_unstable();
    if !numbers.iter().copied().eq(1..=numbers.len()) {
        return Err(DropReason::NumberingNot1ToK);
    }
    if numbers.len() < 2 {
        return Err(DropReason::TooFewOptions);
    }
    if !in_order {
        repairs.push(Repair::OptionsReordered);
    }

    let values: Vec<(&String, f64)> = distribution
        .iter()
        .map(|(k, v)| Some((k, v.as_f64().filter(|x| *x >= 0.0)?)))
        .collect::<Option<_>>()
        .ok_or(DropReason::InvalidShare)?;
    let k = numbers.len();
    let mut by_number: BTreeMap<usize, f64> = BTreeMap::new();
    for (key, share) in values {
        match key.parse::<usize>().ok().filter(|n| (1..=k).contains(n)) {
            Some(n) if by_number.insert(n, share).is_none() => {}
            Some(_) => return Err(DropReason::DistributionMismatch),
            None if share == 0.0 => {
                if !repairs.contains(&Repair::ZeroShareKeyRemoved) {
                    repairs.push(Repair::ZeroShareKeyRemoved);
                }
            }
            None => return Err(DropReason::DistributionMismatch),
        }
    }
    if by_number.len() != k {
        return Err(DropReason::DistributionMismatch);
    }
    let raw: Vec<f64> = by_number.values().copied().collect();
    let most_common_agrees = most_common_agrees(e.get("most_common_response"), &raw);
    let normalised = shares::normalise(raw, min_answered, max_excess)?;

    let mut sorted = numbered;
    sorted.sort_unstable_by_key(|&(n, _, _)| n);
    Ok(Checked {
        answer: Answer {
            shares: normalised.shares,
            renormalised: normalised.renormalised,
            substantive: normalised.substantive,
            repairs,
        },
        options: sorted.into_iter().map(|(_, t, _)| t.to_owned()).collect(),
        most_common_agrees,
    })
}

/// `"4. Only on holy days"` → (4, "Only on holy days", spaced). `None` without a number, a
/// dot after it, or text after that.
fn numbered_option(option: &str) -> Option<(usize, &str, bool)> {
    let s = option.trim_start();
    let digits = s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let number = s[..digits].parse().ok()?;
    let rest = s[digits..].strip_prefix('.')?;
    let text = rest.trim();
    let spaced = rest.starts_with(char::is_whitespace);
    (!text.is_empty()).then_some((number, text, spaced))
}

/// `None` when the field is absent or null; otherwise whether it names (as `"2"` or `2`) an
/// option whose share is the largest. `shares[i]` belongs to option i + 1.
fn most_common_agrees(field: Option<&Value>, shares: &[f64]) -> Option<bool> {
    let named = match field? {
        Value::Null => return None,
        Value::String(s) => s.trim().parse::<usize>().ok(),
        Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        _ => None,
    };
    let max = shares.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some(named.is_some_and(|n| n >= 1 && shares.get(n - 1) == Some(&max)))
}

/// The note on `most_common_response`, from (group, kept questions where it names another
/// option than the largest share, kept questions without it).
fn most_common_note(tallies: &[(&str, usize, usize)]) -> String {
    let list = |pick: fn(&(&str, usize, usize)) -> usize| -> Vec<String> {
        tallies
            .iter()
            .filter(|t| pick(t) > 0)
            .map(|t| format!("{} {}", t.0, pick(t)))
            .collect()
    };
    let disagree = list(|t| t.1);
    let absent = list(|t| t.2);
    let mut note = "`most_common_response` is not read (the distribution is)".to_owned();
    if disagree.is_empty() {
        note.push_str("; it names a largest share in every kept question");
    } else {
        note.push_str(&format!(
            "; among kept questions it names an option other than the largest share in {}",
            disagree.join(", ")
        ));
    }
    if !absent.is_empty() {
        note.push_str(&format!("; it is absent in {}", absent.join(", ")));
    }
    note
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_lose_their_number_and_report_a_missing_space() {
        assert_eq!(
            numbered_option("1. Very important"),
            Some((1, "Very important", true))
        );
        assert_eq!(
            numbered_option("4.Only on special holy days"),
            Some((4, "Only on special holy days", false))
        );
        assert_eq!(
            numbered_option("10. Completely agree"),
            Some((10, "Completely agree", true))
        );
        assert_eq!(numbered_option("Very important"), None);
        assert_eq!(numbered_option("3."), None);
        assert_eq!(numbered_option("3) Bad"), None);
    }

    #[test]
    fn most_common_response_is_compared_with_the_largest_share() {
        let shares = [0.2, 0.5, 0.3];
        assert_eq!(
            most_common_agrees(Some(&Value::from("2")), &shares),
            Some(true)
        );
        assert_eq!(
            most_common_agrees(Some(&Value::from(2)), &shares),
            Some(true)
        );
        assert_eq!(
            most_common_agrees(Some(&Value::from("1")), &shares),
            Some(false)
        );
        assert_eq!(
            most_common_agrees(Some(&Value::from("9")), &shares),
            Some(false)
        );
        assert_eq!(most_common_agrees(Some(&Value::Null), &shares), None);
        assert_eq!(most_common_agrees(None, &shares), None);
    }
}
