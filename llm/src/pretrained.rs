//! A pretrained model as its users meet it: the network, its tokenizer and its chat template,
//! loaded together from one GGUF file or Hugging Face folder and checked against each other.
use std::path::{Path, PathBuf};

use rand::RngCore;

use crate::chat::{ChatError, ChatTemplate, Message};
use crate::config::ModelConfig;
use crate::generate::{generate, GenerateError, GenerateOptions};
use crate::gguf::{Gguf, GgufError};
use crate::model::{load, LoadError, LoadOptions, Model};
use crate::tokenizer::{TextTokenizer, TokenizerError};

#[derive(Debug, thiserror::Error)]
pub enum PretrainedError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error(transparent)]
    Chat(#[from] ChatError),
    #[error("{path}: {cause}")]
    Generate {
        path: PathBuf,
        cause: Box<GenerateError>,
    },
}

/// The network, tokenizer and (when the model has one) chat template of one model.
pub struct Pretrained {
    /// The file or folder it was loaded from.
    pub path: PathBuf,
    pub config: ModelConfig,
    pub model: Model,
    pub tokenizer: TextTokenizer,
    /// `None` for models published without a template (base models).
    pub chat: Option<ChatTemplate>,
}

impl Pretrained {
    /// Loads `path` (a `.gguf` file or a model folder) with `options`; the tokenizer must have
    /// an embedding row for every token.
    pub fn load(path: &Path, options: LoadOptions) -> Result<Pretrained, PretrainedError> {
        let loaded = load(path, options)?;
        let (tokenizer, chat) = if path.is_dir() {
            (TextTokenizer::from_dir(path)?, ChatTemplate::from_dir(path))
        } else {
            let gguf = Gguf::open(path)?;
            (
                TextTokenizer::from_gguf(&gguf)?,
                ChatTemplate::from_gguf(&gguf),
            )
        };
        tokenizer.check_vocab(loaded.config.vocab)?;
        let chat = match chat {
            Ok(chat) => Some(chat),
            Err(ChatError::Missing { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        Ok(Pretrained {
            path: path.to_path_buf(),
            config: loaded.config,
            model: loaded.model,
            tokenizer,
            chat,
        })
    }

    /// The token ids of `text` as a prompt: with `chat`, `text` is one user turn rendered by
    /// the chat template with the assistant's turn opened; otherwise the text itself, with the
    /// special tokens the tokenizer adds.
    pub fn prompt(&self, text: &str, chat: bool) -> Result<Vec<i64>, PretrainedError> {
        let ids = if chat {
            let template = self.chat.as_ref().ok_or_else(|| ChatError::Missing {
                origin: self.path.clone(),
                looked: "no chat template in the model".to_owned(),
            })?;
            let rendered = template.render(
                &[Message {
                    role: "user".to_owned(),
                    content: text.to_owned(),
                }],
                true,
            )?;
            // The template writes the special tokens itself.
            self.tokenizer.encode(&rendered, false)?
        } else {
            self.tokenizer.encode(text, true)?
        };
        Ok(ids.into_iter().map(i64::from).collect())
    }

    /// Generates after each prompt, stopping at the model's end-of-sequence tokens, and
    /// decodes each completion (without the stop token).
    pub fn complete<R: RngCore + ?Sized>(
        &self,
        prompts: &[Vec<i64>],
        options: &GenerateOptions,
        rng: &mut R,
    ) -> Result<Vec<String>, PretrainedError> {
        let generated = generate(&self.model, prompts, options, rng).map_err(|cause| {
            PretrainedError::Generate {
                path: self.path.clone(),
                cause: Box::new(cause),
            }
        })?;
        generated
            .iter()
            .map(|tokens| {
                let body: Vec<u32> = tokens
                    .iter()
                    .filter(|t| !options.stop.contains(t))
                    .map(|&t| t as u32)
                    .collect();
                Ok(self.tokenizer.decode(&body)?)
            })
            .collect()
    }

    /// The stop tokens generation should use: the configuration's end-of-sequence ids, else
    /// the tokenizer's.
    pub fn stop_tokens(&self) -> Vec<i64> {
        if self.config.eos_token_ids.is_empty() {
            self.tokenizer.eos().map(i64::from).into_iter().collect()
        } else {
            self.config.eos_token_ids.clone()
        }
    }
}
