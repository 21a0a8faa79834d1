//! The tests of a repository without a dataset spec: which runner they use, the command that runs
//! exactly the chosen tests, and how its log names them.
//!
//! [`Project::detect`] reads the project files only (it runs nothing), in this order:
//! - `Cargo.toml` → [`Runner::Cargo`]; `go.mod` → [`Runner::Go`];
//! - `tests/runtests.py` (Django's own layout) or `manage.py` → [`Runner::Django`];
//! - pytest configured (`[tool.pytest…]` in `pyproject.toml`, `[tool:pytest]` in `setup.cfg`,
//!   `pytest.ini`, `[pytest]` in `tox.ini`, `conftest.py`), or a tox/nox configuration that runs
//!   pytest → [`Runner::Pytest`]; one that runs `unittest` → [`Runner::Unittest`];
//! - test files (`test_*.py`, `*_test.py` at the top, in `tests/` or `test/`): all
//!   `unittest.TestCase` style → [`Runner::Unittest`], else [`Runner::Pytest`];
//! - `package.json` naming vitest, jest or mocha (in `scripts` or the dependencies) →
//!   [`Runner::Vitest`], [`Runner::Jest`], [`Runner::Mocha`];
//! - a Python project without tests yet (`pyproject.toml`, `setup.py`, `setup.cfg`) → pytest.
//!
//! Test ids are what the runner takes and what [`Project::statuses`] gives back: pytest node ids
//! (`tests/test_a.py::TestA::test_x`), dotted unittest / Django labels
//! (`tests.test_a.TestA.test_x`), cargo test names as cargo prints them (`tests::adds`, run with
//! `--exact`), go test names (`TestA`, `TestA/sub`), and jest/vitest/mocha full titles (jest and
//! vitest: describe blocks and name joined by ` › `; mocha: by a space).
//!
//! The Python interpreter is found by [`Project::find_env`]: the active virtual environment, an
//! in-repository one, else none (`python3` on `PATH`). What an environment for a project that has
//! none would install is read by [`Dependencies::of`]; building it is [`crate::env`]'s job
//! ([`crate::env::EnvCache::for_project`]); running the command is [`crate::runner`]'s
//! ([`crate::runner::TestRunner::run_ids`]).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::parsers::{LogParser, StatusMap, TestStatus};

/// A test runner rigor can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// `python -m pytest -rA`.
    Pytest,
    /// `python -m unittest -v`.
    Unittest,
    /// Django's runner: `tests/runtests.py` or `manage.py test`, verbosity 2.
    Django,
    /// `cargo test`.
    Cargo,
    /// `go test -v`.
    Go,
    /// `jest --verbose`.
    Jest,
    /// `mocha --reporter spec`.
    Mocha,
    /// `vitest run --reporter=verbose`.
    Vitest,
}

impl Runner {
    /// Whether the runner is a Python one (and so needs an interpreter).
    pub fn is_python(self) -> bool {
        matches!(self, Runner::Pytest | Runner::Unittest | Runner::Django)
    }

    /// Its name, as a user would say it.
    pub fn name(self) -> &'static str {
        match self {
            Runner::Pytest => "pytest",
            Runner::Unittest => "unittest",
            Runner::Django => "django",
            Runner::Cargo => "cargo test",
            Runner::Go => "go test",
            Runner::Jest => "jest",
            Runner::Mocha => "mocha",
            Runner::Vitest => "vitest",
        }
    }
}

/// A repository's tests and how to run them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// The repository's root.
    pub root: PathBuf,
    /// Its test runner.
    pub runner: Runner,
    /// The interpreter of the Python environment to use (`None`: `python3` on `PATH`).
    pub python: Option<PathBuf>,
    /// The script Django's tests start from, relative to the root (`tests/runtests.py` or
    /// `manage.py`).
    pub entry: Option<String>,
}

/// Why no test runner was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DetectError {
    /// The root is not a directory.
    #[error("{root} is not a directory")]
    NotADirectory {
        /// The path given.
        root: PathBuf,
    },
    /// Nothing names a runner rigor knows.
    #[error(
        "no test runner found in {root}: looked for Cargo.toml, go.mod, Django's tests/runtests.py or manage.py, \
         pytest or unittest configuration and test files, package.json naming jest, mocha or vitest"
    )]
    NoRunner {
        /// The root.
        root: PathBuf,
    },
}

/// What outcome of a run [`crate::runner::TestRunner::run_ids`] gives.
#[derive(Debug, Clone)]
pub struct TestOutcome {
    /// The status of every test the log reports, by id (the form [`Project::command`] takes).
    pub statuses: StatusMap,
    /// The runner's output, stdout and stderr interleaved.
    pub log: String,
    /// Whether the time limit killed it.
    pub timed_out: bool,
    /// The exit code; `None` when a signal or the time limit killed it.
    pub exit_code: Option<i32>,
    /// Wall-clock time.
    pub elapsed: std::time::Duration,
}

impl TestOutcome {
    /// The status of `id`, if the log reports it.
    pub fn status(&self, id: &str) -> Option<TestStatus> {
        self.statuses.get(id).copied()
    }
}

impl Project {
    /// Detects the project type and its test runner in `root` (see the module documentation).
    /// The interpreter is left unset: see [`Project::find_env`].
    pub fn detect(root: &Path) -> Result<Project, DetectError> {
        if !root.is_dir() {
            return Err(DetectError::NotADirectory { root: root.to_path_buf() });
        }
        let project = |runner| Project { root: root.to_path_buf(), runner, python: None, entry: None };
        let has = |f: &str| root.join(f).is_file();
        if has("Cargo.toml") {
            return Ok(project(Runner::Cargo));
        }
        if has("go.mod") {
            return Ok(project(Runner::Go));
        }
        if let Some(entry) = ["tests/runtests.py", "manage.py"].into_iter().find(|f| has(f)) {
            return Ok(Project { entry: Some(entry.to_string()), ..project(Runner::Django) });
        }
        if let Some(runner) = python_configuration(root) {
            return Ok(project(runner));
        }
        let tests = python_test_files(root);
        if !tests.is_empty() {
            let unittest_only = tests.iter().all(|f| std::fs::read_to_string(f).is_ok_and(|t| unittest_style(&t)));
            return Ok(project(if unittest_only { Runner::Unittest } else { Runner::Pytest }));
        }
        if let Some(runner) = node_runner(root) {
            return Ok(project(runner));
        }
        if ["pyproject.toml", "setup.py", "setup.cfg"].iter().any(|f| has(f)) {
            return Ok(project(Runner::Pytest));
        }
        Err(DetectError::NoRunner { root: root.to_path_buf() })
    }

    /// Finds the Python environment (Python runners only): `$VIRTUAL_ENV`, else an in-repository
    /// `.venv`, `venv` or `env` with `bin/python`, else none (`python3` on `PATH`).
    pub fn find_env(&mut self) {
        if !self.runner.is_python() {
            return;
        }
        let active = std::env::var_os("VIRTUAL_ENV").map(PathBuf::from);
        let in_repo = [".venv", "venv", "env"].into_iter().map(|d| self.root.join(d));
        self.python = active.into_iter().chain(in_repo).map(|env| env.join("bin/python")).find(|p| p.is_file());
    }

    /// The command line (program first) that runs exactly `ids`, from the project's root (or a
    /// copy of it); with no ids, the whole suite.
    pub fn command(&self, ids: &[String]) -> Vec<String> {
        let python = self.python.as_ref().map_or_else(|| "python3".to_string(), |p| p.display().to_string());
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut argv = match self.runner {
            Runner::Pytest => {
                let mut argv = vec![python];
                // `--color=no` after a project's `addopts = "--color=yes"` (humanize has it):
                // its summary lines would carry escape codes around the test ids.
                argv.extend(words(&["-m", "pytest", "-rA", "-p", "no:cacheprovider", "--color=no"]));
                argv
            }
            Runner::Unittest => {
                let mut argv = vec![python];
                argv.extend(words(&["-m", "unittest", "-v"]));
                argv
            }
            Runner::Django => {
                let entry = self.entry.clone().unwrap_or_else(|| "tests/runtests.py".into());
                let mut argv = vec![python, entry.clone()];
                if entry.ends_with("manage.py") {
                    argv.push("test".into());
                }
                argv.extend(words(&["--verbosity", "2", "--parallel", "1"]));
                argv
            }
            Runner::Cargo => {
                let mut argv = words(&["cargo", "test", "--offline", "--no-fail-fast"]);
                if !ids.is_empty() {
                    argv.extend(words(&["--", "--exact"]));
                }
                argv
            }
            Runner::Go => {
                let mut argv = words(&["go", "test", "-v"]);
                if !ids.is_empty() {
                    argv.extend(["-run".to_string(), go_run_pattern(ids)]);
                }
                argv.push("./...".into());
                return argv;
            }
            Runner::Jest | Runner::Vitest => {
                let mut argv = match self.runner {
                    Runner::Jest => words(&["npx", "--no", "jest", "--verbose"]),
                    _ => words(&["npx", "--no", "vitest", "run", "--reporter=verbose"]),
                };
                if !ids.is_empty() {
                    let titles: Vec<String> = ids.iter().map(|id| id.replace(" › ", " ")).collect();
                    argv.extend(["-t".to_string(), anchored(&titles)]);
                }
                return argv;
            }
            Runner::Mocha => {
                let mut argv = words(&["npx", "--no", "mocha", "--reporter", "spec"]);
                if !ids.is_empty() {
                    argv.extend(["--grep".to_string(), anchored(ids)]);
                }
                return argv;
            }
        };
        argv.extend(ids.iter().cloned());
        argv
    }

    /// The [`LogParser`] that reads the runner's output.
    pub fn parser(&self) -> LogParser {
        match self.runner {
            Runner::Pytest => LogParser::Pytest,
            Runner::Unittest | Runner::Django => LogParser::Django,
            Runner::Cargo => LogParser::Cargo,
            Runner::Go => LogParser::Gotest,
            Runner::Jest | Runner::Vitest => LogParser::Jest,
            Runner::Mocha => LogParser::Mocha,
        }
    }

    /// The status of every test `log` reports, by id in the form [`Project::command`] takes:
    /// unittest's and Django's `name (module.Class.name)` (or, before Python 3.11,
    /// `name (module.Class)`) become `module.Class.name`, vitest's `file > block > name` becomes
    /// `block › name`; other runners already print their ids.
    /// Colour escape codes are left out first (a runner a project configures to colour its
    /// output whatever the terminal).
    pub fn statuses(&self, log: &str) -> StatusMap {
        let map = self.parser().parse(&crate::parsers::strip_ansi(log));
        match self.runner {
            Runner::Unittest | Runner::Django => {
                map.into_iter().filter_map(|(name, status)| Some((dotted_id(&name)?, status))).collect()
            }
            Runner::Vitest => map.into_iter().map(|(name, status)| (vitest_id(&name), status)).collect(),
            _ => map,
        }
    }

    /// Environment variables of a run: the virtual environment activated (Python), no bytecode
    /// or colour written, cargo's build output inside the directory the tests run in.
    pub fn env_vars(&self) -> Vec<(String, String)> {
        let mut vars = Vec::new();
        if self.runner.is_python() {
            vars.push(("PYTHONDONTWRITEBYTECODE".into(), "1".into()));
            if let Some(venv) = self.venv() {
                let path = std::env::var("PATH").unwrap_or_default();
                vars.push(("VIRTUAL_ENV".into(), venv.display().to_string()));
                vars.push(("PATH".into(), format!("{}:{path}", venv.join("bin").display())));
            }
        }
        if self.runner == Runner::Cargo {
            vars.push(("CARGO_TARGET_DIR".into(), "target".into()));
            vars.push(("CARGO_TERM_COLOR".into(), "never".into()));
        }
        if matches!(self.runner, Runner::Jest | Runner::Vitest | Runner::Mocha) {
            vars.push(("FORCE_COLOR".into(), "0".into()));
            vars.push(("CI".into(), "1".into()));
        }
        vars
    }

    /// Paths a sandboxed run must be able to read besides the directory it runs in: the virtual
    /// environment and the installation its interpreter comes from (which may be in the hidden
    /// home).
    ///
    /// The interpreter may be a link the model made: a path that is the home directory or holds
    /// it (`/root` for a `bin/python` linked to `~/bin/python3`), or the root, is never shown.
    pub fn readable(&self) -> Vec<PathBuf> {
        let mut paths = Vec::new();
        if let Some(venv) = self.venv() {
            paths.push(venv);
        }
        if let Some(prefix) = self
            .python
            .as_ref()
            .and_then(|p| std::fs::canonicalize(p).ok())
            .and_then(|real| real.parent()?.parent().map(Path::to_path_buf))
        {
            paths.push(prefix);
        }
        let home = std::env::var_os("HOME").map(PathBuf::from);
        not_holding_home(paths, home.as_deref())
    }

    /// The virtual environment `python` belongs to (`<venv>/bin/python`).
    fn venv(&self) -> Option<PathBuf> {
        let python = self.python.as_ref()?;
        let venv = python.parent()?.parent()?;
        venv.join("pyvenv.cfg").is_file().then(|| venv.to_path_buf())
    }
}

/// What the environment of a Python project without one is built from, read from its files (it
/// runs nothing):
/// - the requirement files (`requirements*.txt`, `*-requirements.txt`, `requirements/*.txt`) by
///   purpose, from their names: the runtime ones (`requirements.txt`, `base`, `common`, `main`,
///   `prod`, `install`, `runtime`) and the test ones (a name with `test`), else the development
///   ones (`dev`); documentation, lint, typing and other purposes are left out;
/// - the project itself when it has a `pyproject.toml`, `setup.py` or `setup.cfg`, with its test
///   extra (`test`, `tests` or `testing` in `[project.optional-dependencies]`,
///   `[options.extras_require]` or `extras_require`) when it declares one;
/// - the runner's own package (`pytest`; unittest and Django need none of their own).
///
/// [`Dependencies::digest`] covers the names and contents of exactly the files that shape the
/// environment (the project files and the requirement files installed) and the runner's
/// packages: editing code, tests or a documentation requirement file keeps it; changing a
/// dependency changes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependencies {
    /// The files that shape the environment, relative to the root, sorted.
    pub files: Vec<String>,
    /// The requirement files to install, runtime ones first.
    pub requirements: Vec<String>,
    /// Whether the project has a `pyproject.toml`, `setup.py` or `setup.cfg`, so it can be
    /// installed itself.
    pub installable: bool,
    /// The extra that names its test dependencies, if it declares one.
    pub test_extra: Option<String>,
    /// The runner's packages (pip requirement specifiers).
    pub packages: Vec<String>,
    /// Lowercase hex SHA-256 (16 digits) of the files' names and contents and the packages.
    pub digest: String,
}

/// The files that make a Python project installable.
const PROJECT_FILES: [&str; 3] = ["pyproject.toml", "setup.py", "setup.cfg"];

impl Dependencies {
    /// The dependencies of the Python project in `root` tested with `runner`, or `None` when it
    /// has no dependency file (or `runner` is not a Python one): there is nothing to build then.
    pub fn of(root: &Path, runner: Runner) -> Option<Dependencies> {
        if !runner.is_python() {
            return None;
        }
        let project: Vec<String> =
            PROJECT_FILES.iter().filter(|f| root.join(f).is_file()).map(|f| f.to_string()).collect();
        let requirements = requirement_files(root);
        if project.is_empty() && requirements.is_empty() {
            return None;
        }
        let packages = if runner == Runner::Pytest { vec!["pytest".to_string()] } else { Vec::new() };
        let mut files: Vec<String> = project.iter().chain(&requirements).cloned().collect();
        files.sort();
        let mut hasher = Sha256::new();
        for file in &files {
            hasher.update(file.as_bytes());
            hasher.update([0]);
            hasher.update(std::fs::read(root.join(file)).unwrap_or_default());
            hasher.update([0]);
        }
        hasher.update(packages.join("\n").as_bytes());
        let digest = crate::spec::hex(&hasher.finalize())[..16].to_string();
        Some(Dependencies {
            files,
            requirements,
            installable: !project.is_empty(),
            test_extra: test_extra(root),
            packages,
            digest,
        })
    }
}

/// What a requirement file is for, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Runtime,
    Test,
    Dev,
    Other,
}

fn purpose(path: &str) -> Purpose {
    let words: Vec<String> = path
        .to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty() && !["requirements", "requirement", "reqs", "txt"].contains(w))
        .map(str::to_owned)
        .collect();
    let runtime = ["base", "common", "main", "prod", "production", "install", "runtime", "core"];
    if words.iter().all(|w| runtime.contains(&w.as_str())) {
        Purpose::Runtime
    } else if words.iter().any(|w| w.starts_with("test")) {
        Purpose::Test
    } else if words.iter().any(|w| ["dev", "develop", "development"].contains(&w.as_str())) {
        Purpose::Dev
    } else {
        Purpose::Other
    }
}

/// The requirement files to install (see [`Dependencies`]), runtime ones first.
fn requirement_files(root: &Path) -> Vec<String> {
    let names = |dir: &str| -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else { return Vec::new() };
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".txt") && (!dir.is_empty() || n.contains("requirements")))
            .map(|n| if dir.is_empty() { n } else { format!("{dir}/{n}") })
            .collect();
        names.sort();
        names
    };
    let all: Vec<String> = names("").into_iter().chain(names("requirements")).collect();
    let of = |p: Purpose| all.iter().filter(|f| purpose(f) == p).cloned().collect::<Vec<_>>();
    let tests = of(Purpose::Test);
    let extra = if tests.is_empty() { of(Purpose::Dev) } else { tests };
    of(Purpose::Runtime).into_iter().chain(extra).collect()
}

/// The extra a project's files declare for its tests (`test`, `tests` or `testing`).
fn test_extra(root: &Path) -> Option<String> {
    let read = |f: &str| std::fs::read_to_string(root.join(f)).unwrap_or_default();
    let mut declared = section_keys(&read("pyproject.toml"), "[project.optional-dependencies]");
    declared.extend(section_keys(&read("setup.cfg"), "[options.extras_require]"));
    let setup_py = read("setup.py");
    let named = regex::Regex::new(r#"["'](test|tests|testing)["']\s*:|\b(test|tests|testing)\s*=\s*\["#);
    if let Ok(named) = named
        && setup_py.contains("extras_require")
    {
        let names = named.captures_iter(&setup_py).filter_map(|c| Some(c.get(1).or(c.get(2))?.as_str().to_owned()));
        declared.extend(names);
    }
    ["test", "tests", "testing"].into_iter().find(|name| declared.iter().any(|d| d == name)).map(str::to_owned)
}

/// The keys of the INI or TOML section `header`: its unindented `key = ...` lines.
fn section_keys(text: &str, header: &str) -> Vec<String> {
    let mut inside = false;
    let mut keys = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') && !line.starts_with(char::is_whitespace) && trimmed.ends_with(']') {
            inside = trimmed == header;
        } else if inside
            && !line.starts_with(|c: char| c.is_whitespace() || "\"'#]".contains(c))
            && let Some((key, _)) = line.split_once('=')
        {
            keys.push(key.trim().trim_matches(|c| c == '"' || c == '\'').to_string());
        }
    }
    keys
}

/// The runner a Python or tox/nox configuration names.
fn python_configuration(root: &Path) -> Option<Runner> {
    let read = |f: &str| std::fs::read_to_string(root.join(f)).unwrap_or_default();
    let configured = read("pyproject.toml").contains("[tool.pytest")
        || read("setup.cfg").contains("[tool:pytest]")
        || root.join("pytest.ini").is_file()
        || read("tox.ini").contains("[pytest]")
        || root.join("conftest.py").is_file();
    if configured {
        return Some(Runner::Pytest);
    }
    // tox and nox as hints: what their commands run.
    let hints = format!("{}\n{}", read("tox.ini"), read("noxfile.py"));
    if hints.contains("pytest") {
        Some(Runner::Pytest)
    } else if hints.contains("unittest") {
        Some(Runner::Unittest)
    } else {
        None
    }
}

/// Python test files at the top of the tree, in `tests/` and in `test/` (one level down too).
fn python_test_files(root: &Path) -> Vec<PathBuf> {
    let is_test = |p: &Path| {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        name.ends_with(".py") && (name.starts_with("test_") || name.ends_with("_test.py"))
    };
    let mut dirs = vec![root.to_path_buf(), root.join("tests"), root.join("test")];
    for sub in [root.join("tests"), root.join("test")] {
        if let Ok(entries) = std::fs::read_dir(sub) {
            dirs.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
        }
    }
    let mut files: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|entries| entries.flatten().map(|e| e.path()))
        .filter(|p| p.is_file() && is_test(p))
        .collect();
    files.sort();
    files
}

/// Whether a test file is written for unittest only: it uses `unittest` and neither imports pytest
/// nor defines test functions at module level.
fn unittest_style(text: &str) -> bool {
    let uses_unittest = text.contains("unittest") || text.contains("TestCase");
    let pytest_only = text.contains("import pytest")
        || text.contains("from pytest")
        || text.lines().any(|l| l.starts_with("def test") || l.starts_with("async def test"));
    uses_unittest && !pytest_only
}

/// The JavaScript runner `package.json` names (vitest before jest before mocha).
fn node_runner(root: &Path) -> Option<Runner> {
    let text = std::fs::read_to_string(root.join("package.json")).ok()?;
    let manifest: serde_json::Value = serde_json::from_str(&text).ok()?;
    let names = |key: &str| -> String {
        match manifest.get(key) {
            Some(serde_json::Value::Object(map)) if key == "scripts" => {
                map.values().filter_map(|v| v.as_str()).collect::<Vec<_>>().join(" ")
            }
            Some(serde_json::Value::Object(map)) => map.keys().cloned().collect::<Vec<_>>().join(" "),
            _ => String::new(),
        }
    };
    let named = [names("scripts"), names("devDependencies"), names("dependencies")].join(" ");
    let words: Vec<&str> = named.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '@')).collect();
    [("vitest", Runner::Vitest), ("jest", Runner::Jest), ("mocha", Runner::Mocha)]
        .into_iter()
        .find(|(name, _)| words.contains(name))
        .map(|(_, runner)| runner)
}

/// `name (module.Class.name)` or `name (module.Class)` → `module.Class.name`.
fn dotted_id(reported: &str) -> Option<String> {
    let (name, rest) = reported.split_once(" (")?;
    let dotted = rest.strip_suffix(')')?;
    let valid = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.');
    if !valid(name) || !valid(dotted) {
        return None;
    }
    if dotted.ends_with(&format!(".{name}")) { Some(dotted.to_string()) } else { Some(format!("{dotted}.{name}")) }
}

/// vitest's verbose `file > block > name 3ms` (read by the jest parser) → `block › name`.
fn vitest_id(reported: &str) -> String {
    let reported = match reported.rsplit_once(' ') {
        Some((rest, time))
            if time
                .strip_suffix("ms")
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit() || c == '.')) =>
        {
            rest
        }
        _ => reported,
    };
    let parts: Vec<&str> = reported.split(" > ").collect();
    let skip = usize::from(parts.len() > 1 && parts[0].contains('.'));
    parts[skip..].join(" › ")
}

/// A regular expression matching exactly one of `titles` (JavaScript and RE2 syntax).
fn anchored(titles: &[String]) -> String {
    let alternatives: Vec<String> = titles.iter().map(|t| escape_regex(t)).collect();
    format!("^({})$", alternatives.join("|"))
}

/// `go test -run`'s pattern for `ids` (`TestA`, `TestA/sub`): one alternation per level, so a
/// subtest id also selects the same-named subtests of the other chosen tests.
fn go_run_pattern(ids: &[String]) -> String {
    let levels = ids.iter().map(|id| id.split('/').count()).max().unwrap_or(1);
    let mut pattern = Vec::new();
    for level in 0..levels {
        let mut names: Vec<String> = ids.iter().filter_map(|id| id.split('/').nth(level)).map(escape_regex).collect();
        names.dedup();
        pattern.push(format!("^({})$", names.join("|")));
    }
    pattern.join("/")
}

fn escape_regex(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.^$|?*+()[]{}/".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `paths` without the root and without any that is `home` or holds it.
fn not_holding_home(mut paths: Vec<PathBuf>, home: Option<&Path>) -> Vec<PathBuf> {
    let home = home.and_then(|h| h.canonicalize().ok());
    paths.retain(|p| {
        let real = p.canonicalize().unwrap_or_else(|_| p.clone());
        real.parent().is_some() && home.as_ref().is_none_or(|home| !home.starts_with(&real))
    });
    paths
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_interpreter_linked_from_the_home_directory_shows_no_home() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join("bin")).unwrap();
        std::fs::write(home.join("bin/python3"), "").unwrap();
        let venv = dir.path().join("repo/.venv");
        std::fs::create_dir_all(venv.join("bin")).unwrap();
        // bin/python -> <home>/bin/python3: its prefix would be the home directory itself.
        std::os::unix::fs::symlink(home.join("bin/python3"), venv.join("bin/python")).unwrap();
        let prefix =
            std::fs::canonicalize(venv.join("bin/python")).unwrap().parent().unwrap().parent().unwrap().to_path_buf();
        let shown = super::not_holding_home(vec![venv.clone(), prefix, "/".into()], Some(&home));
        assert_eq!(shown, vec![venv], "the venv stays, the home and the root do not");
    }

    fn project_with(files: &[(&str, &str)]) -> (tempfile::TempDir, Result<Project, DetectError>) {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let detected = Project::detect(dir.path());
        (dir, detected)
    }

    fn runner_of(files: &[(&str, &str)]) -> Option<Runner> {
        project_with(files).1.ok().map(|p| p.runner)
    }

    const UNITTEST: &str = "import unittest\n\nclass T(unittest.TestCase):\n    def test_x(self):\n        pass\n";
    const PYTEST: &str = "def test_x():\n    assert True\n";

    #[test]
    fn detection_follows_the_project_files() {
        assert_eq!(runner_of(&[]), None);
        assert_eq!(runner_of(&[("Cargo.toml", "[package]\n"), ("test_a.py", PYTEST)]), Some(Runner::Cargo));
        assert_eq!(runner_of(&[("go.mod", "module x\n")]), Some(Runner::Go));
        assert_eq!(runner_of(&[("tests/runtests.py", ""), ("setup.py", "")]), Some(Runner::Django));
        let (_dir, django) = project_with(&[("manage.py", "")]);
        assert_eq!(django.unwrap().entry.as_deref(), Some("manage.py"));
        assert_eq!(runner_of(&[("pyproject.toml", "[tool.pytest.ini_options]\n")]), Some(Runner::Pytest));
        assert_eq!(runner_of(&[("setup.cfg", "[tool:pytest]\n"), ("tests/test_a.py", UNITTEST)]), Some(Runner::Pytest));
        assert_eq!(runner_of(&[("tox.ini", "[testenv]\ncommands = python -m unittest\n")]), Some(Runner::Unittest));
        assert_eq!(runner_of(&[("tests/test_a.py", UNITTEST)]), Some(Runner::Unittest), "unittest style only");
        assert_eq!(runner_of(&[("tests/test_a.py", UNITTEST), ("tests/test_b.py", PYTEST)]), Some(Runner::Pytest));
        assert_eq!(runner_of(&[("tests/unit/test_a.py", PYTEST)]), Some(Runner::Pytest));
        assert_eq!(runner_of(&[("setup.py", "")]), Some(Runner::Pytest), "a Python project defaults to pytest");
        let js = |json: &str| runner_of(&[("package.json", json)]);
        assert_eq!(js(r#"{"scripts": {"test": "jest --ci"}}"#), Some(Runner::Jest));
        assert_eq!(js(r#"{"devDependencies": {"vitest": "^1"}}"#), Some(Runner::Vitest));
        assert_eq!(js(r#"{"scripts": {"test": "mocha test/"}}"#), Some(Runner::Mocha));
        assert_eq!(js(r#"{"scripts": {"test": "node test.js"}}"#), None);
        assert!(matches!(Project::detect(Path::new("/nonexistent/x")), Err(DetectError::NotADirectory { .. })));
    }

    #[test]
    fn commands_run_exactly_the_chosen_ids() {
        let project = |runner| Project { root: PathBuf::from("/r"), runner, python: None, entry: None };
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            project(Runner::Pytest).command(&ids(&["tests/test_a.py::T::test_x"])).join(" "),
            "python3 -m pytest -rA -p no:cacheprovider --color=no tests/test_a.py::T::test_x"
        );
        let with_venv = Project { python: Some("/v/bin/python".into()), ..project(Runner::Unittest) };
        assert_eq!(
            with_venv.command(&ids(&["tests.test_a.T.test_x"])).join(" "),
            "/v/bin/python -m unittest -v tests.test_a.T.test_x"
        );
        let django = Project { entry: Some("manage.py".into()), ..project(Runner::Django) };
        assert_eq!(
            django.command(&ids(&["app.tests.T.test_x"])).join(" "),
            "python3 manage.py test --verbosity 2 --parallel 1 app.tests.T.test_x"
        );
        assert_eq!(
            project(Runner::Cargo).command(&ids(&["tests::adds"])).join(" "),
            "cargo test --offline --no-fail-fast -- --exact tests::adds"
        );
        assert_eq!(project(Runner::Cargo).command(&[]).join(" "), "cargo test --offline --no-fail-fast");
        assert_eq!(
            project(Runner::Go).command(&ids(&["TestA", "TestB/sub.case"])),
            ["go", "test", "-v", "-run", r"^(TestA|TestB)$/^(sub\.case)$", "./..."]
        );
        assert_eq!(
            project(Runner::Jest).command(&ids(&["math › adds (big)"])),
            ["npx", "--no", "jest", "--verbose", "-t", r"^(math adds \(big\))$"]
        );
        assert_eq!(
            project(Runner::Mocha).command(&ids(&["math adds", "math subs"])),
            ["npx", "--no", "mocha", "--reporter", "spec", "--grep", "^(math adds|math subs)$"]
        );
    }

    #[test]
    fn statuses_are_keyed_by_ids() {
        let project = |runner| Project { root: PathBuf::from("/r"), runner, python: None, entry: None };
        let log = "test_x (tests.test_a.T.test_x) ... ok\ntest_y (tests.test_a.T) ... FAIL\n\
                   ======\nFAIL: test_y (tests.test_a.T)\n";
        let statuses = project(Runner::Unittest).statuses(log);
        assert_eq!(statuses.get("tests.test_a.T.test_x"), Some(&TestStatus::Passed));
        assert_eq!(statuses.get("tests.test_a.T.test_y"), Some(&TestStatus::Failed));
        assert_eq!(statuses.len(), 2, "{statuses:?}");
        let vitest =
            project(Runner::Vitest).statuses(" ✓ src/a.test.ts > math > adds 1ms\n × src/a.test.ts > math > subs\n");
        assert_eq!(vitest.get("math › adds"), Some(&TestStatus::Passed), "{vitest:?}");
        assert_eq!(vitest.get("math › subs"), Some(&TestStatus::Failed), "{vitest:?}");
        // A summary coloured by the project's own `--color=yes` (measured: humanize's).
        let coloured = "\x1b[31mFAILED\x1b[0m tests/test_n.py::\x1b[1mtest_neg\x1b[0m - AssertionError: x\n";
        let pytest = project(Runner::Pytest).statuses(coloured);
        assert_eq!(pytest.get("tests/test_n.py::test_neg"), Some(&TestStatus::Failed), "{pytest:?}");
    }

    #[test]
    fn dependencies_are_the_requirement_files_by_purpose_the_project_and_the_runner() {
        let (dir, _) = project_with(&[
            ("requirements.txt", "six\n"),
            ("requirements-docs.txt", "sphinx\n"),
            ("dev-requirements.txt", "black\n"),
            ("requirements/test.txt", "pytest-mock\n"),
            ("requirements/base.txt", "attrs\n"),
            (
                "pyproject.toml",
                "[project]\nname = \"x\"\n\n[project.optional-dependencies]\ntests = [\n  \"a>=1\",\n]\n",
            ),
        ]);
        let deps = Dependencies::of(dir.path(), Runner::Pytest).unwrap();
        assert_eq!(deps.requirements, ["requirements.txt", "requirements/base.txt", "requirements/test.txt"]);
        assert_eq!(
            deps.files,
            ["pyproject.toml", "requirements.txt", "requirements/base.txt", "requirements/test.txt"]
        );
        assert!(deps.installable);
        assert_eq!(deps.test_extra.as_deref(), Some("tests"));
        assert_eq!(deps.packages, ["pytest"]);
        // Without test requirements, the development ones.
        std::fs::remove_file(dir.path().join("requirements/test.txt")).unwrap();
        let deps = Dependencies::of(dir.path(), Runner::Unittest).unwrap();
        assert_eq!(deps.requirements, ["requirements.txt", "requirements/base.txt", "dev-requirements.txt"]);
        assert!(deps.packages.is_empty(), "unittest needs nothing of its own");
        assert!(Dependencies::of(dir.path(), Runner::Cargo).is_none());
        let (bare, _) = project_with(&[("calc.py", ""), ("tests/test_calc.py", PYTEST)]);
        assert!(Dependencies::of(bare.path(), Runner::Pytest).is_none(), "no dependency file: nothing to build");
    }

    #[test]
    fn the_test_extra_is_read_from_each_kind_of_project_file() {
        let extra = |file: &str, text: &str| {
            let (dir, _) = project_with(&[(file, text)]);
            Dependencies::of(dir.path(), Runner::Pytest).unwrap().test_extra
        };
        assert_eq!(extra("setup.cfg", "[options.extras_require]\ntesting =\n    pytest>=6\n"), Some("testing".into()));
        assert_eq!(extra("setup.cfg", "[options]\ntest = x\n[options.extras_require]\ndocs = sphinx\n"), None);
        assert_eq!(extra("setup.py", "setup(extras_require={'test': ['pytest']})\n"), Some("test".into()));
        assert_eq!(extra("setup.py", "setup(extras_require=dict(tests=['pytest']))\n"), Some("tests".into()));
        assert_eq!(extra("setup.py", "setup(tests_require=['pytest'])\n"), None);
        assert_eq!(extra("pyproject.toml", "[project.optional-dependencies]\ndocs = [\"test\"]\n"), None);
    }

    #[test]
    fn the_dependency_digest_follows_the_dependency_files_only() {
        let (dir, _) = project_with(&[
            ("requirements.txt", "six\n"),
            ("requirements-docs.txt", "sphinx\n"),
            ("setup.py", "from setuptools import setup\nsetup()\n"),
            ("calc.py", "X = 1\n"),
        ]);
        let digest = || Dependencies::of(dir.path(), Runner::Pytest).unwrap().digest;
        let first = digest();
        std::fs::write(dir.path().join("calc.py"), "X = 2\n").unwrap();
        std::fs::write(dir.path().join("requirements-docs.txt"), "sphinx>=7\n").unwrap();
        assert_eq!(digest(), first, "code and documentation requirements do not shape the environment");
        std::fs::write(dir.path().join("requirements.txt"), "six\nattrs\n").unwrap();
        let second = digest();
        assert_ne!(second, first);
        std::fs::write(dir.path().join("setup.py"), "from setuptools import setup\nsetup(name='c')\n").unwrap();
        assert_ne!(digest(), second);
        assert_ne!(
            Dependencies::of(dir.path(), Runner::Unittest).unwrap().digest,
            digest(),
            "the runner's package is part of it"
        );
    }

    #[test]
    fn an_in_repo_environment_is_found_unless_one_is_active() {
        let (dir, project) =
            project_with(&[("tests/test_a.py", PYTEST), (".venv/bin/python", ""), (".venv/pyvenv.cfg", "")]);
        let mut project = project.unwrap();
        project.find_env();
        match std::env::var_os("VIRTUAL_ENV").map(PathBuf::from) {
            Some(active) if active.join("bin/python").is_file() => {
                assert_eq!(project.python, Some(active.join("bin/python")))
            }
            _ => {
                assert_eq!(project.python, Some(dir.path().join(".venv/bin/python")));
                assert!(project.env_vars().iter().any(|(k, v)| k == "VIRTUAL_ENV" && v.ends_with(".venv")));
            }
        }
    }
}
