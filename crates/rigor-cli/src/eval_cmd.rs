//! `rigor eval` and `rigor report`: flags, wiring of `rigor-eval`, the progress bar, and the
//! printed summary. The harness itself lives in `rigor-eval`; nothing here evaluates.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rigor_core::config::Config;
use rigor_core::run::RunReport;
use rigor_eval::agent::{AgentSpec, RunSources, RunWiring};
use rigor_eval::dataset::{GOLD_MODEL, by_instance, gold_predictions, load_dataset, load_predictions};
use rigor_eval::executor::{self, Batch, Executor, Local, Phase, Plan, RecordedTimes, Slicing, WorkerCommand};
use rigor_eval::grading::Grading;
use rigor_eval::harness::{EvalScript, Evaluation, HEARTBEAT, Mode, Progress, Task};
use rigor_eval::record::{InstanceResult, InstanceStatus};
use rigor_eval::report::{html, load_run, markdown, summarize, write_summary};
use rigor_eval::slurm::Slurm;
use rigor_eval::spec::SpecRegistry;
use rigor_eval::testing::env::{EnvCache, Installer, rigor_cache_dir};
use rigor_proof::proof::Proof;
use rigor_proof::prover::{ProofSettings, Prover};
use serde_json::{Value, json};

use crate::prove::{Bouncer, ProofArgs};

/// Flags of `rigor eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// Task instances (SWE-bench JSONL or JSON).
    #[arg(long, required_unless_present = "status")]
    dataset: Option<PathBuf>,
    /// Predictions (JSONL/JSON with instance_id, model_name_or_path, model_patch), or `gold`.
    #[arg(long)]
    predictions: Option<String>,
    /// Directory of local clones: DIR/<owner>__<name>, DIR/<owner>/<name> or DIR/<name> (each also with .git).
    #[arg(long, env = "RIGOR_REPOS", required_unless_present = "status")]
    repos: Option<PathBuf>,
    /// Instances evaluated at once.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// Run id; the same id resumes a run, skipping finished instances.
    #[arg(long)]
    run_id: Option<String>,
    /// Where logs/run_evaluation/… and the summary are written.
    #[arg(long, default_value = ".")]
    output: PathBuf,
    /// Only these instances (comma-separated ids).
    #[arg(long, value_delimiter = ',')]
    instance_ids: Vec<String>,
    /// Time limit of one instance's test run, in seconds.
    #[arg(long, default_value_t = 1800)]
    timeout: u64,
    /// Grading rules: v4 (SWE-bench 4.1) or v5 (later fixes).
    #[arg(long, default_value = "v4")]
    grading: Grading,
    /// patch (SWE-bench) or swt (predictions are generated tests; SWT-bench).
    #[arg(long, default_value = "patch", value_parser = ["patch", "swt"])]
    mode: String,
    /// Package installer for environments: uv or pip.
    #[arg(long, default_value = "uv")]
    installer: Installer,
    /// Environment cache directory (default ~/.cache/rigor/envs).
    #[arg(long)]
    env_cache: Option<PathBuf>,
    /// Extra environment spec files (*.toml), overriding the shipped ones.
    #[arg(long)]
    specs: Option<PathBuf>,
    /// Run an agent to produce each patch: `rigor`.
    #[arg(long, value_parser = ["rigor"], conflicts_with = "agent_cmd")]
    agent: Option<String>,
    /// The model of `--agent rigor`, as provider:model.
    #[arg(long, short)]
    model: Option<String>,
    /// Run an external agent command per instance ({issue_file}, {workspace}, {instance_id},
    /// {base_commit}, {repo} are substituted) and grade its `git diff`.
    #[arg(long)]
    agent_cmd: Option<String>,
    /// Name recorded for --agent-cmd runs.
    #[arg(long, default_value = "agent-cmd")]
    agent_name: String,
    /// Time limit of one agent run, in seconds.
    #[arg(long, default_value_t = 3600)]
    agent_timeout: u64,
    /// Maximum model turns of --agent rigor (at least 1).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    max_steps: Option<u32>,
    /// The prompt of --agent rigor: `compact` or `full` [default: chosen for the model].
    #[arg(long, value_name = "PROFILE", value_parser = crate::parse_prompt_profile)]
    prompt: Option<rigor_core::prompt::PromptProfile>,
    /// Grade --agent rigor's patches without proving them (no reproduction, no related tests
    /// run by rigor, no bouncers).
    #[arg(long)]
    no_proof: bool,
    /// `finish` attempts the proof may send back to --agent rigor before the patch is delivered
    /// unproven.
    #[arg(long, value_name = "N", default_value_t = ProofSettings::default().max_rejections)]
    proof_attempts: u32,
    /// Which bouncers judge --agent rigor's runs, as in `rigor run`: `input` abstains on a
    /// non-actionable issue before any model call; `output` withholds an unproven patch
    /// (abstained; the patch is graded all the same, for the abstention precision).
    #[arg(long, value_enum, default_value_t = Bouncer::Input)]
    bouncer: Bouncer,
    /// Value of each task in USD, for the GitTaskBench α-value (instances may carry task_value_usd).
    #[arg(long)]
    task_value: Option<f64>,
    /// Keep the worktrees after grading.
    #[arg(long)]
    keep_worktrees: bool,
    /// Where the instances' worktrees are made (default ~/.cache/rigor/scratch); the run id is
    /// appended.
    #[arg(long)]
    scratch: Option<PathBuf>,
    /// Which script runs the tests: `spec` (rigor's, from the environment spec; a row's own
    /// `eval_script` is used when no spec exists) or `dataset` (each row's `eval_script`, as the
    /// official harness runs it).
    #[arg(long, default_value = "spec")]
    eval_script: EvalScript,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Isolation of test runs and of --agent rigor's commands.
    #[command(flatten)]
    safety: crate::approve::SafetyArgs,
    /// Where instances are evaluated: `local` (this process, --workers at once) or `slurm` (one
    /// `sbatch --array` job on a shared filesystem; each task evaluates a slice, --workers at once).
    #[arg(long, value_enum, default_value_t = ExecutorKind::Local)]
    executor: ExecutorKind,
    /// Slurm partition of the array tasks (config: [slurm] partition).
    #[arg(long)]
    slurm_partition: Option<String>,
    /// How many array tasks may run at once (`--array=…%N`; config: [slurm] array_parallelism).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    slurm_array_parallelism: Option<u64>,
    /// CPUs per array task (config: [slurm] cpus_per_task).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    slurm_cpus_per_task: Option<u32>,
    /// Memory per array task, as sbatch takes it (`8G`; config: [slurm] mem).
    #[arg(long)]
    slurm_mem: Option<String>,
    /// Time limit per array task, as sbatch takes it (`2:00:00`; config: [slurm] time).
    #[arg(long)]
    slurm_time: Option<String>,
    /// Instances per array task (default: about four tasks per slot that may run at once).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    slurm_instances_per_task: Option<u64>,
    /// With --executor slurm: return once submitted; a closing job records lost tasks and writes
    /// the summary when the array has ended.
    #[arg(long)]
    no_wait: bool,
    /// With --executor slurm: print the submission plan (tasks, instances per task, wall-time
    /// estimates from the runs recorded under --output) and submit nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the state of run --run-id under --output (done, running, pending, failed) and exit.
    #[arg(long, requires = "run_id")]
    status: bool,
    /// An array task: evaluate this submission's slice (given by `--executor slurm`).
    #[arg(long, hide = true)]
    batch_task: Option<PathBuf>,
    /// The closing job of a detached submission: record lost tasks, write the summary.
    #[arg(long, hide = true)]
    batch_finish: bool,
}

/// `--executor`.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExecutorKind {
    /// This process.
    Local,
    /// A Slurm job array.
    Slurm,
}

/// Flags of `rigor report`.
#[derive(Args)]
pub struct ReportArgs {
    /// The run id.
    run_id: String,
    /// Where the run's logs are (the --output of `rigor eval`).
    #[arg(long, default_value = ".")]
    output: PathBuf,
    /// Also write a self-contained HTML page here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Write the Markdown here instead of printing it.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

/// Each instance of `--agent rigor` is wired as `rigor run` is: the CLI's tool sources with a
/// fresh prover (unless `--no-proof`) and the configured MCP servers (started per instance, in
/// its worktree, confined like the agent's commands), its bouncers, and its rule for the proof of
/// a run.
struct EvalWiring {
    proof: ProofArgs,
    config: Config,
    sandbox: rigor_sandbox::SandboxSettings,
}

impl RunWiring for EvalWiring {
    fn sources(&self) -> RunSources {
        let prover = self.proof.prover();
        let mcp = crate::mcp_sources(&self.config, &self.sandbox);
        RunSources { sources: crate::tool_sources(prover.as_ref(), mcp), prover }
    }

    fn decline(&self, issue: &str) -> Option<String> {
        self.proof.decline(issue)
    }

    fn proof(&self, report: &RunReport, prover: &Prover) -> Option<Proof> {
        crate::prove::proof_of(report, prover).map(|proof| self.proof.bounce(proof))
    }
}

/// The progress bar (or plain lines when stderr is not a terminal).
struct Bar {
    bar: ProgressBar,
    resolved: AtomicUsize,
    tty: bool,
}

impl Progress for Bar {
    fn started(&self, total: usize, resumed: usize) {
        self.bar.set_length(total as u64);
        if resumed > 0 {
            self.bar.println(format!("resuming: {resumed} of {total} instance(s) already finished"));
            if !self.tty {
                eprintln!("resuming: {resumed} of {total} instance(s) already finished");
            }
        }
    }

    fn heartbeat(&self, instance_id: &str, phase: &str, elapsed: Duration) {
        self.say(format!("{instance_id}: {phase} still running ({:.0}s)", elapsed.as_secs_f64()));
    }

    fn instance_finished(&self, result: &InstanceResult, resumed: bool) {
        if result.status == InstanceStatus::Resolved {
            self.resolved.fetch_add(1, Ordering::SeqCst);
        }
        self.bar.inc(1);
        self.bar.set_message(format!("resolved {}", self.resolved.load(Ordering::SeqCst)));
        if !resumed {
            let proof = match result.agent.as_ref().and_then(|a| a.proof_status) {
                Some(status) => format!(", {}", status.as_str()),
                None => String::new(),
            };
            let line = format!(
                "{} {}{proof} ({:.1}s){}",
                result.instance_id,
                result.status.as_str(),
                result.timings.total,
                if result.message.is_empty() { String::new() } else { format!(": {}", first_line(&result.message)) }
            );
            if self.tty {
                self.bar.println(line);
            } else {
                eprintln!("{line}");
            }
        }
    }
}

impl Bar {
    fn say(&self, line: String) {
        if self.tty {
            self.bar.println(line);
        } else {
            eprintln!("{line}");
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

/// `rigor eval`.
pub async fn eval(args: EvalArgs) -> Result<u8> {
    if args.status {
        return status(&args);
    }
    let (Some(dataset), Some(repos)) = (args.dataset.clone(), args.repos.clone()) else {
        bail!("give --dataset and --repos (or --status with --run-id)");
    };
    if args.executor == ExecutorKind::Local && (args.dry_run || args.no_wait) {
        bail!("--dry-run and --no-wait go with --executor slurm");
    }
    let (instances, bad_rows) = load_dataset(&dataset)?;
    for err in &bad_rows {
        eprintln!("rigor: skipping {err}");
    }
    // Rows that could not be read count as errors in the summary.
    let mut invalid_rows: Vec<String> = bad_rows.iter().map(ToString::to_string).collect();
    let mut instances = instances;
    if !args.instance_ids.is_empty() {
        instances.retain(|i| args.instance_ids.contains(&i.instance_id));
        if instances.is_empty() {
            bail!("none of the --instance-ids is in {}", dataset.display());
        }
    }
    let mode = if args.mode == "swt" { Mode::Swt } else { Mode::Patch };

    // Ctrl-C reaches running agents through this (as well as the harness's cancel flag).
    let interrupt = rigor_core::agent::Interrupt::new();
    let agent = match (&args.agent, &args.agent_cmd) {
        (Some(_), _) => {
            let config = Config::load(None)?;
            let model = config.choose_model(args.model.as_deref())?;
            // The same wiring as `rigor run`: `local:` models run in-process here too.
            let provider = crate::model_cmd::provider_for(&config, &model, false)?;
            let mut settings = config.agent.clone();
            settings.prompt = Some(args.prompt.unwrap_or_else(|| config.prompt_profile(&model)));
            if let Some(n) = args.max_steps {
                settings.max_steps = n;
            }
            settings.timeout_secs = Some(args.agent_timeout);
            args.safety.overrides(&mut settings.sandbox);
            let sandbox = settings.sandbox.clone();
            Some((
                format!("rigor__{}", model.replace(':', "__")),
                AgentSpec::Rigor {
                    provider: Arc::from(provider),
                    settings: Box::new(settings),
                    interrupt: interrupt.clone(),
                    wiring: Arc::new(EvalWiring {
                        config,
                        sandbox,
                        proof: ProofArgs {
                            no_proof: args.no_proof,
                            proof_attempts: args.proof_attempts,
                            test_timeout: ProofSettings::default().test_timeout.as_secs(),
                            apply_unproven: false,
                            bouncer: args.bouncer,
                            candidates: 1,
                            full_suite: false,
                            parallel: false,
                        },
                    }),
                },
            ))
        }
        (None, Some(template)) => Some((
            args.agent_name.clone(),
            AgentSpec::Command { template: template.clone(), timeout: Duration::from_secs(args.agent_timeout) },
        )),
        (None, None) => None,
    };

    let mut tasks = Vec::new();
    let model_name;
    let mut submitted = Vec::new();
    match (&agent, args.predictions.as_deref()) {
        (Some((name, _)), _) => {
            model_name = name.clone();
            for i in &instances {
                submitted.push(i.instance_id.clone());
                tasks.push(Task { instance: i.clone(), prediction: None, model: name.clone(), invalid: None });
            }
        }
        (None, None) => bail!("give --predictions FILE (or `gold`), --agent rigor, or --agent-cmd"),
        (None, Some(spec)) => {
            let (predictions, bad_predictions) = if spec == "gold" {
                (gold_predictions(&instances), Vec::new())
            } else {
                let (preds, bad) = load_predictions(&PathBuf::from(spec))?;
                for err in &bad {
                    eprintln!("rigor: cannot read {err}");
                }
                (preds, bad)
            };
            let predictions = by_instance(predictions);
            // An unreadable prediction of an instance of the dataset makes that instance an error
            // (not an empty patch); any other unreadable row is an error of its own.
            let mut unreadable: BTreeMap<String, String> = BTreeMap::new();
            for err in bad_predictions {
                match err.instance_id.clone().filter(|id| instances.iter().any(|i| &i.instance_id == id)) {
                    Some(id) if !predictions.contains_key(&id) => {
                        unreadable.insert(id, format!("the prediction could not be read: {err}"));
                    }
                    _ => invalid_rows.push(err.to_string()),
                }
            }
            model_name =
                predictions.values().next().map(|p| p.model_name_or_path.clone()).unwrap_or_else(|| GOLD_MODEL.into());
            for i in &instances {
                let prediction = predictions.get(&i.instance_id).cloned();
                if prediction.is_some() {
                    submitted.push(i.instance_id.clone());
                }
                let model =
                    prediction.as_ref().map(|p| p.model_name_or_path.clone()).unwrap_or_else(|| model_name.clone());
                let invalid = unreadable.get(&i.instance_id).cloned();
                if invalid.is_some() {
                    submitted.push(i.instance_id.clone());
                }
                if prediction.is_none() && invalid.is_none() {
                    // No prediction: not evaluated, incomplete in the report (as officially).
                    continue;
                }
                tasks.push(Task { instance: i.clone(), prediction, model, invalid });
            }
        }
    }

    let run_id = args.run_id.clone().unwrap_or_else(rigor_core::run::new_run_id);
    std::fs::create_dir_all(&args.output).with_context(|| format!("cannot create {}", args.output.display()))?;
    let output = args.output.canonicalize()?;
    let cache = rigor_cache_dir();
    let cancel = Arc::new(AtomicBool::new(false));
    let mut sandbox = rigor_sandbox::SandboxSettings::default();
    args.safety.apply(&mut sandbox);
    // Environment builds run the repository's setup code: confined too, with the network.
    // Worktrees and environments are used from other directories: relative paths are made
    // absolute here.
    let absolute = |dir: PathBuf| std::path::absolute(&dir).unwrap_or(dir);
    let envs = EnvCache::new(absolute(args.env_cache.clone().unwrap_or_else(|| cache.join("envs"))), args.installer)
        .with_sandbox(sandbox.clone());
    let evaluation = Evaluation {
        run_id: run_id.clone(),
        output: output.clone(),
        repos: repos.canonicalize().with_context(|| format!("--repos {} does not exist", repos.display()))?,
        scratch: absolute(args.scratch.clone().unwrap_or_else(|| cache.join("scratch"))).join(&run_id),
        specs: Arc::new(SpecRegistry::load(args.specs.as_deref())?),
        envs,
        workers: args.workers,
        timeout: Duration::from_secs(args.timeout),
        grading: args.grading,
        mode,
        agent: agent.map(|(_, a)| a),
        keep_worktrees: args.keep_worktrees,
        sandbox,
        cancel: cancel.clone(),
        eval_script: args.eval_script,
        heartbeat: HEARTBEAT,
    };
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        // SIGTERM is how Slurm stops an array task (scancel, time limit, preemption): handled as
        // Ctrl-C, so that the running instances' processes are killed with the task.
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => signal.recv().await,
                Err(_) => std::future::pending().await,
            }
        };
        let stopped = tokio::select! {
            c = tokio::signal::ctrl_c() => c.is_ok(),
            _ = terminate => true,
        };
        if stopped {
            on_signal.store(true, Ordering::SeqCst);
            // Twice: the agents stop now, a running command included (their instances are
            // recorded as interrupted, and a resumed run evaluates them again).
            interrupt.trigger();
            interrupt.trigger();
            eprintln!("rigor: interrupted; finished instances are kept, rerun with the same --run-id to resume");
        }
    });

    // An array task evaluates its slice, here, and writes no summary (the submitter does).
    if let Some(file) = &args.batch_task {
        let slice = executor::slice_of(file)?;
        tasks.retain(|t| slice.contains(&t.instance.instance_id));
    }
    let batch = match args.executor {
        ExecutorKind::Slurm if args.batch_task.is_none() => Some(slurm_batch(&args, &run_id, &output)?),
        _ => None,
    };
    if let Some(batch) = &batch {
        if args.dry_run {
            let plan = batch.plan(&evaluation, &tasks, &RecordedTimes::read(&output))?;
            print_plan(&plan, batch.slicing.parallelism);
            return Ok(0);
        }
        if !args.batch_finish {
            let (b, e, t) = (batch.clone(), evaluation.clone(), tasks.clone());
            let submitted = tokio::task::spawn_blocking(move || b.submit_pending(&e, &t)).await??;
            match &submitted.job {
                Some(job) => eprintln!(
                    "rigor: submitted {} instance(s) as Slurm job {job} ({} array task(s)){}",
                    submitted.instances,
                    submitted.tasks,
                    if submitted.in_flight > 0 {
                        format!("; {} more in tasks still pending or running", submitted.in_flight)
                    } else {
                        String::new()
                    }
                ),
                None if submitted.in_flight > 0 => eprintln!(
                    "rigor: nothing new to submit; {} instance(s) are in tasks still pending or running",
                    submitted.in_flight
                ),
                None => {}
            }
            if args.no_wait {
                let closing = submitted
                    .closing_job
                    .map(|j| format!(" (job {j} writes the summary after it)"))
                    .unwrap_or_default();
                println!(
                    "submitted{closing}; follow it with: rigor eval --run-id {run_id} --output {} --status",
                    output.display()
                );
                return Ok(0);
            }
        }
    }

    let tty = std::io::stderr().is_terminal();
    let bar = if tty { ProgressBar::new(tasks.len() as u64) } else { ProgressBar::hidden() };
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} · elapsed {elapsed} · eta {eta}") {
        bar.set_style(style);
    }
    let progress = Arc::new(Bar { bar: bar.clone(), resolved: AtomicUsize::new(0), tty });
    let executor: Box<dyn Executor> = match batch {
        // Submitted above: this process waits and records what the tasks lost.
        Some(batch) => Box::new(Batch { submit: false, wait: true, ..batch }),
        None => Box::new(Local),
    };
    let results = executor.execute(&evaluation, tasks, progress).await?;
    bar.finish_and_clear();
    if args.batch_task.is_some() {
        return Ok(if cancel.load(Ordering::SeqCst) { 130 } else { 0 });
    }
    if let Some(lost) = Some(results.iter().filter(|r| r.lost.is_some()).count()).filter(|n| *n > 0) {
        eprintln!(
            "rigor: {lost} instance(s) lost by their array tasks (recorded with Slurm's reason); run the same \
             command again (same --run-id) to evaluate them"
        );
    }
    if cancel.load(Ordering::SeqCst) && args.executor == ExecutorKind::Slurm {
        eprintln!("rigor: stopped waiting; the array goes on (follow it with --status, stop it with scancel)");
    }

    let ids: Vec<String> = instances.iter().map(|i| i.instance_id.clone()).collect();
    let values: BTreeMap<String, f64> = instances
        .iter()
        .filter_map(|i| i.task_value_usd.or(args.task_value).map(|v| (i.instance_id.clone(), v)))
        .collect();
    let mut summary = summarize(&run_id, &model_name, &ids, &submitted, &results, &values);
    summary.submitted_instances = submitted.len();
    summary.add_invalid_rows(invalid_rows);
    let path = write_summary(&output, &evaluation.run_dir(), &summary)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        let invalid = match summary.rigor.invalid_rows.len() {
            0 => String::new(),
            n => format!(" ({n} invalid row(s))"),
        };
        println!(
            "resolved {}/{} · completed {} · empty patch {} · errors {}{invalid} · incomplete {} · mean overhead {:.2}s/instance",
            summary.resolved_instances,
            summary.total_instances,
            summary.completed_instances,
            summary.empty_patch_instances,
            summary.error_instances,
            summary.incomplete_ids.len(),
            summary.rigor.mean_overhead_secs
        );
        if let Some(proof) = &summary.rigor.proof {
            let count = |status: &str| proof.per_status.get(status).map_or(0, |f| f.instances);
            println!(
                "proven {} (precision {}) · unproven {} · abstained {} (precision {})",
                count("proven"),
                proof.precision_of_proven,
                count("unproven"),
                count("abstained"),
                proof.abstention_precision
            );
        }
        println!("summary: {}\nlogs: {}", path.display(), evaluation.run_dir().display());
    }
    if cancel.load(Ordering::SeqCst) {
        return Ok(130);
    }
    if summary.nothing_evaluated() {
        let why = if summary.total_instances == 0 {
            format!("{} holds no valid instance", dataset.display())
        } else {
            format!(
                "no instance was graded: {} error(s), {} empty patch(es) (see the messages above and {})",
                summary.error_instances,
                summary.empty_patch_instances,
                evaluation.run_dir().display()
            )
        };
        eprintln!("rigor: error: nothing could be evaluated: {why}");
        return Ok(EXIT_NOTHING_EVALUATED);
    }
    Ok(0)
}

/// Exit code of `rigor eval` when nothing could be evaluated (every dataset row invalid, or no
/// instance graded and at least one error: a missing clone, every instance failing).
pub const EXIT_NOTHING_EVALUATED: u8 = 1;

/// `rigor report`.
pub fn report(args: ReportArgs) -> Result<u8> {
    let run = load_run(&args.output, &args.run_id).map_err(anyhow::Error::msg)?;
    let md = markdown(&run);
    match &args.markdown {
        Some(path) => std::fs::write(path, &md).with_context(|| format!("cannot write {}", path.display()))?,
        None => print!("{md}"),
    }
    if let Some(path) = &args.html {
        // Links in the page are relative to the run's log directory.
        let page = html(&run).replace("href=\"", &format!("href=\"{}/", run.dir.display()));
        std::fs::write(path, page).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("report: {}", path.display());
    }
    Ok(0)
}

/// The Slurm batch of this run: resources from the flags over `[slurm]` of the configuration; each
/// task runs this binary with this command's arguments (the run id and output made explicit).
fn slurm_batch(args: &EvalArgs, run_id: &str, output: &std::path::Path) -> Result<Batch> {
    let mut settings = Config::load(None)?.slurm;
    let or = |flag: &Option<String>, config: &mut Option<String>| {
        if let Some(v) = flag {
            *config = Some(v.clone());
        }
    };
    or(&args.slurm_partition, &mut settings.partition);
    or(&args.slurm_mem, &mut settings.mem);
    or(&args.slurm_time, &mut settings.time);
    if let Some(n) = args.slurm_array_parallelism {
        settings.array_parallelism = Some(n as usize);
    }
    if let Some(n) = args.slurm_cpus_per_task {
        settings.cpus_per_task = Some(n);
    }
    if let Some(n) = args.slurm_instances_per_task {
        settings.instances_per_task = Some(n as usize);
    }
    let slicing = Slicing {
        per_task: settings.instances_per_task,
        parallelism: settings.array_parallelism,
        ..Slicing::default()
    };
    let program = std::env::current_exe().context("cannot find the rigor binary to run in the array tasks")?;
    let mut command = vec![program.display().to_string()];
    command.extend(worker_args(std::env::args().skip(1), run_id, output));
    let workdir = std::env::current_dir().context("cannot read the current directory")?;
    Ok(Batch {
        engine: Arc::new(Slurm { settings }),
        worker: WorkerCommand { command, workdir },
        slicing,
        submit: !args.batch_finish,
        wait: !args.no_wait,
        poll: Duration::from_secs(1),
    })
}

/// This command's arguments for the array tasks and the closing job: without `--no-wait` and
/// `--dry-run`, with the run id and the (absolute) output directory given explicitly.
fn worker_args(argv: impl Iterator<Item = String>, run_id: &str, output: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut argv = argv.peekable();
    while let Some(arg) = argv.next() {
        match arg.as_str() {
            "--no-wait" | "--dry-run" => {}
            "--run-id" | "--output" => {
                argv.next();
            }
            _ if arg.starts_with("--run-id=") || arg.starts_with("--output=") => {}
            _ => out.push(arg),
        }
    }
    out.extend(["--run-id".into(), run_id.into(), "--output".into(), output.display().to_string()]);
    out
}

/// `--dry-run`: the plan as a short table.
fn print_plan(plan: &Plan, parallelism: Option<usize>) {
    let instances: usize = plan.slices.iter().map(Vec::len).sum();
    let per_task = plan.slices.first().map_or(0, Vec::len);
    println!(
        "plan: {instances} instance(s) to submit in {} array task(s) of up to {per_task} instance(s){}; \
         {} already recorded, {} in tasks still pending or running",
        plan.slices.len(),
        parallelism.map(|p| format!(", at most {p} at once")).unwrap_or_default(),
        plan.recorded,
        plan.in_flight
    );
    let estimated = instances - plan.unestimated;
    if estimated > 0 {
        let mut secs = plan.task_secs.clone();
        secs.sort_by(f64::total_cmp);
        let total: f64 = secs.iter().sum();
        let max = secs.last().copied().unwrap_or_default();
        let median = secs[secs.len() / 2];
        let sources: Vec<String> = plan.sources.iter().map(|(k, n)| format!("{n} by {k}")).collect();
        println!(
            "per-task wall time (estimated from recorded timings: {}): median {}, max {}; {} of work",
            sources.join(", "),
            hms(median),
            hms(max),
            hms(total)
        );
        let slots = parallelism.unwrap_or(plan.slices.len()).max(1);
        println!(
            "with {slots} task(s) at once: about {} of wall time (longest-first packing); ask for --slurm-time {} \
             (twice the longest task)",
            hms(packed(&secs, slots)),
            hms((2.0 * max).max(60.0))
        );
    }
    if plan.unestimated > 0 {
        println!("{} instance(s) without a recorded timing (none under --output)", plan.unestimated);
    }
    println!("{}", plan.request);
}

/// Wall time of `secs` (jobs) on `slots` slots, longest first onto the least loaded slot.
fn packed(secs: &[f64], slots: usize) -> f64 {
    let mut load = vec![0.0f64; slots];
    let mut sorted = secs.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    for s in sorted {
        if let Some(min) = load.iter_mut().min_by(|a, b| a.total_cmp(b)) {
            *min += s;
        }
    }
    load.into_iter().fold(0.0, f64::max)
}

fn hms(secs: f64) -> String {
    let s = secs.round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `rigor eval --status`.
fn status(args: &EvalArgs) -> Result<u8> {
    let Some(run_id) = &args.run_id else { bail!("--status needs --run-id") };
    let run_dir = args.output.join("logs").join("run_evaluation").join(run_id);
    let engine = |name: &str| -> Result<Arc<dyn executor::ArrayEngine>, executor::ExecutorError> {
        match name {
            "slurm" => Ok(Arc::new(Slurm::default())),
            other => Err(executor::ExecutorError::Invalid(format!("this rigor knows no executor {other}"))),
        }
    };
    let state = executor::status(&run_dir, &engine)?;
    let (done, running, pending, failed) = state.counts();
    if args.json {
        let instances: BTreeMap<&str, Value> = state
            .instances
            .iter()
            .map(|(id, phase)| {
                let v = match phase {
                    Phase::Done(s) => json!({"phase": "done", "status": s.as_str()}),
                    Phase::Running => json!({"phase": "running"}),
                    Phase::Pending => json!({"phase": "pending"}),
                    Phase::Failed(why) => json!({"phase": "failed", "reason": why}),
                };
                (id.as_str(), v)
            })
            .collect();
        let jobs: Vec<Value> = state
            .jobs
            .iter()
            .map(|(e, j, n, a)| json!({"executor": e, "job": j, "tasks": n, "active_tasks": a}))
            .collect();
        let counts = json!({"done": done, "running": running, "pending": pending, "failed": failed});
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"run_id": run_id, "counts": counts, "jobs": jobs, "instances": instances})
            )?
        );
        return Ok(0);
    }
    println!(
        "run {run_id}: {} instance(s): done {done} · running {running} · pending {pending} · failed {failed}",
        state.instances.len()
    );
    for (engine, job, tasks, active) in &state.jobs {
        println!("  {engine} job {job}: {tasks} task(s), {active} pending or running");
    }
    for (id, phase) in &state.instances {
        if let Phase::Failed(why) = phase {
            println!("  failed {id}: {}", rigor_protocol::terminal::escape(first_line(why)));
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_tasks_run_this_command_without_the_submitter_s_own_flags() {
        let argv =
            ["eval", "--dataset", "d", "--no-wait", "--run-id", "x", "--output=o", "--dry-run", "--executor", "slurm"]
                .map(String::from);
        let args = worker_args(argv.into_iter(), "r", std::path::Path::new("/abs/out"));
        assert_eq!(args, ["eval", "--dataset", "d", "--executor", "slurm", "--run-id", "r", "--output", "/abs/out"]);
    }

    #[test]
    fn longest_tasks_first_onto_the_least_loaded_slot() {
        assert_eq!(packed(&[5.0, 4.0, 3.0, 3.0, 3.0], 2), 10.0);
        assert_eq!(packed(&[1.0; 10], 64), 1.0);
        assert_eq!(hms(3725.0), "1:02:05");
    }
}
