//! The server's tools that run the repository's code: `run_tests` and `check_patch`.
//!
//! Both work in a scratch workspace, rigor's usual git worktree of the repository under
//! `.rigor/worktrees/` with the checkout's uncommitted changes carried over
//! ([`rigor_core::workspace::Workspace`]), removed when the call ends: the user's checkout is
//! never written, and tests that write files write them into the scratch copy. Tests run through
//! `rigor_testing` in the sandbox with the network off; `check_patch` is the proof of `rigor run`
//! ([`rigor_proof::prover::Prover`]) over the patched scratch workspace. This module knows
//! nothing of MCP transports; it turns requests into results or MCP errors.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rigor_core::workspace::{Workspace, WorkspaceMode, apply_patch_to_checkout};
use rigor_proof::proof::Proof;
use rigor_proof::prover::{ProofSettings, Prover};
use rigor_proof::related::{graph_related_files, related_tests};
use rigor_proof::tests_in::{is_test_file, test_functions, test_id};
use rigor_protocol::PromptProfile;
use rigor_sandbox::{Sandbox, SandboxSettings, SandboxSpec};
use rigor_testing::project::{Project, Runner};
use rigor_testing::runner::TestRunner;
use rigor_tools::confined::Confined;
use rigor_tools::{EventHook, FinishVerdict, PromptShape, ToolContext, ToolSource};
use rmcp::model::{CallToolResult, ErrorData};
use serde_json::{Map, Value, json};

use crate::server::{int_arg, list_arg, result, str_arg};

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

/// `check_patch`: `patch` (and an optional reproduction test file) applied to a scratch copy of
/// `root`, and the proof of `rigor run` on it. `events` receives the proof's steps.
pub async fn check_patch(
    root: &Path,
    sandbox: &SandboxSettings,
    args: &Map<String, Value>,
    events: Option<EventHook>,
) -> Result<CallToolResult, ErrorData> {
    let patch = str_arg(args, "patch", "the output of `git diff`")?;
    let issue = args.get("issue").and_then(Value::as_str).unwrap_or_default();
    let reproduction = match args.get("reproduction") {
        None | Some(Value::Null) => None,
        Some(Value::Object(r)) => {
            let path = str_arg(r, "path", "\"tests/test_issue.py\"")?;
            let content = str_arg(r, "content", "the test file's text")?;
            Some((path.to_string(), content.to_string()))
        }
        Some(other) => {
            return Err(ErrorData::invalid_params(
                format!("`reproduction` must be an object {{\"path\", \"content\"}} (a test file), got {other}"),
                None,
            ));
        }
    };
    let timeout = int_arg(args, "test_timeout_secs", 600, 1, 3600)?;
    let scratch = Scratch::create(root).await?;
    let outcome = check_in(&scratch.workspace, sandbox, patch, reproduction, issue, timeout, events).await;
    scratch.remove().await;
    outcome
}

async fn check_in(
    workspace: &Workspace,
    sandbox: &SandboxSettings,
    patch: &str,
    reproduction: Option<(String, String)>,
    issue: &str,
    timeout: usize,
    events: Option<EventHook>,
) -> Result<CallToolResult, ErrorData> {
    let patch = if patch.ends_with('\n') { patch.to_string() } else { format!("{patch}\n") };
    apply_patch_to_checkout(&workspace.tree_root, &patch).await.map_err(|e| {
        ErrorData::invalid_params(
            format!(
                "the patch does not apply to the repository's current files (HEAD with its uncommitted changes): \
                 {e}. Give a unified diff with paths relative to the top level (`git diff` output) against the \
                 files as they are now"
            ),
            None,
        )
    })?;
    if let Some((path, content)) = &reproduction {
        write_test(&workspace.tree_root, path, content)?;
    }
    let prover = Prover::new(ProofSettings { test_timeout: Duration::from_secs(timeout as u64), ..Default::default() });
    let Some(check) = prover
        .contribute(&workspace.dir, issue, &PromptShape { profile: PromptProfile::Full, section_tokens: 2000 })
        .finish_check
    else {
        return Err(ErrorData::internal_error("the prover offers no check", None));
    };
    let spec = SandboxSpec::new(&workspace.dir, sandbox.clone());
    let sandbox = match tokio::task::spawn_blocking(move || Sandbox::new(spec)).await {
        Ok(Ok(sandbox)) => sandbox,
        Ok(Err(e)) => return Err(ErrorData::internal_error(format!("cannot sandbox the tests: {e}"), None)),
        Err(e) => return Err(ErrorData::internal_error(format!("the sandbox probe crashed: {e}"), None)),
    };
    let mut ctx = ToolContext::new(&workspace.dir);
    ctx.sandbox = Arc::new(sandbox);
    ctx.baseline = Some(Arc::new(workspace.clone()));
    ctx.events = events;
    let verdict = check.check(&ctx, "").await;
    let Some(proof) = prover.proof() else {
        return Err(ErrorData::internal_error("the proof left no record", None));
    };
    let evidence = match verdict {
        FinishVerdict::Continue { evidence } => Some(evidence),
        FinishVerdict::Accept { .. } => None,
    };
    Ok(proof_result(&proof, evidence.as_deref()))
}

/// A test file written into the scratch tree (confined: a path leaving it is refused).
fn write_test(tree: &Path, path: &str, content: &str) -> Result<(), ErrorData> {
    let bad = |why: String| ErrorData::invalid_params(format!("cannot write the reproduction `{path}`: {why}"), None);
    let rel = Path::new(path);
    if rel.is_absolute() || rel.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
        return Err(bad("give a plain relative path inside the repository".into()));
    }
    if let Some(parent) = rel.parent() {
        std::fs::create_dir_all(tree.join(parent)).map_err(|e| bad(e.to_string()))?;
    }
    let confined = Confined::open(tree).map_err(|e| bad(e.to_string()))?;
    confined.write(rel, content.as_bytes()).map_err(|e| bad(e.explain(path, tree)))
}

/// A proof as a tool result: the proof record, and its summary as text (with the evidence of a
/// failed step).
pub(crate) fn proof_result(proof: &Proof, evidence: Option<&str>) -> CallToolResult {
    let mut text = format!("proof: {} ({})\n", proof.status.as_str(), proof.reason);
    for (key, value) in proof.summary_lines() {
        text.push_str(&format!("{key}: {value}\n"));
    }
    if let Some(evidence) = evidence {
        text.push_str(&format!("\n{evidence}\n"));
    }
    let mut structured = serde_json::to_value(proof).unwrap_or_default();
    if let (Value::Object(map), Some(evidence)) = (&mut structured, evidence) {
        map.insert("evidence".into(), Value::String(evidence.to_string()));
    }
    result(text, structured)
}
