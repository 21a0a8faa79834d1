//! Where the agent works: a git worktree of the user's repository (default) or the checkout itself.
//!
//! The user's checkout is never touched in worktree mode: the run gets a detached worktree under
//! `<repo>/.rigor/worktrees/<run-id>` at `HEAD`, with the checkout's uncommitted changes and
//! untracked files carried over, so the agent starts from exactly what the user sees. The
//! starting state is recorded as a git tree (`base_tree`) through a private index file, so the
//! patch is `git diff` of the workspace against that tree, new files included, and neither the
//! user's index nor the worktree's is ever modified.
//!
//! The model writes the tree, so the tree's git (its `.git` file, nested repositories,
//! `.gitattributes`) is never trusted: the snapshot and the patch are computed through a private
//! repository in the run directory (`git/`, objects borrowed from the user's repository) with
//! [`rigor_git::Git::isolated`], which runs no program any configuration names. The user's
//! checkout is read with [`rigor_git::Git::checkout`] only. Untracked symlinks are carried over
//! as symlinks, never as the content they point to.
//!
//! This module runs `git` only; it knows nothing about models or tools.

use std::path::{Path, PathBuf};

use rigor_git::{Git, GitError};

/// Errors setting up or reading a workspace.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// `git` failed.
    #[error(transparent)]
    Git(#[from] GitError),
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
    /// rigor's private repository for snapshots (see the module documentation).
    private_git: PathBuf,
    /// The worktree's administrative directory in the user's repository (worktree mode).
    admin_dir: Option<PathBuf>,
    /// Files the last snapshot left out for their size.
    left_out: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// Files larger than this are left out of the snapshot and the patch (and said so).
pub const MAX_PATCH_FILE_BYTES: u64 = 16 * 1024 * 1024;
const MAX_LEFT_OUT: usize = 1_000;

/// The tools' view of the starting state is the directory the agent works in ([`Workspace::dir`]),
/// as the tools' paths are: with `--repo examples/durations` the proof's diff says `durations.py`
/// and its export is that directory's files, so the project it tests is the one the user named.
#[async_trait::async_trait]
impl rigor_tools::Baseline for Workspace {
    async fn diff(&self) -> Result<String, String> {
        self.diff_within(self.scope().as_deref()).await.map_err(|e| e.to_string())
    }

    async fn export(&self, dir: &Path) -> Result<(), String> {
        self.export_within(self.scope().as_deref(), dir).await.map_err(|e| e.to_string())
    }

    fn checkout(&self) -> &Path {
        &self.repo_root
    }
}

/// Applies `patch` to the user's checkout at `repo_root`; checks first, so a patch that does not
/// apply changes nothing.
pub async fn apply_patch_to_checkout(repo_root: &Path, patch: &str) -> Result<(), WorkspaceError> {
    if patch.trim().is_empty() {
        return Ok(());
    }
    let checkout = Git::checkout(repo_root);
    checkout.run_with_input(&["apply", "--check", "--whitespace=nowarn", "-"], Some(patch.as_bytes())).await?;
    checkout.run_with_input(&["apply", "--whitespace=nowarn", "-"], Some(patch.as_bytes())).await?;
    Ok(())
}

/// Runs git on the user's checkout at `dir` ([`Git::checkout`]) and returns stdout.
pub async fn git(dir: &Path, args: &[&str]) -> Result<String, WorkspaceError> {
    Ok(Git::checkout(dir).run(args).await?)
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
        let private_git = state_dir.join("git");
        let checkout = Git::checkout(&repo_root);
        let common = checkout.run(&["rev-parse", "--path-format=absolute", "--git-common-dir"]).await?;
        let format = checkout.run(&["rev-parse", "--show-object-format"]).await?;
        let common = PathBuf::from(common.trim());
        rigor_git::init_private(&private_git, &common.join("objects"), format.trim()).await?;
        carry_ignore_rules(&checkout, &common, &private_git).await?;

        let (tree_root, carried_changes, admin_dir) = match mode {
            WorkspaceMode::InPlace => (repo_root.clone(), false, None),
            WorkspaceMode::Worktree => {
                let tree_root = repo_root.join(".rigor").join("worktrees").join(run_id);
                let tree_str = tree_root.display().to_string();
                checkout.run(&["worktree", "add", "--detach", &tree_str, &base_commit]).await?;
                let admin = Git::checkout(&tree_root).run(&["rev-parse", "--path-format=absolute", "--git-dir"]).await;
                let admin_dir = admin.ok().map(|dir| PathBuf::from(dir.trim()));
                let carried = if base_commit == head { carry_changes(&repo_root, &tree_root).await } else { Ok(false) };
                match carried {
                    Ok(carried) => (tree_root, carried, admin_dir),
                    Err(err) => {
                        remove_worktree(&repo_root, &tree_root, admin_dir.as_deref()).await;
                        return Err(err);
                    }
                }
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
            private_git,
            admin_dir,
            left_out: Default::default(),
        };
        match ws.snapshot_tree().await {
            Ok(tree) => ws.base_tree = tree,
            Err(err) => {
                let _ = ws.remove().await;
                return Err(err);
            }
        }
        Ok(ws)
    }

    /// Git on the tree the model writes: rigor's private repository, never the tree's own.
    fn tree_git(&self) -> Git {
        Git::isolated(&self.private_git, &self.tree_root).with_index(&self.index_file)
    }

    /// Records the current state of the tree as a git tree object and returns its id.
    async fn snapshot_tree(&self) -> Result<String, WorkspaceError> {
        let git = self.tree_git();
        if !self.index_file.exists() {
            git.run(&["read-tree", &self.base_commit]).await?;
        }
        // A nested repository without a commit cannot be added (git stops); such directories are
        // left out of the snapshot, as they would be of any patch. So are files too large for a
        // patch (generated data, a runaway `yes > f`): hashing and diffing them would take
        // minutes and make a patch nobody can review.
        let mut excludes = vec![":(exclude).rigor".to_string()];
        let changed = git
            .run(&["ls-files", "-z", "--others", "--modified", "--exclude-standard", "--", ".", ":(exclude).rigor"])
            .await
            .unwrap_or_default();
        let mut left_out = Vec::new();
        for file in changed.split('\0').filter(|f| !f.is_empty()) {
            let meta = std::fs::symlink_metadata(self.tree_root.join(file)).ok().filter(|m| m.is_file());
            if let Some(size) = meta.map(|m| m.len()).filter(|&size| size > MAX_PATCH_FILE_BYTES) {
                excludes.push(format!(":(exclude,literal){file}"));
                left_out.push(format!("{file} ({} MiB)", size / (1024 * 1024)));
            }
        }
        if let Ok(mut list) = self.left_out.lock() {
            *list = left_out;
        }
        loop {
            let mut args = vec!["add", "-A", "--", "."];
            args.extend(excludes.iter().map(String::as_str));
            match git.run(&args).await {
                Ok(_) => break,
                Err(GitError::Failed { stderr, .. }) if excludes.len() < 64 + MAX_LEFT_OUT => {
                    let Some(dir) = stderr
                        .lines()
                        .find_map(|l| l.strip_prefix("error: '")?.strip_suffix("' does not have a commit checked out"))
                    else {
                        return Err(GitError::Failed {
                            args: args.join(" "),
                            dir: self.tree_root.display().to_string(),
                            stderr,
                        }
                        .into());
                    };
                    excludes.push(format!(":(exclude,literal){}", dir.trim_end_matches('/')));
                }
                Err(err) => return Err(err.into()),
            }
        }
        Ok(git.run(&["write-tree"]).await?.trim().to_string())
    }

    /// The files the last snapshot (and so the last [`Workspace::diff`]) left out because they are
    /// larger than [`MAX_PATCH_FILE_BYTES`], with their sizes.
    pub fn left_out(&self) -> Vec<String> {
        self.left_out.lock().map(|list| list.clone()).unwrap_or_default()
    }

    /// The patch: a binary-safe unified diff of the workspace against its starting state.
    pub async fn diff(&self) -> Result<String, WorkspaceError> {
        self.diff_within(None).await
    }

    /// The directory the agent works in, relative to the tree's top level, with `/` separators;
    /// `None` when it is the top level.
    fn scope(&self) -> Option<String> {
        let relative = self.dir.strip_prefix(&self.tree_root).ok()?;
        let parts: Vec<String> = relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
        (!parts.is_empty()).then(|| parts.join("/"))
    }

    /// [`Workspace::diff`] of the files under `scope` only, with paths relative to it.
    async fn diff_within(&self, scope: Option<&str>) -> Result<String, WorkspaceError> {
        let now = self.snapshot_tree().await?;
        let relative = scope.map(|s| format!("--relative={s}/"));
        let mut args = vec!["diff", "--binary", "--no-color", "--no-ext-diff", "--no-textconv"];
        args.extend(relative.as_deref());
        args.extend([self.base_tree.as_str(), now.as_str()]);
        Ok(self.tree_git().run(&args).await?)
    }

    /// Records the tree's current state, for [`Workspace::restore`] (a git tree object in rigor's
    /// private repository; the tree's own `.git` is not used).
    pub async fn snapshot(&self) -> Result<String, WorkspaceError> {
        self.snapshot_tree().await
    }

    /// Puts the tree back to the state `snapshot` recorded and returns the paths that changed
    /// since (modified, created or deleted files, which are restored, deleted or recreated). Git
    /// does it as a checkout does (`read-tree -m -u` from the current state to the snapshot), so
    /// it never follows a symlink out of the tree. What the snapshot left out (ignored files, files
    /// too large for a patch) is left alone.
    pub async fn restore(&self, snapshot: &str) -> Result<Vec<String>, WorkspaceError> {
        let now = self.snapshot_tree().await?;
        let git = self.tree_git();
        let changed = git.run(&["diff", "--name-only", "-z", "--no-renames", snapshot, &now]).await?;
        let files: Vec<String> = changed.split('\0').filter(|f| !f.is_empty()).map(str::to_string).collect();
        if !files.is_empty() {
            git.run(&["read-tree", "-m", "-u", &now, snapshot]).await?;
        }
        Ok(files)
    }

    /// Applies `patch` to the tree (a resumed conversation starts from the changes of the one it
    /// continues); checks first, so a patch that does not apply changes nothing.
    pub async fn apply_patch(&self, patch: &str) -> Result<(), WorkspaceError> {
        if patch.trim().is_empty() {
            return Ok(());
        }
        let git = Git::checkout(&self.tree_root);
        git.run_with_input(&["apply", "--check", "--whitespace=nowarn", "-"], Some(patch.as_bytes())).await?;
        git.run_with_input(&["apply", "--whitespace=nowarn", "-"], Some(patch.as_bytes())).await?;
        Ok(())
    }

    /// Writes the starting state's files into the empty directory `dir` (through the private
    /// repository and a throwaway index: nothing the tree configures runs).
    pub async fn export_base(&self, dir: &Path) -> Result<(), WorkspaceError> {
        self.export_within(None, dir).await
    }

    /// [`Workspace::export_base`] of the files under `scope` only, written at the top of `dir`.
    async fn export_within(&self, scope: Option<&str>, dir: &Path) -> Result<(), WorkspaceError> {
        let index = dir.with_extension("export-index");
        let git = Git::isolated(&self.private_git, dir).with_index(&index);
        let tree = match scope {
            Some(scope) => format!("{}:{scope}", self.base_tree),
            None => self.base_tree.clone(),
        };
        git.run(&["read-tree", &tree]).await?;
        let result = git.run(&["checkout-index", "--all", "--force"]).await;
        let _ = std::fs::remove_file(&index);
        result?;
        Ok(())
    }

    /// Applies `patch` to the user's checkout (for `--apply`); checks first, so a patch that does
    /// not apply changes nothing.
    pub async fn apply_to_checkout(&self, patch: &str) -> Result<(), WorkspaceError> {
        if self.mode == WorkspaceMode::InPlace {
            return Ok(());
        }
        apply_patch_to_checkout(&self.repo_root, patch).await
    }

    /// Removes the worktree (in-place workspaces are left alone).
    pub async fn remove(&self) -> Result<(), WorkspaceError> {
        if self.mode == WorkspaceMode::Worktree {
            remove_worktree(&self.repo_root, &self.tree_root, self.admin_dir.as_deref()).await;
            if self.tree_root.exists() {
                return Err(WorkspaceError::Invalid(format!(
                    "{} could not be deleted; remove it and run `git worktree prune`",
                    self.tree_root.display()
                )));
            }
        }
        Ok(())
    }
}

/// Deletes a worktree and its administrative entry. The files are deleted directly (`git
/// worktree remove` first compares every file with the index: minutes on a 100k-file tree);
/// directories the agent made unwritable are made writable again first. Falls back to `git
/// worktree remove --force` when the admin directory is unknown.
async fn remove_worktree(repo_root: &Path, tree_root: &Path, admin_dir: Option<&Path>) {
    let tree = tree_root.to_path_buf();
    let _ = tokio::task::spawn_blocking(move || {
        if std::fs::remove_dir_all(&tree).is_err() {
            make_writable(&tree);
            let _ = std::fs::remove_dir_all(&tree);
        }
    })
    .await;
    match admin_dir {
        Some(admin) if admin.parent().is_some_and(|p| p.ends_with("worktrees")) => {
            let _ = std::fs::remove_dir_all(admin);
        }
        _ => {
            let path = tree_root.display().to_string();
            let _ = Git::checkout(repo_root).run(&["worktree", "remove", "--force", &path]).await;
        }
    }
}

/// Gives the owner write and search permission on every directory below `dir` (not following
/// symlinks), so that a tree the agent locked can be deleted.
fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(dir) else { return };
    if !meta.is_dir() {
        return;
    }
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(meta.permissions().mode() | 0o700));
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            make_writable(&entry.path());
        }
    }
}

/// Copies the checkout's uncommitted changes (tracked diffs and untracked files) into the
/// worktree. Returns whether there were any. Symlinks are copied as symlinks; sockets and FIFOs
/// are left out.
async fn carry_changes(repo_root: &Path, tree_root: &Path) -> Result<bool, WorkspaceError> {
    let args =
        ["diff", "HEAD", "--binary", "--no-color", "--no-ext-diff", "--no-textconv", "--", ".", ":(exclude).rigor"];
    let diff = git(repo_root, &args).await?;
    if !diff.trim().is_empty() {
        Git::checkout(tree_root).run_with_input(&["apply", "--whitespace=nowarn", "-"], Some(diff.as_bytes())).await?;
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
        let meta = std::fs::symlink_metadata(&from).map_err(io)?;
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from).map_err(io)?, &to).map_err(io)?;
        } else if meta.is_file() {
            std::fs::copy(&from, &to).map_err(io)?;
        }
    }
    Ok(!diff.trim().is_empty() || !files.is_empty())
}

/// Gives rigor's private repository the user's ignore rules that live outside the tree (the
/// repository's `info/exclude` and the user's global excludes file), so that the patch leaves out
/// what the user's own `git status` would.
async fn carry_ignore_rules(checkout: &Git, common: &Path, private_git: &Path) -> Result<(), WorkspaceError> {
    let io = |source| WorkspaceError::Io { context: format!("preparing {}", private_git.display()), source };
    if let Ok(exclude) = std::fs::read(common.join("info").join("exclude")) {
        std::fs::create_dir_all(private_git.join("info")).map_err(io)?;
        std::fs::write(private_git.join("info").join("exclude"), exclude).map_err(io)?;
    }
    let global = match checkout.run(&["config", "--path", "--get", "core.excludesFile"]).await {
        Ok(path) => Some(PathBuf::from(path.trim())),
        Err(_) => dirs::config_dir().map(|d| d.join("git").join("ignore")),
    };
    if let Some(global) = global.filter(|p| p.is_file()) {
        let config = private_git.join("config").display().to_string();
        let global = global.display().to_string();
        checkout.run(&["config", "--file", &config, "core.excludesFile", &global]).await?;
    }
    Ok(())
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

        // The tools (the proof) see the directory the agent works in, as their paths are.
        std::fs::write(ws.tree_root.join("b.txt"), "outside\n").unwrap();
        let scoped = rigor_tools::Baseline::diff(&ws).await.unwrap();
        assert!(scoped.contains("+++ b/c.txt") && scoped.contains("+++ b/a.txt"), "{scoped}");
        assert!(!scoped.contains("b.txt\n") && !scoped.contains("outside"), "{scoped}");
        let exported = tempfile::tempdir().unwrap();
        rigor_tools::Baseline::export(&ws, exported.path()).await.unwrap();
        assert_eq!(std::fs::read_to_string(exported.path().join("a.txt")).unwrap(), "one\n");
        assert!(!exported.path().join("b.txt").exists() && !exported.path().join("sub").exists());
        std::fs::write(ws.tree_root.join("b.txt"), "keep\ndirty\n").unwrap();

        ws.apply_to_checkout(&patch).await.unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("sub/a.txt")).unwrap(), "two\n");
        ws.remove().await.unwrap();
        assert!(!ws.tree_root.exists());
    }

    #[tokio::test]
    async fn the_patch_is_computed_without_running_what_the_tree_configures() {
        let dir = repo();
        let outside = tempfile::tempdir().unwrap();
        let pwned = outside.path().join("PWNED");
        let ws = Workspace::create(dir.path(), "r2", WorkspaceMode::Worktree, None, &dir.path().join(".rigor/runs/r2"))
            .await
            .unwrap();
        // What a model can do inside the sandbox: its own repository with fsmonitor and a clean
        // filter, the tree's `.git` file pointed at it, attributes naming the filter.
        let hook = format!("sh -c 'id >> {}'; false", pwned.display());
        sh(
            &ws.tree_root,
            "git init -q .evil && printf 'gitdir: .evil/.git\\n' > .git && echo '* filter=x diff=x' > .gitattributes",
        );
        for key in ["core.fsmonitor", "filter.x.clean", "filter.x.process", "diff.x.textconv"] {
            let ok = std::process::Command::new("git")
                .args(["-C", ".evil", "config", key, &hook])
                .current_dir(&ws.tree_root)
                .status()
                .unwrap()
                .success();
            assert!(ok);
        }
        std::fs::write(ws.tree_root.join("b.txt"), "changed\n").unwrap();
        let patch = ws.diff().await.unwrap();
        assert!(patch.contains("+changed"), "{patch}");
        assert!(!pwned.exists(), "a program the tree configured ran on the host");
        ws.remove().await.unwrap();
        assert!(!ws.tree_root.exists());
        let list = git(dir.path(), &["worktree", "list", "--porcelain"]).await.unwrap();
        assert!(!list.contains("r2"), "{list}");
    }

    #[tokio::test]
    async fn untracked_symlinks_are_carried_as_symlinks() {
        let dir = repo();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("id_rsa"), "SECRET KEY\n").unwrap();
        std::os::unix::fs::symlink(outside.path().join("id_rsa"), dir.path().join("key-link")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("dir-link")).unwrap();
        let ws = Workspace::create(dir.path(), "r3", WorkspaceMode::Worktree, None, &dir.path().join(".rigor/runs/r3"))
            .await
            .unwrap();
        for link in ["key-link", "dir-link"] {
            let meta = std::fs::symlink_metadata(ws.tree_root.join(link)).unwrap();
            assert!(meta.file_type().is_symlink(), "{link} became a copy of what it points to");
        }
        ws.remove().await.unwrap();
    }

    #[tokio::test]
    async fn files_too_large_for_a_patch_are_left_out_and_named() {
        let dir = repo();
        let ws = Workspace::create(dir.path(), "r4", WorkspaceMode::Worktree, None, &dir.path().join(".rigor/runs/r4"))
            .await
            .unwrap();
        let big = vec![b'y'; MAX_PATCH_FILE_BYTES as usize + 1];
        std::fs::write(ws.tree_root.join("bomb.txt"), &big).unwrap();
        std::fs::write(ws.tree_root.join("b.txt"), "small change\n").unwrap();
        let patch = ws.diff().await.unwrap();
        assert!(patch.contains("+small change") && !patch.contains("bomb.txt"), "{}", &patch[..patch.len().min(500)]);
        assert_eq!(ws.left_out(), vec!["bomb.txt (16 MiB)".to_string()]);
        ws.remove().await.unwrap();
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
