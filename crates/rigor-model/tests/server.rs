//! `rigor model serve` end to end: the real SmolLM2 model behind the axum server, queried by
//! rigor's own OpenAI-compatible provider (streaming) and by plain HTTP (non-streaming, errors).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Mutex;
use std::time::Duration;

use rigor_llm::{ChatRequest, ProviderConfig, ProviderKind, RetryPolicy, StreamEvent, build_provider};
use rigor_model::acquire::{fetch, find_known};
use rigor_model::{Engine, SharedEngine};
use rigor_protocol::{Message, ToolSpec};
use serde_json::{Value, json};

async fn start(queue: usize) -> (String, SharedEngine) {
    start_logged(queue, std::sync::Arc::new(|_| {})).await
}

/// [`start`], with each request's log line sent to `log`.
async fn start_logged(queue: usize, log: rigor_model::server::RequestLog) -> (String, SharedEngine) {
    let path = fetch(find_known("smollm2").unwrap(), &|_| {}).unwrap();
    let engine = Engine::load(&path, 0).unwrap().shared();
    let app = rigor_model::server::logged_router(engine.clone(), "smollm2", queue, log);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), engine)
}

fn provider(base_url: &str, text_actions: bool) -> Box<dyn rigor_llm::Provider> {
    build_provider(ProviderConfig {
        name: "served".into(),
        kind: ProviderKind::OpenAi,
        base_url: base_url.into(),
        api_key: None,
        model: "smollm2".into(),
        context_window: 8192,
        pricing: None,
        text_actions,
        retry: RetryPolicy { max_attempts: 1, ..RetryPolicy::default() },
        request_timeout: Duration::from_secs(120),
    })
    .unwrap()
}

/// A non-streaming request for [`question`], its JSON reply.
async fn ask(http: &reqwest::Client, base: &str, max_tokens: usize) -> Value {
    let body = json!({"model": "smollm2", "messages": question(), "max_tokens": max_tokens});
    http.post(format!("{base}/chat/completions")).json(&body).send().await.unwrap().json().await.unwrap()
}

fn question() -> Vec<Value> {
    vec![
        json!({"role": "system", "content": "You are a concise assistant."}),
        json!({"role": "user", "content": "What is the capital of France?"}),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rigors_openai_provider_talks_to_the_server_and_streaming_matches_non_streaming() {
    let (base, _engine) = start(4).await;
    let http = reqwest::Client::new();
    let health: Value =
        http.get(format!("{}/health", base.trim_end_matches("/v1"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    let models: Value = http.get(format!("{base}/models")).send().await.unwrap().json().await.unwrap();
    assert_eq!(models["data"][0]["id"], "smollm2");

    let whole = ask(&http, &base, 40).await;
    let whole_text = whole["choices"][0]["message"]["content"].as_str().unwrap().to_string();
    assert!(whole_text.contains("Paris"), "{whole}");
    assert_eq!(whole["choices"][0]["finish_reason"], "stop");
    assert!(whole["usage"]["prompt_tokens"].as_u64().unwrap() > 10);

    // rigor's own provider streams (stream: true, stream_options.include_usage).
    let client = provider(&base, false);
    let request = ChatRequest {
        messages: vec![
            Message::system("You are a concise assistant."),
            Message::user("What is the capital of France?"),
        ],
        max_output_tokens: Some(40),
        ..ChatRequest::default()
    };
    let deltas = Mutex::new(Vec::new());
    let sink = |event: StreamEvent| {
        if let StreamEvent::Text(t) = event {
            deltas.lock().unwrap().push(t);
        }
    };
    let response = client.chat(&request, &sink).await.unwrap();
    assert_eq!(response.message.content, whole_text);
    assert_eq!(deltas.lock().unwrap().concat(), whole_text);
    assert!(deltas.lock().unwrap().len() > 1, "streamed in pieces");
    assert_eq!(response.finish_reason.as_str(), "stop");
    assert!(response.usage.input_tokens > 10 && response.usage.output_tokens > 0, "{:?}", response.usage);
    // The same conversation again was served from the KV cache.
    assert!(response.usage.cached_input_tokens > 10, "{:?}", response.usage);

    // With tools (text actions on the client), the reply is a well-formed assistant message.
    let tools = vec![ToolSpec {
        name: "bash".into(),
        description: "Run a shell command.".into(),
        parameters: json!({"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}),
    }];
    let client = provider(&base, true);
    let request = ChatRequest {
        messages: vec![Message::system("You fix bugs."), Message::user("List the files in the current directory.")],
        tools,
        max_output_tokens: Some(48),
        ..ChatRequest::default()
    };
    let response = client.chat(&request, &|_| {}).await.unwrap();
    assert!(!response.message.content.is_empty() || !response.message.tool_calls.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_and_a_full_queue_get_clear_http_errors() {
    let (base, engine) = start(0).await;
    let http = reqwest::Client::new();
    let url = format!("{base}/chat/completions");
    let bad = http.post(&url).body("{not json").send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let bad = http.post(&url).json(&json!({"messages": []})).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("empty"));

    // An over-long prompt is a 400 naming both lengths.
    let long = "word ".repeat(20_000);
    let res = http.post(&url).json(&json!({"messages": [{"role": "user", "content": long}]})).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let body = res.text().await.unwrap();
    assert!(body.contains("context") && body.contains("tokens"), "{body}");

    // Queue of 0: while one request is admitted, the next is turned away with 503. Synchronised
    // on events, not time: a thread holds the engine, so the admitted request cannot finish
    // before the second one arrives, and the response head of a streamed request proves it was
    // admitted (headers go out before any token). The second request streams too, so that if it
    // were admitted, its response head would come back at once (200) instead of waiting.
    let (locked_tx, locked_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn({
        let engine = engine.clone();
        move || {
            let _held = engine.lock().unwrap();
            locked_tx.send(()).unwrap();
            let _ = release_rx.recv();
        }
    });
    locked_rx.await.unwrap();
    let streamed = |max_tokens: u32| json!({"messages": question(), "max_tokens": max_tokens, "stream": true});
    let running = http.post(&url).json(&streamed(8)).send().await.unwrap();
    assert_eq!(running.status(), 200);
    let busy = http.post(&url).json(&streamed(4)).send().await.unwrap();
    assert_eq!(busy.status(), 503);
    assert!(busy.text().await.unwrap().contains("busy"));
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    let body = running.text().await.unwrap();
    assert!(body.trim_end().ends_with("data: [DONE]"), "the admitted request completes: {body}");
    // Once it is done, requests are admitted again.
    let ok = http.post(&url).json(&json!({"messages": question(), "max_tokens": 4})).send().await.unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_request_is_logged_with_its_prompt_cached_tokens_and_rates() {
    let lines = std::sync::Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    let (base, _engine) =
        start_logged(2, std::sync::Arc::new(move |line| sink.lock().unwrap().push(line.into()))).await;
    let http = reqwest::Client::new();
    let mut usages = Vec::new();
    for _ in 0..2 {
        usages.push(ask(&http, &base, 8).await["usage"].clone());
    }
    let lines = lines.lock().unwrap().clone();
    assert_eq!(lines.len(), 2, "{lines:?}");
    for (line, usage) in lines.iter().zip(&usages) {
        let (prompt, cached) = (&usage["prompt_tokens"], &usage["prompt_tokens_details"]["cached_tokens"]);
        assert!(line.starts_with(&format!("request: {prompt} prompt tokens ({cached} cached), prefill ")), "{line}");
        assert!(line.contains(" tok/s), decode ") && line.contains("finish "), "{line}");
    }
    // The second request reuses the first one's prompt from the KV cache, and the log says so.
    assert!(usages[1]["prompt_tokens_details"]["cached_tokens"].as_u64().unwrap() > 0, "{usages:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_client_that_asks_sees_prefill_progress_and_others_see_none() {
    let (base, _engine) = start(2).await;
    // rigor's provider asks (the `x-rigor-progress` header) and turns the events into progress.
    let client = provider(&base, false);
    let request = ChatRequest {
        messages: vec![Message::system("You are a concise assistant."), Message::user("Name a colour.")],
        max_output_tokens: Some(4),
        ..ChatRequest::default()
    };
    let progress = Mutex::new(Vec::new());
    let sink = |event: StreamEvent| {
        if let StreamEvent::Prefill { processed, total, .. } = event {
            progress.lock().unwrap().push((processed, total));
        }
    };
    let response = client.chat(&request, &sink).await.unwrap();
    let progress = progress.into_inner().unwrap();
    let &(processed, total) = progress.last().expect("prefill progress reached the provider");
    assert_eq!(processed, total, "the last report is the whole prompt: {progress:?}");
    assert_eq!(total, response.usage.input_tokens - response.usage.cached_input_tokens, "{progress:?}");
    assert!(progress.windows(2).all(|w| w[0].0 < w[1].0), "progress only grows: {progress:?}");

    // A plain OpenAI client (no header) gets the standard stream only, whatever it streams.
    let http = reqwest::Client::new();
    let body = json!({"messages": [{"role": "user", "content": "Name a fruit."}], "max_tokens": 4, "stream": true});
    let plain = http.post(format!("{base}/chat/completions")).json(&body).send().await.unwrap();
    let plain = plain.text().await.unwrap();
    assert!(plain.contains("data: [DONE]") && !plain.contains("rigor.prefill"), "{plain}");
    // The same request with the header: a named event, before the first text chunk.
    let asked = http
        .post(format!("{base}/chat/completions"))
        .header(rigor_llm::openai::PROGRESS_HEADER, rigor_llm::openai::PREFILL_PROGRESS_VALUE)
        .json(&json!({"messages": [{"role": "user", "content": "Name a tree."}], "max_tokens": 4, "stream": true}))
        .send()
        .await
        .unwrap();
    let asked = asked.text().await.unwrap();
    let lines: Vec<&str> = asked.lines().collect();
    let at = lines.iter().position(|l| *l == "event: rigor.prefill").expect(&asked);
    let data = lines[at + 1].strip_prefix("data: ").expect(&asked);
    let Some(StreamEvent::Prefill { processed, total, .. }) = rigor_llm::openai::prefill_progress(data) else {
        panic!("undecodable progress: {data}")
    };
    assert!(processed == total && total > 0, "{data}");
    assert!(at < lines.iter().position(|l| *l == "data: [DONE]").unwrap(), "{asked}");
}
