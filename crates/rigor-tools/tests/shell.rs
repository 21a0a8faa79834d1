//! The `bash` tool as the model experiences it: a persistent session that never hangs and never
//! leaves processes behind.

// Helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use rigor_tools::shell::ShellTool;
use rigor_tools::{Tool, ToolContext, ToolOutput};
use serde_json::json;

fn context(dir: &Path) -> ToolContext {
    ToolContext { command_timeout: Duration::from_secs(30), ..ToolContext::new(dir) }
}

async fn bash(tool: &ShellTool, ctx: &ToolContext, command: &str) -> ToolOutput {
    tool.run(json!({ "command": command }), ctx).await
}

/// Whether `pid` is a live process (zombies count as dead).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X"))
        }
        Err(_) => false,
    }
}

/// Waits until `pid` has exited. The tool sends SIGKILL to the whole process group before it
/// returns, so this only waits for the kernel to carry that out, however loaded the machine. The
/// guard is not a timing assumption: it is far beyond any such wait and well under the 100 s the
/// processes of these tests would live if nobody killed them, so that a survivor fails the test
/// instead of hanging it (or passing once it exits by itself).
async fn wait_dead(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path).unwrap().trim().parse().unwrap()
}

#[tokio::test]
async fn cwd_and_exported_variables_persist_across_calls() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let ctx = context(dir.path());
    let tool = ShellTool::new();
    let out = bash(&tool, &ctx, "cd sub && export GREETING=hello").await;
    assert!(!out.is_error, "{}", out.content);
    let out = bash(&tool, &ctx, "pwd; echo \"$GREETING\"").await;
    assert!(out.content.contains("/sub\nhello\n"), "{}", out.content);
    assert!(out.content.ends_with("exit code: 0"), "{}", out.content);
}

#[tokio::test]
async fn exit_codes_and_stderr_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let tool = ShellTool::new();
    let out = bash(&tool, &ctx, "echo to-stdout; echo to-stderr >&2; (exit 3)").await;
    assert!(out.content.contains("to-stdout"), "{}", out.content);
    assert!(out.content.contains("to-stderr"), "{}", out.content);
    assert!(out.content.ends_with("exit code: 3"), "{}", out.content);
    let out = bash(&tool, &ctx, "true").await;
    assert_eq!(out.content, "(no output)\nexit code: 0");
    let out = bash(&tool, &ctx, "printf 'no newline'").await;
    assert_eq!(out.content, "no newline\nexit code: 0");
}

#[tokio::test]
async fn a_syntax_error_does_not_wedge_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let tool = ShellTool::new();
    let out = bash(&tool, &ctx, "echo \"unclosed").await;
    assert!(out.content.contains("exit code: 2"), "{}", out.content);
    assert!(out.content.contains("unexpected EOF"), "{}", out.content);
    let out = bash(&tool, &ctx, "echo 'it'\"'\"'s fine'").await;
    assert!(out.content.starts_with("it's fine\n"), "{}", out.content);
}

#[tokio::test]
async fn commands_reading_stdin_get_eof_instead_of_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ToolContext { command_timeout: Duration::from_secs(5), ..ToolContext::new(dir.path()) };
    let tool = ShellTool::new();
    let out = bash(&tool, &ctx, "cat; read -r line; echo \"read status $?\"").await;
    assert!(!out.is_error, "{}", out.content);
    assert!(out.content.contains("read status 1"), "{}", out.content);
}

#[tokio::test]
async fn timeout_kills_the_command_and_its_children_and_restarts_the_shell() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    // The timeout must leave the command time to start its processes and write their pids (3 s
    // is ample on a loaded machine); nothing but the timeout can end it.
    let ctx = ToolContext { command_timeout: Duration::from_secs(3), ..ToolContext::new(dir.path()) };
    let tool = ShellTool::new();
    bash(&tool, &ctx, "cd sub && export MARK=set").await;
    let out = bash(
        &tool,
        &ctx,
        "sh -c 'sleep 100 & echo $! > ../child.pid; wait' & echo $! > ../parent.pid; echo started; sleep 100",
    )
    .await;
    assert!(out.is_error);
    assert!(out.content.contains("started"), "partial output is kept: {}", out.content);
    assert!(out.content.contains("timed out after 3 s"), "{}", out.content);
    assert!(out.content.contains("restarted"), "{}", out.content);
    for file in ["child.pid", "parent.pid"] {
        let pid = read_pid(&dir.path().join(file));
        assert!(wait_dead(pid).await, "process {pid} from {file} survived the timeout");
    }
    // A fresh session: back in the workspace, variables gone.
    let out = bash(&tool, &ctx, "pwd; echo \"[$MARK]\"").await;
    let workspace = dir.path().canonicalize().unwrap();
    assert!(out.content.starts_with(&format!("{}\n[]\n", workspace.display())), "{}", out.content);
}

#[tokio::test]
async fn a_call_may_choose_its_own_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let tool = ShellTool::new();
    let out = tool.run(json!({ "command": "sleep 20", "timeout_secs": 1 }), &ctx).await;
    assert!(out.is_error && out.content.contains("timed out after 1 s"), "{}", out.content);
    let out = tool.run(json!({ "command": "true", "timeout_secs": "soon" }), &ctx).await;
    assert!(out.is_error && out.content.contains("timeout_secs"), "{}", out.content);
}

#[tokio::test]
async fn exiting_bash_is_reported_and_the_next_call_gets_a_new_session() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let tool = ShellTool::new();
    let out = bash(&tool, &ctx, "echo bye; exit 7").await;
    assert!(out.is_error);
    assert!(out.content.contains("bye"), "{}", out.content);
    assert!(out.content.contains("the shell exited (status 7)"), "{}", out.content);
    let out = bash(&tool, &ctx, "echo back").await;
    assert_eq!(out.content, "back\nexit code: 0");
}

#[tokio::test]
async fn exiting_while_a_background_child_holds_the_output_open_is_reported_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let tool = ShellTool::new();
    // Promptly: waiting for the child to close the output would end in the 30 s command timeout,
    // reported as such, not as the shell's exit.
    let out = bash(&tool, &ctx, "sleep 100 & echo $! > bg.pid; echo leaving; exit 4").await;
    assert!(out.is_error && out.content.contains("leaving"), "{}", out.content);
    assert!(out.content.contains("the shell exited (status 4)"), "{}", out.content);
    let pid = read_pid(&dir.path().join("bg.pid"));
    assert!(wait_dead(pid).await, "the orphaned background process {pid} was not killed");
}

#[tokio::test]
async fn large_output_is_truncated_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ToolContext { max_output_chars: 2_000, ..context(dir.path()) };
    let tool = ShellTool::new();
    let out = bash(&tool, &ctx, "seq 1 200000").await;
    assert!(out.content.starts_with("1\n2\n3\n"), "{}", &out.content[..50]);
    assert!(out.content.contains("lines) omitted ...]"), "{}", out.content);
    assert!(out.content.ends_with("199999\n200000\nexit code: 0"), "{}", out.content);
    assert!(out.content.len() < 2_200);
}

#[tokio::test]
async fn enormous_output_is_not_buffered_whole() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let tool = ShellTool::new();
    let out = bash(&tool, &ctx, "head -c 8000000 /dev/zero | tr '\\0' a; echo; echo done").await;
    // 8,000,000 characters and 2 newlines in all; the note counts everything that is not shown.
    let note_start = out.content.find("[... ").unwrap();
    let note_end = out.content.find(" characters").unwrap();
    let omitted: usize = out.content[note_start + 5..note_end].replace(',', "").parse().unwrap();
    let shown: usize = out.content.lines().filter(|l| !l.starts_with("[... ")).map(|l| l.matches('a').count()).sum();
    assert_eq!(omitted + shown, 8_000_000, "{}", out.content);
    assert!(out.content.ends_with("done\nexit code: 0"), "{}", out.content);
}

#[tokio::test]
async fn non_utf8_output_is_converted_lossily() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let tool = ShellTool::new();
    let out = bash(&tool, &ctx, "printf 'a\\377b\\n'").await;
    assert_eq!(out.content, "a\u{fffd}b\nexit code: 0");
}

#[tokio::test]
async fn dropping_the_tool_kills_background_processes() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let tool = ShellTool::new();
    let out = bash(&tool, &ctx, "sleep 100 > /dev/null & echo $! > bg.pid").await;
    assert!(!out.is_error, "{}", out.content);
    let pid = read_pid(&dir.path().join("bg.pid"));
    assert!(alive(pid));
    drop(tool);
    assert!(wait_dead(pid).await, "background process {pid} survived the drop");
}

#[tokio::test]
async fn shutdown_kills_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let tool = ShellTool::new();
    bash(&tool, &ctx, "sleep 100 > /dev/null & echo $! > bg.pid").await;
    let pid = read_pid(&dir.path().join("bg.pid"));
    tool.shutdown().await;
    assert!(wait_dead(pid).await);
    let out = bash(&tool, &ctx, "echo again").await;
    assert_eq!(out.content, "again\nexit code: 0");
}

#[tokio::test]
async fn missing_command_is_an_error_observation() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let out = ShellTool::new().run(json!({}), &ctx).await;
    assert!(out.is_error && out.content.contains("command"), "{}", out.content);
}

#[tokio::test]
async fn python_code_actions_run_as_a_whole_in_the_workspace() {
    use rigor_tools::python::PythonTool;
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let tool = PythonTool::new();
    // Multi-line code with quotes of both kinds and a heredoc-looking line runs unchanged.
    let code = "import os\nlines = ['a \"b\"', \"c 'd'\", 'EOF']\nfor l in lines:\n    print(l)\nopen('made.txt', 'w').write(os.getcwd())\n";
    let out = tool.run(json!({ "code": code }), &ctx).await;
    assert!(!out.is_error, "{}", out.content);
    assert!(out.content.contains("a \"b\"\nc 'd'\nEOF"), "{}", out.content);
    let cwd = std::fs::read_to_string(dir.path().join("made.txt")).unwrap();
    assert_eq!(std::fs::canonicalize(cwd).unwrap(), std::fs::canonicalize(dir.path()).unwrap());
    // A failing snippet reports its traceback and exit status.
    let out = tool.run(json!({ "code": "raise SystemExit(3)" }), &ctx).await;
    assert!(out.content.ends_with("exit code: 3"), "{}", out.content);
    let out = tool.run(json!({ "code": "1/0" }), &ctx).await;
    assert!(out.content.contains("ZeroDivisionError"), "{}", out.content);
    // The policy sees Python, not the shell wrapper.
    assert!(
        matches!(tool.action(&json!({"code": "print(1)"})), Some(rigor_sandbox::Action::Python(c)) if c == "print(1)")
    );
    assert!(tool.run(json!({ "code": "  " }), &ctx).await.is_error);
}
