//! Anthropic's GlobalOpinionQA CSV (`kind: global_opinion_qa`).
//!
//! Each row is one question: `question` (its text), `options` (a Python list repr such as
//! `['Yes', "Don't know", 'No']`) and `selections` (a Python `defaultdict` repr mapping each
//! surveyed country to its shares over the options,
//! `defaultdict(<class 'list'>, {'Britain': [0.1, 0.9], …})`). Other columns (`source`) are
//! not read. A question's id is `row-N`, N counting data rows from 1 (the header is not a
//! row); a question has no topic.
//!
//! Rules, in order:
//!
//! - A missing `question`, `options` or `selections` column is an error listing the header.
//! - A row that cannot be read at all (a wrong number of fields, an empty `question`,
//!   `options` that is not a list of strings, `selections` that is not a dict of lists, or
//!   either failing to parse) is skipped and listed in the report by row and line with the
//!   reason; nothing else in the file depends on it, so one bad row does not stop the rest.
//! - Country spellings are normalised with [`ALIASES`] (every rename is counted in the
//!   report's notes, and as `spelling_normalised` for kept questions). A row listing two
//!   spellings of one country is merged when their shares are equal (`spellings_merged`) and
//!   drops that country from the row otherwise (`conflicting_spellings`).
//! - Then for each requested country the row lists: `too_few_options` (fewer than two),
//!   `invalid_share` (not a finite number ≥ 0), `share_count_mismatch` (a different number of
//!   shares than options), `too_little_answered` (the shares sum below `min_answered`, 0.5
//!   by default: too few respondents chose a listed option), `sum_above_one` (above
//!   1 + `max_excess`, 1.05 by default: more than rounding). In between the shares are
//!   divided by their sum, the distribution among those who chose a listed option, and
//!   counted as renormalised: over substantive answers below a sum of 0.95, as a rounding
//!   correction otherwise.
//! - Across countries as for every reader: a row is kept only if every requested country is
//!   listed in it and valid (`not_in_every_group`, `dropped_in_another_group`), and no other
//!   such row has the same question and options (`duplicate_text`: the same question asked
//!   in two survey waves would give one prompt two different targets).
//! - A requested country that no readable row lists is an error suggesting the nearest name.
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::dataset::{Dataset, Question};
use crate::error::DataError;
use crate::join::{self, Answer, Entry, GroupEntries};
use crate::python_literal::{self, Literal};
use crate::report::{DropReason, Repair, Report, SkippedRow};
use crate::shares;
use crate::spec::GlobalOpinionQaSpec;

/// Other spellings of one country in the CSV → the name a spec uses. A guess from the
/// surveys' conventions (Pew writes `Britain`, others `Great Britain`), not yet checked
/// against the published file; every use is reported, so a wrong entry shows.
pub const ALIASES: &[(&str, &str)] = &[
    ("Great Britain", "Britain"),
    ("S. Korea", "South Korea"),
    ("Czech Rep.", "Czech Republic"),
];

const COLUMNS: [&str; 3] = ["question", "options", "selections"];

/// One row that parsed.
struct Row {
    number: usize,
    question: String,
    options: Vec<String>,
    countries: Vec<Country>,
}

/// One country's entry in a row, after spelling normalisation.
struct Country {
    name: String,
    /// `None` where the row holds something other than a number.
    shares: Vec<Option<f64>>,
    renamed: bool,
    merged: bool,
    conflict: bool,
}

pub(crate) fn load(spec: &GlobalOpinionQaSpec, base_dir: &Path) -> Result<Dataset, DataError> {
    let path = base_dir.join(&spec.path);
    let file = std::fs::File::open(&path).map_err(|source| DataError::Read {
        path: path.clone(),
        source,
    })?;
    let mut reader = csv::Reader::from_reader(std::io::BufReader::new(file));
    let csv_error = |e: csv::Error| DataError::Csv {
        path: path.clone(),
        message: e.to_string(),
        hint: "check that the file is the GlobalOpinionQA CSV, saved as UTF-8".into(),
    };
    let header: Vec<String> = reader
        .headers()
        .map_err(csv_error)?
        .iter()
        .map(str::to_owned)
        .collect();
    let mut at = [0; 3];
    for (slot, column) in at.iter_mut().zip(COLUMNS) {
        *slot = header
            .iter()
            .position(|h| h.trim() == column)
            .ok_or_else(|| DataError::MissingColumn {
                path: path.clone(),
                column: column.into(),
                found: header.clone(),
            })?;
    }

    let mut rows = Vec::new();
    let mut skipped = Vec::new();
    let mut renames: BTreeMap<(String, &str), usize> = BTreeMap::new();
    for (i, record) in reader.records().enumerate() {
        let number = i + 1;
        let record = match record {
            Ok(r) => r,
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => return Err(csv_error(e)),
            Err(e) => {
                skipped.push(SkippedRow {
                    row: number,
                    line: e.position().map_or(0, csv::Position::line),
                    reason: csv_reason(&e),
                });
                continue;
            }
        };
        let line = record.position().map_or(0, csv::Position::line);
        let fields = at.map(|c| record.get(c).unwrap_or_default());
        match read_row(number, fields, &mut renames) {
            Ok(row) => rows.push(row),
            Err(reason) => skipped.push(SkippedRow {
                row: number,
                line,
                reason,
            }),
        }
    }

    check_countries(spec, &path, &rows, skipped.len())?;

    let candidates = rows
        .iter()
        .map(|r| Question {
            id: row_id(r.number),
            text: r.question.clone(),
            options: r.options.clone(),
            topic: None,
        })
        .collect();
    let groups = spec
        .groups
        .iter()
        .map(|g| GroupEntries {
            name: g.clone(),
            eval_only: spec.eval_only.contains(g),
            file: path.clone(),
            entries: rows
                .iter()
                .filter_map(|r| {
                    let c = r.countries.iter().find(|c| &c.name == g)?;
                    Some(Entry {
                        id: Some(row_id(r.number)),
                        outcome: check(r, c, spec.min_answered, spec.max_excess),
                    })
                })
                .collect(),
        })
        .collect();
    let joined = join::join(candidates, groups);

    let mut notes = Vec::new();
    if !renames.is_empty() {
        let list: Vec<String> = renames
            .iter()
            .map(|((from, to), n)| {
                let rows = if *n == 1 { "row" } else { "rows" };
                format!("`{from}` → `{to}` ({n} {rows})")
            })
            .collect();
        notes.push(format!(
            "country spellings normalised (all countries, all readable rows): {}",
            list.join(", ")
        ));
    }
    let report = Report {
        kind: "global_opinion_qa".into(),
        min_answered: spec.min_answered,
        max_excess: spec.max_excess,
        questions: joined.questions.len(),
        options: join::option_range(&joined.questions),
        groups: joined.reports,
        skipped_rows: skipped,
        notes,
    };
    Ok(Dataset {
        questions: joined.questions,
        groups: joined.groups,
        report,
    })
}

fn row_id(number: usize) -> String {
    format!("row-{number}")
}

fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} fields where the header has {expected_len}"),
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".into(),
        _ => e.to_string(),
    }
}

/// Parses one record's `question`, `options` and `selections`; the error is the reason the
/// row is skipped.
fn read_row(
    number: usize,
    [question, options, selections]: [&str; 3],
    renames: &mut BTreeMap<(String, &'static str), usize>,
) -> Result<Row, String> {
    let question = question.trim();
    if question.is_empty() {
        return Err("empty `question`".into());
    }
    let options = match python_literal::parse(options) {
        Ok(Literal::List(items)) => items
            .into_iter()
            .map(|i| match i {
                Literal::Str(s) => Some(s.trim().to_owned()),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .ok_or("`options` is not a list of strings")?,
        Ok(_) => return Err("`options` is not a list".into()),
        Err(e) => return Err(format!("`options` does not parse: {e}")),
    };
    let entries = match python_literal::parse_defaultdict(selections) {
        Ok(Literal::Dict(entries)) => entries,
        Ok(_) => return Err("`selections` is not a dict".into()),
        Err(e) => return Err(format!("`selections` does not parse: {e}")),
    };
    let mut countries: Vec<Country> = Vec::new();
    let mut renamed = Vec::new();
    for (key, value) in entries {
        let (Literal::Str(spelled), Literal::List(items)) = (key, value) else {
            return Err("`selections` is not a dict from country names to lists".into());
        };
        let shares: Vec<Option<f64>> = items
            .into_iter()
            .map(|i| match i {
                Literal::Number(x) => Some(x),
                _ => None,
            })
            .collect();
        let name = match ALIASES.iter().find(|(from, _)| *from == spelled) {
            Some(&(_, to)) => {
                renamed.push((spelled.clone(), to));
                to.to_owned()
            }
            None => spelled.clone(),
        };
        match countries.iter_mut().find(|c| c.name == name) {
            Some(c) if c.shares == shares => c.merged = true,
            Some(c) => c.conflict = true,
            None => countries.push(Country {
                renamed: name != spelled,
                name,
                shares,
                merged: false,
                conflict: false,
            }),
        }
    }
    // Counted only once the row is known to be readable.
    for key in renamed {
        *renames.entry(key).or_default() += 1;
    }
    Ok(Row {
        number,
        question: question.to_owned(),
        options,
        countries,
    })
}

/// The per-country rules, in the order of the module documentation.
fn check(row: &Row, c: &Country, min_answered: f64, max_excess: f64) -> Result<Answer, DropReason> {
    if c.conflict {
        return Err(DropReason::ConflictingSpellings);
    }
    if row.options.len() < 2 {
        return Err(DropReason::TooFewOptions);
    }
    let shares: Vec<f64> = c
        .shares
        .iter()
        .copied()
        .collect::<Option<_>>()
        .ok_or(DropReason::InvalidShare)?;
    if shares.iter().any(|s| !s.is_finite() || *s < 0.0) {
        return Err(DropReason::InvalidShare);
    }
    if shares.len() != row.options.len() {
        return Err(DropReason::ShareCountMismatch);
    }
    let normalised = shares::normalise(shares, min_answered, max_excess)?;
    let mut repairs = Vec::new();
    if c.renamed {
        repairs.push(Repair::SpellingNormalised);
    }
    if c.merged {
        repairs.push(Repair::SpellingsMerged);
    }
    Ok(Answer {
        shares: normalised.shares,
        renormalised: normalised.renormalised,
        substantive: normalised.substantive,
        repairs,
    })
}

/// Every requested country is in some readable row, and some row lists them all.
fn check_countries(
    spec: &GlobalOpinionQaSpec,
    path: &Path,
    rows: &[Row],
    skipped: usize,
) -> Result<(), DataError> {
    let known: BTreeSet<&str> = rows
        .iter()
        .flat_map(|r| r.countries.iter().map(|c| c.name.as_str()))
        .collect();
    for g in &spec.groups {
        if known.contains(g.as_str()) {
            continue;
        }
        let mut hint = match ALIASES.iter().find(|(from, _)| from == g) {
            Some((_, to)) => format!(
                "`{g}` is read as `{to}` (duplicate spellings are normalised); request `{to}`"
            ),
            None => match nearest(g, &known) {
                Some(name) => format!("did you mean `{name}`?"),
                None => "check the spelling against the CSV's `selections`".into(),
            },
        };
        hint.push_str(&format!(" ({} countries in the file", known.len()));
        if skipped > 0 {
            hint.push_str(&format!(", {skipped} rows unreadable"));
        }
        hint.push(')');
        return Err(DataError::UnknownCountry {
            path: path.to_path_buf(),
            name: g.clone(),
            hint,
        });
    }
    if !rows.iter().any(|r| {
        spec.groups
            .iter()
            .all(|g| r.countries.iter().any(|c| &c.name == g))
    }) {
        let per_country = spec
            .groups
            .iter()
            .map(|g| {
                let n = rows
                    .iter()
                    .filter(|r| r.countries.iter().any(|c| &c.name == g))
                    .count();
                format!("{g} in {n}")
            })
            .collect::<Vec<_>>()
            .join(", ");
        return Err(DataError::NoSharedQuestion {
            summary: format!(
                "no row of {} lists all of them; rows per country: {per_country}",
                path.display()
            ),
        });
    }
    Ok(())
}

/// The known name closest to `name` by edit distance (ignoring case), if it is close enough
/// to be a typo rather than another country.
fn nearest<'a>(name: &str, known: &BTreeSet<&'a str>) -> Option<&'a str> {
    let lower = name.to_lowercase();
    let (distance, best) = known
        .iter()
        .map(|k| (strsim::levenshtein(&lower, &k.to_lowercase()), *k))
        .min()?;
    (distance <= (name.chars().count() / 3).max(2)).then_some(best)
}
