//! `chorus report GRID_DIR`: the statistical report of a grid folder, however its cells ran
//! (here, on another machine, or as Slurm array tasks).
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chorus_core::grid::report::Report;
use chorus_core::grid::{Axis, CellOutcome, Index};
use chorus_core::record::write_atomic;
use clap::Args;
use serde_json::Value;

#[derive(Args)]
pub struct ReportArgs {
    /// The grid folder (`chorus grid` prints it).
    dir: PathBuf,
    /// Pair differences by seed against this setting, e.g. `aggregate.rule=mean`.
    #[arg(long, value_name = "KEY=VALUE")]
    baseline: Option<String>,
}

pub fn report(args: ReportArgs) -> anyhow::Result<()> {
    let index = Index::read(&args.dir)?;
    let baseline = args.baseline.as_deref().map(parse_baseline).transpose()?;
    let outcomes = index.outcomes(&args.dir);
    print!(
        "{}",
        write_report(&args.dir, &index.axes(), &outcomes, baseline)?
    );
    Ok(())
}

/// `KEY=VALUE`, the value read as JSON where it parses (`0.1`, `true`) and as a string
/// otherwise (`mean`), like an override's.
pub fn parse_baseline(text: &str) -> anyhow::Result<(String, Value)> {
    let (key, value) = text.split_once('=').with_context(|| {
        format!("`{text}` is not KEY=VALUE\n  hint: write e.g. --baseline aggregate.rule=mean")
    })?;
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok((key.to_owned(), value))
}

/// Writes report.md, report.csv and cells.csv into the grid folder; returns the Markdown.
pub fn write_report(
    dir: &Path,
    axes: &[Axis],
    outcomes: &[CellOutcome],
    baseline: Option<(String, Value)>,
) -> anyhow::Result<String> {
    let report = Report::build(
        axes,
        outcomes,
        baseline.as_ref().map(|(k, v)| (k.as_str(), v)),
    )?;
    let markdown = report.markdown();
    for (file, text) in [
        ("report.md", markdown.as_str()),
        ("report.csv", report.csv().as_str()),
        ("cells.csv", report.cells_csv().as_str()),
    ] {
        write_atomic(&dir.join(file), text.as_bytes())?;
    }
    if let Err(e) = chorus_core::plot::plot_grid(dir, &report) {
        tracing::warn!("no plots: {e}");
    }
    Ok(markdown)
}
