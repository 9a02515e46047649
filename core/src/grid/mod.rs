//! Batch evaluation grids: one base pipeline swept over axes of override values (rules ×
//! seeds × parameters), each cell a run of its own, keyed by its run identity.
//!
//! - [`spec`]: the grid file (YAML, located errors) → a [`Grid`] of checked cells.
//! - `runner`: the cells on rayon, each in its own run folder keyed by its identity.
//! - [`report`]: per configuration, mean ± 95% CI over seeds and differences paired by seed
//!   against a baseline, as Markdown and CSV.
//! - [`slurm`]: the `slurm:` section and the sbatch script that runs the cells as a job array.
pub mod report;
mod runner;
pub mod slurm;
pub mod spec;

pub use runner::{run_grid, GridError, GridObserver, Index};
pub use slurm::Slurm;

use std::path::PathBuf;

use serde_json::Value;

use crate::record::Summary;
use crate::spec::Override;

/// One axis: an override key (the keys `-s` takes) and the values it sweeps.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub key: String,
    pub values: Vec<Value>,
}

/// One cell: the base pipeline with one value per axis (and, for an `include` entry, the
/// extra settings it names).
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// Position in the grid's cell list, from 0 (what `--cell` and Slurm array tasks name).
    pub index: usize,
    /// Key → value, in axis order, then an include entry's extra keys.
    pub settings: Vec<(String, Value)>,
}

impl Cell {
    /// The settings as overrides; values are written as JSON, which YAML reads back as is.
    pub fn overrides(&self) -> Vec<Override> {
        self.settings
            .iter()
            .map(|(key, value)| Override {
                key: key.clone(),
                value: value.to_string(),
            })
            .collect()
    }

    /// The value of `key` in this cell, if it sets it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.settings.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// `aggregate.rule=min seed=3`, for progress lines and errors.
    pub fn label(&self) -> String {
        let parts: Vec<String> = self
            .settings
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect();
        parts.join(" ")
    }
}

/// A checked grid, ready to run.
#[derive(Debug, Clone)]
pub struct Grid {
    /// The grid file.
    pub file: PathBuf,
    pub name: String,
    /// The base pipeline file, resolved relative to the grid file.
    pub base: PathBuf,
    /// The grid folder (`<output>/<name>`, `output` relative to the working directory like a
    /// pipeline's); cells go to `<dir>/cells/`.
    pub dir: PathBuf,
    pub axes: Vec<Axis>,
    pub cells: Vec<Cell>,
    /// How many cells run at once (default: the number of cores).
    pub parallel: usize,
    /// What each Slurm array task asks for (the defaults when the file has no `slurm:`).
    pub slurm: Slurm,
}

/// What became of one cell.
#[derive(Debug, Clone)]
pub struct CellOutcome {
    pub cell: Cell,
    /// The cell's run folder.
    pub dir: PathBuf,
    /// The run's summary when it completed.
    pub summary: Option<Summary>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}
