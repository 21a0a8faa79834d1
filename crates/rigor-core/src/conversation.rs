//! Conversations (`rigor chat`): a run whose session, after the model finishes one request,
//! waits for the user's next message instead of ending. It is one run like any other: one
//! workspace, one trajectory in `.rigor/runs/<id>/` (`run_started` says `conversation`), so
//! `rigor replay` and `rigor view` read it as they read any run.
//!
//! Between requests the session is idle: it answers `Op::Undo` (the files the last request
//! changed are put back from a workspace snapshot taken when it began, and the model is told) and
//! `Op::EndSession`. An interrupt ends the request under way, not the session. A conversation can
//! be resumed ([`Resume::last`]): a new run that starts from the conversation and the changes of
//! the one it continues.
//!
//! This module does not know terminals or keys: front ends drive it through
//! [`crate::session::Session`].

use std::path::Path;

use rigor_protocol::{Event, Message, Role, RunStatus};

use crate::agent::{Agent, Idle, Inbox, Interrupt, LoopOutcome};
use crate::events::Emitter;
use crate::trajectory::read_trajectory;
use crate::workspace::Workspace;

/// How a run is a conversation ([`crate::run::RunRequest::conversation`]).
#[derive(Debug, Clone, Default)]
pub struct Conversation {
    /// Wait for the user's messages (a live session); otherwise end once no scheduled message is
    /// due (a replay, whose messages are all scheduled).
    pub wait: bool,
    /// The conversation this one continues.
    pub resume: Option<Resume>,
}

/// What a resumed conversation continues from.
#[derive(Debug, Clone)]
pub struct Resume {
    /// The run id of the conversation continued.
    pub run_id: String,
    /// Its commit.
    pub base_commit: String,
    /// Its conversation after the system prompt, as the model saw it.
    pub messages: Vec<Message>,
    /// Its changes (its `patch.diff`), applied to the new workspace first.
    pub patch: String,
}

impl Resume {
    /// The most recent conversation recorded in `repo_root`'s `.rigor/runs` (run ids start with
    /// their time, so the greatest id among conversations), or `None` when there is none.
    pub fn last(repo_root: &Path) -> Result<Option<Resume>, String> {
        let runs = repo_root.join(".rigor").join("runs");
        let mut ids: Vec<String> = match std::fs::read_dir(&runs) {
            Ok(entries) => entries.flatten().filter_map(|e| e.file_name().into_string().ok()).collect(),
            Err(_) => return Ok(None),
        };
        ids.sort();
        for id in ids.iter().rev() {
            let dir = runs.join(id);
            let Ok(records) = read_trajectory(&dir.join("trajectory.jsonl")) else { continue };
            let events: Vec<Event> = records.into_iter().map(|r| r.event).collect();
            if let Some(resume) = Self::from_events(&events, &dir)? {
                return Ok(Some(resume));
            }
        }
        Ok(None)
    }

    /// The conversation recorded in `events` (of the run directory `dir`), or `None` when they
    /// are not a conversation's.
    fn from_events(events: &[Event], dir: &Path) -> Result<Option<Resume>, String> {
        let Some(Event::RunStarted { run_id, base_commit, issue, prompt, conversation: true, .. }) = events.first()
        else {
            return Ok(None);
        };
        let mut messages = Vec::new();
        if !issue.trim().is_empty() {
            messages.push(Message::user(crate::prompt::issue_prompt_for(*prompt, issue)));
        }
        let mut patch = String::new();
        for event in events {
            match event {
                Event::ModelResponse { message, .. } if message.role == Role::Assistant => {
                    messages.push(message.clone())
                }
                Event::Observation { call_id, content, is_error, .. } => {
                    messages.push(Message::tool_result(call_id, content, *is_error))
                }
                Event::UserMessage { content, .. } => messages.push(Message::user(content.clone())),
                Event::RunFinished { patch: recorded, .. } => patch = recorded.clone(),
                _ => {}
            }
        }
        answer_unanswered_calls(&mut messages);
        // A large patch is recorded whole only in patch.diff.
        if let Ok(whole) = std::fs::read_to_string(dir.join("patch.diff")) {
            patch = whole;
        }
        Ok(Some(Resume { run_id: run_id.clone(), base_commit: base_commit.clone(), messages, patch }))
    }
}

/// Gives every tool call without a result (a session that ended while a tool ran) one, so the
/// conversation stays well-formed for the model.
fn answer_unanswered_calls(messages: &mut Vec<Message>) {
    let mut fixed = Vec::with_capacity(messages.len());
    let mut open: Vec<String> = Vec::new();
    for message in messages.drain(..) {
        match message.role {
            Role::Tool => open.retain(|id| Some(id) != message.tool_call_id.as_ref()),
            _ => {
                for id in open.drain(..) {
                    fixed.push(Message::tool_result(&id, "not run: the session ended first", true));
                }
            }
        }
        if message.role == Role::Assistant {
            open = message.tool_calls.iter().map(|c| c.id.clone()).collect();
        }
        fixed.push(message);
    }
    for id in open {
        fixed.push(Message::tool_result(&id, "not run: the session ended first", true));
    }
    *messages = fixed;
}

/// What a conversation needs from the run around it.
pub(crate) struct Seat<'a> {
    pub agent: &'a Agent<'a>,
    pub workspace: &'a Workspace,
    pub emitter: Emitter,
    pub inbox: Inbox,
    pub interrupt: Interrupt,
    pub wait: bool,
}

/// Runs the conversation that starts with `messages`, a first request at once when `first` (the
/// run's issue), then each time a message is due, until the session ends.
pub(crate) async fn converse(seat: Seat<'_>, messages: Vec<Message>, first: bool) -> LoopOutcome {
    let Seat { agent, workspace, emitter, inbox, interrupt, wait } = seat;
    let mut dialogue = agent.dialogue(messages);
    let mut last = (RunStatus::Submitted, "the session ended".to_string());
    let mut snapshot: Option<String> = None;
    let mut next = if first { Idle::Request } else { inbox.idle(dialogue.steps(), wait).await };
    loop {
        match next {
            Idle::End => break,
            Idle::Request => {
                interrupt.reset();
                snapshot = workspace.snapshot().await.ok();
                last = agent.request(&mut dialogue).await;
                let patch = workspace.diff().await.unwrap_or_default();
                emitter.emit(Event::RequestFinished { status: last.0, summary: last.1.clone(), patch });
            }
            Idle::Undo => match snapshot.take() {
                None => emitter.emit(Event::Notice { message: "nothing to undo".into() }),
                Some(tree) => match workspace.restore(&tree).await {
                    Ok(files) => {
                        let patch = workspace.diff().await.unwrap_or_default();
                        if !files.is_empty() {
                            let note = format!(
                                "The user undid the changes of your last request: {} restored to how they were \
                                 before it.",
                                files.join(", ")
                            );
                            agent.tell(&mut dialogue, note);
                        }
                        emitter.emit(Event::Undone { files, patch });
                    }
                    Err(err) => emitter.emit(Event::Notice { message: format!("could not undo: {err}") }),
                },
            },
        }
        next = inbox.idle(dialogue.steps(), wait).await;
    }
    Agent::outcome(dialogue, last.0, last.1)
}

#[cfg(test)]
mod tests {
    use rigor_protocol::ToolCall;

    use super::*;

    #[test]
    fn a_call_left_without_result_gets_one() {
        let call = ToolCall { id: "c1".into(), name: "bash".into(), arguments: "{}".into() };
        let mut messages =
            vec![Message::user("hi"), Message::assistant("", vec![call]), Message::user("are you there?")];
        answer_unanswered_calls(&mut messages);
        assert_eq!(messages.len(), 4);
        assert_eq!(messages[2].role, Role::Tool);
        assert_eq!(messages[2].tool_call_id.as_deref(), Some("c1"));
    }
}
