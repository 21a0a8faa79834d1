//! Measures the embedded engine for `bench/model.sh`: load time, prompt processing, time to first
//! token, generation speed, peak RSS, and the per-turn cost of an agent loop with and without
//! KV-prefix reuse. Prints one JSON object.
//!
//! Usage: model_bench MODEL THREADS PROMPT_FILE[,PROMPT_FILE...] GEN_TOKENS TURN_FILE...   (MODEL: a
//! GGUF path or a catalogue name, fetched like `rigor model fetch` when absent; each prompt is
//! processed from a cold cache: one prompt size per file). `model_bench MODEL --path` prints the
//! GGUF's path (fetching it when absent) and exits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use rigor_model::template::ChatMessage;
use rigor_model::{Engine, GenerationParams};

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

/// The GGUF a catalogue name or path names, fetched when it is a catalogue model not yet there.
fn model_file(model: &str) -> std::path::PathBuf {
    match rigor_model::acquire::find_known(model) {
        Some(known) => rigor_model::acquire::fetch(known, &|p| eprintln!("{p:?}")).unwrap(),
        None => std::path::PathBuf::from(model),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(2).map(String::as_str) == Some("--path") {
        println!("{}", model_file(&args[1]).display());
        return;
    }
    let (model, threads, prompt_file, gen_tokens) =
        (&args[1], args[2].parse::<usize>().unwrap(), &args[3], args[4].parse::<usize>().unwrap());
    let turns: Vec<String> = args[5..].iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
    // The compute pool is sized from this variable when first used.
    // SAFETY: no other thread exists yet.
    unsafe { std::env::set_var("CANDLE_NUM_THREADS", threads.to_string()) };
    let never = AtomicBool::new(false);
    let path = model_file(model);
    let started = Instant::now();
    let mut engine = Engine::load(&path, threads).unwrap();
    let load_s = started.elapsed().as_secs_f64();

    // Warm-up (thread pools, allocator), then a cold-cache measurement.
    let warm = vec![ChatMessage::new("user", "Hi")];
    engine.complete(&warm, &GenerationParams { max_tokens: 2, ..Default::default() }, &mut |_| {}, &never).unwrap();
    engine.reset();

    let mut prefill = Vec::new();
    for file in prompt_file.split(',') {
        let prompt = std::fs::read_to_string(file).unwrap();
        let messages = vec![ChatMessage::new("user", prompt)];
        // Prompt processing: the whole prompt, cold cache, one token generated.
        engine.reset();
        let t = Instant::now();
        let g = engine
            .complete(&messages, &GenerationParams { max_tokens: 1, ..Default::default() }, &mut |_| {}, &never)
            .unwrap();
        let ttft_s = t.elapsed().as_secs_f64();
        let pp_tps = g.prompt_tokens as f64 / g.prefill_time.as_secs_f64();
        prefill.push(serde_json::json!({"prompt_tokens": g.prompt_tokens, "pp_tps": pp_tps, "ttft_s": ttft_s}));
    }
    // Generation: a fixed number of tokens (no repeat penalty, like llama.cpp's default sampler
    // chain at temperature 0), timed after the first.
    engine.reset();
    let story = vec![ChatMessage::new("user", "Write a long story about a dragon who learns to program.")];
    let params = GenerationParams { max_tokens: gen_tokens, repeat_penalty: 1.0, ..Default::default() };
    let g = engine.complete(&story, &params, &mut |_| {}, &never).unwrap();
    let tg_tps = (g.completion_tokens.saturating_sub(1)) as f64 / g.decode_time.as_secs_f64();

    // Agent loop: the conversation grows by one observation per turn; 32 tokens generated per turn.
    let mut loop_times = serde_json::Map::new();
    for reuse in [true, false] {
        engine.reset();
        let mut conversation = vec![ChatMessage::new("system", turns[0].clone())];
        let mut times = Vec::new();
        let mut prompt_tokens = Vec::new();
        for (i, observation) in turns[1..].iter().enumerate() {
            conversation.push(ChatMessage::new("user", observation.clone()));
            if !reuse {
                engine.reset();
            }
            let t = Instant::now();
            let g = engine
                .complete(
                    &conversation,
                    &GenerationParams { max_tokens: 32, repeat_penalty: 1.0, ..Default::default() },
                    &mut |_| {},
                    &never,
                )
                .unwrap();
            times.push(t.elapsed().as_secs_f64());
            prompt_tokens.push(g.prompt_tokens);
            conversation.push(ChatMessage::new("assistant", g.text));
            let _ = i;
        }
        loop_times.insert(
            if reuse { "with_reuse".into() } else { "without_reuse".into() },
            serde_json::json!({"turn_s": times, "prompt_tokens": prompt_tokens}),
        );
    }
    let out = serde_json::json!({
        "engine": "rigor (candle)",
        "model": path.display().to_string(),
        "threads": engine.threads(),
        "load_s": load_s,
        "prompt_tokens": prefill[0]["prompt_tokens"],
        "pp_tps": prefill[0]["pp_tps"],
        "ttft_s": prefill[0]["ttft_s"],
        "prefill": prefill,
        "gen_tokens": g.completion_tokens,
        "tg_tps": tg_tps,
        "peak_rss_mb": peak_rss_mb(),
        "agent_loop": loop_times,
    });
    println!("{out}");
}
