//! Workspace-relative display of paths for the file tools (confinement is [`crate::confined`]'s).

use std::path::Path;

pub(crate) use rigor_sandbox::paths::normalize;

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
