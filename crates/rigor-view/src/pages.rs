//! The handlers: each reads the records it needs and renders a template. Sorting, filtering and
//! paging happen here, from query parameters, so the tables work without JavaScript.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::{AutoEscape, Environment, Value, context};
use rigor_eval::record::{InstanceResult, InstanceStatus};
use rigor_eval::report::LoadedRun;
use rigor_protocol::Event;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::guard::{confine, is_plain_name};
use crate::records::{self, Item, RunRow};

type Shared = State<Arc<AppState>>;

/// Turns per page of a run.
pub const TURNS_PER_PAGE: u32 = 100;
/// Instances per page of an evaluation.
pub const INSTANCES_PER_PAGE: usize = 100;
/// Diff lines shown on a page (the raw file has all).
const MAX_DIFF_LINES: usize = 5_000;
/// How often a live page's trajectory is checked for new lines.
const LIVE_POLL: Duration = Duration::from_millis(200);

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("runs.html", include_str!("../templates/runs.html")),
    ("run.html", include_str!("../templates/run.html")),
    ("trajectory.html", include_str!("../templates/trajectory.html")),
    ("items.html", include_str!("../templates/items.html")),
    ("diff.html", include_str!("../templates/diff.html")),
    ("proof.html", include_str!("../templates/proof.html")),
    ("evals.html", include_str!("../templates/evals.html")),
    ("eval.html", include_str!("../templates/eval.html")),
    ("instance.html", include_str!("../templates/instance.html")),
    ("compare.html", include_str!("../templates/compare.html")),
    ("error.html", include_str!("../templates/error.html")),
];

/// The templates, HTML-escaping every value whatever the template's name.
pub fn templates() -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_filter("urlencode", urlencode);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)?;
    }
    Ok(env)
}

/// `value` percent-encoded for a URL path segment or query value (everything but unreserved
/// characters).
fn urlencode(value: &Value) -> String {
    let text = value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string());
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A page that could not be shown: a status and what to do.
pub struct PageError(StatusCode, String);

impl PageError {
    fn not_found(what: impl Into<String>) -> Self {
        PageError(StatusCode::NOT_FOUND, what.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let body = templates()
            .and_then(|env| env.get_template("error.html")?.render(context! { title => self.0.canonical_reason().unwrap_or("error"), message => &self.1, nav => context! { runs => false, evals => false } }))
            .unwrap_or_else(|e| format!("error: {e:#}"));
        (self.0, Html(body)).into_response()
    }
}

type Page = Result<Html<String>, PageError>;

/// A serde value as a template value.
fn ser<T: Serialize>(value: &T) -> Value {
    Value::from(minijinja::value::Serde(value))
}

fn render(state: &AppState, name: &str, ctx: Value) -> Page {
    let nav = context! { runs => state.served.runs.is_some(), evals => state.served.evals.is_some() };
    state.templates.get_template(name).and_then(|t| t.render(context! { nav => nav, ..ctx })).map(Html).map_err(|e| {
        let mut message = format!("template {name}: {e}");
        let mut cause = std::error::Error::source(&e);
        while let Some(inner) = cause {
            message.push_str(&format!(": {inner}"));
            cause = inner.source();
        }
        PageError(StatusCode::INTERNAL_SERVER_ERROR, message)
    })
}

pub async fn index(State(state): Shared) -> Response {
    match (&state.served.single_run, &state.served.runs) {
        (Some(id), _) => Redirect::to(&format!("/run/{id}")).into_response(),
        (None, Some(_)) => Redirect::to("/runs").into_response(),
        (None, None) => Redirect::to("/evals").into_response(),
    }
}

/// Sort key, order, and filters of a table, from the query string.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub struct TableQuery {
    #[serde(default)]
    sort: String,
    #[serde(default)]
    order: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    repo: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: Option<usize>,
}

impl TableQuery {
    fn descending(&self) -> bool {
        self.order == "desc"
    }
}

fn cmp_f64(a: f64, b: f64) -> std::cmp::Ordering {
    a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal)
}

pub async fn runs(State(state): Shared, Query(query): Query<TableQuery>) -> Page {
    let Some(dir) = state.served.runs.clone() else { return Err(PageError::not_found("no runs are served")) };
    let all = tokio::task::spawn_blocking(move || records::list_runs(&dir)).await.unwrap_or_default();
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    for row in &all {
        *statuses.entry(row.status.clone()).or_default() += 1;
    }
    let needle = query.q.to_lowercase();
    let mut rows: Vec<RunRow> = all
        .into_iter()
        .filter(|r| query.status.is_empty() || r.status == query.status)
        .filter(|r| needle.is_empty() || [&r.id, &r.model, &r.issue].iter().any(|f| f.to_lowercase().contains(&needle)))
        .collect();
    let sort = if query.sort.is_empty() { "id" } else { query.sort.as_str() };
    rows.sort_by(|a, b| match sort {
        "status" => a.status.cmp(&b.status),
        "model" => a.model.cmp(&b.model),
        "steps" => a.steps.cmp(&b.steps),
        "tokens" => a.tokens.cmp(&b.tokens),
        "cost" => cmp_f64(a.cost_usd, b.cost_usd),
        "time" => cmp_f64(a.secs, b.secs),
        "proof" => a.proof.cmp(&b.proof),
        _ => a.id.cmp(&b.id),
    });
    // Newest first unless asked otherwise.
    let descending = if query.sort.is_empty() && query.order.is_empty() { true } else { query.descending() };
    if descending {
        rows.reverse();
    }
    render(
        &state,
        "runs.html",
        context! { rows => ser(&rows), statuses => statuses, query => ser(&query), sort => sort, descending => descending },
    )
}

fn run_dir(state: &AppState, id: &str) -> Result<PathBuf, PageError> {
    let root = state.served.runs.as_ref().ok_or_else(|| PageError::not_found("no runs are served"))?;
    if !is_plain_name(id) {
        return Err(PageError::not_found(format!("{id:?} is not a run id")));
    }
    confine(root, id).map_err(|_| PageError::not_found(format!("no run {id}")))
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    page: Option<u32>,
}

/// What the trajectory section of a page shows: one page of turns, the timeline, totals.
struct TrajectoryView {
    ctx: Value,
    finished: bool,
    offset: u64,
    last_turn: u32,
    page: u32,
    pages: u32,
}

fn trajectory_view(path: &Path, page: Option<u32>) -> Option<TrajectoryView> {
    let bytes = std::fs::read(path).ok()?;
    let outline = records::outline(&bytes);
    let (finished, last_turn) = (outline.finished, outline.last_turn);
    let pages = last_turn.div_ceil(TURNS_PER_PAGE).max(1);
    // A run in progress opens on its last page, where new turns appear.
    let page = page.unwrap_or(if finished { 1 } else { pages }).clamp(1, pages);
    let (first, last) = ((page - 1) * TURNS_PER_PAGE + 1, page * TURNS_PER_PAGE);
    let parse = |&(start, end, _): &(usize, usize, u32)| {
        serde_json::from_slice::<rigor_core::trajectory::TrajectoryRecord>(&bytes[start..end]).ok()
    };
    // Only the lines of the turns shown are parsed in full.
    let shown: Vec<Item> = outline
        .lines
        .iter()
        .filter(|(_, _, turn)| (*turn == 0 && page == 1) || (first..=last).contains(turn))
        .filter_map(|line| records::item(&parse(line)?, line.2))
        .collect();
    let model_ms: u64 = outline.steps.iter().map(|s| s.model_ms).sum();
    let tool_ms: u64 = outline.steps.iter().map(|s| s.tool_ms).sum();
    let started = outline.lines.first().and_then(parse).and_then(|r| match r.event {
        Event::RunStarted { run_id, model, issue, base_commit, started_at, workspace, .. } => Some(context! {
            run_id, model, issue, base_commit, started_at, workspace
        }),
        _ => None,
    });
    let ctx = context! {
        items => ser(&shown),
        started => started,
        timeline => Value::from_safe_string(records::timeline_svg(&outline.steps, 300)),
        model_secs => model_ms as f64 / 1e3,
        tool_secs => tool_ms as f64 / 1e3,
        turns => last_turn,
        events => outline.lines.len(),
        page => page,
        pages => pages,
        first_turn => first,
        last_turn => last.min(last_turn),
    };
    Some(TrajectoryView { ctx, finished, offset: outline.end as u64, last_turn, page, pages })
}

fn diff_view(patch: &str) -> Value {
    let lines = records::diff_lines(patch, MAX_DIFF_LINES);
    let total = patch.lines().count();
    context! { lines => ser(&lines), cut => total.saturating_sub(lines.len()) }
}

fn proof_view(dir: &Path) -> Option<Value> {
    let proof = rigor_proof::proof::Proof::read(&dir.join("proof.json")).ok()?;
    let reproduction = proof.reproduction.as_ref().map(|r| {
        let tests = |list: &[rigor_proof::proof::TestResult]| {
            list.iter()
                .map(|t| context! { id => t.id.clone(), status => t.status.clone(), passed => t.passed() })
                .collect::<Vec<_>>()
        };
        context! { before => tests(&r.before), after => tests(&r.after), excerpt => r.before_excerpt.clone() }
    });
    let lines = proof.summary_lines();
    Some(context! {
        status => proof.status.as_str(),
        reason => proof.reason,
        lines => ser(&lines),
        reproduction => reproduction,
        broken => proof.regressions.broken,
        failing_before => proof.regressions.failing_before,
        environment => proof.environment,
        test_patch => diff_view(&proof.test_patch),
        secs => proof.secs,
    })
}

pub async fn run(State(state): Shared, UrlPath(id): UrlPath<String>, Query(query): Query<PageQuery>) -> Page {
    let dir = run_dir(&state, &id)?;
    let view = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            let trajectory = trajectory_view(&dir.join("trajectory.jsonl"), query.page)?;
            let row = RunRow::read(&dir)?;
            let patch = std::fs::read_to_string(dir.join("patch.diff")).unwrap_or_default();
            Some((trajectory, row, diff_view(&patch), proof_view(&dir)))
        })
        .await
        .ok()
        .flatten()
    };
    let Some((trajectory, row, diff, proof)) = view else {
        return Err(PageError::not_found(format!("run {id} has no readable trajectory")));
    };
    let live = (!trajectory.finished && !dir.join("result.json").exists() && trajectory.page == trajectory.pages)
        .then(|| format!("/run/{id}/events?from={}&turn={}", trajectory.offset, trajectory.last_turn));
    render(
        &state,
        "run.html",
        context! { raw => format!("/raw/runs/{id}"), id => id, row => ser(&row), t => trajectory.ctx, diff => diff, proof => proof, live => live },
    )
}

#[derive(Debug, Deserialize)]
pub struct LiveQuery {
    from: u64,
    #[serde(default)]
    turn: u32,
}

/// Server-sent events of a run in progress: `append` carries the HTML of new items, `finished`
/// says the run ended (the page then reloads to show the diff and the proof).
pub async fn run_events(
    State(state): Shared,
    UrlPath(id): UrlPath<String>,
    Query(query): Query<LiveQuery>,
) -> Result<impl IntoResponse, PageError> {
    let dir = run_dir(&state, &id)?;
    let trajectory = dir.join("trajectory.jsonl");
    struct Tail {
        offset: u64,
        turn: u32,
        done: bool,
    }
    let start = Tail { offset: query.from, turn: query.turn, done: false };
    let stream = futures_util::stream::unfold(start, move |mut tail| {
        let (state, dir, trajectory) = (state.clone(), dir.clone(), trajectory.clone());
        async move {
            if tail.done {
                return None;
            }
            loop {
                let read = {
                    let path = trajectory.clone();
                    let offset = tail.offset;
                    tokio::task::spawn_blocking(move || records::read_complete(&path, offset)).await
                };
                let Ok(Ok((new, offset))) = read else {
                    tail.done = true;
                    return Some((
                        Ok::<_, std::convert::Infallible>(SseEvent::default().event("finished").data("gone")),
                        tail,
                    ));
                };
                tail.offset = offset;
                let ended = new.iter().any(|r| matches!(r.event, Event::RunFinished { .. }));
                let (items, turn) = records::items(&new, tail.turn);
                tail.turn = turn;
                if !items.is_empty() {
                    let html = state
                        .templates
                        .get_template("items.html")
                        .and_then(|t| t.render(context! { items => ser(&items) }))
                        .unwrap_or_default();
                    tail.done = ended;
                    let event = if ended { "final" } else { "append" };
                    return Some((Ok(SseEvent::default().event(event).data(html)), tail));
                }
                if ended || dir.join("result.json").exists() {
                    tail.done = true;
                    return Some((Ok(SseEvent::default().event("finished").data("done")), tail));
                }
                tokio::time::sleep(LIVE_POLL).await;
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn eval_root(state: &AppState) -> Result<&Path, PageError> {
    state.served.evals.as_deref().ok_or_else(|| PageError::not_found("no evaluations are served"))
}

/// Every evaluation run id under the served output.
fn eval_run_ids(root: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(root.join("logs").join("run_evaluation"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("summary.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    ids
}

/// Run `run_id`, from the cache while its summary is unchanged.
async fn loaded(state: &Arc<AppState>, run_id: &str) -> Result<Arc<LoadedRun>, PageError> {
    let root = eval_root(state)?.to_path_buf();
    if !is_plain_name(run_id) {
        return Err(PageError::not_found(format!("{run_id:?} is not a run id")));
    }
    let summary = root.join("logs").join("run_evaluation").join(run_id).join("summary.json");
    let modified = std::fs::metadata(&summary)
        .and_then(|m| m.modified())
        .map_err(|_| PageError::not_found(format!("no evaluation run {run_id}")))?;
    if let Ok(cache) = state.eval_cache.lock()
        && let Some((at, run)) = cache.get(run_id)
        && *at == modified
    {
        return Ok(run.clone());
    }
    let id = run_id.to_string();
    let run = tokio::task::spawn_blocking(move || rigor_eval::report::load_run(&root, &id))
        .await
        .map_err(|e| PageError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(PageError::not_found)?;
    let run = Arc::new(run);
    if let Ok(mut cache) = state.eval_cache.lock() {
        cache.insert(run_id.to_string(), (modified, run.clone()));
    }
    Ok(run)
}

pub async fn evals(State(state): Shared) -> Page {
    let root = eval_root(&state)?;
    let mut runs = Vec::new();
    for id in eval_run_ids(root) {
        if let Ok(run) = loaded(&state, &id).await {
            let s = &run.summary;
            runs.push(context! {
                id => id, model => s.rigor.model.clone(), total => s.total_instances, resolved => s.resolved_instances,
                rate => s.rigor.resolved_rate * 100.0, cost => s.rigor.cost_usd, secs => s.rigor.total_secs,
            });
        }
    }
    render(&state, "evals.html", context! { runs => runs })
}

/// One instance's row in an evaluation table.
#[derive(Debug, Serialize)]
struct InstanceRow<'a> {
    id: &'a str,
    repo: &'a str,
    status: &'static str,
    proof: &'static str,
    f2p: Option<f64>,
    p2p: Option<f64>,
    tests_secs: f64,
    total_secs: f64,
    tokens: Option<u64>,
    cost: Option<f64>,
    model_dir: String,
    note: &'a str,
}

fn instance_row(r: &InstanceResult) -> InstanceRow<'_> {
    InstanceRow {
        id: &r.instance_id,
        repo: &r.repo,
        status: r.status.as_str(),
        proof: r.agent.as_ref().and_then(|a| a.proof_status).map_or("", |p| p.as_str()),
        f2p: r.f2p_rate.map(|x| x * 100.0),
        p2p: r.p2p_rate.map(|x| x * 100.0),
        tests_secs: r.timings.tests,
        total_secs: r.timings.total,
        tokens: r.agent.as_ref().map(|a| a.input_tokens + a.output_tokens),
        cost: r.agent.as_ref().map(|a| a.cost_usd),
        model_dir: rigor_eval::dataset::model_dir_name(&r.model),
        note: r.message.lines().next().unwrap_or_default(),
    }
}

fn pages_of(count: usize, page: Option<usize>) -> (usize, usize) {
    let pages = count.div_ceil(INSTANCES_PER_PAGE).max(1);
    (page.unwrap_or(1).clamp(1, pages), pages)
}

pub async fn eval(State(state): Shared, UrlPath(run_id): UrlPath<String>, Query(query): Query<TableQuery>) -> Page {
    let run = loaded(&state, &run_id).await?;
    let s = &run.summary;
    let mut results: Vec<&InstanceResult> = run
        .results
        .iter()
        .filter(|r| query.status.is_empty() || r.status.as_str() == query.status)
        .filter(|r| query.repo.is_empty() || r.repo == query.repo)
        .filter(|r| query.q.is_empty() || r.instance_id.contains(&query.q))
        .collect();
    let sort = if query.sort.is_empty() { "instance" } else { query.sort.as_str() };
    let tokens = |r: &InstanceResult| r.agent.as_ref().map_or(0, |a| a.input_tokens + a.output_tokens);
    let cost = |r: &InstanceResult| r.agent.as_ref().map_or(0.0, |a| a.cost_usd);
    results.sort_by(|a, b| match sort {
        "repo" => a.repo.cmp(&b.repo).then(a.instance_id.cmp(&b.instance_id)),
        "status" => a.status.as_str().cmp(b.status.as_str()),
        "tests" => cmp_f64(a.timings.tests, b.timings.tests),
        "time" => cmp_f64(a.timings.total, b.timings.total),
        "tokens" => tokens(a).cmp(&tokens(b)),
        "cost" => cmp_f64(cost(a), cost(b)),
        _ => a.instance_id.cmp(&b.instance_id),
    });
    if query.descending() {
        results.reverse();
    }
    let (page, pages) = pages_of(results.len(), query.page);
    let rows: Vec<InstanceRow> = results
        .iter()
        .skip((page - 1) * INSTANCES_PER_PAGE)
        .take(INSTANCES_PER_PAGE)
        .map(|r| instance_row(r))
        .collect();
    let per_repo: Vec<Value> = s
        .rigor
        .per_repo
        .iter()
        .map(|(repo, (resolved, total))| {
            let rate = *resolved as f64 / (*total).max(1) as f64;
            context! { repo => repo, resolved => resolved, total => total, rate => rate * 100.0, width => rate * 300.0 }
        })
        .collect();
    let totals: Vec<f64> = run.results.iter().map(|r| r.timings.total).collect();
    let costs: Vec<f64> = run.results.iter().filter_map(|r| r.agent.as_ref().map(|a| a.cost_usd)).collect();
    let others: Vec<String> = eval_run_ids(eval_root(&state)?).into_iter().filter(|id| *id != run_id).collect();
    render(
        &state,
        "eval.html",
        context! {
            run_id => run_id, s => ser(s), per_repo => per_repo, rows => ser(&rows), page => page, pages => pages,
            shown => results.len(), query => ser(&query), sort => sort, descending => query.descending(),
            time_histogram => Value::from_safe_string(rigor_eval::report::histogram_svg(&totals, "s")),
            cost_histogram => Value::from_safe_string(rigor_eval::report::histogram_svg(&costs, "USD")),
            others => others,
        },
    )
}

fn instance_dir(state: &AppState, run_id: &str, model: &str, instance: &str) -> Result<PathBuf, PageError> {
    let root = eval_root(state)?;
    if ![run_id, model, instance].iter().all(|n| is_plain_name(n)) {
        return Err(PageError::not_found("not an instance"));
    }
    confine(root, &format!("logs/run_evaluation/{run_id}/{model}/{instance}"))
        .map_err(|_| PageError::not_found(format!("no instance {instance} in run {run_id}")))
}

fn read_text(path: &Path, max: usize) -> Option<(String, bool)> {
    let bytes = std::fs::read(path).ok()?;
    let cut = bytes.len() > max;
    // Keep the tail: test output and logs end with what matters.
    let from = bytes.len().saturating_sub(max);
    Some((String::from_utf8_lossy(&bytes[from..]).into_owned(), cut))
}

pub async fn instance(
    State(state): Shared,
    UrlPath((run_id, model, instance)): UrlPath<(String, String, String)>,
    Query(query): Query<PageQuery>,
) -> Page {
    let dir = instance_dir(&state, &run_id, &model, &instance)?;
    let result = rigor_eval::record::read_result(&dir);
    let view = tokio::task::spawn_blocking(move || {
        let patch = std::fs::read_to_string(dir.join("patch.diff")).unwrap_or_default();
        let files: Vec<String> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        let logs: Vec<Value> = ["test_output.txt", "run_instance.log", "agent_output.txt", "env_build.log"]
            .iter()
            .filter_map(|name| {
                read_text(&dir.join(name), 64 * 1024)
                    .map(|(text, cut)| context! { name => *name, text => text, cut => cut })
            })
            .collect();
        let trajectory = trajectory_view(&dir.join("trajectory.jsonl"), query.page).map(|t| t.ctx);
        (diff_view(&patch), files, logs, trajectory, proof_view(&dir))
    })
    .await
    .map_err(|e| PageError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let (diff, mut files, logs, trajectory, proof) = view;
    files.sort();
    let row = result.as_ref().map(instance_row);
    render(
        &state,
        "instance.html",
        context! {
            raw => format!("/raw/evals/logs/run_evaluation/{run_id}/{model}/{instance}"),
            run_id => run_id, model => model, instance => instance, row => row.as_ref().map(ser),
            result => result.as_ref().map(|r| context! { message => r.message.clone(), timings => ser(&r.timings), applied_with => r.applied_with.clone(), tests_status => ser(&r.tests_status) }),
            diff => diff, files => files, logs => logs, t => trajectory, proof => proof,
        },
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct CompareQuery {
    #[serde(default)]
    a: String,
    #[serde(default)]
    b: String,
    #[serde(default)]
    only: String,
    page: Option<usize>,
}

pub async fn compare(State(state): Shared, Query(query): Query<CompareQuery>) -> Page {
    let (a, b) = (loaded(&state, &query.a).await?, loaded(&state, &query.b).await?);
    let status_b: BTreeMap<&str, &InstanceResult> = b.results.iter().map(|r| (r.instance_id.as_str(), r)).collect();
    let status_a: BTreeMap<&str, &InstanceResult> = a.results.iter().map(|r| (r.instance_id.as_str(), r)).collect();
    let ids: std::collections::BTreeSet<&str> = status_a.keys().chain(status_b.keys()).copied().collect();
    let resolved = |r: Option<&&InstanceResult>| r.is_some_and(|r| r.status == InstanceStatus::Resolved);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rows = Vec::new();
    for id in ids {
        let (ra, rb) = (status_a.get(id), status_b.get(id));
        let class = match (resolved(ra), resolved(rb)) {
            (true, true) => "both",
            (true, false) => "only_a",
            (false, true) => "only_b",
            (false, false) => "neither",
        };
        *counts.entry(class).or_default() += 1;
        if query.only.is_empty() || query.only == class {
            let side = |r: Option<&&InstanceResult>| {
                r.map(|r| {
                    context! { status => r.status.as_str(), model_dir => rigor_eval::dataset::model_dir_name(&r.model) }
                })
            };
            rows.push(context! { id => id, class => class, a => side(ra), b => side(rb) });
        }
    }
    let (page, pages) = pages_of(rows.len(), query.page);
    let shown = rows.len();
    let rows: Vec<Value> = rows.into_iter().skip((page - 1) * INSTANCES_PER_PAGE).take(INSTANCES_PER_PAGE).collect();
    render(
        &state,
        "compare.html",
        context! {
            a => query.a, b => query.b, only => query.only, counts => counts, rows => rows, page => page,
            pages => pages, shown => shown,
            sa => context! { model => a.summary.rigor.model.clone(), resolved => a.summary.resolved_instances, total => a.summary.total_instances },
            sb => context! { model => b.summary.rigor.model.clone(), resolved => b.summary.resolved_instances, total => b.summary.total_instances },
        },
    )
}

fn raw_file(root: Option<&Path>, path: &str) -> Response {
    let Some(root) = root else { return PageError::not_found("nothing served there").into_response() };
    let Ok(file) = confine(root, path) else { return PageError::not_found(format!("no file {path}")).into_response() };
    match std::fs::read(&file) {
        Ok(bytes) if file.is_file() => {
            let mut response = bytes.into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
            // Even if a browser were to render it, it would run nothing.
            headers.insert("content-security-policy", HeaderValue::from_static("sandbox; default-src 'none'"));
            response
        }
        _ => PageError::not_found(format!("no file {path}")).into_response(),
    }
}

pub async fn raw_run_file(State(state): Shared, UrlPath(path): UrlPath<String>) -> Response {
    raw_file(state.served.runs.as_deref(), &path)
}

pub async fn raw_eval_file(State(state): Shared, UrlPath(path): UrlPath<String>) -> Response {
    raw_file(state.served.evals.as_deref(), &path)
}

pub async fn asset(UrlPath(name): UrlPath<String>) -> Response {
    let (body, kind): (&'static str, &'static str) = match name.as_str() {
        "style.css" => (include_str!("../assets/style.css"), "text/css; charset=utf-8"),
        "live.js" => (include_str!("../assets/live.js"), "text/javascript; charset=utf-8"),
        _ => return PageError::not_found("no such asset").into_response(),
    };
    let mut response = body.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=3600"));
    response
}
