//! Progress notifications: the events of a run (or of a proof) worth telling an MCP client.

use rigor_protocol::Event;

/// The progress message of an event worth telling a client about (`None`: not worth it).
pub(crate) fn progress_message(event: &Event) -> Option<String> {
    match event {
        Event::RunStarted { run_id, model, .. } => Some(format!("run {run_id} started with {model}")),
        Event::ModelRequest { turn, .. } => Some(format!("turn {turn}: asking the model")),
        Event::ToolCall { turn, call } => Some(format!("turn {turn}: {}", call.name)),
        Event::ProofStep { phase, outcome, detail, .. } => {
            Some(format!("proof {}: {} ({detail})", serialized_name(phase), serialized_name(outcome)))
        }
        Event::Notice { message } => Some(message.clone()),
        Event::RunFinished { status, .. } => Some(format!("finished: {}", status.as_str())),
        _ => None,
    }
}

/// The serialised name of a unit enum value (`reproduction_before`, `passed`).
fn serialized_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}
