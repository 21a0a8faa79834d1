//! `bash`: one persistent shell session per run.
//!
//! The session is a `bash --noprofile --norc` child started lazily in the workspace, in its own
//! process group, with stderr merged into stdout. The working directory and exported variables
//! persist from one call to the next. Each command is sent as one line,
//! `eval '<command>' < /dev/null 2>&1; printf '\n<marker>%s__\n' "$?"`, and output is read up to
//! that per-command marker, which carries the exit status. Quoting the command for `eval` means a
//! syntax error in it (an unclosed quote, a stray `}`) is an ordinary failed command instead of a
//! shell waiting forever for the rest of the string; stdin from `/dev/null` means a command that
//! reads input gets EOF instead of hanging. (A `{ CMD\n} < /dev/null` group is not used: after a
//! syntax error inside `eval`, bash 5.2 no longer recognises `{` at the start of the next line.)
//! Output beyond a few MB is not buffered: its start and end are kept, the middle is counted.
//! The observation ends with `exit code: N`; a non-zero status makes it an error observation.
//!
//! On a timeout the whole process group is killed (`SIGKILL`) and the next call starts a fresh
//! session. Dropping the tool kills the group too, so no process outlives the run.
//!
//! This module does not decide how bash is confined: it asks the [`rigor_sandbox::Sandbox`] of the
//! [`ToolContext`] for the process to start (bubblewrap, Landlock, seccomp and limits, or, with
//! `--sandbox off`, plain bash) and keeps the sandbox's session guard as long as the session
//! lives. Screening commands before they run is the agent loop's job (see [`Tool::action`]).

use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use rigor_protocol::ToolSpec;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Mutex;

use crate::truncate::truncate_with_gap;
use crate::{Tool, ToolContext, ToolOutput, required_str};
use rigor_sandbox::{Action, SessionGuard};

/// The longest timeout a single call may ask for with `timeout_secs`.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(1800);

/// Bytes of output kept from the start of a command's output; the rest of the budget goes to the end.
const KEEP_HEAD_BYTES: usize = 1 << 20;
/// Bytes of output kept from the end of a command's output.
const KEEP_TAIL_BYTES: usize = 1 << 20;

/// The `bash` tool: a persistent shell session.
pub struct ShellTool {
    session: Mutex<Option<Session>>,
}

impl Default for ShellTool {
    fn default() -> Self {
        Self::new()
    }
}

impl ShellTool {
    /// A tool whose session starts on the first call.
    pub fn new() -> Self {
        Self { session: Mutex::new(None) }
    }

    /// Kills the session's whole process group and waits for bash to exit. The next call starts
    /// a new session. Dropping the tool has the same effect, without the wait.
    pub async fn shutdown(&self) {
        if let Some(mut session) = self.session.lock().await.take() {
            session.kill().await;
        }
    }

    /// Runs one command in the session and describes the outcome.
    pub(crate) async fn execute(&self, command: &str, timeout: Duration, ctx: &ToolContext) -> ToolOutput {
        let mut guard = self.session.lock().await;
        // A call that was cancelled mid-command leaves unread output behind: start afresh.
        if guard.as_ref().is_some_and(|s| s.in_flight)
            && let Some(mut stale) = guard.take()
        {
            stale.kill().await;
        }
        if guard.is_none() {
            match Session::start(ctx) {
                Ok(session) => *guard = Some(session),
                Err(err) => {
                    return ToolOutput::error(format!("could not start bash in {}: {err}", ctx.workspace.display()));
                }
            }
        }
        let Some(session) = guard.as_mut() else {
            return ToolOutput::error("internal error: the shell session is missing");
        };

        let marker = format!("__RIGOR_{}_", uuid::Uuid::new_v4().simple());
        let script = format!("eval {} < /dev/null 2>&1; printf '\\n{marker}%s__\\n' \"$?\"\n", single_quote(command));
        let mut output = OutputBuffer::default();
        session.in_flight = true;
        let outcome = tokio::time::timeout(timeout, session.run(&script, &marker, &mut output)).await;
        match outcome {
            Ok(Ok(status)) => {
                session.in_flight = false;
                let content = format!("{}exit code: {status}", output.render(ctx.max_output_chars));
                // A command that fails is an error observation (the model and the record see it).
                if status == 0 { ToolOutput::ok(content) } else { ToolOutput::error(content) }
            }
            Ok(Err(RunError::Io(err))) => {
                if let Some(mut session) = guard.take() {
                    session.kill().await;
                }
                ToolOutput::error(format!(
                    "{}the shell session failed ({err}); a new session will start in the workspace on the next call",
                    output.render(ctx.max_output_chars)
                ))
            }
            Ok(Err(RunError::Exited)) => {
                let status = match guard.take() {
                    Some(mut session) => session.reap().await,
                    None => None,
                };
                let status = status.map_or_else(|| "unknown".to_string(), |code| code.to_string());
                ToolOutput::error(format!(
                    "{}the shell exited (status {status}); a new session will start in the workspace on the next call \
                     (the working directory and exported variables are reset)",
                    output.render(ctx.max_output_chars)
                ))
            }
            Err(_elapsed) => {
                if let Some(mut session) = guard.take() {
                    session.kill().await;
                }
                ToolOutput::error(format!(
                    "{}the command timed out after {} s and was killed with all its child processes; the shell was \
                     restarted (the working directory is back to the workspace and exported variables are lost). \
                     Run long jobs with a larger `timeout_secs` or in the background with their output sent to a file.",
                    output.render(ctx.max_output_chars),
                    timeout.as_secs()
                ))
            }
        }
    }
}

#[async_trait]
impl Tool for ShellTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "bash".into(),
            description: "Run a command in a persistent bash session in the workspace (cwd and exported variables \
                          persist; stdin is /dev/null; stderr is merged into stdout)."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "command": {"type": "string", "description": "The shell command to run."},
                    "timeout_secs": {"type": "integer", "description": "Time limit for this command, in seconds."}
                },
                "required": ["command"]
            }),
        }
    }

    fn action(&self, args: &Value) -> Option<Action> {
        args.get("command").and_then(Value::as_str).map(|command| Action::Shell(command.to_string()))
    }

    async fn run(&self, args: Value, ctx: &ToolContext) -> ToolOutput {
        let command = match required_str(&args, "command") {
            Ok(command) => command,
            Err(err) => return err,
        };
        if command.trim().is_empty() {
            return ToolOutput::error("`command` is empty");
        }
        let timeout = match args.get("timeout_secs") {
            None | Some(Value::Null) => ctx.command_timeout,
            Some(value) => match value.as_u64() {
                Some(secs) if secs > 0 => Duration::from_secs(secs).min(MAX_TIMEOUT),
                _ => {
                    return ToolOutput::error(format!(
                        "`timeout_secs` must be a positive integer (at most {}), got {value}",
                        MAX_TIMEOUT.as_secs()
                    ));
                }
            },
        };
        self.execute(command, timeout, ctx).await
    }
}

/// Quotes `text` as one single-quoted shell word.
fn single_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Why reading a command's output stopped before its end marker.
enum RunError {
    /// Reading or writing the pipes failed.
    Io(std::io::Error),
    /// bash closed its stdout: it exited (e.g. the command was `exit`).
    Exited,
}

/// A running bash and its pipes.
struct Session {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    /// The process group id (bash's pid).
    pgid: Option<i32>,
    /// A command was sent and its end marker not yet read.
    in_flight: bool,
    /// `exec 2>&1` has been sent.
    started: bool,
    /// The sandbox's resources for this session (its cgroup); dropped after the group is killed.
    _guard: SessionGuard,
}

impl Session {
    fn start(ctx: &ToolContext) -> std::io::Result<Self> {
        // Only the sandbox decides how the model's shell is spawned.
        let prepared =
            ctx.sandbox.command("bash", &["--noprofile", "--norc"], &ctx.workspace).map_err(std::io::Error::other)?;
        let guard = prepared.guard;
        let mut child = Command::from(prepared.command)
            .env("PAGER", "cat")
            .env("GIT_PAGER", "cat")
            .env("TERM", "dumb")
            .env("GIT_TERMINAL_PROMPT", "0")
            .envs(ctx.shell_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // bash's own stderr is redirected to stdout by the first line `run` sends.
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(std::io::Error::other("bash was started without pipes"));
        };
        let pgid = child.id().and_then(|pid| i32::try_from(pid).ok());
        tracing::debug!(?pgid, workspace = %ctx.workspace.display(), "started bash session");
        Ok(Self { child, stdin, stdout, pgid, in_flight: false, started: false, _guard: guard })
    }

    /// Sends `script` and reads output up to the line `<marker><status>__`; returns the status.
    async fn run(&mut self, script: &str, marker: &str, output: &mut OutputBuffer) -> Result<i32, RunError> {
        if !self.started {
            // bash's own stderr joins stdout for the rest of the session.
            self.stdin.write_all(b"exec 2>&1\n").await.map_err(RunError::Io)?;
            self.started = true;
        }
        self.stdin.write_all(script.as_bytes()).await.map_err(RunError::Io)?;
        self.stdin.flush().await.map_err(RunError::Io)?;
        let needle = format!("\n{marker}").into_bytes();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = tokio::select! {
                read = self.stdout.read(&mut chunk) => read.map_err(RunError::Io)?,
                // bash exited while a background child still holds the pipe open (`sleep 9 & exit`):
                // collect what is already written, then report the exit instead of waiting for EOF.
                _ = self.child.wait() => {
                    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(100), self.stdout.read(&mut chunk)).await
                        && n > 0
                    {
                        output.push(&chunk[..n]);
                    }
                    return Err(RunError::Exited);
                }
            };
            if n == 0 {
                return Err(RunError::Exited);
            }
            output.push(&chunk[..n]);
            if let Some(status) = output.take_marker(&needle) {
                return Ok(status);
            }
        }
    }

    /// Kills the whole process group and reaps bash.
    async fn kill(&mut self) {
        self.kill_group();
        let _ = self.child.wait().await;
        // bash is reaped: its pid (the group id) may be reused from now on.
        self.pgid = None;
    }

    /// Waits for bash, which has closed its stdout, and returns its exit code.
    async fn reap(&mut self) -> Option<i32> {
        // bash closed stdout; give it a moment to exit, then make sure nothing is left behind.
        let status = tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
        self.kill_group();
        let code = match status {
            Ok(Ok(status)) => status.code(),
            _ => {
                let _ = self.child.wait().await;
                None
            }
        };
        self.pgid = None;
        code
    }

    fn kill_group(&self) {
        if let Some(pgid) = self.pgid {
            // SAFETY: killpg only sends a signal; the group is the one bash leads (process_group(0)).
            unsafe {
                libc::killpg(pgid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Children of bash share its process group: kill them all, not just bash. Tokio reaps
        // bash in the background (kill_on_drop).
        self.kill_group();
    }
}

/// A command's output, capped: beyond `KEEP_HEAD_BYTES + 2 * KEEP_TAIL_BYTES`, only the first
/// [`KEEP_HEAD_BYTES`] and the last [`KEEP_TAIL_BYTES`] (at least) are kept; the middle is counted
/// and dropped.
#[derive(Default)]
struct OutputBuffer {
    /// The start of the output, once it has been split off `rest`.
    head: Vec<u8>,
    /// The output after `head`, minus `dropped` bytes cut from its front.
    rest: Vec<u8>,
    dropped: usize,
    /// Characters and lines among the dropped bytes.
    dropped_chars: usize,
    dropped_lines: usize,
    /// Where in `rest` to look for the end marker next.
    scan_from: usize,
}

impl OutputBuffer {
    fn push(&mut self, bytes: &[u8]) {
        self.rest.extend_from_slice(bytes);
    }

    /// If the end marker `needle` followed by `<status>__\n` has arrived, removes it and returns
    /// the status; otherwise compacts the buffer.
    fn take_marker(&mut self, needle: &[u8]) -> Option<i32> {
        if let Some(pos) = find(&self.rest[self.scan_from..], needle) {
            let found = self.scan_from + pos;
            let after = &self.rest[found + needle.len()..];
            // The status line is still arriving: look again from the marker next time.
            let Some(end) = find(after, b"__\n") else {
                self.scan_from = found;
                return None;
            };
            let status = std::str::from_utf8(&after[..end]).ok().and_then(|s| s.parse().ok()).unwrap_or(-1);
            self.rest.truncate(found);
            return Some(status);
        }
        // A partial marker may sit at the very end.
        self.scan_from = self.rest.len().saturating_sub(needle.len());
        if self.head.is_empty() && self.dropped == 0 && self.rest.len() > KEEP_HEAD_BYTES + 2 * KEEP_TAIL_BYTES {
            self.head = self.rest.drain(..KEEP_HEAD_BYTES).collect();
            self.scan_from -= KEEP_HEAD_BYTES;
        }
        if !self.head.is_empty() && self.rest.len() > 2 * KEEP_TAIL_BYTES {
            let cut = self.rest.len() - KEEP_TAIL_BYTES;
            let gone = &self.rest[..cut];
            // UTF-8 continuation bytes do not start a character.
            self.dropped_chars += gone.iter().filter(|&&b| b & 0xC0 != 0x80).count();
            self.dropped_lines += gone.iter().filter(|&&b| b == b'\n').count();
            self.rest.drain(..cut);
            self.dropped += cut;
            self.scan_from = self.scan_from.saturating_sub(cut);
        }
        None
    }

    /// The output for the model, cut to `max_chars` with a note, ending with a newline; a
    /// placeholder when there was none.
    fn render(self, max_chars: usize) -> String {
        if self.head.is_empty() && self.rest.is_empty() {
            return "(no output)\n".to_string();
        }
        let head = String::from_utf8_lossy(&self.head);
        let rest = String::from_utf8_lossy(&self.rest);
        let mut text = truncate_with_gap(&head, self.dropped_chars, self.dropped_lines, &rest, max_chars);
        if !text.ends_with('\n') {
            text.push('\n');
        }
        text
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
