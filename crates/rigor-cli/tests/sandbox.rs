//! `rigor run` end to end with the sandbox and the action policy: commands run confined, risky
//! ones are refused headless with an explanation, and every decision is in the trajectory.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of a test binary

use std::process::{Command, Output};

use rigor_test_support::repo::{example, fixture_repo};
use rigor_test_support::server::{Flavor, Reply, ScriptedServer, Step};
use serde_json::{Value, json};

fn call(name: &str, args: Value) -> Step {
    Step::Reply(Reply::call(name, &args.to_string()))
}

fn rigor(repo: &std::path::Path, config_home: &std::path::Path, server: &ScriptedServer, extra: &[&str]) -> Output {
    write_config(config_home, server);
    let mut args = vec!["run", "--repo", ".", "--issue-file", "ISSUE.md", "--model", "scripted:m", "--json"];
    args.extend_from_slice(extra);
    Command::new(env!("CARGO_BIN_EXE_rigor"))
        .args(&args)
        .current_dir(repo)
        .env("XDG_CONFIG_HOME", config_home)
        .env("NO_COLOR", "1")
        .env("SANDBOX_TEST_API_KEY", "sk-test-should-never-reach-a-command-0123")
        .env_remove("OPENAI_API_KEY")
        .env_remove("RIGOR_MODEL")
        .output()
        .unwrap()
}

/// A config with the scripted provider and one user rule.
fn write_config(config_home: &std::path::Path, server: &ScriptedServer) {
    let dir = config_home.join("rigor");
    std::fs::create_dir_all(&dir).unwrap();
    let config = format!(
        "[providers.scripted]\nkind = \"openai\"\nbase_url = \"{}\"\nmax_attempts = 2\ninitial_backoff_ms = 20\n\n\
         [sandbox]\nrules = [{{ prefix = [\"make\", \"deploy\"], decision = \"deny\" }}]\n",
        server.base_url()
    );
    std::fs::write(dir.join("config.toml"), config).unwrap();
}

fn events(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn risky_commands_are_refused_headless_and_the_rest_runs_confined() {
    let repo = fixture_repo(&example("durations"));
    let config_home = tempfile::tempdir().unwrap();
    let server = ScriptedServer::start_blocking(
        Flavor::OpenAi,
        vec![
            call("bash", json!({"command": "cat ~/.ssh/id_rsa"})),
            call("bash", json!({"command": "git push origin main"})),
            call("bash", json!({"command": "make deploy"})),
            call(
                "bash",
                // The policy cannot see through the variable; the sandbox still holds.
                json!({"command": "f=/etc/rigor-escape; touch \"$f\" 2>&1 | tail -1; ls -A $HOME | grep -cv -e rustup -e cargo -e local -e pyenv -e nvm; env | grep -c SANDBOX_TEST || true; python3 -m unittest 2>&1 | tail -1"}),
            ),
            // A code action is screened as Python, then runs confined.
            call("python", json!({"code": "import os, shutil\nshutil.rmtree(os.path.expanduser('~'))"})),
            call(
                "python",
                json!({"code": "import os\nprint(sum(range(10)), len(os.listdir(os.path.expanduser('~'))) < 9)"}),
            ),
            call("abstain", json!({"reason": "demo"})),
        ],
    );
    let output = rigor(repo.path(), config_home.path(), &server, &["--approval", "on-risk"]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let events = events(&output);
    let notice = events.iter().find(|e| e["type"] == "notice").unwrap();
    let notice = notice["message"].as_str().unwrap();
    assert!(notice.contains("sandbox workspace-write") && notice.contains("Landlock fully enforced"), "{notice}");

    let decisions: Vec<&Value> = events.iter().filter(|e| e["type"] == "policy_decision").collect();
    let summary: Vec<(String, String)> = decisions
        .iter()
        .map(|d| (d["verdict"].as_str().unwrap().to_string(), d["outcome"].as_str().unwrap().to_string()))
        .collect();
    let expected = [
        ("deny", "refused"),
        ("ask", "refused"),
        ("deny", "refused"),
        ("allow", "run"),
        ("deny", "refused"),
        ("allow", "run"),
    ];
    assert_eq!(summary, expected.map(|(a, b)| (a.to_string(), b.to_string())), "{decisions:?}");
    assert_eq!(decisions[0]["category"], "credentials");
    assert_eq!(decisions[2]["rule"], "user-rule");

    let observations: Vec<&str> =
        events.iter().filter(|e| e["type"] == "observation").map(|e| e["content"].as_str().unwrap()).collect();
    assert!(observations[0].contains("refused by rigor's action policy (credentials"), "{}", observations[0]);
    assert!(
        observations[1].contains("approval mode `on-risk`") && observations[1].contains("no terminal"),
        "{}",
        observations[1]
    );
    let confined = observations[3];
    assert!(confined.contains("Read-only file system"), "{confined}");
    assert!(confined.contains("\n0\n0\n"), "home hidden and secrets scrubbed: {confined}");
    assert!(confined.contains("OK") || confined.contains("FAILED"), "python runs in the workspace: {confined}");
    assert!(!std::path::Path::new("/etc/rigor-escape").exists());
    assert!(observations[4].contains("refused by rigor's action policy"), "{}", observations[4]);
    assert!(observations[5].contains("45 True"), "{}", observations[5]);

    // The trajectory holds the same decisions.
    let run_dir = std::fs::read_dir(repo.path().join(".rigor/runs")).unwrap().next().unwrap().unwrap().path();
    let recorded = std::fs::read_to_string(run_dir.join("trajectory.jsonl")).unwrap();
    assert_eq!(recorded.matches("\"type\":\"policy_decision\"").count(), 6);
}

#[test]
fn sandbox_off_is_explicit_and_loud() {
    let repo = fixture_repo(&example("durations"));
    let config_home = tempfile::tempdir().unwrap();
    let server = ScriptedServer::start_blocking(
        Flavor::OpenAi,
        vec![call("bash", json!({"command": "rm -rf /"})), call("abstain", json!({"reason": "demo"}))],
    );
    let output = rigor(repo.path(), config_home.path(), &server, &["--sandbox", "off", "--approval", "never"]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("WARNING: --sandbox off"), "{}", describe(&output));
    let events = events(&output);
    assert!(events.iter().any(|e| e["type"] == "notice" && e["message"].as_str().unwrap().contains("sandbox OFF")));
    let decision = events.iter().find(|e| e["type"] == "policy_decision").unwrap();
    assert_eq!(decision["outcome"], "refused", "the policy still screens: {decision}");
}

#[test]
fn bad_flag_values_are_explained() {
    let output =
        Command::new(env!("CARGO_BIN_EXE_rigor")).args(["run", "--issue", "x", "--sandbox", "none"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("workspace-write, read-only or off"));
}

#[test]
fn on_a_terminal_a_risky_command_waits_for_the_users_answer() {
    // rigor runs under a real pseudo-terminal (util-linux `script`); the answers are typed into it.
    let repo = fixture_repo(&example("durations"));
    let config_home = tempfile::tempdir().unwrap();
    let server = ScriptedServer::start_blocking(
        Flavor::OpenAi,
        vec![
            call("bash", json!({"command": "git push origin main"})),
            call("bash", json!({"command": "git push origin dev"})),
            call("abstain", json!({"reason": "demo"})),
        ],
    );
    write_config(config_home.path(), &server);
    let command_line = format!(
        "'{}' run --repo . --issue-file ISSUE.md --model scripted:m --approval on-risk",
        env!("CARGO_BIN_EXE_rigor")
    );
    let mut child = Command::new("script")
        .args(["-qec", &command_line, "/dev/null"])
        .current_dir(repo.path())
        .env("XDG_CONFIG_HOME", config_home.path())
        .env("NO_COLOR", "1")
        .env_remove("OPENAI_API_KEY")
        .env_remove("RIGOR_MODEL")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"y\nn\n").unwrap();
        // Held open until rigor is done: closing it would end the terminal session early.
        let output = child.wait_with_output().unwrap();
        drop(stdin);
        let screen = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(3), "{screen}");
        assert_eq!(screen.matches("run it? [y/N]").count(), 2, "{screen}");
    }
    let run_dir = std::fs::read_dir(repo.path().join(".rigor/runs")).unwrap().next().unwrap().unwrap().path();
    let recorded = std::fs::read_to_string(run_dir.join("trajectory.jsonl")).unwrap();
    let outcomes: Vec<String> = recorded
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["type"] == "policy_decision")
        .map(|e| e["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(outcomes, ["approved", "rejected"]);
}

#[test]
fn approval_always_with_nobody_to_ask_refuses_every_command_and_says_so() {
    let repo = fixture_repo(&example("durations"));
    let config_home = tempfile::tempdir().unwrap();
    let server = ScriptedServer::start_blocking(
        Flavor::OpenAi,
        vec![
            call("bash", json!({"command": "touch ran-anyway"})),
            call("python", json!({"code": "open('ran-anyway', 'w')"})),
            call("abstain", json!({"reason": "demo"})),
        ],
    );
    let output = rigor(repo.path(), config_home.path(), &server, &["--approval", "always"]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let events = events(&output);
    let notices: Vec<&str> =
        events.iter().filter(|e| e["type"] == "notice").map(|e| e["message"].as_str().unwrap()).collect();
    assert!(notices.iter().any(|n| n.contains("every command will be refused")), "{notices:?}");
    let outcomes: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["type"] == "policy_decision")
        .map(|e| (e["verdict"].as_str().unwrap(), e["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(outcomes, [("allow", "refused"), ("allow", "refused")], "{}", describe(&output));
    let observation = events.iter().find(|e| e["type"] == "observation").unwrap();
    let content = observation["content"].as_str().unwrap();
    assert!(content.contains("approval mode `always`") && content.contains("nobody can be asked"), "{content}");
    let run_dir = std::fs::read_dir(repo.path().join(".rigor/runs")).unwrap().next().unwrap().unwrap().path();
    let result: Value = serde_json::from_str(&std::fs::read_to_string(run_dir.join("result.json")).unwrap()).unwrap();
    assert_eq!(result["status"], "abstained");
    let patch = std::fs::read_to_string(run_dir.join("patch.diff")).unwrap();
    assert!(!patch.contains("ran-anyway"), "nothing ran: {patch}");
}
