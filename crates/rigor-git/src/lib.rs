//! The one way rigor runs `git` on the host.
//!
//! rigor runs git outside the sandbox on the model's behalf (to snapshot the workspace and compute
//! the patch). Git runs programs named by its configuration: `core.fsmonitor`, hooks,
//! `filter.*.clean`/`smudge`/`process` drivers, `diff.*.textconv`, `core.pager`, `core.sshCommand`,
//! credential helpers... and it finds that configuration through files the model can write: the
//! workspace's `.git` file (`gitdir: elsewhere`), a nested repository, `.gitattributes` naming a
//! driver. So every git command rigor runs is built here, in one of two trust levels:
//!
//! - [`Git::isolated`]: for trees the model has written. Git reads **no configuration file but
//!   rigor's own**: the repository is a private git directory rigor made ([`init_private`]), whose
//!   objects borrow the user's through `objects/info/alternates`; the work tree and the git
//!   directory are passed explicitly, so no `.git` file or directory in the tree is ever read; the
//!   global and system files are `/dev/null`. A driver named in `.gitattributes` is thus undefined,
//!   and git runs nothing but itself.
//! - [`Git::checkout`]: for the user's own checkout, before the model has acted or where it cannot
//!   write (the user's git directory is read-only in the sandbox). The user's configuration is read
//!   (line endings, identity, LFS), but every key that names a program to run is overridden
//!   on the command line ([`SAFE_OVERRIDES`]), hooks are pointed at nothing, and the caller passes
//!   `--no-ext-diff --no-textconv` to diffs.
//!
//! In both, inherited `GIT_*` variables are dropped (they can name a git directory, a config, an
//! ssh command), prompts and pagers are off, and stdin is closed unless bytes are given.
//!
//! This crate only runs git; it knows nothing of workspaces, models or the sandbox.

pub mod diff;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// `-c` settings given to every git command: each names a program git could otherwise run, or a
/// behaviour that runs one (`gc.auto` starts `git gc`, which runs hooks).
pub const SAFE_OVERRIDES: &[&str] = &[
    "core.fsmonitor=false",
    "core.hooksPath=/dev/null",
    "core.pager=cat",
    "core.editor=false",
    "core.sshCommand=false",
    "core.askPass=false",
    "credential.helper=",
    "protocol.allow=never",
    "gc.auto=0",
    "maintenance.auto=false",
    "core.untrackedCache=false",
    "submodule.recurse=false",
    "diff.noprefix=false",
    "color.ui=never",
];

/// Errors of a git command.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// git ran and failed.
    #[error("`git {args}` failed in {dir}: {stderr}")]
    Failed {
        /// The arguments.
        args: String,
        /// Where it ran.
        dir: String,
        /// What git said.
        stderr: String,
    },
    /// git could not be started, or its pipes failed.
    #[error("cannot run git in {dir}: {source} (is git installed and on PATH?)")]
    Spawn {
        /// Where it was to run.
        dir: String,
        /// The error.
        source: std::io::Error,
    },
}

/// A git invocation context: where it runs, which repository it may read, how much it trusts.
#[derive(Debug, Clone)]
pub struct Git {
    cwd: PathBuf,
    /// `Some` in isolated mode: the private git directory and the work tree.
    isolated: Option<(PathBuf, PathBuf)>,
    index_file: Option<PathBuf>,
}

impl Git {
    /// Git on the user's own checkout at `dir`: its configuration is honoured except for every
    /// key that runs a program ([`SAFE_OVERRIDES`]).
    pub fn checkout(dir: impl Into<PathBuf>) -> Self {
        Self { cwd: dir.into(), isolated: None, index_file: None }
    }

    /// Git on `work_tree`, a tree the model may have written, through the private repository
    /// `git_dir` (made by [`init_private`]): no configuration but rigor's is read, and nothing in
    /// the tree decides which repository is used.
    pub fn isolated(git_dir: impl Into<PathBuf>, work_tree: impl Into<PathBuf>) -> Self {
        let work_tree = work_tree.into();
        Self { cwd: work_tree.clone(), isolated: Some((git_dir.into(), work_tree)), index_file: None }
    }

    /// The same, with `GIT_INDEX_FILE` set to `index` (a private index: the repository's own
    /// index is never touched).
    pub fn with_index(mut self, index: impl Into<PathBuf>) -> Self {
        self.index_file = Some(index.into());
        self
    }

    /// The command for `git args…`, configured as described in the module documentation.
    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new("git");
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("GIT_") {
                cmd.env_remove(&name);
            }
        }
        cmd.env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_PAGER", "cat")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_ATTR_NOSYSTEM", "1")
            .env("GIT_NO_REPLACE_OBJECTS", "1")
            .env("GIT_OPTIONAL_LOCKS", "0")
            .env_remove("SSH_ASKPASS")
            .env_remove("PAGER");
        if let Some((git_dir, work_tree)) = &self.isolated {
            cmd.env("GIT_CONFIG_GLOBAL", "/dev/null").env("GIT_CONFIG_SYSTEM", "/dev/null");
            let mut dir_arg = OsString::from("--git-dir=");
            dir_arg.push(git_dir);
            let mut tree_arg = OsString::from("--work-tree=");
            tree_arg.push(work_tree);
            cmd.arg(dir_arg).arg(tree_arg);
        }
        if let Some(index) = &self.index_file {
            cmd.env("GIT_INDEX_FILE", index);
        }
        for setting in SAFE_OVERRIDES {
            cmd.arg("-c").arg(setting);
        }
        cmd.args(args).current_dir(&self.cwd);
        cmd
    }

    /// Runs `git args…` and returns its stdout.
    pub async fn run(&self, args: &[&str]) -> Result<String, GitError> {
        self.run_with_input(args, None).await
    }

    /// Runs `git args…` with `stdin` as its standard input and returns its stdout.
    pub async fn run_with_input(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<String, GitError> {
        let mut cmd = tokio::process::Command::from(self.command(args));
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let spawn_err = |source| GitError::Spawn { dir: self.cwd.display().to_string(), source };
        let mut child = cmd.spawn().map_err(spawn_err)?;
        if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
            use tokio::io::AsyncWriteExt;
            pipe.write_all(bytes).await.map_err(spawn_err)?;
        }
        let out = child.wait_with_output().await.map_err(spawn_err)?;
        self.finish(args, out)
    }

    /// [`Git::run`] for callers without a runtime.
    pub fn run_blocking(&self, args: &[&str]) -> Result<String, GitError> {
        let out = self
            .command(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| GitError::Spawn { dir: self.cwd.display().to_string(), source })?;
        self.finish(args, out)
    }

    fn finish(&self, args: &[&str], out: std::process::Output) -> Result<String, GitError> {
        if !out.status.success() {
            return Err(GitError::Failed {
                args: args.join(" "),
                dir: self.cwd.display().to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// Makes a private bare repository at `git_dir` whose object store borrows `objects_dir` (the
/// user's repository's `objects`, read only: new objects are written to the private store) and
/// whose object format is `object_format` (`sha1` or `sha256`). No template is copied (no sample
/// hooks), and its configuration holds nothing that runs a program.
pub async fn init_private(git_dir: &Path, objects_dir: &Path, object_format: &str) -> Result<(), GitError> {
    let spawn_err = |source| GitError::Spawn { dir: git_dir.display().to_string(), source };
    std::fs::create_dir_all(git_dir).map_err(spawn_err)?;
    let format = format!("--object-format={object_format}");
    let dir = git_dir.to_string_lossy();
    let mut init = Git::checkout(git_dir).command(&["init", "--quiet", "--bare", "--template=", &format, &dir]);
    init.env("GIT_CONFIG_GLOBAL", "/dev/null").env("GIT_CONFIG_SYSTEM", "/dev/null");
    let out = tokio::process::Command::from(init)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(spawn_err)?;
    Git::checkout(git_dir).finish(&["init", "--bare"], out)?;
    let info = git_dir.join("objects").join("info");
    std::fs::create_dir_all(&info).map_err(spawn_err)?;
    let mut line = objects_dir.as_os_str().to_owned();
    line.push("\n");
    std::fs::write(info.join("alternates"), line.as_encoded_bytes()).map_err(spawn_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sh(dir: &Path, script: &str) {
        let ok = std::process::Command::new("sh").arg("-c").arg(script).current_dir(dir).status().unwrap().success();
        assert!(ok, "{script}");
    }

    /// A repository with one commit, plus a canary directory outside it.
    fn world() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&repo).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        sh(
            &repo,
            "git init -q && git config user.email t@t && git config user.name t && echo a > a.txt && git add -A && git commit -qm init",
        );
        (dir, repo, outside)
    }

    #[tokio::test]
    async fn an_isolated_git_runs_no_program_the_tree_or_the_repository_names() {
        let (_dir, repo, outside) = world();
        let pwned = outside.join("PWNED");
        let hook = format!("sh -c 'echo pwned >> {}'; false", pwned.display());
        // The attacker's repository: fsmonitor, a clean filter, a textconv driver, hooks, and a
        // `.git` file in the tree pointing at it.
        sh(&repo, "git init -q .evil");
        let keys = ["core.fsmonitor", "filter.x.clean", "filter.x.process", "diff.x.textconv", "core.pager"];
        for (config_dir, key) in [".evil", "."].into_iter().flat_map(|d| keys.map(|k| (d, k))) {
            // The user repository's own config too (in place, a model could have written it).
            let ok = std::process::Command::new("git")
                .args(["-C", config_dir, "config", key, &hook])
                .current_dir(&repo)
                .status()
                .unwrap()
                .success();
            assert!(ok);
        }
        std::fs::write(repo.join(".gitattributes"), "* filter=x diff=x\n").unwrap();
        std::fs::write(repo.join("a.txt"), "changed\n").unwrap();

        let common = repo.join(".git");
        let private = tempfile::tempdir().unwrap();
        init_private(private.path(), &common.join("objects"), "sha1").await.unwrap();
        // The tree's `.git` now points at the attacker's repository.
        std::fs::rename(repo.join(".git"), repo.join(".real-git")).unwrap();
        std::fs::write(repo.join(".git"), "gitdir: .evil/.git\n").unwrap();
        let objects = repo.join(".real-git/objects");
        std::fs::write(private.path().join("objects/info/alternates"), format!("{}\n", objects.display())).unwrap();

        let git = Git::isolated(private.path(), &repo).with_index(private.path().join("index"));
        let head = Git::checkout(&repo).command(&["--git-dir=.real-git", "rev-parse", "HEAD"]).output().unwrap();
        let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
        git.run(&["read-tree", &head]).await.unwrap();
        git.run(&["add", "-A", "--", ".", ":(exclude).evil", ":(exclude).real-git"]).await.unwrap();
        let tree = git.run(&["write-tree"]).await.unwrap();
        let diff = git.run(&["diff", "--no-ext-diff", "--no-textconv", "--binary", &head, tree.trim()]).await.unwrap();
        assert!(diff.contains("+changed"), "{diff}");
        git.run(&["status", "--porcelain"]).await.unwrap();
        assert!(!pwned.exists(), "a program named by the attacker's configuration ran on the host");
    }

    #[tokio::test]
    async fn a_checkout_git_ignores_fsmonitor_and_hooks() {
        let (_dir, repo, outside) = world();
        let pwned = outside.join("PWNED");
        let hook = format!("sh -c 'echo pwned >> {}'; false", pwned.display());
        let ok = std::process::Command::new("git")
            .args(["config", "core.fsmonitor", &hook])
            .current_dir(&repo)
            .status()
            .unwrap()
            .success();
        assert!(ok);
        std::fs::write(repo.join(".git/hooks/post-checkout"), format!("#!/bin/sh\necho hook >> {}\n", pwned.display()))
            .unwrap();
        sh(&repo, "chmod +x .git/hooks/post-checkout");
        let git = Git::checkout(&repo);
        git.run(&["status", "--porcelain"]).await.unwrap();
        git.run(&["worktree", "add", "--detach", "wt", "HEAD"]).await.unwrap();
        assert!(!pwned.exists(), "fsmonitor or a hook ran");
    }
}
