//! Confinement and screening of the commands a model chooses.
//!
//! Two independent defences, each usable alone:
//!
//! - **Isolation** ([`Sandbox`]): every command is spawned through bubblewrap in fresh user, PID,
//!   IPC, UTS, cgroup and (by default) network namespaces, with the whole file system mounted
//!   read-only, the workspace bound writable, the home directories hidden, a size-limited tmpfs
//!   as scratch (`/tmp`), a minimal `/dev` and a private `/proc`. Inside, a second stage
//!   ([`stage2`]) applies Landlock (writes only beneath the writable roots; signals and abstract
//!   sockets scoped to the sandbox), bubblewrap installs a seccomp filter (no `ptrace`, mounts,
//!   namespaces, kernel modules, BPF, keyrings, `io_uring`, ...), and rlimits plus a `pids`
//!   cgroup bound memory, file size and the number of processes. The environment is scrubbed of
//!   secrets ([`env`]). If the machine cannot provide this, [`Sandbox::new`] says so and returns
//!   an error: rigor never silently runs a command unconfined. `SandboxMode::Off` is the only way
//!   to run without isolation, and callers are expected to warn loudly when it is chosen.
//! - **Policy** ([`policy::Policy`]): before a command runs it is parsed (tree-sitter-bash for
//!   shell, tree-sitter-python for Python code) and classified `allow`, `ask` or `deny`, with a
//!   reason and advice for the model. [`ApprovalMode`] decides what becomes of `ask`.
//!
//! **Invariant:** only this crate decides how model-chosen commands are spawned. Tools receive a
//! [`Sandbox`] and ask it for a [`std::process::Command`]; they never build one themselves.
//!
//! This crate knows nothing of models, tools, the agent loop or the terminal: it neither prints
//! nor prompts. Approval prompts belong to the front end.

pub mod env;
mod isolation;
mod limits;
pub mod paths;
pub mod policy;
#[cfg(target_os = "linux")]
mod seccomp;
pub mod stage2;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use isolation::{Layers, Prepared, Sandbox, SandboxError, SandboxSpec, SessionGuard};
pub use policy::{Action, Category, Decision, McpApproval, McpCall, Policy, PrefixRule, Verdict};

/// How much of the machine a sandboxed command may change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxMode {
    /// The workspace (and the scratch `/tmp`) writable; everything else read-only or hidden.
    #[default]
    WorkspaceWrite,
    /// Nothing writable but the scratch `/tmp`.
    ReadOnly,
    /// No isolation at all: commands run as the current user. Only ever chosen explicitly.
    Off,
}

impl SandboxMode {
    /// The name used by `--sandbox` and the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxMode::WorkspaceWrite => "workspace-write",
            SandboxMode::ReadOnly => "read-only",
            SandboxMode::Off => "off",
        }
    }
}

impl std::str::FromStr for SandboxMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "workspace-write" => Ok(SandboxMode::WorkspaceWrite),
            "read-only" => Ok(SandboxMode::ReadOnly),
            "off" => Ok(SandboxMode::Off),
            other => Err(format!("unknown sandbox mode `{other}`: use workspace-write, read-only or off")),
        }
    }
}

/// When the user is asked before a command runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApprovalMode {
    /// Never ask: actions the policy would hold for approval are refused, with the reason given
    /// to the model. The mode for headless runs.
    Never,
    /// Ask only for actions the policy classifies as risky (`ask`).
    #[default]
    OnRisk,
    /// Ask before every command (denied actions are still refused without asking); with nobody
    /// to ask, every command is refused.
    Always,
}

impl ApprovalMode {
    /// The name used by `--approval` and the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalMode::Never => "never",
            ApprovalMode::OnRisk => "on-risk",
            ApprovalMode::Always => "always",
        }
    }

    /// What to do with an action the policy classified `verdict`, given whether a person can be
    /// asked right now.
    pub fn resolve(self, verdict: Verdict, can_ask: bool) -> Resolution {
        match (verdict, self) {
            (Verdict::Deny, _) => Resolution::Refuse,
            (Verdict::Allow, ApprovalMode::Always) | (Verdict::Ask, ApprovalMode::OnRisk | ApprovalMode::Always) => {
                // Without anyone to ask, nothing that needs an answer runs: under `always` that
                // is every command.
                if can_ask { Resolution::AskUser } else { Resolution::Refuse }
            }
            (Verdict::Allow, _) => Resolution::Run,
            (Verdict::Ask, ApprovalMode::Never) => Resolution::Refuse,
        }
    }
}

impl std::str::FromStr for ApprovalMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "never" => Ok(ApprovalMode::Never),
            "on-risk" => Ok(ApprovalMode::OnRisk),
            "always" => Ok(ApprovalMode::Always),
            other => Err(format!("unknown approval mode `{other}`: use never, on-risk or always")),
        }
    }
}

/// The outcome of [`ApprovalMode::resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Run it.
    Run,
    /// Ask the user; run only if they approve.
    AskUser,
    /// Do not run it; tell the model why.
    Refuse,
}

/// The `[sandbox]` table of the configuration, and the `--sandbox`, `--network` and
/// `--approval` flags.
///
/// ```toml
/// [sandbox]
/// mode = "workspace-write"      # or "read-only", "off"
/// network = false
/// approval = "on-risk"          # or "never", "always"
/// memory_mb = 8192
/// rules = [{ prefix = ["git", "push"], decision = "ask" }]
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxSettings {
    /// Isolation mode.
    pub mode: SandboxMode,
    /// Allow network access (off by default).
    pub network: bool,
    /// What happens to actions the policy holds for approval.
    pub approval: ApprovalMode,
    /// Address-space limit of each process, in MiB.
    pub memory_mb: u64,
    /// Processes (and threads) the sandbox may hold at once.
    pub max_processes: u32,
    /// Size of the scratch tmpfs mounted on `/tmp`, in MiB.
    pub scratch_mb: u64,
    /// Largest file a command may write, in MiB.
    pub max_file_mb: u64,
    /// Extra writable paths (besides the workspace).
    pub writable: Vec<PathBuf>,
    /// Extra paths made visible read-only even where hidden (e.g. inside the home directory).
    pub readable: Vec<PathBuf>,
    /// Paths relative to the home directory that stay visible (read-only) although the home
    /// directory is hidden: toolchains such as `.rustup` or `.cargo/bin`. Toolchains elsewhere
    /// stay visible too, read-only, when the environment names them (`CARGO_HOME`, `RUSTUP_HOME`,
    /// `PYENV_ROOT`, `NVM_DIR`, `VOLTA_HOME`, `GOROOT`, `GOPATH`, `PATH` entries), except a home
    /// directory itself and anything holding credentials.
    pub home_visible: Vec<String>,
    /// Extra environment variable names to remove before a command runs (beyond the patterns of
    /// [`env::is_secret_name`]).
    pub secret_env: Vec<String>,
    /// User rules, checked before the built-in ones: the first rule whose prefix matches a
    /// command decides it.
    pub rules: Vec<PrefixRule>,
}

impl Default for SandboxSettings {
    fn default() -> Self {
        Self {
            mode: SandboxMode::WorkspaceWrite,
            network: false,
            approval: ApprovalMode::OnRisk,
            memory_mb: 8192,
            max_processes: 1024,
            scratch_mb: 1024,
            max_file_mb: 4096,
            writable: Vec::new(),
            readable: Vec::new(),
            home_visible: default_home_visible(),
            secret_env: Vec::new(),
            rules: Vec::new(),
        }
    }
}

/// Toolchain directories of the home directory that stay readable by default (the default
/// locations; toolchains configured elsewhere through the environment are added by the sandbox).
/// Credentials (`.cargo/credentials.toml`, `.npmrc`, `.pypirc`, ...) are deliberately not among
/// them.
pub fn default_home_visible() -> Vec<String> {
    [
        ".rustup",
        ".cargo/bin",
        ".cargo/registry",
        ".cargo/git",
        ".pyenv",
        ".nvm",
        ".volta",
        "go/bin",
        "go/pkg/mod",
        ".local/bin",
        ".local/lib",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_modes_resolve_verdicts() {
        use Resolution::*;
        let cases = [
            (ApprovalMode::Never, Verdict::Allow, true, Run),
            (ApprovalMode::Never, Verdict::Ask, true, Refuse),
            (ApprovalMode::Never, Verdict::Deny, true, Refuse),
            (ApprovalMode::OnRisk, Verdict::Allow, true, Run),
            (ApprovalMode::OnRisk, Verdict::Ask, true, AskUser),
            (ApprovalMode::OnRisk, Verdict::Ask, false, Refuse),
            (ApprovalMode::OnRisk, Verdict::Deny, true, Refuse),
            (ApprovalMode::Always, Verdict::Allow, true, AskUser),
            (ApprovalMode::Always, Verdict::Allow, false, Refuse),
            (ApprovalMode::Always, Verdict::Ask, false, Refuse),
            (ApprovalMode::Always, Verdict::Deny, true, Refuse),
        ];
        for (mode, verdict, can_ask, expected) in cases {
            assert_eq!(mode.resolve(verdict, can_ask), expected, "{mode:?} {verdict:?} can_ask={can_ask}");
        }
    }

    #[test]
    fn settings_parse_from_toml_with_rules() {
        let text = "mode = 'read-only'\nnetwork = true\napproval = 'never'\n\
                    rules = [{ prefix = ['git', 'push'], decision = 'ask' }]";
        let settings: SandboxSettings = toml::from_str(text).unwrap();
        assert_eq!(settings.mode, SandboxMode::ReadOnly);
        assert!(settings.network);
        assert_eq!(settings.approval, ApprovalMode::Never);
        assert_eq!(settings.rules[0].prefix, vec!["git", "push"]);
        assert_eq!(settings.rules[0].decision, Verdict::Ask);
        assert!(toml::from_str::<SandboxSettings>("mod = 'off'").is_err());
    }
}
