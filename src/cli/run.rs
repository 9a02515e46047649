use std::path::PathBuf;

use clap::Args;

use super::PipelineArgs;
use crate::progress::Progress;
use chorus_core::record::{Opened, Record};

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pipeline: PipelineArgs,
    /// Folder that receives the run folder, instead of the pipeline's `output`.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Run again even if the run folder already holds a complete run of this pipeline.
    #[arg(long)]
    force: bool,
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let loaded = args.pipeline.load()?;
    let record = match Record::create(&loaded, args.out.as_deref(), args.force)? {
        Opened::New(record) => record,
        Opened::Complete(dir) => {
            eprintln!(
                "{} already holds a complete run of this pipeline; pass --force to run it again",
                dir.display()
            );
            println!("{}", dir.display());
            let summary = std::fs::read_to_string(dir.join("summary.csv")).unwrap_or_default();
            print!("{}", table(&summary));
            return Ok(());
        }
    };
    let progress = Progress::new(&loaded);
    tracing::info!(
        "running {} into {} (libtorch {}, {})",
        args.pipeline.file.display(),
        record.dir().display(),
        chorus_core::LIBTORCH_VERSION,
        chorus_core::torch_device()
    );
    let result = chorus_core::run::run(&loaded, &record, &progress);
    progress.finish();
    result?;
    // Figures are a convenience on top of the metrics: a plotting problem is reported but
    // does not fail a run whose numbers are all written.
    if let Err(e) = chorus_core::plot::plot_run(record.dir()) {
        tracing::warn!("no plots: {e}");
    }
    println!("{}", record.dir().display());
    print!("{}", table(&record.summary_csv()));
    Ok(())
}

/// The summary CSV as an aligned text table for the terminal.
fn table(csv: &str) -> String {
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(s, w)| format!("{s:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
