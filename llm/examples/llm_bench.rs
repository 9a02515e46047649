//! chorus's side of bench/llm_compare.sh: the measurements bench/llm_reference.py makes with
//! transformers, on the same GGUF and the same token ids, printed as `name value` lines.
//!
//!     cargo run --release -p chorus-llm --example llm_bench -- GGUF PROMPTS.json THREADS
use std::time::Instant;

use chorus_llm::generate::{generate, GenerateOptions, Sampling};
use chorus_llm::model::{left_pad, load, LoadOptions};
use rand::SeedableRng;

const REPS: usize = 5;

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

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, gguf, prompts, threads] = args.as_slice() else {
        return Err("usage: llm_bench GGUF PROMPTS.json THREADS".into());
    };
    tch::set_num_threads(threads.parse()?);
    let p: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(prompts)?)?;
    let ids: Vec<Vec<i64>> = serde_json::from_value(p["ids"].clone())?;
    let letters: Vec<i64> = serde_json::from_value(p["letters"].clone())?;
    let pad = p["pad"].as_i64().ok_or("no pad id")?;
    let greedy_tokens = p["greedy_tokens"].as_u64().ok_or("no greedy_tokens")? as usize;

    let model = load(std::path::Path::new(gguf), LoadOptions::default())?.model;
    let (batch, mask) = left_pad(&ids, pad, model.device())?;
    let tokens: usize = ids.iter().map(Vec::len).sum();
    let _guard = tch::no_grad_guard();

    // The whole forward pass, hidden states and the head at every position, as transformers'
    // `model(...)` computes it.
    let forward = median_seconds(|| {
        let hidden = model.forward(&batch, &mask, None).expect("forward");
        let _ = model.logits_at(&hidden, None).expect("logits");
    });
    // The same, with each row's first token made distinct: the same shapes and work, but no
    // shared prefix for chorus to compute once (what unrelated prompts would cost).
    let distinct: Vec<Vec<i64>> = ids
        .iter()
        .enumerate()
        .map(|(row, p)| {
            let mut p = p.clone();
            p[0] = 100 + row as i64;
            p
        })
        .collect();
    let (distinct, distinct_mask) = left_pad(&distinct, pad, model.device())?;
    let unshared = median_seconds(|| {
        let hidden = model
            .forward(&distinct, &distinct_mask, None)
            .expect("forward");
        let _ = model.logits_at(&hidden, None).expect("logits");
    });
    // Only the four letter rows of the head at the last position: all a survey answer needs.
    let letters_s = median_seconds(|| {
        let hidden = model.forward(&batch, &mask, None).expect("forward");
        let last = hidden.select(1, -1);
        let _ = model
            .logits_at(&last, Some(&letters))
            .expect("logits")
            .softmax(-1, tch::Kind::Float);
    });
    let options = GenerateOptions {
        max_new_tokens: greedy_tokens,
        sampling: Sampling::Greedy,
        stop: Vec::new(),
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let greedy = median_seconds(|| {
        let out = generate(&model, &ids, &options, &mut rng).expect("generate");
        assert!(out.iter().all(|o| o.len() == greedy_tokens));
    });
    println!("forward_tokens_per_s {:.1}", tokens as f64 / forward);
    println!(
        "forward_unshared_tokens_per_s {:.1}",
        tokens as f64 / unshared
    );
    println!("letters_ms {:.1}", letters_s * 1e3);
    println!(
        "greedy_tokens_per_s {:.1}",
        (ids.len() * greedy_tokens) as f64 / greedy
    );
    Ok(())
}
