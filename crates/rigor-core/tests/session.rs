//! A run as a session, in process: events out, operations in. Approvals are an event plus an
//! op; Ctrl-C is an op. The provider is scripted (a model call after the script ends waits forever,
//! so only an operation can end such a run: nothing here depends on timing).
#![allow(clippy::unwrap_used)] // helpers of a test binary

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rigor_core::config::AgentSettings;
use rigor_core::replay::Replay;
use rigor_core::run::RunRequest;
use rigor_core::session::Session;
use rigor_core::workspace::WorkspaceMode;
use rigor_llm::{ChatRequest, ChatResponse, Provider, ProviderError, StreamSink};
use rigor_protocol::{ActionOutcome, Event, FinishReason, Message, Op, Role, RunStatus, ToolCall, Usage};
use rigor_test_support::repo::{example, fixture_repo};

/// Answers with one tool call per reply from a list; after the list, waits forever. Keeps the
/// conversation of every request.
struct Script(Mutex<VecDeque<(String, String)>>, Mutex<Vec<Vec<Message>>>);

impl Script {
    fn new(calls: &[(&str, &str)]) -> Arc<Self> {
        let calls = calls.iter().map(|(n, a)| (n.to_string(), a.to_string())).collect();
        Arc::new(Self(Mutex::new(calls), Mutex::default()))
    }

    /// The conversation the model was given at each turn.
    fn conversations(&self) -> Vec<Vec<Message>> {
        self.1.lock().unwrap().clone()
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

    async fn chat(&self, request: &ChatRequest, _sink: StreamSink<'_>) -> Result<ChatResponse, ProviderError> {
        self.1.lock().unwrap().push(request.messages.clone());
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
        user_messages: Vec::new(),
        decline: None,
        conversation: None,
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
                ops.send(Op::Approve { call_id: call_id.clone(), approved: asked == 2 });
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
            ops.send(Op::Interrupt);
        }
    }
    assert_eq!(session.finish().await.unwrap().status, RunStatus::Interrupted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cancel_op_stops_a_running_tool() {
    let repo = fixture_repo(&example("durations"));
    // A command that would outlive the test: only Cancel ends it, sent once it provably runs.
    let step = r#"{"command": "touch step-started; sleep 100000"}"#;
    let mut session = Session::start(request(repo.path()), Script::new(&[("bash", step)]), false);
    let ops = session.ops();
    let (mut observation, mut workspace) = (String::new(), None);
    while let Some(event) = session.next_event().await {
        match event {
            Event::RunStarted { workspace: dir, .. } => workspace = Some(std::path::PathBuf::from(dir)),
            Event::ToolCall { .. } => {
                let marker = workspace.as_ref().unwrap().join("step-started");
                wait_for_file(&marker).await;
                ops.send(Op::Cancel);
            }
            Event::Observation { content, .. } => observation = content,
            _ => {}
        }
    }
    assert!(observation.contains("cancelled"), "{observation}");
    assert_eq!(session.finish().await.unwrap().status, RunStatus::Interrupted);
}

/// Waits (without a time limit) until `path` exists.
async fn wait_for_file(path: &std::path::Path) {
    while !path.exists() {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_message_joins_the_conversation_before_the_next_turn_and_a_replay_sends_it_again() {
    let repo = fixture_repo(&example("durations"));
    let hint = "look at durations.py first";
    // The step runs until the test lets it finish, after sending the message (which is queued
    // when `send` returns): the message provably arrives during turn 1.
    let step = r#"{"command": "while [ ! -e may-finish ]; do sleep 0.01; done"}"#;
    let script = Script::new(&[("bash", step), ("abstain", r#"{"reason": "done"}"#)]);
    let mut session = Session::start(request(repo.path()), script.clone(), false);
    let ops = session.ops();
    let (mut recorded, mut workspace) = (Vec::new(), None);
    while let Some(event) = session.next_event().await {
        if let Event::RunStarted { workspace: dir, .. } = &event {
            workspace = Some(std::path::PathBuf::from(dir));
        }
        if matches!(event, Event::ToolCall { .. }) {
            ops.send(Op::UserMessage { text: hint.into() });
            std::fs::write(workspace.as_ref().unwrap().join("may-finish"), "").unwrap();
        }
        if let Event::UserMessage { turn, content, from_user } = &event {
            recorded.push((*turn, content.clone(), *from_user));
        }
    }
    let report = session.finish().await.unwrap();
    assert_eq!(report.status, RunStatus::Abstained);
    assert_eq!(recorded, vec![(1, hint.to_string(), true)], "recorded as the user's, after turn 1");
    let turns = script.conversations();
    assert!(!turns[0].iter().any(|m| m.content == hint), "not before it was sent");
    let last = turns[1].last().unwrap();
    assert_eq!((last.role, last.content.as_str()), (Role::User, hint), "the second turn sees it last");

    // The replay sends it again at the same point and reproduces the run.
    let mut replay = Replay::load(&report.run_dir, None, |_| Vec::new()).unwrap();
    assert_eq!(replay.request.user_messages, vec![(1, hint.to_string())]);
    let mut session = Session::start(replay.request.clone(), replay.provider.clone(), false);
    let (mut replayed, mut workspace) = (Vec::new(), None);
    while let Some(event) = session.next_event().await {
        match &event {
            Event::RunStarted { workspace: dir, .. } => workspace = Some(std::path::PathBuf::from(dir)),
            Event::ToolCall { .. } => std::fs::write(workspace.as_ref().unwrap().join("may-finish"), "").unwrap(),
            Event::UserMessage { turn, content, .. } => replayed.push((*turn, content.clone())),
            _ => {}
        }
        replay.observe(&event);
    }
    let outcome = replay.report(session.finish().await.unwrap());
    assert!(outcome.reproduced(), "{:?}", outcome.divergences);
    assert_eq!(replayed, vec![(1, hint.to_string())]);
}
