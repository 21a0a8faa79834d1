//! Generation: a loaded model, its tokenizer and chat template, and the KV cache of the last
//! conversation.
//!
//! [`Engine::complete`] renders the conversation with the model's template, tokenizes it, finds
//! the longest prefix it shares with what the KV cache already holds (an agent loop resends the
//! whole history every turn: only the new tail is fed), and samples until an end-of-turn token, a
//! stop sequence, the token limit or the context's end. Text streams out through a callback as
//! it is decoded. One engine serves one request at a time; [`SharedEngine`] is how a provider and
//! a server share it. This module knows nothing of tools, HTTP or the agent loop.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};

use crate::ModelError;
use crate::gguf::GgufFile;
use crate::template::{ChatMessage, ChatTemplate};
use crate::tokenizer::{ModelTokenizer, TextStream};
use crate::transformer::{ModelConfig, Transformer};

/// Tokens fed per forward pass while prefilling (bounds the scratch memory of one pass).
const PREFILL_CHUNK: usize = 256;

/// How to sample a reply.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationParams {
    /// Cap on generated tokens.
    pub max_tokens: usize,
    /// Sampling temperature; 0 (or `None`) is greedy decoding.
    pub temperature: Option<f64>,
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches `top_p`.
    pub top_p: Option<f64>,
    /// Keep only the `top_k` most likely tokens.
    pub top_k: Option<usize>,
    /// Seed of the sampler (sampling is deterministic for a given seed).
    pub seed: u64,
    /// Generation stops before any of these strings; they are not part of the reply.
    pub stop: Vec<String>,
    /// Penalty on tokens generated in the last [`REPEAT_WINDOW`] steps (1.0: none). Small models
    /// decoded greedily fall into loops without it.
    pub repeat_penalty: f32,
    /// Stop once the reply holds a complete fenced code block (an action of the text action
    /// format): what follows it would be discarded anyway.
    pub stop_after_fenced_block: bool,
}

/// How many recent tokens the repeat penalty looks at.
pub const REPEAT_WINDOW: usize = 64;

impl Default for GenerationParams {
    fn default() -> Self {
        Self {
            max_tokens: 512,
            temperature: None,
            top_p: None,
            top_k: None,
            seed: 299_792_458,
            stop: Vec::new(),
            repeat_penalty: 1.1,
            stop_after_fenced_block: false,
        }
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// An end-of-turn token or a stop sequence.
    Stop,
    /// The token limit or the end of the context.
    Length,
}

impl FinishReason {
    /// The OpenAI name: `stop` or `length`.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
        }
    }
}

/// The result of one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The reply, without the end-of-turn token or stop sequence.
    pub text: String,
    /// Why it ended.
    pub finish_reason: FinishReason,
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Prompt tokens whose keys and values were reused from the previous request.
    pub reused_tokens: usize,
    /// Tokens generated.
    pub completion_tokens: usize,
    /// Time to feed the new part of the prompt (to the first token's logits).
    pub prefill_time: Duration,
    /// Time spent generating after the first token.
    pub decode_time: Duration,
}

impl Generation {
    /// One line for a log: prompt tokens (cached and fed), generated tokens, and the prefill and
    /// decode rates.
    pub fn summary(&self) -> String {
        let rate = |tokens: usize, time: Duration| match time.as_secs_f64() {
            s if s > 0.0 => format!("{:.1} tok/s", tokens as f64 / s),
            _ => "-".to_string(),
        };
        let fed = self.prompt_tokens - self.reused_tokens.min(self.prompt_tokens);
        format!(
            "{} prompt tokens ({} cached), prefill {fed} in {:.2}s ({}), decode {} in {:.2}s ({}), finish {}",
            self.prompt_tokens,
            self.reused_tokens,
            self.prefill_time.as_secs_f64(),
            rate(fed, self.prefill_time),
            self.completion_tokens,
            self.decode_time.as_secs_f64(),
            rate(self.completion_tokens.saturating_sub(1), self.decode_time),
            self.finish_reason.as_str()
        )
    }
}

/// A model ready to generate.
pub struct Engine {
    name: String,
    model: Transformer,
    tokenizer: ModelTokenizer,
    template: ChatTemplate,
    /// Tokens whose keys and values are in the model's cache, in order.
    cached: Vec<u32>,
    /// Largest context used (the model's, capped so the KV cache stays small).
    context: usize,
    load_time: Duration,
    threads: usize,
    pool: Option<rayon::ThreadPool>,
}

/// An engine shared between callers (one generation at a time).
pub type SharedEngine = Arc<Mutex<Engine>>;

/// Default cap on the context: enough for an agent loop, bounded KV memory for big models.
pub const DEFAULT_MAX_CONTEXT: usize = 16_384;

impl Engine {
    /// Loads the GGUF model at `path`, with `threads` compute threads (0: all cores) for candle's
    /// rayon-based kernels. rigor's own kernels and attention run on candle's barrier pool, which
    /// is sized once per process from `CANDLE_NUM_THREADS` (all cores by default); see
    /// [`Engine::threads`].
    pub fn load(path: &Path, threads: usize) -> Result<Self, ModelError> {
        let started = Instant::now();
        let mut gguf = GgufFile::open(path)?;
        let tokenizer = ModelTokenizer::from_gguf(&gguf)?;
        let template = ChatTemplate::from_gguf(&gguf, &tokenizer.bos_token, &tokenizer.eos_token)?;
        let model = Transformer::load(&mut gguf)?;
        let name = gguf.name().unwrap_or_else(|| {
            path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into())
        });
        let pool = if threads > 0 {
            Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .map_err(|e| ModelError::Inference(format!("cannot start {threads} threads: {e}")))?,
            )
        } else {
            None
        };
        let context = model.config().context_length.min(DEFAULT_MAX_CONTEXT);
        Ok(Self {
            name,
            model,
            tokenizer,
            template,
            cached: Vec::new(),
            context,
            load_time: started.elapsed(),
            threads: candle_core::utils::barrier_pool().n_workers() + 1,
            pool,
        })
    }

    /// Wraps the engine for sharing.
    pub fn shared(self) -> SharedEngine {
        Arc::new(Mutex::new(self))
    }

    /// The model's name from its metadata (`general.name`) or file name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The context length in tokens.
    pub fn context_length(&self) -> usize {
        self.context
    }

    /// Caps the context (at most the model's own).
    pub fn set_context_length(&mut self, tokens: usize) {
        self.context = tokens.clamp(1, self.model.config().context_length);
    }

    /// The model's shape.
    pub fn config(&self) -> &ModelConfig {
        self.model.config()
    }

    /// Time it took to load.
    pub fn load_time(&self) -> Duration {
        self.load_time
    }

    /// Threads of the pool that runs the matmuls and attention (the calling thread included).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &ModelTokenizer {
        &self.tokenizer
    }

    /// The conversation rendered with the model's chat template, ready for the reply.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String, ModelError> {
        self.template.render(messages, true)
    }

    /// The prompt tokens of `messages`.
    pub fn prompt_tokens(&self, messages: &[ChatMessage]) -> Result<Vec<u32>, ModelError> {
        let mut tokens: Vec<u32> = self.tokenizer.add_bos.into_iter().collect();
        let text = self.render(messages)?;
        let encoded = self.tokenizer.encode(&text)?;
        if !tokens.is_empty() && encoded.first() == tokens.first() {
            tokens.clear();
        }
        tokens.extend(encoded);
        Ok(tokens)
    }

    /// Drops the KV cache, so the next request is fed from scratch.
    pub fn reset(&mut self) {
        self.model.truncate(0);
        self.cached.clear();
    }

    /// Generates the assistant's reply to `messages`, calling `on_text` with each new piece.
    pub fn complete(
        &mut self,
        messages: &[ChatMessage],
        params: &GenerationParams,
        on_text: &mut (dyn FnMut(&str) + Send),
        cancel: &AtomicBool,
    ) -> Result<Generation, ModelError> {
        self.complete_with_prefill(messages, params, on_text, &mut |_, _| {}, cancel)
    }

    /// [`Engine::complete`], calling `on_prefill(processed, total)` after each chunk of the
    /// prompt's new tokens is processed (`total`: the tokens not reused from the cache), so a
    /// front end can show the progress of a long first turn.
    pub fn complete_with_prefill(
        &mut self,
        messages: &[ChatMessage],
        params: &GenerationParams,
        on_text: &mut (dyn FnMut(&str) + Send),
        on_prefill: &mut (dyn FnMut(usize, usize) + Send),
        cancel: &AtomicBool,
    ) -> Result<Generation, ModelError> {
        let prompt = self.prompt_tokens(messages)?;
        self.generate_observed(&prompt, params, on_text, on_prefill, cancel)
    }

    /// Generates from prompt tokens, reusing the cached prefix.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        params: &GenerationParams,
        on_text: &mut (dyn FnMut(&str) + Send),
        cancel: &AtomicBool,
    ) -> Result<Generation, ModelError> {
        self.generate_observed(prompt, params, on_text, &mut |_, _| {}, cancel)
    }

    fn generate_observed(
        &mut self,
        prompt: &[u32],
        params: &GenerationParams,
        on_text: &mut (dyn FnMut(&str) + Send),
        on_prefill: &mut (dyn FnMut(usize, usize) + Send),
        cancel: &AtomicBool,
    ) -> Result<Generation, ModelError> {
        match self.pool.take() {
            Some(pool) => {
                let result = pool.install(|| self.generate_inner(prompt, params, on_text, on_prefill, cancel));
                self.pool = Some(pool);
                result
            }
            None => self.generate_inner(prompt, params, on_text, on_prefill, cancel),
        }
    }

    fn generate_inner(
        &mut self,
        prompt: &[u32],
        params: &GenerationParams,
        on_text: &mut (dyn FnMut(&str) + Send),
        on_prefill: &mut (dyn FnMut(usize, usize) + Send),
        cancel: &AtomicBool,
    ) -> Result<Generation, ModelError> {
        if prompt.is_empty() {
            return Err(ModelError::Inference("the prompt is empty".into()));
        }
        if prompt.len() >= self.context {
            return Err(ModelError::ContextOverflow { prompt_tokens: prompt.len(), context: self.context });
        }
        let started = Instant::now();
        // Reuse the longest common prefix, but always feed at least one token to get logits.
        let common = self.cached.iter().zip(prompt).take_while(|(a, b)| a == b).count().min(prompt.len() - 1);
        self.model.truncate(common);
        self.cached.truncate(common);
        let mut logits = Vec::new();
        for chunk in prompt[common..].chunks(PREFILL_CHUNK) {
            // A cancelled request keeps the prefix it computed (the cache holds exactly the
            // tokens fed so far), so a retry of the same prompt continues from there.
            if cancel.load(Ordering::Relaxed) {
                return Err(ModelError::Cancelled);
            }
            logits = match self.model.forward(chunk) {
                Ok(logits) => logits,
                Err(err) => {
                    self.reset();
                    return Err(err);
                }
            };
            self.cached.extend_from_slice(chunk);
            on_prefill(self.cached.len() - common, prompt.len() - common);
        }
        let prefill_time = started.elapsed();
        let decode_started = Instant::now();

        let sampling = match (params.temperature.filter(|t| *t > 0.0), params.top_k, params.top_p) {
            (None, _, _) => Sampling::ArgMax,
            (Some(temperature), None, None) => Sampling::All { temperature },
            (Some(temperature), Some(k), None) => Sampling::TopK { k, temperature },
            (Some(temperature), None, Some(p)) => Sampling::TopP { p, temperature },
            (Some(temperature), Some(k), Some(p)) => Sampling::TopKThenTopP { k, p, temperature },
        };
        let mut sampler = LogitsProcessor::from_sampling(params.seed, sampling);
        let mut stream = TextStream::new();
        let mut pending = String::new();
        let mut text = String::new();
        let mut generated = 0;
        let mut recent: Vec<u32> = Vec::new();
        let finish_reason = loop {
            if cancel.load(Ordering::Relaxed) {
                return Err(ModelError::Cancelled);
            }
            if params.repeat_penalty != 1.0 {
                apply_repeat_penalty(&mut logits, params.repeat_penalty, &recent);
            }
            let logits_tensor = Tensor::from_slice(&logits, logits.len(), &Device::Cpu)?;
            let next = sampler.sample(&logits_tensor)?;
            generated += 1;
            recent.push(next);
            if recent.len() > REPEAT_WINDOW {
                recent.remove(0);
            }
            if self.tokenizer.stop_ids.contains(&next) {
                break FinishReason::Stop;
            }
            pending.push_str(&stream.push(&self.tokenizer, next)?);
            if let Some(at) = params.stop.iter().filter_map(|s| pending.find(s.as_str())).min() {
                pending.truncate(at);
                text.push_str(&pending);
                on_text(&pending);
                pending.clear();
                break FinishReason::Stop;
            }
            // Emit all but what could still become a stop sequence.
            let keep = params.stop.iter().map(|s| partial_suffix(&pending, s)).max().unwrap_or(0);
            let emit_to = pending.len() - keep;
            if emit_to > 0 {
                let chunk: String = pending.drain(..emit_to).collect();
                text.push_str(&chunk);
                on_text(&chunk);
            }
            if params.stop_after_fenced_block && rigor_llm::text_actions::has_closed_block(&text) {
                break FinishReason::Stop;
            }
            if generated >= params.max_tokens || self.cached.len() + 1 >= self.context {
                break FinishReason::Length;
            }
            match self.model.forward(&[next]) {
                Ok(l) => logits = l,
                Err(err) => {
                    self.reset();
                    return Err(err);
                }
            }
            self.cached.push(next);
        };
        if !pending.is_empty() {
            text.push_str(&pending);
            on_text(&pending);
        }
        Ok(Generation {
            text,
            finish_reason,
            prompt_tokens: prompt.len(),
            reused_tokens: common,
            completion_tokens: generated,
            prefill_time,
            decode_time: decode_started.elapsed(),
        })
    }
}

/// llama.cpp's repeat penalty: logits of recent tokens are divided by `penalty` when positive
/// and multiplied when negative (each token once).
fn apply_repeat_penalty(logits: &mut [f32], penalty: f32, recent: &[u32]) {
    let mut seen = std::collections::HashSet::new();
    for &token in recent {
        if seen.insert(token)
            && let Some(l) = logits.get_mut(token as usize)
        {
            *l = if *l >= 0.0 { *l / penalty } else { *l * penalty };
        }
    }
}

/// Length of the longest suffix of `text` that is a proper prefix of `stop` (on char boundaries).
fn partial_suffix(text: &str, stop: &str) -> usize {
    (1..stop.len().min(text.len() + 1))
        .rev()
        .find(|&n| text.is_char_boundary(text.len() - n) && stop.is_char_boundary(n) && text.ends_with(&stop[..n]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_stop_suffixes_are_held_back() {
        assert_eq!(partial_suffix("hello ``", "```"), 2);
        assert_eq!(partial_suffix("hello", "```"), 0);
        assert_eq!(partial_suffix("ab", "abc"), 2);
        assert_eq!(partial_suffix("", "abc"), 0);
        assert_eq!(partial_suffix("é", "éa"), 2);
    }

    #[test]
    fn the_repeat_penalty_lowers_recent_tokens_once() {
        let mut logits = vec![2.0, -2.0, 1.0];
        apply_repeat_penalty(&mut logits, 2.0, &[0, 0, 1]);
        assert_eq!(logits, vec![1.0, -4.0, 1.0]);
    }
}
