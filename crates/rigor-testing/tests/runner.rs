//! The test runner with the real sandbox (bubblewrap): what a run gives back, where it may write,
//! and the time limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use rigor_sandbox::SandboxSettings;
use rigor_testing::runner::{TestCommand, TestRunner};

/// A directory outside `/tmp` (the sandbox's `/tmp` is a private tmpfs, so a write there would
/// prove nothing about the host).
fn scratch() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

fn runner(timeout: Duration) -> TestRunner {
    TestRunner::new(timeout, SandboxSettings::default())
}

fn sh(script: &str, dir: &Path) -> TestCommand {
    TestCommand::new("sh", &["-c", script], dir)
}

#[tokio::test]
async fn a_run_gives_its_log_and_exit_code_and_writes_only_the_workspace_and_what_it_was_given() {
    let (workspace, extra, outside) = (scratch(), scratch(), scratch());
    let script = format!(
        "echo \"hello $GREETING\"; echo a > inside; echo b > {extra}/given; echo c > {outside}/taken; exit 3",
        extra = extra.path().display(),
        outside = outside.path().display()
    );
    let command = sh(&script, workspace.path()).var("GREETING", "world").writable(extra.path());
    let run = runner(Duration::from_secs(600)).run(&command).await.unwrap();
    assert_eq!(run.exit_code, Some(3), "{}", run.log);
    assert!(!run.timed_out);
    assert!(run.log.contains("hello world"), "{}", run.log);
    assert!(workspace.path().join("inside").is_file(), "the workspace is writable");
    assert!(extra.path().join("given").is_file(), "a path given as writable is writable");
    assert!(!outside.path().join("taken").exists(), "nothing else is: {}", run.log);
}

#[tokio::test]
async fn the_time_limit_kills_the_run_and_says_so() {
    let workspace = scratch();
    let run = runner(Duration::from_secs(1)).run(&sh("echo started; sleep 600", workspace.path())).await.unwrap();
    assert!(run.timed_out);
    assert_eq!(run.exit_code, None);
    assert!(run.log.contains("started"), "{}", run.log);
}

#[tokio::test]
async fn an_unconfined_runner_writes_where_the_command_says() {
    let (workspace, outside) = (scratch(), scratch());
    let off = SandboxSettings { mode: rigor_sandbox::SandboxMode::Off, ..Default::default() };
    let script = format!("echo c > {}/taken", outside.path().display());
    let run = TestRunner::new(Duration::from_secs(600), off).run(&sh(&script, workspace.path())).await.unwrap();
    assert_eq!(run.exit_code, Some(0), "{}", run.log);
    assert!(outside.path().join("taken").is_file());
}
