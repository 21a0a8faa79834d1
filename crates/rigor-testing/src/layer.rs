//! The per-instance install: a thin virtual environment layered over a cached one, in which the
//! project is installed again from the instance's own worktree, as the official eval script
//! re-runs the project's install per instance.
//!
//! Why: the cached environment is built once at the environment commit; an instance at another
//! commit needs what its own install produces: files generated at build time (setuptools-scm's
//! `_version.py`), dependencies added after the environment commit, its own entry points and
//! console scripts. Rebuilding the whole environment per instance would take minutes; a layer
//! takes about a second with a warm uv cache.
//!
//! How ([`install_layer`]): a new venv on the cached environment's interpreter, whose
//! `site-packages` ends with a `.pth` that adds the cached environment's `site-packages` (its own
//! `.pth` files included) after the layer's, so the layer wins; the cached environment's console
//! scripts copied with their interpreter line pointing at the layer; then, in the worktree and
//! confined like a test run, the spec's `pre_install` and `install` commands, the install with
//! `--no-deps`, offline and without an isolated build environment first (the cached environment
//! holds the project's build requirements), isolated next, and with the network only if that
//! fails; then the requirements of the installed project that the two environments do not
//! satisfy, installed into the layer (new dependencies). Changes the `pre_install` commands make
//! to tracked files are committed in the worktree (as the official image does), so they are not
//! part of any patch. Everything is byte-compiled, within the instance's date bound.
//!
//! The cached environment is never written: the layer is the instance's own. This module does
//! not build the cached environment ([`crate::env`]) nor run the tests ([`crate::runner`]).

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::env::{Environment, ensure_uv_path, rigor_cache_dir};
use crate::process::{Cmd, git, shell_quote};
use crate::runner::{TestCommand, TestRunner};
use crate::spec::EnvSpec;

/// Python that prints the names of the distributions installed from the directory `argv[1]`
/// (their `direct_url.json` names it).
pub const INSTALLED_FROM: &str = r#"
import importlib.metadata as m, json, os, sys
src = os.path.realpath(sys.argv[1])
for d in m.distributions():
    try:
        url = json.loads(d.read_text("direct_url.json") or "{}").get("url", "")
    except Exception:
        continue
    if url.startswith("file://") and os.path.realpath(url[7:]) == src:
        print(d.metadata["Name"])
"#;

/// Python that prints, one per line, the requirements of the distributions installed from
/// `argv[1]` (with the extras `argv[2:]`) that the environment does not satisfy.
const UNSATISFIED: &str = r#"
import importlib.metadata as m, json, os, sys
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement
src = os.path.realpath(sys.argv[1])
extras = [""] + sys.argv[2:]
seen = set()
for d in m.distributions():
    try:
        url = json.loads(d.read_text("direct_url.json") or "{}").get("url", "")
    except Exception:
        continue
    if not (url.startswith("file://") and os.path.realpath(url[7:]) == src):
        continue
    for line in d.requires or []:
        try:
            r = Requirement(line)
        except Exception:
            continue
        if r.marker and not any(r.marker.evaluate({"extra": e}) for e in extras):
            continue
        try:
            ok = r.specifier.contains(m.version(r.name), prereleases=True)
        except m.PackageNotFoundError:
            ok = False
        wanted = r.name + ("[" + ",".join(sorted(r.extras)) + "]" if r.extras else "") + str(r.specifier)
        if not ok and wanted not in seen:
            seen.add(wanted)
            print(wanted)
"#;

/// A ready layer.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The environment to run the instance's tests in: the layer, over the cached one.
    pub env: Environment,
    /// What was run, and its output.
    pub log: String,
    /// Whether a step needed the network (the uv cache lacked something).
    pub used_network: bool,
}

/// Why a layer could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("the per-instance install failed: {message}")]
pub struct LayerError {
    /// What failed.
    pub message: String,
    /// What was run, and its output.
    pub log: String,
}

/// The commands' shared settings.
struct Steps<'a> {
    runner: &'a TestRunner,
    worktree: &'a Path,
    env: Vec<(String, String)>,
    readable: Vec<PathBuf>,
    writable: Vec<PathBuf>,
    log: String,
    used_network: bool,
}

impl Steps<'_> {
    /// Runs `bash -c command` in the worktree; `Ok(false)` when it fails.
    async fn run(&mut self, command: &str, network: bool) -> Result<bool, String> {
        self.log.push_str(&format!("+ {command}{}\n", if network { "  (with the network)" } else { "" }));
        let (ok, output) = self.output(command, network).await?;
        self.log.push_str(&output);
        Ok(ok)
    }

    /// Runs `bash -c command` in the worktree: whether it succeeded, and its output.
    async fn output(&mut self, command: &str, network: bool) -> Result<(bool, String), String> {
        let mut cmd = TestCommand::new("bash", &["-c", command], self.worktree).git_writable();
        cmd.env = self.env.clone();
        cmd.readable = self.readable.clone();
        cmd.writable = self.writable.clone();
        if network {
            cmd = cmd.with_network();
            self.used_network = true;
        }
        let done = self.runner.run(&cmd).await?;
        if done.timed_out {
            return Err(format!("`{command}` timed out"));
        }
        Ok((done.exit_code == Some(0), done.log))
    }

    /// Runs an install command offline (`offline` is its offline form), then, if that fails,
    /// `online` with the network.
    async fn install(&mut self, offline: &str, online: &str) -> Result<(), String> {
        if self.run(offline, false).await? || self.run(online, true).await? {
            Ok(())
        } else {
            Err(format!("`{online}` failed"))
        }
    }
}

/// The `site-packages` directory of the venv at `venv`.
fn site_packages(venv: &Path) -> Option<PathBuf> {
    let lib = std::fs::read_dir(venv.join("lib")).ok()?;
    lib.flatten().map(|e| e.path().join("site-packages")).find(|p| p.is_dir())
}

/// The extras an install command asks for (`.[test]`, `'.[dev,docs]'`).
pub fn requested_extras(command: &str) -> Vec<String> {
    let mut extras = Vec::new();
    let mut rest = command;
    while let Some(at) = rest.find(".[") {
        let after = &rest[at + 2..];
        let Some(end) = after.find(']') else { break };
        extras.extend(after[..end].split(',').map(|e| e.trim().to_string()).filter(|e| !e.is_empty()));
        rest = &after[end..];
    }
    extras
}

/// Installs the instance in `worktree` on a layer at `dir` (which must not exist) over `base`,
/// the cached environment of `spec`; the commands run through `runner` (its sandbox), with
/// `exclude_newer` (RFC 3339) as the date bound of what they resolve. See the module
/// documentation.
pub async fn install_layer(
    base: &Environment,
    spec: &EnvSpec,
    worktree: &Path,
    dir: &Path,
    runner: &TestRunner,
    exclude_newer: Option<&str>,
) -> Result<Layer, LayerError> {
    let mut log = String::new();
    let fail = |message: String, log: &str| LayerError { message, log: log.to_string() };
    let started = Instant::now();
    let base_venv = base.venv.clone().ok_or_else(|| fail("the environment has no virtual environment".into(), ""))?;
    let base_python = base_venv.join("bin/python");
    let interpreter = base_python
        .canonicalize()
        .map_err(|e| fail(format!("the environment's interpreter {}: {e}", base_python.display()), ""))?;
    let uv = ensure_uv_path().await.ok();
    let dir_s = dir.display().to_string();
    let interpreter_s = interpreter.display().to_string();
    let scratch = dir.parent().unwrap_or(dir);
    let created = match &uv {
        Some(uv) => {
            Cmd::new(&uv.display().to_string(), &["venv", "-q", "--python", &interpreter_s, &dir_s], scratch)
                .env("UV_PYTHON_DOWNLOADS", "never")
                .run()
                .await
        }
        None => Cmd::new(&interpreter_s, &["-m", "venv", "--without-pip", &dir_s], scratch).run().await,
    }
    .map_err(|e| fail(format!("cannot create the layer {dir_s}: {e}"), ""))?;
    log.push_str(&created.output);
    if !created.success() {
        return Err(fail(format!("cannot create the layer {dir_s}"), &log));
    }
    let (Some(layer_site), Some(base_site)) = (site_packages(dir), site_packages(&base_venv)) else {
        return Err(fail(format!("no site-packages in {dir_s} or {}", base_venv.display()), &log));
    };
    // Last in the layer's sorted .pth files, so the layer's own come first.
    let pth = format!("import site; site.addsitedir({:?})\n", base_site.display().to_string());
    std::fs::write(layer_site.join("zz-rigor-base.pth"), pth).map_err(|e| fail(e.to_string(), &log))?;
    copy_scripts(&base_venv, dir).map_err(|e| fail(format!("cannot copy the console scripts: {e}"), &log))?;

    let layer =
        Environment { venv: Some(dir.to_path_buf()), base: Some(base_venv.clone()), fresh: true, ..base.clone() };
    let layer_python = dir.join("bin/python");
    let uv_cache = rigor_cache_dir().join("uv-cache");
    let mut env = layer.test_env(spec, worktree);
    env.retain(|(k, _)| k != "PYTHONDONTWRITEBYTECODE");
    env.push(("UV_CACHE_DIR".into(), uv_cache.display().to_string()));
    env.push(("UV_PYTHON_DOWNLOADS".into(), "never".into()));
    env.push(("PIP_DISABLE_PIP_VERSION_CHECK".into(), "1".into()));
    let mut readable = vec![base_venv.clone()];
    readable.extend(interpreter.parent().and_then(Path::parent).map(Path::to_path_buf));
    readable.extend(uv.as_deref().and_then(Path::parent).and_then(Path::parent).map(Path::to_path_buf));
    let _ = std::fs::create_dir_all(&uv_cache);
    let mut steps = Steps {
        runner,
        worktree,
        env,
        readable,
        writable: vec![dir.to_path_buf(), uv_cache],
        log,
        used_network: false,
    };
    let result = async {
        for command in &spec.pre_install {
            if !steps.run(command, false).await? {
                return Err(format!("the pre-install command `{command}` failed"));
            }
        }
        let bound = exclude_newer.or(spec.exclude_newer.as_deref()).filter(|_| uv.is_some());
        let bound = bound.map(date_bound).unwrap_or_default();
        let with = |extra: &[&'static str]| -> Vec<String> {
            extra.iter().map(|e| e.to_string()).chain(bound.iter().cloned()).collect()
        };
        if let Some(command) = &spec.install {
            // The environment holds the project's build requirements (crate::env installs them
            // for a spec that reinstalls): without an isolated build environment to make, the
            // install takes a fraction of the time. Then isolated, offline; then with the network.
            let quick = with(&["--no-deps", "--offline", "--no-build-isolation"]);
            let quick = install_command(command, uv.as_deref(), &layer_python, &quick);
            let offline = install_command(command, uv.as_deref(), &layer_python, &with(&["--no-deps", "--offline"]));
            let online = install_command(command, uv.as_deref(), &layer_python, &with(&["--no-deps"]));
            if uv.is_none() || command.contains("--no-build-isolation") || !steps.run(&quick, false).await? {
                steps.install(&offline, &online).await?;
            }
            let mut probe = vec![
                layer_python.display().to_string(),
                "-c".into(),
                UNSATISFIED.into(),
                worktree.display().to_string(),
            ];
            probe.extend(requested_extras(command));
            let quoted: Vec<String> = probe.iter().map(|a| shell_quote(a)).collect();
            let (_, output) = steps.output(&quoted.join(" "), false).await?;
            steps.log.push_str(&format!("requirements the environments lack: {}\n", output.trim().replace('\n', " ")));
            let missing: Vec<String> =
                output.lines().map(str::trim).filter(|l| !l.is_empty() && !l.contains(' ')).map(shell_quote).collect();
            if !missing.is_empty() {
                let pip = |extra: &[String]| {
                    install_command(
                        &format!("python -m pip install {}", missing.join(" ")),
                        uv.as_deref(),
                        &layer_python,
                        extra,
                    )
                };
                if let Err(bounded) = steps.install(&pip(&with(&["--offline"])), &pip(&with(&[]))).await {
                    // The instance pins a release newer than its issue (its base commit is later):
                    // it gets that release, as the official image did.
                    if !steps.run(&pip(&[]), true).await? {
                        return Err(bounded);
                    }
                }
            }
        }
        if !spec.pre_install.is_empty() {
            commit_setup(worktree).await?;
        }
        Ok(())
    }
    .await;
    let Steps { mut log, used_network, .. } = steps;
    log.push_str(&format!("layer ready in {:.2}s\n", started.elapsed().as_secs_f64()));
    match result {
        Ok(()) => Ok(Layer { env: layer, log, used_network }),
        Err(message) => Err(LayerError { message, log }),
    }
}

/// Commits what the setup commands changed in tracked files (the official image commits its
/// setup too), so that a patch, or an agent's diff, holds none of it.
async fn commit_setup(worktree: &Path) -> Result<(), String> {
    let changed = git(worktree, &["status", "--porcelain", "--untracked-files=no"]).await?;
    if changed.trim().is_empty() {
        return Ok(());
    }
    let who = ["-c", "user.name=rigor", "-c", "user.email=rigor@localhost", "-c", "commit.gpgsign=false"];
    git(worktree, &[&who[..], &["commit", "-q", "--no-verify", "-am", "rigor: environment setup"]].concat())
        .await
        .map(drop)
}

/// Copies the console scripts of the venv `base` into the layer at `layer`, their interpreter
/// line pointing at the layer's Python (which sees both environments); the layer's own stay.
fn copy_scripts(base: &Path, layer: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let needle = base.join("bin/python").display().to_string();
    let replacement = layer.join("bin/python").display().to_string();
    for entry in std::fs::read_dir(base.join("bin"))?.flatten() {
        let dest = layer.join("bin").join(entry.file_name());
        let Ok(meta) = entry.metadata() else { continue };
        if dest.exists() || !entry.file_type()?.is_file() || meta.len() > 1 << 20 {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(entry.path()) else { continue };
        if text.lines().take(3).any(|l| l.contains(&needle)) {
            std::fs::write(&dest, text.replace(&needle, &replacement))?;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(())
}

/// Build tools bounded by the date of the official images rather than the instance's: an old
/// instance's `setup.py` still builds with them (the setuptools of its own time cannot build an
/// editable install), as it did in the official harness.
const BUILD_TOOLS: [&str; 9] = [
    "setuptools",
    "setuptools-scm",
    "wheel",
    "pip",
    "hatchling",
    "hatch-vcs",
    "flit-core",
    "poetry-core",
    "extension-helpers",
];

/// When the official images were built, about: the bound of [`BUILD_TOOLS`] and of a spec's own
/// packages (or the instance's, if later).
pub const OFFICIAL_IMAGES_DATE: &str = "2024-06-01T00:00:00Z";

/// uv's options for the date bound `date` (RFC 3339): what is resolved was uploaded before it,
/// build tools before [`OFFICIAL_IMAGES_DATE`] at the earliest.
pub fn date_bound(date: &str) -> Vec<String> {
    let tools = if date.get(..10) > OFFICIAL_IMAGES_DATE.get(..10) { date } else { OFFICIAL_IMAGES_DATE };
    let mut args = vec!["--exclude-newer".to_string(), date.to_string()];
    for tool in BUILD_TOOLS {
        args.push("--exclude-newer-package".into());
        args.push(format!("{tool}={tools}"));
    }
    args
}

/// The build requirements a project's `pyproject.toml` in `dir` declares (`[build-system]
/// requires`), if it has any.
pub fn build_requirements(dir: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(dir.join("pyproject.toml")) else { return Vec::new() };
    let Ok(table) = text.parse::<toml::Table>() else { return Vec::new() };
    let requires = table.get("build-system").and_then(|b| b.get("requires")).and_then(|r| r.as_array());
    requires.map(|r| r.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

/// A spec's install command as it runs for the environment at `python`: `python -m pip install`
/// becomes `uv pip install --compile-bytecode --python PYTHON` (with uv; options uv does not
/// know dropped) or `PYTHON -m pip install`, followed by `extra`; other commands (`python setup.py
/// install`) run as written, the environment's `python` first on `PATH`.
pub fn install_command(command: &str, uv: Option<&Path>, python: &Path, extra: &[impl AsRef<str>]) -> String {
    const PIP: &str = "python -m pip install";
    let Some(at) = command.find(PIP) else { return command.to_string() };
    let extra = extra.iter().map(|e| format!(" {}", e.as_ref())).collect::<String>();
    let (head, tail) = (&command[..at], &command[at + PIP.len()..]);
    match uv {
        Some(uv) => {
            let tail = tail.replace(" --no-use-pep517", "");
            format!("{head}{} pip install --compile-bytecode --python {}{extra}{tail}", uv.display(), python.display())
        }
        None => {
            let extra = extra.replace(" --offline", " --no-index");
            format!("{head}{} -m pip install{extra}{tail}", python.display())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_commands_go_through_uv_with_bytecode_and_without_options_uv_lacks() {
        let uv = Path::new("/u/uv");
        let py = Path::new("/l/bin/python");
        assert_eq!(
            install_command(
                "python -m pip install -v --no-use-pep517 --no-build-isolation -e .",
                Some(uv),
                py,
                &["--no-deps"]
            ),
            "/u/uv pip install --compile-bytecode --python /l/bin/python --no-deps -v --no-build-isolation -e ."
        );
        assert_eq!(install_command("python setup.py install", Some(uv), py, &["--no-deps"]), "python setup.py install");
        assert_eq!(
            install_command("python -m pip install -e .", None, py, &["--offline"]),
            "/l/bin/python -m pip install --no-index -e ."
        );
        assert_eq!(requested_extras("python -m pip install -e '.[test, docs]' && x .[dev]"), ["test", "docs", "dev"]);
        assert!(requested_extras("python -m pip install -e .").is_empty());
    }
}
