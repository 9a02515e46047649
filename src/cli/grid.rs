//! `chorus grid FILE`: run a batch grid, resumably, and write its report; `--status` shows
//! where it stands; `--cell N` runs single cells (what a Slurm array task runs); `--emit slurm`
//! writes the sbatch script of a job array with one task per cell.
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{bail, Context as _};
use chorus_core::grid::{self, run_grid, Cell, CellOutcome, Grid, GridObserver, Index};
use chorus_core::record::write_atomic;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use super::report::{parse_baseline, write_report};

#[derive(Args)]
pub struct GridArgs {
    /// The grid YAML file.
    file: PathBuf,
    /// Run again cells that are already complete (and reuse a folder of another grid).
    #[arg(long)]
    force: bool,
    /// Run only this cell (repeatable); cells are numbered from 0 in `--status` order. The
    /// grid's report is written only once no cell is left unfinished.
    #[arg(long, value_name = "N")]
    cell: Vec<usize>,
    /// Show each cell's status (done, failed, missing) and run nothing.
    #[arg(long, conflicts_with_all = ["force", "cell"])]
    status: bool,
    /// Run nothing; write a batch script that runs every cell on a cluster: `slurm`, an sbatch
    /// job array with one task per cell (resources from the grid file's `slurm:` section).
    #[arg(long, value_enum, value_name = "SCHEDULER", conflicts_with_all = ["force", "cell", "status"])]
    emit: Option<Emit>,
    /// Where `--emit` writes the script (default: `<grid folder>/slurm.sbatch`).
    #[arg(long, value_name = "PATH", requires = "emit")]
    out: Option<PathBuf>,
    /// Run a grid of more than `--max-cells` cells.
    #[arg(long)]
    yes: bool,
    /// The most cells a grid may have without `--yes`.
    #[arg(long, value_name = "N", default_value_t = 500)]
    max_cells: usize,
    /// Pair the report's differences against this setting, e.g. `aggregate.rule=mean`.
    #[arg(long, value_name = "KEY=VALUE")]
    baseline: Option<String>,
}

/// The batch systems `--emit` writes scripts for.
#[derive(Clone, Copy, ValueEnum)]
enum Emit {
    /// An sbatch script: a Slurm job array, one task per cell.
    Slurm,
}

pub fn grid(args: GridArgs) -> anyhow::Result<()> {
    let grid = grid::spec::load(&args.file)?;
    let baseline = args.baseline.as_deref().map(parse_baseline).transpose()?;
    if args.status {
        let outcomes = Index::read(&grid.dir)
            .map(|index| index.outcomes(&grid.dir))
            .unwrap_or_default();
        print!("{}", status(&grid.cells, &outcomes));
        return Ok(());
    }
    let count = if args.cell.is_empty() {
        grid.cells.len()
    } else {
        args.cell.len()
    };
    if count > args.max_cells && !args.yes {
        bail!(
            "{}: the grid has {count} cells, more than --max-cells {}\n  hint: pass --yes to run them all, or narrow the axes",
            args.file.display(),
            args.max_cells
        );
    }
    if let Some(Emit::Slurm) = args.emit {
        return emit_slurm(&grid, &args);
    }
    let progress = Progress::new(count as u64);
    let only = (!args.cell.is_empty()).then_some(args.cell.as_slice());
    let outcomes = run_grid(&grid, only, args.force, &progress)?;
    progress.bar.finish_and_clear();
    println!("{}", grid.dir.display());
    // A `--cell` run is typically one array task among many finishing at about the same time:
    // it writes the grid's report only once no cell is missing. Each task looks after its own
    // cell is recorded, so the one that looks last sees every cell finished; tasks that look
    // together write the same files, each atomically.
    let missing = outcomes
        .iter()
        .filter(|o| o.summary.is_none() && o.error.is_none())
        .count();
    let reported = only.is_none() || missing == 0;
    if reported {
        print!(
            "{}",
            write_report(&grid.dir, &grid.axes, &outcomes, baseline)?
        );
    } else {
        println!(
            "{missing} of {} cells are not finished; the run that finishes the last one writes the report (or `chorus report {}`)",
            outcomes.len(),
            grid.dir.display()
        );
    }
    // Only the cells this process ran decide its exit code: an array task whose cell is done
    // succeeds even when another task's cell failed.
    let ran: Vec<&CellOutcome> = outcomes
        .iter()
        .filter(|o| only.is_none_or(|cells| cells.contains(&o.cell.index)))
        .collect();
    let failed: Vec<&&CellOutcome> = ran.iter().filter(|o| o.error.is_some()).collect();
    if !failed.is_empty() {
        let errors = if reported {
            grid.dir.join("report.md").display().to_string()
        } else {
            let files: Vec<String> = failed
                .iter()
                .map(|o| o.dir.join("error.txt").display().to_string())
                .collect();
            files.join(", ")
        };
        bail!(
            "{} of {} cells failed; their errors are in {errors}",
            failed.len(),
            ran.len(),
        );
    }
    Ok(())
}

/// Writes the sbatch script of the grid's job array (creating the folder the tasks' output
/// goes to, which Slurm needs before the job starts) and says how to submit and follow it.
fn emit_slurm(grid: &Grid, args: &GridArgs) -> anyhow::Result<()> {
    if grid.cells.is_empty() {
        bail!(
            "{}: the grid has no cells to submit\n  hint: `exclude` drops every cell; loosen it",
            args.file.display()
        );
    }
    let binary = std::env::current_exe().context("cannot find the running chorus binary")?;
    let workdir = std::env::current_dir().context("cannot read the working directory")?;
    let text = grid::slurm::script(grid, &binary, &workdir, args.baseline.as_deref());
    let logs = grid.dir.join("slurm");
    std::fs::create_dir_all(&logs).with_context(|| {
        format!(
            "cannot create {}\n  hint: choose a writable `output` in the grid file",
            logs.display()
        )
    })?;
    let path = args
        .out
        .clone()
        .unwrap_or_else(|| grid.dir.join("slurm.sbatch"));
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    write_atomic(&path, text.as_bytes())?;
    println!("{}", path.display());
    println!("submit:  sbatch {}", path.display());
    println!(
        "follow:  chorus grid {} --status   (task output in {}/)",
        args.file.display(),
        logs.display()
    );
    println!("report:  chorus report {}", grid.dir.display());
    // Slurm's default MaxArraySize (1001) refuses larger arrays at submission.
    if grid.cells.len() > 1001 {
        eprintln!(
            "note: {} array tasks; clusters with Slurm's default MaxArraySize (1001) refuse more than 1001 \
             (`scontrol show config | grep MaxArraySize`); split the grid if yours does",
            grid.cells.len()
        );
    }
    Ok(())
}

/// One line per cell: index, status, settings, folder.
fn status(cells: &[Cell], outcomes: &[CellOutcome]) -> String {
    let mut out = String::new();
    let (mut done, mut failed) = (0, 0);
    for cell in cells {
        let outcome = outcomes.iter().find(|o| o.cell.settings == cell.settings);
        let state = match outcome {
            Some(o) if o.summary.is_some() => {
                done += 1;
                "done"
            }
            Some(o) if o.error.is_some() => {
                failed += 1;
                "failed"
            }
            _ => "missing",
        };
        out.push_str(&format!(
            "{:>4}  {state:<7}  {}\n",
            cell.index,
            cell.label()
        ));
    }
    let missing = cells.len() - done - failed;
    out.push_str(&format!(
        "{done} done, {failed} failed, {missing} missing\n"
    ));
    out
}

/// A bar on a terminal (done/failed/remaining and ETA), log lines otherwise.
struct Progress {
    bar: ProgressBar,
    failed: AtomicUsize,
}

impl Progress {
    fn new(cells: u64) -> Progress {
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(cells);
            bar.set_style(
                ProgressStyle::with_template(
                    "cells {bar:30} {pos}/{len} {msg} [{elapsed_precise} < {eta}]",
                )
                .expect("a valid template"),
            );
            bar
        } else {
            ProgressBar::hidden()
        };
        Progress {
            bar,
            failed: AtomicUsize::new(0),
        }
    }
}

impl GridObserver for Progress {
    fn finished(&self, outcome: &CellOutcome) {
        if outcome.error.is_some() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.bar.inc(1);
        let failed = self.failed.load(Ordering::Relaxed);
        self.bar.set_message(format!("({failed} failed)"));
        let state = match &outcome.error {
            Some(e) => format!("failed: {}", e.lines().next().unwrap_or("")),
            None => "done".to_owned(),
        };
        let line = format!(
            "cell {} ({}): {state}",
            outcome.cell.index,
            outcome.cell.label()
        );
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }
}
