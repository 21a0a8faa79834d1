//! Benchmark: latency the sandbox adds to one command, and policy throughput.
//!
//! Spawns `true`, `python3 -c pass` and the interpreter `python3` resolves to (through a pyenv
//! shim, `pyenv which python3`) N times bare (`std::process::Command`, same working directory)
//! and N times through the sandbox with every layer (bubblewrap namespaces and mounts, the
//! Landlock stage, seccomp, rlimits, the pids cgroup), interleaved, and prints medians; `true`
//! once more with a pause before each spawn, as an agent's commands come, which is when costs
//! that only a quick succession of spawns amortises show. Then the same commands in one
//! long-lived bash session, and the classification rate of the policy table. Prints the load
//! average before and after: wall-clock figures on a busy machine are not comparable. Run by
//! `bench/sandbox.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark program

#[path = "../tests/policy_table.rs"]
#[allow(dead_code)]
mod table;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rigor_sandbox::{Action, Sandbox, SandboxSettings, SandboxSpec};

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn time_bare(cwd: &Path, program: &str, args: &[&str]) -> Duration {
    let started = Instant::now();
    let status =
        Command::new(program).args(args).current_dir(cwd).stdin(Stdio::null()).stdout(Stdio::null()).status().unwrap();
    assert!(status.success());
    started.elapsed()
}

fn time_sandboxed(sandbox: &Sandbox, cwd: &Path, program: &str, args: &[&str]) -> Duration {
    let started = Instant::now();
    let prepared = sandbox.command(program, args, cwd).unwrap();
    let (mut command, guard) = (prepared.command, prepared.guard);
    let status = command.stdin(Stdio::null()).stdout(Stdio::null()).status().unwrap();
    assert!(status.success());
    let elapsed = started.elapsed();
    drop(guard);
    elapsed
}

/// Median time to run `command` in one long-lived bash started by `sandbox`.
fn session_times(sandbox: &Sandbox, cwd: &Path, command: &str, runs: usize) -> Duration {
    use std::io::{BufRead, BufReader, Write};
    let prepared = sandbox.command("bash", &["--noprofile", "--norc"], cwd).unwrap();
    let (mut command_line, guard) = (prepared.command, prepared.guard);
    let mut child = command_line.stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut times = Vec::new();
    let mut line = String::new();
    for _ in 0..runs {
        let started = Instant::now();
        writeln!(stdin, "{command}; echo __done").unwrap();
        stdin.flush().unwrap();
        loop {
            line.clear();
            stdout.read_line(&mut line).unwrap();
            if line.starts_with("__done") {
                break;
            }
        }
        times.push(started.elapsed());
    }
    drop(stdin);
    let _ = child.wait();
    drop(guard);
    median(times)
}

/// The load averages of the last 1, 5 and 15 minutes.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// The interpreter `python3` runs: through a pyenv shim, what `pyenv which python3` names;
/// otherwise the file on `PATH` with symbolic links resolved.
fn real_python() -> Option<PathBuf> {
    let pyenv = Command::new("pyenv").args(["which", "python3"]).stderr(Stdio::null()).output();
    if let Ok(out) = pyenv
        && out.status.success()
    {
        return Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("python3")).find(|p| p.is_file())?.canonicalize().ok()
}

/// One row of the per-spawn table.
struct Row {
    label: String,
    program: String,
    args: Vec<&'static str>,
    /// Pause before each pair of spawns.
    pause: Duration,
}

fn main() {
    rigor_sandbox::stage2::run_if_requested();
    let runs: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(200);
    let workspace = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::new(SandboxSpec::new(workspace.path(), SandboxSettings::default())).unwrap();
    println!("{}\n", sandbox.describe());
    println!("load average before: {}\n", load_average());
    let mut rows = vec![
        Row { label: "`true`".into(), program: "true".into(), args: vec![], pause: Duration::ZERO },
        Row {
            label: "`python3 -c pass`".into(),
            program: "python3".into(),
            args: vec!["-c", "pass"],
            pause: Duration::ZERO,
        },
    ];
    if let Some(python) = real_python() {
        rows.push(Row {
            label: format!("`{} -c pass` (what `python3` runs)", python.display()),
            program: python.to_string_lossy().into_owned(),
            args: vec!["-c", "pass"],
            pause: Duration::ZERO,
        });
    }
    let pause = Duration::from_millis(100);
    rows.push(Row { label: "`true`, 100 ms apart".into(), program: "true".into(), args: vec![], pause });
    println!("| command | bare median | sandboxed median | added | runs |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for row in &rows {
        let (mut bare, mut boxed) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            std::thread::sleep(row.pause);
            bare.push(time_bare(workspace.path(), &row.program, &row.args));
            std::thread::sleep(row.pause);
            boxed.push(time_sandboxed(&sandbox, workspace.path(), &row.program, &row.args));
        }
        let (b, s) = (median(bare), median(boxed));
        println!(
            "| {} | {:.2} ms | {:.2} ms | {:.2} ms | {runs} |",
            row.label,
            b.as_secs_f64() * 1e3,
            s.as_secs_f64() * 1e3,
            (s.as_secs_f64() - b.as_secs_f64()) * 1e3
        );
    }
    println!("\nIn a persistent session (how rigor's `bash` tool runs commands: one sandboxed bash per run):\n");
    println!("| command in the session | unconfined median | sandboxed median | added | runs |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for command in ["true", "python3 -c pass"] {
        let bare = session_times(&Sandbox::unconfined(), workspace.path(), command, runs);
        let boxed = session_times(&sandbox, workspace.path(), command, runs);
        println!(
            "| `{command}` | {:.2} ms | {:.2} ms | {:.2} ms | {runs} |",
            bare.as_secs_f64() * 1e3,
            boxed.as_secs_f64() * 1e3,
            (boxed.as_secs_f64() - bare.as_secs_f64()) * 1e3
        );
    }
    let (_root, policy) = table::fixture();
    let actions: Vec<Action> = table::TABLE
        .iter()
        .map(
            |(kind, code, _)| {
                if *kind == "sh" { Action::Shell(code.to_string()) } else { Action::Python(code.to_string()) }
            },
        )
        .collect();
    let rounds = 50;
    let started = Instant::now();
    for _ in 0..rounds {
        for action in &actions {
            std::hint::black_box(policy.check(action));
        }
    }
    let elapsed = started.elapsed();
    let n = rounds * actions.len();
    println!(
        "\npolicy: {n} classifications of the {}-row table in {:.1} ms: {:.0} per second ({:.1} µs each)",
        actions.len(),
        elapsed.as_secs_f64() * 1e3,
        n as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / n as f64
    );
    println!("\nload average after: {}", load_average());
}
