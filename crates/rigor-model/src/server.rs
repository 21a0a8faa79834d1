//! `rigor model serve`: the embedded model as an OpenAI-compatible HTTP endpoint.
//!
//! Routes: `POST /v1/chat/completions` (streaming over SSE or one JSON body), `GET /v1/models`,
//! `GET /health`. One model, one generation at a time: requests wait their turn in a bounded
//! queue and get `503` when it is full, rather than piling up without limit. When a request
//! offers `tools`, they are presented and parsed with `rigor_llm::text_actions` (the same
//! fenced-block format the embedded provider uses), and calls come back as OpenAI `tool_calls`;
//! when streaming, the prose before the first fence streams as it is generated. A streaming
//! client that sends `x-rigor-progress: prefill` also gets prompt-processing progress as named
//! `rigor.prefill` events (rigor's OpenAI provider asks for it; other clients never see them).
//! The server binds where it is told (the CLI defaults to loopback) and keeps no state between
//! requests except the engine's KV cache.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use rigor_llm::openai::{PREFILL_EVENT, PREFILL_PROGRESS_VALUE, PROGRESS_HEADER};
use rigor_llm::text_actions::{ACTION_FORMAT_HEADING, OBSERVATION_PREFIX, convert_history, parse_action};
use rigor_protocol::{Message, Role, ToolCall, ToolSpec};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::ModelError;
use crate::engine::{FinishReason, Generation, GenerationParams, SharedEngine};
use crate::provider::{DEFAULT_MAX_OUTPUT_TOKENS, chat_messages};

/// Shared state of the server.
#[derive(Clone)]
struct ServerState {
    engine: SharedEngine,
    model: String,
    /// One permit per request allowed in (running or waiting).
    admission: Arc<Semaphore>,
    queue: usize,
    log: RequestLog,
}

/// Receives one line per finished request: prompt and cached tokens, prefill and decode rates.
pub type RequestLog = Arc<dyn Fn(&str) + Send + Sync>;

/// The routes, serving `engine` under the name `model`, admitting one running request plus at
/// most `queue` waiting ones.
pub fn router(engine: SharedEngine, model: impl Into<String>, queue: usize) -> Router {
    logged_router(engine, model, queue, Arc::new(|_| {}))
}

/// [`router`], reporting each request to `log` when it ends.
pub fn logged_router(engine: SharedEngine, model: impl Into<String>, queue: usize, log: RequestLog) -> Router {
    let state = ServerState { engine, model: model.into(), admission: Arc::new(Semaphore::new(queue + 1)), queue, log };
    Router::new()
        .route("/health", get(health))
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat_completions))
        .with_state(state)
}

async fn health(State(state): State<ServerState>) -> Json<Value> {
    Json(json!({"status": "ok", "model": state.model}))
}

async fn models(State(state): State<ServerState>) -> Json<Value> {
    Json(json!({"object": "list", "data": [{"id": state.model, "object": "model", "owned_by": "rigor"}]}))
}

fn error(status: StatusCode, kind: &str, message: String) -> Response {
    (status, Json(json!({"error": {"message": message, "type": kind}}))).into_response()
}

/// The parts of a chat completion request this server understands.
struct ParsedRequest {
    messages: Vec<Message>,
    tools: Vec<ToolSpec>,
    params: GenerationParams,
    stream: bool,
    include_usage: bool,
}

fn parse_request(body: &Value) -> Result<ParsedRequest, String> {
    let raw = body.get("messages").and_then(Value::as_array).ok_or("`messages` must be an array")?;
    let mut messages = Vec::with_capacity(raw.len());
    for (i, m) in raw.iter().enumerate() {
        let role = match m.get("role").and_then(Value::as_str) {
            Some("system") | Some("developer") => Role::System,
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            Some("tool") => Role::Tool,
            other => return Err(format!("messages[{i}]: unknown role {other:?}")),
        };
        let content = match m.get("content") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => {
                parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("")
            }
            _ => String::new(),
        };
        let tool_calls = m
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| ToolCall {
                id: c.get("id").and_then(Value::as_str).unwrap_or_default().to_string(),
                name: c.pointer("/function/name").and_then(Value::as_str).unwrap_or_default().to_string(),
                arguments: c.pointer("/function/arguments").and_then(Value::as_str).unwrap_or("{}").to_string(),
            })
            .collect();
        messages.push(Message {
            role,
            content,
            tool_calls,
            tool_call_id: m.get("tool_call_id").and_then(Value::as_str).map(str::to_string),
            is_error: false,
        });
    }
    if messages.is_empty() {
        return Err("`messages` is empty".into());
    }
    let tools = body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            let f = t.get("function")?;
            Some(ToolSpec {
                name: f.get("name")?.as_str()?.to_string(),
                description: f.get("description").and_then(Value::as_str).unwrap_or_default().to_string(),
                parameters: f.get("parameters").cloned().unwrap_or_else(|| json!({"type": "object"})),
            })
        })
        .collect();
    let stop = match body.get("stop") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    };
    let max_tokens = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| body.get(*k).and_then(Value::as_u64))
        .map_or(DEFAULT_MAX_OUTPUT_TOKENS, |n| n as usize);
    let params = GenerationParams {
        max_tokens,
        temperature: body.get("temperature").and_then(Value::as_f64),
        top_p: body.get("top_p").and_then(Value::as_f64).filter(|p| *p < 1.0),
        top_k: body.get("top_k").and_then(Value::as_u64).map(|k| k as usize).filter(|k| *k > 0),
        stop,
        seed: body.get("seed").and_then(Value::as_u64).unwrap_or(GenerationParams::default().seed),
        repeat_penalty: body.get("repeat_penalty").and_then(Value::as_f64).map_or(1.1, |p| p as f32),
        ..GenerationParams::default()
    };
    Ok(ParsedRequest {
        messages,
        tools,
        params,
        stream: body.get("stream").and_then(Value::as_bool).unwrap_or(false),
        include_usage: body.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false),
    })
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// What the generation thread reports.
enum Progress {
    /// New prompt tokens processed of those to process, and the time since prefill began.
    Prefill {
        processed: usize,
        total: usize,
        elapsed_ms: u128,
    },
    Text(String),
    /// The generation, and the prose already streamed (with tools).
    Done(Result<(crate::engine::Generation, String), ModelError>),
}

async fn chat_completions(
    State(state): State<ServerState>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_request_error", format!("body is not JSON: {e}")),
    };
    let request = match parse_request(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_request_error", e),
    };
    let Ok(permit) = state.admission.clone().try_acquire_owned() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            format!("server busy: one request running and {} queued; retry later", state.queue),
        );
    };
    let with_tools = !request.tools.is_empty();
    // Prefill progress goes only to a streaming client that asked for it (see `PROGRESS_HEADER`).
    let progress = request.stream
        && headers
            .get(PROGRESS_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|part| part.trim() == PREFILL_PROGRESS_VALUE));
    let messages = chat_messages(&convert_history(&request.messages, &request.tools));
    // An agent's conversation in the text action format (the tools offered here, or a client
    // that drives them itself): the reply ends with its action, before any invented observation.
    let mut params = request.params.clone();
    if with_tools || request.messages.iter().any(|m| m.content.contains(ACTION_FORMAT_HEADING)) {
        params.stop.push(OBSERVATION_PREFIX.to_string());
        params.stop_after_fenced_block = true;
    }
    let cancel = Arc::new(AtomicBool::new(false));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Progress>();
    let engine = state.engine.clone();
    let worker_cancel = cancel.clone();
    let log = state.log.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut engine = engine.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (text_tx, prefill_tx) = (tx.clone(), tx.clone());
        let mut prose = ProseStream::default();
        let started = std::time::Instant::now();
        let result = engine.complete_with_prefill(
            &messages,
            &params,
            &mut |text| {
                let ready = if with_tools { prose.push(text) } else { Some(text.to_string()) };
                if let Some(text) = ready {
                    drop(text_tx.send(Progress::Text(text)));
                }
            },
            &mut |processed, total| {
                if progress {
                    let elapsed_ms = started.elapsed().as_millis();
                    drop(prefill_tx.send(Progress::Prefill { processed, total, elapsed_ms }));
                }
            },
            &worker_cancel,
        );
        log(&match &result {
            Ok(generation) => format!("request: {}", generation.summary()),
            Err(err) => format!("request failed: {err}"),
        });
        let result = result.map(|generation| (generation, prose.sent));
        drop(tx.send(Progress::Done(result)));
    });
    let id = format!("chatcmpl-{}", now());
    let reply = Reply { model: state.model.clone(), id, tools: request.tools, cancel };
    if request.stream { reply.stream(rx, request.include_usage) } else { reply.whole(rx).await }
}

/// Turns the generation's progress into an OpenAI response.
struct Reply {
    model: String,
    id: String,
    tools: Vec<ToolSpec>,
    cancel: Arc<AtomicBool>,
}

/// Cancels the generation when the client goes away (the response stream is dropped).
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Reply {
    /// Content and tool calls of the finished text.
    fn message(&self, text: &str, calls_seen: usize) -> (String, Vec<Value>) {
        if self.tools.is_empty() {
            return (text.to_string(), Vec::new());
        }
        let (content, call) = parse_action(text, &self.tools, &format!("call_{}", calls_seen + 1));
        let calls = call
            .into_iter()
            .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
            .collect();
        (content, calls)
    }

    fn usage(generation: &crate::engine::Generation) -> Value {
        json!({
            "prompt_tokens": generation.prompt_tokens,
            "completion_tokens": generation.completion_tokens,
            "total_tokens": generation.prompt_tokens + generation.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": generation.reused_tokens},
        })
    }

    fn failure(err: &ModelError) -> (StatusCode, &'static str) {
        match err {
            ModelError::ContextOverflow { .. } | ModelError::Template(_) => {
                (StatusCode::BAD_REQUEST, "invalid_request_error")
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        }
    }

    async fn whole(self, mut rx: tokio::sync::mpsc::UnboundedReceiver<Progress>) -> Response {
        let _guard = CancelOnDrop(self.cancel.clone());
        let mut result = None;
        while let Some(progress) = rx.recv().await {
            if let Progress::Done(r) = progress {
                result = Some(r);
            }
        }
        let generation = match result {
            Some(Ok((g, _))) => g,
            Some(Err(err)) => {
                let (status, kind) = Self::failure(&err);
                return error(status, kind, err.to_string());
            }
            None => return error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "generation stopped".into()),
        };
        let (content, calls) = self.message(&generation.text, 0);
        let finish = finish_reason(&generation, !calls.is_empty());
        let mut message = json!({"role": "assistant", "content": content});
        if !calls.is_empty() {
            message["tool_calls"] = Value::Array(calls);
        }
        Json(json!({
            "id": self.id,
            "object": "chat.completion",
            "created": now(),
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": Self::usage(&generation),
        }))
        .into_response()
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Event {
        let body = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": now(),
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        Event::default().data(body.to_string())
    }

    fn stream(self, rx: tokio::sync::mpsc::UnboundedReceiver<Progress>, include_usage: bool) -> Response {
        let guard = CancelOnDrop(self.cancel.clone());
        let first = self.chunk(json!({"role": "assistant", "content": ""}), None);
        let reply = Arc::new(self);
        let events = tokio_stream_from(rx).flat_map(move |progress| {
            let _keep = &guard;
            let events: Vec<Event> = match progress {
                Progress::Prefill { processed, total, elapsed_ms } => vec![
                    Event::default()
                        .event(PREFILL_EVENT)
                        .data(json!({"processed": processed, "total": total, "elapsed_ms": elapsed_ms}).to_string()),
                ],
                Progress::Text(text) => vec![reply.chunk(json!({"content": text}), None)],
                Progress::Done(Ok((generation, streamed))) => {
                    let mut events = Vec::new();
                    let (content, calls) = reply.message(&generation.text, 0);
                    if !reply.tools.is_empty() {
                        // The prose already streamed is a prefix of the content (see `ProseStream`).
                        let rest = content.strip_prefix(streamed.as_str()).unwrap_or_default();
                        if !rest.is_empty() {
                            events.push(reply.chunk(json!({"content": rest}), None));
                        }
                    }
                    let finish = finish_reason(&generation, !calls.is_empty());
                    let delta = if calls.is_empty() {
                        json!({})
                    } else {
                        let indexed: Vec<Value> = calls
                            .into_iter()
                            .enumerate()
                            .map(|(i, mut c)| {
                                c["index"] = json!(i);
                                c
                            })
                            .collect();
                        json!({"tool_calls": indexed})
                    };
                    events.push(reply.chunk(delta, Some(finish)));
                    if include_usage {
                        let body = json!({
                            "id": reply.id, "object": "chat.completion.chunk", "created": now(),
                            "model": reply.model, "choices": [], "usage": Reply::usage(&generation),
                        });
                        events.push(Event::default().data(body.to_string()));
                    }
                    events.push(Event::default().data("[DONE]"));
                    events
                }
                Progress::Done(Err(err)) => {
                    let body = json!({"error": {"message": err.to_string(), "type": Reply::failure(&err).1}});
                    vec![Event::default().data(body.to_string())]
                }
            };
            futures_util::stream::iter(events.into_iter().map(Ok::<Event, Infallible>))
        });
        let all = futures_util::stream::once(async move { Ok::<Event, Infallible>(first) }).chain(events);
        Sse::new(all).into_response()
    }
}

/// The OpenAI `finish_reason` of `generation`: `length` whenever the output limit cut it (a tool
/// call in it may be cut off, and the client should know), else `tool_calls` when it holds calls,
/// else the generation's own reason.
fn finish_reason(generation: &Generation, has_calls: bool) -> &'static str {
    match generation.finish_reason {
        FinishReason::Length => "length",
        FinishReason::Stop if has_calls => "tool_calls",
        FinishReason::Stop => "stop",
    }
}

/// With tools, streams the prose a reply opens with while holding back anything that may belong
/// to an action: from the first code fence on (the action is parsed when the reply is complete),
/// leading and trailing whitespace, and a trailing backtick or tilde or two that may open a fence. What it
/// lets through is always a prefix of the content `parse_action` returns, so the rest of the
/// content follows at the end with nothing sent twice.
#[derive(Default)]
struct ProseStream {
    text: String,
    /// Prose sent so far.
    sent: String,
    /// A fence has started: nothing more is streamed.
    held: bool,
}

impl ProseStream {
    /// Adds generated text; returns the newly streamable prose, if any.
    fn push(&mut self, chunk: &str) -> Option<String> {
        self.text.push_str(chunk);
        if self.held {
            return None;
        }
        let body = self.text.trim_start();
        // Either marker of `rigor_llm::text_actions` may open the action's fence.
        let before_fence = match [body.find("```"), body.find("~~~")].into_iter().flatten().min() {
            Some(at) => {
                self.held = true;
                &body[..at]
            }
            None => body.trim_end_matches(['`', '~']),
        };
        let prose = before_fence.trim_end();
        let new = prose.strip_prefix(self.sent.as_str()).filter(|rest| !rest.is_empty())?.to_string();
        self.sent = prose.to_string();
        Some(new)
    }
}

/// An unbounded receiver as a stream.
fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_the_output_limit_cut_finishes_with_length_even_with_a_call() {
        let generation = |finish_reason| Generation {
            text: String::new(),
            finish_reason,
            prompt_tokens: 1,
            reused_tokens: 0,
            completion_tokens: 1,
            prefill_time: std::time::Duration::ZERO,
            decode_time: std::time::Duration::ZERO,
        };
        assert_eq!(finish_reason(&generation(FinishReason::Length), true), "length");
        assert_eq!(finish_reason(&generation(FinishReason::Stop), true), "tool_calls");
        assert_eq!(finish_reason(&generation(FinishReason::Stop), false), "stop");
    }

    #[test]
    fn prose_streams_until_a_fence_and_is_a_prefix_of_the_parsed_content() {
        let tools = vec![ToolSpec {
            name: "bash".into(),
            description: "Run a command.".into(),
            parameters: json!({"type": "object", "properties": {"command": {"type": "string"}}}),
        }];
        let reply = "\n Let me look at the file.\n\nThen fix it. `\n``";
        let reply = format!("{reply}`bash\nls -la\n```\nDone.");
        let mut prose = ProseStream::default();
        let mut streamed = String::new();
        for chunk in reply.as_bytes().chunks(3).map(|c| std::str::from_utf8(c).unwrap()) {
            if let Some(text) = prose.push(chunk) {
                streamed.push_str(&text);
            }
        }
        assert_eq!(streamed, "Let me look at the file.\n\nThen fix it. `");
        assert_eq!(prose.sent, streamed);
        let (content, call) = parse_action(&reply, &tools, "call_1");
        assert_eq!(call.unwrap().name, "bash");
        assert!(content.starts_with(&streamed), "{content:?}");
        assert_eq!(content.strip_prefix(streamed.as_str()), Some("\n\nDone."));
        // No fence at all: everything but the surrounding whitespace streams.
        let mut plain = ProseStream::default();
        assert_eq!(plain.push("  Hello").as_deref(), Some("Hello"));
        assert_eq!(plain.push(" world  "), Some(" world".to_string()));
        assert_eq!(plain.push("\n"), None);
        // A tilde fence is held back too (parse_action reads it as the action).
        let mut tilde = ProseStream::default();
        let reply = "Look.\n~~~bash\nls\n~~~\n";
        let streamed: String = reply.split_inclusive('~').filter_map(|c| tilde.push(c)).collect();
        assert_eq!(streamed, "Look.");
        assert_eq!(parse_action(reply, &tools, "call_2").1.unwrap().name, "bash");
    }

    #[test]
    fn requests_are_parsed_with_openai_conventions() {
        let body = json!({
            "model": "x", "stream": true, "stream_options": {"include_usage": true},
            "max_tokens": 7, "temperature": 0.5, "stop": "END",
            "messages": [
                {"role": "system", "content": "s"},
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                    "function": {"name": "bash", "arguments": "{\"command\":\"ls\"}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "ok"}
            ],
            "tools": [{"type": "function", "function": {"name": "bash", "parameters": {"type": "object"}}}]
        });
        let r = parse_request(&body).unwrap();
        assert!(r.stream && r.include_usage);
        assert_eq!(r.params.max_tokens, 7);
        assert_eq!(r.params.stop, vec!["END".to_string()]);
        assert_eq!(r.messages[1].content, "ab");
        assert_eq!(r.messages[2].tool_calls[0].name, "bash");
        assert_eq!(r.messages[3].tool_call_id.as_deref(), Some("c1"));
        assert_eq!(r.tools[0].name, "bash");
        assert!(parse_request(&json!({"messages": []})).is_err());
        assert!(parse_request(&json!({"messages": [{"role": "robot", "content": "x"}]})).is_err());
    }
}
