//! Slurm as an [`ArrayEngine`]: `sbatch --array` submits, `squeue` reports the tasks still pending
//! or running, and `sacct` (or, on clusters without an accounting database, `scontrol show job`,
//! which keeps finished jobs for `MinJobAge`) how the others ended, with Slurm's own state names
//! and reasons.
//!
//! A task runs a small shell script written beside the run's records (`batch/job-<name>.sh`: the
//! worker command, each argument single-quoted), with the submitter's environment
//! (`--export=ALL`, Slurm's default) and working directory; its output goes to
//! `batch/slurm-<job>_<task>.out`. This module knows nothing of instances or evaluations.

use std::path::Path;
use std::process::Command;

pub use rigor_core::config::SlurmSettings;

use crate::executor::{ArrayEngine, ArrayJob, ExecutorError, TaskState};

/// The Slurm engine: its per-task resources.
#[derive(Debug, Clone, Default)]
pub struct Slurm {
    /// Partition, parallelism, CPUs, memory, time limit and more `sbatch` arguments.
    pub settings: SlurmSettings,
}

impl Slurm {
    /// The `sbatch` arguments for `job`, before the script.
    pub fn sbatch_args(&self, job: &ArrayJob, script: &Path) -> Vec<String> {
        let s = &self.settings;
        let mut args = vec!["--parsable".to_string(), format!("--job-name={}", job.name)];
        if job.tasks > 0 {
            let limit = s.array_parallelism.map(|p| format!("%{p}")).unwrap_or_default();
            args.push(format!("--array=0-{}{limit}", job.tasks - 1));
            args.push(format!("--output={}", job.log_dir.join("slurm-%A_%a.out").display()));
        } else {
            args.push(format!("--output={}", job.log_dir.join("slurm-%j.out").display()));
        }
        if let Some(after) = &job.after {
            args.push(format!("--dependency=afterany:{after}"));
        }
        args.push(format!("--chdir={}", job.workdir.display()));
        if let Some(p) = &s.partition {
            args.push(format!("--partition={p}"));
        }
        if let Some(c) = s.cpus_per_task {
            args.push(format!("--cpus-per-task={c}"));
        }
        if let Some(m) = &s.mem {
            args.push(format!("--mem={m}"));
        }
        if let Some(t) = &s.time {
            args.push(format!("--time={t}"));
        }
        args.extend(s.sbatch_args.iter().cloned());
        args.push(script.display().to_string());
        args
    }
}

/// `'text'`, safe for `sh`.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// Runs a Slurm command, giving its stdout; the error says which command failed and why.
fn slurm(program: &str, args: &[String]) -> Result<std::process::Output, ExecutorError> {
    Command::new(program).args(args).output().map_err(|e| {
        ExecutorError::Unavailable(format!(
            "cannot run {program}: {e} (the Slurm client commands must be on PATH; or use --executor local)"
        ))
    })
}

impl ArrayEngine for Slurm {
    fn name(&self) -> &'static str {
        "slurm"
    }

    fn index_variable(&self) -> &'static str {
        "SLURM_ARRAY_TASK_ID"
    }

    fn submit(&self, job: &ArrayJob) -> Result<String, ExecutorError> {
        let script = job.log_dir.join(format!("job-{}.sh", job.name));
        let line: Vec<String> = job.command.iter().map(|a| quote(a)).collect();
        let text = format!("#!/bin/sh\n# written by rigor eval --executor slurm\nexec {}\n", line.join(" "));
        std::fs::write(&script, text)
            .map_err(|e| ExecutorError::Record { path: script.clone(), message: e.to_string() })?;
        let out = slurm("sbatch", &self.sbatch_args(job, &script))?;
        if !out.status.success() {
            return Err(ExecutorError::Refused(format!("sbatch: {}", String::from_utf8_lossy(&out.stderr).trim())));
        }
        // `--parsable`: `jobid[;cluster]`.
        let stdout = String::from_utf8_lossy(&out.stdout);
        let id = stdout.trim().split(';').next().unwrap_or_default().to_string();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
            return Err(ExecutorError::Refused(format!("sbatch printed no job id: {}", stdout.trim())));
        }
        Ok(id)
    }

    fn states(&self, job: &str, tasks: usize) -> Result<Vec<TaskState>, ExecutorError> {
        let mut states = vec![TaskState::Unknown; tasks];
        // Ended tasks first, then the queue: a task seen active in the queue is active, whatever an
        // earlier look found (the queue is read last, so a task cannot end unseen between them).
        for (index, state) in ended(job)? {
            if let Some(slot) = states.get_mut(index) {
                *slot = state;
            }
        }
        let out = slurm("squeue", &["-h".into(), "-r".into(), "-j".into(), job.into(), "-o".into(), "%K|%T".into()])?;
        if out.status.success() {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let Some((index, state)) = line.split_once('|') else { continue };
                let Ok(index) = index.trim().parse::<usize>() else { continue };
                let active = if state.trim() == "PENDING" { TaskState::Pending } else { TaskState::Running };
                if let Some(slot) = states.get_mut(index) {
                    *slot = active;
                }
            }
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            // A job that has left the controller's memory altogether.
            if !err.contains("Invalid job id") {
                return Err(ExecutorError::Unavailable(format!("squeue -j {job}: {}", err.trim())));
            }
        }
        Ok(states)
    }

    fn describe(&self, job: &ArrayJob) -> String {
        let script = job.log_dir.join(format!("job-{}.sh", job.name));
        let args: Vec<String> = self.sbatch_args(job, &script).iter().map(|a| quote(a)).collect();
        format!("sbatch {}", args.join(" "))
    }
}

/// How the ended tasks of `job` ended: from `sacct`, or from `scontrol` where accounting is off.
fn ended(job: &str) -> Result<Vec<(usize, TaskState)>, ExecutorError> {
    let args: Vec<String> =
        ["-n", "-P", "-X", "-j", job, "-o", "JobID,State,Reason,ExitCode"].iter().map(|s| s.to_string()).collect();
    let out = slurm("sacct", &args)?;
    let text = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && !String::from_utf8_lossy(&out.stderr).contains("accounting storage is disabled") {
        return Ok(parse_sacct(job, &text));
    }
    let out = slurm("scontrol", &["-o".into(), "show".into(), "job".into(), job.into()])?;
    Ok(parse_scontrol(job, &String::from_utf8_lossy(&out.stdout)))
}

/// The state of an ended task, from Slurm's words.
fn ended_state(state: &str, reason: &str, exit: &str) -> Option<TaskState> {
    // `CANCELLED by 0` → `CANCELLED`.
    let state = state.split_whitespace().next().unwrap_or_default();
    match state {
        "" | "PENDING" | "RUNNING" | "REQUEUED" | "RESIZING" | "SUSPENDED" | "CONFIGURING" | "COMPLETING"
        | "REQUEUE_FED" | "REQUEUE_HOLD" | "SIGNALING" | "STAGE_OUT" | "STOPPED" => None,
        "COMPLETED" => Some(TaskState::Completed),
        _ => Some(TaskState::Ended { state: state.to_string(), reason: format!("reason {reason}, exit code {exit}") }),
    }
}

/// `sacct -n -P -X -o JobID,State,Reason,ExitCode` lines: `123_4|TIMEOUT|None|0:0`.
fn parse_sacct(job: &str, text: &str) -> Vec<(usize, TaskState)> {
    let prefix = format!("{job}_");
    text.lines()
        .filter_map(|line| {
            let mut f = line.split('|');
            let (id, state, reason, exit) = (f.next()?, f.next()?, f.next()?, f.next()?);
            let index = id.strip_prefix(&prefix)?.parse().ok()?;
            Some((index, ended_state(state, reason, exit)?))
        })
        .collect()
}

/// `scontrol -o show job` lines: `JobId=5 ArrayJobId=4 ArrayTaskId=1 JobState=CANCELLED Reason=None
/// … ExitCode=0:15 …` (pending ranges such as `ArrayTaskId=2-5%2` are skipped).
fn parse_scontrol(job: &str, text: &str) -> Vec<(usize, TaskState)> {
    text.lines()
        .filter_map(|line| {
            let field = |key: &str| {
                line.split_whitespace().find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            };
            if field("ArrayJobId")? != job {
                return None;
            }
            let index = field("ArrayTaskId")?.parse().ok()?;
            let state =
                ended_state(field("JobState")?, field("Reason").unwrap_or("None"), field("ExitCode").unwrap_or("?"))?;
            Some((index, state))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_slurm_accounting_and_controller_listings() {
        let sacct = "12_0|COMPLETED|None|0:0\n12_1|TIMEOUT|None|0:0\n12_2|CANCELLED by 0|None|0:15\n\
                     12_[3-5%2]|PENDING|JobArrayTaskLimit|0:0\n12_6|RUNNING|None|0:0\n13_0|FAILED|None|1:0\n";
        let got = parse_sacct("12", sacct);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0], (0, TaskState::Completed));
        assert_eq!(
            got[1],
            (1, TaskState::Ended { state: "TIMEOUT".into(), reason: "reason None, exit code 0:0".into() })
        );
        assert!(matches!(&got[2].1, TaskState::Ended { state, .. } if state == "CANCELLED"));

        let scontrol = "JobId=5 ArrayJobId=4 ArrayTaskId=1 JobName=x JobState=CANCELLED Reason=None Dependency=(null) ExitCode=0:15\n\
                        JobId=4 ArrayJobId=4 ArrayTaskId=2-5%2 JobState=PENDING Reason=JobArrayTaskLimit ExitCode=0:0\n\
                        JobId=6 ArrayJobId=4 ArrayTaskId=0 JobState=COMPLETED Reason=None ExitCode=0:0\n";
        let got = parse_scontrol("4", scontrol);
        assert_eq!(
            got,
            [
                (1, TaskState::Ended { state: "CANCELLED".into(), reason: "reason None, exit code 0:15".into() }),
                (0, TaskState::Completed)
            ]
        );
    }

    #[test]
    fn asks_sbatch_for_the_array_and_its_resources() {
        let slurm = Slurm {
            settings: SlurmSettings {
                partition: Some("cpu".into()),
                array_parallelism: Some(64),
                cpus_per_task: Some(2),
                mem: Some("8G".into()),
                time: Some("1:00:00".into()),
                instances_per_task: None,
                sbatch_args: vec!["--account=lab".into()],
            },
        };
        let job = ArrayJob {
            name: "rigor-x".into(),
            tasks: 255,
            command: vec!["rigor".into(), "it's".into()],
            workdir: "/w".into(),
            log_dir: "/w/b".into(),
            after: None,
        };
        let args = slurm.sbatch_args(&job, Path::new("/w/b/job.sh"));
        for want in [
            "--array=0-254%64",
            "--partition=cpu",
            "--cpus-per-task=2",
            "--mem=8G",
            "--time=1:00:00",
            "--account=lab",
            "--chdir=/w",
        ] {
            assert!(args.iter().any(|a| a == want), "{want} in {args:?}");
        }
        assert_eq!(args.last().unwrap(), "/w/b/job.sh");
        assert_eq!(quote("it's"), "'it'\\''s'");
    }
}
