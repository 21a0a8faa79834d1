//! A run as a session, in process: events out, operations in. Approvals are an event plus an
//! op; Ctrl-C is an op. The provider is scripted (a model call after the script ends waits forever,
//! so only an operation can end such a run: nothing here depends on timing).
#![allow(clippy::unwrap_used)] // helpers of a test binary

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rigor_core::conversation::{Conversation, Resume};
use rigor_core::replay::Replay;
use rigor_core::run::RunRequest;
use rigor_core::session::Session;
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

    /// Adds replies to the end of the script.
    fn push(&self, calls: &[(&str, &str)]) {
        self.0.lock().unwrap().extend(calls.iter().map(|(n, a)| (n.to_string(), a.to_string())));
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
        // A reply without a tool call when the name is empty: the text is `arguments`.
        let message = match name.is_empty() {
            true => Message::assistant(arguments, Vec::new()),
            false => Message::assistant("", vec![ToolCall { id: String::new(), name, arguments }]),
        };
        Ok(ChatResponse {
            message,
            usage: Usage { input_tokens: 10, output_tokens: 1, cached_input_tokens: 0 },
            cost_usd: 0.0,
            finish_reason: FinishReason::ToolCalls,
        })
    }
}

fn request(repo: &std::path::Path) -> RunRequest {
    RunRequest::new(repo, "demo")
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

// Conversations (`rigor chat`): one session, one workspace, one trajectory, many requests.

fn conversation(repo: &std::path::Path, resume: Option<Resume>) -> RunRequest {
    RunRequest { issue: String::new(), conversation: Some(Conversation { wait: true, resume }), ..request(repo) }
}

fn edit(args: serde_json::Value) -> (String, String) {
    ("edit".to_string(), args.to_string())
}

/// Drives a conversation: sends each of `requests` when the session is idle (the first at once),
/// calls `idle` with each `request_finished` event (it may send ops, e.g. `Undo`), and ends the
/// session when the requests are used up. Returns every event and the report.
async fn converse(
    mut session: Session,
    requests: &[&str],
    mut idle: impl FnMut(&Event, &rigor_core::session::Ops),
) -> (Vec<Event>, rigor_core::run::RunReport) {
    let ops = session.ops();
    let mut requests = requests.iter();
    if let Some(first) = requests.next() {
        ops.send(Op::UserMessage { text: first.to_string() });
    }
    let mut events = Vec::new();
    while let Some(event) = session.next_event().await {
        if matches!(event, Event::RequestFinished { .. } | Event::Undone { .. }) {
            idle(&event, &ops);
            if matches!(event, Event::RequestFinished { .. }) {
                match requests.next() {
                    Some(text) => ops.send(Op::UserMessage { text: text.to_string() }),
                    None => ops.send(Op::EndSession),
                }
            }
        }
        events.push(event);
    }
    (events, session.finish().await.unwrap())
}

fn finished(events: &[Event]) -> Vec<(RunStatus, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::RequestFinished { status, summary, .. } => Some((*status, summary.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_runs_two_requests_in_one_session_and_its_trajectory_replays() {
    let repo = fixture_repo(&example("durations"));
    let create = edit(serde_json::json!({"command": "create", "path": "notes.txt", "file_text": "one\n"}));
    let script = Script::new(&[
        (&create.0, &create.1),
        ("finish", r#"{"summary": "wrote notes.txt"}"#),
        ("", "notes.txt has one line."),
    ]);
    let session = Session::start(conversation(repo.path(), None), script.clone(), false);
    let (events, report) = converse(session, &["write notes.txt", "what did you write?"], |_, _| {}).await;
    assert_eq!(
        finished(&events),
        vec![
            (RunStatus::Submitted, "wrote notes.txt".to_string()),
            (RunStatus::Submitted, "notes.txt has one line.".to_string())
        ]
    );
    // The second request continues the first's conversation.
    let last = script.conversations().pop().unwrap();
    let said: Vec<&str> = last.iter().filter(|m| m.role == Role::User).map(|m| m.content.as_str()).collect();
    assert_eq!(said, vec!["write notes.txt", "what did you write?"]);
    assert_eq!(report.status, RunStatus::Submitted);
    assert!(report.patch.contains("+++ b/notes.txt"), "{}", report.patch);
    let started: Vec<_> = events.iter().filter(|e| matches!(e, Event::RunStarted { conversation: true, .. })).collect();
    assert_eq!(started.len(), 1, "one run for the whole conversation");

    // `rigor replay` of the session: the same requests at the same turns, the same result.
    let mut replay = Replay::load(&report.run_dir, None, |_| Vec::new()).unwrap();
    let mut session = Session::start(replay.request.clone(), replay.provider.clone(), false);
    let mut replayed = Vec::new();
    while let Some(event) = session.next_event().await {
        replay.observe(&event);
        replayed.push(event);
    }
    let outcome = replay.report(session.finish().await.unwrap());
    assert!(outcome.reproduced(), "{:?} {:?}", outcome.divergences, outcome.run.status);
    assert_eq!(finished(&replayed).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_ends_the_request_under_way_and_the_session_continues() {
    let repo = fixture_repo(&example("durations"));
    // One step, then the model never answers: only the interrupt ends that request.
    let script = Script::new(&[("bash", r#"{"command": "true"}"#)]);
    let mut session = Session::start(conversation(repo.path(), None), script.clone(), false);
    let ops = session.ops();
    ops.send(Op::UserMessage { text: "look around".into() });
    let mut events = Vec::new();
    while let Some(event) = session.next_event().await {
        match &event {
            Event::Observation { .. } => ops.send(Op::Interrupt),
            Event::RequestFinished { status: RunStatus::Interrupted, .. } => {
                script.push(&[("", "carrying on from where we were")]);
                ops.send(Op::UserMessage { text: "go on".into() });
            }
            Event::RequestFinished { .. } => ops.send(Op::EndSession),
            _ => {}
        }
        events.push(event);
    }
    let report = session.finish().await.unwrap();
    assert_eq!(
        finished(&events),
        vec![
            (RunStatus::Interrupted, "interrupted by the user".to_string()),
            (RunStatus::Submitted, "carrying on from where we were".to_string())
        ]
    );
    let last = script.conversations().pop().unwrap();
    assert!(last.iter().any(|m| m.content == "look around"), "the interrupted request is still in the conversation");
    assert!(last.iter().any(|m| m.role == Role::Tool), "and so is its tool result");
    assert_eq!(report.status, RunStatus::Submitted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_restores_the_files_the_last_request_changed_and_tells_the_model() {
    let repo = fixture_repo(&example("durations"));
    let first = edit(serde_json::json!({"command": "create", "path": "kept.txt", "file_text": "kept\n"}));
    let change = edit(
        serde_json::json!({"command": "str_replace", "path": "durations.py", "old_str": "\"d\": 86400", "new_str": "\"d\": 86401"}),
    );
    let create = edit(serde_json::json!({"command": "create", "path": "new/undone.txt", "file_text": "gone\n"}));
    let script = Script::new(&[
        (&first.0, &first.1),
        ("finish", r#"{"summary": "one"}"#),
        (&change.0, &change.1),
        (&create.0, &create.1),
        ("bash", r#"{"command": "rm test_durations.py"}"#),
        ("finish", r#"{"summary": "two"}"#),
        ("", "ok"),
    ]);
    let session = Session::start(conversation(repo.path(), None), script.clone(), false);
    let (mut after_first, mut undone) = (None, None);
    let mut requests_done = 0;
    let (events, report) = converse(session, &["one", "two", "and now?"], |event, ops| match event {
        Event::RequestFinished { patch, .. } => {
            requests_done += 1;
            if requests_done == 1 {
                after_first = Some(patch.clone());
            }
            if requests_done == 2 {
                ops.send(Op::Undo);
            }
        }
        Event::Undone { files, patch } => undone = Some((files.clone(), patch.clone())),
        _ => {}
    })
    .await;
    let (files, patch) = undone.expect("an undone event");
    assert_eq!(files, vec!["durations.py", "new/undone.txt", "test_durations.py"]);
    assert_eq!(Some(patch), after_first, "the diff is the first request's again");
    assert!(report.patch.contains("kept.txt") && !report.patch.contains("undone.txt"), "{}", report.patch);
    assert_eq!(finished(&events).len(), 3, "the session goes on after the undo");
    let last = script.conversations().pop().unwrap();
    assert!(
        last.iter().any(|m| m.role == Role::User && m.content.contains("undid the changes of your last request")),
        "the model is told"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_conversation_continues_the_last_one_with_its_changes() {
    let repo = fixture_repo(&example("durations"));
    let create = edit(serde_json::json!({"command": "create", "path": "notes.txt", "file_text": "from before\n"}));
    let script = Script::new(&[(&create.0, &create.1), ("finish", r#"{"summary": "wrote notes"}"#)]);
    let session = Session::start(conversation(repo.path(), None), script, false);
    let (_, first) = converse(session, &["write notes"], |_, _| {}).await;

    let resume = Resume::last(repo.path()).unwrap().expect("a conversation to resume");
    assert_eq!(resume.run_id, first.run_id);
    let script = Script::new(&[("bash", r#"{"command": "cat notes.txt"}"#), ("", "it says: from before")]);
    let session = Session::start(conversation(repo.path(), Some(resume)), script.clone(), false);
    let (events, second) = converse(session, &["what do the notes say?"], |_, _| {}).await;
    let seen = events.iter().find_map(|e| match e {
        Event::Observation { content, .. } => Some(content.clone()),
        _ => None,
    });
    assert!(seen.unwrap().contains("from before"), "the new workspace has the earlier changes");
    let said: Vec<String> =
        script.conversations()[0].iter().filter(|m| m.role == Role::User).map(|m| m.content.clone()).collect();
    assert_eq!(said, vec!["write notes", "what do the notes say?"], "and the model the earlier conversation");
    assert_ne!(second.run_id, first.run_id);
    assert!(second.patch.contains("notes.txt"), "the session's diff includes what it continued: {}", second.patch);
}
