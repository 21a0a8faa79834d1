//! `python`: a code action, one Python 3 snippet run as a whole.
//!
//! The snippet goes to `python3 -` through a here-document in a shell session of its own (the
//! same machinery as [`crate::shell`]: the sandbox, the timeout that kills the process group,
//! head-and-tail truncation, the activated environment), started in the workspace. Each call is
//! a fresh interpreter; files it writes persist. The action policy screens the code as Python
//! (tree-sitter-python: deletions, subprocesses, sockets, writes outside the workspace, ...)
//! before it runs, through [`Tool::action`].

use async_trait::async_trait;
use rigor_protocol::ToolSpec;
use rigor_sandbox::Action;
use serde_json::{Value, json};

use crate::shell::ShellTool;
use crate::{Tool, ToolContext, ToolOutput, required_str};

/// Ends the here-document holding the snippet.
const END_OF_CODE: &str = "RIGOR_END_OF_PYTHON_SNIPPET";

/// The `python` tool.
#[derive(Default)]
pub struct PythonTool {
    shell: ShellTool,
}

impl PythonTool {
    /// A tool whose shell session starts on the first call.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Tool for PythonTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "python".into(),
            description: "Run a Python 3 snippet as one action (fresh interpreter, in the repository root); \
                          returns its output and exit code. For logic awkward in shell: reproducing a bug, \
                          checking a fix."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "code": {"type": "string", "description": "The Python source to run."}
                },
                "required": ["code"]
            }),
        }
    }

    fn action(&self, args: &Value) -> Option<Action> {
        args.get("code").and_then(Value::as_str).map(|code| Action::Python(code.to_string()))
    }

    async fn run(&self, args: Value, ctx: &ToolContext) -> ToolOutput {
        let code = match required_str(&args, "code") {
            Ok(code) => code,
            Err(err) => return err,
        };
        if code.trim().is_empty() {
            return ToolOutput::error("`code` is empty");
        }
        if code.lines().any(|line| line.trim() == END_OF_CODE) {
            return ToolOutput::error(format!("`code` may not contain a line `{END_OF_CODE}`"));
        }
        let command = format!("python3 - <<'{END_OF_CODE}'\n{code}\n{END_OF_CODE}");
        self.shell.execute(&command, ctx.command_timeout, ctx).await
    }
}
