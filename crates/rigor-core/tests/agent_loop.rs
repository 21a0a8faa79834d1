//! The agent loop (`Agent::run`) in process, against a scripted provider: each test names one
//! behaviour of the loop and fails if that behaviour breaks. No processes, no network, no sleeps:
//! the provider is a queue of answers, the tools a real `ToolBox` over a temporary directory.
#![allow(clippy::unwrap_used)] // helpers of a test binary

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rigor_core::agent::{Agent, Interrupt, LoopOutcome};
use rigor_core::config::AgentSettings;
use rigor_core::events::{Collector, Emitter};
use rigor_core::prompt::NO_ACTION_NUDGE;
use rigor_llm::{ChatRequest, ChatResponse, Provider, ProviderError, StreamSink};
use rigor_protocol::{Event, FinishReason, Message, Role, RunStatus, ToolCall, Usage};
use rigor_tools::{Draft, SHOWN_CODE_HEADING, ToolBox, ToolContext};

/// One scripted answer of the provider.
type Answer = Result<ChatResponse, ProviderError>;

/// A provider that answers from a queue, records every request, and can trigger an interrupt
/// when it gives a given answer (1-based).
struct Scripted {
    answers: Mutex<VecDeque<Answer>>,
    requests: Mutex<Vec<ChatRequest>>,
    interrupt_on: Option<(usize, Interrupt)>,
}

impl Scripted {
    fn new(answers: Vec<Answer>) -> Self {
        Self { answers: Mutex::new(answers.into()), requests: Mutex::default(), interrupt_on: None }
    }

    fn requests(&self) -> Vec<ChatRequest> {
        self.requests.lock().unwrap().clone()
    }

    fn remaining(&self) -> usize {
        self.answers.lock().unwrap().len()
    }
}

#[async_trait]
impl Provider for Scripted {
    fn id(&self) -> String {
        "scripted:test".into()
    }

    fn context_window(&self) -> u64 {
        1_000_000
    }

    async fn chat(&self, request: &ChatRequest, _sink: StreamSink<'_>) -> Result<ChatResponse, ProviderError> {
        let n = {
            let mut requests = self.requests.lock().unwrap();
            requests.push(request.clone());
            requests.len()
        };
        if let Some((at, interrupt)) = &self.interrupt_on
            && *at == n
        {
            interrupt.trigger();
        }
        self.answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| Err(ProviderError::Config(format!("script exhausted at request {n}"))))
    }
}

/// A reply with the given tool calls (name, JSON arguments) and `tokens` input tokens.
fn calls(list: &[(&str, &str)], tokens: u64) -> Answer {
    let tool_calls = list
        .iter()
        .map(|(name, args)| ToolCall { id: String::new(), name: name.to_string(), arguments: args.to_string() })
        .collect();
    Ok(ChatResponse {
        message: Message::assistant("", tool_calls),
        usage: Usage { input_tokens: tokens, output_tokens: 0, cached_input_tokens: 0 },
        cost_usd: 0.0,
        finish_reason: FinishReason::ToolCalls,
    })
}

fn call(name: &str, args: &str) -> Answer {
    calls(&[(name, args)], 10)
}

fn text(content: &str) -> Answer {
    Ok(ChatResponse {
        message: Message::assistant(content, Vec::new()),
        usage: Usage { input_tokens: 10, output_tokens: 5, cached_input_tokens: 0 },
        cost_usd: 0.0,
        finish_reason: FinishReason::Stop,
    })
}

fn finish(summary: &str) -> Answer {
    call("finish", &serde_json::json!({ "summary": summary }).to_string())
}

const VIEW_README: &str = r#"{"path": "README.md"}"#;

/// A temporary workspace with a README, its tool box, and the collected events of a run.
struct Harness {
    dir: tempfile::TempDir,
    tools: ToolBox,
    collector: Collector,
    emitter: Emitter,
    /// Whether the finish tool has checks (`Agent::prove_drafts`).
    proving: bool,
}

impl Harness {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("README.md"), "hello\n").unwrap();
        let tools = ToolBox::standard(ToolContext::new(dir.path()));
        let collector = Collector::default();
        let emitter = Emitter::default();
        emitter.add(collector.clone());
        Self { dir, tools, collector, emitter, proving: false }
    }

    /// A harness whose `finish` passes only when the README says `hi`.
    fn proving() -> Self {
        let mut h = Self::new();
        let finish = rigor_tools::FinishTool::with_checks(vec![Arc::new(SaysHi)]);
        let editor = rigor_tools::edit::EditTool::default();
        h.tools = ToolBox::standard_with(ToolContext::new(h.dir.path()), editor, finish, Vec::new());
        h.proving = true;
        h
    }

    async fn run(&self, provider: &Scripted, settings: AgentSettings, interrupt: Interrupt) -> LoopOutcome {
        self.run_with_system(provider, settings, interrupt, "system").await
    }

    async fn run_with_system(
        &self,
        provider: &Scripted,
        settings: AgentSettings,
        interrupt: Interrupt,
        system: &str,
    ) -> LoopOutcome {
        self.run_with(provider, settings, interrupt, system, Vec::new(), Vec::new()).await
    }

    async fn run_with(
        &self,
        provider: &Scripted,
        settings: AgentSettings,
        interrupt: Interrupt,
        system: &str,
        examples: Vec<String>,
        drafts: Vec<Arc<dyn Draft>>,
    ) -> LoopOutcome {
        let agent = Agent {
            provider,
            tools: &self.tools,
            emitter: self.emitter.clone(),
            settings,
            interrupt,
            inbox: Default::default(),
            screen: None,
            conversation: false,
            baseline: None,
            examples,
            drafts,
            prove_drafts: self.proving,
        };
        agent.run(system.into(), "issue".into()).await
    }

    /// The loop with default settings and no interrupt.
    async fn run_default(&self, provider: &Scripted) -> LoopOutcome {
        self.run(provider, AgentSettings::default(), Interrupt::new()).await
    }

    fn events(&self) -> Vec<Event> {
        self.collector.events()
    }

    /// The observations emitted: (name, content, is_error).
    fn observations(&self) -> Vec<(String, String, bool)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Observation { name, content, is_error, .. } => Some((name, content, is_error)),
                _ => None,
            })
            .collect()
    }

    /// The user messages the loop added (nudges, repeat notes): (turn, content).
    fn user_messages(&self) -> Vec<(u32, String)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::UserMessage { turn, content, .. } => Some((turn, content)),
                _ => None,
            })
            .collect()
    }
}

#[tokio::test]
async fn the_step_budget_ends_the_run_as_budget_exhausted() {
    let h = Harness::new();
    let provider = Scripted::new(vec![call("view", VIEW_README), call("view", "{\"path\": \".\"}"), finish("done")]);
    let settings = AgentSettings { max_steps: 2, ..AgentSettings::default() };
    let outcome = h.run(&provider, settings, Interrupt::new()).await;
    assert_eq!(outcome.status, RunStatus::BudgetExhausted, "{outcome:?}");
    assert_eq!(outcome.summary, "step budget exhausted: 2 of 2 steps used");
    assert_eq!(outcome.totals.steps, 2);
    assert_eq!(provider.requests().len(), 2, "no third model call after the budget is spent");
    assert_eq!(provider.remaining(), 1);
}

#[tokio::test]
async fn the_token_budget_ends_the_run_as_budget_exhausted() {
    let h = Harness::new();
    let provider =
        Scripted::new(vec![calls(&[("view", VIEW_README)], 60), calls(&[("view", VIEW_README)], 60), finish("done")]);
    let settings = AgentSettings { max_tokens: Some(100), ..AgentSettings::default() };
    let outcome = h.run(&provider, settings, Interrupt::new()).await;
    assert_eq!(outcome.status, RunStatus::BudgetExhausted, "{outcome:?}");
    assert_eq!(outcome.summary, "token budget exhausted: 120 of 100 tokens used");
    assert_eq!(outcome.totals.usage.total(), 120);
    assert_eq!(provider.requests().len(), 2);
}

#[tokio::test]
async fn a_malformed_tool_call_is_an_error_observation_and_the_loop_goes_on() {
    let h = Harness::new();
    let provider = Scripted::new(vec![
        calls(&[("view", r#"{"path": "#), ("no_such_tool", "{}")], 10),
        call("view", VIEW_README),
        finish("fixed it"),
    ]);
    let outcome = h.run_default(&provider).await;
    assert_eq!(outcome.status, RunStatus::Submitted, "{outcome:?}");
    assert_eq!(outcome.summary, "fixed it");
    let obs = h.observations();
    assert_eq!(obs.len(), 4, "{obs:?}");
    assert_eq!(obs[0].0, "view");
    assert!(obs[0].2 && obs[0].1.contains("could not run `view`"), "{:?}", obs[0]);
    assert_eq!(obs[1].0, "no_such_tool");
    assert!(obs[1].2 && obs[1].1.contains("unknown tool `no_such_tool`"), "{:?}", obs[1]);
    assert!(!obs[2].2 && obs[2].1.contains("hello"), "the loop went on and ran the next call: {:?}", obs[2]);
    // The model saw both errors as tool results of its calls.
    let second = &provider.requests()[1].messages;
    let results: Vec<&Message> = second.iter().filter(|m| m.role == Role::Tool).collect();
    assert_eq!(results.len(), 2, "{second:?}");
    assert!(results[0].content.contains("could not run `view`"), "{:?}", results[0]);
    assert!(results[1].content.contains("unknown tool"), "{:?}", results[1]);
}

#[tokio::test]
async fn three_identical_calls_with_identical_results_add_the_repeat_note() {
    let h = Harness::new();
    let provider = Scripted::new(vec![
        call("view", VIEW_README),
        call("view", VIEW_README),
        call("view", VIEW_README),
        finish("done"),
    ]);
    let outcome = h.run_default(&provider).await;
    assert_eq!(outcome.status, RunStatus::Submitted, "{outcome:?}");
    let notes = h.user_messages();
    assert_eq!(notes.len(), 1, "one note, after the third repeat only: {notes:?}");
    assert_eq!(notes[0].0, 3);
    assert!(notes[0].1.contains("same `view` call 3 times in a row"), "{notes:?}");
    // The model got it before its fourth turn, after the third call's result.
    let fourth = &provider.requests()[3].messages;
    let last = fourth.last().unwrap();
    assert_eq!(last.role, Role::User);
    assert_eq!(last.content, notes[0].1);
    assert!(!provider.requests()[2].messages.iter().any(|m| m.content.contains("same `view` call")));
}

#[tokio::test]
async fn an_edit_made_and_undone_in_a_circle_gets_the_repeat_note() {
    let h = Harness::new();
    let edit =
        || call("edit", r#"{"command": "str_replace", "path": "README.md", "old_str": "hello", "new_str": "hi"}"#);
    let undo = || call("edit", r#"{"command": "undo", "path": "README.md"}"#);
    let mut script = Vec::new();
    for _ in 0..3 {
        script.extend([edit(), undo(), undo()]);
    }
    script.push(finish("done"));
    let provider = Scripted::new(script);
    h.run_default(&provider).await;
    let notes = h.user_messages();
    // After the third edit; the undos that follow are in the circle too.
    assert_eq!(notes[0].0, 7, "{notes:?}");
    assert!(notes[0].1.contains("same `edit` call 3 times in your last 7 calls"), "{notes:?}");
    assert!(notes[0].1.contains("going in a circle") && notes[0].1.contains("keep it"), "{notes:?}");
}

#[tokio::test]
async fn different_results_break_a_repeat() {
    let h = Harness::new();
    let provider = Scripted::new(vec![
        call("view", VIEW_README),
        call("view", VIEW_README),
        call("edit", r#"{"command": "create", "path": "README.md", "file_text": "changed\n"}"#),
        call("view", VIEW_README),
        finish("done"),
    ]);
    let outcome = h.run_default(&provider).await;
    assert_eq!(outcome.status, RunStatus::Submitted, "{outcome:?}");
    assert_eq!(h.user_messages(), vec![], "no note when the calls or results differ");
}

#[tokio::test]
async fn a_reply_without_a_tool_call_gets_the_nudge_and_three_in_a_row_end_the_run() {
    let h = Harness::new();
    let provider = Scripted::new(vec![text("thinking"), text("still thinking"), text("hmm"), finish("done")]);
    let outcome = h.run_default(&provider).await;
    assert_eq!(outcome.status, RunStatus::Error, "{outcome:?}");
    assert_eq!(outcome.summary, "the model replied 3 times in a row without calling a tool");
    assert_eq!(provider.requests().len(), 3);
    assert_eq!(
        h.user_messages(),
        vec![(1, NO_ACTION_NUDGE.to_string()), (2, NO_ACTION_NUDGE.to_string())],
        "a nudge after each of the first two idle replies"
    );
    let second = &provider.requests()[1].messages;
    assert_eq!(second.last().unwrap().content, NO_ACTION_NUDGE, "the model saw the nudge");
}

#[tokio::test]
async fn a_tool_call_resets_the_count_of_idle_replies() {
    let h = Harness::new();
    let provider =
        Scripted::new(vec![text("a"), text("b"), call("view", VIEW_README), text("c"), text("d"), finish("done")]);
    let outcome = h.run_default(&provider).await;
    assert_eq!(outcome.status, RunStatus::Submitted, "{outcome:?}");
    assert_eq!(h.user_messages().len(), 4);
}

#[tokio::test]
async fn calls_after_finish_in_the_same_reply_are_answered_not_run() {
    let h = Harness::new();
    let create = r#"{"command": "create", "path": "late.txt", "file_text": "too late\n"}"#;
    let provider = Scripted::new(vec![calls(&[("finish", r#"{"summary": "all done"}"#), ("edit", create)], 10)]);
    let outcome = h.run_default(&provider).await;
    assert_eq!(outcome.status, RunStatus::Submitted, "{outcome:?}");
    assert_eq!(outcome.summary, "all done");
    assert!(!h.dir.path().join("late.txt").exists(), "the call after finish must not run");
    assert_eq!(outcome.totals.tool_calls, 2);

    // Both calls are recorded as a call and its result, in order.
    let pairs: Vec<String> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::ToolCall { call, .. } => Some(format!("call {} {}", call.name, call.id)),
            Event::Observation { name, call_id, content, is_error, .. } => {
                Some(format!("result {name} {call_id} error={is_error} {content}"))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        pairs,
        vec![
            "call finish call_1_0".to_string(),
            "result finish call_1_0 error=false finished".to_string(),
            "call edit call_1_1".to_string(),
            "result edit call_1_1 error=true not run: the run already ended in this turn".to_string(),
        ]
    );
}

#[tokio::test]
async fn an_interrupt_before_the_first_turn_ends_the_run_as_interrupted() {
    let h = Harness::new();
    let provider = Scripted::new(vec![finish("done")]);
    let interrupt = Interrupt::new();
    interrupt.trigger();
    let outcome = h.run(&provider, AgentSettings::default(), interrupt).await;
    assert_eq!(outcome.status, RunStatus::Interrupted, "{outcome:?}");
    assert_eq!(outcome.summary, "interrupted by the user");
    assert_eq!(provider.requests().len(), 0, "no model call after the interrupt");
}

#[tokio::test]
async fn an_interrupt_between_turns_lets_the_tool_finish_then_stops() {
    let h = Harness::new();
    let interrupt = Interrupt::new();
    let mut provider = Scripted::new(vec![call("view", VIEW_README), finish("done")]);
    // Triggered as the first answer is given: that turn's tool still runs, the next turn does not.
    provider.interrupt_on = Some((1, interrupt.clone()));
    let outcome = h.run(&provider, AgentSettings::default(), interrupt).await;
    assert_eq!(outcome.status, RunStatus::Interrupted, "{outcome:?}");
    assert_eq!(provider.requests().len(), 1);
    let obs = h.observations();
    assert_eq!(obs.len(), 1, "{obs:?}");
    assert!(!obs[0].2 && obs[0].1.contains("hello"), "{obs:?}");
}

#[tokio::test]
async fn a_provider_error_ends_the_run_as_error() {
    let h = Harness::new();
    let provider = Scripted::new(vec![
        call("view", VIEW_README),
        Err(ProviderError::Rejected { provider: "scripted:test".into(), status: 401, body: "bad key".into() }),
        finish("done"),
    ]);
    let outcome = h.run_default(&provider).await;
    assert_eq!(outcome.status, RunStatus::Error, "{outcome:?}");
    assert_eq!(outcome.summary, "scripted:test: HTTP 401: bad key");
    assert_eq!(outcome.totals.steps, 1, "the failed call is not a step");
    assert_eq!(provider.remaining(), 1, "the loop stopped at the error");
}

fn compact() -> AgentSettings {
    AgentSettings { prompt: Some(rigor_core::prompt::PromptProfile::Compact), ..AgentSettings::default() }
}

#[tokio::test]
async fn a_call_repeated_after_the_note_stops_the_run() {
    let h = Harness::new();
    let provider = Scripted::new((0..6).map(|_| call("view", VIEW_README)).collect());
    let outcome = h.run_default(&provider).await;
    assert_eq!(outcome.status, RunStatus::Error, "{outcome:?}");
    assert!(outcome.summary.contains("same `view` call 5 times"), "{outcome:?}");
    assert_eq!(provider.remaining(), 1, "the sixth reply was never asked for");
    let notes = h.user_messages();
    assert!(notes[0].1.contains("```edit"), "the note shows the next step: {notes:?}");
}

#[tokio::test]
async fn a_small_models_finish_before_any_edit_or_command_is_questioned_once() {
    let h = Harness::new();
    let provider = Scripted::new(vec![finish("done"), finish("really done")]);
    let outcome = h.run(&provider, compact(), Interrupt::new()).await;
    assert_eq!(outcome.status, RunStatus::Submitted, "{outcome:?}");
    assert_eq!(outcome.summary, "really done");
    let observations = h.observations();
    assert!(observations[0].2 && observations[0].1.contains("not finished yet"), "{observations:?}");
    // A capable model (the full profile) is not questioned: the proof judges its finish.
    let h = Harness::new();
    let provider = Scripted::new(vec![finish("done")]);
    assert_eq!(h.run_default(&provider).await.status, RunStatus::Submitted);
}

#[tokio::test]
async fn an_edit_of_a_file_never_viewed_gets_advice() {
    let h = Harness::new();
    let replace = r#"{"command": "str_replace", "path": "README.md", "old_str": "absent", "new_str": "x"}"#;
    let provider = Scripted::new(vec![call("edit", replace), call("view", VIEW_README), finish("done")]);
    h.run(&provider, compact(), Interrupt::new()).await;
    let observations = h.observations();
    assert!(observations[0].1.contains("you have not viewed `README.md`"), "{observations:?}");
    // The failed edit comes with the file, numbered, so the next edit can copy from it.
    assert!(observations[0].1.contains("Here it is") && observations[0].1.contains("1\thello"), "{observations:?}");
}

#[tokio::test]
async fn a_file_whose_code_the_prompt_shows_counts_as_seen() {
    let replace = r#"{"command": "str_replace", "path": "README.md", "old_str": "hello", "new_str": "hi"}"#;
    let shown = format!("system\n\n{}\nREADME.md:greeting (function, lines 1-1)\n1  hello\n\nmore", SHOWN_CODE_HEADING);
    let h = Harness::new();
    let provider = Scripted::new(vec![call("edit", replace), finish("done")]);
    h.run_with_system(&provider, compact(), Interrupt::new(), &shown).await;
    let observations = h.observations();
    assert!(!observations[0].2 && !observations[0].1.contains("without viewing"), "{observations:?}");
    // Without the shown code, the same edit is an edit made blind.
    let h = Harness::new();
    let provider = Scripted::new(vec![call("edit", replace), finish("done")]);
    h.run(&provider, compact(), Interrupt::new()).await;
    assert!(h.observations()[0].1.contains("you edited `README.md` without viewing it"), "{:?}", h.observations());
}

#[tokio::test]
async fn the_issue_examples_run_before_the_first_turn_and_after_each_kept_edit() {
    let h = Harness::new();
    let replace = r#"{"command": "str_replace", "path": "README.md", "old_str": "hello", "new_str": "hi"}"#;
    let absent = r#"{"command": "str_replace", "path": "README.md", "old_str": "absent", "new_str": "x"}"#;
    let provider = Scripted::new(vec![call("edit", absent), call("edit", replace), finish("done")]);
    let examples = vec!["echo \"greeting -> $(cat README.md)\"".to_string()];
    h.run_with(&provider, compact(), Interrupt::new(), "system", examples.clone(), Vec::new()).await;
    let first = &provider.requests()[0].messages;
    assert!(
        first
            .last()
            .unwrap()
            .content
            .contains("rigor ran the examples the issue gives, on the code as it is now:\n    greeting -> hello"),
        "{first:?}"
    );
    let observations = h.observations();
    assert!(!observations[0].1.contains("examples"), "a failed edit runs nothing: {observations:?}");
    assert!(
        observations[1].1.contains("rigor ran the issue's examples")
            && observations[1].1.contains("    greeting -> hi\n    (before: greeting -> hello)"),
        "{observations:?}"
    );
    // A capable model's run (the full profile) runs none.
    let h = Harness::new();
    let provider = Scripted::new(vec![call("edit", replace), finish("done")]);
    h.run_with(&provider, AgentSettings::default(), Interrupt::new(), "system", examples, Vec::new()).await;
    assert!(!provider.requests()[0].messages.iter().any(|m| m.content.contains("rigor ran")));
    assert!(!h.observations()[0].1.contains("rigor ran"), "{:?}", h.observations());
}

/// A draft that replaces the README's `hello` with the first line of the reply's fenced block.
struct ReadmeDraft {
    fixes: bool,
}

impl Draft for ReadmeDraft {
    fn what(&self) -> String {
        "a new greeting".into()
    }

    fn prompt(&self) -> String {
        "Write a greeting in a fenced block.".into()
    }

    fn output_tokens(&self) -> u32 {
        64
    }

    fn fixes(&self) -> bool {
        self.fixes
    }

    fn edit(&self, reply: &str) -> Result<serde_json::Value, String> {
        let line = reply.lines().skip_while(|l| !l.starts_with("```")).nth(1).ok_or("no block")?;
        Ok(serde_json::json!({ "command": "str_replace", "path": "README.md", "old_str": "hello", "new_str": line }))
    }
}

#[tokio::test]
async fn drafts_are_asked_for_on_their_own_and_put_in_place_before_the_first_turn() {
    let h = Harness::new();
    let provider = Scripted::new(vec![text("Sure:\n```\nhi\n```"), text("no code"), finish("done")]);
    let examples = vec!["echo \"greeting -> $(cat README.md)\"".to_string()];
    let drafts: Vec<Arc<dyn Draft>> =
        vec![Arc::new(ReadmeDraft { fixes: true }), Arc::new(ReadmeDraft { fixes: true })];
    let outcome = h.run_with(&provider, compact(), Interrupt::new(), "system", examples.clone(), drafts.clone()).await;
    assert_eq!(outcome.status, RunStatus::Submitted, "{}", outcome.summary);
    assert_eq!(outcome.totals.steps, 3, "each draft is a turn");
    assert_eq!(std::fs::read_to_string(h.dir.path().join("README.md")).unwrap(), "hi\n");
    let requests = provider.requests();
    for draft_request in &requests[..2] {
        assert_eq!(draft_request.messages.len(), 1, "a draft is asked for without the conversation");
        assert_eq!(draft_request.messages[0].content, "Write a greeting in a fenced block.");
        assert!(draft_request.tools.is_empty());
        assert_eq!(draft_request.max_output_tokens, Some(64), "the draft's own output limit");
    }
    // The conversation's first turn has the kept draft as an edit and its result, the examples
    // compared; the second draft's reply had no code and left nothing.
    let conversation = &requests[2].messages;
    let edits: Vec<_> = conversation.iter().flat_map(|m| &m.tool_calls).collect();
    assert_eq!(edits.len(), 1, "{conversation:?}");
    assert_eq!(edits[0].name, "edit");
    let result = conversation.iter().find(|m| m.role == Role::Tool).unwrap();
    assert!(result.content.contains("    greeting -> hi\n    (before: greeting -> hello)"), "{}", result.content);
    let events = h.collector.events();
    let recorded = events.iter().find_map(|e| match e {
        Event::ModelResponse { turn: 1, message, .. } => Some(message.clone()),
        _ => None,
    });
    let recorded = recorded.unwrap();
    assert!(recorded.content.contains("```\nhi"), "the reply is recorded as it came: {recorded:?}");
    assert_eq!(recorded.tool_calls[0].id, edits[0].id, "with the call it became");
    assert!(
        events.iter().any(|e| matches!(e, Event::Notice { message } if message.contains("was not used: no block")))
    );

    // A capable model's run (the full profile) asks for none.
    let h = Harness::new();
    let provider = Scripted::new(vec![finish("done")]);
    h.run_with(&provider, AgentSettings::default(), Interrupt::new(), "system", examples, drafts).await;
    assert_eq!(provider.requests()[0].messages[0].content, "system");
}

/// A finish check that accepts a README saying `hi`.
struct SaysHi;

#[async_trait]
impl rigor_tools::FinishCheck for SaysHi {
    async fn check(&self, ctx: &ToolContext, _summary: &str) -> rigor_tools::FinishVerdict {
        match std::fs::read_to_string(ctx.workspace.join("README.md")) {
            Ok(text) if text == "hi\n" => rigor_tools::FinishVerdict::Accept { note: "proven".into() },
            _ => rigor_tools::FinishVerdict::Continue { evidence: "the README does not say hi".into() },
        }
    }
}

#[tokio::test]
async fn drafts_put_in_place_are_checked_by_a_finish_of_rigors_before_the_first_turn() {
    // The check passes: the run ends proven after the draft, with no conversation turn.
    let h = Harness::proving();
    let provider = Scripted::new(vec![text("```\nhi\n```")]);
    let drafts: Vec<Arc<dyn Draft>> = vec![Arc::new(ReadmeDraft { fixes: true })];
    let outcome = h.run_with(&provider, compact(), Interrupt::new(), "system", Vec::new(), drafts.clone()).await;
    assert_eq!((outcome.status, outcome.totals.steps), (RunStatus::Submitted, 1), "{}", outcome.summary);
    assert!(
        outcome.summary.contains("rigor's check of the drafts put in place: a new greeting"),
        "{}",
        outcome.summary
    );
    assert_eq!(provider.requests().len(), 1);

    // The check fails: the model gets its evidence as the result of that finish and goes on.
    let h = Harness::proving();
    let provider = Scripted::new(vec![text("```\nhello there\n```"), finish("done anyway")]);
    let outcome = h.run_with(&provider, compact(), Interrupt::new(), "system", Vec::new(), drafts.clone()).await;
    assert_eq!(outcome.status, RunStatus::Error, "the scripted finish is rejected too: {}", outcome.summary);
    let conversation = &provider.requests()[1].messages;
    let finish_call = conversation.iter().flat_map(|m| &m.tool_calls).find(|c| c.name == "finish").unwrap();
    let result = conversation.iter().find(|m| m.tool_call_id.as_ref() == Some(&finish_call.id)).unwrap();
    assert!(result.content.contains("the README does not say hi"), "{}", result.content);

    // Only a test was drafted: no patch to judge, so no finish of rigor's.
    let h = Harness::proving();
    let provider = Scripted::new(vec![text("```\nhi\n```"), finish("done")]);
    let tests_only: Vec<Arc<dyn Draft>> = vec![Arc::new(ReadmeDraft { fixes: false })];
    h.run_with(&provider, compact(), Interrupt::new(), "system", Vec::new(), tests_only).await;
    assert!(!provider.requests()[1].messages.iter().flat_map(|m| &m.tool_calls).any(|c| c.name == "finish"));

    // Nothing was kept: no finish of rigor's.
    let h = Harness::proving();
    let provider = Scripted::new(vec![text("no code"), finish("done")]);
    h.run_with(&provider, compact(), Interrupt::new(), "system", Vec::new(), drafts).await;
    assert!(!provider.requests()[1].messages.iter().flat_map(|m| &m.tool_calls).any(|c| c.name == "finish"));
}

#[tokio::test]
async fn an_edit_that_keeps_the_examples_placeholders_is_told_so() {
    let h = Harness::new();
    let copied = r#"{"command": "str_replace", "path": "README.md", "old_str": "<lines copied exactly from the file>", "new_str": "x"}"#;
    let provider = Scripted::new(vec![call("view", VIEW_README), call("edit", copied), finish("done")]);
    h.run(&provider, compact(), Interrupt::new()).await;
    let observations = h.observations();
    assert!(observations[1].2, "{observations:?}");
    assert!(
        observations[1]
            .1
            .contains("`old_str` is \"<lines copied exactly from the file>\": that is the example's placeholder"),
        "{observations:?}"
    );
    // An ordinary failed edit gets no such note.
    let h = Harness::new();
    let absent = r#"{"command": "str_replace", "path": "README.md", "old_str": "absent", "new_str": "x"}"#;
    let provider = Scripted::new(vec![call("view", VIEW_README), call("edit", absent), finish("done")]);
    h.run(&provider, compact(), Interrupt::new()).await;
    assert!(!h.observations()[1].1.contains("placeholder"), "{:?}", h.observations());
}

#[tokio::test]
async fn a_small_models_abstain_before_any_command_is_questioned_once() {
    let h = Harness::new();
    let abstain = |reason: &str| call("abstain", &serde_json::json!({ "reason": reason }).to_string());
    let provider = Scripted::new(vec![abstain("cannot"), abstain("tried, still cannot")]);
    let outcome = h.run(&provider, compact(), Interrupt::new()).await;
    assert_eq!(outcome.status, RunStatus::Abstained, "{outcome:?}");
    assert_eq!(outcome.summary, "tried, still cannot");
    let observations = h.observations();
    assert!(observations[0].2 && observations[0].1.contains("not abstained yet"), "{observations:?}");
    // After a command ran, an abstain ends the run at once; so does a capable model's.
    let h = Harness::new();
    let provider = Scripted::new(vec![call("bash", r#"{"command": "true"}"#), abstain("vague")]);
    assert_eq!(h.run(&provider, compact(), Interrupt::new()).await.status, RunStatus::Abstained);
    assert_eq!(h.observations().len(), 2);
    let h = Harness::new();
    let provider = Scripted::new(vec![abstain("vague")]);
    assert_eq!(h.run_default(&provider).await.status, RunStatus::Abstained);
}

#[tokio::test]
async fn the_first_estimate_counts_the_tool_schemas() {
    let h = Harness::new();
    let provider = Scripted::new(vec![finish("done")]);
    h.run_default(&provider).await;
    let estimated = h
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::ModelRequest { estimated_tokens, .. } => Some(estimated_tokens),
            _ => None,
        })
        .unwrap();
    let schemas = serde_json::to_string(&h.tools.specs()).unwrap().len() as u64;
    assert!(estimated > schemas / 4, "{estimated} tokens for {schemas} characters of schemas");
}

#[tokio::test]
async fn a_small_models_failed_edit_is_left_out_of_the_conversation_but_kept_in_the_trajectory() {
    let h = Harness::new();
    let replace = r#"{"command": "str_replace", "path": "README.md", "old_str": "absent", "new_str": "x"}"#;
    let provider = Scripted::new(vec![call("edit", replace), finish("done")]);
    h.run(&provider, compact(), Interrupt::new()).await;
    let second = &provider.requests()[1].messages;
    assert!(second.iter().all(|m| m.tool_calls.is_empty() && m.role != Role::Tool), "{second:?}");
    let note = &second.last().unwrap().content;
    assert!(note.contains("left out here") && note.contains("does not occur"), "{note}");
    assert!(!note.contains("absent"), "the failed edit's text is not shown again: {note}");
    assert!(h.observations()[0].1.contains("does not occur"), "the trajectory has the result");
    // A capable model keeps its failed edit in view (it learns from it rather than copying it).
    let h = Harness::new();
    let provider = Scripted::new(vec![call("edit", replace), finish("done")]);
    h.run_default(&provider).await;
    assert!(provider.requests()[1].messages.iter().any(|m| m.role == Role::Tool));
}

#[tokio::test]
async fn a_repeated_call_is_followed_by_a_sampled_request() {
    let h = Harness::new();
    let provider = Scripted::new(vec![call("view", VIEW_README), call("view", VIEW_README), finish("done")]);
    h.run_default(&provider).await;
    let temperatures: Vec<_> = provider.requests().iter().map(|r| r.temperature).collect();
    assert_eq!(temperatures, [None, None, Some(0.7)]);
}

#[tokio::test]
async fn a_call_cut_off_at_the_output_limit_is_told_so() {
    let h = Harness::new();
    let mut cut = call("edit", r#"{"command": "str_replace", "path": "README.md", "new_str": "hel"#);
    if let Ok(response) = &mut cut {
        response.finish_reason = FinishReason::Length;
    }
    let provider = Scripted::new(vec![cut, finish("done")]);
    h.run_default(&provider).await;
    let observations = h.observations();
    assert!(observations[0].2 && observations[0].1.contains("cut off at the output limit"), "{observations:?}");
    // A call that failed in a reply that was not cut off gets no such note.
    let h = Harness::new();
    let provider =
        Scripted::new(vec![call("edit", r#"{"command": "str_replace", "path": "README.md""#), finish("done")]);
    h.run_default(&provider).await;
    assert!(!h.observations()[0].1.contains("cut off"), "{:?}", h.observations());
}
