//! The environment of a project without a dataset spec (`EnvCache::for_project`), built for real
//! with uv from PyPI in the real sandbox, into `<rigor cache>/test-envs` (so a rerun finds every
//! entry built and needs no network):
//! - a project whose `requirements.txt` names `six` gets an environment where `six` imports and
//!   its tests pass; asked again, or after its code changed, the same entry comes back unbuilt;
//!   another requirement file is another entry, with the new package;
//! - a project whose `setup.py` fails still gets its requirements and the runner;
//! - a requirement that does not exist fails the build, and it is not tried again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use rigor_sandbox::SandboxSettings;
use rigor_testing::env::{EnvError, Environment};
use rigor_testing::parsers::TestStatus;
use rigor_testing::project::{Dependencies, Project, Runner};
use rigor_testing::runner::TestRunner;

mod common;
use common::{project_dir, test_env_cache};

/// Whether PyPI answers.
fn pypi_reachable() -> bool {
    std::process::Command::new("python3")
        .args(["-c", "import urllib.request; urllib.request.urlopen('https://pypi.org/simple/six/', timeout=20)"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The environment of `project` and whether its entry was already built before the call, or
/// `None` (and why, on stderr) when it could not be built because PyPI cannot be reached.
async fn project_env(project: &Project) -> Option<(Environment, bool)> {
    let cache = test_env_cache();
    let dependencies = Dependencies::of(&project.root, project.runner).expect("dependency files");
    let cached = cache.root.join(cache.project_key(&dependencies)).join("ready.json").is_file();
    match cache.for_project(project).await {
        Ok(env) => Some((env.expect("a Python project with dependency files has an environment"), cached)),
        Err(err) if !pypi_reachable() => {
            eprintln!("skipped: PyPI is unreachable and the environment is not cached ({err})");
            None
        }
        Err(err) => panic!("the environment could not be built although PyPI is reachable: {err}"),
    }
}

/// Whether `python` imports `module`.
fn imports(python: &Path, module: &str) -> bool {
    let mut check = std::process::Command::new(python);
    check.args(["-c", &format!("import {module}")]).stderr(std::process::Stdio::null());
    check.status().is_ok_and(|s| s.success())
}

fn interpreter(env: &Environment) -> PathBuf {
    let python = env.interpreter().expect("a virtual environment");
    assert!(python.is_file(), "{}", python.display());
    python
}

const GREETING: &str = "import six\n\n\ndef greeting(name):\n    return six.text_type('hello ') + name\n";
const GREETING_TEST: &str =
    "from greeting import greeting\n\n\ndef test_greets():\n    assert greeting('you') == 'hello you'\n";

#[tokio::test]
async fn a_project_env_has_its_requirements_is_reused_and_is_rebuilt_when_they_change() {
    let dir = project_dir(&[
        ("requirements.txt", "six==1.16.0\n"),
        ("greeting.py", GREETING),
        ("tests/test_greeting.py", GREETING_TEST),
    ]);
    let mut project = Project::detect(dir.path()).unwrap();
    assert_eq!(project.runner, Runner::Pytest);
    let Some((env, cached)) = project_env(&project).await else { return };
    assert_eq!(env.fresh, !cached, "built exactly when it was not in the cache");
    let python = interpreter(&env);
    assert!(imports(&python, "six") && imports(&python, "pytest"), "the requirement and the runner are installed");

    // Its tests run in it, in the sandbox, importing the project's code from where they run.
    project.python = Some(python.clone());
    let runner = TestRunner::new(Duration::from_secs(600), SandboxSettings::default());
    let id = "tests/test_greeting.py::test_greets".to_string();
    let outcome = runner.run_ids(&project, dir.path(), std::slice::from_ref(&id)).await.unwrap();
    assert_eq!(outcome.status(&id), Some(TestStatus::Passed), "{}", outcome.log);

    // Asked again, and after the code changed: the same entry, not built again.
    let (again, _) = project_env(&project).await.unwrap();
    assert!(!again.fresh, "a second call is a cache hit");
    assert_eq!((again.key.as_str(), again.venv.as_ref()), (env.key.as_str(), env.venv.as_ref()));
    std::fs::write(dir.path().join("greeting.py"), GREETING.replace("hello ", "hi ")).unwrap();
    let (edited, _) = project_env(&project).await.unwrap();
    assert!(!edited.fresh && edited.key == env.key, "editing the code keeps the environment");

    // A changed requirement file is another entry, built with the new requirement.
    std::fs::write(dir.path().join("requirements.txt"), "six==1.16.0\nattrs==23.2.0\n").unwrap();
    let Some((changed, cached)) = project_env(&project).await else { return };
    assert_ne!(changed.key, env.key);
    assert_eq!(changed.fresh, !cached, "built exactly when it was not in the cache");
    assert!(imports(&interpreter(&changed), "attrs"), "the new requirement is installed");
    assert!(!imports(&python, "attrs"), "the first environment is left as it was");
}

#[tokio::test]
async fn a_project_that_cannot_be_installed_still_gets_its_requirements_and_the_runner() {
    let dir = project_dir(&[
        ("setup.py", "raise SystemExit('this project cannot be installed')\n"),
        ("requirements.txt", "six==1.16.0\n"),
        ("greeting.py", GREETING),
        ("tests/test_greeting.py", GREETING_TEST),
    ]);
    let project = Project::detect(dir.path()).unwrap();
    let Some((env, _)) = project_env(&project).await else { return };
    let python = interpreter(&env);
    assert!(imports(&python, "six") && imports(&python, "pytest"));
    let log = std::fs::read_to_string(test_env_cache().root.join(&env.key).join("build.log")).unwrap();
    assert!(log.contains("the project could not be installed as ."), "{log}");
    assert!(log.contains("going on without the project installed"), "{log}");
}

#[tokio::test]
async fn a_requirement_that_does_not_exist_fails_the_build_once() {
    let dir = project_dir(&[
        ("requirements.txt", "rigor-testing-no-such-package-4f1c2a==0.0.1\n"),
        ("tests/test_a.py", "def test_a():\n    pass\n"),
    ]);
    let project = Project::detect(dir.path()).unwrap();
    let first: EnvError = test_env_cache().for_project(&project).await.expect_err("the package does not exist");
    assert!(first.log.is_file(), "the build leaves its log: {first}");
    let again = test_env_cache().for_project(&project).await.expect_err("it still does not exist");
    assert!(again.message.contains("failed earlier in this run"), "not built again: {again}");
    assert_eq!(again.key, first.key);
}
