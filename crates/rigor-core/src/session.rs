//! A run as a session: start it, read its events, send it operations, collect its report.
//!
//! [`Session::start`] spawns [`crate::run::execute`] on the caller's runtime and returns at
//! once. Out of the session comes the run's [`Event`] stream (redacted, in order; it ends when the
//! run has finished and its record is written); into it go [`Op`]s: `Interrupt` (stop after the
//! current step), `Cancel` (stop now), `Approve { call_id, approved }`, the answer to an
//! `approval_requested` event, and `UserMessage { text }`, which joins the conversation before
//! the next model turn; in a conversation (`RunRequest::conversation`) also `Undo` and
//! `EndSession` (see [`crate::conversation`]). Approval is thus an event plus an op, not a callback into the front
//! end: a terminal, a TUI, an MCP client or a browser answer it the same way. A session started
//! without approvals refuses held actions, as a headless run does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rigor_llm::Provider;
use rigor_protocol::{Event, Op};
use tokio::sync::{mpsc, oneshot};

use crate::agent::{Inbox, Interrupt};
use crate::approval::{ApprovalRequest, Approver};
use crate::events::{Emitter, EventSink};
use crate::redact::Redactor;
use crate::run::{Controls, RunError, RunReport, RunRequest, execute};

/// Approvals waiting for their `Op::Approve`, by call id.
type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<bool>>>>;

/// A running session.
pub struct Session {
    events: mpsc::UnboundedReceiver<Event>,
    ops: Ops,
    run: tokio::task::JoinHandle<Result<RunReport, RunError>>,
}

impl Session {
    /// Starts `request` with `provider`. With `approvals`, held actions wait for an
    /// [`Op::Approve`] (announced by an `approval_requested` event); without, they are refused.
    pub fn start(request: RunRequest, provider: Arc<dyn Provider>, approvals: bool) -> Self {
        let (event_tx, events) = mpsc::unbounded_channel();
        // The records redact the environment's secrets and those the sources were configured with.
        let configured: Vec<(String, String)> = request.sources.iter().flat_map(|s| s.secrets()).collect();
        let emitter = Emitter::with_redactor(Redactor::from_vars_and(std::env::vars(), configured));
        emitter.add(ChannelSink(event_tx));
        let ops = Ops { interrupt: Interrupt::new(), inbox: Inbox::new(), pending: Pending::default() };
        let approver = approvals.then(|| {
            Arc::new(OpApprover { emitter: emitter.clone(), pending: Arc::clone(&ops.pending) }) as Arc<dyn Approver>
        });
        let controls = Controls { interrupt: ops.interrupt.clone(), inbox: ops.inbox.clone(), approver };
        // A run is a `Send` future, spawned on the caller's runtime like any task.
        let run = tokio::spawn(async move { execute(request, provider.as_ref(), emitter, controls).await });
        Self { events, ops, run }
    }

    /// The next event, or `None` once the run has ended and every event was read.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// Where to send operations (clone it for another task, e.g. a Ctrl-C handler).
    pub fn ops(&self) -> Ops {
        self.ops.clone()
    }

    /// Waits for the run's report (events not yet read are dropped).
    pub async fn finish(self) -> Result<RunReport, RunError> {
        drop(self.events);
        match self.run.await {
            Ok(result) => result,
            Err(join) => Err(RunError::Crashed(join.to_string())),
        }
    }
}

/// Sends operations to a session. Each takes effect before [`Ops::send`] returns (an interrupt
/// is counted, a message is queued for the next turn, an approval answered), so a client knows
/// its operation arrived; one sent after the run ended does nothing.
#[derive(Clone)]
pub struct Ops {
    interrupt: Interrupt,
    inbox: Inbox,
    pending: Pending,
}

impl Ops {
    /// Applies `op` to the session.
    pub fn send(&self, op: Op) {
        match op {
            Op::Interrupt => self.interrupt.trigger(),
            Op::Cancel => {
                // The loop stops after the first, and cancels a running tool at the second.
                while self.interrupt.count() < 2 {
                    self.interrupt.trigger();
                }
            }
            Op::Approve { call_id, approved } => {
                let waiting = self.pending.lock().ok().and_then(|mut p| p.remove(&call_id));
                if let Some(answer) = waiting {
                    let _ = answer.send(approved);
                }
            }
            Op::UserMessage { text } => self.inbox.send(text),
            Op::Undo => self.inbox.undo(),
            Op::EndSession => {
                self.inbox.end();
                self.send(Op::Cancel);
            }
        }
    }
}

/// Sends each event into the session's stream.
struct ChannelSink(mpsc::UnboundedSender<Event>);

impl EventSink for ChannelSink {
    fn emit(&mut self, event: &Event) {
        let _ = self.0.send(event.clone());
    }
}

/// Asks by event, waits for the op.
struct OpApprover {
    emitter: Emitter,
    pending: Pending,
}

#[async_trait]
impl Approver for OpApprover {
    async fn approve(&self, request: &ApprovalRequest) -> bool {
        let (answer, wait) = oneshot::channel();
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(request.call_id.clone(), answer);
        }
        let d = &request.decision;
        self.emitter.emit(Event::ApprovalRequested {
            call_id: request.call_id.clone(),
            tool: request.tool.clone(),
            action: request.action.text().to_string(),
            verdict: d.verdict,
            category: d.category,
            reason: d.reason.clone(),
        });
        // A session dropped before answering declines.
        wait.await.unwrap_or(false)
    }
}
