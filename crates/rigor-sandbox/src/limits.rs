//! Resource limits of a sandbox session: rlimits and a `pids` cgroup.
//!
//! - Memory: `RLIMIT_AS` (address space of each process).
//! - File size: `RLIMIT_FSIZE` (a bigger write fails with `EFBIG`/`SIGXFSZ`).
//! - Core dumps: off.
//! - Processes: a child of the caller's `pids` cgroup (cgroup v2 or v1) with `pids.max`, which
//!   also lets the whole session be killed at once. Without a writable cgroup, `RLIMIT_NPROC`
//!   stands in; that limit is per user and the kernel never applies it to root, so as root
//!   without cgroups the number of processes is bounded only by the PID namespace and the
//!   command's time limit, and [`crate::Layers`] says so.
//!
//! Joining the cgroup: on cgroup v1 the forked child writes `0` to the `tasks` file rather than
//! to `cgroup.procs`. Migrating a whole thread group takes the kernel's global
//! `cgroup_threadgroup_rwsem` for writing, which waits for an RCU grace period (about 15 ms
//! measured) unless another migration happened just before, so every command spawned after a
//! pause paid it; a thread moving itself skips that lock (0.2 ms). The child is single-threaded
//! (fork copies one thread), so moving the thread moves the process. cgroup v2 refuses thread
//! moves across domain cgroups, so there the child writes `cgroup.procs` and pays that wait,
//! unless the hierarchy is mounted with `favordynmods`.
//!
//! The scratch size limit is the `--size` of the `/tmp` tmpfs, set in `isolation`. This module
//! does not spawn anything: it prepares what the child applies between `fork` and `exec`.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Limits applied in the child before `exec`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rlimits {
    /// `RLIMIT_AS` in bytes.
    pub address_space: u64,
    /// `RLIMIT_FSIZE` in bytes.
    pub file_size: u64,
    /// `RLIMIT_NPROC`, when no cgroup limits processes.
    pub processes: Option<u64>,
}

impl Rlimits {
    /// Applies the limits to the calling process. Only async-signal-safe calls: usable in
    /// `pre_exec`.
    pub(crate) fn apply(&self) -> std::io::Result<()> {
        set(libc::RLIMIT_AS, self.address_space)?;
        set(libc::RLIMIT_FSIZE, self.file_size)?;
        set(libc::RLIMIT_CORE, 0)?;
        if let Some(n) = self.processes {
            set(libc::RLIMIT_NPROC, n)?;
        }
        Ok(())
    }
}

/// Sets both limits of `resource` to `value`, or to the current hard limit when that is lower
/// (an unprivileged process cannot raise it, and a lower limit is still a limit: the command is
/// confined more tightly than asked, instead of the sandbox failing to start).
fn set(resource: libc::__rlimit_resource_t, value: u64) -> std::io::Result<()> {
    let mut current = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into a valid struct; async-signal-safe.
    let value = if unsafe { libc::getrlimit(resource, &mut current) } == 0 && current.rlim_max != libc::RLIM_INFINITY {
        value.min(current.rlim_max)
    } else {
        value
    };
    let limit = libc::rlimit { rlim_cur: value as libc::rlim_t, rlim_max: value as libc::rlim_t };
    // SAFETY: setrlimit reads a valid struct and only affects the calling process.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Processes currently owned by the real user id (for an `RLIMIT_NPROC` that leaves room for
/// what the user already runs).
pub(crate) fn processes_of_current_user() -> u64 {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter(|e| {
            std::fs::read_to_string(e.path().join("status")).ok().is_some_and(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|l| l.split_whitespace().next().map(|x| x == uid.to_string()))
                    .unwrap_or(false)
            })
        })
        .count() as u64
}

/// Where session cgroups are created: `rigor-sandbox` under the caller's cgroup in a writable
/// `pids` hierarchy. Found once per [`crate::Sandbox`], so that a spawn only creates its own
/// cgroup.
#[derive(Debug, Clone)]
pub(crate) struct PidsParent {
    dir: PathBuf,
    /// cgroup v2 (`cgroup.procs` to join) rather than v1 (`tasks`).
    v2: bool,
}

impl PidsParent {
    /// Finds (and creates) the parent and removes session cgroups left behind by processes that
    /// no longer exist, or returns `None` when no writable `pids` hierarchy exists (not root, no
    /// delegation).
    pub(crate) fn find() -> Option<Self> {
        let base = pids_hierarchy()?;
        let dir = base.join("rigor-sandbox");
        std::fs::create_dir_all(&dir).ok()?;
        remove_stale(&dir);
        let v2 = base.join("cgroup.controllers").exists();
        if v2 {
            // cgroup v2: the pids controller must be enabled for the children of `dir`.
            let _ = std::fs::write(dir.join("cgroup.subtree_control"), "+pids");
        }
        Some(Self { dir, v2 })
    }

    /// Creates a session cgroup limited to `max` processes, or `None` when that fails.
    pub(crate) fn create(&self, max: u32) -> Option<PidsCgroup> {
        let dir = self.dir.join(format!("s-{}-{}", std::process::id(), uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).ok()?;
        if std::fs::write(dir.join("pids.max"), max.to_string()).is_err() {
            let _ = std::fs::remove_dir(&dir);
            return None;
        }
        let join_file = dir.join(if self.v2 { "cgroup.procs" } else { "tasks" });
        let join = CString::new(join_file.as_os_str().as_encoded_bytes()).ok()?;
        Some(PidsCgroup { dir, join })
    }
}

/// A `pids` cgroup created for one sandbox session. Dropping it kills what is left inside and
/// removes the directory (in the background: the kernel needs a moment to reap).
#[derive(Debug)]
pub(crate) struct PidsCgroup {
    dir: PathBuf,
    /// The file the child writes to join (`tasks` on v1, `cgroup.procs` on v2), as a C string.
    join: CString,
}

impl PidsCgroup {
    /// The file a freshly forked child writes to join the cgroup, for [`join_cgroup`].
    pub(crate) fn join_path(&self) -> CString {
        self.join.clone()
    }

    /// The processes in the cgroup now.
    pub(crate) fn pids(&self) -> Vec<i32> {
        read_pids(&self.dir)
    }

    /// The cgroup directory.
    #[allow(dead_code)]
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Moves the calling process into a cgroup by writing `0` (the caller) to `join`, a
/// [`PidsCgroup::join_path`]. On cgroup v1 that file is `tasks`, which moves the calling thread
/// only: call it in a single-threaded process, such as a child between `fork` and `exec`. Only
/// async-signal-safe calls: usable in `pre_exec`.
pub(crate) fn join_cgroup(join: &CString) -> std::io::Result<()> {
    // SAFETY: open/write/close on a valid NUL-terminated path and a static buffer.
    unsafe {
        let fd = libc::open(join.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let written = libc::write(fd, b"0".as_ptr().cast(), 1);
        let err = std::io::Error::last_os_error();
        libc::close(fd);
        if written != 1 {
            return Err(err);
        }
    }
    Ok(())
}

fn read_pids(dir: &Path) -> Vec<i32> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// Kills everything in `dir` and removes it, retrying while processes exit.
fn kill_and_remove(dir: &Path) {
    let kill_file = dir.join("cgroup.kill");
    for _ in 0..200 {
        if kill_file.exists() {
            let _ = std::fs::write(&kill_file, "1");
        }
        for pid in read_pids(dir) {
            // SAFETY: sending SIGKILL to a process of our own sandbox cgroup.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    tracing::warn!(dir = %dir.display(), "could not remove the sandbox cgroup");
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        let dir = self.dir.clone();
        // Synchronously kill once so nothing outlives the session, then reap in the background.
        for pid in read_pids(&dir) {
            // SAFETY: as above.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        let _ = std::thread::Builder::new().name("rigor-sandbox-cgroup".into()).spawn(move || kill_and_remove(&dir));
    }
}

/// Removes empty session cgroups left behind by processes that no longer exist (a crash, a
/// `SIGKILL`). Cgroups of live processes (this one included) are left alone: they may be about
/// to be joined.
fn remove_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(owner) = name.strip_prefix("s-").and_then(|rest| rest.split('-').next()) else { continue };
        if !Path::new("/proc").join(owner).exists() && read_pids(&path).is_empty() {
            let _ = std::fs::remove_dir(&path);
        }
    }
}

/// The directory of the caller's cgroup in a writable hierarchy that has the `pids` controller.
fn pids_hierarchy() -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let root = Path::new("/sys/fs/cgroup");
    // cgroup v2 mounted on /sys/fs/cgroup with the pids controller.
    if let Ok(controllers) = std::fs::read_to_string(root.join("cgroup.controllers"))
        && controllers.split_whitespace().any(|c| c == "pids")
        && let Some(rel) = own.lines().find_map(|l| l.strip_prefix("0::"))
    {
        return writable(root.join(rel.trim_start_matches('/')));
    }
    // cgroup v1 pids hierarchy.
    let rel = own.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers.split(',').any(|c| c == "pids").then(|| path.to_string())
    })?;
    writable(root.join("pids").join(rel.trim_start_matches('/')))
}

fn writable(dir: PathBuf) -> Option<PathBuf> {
    let c = CString::new(dir.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: access() on a valid C string.
    (unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0).then_some(dir)
}
