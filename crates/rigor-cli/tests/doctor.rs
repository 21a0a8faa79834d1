//! `rigor doctor` on real machines states: the one it runs on, and one without bubblewrap.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of a test binary

use std::process::Command;

use serde_json::Value;

fn doctor(path: &str, home: &std::path::Path) -> (Option<i32>, Vec<Value>) {
    let out = Command::new(env!("CARGO_BIN_EXE_rigor"))
        .args(["doctor", "--json"])
        .env("PATH", path)
        .env("XDG_CONFIG_HOME", home)
        .env("XDG_CACHE_HOME", home)
        .env_remove("RIGOR_MODEL")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("RIGOR_MODELS_DIR")
        .output()
        .unwrap();
    let rows = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (out.status.code(), rows)
}

fn status<'a>(rows: &'a [Value], check: &str) -> &'a str {
    rows.iter().find(|r| r["check"] == check).and_then(|r| r["status"].as_str()).unwrap_or("absent")
}

#[test]
fn a_machine_without_bubblewrap_is_told_what_to_install() {
    // A PATH with git and python3 but no bwrap.
    let bin = tempfile::tempdir().unwrap();
    for tool in ["git", "python3"] {
        let real =
            String::from_utf8(Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().unwrap().stdout)
                .unwrap();
        std::os::unix::fs::symlink(real.trim(), bin.path().join(tool)).unwrap();
    }
    let home = tempfile::tempdir().unwrap();
    let (code, rows) = doctor(&bin.path().display().to_string(), home.path());
    assert_eq!(code, Some(1), "{rows:?}");
    assert_eq!(status(&rows, "bubblewrap"), "missing", "{rows:?}");
    let fix = rows.iter().find(|r| r["check"] == "bubblewrap").unwrap()["fix"].as_str().unwrap();
    assert!(fix.contains("apt-get install bubblewrap"), "{fix}");
    assert_eq!(status(&rows, "git"), "ok");
    // No model configured and none downloaded into this fresh cache: says how to get one.
    assert_eq!(status(&rows, "model"), "missing", "{rows:?}");
    assert_eq!(status(&rows, "PATH"), "warning", "the binary's directory is not on this PATH");
}

#[test]
fn this_machine_has_what_rigor_needs_to_run_commands() {
    let home = tempfile::tempdir().unwrap();
    let (_, rows) = doctor(&std::env::var("PATH").unwrap(), home.path());
    for check in ["git", "bubblewrap", "sandbox", "python3"] {
        assert_eq!(status(&rows, check), "ok", "{check}: {rows:?}");
    }
}
