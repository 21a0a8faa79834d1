//! Replay: run a recorded trajectory again, feeding back the recorded model responses and
//! re-executing the tools on a fresh workspace at the recorded base commit, then report where
//! the new observations, status or patch differ from the recording.
//!
//! This is how a run is reproduced and how the agent loop is tested deterministically. Numbers
//! with a decimal point (timings such as `Ran 3 tests in 0.002s`) are ignored when comparing
//! observations.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use regex::Regex;
use rigor_llm::{ChatRequest, ChatResponse, Provider, ProviderError, StreamEvent, StreamSink};
use rigor_protocol::{Event, RunStatus};
use rigor_tools::ToolSource;

use crate::config::AgentSettings;
use crate::conversation::Conversation;
use crate::run::{RunError, RunReport, RunRequest};
use crate::trajectory::read_trajectory;
use crate::workspace::WorkspaceMode;

/// How a redacted secret starts in a record (see [`crate::redact`]).
const REDACTION_MARK: &str = "[REDACTED:";

/// A provider that answers with the responses recorded in a trajectory, in order.
pub struct ReplayProvider {
    model: String,
    responses: Mutex<VecDeque<ChatResponse>>,
}

impl ReplayProvider {
    /// A provider serving `responses` in order, reporting itself as `model`.
    pub fn new(model: String, responses: Vec<ChatResponse>) -> Self {
        Self { model, responses: Mutex::new(responses.into()) }
    }
}

#[async_trait]
impl Provider for ReplayProvider {
    fn id(&self) -> String {
        format!("replay:{}", self.model)
    }

    fn context_window(&self) -> u64 {
        u64::MAX / 4
    }

    async fn chat(&self, _request: &ChatRequest, sink: StreamSink<'_>) -> Result<ChatResponse, ProviderError> {
        let next = self.responses.lock().ok().and_then(|mut r| r.pop_front());
        let response = next.ok_or_else(|| ProviderError::Malformed {
            provider: self.id(),
            detail: "the trajectory has no more recorded model responses".into(),
        })?;
        if !response.message.content.is_empty() {
            sink(StreamEvent::Text(response.message.content.clone()));
        }
        Ok(response)
    }
}

/// One observation that differs from the recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Divergence {
    /// Turn number.
    pub turn: u32,
    /// Tool name.
    pub tool: String,
    /// Recorded observation.
    pub recorded: String,
    /// Replayed observation.
    pub replayed: String,
}

/// The outcome of a replay.
#[derive(Debug)]
pub struct ReplayReport {
    /// The new run.
    pub run: RunReport,
    /// Status of the recorded run.
    pub recorded_status: Option<RunStatus>,
    /// Observations that differ.
    pub divergences: Vec<Divergence>,
    /// Observations recorded but not replayed (or the reverse, as a negative count).
    pub missing_observations: i64,
    /// Whether the replayed patch equals the recorded one.
    pub patch_identical: bool,
}

impl ReplayReport {
    /// True when the replay reproduced the recording: same observations, status and patch.
    pub fn reproduced(&self) -> bool {
        self.divergences.is_empty()
            && self.missing_observations == 0
            && self.patch_identical
            && self.recorded_status == Some(self.run.status)
    }
}

/// Finds the trajectory file for a path that is either the file or its run directory.
pub fn trajectory_path(path: &Path) -> PathBuf {
    if path.is_dir() { path.join("trajectory.jsonl") } else { path.to_path_buf() }
}

/// A recorded run, read and ready to be run again: start [`Replay::request`] with
/// [`Replay::provider`] as a [`crate::session::Session`] (the front end is its client, as for any
/// run), pass every event of it to [`Replay::observe`], and compare with [`Replay::report`].
pub struct Replay {
    /// The run to start: the recorded issue at the recorded base commit in a fresh worktree,
    /// with the recorded user messages at the same turns.
    pub request: RunRequest,
    /// Serves the recorded model responses.
    pub provider: Arc<dyn Provider>,
    trajectory: PathBuf,
    recorded_observations: Vec<(u32, String, String)>,
    recorded_finish: Option<(RunStatus, String)>,
    replayed_observations: Vec<(u32, String, String)>,
}

impl Replay {
    /// Reads the trajectory at `path` (the file or its run directory) to replay it against `repo`
    /// (default: the recorded repository), with the tool sources `sources` gives for the names
    /// of those the recorded run had (the front end's choice, as for the run itself). Refuses a record whose tool calls were
    /// redacted: replaying would run the placeholder instead.
    pub fn load(
        path: &Path,
        repo: Option<&Path>,
        sources: impl FnOnce(&[String]) -> Vec<Arc<dyn ToolSource>>,
    ) -> Result<Self, ReplayError> {
        let path = trajectory_path(path);
        let records = read_trajectory(&path).map_err(|e| ReplayError::Trajectory(e.to_string()))?;
        let mut started = None;
        let mut responses = Vec::new();
        let mut recorded_observations = Vec::new();
        let mut recorded_finish = None;
        let mut user_messages = Vec::new();
        let mut recorded_summary = String::new();
        for record in records {
            match record.event {
                Event::RunStarted {
                    run_id, repo, base_commit, model, issue, sources, prompt, conversation, ..
                } => started = Some((run_id, repo, base_commit, model, issue, (sources, prompt, conversation))),
                Event::ModelResponse { message, usage, cost_usd, finish_reason, .. } => {
                    responses.push(ChatResponse { message, usage, cost_usd, finish_reason })
                }
                Event::Observation { turn, name, content, .. } => recorded_observations.push((turn, name, content)),
                Event::UserMessage { turn, content, from_user: true } => user_messages.push((turn, content)),
                Event::RunFinished { status, patch, summary, .. } => {
                    recorded_finish = Some((status, patch));
                    recorded_summary = summary;
                }
                _ => {}
            }
        }
        let (recorded_run_id, recorded_repo, base_commit, model, issue, (recorded_sources, prompt, conversation)) =
            started.ok_or_else(|| ReplayError::Trajectory(format!("{} has no run_started event", path.display())))?;
        let redacted = responses
            .iter()
            .flat_map(|r| r.message.tool_calls.iter())
            .filter(|call| call.arguments.contains(REDACTION_MARK))
            .count();
        if redacted > 0 {
            return Err(ReplayError::Trajectory(format!(
                "{} cannot be replayed faithfully: {redacted} recorded tool call(s) had a secret in their arguments, \
                 which the record holds only as `{REDACTION_MARK}…]`; replaying would run the placeholder instead. \
                 Nothing was run.",
                path.display()
            )));
        }
        let repo = repo.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(recorded_repo));
        let settings =
            AgentSettings { max_steps: responses.len() as u32, prompt: Some(prompt), ..AgentSettings::default() };
        // A run its input bouncer declined made no model call: the replay declines the same way.
        let declined = responses.is_empty() && recorded_finish.as_ref().is_some_and(|f| f.0 == RunStatus::Abstained);
        let request = RunRequest {
            repo,
            issue,
            mode: WorkspaceMode::Worktree,
            start: Some(base_commit),
            apply: false,
            keep_workspace: false,
            settings,
            run_id: None,
            shell_env: Vec::new(),
            replay_of: Some(recorded_run_id),
            sources: sources(&recorded_sources),
            user_messages,
            decline: declined.then_some(recorded_summary),
            // A conversation again, its recorded messages scheduled: it ends after the last.
            conversation: conversation.then_some(Conversation { wait: false, resume: None }),
        };
        Ok(Replay {
            request,
            provider: Arc::new(ReplayProvider::new(model, responses)),
            trajectory: path,
            recorded_observations,
            recorded_finish,
            replayed_observations: Vec::new(),
        })
    }

    /// Takes note of one event of the replayed run.
    pub fn observe(&mut self, event: &Event) {
        if let Event::Observation { turn, name, content, .. } = event {
            self.replayed_observations.push((*turn, name.clone(), content.clone()));
        }
    }

    /// Compares the replayed `run` (whose events were observed) with the recording.
    pub fn report(self, run: RunReport) -> ReplayReport {
        let divergences = self
            .recorded_observations
            .iter()
            .zip(&self.replayed_observations)
            .filter(|(a, b)| normalize(&a.2) != normalize(&b.2))
            .map(|(a, b)| Divergence { turn: a.0, tool: a.1.clone(), recorded: a.2.clone(), replayed: b.2.clone() })
            .collect();
        let (recorded_status, mut recorded_patch) = self.recorded_finish.unzip();
        if recorded_patch.as_deref().is_some_and(|p| p.contains("not repeated in this record")) {
            // A large patch is recorded whole only in patch.diff beside the trajectory.
            recorded_patch =
                self.trajectory.parent().and_then(|dir| std::fs::read_to_string(dir.join("patch.diff")).ok());
        }
        ReplayReport {
            patch_identical: recorded_patch.as_deref() == Some(run.patch.as_str()),
            missing_observations: self.recorded_observations.len() as i64 - self.replayed_observations.len() as i64,
            recorded_status,
            divergences,
            run,
        }
    }
}

/// Errors of a replay.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The trajectory is unreadable or incomplete.
    #[error("{0}")]
    Trajectory(String),
    /// The run could not start.
    #[error(transparent)]
    Run(#[from] RunError),
}

fn normalize(text: &str) -> String {
    static DECIMAL: OnceLock<Option<Regex>> = OnceLock::new();
    match DECIMAL.get_or_init(|| Regex::new(r"\d+\.\d+").ok()) {
        Some(re) => re.replace_all(text, "N.N").into_owned(),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timings_do_not_count_as_divergence() {
        assert_eq!(normalize("Ran 3 tests in 0.002s\nOK"), normalize("Ran 3 tests in 0.015s\nOK"));
        assert_ne!(normalize("FAILED (failures=1)"), normalize("OK"));
    }
}
