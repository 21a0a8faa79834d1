//! End-to-end runs of the `rigor` binary against scripted model servers (real HTTP and SSE on
//! 127.0.0.1) on a copy of the bundled example repository, which has a real bug.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of a test binary

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rigor_test_support::repo::{example, fixture_repo};
use rigor_test_support::server::{Flavor, Reply, ScriptedServer, Step};
use serde_json::{Value, json};

const FIX_OLD: &str = "total = int(number) * UNITS[ch]";
const FIX_NEW: &str = "total += int(number) * UNITS[ch]";
const VERIFY: &str = "python3 -c 'from durations import parse_duration as p; assert p(\"1h30m\") == 5400, p(\"1h30m\")' && python3 -m unittest 2>&1 | tail -1";
/// The reproduction a competent agent writes: a unittest test of the compound durations.
const REPRODUCTION: &str = "import unittest\n\nfrom durations import parse_duration\n\n\nclass CompoundDurationTest(unittest.TestCase):\n    def test_compound(self):\n        self.assertEqual(parse_duration(\"1h30m\"), 5400)\n        self.assertEqual(parse_duration(\"1d2h\"), 93600)\n";

/// An edit that keeps compound durations right but makes 45s 90 (breaks an existing test).
fn break_single_units() -> Step {
    call(
        "edit",
        json!({"command": "str_replace", "path": "durations.py", "old_str": "\"s\": 1}", "new_str": "\"s\": 2}"}),
    )
}

fn create(path: &str, text: &str) -> Step {
    call("edit", json!({"command": "create", "path": path, "file_text": text}))
}

fn call(name: &str, args: Value) -> Step {
    Step::Reply(Reply::call(name, &args.to_string()))
}

/// The script of a competent agent fixing the example: localize, reproduce (a check, then a test),
/// patch, verify, finish.
fn fixing_script() -> Vec<Step> {
    vec![
        call("search", json!({"pattern": "def parse_duration"})),
        Step::Reply(Reply::call("view", &json!({"path": "durations.py"}).to_string()).with_text("Let me read it.")),
        call("bash", json!({"command": VERIFY})),
        create("test_compound.py", REPRODUCTION),
        call("edit", json!({"command": "str_replace", "path": "durations.py", "old_str": FIX_OLD, "new_str": FIX_NEW})),
        call("bash", json!({"command": VERIFY})),
        call("finish", json!({"summary": "Accumulate every part of a compound duration; 1h30m is 5400 s."})),
    ]
}

struct Env {
    repo: tempfile::TempDir,
    config_home: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Self { repo: fixture_repo(&example("durations")), config_home: tempfile::tempdir().unwrap() }
    }

    /// Writes a user config with a provider `scripted` pointing at `server`.
    fn config(&self, server: &ScriptedServer, kind: &str, extra: &str) {
        let dir = self.config_home.path().join("rigor");
        std::fs::create_dir_all(&dir).unwrap();
        let text = format!(
            "[providers.scripted]\nkind = \"{kind}\"\nbase_url = \"{}\"\nmax_attempts = 3\ninitial_backoff_ms = 20\nrequest_timeout_secs = 2\n{extra}",
            server.base_url()
        );
        std::fs::write(dir.join("config.toml"), text).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rigor"));
        cmd.args(args)
            .current_dir(self.repo.path())
            .env("XDG_CONFIG_HOME", self.config_home.path())
            .env("NO_COLOR", "1")
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("RIGOR_MODEL");
        cmd
    }

    fn run(&self, extra: &[&str]) -> Output {
        let mut args =
            vec!["run", "--repo", ".", "--issue-file", "ISSUE.md", "--model", "scripted:test-model", "--json"];
        args.extend_from_slice(extra);
        self.command(&args).output().unwrap()
    }

    fn only_run_dir(&self) -> PathBuf {
        let runs: Vec<PathBuf> =
            std::fs::read_dir(self.repo.path().join(".rigor/runs")).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(runs.len(), 1, "{runs:?}");
        runs.into_iter().next().unwrap()
    }
}

fn parse_events(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}")))
        .collect()
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

fn result_json(run_dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(run_dir.join("result.json")).unwrap()).unwrap()
}

fn trajectory(run_dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(run_dir.join("trajectory.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn describe(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The patch applies to a fresh copy of the example and makes the repository's tests and the
/// issue's example pass.
fn assert_patch_fixes_the_bug(patch_file: &Path) {
    let fresh = fixture_repo(&example("durations"));
    let out =
        Command::new("git").args(["apply", patch_file.to_str().unwrap()]).current_dir(fresh.path()).output().unwrap();
    assert!(out.status.success(), "git apply: {}", String::from_utf8_lossy(&out.stderr));
    for check in [VERIFY, "python3 -m unittest"] {
        let out = Command::new("sh").arg("-c").arg(check).current_dir(fresh.path()).output().unwrap();
        assert!(out.status.success(), "`{check}` after the patch: {}", describe(&out));
    }
}

/// Every tool call in every request the model server received has exactly one result.
fn assert_each_tool_call_answered_once(requests: &[Value]) {
    let last = requests.last().unwrap();
    let messages = last["messages"].as_array().unwrap();
    let mut answered = std::collections::HashMap::new();
    for m in messages {
        if let Some(id) = m["tool_call_id"].as_str() {
            *answered.entry(id.to_string()).or_insert(0) += 1;
        }
    }
    for m in messages {
        for call in m["tool_calls"].as_array().into_iter().flatten() {
            let id = call["id"].as_str().unwrap();
            assert_eq!(answered.get(id), Some(&1), "tool call {id} answered {:?} times", answered.get(id));
        }
    }
}

#[test]
fn an_openai_compatible_model_fixes_the_example_and_the_patch_is_proven() {
    let env = Env::new();
    let server = ScriptedServer::start_blocking(Flavor::OpenAi, fixing_script());
    env.config(&server, "openai", "");
    let output = env.run(&[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));

    let mut events = parse_events(&output);
    let proof = events.pop().unwrap();
    assert_eq!(events.first().unwrap()["type"], "run_started");
    assert_eq!(events.last().unwrap()["type"], "run_finished");
    assert_eq!(events.last().unwrap()["status"], "submitted");
    assert_eq!(of_type(&events, "tool_call").len(), 7);
    let observations = of_type(&events, "observation");
    assert!(observations[2]["content"].as_str().unwrap().contains("AssertionError"), "the bug reproduces first");
    assert!(observations[5]["content"].as_str().unwrap().contains("OK"), "{}", observations[5]);
    assert!(observations[6]["content"].as_str().unwrap().contains("rigor proved the patch"), "{}", observations[6]);
    let steps: Vec<(&str, &str)> = of_type(&events, "proof_step")
        .iter()
        .map(|e| (e["phase"].as_str().unwrap(), e["outcome"].as_str().unwrap()))
        .collect();
    let phases = ["changes", "reproduction_before", "reproduction_after", "regressions"];
    assert_eq!(steps, phases.map(|p| (p, "passed")), "the proof's steps are events");

    // The proof: rigor ran the reproduction on the original code (it failed with the issue's
    // assertion) and on the fix (it passes), and the related existing tests on both.
    assert_eq!((proof["type"].as_str(), proof["proof"]["status"].as_str()), (Some("proof"), Some("proven")), "{proof}");
    let reproduction = &proof["proof"]["reproduction"];
    assert_eq!(reproduction["before"][0]["id"], "test_compound.CompoundDurationTest.test_compound");
    assert_eq!(reproduction["before"][0]["status"], "FAILED");
    assert_eq!(reproduction["before"][0]["failure"]["kind"], "assertion", "{reproduction}");
    assert!(reproduction["before"][0]["failure"]["message"].as_str().unwrap().contains("1800 != 5400"));
    assert_eq!(reproduction["after"][0]["status"], "PASSED");
    let regressions = &proof["proof"]["regressions"];
    assert_eq!(regressions["files"], json!(["test_durations.py"]), "{regressions}");
    assert_eq!(regressions["before"].as_object().unwrap().len(), 3);
    assert!(regressions["after"].as_object().unwrap().values().all(|s| s == "PASSED"), "{regressions}");
    assert!(proof["proof"]["fix_patch"].as_str().unwrap().contains("durations.py"));
    assert!(proof["proof"]["test_patch"].as_str().unwrap().contains("test_compound.py"));

    let run_dir = env.only_run_dir();
    let written: Value = serde_json::from_str(&std::fs::read_to_string(run_dir.join("proof.json")).unwrap()).unwrap();
    assert_eq!(written, proof["proof"]);
    let result = result_json(&run_dir);
    assert_eq!(result["status"], "submitted");
    assert_eq!(result["totals"]["steps"], 7);
    assert!(result["totals"]["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert_patch_fixes_the_bug(&run_dir.join("patch.diff"));

    // The user's checkout is untouched and the worktree is gone.
    let source = std::fs::read_to_string(env.repo.path().join("durations.py")).unwrap();
    assert!(source.contains(FIX_OLD));
    assert!(!env.repo.path().join(".rigor/worktrees").read_dir().map(|mut d| d.next().is_some()).unwrap_or(false));

    // The trajectory holds every event but streamed deltas, and the requests were well-formed.
    let recorded = trajectory(&run_dir);
    let non_delta = events.iter().filter(|e| e["type"] != "text_delta").count();
    assert_eq!(recorded.len(), non_delta);
    let requests = server.requests();
    assert_eq!(requests.len(), 7);
    assert!(requests[0]["tools"].as_array().unwrap().iter().any(|t| t["function"]["name"] == "bash"));
    assert!(
        requests[0]["messages"][0]["content"].as_str().unwrap().contains("python3 -m unittest -v"),
        "AGENTS.md is in the system prompt"
    );
    assert_each_tool_call_answered_once(&requests);

    // Export gives one chat-format record with every tool call answered.
    let exported = env.command(&["export", run_dir.to_str().unwrap()]).output().unwrap();
    assert!(exported.status.success(), "{}", describe(&exported));
    let chat: Vec<Value> = parse_events(&exported);
    assert_eq!(chat.len(), 1);
    assert_eq!(chat[0]["messages"].as_array().unwrap().len(), 2 + 7 * 2);
    assert_eq!(chat[0]["metadata"]["status"], "submitted");
    assert_each_tool_call_answered_once(&chat);

    // Replay reproduces the run: same observations, status and patch.
    let replayed = env.command(&["replay", run_dir.to_str().unwrap(), "--json"]).output().unwrap();
    assert_eq!(replayed.status.code(), Some(0), "{}", describe(&replayed));
    let report = parse_events(&replayed).into_iter().last().unwrap();
    assert_eq!(report["type"], "replay_report");
    assert_eq!(report["reproduced"], true, "{report}");
    assert_eq!(report["patch_identical"], true);
    assert_eq!(report["proof"], json!({"recorded": "proven", "replayed": "proven", "holds": true}), "{report}");
}

/// The `finish` call's observations of a run, in order.
fn finish_observations(events: &[Value]) -> Vec<String> {
    of_type(events, "observation")
        .into_iter()
        .filter(|o| o["name"] == "finish")
        .map(|o| o["content"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_reproduction_that_cannot_run_or_already_passes_is_sent_back_until_one_reproduces() {
    let env = Env::new();
    let broken = REPRODUCTION.replace("import parse_duration", "import parse_compound as parse_duration");
    let passing = REPRODUCTION.replace("\"1h30m\"), 5400", "\"45s\"), 45").replace("\"1d2h\"), 93600", "\"2h\"), 7200");
    let finish = || call("finish", json!({"summary": "fixed"}));
    let script = vec![
        create("test_compound.py", &broken),
        call("edit", json!({"command": "str_replace", "path": "durations.py", "old_str": FIX_OLD, "new_str": FIX_NEW})),
        finish(),
        call("bash", json!({"command": format!("cat > test_compound.py <<'EOF'\n{passing}EOF")})),
        finish(),
        call("bash", json!({"command": format!("cat > test_compound.py <<'EOF'\n{REPRODUCTION}EOF")})),
        finish(),
    ];
    let server = ScriptedServer::start_blocking(Flavor::OpenAi, script);
    env.config(&server, "openai", "");
    let output = env.run(&[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let events = parse_events(&output);
    let finishes = finish_observations(&events);
    assert_eq!(finishes.len(), 3, "{finishes:?}");
    assert!(finishes[0].contains("not finished") && finishes[0].contains("ImportError"), "{}", finishes[0]);
    assert!(finishes[0].contains("could not run"), "{}", finishes[0]);
    assert!(finishes[1].contains("passes on the original code"), "{}", finishes[1]);
    assert!(finishes[2].contains("rigor proved the patch"), "{}", finishes[2]);
    let proof = events.last().unwrap();
    assert_eq!(proof["proof"]["status"], "proven");
    assert_eq!(proof["proof"]["rejections"], 2);
}

#[test]
fn a_project_in_a_subdirectory_of_the_repository_is_proven_where_it_is() {
    // As `scripts/setup.sh` runs the bundled example: `--repo examples/durations` inside a larger
    // repository. The proof tests the directory the agent works in, and the patch keeps the
    // repository's paths.
    let env = Env::new();
    let nested = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(nested.path().join("examples")).unwrap();
    let moved =
        Command::new("cp").arg("-r").arg(env.repo.path()).arg(nested.path().join("examples/durations")).status();
    assert!(moved.unwrap().success());
    std::fs::remove_dir_all(nested.path().join("examples/durations/.git")).unwrap();
    std::fs::write(nested.path().join("README.md"), "a larger repository\n").unwrap();
    for args in [&["init", "-q", "-b", "main"][..], &["add", "-A"], &["commit", "-q", "-m", "nested"]] {
        rigor_test_support::repo::git(nested.path(), args);
    }
    let server = ScriptedServer::start_blocking(Flavor::OpenAi, fixing_script());
    env.config(&server, "openai", "");
    let args = ["run", "--repo", "examples/durations", "--issue-file", "examples/durations/ISSUE.md"];
    let output = env
        .command(&[&args[..], &["--model", "scripted:test-model", "--json"]].concat())
        .current_dir(nested.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let mut events = parse_events(&output);
    let proof = events.pop().unwrap();
    assert_eq!(proof["proof"]["status"], "proven", "{proof}");
    assert_eq!(proof["proof"]["regressions"]["files"], json!(["test_durations.py"]), "{proof}");
    let patch = events.last().unwrap()["patch"].as_str().unwrap().to_string();
    assert!(patch.contains("+++ b/examples/durations/durations.py"), "{patch}");
}

#[test]
fn a_fix_that_breaks_a_related_test_is_unproven_names_the_test_and_is_not_applied() {
    let env = Env::new();
    let script = vec![
        create("test_compound.py", REPRODUCTION),
        call("edit", json!({"command": "str_replace", "path": "durations.py", "old_str": FIX_OLD, "new_str": FIX_NEW})),
        // Makes the reproduction pass, but 45s is no longer 45.
        break_single_units(),
        call("finish", json!({"summary": "fixed"})),
    ];
    let server = ScriptedServer::start_blocking(Flavor::OpenAi, script);
    env.config(&server, "openai", "");
    let output = env.run(&["--proof-attempts", "0", "--apply"]);
    assert_eq!(output.status.code(), Some(6), "unproven has its own exit code: {}", describe(&output));
    let proof = parse_events(&output).pop().unwrap();
    assert_eq!(proof["proof"]["status"], "unproven", "{proof}");
    assert_eq!(proof["proof"]["regressions"]["broken"], json!(["test_durations.ParseDurationTest.test_single_units"]));
    assert_eq!(proof["proof"]["reproduction"]["after"][0]["status"], "PASSED");
    let source = std::fs::read_to_string(env.repo.path().join("durations.py")).unwrap();
    assert!(source.contains(FIX_OLD), "--apply does not apply an unproven patch");

    // Human output says so.
    let env = Env::new();
    let script = vec![
        create("test_compound.py", REPRODUCTION),
        break_single_units(),
        call("finish", json!({"summary": "fixed"})),
    ];
    let server = ScriptedServer::start_blocking(Flavor::OpenAi, script);
    env.config(&server, "openai", "");
    let mut args = vec!["run", "--issue-file", "ISSUE.md", "--model", "scripted:m", "--proof-attempts", "0"];
    args.extend(["--apply"]);
    let output = env.command(&args).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(6), "{}", describe(&output));
    assert!(stdout.contains("result: unproven") && stdout.contains("proof: "), "{stdout}");
    assert!(stdout.contains("--apply refused"), "{stdout}");
}

#[test]
fn with_two_candidates_the_proven_one_is_chosen_after_cross_validation() {
    let env = Env::new();
    let fix = || {
        call("edit", json!({"command": "str_replace", "path": "durations.py", "old_str": FIX_OLD, "new_str": FIX_NEW}))
    };
    let script = vec![
        // Candidate 1: fixes the compound case but breaks single units.
        create("test_compound.py", REPRODUCTION),
        fix(),
        break_single_units(),
        call("finish", json!({"summary": "fixed"})),
        // Candidate 2: the right fix.
        create("test_compound.py", REPRODUCTION),
        fix(),
        call("finish", json!({"summary": "fixed"})),
    ];
    let server = ScriptedServer::start_blocking(Flavor::OpenAi, script);
    env.config(&server, "openai", "");
    let output = env.run(&["--candidates", "2", "--proof-attempts", "0", "--run-id", "pick"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let proof = parse_events(&output).pop().unwrap();
    assert_eq!(proof["proof"]["status"], "proven", "{proof}");
    let ranking = &proof["proof"]["candidates"];
    assert_eq!(ranking["chosen"], 2, "{ranking}");
    assert!(ranking["why"].as_str().unwrap().starts_with("chosen #2 (proven; passes 2/2 reproductions"), "{ranking}");
    assert_eq!(ranking["candidates"][0]["status"], "unproven");
    assert_eq!(ranking["candidates"][0]["passes"], 1, "candidate 1's fix passes candidate 2's reproduction only");
    assert!(proof["path"].as_str().unwrap().contains("pick-c2"), "{proof}");
    assert!(env.repo.path().join(".rigor/runs/pick-c1/result.json").is_file());
}

/// Deterministic whatever the interleaving: each candidate's first request gets a reply that
/// writes the reproduction, fixes the bug and finishes, in one turn.
#[test]
fn parallel_candidates_run_at_once_and_are_ranked() {
    let env = Env::new();
    let all = format!(
        "cat > test_compound.py <<'EOF'\n{REPRODUCTION}EOF\nsed -i 's/total = int(number)/total += int(number)/' durations.py"
    );
    let reply = || {
        Step::Reply(
            Reply::call("bash", &json!({"command": all}).to_string())
                .with_call("finish", &json!({"summary": "fixed"}).to_string()),
        )
    };
    let server = ScriptedServer::start_blocking(Flavor::OpenAi, vec![reply(), reply()]);
    env.config(&server, "openai", "");
    let output = env.run(&["--candidates", "2", "--parallel", "--run-id", "par"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let proof = parse_events(&output).pop().unwrap();
    let ranking = &proof["proof"]["candidates"];
    let statuses: Vec<&str> =
        ranking["candidates"].as_array().unwrap().iter().map(|c| c["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["proven", "proven"], "{ranking}");
    assert!(ranking["why"].as_str().unwrap().contains("agrees with"), "the same fix votes together: {ranking}");
    assert_eq!(server.requests().len(), 2, "one turn each");
}

#[test]
fn a_vague_issue_is_abstained_on_before_any_model_call_and_the_replay_agrees() {
    let env = Env::new();
    let server = ScriptedServer::start_blocking(Flavor::OpenAi, vec![]);
    env.config(&server, "openai", "");
    let output = env
        .command(&["run", "--issue", "it doesn't work, please fix", "--model", "scripted:m", "--json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert!(server.requests().is_empty(), "no model call");
    let proof = parse_events(&output).pop().unwrap();
    assert_eq!(proof["proof"]["status"], "abstained");
    assert!(proof["proof"]["reason"].as_str().unwrap().contains("not actionable"), "{proof}");
    let run_dir = env.only_run_dir();
    assert_eq!(result_json(&run_dir)["status"], "abstained");
    let replayed = env.command(&["replay", run_dir.to_str().unwrap(), "--json"]).output().unwrap();
    assert_eq!(replayed.status.code(), Some(0), "{}", describe(&replayed));

    // With the input bouncer off, the same issue reaches the model.
    let env = Env::new();
    let server = ScriptedServer::start_blocking(Flavor::OpenAi, vec![call("abstain", json!({"reason": "vague"}))]);
    env.config(&server, "openai", "");
    let args = ["run", "--issue", "it doesn't work, please fix", "--model", "scripted:m", "--bouncer", "off"];
    let output = env.command(&args).output().unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_borderline_issue_is_judged_by_the_model_before_work_starts() {
    let issue = "The export button crashes the app when the report has more than one page";
    let env = Env::new();
    let server = ScriptedServer::start_blocking(
        Flavor::OpenAi,
        vec![Step::Reply(Reply::text("VAGUE: no steps, no error text"))],
    );
    env.config(&server, "openai", "");
    let output = env.command(&["run", "--issue", issue, "--model", "scripted:m", "--json"]).output().unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let proof = parse_events(&output).pop().unwrap();
    assert!(proof["proof"]["reason"].as_str().unwrap().contains("no steps, no error text"), "{proof}");
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "one question, no run");
    assert!(requests[0]["messages"][0]["content"].as_str().unwrap().contains("ACTIONABLE"));

    // When the model finds it actionable, the run goes ahead.
    let env = Env::new();
    let script = vec![
        Step::Reply(Reply::text("ACTIONABLE")),
        call("abstain", json!({"reason": "cannot find an export button"})),
    ];
    let server = ScriptedServer::start_blocking(Flavor::OpenAi, script);
    env.config(&server, "openai", "");
    let output = env.command(&["run", "--issue", issue, "--model", "scripted:m", "--json"]).output().unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    assert_eq!(server.requests().len(), 2);
    assert!(parse_events(&output).pop().unwrap()["proof"]["reason"].as_str().unwrap().contains("export button"));
}

#[test]
fn the_output_bouncer_withholds_an_unproven_patch() {
    let env = Env::new();
    let script = vec![
        call("edit", json!({"command": "str_replace", "path": "durations.py", "old_str": FIX_OLD, "new_str": FIX_NEW})),
        call("finish", json!({"summary": "fixed, no test"})),
    ];
    let server = ScriptedServer::start_blocking(Flavor::OpenAi, script);
    env.config(&server, "openai", "");
    let output = env.run(&["--proof-attempts", "0", "--bouncer", "both", "--apply", "--apply-unproven"]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let proof = parse_events(&output).pop().unwrap();
    assert_eq!(proof["proof"]["status"], "abstained");
    assert!(proof["proof"]["reason"].as_str().unwrap().contains("no reproduction test"), "{proof}");
    let source = std::fs::read_to_string(env.repo.path().join("durations.py")).unwrap();
    assert!(source.contains(FIX_OLD), "a withheld patch is not applied");
}

#[test]
fn deleting_skipping_or_weakening_an_existing_test_is_refused() {
    let env = Env::new();
    let weaken = json!({"command": "str_replace", "path": "test_durations.py",
        "old_str": "        self.assertEqual(parse_duration(\"2h\"), 7200)\n", "new_str": ""});
    let skip = "sed -i 's/    def test_single_units/    @unittest.skip(\"flaky\")\\n    def test_single_units/' test_durations.py";
    let script = vec![
        call("edit", weaken),
        create("test_compound.py", REPRODUCTION),
        call("edit", json!({"command": "str_replace", "path": "durations.py", "old_str": FIX_OLD, "new_str": FIX_NEW})),
        call("bash", json!({"command": skip})),
        call("finish", json!({"summary": "fixed"})),
        call("abstain", json!({"reason": "cannot fix without skipping"})),
    ];
    let server = ScriptedServer::start_blocking(Flavor::OpenAi, script);
    env.config(&server, "openai", "");
    let output = env.run(&[]);
    let events = parse_events(&output);
    let observations = of_type(&events, "observation");
    assert!(
        observations[0]["content"].as_str().unwrap().contains("refused: test_durations.py: removes 1 assertion"),
        "{}",
        observations[0]
    );
    let finishes = finish_observations(&events);
    assert!(
        finishes[0].contains("skips or expects failure of the existing test `ParseDurationTest.test_single_units`"),
        "{finishes:?}"
    );
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
}

#[test]
fn an_anthropic_model_fixes_the_example_and_apply_updates_the_checkout() {
    let env = Env::new();
    let server = ScriptedServer::start_blocking(Flavor::Anthropic, fixing_script());
    env.config(&server, "anthropic", "");
    let output = env.run(&["--apply"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let source = std::fs::read_to_string(env.repo.path().join("durations.py")).unwrap();
    assert!(source.contains(FIX_NEW), "--apply writes the patch to the checkout");
    let requests = server.requests();
    assert!(requests[0]["system"].to_string().contains("You are rigor"), "{}", requests[0]["system"]);
    assert_eq!(requests.len(), 7);
}

#[test]
fn rate_limits_cut_streams_and_timeouts_are_retried() {
    let env = Env::new();
    // One fault before each of the first three turns; each call is retried and succeeds.
    let faults = vec![
        Step::Status { code: 429, retry_after: Some(1), body: "{\"error\":\"rate limited\"}".into() },
        Step::CutStream(Reply::call("view", "{\"path\": \"durations.py\"}")),
        Step::Delay { millis: 3_000, then: Box::new(Step::Reply(Reply::text("too late"))) },
    ];
    let mut script = Vec::new();
    let mut steps = fixing_script().into_iter();
    for fault in faults {
        script.push(fault);
        script.extend(steps.next());
    }
    script.extend(steps);
    let server = ScriptedServer::start_blocking(Flavor::OpenAi, script);
    env.config(&server, "openai", "");
    let output = env.run(&[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let events = parse_events(&output);
    let retries = of_type(&events, "retry");
    assert_eq!(retries.len(), 3, "{retries:?}");
    assert!(retries[0]["wait_ms"].as_u64().unwrap() >= 1_000, "Retry-After is honoured: {}", retries[0]);
    assert_patch_fixes_the_bug(&env.only_run_dir().join("patch.diff"));
}

#[test]
fn persistent_server_errors_end_the_run_with_a_clear_error_and_a_kept_trajectory() {
    let env = Env::new();
    let error = || Step::Status { code: 500, retry_after: None, body: "internal error".into() };
    let server = ScriptedServer::start_blocking(
        Flavor::OpenAi,
        vec![call("bash", json!({"command": "echo hi"})), error(), error(), error()],
    );
    env.config(&server, "openai", "");
    let output = env.run(&[]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let run_dir = env.only_run_dir();
    let result = result_json(&run_dir);
    assert_eq!(result["status"], "error");
    let summary = result["summary"].as_str().unwrap();
    assert!(summary.contains("3 attempts") && summary.contains("500"), "{summary}");
    let recorded = trajectory(&run_dir);
    assert_eq!(recorded.first().unwrap()["type"], "run_started");
    assert!(recorded.iter().any(|e| e["type"] == "observation" && e["content"].as_str().unwrap().contains("hi")));
    assert_eq!(recorded.last().unwrap()["type"], "run_finished");
}

#[test]
fn bad_tool_calls_become_observations_and_the_run_continues() {
    let env = Env::new();
    let mut script = vec![
        Step::Reply(Reply::call("bash", "{\"command\": \"ls")),
        call("teleport", json!({"to": "mars"})),
        call("bash", json!({"command": "sleep 30", "timeout_secs": 1})),
        Step::Reply(Reply::text("I think I am done.")),
    ];
    script.extend(fixing_script());
    let server = ScriptedServer::start_blocking(Flavor::OpenAi, script);
    env.config(&server, "openai", "");
    let output = env.run(&["--command-timeout", "1"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let events = parse_events(&output);
    let observations = of_type(&events, "observation");
    assert_eq!(observations[0]["is_error"], true);
    assert!(observations[0]["content"].as_str().unwrap().contains("JSON"), "{}", observations[0]);
    assert!(observations[1]["content"].as_str().unwrap().contains("unknown tool"), "{}", observations[1]);
    assert!(observations[2]["content"].as_str().unwrap().contains("timed out"), "{}", observations[2]);
    let requests = server.requests();
    let nudge = requests[4]["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(nudge["role"], "user");
    assert!(nudge["content"].as_str().unwrap().contains("called no tool"));
    assert_each_tool_call_answered_once(&requests);
}

#[test]
fn a_call_repeated_with_the_same_result_gets_a_note_to_change_course() {
    let env = Env::new();
    let missing = call("view", json!({"path": "no_such_file.py"}));
    let mut script = vec![missing.clone(), missing.clone(), missing];
    script.extend(fixing_script());
    let server = ScriptedServer::start_blocking(Flavor::OpenAi, script);
    env.config(&server, "openai", "");
    let output = env.run(&[]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let events = parse_events(&output);
    let notes = of_type(&events, "user_message");
    assert_eq!(notes.len(), 1, "only the third identical call is noted: {notes:?}");
    assert!(notes[0]["content"].as_str().unwrap().contains("same `view` call 3 times"), "{}", notes[0]);
    // The model sees the note after the third result, as the last message of its next request.
    let requests = server.requests();
    let last = requests[3]["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["role"], "user");
    assert!(last["content"].as_str().unwrap().contains("try something different"), "{last}");
    assert_each_tool_call_answered_once(&requests);
}

#[test]
fn budgets_and_abstention_have_their_own_status_and_exit_code() {
    let env = Env::new();
    let server = ScriptedServer::start_blocking(Flavor::OpenAi, fixing_script());
    env.config(&server, "openai", "");
    let output = env.run(&["--max-steps", "2"]);
    assert_eq!(output.status.code(), Some(4), "{}", describe(&output));
    assert_eq!(result_json(&env.only_run_dir())["status"], "budget_exhausted");

    let env = Env::new();
    let server = ScriptedServer::start_blocking(
        Flavor::OpenAi,
        vec![call("abstain", json!({"reason": "The issue does not say what the expected value is."}))],
    );
    env.config(&server, "openai", "");
    let output = env.run(&[]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let result = result_json(&env.only_run_dir());
    assert_eq!(result["status"], "abstained");
    assert!(result["summary"].as_str().unwrap().contains("expected value"));
}

/// What a child process printed, line by line, as it arrives.
enum Line {
    Out(String),
    Err(String),
}

/// Reads the stdout and stderr of `child` on two threads into one channel, line by line.
fn stream_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<Line> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let out_tx = tx.clone();
    std::thread::spawn(move || stdout.lines().map_while(Result::ok).try_for_each(|l| out_tx.send(Line::Out(l))));
    std::thread::spawn(move || stderr.lines().map_while(Result::ok).try_for_each(|l| tx.send(Line::Err(l))));
    rx
}

/// Everything a child printed so far, and where it is read from.
struct Transcript {
    lines: std::sync::mpsc::Receiver<Line>,
    stdout: String,
    stderr: String,
}

impl Transcript {
    fn record(&mut self, line: &Line) {
        match line {
            Line::Out(l) => self.stdout.push_str(&format!("{l}\n")),
            Line::Err(l) => self.stderr.push_str(&format!("{l}\n")),
        }
    }

    /// Waits (without a time limit) for the first line that satisfies `wanted`; fails with the
    /// transcript if the process closes its output first.
    fn wait_for(&mut self, what: &str, wanted: impl Fn(&Line) -> bool) -> String {
        loop {
            let Ok(line) = self.lines.recv() else {
                panic!("rigor ended before {what}\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
            };
            self.record(&line);
            if wanted(&line) {
                let (Line::Out(l) | Line::Err(l)) = line;
                return l;
            }
        }
    }

    /// Waits (without a time limit) until `done()` holds, reading output meanwhile; fails with
    /// the transcript when a stdout event satisfies `too_late` or the process ends first.
    fn wait_until(&mut self, what: &str, done: impl Fn() -> bool, too_late: impl Fn(&Value) -> bool) {
        use std::sync::mpsc::RecvTimeoutError;
        while !done() {
            match self.lines.recv_timeout(std::time::Duration::from_millis(10)) {
                Ok(line) => {
                    self.record(&line);
                    if let Line::Out(l) = &line
                        && serde_json::from_str::<Value>(l).is_ok_and(|e| too_late(&e))
                    {
                        panic!("{l} came before {what}\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("rigor ended before {what}\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr)
                }
            }
        }
    }

    /// The rest of the output, once the process has closed it.
    fn finish(mut self, status: std::process::ExitStatus) -> Output {
        while let Ok(line) = self.lines.recv() {
            self.record(&line);
        }
        Output { status, stdout: self.stdout.into_bytes(), stderr: self.stderr.into_bytes() }
    }
}

fn event_of_type(line: &Line, kind: &str) -> bool {
    matches!(line, Line::Out(l) if serde_json::from_str::<Value>(l).is_ok_and(|e| e["type"] == kind))
}

/// Synchronised on what rigor and the command report, never on time: the command marks that it
/// runs and then waits for a file the test creates only once rigor has acknowledged the Ctrl-C,
/// so the interrupt provably arrives while the step runs, and the step can only finish after it.
#[test]
fn ctrl_c_stops_after_the_current_step_and_keeps_a_valid_record() {
    let env = Env::new();
    let step = "touch step-started; while [ ! -e may-finish ]; do sleep 0.01; done; echo slept";
    let mut script = vec![call("bash", json!({"command": step}))];
    script.extend(fixing_script());
    let server = ScriptedServer::start_blocking(Flavor::OpenAi, script);
    env.config(&server, "openai", "");
    let mut child = env
        .command(&["run", "--issue-file", "ISSUE.md", "--model", "scripted:m", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut transcript = Transcript { lines: stream_lines(&mut child), stdout: String::new(), stderr: String::new() };
    let started = transcript.wait_for("run_started", |l| event_of_type(l, "run_started"));
    let started: Value = serde_json::from_str(&started).unwrap();
    let workspace = PathBuf::from(started["workspace"].as_str().unwrap());
    transcript.wait_for("the tool_call of the step", |l| event_of_type(l, "tool_call"));
    let marker = workspace.join("step-started");
    transcript.wait_until("the command started", || marker.exists(), |e| e["type"] == "observation");
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    transcript.wait_for(
        "the interrupt was acknowledged",
        |l| matches!(l, Line::Err(l) if l.contains("interrupt: stopping after the current step")),
    );
    std::fs::write(workspace.join("may-finish"), "").unwrap();
    let status = child.wait().unwrap();
    let output = transcript.finish(status);
    assert_eq!(output.status.code(), Some(130), "{}", describe(&output));
    let run_dir = env.only_run_dir();
    assert_eq!(result_json(&run_dir)["status"], "interrupted");
    let recorded = trajectory(&run_dir);
    let observation = recorded.iter().find(|e| e["type"] == "observation").expect("the running step finished");
    assert!(observation["content"].as_str().unwrap().contains("slept"), "{observation}");
    assert_eq!(recorded.last().unwrap()["type"], "run_finished");
    assert!(server.remaining() > 0, "no further model calls after the interrupt");
}

#[test]
fn a_missing_model_configuration_explains_what_to_do() {
    // Nothing configured: the embedded model is the default; without its file, the error says
    // which command fetches it (and how to use another model instead).
    let env = Env::new();
    let no_models = tempfile::tempdir().unwrap();
    let output = env.command(&["run", "--issue", "fix it"]).env("RIGOR_MODELS_DIR", no_models.path()).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("using the embedded model local:qwen2.5-coder-1.5b"), "{stderr}");
    assert!(stderr.contains("rigor model fetch qwen2.5-coder-1.5b"), "{stderr}");
    assert!(stderr.contains("--model") && stderr.contains("OPENAI_API_KEY"), "{stderr}");

    let output = env.command(&["run", "--issue", "fix it", "--model", "openai:gpt-4o"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("set OPENAI_API_KEY"), "{stderr}");
}

#[test]
fn model_list_shows_each_models_size_licence_state_and_the_default() {
    let env = Env::new();
    let no_models = tempfile::tempdir().unwrap();
    let output = env.command(&["model", "list"]).env("RIGOR_MODELS_DIR", no_models.path()).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let listed = String::from_utf8_lossy(&output.stdout);
    let qwen = listed.find("qwen2.5-coder-1.5b ").expect("the coder model is listed");
    let after_qwen = &listed[qwen..];
    assert!(after_qwen.contains("1117.3 MB  not fetched"), "{listed}");
    assert!(after_qwen.contains("the default when no model is configured"), "{listed}");
    assert!(after_qwen.contains("Apache-2.0 upstream") && after_qwen.contains("declare none"), "{listed}");
    assert!(after_qwen.contains("fetch it with: rigor model fetch qwen2.5-coder-1.5b"), "{listed}");
    assert_eq!(listed.matches("the default when").count(), 1, "{listed}");
}

#[test]
fn config_show_masks_secrets() {
    let env = Env::new();
    let output = env
        .command(&["config", "show", "--model", "openai:gpt-4o"])
        .env("OPENAI_API_KEY", "sk-test-0123456789abcdef")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", describe(&output));
    assert!(stdout.contains("sk-…cdef"), "{stdout}");
    assert!(!stdout.contains("0123456789"), "{stdout}");
}

#[test]
fn secrets_in_observations_are_redacted_from_the_record() {
    let env = Env::new();
    let server = ScriptedServer::start_blocking(
        Flavor::OpenAi,
        vec![
            call("bash", json!({"command": "printf 'key: sk-%s\\n' abcdefghijklmnopqrstuvwxyz"})),
            call("abstain", json!({"reason": "demo"})),
        ],
    );
    env.config(&server, "openai", "");
    let output = env.run(&[]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let recorded = std::fs::read_to_string(env.only_run_dir().join("trajectory.jsonl")).unwrap();
    assert!(recorded.contains("key: [REDACTED:api-key]"), "{recorded}");
    assert!(!recorded.contains("abcdefghijklmnopqrstuvwxyz\\n"), "{recorded}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("sk-abcdefghijklmnopqrstuvwxyz"));
}

/// A small model's usual mistakes, end to end in the compact prompt and the text action format:
/// a tool written as a shell command, the editor's arguments in a ```python block with an
/// invented argument name and command, an unclosed block before the next one. Each is
/// recovered from, the model is told how, and the example gets fixed.
#[test]
fn a_small_models_malformed_actions_are_recovered_and_the_example_is_fixed() {
    let edit = json!({"command": "python", "file": "durations.py", "old_str": FIX_OLD, "new_str": FIX_NEW});
    let server = ScriptedServer::start_blocking(
        Flavor::OpenAi,
        vec![
            Step::Reply(Reply::text("```bash\nview durations.py\n```")),
            Step::Reply(Reply::text(format!("The bug is the assignment.\n```python\n{edit}\n```"))),
            Step::Reply(Reply::text(format!("```bash\n{VERIFY}\n```finish\nFixed.\n```"))),
            Step::Reply(Reply::text("```finish\nAccumulate every part of a compound duration.\n```")),
        ],
    );
    let env = Env::new();
    // The loop's recoveries, without the drafts asked for first.
    env.config(&server, "openai", "text_actions = true\n[agent]\ndrafts = false\n");
    let output = env.run(&["--no-proof", "--max-steps", "6"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let events = parse_events(&output);
    let started = of_type(&events, "run_started")[0];
    assert_eq!(started["prompt"], "compact", "text actions choose the compact prompt");
    let tools: Vec<&str> = started["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(tools, ["bash", "view", "edit", "finish", "abstain"]);
    let calls: Vec<&str> = of_type(&events, "tool_call").iter().map(|c| c["call"]["name"].as_str().unwrap()).collect();
    assert_eq!(calls, ["view", "edit", "bash", "finish"], "{}", describe(&output));
    let edited = of_type(&events, "observation")[1]["content"].as_str().unwrap().to_string();
    assert!(edited.contains("no argument `file`: it was taken as `path`"), "{edited}");
    assert!(edited.contains("no command `python`: it was taken as `str_replace`"), "{edited}");
    let patch = std::fs::read_to_string(env.only_run_dir().join("patch.diff")).unwrap();
    assert!(patch.contains(&format!("+            {FIX_NEW}")) || patch.contains(FIX_NEW), "{patch}");
    // What the parser recovered from reached the model with each call's result.
    let requests = server.requests();
    let sent = |n: usize| requests[n]["messages"].as_array().unwrap().last().unwrap()["content"].to_string();
    assert!(sent(1).contains("`view` is a tool, not a shell command"), "{}", sent(1));
    assert!(sent(2).contains("labelled ```python but held arguments of `edit`"), "{}", sent(2));
    assert!(sent(3).contains("had no closing ``` line"), "{}", sent(3));
    assert!(requests[0]["tools"].is_null(), "text actions send no tool schemas");
}
