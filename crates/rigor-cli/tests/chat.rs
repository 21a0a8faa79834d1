//! `rigor chat` end to end, in a real terminal: the binary runs in a tmux pane against the
//! scripted model server (real HTTP and SSE on 127.0.0.1) on a copy of the example repository.
//! The test types a request, waits until the reply and the diff are on the screen (polling the
//! pane; the only time limit is a generous guard against a hang), approves a held command with
//! `y`, quits with `/quit`, and checks the session's trajectory. Skipped, saying why, when tmux is
//! missing and cannot be installed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of a test binary

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rigor_test_support::repo::{example, fixture_repo};
use rigor_test_support::server::{Flavor, Reply, ScriptedServer, Step};
use serde_json::{Value, json};

/// Only against a hang: every wait ends as soon as its text is on the screen.
const HANG_GUARD: Duration = Duration::from_secs(300);

/// tmux, installed with apt-get when missing (as root); `None` with the reason otherwise.
fn tmux() -> Result<(), String> {
    let found = || Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success());
    if found() {
        return Ok(());
    }
    let installed = Command::new("apt-get")
        .args(["install", "-y", "-q", "tmux"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .is_ok_and(|s| s.success());
    if installed && found() { Ok(()) } else { Err("tmux is not installed and `apt-get install tmux` failed".into()) }
}

/// A tmux server of the test's own (its own socket), killed when dropped.
struct Pane {
    socket: String,
}

impl Pane {
    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().unwrap()
    }

    fn start(socket: &str, script: &Path) -> Self {
        let pane = Pane { socket: socket.to_string() };
        let out =
            pane.tmux(&["new-session", "-d", "-x", "120", "-y", "40", "-s", "chat", &script.display().to_string()]);
        assert!(out.status.success(), "tmux: {}", String::from_utf8_lossy(&out.stderr));
        pane
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "chat"]).stdout).into_owned()
    }

    /// Waits until the screen shows `text`; returns the screen.
    fn wait_for(&self, text: &str) -> String {
        let started = Instant::now();
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            assert!(started.elapsed() < HANG_GUARD, "{text:?} never appeared; the screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn type_text(&self, text: &str) {
        assert!(self.tmux(&["send-keys", "-t", "chat", "-l", text]).status.success());
    }

    fn press(&self, key: &str) {
        assert!(self.tmux(&["send-keys", "-t", "chat", key]).status.success());
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

fn call(name: &str, args: Value) -> Step {
    Step::Reply(Reply::call(name, &args.to_string()))
}

#[test]
fn a_chat_in_tmux_replies_shows_the_diff_asks_for_a_held_command_and_records_the_session() {
    if let Err(why) = tmux() {
        println!("skipped: {why}");
        return;
    }
    let repo = fixture_repo(&example("durations"));
    let home = tempfile::tempdir().unwrap();
    let server = ScriptedServer::start_blocking(
        Flavor::OpenAi,
        vec![
            Step::Reply(
                Reply::call(
                    "edit",
                    &json!({"command": "str_replace", "path": "durations.py", "old_str": "total = int(number) * UNITS[ch]", "new_str": "total += int(number) * UNITS[ch]"})
                        .to_string(),
                )
                .with_text("Compound durations overwrite the total; fixing that."),
            ),
            call("bash", json!({"command": "git push origin main"})),
            call("finish", json!({"summary": "Compound durations add up now."})),
        ],
    );
    std::fs::create_dir_all(home.path().join("rigor")).unwrap();
    std::fs::write(
        home.path().join("rigor/config.toml"),
        format!("[providers.scripted]\nkind = \"openai\"\nbase_url = \"{}\"\nmax_attempts = 1\n", server.base_url()),
    )
    .unwrap();
    let exit = home.path().join("exit-code");
    let script = home.path().join("chat.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\ncd '{}'\nunset OPENAI_API_KEY OPENAI_BASE_URL ANTHROPIC_API_KEY RIGOR_MODEL\nexport XDG_CONFIG_HOME='{}' TERM=xterm-256color\n'{}' chat --model scripted:test-model 2>'{}/stderr'\necho $? > '{}'\n",
            repo.path().display(),
            home.path().display(),
            env!("CARGO_BIN_EXE_rigor"),
            home.path().display(),
            exit.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let socket = format!("rigor-chat-test-{}", std::process::id());
    let pane = Pane::start(&socket, &script);

    pane.wait_for("rigor chat · scripted:test-model");
    pane.type_text("fix parse_duration for 1h30m");
    pane.press("Enter");
    pane.wait_for("Compound durations overwrite the total");
    let held = pane.wait_for("y run it");
    assert!(held.contains("git push origin main"), "{held}");
    assert!(held.contains("+++ b/durations.py"), "the diff pane shows the edit before the request ends:\n{held}");
    pane.press("y");
    let done = pane.wait_for("done: Compound durations add up now.");
    assert!(done.contains("total += int(number)"), "the diff pane shows the fix:\n{done}");
    pane.type_text("/quit");
    pane.press("Enter");
    let started = Instant::now();
    while !exit.exists() {
        assert!(started.elapsed() < HANG_GUARD, "rigor chat did not exit; the screen:\n{}", pane.screen());
        std::thread::sleep(Duration::from_millis(50));
    }
    let code = std::fs::read_to_string(&exit).unwrap();
    let stderr = std::fs::read_to_string(home.path().join("stderr")).unwrap_or_default();
    assert_eq!(code.trim(), "0", "stderr: {stderr}");

    // The session is a run like any other.
    let runs: Vec<PathBuf> =
        std::fs::read_dir(repo.path().join(".rigor/runs")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let events: Vec<Value> = std::fs::read_to_string(runs[0].join("trajectory.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(events[0]["conversation"], true);
    assert!(kinds.contains(&"request_finished") && kinds.last() == Some(&"run_finished"), "{kinds:?}");
    let decision = events.iter().find(|e| e["type"] == "policy_decision").unwrap();
    assert_eq!(decision["outcome"], "approved", "{decision}");
    let patch = std::fs::read_to_string(runs[0].join("patch.diff")).unwrap();
    assert!(patch.contains("+            total += int(number) * UNITS[ch]"), "{patch}");
}
