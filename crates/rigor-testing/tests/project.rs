//! Chosen tests of projects without a dataset spec, run by their real runners in the real sandbox
//! (pytest, unittest, cargo): the chosen passing test passes, the chosen failing one fails, and
//! the tests that were not chosen do not run. pytest comes from PyPI into an environment of the
//! cache (`<rigor cache>/test-envs`, built once; offline afterwards).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use rigor_sandbox::SandboxSettings;
use rigor_testing::env::Sources;
use rigor_testing::parsers::TestStatus;
use rigor_testing::project::{Project, Runner, TestOutcome};
use rigor_testing::runner::TestRunner;
use rigor_testing::spec::EnvSpec;

mod common;
use common::{project_dir, test_env_cache};

fn runner() -> TestRunner {
    TestRunner::new(Duration::from_secs(600), SandboxSettings::default())
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Checks that `pass` passed, `fail` failed and nothing but them ran.
fn assert_ran_exactly(outcome: &TestOutcome, pass: &str, fail: &str) {
    assert!(!outcome.timed_out, "{}", outcome.log);
    assert_eq!(outcome.status(pass), Some(TestStatus::Passed), "{pass}: {:?}\n{}", outcome.statuses, outcome.log);
    assert_eq!(outcome.status(fail), Some(TestStatus::Failed), "{fail}: {:?}\n{}", outcome.statuses, outcome.log);
    assert_eq!(outcome.statuses.len(), 2, "only the chosen tests ran: {:?}\n{}", outcome.statuses, outcome.log);
    assert_ne!(outcome.exit_code, Some(0), "a failing test fails the run");
}

/// The sources of an environment that installs nothing from the project: never asked for.
struct NoSources;

impl Sources for NoSources {
    async fn check_out(&self, _dest: &Path) -> Result<Vec<String>, String> {
        Err("the pytest environment needs no sources".into())
    }
}

/// The interpreter of a cached environment with pytest, or why there is none because PyPI cannot
/// be reached.
async fn pytest_python() -> Result<std::path::PathBuf, String> {
    let cache = test_env_cache();
    let spec = EnvSpec { pip_packages: vec!["pytest==8.3.3".into()], test_cmd: "pytest".into(), ..Default::default() };
    match cache.get("rigor-testing/pytest", "8.3.3", "any", &spec, &NoSources).await {
        Ok(env) => Ok(env.venv.expect("a Python environment").join("bin/python")),
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

const CALC: &str = "def add(a, b):\n    return a + b\n";

#[tokio::test]
async fn pytest_runs_the_chosen_node_ids() {
    let python = match pytest_python().await {
        Ok(python) => python,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let dir = project_dir(&[
        ("pyproject.toml", "[project]\nname = \"calc\"\nversion = \"0\"\n\n[tool.pytest.ini_options]\n"),
        ("calc.py", CALC),
        (
            "tests/test_calc.py",
            "from calc import add\n\n\ndef test_adds():\n    assert add(2, 2) == 4\n\n\ndef test_other():\n    assert True\n\n\n\
             class TestCalc:\n    def test_fails(self):\n        assert add(2, 2) == 5\n\n    def test_unchosen(self):\n        assert True\n",
        ),
    ]);
    let mut project = Project::detect(dir.path()).unwrap();
    assert_eq!(project.runner, Runner::Pytest);
    project.python = Some(python);
    let (pass, fail) = ("tests/test_calc.py::test_adds", "tests/test_calc.py::TestCalc::test_fails");
    let outcome = runner().run_ids(&project, dir.path(), &ids(&[pass, fail])).await.unwrap();
    assert_ran_exactly(&outcome, pass, fail);
    assert!(outcome.log.contains("assert 4 == 5"), "the raw output is kept: {}", outcome.log);
    assert!(!dir.path().join(".pytest_cache").exists() && !dir.path().join("tests/__pycache__").exists());
}

#[tokio::test]
async fn unittest_runs_the_chosen_dotted_ids() {
    let dir = project_dir(&[
        ("calc.py", CALC),
        ("tests/__init__.py", ""),
        (
            "tests/test_calc.py",
            "import unittest\n\nfrom calc import add\n\n\nclass CalcTest(unittest.TestCase):\n    def test_adds(self):\n        \
             self.assertEqual(add(2, 2), 4)\n\n    def test_fails(self):\n        self.assertEqual(add(2, 2), 5)\n\n    \
             def test_unchosen(self):\n        self.assertTrue(True)\n",
        ),
    ]);
    let mut project = Project::detect(dir.path()).unwrap();
    assert_eq!(project.runner, Runner::Unittest);
    project.find_env();
    let (pass, fail) = ("tests.test_calc.CalcTest.test_adds", "tests.test_calc.CalcTest.test_fails");
    let outcome = runner().run_ids(&project, dir.path(), &ids(&[pass, fail])).await.unwrap();
    assert_ran_exactly(&outcome, pass, fail);
    assert!(outcome.log.contains("AssertionError: 4 != 5"), "{}", outcome.log);
}

#[tokio::test]
async fn cargo_runs_the_chosen_test_names_offline() {
    let lib = "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn adds() {\n        \
               assert_eq!(super::add(2, 2), 4);\n    }\n\n    #[test]\n    fn fails() {\n        assert_eq!(super::add(2, 2), 5);\n    }\n\n    \
               #[test]\n    fn adds_too() {\n        assert_eq!(super::add(1, 1), 2);\n    }\n}\n";
    let dir = project_dir(&[
        ("Cargo.toml", "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n"),
        ("src/lib.rs", lib),
    ]);
    let project = Project::detect(dir.path()).unwrap();
    assert_eq!(project.runner, Runner::Cargo);
    // `tests::adds` is a prefix of `tests::adds_too`: only --exact keeps the latter out.
    let outcome = runner().run_ids(&project, dir.path(), &ids(&["tests::adds", "tests::fails"])).await.unwrap();
    assert_ran_exactly(&outcome, "tests::adds", "tests::fails");
    assert!(dir.path().join("target").is_dir(), "the build stays in the project");
}
