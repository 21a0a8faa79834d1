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

/// The reproduction the agent writes before it fixes: fails on the original code (1800 != 5400).
const REPRODUCTION: &str = "import unittest\n\nfrom durations import parse_duration\n\n\nclass ReproTest(unittest.TestCase):\n    def test_compound(self):\n        self.assertEqual(parse_duration(\"1h30m\"), 5400)\n";

fn call(name: &str, args: Value) -> Step {
    Step::Reply(Reply::call(name, &args.to_string()))
}

/// The bundled example as a one-instance dataset with a local clone, a spec, a scripted model
/// server and a user configuration that names it.
struct World {
    work: tempfile::TempDir,
    _repo: tempfile::TempDir,
    _config_home: tempfile::TempDir,
    config_home: std::path::PathBuf,
    server: ScriptedServer,
    run_id: String,
}

const INSTANCE: &str = "example__durations-1";
const MODEL_DIR: &str = "rigor__scripted__test-model";

impl World {
    /// `extra_rows` are appended to the dataset (e.g. a bad row).
    fn new(script: Vec<Step>, extra_rows: &str) -> Self {
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
            "instance_id": INSTANCE, "repo": "example/durations", "base_commit": base,
            "patch": "", "test_patch": test_patch, "version": "1.0",
            "problem_statement": std::fs::read_to_string(repo.path().join("ISSUE.md")).unwrap(),
            "FAIL_TO_PASS": "[\"test_compound (test_compound.CompoundTest.test_compound)\"]",
            "PASS_TO_PASS": "[\"test_single (test_compound.CompoundTest.test_single)\"]",
        });
        std::fs::write(work.path().join("tasks.jsonl"), format!("{row}\n{extra_rows}")).unwrap();

        let server = ScriptedServer::start_blocking(Flavor::OpenAi, script);
        let config_home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(config_home.path().join("rigor")).unwrap();
        std::fs::write(
            config_home.path().join("rigor/config.toml"),
            format!("[providers.scripted]\nkind = \"openai\"\nbase_url = \"{}\"\n", server.base_url()),
        )
        .unwrap();
        // Unique per process: the environment cache is shared between test runs.
        let run_id = format!("e{}-{}", std::process::id(), next_suffix());
        Self {
            config_home: config_home.path().to_path_buf(),
            _config_home: config_home,
            work,
            _repo: repo,
            server,
            run_id,
        }
    }

    /// Appends `toml` to the user configuration.
    fn configure(&self, toml: &str) {
        let file = self.config_home.join("rigor/config.toml");
        let config = std::fs::read_to_string(&file).unwrap();
        std::fs::write(file, format!("{config}\n{toml}")).unwrap();
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.work.path().join(name)
    }

    /// `rigor ARGS` in the world.
    fn rigor(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rigor"));
        command
            .args(args)
            .current_dir(self.work.path())
            .env("XDG_CONFIG_HOME", &self.config_home)
            .env("NO_COLOR", "1")
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .env_remove("ANTHROPIC_API_KEY")
            .env_remove("RIGOR_MODEL");
        command
    }

    /// `rigor eval --agent rigor` on the dataset, plus `extra`.
    fn eval(&self, extra: &[&str]) -> Command {
        let env_cache = dirs_cache().join("test-envs");
        let mut args = vec!["eval", "--dataset", "tasks.jsonl", "--agent", "rigor", "--model", "scripted:test-model"];
        args.extend(["--repos", "repos", "--specs", "specs", "--output", "out", "--run-id", &self.run_id]);
        args.extend(["--scratch", "scratch", "--env-cache", env_cache.to_str().unwrap()]);
        args.extend(extra);
        self.rigor(&args)
    }

    /// The log directory of the instance.
    fn instance_dir(&self) -> std::path::PathBuf {
        self.path("out").join(format!("logs/run_evaluation/{}/{MODEL_DIR}/{INSTANCE}", self.run_id))
    }
}

/// A number new in this process (two tests of one process must not share a run id).
fn next_suffix() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::SeqCst).to_string()
}

/// Reproduce, fix, finish: the patch the proof proves.
fn fixing_steps() -> Vec<Step> {
    let mut steps =
        vec![call("edit", json!({"command": "create", "path": "test_repro.py", "file_text": REPRODUCTION}))];
    steps.extend(unproven_fixing_steps());
    steps
}

/// Fix and finish, without a reproduction test.
fn unproven_fixing_steps() -> Vec<Step> {
    vec![
        call(
            "edit",
            json!({"command": "str_replace", "path": "durations.py", "old_str": "total = int(number) * UNITS[ch]", "new_str": "total += int(number) * UNITS[ch]"}),
        ),
        Step::Reply(Reply::call("finish", &json!({"summary": "accumulate"}).to_string()).with_tokens(700, 40)),
    ]
}

#[test]
fn eval_with_the_rigor_agent_then_report() {
    // The agent's shell runs in the instance's environment, inside the sandbox.
    let mut script = vec![call("bash", json!({"command": "python -c 'import sys; print(\"PREFIX\", sys.prefix)'"}))];
    script.extend(fixing_steps());
    let world = World::new(script, "not a row\n");
    let run_id = world.run_id.clone();
    let out = world.eval(&["--keep-worktrees", "--task-value", "10"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stderr.contains("row 2"), "the bad row is named: {stderr}");
    let kept = world.path("scratch").join(&run_id);
    assert!(std::fs::read_dir(&kept).is_ok_and(|mut d| d.next().is_some()), "the worktree is kept under --scratch");
    assert!(stdout.contains("resolved 1/1"), "{stdout}\n{stderr}");
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(world.path("out").join(format!("{MODEL_DIR}.{run_id}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["resolved_ids"], json!([INSTANCE]));
    assert!(summary["rigor"]["input_tokens"].as_u64().unwrap() >= 700);
    assert_eq!(summary["rigor"]["alpha_usd"], json!(10.0));
    let instance_dir = world.instance_dir();
    assert!(instance_dir.join("trajectory.jsonl").is_file());
    assert!(instance_dir.join("report.json").is_file());
    let trajectory = std::fs::read_to_string(instance_dir.join("trajectory.jsonl")).unwrap();
    let prefix = trajectory.lines().find_map(|l| l.split("PREFIX ").nth(1)).expect("the bash observation");
    let env_cache = dirs_cache().join("test-envs");
    assert!(prefix.starts_with(env_cache.to_str().unwrap()), "the venv is active in the agent's shell: {prefix}");
    // The proof: rigor ran the reproduction itself, next to the official verdict.
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(instance_dir.join("rigor.json")).unwrap()).unwrap();
    assert_eq!(
        (record["status"].as_str(), record["agent"]["proof_status"].as_str()),
        (Some("resolved"), Some("proven"))
    );
    let proof: Value =
        serde_json::from_str(&std::fs::read_to_string(instance_dir.join("proof.json")).unwrap()).unwrap();
    assert_eq!(proof["status"], "proven", "{proof}");
    assert_eq!(proof["reproduction"]["before"][0]["id"], "test_repro.ReproTest.test_compound", "{proof}");
    let env_cache = dirs_cache().join("test-envs");
    let environment = proof["environment"].as_str().unwrap();
    assert!(
        environment.contains(env_cache.to_str().unwrap()),
        "the proof runs in the instance's environment: {environment}"
    );
    assert!(stdout.contains("proven 1 (precision 1/1 (100.0%))"), "{stdout}");
    assert_eq!(summary["rigor"]["proof"]["precision_of_proven"], json!({"count": 1, "of": 1, "rate": 1.0}));

    let html = world.path("report.html");
    let out = world.rigor(&["report", &run_id, "--output", "out", "--html", html.to_str().unwrap()]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Resolved 1 / 1"), "{stdout}");
    assert!(stdout.contains("precision of proven 1/1 (100.0%)"), "{stdout}");
    assert!(stdout.contains("| proven | 1 | 1 |"), "{stdout}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains(INSTANCE) && page.contains("precision of proven <b>1/1 (100.0%)</b>"), "{page}");
}

#[test]
fn the_rigor_agent_of_an_evaluation_gets_the_configured_mcp_servers() {
    // `rigor mcp` itself as the configured server, started in each instance's worktree.
    let mut script = vec![call("rigor__search_entity", json!({"query": "parse_duration"}))];
    script.extend(fixing_steps());
    let world = World::new(script, "");
    let rigor = Value::String(env!("CARGO_BIN_EXE_rigor").into());
    world.configure(&format!(
        "[mcp.servers.rigor]\ncommand = {rigor}\nargs = [\"mcp\", \"--repo\", \"{{workspace}}\"]\n"
    ));
    let out = world.eval(&[]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("resolved 1/1"), "{stdout}");
    let trajectory = std::fs::read_to_string(world.instance_dir().join("trajectory.jsonl")).unwrap();
    let observation = trajectory
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["type"] == "observation" && e["name"] == "rigor__search_entity")
        .expect("the MCP tool's observation");
    assert!(observation["content"].as_str().unwrap().contains("durations.py:parse_duration"), "{observation}");
}

/// A fix without a reproduction test, and no attempt left to add one: delivered unproven, and
/// graded all the same (it does resolve the instance: an unproven patch is not a wrong one).
#[test]
fn an_unproven_patch_is_recorded_as_unproven_beside_its_verdict() {
    let world = World::new(unproven_fixing_steps(), "");
    let out = world.eval(&["--proof-attempts", "0"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("proven 0 (precision 0/0 (n/a)) · unproven 1"), "{stdout}");
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(world.instance_dir().join("rigor.json")).unwrap()).unwrap();
    assert_eq!(
        (record["status"].as_str(), record["agent"]["proof_status"].as_str()),
        (Some("resolved"), Some("unproven"))
    );
    let proof: Value =
        serde_json::from_str(&std::fs::read_to_string(world.instance_dir().join("proof.json")).unwrap()).unwrap();
    assert_eq!(proof["reason"], "no reproduction test", "{proof}");

    let out = world.rigor(&["report", &world.run_id, "--output", "out"]).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("Resolved 1/1 (100.0%) · precision of proven 0/0 (n/a)"), "{report}");
    assert!(report.contains("| unproven | 1 | 1 |") && !report.contains("| proven |"), "{report}");
}

#[test]
fn no_proof_grades_the_agent_s_patch_without_proving_it() {
    let world = World::new(unproven_fixing_steps(), "");
    let out = world.eval(&["--no-proof", "--json"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["resolved_ids"], json!([INSTANCE]), "{summary}");
    assert!(summary["rigor"].get("proof").is_none(), "{summary}");
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(world.instance_dir().join("rigor.json")).unwrap()).unwrap();
    assert_eq!(record["agent"]["proof_status"], Value::Null, "{record}");
    assert!(!world.instance_dir().join("proof.json").exists());
}

/// The output bouncer withholds the unproven patch (abstained), and the harness grades it all the
/// same: this abstention was a wrong one (the patch resolves), which the abstention precision shows.
#[test]
fn a_withheld_patch_is_graded_for_the_abstention_precision() {
    let world = World::new(unproven_fixing_steps(), "");
    let out = world.eval(&["--proof-attempts", "0", "--bouncer", "both", "--json"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["resolved_ids"], json!([INSTANCE]), "{summary}");
    let proof = &summary["rigor"]["proof"];
    assert_eq!(proof["abstention_rate"], json!({"count": 1, "of": 1, "rate": 1.0}), "{proof}");
    assert_eq!(proof["abstention_precision"], json!({"count": 0, "of": 1, "rate": 0.0}), "{proof}");
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(world.instance_dir().join("rigor.json")).unwrap()).unwrap();
    assert_eq!(record["agent"]["proof_status"], "abstained", "{record}");
}

/// Synchronised on what the agent's command reports, never on time: Ctrl-C is sent once the
/// command provably runs (it would otherwise run for a day).
#[test]
fn ctrl_c_stops_the_running_agent_records_the_instance_as_interrupted_and_a_rerun_resumes_it() {
    let mut script = vec![call("bash", json!({"command": "touch step-started; sleep 100000"}))];
    script.extend(fixing_steps());
    let world = World::new(script, "");
    let mut child =
        world.eval(&[]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let worktree = world.path("scratch").join(&world.run_id).join(format!("{MODEL_DIR}__{INSTANCE}"));
    while !worktree.join("step-started").exists() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "rigor ended before the agent's command ran: {:?}",
            child.wait_with_output()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(world.instance_dir().join("rigor.json")).unwrap()).unwrap();
    assert_eq!(record["status"], "interrupted", "{record}");
    assert_eq!(record["agent"]["status"], "interrupted", "{record}");
    let trajectory = std::fs::read_to_string(world.instance_dir().join("trajectory.jsonl")).unwrap();
    let last: Value = serde_json::from_str(trajectory.lines().last().unwrap()).unwrap();
    assert_eq!((last["type"].as_str(), last["status"].as_str()), (Some("run_finished"), Some("interrupted")));
    assert!(trajectory.contains("cancelled"), "the running command was cancelled");
    assert_eq!(record["agent"]["proof_status"], Value::Null, "an interrupted run has no proof status");
    assert!(!world.instance_dir().join("proof.json").exists());
    assert_eq!(world.server.remaining(), 3, "no model call after the interrupt");

    // The same run id again: the interrupted instance is evaluated again, to the end.
    let out = world.eval(&[]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("resolved 1/1"), "{stdout}");
    assert_eq!(world.server.remaining(), 0);
}

fn dirs_cache() -> std::path::PathBuf {
    std::env::var_os("RIGOR_CACHE")
        .map(Into::into)
        .unwrap_or_else(|| std::path::PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/rigor"))
}

/// `rigor eval --json` in `work` with the given files; returns the exit code, the summary and stderr.
fn eval_json(work: &std::path::Path, dataset: &str, predictions: &str) -> (Option<i32>, Value, String) {
    std::fs::write(work.join("tasks.jsonl"), dataset).unwrap();
    std::fs::write(work.join("preds.jsonl"), predictions).unwrap();
    std::fs::create_dir_all(work.join("repos")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rigor"))
        .args(["eval", "--dataset", "tasks.jsonl", "--predictions", "preds.jsonl", "--repos", "repos", "--json"])
        .args(["--output", "out", "--scratch", "scratch", "--run-id", "r1"])
        .current_dir(work)
        .env("NO_COLOR", "1")
        .env_remove("RIGOR_REPOS")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let summary = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: stdout:\n{stdout}\nstderr:\n{stderr}"));
    (out.status.code(), summary, stderr)
}

const ROW: &str = r#"{"instance_id":"nobody__missing-1","repo":"nobody/missing","base_commit":"abc","test_patch":"t","FAIL_TO_PASS":[],"PASS_TO_PASS":[]}"#;
const PATCH: &str = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n";

#[test]
fn eval_fails_when_nothing_could_be_evaluated_and_counts_bad_rows_as_errors() {
    // Every dataset row is invalid.
    let work = tempfile::tempdir().unwrap();
    let (code, summary, stderr) = eval_json(work.path(), "not a row\n{\"instance_id\": \"a__b-1\"}\n", "");
    assert_eq!(code, Some(1), "{summary}\n{stderr}");
    assert!(stderr.contains("nothing could be evaluated") && stderr.contains("no valid instance"), "{stderr}");
    assert_eq!(summary["error_instances"], 2, "{summary}");
    assert_eq!(summary["rigor"]["invalid_rows"].as_array().unwrap().len(), 2, "{summary}");

    // The clone is missing: the instance is an error, and the run failed.
    let work = tempfile::tempdir().unwrap();
    let pred = json!({"instance_id": "nobody__missing-1", "model_name_or_path": "m", "model_patch": PATCH});
    let (code, summary, stderr) = eval_json(work.path(), &format!("{ROW}\n"), &format!("{pred}\n"));
    assert_eq!(code, Some(1), "{summary}\n{stderr}");
    assert_eq!(summary["error_ids"], json!(["nobody__missing-1"]), "{summary}");
    assert!(stderr.contains("nothing could be evaluated: no instance was graded"), "{stderr}");

    // An unreadable prediction line is an error of its instance, not an empty patch; a line
    // without a readable instance id is an error of its own.
    let work = tempfile::tempdir().unwrap();
    let bad = json!({"instance_id": "nobody__missing-1", "model_name_or_path": "m", "model_patch": 5});
    let (code, summary, stderr) = eval_json(work.path(), &format!("{ROW}\n"), &format!("{bad}\n{{oops\n"));
    assert_eq!(code, Some(1), "{summary}\n{stderr}");
    assert_eq!(summary["empty_patch_instances"], 0, "{summary}");
    assert_eq!(summary["error_ids"], json!(["nobody__missing-1"]), "{summary}");
    assert_eq!(summary["error_instances"], 2, "{summary}");
    assert!(summary["rigor"]["invalid_rows"][0].as_str().unwrap().contains("row 2"), "{summary}");
    assert!(stderr.contains("row 1") && stderr.contains("model_patch"), "{stderr}");

    // Empty predictions only are an evaluated outcome: exit 0.
    let work = tempfile::tempdir().unwrap();
    let empty = json!({"instance_id": "nobody__missing-1", "model_name_or_path": "m", "model_patch": ""});
    let (code, summary, stderr) = eval_json(work.path(), &format!("{ROW}\n"), &format!("{empty}\n"));
    assert_eq!(code, Some(0), "{summary}\n{stderr}");
    assert_eq!(summary["empty_patch_ids"], json!(["nobody__missing-1"]), "{summary}");

    // An instance without a prediction is incomplete (not evaluated), not an empty patch.
    let work = tempfile::tempdir().unwrap();
    let other = ROW.replace("nobody__missing-1", "nobody__missing-2");
    let (code, summary, stderr) = eval_json(work.path(), &format!("{ROW}\n{other}\n"), &format!("{empty}\n"));
    assert_eq!(code, Some(0), "{summary}\n{stderr}");
    assert_eq!(summary["empty_patch_ids"], json!(["nobody__missing-1"]), "{summary}");
    assert_eq!(summary["incomplete_ids"], json!(["nobody__missing-2"]), "{summary}");
    assert_eq!(summary["submitted_instances"], 1, "{summary}");
}
