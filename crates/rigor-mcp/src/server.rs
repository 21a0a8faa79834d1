//! `rigor mcp`: rigor's code intelligence, tests, proofs and runs as an MCP server over stdio.
//!
//! The code graph's tools answer from the index in memory; `run_tests` and `check_patch`
//! ([`crate::checks`]) run the repository's tests in a scratch worktree in the sandbox; `solve`
//! ([`crate::solve`]) is a whole rigor run, with progress notifications. The index of the repository is kept in memory for the life of the server (nothing is written
//! into the repository) and refreshed incrementally before every answer, so a file the client
//! edited between two calls is re-indexed before the next one. Every tool returns a structured
//! result and a text rendering of it; a bad request is an MCP error with a message a model can
//! act on, and never ends the server.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rigor_graph::graph::EdgeKind;
use rigor_graph::localize::{Level, Retriever};
use rigor_graph::tools::{Direction, render_entity, render_search, render_traversal, resolve_entity};
use rigor_graph::{CodeIntel, NodeKind};
use rigor_protocol::Event;
use rigor_sandbox::SandboxSettings;
use rigor_tools::EventHook;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorData, Implementation,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, ServerCapabilities, ServerConfig, Tool,
    ToolAnnotations,
};
use rmcp::service::{RequestContext, RoleServer};
use tokio::sync::mpsc;

use crate::checks;
use crate::solve::{SolveRequest, Solver, progress_message};
use rmcp::{ServerHandler, ServiceExt};
use serde_json::{Map, Value, json};

/// URI of the repository map resource.
pub const REPO_MAP_URI: &str = "rigor://repo-map";

/// The server of one repository.
#[derive(Clone)]
pub struct RigorServer {
    intel: Arc<CodeIntel>,
    root: PathBuf,
    /// How `run_tests` and `check_patch` confine the tests (the network is always off).
    sandbox: SandboxSettings,
    /// How `solve` runs rigor (`None`: the server was started without a model).
    solver: Option<Arc<dyn Solver>>,
}

/// Why `rigor mcp` could not serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The MCP session could not start or failed.
    #[error("the MCP session failed: {0}")]
    Session(String),
}

impl RigorServer {
    /// A server over the repository at `root` (its index in memory only).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Self { intel: CodeIntel::in_memory(&root), root, sandbox: SandboxSettings::default(), solver: None }
    }

    /// The sandbox settings of the tests `run_tests` and `check_patch` run (network off whatever
    /// they say).
    pub fn with_sandbox(mut self, sandbox: SandboxSettings) -> Self {
        self.sandbox = sandbox;
        self
    }

    /// How `solve` runs rigor on an issue (without one, `solve` answers with an error saying how
    /// to start the server with a model).
    pub fn with_solver(mut self, solver: Arc<dyn Solver>) -> Self {
        self.solver = Some(solver);
        self
    }

    /// Serves MCP on stdin/stdout until the client closes the connection. The first indexing of
    /// the repository starts at once, in the background.
    pub async fn serve_stdio(self) -> Result<(), ServeError> {
        let warm = Arc::clone(&self.intel);
        tokio::task::spawn_blocking(move || {
            if let Err(err) = warm.refresh() {
                tracing::warn!("cannot index the repository: {err}");
            }
        });
        let service = self.serve(rmcp::transport::stdio()).await.map_err(|e| ServeError::Session(e.to_string()))?;
        service.waiting().await.map_err(|e| ServeError::Session(e.to_string()))?;
        Ok(())
    }

    /// The tools this server offers.
    pub fn tools() -> Vec<Tool> {
        let read_only = ToolAnnotations::new().read_only(true).destructive(false).open_world(false);
        let tool = |name: &'static str, description: &'static str, schema: Value| {
            Tool::new(name, description, Arc::new(as_object(schema))).annotate(read_only.clone())
        };
        // They run the repository's code (confined, in a scratch copy): not read-only for a client.
        let runs_code = ToolAnnotations::new().read_only(false).destructive(false).open_world(false);
        let running = |name: &'static str, description: &'static str, schema: Value| {
            Tool::new(name, description, Arc::new(as_object(schema))).annotate(runs_code.clone())
        };
        vec![
            tool(
                "localize",
                "Rank the files, modules (top-level classes/functions) or functions an issue is about, with scores \
                 and why each was ranked. Start here with the issue text.",
                json!({"type": "object", "properties": {
                    "issue": {"type": "string", "description": "The issue text (error messages, tracebacks and names help)."},
                    "level": {"type": "string", "enum": ["file", "module", "function"], "description": "Granularity (default file)."},
                    "top": {"type": "integer", "minimum": 1, "maximum": 100, "description": "How many locations (default 10)."}
                }, "required": ["issue"]}),
            ),
            tool(
                "search_entity",
                "Find classes, functions, methods and files by name (`union`, `QuerySet.union`, `path/to/file.py`) \
                 or keywords. Returns entity ids (`path:Class.method`) with line spans and signatures.",
                json!({"type": "object", "properties": {
                    "query": {"type": "string", "description": "Names or keywords, separated by spaces or commas."},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 50, "description": "Results per keyword (default 10)."}
                }, "required": ["query"]}),
            ),
            tool(
                "retrieve_entity",
                "Show the code of entities by id (`path:Class.method`, `Class.method`, or a file path), with line numbers.",
                json!({"type": "object", "properties": {
                    "entity_ids": {"type": "array", "items": {"type": "string"}, "description": "Entity ids."}
                }, "required": ["entity_ids"]}),
            ),
            tool(
                "traverse_graph",
                "Walk the code graph from entities along contains/imports/invokes/inherits edges: downstream (what \
                 it uses), upstream (what uses it) or both.",
                json!({"type": "object", "properties": {
                    "start_entities": {"type": "array", "items": {"type": "string"}, "description": "Entity ids to start from."},
                    "direction": {"type": "string", "enum": ["downstream", "upstream", "both"], "description": "Default downstream."},
                    "depth": {"type": "integer", "minimum": 1, "maximum": 5, "description": "Hops (default 2)."},
                    "edge_types": {"type": "array", "items": {"type": "string", "enum": ["contains", "imports", "invokes", "inherits"]}},
                    "entity_types": {"type": "array", "items": {"type": "string", "enum": ["directory", "file", "class", "function", "method"]}}
                }, "required": ["start_entities"]}),
            ),
            tool(
                "repo_map",
                "A compact map of the repository (files, classes and function signatures) within a token budget, \
                 files most relevant to `issue` first.",
                json!({"type": "object", "properties": {
                    "issue": {"type": "string", "description": "Optional issue text to order files by relevance."},
                    "budget_tokens": {"type": "integer", "minimum": 100, "maximum": 20000, "description": "Default 2000."}
                }}),
            ),
            running(
                "run_tests",
                "Run tests in a scratch copy of the repository (with your uncommitted changes), sandboxed, network off: \
                 the tests `test_ids`, and the tests of / related to `files` (test files: their tests; source files: \
                 the tests that import or use them). Returns each test's status.",
                json!({"type": "object", "properties": {
                    "test_ids": {"type": "array", "items": {"type": "string"}, "description": "Test ids in the runner's form (pytest `path::Class::test`, unittest `module.Class.test`)."},
                    "files": {"type": "array", "items": {"type": "string"}, "description": "Repository-relative files whose tests or related tests to run."},
                    "timeout_secs": {"type": "integer", "minimum": 1, "maximum": 3600, "description": "Wall-clock limit (default 300)."}
                }}),
            ),
            running(
                "check_patch",
                "Prove a patch: applies the unified diff (plus an optional reproduction test file) to a scratch copy \
                 and runs rigor's proof: the tests the patch adds or changes must fail on the original code for the \
                 issue's reason and pass with the patch; related existing tests must not break. Returns the proof.",
                json!({"type": "object", "properties": {
                    "patch": {"type": "string", "description": "A unified diff (`git diff` output) against the current files."},
                    "reproduction": {"type": "object", "description": "A test file reproducing the issue, if the patch has none.",
                        "properties": {"path": {"type": "string"}, "content": {"type": "string"}}, "required": ["path", "content"]},
                    "issue": {"type": "string", "description": "The issue text (a reproduction must fail the way it describes)."},
                    "test_timeout_secs": {"type": "integer", "minimum": 1, "maximum": 3600, "description": "Per test run (default 600)."}
                }, "required": ["patch"]}),
            ),
            running(
                "solve",
                "Let rigor solve an issue on its own: a full agent run in a worktree of its own (your checkout is not \
                 modified), its patch proven. Sends progress notifications; returns status, patch and proof.",
                json!({"type": "object", "properties": {
                    "issue": {"type": "string", "description": "The issue text."},
                    "max_steps": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "Model turns at most."},
                    "timeout_secs": {"type": "integer", "minimum": 1, "description": "Wall-clock limit of the run."},
                    "max_cost": {"type": "number", "minimum": 0, "description": "Cost limit in USD."},
                    "prove": {"type": "boolean", "description": "Prove the patch (default true)."}
                }, "required": ["issue"]}),
            ),
        ]
    }

    /// Runs one tool call (blocking: it may re-index files).
    pub fn call(&self, name: &str, args: &Map<String, Value>) -> Result<CallToolResult, ErrorData> {
        let retriever = self.intel.refresh().map_err(|e| {
            ErrorData::internal_error(format!("the code graph of {} is unavailable: {e}", self.root.display()), None)
        })?;
        let r = retriever.as_ref();
        match name {
            "localize" => localize(r, args),
            "search_entity" => search_entity(r, args),
            "retrieve_entity" => retrieve_entity(r, &self.root, args),
            "traverse_graph" => traverse_graph(r, args),
            "repo_map" => {
                let issue = args.get("issue").and_then(Value::as_str);
                let budget = int_arg(args, "budget_tokens", 2000, 100, 20_000)?;
                let map = rigor_graph::repomap::repo_map(r, issue, budget);
                Ok(result(map.clone(), json!({"map": map, "files": r.graph().files().len()})))
            }
            other => Err(ErrorData::invalid_params(
                format!(
                    "unknown tool `{other}`; the tools are: {}",
                    Self::tools().iter().map(|t| t.name.to_string()).collect::<Vec<_>>().join(", ")
                ),
                None,
            )),
        }
    }

    /// `solve`: a rigor run through the [`Solver`], its events as progress notifications.
    async fn solve(
        &self,
        args: &Map<String, Value>,
        context: &RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let Some(solver) = self.solver.clone() else {
            return Err(ErrorData::invalid_request(
                "this server has no model to solve with: start it as `rigor mcp --model PROVIDER:MODEL` (or set \
                 `model` in rigor's config.toml)",
                None,
            ));
        };
        let issue = str_arg(args, "issue", "\"parse_duration('1h30m') returns 1800 instead of 5400\"")?;
        let optional = |key: &str, max: usize| match args.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => int_arg(args, key, 1, 1, max).map(Some),
        };
        let prove = match args.get("prove") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(ErrorData::invalid_params(format!("`prove` must be true or false, got {other}"), None));
            }
        };
        let max_cost = match args.get("max_cost") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_f64().filter(|c| *c >= 0.0).ok_or_else(|| {
                ErrorData::invalid_params(format!("`max_cost` must be a number of USD, got {v}"), None)
            })?),
        };
        let request = SolveRequest {
            issue: issue.to_string(),
            max_steps: optional("max_steps", 1000)?.map(|n| n as u32),
            timeout_secs: optional("timeout_secs", usize::MAX)?.map(|n| n as u64),
            max_cost,
            prove,
            cancelled: Arc::default(),
        };
        // A cancelled request cancels the run, which then ends with its report.
        let cancelled = Arc::clone(&request.cancelled);
        let token = context.ct.clone();
        let watcher = tokio::spawn(async move {
            token.cancelled().await;
            cancelled.notify_one();
        });
        let (events, forwarded) = forward_progress(context);
        let solved = solver.solve(&self.root, request, events).await;
        watcher.abort();
        let _ = forwarded.await;
        let solved = solved.map_err(|e| ErrorData::internal_error(format!("the run could not start: {e}"), None))?;
        let mut text = format!(
            "status: {}\n{}\nrun record: {}\n",
            solved.status.as_str(),
            solved.summary,
            solved.run_dir.display()
        );
        if let Some(proof) = &solved.proof {
            text.push_str(&format!("proof: {} ({})\n", proof.status.as_str(), proof.reason));
        }
        if solved.patch.trim().is_empty() {
            text.push_str("no patch\n");
        } else {
            text.push_str(&format!("patch:\n{}", solved.patch));
        }
        let structured = json!({
            "run_id": solved.run_id, "run_dir": solved.run_dir, "status": solved.status, "summary": solved.summary,
            "patch": solved.patch, "proof": solved.proof,
            "trajectory": format!("rigor://runs/{}/trajectory", solved.run_id),
        });
        Ok(result(text, structured))
    }

    fn runs_dir(&self) -> PathBuf {
        self.root.join(".rigor").join("runs")
    }

    fn resources(&self) -> Vec<Resource> {
        let mut out = vec![Resource::new(REPO_MAP_URI, "repository map")];
        let mut runs: Vec<PathBuf> = std::fs::read_dir(self.runs_dir())
            .map(|dir| dir.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect())
            .unwrap_or_default();
        runs.sort();
        for run in runs.iter().rev().take(20) {
            let Some(id) = run.file_name().and_then(|n| n.to_str()) else { continue };
            for (file, what) in [("trajectory.jsonl", "trajectory"), ("proof.json", "proof")] {
                if run.join(file).is_file() {
                    out.push(Resource::new(format!("rigor://runs/{id}/{what}"), format!("run {id}: {what}")));
                }
            }
        }
        out
    }

    fn read(&self, uri: &str) -> Result<String, ErrorData> {
        if uri == REPO_MAP_URI {
            let r = self.intel.refresh().map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
            return Ok(rigor_graph::repomap::repo_map(&r, None, 4000));
        }
        let not_found = || {
            ErrorData::resource_not_found(
                format!("no resource `{uri}`; list the resources to see the repository map and the recent runs"),
                None,
            )
        };
        let rest = uri.strip_prefix("rigor://runs/").ok_or_else(not_found)?;
        let (id, what) = rest.split_once('/').ok_or_else(not_found)?;
        let file = match what {
            "trajectory" => "trajectory.jsonl",
            "proof" => "proof.json",
            _ => return Err(not_found()),
        };
        if id.is_empty() || id.contains(['/', '\\']) || id.starts_with('.') {
            return Err(not_found());
        }
        std::fs::read_to_string(self.runs_dir().join(id).join(file)).map_err(|_| not_found())
    }
}

impl ServerHandler for RigorServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().enable_resources().build())
            .with_server_info(Implementation::new("rigor", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "rigor's code intelligence over one repository: localize an issue, search/retrieve entities, \
                 traverse the code graph, get a repository map (the index follows your edits); run tests \
                 (run_tests), prove a patch (check_patch), or let rigor solve an issue itself (solve). Code runs \
                 sandboxed in scratch copies: your checkout is never modified.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(Self::tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let server = self.clone();
        let args = request.arguments.unwrap_or_default();
        let name = request.name.to_string();
        match name.as_str() {
            "run_tests" => return checks::run_tests(&self.root, &self.sandbox, &args).await.map(Into::into),
            "check_patch" => {
                let (events, forwarded) = forward_progress(&context);
                let hook = EventHook::new(move |event| {
                    let _ = events.send(event);
                });
                let outcome = checks::check_patch(&self.root, &self.sandbox, &args, Some(hook)).await;
                let _ = forwarded.await;
                return outcome.map(Into::into);
            }
            "solve" => return self.solve(&args, &context).await.map(Into::into),
            _ => {}
        }
        match tokio::task::spawn_blocking(move || server.call(&name, &args)).await {
            Ok(result) => result.map(Into::into),
            Err(err) => Err(ErrorData::internal_error(format!("the tool failed: {err}"), None)),
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(self.resources()))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let server = self.clone();
        let uri = request.uri.clone();
        let text = tokio::task::spawn_blocking(move || server.read(&uri))
            .await
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))??;
        Ok(ReadResourceResult::new(vec![ResourceContents::text(text, request.uri)]).into())
    }
}

/// A sender of run events whose worth-telling ones become progress notifications of the request
/// of `context` (when the client sent a progress token; else they are dropped), and the task that
/// forwards them, which ends when every sender is dropped.
fn forward_progress(
    context: &RequestContext<RoleServer>,
) -> (mpsc::UnboundedSender<Event>, tokio::task::JoinHandle<()>) {
    let (sender, mut events) = mpsc::unbounded_channel::<Event>();
    let token = context.meta.get_progress_token();
    let peer = context.peer.clone();
    let task = tokio::spawn(async move {
        let mut count = 0u32;
        while let Some(event) = events.recv().await {
            let (Some(token), Some(message)) = (&token, progress_message(&event)) else { continue };
            count += 1;
            let notification = ProgressNotificationParam::new(token.clone(), f64::from(count)).with_message(message);
            if let Err(e) = peer.notify_progress(notification).await {
                tracing::debug!("cannot send a progress notification: {e}");
            }
        }
    });
    (sender, task)
}

fn as_object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A successful result: the text rendering and the structured value.
pub(crate) fn result(text: String, structured: Value) -> CallToolResult {
    let mut r = CallToolResult::success(vec![ContentBlock::text(text)]);
    r.structured_content = Some(structured);
    r
}

/// A tool-level failure the model can act on (the request itself was fine).
pub(crate) fn failure(text: String) -> CallToolResult {
    let mut r = CallToolResult::error(vec![ContentBlock::text(text.clone())]);
    r.structured_content = Some(json!({"error": text}));
    r
}

pub(crate) fn str_arg<'a>(args: &'a Map<String, Value>, key: &str, example: &str) -> Result<&'a str, ErrorData> {
    match args.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(other) => Err(ErrorData::invalid_params(
            format!("`{key}` must be a non-empty string (e.g. {example}), got {other}"),
            None,
        )),
        None => Err(ErrorData::invalid_params(format!("missing required argument `{key}` (e.g. {example})"), None)),
    }
}

pub(crate) fn int_arg(
    args: &Map<String, Value>,
    key: &str,
    default: usize,
    min: usize,
    max: usize,
) -> Result<usize, ErrorData> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_u64().map(|n| (n as usize).clamp(min, max)).ok_or_else(|| {
            ErrorData::invalid_params(format!("`{key}` must be an integer between {min} and {max}, got {v}"), None)
        }),
    }
}

pub(crate) fn list_arg(args: &Map<String, Value>, key: &str) -> Result<Vec<String>, ErrorData> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(s.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    ErrorData::invalid_params(format!("`{key}` must be a list of strings, got an item {v}"), None)
                })
            })
            .collect(),
        Some(other) => Err(ErrorData::invalid_params(format!("`{key}` must be a list of strings, got {other}"), None)),
    }
}

fn localize(r: &Retriever, args: &Map<String, Value>) -> Result<CallToolResult, ErrorData> {
    let issue = str_arg(args, "issue", "\"TypeError in parse_duration for empty strings\"")?;
    let level_text = args.get("level").and_then(Value::as_str).unwrap_or("file");
    let level = Level::parse(level_text).ok_or_else(|| {
        ErrorData::invalid_params(format!("unknown level `{level_text}`: use file, module or function"), None)
    })?;
    let top = int_arg(args, "top", 10, 1, 100)?;
    let mentions = rigor_graph::localize::Mentions::extract(issue);
    let words: HashSet<String> = issue
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| w.len() > 2)
        .map(str::to_lowercase)
        .collect();
    let mut text = String::new();
    let mut locations = Vec::new();
    for (i, l) in r.localize(issue, level, top).into_iter().enumerate() {
        let why = why(&l.id, &mentions, &words);
        let span =
            if l.kind == NodeKind::File { String::new() } else { format!(" (lines {}-{})", l.start_line, l.end_line) };
        text.push_str(&format!("{:>2}. {:.3}  {}{span}  [{why}]\n", i + 1, l.score, l.id));
        let mut value = serde_json::to_value(&l).unwrap_or_default();
        if let Value::Object(map) = &mut value {
            map.insert("why".into(), Value::String(why));
        }
        locations.push(value);
    }
    if locations.is_empty() {
        text = "no candidate locations: the issue text matches nothing in the indexed source files".into();
    }
    Ok(result(text, json!({"level": level, "locations": locations})))
}

/// Why a location ranked: the issue's explicit mentions it matches, else the issue words in its id.
fn why(id: &str, mentions: &rigor_graph::localize::Mentions, words: &HashSet<String>) -> String {
    let lower = id.to_lowercase();
    let mut reasons: Vec<String> = Vec::new();
    for (path, _, _) in &mentions.locations {
        if lower.contains(&path.to_lowercase()) || path.to_lowercase().ends_with(lower.split(':').next().unwrap_or(""))
        {
            reasons.push(format!("the issue names {path}"));
        }
    }
    for name in mentions.dotted.iter().chain(&mentions.identifiers) {
        let last = name.rsplit(['.', ':']).next().unwrap_or(name).trim_end_matches("()").to_lowercase();
        if !last.is_empty() && lower.contains(&last) && !reasons.iter().any(|r| r.contains(name.as_str())) {
            reasons.push(format!("the issue mentions `{name}`"));
        }
    }
    if reasons.is_empty() {
        let mut shared: Vec<&str> = words.iter().map(String::as_str).filter(|w| lower.contains(w)).collect();
        shared.sort_unstable();
        shared.truncate(5);
        if shared.is_empty() {
            reasons.push("lexical match of its code with the issue text, and graph neighbours".into());
        } else {
            reasons.push(format!("issue words in its name: {}", shared.join(", ")));
        }
    }
    reasons.truncate(3);
    reasons.join("; ")
}

fn entity_value(r: &Retriever, n: u32) -> Value {
    let l = r.location(n, 0.0);
    json!({"id": l.id, "kind": l.kind, "path": l.path, "start_line": l.start_line, "end_line": l.end_line,
           "signature": l.signature})
}

fn search_entity(r: &Retriever, args: &Map<String, Value>) -> Result<CallToolResult, ErrorData> {
    let query = str_arg(args, "query", "\"parse_duration\" or \"QuerySet.union\"")?;
    let limit = int_arg(args, "limit", 10, 1, 50)?;
    let mut seen: HashSet<u32> = HashSet::new();
    let mut entities = Vec::new();
    for kw in query.split([',', ' ', '\n']).map(str::trim).filter(|k| !k.is_empty()) {
        let hits = match resolve_entity(r, kw) {
            Ok(n) => vec![n],
            Err(_) => r.by_name(kw.rsplit(['.', ':']).next().unwrap_or(kw)).into_iter().take(limit).collect(),
        };
        for n in hits {
            if seen.insert(n) {
                entities.push(entity_value(r, n));
            }
        }
    }
    let related: Vec<Value> = r
        .search_entities(query, limit * 2)
        .into_iter()
        .filter(|(n, _)| seen.insert(*n))
        .take(limit)
        .map(|(n, _)| entity_value(r, n))
        .collect();
    Ok(result(render_search(r, query, limit), json!({"entities": entities, "related": related})))
}

fn retrieve_entity(r: &Retriever, root: &Path, args: &Map<String, Value>) -> Result<CallToolResult, ErrorData> {
    let ids = list_arg(args, "entity_ids")?;
    if ids.is_empty() {
        return Err(ErrorData::invalid_params(
            "missing `entity_ids`: a list of entity ids such as `pkg/mod.py:Class.method` (search_entity finds them)",
            None,
        ));
    }
    let mut text = String::new();
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for id in &ids {
        match render_entity(r, root, id, 300) {
            Ok(code) => {
                text.push_str(&code);
                found.push(json!({"id": id, "code": code}));
            }
            Err(e) => {
                text.push_str(&e);
                text.push('\n');
                errors.push(json!({"id": id, "error": e}));
            }
        }
        text.push('\n');
    }
    if found.is_empty() {
        return Ok(failure(text));
    }
    Ok(result(text, json!({"entities": found, "errors": errors})))
}

fn traverse_graph(r: &Retriever, args: &Map<String, Value>) -> Result<CallToolResult, ErrorData> {
    let starts = list_arg(args, "start_entities")?;
    if starts.is_empty() {
        return Err(ErrorData::invalid_params("missing `start_entities`: a list of entity ids to start from", None));
    }
    let dir_text = args.get("direction").and_then(Value::as_str).unwrap_or("downstream");
    let direction = Direction::parse(dir_text).ok_or_else(|| {
        ErrorData::invalid_params(format!("unknown direction `{dir_text}`: use downstream, upstream or both"), None)
    })?;
    let depth = int_arg(args, "depth", 2, 1, 5)?;
    let mut edges = Vec::new();
    for e in list_arg(args, "edge_types")? {
        edges.push(EdgeKind::parse(&e).ok_or_else(|| {
            ErrorData::invalid_params(
                format!("unknown edge type `{e}`: use contains, imports, invokes, inherits"),
                None,
            )
        })?);
    }
    if edges.is_empty() {
        edges = EdgeKind::ALL.to_vec();
    }
    let mut kinds = Vec::new();
    for k in list_arg(args, "entity_types")? {
        kinds.push(NodeKind::parse(&k).ok_or_else(|| {
            ErrorData::invalid_params(
                format!("unknown entity type `{k}`: use directory, file, class, function, method"),
                None,
            )
        })?);
    }
    let mut text = String::new();
    let mut trees = Vec::new();
    for s in &starts {
        match render_traversal(r, s, direction, depth, &edges, &kinds) {
            Ok(t) => {
                text.push_str(&t);
                trees.push(json!({"start": s, "tree": t}));
            }
            Err(e) => {
                text.push_str(&e);
                text.push('\n');
            }
        }
    }
    if trees.is_empty() {
        return Ok(failure(text));
    }
    Ok(result(text, json!({"traversals": trees})))
}
