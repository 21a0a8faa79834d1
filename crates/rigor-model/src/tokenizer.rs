//! The tokenizer, rebuilt from a GGUF file's own vocabulary, merges and token types.
//!
//! candle's `TokenizerFromGguf` builds the byte-level BPE model and marks special tokens, but it
//! maps `tokenizer.ggml.pre` values it does not know (SmolLM's `smollm`, plain `gpt2`, ...) to a
//! GPT-2 pre-tokenizer that adds a leading space, which produces ids the model never saw in
//! training. [`ModelTokenizer::from_gguf`] replaces the pre-tokenizer with the model's real one
//! (for `smollm`: digits split one by one, then byte-level without a prefix space). This module
//! does not render chat templates ([`crate::template`]) or decide when to stop generating.

use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{Tokenizer, decoders::DecoderWrapper};

use crate::ModelError;
use crate::gguf::{GgufFile, as_u64};

/// Token strings that end an assistant turn in common chat formats. Those present in the
/// vocabulary stop generation, besides `tokenizer.ggml.eos_token_id`.
const END_OF_TURN: &[&str] =
    &["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "</s>", "<|end_of_text|>"];

/// A tokenizer with the special tokens a chat needs.
pub struct ModelTokenizer {
    inner: Tokenizer,
    /// Token ids that end generation.
    pub stop_ids: Vec<u32>,
    /// The beginning-of-sequence token's text, for templates.
    pub bos_token: String,
    /// The end-of-sequence token's text, for templates.
    pub eos_token: String,
    /// Whether the model expects a BOS token before the rendered prompt.
    pub add_bos: Option<u32>,
}

impl ModelTokenizer {
    /// Builds the tokenizer described by the metadata of `gguf`.
    pub fn from_gguf(gguf: &GgufFile) -> Result<Self, ModelError> {
        let mut inner = Tokenizer::from_gguf(gguf.content())
            .map_err(|e| ModelError::Tokenizer(format!("{}: tokenizer: {e}", gguf.path().display())))?;
        let pre = gguf.string("tokenizer.ggml.pre").unwrap_or_else(|_| "gpt2".into());
        if let Some(pre_tokenizer) = pre_tokenizer(&pre) {
            inner.with_pre_tokenizer(Some(pre_tokenizer));
            inner.with_decoder(Some(DecoderWrapper::ByteLevel(ByteLevel::new(false, true, false))));
        }
        let tokens: Vec<String> = match gguf.value("tokenizer.ggml.tokens")? {
            Value::Array(values) => values.iter().map(|v| v.to_string().cloned().unwrap_or_default()).collect(),
            _ => return Err(ModelError::Tokenizer("tokenizer.ggml.tokens is not an array".into())),
        };
        let id_of = |key: &str| gguf.value(key).ok().and_then(as_u64).map(|v| v as u32);
        let text_of = |id: Option<u32>| id.and_then(|id| tokens.get(id as usize)).cloned().unwrap_or_default();
        let eos = id_of("tokenizer.ggml.eos_token_id");
        let bos = id_of("tokenizer.ggml.bos_token_id");
        let mut stop_ids: Vec<u32> = eos.into_iter().collect();
        let template = gguf.string("tokenizer.chat_template").unwrap_or_default();
        for (id, token) in tokens.iter().enumerate() {
            let in_template = template.is_empty() || template.contains(token.as_str());
            if END_OF_TURN.contains(&token.as_str()) && in_template && !stop_ids.contains(&(id as u32)) {
                stop_ids.push(id as u32);
            }
        }
        let add_bos = gguf.value("tokenizer.ggml.add_bos_token").ok().and_then(|v| v.to_bool().ok()).unwrap_or(false);
        Ok(Self {
            inner,
            stop_ids,
            bos_token: text_of(bos),
            eos_token: text_of(eos),
            add_bos: if add_bos { bos } else { None },
        })
    }

    /// Token ids of `text`; special tokens written in the text (`<|im_start|>`) are recognised.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let encoding = self.inner.encode(text, false).map_err(|e| ModelError::Tokenizer(format!("encode: {e}")))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// The text of `ids`, special tokens left out.
    pub fn decode(&self, ids: &[u32]) -> Result<String, ModelError> {
        self.inner.decode(ids, true).map_err(|e| ModelError::Tokenizer(format!("decode: {e}")))
    }

    /// Number of tokens in the vocabulary, special ones included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}

/// The pre-tokenizer of a `tokenizer.ggml.pre` value candle gets wrong, `None` where candle's own
/// is right (`qwen2`, `llama3`, `smaug-bpe`, `lfm2`).
fn pre_tokenizer(pre: &str) -> Option<PreTokenizerWrapper> {
    let byte_level = || PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true));
    match pre {
        "qwen2" | "llama3" | "llama-bpe" | "smaug-bpe" | "lfm2" => None,
        // SmolLM / StarCoder style: every digit is its own token.
        "smollm" | "starcoder" | "refact" => Some(PreTokenizerWrapper::Sequence(Sequence::new(vec![
            PreTokenizerWrapper::Digits(Digits::new(true)),
            byte_level(),
        ]))),
        // GPT-2 and unknown byte-level BPEs: GPT-2's regex (`use_regex`), no prefix space.
        _ => Some(byte_level()),
    }
}

/// Turns generated token ids into text chunks as they come, holding back incomplete UTF-8.
#[derive(Default)]
pub struct TextStream {
    ids: Vec<u32>,
    prev: usize,
    current: usize,
}

impl TextStream {
    /// An empty stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a token and returns the new text it completes (possibly empty).
    pub fn push(&mut self, tokenizer: &ModelTokenizer, id: u32) -> Result<String, ModelError> {
        let before = tokenizer.decode(&self.ids[self.prev..self.current])?;
        self.ids.push(id);
        let now = tokenizer.decode(&self.ids[self.prev..])?;
        if now.len() > before.len() && !now.ends_with('\u{FFFD}') && now.is_char_boundary(before.len()) {
            let new = now[before.len()..].to_string();
            self.prev = self.current;
            self.current = self.ids.len();
            Ok(new)
        } else {
            Ok(String::new())
        }
    }

    /// The whole text of the tokens pushed so far.
    pub fn text(&self, tokenizer: &ModelTokenizer) -> Result<String, ModelError> {
        tokenizer.decode(&self.ids)
    }
}
