//! The sandbox and approval flags of `rigor run` and `rigor eval`, and the terminal prompt that answers the
//! action policy's `ask` decisions. This is the only place rigor reads an answer from the user.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;

use async_trait::async_trait;
use clap::Args;
use rigor_core::approval::{ApprovalRequest, Approver};
use rigor_sandbox::{Action, ApprovalMode, SandboxMode, SandboxSettings, Verdict};

/// `--sandbox`, `--network`, `--approval`.
#[derive(Args)]
pub struct SafetyArgs {
    /// Isolation of the agent's commands: workspace-write (default), read-only, or off (no
    /// isolation at all; prints a warning).
    #[arg(long, value_name = "MODE", value_parser = parse_mode)]
    sandbox: Option<SandboxMode>,
    /// Let the agent's commands use the network (off by default).
    #[arg(long)]
    network: bool,
    /// When to ask before a command runs: never (risky commands are refused), on-risk (default:
    /// ask for risky ones), always (ask for every command). Without a terminal, nobody is asked.
    #[arg(long, value_name = "MODE", value_parser = parse_approval)]
    approval: Option<ApprovalMode>,
}

fn parse_mode(s: &str) -> Result<SandboxMode, String> {
    s.parse()
}

fn parse_approval(s: &str) -> Result<ApprovalMode, String> {
    s.parse()
}

impl SafetyArgs {
    /// Applies the flags over the configuration (flags win), warning loudly when the sandbox
    /// is off.
    pub fn apply(&self, settings: &mut SandboxSettings) {
        self.overrides(settings);
        if settings.mode == SandboxMode::Off {
            eprintln!(
                "rigor: WARNING: --sandbox off: commands run unconfined, as you, with access to your files, your \
                 network and every process you own. Only the action policy screens the agent's commands."
            );
        }
    }

    /// Applies the flags over the configuration (flags win), silently.
    pub fn overrides(&self, settings: &mut SandboxSettings) {
        if let Some(mode) = self.sandbox {
            settings.mode = mode;
        }
        if self.network {
            settings.network = true;
        }
        if let Some(approval) = self.approval {
            settings.approval = approval;
        }
    }
}

/// The approver for this run: a terminal prompt when a person is at the terminal and output is
/// for people, otherwise none (`ask` is then refused with an explanation to the model).
pub fn approver(json: bool, settings: &SandboxSettings) -> Option<Arc<dyn Approver>> {
    let interactive = !json && std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    (interactive && settings.approval != ApprovalMode::Never).then(|| Arc::new(TerminalApprover) as Arc<dyn Approver>)
}

/// Asks on the terminal (stderr for the question, stdin for the answer).
struct TerminalApprover;

#[async_trait]
impl Approver for TerminalApprover {
    async fn approve(&self, request: &ApprovalRequest) -> bool {
        let question = describe(request);
        tokio::task::spawn_blocking(move || {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "{question}");
            let _ = err.flush();
            let mut answer = String::new();
            if std::io::stdin().lock().read_line(&mut answer).is_err() {
                return false;
            }
            matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
        })
        .await
        .unwrap_or(false)
    }
}

fn describe(request: &ApprovalRequest) -> String {
    let (kind, text) = match &request.action {
        Action::Shell(command) => ("command", command.as_str()),
        Action::Python(code) => ("Python code", code.as_str()),
    };
    let d = &request.decision;
    let why = if d.verdict == Verdict::Allow {
        "approval mode `always`".to_string()
    } else {
        format!("{}: {}", d.category.as_str(), d.reason)
    };
    format!(
        "\nrigor: the agent wants to run this {kind} ({why}):\n    {}\nrun it? [y/N] ",
        text.replace('\n', "\n    ")
    )
}
