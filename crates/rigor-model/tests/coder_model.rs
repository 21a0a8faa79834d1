//! Real inference on Qwen2.5-Coder-1.5B-Instruct Q4_K_M (qwen2 architecture: q/k/v biases, an
//! untied output matrix, Q4_K and Q6_K weights), when `rigor model fetch qwen2.5-coder-1.5b` has
//! put it in the models directory. These tests never download it (1.1 GB): without the file they
//! say so and pass; CI runs the SmolLM2 tests in `inference.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use rigor_model::acquire::{find_known, known_path};
use rigor_model::gguf::GgufFile;
use rigor_model::template::ChatMessage;
use rigor_model::transformer::Transformer;
use rigor_model::{Engine, GenerationParams};

/// The model file, or `None` (with a message) when it has not been fetched.
fn coder_model() -> Option<PathBuf> {
    let path = known_path(find_known("qwen2.5-coder-1.5b").unwrap());
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED: {} is absent (fetch it with `rigor model fetch qwen2.5-coder-1.5b`, 1.1 GB)",
            path.display()
        );
        None
    }
}

#[test]
fn the_coder_models_logits_do_not_depend_on_how_the_tokens_were_batched() {
    let Some(path) = coder_model() else { return };
    let mut model = Transformer::load(&mut GgufFile::open(&path).unwrap()).unwrap();
    assert_eq!(model.config().architecture, "qwen2");
    let tokens: Vec<u32> = (0..24).map(|i| 1000 + i * 4999).collect();
    assert_eq!(model.forward(&tokens).unwrap().len(), 151_936);
    common::assert_batching_changes_no_logit(&mut model, &tokens, &[1, 11, 23], (11, 6));
}

#[test]
fn the_coder_model_writes_the_fix_for_a_one_line_bug() {
    let Some(path) = coder_model() else { return };
    let mut engine = Engine::load(&path, 0).unwrap();
    assert_eq!(engine.tokenizer().encode("<|im_start|>system\n").unwrap(), vec![151_644, 8948, 198]);
    let messages = vec![
        ChatMessage::new("system", "You are a helpful coding assistant. Answer with code only."),
        ChatMessage::new(
            "user",
            "This Python function should add two numbers but it subtracts:\n\ndef add(a, b):\n    return a - b\n\n\
             Write the corrected function.",
        ),
    ];
    let params = GenerationParams { max_tokens: 48, ..GenerationParams::default() };
    let reply = engine.complete(&messages, &params, &mut |_| {}, &AtomicBool::new(false)).unwrap();
    assert!(reply.text.contains("return a + b"), "{:?}", reply.text);
}
