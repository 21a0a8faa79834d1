//! `rigor view [PATH] [--port N] [--open]`: serves runs, trajectories, proofs and evaluation
//! reports in the browser (see `rigor_view`). Prints the URL, then serves until interrupted.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

/// Arguments of `rigor view`.
#[derive(Args)]
pub struct ViewArgs {
    /// A repository (its .rigor/runs), a run directory, or a `rigor eval` output directory.
    #[arg(default_value = ".")]
    path: PathBuf,
    /// The port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Open the page in the browser ($BROWSER, else xdg-open).
    #[arg(long)]
    open: bool,
}

/// Runs `rigor view`.
pub async fn view(args: ViewArgs) -> anyhow::Result<u8> {
    let served = rigor_view::Served::open(&args.path)?;
    let listener = rigor_view::bind(args.port)
        .await
        .with_context(|| format!("cannot listen on 127.0.0.1:{} (is the port in use? try --port 0)", args.port))?;
    let url = format!("http://127.0.0.1:{}/", listener.local_addr()?.port());
    println!("rigor view: serving {} at {url}", args.path.display());
    println!("press Ctrl-C to stop");
    if args.open {
        let browser = std::env::var("BROWSER").unwrap_or_else(|_| "xdg-open".into());
        if let Err(err) = std::process::Command::new(&browser).arg(&url).spawn() {
            eprintln!("rigor view: cannot start {browser} ({err}); open {url} yourself");
        }
    }
    tokio::select! {
        served = rigor_view::serve(listener, served) => served?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(0)
}
