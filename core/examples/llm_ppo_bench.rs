//! chorus's side of bench/llm_ppo_compare.sh: one PPO update of SmolLM2-135M-Instruct through
//! LoRA adapters, as a round of pipelines/llm-wvs.yaml makes it, timed; and everything
//! bench/llm_ppo_reference.py needs to make the same update with torch + transformers + peft.
//!
//!     cargo run --release -p chorus-core --example llm_ppo_bench -- GGUF OUT_DIR THREADS [WVS_DIR]
//!
//! The batch is the pipeline's: 16 rollouts, 4 questions × 4 samples (`batch: 16,
//! samples_per_question: 4`), drawn from the first 16 questions of the World Values Survey
//! (wave 7, US wording; WVS_DIR defaults to the shared data folder beside the repository),
//! prompted through `ChoicePrompts::build` as the `policy` stage prompts them. The policy is
//! `LlmPolicy` with LoRA rank 8, α 16 on q_proj and v_proj; the update is `ppo::update` with
//! the pipeline's `ppo` params (lr 5e-4, entropy_coef 1, the rest at their defaults: 4 epochs ×
//! 4 minibatches, clip 0.2, vf_coef 0.1, kl_coef 0.05 with k1, whitening, grad-norm clip 1).
//! Rewards are fixed: the mean over the groups (US, CN, JP) of ln max(share, 1e-6) of the
//! sampled option, the `log_probability` oracle reward.
//!
//! One update: the reference forward (adapters off) over the 16 rollouts, 16 minibatch
//! forward + backward passes of 4 prompts, 16 Adam steps, and the final entropy forward. Its
//! time is the median of `REPS` updates after a warm-up, each on a fresh fork of the same
//! policy with fresh Adam moments and the same RNG stream, so every rep does the same work.
//!
//! Writes OUT_DIR/update.json (prompts, letters, rollouts, rewards, config, the minibatch
//! permutations the update's RNG draws, and chorus's own statistics of the update) and
//! OUT_DIR/init.npz (the adapters and value head before the update, by peft name), and prints
//! `name value` lines.
use std::path::{Path, PathBuf};
use std::time::Instant;

use chorus_core::data::{DataSpec, Questions};
use chorus_core::policy::{Adam, ChoicePrompts, LlmPolicy, LoraSettings, Policy};
use chorus_core::ppo::{update, Batch, Loss, PpoConfig, Targets, UpdateStats};
use chorus_core::rng::{stream, Rng};
use chorus_core::stage::QuestionBank;
use chorus_llm::lora::Target;
use chorus_llm::model::LoadOptions;
use chorus_llm::pretrained::Pretrained;
use rand::seq::SliceRandom;
use rand::Rng as _;
use serde_json::json;
use tch::Tensor;

const SEED: u64 = 1;
const PROMPTS: usize = 16;
const QUESTIONS: usize = 4;
const SAMPLES_PER_QUESTION: usize = 4;
const REPS: usize = 3;

/// Median wall seconds of `REPS` calls of `f`, after one warm-up call.
fn median_seconds(mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..REPS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[REPS / 2]
}

fn floats(t: &Tensor) -> Vec<f64> {
    Vec::<f32>::try_from(t.flatten(0, -1))
        .expect("an f32 tensor")
        .into_iter()
        .map(f64::from)
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (gguf, out, threads, wvs) = match args.as_slice() {
        [_, gguf, out, threads] => (gguf, out, threads, None),
        [_, gguf, out, threads, wvs] => (gguf, out, threads, Some(PathBuf::from(wvs))),
        _ => return Err("usage: llm_ppo_bench GGUF OUT_DIR THREADS [WVS_DIR]".into()),
    };
    let threads: i32 = threads.parse()?;
    tch::set_num_threads(threads);
    let out = Path::new(out);
    std::fs::create_dir_all(out)?;

    // The survey, as `data: {kind: wvs_json, ...}` of pipelines/llm-wvs.yaml reads it.
    let wvs =
        wvs.unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/wvs7"));
    let file = |country: &str| wvs.join(format!("{country}.json")).display().to_string();
    let spec: DataSpec = serde_json::from_value(json!({
        "kind": "wvs_json",
        "groups": {"US": file("US"), "CN": file("CN"), "JP": file("JP")},
        "text_from": "US",
    }))?;
    let survey = spec.load(SEED, Path::new("/"))?;
    let text = survey.questions.text[..PROMPTS]
        .iter()
        .map(Option::as_ref)
        .collect::<Option<Vec<_>>>()
        .ok_or("the survey has no question wording")?;

    // The policy, as the `policy` stage builds it.
    let Pretrained {
        model,
        tokenizer,
        chat,
        ..
    } = Pretrained::load(Path::new(gguf), LoadOptions::default())?;
    let chat = chat.ok_or("the model has no chat template")?;
    let prompts = ChoicePrompts::build(&text, &tokenizer, &chat)?;
    let prompt_json = json!({
        "ids": prompts.ids,
        "options": prompts.options,
        "letters": prompts.letters,
        "pad": prompts.pad,
    });
    let lora = LoraSettings {
        rank: 8,
        alpha: 16.0,
        targets: vec![Target::Q, Target::V],
    };
    let policy = LlmPolicy::new(model, prompts, &lora, None, &mut stream(SEED, &["init"]))?;
    let bank = QuestionBank {
        questions: Questions::with_features(4, vec![Vec::new(); PROMPTS]),
        train: (0..PROMPTS).collect(),
        eval: Vec::new(),
    };

    // The rollouts, as the `rollout` stage draws them (samples of a question consecutive).
    let mut rng = stream(SEED, &["rollout"]);
    let questions: Vec<usize> = (0..QUESTIONS)
        .flat_map(|_| std::iter::repeat_n(rng.random_range(0..PROMPTS), SAMPLES_PER_QUESTION))
        .collect();
    let rollouts = policy.sample(&bank, &questions, &mut rng)?;
    let actions: Vec<usize> = rollouts
        .answers
        .iter()
        .map(|a| a.iter().flatten().position(|&x| x == 1.0).expect("one-hot"))
        .collect();
    let groups = survey.groups.len();
    let rewards: Vec<f64> = questions
        .iter()
        .zip(&actions)
        .map(|(&q, &a)| {
            (0..groups)
                .map(|g| survey.distribution(g, q)[a].max(1e-6).ln())
                .sum::<f64>()
                / groups as f64
        })
        .collect();
    let batch = Batch {
        rollouts: &rollouts,
        rewards: &rewards,
        group_size: SAMPLES_PER_QUESTION,
    };
    let cfg: PpoConfig = serde_json::from_value(json!({"lr": 0.0005, "entropy_coef": 1.0}))?;
    let update_rng = stream(SEED, &["ppo"]);
    // The minibatch order `update` draws: it shuffles one order in place at each epoch, from
    // its RNG, before anything else takes a number from it.
    let n = rewards.len();
    let mut order: Vec<i64> = (0..n as i64).collect();
    let mut probe = update_rng.clone();
    let permutations: Vec<Vec<i64>> = (0..cfg.epochs)
        .map(|_| {
            order.shuffle(&mut probe);
            order.clone()
        })
        .collect();

    // The adapters and value head before the update, for the reference to start from.
    Tensor::write_npz(&policy.state(), out.join("init.npz"))?;

    // One update on a fresh fork, so that every call does the same work.
    let run = |rng: &Rng| -> (f64, UpdateStats) {
        let fork = policy.fork();
        let mut adam = Adam::new(&fork.trainable(), cfg.lr);
        let mut rng = rng.clone();
        let start = Instant::now();
        let stats = update(&*fork, &mut adam, &batch, &cfg, &mut rng).expect("a finite update");
        (start.elapsed().as_secs_f64(), stats)
    };
    let (_, stats) = run(&update_rng);
    let mut times: Vec<f64> = (0..REPS).map(|_| run(&update_rng).0).collect();
    times.sort_by(f64::total_cmp);
    let seconds = times[REPS / 2];

    // Where the time goes: the two no-grad passes over the batch and one optimiser step; the
    // rest of an update is its 16 minibatch forward + backward passes.
    let reference_s = median_seconds(|| {
        let _ = policy
            .reference_log_prob(&rollouts.samples)
            .expect("reference");
    });
    let entropy_s = median_seconds(|| {
        policy.entropy(&rollouts.samples).expect("entropy");
    });
    let fork = policy.fork();
    let mut adam = Adam::new(&fork.trainable(), cfg.lr);
    {
        let rows = Tensor::from_slice(&permutations[0][..n / cfg.minibatches as usize]);
        let pick = |t: &Tensor| t.index_select(0, &rows);
        let (old, values) = (pick(&rollouts.log_probs), pick(&rollouts.values));
        let zeros = old.zeros_like();
        let loss = Loss {
            cfg: &cfg,
            targets: Targets {
                old_log_prob: &old,
                advantages: &(&zeros + 1.0),
                old_value: &values,
                returns: &zeros,
                ref_log_prob: &old,
                mask: None,
            },
        };
        fork.backward(&rollouts.samples.select(&rows), &loss)?;
    }
    let adam_s = median_seconds(|| {
        adam.step_clip_norm(&fork.trainable(), cfg.max_grad_norm)
            .expect("finite");
    });
    let minibatches = (cfg.epochs * cfg.minibatches) as f64;
    let train_s = seconds - reference_s - entropy_s - minibatches * adam_s;

    let report = json!({
        "threads": threads,
        "seed": SEED,
        "config": cfg,
        "lora": {"rank": lora.rank, "alpha": lora.alpha, "targets": ["q_proj", "v_proj"]},
        "prompts": prompt_json,
        "questions": questions,
        "actions": actions,
        "old_log_probs": floats(&rollouts.log_probs),
        "old_values": floats(&rollouts.values),
        "rewards": rewards,
        "group_size": SAMPLES_PER_QUESTION,
        "permutations": permutations,
        "init": "init.npz",
        "chorus": {
            "stats": stats,
            "update_s": seconds,
            "reference_forward_s": reference_s,
            "entropy_forward_s": entropy_s,
            "adam_step_s": adam_s,
        },
    });
    std::fs::write(
        out.join("update.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    println!("update_samples_per_s {:.3}", n as f64 / seconds);
    println!("update_s {seconds:.3}");
    println!("reference_forward_s {reference_s:.3}");
    println!("train_minibatches_s {train_s:.3}");
    println!("adam_steps_s {:.3}", minibatches * adam_s);
    println!("entropy_forward_s {entropy_s:.3}");
    println!(
        "stats kl {:.6} entropy {:.6} clip_fraction {:.4} value_loss {:.6} approx_kl {:.6}",
        stats.kl, stats.entropy, stats.clip_fraction, stats.value_loss, stats.approx_kl
    );
    let tokens: usize = questions
        .iter()
        .map(|&q| report["prompts"]["ids"][q].as_array().map_or(0, Vec::len))
        .sum();
    println!(
        "batch {n} questions {questions:?} prompt_tokens {tokens} threads {threads} reps {REPS}"
    );
    Ok(())
}
