//! The server's tools that run the repository's code: `run_tests`.
//!
//! Both work in a scratch workspace, rigor's usual git worktree of the repository under
//! `.rigor/worktrees/` with the checkout's uncommitted changes carried over
//! ([`rigor_core::workspace::Workspace`]), removed when the call ends: the user's checkout is
//! never written, and tests that write files write them into the scratch copy. Tests run through
//! `rigor_testing` in the sandbox with the network off. This module knows
//! nothing of MCP transports; it turns requests into results or MCP errors.

use std::path::Path;
use std::time::Duration;

use rigor_core::workspace::{Workspace, WorkspaceMode};
use rigor_proof::related::{graph_related_files, related_tests};
use rigor_proof::tests_in::{is_test_file, test_functions, test_id};
use rigor_sandbox::SandboxSettings;
use rigor_testing::project::{Project, Runner};
use rigor_testing::runner::TestRunner;
use rmcp::model::{CallToolResult, ErrorData};
use serde_json::{Map, Value, json};

use crate::server::{int_arg, list_arg, result};

/// A scratch workspace of the repository for one call, with its state directory.
struct Scratch {
    workspace: Workspace,
    _state: tempfile::TempDir,
}

impl Scratch {
    /// A fresh worktree of `root` at `HEAD` with the checkout's uncommitted changes.
    async fn create(root: &Path) -> Result<Self, ErrorData> {
        let state = tempfile::Builder::new()
            .prefix("rigor-mcp-")
            .tempdir()
            .map_err(|e| ErrorData::internal_error(format!("cannot create a scratch directory: {e}"), None))?;
        let id = format!("mcp-{}", rigor_core::run::new_run_id());
        let workspace =
            Workspace::create(root, &id, WorkspaceMode::Worktree, None, state.path()).await.map_err(|e| {
                ErrorData::invalid_request(
                    format!("cannot make a scratch copy of {} to run code in: {e}", root.display()),
                    None,
                )
            })?;
        Ok(Self { workspace, _state: state })
    }

    async fn remove(self) {
        if let Err(e) = self.workspace.remove().await {
            tracing::warn!("cannot remove the scratch worktree {}: {e}", self.workspace.tree_root.display());
        }
    }
}

/// How a runner names a test, for error messages.
fn id_format(runner: Runner) -> &'static str {
    match runner {
        Runner::Pytest => "`path/to/test_file.py::TestClass::test_name` or `path/to/test_file.py::test_name`",
        Runner::Unittest => "`module.TestClass.test_name` (the test file's dotted path without `.py`)",
        Runner::Django => "`module.TestClass.test_name`, relative to `tests/`",
        Runner::Cargo => "`module::test_name` as `cargo test` prints it",
        Runner::Go => "`TestName`",
        Runner::Jest | Runner::Vitest | Runner::Mocha => "the test's full title (`describe › name`)",
    }
}

/// The last lines of a log.
fn excerpt(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `run_tests`: the tests `test_ids`, and the tests of or related to `files`, run in a scratch
/// copy of `root` in the sandbox; their statuses.
pub async fn run_tests(
    root: &Path,
    sandbox: &SandboxSettings,
    args: &Map<String, Value>,
) -> Result<CallToolResult, ErrorData> {
    let chosen = list_arg(args, "test_ids")?;
    let files = list_arg(args, "files")?;
    if chosen.is_empty() && files.is_empty() {
        return Err(ErrorData::invalid_params(
            "give `test_ids` (tests to run) or `files` (source or test files whose related tests to run)",
            None,
        ));
    }
    let timeout = int_arg(args, "timeout_secs", 300, 1, 3600)?;
    let scratch = Scratch::create(root).await?;
    let outcome = run_tests_in(&scratch.workspace.dir, root, sandbox, &chosen, &files, timeout).await;
    scratch.remove().await;
    outcome
}

async fn run_tests_in(
    tree: &Path,
    checkout: &Path,
    sandbox: &SandboxSettings,
    chosen: &[String],
    files: &[String],
    timeout: usize,
) -> Result<CallToolResult, ErrorData> {
    let mut project = Project::detect(tree).map_err(|e| {
        ErrorData::invalid_request(format!("cannot run tests here: {e}. rigor runs pytest, unittest, Django, cargo, go, jest, mocha or vitest projects"), None)
    })?;
    // The interpreter: the active or in-checkout environment (a worktree does not carry an
    // ignored `.venv`).
    let mut in_checkout = Project { root: checkout.to_path_buf(), ..project.clone() };
    in_checkout.find_env();
    project.python = in_checkout.python;

    let mut ids: Vec<String> = chosen.to_vec();
    let mut sources = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(tree.join(file)) else {
            return Err(ErrorData::invalid_params(
                format!("no file `{file}` in the repository: give paths relative to its top level"),
                None,
            ));
        };
        if is_test_file(file) {
            ids.extend(test_functions(file, &text).iter().map(|t| test_id(project.runner, file, t)));
        } else {
            sources.push(file.clone());
        }
    }
    let mut related_files = Vec::new();
    if !sources.is_empty() {
        let (dir, changed) = (tree.to_path_buf(), sources.clone());
        let by_graph =
            tokio::task::spawn_blocking(move || graph_related_files(&dir, &changed)).await.unwrap_or_default();
        let (found, related) = related_tests(tree, &sources, &project, &ids, (false, &by_graph));
        related_files = found;
        ids.extend(related);
    }
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    if ids.is_empty() {
        return Err(ErrorData::invalid_params(
            format!(
                "no tests found in or related to {}: name tests with `test_ids` ({} for {})",
                files.join(", "),
                id_format(project.runner),
                project.runner.name()
            ),
            None,
        ));
    }

    let offline = SandboxSettings { network: false, ..sandbox.clone() };
    let runner = TestRunner::new(Duration::from_secs(timeout as u64), offline);
    let outcome = runner
        .run_ids(&project, tree, &ids)
        .await
        .map_err(|e| ErrorData::internal_error(format!("the tests could not be run: {e}"), None))?;
    let statuses: Vec<(String, Option<&'static str>)> =
        ids.iter().map(|id| (id.clone(), outcome.status(id).map(|s| s.as_str()))).collect();
    let missing: Vec<&str> = statuses.iter().filter(|(_, s)| s.is_none()).map(|(id, _)| id.as_str()).collect();
    if missing.len() == ids.len() && !outcome.timed_out {
        return Err(ErrorData::invalid_params(
            format!(
                "the {} runner reported none of the tests {}: check the ids ({}). Its output ends:\n{}",
                project.runner.name(),
                missing.join(", "),
                id_format(project.runner),
                excerpt(&outcome.log, 20)
            ),
            None,
        ));
    }
    let count = |wanted: &str| statuses.iter().filter(|(_, s)| *s == Some(wanted)).count();
    let passed = statuses.iter().filter(|(_, s)| matches!(s, Some("PASSED" | "XFAIL"))).count();
    let failed = statuses.len() - passed - missing.len() - count("SKIPPED");
    let command = project.command(&ids).join(" ");
    let mut text = format!(
        "{} ({}): {passed} passed, {failed} failed, {} skipped, {} not reported, in {:.1} s{}\n",
        project.runner.name(),
        command,
        count("SKIPPED"),
        missing.len(),
        outcome.elapsed.as_secs_f64(),
        if outcome.timed_out { format!(" (timed out after {timeout} s)") } else { String::new() }
    );
    for (id, status) in &statuses {
        text.push_str(&format!("{:<8} {id}\n", status.unwrap_or("MISSING")));
    }
    if failed > 0 || !missing.is_empty() || outcome.timed_out {
        text.push_str(&format!("\noutput (last lines):\n{}\n", excerpt(&outcome.log, 40)));
    }
    let tests: Vec<Value> =
        statuses.iter().map(|(id, status)| json!({"id": id, "status": status.unwrap_or("MISSING")})).collect();
    Ok(result(
        text,
        json!({
            "runner": project.runner.name(), "command": command, "tests": tests,
            "passed": passed, "failed": failed, "missing": missing, "related_files": related_files,
            "timed_out": outcome.timed_out, "exit_code": outcome.exit_code,
            "secs": outcome.elapsed.as_secs_f64(), "log_excerpt": excerpt(&outcome.log, 40),
        }),
    ))
}
