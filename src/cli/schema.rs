use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

#[derive(Args)]
pub struct SchemaArgs {
    /// Folder to write `pipeline.schema.json` into.
    #[arg(long, default_value = "schemas")]
    out: PathBuf,
}

pub fn schema(args: SchemaArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let path = args.out.join("pipeline.schema.json");
    chorus_core::record::write_atomic(&path, chorus_core::spec::schema_text().as_bytes())?;
    println!("wrote {}", path.display());
    Ok(())
}
