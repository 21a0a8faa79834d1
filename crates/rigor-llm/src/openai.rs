//! OpenAI-compatible Chat Completions (`POST {base_url}/chat/completions`), streamed.
//!
//! Works with OpenAI, vLLM, llama.cpp's server, Ollama, OpenRouter and rigor's own model server.
//! Servers that ignore `stream_options` (no usage) or `stream` (a plain JSON body) are tolerated.

use async_trait::async_trait;
use rigor_protocol::{Message, Role, ToolCall, Usage};
use serde_json::{Map, Value, json};

use crate::http::{build_client, check_base_url, check_key, is_json, read_json, send};
use crate::retry::{self, AttemptError, KeyHint};
use crate::sse::SseStream;
use crate::{ChatRequest, ChatResponse, Provider, ProviderConfig, ProviderError, StreamEvent, StreamSink};

const KEY: KeyHint = KeyHint { env_var: "OPENAI_API_KEY" };

/// Request header by which a client asks an OpenAI-compatible server for prompt-processing
/// progress (value [`PREFILL_PROGRESS_VALUE`]). `rigor model serve` honours it; other servers
/// ignore an unknown header, and clients that do not send it never see the extra events.
pub const PROGRESS_HEADER: &str = "x-rigor-progress";

/// Value of [`PROGRESS_HEADER`] asking for prefill progress.
pub const PREFILL_PROGRESS_VALUE: &str = "prefill";

/// Name of the server-sent event that carries prefill progress in a streamed reply: its data is
/// `{"processed": N, "total": M, "elapsed_ms": T}` (new prompt tokens processed of those not
/// reused from the server's cache, milliseconds since prompt processing began). Named events are
/// not `message` events, so SSE clients that do not know it skip it.
pub const PREFILL_EVENT: &str = "rigor.prefill";

/// The prefill progress an event named [`PREFILL_EVENT`] carries, if its data is well formed.
pub fn prefill_progress(data: &str) -> Option<StreamEvent> {
    let value: Value = serde_json::from_str(data).ok()?;
    Some(StreamEvent::Prefill {
        processed: value.get("processed")?.as_u64()?,
        total: value.get("total")?.as_u64()?,
        elapsed: std::time::Duration::from_millis(value.get("elapsed_ms").and_then(Value::as_u64).unwrap_or(0)),
    })
}

/// A model behind an OpenAI-compatible `/chat/completions` endpoint.
pub struct OpenAiProvider {
    config: ProviderConfig,
    client: reqwest::Client,
    url: String,
}

impl OpenAiProvider {
    /// Builds the provider; fails when `base_url` is not an http(s) URL.
    pub fn new(config: ProviderConfig) -> Result<Self, ProviderError> {
        check_base_url(&config)?;
        check_key(&config, "api.openai.com", KEY.env_var)?;
        let client = build_client(&config)?;
        let base = config.base_url.trim().trim_end_matches('/');
        let url =
            if base.ends_with("/chat/completions") { base.to_string() } else { format!("{base}/chat/completions") };
        Ok(Self { config, client, url })
    }

    /// The JSON body sent for `request`.
    pub fn request_body(&self, request: &ChatRequest) -> Value {
        let mut body = Map::new();
        body.insert("model".into(), json!(self.config.model));
        body.insert("messages".into(), Value::Array(request.messages.iter().map(message_json).collect()));
        body.insert("stream".into(), json!(true));
        body.insert("stream_options".into(), json!({"include_usage": true}));
        if !request.tools.is_empty() {
            let tools = request
                .tools
                .iter()
                .map(|t| {
                    json!({"type": "function", "function": {
                        "name": t.name, "description": t.description, "parameters": t.parameters}})
                })
                .collect();
            body.insert("tools".into(), Value::Array(tools));
        }
        let reasoning = is_reasoning_model(&self.config.model);
        if let Some(max) = request.max_output_tokens {
            // OpenAI's reasoning models refuse `max_tokens`.
            let key = if reasoning { "max_completion_tokens" } else { "max_tokens" };
            body.insert(key.into(), json!(max));
        }
        if let Some(temperature) = request.temperature {
            if reasoning {
                tracing::debug!(model = %self.config.model, "temperature not sent: the model accepts only the default");
            } else {
                body.insert("temperature".into(), json!(temperature));
            }
        }
        Value::Object(body)
    }

    async fn attempt(&self, body: &Value, sink: StreamSink<'_>) -> Result<ChatResponse, AttemptError> {
        let provider = self.id();
        let mut request = self.client.post(&self.url).header(PROGRESS_HEADER, PREFILL_PROGRESS_VALUE).json(body);
        if let Some(key) = self.config.api_key.as_deref().filter(|k| !k.is_empty()) {
            request = request.bearer_auth(key);
        }
        let response = send(request, &self.url, &provider, KEY).await?;
        let mut assembly = Assembly::default();
        if is_json(&response) {
            let value = read_json(response, &self.url).await?;
            assembly.apply_complete(&value, sink)?;
        } else {
            let mut events = SseStream::new(response);
            loop {
                let event = match events.next().await {
                    Ok(Some(event)) => event,
                    Ok(None) if assembly.finish_reason.is_some() => break,
                    Ok(None) => return Err(AttemptError::cut("no finish_reason and no [DONE]")),
                    // A server that drops the connection after the finish chunk lost nothing we need.
                    Err(_) if assembly.finish_reason.is_some() => break,
                    Err(err) => return Err(err),
                };
                let data = event.data.trim();
                if event.event == PREFILL_EVENT {
                    // Progress only: a malformed one is not worth failing the call over.
                    if let Some(progress) = prefill_progress(data) {
                        sink(progress);
                    }
                    continue;
                }
                if data == "[DONE]" {
                    break;
                }
                if data.is_empty() {
                    continue;
                }
                let chunk: Value = serde_json::from_str(data).map_err(|err| {
                    AttemptError::retryable(format!("undecodable stream chunk ({err}): {}", retry::one_line(data, 300)))
                })?;
                assembly.apply_chunk(&chunk, sink)?;
            }
        }
        Ok(assembly.finish(&self.config))
    }
}

/// Models that take `max_completion_tokens` and no temperature.
fn is_reasoning_model(model: &str) -> bool {
    let name = model.rsplit('/').next().unwrap_or(model).to_ascii_lowercase();
    ["o1", "o3", "o4", "gpt-5"].iter().any(|p| name == *p || name.starts_with(&format!("{p}-")))
}

/// One message in the OpenAI format.
fn message_json(message: &Message) -> Value {
    match message.role {
        Role::System => json!({"role": "system", "content": message.content}),
        Role::User => json!({"role": "user", "content": message.content}),
        Role::Assistant => {
            if message.tool_calls.is_empty() {
                json!({"role": "assistant", "content": message.content})
            } else {
                let calls: Vec<Value> = message
                    .tool_calls
                    .iter()
                    .map(|c| {
                        json!({"id": c.id, "type": "function",
                               "function": {"name": c.name, "arguments": c.arguments}})
                    })
                    .collect();
                let content = if message.content.is_empty() { Value::Null } else { json!(message.content) };
                json!({"role": "assistant", "content": content, "tool_calls": calls})
            }
        }
        Role::Tool => json!({
            "role": "tool",
            "tool_call_id": message.tool_call_id.clone().unwrap_or_default(),
            "content": message.content,
        }),
    }
}

/// A tool call being assembled from deltas.
#[derive(Debug, Default)]
struct PartialCall {
    index: Option<u64>,
    id: String,
    name: String,
    arguments: String,
}

/// The answer being assembled from stream chunks (or a whole JSON body).
#[derive(Debug, Default)]
struct Assembly {
    text: String,
    calls: Vec<PartialCall>,
    finish_reason: Option<String>,
    usage: Usage,
}

impl Assembly {
    fn apply_chunk(&mut self, chunk: &Value, sink: StreamSink<'_>) -> Result<(), AttemptError> {
        if let Some(error) = chunk.get("error").filter(|e| !e.is_null()) {
            let message = error.get("message").and_then(Value::as_str).map(str::to_string);
            return Err(AttemptError::retryable(format!(
                "the server reported an error mid-stream: {}",
                message.unwrap_or_else(|| retry::one_line(&error.to_string(), 300))
            )));
        }
        self.apply_usage(chunk);
        let Some(choice) = chunk.get("choices").and_then(Value::as_array).and_then(|c| c.first()) else {
            return Ok(());
        };
        if let Some(delta) = choice.get("delta") {
            if let Some(text) = delta.get("content").and_then(Value::as_str).filter(|t| !t.is_empty()) {
                self.text.push_str(text);
                sink(StreamEvent::Text(text.to_string()));
            }
            for call in delta.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
                self.apply_call_delta(call);
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_string());
        }
        Ok(())
    }

    fn apply_call_delta(&mut self, delta: &Value) {
        let index = delta.get("index").and_then(Value::as_u64);
        let id = delta.get("id").and_then(Value::as_str).unwrap_or("");
        let position = match index {
            Some(i) => self.calls.iter().position(|c| c.index == Some(i)),
            // No index: a new id starts a new call, anything else continues the last one.
            None => match self.calls.last() {
                Some(last) if id.is_empty() || last.id == id => Some(self.calls.len() - 1),
                _ => None,
            },
        };
        let position = position.unwrap_or_else(|| {
            self.calls.push(PartialCall { index, ..PartialCall::default() });
            self.calls.len() - 1
        });
        let call = &mut self.calls[position];
        if call.id.is_empty() && !id.is_empty() {
            call.id = id.to_string();
        }
        let function = delta.get("function");
        if let Some(name) = function.and_then(|f| f.get("name")).and_then(Value::as_str) {
            if call.name.is_empty() {
                call.name = name.to_string();
            } else if call.name != name {
                call.name.push_str(name);
            }
        }
        match function.and_then(|f| f.get("arguments")) {
            Some(Value::String(piece)) => call.arguments.push_str(piece),
            Some(Value::Null) | None => {}
            Some(other) => call.arguments = other.to_string(),
        }
    }

    fn apply_usage(&mut self, value: &Value) {
        let Some(usage) = value.get("usage").filter(|u| u.is_object()) else { return };
        let number = |v: Option<&Value>| v.and_then(Value::as_u64);
        if let Some(n) = number(usage.get("prompt_tokens")) {
            self.usage.input_tokens = n;
        }
        if let Some(n) = number(usage.get("completion_tokens")) {
            self.usage.output_tokens = n;
        }
        if let Some(n) = number(usage.pointer("/prompt_tokens_details/cached_tokens")) {
            self.usage.cached_input_tokens = n;
        }
    }

    /// A non-streaming `chat.completion` body.
    fn apply_complete(&mut self, value: &Value, sink: StreamSink<'_>) -> Result<(), AttemptError> {
        if value.get("error").is_some_and(|e| !e.is_null()) {
            return self.apply_chunk(value, sink);
        }
        self.apply_usage(value);
        let choice = value.get("choices").and_then(Value::as_array).and_then(|c| c.first()).ok_or_else(|| {
            AttemptError::retryable(format!(
                "the JSON response has no choices: {}",
                retry::one_line(&value.to_string(), 300)
            ))
        })?;
        let message = choice.get("message").cloned().unwrap_or(Value::Null);
        let text = match message.get("content") {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Array(parts)) => parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect(),
            _ => String::new(),
        };
        if !text.is_empty() {
            sink(StreamEvent::Text(text.clone()));
        }
        self.text = text;
        for (i, call) in message.get("tool_calls").and_then(Value::as_array).into_iter().flatten().enumerate() {
            let mut call = call.clone();
            if let Some(map) = call.as_object_mut() {
                map.entry("index").or_insert(json!(i));
            }
            self.apply_call_delta(&call);
        }
        self.finish_reason = choice.get("finish_reason").and_then(Value::as_str).map(str::to_string);
        Ok(())
    }

    fn finish(self, config: &ProviderConfig) -> ChatResponse {
        let calls: Vec<ToolCall> = self
            .calls
            .into_iter()
            .filter(|c| !(c.name.is_empty() && c.arguments.is_empty()))
            .enumerate()
            .map(|(i, c)| ToolCall {
                id: if c.id.is_empty() { format!("call_{i}") } else { c.id },
                name: c.name,
                arguments: if c.arguments.trim().is_empty() { "{}".to_string() } else { c.arguments },
            })
            .collect();
        let finish_reason = self
            .finish_reason
            .unwrap_or_else(|| if calls.is_empty() { "stop".to_string() } else { "tool_calls".to_string() });
        let cost_usd = config.pricing.map(|p| p.cost(&self.usage)).unwrap_or(0.0);
        ChatResponse {
            message: Message::assistant(self.text, calls),
            usage: self.usage,
            cost_usd,
            finish_reason: finish_reason.into(),
        }
    }
}

#[async_trait]
impl Provider for OpenAiProvider {
    fn id(&self) -> String {
        format!("{}:{}", self.config.name, self.config.model)
    }

    fn context_window(&self) -> u64 {
        self.config.context_window
    }

    async fn chat(&self, request: &ChatRequest, sink: StreamSink<'_>) -> Result<ChatResponse, ProviderError> {
        let body = self.request_body(request);
        let provider = self.id();
        let (this, body) = (self, &body);
        retry::run(&self.config.retry, &provider, self.config.request_timeout, sink, move || this.attempt(body, sink))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn chunks(assembly: &mut Assembly, chunks: &[Value]) -> Vec<String> {
        let texts = Mutex::new(Vec::new());
        let sink = |e: StreamEvent| {
            if let StreamEvent::Text(t) = e {
                texts.lock().unwrap().push(t);
            }
        };
        for chunk in chunks {
            assembly.apply_chunk(chunk, &sink).unwrap();
        }
        texts.into_inner().unwrap()
    }

    fn config() -> ProviderConfig {
        crate::http::test_config(crate::ProviderKind::OpenAi)
    }

    #[test]
    fn tool_calls_assemble_by_index_and_usage_may_be_missing() {
        let mut a = Assembly::default();
        let texts = chunks(
            &mut a,
            &[
                json!({"choices": [{"delta": {"role": "assistant", "content": "Hel"}}]}),
                json!({"choices": [{"delta": {"content": "lo"}}]}),
                json!({"choices": [{"delta": {"tool_calls": [
                    {"index": 0, "id": "a", "type": "function", "function": {"name": "bash", "arguments": ""}}]}}]}),
                json!({"choices": [{"delta": {"tool_calls": [
                    {"index": 1, "id": "b", "function": {"name": "view", "arguments": "{\"pa"}}]}}]}),
                json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"command\""}}]}}]}),
                json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": ": \"ls\"}"}}]}}]}),
                json!({"choices": [{"delta": {"tool_calls": [{"index": 1, "function": {"arguments": "th\": \"x\"}"}}]}}]}),
                json!({"choices": [{"delta": {}, "finish_reason": "tool_calls"}]}),
            ],
        );
        assert_eq!(texts, vec!["Hel", "lo"]);
        let response = a.finish(&config());
        assert_eq!(response.message.content, "Hello");
        assert_eq!(response.message.tool_calls.len(), 2);
        assert_eq!(response.message.tool_calls[0].arguments, "{\"command\": \"ls\"}");
        assert_eq!(response.message.tool_calls[1].name, "view");
        assert_eq!(response.message.tool_calls[1].id, "b");
        assert_eq!(response.usage, Usage::default());
        assert_eq!(response.finish_reason, rigor_protocol::FinishReason::ToolCalls);
    }

    #[test]
    fn calls_without_index_or_id_still_assemble() {
        let mut a = Assembly::default();
        chunks(
            &mut a,
            &[
                json!({"choices": [{"delta": {"tool_calls": [{"function": {"name": "bash"}}]}}]}),
                json!({"choices": [{"delta": {"tool_calls": [{"function": {"arguments": {"command": "ls"}}}]}}]}),
                json!({"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 3,
                       "prompt_tokens_details": {"cached_tokens": 4}}}),
            ],
        );
        let response = a.finish(&config());
        assert_eq!(response.message.tool_calls[0].id, "call_0");
        assert_eq!(response.message.tool_calls[0].arguments, "{\"command\":\"ls\"}");
        assert_eq!(response.usage, Usage { input_tokens: 10, output_tokens: 3, cached_input_tokens: 4 });
    }

    #[test]
    fn complete_json_bodies_are_understood() {
        let mut a = Assembly::default();
        let sink = |_e: StreamEvent| {};
        a.apply_complete(
            &json!({"choices": [{"message": {"role": "assistant", "content": null, "tool_calls": [
                {"id": "x", "type": "function", "function": {"name": "bash", "arguments": "{}"}}]},
                "finish_reason": "tool_calls"}], "usage": {"prompt_tokens": 5, "completion_tokens": 2}}),
            &sink,
        )
        .unwrap();
        let response = a.finish(&config());
        assert_eq!(response.message.tool_calls[0].name, "bash");
        assert_eq!(response.usage.input_tokens, 5);
    }

    #[test]
    fn request_body_shape() {
        let provider = OpenAiProvider::new(config()).unwrap();
        let request = ChatRequest {
            messages: vec![
                Message::system("sys"),
                Message::user("hi"),
                Message::assistant(
                    "",
                    vec![ToolCall { id: "c1".into(), name: "bash".into(), arguments: "{\"command\":\"ls\"}".into() }],
                ),
                Message::tool_result("c1", "out", false),
            ],
            tools: vec![],
            max_output_tokens: Some(100),
            temperature: Some(0.5),
        };
        let body = provider.request_body(&request);
        assert!(body.get("tools").is_none());
        assert_eq!(body["max_tokens"], 100);
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(body["messages"][2]["content"], Value::Null);
        assert_eq!(body["messages"][2]["tool_calls"][0]["function"]["name"], "bash");
        assert_eq!(body["messages"][3]["tool_call_id"], "c1");
        assert!(is_reasoning_model("o3-mini") && is_reasoning_model("openai/gpt-5") && !is_reasoning_model("gpt-4o"));
    }
}
