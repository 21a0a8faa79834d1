//! `rigor run`'s proof: the prover wired into the run, then `proof.json`, the `result:` lines, the
//! exit code and whether `--apply` may apply the patch.

use std::path::Path;

use clap::Args;
use rigor_core::run::RunReport;
use rigor_proof::proof::{PROOF_SCHEMA_VERSION, Proof, ProofStatus};
use rigor_proof::prover::{ProofSettings, Prover};
use rigor_protocol::RunStatus;

use crate::output::Style;

/// Flags of the proof.
#[derive(Args, Debug, Clone)]
pub struct ProofArgs {
    /// Deliver the patch without proving it (no reproduction, no related tests run by rigor).
    #[arg(long)]
    pub no_proof: bool,
    /// Independent attempts at the patch; each candidate's fix is run against every candidate's
    /// reproduction and the best one is delivered (proven first, then tests passed, agreement,
    /// the smaller diff).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(usize))]
    pub candidates: usize,
    /// Run the candidates at the same time (HTTP providers; the embedded model runs them one after
    /// another). Their events are not shown one by one, and nobody is asked to approve: held
    /// actions are refused.
    #[arg(long, requires = "candidates")]
    pub parallel: bool,
    /// `finish` attempts the proof may send back to the model before delivering the patch unproven.
    #[arg(long, value_name = "N", default_value_t = ProofSettings::default().max_rejections)]
    pub proof_attempts: u32,
    /// Wall-clock limit of each test run of the proof, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = ProofSettings::default().test_timeout.as_secs())]
    pub test_timeout: u64,
    /// Run every existing test on the original and the patched code, not only the related ones.
    #[arg(long)]
    pub full_suite: bool,
    /// With --apply: apply the patch even when it is not proven.
    #[arg(long)]
    pub apply_unproven: bool,
    /// Which bouncers judge the run: `input` abstains on a non-actionable issue before any model
    /// call; `output` withholds a patch that is not proven (abstained instead of unproven).
    #[arg(long, value_enum, default_value_t = Bouncer::Input)]
    pub bouncer: Bouncer,
}

/// The `--bouncer` choices.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bouncer {
    /// Neither.
    Off,
    /// The issue is judged before work starts.
    Input,
    /// An unproven patch is withheld.
    Output,
    /// Both.
    Both,
}

impl ProofArgs {
    /// Why the input bouncer declines `issue` by its text alone (`None`: work may start).
    pub fn decline(&self, issue: &str) -> Option<String> {
        self.judge(issue).and_then(|j| (!j.actionable).then_some(j.reason))
    }

    /// Why the input bouncer declines `issue`: by its text, or, when the text leaves it open
    /// (`Judgement::borderline`), by one short question to the model (a failed call lets work
    /// start).
    pub async fn decline_asking(&self, issue: &str, provider: &dyn rigor_llm::Provider) -> Option<String> {
        let judgement = self.judge(issue)?;
        if !judgement.actionable {
            return Some(judgement.reason);
        }
        if !judgement.borderline() {
            return None;
        }
        let request = rigor_llm::ChatRequest {
            messages: vec![
                rigor_protocol::Message::system(rigor_proof::bouncer::ASK_MODEL),
                rigor_protocol::Message::user(issue),
            ],
            tools: Vec::new(),
            max_output_tokens: Some(80),
            temperature: Some(0.0),
        };
        match provider.chat(&request, &|_| {}).await {
            Ok(reply) => rigor_proof::bouncer::model_says_vague(&reply.message.content),
            Err(err) => {
                eprintln!("rigor: the input bouncer could not ask the model ({err}); working on the issue");
                None
            }
        }
    }

    fn judge(&self, issue: &str) -> Option<rigor_proof::bouncer::Judgement> {
        matches!(self.bouncer, Bouncer::Input | Bouncer::Both).then(|| rigor_proof::bouncer::judge(issue))
    }

    /// The proof as delivered: with the output bouncer, an unproven patch is withheld.
    pub fn bounce(&self, mut proof: Proof) -> Proof {
        if matches!(self.bouncer, Bouncer::Output | Bouncer::Both) && proof.status == ProofStatus::Unproven {
            proof.status = ProofStatus::Abstained;
            proof.reason = format!("the output bouncer withheld the unproven patch: {}", proof.reason);
        }
        proof
    }

    /// The prover of a run (`None` with `--no-proof`).
    pub fn prover(&self) -> Option<Prover> {
        (!self.no_proof).then(|| {
            Prover::new(ProofSettings {
                max_rejections: self.proof_attempts,
                test_timeout: std::time::Duration::from_secs(self.test_timeout),
                full_suite: self.full_suite,
            })
        })
    }
}

/// The proof of a finished run: the prover's for a submitted patch, an abstention's reason, or
/// `None` when the run ended otherwise (budget, error, interrupt).
pub fn proof_of(report: &RunReport, prover: &Prover) -> Option<Proof> {
    let base = Proof { schema_version: PROOF_SCHEMA_VERSION, ..Proof::default() };
    match report.status {
        RunStatus::Submitted => Some(prover.proof().unwrap_or(Proof {
            reason: "the run finished without the proof's check (no finish call was checked)".into(),
            ..base
        })),
        RunStatus::Abstained => Some(Proof { status: ProofStatus::Abstained, reason: report.summary.clone(), ..base }),
        _ => None,
    }
}

/// Runs every candidate's session at once (headless: held actions are refused); Ctrl-C
/// interrupts them all, a second cancels their running tools. Says on stderr (or, with `json`,
/// nowhere) how each ended.
pub async fn run_parallel(
    candidates: Vec<(rigor_core::run::RunRequest, Option<Prover>)>,
    provider: std::sync::Arc<dyn rigor_llm::Provider>,
    json: bool,
) -> anyhow::Result<Vec<(RunReport, Option<Prover>)>> {
    use rigor_core::session::Session;
    let sessions: Vec<(Session, Option<Prover>)> = candidates
        .into_iter()
        .map(|(request, prover)| (Session::start(request, provider.clone(), false), prover))
        .collect();
    let on_signal = crate::forward_ctrl_c(sessions.iter().map(|(s, _)| s.ops()).collect());
    let total = sessions.len();
    let mut runs = Vec::new();
    for (number, (mut session, prover)) in sessions.into_iter().enumerate() {
        while session.next_event().await.is_some() {} // each candidate's trajectory records them
        let report = session.finish().await?;
        if !json {
            eprintln!(
                "rigor: candidate {} of {total}: {} ({} steps) · {}",
                number + 1,
                report.status.as_str(),
                report.totals.steps,
                report.run_dir.display()
            );
        }
        runs.push((report, prover));
    }
    on_signal.abort();
    Ok(runs)
}

/// Ranks the finished candidates (one: itself) and returns the chosen one's report, its prover,
/// and the ranking when there were several.
pub async fn choose(
    mut runs: Vec<(RunReport, Option<Prover>)>,
) -> (RunReport, Option<Prover>, Option<rigor_proof::candidates::Ranking>) {
    if runs.len() == 1 {
        let (report, prover) = runs.remove(0);
        return (report, prover, None);
    }
    let candidates: Vec<rigor_proof::candidates::Candidate> = runs
        .iter()
        .filter_map(|(report, prover)| {
            let prover = prover.clone()?;
            Some(rigor_proof::candidates::Candidate {
                run_id: report.run_id.clone(),
                patch: report.patch.clone(),
                proof: proof_of(report, &prover),
                prover,
            })
        })
        .collect();
    let ranking = rigor_proof::candidates::rank(&candidates).await;
    let chosen = ranking.chosen.map_or(0, |n| n - 1);
    let (report, prover) = runs.swap_remove(chosen);
    (report, prover, Some(ranking))
}

/// Writes `proof.json` and prints the `result:` block (human output); returns the exit code.
pub fn deliver(proof: &Proof, report: &RunReport, json: bool) -> anyhow::Result<u8> {
    let path = proof.write(&report.run_dir)?;
    if json {
        let line = serde_json::json!({"type": "proof", "path": path.display().to_string(), "proof": proof});
        println!("{line}");
        return Ok(proof.status.exit_code());
    }
    let style = Style::detect();
    let status = match proof.status {
        ProofStatus::Proven => style.green("proven"),
        ProofStatus::Unproven => style.red("unproven"),
        ProofStatus::Abstained => style.dim("abstained"),
    };
    println!("result: {status}");
    if proof.status != ProofStatus::Proven {
        println!("  {:<13} {}", "why", rigor_protocol::terminal::escape(&proof.reason));
    }
    if proof.status != ProofStatus::Abstained {
        for (label, line) in proof.summary_lines() {
            println!("  {label:<13} {}", rigor_protocol::terminal::escape(&line));
        }
    }
    println!("proof: {}", path.display());
    Ok(proof.status.exit_code())
}

/// Whether `--apply` may apply the patch of this proof.
pub fn may_apply(proof: &Proof, args: &ProofArgs) -> bool {
    proof.status == ProofStatus::Proven || (proof.status == ProofStatus::Unproven && args.apply_unproven)
}

/// Applies `patch` to the checkout at `repo` (after the run, once the proof allows it).
pub async fn apply(repo: &Path, patch: &str) -> anyhow::Result<()> {
    rigor_core::workspace::apply_patch_to_checkout(repo, patch).await?;
    Ok(())
}

/// The recorded proof of the run at `recording` (a run directory or its trajectory) against the
/// proof of its replay `run` (whose prover is `prover`); `None` when the recording has no proof.
pub fn recheck(recording: &Path, run: &RunReport, prover: &Prover) -> Option<rigor_protocol::ProofCheck> {
    let dir = if recording.is_dir() { recording.to_path_buf() } else { recording.parent()?.to_path_buf() };
    let recorded = Proof::read(&dir.join("proof.json")).ok()?;
    let replayed = proof_of(run, prover).map_or("none", |p| p.status.as_str());
    let (recorded, replayed) = (recorded.status.as_str().to_string(), replayed.to_string());
    Some(rigor_protocol::ProofCheck { holds: recorded == "proven" && replayed == "proven", recorded, replayed })
}
