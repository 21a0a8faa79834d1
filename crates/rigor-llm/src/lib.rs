//! Model providers for rigor.
//!
//! A [`Provider`] takes a conversation and the tools on offer and returns the model's next
//! message, streaming text as it arrives. Two wire formats are implemented over HTTP with
//! server-sent events: OpenAI-compatible Chat Completions (OpenAI, vLLM, llama.cpp, Ollama,
//! OpenRouter, rigor's own model server) and Anthropic Messages. Both retry 429/5xx, connect
//! errors, timeouts and cut streams with exponential backoff that honours `Retry-After`.
//!
//! Models without native function calling are driven through [`text_actions::TextActions`], a
//! decorator that describes the tools in the prompt and parses fenced blocks back into calls.
//!
//! This crate knows nothing about the agent loop, tools' behaviour, or the file system.

pub mod anthropic;
mod http;
pub mod openai;
pub mod pricing;
pub mod retry;
mod sse;
pub mod text_actions;

use std::time::Duration;

use async_trait::async_trait;
use rigor_protocol::{FinishReason, Message, ToolSpec, Usage};
use serde::{Deserialize, Serialize};

pub use pricing::Pricing;
pub use retry::RetryPolicy;

/// One request to a model.
#[derive(Debug, Clone, Default)]
pub struct ChatRequest {
    /// The conversation so far, system message first.
    pub messages: Vec<Message>,
    /// Tools the model may call.
    pub tools: Vec<ToolSpec>,
    /// Cap on generated tokens.
    pub max_output_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
}

/// The model's answer to a [`ChatRequest`].
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    /// The assembled assistant message (text and tool calls).
    pub message: Message,
    /// Tokens used by this call.
    pub usage: Usage,
    /// Cost of this call in USD (0 when the price is unknown).
    pub cost_usd: f64,
    /// Why the model stopped, normalised across providers.
    pub finish_reason: FinishReason,
}

/// Progress reported while a call is under way.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A chunk of assistant text.
    Text(String),
    /// Prompt processing before the first token: `processed` of `total` new prompt tokens
    /// (those not reused from a cache), after `elapsed`. Reported by local models, whose first
    /// turn can take minutes on a CPU.
    Prefill {
        /// New prompt tokens processed so far.
        processed: u64,
        /// New prompt tokens of this request.
        total: u64,
        /// Time since prompt processing began.
        elapsed: Duration,
    },
    /// An attempt failed and the call will be retried after `wait`.
    Retry {
        /// The attempt that failed, 1-based.
        attempt: u32,
        /// Backoff before the next attempt.
        wait: Duration,
        /// What went wrong.
        reason: String,
    },
}

/// Receives [`StreamEvent`]s during a call.
pub type StreamSink<'a> = &'a (dyn Fn(StreamEvent) + Send + Sync);

/// Why a call failed for good.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider kept failing with retryable errors.
    #[error("{provider}: gave up after {attempts} attempts; last error: {last}")]
    RetriesExhausted {
        /// Provider and model.
        provider: String,
        /// Attempts made.
        attempts: u32,
        /// The last error.
        last: String,
    },
    /// The provider refused the request in a way retrying cannot fix (400, 401, 404, ...).
    #[error("{provider}: HTTP {status}: {body}")]
    Rejected {
        /// Provider and model.
        provider: String,
        /// HTTP status.
        status: u16,
        /// Response body (truncated).
        body: String,
    },
    /// The configuration is unusable (missing key, bad URL).
    #[error("{0}")]
    Config(String),
    /// The response could not be understood.
    #[error("{provider}: malformed response: {detail}")]
    Malformed {
        /// Provider and model.
        provider: String,
        /// What was wrong.
        detail: String,
    },
}

/// A chat model.
#[async_trait]
pub trait Provider: Send + Sync {
    /// `provider:model`, as the user named it.
    fn id(&self) -> String;

    /// The model's context window in tokens.
    fn context_window(&self) -> u64;

    /// Sends one request, streaming progress to `sink`, and returns the complete answer.
    async fn chat(&self, request: &ChatRequest, sink: StreamSink<'_>) -> Result<ChatResponse, ProviderError>;

    /// A reminder of how to call a tool, added when the model replied without calling one
    /// (text-action providers show the fenced-block format; native tool calling needs none).
    fn action_hint(&self) -> Option<String> {
        None
    }
}

/// Which wire format a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenAI-compatible `/chat/completions`.
    OpenAi,
    /// Anthropic `/v1/messages`.
    Anthropic,
}

/// Everything needed to build a provider.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// The name the user gave the provider (`openai`, `anthropic`, or a config entry).
    pub name: String,
    /// Wire format.
    pub kind: ProviderKind,
    /// Base URL, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    /// API key, if the endpoint needs one.
    pub api_key: Option<String>,
    /// Model name sent to the endpoint.
    pub model: String,
    /// Context window in tokens.
    pub context_window: u64,
    /// Prices; `None` when unknown (cost is then reported as 0).
    pub pricing: Option<Pricing>,
    /// Drive the model with the text action format instead of native tool calls.
    pub text_actions: bool,
    /// Retry behaviour.
    pub retry: RetryPolicy,
    /// Timeout of one HTTP attempt (connect plus the whole streamed body).
    pub request_timeout: Duration,
}

/// Builds the provider `config` describes, wrapped in [`text_actions::TextActions`] when asked.
pub fn build_provider(config: ProviderConfig) -> Result<Box<dyn Provider>, ProviderError> {
    let text_actions = config.text_actions;
    let inner: Box<dyn Provider> = match config.kind {
        ProviderKind::OpenAi => Box::new(openai::OpenAiProvider::new(config)?),
        ProviderKind::Anthropic => Box::new(anthropic::AnthropicProvider::new(config)?),
    };
    Ok(if text_actions { Box::new(text_actions::TextActions::new(inner)) } else { inner })
}
