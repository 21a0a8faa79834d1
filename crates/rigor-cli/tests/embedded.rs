//! `rigor run` with an embedded model: SmolLM2 (the small one the tests use; the default,
//! Qwen2.5-Coder-1.5B, is 1.1 GB), in-process, on a copy of the bundled example. The 135M model
//! rarely fixes the bug; this checks the plumbing: a valid trajectory, a terminal status, and
//! KV-cache reuse from the second turn on. (`tests/run.rs` checks that nothing configured means
//! the default embedded model.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use rigor_test_support::repo::{example, fixture_repo};
use serde_json::Value;

#[test]
fn rigor_runs_an_embedded_model_in_process() {
    rigor_model::acquire::fetch(rigor_model::acquire::find_known("smollm2").unwrap(), &|_| {}).unwrap();
    let repo = fixture_repo(&example("durations"));
    let config_home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(config_home.path().join("rigor")).unwrap();
    std::fs::write(config_home.path().join("rigor/config.toml"), "[agent]\nmax_output_tokens = 48\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_rigor"))
        .args([
            "run",
            "--repo",
            ".",
            "--issue-file",
            "ISSUE.md",
            "--json",
            "--max-steps",
            "2",
            "--model",
            "local:smollm2",
        ])
        .current_dir(repo.path())
        .env("XDG_CONFIG_HOME", config_home.path())
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("RIGOR_MODEL")
        .env_remove("RIGOR_MODELS_DIR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let code = output.status.code();
    assert!(matches!(code, Some(0 | 1 | 3 | 4)), "exit {code:?}\n{stderr}");

    let events: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(events.first().unwrap()["type"], "run_started");
    assert_eq!(events.first().unwrap()["model"], "local:smollm2");
    let finished = events.last().unwrap();
    assert_eq!(finished["type"], "run_finished");
    let status = finished["status"].as_str().unwrap();
    assert!(["submitted", "abstained", "budget_exhausted", "error"].contains(&status), "{finished}");

    let responses: Vec<&Value> = events.iter().filter(|e| e["type"] == "model_response").collect();
    assert!(!responses.is_empty());
    for r in &responses {
        assert!(r["usage"]["input_tokens"].as_u64().unwrap() > 100, "{r}");
        assert!(r["usage"]["output_tokens"].as_u64().unwrap() <= 48, "{r}");
    }
    if let Some(second) = responses.get(1) {
        assert!(second["usage"]["cached_input_tokens"].as_u64().unwrap() > 100, "KV prefix reused: {second}");
    }

    let runs: Vec<_> = std::fs::read_dir(repo.path().join(".rigor/runs")).unwrap().map(|e| e.unwrap().path()).collect();
    let run_dir = &runs[0];
    let result: Value = serde_json::from_str(&std::fs::read_to_string(run_dir.join("result.json")).unwrap()).unwrap();
    assert_eq!(result["status"], status);
    let trajectory = std::fs::read_to_string(run_dir.join("trajectory.jsonl")).unwrap();
    assert!(trajectory.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()));
}
