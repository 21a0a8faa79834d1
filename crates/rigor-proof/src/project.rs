//! The test runner of a repository without a dataset spec: which runner its tests use, the
//! command that runs exactly the chosen tests, how the runner names a test, and how its log reads.
//!
//! Detected from the files: `Cargo.toml` → `cargo test`; a Python project (`pyproject.toml`,
//! `setup.py`, `setup.cfg` or `.py` files) → pytest when its interpreter has pytest and the
//! project configures it or its tests do not use `unittest`, else `python -m unittest`. The
//! interpreter: an active virtual environment (`$VIRTUAL_ENV`), an in-repository `.venv`, `venv`
//! or `env`, else `python3` on `PATH`.

use std::path::{Path, PathBuf};

use rigor_testing::parsers::{LogParser, StatusMap, TestStatus};

use crate::failure::{Failure, cargo_failure, pytest_failure, unittest_failure};
use crate::tests_in::TestFn;

/// The runners the proof drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// `python -m pytest -rA`.
    Pytest,
    /// `python -m unittest -v`.
    Unittest,
    /// `cargo test`.
    Cargo,
}

/// A repository's tests and how to run them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// The runner.
    pub runner: Runner,
    /// The Python interpreter (Python projects).
    pub python: Option<PathBuf>,
}

/// Why no runner was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DetectError(pub String);

impl Project {
    /// Detects the project at `root` (see the module documentation).
    pub fn detect(root: &Path) -> Result<Project, DetectError> {
        if root.join("Cargo.toml").is_file() {
            return Ok(Project { runner: Runner::Cargo, python: None });
        }
        let python_markers = ["pyproject.toml", "setup.py", "setup.cfg"];
        let has_py = python_markers.iter().any(|m| root.join(m).is_file()) || has_python_files(root);
        if !has_py {
            return Err(DetectError(format!(
                "no test runner found in {}: rigor proves patches of Python (pytest, unittest) and Rust (cargo) \
                 projects",
                root.display()
            )));
        }
        let python = find_python(root);
        let configured = root.join("pytest.ini").is_file()
            || root.join("conftest.py").is_file()
            || file_contains(&root.join("pyproject.toml"), "[tool.pytest")
            || file_contains(&root.join("setup.cfg"), "[tool:pytest]")
            || file_contains(&root.join("tox.ini"), "[pytest]");
        let has_pytest = std::process::Command::new(&python)
            .args(["-c", "import pytest"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let runner = if has_pytest && (configured || !uses_unittest(root)) { Runner::Pytest } else { Runner::Unittest };
        Ok(Project { runner, python: Some(python) })
    }

    /// How the runner names `test` of the file at `path` (relative to the root).
    pub fn test_id(&self, path: &str, test: &TestFn) -> String {
        match self.runner {
            Runner::Pytest => match &test.class {
                Some(class) => format!("{path}::{class}::{}", test.name),
                None => format!("{path}::{}", test.name),
            },
            Runner::Unittest => {
                let module = path.trim_end_matches(".py").replace('/', ".");
                format!("{module}.{}", test.qualified())
            }
            Runner::Cargo => test.name.clone(),
        }
    }

    /// The program and arguments that run exactly `ids`.
    pub fn command(&self, ids: &[String]) -> (String, Vec<String>) {
        let python = self.python.as_ref().map_or("python3".to_string(), |p| p.display().to_string());
        let mut args: Vec<String> = match self.runner {
            Runner::Pytest => ["-m", "pytest", "-rA", "-p", "no:cacheprovider"].map(String::from).to_vec(),
            Runner::Unittest => ["-m", "unittest", "-v"].map(String::from).to_vec(),
            Runner::Cargo => ["test", "--offline", "--quiet", "--"].map(String::from).to_vec(),
        };
        args.extend(ids.iter().cloned());
        match self.runner {
            Runner::Cargo => ("cargo".into(), args),
            _ => (python, args),
        }
    }

    /// Reads the status of each of `ids` from a run's `log` (absent: not reported).
    pub fn statuses(&self, log: &str, ids: &[String]) -> Vec<(String, Option<TestStatus>)> {
        let map = self.parser().parse(log);
        ids.iter().map(|id| (id.clone(), lookup(&map, self.runner, id))).collect()
    }

    /// How `id` failed, from a run's `log`.
    pub fn failure(&self, log: &str, id: &str) -> Option<Failure> {
        match self.runner {
            Runner::Pytest => pytest_failure(log, id),
            Runner::Unittest => unittest_failure(log, id),
            Runner::Cargo => cargo_failure(log, id),
        }
    }

    /// Describes the runner and interpreter for the proof.
    pub fn describe(&self) -> String {
        let runner = match self.runner {
            Runner::Pytest => "pytest",
            Runner::Unittest => "unittest",
            Runner::Cargo => "cargo test",
        };
        match &self.python {
            Some(python) => format!("{runner} with {}", python.display()),
            None => runner.to_string(),
        }
    }

    fn parser(&self) -> LogParser {
        match self.runner {
            Runner::Pytest => LogParser::Pytest,
            Runner::Unittest => LogParser::Django,
            Runner::Cargo => LogParser::Cargo,
        }
    }
}

/// The status of `id` in a parsed log: unittest reports `name (module.Class.name)` (or, before
/// Python 3.11, `name (module.Class)`); cargo reports `module::name`.
fn lookup(map: &StatusMap, runner: Runner, id: &str) -> Option<TestStatus> {
    if let Some(status) = map.get(id) {
        return Some(*status);
    }
    match runner {
        Runner::Unittest => {
            let (class, name) = id.rsplit_once('.')?;
            let long = format!("{name} ({id})");
            let short = format!("{name} ({class})");
            map.get(&long).or_else(|| map.get(&short)).copied()
        }
        Runner::Cargo => map.iter().find(|(k, _)| k.rsplit("::").next() == Some(id)).map(|(_, s)| *s),
        Runner::Pytest => None,
    }
}

fn find_python(root: &Path) -> PathBuf {
    let active = std::env::var_os("VIRTUAL_ENV").map(|v| PathBuf::from(v).join("bin/python"));
    let in_repo = [".venv", "venv", "env"].iter().map(|d| root.join(d).join("bin/python"));
    active.into_iter().chain(in_repo).find(|p| p.is_file()).unwrap_or_else(|| PathBuf::from("python3"))
}

fn file_contains(path: &Path, needle: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| text.contains(needle))
}

fn has_python_files(root: &Path) -> bool {
    std::fs::read_dir(root)
        .map(|entries| entries.flatten().any(|e| e.path().extension().is_some_and(|x| x == "py")))
        .unwrap_or(false)
}

/// Whether the tests at the top of the tree or in `tests/` use `unittest.TestCase`.
fn uses_unittest(root: &Path) -> bool {
    [root.to_path_buf(), root.join("tests"), root.join("test")].iter().any(|dir| {
        std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("test"))
                .any(|e| file_contains(&e.path(), "unittest"))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_commands_and_statuses_per_runner() {
        let test = TestFn { class: Some("CompoundTest".into()), name: "test_compound".into(), line: 3 };
        let unittest = Project { runner: Runner::Unittest, python: Some("/usr/bin/python3".into()) };
        let id = unittest.test_id("tests/test_d.py", &test);
        assert_eq!(id, "tests.test_d.CompoundTest.test_compound");
        let (program, args) = unittest.command(std::slice::from_ref(&id));
        assert_eq!((program.as_str(), args[..3].join(" ").as_str()), ("/usr/bin/python3", "-m unittest -v"));
        let log = "test_compound (tests.test_d.CompoundTest.test_compound) ... FAIL\n";
        assert_eq!(
            unittest.statuses(log, &[id]),
            vec![("tests.test_d.CompoundTest.test_compound".to_string(), Some(TestStatus::Failed))]
        );
        let pytest = Project { runner: Runner::Pytest, python: None };
        assert_eq!(pytest.test_id("tests/test_d.py", &test), "tests/test_d.py::CompoundTest::test_compound");
        let cargo = Project { runner: Runner::Cargo, python: None };
        let log = "test tests::test_compound ... ok\ntest other ... FAILED\n";
        assert_eq!(cargo.statuses(log, &["test_compound".into()])[0].1, Some(TestStatus::Passed));
    }

    #[test]
    fn detection_by_project_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Project::detect(dir.path()).is_err());
        std::fs::write(dir.path().join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
        assert_eq!(Project::detect(dir.path()).unwrap().runner, Runner::Cargo);
        let py = tempfile::tempdir().unwrap();
        std::fs::write(py.path().join("test_a.py"), "import unittest\n").unwrap();
        let project = Project::detect(py.path()).unwrap();
        assert_eq!(project.runner, Runner::Unittest, "unittest-style tests stay with unittest");
    }
}
