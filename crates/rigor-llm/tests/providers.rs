//! Providers against the scripted server: streaming round trips, usage and cost, retries.

// Helpers outside `#[test]` functions panic on purpose too.
#![allow(clippy::unwrap_used)]

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rigor_llm::{
    ChatRequest, ChatResponse, Pricing, Provider, ProviderConfig, ProviderError, ProviderKind, RetryPolicy,
    StreamEvent, build_provider,
};
use rigor_protocol::{Message, ToolCall, ToolSpec};
use rigor_test_support::server::{Flavor, Reply, ScriptedServer, Step};
use serde_json::{Value, json};

fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy { max_attempts, initial_backoff: Duration::from_millis(10), max_backoff: Duration::from_secs(2) }
}

fn config(server: &ScriptedServer, flavor: Flavor) -> ProviderConfig {
    let (name, kind, model) = match flavor {
        Flavor::OpenAi => ("openai", ProviderKind::OpenAi, "gpt-4o"),
        Flavor::Anthropic => ("anthropic", ProviderKind::Anthropic, "claude-sonnet-4-5"),
    };
    ProviderConfig {
        name: name.into(),
        kind,
        base_url: server.base_url(),
        api_key: Some("test-key".into()),
        model: model.into(),
        context_window: 100_000,
        pricing: Some(Pricing { input_per_mtok: 2.0, output_per_mtok: 10.0, cached_input_per_mtok: None }),
        text_actions: false,
        retry: fast_retry(3),
        request_timeout: Duration::from_secs(5),
    }
}

fn tools() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: "bash".into(),
            description: "Run a shell command.".into(),
            parameters: json!({"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}),
        },
        ToolSpec {
            name: "view".into(),
            description: "Show a file.".into(),
            parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}),
        },
    ]
}

fn request(messages: Vec<Message>) -> ChatRequest {
    ChatRequest { messages, tools: tools(), max_output_tokens: Some(1000), temperature: Some(0.0) }
}

fn first_turn() -> ChatRequest {
    request(vec![Message::system("You are rigor."), Message::user("Fix calc.py")])
}

/// A conversation with one assistant turn calling two tools and their two results.
fn later_turn() -> ChatRequest {
    let calls = vec![
        ToolCall { id: "call_a".into(), name: "view".into(), arguments: r#"{"path":"calc.py"}"#.into() },
        ToolCall { id: "call_b".into(), name: "bash".into(), arguments: r#"{"command":"pytest"}"#.into() },
    ];
    request(vec![
        Message::system("You are rigor."),
        Message::user("Fix calc.py"),
        Message::assistant("Looking.", calls),
        Message::tool_result("call_a", "def add(a, b): return a - b", false),
        Message::tool_result("call_b", "1 failed", true),
    ])
}

/// Runs a chat, collecting the stream events.
async fn chat(
    provider: &dyn Provider,
    request: &ChatRequest,
) -> (Result<ChatResponse, ProviderError>, Vec<StreamEvent>) {
    let events = Mutex::new(Vec::new());
    let sink = |event: StreamEvent| events.lock().unwrap().push(event);
    let result = provider.chat(request, &sink).await;
    (result, events.into_inner().unwrap())
}

fn texts(events: &[StreamEvent]) -> Vec<String> {
    events.iter().filter_map(|e| if let StreamEvent::Text(t) = e { Some(t.clone()) } else { None }).collect()
}

fn retries(events: &[StreamEvent]) -> Vec<(u32, Duration, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Retry { attempt, wait, reason } => Some((*attempt, *wait, reason.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn openai_streams_text_and_tool_calls() {
    let server = ScriptedServer::start(
        Flavor::OpenAi,
        vec![
            Step::Reply(
                Reply::call("bash", r#"{"command": "python -m pytest -q"}"#)
                    .with_text("Let me run the tests.")
                    .with_call("view", r#"{"path": "calc.py"}"#)
                    .with_tokens(1200, 80),
            ),
            Step::Reply(Reply::text("All green.")),
        ],
    )
    .await;
    let provider = build_provider(config(&server, Flavor::OpenAi)).unwrap();
    assert_eq!(provider.id(), "openai:gpt-4o");
    assert_eq!(provider.context_window(), 100_000);

    let (result, events) = chat(provider.as_ref(), &first_turn()).await;
    let response = result.unwrap();
    assert!(texts(&events).len() >= 2, "text should arrive in several deltas: {events:?}");
    assert_eq!(texts(&events).concat(), "Let me run the tests.");
    assert_eq!(response.message.content, "Let me run the tests.");
    let calls = &response.message.tool_calls;
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].name, "bash");
    assert_eq!(calls[0].parsed_arguments().unwrap(), json!({"command": "python -m pytest -q"}));
    assert_eq!(calls[1].name, "view");
    assert_ne!(calls[0].id, calls[1].id);
    assert_eq!(response.finish_reason, rigor_protocol::FinishReason::ToolCalls);
    assert_eq!((response.usage.input_tokens, response.usage.output_tokens), (1200, 80));
    assert!((response.cost_usd - (1200.0 * 2.0 + 80.0 * 10.0) / 1e6).abs() < 1e-12, "{}", response.cost_usd);

    let (result, _) = chat(provider.as_ref(), &later_turn()).await;
    assert_eq!(result.unwrap().message.content, "All green.");

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    let first = &requests[0];
    assert_eq!(first["model"], "gpt-4o");
    assert_eq!(first["stream"], true);
    assert_eq!(first["stream_options"]["include_usage"], true);
    assert_eq!(first["max_tokens"], 1000);
    assert_eq!(
        first["tools"][0],
        json!({"type": "function", "function": {
        "name": "bash", "description": "Run a shell command.", "parameters": tools()[0].parameters}})
    );
    assert_eq!(first["messages"][0], json!({"role": "system", "content": "You are rigor."}));
    let second = &requests[1]["messages"];
    assert_eq!(
        second[2]["tool_calls"][1],
        json!({"id": "call_b", "type": "function",
        "function": {"name": "bash", "arguments": r#"{"command":"pytest"}"#}})
    );
    assert_eq!(second[3], json!({"role": "tool", "tool_call_id": "call_a", "content": "def add(a, b): return a - b"}));
    assert_eq!(second[4]["tool_call_id"], "call_b");
    assert_eq!(server.remaining(), 0);
}

#[tokio::test]
async fn openai_without_tools_omits_them() {
    let server = ScriptedServer::start(Flavor::OpenAi, vec![Step::Reply(Reply::text("hello"))]).await;
    let provider = build_provider(config(&server, Flavor::OpenAi)).unwrap();
    let mut req = first_turn();
    req.tools.clear();
    let (result, events) = chat(provider.as_ref(), &req).await;
    assert_eq!(result.unwrap().message.content, "hello");
    assert_eq!(texts(&events).concat(), "hello");
    assert!(server.requests()[0].get("tools").is_none());
}

#[tokio::test]
async fn anthropic_streams_text_and_tool_calls() {
    let server = ScriptedServer::start(
        Flavor::Anthropic,
        vec![
            Step::Reply(
                Reply::call("view", r#"{"path": "calc.py"}"#).with_text("Looking at the file.").with_tokens(3000, 50),
            ),
            Step::Reply(Reply::call("bash", "")),
        ],
    )
    .await;
    let provider = build_provider(config(&server, Flavor::Anthropic)).unwrap();
    assert_eq!(provider.id(), "anthropic:claude-sonnet-4-5");

    let (result, events) = chat(provider.as_ref(), &first_turn()).await;
    let response = result.unwrap();
    assert!(texts(&events).len() >= 2, "{events:?}");
    assert_eq!(response.message.content, "Looking at the file.");
    assert_eq!(response.message.tool_calls[0].name, "view");
    assert_eq!(response.message.tool_calls[0].arguments, r#"{"path": "calc.py"}"#);
    assert_eq!(response.finish_reason, rigor_protocol::FinishReason::ToolCalls, "tool_use, normalised");
    assert_eq!((response.usage.input_tokens, response.usage.output_tokens), (3000, 50));
    assert!((response.cost_usd - (3000.0 * 2.0 + 50.0 * 10.0) / 1e6).abs() < 1e-12);

    // An empty tool input becomes `{}`.
    let (result, _) = chat(provider.as_ref(), &later_turn()).await;
    assert_eq!(result.unwrap().message.tool_calls[0].arguments, "{}");

    let requests = server.requests();
    let first = &requests[0];
    assert_eq!(first["system"], "You are rigor.");
    assert_eq!(first["max_tokens"], 1000);
    assert_eq!(first["stream"], true);
    assert_eq!(
        first["tools"][1],
        json!({"name": "view", "description": "Show a file.",
        "input_schema": tools()[1].parameters})
    );
    assert!(first["messages"].as_array().unwrap().iter().all(|m| m["role"] != "system"));
    let messages = requests[1]["messages"].as_array().unwrap().clone();
    assert_eq!(messages.len(), 3, "{messages:#?}");
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(messages[1]["content"][0], json!({"type": "text", "text": "Looking."}));
    assert_eq!(
        messages[1]["content"][1],
        json!({"type": "tool_use", "id": "call_a", "name": "view",
        "input": {"path": "calc.py"}})
    );
    // Both tool results in ONE user message, errors flagged.
    assert_eq!(messages[2]["role"], "user");
    let results = messages[2]["content"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["type"], "tool_result");
    assert_eq!(results[0]["tool_use_id"], "call_a");
    assert_eq!(results[1]["tool_use_id"], "call_b");
    assert_eq!(results[1]["is_error"], true);
}

#[tokio::test]
async fn anthropic_defaults_max_tokens() {
    let server = ScriptedServer::start(Flavor::Anthropic, vec![Step::Reply(Reply::text("ok"))]).await;
    let provider = build_provider(config(&server, Flavor::Anthropic)).unwrap();
    let mut req = first_turn();
    req.max_output_tokens = None;
    let (result, _) = chat(provider.as_ref(), &req).await;
    assert_eq!(result.unwrap().finish_reason, rigor_protocol::FinishReason::Stop, "end_turn, normalised");
    assert_eq!(server.requests()[0]["max_tokens"], 8192);
}

#[tokio::test]
async fn rate_limit_honours_retry_after() {
    for flavor in [Flavor::OpenAi, Flavor::Anthropic] {
        let server = ScriptedServer::start(
            flavor,
            vec![
                Step::Status { code: 429, retry_after: Some(1), body: String::new() },
                Step::Reply(Reply::text("after the wait")),
            ],
        )
        .await;
        let provider = build_provider(config(&server, flavor)).unwrap();
        let started = Instant::now();
        let (result, events) = chat(provider.as_ref(), &first_turn()).await;
        let elapsed = started.elapsed();
        assert_eq!(result.unwrap().message.content, "after the wait");
        let retries = retries(&events);
        assert_eq!(retries.len(), 1, "{events:?}");
        assert_eq!(retries[0].0, 1);
        assert_eq!(retries[0].1, Duration::from_secs(1));
        assert!(retries[0].2.contains("429"), "{}", retries[0].2);
        // It waited as told (no upper bound: a loaded machine may take longer, which proves nothing).
        assert!(elapsed >= Duration::from_millis(950), "{elapsed:?}");
        assert_eq!(server.requests().len(), 2);
    }
}

#[tokio::test]
async fn server_errors_exhaust_retries() {
    for flavor in [Flavor::OpenAi, Flavor::Anthropic] {
        let error = |code| Step::Status { code, retry_after: None, body: String::new() };
        let server = ScriptedServer::start(flavor, vec![error(500), error(503), error(529)]).await;
        let provider = build_provider(config(&server, flavor)).unwrap();
        let (result, events) = chat(provider.as_ref(), &first_turn()).await;
        let err = result.unwrap_err();
        let ProviderError::RetriesExhausted { attempts, ref last, .. } = err else { panic!("{err:?}") };
        assert_eq!(attempts, 3);
        assert!(last.contains("529"), "{last}");
        let message = err.to_string();
        assert!(message.contains("gave up after 3 attempts"), "{message}");
        assert!(!message.contains('\n'), "one line for the trajectory: {message}");
        assert_eq!(retries(&events).iter().map(|r| r.0).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(server.remaining(), 0);
    }
}

#[tokio::test]
async fn exhausted_script_fails_loudly() {
    let server = ScriptedServer::start(Flavor::OpenAi, vec![]).await;
    let provider = build_provider(config(&server, Flavor::OpenAi)).unwrap();
    let (result, _) = chat(provider.as_ref(), &first_turn()).await;
    let message = result.unwrap_err().to_string();
    assert!(message.contains("script exhausted"), "{message}");
}

#[tokio::test]
async fn unauthorized_is_rejected_without_retry() {
    for (flavor, variable) in [(Flavor::OpenAi, "OPENAI_API_KEY"), (Flavor::Anthropic, "ANTHROPIC_API_KEY")] {
        let server = ScriptedServer::start(
            flavor,
            vec![
                Step::Status { code: 401, retry_after: None, body: "invalid x-api-key".into() },
                Step::Reply(Reply::text("never served")),
            ],
        )
        .await;
        let provider = build_provider(config(&server, flavor)).unwrap();
        let (result, events) = chat(provider.as_ref(), &first_turn()).await;
        let err = result.unwrap_err();
        assert!(matches!(err, ProviderError::Rejected { status: 401, .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("invalid x-api-key") && message.contains(variable), "{message}");
        assert!(retries(&events).is_empty());
        assert_eq!(server.requests().len(), 1);
        assert_eq!(server.remaining(), 1);
    }
}

#[tokio::test]
async fn cut_stream_is_retried() {
    for flavor in [Flavor::OpenAi, Flavor::Anthropic] {
        let server = ScriptedServer::start(
            flavor,
            vec![
                Step::CutStream(Reply::text("this answer will be cut off halfway")),
                Step::Reply(Reply::call("bash", r#"{"command": "ls"}"#)),
            ],
        )
        .await;
        let provider = build_provider(config(&server, flavor)).unwrap();
        let (result, events) = chat(provider.as_ref(), &first_turn()).await;
        let response = result.unwrap();
        assert_eq!(response.message.tool_calls[0].name, "bash");
        assert_eq!(response.message.content, "");
        let retries = retries(&events);
        assert_eq!(retries.len(), 1, "{events:?}");
        assert!(retries[0].2.contains("ended before the final event"), "{}", retries[0].2);
        assert_eq!(server.requests().len(), 2);
    }
}

/// The first reply comes only after 30 s; the request timeout (2 s, ample for the local server
/// on a loaded machine) cuts that attempt and the retry gets the reply. No bound on how long the
/// call took: "in time" can only come from the retry, and without the timeout the call would
/// return "too late" (after 30 s) and fail.
#[tokio::test]
async fn timeout_is_retried() {
    async fn check(flavor: Flavor) {
        let server = ScriptedServer::start(
            flavor,
            vec![
                Step::Delay { millis: 30_000, then: Box::new(Step::Reply(Reply::text("too late"))) },
                Step::Reply(Reply::text("in time")),
            ],
        )
        .await;
        let mut config = config(&server, flavor);
        config.request_timeout = Duration::from_secs(2);
        let provider = build_provider(config).unwrap();
        let (result, events) = chat(provider.as_ref(), &first_turn()).await;
        assert_eq!(result.unwrap().message.content, "in time", "{flavor:?}");
        let retries = retries(&events);
        assert_eq!(retries.len(), 1, "{events:?}");
        assert!(retries[0].2.contains("timeout"), "{}", retries[0].2);
        assert_eq!(server.requests().len(), 2);
    }
    tokio::join!(check(Flavor::OpenAi), check(Flavor::Anthropic));
}

#[tokio::test]
async fn connection_refused_is_retried_then_reported() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let server = ScriptedServer::start(Flavor::OpenAi, vec![]).await;
    let mut config = config(&server, Flavor::OpenAi);
    config.base_url = format!("http://127.0.0.1:{port}/v1");
    config.retry = fast_retry(2);
    let provider = build_provider(config).unwrap();
    let (result, events) = chat(provider.as_ref(), &first_turn()).await;
    let message = result.unwrap_err().to_string();
    assert!(message.contains("cannot connect") && message.contains("base_url"), "{message}");
    assert_eq!(retries(&events).len(), 1);
}

#[tokio::test]
async fn non_streaming_servers_are_tolerated() {
    // Some servers ignore `stream: true` and answer one JSON body. The scripted server answers
    // JSON when `stream` is false: fetch such bodies, then serve them verbatim with a 200.
    let server = ScriptedServer::start(Flavor::OpenAi, vec![Step::Reply(Reply::call("view", r#"{"path":"a"}"#))]).await;
    let client = post_json(&format!("{}/chat/completions", server.base_url()), json!({"stream": false})).await;
    assert_eq!(client["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "view");
    let json_server = ScriptedServer::start(
        Flavor::OpenAi,
        vec![Step::Status { code: 200, retry_after: None, body: client.to_string() }],
    )
    .await;
    let provider = build_provider(config(&json_server, Flavor::OpenAi)).unwrap();
    let (result, _) = chat(provider.as_ref(), &first_turn()).await;
    let response = result.unwrap();
    assert_eq!(response.message.tool_calls[0].arguments, r#"{"path":"a"}"#);
    assert_eq!(response.usage.input_tokens, 100);

    let server =
        ScriptedServer::start(Flavor::Anthropic, vec![Step::Reply(Reply::text("plain").with_call("bash", "{}"))]).await;
    let body = post_json(&format!("{}/v1/messages", server.base_url()), json!({"stream": false})).await;
    let json_server = ScriptedServer::start(
        Flavor::Anthropic,
        vec![Step::Status { code: 200, retry_after: None, body: body.to_string() }],
    )
    .await;
    let provider = build_provider(config(&json_server, Flavor::Anthropic)).unwrap();
    let (result, events) = chat(provider.as_ref(), &first_turn()).await;
    let response = result.unwrap();
    assert_eq!(response.message.content, "plain");
    assert_eq!(texts(&events), vec!["plain"]);
    assert_eq!(response.message.tool_calls[0].name, "bash");
}

/// POSTs `body` and returns the JSON answer.
async fn post_json(url: &str, body: Value) -> Value {
    let response = reqwest::Client::new().post(url).json(&body).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

#[tokio::test]
async fn text_actions_end_to_end() {
    for flavor in [Flavor::OpenAi, Flavor::Anthropic] {
        let server = ScriptedServer::start(
            flavor,
            vec![
                Step::Reply(Reply::text("I will run the tests.\n\n```bash\npython -m pytest -q\n```\n")),
                Step::Reply(Reply::text("```view\n{\"path\": \"calc.py\"}\n```")),
                Step::Reply(Reply::text("I am not sure what to do.")),
            ],
        )
        .await;
        let mut config = config(&server, flavor);
        config.text_actions = true;
        let provider = build_provider(config).unwrap();

        let mut req = first_turn();
        let (result, events) = chat(provider.as_ref(), &req).await;
        let response = result.unwrap();
        assert!(texts(&events).concat().contains("```bash"));
        assert_eq!(response.message.content, "I will run the tests.");
        let call = response.message.tool_calls[0].clone();
        assert_eq!((call.id.as_str(), call.name.as_str()), ("text-1", "bash"));
        assert_eq!(call.parsed_arguments().unwrap(), json!({"command": "python -m pytest -q"}));

        req.messages.push(response.message.clone());
        req.messages.push(Message::tool_result(&call.id, "1 failed", true));
        let (result, _) = chat(provider.as_ref(), &req).await;
        let response = result.unwrap();
        let call = &response.message.tool_calls[0];
        assert_eq!((call.id.as_str(), call.name.as_str()), ("text-2", "view"));
        assert_eq!(call.parsed_arguments().unwrap(), json!({"path": "calc.py"}));

        req.messages.push(response.message.clone());
        req.messages.push(Message::tool_result("text-2", "def add(a, b): return a - b", false));
        let (result, _) = chat(provider.as_ref(), &req).await;
        let response = result.unwrap();
        assert!(response.message.tool_calls.is_empty());
        assert_eq!(response.message.content, "I am not sure what to do.");

        let requests = server.requests();
        for request in &requests {
            assert!(request.get("tools").is_none(), "{request}");
        }
        let system = match flavor {
            Flavor::OpenAi => requests[0]["messages"][0]["content"].as_str().unwrap().to_string(),
            Flavor::Anthropic => requests[0]["system"].as_str().unwrap().to_string(),
        };
        assert!(system.starts_with("You are rigor."), "{system}");
        assert!(system.contains("## bash") && system.contains("## view"), "{system}");
        let last = requests[2]["messages"].as_array().unwrap();
        let rendered = serde_json::to_string(last).unwrap();
        assert!(rendered.contains("```bash\\npython -m pytest -q\\n```"), "{rendered}");
        assert!(rendered.contains("Observation from bash (error):\\n1 failed"), "{rendered}");
        assert!(rendered.contains("Observation from view:\\ndef add"), "{rendered}");
    }
}
