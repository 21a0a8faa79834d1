//! The proof of whole runs, per test runner: a scripted model writes a reproduction test and a
//! fix in a real repository (made here with git) through a [`Session`] with the [`Prover`] as
//! its only tool source, and the proof rigor itself ran (real runners, the real sandbox) is read
//! back with [`Prover::proof`].
//!
//! - cargo: a failing `assert_eq!` in a new `tests/*.rs` is a reproduction, also inside a module
//!   of the file (run by its full path); a fix that breaks an existing test is unproven with that
//!   test named.
//! - pytest (from an environment of the rigor cache, the in-repository `.venv` linking to it,
//!   tracked or ignored by git): a new test file reproduces (also when pytest's summary line
//!   leaves the message out); tests that fail with a fixture error, an ImportError in the test or
//!   a collection error do not, and the `finish` observation says why.
//! - unittest: a "reproduction" that already passes on the original code is not one.
//!
//! The scripted model answers one tool call per turn; when its script is over it abstains, so a
//! run whose proof goes otherwise than the script expects still ends (and the test says how).
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of a test binary

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rigor_core::run::{RunReport, RunRequest};
use rigor_core::session::Session;
use rigor_llm::{ChatRequest, ChatResponse, Provider, ProviderError, StreamSink};
use rigor_proof::failure::Failure;
use rigor_proof::proof::{Proof, ProofStatus, TestResult};
use rigor_proof::prover::{ProofSettings, Prover};
use rigor_protocol::{Event, FinishReason, Message, RunStatus, ToolCall, Usage};
use rigor_sandbox::SandboxSettings;
use rigor_test_support::repo::git;
use rigor_testing::env::{EnvCache, Installer, Sources, rigor_cache_dir};
use rigor_testing::spec::EnvSpec;
use serde_json::{Value, json};

/// A model that answers with one tool call per turn from a script, then abstains.
struct Script(Mutex<VecDeque<(String, Value)>>);

impl Script {
    fn new(calls: Vec<(&str, Value)>) -> Arc<Self> {
        Arc::new(Self(Mutex::new(calls.into_iter().map(|(name, args)| (name.to_string(), args)).collect())))
    }
}

#[async_trait]
impl Provider for Script {
    fn id(&self) -> String {
        "scripted:runners".into()
    }

    fn context_window(&self) -> u64 {
        1_000_000
    }

    async fn chat(&self, _request: &ChatRequest, _sink: StreamSink<'_>) -> Result<ChatResponse, ProviderError> {
        let next = self.0.lock().unwrap().pop_front();
        let (name, arguments) = next.unwrap_or_else(|| ("abstain".into(), json!({"reason": "the script is over"})));
        Ok(ChatResponse {
            message: Message::assistant(
                "",
                vec![ToolCall { id: String::new(), name, arguments: arguments.to_string() }],
            ),
            usage: Usage { input_tokens: 10, output_tokens: 1, cached_input_tokens: 0 },
            cost_usd: 0.0,
            finish_reason: FinishReason::ToolCalls,
        })
    }
}

fn create(path: &str, text: &str) -> (&'static str, Value) {
    ("edit", json!({"command": "create", "path": path, "file_text": text}))
}

fn replace(path: &str, old: &str, new: &str) -> (&'static str, Value) {
    ("edit", json!({"command": "str_replace", "path": path, "old_str": old, "new_str": new}))
}

fn bash(command: &str) -> (&'static str, Value) {
    ("bash", json!({"command": command}))
}

fn finish() -> (&'static str, Value) {
    ("finish", json!({"summary": "Reproduced the issue with a test, then fixed it."}))
}

fn abstain() -> (&'static str, Value) {
    ("abstain", json!({"reason": "giving up"}))
}

/// A git repository with `files` committed (`.rigor/` of the runs inside it is ignored by git).
fn repository(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "the project"]);
    dir
}

/// What a run left: its report, its proof, and what each `finish` call was told.
struct Outcome {
    report: RunReport,
    proof: Proof,
    finishes: Vec<String>,
}

impl Outcome {
    fn reproduction_before(&self) -> &[TestResult] {
        &self.proof.reproduction.as_ref().expect("a reproduction was run").before
    }

    fn reproduction_after(&self) -> &[TestResult] {
        &self.proof.reproduction.as_ref().expect("a reproduction was run").after
    }
}

/// Runs `script` on `repo` for `issue` with a prover of `settings`, in the real sandbox.
async fn prove(repo: &Path, issue: &str, script: Vec<(&str, Value)>, settings: ProofSettings) -> Outcome {
    let prover = Prover::new(settings);
    let request = RunRequest { sources: vec![Arc::new(prover.clone())], ..RunRequest::new(repo, issue) };
    let mut session = Session::start(request, Script::new(script), false);
    let mut finishes = Vec::new();
    while let Some(event) = session.next_event().await {
        if let Event::Observation { name, content, .. } = event
            && name == "finish"
        {
            finishes.push(content);
        }
    }
    let report = session.finish().await.unwrap();
    let proof = prover.proof().unwrap_or_else(|| panic!("no proof: finish was never called\n{finishes:?}"));
    Outcome { report, proof, finishes }
}

/// Everything about an outcome, for failure messages.
fn shown(outcome: &Outcome) -> String {
    format!(
        "run {:?}: {}\nfinish observations:\n{}\nproof:\n{}",
        outcome.report.status,
        outcome.report.summary,
        outcome.finishes.join("\n---\n"),
        serde_json::to_string_pretty(&outcome.proof).unwrap()
    )
}

// cargo: a tiny crate without dependencies, so `cargo test --offline` builds it in the sandbox
// (`[workspace]`: it is a workspace of its own wherever it is copied).

const CARGO_TOML: &str = r#"[package]
name = "durations"
version = "0.1.0"
edition = "2021"

[dependencies]

[workspace]
"#;

const RS_LIB: &str = r#"/// Seconds in a duration such as `1h30m`.
pub fn parse_duration(text: &str) -> u64 {
    let (mut total, mut number) = (0, 0);
    for c in text.chars() {
        if let Some(digit) = c.to_digit(10) {
            number = number * 10 + u64::from(digit);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => 0,
        };
        total = number * unit;
        number = 0;
    }
    total
}
"#;
const RS_BUG: &str = "        total = number * unit;\n";
const RS_FIX: &str = "        total += number * unit;\n";

const RS_EXISTING: &str = r#"#[test]
fn single_units() {
    assert_eq!(durations::parse_duration("45s"), 45);
    assert_eq!(durations::parse_duration("2m"), 120);
}
"#;

const RS_REPRODUCTION: &str = r#"#[test]
fn compound_durations_add_up() {
    assert_eq!(durations::parse_duration("1h30m"), 5400);
}
"#;

const RS_ISSUE: &str =
    "parse_duration(\"1h30m\") returns 1800 instead of 5400: the parts of a compound duration are not added up.";

fn cargo_project() -> tempfile::TempDir {
    repository(&[("Cargo.toml", CARGO_TOML), ("src/lib.rs", RS_LIB), ("tests/existing.rs", RS_EXISTING)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cargo_a_failing_assert_eq_in_a_new_test_and_a_fix_are_proven() {
    assert!(RS_LIB.contains(RS_BUG));
    let repo = cargo_project();
    let script = vec![create("tests/repro.rs", RS_REPRODUCTION), replace("src/lib.rs", RS_BUG, RS_FIX), finish()];
    let outcome = prove(repo.path(), RS_ISSUE, script, ProofSettings::default()).await;
    let shown = shown(&outcome);
    assert_eq!(outcome.proof.status, ProofStatus::Proven, "{shown}");
    assert_eq!(outcome.report.status, RunStatus::Submitted, "{shown}");
    assert_eq!(outcome.proof.environment, "cargo test", "{shown}");
    let before = outcome.reproduction_before();
    assert_eq!(before.len(), 1, "{shown}");
    assert_eq!((before[0].id.as_str(), before[0].status.as_str()), ("compound_durations_add_up", "FAILED"), "{shown}");
    assert!(
        matches!(&before[0].failure, Some(Failure::Assertion { message }) if message.contains("assertion")),
        "the original code fails the assert_eq!: {shown}"
    );
    let after = outcome.reproduction_after();
    assert_eq!((after[0].id.as_str(), after[0].status.as_str()), ("compound_durations_add_up", "PASSED"), "{shown}");
    // Every test of the crate is a related test for cargo: the existing one passed on both.
    let regressions = &outcome.proof.regressions;
    assert_eq!(regressions.before.get("single_units").map(String::as_str), Some("PASSED"), "{shown}");
    assert_eq!(regressions.after.get("single_units").map(String::as_str), Some("PASSED"), "{shown}");
    assert!(!regressions.before.contains_key("compound_durations_add_up"), "the reproduction is not a regression");
    assert!(regressions.broken.is_empty(), "{shown}");
    assert!(outcome.proof.fix_patch.contains("src/lib.rs") && !outcome.proof.fix_patch.contains("tests/repro.rs"));
    assert!(outcome.proof.test_patch.contains("tests/repro.rs"));
    assert!(outcome.finishes[0].contains("rigor proved the patch"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cargo_a_fix_that_breaks_an_existing_test_is_unproven_and_names_it() {
    let repo = cargo_project();
    // Compound durations add up now, but seconds count for nothing.
    let breaking = RS_LIB.replace(RS_BUG, RS_FIX).replace("'s' => 1", "'s' => 0");
    let script = vec![create("tests/repro.rs", RS_REPRODUCTION), replace("src/lib.rs", RS_LIB, &breaking), finish()];
    let settings = ProofSettings { max_rejections: 0, ..ProofSettings::default() };
    let outcome = prove(repo.path(), RS_ISSUE, script, settings).await;
    let shown = shown(&outcome);
    assert_eq!(outcome.proof.status, ProofStatus::Unproven, "{shown}");
    assert_eq!(outcome.proof.regressions.broken, ["single_units"], "{shown}");
    assert_eq!(outcome.proof.regressions.before.get("single_units").map(String::as_str), Some("PASSED"));
    assert_eq!(outcome.proof.regressions.after.get("single_units").map(String::as_str), Some("FAILED"));
    assert_eq!(outcome.reproduction_after()[0].status, "PASSED", "the reproduction itself passes: {shown}");
    // No attempt is left: the patch is delivered, unproven, with the evidence.
    assert_eq!(outcome.report.status, RunStatus::Submitted, "{shown}");
    assert!(outcome.finishes[0].contains("delivered unproven") && outcome.finishes[0].contains("single_units"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cargo_a_reproduction_in_a_module_of_a_test_file_is_run_by_its_full_path() {
    let repo = cargo_project();
    let in_module = format!("mod compound {{\n{RS_REPRODUCTION}}}\n");
    let script = vec![create("tests/repro.rs", &in_module), replace("src/lib.rs", RS_BUG, RS_FIX), finish()];
    let outcome = prove(repo.path(), RS_ISSUE, script, ProofSettings { max_rejections: 0, ..Default::default() }).await;
    let shown = shown(&outcome);
    assert_eq!(outcome.proof.status, ProofStatus::Proven, "{shown}");
    let before = outcome.reproduction_before();
    let id = ("compound::compound_durations_add_up", "FAILED");
    assert_eq!((before[0].id.as_str(), before[0].status.as_str()), id, "{shown}");
}

/// Rust's usual style: the reproduction inside the source file's `#[cfg(test)] mod tests`, in the
/// same edit as the fix. The original code is the original file with the new test module.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cargo_a_reproduction_in_the_inline_test_module_of_the_fixed_file_is_proven() {
    let with_module = format!(
        "{RS_LIB}\n#[cfg(test)]\nmod tests {{\n    #[test]\n    fn single() {{\n        assert_eq!(super::parse_duration(\"45s\"), 45);\n    }}\n}}\n"
    );
    let repo = repository(&[("Cargo.toml", CARGO_TOML), ("src/lib.rs", &with_module)]);
    let fixed = with_module.replace(RS_BUG, RS_FIX).replace(
        "    fn single() {",
        "    fn compound() {\n        assert_eq!(super::parse_duration(\"1h30m\"), 5400);\n    }\n\n    #[test]\n    fn single() {",
    );
    let script = vec![replace("src/lib.rs", &with_module, &fixed), finish()];
    let outcome = prove(repo.path(), RS_ISSUE, script, ProofSettings { max_rejections: 0, ..Default::default() }).await;
    let shown = shown(&outcome);
    assert_eq!(outcome.proof.status, ProofStatus::Proven, "{shown}");
    let before = outcome.reproduction_before();
    assert_eq!((before[0].id.as_str(), before[0].status.as_str()), ("tests::compound", "FAILED"), "{shown}");
    assert_eq!(outcome.reproduction_after()[0].status, "PASSED", "{shown}");
    assert_eq!(outcome.proof.regressions.before.get("tests::single").map(String::as_str), Some("PASSED"), "{shown}");
}

// pytest: the project's `.venv` is a symlink (untracked, so carried into the run's worktree as a
// symlink) to an environment with pytest from the rigor cache.

/// The sources of an environment that installs nothing from a project: never asked for.
struct NoSources;

impl Sources for NoSources {
    async fn check_out(&self, _dest: &Path) -> Result<Vec<String>, String> {
        Err("the pytest environment needs no sources".into())
    }
}

/// A cached virtual environment with pytest (the one `rigor-testing`'s tests build: same key and
/// spec, so one entry of `<rigor cache>/test-envs`), or why there is none because PyPI cannot be
/// reached.
async fn pytest_venv() -> Result<PathBuf, String> {
    let cache =
        EnvCache::new(rigor_cache_dir().join("test-envs"), Installer::Uv).with_sandbox(SandboxSettings::default());
    let spec = EnvSpec { pip_packages: vec!["pytest==8.3.3".into()], test_cmd: "pytest".into(), ..Default::default() };
    match cache.get("rigor-testing/pytest", "8.3.3", "any", &spec, &NoSources).await {
        Ok(env) => Ok(env.venv.expect("a Python environment")),
        Err(err) => {
            let reachable = std::process::Command::new("python3")
                .args([
                    "-c",
                    "import urllib.request; urllib.request.urlopen('https://pypi.org/simple/pytest/', timeout=20)",
                ])
                .status()
                .is_ok_and(|s| s.success());
            if reachable {
                panic!("the pytest environment could not be built although PyPI is reachable: {err}");
            }
            Err(format!("PyPI is unreachable and no pytest environment is cached ({err})"))
        }
    }
}

const PY_MODULE: &str = r#"UNITS = {"h": 3600, "m": 60, "s": 1}


def parse_duration(text):
    """Seconds in a duration such as 1h30m."""
    total, number = 0, ""
    for ch in text:
        if ch.isdigit():
            number += ch
        else:
            total = int(number) * UNITS[ch]
            number = ""
    return total
"#;
const PY_BUG: &str = "total = int(number) * UNITS[ch]";
const PY_FIX: &str = "total += int(number) * UNITS[ch]";
const PY_ISSUE: &str = RS_ISSUE;

const PYTEST_EXISTING: &str = r#"from durations import parse_duration


def test_single_units():
    assert parse_duration("45s") == 45
    assert parse_duration("2m") == 120
"#;

const PYTEST_REPRODUCTION: &str = r#"from durations import parse_duration


def test_compound():
    assert parse_duration("1h30m") == 5400
"#;

/// A pytest project whose `.venv` links to the cached environment (ignored by git when
/// `ignored`), or `None` (and why, on stderr) without one.
async fn pytest_project(ignored: bool) -> Option<tempfile::TempDir> {
    let venv = match pytest_venv().await {
        Ok(venv) => venv,
        Err(why) => {
            eprintln!("skipped: {why}");
            return None;
        }
    };
    let mut files = vec![
        ("pytest.ini", "[pytest]\npythonpath = .\n"),
        ("durations.py", PY_MODULE),
        ("tests/test_durations.py", PYTEST_EXISTING),
    ];
    if ignored {
        files.push((".gitignore", ".venv\n"));
    }
    let repo = repository(&files);
    std::os::unix::fs::symlink(&venv, repo.path().join(".venv")).unwrap();
    Some(repo)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pytest_a_test_function_in_a_new_file_and_a_fix_are_proven() {
    let Some(repo) = pytest_project(false).await else { return };
    let script =
        vec![create("tests/test_compound.py", PYTEST_REPRODUCTION), replace("durations.py", PY_BUG, PY_FIX), finish()];
    let outcome = prove(repo.path(), PY_ISSUE, script, ProofSettings::default()).await;
    let shown = shown(&outcome);
    // The interpreter is the project's `.venv` (untracked, so also carried into the worktree).
    assert!(
        outcome.proof.environment.starts_with("pytest with ")
            && outcome.proof.environment.ends_with(".venv/bin/python"),
        "{shown}"
    );
    assert_eq!(outcome.proof.status, ProofStatus::Proven, "{shown}");
    let before = outcome.reproduction_before();
    assert_eq!(before.len(), 1, "{shown}");
    let id = ("tests/test_compound.py::test_compound", "FAILED");
    assert_eq!((before[0].id.as_str(), before[0].status.as_str()), id, "{shown}");
    assert!(matches!(before[0].failure, Some(Failure::Assertion { .. })), "{shown}");
    assert_eq!(outcome.reproduction_after()[0].status, "PASSED", "{shown}");
    let regressions = &outcome.proof.regressions;
    assert_eq!(regressions.files, ["tests/test_durations.py"], "{shown}");
    let id = "tests/test_durations.py::test_single_units";
    assert_eq!(regressions.before.get(id).map(String::as_str), Some("PASSED"), "{shown}");
    assert_eq!(regressions.after.get(id).map(String::as_str), Some("PASSED"), "{shown}");
    assert!(regressions.broken.is_empty(), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pytest_tests_broken_by_a_fixture_or_an_import_do_not_reproduce_and_the_model_is_told_why() {
    let Some(repo) = pytest_project(false).await else { return };
    // A fixture that does not exist, and a name the module does not have.
    let broken = r#"from durations import parse_duration


def test_compound(durations_table):
    assert parse_duration("1h30m") == durations_table["1h30m"]


def test_compound_import():
    from durations import parse_compound

    assert parse_compound("1h30m") == 5400
"#;
    // A module that does not import: pytest cannot collect it.
    let uncollectable = r#"from durations import parse_compound


def test_compound():
    assert parse_compound("1h30m") == 5400
"#;
    let script = vec![
        replace("durations.py", PY_BUG, PY_FIX),
        create("tests/test_broken.py", broken),
        finish(),
        bash("rm tests/test_broken.py"),
        create("tests/test_uncollectable.py", uncollectable),
        finish(),
        // A real reproduction at last.
        bash("rm tests/test_uncollectable.py"),
        create("tests/test_compound.py", PYTEST_REPRODUCTION),
        finish(),
    ];
    let outcome = prove(repo.path(), PY_ISSUE, script, ProofSettings::default()).await;
    let shown = shown(&outcome);
    assert_eq!(outcome.finishes.len(), 3, "{shown}");
    let (fixture, collection) = (&outcome.finishes[0], &outcome.finishes[1]);
    assert!(fixture.starts_with("not finished: rigor could not prove the patch"), "{shown}");
    let fixture_line = fixture.lines().find(|l| l.starts_with("- tests/test_broken.py::test_compound:"));
    assert!(
        fixture_line.is_some_and(|l| l.contains("could not run") && l.contains("fixture 'durations_table' not found")),
        "a fixture error is a broken test, and the reason names the fixture: {shown}"
    );
    let import_line = fixture.lines().find(|l| l.starts_with("- tests/test_broken.py::test_compound_import:"));
    assert!(
        import_line.is_some_and(|l| l.contains("ImportError") && l.contains("the test itself is broken")),
        "an ImportError in the test is a broken test: {shown}"
    );
    let collection_line = collection.lines().find(|l| l.starts_with("- tests/test_uncollectable.py::test_compound:"));
    assert!(
        collection_line.is_some_and(|l| l.contains("could not run") || l.contains("not collected")),
        "a module that does not import is not a reproduction: {shown}"
    );
    // Told why, the model wrote a real reproduction.
    assert_eq!(outcome.proof.status, ProofStatus::Proven, "{shown}");
    assert_eq!(outcome.proof.rejections, 2, "{shown}");
    assert_eq!(outcome.reproduction_before()[0].id, "tests/test_compound.py::test_compound", "{shown}");
}

/// pytest cuts the message of its short summary to the terminal's width, and leaves it out when
/// the test's id is long: how the test failed must still be read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pytest_the_failure_of_a_test_with_a_long_id_is_still_an_assertion() {
    let Some(repo) = pytest_project(false).await else { return };
    let name = "test_compound_durations_of_hours_and_minutes_add_up_to_the_total";
    let test = PYTEST_REPRODUCTION.replace("test_compound", name);
    let path = "tests/integration/test_parse_durations.py";
    let script = vec![create(path, &test), replace("durations.py", PY_BUG, PY_FIX), finish()];
    let outcome = prove(repo.path(), PY_ISSUE, script, ProofSettings { max_rejections: 0, ..Default::default() }).await;
    let shown = shown(&outcome);
    assert_eq!(outcome.proof.status, ProofStatus::Proven, "{shown}");
    let before = outcome.reproduction_before();
    assert_eq!(before[0].id, format!("{path}::{name}"), "{shown}");
    assert!(matches!(&before[0].failure, Some(Failure::Assertion { message }) if message.contains("1800")), "{shown}");
}

/// Virtual environments are usually ignored by git (uv and `python -m venv` write a `.gitignore`
/// of `*` into them), so they are not carried into the run's worktree; the proof must still run
/// with the user's environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pytest_an_in_repository_venv_that_git_ignores_is_the_interpreter_of_the_proof() {
    let Some(repo) = pytest_project(true).await else { return };
    let script =
        vec![create("tests/test_compound.py", PYTEST_REPRODUCTION), replace("durations.py", PY_BUG, PY_FIX), finish()];
    let outcome = prove(repo.path(), PY_ISSUE, script, ProofSettings { max_rejections: 0, ..Default::default() }).await;
    let shown = shown(&outcome);
    assert!(outcome.proof.environment.starts_with("pytest with "), "{shown}");
    assert_eq!(outcome.proof.status, ProofStatus::Proven, "{shown}");
}

// unittest: the interpreter is `python3` on PATH.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unittest_a_test_that_already_passes_on_the_original_code_is_not_a_reproduction() {
    let existing = r#"import unittest

from durations import parse_duration


class SingleUnitsTest(unittest.TestCase):
    def test_seconds(self):
        self.assertEqual(parse_duration("45s"), 45)
"#;
    let repo =
        repository(&[("durations.py", PY_MODULE), ("tests/__init__.py", ""), ("tests/test_durations.py", existing)]);
    // It checks what already works, not the compound durations of the issue.
    let passing = r#"import unittest

from durations import parse_duration


class MinutesTest(unittest.TestCase):
    def test_minutes(self):
        self.assertEqual(parse_duration("2m"), 120)
"#;
    let script =
        vec![create("tests/test_minutes.py", passing), replace("durations.py", PY_BUG, PY_FIX), finish(), abstain()];
    let outcome = prove(repo.path(), PY_ISSUE, script, ProofSettings::default()).await;
    let shown = shown(&outcome);
    assert!(outcome.proof.environment.starts_with("unittest"), "{shown}");
    assert_eq!(outcome.proof.status, ProofStatus::Unproven, "{shown}");
    assert_eq!(outcome.proof.reason, "no test reproduces the issue", "{shown}");
    let before = outcome.reproduction_before();
    assert_eq!(
        (before[0].id.as_str(), before[0].status.as_str()),
        ("tests.test_minutes.MinutesTest.test_minutes", "PASSED"),
        "{shown}"
    );
    assert!(
        outcome.finishes[0].contains("- tests.test_minutes.MinutesTest.test_minutes: it passes on the original code"),
        "{shown}"
    );
    assert_eq!(outcome.report.status, RunStatus::Abstained, "the model gave up after being told: {shown}");
}

// A project whose tests need its dependencies, with no virtual environment anywhere: the proof
// builds one (uv, from PyPI, into `<rigor cache>/envs`, once) from the dependency files.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pytest_a_project_without_an_environment_is_proven_in_one_built_from_its_dependencies() {
    if std::env::var_os("VIRTUAL_ENV").is_some_and(|venv| Path::new(&venv).join("bin/python").is_file()) {
        eprintln!("skipped: a virtual environment is active, so the proof would use it");
        return;
    }
    let pyproject = "[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n\n\
                     [project]\nname = \"durations\"\nversion = \"0.1.0\"\ndependencies = [\"inflection==0.5.1\"]\n";
    // The module needs `inflection`, which the machine's interpreters do not have.
    let module = format!("import inflection\n\n{}", PY_MODULE.replace("in text:", "in inflection.underscore(text):"));
    assert!(module.contains("inflection.underscore"));
    let repo = repository(&[
        ("pyproject.toml", pyproject),
        ("durations.py", &module),
        ("tests/test_durations.py", PYTEST_EXISTING),
    ]);
    let script =
        vec![create("tests/test_compound.py", PYTEST_REPRODUCTION), replace("durations.py", PY_BUG, PY_FIX), finish()];
    let outcome = prove(repo.path(), PY_ISSUE, script, ProofSettings { max_rejections: 0, ..Default::default() }).await;
    let shown = shown(&outcome);
    let built = rigor_cache_dir().join("envs");
    if !outcome.proof.environment.contains(&built.display().to_string()) {
        let reachable = std::process::Command::new("python3")
            .args(["-c", "import urllib.request; urllib.request.urlopen('https://pypi.org/simple/six/', timeout=20)"])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !reachable {
            eprintln!("skipped: PyPI is unreachable and the project's environment is not cached\n{shown}");
            return;
        }
    }
    let environment = &outcome.proof.environment;
    assert!(environment.starts_with(&format!("pytest with {}/project__", built.display())), "{shown}");
    assert!(environment.ends_with("/venv/bin/python"), "{shown}");
    // The tests imported the exported code, not the copy installed in the environment (the
    // original code): the reproduction failed before the fix and passes with it.
    assert_eq!(outcome.proof.status, ProofStatus::Proven, "{shown}");
    let before = outcome.reproduction_before();
    assert!(matches!(before[0].failure, Some(Failure::Assertion { .. })), "{shown}");
    assert_eq!(outcome.reproduction_after()[0].status, "PASSED", "{shown}");
    let id = "tests/test_durations.py::test_single_units";
    assert_eq!(outcome.proof.regressions.before.get(id).map(String::as_str), Some("PASSED"), "{shown}");
}

/// A project whose dependencies cannot be installed (a requirements file uv cannot read, so no
/// network is involved): the proof says so in its environment and goes on with `python3`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_environment_that_cannot_be_built_is_named_in_the_proof() {
    let repro = "import unittest\n\nfrom durations import parse_duration\n\n\nclass T(unittest.TestCase):\n    def test_compound(self):\n        self.assertEqual(parse_duration(\"1h30m\"), 5400)\n";
    let repo = repository(&[
        ("durations.py", PY_MODULE),
        ("requirements.txt", "this is not a requirement !!\n"),
        (
            "test_units.py",
            "import unittest\n\nfrom durations import parse_duration\n\n\nclass U(unittest.TestCase):\n    def test_hours(self):\n        self.assertEqual(parse_duration(\"2h\"), 7200)\n",
        ),
    ]);
    let script = vec![create("test_repro.py", repro), replace("durations.py", PY_BUG, PY_FIX), finish()];
    let outcome = prove(repo.path(), PY_ISSUE, script, ProofSettings { max_rejections: 0, ..Default::default() }).await;
    let shown = shown(&outcome);
    assert!(outcome.proof.environment.contains("the project environment could not be built"), "{shown}");
    assert_eq!(outcome.proof.status, ProofStatus::Proven, "the stdlib tests still run with python3: {shown}");
}
