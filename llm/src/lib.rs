//! chorus's language models on libtorch, offline.
//!
//! A model comes from a GGUF file (as llama.cpp publishes them, quantized or not) or a
//! Hugging Face directory (config.json + *.safetensors + tokenizer.json); either way it
//! becomes the same fp32 (or bf16 on CUDA) tch model of the `llama` or `qwen2` architecture,
//! a `tokenizers` tokenizer and a chat template rendered by minijinja.

pub mod chat;
pub mod config;
pub mod fetch;
pub mod generate;
pub mod gguf;
pub mod inspect;
pub mod lora;
pub mod model;
pub mod pretrained;
pub mod quant;
pub mod tokenizer;
pub mod weights;
