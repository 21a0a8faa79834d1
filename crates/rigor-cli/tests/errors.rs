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

/// An issue the input bouncer lets through (it names code and the expected value).
const ACTIONABLE: &str = "parse_duration(\"1h30m\") returns 1800 instead of 5400";
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

/// A user configuration with a provider `scripted` at an address nothing listens on (the tests
/// using it fail before any model call).
fn unreachable_provider() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("rigor")).unwrap();
    std::fs::write(
        home.path().join("rigor/config.toml"),
        "[providers.scripted]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmax_attempts = 1\n",
    )
    .unwrap();
    home
}

#[test]
fn a_reused_run_id_is_refused_before_anything_is_created() {
    let repo = fixture_repo(&example("durations"));
    let taken = repo.path().join(".rigor/runs/taken");
    std::fs::create_dir_all(&taken).unwrap();
    std::fs::write(taken.join("trajectory.jsonl"), "{\"recorded\": true}\n").unwrap();
    let config = unreachable_provider();
    let output = Command::new(env!("CARGO_BIN_EXE_rigor"))
        .args(["run", "--issue", "fix it", "--model", "scripted:m", "--run-id", "taken"])
        .current_dir(repo.path())
        .env("XDG_CONFIG_HOME", config.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let err = stderr(&output);
    assert!(err.contains("run id taken already exists in .rigor/runs; choose another or leave --run-id out"), "{err}");
    assert!(!err.contains("fatal"), "{err}");
    assert_eq!(std::fs::read_to_string(taken.join("trajectory.jsonl")).unwrap(), "{\"recorded\": true}\n");
    assert!(!repo.path().join(".rigor/worktrees/taken").exists(), "no worktree was made");
}

#[test]
fn max_steps_zero_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    for command in [&["run", "--issue", "x"][..], &["eval", "--dataset", "d.jsonl", "--repos", "."][..]] {
        let mut args = command.to_vec();
        args.extend(["--max-steps", "0"]);
        let output = rigor(dir.path(), &args);
        assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
        assert!(stderr(&output).contains("--max-steps"), "{}", describe(&output));
    }
}

#[test]
fn a_directory_given_as_a_local_model_is_named_as_one() {
    let repo = fixture_repo(&example("durations"));
    let not_a_model = tempfile::tempdir().unwrap();
    let spec = format!("local:{}", not_a_model.path().display());
    let output = rigor(repo.path(), &["run", "--issue", "fix it", "--model", &spec]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let err = stderr(&output);
    assert!(err.contains("is a directory") && err.contains("GGUF file is expected"), "{err}");
    assert!(!err.contains("not found"), "{err}");
}

#[test]
fn replay_of_a_garbage_file_names_the_file_and_the_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "this is not a trajectory").unwrap();
    let output = rigor(dir.path(), &["replay", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let err = stderr(&output);
    assert!(err.contains(file.to_str().unwrap()) && err.contains("not a rigor trajectory: line 1"), "{err}");
}

#[test]
fn a_bare_openai_model_name_gets_openai_suggested() {
    let repo = fixture_repo(&example("durations"));
    let output = rigor(repo.path(), &["run", "--issue", "fix it", "--model", "gpt-4o"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let err = stderr(&output);
    assert!(err.contains("e.g. openai:gpt-4o") && !err.contains("anthropic:gpt-4o"), "{err}");
}

#[test]
fn a_retry_is_reported_once_and_a_redirected_stderr_gets_no_colours() {
    use rigor_test_support::server::{Flavor, Reply, ScriptedServer, Step};
    let repo = fixture_repo(&example("durations"));
    // Without RIGOR_LOG, then with the retry diagnostics on (they must be plain text too).
    for log in [None, Some("rigor_llm=debug")] {
        let server = ScriptedServer::start_blocking(
            Flavor::OpenAi,
            vec![
                Step::Status { code: 500, retry_after: None, body: "internal error".into() },
                Step::Reply(Reply::call("abstain", "{\"reason\": \"demo\"}")),
            ],
        );
        let config = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(config.path().join("rigor")).unwrap();
        std::fs::write(
            config.path().join("rigor/config.toml"),
            format!(
                "[providers.scripted]\nkind = \"openai\"\nbase_url = \"{}\"\nmax_attempts = 3\ninitial_backoff_ms = 20\n",
                server.base_url()
            ),
        )
        .unwrap();
        // Human output, stdout and stderr redirected, NO_COLOR unset.
        let mut command = Command::new(env!("CARGO_BIN_EXE_rigor"));
        command
            .args(["run", "--issue", ACTIONABLE, "--model", "scripted:m"])
            .current_dir(repo.path())
            .env("XDG_CONFIG_HOME", config.path())
            .env_remove("NO_COLOR")
            .env_remove("RIGOR_LOG");
        if let Some(filter) = log {
            command.env("RIGOR_LOG", filter);
        }
        let output = command.output().unwrap();
        assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
        let both = format!("{}{}", String::from_utf8_lossy(&output.stdout), stderr(&output));
        assert_eq!(both.matches("attempt 1 failed").count(), 1, "{both}");
        assert_eq!(both.contains("model call failed"), log.is_some(), "{both}");
        assert!(!both.contains('\x1b'), "no ANSI codes off a terminal: {both:?}");
    }
}

#[test]
fn replays_are_marked_and_export_skips_them_unless_asked() {
    use rigor_test_support::server::{Flavor, Reply, ScriptedServer, Step};
    let repo = fixture_repo(&example("durations"));
    let server = ScriptedServer::start_blocking(
        Flavor::OpenAi,
        vec![
            Step::Reply(Reply::call("bash", "{\"command\": \"echo hi\"}")),
            Step::Reply(Reply::call("abstain", "{\"reason\": \"demo\"}")),
        ],
    );
    let config = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(config.path().join("rigor")).unwrap();
    std::fs::write(
        config.path().join("rigor/config.toml"),
        format!("[providers.scripted]\nkind = \"openai\"\nbase_url = \"{}\"\n", server.base_url()),
    )
    .unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rigor"))
            .args(args)
            .current_dir(repo.path())
            .env("XDG_CONFIG_HOME", config.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let output = run(&["run", "--issue", ACTIONABLE, "--model", "scripted:m", "--run-id", "original", "--json"]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let output = run(&["replay", ".rigor/runs/original", "--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));

    let runs: Vec<_> = std::fs::read_dir(repo.path().join(".rigor/runs")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    let replay_dir = runs.iter().find(|p| !p.ends_with("original")).unwrap();
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(replay_dir.join("result.json")).unwrap()).unwrap();
    assert_eq!(result["replay_of"], "original", "{result}");

    let dirs: Vec<&str> = runs.iter().map(|p| p.to_str().unwrap()).collect();
    let mut args = vec!["export"];
    args.extend(&dirs);
    let output = run(&args);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.lines().count(), 1, "the replay is skipped: {}", describe(&output));
    assert!(stdout.contains("\"original\""), "{stdout}");
    assert!(stderr(&output).contains("a replay of run original"), "{}", describe(&output));
    args.push("--include-replays");
    let output = run(&args);
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 2, "{}", describe(&output));
}

#[test]
fn a_reader_that_stops_early_ends_rigor_quietly() {
    // `rigor … | head`: the reader is gone before rigor writes.
    let repo = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rigor"))
        .args(["config", "show", "--repo"])
        .arg(repo.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn eval_with_the_rigor_agent_takes_local_models_like_run_does() {
    // `--model local:…` is the embedded model in `rigor eval --agent rigor` too (it used to be
    // resolved as an unknown remote provider): a missing file is named as a missing GGUF file.
    let dir = tempfile::tempdir().unwrap();
    let row = r#"{"instance_id":"a__b-1","repo":"a/b","base_commit":"0000000","patch":"","test_patch":"","problem_statement":"x","FAIL_TO_PASS":"[]","PASS_TO_PASS":"[]","version":"1"}"#;
    std::fs::write(dir.path().join("ds.jsonl"), format!("{row}\n")).unwrap();
    std::fs::create_dir_all(dir.path().join("repos")).unwrap();
    let output = rigor(
        dir.path(),
        &[
            "eval",
            "--dataset",
            "ds.jsonl",
            "--repos",
            "repos",
            "--output",
            "out",
            "--agent",
            "rigor",
            "--model",
            "local:/nonexistent.gguf",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let err = stderr(&output);
    assert!(err.contains("/nonexistent.gguf") && err.contains("GGUF"), "{err}");
    assert!(!err.contains("unknown provider"), "{err}");
}
