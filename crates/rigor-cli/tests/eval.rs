//! `rigor eval --agent rigor` and `rigor report` end to end: the bundled example repository as a
//! one-instance dataset, rigor's loop against a scripted model server (real HTTP and SSE on
//! 127.0.0.1), grading with the standard library's unittest (no packages to install).
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of a test binary

use std::process::Command;

use rigor_test_support::repo::{example, fixture_repo, git};
use rigor_test_support::server::{Flavor, Reply, ScriptedServer, Step};
use serde_json::{Value, json};

const SPEC: &str =
    "repo = \"example/durations\"\n[defaults]\ntest_cmd = \"python -m unittest -v\"\nlog_parser = \"django\"\n";
const TEST_FILE: &str = "import unittest\n\nfrom durations import parse_duration\n\n\nclass CompoundTest(unittest.TestCase):\n    def test_compound(self):\n        self.assertEqual(parse_duration(\"1h30m\"), 5400)\n\n    def test_single(self):\n        self.assertEqual(parse_duration(\"45s\"), 45)\n";

fn call(name: &str, args: Value) -> Step {
    Step::Reply(Reply::call(name, &args.to_string()))
}

#[test]
fn eval_with_the_rigor_agent_then_report() {
    let repo = fixture_repo(&example("durations"));
    let base = git(repo.path(), &["rev-parse", "HEAD"]).trim().to_string();
    std::fs::write(repo.path().join("test_compound.py"), TEST_FILE).unwrap();
    git(repo.path(), &["add", "-A"]);
    let test_patch = git(repo.path(), &["diff", "--cached", "HEAD"]);
    git(repo.path(), &["reset", "-q", "--hard", "HEAD"]);

    let work = tempfile::tempdir().unwrap();
    let repos = work.path().join("repos");
    std::fs::create_dir_all(repos.join("example")).unwrap();
    std::os::unix::fs::symlink(repo.path(), repos.join("example/durations")).unwrap();
    let specs = work.path().join("specs");
    std::fs::create_dir_all(&specs).unwrap();
    std::fs::write(specs.join("durations.toml"), SPEC).unwrap();
    let row = json!({
        "instance_id": "example__durations-1", "repo": "example/durations", "base_commit": base,
        "patch": "", "test_patch": test_patch, "version": "1.0",
        "problem_statement": std::fs::read_to_string(repo.path().join("ISSUE.md")).unwrap(),
        "FAIL_TO_PASS": "[\"test_compound (test_compound.CompoundTest.test_compound)\"]",
        "PASS_TO_PASS": "[\"test_single (test_compound.CompoundTest.test_single)\"]",
    });
    let dataset = work.path().join("tasks.jsonl");
    std::fs::write(&dataset, format!("{row}\nnot a row\n")).unwrap();

    let server = ScriptedServer::start_blocking(
        Flavor::OpenAi,
        vec![
            // The agent's shell runs in the instance's environment, inside the sandbox.
            call("bash", json!({"command": "python -c 'import sys; print(\"PREFIX\", sys.prefix)'"})),
            call(
                "edit",
                json!({"command": "str_replace", "path": "durations.py", "old_str": "total = int(number) * UNITS[ch]", "new_str": "total += int(number) * UNITS[ch]"}),
            ),
            Step::Reply(Reply::call("finish", &json!({"summary": "accumulate"}).to_string()).with_tokens(700, 40)),
        ],
    );
    let config_home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(config_home.path().join("rigor")).unwrap();
    std::fs::write(
        config_home.path().join("rigor/config.toml"),
        format!("[providers.scripted]\nkind = \"openai\"\nbase_url = \"{}\"\n", server.base_url()),
    )
    .unwrap();
    let out_dir = work.path().join("out");
    // Unique per process: the environment cache is shared between test runs.
    let run_id = format!("e1-{}", std::process::id());
    let rigor = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rigor"))
            .args(args)
            .current_dir(work.path())
            .env("XDG_CONFIG_HOME", config_home.path())
            .env("NO_COLOR", "1")
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("RIGOR_MODEL")
            .output()
            .unwrap()
    };
    let env_cache = dirs_cache().join("test-envs");
    let out = rigor(&[
        "eval",
        "--dataset",
        dataset.to_str().unwrap(),
        "--agent",
        "rigor",
        "--model",
        "scripted:test-model",
        "--repos",
        repos.to_str().unwrap(),
        "--specs",
        specs.to_str().unwrap(),
        "--env-cache",
        env_cache.to_str().unwrap(),
        "--output",
        out_dir.to_str().unwrap(),
        "--run-id",
        &run_id,
        "--scratch",
        work.path().join("scratch").to_str().unwrap(),
        "--keep-worktrees",
        "--task-value",
        "10",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("row 2"), "the bad row is named: {stderr}");
    let kept = work.path().join("scratch").join(&run_id);
    assert!(std::fs::read_dir(&kept).is_ok_and(|mut d| d.next().is_some()), "the worktree is kept under --scratch");
    assert!(stdout.contains("resolved 1/1"), "{stdout}\n{stderr}");
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join(format!("rigor__scripted__test-model.{run_id}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["resolved_ids"], json!(["example__durations-1"]));
    assert!(summary["rigor"]["input_tokens"].as_u64().unwrap() >= 700);
    assert_eq!(summary["rigor"]["alpha_usd"], json!(10.0));
    let instance_dir =
        out_dir.join(format!("logs/run_evaluation/{run_id}/rigor__scripted__test-model/example__durations-1"));
    assert!(instance_dir.join("trajectory.jsonl").is_file());
    assert!(instance_dir.join("report.json").is_file());
    let trajectory = std::fs::read_to_string(instance_dir.join("trajectory.jsonl")).unwrap();
    let prefix = trajectory.lines().find_map(|l| l.split("PREFIX ").nth(1)).expect("the bash observation");
    assert!(prefix.starts_with(env_cache.to_str().unwrap()), "the venv is active in the agent's shell: {prefix}");

    let html = work.path().join("report.html");
    let out = rigor(&["report", &run_id, "--output", out_dir.to_str().unwrap(), "--html", html.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Resolved 1 / 1"), "{stdout}");
    assert!(std::fs::read_to_string(&html).unwrap().contains("example__durations-1"));
}

fn dirs_cache() -> std::path::PathBuf {
    std::env::var_os("RIGOR_CACHE")
        .map(Into::into)
        .unwrap_or_else(|| std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/rigor"))
}
