//! `rigor mcp`: the server of `rigor_mcp`, wired by the CLI: the sandbox settings of the
//! configuration for `run_tests` and `check_patch`, and a [`rigor_mcp::Solver`] that makes
//! `solve` a run exactly as `rigor run` makes one (provider, tool sources, proof), in a worktree.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Result, bail};
use async_trait::async_trait;
use rigor_core::config::EMBEDDED_DEFAULT_MODEL;
use rigor_core::run::RunRequest;
use rigor_core::session::Session;
use rigor_core::workspace::WorkspaceMode;
use rigor_mcp::{SolveRequest, Solved, Solver};
use rigor_proof::prover::{ProofSettings, Prover};
use rigor_protocol::{Event, Op};
use tokio::sync::mpsc;

use crate::{BudgetArgs, load_config, mcp_sources, model_cmd, prove, repo_root, tool_sources};

/// `rigor mcp --repo DIR [--model SPEC]`: serves until the client closes stdin.
pub async fn serve(repo: &Path, model: Option<String>) -> Result<u8> {
    if !repo.is_dir() {
        bail!("repository {} does not exist or is not a directory", repo.display());
    }
    let root = repo_root(repo);
    let config = load_config(&root)?;
    let server = rigor_mcp::RigorServer::new(root)
        .with_sandbox(config.agent.sandbox.clone())
        .with_solver(Arc::new(RunSolver { model }));
    server.serve_stdio().await?;
    Ok(0)
}

/// `solve` as `rigor run --repo REPO` without `--apply`: the model of `--model` (or the
/// configuration's), the configuration's budgets with the call's on top, the proof.
struct RunSolver {
    model: Option<String>,
}

#[async_trait]
impl Solver for RunSolver {
    async fn solve(
        &self,
        repo: &Path,
        request: SolveRequest,
        events: mpsc::UnboundedSender<Event>,
    ) -> Result<Solved, String> {
        let config = load_config(repo).map_err(|e| format!("{e:#}"))?;
        let model = config.choose_model(self.model.as_deref()).map_err(|e| e.to_string())?;
        let defaulted = self.model.is_none() && config.model.is_none() && model == EMBEDDED_DEFAULT_MODEL;
        let provider = model_cmd::provider_for(&config, &model, defaulted).map_err(|e| format!("{e:#}"))?;
        let mut settings = config.agent.clone();
        settings.prompt = Some(config.prompt_profile(&model));
        let budgets = BudgetArgs {
            max_steps: request.max_steps,
            max_tokens: None,
            max_cost: request.max_cost,
            timeout: request.timeout_secs,
            command_timeout: None,
        };
        budgets.apply(&mut settings);
        let prover = request.prove.then(|| Prover::new(ProofSettings::default()));
        let mcp = mcp_sources(&config, &settings.sandbox);
        let run = RunRequest {
            repo: PathBuf::from(repo),
            issue: request.issue.clone(),
            mode: WorkspaceMode::Worktree,
            start: None,
            apply: false,
            keep_workspace: false,
            settings,
            run_id: None,
            shell_env: Vec::new(),
            replay_of: None,
            sources: tool_sources(prover.as_ref(), mcp),
            user_messages: Vec::new(),
            decline: None,
            conversation: None,
        };
        let mut session = Session::start(run, Arc::from(provider), false);
        let ops = session.ops();
        loop {
            tokio::select! {
                event = session.next_event() => match event {
                    Some(event) => { let _ = events.send(event); }
                    None => break,
                },
                () = request.cancelled.notified() => ops.send(Op::Cancel),
            }
        }
        let report = session.finish().await.map_err(|e| e.to_string())?;
        let proof = prover.as_ref().and_then(|p| prove::proof_of(&report, p));
        if let Some(proof) = &proof
            && let Err(e) = proof.write(&report.run_dir)
        {
            eprintln!("rigor: warning: cannot write the proof of run {}: {e}", report.run_id);
        }
        Ok(Solved {
            run_id: report.run_id,
            run_dir: report.run_dir,
            status: report.status,
            summary: report.summary,
            patch: report.patch,
            proof,
        })
    }
}
