//! The `solve` tool: rigor's own run on an issue, as `rigor run` makes it.
//!
//! The server does not choose a model, tool sources or a proof: the front end does (the CLI
//! alone wires runs), through a [`Solver`] given to [`crate::RigorServer::with_solver`]. The
//! server turns the run's events into MCP progress notifications and its report into the tool's
//! result. The run works in rigor's usual workspace (a worktree under `.rigor/worktrees/`), so
//! the user's checkout is never modified; its record is under `.rigor/runs/<id>`, where the
//! server's `rigor://runs/<id>/…` resources serve it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use rigor_proof::proof::Proof;
use rigor_protocol::{Event, RunStatus};
use tokio::sync::{Notify, mpsc};

/// What a `solve` call asks for.
#[derive(Debug, Clone, Default)]
pub struct SolveRequest {
    /// The issue text.
    pub issue: String,
    /// Model turns at most (`None`: the configuration's).
    pub max_steps: Option<u32>,
    /// Wall-clock limit of the run in seconds (`None`: the configuration's).
    pub timeout_secs: Option<u64>,
    /// Cost limit in USD (`None`: the configuration's).
    pub max_cost: Option<f64>,
    /// Whether rigor proves the patch (as `rigor run` does by default).
    pub prove: bool,
    /// Notified when the client cancels the call: the run is cancelled and its report returned.
    pub cancelled: Arc<Notify>,
}

/// How a `solve` run ended.
#[derive(Debug, Clone)]
pub struct Solved {
    /// The run's id.
    pub run_id: String,
    /// Its record, `.rigor/runs/<id>`.
    pub run_dir: PathBuf,
    /// Its final status.
    pub status: RunStatus,
    /// The run's summary, abstention reason or error.
    pub summary: String,
    /// The patch (empty when there is none).
    pub patch: String,
    /// The proof of the patch, when the run proved it or abstained.
    pub proof: Option<Proof>,
}

/// Runs rigor on an issue for `solve` (implemented by the front end, which owns the wiring).
#[async_trait]
pub trait Solver: Send + Sync {
    /// Runs `request` on the repository at `repo` in a workspace of its own, sending every event
    /// of the run to `events`; errors are for runs that could not start (no model, bad config).
    async fn solve(
        &self,
        repo: &Path,
        request: SolveRequest,
        events: mpsc::UnboundedSender<Event>,
    ) -> Result<Solved, String>;
}

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
