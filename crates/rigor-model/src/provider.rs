//! [`EmbeddedProvider`]: the embedded model behind rigor's `Provider` trait.
//!
//! Generation runs on a blocking thread (it is CPU-bound); text streams back to the caller's
//! sink as it is decoded, and dropping the future (Ctrl-C, a budget's deadline) cancels the
//! generation between two tokens. The KV cache persists between calls, so the turns of an agent
//! loop pay only for what is new since the last one.
//!
//! Tools: small local models do better with a fenced-block action format than with native
//! tool-call tags, so [`build`] wraps the provider in `rigor_llm::text_actions::TextActions`,
//! which describes the tools in the system prompt and parses the reply back into a call; a reply
//! without a valid call reaches the agent loop as text, and the loop asks again. No second parser
//! lives here.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use rigor_llm::text_actions::TextActions;
use rigor_llm::{ChatRequest, ChatResponse, Provider, ProviderError, StreamEvent, StreamSink};
use rigor_protocol::{Message, Role, Usage};

use crate::engine::{Engine, GenerationParams, SharedEngine};
use crate::template::ChatMessage;
use crate::{ModelError, acquire};

/// Cap on generated tokens per turn when the request sets none.
pub const DEFAULT_MAX_OUTPUT_TOKENS: usize = 384;

/// Small models tend to invent the observation of the action they just wrote: stop there.
const INVENTED_OBSERVATION: &str = rigor_llm::text_actions::OBSERVATION_PREFIX;

/// The embedded model as a [`Provider`] (plain text; see [`build`] for tools).
pub struct EmbeddedProvider {
    engine: SharedEngine,
    id: String,
    context_window: u64,
}

impl EmbeddedProvider {
    /// A provider over an already loaded engine; `id` is how it is named (`local:smollm2`).
    pub fn new(engine: SharedEngine, id: impl Into<String>) -> Self {
        let context_window = engine.lock().map(|e| e.context_length() as u64).unwrap_or(2048);
        Self { engine, id: id.into(), context_window }
    }

    /// Loads the model `spec` names (a catalogue name such as `smollm2`, or a GGUF path).
    pub fn load(spec: &str) -> Result<Self, ModelError> {
        let path = acquire::resolve_model(spec)?;
        let engine = Engine::load(&path, 0)?;
        Ok(Self::new(engine.shared(), format!("local:{spec}")))
    }

    /// The shared engine.
    pub fn engine(&self) -> SharedEngine {
        self.engine.clone()
    }
}

/// Loads `spec` and returns a provider that drives it through the text action format.
pub fn build(spec: &str) -> Result<Box<dyn Provider>, ModelError> {
    Ok(Box::new(TextActions::new(Box::new(EmbeddedProvider::load(spec)?))))
}

/// rigor messages as chat-template messages (tool results, should any reach here, become user
/// turns; tool calls are rendered by `TextActions` before they get here).
pub fn chat_messages(messages: &[Message]) -> Vec<ChatMessage> {
    let mut out: Vec<ChatMessage> = Vec::new();
    for message in messages {
        let (role, content) = match message.role {
            Role::System => ("system", message.content.clone()),
            Role::User => ("user", message.content.clone()),
            Role::Assistant => ("assistant", message.content.clone()),
            Role::Tool => ("user", format!("Observation:\n{}", message.content)),
        };
        match out.last_mut() {
            Some(last) if last.role == role && role == "user" => {
                last.content.push_str("\n\n");
                last.content.push_str(&content);
            }
            _ => out.push(ChatMessage::new(role, content)),
        }
    }
    out
}

/// Sets the flag when dropped: the generation thread checks it between tokens.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[async_trait]
impl Provider for EmbeddedProvider {
    fn id(&self) -> String {
        self.id.clone()
    }

    fn context_window(&self) -> u64 {
        self.context_window
    }

    async fn chat(&self, request: &ChatRequest, sink: StreamSink<'_>) -> Result<ChatResponse, ProviderError> {
        let messages = chat_messages(&request.messages);
        let params = GenerationParams {
            max_tokens: request.max_output_tokens.map_or(DEFAULT_MAX_OUTPUT_TOKENS, |n| n as usize),
            temperature: request.temperature.map(f64::from),
            stop: vec![INVENTED_OBSERVATION.to_string()],
            stop_after_fenced_block: true,
            ..GenerationParams::default()
        };
        let cancel = Arc::new(AtomicBool::new(false));
        let _guard = CancelOnDrop(cancel.clone());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<StreamEvent>();
        let engine = self.engine.clone();
        let worker = tokio::task::spawn_blocking(move || {
            let mut engine = engine.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let started = std::time::Instant::now();
            let progress = tx.clone();
            let mut on_prefill = move |processed: usize, total: usize| {
                let (processed, total) = (processed as u64, total as u64);
                drop(progress.send(StreamEvent::Prefill { processed, total, elapsed: started.elapsed() }))
            };
            let mut on_text = |text: &str| drop(tx.send(StreamEvent::Text(text.to_string())));
            engine.complete_with_prefill(&messages, &params, &mut on_text, &mut on_prefill, &cancel)
        });
        while let Some(event) = rx.recv().await {
            sink(event);
        }
        let generation = worker
            .await
            .map_err(|e| ProviderError::Malformed { provider: self.id(), detail: format!("generation thread: {e}") })?
            .map_err(|e| match e {
                ModelError::ContextOverflow { .. } | ModelError::Template(_) => {
                    ProviderError::Rejected { provider: self.id(), status: 400, body: e.to_string() }
                }
                other => ProviderError::Malformed { provider: self.id(), detail: other.to_string() },
            })?;
        Ok(ChatResponse {
            message: Message::assistant(generation.text, Vec::new()),
            usage: Usage {
                input_tokens: generation.prompt_tokens as u64,
                output_tokens: generation.completion_tokens as u64,
                cached_input_tokens: generation.reused_tokens as u64,
            },
            cost_usd: 0.0,
            finish_reason: generation.finish_reason.as_str().into(),
        })
    }
}
