//! The `bash` tool inside a real sandbox: the session behaves as it does unconfined (cwd and
//! variables persist, timeouts kill and restart) while the host outside the workspace stays
//! untouched.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of a test binary

use std::sync::Arc;
use std::time::Duration;

use rigor_sandbox::{Sandbox, SandboxSettings, SandboxSpec};
use rigor_tools::shell::ShellTool;
use rigor_tools::{Tool, ToolContext, ToolOutput};
use serde_json::json;

fn sandboxed(dir: &std::path::Path) -> ToolContext {
    let sandbox = Sandbox::new(SandboxSpec::new(dir, SandboxSettings::default())).unwrap();
    ToolContext { command_timeout: Duration::from_secs(30), sandbox: Arc::new(sandbox), ..ToolContext::new(dir) }
}

async fn bash(tool: &ShellTool, ctx: &ToolContext, command: &str) -> ToolOutput {
    tool.run(json!({ "command": command }), ctx).await
}

#[tokio::test]
async fn the_session_persists_and_only_the_workspace_is_writable() {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let outside = tempfile::tempdir_in("/var/tmp").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let ctx = sandboxed(dir.path());
    let tool = ShellTool::new();
    let out = bash(&tool, &ctx, "cd sub && export GREETING=hello && echo made > f.txt").await;
    assert!(!out.is_error, "{}", out.content);
    let out = bash(&tool, &ctx, &format!("pwd; echo \"$GREETING\"; echo x > {}/y", outside.path().display())).await;
    assert!(out.content.contains("/sub\nhello\n"), "{}", out.content);
    assert!(out.content.contains("Read-only file system"), "{}", out.content);
    assert_eq!(std::fs::read_to_string(dir.path().join("sub/f.txt")).unwrap(), "made\n");
    assert!(!outside.path().join("y").exists());
}

#[tokio::test]
async fn a_timeout_kills_everything_in_the_sandbox_and_restarts_it() {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let ctx = ToolContext { command_timeout: Duration::from_secs(1), ..sandboxed(dir.path()) };
    let tool = ShellTool::new();
    let out = bash(&tool, &ctx, "(setsid sleep 100 &); sleep 100 & echo started; sleep 100").await;
    assert!(out.is_error && out.content.contains("timed out"), "{}", out.content);
    let out = bash(&tool, &ctx, "ps -e -o comm= | grep -c sleep || true").await;
    assert!(out.content.starts_with("0\n"), "processes of the old session survived: {}", out.content);
}
