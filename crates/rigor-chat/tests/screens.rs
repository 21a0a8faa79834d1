//! Snapshot tests of the chat's main screens, drawn with ratatui's `TestBackend` from the events
//! of a real conversation session: the scripted model server (real HTTP and SSE on 127.0.0.1),
//! the OpenAI-compatible provider, a real worktree and sandbox. Keys go through the app as a
//! person's would, and its actions reach the session as in `rigor chat`.
//!
//! The snapshots are in `tests/snapshots/`; `RIGOR_UPDATE_SNAPSHOTS=1` rewrites them. The notice
//! describing this machine's sandbox is left out.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of a test binary

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use rigor_chat::app::{Action, App};
use rigor_core::conversation::Conversation;
use rigor_core::run::RunRequest;
use rigor_core::session::Session;
use rigor_llm::{ProviderConfig, ProviderKind, RetryPolicy, build_provider};
use rigor_protocol::Event;
use rigor_test_support::repo::{example, fixture_repo};
use rigor_test_support::server::{Flavor, Reply, ScriptedServer, Step};
use serde_json::json;

fn call(name: &str, args: serde_json::Value) -> Step {
    Step::Reply(Reply::call(name, &args.to_string()))
}

/// A chat on a copy of the example repository, its session talking to a scripted server.
struct Chat {
    _repo: tempfile::TempDir,
    _server: ScriptedServer,
    session: Session,
    app: App,
}

impl Chat {
    async fn start(steps: Vec<Step>) -> Self {
        let repo = fixture_repo(&example("durations"));
        let server = ScriptedServer::start(Flavor::OpenAi, steps).await;
        let provider = build_provider(ProviderConfig {
            name: "scripted".into(),
            kind: ProviderKind::OpenAi,
            base_url: server.base_url(),
            api_key: None,
            model: "test-model".into(),
            context_window: 128_000,
            pricing: None,
            text_actions: false,
            retry: RetryPolicy { max_attempts: 1, ..RetryPolicy::default() },
            request_timeout: Duration::from_secs(600),
        })
        .unwrap();
        let request = RunRequest {
            conversation: Some(Conversation { wait: true, resume: None }),
            ..RunRequest::new(repo.path(), "")
        };
        let session = Session::start(request, Arc::from(provider), true);
        Self { _repo: repo, _server: server, session, app: App::new() }
    }

    /// Types `text` and presses Enter.
    fn type_line(&mut self, text: &str) {
        for c in text.chars() {
            self.key(KeyCode::Char(c));
        }
        self.key(KeyCode::Enter);
    }

    fn key(&mut self, code: KeyCode) {
        let actions = self.app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
        self.act(actions);
    }

    fn act(&mut self, actions: Vec<Action>) {
        let ops = self.session.ops();
        for action in actions {
            match action {
                Action::Send(op) => ops.send(op),
                other => panic!("not expected here: {other:?}"),
            }
        }
    }

    /// Feeds the session's events to the app until `until` holds for one (fed too).
    async fn until(&mut self, until: impl Fn(&Event) -> bool) {
        while let Some(event) = self.session.next_event().await {
            // The sandbox's description depends on the machine.
            if matches!(&event, Event::Notice { message } if message.contains("; approval: ")) {
                continue;
            }
            let actions = self.app.on_event(&event);
            self.act(actions);
            if until(&event) {
                return;
            }
        }
        panic!("the session ended before the awaited event");
    }

    /// The screen as text, 100 columns by 40 rows.
    fn screen(&self) -> String {
        let mut terminal = Terminal::new(TestBackend::new(100, 40)).unwrap();
        terminal.draw(|frame| rigor_chat::render::draw(&self.app, frame)).unwrap();
        let buffer = terminal.backend().buffer().clone();
        let mut text = String::new();
        for y in 0..buffer.area.height {
            let row: String = (0..buffer.area.width).map(|x| buffer[(x, y)].symbol().to_string()).collect();
            text.push_str(row.trim_end());
            text.push('\n');
        }
        text
    }
}

/// Compares `screen` with the snapshot `name` (or writes it with `RIGOR_UPDATE_SNAPSHOTS=1`).
fn check(name: &str, screen: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(format!("{name}.txt"));
    if std::env::var_os("RIGOR_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, screen).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("no snapshot {}: run with RIGOR_UPDATE_SNAPSHOTS=1\n{screen}", path.display()));
    assert_eq!(screen, expected, "screen {name} differs from {}:\n{screen}", path.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_shows_the_reply_the_tool_calls_and_the_running_diff() {
    let steps = vec![
        Step::Reply(
            Reply::call("bash", &json!({"command": "cat durations.py"}).to_string())
                .with_text("Let me read the parser."),
        ),
        call(
            "edit",
            json!({"command": "str_replace", "path": "durations.py", "old_str": "total = int(number) * UNITS[ch]", "new_str": "total += int(number) * UNITS[ch]"}),
        ),
        call("finish", json!({"summary": "Compound durations add up now."})),
    ];
    let mut chat = Chat::start(steps).await;
    chat.type_line("fix parse_duration for 1h30m");
    chat.until(|e| matches!(e, Event::RequestFinished { .. })).await;
    check("conversation", &chat.screen());

    // `/diff` gives the diff the whole screen.
    chat.type_line("/diff");
    check("diff", &chat.screen());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_command_is_approved_inline_and_always_covers_its_prefix_after() {
    let push = json!({"command": "git push origin main"});
    let steps = vec![
        call("bash", push.clone()),
        call("bash", json!({"command": "git push origin main --dry-run"})),
        Step::Reply(Reply::text("Pushed.")),
    ];
    let mut chat = Chat::start(steps).await;
    chat.type_line("push it");
    chat.until(|e| matches!(e, Event::ApprovalRequested { .. })).await;
    check("approval", &chat.screen());

    // "a": this one runs, and the next `git push` is not asked.
    chat.key(KeyCode::Char('a'));
    let mut asked = 0;
    while let Some(event) = chat.session.next_event().await {
        asked += usize::from(matches!(event, Event::ApprovalRequested { .. }));
        let actions = chat.app.on_event(&event);
        chat.act(actions);
        if matches!(event, Event::RequestFinished { .. }) {
            break;
        }
    }
    assert_eq!(asked, 1, "the second push was covered by the rule");
    assert!(chat.app.approval.is_none());
    assert!(chat.screen().contains("approved by your rule `git push`"), "{}", chat.screen());
}
