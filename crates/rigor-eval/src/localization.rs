//! Localization evaluation: how well the code graph's retriever (`rigor_graph::Retriever`) finds
//! the code an issue is about, on the same SWE-bench rows the harness grades.
//!
//! Rows are [`Instance`]s loaded with [`Purpose::Localization`](crate::dataset::Purpose), so a row
//! needs an issue and gold locations, not tests. The repository is found by
//! [`crate::repos::find_clone`] and, when `base_commit` is set, exported at that commit into a
//! temporary directory with `git archive` (the clone is not touched: no worktree is added); with
//! an empty `base_commit` the directory is used as it is, git or not. The gold locations are
//! derived from the patch: the files it changes, and the entities (innermost function/method, and
//! its top-level class or function) whose line spans hold the changed lines of the original file,
//! looked up in the code graph of the original code. Rows may instead carry `gold_files` /
//! `gold_modules` / `gold_functions` (the development set does, so that no third-party code is
//! stored in it). Accuracy is LocAgent's: an instance counts at k only if all of its gold
//! locations are among the top k. This module does not print.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rigor_graph::localize::{Level, Location, Retriever};
use rigor_graph::{CodeGraph, Index, NodeKind};
use serde::Serialize;

use crate::dataset::Instance;
use crate::repos::{Accept, find_clone};

/// Gold locations at the three levels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Gold {
    /// Changed files.
    pub files: BTreeSet<String>,
    /// Top-level entities holding changed lines.
    pub modules: BTreeSet<String>,
    /// Functions and methods holding changed lines.
    pub functions: BTreeSet<String>,
}

/// The result of one instance.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceResult {
    /// The instance.
    pub instance_id: String,
    /// Gold locations.
    pub gold: Gold,
    /// 1-based rank at which all gold locations are covered, per level (None: not within the top 10,
    /// or no gold at that level).
    pub file_rank: Option<usize>,
    /// See `file_rank`.
    pub module_rank: Option<usize>,
    /// See `file_rank`.
    pub function_rank: Option<usize>,
    /// Top 5 files predicted.
    pub top_files: Vec<String>,
    /// Localization time in milliseconds (query only; indexing excluded).
    pub query_ms: f64,
    /// Why the instance could not be evaluated.
    pub error: Option<String>,
}

/// Acc@k per level.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Accuracy {
    /// Instances with gold at this level.
    pub n: usize,
    /// Accuracy at 1, 3, 5, 10.
    pub at: [f64; 4],
}

/// The whole evaluation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LocalizationReport {
    /// Per instance.
    pub instances: Vec<InstanceResult>,
    /// File level.
    pub file: Accuracy,
    /// Module level.
    pub module: Accuracy,
    /// Function level.
    pub function: Accuracy,
}

/// The cut-offs reported.
pub const KS: [usize; 4] = [1, 3, 5, 10];

/// Gold locations of a patch on a graph of the original code.
pub fn gold_from_patch(g: &CodeGraph, patch: &str) -> Gold {
    let mut gold = Gold::default();
    for (path, line) in rigor_git::diff::original_lines(patch) {
        gold.files.insert(path.clone());
        let (Some(line), Some(fi)) = (line, g.file_index(&path)) else { continue };
        if let Some(e) = g.entity_at(fi, line) {
            gold.modules.insert(g.node(g.top_level(e)).id.clone());
            if matches!(g.node(e).kind, NodeKind::Function | NodeKind::Method) {
                gold.functions.insert(g.node(e).id.clone());
            }
        }
    }
    gold
}

/// Exports `commit` of the git repository `repo` into `dest` (`git archive | tar -x`).
fn export_commit(repo: &Path, commit: &str, dest: &Path) -> Result<(), String> {
    let archive = rigor_git::Git::checkout(repo)
        .command(&["archive", "--format=tar", commit])
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !archive.status.success() {
        return Err(format!(
            "git archive {commit} in {} failed: {}",
            repo.display(),
            String::from_utf8_lossy(&archive.stderr).trim()
        ));
    }
    let mut tar = std::process::Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dest)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    if let Some(mut stdin) = tar.stdin.take() {
        use std::io::Write as _;
        stdin.write_all(&archive.stdout).map_err(|e| format!("tar: {e}"))?;
    }
    let status = tar.wait().map_err(|e| format!("tar: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("tar -x into {} failed", dest.display())) }
}

/// Rank (1-based) at which every gold id appears among `ranked`, if within it.
fn covering_rank(ranked: &[String], gold: &BTreeSet<String>) -> Option<usize> {
    if gold.is_empty() {
        return None;
    }
    let mut worst = 0;
    for g in gold {
        worst = worst.max(ranked.iter().position(|r| r == g)? + 1);
    }
    Some(worst)
}

/// Evaluates one instance whose code is at `dir`.
pub fn evaluate_dir(inst: &Instance, dir: &Path) -> InstanceResult {
    let mut index = Index::in_memory(dir);
    if let Err(e) = index.update() {
        return failed(inst, e.to_string());
    }
    let graph: Arc<CodeGraph> = index.graph();
    let mut gold = if inst.patch.trim().is_empty() { Gold::default() } else { gold_from_patch(&graph, &inst.patch) };
    gold.files.extend(inst.gold_files.iter().cloned());
    gold.modules.extend(inst.gold_modules.iter().cloned());
    gold.functions.extend(inst.gold_functions.iter().cloned());
    let r = Retriever::new(graph);
    let start = Instant::now();
    let files = r.localize(&inst.problem_statement, Level::File, 10);
    let modules = r.localize(&inst.problem_statement, Level::Module, 10);
    let functions = r.localize(&inst.problem_statement, Level::Function, 10);
    let query_ms = start.elapsed().as_secs_f64() * 1000.0;
    let ids = |v: &[Location]| v.iter().map(|l| l.id.clone()).collect::<Vec<_>>();
    let file_ids = ids(&files);
    InstanceResult {
        instance_id: inst.instance_id.clone(),
        file_rank: covering_rank(&file_ids, &gold.files),
        module_rank: covering_rank(&ids(&modules), &gold.modules),
        function_rank: covering_rank(&ids(&functions), &gold.functions),
        top_files: file_ids.into_iter().take(5).collect(),
        gold,
        query_ms,
        error: None,
    }
}

fn failed(inst: &Instance, error: String) -> InstanceResult {
    InstanceResult {
        instance_id: inst.instance_id.clone(),
        gold: Gold::default(),
        file_rank: None,
        module_rank: None,
        function_rank: None,
        top_files: Vec::new(),
        query_ms: 0.0,
        error: Some(error),
    }
}

/// Evaluates one row against the repositories under `repos`.
pub fn evaluate(inst: &Instance, repos: &Path) -> InstanceResult {
    let as_it_is = inst.base_commit.trim().is_empty();
    let accept = if as_it_is { Accept::Directory } else { Accept::Git };
    let repo = match find_clone(repos, &inst.repo, accept) {
        Ok(repo) => repo,
        Err(e) => return failed(inst, e.to_string()),
    };
    if as_it_is {
        return evaluate_dir(inst, &repo);
    }
    // A fresh directory of its own (the instance id is not trusted to be a safe file name);
    // removed when dropped.
    let tmp = match tempfile::Builder::new().prefix("rigor-localize-eval-").tempdir() {
        Ok(tmp) => tmp,
        Err(e) => return failed(inst, format!("cannot create a temporary directory: {e}")),
    };
    match export_commit(&repo, &inst.base_commit, tmp.path()) {
        Ok(()) => evaluate_dir(inst, tmp.path()),
        Err(e) => failed(inst, e),
    }
}

/// Summarises per-instance results into Acc@k.
pub fn summarize(instances: Vec<InstanceResult>) -> LocalizationReport {
    let acc = |pick: &dyn Fn(&InstanceResult) -> (bool, Option<usize>)| {
        let mut a = Accuracy::default();
        let mut hits = [0usize; 4];
        for r in &instances {
            let (has_gold, rank) = pick(r);
            if !has_gold && r.error.is_none() {
                continue;
            }
            a.n += 1;
            for (i, k) in KS.iter().enumerate() {
                if rank.is_some_and(|x| x <= *k) {
                    hits[i] += 1;
                }
            }
        }
        for (at, hit) in a.at.iter_mut().zip(hits) {
            *at = if a.n == 0 { 0.0 } else { hit as f64 / a.n as f64 };
        }
        a
    };
    let file = acc(&|r| (!r.gold.files.is_empty(), r.file_rank));
    let module = acc(&|r| (!r.gold.modules.is_empty(), r.module_rank));
    let function = acc(&|r| (!r.gold.functions.is_empty(), r.function_rank));
    LocalizationReport { instances, file, module, function }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covering_rank_needs_every_gold_location() {
        let ranked: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let gold: BTreeSet<String> = ["a", "c"].iter().map(|s| s.to_string()).collect();
        assert_eq!(covering_rank(&ranked, &gold), Some(3));
        let missing: BTreeSet<String> = ["z"].iter().map(|s| s.to_string()).collect();
        assert_eq!(covering_rank(&ranked, &missing), None);
    }
}
