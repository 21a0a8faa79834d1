//! `rigor doctor`: checks what rigor needs on this machine and says what to do about each gap.
//!
//! Each check is run for real (the sandbox check starts a sandboxed `true` exactly as a run does),
//! and prints one row: ok / missing / warning, what was found, and the fix. The exit code is 0 when
//! everything a default `rigor run` needs is there (warnings allowed), 1 otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

use rigor_core::config::{Config, EMBEDDED_DEFAULT_MODEL, user_config_path};
use rigor_sandbox::{Sandbox, SandboxSettings, SandboxSpec};

use crate::output::Style;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Missing,
}

struct Check {
    name: &'static str,
    level: Level,
    found: String,
    fix: String,
}

/// Runs every check, prints the table, returns the exit code.
pub fn doctor(json: bool) -> u8 {
    let checks = vec![git(), bwrap(), sandbox(), python(), installer(), model(), on_path()];
    let failed = checks.iter().any(|c| c.level == Level::Missing);
    if json {
        for c in &checks {
            let level = match c.level {
                Level::Ok => "ok",
                Level::Warn => "warning",
                Level::Missing => "missing",
            };
            println!("{}", serde_json::json!({"check": c.name, "status": level, "found": c.found, "fix": c.fix}));
        }
    } else {
        let style = Style::detect();
        let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in &checks {
            let mark = match c.level {
                Level::Ok => style.green("ok     "),
                Level::Warn => style.yellow("warning"),
                Level::Missing => style.red("missing"),
            };
            println!("{mark}  {:width$}  {}", c.name, c.found);
            if c.level != Level::Ok && !c.fix.is_empty() {
                println!("         {:width$}  {}", "", style.dim(&format!("-> {}", c.fix)));
            }
        }
        println!(
            "\n{}",
            if failed {
                "rigor cannot run with its defaults here yet: fix the rows marked missing."
            } else {
                "rigor can run here."
            }
        );
    }
    u8::from(failed)
}

fn check(name: &'static str, level: Level, found: impl Into<String>, fix: impl Into<String>) -> Check {
    Check { name, level, found: found.into(), fix: fix.into() }
}

/// The first line of `program args…`'s output, if it runs and succeeds.
fn version_of(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok().filter(|o| o.status.success())?;
    let text = if out.stdout.is_empty() { out.stderr } else { out.stdout };
    Some(String::from_utf8_lossy(&text).lines().next().unwrap_or_default().trim().to_string())
}

fn git() -> Check {
    match version_of("git", &["--version"]) {
        Some(v) => check("git", Level::Ok, v, ""),
        None => check("git", Level::Missing, "not found", "install git (apt-get install git)"),
    }
}

fn bwrap() -> Check {
    match version_of("bwrap", &["--version"]) {
        Some(v) => check("bubblewrap", Level::Ok, v, ""),
        None => check(
            "bubblewrap",
            Level::Missing,
            "bwrap not found: rigor refuses to run the agent's commands without a sandbox",
            "install it (apt-get install bubblewrap, dnf install bubblewrap)",
        ),
    }
}

fn sandbox() -> Check {
    let dir = std::env::temp_dir();
    let spec = SandboxSpec::new(&dir, SandboxSettings::default());
    match Sandbox::new(spec) {
        Ok(sandbox) => check("sandbox", Level::Ok, sandbox.describe(), ""),
        Err(err) => check(
            "sandbox",
            Level::Missing,
            err.to_string(),
            "see the message: the probe runs `true` as every command runs",
        ),
    }
}

fn python() -> Check {
    match version_of("python3", &["--version"]) {
        Some(v) => check("python3", Level::Ok, v, ""),
        None => check(
            "python3",
            Level::Missing,
            "not found (the `python` tool, the embedded model's download and the harness need it)",
            "install Python 3 (apt-get install python3 python3-pip)",
        ),
    }
}

fn installer() -> Check {
    let pip = version_of("python3", &["-m", "pip", "--version"]);
    let uv = version_of("uv", &["--version"]);
    match (pip, uv) {
        (Some(p), Some(u)) => check("pip / uv", Level::Ok, format!("{p}; {u}"), ""),
        (Some(p), None) => {
            check("pip / uv", Level::Ok, format!("{p}; uv not installed (rigor eval fetches it when needed)"), "")
        }
        (None, Some(u)) => check(
            "pip / uv",
            Level::Warn,
            format!("{u}; no pip"),
            "rigor model fetch needs pip: apt-get install python3-pip",
        ),
        (None, None) => check(
            "pip / uv",
            Level::Missing,
            "neither pip nor uv",
            "apt-get install python3-pip (rigor model fetch and rigor eval install packages with them)",
        ),
    }
}

fn model() -> Check {
    let config = Config::load(None).unwrap_or_default();
    let configured = config.model.clone().or_else(|| std::env::var("RIGOR_MODEL").ok().filter(|m| !m.is_empty()));
    let keys = ["ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL"]
        .into_iter()
        .filter(|k| std::env::var(k).is_ok_and(|v| !v.is_empty()))
        .collect::<Vec<_>>();
    let spec = match config.choose_model(None) {
        Ok(spec) => spec,
        Err(err) => return check("model", Level::Missing, err.to_string(), "see `rigor config show`"),
    };
    if let Some(name) = config.embedded_model(&spec) {
        return match rigor_model::acquire::resolve_model(&name) {
            Ok(path) => check("model", Level::Ok, format!("{spec}: {}", path.display()), ""),
            Err(err) => check(
                "model",
                Level::Missing,
                format!("{spec}: {err}"),
                if spec == EMBEDDED_DEFAULT_MODEL {
                    format!(
                        "rigor model fetch {} (or set OPENAI_API_KEY / ANTHROPIC_API_KEY, or --model)",
                        rigor_model::acquire::DEFAULT_MODEL
                    )
                } else {
                    "rigor model list shows what is known and downloaded".to_string()
                },
            ),
        };
    }
    let source = match (&configured, keys.first()) {
        (Some(_), _) => {
            format!("configured in {}", user_config_path().map(|p| p.display().to_string()).unwrap_or_default())
        }
        (None, Some(key)) => format!("inferred from {key}"),
        (None, None) => String::new(),
    };
    match config.resolve_provider(&spec) {
        Ok(p) => check("model", Level::Ok, format!("{spec} at {} ({source})", p.base_url), ""),
        Err(err) => check("model", Level::Missing, format!("{spec}: {err}"), "set the key it names, or pass --model"),
    }
}

fn on_path() -> Check {
    let Ok(me) = std::env::current_exe() else {
        return check("PATH", Level::Warn, "cannot tell where this rigor binary is", "");
    };
    let dir = me.parent().map(Path::to_path_buf).unwrap_or_default();
    let path: Vec<PathBuf> = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    let same = |p: &PathBuf| p == &dir || p.canonicalize().ok() == dir.canonicalize().ok();
    if path.iter().any(same) {
        check("PATH", Level::Ok, format!("{} is on PATH", dir.display()), "")
    } else {
        check(
            "PATH",
            Level::Warn,
            format!("{} is not on PATH: `rigor` works only by its full path", dir.display()),
            format!("add it: echo 'export PATH=\"{}:$PATH\"' >> ~/.bashrc", dir.display()),
        )
    }
}
