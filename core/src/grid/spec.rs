//! The grid file: YAML → a checked [`Grid`].
//!
//! A grid is parsed like a pipeline (every node keeps its line and column, so every complaint
//! points at the user's text) and then checked against its base pipeline: every cell is
//! loaded as the base with the cell's `-s KEY=VALUE` overrides, exactly as `chorus run` would
//! load it, so a grid that loads holds no cell that would be refused at start. A failure that
//! every cell with some axis key (or value) shares is reported at that key (or value); one
//! that only some combinations have is reported with the failing cells' labels, since only
//! `exclude` or a different base can fix it.
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use rayon::prelude::*;
use schemars::JsonSchema;
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::{Axis, Cell, Grid, Slurm};
use crate::diagnostic::{suggest, Diagnostic, Diagnostics, Origin};
use crate::registry::resolve_path;
use crate::spec::{self, child_index, child_key, display_path, Override, SourceMap};

/// A grid file: one base pipeline swept over axes of override values, each cell a run.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Grid")]
struct GridFile {
    /// Names the grid folder (`<output>/<name>`); letters, digits, `-`, `_`, `.`.
    name: String,
    /// The base pipeline file, relative to this grid file.
    base: String,
    /// Folder that receives the grid folder, relative to the working directory; it may not
    /// leave it.
    #[serde(default = "default_output")]
    output: String,
    /// How many cells run at once (at least 1); default: the number of cores.
    #[schemars(range(min = 1))]
    parallel: Option<usize>,
    /// Override keys (what `-s KEY=VALUE` takes: `seed`, `aggregate.rule`,
    /// `data.minority_shift`) and the values each sweeps: a list, or
    /// `{range: [start, end]}`. The cells are the cartesian product in the order the axes
    /// are written, the first axis varying slowest.
    #[schemars(extend("minProperties" = 1))]
    axes: BTreeMap<String, AxisValues>,
    /// Extra cells, appended after the product: each a mapping `KEY: VALUE` of axis keys or
    /// any other override key. An entry equal to a cell already in the grid is not added twice.
    #[serde(default)]
    include: Vec<BTreeMap<String, Value>>,
    /// Cells of the product to drop: those that have every `KEY: VALUE` of an entry (keys are
    /// axis keys, values among the axis's values).
    #[serde(default)]
    exclude: Vec<BTreeMap<String, Value>>,
    /// What each task asks for when the grid runs as a Slurm job array (`chorus grid FILE
    /// --emit slurm` writes the sbatch script; one task per cell).
    slurm: Option<Slurm>,
}

fn default_output() -> String {
    "runs/grids".to_owned()
}

/// The values of one axis: a list, or a range of integers.
// Deserialised by hand (below) so that a wrong shape says what an axis takes, where serde's
// untagged enums only say that nothing matched.
#[derive(JsonSchema)]
#[schemars(untagged)]
enum AxisValues {
    /// The values in order; each is read as `-s KEY=VALUE` would read it.
    List(#[schemars(length(min = 1))] Vec<Value>),
    /// The integers `start, start + 1, …, end − 1`.
    Range(RangeSpec),
}

/// `{range: [start, end]}`, end exclusive.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RangeSpec {
    /// `[start, end]`: two integers, `end` exclusive and greater than `start`.
    range: [i64; 2],
}

impl<'de> Deserialize<'de> for AxisValues {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Shape;
        impl<'de> Visitor<'de> for Shape {
            type Value = AxisValues;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of values or `{range: [start, end]}`")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<AxisValues, A::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq)).map(AxisValues::List)
            }

            // The map access passed in still tracks paths, so a bad range bound is reported
            // at its own place (`axes.seed.range[1]`).
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<AxisValues, A::Error> {
                RangeSpec::deserialize(MapAccessDeserializer::new(map)).map(AxisValues::Range)
            }
        }
        deserializer.deserialize_any(Shape)
    }
}

/// The most cells a grid may have. Every cell is loaded to check it and becomes a run of its
/// own; far beyond this a grid is a typo (a range end with a zero too many), and expanding it
/// would only hang.
const MAX_CELLS: usize = 10_000;

/// How many failing cells are described one by one. One bad combination usually fails in many
/// cells alike, so the rest are only counted.
const MAX_CELL_ERRORS: usize = 5;

/// Loads and checks a grid file; every problem as a Diagnostic with FILE:LINE:COL and a hint.
pub fn load(file: &Path) -> Result<Grid, Diagnostics> {
    let bytes = std::fs::read(file).map_err(|e| {
        Diagnostic::file(
            file,
            format!("cannot read the grid file: {e}"),
            "check the path; shipped grids live in pipelines/grids/",
        )
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        Diagnostic::file(
            file,
            "the grid file is not valid UTF-8",
            "save the file as UTF-8 (most editors offer it under 'encoding')",
        )
    })?;
    load_str(file, &text)
}

/// Checks grid text that claims to come from `file` (used by `load` and by tests); `base`
/// is read from disk, relative to `file`.
pub fn load_str(file: &Path, text: &str) -> Result<Grid, Diagnostics> {
    let (doc, map) = spec::parse(file, text).map_err(|d| match d.origin {
        // The parser's only whole-file complaint is an empty document, worded for pipelines.
        Origin::File(_) => Diagnostic::file(
            file,
            "the grid file is empty",
            "a grid needs at least `name`, `base` and `axes` (see schemas/grid.schema.json)",
        ),
        _ => d,
    })?;
    let problems = top_level(&doc, &map);
    if !problems.is_empty() {
        return Err(Diagnostics(problems));
    }
    let raw: GridFile = serde_path_to_error::deserialize(doc)
        .map_err(|e| serde_error(&map, &spec::path_string(e.path()), &e.inner().to_string()))?;
    Check {
        file,
        map: &map,
        errors: Vec::new(),
    }
    .grid(raw)
}

/// The JSON Schema of grid files (what `schemas/grid.schema.json` holds, pretty + trailing
/// newline, like the pipeline schema).
pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).expect("a schema serialises");
    text.push('\n');
    text
}

fn json_schema() -> Value {
    schemars::schema_for!(GridFile).to_value()
}

/// Unknown and missing top-level fields, all at once: serde would stop at the first, and a
/// grid file is short enough that a user fixes its header in one edit.
fn top_level(doc: &Value, map: &SourceMap) -> Vec<Diagnostic> {
    // Serde explains a document that is not a mapping.
    let Some(fields) = doc.as_object() else {
        return Vec::new();
    };
    let schema = json_schema();
    let known: Vec<&str> = schema["properties"]
        .as_object()
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut out: Vec<Diagnostic> = fields
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .map(|key| {
            Diagnostic::new(
                map.key_origin(key),
                format!("unknown field `{key}` in the grid file"),
                suggest(key, &known, "fields"),
            )
        })
        .collect();
    let required = schema["required"].as_array().into_iter().flatten();
    for field in required.filter_map(Value::as_str) {
        if !fields.contains_key(field) {
            let hint = match field {
                "name" => "add `name: my-grid`: it names the grid folder",
                "base" => "add `base: ../paper.yaml`: the pipeline to sweep, relative to this file",
                "axes" => "add `axes:` with one `KEY: [VALUES]` line per swept override key, e.g. `seed: {range: [0, 5]}`",
                _ => "see schemas/grid.schema.json",
            };
            out.push(Diagnostic::new(
                map.origin(""),
                format!("the grid file needs the field `{field}`"),
                hint,
            ));
        }
    }
    out
}

/// How a range is written, for every complaint about one.
const RANGE_HINT: &str =
    "write `{range: [START, END]}` with two integers, END exclusive, e.g. `{range: [0, 5]}` for 0 to 4";

/// A serde error at `path` of the grid file as a diagnostic with a fix.
fn serde_error(map: &SourceMap, path: &str, message: &str) -> Diagnostic {
    // Top-level fields were checked before, so only a range's mapping or `slurm` can hold an
    // unknown one.
    if let Some(field) = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next())
    {
        // serde_path_to_error's path already ends at the unknown key.
        let parent = path
            .strip_suffix(field)
            .map_or(path, |p| p.strip_suffix('.').unwrap_or(p));
        let hint = if parent == "slurm" {
            let schema = json_schema();
            let known: Vec<&str> = schema["$defs"]["Slurm"]["properties"]
                .as_object()
                .map(|p| p.keys().map(String::as_str).collect())
                .unwrap_or_default();
            suggest(field, &known, "fields")
        } else {
            RANGE_HINT.to_owned()
        };
        return Diagnostic::new(
            map.key_origin(&child_key(parent, field)),
            format!("unknown field `{field}` in `{}`", display_path(parent)),
            hint,
        );
    }
    let hint = match path.split(['.', '[']).next().unwrap_or_default() {
        "" => "a grid file is a mapping with `name`, `base` and `axes` (see schemas/grid.schema.json)",
        "name" | "base" | "output" => "write a plain string here",
        "parallel" => "write a whole number ≥ 1, or leave `parallel` out to use every core",
        "axes" if path.ends_with(".range") || path.contains(".range[") => RANGE_HINT,
        "axes" => "an axis is a list of values, e.g. `seed: [0, 1, 2]`, or a range, e.g. `seed: {range: [0, 3]}`",
        "slurm" => match path {
            "slurm" => "`slurm` is a mapping, e.g. `slurm: {cpus: 2, mem: 4G, time: \"01:00:00\"}`",
            "slurm.cpus" | "slurm.gpus" | "slurm.concurrency" => "write a whole number",
            "slurm.mem" => "write the size as a string, e.g. `mem: 4G`, or `mem: \"16000\"` for megabytes",
            "slurm.time" => "write the limit as a string, e.g. `time: \"01:00:00\"`, or `time: \"30\"` for minutes",
            p if p.starts_with("slurm.extra") => {
                "write a list of sbatch options, e.g. `extra: [--qos=long]`"
            }
            _ => "write a plain string here, e.g. `partition: cpu`",
        },
        _ => "each entry is a mapping `KEY: VALUE`, e.g. `{aggregate.rule: min, seed: 3}`",
    };
    Diagnostic::new(
        map.origin(path),
        format!("at `{}`: {message}", display_path(path)),
        hint,
    )
}

/// An axis with the paths of its key and of each value (a range's values all live at the
/// range).
struct Placed {
    axis: Axis,
    path: String,
    value_paths: Vec<String>,
}

/// A cell of the product with the index of its value on each axis.
struct ProductCell {
    cell: Cell,
    picks: Vec<usize>,
}

/// The checks after deserialising, collecting every problem.
struct Check<'a> {
    file: &'a Path,
    map: &'a SourceMap,
    errors: Vec<Diagnostic>,
}

impl Check<'_> {
    fn at(&mut self, path: &str, message: impl Into<String>, hint: impl Into<String>) {
        let origin = self.map.origin(path);
        self.errors.push(Diagnostic::new(origin, message, hint));
    }

    fn key_at(&mut self, path: &str, message: impl Into<String>, hint: impl Into<String>) {
        let origin = self.map.key_origin(path);
        self.errors.push(Diagnostic::new(origin, message, hint));
    }

    /// Where the key at `path` is written, to restore the order a mapping was written in
    /// (the value tree keeps keys sorted).
    fn position(&self, path: &str) -> (usize, usize) {
        self.map
            .key(path)
            .map_or((usize::MAX, usize::MAX), |l| (l.line, l.column))
    }

    /// An entry's settings in the order they are written.
    fn ordered(&self, path: &str, entry: &BTreeMap<String, Value>) -> Vec<(String, Value)> {
        let mut settings: Vec<(String, Value)> =
            entry.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        settings.sort_by_key(|(k, _)| self.position(&child_key(path, k)));
        settings
    }

    fn grid(mut self, raw: GridFile) -> Result<Grid, Diagnostics> {
        if !spec::is_name(&raw.name) {
            self.at(
                "name",
                format!("`{}` cannot name a grid folder", raw.name),
                "use letters, digits, `-`, `_` and `.` only, e.g. `paper-rules`",
            );
        }
        if let Err(why) = spec::confined(Path::new(&raw.output)) {
            self.at(
                "output",
                format!("output `{}` {why}", raw.output),
                "give a relative folder inside the working directory, e.g. `runs/grids`",
            );
        }
        let slurm = raw.slurm.unwrap_or_default();
        for problem in slurm.check() {
            self.at(
                &child_key("slurm", &problem.path),
                problem.message,
                problem.hint,
            );
        }
        if raw.parallel == Some(0) {
            self.at(
                "parallel",
                "`parallel` must be at least 1",
                "set `parallel: 1` to run one cell at a time, or leave it out to use every core",
            );
        }
        let base = resolve_path(self.file, &raw.base);
        let base_readable = match std::fs::read(&base) {
            Ok(_) => true,
            Err(e) => {
                self.at(
                    "base",
                    format!("cannot read the base pipeline {}: {e}", base.display()),
                    "`base` is a pipeline file, relative to this grid file, e.g. `../paper.yaml`",
                );
                false
            }
        };
        let before = self.errors.len();
        let axes = self.axes(&raw.axes);
        let exclude = self.exclude(&raw.exclude, &axes);
        let include: Vec<Vec<(String, Value)>> = raw
            .include
            .iter()
            .enumerate()
            .map(|(i, entry)| self.include_entry(i, entry))
            .collect();
        self.size(&axes);
        // Cells are only meaningful once every axis, entry and the base are sound.
        if self.errors.len() == before && base_readable && self.base_loads(&base, &raw.base) {
            let alone = self.alone(&base, &axes);
            // Without the broken axes (whose overrides stop a load before any other check),
            // the others are still checked; their cells are only for finding problems then.
            let sound: Vec<(&Placed, &Vec<Vec<Diagnostic>>)> = axes
                .iter()
                .zip(&alone)
                .filter_map(|(p, a)| Some((p, a.as_ref()?)))
                .collect();
            let all_sound = sound.len() == axes.len();
            let (placed, alone): (Vec<&Placed>, Vec<&Vec<Vec<Diagnostic>>>) =
                sound.into_iter().unzip();
            let bare: Vec<&Axis> = placed.iter().map(|p| &p.axis).collect();
            let product = product(&bare, if all_sound { &exclude } else { &[] });
            self.product_cells(&base, &placed, &alone, &product);
            self.include_cells(&base, &include);
            if self.errors.is_empty() {
                let bare: Vec<Axis> = axes.into_iter().map(|p| p.axis).collect();
                let cells = cells(&bare, product, include);
                return Ok(Grid {
                    file: self.file.to_path_buf(),
                    dir: Path::new(&raw.output).join(&raw.name),
                    name: raw.name,
                    base,
                    axes: bare,
                    cells,
                    parallel: raw.parallel.unwrap_or_else(|| {
                        std::thread::available_parallelism().map_or(1, |n| n.get())
                    }),
                    slurm,
                });
            }
        }
        Err(Diagnostics(self.errors))
    }

    /// The axes in the order they are written, expanded; broken ones are reported and left
    /// out.
    fn axes(&mut self, raw: &BTreeMap<String, AxisValues>) -> Vec<Placed> {
        if raw.is_empty() {
            self.key_at(
                "axes",
                "`axes` is empty: the grid sweeps nothing",
                "add one `KEY: [VALUES]` line per swept override key, e.g. `seed: {range: [0, 5]}`",
            );
        }
        let mut keys: Vec<&String> = raw.keys().collect();
        keys.sort_by_key(|k| self.position(&child_key("axes", k)));
        let mut out = Vec::new();
        for key in keys {
            let path = child_key("axes", key);
            let (values, value_paths) = match &raw[key] {
                AxisValues::List(values) => {
                    for (i, value) in values.iter().enumerate() {
                        if values[..i].iter().any(|v| same(v, value)) {
                            self.at(
                                &child_index(&path, i),
                                format!("axis `{key}` lists `{}` twice", show(value)),
                                "remove the repeat: equal values make the same run",
                            );
                        }
                    }
                    let paths = (0..values.len()).map(|i| child_index(&path, i)).collect();
                    (values.clone(), paths)
                }
                AxisValues::Range(RangeSpec {
                    range: [start, end],
                }) => {
                    let range_path = child_key(&path, "range");
                    let len = i128::from(*end) - i128::from(*start);
                    if len > MAX_CELLS as i128 {
                        self.at(
                            &range_path,
                            format!("the range of axis `{key}` has {len} values; a grid has at most {MAX_CELLS} cells"),
                            "narrow the range, or split the sweep into several grids",
                        );
                        continue;
                    }
                    let values: Vec<Value> = (*start..*end).map(Value::from).collect();
                    (values, vec![range_path; len.max(0) as usize])
                }
            };
            if values.is_empty() {
                self.key_at(
                    &path,
                    format!("axis `{key}` has no values"),
                    match &raw[key] {
                        AxisValues::List(_) => {
                            "list at least one value, e.g. `[a, b]`, or remove the axis"
                        }
                        AxisValues::Range(_) => RANGE_HINT,
                    },
                );
                continue;
            }
            out.push(Placed {
                axis: Axis {
                    key: key.clone(),
                    values,
                },
                path,
                value_paths,
            });
        }
        out
    }

    /// Exclude entries as settings; each key must be an axis and each value one of its values,
    /// or the entry could never match (a typo that would silently keep cells).
    fn exclude(
        &mut self,
        raw: &[BTreeMap<String, Value>],
        axes: &[Placed],
    ) -> Vec<Vec<(String, Value)>> {
        let keys: Vec<&str> = axes.iter().map(|p| p.axis.key.as_str()).collect();
        let mut out = Vec::new();
        for (i, entry) in raw.iter().enumerate() {
            let path = child_index("exclude", i);
            if entry.is_empty() {
                self.at(
                    &path,
                    "an empty `exclude` entry matches every cell",
                    "name the axis values of the cells to drop, e.g. `{seed: 3}`",
                );
                continue;
            }
            let settings = self.ordered(&path, entry);
            for (key, value) in &settings {
                let setting = child_key(&path, key);
                match axes.iter().find(|p| &p.axis.key == key) {
                    None => self.key_at(
                        &setting,
                        format!("`{key}` is not an axis, so no cell can match this entry"),
                        suggest(key, &keys, "axis keys"),
                    ),
                    Some(p) if !p.axis.values.iter().any(|v| same(v, value)) => self.at(
                        &setting,
                        format!("`{}` is not a value of axis `{key}`", show(value)),
                        format!("its values: {}", list(&p.axis.values)),
                    ),
                    Some(_) => {}
                }
            }
            out.push(settings);
        }
        out
    }

    /// One include entry's settings in the order they are written (its keys are checked
    /// against the base with its cell).
    fn include_entry(&mut self, i: usize, entry: &BTreeMap<String, Value>) -> Vec<(String, Value)> {
        let path = child_index("include", i);
        if entry.is_empty() {
            self.at(
                &path,
                "an empty `include` entry names no cell",
                "give the cell's settings, e.g. `{aggregate.rule: tilted, seed: 0}`",
            );
        }
        self.ordered(&path, entry)
    }

    fn size(&mut self, axes: &[Placed]) {
        let total = axes
            .iter()
            .try_fold(1usize, |n, p| n.checked_mul(p.axis.values.len()));
        if total.is_none_or(|n| n > MAX_CELLS) {
            let count = total.map_or_else(|| "too many".to_owned(), |n| n.to_string());
            self.key_at(
                "axes",
                format!("the axes make {count} cells; a grid has at most {MAX_CELLS}"),
                "narrow the axes, or split the sweep into several grids",
            );
        }
    }

    /// Whether the base pipeline loads alone; if not, its own diagnostics (in the base file)
    /// follow one at `base`, since every cell would fail with them.
    fn base_loads(&mut self, base: &Path, written: &str) -> bool {
        let Err(found) = spec::load(base, &[]) else {
            return true;
        };
        self.at(
            "base",
            format!("the base pipeline `{written}` does not load; its problems follow"),
            format!(
                "fix it first: `chorus validate {}` checks it alone",
                base.display()
            ),
        );
        self.errors.extend(found.0);
        false
    }

    /// Loads the base with each axis value alone (phase one of the base checks). An axis
    /// whose key the override machinery refuses (it names no field or stage) is reported at
    /// the key and marked broken: that does not depend on any other setting. Everything else
    /// found is kept as a suspicion, since a knob or value may be valid only together with
    /// another axis's value (`temperature` with `rule: tilted`).
    fn alone(&mut self, base: &Path, axes: &[Placed]) -> Vec<Option<Vec<Vec<Diagnostic>>>> {
        let mut out = Vec::new();
        for placed in axes {
            let key = &placed.axis.key;
            let found: Vec<Vec<Diagnostic>> = placed
                .axis
                .values
                .par_iter()
                .map(|value| {
                    let ov = Override {
                        key: key.clone(),
                        value: value.to_string(),
                    };
                    spec::load(base, &[ov]).map_or_else(|d| d.0, |_| Vec::new())
                })
                .collect();
            let refused = found
                .iter()
                .flatten()
                .find(|d| is_override(d) && refuses_key(d));
            match refused {
                Some(d) => {
                    let origin = self.map.key_origin(&placed.path);
                    self.errors
                        .push(Diagnostic::new(origin, d.message.clone(), d.hint.clone()));
                    out.push(None);
                }
                None => out.push(Some(found)),
            }
        }
        out
    }

    /// Loads every cell of the product of the sound axes (phase two). A suspicion from
    /// [`Check::alone`] is confirmed when no cell that has the value loads: then it is reported
    /// at the value, or at the key when every value of the axis is refused for its key. A
    /// failing cell that no reported key or value explains is reported with its label at
    /// `axes`, since only the combination is at fault.
    fn product_cells(
        &mut self,
        base: &Path,
        axes: &[&Placed],
        alone: &[&Vec<Vec<Diagnostic>>],
        product: &[ProductCell],
    ) {
        let found: Vec<Vec<Diagnostic>> = product
            .par_iter()
            .map(|c| spec::load(base, &c.cell.overrides()).map_or_else(|d| d.0, |_| Vec::new()))
            .collect();
        let clean: Vec<bool> = found.iter().map(Vec::is_empty).collect();
        // Per axis: the values reported (all of them when the key is).
        let mut reported: Vec<Vec<bool>> = Vec::new();
        for (placed, alone) in axes.iter().zip(alone) {
            let a = reported.len();
            let key = &placed.axis.key;
            let acquitted = |v: usize| {
                product
                    .iter()
                    .zip(&clean)
                    .any(|(c, &ok)| ok && c.picks[a] == v)
            };
            let mut bad = vec![false; alone.len()];
            if alone.iter().all(|e| key_error(e, key).is_some()) && !clean.contains(&true) {
                if let Some(d) = alone.first().and_then(|e| key_error(e, key)) {
                    let origin = self.map.key_origin(&placed.path);
                    self.errors
                        .push(Diagnostic::new(origin, d.message.clone(), d.hint.clone()));
                }
                reported.push(vec![true; alone.len()]);
                continue;
            }
            for (v, errors) in alone.iter().enumerate() {
                if errors.is_empty() || acquitted(v) {
                    continue;
                }
                bad[v] = true;
                let origin = self.map.origin(&placed.value_paths[v]);
                for d in errors {
                    let message = if is_override(d) {
                        d.message.clone()
                    } else {
                        format!(
                            "with `{key}: {}` the base pipeline does not load: {}: {}",
                            show(&placed.axis.values[v]),
                            d.origin,
                            d.message
                        )
                    };
                    self.errors
                        .push(Diagnostic::new(origin.clone(), message, d.hint.clone()));
                }
            }
            reported.push(bad);
        }
        let failing: Vec<(&Cell, &Diagnostic)> = product
            .iter()
            .zip(&found)
            .filter(|(c, _)| !c.picks.iter().zip(&reported).any(|(&v, bad)| bad[v]))
            .filter_map(|(c, errors)| errors.first().map(|d| (&c.cell, d)))
            .collect();
        for (cell, d) in failing.iter().take(MAX_CELL_ERRORS) {
            self.key_at(
                "axes",
                format!(
                    "cell {} (`{}`) does not load: {}: {}",
                    cell.index,
                    cell.label(),
                    d.origin,
                    d.message
                ),
                format!(
                    "{}; or drop the combination with an `exclude` entry",
                    d.hint
                ),
            );
        }
        if failing.len() > MAX_CELL_ERRORS {
            self.key_at(
                "axes",
                format!("{} more cells do not load", failing.len() - MAX_CELL_ERRORS),
                "fix the cells above first; the others most likely fail alike",
            );
        }
    }

    /// Loads each include entry's cell; a failure of one of its overrides is reported at that
    /// key or value of the entry, any other at the entry.
    fn include_cells(&mut self, base: &Path, include: &[Vec<(String, Value)>]) {
        let found: Vec<Vec<Diagnostic>> = include
            .par_iter()
            .map(|settings| {
                let cell = Cell {
                    index: 0,
                    settings: settings.clone(),
                };
                spec::load(base, &cell.overrides()).map_or_else(|d| d.0, |_| Vec::new())
            })
            .collect();
        for (i, (settings, ds)) in include.iter().zip(found).enumerate() {
            let path = child_index("include", i);
            let cell = Cell {
                index: 0,
                settings: settings.clone(),
            };
            let overrides = cell.overrides();
            for d in ds {
                match blamed_setting(&d, &overrides) {
                    Some(s) => {
                        let (key, _) = &settings[s];
                        let setting = child_key(&path, key);
                        let origin = if names_the_key(&d, key) {
                            self.map.key_origin(&setting)
                        } else {
                            self.map.origin(&setting)
                        };
                        self.errors.push(Diagnostic::new(origin, d.message, d.hint));
                    }
                    None => self.at(
                        &path,
                        format!(
                            "the include entry `{}` does not load: {}: {}",
                            cell.label(),
                            d.origin,
                            d.message
                        ),
                        d.hint,
                    ),
                }
            }
        }
    }
}

/// The product of the axes, first axis slowest, minus the cells an exclude entry matches.
fn product(axes: &[&Axis], exclude: &[Vec<(String, Value)>]) -> Vec<ProductCell> {
    let total: usize = axes.iter().map(|a| a.values.len()).product();
    let mut out = Vec::new();
    for n in 0..total {
        let mut rest = n;
        let mut picks = vec![0; axes.len()];
        for (a, axis) in axes.iter().enumerate().rev() {
            picks[a] = rest % axis.values.len();
            rest /= axis.values.len();
        }
        let settings: Vec<(String, Value)> = axes
            .iter()
            .zip(&picks)
            .map(|(axis, &v)| (axis.key.clone(), axis.values[v].clone()))
            .collect();
        let cell = Cell {
            index: out.len(),
            settings,
        };
        let dropped = exclude.iter().any(|entry| {
            entry
                .iter()
                .all(|(k, v)| cell.get(k).is_some_and(|cv| same(cv, v)))
        });
        if !dropped {
            out.push(ProductCell { cell, picks });
        }
    }
    out
}

/// The grid's cells: the product, then each include entry not already there, its axis keys
/// in axis order and its other keys in the entry's order; numbered in that order.
fn cells(
    axes: &[Axis],
    product: Vec<ProductCell>,
    include: Vec<Vec<(String, Value)>>,
) -> Vec<Cell> {
    let mut cells: Vec<Cell> = product.into_iter().map(|c| c.cell).collect();
    for entry in include {
        let is_axis = |k: &str| axes.iter().any(|a| a.key == k);
        let mut settings: Vec<(String, Value)> = axes
            .iter()
            .filter_map(|a| entry.iter().find(|(k, _)| *k == a.key).cloned())
            .collect();
        settings.extend(entry.into_iter().filter(|(k, _)| !is_axis(k)));
        let known = cells.iter().any(|c| {
            c.settings.len() == settings.len()
                && settings
                    .iter()
                    .all(|(k, v)| c.get(k).is_some_and(|cv| same(cv, v)))
        });
        if !known {
            cells.push(Cell {
                index: cells.len(),
                settings,
            });
        }
    }
    cells
}

/// Which of `overrides` a diagnostic from loading the base with them blames, if any.
fn blamed_setting(d: &Diagnostic, overrides: &[Override]) -> Option<usize> {
    match &d.origin {
        Origin::Override(_, typed) => overrides.iter().position(|o| o.to_string() == *typed),
        _ => None,
    }
}

fn is_override(d: &Diagnostic) -> bool {
    matches!(d.origin, Origin::Override(..))
}

/// Whether the override machinery refused an override's key: it names no top-level field
/// or stage param path (what `spec::overrides` refuses before any check of values).
fn refuses_key(d: &Diagnostic) -> bool {
    const REFUSALS: [&str; 3] = [
        "is neither a top-level field nor a stage id",
        "is a stage; an override must name one of its params",
        "does not exist in the pipeline",
    ];
    REFUSALS.iter().any(|m| d.message.contains(m))
}

/// Whether an override's diagnostic is about its key rather than its value: the key is
/// refused, or names a field its place does not have (serde's unknown field, the last segment
/// of the key). Every other complaint is about the value.
fn names_the_key(d: &Diagnostic, key: &str) -> bool {
    let last = key.rsplit('.').next().unwrap_or(key);
    refuses_key(d) || d.message.starts_with(&format!("unknown field `{last}`"))
}

/// The first of one override's diagnostics that is about its key.
fn key_error<'a>(errors: &'a [Diagnostic], key: &str) -> Option<&'a Diagnostic> {
    errors
        .iter()
        .find(|d| is_override(d) && names_the_key(d, key))
}

/// Equal as the user means it: YAML reads `1` as an integer and `1.0` as a float, and both
/// make the same pipeline.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// A value as the user wrote it: strings bare, the rest as JSON.
fn show(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An axis's values for a hint; long ranges are cut.
fn list(values: &[Value]) -> String {
    let shown: Vec<String> = values.iter().take(8).map(show).collect();
    let more = if values.len() > 8 { ", …" } else { "" };
    format!("{}{more}", shown.join(", "))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::json;

    use super::*;

    /// The README's minimal pipeline with a training loop, so that `aggregate.rule` and its
    /// knobs can be swept; its rule (`mean`) takes no `temperature`.
    const BASE: &str = "\
name: base
seed: 7
output: runs
rounds: 2
data: {kind: simulator, questions: 20, options: 4, minority_shift: 2.0, groups: {count: 3, minorities: 1}}
stages:
  - {id: split, kind: split, params: {eval_fraction: 0.2, respondents: 10}}
  - {id: reward_model, kind: reward_model, needs: [split]}
  - {id: policy, kind: policy, needs: [split]}
loop:
  carry: [{from: policy, to: ppo}]
  stages:
    - {id: rollout, kind: rollout, needs: [split, policy], params: {batch: 8}}
    - {id: score, kind: score, needs: [split, rollout, reward_model]}
    - {id: aggregate, kind: aggregate, needs: [score], params: {rule: mean}}
    - {id: ppo, kind: ppo, needs: [policy, rollout, aggregate]}
    - {id: evaluate, kind: evaluate, needs: [split, ppo]}
";

    /// A folder with `base.yaml` and the grid file `grids/g.yaml` (which names `../base.yaml`).
    struct Dir(tempfile::TempDir);

    impl Dir {
        fn new() -> Self {
            Self::with_base(BASE)
        }

        fn with_base(base: &str) -> Self {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("base.yaml"), base).unwrap();
            std::fs::create_dir(dir.path().join("grids")).unwrap();
            Dir(dir)
        }

        fn grid_file(&self) -> PathBuf {
            self.0.path().join("grids/g.yaml")
        }

        fn load(&self, text: &str) -> Result<Grid, Diagnostics> {
            std::fs::write(self.grid_file(), text).unwrap();
            load(&self.grid_file())
        }

        fn ok(&self, text: &str) -> Grid {
            self.load(text).unwrap_or_else(|e| panic!("{e}"))
        }

        fn errors(&self, text: &str) -> Diagnostics {
            match self.load(text) {
                Ok(grid) => panic!("expected errors, got {} cells", grid.cells.len()),
                Err(e) => e,
            }
        }
    }

    /// The one diagnostic whose message contains `needle`, with every diagnostic on failure.
    fn find<'a>(errors: &'a Diagnostics, needle: &str) -> &'a Diagnostic {
        let found: Vec<&Diagnostic> = errors
            .0
            .iter()
            .filter(|d| d.message.contains(needle))
            .collect();
        assert_eq!(found.len(), 1, "`{needle}` once in:\n{errors}");
        found[0]
    }

    /// Line and column of a diagnostic in the grid file.
    fn place(d: &Diagnostic) -> (usize, usize) {
        match &d.origin {
            Origin::At(l) => {
                assert!(l.file.ends_with("grids/g.yaml"), "{d}");
                (l.line, l.column)
            }
            other => panic!("no place: {other}"),
        }
    }

    fn labels(grid: &Grid) -> Vec<String> {
        grid.cells.iter().map(Cell::label).collect()
    }

    const HEAD: &str = "name: g\nbase: ../base.yaml\n";

    #[test]
    fn cells_are_the_product_in_written_axis_order() {
        let dir = Dir::new();
        // `seed` is written first, so it varies slowest (not alphabetical order).
        let grid = dir.ok(&format!(
            "{HEAD}axes:\n  seed: {{range: [0, 2]}}\n  aggregate.rule: [min, max, mean]\n"
        ));
        let keys: Vec<&str> = grid.axes.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(keys, ["seed", "aggregate.rule"]);
        assert_eq!(
            labels(&grid),
            [
                "seed=0 aggregate.rule=min",
                "seed=0 aggregate.rule=max",
                "seed=0 aggregate.rule=mean",
                "seed=1 aggregate.rule=min",
                "seed=1 aggregate.rule=max",
                "seed=1 aggregate.rule=mean",
            ]
        );
        let indices: Vec<usize> = grid.cells.iter().map(|c| c.index).collect();
        assert_eq!(indices, (0..6).collect::<Vec<_>>());
        assert_eq!(grid.cells[4].get("aggregate.rule"), Some(&json!("max")));
        assert_eq!(grid.cells[4].get("seed"), Some(&json!(1)));
    }

    #[test]
    fn ranges_expand_to_integers_end_exclusive() {
        let grid = Dir::new().ok(&format!("{HEAD}axes:\n  seed: {{range: [3, 6]}}\n"));
        assert_eq!(grid.axes[0].values, [json!(3), json!(4), json!(5)]);
        assert_eq!(labels(&grid), ["seed=3", "seed=4", "seed=5"]);
    }

    #[test]
    fn defaults_and_paths() {
        let dir = Dir::new();
        let grid = dir.ok(&format!("{HEAD}axes:\n  seed: [1]\n"));
        assert_eq!(grid.name, "g");
        assert_eq!(grid.dir, Path::new("runs/grids/g"));
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(grid.parallel, cores);
        assert_eq!(grid.file, dir.grid_file());
        // `base` is relative to the grid file's folder, not to the working directory.
        let base = std::path::absolute(dir.0.path().join("grids/../base.yaml")).unwrap();
        assert_eq!(grid.base, base);
        assert!(grid.base.is_file());

        let grid = dir.ok(&format!(
            "{HEAD}output: out/sweeps\nparallel: 3\naxes:\n  seed: [1]\n"
        ));
        assert_eq!(grid.dir, Path::new("out/sweeps/g"));
        assert_eq!(grid.parallel, 3);
    }

    #[test]
    fn the_slurm_section_is_carried_and_defaults_without_it() {
        let dir = Dir::new();
        let grid = dir.ok(&format!("{HEAD}axes:\n  seed: [1]\n"));
        assert_eq!(grid.slurm, Slurm::default());
        let grid = dir.ok(&format!(
            "{HEAD}axes:\n  seed: [1]\nslurm:\n  cpus: 2\n  mem: 4G\n  time: \"01:00:00\"\n  \
             partition: cpu\n  concurrency: 8\n  extra: [--qos=long]\n"
        ));
        assert_eq!(
            grid.slurm,
            Slurm {
                cpus: 2,
                mem: Some("4G".to_owned()),
                time: Some("01:00:00".to_owned()),
                partition: Some("cpu".to_owned()),
                concurrency: Some(8),
                extra: vec!["--qos=long".to_owned()],
                ..Slurm::default()
            }
        );
    }

    #[test]
    fn slurm_problems_are_reported_in_place() {
        let dir = Dir::new();
        let errors = dir.errors(&format!(
            "{HEAD}axes:\n  seed: [1]\nslurm:\n  cpus: 0\n  mem: 4GB\n  time: 1h\n  \
             extra: [--qos=long, --mem=2G]\n"
        ));
        let cpus = find(&errors, "`slurm.cpus` must be at least 1");
        assert_eq!(place(cpus), (6, 9));
        let mem = find(&errors, "`4GB` is not a Slurm memory size");
        assert_eq!(place(mem), (7, 8));
        assert!(mem.hint.contains("`4G`"), "{mem}");
        let time = find(&errors, "`1h` is not a Slurm time limit");
        assert_eq!(place(time), (8, 9));
        let extra = find(&errors, "`--mem=2G` sets `--mem`");
        assert_eq!(place(extra), (9, 23));
        assert!(extra.hint.contains("slurm.mem"), "{extra}");
        assert_eq!(errors.0.len(), 4, "{errors}");

        let errors = dir.errors(&format!("{HEAD}axes:\n  seed: [1]\nslurm:\n  cpu: 2\n"));
        let d = find(&errors, "unknown field `cpu` in `slurm`");
        assert_eq!(place(d), (6, 3));
        assert!(d.hint.contains("did you mean `cpus`?"), "{d}");

        let errors = dir.errors(&format!("{HEAD}axes:\n  seed: [1]\nslurm:\n  mem: 16000\n"));
        let d = find(&errors, "at `slurm.mem`: invalid type: integer `16000`");
        assert_eq!(place(d), (6, 8));
        assert!(d.hint.contains(r#"`mem: "16000"`"#), "{d}");

        let errors = dir.errors(&format!("{HEAD}axes:\n  seed: [1]\nslurm: 4\n"));
        let d = find(&errors, "at `slurm`");
        assert!(d.hint.contains("is a mapping"), "{d}");
    }

    #[test]
    fn exclude_drops_matching_cells_and_renumbers() {
        let grid = Dir::new().ok(&format!(
            "{HEAD}axes:\n  aggregate.rule: [min, max]\n  seed: {{range: [0, 3]}}\n\
             exclude:\n  - {{aggregate.rule: max, seed: 1}}\n  - {{seed: 2}}\n"
        ));
        assert_eq!(
            labels(&grid),
            [
                "aggregate.rule=min seed=0",
                "aggregate.rule=min seed=1",
                "aggregate.rule=max seed=0"
            ]
        );
        let indices: Vec<usize> = grid.cells.iter().map(|c| c.index).collect();
        assert_eq!(indices, [0, 1, 2]);
    }

    #[test]
    fn include_appends_cells_once_in_axis_then_entry_order() {
        let grid = Dir::new().ok(&format!(
            "{HEAD}axes:\n  aggregate.rule: [min, max]\n  seed: [0]\n\
             include:\n\
             \x20 - {{seed: 0, aggregate.temperature: -1.0, aggregate.rule: tilted, aggregate.normalize: rank}}\n\
             \x20 - {{aggregate.rule: min, seed: 0}}\n\
             \x20 - {{aggregate.rule: tilted, seed: 0, aggregate.temperature: -1.0, aggregate.normalize: rank}}\n\
             \x20 - {{seed: 0}}\n"
        ));
        assert_eq!(
            labels(&grid),
            [
                "aggregate.rule=min seed=0",
                "aggregate.rule=max seed=0",
                // Axis keys in axis order, then the entry's other keys as written.
                "aggregate.rule=tilted seed=0 aggregate.temperature=-1.0 aggregate.normalize=rank",
                // An include entry need not set every axis.
                "seed=0",
            ]
        );
        assert_eq!(grid.cells[2].index, 2);
        assert_eq!(grid.cells[3].index, 3);
    }

    #[test]
    fn header_problems_are_reported_together() {
        let dir = Dir::new();
        let errors = dir.errors("output: x\naxis:\n  seed: [1]\n");
        let unknown = find(&errors, "unknown field `axis`");
        assert_eq!(place(unknown), (2, 1));
        assert!(unknown.hint.contains("did you mean `axes`?"), "{unknown}");
        for field in ["name", "base", "axes"] {
            let missing = find(&errors, &format!("needs the field `{field}`"));
            assert_eq!(place(missing), (1, 1));
            assert!(missing.hint.contains(&format!("add `{field}")), "{missing}");
        }
        assert_eq!(errors.0.len(), 4, "{errors}");
    }

    #[test]
    fn empty_and_non_mapping_files() {
        let dir = Dir::new();
        let errors = dir.errors("# nothing\n");
        assert!(
            errors.0[0].message.contains("the grid file is empty"),
            "{errors}"
        );
        assert!(errors.0[0].hint.contains("`name`, `base` and `axes`"));
        let errors = dir.errors("- seed\n");
        assert_eq!(place(&errors.0[0]), (1, 1));
        assert!(
            errors.0[0].hint.contains("a grid file is a mapping"),
            "{errors}"
        );
        let missing = load(&dir.0.path().join("nope.yaml")).unwrap_err();
        assert!(missing.0[0].message.contains("cannot read the grid file"));
    }

    #[test]
    fn name_output_parallel_and_base_are_checked_in_place() {
        let dir = Dir::new();
        let errors = dir.errors(
            "name: 'a b'\nbase: ../missing.yaml\noutput: ../elsewhere\nparallel: 0\naxes:\n  seed: [1]\n",
        );
        let name = find(&errors, "`a b` cannot name a grid folder");
        assert_eq!(place(name), (1, 7));
        assert!(name.hint.contains("letters, digits"));
        let base = find(&errors, "cannot read the base pipeline");
        assert_eq!(place(base), (2, 7));
        assert!(base.message.contains("missing.yaml"), "{base}");
        assert!(base.hint.contains("relative to this grid file"));
        let output = find(
            &errors,
            "output `../elsewhere` leaves the working directory",
        );
        assert_eq!(place(output), (3, 9));
        assert!(output.hint.contains("relative folder"));
        let parallel = find(&errors, "`parallel` must be at least 1");
        assert_eq!(place(parallel), (4, 11));
        assert!(parallel.hint.contains("parallel: 1"));
        assert_eq!(errors.0.len(), 4, "{errors}");

        let errors = dir.errors(&format!("{HEAD}output: /tmp/x\naxes:\n  seed: [1]\n"));
        assert_eq!(place(find(&errors, "is absolute")), (3, 9));
        let errors = dir.errors(&format!("{HEAD}parallel: -2\naxes:\n  seed: [1]\n"));
        let d = &errors.0[0];
        assert_eq!(place(d), (3, 11));
        assert!(d.hint.contains("whole number"), "{d}");
    }

    #[test]
    fn empty_axes_and_ranges_point_at_the_axis() {
        let dir = Dir::new();
        let errors = dir.errors(&format!(
            "{HEAD}axes:\n  seed: []\n  rounds: {{range: [3, 3]}}\n  data.groups.count: {{range: [5, 2]}}\n"
        ));
        let list = find(&errors, "axis `seed` has no values");
        assert_eq!(place(list), (4, 3));
        assert!(list.hint.contains("at least one value"));
        let range = find(&errors, "axis `rounds` has no values");
        assert_eq!(place(range), (5, 3));
        assert!(range.hint.contains("END exclusive"), "{range}");
        assert_eq!(
            place(find(&errors, "axis `data.groups.count` has no values")),
            (6, 3)
        );

        let errors = dir.errors(&format!("{HEAD}axes: {{}}\n"));
        let d = find(&errors, "`axes` is empty");
        assert_eq!(place(d), (3, 1));
    }

    #[test]
    fn a_range_is_two_integers() {
        let dir = Dir::new();
        let cases = [
            // (axis text, message part, line:col)
            (
                "{range: [0, a]}",
                "invalid type: string \"a\", expected i64",
                (4, 21),
            ),
            ("{range: [0, 1, 2]}", "invalid length", (4, 17)),
            (
                "{range: [0, 1], step: 2}",
                "unknown field `step` in `axes.seed`",
                (4, 25),
            ),
            ("{}", "missing field `range`", (4, 9)),
            (
                "3",
                "expected a list of values or `{range: [start, end]}`",
                (4, 9),
            ),
        ];
        for (axis, message, at) in cases {
            let errors = dir.errors(&format!("{HEAD}axes:\n  seed: {axis}\n"));
            let d = find(&errors, message);
            assert_eq!(place(d), at, "{d}");
            assert!(
                d.hint.contains("{range: [START, END]}") || d.hint.contains("an axis is a list"),
                "{d}"
            );
        }
    }

    #[test]
    fn an_unknown_axis_key_is_reported_at_the_key() {
        let dir = Dir::new();
        let errors = dir.errors(&format!(
            "{HEAD}axes:\n  seed: [1, 2]\n  agregate.rule: [min, max]\n  split.eval_fractio: [0.3]\n"
        ));
        let head = find(
            &errors,
            "`agregate` is neither a top-level field nor a stage id",
        );
        assert_eq!(place(head), (5, 3));
        assert!(head.hint.contains("did you mean `aggregate`?"), "{head}");
        let param = find(&errors, "unknown field `eval_fractio`");
        assert_eq!(place(param), (6, 3));
        assert!(
            param.hint.contains("did you mean `eval_fraction`?"),
            "{param}"
        );
        assert_eq!(errors.0.len(), 2, "{errors}");
    }

    #[test]
    fn a_bad_value_is_reported_at_the_value() {
        let dir = Dir::new();
        let errors = dir.errors(&format!(
            "{HEAD}axes:\n  aggregate.rule: [min, mni]\n  seed:\n    - 1\n    - abc\n"
        ));
        let rule = find(&errors, "`mni`");
        assert_eq!(place(rule), (4, 25));
        assert!(rule.hint.contains("did you mean `min`?"), "{rule}");
        let seed = find(&errors, "invalid type: string \"abc\"");
        assert_eq!(place(seed), (7, 7));
        assert!(seed.hint.contains("fix the value's type"), "{seed}");
        // Each bad value once, not once per cell it is in.
        assert_eq!(errors.0.len(), 2, "{errors}");

        // A range's values are all written at the range.
        let errors = dir.errors(&format!("{HEAD}axes:\n  name: {{range: [0, 2]}}\n"));
        assert_eq!(errors.0.len(), 2, "{errors}");
        for d in &errors.0 {
            assert_eq!(place(d), (4, 17), "{d}");
        }
    }

    #[test]
    fn a_failing_combination_is_reported_per_cell() {
        let dir = Dir::new();
        // `temperature` is a knob of `tilted` but not of `min`: neither the key nor a value is
        // wrong everywhere, only the cells that pair them.
        for rules in ["[tilted, min]", "[min, tilted]"] {
            let errors = dir.errors(&format!(
                "{HEAD}axes:\n  aggregate.rule: {rules}\n  aggregate.temperature: [0.5]\n  seed: [1, 2]\n"
            ));
            assert_eq!(errors.0.len(), 2, "{errors}");
            for (d, seed) in errors.0.iter().zip([1, 2]) {
                assert_eq!(place(d), (3, 1), "{d}");
                assert!(
                    d.message.contains(&format!(
                        "(`aggregate.rule=min aggregate.temperature=0.5 seed={seed}`) does not load"
                    )),
                    "{d}"
                );
                assert!(d.message.contains("unknown field `temperature`"), "{d}");
                assert!(d.hint.contains("`exclude`"), "{d}");
            }
        }
        // Excluding the combination makes the grid load.
        let grid = dir.ok(&format!(
            "{HEAD}axes:\n  aggregate.rule: [min, tilted]\n  aggregate.temperature: [0.5]\n\
             exclude:\n  - {{aggregate.rule: min}}\n"
        ));
        assert_eq!(
            labels(&grid),
            ["aggregate.rule=tilted aggregate.temperature=0.5"]
        );
    }

    #[test]
    fn a_value_valid_with_another_axis_value_is_not_blamed() {
        let dir = Dir::with_base(&BASE.replace("rule: mean", "rule: adaptive_alpha"));
        // `temperature: -1.0` is refused by the base's `adaptive_alpha` alone, but `tilted`
        // takes it: only the cell pairing it with `adaptive_alpha` is at fault.
        let errors = dir.errors(&format!(
            "{HEAD}axes:\n  aggregate.rule: [tilted, adaptive_alpha]\n  aggregate.temperature: [-1.0]\n"
        ));
        assert_eq!(errors.0.len(), 1, "{errors}");
        let d = find(
            &errors,
            "cell 1 (`aggregate.rule=adaptive_alpha aggregate.temperature=-1.0`)",
        );
        assert_eq!(place(d), (3, 1));
        assert!(
            d.message.contains("`temperature` is -1; it must be > 0"),
            "{d}"
        );
        // Without `tilted`, the value itself is wrong wherever it goes.
        let errors = dir.errors(&format!(
            "{HEAD}axes:\n  aggregate.temperature: [0.5, -1.0]\n"
        ));
        assert_eq!(errors.0.len(), 1, "{errors}");
        let d = find(&errors, "`temperature` is -1; it must be > 0");
        assert_eq!(place(d), (4, 32));
    }

    #[test]
    fn a_value_that_breaks_the_base_elsewhere_is_reported_at_the_value() {
        let dir = Dir::with_base(&BASE.replace("minorities: 1", "minorities: 2"));
        let errors = dir.errors(&format!("{HEAD}axes:\n  data.groups.count: [3, 1]\n"));
        assert_eq!(errors.0.len(), 1, "{errors}");
        let d = find(
            &errors,
            "with `data.groups.count: 1` the base pipeline does not load",
        );
        assert_eq!(place(d), (4, 26));
        assert!(d.message.contains("base.yaml:5:"), "{d}");
        assert!(d.message.contains("2 minorities among 1 groups"), "{d}");
    }

    #[test]
    fn many_failing_cells_are_counted() {
        let errors = Dir::new().errors(&format!(
            "{HEAD}axes:\n  aggregate.rule: [tilted, min]\n  aggregate.temperature: [0.5]\n  seed: {{range: [0, 8]}}\n"
        ));
        assert_eq!(errors.0.len(), MAX_CELL_ERRORS + 1, "{errors}");
        let rest = find(&errors, "3 more cells do not load");
        assert_eq!(place(rest), (3, 1));
    }

    #[test]
    fn duplicate_axis_keys_and_values() {
        let dir = Dir::new();
        let errors = dir.errors(&format!("{HEAD}axes:\n  seed: [1]\n  seed: [2]\n"));
        let d = find(&errors, "duplicate key `seed` in `axes`");
        assert_eq!(place(d).0, 5, "{d}");
        let errors = dir.errors(&format!("{HEAD}axes:\n  seed: [1, 2, 1]\n"));
        let d = find(&errors, "axis `seed` lists `1` twice");
        assert_eq!(place(d), (4, 16));
        assert!(d.hint.contains("same run"));
    }

    #[test]
    fn exclude_entries_name_axis_values() {
        let errors = Dir::new().errors(&format!(
            "{HEAD}axes:\n  aggregate.rule: [min, max]\n  seed: [1, 2]\n\
             exclude:\n  - {{aggregate.rul: min}}\n  - {{seed: 3}}\n  - {{}}\n"
        ));
        let key = find(&errors, "`aggregate.rul` is not an axis");
        assert_eq!(place(key), (7, 6));
        assert!(key.hint.contains("did you mean `aggregate.rule`?"), "{key}");
        let value = find(&errors, "`3` is not a value of axis `seed`");
        assert_eq!(place(value), (8, 12));
        assert_eq!(value.hint, "its values: 1, 2");
        let empty = find(&errors, "empty `exclude` entry");
        assert_eq!(place(empty), (9, 5));
        assert_eq!(errors.0.len(), 3, "{errors}");
    }

    #[test]
    fn include_entries_are_checked_against_the_base() {
        let errors = Dir::new().errors(&format!(
            "{HEAD}axes:\n  aggregate.rule: [min]\n\
             include:\n\
             \x20 - {{aggregate.rule: tilted, aggregate.temprature: 1.0}}\n\
             \x20 - {{aggregate.rule: min, seed: abc}}\n\
             \x20 - {{aggregate.rule: min, rounds: 0}}\n"
        ));
        let key = find(&errors, "unknown field `temprature`");
        assert_eq!(place(key), (6, 30));
        assert!(key.hint.contains("did you mean `temperature`?"), "{key}");
        let value = find(&errors, "invalid type: string \"abc\"");
        assert_eq!(place(value), (7, 33));
        let rounds = find(&errors, "`rounds` must be at least 1");
        assert_eq!(place(rounds), (8, 35));
        assert_eq!(errors.0.len(), 3, "{errors}");

        let errors = Dir::new().errors(&format!(
            "{HEAD}axes:\n  seed: [1]\ninclude:\n  - {{seed: 2}}\n  - {{}}\n"
        ));
        let empty = find(&errors, "empty `include` entry");
        assert_eq!(place(empty), (7, 5));
        assert!(empty.hint.contains("the cell's settings"));
        assert_eq!(errors.0.len(), 1, "{errors}");
    }

    #[test]
    fn a_broken_base_is_reported_at_base_with_its_own_problems() {
        let dir = Dir::with_base(&BASE.replace("seed: 7", "seed: x"));
        let errors = dir.errors(&format!("{HEAD}axes:\n  aggregate.rule: [min]\n"));
        let at_base = find(&errors, "the base pipeline `../base.yaml` does not load");
        assert_eq!(place(at_base), (2, 7));
        assert!(at_base.hint.contains("chorus validate"), "{at_base}");
        let own = find(&errors, "invalid type: string \"x\"");
        match &own.origin {
            Origin::At(l) => assert_eq!((l.line, l.column), (2, 7)),
            other => panic!("{other}"),
        }
        assert!(own.origin.to_string().contains("base.yaml"));
    }

    #[test]
    fn grids_are_capped() {
        let dir = Dir::new();
        let errors = dir.errors(&format!("{HEAD}axes:\n  seed: {{range: [0, 20000]}}\n"));
        let d = find(&errors, "has 20000 values");
        assert_eq!(place(d), (4, 17));
        let errors = dir.errors(&format!(
            "{HEAD}axes:\n  seed: {{range: [0, 200]}}\n  rounds: {{range: [1, 201]}}\n"
        ));
        let d = find(&errors, "the axes make 40000 cells");
        assert_eq!(place(d), (3, 1));
    }

    #[test]
    fn dotted_keys_have_their_own_places() {
        // Axis keys contain dots, so `axes.aggregate.rule` is the path of the axis, and its
        // values live at `axes.aggregate.rule[i]`.
        let text = "axes:\n  aggregate.rule: [min, max]\ninclude:\n  - {aggregate.rule: tilted}\n";
        let (_, map) = spec::parse(Path::new("g.yaml"), text).unwrap();
        let at = |l: Option<crate::diagnostic::Location>| {
            let l = l.unwrap();
            (l.line, l.column)
        };
        assert_eq!(at(map.key("axes.aggregate.rule")), (2, 3));
        assert_eq!(at(map.value("axes.aggregate.rule[1]")), (2, 25));
        assert_eq!(at(map.key("include[0].aggregate.rule")), (4, 6));
        assert_eq!(at(map.value("include[0].aggregate.rule")), (4, 22));
    }

    #[test]
    fn load_str_reads_the_base_relative_to_the_named_file() {
        let dir = Dir::new();
        let text = format!("{HEAD}axes:\n  seed: [4]\n");
        let grid = load_str(&dir.grid_file(), &text).unwrap();
        assert_eq!(labels(&grid), ["seed=4"]);
        let errors = load_str(Path::new("elsewhere/g.yaml"), &text).unwrap_err();
        assert!(errors.0[0]
            .message
            .contains("cannot read the base pipeline"));
    }

    #[test]
    fn the_schema_accepts_what_load_accepts() {
        // The example grid of the docs, as an editor would check it.
        let text = "name: paper\nbase: ../paper.yaml\noutput: runs/grids\nparallel: 2\naxes:\n\
                    \x20 aggregate.rule: [min, max, mean, adaptive_alpha, group_dro]\n\
                    \x20 seed: {range: [0, 10]}\n\
                    include:\n  - {aggregate.rule: tilted, aggregate.temperature: -1.0, seed: 0}\n\
                    exclude:\n  - {aggregate.rule: max, seed: 3}\n\
                    slurm: {cpus: 2, mem: 4G, time: \"01:00:00\", concurrency: 4}\n";
        let (doc, _) = spec::parse(Path::new("g.yaml"), text).unwrap();
        let validator = jsonschema::validator_for(&json_schema()).unwrap();
        assert!(validator.is_valid(&doc));
        for bad in [
            json!({"name": "g", "base": "b.yaml"}),
            json!({"name": "g", "base": "b.yaml", "axes": {}}),
            json!({"name": "g", "base": "b.yaml", "axes": {"seed": []}}),
            json!({"name": "g", "base": "b.yaml", "axes": {"seed": {"range": [0]}}}),
            json!({"name": "g", "base": "b.yaml", "axes": {"seed": [1]}, "parallel": 0}),
            json!({"name": "g", "base": "b.yaml", "axes": {"seed": [1]}, "axis": 1}),
            json!({"name": "g", "base": "b.yaml", "axes": {"seed": [1]}, "slurm": {"cpu": 1}}),
            json!({"name": "g", "base": "b.yaml", "axes": {"seed": [1]}, "slurm": {"cpus": 0}}),
            json!({"name": "g", "base": "b.yaml", "axes": {"seed": [1]}, "slurm": {"mem": "4GB"}}),
        ] {
            assert!(!validator.is_valid(&bad), "{bad}");
        }
    }

    #[test]
    fn the_checked_in_schema_is_fresh() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/grid.schema.json");
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == schema_text(),
            "{} is stale: regenerate it from chorus_core::grid::spec::schema_text()",
            path.display()
        );
    }
}
