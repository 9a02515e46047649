//! A pretrained language model as the policy, answering survey questions.
//!
//! Each question is a prompt (the question and its lettered options, through the model's chat
//! template). Its answer distribution is the softmax of the letter tokens' logits at the
//! prompt's last position, restricted to the letters the question has; evaluation reads it in
//! both rollout forms. In the `choice` form a rollout samples one letter from it (one step);
//! in the `generate` form the model writes a short answer (up to `max_tokens` tokens, sampled
//! from the whole vocabulary at temperature 1, so the log-probs are exact) that is read for a
//! letter ([`read_letter`]), and every written token is a step of the update (per-token KL,
//! values and advantages, as TRL's PPO trainer). Only LoRA adapters and a value head on the
//! final hidden state train; the base weights are shared by every round's fork and never
//! change, and the KL reference is that base with the adapters switched off (no second copy).
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chorus_llm::chat::{ChatTemplate, Message};
use chorus_llm::generate::{generate_with, GenerateOptions, Sampling};
use chorus_llm::lora::{Lora, Target};
use chorus_llm::model::{left_pad, Model};
use chorus_llm::tokenizer::TextTokenizer;
use rand::Rng as _;
use tch::{Device, Kind, Tensor};

use super::{Param, Policy, PolicyError, Rollouts, Samples};
use crate::data::QuestionText;
use crate::ppo::{Loss, LossStats};
use crate::rng::Rng;
use crate::stage::QuestionBank;

/// What the policy is asked: per question, the prompt's token ids and its number of options.
#[derive(Debug)]
pub struct ChoicePrompts {
    pub ids: Vec<Vec<i64>>,
    pub options: Vec<usize>,
    /// The token of each answer letter, in option order (A, B, C, …), at least as many as the
    /// most options of any question.
    pub letters: Vec<i64>,
    /// Fills the left padding (any id; padded slots are masked).
    pub pad: i64,
}

impl ChoicePrompts {
    /// The prompts of `questions` for a model with `tokenizer` and chat template `chat`: each
    /// question a user turn ([`survey_prompt`]) with the assistant's turn opened, the letters
    /// A, B, … as single tokens.
    pub fn build(
        questions: &[&QuestionText],
        tokenizer: &TextTokenizer,
        chat: &ChatTemplate,
    ) -> Result<ChoicePrompts, PolicyError> {
        let most = questions.iter().map(|q| q.options.len()).max().unwrap_or(0);
        if most > 26 {
            return Err(PolicyError(format!(
                "a question has {most} options, more than the 26 answer letters A-Z"
            )));
        }
        let letters = (0..most)
            .map(|i| {
                let letter = char::from(b'A' + i as u8).to_string();
                match tokenizer.encode(&letter, false).map_err(failed)?.as_slice() {
                    [id] => Ok(i64::from(*id)),
                    _ => Err(PolicyError(format!(
                        "the answer letter `{letter}` is not one token of this model's vocabulary"
                    ))),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ids = questions
            .iter()
            .map(|q| {
                let turn = Message {
                    role: "user".to_owned(),
                    content: survey_prompt(q),
                };
                let rendered = chat.render(&[turn], true).map_err(failed)?;
                let ids = tokenizer.encode(&rendered, false).map_err(failed)?;
                Ok(ids.into_iter().map(i64::from).collect())
            })
            .collect::<Result<Vec<_>, PolicyError>>()?;
        Ok(ChoicePrompts {
            ids,
            options: questions.iter().map(|q| q.options.len()).collect(),
            letters,
            pad: tokenizer.pad().or(tokenizer.eos()).map_or(0, i64::from),
        })
    }
}

/// Each prompt's final hidden state at its last position (`[hidden]` per question), from the
/// frozen base model: features that carry what the model understood of the question.
pub fn question_features(
    model: &Model,
    prompts: &ChoicePrompts,
) -> Result<Vec<Vec<f32>>, PolicyError> {
    let _guard = tch::no_grad_guard();
    let mut out = Vec::with_capacity(prompts.ids.len());
    for chunk in prompts.ids.chunks(16) {
        let (ids, mask) = left_pad(chunk, prompts.pad, Device::Cpu).map_err(failed)?;
        let hidden = model.forward(&ids, &mask, None).map_err(failed)?;
        let last = hidden
            .select(1, -1)
            .to_kind(Kind::Float)
            .to_device(Device::Cpu);
        let width = last.size()[1] as usize;
        let flat = Vec::<f32>::try_from(last.flatten(0, -1)).map_err(failed)?;
        out.extend(flat.chunks(width).map(<[f32]>::to_vec));
    }
    Ok(out)
}

/// A survey question as the user turn of a chat: the question, its options lettered A, B, …,
/// and the instruction to answer with one letter (whose token the policy reads next).
pub fn survey_prompt(q: &QuestionText) -> String {
    let options: Vec<String> = q
        .options
        .iter()
        .enumerate()
        .map(|(i, o)| format!("{}. {o}", char::from(b'A' + i as u8)))
        .collect();
    format!(
        "Answer this survey question.\n\n{}\n{}\n\nAnswer with the letter of one option only.",
        q.text,
        options.join("\n")
    )
}

/// LoRA settings.
#[derive(Debug, Clone, PartialEq)]
pub struct LoraSettings {
    pub rank: usize,
    pub alpha: f64,
    pub targets: Vec<Target>,
}

/// How a policy writes its answers (the `generate` rollout form).
pub struct Writing {
    /// The most tokens an answer may take.
    pub max_tokens: usize,
    /// Tokens that end an answer (the model's end of turn); written, and trained on.
    pub stop: Vec<i64>,
    /// Reads the written tokens back as text.
    pub tokenizer: TextTokenizer,
}

impl std::fmt::Debug for Writing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writing")
            .field("max_tokens", &self.max_tokens)
            .field("stop", &self.stop)
            .finish_non_exhaustive()
    }
}

/// The option a written answer names: the first capital letter standing alone (not inside a
/// word: "B", "B.", "(B)", "Answer: B") that is one of the question's `options` letters, so
/// that "I think C" reads as C when there is no option I. `None`: the answer names no option.
pub fn read_letter(text: &str, options: usize) -> Option<usize> {
    let chars: Vec<char> = text.chars().collect();
    let alone = |i: usize| {
        let before = i.checked_sub(1).map(|j| chars[j]);
        let after = chars.get(i + 1);
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(|c| c.is_alphanumeric())
    };
    (0..chars.len()).find_map(|i| {
        let c = chars[i];
        let k = (c as u32).wrapping_sub('A' as u32) as usize;
        (c.is_ascii_uppercase() && k < options && alone(i)).then_some(k)
    })
}

#[derive(Debug)]
pub struct LlmPolicy {
    /// The frozen base (a mutex because libtorch tensors may move between threads but not be
    /// shared).
    base: Arc<Mutex<Model>>,
    prompts: Arc<ChoicePrompts>,
    lora: Lora,
    /// The value head: `[1, hidden]` and `[1]`.
    value_weight: Tensor,
    value_bias: Tensor,
    /// Prompts per forward pass outside training (evaluation), bounding activation memory.
    chunk: usize,
    /// `Some`: the `generate` form; `None`: the `choice` form.
    writing: Option<Arc<Writing>>,
}

fn failed(e: impl std::fmt::Display) -> PolicyError {
    PolicyError(e.to_string())
}

/// Where `ids` (`[N, T]`) repeats rows: the index of each distinct row's first occurrence and,
/// per row, the position of its distinct row among them; `None` when every row is distinct.
/// A round samples each question several times (`samples_per_question`), and a prompt's
/// forward pass does not depend on which sample it serves, so each distinct prompt is run
/// once and its output is gathered back to every row (autograd sums the rows' gradients).
fn distinct_rows(ids: &Tensor) -> Result<Option<(Tensor, Tensor)>, PolicyError> {
    let width = ids.size().get(1).copied().unwrap_or(0).max(1) as usize;
    let flat = Vec::<i64>::try_from(ids.flatten(0, -1)).map_err(failed)?;
    let mut seen = HashMap::new();
    let mut first = Vec::new();
    let inverse: Vec<i64> = flat
        .chunks(width)
        .enumerate()
        .map(|(row, tokens)| {
            *seen.entry(tokens).or_insert_with(|| {
                first.push(row as i64);
                first.len() as i64 - 1
            })
        })
        .collect();
    if first.len() == inverse.len() {
        return Ok(None);
    }
    Ok(Some((
        Tensor::from_slice(&first),
        Tensor::from_slice(&inverse),
    )))
}

/// One forward over rows of prompts: the letter logits restricted to each row's options, and
/// the last position's hidden state.
struct Heads {
    /// log-softmax over the row's options (−∞ past them), `[N, L]`, on the CPU.
    log_probs: Tensor,
    /// `[N]`, on the CPU.
    values: Tensor,
}

/// One forward over written answers, per token: `[N, T]` each, on the CPU.
struct Steps {
    log_probs: Tensor,
    values: Tensor,
    entropy: Tensor,
}

impl LlmPolicy {
    /// A policy on `base` answering `prompts`, with fresh adapters (B = 0, so it starts as the
    /// base model) and value head drawn from `rng`; it writes its answers when `writing` is
    /// given, and chooses a letter otherwise.
    pub fn new(
        base: Model,
        prompts: ChoicePrompts,
        lora: &LoraSettings,
        writing: Option<Writing>,
        rng: &mut Rng,
    ) -> Result<LlmPolicy, PolicyError> {
        if writing.as_ref().is_some_and(|w| w.max_tokens == 0) {
            return Err(PolicyError(
                "`max_tokens` must be at least 1 to write an answer".into(),
            ));
        }
        let most = prompts.options.iter().copied().max().unwrap_or(0);
        if most > prompts.letters.len() {
            return Err(PolicyError(format!(
                "a question has {most} options but there are only {} answer letters",
                prompts.letters.len()
            )));
        }
        let adapters =
            Lora::new(&base, lora.rank, lora.alpha, &lora.targets, rng).map_err(failed)?;
        let hidden = base.config().hidden;
        let bound = 1.0 / (hidden as f64).sqrt();
        let w: Vec<f32> = (0..hidden)
            .map(|_| rng.random_range(-bound..bound) as f32)
            .collect();
        let device = base.device();
        let value_weight = Tensor::from_slice(&w)
            .view([1, hidden as i64])
            .to_device(device)
            .set_requires_grad(true);
        let value_bias = Tensor::zeros([1], (Kind::Float, device)).set_requires_grad(true);
        Ok(LlmPolicy {
            base: Arc::new(Mutex::new(base)),
            prompts: Arc::new(prompts),
            lora: adapters,
            value_weight,
            value_bias,
            chunk: 16,
            writing: writing.map(Arc::new),
        })
    }

    fn base(&self) -> Result<MutexGuard<'_, Model>, PolicyError> {
        self.base
            .lock()
            .map_err(|_| PolicyError("the base model was poisoned by a failed stage".into()))
    }

    /// The batch of `questions`' prompts: ids and mask `[N, T]`, options mask `[N, L]`.
    fn batch(&self, questions: &[usize]) -> Result<Vec<Tensor>, PolicyError> {
        let p = &self.prompts;
        let seqs: Vec<Vec<i64>> = questions.iter().map(|&q| p.ids[q].clone()).collect();
        let (ids, mask) = left_pad(&seqs, p.pad, Device::Cpu).map_err(failed)?;
        let letters = p.letters.len();
        let allowed: Vec<bool> = questions
            .iter()
            .flat_map(|&q| (0..letters).map(move |k| k < p.options[q]))
            .collect();
        let allowed = Tensor::from_slice(&allowed).view([questions.len() as i64, letters as i64]);
        Ok(vec![ids, mask, allowed])
    }

    /// Final hidden states of the rows `ids` (`[N, T, hidden]`, on the model's device), with
    /// the adapters (`adapted`) or without (the reference); each distinct row runs once.
    fn hidden(
        &self,
        base: &Model,
        ids: &Tensor,
        mask: &Tensor,
        adapted: bool,
    ) -> Result<Tensor, PolicyError> {
        let lora = adapted.then_some(&self.lora);
        match distinct_rows(ids)? {
            Some((first, inverse)) => Ok(base
                .forward_with(
                    &ids.index_select(0, &first),
                    &mask.index_select(0, &first),
                    None,
                    lora,
                )
                .map_err(failed)?
                .index_select(0, &inverse.to_device(base.device()))),
            None => base.forward_with(ids, mask, None, lora).map_err(failed),
        }
    }

    /// Letter log-probs and values of `inputs` (from [`LlmPolicy::batch`]), with the adapters
    /// (`adapted`) or without (the reference); differentiable when grad mode is on.
    fn heads(&self, base: &Model, inputs: &[Tensor], adapted: bool) -> Result<Heads, PolicyError> {
        let [ids, mask, allowed] = inputs else {
            return Err(PolicyError(
                "LLM samples hold ids, mask and allowed options".into(),
            ));
        };
        let last = self.hidden(base, ids, mask, adapted)?.select(1, -1);
        let logits = base
            .logits_at(&last, Some(&self.prompts.letters))
            .map_err(failed)?
            .to_device(Device::Cpu);
        let masked = logits.masked_fill(&allowed.logical_not(), f64::NEG_INFINITY);
        let values = last
            .to_kind(Kind::Float)
            .linear(&self.value_weight, Some(&self.value_bias))
            .squeeze_dim(-1)
            .to_device(Device::Cpu);
        Ok(Heads {
            log_probs: masked.log_softmax(-1, Kind::Float),
            values,
        })
    }

    /// Per written token of `samples` (from [`LlmPolicy::write`]): its log-prob, the value
    /// and the entropy of the next-token distribution before it, each `[N, T]` on the CPU,
    /// with the adapters or without; differentiable when grad mode is on.
    fn steps(&self, base: &Model, samples: &Samples, adapted: bool) -> Result<Steps, PolicyError> {
        let [ids, mask, positions] = samples.inputs.as_slice() else {
            return Err(PolicyError(
                "written LLM samples hold ids, mask and token positions".into(),
            ));
        };
        let device = base.device();
        let hidden = self.hidden(base, ids, mask, adapted)?;
        let width = hidden.size()[2];
        let (n, t) = positions.size2().map_err(failed)?;
        // The state before each written token: the one that predicted it.
        let index = positions
            .to_device(device)
            .unsqueeze(-1)
            .expand([n, t, width], false);
        let before = hidden.gather(1, &index, false);
        let all = base
            .logits_at(&before, None)
            .map_err(failed)?
            .log_softmax(-1, Kind::Float);
        let log_probs = all
            .gather(-1, &samples.actions.to_device(device).unsqueeze(-1), false)
            .squeeze_dim(-1);
        let entropy = -(all.exp() * &all).sum_dim_intlist(-1, false, Kind::Float);
        let values = before
            .to_kind(Kind::Float)
            .linear(&self.value_weight, Some(&self.value_bias))
            .squeeze_dim(-1);
        Ok(Steps {
            log_probs: log_probs.to_device(Device::Cpu),
            values: values.to_device(Device::Cpu),
            entropy: entropy.to_device(Device::Cpu),
        })
    }

    /// The `generate` form's rollouts: each prompt's answer written by the adapted model, and
    /// read for a letter.
    fn write(
        &self,
        writing: &Writing,
        questions: &[usize],
        rng: &mut Rng,
    ) -> Result<Rollouts, PolicyError> {
        let p = &self.prompts;
        let prompts: Vec<Vec<i64>> = questions.iter().map(|&q| p.ids[q].clone()).collect();
        let options = GenerateOptions {
            max_new_tokens: writing.max_tokens,
            // Temperature 1 over the whole vocabulary: the sampling distribution is the
            // policy's, so the log-probs the update uses are exact.
            sampling: Sampling::Sample {
                temperature: 1.0,
                top_p: 1.0,
            },
            stop: writing.stop.clone(),
        };
        let base = self.base()?;
        let written =
            generate_with(&base, Some(&self.lora), &prompts, &options, rng).map_err(failed)?;
        let seqs: Vec<Vec<i64>> = prompts
            .iter()
            .zip(&written)
            .map(|(prompt, answer)| [prompt.as_slice(), answer].concat())
            .collect();
        let (ids, mask) = left_pad(&seqs, p.pad, Device::Cpu).map_err(failed)?;
        let width = ids.size()[1];
        let steps = written.iter().map(Vec::len).max().unwrap_or(0);
        let (mut positions, mut tokens, mut live) = (Vec::new(), Vec::new(), Vec::new());
        for answer in &written {
            let start = width - answer.len() as i64 - 1;
            for j in 0..steps {
                let written = j < answer.len();
                positions.push(if written { start + j as i64 } else { width - 1 });
                tokens.push(answer.get(j).copied().unwrap_or(0));
                live.push(if written { 1.0f32 } else { 0.0 });
            }
        }
        let shape = [questions.len() as i64, steps as i64];
        let samples = Samples {
            inputs: vec![ids, mask, Tensor::from_slice(&positions).view(shape)],
            actions: Tensor::from_slice(&tokens).view(shape),
            mask: Some(Tensor::from_slice(&live).view(shape)),
        };
        let scored = {
            let _guard = tch::no_grad_guard();
            self.steps(&base, &samples, true)?
        };
        let answers = written
            .iter()
            .zip(questions)
            .map(|(answer, &q)| {
                let text: Vec<u32> = answer
                    .iter()
                    .filter(|t| !writing.stop.contains(t))
                    .map(|&t| t as u32)
                    .collect();
                let text = writing.tokenizer.decode(&text).map_err(failed)?;
                Ok(read_letter(&text, p.options[q]).map(|pick| {
                    let mut one_hot = vec![0.0; p.options[q]];
                    one_hot[pick] = 1.0;
                    one_hot
                }))
            })
            .collect::<Result<Vec<_>, PolicyError>>()?;
        Ok(Rollouts {
            questions: questions.to_vec(),
            samples,
            log_probs: scored.log_probs,
            values: scored.values,
            answers,
        })
    }

    /// Per-row entropy of log-probs with −∞ outside the options.
    fn entropy_of(log_probs: &Tensor) -> Tensor {
        let finite = log_probs.isfinite();
        let safe = log_probs.where_scalarother(&finite, 0.0);
        -(safe.exp() * &safe)
            .where_scalarother(&finite, 0.0)
            .sum_dim_intlist(-1, false, Kind::Float)
    }
}

impl Policy for LlmPolicy {
    fn sample(
        &self,
        _bank: &QuestionBank,
        questions: &[usize],
        rng: &mut Rng,
    ) -> Result<Rollouts, PolicyError> {
        if let Some(writing) = &self.writing {
            return self.write(writing, questions, rng);
        }
        let inputs = self.batch(questions)?;
        let base = self.base()?;
        let heads = {
            let _guard = tch::no_grad_guard();
            self.heads(&base, &inputs, true)?
        };
        let letters = self.prompts.letters.len();
        let probs = Vec::<f32>::try_from(heads.log_probs.exp().flatten(0, -1)).map_err(failed)?;
        let mut picks = Vec::with_capacity(questions.len());
        let mut answers = Vec::with_capacity(questions.len());
        for (row, &q) in probs.chunks(letters).zip(questions) {
            let k = self.prompts.options[q];
            let u: f32 = rng.random();
            let mut acc = 0.0;
            let pick = row[..k]
                .iter()
                .position(|&p| {
                    acc += p;
                    u < acc
                })
                .unwrap_or(k - 1);
            picks.push(pick as i64);
            let mut one_hot = vec![0.0; k];
            one_hot[pick] = 1.0;
            answers.push(Some(one_hot));
        }
        let actions = Tensor::from_slice(&picks);
        let log_probs = heads
            .log_probs
            .gather(-1, &actions.unsqueeze(-1), false)
            .squeeze_dim(-1);
        Ok(Rollouts {
            questions: questions.to_vec(),
            samples: Samples {
                inputs,
                actions,
                mask: None,
            },
            log_probs,
            values: heads.values,
            answers,
        })
    }

    fn reference_log_prob(&self, samples: &Samples) -> Result<Tensor, PolicyError> {
        let base = self.base()?;
        let _guard = tch::no_grad_guard();
        if self.writing.is_some() {
            return Ok(self.steps(&base, samples, false)?.log_probs);
        }
        let heads = self.heads(&base, &samples.inputs, false)?;
        Ok(heads
            .log_probs
            .gather(-1, &samples.actions.unsqueeze(-1), false)
            .squeeze_dim(-1))
    }

    fn backward(&self, samples: &Samples, loss: &Loss<'_>) -> Result<LossStats, PolicyError> {
        for p in self.trainable() {
            if p.value.grad().defined() {
                let _ = p.value.grad().zero_();
            }
        }
        let base = self.base()?;
        if self.writing.is_some() {
            let steps = self.steps(&base, samples, true)?;
            loss.forward(&steps.log_probs, &steps.values, &steps.entropy)
                .backward();
            return Ok(loss.stats(&steps.log_probs.detach(), &steps.values.detach()));
        }
        let heads = self.heads(&base, &samples.inputs, true)?;
        let log_prob = heads
            .log_probs
            .gather(-1, &samples.actions.unsqueeze(-1), false)
            .squeeze_dim(-1);
        let entropy = Self::entropy_of(&heads.log_probs);
        loss.forward(&log_prob, &heads.values, &entropy).backward();
        Ok(loss.stats(&log_prob.detach(), &heads.values.detach()))
    }

    fn entropy(&self, samples: &Samples) -> Result<f64, PolicyError> {
        let base = self.base()?;
        let _guard = tch::no_grad_guard();
        if self.writing.is_some() {
            let steps = self.steps(&base, samples, true)?;
            let mean = match &samples.mask {
                Some(m) => (&steps.entropy * m).sum(Kind::Float) / m.sum(Kind::Float),
                None => steps.entropy.mean(Kind::Float),
            };
            return Ok(mean.double_value(&[]));
        }
        let heads = self.heads(&base, &samples.inputs, true)?;
        Ok(Self::entropy_of(&heads.log_probs)
            .mean(Kind::Float)
            .double_value(&[]))
    }

    fn distributions(
        &self,
        _bank: &QuestionBank,
        questions: &[usize],
    ) -> Result<Vec<Vec<f64>>, PolicyError> {
        let base = self.base()?;
        let _guard = tch::no_grad_guard();
        let mut out = Vec::with_capacity(questions.len());
        for chunk in questions.chunks(self.chunk) {
            let heads = self.heads(&base, &self.batch(chunk)?, true)?;
            let letters = self.prompts.letters.len();
            let probs =
                Vec::<f32>::try_from(heads.log_probs.exp().flatten(0, -1)).map_err(failed)?;
            for (row, &q) in probs.chunks(letters).zip(chunk) {
                out.push(
                    row[..self.prompts.options[q]]
                        .iter()
                        .map(|&p| f64::from(p))
                        .collect(),
                );
            }
        }
        Ok(out)
    }

    fn trainable(&self) -> Vec<Param> {
        self.state()
            .into_iter()
            .map(|(name, value)| {
                let grad = value.grad();
                let grad = if grad.defined() {
                    grad
                } else {
                    value.zeros_like()
                };
                Param { name, value, grad }
            })
            .collect()
    }

    fn state(&self) -> Vec<(String, Tensor)> {
        let mut named = self.lora.named();
        named.push((
            "value_head.bias".to_owned(),
            self.value_bias.shallow_clone(),
        ));
        named.push((
            "value_head.weight".to_owned(),
            self.value_weight.shallow_clone(),
        ));
        named
    }

    fn fork(&self) -> Box<dyn Policy> {
        let copy = |t: &Tensor| t.detach().copy().set_requires_grad(true);
        Box::new(LlmPolicy {
            base: Arc::clone(&self.base),
            prompts: Arc::clone(&self.prompts),
            lora: self.lora.duplicate(),
            value_weight: copy(&self.value_weight),
            value_bias: copy(&self.value_bias),
            chunk: self.chunk,
            writing: self.writing.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use chorus_llm::model::{load, LoadOptions};

    use super::*;
    use crate::policy::Adam;
    use crate::ppo::{update, Batch, PpoConfig};

    fn tiny() -> Model {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/llm/tiny-llama");
        load(&path, LoadOptions::default()).unwrap().model
    }

    fn policy(rng: &mut Rng) -> LlmPolicy {
        policy_writing(rng, None)
    }

    /// The tiny model writing up to `max_tokens` tokens, stopping at its end of sequence (2).
    fn writing(max_tokens: usize) -> Writing {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/llm/tiny-llama");
        Writing {
            max_tokens,
            stop: vec![2],
            tokenizer: TextTokenizer::from_dir(&dir).unwrap(),
        }
    }

    fn policy_writing(rng: &mut Rng, writing: Option<Writing>) -> LlmPolicy {
        // Six "questions" sharing a 20-token preamble; 3 or 4 options; letters are ids 10..14.
        let preamble: Vec<i64> = (0..20).map(|i| 20 + i).collect();
        let ids = (0..6)
            .map(|q| [preamble.clone(), vec![100 + q, 150 + q, 200]].concat())
            .collect();
        let prompts = ChoicePrompts {
            ids,
            options: vec![4, 3, 4, 4, 3, 4],
            letters: vec![10, 11, 12, 13],
            pad: 0,
        };
        let lora = LoraSettings {
            rank: 4,
            alpha: 8.0,
            targets: Target::ALL.to_vec(),
        };
        LlmPolicy::new(tiny(), prompts, &lora, writing, rng).unwrap()
    }

    fn bank() -> QuestionBank {
        QuestionBank {
            questions: crate::data::Questions::with_features(4, vec![Vec::new(); 6]),
            train: (0..6).collect(),
            eval: Vec::new(),
        }
    }

    /// One PPO update at learning rate 0.01 (Adam's), otherwise the defaults; its KL.
    fn step(
        policy: &LlmPolicy,
        adam: &mut Adam,
        rollouts: &Rollouts,
        rewards: &[f64],
        group_size: usize,
        rng: &mut Rng,
    ) -> f64 {
        let mut cfg: PpoConfig = serde_json::from_str("{}").unwrap();
        cfg.lr = adam.lr;
        let data = Batch {
            rollouts,
            rewards,
            group_size,
        };
        update(policy, adam, &data, &cfg, rng).unwrap().kl
    }

    /// Rewarding option A moves the policy toward A on every question, through the adapters
    /// and value head only: the base model (adapters off) answers bit-identically after
    /// training, and the KL to it grows from zero.
    #[test]
    fn ppo_moves_the_adapters_and_leaves_the_base_alone() {
        let mut rng = crate::rng::stream(1, &["llm-policy"]);
        let policy = policy(&mut rng);
        let bank = bank();
        let questions: Vec<usize> = (0..6).flat_map(|q| [q, q]).collect();
        let before = policy.distributions(&bank, &bank.train).unwrap();
        // The base (adapters off) on a fixed probe, before any training.
        let probe = policy.sample(&bank, &questions, &mut rng).unwrap();
        let base_before = policy.reference_log_prob(&probe.samples).unwrap();
        let mut adam = Adam::new(&policy.trainable(), 0.01);
        let mut kl = Vec::new();
        for _ in 0..4 {
            let rollouts = policy.sample(&bank, &questions, &mut rng).unwrap();
            let rewards: Vec<f64> = rollouts.answers.iter().flatten().map(|a| a[0]).collect();
            kl.push(step(&policy, &mut adam, &rollouts, &rewards, 2, &mut rng));
        }
        assert!(kl[0].abs() < 1e-6, "starts at the base: {kl:?}");
        assert!(kl[3].abs() > 1e-6, "moves away from it: {kl:?}");
        let after = policy.distributions(&bank, &bank.train).unwrap();
        for (q, (b, a)) in before.iter().zip(&after).enumerate() {
            assert_eq!(a.len(), [4, 3, 4, 4, 3, 4][q]);
            assert!((a.iter().sum::<f64>() - 1.0).abs() < 1e-5);
            assert!(a[0] > b[0], "question {q}: P(A) {} → {}", b[0], a[0]);
        }
        let base_after = policy.reference_log_prob(&probe.samples).unwrap();
        assert!(base_after.equal(&base_before), "the base model changed");
    }

    /// A prompt asked several times in one batch is run once: its rows get what a batch of
    /// distinct prompts gives, and the gradient sums over the repeats.
    #[test]
    fn repeated_prompts_match_distinct_ones_in_value_and_gradient() {
        let mut rng = crate::rng::stream(3, &["llm-policy"]);
        let policy = policy(&mut rng);
        let base = policy.base().unwrap();
        // A weighted sum of every row's P(A) and value, differentiated.
        let run = |questions: &[usize], weights: &[f32]| {
            for p in policy.trainable() {
                if p.value.grad().defined() {
                    let _ = p.value.grad().zero_();
                }
            }
            let heads = policy
                .heads(&base, &policy.batch(questions).unwrap(), true)
                .unwrap();
            let w = Tensor::from_slice(weights);
            let a = heads.log_probs.select(1, 0);
            ((&a * &w).sum(Kind::Float) + (&heads.values * &w).sum(Kind::Float)).backward();
            let grads: Vec<Tensor> = policy.trainable().iter().map(|p| p.grad.copy()).collect();
            (Vec::<f32>::try_from(a.detach()).unwrap(), grads)
        };
        let (repeated, repeated_grads) = run(&[0, 1, 0, 0], &[1.0; 4]);
        let (distinct, distinct_grads) = run(&[0, 1], &[3.0, 1.0]);
        let expected = [distinct[0], distinct[1], distinct[0], distinct[0]];
        assert_eq!(repeated, expected);
        // (LoRA's A matrices get no gradient while B is still zero; the B's and the value head do.)
        let moved = distinct_grads
            .iter()
            .filter(|d| d.abs().max().double_value(&[]) > 0.0);
        assert!(moved.count() > distinct_grads.len() / 2);
        for (r, d) in repeated_grads.iter().zip(&distinct_grads) {
            assert!(r.allclose(d, 1e-5, 1e-7, false), "{r} vs {d}");
        }
        assert!(distinct_rows(&policy.batch(&[0, 1, 2]).unwrap()[0])
            .unwrap()
            .is_none());
    }

    /// Written answers train token by token: the tiny model mostly repeats the prompt's last
    /// token (200); rewarding answers that start otherwise moves the adapted model's first-token
    /// mass away from 200, while the rollouts' per-token log-probs, values and mask line up and
    /// end at the stop token or at `max_tokens`.
    #[test]
    fn written_answers_train_per_token() {
        let mut rng = crate::rng::stream(4, &["llm-policy"]);
        let policy = policy_writing(&mut rng, Some(writing(4)));
        // Adapters away from zero, so that the policy starts broader than the tiny model (which
        // gives its favourite token 98%) and the reward has answers of both kinds to compare.
        tch::manual_seed(4);
        for (name, mut t) in policy.lora.named() {
            if name.ends_with("lora_B") {
                let _guard = tch::no_grad_guard();
                t.copy_(&(t.randn_like() * 0.3));
            }
        }
        let bank = bank();
        let questions: Vec<usize> = (0..6).flat_map(|q| [q; 8]).collect();
        let other = |policy: &LlmPolicy| {
            let base = policy.base().unwrap();
            let _guard = tch::no_grad_guard();
            let inputs = policy.batch(&bank.train).unwrap();
            let last = policy
                .hidden(&base, &inputs[0], &inputs[1], true)
                .unwrap()
                .select(1, -1);
            let p = base
                .logits_at(&last, None)
                .unwrap()
                .softmax(-1, Kind::Float);
            p.select(-1, 200)
                .neg()
                .g_add_scalar(1.0)
                .mean(Kind::Float)
                .double_value(&[])
        };
        let before = other(&policy);
        let mut adam = Adam::new(&policy.trainable(), 0.01);
        let mut kl = Vec::new();
        for _ in 0..6 {
            let rollouts = policy.sample(&bank, &questions, &mut rng).unwrap();
            let mask = rollouts.samples.mask.as_ref().expect("written steps");
            let (n, t) = mask.size2().unwrap();
            assert_eq!(
                (n, rollouts.log_probs.size(), rollouts.values.size()),
                (48, vec![n, t], vec![n, t])
            );
            let lens = Vec::<f32>::try_from(mask.sum_dim_intlist(-1, false, Kind::Float)).unwrap();
            let tokens = Vec::<i64>::try_from(rollouts.samples.actions.flatten(0, -1)).unwrap();
            for (row, &len) in tokens.chunks(t as usize).zip(&lens) {
                let len = len as usize;
                assert!((1..=4).contains(&len));
                assert!(len == 4 || row[len - 1] == 2, "stops at its end: {row:?}");
            }
            let rewards: Vec<f64> = tokens
                .chunks(t as usize)
                .map(|row| f64::from(u8::from(row[0] != 200)))
                .collect();
            kl.push(step(&policy, &mut adam, &rollouts, &rewards, 8, &mut rng));
        }
        assert!(kl.iter().all(|k| k.is_finite()), "{kl:?}");
        let after = other(&policy);
        assert!(after > before + 0.2, "P(not 200) {before} → {after}");
    }

    #[test]
    fn a_written_answer_names_the_first_lone_option_letter() {
        for (text, options, expected) in [
            ("B", 4, Some(1)),
            (" (C) Somewhat", 4, Some(2)),
            ("Answer: D.", 4, Some(3)),
            ("I think A", 4, Some(0)),
            ("I think A", 10, Some(8)),
            ("E", 4, None),
            ("Absolutely", 4, None),
            ("", 4, None),
            ("a", 4, None),
        ] {
            assert_eq!(read_letter(text, options), expected, "{text:?}");
        }
    }

    /// A fork trains on its own: the original's adapters do not move.
    #[test]
    fn a_fork_shares_the_base_and_owns_its_adapters() {
        let mut rng = crate::rng::stream(2, &["llm-policy"]);
        let policy = policy(&mut rng);
        let fork = policy.fork();
        let _guard = tch::no_grad_guard();
        for (_, mut t) in fork.state() {
            let _ = t.fill_(0.5);
        }
        assert!(policy
            .state()
            .iter()
            .any(|(_, t)| t.abs().max().double_value(&[]) != 0.5));
        let names: Vec<String> = policy.state().into_iter().map(|(n, _)| n).collect();
        assert!(names.contains(&"layers.0.self_attn.q_proj.lora_A".to_owned()));
        assert!(names.contains(&"value_head.weight".to_owned()));
    }
}
