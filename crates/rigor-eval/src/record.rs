//! The per-instance records of an evaluation: what `rigor.json` holds ([`InstanceResult`], with its
//! [`InstanceStatus`], [`Timings`] and [`SwtResult`]), how it is written (last, atomically:
//! [`write_result`]) and read back ([`read_result`], for resume and reports), and the other files
//! of an instance's log directory: `run_instance.log` ([`InstanceLog`]), the official
//! `report.json` ([`write_official_report`]) and an agent's `prediction.json`
//! ([`write_prediction`]). This module writes records; it evaluates nothing.

use std::path::{Path, PathBuf};

use rigor_core::fsutil::write_atomic;
use serde::{Deserialize, Serialize};

use crate::agent::AgentOutcome;
use crate::dataset::{Instance, Prediction};
use crate::grading::TestsStatus;

/// Terminal status of one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceStatus {
    /// Graded and resolved.
    Resolved,
    /// Graded, not resolved.
    Unresolved,
    /// An empty patch (or a prediction whose patch is null): not evaluated (official
    /// `empty_patch`). Instances without a prediction are not evaluated at all: incomplete.
    EmptyPatch,
    /// The patch applied with none of the three methods.
    PatchFailed,
    /// The environment could not be built.
    EnvFailed,
    /// The tests ran past the time limit.
    Timeout,
    /// The tests failed for reasons of the machine, not of the patch (no network, out of
    /// memory, no display: SWE-bench 5's infrastructure failures); the message names it.
    InfraFailure,
    /// Anything else went wrong (missing clone or commit, a crash, the agent failed).
    Error,
    /// The evaluation stopped before this instance was graded: the user stopped it while the agent
    /// worked (the agent's record is kept), or the executor lost the task evaluating it (a Slurm
    /// array task that failed, timed out, was cancelled or preempted: [`InstanceResult::lost`]).
    /// A resumed run (or a resubmission) evaluates the instance again.
    Interrupted,
}

impl InstanceStatus {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Resolved => "resolved",
            InstanceStatus::Unresolved => "unresolved",
            InstanceStatus::EmptyPatch => "empty_patch",
            InstanceStatus::PatchFailed => "patch_failed",
            InstanceStatus::EnvFailed => "env_failed",
            InstanceStatus::Timeout => "timeout",
            InstanceStatus::InfraFailure => "infra_failure",
            InstanceStatus::Error => "error",
            InstanceStatus::Interrupted => "interrupted",
        }
    }
}

/// Where the time of one instance went, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Creating the worktree.
    pub worktree: f64,
    /// Getting the environment (cache hit or build).
    pub env: f64,
    /// The per-instance install (a layer over the environment; part of the overhead).
    #[serde(default)]
    pub install: f64,
    /// The agent (agent mode).
    pub agent: f64,
    /// Applying the patch.
    pub apply: f64,
    /// The test runs (eval.sh), summed.
    pub tests: f64,
    /// Everything.
    pub total: f64,
}

impl Timings {
    /// Harness time beyond the tests, the environment build and the agent.
    pub fn overhead(&self) -> f64 {
        (self.total - self.tests - self.env - self.agent).max(0.0)
    }
}

/// SWT figures of one instance (see [`crate::swt`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SwtResult {
    /// The generated test patch applies to the original code.
    pub applied: bool,
    /// Tests failing (or absent) before the fix and passing after.
    pub fail_to_pass: Vec<String>,
    /// Tests failing before and after.
    pub fail_to_fail: Vec<String>,
    /// Tests passing before and after.
    pub pass_to_pass: Vec<String>,
    /// Tests passing before and failing after.
    pub pass_to_fail: Vec<String>,
    /// At least one fail→pass test and no test failing after the fix.
    pub success: bool,
    /// Share of the gold patch's executable added lines the tests execute (None: not measured).
    pub change_coverage: Option<f64>,
}

/// The result of one instance: what `rigor.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceResult {
    /// The instance.
    pub instance_id: String,
    /// `owner/name`.
    pub repo: String,
    /// The model (prediction's `model_name_or_path`).
    pub model: String,
    /// Terminal status.
    pub status: InstanceStatus,
    /// Short explanation for errors.
    #[serde(default)]
    pub message: String,
    /// How the patch applied (`git apply --verbose`, …).
    #[serde(default)]
    pub applied_with: Option<String>,
    /// FAIL_TO_PASS / PASS_TO_PASS outcomes (patch mode).
    #[serde(default)]
    pub tests_status: Option<TestsStatus>,
    /// FAIL_TO_PASS success rate.
    #[serde(default)]
    pub f2p_rate: Option<f64>,
    /// PASS_TO_PASS success rate.
    #[serde(default)]
    pub p2p_rate: Option<f64>,
    /// SWT figures (SWT mode).
    #[serde(default)]
    pub swt: Option<SwtResult>,
    /// The environment cache key.
    #[serde(default)]
    pub env_key: Option<String>,
    /// Whether this instance built its environment.
    #[serde(default)]
    pub env_built: bool,
    /// Timings.
    #[serde(default)]
    pub timings: Timings,
    /// Agent figures (agent mode).
    #[serde(default)]
    pub agent: Option<AgentOutcome>,
    /// Paths left out of the worktree because the clone lacks them.
    #[serde(default)]
    pub missing_files: Vec<String>,
    /// Finish time (RFC 3339).
    #[serde(default)]
    pub finished_at: String,
    /// The batch task that was to evaluate this instance ended without a result for it (status
    /// `interrupted`; see [`crate::executor`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<LostTask>,
}

/// A task of a batch executor that ended without recording an instance: which task, and the
/// scheduler's word on why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostTask {
    /// The executor (`slurm`).
    pub executor: String,
    /// The scheduler's job id (an array job's id).
    pub job: String,
    /// The task's index in the array.
    pub task: usize,
    /// The scheduler's final state of the task (`TIMEOUT`, `CANCELLED`, `FAILED`, `NODE_FAIL`,
    /// `PREEMPTED`, `OUT_OF_MEMORY`, ...; `UNKNOWN` when it no longer knows the task).
    pub state: String,
    /// The scheduler's reason and exit code, as it gave them.
    pub reason: String,
}

impl InstanceResult {
    /// A result of `instance` for `model` before anything happened (an `error` with no message).
    pub fn new(instance: &Instance, model: &str) -> Self {
        InstanceResult {
            instance_id: instance.instance_id.clone(),
            repo: instance.repo.clone(),
            model: model.to_string(),
            status: InstanceStatus::Error,
            message: String::new(),
            applied_with: None,
            tests_status: None,
            f2p_rate: None,
            p2p_rate: None,
            swt: None,
            env_key: None,
            env_built: false,
            timings: Timings::default(),
            agent: None,
            missing_files: Vec::new(),
            finished_at: String::new(),
            lost: None,
        }
    }
}

/// Writes `rigor.json` into `dir` (atomically; the instance's record is complete once it is
/// there: a resumed run skips exactly the instances that have one).
pub fn write_result(dir: &Path, result: &InstanceResult) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(result).map_err(std::io::Error::other)?;
    write_atomic(&dir.join("rigor.json"), text.as_bytes())
}

/// A finished instance's record, if there is one.
pub fn read_result(dir: &Path) -> Option<InstanceResult> {
    serde_json::from_str(&std::fs::read_to_string(dir.join("rigor.json")).ok()?).ok()
}

/// `prediction.json`: the patch an agent produced, as a prediction row.
pub fn write_prediction(dir: &Path, instance: &Instance, model: &str, patch: &str) {
    let row = Prediction {
        instance_id: instance.instance_id.clone(),
        model_name_or_path: model.into(),
        model_patch: Some(patch.into()),
    };
    if let Ok(text) = serde_json::to_string(&row) {
        let _ = std::fs::write(dir.join("prediction.json"), text);
    }
}

/// `report.json` in the official shape.
pub fn write_official_report(
    dir: &Path,
    instance: &Instance,
    patch: Option<&str>,
    graded: Option<(&TestsStatus, bool)>,
    applied: bool,
) {
    let mut entry = serde_json::json!({
        "patch_is_None": patch.is_none(),
        "patch_exists": patch.is_some(),
        "patch_successfully_applied": applied && graded.is_some(),
        "resolved": graded.is_some_and(|(_, r)| r),
    });
    if let Some((status, _)) = graded
        && let (Some(map), Ok(value)) = (entry.as_object_mut(), serde_json::to_value(status))
    {
        map.insert("tests_status".into(), value);
    }
    let report = serde_json::json!({ instance.instance_id.clone(): entry });
    if let Ok(text) = serde_json::to_string_pretty(&report) {
        let _ = write_atomic(&dir.join("report.json"), text.as_bytes());
    }
}

/// `run_instance.log`, appended as the instance goes.
pub struct InstanceLog {
    path: PathBuf,
}

impl InstanceLog {
    /// Starts an empty log at `path`.
    pub fn new(path: PathBuf) -> Self {
        let _ = std::fs::write(&path, "");
        Self { path }
    }
    /// Appends a line.
    pub fn line(&mut self, text: &str) {
        self.text(&format!("{text}\n"));
    }
    /// Appends text as it is.
    pub fn text(&mut self, text: &str) {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&self.path) {
            let _ = f.write_all(text.as_bytes());
        }
    }
}
