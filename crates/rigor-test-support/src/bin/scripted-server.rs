//! `scripted-server --flavor openai|anthropic --script FILE [--port N]`
//!
//! Starts a [`ScriptedServer`] serving the steps of a JSON script (format in
//! `rigor_test_support::server`), prints its base URL on stdout (one line, flushed) and serves
//! until killed. Used by `bench/loop_overhead.sh` to drive rigor and other agents with the same
//! scripted trajectory.
//!
//! The server always listens on a random loopback port: `--port` is accepted for compatibility,
//! and a notice goes to stderr when the port actually bound differs.

use std::io::Write;
use std::process::ExitCode;

use rigor_test_support::server::{Flavor, ScriptedServer, parse_script};

const USAGE: &str = "usage: scripted-server --flavor openai|anthropic --script FILE [--port N]";

struct Args {
    flavor: Flavor,
    script: String,
    port: Option<u16>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut flavor = Flavor::OpenAi;
    let mut script = None;
    let mut port = None;
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name.to_string(), Some(value.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| inline.clone().or_else(|| args.next()).ok_or(format!("{what} needs a value"));
        match name.as_str() {
            "--flavor" => {
                flavor = match value("--flavor")?.to_ascii_lowercase().as_str() {
                    "openai" => Flavor::OpenAi,
                    "anthropic" => Flavor::Anthropic,
                    other => return Err(format!("unknown flavor {other:?} (openai or anthropic)")),
                }
            }
            "--script" => script = Some(value("--script")?),
            "--port" => {
                let text = value("--port")?;
                port = Some(text.parse().map_err(|_| format!("--port: not a port number: {text:?}"))?);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    let script = script.ok_or("--script FILE is required")?;
    Ok(Args { flavor, script, port })
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("scripted-server: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let text = match std::fs::read_to_string(&args.script) {
        Ok(text) => text,
        Err(err) => {
            eprintln!("scripted-server: cannot read {}: {err}", args.script);
            return ExitCode::from(2);
        }
    };
    let steps = match parse_script(&text) {
        Ok(steps) => steps,
        Err(err) => {
            eprintln!("scripted-server: {} is not a valid script: {err}", args.script);
            return ExitCode::from(2);
        }
    };
    let count = steps.len();
    let server = ScriptedServer::start_blocking(args.flavor, steps);
    let url = server.base_url();
    if let Some(port) = args.port
        && !url.contains(&format!(":{port}"))
    {
        eprintln!("scripted-server: cannot choose the port ({port}); listening on {url} instead");
    }
    eprintln!("scripted-server: {count} steps, serving on {url}");
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{url}").and_then(|()| stdout.flush()).is_err() {
        return ExitCode::FAILURE;
    }
    drop(stdout);
    // Serve until killed; the server runs on its own thread.
    loop {
        std::thread::park();
    }
}
