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
use rigor_eval::grading::Grading;
use rigor_eval::harness::{EvalScript, Evaluation, HEARTBEAT, Mode, Progress, Task};
use rigor_eval::record::{InstanceResult, InstanceStatus};
use rigor_eval::report::{html, load_run, markdown, summarize, write_summary};
use rigor_eval::spec::SpecRegistry;
use rigor_eval::testing::env::{EnvCache, Installer, rigor_cache_dir};
use rigor_proof::proof::Proof;
use rigor_proof::prover::{ProofSettings, Prover};

use crate::prove::{Bouncer, ProofArgs};

/// Flags of `rigor eval`.
#[derive(Args)]
pub struct EvalArgs {
    /// Task instances (SWE-bench JSONL or JSON).
    #[arg(long)]
    dataset: PathBuf,
    /// Predictions (JSONL/JSON with instance_id, model_name_or_path, model_patch), or `gold`.
    #[arg(long)]
    predictions: Option<String>,
    /// Directory of local clones: DIR/<owner>__<name>, DIR/<owner>/<name> or DIR/<name> (each also with .git).
    #[arg(long, env = "RIGOR_REPOS")]
    repos: PathBuf,
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
/// fresh prover (unless `--no-proof`), its bouncers, and its rule for the proof of a run.
struct EvalWiring {
    proof: ProofArgs,
}

impl RunWiring for EvalWiring {
    fn sources(&self) -> RunSources {
        let prover = self.proof.prover();
        RunSources { sources: crate::tool_sources(prover.as_ref()), prover }
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
    let (instances, bad_rows) = load_dataset(&args.dataset)?;
    for err in &bad_rows {
        eprintln!("rigor: skipping {err}");
    }
    // Rows that could not be read count as errors in the summary.
    let mut invalid_rows: Vec<String> = bad_rows.iter().map(ToString::to_string).collect();
    let mut instances = instances;
    if !args.instance_ids.is_empty() {
        instances.retain(|i| args.instance_ids.contains(&i.instance_id));
        if instances.is_empty() {
            bail!("none of the --instance-ids is in {}", args.dataset.display());
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
            if let Some(n) = args.max_steps {
                settings.max_steps = n;
            }
            settings.timeout_secs = Some(args.agent_timeout);
            args.safety.overrides(&mut settings.sandbox);
            Some((
                format!("rigor__{}", model.replace(':', "__")),
                AgentSpec::Rigor {
                    provider: Arc::from(provider),
                    settings: Box::new(settings),
                    interrupt: interrupt.clone(),
                    wiring: Arc::new(EvalWiring {
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
        repos: args.repos.canonicalize().with_context(|| format!("--repos {} does not exist", args.repos.display()))?,
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
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.store(true, Ordering::SeqCst);
            // Twice: the agents stop now, a running command included (their instances are
            // recorded as interrupted, and a resumed run evaluates them again).
            interrupt.trigger();
            interrupt.trigger();
            eprintln!("rigor: interrupted; finished instances are kept, rerun with the same --run-id to resume");
        }
    });

    let tty = std::io::stderr().is_terminal();
    let bar = if tty { ProgressBar::new(tasks.len() as u64) } else { ProgressBar::hidden() };
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {msg} · elapsed {elapsed} · eta {eta}") {
        bar.set_style(style);
    }
    let progress = Arc::new(Bar { bar: bar.clone(), resolved: AtomicUsize::new(0), tty });
    let results = evaluation.run(tasks, progress).await;
    bar.finish_and_clear();

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
            format!("{} holds no valid instance", args.dataset.display())
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
