//! Error messages and exit codes of the `rigor` binary: what a newcomer sees when something is
//! wrong (a missing directory, a reused run id, a bad model spec, a garbage trajectory, ...).
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of a test binary

use std::path::Path;
use std::process::{Command, Output};

use rigor_test_support::repo::{example, fixture_repo};

fn rigor(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rigor"))
        .args(args)
        .current_dir(dir)
        .env("XDG_CONFIG_HOME", dir.join(".no-config"))
        .env("NO_COLOR", "1")
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("RIGOR_MODEL")
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        stderr(output)
    )
}

#[test]
fn index_refuses_a_missing_directory_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nonexistent");
    let output = rigor(dir.path(), &["index", "--repo", missing.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(stderr(&output).contains("does not exist"), "{}", describe(&output));
    assert!(!missing.exists(), "nothing is created for a missing --repo");
}

#[test]
fn graph_show_of_an_unknown_entity_names_the_cli_command() {
    let repo = fixture_repo(&example("durations"));
    let output = rigor(repo.path(), &["graph", "show", "NoSuchThing"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let err = stderr(&output);
    assert!(err.contains("rigor graph search") && !err.contains("search_entity"), "{err}");
}
