//! Set-up shared by the integration tests of projects without a dataset spec.
#![allow(clippy::unwrap_used, dead_code)]

use rigor_sandbox::SandboxSettings;
use rigor_testing::env::{EnvCache, Installer, rigor_cache_dir};

/// A project directory outside `/tmp` (the sandbox's `/tmp` is its own).
pub fn project_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

/// The environment cache the tests share (`<rigor cache>/test-envs`: built once, offline afterwards).
pub fn test_env_cache() -> EnvCache {
    EnvCache::new(rigor_cache_dir().join("test-envs"), Installer::Uv).with_sandbox(SandboxSettings::default())
}
