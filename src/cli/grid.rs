//! `chorus grid FILE`: run a batch grid, resumably, and write its report; `--status` shows
//! where it stands; `--cell N` runs single cells (what a Slurm array task runs).
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::bail;
use chorus_core::grid::{self, run_grid, Cell, CellOutcome, GridObserver, Index};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::report::{parse_baseline, write_report};

#[derive(Args)]
pub struct GridArgs {
    /// The grid YAML file.
    file: PathBuf,
    /// Run again cells that are already complete (and reuse a folder of another grid).
    #[arg(long)]
    force: bool,
    /// Run only this cell (repeatable); cells are numbered from 0 in `--status` order.
    #[arg(long, value_name = "N")]
    cell: Vec<usize>,
    /// Show each cell's status (done, failed, missing) and run nothing.
    #[arg(long, conflicts_with_all = ["force", "cell"])]
    status: bool,
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
    let progress = Progress::new(count as u64);
    let only = (!args.cell.is_empty()).then_some(args.cell.as_slice());
    let outcomes = run_grid(&grid, only, args.force, &progress)?;
    progress.bar.finish_and_clear();
    let report = write_report(&grid.dir, &grid.axes, &outcomes, baseline)?;
    println!("{}", grid.dir.display());
    print!("{report}");
    let failed = outcomes.iter().filter(|o| o.error.is_some()).count();
    if failed > 0 {
        bail!(
            "{failed} of {} cells failed; their errors are in {}",
            outcomes.len(),
            grid.dir.join("report.md").display()
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
