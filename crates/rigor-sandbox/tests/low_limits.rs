//! A process whose hard limits are lower than the sandbox's settings (a CI runner, a shared
//! machine) still gets a working sandbox, confined to the lower limit. Its own test binary: the
//! hard limit lowered here cannot be raised again for the rest of the process.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of a test binary

use std::path::PathBuf;
use std::process::Stdio;

use rigor_sandbox::{Sandbox, SandboxSettings, SandboxSpec};

#[test]
fn a_hard_address_space_limit_below_memory_mb_is_kept_not_fatal() {
    const HARD: u64 = 3 << 30;
    let limit = libc::rlimit { rlim_cur: HARD as libc::rlim_t, rlim_max: HARD as libc::rlim_t };
    // SAFETY: setrlimit reads a valid struct; lowering a limit of this test process only.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) }, 0);
    let workspace = tempfile::tempdir().unwrap();
    let settings = SandboxSettings { memory_mb: 8192, ..SandboxSettings::default() };
    let mut spec = SandboxSpec::new(workspace.path(), settings);
    spec.helper = Some(PathBuf::from(env!("CARGO_BIN_EXE_rigor-sandbox-exec")));
    let sandbox = Sandbox::new(spec).unwrap_or_else(|err| panic!("the probe failed under a lower hard limit: {err}"));
    let prepared = sandbox.command("sh", &["-c", "ulimit -H -v"], workspace.path()).unwrap();
    let mut command = prepared.command;
    let out = command.stdin(Stdio::null()).output().unwrap();
    let shown = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(shown, (HARD / 1024).to_string(), "the command runs under the lower limit: {out:?}");
}
