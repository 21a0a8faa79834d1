//! The workspace's `.git` and `.rigor` stay read-only inside the sandbox: with `--in-place` the
//! workspace is the user's checkout, whose `.git` holds hooks and configuration that git runs on
//! the host, and `.rigor` holds rigor's configuration and run records. Checked from outside.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of a test binary

use std::path::PathBuf;
use std::process::Stdio;

use rigor_sandbox::{Sandbox, SandboxSettings, SandboxSpec};

#[test]
fn git_metadata_and_rigor_state_in_the_workspace_cannot_be_changed_from_inside() {
    let workspace = tempfile::Builder::new().prefix("rigor-protected-").tempdir_in("/var/tmp").unwrap();
    let ws = workspace.path();
    let git = std::process::Command::new("git").args(["init", "-q"]).current_dir(ws).status().unwrap();
    assert!(git.success());
    std::fs::create_dir_all(ws.join(".rigor")).unwrap();
    std::fs::write(ws.join(".rigor/config.toml"), "# the user's\n").unwrap();
    let config_before = std::fs::read(ws.join(".git/config")).unwrap();

    let mut spec = SandboxSpec::new(ws, SandboxSettings::default());
    spec.helper = Some(PathBuf::from(env!("CARGO_BIN_EXE_rigor-sandbox-exec")));
    let sandbox = Sandbox::new(spec).unwrap();
    let script = "echo '[core] fsmonitor = evil' >> .git/config; printf '#!/bin/sh\\nid\\n' > .git/hooks/post-checkout; \
                  echo '[sandbox]' > .rigor/config.toml; mkdir -p .rigor/runs/x; rm -rf .git; mv .rigor moved; \
                  echo fine > ordinary.txt";
    let prepared = sandbox.command("bash", &["-c", script], ws).unwrap();
    let mut command = prepared.command;
    let out = command.stdin(Stdio::null()).output().unwrap();
    drop(prepared.guard);

    assert_eq!(std::fs::read(ws.join(".git/config")).unwrap(), config_before, "{out:?}");
    assert!(!ws.join(".git/hooks/post-checkout").exists());
    assert_eq!(std::fs::read_to_string(ws.join(".rigor/config.toml")).unwrap(), "# the user's\n");
    assert!(!ws.join(".rigor/runs").exists() && !ws.join("moved").exists());
    assert_eq!(std::fs::read_to_string(ws.join("ordinary.txt")).unwrap(), "fine\n", "the rest stays writable");
}
