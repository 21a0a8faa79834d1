//! Environment specifications: how to build a project's test environment and run its tests.
//!
//! An [`EnvSpec`] says what kind of project it is ([`ProjectKind`]), which Python and packages its
//! environment needs, how the project is installed, the test command, how test directives are
//! written ([`DirectiveStyle`]) and which [`LogParser`] reads the output. Where specs come from is
//! not this crate's business (rigor-eval ships one per dataset repository and version); for a
//! project without one, [`detect`] looks at the project files (`Cargo.toml`, `go.mod`,
//! `package.json`, `pyproject.toml` / `setup.py` / `setup.cfg`) to pick a runner.
//! This module does not build anything: see [`crate::env`].

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::directives::DirectiveStyle;
use crate::parsers::LogParser;

/// The kind of project an environment is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ProjectKind {
    /// A Python virtual environment.
    #[default]
    Python,
    /// `cargo`, from the system toolchain (no environment to build).
    Cargo,
    /// `npm`/`npx`: `npm ci` (or `npm install`) in the worktree.
    Node,
    /// `go`, from the system toolchain.
    Go,
}

/// One resolved environment spec (defaults merged with the version's overrides).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct EnvSpec {
    /// What kind of project.
    pub kind: ProjectKind,
    /// Python version, `"3.9"` (the closest available minor at or above it is used when absent).
    pub python: Option<String>,
    /// Requirement files in the repository at the environment commit; the first that exists is
    /// installed (`-r` includes followed one level, `-e .` lines dropped), or every one that
    /// exists with `all_requirements`.
    pub requirements: Vec<String>,
    /// Install every requirement file of `requirements` that exists, not only the first (a
    /// detected spec: runtime and test requirements both).
    pub all_requirements: bool,
    /// Conda environment files in the repository at the environment commit (the official
    /// images' `conda env update -f environment.yml`): the first that exists is read as pip
    /// requirements ([`crate::conda`]) and installed after the requirement files, before the pip
    /// packages, within the pins of `pip_packages` (a package that cannot be installed is left
    /// out on its own, and logged).
    pub environment_files: Vec<String>,
    /// Extra packages (pip requirement specifiers).
    pub pip_packages: Vec<String>,
    /// Shell commands run in the source checkout before the install command.
    pub pre_install: Vec<String>,
    /// The install command, run in the source checkout with the environment active.
    pub install: Option<String>,
    /// Whether `pre_install` and `install` run again in each instance's worktree, on a layer over
    /// the cached environment (see [`crate::layer`]), as the official eval script re-installs the
    /// project per instance; default: whenever there is an install command.
    pub reinstall: Option<bool>,
    /// The test command; the test directives are appended.
    pub test_cmd: String,
    /// Shell lines run before the tests (exports and the like).
    pub eval_commands: Vec<String>,
    /// The log parser.
    pub log_parser: LogParser,
    /// How test directives are written.
    pub directives: DirectiveStyle,
    /// Resolve packages as they were on this date (uv `--exclude-newer`), so an old project gets
    /// the dependency versions of its time.
    pub exclude_newer: Option<String>,
    /// Extra environment variables for installs and tests.
    pub env: BTreeMap<String, String>,
    /// The directory (relative to the worktree) put first on `PYTHONPATH` so the instance's code
    /// shadows the copy installed in the cached environment; default: `src` when the project has
    /// a src layout, else the worktree root.
    pub import_root: Option<String>,
}

impl EnvSpec {
    /// Whether the project is installed again per instance (see [`EnvSpec::reinstall`]).
    pub fn reinstalls(&self) -> bool {
        self.kind == ProjectKind::Python && self.install.is_some() && self.reinstall.unwrap_or(true)
    }

    /// Whether building it reads the repository (requirement or environment files, an install
    /// or pre-install command), so that its environment depends on the environment commit.
    pub fn reads_repository(&self) -> bool {
        !self.requirements.is_empty()
            || !self.environment_files.is_empty()
            || self.install.is_some()
            || !self.pre_install.is_empty()
    }

    /// Whether building it resolves anything not pinned exactly: requirement files, an install
    /// command (the project's dependencies), a pip package without `==`. Only such a spec needs a
    /// date bound.
    pub fn has_unpinned(&self) -> bool {
        !self.requirements.is_empty()
            || !self.environment_files.is_empty()
            || self.install.is_some()
            || self.pip_packages.iter().any(|p| !p.contains("=="))
    }

    /// A digest of everything that shapes the environment (not the test command), so that a
    /// changed spec rebuilds its environment.
    pub fn build_digest(&self) -> String {
        let shape = serde_json::json!({
            "kind": self.kind, "python": self.python, "requirements": self.requirements,
            "all_requirements": self.all_requirements, "environment_files": self.environment_files, "reinstall": self.reinstalls(), "pip_packages": self.pip_packages, "pre_install": self.pre_install, "install": self.install,
            "exclude_newer": self.exclude_newer, "env": self.env,
        });
        hex(&Sha256::digest(shape.to_string().as_bytes()))[..16].to_string()
    }
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A spec guessed from the project files in `dir` (a checkout at the environment commit), or
/// `None` when none of them is there.
pub fn detect(dir: &Path) -> Option<EnvSpec> {
    let has = |f: &str| dir.join(f).exists();
    let spec = if has("Cargo.toml") {
        EnvSpec {
            kind: ProjectKind::Cargo,
            test_cmd: "cargo test --no-fail-fast".into(),
            log_parser: LogParser::Cargo,
            directives: DirectiveStyle::None,
            ..Default::default()
        }
    } else if has("go.mod") {
        EnvSpec {
            kind: ProjectKind::Go,
            test_cmd: "go test -v ./...".into(),
            log_parser: LogParser::Gotest,
            directives: DirectiveStyle::None,
            ..Default::default()
        }
    } else if has("pyproject.toml") || has("setup.py") || has("setup.cfg") {
        // Before package.json: a Python project that also has one (for its documentation's
        // JavaScript, say) is still tested as Python.
        python_spec(dir)
    } else if has("package.json") {
        let manifest = std::fs::read_to_string(dir.join("package.json")).unwrap_or_default();
        let (test_cmd, parser) = if manifest.contains("\"mocha\"") {
            ("npx mocha --reporter spec", LogParser::Mocha)
        } else {
            ("npx jest --verbose", LogParser::Jest)
        };
        EnvSpec { kind: ProjectKind::Node, test_cmd: test_cmd.into(), log_parser: parser, ..Default::default() }
    } else {
        return None;
    };
    Some(spec)
}

/// The spec of a Python project in `dir`: Django's own runner when it has `tests/runtests.py`,
/// else pytest; its requirement files (runtime, then test and dev ones) all installed, then the
/// project itself, editable, with its test extra when it declares one.
fn python_spec(dir: &Path) -> EnvSpec {
    let dependencies = crate::project::Dependencies::of(dir, crate::project::Runner::Pytest);
    let requirements = dependencies.as_ref().map(|d| d.requirements.clone()).unwrap_or_default();
    let target = match dependencies.and_then(|d| d.test_extra) {
        Some(extra) => format!("'.[{extra}]'"),
        None => ".".into(),
    };
    let install = Some(format!("python -m pip install -e {target}"));
    if dir.join("tests/runtests.py").exists() {
        return EnvSpec {
            install,
            requirements,
            all_requirements: true,
            test_cmd: "./tests/runtests.py --verbosity 2 --parallel 1".into(),
            log_parser: LogParser::Django,
            directives: DirectiveStyle::DjangoModules,
            ..Default::default()
        };
    }
    EnvSpec {
        install,
        requirements,
        all_requirements: true,
        pip_packages: vec!["pytest".into()],
        test_cmd: "pytest -rA".into(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn detection_picks_runner_from_project_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(detect(dir.path()).is_none());
        std::fs::write(dir.path().join("Cargo.toml"), "[package]").unwrap();
        assert_eq!(detect(dir.path()).unwrap().log_parser, LogParser::Cargo);
        std::fs::remove_file(dir.path().join("Cargo.toml")).unwrap();
        std::fs::write(dir.path().join("setup.py"), "").unwrap();
        assert_eq!(detect(dir.path()).unwrap().test_cmd, "pytest -rA");
    }

    #[test]
    fn a_python_project_with_a_package_json_is_python_and_its_requirements_and_test_extra_are_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("package.json"), "{\"devDependencies\": {\"jest\": \"1\"}}").unwrap();
        assert_eq!(detect(dir.path()).unwrap().kind, ProjectKind::Node, "JavaScript alone is a Node project");
        std::fs::write(dir.path().join("setup.py"), "setup(extras_require={'test': ['pytest']})\n").unwrap();
        std::fs::write(dir.path().join("requirements.txt"), "docutils<0.18\n").unwrap();
        std::fs::write(dir.path().join("test-requirements.txt"), "html5lib\n").unwrap();
        let spec = detect(dir.path()).unwrap();
        assert_eq!(spec.kind, ProjectKind::Python, "{spec:?}");
        assert_eq!(spec.test_cmd, "pytest -rA");
        assert_eq!(spec.requirements, ["requirements.txt", "test-requirements.txt"]);
        assert!(spec.all_requirements, "runtime and test requirements both");
        assert_eq!(spec.install.as_deref(), Some("python -m pip install -e '.[test]'"));
        assert!(spec.reinstalls() && spec.has_unpinned(), "installed per instance, bounded by date");
    }

    #[test]
    fn the_build_digest_ignores_the_test_command() {
        let spec = EnvSpec { pip_packages: vec!["pytest".into()], test_cmd: "pytest".into(), ..Default::default() };
        let other = EnvSpec { test_cmd: "pytest -x".into(), ..spec.clone() };
        assert_eq!(spec.build_digest(), other.build_digest());
        let more = EnvSpec { pip_packages: vec!["pytest".into(), "hypothesis".into()], ..spec.clone() };
        assert_ne!(spec.build_digest(), more.build_digest());
    }
}
