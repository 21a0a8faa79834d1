//! Environment specifications: how to build a repository's test environment and run its tests.
//!
//! Specs are TOML files shipped in `crates/rigor-eval/specs/` (compiled in) and optionally a user
//! directory (`--specs DIR`, which wins). One file per repository: a `[defaults]` table and
//! `[versions."X.Y"]` tables that override it field by field. They were written from the
//! published SWE-bench specifications (python version, requirement files, pip packages,
//! pre-install and install commands, test command, log parser). System-level steps of the
//! official specs (apt-get, locale generation) are not reproduced: they need root and Docker.
//!
//! Repositories without a spec get one from [`detect`], which looks at the project files
//! (`Cargo.toml`, `go.mod`, `package.json`, `pyproject.toml` / `setup.py`) to pick a runner.
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
    /// installed (`-r` includes followed one level, `-e .` lines dropped).
    pub requirements: Vec<String>,
    /// Extra packages (pip requirement specifiers).
    pub pip_packages: Vec<String>,
    /// Shell commands run in the source checkout before the install command.
    pub pre_install: Vec<String>,
    /// The install command, run in the source checkout with the environment active.
    pub install: Option<String>,
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
    /// A digest of everything that shapes the environment (not the test command), so that a
    /// changed spec rebuilds its environment.
    pub fn build_digest(&self) -> String {
        let shape = serde_json::json!({
            "kind": self.kind, "python": self.python, "requirements": self.requirements,
            "pip_packages": self.pip_packages, "pre_install": self.pre_install, "install": self.install,
            "exclude_newer": self.exclude_newer, "env": self.env,
        });
        hex(&Sha256::digest(shape.to_string().as_bytes()))[..16].to_string()
    }
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A spec file: the repository, defaults and per-version overrides.
#[derive(Debug, Clone, Deserialize)]
struct SpecFile {
    repo: String,
    #[serde(default)]
    defaults: toml::Table,
    #[serde(default)]
    versions: BTreeMap<String, toml::Table>,
}

/// Why a spec could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A spec file is malformed.
    #[error("spec {file}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// No spec and nothing detectable.
    #[error(
        "no environment spec for {repo} {version} and no Cargo.toml, go.mod, package.json, pyproject.toml or setup.py to detect one from: add crates/rigor-eval/specs/<name>.toml or pass --specs DIR"
    )]
    Unknown {
        /// The repository.
        repo: String,
        /// Its version.
        version: String,
    },
}

/// The specs shipped with rigor.
const SHIPPED: [(&str, &str); 10] = [
    ("sqlfluff.toml", include_str!("../specs/sqlfluff.toml")),
    ("pvlib.toml", include_str!("../specs/pvlib.toml")),
    ("astroid.toml", include_str!("../specs/astroid.toml")),
    ("pydicom.toml", include_str!("../specs/pydicom.toml")),
    ("marshmallow.toml", include_str!("../specs/marshmallow.toml")),
    ("pyvista.toml", include_str!("../specs/pyvista.toml")),
    ("django.toml", include_str!("../specs/django.toml")),
    ("sympy.toml", include_str!("../specs/sympy.toml")),
    ("flask.toml", include_str!("../specs/flask.toml")),
    ("requests.toml", include_str!("../specs/requests.toml")),
];

/// All known specs, by repository.
#[derive(Debug, Clone, Default)]
pub struct SpecRegistry {
    files: BTreeMap<String, (String, SpecFile)>,
}

impl SpecRegistry {
    /// The shipped specs, then the `.toml` files of `extra` (which override by repository).
    pub fn load(extra: Option<&Path>) -> Result<SpecRegistry, SpecError> {
        let mut registry = SpecRegistry::default();
        for (name, text) in SHIPPED {
            registry.add(name, text)?;
        }
        if let Some(dir) = extra {
            let entries = std::fs::read_dir(dir)
                .map_err(|e| SpecError::Invalid { file: dir.display().to_string(), message: e.to_string() })?;
            let mut paths: Vec<_> =
                entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect();
            paths.sort();
            for path in paths {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| SpecError::Invalid { file: path.display().to_string(), message: e.to_string() })?;
                registry.add(&path.display().to_string(), &text)?;
            }
        }
        Ok(registry)
    }

    /// Adds one spec file's text.
    pub fn add(&mut self, name: &str, text: &str) -> Result<(), SpecError> {
        let file: SpecFile =
            toml::from_str(text).map_err(|e| SpecError::Invalid { file: name.into(), message: e.to_string() })?;
        // Check every version resolves now rather than mid-run.
        for version in file.versions.keys() {
            merge(&file, Some(version)).map_err(|message| SpecError::Invalid { file: name.into(), message })?;
        }
        merge(&file, None).map_err(|message| SpecError::Invalid { file: name.into(), message })?;
        self.files.insert(file.repo.clone(), (name.to_string(), file));
        Ok(())
    }

    /// The spec of `repo` at `version`, if a file covers the repository.
    pub fn get(&self, repo: &str, version: &str) -> Option<EnvSpec> {
        let (_, file) = self.files.get(repo)?;
        merge(file, Some(version)).ok()
    }

    /// Repositories with a spec.
    pub fn repos(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }
}

fn merge(file: &SpecFile, version: Option<&str>) -> Result<EnvSpec, String> {
    let mut table = file.defaults.clone();
    if let Some(overrides) = version.and_then(|v| file.versions.get(v)) {
        for (k, v) in overrides {
            table.insert(k.clone(), v.clone());
        }
    }
    let spec: EnvSpec = toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| e.to_string())?;
    if spec.test_cmd.trim().is_empty() {
        return Err(format!("version {}: test_cmd is empty", version.unwrap_or("defaults")));
    }
    Ok(spec)
}

/// A spec guessed from the project files in `dir` (a checkout at the environment commit).
pub fn detect(dir: &Path, repo: &str, version: &str) -> Result<EnvSpec, SpecError> {
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
    } else if has("package.json") {
        let manifest = std::fs::read_to_string(dir.join("package.json")).unwrap_or_default();
        let (test_cmd, parser) = if manifest.contains("\"mocha\"") {
            ("npx mocha --reporter spec", LogParser::Mocha)
        } else {
            ("npx jest --verbose", LogParser::Jest)
        };
        EnvSpec { kind: ProjectKind::Node, test_cmd: test_cmd.into(), log_parser: parser, ..Default::default() }
    } else if has("pyproject.toml") || has("setup.py") || has("setup.cfg") {
        if has("tests/runtests.py") {
            EnvSpec {
                install: Some("python -m pip install -e .".into()),
                test_cmd: "./tests/runtests.py --verbosity 2 --parallel 1".into(),
                log_parser: LogParser::Django,
                directives: DirectiveStyle::DjangoModules,
                ..Default::default()
            }
        } else {
            EnvSpec {
                install: Some("python -m pip install -e .".into()),
                pip_packages: vec!["pytest".into()],
                test_cmd: "pytest -rA".into(),
                ..Default::default()
            }
        }
    } else {
        return Err(SpecError::Unknown { repo: repo.into(), version: version.into() });
    };
    Ok(spec)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn shipped_specs_load_and_versions_override_defaults() {
        let registry = SpecRegistry::load(None).unwrap();
        let old = registry.get("pydicom/pydicom", "1.3").unwrap();
        let new = registry.get("pydicom/pydicom", "2.3").unwrap();
        assert_eq!(old.python.as_deref(), Some("3.6"));
        assert_eq!(new.python.as_deref(), Some("3.10"));
        assert_eq!(new.log_parser, LogParser::PytestOptions);
        assert_ne!(old.build_digest(), new.build_digest());
        assert_eq!(registry.get("django/django", "4.0").unwrap().directives, DirectiveStyle::DjangoModules);
        assert!(registry.get("nobody/nothing", "1.0").is_none());
    }

    #[test]
    fn a_bad_spec_names_the_file() {
        let mut registry = SpecRegistry::default();
        let err = registry.add("x.toml", "repo = \"a/b\"\n[defaults]\ntest_cmd = \"t\"\nbogus = 1\n").unwrap_err();
        assert!(err.to_string().contains("x.toml") && err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn detection_picks_runner_from_project_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(detect(dir.path(), "a/b", "1").is_err());
        std::fs::write(dir.path().join("Cargo.toml"), "[package]").unwrap();
        assert_eq!(detect(dir.path(), "a/b", "1").unwrap().log_parser, LogParser::Cargo);
        std::fs::remove_file(dir.path().join("Cargo.toml")).unwrap();
        std::fs::write(dir.path().join("setup.py"), "").unwrap();
        assert_eq!(detect(dir.path(), "a/b", "1").unwrap().test_cmd, "pytest -rA");
    }
}
