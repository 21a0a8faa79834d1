//! Running commands (git, patch, environment builds, test runs) as child processes with a
//! wall-clock limit.
//!
//! Each command gets its own process group, so a timeout kills the whole tree (a test runner and
//! its workers). Output is captured with stdout and stderr interleaved through one pipe, as a
//! terminal would show them. This module does not decide what to run: callers pass the program,
//! arguments, directory, environment and, for commands that run a repository's code (test runs),
//! the sandbox that confines them.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rigor_sandbox::Sandbox;

/// What a finished (or killed) command left behind.
#[derive(Debug, Clone)]
pub struct Finished {
    /// Exit code; `None` when killed by a signal or the timeout.
    pub code: Option<i32>,
    /// stdout and stderr, interleaved.
    pub output: String,
    /// Whether the timeout killed it.
    pub timed_out: bool,
    /// Wall-clock time.
    pub elapsed: Duration,
}

impl Finished {
    /// Exited with code 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// A command to run.
#[derive(Debug, Clone)]
pub struct Cmd<'a> {
    /// The program.
    pub program: &'a str,
    /// Its arguments.
    pub args: Vec<String>,
    /// Working directory.
    pub dir: &'a Path,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Wall-clock limit.
    pub timeout: Duration,
    /// Text written to stdin (then closed).
    pub stdin: Option<String>,
    /// Confines the command (`None`: it runs as the harness does).
    pub sandbox: Option<Arc<Sandbox>>,
    /// Inherited variables it must not see (set again only through `env`).
    pub scrub: Vec<String>,
}

impl<'a> Cmd<'a> {
    /// `program args…` in `dir`, 10 minutes, no extra environment.
    pub fn new(program: &'a str, args: &[&str], dir: &'a Path) -> Self {
        Self {
            program,
            args: args.iter().map(|a| a.to_string()).collect(),
            dir,
            env: Vec::new(),
            timeout: Duration::from_secs(600),
            stdin: None,
            sandbox: None,
            scrub: Vec::new(),
        }
    }

    /// Removes the inherited variables `names` from its environment (those of `env` stay).
    pub fn scrub(mut self, names: &[&str]) -> Self {
        self.scrub.extend(names.iter().map(|n| n.to_string()));
        self
    }

    /// Sets the wall-clock limit.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// Feeds `text` on stdin.
    pub fn stdin(mut self, text: impl Into<String>) -> Self {
        self.stdin = Some(text.into());
        self
    }

    /// Runs it inside `sandbox`.
    pub fn sandbox(mut self, sandbox: Arc<Sandbox>) -> Self {
        self.sandbox = Some(sandbox);
        self
    }

    /// Runs it. Errors only when the program cannot be started.
    pub async fn run(self) -> std::io::Result<Finished> {
        let started = Instant::now();
        // One pipe for both streams keeps their interleaving.
        let (reader, writer) = std::io::pipe()?;
        let writer_err = writer.try_clone()?;
        // The session is kept until the command has finished: dropping it kills what is left.
        let (mut command, _session) = match &self.sandbox {
            Some(sandbox) => {
                let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
                let prepared = sandbox.command(self.program, &args, self.dir).map_err(std::io::Error::other)?;
                (tokio::process::Command::from(prepared.command), Some(prepared.guard))
            }
            None => {
                let mut command = tokio::process::Command::new(self.program);
                command.args(&self.args).current_dir(self.dir);
                (command, None)
            }
        };
        command
            .stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(writer)
            .stderr(writer_err)
            .kill_on_drop(true)
            .process_group(0);
        for name in &self.scrub {
            command.env_remove(name);
        }
        for (k, v) in &self.env {
            command.env(k, v);
        }
        let mut child = command.spawn()?;
        drop(command); // closes our copies of the pipe's write end
        if let (Some(text), Some(mut stdin)) = (self.stdin, child.stdin.take()) {
            use tokio::io::AsyncWriteExt;
            tokio::spawn(async move {
                let _ = stdin.write_all(text.as_bytes()).await;
            });
        }
        let pid = child.id();
        let mut guard = GroupGuard(pid);
        let read = tokio::task::spawn_blocking(move || {
            let mut buf = Vec::new();
            let mut reader = reader;
            let _ = std::io::Read::read_to_end(&mut reader, &mut buf);
            buf
        });
        let (code, timed_out) = match tokio::time::timeout(self.timeout, child.wait()).await {
            Ok(status) => (status?.code(), false),
            Err(_) => {
                kill_group(pid);
                let _ = child.wait().await;
                (None, true)
            }
        };
        // Background children still holding the pipe: give them a moment, then kill the group.
        let bytes = match tokio::time::timeout(Duration::from_secs(5), read).await {
            Ok(Ok(bytes)) => bytes,
            _ => {
                kill_group(pid);
                Vec::new()
            }
        };
        guard.0 = None;
        Ok(Finished {
            code,
            output: String::from_utf8_lossy(&bytes).into_owned(),
            timed_out,
            elapsed: started.elapsed(),
        })
    }
}

/// Kills the child's process group if the future running it is dropped (a cancelled run).
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0);
    }
}

fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill(2) with a negative pid signals the process group we created for the child.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// `s` quoted for a POSIX shell (as it is when it needs no quoting).
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=+@,".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Reads stdout of `git args…` in `dir` (trimmed), or the error output as `Err`; through
/// [`rigor_git::Git::checkout`], so no program a repository's configuration names is run.
pub async fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    rigor_git::Git::checkout(dir).run(args).await.map(|out| out.trim().to_string()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn captures_interleaved_output_and_exit_code() {
        let dir = std::env::temp_dir();
        let done = Cmd::new("sh", &["-c", "echo out; echo err >&2; exit 3"], &dir).run().await.unwrap();
        assert_eq!(done.code, Some(3));
        assert!(done.output.contains("out\n") && done.output.contains("err\n"));
    }

    #[tokio::test]
    async fn scrubbed_variables_are_not_inherited_but_can_be_set_again() {
        let dir = std::env::temp_dir();
        let show = "echo home=${HOME-unset} path=${PATH:+set}";
        let done = Cmd::new("sh", &["-c", show], &dir).scrub(&["HOME"]).run().await.unwrap();
        assert_eq!(done.output.trim(), "home=unset path=set");
        let done = Cmd::new("sh", &["-c", show], &dir).scrub(&["HOME"]).env("HOME", "/x").run().await.unwrap();
        assert_eq!(done.output.trim(), "home=/x path=set");
        assert!(crate::env::TEST_RUN_VARIABLES.contains(&"PYTHONDONTWRITEBYTECODE"));
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        // The background child records its pid, then outlives the leader unless the group is killed.
        let script = "sleep 300 & echo $! > child.pid; sleep 300; echo never";
        let cmd = Cmd::new("sh", &["-c", script], dir.path()).timeout(Duration::from_secs(1));
        let done = cmd.run().await.unwrap();
        assert!(done.timed_out);
        assert!(done.elapsed < Duration::from_secs(10));
        assert!(!done.output.contains("never"));

        let pid: i32 = std::fs::read_to_string(dir.path().join("child.pid")).unwrap().trim().parse().unwrap();
        // Killed, it is gone at once or soon (a zombie until its new parent reaps it); the guard
        // only turns a survivor into a failure instead of a hang.
        let guard = Instant::now() + Duration::from_secs(60);
        while !gone(pid) {
            if Instant::now() >= guard {
                // SAFETY: kills the survivors' group so the failure is not followed by a hang.
                unsafe {
                    libc::kill(-libc::getpgid(pid), libc::SIGKILL);
                }
                panic!("the background child {pid} survived the timeout");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Whether `pid` no longer runs: no such process, or a zombie (dead, not yet reaped).
    fn gone(pid: i32) -> bool {
        // SAFETY: signal 0 only checks that the process exists.
        if unsafe { libc::kill(pid, 0) } != 0 {
            return std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        }
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')))
            .unwrap_or(true)
    }
}
