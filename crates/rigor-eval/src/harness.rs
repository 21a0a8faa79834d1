//! The evaluation run: every instance of a dataset, through worktree, environment, patch, tests,
//! log parsing and grading, with parallel workers, resume and per-instance records.
//!
//! [`Evaluation::run`] evaluates the selected instances with `workers` concurrent tasks. Each
//! instance is isolated: its own worktree and scratch directory under the run's scratch root,
//! its own processes (killed as a group on timeout or cancellation). A crash (a panic in a task)
//! is recorded as that instance's `error` and the run goes on. Each instance's result is written
//! last and atomically (`rigor.json`), so a resumed run (same `run_id`) skips exactly the
//! instances that finished and re-runs the others from scratch. Cancelling stops instances at
//! once, except one whose agent is working: the agent is interrupted (through the interrupt of
//! [`AgentSpec::Rigor`]) and the instance recorded as `interrupted` with the agent's record; a
//! resumed run evaluates it again.
//!
//! Per instance, in `logs/run_evaluation/<run_id>/<model>/<instance_id>/`: `patch.diff`,
//! `eval.sh` (the test part, runnable by hand in the worktree), `test_output.txt`,
//! `run_instance.log` (what the harness did), `report.json` (official shape, written when the
//! official harness would write one), `rigor.json` (status, timings, agent figures with the proof
//! status) and, when rigor's agent proved its patch, `proof.json`.
//! This module does not print; progress goes to a [`Progress`] implementation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rigor_protocol::RunStatus;
use rigor_sandbox::SandboxSettings;
use rigor_testing::env::EnvCache;
use rigor_testing::layer::install_layer;
use rigor_testing::parsers::LogParser;
use rigor_testing::runner::{TestCommand, TestRunner};
use rigor_testing::spec::ProjectKind;
use serde::{Deserialize, Serialize};

use crate::agent::AgentSpec;
use crate::dataset::{Instance, Prediction, model_dir_name};
use crate::grading::{self, EvalType, Grading};
use crate::patch;
use crate::prepared::Prepared;
use crate::record::{
    InstanceLog, InstanceResult, InstanceStatus, read_result, write_official_report, write_prediction, write_result,
};
use crate::repos::{CloneAt, Worktree, find_clone};
use crate::spec::{SpecRegistry, detect};

/// Where one instance is evaluated, and the flag its cancellation watches.
#[derive(Clone, Copy)]
struct Place<'a> {
    worktree: &'a Worktree,
    clone: &'a Path,
    dir: &'a Path,
    agent_working: &'a AtomicBool,
    progress: &'a dyn Progress,
}

/// What an evaluation grades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Predictions are code patches, graded with the dataset's tests (SWE-bench).
    #[default]
    Patch,
    /// Predictions are test patches, run on the original and the gold-patched code (SWT-bench).
    Swt,
}

/// Observes a run (the CLI draws a progress bar from it). Called from worker tasks.
pub trait Progress: Send + Sync {
    /// The run starts: `total` instances, `resumed` of them already finished earlier.
    fn started(&self, _total: usize, _resumed: usize) {}
    /// An instance begins.
    fn instance_started(&self, _instance_id: &str) {}
    /// An instance finished (also called for resumed ones, with `resumed = true`).
    fn instance_finished(&self, _result: &InstanceResult, _resumed: bool) {}
    /// A long step of an instance (`phase`: `environment`, `per-instance install`, `tests`) is
    /// still running after `elapsed` (every [`Evaluation::heartbeat`]).
    fn heartbeat(&self, _instance_id: &str, _phase: &str, _elapsed: Duration) {}
}

/// A [`Progress`] that observes nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

/// Settings of an evaluation run.
#[derive(Clone)]
pub struct Evaluation {
    /// Run id (names the log directory; the same id resumes).
    pub run_id: String,
    /// Directory holding `logs/run_evaluation/…` and the summary (official: the current directory).
    pub output: PathBuf,
    /// Directory of local clones.
    pub repos: PathBuf,
    /// Scratch root for worktrees (default `<cache>/scratch/<run_id>`).
    pub scratch: PathBuf,
    /// Environment specs.
    pub specs: Arc<SpecRegistry>,
    /// The environment cache.
    pub envs: EnvCache,
    /// Concurrent instances.
    pub workers: usize,
    /// Test run limit (default 1800 s).
    pub timeout: Duration,
    /// Grading rules.
    pub grading: Grading,
    /// Patch or SWT mode.
    pub mode: Mode,
    /// Produce patches with an agent instead of reading predictions.
    pub agent: Option<AgentSpec>,
    /// Keep worktrees after grading (for debugging).
    pub keep_worktrees: bool,
    /// The sandbox of test runs (they run the prediction's code): the worktree writable, the
    /// network off, the home hidden; `SandboxMode::Off` runs them unconfined.
    pub sandbox: SandboxSettings,
    /// Set to stop: running instances are cancelled (their processes killed) and not recorded.
    pub cancel: Arc<AtomicBool>,
    /// Which script runs an instance's tests: rigor's from the spec, or the dataset row's own.
    pub eval_script: EvalScript,
    /// How often a long step (an environment build, a per-instance install, a test run) reports
    /// that it is still going ([`Progress::heartbeat`]).
    pub heartbeat: Duration,
}

/// Which script runs an instance's tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EvalScript {
    /// rigor's `eval.sh` from the spec (the row's `eval_script` only when no spec exists).
    #[default]
    Spec,
    /// The row's `eval_script`, as the official harness runs it (paths and conda lines adapted).
    Dataset,
}

impl std::str::FromStr for EvalScript {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "spec" => Ok(EvalScript::Spec),
            "dataset" => Ok(EvalScript::Dataset),
            _ => Err(format!("unknown eval script {s:?}: use spec or dataset")),
        }
    }
}

/// How often long steps report by default.
pub const HEARTBEAT: Duration = Duration::from_secs(30);

/// Runs `step`, reporting `phase` of `instance_id` to `progress` every `every` until it is done.
async fn beating<T>(
    progress: &dyn Progress,
    instance_id: &str,
    phase: &str,
    every: Duration,
    step: impl std::future::Future<Output = T>,
) -> T {
    let started = Instant::now();
    let mut step = std::pin::pin!(step);
    let every = every.max(Duration::from_millis(1));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            out = &mut step => return out,
            _ = tick.tick() => progress.heartbeat(instance_id, phase, started.elapsed()),
        }
    }
}

/// One unit of work: an instance and its prediction (absent in agent mode until the agent runs).
#[derive(Debug, Clone)]
pub struct Task {
    /// The instance.
    pub instance: Instance,
    /// The prediction, if one was given.
    pub prediction: Option<Prediction>,
    /// The model name to record under.
    pub model: String,
    /// Why the instance's prediction could not be read (a bad row of the predictions file): the
    /// instance is then recorded as an `error` without being evaluated, never as an empty patch.
    pub invalid: Option<String>,
}

impl Evaluation {
    /// `logs/run_evaluation/<run_id>`.
    pub fn run_dir(&self) -> PathBuf {
        self.output.join("logs").join("run_evaluation").join(&self.run_id)
    }

    /// The per-instance layer of a task's environment (beside its worktree).
    fn layer_dir(&self, task: &Task) -> PathBuf {
        self.scratch.join(format!("{}__{}.venv", model_dir_name(&task.model), task.instance.instance_id))
    }

    /// The log directory of one instance.
    pub fn instance_dir(&self, model: &str, instance_id: &str) -> PathBuf {
        self.run_dir().join(model_dir_name(model)).join(instance_id)
    }

    /// Evaluates `tasks`, returning every instance's result in input order (resumed ones
    /// included). Stops early (returning what finished) when `cancel` is set.
    pub async fn run(&self, tasks: Vec<Task>, progress: Arc<dyn Progress>) -> Vec<InstanceResult> {
        let mut done: BTreeMap<usize, InstanceResult> = BTreeMap::new();
        let mut todo = Vec::new();
        for (i, task) in tasks.into_iter().enumerate() {
            match read_result(&self.instance_dir(&task.model, &task.instance.instance_id)) {
                Some(result) if result.status != InstanceStatus::Interrupted => {
                    done.insert(i, result);
                }
                _ => todo.push((i, task)),
            }
        }
        progress.started(done.len() + todo.len(), done.len());
        for result in done.values() {
            progress.instance_finished(result, true);
        }
        let semaphore = Arc::new(tokio::sync::Semaphore::new(self.workers.max(1)));
        let mut handles = Vec::new();
        for (i, task) in todo {
            let this = self.clone();
            let progress = progress.clone();
            let semaphore = semaphore.clone();
            let handle = tokio::spawn(async move {
                let Ok(_permit) = semaphore.acquire_owned().await else { return None };
                if this.cancel.load(Ordering::SeqCst) {
                    return None;
                }
                progress.instance_started(&task.instance.instance_id);
                let result = this.evaluate_guarded(&task, progress.clone()).await?;
                progress.instance_finished(&result, false);
                Some(result)
            });
            handles.push((i, handle));
        }
        for (i, handle) in handles {
            if let Ok(Some(result)) = handle.await {
                done.insert(i, result);
            }
        }
        let _ = std::fs::remove_dir(&self.scratch); // only when empty (no kept worktrees)
        done.into_values().collect()
    }

    /// Evaluates one task in its own task (a panic becomes an `error` result), unless cancelled.
    async fn evaluate_guarded(&self, task: &Task, progress: Arc<dyn Progress>) -> Option<InstanceResult> {
        let dir = self.instance_dir(&task.model, &task.instance.instance_id);
        let this = self.clone();
        let owned = task.clone();
        let agent_working = Arc::new(AtomicBool::new(false));
        let working = agent_working.clone();
        let inner = tokio::spawn(async move { this.evaluate_watched(&owned, &working, progress.as_ref()).await });
        let cancel = self.cancel.clone();
        // A working agent is not aborted: it was interrupted too, and stops by itself.
        let watch = async move {
            while !cancel.load(Ordering::SeqCst) || agent_working.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        let abort = inner.abort_handle();
        let outcome = tokio::select! {
            joined = inner => Some(joined),
            () = watch => { abort.abort(); None }
        };
        let mut result = match outcome? {
            Ok(result) => result,
            Err(err) => {
                let mut r = InstanceResult::new(&task.instance, &task.model);
                r.message = format!("the evaluation of this instance crashed: {err}");
                r
            }
        };
        // Stopped while it finished (a batch scheduler's signal reaches the tests too, and a killed
        // test run must not become a verdict): not recorded, as a cancelled instance is not.
        if self.cancel.load(Ordering::SeqCst) && result.status != InstanceStatus::Interrupted {
            return None;
        }
        if result.finished_at.is_empty() {
            result.finished_at = chrono::Utc::now().to_rfc3339();
        }
        let _ = std::fs::create_dir_all(&dir);
        let _ = write_result(&dir, &result);
        Some(result)
    }

    /// Evaluates one task: everything but the final `rigor.json`.
    pub async fn evaluate(&self, task: &Task) -> InstanceResult {
        self.evaluate_watched(task, &AtomicBool::new(false), &NoProgress).await
    }

    /// [`Evaluation::evaluate`], holding `agent_working` set while the agent works (and, when it
    /// was interrupted, until the instance is recorded).
    async fn evaluate_watched(
        &self,
        task: &Task,
        agent_working: &AtomicBool,
        progress: &dyn Progress,
    ) -> InstanceResult {
        let started = Instant::now();
        let instance = &task.instance;
        let mut result = InstanceResult::new(instance, &task.model);
        let dir = self.instance_dir(&task.model, &instance.instance_id);
        let _ = std::fs::remove_dir_all(&dir); // a partial record of an interrupted attempt
        if let Err(e) = std::fs::create_dir_all(&dir) {
            result.message = format!("cannot create {}: {e}", dir.display());
            return result;
        }
        let mut log = InstanceLog::new(dir.join("run_instance.log"));
        log.line(&format!("instance {} ({} @ {})", instance.instance_id, instance.repo, instance.base_commit));

        if let Some(why) = &task.invalid {
            return fail(result, &mut log, why.clone());
        }
        let given_patch = task.prediction.as_ref().and_then(|p| p.model_patch.clone());
        if self.agent.is_none() && given_patch.as_deref().is_none_or(|p| p.trim().is_empty()) {
            result.status = InstanceStatus::EmptyPatch;
            result.message = "no patch to evaluate".into();
            log.line("empty patch: not evaluated");
            return result;
        }

        let clone = match find_clone(&self.repos, &instance.repo, crate::repos::Accept::Git) {
            Ok(c) => c,
            Err(e) => return fail(result, &mut log, e.to_string()),
        };
        let t = Instant::now();
        let worktree_dir = self.scratch.join(format!("{}__{}", model_dir_name(&task.model), instance.instance_id));
        let worktree = match Worktree::create(&clone, &instance.base_commit, &worktree_dir).await {
            Ok(w) => w,
            Err(e) => return fail(result, &mut log, e.to_string()),
        };
        result.timings.worktree = t.elapsed().as_secs_f64();
        result.missing_files = worktree.missing.clone();
        if !worktree.missing.is_empty() {
            log.line(&format!("absent from the clone, left out of the worktree: {}", worktree.missing.join(", ")));
        }

        let at = Place { worktree: &worktree, clone: &clone, dir: &dir, agent_working, progress };
        let outcome = self.evaluate_in(task, &at, &mut log, &mut result).await;
        if let Err(message) = outcome {
            result = fail(result, &mut log, message);
        }
        if !self.keep_worktrees {
            worktree.remove().await;
            let _ = std::fs::remove_dir_all(self.layer_dir(task));
        }
        result.timings.total = started.elapsed().as_secs_f64();
        log.line(&format!("status {} in {:.2}s", result.status.as_str(), result.timings.total));
        result
    }

    async fn evaluate_in(
        &self,
        task: &Task,
        at: &Place<'_>,
        log: &mut InstanceLog,
        result: &mut InstanceResult,
    ) -> Result<(), String> {
        let Place { worktree, clone, dir, agent_working, progress } = *at;
        let instance = &task.instance;
        let official = instance.eval_script.as_deref().filter(|_| {
            self.eval_script == EvalScript::Dataset || self.specs.get(&instance.repo, &instance.version).is_none()
        });
        let mut spec = match self.specs.get(&instance.repo, &instance.version) {
            Some(spec) => spec,
            None => {
                let spec = detect(&worktree.dir, &instance.repo, &instance.version).map_err(|e| e.to_string())?;
                log.line(&format!(
                    "no spec for {} {}: detected {:?} ({})",
                    instance.repo, instance.version, spec.kind, spec.test_cmd
                ));
                spec
            }
        };
        if let Some(script) = official {
            // The row's own script runs the tests; its install commands are the per-instance install.
            let installs = crate::prepared::dataset_installs(script);
            if !installs.is_empty() {
                spec.install = Some(installs.join(" && "));
            }
            log.line("the tests run through the dataset's eval_script");
        }
        if spec.exclude_newer.is_none() && spec.has_unpinned() {
            // Unpinned packages as they were when the environment commit was made.
            spec.exclude_newer =
                rigor_testing::process::git(clone, &["show", "-s", "--format=%cI", instance.env_commit()])
                    .await
                    .ok()
                    .filter(|d| !d.is_empty());
        }
        let parser = instance
            .log_parser
            .as_deref()
            .and_then(LogParser::from_official)
            .filter(|_| self.specs.get(&instance.repo, &instance.version).is_none())
            .unwrap_or(spec.log_parser);

        let t = Instant::now();
        let sources = CloneAt { clone, commit: instance.env_commit() };
        let building = self.envs.get(&instance.repo, &instance.version, instance.env_commit(), &spec, &sources);
        let env = match beating(progress, &instance.instance_id, "environment", self.heartbeat, building).await {
            Ok(env) => env,
            Err(e) => {
                let _ = std::fs::copy(&e.log, dir.join("env_build.log"));
                result.status = InstanceStatus::EnvFailed;
                result.message = e.to_string();
                result.timings.env = t.elapsed().as_secs_f64();
                log.line(&result.message);
                return Ok(());
            }
        };
        result.timings.env = t.elapsed().as_secs_f64();
        result.env_key = Some(env.key.clone());
        result.env_built = env.fresh;
        log.line(&format!(
            "environment {} ({}, {:.1}s)",
            env.key,
            if env.fresh { "built" } else { "cached" },
            result.timings.env
        ));
        let runner = self.test_runner();
        let mut start = instance.base_commit.clone();
        let env = if spec.reinstalls() {
            let t = Instant::now();
            let layer_dir = self.layer_dir(task);
            let _ = std::fs::remove_dir_all(&layer_dir);
            let date = Some(instance.created_at.as_str()).filter(|d| !d.is_empty());
            let installing = install_layer(&env, &spec, &worktree.dir, &layer_dir, &runner, date);
            let layered =
                beating(progress, &instance.instance_id, "per-instance install", self.heartbeat, installing).await;
            result.timings.install = t.elapsed().as_secs_f64();
            match layered {
                Ok(layer) => {
                    let _ = std::fs::write(dir.join("instance_install.log"), &layer.log);
                    log.line(&format!(
                        "per-instance install in {:.2}s{}",
                        result.timings.install,
                        if layer.used_network { " (with the network: the uv cache lacked something)" } else { "" }
                    ));
                    start = rigor_testing::process::git(&worktree.dir, &["rev-parse", "HEAD"]).await?;
                    layer.env
                }
                Err(e) => {
                    let _ = std::fs::write(dir.join("instance_install.log"), &e.log);
                    result.status = InstanceStatus::EnvFailed;
                    result.message = format!("{e} (log: {})", dir.join("instance_install.log").display());
                    log.line(&result.message);
                    return Ok(());
                }
            }
        } else {
            env
        };
        if spec.kind == ProjectKind::Node {
            // The install runs the repository's lifecycle scripts: confined like the tests, with
            // the network for this step only.
            let install = TestCommand::new("bash", &["-c", "npm ci || npm install"], &worktree.dir)
                .git_writable()
                .writable(dir)
                .with_network();
            let done = runner.run(&install).await?;
            log.text(&done.log);
        }
        let at = Prepared {
            instance,
            spec: &spec,
            parser,
            env: &env,
            worktree,
            dir,
            runner: &runner,
            start: &start,
            official,
        };

        // The patch: given, or produced by the agent.
        let patch_text = match &self.agent {
            Some(agent) => {
                let t = Instant::now();
                agent_working.store(true, Ordering::SeqCst);
                let outcome = agent.produce(&at).await;
                result.timings.agent = t.elapsed().as_secs_f64();
                log.line(&format!("agent: {} ({} bytes of patch)", outcome.status, outcome.patch.len()));
                let patch = outcome.patch.clone();
                let failed = outcome.error.clone();
                let interrupted = outcome.status == RunStatus::Interrupted.as_str();
                result.agent = Some(outcome);
                if interrupted {
                    result.status = InstanceStatus::Interrupted;
                    result.message = "the user interrupted the agent: not graded; a resumed run (same --run-id) \
                                      evaluates this instance again"
                        .into();
                    return Ok(());
                }
                agent_working.store(false, Ordering::SeqCst);
                write_prediction(dir, instance, &task.model, &patch);
                reset(&worktree.dir, &start).await?;
                if let Some(error) = failed {
                    return Err(format!("the agent failed: {error}"));
                }
                if patch.trim().is_empty() {
                    result.status = InstanceStatus::EmptyPatch;
                    result.message = "the agent produced no patch".into();
                    return Ok(());
                }
                patch
            }
            None => task.prediction.as_ref().and_then(|p| p.model_patch.clone()).unwrap_or_default(),
        };

        match self.mode {
            Mode::Patch => self.grade_patch(&at, &patch_text, progress, log, result).await,
            Mode::Swt => crate::swt::grade_tests(&at, self.grading, &patch_text, log, result).await,
        }
    }

    /// Grades a code patch: applied, then the instance's tests run (`eval.sh`) and graded.
    async fn grade_patch(
        &self,
        at: &Prepared<'_>,
        patch_text: &str,
        progress: &dyn Progress,
        log: &mut InstanceLog,
        result: &mut InstanceResult,
    ) -> Result<(), String> {
        let Prepared { instance, worktree, dir, parser, .. } = *at;
        let t = Instant::now();
        let applied =
            patch::apply_patch(&worktree.dir, patch_text, &dir.join("patch.diff")).await.map_err(|e| e.to_string())?;
        result.timings.apply = t.elapsed().as_secs_f64();
        log.text(&applied.log);
        if !applied.ok {
            result.status = InstanceStatus::PatchFailed;
            result.message = "the patch applies with none of git apply, git apply --reject, patch --fuzz=5".into();
            write_official_report(dir, instance, Some(patch_text), None, false);
            return Ok(());
        }
        result.applied_with = applied.method.clone();
        let run = beating(
            progress,
            &instance.instance_id,
            "tests",
            self.heartbeat,
            at.run_tests(&instance.test_patch, at.spec, "eval.sh"),
        )
        .await?;
        result.timings.tests += run.elapsed.as_secs_f64();
        std::fs::write(dir.join("test_output.txt"), &run.log).map_err(|e| e.to_string())?;
        if run.timed_out {
            result.status = InstanceStatus::Timeout;
            result.message = format!("the tests ran longer than {}s", self.timeout.as_secs());
            write_official_report(dir, instance, Some(patch_text), None, true);
            return Ok(());
        }
        let eval_type = EvalType::of(&instance.repo, instance.eval_type.as_deref());
        let Some(map) = grading::status_map_of_log(&run.log, parser, self.grading) else {
            result.status = InstanceStatus::Unresolved;
            result.message = "the test log holds no usable results".into();
            if let Some(reason) = grading::infrastructure_failure(&run.log) {
                result.status = InstanceStatus::InfraFailure;
                result.message = format!("{reason}: {} ({})", reason.remedy(), result.message);
            }
            write_official_report(dir, instance, Some(patch_text), None, true);
            return Ok(());
        };
        let status = grading::grade(&map, &instance.fail_to_pass, &instance.pass_to_pass, eval_type, self.grading);
        result.f2p_rate = Some(status.fail_to_pass.rate());
        result.p2p_rate = Some(status.pass_to_pass.rate());
        let resolved = status.resolution() == grading::Resolution::Full;
        result.status = if resolved { InstanceStatus::Resolved } else { InstanceStatus::Unresolved };
        if !resolved {
            result.message = format!(
                "FAIL_TO_PASS failing: {}; PASS_TO_PASS failing: {}",
                status.fail_to_pass.failure.len(),
                status.pass_to_pass.failure.len()
            );
        }
        if !resolved && let Some(reason) = grading::infrastructure_failure(&run.log) {
            // The tests could not run as the official environment runs them (e.g. no network):
            // the instance says nothing about the patch.
            result.status = InstanceStatus::InfraFailure;
            result.message = format!("{reason}: {} (as unresolved: {})", reason.remedy(), result.message);
        }
        if !resolved && !worktree.missing.is_empty() {
            result.message.push_str(&format!(
                " ({} file(s) absent from the clone, e.g. {}: a complete clone may resolve it)",
                worktree.missing.len(),
                worktree.missing[0]
            ));
        }
        write_official_report(dir, instance, Some(patch_text), Some((&status, resolved)), true);
        result.tests_status = Some(status);
        Ok(())
    }

    /// The runner of test runs (and of `npm ci`): the evaluation's time limit and sandbox. Test
    /// runs confine the prediction's code: writable are the worktree, its private git directory
    /// (the script checks test files out) and the instance's log directory (coverage data);
    /// readable the clone's objects, the environment and what the run's `PYTHONPATH` names
    /// (e.g. coverage.py); no network.
    pub fn test_runner(&self) -> TestRunner {
        TestRunner::new(self.timeout, self.sandbox.clone())
    }
}

/// Back to `base_commit` with nothing untracked (after an agent worked in the worktree).
async fn reset(dir: &Path, base_commit: &str) -> Result<(), String> {
    rigor_testing::process::git(dir, &["reset", "-q", "--hard", base_commit]).await?;
    rigor_testing::process::git(dir, &["clean", "-fdq", "-e", ".rigor"]).await?;
    Ok(())
}

fn fail(mut result: InstanceResult, log: &mut InstanceLog, message: String) -> InstanceResult {
    log.line(&format!("error: {message}"));
    result.status = InstanceStatus::Error;
    result.message = message;
    result
}
