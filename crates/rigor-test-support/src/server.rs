//! A scripted model server for tests.
//!
//! [`ScriptedServer`] listens on `127.0.0.1:0` and answers every POST with the next [`Step`] of
//! its script, speaking either the OpenAI Chat Completions or the Anthropic Messages wire format
//! ([`Flavor`]). Replies are streamed as real server-sent events (`text/event-stream`, each event
//! flushed separately, text split into several deltas and tool-call arguments into several
//! pieces) when the request says `"stream": true`, and returned as one JSON body otherwise. Every
//! request body is recorded for assertions. When the script runs out the server answers HTTP 500
//! "script exhausted", so a test that makes more calls than it scripted fails loudly.
//!
//! Scripts can also be loaded from JSON ([`load_script`]):
//!
//! ```json
//! [
//!   {"reply": {"text": "Let me look.", "tool_calls": [{"name": "bash", "arguments": {"command": "ls"}}]}},
//!   {"status": {"code": 429, "retry_after": 1}},
//!   {"cut_stream": {"text": "partial answer"}},
//!   {"delay": {"millis": 500, "then": {"reply": {"text": "slow"}}}},
//!   {"reply": {"text": "Done.", "input_tokens": 1200, "output_tokens": 40}}
//! ]
//! ```
//!
//! `arguments` may be a JSON value or a string holding raw (possibly malformed) argument text.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};
use tokio::sync::oneshot;

/// Which wire format the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flavor {
    /// OpenAI-compatible `POST /v1/chat/completions`.
    OpenAi,
    /// Anthropic `POST /v1/messages`.
    Anthropic,
}

/// A model answer: text and/or tool calls, with the token counts to report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// Assistant text (may be empty).
    #[serde(default)]
    pub text: String,
    /// Tool calls, in order.
    #[serde(default)]
    pub tool_calls: Vec<ScriptedCall>,
    /// Prompt tokens reported in the usage (default 100).
    #[serde(default = "default_input_tokens")]
    pub input_tokens: u64,
    /// Generated tokens reported in the usage (default 20).
    #[serde(default = "default_output_tokens")]
    pub output_tokens: u64,
}

fn default_input_tokens() -> u64 {
    100
}

fn default_output_tokens() -> u64 {
    20
}

impl Reply {
    /// A text-only reply.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            tool_calls: Vec::new(),
            input_tokens: default_input_tokens(),
            output_tokens: default_output_tokens(),
        }
    }

    /// A reply with one tool call and no text. `args_json` is sent verbatim (it may be malformed).
    pub fn call(name: impl Into<String>, args_json: &str) -> Self {
        Self::text("").with_call(name, args_json)
    }

    /// The same reply with `text` as its text.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = text.into();
        self
    }

    /// The same reply with one more tool call.
    pub fn with_call(mut self, name: impl Into<String>, args_json: &str) -> Self {
        self.tool_calls.push(ScriptedCall { name: name.into(), arguments: args_json.to_string() });
        self
    }

    /// The same reply reporting these token counts.
    pub fn with_tokens(mut self, input_tokens: u64, output_tokens: u64) -> Self {
        self.input_tokens = input_tokens;
        self.output_tokens = output_tokens;
        self
    }
}

/// A tool call in a scripted reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptedCall {
    /// The tool's name.
    pub name: String,
    /// Raw argument text, sent as is (may be malformed on purpose). In JSON scripts it may be
    /// given as a JSON value, which is serialized.
    #[serde(default = "empty_object", deserialize_with = "raw_or_json")]
    pub arguments: String,
}

fn empty_object() -> String {
    "{}".to_string()
}

fn raw_or_json<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(raw) => raw,
        other => other.to_string(),
    })
}

/// One scripted answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// A complete answer.
    Reply(Reply),
    /// An HTTP error response.
    Status {
        /// HTTP status code.
        code: u16,
        /// `Retry-After` in seconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
        /// Response body; empty means a JSON error body in the flavor's format.
        #[serde(default)]
        body: String,
    },
    /// Sends the first part of the answer's stream (never its terminal events), then drops the
    /// connection.
    CutStream(Reply),
    /// Waits `millis` before answering with `then` (the wait happens before any header is sent).
    Delay {
        /// Milliseconds to wait.
        millis: u64,
        /// The step to serve after the wait.
        then: Box<Step>,
    },
}

/// Parses a script from JSON text (an array of steps, see the module docs).
pub fn parse_script(json: &str) -> Result<Vec<Step>, serde_json::Error> {
    serde_json::from_str(json)
}

/// Loads a script from a JSON fixture file; panics with the reason when it cannot.
pub fn load_script(path: impl AsRef<Path>) -> Vec<Step> {
    let path = path.as_ref();
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|err| panic!("cannot read script {}: {err}", path.display()));
    parse_script(&text).unwrap_or_else(|err| panic!("script {} is not a valid script: {err}", path.display()))
}

struct Shared {
    flavor: Flavor,
    steps: Mutex<VecDeque<Step>>,
    requests: Mutex<Vec<Value>>,
    calls: AtomicU64,
    responses: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running scripted server; it stops when dropped.
pub struct ScriptedServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
}

impl ScriptedServer {
    /// Starts a server on `127.0.0.1:0` as a task of the current tokio runtime.
    pub async fn start(flavor: Flavor, steps: Vec<Step>) -> ScriptedServer {
        let listener = bind().await;
        Self::serve(flavor, steps, listener, tokio::spawn)
    }

    /// Starts a server on its own thread with its own runtime, for tests that are not async
    /// (e.g. ones that spawn the rigor binary).
    pub fn start_blocking(flavor: Flavor, steps: Vec<Step>) -> ScriptedServer {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("scripted-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap_or_else(|err| panic!("scripted server: cannot build a runtime: {err}"));
                runtime.block_on(async move {
                    let listener = bind().await;
                    let mut task = None;
                    let server = Self::serve(flavor, steps, listener, |fut| {
                        task = Some(tokio::spawn(fut));
                    });
                    let _ = tx.send(server);
                    if let Some(task) = task {
                        let _ = task.await;
                    }
                });
            })
            .unwrap_or_else(|err| panic!("scripted server: cannot spawn a thread: {err}"));
        rx.recv().unwrap_or_else(|err| panic!("scripted server did not start: {err}"))
    }

    fn serve<S, R>(flavor: Flavor, steps: Vec<Step>, listener: tokio::net::TcpListener, spawn: S) -> ScriptedServer
    where
        S: FnOnce(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) -> R,
    {
        let addr = listener.local_addr().unwrap_or_else(|err| panic!("scripted server: no local address: {err}"));
        let shared = Arc::new(Shared {
            flavor,
            steps: Mutex::new(steps.into()),
            requests: Mutex::new(Vec::new()),
            calls: AtomicU64::new(0),
            responses: AtomicU64::new(0),
        });
        let (shutdown, stop) = oneshot::channel::<()>();
        let app = Router::new().fallback(handle).with_state(shared.clone());
        spawn(Box::pin(async move {
            // Streamed replies are many small writes: without TCP_NODELAY, Nagle's algorithm and
            // delayed ACKs add ~40 ms to every reply.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let server = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop.await;
            });
            if let Err(err) = server.await {
                eprintln!("scripted server stopped: {err}");
            }
        }));
        ScriptedServer { shared, addr, shutdown: Some(shutdown) }
    }

    /// The base URL to configure: `http://127.0.0.1:PORT/v1` (OpenAI) or `http://127.0.0.1:PORT`
    /// (Anthropic).
    pub fn base_url(&self) -> String {
        match self.shared.flavor {
            Flavor::OpenAi => format!("http://{}/v1", self.addr),
            Flavor::Anthropic => format!("http://{}", self.addr),
        }
    }

    /// Every request body received, in order (non-JSON bodies as JSON strings).
    pub fn requests(&self) -> Vec<Value> {
        lock(&self.shared.requests).clone()
    }

    /// Steps not yet served.
    pub fn remaining(&self) -> usize {
        lock(&self.shared.steps).len()
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

async fn bind() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|err| panic!("scripted server: cannot bind 127.0.0.1:0: {err}"))
}

async fn handle(State(shared): State<Arc<Shared>>, method: Method, body: Bytes) -> Response {
    if method != Method::POST {
        return plain(StatusCode::NOT_FOUND, "the scripted server answers POST requests only".into());
    }
    let request: Value =
        serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    let stream = request.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let include_usage = request.pointer("/stream_options/include_usage").and_then(Value::as_bool).unwrap_or(false);
    let model = request.get("model").and_then(Value::as_str).unwrap_or("scripted").to_string();
    lock(&shared.requests).push(request);
    let step = lock(&shared.steps).pop_front();
    let Some(mut step) = step else {
        return error_response(
            shared.flavor,
            StatusCode::INTERNAL_SERVER_ERROR,
            "script exhausted: the scripted server got more requests than its script has steps",
        );
    };
    loop {
        match step {
            Step::Delay { millis, then } => {
                tokio::time::sleep(Duration::from_millis(millis)).await;
                step = *then;
            }
            Step::Status { code, retry_after, body } => {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let mut response = if body.is_empty() {
                    error_response(shared.flavor, status, &format!("scripted HTTP {code}"))
                } else if serde_json::from_str::<Value>(&body).is_ok() {
                    with_type(status, "application/json", Body::from(body))
                } else {
                    plain(status, body)
                };
                if let Some(secs) = retry_after {
                    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
                return response;
            }
            Step::Reply(reply) => return answer(&shared, &reply, &model, stream, include_usage, false),
            Step::CutStream(reply) => return answer(&shared, &reply, &model, stream, include_usage, true),
        }
    }
}

fn with_type(status: StatusCode, content_type: &'static str, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn plain(status: StatusCode, body: String) -> Response {
    with_type(status, "text/plain; charset=utf-8", Body::from(body))
}

fn error_response(flavor: Flavor, status: StatusCode, message: &str) -> Response {
    let body = match flavor {
        Flavor::OpenAi => json!({"error": {"message": message, "type": "scripted_error", "code": status.as_u16()}}),
        Flavor::Anthropic => {
            let kind = match status.as_u16() {
                400 => "invalid_request_error",
                401 => "authentication_error",
                403 => "permission_error",
                404 => "not_found_error",
                429 => "rate_limit_error",
                529 => "overloaded_error",
                _ => "api_error",
            };
            json!({"type": "error", "error": {"type": kind, "message": message}})
        }
    };
    with_type(status, "application/json", Body::from(body.to_string()))
}

/// A finished (or, when `cut`, deliberately broken) answer to one request.
fn answer(shared: &Shared, reply: &Reply, model: &str, stream: bool, include_usage: bool, cut: bool) -> Response {
    let n = shared.responses.fetch_add(1, Ordering::SeqCst) + 1;
    let ids: Vec<String> =
        reply.tool_calls.iter().map(|_| format!("call_{}", shared.calls.fetch_add(1, Ordering::SeqCst) + 1)).collect();
    if !stream {
        let body = match shared.flavor {
            Flavor::OpenAi => openai_json(reply, &ids, model, n),
            Flavor::Anthropic => anthropic_json(reply, &ids, model, n),
        }
        .to_string();
        if !cut {
            return with_type(StatusCode::OK, "application/json", Body::from(body));
        }
        let half = floor_char_boundary(&body, body.len() / 2);
        return with_type(StatusCode::OK, "application/json", broken_body(vec![body[..half].to_string()]));
    }
    let (frames, terminal) = match shared.flavor {
        Flavor::OpenAi => openai_frames(reply, &ids, model, n, include_usage),
        Flavor::Anthropic => anthropic_frames(reply, &ids, model, n),
    };
    // Split the second event across two writes, so clients must reassemble events.
    let mut chunks: Vec<String> = Vec::new();
    let sent = if cut { (frames.len() / 2).min(terminal).max(1) } else { frames.len() };
    for (i, frame) in frames.into_iter().take(sent).enumerate() {
        if i == 1 && frame.len() > 2 {
            let mid = floor_char_boundary(&frame, frame.len() / 2);
            chunks.push(frame[..mid].to_string());
            chunks.push(frame[mid..].to_string());
        } else {
            chunks.push(frame);
        }
    }
    let body = if cut { broken_body(chunks) } else { paced_body(chunks) };
    let mut response = with_type(StatusCode::OK, "text/event-stream", body);
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while index > 0 && !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

/// Chunks written one by one, with a short pause so each is flushed on its own.
fn paced_body(chunks: Vec<String>) -> Body {
    let stream = futures_util::stream::iter(chunks).then(|chunk| async move {
        tokio::time::sleep(Duration::from_millis(1)).await;
        Ok::<_, Infallible>(chunk)
    });
    Body::from_stream(stream)
}

/// Chunks written one by one, then the connection is dropped.
fn broken_body(chunks: Vec<String>) -> Body {
    let stream = futures_util::stream::iter(chunks)
        .then(|chunk| async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok::<_, std::io::Error>(chunk)
        })
        .chain(futures_util::stream::once(async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            Err(std::io::Error::other("scripted cut: connection dropped mid-stream"))
        }));
    Body::from_stream(stream)
}

/// `text` in `parts` pieces or fewer (at least one when not empty), on character boundaries.
fn pieces(text: &str, parts: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return Vec::new();
    }
    let size = chars.len().div_ceil(parts.max(1));
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

fn finish_reason(reply: &Reply, flavor: Flavor) -> &'static str {
    match (flavor, reply.tool_calls.is_empty()) {
        (Flavor::OpenAi, true) => "stop",
        (Flavor::OpenAi, false) => "tool_calls",
        (Flavor::Anthropic, true) => "end_turn",
        (Flavor::Anthropic, false) => "tool_use",
    }
}

fn openai_usage(reply: &Reply) -> Value {
    json!({
        "prompt_tokens": reply.input_tokens,
        "completion_tokens": reply.output_tokens,
        "total_tokens": reply.input_tokens + reply.output_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
    })
}

/// SSE frames of an OpenAI stream and the index of the first terminal frame.
fn openai_frames(reply: &Reply, ids: &[String], model: &str, n: u64, include_usage: bool) -> (Vec<String>, usize) {
    let chunk = |delta: Value, finish: Value| {
        let value = json!({
            "id": format!("chatcmpl-scripted-{n}"),
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        format!("data: {value}\n\n")
    };
    let mut frames = vec![chunk(json!({"role": "assistant", "content": ""}), Value::Null)];
    for piece in pieces(&reply.text, 3) {
        frames.push(chunk(json!({"content": piece}), Value::Null));
    }
    for (i, (call, id)) in reply.tool_calls.iter().zip(ids).enumerate() {
        frames.push(chunk(
            json!({"tool_calls": [{"index": i, "id": id, "type": "function",
                                   "function": {"name": call.name, "arguments": ""}}]}),
            Value::Null,
        ));
        for piece in pieces(&call.arguments, 3) {
            frames.push(chunk(json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}), Value::Null));
        }
    }
    let terminal = frames.len();
    frames.push(chunk(json!({}), json!(finish_reason(reply, Flavor::OpenAi))));
    if include_usage {
        let value = json!({
            "id": format!("chatcmpl-scripted-{n}"),
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [],
            "usage": openai_usage(reply),
        });
        frames.push(format!("data: {value}\n\n"));
    }
    frames.push("data: [DONE]\n\n".to_string());
    (frames, terminal)
}

fn openai_json(reply: &Reply, ids: &[String], model: &str, n: u64) -> Value {
    let mut message = json!({
        "role": "assistant",
        "content": if reply.text.is_empty() { Value::Null } else { json!(reply.text) },
    });
    if !reply.tool_calls.is_empty() {
        message["tool_calls"] = reply
            .tool_calls
            .iter()
            .zip(ids)
            .map(|(call, id)| {
                json!({"id": id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}})
            })
            .collect();
    }
    json!({
        "id": format!("chatcmpl-scripted-{n}"),
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(reply, Flavor::OpenAi)}],
        "usage": openai_usage(reply),
    })
}

/// SSE frames of an Anthropic stream and the index of the first terminal frame.
fn anthropic_frames(reply: &Reply, ids: &[String], model: &str, n: u64) -> (Vec<String>, usize) {
    let event = |value: Value| {
        let kind = value.get("type").and_then(Value::as_str).unwrap_or("message").to_string();
        format!("event: {kind}\ndata: {value}\n\n")
    };
    let mut frames = vec![
        event(json!({"type": "message_start", "message": {
            "id": format!("msg_scripted_{n}"), "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": reply.input_tokens, "output_tokens": 1,
                      "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}}})),
        event(json!({"type": "ping"})),
    ];
    let mut index = 0;
    if !reply.text.is_empty() {
        frames.push(event(json!({"type": "content_block_start", "index": index,
                                 "content_block": {"type": "text", "text": ""}})));
        for piece in pieces(&reply.text, 3) {
            frames.push(event(json!({"type": "content_block_delta", "index": index,
                                     "delta": {"type": "text_delta", "text": piece}})));
        }
        frames.push(event(json!({"type": "content_block_stop", "index": index})));
        index += 1;
    }
    for (call, id) in reply.tool_calls.iter().zip(ids) {
        frames.push(event(json!({"type": "content_block_start", "index": index,
                                 "content_block": {"type": "tool_use", "id": id, "name": call.name, "input": {}}})));
        for piece in pieces(&call.arguments, 3) {
            frames.push(event(json!({"type": "content_block_delta", "index": index,
                                     "delta": {"type": "input_json_delta", "partial_json": piece}})));
        }
        frames.push(event(json!({"type": "content_block_stop", "index": index})));
        index += 1;
    }
    let terminal = frames.len();
    frames.push(event(json!({"type": "message_delta",
                             "delta": {"stop_reason": finish_reason(reply, Flavor::Anthropic), "stop_sequence": null},
                             "usage": {"output_tokens": reply.output_tokens}})));
    frames.push(event(json!({"type": "message_stop"})));
    (frames, terminal)
}

fn anthropic_json(reply: &Reply, ids: &[String], model: &str, n: u64) -> Value {
    let mut content = Vec::new();
    if !reply.text.is_empty() {
        content.push(json!({"type": "text", "text": reply.text}));
    }
    for (call, id) in reply.tool_calls.iter().zip(ids) {
        let input = match serde_json::from_str::<Value>(&call.arguments) {
            Ok(value @ Value::Object(_)) => value,
            _ if call.arguments.trim().is_empty() => json!({}),
            _ => Value::String(call.arguments.clone()),
        };
        content.push(json!({"type": "tool_use", "id": id, "name": call.name, "input": input}));
    }
    json!({
        "id": format!("msg_scripted_{n}"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": finish_reason(reply, Flavor::Anthropic),
        "stop_sequence": null,
        "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens,
                  "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_parse_with_defaults() {
        let steps = parse_script(
            r#"[
                {"reply": {"text": "hi", "tool_calls": [{"name": "bash", "arguments": {"command": "ls"}},
                                                         {"name": "edit", "arguments": "{\"path\": "}]}},
                {"status": {"code": 429, "retry_after": 1}},
                {"cut_stream": {"text": "partial"}},
                {"delay": {"millis": 5, "then": {"reply": {}}}}
            ]"#,
        )
        .unwrap();
        let Step::Reply(reply) = &steps[0] else { panic!("{steps:?}") };
        assert_eq!(reply.tool_calls[0].arguments, r#"{"command":"ls"}"#);
        assert_eq!(reply.tool_calls[1].arguments, r#"{"path": "#);
        assert_eq!((reply.input_tokens, reply.output_tokens), (100, 20));
        assert_eq!(steps[1], Step::Status { code: 429, retry_after: Some(1), body: String::new() });
        assert!(matches!(&steps[3], Step::Delay { millis: 5, then } if **then == Step::Reply(Reply::text(""))));
        let round_trip = parse_script(&serde_json::to_string(&steps).unwrap()).unwrap();
        assert_eq!(round_trip, steps);
    }

    #[test]
    fn pieces_split_on_char_boundaries() {
        assert_eq!(pieces("héllo wörld", 3).concat(), "héllo wörld");
        assert_eq!(pieces("héllo wörld", 3).len(), 3);
        assert_eq!(pieces("{}", 3).len(), 2);
        assert!(pieces("", 3).is_empty());
    }

    #[test]
    fn convenience_constructors() {
        let reply = Reply::call("bash", r#"{"command": "ls"}"#).with_text("Looking.").with_call("view", "{}");
        assert_eq!(reply.text, "Looking.");
        assert_eq!(reply.tool_calls.len(), 2);
        assert_eq!(reply.with_tokens(5, 6).output_tokens, 6);
    }

    /// A POST over a plain socket; returns the status line, headers and body.
    fn post(addr: &str, path: &str, body: &str) -> String {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    }

    #[test]
    fn blocking_server_answers_json_sse_and_exhaustion() {
        let server = ScriptedServer::start_blocking(
            Flavor::Anthropic,
            vec![
                Step::Reply(Reply::call("bash", r#"{"command": "ls"}"#).with_text("hi")),
                Step::Reply(Reply::text("streamed")),
                Step::Status { code: 503, retry_after: Some(2), body: String::new() },
            ],
        );
        let addr = server.base_url().trim_start_matches("http://").to_string();
        let response = post(&addr, "/v1/messages", r#"{"model": "m", "stream": false}"#);
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        let body: Value = serde_json::from_str(response.split_once("\r\n\r\n").unwrap().1).unwrap();
        assert_eq!(body["content"][1]["input"], json!({"command": "ls"}));
        assert_eq!(body["content"][1]["id"], "call_1");

        let response = post(&addr, "/v1/messages", r#"{"model": "m", "stream": true}"#);
        assert!(response.contains("text/event-stream"), "{response}");
        for event in ["message_start", "content_block_start", "content_block_delta", "message_delta", "message_stop"] {
            assert!(response.contains(&format!("event: {event}")), "{event} missing: {response}");
        }

        let response = post(&addr, "/v1/messages", "{}");
        assert!(response.starts_with("HTTP/1.1 503") && response.to_ascii_lowercase().contains("retry-after: 2"));
        let response = post(&addr, "/v1/messages", "{}");
        assert!(response.starts_with("HTTP/1.1 500") && response.contains("script exhausted"), "{response}");
        assert_eq!(server.requests().len(), 4);
        assert_eq!(server.requests()[0]["model"], "m");
        assert_eq!(server.remaining(), 0);
    }

    #[tokio::test]
    async fn openai_sse_splits_text_and_arguments() {
        let server =
            ScriptedServer::start(Flavor::OpenAi, vec![Step::Reply(Reply::call("view", r#"{"path": "a.py"}"#))]).await;
        assert!(server.base_url().ends_with("/v1"));
        let addr = server.base_url().trim_start_matches("http://").trim_end_matches("/v1").to_string();
        let response = tokio::task::spawn_blocking(move || {
            post(&addr, "/v1/chat/completions", r#"{"stream": true, "stream_options": {"include_usage": true}}"#)
        })
        .await
        .unwrap();
        let pieces = response.matches("\"arguments\":").count();
        assert!(pieces >= 3, "name chunk plus 2+ argument pieces: {response}");
        assert!(response.contains("\"finish_reason\":\"tool_calls\""));
        assert!(response.contains("\"prompt_tokens\":100"));
        assert!(response.contains("data: [DONE]"), "{response}");
    }
}
