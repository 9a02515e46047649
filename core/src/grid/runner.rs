//! Runs a grid's cells in parallel, each in its own run folder under `<grid>/cells/`, keyed
//! by its run identity: a finished cell is read back, not rerun; an interrupted one resumes
//! from its checkpoint; only what is new runs. A failing cell is recorded and the rest go on.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Axis, Cell, CellOutcome, Grid};
use crate::checkpoint;
use crate::record::{read_manifest, write_atomic, Opened, Record, Summary};
use crate::run::{self, Quiet};
use crate::spec;

/// Told as cells start and end; called from worker threads.
pub trait GridObserver: Sync {
    fn started(&self, _cell: &Cell) {}
    fn finished(&self, _outcome: &CellOutcome) {}
}

/// Why a grid could not start (a cell's own failure is an outcome, not this).
#[derive(Debug, thiserror::Error)]
pub enum GridError {
    #[error("{dir} holds a grid of another experiment (base {old_base}, axes {old_axes}; now base {new_base}, axes {new_axes})\n  hint: give this grid another `name`, or pass --force to reuse the folder")]
    OtherGrid {
        dir: PathBuf,
        old_base: String,
        old_axes: String,
        new_base: String,
        new_axes: String,
    },
    #[error("cannot write the grid folder {path}: {cause}\n  hint: choose a writable `output` in the grid file")]
    Io { path: PathBuf, cause: String },
    #[error("{0} is not a chorus grid folder (it has no readable grid.json)\n  hint: pass the folder `chorus grid` printed, e.g. runs/grids/paper")]
    NotAGrid(PathBuf),
    #[error("cell {index} does not exist; this grid has cells 0 to {last}\n  hint: `chorus grid FILE --status` lists them")]
    NoSuchCell { index: usize, last: usize },
    #[error("{file}: {at_once} cells at once need at least {:.1} GiB ({:.1} GiB each), but the machine has {:.1} GiB available\n  hint: lower `parallel` in the grid file", gib(*.each * *.at_once as f64), gib(*.each), gib(*.available))]
    Memory {
        file: PathBuf,
        at_once: usize,
        each: f64,
        available: f64,
    },
}

/// `<grid>/grid.json`: what the folder holds, so `chorus report` needs no grid file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Index {
    pub name: String,
    /// The base pipeline as the grid file named it, resolved.
    pub base: PathBuf,
    pub axes: Vec<(String, Vec<Value>)>,
    pub cells: Vec<IndexedCell>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexedCell {
    pub index: usize,
    pub settings: Vec<(String, Value)>,
    /// The cell's run folder, relative to the grid folder.
    pub folder: PathBuf,
}

impl Index {
    fn of(grid: &Grid, folders: &[PathBuf]) -> Index {
        Index {
            name: grid.name.clone(),
            base: grid.base.clone(),
            axes: grid
                .axes
                .iter()
                .map(|a| (a.key.clone(), a.values.clone()))
                .collect(),
            cells: grid
                .cells
                .iter()
                .zip(folders)
                .map(|(c, f)| IndexedCell {
                    index: c.index,
                    settings: c.settings.clone(),
                    folder: f.strip_prefix(&grid.dir).unwrap_or(f).to_path_buf(),
                })
                .collect(),
        }
    }

    /// The grid folder's index.
    pub fn read(dir: &Path) -> Result<Index, GridError> {
        std::fs::read_to_string(dir.join("grid.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .ok_or_else(|| GridError::NotAGrid(dir.to_path_buf()))
    }

    pub fn axes(&self) -> Vec<Axis> {
        self.axes
            .iter()
            .map(|(key, values)| Axis {
                key: key.clone(),
                values: values.clone(),
            })
            .collect()
    }

    /// Each cell as it stands in its folder now: complete (with its summary), failed (with
    /// the run's error), or not run yet.
    pub fn outcomes(&self, dir: &Path) -> Vec<CellOutcome> {
        self.cells
            .iter()
            .map(|c| {
                let folder = dir.join(&c.folder);
                let cell = Cell {
                    index: c.index,
                    settings: c.settings.clone(),
                };
                let manifest = read_manifest(&folder).ok();
                let status = manifest.as_ref().and_then(|m| m["status"].as_str());
                let (summary, error) = match status {
                    Some("complete") => match Summary::read(&folder) {
                        Ok(s) => (Some(s), None),
                        Err(e) => (None, Some(e.to_string())),
                    },
                    Some("failed") => (None, Some(failure(&folder))),
                    _ => (None, None),
                };
                CellOutcome {
                    cell,
                    dir: folder,
                    summary,
                    error,
                }
            })
            .collect()
    }
}

/// The error a failed cell's run recorded in its folder (`error.txt`).
fn failure(folder: &Path) -> String {
    std::fs::read_to_string(folder.join("error.txt"))
        .unwrap_or_else(|_| "failed (no error.txt in its folder)".to_owned())
}

/// Runs the grid's cells (all, or those in `only`), `grid.parallel` at a time; with `force`
/// finished cells run again. Returns every cell's outcome, in cell order.
pub fn run_grid(
    grid: &Grid,
    only: Option<&[usize]>,
    force: bool,
    observer: &dyn GridObserver,
) -> Result<Vec<CellOutcome>, GridError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e: std::io::Error| GridError::Io {
            path,
            cause: e.to_string(),
        }
    };
    if let Some(&bad) = only.and_then(|o| o.iter().find(|&&i| i >= grid.cells.len())) {
        return Err(GridError::NoSuchCell {
            index: bad,
            last: grid.cells.len().saturating_sub(1),
        });
    }
    let chosen: Vec<usize> = match only {
        Some(o) => o.to_vec(),
        None => (0..grid.cells.len()).collect(),
    };
    // Every cell's folder comes from its identity, so the index can name them all up front.
    // Loading is the grid's serial start, so the cells load on the grid's own threads.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(grid.parallel.max(1))
        .build()
        .expect("a thread pool");
    let loaded: Vec<Result<spec::Loaded, String>> = pool.install(|| {
        use rayon::prelude::*;
        grid.cells
            .par_iter()
            .map(|c| spec::load(&grid.base, &c.overrides()).map_err(|d| d.to_string()))
            .collect()
    });
    check_memory(grid, &loaded, &chosen)?;
    let fresh = Index::of(grid, &[]);
    if let Ok(old) = Index::read(&grid.dir) {
        let keys = |i: &Index| {
            let k: Vec<&str> = i.axes.iter().map(|(k, _)| k.as_str()).collect();
            k.join(", ")
        };
        if !force && (old.base != fresh.base || keys(&old) != keys(&fresh)) {
            return Err(GridError::OtherGrid {
                dir: grid.dir.clone(),
                old_base: old.base.display().to_string(),
                old_axes: keys(&old),
                new_base: fresh.base.display().to_string(),
                new_axes: keys(&fresh),
            });
        }
    }
    let cells_dir = grid.dir.join("cells");
    std::fs::create_dir_all(&cells_dir).map_err(io(&cells_dir))?;
    let folders: Vec<PathBuf> = loaded
        .iter()
        .zip(&grid.cells)
        .map(|(l, c)| match l {
            Ok(l) => Record::folder(l, Some(&cells_dir)),
            Err(_) => cells_dir.join(format!("unloadable-{}", c.index)),
        })
        .collect();
    let index = Index::of(grid, &folders);
    let text = serde_json::to_string_pretty(&index).expect("an index serialises");
    let index_path = grid.dir.join("grid.json");
    write_atomic(&index_path, text.as_bytes()).map_err(|e| GridError::Io {
        path: e.path,
        cause: e.cause.to_string(),
    })?;
    let ran: Vec<CellOutcome> = pool.install(|| {
        use rayon::prelude::*;
        chosen
            .par_iter()
            .map(|&i| {
                let cell = &grid.cells[i];
                observer.started(cell);
                let outcome = run_cell(cell, &loaded[i], &cells_dir, &folders[i], force);
                observer.finished(&outcome);
                outcome
            })
            .collect()
    });
    let mut outcomes = index.outcomes(&grid.dir);
    for outcome in ran {
        let i = outcome.cell.index;
        outcomes[i] = outcome;
    }
    Ok(outcomes)
}

/// Cells run `parallel` at a time, so the largest chosen cell's memory times that must fit.
fn check_memory(
    grid: &Grid,
    loaded: &[Result<spec::Loaded, String>],
    chosen: &[usize],
) -> Result<(), GridError> {
    let Some(available) = spec::budget::available_memory() else {
        return Ok(());
    };
    let at_once = grid.parallel.min(chosen.len()).max(1);
    let each = chosen
        .iter()
        .filter_map(|&i| loaded.get(i)?.as_ref().ok())
        .map(|l| spec::budget::estimate(&l.pipeline).bytes)
        .fold(0.0, f64::max);
    if each * at_once as f64 > available as f64 {
        return Err(GridError::Memory {
            file: grid.file.clone(),
            at_once,
            each,
            available: available as f64,
        });
    }
    Ok(())
}

fn gib(bytes: f64) -> f64 {
    bytes / f64::from(1u32 << 30)
}

/// One cell: read back if finished, resumed if interrupted, else run.
fn run_cell(
    cell: &Cell,
    loaded: &Result<spec::Loaded, String>,
    cells_dir: &Path,
    folder: &Path,
    force: bool,
) -> CellOutcome {
    let outcome = |summary: Option<Summary>, error: Option<String>| CellOutcome {
        cell: cell.clone(),
        dir: folder.to_path_buf(),
        summary,
        error,
    };
    let loaded = match loaded {
        Ok(l) => l,
        Err(e) => return outcome(None, Some(e.clone())),
    };
    let result = (|| -> Result<Summary, String> {
        let interrupted = !force
            && read_manifest(folder).is_ok_and(|m| m["status"] != "complete")
            && checkpoint::latest_round(folder).ok().flatten().is_some();
        let (record, resume) = if interrupted {
            let round = checkpoint::latest_round(folder).map_err(|e| e.to_string())?;
            let record = Record::reopen(folder, loaded, round).map_err(|e| e.to_string())?;
            (record, true)
        } else {
            match Record::create(loaded, Some(cells_dir), force).map_err(|e| e.to_string())? {
                Opened::Complete(dir) => return Summary::read(&dir).map_err(|e| e.to_string()),
                Opened::New(record) => (record, false),
            }
        };
        let result = run::run(loaded, &record, &Quiet, resume).map_err(|e| e.to_string());
        if let Err(e) = &result {
            // The run folder keeps its own error, so a report can name it without this process.
            let _ = write_atomic(&record.dir().join("error.txt"), e.as_bytes());
        }
        result
    })();
    match result {
        Ok(summary) => outcome(Some(summary), None),
        Err(e) => outcome(None, Some(e)),
    }
}
