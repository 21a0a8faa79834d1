//! One complete run: workspace, run directory, trajectory, the agent loop, the patch and the
//! result. Front ends start it as a [`crate::session::Session`], which calls [`execute`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rigor_llm::Provider;
use rigor_protocol::{Event, RunStatus, RunTotals};
use rigor_sandbox::{Policy, Sandbox, SandboxError, SandboxMode, SandboxSpec};
use rigor_tools::{Contribution, PromptShape, ToolBox, ToolContext, ToolSource};

use crate::agent::{Agent, Inbox, Interrupt};
use crate::approval::{ActionScreen, Approver};
use crate::config::AgentSettings;
use crate::conversation::{Conversation, Seat, converse};
use crate::events::Emitter;
use crate::prompt::{CONVERSATION, issue_prompt_for, map_tokens, system_prompt_for, with_sections};
use crate::trajectory::{RunDir, RunResult, TrajectoryWriter};
use crate::workspace::{Workspace, WorkspaceError, WorkspaceMode, find_repo_root};

/// Errors that prevent a run from starting (once started, a run always ends with a result).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The workspace could not be prepared.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// Commands cannot be isolated here (and the sandbox was not turned off).
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// A run with this id was already recorded (nothing was created or overwritten).
    #[error("run id {0} already exists in .rigor/runs; choose another or leave --run-id out")]
    RunIdTaken(String),
    /// The run directory could not be written.
    #[error("cannot write the run record in {path}: {source}")]
    RunDir {
        /// The directory.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// The run's task panicked (a bug in rigor; the record holds what happened before).
    #[error("the run crashed: {0}")]
    Crashed(String),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The repository (or a directory inside it) to work on.
    pub repo: PathBuf,
    /// The issue text.
    pub issue: String,
    /// Worktree (default) or in place.
    pub mode: WorkspaceMode,
    /// Commit to start from (default `HEAD` plus uncommitted changes).
    pub start: Option<String>,
    /// Apply the patch to the user's checkout when the run is submitted.
    pub apply: bool,
    /// Keep the worktree after the run.
    pub keep_workspace: bool,
    /// Budgets and limits.
    pub settings: AgentSettings,
    /// Run id; generated when absent.
    pub run_id: Option<String>,
    /// Variables set in the agent's shell, e.g. an activated virtual environment (what it points
    /// to must be readable in the sandbox: `settings.sandbox.readable`).
    pub shell_env: Vec<(String, String)>,
    /// What contributes tools beyond the standard ones (the code graph, MCP servers), chosen by
    /// the front end.
    pub sources: Vec<Arc<dyn ToolSource>>,
    /// Set by `rigor replay`: the id of the recorded run this run replays (in `result.json`).
    pub replay_of: Option<String>,
    /// Messages the user sends once the given number of turns have completed (a replay sends
    /// the recorded ones again); more can be sent while the run goes on (`Op::UserMessage`).
    pub user_messages: Vec<(u32, String)>,
    /// Set by an input bouncer: the run is recorded as abstained for this reason, without a
    /// model call.
    pub decline: Option<String>,
    /// A conversation (`rigor chat`): the issue (may be empty) is the first request, and the
    /// session then waits for more (see [`crate::conversation`]).
    pub conversation: Option<Conversation>,
}

impl RunRequest {
    /// A request to work `issue` on `repo` with the defaults: in a worktree of `HEAD` plus
    /// uncommitted changes, nothing applied or kept, default settings, the standard tools only,
    /// no conversation. Front ends set the rest with struct update syntax.
    pub fn new(repo: impl Into<PathBuf>, issue: impl Into<String>) -> Self {
        Self {
            repo: repo.into(),
            issue: issue.into(),
            mode: WorkspaceMode::Worktree,
            start: None,
            apply: false,
            keep_workspace: false,
            settings: AgentSettings::default(),
            run_id: None,
            shell_env: Vec::new(),
            sources: Vec::new(),
            replay_of: None,
            user_messages: Vec::new(),
            decline: None,
            conversation: None,
        }
    }
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The run id.
    pub run_id: String,
    /// `.rigor/runs/<run-id>`.
    pub run_dir: PathBuf,
    /// Terminal status.
    pub status: RunStatus,
    /// Summary, reason or error.
    pub summary: String,
    /// The patch (may be empty).
    pub patch: String,
    /// Totals.
    pub totals: RunTotals,
    /// Whether the patch was applied to the user's checkout.
    pub applied: bool,
    /// Where the agent worked.
    pub workspace: PathBuf,
}

/// A new run id: UTC time plus a random suffix, e.g. `20261123-204501-3fa2`.
pub fn new_run_id() -> String {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{}-{}", chrono::Utc::now().format("%Y%m%d-%H%M%S"), &suffix[..4])
}

/// How a front end steers a run while it goes on (a [`crate::session::Session`] builds it from
/// the operations it receives).
#[derive(Clone, Default)]
pub struct Controls {
    /// Ctrl-C requests.
    pub interrupt: Interrupt,
    /// Messages from the user.
    pub inbox: Inbox,
    /// Answers the policy's `ask` decisions; `None` refuses them (a headless run).
    pub approver: Option<Arc<dyn Approver>>,
}

/// Runs the agent on `request` with `provider`, emitting events to `emitter` (a trajectory
/// writer is added here), steered by `controls`. Returns once the run has a terminal status and
/// its record is written.
pub(crate) async fn execute(
    request: RunRequest,
    provider: &dyn Provider,
    emitter: Emitter,
    controls: Controls,
) -> Result<RunReport, RunError> {
    let Controls { interrupt, inbox, approver } = controls;
    for (after, text) in &request.user_messages {
        inbox.schedule(*after, text.clone());
    }
    let run_id = request.run_id.clone().unwrap_or_else(new_run_id);
    let repo = request.repo.canonicalize().map_err(|source| WorkspaceError::Io {
        context: format!("repository {} not found", request.repo.display()),
        source,
    })?;
    let repo_root = find_repo_root(&repo).await?;
    let run_dir = RunDir::create(&repo_root, &run_id).map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists => RunError::RunIdTaken(run_id.clone()),
        _ => RunError::RunDir { path: repo_root.join(".rigor/runs").join(&run_id).display().to_string(), source },
    })?;
    let io_err = |source| RunError::RunDir { path: run_dir.path.display().to_string(), source };
    emitter.add(TrajectoryWriter::create(&run_dir.trajectory()).map_err(io_err)?);

    let resume = request.conversation.as_ref().and_then(|c| c.resume.clone());
    let start = request.start.clone().or_else(|| resume.as_ref().map(|r| r.base_commit.clone()));
    let workspace = Workspace::create(&repo, &run_id, request.mode, start.as_deref(), &run_dir.path).await?;
    let sandbox_settings = request.settings.sandbox.clone();
    let spec = SandboxSpec::new(&workspace.dir, sandbox_settings.clone());
    let sandbox = match tokio::task::spawn_blocking(move || Sandbox::new(spec)).await {
        Ok(Ok(sandbox)) => sandbox,
        Ok(Err(err)) => {
            let _ = workspace.remove().await;
            return Err(err.into());
        }
        Err(join) => {
            let _ = workspace.remove().await;
            return Err(SandboxError::Setup(format!("the sandbox probe crashed: {join}")).into());
        }
    };
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let policy = Policy::new(&workspace.dir, home).with_rules(sandbox_settings.rules.clone());
    let screen = ActionScreen::new(policy, sandbox_settings.approval, approver);
    let refuses_everything = screen.refuses_everything();
    let sandbox_notice = match sandbox.mode() {
        SandboxMode::Off => format!("WARNING: {}", sandbox.describe()),
        _ => sandbox.describe(),
    };
    let ctx = ToolContext {
        workspace: workspace.dir.clone(),
        command_timeout: std::time::Duration::from_secs(request.settings.command_timeout_secs),
        max_output_chars: request.settings.max_observation_chars,
        sandbox: Arc::new(sandbox),
        shell_env: request.shell_env.clone(),
        baseline: Some(Arc::new(workspace.clone())),
        events: Some({
            let emitter = emitter.clone();
            rigor_tools::EventHook::new(move |event| emitter.emit(event))
        }),
    };
    let profile = request.settings.prompt.unwrap_or_default();
    let shape = PromptShape { profile, section_tokens: map_tokens(profile, provider.context_window()) };
    let contributions = contributions(&request.sources, &workspace.dir, &request.issue, shape, &run_dir.path).await;
    let mut sections: Vec<String> = contributions.iter().map(|c| c.prompt_section.clone()).collect();
    if request.conversation.is_some() {
        sections.push(CONVERSATION.to_string());
    }
    let examples: Vec<String> = contributions.iter().filter_map(|c| c.examples.clone()).collect();
    let drafts: Vec<_> = contributions.iter().flat_map(|c| c.drafts.iter().cloned()).collect();
    let prove_drafts = contributions.iter().any(|c| c.finish_check.is_some());
    let tools = tool_box(ctx, contributions).shaped(profile);
    let system = with_sections(system_prompt_for(profile, &workspace.dir, &workspace.tree_root), &sections);
    emitter.emit(Event::RunStarted {
        schema_version: rigor_protocol::SCHEMA_VERSION,
        run_id: run_id.clone(),
        repo: repo.display().to_string(),
        workspace: workspace.dir.display().to_string(),
        base_commit: workspace.base_commit.clone(),
        model: provider.id(),
        issue: request.issue.clone(),
        system_prompt: system.clone(),
        tools: tools.specs(),
        sources: request.sources.iter().map(|s| s.name().to_string()).collect(),
        prompt: profile,
        conversation: request.conversation.is_some(),
        started_at: chrono::Utc::now().to_rfc3339(),
    });
    emitter
        .emit(Event::Notice { message: format!("{sandbox_notice}; approval: {}", sandbox_settings.approval.as_str()) });
    if refuses_everything {
        emitter.emit(Event::Notice {
            message: "approval mode `always` asks before every command, and nobody can be asked in this run (no \
                      terminal, or --json): every command will be refused"
                .into(),
        });
    }
    if let Some(resume) = &resume {
        let message = match workspace.apply_patch(&resume.patch).await {
            Ok(()) => format!("continuing the conversation of run {} with its changes", resume.run_id),
            Err(err) => format!(
                "continuing the conversation of run {}; its changes were not applied to the new workspace ({err}): \
                 they are in its patch.diff",
                resume.run_id
            ),
        };
        emitter.emit(Event::Notice { message });
    }
    if workspace.carried_changes {
        emitter.emit(Event::Notice {
            message: "uncommitted changes of the checkout were copied into the workspace; the patch excludes them"
                .into(),
        });
    }

    let agent = Agent {
        provider,
        tools: &tools,
        emitter: emitter.clone(),
        settings: request.settings.clone(),
        interrupt: interrupt.clone(),
        inbox: inbox.clone(),
        screen: Some(screen),
        conversation: request.conversation.is_some(),
        baseline: request.conversation.as_ref().map(|_| Arc::new(workspace.clone()) as Arc<dyn rigor_tools::Baseline>),
        examples,
        drafts,
        prove_drafts,
    };
    let outcome = match (&request.decline, &request.conversation) {
        (Some(reason), _) => crate::agent::LoopOutcome {
            status: RunStatus::Abstained,
            summary: reason.clone(),
            totals: RunTotals::default(),
        },
        (None, Some(conversation)) => {
            let mut messages = vec![rigor_protocol::Message::system(system)];
            messages.extend(resume.map(|r| r.messages).unwrap_or_default());
            let first = !request.issue.trim().is_empty();
            if first {
                messages.push(rigor_protocol::Message::user(issue_prompt_for(profile, &request.issue)));
            }
            let seat = Seat {
                agent: &agent,
                workspace: &workspace,
                emitter: emitter.clone(),
                inbox,
                interrupt,
                wait: conversation.wait,
            };
            converse(seat, messages, first).await
        }
        (None, None) => agent.run(system, issue_prompt_for(profile, &request.issue)).await,
    };
    drop(tools); // ends the shell session before the worktree goes away

    let (mut status, mut summary) = (outcome.status, outcome.summary);
    let patch = match workspace.diff().await {
        Ok(patch) => {
            let left_out = workspace.left_out();
            if !left_out.is_empty() {
                emitter.emit(Event::Notice {
                    message: format!(
                        "left out of the patch, larger than {} MiB: {}",
                        crate::workspace::MAX_PATCH_FILE_BYTES / (1024 * 1024),
                        left_out.join(", ")
                    ),
                });
            }
            patch
        }
        Err(err) => {
            if status != RunStatus::Error {
                summary = format!("{summary}\n(could not compute the patch: {err})");
                status = RunStatus::Error;
            }
            String::new()
        }
    };
    emitter.emit(Event::RunFinished {
        status,
        summary: summary.clone(),
        patch: patch.clone(),
        totals: outcome.totals.clone(),
    });
    let result = RunResult {
        run_id: run_id.clone(),
        status,
        summary: summary.clone(),
        model: provider.id(),
        totals: outcome.totals.clone(),
        patch_file: run_dir.patch().display().to_string(),
        empty_patch: patch.trim().is_empty(),
        replay_of: request.replay_of.clone(),
    };
    run_dir.write_result(&patch, &result, emitter.redactor()).map_err(io_err)?;

    let mut applied = false;
    if request.apply && status == RunStatus::Submitted && !patch.trim().is_empty() {
        match workspace.apply_to_checkout(&patch).await {
            Ok(()) => applied = true,
            Err(err) => emitter.emit(Event::Notice {
                message: format!(
                    "the patch was not applied to your checkout ({err}); it is in {}",
                    run_dir.patch().display()
                ),
            }),
        }
    }
    if !request.keep_workspace
        && let Err(err) = workspace.remove().await
    {
        emitter.emit(Event::Notice { message: format!("could not remove the worktree: {err}") });
    }
    Ok(RunReport {
        run_id,
        run_dir: run_dir.path,
        status,
        summary,
        patch,
        totals: outcome.totals,
        applied,
        workspace: workspace.dir,
    })
}

/// The standard tools, with an editor and a `finish` that ask every source's checks, plus the
/// sources' tools.
fn tool_box(ctx: ToolContext, contributions: Vec<Contribution>) -> ToolBox {
    let edit_checks = contributions.iter().filter_map(|c| c.edit_check.clone()).collect();
    let finish_checks = contributions.iter().filter_map(|c| c.finish_check.clone()).collect();
    let extra = contributions.into_iter().flat_map(|c| c.tools).collect();
    let editor = rigor_tools::edit::EditTool::with_checks(edit_checks);
    ToolBox::standard_with(ctx, editor, rigor_tools::FinishTool::with_checks(finish_checks), extra)
}

/// What each source offers this run (computed off the async threads: a source may index the
/// workspace).
async fn contributions(
    sources: &[Arc<dyn ToolSource>],
    workspace: &Path,
    issue: &str,
    shape: PromptShape,
    run_dir: &Path,
) -> Vec<Contribution> {
    let (sources, workspace, issue) = (sources.to_vec(), workspace.to_path_buf(), issue.to_string());
    let run_dir = run_dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        sources.iter().map(|s| s.contribute_to_run(&workspace, &issue, &shape, &run_dir)).collect()
    })
    .await
    .unwrap_or_default()
}

/// The run directory of a run id or a path given by the user (`rigor replay 2026…` or a path).
pub fn locate_run(repo_root: &Path, id_or_path: &str) -> PathBuf {
    let path = PathBuf::from(id_or_path);
    if path.exists() { path } else { repo_root.join(".rigor").join("runs").join(id_or_path) }
}
