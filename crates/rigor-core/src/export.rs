//! Export of trajectories to the chat format used to train and fine-tune agents: one JSON object
//! per run with `messages` (system, user, assistant with `tool_calls`, tool results) and `tools`,
//! in the OpenAI chat fine-tuning layout, plus rigor's metadata (run id, model, status, totals).
//!
//! The conversation is rebuilt from the recorded events as the model saw it turn by turn,
//! without condensation (condensation is an inference-time device, not part of the trajectory).

use rigor_protocol::{Event, Role};
use serde_json::{Value, json};

use crate::prompt::issue_prompt_for;
use crate::trajectory::TrajectoryRecord;

/// The chat-format record of one trajectory, or `None` when it has no `run_started` event.
pub fn chat_record(records: &[TrajectoryRecord]) -> Option<Value> {
    let mut messages = Vec::new();
    let mut tools = Vec::new();
    let mut metadata = json!({});
    // Results of calls the model made; rigor's own (its `finish` after the drafts) have no call
    // in an assistant message, so their results are left out of the chat.
    let mut calls: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for record in records {
        match &record.event {
            Event::RunStarted { run_id, model, issue, system_prompt, tools: specs, base_commit, prompt, .. } => {
                messages.push(json!({"role": "system", "content": system_prompt}));
                messages.push(json!({"role": "user", "content": issue_prompt_for(*prompt, issue)}));
                tools = specs
                    .iter()
                    .map(|t| json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}))
                    .collect();
                metadata = json!({"run_id": run_id, "model": model, "base_commit": base_commit});
            }
            Event::ModelResponse { message, .. } if message.role == Role::Assistant => {
                let mut m = json!({"role": "assistant", "content": message.content});
                calls.extend(message.tool_calls.iter().map(|c| c.id.as_str()));
                if !message.tool_calls.is_empty() {
                    m["tool_calls"] = message
                        .tool_calls
                        .iter()
                        .map(|c| json!({"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}))
                        .collect();
                }
                messages.push(m);
            }
            Event::UserMessage { content, .. } => messages.push(json!({"role": "user", "content": content})),
            Event::Observation { call_id, content, .. } if calls.contains(call_id.as_str()) => {
                messages.push(json!({"role": "tool", "tool_call_id": call_id, "content": content}));
            }
            Event::RunFinished { status, totals, .. } => {
                metadata["status"] = json!(status);
                metadata["totals"] = json!(totals);
            }
            _ => {}
        }
    }
    if messages.is_empty() {
        return None;
    }
    Some(json!({"messages": messages, "tools": tools, "metadata": metadata}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rigor_protocol::{Message, RunStatus, RunTotals, ToolCall, Usage};

    fn record(event: Event) -> TrajectoryRecord {
        TrajectoryRecord { elapsed_ms: 0, event }
    }

    #[test]
    fn a_trajectory_becomes_one_chat_record_with_paired_tool_calls() {
        let call = ToolCall { id: "c1".into(), name: "bash".into(), arguments: "{\"command\":\"ls\"}".into() };
        let response = |message: Message| Event::ModelResponse {
            turn: 1,
            message,
            usage: Usage::default(),
            cost_usd: 0.0,
            latency_ms: 1,
            finish_reason: rigor_protocol::FinishReason::Stop,
        };
        let records = vec![
            record(Event::RunStarted {
                schema_version: rigor_protocol::SCHEMA_VERSION,
                run_id: "r".into(),
                repo: "/r".into(),
                workspace: "/w".into(),
                base_commit: "abc".into(),
                model: "openai:m".into(),
                issue: "bug".into(),
                system_prompt: "sys".into(),
                tools: vec![],
                sources: vec![],
                prompt: rigor_protocol::PromptProfile::Full,
                conversation: false,
                started_at: "now".into(),
            }),
            record(response(Message::assistant("thinking", vec![]))),
            record(Event::UserMessage { turn: 1, content: "call a tool".into(), from_user: false }),
            record(response(Message::assistant("", vec![call]))),
            record(Event::Observation {
                turn: 2,
                call_id: "c1".into(),
                name: "bash".into(),
                content: "a.py".into(),
                is_error: false,
                duration_ms: 1,
            }),
            // rigor's own call (its `finish` after the drafts): no call of the model's to pair with.
            record(Event::Observation {
                turn: 2,
                call_id: "draft-finish-2".into(),
                name: "finish".into(),
                content: "finished".into(),
                is_error: false,
                duration_ms: 1,
            }),
            record(Event::RunFinished {
                status: RunStatus::Abstained,
                summary: "s".into(),
                patch: String::new(),
                totals: RunTotals::default(),
            }),
        ];
        let chat = chat_record(&records).unwrap();
        let roles: Vec<&str> =
            chat["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
        assert_eq!(roles, ["system", "user", "assistant", "user", "assistant", "tool"]);
        assert_eq!(chat["messages"][4]["tool_calls"][0]["function"]["name"], "bash");
        assert_eq!(chat["messages"][5]["tool_call_id"], "c1");
        assert_eq!(chat["metadata"]["status"], "abstained");
        assert!(chat_record(&[]).is_none());
    }
}
