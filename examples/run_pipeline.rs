//! Running a pipeline from Rust instead of the CLI: load with an override, run into a
//! temporary folder, and read each group's alignment from the summary the run returns.
//!
//!     cargo run --example run_pipeline
use std::path::Path;

use chorus_core::record::{Opened, Record};
use chorus_core::run::{run, Quiet};
use chorus_core::spec::{load, Override};

fn main() -> anyhow::Result<()> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/quickstart.yaml");
    let overrides: Vec<Override> = vec!["data.minority_shift=4"
        .parse()
        .map_err(anyhow::Error::msg)?];
    let loaded = load(&file, &overrides)?;
    let out = std::env::temp_dir().join("chorus-example");
    let record = match Record::create(&loaded, Some(&out), true)? {
        Opened::New(record) => record,
        Opened::Complete(dir) => anyhow::bail!("{} unexpectedly complete", dir.display()),
    };
    let summary = run(&loaded, &record, &Quiet, false)?;
    for stage in &summary.evaluations {
        let e = &stage.evaluation;
        for (group, alignment) in e.groups.iter().zip(&e.alignment) {
            println!("{:>9} {group:>3}: {alignment:.4}", stage.stage);
        }
    }
    if let Some(reward) = summary.final_reward {
        println!("final training reward: {reward:.4}");
    }
    println!("run folder: {}", record.dir().display());
    Ok(())
}
