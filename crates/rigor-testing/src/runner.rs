//! Running a test command in a directory: with an environment active, inside a sandbox built for
//! it, with a wall-clock limit; the log comes back.
//!
//! A [`TestRunner`] holds what every run of a caller shares (the time limit and the sandbox
//! settings); a [`TestCommand`] says what one run is: the program, the directory it runs in
//! (the workspace, writable), the environment variables that activate an [`Environment`], and
//! what else the sandbox must show (the virtual environment and what `PYTHONPATH` names,
//! readable) or let it write (a log or coverage directory). When the directory is a git worktree
//! the repository's shared git directory is readable, and with [`TestCommand::git_writable`] its
//! private git directory writable (a test script that checks test files out). The network is off unless the command asks for it
//! (an install step, never a test). The evaluation harness runs its `eval.sh` through this, and so
//! will the agent's verifier: both see the same confinement.
//!
//! [`TestRunner::run_ids`] runs chosen tests of a [`Project`] (a repository without a dataset
//! spec) and reads their statuses. Otherwise this module does not decide which tests to run nor
//! read their log: see [`crate::directives`] and [`crate::parsers`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rigor_sandbox::{Sandbox, SandboxMode, SandboxSettings, SandboxSpec};

use crate::env::Environment;
use crate::process::{Cmd, git};
use crate::project::{Project, TestOutcome};
use crate::spec::EnvSpec;

/// Runs test commands: the time limit and the confinement every run shares.
#[derive(Debug, Clone)]
pub struct TestRunner {
    /// Wall-clock limit of one run; the process group is killed past it.
    pub timeout: Duration,
    /// The sandbox of every run (see the module documentation for what a run adds to it);
    /// `SandboxMode::Off` runs commands unconfined.
    pub sandbox: SandboxSettings,
}

/// One command to run, and what its sandbox must show.
#[derive(Debug, Clone)]
pub struct TestCommand {
    /// The program.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Where it runs: the workspace, writable.
    pub dir: PathBuf,
    /// Environment variables (those that activate an environment, the spec's).
    pub env: Vec<(String, String)>,
    /// Paths the sandbox shows read-only besides the defaults.
    pub readable: Vec<PathBuf>,
    /// Paths the sandbox lets it write besides `dir`.
    pub writable: Vec<PathBuf>,
    /// Whether it gets the host's network (an install step; tests never do).
    pub network: bool,
    /// Whether the private git directory of `dir`'s worktree is writable (the script checks
    /// files out, as `eval.sh` does).
    pub git_writable: bool,
}

/// What one run left behind.
#[derive(Debug, Clone)]
pub struct TestRun {
    /// stdout and stderr, interleaved.
    pub log: String,
    /// Whether the time limit killed it.
    pub timed_out: bool,
    /// Wall-clock time.
    pub elapsed: Duration,
    /// The exit code; `None` when a signal or the time limit killed it.
    pub exit_code: Option<i32>,
}

impl TestCommand {
    /// `program args…` in `dir`, with nothing activated.
    pub fn new(program: &str, args: &[&str], dir: &Path) -> Self {
        TestCommand {
            program: program.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            dir: dir.to_path_buf(),
            env: Vec::new(),
            readable: Vec::new(),
            writable: Vec::new(),
            network: false,
            git_writable: false,
        }
    }

    /// `bash script` in `dir`.
    pub fn script(script: &Path, dir: &Path) -> Self {
        Self::new("bash", &[&script.to_string_lossy()], dir)
    }

    /// With `env` active for `spec` ([`Environment::test_env`]): its variables are set, and the
    /// virtual environment and the absolute `PYTHONPATH` entries that exist are readable.
    pub fn in_environment(mut self, env: &Environment, spec: &EnvSpec) -> Self {
        let vars = env.test_env(spec, &self.dir);
        self.readable.extend(env.venv.iter().cloned());
        self.readable.extend(env.base.iter().cloned());
        let python_path = vars.iter().filter(|(k, _)| k == "PYTHONPATH");
        let entries: Vec<PathBuf> =
            python_path.flat_map(|(_, v)| std::env::split_paths(v).collect::<Vec<_>>()).collect();
        self.readable.extend(entries.into_iter().filter(|p| p.is_absolute() && p.exists()));
        self.env.extend(vars);
        self
    }

    /// Sets an environment variable.
    pub fn var(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// Shows `path` read-only.
    pub fn readable(mut self, path: &Path) -> Self {
        self.readable.push(path.to_path_buf());
        self
    }

    /// Lets it write `path` too.
    pub fn writable(mut self, path: &Path) -> Self {
        self.writable.push(path.to_path_buf());
        self
    }

    /// Lets it write the private git directory of its worktree (checkouts, `git apply`).
    pub fn git_writable(mut self) -> Self {
        self.git_writable = true;
        self
    }

    /// Gives it the host's network.
    pub fn with_network(mut self) -> Self {
        self.network = true;
        self
    }
}

impl TestRunner {
    /// A runner with this time limit and sandbox.
    pub fn new(timeout: Duration, sandbox: SandboxSettings) -> Self {
        TestRunner { timeout, sandbox }
    }

    /// Runs `command` confined, within the time limit. Errors when the sandbox cannot be built
    /// or the program cannot be started; a failing or timed-out command is a [`TestRun`].
    pub async fn run(&self, command: &TestCommand) -> Result<TestRun, String> {
        let args: Vec<&str> = command.args.iter().map(String::as_str).collect();
        let mut cmd = Cmd::new(&command.program, &args, &command.dir).timeout(self.timeout);
        if let Some(sandbox) = self.sandbox_for(command).await? {
            cmd = cmd.sandbox(sandbox);
        }
        for (k, v) in &command.env {
            cmd = cmd.env(k, v.clone());
        }
        let done = cmd.run().await.map_err(|e| format!("cannot run {}: {e}", command.program))?;
        Ok(TestRun { log: done.output, timed_out: done.timed_out, elapsed: done.elapsed, exit_code: done.code })
    }

    /// Runs exactly the tests `ids` of `project` in `dir` (the project's root or a copy of it):
    /// [`Project::command`] with the project's environment active, confined with the directory
    /// writable and the network off whatever the runner's settings say, within the time limit.
    /// Gives every status the log reports by id, so that a test that was not chosen and did not
    /// run is absent. Python code is imported from `dir` (its `src/` first, then `dir` itself),
    /// never from an installed copy: an environment with the project installed (editable from the
    /// user's checkout, or a release) would otherwise test other code than `dir`'s.
    pub async fn run_ids(&self, project: &Project, dir: &Path, ids: &[String]) -> Result<TestOutcome, String> {
        let argv = project.command(ids);
        let Some((program, args)) = argv.split_first() else {
            return Err(format!("no command for the {} runner", project.runner.name()));
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut command = TestCommand::new(program, &args, dir);
        command.env.extend(project.env_vars());
        if project.runner.is_python() {
            let roots = [dir.join("src"), dir.to_path_buf()];
            let path = std::env::join_paths(roots.iter().filter(|p| p.is_dir())).unwrap_or_default();
            command.env.push(("PYTHONPATH".into(), path.to_string_lossy().into_owned()));
        }
        command.readable.extend(project.readable());
        let offline =
            TestRunner { sandbox: SandboxSettings { network: false, ..self.sandbox.clone() }, ..self.clone() };
        let run = offline.run(&command).await?;
        Ok(TestOutcome {
            statuses: project.statuses(&run.log),
            log: run.log,
            timed_out: run.timed_out,
            exit_code: run.exit_code,
            elapsed: run.elapsed,
        })
    }

    /// The sandbox of one run, or `None` when runs are unconfined.
    async fn sandbox_for(&self, command: &TestCommand) -> Result<Option<Arc<Sandbox>>, String> {
        if self.sandbox.mode == SandboxMode::Off {
            return Ok(None);
        }
        let mut settings = self.sandbox.clone();
        settings.network |= command.network;
        if command.git_writable
            && let Ok(git_dir) = git(&command.dir, &["rev-parse", "--absolute-git-dir"]).await
        {
            settings.writable.push(PathBuf::from(git_dir));
        }
        if let Ok(common) = git(&command.dir, &["rev-parse", "--path-format=absolute", "--git-common-dir"]).await {
            settings.readable.push(PathBuf::from(common));
        }
        settings.readable.extend(command.readable.iter().cloned());
        settings.writable.extend(command.writable.iter().cloned());
        let spec = SandboxSpec::new(&command.dir, settings);
        match tokio::task::spawn_blocking(move || Sandbox::new(spec)).await {
            Ok(Ok(sandbox)) => Ok(Some(Arc::new(sandbox))),
            Ok(Err(err)) => Err(format!("cannot sandbox the test run: {err} (--sandbox off runs tests unconfined)")),
            Err(join) => Err(format!("the sandbox probe crashed: {join}")),
        }
    }
}
