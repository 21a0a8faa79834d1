//! [`Sandbox`]: builds the process that runs a model-chosen command, confined.
//!
//! The command line is `bwrap <namespaces> <mounts> --add-seccomp-fd N... -- HELPER
//! --rigor-sandbox-stage2 SPEC -- PROGRAM ARGS`, with rlimits and the `pids` cgroup applied
//! between `fork` and `exec` of bubblewrap (they are inherited by everything inside). Mounts, in
//! order: `/` read-only; fresh `/dev` and `/proc`; tmpfs on `/run` (sockets of system daemons
//! hidden); a size-limited tmpfs on `/tmp` (the scratch) and `/dev/shm`; tmpfs over `/home`,
//! `/root` and `$HOME`; then, read-only, the toolchain directories of the home directory and the
//! toolchain locations the environment names inside the hidden directories (`CARGO_HOME`'s `bin`,
//! `registry` and `git`, `RUSTUP_HOME`, `PYENV_ROOT`, `NVM_DIR`, `VOLTA_HOME`, `GOROOT`,
//! `GOMODCACHE`, `GOPATH`'s `bin` and `pkg/mod`, `PATH` entries; never a home directory itself
//! or anything holding credentials, see [`toolchain_locations`]), `/dev/null` over the credential
//! files of a cargo home outside them, the workspace's git metadata and configured extra paths;
//! the stage-2 helper; and last the workspace, writable in `workspace-write` mode, so that it
//! stays visible wherever it lives.
//!
//! [`Sandbox::new`] probes the machine once by running `true` exactly as a command would run,
//! and refuses (with the reason and the remedy) when that fails. This module does not parse
//! or judge commands (see [`crate::policy`]) and does not read their output.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::env::scrub;
use crate::limits::{PidsCgroup, PidsParent, Rlimits, processes_of_current_user};
use crate::stage2::{STAGE2_FLAG, Stage2Spec, registered_helper};
use crate::{SandboxMode, SandboxSettings};

/// Where the stage-2 helper is mounted inside the sandbox.
const HELPER_INSIDE: &str = "/run/rigor/stage2";
/// How long the start-up probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
const MIB: u64 = 1024 * 1024;

/// Why a sandbox cannot be created or a command cannot be prepared.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// This machine cannot isolate commands.
    #[error("cannot isolate commands on this machine: {reason}. {remedy}")]
    Unavailable {
        /// What is missing.
        reason: String,
        /// What the user can do.
        remedy: String,
    },
    /// Preparing a command failed (memfd, cgroup, ...).
    #[error("cannot prepare the sandbox: {0}")]
    Setup(String),
}

/// What to build a [`Sandbox`] from.
#[derive(Debug, Clone)]
pub struct SandboxSpec {
    /// The workspace: writable in `workspace-write` mode, the working directory by default.
    pub workspace: PathBuf,
    /// Mode, network, limits, extra paths, rules.
    pub settings: SandboxSettings,
    /// The home directory to hide (default: `$HOME`).
    pub home: Option<PathBuf>,
    /// The stage-2 helper (default: the executable that called
    /// [`crate::stage2::run_if_requested`], `$RIGOR_SANDBOX_HELPER`, or `rigor-sandbox-exec` next
    /// to the current executable or on `PATH`).
    pub helper: Option<PathBuf>,
    /// Extra environment variable names to remove (e.g. the API-key variables of providers).
    pub secret_env: Vec<String>,
}

impl SandboxSpec {
    /// A spec with defaults for everything but the workspace and settings.
    pub fn new(workspace: impl Into<PathBuf>, settings: SandboxSettings) -> Self {
        Self { workspace: workspace.into(), settings, home: None, helper: None, secret_env: Vec::new() }
    }
}

/// The defences in force, as found by the probe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layers {
    /// bubblewrap namespaces and mounts.
    pub namespaces: bool,
    /// Landlock status reported by the second stage (`fully_enforced`, ...); `None` when no
    /// helper was found.
    pub landlock: Option<String>,
    /// seccomp filters.
    pub seccomp: bool,
    /// How the number of processes is bounded (`pids cgroup`, `RLIMIT_NPROC`), or `None`.
    pub process_limit: Option<String>,
}

/// Spawns model-chosen commands, confined according to its settings.
#[derive(Debug)]
pub struct Sandbox {
    spec: SandboxSpec,
    home: Option<PathBuf>,
    bwrap: PathBuf,
    helper: Option<PathBuf>,
    seccomp: Vec<Vec<u8>>,
    layers: Layers,
    /// Where session cgroups go, when a writable `pids` hierarchy exists.
    pids: Option<PidsParent>,
    /// The bubblewrap arguments that do not depend on the command, computed once.
    layout: Layout,
}

/// The part of bubblewrap's command line shared by every command of a sandbox: namespaces and
/// mounts, and the paths the second stage makes writable. It depends only on the spec and on the
/// machine (which of the hidden and visible directories exist, where the worktree's git metadata
/// lives), so [`Sandbox::new`] computes it once instead of once per command.
#[derive(Debug, Clone, Default)]
struct Layout {
    /// Arguments from `--die-with-parent` up to, excluding, `--chdir`.
    mounts: Vec<OsString>,
    /// Writable roots (as seen inside), for the Landlock ruleset of the second stage.
    writable: Vec<PathBuf>,
    /// Toolchain locations left hidden, with why (for [`Sandbox::describe`]).
    skipped: Vec<String>,
}

/// A command ready to spawn, and what must live as long as the process it starts.
#[derive(Debug)]
pub struct Prepared {
    /// The command; the caller sets stdio, process group and so on, then spawns it.
    pub command: Command,
    /// Keep it until the process has exited; dropping it kills what is left of the session.
    pub guard: SessionGuard,
}

/// Resources of one spawned session: the `pids` cgroup (whose drop kills any process left) and
/// the seccomp program descriptors.
#[derive(Debug, Default)]
pub struct SessionGuard {
    cgroup: Option<PidsCgroup>,
    _fds: Vec<OwnedFd>,
}

impl SessionGuard {
    /// Processes of the session still alive (empty when no cgroup tracks them).
    pub fn live_processes(&self) -> Vec<i32> {
        self.cgroup.as_ref().map(|c| c.pids()).unwrap_or_default()
    }
}

impl Sandbox {
    /// A sandbox that does not isolate: commands run as the current user with a scrubbed
    /// environment. Used when the user passed `--sandbox off`, and by tests of the tools
    /// themselves.
    pub fn unconfined() -> Self {
        let settings = SandboxSettings { mode: SandboxMode::Off, ..SandboxSettings::default() };
        Self {
            spec: SandboxSpec::new(PathBuf::new(), settings),
            home: None,
            bwrap: PathBuf::new(),
            helper: None,
            seccomp: Vec::new(),
            layers: Layers::default(),
            pids: None,
            layout: Layout::default(),
        }
    }

    /// Prepares a sandbox and proves it works by running `true` in it. In mode `off` this only
    /// records the settings.
    pub fn new(spec: SandboxSpec) -> Result<Self, SandboxError> {
        if spec.settings.mode == SandboxMode::Off {
            return Ok(Self { spec, ..Self::unconfined() });
        }
        if !cfg!(target_os = "linux") {
            return Err(SandboxError::Unavailable {
                reason: "the sandbox needs Linux (namespaces, Landlock, seccomp)".into(),
                remedy: "Run rigor on Linux, or pass --sandbox off to run commands without isolation.".into(),
            });
        }
        let bwrap = find_on_path("bwrap").ok_or_else(|| SandboxError::Unavailable {
            reason: "bubblewrap (`bwrap`) is not installed".into(),
            remedy: "Install it (Debian/Ubuntu: `apt-get install bubblewrap`, Fedora: `dnf install bubblewrap`; \
                     scripts/setup.sh does this), or pass --sandbox off to run commands without isolation."
                .into(),
        })?;
        #[cfg(target_os = "linux")]
        let seccomp = crate::seccomp::filter_programs().map_err(SandboxError::Setup)?;
        #[cfg(not(target_os = "linux"))]
        let seccomp = Vec::new();
        let home = spec.home.clone().or_else(|| std::env::var_os("HOME").map(PathBuf::from));
        let home = home.filter(|h| h.is_absolute() && h != Path::new("/"));
        let helper = spec.helper.clone().or_else(find_helper);
        let pids = PidsParent::find().filter(|p| p.create(spec.settings.max_processes).is_some());
        let process_limit = if pids.is_some() {
            Some(format!("pids cgroup ({} processes)", spec.settings.max_processes))
        } else if unsafe { libc::geteuid() } != 0 {
            Some("RLIMIT_NPROC".to_string())
        } else {
            None
        };
        let mut sandbox = Self {
            spec,
            home,
            bwrap,
            helper,
            seccomp,
            layers: Layers { namespaces: true, landlock: None, seccomp: true, process_limit },
            pids,
            layout: Layout::default(),
        };
        sandbox.layout = sandbox.build_layout();
        sandbox.layers.landlock = sandbox.probe()?;
        Ok(sandbox)
    }

    /// The isolation mode.
    pub fn mode(&self) -> SandboxMode {
        self.spec.settings.mode
    }

    /// The settings it was built with.
    pub fn settings(&self) -> &SandboxSettings {
        &self.spec.settings
    }

    /// The defences in force.
    pub fn layers(&self) -> &Layers {
        &self.layers
    }

    /// One line for the user: mode, network, and the defences in force.
    pub fn describe(&self) -> String {
        let s = &self.spec.settings;
        if s.mode == SandboxMode::Off {
            return "sandbox OFF: commands run unconfined as your user, with your files and network (only the \
                    environment is scrubbed of secrets)"
                .into();
        }
        let mut layers = vec![if s.network {
            "bubblewrap namespaces (network ON: commands share the host's network, including services listening \
             on its loopback, 127.0.0.1/localhost)"
                .to_string()
        } else {
            "bubblewrap namespaces (network off, loopback private to the sandbox)".to_string()
        }];
        match &self.layers.landlock {
            Some(status) => layers.push(format!("Landlock {}", status.replace('_', " "))),
            None => layers.push("no Landlock (stage-2 helper not found)".into()),
        }
        layers.push("seccomp".into());
        layers.push(format!("memory {} MiB, files {} MiB, scratch {} MiB", s.memory_mb, s.max_file_mb, s.scratch_mb));
        layers.push(match &self.layers.process_limit {
            Some(limit) => limit.clone(),
            None => "no process limit (root without a writable pids cgroup)".into(),
        });
        if !self.layout.skipped.is_empty() {
            layers.push(format!("left hidden: {}", self.layout.skipped.join("; ")));
        }
        format!("sandbox {}: {}", s.mode.as_str(), layers.join(", "))
    }

    /// A command that runs `program args` in `cwd`, confined. The caller spawns it and keeps
    /// [`Prepared::guard`] until the process has exited.
    pub fn command(&self, program: &str, args: &[&str], cwd: &Path) -> Result<Prepared, SandboxError> {
        self.build(program, args, cwd, false)
    }

    fn env(&self) -> Vec<(OsString, OsString)> {
        let mut extra = self.spec.settings.secret_env.clone();
        extra.extend(self.spec.secret_env.iter().cloned());
        let mut vars = scrub(std::env::vars_os(), &extra);
        if self.spec.settings.mode != SandboxMode::Off {
            vars.retain(|(k, _)| k != "TMPDIR");
            vars.push(("TMPDIR".into(), "/tmp".into()));
        }
        vars
    }

    fn build(&self, program: &str, args: &[&str], cwd: &Path, probe: bool) -> Result<Prepared, SandboxError> {
        if self.spec.settings.mode == SandboxMode::Off {
            let mut command = Command::new(program);
            command.args(args).current_dir(cwd).env_clear().envs(self.env());
            return Ok(Prepared { command, guard: SessionGuard::default() });
        }
        let s = &self.spec.settings;
        let fds = self
            .seccomp
            .iter()
            .map(|program| sealed_memfd(program))
            .collect::<Result<Vec<OwnedFd>, _>>()
            .map_err(|e| SandboxError::Setup(format!("seccomp program: {e}")))?;
        let raw_fds: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
        let cgroup = self
            .pids
            .as_ref()
            .map(|parent| {
                parent
                    .create(s.max_processes)
                    .ok_or_else(|| SandboxError::Setup("cannot create the pids cgroup".into()))
            })
            .transpose()?;
        let rlimits = Rlimits {
            address_space: s.memory_mb.saturating_mul(MIB),
            file_size: s.max_file_mb.saturating_mul(MIB),
            processes: (cgroup.is_none() && unsafe { libc::geteuid() } != 0)
                .then(|| processes_of_current_user() + u64::from(s.max_processes)),
        };
        let bwrap_args = self.bwrap_args(program, args, cwd, &raw_fds, probe);
        let mut command = Command::new(&self.bwrap);
        command.args(bwrap_args).current_dir("/").env_clear().envs(self.env());
        let join = cgroup.as_ref().map(PidsCgroup::join_path);
        // SAFETY: the closure only makes async-signal-safe calls (setrlimit, open, write, close,
        // fcntl) on data prepared before the fork.
        unsafe {
            command.pre_exec(move || {
                rlimits.apply()?;
                if let Some(join) = &join {
                    crate::limits::join_cgroup(join)?;
                }
                for &fd in &raw_fds {
                    if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        Ok(Prepared { command, guard: SessionGuard { cgroup, _fds: fds } })
    }

    /// The namespaces and mounts of every command, and the writable roots (see [`Layout`]).
    fn build_layout(&self) -> Layout {
        let s = &self.spec.settings;
        let mut a = Args::default();
        a.push(["--die-with-parent", "--unshare-user", "--unshare-ipc", "--unshare-pid", "--unshare-uts"]);
        a.push(["--unshare-cgroup-try", "--disable-userns", "--cap-drop", "ALL", "--hostname", "rigor-sandbox"]);
        if !s.network {
            a.push(["--unshare-net"]);
        }
        a.push(["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/run"]);
        if s.network
            && let Ok(resolv) = std::fs::canonicalize("/etc/resolv.conf")
            && resolv.starts_with("/run")
        {
            a.path_pair("--ro-bind", &resolv, &resolv);
        }
        let scratch = s.scratch_mb.saturating_mul(MIB).to_string();
        let mut writable: Vec<PathBuf> = vec![PathBuf::from("/tmp"), PathBuf::from("/dev/shm")];
        a.push(["--size", &scratch, "--tmpfs", "/tmp", "--size", &scratch, "--tmpfs", "/dev/shm"]);
        for hidden in self.hidden_dirs() {
            a.push(["--size", &scratch, "--tmpfs"]);
            a.path(&hidden);
            writable.push(hidden);
        }
        let hidden = self.hidden_dirs();
        let mut bound: Vec<PathBuf> = Vec::new();
        if let Some(home) = &self.home {
            for rel in &s.home_visible {
                let path = home.join(rel);
                a.path_pair("--ro-bind-try", &path, &path);
                bound.push(path);
            }
        }
        // The toolchains the environment names, wherever they live: read-only, never writable.
        let toolchains = toolchain_locations(&self.env(), &hidden, self.home.as_deref());
        for path in toolchains.visible {
            if !bound.iter().any(|b| path.starts_with(b) && b.exists()) {
                a.path_pair("--ro-bind-try", &path, &path);
                bound.push(path);
            }
        }
        for file in &toolchains.masked {
            a.path_pair("--ro-bind", Path::new("/dev/null"), file);
        }
        for path in git_dirs(&self.spec.workspace).iter().chain(&s.readable) {
            a.path_pair("--ro-bind-try", path, path);
        }
        let workspace = &self.spec.workspace;
        if !workspace.as_os_str().is_empty() {
            match s.mode {
                SandboxMode::WorkspaceWrite => {
                    a.path_pair("--bind", workspace, workspace);
                    writable.push(workspace.clone());
                }
                _ => a.path_pair("--ro-bind", workspace, workspace),
            }
        }
        if s.mode == SandboxMode::WorkspaceWrite {
            for path in &s.writable {
                a.path_pair("--bind-try", path, path);
                writable.push(path.clone());
            }
        }
        // Bound after the workspace, so that they stay read-only inside it: the tree's git
        // metadata (with `--in-place`, the real `.git`: its hooks and config run on the host) and
        // rigor's own state (configuration, run records). A mount point cannot be removed or
        // renamed, so the model cannot swap them either.
        for path in protected_paths(workspace) {
            a.path_pair("--ro-bind", &path, &path);
        }
        if let Some(helper) = &self.helper {
            a.push(["--ro-bind"]);
            a.path(helper);
            a.push([HELPER_INSIDE]);
        }
        Layout { mounts: a.0, writable, skipped: toolchains.skipped }
    }

    fn bwrap_args(&self, program: &str, args: &[&str], cwd: &Path, fds: &[RawFd], probe: bool) -> Vec<OsString> {
        let mut a = Args(self.layout.mounts.clone());
        a.push(["--chdir"]);
        a.path(cwd);
        for fd in fds {
            a.push(["--add-seccomp-fd", &fd.to_string()]);
        }
        a.push(["--"]);
        if self.helper.is_some() {
            let spec = Stage2Spec { writable: self.layout.writable.clone(), probe };
            let json = serde_json::to_string(&spec).unwrap_or_else(|_| "{}".into());
            a.push([HELPER_INSIDE, STAGE2_FLAG, &json, "--"]);
        }
        a.push([program]);
        a.push(args.iter().copied());
        a.0
    }

    /// `/home`, `/root` and `$HOME`, outermost first, without duplicates or nested entries.
    fn hidden_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = ["/home", "/root"].iter().map(PathBuf::from).chain(self.home.clone()).collect();
        dirs.retain(|d| d.is_dir());
        dirs.sort_by_key(|d| d.components().count());
        let mut out: Vec<PathBuf> = Vec::new();
        for d in dirs {
            if !out.iter().any(|o| d.starts_with(o)) {
                out.push(d);
            }
        }
        out
    }

    /// Runs `true` in the sandbox; returns the Landlock status the helper reports.
    fn probe(&self) -> Result<Option<String>, SandboxError> {
        let cwd = if self.spec.workspace.is_dir() { self.spec.workspace.clone() } else { PathBuf::from("/") };
        let Prepared { mut command, guard } = self.build("true", &[], &cwd, true)?;
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| unavailable(format!("cannot start bubblewrap ({}): {e}", self.bwrap.display())))?;
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() < PROBE_TIMEOUT => std::thread::sleep(Duration::from_millis(2)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(unavailable("the sandbox probe did not finish".into()));
                }
            }
        };
        drop(guard);
        let mut stdout = String::new();
        let mut stderr = String::new();
        if let Some(mut out) = child.stdout.take() {
            let _ = out.read_to_string(&mut stdout);
        }
        if let Some(mut err) = child.stderr.take() {
            let _ = err.read_to_string(&mut stderr);
        }
        if !status.success() {
            return Err(unavailable(format!("bubblewrap failed ({status}): {}", stderr.trim())));
        }
        let landlock = stdout.lines().find_map(|l| l.strip_prefix("landlock=")).map(str::to_string);
        if self.helper.is_some() && landlock.is_none() {
            return Err(unavailable(format!(
                "the stage-2 helper did not report (stdout: {:?}, stderr: {:?})",
                stdout.trim(),
                stderr.trim()
            )));
        }
        Ok(landlock)
    }
}

fn unavailable(reason: String) -> SandboxError {
    SandboxError::Unavailable {
        reason,
        remedy: "Unprivileged user namespaces may be disabled (try `sysctl -w kernel.unprivileged_userns_clone=1`, \
                 or on Ubuntu `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`), or this container may \
                 forbid them. Run rigor where they are allowed, or pass --sandbox off to run commands without \
                 isolation."
            .into(),
    }
}

/// Command-line arguments under construction.
#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn push<'a>(&mut self, items: impl IntoIterator<Item = &'a str>) {
        self.0.extend(items.into_iter().map(OsString::from));
    }
    fn path(&mut self, p: &Path) {
        self.0.push(p.as_os_str().to_owned());
    }
    fn path_pair(&mut self, flag: &str, src: &Path, dest: &Path) {
        self.0.push(flag.into());
        self.path(src);
        self.path(dest);
    }
}

/// Credentials of a home directory, relative to it: no toolchain location is made visible if it
/// is, holds or lies inside one of them.
const HOME_CREDENTIALS: &[&str] = &[
    ".ssh",
    ".aws",
    ".azure",
    ".gnupg",
    ".docker",
    ".kube",
    ".netrc",
    ".npmrc",
    ".pypirc",
    ".pgpass",
    ".git-credentials",
    ".vault-token",
    ".password-store",
    ".config/gh",
    ".config/hub",
    ".config/gcloud",
    ".config/git/credentials",
    ".local/share/keyrings",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".m2/settings.xml",
    ".gradle/gradle.properties",
    ".terraform.d",
];

/// The credential files of a cargo home.
const CARGO_CREDENTIALS: &[&str] = &["credentials", "credentials.toml"];

/// Toolchain locations named by the environment of commands, as [`Sandbox::build_layout`] needs
/// them.
#[derive(Debug, Default, PartialEq)]
struct Toolchains {
    /// Directories inside hidden directories to bind read-only (as written and, when it differs,
    /// resolved through symlinks).
    visible: Vec<PathBuf>,
    /// Credential files of cargo homes outside the hidden directories (visible through `/`), to
    /// cover with `/dev/null`.
    masked: Vec<PathBuf>,
    /// What was left hidden, and why.
    skipped: Vec<String>,
}

/// The toolchain locations the user configured: `CARGO_HOME`'s `bin`, `registry` and `git` (never
/// its credentials), `RUSTUP_HOME`, `PYENV_ROOT`, `NVM_DIR`, `VOLTA_HOME`, `GOROOT`,
/// `GOMODCACHE`, each `GOPATH` entry's `bin` and `pkg/mod`, and every `PATH` entry. Only those
/// inside a hidden directory need binding (the rest is visible through `/`); of those, a home
/// directory itself (or a directory above one) and anything that is, holds or lies in a
/// credential location is left hidden and reported instead.
fn toolchain_locations(env: &[(OsString, OsString)], hidden: &[PathBuf], home: Option<&Path>) -> Toolchains {
    let var = |name: &str| env.iter().find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.clone());
    let mut candidates: Vec<(&str, PathBuf)> = Vec::new();
    let mut cargo_homes = Vec::new();
    if let Some(cargo) = var("CARGO_HOME") {
        let cargo = crate::paths::normalize(Path::new(&cargo));
        candidates.extend(["bin", "registry", "git"].map(|sub| ("CARGO_HOME", cargo.join(sub))));
        cargo_homes.push(cargo);
    }
    // An activated Python environment is a toolchain too: its `bin/` alone (a PATH entry) starts
    // the base interpreter, which finds no `pyvenv.cfg` and none of the environment's packages.
    for name in
        ["RUSTUP_HOME", "PYENV_ROOT", "NVM_DIR", "VOLTA_HOME", "GOROOT", "GOMODCACHE", "VIRTUAL_ENV", "CONDA_PREFIX"]
    {
        if let Some(value) = var(name) {
            candidates.push((name, PathBuf::from(value)));
        }
    }
    if let Some(gopath) = var("GOPATH") {
        for dir in std::env::split_paths(&gopath) {
            candidates.extend(["bin", "pkg/mod"].map(|sub| ("GOPATH", dir.join(sub))));
        }
    }
    if let Some(path) = var("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|dir| ("PATH entry", dir)));
    }

    let is_hidden = |p: &Path| hidden.iter().any(|h| p.starts_with(h));
    // Home directories: the hidden ones, `$HOME`, and each `/home/<user>`.
    let is_home_or_above = |p: &Path| {
        hidden.iter().map(PathBuf::as_path).chain(home).any(|h| h.starts_with(p))
            || (p.starts_with("/home") && p.components().count() <= 3)
    };
    let homes_of = |p: &Path| {
        let mut homes: Vec<PathBuf> = hidden.iter().cloned().chain(home.map(Path::to_path_buf)).collect();
        homes.push(PathBuf::from("/root"));
        if p.starts_with("/home") {
            homes.push(p.components().take(3).collect());
        }
        homes
    };
    let credential_of = |p: &Path| {
        let mut credentials: Vec<PathBuf> =
            homes_of(p).iter().flat_map(|h| HOME_CREDENTIALS.iter().map(move |c| h.join(c))).collect();
        credentials.extend(cargo_homes.iter().flat_map(|c| CARGO_CREDENTIALS.iter().map(move |f| c.join(f))));
        // Named in the description: one that exists, if any does.
        let exposed: Vec<PathBuf> = credentials.into_iter().filter(|c| c.starts_with(p) || p.starts_with(c)).collect();
        exposed.iter().find(|c| c.symlink_metadata().is_ok()).or(exposed.first()).cloned()
    };

    let mut out = Toolchains::default();
    for (origin, path) in candidates {
        if !path.is_absolute() {
            continue;
        }
        let path = crate::paths::normalize(&path);
        let resolved = std::fs::canonicalize(&path).ok().filter(|r| r != &path);
        for form in std::iter::once(path.clone()).chain(resolved) {
            if !is_hidden(&form) {
                continue;
            }
            let why = if is_home_or_above(&form) {
                Some("a home directory: all of it would be visible, credentials included".to_string())
            } else {
                credential_of(&form).map(|c| format!("it would expose the credentials {}", c.display()))
            };
            match why {
                Some(why) => {
                    let line = format!("{origin} {} ({why})", path.display());
                    if !out.skipped.contains(&line) {
                        out.skipped.push(line);
                    }
                }
                None if !out.visible.contains(&form) => out.visible.push(form),
                None => {}
            }
        }
    }
    for cargo in &cargo_homes {
        for name in CARGO_CREDENTIALS {
            let Ok(file) = std::fs::canonicalize(cargo.join(name)) else { continue };
            if !is_hidden(&file) && file.is_file() && !out.masked.contains(&file) {
                out.masked.push(file);
            }
        }
    }
    out
}

/// The git directories a worktree's `.git` file points to (its own admin directory and the
/// common directory), which must be readable for git to work, and are never writable.
fn git_dirs(workspace: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(workspace.join(".git")) else { return Vec::new() };
    let Some(gitdir) = text.lines().find_map(|l| l.strip_prefix("gitdir:")).map(str::trim) else {
        return Vec::new();
    };
    let gitdir = workspace.join(gitdir);
    let mut dirs = vec![gitdir.clone()];
    if let Ok(common) = std::fs::read_to_string(gitdir.join("commondir")) {
        dirs.insert(0, gitdir.join(common.trim()));
    }
    dirs.into_iter().filter_map(|d| d.canonicalize().ok()).collect()
}

/// The entries of the workspace that commands may read but never change: `.git` (a worktree's
/// `.git` file or a checkout's directory) and `.rigor`, where they exist (symlinks are left
/// alone: bwrap would follow them).
fn protected_paths(workspace: &Path) -> Vec<PathBuf> {
    if workspace.as_os_str().is_empty() {
        return Vec::new();
    }
    [".git", ".rigor"]
        .into_iter()
        .map(|name| workspace.join(name))
        .filter(|path| std::fs::symlink_metadata(path).is_ok_and(|m| !m.file_type().is_symlink()))
        .collect()
}

/// An anonymous in-memory file holding `bytes`, positioned at its start.
fn sealed_memfd(bytes: &[u8]) -> std::io::Result<OwnedFd> {
    // SAFETY: memfd_create with a static NUL-terminated name; the fd is owned below.
    let fd = unsafe { libc::memfd_create(c"rigor-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor we own.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut file = std::fs::File::from(owned);
    file.write_all(bytes)?;
    std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0))?;
    Ok(OwnedFd::from(file))
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The stage-2 helper: registered by the running binary, named by `$RIGOR_SANDBOX_HELPER`, or
/// `rigor-sandbox-exec` beside the current executable (or one directory up, for test binaries
/// in `target/*/deps`) or on `PATH`.
fn find_helper() -> Option<PathBuf> {
    if let Some(helper) = registered_helper() {
        return Some(helper);
    }
    if let Some(path) = std::env::var_os("RIGOR_SANDBOX_HELPER").map(PathBuf::from)
        && is_executable(&path)
    {
        return Some(path);
    }
    let name = OsStr::new("rigor-sandbox-exec");
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(2) {
            let candidate = dir.join(name);
            if is_executable(&candidate) {
                return Some(candidate);
            }
        }
    }
    find_on_path("rigor-sandbox-exec")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))).collect()
    }

    #[test]
    fn toolchain_locations_in_hidden_directories_are_kept_unless_they_would_expose_credentials() {
        let hidden = [PathBuf::from("/home"), PathBuf::from("/nonexistent-rigor-root")];
        let home = Path::new("/home/u");
        let path = "/home/u/.local/bin:relative/bin:/usr/bin:/home/u:/home/other:/home:/home/u/.config:\
                    /home/u/.ssh/bin:/home/u/tools/../bin:/home/u/.cargo";
        let found = toolchain_locations(
            &env(&[
                ("PATH", path),
                ("CARGO_HOME", "/home/u/rust/cargo"),
                ("RUSTUP_HOME", "/home/u/rust/rustup"),
                ("VIRTUAL_ENV", "/home/u/project/.venv"),
                ("GOPATH", "/home/u/go1:/opt/go2"),
                ("VOLTA_HOME", ""),
            ]),
            &hidden,
            Some(home),
        );
        let visible: Vec<&str> = found.visible.iter().map(|p| p.to_str().unwrap_or_default()).collect();
        assert_eq!(
            visible,
            [
                "/home/u/rust/cargo/bin",
                "/home/u/rust/cargo/registry",
                "/home/u/rust/cargo/git",
                "/home/u/rust/rustup",
                "/home/u/project/.venv",
                "/home/u/go1/bin",
                "/home/u/go1/pkg/mod",
                "/home/u/.local/bin",
                "/home/u/bin",
            ]
        );
        let skipped = found.skipped.join("\n");
        for entry in ["/home/u (a home", "/home/other (a home", "/home (a home"] {
            assert!(skipped.contains(&format!("PATH entry {entry}")), "{entry}: {skipped}");
        }
        for (entry, credential) in [
            ("/home/u/.config", "/home/u/.config/gh"),
            ("/home/u/.ssh/bin", "/home/u/.ssh"),
            ("/home/u/.cargo", "/home/u/.cargo/credentials"),
        ] {
            assert!(
                skipped.contains(&format!("PATH entry {entry} (it would expose the credentials {credential}")),
                "{entry}: {skipped}"
            );
        }
        assert!(found.masked.is_empty());
    }
}
