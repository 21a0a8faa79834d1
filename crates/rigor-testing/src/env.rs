//! The environment cache: one Python virtual environment per (repository, version, environment
//! commit, spec digest), built once with `uv` (or `pip`) and reused by every instance and run.
//!
//! A build has the caller's [`Sources`] put the environment commit into the cache entry (`src/`),
//! creates `venv/` with the spec's Python (found on the machine: `PATH`, pyenv, /usr), installs
//! the requirement files, the pip packages and the project (the spec's install command), and
//! writes `ready.json` last, so an interrupted build is never mistaken for a finished one. A changed spec has a new digest
//! and so a new entry. The project installed there is the one at the environment commit: at test
//! time the instance's worktree comes first on `PYTHONPATH` and shadows it (see
//! [`Environment::test_env`]). When the environment's contents cannot depend on the repository
//! (no requirement files, no install or pre-install command) the commit is left out of the key,
//! so such environments are shared across commits.
//!
//! A project without a dataset spec gets its environment from [`EnvCache::for_project`]: one
//! entry per [`crate::project::Dependencies`] digest (the names and contents of its dependency
//! files and the runner's package, not its path nor its code), built from a copy of the project
//! ([`ProjectFiles`]) with python3, the requirement files, the project itself (editable; if it
//! cannot be installed the build goes on without it) and the runner (pytest). Editing the code
//! reuses the entry; changing a dependency file builds another.
//!
//! Builds of one entry are serialised across threads and processes (a lock file). A failed build
//! leaves `build.log` and is reported as its own status; it is retried by the next run.
//! Cargo and Go projects use the system toolchain; Node projects run `npm ci` in the worktree.
//! This module does not run tests.
//!
//! A build runs the repository's code (`setup.py`, build backends, `pre_install` commands), so
//! with [`EnvCache::with_sandbox`] every step runs in `rigor_sandbox`: writable are the cache entry
//! (sources, venv, a temporary directory) and the uv cache; readable the interpreter, uv and the
//! sources' git directory; the network is on (packages are fetched) for these steps only.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::layer::install_command;
use crate::process::Cmd;
use crate::project::{Dependencies, Project};
use crate::spec::{EnvSpec, ProjectKind};

/// Where an environment build gets the project's sources: a checkout at the environment commit.
///
/// The cache asks for them only when it builds and the spec installs something from the project
/// (requirement files, an install or pre-install command); a cache hit never calls it. The
/// checkout's git metadata, if it is a git worktree, is made readable to the build's sandbox (a
/// build backend such as setuptools-scm asks git for the version). This crate does not know
/// where sources come from: the harness checks out a dataset clone at the row's environment
/// commit, a project run would copy or check out the user's repository.
pub trait Sources: Sync {
    /// Puts the sources into `dest` (which does not exist yet). Returns notes for the build log
    /// (e.g. paths that could not be checked out), or why the sources could not be had.
    fn check_out(&self, dest: &Path) -> impl Future<Output = Result<Vec<String>, String>> + Send;
}

/// The sources of a project's environment: a copy of the project's directory at `.0`, its
/// files and directories but version control, virtual environments and caches (a name that
/// starts with `.`, a directory with a `pyvenv.cfg`, `__pycache__`, `node_modules`). Symbolic
/// links are copied as links. Copying runs nothing.
#[derive(Debug, Clone, Copy)]
pub struct ProjectFiles<'a>(pub &'a Path);

impl Sources for ProjectFiles<'_> {
    async fn check_out(&self, dest: &Path) -> Result<Vec<String>, String> {
        let (root, dest) = (self.0.to_path_buf(), dest.to_path_buf());
        let copied = tokio::task::spawn_blocking(move || copy_project(&root, &dest).map(|n| (n, root)));
        match copied.await {
            Ok(Ok((files, root))) => Ok(vec![format!("copied {files} files of {}", root.display())]),
            Ok(Err(e)) => Err(format!("cannot copy the project: {e}")),
            Err(join) => Err(format!("the copy crashed: {join}")),
        }
    }
}

/// Copies the project at `from` into `to` (see [`ProjectFiles`]); gives the number of files.
fn copy_project(from: &Path, to: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(to)?;
    let mut files = 0;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        let text = name.to_string_lossy();
        let (path, dest) = (entry.path(), to.join(&name));
        let kind = entry.file_type()?;
        if text.starts_with('.') || text == "__pycache__" || text == "node_modules" {
            continue;
        }
        if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&path)?, &dest)?;
            files += 1;
        } else if kind.is_dir() {
            if !path.join("pyvenv.cfg").exists() {
                files += copy_project(&path, &dest)?;
            }
        } else if kind.is_file() {
            std::fs::copy(&path, &dest)?;
            files += 1;
        }
    }
    Ok(files)
}

/// What one build installs: a spec's packages and commands, or a project's dependencies.
#[derive(Debug, Clone, Copy)]
enum Recipe<'a> {
    Spec(&'a EnvSpec),
    Project(&'a Dependencies),
}

/// Which tool installs packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Installer {
    /// `uv` (falls back to pip for an interpreter uv cannot handle).
    #[default]
    Uv,
    /// `python -m venv` and `pip`.
    Pip,
}

impl std::str::FromStr for Installer {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "uv" => Ok(Installer::Uv),
            "pip" => Ok(Installer::Pip),
            _ => Err(format!("unknown installer {s:?}: use uv or pip")),
        }
    }
}

/// A ready environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Environment {
    /// The cache entry's key.
    pub key: String,
    /// The project kind.
    pub kind: ProjectKind,
    /// The virtual environment (Python projects).
    pub venv: Option<PathBuf>,
    /// The Python version used (`3.9.18`).
    pub python: Option<String>,
    /// Which installer built it.
    pub installer: Option<Installer>,
    /// Seconds the build took (when it was built).
    pub build_secs: f64,
    /// For a per-instance layer ([`crate::layer`]): the cached environment it lies over (read
    /// by the layer's interpreter, so readable to its test runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<PathBuf>,
    /// Whether this call built it (false: it came from the cache).
    #[serde(skip)]
    pub fresh: bool,
}

impl Environment {
    /// The interpreter of its virtual environment (Python projects).
    pub fn interpreter(&self) -> Option<PathBuf> {
        self.venv.as_ref().map(|venv| venv.join("bin/python"))
    }

    /// Environment variables for running tests of a worktree in this environment.
    pub fn test_env(&self, spec: &EnvSpec, worktree: &Path) -> Vec<(String, String)> {
        let mut vars = Vec::new();
        let path = std::env::var("PATH").unwrap_or_default();
        if let Some(venv) = &self.venv {
            vars.push(("VIRTUAL_ENV".into(), venv.display().to_string()));
            vars.push(("PATH".into(), format!("{}:{path}", venv.join("bin").display())));
            let root = match &spec.import_root {
                Some(r) => worktree.join(r),
                None if has_src_layout(worktree) => worktree.join("src"),
                None => worktree.to_path_buf(),
            };
            vars.push(("PYTHONPATH".into(), root.display().to_string()));
            vars.push(("PYTHONDONTWRITEBYTECODE".into(), "1".into()));
        }
        vars.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        vars
    }
}

impl Environment {
    /// Makes `tox --current-env -e NAME` in `script` (a test command or eval script) run the
    /// tests with this environment's interpreter, as the official images (a conda environment)
    /// do: tox-current-env fakes `.tox/NAME/bin/python*` as symlinks to the interpreter running
    /// tox, and a symlink to a virtual environment's `python` starts the bare base interpreter
    /// (Python finds `pyvenv.cfg` next to the path it was started by, not the link's target),
    /// which lacks every package. Writes those three files first, in `worktree`, as scripts that
    /// exec this environment's interpreter (tox-current-env leaves existing files alone); returns
    /// them. Nothing to do for a script without `tox --current-env` or a non-Python environment.
    pub fn prepare_tox_current_env(&self, script: &str, worktree: &Path) -> std::io::Result<Vec<PathBuf>> {
        let (Some(python), Some(version)) = (self.interpreter(), self.python.as_deref()) else {
            return Ok(Vec::new());
        };
        let minor: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
        let mut written = Vec::new();
        for name in tox_current_envs(script) {
            let bin = worktree.join(".tox").join(&name).join("bin");
            std::fs::create_dir_all(&bin)?;
            for exe in ["python".to_string(), "python3".into(), format!("python{minor}")] {
                let path = bin.join(exe);
                let text =
                    format!("#!/bin/sh\nexec {} \"$@\"\n", crate::process::shell_quote(&python.display().to_string()));
                std::fs::write(&path, text)?;
                std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
                written.push(path);
            }
        }
        Ok(written)
    }
}

/// The tox environments (`-e NAME`, `-eNAME`, `-e A,B`) of the `tox --current-env` commands in
/// `script`.
fn tox_current_envs(script: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in script.lines().filter(|l| l.contains("tox") && l.contains("--current-env")) {
        let words: Vec<&str> = line.split_whitespace().take_while(|w| *w != "--").collect();
        for (i, word) in words.iter().enumerate() {
            let value = match word.strip_prefix("-e") {
                Some("") => words.get(i + 1).copied(),
                Some(v) if !v.starts_with('-') => Some(v),
                _ => word.strip_prefix("--env=").or(if *word == "--env" { words.get(i + 1).copied() } else { None }),
            };
            for name in value.into_iter().flat_map(|v| v.split(',')).filter(|n| !n.is_empty()) {
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_string());
                }
            }
        }
    }
    names
}

fn has_src_layout(dir: &Path) -> bool {
    std::fs::read_dir(dir.join("src"))
        .map(|entries| entries.flatten().any(|e| e.path().join("__init__.py").is_file()))
        .unwrap_or(false)
}

/// Why an environment could not be built.
#[derive(Debug, thiserror::Error)]
#[error("environment {key} could not be built: {message} (log: {})", log.display())]
pub struct EnvError {
    /// The cache key.
    pub key: String,
    /// What failed.
    pub message: String,
    /// The build log.
    pub log: PathBuf,
}

/// The cache of environments under one directory.
#[derive(Debug, Clone)]
pub struct EnvCache {
    /// The cache directory (`~/.cache/rigor/envs` by default).
    pub root: PathBuf,
    /// The preferred installer.
    pub installer: Installer,
    /// Time limit of one build step.
    pub step_timeout: Duration,
    /// Confinement of build steps (`None`: unconfined, as `--sandbox off`).
    pub sandbox: Option<rigor_sandbox::SandboxSettings>,
}

/// The rigor cache directory (`$RIGOR_CACHE`, else `~/.cache/rigor`).
pub fn rigor_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RIGOR_CACHE") {
        return PathBuf::from(dir);
    }
    dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("rigor")
}

fn entry_lock(key: &str) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    let mut map = LOCKS.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    map.entry(key.to_string()).or_default().clone()
}

/// An exclusive `flock` on a file, held until dropped (serialises builds, and a clone's worktree
/// changes, across processes).
pub struct FileLock(std::fs::File);

impl FileLock {
    /// Waits for the lock on `path` (created if missing) and takes it.
    pub async fn acquire(path: PathBuf) -> std::io::Result<FileLock> {
        tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
            use std::os::fd::AsRawFd;
            // SAFETY: flock on a file descriptor we own; blocks until the lock is ours.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(FileLock(file))
        })
        .await
        .map_err(std::io::Error::other)?
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: unlocking the descriptor we locked.
        unsafe {
            libc::flock(self.0.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

/// `owner/name` with `/` replaced, safe in a path.
fn flat(repo: &str) -> String {
    repo.replace('/', "__")
}

impl EnvCache {
    /// A cache in `root` using `installer`.
    pub fn new(root: PathBuf, installer: Installer) -> Self {
        Self { root, installer, step_timeout: Duration::from_secs(1800), sandbox: None }
    }

    /// The same cache with every build step confined by `settings` (plus the network, and the
    /// paths a build needs; see the module documentation). `SandboxMode::Off` leaves it unconfined.
    pub fn with_sandbox(mut self, settings: rigor_sandbox::SandboxSettings) -> Self {
        self.sandbox = (settings.mode != rigor_sandbox::SandboxMode::Off).then_some(settings);
        self
    }

    /// The sandbox of one build in `dir`, or `None` when builds are unconfined.
    async fn build_sandbox(
        &self,
        dir: &Path,
        python: &Path,
        uv: Option<&Path>,
        src: &Path,
    ) -> Result<Option<std::sync::Arc<rigor_sandbox::Sandbox>>, String> {
        let Some(settings) = &self.sandbox else { return Ok(None) };
        let mut settings = settings.clone();
        settings.network = true;
        settings.mode = rigor_sandbox::SandboxMode::WorkspaceWrite;
        let uv_cache = rigor_cache_dir().join("uv-cache");
        std::fs::create_dir_all(&uv_cache).map_err(|e| format!("cannot create {}: {e}", uv_cache.display()))?;
        settings.writable.push(uv_cache);
        // The interpreter's installation (e.g. a pyenv version) and uv's.
        let prefix = |p: &Path| p.canonicalize().ok().and_then(|p| p.parent()?.parent().map(Path::to_path_buf));
        settings.readable.extend(prefix(python));
        settings.readable.extend(uv.and_then(prefix));
        if let Ok(common) = crate::process::git(src, &["rev-parse", "--path-format=absolute", "--git-common-dir"]).await
        {
            settings.readable.push(PathBuf::from(common));
        }
        let spec = rigor_sandbox::SandboxSpec::new(dir, settings);
        match tokio::task::spawn_blocking(move || rigor_sandbox::Sandbox::new(spec)).await {
            Ok(Ok(sandbox)) => Ok(Some(std::sync::Arc::new(sandbox))),
            Ok(Err(err)) => {
                Err(format!("cannot sandbox the environment build: {err} (--sandbox off builds unconfined)"))
            }
            Err(join) => Err(format!("the sandbox probe crashed: {join}")),
        }
    }

    /// The cache key of an environment.
    pub fn key(&self, repo: &str, version: &str, env_commit: &str, spec: &EnvSpec) -> String {
        let commit = if spec.reads_repository() { &env_commit[..env_commit.len().min(12)] } else { "any" };
        let version = if version.is_empty() { "none" } else { version };
        format!("{}__{version}__{commit}__{}__{}", flat(repo), spec.build_digest(), self.installer_name())
    }

    fn installer_name(&self) -> &'static str {
        match self.installer {
            Installer::Uv => "uv",
            Installer::Pip => "pip",
        }
    }

    /// The environment of `repo` at `version` for `spec`, from the cache or built now from the
    /// `sources` at `env_commit` (the commit names the entry; the sources must be at it).
    pub async fn get(
        &self,
        repo: &str,
        version: &str,
        env_commit: &str,
        spec: &EnvSpec,
        sources: &impl Sources,
    ) -> Result<Environment, EnvError> {
        let key = self.key(repo, version, env_commit, spec);
        if spec.kind != ProjectKind::Python {
            return Ok(Environment {
                key,
                kind: spec.kind,
                venv: None,
                python: None,
                installer: None,
                build_secs: 0.0,
                base: None,
                fresh: false,
            });
        }
        self.entry(key, sources, Recipe::Spec(spec)).await
    }

    /// The cache key of a project's environment: its [`Dependencies::digest`] and the installer
    /// (not its path: a copy of the project with the same dependency files shares it).
    pub fn project_key(&self, dependencies: &Dependencies) -> String {
        format!("project__{}__{}", dependencies.digest, self.installer_name())
    }

    /// The environment of `project`, a Python project without a dataset spec, whose files are at
    /// `project.root`: from the cache, or built now from a copy of them ([`ProjectFiles`]) with
    /// what [`Dependencies::of`] reads: the requirement files, then the project itself (editable,
    /// with its test extra), then the runner's package. A project that cannot be installed is
    /// tolerated (the log says so; its requirements and the runner are still installed); a
    /// requirement that cannot be installed fails the build. `Ok(None)`: nothing to build (not a
    /// Python runner, or no dependency file).
    ///
    /// The tests are meant to import the code they test from the directory they run in (as
    /// [`crate::runner::TestRunner::run_ids`] does), not the copy installed here, so editing the
    /// code reuses the environment: only a change to the dependency files builds another.
    ///
    /// A failed build is not tried again by this process (a proof asks at every `finish`, and
    /// the same files would fail the same way); the next process tries again.
    pub async fn for_project(&self, project: &Project) -> Result<Option<Environment>, EnvError> {
        static FAILED: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
        let Some(dependencies) = Dependencies::of(&project.root, project.runner) else { return Ok(None) };
        let key = self.project_key(&dependencies);
        let dir = self.root.join(&key);
        let failed = || FAILED.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
        if let Some(message) = failed().get(&dir) {
            let message = format!("its build failed earlier in this run: {message}");
            return Err(EnvError { key, message, log: dir.join("build.log") });
        }
        let built = self.entry(key, &ProjectFiles(&project.root), Recipe::Project(&dependencies)).await;
        if let Err(err) = &built {
            failed().insert(dir, err.message.clone());
        }
        built.map(Some)
    }

    /// The entry `key`, from the cache or built now with `recipe` from `sources`.
    async fn entry(&self, key: String, sources: &impl Sources, recipe: Recipe<'_>) -> Result<Environment, EnvError> {
        let dir = self.root.join(&key);
        let ready = dir.join("ready.json");
        if let Some(env) = read_ready(&ready) {
            return Ok(env);
        }
        let lock = entry_lock(&key);
        let _guard = lock.lock().await;
        let err = |message: String| EnvError { key: key.clone(), message, log: dir.join("build.log") };
        std::fs::create_dir_all(&self.root).map_err(|e| err(format!("cannot create {}: {e}", self.root.display())))?;
        let _file_lock =
            FileLock::acquire(self.root.join(format!("{key}.lock"))).await.map_err(|e| err(format!("lock: {e}")))?;
        if let Some(env) = read_ready(&ready) {
            return Ok(env); // another worker or process built it meanwhile
        }
        let started = Instant::now();
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| err(format!("cannot create {}: {e}", dir.display())))?;
        let mut log = BuildLog::new(dir.join("build.log"));
        let result = self.build(sources, recipe, &dir, &mut log).await;
        match result {
            Ok((python, installer)) => {
                let env = Environment {
                    key: key.clone(),
                    kind: ProjectKind::Python,
                    venv: Some(dir.join("venv")),
                    python: Some(python),
                    installer: Some(installer),
                    build_secs: started.elapsed().as_secs_f64(),
                    base: None,
                    fresh: true,
                };
                let text = serde_json::to_string_pretty(&env).map_err(|e| err(e.to_string()))?;
                write_atomic(&ready, text.as_bytes()).map_err(|e| err(format!("{}: {e}", ready.display())))?;
                Ok(env)
            }
            Err(message) => {
                log.line(&format!("FAILED: {message}"));
                Err(err(message))
            }
        }
    }

    async fn build(
        &self,
        sources: &impl Sources,
        recipe: Recipe<'_>,
        dir: &Path,
        log: &mut BuildLog,
    ) -> Result<(String, Installer), String> {
        let wanted = match recipe {
            Recipe::Spec(spec) => spec.python.clone().unwrap_or_default(),
            Recipe::Project(_) => String::new(),
        };
        let (python, version) = find_python(&wanted).ok_or_else(|| {
            format!("no Python interpreter {wanted} (or newer) found on PATH, in pyenv or /usr: install one")
        })?;
        log.line(&format!("python {wanted} requested; using {} ({version})", python.display()));
        let src = dir.join("src");
        let needs_src = match recipe {
            Recipe::Spec(spec) => spec.reads_repository(),
            Recipe::Project(_) => true,
        };
        if needs_src {
            for note in sources.check_out(&src).await? {
                log.line(&note);
            }
        } else {
            std::fs::create_dir_all(&src).map_err(|e| e.to_string())?;
        }
        let mut installer = self.installer;
        if installer == Installer::Uv {
            match self.build_with(Installer::Uv, &python, recipe, dir, &src, log).await {
                Ok(()) => return Ok((version, installer)),
                Err(e) => {
                    log.line(&format!("uv build failed ({e}); retrying with pip"));
                    let _ = std::fs::remove_dir_all(dir.join("venv"));
                    installer = Installer::Pip;
                }
            }
        }
        self.build_with(installer, &python, recipe, dir, &src, log).await?;
        Ok((version, installer))
    }

    async fn build_with(
        &self,
        installer: Installer,
        python: &Path,
        recipe: Recipe<'_>,
        dir: &Path,
        src: &Path,
        log: &mut BuildLog,
    ) -> Result<(), String> {
        let no_spec = EnvSpec::default();
        let spec = match recipe {
            Recipe::Spec(spec) => spec,
            Recipe::Project(_) => &no_spec,
        };
        let venv = dir.join("venv");
        let venv_s = venv.display().to_string();
        let uv = if installer == Installer::Uv { Some(ensure_uv(log).await?) } else { None };
        let sandbox = self.build_sandbox(dir, python, uv.as_deref(), src).await?;
        // Builds unpack and compile in TMPDIR: on disk in the entry, not in the sandbox's small /tmp.
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        let mut env: Vec<(String, String)> = vec![
            ("VIRTUAL_ENV".into(), venv_s.clone()),
            ("PATH".into(), format!("{}:{}", venv.join("bin").display(), std::env::var("PATH").unwrap_or_default())),
            ("UV_PYTHON_DOWNLOADS".into(), "never".into()),
            ("UV_CACHE_DIR".into(), rigor_cache_dir().join("uv-cache").display().to_string()),
            ("PIP_DISABLE_PIP_VERSION_CHECK".into(), "1".into()),
            ("TMPDIR".into(), tmp.display().to_string()),
        ];
        env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let python_s = python.display().to_string();
        match &uv {
            Some(uv) => {
                let uv_s = uv.display().to_string();
                // pip, setuptools and wheel as the official images had them (setuptools with
                // `pkg_resources`), not today's.
                let seed = ["venv", "--seed", "--exclude-newer", crate::layer::OFFICIAL_IMAGES_DATE, "--python"];
                let args: Vec<&str> = seed.iter().copied().chain([python_s.as_str(), venv_s.as_str()]).collect();
                self.step(log, sandbox.as_ref(), &uv_s, &args, dir, &env).await?
            }
            None => self.step(log, sandbox.as_ref(), &python_s, &["-m", "venv", &venv_s], dir, &env).await?,
        }
        let vpython = venv.join("bin/python").display().to_string();
        let bound = spec.exclude_newer.as_deref().map(crate::layer::date_bound).unwrap_or_default();
        let unbounded = |args: Vec<String>| -> (String, Vec<String>) {
            match &uv {
                Some(uv) => {
                    let mut a = vec![
                        "pip".to_string(),
                        "install".into(),
                        "--compile-bytecode".into(),
                        "--python".into(),
                        vpython.clone(),
                    ];
                    a.extend(args);
                    (uv.display().to_string(), a)
                }
                None => {
                    let mut a = vec!["-m".to_string(), "pip".into(), "install".into()];
                    a.extend(args);
                    (vpython.clone(), a)
                }
            }
        };
        let install = |args: Vec<String>| {
            let (prog, mut a) = unbounded(args);
            if uv.is_some() {
                a.splice(2..2, bound.iter().cloned());
            }
            (prog, a)
        };
        if let Recipe::Project(dependencies) = recipe {
            self.install_project(dependencies, &install, log, sandbox.as_ref(), src, &env).await?;
            let _ = std::fs::remove_dir_all(&tmp);
            return Ok(());
        }
        let texts: Vec<String> = if spec.all_requirements {
            spec.requirements.iter().filter_map(|f| requirements_text(src, std::slice::from_ref(f))).collect()
        } else {
            requirements_text(src, &spec.requirements).into_iter().collect()
        };
        if !texts.is_empty() {
            let text = texts.concat();
            let file = dir.join("requirements.txt");
            std::fs::write(&file, text).map_err(|e| e.to_string())?;
            let (prog, args) = install(vec!["-r".into(), file.display().to_string()]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            self.step(log, sandbox.as_ref(), &prog, &args, src, &env).await?;
        } else if !spec.requirements.is_empty() {
            log.line(&format!(
                "none of the requirement files {:?} exists at the environment commit",
                spec.requirements
            ));
        }
        // Exact pins are installed as pinned, whatever the date bound (a spec may pin a release
        // newer than the environment commit); the rest within the bound.
        let (pinned, bounded): (Vec<String>, Vec<String>) =
            spec.pip_packages.iter().cloned().partition(|p| p.contains("==") && !p.contains(';'));
        // The official images' date bound, or the spec's when later: what their conda resolved
        // and what the spec's own unpinned packages (test runners, tools) resolve to.
        let official_bound = || -> Vec<String> {
            if uv.is_none() {
                return Vec::new();
            }
            let later =
                spec.exclude_newer.as_deref().filter(|d| d.get(..10) > crate::layer::OFFICIAL_IMAGES_DATE.get(..10));
            later
                .map(crate::layer::date_bound)
                .unwrap_or_else(|| crate::layer::date_bound(crate::layer::OFFICIAL_IMAGES_DATE))
        };
        if let Some(file) = spec.environment_files.iter().find(|f| src.join(f).is_file()) {
            let text = std::fs::read_to_string(src.join(file)).map_err(|e| format!("{file}: {e}"))?;
            let packages = crate::conda::pip_requirements(&text);
            log.line(&format!(
                "{file}: {} conda dependencies as pip requirements: {}",
                packages.len(),
                packages.join(" ")
            ));
            // Within the spec's pins, which the official images installed last (`pip install`
            // after the conda environment).
            let constraints = dir.join("constraints.txt");
            std::fs::write(&constraints, pinned.join("\n") + "\n")
                .map_err(|e| format!("{}: {e}", constraints.display()))?;
            let step_args = |packages: &[String]| {
                let (prog, mut args) = unbounded(packages.to_vec());
                let mut extra = official_bound();
                extra.extend(["-c".to_string(), constraints.display().to_string()]);
                args.splice(2..2, extra);
                (prog, args)
            };
            let (prog, args) = step_args(&packages);
            if let Err(e) = self.step(log, sandbox.as_ref(), &prog, &words(&args), src, &env).await {
                log.line(&format!("together they do not install ({e}); one by one, leaving out what does not"));
                let mut left_out = Vec::new();
                for package in &packages {
                    let (prog, args) = step_args(std::slice::from_ref(package));
                    if self.step(log, sandbox.as_ref(), &prog, &words(&args), src, &env).await.is_err() {
                        left_out.push(package.as_str());
                    }
                }
                log.line(&format!("left out of {file}: {}", left_out.join(" ")));
            }
        }
        if !pinned.is_empty() {
            let (prog, args) = unbounded(pinned);
            self.step(log, sandbox.as_ref(), &prog, &words(&args), src, &env).await?;
        }
        if !bounded.is_empty() {
            // The spec's own packages (test runners, tools) as the official images resolved them.
            let (prog, mut args) = unbounded(bounded);
            args.splice(2..2, official_bound());
            self.step(log, sandbox.as_ref(), &prog, &words(&args), src, &env).await?;
        }
        for command in &spec.pre_install {
            self.step(log, sandbox.as_ref(), "bash", &["-c", command], src, &env).await?;
        }
        if let Some(command) = &spec.install {
            // For an install per instance, the project's build requirements go into the
            // environment (as the official images had them), and the project builds with them:
            // uv's date bound does not reach an isolated build environment's own resolution.
            let mut bound = if uv.is_some() { bound.clone() } else { Vec::new() };
            if spec.reinstalls() && uv.is_some() && !command.contains("--no-build-isolation") {
                let build = crate::layer::build_requirements(src);
                if !build.is_empty() {
                    let official = crate::layer::date_bound(crate::layer::OFFICIAL_IMAGES_DATE);
                    let (prog, mut args) = unbounded(build);
                    args.splice(2..2, official);
                    match self.step(log, sandbox.as_ref(), &prog, &words(&args), src, &env).await {
                        Ok(()) => bound.push("--no-build-isolation".into()),
                        Err(e) => log.line(&format!("the build requirements stay out of the environment: {e}")),
                    }
                }
            }
            let command = install_command(command, uv.as_deref(), Path::new(&vpython), &bound);
            self.step(log, sandbox.as_ref(), "bash", &["-c", &command], src, &env).await?;
            if spec.reinstalls() {
                // Each instance installs its own copy on a layer (crate::layer): the environment
                // keeps the project's dependencies and build requirements, not the project at
                // the environment commit.
                let names = self
                    .run_capture(
                        sandbox.as_ref(),
                        &vpython,
                        &["-c", crate::layer::INSTALLED_FROM, &src.display().to_string()],
                        src,
                        &env,
                    )
                    .await;
                for name in names.lines().map(str::trim).filter(|n| !n.is_empty()) {
                    let (prog, args) = match &uv {
                        Some(uv) => (
                            uv.display().to_string(),
                            vec![
                                "pip".to_string(),
                                "uninstall".into(),
                                "--python".into(),
                                vpython.clone(),
                                name.into(),
                            ],
                        ),
                        None => (
                            vpython.clone(),
                            vec!["-m".to_string(), "pip".into(), "uninstall".into(), "-y".into(), name.into()],
                        ),
                    };
                    if let Err(e) = self.step(log, sandbox.as_ref(), &prog, &words(&args), src, &env).await {
                        log.line(&format!("the project {name} stays installed in the environment: {e}"));
                    }
                }
            }
        }
        let _ = std::fs::remove_dir_all(&tmp);
        Ok(())
    }

    /// The steps of a project's environment, in its fresh venv (see [`EnvCache::for_project`]);
    /// `install` is the installer's command line for some `install` arguments.
    async fn install_project(
        &self,
        dependencies: &Dependencies,
        install: &(dyn Fn(Vec<String>) -> (String, Vec<String>) + Sync),
        log: &mut BuildLog,
        sandbox: Option<&std::sync::Arc<rigor_sandbox::Sandbox>>,
        src: &Path,
        env: &[(String, String)],
    ) -> Result<(), String> {
        let texts = dependencies.requirements.iter().filter_map(|f| requirements_text(src, std::slice::from_ref(f)));
        // The project itself is installed next, on its own terms.
        let itself = |l: &&str| ["-e .", "."].contains(&l.trim()) || l.trim().starts_with(".[");
        let lines: Vec<String> =
            texts.flat_map(|t| t.lines().filter(|l| !itself(l)).map(str::to_owned).collect::<Vec<_>>()).collect();
        if lines.iter().any(|l| !l.trim().is_empty()) {
            // In the project's root, where its relative paths (`-c constraints.txt`) start.
            let file = src.join(".rigor-requirements.txt");
            std::fs::write(&file, lines.join("\n") + "\n").map_err(|e| format!("{}: {e}", file.display()))?;
            log.line(&format!("requirements from {}", dependencies.requirements.join(", ")));
            let (prog, args) = install(vec!["-r".into(), file.display().to_string()]);
            self.step(log, sandbox, &prog, &words(&args), src, env).await?;
        }
        if dependencies.installable {
            let extra = dependencies.test_extra.iter().map(|e| format!(".[{e}]"));
            let mut installed = false;
            for target in extra.chain([".".to_string()]) {
                let (prog, args) = install(vec!["-e".into(), target.clone()]);
                match self.step(log, sandbox, &prog, &words(&args), src, env).await {
                    Ok(()) => {
                        installed = true;
                        break;
                    }
                    Err(e) => log.line(&format!("the project could not be installed as {target}: {e}")),
                }
            }
            if !installed {
                log.line("going on without the project installed: its tests import it from where they run");
            }
        }
        if !dependencies.packages.is_empty() {
            let (prog, args) = install(dependencies.packages.clone());
            self.step(log, sandbox, &prog, &words(&args), src, env).await?;
        }
        Ok(())
    }

    /// The output of a command in the build (empty when it fails): a query, not a step.
    async fn run_capture(
        &self,
        sandbox: Option<&std::sync::Arc<rigor_sandbox::Sandbox>>,
        program: &str,
        args: &[&str],
        dir: &Path,
        env: &[(String, String)],
    ) -> String {
        let mut cmd = Cmd::new(program, args, dir).timeout(self.step_timeout).scrub(TEST_RUN_VARIABLES);
        if let Some(sandbox) = sandbox {
            cmd = cmd.sandbox(std::sync::Arc::clone(sandbox));
        }
        for (k, v) in env {
            cmd = cmd.env(k, v.clone());
        }
        match cmd.run().await {
            Ok(done) if done.success() => done.output,
            _ => String::new(),
        }
    }

    async fn step(
        &self,
        log: &mut BuildLog,
        sandbox: Option<&std::sync::Arc<rigor_sandbox::Sandbox>>,
        program: &str,
        args: &[&str],
        dir: &Path,
        env: &[(String, String)],
    ) -> Result<(), String> {
        log.line(&format!("+ {program} {}", args.join(" ")));
        let mut cmd = Cmd::new(program, args, dir).timeout(self.step_timeout).scrub(TEST_RUN_VARIABLES);
        if let Some(sandbox) = sandbox {
            cmd = cmd.sandbox(std::sync::Arc::clone(sandbox));
        }
        for (k, v) in env {
            cmd = cmd.env(k, v.clone());
        }
        let done = cmd.run().await.map_err(|e| format!("cannot run {program}: {e}"))?;
        log.text(&done.output);
        if done.timed_out {
            return Err(format!("{program} timed out after {:?}", self.step_timeout));
        }
        if !done.success() {
            return Err(format!("`{program} {}` exited with {:?}", args.join(" "), done.code));
        }
        Ok(())
    }
}

/// Variables of a test run (or of the caller's shell) that must not reach an environment build:
/// `PYTHONDONTWRITEBYTECODE` would leave the environment without bytecode (and a dependency
/// compiled at test time under `-W error` turns its warnings into errors), `PYTHONPATH` and
/// `PYTHONHOME` would install against other code, the others redirect or change installs.
pub const TEST_RUN_VARIABLES: &[&str] = &[
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONNOUSERSITE",
    "PYTHONUSERBASE",
    "PYTHONOPTIMIZE",
    "PYTHONSAFEPATH",
    "PYTHONWARNINGS",
    "PYTEST_ADDOPTS",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "PIP_TARGET",
    "PIP_PREFIX",
    "PIP_USER",
    "PIP_REQUIRE_VIRTUALENV",
    "UV_SYSTEM_PYTHON",
    "UV_PROJECT_ENVIRONMENT",
];

/// The arguments as `&str`s.
fn words(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Writes `bytes` to `path` through a synced temporary file in the same directory renamed over
/// it: a reader sees the old content or the new one, never a part. (rigor-core's `fsutil` has
/// the same; this crate sits below it.)
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map(drop).map_err(|e| e.error)
}

fn read_ready(path: &Path) -> Option<Environment> {
    let text = std::fs::read_to_string(path).ok()?;
    let env: Environment = serde_json::from_str(&text).ok()?;
    env.venv.as_ref().is_none_or(|v| v.join("bin/python").exists()).then_some(env)
}

/// Appends to `build.log` as the build goes.
struct BuildLog {
    path: PathBuf,
}

impl BuildLog {
    fn new(path: PathBuf) -> Self {
        let _ = std::fs::write(&path, "");
        Self { path }
    }
    fn line(&mut self, text: &str) {
        self.text(&format!("{text}\n"));
    }
    fn text(&mut self, text: &str) {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&self.path) {
            let _ = f.write_all(text.as_bytes());
        }
    }
}

/// The requirement files' text: the first of `paths` that exists under `src`, with `-r` includes
/// inlined one level and `-e .`, comments and `.[test` lines dropped (as the official harness),
/// and `types-pkg_resources` (yanked) replaced by `types-setuptools`.
pub fn requirements_text(src: &Path, paths: &[String]) -> Option<String> {
    let path = paths.iter().map(|p| src.join(p)).find(|p| p.is_file())?;
    let text = std::fs::read_to_string(&path).ok()?;
    let dir = path.parent().unwrap_or(src);
    let exclude = |l: &str| ["-e .", "#", ".[test"].iter().any(|x| l.trim().starts_with(x));
    let mut extra = Vec::new();
    let mut own = Vec::new();
    for line in text.lines() {
        if let Some(include) = line.trim().strip_prefix("-r") {
            if let Ok(inner) = std::fs::read_to_string(dir.join(include.trim())) {
                extra.extend(inner.lines().filter(|l| !exclude(l)).map(str::to_owned));
            }
        } else if !exclude(line) {
            own.push(line.to_string());
        }
    }
    extra.extend(own);
    let cleaned: Vec<String> = extra
        .into_iter()
        .map(|l| if l.trim().starts_with("types-pkg_resources") { "types-setuptools".into() } else { l })
        .collect();
    Some(cleaned.join("\n") + "\n")
}

/// A Python interpreter of minor version `wanted` (`"3.9"`), or the closest newer one; with no
/// wish, `python3`. Looks in `PATH` (not pyenv shims), pyenv's versions and /usr.
pub fn find_python(wanted: &str) -> Option<(PathBuf, String)> {
    let mut found: Vec<((u32, u32), PathBuf)> = Vec::new();
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).filter(|d| !d.to_string_lossy().contains("shims")).collect())
        .unwrap_or_default();
    let pyenv =
        std::env::var_os("PYENV_ROOT").map(PathBuf::from).or_else(|| dirs::home_dir().map(|h| h.join(".pyenv")));
    if let Some(root) = pyenv
        && let Ok(entries) = std::fs::read_dir(root.join("versions"))
    {
        let mut versions: Vec<PathBuf> = entries.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort();
        dirs.extend(versions);
    }
    dirs.extend([PathBuf::from("/usr/local/bin"), PathBuf::from("/usr/bin")]);
    for dir in &dirs {
        for minor in 5..=20 {
            let exe = dir.join(format!("python3.{minor}"));
            if exe.is_file() && !found.iter().any(|(v, _)| *v == (3, minor)) {
                found.push(((3, minor), exe));
            }
        }
    }
    let pick = if wanted.trim().is_empty() {
        let exe = dirs.iter().map(|d| d.join("python3")).find(|p| p.is_file())?;
        Some(exe)
    } else {
        let mut parts = wanted.trim_start_matches(">=").split('.');
        let major: u32 = parts.next()?.parse().ok()?;
        let minor: u32 = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
        found.sort_by_key(|(v, _)| *v);
        found.iter().find(|(v, _)| *v >= (major, minor)).map(|(_, p)| p.clone())
    }?;
    let out = std::process::Command::new(&pick).arg("--version").output().ok()?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let version = text.trim().trim_start_matches("Python ").to_string();
    Some((pick, version))
}

/// `uv`: on `PATH`, or in rigor's tool cache, else installed there from PyPI with pip.
pub async fn ensure_uv_path() -> Result<PathBuf, String> {
    if let Some(p) =
        std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join("uv")).find(|p| p.is_file()))
    {
        return Ok(p);
    }
    let tools = rigor_cache_dir().join("tools").join("uv-venv");
    let uv = tools.join("bin/uv");
    if uv.is_file() {
        return Ok(uv);
    }
    static INSTALL: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();
    let _guard = INSTALL.get_or_init(Default::default).lock().await;
    if uv.is_file() {
        return Ok(uv);
    }
    let (python, _) = find_python("").ok_or("no python3 to install uv with")?;
    let parent = tools.parent().unwrap_or(&tools).to_path_buf();
    std::fs::create_dir_all(&parent).map_err(|e| e.to_string())?;
    let tools_s = tools.display().to_string();
    let done = Cmd::new(&python.display().to_string(), &["-m", "venv", &tools_s], &parent).run().await;
    if !done.as_ref().is_ok_and(|d| d.success()) {
        return Err(format!("cannot create {tools_s} to install uv"));
    }
    let pip = tools.join("bin/pip").display().to_string();
    let done = Cmd::new(&pip, &["install", "-q", "uv"], &parent).run().await.map_err(|e| e.to_string())?;
    if !done.success() || !uv.is_file() {
        return Err(format!("pip install uv failed: {}", done.output.trim()));
    }
    Ok(uv)
}

async fn ensure_uv(log: &mut BuildLog) -> Result<PathBuf, String> {
    let uv = ensure_uv_path().await?;
    log.line(&format!("uv: {}", uv.display()));
    Ok(uv)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn requirements_follow_includes_and_drop_editable_lines() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("base.txt"), "click\n# note\n").unwrap();
        std::fs::write(dir.path().join("dev.txt"), "-r base.txt\n-e .\npytest>=6\ntypes-pkg_resources\n").unwrap();
        let text = requirements_text(dir.path(), &["missing.txt".into(), "dev.txt".into()]).unwrap();
        assert_eq!(text, "click\npytest>=6\ntypes-setuptools\n");
        assert!(requirements_text(dir.path(), &["nope.txt".into()]).is_none());
    }

    #[test]
    fn the_key_ignores_the_commit_when_the_repo_cannot_shape_the_env() {
        let cache = EnvCache::new(PathBuf::from("/tmp/x"), Installer::Uv);
        let plain = EnvSpec { pip_packages: vec!["pytest".into()], test_cmd: "pytest".into(), ..Default::default() };
        assert_eq!(cache.key("a/b", "1", "aaaa", &plain), cache.key("a/b", "1", "bbbb", &plain));
        let installs = EnvSpec { install: Some("pip install -e .".into()), ..plain };
        assert_ne!(cache.key("a/b", "1", "aaaa", &installs), cache.key("a/b", "1", "bbbb", &installs));
    }

    #[test]
    fn a_project_copy_leaves_out_version_control_environments_and_caches() {
        let from = tempfile::tempdir().unwrap();
        for file in [".git/HEAD", ".venv/bin/python", "env/pyvenv.cfg", "pkg/__pycache__/a.pyc", "node_modules/x.js"] {
            let path = from.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        std::fs::write(from.path().join("setup.py"), "setup()\n").unwrap();
        std::fs::write(from.path().join("pkg/__init__.py"), "").unwrap();
        std::os::unix::fs::symlink("pkg", from.path().join("alias")).unwrap();
        let to = tempfile::tempdir().unwrap();
        let dest = to.path().join("src");
        assert_eq!(copy_project(from.path(), &dest).unwrap(), 3);
        assert_eq!(std::fs::read_to_string(dest.join("setup.py")).unwrap(), "setup()\n");
        assert!(dest.join("pkg/__init__.py").is_file());
        assert_eq!(std::fs::read_link(dest.join("alias")).unwrap(), Path::new("pkg"), "a link stays a link");
        for left_out in [".git", ".venv", "env", "pkg/__pycache__", "node_modules"] {
            assert!(!dest.join(left_out).exists(), "{left_out} is not copied");
        }
    }

    #[test]
    fn tox_current_env_runs_the_environments_interpreter_not_a_bare_base() {
        assert_eq!(tox_current_envs("tox --current-env -epy39 -v -- tests/test_x.py -e nope"), ["py39"]);
        assert_eq!(tox_current_envs("x\ntox -e py38,lint --current-env --\ntox -e other"), ["py38", "lint"]);
        assert!(tox_current_envs("tox -epy39 -- tests").is_empty(), "plain tox builds its own environments");

        // A real venv and the test command's `python` through the fake environment.
        let dir = tempfile::tempdir().unwrap();
        let (base, version) = find_python("3").unwrap();
        let venv = dir.path().join("venv");
        let made = std::process::Command::new(&base).args(["-m", "venv", "--without-pip"]).arg(&venv).status();
        assert!(made.unwrap().success());
        let env = Environment {
            key: "k".into(),
            kind: ProjectKind::Python,
            venv: Some(venv.clone()),
            python: Some(version.clone()),
            installer: None,
            build_secs: 0.0,
            base: None,
            fresh: false,
        };
        let worktree = dir.path().join("worktree");
        let written = env.prepare_tox_current_env("tox --current-env -epy39 -v --", &worktree).unwrap();
        let minor = version.split('.').take(2).collect::<Vec<_>>().join(".");
        assert_eq!(written.len(), 3);
        assert!(worktree.join(format!(".tox/py39/bin/python{minor}")).is_file());
        let prefix = std::process::Command::new(worktree.join(".tox/py39/bin/python"))
            .args(["-c", "import sys; print(sys.prefix)"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&prefix.stdout).trim(), venv.display().to_string());
        assert!(env.prepare_tox_current_env("pytest -rA", &worktree).unwrap().is_empty());
    }

    #[test]
    fn finds_some_python() {
        let (path, version) = find_python("3").unwrap();
        assert!(path.is_file());
        assert!(version.starts_with('3'), "{version}");
    }
}
