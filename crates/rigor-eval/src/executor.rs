//! Where the instances of an evaluation run are evaluated: in this process ([`Local`], the
//! harness's own workers), or as the tasks of an array job of a batch scheduler ([`Batch`] over an
//! [`ArrayEngine`]: Slurm's job arrays in [`crate::slurm`]; a Kubernetes Indexed Job would be
//! another engine, and nothing here or in the harness would change).
//!
//! A batch run is the local harness, many times: each array task runs the same binary on one slice
//! of the instances (the front end's [`WorkerCommand`] plus the submission file; the task finds its
//! slice through the index variable the engine sets, [`slice_of`]). The tasks share the run's
//! directory (a shared filesystem), and write their records exactly as a local run does (each
//! `rigor.json` last and atomically), so reports, resume and [`status`] read them alike; the
//! environment cache is shared too, and its per-environment lock keeps two nodes from building one
//! environment twice.
//!
//! The submitting side ([`Batch::execute`]): instances already recorded are not submitted again,
//! nor are those of tasks still pending or running from an earlier submission; the others are cut
//! into slices and submitted as one array job, recorded in `batch/submission-NNNN.json` beside the
//! instances' logs. It then waits for the tasks (unless detached), and an instance whose task ended
//! without recording it (failed, timed out, cancelled, preempted, node failure) gets a result of its
//! own: status `interrupted`, with the scheduler's state and reason ([`LostTask`]), which the next
//! submission of the run evaluates again.
//!
//! This module does not evaluate instances (the harness does) and does not print.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use rigor_core::fsutil::write_atomic;
use serde::{Deserialize, Serialize};

use crate::harness::{Evaluation, Progress, Task};
use crate::record::{InstanceResult, InstanceStatus, LostTask, read_result, write_result};

/// Why an executor could not do its part.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// The scheduler's commands are missing or refuse to work.
    #[error("{0}")]
    Unavailable(String),
    /// A submission was refused.
    #[error("the submission was refused: {0}")]
    Refused(String),
    /// A record of the run could not be read or written.
    #[error("{path}: {message}")]
    Record {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Bad input (a slice index out of range, a plan that cannot be made).
    #[error("{0}")]
    Invalid(String),
}

/// Where the instances of a run are evaluated.
#[async_trait]
pub trait Executor: Send + Sync {
    /// Evaluates `tasks` as `evaluation` says (instances already recorded are resumed, not
    /// redone) and returns the recorded results, in input order. A detached batch executor
    /// returns after submitting, with what was recorded then.
    async fn execute(
        &self,
        evaluation: &Evaluation,
        tasks: Vec<Task>,
        progress: Arc<dyn Progress>,
    ) -> Result<Vec<InstanceResult>, ExecutorError>;
}

/// This process: the harness's workers (`--workers`), today's behaviour and the default.
pub struct Local;

#[async_trait]
impl Executor for Local {
    async fn execute(
        &self,
        evaluation: &Evaluation,
        tasks: Vec<Task>,
        progress: Arc<dyn Progress>,
    ) -> Result<Vec<InstanceResult>, ExecutorError> {
        Ok(evaluation.run(tasks, progress).await)
    }
}

/// The state of one task of an array job, as its engine reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    /// Waiting to start.
    Pending,
    /// Started and not yet ended.
    Running,
    /// Ended with success.
    Completed,
    /// Ended otherwise: the engine's state name (`TIMEOUT`, `CANCELLED`, `FAILED`, ...) and its
    /// reason and exit code.
    Ended {
        /// The state name.
        state: String,
        /// The reason and exit code.
        reason: String,
    },
    /// The engine no longer knows the task (its record aged out, or it was cancelled before it
    /// started and left no record): it has ended.
    Unknown,
}

impl TaskState {
    /// Pending or running.
    pub fn active(&self) -> bool {
        matches!(self, TaskState::Pending | TaskState::Running)
    }
}

/// One job for an [`ArrayEngine`]: `command` run once per index in `0..tasks`, with the index in
/// the engine's [`ArrayEngine::index_variable`].
#[derive(Debug, Clone)]
pub struct ArrayJob {
    /// A name for the scheduler's listings.
    pub name: String,
    /// How many tasks (array indices `0..tasks`).
    pub tasks: usize,
    /// Program and arguments.
    pub command: Vec<String>,
    /// The directory the command runs in.
    pub workdir: PathBuf,
    /// Where the engine keeps the tasks' own output and its job files.
    pub log_dir: PathBuf,
    /// Start only once this job (of the same engine) has ended, however it ended.
    pub after: Option<String>,
}

/// A batch scheduler that runs array jobs: submits them and reports each task's state.
pub trait ArrayEngine: Send + Sync {
    /// Its name in records and flags (`slurm`).
    fn name(&self) -> &'static str;
    /// The environment variable holding a task's index.
    fn index_variable(&self) -> &'static str;
    /// Submits `job`, returning the scheduler's job id.
    fn submit(&self, job: &ArrayJob) -> Result<String, ExecutorError>;
    /// The state of each of the `tasks` tasks of job `job`.
    fn states(&self, job: &str, tasks: usize) -> Result<Vec<TaskState>, ExecutorError>;
    /// What `submit` would ask the scheduler for `job` (for a dry run).
    fn describe(&self, job: &ArrayJob) -> String;
}

/// The command every task runs: this binary with the run's arguments; the executor adds the
/// submission file (`--batch-task FILE`) or, for the closing job, `--batch-finish`.
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    /// Program and arguments.
    pub command: Vec<String>,
    /// The working directory (relative paths of the arguments are relative to it).
    pub workdir: PathBuf,
}

/// One submission of a run: which instances each task evaluates (`batch/submission-NNNN.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    /// The engine.
    pub executor: String,
    /// The engine's job id (empty until the engine accepted the job).
    pub job: String,
    /// The variable holding a task's index.
    pub index_variable: String,
    /// Per task, the instance ids it evaluates.
    pub slices: Vec<Vec<String>>,
    /// Submission time (RFC 3339).
    pub submitted_at: String,
}

/// The batch directory of a run.
pub fn batch_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("batch")
}

/// The submissions of a run, oldest first, with their files.
pub fn submissions(run_dir: &Path) -> Result<Vec<(PathBuf, Submission)>, ExecutorError> {
    let dir = batch_dir(run_dir);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(Vec::new()) };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            name.starts_with("submission-") && name.ends_with(".json")
        })
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let submission = read_submission(&path)?;
        if !submission.job.is_empty() {
            out.push((path, submission));
        }
    }
    Ok(out)
}

fn read_submission(path: &Path) -> Result<Submission, ExecutorError> {
    let record = |message: String| ExecutorError::Record { path: path.to_path_buf(), message };
    let text = std::fs::read_to_string(path).map_err(|e| record(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| record(format!("not a submission record: {e}")))
}

fn write_submission(path: &Path, submission: &Submission) -> Result<(), ExecutorError> {
    let text = serde_json::to_string_pretty(submission).map_err(|e| ExecutorError::Invalid(e.to_string()))?;
    write_atomic(path, text.as_bytes())
        .map_err(|e| ExecutorError::Record { path: path.to_path_buf(), message: e.to_string() })
}

/// The instance ids of one task: the slice of `file` at the index the engine put in the
/// submission's index variable (read from the environment).
pub fn slice_of(file: &Path) -> Result<Vec<String>, ExecutorError> {
    let submission = read_submission(file)?;
    let var = &submission.index_variable;
    let value = std::env::var(var).map_err(|_| {
        ExecutorError::Invalid(format!(
            "{var} is not set: --batch-task is given to the tasks of an array job by `rigor eval --executor {}`",
            submission.executor
        ))
    })?;
    let index: usize =
        value.trim().parse().map_err(|_| ExecutorError::Invalid(format!("{var}={value} is not an index")))?;
    submission.slices.get(index).cloned().ok_or_else(|| {
        ExecutorError::Invalid(format!(
            "{var}={index}, but {} holds {} slices",
            file.display(),
            submission.slices.len()
        ))
    })
}

/// How the instances are cut into tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slicing {
    /// Instances per task (`None`: chosen from the count and the parallelism).
    pub per_task: Option<usize>,
    /// How many tasks may run at once (`None`: as many as the scheduler gives).
    pub parallelism: Option<usize>,
    /// The most tasks one array may have (Slurm's default `MaxArraySize` allows indices 0..1000).
    pub max_tasks: usize,
}

impl Default for Slicing {
    fn default() -> Self {
        Slicing { per_task: None, parallelism: None, max_tasks: 1000 }
    }
}

impl Slicing {
    /// Instances per task for `n` instances: as given, else about four tasks per slot that may run
    /// at once (so that a slow task does not hold the run up), one per instance without a limit of
    /// parallelism; never more tasks than an array may have.
    pub fn per_task(&self, n: usize) -> usize {
        let wanted = match (self.per_task, self.parallelism) {
            (Some(k), _) => k,
            (None, Some(p)) => n.div_ceil(4 * p.max(1)),
            (None, None) => 1,
        };
        wanted.max(n.div_ceil(self.max_tasks.max(1))).max(1)
    }

    /// `ids` cut into consecutive slices.
    pub fn slices(&self, ids: &[String]) -> Vec<Vec<String>> {
        ids.chunks(self.per_task(ids.len())).map(<[String]>::to_vec).collect()
    }
}

/// An array engine's run: submits the instances not yet recorded, waits for the tasks and records
/// those they lost.
#[derive(Clone)]
pub struct Batch {
    /// The engine.
    pub engine: Arc<dyn ArrayEngine>,
    /// What each task runs.
    pub worker: WorkerCommand,
    /// How instances are cut into tasks.
    pub slicing: Slicing,
    /// Submit the instances not yet recorded (false: only wait and record, as the closing job of a
    /// detached submission does).
    pub submit: bool,
    /// Wait for the tasks (false: return after submitting, with a closing job submitted to run
    /// after the array, which records lost instances and writes the summary).
    pub wait: bool,
    /// How often the engine is asked while waiting.
    pub poll: Duration,
}

/// What a run's batch side will do or did: the instances submitted now and the job.
#[derive(Debug, Clone, Default)]
pub struct Submitted {
    /// The new job's id, if one was submitted.
    pub job: Option<String>,
    /// Its tasks.
    pub tasks: usize,
    /// Instances in it.
    pub instances: usize,
    /// Instances left to tasks of earlier submissions that are still pending or running.
    pub in_flight: usize,
    /// The closing job of a detached submission.
    pub closing_job: Option<String>,
}

impl Batch {
    /// Instances to submit: not recorded (or recorded as interrupted) and not in a task of an
    /// earlier submission that is still pending or running.
    pub fn pending<'a>(
        &self,
        evaluation: &Evaluation,
        tasks: &'a [Task],
    ) -> Result<(Vec<&'a Task>, usize), ExecutorError> {
        let history = submissions(&evaluation.run_dir())?;
        let states = states_of(self.engine.as_ref(), &history)?;
        let mut in_flight = BTreeSet::new();
        for ((_, submission), states) in history.iter().zip(&states) {
            for (slice, state) in submission.slices.iter().zip(states) {
                if state.active() {
                    in_flight.extend(slice.iter().cloned());
                }
            }
        }
        let mut pending = Vec::new();
        let mut flying = 0;
        for task in tasks {
            if finished(evaluation, task).is_some() {
                continue;
            }
            if in_flight.contains(&task.instance.instance_id) {
                flying += 1;
            } else {
                pending.push(task);
            }
        }
        Ok((pending, flying))
    }

    /// Submits the pending instances as one array job (nothing when none is pending).
    pub fn submit_pending(&self, evaluation: &Evaluation, tasks: &[Task]) -> Result<Submitted, ExecutorError> {
        let (pending, in_flight) = self.pending(evaluation, tasks)?;
        let mut out = Submitted { in_flight, ..Submitted::default() };
        if pending.is_empty() {
            return Ok(out);
        }
        let ids: Vec<String> = pending.iter().map(|t| t.instance.instance_id.clone()).collect();
        let slices = self.slicing.slices(&ids);
        let dir = batch_dir(&evaluation.run_dir());
        std::fs::create_dir_all(&dir)
            .map_err(|e| ExecutorError::Record { path: dir.clone(), message: e.to_string() })?;
        let path = next_submission_path(&dir);
        let mut submission = Submission {
            executor: self.engine.name().into(),
            job: String::new(),
            index_variable: self.engine.index_variable().into(),
            slices,
            submitted_at: chrono::Utc::now().to_rfc3339(),
        };
        // The tasks read their slices from the file: it is there before the job is.
        write_submission(&path, &submission)?;
        let mut command = self.worker.command.clone();
        command.extend(["--batch-task".to_string(), path.display().to_string()]);
        let job = ArrayJob {
            name: format!("rigor-{}", evaluation.run_id),
            tasks: submission.slices.len(),
            command,
            workdir: self.worker.workdir.clone(),
            log_dir: dir.clone(),
            after: None,
        };
        let id = match self.engine.submit(&job) {
            Ok(id) => id,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        };
        submission.job = id.clone();
        write_submission(&path, &submission)?;
        out.job = Some(id.clone());
        out.tasks = submission.slices.len();
        out.instances = ids.len();
        if !self.wait {
            let mut command = self.worker.command.clone();
            command.push("--batch-finish".into());
            let closing = ArrayJob {
                name: format!("rigor-{}-finish", evaluation.run_id),
                tasks: 0,
                command,
                workdir: self.worker.workdir.clone(),
                log_dir: dir,
                after: Some(id),
            };
            out.closing_job = Some(self.engine.submit(&closing)?);
        }
        Ok(out)
    }

    /// Waits until no task of the run's submissions is pending or running (reporting instances as
    /// their records appear), or until the evaluation is cancelled (the tasks go on).
    pub async fn wait(
        &self,
        evaluation: &Evaluation,
        tasks: &[Task],
        progress: &dyn Progress,
        reported: &mut BTreeSet<String>,
    ) -> Result<(), ExecutorError> {
        loop {
            for task in tasks {
                if !reported.contains(&task.instance.instance_id)
                    && let Some(result) = finished(evaluation, task)
                {
                    reported.insert(task.instance.instance_id.clone());
                    progress.instance_finished(&result, false);
                }
            }
            let engine = self.engine.clone();
            let run_dir = evaluation.run_dir();
            let active = tokio::task::spawn_blocking(move || {
                let history = submissions(&run_dir)?;
                let states = states_of(engine.as_ref(), &history)?;
                Ok::<bool, ExecutorError>(states.iter().flatten().any(TaskState::active))
            })
            .await
            .map_err(|e| ExecutorError::Invalid(e.to_string()))??;
            if !active || evaluation.cancel.load(Ordering::SeqCst) {
                return Ok(());
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// Records, for each instance whose latest task has ended without a record of it, a result
    /// with the scheduler's state and reason (status `interrupted`: the next submission evaluates
    /// it again). Returns how many were recorded.
    pub fn record_lost(&self, evaluation: &Evaluation, tasks: &[Task]) -> Result<usize, ExecutorError> {
        let history = submissions(&evaluation.run_dir())?;
        let states = states_of(self.engine.as_ref(), &history)?;
        let latest = latest_tasks(&history, &states);
        let mut recorded = 0;
        for task in tasks {
            let id = &task.instance.instance_id;
            let Some((submission, index, state)) = latest.get(id.as_str()) else { continue };
            if state.active() || finished(evaluation, task).is_some() {
                continue;
            }
            let dir = evaluation.instance_dir(&task.model, id);
            if read_result(&dir).is_some_and(|r| r.lost.is_some()) {
                continue; // recorded already
            }
            let (state_name, reason) = match state {
                TaskState::Ended { state, reason } => (state.clone(), reason.clone()),
                TaskState::Completed => (
                    "COMPLETED".to_string(),
                    "the task ended without recording this instance (see its output in batch/)".to_string(),
                ),
                _ => ("UNKNOWN".to_string(), format!("{} no longer knows the task", submission.executor)),
            };
            let mut result = InstanceResult::new(&task.instance, &task.model);
            result.status = InstanceStatus::Interrupted;
            result.message = format!(
                "{} task {}_{index} ended {state_name} ({reason}) before recording this instance: not graded; \
                 submitting the run again (same --run-id) evaluates it again",
                submission.executor, submission.job
            );
            result.finished_at = chrono::Utc::now().to_rfc3339();
            result.lost = Some(LostTask {
                executor: submission.executor.clone(),
                job: submission.job.clone(),
                task: *index,
                state: state_name,
                reason,
            });
            std::fs::create_dir_all(&dir)
                .and_then(|()| write_result(&dir, &result))
                .map_err(|e| ExecutorError::Record { path: dir.join("rigor.json"), message: e.to_string() })?;
            recorded += 1;
        }
        Ok(recorded)
    }
}

#[async_trait]
impl Executor for Batch {
    async fn execute(
        &self,
        evaluation: &Evaluation,
        tasks: Vec<Task>,
        progress: Arc<dyn Progress>,
    ) -> Result<Vec<InstanceResult>, ExecutorError> {
        let mut reported = BTreeSet::new();
        let done: Vec<InstanceResult> = tasks.iter().filter_map(|t| finished(evaluation, t)).collect();
        progress.started(tasks.len(), done.len());
        for result in &done {
            reported.insert(result.instance_id.clone());
            progress.instance_finished(result, true);
        }
        if self.submit {
            let (this, evaluation_, tasks_) = (self.clone(), evaluation.clone(), tasks.clone());
            tokio::task::spawn_blocking(move || this.submit_pending(&evaluation_, &tasks_))
                .await
                .map_err(|e| ExecutorError::Invalid(e.to_string()))??;
        }
        if self.wait {
            self.wait(evaluation, &tasks, progress.as_ref(), &mut reported).await?;
            if !evaluation.cancel.load(Ordering::SeqCst) {
                self.record_lost(evaluation, &tasks)?;
            }
        }
        Ok(tasks
            .iter()
            .filter_map(|t| read_result(&evaluation.instance_dir(&t.model, &t.instance.instance_id)))
            .collect())
    }
}

/// The instance's record, when it is finished (recorded and not interrupted).
fn finished(evaluation: &Evaluation, task: &Task) -> Option<InstanceResult> {
    read_result(&evaluation.instance_dir(&task.model, &task.instance.instance_id))
        .filter(|r| r.status != InstanceStatus::Interrupted)
}

fn next_submission_path(dir: &Path) -> PathBuf {
    (1..).map(|n| dir.join(format!("submission-{n:04}.json"))).find(|p| !p.exists()).unwrap_or_default()
}

/// Each submission's task states.
fn states_of(
    engine: &dyn ArrayEngine,
    history: &[(PathBuf, Submission)],
) -> Result<Vec<Vec<TaskState>>, ExecutorError> {
    history
        .iter()
        .map(|(_, s)| {
            if s.executor != engine.name() {
                return Err(ExecutorError::Invalid(format!(
                    "this run was submitted to {}, not {}: use --executor {}",
                    s.executor,
                    engine.name(),
                    s.executor
                )));
            }
            engine.states(&s.job, s.slices.len())
        })
        .collect()
}

/// Per instance, the latest task it was given to and that task's state.
fn latest_tasks<'a>(
    history: &'a [(PathBuf, Submission)],
    states: &'a [Vec<TaskState>],
) -> HashMap<&'a str, (&'a Submission, usize, &'a TaskState)> {
    let mut latest = HashMap::new();
    for ((_, submission), states) in history.iter().zip(states) {
        for (index, (slice, state)) in submission.slices.iter().zip(states).enumerate() {
            for id in slice {
                latest.insert(id.as_str(), (submission, index, state));
            }
        }
    }
    latest
}

/// Where one instance of a run stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Recorded (the status of its record).
    Done(InstanceStatus),
    /// Its task is running and has begun this instance.
    Running,
    /// Not begun: its task is pending, or running on earlier instances of its slice.
    Pending,
    /// Its task ended without recording it (or it was interrupted): why.
    Failed(String),
}

/// The state of a run from its records and its engine: every instance the run knows of.
#[derive(Debug, Clone, Default)]
pub struct RunState {
    /// Per instance id.
    pub instances: BTreeMap<String, Phase>,
    /// The run's jobs: (engine, job id, tasks, of them still pending or running).
    pub jobs: Vec<(String, String, usize, usize)>,
}

impl RunState {
    /// Counts: done, running, pending, failed.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let mut c = (0, 0, 0, 0);
        for phase in self.instances.values() {
            match phase {
                Phase::Done(_) => c.0 += 1,
                Phase::Running => c.1 += 1,
                Phase::Pending => c.2 += 1,
                Phase::Failed(_) => c.3 += 1,
            }
        }
        c
    }
}

/// The engine of a name recorded in a submission (`slurm`).
pub type EngineByName = dyn Fn(&str) -> Result<Arc<dyn ArrayEngine>, ExecutorError>;

/// The state of the run in `run_dir`: instances are done when their record says so; the others
/// stand as their latest task does (`engine` gives the engine named in a submission; a run
/// without submissions ran locally, and only its records are read).
pub fn status(run_dir: &Path, engine: &EngineByName) -> Result<RunState, ExecutorError> {
    if !run_dir.is_dir() {
        return Err(ExecutorError::Invalid(format!(
            "no run at {}: check --run-id and --output (the --output of the `rigor eval` that started it)",
            run_dir.display()
        )));
    }
    // Records and begun instances, over every model directory of the run.
    let mut records: HashMap<String, Option<InstanceResult>> = HashMap::new();
    for model in std::fs::read_dir(run_dir).into_iter().flatten().flatten() {
        let path = model.path();
        if !path.is_dir() || path == batch_dir(run_dir) {
            continue;
        }
        for inst in std::fs::read_dir(&path).into_iter().flatten().flatten() {
            let id = inst.file_name().to_string_lossy().into_owned();
            let result = read_result(&inst.path());
            let entry = records.entry(id).or_default();
            if entry.is_none() {
                *entry = result;
            }
        }
    }
    let history = submissions(run_dir)?;
    let mut states = Vec::new();
    let mut state = RunState::default();
    for (_, submission) in &history {
        let e = engine(&submission.executor)?;
        let s = e.states(&submission.job, submission.slices.len())?;
        let active = s.iter().filter(|t| t.active()).count();
        state.jobs.push((submission.executor.clone(), submission.job.clone(), submission.slices.len(), active));
        states.push(s);
    }
    let latest = latest_tasks(&history, &states);
    let mut ids: BTreeSet<&str> = latest.keys().copied().collect();
    ids.extend(records.keys().map(String::as_str));
    for id in ids {
        let record = records.get(id).and_then(Option::as_ref);
        let begun = records.contains_key(id) && record.is_none();
        let phase = match (record, latest.get(id)) {
            (Some(r), _) if r.status != InstanceStatus::Interrupted => Phase::Done(r.status),
            (_, Some((_, _, TaskState::Pending))) => Phase::Pending,
            (_, Some((_, _, TaskState::Running))) if begun => Phase::Running,
            (_, Some((_, _, TaskState::Running))) => Phase::Pending,
            (Some(r), _) => Phase::Failed(r.message.clone()),
            (None, Some((s, i, t))) => {
                Phase::Failed(format!("{} task {}_{i} ended ({t:?}) without recording it", s.executor, s.job))
            }
            (None, None) => Phase::Running, // a local run has begun it
        };
        state.instances.insert(id.to_string(), phase);
    }
    Ok(state)
}

/// Recorded wall times of instances, for estimates: every `rigor.json` under `output`'s runs.
#[derive(Debug, Clone, Default)]
pub struct RecordedTimes {
    by_instance: HashMap<String, f64>,
    by_repo: HashMap<String, (f64, usize)>,
    all: (f64, usize),
}

impl RecordedTimes {
    /// Reads the records of every run under `output` (`logs/run_evaluation/*/*/*/rigor.json`);
    /// a record's time is its total less an environment build it made (the cache is warm later).
    pub fn read(output: &Path) -> Self {
        let mut times = RecordedTimes::default();
        let runs = output.join("logs").join("run_evaluation");
        for run in std::fs::read_dir(runs).into_iter().flatten().flatten() {
            for model in std::fs::read_dir(run.path()).into_iter().flatten().flatten() {
                for inst in std::fs::read_dir(model.path()).into_iter().flatten().flatten() {
                    if let Some(r) = read_result(&inst.path()).filter(|r| r.lost.is_none() && r.timings.total > 0.0) {
                        let secs = if r.env_built { r.timings.total - r.timings.env } else { r.timings.total };
                        times.add(&r.instance_id, &r.repo, secs.max(0.0));
                    }
                }
            }
        }
        times
    }

    /// Adds one instance's time.
    pub fn add(&mut self, instance_id: &str, repo: &str, secs: f64) {
        self.by_instance.insert(instance_id.to_string(), secs);
        let r = self.by_repo.entry(repo.to_string()).or_default();
        *r = (r.0 + secs, r.1 + 1);
        self.all = (self.all.0 + secs, self.all.1 + 1);
    }

    /// How many instances were recorded.
    pub fn len(&self) -> usize {
        self.by_instance.len()
    }

    /// Nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.by_instance.is_empty()
    }

    /// The estimate of one instance: its own recorded time, else its repository's mean, else the
    /// mean of all; and which of the three it is (`instance`, `repo`, `mean`; `None` with nothing
    /// recorded).
    pub fn estimate(&self, instance_id: &str, repo: &str) -> Option<(f64, &'static str)> {
        if let Some(t) = self.by_instance.get(instance_id) {
            return Some((*t, "instance"));
        }
        if let Some((sum, n)) = self.by_repo.get(repo).filter(|(_, n)| *n > 0) {
            return Some((sum / *n as f64, "repo"));
        }
        (self.all.1 > 0).then(|| (self.all.0 / self.all.1 as f64, "mean"))
    }
}

/// A submission plan: what [`Batch`] would submit, with time estimates (`--dry-run`).
#[derive(Debug, Clone)]
pub struct Plan {
    /// The tasks' slices.
    pub slices: Vec<Vec<String>>,
    /// Per task, the estimated wall time in seconds (the sum of its instances' estimates, run one
    /// after another).
    pub task_secs: Vec<f64>,
    /// How many estimates came from the instance's own record, its repository's mean, the mean.
    pub sources: BTreeMap<&'static str, usize>,
    /// Instances without any estimate (nothing recorded).
    pub unestimated: usize,
    /// Instances already recorded (not submitted).
    pub recorded: usize,
    /// Instances of tasks still pending or running.
    pub in_flight: usize,
    /// The job as the engine would be asked for it.
    pub request: String,
}

impl Batch {
    /// The plan of a submission of `tasks`, estimated from `times`.
    pub fn plan(&self, evaluation: &Evaluation, tasks: &[Task], times: &RecordedTimes) -> Result<Plan, ExecutorError> {
        let (pending, in_flight) = self.pending(evaluation, tasks)?;
        let repo_of: HashMap<&str, &str> =
            pending.iter().map(|t| (t.instance.instance_id.as_str(), t.instance.repo.as_str())).collect();
        let ids: Vec<String> = pending.iter().map(|t| t.instance.instance_id.clone()).collect();
        let slices = self.slicing.slices(&ids);
        let mut sources = BTreeMap::new();
        let mut unestimated = 0;
        let task_secs = slices
            .iter()
            .map(|slice| {
                slice
                    .iter()
                    .map(|id| match times.estimate(id, repo_of.get(id.as_str()).copied().unwrap_or_default()) {
                        Some((secs, source)) => {
                            *sources.entry(source).or_default() += 1;
                            secs
                        }
                        None => {
                            unestimated += 1;
                            0.0
                        }
                    })
                    .sum()
            })
            .collect();
        let job = ArrayJob {
            name: format!("rigor-{}", evaluation.run_id),
            tasks: slices.len(),
            command: self.worker.command.clone(),
            workdir: self.worker.workdir.clone(),
            log_dir: batch_dir(&evaluation.run_dir()),
            after: None,
        };
        Ok(Plan {
            request: self.engine.describe(&job),
            recorded: tasks.len() - pending.len() - in_flight,
            slices,
            task_secs,
            sources,
            unestimated,
            in_flight,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn slices_cover_every_instance_once_within_the_array_limit() {
        let ids: Vec<String> = (0..2294).map(|i| format!("i{i}")).collect();
        for slicing in [
            Slicing::default(),
            Slicing { parallelism: Some(64), ..Slicing::default() },
            Slicing { per_task: Some(7), ..Slicing::default() },
            Slicing { per_task: Some(1), max_tasks: 1000, parallelism: Some(2) },
        ] {
            let slices = slicing.slices(&ids);
            assert!(slices.len() <= 1000, "{slicing:?}: {} tasks", slices.len());
            let flat: Vec<String> = slices.concat();
            assert_eq!(flat, ids, "{slicing:?}");
        }
        assert_eq!(Slicing { parallelism: Some(64), ..Slicing::default() }.per_task(2294), 9);
        assert_eq!(Slicing { parallelism: Some(2), ..Slicing::default() }.per_task(23), 3);
        assert_eq!(Slicing::default().per_task(23), 1);
        assert_eq!(Slicing::default().per_task(2294), 3, "at most 1000 tasks");
    }

    #[test]
    fn a_task_reads_its_slice_from_the_index_variable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("submission-0001.json");
        let submission = Submission {
            executor: "test".into(),
            job: "7".into(),
            index_variable: "RIGOR_TEST_SLICE_INDEX".into(),
            slices: vec![vec!["a".into(), "b".into()], vec!["c".into()]],
            submitted_at: String::new(),
        };
        write_submission(&path, &submission).unwrap();
        // SAFETY: this test alone reads or writes this variable.
        unsafe { std::env::set_var("RIGOR_TEST_SLICE_INDEX", "1") };
        assert_eq!(slice_of(&path).unwrap(), ["c"]);
        unsafe { std::env::set_var("RIGOR_TEST_SLICE_INDEX", "2") };
        assert!(slice_of(&path).unwrap_err().to_string().contains("holds 2 slices"));
        unsafe { std::env::remove_var("RIGOR_TEST_SLICE_INDEX") };
        assert!(slice_of(&path).unwrap_err().to_string().contains("is not set"));
    }

    #[test]
    fn estimates_fall_back_from_the_instance_to_its_repository_to_the_mean() {
        let mut t = RecordedTimes::default();
        assert_eq!(t.estimate("x", "r"), None);
        t.add("a-1", "o/a", 10.0);
        t.add("a-2", "o/a", 20.0);
        t.add("b-1", "o/b", 60.0);
        assert_eq!(t.estimate("a-1", "o/a"), Some((10.0, "instance")));
        assert_eq!(t.estimate("a-9", "o/a"), Some((15.0, "repo")));
        assert_eq!(t.estimate("c-1", "o/c"), Some((30.0, "mean")));
    }
}
