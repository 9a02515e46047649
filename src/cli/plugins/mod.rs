//! `chorus plugins`: look into plugin libraries (`inspect`), list what a pipeline can name
//! (`list`), and start a new plugin crate from the template (`new`).
//!
//! `new` writes examples/aggregator-plugin, embedded in the binary, with its names replaced.
//! The replacement is textual but never blind: each known token of the template must be
//! found (the unit tests below render every file, so a template edit that drops a token fails
//! them rather than leaving the template's names in a user's crate).
mod scaffold;
mod show;

use std::path::PathBuf;

use chorus_core::spec::Override;
use clap::{Args, Subcommand};

#[derive(Args)]
pub struct PluginsArgs {
    #[command(subcommand)]
    command: PluginsCommand,
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Show what a plugin library offers: its rules and metrics with their params schemas.
    Inspect(InspectArgs),
    /// List the rules and metrics a pipeline can name: the built-ins, or with PIPELINE also
    /// those of its plugins, with where each comes from.
    List(ListArgs),
    /// Write a new plugin crate from chorus's template (one rule, or one metric), ready to build.
    New(NewArgs),
}

#[derive(Args)]
pub(super) struct InspectArgs {
    /// The plugin library (`libNAME.so`, `.dylib` on macOS); relative to the working
    /// directory, never searched for.
    pub(super) library: PathBuf,
}

#[derive(Args)]
pub(super) struct ListArgs {
    /// A pipeline whose `plugins:` to load as well.
    pub(super) pipeline: Option<PathBuf>,
    /// Override a value of the pipeline before it is loaded (repeatable).
    #[arg(
        short = 's',
        long = "set",
        value_name = "KEY=VALUE",
        requires = "pipeline"
    )]
    pub(super) overrides: Vec<Override>,
}

#[derive(Args)]
pub(super) struct NewArgs {
    /// The crate's name: lowercase letters, digits, `-` and `_`, starting with a letter. The
    /// library and the rule or metric are named after it with `-` → `_`.
    pub(super) name: String,
    /// Write a fairness metric instead of an aggregation rule.
    #[arg(long)]
    pub(super) metric: bool,
    /// The folder to write the crate's folder NAME into.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub(super) dir: PathBuf,
    /// plugins/api of a chorus checkout, for the crate's `chorus-plugin` dependency [default:
    /// the one this chorus was built from].
    #[arg(long, value_name = "PATH")]
    pub(super) api: Option<PathBuf>,
}

pub fn plugins(args: PluginsArgs) -> anyhow::Result<()> {
    match args.command {
        PluginsCommand::Inspect(args) => show::inspect(args),
        PluginsCommand::List(args) => show::list(args),
        PluginsCommand::New(args) => scaffold::new(args),
    }
}

/// Writes `text` to stdout. A reader that stops early (`| head`) is not an error.
pub(super) fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
