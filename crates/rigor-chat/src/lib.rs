//! `rigor chat`: an interactive terminal session with the agent.
//!
//! Three parts, so that everything but the terminal itself is testable:
//! - [`app`]: the state machine. Session [`rigor_protocol::Event`]s and keys go in, state and
//!   [`app::Action`]s (operations for the session, `/apply`, `/model`, `/new`, quit) come out.
//!   No I/O.
//! - [`render`]: draws the state with ratatui (tests use its `TestBackend`).
//! - [`run`]: the terminal loop: raw mode and the alternate screen, keys from crossterm, events
//!   from the [`rigor_core::session::Session`] the [`Host`] starts.
//!
//! The conversation itself runs in `rigor-core` (a run whose session waits for the next message,
//! see `rigor_core::conversation`); the [`Host`] (the CLI) decides the model, the tools, the
//! sandbox and approvals, exactly as for `rigor run`. This crate knows none of that: it shows a
//! session and sends it operations.

pub mod app;
pub mod render;

use std::io::Write;

use async_trait::async_trait;
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event as TermEvent};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode};
use rigor_core::run::RunReport;
use rigor_core::session::Session;
use rigor_protocol::Op;

use crate::app::{Action, App};

/// What the chat needs from the program around it.
#[async_trait]
pub trait Host: Send {
    /// Starts a conversation session (`resume`: continuing the last recorded one).
    async fn start(&mut self, resume: bool) -> Result<Session, String>;
    /// Uses the model `name` for the next turns; returns its id.
    async fn switch_model(&mut self, name: &str) -> Result<String, String>;
    /// Applies `patch` to the user's checkout (checked first: a patch that does not apply
    /// changes nothing).
    async fn apply(&mut self, patch: &str) -> Result<(), String>;
}

/// Restores the terminal when dropped (also when the loop fails or panics).
struct Screen;

impl Screen {
    fn enter() -> std::io::Result<Self> {
        enable_raw_mode()?;
        if let Err(err) = execute!(std::io::stdout(), EnterAlternateScreen) {
            let _ = disable_raw_mode();
            return Err(err);
        }
        Ok(Screen)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = disable_raw_mode();
        let _ = execute!(std::io::stdout(), LeaveAlternateScreen);
        let _ = std::io::stdout().flush();
    }
}

/// Runs the chat on the terminal until the user quits; returns the reports of the sessions it
/// ran (one per `/new`), the last last.
pub async fn run(host: &mut dyn Host, resume: bool) -> Result<Vec<RunReport>, String> {
    let mut session = host.start(resume).await?;
    let screen = Screen::enter().map_err(|e| format!("cannot set up the terminal: {e}"))?;
    let mut terminal = Terminal::new(CrosstermBackend::new(std::io::stdout()))
        .map_err(|e| format!("cannot set up the terminal: {e}"))?;
    let (keys_tx, mut keys) = tokio::sync::mpsc::unbounded_channel();
    // crossterm's reader blocks: it gets a thread of its own, ended with the process.
    std::thread::spawn(move || {
        while let Ok(event) = event::read() {
            if keys_tx.send(event).is_err() {
                break;
            }
        }
    });
    let mut app = App::new();
    let mut reports = Vec::new();
    let mut next_session = None;
    loop {
        terminal.draw(|frame| render::draw(&app, frame)).map_err(|e| format!("cannot draw: {e}"))?;
        let actions = tokio::select! {
            event = session.next_event() => match event {
                Some(event) => app.on_event(&event),
                None => {
                    // The session ended: after /new a new one starts, otherwise the chat ends.
                    if next_session.take().is_none() {
                        reports.push(session.finish().await.map_err(|e| e.to_string())?);
                        break;
                    }
                    let ended = std::mem::replace(&mut session, host.start(false).await?);
                    reports.push(ended.finish().await.map_err(|e| e.to_string())?);
                    app.reset();
                    Vec::new()
                }
            },
            key = keys.recv() => match key {
                Some(TermEvent::Key(key)) => app.on_key(key),
                Some(_) => Vec::new(),
                None => app.on_key(event::KeyEvent::new(event::KeyCode::Char('c'), event::KeyModifiers::CONTROL)),
            },
        };
        let ops = session.ops();
        for action in actions {
            match action {
                Action::Send(op) => ops.send(op),
                Action::Apply(patch) => match host.apply(&patch).await {
                    Ok(()) => app.notice("applied to your checkout"),
                    Err(err) => app.notice(format!("not applied: {err}")),
                },
                Action::SwitchModel(name) => match host.switch_model(&name).await {
                    Ok(id) => {
                        app.notice(format!("model: {id} from the next turn"));
                        app.model = id;
                    }
                    Err(err) => app.notice(format!("model not changed: {err}")),
                },
                Action::NewSession => {
                    next_session = Some(());
                    ops.send(Op::EndSession);
                }
                Action::Quit => ops.send(Op::EndSession),
            }
        }
    }
    drop(terminal);
    drop(screen);
    Ok(reports)
}
