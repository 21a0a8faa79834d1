//! Several candidate patches for one issue: each candidate's fix is run against every candidate's
//! reproduction (cross-validation, the SWT-bench / Agentless filter), and the candidates are
//! ranked: proven first; then the number of reproductions the fix passes; then agreement (fixes
//! that are the same once whitespace is ignored, or that pass and fail the same reproductions,
//! vote together); then the smaller diff; then the earlier candidate. The record says why the
//! chosen one won.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::proof::{Proof, ProofStatus};
use crate::prover::{Prover, apply_changes};
use crate::tests_in::is_test_file;

/// One candidate as the record shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandidateSummary {
    /// 1-based.
    pub number: usize,
    /// Its run id.
    pub run_id: String,
    /// Its proof's status (`none`: it did not finish).
    pub status: String,
    /// Reproductions (of every candidate that has one) its fix passes, and how many there are.
    pub passes: usize,
    /// Candidates whose reproductions were run against it.
    pub of: usize,
    /// Candidates that agree with it (itself included).
    pub votes: usize,
    /// Lines its fix adds and removes.
    pub diff_lines: usize,
}

/// The ranking of the candidates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ranking {
    /// Every candidate, in the order tried.
    pub candidates: Vec<CandidateSummary>,
    /// The chosen candidate's number (`None`: none produced a patch).
    pub chosen: Option<usize>,
    /// Why it won.
    pub why: String,
}

/// A finished candidate: its run id and patch, its prover, and its proof.
pub struct Candidate {
    /// Its run id.
    pub run_id: String,
    /// Its whole patch (empty: none).
    pub patch: String,
    /// Its prover (holds what its attempt checked).
    pub prover: Prover,
    /// Its proof (`None`: it did not finish).
    pub proof: Option<Proof>,
}

/// Whether candidate `fix`'s fix passes candidate `repro`'s reproduction: the starting state, the
/// fix's non-test changes and the reproduction's test changes, the reproduction's tests run (in
/// the sandbox, as the proof runs them). `None` when either has nothing to check.
async fn passes(fix: &Candidate, repro: &Candidate) -> Option<bool> {
    let (fixed, reproduced) = (fix.prover.checked()?, repro.prover.checked()?);
    let scratch = tempfile::Builder::new().prefix("rigor-cross-").tempdir().ok()?;
    let dir = scratch.path().join("code");
    std::fs::create_dir_all(&dir).ok()?;
    fixed.baseline.export(&dir).await.ok()?;
    apply_changes(&dir, fixed.changes.iter().filter(|(p, _)| !is_test_file(p))).ok()?;
    apply_changes(&dir, reproduced.changes.iter().filter(|(p, _)| is_test_file(p))).ok()?;
    let run = fixed.runner.run_ids(&reproduced.project, &dir, &reproduced.reproduction).await.ok()?;
    Some(!run.timed_out && reproduced.reproduction.iter().all(|id| run.status(id).is_some_and(|s| s.passes())))
}

/// The fix with whitespace-only differences removed: what two candidates agree on.
fn normalized(fix_patch: &str) -> String {
    fix_patch
        .lines()
        .filter(|l| (l.starts_with('+') || l.starts_with('-')) && !l.starts_with("+++") && !l.starts_with("---"))
        .map(|l| l.split_whitespace().collect::<String>())
        .filter(|l| l.len() > 1)
        .collect::<Vec<_>>()
        .join("\n")
}

fn diff_lines(fix_patch: &str) -> usize {
    let (_, added, removed) = crate::proof::diff_counts(fix_patch);
    added + removed
}

/// Cross-validates and ranks `candidates` (see the module documentation).
pub async fn rank(candidates: &[Candidate]) -> Ranking {
    let n = candidates.len();
    // outcomes[i][j]: candidate i's fix against candidate j's reproduction.
    let mut outcomes = vec![vec![None; n]; n];
    for (i, fix) in candidates.iter().enumerate() {
        for (j, repro) in candidates.iter().enumerate() {
            outcomes[i][j] = if i == j {
                fix.proof.as_ref().map(|p| p.status == ProofStatus::Proven)
            } else if fix.patch.trim().is_empty() {
                None
            } else {
                passes(fix, repro).await
            };
        }
    }
    let fix_of = |c: &Candidate| c.proof.as_ref().map(|p| p.fix_patch.clone()).unwrap_or_default();
    let mut groups: BTreeMap<String, usize> = BTreeMap::new();
    let mut keys = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        let key = if fix_of(c).trim().is_empty() { format!("none-{i}") } else { normalized(&fix_of(c)) };
        *groups.entry(key.clone()).or_default() += 1;
        keys.push(key);
    }
    let summaries: Vec<CandidateSummary> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let judged: Vec<bool> = outcomes[i].iter().flatten().copied().collect();
            let same_outcomes = (0..n).filter(|&k| k != i && outcomes[k] == outcomes[i] && !judged.is_empty()).count();
            CandidateSummary {
                number: i + 1,
                run_id: c.run_id.clone(),
                status: c.proof.as_ref().map_or("none", |p| p.status.as_str()).to_string(),
                passes: judged.iter().filter(|&&b| b).count(),
                of: judged.len(),
                votes: groups[&keys[i]].max(1 + same_outcomes),
                diff_lines: diff_lines(&fix_of(c)),
            }
        })
        .collect();
    let mut order: Vec<&CandidateSummary> =
        summaries.iter().filter(|s| !candidates[s.number - 1].patch.trim().is_empty()).collect();
    order.sort_by_key(|s| {
        (s.status != "proven", std::cmp::Reverse(s.passes), std::cmp::Reverse(s.votes), s.diff_lines, s.number)
    });
    let Some(best) = order.first() else {
        return Ranking { candidates: summaries, chosen: None, why: "no candidate produced a patch".into() };
    };
    let mut reasons = Vec::new();
    if best.status == "proven" {
        reasons.push("proven".to_string());
    }
    reasons.push(format!("passes {}/{} reproductions", best.passes, best.of));
    let agreeing: Vec<String> = summaries
        .iter()
        .filter(|s| {
            s.number != best.number
                && (keys[s.number - 1] == keys[best.number - 1] || outcomes[s.number - 1] == outcomes[best.number - 1])
        })
        .map(|s| format!("#{}", s.number))
        .collect();
    if !agreeing.is_empty() {
        reasons.push(format!("agrees with {}", agreeing.join(", ")));
    }
    if order.iter().skip(1).all(|s| s.diff_lines >= best.diff_lines) && order.len() > 1 {
        reasons.push("smallest diff".into());
    }
    let why = format!("chosen #{} ({})", best.number, reasons.join("; "));
    Ranking { chosen: Some(best.number), why, candidates: summaries }
}

/// The line `rigor run` shows for a ranking.
pub fn summary_line(ranking: &Ranking) -> String {
    let proven = ranking.candidates.iter().filter(|c| c.status == "proven").count();
    format!("{} tried · {proven} proven · {}", ranking.candidates.len(), ranking.why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_does_not_separate_two_fixes() {
        let a = "--- a/d.py\n+++ b/d.py\n@@ -1 +1 @@\n-    total = x\n+    total += x\n";
        let b = "--- a/d.py\n+++ b/d.py\n@@ -3 +3 @@\n-    total = x\n+    total  +=  x\n";
        assert_eq!(normalized(a), normalized(b));
        assert_eq!(diff_lines(a), 2);
    }
}
