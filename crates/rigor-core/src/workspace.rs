//! Where the agent works: a git worktree of the user's repository (default) or the checkout itself.
//!
//! The user's checkout is never touched in worktree mode: the run gets a detached worktree under
//! `<repo>/.rigor/worktrees/<run-id>` at `HEAD`, with the checkout's uncommitted changes and
//! untracked files carried over, so the agent starts from exactly what the user sees. The
//! starting state is recorded as a git tree (`base_tree`) through a private index file, so the
//! patch is `git diff` of the workspace against that tree, new files included, and neither the
//! user's index nor the worktree's is ever modified.
//!
//! This module runs `git` only; it knows nothing about models or tools.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

/// Errors setting up or reading a workspace.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// `git` failed.
    #[error("`git {args}` failed in {dir}: {stderr}")]
    Git {
        /// The arguments.
        args: String,
        /// Where it ran.
        dir: String,
        /// What git said.
        stderr: String,
    },
    /// The directory is not usable.
    #[error("{0}")]
    Invalid(String),
    /// An I/O error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
}

/// How the workspace relates to the user's checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkspaceMode {
    /// A separate git worktree (default): the checkout is untouched.
    Worktree,
    /// Work directly in the user's checkout.
    InPlace,
}

/// A prepared workspace.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// Top level of the user's repository.
    pub repo_root: PathBuf,
    /// Top level of the tree the agent edits (the worktree, or `repo_root` in place).
    pub tree_root: PathBuf,
    /// The directory the agent starts in: `tree_root` joined with the subdirectory the user named.
    pub dir: PathBuf,
    /// The commit the workspace started from.
    pub base_commit: String,
    /// The git tree of the starting state (base commit plus carried-over changes).
    pub base_tree: String,
    /// Whether uncommitted changes of the checkout were carried over.
    pub carried_changes: bool,
    mode: WorkspaceMode,
    index_file: PathBuf,
}

/// Runs git in `dir` and returns stdout, or a [`WorkspaceError::Git`].
pub async fn git(dir: &Path, args: &[&str]) -> Result<String, WorkspaceError> {
    git_with_index(dir, args, None, None).await
}

async fn git_with_index(
    dir: &Path,
    args: &[&str],
    index: Option<&Path>,
    stdin: Option<&[u8]>,
) -> Result<String, WorkspaceError> {
    let mut cmd = Command::new("git");
    cmd.args(args).current_dir(dir).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    if let Some(index) = index {
        cmd.env("GIT_INDEX_FILE", index);
    }
    let io_err = |source| WorkspaceError::Io { context: format!("running git in {}", dir.display()), source };
    let mut child = cmd.spawn().map_err(io_err)?;
    if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
        use tokio::io::AsyncWriteExt;
        pipe.write_all(bytes).await.map_err(io_err)?;
    }
    let out = child.wait_with_output().await.map_err(io_err)?;
    if !out.status.success() {
        return Err(WorkspaceError::Git {
            args: args.join(" "),
            dir: dir.display().to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The top level of the git repository containing `dir`.
pub async fn find_repo_root(dir: &Path) -> Result<PathBuf, WorkspaceError> {
    let top = git(dir, &["rev-parse", "--show-toplevel"]).await.map_err(|_| {
        WorkspaceError::Invalid(format!(
            "{} is not inside a git repository: run `git init && git add -A && git commit -m init` there first",
            dir.display()
        ))
    })?;
    Ok(PathBuf::from(top.trim()))
}

impl Workspace {
    /// Prepares a workspace for run `run_id` on the repository containing `repo`.
    ///
    /// `start` picks the commit (default `HEAD`); uncommitted changes are carried over only
    /// when starting from `HEAD`. `state_dir` holds the private index file.
    pub async fn create(
        repo: &Path,
        run_id: &str,
        mode: WorkspaceMode,
        start: Option<&str>,
        state_dir: &Path,
    ) -> Result<Self, WorkspaceError> {
        let repo = repo.canonicalize().map_err(|source| WorkspaceError::Io {
            context: format!("repository {} not found", repo.display()),
            source,
        })?;
        let repo_root = find_repo_root(&repo).await?;
        let prefix = repo.strip_prefix(&repo_root).unwrap_or(Path::new("")).to_path_buf();
        let head = git(&repo_root, &["rev-parse", "--verify", "HEAD^{commit}"]).await.map_err(|_| {
            WorkspaceError::Invalid(format!("{} has no commits yet: commit something first", repo_root.display()))
        })?;
        let head = head.trim().to_string();
        let base_commit = match start {
            Some(rev) => {
                git(&repo_root, &["rev-parse", "--verify", &format!("{rev}^{{commit}}")]).await?.trim().to_string()
            }
            None => head.clone(),
        };
        exclude_rigor_dirs(&repo_root).await?;
        std::fs::create_dir_all(state_dir)
            .map_err(|source| WorkspaceError::Io { context: format!("creating {}", state_dir.display()), source })?;
        let index_file = state_dir.join("base.index");

        let (tree_root, carried_changes) = match mode {
            WorkspaceMode::InPlace => (repo_root.clone(), false),
            WorkspaceMode::Worktree => {
                let tree_root = repo_root.join(".rigor").join("worktrees").join(run_id);
                let tree_str = tree_root.display().to_string();
                git(&repo_root, &["worktree", "add", "--detach", &tree_str, &base_commit]).await?;
                let carried = base_commit == head && carry_changes(&repo_root, &tree_root).await?;
                (tree_root, carried)
            }
        };
        let mut ws = Self {
            dir: if prefix.as_os_str().is_empty() { tree_root.clone() } else { tree_root.join(&prefix) },
            repo_root,
            tree_root,
            base_commit,
            base_tree: String::new(),
            carried_changes,
            mode,
            index_file,
        };
        ws.base_tree = ws.snapshot_tree().await?;
        Ok(ws)
    }

    /// Records the current state of the tree as a git tree object and returns its id.
    async fn snapshot_tree(&self) -> Result<String, WorkspaceError> {
        let index = Some(self.index_file.as_path());
        if !self.index_file.exists() {
            git_with_index(&self.tree_root, &["read-tree", &self.base_commit], index, None).await?;
        }
        git_with_index(&self.tree_root, &["add", "-A", "--", ".", ":(exclude).rigor"], index, None).await?;
        Ok(git_with_index(&self.tree_root, &["write-tree"], index, None).await?.trim().to_string())
    }

    /// The patch: a binary-safe unified diff of the workspace against its starting state.
    pub async fn diff(&self) -> Result<String, WorkspaceError> {
        let now = self.snapshot_tree().await?;
        git(&self.tree_root, &["diff", "--binary", "--no-color", "--no-ext-diff", &self.base_tree, &now]).await
    }

    /// Applies `patch` to the user's checkout (for `--apply`); checks first, so a patch that does
    /// not apply changes nothing.
    pub async fn apply_to_checkout(&self, patch: &str) -> Result<(), WorkspaceError> {
        if patch.trim().is_empty() || self.mode == WorkspaceMode::InPlace {
            return Ok(());
        }
        git_with_index(
            &self.repo_root,
            &["apply", "--check", "--whitespace=nowarn", "-"],
            None,
            Some(patch.as_bytes()),
        )
        .await?;
        git_with_index(&self.repo_root, &["apply", "--whitespace=nowarn", "-"], None, Some(patch.as_bytes())).await?;
        Ok(())
    }

    /// Removes the worktree (in-place workspaces are left alone).
    pub async fn remove(&self) -> Result<(), WorkspaceError> {
        if self.mode == WorkspaceMode::Worktree {
            let path = self.tree_root.display().to_string();
            git(&self.repo_root, &["worktree", "remove", "--force", &path]).await?;
        }
        Ok(())
    }
}

/// Copies the checkout's uncommitted changes (tracked diffs and untracked files) into the
/// worktree. Returns whether there were any.
async fn carry_changes(repo_root: &Path, tree_root: &Path) -> Result<bool, WorkspaceError> {
    let diff =
        git(repo_root, &["diff", "HEAD", "--binary", "--no-color", "--no-ext-diff", "--", ".", ":(exclude).rigor"])
            .await?;
    if !diff.trim().is_empty() {
        git_with_index(tree_root, &["apply", "--whitespace=nowarn", "-"], None, Some(diff.as_bytes())).await?;
    }
    let untracked =
        git(repo_root, &["ls-files", "--others", "--exclude-standard", "-z", "--", ".", ":(exclude).rigor"]).await?;
    let files: Vec<&str> = untracked.split('\0').filter(|f| !f.is_empty()).collect();
    for file in &files {
        let (from, to) = (repo_root.join(file), tree_root.join(file));
        let io = |source| WorkspaceError::Io { context: format!("copying untracked {file} into the worktree"), source };
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::copy(&from, &to).map_err(io)?;
    }
    Ok(!diff.trim().is_empty() || !files.is_empty())
}

/// Makes git ignore rigor's run state in the user's repository without editing tracked files.
async fn exclude_rigor_dirs(repo_root: &Path) -> Result<(), WorkspaceError> {
    let common = git(repo_root, &["rev-parse", "--git-common-dir"]).await?;
    let common = repo_root.join(common.trim());
    let exclude = common.join("info").join("exclude");
    let current = std::fs::read_to_string(&exclude).unwrap_or_default();
    let missing: Vec<&str> =
        ["/.rigor/runs/", "/.rigor/worktrees/"].into_iter().filter(|l| !current.lines().any(|c| c == *l)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let io = |source| WorkspaceError::Io { context: format!("updating {}", exclude.display()), source };
    std::fs::create_dir_all(common.join("info")).map_err(io)?;
    let mut text = current;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    for line in missing {
        text.push_str(line);
        text.push('\n');
    }
    std::fs::write(&exclude, text).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(dir: &Path, script: &str) {
        let ok = std::process::Command::new("sh").arg("-c").arg(script).current_dir(dir).status().unwrap().success();
        assert!(ok, "{script}");
    }

    fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        sh(
            dir.path(),
            "git init -q && git config user.email t@t && git config user.name t && mkdir -p sub && \
             echo one > sub/a.txt && echo keep > b.txt && git add -A && git commit -qm init",
        );
        dir
    }

    #[tokio::test]
    async fn worktree_carries_uncommitted_changes_and_diffs_only_the_agents_work() {
        let dir = repo();
        sh(dir.path(), "echo dirty >> b.txt && echo new > untracked.txt");
        let state = dir.path().join(".rigor/runs/r1");
        let ws = Workspace::create(&dir.path().join("sub"), "r1", WorkspaceMode::Worktree, None, &state).await.unwrap();
        assert!(ws.carried_changes);
        assert!(ws.dir.ends_with("sub"));
        assert_eq!(std::fs::read_to_string(ws.tree_root.join("b.txt")).unwrap(), "keep\ndirty\n");
        assert!(ws.tree_root.join("untracked.txt").exists());
        assert_eq!(ws.diff().await.unwrap(), "", "carried-over changes are not part of the patch");

        std::fs::write(ws.dir.join("a.txt"), "two\n").unwrap();
        std::fs::write(ws.dir.join("c.txt"), "created\n").unwrap();
        let patch = ws.diff().await.unwrap();
        assert!(patch.contains("-one\n+two"), "{patch}");
        assert!(patch.contains("+++ b/sub/c.txt"), "{patch}");
        // The user's checkout is untouched and its status does not show rigor's directories.
        assert_eq!(std::fs::read_to_string(dir.path().join("sub/a.txt")).unwrap(), "one\n");
        let status = git(dir.path(), &["status", "--porcelain"]).await.unwrap();
        assert!(!status.contains(".rigor"), "{status}");

        ws.apply_to_checkout(&patch).await.unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("sub/a.txt")).unwrap(), "two\n");
        ws.remove().await.unwrap();
        assert!(!ws.tree_root.exists());
    }

    #[tokio::test]
    async fn a_directory_outside_git_is_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let err = Workspace::create(dir.path(), "r", WorkspaceMode::Worktree, None, &dir.path().join("s"))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("git init"), "{err}");
    }
}
