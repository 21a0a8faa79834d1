//! The action policy: classifies a shell command or a Python snippet as `allow`, `ask` or `deny`
//! before it runs, with a reason and advice the model can act on.
//!
//! Shell commands are parsed with tree-sitter-bash, so pipelines, `&&`/`||` lists, subshells,
//! command and process substitutions, redirections and heredocs are all seen; the strings given
//! to `sh -c`, `bash -c`, `eval`, `python -c` and the bodies of heredocs fed to a shell or to
//! Python are parsed in turn. Python is parsed with tree-sitter-python and its calls
//! (`os.remove`, `shutil.rmtree`, `open(..., "w")`, `subprocess.*`, `os.system`, `socket`,
//! `requests`/`urllib`, `os.fork`, `os.kill`, ...) are judged like their shell equivalents.
//!
//! Categories and their default verdicts (see [`Category`]): destructive operations or writes
//! outside the workspace (deny on system paths, the home directory and the workspace's
//! ancestors; ask elsewhere; the scratch `/tmp` is free), credential access (deny), exfiltration
//! (piping secrets out: deny; uploading data to a non-local host: ask), download-and-execute
//! (deny), privilege changes (deny), persistence (deny), disk and device writes (deny), killing
//! processes outside the sandbox (deny; name-based `pkill`/`killall`: ask), fork bombs (deny),
//! disabling the sandbox (deny). Lookalikes stay allowed: `rm -rf build/` in the workspace,
//! `curl` to localhost, `kill $!`, `chmod +x script.sh`.
//!
//! The policy is a screen, not the boundary: relative paths are judged against the workspace
//! (not the shell's current directory from earlier calls), and a determined adversary can
//! obfuscate past any static check. The sandbox ([`crate::Sandbox`]) is what holds when the
//! screen misses. This module does not run anything and does not ask anyone.

mod paths;
mod python;
mod shell;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::thread::LocalKey;

use serde::{Deserialize, Serialize};

pub use rigor_protocol::{Category, Verdict};

/// The policy's answer for one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Allow, ask or deny.
    pub verdict: Verdict,
    /// The category of the most serious finding.
    pub category: Category,
    /// A short identifier of the rule that decided (`rm-system-path`, `curl-pipe-shell`, ...).
    pub rule: String,
    /// Why, in one sentence.
    pub reason: String,
    /// What the model may do instead.
    pub advice: String,
}

impl Decision {
    /// The decision for an action with no findings.
    pub fn allow() -> Self {
        Self {
            verdict: Verdict::Allow,
            category: Category::Benign,
            rule: "default".into(),
            reason: "no risky operation found".into(),
            advice: String::new(),
        }
    }

    /// The text shown to the model (and the user) when the action does not run.
    pub fn refusal_message(&self) -> String {
        let mut text =
            format!("refused by rigor's action policy ({}: {}): {}.", self.category.as_str(), self.rule, self.reason);
        if !self.advice.is_empty() {
            text.push(' ');
            text.push_str(&self.advice);
        }
        text
    }
}

/// Something a tool is about to do that the policy screens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// A shell command line (run by bash).
    Shell(String),
    /// Python source code (run by python3).
    Python(String),
    /// A call of a tool of a configured MCP server.
    Mcp(McpCall),
}

/// How far the tools of a configured MCP server are trusted (`approval` of its entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum McpApproval {
    /// Its calls run without asking.
    Never,
    /// Calls of tools the server does not declare read-only are held for approval.
    #[default]
    OnRisk,
    /// Every call is held for approval.
    Always,
}

impl McpApproval {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            McpApproval::Never => "never",
            McpApproval::OnRisk => "on-risk",
            McpApproval::Always => "always",
        }
    }
}

/// A call of an MCP server's tool, as the policy screens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpCall {
    /// What is shown and recorded: `server__tool {arguments}`.
    pub text: String,
    /// The server's configured trust.
    pub approval: McpApproval,
    /// Whether the server declares the tool read-only (a hint from the server, trusted only as far
    /// as the server is configured to be).
    pub read_only: bool,
}

impl Action {
    /// The command or code text.
    pub fn text(&self) -> &str {
        match self {
            Action::Shell(text) | Action::Python(text) => text,
            Action::Mcp(call) => &call.text,
        }
    }
}

/// A user rule: a command whose words start with `prefix` gets `decision`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrefixRule {
    /// Leading words of the command (`["git", "push"]`).
    pub prefix: Vec<String>,
    /// What to decide.
    pub decision: Verdict,
    /// Shown to the model and the user; defaults to naming the rule.
    #[serde(default)]
    pub reason: Option<String>,
}

/// One risky thing found in an action.
#[derive(Debug, Clone)]
pub(crate) struct Finding {
    pub verdict: Verdict,
    pub category: Category,
    pub rule: &'static str,
    pub reason: String,
}

impl Finding {
    pub(crate) fn new(verdict: Verdict, category: Category, rule: &'static str, reason: impl Into<String>) -> Self {
        Self { verdict, category, rule, reason: reason.into() }
    }
}

/// The screen applied to every action of a run.
#[derive(Debug, Clone)]
pub struct Policy {
    workspace: PathBuf,
    home: Option<PathBuf>,
    rules: Vec<PrefixRule>,
}

impl Policy {
    /// A policy for a run whose workspace is `workspace` and whose user's home is `home`.
    pub fn new(workspace: impl Into<PathBuf>, home: Option<PathBuf>) -> Self {
        let workspace = workspace.into();
        let workspace = workspace.canonicalize().unwrap_or(workspace);
        Self { workspace, home, rules: Vec::new() }
    }

    /// Adds user rules, checked before the built-in ones.
    pub fn with_rules(mut self, rules: Vec<PrefixRule>) -> Self {
        self.rules = rules;
        self
    }

    /// The workspace the policy judges paths against.
    pub fn workspace(&self) -> &Path {
        &self.workspace
    }

    /// Classifies an action.
    pub fn check(&self, action: &Action) -> Decision {
        match action {
            Action::Shell(command) => self.check_shell(command),
            Action::Python(code) => self.check_python(code),
            Action::Mcp(call) => check_mcp(call),
        }
    }

    /// Classifies a shell command line.
    pub fn check_shell(&self, command: &str) -> Decision {
        let findings = shell::analyze(self, command, 0);
        decide(findings)
    }

    /// Classifies Python source code.
    pub fn check_python(&self, code: &str) -> Decision {
        let findings = python::analyze(self, code, 0);
        decide(findings)
    }

    /// The user rule matching `argv`, if any.
    pub(crate) fn user_rule(&self, argv: &[String]) -> Option<&PrefixRule> {
        self.rules
            .iter()
            .find(|r| !r.prefix.is_empty() && argv.len() >= r.prefix.len() && argv[..r.prefix.len()] == r.prefix[..])
    }
}

/// An MCP call is decided by its server's configured trust: the server runs in the sandbox, so
/// what is screened is whether its tool may act at all without the user.
fn check_mcp(call: &McpCall) -> Decision {
    let held = |rule: &str, reason: String| Decision {
        verdict: Verdict::Ask,
        category: Category::UserRule,
        rule: rule.to_string(),
        reason,
        advice: "Use a read-only tool of the server, or rigor's own tools, if the user cannot approve.".into(),
    };
    match call.approval {
        McpApproval::Never => Decision::allow(),
        McpApproval::Always => {
            held("mcp-approval-always", format!("the MCP server's entry asks before every call (`{}`)", call.text))
        }
        McpApproval::OnRisk if call.read_only => Decision::allow(),
        McpApproval::OnRisk => held(
            "mcp-on-risk",
            "the MCP tool is not declared read-only, and its server's entry asks before such calls".to_string(),
        ),
    }
}

/// The most serious finding decides; equal verdicts keep the first found.
/// Whether a connection to `host` stays on this machine: an IP address in 127.0.0.0/8, `::1`
/// (also as `::ffff:127.x.y.z`, with or without brackets), the unspecified address (`0.0.0.0`,
/// `::`, which Linux connects to this machine), exactly `localhost`, or a name under
/// `.localhost` (RFC 6761). Anything else is another host, in particular names that merely
/// start like an address, such as `127.0.0.1.example.com`.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host).to_ascii_lowercase();
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => ip.is_loopback() || ip.is_unspecified(),
        Ok(std::net::IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.is_unspecified() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => host == "localhost" || host.ends_with(".localhost"),
    }
}

fn decide(findings: Vec<Finding>) -> Decision {
    let Some(worst) = findings.iter().fold(None::<&Finding>, |acc, f| match acc {
        Some(a) if a.verdict >= f.verdict => Some(a),
        _ => Some(f),
    }) else {
        return Decision::allow();
    };
    if worst.verdict == Verdict::Allow {
        return Decision::allow();
    }
    Decision {
        verdict: worst.verdict,
        category: worst.category,
        rule: worst.rule.to_string(),
        reason: worst.reason.clone(),
        advice: advice(worst.category).to_string(),
    }
}

/// What the model may do instead, per category.
fn advice(category: Category) -> &'static str {
    match category {
        Category::Benign => "",
        Category::Destructive => {
            "Only the workspace and the scratch directory /tmp may be changed: delete or write files there (e.g. \
             `rm -rf build/`), never outside."
        }
        Category::Credentials => {
            "Credentials and the environment's secrets are off limits; the task never needs them. Work with the \
             files of the workspace."
        }
        Category::Exfiltration => {
            "Commands may not send data to other hosts. Fetching from localhost or reading public documentation is \
             fine; keep results in the workspace."
        }
        Category::DownloadExecute => {
            "Code fetched from the network is never executed. Use the project's own files, or install pinned \
             packages with the package manager (pip, npm, cargo) if the network is enabled."
        }
        Category::Privilege => {
            "Commands run unprivileged and cannot change users, ownership or setuid bits; work as the current user \
             inside the workspace."
        }
        Category::Persistence => {
            "Nothing may be scheduled or installed to run later (cron, systemd, shell rc files, authorized_keys). Put \
             scripts in the workspace and run them directly."
        }
        Category::Device => {
            "Disks, partitions and devices are off limits; write ordinary files in the workspace instead."
        }
        Category::ProcessKill => {
            "Only processes the command started may be signalled: use `kill %1`, `kill $!` or the PID you started."
        }
        Category::ForkBomb => "Unbounded process creation is refused; run a bounded number of processes.",
        Category::SandboxEscape => {
            "The sandbox and its configuration may not be changed or escaped; do the work inside it."
        }
        Category::UserRule => "The user's configuration holds this command; choose another way or ask the user.",
    }
}

/// Parses `source` with this thread's parser for `language`, created on first use (parsers are
/// not `Sync`; one per language and thread keeps screening allocation-free after warm-up).
fn parse_with(
    parser: &'static LocalKey<RefCell<Option<tree_sitter::Parser>>>,
    language: &tree_sitter::Language,
    source: &str,
) -> Option<tree_sitter::Tree> {
    parser.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let mut fresh = tree_sitter::Parser::new();
            fresh.set_language(language).ok()?;
            *slot = Some(fresh);
        }
        slot.as_mut()?.parse(source, None)
    })
}
