//! Text ↔ token ids: a `tokenizers` tokenizer built from a GGUF file's metadata, or loaded
//! from a Hugging Face folder's `tokenizer.json`.
//!
//! From GGUF chorus supports byte-level BPE vocabularies (`tokenizer.ggml.model = gpt2`, what
//! llama.cpp writes for Llama 3, Qwen2, SmolLM, GPT-2 and most current models) and follows
//! llama.cpp's reading of them, since llama.cpp defines the format:
//!
//! - `tokenizer.ggml.pre` picks the pre-tokenizer regexes as llama.cpp's `llama-vocab.cpp`
//!   does; only names whose behaviour the `tokenizers` crate reproduces exactly are accepted
//!   (the `PreTokenizer` enum below lists them), others are refused rather than approximated.
//! - Tokens of type CONTROL (3) and UNKNOWN (2) become special added tokens and USER_DEFINED
//!   (4) ones plain added tokens: all are matched whole in the text, as llama.cpp does when
//!   asked to parse special tokens (and as transformers always does).
//! - BOS is prepended (and EOS appended) when `add_special` is asked for and the file's
//!   `tokenizer.ggml.add_bos_token` (`add_eos_token`) says so; without the key, llama.cpp's
//!   default for the pre-tokenizer applies (BOS for the Llama 3 family, none otherwise).
//!
//! Where transformers differs: transformers 5 has no entry for `tokenizer.ggml.pre = smollm`
//! and falls back to the plain GPT-2 pre-tokenizer, while llama.cpp (and so chorus) first
//! splits off every digit. SmolLM2's vocabulary has no token joining a digit to anything
//! else, so the two only differ where two or more whitespace characters precede a digit:
//! `"x  1"` is `x Ġ Ġ 1` in transformers but `x ĠĠ 1` in llama.cpp and chorus
//! (tests/fixtures/llm/smollm2_tokens.json, case `spaces_before_digits`). chorus follows
//! llama.cpp, which defines what a GGUF's `pre` name means (its converter names a tokenizer
//! by the splits the original makes).
//!
//! A byte with no token of its own is dropped from the input, as both llama.cpp and
//! `tokenizers` do: SmolLM2's vocabulary, for one, has no token for the control characters
//! U+0004, U+0006, U+0013, U+0014, U+0016 and U+001D.
//!
//! Decoding is the plain byte-level inverse, keeping special tokens: `decode(encode(s)) == s`.
//! (llama.cpp's optional `clean_spaces` post-processing is not applied.)

use std::path::{Path, PathBuf};

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BpeBuilder, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

use crate::gguf::{Gguf, Value};

/// Qwen2's split as llama.cpp's `llm_tokenizer_bpe` writes it. (GPT-2's split needs no
/// constant: the `tokenizers` ByteLevel pre-tokenizer applies it when `use_regex` is on.)
const QWEN2_REGEX: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Llama 3's split as llama.cpp writes it: as Qwen2's but digits in runs of up to three.
const LLAMA3_REGEX: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// llama.cpp's pre-tokenizers that chorus reproduces, by the regexes llama-vocab.cpp assigns
/// them. The contractions are spelled `'[sS]` as in llama.cpp rather than `(?i:'s)` as in the
/// models' tokenizer.json: Unicode case folding would also match e.g. `'ſ` (long s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PreTokenizer {
    /// GPT-2's regex, byte-level (`gpt-2`, `phi-2`, `mpt`, `olmo`).
    Gpt2,
    /// Every digit alone first, then GPT-2's regex (`smollm`, `starcoder`, `refact`,
    /// `codeshell`, `command-r`, `exaone`, `minerva-7b`).
    DigitsThenGpt2,
    /// Qwen2's regex: single digits, newline runs apart (`qwen2`, `deepseek-r1-qwen`,
    /// `megrez`, `stablelm2`).
    Qwen2,
    /// Llama 3's regex: digits in threes (`dbrx`, `smaug-bpe`).
    Llama3,
    /// Llama 3's regex, and a word that is itself a token is not merged from pieces
    /// (`ignore_merges`), and BOS is added by default (`llama3`, `llama-v3`, `llama-bpe`,
    /// `falcon3`).
    Llama3IgnoreMerges,
}

const SUPPORTED_PRE: &[(&str, PreTokenizer)] = &[
    ("gpt-2", PreTokenizer::Gpt2),
    ("phi-2", PreTokenizer::Gpt2),
    ("mpt", PreTokenizer::Gpt2),
    ("olmo", PreTokenizer::Gpt2),
    ("smollm", PreTokenizer::DigitsThenGpt2),
    ("starcoder", PreTokenizer::DigitsThenGpt2),
    ("refact", PreTokenizer::DigitsThenGpt2),
    ("codeshell", PreTokenizer::DigitsThenGpt2),
    ("command-r", PreTokenizer::DigitsThenGpt2),
    ("exaone", PreTokenizer::DigitsThenGpt2),
    ("minerva-7b", PreTokenizer::DigitsThenGpt2),
    ("qwen2", PreTokenizer::Qwen2),
    ("deepseek-r1-qwen", PreTokenizer::Qwen2),
    ("megrez", PreTokenizer::Qwen2),
    ("stablelm2", PreTokenizer::Qwen2),
    ("dbrx", PreTokenizer::Llama3),
    ("smaug-bpe", PreTokenizer::Llama3),
    ("llama3", PreTokenizer::Llama3IgnoreMerges),
    ("llama-v3", PreTokenizer::Llama3IgnoreMerges),
    ("llama-bpe", PreTokenizer::Llama3IgnoreMerges),
    ("falcon3", PreTokenizer::Llama3IgnoreMerges),
];

impl PreTokenizer {
    fn build(self) -> Result<PreTokenizerWrapper, tokenizers::Error> {
        // Without its regex, ByteLevel only maps bytes to its printable alphabet.
        let bytes_only = ByteLevel::new(false, false, false);
        let gpt2 = ByteLevel::new(false, false, true);
        let split = |regex: &str| {
            Split::new(
                SplitPattern::Regex(regex.into()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
        };
        Ok(match self {
            PreTokenizer::Gpt2 => gpt2.into(),
            PreTokenizer::DigitsThenGpt2 => {
                Sequence::new(vec![Digits::new(true).into(), gpt2.into()]).into()
            }
            PreTokenizer::Qwen2 => {
                Sequence::new(vec![split(QWEN2_REGEX)?.into(), bytes_only.into()]).into()
            }
            PreTokenizer::Llama3 | PreTokenizer::Llama3IgnoreMerges => {
                Sequence::new(vec![split(LLAMA3_REGEX)?.into(), bytes_only.into()]).into()
            }
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("{path}: {problem}")]
    Gguf { path: PathBuf, problem: String },
    #[error("{path}: tokenizer.ggml.model is `{model}`{kind}; chorus reads only `gpt2` (byte-level BPE) tokenizers from GGUF files\n  hint: load the model from its Hugging Face folder, whose tokenizer.json chorus reads whatever its kind")]
    UnsupportedModel {
        path: PathBuf,
        model: String,
        kind: &'static str,
    },
    #[error("{path}: tokenizer.ggml.pre is `{pre}`, a pre-tokenizer chorus does not reproduce; supported: {supported}\n  hint: load the model from its Hugging Face folder (tokenizer.json), or use a GGUF of a model with a supported pre-tokenizer")]
    UnsupportedPre {
        path: PathBuf,
        pre: String,
        supported: String,
    },
    #[error("{path}: cannot load the tokenizer: {cause}")]
    Load { path: PathBuf, cause: String },
    #[error("{path}: the tokenizer has {tokens} tokens but the model's embedding has only {rows} rows\n  hint: the tokenizer does not belong to these weights")]
    VocabMismatch {
        path: PathBuf,
        tokens: usize,
        rows: usize,
    },
    #[error("{path}: cannot {what}: {cause}")]
    Codec {
        path: PathBuf,
        what: &'static str,
        cause: String,
    },
}

/// A model's tokenizer with its special ids.
pub struct TextTokenizer {
    inner: Tokenizer,
    /// The GGUF file or Hugging Face folder it came from, for messages.
    source: PathBuf,
    bos: Option<u32>,
    eos: Option<u32>,
    pad: Option<u32>,
    /// For GGUF: what `add_special` adds (tokenizer.json has its own post-processor).
    prepend: Option<u32>,
    append: Option<u32>,
    vocab_size: usize,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("source", &self.source)
            .field("vocab_size", &self.vocab_size)
            .field("bos", &self.bos)
            .field("eos", &self.eos)
            .field("pad", &self.pad)
            .finish()
    }
}

impl TextTokenizer {
    /// Builds the tokenizer a GGUF file describes (see the module doc for what is read).
    pub fn from_gguf(gguf: &Gguf) -> Result<TextTokenizer, TokenizerError> {
        let path = gguf.path.clone();
        let bad = |problem: String| TokenizerError::Gguf {
            path: path.clone(),
            problem,
        };
        let string = |key: &str| match gguf.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(v) => Err(bad(format!("{key} is a {}, not a string", v.type_name()))),
        };

        let model = string("tokenizer.ggml.model")?
            .ok_or_else(|| bad("has no tokenizer (tokenizer.ggml.model is missing)".into()))?;
        if model != "gpt2" {
            let kind = match model {
                "llama" => " (SentencePiece)",
                "bert" => " (WordPiece)",
                "t5" => " (Unigram)",
                _ => "",
            };
            return Err(TokenizerError::UnsupportedModel {
                path,
                model: model.into(),
                kind,
            });
        }
        let supported = SUPPORTED_PRE
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ");
        let pre_name = string("tokenizer.ggml.pre")?.ok_or_else(|| {
            bad(format!(
                "tokenizer.ggml.pre is missing, so how text is split before BPE is unknown (llama.cpp guesses, with degraded output); chorus supports: {supported}"
            ))
        })?;
        let pre = SUPPORTED_PRE
            .iter()
            .find(|(name, _)| *name == pre_name)
            .map(|(_, pre)| *pre)
            .ok_or_else(|| TokenizerError::UnsupportedPre {
                path: path.clone(),
                pre: pre_name.into(),
                supported,
            })?;

        let strings = |key: &str| -> Result<Vec<&str>, TokenizerError> {
            let array = gguf
                .get(key)
                .ok_or_else(|| bad(format!("{key} is missing")))?
                .as_array()
                .ok_or_else(|| bad(format!("{key} is not an array")))?;
            array
                .iter()
                .map(|v| v.as_str())
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad(format!("{key} is not an array of strings")))
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        let n = tokens.len();
        let types: Vec<u64> = match gguf.get("tokenizer.ggml.token_type") {
            None => vec![1; n],
            Some(v) => v
                .as_array()
                .and_then(|a| a.iter().map(Value::as_u64).collect::<Option<Vec<_>>>())
                .filter(|t| t.len() == n)
                .ok_or_else(|| {
                    bad(format!(
                        "tokenizer.ggml.token_type is not an array of {n} integers, one per token"
                    ))
                })?,
        };

        let mut vocab = Vocab::default();
        for (id, token) in tokens.iter().enumerate() {
            if let Some(first) = vocab.insert((*token).to_owned(), id as u32) {
                return Err(bad(format!(
                    "tokens {first} and {id} are both `{token}`; a byte-level BPE vocabulary cannot hold a token twice"
                )));
            }
        }
        let merges = strings("tokenizer.ggml.merges")?
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                // As llama.cpp: the separator is the first space after the first character.
                let split = m
                    .char_indices()
                    .nth(1)
                    .and_then(|(start, _)| m[start..].find(' ').map(|p| p + start));
                split
                    .map(|p| (m[..p].to_owned(), m[p + 1..].to_owned()))
                    .ok_or_else(|| {
                        bad(format!(
                            "merge {i} `{m}` is not two tokens joined by a space"
                        ))
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let bpe = BpeBuilder::new()
            .vocab_and_merges(vocab, merges)
            .ignore_merges(pre == PreTokenizer::Llama3IgnoreMerges)
            .build()
            .map_err(|e| bad(format!("the BPE vocabulary and merges do not fit: {e}")))?;
        let mut inner = Tokenizer::new(bpe);
        inner.with_pre_tokenizer(Some(
            pre.build()
                .map_err(|e| bad(format!("pre-tokenizer: {e}")))?,
        ));
        inner.with_decoder(Some(ByteLevelDecoder::default()));
        let added: Vec<AddedToken> = tokens
            .iter()
            .zip(&types)
            .filter_map(|(token, ty)| match ty {
                2 | 3 => Some(AddedToken::from(*token, true)),
                4 => Some(AddedToken::from(*token, false).normalized(false)),
                _ => None,
            })
            .collect();
        inner.add_special_tokens(&added);

        let id = |key: &str| -> Result<Option<u32>, TokenizerError> {
            match gguf.get(key) {
                None => Ok(None),
                Some(v) => v
                    .as_u64()
                    .filter(|&id| id < n as u64)
                    .map(|id| Some(id as u32))
                    .ok_or_else(|| bad(format!("{key} is {v}, not a token id below {n}"))),
            }
        };
        let flag = |key: &str, default: bool| match gguf.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| bad(format!("{key} is a {}, not a bool", v.type_name()))),
        };
        let bos = id("tokenizer.ggml.bos_token_id")?;
        let eos = id("tokenizer.ggml.eos_token_id")?;
        let pad = id("tokenizer.ggml.padding_token_id")?;
        let add_bos = flag(
            "tokenizer.ggml.add_bos_token",
            pre == PreTokenizer::Llama3IgnoreMerges,
        )?;
        let add_eos = flag("tokenizer.ggml.add_eos_token", false)?;
        if flag("tokenizer.ggml.add_sep_token", false)? {
            return Err(bad(
                "tokenizer.ggml.add_sep_token is true (an embedding model's tokenizer); chorus runs generative models only".into(),
            ));
        }
        let missing = |what: &str| {
            bad(format!(
                "tokenizer.ggml.add_{what}_token is true but tokenizer.ggml.{what}_token_id is missing"
            ))
        };
        let prepend = match (add_bos, bos) {
            (true, None) => return Err(missing("bos")),
            (on, bos) => bos.filter(|_| on),
        };
        let append = match (add_eos, eos) {
            (true, None) => return Err(missing("eos")),
            (on, eos) => eos.filter(|_| on),
        };
        Ok(TextTokenizer {
            prepend,
            append,
            inner,
            source: path.clone(),
            bos,
            eos,
            pad,
            vocab_size: n,
        })
    }

    /// Loads `dir/tokenizer.json` (either merges form, `"a b"` or `["a", "b"]`); special
    /// tokens are named by `tokenizer_config.json` (`bos_token`, `eos_token`, `pad_token`,
    /// each a string or `{"content": ...}`), else by `generation_config.json`'s ids. Whether
    /// BOS is added is up to the tokenizer.json's post-processor, which transformers writes
    /// from the model's `add_bos_token`.
    pub fn from_dir(dir: &Path) -> Result<TextTokenizer, TokenizerError> {
        let file = dir.join("tokenizer.json");
        let inner = Tokenizer::from_file(&file).map_err(|e| TokenizerError::Load {
            path: file.clone(),
            cause: if file.exists() {
                e.to_string()
            } else {
                "no such file (a Hugging Face model folder has its tokenizer there)".into()
            },
        })?;
        let config = read_json(&dir.join("tokenizer_config.json"))?;
        let generation = read_json(&dir.join("generation_config.json"))?;
        let special = |name: &str| -> Result<Option<u32>, TokenizerError> {
            let named = config.as_ref().and_then(|c| token_text(c.get(name)?));
            if let Some(text) = named {
                return inner
                    .token_to_id(text)
                    .map(Some)
                    .ok_or_else(|| TokenizerError::Load {
                        path: dir.join("tokenizer_config.json"),
                        cause: format!("{name} `{text}` is not a token of tokenizer.json"),
                    });
            }
            let id_key = format!("{}_id", name);
            let id = generation.as_ref().and_then(|g| match g.get(&id_key)? {
                serde_json::Value::Array(ids) => ids.first()?.as_u64(),
                v => v.as_u64(),
            });
            Ok(id.and_then(|id| u32::try_from(id).ok()))
        };
        let vocab_size = inner
            .get_vocab(true)
            .values()
            .max()
            .map_or(0, |&max| max as usize + 1);
        Ok(TextTokenizer {
            bos: special("bos_token")?,
            eos: special("eos_token")?,
            pad: special("pad_token")?,
            prepend: None,
            append: None,
            inner,
            source: dir.to_path_buf(),
            vocab_size,
        })
    }

    /// Token ids of `text`. Special tokens written in the text (`<|im_start|>`) are matched
    /// whole; `add_special` adds what the model adds to a sequence (BOS, for models that
    /// want it), so pass `false` for text that already carries its own (a rendered chat).
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>, TokenizerError> {
        let encoding = self
            .inner
            .encode_fast(text, add_special)
            .map_err(|e| self.codec("encode", e))?;
        let mut ids = Vec::with_capacity(encoding.len() + 2);
        ids.extend(self.prepend.filter(|_| add_special));
        ids.extend_from_slice(encoding.get_ids());
        ids.extend(self.append.filter(|_| add_special));
        Ok(ids)
    }

    /// The text of `ids`, special tokens included (`decode(encode(s, false)) == s`).
    pub fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        if let Some(&bad) = ids.iter().find(|&&id| id as usize >= self.vocab_size) {
            return Err(self.codec(
                "decode",
                format!("id {bad} is past the vocabulary of {}", self.vocab_size).into(),
            ));
        }
        self.inner
            .decode(ids, false)
            .map_err(|e| self.codec("decode", e))
    }

    fn codec(&self, what: &'static str, e: tokenizers::Error) -> TokenizerError {
        TokenizerError::Codec {
            path: self.source.clone(),
            what,
            cause: e.to_string(),
        }
    }

    pub fn bos(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos(&self) -> Option<u32> {
        self.eos
    }

    pub fn pad(&self) -> Option<u32> {
        self.pad
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// One more than the largest token id.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Checks the tokenizer against an embedding of `rows` rows: every id must have a row.
    /// More rows than tokens is accepted, since published models pad their embeddings
    /// (Qwen2.5 has 151,936 rows for 151,665 tokens).
    pub fn check_vocab(&self, rows: usize) -> Result<(), TokenizerError> {
        if self.vocab_size > rows {
            return Err(TokenizerError::VocabMismatch {
                path: self.source.clone(),
                tokens: self.vocab_size,
                rows,
            });
        }
        Ok(())
    }
}

/// A JSON file of a model folder, or `None` when the folder has none.
fn read_json(path: &Path) -> Result<Option<serde_json::Value>, TokenizerError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(TokenizerError::Load {
                path: path.into(),
                cause: e.to_string(),
            })
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| TokenizerError::Load {
            path: path.into(),
            cause: format!("not valid JSON: {e}"),
        })
}

/// A special token in tokenizer_config.json: a string, or an added-token object.
pub(crate) fn token_text(v: &serde_json::Value) -> Option<&str> {
    v.as_str()
        .or_else(|| v.get("content").and_then(|c| c.as_str()))
}
