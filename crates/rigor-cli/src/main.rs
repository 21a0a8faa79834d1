//! `rigor`: the command-line program. It parses flags, loads configuration, builds the provider,
//! wires output sinks and Ctrl-C handling, and calls into `rigor-core`. No agent logic lives here.

mod approve;
mod chat_cmd;
mod doctor;
mod eval_cmd;
mod graph_cmd;
mod mcp_cmd;
mod model_cmd;
mod output;
mod prove;
mod view_cmd;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use rigor_core::approval::{ApprovalRequest, Approver};
use rigor_core::config::{AgentSettings, Config, EMBEDDED_DEFAULT_MODEL, mask_secret, user_config_path};
use rigor_core::events::Emitter;
use rigor_core::replay::Replay;
use rigor_core::run::RunRequest;
use rigor_core::session::Session;
use rigor_core::workspace::WorkspaceMode;
use rigor_protocol::{Event, Op, terminal};
use rigor_sandbox::Action;
use std::sync::Arc;

use crate::output::{HumanOutput, JsonOutput, Style, totals_line};

/// `rigor --help`: what rigor is, the main commands, where configuration lives.
const ABOUT: &str = "rigor: a code agent that turns an issue into a proven patch, with any model";
const LONG_ABOUT: &str = "\
rigor: a code agent that turns an issue into a proven patch, with any model (OpenAI-compatible
servers, Anthropic, or an embedded GGUF model on the CPU). It works in a separate git worktree,
runs the model's commands in a sandbox, and records every step in .rigor/runs/<run-id>/.

Main commands:
  rigor run --issue TEXT [--model provider:model]   work an issue, deliver a patch (or abstain)
  rigor chat [--resume]                             an interactive session in the terminal
  rigor replay .rigor/runs/<run-id>                 re-run a recorded trajectory, report divergences
  rigor export .rigor/runs/* -o runs.jsonl          trajectories as chat-format JSONL
  rigor eval / rigor report                         SWE-bench-format evaluation without Docker
  rigor index / localize / graph / map              the code graph of a repository
  rigor model fetch|list|serve                      the embedded model
  rigor config show                                 the effective configuration

Configuration, later wins: ~/.config/rigor/config.toml, <repo>/.rigor/config.toml (may only
tighten), the environment (RIGOR_MODEL, OPENAI_API_KEY, OPENAI_BASE_URL, ANTHROPIC_API_KEY,
ANTHROPIC_BASE_URL), then flags.

Exit codes: 0 submitted (proven, when the run proves its patch), 1 error, 2 usage error,
3 abstained, 4 budget exhausted, 5 replay diverged, 6 unproven, 130 interrupted.";

#[derive(Parser)]
#[command(name = "rigor", version, about = ABOUT, long_about = LONG_ABOUT)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work an issue end to end in a git worktree and deliver a patch (or abstain).
    Run(RunArgs),
    /// An interactive session with the agent in the terminal: requests, streamed replies, inline
    /// approvals, the running diff, /diff /apply /undo /model /new /quit.
    Chat(chat_cmd::ChatArgs),
    /// Re-run a recorded trajectory through its recorded model responses and report divergences.
    Replay(ReplayArgs),
    /// Export trajectories as chat-format JSONL (one line per run) for training agents.
    Export(ExportArgs),
    /// Evaluate predictions or an agent on SWE-bench-format tasks (no Docker needed).
    Eval(Box<eval_cmd::EvalArgs>),
    /// Render a finished evaluation run as Markdown and a self-contained HTML page.
    Report(eval_cmd::ReportArgs),
    /// Browse runs, trajectories, proofs and evaluation reports in a local web viewer.
    View(view_cmd::ViewArgs),
    /// The embedded model: serve it over HTTP, list or fetch models.
    Model {
        #[command(subcommand)]
        action: model_cmd::ModelAction,
    },
    #[command(flatten)]
    Graph(graph_cmd::GraphCommand),
    /// Check what rigor needs on this machine (git, bubblewrap, the sandbox, Python, pip/uv, the
    /// model, PATH) and say what to do about each gap.
    Doctor {
        /// One JSON object per check.
        #[arg(long)]
        json: bool,
    },
    /// Serve the repository to MCP clients over stdio: its code graph (localize, search_entity,
    /// retrieve_entity, traverse_graph, repo_map), its tests (run_tests), rigor's proof of a patch
    /// (check_patch), rigor's own runs (solve) and its recent runs' records.
    Mcp {
        /// The repository (or a directory inside it).
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// The model `solve` runs with, as `provider:model` (default: the configuration's).
        #[arg(long, short)]
        model: Option<String>,
    },
    /// Inspect configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Args)]
struct RunArgs {
    /// The repository, or a directory inside it.
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// The issue text.
    #[arg(long, conflicts_with = "issue_file", required_unless_present = "issue_file")]
    issue: Option<String>,
    /// A file holding the issue text.
    #[arg(long)]
    issue_file: Option<PathBuf>,
    /// The model, as provider:model (openai:gpt-4o-mini, anthropic:claude-sonnet-4-5, <configured>:name).
    #[arg(long, short)]
    model: Option<String>,
    /// Print one JSON event per line instead of human output.
    #[arg(long)]
    json: bool,
    /// Apply the patch to your checkout when the run is submitted.
    #[arg(long)]
    apply: bool,
    /// Work directly in the checkout instead of a separate worktree.
    #[arg(long)]
    in_place: bool,
    /// Keep the worktree after the run.
    #[arg(long)]
    keep_workspace: bool,
    /// Run id (default: time plus a random suffix).
    #[arg(long)]
    run_id: Option<String>,
    /// The prompt: `compact` (short, for small local models) or `full` [default: chosen for the
    /// model, or `agent.prompt` in the config].
    #[arg(long, value_name = "PROFILE", value_parser = parse_prompt_profile)]
    prompt: Option<rigor_core::prompt::PromptProfile>,
    #[command(flatten)]
    budgets: BudgetArgs,
    #[command(flatten)]
    safety: approve::SafetyArgs,
    #[command(flatten)]
    proof: prove::ProofArgs,
}

/// `--prompt`'s value.
pub(crate) fn parse_prompt_profile(text: &str) -> Result<rigor_core::prompt::PromptProfile, String> {
    rigor_core::prompt::PromptProfile::parse(text).ok_or_else(|| format!("`{text}`: use compact or full"))
}

/// Help of a flag whose value comes from the configuration when the flag is absent (clap's own
/// `default_value` would hide the configured value), with its default shown as clap shows one.
fn with_default(help: &str, value: impl std::fmt::Display, key: &str) -> String {
    format!("{help} [default: {value}, or `{key}` in the config]")
}

#[derive(Args)]
pub(crate) struct BudgetArgs {
    /// Maximum model turns (at least 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..),
          help = with_default("Maximum model turns (at least 1)", AgentSettings::default().max_steps, "agent.max_steps"))]
    max_steps: Option<u32>,
    /// Maximum total tokens.
    #[arg(long, value_name = "N", help = with_default("Maximum total tokens", "no limit", "agent.max_tokens"))]
    max_tokens: Option<u64>,
    /// Maximum cost in USD.
    #[arg(long, value_name = "USD", help = with_default("Maximum cost in USD", "no limit", "agent.max_cost"))]
    max_cost: Option<f64>,
    /// Wall-clock limit of the run, in seconds.
    #[arg(long, value_name = "SECS",
          help = with_default("Wall-clock limit of the run, in seconds", "no limit", "agent.timeout_secs"))]
    timeout: Option<u64>,
    /// Wall-clock limit of one shell command, in seconds.
    #[arg(long, value_name = "SECS", help = with_default(
        "Wall-clock limit of one shell command, in seconds",
        AgentSettings::default().command_timeout_secs,
        "agent.command_timeout_secs",
    ))]
    command_timeout: Option<u64>,
}

impl BudgetArgs {
    pub(crate) fn apply(&self, settings: &mut AgentSettings) {
        if let Some(v) = self.max_steps {
            settings.max_steps = v;
        }
        if self.max_tokens.is_some() {
            settings.max_tokens = self.max_tokens;
        }
        if self.max_cost.is_some() {
            settings.max_cost = self.max_cost;
        }
        if self.timeout.is_some() {
            settings.timeout_secs = self.timeout;
        }
        if let Some(v) = self.command_timeout {
            settings.command_timeout_secs = v;
        }
    }
}

#[derive(Args)]
struct ReplayArgs {
    /// A trajectory.jsonl, or the run directory holding it.
    trajectory: PathBuf,
    /// Replay against this repository instead of the recorded one.
    #[arg(long)]
    repo: Option<PathBuf>,
    /// Print one JSON event per line instead of human output.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct ExportArgs {
    /// Trajectory files or run directories.
    #[arg(required = true)]
    trajectories: Vec<PathBuf>,
    /// Write to this file instead of stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Also export runs made by `rigor replay` (skipped by default: they repeat a recorded run).
    #[arg(long)]
    include_replays: bool,
}

#[derive(Subcommand)]
enum ConfigAction {
    /// Print the effective configuration, secrets masked.
    Show {
        /// The repository whose .rigor/config.toml applies.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
        /// Also resolve this model.
        #[arg(long, short)]
        model: Option<String>,
    },
}

/// Every allocation of the binary goes through mimalloc: indexing allocates millions of small
/// strings and vectors, which it serves faster than the C library's `malloc`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // When started as the sandbox's second stage, this applies Landlock and runs the command.
    rigor_sandbox::stage2::run_if_requested();
    // SAFETY: the first tree-sitter-related call of the process, before any thread starts.
    unsafe { rigor_graph::lang::use_fast_allocator() };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("RIGOR_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        // Colours only on a terminal, and never with NO_COLOR (a redirected stderr gets plain text).
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .init();
    quiet_on_broken_pipe();
    let cli = Cli::parse();
    if let Command::Model { action: model_cmd::ModelAction::Serve(args) } = &cli.command {
        model_cmd::set_compute_threads(args);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("rigor: cannot start the async runtime: {err}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("rigor: error: {}", terminal::escape(&format!("{err:#}")));
            ExitCode::from(1)
        }
    }
}

/// A reader that stops early (`rigor export … | head`) closes rigor's stdout: what rigor prints
/// next fails with a broken pipe, which is how such a pipeline normally ends, so rigor ends quietly
/// with exit code 0 (as ripgrep does) instead of reporting a panic. Other panics are reported as
/// usual. (SIGPIPE stays ignored: rigor also writes to pipes of child processes, and one that
/// exits early must be an error, not the death of the run.)
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

async fn dispatch(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Run(args) => run(args).await,
        Command::Chat(args) => chat_cmd::chat(args).await,
        Command::Eval(args) => eval_cmd::eval(*args).await,
        Command::Report(args) => eval_cmd::report(args),
        Command::View(args) => view_cmd::view(args).await,
        Command::Replay(args) => replay_command(args).await,
        Command::Export(args) => export(args),
        Command::Graph(command) => tokio::task::block_in_place(|| graph_cmd::run(command)),
        Command::Model { action } => model_cmd::model(action).await,
        Command::Config { action: ConfigAction::Show { repo, model } } => config_show(&repo, model.as_deref()),
        Command::Mcp { repo, model } => mcp_cmd::serve(&repo, model).await,
        Command::Doctor { json } => Ok(tokio::task::block_in_place(|| doctor::doctor(json))),
    }
}

/// The tool sources of every agent run (`rigor run`, `rigor replay`, `rigor eval --agent rigor`):
/// the one place that decides what a run's model can use beyond the standard tools: the code
/// graph, the proof when the run proves its patch, and the configured MCP servers (`mcp`, from
/// [`mcp_sources`], or recorded ones for a replay).
pub(crate) fn tool_sources(
    prover: Option<&rigor_proof::prover::Prover>,
    mcp: Vec<Arc<dyn rigor_tools::ToolSource>>,
) -> Vec<Arc<dyn rigor_tools::ToolSource>> {
    let mut sources: Vec<Arc<dyn rigor_tools::ToolSource>> = vec![Arc::new(rigor_graph::GraphSource)];
    sources.extend(prover.map(|p| Arc::new(p.clone()) as Arc<dyn rigor_tools::ToolSource>));
    sources.extend(mcp);
    sources
}

/// The MCP servers of the configuration (`[mcp.servers.NAME]`), confined like the run's commands
/// (`sandbox`) unless their entry says otherwise.
pub(crate) fn mcp_sources(
    config: &Config,
    sandbox: &rigor_sandbox::SandboxSettings,
) -> Vec<Arc<dyn rigor_tools::ToolSource>> {
    config
        .mcp
        .servers
        .iter()
        .map(|(name, server)| {
            Arc::new(rigor_mcp::McpSource::new(name.clone(), server.clone(), sandbox.clone()))
                as Arc<dyn rigor_tools::ToolSource>
        })
        .collect()
}

/// The configuration for the repository at `root`, with a warning on stderr for every setting of
/// the repository's file that was ignored because a repository may not set it.
pub(crate) fn load_config(root: &Path) -> Result<Config> {
    let config = Config::load(Some(root))?;
    for why in &config.ignored {
        eprintln!("rigor: warning: {}", terminal::escape(why));
    }
    Ok(config)
}

/// The top level of the git repository holding `dir`, or `dir` itself.
pub(crate) fn repo_root(dir: &Path) -> PathBuf {
    rigor_git::Git::checkout(dir)
        .run_blocking(&["rev-parse", "--show-toplevel"])
        .map(|top| PathBuf::from(top.trim()))
        .unwrap_or_else(|_| dir.to_path_buf())
}

/// Runs `request` as a [`Session`] and is its client: renders its events (human or JSON), shows
/// each to `on_event`, answers its approval requests with `approver` (the terminal), and turns
/// Ctrl-C into `Interrupt` then `Cancel` operations. `rigor run` and `rigor replay` both run so.
async fn run_session(
    request: RunRequest,
    provider: Arc<dyn rigor_llm::Provider>,
    json: bool,
    approver: Option<Arc<dyn Approver>>,
    on_event: &mut dyn FnMut(&Event),
) -> Result<rigor_core::run::RunReport> {
    let output = output_sinks(json);
    let mut session = Session::start(request, provider, approver.is_some());
    let ops = session.ops();
    forward_ctrl_c(vec![ops.clone()]);
    while let Some(event) = session.next_event().await {
        if let (Event::ApprovalRequested { call_id, tool, action, verdict, category, reason }, Some(approver)) =
            (&event, &approver)
        {
            let action = match tool.as_str() {
                "python" => Action::Python(action.clone()),
                "bash" => Action::Shell(action.clone()),
                // The tools of MCP servers (`server__tool`).
                _ => Action::Mcp(rigor_sandbox::McpCall {
                    text: action.clone(),
                    approval: rigor_sandbox::McpApproval::Always,
                    read_only: false,
                }),
            };
            let decision = rigor_sandbox::Decision {
                verdict: *verdict,
                category: *category,
                rule: String::new(),
                reason: reason.clone(),
                advice: String::new(),
            };
            let request = ApprovalRequest { call_id: call_id.clone(), tool: tool.clone(), action, decision };
            let approved = approver.approve(&request).await;
            ops.send(Op::Approve { call_id: call_id.clone(), approved });
        }
        on_event(&event);
        output.emit(event);
    }
    Ok(session.finish().await?)
}

/// Turns Ctrl-C into operations for every session of `ops`: `Interrupt` the first time, `Cancel`
/// after, each said on stderr. The task ends with the process (or when aborted).
pub(crate) fn forward_ctrl_c(ops: Vec<rigor_core::session::Ops>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut count = 0;
        while tokio::signal::ctrl_c().await.is_ok() {
            count += 1;
            let (op, message) = if count == 1 {
                (Op::Interrupt, "interrupt: stopping after the current step (Ctrl-C again to cancel it)")
            } else {
                (Op::Cancel, "interrupt: cancelling the current step")
            };
            eprintln!("rigor: {message}");
            ops.iter().for_each(|o| o.send(op.clone()));
        }
    })
}

/// An emitter with the human or the JSON sink.
fn output_sinks(json: bool) -> Emitter {
    let emitter = Emitter::new();
    if json {
        emitter.add(JsonOutput);
    } else {
        emitter.add(HumanOutput::new(Style::detect()));
    }
    emitter
}

/// The model (`provider:model`), its provider and the agent's settings of a run, from the
/// configuration and the flags: the one place `rigor run` and `rigor chat` get them.
pub(crate) fn run_wiring(
    config: &Config,
    model: Option<&str>,
    prompt: Option<rigor_core::prompt::PromptProfile>,
    budgets: &BudgetArgs,
    safety: &approve::SafetyArgs,
) -> Result<(String, Box<dyn rigor_llm::Provider>, AgentSettings)> {
    let spec = config.choose_model(model)?;
    let defaulted = model.is_none() && config.model.is_none() && spec == EMBEDDED_DEFAULT_MODEL;
    let provider = model_cmd::provider_for(config, &spec, defaulted)?;
    let mut settings = config.agent.clone();
    settings.prompt = Some(prompt.unwrap_or_else(|| config.prompt_profile(&spec)));
    budgets.apply(&mut settings);
    safety.apply(&mut settings.sandbox);
    Ok((spec, provider, settings))
}

async fn run(args: RunArgs) -> Result<u8> {
    if !args.repo.is_dir() {
        bail!("repository {} does not exist or is not a directory", args.repo.display());
    }
    let issue = match (&args.issue, &args.issue_file) {
        (Some(text), _) => text.clone(),
        (None, Some(file)) => {
            std::fs::read_to_string(file).with_context(|| format!("cannot read the issue file {}", file.display()))?
        }
        (None, None) => bail!("give the issue with --issue TEXT or --issue-file FILE"),
    };
    if issue.trim().is_empty() {
        bail!("the issue text is empty");
    }
    let config = load_config(&repo_root(&args.repo))?;
    let (model, provider, settings) =
        run_wiring(&config, args.model.as_deref(), args.prompt, &args.budgets, &args.safety)?;

    let approver = approve::approver(args.json, &settings.sandbox);
    let provider: Arc<dyn rigor_llm::Provider> = Arc::from(provider);
    let decline = match args.proof.prover() {
        Some(_) => args.proof.decline_asking(&issue, provider.as_ref()).await,
        None => None,
    };
    // Several candidates need the proof to be compared; a declined issue gets one (abstained) run.
    let count = if args.proof.no_proof || decline.is_some() { 1 } else { args.proof.candidates.max(1) };
    let base_id = args.run_id.clone().unwrap_or_else(rigor_core::run::new_run_id);
    let candidate = |number: usize| {
        let prover = args.proof.prover();
        let mut settings = settings.clone();
        if number > 1 {
            // Independent attempts: later candidates sample more freely.
            settings.temperature = Some((settings.temperature.unwrap_or(0.0) + 0.3 * (number - 1) as f32).min(1.0));
        }
        let run_id = if count == 1 { args.run_id.clone() } else { Some(format!("{base_id}-c{number}")) };
        let mcp = mcp_sources(&config, &settings.sandbox);
        let request = RunRequest {
            repo: args.repo.clone(),
            issue: issue.clone(),
            mode: if args.in_place { WorkspaceMode::InPlace } else { WorkspaceMode::Worktree },
            start: None,
            // A proven run applies after the proof allows it.
            apply: args.apply && prover.is_none(),
            keep_workspace: args.keep_workspace,
            settings,
            run_id,
            shell_env: Vec::new(),
            replay_of: None,
            sources: tool_sources(prover.as_ref(), mcp),
            user_messages: Vec::new(),
            decline: decline.clone(),
            conversation: None,
        };
        (request, prover)
    };
    let mut candidates = Vec::new();
    // The embedded model generates one reply at a time: its candidates run one after another.
    if args.proof.parallel && count > 1 && !model.starts_with("local:") {
        candidates = prove::run_parallel((1..=count).map(candidate).collect(), provider.clone(), args.json).await?;
    } else {
        for number in 1..=count {
            let (request, prover) = candidate(number);
            if count > 1 && !args.json {
                eprintln!("rigor: candidate {number} of {count}");
            }
            let report = run_session(request, provider.clone(), args.json, approver.clone(), &mut |_| {}).await?;
            candidates.push((report, prover));
        }
    }
    let (mut report, prover, ranking) = prove::choose(candidates).await;
    let proof = prover.as_ref().and_then(|p| prove::proof_of(&report, p)).map(|mut p| {
        p.candidates = ranking;
        args.proof.bounce(p)
    });
    let style = Style::detect();
    let mut refused_apply = false;
    if let Some(proof) = &proof
        && args.apply
        && report.status == rigor_protocol::RunStatus::Submitted
    {
        if prove::may_apply(proof, &args.proof) {
            match prove::apply(&repo_root(&args.repo), &report.patch).await {
                Ok(()) => report.applied = !report.patch.trim().is_empty(),
                Err(err) => eprintln!("rigor: the patch was not applied to your checkout: {err:#}"),
            }
        } else {
            refused_apply = true;
        }
    }
    if !args.json {
        println!("{}", style.dim(&format!("run record: {}", report.run_dir.display())));
    }
    let exit = match &proof {
        Some(proof) => prove::deliver(proof, &report, args.json)?,
        None => report.status.exit_code() as u8,
    };
    if !args.json {
        if report.applied {
            println!("{}", style.green("the patch was applied to your checkout"));
        } else if !report.patch.trim().is_empty() {
            if refused_apply {
                println!("{}", style.red("--apply refused: the patch is not proven (--apply-unproven applies it)"));
            }
            println!(
                "{}",
                style.dim(&format!("apply it with: git apply {}", report.run_dir.join("patch.diff").display()))
            );
        }
    }
    Ok(exit)
}

/// Exit code of `rigor replay` when the replay diverged from the recording.
const EXIT_DIVERGED: u8 = 5;

async fn replay_command(args: ReplayArgs) -> Result<u8> {
    // The recorded run's sources again: the proof (with default settings) if it had one.
    let prover = rigor_proof::prover::Prover::new(Default::default());
    // Recorded MCP servers answer from the record: no server is started.
    let trajectory = rigor_core::replay::trajectory_path(&args.trajectory);
    let choose = |names: &[String]| {
        tool_sources(
            names.iter().any(|n| n == rigor_tools::ToolSource::name(&prover)).then_some(&prover),
            rigor_mcp::RecordedMcpSource::all(names, &trajectory),
        )
    };
    let mut replay = Replay::load(&args.trajectory, args.repo.as_deref(), choose)?;
    let (request, provider) = (replay.request.clone(), replay.provider.clone());
    let run = run_session(request, provider, args.json, None, &mut |event| replay.observe(event)).await?;
    let report = replay.report(run);
    let proof_check = prove::recheck(&args.trajectory, &report.run, &prover);
    let style = Style::detect();
    let verdict = if report.reproduced() { style.green("reproduced") } else { style.red("diverged") };
    let summary = rigor_protocol::Event::ReplayReport {
        reproduced: report.reproduced(),
        recorded_status: report.recorded_status,
        replayed_status: report.run.status,
        divergences: report.divergences.len(),
        missing_observations: report.missing_observations,
        patch_identical: report.patch_identical,
        run_dir: report.run.run_dir.display().to_string(),
        proof: proof_check.clone(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("\nreplay: {verdict} · {}", totals_line(&report.run.totals));
        println!(
            "status {} → {}, patch {}, {} observation(s) differ",
            report.recorded_status.map(|s| s.as_str()).unwrap_or("unknown"),
            report.run.status.as_str(),
            if report.patch_identical { "identical" } else { "different" },
            report.divergences.len()
        );
        for d in &report.divergences {
            println!("{}", style.yellow(&format!("turn {} ({}):", d.turn, terminal::escape(&d.tool))));
            println!("  recorded: {}", terminal::escape(d.recorded.lines().next().unwrap_or_default()));
            println!("  replayed: {}", terminal::escape(d.replayed.lines().next().unwrap_or_default()));
        }
        if let Some(check) = &proof_check {
            let holds = if check.holds { style.green("holds") } else { style.red("does not hold") };
            println!("proof {holds} on a fresh worktree ({} → {})", check.recorded, check.replayed);
        }
    }
    let proof_held = proof_check.is_none_or(|c| c.holds || c.recorded != "proven");
    Ok(if report.reproduced() && proof_held { 0 } else { EXIT_DIVERGED })
}

fn export(args: ExportArgs) -> Result<u8> {
    let mut lines = String::new();
    for path in &args.trajectories {
        let path = rigor_core::replay::trajectory_path(path);
        let records = rigor_core::trajectory::read_trajectory(&path)?;
        if !args.include_replays
            && let Some(original) = replay_of(&path, &records)
        {
            eprintln!(
                "rigor: skipping {}: a replay of run {} (--include-replays exports it too)",
                path.display(),
                terminal::escape(&original)
            );
            continue;
        }
        let record = rigor_core::export::chat_record(&records)
            .with_context(|| format!("{} has no run_started event", path.display()))?;
        lines.push_str(&serde_json::to_string(&record)?);
        lines.push('\n');
    }
    match &args.output {
        Some(file) => std::fs::write(file, lines).with_context(|| format!("cannot write {}", file.display()))?,
        None => print!("{lines}"),
    }
    Ok(0)
}

/// The run a trajectory replays, if it was made by `rigor replay`: `replay_of` in the
/// `result.json` beside it, or (replays recorded before that field) a `replay:` model.
fn replay_of(trajectory: &Path, records: &[rigor_core::trajectory::TrajectoryRecord]) -> Option<String> {
    let result = trajectory.parent().map(|dir| dir.join("result.json"));
    let recorded = result
        .and_then(|file| std::fs::read_to_string(file).ok())
        .and_then(|text| serde_json::from_str::<rigor_core::trajectory::RunResult>(&text).ok())
        .and_then(|r| r.replay_of);
    recorded.or_else(|| {
        records.iter().find_map(|r| match &r.event {
            rigor_protocol::Event::RunStarted { model, .. } if model.starts_with("replay:") => {
                Some("(unknown)".to_string())
            }
            _ => None,
        })
    })
}

fn config_show(repo: &Path, model: Option<&str>) -> Result<u8> {
    let root = repo_root(repo);
    let config = load_config(&root)?;
    let sources = [user_config_path(), Some(root.join(".rigor").join("config.toml"))];
    for path in sources.into_iter().flatten() {
        let state = if path.exists() { "loaded" } else { "absent" };
        println!("# {state}: {}", path.display());
    }
    print!("{}", config.to_toml());
    let spec = match config.choose_model(model) {
        Ok(spec) => spec,
        Err(err) => {
            println!("\n# model: {err}");
            return Ok(0);
        }
    };
    match config.resolve_provider(&spec) {
        Ok(p) => {
            println!("\n[resolved]\nmodel = \"{spec}\"\nkind = \"{:?}\"\nbase_url = \"{}\"", p.kind, p.base_url);
            println!("api_key = \"{}\"", p.api_key.as_deref().map(mask_secret).unwrap_or_else(|| "(none)".into()));
            println!("context_window = {}\ntext_actions = {}", p.context_window, p.text_actions);
            if let Some(price) = p.pricing {
                println!("price_per_mtok = {{ input = {}, output = {} }}", price.input_per_mtok, price.output_per_mtok);
            }
        }
        Err(err) => println!("\n# model {spec}: {err}"),
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use rigor_sandbox::SandboxSettings;

    use super::*;

    fn help(path: &[&str]) -> String {
        let mut command = Cli::command();
        for name in path {
            command = command.find_subcommand(name).cloned().unwrap_or_else(|| panic!("no subcommand {name}"));
        }
        command.render_long_help().to_string()
    }

    #[test]
    fn top_level_help_says_what_rigor_is_and_where_config_lives() {
        let text = help(&[]);
        assert!(!text.contains("The rigor command-line program."), "{text}");
        for needle in ["code agent", "rigor run", "rigor eval", "~/.config/rigor/config.toml", "2 usage error"] {
            assert!(text.contains(needle), "{needle:?} not in {text}");
        }
    }

    #[test]
    fn run_help_shows_the_defaults_of_budgets_and_sandbox_flags() {
        let text = help(&["run"]);
        let agent = AgentSettings::default();
        let sandbox = SandboxSettings::default();
        for needle in [
            format!("[default: {}, or `agent.max_steps`", agent.max_steps),
            format!("[default: {}, or `agent.command_timeout_secs`", agent.command_timeout_secs),
            "[default: no limit, or `agent.max_cost`".to_string(),
            format!("[default: {}, or `sandbox.mode`", sandbox.mode.as_str()),
            format!("[default: {}, or `sandbox.approval`", sandbox.approval.as_str()),
            format!("[default: {}, or `sandbox.network`", if sandbox.network { "on" } else { "off" }),
        ] {
            assert!(text.replace('\n', " ").replace("  ", " ").contains(&needle), "{needle:?} not in {text}");
        }
    }
}
