//! `rigor model serve|list|fetch`, and the choice between the embedded model and a remote
//! provider for `rigor run`. The model itself lives in `rigor-model`; this file parses flags and
//! prints.

use std::net::SocketAddr;

use anyhow::{Context, Result, anyhow};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rigor_core::config::Config;
use rigor_llm::{Provider, build_provider};
use rigor_model::acquire::{self, DEFAULT_MODEL, FetchProgress, find_known};

/// `rigor model ...`.
#[derive(Subcommand)]
pub enum ModelAction {
    /// Serve a model as an OpenAI-compatible endpoint (/v1/chat/completions, /v1/models, /health).
    Serve(ServeArgs),
    /// List the models rigor knows and the GGUF files in the models directory.
    List,
    /// Download a model of the catalogue into the models directory (checksum-verified).
    Fetch {
        /// The model's name.
        #[arg(default_value = DEFAULT_MODEL)]
        name: String,
    },
}

/// Flags of `rigor model serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// Port to listen on (0: any free port).
    #[arg(long, default_value_t = 8081)]
    port: u16,
    /// Address to bind; loopback by default.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// A catalogue name (smollm2, qwen2.5-coder-1.5b) or the path of a GGUF file.
    #[arg(long, short, default_value = DEFAULT_MODEL)]
    model: String,
    /// Requests allowed to wait while one runs; more get HTTP 503.
    #[arg(long, default_value_t = 8)]
    queue: usize,
    /// Compute threads (0: all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// Applies `--threads` to the embedded model's compute pool, which is sized from
/// `CANDLE_NUM_THREADS` when first used. Call it before any thread is started.
pub fn set_compute_threads(args: &ServeArgs) {
    if args.threads > 0 {
        // SAFETY: called from `main` before the async runtime or any other thread exists, so no
        // thread can read the environment concurrently.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", args.threads.to_string()) };
    }
}

/// Runs a `rigor model` subcommand.
pub async fn model(action: ModelAction) -> Result<u8> {
    match action {
        ModelAction::List => list(),
        ModelAction::Fetch { name } => fetch(&name).await,
        ModelAction::Serve(args) => serve(args).await,
    }
}

fn list() -> Result<u8> {
    println!("models directory: {}", acquire::models_dir().display());
    for model in acquire::list() {
        let state = if model.present { "downloaded" } else { "not fetched" };
        println!("{:<20} {:>7.1} MB  {:<11}  {}", model.name, model.size as f64 / 1e6, state, model.description);
        if model.name == DEFAULT_MODEL {
            println!("{:<20} the default when no model is configured (`rigor run` with nothing set)", "");
        }
        if !model.license.is_empty() {
            println!("{:<20} licence: {}", "", model.license);
        }
        if model.present {
            println!("{:<20} {}", "", model.path.display());
        } else {
            println!("{:<20} fetch it with: rigor model fetch {}", "", model.name);
        }
    }
    Ok(0)
}

async fn fetch(name: &str) -> Result<u8> {
    let Some(model) = find_known(name) else {
        let names: Vec<&str> = acquire::CATALOGUE.iter().map(|m| m.name).collect();
        return Err(anyhow!(
            "unknown model `{name}`: rigor can fetch {}; for any other GGUF file pass --model local:/path/to/file.gguf",
            names.join(", ")
        ));
    };
    // Stages as lines; bytes on a bar (drawn only on a terminal).
    let bar = ProgressBar::hidden();
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} · {bytes_per_sec} · eta {eta}") {
        bar.set_style(style);
    }
    let shown = bar.clone();
    let path = tokio::task::spawn_blocking(move || {
        acquire::fetch(model, &|event| match event {
            FetchProgress::Stage(line) => shown.suspend(|| eprintln!("rigor: {line}")),
            FetchProgress::Bytes { done, total } => {
                if shown.is_hidden() && done < total {
                    shown.set_draw_target(ProgressDrawTarget::stderr());
                }
                shown.set_length(total);
                shown.set_position(done);
            }
        })
    })
    .await?;
    bar.finish_and_clear();
    println!("{}", path?.display());
    Ok(0)
}

async fn serve(args: ServeArgs) -> Result<u8> {
    let path = acquire::resolve_model(&args.model)?;
    let threads = args.threads;
    let engine = tokio::task::spawn_blocking(move || rigor_model::Engine::load(&path, threads)).await??;
    let name = match find_known(&args.model) {
        Some(known) => known.name.to_string(),
        None => engine.name().to_string(),
    };
    eprintln!(
        "rigor: loaded {} ({} layers, context {} tokens, {} threads) in {:.2}s",
        engine.name(),
        engine.config().n_layer,
        engine.context_length(),
        engine.threads(),
        engine.load_time().as_secs_f64()
    );
    let addr: SocketAddr =
        format!("{}:{}", args.host, args.port).parse().with_context(|| format!("bad address {}", args.host))?;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    // One line on stdout with the URL, so scripts can wait for it.
    println!("serving {name} at http://{local}/v1 (model name \"{name}\")");
    // One line per request on stderr: prompt and cached tokens, prefill and decode rates.
    let log: rigor_model::server::RequestLog = std::sync::Arc::new(|line| eprintln!("rigor: {line}"));
    let app = rigor_model::server::logged_router(engine.shared(), name, args.queue, log);
    // Streamed tokens are many small writes: TCP_NODELAY keeps Nagle's algorithm from holding them.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(0)
}

/// The provider for `model_spec`: the embedded model for `local:<name or path>` (unless the
/// config defines a provider called `local`), else the configured remote provider. When
/// `defaulted` (nothing was configured), says in one line that the embedded model is used.
pub fn provider_for(config: &Config, model_spec: &str, defaulted: bool) -> Result<Box<dyn Provider>> {
    let Some(local) = config.embedded_model(model_spec) else {
        return Ok(build_provider(config.resolve_provider(model_spec)?)?);
    };
    if defaulted {
        eprintln!(
            "rigor: no model configured: using the embedded model {model_spec} on the CPU (pass --model, or set \
             OPENAI_API_KEY or ANTHROPIC_API_KEY, for a stronger model)"
        );
    }
    let provider = rigor_model::provider::build(&local).map_err(|e| match e {
        rigor_model::ModelError::Missing { .. } => anyhow!(
            "{e}\n(or pass --model provider:model, e.g. openai:gpt-4o-mini, and set OPENAI_API_KEY or ANTHROPIC_API_KEY)"
        ),
        other => anyhow!(other),
    })?;
    Ok(provider)
}
