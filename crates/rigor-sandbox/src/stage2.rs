//! The second stage of the sandbox: runs inside bubblewrap's namespaces, applies Landlock to
//! itself, then executes the command.
//!
//! Landlock cannot be applied before bubblewrap (a Landlock-restricted process may not mount,
//! and bubblewrap must), so a small helper runs between bubblewrap and the command:
//! `HELPER --rigor-sandbox-stage2 '<json spec>' -- PROGRAM ARGS...`. Any binary can be that
//! helper by calling [`run_if_requested`] first thing in `main`: the `rigor` binary does, and so
//! does `rigor-sandbox-exec` (this crate's own binary). Calling it also registers the current
//! executable as the helper for [`crate::Sandbox`]s created later in the process.
//!
//! The Landlock ruleset: read and execute beneath `/` (what bubblewrap left visible), every
//! access beneath the writable roots (workspace, scratch `/tmp`, the hidden home's tmpfs, `/dev`),
//! and, where the kernel has them (ABI 6), signals and abstract UNIX sockets scoped to the
//! sandbox. On a kernel without Landlock the helper still runs the command (the namespaces
//! and seccomp still hold) and the probe reports it.
//!
//! This module does not decide what is writable: the spec comes from `isolation`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The first argument that selects the second stage.
pub const STAGE2_FLAG: &str = "--rigor-sandbox-stage2";

/// What the second stage applies.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Stage2Spec {
    /// Paths (as seen inside the sandbox) beneath which everything is allowed.
    pub writable: Vec<PathBuf>,
    /// Print the Landlock status (`landlock=<status>`) on stdout before executing.
    pub probe: bool,
}

static HELPER: OnceLock<PathBuf> = OnceLock::new();

/// If this process was started as the sandbox's second stage, applies Landlock and executes the
/// command (never returning); otherwise registers the current executable as the helper and
/// returns. Call it first thing in `main`.
pub fn run_if_requested() {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == STAGE2_FLAG) {
        let code = match stage2(&args[2..]) {
            Ok(never) => match never {},
            Err(message) => {
                eprintln!("rigor sandbox: {message}");
                126
            }
        };
        std::process::exit(code);
    }
    if let Ok(exe) = std::env::current_exe() {
        let _ = HELPER.set(exe);
    }
}

/// The helper registered by [`run_if_requested`] in this process, if any.
pub fn registered_helper() -> Option<PathBuf> {
    HELPER.get().cloned()
}

enum Never {}

fn stage2(args: &[OsString]) -> Result<Never, String> {
    let (spec, command) = match args {
        [spec, sep, command @ ..] if sep == "--" && !command.is_empty() => (spec, command),
        _ => return Err(format!("usage: {STAGE2_FLAG} SPEC -- PROGRAM [ARGS...]")),
    };
    let spec: Stage2Spec =
        serde_json::from_str(&spec.to_string_lossy()).map_err(|e| format!("bad second-stage spec: {e}"))?;
    let status = restrict(&spec)?;
    if spec.probe {
        println!("landlock={status}");
    }
    exec(command)
}

#[cfg(target_os = "linux")]
fn restrict(spec: &Stage2Spec) -> Result<String, String> {
    use landlock::{
        ABI, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
    };
    let abi = ABI::V6;
    let fail = |e: landlock::RulesetError| format!("cannot apply Landlock: {e}");
    let mut writable: Vec<PathBuf> = spec.writable.clone();
    writable.push(PathBuf::from("/dev"));
    let status = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .map_err(fail)?
        .scope(Scope::from_all(abi))
        .map_err(fail)?
        .create()
        .map_err(fail)?
        .add_rules(path_beneath_rules(["/"], AccessFs::from_read(abi)))
        .map_err(fail)?
        .add_rules(path_beneath_rules(&writable, AccessFs::from_all(abi)))
        .map_err(fail)?
        .restrict_self()
        .map_err(fail)?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => "fully_enforced",
        RulesetStatus::PartiallyEnforced => "partially_enforced",
        RulesetStatus::NotEnforced => "not_enforced",
    }
    .to_string())
}

#[cfg(not(target_os = "linux"))]
fn restrict(_spec: &Stage2Spec) -> Result<String, String> {
    Ok("unsupported".into())
}

fn exec(command: &[OsString]) -> Result<Never, String> {
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(&command[0]).args(&command[1..]).exec();
    Err(format!("cannot execute {}: {err}", command[0].to_string_lossy()))
}
