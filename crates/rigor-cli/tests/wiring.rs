//! The CLI is the one place that wires tool sources: `rigor run` and `rigor replay` both give the
//! model the code graph (its tools, the repository map, the editor's syntax check).
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of a test binary

use std::path::Path;
use std::process::{Command, Output};

use rigor_test_support::repo::{example, fixture_repo};
use rigor_test_support::server::{Flavor, Reply, ScriptedServer, Step};
use serde_json::{Value, json};

fn rigor(dir: &Path, config_home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rigor"))
        .args(args)
        .current_dir(dir)
        .env("XDG_CONFIG_HOME", config_home)
        .env("NO_COLOR", "1")
        .env_remove("OPENAI_API_KEY")
        .env_remove("RIGOR_MODEL")
        .output()
        .unwrap()
}

fn events(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[test]
fn run_and_replay_get_the_code_graph_from_the_cli() {
    let repo = fixture_repo(&example("durations"));
    let config_home = tempfile::tempdir().unwrap();
    let server = ScriptedServer::start_blocking(
        Flavor::OpenAi,
        vec![
            Step::Reply(Reply::call("search_entity", &json!({"query": "parse_duration"}).to_string())),
            Step::Reply(Reply::call("abstain", &json!({"reason": "demo"}).to_string())),
        ],
    );
    let dir = config_home.path().join("rigor");
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!("[providers.scripted]\nkind = \"openai\"\nbase_url = \"{}\"\n", server.base_url());
    std::fs::write(dir.join("config.toml"), config).unwrap();

    let run = ["run", "--repo", ".", "--issue-file", "ISSUE.md", "--model", "scripted:m", "--json", "--run-id", "w1"];
    let output = rigor(repo.path(), config_home.path(), &run);
    assert_eq!(output.status.code(), Some(3), "{}", String::from_utf8_lossy(&output.stderr));
    let recorded = events(&output);
    let started = recorded.iter().find(|e| e["type"] == "run_started").unwrap();
    let tools: Vec<&str> = started["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    for tool in ["search_entity", "retrieve_entity", "traverse_graph"] {
        assert!(tools.contains(&tool), "{tool} missing from {tools:?}");
    }
    assert!(started["system_prompt"].as_str().unwrap().contains("Repository map"), "{started}");
    assert_eq!(started["schema_version"], 1);
    let observation = recorded.iter().find(|e| e["type"] == "observation").unwrap();
    assert!(observation["content"].as_str().unwrap().contains("parse_duration"), "{observation}");

    let output = rigor(repo.path(), config_home.path(), &["replay", ".rigor/runs/w1", "--json"]);
    let report = events(&output).into_iter().find(|e| e["type"] == "replay_report").unwrap();
    assert_eq!(report["reproduced"], true, "{report}");
}
