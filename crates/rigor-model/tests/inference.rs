//! Real inference on SmolLM2-135M-Instruct (Q4_1), fetched through the same acquisition code as
//! `rigor model fetch smollm2` when it is not in the cache yet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Mutex, OnceLock};

use rigor_model::acquire::{fetch, find_known};
use rigor_model::template::ChatMessage;
use rigor_model::{Engine, FinishReason, GenerationParams, ModelError};

fn model_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| fetch(find_known("smollm2").unwrap(), &|_| {}).expect("fetch smollm2")).clone()
}

/// One engine for the whole test binary (loading is cheap, but tests run in parallel).
fn engine() -> std::sync::MutexGuard<'static, Engine> {
    static ENGINE: OnceLock<Mutex<Engine>> = OnceLock::new();
    ENGINE.get_or_init(|| Mutex::new(Engine::load(&model_path(), 0).unwrap())).lock().unwrap_or_else(|e| e.into_inner())
}

fn chat(user: &str) -> Vec<ChatMessage> {
    vec![ChatMessage::new("system", "You are a concise assistant."), ChatMessage::new("user", user)]
}

fn greedy(max_tokens: usize) -> GenerationParams {
    GenerationParams { max_tokens, ..GenerationParams::default() }
}

#[test]
fn the_tokenizer_matches_smollm2s_own() {
    let engine = engine();
    let tok = engine.tokenizer();
    assert_eq!(tok.encode("<|im_start|>system\n").unwrap(), vec![1, 9690, 198]);
    // Digits are split one by one; no leading space is added.
    let ids = tok.encode("x = 123").unwrap();
    assert_eq!(ids.len(), 6, "{ids:?}");
    assert_eq!(tok.decode(&ids).unwrap(), "x = 123");
    assert!(tok.stop_ids.contains(&2), "<|im_end|> ends a turn: {:?}", tok.stop_ids);
    // Whitespace runs split as GPT-2's regex splits them (a run before a word leaves its last
    // space to the word; blank lines are single newlines): the ids llama.cpp gives this GGUF.
    let code = "def parse(text):\n\n    \"\"\"Parse 12s.\"\"\"\n        if not text:\n            return None\n";
    let llama_cpp = [
        1604, 12865, 24, 2692, 727, 1004, 1620, 39538, 216, 33, 34, 99, 7996, 448, 585, 441, 1694, 42, 629, 1003, 1943,
        198,
    ];
    assert_eq!(tok.encode(code).unwrap(), llama_cpp);
}

#[test]
fn the_chat_template_comes_from_the_gguf() {
    let engine = engine();
    let prompt = engine.render(&chat("Hi")).unwrap();
    assert_eq!(
        prompt,
        "<|im_start|>system\nYou are a concise assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn greedy_decoding_is_deterministic_and_prefix_reuse_changes_nothing() {
    let mut engine = engine();
    let never = AtomicBool::new(false);
    let messages = chat("Name three colours.");
    engine.reset();
    let first = engine.complete(&messages, &greedy(24), &mut |_| {}, &never).unwrap();
    assert_eq!(first.reused_tokens, 0);
    // Same conversation again: all but the last prompt token come from the KV cache.
    let second = engine.complete(&messages, &greedy(24), &mut |_| {}, &never).unwrap();
    assert_eq!(second.reused_tokens, second.prompt_tokens - 1);
    engine.reset();
    let third = engine.complete(&messages, &greedy(24), &mut |_| {}, &never).unwrap();
    assert!(!first.text.is_empty());
    assert_eq!(first.text, second.text);
    assert_eq!(first.text, third.text);
}

#[test]
fn logits_do_not_depend_on_how_the_tokens_were_batched() {
    // The property behind exact KV-prefix reuse: a token's logits are bit-identical whether it
    // came in one prompt batch, in smaller batches, or one at a time.
    let mut model =
        rigor_model::transformer::Transformer::load(&mut rigor_model::gguf::GgufFile::open(&model_path()).unwrap())
            .unwrap();
    let tokens: Vec<u32> = (0..40).map(|i| 100 + i * 37).collect();
    common::assert_batching_changes_no_logit(&mut model, &tokens, &[1, 5, 20, 39], (20, 20));
}

#[test]
fn a_follow_up_turn_reuses_the_shared_prefix() {
    let mut engine = engine();
    let never = AtomicBool::new(false);
    let mut messages = chat("What is the capital of France?");
    let answer = engine.complete(&messages, &greedy(32), &mut |_| {}, &never).unwrap();
    messages.push(ChatMessage::new("assistant", answer.text.clone()));
    messages.push(ChatMessage::new("user", "And of Italy?"));
    let follow_up = engine.complete(&messages, &greedy(32), &mut |_| {}, &never).unwrap();
    assert!(follow_up.reused_tokens >= answer.prompt_tokens, "{follow_up:?} after {answer:?}");
    // The same answer as from a cold cache.
    engine.reset();
    let cold = engine.complete(&messages, &greedy(32), &mut |_| {}, &never).unwrap();
    assert_eq!(cold.reused_tokens, 0);
    assert_eq!(cold.text, follow_up.text);
}

#[test]
fn generation_stops_at_the_end_of_turn_token_and_streams_the_same_text() {
    let mut engine = engine();
    let mut streamed = String::new();
    let generation = engine
        .complete(
            &chat("What is the capital of France?"),
            &greedy(200),
            &mut |t| streamed.push_str(t),
            &AtomicBool::new(false),
        )
        .unwrap();
    assert_eq!(generation.finish_reason, FinishReason::Stop, "{generation:?}");
    assert!(generation.completion_tokens < 200);
    assert!(generation.text.contains("Paris"), "{}", generation.text);
    assert!(!generation.text.contains("<|im_end|>"));
    assert_eq!(streamed, generation.text);
}

#[test]
fn max_tokens_and_stop_sequences_end_generation() {
    let mut engine = engine();
    let never = AtomicBool::new(false);
    let short = engine.complete(&chat("Count from 1 to 50."), &greedy(5), &mut |_| {}, &never).unwrap();
    assert_eq!((short.finish_reason, short.completion_tokens), (FinishReason::Length, 5));
    let full = engine.complete(&chat("Count from 1 to 20."), &greedy(40), &mut |_| {}, &never).unwrap();
    let word = full.text.split_whitespace().nth(3).unwrap().to_string();
    let params = GenerationParams { stop: vec![word.clone()], ..greedy(40) };
    let stopped = engine.complete(&chat("Count from 1 to 20."), &params, &mut |_| {}, &never).unwrap();
    assert_eq!(stopped.finish_reason, FinishReason::Stop);
    assert!(!stopped.text.contains(&word) && full.text.starts_with(&stopped.text), "{stopped:?} vs {full:?}");
}

#[test]
fn sampling_with_a_seed_is_reproducible() {
    let mut engine = engine();
    let never = AtomicBool::new(false);
    let params = GenerationParams { temperature: Some(0.8), top_p: Some(0.9), top_k: Some(40), seed: 7, ..greedy(16) };
    let a = engine.complete(&chat("Write a word."), &params, &mut |_| {}, &never).unwrap();
    let b = engine.complete(&chat("Write a word."), &params, &mut |_| {}, &never).unwrap();
    assert_eq!(a.text, b.text);
}

#[test]
fn an_over_long_prompt_is_refused_naming_both_lengths() {
    let mut engine = engine();
    let saved = engine.context_length();
    engine.set_context_length(64);
    let long = "word ".repeat(200);
    let err = engine.complete(&chat(&long), &greedy(4), &mut |_| {}, &AtomicBool::new(false)).unwrap_err();
    engine.set_context_length(saved);
    match &err {
        ModelError::ContextOverflow { prompt_tokens, context } => assert!(*prompt_tokens > 200 && *context == 64),
        other => panic!("{other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("64") && message.contains("tokens"), "{message}");
    // The engine still works afterwards.
    assert!(engine.complete(&chat("Hi"), &greedy(2), &mut |_| {}, &AtomicBool::new(false)).is_ok());
}

#[test]
fn cancelling_stops_generation() {
    let mut engine = engine();
    let cancel = AtomicBool::new(true);
    let err = engine.complete(&chat("Hi"), &greedy(8), &mut |_| {}, &cancel).unwrap_err();
    assert!(matches!(err, ModelError::Cancelled));
}

#[test]
fn a_cancelled_request_keeps_its_prefix_for_the_retry() {
    let mut engine = engine();
    let messages = chat("Write a short poem about the sea, with a title.");
    let cancel = AtomicBool::new(false);
    let err = engine
        .complete(&messages, &greedy(32), &mut |_| cancel.store(true, std::sync::atomic::Ordering::Relaxed), &cancel)
        .unwrap_err();
    assert!(matches!(err, ModelError::Cancelled), "{err:?}");
    // The retry (the same prompt, as a client's retry sends it) prefills only its last token.
    let retry = engine.complete(&messages, &greedy(2), &mut |_| {}, &AtomicBool::new(false)).unwrap();
    assert_eq!(retry.reused_tokens, retry.prompt_tokens - 1, "{retry:?}");
}

#[test]
fn corrupt_and_truncated_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.gguf");
    std::fs::write(&garbage, b"this is not a gguf file at all").unwrap();
    let err = Engine::load(&garbage, 1).err().unwrap().to_string();
    assert!(err.contains("not a usable GGUF") && err.contains("garbage.gguf"), "{err}");

    let truncated = dir.path().join("truncated.gguf");
    let bytes = std::fs::read(model_path()).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = Engine::load(&truncated, 1).err().unwrap().to_string();
    assert!(err.contains("truncated"), "{err}");
    std::fs::write(&truncated, &bytes[..1000]).unwrap();
    let err = Engine::load(&truncated, 1).err().unwrap().to_string();
    assert!(err.contains("not a usable GGUF"), "{err}");

    let err = Engine::load(&dir.path().join("absent.gguf"), 1).err().unwrap().to_string();
    assert!(err.contains("not found"), "{err}");
}

/// A minimal GGUF v3 file: the given string metadata and no tensors.
fn gguf_with_metadata(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = b"GGUF".to_vec();
    out.extend(3u32.to_le_bytes());
    out.extend(0u64.to_le_bytes());
    out.extend((pairs.len() as u64).to_le_bytes());
    for (key, value) in pairs {
        out.extend((key.len() as u64).to_le_bytes());
        out.extend(key.as_bytes());
        out.extend(8u32.to_le_bytes());
        out.extend((value.len() as u64).to_le_bytes());
        out.extend(value.as_bytes());
    }
    out
}

#[test]
fn an_unsupported_architecture_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gemma.gguf");
    std::fs::write(&path, gguf_with_metadata(&[("general.architecture", "gemma3")])).unwrap();
    let err = Engine::load(&path, 1).err().unwrap();
    assert!(matches!(err, ModelError::UnsupportedArchitecture { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("gemma3") && message.contains("llama"), "{message}");
    // A llama GGUF whose tensors are missing is refused, not a panic.
    std::fs::write(&path, gguf_with_metadata(&[("general.architecture", "llama")])).unwrap();
    assert!(Engine::load(&path, 1).is_err());
}
