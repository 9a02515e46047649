//! Batched text generation: prompts left-padded into one batch, one prefill, then one token per
//! step through the KV cache; greedy or temperature + nucleus (top-p) sampling; each row stops
//! at its first stop token.
//!
//! Randomness comes only from the caller's RNG (never torch's global generator), one draw per
//! row per sampled step in row order, so a run is a function of its seed — what reproducible
//! pipelines need.
use rand::RngCore;
use tch::{Kind, Tensor};

use crate::lora::Lora;
use crate::model::{left_pad, Model, ModelError};

/// How the next token is chosen from the last position's logits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampling {
    /// The most likely token (the first of equals).
    Greedy,
    /// Softmax of `logits / temperature`, cut to the smallest set of most likely tokens whose
    /// probability reaches `top_p` (transformers' `TopPLogitsWarper`; 1.0 keeps everything),
    /// renormalized, sampled.
    Sample { temperature: f64, top_p: f64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    pub max_new_tokens: usize,
    pub sampling: Sampling,
    /// A row stops after generating any of these (included in its output). Usually the
    /// model's `eos_token_ids`; empty runs every row for `max_new_tokens`.
    pub stop: Vec<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("prompt {index} is empty")]
    EmptyPrompt { index: usize },
    #[error("{0}")]
    Options(String),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}

/// Generates up to `options.max_new_tokens` tokens after each prompt and returns them per
/// prompt (without the prompt; ending with the stop token when one was hit).
pub fn generate<R: RngCore + ?Sized>(
    model: &Model,
    prompts: &[Vec<i64>],
    options: &GenerateOptions,
    rng: &mut R,
) -> Result<Vec<Vec<i64>>, GenerateError> {
    generate_with(model, None, prompts, options, rng)
}

/// [`generate`] by the model with LoRA adapters (`None`: the base model).
pub fn generate_with<R: RngCore + ?Sized>(
    model: &Model,
    lora: Option<&Lora>,
    prompts: &[Vec<i64>],
    options: &GenerateOptions,
    rng: &mut R,
) -> Result<Vec<Vec<i64>>, GenerateError> {
    if let Sampling::Sample { temperature, top_p } = options.sampling {
        if !(temperature.is_finite() && temperature > 0.0) {
            return Err(GenerateError::Options(format!(
                "temperature {temperature} must be finite and > 0 (use greedy decoding for 0)"
            )));
        }
        if !(top_p > 0.0 && top_p <= 1.0) {
            return Err(GenerateError::Options(format!(
                "top_p {top_p} must be in (0, 1]"
            )));
        }
    }
    if let Some(index) = prompts.iter().position(Vec::is_empty) {
        return Err(GenerateError::EmptyPrompt { index });
    }
    let rows = prompts.len();
    let mut out = vec![Vec::with_capacity(options.max_new_tokens); rows];
    if rows == 0 || options.max_new_tokens == 0 {
        return Ok(out);
    }
    let _guard = tch::no_grad_guard();
    let device = model.device();
    // The pad id only fills masked slots; 0 is in every vocabulary.
    let (ids, mask) = left_pad(prompts, 0, device)?;
    let longest = ids.size()[1] as usize;
    let mut cache = model.new_cache(rows, longest + options.max_new_tokens)?;
    let mut hidden = model.forward_with(&ids, &mask, Some(&mut cache), lora)?;
    let step_mask = Tensor::f_ones([rows as i64, 1], (Kind::Int64, device))?;
    let mut done = vec![false; rows];
    for step in 0..options.max_new_tokens {
        let last = hidden.f_select(1, -1)?;
        let logits = model.logits_at(&last, None)?;
        let next = match options.sampling {
            Sampling::Greedy => Vec::<i64>::try_from(logits.f_argmax(-1, false)?)?,
            Sampling::Sample { temperature, top_p } => sample(&logits, temperature, top_p, rng)?,
        };
        for ((row, &token), finished) in out.iter_mut().zip(&next).zip(done.iter_mut()) {
            if !*finished {
                row.push(token);
                *finished = options.stop.contains(&token);
            }
        }
        if step + 1 == options.max_new_tokens || done.iter().all(|&d| d) {
            break;
        }
        // Finished rows keep decoding (their outputs are dropped): rows are independent, and a
        // fixed batch keeps the cache in place.
        let feed = Tensor::f_from_slice(&next)?
            .f_view([rows as i64, 1])?
            .f_to_device(device)?;
        hidden = model.forward_with(&feed, &step_mask, Some(&mut cache), lora)?;
    }
    Ok(out)
}

/// Draws one token per row of `logits` (`[B, V]`, float32).
fn sample<R: RngCore + ?Sized>(
    logits: &Tensor,
    temperature: f64,
    top_p: f64,
    rng: &mut R,
) -> Result<Vec<i64>, GenerateError> {
    let probs = logits
        .f_div_scalar(temperature)?
        .f_softmax(-1, Kind::Float)?;
    let (sorted, order) = probs.f_sort(-1, true)?;
    let (rows, vocab) = sorted.size2()?;
    let cumulative = Vec::<f32>::try_from(sorted.f_cumsum(-1, Kind::Float)?.f_view([-1])?)?;
    let order = Vec::<i64>::try_from(order.f_view([-1])?)?;
    let top_p = top_p as f32;
    let mut tokens = Vec::with_capacity(rows as usize);
    for (cum, order) in cumulative
        .chunks_exact(vocab as usize)
        .zip(order.chunks_exact(vocab as usize))
    {
        // Keep tokens while the mass before them is below top_p (at least one).
        let kept = (cum.partition_point(|&c| c < top_p) + 1).min(cum.len());
        let mass = cum[kept - 1];
        let u = uniform(rng) as f32 * mass;
        let k = cum[..kept].partition_point(|&c| c <= u).min(kept - 1);
        tokens.push(order[k]);
    }
    Ok(tokens)
}

/// A uniform draw from [0, 1) with 53 random bits.
fn uniform<R: RngCore + ?Sized>(rng: &mut R) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// Draw frequencies over a fixed distribution, per token.
    fn frequencies(probs: &[f64], temperature: f64, top_p: f64, draws: usize) -> Vec<f64> {
        let logits: Vec<f32> = probs.iter().map(|p| p.ln() as f32).collect();
        let logits = Tensor::from_slice(&logits)
            .view([1, -1])
            .repeat([draws as i64, 1]);
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut counts = vec![0.0; probs.len()];
        for token in sample(&logits, temperature, top_p, &mut rng).unwrap() {
            counts[token as usize] += 1.0 / draws as f64;
        }
        counts
    }

    fn assert_close(got: &[f64], want: &[f64]) {
        for (g, w) in got.iter().zip(want) {
            assert!(
                (g - w).abs() < 0.01,
                "frequencies {got:?}, expected {want:?}"
            );
        }
    }

    #[test]
    fn samples_follow_the_softmax_and_the_nucleus() {
        let probs = [0.1, 0.2, 0.3, 0.4];
        assert_close(&frequencies(&probs, 1.0, 1.0, 40_000), &probs);
        // top_p 0.5: 0.4 alone is below it, so 0.3 joins; renormalized over 0.7.
        assert_close(
            &frequencies(&probs, 1.0, 0.5, 40_000),
            &[0.0, 0.0, 3.0 / 7.0, 4.0 / 7.0],
        );
        // Temperature 2 flattens: p^(1/2), renormalized.
        let flat: Vec<f64> = probs.iter().map(|p: &f64| p.sqrt()).collect();
        let sum: f64 = flat.iter().sum();
        let flat: Vec<f64> = flat.iter().map(|p| p / sum).collect();
        assert_close(&frequencies(&probs, 2.0, 1.0, 40_000), &flat);
    }
}
