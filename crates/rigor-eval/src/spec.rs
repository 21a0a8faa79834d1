//! The environment specifications of dataset repositories: which [`EnvSpec`] builds a
//! repository's test environment at a version, and runs its tests.
//!
//! Specs are TOML files shipped in `crates/rigor-eval/specs/` (compiled in) and optionally a user
//! directory (`--specs DIR`, which wins). One file per repository: a `[defaults]` table and
//! `[versions."X.Y"]` tables that override it field by field. They were written from the
//! published SWE-bench specifications (python version, requirement files, pip packages,
//! pre-install and install commands, test command, log parser), for every repository and
//! version of SWE-bench Lite and Verified. System-level steps of the official specs (apt-get,
//! locale generation, conda environment files) are not reproduced: they need root and Docker.
//! The install command also runs per instance (`rigor_testing::layer`), and what a spec does not
//! pin is bounded by date (the harness sets `exclude_newer`).
//!
//! Repositories without a spec get one from [`detect`] ([`rigor_testing::spec::detect`]: the
//! project files pick a runner). What a spec holds, and building its environment, is
//! [`rigor_testing`]'s business (`spec`, `env`); this module only knows which spec a dataset row
//! needs.

use std::collections::BTreeMap;
use std::path::Path;

use rigor_testing::spec::EnvSpec;
use serde::Deserialize;

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
const SHIPPED: [(&str, &str); 18] = [
    ("astropy.toml", include_str!("../specs/astropy.toml")),
    ("matplotlib.toml", include_str!("../specs/matplotlib.toml")),
    ("pylint.toml", include_str!("../specs/pylint.toml")),
    ("pytest.toml", include_str!("../specs/pytest.toml")),
    ("scikit-learn.toml", include_str!("../specs/scikit-learn.toml")),
    ("seaborn.toml", include_str!("../specs/seaborn.toml")),
    ("sphinx.toml", include_str!("../specs/sphinx.toml")),
    ("xarray.toml", include_str!("../specs/xarray.toml")),
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

/// A spec guessed from the project files in `dir` (a checkout at the environment commit) for
/// `repo` at `version`, which has none.
pub fn detect(dir: &Path, repo: &str, version: &str) -> Result<EnvSpec, SpecError> {
    rigor_testing::spec::detect(dir).ok_or_else(|| SpecError::Unknown { repo: repo.into(), version: version.into() })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use rigor_testing::directives::DirectiveStyle;
    use rigor_testing::parsers::LogParser;

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
    fn detection_without_project_files_names_the_repository_and_the_remedy() {
        let dir = tempfile::tempdir().unwrap();
        let err = detect(dir.path(), "a/b", "1").unwrap_err().to_string();
        assert!(err.contains("a/b 1") && err.contains("--specs DIR"), "{err}");
        std::fs::write(dir.path().join("Cargo.toml"), "[package]").unwrap();
        assert_eq!(detect(dir.path(), "a/b", "1").unwrap().log_parser, LogParser::Cargo);
    }
}
