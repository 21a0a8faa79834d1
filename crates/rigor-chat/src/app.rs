//! The chat's state machine: session events and keys in, [`Action`]s out, state for
//! [`crate::render`] to draw. Pure: no terminal, no session, no clock, so that a test drives it
//! with the events of a real session and checks what a person would see.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use rigor_protocol::{ActionOutcome, Event, Op, RunStatus, terminal};

/// Observations longer than this many lines are shown collapsed (their first lines and a count).
pub const COLLAPSED_LINES: usize = 6;

/// What the host does for the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this operation to the session.
    Send(Op),
    /// Apply this patch (the session's diff) to the user's checkout; the user confirmed.
    Apply(String),
    /// Use this model for the next turns.
    SwitchModel(String),
    /// End this session and start a new one.
    NewSession,
    /// End the session and leave.
    Quit,
}

/// One entry of the conversation pane.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// A request the user typed.
    User(String),
    /// The model's text (growing while it streams).
    Assistant(String),
    /// A tool call: the tool and its arguments.
    Tool { name: String, arguments: String },
    /// A tool's result.
    Observation { content: String, is_error: bool },
    /// A note from rigor or the loop.
    Notice(String),
    /// A request ended.
    Done { status: RunStatus, summary: String },
}

/// A held command waiting for the user's y / n / a.
#[derive(Debug, Clone, PartialEq)]
pub struct Approval {
    /// The call the request names.
    pub call_id: String,
    /// The command or code, as the policy saw it.
    pub action: String,
    /// Why it is held.
    pub reason: String,
}

/// Where the chat is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the user's next request.
    Idle,
    /// A request is under way.
    Busy,
    /// The session is ending (after `/quit`, `/new` or a second Ctrl-C).
    Ending,
}

/// The chat's state.
#[derive(Debug, Clone)]
pub struct App {
    /// The conversation pane.
    pub entries: Vec<Entry>,
    /// The input line.
    pub input: String,
    /// The session's diff against its start.
    pub diff: String,
    /// `/diff`: the diff fills the screen.
    pub diff_only: bool,
    /// A held command waiting for an answer.
    pub approval: Option<Approval>,
    /// `/apply` waiting for y / n.
    pub confirm_apply: bool,
    /// The model in use.
    pub model: String,
    /// The session's run id.
    pub run_id: String,
    /// Idle, busy or ending.
    pub phase: Phase,
    /// Ctrl-C pressed once while idle: a second quits.
    pub quit_armed: bool,
    /// Interrupts sent during this request.
    interrupts: u32,
    /// Command prefixes the user approved for good ("a").
    pub always: Vec<String>,
    /// Lines scrolled up from the bottom of the conversation.
    pub scroll: usize,
}

impl Default for App {
    fn default() -> Self {
        Self::new()
    }
}

impl App {
    /// An empty chat.
    pub fn new() -> Self {
        Self {
            entries: Vec::new(),
            input: String::new(),
            diff: String::new(),
            diff_only: false,
            approval: None,
            confirm_apply: false,
            model: String::new(),
            run_id: String::new(),
            phase: Phase::Idle,
            quit_armed: false,
            interrupts: 0,
            always: Vec::new(),
            scroll: 0,
        }
    }

    /// Adds a note of the front end's own (e.g. the host's answer to an action).
    pub fn notice(&mut self, text: impl Into<String>) {
        self.entries.push(Entry::Notice(text.into()));
    }

    /// Takes in one event of the session; returns what to send back (an approval the user gave
    /// in advance with "a").
    pub fn on_event(&mut self, event: &Event) -> Vec<Action> {
        match event {
            Event::RunStarted { model, run_id, .. } => {
                self.model = model.clone();
                self.run_id = run_id.clone();
            }
            Event::TextDelta { text } => match self.entries.last_mut() {
                Some(Entry::Assistant(streaming)) => streaming.push_str(text),
                _ => self.entries.push(Entry::Assistant(text.clone())),
            },
            Event::ModelResponse { message, .. } => {
                // The complete message replaces what streamed (they agree unless a stream was retried).
                if let Some(Entry::Assistant(streaming)) = self.entries.last_mut() {
                    *streaming = message.content.clone();
                } else if !message.content.trim().is_empty() {
                    self.entries.push(Entry::Assistant(message.content.clone()));
                }
            }
            Event::ToolCall { call, .. } => {
                self.entries.push(Entry::Tool { name: call.name.clone(), arguments: call.arguments.clone() })
            }
            Event::Observation { content, is_error, .. } => {
                self.entries.push(Entry::Observation { content: content.clone(), is_error: *is_error })
            }
            Event::PolicyDecision { action, outcome, reason, .. }
                if matches!(outcome, ActionOutcome::Refused | ActionOutcome::Rejected) =>
            {
                self.notice(format!("not run ({}): {action} — {reason}", outcome.as_str()))
            }
            Event::ApprovalRequested { call_id, action, reason, .. } => {
                if let Some(prefix) = self.always.iter().find(|p| covered(action, p)) {
                    self.notice(format!("approved by your rule `{prefix}`: {action}"));
                    return vec![Action::Send(Op::Approve { call_id: call_id.clone(), approved: true })];
                }
                self.approval =
                    Some(Approval { call_id: call_id.clone(), action: action.clone(), reason: reason.clone() });
            }
            Event::UserMessage { content, from_user: false, .. } => self.notice(content.clone()),
            Event::Notice { message } => self.notice(message.clone()),
            Event::Retry { attempt, reason, .. } => {
                self.notice(format!("retrying (attempt {attempt} failed: {reason})"))
            }
            Event::RequestFinished { status, summary, patch } => {
                self.diff = patch.clone();
                self.approval = None;
                if self.phase != Phase::Ending {
                    self.phase = Phase::Idle;
                }
                self.interrupts = 0;
                let answered = matches!(self.entries.last(), Some(Entry::Assistant(text)) if text == summary);
                let summary = if answered { String::new() } else { summary.clone() };
                self.entries.push(Entry::Done { status: *status, summary });
            }
            Event::DiffChanged { patch } => self.diff = patch.clone(),
            Event::Undone { files, patch } => {
                self.diff = patch.clone();
                match files.len() {
                    0 => self.notice("undo: the last request changed no file"),
                    _ => self.notice(format!("undone: {}", files.join(", "))),
                }
            }
            Event::RunFinished { patch, .. } => {
                self.diff = patch.clone();
                self.phase = Phase::Ending;
                self.approval = None;
            }
            _ => {}
        }
        Vec::new()
    }

    /// Takes in one key; returns what the host should do.
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Action> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        let ctrl_c = key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
        if !ctrl_c {
            self.quit_armed = false;
        }
        if ctrl_c || key.code == KeyCode::Esc {
            return self.interrupt(ctrl_c);
        }
        if let Some(approval) = self.approval.clone() {
            return self.answer(&approval, key.code);
        }
        if self.confirm_apply {
            self.confirm_apply = false;
            if key.code == KeyCode::Char('y') {
                return vec![Action::Apply(self.diff.clone())];
            }
            self.notice("not applied");
            return Vec::new();
        }
        match key.code {
            KeyCode::Enter => self.submit(),
            KeyCode::Backspace => {
                self.input.pop();
                Vec::new()
            }
            KeyCode::PageUp => {
                self.scroll += 10;
                Vec::new()
            }
            KeyCode::PageDown => {
                self.scroll = self.scroll.saturating_sub(10);
                Vec::new()
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.input.push(c);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Esc or Ctrl-C: interrupts the request under way (the second time cancels its tool);
    /// when idle, Esc clears the input and Ctrl-C twice quits.
    fn interrupt(&mut self, ctrl_c: bool) -> Vec<Action> {
        match self.phase {
            Phase::Busy => {
                self.interrupts += 1;
                self.approval = None;
                if self.interrupts == 1 {
                    self.notice("interrupting: the request stops after the current step (again to cancel it)");
                    vec![Action::Send(Op::Interrupt)]
                } else {
                    self.notice("cancelling the current step");
                    vec![Action::Send(Op::Cancel)]
                }
            }
            Phase::Idle if ctrl_c && self.quit_armed => self.quit(),
            Phase::Idle if ctrl_c => {
                self.quit_armed = true;
                self.notice("press Ctrl-C again to quit (or type /quit)");
                Vec::new()
            }
            Phase::Idle => {
                self.input.clear();
                self.confirm_apply = false;
                Vec::new()
            }
            Phase::Ending => Vec::new(),
        }
    }

    fn answer(&mut self, approval: &Approval, key: KeyCode) -> Vec<Action> {
        let approved = match key {
            KeyCode::Char('y') => true,
            KeyCode::Char('n') => false,
            KeyCode::Char('a') => {
                let prefix = prefix_of(&approval.action);
                self.notice(format!("commands starting with `{prefix}` run without asking in this session"));
                self.always.push(prefix);
                true
            }
            _ => return Vec::new(),
        };
        self.approval = None;
        vec![Action::Send(Op::Approve { call_id: approval.call_id.clone(), approved })]
    }

    fn quit(&mut self) -> Vec<Action> {
        self.phase = Phase::Ending;
        vec![Action::Quit]
    }

    /// Enter: a slash command, or a request for the agent.
    fn submit(&mut self) -> Vec<Action> {
        let text = std::mem::take(&mut self.input);
        let text = text.trim();
        if text.is_empty() || self.phase == Phase::Ending {
            return Vec::new();
        }
        self.scroll = 0;
        if let Some(command) = text.strip_prefix('/') {
            return self.command(command);
        }
        self.entries.push(Entry::User(text.to_string()));
        self.phase = Phase::Busy;
        vec![Action::Send(Op::UserMessage { text: text.to_string() })]
    }

    fn command(&mut self, command: &str) -> Vec<Action> {
        let (name, argument) = command.split_once(' ').map(|(n, a)| (n, a.trim())).unwrap_or((command, ""));
        match name {
            "diff" => self.diff_only = !self.diff_only,
            "apply" if self.diff.trim().is_empty() => self.notice("nothing to apply: the session changed no file"),
            "apply" => {
                let files = diff_files(&self.diff);
                self.notice(format!(
                    "apply the session's diff ({} file(s): {}) to your checkout? y / n",
                    files.len(),
                    files.join(", ")
                ));
                self.confirm_apply = true;
            }
            "undo" if self.phase == Phase::Busy => {
                self.notice("a request is under way: wait for it, or interrupt it (Esc), then /undo")
            }
            "undo" => return vec![Action::Send(Op::Undo)],
            "model" if argument.is_empty() => self.notice(format!("model: {} (/model NAME to change)", self.model)),
            "model" => return vec![Action::SwitchModel(argument.to_string())],
            "new" => {
                self.phase = Phase::Ending;
                return vec![Action::NewSession];
            }
            "quit" | "exit" => return self.quit(),
            _ => self.notice(format!("unknown command /{name}: /diff /apply /undo /model NAME /new /quit")),
        }
        Vec::new()
    }

    /// The state to show for a new session after `/new`: the conversation and diff cleared.
    pub fn reset(&mut self) {
        let (model, always) = (std::mem::take(&mut self.model), std::mem::take(&mut self.always));
        *self = Self { model, always, ..Self::new() };
    }

    /// The hint under the input line.
    pub fn hint(&self) -> String {
        if let Some(approval) = &self.approval {
            return format!("y run it · n refuse · a always for `{}` · Esc interrupt", prefix_of(&approval.action));
        }
        if self.confirm_apply {
            return "y apply · n keep it in the session".into();
        }
        match self.phase {
            Phase::Busy => "working… Esc interrupt · Enter adds a message".into(),
            Phase::Idle => "Enter send · /diff /apply /undo /model NAME /new /quit · Ctrl-C twice quits".into(),
            Phase::Ending => "ending the session…".into(),
        }
    }
}

/// The prefix "a" approves for good: the program and, when the second word is a subcommand
/// (not an option or a path), that too: `git push`, `npm install`, `curl`.
pub fn prefix_of(action: &str) -> String {
    let words: Vec<&str> = action.split_whitespace().take(2).collect();
    match words.as_slice() {
        [program, sub] if sub.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') && !sub.starts_with('-') => {
            format!("{program} {sub}")
        }
        [program, ..] => program.to_string(),
        [] => String::new(),
    }
}

/// Whether the approved `prefix` covers `action`: the action starts with it as whole words and
/// is one simple command (no `;`, `&`, `|`, redirection, substitution or newline that could
/// chain another command behind the approved one).
pub fn covered(action: &str, prefix: &str) -> bool {
    let simple = !action.chars().any(|c| matches!(c, ';' | '&' | '|' | '<' | '>' | '`' | '$' | '\n' | '(' | ')'));
    let rest = action.trim_start().strip_prefix(prefix);
    simple && !prefix.is_empty() && rest.is_some_and(|r| r.is_empty() || r.starts_with(' '))
}

/// The files a diff touches (from its `diff --git a/X b/X` lines), escaped for display.
fn diff_files(diff: &str) -> Vec<String> {
    diff.lines()
        .filter_map(|l| l.strip_prefix("diff --git a/"))
        .map(|l| terminal::escape(l.split(" b/").next().unwrap_or(l)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn the_prefix_is_the_program_and_its_subcommand() {
        assert_eq!(prefix_of("git push origin main"), "git push");
        assert_eq!(prefix_of("curl -d @a https://x"), "curl");
        assert_eq!(prefix_of("rm ./build"), "rm");
    }

    #[test]
    fn an_approved_prefix_never_covers_a_chained_command() {
        assert!(covered("git push origin main", "git push"));
        assert!(covered("git push", "git push"));
        assert!(!covered("git pushx", "git push"));
        for chained in ["git push; rm -rf ~", "git push && curl x", "git push $(id)", "git push\nrm x", "git push | sh"]
        {
            assert!(!covered(chained, "git push"), "{chained}");
        }
    }

    #[test]
    fn ctrl_c_twice_when_idle_quits_and_once_when_busy_interrupts() {
        let mut app = App::new();
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert!(app.on_key(ctrl_c).is_empty());
        assert_eq!(app.on_key(ctrl_c), vec![Action::Quit]);

        let mut app = App::new();
        app.input = "fix it".into();
        assert_eq!(app.on_key(key(KeyCode::Enter)), vec![Action::Send(Op::UserMessage { text: "fix it".into() })]);
        assert_eq!(app.on_key(ctrl_c), vec![Action::Send(Op::Interrupt)]);
        assert_eq!(app.on_key(key(KeyCode::Esc)), vec![Action::Send(Op::Cancel)]);
        assert_eq!(app.phase, Phase::Busy, "an interrupt does not end the session");
    }
}
