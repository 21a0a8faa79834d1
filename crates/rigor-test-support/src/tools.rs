//! Third-party programs that tests drive (an MCP SDK, an MCP server), installed once from their
//! registry into `~/.cache/rigor/tools/NAME` (or `$RIGOR_CACHE/tools/NAME`) so that reruns are
//! offline. Each install goes to a temporary directory renamed into place when complete; `None`
//! (with the reason on stderr) when the package cannot be installed, for the test to skip.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The cache of installed test tools.
pub fn tools_dir() -> PathBuf {
    let base = std::env::var_os("RIGOR_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into())).join(".cache/rigor")
    });
    base.join("tools")
}

/// The Python interpreter of a virtual environment `name` holding `packages` (pip specs).
pub fn python_venv(name: &str, packages: &[&str]) -> Option<PathBuf> {
    let dir = install(name, |tmp| {
        run(Command::new("python3").args(["-m", "venv"]).arg(tmp))?;
        run(Command::new(tmp.join("bin/python")).args(["-m", "pip", "install", "-q"]).args(packages))
    })?;
    Some(dir.join("bin/python"))
}

/// The directory of the npm package `package` installed under `name`
/// (`NAME/node_modules/<package>`).
pub fn npm_package(name: &str, package: &str) -> Option<PathBuf> {
    let dir = install(name, |tmp| {
        run(Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(tmp)
            .arg(package))
    })?;
    let bare = package.rsplit_once('@').filter(|(head, _)| !head.is_empty()).map_or(package, |(head, _)| head);
    Some(dir.join("node_modules").join(bare))
}

fn install(name: &str, build: impl FnOnce(&Path) -> Result<(), String>) -> Option<PathBuf> {
    let dir = tools_dir().join(name);
    let ready = dir.join(".rigor-ready");
    if ready.exists() {
        return Some(dir);
    }
    let tmp = tools_dir().join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let result = std::fs::create_dir_all(&tmp).map_err(|e| e.to_string()).and_then(|()| build(&tmp));
    if let Err(why) = result {
        eprintln!("SKIP: cannot install the test tool {name}: {why}");
        let _ = std::fs::remove_dir_all(&tmp);
        return None;
    }
    let _ = std::fs::write(tmp.join(".rigor-ready"), "");
    if std::fs::rename(&tmp, &dir).is_err() {
        // Another test installed it meanwhile (or a stale, unready copy is in the way).
        if !ready.exists() {
            let _ = std::fs::remove_dir_all(&dir);
            let _ = std::fs::rename(&tmp, &dir);
        }
        let _ = std::fs::remove_dir_all(&tmp);
    }
    ready.exists().then_some(dir)
}

fn run(command: &mut Command) -> Result<(), String> {
    let out = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}
