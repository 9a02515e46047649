use std::path::PathBuf;

use clap::Args;

use crate::progress::Progress;
use chorus_core::checkpoint;
use chorus_core::record::{read_manifest, Opened, Record};
use chorus_core::spec::{self, Override};

#[derive(Args)]
pub struct RunArgs {
    /// The pipeline YAML file (optional with --resume: the run folder holds its pipeline).
    #[arg(required_unless_present = "resume")]
    file: Option<PathBuf>,
    /// Override a value before validation: `seed=3`, `rounds=50`, `aggregate.rule=min` (repeatable).
    #[arg(short = 's', long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<Override>,
    /// Folder that receives the run folder, instead of the pipeline's `output`.
    #[arg(long, value_name = "DIR", conflicts_with = "resume")]
    out: Option<PathBuf>,
    /// Run again even if the run folder already holds a complete run of this pipeline.
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// Continue a killed run from its last checkpoint; it ends with the same numbers as an
    /// uninterrupted run. With FILE, FILE and the overrides must be the run's pipeline.
    #[arg(long, value_name = "RUN_DIR")]
    resume: Option<PathBuf>,
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let (loaded, record, resume) = match &args.resume {
        Some(dir) => {
            let loaded = match &args.file {
                Some(file) => spec::load(file, &args.overrides)?,
                None => {
                    let manifest = read_manifest(dir)?;
                    let mut pipeline = manifest["pipeline"].clone();
                    // Plugin paths were written relative to the original pipeline file; the
                    // manifest holds where they resolved to (paths are not part of the hash).
                    if let Some(libs) = manifest["plugins"].as_array().filter(|l| !l.is_empty()) {
                        pipeline["plugins"] = libs.iter().map(|l| l["path"].clone()).collect();
                    }
                    let text = serde_json::to_string_pretty(&pipeline)?;
                    let file = dir.join("manifest.json");
                    let base = manifest["base"].as_str().map(PathBuf::from);
                    let base = base.as_deref().unwrap_or(dir);
                    spec::load_str_at(&file, base, &text, &args.overrides)?
                }
            };
            let round = checkpoint::latest_round(dir)?;
            let record = Record::reopen(dir, &loaded, round)?;
            (loaded, record, round.is_some())
        }
        None => {
            let file = args
                .file
                .as_deref()
                .expect("clap requires FILE without --resume");
            let loaded = spec::load(file, &args.overrides)?;
            match Record::create(&loaded, args.out.as_deref(), args.force)? {
                Opened::New(record) => (loaded, record, false),
                Opened::Complete(dir) => {
                    eprintln!(
                        "{} already holds a complete run of this pipeline; pass --force to run it again",
                        dir.display()
                    );
                    println!("{}", dir.display());
                    let summary =
                        std::fs::read_to_string(dir.join("summary.csv")).unwrap_or_default();
                    print!("{}", table(&summary));
                    return Ok(());
                }
            }
        }
    };
    let progress = Progress::new(&loaded);
    tracing::info!(
        "{} {} into {} (libtorch {}, {})",
        if resume { "resuming" } else { "running" },
        loaded.file.display(),
        record.dir().display(),
        chorus_core::LIBTORCH_VERSION,
        chorus_core::torch_device()
    );
    let result = chorus_core::run::run(&loaded, &record, &progress, resume);
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
