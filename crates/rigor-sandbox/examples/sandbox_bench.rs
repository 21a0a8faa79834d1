//! Benchmark: latency the sandbox adds to one command, and policy throughput.
//!
//! Spawns `true` and `python3 -c pass` N times bare (`std::process::Command`) and N times through
//! the sandbox with every layer (bubblewrap namespaces and mounts, the Landlock stage, seccomp,
//! rlimits, the pids cgroup), interleaved, and prints medians; then classifies every row of the
//! policy table repeatedly and prints classifications per second. Run by `bench/sandbox.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark program

#[path = "../tests/policy_table.rs"]
#[allow(dead_code)]
mod table;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rigor_sandbox::{Action, Sandbox, SandboxSettings, SandboxSpec};

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn time_bare(program: &str, args: &[&str]) -> Duration {
    let started = Instant::now();
    let status = Command::new(program).args(args).stdin(Stdio::null()).stdout(Stdio::null()).status().unwrap();
    assert!(status.success());
    started.elapsed()
}

fn time_sandboxed(sandbox: &Sandbox, cwd: &std::path::Path, program: &str, args: &[&str]) -> Duration {
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
fn session_times(sandbox: &Sandbox, cwd: &std::path::Path, command: &str, runs: usize) -> Duration {
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

fn main() {
    rigor_sandbox::stage2::run_if_requested();
    let runs: usize = std::env::args().nth(1).and_then(|n| n.parse().ok()).unwrap_or(200);
    let workspace = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::new(SandboxSpec::new(workspace.path(), SandboxSettings::default())).unwrap();
    println!("{}\n", sandbox.describe());
    println!("| command | bare median | sandboxed median | added | runs |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (program, args) in [("true", &[][..]), ("python3", &["-c", "pass"][..])] {
        let (mut bare, mut boxed) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            bare.push(time_bare(program, args));
            boxed.push(time_sandboxed(&sandbox, workspace.path(), program, args));
        }
        let (b, s) = (median(bare), median(boxed));
        let shown = if args.is_empty() { program.to_string() } else { format!("{program} {}", args.join(" ")) };
        println!(
            "| `{shown}` | {:.2} ms | {:.2} ms | {:.2} ms | {runs} |",
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
}
