//! Architecture invariants, checked on the workspace's sources (after rust-analyzer's `tidy`):
//! - only `rigor-cli` writes to the terminal (`println!`, `print!`, `eprintln!`, `eprint!`,
//!   `dbg!`); every other crate reports through return values, events or `tracing`;
//! - only the crates whose job it is spawn processes (`Command::new(`);
//! - `rigor-protocol` is data only: it depends on `serde` and `serde_json` and nothing else.
//!
//! Test code is exempt: files under `tests/`, `examples/`, `benches/`, `src/bin/`, and every line
//! from a file's first `#[cfg(test)]` on. An exception is one entry below with its reason: a new
//! one must be justified the same way.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of a test binary

use std::path::{Path, PathBuf};

/// Files outside `rigor-cli` allowed to print, and why.
const PRINT_ALLOWED: &[(&str, &str)] = &[
    (
        "crates/rigor-sandbox/src/stage2.rs",
        "the second-stage helper is a process of its own between bubblewrap and the command: \
         stdout carries its probe answer (`landlock=...`) and stderr its setup failure to the parent",
    ),
    (
        "crates/rigor-test-support/src/server.rs",
        "test support only: the scripted server's failure goes where the test's output shows it",
    ),
    (
        "crates/rigor-test-support/src/tools.rs",
        "test support only: why a test skips (a test tool could not be installed) goes to the test's output",
    ),
];

/// Where processes may be spawned, and why. An entry ending in `/` covers a directory.
const SPAWN_ALLOWED: &[(&str, &str)] = &[
    ("crates/rigor-sandbox/", "builds the (confined) process of every model-chosen command"),
    ("crates/rigor-git/", "the one way git runs, with a repository's configured programs disabled"),
    (
        "crates/rigor-testing/src/process.rs",
        "the harness's and the test runner's commands, in a process group with a timeout",
    ),
    ("crates/rigor-test-support/", "fixtures of tests (repositories, scripted servers)"),
    ("crates/rigor-model/src/acquire.rs", "downloads and builds of local model servers the user asked for"),
    (
        "crates/rigor-eval/src/slurm.rs",
        "Slurm's own client commands (sbatch, squeue, sacct, scontrol) with arguments rigor builds; the \
         tasks they start run the rigor binary itself",
    ),
    (
        "crates/rigor-cli/src/view_cmd.rs",
        "`rigor view --open` starts the user's browser ($BROWSER or xdg-open) on the viewer's URL, only when asked",
    ),
    (
        "crates/rigor-cli/src/doctor.rs",
        "`rigor doctor` asks fixed host tools (bwrap, git, python3, ...) for their version; nothing \
         the model or a repository chooses",
    ),
    (
        "crates/rigor-eval/src/localization.rs",
        "the localization benchmark unpacks a `git archive` of a fixture commit with the host's `tar`",
    ),
    (
        "crates/rigor-testing/src/env.rs",
        "picking a Python interpreter for an environment: runs a found `python3 --version`, fixed arguments",
    ),
];

const PRINT_MACROS: &[&str] = &["println", "print", "eprintln", "eprint", "dbg"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// The `.rs` files under `dir`, recursively (skipping build output and hidden directories).
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// Each non-test source file of the workspace's crates: (path relative to the root, with `/`,
/// and its lines before the first `#[cfg(test)]`, numbered from 1, comments left out).
fn production_sources(root: &Path) -> Vec<(String, Vec<(usize, String)>)> {
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    files.sort();
    let mut sources = Vec::new();
    for path in files {
        let rel = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
        let is_test_code =
            rel.split('/').any(|c| matches!(c, "tests" | "examples" | "benches")) || rel.contains("/src/bin/");
        if is_test_code {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines = text
            .lines()
            .enumerate()
            .take_while(|(_, l)| !l.trim_start().starts_with("#[cfg(test)]"))
            .filter(|(_, l)| !l.trim_start().starts_with("//"))
            .map(|(i, l)| (i + 1, l.to_string()))
            .collect();
        sources.push((rel, lines));
    }
    assert!(sources.len() > 20, "found only {} source files under {}", sources.len(), root.display());
    sources
}

/// Whether `line` invokes the macro `name!` (not as the tail of a longer name).
fn uses_macro(line: &str, name: &str) -> bool {
    let pattern = format!("{name}!");
    line.match_indices(&pattern).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

fn allowed(rel: &str, list: &[(&str, &str)]) -> bool {
    list.iter().any(|(entry, _)| if entry.ends_with('/') { rel.starts_with(entry) } else { rel == *entry })
}

fn crate_of(rel: &str) -> &str {
    rel.split('/').nth(1).unwrap_or_default()
}

fn report(rule: &str, violations: &[String]) {
    assert!(violations.is_empty(), "{rule}:\n{}", violations.join("\n"));
}

#[test]
fn only_the_cli_prints() {
    let mut violations = Vec::new();
    for (rel, lines) in production_sources(&workspace_root()) {
        if crate_of(&rel) == "rigor-cli" || allowed(&rel, PRINT_ALLOWED) {
            continue;
        }
        for (n, line) in lines {
            if PRINT_MACROS.iter().any(|m| uses_macro(&line, m)) {
                violations.push(format!("{rel}:{n}: {}", line.trim()));
            }
        }
    }
    report(
        "only rigor-cli writes to the terminal; report through events, return values or tracing \
         (or justify an entry in PRINT_ALLOWED)",
        &violations,
    );
}

#[test]
fn only_the_crates_whose_job_it_is_spawn_processes() {
    let mut violations = Vec::new();
    for (rel, lines) in production_sources(&workspace_root()) {
        if allowed(&rel, SPAWN_ALLOWED) {
            continue;
        }
        for (n, line) in lines {
            if spawns(&line) {
                violations.push(format!("{rel}:{n}: {}", line.trim()));
            }
        }
    }
    report(
        "processes are spawned by rigor-sandbox, rigor-git, rigor-testing's process.rs and the other \
         entries of SPAWN_ALLOWED (add one with its reason if this is legitimate)",
        &violations,
    );
}

/// Whether `line` builds a process (`Command::new(`, not the tail of a longer name such as
/// `TestCommand::new(`).
fn spawns(line: &str) -> bool {
    let pattern = "Command::new(";
    line.match_indices(pattern).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

#[test]
fn the_protocol_crate_depends_on_serde_only() {
    let manifest = std::fs::read_to_string(workspace_root().join("crates/rigor-protocol/Cargo.toml")).unwrap();
    let deps = dependencies(&manifest);
    let unexpected: Vec<&String> = deps.iter().filter(|d| !matches!(d.as_str(), "serde" | "serde_json")).collect();
    assert!(
        unexpected.is_empty(),
        "rigor-protocol is data only (serde and serde_json); it also depends on: {unexpected:?}"
    );
    assert!(deps.iter().any(|d| d == "serde"), "the manifest was not understood: {deps:?}");
}

/// The names of the dependencies a manifest gives the library (not its dev-dependencies).
fn dependencies(manifest: &str) -> Vec<String> {
    let mut section = String::new();
    let mut deps = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
            // `[dependencies.foo]`, `[target.'cfg(unix)'.dependencies.foo]`
            if let Some((table, dep)) = section.rsplit_once('.')
                && is_dependency_table(table)
            {
                deps.push(dep.to_string());
            }
            continue;
        }
        if is_dependency_table(&section) && !line.is_empty() && !line.starts_with('#') {
            let key = line.split(['=', '.']).next().unwrap_or_default().trim();
            deps.push(key.trim_matches('"').to_string());
        }
    }
    deps
}

/// Tables of dependencies that end up in the library (dev-dependencies are for its tests).
fn is_dependency_table(section: &str) -> bool {
    let last = section.rsplit('.').next().unwrap_or_default();
    matches!(last, "dependencies" | "build-dependencies")
}

#[test]
fn the_checks_see_what_they_look_for() {
    assert!(uses_macro(r#"    println!("x");"#, "println"));
    assert!(uses_macro("let x = dbg!(y);", "dbg"));
    assert!(!uses_macro(r#"    eprintln!("x");"#, "println"), "eprintln is not println");
    assert!(!uses_macro("my_print!(x)", "print"));
    assert!(spawns("let c = std::process::Command::new(\"git\");"));
    assert!(spawns("Command::new(program)"));
    assert!(!spawns("TestCommand::new(\"bash\", &[], dir)"));
    assert!(is_dependency_table("dependencies"));
    assert!(is_dependency_table("target.'cfg(unix)'.dependencies"));
    assert!(!is_dependency_table("dev-dependencies"));
    let manifest = "[package]\nname = \"x\"\n[dependencies]\nserde.workspace = true\ntokio = \"1\"\n\
                    [dev-dependencies]\ntempfile = \"3\"\n[dependencies.regex]\nversion = \"1\"\n\
                    [target.'cfg(unix)'.dependencies]\nlibc = \"0.2\"\n";
    assert_eq!(dependencies(manifest), ["serde", "tokio", "regex", "libc"]);
}
