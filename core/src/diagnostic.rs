//! User-facing errors about a pipeline file: where (file:line:col), what, and how to fix it.
//!
//! Every check that can blame the user's YAML produces a [`Diagnostic`], so the CLI can print
//! all of them at once (a researcher fixes five typos in one edit, not five runs) and exit 2.
use std::fmt;
use std::path::{Path, PathBuf};

/// A place in a source file. Lines and columns are 1-based, as editors show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// Where a diagnostic points: a place in the file, or a whole file (unreadable, empty, ...),
/// or a `-s KEY=VALUE` override, which has no place in any file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    At(Location),
    File(PathBuf),
    /// The pipeline file the override was applied to, and the override as typed.
    Override(PathBuf, String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::At(loc) => write!(f, "{loc}"),
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Override(file, arg) => write!(f, "{}: override `-s {arg}`", file.display()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub origin: Origin,
    pub message: String,
    /// What the user should do; every diagnostic carries one.
    pub hint: String,
}

impl Diagnostic {
    pub fn new(origin: Origin, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Diagnostic {
            origin,
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn file(path: &Path, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(Origin::File(path.to_path_buf()), message, hint)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: error: {}", self.origin, self.message)?;
        if !self.hint.is_empty() {
            write!(f, "\n  hint: {}", self.hint)?;
        }
        Ok(())
    }
}

/// All the problems found in one pipeline; never empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

/// The closest candidate to `word` by edit distance, if it is close enough to be a likely typo.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= (c.len().min(word.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// "did you mean `x`?" or a list of what is valid, for the hint line.
pub fn suggest(word: &str, candidates: &[&str], what: &str) -> String {
    match nearest(word, candidates.iter().copied()) {
        Some(best) => format!(
            "did you mean `{best}`? (valid {what}: {})",
            candidates.join(", ")
        ),
        None => format!("valid {what}: {}", candidates.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn suggests_only_likely_typos() {
        let fields = ["seed", "name", "stages", "params", "on", "policy"];
        assert_eq!(super::nearest("seeed", fields), Some("seed"));
        assert_eq!(super::nearest("parms", fields), Some("params"));
        assert_eq!(super::nearest("foo", fields), None);
        assert_eq!(super::nearest("polcy", fields), Some("policy"));
    }
}
