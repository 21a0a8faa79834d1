//! End-to-end evaluations of fixture repositories built here (git init, a bug, a fix, a test
//! patch): pytest, unittest, Django's runner and cargo. The test runners are real (pytest and
//! Django from PyPI in a cached environment under ~/.cache/rigor/test-envs; offline once cached),
//! and their logs feed the parser assertions.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use rigor_eval::agent::{AgentSpec, WithoutProof};
use rigor_eval::dataset::{Instance, Prediction};
use rigor_eval::grading::Grading;
use rigor_eval::harness::{EvalScript, Evaluation, Mode, NoProgress, Task};
use rigor_eval::record::{InstanceResult, InstanceStatus};
use rigor_eval::spec::SpecRegistry;
use rigor_test_support::server::{Flavor, Reply, ScriptedServer, Step};
use rigor_testing::env::{EnvCache, Installer, rigor_cache_dir};
use rigor_testing::parsers::{LogParser, TestStatus};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=fixture", "-c", "user.email=fixture@example.com", "-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

/// A fixture repository `repos/<owner>__<name>`: the base commit, then the fix and the new tests
/// turned into a gold patch and a test patch.
struct FixtureRepo {
    base: String,
    gold: String,
    test_patch: String,
}

fn fixture_repo(
    repos: &Path,
    repo: &str,
    base: &[(&str, &str)],
    fix: &[(&str, &str)],
    tests: &[(&str, &str)],
) -> FixtureRepo {
    let dir = repos.join(repo.replace('/', "__"));
    std::fs::create_dir_all(&dir).unwrap();
    git(&dir, &["init", "-q", "-b", "main"]);
    write_files(&dir, base);
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "base"]);
    let base_commit = git(&dir, &["rev-parse", "HEAD"]).trim().to_string();
    let diff_of = |files: &[(&str, &str)]| {
        write_files(&dir, files);
        git(&dir, &["add", "-A"]);
        let diff = git(&dir, &["diff", "--cached", "HEAD"]);
        git(&dir, &["reset", "-q", "--hard", "HEAD"]);
        diff
    };
    FixtureRepo { base: base_commit, gold: diff_of(fix), test_patch: diff_of(tests) }
}

/// The diff from the checked-out base of a fixture repository to `files`.
fn patch_for(repos: &Path, repo: &str, files: &[(&str, &str)]) -> String {
    let dir = repos.join(repo.replace('/', "__"));
    write_files(&dir, files);
    git(&dir, &["add", "-A"]);
    let diff = git(&dir, &["diff", "--cached", "HEAD"]);
    git(&dir, &["reset", "-q", "--hard", "HEAD"]);
    diff
}

fn instance(repo: &str, id: &str, fx: &FixtureRepo, f2p: &[&str], p2p: &[&str]) -> Instance {
    Instance {
        instance_id: id.into(),
        repo: repo.into(),
        base_commit: fx.base.clone(),
        patch: fx.gold.clone(),
        test_patch: fx.test_patch.clone(),
        problem_statement: "add() subtracts instead of adding".into(),
        hints_text: String::new(),
        version: "1.0".into(),
        fail_to_pass: f2p.iter().map(|s| s.to_string()).collect(),
        pass_to_pass: p2p.iter().map(|s| s.to_string()).collect(),
        environment_setup_commit: fx.base.clone(),
        created_at: String::new(),
        eval_script: None,
        log_parser: None,
        eval_type: None,
        task_value_usd: None,
        gold_files: Vec::new(),
        gold_modules: Vec::new(),
        gold_functions: Vec::new(),
    }
}

const SPECS: &str = r#"
repo = "fixture/calc"
[defaults]
pip_packages = ["pytest==8.3.3", "coverage==7.6.1"]
test_cmd = "pytest -rA -p no:cacheprovider"
log_parser = "pytest"
"#;

const UNITTEST_SPEC: &str = r#"
repo = "fixture/units"
[defaults]
test_cmd = "python -m unittest -v"
log_parser = "django"
"#;

const DJANGO_SPEC: &str = r#"
repo = "fixture/djangoish"
[defaults]
pip_packages = ["Django==4.2.16"]
test_cmd = "python tests/runtests.py --verbosity 2"
log_parser = "django"
directives = "django_modules"
"#;

const CARGO_SPEC: &str = r#"
repo = "fixture/crate"
[defaults]
kind = "cargo"
test_cmd = "cargo test --offline --no-fail-fast"
log_parser = "cargo"
directives = "none"
env = { CARGO_TARGET_DIR = "target", CARGO_TERM_COLOR = "never" }
"#;

struct World {
    _root: tempfile::TempDir,
    repos: PathBuf,
    output: PathBuf,
    scratch: PathBuf,
}

impl World {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let repos = root.path().join("repos");
        let output = root.path().join("out");
        let scratch = root.path().join("scratch");
        std::fs::create_dir_all(&repos).unwrap();
        World { repos, output, scratch, _root: root }
    }

    fn evaluation(&self, run_id: &str) -> Evaluation {
        let mut specs = SpecRegistry::default();
        for text in [SPECS, UNITTEST_SPEC, DJANGO_SPEC, CARGO_SPEC] {
            specs.add("fixture.toml", text).unwrap();
        }
        Evaluation {
            run_id: run_id.into(),
            output: self.output.clone(),
            repos: self.repos.clone(),
            scratch: self.scratch.join(run_id),
            specs: Arc::new(specs),
            // Environment builds are confined as by default too.
            envs: EnvCache::new(rigor_cache_dir().join("test-envs"), Installer::Uv)
                .with_sandbox(rigor_sandbox::SandboxSettings::default()),
            workers: 2,
            timeout: Duration::from_secs(120),
            grading: Grading::V4,
            mode: Mode::Patch,
            agent: None,
            keep_worktrees: false,
            // Test runs are sandboxed as by default (the worktree writable, no network).
            sandbox: rigor_sandbox::SandboxSettings::default(),
            cancel: Arc::new(AtomicBool::new(false)),
            eval_script: EvalScript::Spec,
            heartbeat: rigor_eval::harness::HEARTBEAT,
        }
    }
}

const CALC_BASE: &[(&str, &str)] = &[
    ("calc.py", "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"),
    (
        "tests/test_calc.py",
        "import pytest\nfrom calc import sub\n\n\ndef test_sub():\n    assert sub(3, 1) == 2\n\n\n@pytest.mark.parametrize(\"text\", [\"a b\", \"x[1]\"])\ndef test_param(text):\n    assert text\n",
    ),
];
const CALC_FIX: &[(&str, &str)] =
    &[("calc.py", "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n")];
const CALC_TESTS: &[(&str, &str)] = &[(
    "tests/test_calc.py",
    "import pytest\nfrom calc import add, sub\n\n\ndef test_sub():\n    assert sub(3, 1) == 2\n\n\n@pytest.mark.parametrize(\"text\", [\"a b\", \"x[1]\"])\ndef test_param(text):\n    assert text\n\n\ndef test_add():\n    assert add(2, 2) == 4\n",
)];

/// The official parser splits on whitespace, so the id with a space is cut at it — as in the
/// published datasets.
const CALC_P2P: &[&str] =
    &["tests/test_calc.py::test_sub", "tests/test_calc.py::test_param[a", "tests/test_calc.py::test_param[x[1]]"];

fn calc(world: &World) -> Instance {
    let fx = fixture_repo(&world.repos, "fixture/calc", CALC_BASE, CALC_FIX, CALC_TESTS);
    instance("fixture/calc", "fixture__calc-1", &fx, &["tests/test_calc.py::test_add"], CALC_P2P)
}

fn task(instance: &Instance, model: &str, patch: Option<&str>) -> Task {
    Task {
        instance: instance.clone(),
        prediction: Some(Prediction {
            instance_id: instance.instance_id.clone(),
            model_name_or_path: model.into(),
            model_patch: patch.map(str::to_owned),
        }),
        model: model.into(),
        invalid: None,
    }
}

fn renamed(instance: &Instance, id: &str) -> Instance {
    Instance { instance_id: id.into(), ..instance.clone() }
}

async fn evaluate(eval: &Evaluation, tasks: Vec<Task>) -> Vec<InstanceResult> {
    eval.run(tasks, Arc::new(NoProgress)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pytest_gold_empty_broken_and_regressing_patches() {
    let world = World::new();
    let base = calc(&world);
    // fixes add() but breaks sub(): FAIL_TO_PASS passes, PASS_TO_PASS fails
    let regressing = patch_for(
        &world.repos,
        "fixture/calc",
        &[("calc.py", "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a * b\n")],
    );
    let eval = world.evaluation("r1");
    let tasks = vec![
        task(&renamed(&base, "calc-gold"), "m", Some(&base.patch)),
        task(&renamed(&base, "calc-empty"), "m", Some("")),
        task(&renamed(&base, "calc-none"), "m", None),
        task(
            &renamed(&base, "calc-garbage"),
            "m",
            Some("diff --git a/nope.py b/nope.py\n--- a/nope.py\n+++ b/nope.py\n@@ -1 +1 @@\n-x\n+y\n"),
        ),
        task(&renamed(&base, "calc-regress"), "m", Some(&regressing)),
    ];
    let results = evaluate(&eval, tasks).await;
    let status = |id: &str| results.iter().find(|r| r.instance_id == id).map(|r| r.status);
    let gold = results.iter().find(|r| r.instance_id == "calc-gold").unwrap();
    assert_eq!(gold.status, InstanceStatus::Resolved, "{gold:#?}");
    assert_eq!(status("calc-empty"), Some(InstanceStatus::EmptyPatch));
    assert_eq!(status("calc-none"), Some(InstanceStatus::EmptyPatch));
    assert_eq!(status("calc-garbage"), Some(InstanceStatus::PatchFailed));
    let regress = results.iter().find(|r| r.instance_id == "calc-regress").unwrap();
    assert_eq!(regress.status, InstanceStatus::Unresolved, "{regress:#?}");
    let ts = regress.tests_status.as_ref().unwrap();
    assert_eq!(ts.fail_to_pass.failure.len(), 0);
    assert_eq!(ts.pass_to_pass.failure, vec!["tests/test_calc.py::test_sub"]);

    // The official layout and files.
    let dir = eval.instance_dir("m", "calc-gold");
    for f in ["report.json", "test_output.txt", "patch.diff", "eval.sh", "run_instance.log", "rigor.json"] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["calc-gold"]["resolved"], true);
    assert_eq!(report["calc-gold"]["patch_successfully_applied"], true);
    // The real pytest log, read by the parser: parametrised ids with a space and brackets.
    let log = std::fs::read_to_string(dir.join("test_output.txt")).unwrap();
    let map = LogParser::Pytest.parse(&log);
    assert_eq!(map.get("tests/test_calc.py::test_param[x[1]]"), Some(&TestStatus::Passed), "{log}");
    assert_eq!(map.get("tests/test_calc.py::test_param[a"), Some(&TestStatus::Passed));
    let v2 = LogParser::PytestV2.parse(&log);
    assert_eq!(v2.get("tests/test_calc.py::test_param[a b]"), Some(&TestStatus::Passed), "v2 keeps the whole id");
    // Worktrees are gone.
    assert!(std::fs::read_dir(&eval.scratch).map(|d| d.count() == 0).unwrap_or(true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_skips_finished_instances_and_matches_a_full_run() {
    let world = World::new();
    let base = calc(&world);
    let tasks: Vec<Task> =
        (0..4).map(|i| task(&renamed(&base, &format!("calc-{i}")), "m", Some(&base.patch))).collect();

    let full = evaluate(&world.evaluation("full"), tasks.clone()).await;

    // A run killed after some instances: the first two finished, the third left a partial record.
    let partial = world.evaluation("resumed");
    let first = evaluate(&partial, tasks[..2].to_vec()).await;
    assert_eq!(first.len(), 2);
    let half_done = partial.instance_dir("m", "calc-2");
    std::fs::create_dir_all(&half_done).unwrap();
    std::fs::write(half_done.join("test_output.txt"), "half a log").unwrap();
    let before: Vec<String> = ["calc-0", "calc-1"]
        .iter()
        .map(|id| std::fs::read_to_string(partial.instance_dir("m", id).join("rigor.json")).unwrap())
        .collect();

    let resumed = evaluate(&partial, tasks.clone()).await;
    let after: Vec<String> = ["calc-0", "calc-1"]
        .iter()
        .map(|id| std::fs::read_to_string(partial.instance_dir("m", id).join("rigor.json")).unwrap())
        .collect();
    assert_eq!(before, after, "finished instances are not re-run");
    let verdicts = |rs: &[InstanceResult]| {
        rs.iter().map(|r| (r.instance_id.clone(), r.status, r.tests_status.clone())).collect::<Vec<_>>()
    };
    assert_eq!(verdicts(&full), verdicts(&resumed));
    assert_ne!(std::fs::read_to_string(half_done.join("test_output.txt")).unwrap(), "half a log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swt_mode_grades_generated_tests_with_change_coverage() {
    let world = World::new();
    let base = calc(&world);
    let mut eval = world.evaluation("swt");
    eval.mode = Mode::Swt;
    // A good generated test (the dataset's own test patch) and one that never fails.
    let weak = base.test_patch.replace("assert add(2, 2) == 4", "assert add(0, 0) == 0");
    let results = evaluate(
        &eval,
        vec![
            task(&renamed(&base, "swt-good"), "gen", Some(&base.test_patch)),
            task(&renamed(&base, "swt-weak"), "gen", Some(&weak)),
        ],
    )
    .await;
    let good = results.iter().find(|r| r.instance_id == "swt-good").unwrap();
    let swt = good.swt.as_ref().unwrap();
    assert!(swt.applied && swt.success, "{good:#?}");
    assert_eq!(swt.fail_to_pass, vec!["tests/test_calc.py::test_add"]);
    assert_eq!(swt.change_coverage, Some(1.0), "{good:#?}");
    let weak = results.iter().find(|r| r.instance_id == "swt-weak").unwrap();
    assert_eq!(weak.status, InstanceStatus::Unresolved);
    assert!(weak.swt.as_ref().unwrap().fail_to_pass.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_agent_command_is_graded_on_its_diff() {
    let world = World::new();
    let base = calc(&world);
    let mut eval = world.evaluation("cmd");
    eval.agent = Some(AgentSpec::Command {
        template: "grep -q subtracts {issue_file} && sed -i 's/return a - b/return a + b/;4,$s/return a + b/return a - b/' calc.py".into(),
        timeout: Duration::from_secs(60),
    });
    let t = Task { instance: base.clone(), prediction: None, model: "sed-agent".into(), invalid: None };
    let results = evaluate(&eval, vec![t]).await;
    assert_eq!(results[0].status, InstanceStatus::Resolved, "{:#?}", results[0]);
    let agent = results[0].agent.as_ref().unwrap();
    assert!(agent.patch.contains("+    return a + b"), "{}", agent.patch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rigor_agent_mode_runs_the_loop_against_a_scripted_model() {
    let world = World::new();
    let base = calc(&world);
    let script = vec![
        Step::Reply(Reply::call(
            "edit",
            &serde_json::json!({"command": "str_replace", "path": "calc.py", "old_str": "def add(a, b):\n    return a - b", "new_str": "def add(a, b):\n    return a + b"}).to_string(),
        )),
        Step::Reply(Reply::call("finish", &serde_json::json!({"summary": "add adds"}).to_string()).with_tokens(500, 30)),
    ];
    let server = ScriptedServer::start(Flavor::OpenAi, script).await;
    let provider = rigor_llm::build_provider(rigor_llm::ProviderConfig {
        name: "scripted".into(),
        kind: rigor_llm::ProviderKind::OpenAi,
        base_url: server.base_url(),
        api_key: None,
        model: "test-model".into(),
        context_window: 32_000,
        pricing: None,
        text_actions: false,
        retry: Default::default(),
        request_timeout: Duration::from_secs(10),
    })
    .unwrap();
    let mut eval = world.evaluation("agent");
    eval.agent = Some(AgentSpec::Rigor {
        provider: Arc::from(provider),
        settings: Box::default(),
        interrupt: Default::default(),
        wiring: Arc::new(WithoutProof(Vec::new())),
    });
    let results =
        evaluate(&eval, vec![Task { instance: base.clone(), prediction: None, model: "rigor".into(), invalid: None }])
            .await;
    let r = &results[0];
    assert_eq!(r.status, InstanceStatus::Resolved, "{r:#?}");
    let agent = r.agent.as_ref().unwrap();
    assert_eq!(agent.status, "submitted");
    assert_eq!(agent.steps, 2);
    assert_eq!(agent.proof_status, None, "no prover, no proof");
    assert!(!eval.instance_dir("rigor", &base.instance_id).join("proof.json").exists());
    assert!(agent.input_tokens >= 600, "{agent:?}");
    assert!(eval.instance_dir("rigor", &base.instance_id).join("trajectory.jsonl").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unittest_runner_through_the_django_style_parser() {
    let world = World::new();
    let fx = fixture_repo(
        &world.repos,
        "fixture/units",
        &[
            ("calc.py", "def add(a, b):\n    return a - b\n"),
            ("tests/__init__.py", ""),
            (
                "tests/test_calc.py",
                "import unittest\n\n\nclass T(unittest.TestCase):\n    def test_zero(self):\n        from calc import add\n        self.assertEqual(add(0, 0), 0)\n",
            ),
        ],
        &[("calc.py", "def add(a, b):\n    return a + b\n")],
        &[(
            "tests/test_calc.py",
            "import unittest\n\n\nclass T(unittest.TestCase):\n    def test_zero(self):\n        from calc import add\n        self.assertEqual(add(0, 0), 0)\n\n    def test_add(self):\n        from calc import add\n        self.assertEqual(add(2, 2), 4)\n",
        )],
    );
    let inst = instance(
        "fixture/units",
        "units-1",
        &fx,
        &["test_add (tests.test_calc.T.test_add)"],
        &["test_zero (tests.test_calc.T.test_zero)"],
    );
    let eval = world.evaluation("units");
    let results = evaluate(
        &eval,
        vec![
            task(&inst, "m", Some(&inst.patch)),
            task(
                &renamed(&inst, "units-empty-fix"),
                "m",
                Some(&inst.test_patch.replace("tests/test_calc.py", "tests/test_other.py")),
            ),
        ],
    )
    .await;
    let gold = results.iter().find(|r| r.instance_id == "units-1").unwrap();
    assert_eq!(
        gold.status,
        InstanceStatus::Resolved,
        "{gold:#?}\n{}",
        std::fs::read_to_string(eval.instance_dir("m", "units-1").join("test_output.txt")).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn django_runner_with_multiline_output() {
    let world = World::new();
    let runtests = "import os, sys\nsys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))\nimport django\nfrom django.conf import settings\nsettings.configure(DATABASES={'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': ':memory:'}}, INSTALLED_APPS=[], USE_TZ=True)\ndjango.setup()\nfrom django.test.utils import get_runner\nlabels = [a for a in sys.argv[1:] if not a.startswith('--')]\nsys.exit(bool(get_runner(settings)(verbosity=2).run_tests(labels)))\n";
    let base_test = "import sys\nfrom django.test import SimpleTestCase\nfrom slug import slugify\n\n\nclass SlugTests(SimpleTestCase):\n    def test_plain(self):\n        self.assertEqual(slugify('ab'), 'ab')\n\n    def test_noisy(self):\n        sys.stderr.write('some noise\\nover two lines\\n')\n        self.assertTrue(True)\n";
    let new_test =
        format!("{base_test}\n    def test_spaces(self):\n        self.assertEqual(slugify('a b'), 'a-b')\n");
    let fx = fixture_repo(
        &world.repos,
        "fixture/djangoish",
        &[
            ("slug.py", "def slugify(s):\n    return s\n"),
            ("tests/runtests.py", runtests),
            ("tests/slugs/__init__.py", ""),
            ("tests/slugs/test_slug.py", base_test),
        ],
        &[("slug.py", "def slugify(s):\n    return s.replace(' ', '-')\n")],
        &[("tests/slugs/test_slug.py", &new_test)],
    );
    let inst = instance(
        "fixture/djangoish",
        "djangoish-1",
        &fx,
        &["test_spaces (slugs.test_slug.SlugTests.test_spaces)"],
        &["test_plain (slugs.test_slug.SlugTests.test_plain)", "test_noisy (slugs.test_slug.SlugTests.test_noisy)"],
    );
    let eval = world.evaluation("django");
    let results = evaluate(&eval, vec![task(&inst, "m", Some(&inst.patch)), task(&renamed(&inst, "djangoish-unfixed"), "m", Some("diff --git a/README b/README\nnew file mode 100644\n--- /dev/null\n+++ b/README\n@@ -0,0 +1 @@\n+x\n"))]).await;
    let log = std::fs::read_to_string(eval.instance_dir("m", "djangoish-1").join("test_output.txt")).unwrap();
    let gold = results.iter().find(|r| r.instance_id == "djangoish-1").unwrap();
    assert_eq!(gold.status, InstanceStatus::Resolved, "{gold:#?}\n{log}");
    assert!(
        log.contains("test_noisy (slugs.test_slug.SlugTests.test_noisy) ... some noise"),
        "the noisy test splits its line: {log}"
    );
    let unfixed = results.iter().find(|r| r.instance_id == "djangoish-unfixed").unwrap();
    assert_eq!(unfixed.status, InstanceStatus::Unresolved);
    let unfixed_log =
        std::fs::read_to_string(eval.instance_dir("m", "djangoish-unfixed").join("test_output.txt")).unwrap();
    let map = LogParser::Django.parse(&unfixed_log);
    assert_eq!(
        map.get("test_spaces (slugs.test_slug.SlugTests.test_spaces)"),
        Some(&TestStatus::Failed),
        "{unfixed_log}"
    );
    assert_eq!(map.get("test_noisy (slugs.test_slug.SlugTests.test_noisy)"), Some(&TestStatus::Passed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cargo_test_fixture() {
    let world = World::new();
    let manifest = "[package]\nname = \"fixture\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n";
    let lib = "pub fn add(a: i32, b: i32) -> i32 {\n    a - b\n}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn zero() {\n        assert_eq!(super::add(0, 0), 0);\n    }\n}\n";
    let fx = fixture_repo(
        &world.repos,
        "fixture/crate",
        &[("Cargo.toml", manifest), ("src/lib.rs", lib), (".gitignore", "target\n")],
        &[("src/lib.rs", &lib.replace("a - b", "a + b"))],
        &[("tests/add.rs", "#[test]\nfn adds() {\n    assert_eq!(fixture::add(2, 2), 4);\n}\n")],
    );
    let inst = instance("fixture/crate", "crate-1", &fx, &["adds"], &["tests::zero"]);
    let eval = world.evaluation("cargo");
    let results = evaluate(&eval, vec![task(&inst, "m", Some(&inst.patch))]).await;
    let log = std::fs::read_to_string(eval.instance_dir("m", "crate-1").join("test_output.txt")).unwrap_or_default();
    assert_eq!(results[0].status, InstanceStatus::Resolved, "{:#?}\n{log}", results[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prediction_cannot_write_outside_its_worktree_while_its_tests_run() {
    let world = World::new();
    let base = calc(&world);
    // A fix that also, when the tests import it, tries to write next to the repositories.
    let target = world.repos.parent().unwrap().join("escaped.txt");
    let code = format!(
        "try:\n    open({:?}, 'w').write('out')\nexcept OSError:\n    pass\n\n\ndef add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n",
        target.display().to_string()
    );
    let escaping = patch_for(&world.repos, "fixture/calc", &[("calc.py", &code)]);
    let confined = world.evaluation("sandboxed");
    let results = evaluate(&confined, vec![task(&renamed(&base, "calc-escape"), "m", Some(&escaping))]).await;
    assert_eq!(results[0].status, InstanceStatus::Resolved, "the tests still run and pass: {:?}", results[0]);
    assert!(!target.exists(), "the write outside the worktree reached the host");
    // The same run unconfined does write there: the check above can fail.
    let mut unconfined = world.evaluation("unconfined");
    unconfined.sandbox.mode = rigor_sandbox::SandboxMode::Off;
    let results = evaluate(&unconfined, vec![task(&renamed(&base, "calc-escape"), "m", Some(&escaping))]).await;
    assert_eq!(results[0].status, InstanceStatus::Resolved, "{:?}", results[0]);
    assert!(target.exists(), "unconfined, the write lands");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_environment_build_runs_the_repository_code_confined() {
    let world = World::new();
    let base = calc(&world);
    // The build runs the repository's commands (here a pre_install step; setup.py alike): one that
    // tries to write next to the repositories, and goes on.
    let target = world.repos.parent().unwrap().join("escaped-from-build.txt");
    let spec = format!(
        "repo = \"fixture/calc\"\n[defaults]\npip_packages = [\"pytest==8.3.3\"]\ntest_cmd = \"pytest -rA -p no:cacheprovider\"\n\
         log_parser = \"pytest\"\npre_install = [\"echo build > {} || true\"]\n",
        target.display()
    );
    let build = |root: &str, confined: bool| {
        let mut eval = world.evaluation(root);
        let mut specs = SpecRegistry::default();
        specs.add("fixture.toml", &spec).unwrap();
        eval.specs = Arc::new(specs);
        let cache = EnvCache::new(world.scratch.join(format!("envs-{root}")), Installer::Uv);
        eval.envs = if confined { cache.with_sandbox(rigor_sandbox::SandboxSettings::default()) } else { cache };
        eval
    };
    let gold = base.patch.clone();
    let results = evaluate(&build("confined", true), vec![task(&base, "gold", Some(&gold))]).await;
    assert_eq!(results[0].status, InstanceStatus::Resolved, "the environment builds and works: {:?}", results[0]);
    assert!(!target.exists(), "the build's write outside its cache entry reached the host");
    // Unconfined, the same build does write there: the check above can fail.
    let results = evaluate(&build("unconfined", false), vec![task(&base, "gold", Some(&gold))]).await;
    assert_eq!(results[0].status, InstanceStatus::Resolved, "{:?}", results[0]);
    assert!(target.exists(), "unconfined, the write lands");
}

/// A package whose instance commit is newer than its environment commit: it has gained a
/// dependency (`six`) and a console script since. Only an install of the instance's own code
/// gives its tests both, as the official eval script's per-instance install does.
const PKG_SPEC: &str = r#"
repo = "fixture/pkg"
[defaults]
pip_packages = ["pytest==8.3.3"]
install = "python -m pip install -e ."
test_cmd = "pytest -rA -p no:cacheprovider"
log_parser = "pytest"
"#;

fn pyproject(dependencies: &str, scripts: &str) -> String {
    format!(
        "[build-system]\nrequires = [\"setuptools>=64\"]\nbuild-backend = \"setuptools.build_meta\"\n\n[project]\n\
         name = \"fixpkg\"\nversion = \"0.1\"\ndependencies = [{dependencies}]\n\n[project.scripts]\n{scripts}\n\n\
         [tool.setuptools]\npackages = [\"fixpkg\"]\n"
    )
}

/// The fixture package: environment commit, then the instance's base commit, fix and tests.
fn pkg(world: &World) -> Instance {
    let dir = world.repos.join("fixture__pkg");
    std::fs::create_dir_all(&dir).unwrap();
    git(&dir, &["init", "-q", "-b", "main"]);
    let code = "def hello():\n    print('hello')\n\n\ndef double(x):\n    return x + x + x\n";
    write_files(
        &dir,
        &[
            ("pyproject.toml", &pyproject("", "fixpkg-hello = \"fixpkg:hello\"")),
            ("fixpkg/__init__.py", code),
            ("tests/test_pkg.py", "def test_nothing():\n    pass\n"),
        ],
    );
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "environment"]);
    let env_commit = git(&dir, &["rev-parse", "HEAD"]).trim().to_string();
    let scripts = "fixpkg-hello = \"fixpkg:hello\"\nfixpkg-bye = \"fixpkg:bye\"";
    let code = format!("{code}\n\ndef bye():\n    print('bye')\n");
    write_files(&dir, &[("pyproject.toml", &pyproject("\"six==1.16.0\"", scripts)), ("fixpkg/__init__.py", &code)]);
    git(&dir, &["add", "-A"]);
    git(&dir, &["commit", "-q", "-m", "a dependency and a script"]);
    let base = git(&dir, &["rev-parse", "HEAD"]).trim().to_string();
    let gold = patch_for(&world.repos, "fixture/pkg", &[("fixpkg/__init__.py", &code.replace("x + x + x", "x + x"))]);
    let tests = "import subprocess\n\nimport six\n\nfrom fixpkg import double\n\n\ndef test_nothing():\n    pass\n\n\n\
                 def test_double():\n    assert double(2) == 4\n\n\ndef test_new_dependency():\n    assert six.PY3\n\n\n\
                 def test_new_script():\n    out = subprocess.run(['fixpkg-bye'], capture_output=True, text=True)\n    \
                 assert out.stdout == 'bye\\n', out\n";
    let test_patch = patch_for(&world.repos, "fixture/pkg", &[("tests/test_pkg.py", tests)]);
    let fx = FixtureRepo { base, gold, test_patch };
    let f2p = [
        "tests/test_pkg.py::test_double",
        "tests/test_pkg.py::test_new_dependency",
        "tests/test_pkg.py::test_new_script",
    ];
    let mut instance = instance("fixture/pkg", "fixture__pkg-1", &fx, &f2p, &["tests/test_pkg.py::test_nothing"]);
    instance.environment_setup_commit = env_commit;
    instance.created_at = "2024-01-01T00:00:00Z".into();
    instance
}

fn with_spec(mut eval: Evaluation, text: &str) -> Evaluation {
    let mut specs = SpecRegistry::default();
    specs.add("fixture.toml", text).unwrap();
    eval.specs = Arc::new(specs);
    eval
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_instance_is_installed_again_over_the_cached_environment() {
    let world = World::new();
    let instance = pkg(&world);
    let eval = with_spec(world.evaluation("layer"), PKG_SPEC);
    let results = evaluate(&eval, vec![task(&instance, "gold", Some(&instance.patch))]).await;
    let r = &results[0];
    assert_eq!(r.status, InstanceStatus::Resolved, "{r:#?}");
    let dir = eval.instance_dir("gold", &instance.instance_id);
    let install = std::fs::read_to_string(dir.join("instance_install.log")).unwrap();
    assert!(install.contains("--no-deps --offline"), "the instance's install goes offline first: {install}");
    assert!(install.contains("six"), "the new dependency is installed on the layer: {install}");
    assert!(r.timings.install > 0.0, "{:?}", r.timings);
    // The cached environment is byte-compiled and holds the dependencies, not the project
    // (each instance installs its own), nor the instance's new dependency.
    let env = eval.envs.root.join(r.env_key.as_ref().unwrap()).join("venv");
    let site = std::fs::read_dir(env.join("lib")).unwrap().next().unwrap().unwrap().path().join("site-packages");
    let compiled = std::fs::read_dir(site.join("_pytest/__pycache__")).map(|d| d.count()).unwrap_or(0);
    assert!(compiled > 10, "the environment's packages are byte-compiled ({compiled} .pyc files)");
    let names: Vec<String> =
        std::fs::read_dir(&site).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert!(!names.iter().any(|n| n.starts_with("fixpkg") || n.starts_with("six")), "{names:?}");
    assert!(!eval.scratch.join("gold__fixture__pkg-1.venv").exists(), "the layer is removed with the worktree");

    // Without the per-instance install the instance's tests lack both: the check above can fail.
    let once = with_spec(world.evaluation("no-layer"), &format!("{PKG_SPEC}reinstall = false\n"));
    let results = evaluate(&once, vec![task(&instance, "gold", Some(&instance.patch))]).await;
    assert_eq!(results[0].status, InstanceStatus::Unresolved, "{:#?}", results[0]);
    let failing = &results[0].tests_status.as_ref().unwrap().fail_to_pass.failure;
    assert!(failing.iter().any(|t| t.ends_with("test_new_dependency")), "{failing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tests_failing_for_want_of_the_network_are_an_infrastructure_failure() {
    let world = World::new();
    let base = calc(&world);
    let tests = "import socket\nfrom calc import add\n\n\ndef test_add():\n    assert add(2, 2) == 4\n\n\n\
                 def test_remote():\n    socket.create_connection(('pypi.org', 443), timeout=30).close()\n";
    let test_patch = patch_for(&world.repos, "fixture/calc", &[("tests/test_calc.py", tests)]);
    let mut instance = renamed(&base, "calc-network");
    instance.test_patch = test_patch;
    instance.fail_to_pass = vec!["tests/test_calc.py::test_add".into(), "tests/test_calc.py::test_remote".into()];
    instance.pass_to_pass = Vec::new();
    let mut heard = world.evaluation("network");
    heard.heartbeat = Duration::from_millis(1);
    let progress = Arc::new(Heard::default());
    let results = heard.run(vec![task(&instance, "gold", Some(&base.patch))], progress.clone()).await;
    let r = &results[0];
    assert_eq!(r.status, InstanceStatus::InfraFailure, "{r:#?}");
    assert!(r.message.starts_with("network_unreachable") && r.message.contains("--network"), "{}", r.message);
    // Long steps report that they are still going.
    let beats = progress.0.lock().unwrap().clone();
    assert!(beats.iter().any(|(id, phase)| id == "calc-network" && phase == "tests"), "{beats:?}");
}

/// A progress observer that records heartbeats.
#[derive(Default)]
struct Heard(std::sync::Mutex<Vec<(String, String)>>);

impl rigor_eval::harness::Progress for Heard {
    fn heartbeat(&self, instance_id: &str, phase: &str, _elapsed: Duration) {
        self.0.lock().unwrap().push((instance_id.into(), phase.into()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dataset_s_own_eval_script_runs_as_the_official_harness_runs_it() {
    let world = World::new();
    let base = calc(&world);
    let test_file = "tests/test_calc.py";
    let script = format!(
        "#!/bin/bash\nset -uxo pipefail\nsource /opt/miniconda3/bin/activate\nconda activate testbed\ncd /testbed\n\
         git config --global --add safe.directory /testbed\ncd /testbed\ngit status\ngit show\n\
         git -c core.fileMode=false diff {b}\nsource /opt/miniconda3/bin/activate\nconda activate testbed\n\
         git checkout {b} {test_file}\ngit apply -v - <<'EOF_114329324912'\n{patch}\nEOF_114329324912\n\
         : '>>>>> Start Test Output'\npytest -rA -p no:cacheprovider {test_file}\n: '>>>>> End Test Output'\n\
         git checkout {b} {test_file}\n",
        b = base.base_commit,
        patch = base.test_patch.trim_end(),
    );
    let mut instance = renamed(&base, "calc-official");
    instance.eval_script = Some(script);
    let mut eval = world.evaluation("official");
    eval.eval_script = EvalScript::Dataset;
    let results = evaluate(&eval, vec![task(&instance, "gold", Some(&base.patch))]).await;
    assert_eq!(results[0].status, InstanceStatus::Resolved, "{:#?}", results[0]);
    let ran = std::fs::read_to_string(eval.instance_dir("gold", "calc-official").join("eval.sh")).unwrap();
    assert!(!ran.contains("/testbed") && !ran.contains("conda"), "{ran}");
    assert!(ran.contains(">>>>> Test Exit Code"), "{ran}");
    // The same row with rigor's own script (a spec exists) is graded the same.
    let results = evaluate(&world.evaluation("own"), vec![task(&instance, "gold", Some(&base.patch))]).await;
    assert_eq!(results[0].status, InstanceStatus::Resolved, "{:#?}", results[0]);
}
