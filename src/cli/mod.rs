//! Command-line interface: one module per subcommand.
mod data;
mod graph;
mod grid;
mod model;
mod plugins;
mod report;
mod run;
mod schema;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use chorus_core::diagnostic::Diagnostics;
use chorus_core::spec::{self, Loaded, Override};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "chorus",
    version,
    about = "Pluralistic-alignment experiments in federated RLHF"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline into a new run folder.
    Run(run::RunArgs),
    /// Check a pipeline and print OK or every problem found (exit 0 / 2).
    Validate(PipelineArgs),
    /// Print a pipeline's DAG as Graphviz DOT or Mermaid.
    Graph(graph::GraphArgs),
    /// Write the JSON Schemas of pipeline and grid files (for editors and CI).
    Schema(schema::SchemaArgs),
    /// Run a batch grid (rules × seeds × parameters) in parallel, resumably, and report it.
    Grid(grid::GridArgs),
    /// Write the statistical report of a grid folder (mean ± CI, differences paired by seed).
    Report(report::ReportArgs),
    /// Inspect plugin libraries, list the rules and metrics a pipeline can name, or start a
    /// new plugin crate.
    Plugins(plugins::PluginsArgs),
    /// Fetch, inspect and generate with a language model (GGUF file, Hugging Face folder, or a
    /// known model's short name).
    Model(model::ModelArgs),
    /// Inspect a real survey dataset (WVS JSON, GlobalOpinionQA CSV): what is kept, repaired
    /// and dropped, per group and by rule.
    Data(data::DataArgs),
}

/// A pipeline file and the overrides to apply to it.
#[derive(Args)]
struct PipelineArgs {
    /// The pipeline YAML file.
    file: PathBuf,
    /// Override a value before validation: `seed=3`, `rounds=50`, `aggregate.rule=min` (repeatable).
    #[arg(short = 's', long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<Override>,
}

impl PipelineArgs {
    fn load(&self) -> Result<Loaded, Diagnostics> {
        spec::load(&self.file, &self.overrides)
    }
}

/// Every failure chorus reports is one the user can act on (a bad file, an override, an
/// unwritable folder, a stage refusing its input, a faulty plugin): exit 2, message on
/// stderr. A panic outside a stage is chorus's own bug: exit 1, saying so. (A panic inside a
/// stage fails only that stage, and the run folder records it.)
/// The error and its causes, each once: library errors often quote their cause in their own
/// message (`{path}: {cause}`), and anyhow's `{:#}` would then print the cause twice.
fn message(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = std::panic::catch_unwind(|| match cli.command {
        Command::Run(args) => run::run(args),
        Command::Validate(args) => validate::validate(args),
        Command::Graph(args) => graph::graph(args),
        Command::Schema(args) => schema::schema(args),
        Command::Plugins(args) => plugins::plugins(args),
        Command::Grid(args) => grid::grid(args),
        Command::Report(args) => report::report(args),
        Command::Model(args) => model::model(args),
        Command::Data(args) => data::data(args),
    });
    match result {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            // Diagnostics carry their own `FILE:LINE:COL: error:` prefixes.
            match e.downcast_ref::<Diagnostics>() {
                Some(d) => eprintln!("{d}"),
                None => eprintln!("error: {}", message(&e)),
            }
            ExitCode::from(2)
        }
        // The panic hook has printed where; say what it means.
        Err(_) => {
            eprintln!(
                "error: this is a bug in chorus, not in your input; please report it with the \
                 command you ran and the message above"
            );
            ExitCode::from(1)
        }
    }
}
