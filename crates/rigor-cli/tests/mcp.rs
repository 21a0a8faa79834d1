//! MCP both ways, with real processes: the official MCP Python SDK as a client of `rigor mcp`;
//! rigor as the client of a third-party server from npm (the reference "everything" server) and of
//! `rigor mcp` itself, driven by the scripted model; the replay of a run with MCP calls, which
//! starts no server. Tests that need a package that cannot be installed skip with a message.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of a test binary

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use rigor_test_support::repo::{example, fixture_repo};
use rigor_test_support::server::{Flavor, Reply, ScriptedServer, Step};
use rigor_test_support::tools::{npm_package, python_venv};
use serde_json::{Value, json};

const RIGOR: &str = env!("CARGO_BIN_EXE_rigor");

/// A user configuration directory with the scripted provider and `extra` TOML.
fn config_home(server: &ScriptedServer, extra: &str) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("rigor");
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!("[providers.scripted]\nkind = \"openai\"\nbase_url = \"{}\"\n\n{extra}", server.base_url());
    std::fs::write(dir.join("config.toml"), config).unwrap();
    home
}

fn rigor(dir: &Path, config_home: &Path) -> Command {
    let mut command = Command::new(RIGOR);
    command
        .current_dir(dir)
        .env("XDG_CONFIG_HOME", config_home)
        .env("NO_COLOR", "1")
        .env_remove("OPENAI_API_KEY")
        .env_remove("RIGOR_MODEL");
    command
}

fn events(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

fn run_args(run_id: &str) -> Vec<&str> {
    vec!["run", "--repo", ".", "--issue-file", "ISSUE.md", "--model", "scripted:m", "--json", "--run-id", run_id]
}

fn call(name: &str, args: Value) -> Step {
    Step::Reply(Reply::call(name, &args.to_string()))
}

fn observations<'a>(events: &'a [Value], tool: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == "observation" && e["name"] == tool).collect()
}

fn toml_string(path: &Path) -> String {
    Value::String(path.display().to_string()).to_string()
}

#[test]
fn the_official_python_sdk_uses_rigor_mcp_and_sees_edits() {
    let Some(python) = python_venv("mcp-python-sdk", &["mcp"]) else { return };
    let repo = fixture_repo(&example("durations"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/sdk_client.py");
    let output = Command::new(python).arg(script).arg(RIGOR).arg(repo.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && stdout.contains("OK"), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(!repo.path().join(".rigor/index").exists(), "rigor mcp wrote an index into the repository");
}

#[test]
fn rigor_uses_rigor_mcp_in_the_sandbox_and_replays_without_a_server() {
    let repo = fixture_repo(&example("durations"));
    let server = ScriptedServer::start_blocking(
        Flavor::OpenAi,
        vec![
            call("rigor__search_entity", json!({"query": "parse_duration"})),
            call("rigor__localize", json!({"issue": "parse_duration ignores compound durations", "top": 3})),
            call("abstain", json!({"reason": "demo"})),
        ],
    );
    let extra = format!(
        "[mcp.servers.rigor]\ncommand = {}\nargs = [\"mcp\", \"--repo\", \"{{workspace}}\"]\nenv = {{ RIGOR_TOKEN = \"sk-very-secret-token-123\" }}\n",
        toml_string(Path::new(RIGOR))
    );
    let home = config_home(&server, &extra);

    let shown = rigor(repo.path(), home.path()).args(["config", "show"]).output().unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("[mcp.servers.rigor"), "{shown}");
    assert!(!shown.contains("sk-very-secret-token-123"), "an MCP server's env value was shown: {shown}");

    let output = rigor(repo.path(), home.path()).args(run_args("m1")).output().unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", String::from_utf8_lossy(&output.stderr));
    let recorded = events(&output);
    let started = recorded.iter().find(|e| e["type"] == "run_started").unwrap();
    let tools: Vec<&str> = started["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(tools.contains(&"rigor__localize") && tools.contains(&"rigor__search_entity"), "{tools:?}");
    assert!(started["sources"].as_array().unwrap().contains(&json!("mcp:rigor")), "{started}");
    // The server ran in the sandbox on the run's workspace and found its entities there.
    let found = observations(&recorded, "rigor__search_entity");
    assert!(found[0]["content"].as_str().unwrap().contains("durations.py:parse_duration"), "{found:?}");
    let ranked = observations(&recorded, "rigor__localize");
    assert!(ranked[0]["content"].as_str().unwrap().contains("durations.py"), "{ranked:?}");
    let screened = recorded.iter().filter(|e| e["type"] == "policy_decision" && e["tool"] == "rigor__localize");
    assert_eq!(screened.map(|e| e["outcome"].clone()).collect::<Vec<_>>(), vec![json!("run")]);
    let run_dir = repo.path().join(".rigor/runs/m1");
    assert!(run_dir.join("mcp-rigor.stderr").exists());

    std::fs::remove_file(run_dir.join("mcp-rigor.pid")).unwrap();
    let output = rigor(repo.path(), home.path()).args(["replay", ".rigor/runs/m1", "--json"]).output().unwrap();
    let replayed = events(&output);
    let report = replayed.iter().find(|e| e["type"] == "replay_report").unwrap();
    assert_eq!(report["reproduced"], true, "{report}\n{}", String::from_utf8_lossy(&output.stderr));
    let replay_dir = PathBuf::from(report["run_dir"].as_str().unwrap());
    assert!(!replay_dir.join("mcp-rigor.pid").exists(), "the replay started the MCP server");
    assert!(!run_dir.join("mcp-rigor.pid").exists(), "the replay started the MCP server");
}

#[test]
fn a_third_party_server_is_listed_called_screened_recorded_and_restarted_once() {
    let Some(package) = npm_package("mcp-server-everything", "@modelcontextprotocol/server-everything") else {
        return;
    };
    let repo = fixture_repo(&example("durations"));
    let server = ScriptedServer::start_blocking(
        Flavor::OpenAi,
        vec![
            call("everything__echo", json!({"message": "hello from rigor"})),
            call("everything__toggle-simulated-logging", json!({})),
            // Waits until the test has killed the server.
            call("bash", json!({"command": "until [ -e mcp-killed ]; do sleep 0.05; done; echo go on"})),
            call("everything__echo", json!({"message": "after the restart"})),
            call("abstain", json!({"reason": "demo"})),
        ],
    );
    let extra = format!(
        "[mcp.servers.everything]\ncommand = \"node\"\nargs = [{}, \"stdio\"]\napproval = \"on-risk\"\nreadable = [{}]\n",
        toml_string(&package.join("dist/index.js")),
        toml_string(package.parent().unwrap().parent().unwrap()),
    );
    let home = config_home(&server, &extra);
    let mut child = rigor(repo.path(), home.path()).args(run_args("e1")).stdout(Stdio::piped()).spawn().unwrap();
    let run_dir = repo.path().join(".rigor/runs/e1");
    let mut recorded = Vec::new();
    let mut workspace = PathBuf::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let Ok(event) = serde_json::from_str::<Value>(&line.unwrap()) else { continue };
        if event["type"] == "run_started" {
            workspace = PathBuf::from(event["workspace"].as_str().unwrap());
        }
        if event["type"] == "tool_call" && event["call"]["name"] == "bash" {
            // Mid-run: the server dies.
            let pid = std::fs::read_to_string(run_dir.join("mcp-everything.pid")).unwrap();
            let status = Command::new("kill").args(["-KILL", pid.trim()]).status().unwrap();
            assert!(status.success());
            std::fs::write(workspace.join("mcp-killed"), "").unwrap();
        }
        recorded.push(event);
    }
    assert_eq!(child.wait().unwrap().code(), Some(3));
    let started = recorded.iter().find(|e| e["type"] == "run_started").unwrap();
    let tools: Vec<&str> = started["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(tools.contains(&"everything__echo"), "{tools:?}");
    let echoes = observations(&recorded, "everything__echo");
    assert_eq!(echoes.len(), 2, "{recorded:#?}");
    assert_eq!(echoes[0]["content"], "Echo: hello from rigor", "{echoes:?}");
    assert_eq!(echoes[1]["content"], "Echo: after the restart", "{echoes:?}");
    let decisions: Vec<(String, String)> = recorded
        .iter()
        .filter(|e| e["type"] == "policy_decision" && e["tool"].as_str().unwrap().starts_with("everything__"))
        .map(|e| (e["tool"].as_str().unwrap().to_string(), e["outcome"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        decisions,
        [("everything__echo", "run"), ("everything__toggle-simulated-logging", "refused"), ("everything__echo", "run")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let notices: Vec<&str> =
        recorded.iter().filter(|e| e["type"] == "notice").map(|e| e["message"].as_str().unwrap()).collect();
    assert!(notices.iter().any(|n| n.contains("`everything` died")), "{notices:?}");
    assert!(notices.iter().any(|n| n.contains("`everything` restarted")), "{notices:?}");
    // Recorded in the trajectory like any tool call.
    let trajectory = std::fs::read_to_string(run_dir.join("trajectory.jsonl")).unwrap();
    assert!(trajectory.contains("Echo: after the restart"));
    assert!(run_dir.join("mcp-everything.stderr").exists());
}

/// Runs `tests/mcp/sdk_tools.py MODE` (the official Python SDK against `rigor mcp` on `repo`) with
/// `config_home` as the user's configuration directory, and asserts that it passed.
fn sdk_tools(python: &Path, mode: &str, repo: &Path, config_home: &Path, extra: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/sdk_tools.py");
    let output = Command::new(python)
        .arg(script)
        .args([mode, RIGOR])
        .arg(repo)
        .args(extra)
        .env("XDG_CONFIG_HOME", config_home)
        .env_remove("OPENAI_API_KEY")
        .env_remove("RIGOR_MODEL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success() && stdout.contains("OK"), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
}

/// The checkout as the user sees it: its status (ignored files too, but rigor's own `.rigor`),
/// its registered worktrees and the bytes of every file outside `.git` and `.rigor`.
fn checkout_state(repo: &Path) -> (String, String, Vec<(PathBuf, Vec<u8>)>) {
    let git = |args: &[&str]| {
        let out = Command::new("git").arg("-C").arg(repo).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let status = git(&["status", "--porcelain", "--ignored", "--", ".", ":(exclude).rigor"]);
    let worktrees = git(&["worktree", "list", "--porcelain"]);
    let mut files = Vec::new();
    let mut stack = vec![repo.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.ends_with(".git") || path.ends_with(".rigor") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    (status, worktrees, files)
}

#[test]
fn the_python_sdk_runs_chosen_and_related_tests_in_a_scratch_copy() {
    let Some(python) = python_venv("mcp-python-sdk", &["mcp"]) else { return };
    let repo = fixture_repo(&example("durations"));
    let home = tempfile::tempdir().unwrap();
    let before = checkout_state(repo.path());
    sdk_tools(&python, "run_tests", repo.path(), home.path(), &[]);
    // The script restored the one file it edited; the tests wrote nothing into the checkout and
    // every scratch worktree is gone.
    assert_eq!(checkout_state(repo.path()), before);
    let scratch = std::fs::read_dir(repo.path().join(".rigor/worktrees")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(scratch, 0, "a scratch worktree was left behind");
}

#[test]
fn the_python_sdk_checks_patches_in_a_scratch_copy_and_gets_the_proof() {
    let Some(python) = python_venv("mcp-python-sdk", &["mcp"]) else { return };
    let repo = fixture_repo(&example("durations"));
    let home = tempfile::tempdir().unwrap();
    let before = checkout_state(repo.path());
    sdk_tools(&python, "check_patch", repo.path(), home.path(), &[]);
    // Seen from outside: the patches and the reproduction never reached the checkout.
    assert_eq!(checkout_state(repo.path()), before, "check_patch changed the user's checkout");
    assert!(!repo.path().join("test_compound.py").exists());
}

#[test]
fn the_python_sdk_has_rigor_solve_an_issue_with_progress_and_gets_patch_and_proof() {
    let Some(python) = python_venv("mcp-python-sdk", &["mcp"]) else { return };
    let repo = fixture_repo(&example("durations"));
    let reproduction = "import unittest\n\nfrom durations import parse_duration\n\n\nclass CompoundDurationTest(unittest.TestCase):\n    def test_compound(self):\n        self.assertEqual(parse_duration(\"1h30m\"), 5400)\n";
    let server = ScriptedServer::start_blocking(
        Flavor::OpenAi,
        vec![
            call("edit", json!({"command": "create", "path": "test_compound.py", "file_text": reproduction})),
            call(
                "edit",
                json!({"command": "str_replace", "path": "durations.py",
                       "old_str": "total = int(number) * UNITS[ch]", "new_str": "total += int(number) * UNITS[ch]"}),
            ),
            call("finish", json!({"summary": "Accumulate every part of a compound duration."})),
        ],
    );
    let home = config_home(&server, "");
    let before = checkout_state(repo.path());
    sdk_tools(&python, "solve", repo.path(), home.path(), &["scripted:m"]);
    assert_eq!(checkout_state(repo.path()), before, "solve changed the user's checkout");
    assert_eq!(server.requests().len(), 3, "one model request per scripted reply");
}

#[test]
fn a_secret_in_an_mcp_servers_env_never_reaches_the_records() {
    let Some(package) = npm_package("mcp-server-everything", "@modelcontextprotocol/server-everything") else {
        return;
    };
    // Neither its name nor its look makes it a secret: only the configuration does.
    const SECRET: &str = "correct-horse-battery-staple";
    let repo = fixture_repo(&example("durations"));
    let server = ScriptedServer::start_blocking(
        Flavor::OpenAi,
        vec![call("everything__get-env", json!({})), call("abstain", json!({"reason": "demo"}))],
    );
    // The server echoes the value on its stderr when it starts, and returns it from `get-env`.
    let script = format!(
        "echo \"starting with $SERVICE_WORD\" >&2; exec node {} stdio",
        package.join("dist/index.js").display()
    );
    let extra = format!(
        "[mcp.servers.everything]\ncommand = \"sh\"\nargs = [\"-c\", {}]\nreadable = [{}]\nenv = {{ SERVICE_WORD = \"{SECRET}\" }}\n",
        Value::String(script),
        toml_string(package.parent().unwrap().parent().unwrap()),
    );
    let home = config_home(&server, &extra);
    let output = rigor(repo.path(), home.path()).args(run_args("s1")).output().unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", String::from_utf8_lossy(&output.stderr));
    let recorded = events(&output);
    let echoed = observations(&recorded, "everything__get-env");
    assert!(echoed[0]["content"].as_str().unwrap().contains("[REDACTED:SERVICE_WORD]"), "{echoed:?}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains(SECRET), "the --json stream holds the secret");
    let run_dir = repo.path().join(".rigor/runs/s1");
    let trajectory = std::fs::read_to_string(run_dir.join("trajectory.jsonl")).unwrap();
    assert!(!trajectory.contains(SECRET), "the trajectory holds the secret");
    let log = std::fs::read_to_string(run_dir.join("mcp-everything.stderr")).unwrap();
    assert!(log.contains("starting with [REDACTED:SERVICE_WORD]") && !log.contains(SECRET), "{log}");
}
