//! The agent loop: model turn, tool calls, observations, until the agent finishes or abstains,
//! a budget runs out, the user interrupts, or the provider fails for good.
//!
//! Invariants:
//! - every tool call the model makes gets exactly one tool result in the conversation;
//! - every state change is emitted as an [`Event`] before the loop moves on, so the trajectory is
//!   complete up to the last event whatever stops the run;
//! - tool and argument errors are observations for the model, never errors of the run.
//!
//! Interrupts: the first Ctrl-C cancels a model call in flight (nothing of it is lost: it was not
//! yet part of the conversation) but lets a running tool finish, then stops; a second Ctrl-C
//! cancels the running tool too.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rigor_llm::{ChatRequest, ChatResponse, Provider, StreamEvent};
use rigor_protocol::{Event, FinishReason, Message, RunStatus, RunTotals, ToolCall, ToolSpec};
use rigor_tools::{Draft, Stop, ToolBox, ToolOutput};
use tokio::sync::Notify;

use crate::approval::ActionScreen;
use crate::config::AgentSettings;
use crate::context::{ContextBudget, estimate_tools};
use crate::events::Emitter;
use crate::prompt::NO_ACTION_NUDGE;
use crate::prompt::PromptProfile;

/// Replies in a row without a tool call before the run gives up.
const MAX_REPLIES_WITHOUT_ACTION: u32 = 3;

/// Identical calls with identical results in a row after which the model is told to change course
/// (a small model decoding greedily otherwise repeats a failing call until the budget runs out).
const REPEATS_BEFORE_NOTE: u32 = 3;

/// Identical calls with identical results in a row after which the run stops: the note did not
/// change the model's course, and more turns would only spend the budget.
const REPEATS_BEFORE_STOP: u32 = 5;

/// Said with a call that failed in a reply the output limit cut off.
const CUT_OFF_NOTE: &str = "your reply was cut off at the output limit, so the call in it is incomplete: send a \
                            shorter one (an edit replaces only the lines that change, not the whole file).";

/// The sampling temperature of a request after a repeated call (see [`Repeats::temperature`]).
const REPEAT_TEMPERATURE: f32 = 0.7;

/// What the run has done so far, for the loop's questions to a model that skips a step: a
/// `finish` before anything was edited or run, and an `abstain` before anything was run, are
/// questioned once each; a failed edit of a file never viewed is answered with the file.
#[derive(Default)]
struct Progress {
    /// Whether to question and note at all.
    asks: bool,
    /// An `edit` succeeded.
    edited: bool,
    /// A shell command or Python snippet ran.
    ran: bool,
    /// Paths viewed (`view`), named in a command, or shown after a failed edit.
    seen: Vec<String>,
    /// The early `finish` was questioned already.
    questioned_finish: bool,
    /// The early `abstain` was questioned already.
    questioned_abstain: bool,
    /// What the issue's examples gave on the original code, once run.
    examples_before: Option<String>,
}

/// The loop's advice on a tool's result, appended to the observation.
#[derive(Default)]
struct Advice {
    note: String,
    /// A file to show after the note (its `view`), for an edit that failed on a file never seen.
    show: Option<String>,
    /// Run the issue's examples after the call and compare with this, their output on the
    /// original code (after a kept edit).
    examples: Option<String>,
}

impl Progress {
    /// Records a call that ran, with whether it failed.
    fn record(&mut self, call: &ToolCall, failed: bool) {
        let args = call.parsed_arguments().unwrap_or_default();
        let text = |key: &str| args.get(key).and_then(serde_json::Value::as_str).unwrap_or_default().to_string();
        match call.name.as_str() {
            "edit" if !failed => self.edited = true,
            "bash" | "python" => {
                self.ran = true;
                self.seen.push(text(if call.name == "bash" { "command" } else { "code" }));
            }
            "view" | "retrieve_entity" | "search" => self.seen.push(call.arguments.clone()),
            _ => {}
        }
    }

    /// The question for a `finish` before anything was edited or run, or an `abstain` before
    /// anything was run (each once per run). A small model gives up early on a bug it could fix:
    /// measured on the bundled example, Qwen2.5-Coder-1.5B abstained after three failed edits of
    /// a file it had never viewed, with "The edit command is not supported in this tool.".
    fn question_stop(&mut self, call: &ToolCall) -> Option<String> {
        if !self.asks {
            return None;
        }
        match call.name.as_str() {
            "finish" if !self.edited && !self.ran && !self.questioned_finish => {
                self.questioned_finish = true;
                Some(
                    "not finished yet: you have not edited any file or run any command in this run, so nothing \
                     shows the issue is fixed. Edit the code the issue is about and run a check; if it really needs \
                     no change, call `finish` again with the reason."
                        .into(),
                )
            }
            "abstain" if !self.ran && !self.questioned_abstain => {
                self.questioned_abstain = true;
                Some(
                    "not abstained yet: you have not run any command in this run, so nothing shows the issue cannot \
                     be fixed. View the code the issue is about, run the example it gives, then edit with \
                     `str_replace` (old_str copied exactly from the file). If it really cannot be done, call \
                     `abstain` again with what you tried."
                        .into(),
                )
            }
            _ => None,
        }
    }

    /// Advice for an edit of a file that was never viewed or named in a command: when the edit
    /// failed, the file itself comes with it (a small model that edits blind repeats the same
    /// failing edit; with the text in front of it, it can copy what to replace).
    fn unseen_edit(&mut self, call: &ToolCall, failed: bool) -> Option<Advice> {
        if !self.asks || call.name != "edit" {
            return None;
        }
        let path = call.parsed_arguments().ok()?.get("path")?.as_str()?.trim_start_matches("./").to_string();
        let command = call.parsed_arguments().ok()?.get("command")?.as_str()?.to_string();
        if path.is_empty() || command == "create" || self.seen.iter().any(|s| s.contains(&path)) {
            return None;
        }
        Some(if failed {
            self.seen.push(path.clone());
            Advice {
                note: format!(
                    "you have not viewed `{path}` in this run. Here it is, with line numbers: copy the exact lines to \
                     replace into old_str, without the numbers."
                ),
                show: Some(path),
                ..Advice::default()
            }
        } else {
            Advice {
                note: format!("you edited `{path}` without viewing it: check that it is the file the issue is about."),
                ..Advice::default()
            }
        })
    }
}

/// The files whose code `system` shows under [`rigor_tools::SHOWN_CODE_HEADING`].
fn shown_in_prompt(system: &str) -> Vec<String> {
    let Some((_, shown)) = system.split_once(rigor_tools::SHOWN_CODE_HEADING) else { return Vec::new() };
    let block = shown.trim_start_matches('\n').split("\n\n").next().unwrap_or_default();
    let mut paths: Vec<String> = block
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(path, rest)| !path.is_empty() && !path.contains(char::is_whitespace) && rest.contains(", lines "))
        .map(|(path, _)| path.to_string())
        .collect();
    paths.dedup();
    paths
}

/// Calls looked back on for repeats: a call that comes back with the same result within this
/// many calls repeats, in a row or not (a small model also goes in circles: on the bundled
/// example Qwen2.5-Coder-1.5B made one edit, undid it, tried to undo again, and made the same
/// edit again, five times over at temperature 0).
const REPEAT_WINDOW: usize = 8;

/// Wall-clock limit of one run of the issue's examples.
const EXAMPLES_TIMEOUT_SECS: u64 = 60;

/// `text` indented by four spaces (shown in a message without a fence, which a model driven by
/// text actions could take for an action of its own).
fn indented(text: &str) -> String {
    text.lines().map(|line| format!("    {line}\n")).collect()
}

/// The examples' output `now`, each line that differs from `before`'s followed by it.
fn compared(before: &str, now: &str) -> String {
    let before: Vec<&str> = before.lines().collect();
    let mut out = String::new();
    for (i, line) in now.lines().enumerate() {
        out.push_str(&format!("    {line}\n"));
        if let Some(was) = before.get(i).filter(|was| *was != &line) {
            out.push_str(&format!("    (before: {was})\n"));
        }
    }
    out
}

/// Tracks the last [`REPEAT_WINDOW`] tool calls with their results, and how often the last one
/// occurs among them.
#[derive(Default)]
struct Repeats {
    recent: std::collections::VecDeque<(String, String, String)>,
    /// Occurrences of the last call and result in the window.
    count: u32,
    /// Whether those occurrences are the last `count` calls.
    in_a_row: bool,
}

impl Repeats {
    /// Records a call and its observation; returns a note for the model when the same call has
    /// now given the same result [`REPEATS_BEFORE_NOTE`] times within the window (and at every
    /// further repeat).
    fn record(&mut self, call: &ToolCall, observation: &str, failed: bool) -> Option<String> {
        let key = (call.name.clone(), call.arguments.clone(), observation.to_string());
        if self.recent.len() == REPEAT_WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(key);
        let last = self.recent.back()?;
        self.count = self.recent.iter().filter(|k| *k == last).count() as u32;
        self.in_a_row = self.recent.iter().rev().take_while(|k| *k == last).count() as u32 == self.count;
        (self.count >= REPEATS_BEFORE_NOTE).then(|| {
            let (how, circle) = if self.in_a_row {
                (format!("{} times in a row", self.count), "")
            } else {
                (
                    format!("{} times in your last {} calls", self.count, self.recent.len()),
                    ", and the calls between did not move you on: you are going in a circle",
                )
            };
            format!(
                "You have made the same `{}` call {how} and got the same result each time{circle}. Repeating it will \
                 not change anything (the run stops after {REPEATS_BEFORE_STOP}). {}",
                call.name,
                next_step(&call.name, failed)
            )
        })
    }

    /// The temperature of the next request: `base`, or at least [`REPEAT_TEMPERATURE`] once
    /// the last call has repeated with the same result. A model decoding greedily sees a prompt
    /// that barely changed and writes the same call again: on the bundled example Qwen2.5-Coder-
    /// 1.5B sent one failing `edit` five times in a row at temperature 0, the note between them
    /// notwithstanding. Sampling lets it out (`rigor model serve` seeds its sampler, so a run on it
    /// stays reproducible).
    fn temperature(&self, base: Option<f32>) -> Option<f32> {
        if self.count >= 2 { Some(base.unwrap_or(0.0).max(REPEAT_TEMPERATURE)) } else { base }
    }

    /// Whether the same call has now repeated often enough to stop the run.
    fn exhausted(&self) -> bool {
        self.count >= REPEATS_BEFORE_STOP
    }
}

/// What to do instead of repeating a call to `tool`: a concrete next step in the text action
/// format (the model that repeats itself is usually a small one, driven by text actions).
fn next_step(tool: &str, failed: bool) -> &'static str {
    if failed {
        return "The call fails the same way each time: read the error, then try something different (other \
                arguments, or another tool), or call `abstain` with the reason if you are stuck.";
    }
    match tool {
        "view" | "search" | "retrieve_entity" | "search_entity" | "traverse_graph" => {
            "You have read enough: change the code now, e.g.\n```edit\n{\"command\": \"str_replace\", \"path\": \
             \"<file>\", \"old_str\": \"<exact text>\", \"new_str\": \"<fixed text>\"}\n```"
        }
        "edit" => {
            "You keep making this edit again: keep it once it is made and run the issue's example or the tests to \
             check it, or make a different edit."
        }
        _ => {
            "Do something else: view the file the issue names, edit it, or run a different check; call `abstain` \
              with the reason if you are stuck."
        }
    }
}

/// Counts interrupt requests (Ctrl-C) and wakes the loop when one arrives.
#[derive(Clone, Default)]
pub struct Interrupt {
    count: Arc<AtomicU32>,
    notify: Arc<Notify>,
}

impl Interrupt {
    /// A fresh, untriggered interrupt.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one interrupt request.
    pub fn trigger(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Forgets the requests so far (a conversation's next request starts uninterrupted).
    pub(crate) fn reset(&self) {
        self.count.store(0, Ordering::SeqCst);
    }

    /// How many times it was triggered.
    pub fn count(&self) -> u32 {
        self.count.load(Ordering::SeqCst)
    }

    /// Resolves once the count reaches `n`.
    pub async fn reached(&self, n: u32) {
        loop {
            let notified = self.notify.notified();
            if self.count() >= n {
                return;
            }
            notified.await;
        }
    }
}

/// Messages waiting to join the conversation before a model turn: sent by the user while the run
/// goes on (`Op::UserMessage`), or scheduled after a given turn (a replay sends the recorded ones
/// again at the same point). A message sent after a single-request run's last turn is never seen;
/// a conversation waits for one ([`Inbox::idle`]), and for `Undo` and `EndSession`.
#[derive(Clone, Default)]
pub struct Inbox(Arc<InboxState>);

#[derive(Default)]
struct InboxState {
    queue: Mutex<Queue>,
    /// Wakes a conversation waiting in [`Inbox::idle`] (one waiter: a stored permit is not lost).
    arrived: Notify,
}

#[derive(Default)]
struct Queue {
    messages: Vec<(u32, String)>,
    undo: u32,
    end: bool,
}

/// What a conversation waiting for the user does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idle {
    /// A message is due: run a request.
    Request,
    /// Undo the last request's changes.
    Undo,
    /// End the session.
    End,
}

impl Inbox {
    /// An empty inbox.
    pub fn new() -> Self {
        Self::default()
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.0.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `text` joins the conversation before the next model turn.
    pub fn send(&self, text: String) {
        self.schedule(0, text);
    }

    /// `text` joins the conversation once `after` model turns have completed.
    pub fn schedule(&self, after: u32, text: String) {
        self.queue().messages.push((after, text));
        self.0.arrived.notify_one();
    }

    /// Asks a conversation to undo its last request once idle.
    pub(crate) fn undo(&self) {
        self.queue().undo += 1;
        self.0.arrived.notify_one();
    }

    /// Asks a conversation to end once idle.
    pub(crate) fn end(&self) {
        self.queue().end = true;
        self.0.arrived.notify_one();
    }

    /// The messages due once `completed` turns have completed, in the order they were added.
    fn take_due(&self, completed: u32) -> Vec<String> {
        let mut queue = self.queue();
        let (due, later): (Vec<_>, Vec<_>) = queue.messages.drain(..).partition(|(after, _)| *after <= completed);
        queue.messages = later;
        due.into_iter().map(|(_, text)| text).collect()
    }

    /// What an idle conversation does next, once `completed` turns have completed: waits for
    /// the user's next message, undo or end when `wait`, otherwise (a replay, whose messages are
    /// all scheduled) ends when no message is due. An end wins over what else is queued.
    pub(crate) async fn idle(&self, completed: u32, wait: bool) -> Idle {
        loop {
            {
                let mut queue = self.queue();
                if queue.end {
                    return Idle::End;
                }
                if queue.undo > 0 {
                    queue.undo -= 1;
                    return Idle::Undo;
                }
                if queue.messages.iter().any(|(after, _)| *after <= completed) {
                    return Idle::Request;
                }
                if !wait {
                    return Idle::End;
                }
            }
            self.0.arrived.notified().await;
        }
    }
}

/// How the loop ended.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopOutcome {
    /// Terminal status.
    pub status: RunStatus,
    /// Summary, reason or error.
    pub summary: String,
    /// Totals (duration filled in).
    pub totals: RunTotals,
}

/// One agent run over a provider and a tool box.
pub struct Agent<'a> {
    /// The model.
    pub provider: &'a dyn Provider,
    /// The tools.
    pub tools: &'a ToolBox,
    /// Where events go.
    pub emitter: Emitter,
    /// Budgets and limits.
    pub settings: AgentSettings,
    /// Ctrl-C requests.
    pub interrupt: Interrupt,
    /// The user's messages.
    pub inbox: Inbox,
    /// The action policy and approvals; `None` runs every action unscreened (tests of the loop).
    pub screen: Option<ActionScreen>,
    /// A conversation: a reply without a tool call answers the request (it ends it) instead of
    /// being nudged.
    pub conversation: bool,
    /// The workspace's starting state: when set, the diff is emitted (`diff_changed`) after each
    /// turn whose tool calls may have changed files (a conversation's running diff).
    pub baseline: Option<Arc<dyn rigor_tools::Baseline>>,
    /// Shell commands that run the issue's examples (the sources' `Contribution::examples`): with
    /// the compact profile, the loop runs them before the first turn and after each kept edit,
    /// and tells the model what they give.
    pub examples: Vec<String>,
    /// Drafts (the sources' `Contribution::drafts`): with the compact profile, a run (not a
    /// conversation) asks for each in a request of its own after running the examples, and puts
    /// the code of each reply in place with the `edit` tool before the conversation's first turn.
    pub drafts: Vec<Arc<dyn Draft>>,
    /// Whether `finish` checks the patch (the proof): then the drafts put in place are judged by
    /// a `finish` of rigor's before the conversation's first turn.
    pub prove_drafts: bool,
}

/// The conversation so far and what the loop tracks across the requests of a conversation (one
/// request for `rigor run`).
pub struct Dialogue {
    messages: Vec<Message>,
    totals: RunTotals,
    context: ContextBudget,
    idle_replies: u32,
    repeats: Repeats,
    progress: Progress,
    started: Instant,
}

impl Dialogue {
    /// Model turns completed so far.
    pub fn steps(&self) -> u32 {
        self.totals.steps
    }
}

enum Step {
    Continue,
    End(RunStatus, String),
}

impl Agent<'_> {
    /// Runs the loop from `system` and `issue` prompts to a terminal status.
    pub async fn run(&self, system: String, issue: String) -> LoopOutcome {
        let mut dialogue = self.dialogue(vec![Message::system(system), Message::user(issue)]);
        if dialogue.progress.asks
            && let Some(before) = self.run_examples(0).await
        {
            let note =
                format!("rigor ran the examples the issue gives, on the code as it is now:\n{}", indented(&before));
            dialogue.progress.examples_before = Some(before);
            self.tell(&mut dialogue, note);
        }
        let deadline = self.settings.timeout_secs.map(|s| dialogue.started + Duration::from_secs(s));
        let asked = dialogue.progress.asks && !self.conversation && self.settings.drafts;
        let drafts = if asked { self.drafts.as_slice() } else { &[] };
        let (mut kept, mut fixed) = (Vec::new(), false);
        for draft in drafts {
            let done = match self.budget_check(&dialogue.totals, 0, deadline) {
                Some(end) => Err(end),
                None => self.draft(&mut dialogue, draft.as_ref(), deadline).await,
            };
            match done {
                Ok(true) => {
                    kept.push(draft.what());
                    fixed |= draft.fixes();
                }
                Ok(false) => {}
                Err((status, summary)) => return Self::outcome(dialogue, status, summary),
            }
        }
        // A drafted test alone is no patch to judge: the conversation starts from it.
        if self.prove_drafts
            && fixed
            && let Some((status, summary)) = self.finish_drafts(&mut dialogue, &kept, deadline).await
        {
            return Self::outcome(dialogue, status, summary);
        }
        let (status, summary) = self.request_within(&mut dialogue, 0, deadline).await;
        Self::outcome(dialogue, status, summary)
    }

    /// Asks the model for `draft` in a request of its own (a turn: it counts as a step) and puts
    /// the code of its reply in place with the `edit` tool, screened and checked like the model's
    /// edits, the examples compared after it. The recorded response is the reply with that `edit`
    /// call (what a replay serves and an export shows); the conversation gets the call and its
    /// result. A reply without usable code changes nothing and is said in a notice. Returns
    /// whether the edit was kept, or how the run ends instead (an interrupt, the time budget, a
    /// provider failure).
    async fn draft(
        &self,
        dialogue: &mut Dialogue,
        draft: &dyn Draft,
        deadline: Option<Instant>,
    ) -> Result<bool, (RunStatus, String)> {
        let turn = dialogue.totals.steps + 1;
        let messages = vec![Message::user(draft.prompt())];
        let estimated_tokens = dialogue.context.estimate_with(&messages, 0);
        self.emitter.emit(Event::ModelRequest { turn, messages: messages.len(), estimated_tokens });
        let request = ChatRequest {
            messages,
            tools: Vec::new(),
            max_output_tokens: Some(draft.output_tokens().min(self.settings.max_output_tokens.unwrap_or(u32::MAX))),
            temperature: self.settings.temperature,
        };
        let (mut response, latency) = self.call_model(turn, &request, estimated_tokens, deadline).await?;
        let edit = draft.edit(&response.message.content);
        let call = edit.as_ref().ok().map(|arguments| ToolCall {
            id: format!("draft-{turn}"),
            name: "edit".into(),
            arguments: arguments.to_string(),
        });
        response.message = Message::assistant(response.message.content, call.clone().into_iter().collect());
        self.record_response(turn, &mut dialogue.totals, &response, latency);
        let Some(call) = call else {
            let why = edit.err().unwrap_or_default();
            self.emitter
                .emit(Event::Notice { message: format!("the model's draft of {} was not used: {why}", draft.what()) });
            return Ok(false);
        };
        let examples = dialogue.progress.examples_before.clone();
        let advise = |output: &ToolOutput| {
            (!output.is_error && examples.is_some()).then(|| Advice { examples, ..Advice::default() })
        };
        let output = self.rigors_call(dialogue, turn, &call, deadline, advise).await;
        Ok(!output.is_error)
    }

    /// Makes `call` on rigor's behalf in turn `turn`: the conversation gets it as an assistant
    /// message with its result, and it runs and is counted like the model's calls.
    async fn rigors_call(
        &self,
        dialogue: &mut Dialogue,
        turn: u32,
        call: &ToolCall,
        deadline: Option<Instant>,
        advise: impl FnOnce(&ToolOutput) -> Option<Advice>,
    ) -> ToolOutput {
        dialogue.messages.push(Message::assistant(String::new(), vec![call.clone()]));
        let output = self.run_tool(turn, call, deadline, advise).await;
        dialogue.totals.tool_calls += 1;
        dialogue.progress.record(call, output.is_error);
        dialogue.messages.push(Message::tool_result(&call.id, &output.content, output.is_error));
        output
    }

    /// Calls `finish` on the drafts put in place (`kept`), so that the finish checks (the proof)
    /// judge them before the conversation's first turn: a proven patch ends the run; a rejection
    /// is the call's result, and the model goes on from its evidence. Measured on the bundled
    /// example: after the drafts were in place, Qwen2.5-Coder-1.5B resent the last draft's edit
    /// instead of running anything.
    async fn finish_drafts(
        &self,
        dialogue: &mut Dialogue,
        kept: &[String],
        deadline: Option<Instant>,
    ) -> Option<(RunStatus, String)> {
        let summary = format!("rigor's check of the drafts put in place: {}", kept.join("; "));
        let call = ToolCall {
            id: format!("draft-finish-{}", dialogue.totals.steps),
            name: "finish".into(),
            arguments: serde_json::json!({ "summary": summary }).to_string(),
        };
        let turn = dialogue.totals.steps;
        let output = self.rigors_call(dialogue, turn, &call, deadline, |_| None).await;
        stopped(output.stop)
    }

    /// A dialogue that starts with `messages` (the system prompt, then an issue or the earlier
    /// conversation a resumed session continues).
    pub fn dialogue(&self, messages: Vec<Message>) -> Dialogue {
        let seen = messages.first().map(|m| shown_in_prompt(&m.content)).unwrap_or_default();
        Dialogue {
            messages,
            totals: RunTotals::default(),
            context: ContextBudget::new(self.provider.context_window()),
            idle_replies: 0,
            repeats: Repeats::default(),
            // The questions are for small models (the compact profile); a capable model's early
            // `finish` goes straight to the proof.
            progress: Progress {
                asks: self.settings.prompt == Some(PromptProfile::Compact),
                seen,
                ..Progress::default()
            },
            started: Instant::now(),
        }
    }

    /// How the loop ended, after `dialogue`'s last request ended with `status` and `summary`.
    pub fn outcome(dialogue: Dialogue, status: RunStatus, summary: String) -> LoopOutcome {
        let mut totals = dialogue.totals;
        totals.duration_ms = dialogue.started.elapsed().as_millis() as u64;
        LoopOutcome { status, summary, totals }
    }

    /// Adds a note of the loop's own to the conversation (e.g. that the user undid the last
    /// request's changes).
    pub fn tell(&self, dialogue: &mut Dialogue, note: String) {
        self.emitter.emit(Event::UserMessage { turn: dialogue.totals.steps, content: note.clone(), from_user: false });
        dialogue.messages.push(Message::user(note));
    }

    /// Runs one request of `dialogue` (the messages due join it first) until it ends: `finish`,
    /// `abstain`, a budget (the step and time budgets count from the request's start), an
    /// interrupt, a provider failure, or (in a conversation) a reply without a tool call.
    pub async fn request(&self, dialogue: &mut Dialogue) -> (RunStatus, String) {
        let deadline = self.settings.timeout_secs.map(|s| Instant::now() + Duration::from_secs(s));
        let first_step = dialogue.totals.steps;
        self.request_within(dialogue, first_step, deadline).await
    }

    /// [`Agent::request`] with its step budget counted from `first_step` and its time budget
    /// ending at `deadline`.
    async fn request_within(
        &self,
        dialogue: &mut Dialogue,
        first_step: u32,
        deadline: Option<Instant>,
    ) -> (RunStatus, String) {
        let Dialogue { messages, totals, context, idle_replies, repeats, progress, .. } = dialogue;
        loop {
            if let Some(end) = self.budget_check(totals, first_step, deadline) {
                return end;
            }
            for text in self.inbox.take_due(totals.steps) {
                self.emitter.emit(Event::UserMessage { turn: totals.steps, content: text.clone(), from_user: true });
                messages.push(Message::user(text));
            }
            if let Some(c) = context.condense_if_needed(messages) {
                self.emitter.emit(Event::Condensed {
                    before_tokens: c.before,
                    after_tokens: c.after,
                    messages_affected: c.affected,
                });
            }
            let tracking = (&mut *idle_replies, &mut *repeats, &mut *progress);
            match self.turn(messages, totals, context, tracking, deadline).await {
                Step::Continue => {}
                Step::End(status, summary) => return (status, summary),
            }
        }
    }

    fn budget_check(
        &self,
        totals: &RunTotals,
        first_step: u32,
        deadline: Option<Instant>,
    ) -> Option<(RunStatus, String)> {
        let s = &self.settings;
        let exhausted = |what: String| Some((RunStatus::BudgetExhausted, what));
        if self.interrupt.count() > 0 {
            return Some((RunStatus::Interrupted, "interrupted by the user".into()));
        }
        let steps = totals.steps - first_step;
        if steps >= s.max_steps {
            return exhausted(format!("step budget exhausted: {steps} of {} steps used", s.max_steps));
        }
        if let Some(max) = s.max_tokens.filter(|&m| totals.usage.total() >= m) {
            return exhausted(format!("token budget exhausted: {} of {max} tokens used", totals.usage.total()));
        }
        if let Some(max) = s.max_cost.filter(|&m| totals.cost_usd >= m) {
            return exhausted(format!("cost budget exhausted: ${:.4} of ${max:.4} spent", totals.cost_usd));
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return exhausted(self.timeout_message());
        }
        None
    }

    fn timeout_message(&self) -> String {
        format!("time budget exhausted: {} s elapsed", self.settings.timeout_secs.unwrap_or(0))
    }

    async fn turn(
        &self,
        messages: &mut Vec<Message>,
        totals: &mut RunTotals,
        context: &mut ContextBudget,
        (idle_replies, repeats, progress): (&mut u32, &mut Repeats, &mut Progress),
        deadline: Option<Instant>,
    ) -> Step {
        let turn = totals.steps + 1;
        let tools = self.tools.specs();
        let estimated_tokens = context.estimate_with(messages, estimate_tools(&tools));
        self.emitter.emit(Event::ModelRequest { turn, messages: messages.len(), estimated_tokens });
        let request = ChatRequest {
            messages: messages.clone(),
            tools,
            max_output_tokens: self.settings.max_output_tokens,
            temperature: repeats.temperature(self.settings.temperature),
        };
        let (mut response, latency) = match self.call_model(turn, &request, estimated_tokens, deadline).await {
            Ok(answer) => answer,
            Err((status, summary)) => return Step::End(status, summary),
        };
        for (i, call) in response.message.tool_calls.iter_mut().enumerate() {
            if call.id.is_empty() {
                call.id = format!("call_{turn}_{i}");
            }
        }
        self.record_response(turn, totals, &response, latency);
        context.record(messages.len(), response.usage.input_tokens);
        let cut_off = response.finish_reason == FinishReason::Length;
        let message = response.message;
        let calls = message.tool_calls.clone();
        let reply = message.content.clone();
        let reply_at = messages.len();
        messages.push(message);

        if calls.is_empty() && self.conversation {
            // In a conversation a reply is an answer to the user: the request is done.
            return Step::End(RunStatus::Submitted, reply);
        }
        if calls.is_empty() {
            *idle_replies += 1;
            if *idle_replies >= MAX_REPLIES_WITHOUT_ACTION {
                return Step::End(
                    RunStatus::Error,
                    format!("the model replied {MAX_REPLIES_WITHOUT_ACTION} times in a row without calling a tool"),
                );
            }
            let nudge = match self.provider.action_hint() {
                Some(hint) => format!("{NO_ACTION_NUDGE}\n\n{hint}"),
                None => NO_ACTION_NUDGE.to_string(),
            };
            self.emitter.emit(Event::UserMessage { turn, content: nudge.clone(), from_user: false });
            messages.push(Message::user(nudge));
            return Step::Continue;
        }
        *idle_replies = 0;

        let mut end = None;
        let mut note = None;
        let mut failed_edit = None;
        for call in &calls {
            // Calls after a finish/abstain, or after a hard interrupt, are answered but not run,
            // so the conversation stays well-formed.
            let output = if end.is_some() {
                self.answer_without_running(
                    turn,
                    call,
                    ToolOutput::error("not run: the run already ended in this turn"),
                )
            } else if let Some(question) = progress.question_stop(call) {
                self.answer_without_running(turn, call, ToolOutput::error(question))
            } else {
                let advise = |output: &ToolOutput| {
                    let mut advice = progress.unseen_edit(call, output.is_error).unwrap_or_default();
                    if output.is_error {
                        let copied = progress.asks.then(|| copied_placeholders(call, &self.tools.specs())).flatten();
                        let notes = [cut_off.then(|| CUT_OFF_NOTE.to_string()), copied, Some(advice.note)];
                        advice.note =
                            notes.into_iter().flatten().filter(|n| !n.is_empty()).collect::<Vec<_>>().join(" ");
                    }
                    if progress.asks && call.name == "edit" && !output.is_error {
                        advice.examples = progress.examples_before.clone();
                    }
                    (!advice.note.is_empty() || advice.show.is_some() || advice.examples.is_some()).then_some(advice)
                };
                let output = self.run_tool(turn, call, deadline, advise).await;
                progress.record(call, output.is_error);
                output
            };
            totals.tool_calls += 1;
            note = repeats.record(call, &output.content, output.is_error);
            if end.is_none() && repeats.exhausted() {
                end = Some(Step::End(
                    RunStatus::Error,
                    format!(
                        "the model made the same `{}` call {REPEATS_BEFORE_STOP} times {} with the same result, after \
                         being told to change course",
                        call.name,
                        if repeats.in_a_row {
                            "in a row".to_string()
                        } else {
                            format!("in its last {REPEAT_WINDOW} calls")
                        }
                    ),
                ));
            }
            if call.name == "edit" && output.is_error {
                failed_edit = Some(output.content.clone());
            }
            messages.push(Message::tool_result(&call.id, &output.content, output.is_error));
            if let Some((status, summary)) = stopped(output.stop) {
                end = Some(Step::End(status, summary));
            }
        }
        if let Some(baseline) = &self.baseline
            && calls.iter().any(|c| matches!(c.name.as_str(), "edit" | "bash" | "python"))
            && let Ok(patch) = baseline.diff().await
        {
            self.emitter.emit(Event::DiffChanged { patch });
        }
        if let Some(error) = failed_edit.filter(|_| progress.asks && end.is_none() && calls.len() == 1) {
            forget_failed_edit(messages, reply_at, &error);
        }
        if let (None, Some(note)) = (&end, note) {
            self.emitter.emit(Event::UserMessage { turn, content: note.clone(), from_user: false });
            messages.push(Message::user(note));
        }
        end.unwrap_or(Step::Continue)
    }

    /// Sends `request` as turn `turn`'s model call, its stream turned into events (text,
    /// retries, prefill progress); the response and how long it took, or how the run ends
    /// instead: an interrupt, the time budget (with why the turn could not finish in it), a
    /// provider failure.
    async fn call_model(
        &self,
        turn: u32,
        request: &ChatRequest,
        estimated_tokens: u64,
        deadline: Option<Instant>,
    ) -> Result<(ChatResponse, Duration), (RunStatus, String)> {
        let emitter = self.emitter.clone();
        let prefill = Arc::new(Mutex::new(None));
        let last_prefill = prefill.clone();
        let sink = move |event: StreamEvent| match event {
            StreamEvent::Text(text) => emitter.emit(Event::TextDelta { text }),
            StreamEvent::Retry { attempt, wait, reason } => {
                emitter.emit(Event::Retry { attempt, wait_ms: wait.as_millis() as u64, reason })
            }
            StreamEvent::Prefill { processed, total, elapsed } => {
                *last_prefill.lock().unwrap_or_else(|p| p.into_inner()) = Some((processed, total, elapsed));
                let elapsed_ms = elapsed.as_millis() as u64;
                emitter.emit(Event::PrefillProgress { turn, processed, total, elapsed_ms })
            }
        };
        let call_started = Instant::now();
        let response = tokio::select! {
            result = self.provider.chat(request, &sink) => result,
            () = self.interrupt.reached(1) => return Err((RunStatus::Interrupted, "interrupted by the user".into())),
            () = sleep_until(deadline) => {
                let prefill = *prefill.lock().unwrap_or_else(|p| p.into_inner());
                let why = unfinished_turn(turn, estimated_tokens, call_started.elapsed(), prefill);
                return Err((RunStatus::BudgetExhausted, format!("{}: {why}", self.timeout_message())));
            }
        };
        match response {
            Ok(response) => Ok((response, call_started.elapsed())),
            Err(err) => Err((RunStatus::Error, err.to_string())),
        }
    }

    /// Counts `response` as turn `turn` in `totals` and records it (`model_response`).
    fn record_response(&self, turn: u32, totals: &mut RunTotals, response: &ChatResponse, latency: Duration) {
        totals.steps = turn;
        totals.usage += response.usage;
        totals.cost_usd += response.cost_usd;
        self.emitter.emit(Event::ModelResponse {
            turn,
            message: response.message.clone(),
            usage: response.usage,
            cost_usd: response.cost_usd,
            latency_ms: latency.as_millis() as u64,
            finish_reason: response.finish_reason.clone(),
        });
    }

    /// Answers `call` with `output` without running it, recorded like any call so the trajectory
    /// (and its export) pairs every call with its result.
    fn answer_without_running(&self, turn: u32, call: &ToolCall, output: ToolOutput) -> ToolOutput {
        self.emitter.emit(Event::ToolCall { turn, call: call.clone() });
        self.observe(turn, call, &output, 0);
        output
    }

    /// Records `output` as the observation of `call`.
    fn observe(&self, turn: u32, call: &ToolCall, output: &ToolOutput, duration_ms: u64) {
        self.emitter.emit(Event::Observation {
            turn,
            call_id: call.id.clone(),
            name: call.name.clone(),
            content: output.content.clone(),
            is_error: output.is_error,
            duration_ms,
        });
    }

    /// Runs `call` (after the screen) and records its observation, with the advice `advise`
    /// gives for its output appended.
    async fn run_tool(
        &self,
        turn: u32,
        call: &ToolCall,
        deadline: Option<Instant>,
        advise: impl FnOnce(&ToolOutput) -> Option<Advice>,
    ) -> ToolOutput {
        self.emitter.emit(Event::ToolCall { turn, call: call.clone() });
        let started = Instant::now();
        if let Some(refused) = self.screen_call(turn, call).await {
            let recorded = ToolOutput { is_error: true, ..refused.clone() };
            self.observe(turn, call, &recorded, started.elapsed().as_millis() as u64);
            return refused;
        }
        let output = tokio::select! {
            output = self.tools.call(call) => output,
            () = self.interrupt.reached(2) => ToolOutput::error("cancelled: the user interrupted the run"),
            () = sleep_until(deadline) => ToolOutput::error(format!("cancelled: {}", self.timeout_message())),
        };
        let mut output = output;
        if let Some(advice) = advise(&output) {
            if !advice.note.is_empty() {
                output.content = format!("{}\n(rigor: {})", output.content, advice.note);
            }
            if let Some(path) = advice.show {
                let view = ToolCall {
                    id: format!("{}-view", call.id),
                    name: "view".into(),
                    arguments: serde_json::json!({ "path": path }).to_string(),
                };
                let shown = self.tools.call(&view).await;
                if !shown.is_error {
                    output.content = format!("{}\n{}", output.content, shown.content);
                }
            }
            if let Some(before) = advice.examples
                && let Some(now) = self.run_examples(turn).await
            {
                output.content = format!(
                    "{}\n(rigor ran the issue's examples: now, and before your changes where that differs)\n{}",
                    output.content,
                    compared(&before, &now)
                );
            }
        }
        self.observe(turn, call, &output, started.elapsed().as_millis() as u64);
        output
    }
}

impl Agent<'_> {
    /// Runs the issue's examples ([`Agent::examples`]) through the `bash` tool, screened like
    /// the model's commands; their output, or `None` when there are none or none ran.
    async fn run_examples(&self, turn: u32) -> Option<String> {
        let mut out = String::new();
        for (i, command) in self.examples.iter().enumerate() {
            let call = ToolCall {
                id: format!("rigor-examples-{turn}-{i}"),
                name: "bash".into(),
                arguments: serde_json::json!({ "command": command, "timeout_secs": EXAMPLES_TIMEOUT_SECS }).to_string(),
            };
            if self.screen_call(turn, &call).await.is_some() {
                continue;
            }
            let output = self.tools.call(&call).await;
            let text = output.content.trim_end();
            // The script prints every failure itself: a clean exit need not be said.
            out.push_str(text.strip_suffix("exit code: 0").unwrap_or(text).trim_end());
            out.push('\n');
        }
        (!out.trim().is_empty()).then_some(out)
    }

    /// Screens the action of `call` (if its tool declares one) and records the decision.
    /// Returns the observation to give instead of running it, or `None` when it may run.
    async fn screen_call(&self, turn: u32, call: &ToolCall) -> Option<ToolOutput> {
        let screen = self.screen.as_ref()?;
        let action = self.tools.action(call)?;
        let screened = tokio::select! {
            screened = screen.screen(&call.id, &call.name, &action) => screened,
            () = self.interrupt.reached(1) => {
                return Some(ToolOutput::error("not run: the user interrupted the run while it waited for approval"));
            }
        };
        let d = &screened.decision;
        self.emitter.emit(Event::PolicyDecision {
            turn,
            call_id: call.id.clone(),
            tool: call.name.clone(),
            action: action.text().to_string(),
            verdict: d.verdict,
            category: d.category,
            rule: d.rule.clone(),
            reason: d.reason.clone(),
            outcome: screened.outcome,
        });
        (!screened.outcome.runs()).then(|| ToolOutput::error(screened.message))
    }
}

/// How a call that ended the run (`finish`, `abstain`) ends it.
fn stopped(stop: Option<Stop>) -> Option<(RunStatus, String)> {
    match stop? {
        Stop::Finish { summary } => Some((RunStatus::Submitted, summary)),
        Stop::Abstain { reason } => Some((RunStatus::Abstained, reason)),
    }
}

/// Replaces the reply at `reply_at` (a single `edit` that failed) and its result with a note
/// that gives the error but not the edit. A small model copies its own earlier replies: on the
/// bundled example Qwen2.5-Coder-1.5B sent one failing `edit` nine times, at temperature 0 and
/// at 0.7, with the file in front of it; without the failed edit in view it writes a new one.
/// The trajectory keeps the reply and the result (they were emitted as events).
fn forget_failed_edit(messages: &mut Vec<Message>, reply_at: usize, error: &str) {
    messages.truncate(reply_at);
    messages.push(Message::user(format!(
        "(rigor) Your last reply was an `edit` that failed and changed nothing; it is left out here, so write a \
         new one rather than repeat it. The error:\n{error}"
    )));
}

/// A note on the arguments of `call` left at its tool's example placeholders (the `"<...>"`
/// values of its spec's `examples`, which the text action format shows): a small model copies
/// the example verbatim. Measured on the bundled example, Qwen2.5-Coder-1.5B sent
/// `"old_str": "<lines copied exactly from the file>"` and then undid edits that had never been made.
fn copied_placeholders(call: &ToolCall, specs: &[ToolSpec]) -> Option<String> {
    let args = call.parsed_arguments().ok()?;
    let examples = specs.iter().find(|s| s.name == call.name)?.parameters.get("examples")?.as_array()?;
    let mut copied: Vec<String> = examples
        .iter()
        .filter_map(serde_json::Value::as_object)
        .flatten()
        .filter_map(|(key, value)| {
            let text = value.as_str().filter(|t| t.len() > 2 && t.starts_with('<') && t.ends_with('>'))?;
            (args.get(key).and_then(serde_json::Value::as_str) == Some(text)).then(|| format!("`{key}` is \"{text}\""))
        })
        .collect();
    copied.dedup();
    (!copied.is_empty()).then(|| {
        format!(
            "{}: that is the example's placeholder, not a value. Put there what it describes, taken from the file you \
             viewed.",
            copied.join(", ")
        )
    })
}

/// Why turn `turn` did not finish before the deadline: the prompt's size and, when the model
/// reported its prompt processing, the rate and the time the whole prompt needs at that rate.
fn unfinished_turn(
    turn: u32,
    estimated_tokens: u64,
    waited: Duration,
    prefill: Option<(u64, u64, Duration)>,
) -> String {
    let waited = waited.as_secs_f64();
    match prefill {
        Some((processed, total, elapsed)) if processed < total && processed > 0 => {
            let rate = processed as f64 / elapsed.as_secs_f64().max(1e-3);
            format!(
                "turn {turn} was still processing its prompt after {waited:.0} s: {processed} of {total} new prompt \
                 tokens at {rate:.0} tok/s, so the prompt alone needs about {:.0} s. Give the run more time \
                 (--timeout), a shorter prompt (--prompt compact) or a faster model.",
                total as f64 / rate
            )
        }
        Some((_, total, elapsed)) => format!(
            "turn {turn} processed its {total} new prompt tokens in {:.0} s but had not finished its reply after \
             {waited:.0} s. Give the run more time (--timeout) or limit the reply's length.",
            elapsed.as_secs_f64()
        ),
        None => format!(
            "turn {turn} had no reply after {waited:.0} s (a prompt of about {estimated_tokens} tokens). Give the run \
             more time (--timeout), a shorter prompt (--prompt compact) or a faster model."
        ),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}
