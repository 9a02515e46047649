//! File → checked pipeline: read, decode, parse, override, deserialise, validate, resolve.
//! Each step turns failures into [`Diagnostic`]s that point at the user's text.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::overrides::{self, Override};
use super::source::{self, SourceMap};
use super::{validate, Pipeline};
use crate::diagnostic::{nearest, Diagnostic, Diagnostics, Origin};
use crate::graph::Dag;
use crate::registry::{resolve_path, Registry};

/// A pipeline that passed every check, with what is needed to explain and run it.
#[derive(Debug)]
pub struct Loaded {
    pub file: PathBuf,
    /// The folder the pipeline's relative paths (its data files) resolve against: the
    /// pipeline file's own, or, for a resumed run, the original file's (from the manifest).
    pub base: PathBuf,
    pub pipeline: Pipeline,
    pub overrides: Vec<Override>,
    pub source: SourceMap,
    pub dag: Dag,
    /// The rules and metrics its stages may name, with the plugin libraries it loaded.
    pub registry: Arc<Registry>,
}

/// Loads and checks `file` with `overrides` applied first.
pub fn load(file: &Path, overrides: &[Override]) -> Result<Loaded, Diagnostics> {
    let bytes = std::fs::read(file).map_err(|e| {
        Diagnostic::file(
            file,
            format!("cannot read the pipeline file: {e}"),
            "check the path; shipped pipelines live in pipelines/",
        )
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let good = String::from_utf8_lossy(good);
        let line = good.matches('\n').count() + 1;
        let column = good.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        Diagnostic::new(
            Origin::At(crate::diagnostic::Location {
                file: file.to_path_buf(),
                line,
                column,
            }),
            "the file is not valid UTF-8",
            "save the file as UTF-8 (most editors offer it under 'encoding')",
        )
    })?;
    load_str(file, &text, overrides)
}

/// Checks pipeline text that claims to come from `file` (used by `load` and by tests).
pub fn load_str(file: &Path, text: &str, overrides: &[Override]) -> Result<Loaded, Diagnostics> {
    load_str_at(
        file,
        file.parent().unwrap_or(Path::new("")),
        text,
        overrides,
    )
}

/// [`load_str`] with relative data paths resolved against `base` instead of `file`'s folder
/// (a resumed run reads its pipeline from the run folder's manifest).
pub fn load_str_at(
    file: &Path,
    base: &Path,
    text: &str,
    overrides: &[Override],
) -> Result<Loaded, Diagnostics> {
    let (mut doc, source) = source::parse(file, text)?;
    let mut overridden = Vec::new();
    let mut errors = Vec::new();
    for ov in overrides {
        match overrides::apply(file, &mut doc, ov) {
            Ok(path) => overridden.push((path, ov.clone())),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(Diagnostics(errors));
    }
    let blame = Blame {
        source: &source,
        overridden: &overridden,
    };
    check_data(&doc, &blame)?;
    let pipeline: Pipeline = serde_path_to_error::deserialize(doc).map_err(|e| blame.serde(&e))?;
    let mut errors = validate::check(&pipeline, &blame);
    if errors.is_empty() && !pipeline.data.is_simulated() {
        // A real survey is read now, so that a broken file stops `chorus validate` too.
        if let Err(e) = pipeline.data.load(pipeline.seed, base) {
            errors.push(Diagnostic::new(
                blame.key_at("data"),
                e,
                "`chorus data inspect` on this pipeline shows what is read from each file",
            ));
        }
    }
    if errors.is_empty() {
        errors.extend(super::budget::check(
            &pipeline,
            &blame,
            super::budget::available_memory(),
        ));
    }
    let mut registry = Registry::default();
    for (i, written) in pipeline.plugins.iter().enumerate() {
        if let Err(e) = registry.load(&resolve_path(file, written)) {
            errors.push(Diagnostic::new(
                blame.at(&format!("plugins[{i}]")),
                e.to_string(),
                "plugin paths are relative to this pipeline file; build the library first \
                 (`cargo build --release` in its crate) and check it with `chorus plugins inspect PATH`",
            ));
        }
    }
    if !errors.is_empty() && !pipeline.plugins.is_empty() {
        // Without every library, stages that name their rules would only add noise.
        return Err(Diagnostics(errors));
    }
    let registry = Arc::new(registry);
    let dag = match Dag::build(&pipeline, &blame, &registry) {
        Ok(dag) => Some(dag),
        Err(more) => {
            errors.extend(more);
            None
        }
    };
    match dag {
        Some(dag) if errors.is_empty() => Ok(Loaded {
            file: file.to_path_buf(),
            base: base.to_path_buf(),
            pipeline,
            overrides: overrides.to_vec(),
            source,
            dag,
            registry,
        }),
        _ => Err(Diagnostics(errors)),
    }
}

/// Finds whom to blame for a path: the override that set it, or its place in the file.
pub struct Blame<'a> {
    source: &'a SourceMap,
    overridden: &'a [(String, Override)],
}

impl Blame<'_> {
    pub fn at(&self, path: &str) -> Origin {
        self.override_of(path)
            .unwrap_or_else(|| self.source.origin(path))
    }

    pub fn key_at(&self, path: &str) -> Origin {
        self.override_of(path)
            .unwrap_or_else(|| self.source.key_origin(path))
    }

    pub fn file(&self) -> &Path {
        self.source.file()
    }

    fn override_of(&self, path: &str) -> Option<Origin> {
        self.overridden
            .iter()
            .find(|(p, _)| {
                path == p
                    || path.starts_with(&format!("{p}."))
                    || path.starts_with(&format!("{p}["))
            })
            .map(|(_, ov)| Origin::Override(self.source.file().to_path_buf(), ov.to_string()))
    }

    /// A serde error at `path` (relative to the document) as a diagnostic with a fix.
    pub fn serde<E: std::fmt::Display>(&self, err: &serde_path_to_error::Error<E>) -> Diagnostic {
        let path = path_string(err.path());
        self.serde_at(&path, &err.inner().to_string())
    }

    /// Same, for an error found while deserialising a sub-tree that lives at `base`.
    pub fn serde_at(&self, path: &str, message: &str) -> Diagnostic {
        if let Some(field) = between(message, "unknown field `", "`") {
            // serde_path_to_error's path already ends at the unknown key.
            let path = path
                .strip_suffix(field)
                .map_or(path, |p| p.strip_suffix('.').unwrap_or(p));
            let expected = backticked(message.split_once("expected").map_or("", |(_, r)| r));
            let field_path = source::child_key(path, field);
            let hint = match nearest(field, expected.iter().copied()) {
                Some(best) => format!(
                    "did you mean `{best}`? (valid fields: {})",
                    expected.join(", ")
                ),
                None if expected.is_empty() => {
                    "remove this field: this place takes none".to_owned()
                }
                None => format!("remove it; valid fields: {}", expected.join(", ")),
            };
            return Diagnostic::new(
                self.key_at(&field_path),
                format!(
                    "unknown field `{field}` in `{}`",
                    source::display_path(path)
                ),
                hint,
            );
        }
        if let Some(variant) = between(message, "unknown variant `", "`") {
            let expected = backticked(message.split_once("expected").map_or("", |(_, r)| r));
            return Diagnostic::new(
                self.at(path),
                format!(
                    "unknown value `{variant}` at `{}`",
                    source::display_path(path)
                ),
                crate::diagnostic::suggest(variant, &expected, "values"),
            );
        }
        if let Some(field) = between(message, "missing field `", "`") {
            return Diagnostic::new(
                self.at(path),
                format!("`{}` needs the field `{field}`", source::display_path(path)),
                format!("add `{field}:` here (see schemas/pipeline.schema.json)"),
            );
        }
        Diagnostic::new(
            self.at(path),
            format!("at `{}`: {message}", source::display_path(path)),
            "fix the value's type: see schemas/pipeline.schema.json for what each field takes",
        )
    }
}

/// `inner` (a path inside the sub-tree at `base`, `a.b[2]` or empty) as a path of the file.
pub fn child_path(base: &str, inner: &str) -> String {
    if inner.is_empty() || inner.starts_with('[') {
        format!("{base}{inner}")
    } else {
        source::child_key(base, inner)
    }
}

/// serde_path_to_error's path in our `a.b[2].c` form.
pub fn path_string(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            serde_path_to_error::Segment::Seq { index } => out = source::child_index(&out, *index),
            serde_path_to_error::Segment::Map { key }
            | serde_path_to_error::Segment::Enum { variant: key } => {
                out = source::child_key(&out, key)
            }
            serde_path_to_error::Segment::Unknown => {}
        }
    }
    out
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = &text[text.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// Deserialises `data:` as the variant its `kind` names, first and on its own: serde's
/// internally tagged enums buffer their content and forget where inside it they failed, so a
/// wrong field would be blamed on `data` as a whole instead of on its own line.
fn check_data(doc: &Value, blame: &Blame<'_>) -> Result<(), Diagnostic> {
    use crate::data::SimulatorSpec;
    use chorus_surveys::spec::{GlobalOpinionQaSpec, WvsSpec};
    const KINDS: [&str; 3] = ["simulator", "wvs_json", "global_opinion_qa"];
    let Some(Value::Object(data)) = doc.get("data") else {
        return Ok(()); // serde reports a missing or mistyped `data`
    };
    let kind = match data.get("kind") {
        Some(Value::String(kind)) => kind.as_str(),
        Some(_) => {
            return Err(Diagnostic::new(
                blame.at("data.kind"),
                "`data.kind` must be a name".to_owned(),
                format!("one of {}", KINDS.join(", ")),
            ))
        }
        None => {
            return Err(Diagnostic::new(
                blame.key_at("data"),
                "`data` needs the field `kind`".to_owned(),
                format!("add `kind:` with one of {}", KINDS.join(", ")),
            ))
        }
    };
    let mut rest = data.clone();
    rest.remove("kind");
    let rest = Value::Object(rest);
    match kind {
        "simulator" => params::<SimulatorSpec>(&rest, "data", blame).map(drop),
        "wvs_json" => params::<WvsSpec>(&rest, "data", blame).map(drop),
        "global_opinion_qa" => params::<GlobalOpinionQaSpec>(&rest, "data", blame).map(drop),
        other => Err(Diagnostic::new(
            blame.at("data.kind"),
            format!("unknown value `{other}` at `data.kind`"),
            crate::diagnostic::suggest(other, &KINDS, "values"),
        )),
    }
}

/// Deserialises a kind's params (a sub-tree at `path`) with errors pointing into the file.
pub fn params<T: serde::de::DeserializeOwned>(
    value: &Value,
    path: &str,
    blame: &Blame<'_>,
) -> Result<T, Diagnostic> {
    serde_path_to_error::deserialize(value.clone()).map_err(|e| {
        let full = child_path(path, &path_string(e.path()));
        blame.serde_at(&full, &e.inner().to_string())
    })
}
