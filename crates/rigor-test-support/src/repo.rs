//! Fixture repositories: a directory of files copied into a fresh temporary git repository
//! with one commit, so tests never touch the fixtures themselves.

use std::path::{Path, PathBuf};

/// The bundled example `name` under the workspace's `examples/` directory.
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples").join(name)
}

/// Copies `source` (recursively, skipping `__pycache__` and `.git`) into a new temporary
/// directory, makes it a git repository and commits everything.
pub fn fixture_repo(source: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
    copy_tree(source, dir.path());
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "fixture"]);
    dir
}

/// Runs git with a fixed identity, panicking with its output on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let mut all =
        vec!["-c", "user.name=rigor-test", "-c", "user.email=test@rigor.invalid", "-c", "commit.gpgsign=false"];
    all.extend_from_slice(args);
    let out = rigor_git::Git::checkout(dir).command(&all).output().unwrap_or_else(|e| panic!("cannot run git: {e}"));
    assert!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn copy_tree(from: &Path, to: &Path) {
    let entries = std::fs::read_dir(from).unwrap_or_else(|e| panic!("cannot read {}: {e}", from.display()));
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name == "__pycache__" || name == ".git" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if src.is_dir() {
            std::fs::create_dir_all(&dst).unwrap_or_else(|e| panic!("mkdir {}: {e}", dst.display()));
            copy_tree(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap_or_else(|e| panic!("copy {}: {e}", src.display()));
        }
    }
}
