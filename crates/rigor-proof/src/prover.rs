//! The prover: a tool source whose `finish` check proves the patch, and whose edit check guards
//! the existing tests.
//!
//! When the model calls `finish`, rigor itself, in the sandbox:
//! 1. takes the workspace's changes against its starting state and splits them into the fix and
//!    the tests (test files by convention);
//! 2. refuses changes to existing tests that delete them, skip them or drop assertions;
//! 3. finds the reproduction: the tests the change adds or changes;
//! 4. runs them on the original code (a fresh export of the starting state plus the new test
//!    files): each must fail for the issue's reason ([`crate::failure`]);
//! 5. runs them on the patched code (a fresh export with the changes): each must pass;
//! 6. runs the related existing tests (the test modules of the changed files and the test files
//!    that import them; every test for cargo) on both: a test that passed before must pass after.
//!
//! A failed step sends the model back with the evidence (the `finish` call's observation), at
//! most [`ProofSettings::max_rejections`] times; after that the run finishes with the patch
//! marked unproven. Every run of the check leaves its [`Proof`], read by the front end with
//! [`Prover::proof`]. Exports are temporary directories outside the workspace, so the proof's
//! test runs never write into the patch, and nothing the model wrote runs outside the sandbox.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rigor_protocol::{Event, ProofPhase, StepOutcome};
use rigor_sandbox::SandboxMode;
use rigor_testing::parsers::TestStatus;
use rigor_testing::project::{Project, Runner, TestOutcome};
use rigor_testing::runner::{TestCommand, TestRunner};
use rigor_tools::confined::Confined;
use rigor_tools::edit::EditCheck;
use rigor_tools::{Contribution, FinishCheck, FinishVerdict, ToolContext, ToolSource};
use sha2::{Digest, Sha256};

use crate::failure::{Failure, failure_of};
use crate::proof::{
    CommandRecord, HashedFile, PROOF_SCHEMA_VERSION, Proof, ProofStatus, Regressions, Reproduction, TestResult,
};
use crate::tests_in::{TestFn, compare, has_inline_tests, is_test_file, test_id, with_tests_of};

/// How hard the prover tries.
#[derive(Debug, Clone)]
pub struct ProofSettings {
    /// `finish` attempts sent back before the run may finish unproven.
    pub max_rejections: u32,
    /// Wall-clock limit of one test run.
    pub test_timeout: Duration,
    /// Run every existing test as the regression set, not only the related ones.
    pub full_suite: bool,
}

impl Default for ProofSettings {
    fn default() -> Self {
        Self { max_rejections: 3, test_timeout: Duration::from_secs(600), full_suite: false }
    }
}

/// What the model is told about the proof (a section of the system prompt).
pub const PROOF_PROMPT: &str = "rigor proves your patch when you call `finish`: it runs, itself, the tests you added \
or changed on the original code (they must fail the way the issue describes: an assertion or the exception the issue \
names, not an import or syntax error) and on your fix (they must pass), plus the existing tests related to the files \
you changed (those that passed must still pass). So before you fix, add a test in the repository's own test style \
and place that reproduces the issue. Never delete, skip or weaken an existing test. If `finish` comes back with \
evidence, act on it and call `finish` again.";

/// The prover of one run (see the module documentation).
#[derive(Clone)]
pub struct Prover {
    inner: Arc<Inner>,
}

struct Inner {
    settings: ProofSettings,
    state: Mutex<State>,
    /// What the last attempt that found a reproduction checked (for cross-validation).
    checked: Mutex<Option<Arc<Checked>>>,
}

/// What one attempt found, kept to run its reproduction against other candidates' fixes and
/// theirs against its fix.
pub(crate) struct Checked {
    /// The starting state.
    pub baseline: Arc<dyn rigor_tools::Baseline>,
    /// How tests were run.
    pub runner: TestRunner,
    /// The project's runner.
    pub project: Project,
    /// Every changed file with its new content (`None`: deleted).
    pub changes: Changes,
    /// The reproduction's test ids (those that failed for the issue's reason).
    pub reproduction: Vec<String>,
}

#[derive(Default)]
struct State {
    issue: String,
    rejections: u32,
    proof: Option<Proof>,
}

impl Prover {
    /// A prover with `settings`.
    pub fn new(settings: ProofSettings) -> Self {
        Self { inner: Arc::new(Inner { settings, state: Mutex::default(), checked: Mutex::default() }) }
    }

    /// What the last attempt with a reproduction checked.
    pub(crate) fn checked(&self) -> Option<Arc<Checked>> {
        self.inner.checked.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The proof of the last `finish` attempt (`None`: the model never called `finish`).
    pub fn proof(&self) -> Option<Proof> {
        self.inner.state().proof.clone()
    }
}

impl Inner {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ToolSource for Prover {
    fn name(&self) -> &str {
        "proof"
    }

    fn contribute(&self, _workspace: &Path, issue: &str, _shape: &rigor_tools::PromptShape) -> Contribution {
        self.inner.state().issue = issue.to_string();
        Contribution {
            tools: Vec::new(),
            prompt_section: PROOF_PROMPT.to_string(),
            edit_check: Some(Arc::new(TestGuard::default())),
            finish_check: Some(self.inner.clone()),
            ..Contribution::default()
        }
    }
}

/// Refuses edits of the `edit` tool that delete, skip or weaken a test that existed before the
/// run. A test file's content before its first edit in the run stands for its starting state, so
/// the model may rework the tests it added itself.
#[derive(Default)]
struct TestGuard {
    originals: Mutex<std::collections::HashMap<PathBuf, Option<String>>>,
}

impl EditCheck for TestGuard {
    fn check(&self, path: &Path, before: Option<&str>, after: &str) -> Result<(), String> {
        let shown = path.to_string_lossy();
        if !is_test_file(&shown) && !before.is_some_and(|b| has_inline_tests(&shown, b)) {
            return Ok(());
        }
        let mut originals = self.originals.lock().unwrap_or_else(|p| p.into_inner());
        let original = originals.entry(path.to_path_buf()).or_insert_with(|| before.map(str::to_string));
        let Some(original) = original.as_deref() else { return Ok(()) };
        let violations = compare(&shown, Some(original), after).violations;
        if violations.is_empty() {
            return Ok(());
        }
        Err(format!(
            "refused: {}. Existing tests guard behaviour the fix must keep: add new tests instead of changing \
             these.",
            violations.join("; ")
        ))
    }
}

#[async_trait]
impl FinishCheck for Inner {
    async fn check(&self, ctx: &ToolContext, _summary: &str) -> FinishVerdict {
        let issue = self.state().issue.clone();
        let started = Instant::now();
        let outcome = Attempt::new(ctx, &self.settings, &self.checked).prove(&issue, self.settings.full_suite).await;
        let mut state = self.state();
        let (mut proof, rejected) = match outcome {
            Ok(proof) => (proof, None),
            Err(rejection) => {
                let (proof, evidence) = *rejection;
                (proof, Some(evidence))
            }
        };
        proof.rejections = state.rejections;
        proof.secs = started.elapsed().as_secs_f64();
        let verdict = match rejected {
            None => {
                let note = format!("rigor proved the patch: {}", proof.reason);
                FinishVerdict::Accept { note }
            }
            Some(evidence) if state.rejections < self.settings.max_rejections => {
                state.rejections += 1;
                FinishVerdict::Continue {
                    evidence: format!(
                        "not finished: rigor could not prove the patch. {evidence}\nFix this, then call `finish` \
                         again ({} attempt(s) left before the patch is delivered as unproven).",
                        self.settings.max_rejections + 1 - state.rejections
                    ),
                }
            }
            Some(evidence) => FinishVerdict::Accept { note: format!("delivered unproven: {evidence}") },
        };
        state.proof = Some(proof);
        verdict
    }
}

/// One proof attempt.
struct Attempt<'a> {
    ctx: &'a ToolContext,
    runner: TestRunner,
    proof: Proof,
    checked: &'a Mutex<Option<Arc<Checked>>>,
    /// When the current step began.
    step_started: Instant,
    /// Why no environment could be built for the project, if that was tried and failed.
    env_note: Option<String>,
}

/// A failed step: the proof so far and the evidence for the model.
type Rejection = Box<(Proof, String)>;

/// A changed file and its new content (`None`: deleted).
pub(crate) type Change = (String, Option<Vec<u8>>);

/// Every changed file of a patch.
pub(crate) type Changes = Vec<Change>;

/// Test files and their tests, as (path, test) pairs.
type Tests = Vec<(String, TestFn)>;

impl<'a> Attempt<'a> {
    fn new(ctx: &'a ToolContext, settings: &ProofSettings, checked: &'a Mutex<Option<Arc<Checked>>>) -> Self {
        let mut sandbox = ctx.sandbox.settings().clone();
        if ctx.sandbox.mode() == SandboxMode::Off {
            sandbox.mode = SandboxMode::Off;
        }
        sandbox.network = false;
        let proof = Proof { schema_version: PROOF_SCHEMA_VERSION, ..Proof::default() };
        let runner = TestRunner::new(settings.test_timeout, sandbox);
        Self { ctx, runner, proof, checked, step_started: Instant::now(), env_note: None }
    }

    /// Reports a step of the proof into the run's event stream.
    fn step(&mut self, phase: ProofPhase, outcome: StepOutcome, detail: String) {
        let secs = self.step_started.elapsed().as_secs_f64();
        self.ctx.emit(Event::ProofStep { phase, outcome, detail, secs });
        self.step_started = Instant::now();
    }

    fn reject(&mut self, reason: &str, evidence: String) -> Result<Proof, Rejection> {
        self.proof.status = ProofStatus::Unproven;
        self.proof.reason = reason.to_string();
        Err(Box::new((std::mem::take(&mut self.proof), evidence)))
    }

    /// An attempt that cannot prove anything in this repository: the run may finish, unproven.
    fn unprovable(&mut self, reason: String) -> Result<Proof, Rejection> {
        self.proof.status = ProofStatus::Unproven;
        self.proof.reason = reason;
        Ok(std::mem::take(&mut self.proof))
    }

    async fn prove(mut self, issue: &str, full_suite: bool) -> Result<Proof, Rejection> {
        let Some(baseline) = self.ctx.baseline.clone() else {
            return self.unprovable("the run has no record of its starting state".into());
        };
        let diff = match baseline.diff().await {
            Ok(diff) => diff,
            Err(e) => return self.unprovable(format!("cannot read the changes: {e}")),
        };
        let (test_patch, fix_patch) = split_patch(&diff);
        (self.proof.test_patch, self.proof.fix_patch) = (test_patch, fix_patch);
        if self.proof.fix_patch.trim().is_empty() {
            self.step(ProofPhase::Changes, StepOutcome::Failed, "no change outside test files".into());
            return self.reject("no fix", "The workspace has no change outside test files: fix the code.".into());
        }
        let scratch = match tempfile::Builder::new().prefix("rigor-proof-").tempdir() {
            Ok(dir) => dir,
            Err(e) => return self.unprovable(format!("cannot create a scratch directory: {e}")),
        };
        let (original, patched) = (scratch.path().join("original"), scratch.path().join("patched"));
        let exported = async {
            for dir in [&original, &patched] {
                std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
                baseline.export(dir).await?;
            }
            carry_changes(&self.ctx.workspace, &patched, &diff)
        };
        let changes = match exported.await {
            Ok(changes) => changes,
            Err(e) => return self.unprovable(format!("cannot prepare the original and patched code: {e}")),
        };
        let changed: Vec<String> = changes.iter().filter(|(_, c)| c.is_some()).map(|(p, _)| p.clone()).collect();

        // The reproduction and the guard.
        let mut candidates: Tests = Vec::new();
        let mut violations = Vec::new();
        let mut test_files = Vec::new();
        // Tests live in test files, and (Rust) in the inline test modules of source files.
        let mut inline = Vec::new();
        for path in &changed {
            let Ok(after) = std::fs::read_to_string(patched.join(path)) else { continue };
            if !is_test_file(path) && !has_inline_tests(path, &after) {
                continue;
            }
            if !is_test_file(path) {
                inline.push(path.clone());
            }
            let before = std::fs::read_to_string(original.join(path)).ok();
            let changes = compare(path, before.as_deref(), &after);
            violations.extend(changes.violations);
            candidates.extend(changes.added_or_changed.into_iter().map(|t| (path.clone(), t)));
            test_files.push(HashedFile { path: path.clone(), sha256: sha256(after.as_bytes()) });
        }
        if !violations.is_empty() {
            self.step(ProofPhase::Changes, StepOutcome::Failed, violations.join("; "));
            let evidence = format!(
                "The change weakens existing tests, which rigor refuses: {}. Restore them; add new tests instead.",
                violations.join("; ")
            );
            return self.reject("existing tests were deleted, skipped or weakened", evidence);
        }
        if candidates.is_empty() {
            self.step(ProofPhase::Changes, StepOutcome::Failed, "no test added or changed".into());
            return self.reject(
                "no reproduction test",
                "No test was added or changed, so nothing shows that the issue is fixed. Add a test in the \
                 repository's test style that fails on the original code the way the issue describes and passes \
                 with your fix."
                    .into(),
            );
        }
        let project = match Project::detect(&patched) {
            Ok(project) => self.with_interpreter(project).await,
            Err(e) => return self.unprovable(e.to_string()),
        };
        self.proof.environment = match &project.python {
            Some(python) => format!("{} with {}", project.runner.name(), python.display()),
            None => project.runner.name().to_string(),
        };
        if let Some(note) = self.env_note.take() {
            self.proof.environment.push_str(&format!("; {note}"));
        }

        let detail = format!(
            "{} new or changed test(s) in {} file(s); the fix changes {} file(s)",
            candidates.len(),
            test_files.len(),
            changed.len() - test_files.len() + inline.len()
        );
        self.step(ProofPhase::Changes, StepOutcome::Passed, detail);

        // The reproduction on the original code, with the new tests.
        for file in &test_files {
            let copied = std::fs::read(patched.join(&file.path)).and_then(|bytes| {
                if !inline.contains(&file.path) {
                    return write_under(&original, &file.path, &bytes);
                }
                // A source file with its tests inside: the original code with the new test module.
                let before = std::fs::read_to_string(original.join(&file.path)).unwrap_or_default();
                let spliced = with_tests_of(&before, &String::from_utf8_lossy(&bytes)).unwrap_or(before);
                write_under(&original, &file.path, spliced.as_bytes())
            });
            if let Err(e) = copied {
                return self.unprovable(format!("cannot copy {} to the original code: {e}", file.path));
            }
        }
        let ids: Vec<String> = candidates.iter().map(|(path, test)| test_id(project.runner, path, test)).collect();
        let before = match self.run(&project, &original, "original", &ids).await {
            Ok(run) => run,
            Err(e) => return self.unprovable(e),
        };
        let mut reproduction =
            Reproduction { files: test_files, before_excerpt: excerpt(&before.log), ..Default::default() };
        let mut reasons = Vec::new();
        let mut valid = Vec::new();
        for id in &ids {
            let (id, status) = (id.clone(), before.status(id));
            let failure =
                if before.timed_out { Some(Failure::Timeout) } else { failure_of(project.runner, &before.log, &id) };
            let passed = matches!(status, Some(TestStatus::Passed | TestStatus::Xfail));
            let judged = match (&failure, passed) {
                (_, true) => Err("it passes on the original code, so it does not reproduce the issue".to_string()),
                (Some(failure), false) => failure.reproduces(issue),
                (None, false) if status.is_none() => Err("the runner did not report it (it was not collected)".into()),
                (None, false) => Err("it fails, but the output does not say why".into()),
            };
            match judged {
                Ok(()) => valid.push(id.clone()),
                Err(why) => reasons.push(format!("- {id}: {why}")),
            }
            let status = status.map_or("MISSING", TestStatus::as_str).to_string();
            reproduction.before.push(TestResult { id, status, failure });
        }
        if valid.is_empty() {
            self.step(
                ProofPhase::ReproductionBefore,
                StepOutcome::Failed,
                format!("none of {} test(s) reproduces the issue", ids.len()),
            );
            self.proof.reproduction = Some(reproduction);
            let evidence = format!(
                "No test reproduces the issue on the original code:\n{}\nOutput on the original code:\n{}",
                reasons.join("\n"),
                excerpt(&before.log)
            );
            return self.reject("no test reproduces the issue", evidence);
        }
        reproduction.before.retain(|t| valid.contains(&t.id));
        let detail = format!("{} of {} test(s) fail as the issue describes", valid.len(), ids.len());
        self.step(ProofPhase::ReproductionBefore, StepOutcome::Passed, detail);
        *self.checked.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(Checked {
            baseline: baseline.clone(),
            runner: self.runner.clone(),
            project: project.clone(),
            changes: changes.clone(),
            reproduction: valid.clone(),
        }));

        // The reproduction on the patched code.
        let after = match self.run(&project, &patched, "patched", &valid).await {
            Ok(run) => run,
            Err(e) => return self.unprovable(e),
        };
        for id in &valid {
            let (id, status) = (id.clone(), after.status(id));
            let failure = failure_of(project.runner, &after.log, &id);
            let status = status.map_or("MISSING", TestStatus::as_str).to_string();
            reproduction.after.push(TestResult { id, status, failure });
        }
        let still_failing: Vec<String> =
            reproduction.after.iter().filter(|t| !t.passed()).map(|t| format!("- {} ({})", t.id, t.status)).collect();
        self.proof.reproduction = Some(reproduction);
        if !still_failing.is_empty() {
            self.step(
                ProofPhase::ReproductionAfter,
                StepOutcome::Failed,
                format!("{} still fail", still_failing.len()),
            );
            let evidence = format!(
                "The reproduction still fails with your fix:\n{}\nOutput with the fix:\n{}",
                still_failing.join("\n"),
                excerpt(&after.log)
            );
            return self.reject("the reproduction fails on the patched code", evidence);
        }

        self.step(ProofPhase::ReproductionAfter, StepOutcome::Passed, format!("{} test(s) pass", valid.len()));

        // The related existing tests on both.
        let whole_suite = project.runner == Runner::Cargo || (full_suite && !project.runner.is_python());
        let (files, regression_ids) = if whole_suite {
            (vec!["every test of the project".into()], Vec::new())
        } else {
            let (tree, fix) = (original.clone(), self.proof.fix_patch.clone());
            let by_graph = tokio::task::spawn_blocking(move || crate::related::graph_related(&tree, &fix));
            let by_graph = by_graph.await.unwrap_or_default();
            crate::related::related_tests(&original, &changed, &project, &ids, (full_suite, &by_graph))
        };
        if !regression_ids.is_empty() || whole_suite {
            let before = self.run(&project, &original, "original", &regression_ids).await;
            let after = self.run(&project, &patched, "patched", &regression_ids).await;
            let (before, after) = match (before, after) {
                (Ok(before), Ok(after)) => (before, after),
                (Err(e), _) | (_, Err(e)) => return self.unprovable(e),
            };
            let ids = if regression_ids.is_empty() { all_ids(&before, &ids) } else { regression_ids };
            let regressions = compare_runs(&before, &after, &ids, files);
            let broken = regressions.broken.clone();
            self.proof.regressions = regressions;
            if !broken.is_empty() {
                self.step(ProofPhase::Regressions, StepOutcome::Failed, format!("broken: {}", broken.join(", ")));
                let evidence = format!(
                    "Your change breaks existing tests that passed on the original code: {}\nOutput with the fix:\n{}",
                    broken.join(", "),
                    excerpt(&after.log)
                );
                return self.reject("related tests fail on the patched code", evidence);
            }
        }
        let checked = self.proof.regressions.before.len();
        match checked {
            0 => self.step(ProofPhase::Regressions, StepOutcome::Skipped, "no related existing tests".into()),
            n => self.step(ProofPhase::Regressions, StepOutcome::Passed, format!("{n} related test(s), none broken")),
        }
        let shown = self.proof.reproduction.as_ref().map(|r| r.before.len()).unwrap_or(0);
        self.proof.status = ProofStatus::Proven;
        self.proof.reason = format!(
            "{shown} reproduction test(s) fail on the original code and pass with the fix; {} related test(s) \
             checked, none broken",
            self.proof.regressions.before.len()
        );
        Ok(self.proof)
    }

    /// The interpreter of a Python project: the run's own environment, else one in the user's
    /// checkout, else in the workspace (an in-repository virtual environment is usually ignored by
    /// git, so neither the exported code nor a worktree has it), else one rigor builds with the
    /// project's dependencies (`EnvCache::for_project`). Whether pytest is importable by it decides pytest vs
    /// unittest; the probe runs in the sandbox (the interpreter may be one the model wrote).
    async fn with_interpreter(&mut self, mut project: Project) -> Project {
        if !project.runner.is_python() {
            return project;
        }
        // The run's own environment first (the evaluation harness activates the instance's in
        // the agent's shell); only its interpreter: its PYTHONPATH names the workspace, and each
        // test run imports the code of the directory it runs in.
        let active = self.ctx.shell_env.iter().find(|(k, _)| k == "VIRTUAL_ENV").map(|(_, v)| PathBuf::from(v));
        if let Some(python) = active.map(|venv| venv.join("bin/python")).filter(|p| p.is_file()) {
            project.python = Some(python);
        }
        // The user's checkout before the workspace: the model cannot write there.
        let checkout = self.ctx.baseline.as_ref().map(|b| b.checkout().to_path_buf());
        let roots = checkout.into_iter().chain(std::iter::once(self.ctx.workspace.clone()));
        for root in roots.filter(|_| project.python.is_none()) {
            let mut candidate = Project { root, ..project.clone() };
            candidate.find_env();
            if candidate.python.is_some() {
                project.python = candidate.python;
                break;
            }
        }
        // None: the cached environment of the project's dependency files (built once, confined
        // with the network), from the user's checkout. A failed build leaves `python3`.
        if project.python.is_none() {
            use rigor_testing::env::{EnvCache, Installer, rigor_cache_dir};
            let root = self.ctx.baseline.as_ref().map_or_else(|| project.root.clone(), |b| b.checkout().to_path_buf());
            let build = rigor_sandbox::SandboxSettings { network: true, ..self.runner.sandbox.clone() };
            let cache = EnvCache::new(rigor_cache_dir().join("envs"), Installer::Uv).with_sandbox(build);
            match cache.for_project(&Project { root, ..project.clone() }).await {
                Ok(Some(env)) => project.python = env.interpreter(),
                Ok(None) => {}
                // Said in the proof, which then runs with `python3` (its tests may still pass).
                Err(e) => {
                    self.env_note =
                        Some(format!("the project environment could not be built: {e} ({})", e.log.display()))
                }
            }
        }
        if project.runner != Runner::Pytest {
            return project;
        }
        let python = project.python.clone().unwrap_or_else(|| "python3".into());
        let scratch = tempfile::Builder::new().prefix("rigor-probe-").tempdir();
        let Ok(scratch) = scratch else { return project };
        let mut probe = TestCommand::new(&python.to_string_lossy(), &["-c", "import pytest"], scratch.path());
        probe.readable.extend(project.readable());
        if !self.runner.run(&probe).await.is_ok_and(|r| r.exit_code == Some(0)) {
            project.runner = Runner::Unittest;
        }
        project
    }

    /// Runs `ids` of `project` in `dir` (`code`: which code it is, for the record).
    async fn run(&mut self, project: &Project, dir: &Path, code: &str, ids: &[String]) -> Result<TestOutcome, String> {
        let outcome = self.runner.run_ids(project, dir, ids).await?;
        self.proof.commands.push(CommandRecord {
            code: code.to_string(),
            command: project.command(ids).join(" "),
            exit_code: outcome.exit_code,
            secs: outcome.elapsed.as_secs_f64(),
        });
        Ok(outcome)
    }
}

/// The diff split into (test files, the rest), each a diff of its own.
pub fn split_patch(diff: &str) -> (String, String) {
    let (mut tests, mut fix) = (String::new(), String::new());
    for section in file_sections(diff) {
        let path = section
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("diff --git a/"))
            .and_then(|l| l.split(" b/").next())
            .unwrap_or("");
        if is_test_file(path) { tests.push_str(section) } else { fix.push_str(section) }
    }
    (tests, fix)
}

/// The `diff --git` sections of a diff.
fn file_sections(diff: &str) -> Vec<&str> {
    let mut starts: Vec<usize> = diff
        .match_indices("diff --git ")
        .map(|(i, _)| i)
        .filter(|&i| i == 0 || diff.as_bytes()[i - 1] == b'\n')
        .collect();
    starts.push(diff.len());
    starts.windows(2).map(|w| &diff[w[0]..w[1]]).collect()
}

/// Puts the workspace's version of every file the diff changes into `patched` (read confined to
/// the workspace: a symlink or special file the model made is not followed) and removes deleted
/// ones; returns every changed path with its new content (`None`: deleted).
fn carry_changes(workspace: &Path, patched: &Path, diff: &str) -> Result<Changes, String> {
    let source = Confined::open(workspace).map_err(|e| format!("cannot open the workspace: {e}"))?;
    let mut changes = Vec::new();
    for file in rigor_git::diff::parse(diff) {
        match (file.old_path, file.new_path) {
            (_, Some(path)) => {
                let bytes = source.read(Path::new(&path)).map_err(|e| e.explain(&path, workspace))?;
                changes.push((path, Some(bytes)));
            }
            (Some(path), None) => changes.push((path, None)),
            (None, None) => {}
        }
    }
    apply_changes(patched, changes.iter())?;
    Ok(changes)
}

/// Writes (or, for `None`, removes) each file under `root`.
pub(crate) fn apply_changes<'c>(root: &Path, changes: impl Iterator<Item = &'c Change>) -> Result<(), String> {
    for (path, content) in changes {
        match content {
            Some(bytes) => write_under(root, path, bytes).map_err(|e| format!("cannot write {path}: {e}"))?,
            None => {
                let _ = std::fs::remove_file(root.join(path));
            }
        }
    }
    Ok(())
}

/// Writes `bytes` at `rel` under `root`, refusing paths that leave it.
fn write_under(root: &Path, rel: &str, bytes: &[u8]) -> std::io::Result<()> {
    let target = Confined::open(root)?;
    if let Some(parent) = Path::new(rel).parent().filter(|p| !p.as_os_str().is_empty()) {
        let dir = root.join(parent);
        if !dir.starts_with(root) || parent.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
            return Err(std::io::Error::other(format!("{rel} leaves the directory")));
        }
        std::fs::create_dir_all(dir)?;
    }
    target.write(Path::new(rel), bytes).map_err(|e| std::io::Error::other(e.explain(rel, root)))
}

/// Every test a run reported but `exclude` (cargo: the whole suite is the regression set).
fn all_ids(run: &TestOutcome, exclude: &[String]) -> Vec<String> {
    run.statuses
        .keys()
        .filter(|k| !exclude.iter().any(|e| *k == e || k.rsplit("::").next() == Some(e.as_str())))
        .cloned()
        .collect()
}

/// The regression verdict of `ids` between a run on the original and one on the patched code.
fn compare_runs(before: &TestOutcome, after: &TestOutcome, ids: &[String], files: Vec<String>) -> Regressions {
    let status_text = |s: Option<TestStatus>| s.map_or("MISSING", TestStatus::as_str).to_string();
    let mut regressions = Regressions { files, ..Default::default() };
    for id in ids {
        let (was, now) = (before.status(id), after.status(id));
        let passed = |s: Option<TestStatus>| s.is_some_and(TestStatus::passes);
        if passed(was) && !passed(now) {
            regressions.broken.push(id.clone());
        } else if !passed(was) {
            regressions.failing_before.push(id.clone());
        }
        regressions.before.insert(id.clone(), status_text(was));
        regressions.after.insert(id.clone(), status_text(now));
    }
    regressions
}

/// The last 40 lines of a log (where runners put their failures and summary).
fn excerpt(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_splits_into_tests_and_fix() {
        let diff = "diff --git a/durations.py b/durations.py\n--- a/durations.py\n+++ b/durations.py\n@@ -1 +1 @@\n-a\n+b\ndiff --git a/test_durations.py b/test_durations.py\n--- a/test_durations.py\n+++ b/test_durations.py\n@@ -1 +1,2 @@\n x\n+y\n";
        let (tests, fix) = split_patch(diff);
        assert!(tests.starts_with("diff --git a/test_durations.py") && !tests.contains("durations.py b/durations.py"));
        assert!(fix.starts_with("diff --git a/durations.py") && !fix.contains("test_durations"));
    }

    #[test]
    fn the_guard_refuses_weakening_an_existing_test_through_the_editor() {
        let before = "def test_a():\n    assert f() == 1\n";
        let guard = TestGuard::default();
        let path = Path::new("tests/test_f.py");
        assert!(guard.check(path, Some(before), "def test_a():\n    pass\n").is_err());
        let added = format!("{before}\ndef test_b():\n    assert f(2) == 2\n");
        assert!(guard.check(path, Some(before), &added).is_ok());
        // Once test_b exists (the model added it), reworking it is not refused; test_a stays guarded.
        let reworked = format!("{before}\ndef test_c():\n    assert f(3) == 3\n");
        assert!(guard.check(path, Some(&added), &reworked).is_ok());
        assert!(guard.check(path, Some(&added), "def test_b():\n    assert f(2) == 2\n").is_err());
        assert!(guard.check(Path::new("src/f.py"), Some(before), "").is_ok(), "not a test file");
        let new_file = Path::new("tests/test_new.py");
        assert!(guard.check(new_file, None, &added).is_ok());
        assert!(guard.check(new_file, Some(&added), "").is_ok(), "a file the run created is the model's own");
    }
}
