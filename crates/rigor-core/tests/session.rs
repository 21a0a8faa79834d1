//! A run as a session, in process: events out, operations in. Approvals are an event plus an
//! op; Ctrl-C is an op. The provider is scripted (a model call after the script ends waits forever,
//! so only an operation can end such a run: nothing here depends on timing).
#![allow(clippy::unwrap_used)] // helpers of a test binary

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rigor_core::config::AgentSettings;
use rigor_core::run::RunRequest;
use rigor_core::session::Session;
use rigor_core::workspace::WorkspaceMode;
use rigor_llm::{ChatRequest, ChatResponse, Provider, ProviderError, StreamSink};
use rigor_protocol::{ActionOutcome, Event, FinishReason, Message, Op, RunStatus, ToolCall, Usage};
use rigor_test_support::repo::{example, fixture_repo};

/// Answers with one tool call per reply from a list; after the list, waits forever.
struct Script(Mutex<VecDeque<(String, String)>>);

impl Script {
    fn new(calls: &[(&str, &str)]) -> Arc<Self> {
        Arc::new(Self(Mutex::new(calls.iter().map(|(n, a)| (n.to_string(), a.to_string())).collect())))
    }
}

#[async_trait]
impl Provider for Script {
    fn id(&self) -> String {
        "scripted:session".into()
    }

    fn context_window(&self) -> u64 {
        1_000_000
    }

    async fn chat(&self, _request: &ChatRequest, _sink: StreamSink<'_>) -> Result<ChatResponse, ProviderError> {
        let next = self.0.lock().unwrap().pop_front();
        let Some((name, arguments)) = next else { return std::future::pending().await };
        Ok(ChatResponse {
            message: Message::assistant("", vec![ToolCall { id: String::new(), name, arguments }]),
            usage: Usage { input_tokens: 10, output_tokens: 1, cached_input_tokens: 0 },
            cost_usd: 0.0,
            finish_reason: FinishReason::ToolCalls,
        })
    }
}

fn request(repo: &std::path::Path) -> RunRequest {
    RunRequest {
        repo: repo.to_path_buf(),
        issue: "demo".into(),
        mode: WorkspaceMode::Worktree,
        start: None,
        apply: false,
        keep_workspace: false,
        settings: AgentSettings::default(),
        run_id: None,
        shell_env: Vec::new(),
        replay_of: None,
        sources: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_action_waits_for_the_approve_op_and_gets_its_answer() {
    let repo = fixture_repo(&example("durations"));
    let push = r#"{"command": "git push origin main"}"#;
    let script = Script::new(&[("bash", push), ("bash", push), ("abstain", r#"{"reason": "done"}"#)]);
    let mut session = Session::start(request(repo.path()), script, true);
    let ops = session.ops();
    let (mut asked, mut outcomes) = (0, Vec::new());
    while let Some(event) = session.next_event().await {
        match &event {
            Event::ApprovalRequested { call_id, action, .. } => {
                asked += 1;
                assert_eq!(action, "git push origin main");
                // Decline the first, approve the second.
                ops.send(Op::Approve { call_id: call_id.clone(), approved: asked == 2 }).unwrap();
            }
            Event::PolicyDecision { outcome, .. } => outcomes.push(*outcome),
            _ => {}
        }
    }
    let report = session.finish().await.unwrap();
    assert_eq!(asked, 2);
    assert_eq!(outcomes, vec![ActionOutcome::Rejected, ActionOutcome::Approved]);
    assert_eq!(report.status, RunStatus::Abstained);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_approvals_a_held_action_is_refused_and_nothing_is_asked() {
    let repo = fixture_repo(&example("durations"));
    let script = Script::new(&[("bash", r#"{"command": "git push origin main"}"#), ("abstain", r#"{"reason": "x"}"#)]);
    let mut session = Session::start(request(repo.path()), script, false);
    let mut outcomes = Vec::new();
    while let Some(event) = session.next_event().await {
        assert!(!matches!(event, Event::ApprovalRequested { .. }), "asked with nobody to answer");
        if let Event::PolicyDecision { outcome, .. } = event {
            outcomes.push(outcome);
        }
    }
    assert_eq!(outcomes, vec![ActionOutcome::Refused]);
    assert_eq!(session.finish().await.unwrap().status, RunStatus::Abstained);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_interrupt_op_ends_a_run_waiting_for_its_model() {
    let repo = fixture_repo(&example("durations"));
    // One step, then the model never answers: only the op can end the run.
    let mut session = Session::start(request(repo.path()), Script::new(&[("bash", r#"{"command": "true"}"#)]), false);
    let ops = session.ops();
    while let Some(event) = session.next_event().await {
        if matches!(event, Event::Observation { .. }) {
            ops.send(Op::Interrupt).unwrap();
        }
    }
    assert_eq!(session.finish().await.unwrap().status, RunStatus::Interrupted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cancel_op_stops_a_running_tool() {
    let repo = fixture_repo(&example("durations"));
    // A command that would outlive the test: only Cancel ends it.
    let mut session =
        Session::start(request(repo.path()), Script::new(&[("bash", r#"{"command": "sleep 100000"}"#)]), false);
    let ops = session.ops();
    let mut observation = String::new();
    while let Some(event) = session.next_event().await {
        match event {
            Event::ToolCall { .. } => ops.send(Op::Cancel).unwrap(),
            Event::Observation { content, .. } => observation = content,
            _ => {}
        }
    }
    assert!(observation.contains("cancelled"), "{observation}");
    assert_eq!(session.finish().await.unwrap().status, RunStatus::Interrupted);
}
