//! The tools a rigor agent acts with.
//!
//! A [`Tool`] has a [`ToolSpec`] (name, description, JSON Schema of its arguments) and runs
//! against a workspace directory. A [`ToolBox`] holds the tools of a run, dispatches the
//! model's [`ToolCall`]s to them and turns every failure (unknown tool, malformed JSON, bad
//! arguments, a command that times out) into an error observation: a tool never crashes the run.
//!
//! The standard set: `bash` (a persistent shell session), `python` (a code action: one Python
//! snippet run as a whole), `view` (files with line numbers,
//! directories), `edit` (str_replace / insert / create / undo), `search` (gitignore-aware regex
//! search), and `finish` / `abstain`, which end the run.
//!
//! This crate knows nothing about models or the agent loop. It never builds the process of a
//! model-chosen command itself: the [`ToolContext`] carries a [`rigor_sandbox::Sandbox`], and only
//! that decides how such commands are spawned.

pub mod arguments;
pub mod confined;
pub mod edit;
mod paths;
pub mod python;
pub mod search;
pub mod shell;
pub mod truncate;
pub mod view;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
pub use rigor_protocol::PromptProfile;
use rigor_protocol::{ToolCall, ToolSpec};
use rigor_sandbox::{Action, Sandbox};
use serde_json::{Value, json};

/// Where and how tools run.
#[derive(Debug, Clone)]
pub struct ToolContext {
    /// The workspace root; relative paths are resolved against it.
    pub workspace: PathBuf,
    /// Wall-clock limit of one shell command.
    pub command_timeout: Duration,
    /// Observations longer than this (in characters) are cut, keeping head and tail.
    pub max_output_chars: usize,
    /// How model-chosen commands are spawned (confined, or explicitly not).
    pub sandbox: Arc<Sandbox>,
    /// Variables set in the shell session besides the sandbox's scrubbed environment, e.g. an
    /// activated virtual environment (`VIRTUAL_ENV`, `PATH`).
    pub shell_env: Vec<(String, String)>,
    /// The state the workspace started from, for checks that compare with it (`None`: unknown).
    pub baseline: Option<Arc<dyn Baseline>>,
    /// Where a tool reports progress events into the run's stream (the proof's steps); `None`:
    /// nobody listens.
    pub events: Option<EventHook>,
}

/// A sink for events a tool emits while it runs.
#[derive(Clone)]
pub struct EventHook(Arc<dyn Fn(rigor_protocol::Event) + Send + Sync>);

impl EventHook {
    /// A hook calling `f` with each event.
    pub fn new(f: impl Fn(rigor_protocol::Event) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }
}

impl std::fmt::Debug for EventHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventHook")
    }
}

/// The state a run's workspace started from: what the agent's changes are measured against (the
/// proof runs the reproduction on it).
#[async_trait]
pub trait Baseline: Send + Sync + std::fmt::Debug {
    /// The workspace's changes so far, as a unified diff against the starting state.
    async fn diff(&self) -> Result<String, String>;

    /// Writes the starting state's files into the empty directory `dir`.
    async fn export(&self, dir: &Path) -> Result<(), String>;

    /// The user's checkout the workspace was made from (where an ignored `.venv` lives, which a
    /// worktree does not carry).
    fn checkout(&self) -> &Path;
}

/// What a [`FinishCheck`] says of a `finish` call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishVerdict {
    /// The run may finish; `note` is added to the observation.
    Accept {
        /// What the check found.
        note: String,
    },
    /// The run goes on: the model gets `evidence` as the result of its `finish` call.
    Continue {
        /// What failed, for the model.
        evidence: String,
    },
}

/// Judges the workspace when the model calls `finish` (rigor's proof: the reproduction and the
/// related tests are run by rigor, not the model). Every check of a run must accept.
#[async_trait]
pub trait FinishCheck: Send + Sync {
    /// Inspects the workspace of `ctx` as the model asks to finish with `summary`.
    async fn check(&self, ctx: &ToolContext, summary: &str) -> FinishVerdict;
}

impl ToolContext {
    /// A context with default limits (120 s per command, 10,000 characters of output) and an
    /// **unconfined** sandbox ([`Sandbox::unconfined`]): right for testing the tools themselves.
    /// A run sets [`ToolContext::sandbox`] to a real one.
    pub fn new(workspace: impl Into<PathBuf>) -> Self {
        Self {
            workspace: workspace.into(),
            command_timeout: Duration::from_secs(120),
            max_output_chars: 10_000,
            sandbox: Arc::new(Sandbox::unconfined()),
            shell_env: Vec::new(),
            baseline: None,
            events: None,
        }
    }

    /// Emits `event` into the run's stream, if anyone listens.
    pub fn emit(&self, event: rigor_protocol::Event) {
        if let Some(EventHook(hook)) = &self.events {
            hook(event);
        }
    }

    /// Resolves a path argument against the workspace.
    pub fn resolve(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() { p.to_path_buf() } else { self.workspace.join(p) }
    }
}

/// What a [`ToolSource`] contributes to one run.
#[derive(Default)]
pub struct Contribution {
    /// Tools offered to the model (after the standard ones, before `finish` / `abstain`).
    pub tools: Vec<Box<dyn Tool>>,
    /// A section of the system prompt (empty: none), e.g. a repository map.
    pub prompt_section: String,
    /// A check every edit of the `edit` tool must pass, e.g. a syntax check.
    pub edit_check: Option<Arc<dyn edit::EditCheck>>,
    /// A shell command that runs the issue's examples and prints what they give (the code graph's,
    /// for a compact prompt): the loop runs it before the first turn and after each kept edit.
    pub examples: Option<String>,
    /// A check the workspace must pass before the run may finish, e.g. the proof.
    pub finish_check: Option<Arc<dyn FinishCheck>>,
    /// Drafts the loop asks a small model for before its first turn (the code graph's, for a
    /// compact prompt): a reproduction test, then a fix of the function the issue names.
    pub drafts: Vec<Arc<dyn Draft>>,
}

/// Code the loop asks a small model for in a request of its own, before the conversation's
/// first turn: one short prompt (no tools, no system prompt of rigor's), whose reply's code rigor
/// puts in place with the `edit` tool, screened and checked like any edit. Asked directly,
/// Qwen2.5-Coder-1.5B rewrote the bundled example's function correctly at temperature 0, where in
/// the tool-calling conversation its edits of the same function were wrong in every run.
pub trait Draft: Send + Sync {
    /// What it drafts, for the conversation: "a reproduction test", "a fix of `parse_duration`".
    fn what(&self) -> String;

    /// The request: one user message.
    fn prompt(&self) -> String;

    /// The output limit of the request, in tokens (the run's own limit applies when lower): a
    /// small model that repeats itself fills whatever it is given, at a few tokens a second.
    fn output_tokens(&self) -> u32;

    /// Whether it changes the code (a fix), not only the tests: the drafts are judged only when
    /// one that fixes was put in place.
    fn fixes(&self) -> bool;

    /// The arguments of the `edit` call that puts the reply's code in place, or why the reply
    /// gives none.
    fn edit(&self, reply: &str) -> Result<Value, String>;
}

/// Something that contributes tools, a prompt section and an edit check to a run: the code graph
/// today, MCP servers later. The front end chooses the sources of a run; the loop knows only this.
pub trait ToolSource: Send + Sync {
    /// A short name, for logs and `Debug`.
    fn name(&self) -> &str;

    /// What it offers a run in `workspace` on `issue`, its prompt section (and, for a compact
    /// prompt, its tools) shaped by `shape`. May block (e.g. to index the workspace); never fails:
    /// a source that cannot work contributes nothing and says why in its log.
    fn contribute(&self, workspace: &Path, issue: &str, shape: &PromptShape) -> Contribution;

    /// Secret values this source was configured with, by name (an MCP server's `env`): the run's
    /// records redact them wherever they show up. The default has none.
    fn secrets(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// As [`ToolSource::contribute`], told the run's directory (`.rigor/runs/<id>`), where a
    /// source keeps its logs (an MCP server's stderr). Runs call this; the default ignores it.
    fn contribute_to_run(&self, workspace: &Path, issue: &str, shape: &PromptShape, run_dir: &Path) -> Contribution {
        let _ = run_dir;
        self.contribute(workspace, issue, shape)
    }
}

/// What a source's prompt section may cost in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptShape {
    /// The run's prompt profile (a compact prompt leaves out what only explains left-out tools).
    pub profile: PromptProfile,
    /// Token budget of the section (estimated).
    pub section_tokens: usize,
}

/// The heading under which a prompt section shows code with line numbers, one block per entity,
/// each opened by a `path:name (kind, lines a-b)` line, the whole ended by an empty line: the
/// loop counts those files as seen (an edit of them is not an edit made blind).
pub const SHOWN_CODE_HEADING: &str = "The code the issue names (line numbers are not part of the file):";

/// The standard tools a [`PromptProfile::Compact`] run offers: what a small model uses to fix a
/// bug. Shell commands cover search (`grep -rn`) and Python snippets. Sources shape their own
/// tools (the code graph offers none to a compact prompt; an MCP server the user configured
/// offers its tools to every run).
pub const COMPACT_TOOLS: &[&str] = &["bash", "view", "edit", "finish", "abstain"];

/// The tools of [`ToolBox::standard_with`], by name.
const STANDARD_TOOLS: &[&str] = &["bash", "python", "view", "edit", "search", "finish", "abstain"];

impl std::fmt::Debug for dyn ToolSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ToolSource({})", self.name())
    }
}

/// A request from a tool to end the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// The agent is done; the workspace diff is the patch.
    Finish {
        /// What was changed and how it was verified.
        summary: String,
    },
    /// The agent declines to deliver a patch.
    Abstain {
        /// Why.
        reason: String,
    },
}

/// What a tool returns: the observation the model sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    /// Text for the model.
    pub content: String,
    /// Whether this is an error.
    pub is_error: bool,
    /// Set by `finish` and `abstain`.
    pub stop: Option<Stop>,
}

impl ToolOutput {
    /// A successful observation.
    pub fn ok(content: impl Into<String>) -> Self {
        Self { content: content.into(), is_error: false, stop: None }
    }

    /// An error observation.
    pub fn error(content: impl Into<String>) -> Self {
        Self { content: content.into(), is_error: true, stop: None }
    }
}

/// Something the agent can do.
#[async_trait]
pub trait Tool: Send + Sync {
    /// How the tool is described to the model.
    fn spec(&self) -> ToolSpec;

    /// What running the tool with `args` would do that the action policy must screen first (a
    /// shell command, Python code); `None` for tools that only read or that confine themselves.
    fn action(&self, _args: &Value) -> Option<Action> {
        None
    }

    /// Runs the tool with already-parsed JSON arguments.
    async fn run(&self, args: Value, ctx: &ToolContext) -> ToolOutput;
}

/// The tools of one run.
pub struct ToolBox {
    tools: Vec<Box<dyn Tool>>,
    ctx: ToolContext,
    profile: PromptProfile,
}

impl ToolBox {
    /// An empty tool box over `ctx`.
    pub fn new(ctx: ToolContext) -> Self {
        Self { tools: Vec::new(), ctx, profile: PromptProfile::Full }
    }

    /// The tool box as `profile` shows it: for [`PromptProfile::Compact`], of the standard tools
    /// only [`COMPACT_TOOLS`] (sources' tools stay), each with its [`ToolSpec::compact`] spec.
    pub fn shaped(mut self, profile: PromptProfile) -> Self {
        if profile == PromptProfile::Compact {
            self.tools.retain(|t| {
                let name = t.spec().name;
                !STANDARD_TOOLS.contains(&name.as_str()) || COMPACT_TOOLS.contains(&name.as_str())
            });
        }
        self.profile = profile;
        self
    }

    /// The standard tool set: bash, python, view, edit, search, finish, abstain.
    pub fn standard(ctx: ToolContext) -> Self {
        Self::standard_with(ctx, edit::EditTool::default(), FinishTool::default(), Vec::new())
    }

    /// The standard tool set with the given editor (e.g. one with a syntax check), `finish` tool
    /// (e.g. one with the proof's check) and `extra` tools, which come after `search` and before
    /// `finish` / `abstain`.
    pub fn standard_with(
        ctx: ToolContext,
        editor: edit::EditTool,
        finish: FinishTool,
        extra: Vec<Box<dyn Tool>>,
    ) -> Self {
        let mut tools = Self::new(ctx);
        tools.add(shell::ShellTool::new());
        tools.add(python::PythonTool::new());
        tools.add(view::ViewTool);
        tools.add(editor);
        tools.add(search::SearchTool);
        tools.tools.extend(extra);
        tools.add(finish);
        tools.add(AbstainTool);
        tools
    }

    /// Adds a tool (later issues add code-graph and MCP tools this way).
    pub fn add(&mut self, tool: impl Tool + 'static) {
        self.tools.push(Box::new(tool));
    }

    /// The specs of all tools, in registration order.
    pub fn specs(&self) -> Vec<ToolSpec> {
        let spec = |t: &dyn Tool| match self.profile {
            PromptProfile::Full => t.spec(),
            PromptProfile::Compact => t.spec().compact(),
        };
        self.tools.iter().map(|t| spec(t.as_ref())).collect()
    }

    /// The context the tools run in.
    pub fn context(&self) -> &ToolContext {
        &self.ctx
    }

    /// The action a call would perform, for the policy to screen before [`ToolBox::call`].
    pub fn action(&self, call: &ToolCall) -> Option<Action> {
        let tool = self.tools.iter().find(|t| t.spec().name == call.name)?;
        let mut args = call.parsed_arguments().ok()?;
        arguments::repair(&tool.spec(), &mut args);
        tool.action(&args)
    }

    /// Runs one call. Unknown tools and malformed arguments become error observations.
    pub async fn call(&self, call: &ToolCall) -> ToolOutput {
        let Some(tool) = self.tools.iter().find(|t| t.spec().name == call.name) else {
            let names: Vec<String> = self.specs().into_iter().map(|s| s.name).collect();
            return ToolOutput::error(format!(
                "unknown tool `{}`; the available tools are: {}",
                call.name,
                names.join(", ")
            ));
        };
        let mut args = match call.parsed_arguments() {
            Ok(args) => args,
            Err(err) => {
                return ToolOutput::error(format!(
                    "could not run `{}`: {err}. Send the arguments again as one valid JSON object.",
                    call.name
                ));
            }
        };
        let repairs = arguments::repair(&tool.spec(), &mut args);
        let mut output = tool.run(args, &self.ctx).await;
        if !repairs.is_empty() {
            output.content = format!("(rigor: {})\n{}", repairs.join(" "), output.content);
        }
        output
    }
}

/// Reads a required string argument, or explains what is missing.
pub fn required_str<'a>(args: &'a Value, key: &str) -> Result<&'a str, ToolOutput> {
    args.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| ToolOutput::error(format!("missing required string argument `{key}`")))
}

/// `finish`: ends the run, delivering the workspace diff, once every [`FinishCheck`] accepts.
#[derive(Default)]
pub struct FinishTool {
    checks: Vec<Arc<dyn FinishCheck>>,
}

impl FinishTool {
    /// A `finish` that asks every one of `checks` (in order) before the run may end.
    pub fn with_checks(checks: Vec<Arc<dyn FinishCheck>>) -> Self {
        Self { checks }
    }
}

#[async_trait]
impl Tool for FinishTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "finish".into(),
            description: "Call when the issue is fixed and verified. The workspace diff is the patch.".into(),
            parameters: json!({
                "type": "object",
                "properties": {"summary": {"type": "string", "description": "What you changed and how you verified it."}},
                "required": ["summary"]
            }),
        }
    }

    async fn run(&self, args: Value, ctx: &ToolContext) -> ToolOutput {
        let summary = match required_str(&args, "summary") {
            Ok(summary) => summary,
            Err(err) => return err,
        };
        let mut notes = Vec::new();
        for check in &self.checks {
            match check.check(ctx, summary).await {
                FinishVerdict::Accept { note } => notes.extend((!note.is_empty()).then_some(note)),
                FinishVerdict::Continue { evidence } => return ToolOutput::error(evidence),
            }
        }
        let content = if notes.is_empty() { "finished".to_string() } else { format!("finished\n{}", notes.join("\n")) };
        ToolOutput { stop: Some(Stop::Finish { summary: summary.to_string() }), ..ToolOutput::ok(content) }
    }
}

/// `abstain`: ends the run without a patch.
pub struct AbstainTool;

#[async_trait]
impl Tool for AbstainTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "abstain".into(),
            description: "Call when the issue is too vague to act on or you cannot produce a trustworthy fix.".into(),
            parameters: json!({
                "type": "object",
                "properties": {"reason": {"type": "string", "description": "Why no patch is delivered."}},
                "required": ["reason"]
            }),
        }
    }

    async fn run(&self, args: Value, _ctx: &ToolContext) -> ToolOutput {
        match required_str(&args, "reason") {
            Ok(reason) => {
                ToolOutput { stop: Some(Stop::Abstain { reason: reason.to_string() }), ..ToolOutput::ok("abstained") }
            }
            Err(err) => err,
        }
    }
}
