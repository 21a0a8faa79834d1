//! A command that fails is an error observation: `bash` and `python` report a non-zero exit
//! status with `is_error`, and a zero status without it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of a test binary

use rigor_tools::python::PythonTool;
use rigor_tools::shell::ShellTool;
use rigor_tools::{Tool, ToolContext};
use serde_json::json;

#[tokio::test]
async fn a_non_zero_exit_status_is_an_error_observation() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ToolContext::new(dir.path());
    let bash = ShellTool::new();
    let out = bash.run(json!({ "command": "echo nope; false" }), &ctx).await;
    assert!(out.is_error && out.content.ends_with("exit code: 1"), "{out:?}");
    let out = bash.run(json!({ "command": "echo fine" }), &ctx).await;
    assert!(!out.is_error && out.content.ends_with("exit code: 0"), "{out:?}");

    let python = PythonTool::new();
    let out = python.run(json!({ "code": "1/0" }), &ctx).await;
    assert!(out.is_error && out.content.contains("ZeroDivisionError"), "{out:?}");
    assert!(out.content.ends_with("exit code: 1"), "{out:?}");
    let out = python.run(json!({ "code": "print('ok')" }), &ctx).await;
    assert!(!out.is_error && out.content.starts_with("ok\n"), "{out:?}");
}
