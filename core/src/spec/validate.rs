//! Checks that serde's types cannot express: ranges, names, paths, consistency between sections.
use std::path::{Component, Path};

use super::load::Blame;
use super::Pipeline;
use crate::diagnostic::Diagnostic;

/// All problems found; the DAG checks (ids, needs, cycles, params) live in [`crate::graph`].
pub fn check(p: &Pipeline, blame: &Blame<'_>) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    // A section-level complaint points at the section's key, not at its first entry.
    match (&p.round_loop, p.rounds) {
        (Some(_), None) => errors.push(Diagnostic::new(
            blame.key_at("loop"),
            "the pipeline has a `loop` but no `rounds`",
            "add `rounds: N` at the top level (N ≥ 1)",
        )),
        (None, Some(_)) => errors.push(Diagnostic::new(
            blame.key_at("rounds"),
            "`rounds` is set but the pipeline has no `loop`",
            "add a `loop:` block with the per-round stages, or remove `rounds`",
        )),
        _ => {}
    }
    let mut err = |path: &str, message: String, hint: &str| {
        errors.push(Diagnostic::new(blame.at(path), message, hint));
    };
    if p.rounds == Some(0) {
        err(
            "rounds",
            "`rounds` must be at least 1".into(),
            "set `rounds: 1` or more",
        );
    }
    if !is_name(&p.name) {
        err(
            "name",
            format!("`{}` cannot name a run folder", p.name),
            "use letters, digits, `-`, `_` and `.` only, e.g. `paper-minorities`",
        );
    }
    if let Err(why) = confined(Path::new(&p.output)) {
        err(
            "output",
            format!("output `{}` {why}", p.output),
            "give a relative folder inside the working directory, e.g. `runs`; use `chorus run --out DIR` to write elsewhere",
        );
    }
    if let Some(l) = &p.round_loop {
        if l.eval_every == 0 {
            err(
                "loop.eval_every",
                "`eval_every` must be at least 1".into(),
                "set `eval_every: 1` to evaluate every round",
            );
        }
        if l.stages.is_empty() {
            err(
                "loop.stages",
                "the loop has no stages".into(),
                "add the per-round stages, or remove `loop`",
            );
        }
    }
    if p.stages.is_empty() {
        err(
            "stages",
            "the pipeline has no stages".into(),
            "add at least a `split` stage and an `evaluate` stage",
        );
    }
    for (field, why, hint) in p.data.problems() {
        let at = if field.is_empty() {
            "data".to_owned()
        } else {
            format!("data.{field}")
        };
        let hint = if hint.is_empty() {
            "see schemas/pipeline.schema.json".to_owned()
        } else {
            hint
        };
        err(&at, why, &hint);
    }
    errors
}

/// A name safe in a folder name, a CSV cell and an override key.
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !s.starts_with('.')
}

/// Whether a path from a spec stays under the directory it is resolved against.
pub fn confined(path: &Path) -> Result<(), &'static str> {
    if path.as_os_str().is_empty() {
        return Err("is empty");
    }
    for c in path.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err("leaves the working directory (`..`)"),
            Component::RootDir | Component::Prefix(_) => return Err("is absolute"),
        }
    }
    Ok(())
}
