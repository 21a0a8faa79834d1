//! The vocabulary every rigor crate shares: conversation messages, tool calls and their
//! descriptions, token usage, and the [`Event`]s a run emits.
//!
//! This crate holds data only. It knows nothing about HTTP, processes or the file system, so
//! providers (`rigor-llm`), tools (`rigor-tools`) and front ends (the CLI, the JSON stream, the
//! trajectory writer) can all speak it without depending on each other.

pub mod terminal;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the model.
    System,
    /// The user (or the loop speaking for the user).
    User,
    /// The model.
    Assistant,
    /// The result of a tool call.
    Tool,
}

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Provider-assigned id, echoed back in the matching tool result.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The raw argument text as the model produced it (usually JSON). Kept raw so that a
    /// malformed call can be reported to the model instead of being lost.
    pub arguments: String,
}

impl ToolCall {
    /// Parses [`ToolCall::arguments`] as a JSON object; an empty string counts as `{}`.
    ///
    /// Small models often write a multi-line value (a file's new text, a script) with raw line
    /// breaks or tabs inside a JSON string, and code with its own quotes unescaped, which strict
    /// JSON forbids. Such text is accepted as if those characters had been escaped (see
    /// [`escape_string_contents`]): nothing else is repaired, and text that is still not a JSON
    /// object after that is reported with the strict parser's error.
    pub fn parsed_arguments(&self) -> Result<Value, String> {
        let text = self.arguments.trim();
        if text.is_empty() {
            return Ok(Value::Object(Default::default()));
        }
        let strict = serde_json::from_str::<Value>(text);
        let parsed = match strict {
            Err(_) => repaired_object(text).map_or(strict, Ok),
            ok => ok,
        };
        match parsed {
            Ok(value @ Value::Object(_)) => Ok(value),
            Ok(other) => Err(format!("arguments must be a JSON object, got: {other}")),
            Err(err) => Err(format!("arguments are not valid JSON ({err}): {text}")),
        }
    }
}

/// `text` read as a JSON object once repaired: values written as Python's triple-quoted strings
/// made JSON strings ([`triple_quoted_values`]), and what small models leave unescaped inside
/// strings escaped ([`escape_string_contents`]).
fn repaired_object(text: &str) -> Option<Value> {
    let object = |t: &str| serde_json::from_str::<Value>(t).ok().filter(Value::is_object);
    let escaped = |t: &str| escape_string_contents(t).and_then(|r| object(&r));
    // Triple quotes first: read as unescaped quotes, `"""a"""` would be the text `""a""`.
    triple_quoted_values(text).and_then(|t| object(&t).or_else(|| escaped(&t))).or_else(|| escaped(text))
}

/// `text` with each value written as a Python triple-quoted string (`"file_text": """\` … `"""`,
/// as Qwen2.5-Coder-1.5B writes a file's text) made a JSON string; the value ends at the first
/// `"""` that the next key or the object's end follows, so docstrings inside it stay text. A
/// backslash right after the opening quotes escapes the line break, as in Python. `None` when
/// there is none, or one is left open.
fn triple_quoted_values(text: &str) -> Option<String> {
    const QUOTES: &str = "\"\"\"";
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    let mut changed = false;
    while let Some(open) = rest.find(QUOTES) {
        let before = &rest[..open];
        if !before.trim_end().ends_with(':') {
            // Not a value's opening (three quotes inside some other text): leave the text as it is.
            out.push_str(&rest[..open + QUOTES.len()]);
            rest = &rest[open + QUOTES.len()..];
            continue;
        }
        out.push_str(before);
        let body = &rest[open + QUOTES.len()..];
        let mut from = 0;
        let close = loop {
            let at = from + body[from..].find(QUOTES)?;
            if ends_value(&body[at + QUOTES.len()..]) {
                break at;
            }
            from = at + 1;
        };
        let value = &body[..close];
        let value = value.strip_prefix("\\\n").unwrap_or(value);
        out.push_str(&serde_json::to_string(value).ok()?);
        rest = &body[close + QUOTES.len()..];
        changed = true;
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// `text` with what small models leave unescaped inside JSON strings escaped: control
/// characters (raw line breaks, tabs), and, in a value, a `"` that cannot end it: one followed
/// neither by `,` and the next `"key":` nor by the object's closing braces. Code put in a value
/// (`"new_str": "UNITS = {"d": 86400}"`) is so read as the model meant it. `None` when there is
/// nothing to escape, or a string is left open (the repair could not be trusted).
fn escape_string_contents(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 16);
    let (mut in_string, mut in_value, mut escaped, mut changed) = (false, false, false, false);
    // Whether the last token outside a string was `:` (so the next string is a value), and
    // whether it was `{` or `,` (so a key comes next).
    let (mut after_colon, mut expect_key) = (false, false);
    // The end of a bare key already written out quoted.
    let mut skip_to = 0;
    for (at, c) in text.char_indices() {
        if at < skip_to {
            continue;
        }
        if !in_string {
            if expect_key && let Some(key) = bare_key(&text[at..]) {
                out.push_str(&format!("\"{key}\""));
                (skip_to, changed, expect_key) = (at + key.len(), true, false);
                continue;
            }
            match c {
                '"' => (in_string, in_value, after_colon, expect_key) = (true, after_colon, false, false),
                ':' => (after_colon, expect_key) = (true, false),
                '{' | ',' => (after_colon, expect_key) = (false, true),
                c if c.is_whitespace() => {}
                _ => (after_colon, expect_key) = (false, false),
            }
            out.push(c);
            continue;
        }
        if escaped {
            escaped = false;
            out.push(c);
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                out.push(c);
            }
            '"' if in_value && !ends_value(&text[at + 1..]) => {
                changed = true;
                out.push_str("\\\"");
            }
            '"' => {
                in_string = false;
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
        changed |= (c as u32) < 0x20;
    }
    (changed && !in_string).then_some(out)
}

/// Whether a `"` followed by `rest` can close a value: the next key (`, "name":`) or the end of
/// the object follows.
fn ends_value(rest: &str) -> bool {
    let rest = rest.trim_start();
    let Some(after) = rest.strip_prefix(',') else {
        return rest.starts_with('}') && rest.chars().all(|c| c == '}' || c == ']' || c.is_whitespace());
    };
    let after = after.trim_start();
    if bare_key(after).is_some() {
        return true;
    }
    let Some(key) = after.strip_prefix('"') else { return false };
    let Some(close) = key.find('"') else { return false };
    let name = &key[..close];
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && key[close + 1..].trim_start().starts_with(':')
}

/// A key written without its quotes at the start of `rest` (`insert_line: 18`, as small models
/// write JavaScript object keys): an identifier, `:` and the start of a JSON value (so that
/// `b: int` in a type-hinted signature inside a value is not taken for a key).
fn bare_key(rest: &str) -> Option<&str> {
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
    let key = &rest[..end];
    let starts_well = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    let value = rest[end..].trim_start().strip_prefix(':')?.trim_start();
    let value_starts = value.starts_with(|c: char| c.is_ascii_digit() || "\"{[-".contains(c))
        || ["true", "false", "null"].iter().any(|v| value.starts_with(v));
    (starts_well && value_starts).then_some(key)
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The speaker.
    pub role: Role,
    /// Text content (may be empty for an assistant message that only calls tools).
    #[serde(default)]
    pub content: String,
    /// Tool calls, on assistant messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// On tool messages: the id of the call this message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// On tool messages: whether the tool reported an error.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::text(Role::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::text(Role::User, content)
    }

    /// An assistant message with text and tool calls.
    pub fn assistant(content: impl Into<String>, tool_calls: Vec<ToolCall>) -> Self {
        Self { tool_calls, ..Self::text(Role::Assistant, content) }
    }

    /// The result of the tool call `call_id`.
    pub fn tool_result(call_id: impl Into<String>, content: impl Into<String>, is_error: bool) -> Self {
        Self { tool_call_id: Some(call_id.into()), is_error, ..Self::text(Role::Tool, content) }
    }

    fn text(role: Role, content: impl Into<String>) -> Self {
        Self { role, content: content.into(), tool_calls: Vec::new(), tool_call_id: None, is_error: false }
    }

    /// Characters of content and tool-call arguments: the basis of token estimates.
    pub fn char_len(&self) -> usize {
        self.content.len() + self.tool_calls.iter().map(|c| c.name.len() + c.arguments.len()).sum::<usize>()
    }
}

/// What a tool is, as shown to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Name the model calls it by.
    pub name: String,
    /// One or two sentences: what it does and when to use it.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
}

impl ToolSpec {
    /// The spec as a small model's prompt shows it: the description cut to its first sentence
    /// and the arguments without their descriptions (names, types, enums and `required` stay, so
    /// every call that was valid stays valid).
    pub fn compact(&self) -> ToolSpec {
        let description = first_sentence(&self.description);
        let mut parameters = self.parameters.clone();
        if let Some(properties) = parameters.get_mut("properties").and_then(Value::as_object_mut) {
            for property in properties.values_mut() {
                if let Some(property) = property.as_object_mut() {
                    property.remove("description");
                }
            }
        }
        ToolSpec { name: self.name.clone(), description, parameters }
    }
}

/// The first sentence of `text` (up to a `. ` or the end), whitespace collapsed.
fn first_sentence(text: &str) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    // A sentence ends at a `. ` or `; ` outside parentheses.
    let mut depth = 0_i32;
    for (at, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            '.' | ';' if depth <= 0 && text[at + 1..].starts_with(' ') => return format!("{}.", &text[..at]),
            _ => {}
        }
    }
    text
}

/// How much the first request says. `Full`: the whole workflow, every tool with its argument
/// descriptions and a ~1,500-token repository map (models with large contexts). `Compact`: a
/// short system prompt, the tools a small model uses (shell, viewer, editor, finish, abstain)
/// with one-line descriptions, and a map scaled to the context window and cut to the files
/// relevant to the issue. Chosen per model family (`rigor run --prompt`, `agent.prompt`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptProfile {
    /// Everything, for capable models.
    #[default]
    Full,
    /// What a small local model needs and no more.
    Compact,
}

impl PromptProfile {
    /// `full` or `compact`.
    pub fn as_str(self) -> &'static str {
        match self {
            PromptProfile::Full => "full",
            PromptProfile::Compact => "compact",
        }
    }

    /// Parses `full` or `compact`.
    pub fn parse(text: &str) -> Option<PromptProfile> {
        match text {
            "full" => Some(PromptProfile::Full),
            "compact" => Some(PromptProfile::Compact),
            _ => None,
        }
    }
}

/// Token counts of one model call (or a sum of them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    pub input_tokens: u64,
    /// Tokens generated.
    pub output_tokens: u64,
    /// Prompt tokens served from the provider's cache, when it says so.
    #[serde(default)]
    pub cached_input_tokens: u64,
}

impl Usage {
    /// Input plus output tokens.
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, other: Self) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cached_input_tokens += other.cached_input_tokens;
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// The agent finished and delivered a patch.
    Submitted,
    /// The agent declined, with a reason.
    Abstained,
    /// A budget (steps, tokens, cost, time) ran out; the work so far is kept.
    BudgetExhausted,
    /// The user interrupted the run (Ctrl-C).
    Interrupted,
    /// The run failed (provider error after retries, workspace error, ...).
    Error,
}

impl RunStatus {
    /// The documented process exit code for this status.
    pub fn exit_code(self) -> i32 {
        match self {
            RunStatus::Submitted => 0,
            RunStatus::Error => 1,
            RunStatus::Abstained => 3,
            RunStatus::BudgetExhausted => 4,
            RunStatus::Interrupted => 130,
        }
    }

    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Submitted => "submitted",
            RunStatus::Abstained => "abstained",
            RunStatus::BudgetExhausted => "budget_exhausted",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Error => "error",
        }
    }
}

/// Totals of a run, reported at the end and in `result.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunTotals {
    /// Model turns taken.
    pub steps: u32,
    /// Tool calls executed.
    pub tool_calls: u32,
    /// Summed token usage.
    pub usage: Usage,
    /// Summed cost in US dollars (0 when the price is unknown).
    pub cost_usd: f64,
    /// Wall-clock duration in milliseconds.
    pub duration_ms: u64,
}

/// The version of the event schema, recorded in every `run_started` event. It changes when a
/// field is removed or its meaning changes; adding an event type or an optional field does not
/// change it (readers ignore what they do not know). Records without it are version 0.
pub const SCHEMA_VERSION: u32 = 1;

/// What the action policy decides about an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Run it.
    Allow,
    /// Hold it for approval.
    Ask,
    /// Refuse it.
    Deny,
}

impl Verdict {
    /// `allow`, `ask` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Ask => "ask",
            Verdict::Deny => "deny",
        }
    }
}

/// Why an action is risky.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Nothing risky found.
    Benign,
    /// Deleting or overwriting outside the workspace.
    Destructive,
    /// Reading credentials or dumping the environment.
    Credentials,
    /// Sending data to another host.
    Exfiltration,
    /// Fetching code and running it.
    DownloadExecute,
    /// `sudo`, setuid, ownership and account changes.
    Privilege,
    /// Cron jobs, shell rc files, systemd units, authorized keys.
    Persistence,
    /// File systems, partitions and raw devices.
    Device,
    /// Killing processes that are not the command's own.
    ProcessKill,
    /// Unbounded process creation.
    ForkBomb,
    /// Turning off or escaping the sandbox.
    SandboxEscape,
    /// Decided by a rule of the user's configuration.
    UserRule,
}

impl Category {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Benign => "benign",
            Category::Destructive => "destructive",
            Category::Credentials => "credentials",
            Category::Exfiltration => "exfiltration",
            Category::DownloadExecute => "download_execute",
            Category::Privilege => "privilege",
            Category::Persistence => "persistence",
            Category::Device => "device",
            Category::ProcessKill => "process_kill",
            Category::ForkBomb => "fork_bomb",
            Category::SandboxEscape => "sandbox_escape",
            Category::UserRule => "user_rule",
        }
    }
}

/// What became of a screened action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionOutcome {
    /// It runs without asking.
    Run,
    /// The user approved it.
    Approved,
    /// The user declined it.
    Rejected,
    /// It was refused without asking (denied, or held with nobody to ask).
    Refused,
}

impl ActionOutcome {
    /// `run`, `approved`, `rejected` or `refused`.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionOutcome::Run => "run",
            ActionOutcome::Approved => "approved",
            ActionOutcome::Rejected => "rejected",
            ActionOutcome::Refused => "refused",
        }
    }

    /// Whether the action runs.
    pub fn runs(self) -> bool {
        matches!(self, ActionOutcome::Run | ActionOutcome::Approved)
    }
}

/// Why a model stopped generating, in one vocabulary for every provider (OpenAI's `stop` /
/// `tool_calls` / `length` / `content_filter`, Anthropic's `end_turn` / `tool_use` /
/// `max_tokens` / `stop_sequence`, ...). A reason rigor does not know is kept as it was given.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum FinishReason {
    /// The model ended its reply (or hit a stop sequence).
    #[default]
    Stop,
    /// The model asked for tool calls.
    ToolCalls,
    /// The output token limit was reached.
    Length,
    /// The provider withheld or cut the reply.
    ContentFilter,
    /// Any other reason, verbatim.
    Other(String),
}

impl FinishReason {
    /// The canonical name (`stop`, `tool_calls`, `length`, `content_filter`, or the other reason).
    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::Length => "length",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::Other(other) => other,
        }
    }
}

impl From<String> for FinishReason {
    fn from(reason: String) -> Self {
        match reason.as_str() {
            "stop" | "end_turn" | "stop_sequence" | "eos" => FinishReason::Stop,
            "tool_calls" | "tool_use" | "function_call" => FinishReason::ToolCalls,
            "length" | "max_tokens" => FinishReason::Length,
            "content_filter" | "refusal" => FinishReason::ContentFilter,
            _ => FinishReason::Other(reason),
        }
    }
}

impl From<&str> for FinishReason {
    fn from(reason: &str) -> Self {
        FinishReason::from(reason.to_string())
    }
}

impl From<FinishReason> for String {
    fn from(reason: FinishReason) -> Self {
        reason.as_str().to_string()
    }
}

/// An operation a front end sends to a running session (see `rigor_core::session`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Stop after the current step (the first Ctrl-C).
    Interrupt,
    /// Stop now, cancelling a running tool (the second Ctrl-C).
    Cancel,
    /// The answer to an `approval_requested` event.
    Approve {
        /// The call the request named.
        call_id: String,
        /// Whether the action may run.
        approved: bool,
    },
    /// A message from the user, added to the conversation before the next model turn.
    UserMessage {
        /// The message.
        text: String,
    },
    /// In a conversation: restore the files the last request changed (answered by an `undone`
    /// event once the session is idle).
    Undo,
    /// Ends a conversation (the request under way is cancelled first). A single-request run
    /// stops as at `Cancel`.
    EndSession,
}

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}
display_as_str!(Verdict, Category, ActionOutcome, FinishReason);

/// Everything that happens in a run, in order. The CLI's human output, the `--json` stream and
/// the trajectory file are all renderings of this one stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The run began.
    RunStarted {
        /// [`SCHEMA_VERSION`] of the writer (0: written before versions were recorded).
        #[serde(default)]
        schema_version: u32,
        /// Run id (also the directory name under `.rigor/runs/`).
        run_id: String,
        /// The user's repository.
        repo: String,
        /// Where the agent works (a git worktree unless in-place).
        workspace: String,
        /// Commit the workspace started from.
        base_commit: String,
        /// `provider:model`.
        model: String,
        /// The issue text.
        issue: String,
        /// The system prompt the run started with.
        #[serde(default)]
        system_prompt: String,
        /// The tools offered to the model.
        tools: Vec<ToolSpec>,
        /// The tool sources of the run (`graph`, `proof`, …), which a replay needs again.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        sources: Vec<String>,
        /// The prompt profile of the run (a replay uses it again).
        #[serde(default)]
        prompt: PromptProfile,
        /// A conversation (`rigor chat`): after each request the session waits for the user's
        /// next message instead of ending.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        conversation: bool,
        /// Start time, RFC 3339.
        started_at: String,
    },
    /// A model call is about to be made.
    ModelRequest {
        /// 1-based turn number.
        turn: u32,
        /// Messages sent.
        messages: usize,
        /// Estimated prompt tokens.
        estimated_tokens: u64,
    },
    /// A chunk of streamed assistant text (not written to the trajectory).
    TextDelta {
        /// The new text.
        text: String,
    },
    /// Progress of a local model's prompt processing before its first token (not written to
    /// the trajectory).
    PrefillProgress {
        /// 1-based turn number.
        turn: u32,
        /// New prompt tokens processed so far.
        processed: u64,
        /// New prompt tokens of the request (not reused from the cache).
        total: u64,
        /// Milliseconds since prompt processing began.
        elapsed_ms: u64,
    },
    /// A provider call failed and will be retried.
    Retry {
        /// Attempt that failed (1-based).
        attempt: u32,
        /// How long until the next attempt.
        wait_ms: u64,
        /// Why.
        reason: String,
    },
    /// The model's complete answer for a turn.
    ModelResponse {
        /// 1-based turn number.
        turn: u32,
        /// The assembled assistant message.
        message: Message,
        /// Tokens of this call.
        usage: Usage,
        /// Cost of this call in USD.
        cost_usd: f64,
        /// Latency of the call, including retries.
        latency_ms: u64,
        /// Why the model stopped.
        finish_reason: FinishReason,
    },
    /// A tool is about to run.
    ToolCall {
        /// 1-based turn number.
        turn: u32,
        /// The call.
        call: ToolCall,
    },
    /// A tool's result, as the model will see it.
    Observation {
        /// 1-based turn number.
        turn: u32,
        /// Id of the call answered.
        call_id: String,
        /// The tool's name.
        name: String,
        /// Text shown to the model.
        content: String,
        /// Whether it is an error.
        is_error: bool,
        /// Time the tool took.
        duration_ms: u64,
    },
    /// The action policy screened a tool call before it ran (every screened call has one).
    PolicyDecision {
        /// 1-based turn number.
        turn: u32,
        /// Id of the call screened.
        call_id: String,
        /// The tool's name.
        tool: String,
        /// The command line or code screened.
        action: String,
        /// The policy's verdict.
        verdict: Verdict,
        /// The risk category.
        category: Category,
        /// The rule that decided.
        rule: String,
        /// Why.
        reason: String,
        /// What became of it.
        outcome: ActionOutcome,
    },
    /// Older turns were condensed to fit the context window.
    Condensed {
        /// Estimated tokens before.
        before_tokens: u64,
        /// Estimated tokens after.
        after_tokens: u64,
        /// Messages removed or shortened.
        messages_affected: usize,
    },
    /// A user message joined the conversation: the loop's own (a reminder to call a tool, a note
    /// on repeated calls) or, with `from_user`, one the user sent (`Op::UserMessage`).
    UserMessage {
        /// The turn it follows.
        turn: u32,
        /// The message.
        content: String,
        /// Sent by the user rather than written by the loop (a replay sends it again).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        from_user: bool,
    },
    /// A note from the loop (budget warnings, interrupts, ...).
    Notice {
        /// The note.
        message: String,
    },
    /// The run ended.
    RunFinished {
        /// How it ended.
        status: RunStatus,
        /// The agent's summary, abstention reason, or the error.
        summary: String,
        /// Unified diff of the workspace against the base.
        patch: String,
        /// Totals.
        totals: RunTotals,
    },
    /// A request of a conversation ended; the session waits for the user's next message.
    RequestFinished {
        /// How the request ended.
        status: RunStatus,
        /// The agent's summary or reply, the reason or the error.
        summary: String,
        /// Unified diff of the workspace against the session's start.
        patch: String,
    },
    /// In a conversation, the workspace's diff after a turn's tool calls (the chat's running
    /// diff; not written to the trajectory).
    DiffChanged {
        /// Unified diff of the workspace against the session's start.
        patch: String,
    },
    /// `Op::Undo` restored the files the last request changed.
    Undone {
        /// Paths restored (changed, created or deleted by the request).
        files: Vec<String>,
        /// Unified diff of the workspace against the session's start, after the undo.
        patch: String,
    },
    /// A step of the proof (when the model calls `finish` in a run that proves its patch).
    ProofStep {
        /// Which step.
        phase: ProofPhase,
        /// How it went.
        outcome: StepOutcome,
        /// What it found, in a line.
        detail: String,
        /// Seconds it took.
        secs: f64,
    },
    /// The session waits for the front end to approve a held action: answer with
    /// [`Op::Approve`] carrying the same `call_id`.
    ApprovalRequested {
        /// The tool call whose action is held.
        call_id: String,
        /// The tool.
        tool: String,
        /// The command line or code.
        action: String,
        /// The policy's verdict (`ask`, or `allow` under approval mode `always`).
        verdict: Verdict,
        /// The risk category.
        category: Category,
        /// Why it is held.
        reason: String,
    },
    /// `rigor replay`'s verdict on a replayed run (printed after its events).
    ReplayReport {
        /// Same observations, status and patch as the recording.
        reproduced: bool,
        /// The recorded run's status, if the recording has one.
        recorded_status: Option<RunStatus>,
        /// The replayed run's status.
        replayed_status: RunStatus,
        /// Observations that differ.
        divergences: usize,
        /// Observations recorded but not replayed (negative: replayed but not recorded).
        missing_observations: i64,
        /// Whether the patch is the recorded one.
        patch_identical: bool,
        /// The replayed run's directory.
        run_dir: String,
        /// When the recording has a proof: the proof's status then and now (`proven` →
        /// `proven`: it still holds on a fresh worktree).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proof: Option<ProofCheck>,
    },
}

/// A step of the proof rigor runs when the model calls `finish` (see `rigor_proof`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProofPhase {
    /// The changes split into the fix and the tests, existing tests guarded.
    Changes,
    /// The reproduction run on the original code (it must fail for the issue's reason).
    ReproductionBefore,
    /// The reproduction run on the patched code (it must pass).
    ReproductionAfter,
    /// The related existing tests on both (none may break).
    Regressions,
}

/// How a proof step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// What the proof needs.
    Passed,
    /// The step sends the model back (or leaves the patch unproven).
    Failed,
    /// The step could not run here (no runner, no related tests).
    Skipped,
}

/// A recorded proof checked again by a replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofCheck {
    /// The recorded proof's status (`proven`, `unproven`, `abstained`).
    pub recorded: String,
    /// The replayed proof's status.
    pub replayed: String,
    /// Whether a proven patch is still proven.
    pub holds: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compact_spec_keeps_the_schema_and_the_first_sentence() {
        let spec = ToolSpec {
            name: "bash".into(),
            description: "Run a command (cwd persists. really). Output is cut.".into(),
            parameters: serde_json::json!({"type": "object", "properties": {
                "command": {"type": "string", "description": "The command."}}, "required": ["command"]}),
        };
        let compact = spec.compact();
        assert_eq!(compact.description, "Run a command (cwd persists. really).");
        assert_eq!(compact.parameters["properties"]["command"], serde_json::json!({"type": "string"}));
        assert_eq!(compact.parameters["required"], spec.parameters["required"]);
    }

    #[test]
    fn events_round_trip_through_json_with_a_type_tag() {
        let event = Event::ToolCall {
            turn: 2,
            call: ToolCall { id: "c1".into(), name: "bash".into(), arguments: "{\"command\":\"ls\"}".into() },
        };
        let json = serde_json::to_string(&event).unwrap_or_default();
        assert!(json.starts_with("{\"type\":\"tool_call\""), "{json}");
        let back: Event = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, event);
    }

    #[test]
    fn malformed_arguments_are_reported_not_panicked() {
        let call = ToolCall { id: "x".into(), name: "bash".into(), arguments: "{\"command\": ".into() };
        let err = call.parsed_arguments().err().unwrap_or_default();
        assert!(err.contains("not valid JSON"), "{err}");
        let call = ToolCall { arguments: "[1]".into(), ..call };
        assert!(call.parsed_arguments().is_err());
        let call = ToolCall { arguments: String::new(), ..call };
        assert_eq!(call.parsed_arguments().ok(), Some(serde_json::json!({})));
    }

    #[test]
    fn raw_line_breaks_inside_strings_are_read_as_escaped() {
        // As Qwen2.5-Coder-1.5B writes an edit: the new text with real line breaks and a tab.
        let raw =
            "{\"path\": \"calc.py\", \"new\": \"def add(a, b):\n\treturn a + b\n\", \"note\": \"say \\\"hi\\\"\"}";
        let call = ToolCall { id: "x".into(), name: "edit".into(), arguments: raw.into() };
        let args = call.parsed_arguments().expect("repaired");
        assert_eq!(args["new"], "def add(a, b):\n\treturn a + b\n");
        assert_eq!(args["note"], "say \"hi\"");
        // A line break between values is plain JSON whitespace and stays so.
        let call = ToolCall { arguments: "{\n\"path\":\n \"a\"\n}".into(), ..call };
        assert_eq!(call.parsed_arguments().ok(), Some(serde_json::json!({"path": "a"})));
        // Nothing else is repaired: a string left open, a missing brace, an escaped line break.
        for broken in ["{\"new\": \"a\nb", "{\"new\": \"a\nb\"", "{\"new\": \"a\\\nb\"}"] {
            let call = ToolCall { arguments: broken.into(), ..call.clone() };
            let err = call.parsed_arguments().err().unwrap_or_default();
            assert!(err.contains("not valid JSON"), "{broken:?}: {err}");
        }
    }

    #[test]
    fn quotes_of_code_inside_a_value_are_read_as_escaped() {
        // As Qwen2.5-Coder-1.5B wrote an edit of the bundled example: code with its own quotes.
        let raw = r#"{"command":"str_replace","old_str":"UNITS = {"d": 86400, "h": 3600}","new_str":"x = "2h", "1h30m"
y = """doc""""
, "path": "durations.py"}"#;
        let call = ToolCall { id: "x".into(), name: "edit".into(), arguments: raw.into() };
        let args = call.parsed_arguments().expect("repaired");
        assert_eq!(args["old_str"], r#"UNITS = {"d": 86400, "h": 3600}"#);
        assert_eq!(args["new_str"], "x = \"2h\", \"1h30m\"\ny = \"\"\"doc\"\"\"");
        assert_eq!(args["path"], "durations.py");
        // A quote that closes the last value before nested closing braces still closes it.
        let call = ToolCall { arguments: "{\"a\": {\"b\": \"x\ny\"}}".into(), ..call };
        assert_eq!(call.parsed_arguments().ok(), Some(serde_json::json!({"a": {"b": "x\ny"}})));
        // A value left open is still an error, not a guess.
        let call = ToolCall { arguments: r#"{"new_str": "say "hi" "#.into(), ..call };
        assert!(call.parsed_arguments().is_err());
    }

    #[test]
    fn values_in_triple_quotes_are_read_as_strings() {
        // As Qwen2.5-Coder-1.5B wrote a new file for the bundled example: Python's triple quotes,
        // a docstring inside.
        let raw = "{\n    \"command\": \"create\",\n    \"file_text\": \"\"\"\\\ndef f(text):\n    \"\"\"Doc \"x\".\"\"\"\n    return {\"d\": 1}\n\"\"\",\n    \"path\": \"d.py\"\n}";
        let call = ToolCall { id: "x".into(), name: "edit".into(), arguments: raw.into() };
        let args = call.parsed_arguments().expect("repaired");
        assert_eq!(args["file_text"], "def f(text):\n    \"\"\"Doc \"x\".\"\"\"\n    return {\"d\": 1}\n");
        assert_eq!(args["path"], "d.py");
        // The last value, closed by the object's brace.
        let call = ToolCall { arguments: "{\"new_str\": \"\"\"a\"\"\"}".into(), ..call };
        assert_eq!(call.parsed_arguments().ok(), Some(serde_json::json!({"new_str": "a"})));
    }

    #[test]
    fn keys_without_quotes_are_read_as_quoted() {
        // As Qwen2.5-Coder-1.5B wrote an insert into the bundled example's tests.
        let raw =
            "{\"command\":\"insert\",\"path\":\"t.py\",\"new_str\":\"\\n    def test(self):\\n\", insert_line:18}";
        let call = ToolCall { id: "x".into(), name: "edit".into(), arguments: raw.into() };
        let args = call.parsed_arguments().expect("repaired");
        assert_eq!(args["insert_line"], 18);
        assert_eq!(args["new_str"], "\n    def test(self):\n");
        let call = ToolCall { arguments: "{command: \"undo\", path: \"a.py\"}".into(), ..call };
        assert_eq!(call.parsed_arguments().ok(), Some(serde_json::json!({"command": "undo", "path": "a.py"})));
        // A type hint after a quote inside a value is code, not a key.
        let raw = "{\"new_str\": \"def f(a: \"str\", b: int):\n    pass\", \"path\": \"a.py\"}";
        let call = ToolCall { arguments: raw.into(), ..call };
        let args = call.parsed_arguments().expect("repaired");
        assert_eq!(args["new_str"], "def f(a: \"str\", b: int):\n    pass");
    }

    #[test]
    fn exit_codes_match_the_documentation() {
        assert_eq!(RunStatus::Submitted.exit_code(), 0);
        assert_eq!(RunStatus::Error.exit_code(), 1);
        assert_eq!(RunStatus::Abstained.exit_code(), 3);
        assert_eq!(RunStatus::BudgetExhausted.exit_code(), 4);
        assert_eq!(RunStatus::Interrupted.exit_code(), 130);
    }
}
