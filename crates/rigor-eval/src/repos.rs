//! Local clones and per-instance worktrees.
//!
//! [`find_clone`] locates `owner/name` under a `--repos` directory (`DIR/owner__name` or
//! `DIR/owner/name`, bare or not). [`Worktree::create`] makes a fresh detached git worktree at an
//! instance's `base_commit`; when the clone lacks some blobs (a partial mirror without its largest
//! files) the checkout leaves exactly those paths out, through a sparse checkout, and says so.
//! Worktree bookkeeping in one clone is serialised; everything else runs in parallel.
//! Nothing is fetched from the network here: a commit missing from the clone is an error telling
//! the user to fetch it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::process::git;

/// Why a repository or worktree is not available.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// No clone of the repository under the repos directory.
    #[error("no clone of {repo} under {dir}: expected {dir}/{flat} or {dir}/{repo} (git clone it there first)")]
    NotFound {
        /// `owner/name`.
        repo: String,
        /// The repos directory.
        dir: String,
        /// `owner__name`.
        flat: String,
    },
    /// A git command failed.
    #[error("{0}")]
    Git(String),
}

/// Finds the clone of `repo` (`owner/name`) under `dir`.
pub fn find_clone(dir: &Path, repo: &str) -> Result<PathBuf, RepoError> {
    let flat = repo.replace('/', "__");
    let candidates =
        [dir.join(&flat), dir.join(repo), dir.join(format!("{flat}.git")), dir.join(format!("{repo}.git"))];
    for c in candidates {
        if c.join(".git").exists() || c.join("HEAD").is_file() {
            return Ok(c);
        }
    }
    Err(RepoError::NotFound { repo: repo.into(), dir: dir.display().to_string(), flat })
}

fn clone_lock(clone: &Path) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let map = LOCKS.get_or_init(Default::default);
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    map.entry(clone.to_path_buf()).or_default().clone()
}

/// A detached worktree of a clone, removed by [`Worktree::remove`].
#[derive(Debug, Clone)]
pub struct Worktree {
    /// The clone it belongs to.
    pub clone: PathBuf,
    /// Its directory.
    pub dir: PathBuf,
    /// The commit checked out.
    pub commit: String,
    /// Paths left out because the clone lacks their content.
    pub missing: Vec<String>,
}

impl Worktree {
    /// A fresh worktree of `clone` at `commit` in `dir` (which must not exist yet; a stale one from
    /// an interrupted run is removed first).
    pub async fn create(clone: &Path, commit: &str, dir: &Path) -> Result<Worktree, RepoError> {
        let lock = clone_lock(clone);
        let guard = lock.lock().await;
        if dir.exists() {
            let _ = git(clone, &["worktree", "remove", "--force", &dir.to_string_lossy()]).await;
            let _ = std::fs::remove_dir_all(dir);
        }
        let _ = git(clone, &["worktree", "prune"]).await;
        git(clone, &["cat-file", "-e", &format!("{commit}^{{commit}}")]).await.map_err(|_| {
            RepoError::Git(format!(
                "commit {commit} is not in the clone {}: fetch it there (git -C {} fetch origin {commit})",
                clone.display(),
                clone.display()
            ))
        })?;
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| RepoError::Git(format!("cannot create {}: {e}", parent.display())))?;
        }
        git(clone, &["worktree", "add", "--detach", "--no-checkout", &dir.to_string_lossy(), commit])
            .await
            .map_err(RepoError::Git)?;
        drop(guard);
        let mut missing = Vec::new();
        if let Err(first) = git(dir, &["reset", "-q", "--hard", commit]).await {
            missing = missing_paths(dir, commit).await?;
            if missing.is_empty() {
                return Err(RepoError::Git(first));
            }
            let mut patterns = vec!["/*".to_string()];
            patterns.extend(missing.iter().map(|p| format!("!/{p}")));
            let mut args = vec!["sparse-checkout", "set", "--no-cone"];
            args.extend(patterns.iter().map(String::as_str));
            git(dir, &args).await.map_err(RepoError::Git)?;
            git(dir, &["reset", "-q", "--hard", commit]).await.map_err(RepoError::Git)?;
        }
        Ok(Worktree { clone: clone.to_path_buf(), dir: dir.to_path_buf(), commit: commit.into(), missing })
    }

    /// Removes the worktree and its directory.
    pub async fn remove(&self) {
        let lock = clone_lock(&self.clone);
        let _guard = lock.lock().await;
        let _ = git(&self.clone, &["worktree", "remove", "--force", &self.dir.to_string_lossy()]).await;
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = git(&self.clone, &["worktree", "prune"]).await;
    }
}

/// Paths of `commit`'s tree whose blobs the object store lacks.
async fn missing_paths(dir: &Path, commit: &str) -> Result<Vec<String>, RepoError> {
    let listing = git(dir, &["ls-tree", "-r", commit]).await.map_err(RepoError::Git)?;
    let mut entries = Vec::new();
    for line in listing.lines() {
        // <mode> SP <type> SP <object> TAB <path>
        let Some((meta, path)) = line.split_once('\t') else { continue };
        let mut parts = meta.split_whitespace();
        let (Some(_), Some("blob"), Some(object)) = (parts.next(), parts.next(), parts.next()) else { continue };
        entries.push((object.to_string(), path.to_string()));
    }
    let input: String = entries.iter().map(|(o, _)| format!("{o}\n")).collect();
    let done = crate::process::Cmd::new("git", &["cat-file", "--batch-check"], dir)
        .stdin(input)
        .run()
        .await
        .map_err(|e| RepoError::Git(format!("cannot run git cat-file: {e}")))?;
    let absent: std::collections::HashSet<&str> =
        done.output.lines().filter(|l| l.ends_with(" missing")).filter_map(|l| l.split_whitespace().next()).collect();
    Ok(entries.into_iter().filter(|(o, _)| absent.contains(o.as_str())).map(|(_, p)| p).collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn finds_flat_and_nested_layouts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a__b/.git")).unwrap();
        std::fs::create_dir_all(dir.path().join("c/d/.git")).unwrap();
        assert_eq!(find_clone(dir.path(), "a/b").unwrap(), dir.path().join("a__b"));
        assert_eq!(find_clone(dir.path(), "c/d").unwrap(), dir.path().join("c/d"));
        let err = find_clone(dir.path(), "x/y").unwrap_err().to_string();
        assert!(err.contains("x__y") && err.contains("git clone"), "{err}");
    }
}
