//! Lexical path normalisation and symlink resolution, shared by the action policy and the file
//! tools (`rigor-tools`), so that both see a path the same way.
//!
//! Nothing here decides whether a path is allowed: the policy and each tool do.

use std::io;
use std::path::{Component, Path, PathBuf};

/// Removes `.` and resolves `..` lexically, without touching the file system: `/..` is `/`, and
/// a relative path keeps the `..` that climb above its start (`a/../../x` is `../x`).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// `path` (absolute) as the file system will see it: its deepest existing ancestor (the path
/// itself when it exists) resolved through symlinks, the missing rest appended.
pub fn resolve_links(path: &Path) -> io::Result<PathBuf> {
    let mut existing = path;
    let mut missing = Vec::new();
    while existing.symlink_metadata().is_err() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_os_string());
                existing = parent;
            }
            _ => break,
        }
    }
    let mut real = existing.canonicalize()?;
    real.extend(missing.into_iter().rev());
    Ok(real)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn normalize_resolves_dots_lexically() {
        assert_eq!(normalize(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(normalize(Path::new("/a/new/../../x")), PathBuf::from("/x"));
        assert_eq!(normalize(Path::new("/../../etc")), PathBuf::from("/etc"));
        assert_eq!(normalize(Path::new("a/../../x")), PathBuf::from("../x"));
        assert_eq!(normalize(Path::new("../../x")), PathBuf::from("../../x"));
    }

    #[test]
    fn resolve_links_follows_the_deepest_existing_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().canonicalize().unwrap();
        std::fs::create_dir(real.join("target")).unwrap();
        std::os::unix::fs::symlink(real.join("target"), real.join("link")).unwrap();
        assert_eq!(resolve_links(&real.join("link/new/file")).unwrap(), real.join("target/new/file"));
        assert_eq!(resolve_links(&real.join("link")).unwrap(), real.join("target"));
    }
}
