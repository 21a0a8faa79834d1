//! Anthropic Messages (`POST {base_url}/v1/messages`), streamed.
//!
//! The system prompt goes in the top-level `system` field, tool calls are `tool_use` blocks and
//! tool results `tool_result` blocks inside user messages (consecutive results merged into one
//! message, as the API requires). The last content block carries a prompt-cache breakpoint, so
//! an agent loop that resends a growing conversation pays the cached price for its prefix.

use async_trait::async_trait;
use rigor_protocol::{Message, Role, ToolCall, Usage};
use serde_json::{Map, Value, json};

use crate::http::{build_client, check_base_url, check_key, is_json, read_json, send};
use crate::retry::{self, AttemptError, KeyHint};
use crate::sse::SseStream;
use crate::{ChatRequest, ChatResponse, Provider, ProviderConfig, ProviderError, StreamEvent, StreamSink};

const KEY: KeyHint = KeyHint { env_var: "ANTHROPIC_API_KEY" };

/// The default endpoint.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The API version sent in `anthropic-version`.
pub const API_VERSION: &str = "2023-06-01";
/// `max_tokens` when the request sets none (the API requires one).
pub const DEFAULT_MAX_TOKENS: u32 = 8192;

/// A Claude model behind the Anthropic Messages API.
pub struct AnthropicProvider {
    config: ProviderConfig,
    client: reqwest::Client,
    url: String,
}

impl AnthropicProvider {
    /// Builds the provider; an empty `base_url` means [`DEFAULT_BASE_URL`].
    pub fn new(mut config: ProviderConfig) -> Result<Self, ProviderError> {
        if config.base_url.trim().is_empty() {
            config.base_url = DEFAULT_BASE_URL.to_string();
        }
        check_base_url(&config)?;
        check_key(&config, "api.anthropic.com", KEY.env_var)?;
        let client = build_client(&config)?;
        let base = config.base_url.trim().trim_end_matches('/');
        let url = if base.ends_with("/v1/messages") {
            base.to_string()
        } else if base.ends_with("/v1") {
            format!("{base}/messages")
        } else {
            format!("{base}/v1/messages")
        };
        Ok(Self { config, client, url })
    }

    /// The JSON body sent for `request`.
    pub fn request_body(&self, request: &ChatRequest) -> Value {
        let mut body = Map::new();
        body.insert("model".into(), json!(self.config.model));
        body.insert("max_tokens".into(), json!(request.max_output_tokens.unwrap_or(DEFAULT_MAX_TOKENS)));
        body.insert("stream".into(), json!(true));
        let system: Vec<&str> = request
            .messages
            .iter()
            .filter(|m| m.role == Role::System && !m.content.trim().is_empty())
            .map(|m| m.content.as_str())
            .collect();
        if !system.is_empty() {
            body.insert("system".into(), json!(system.join("\n\n")));
        }
        body.insert("messages".into(), Value::Array(messages_json(&request.messages)));
        if !request.tools.is_empty() {
            let tools = request
                .tools
                .iter()
                .map(|t| {
                    let schema = if t.parameters.is_object() {
                        t.parameters.clone()
                    } else {
                        json!({"type": "object", "properties": {}})
                    };
                    json!({"name": t.name, "description": t.description, "input_schema": schema})
                })
                .collect();
            body.insert("tools".into(), Value::Array(tools));
        }
        if let Some(temperature) = request.temperature {
            body.insert("temperature".into(), json!(temperature.clamp(0.0, 1.0)));
        }
        Value::Object(body)
    }

    async fn attempt(&self, body: &Value, sink: StreamSink<'_>) -> Result<ChatResponse, AttemptError> {
        let provider = self.id();
        let mut request = self.client.post(&self.url).header("anthropic-version", API_VERSION).json(body);
        if let Some(key) = self.config.api_key.as_deref().filter(|k| !k.is_empty()) {
            request = request.header("x-api-key", key);
        }
        let response = send(request, &self.url, &provider, KEY).await?;
        let mut assembly = Assembly::default();
        if is_json(&response) {
            let value = read_json(response, &self.url).await?;
            assembly.apply_complete(&value, &provider, sink)?;
        } else {
            let mut events = SseStream::new(response);
            while !assembly.stopped {
                let event = match events.next().await {
                    Ok(Some(event)) => event,
                    Ok(None) | Err(_) if assembly.stop_reason.is_some() => break,
                    Ok(None) => return Err(AttemptError::cut("no message_stop")),
                    Err(err) => return Err(err),
                };
                let data = event.data.trim();
                if data.is_empty() {
                    continue;
                }
                let value: Value = serde_json::from_str(data).map_err(|err| {
                    AttemptError::retryable(format!("undecodable stream event ({err}): {}", retry::one_line(data, 300)))
                })?;
                assembly.apply_event(&value, &provider, sink)?;
            }
        }
        Ok(assembly.finish(&self.config))
    }
}

/// Collects the conversation (system messages excluded) into Anthropic messages: consecutive
/// user-side messages (user text and tool results) merge into one, as do consecutive assistant
/// messages. The last block gets a cache breakpoint.
fn messages_json(messages: &[Message]) -> Vec<Value> {
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for message in messages {
        let (role, blocks) = match message.role {
            Role::System => continue,
            Role::User => ("user", text_block(&message.content).into_iter().collect::<Vec<_>>()),
            Role::Tool => {
                let mut block = json!({
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id.clone().unwrap_or_default(),
                    "content": message.content,
                });
                if message.is_error {
                    block["is_error"] = json!(true);
                }
                ("user", vec![block])
            }
            Role::Assistant => {
                let mut blocks: Vec<Value> = text_block(&message.content).into_iter().collect();
                blocks.extend(message.tool_calls.iter().map(tool_use_block));
                ("assistant", blocks)
            }
        };
        match out.last_mut() {
            Some((last_role, last_blocks)) if *last_role == role => last_blocks.extend(blocks),
            _ => out.push((role, blocks)),
        }
    }
    if out.first().is_some_and(|(role, _)| *role == "assistant") {
        out.insert(0, ("user", vec![json!({"type": "text", "text": "(conversation continues)"})]));
    }
    let count = out.len();
    out.into_iter()
        .enumerate()
        .map(|(i, (role, mut blocks))| {
            if blocks.is_empty() {
                blocks.push(json!({"type": "text", "text": "(empty)"}));
            }
            if i + 1 == count {
                if let Some(last) = blocks.last_mut() {
                    last["cache_control"] = json!({"type": "ephemeral"});
                }
                return json!({"role": role, "content": blocks});
            }
            match blocks.as_slice() {
                [single] if single["type"] == "text" => json!({"role": role, "content": single["text"]}),
                _ => json!({"role": role, "content": blocks}),
            }
        })
        .collect()
}

/// A text block, or nothing for blank text (the API rejects blank text blocks).
fn text_block(text: &str) -> Option<Value> {
    (!text.trim().is_empty()).then(|| json!({"type": "text", "text": text}))
}

fn tool_use_block(call: &ToolCall) -> Value {
    // The API needs an object; a malformed call (already reported to the model) becomes `{}`.
    let input = match call.parsed_arguments() {
        Ok(value) => value,
        Err(_) => json!({}),
    };
    json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input})
}

/// One content block being assembled.
#[derive(Debug)]
enum Block {
    Text(String),
    ToolUse { id: String, name: String, json: String, initial: Option<Value> },
    Other,
}

/// The answer being assembled from stream events (or a whole JSON body).
#[derive(Debug, Default)]
struct Assembly {
    blocks: Vec<(u64, Block)>,
    stop_reason: Option<String>,
    stopped: bool,
    input_tokens: u64,
    cache_read: u64,
    cache_creation: u64,
    output_tokens: u64,
}

impl Assembly {
    fn apply_event(&mut self, event: &Value, provider: &str, sink: StreamSink<'_>) -> Result<(), AttemptError> {
        match event.get("type").and_then(Value::as_str).unwrap_or("") {
            "message_start" => {
                if let Some(usage) = event.pointer("/message/usage") {
                    self.apply_usage(usage);
                }
            }
            "content_block_start" => {
                let index = event.get("index").and_then(Value::as_u64).unwrap_or(self.blocks.len() as u64);
                let block = event.get("content_block").cloned().unwrap_or(Value::Null);
                let block = match block.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        let text = block.get("text").and_then(Value::as_str).unwrap_or("").to_string();
                        if !text.is_empty() {
                            sink(StreamEvent::Text(text.clone()));
                        }
                        Block::Text(text)
                    }
                    Some("tool_use") => Block::ToolUse {
                        id: block.get("id").and_then(Value::as_str).unwrap_or("").to_string(),
                        name: block.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
                        json: String::new(),
                        initial: block.get("input").cloned(),
                    },
                    _ => Block::Other,
                };
                self.blocks.push((index, block));
            }
            "content_block_delta" => {
                let index = event.get("index").and_then(Value::as_u64);
                let delta = event.get("delta").cloned().unwrap_or(Value::Null);
                let Some(block) = self.block_mut(index) else { return Ok(()) };
                match (delta.get("type").and_then(Value::as_str), block) {
                    (Some("text_delta"), Block::Text(text)) => {
                        if let Some(piece) = delta.get("text").and_then(Value::as_str) {
                            text.push_str(piece);
                            sink(StreamEvent::Text(piece.to_string()));
                        }
                    }
                    (Some("input_json_delta"), Block::ToolUse { json, .. }) => {
                        json.push_str(delta.get("partial_json").and_then(Value::as_str).unwrap_or(""));
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(reason) = event.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(reason.to_string());
                }
                if let Some(usage) = event.get("usage") {
                    self.apply_usage(usage);
                }
            }
            "message_stop" => self.stopped = true,
            "error" => return Err(stream_error(event, provider)),
            _ => {}
        }
        Ok(())
    }

    fn block_mut(&mut self, index: Option<u64>) -> Option<&mut Block> {
        match index {
            Some(i) => self.blocks.iter_mut().rev().find(|(j, _)| *j == i).map(|(_, b)| b),
            None => self.blocks.last_mut().map(|(_, b)| b),
        }
    }

    fn apply_usage(&mut self, usage: &Value) {
        let number = |key: &str| usage.get(key).and_then(Value::as_u64);
        if let Some(n) = number("input_tokens") {
            self.input_tokens = n;
        }
        if let Some(n) = number("cache_read_input_tokens") {
            self.cache_read = n;
        }
        if let Some(n) = number("cache_creation_input_tokens") {
            self.cache_creation = n;
        }
        if let Some(n) = number("output_tokens") {
            self.output_tokens = n;
        }
    }

    /// A non-streaming `message` body.
    fn apply_complete(&mut self, value: &Value, provider: &str, sink: StreamSink<'_>) -> Result<(), AttemptError> {
        if value.get("type").and_then(Value::as_str) == Some("error") {
            return Err(stream_error(value, provider));
        }
        let content = value.get("content").and_then(Value::as_array).ok_or_else(|| {
            AttemptError::retryable(format!(
                "the JSON response has no content: {}",
                retry::one_line(&value.to_string(), 300)
            ))
        })?;
        for (i, block) in content.iter().enumerate() {
            let block = match block.get("type").and_then(Value::as_str) {
                Some("text") => {
                    let text = block.get("text").and_then(Value::as_str).unwrap_or("").to_string();
                    if !text.is_empty() {
                        sink(StreamEvent::Text(text.clone()));
                    }
                    Block::Text(text)
                }
                Some("tool_use") => Block::ToolUse {
                    id: block.get("id").and_then(Value::as_str).unwrap_or("").to_string(),
                    name: block.get("name").and_then(Value::as_str).unwrap_or("").to_string(),
                    json: String::new(),
                    initial: block.get("input").cloned(),
                },
                _ => Block::Other,
            };
            self.blocks.push((i as u64, block));
        }
        if let Some(usage) = value.get("usage") {
            self.apply_usage(usage);
        }
        self.stop_reason = value.get("stop_reason").and_then(Value::as_str).map(str::to_string);
        self.stopped = true;
        Ok(())
    }

    fn finish(self, config: &ProviderConfig) -> ChatResponse {
        let mut text = String::new();
        let mut calls = Vec::new();
        for (_, block) in self.blocks {
            match block {
                Block::Text(piece) => text.push_str(&piece),
                Block::ToolUse { id, name, json, initial } => {
                    let arguments = if !json.trim().is_empty() {
                        json
                    } else {
                        match initial {
                            Some(Value::String(raw)) if !raw.trim().is_empty() => raw,
                            Some(value @ Value::Object(_)) => value.to_string(),
                            _ => "{}".to_string(),
                        }
                    };
                    let id = if id.is_empty() { format!("toolu_{}", calls.len()) } else { id };
                    calls.push(ToolCall { id, name, arguments });
                }
                Block::Other => {}
            }
        }
        let usage = Usage {
            input_tokens: self.input_tokens + self.cache_read + self.cache_creation,
            output_tokens: self.output_tokens,
            cached_input_tokens: self.cache_read,
        };
        let finish_reason = self
            .stop_reason
            .unwrap_or_else(|| if calls.is_empty() { "end_turn".to_string() } else { "tool_use".to_string() });
        let cost_usd = config.pricing.map(|p| p.cost(&usage)).unwrap_or(0.0);
        ChatResponse { message: Message::assistant(text, calls), usage, cost_usd, finish_reason: finish_reason.into() }
    }
}

/// An `error` event: overloaded, rate-limit, API and timeout errors are retryable.
fn stream_error(event: &Value, provider: &str) -> AttemptError {
    let kind = event.pointer("/error/type").and_then(Value::as_str).unwrap_or("unknown_error");
    let message = event.pointer("/error/message").and_then(Value::as_str).unwrap_or("");
    match kind {
        "overloaded_error" | "api_error" | "rate_limit_error" | "timeout_error" | "unknown_error" => {
            AttemptError::retryable(format!("{kind}: {message} (the provider failed mid-response; try again later)"))
        }
        _ => AttemptError::Fatal(ProviderError::Rejected {
            provider: provider.to_string(),
            status: 400,
            body: format!("{kind}: {}", retry::truncate(message, 2000)),
        }),
    }
}

#[async_trait]
impl Provider for AnthropicProvider {
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

    fn call(id: &str) -> ToolCall {
        ToolCall { id: id.into(), name: "bash".into(), arguments: "{\"command\":\"ls\"}".into() }
    }

    #[test]
    fn tool_results_merge_into_one_user_message() {
        let messages = messages_json(&[
            Message::system("sys"),
            Message::user("fix it"),
            Message::assistant("looking", vec![call("a"), call("b")]),
            Message::tool_result("a", "out a", false),
            Message::tool_result("b", "boom", true),
            Message::assistant("", vec![ToolCall { arguments: "{oops".into(), ..call("c") }]),
            Message::tool_result("c", "", false),
        ]);
        assert_eq!(messages.len(), 5, "{messages:#?}");
        assert_eq!(messages[0], json!({"role": "user", "content": "fix it"}));
        assert_eq!(messages[1]["content"][1]["type"], "tool_use");
        assert_eq!(messages[1]["content"][1]["input"], json!({"command": "ls"}));
        let results = messages[2]["content"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[0]["tool_use_id"], "a");
        assert!(results[0].get("is_error").is_none());
        assert_eq!(results[1]["is_error"], true);
        assert_eq!(messages[3]["content"][0]["input"], json!({}));
        assert_eq!(messages[4]["content"][0]["cache_control"]["type"], "ephemeral");
    }

    #[test]
    fn events_assemble_text_tools_and_usage() {
        let mut a = Assembly::default();
        let sink = |_e: StreamEvent| {};
        let events = [
            json!({"type": "message_start", "message": {"usage": {"input_tokens": 10, "cache_read_input_tokens": 90, "output_tokens": 1}}}),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t1", "name": "view", "input": {}}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"path\":"}}),
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "\"a\"}"}}),
            json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "t2", "name": "submit", "input": {}}}),
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 7}}),
            json!({"type": "message_stop"}),
        ];
        for e in &events {
            a.apply_event(e, "p", &sink).unwrap();
        }
        assert!(a.stopped);
        let mut config = crate::http::test_config(crate::ProviderKind::Anthropic);
        config.pricing =
            Some(crate::Pricing { input_per_mtok: 1.0, output_per_mtok: 1.0, cached_input_per_mtok: None });
        let r = a.finish(&config);
        assert_eq!(r.message.content, "Hi");
        assert_eq!(r.message.tool_calls[0].arguments, "{\"path\":\"a\"}");
        assert_eq!(r.message.tool_calls[1].arguments, "{}");
        assert_eq!(r.usage, Usage { input_tokens: 100, output_tokens: 7, cached_input_tokens: 90 });
        assert_eq!(r.finish_reason, rigor_protocol::FinishReason::ToolCalls, "tool_use, normalised");
        assert!((r.cost_usd - 107.0 / 1e6).abs() < 1e-12);
    }

    #[test]
    fn overloaded_errors_are_retryable_others_not() {
        let overloaded = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        assert!(matches!(stream_error(&overloaded, "p"), AttemptError::Retryable { .. }));
        let invalid = json!({"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}});
        assert!(matches!(stream_error(&invalid, "p"), AttemptError::Fatal(_)));
    }
}
