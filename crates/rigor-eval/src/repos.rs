//! Local clones and per-instance worktrees.
//!
//! [`find_clone`] is the one way rigor locates a repository of a dataset row under a `--repos`
//! directory, for the harness and the localization evaluation alike (see there for the layouts).
//! [`Worktree::create`] makes a fresh detached git worktree at an
//! instance's `base_commit`; when the clone lacks some blobs (a partial mirror without its largest
//! files) the checkout leaves exactly those paths out, through a sparse checkout, and says so.
//! [`CloneAt`] gives an environment build its sources the same way.
//! Worktree bookkeeping in one clone is serialised; everything else runs in parallel.
//! Nothing is fetched from the network here: a commit missing from the clone is an error telling
//! the user to fetch it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rigor_testing::env::Sources;
use rigor_testing::process::{Cmd, git};

/// Why a repository or worktree is not available.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// No clone of the repository under the repos directory.
    #[error("no clone of {repo} under {dir}: looked for {} ({remedy})", looked_for.join(", "))]
    NotFound {
        /// `owner/name`.
        repo: String,
        /// The repos directory.
        dir: String,
        /// The paths tried, in order.
        looked_for: Vec<String>,
        /// What to do.
        remedy: String,
    },
    /// A directory is there, but the caller needs a git repository.
    #[error(
        "{path} is a directory but not a git repository (no .git, not a bare repository); {repo} must be checked out at a commit: replace it with a git clone of {repo}"
    )]
    NotGit {
        /// `owner/name`.
        repo: String,
        /// The directory found.
        path: String,
    },
    /// The row's `repo` is not `name` or `owner/name`.
    #[error("repository name {repo:?} is not name or owner/name")]
    BadName {
        /// The name as given.
        repo: String,
    },
    /// A git command failed.
    #[error("{0}")]
    Git(String),
}

/// What [`find_clone`] accepts as the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// Only a git repository (a working tree with `.git`, or a bare repository): the caller checks
    /// out a commit (the harness; a localization row with a `base_commit`).
    Git,
    /// A git repository or a plain directory: the caller uses the files as they are (a
    /// localization row with an empty `base_commit`, e.g. an unpacked source distribution).
    Directory,
}

/// Whether `dir` is a git repository: a working tree (`.git` directory or file) or bare.
fn is_git(dir: &Path) -> bool {
    dir.join(".git").exists() || (dir.join("HEAD").is_file() && dir.join("objects").is_dir())
}

/// Finds the repository `repo` (`owner/name`, or `name`) under `dir`.
///
/// Tried in order: `DIR/owner__name`, `DIR/owner/name`, `DIR/name`, then each with `.git`
/// appended (bare mirrors); symbolic links are followed. With [`Accept::Git`] the first of
/// them that is a git repository wins, and a plain directory where a clone was expected is an
/// error ([`RepoError::NotGit`]) rather than a silent skip; with [`Accept::Directory`] the first
/// that is a directory wins, git or not. A name with other components (absolute, `..`, more than
/// one `/`) is refused, so that a row cannot point outside `dir`.
pub fn find_clone(dir: &Path, repo: &str, accept: Accept) -> Result<PathBuf, RepoError> {
    let parts: Vec<&str> = repo.split('/').collect();
    let valid = |p: &str| !p.is_empty() && p != "." && p != ".." && !p.contains('\\');
    if parts.len() > 2 || !parts.iter().all(|p| valid(p)) {
        return Err(RepoError::BadName { repo: repo.into() });
    }
    let name = parts[parts.len() - 1];
    let mut stems = vec![repo.replace('/', "__"), repo.to_string(), name.to_string()];
    stems.dedup();
    let mut candidates: Vec<PathBuf> = stems.iter().map(|s| dir.join(s)).collect();
    candidates.extend(stems.iter().map(|s| dir.join(format!("{s}.git"))));
    candidates.dedup();
    let found = match accept {
        Accept::Git => candidates.iter().find(|c| is_git(c)),
        Accept::Directory => candidates.iter().find(|c| c.is_dir()),
    };
    if let Some(found) = found {
        return Ok(found.clone());
    }
    if let Some(plain) = candidates.iter().find(|c| c.is_dir()) {
        return Err(RepoError::NotGit { repo: repo.into(), path: plain.display().to_string() });
    }
    let flat = dir.join(&stems[0]).display().to_string();
    let remedy = match accept {
        Accept::Git => format!("git clone it to {flat}"),
        Accept::Directory => format!("git clone it to {flat}, or put its source tree there"),
    };
    Err(RepoError::NotFound {
        repo: repo.into(),
        dir: dir.display().to_string(),
        looked_for: candidates.iter().map(|c| c.display().to_string()).collect(),
        remedy,
    })
}

fn clone_lock(clone: &Path) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let map = LOCKS.get_or_init(Default::default);
    let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
    map.entry(clone.to_path_buf()).or_default().clone()
}

/// The lock on `clone`'s worktree list shared with other processes (the array tasks of one
/// Slurm job add and prune worktrees of the same clone at once: seen failing under load, `git
/// worktree add` said only "Preparing worktree"), in its git directory; `None` (no lock, as
/// before) when it cannot be taken.
async fn across_processes(clone: &Path) -> Option<rigor_testing::env::FileLock> {
    let dot_git = clone.join(".git");
    let git_dir = if dot_git.is_dir() { dot_git } else { clone.to_path_buf() };
    rigor_testing::env::FileLock::acquire(git_dir.join("rigor-worktrees.lock")).await.ok()
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
        let across = across_processes(clone).await;
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
        drop((across, guard));
        let missing = populate(dir, commit).await?;
        Ok(Worktree { clone: clone.to_path_buf(), dir: dir.to_path_buf(), commit: commit.into(), missing })
    }

    /// Removes the worktree and its directory.
    pub async fn remove(&self) {
        let lock = clone_lock(&self.clone);
        let _guard = lock.lock().await;
        let _across = across_processes(&self.clone).await;
        let _ = git(&self.clone, &["worktree", "remove", "--force", &self.dir.to_string_lossy()]).await;
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = git(&self.clone, &["worktree", "prune"]).await;
    }
}

/// Checks `commit` out in the git working tree `dir` (not yet populated); when the object store
/// lacks some blobs (a partial mirror), exactly those paths are left out, through a sparse
/// checkout, and returned.
async fn populate(dir: &Path, commit: &str) -> Result<Vec<String>, RepoError> {
    let mut missing = Vec::new();
    if let Err(first) = git(dir, &["reset", "-q", "--hard", commit]).await {
        missing = missing_paths(dir, commit).await?;
        if missing.is_empty() {
            return Err(RepoError::Git(first));
        }
        // The patterns are written, and sparse checkout turned on, for this one reset: `git
        // sparse-checkout set` needs the worktree's own config, which a clone without
        // `core.repositoryformatversion = 1` cannot have (its worktreeConfig extension is
        // ignored). The skip-worktree bits it leaves keep the paths out afterwards.
        let git_dir = git(dir, &["rev-parse", "--absolute-git-dir"]).await.map_err(RepoError::Git)?;
        let info = Path::new(&git_dir).join("info");
        let mut patterns = vec!["/*".to_string()];
        patterns.extend(missing.iter().map(|p| format!("!/{p}")));
        std::fs::create_dir_all(&info)
            .and_then(|()| std::fs::write(info.join("sparse-checkout"), patterns.join("\n") + "\n"))
            .map_err(|e| RepoError::Git(format!("cannot write the sparse-checkout patterns in {git_dir}: {e}")))?;
        let sparse = ["-c", "core.sparseCheckout=true", "-c", "core.sparseCheckoutCone=false"];
        git(dir, &[&sparse[..], &["reset", "-q", "--hard", commit]].concat()).await.map_err(RepoError::Git)?;
    }
    Ok(missing)
}

/// The sources of an environment build: a checkout of `clone` at `commit`, made in the cache
/// entry (and kept there, as the environment's installed project may point into it). It is a
/// repository of its own that borrows the clone's objects (`git clone --shared`), not a worktree
/// of the clone: nothing of it is registered in the user's clone, which `git worktree list`
/// would otherwise show for as long as the cache entry lives.
#[derive(Debug, Clone, Copy)]
pub struct CloneAt<'a> {
    /// The clone.
    pub clone: &'a Path,
    /// The environment commit.
    pub commit: &'a str,
}

impl Sources for CloneAt<'_> {
    async fn check_out(&self, dest: &Path) -> Result<Vec<String>, String> {
        let dest_s = dest.display().to_string();
        let parent = dest.parent().unwrap_or(dest);
        let common = git(self.clone, &["rev-parse", "--path-format=absolute", "--git-common-dir"]).await?;
        git(parent, &["init", "-q", &dest_s]).await?;
        // The clone's objects borrowed (alternates), its tags copied (a build backend such as
        // setuptools-scm describes the commit by them).
        let own = dest.join(".git");
        let objects = Path::new(&common).join("objects");
        std::fs::write(own.join("objects/info/alternates"), format!("{}\n", objects.display()))
            .map_err(|e| format!("cannot borrow the objects of {}: {e}", self.clone.display()))?;
        if let Ok(refs) = std::fs::read_to_string(Path::new(&common).join("packed-refs")) {
            let mut tags = String::new();
            let mut keep = false;
            for line in refs.lines() {
                if line.starts_with('^') {
                    if keep {
                        tags.push_str(line);
                        tags.push('\n');
                    }
                    continue;
                }
                keep = line.contains(" refs/tags/");
                if keep {
                    tags.push_str(line);
                    tags.push('\n');
                }
            }
            let _ = std::fs::write(own.join("packed-refs"), tags);
        }
        let missing = populate(dest, self.commit).await.map_err(|e| e.to_string())?;
        let mut notes = Vec::new();
        if !missing.is_empty() {
            notes.push(format!("left out (absent from the clone): {}", missing.join(", ")));
        }
        Ok(notes)
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
    let done = Cmd::new("git", &["cat-file", "--batch-check"], dir)
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

    /// An environment's sources are a repository of their own: the user's clone does not list
    /// them as a worktree (they live as long as the cache entry), yet they have the commit, its
    /// files and the clone's tags (for setuptools-scm).
    #[tokio::test]
    async fn environment_sources_are_not_registered_as_worktrees_of_the_clone() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        git_init(&repo, false);
        std::fs::write(repo.join("setup.py"), "setup()\n").unwrap();
        let run = |args: &[&str]| {
            let out = std::process::Command::new("git").args(args).current_dir(&repo).output().unwrap();
            assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        run(&["add", "-A"]);
        run(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"]);
        run(&["tag", "v1.2.3"]);
        run(&["pack-refs", "--all"]);
        let commit = run(&["rev-parse", "HEAD"]);
        let dest = dir.path().join("entry/src");
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        CloneAt { clone: &repo, commit: &commit }.check_out(&dest).await.unwrap();
        assert_eq!(std::fs::read_to_string(dest.join("setup.py")).unwrap(), "setup()\n");
        assert_eq!(git(&dest, &["describe", "--tags"]).await.unwrap(), "v1.2.3");
        assert_eq!(run(&["worktree", "list"]).lines().count(), 1, "{}", run(&["worktree", "list"]));
    }

    /// A mirror without some blobs (a fetch that left out the largest files), and with the
    /// `worktreeConfig` extension but no repository format version (so git ignores the extension
    /// and refuses per-worktree config): the worktree leaves exactly those files out.
    #[tokio::test]
    async fn a_clone_missing_blobs_gives_a_worktree_without_those_files() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        git_init(&repo, false);
        let run = |args: &[&str]| {
            let out = std::process::Command::new("git").args(args).current_dir(&repo).output().unwrap();
            assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        std::fs::create_dir_all(repo.join("data")).unwrap();
        std::fs::write(repo.join("data/big.bin"), "large data").unwrap();
        std::fs::write(repo.join("code.py"), "x = 1\n").unwrap();
        run(&["add", "-A"]);
        run(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"]);
        let commit = run(&["rev-parse", "HEAD"]);
        let blob = run(&["rev-parse", "HEAD:data/big.bin"]);
        std::fs::remove_file(repo.join(".git/objects").join(&blob[..2]).join(&blob[2..])).unwrap();
        std::fs::write(repo.join(".git/config"), "[extensions]\n\tworktreeConfig = true\n").unwrap();
        let tree = Worktree::create(&repo, &commit, &dir.path().join("tree")).await.unwrap();
        assert_eq!(tree.missing, ["data/big.bin"]);
        assert!(tree.dir.join("code.py").is_file() && !tree.dir.join("data/big.bin").exists());
        tree.remove().await;
    }

    /// A real repository made by `git init` (bare: a mirror's layout).
    fn git_init(path: &Path, bare: bool) {
        std::fs::create_dir_all(path).unwrap();
        let mut cmd = std::process::Command::new("git");
        cmd.args(["init", "-q"]);
        if bare {
            cmd.arg("--bare");
        }
        let out = cmd.arg(path).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    #[test]
    fn finds_each_layout_and_refuses_a_plain_directory_where_git_is_required() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        git_init(&d.join("a__b"), false);
        git_init(&d.join("c/d"), false);
        git_init(&d.join("f"), false);
        git_init(&d.join("g__h.git"), true);
        git_init(&d.join("i/j.git"), true);
        git_init(&d.join("l.git"), true);
        // owner__name comes first when two layouts are present.
        git_init(&d.join("a/b"), false);
        for (repo, path) in
            [("a/b", "a__b"), ("c/d", "c/d"), ("e/f", "f"), ("g/h", "g__h.git"), ("i/j", "i/j.git"), ("k/l", "l.git")]
        {
            assert_eq!(find_clone(d, repo, Accept::Git).unwrap(), d.join(path), "{repo}");
            assert_eq!(find_clone(d, repo, Accept::Directory).unwrap(), d.join(path), "{repo}");
        }
        assert_eq!(find_clone(d, "f", Accept::Git).unwrap(), d.join("f"), "a name without owner");

        // A plain directory (an unpacked source tree) only where the caller uses files as they are.
        std::fs::create_dir_all(d.join("p__q/src")).unwrap();
        let err = find_clone(d, "p/q", Accept::Git).unwrap_err();
        assert!(matches!(err, RepoError::NotGit { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&d.join("p__q").display().to_string()) && msg.contains("git clone"), "{msg}");
        assert_eq!(find_clone(d, "p/q", Accept::Directory).unwrap(), d.join("p__q"));

        let err = find_clone(d, "x/y", Accept::Git).unwrap_err().to_string();
        for looked_for in ["x__y", "x/y,", "/y,", "x__y.git", "x/y.git", "/y.git", "git clone it to"] {
            assert!(err.contains(looked_for), "{looked_for} in {err}");
        }
        let err = find_clone(d, "x/y", Accept::Directory).unwrap_err().to_string();
        assert!(err.contains("or put its source tree there"), "{err}");

        for bad in ["", "/etc", "../a__b", "c/../a__b", "a/b/c", "a//b", "."] {
            let err = find_clone(d, bad, Accept::Directory).unwrap_err();
            assert!(matches!(err, RepoError::BadName { .. }), "{bad}: {err:?}");
        }
    }
}
