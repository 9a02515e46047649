//! Running a pipeline from Rust instead of the CLI: load with an override, run into a
//! temporary folder, and read each group's alignment from the run's own metrics file.
//!
//!     cargo run --example run_pipeline
use std::path::Path;

use chorus_core::record::{Opened, Record};
use chorus_core::run::{run, Quiet};
use chorus_core::spec::{load, Override};

fn main() -> anyhow::Result<()> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/quickstart.yaml");
    let overrides: Vec<Override> = vec!["data.simulator.minority_shift=4"
        .parse()
        .map_err(anyhow::Error::msg)?];
    let loaded = load(&file, &overrides)?;
    let out = std::env::temp_dir().join("chorus-example");
    let record = match Record::create(&loaded, Some(&out), true)? {
        Opened::New(record) => record,
        Opened::Complete(dir) => anyhow::bail!("{} unexpectedly complete", dir.display()),
    };
    run(&loaded, &record, &Quiet, false)?;
    let metrics = std::fs::read_to_string(record.dir().join("metrics.jsonl"))?;
    for line in metrics.lines() {
        let row: serde_json::Value = serde_json::from_str(line)?;
        if row["metric"] == "alignment" {
            println!(
                "{:>9} {:>3}: {:.4}",
                row["stage"].as_str().unwrap_or(""),
                row["group"].as_str().unwrap_or(""),
                row["value"].as_f64().unwrap_or(f64::NAN)
            );
        }
    }
    println!("run folder: {}", record.dir().display());
    Ok(())
}
