//! `rigor view`: runs, trajectories, proofs and evaluation reports in the browser, served by a
//! small axum application on the loopback interface.
//!
//! What is served is decided once, from the path given ([`Served::open`]): a repository (its
//! `.rigor/runs/*`), one run directory, or a `rigor eval` output directory (its
//! `logs/run_evaluation/*`). Pages are rendered on the server with minijinja templates embedded in
//! the binary, every value escaped; tables sort, filter and page through query parameters, so
//! they work without JavaScript. The one script (`live.js`, embedded) appends the events of a run
//! in progress, which the server sends as they are written (server-sent events).
//!
//! Defences ([`guard`]): bound to 127.0.0.1 only; only loopback `Host` names are answered; a strict
//! Content-Security-Policy (no inline script, nothing from another origin); paths from URLs
//! confined to the served directories.
//!
//! This crate reads records; it never writes one, never runs an agent and never prints.

pub mod fixtures;
pub mod guard;
mod pages;
pub mod records;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use rigor_eval::report::LoadedRun;

/// Why a path cannot be viewed.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The path does not exist.
    #[error("cannot open {path}: {source}")]
    Missing {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not a repository with runs, a run directory or an evaluation output.
    #[error(
        "{0} holds no rigor records: give a repository (with .rigor/runs), a run directory (with trajectory.jsonl) or a `rigor eval` output directory (with logs/run_evaluation)"
    )]
    NothingToView(PathBuf),
    /// The server stopped with an error.
    #[error("the viewer stopped: {0}")]
    Serve(std::io::Error),
    /// The templates did not load (a build defect).
    #[error("template error: {0}")]
    Template(#[from] minijinja::Error),
}

/// What `rigor view` serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    /// The directory of run directories (`.rigor/runs`), canonical.
    pub runs: Option<PathBuf>,
    /// The evaluation output directory (holding `logs/run_evaluation`), canonical.
    pub evals: Option<PathBuf>,
    /// When one run directory was given: its id (the start page shows it).
    pub single_run: Option<String>,
}

impl Served {
    /// What `path` holds: a run directory, a repository with runs, an evaluation output (a
    /// repository may hold both runs and evaluations).
    pub fn open(path: &Path) -> Result<Served, ViewError> {
        let path = path.canonicalize().map_err(|source| ViewError::Missing { path: path.to_path_buf(), source })?;
        if path.join("trajectory.jsonl").is_file()
            && let (Some(parent), Some(name)) = (path.parent(), path.file_name())
        {
            return Ok(Served {
                runs: Some(parent.to_path_buf()),
                evals: None,
                single_run: Some(name.to_string_lossy().into_owned()),
            });
        }
        let runs = path.join(".rigor").join("runs");
        let runs = runs.is_dir().then(|| runs.canonicalize().ok()).flatten();
        // `.rigor/runs` itself is also a directory of runs.
        let runs = runs.or_else(|| {
            (path.file_name().is_some_and(|n| n == "runs") && path.parent().is_some_and(|p| p.ends_with(".rigor")))
                .then(|| path.clone())
        });
        let evals = path.join("logs").join("run_evaluation").is_dir().then(|| path.clone());
        if runs.is_none() && evals.is_none() {
            return Err(ViewError::NothingToView(path));
        }
        Ok(Served { runs, evals, single_run: None })
    }
}

/// Shared state of the handlers.
pub(crate) struct AppState {
    pub served: Served,
    pub templates: minijinja::Environment<'static>,
    /// Evaluation runs read from disk, by run id, with the modification time of their summary.
    pub eval_cache: Mutex<HashMap<String, (std::time::SystemTime, Arc<LoadedRun>)>>,
}

/// The viewer's application (all routes, behind the [`guard`] middleware).
pub fn app(served: Served) -> Result<Router, ViewError> {
    let state = Arc::new(AppState { served, templates: pages::templates()?, eval_cache: Mutex::new(HashMap::new()) });
    Ok(Router::new()
        .route("/", get(pages::index))
        .route("/runs", get(pages::runs))
        .route("/run/{id}", get(pages::run))
        .route("/run/{id}/events", get(pages::run_events))
        .route("/evals", get(pages::evals))
        .route("/eval/{run}", get(pages::eval))
        .route("/eval/{run}/{model}/{instance}", get(pages::instance))
        .route("/compare", get(pages::compare))
        .route("/raw/runs/{*path}", get(pages::raw_run_file))
        .route("/raw/evals/{*path}", get(pages::raw_eval_file))
        .route("/assets/{name}", get(pages::asset))
        .layer(axum::middleware::from_fn(guard::loopback_only))
        .with_state(state))
}

/// Binds `127.0.0.1:port` (0: any free port). The viewer listens on loopback only.
pub async fn bind(port: u16) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await
}

/// Serves `served` on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, served: Served) -> Result<(), ViewError> {
    let app = app(served)?;
    axum::serve(listener, app).await.map_err(ViewError::Serve)
}

#[cfg(test)]
mod tests;
