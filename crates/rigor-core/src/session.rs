//! A run as a session: start it, read its events, send it operations, collect its report.
//!
//! [`Session::start`] spawns [`crate::run::execute_with`] on the caller's runtime and returns at
//! once. Out of the session comes the run's [`Event`] stream (redacted, in order; it ends when the
//! run has finished and its record is written); into it go [`Op`]s: `Interrupt` (stop after the
//! current step), `Cancel` (stop now), and `Approve { call_id, approved }`, the answer to an
//! `approval_requested` event. Approval is thus an event plus an op, not a callback into the front
//! end: a terminal, a TUI, an MCP client or a browser answer it the same way. A session started
//! without approvals refuses held actions, as a headless run does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rigor_llm::Provider;
use rigor_protocol::{Event, Op};
use tokio::sync::{mpsc, oneshot};

use crate::agent::Interrupt;
use crate::approval::{ApprovalRequest, Approver};
use crate::events::{Emitter, EventSink};
use crate::run::{RunError, RunReport, RunRequest, execute_with};

/// Approvals waiting for their `Op::Approve`, by call id.
type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<bool>>>>;

/// A running session.
pub struct Session {
    events: mpsc::UnboundedReceiver<Event>,
    ops: mpsc::UnboundedSender<Op>,
    run: tokio::task::JoinHandle<Result<RunReport, RunError>>,
}

impl Session {
    /// Starts `request` with `provider`. With `approvals`, held actions wait for an
    /// [`Op::Approve`] (announced by an `approval_requested` event); without, they are refused.
    pub fn start(request: RunRequest, provider: Arc<dyn Provider>, approvals: bool) -> Self {
        let (event_tx, events) = mpsc::unbounded_channel();
        let (ops, mut op_rx) = mpsc::unbounded_channel::<Op>();
        let emitter = Emitter::new();
        emitter.add(ChannelSink(event_tx));
        let interrupt = Interrupt::new();
        let pending: Pending = Arc::default();
        let approver = approvals.then(|| {
            Arc::new(OpApprover { emitter: emitter.clone(), pending: Arc::clone(&pending) }) as Arc<dyn Approver>
        });
        let on_op = interrupt.clone();
        tokio::spawn(async move {
            while let Some(op) = op_rx.recv().await {
                match op {
                    Op::Interrupt => on_op.trigger(),
                    Op::Cancel => {
                        // The loop stops after the first, and cancels a running tool at the second.
                        while on_op.count() < 2 {
                            on_op.trigger();
                        }
                    }
                    Op::Approve { call_id, approved } => {
                        let waiting = pending.lock().ok().and_then(|mut p| p.remove(&call_id));
                        if let Some(answer) = waiting {
                            let _ = answer.send(approved);
                        }
                    }
                }
            }
        });
        let run =
            tokio::spawn(async move { execute_with(request, provider.as_ref(), emitter, interrupt, approver).await });
        Self { events, ops, run }
    }

    /// The next event, or `None` once the run has ended and every event was read.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// Where to send operations (clone it for another task, e.g. a Ctrl-C handler).
    pub fn ops(&self) -> mpsc::UnboundedSender<Op> {
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
