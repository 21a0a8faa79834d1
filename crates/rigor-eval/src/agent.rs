//! Agent mode: producing the patch of an instance by running an agent in its worktree.
//!
//! [`AgentSpec::Rigor`] runs rigor's own loop as a `rigor_core::session::Session` in the
//! instance's worktree (in place: the worktree is already a throwaway copy) with the problem
//! statement as the issue; the evaluation's interrupt becomes the session's `Interrupt` and
//! `Cancel` operations; its trajectory is copied next to the instance's logs. [`AgentSpec::Command`] runs
//! any external command (`{issue_file}`, `{workspace}`, `{instance_id}`, `{base_commit}` and
//! `{repo}` are substituted) and collects everything it changed as a diff against the base
//! commit. Either way the patch is then graded like any prediction, after the worktree is reset.
//! Tokens, cost (where the price is known) and wall time are recorded. This module does not
//! grade anything.
//!
//! A run of rigor gets its tool sources from a [`RunWiring`], which the front end provides (the
//! CLI wires every instance as `rigor run` is wired): fresh sources for each instance, because a
//! [`Prover`] holds the state of one run. When the sources include a prover, the instance's
//! proof is written as `proof.json` next to its logs and its status recorded in
//! [`AgentOutcome::proof_status`], beside the official verdict the harness adds; the patch is
//! graded whatever its proof says, so a report can tell how far a proof status is to be trusted.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rigor_core::agent::Interrupt;
use rigor_core::config::AgentSettings;
use rigor_core::run::{RunReport, RunRequest};
use rigor_core::session::Session;
use rigor_core::workspace::WorkspaceMode;
use rigor_llm::Provider;
use rigor_proof::proof::{Proof, ProofStatus};
use rigor_proof::prover::Prover;
use rigor_protocol::Op;
use rigor_testing::env::Environment;
use rigor_testing::process::Cmd;
use rigor_testing::spec::EnvSpec;
use rigor_tools::ToolSource;
use serde::{Deserialize, Serialize};

use crate::prepared::Prepared;

/// Which agent produces patches.
#[derive(Clone)]
pub enum AgentSpec {
    /// rigor itself, with this provider and these budgets.
    Rigor {
        /// The model.
        provider: Arc<dyn Provider>,
        /// Budgets and limits of each run.
        settings: Box<AgentSettings>,
        /// Shared by every run of the evaluation: triggering it (Ctrl-C) stops the running agents.
        interrupt: Interrupt,
        /// How each instance's run is wired: its tool sources (the code graph, the prover) and
        /// its bouncers, as the front end decides.
        wiring: Arc<dyn RunWiring>,
    },
    /// An external command line, run with `bash -c` in the worktree.
    Command {
        /// The template.
        template: String,
        /// Its time limit.
        timeout: Duration,
    },
}

/// The wiring of rigor's runs in an evaluation, one instance at a time. The front end implements
/// it (the CLI: as `rigor run` is wired, the one place that chooses sources); [`WithoutProof`] is
/// the plain case.
pub trait RunWiring: Send + Sync {
    /// Fresh tool sources for one run, and the prover among them (`None`: the patch is not
    /// proven). Called once per instance: a prover must not be shared between runs.
    fn sources(&self) -> RunSources;

    /// Why the input bouncer declines `issue` before any model call (`None`: the agent works).
    /// A declined run is recorded as abstained. Asked only of runs with a prover (as in
    /// `rigor run`, the bouncers belong to the proof).
    fn decline(&self, _issue: &str) -> Option<String> {
        None
    }

    /// The proof of a finished run whose prover was `prover` (`None`: the run ended without a
    /// result to prove: a budget, an error, an interrupt). Only called for runs with a prover.
    fn proof(&self, report: &RunReport, prover: &Prover) -> Option<Proof>;
}

/// The tool sources of one run.
pub struct RunSources {
    /// Every source of the run, the prover included.
    pub sources: Vec<Arc<dyn ToolSource>>,
    /// The prover among them, read after the run for its proof.
    pub prover: Option<Prover>,
}

/// The same sources for every run, and no proof.
pub struct WithoutProof(pub Vec<Arc<dyn ToolSource>>);

impl RunWiring for WithoutProof {
    fn sources(&self) -> RunSources {
        RunSources { sources: self.0.clone(), prover: None }
    }

    fn proof(&self, _report: &RunReport, _prover: &Prover) -> Option<Proof> {
        None
    }
}

/// What the agent did on one instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentOutcome {
    /// rigor's run status (`submitted`, `abstained`, …) or the command's exit (`exit 0`).
    pub status: String,
    /// The patch it produced.
    pub patch: String,
    /// Why it failed, when it could not run at all.
    pub error: Option<String>,
    /// Model turns.
    pub steps: u32,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
    /// Cost in USD (0 when unknown).
    pub cost_usd: f64,
    /// Wall time in seconds.
    pub wall_secs: f64,
    /// What rigor's proof says of the patch (`proof.json` beside the logs holds the evidence);
    /// `None` without a proof, or when the run ended otherwise (budget, error, interrupt).
    #[serde(default)]
    pub proof_status: Option<ProofStatus>,
}

impl AgentSpec {
    /// Runs the agent on the instance in its worktree (at the base commit), with its
    /// environment active; records land in its log directory.
    pub async fn produce(&self, at: &Prepared<'_>) -> AgentOutcome {
        let started = Instant::now();
        let mut outcome = match self {
            AgentSpec::Rigor { provider, settings, interrupt, wiring } => {
                let (shell_env, readable) = activation(at.env, at.spec, &at.worktree.dir);
                let mut settings = (**settings).clone();
                settings.sandbox.readable.extend(readable);
                let run = RigorRun {
                    provider: provider.clone(),
                    settings,
                    interrupt: interrupt.clone(),
                    wiring: wiring.clone(),
                    shell_env,
                };
                run_rigor(run, at).await
            }
            AgentSpec::Command { template, timeout } => run_command(template, *timeout, at).await,
        };
        outcome.wall_secs = started.elapsed().as_secs_f64();
        outcome
    }
}

/// The instance's environment as the agent's shell sees it: the variables that activate it (the
/// same as the test run's), and the paths the sandbox must show for them to work (the virtual
/// environment and the interpreter it was made from, which may live in the hidden home).
fn activation(env: &Environment, spec: &EnvSpec, worktree: &Path) -> (Vec<(String, String)>, Vec<PathBuf>) {
    let mut readable = Vec::new();
    if let Some(venv) = &env.venv {
        readable.push(venv.clone());
        // bin/python -> <prefix>/bin/python3.x: the prefix holds the standard library.
        if let Some(prefix) = std::fs::canonicalize(venv.join("bin").join("python"))
            .ok()
            .and_then(|python| python.parent()?.parent().map(Path::to_path_buf))
        {
            readable.push(prefix);
        }
    }
    (env.test_env(spec, worktree), readable)
}

/// One run of rigor's loop on an instance: the agent's parts, with the instance's settings.
struct RigorRun {
    provider: Arc<dyn Provider>,
    settings: AgentSettings,
    interrupt: Interrupt,
    wiring: Arc<dyn RunWiring>,
    /// The variables that activate the instance's environment in the agent's shell.
    shell_env: Vec<(String, String)>,
}

async fn run_rigor(run: RigorRun, at: &Prepared<'_>) -> AgentOutcome {
    let RigorRun { provider, settings, interrupt, wiring, shell_env } = run;
    let (instance, dir) = (at.instance, at.dir);
    let RunSources { sources, prover } = wiring.sources();
    let decline = prover.as_ref().and_then(|_| wiring.decline(&instance.problem_statement));
    let request = RunRequest {
        repo: at.worktree.dir.clone(),
        issue: instance.problem_statement.clone(),
        mode: WorkspaceMode::InPlace,
        start: None,
        apply: false,
        keep_workspace: false,
        settings,
        run_id: Some(format!("eval-{}", instance.instance_id)),
        shell_env,
        replay_of: None,
        sources,
        user_messages: Vec::new(),
        decline,
        conversation: None,
    };
    // The session's task runs on the evaluation's runtime (a panic in it becomes an error).
    let mut session = Session::start(request, provider, false);
    let ops = session.ops();
    let forward = tokio::spawn(async move {
        interrupt.reached(1).await;
        ops.send(Op::Interrupt);
        interrupt.reached(2).await;
        ops.send(Op::Cancel);
    });
    while session.next_event().await.is_some() {} // the trajectory records them
    let finished = session.finish().await;
    forward.abort();
    match finished {
        Ok(report) => {
            let _ = std::fs::copy(report.run_dir.join("trajectory.jsonl"), dir.join("trajectory.jsonl"));
            let _ = std::fs::copy(report.run_dir.join("result.json"), dir.join("agent_result.json"));
            let proof = prover.as_ref().and_then(|p| wiring.proof(&report, p));
            if let Some(proof) = &proof {
                let _ = proof.write(dir);
            }
            AgentOutcome {
                status: report.status.as_str().to_string(),
                patch: report.patch,
                error: None,
                steps: report.totals.steps,
                input_tokens: report.totals.usage.input_tokens,
                output_tokens: report.totals.usage.output_tokens,
                cost_usd: report.totals.cost_usd,
                wall_secs: 0.0,
                proof_status: proof.map(|p| p.status),
            }
        }
        Err(e) => AgentOutcome { status: "error".into(), error: Some(e.to_string()), ..Default::default() },
    }
}

async fn run_command(template: &str, timeout: Duration, at: &Prepared<'_>) -> AgentOutcome {
    let (instance, dir, worktree) = (at.instance, at.dir, at.worktree.dir.as_path());
    let issue_file = dir.join("issue.md");
    if let Err(e) = std::fs::write(&issue_file, &instance.problem_statement) {
        return AgentOutcome {
            status: "error".into(),
            error: Some(format!("cannot write the issue file: {e}")),
            ..Default::default()
        };
    }
    let command = template
        .replace("{issue_file}", &issue_file.display().to_string())
        .replace("{workspace}", &worktree.display().to_string())
        .replace("{instance_id}", &instance.instance_id)
        .replace("{base_commit}", &instance.base_commit)
        .replace("{repo}", &instance.repo);
    let mut cmd = Cmd::new("bash", &["-c", &command], worktree).timeout(timeout);
    for (k, v) in at.env.test_env(at.spec, worktree) {
        cmd = cmd.env(&k, v);
    }
    let done = match cmd.run().await {
        Ok(done) => done,
        Err(e) => {
            return AgentOutcome {
                status: "error".into(),
                error: Some(format!("cannot run bash: {e}")),
                ..Default::default()
            };
        }
    };
    let _ = std::fs::write(dir.join("agent_output.txt"), &done.output);
    let status = if done.timed_out { "timeout".to_string() } else { format!("exit {}", done.code.unwrap_or(-1)) };
    match diff_against(worktree, at.start).await {
        Ok(patch) => AgentOutcome { status, patch, ..Default::default() },
        Err(e) => AgentOutcome { status, error: Some(e), ..Default::default() },
    }
}

/// Everything that differs from `base` in the worktree (untracked files included, `.rigor/`
/// excluded), as a diff `git apply` takes.
pub async fn diff_against(worktree: &Path, base: &str) -> Result<String, String> {
    let git = rigor_git::Git::checkout(worktree);
    git.run(&["add", "-A", "--", ".", ":(exclude).rigor"]).await.map_err(|e| e.to_string())?;
    git.run(&["diff", "--cached", "--binary", "--no-ext-diff", "--no-textconv", base]).await.map_err(|e| e.to_string())
}
