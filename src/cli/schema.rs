use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

#[derive(Args)]
pub struct SchemaArgs {
    /// Folder to write `pipeline.schema.json` and `grid.schema.json` into.
    #[arg(long, default_value = "schemas")]
    out: PathBuf,
}

pub fn schema(args: SchemaArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    for (file, text) in [
        ("pipeline.schema.json", chorus_core::spec::schema_text()),
        ("grid.schema.json", chorus_core::grid::spec::schema_text()),
    ] {
        let path = args.out.join(file);
        chorus_core::record::write_atomic(&path, text.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
