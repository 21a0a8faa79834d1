//! Configured MCP servers as a source of a run's tools (`[mcp.servers.NAME]`).
//!
//! [`McpSource`] starts its server over stdio for each run, in rigor's sandbox unless the entry
//! says `sandbox = false` (network off unless `network = true`), with its stderr appended to
//! `mcp-NAME.stderr` in the run directory, and offers the tools it lists (or the `enabled_tools`
//! among them) as `NAME__tool`: OpenAI-compatible tool names allow only letters, digits, `_` and
//! `-`, so the issue's `NAME.tool` is spelled with a double underscore. Every call declares an
//! [`Action::Mcp`] that the run's action policy screens with the server's `approval`, has a
//! wall-clock limit (`timeout_secs`), and is recorded like any tool call. A server that dies is
//! reported (a notice in the run's events) and restarted once; after that its tools answer with an
//! error the model can act on.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rigor_core::config::McpServerConfig;
use rigor_core::redact::Redactor;
use rigor_protocol::{Event, ToolSpec};
use rigor_sandbox::{Action, McpCall, Sandbox, SandboxMode, SandboxSettings, SandboxSpec, SessionGuard};
use rigor_tools::{Contribution, PromptShape, Tool, ToolContext, ToolOutput, ToolSource};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock};
use rmcp::service::{RoleClient, RunningService, ServiceError};
use rmcp::transport::TokioChildProcess;
use serde_json::Value;

/// The separator between a server's name and its tool's name in the names the model sees.
pub const SEPARATOR: &str = "__";

/// The prefix of the names of MCP sources in `run_started` (`mcp:NAME`).
pub const SOURCE_PREFIX: &str = "mcp:";

/// The tool name the model sees for `tool` of server `server`: `server__tool`, with characters
/// other than letters, digits, `_` and `-` replaced by `_`, at most 64 characters.
pub fn tool_name(server: &str, tool: &str) -> String {
    let raw = format!("{server}{SEPARATOR}{tool}");
    raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).take(64).collect()
}

/// One configured MCP server as a tool source.
pub struct McpSource {
    server: String,
    source_name: String,
    config: McpServerConfig,
    sandbox: SandboxSettings,
}

impl McpSource {
    /// The server `name` of the configuration, confined like the run's commands (`sandbox`: the
    /// run's sandbox settings) unless its entry says otherwise.
    pub fn new(name: impl Into<String>, config: McpServerConfig, sandbox: SandboxSettings) -> Self {
        let server = name.into();
        Self { source_name: format!("{SOURCE_PREFIX}{server}"), server, config, sandbox }
    }

    fn launcher(&self, workspace: &Path, run_dir: &Path) -> Result<Launcher, String> {
        let mut settings = self.sandbox.clone();
        if !self.config.sandbox {
            settings.mode = SandboxMode::Off;
        }
        settings.network = self.config.network;
        let ws = workspace.display().to_string();
        let args: Vec<String> = self.config.args.iter().map(|a| a.replace("{workspace}", &ws)).collect();
        settings.readable.extend(self.config.readable.iter().cloned());
        // The program and any absolute path among its arguments (a script, a package) stay readable
        // where the sandbox hides them (under the home directory).
        for path in std::iter::once(&self.config.command).chain(&args) {
            let p = Path::new(path);
            if p.is_absolute() && p.exists() && !p.starts_with(workspace) {
                settings.readable.push(p.to_path_buf());
            }
        }
        let sandbox = Sandbox::new(SandboxSpec::new(workspace, settings))
            .map_err(|e| format!("cannot build the sandbox for the MCP server `{}`: {e}", self.server))?;
        Ok(Launcher {
            name: self.server.clone(),
            sandbox,
            program: self.config.command.clone(),
            args,
            env: self.config.env.clone().into_iter().collect(),
            workspace: workspace.to_path_buf(),
            stderr: run_dir.join(format!("mcp-{}.stderr", self.server)),
            pid_file: run_dir.join(format!("mcp-{}.pid", self.server)),
        })
    }

    fn start(&self, workspace: &Path, run_dir: &Path) -> Result<Contribution, String> {
        let launcher = self.launcher(workspace, run_dir)?;
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| "MCP servers need the async runtime of a run".to_string())?;
        let (running, tools) = handle.block_on(async {
            let running = launcher.launch().await?;
            let tools = running
                .service
                .peer()
                .list_all_tools()
                .await
                .map_err(|e| format!("the MCP server `{}` did not list its tools: {e}", self.server))?;
            Ok::<_, String>((running, tools))
        })?;
        let server = Arc::new(Server {
            launcher,
            timeout: Duration::from_secs(self.config.timeout_secs.max(1)),
            state: tokio::sync::Mutex::new(State { running: Some(running), restarted: false }),
        });
        let enabled = self.config.enabled_tools.as_ref();
        let mut offered: Vec<Box<dyn Tool>> = Vec::new();
        for tool in tools {
            if enabled.is_some_and(|list| !list.iter().any(|t| t == tool.name.as_ref())) {
                continue;
            }
            let read_only = tool.annotations.as_ref().and_then(|a| a.read_only_hint).unwrap_or(false);
            let spec = ToolSpec {
                name: tool_name(&self.server, &tool.name),
                description: format!(
                    "[MCP server `{}`] {}",
                    self.server,
                    tool.description.as_deref().unwrap_or("(no description)")
                ),
                parameters: Value::Object((*tool.input_schema).clone()),
            };
            offered.push(Box::new(McpTool {
                server: Arc::clone(&server),
                remote: tool.name.to_string(),
                spec,
                approval: self.config.approval,
                read_only,
            }));
        }
        let names: Vec<String> = offered.iter().map(|t| t.spec().name).collect();
        Ok(Contribution {
            prompt_section: format!(
                "Tools of the MCP server `{}` (called like any tool): {}.",
                self.server,
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            ),
            tools: offered,
            ..Contribution::default()
        })
    }
}

impl ToolSource for McpSource {
    fn name(&self) -> &str {
        &self.source_name
    }

    fn secrets(&self) -> Vec<(String, String)> {
        self.config.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    fn contribute(&self, workspace: &Path, issue: &str, shape: &PromptShape) -> Contribution {
        let logs = std::env::temp_dir();
        self.contribute_to_run(workspace, issue, shape, &logs)
    }

    fn contribute_to_run(&self, workspace: &Path, _issue: &str, _shape: &PromptShape, run_dir: &Path) -> Contribution {
        match self.start(workspace, run_dir) {
            Ok(contribution) => contribution,
            Err(why) => {
                tracing::warn!("{why}");
                let _ = append(&run_dir.join(format!("mcp-{}.stderr", self.server)), &format!("rigor: {why}\n"));
                Contribution {
                    prompt_section: format!("The MCP server `{}` is unavailable in this run: {why}", self.server),
                    ..Contribution::default()
                }
            }
        }
    }
}

/// Copies a server's stderr into its log, each line redacted, until the server closes it.
async fn copy_redacted(stderr: tokio::process::ChildStderr, log: std::fs::File, redactor: Redactor) {
    use std::io::Write as _;
    use tokio::io::AsyncBufReadExt as _;
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let mut log = std::io::LineWriter::new(log);
    while let Ok(Some(line)) = lines.next_line().await {
        if writeln!(log, "{}", redactor.redact(&line)).is_err() {
            break;
        }
    }
}

fn append(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    std::fs::OpenOptions::new().create(true).append(true).open(path)?.write_all(text.as_bytes())
}

/// How to start one server (again).
struct Launcher {
    name: String,
    sandbox: Sandbox,
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    workspace: PathBuf,
    stderr: PathBuf,
    pid_file: PathBuf,
}

/// A started server: the MCP session and what confines its process.
struct Running {
    service: RunningService<RoleClient, ()>,
    _guard: SessionGuard,
}

impl Launcher {
    async fn launch(&self) -> Result<Running, String> {
        let what = |e: &dyn std::fmt::Display| format!("cannot start the MCP server `{}`: {e}", self.name);
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let mut prepared = self.sandbox.command(&self.program, &args, &self.workspace).map_err(|e| what(&e))?;
        prepared.command.envs(self.env.iter().map(|(k, v)| (k, v)));
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.stderr).map_err(|e| what(&e))?;
        let command = tokio::process::Command::from(prepared.command);
        let (transport, stderr) =
            TokioChildProcess::builder(command).stderr(std::process::Stdio::piped()).spawn().map_err(|e| what(&e))?;
        if let Some(stderr) = stderr {
            // The log is a record too: redacted line by line (the server's own env values included).
            let redactor = Redactor::from_vars_and(std::env::vars(), self.env.iter().cloned());
            tokio::spawn(copy_redacted(stderr, log, redactor));
        }
        if let Some(pid) = transport.id() {
            let _ = std::fs::write(&self.pid_file, format!("{pid}\n"));
        }
        let service = ().serve(transport).await.map_err(|e| what(&e))?;
        Ok(Running { service, _guard: prepared.guard })
    }
}

struct State {
    running: Option<Running>,
    restarted: bool,
}

/// A server shared by its tools for one run.
struct Server {
    launcher: Launcher,
    timeout: Duration,
    state: tokio::sync::Mutex<State>,
}

impl Server {
    /// Starts the server again if it has not been restarted yet; the notices go to the run.
    async fn revive(&self, state: &mut State, ctx: &ToolContext) -> Result<(), String> {
        let name = &self.launcher.name;
        state.running = None;
        if state.restarted {
            return Err(format!(
                "the MCP server `{name}` died again after its restart; its tools are unavailable for the rest of \
                 this run (its log: {}). Continue with other tools.",
                self.launcher.stderr.display()
            ));
        }
        state.restarted = true;
        ctx.emit(Event::Notice {
            message: format!("MCP server `{name}` died (its connection closed); restarting it once"),
        });
        let running = self.launcher.launch().await.inspect_err(|why| {
            ctx.emit(Event::Notice { message: format!("MCP server `{name}` could not be restarted: {why}") })
        })?;
        ctx.emit(Event::Notice { message: format!("MCP server `{name}` restarted") });
        state.running = Some(running);
        Ok(())
    }

    async fn call(&self, tool: &str, args: Value, ctx: &ToolContext) -> ToolOutput {
        let name = &self.launcher.name;
        let arguments = match args {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        let mut state = self.state.lock().await;
        for attempt in 0..2 {
            if state.running.as_ref().is_none_or(|r| r.service.is_closed())
                && let Err(why) = self.revive(&mut state, ctx).await
            {
                return ToolOutput::error(why);
            }
            let Some(running) = state.running.as_ref() else { break };
            let peer = running.service.peer().clone();
            let params = CallToolRequestParams::new(tool.to_string()).with_arguments(arguments.clone());
            match tokio::time::timeout(self.timeout, peer.call_tool(params)).await {
                Err(_) => {
                    return ToolOutput::error(format!(
                        "the MCP tool `{tool}` of `{name}` did not answer within {} s; try simpler arguments or \
                         another tool",
                        self.timeout.as_secs()
                    ));
                }
                Ok(Ok(result)) => return render(&result),
                Ok(Err(ServiceError::McpError(e))) => {
                    return ToolOutput::error(format!("the MCP server `{name}` refused the call: {}", e.message));
                }
                Ok(Err(ServiceError::TransportClosed | ServiceError::TransportSend(_))) if attempt == 0 => {
                    state.running = None;
                }
                Ok(Err(e)) => return ToolOutput::error(format!("the call to the MCP server `{name}` failed: {e}")),
            }
        }
        ToolOutput::error(format!("the MCP server `{name}` is unavailable"))
    }
}

/// The observation of a result: its text blocks, else its structured content as JSON.
fn render(result: &CallToolResult) -> ToolOutput {
    let mut parts: Vec<String> = Vec::new();
    for block in &result.content {
        match block {
            ContentBlock::Text(t) => parts.push(t.text.clone()),
            other => parts.push(format!("[{} content]", content_kind(other))),
        }
    }
    if parts.iter().all(|p| p.trim().is_empty())
        && let Some(structured) = &result.structured_content
    {
        parts = vec![structured.to_string()];
    }
    let text = parts.join("\n");
    if result.is_error == Some(true) { ToolOutput::error(text) } else { ToolOutput::ok(text) }
}

fn content_kind(block: &ContentBlock) -> &'static str {
    match block {
        ContentBlock::Text(_) => "text",
        ContentBlock::Image(_) => "image",
        ContentBlock::Audio(_) => "audio",
        ContentBlock::Resource(_) => "resource",
        _ => "resource link",
    }
}

/// One tool of a server.
struct McpTool {
    server: Arc<Server>,
    remote: String,
    spec: ToolSpec,
    approval: rigor_sandbox::McpApproval,
    read_only: bool,
}

#[async_trait]
impl Tool for McpTool {
    fn spec(&self) -> ToolSpec {
        self.spec.clone()
    }

    fn action(&self, args: &Value) -> Option<Action> {
        Some(Action::Mcp(McpCall {
            text: format!("{} {args}", self.spec.name),
            approval: self.approval,
            read_only: self.read_only,
        }))
    }

    async fn run(&self, args: Value, ctx: &ToolContext) -> ToolOutput {
        self.server.call(&self.remote, args, ctx).await
    }
}
