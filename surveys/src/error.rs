//! Inputs that cannot be read into a dataset at all. Each message names the file (and line and
//! column where there is one) and ends with a `hint:` line saying how to fix it. Anomalies
//! inside a readable file are not errors: they are repaired or dropped by a rule and counted
//! in the [`Report`](crate::Report).
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(
        "cannot read {}: {source}\nhint: check the path (paths inside a data spec are \
         relative to the spec file's folder)",
        path.display()
    )]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "group `{group}`: cannot read {}: {source}\nhint: paths in a data spec are relative \
         to the spec file's folder; check the path, or drop the group from `groups`",
        path.display()
    )]
    GroupFile {
        group: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {message}\nhint: {hint}", path.display())]
    Yaml {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
        hint: &'static str,
    },
    #[error("{}: {message}\nhint: {hint}", origin(path.as_deref()))]
    Spec {
        /// The file the spec was read from, when it was read from one.
        path: Option<PathBuf>,
        message: String,
        hint: String,
    },
    #[error(
        "{}:{line}:{column}: not valid JSON: {message}\nhint: a WVS file is one JSON object \
         with an `examples` array; repair the file or take a fresh copy",
        path.display()
    )]
    NotJson {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "{}: no `examples` array at the top level\nhint: a WVS file is one JSON object whose \
         `examples` lists the questions (`{{\"examples\": [{{\"id\": \"Q1\", …}}]}}`)",
        path.display()
    )]
    NoExamples { path: PathBuf },
    #[error(
        "no question is shared by all groups ({summary})\nhint: the files may come from different \
         surveys or sources; compare their question ids, or request fewer groups"
    )]
    NoSharedQuestion { summary: String },
    #[error("{}: {message}\nhint: {hint}", path.display())]
    Csv {
        path: PathBuf,
        message: String,
        hint: String,
    },
    #[error(
        "{}: no `{column}` column; the header has: {}\nhint: the GlobalOpinionQA CSV has the \
         columns question, selections, options and source; check that this is that file",
        path.display(),
        if found.is_empty() { "nothing".to_owned() } else { found.join(", ") }
    )]
    MissingColumn {
        path: PathBuf,
        column: String,
        found: Vec<String>,
    },
    #[error("{}: country `{name}` is not in the data\nhint: {hint}", path.display())]
    UnknownCountry {
        path: PathBuf,
        name: String,
        hint: String,
    },
    #[error(
        "question {question} has {options} options but only {letters} answer letters are \
         available\nhint: allow more letters, or leave such questions out of the data"
    )]
    TooManyOptions {
        question: String,
        options: usize,
        letters: usize,
    },
}

/// Where a spec came from, for messages.
fn origin(path: Option<&Path>) -> String {
    path.map_or_else(|| "data spec".to_owned(), |p| p.display().to_string())
}
