//! Path helpers shared by the file tools: lexical normalisation, confinement to the workspace, and
//! workspace-relative display.
//!
//! This module does not read or write files (beyond `canonicalize` of existing ancestors) and does
//! not decide policy: each tool decides whether a path outside the workspace is acceptable.

use std::io;
use std::path::{Path, PathBuf};

pub(crate) use rigor_sandbox::paths::normalize;

/// Resolves `path` the way the file system will see it: against the current directory when
/// relative, `..` lexically, then symlinks of the deepest ancestor that exists.
pub(crate) fn resolve_real(path: &Path) -> io::Result<PathBuf> {
    let absolute = if path.is_absolute() { path.to_path_buf() } else { std::env::current_dir()?.join(path) };
    rigor_sandbox::paths::resolve_links(&normalize(&absolute))
}

/// The real path of `path` if it lies inside the real `workspace`; otherwise a message for the model.
pub(crate) fn confine(workspace: &Path, path: &Path, shown: &str) -> Result<PathBuf, String> {
    let root = workspace
        .canonicalize()
        .map_err(|err| format!("the workspace {} cannot be resolved: {err}", workspace.display()))?;
    let real = resolve_real(path).map_err(|err| format!("cannot resolve `{shown}`: {err}"))?;
    if real.starts_with(&root) {
        Ok(real)
    } else {
        Err(format!(
            "`{shown}` resolves to {}, which is outside the workspace {}; only files inside the workspace can be edited",
            real.display(),
            root.display()
        ))
    }
}

/// `path` relative to the workspace when it is inside it, else as given.
pub(crate) fn display(workspace: &Path, path: &Path) -> String {
    let normal = normalize(path);
    let root = normalize(workspace);
    match normal.strip_prefix(&root) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".to_string(),
        Ok(rel) => rel.display().to_string(),
        Err(_) => match (normal.canonicalize(), root.canonicalize()) {
            (Ok(real), Ok(real_root)) => match real.strip_prefix(&real_root) {
                Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
                _ => normal.display().to_string(),
            },
            _ => normal.display().to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confine_refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir(&ws).unwrap();
        assert!(confine(&ws, &ws.join("a/b.txt"), "a/b.txt").is_ok());
        assert!(confine(&ws, &ws.join("new/../../x"), "x").is_err());
        assert!(confine(&ws, &ws.join("../x"), "../x").is_err());
        // A relative workspace resolves against the current directory.
        let cwd = std::env::current_dir().unwrap();
        assert!(confine(Path::new("."), Path::new("./new/file.txt"), "new/file.txt").unwrap().starts_with(&cwd));
    }
}
