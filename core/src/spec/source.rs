//! A pipeline file's YAML: the value tree and where each node is written (chorus-yaml), with
//! the file's name, so that every later error can point at the user's line.
use std::path::Path;

use serde_json::Value;

pub use chorus_yaml::{child_index, child_key, display_path};

use crate::diagnostic::{Diagnostic, Location, Origin};

/// Positions of the nodes of one parsed document.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    file: std::path::PathBuf,
    positions: chorus_yaml::Positions,
}

impl SourceMap {
    /// Where the value at `path` starts (falls back to the nearest ancestor that has a place).
    pub fn value(&self, path: &str) -> Option<Location> {
        let mut p = path;
        loop {
            if let Some(&(line, column)) = self.positions.values.get(p) {
                return Some(self.loc(line, column));
            }
            p = parent(p)?;
        }
    }

    /// Where the key of the entry at `path` is written, for errors about the key itself.
    pub fn key(&self, path: &str) -> Option<Location> {
        match self.positions.keys.get(path) {
            Some(&(line, column)) => Some(self.loc(line, column)),
            None => self.value(path),
        }
    }

    /// The origin to blame for `path`: its place in the file, or the file as a whole.
    pub fn origin(&self, path: &str) -> Origin {
        self.value(path)
            .map(Origin::At)
            .unwrap_or_else(|| Origin::File(self.file.clone()))
    }

    pub fn key_origin(&self, path: &str) -> Origin {
        self.key(path)
            .map(Origin::At)
            .unwrap_or_else(|| Origin::File(self.file.clone()))
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    fn loc(&self, line: usize, column: usize) -> Location {
        Location {
            file: self.file.clone(),
            line,
            column,
        }
    }
}

fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

/// Parses one YAML document. An empty file, a syntax error, a second document, a duplicate
/// key or a non-finite number are errors with a place and a hint.
pub fn parse(file: &Path, text: &str) -> Result<(Value, SourceMap), Diagnostic> {
    let at = |line, column| {
        Origin::At(Location {
            file: file.to_path_buf(),
            line,
            column,
        })
    };
    let (root, positions) = chorus_yaml::parse(text)
        .map_err(|e| Diagnostic::new(at(e.line, e.column), e.message, e.hint))?;
    if root.is_null() {
        return Err(Diagnostic::file(
            file,
            "the pipeline file is empty",
            "start from pipelines/quickstart.yaml: a pipeline needs at least `name`, `groups` and `stages`",
        ));
    }
    let map = SourceMap {
        file: file.to_path_buf(),
        positions,
    };
    Ok((root, map))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> (Value, SourceMap) {
        parse(Path::new("p.yaml"), text).unwrap()
    }

    #[test]
    fn positions_are_recorded_per_path() {
        let text = "name: x\nstages:\n  - id: a\n    needs: [b, c]\n";
        let (_, map) = parse_ok(text);
        let at = |p: &str| {
            let l = map.value(p).unwrap();
            (l.line, l.column)
        };
        assert_eq!(at("name"), (1, 7));
        assert_eq!(at("stages[0].id"), (3, 9));
        assert_eq!(at("stages[0].needs[1]"), (4, 16));
        let key = map.key("stages[0].needs").unwrap();
        assert_eq!((key.line, key.column), (4, 5));
        // Unknown paths fall back to the nearest ancestor.
        assert_eq!(at("stages[0].params.rule"), (3, 5));
    }

    #[test]
    fn syntax_errors_and_duplicates_have_places() {
        let err = parse(Path::new("p.yaml"), "a: [1, 2\nb: 3\n").unwrap_err();
        assert!(matches!(err.origin, Origin::At(_)), "{err}");
        let err = parse(Path::new("p.yaml"), "a: 1\na: 2\n").unwrap_err();
        assert!(err.message.contains("duplicate key `a`"), "{err}");
        let err = parse(Path::new("p.yaml"), "a: .inf\n").unwrap_err();
        assert!(err.message.contains("finite"), "{err}");
        let err = parse(Path::new("p.yaml"), "# only a comment\n").unwrap_err();
        assert!(err.message.contains("empty"), "{err}");
    }
}
