use clap::{Args, ValueEnum};

use super::PipelineArgs;

#[derive(Args)]
pub struct GraphArgs {
    #[command(flatten)]
    pipeline: PipelineArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Dot)]
    format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// Graphviz (`dot -Tsvg`).
    Dot,
    /// Mermaid flowchart (renders in GitHub markdown).
    Mermaid,
}

pub fn graph(args: GraphArgs) -> anyhow::Result<()> {
    let loaded = args.pipeline.load()?;
    let text = match args.format {
        Format::Dot => loaded.dag.to_dot(),
        Format::Mermaid => loaded.dag.to_mermaid(),
    };
    print!("{text}");
    Ok(())
}
