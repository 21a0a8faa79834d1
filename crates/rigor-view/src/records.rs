//! Reading run records into what the pages show: a run's row in the runs table ([`RunRow`]), its
//! events as display items ([`Item`]), the time per step ([`StepTime`]) and its diff as
//! classified lines ([`DiffLine`]). Nothing here renders HTML; the templates do (escaped).
//!
//! A run in progress has a trajectory that grows: [`read_complete`] reads only whole lines, and
//! says how many bytes it consumed, so that a live update continues exactly where the page ended.
//! Lines that are not records of a known event (a newer writer, a torn last line) are skipped.

use std::path::Path;

use rigor_core::trajectory::{RunResult, TrajectoryRecord};
use rigor_protocol::{ActionOutcome, Event, Verdict};
use serde::Serialize;

/// An observation longer than this (characters or lines) is collapsed.
const COLLAPSE_CHARS: usize = 1_500;
const COLLAPSE_LINES: usize = 20;

/// The records of the complete lines of `bytes`, and the length of the part they came from.
pub fn parse_complete(bytes: &[u8]) -> (Vec<TrajectoryRecord>, usize) {
    let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let records = bytes[..end]
        .split(|&b| b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .filter_map(|line| serde_json::from_slice(line).ok())
        .collect();
    (records, end)
}

/// The records of `path` from byte `offset` on (whole lines only), and the offset after them.
pub fn read_complete(path: &Path, offset: u64) -> std::io::Result<(Vec<TrajectoryRecord>, u64)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    let (records, used) = parse_complete(&bytes);
    Ok((records, offset + used as u64))
}

/// What a page needs of every line of a trajectory, read without building the event: its kind,
/// turn and timings. A page parses in full only the lines of the turns it shows.
#[derive(Debug, Clone, Default, serde::Deserialize)]
struct Glance {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    turn: Option<u32>,
    #[serde(default)]
    latency_ms: u64,
    #[serde(default)]
    duration_ms: u64,
}

/// The lines of a trajectory at a glance: each complete line's byte range and turn (carried
/// forward to events without one), the time per step, and whether the run finished.
#[derive(Debug, Default)]
pub struct Outline {
    /// `(start, end, turn)` of every record line.
    pub lines: Vec<(usize, usize, u32)>,
    /// Time per turn.
    pub steps: Vec<StepTime>,
    /// A `run_finished` record is present.
    pub finished: bool,
    /// The last turn.
    pub last_turn: u32,
    /// Bytes of complete lines.
    pub end: usize,
}

/// The outline of `bytes` (a trajectory file's content).
pub fn outline(bytes: &[u8]) -> Outline {
    let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut out = Outline { end, ..Outline::default() };
    let mut start = 0;
    for line in bytes[..end].split(|&b| b == b'\n') {
        let range = (start, start + line.len());
        start += line.len() + 1;
        let Ok(glance) = serde_json::from_slice::<Glance>(line) else { continue };
        if let Some(turn) = glance.turn {
            out.last_turn = turn;
        }
        let turn = out.last_turn;
        let step = |steps: &mut Vec<StepTime>| -> usize {
            if steps.last().is_none_or(|s| s.turn != turn) {
                steps.push(StepTime { turn, ..StepTime::default() });
            }
            steps.len() - 1
        };
        match glance.kind.as_str() {
            "model_response" => {
                let i = step(&mut out.steps);
                out.steps[i].model_ms += glance.latency_ms;
            }
            "observation" => {
                let i = step(&mut out.steps);
                out.steps[i].tool_ms += glance.duration_ms;
            }
            "run_finished" => out.finished = true,
            _ => {}
        }
        out.lines.push((range.0, range.1, turn));
    }
    out
}

/// One run in the runs table.
#[derive(Debug, Clone, Serialize, Default)]
pub struct RunRow {
    /// The run id (its directory's name).
    pub id: String,
    /// `submitted`, `abstained`, …, or `running` while there is no result.
    pub status: String,
    /// `provider:model`.
    pub model: String,
    /// Model turns.
    pub steps: u32,
    /// Input plus output tokens.
    pub tokens: u64,
    /// US dollars.
    pub cost_usd: f64,
    /// Wall-clock seconds.
    pub secs: f64,
    /// The proof's status, when the run has a `proof.json`.
    pub proof: String,
    /// The first line of the issue.
    pub issue: String,
}

impl RunRow {
    /// The row of the run in `dir`: `result.json` when the run finished, else what its trajectory
    /// says so far. `None` when `dir` holds no run record.
    pub fn read(dir: &Path) -> Option<RunRow> {
        let id = dir.file_name()?.to_string_lossy().into_owned();
        let trajectory = dir.join("trajectory.jsonl");
        let result: Option<RunResult> =
            std::fs::read(dir.join("result.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let mut row = match &result {
            Some(r) => RunRow {
                id,
                status: r.status.as_str().into(),
                model: r.model.clone(),
                steps: r.totals.steps,
                tokens: r.totals.usage.total(),
                cost_usd: r.totals.cost_usd,
                secs: r.totals.duration_ms as f64 / 1000.0,
                ..RunRow::default()
            },
            None if trajectory.is_file() => {
                let (records, _) = read_complete(&trajectory, 0).ok()?;
                RunRow { id, ..RunRow::from_records(&records) }
            }
            None => return None,
        };
        if let Some(issue) = first_record(&trajectory).and_then(|r| match r.event {
            Event::RunStarted { issue, .. } => Some(issue),
            _ => None,
        }) {
            row.issue = issue.lines().find(|l| !l.trim().is_empty()).unwrap_or_default().chars().take(120).collect();
        }
        row.proof = proof_status(dir).unwrap_or_default();
        Some(row)
    }

    /// A row from a run's records (its status `running` until `run_finished`).
    pub fn from_records(records: &[TrajectoryRecord]) -> RunRow {
        let mut row = RunRow { status: "running".into(), ..RunRow::default() };
        for record in records {
            match &record.event {
                Event::RunStarted { model, run_id, .. } => {
                    row.model = model.clone();
                    row.id = run_id.clone();
                }
                Event::ModelResponse { usage, cost_usd, .. } => {
                    row.steps += 1;
                    row.tokens += usage.total();
                    row.cost_usd += cost_usd;
                }
                Event::RunFinished { status, totals, .. } => {
                    row.status = status.as_str().into();
                    row.steps = totals.steps;
                    row.tokens = totals.usage.total();
                    row.cost_usd = totals.cost_usd;
                }
                _ => {}
            }
            row.secs = record.elapsed_ms as f64 / 1000.0;
        }
        row
    }
}

fn first_record(path: &Path) -> Option<TrajectoryRecord> {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(std::fs::File::open(path).ok()?).read_line(&mut line).ok()?;
    serde_json::from_str(&line).ok()
}

/// The `status` of `dir/proof.json`, if there is one.
pub fn proof_status(dir: &Path) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("proof.json")).ok()?).ok()?;
    value.get("status")?.as_str().map(str::to_string)
}

/// Every run under `runs_dir` (`.rigor/runs`), in no particular order.
pub fn list_runs(runs_dir: &Path) -> Vec<RunRow> {
    let Ok(entries) = std::fs::read_dir(runs_dir) else { return Vec::new() };
    entries.flatten().filter(|e| e.path().is_dir()).filter_map(|e| RunRow::read(&e.path())).collect()
}

/// A tool call as the page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CallView {
    /// The tool.
    pub name: String,
    /// The arguments, pretty-printed when they are JSON.
    pub arguments: String,
}

/// One displayed event of a trajectory.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Item {
    /// `turn`, `model`, `observation`, `policy`, `approval`, `retry`, `condensed`, `user`,
    /// `notice`, `proof`, `finished`, `replay`.
    pub kind: &'static str,
    /// The turn it belongs to.
    pub turn: u32,
    /// A short heading (tool name, verdict, status).
    pub title: String,
    /// The main text.
    pub text: String,
    /// One line of figures (tokens, time, cost).
    pub meta: String,
    /// Whether the text is long enough to be collapsed.
    pub long: bool,
    /// What a collapsed text shows: its first line, cut.
    pub preview: String,
    /// Lines of `text`.
    pub lines: usize,
    /// A tool call's or policy decision's severity for highlighting: `ok`, `warn`, `bad`.
    pub level: &'static str,
    /// Tool calls of a model response.
    pub calls: Vec<CallView>,
}

/// The display item of `record`, given the turn it falls in (`None`: not shown, e.g. a
/// `tool_call`, whose arguments the model response already shows).
pub fn item(record: &TrajectoryRecord, turn: u32) -> Option<Item> {
    let base = Item { turn, level: "ok", ..Item::default() };
    let item = match &record.event {
        Event::ModelRequest { turn, estimated_tokens, messages } => Item {
            kind: "turn",
            turn: *turn,
            title: format!("Turn {turn}"),
            meta: format!(
                "{messages} messages · ~{estimated_tokens} tokens · at {:.1} s",
                record.elapsed_ms as f64 / 1e3
            ),
            ..base
        },
        Event::ModelResponse { message, usage, cost_usd, latency_ms, finish_reason, .. } => Item {
            kind: "model",
            title: "model".into(),
            text: message.content.clone(),
            meta: format!(
                "{} in + {} out tokens · {:.2} s · ${cost_usd:.4} · {finish_reason}",
                usage.input_tokens,
                usage.output_tokens,
                *latency_ms as f64 / 1e3
            ),
            calls: message
                .tool_calls
                .iter()
                .map(|c| CallView { name: c.name.clone(), arguments: pretty(&c.arguments) })
                .collect(),
            ..base
        },
        Event::Observation { name, content, is_error, duration_ms, .. } => {
            let lines = content.lines().count();
            Item {
                kind: "observation",
                title: name.clone(),
                long: content.len() > COLLAPSE_CHARS || lines > COLLAPSE_LINES,
                preview: content.lines().next().unwrap_or_default().chars().take(120).collect(),
                lines,
                text: content.clone(),
                meta: format!("{:.2} s", *duration_ms as f64 / 1e3),
                level: if *is_error { "bad" } else { "ok" },
                ..base
            }
        }
        Event::PolicyDecision { tool, action, verdict, category, rule, reason, outcome, .. } => Item {
            kind: "policy",
            title: format!("policy: {verdict} ({category}) → {outcome}"),
            text: action.clone(),
            meta: format!("{tool} · rule {rule} · {reason}"),
            level: match (verdict, outcome) {
                (_, ActionOutcome::Refused | ActionOutcome::Rejected) | (Verdict::Deny, _) => "bad",
                (Verdict::Ask, _) => "warn",
                _ => "ok",
            },
            ..base
        },
        Event::ApprovalRequested { tool, action, verdict, category, reason, .. } => Item {
            kind: "approval",
            title: format!("approval requested: {verdict} ({category})"),
            text: action.clone(),
            meta: format!("{tool} · {reason}"),
            level: "warn",
            ..base
        },
        Event::Retry { attempt, wait_ms, reason } => Item {
            kind: "retry",
            title: format!("retry after attempt {attempt}"),
            text: reason.clone(),
            meta: format!("waiting {:.1} s", *wait_ms as f64 / 1e3),
            level: "warn",
            ..base
        },
        Event::Condensed { before_tokens, after_tokens, messages_affected } => Item {
            kind: "condensed",
            title: "history condensed".into(),
            meta: format!("~{before_tokens} → ~{after_tokens} tokens · {messages_affected} messages"),
            level: "warn",
            ..base
        },
        Event::UserMessage { content, from_user, .. } => Item {
            kind: "user",
            title: if *from_user { "user".into() } else { "loop".into() },
            text: content.clone(),
            ..base
        },
        Event::Notice { message } => Item { kind: "notice", title: "notice".into(), text: message.clone(), ..base },
        Event::ProofStep { phase, outcome, detail, secs } => Item {
            kind: "proof",
            title: format!("proof: {} {}", serde_name(phase), serde_name(outcome)),
            text: detail.clone(),
            meta: format!("{secs:.1} s"),
            level: match outcome {
                rigor_protocol::StepOutcome::Passed => "ok",
                rigor_protocol::StepOutcome::Failed => "bad",
                rigor_protocol::StepOutcome::Skipped => "warn",
            },
            ..base
        },
        Event::RunFinished { status, summary, totals, .. } => Item {
            kind: "finished",
            title: format!("run {status}", status = status.as_str()),
            text: summary.clone(),
            meta: format!(
                "{} steps · {} tool calls · {} tokens · ${:.4} · {:.1} s",
                totals.steps,
                totals.tool_calls,
                totals.usage.total(),
                totals.cost_usd,
                totals.duration_ms as f64 / 1e3
            ),
            level: if matches!(status, rigor_protocol::RunStatus::Submitted) { "ok" } else { "warn" },
            ..base
        },
        Event::RequestFinished { status, summary, .. } => Item {
            kind: "notice",
            title: format!("request {status}", status = status.as_str()),
            text: summary.clone(),
            level: if matches!(status, rigor_protocol::RunStatus::Submitted) { "ok" } else { "warn" },
            ..base
        },
        Event::Undone { files, .. } => {
            Item { kind: "notice", title: "undo".into(), text: files.join("\n"), level: "warn", ..base }
        }
        Event::ReplayReport { reproduced, divergences, patch_identical, .. } => Item {
            kind: "replay",
            title: if *reproduced { "replay reproduced the run".into() } else { "replay diverged".into() },
            meta: format!("{divergences} divergences · patch identical: {patch_identical}"),
            level: if *reproduced { "ok" } else { "bad" },
            ..base
        },
        Event::RunStarted { .. }
        | Event::TextDelta { .. }
        | Event::ToolCall { .. }
        | Event::PrefillProgress { .. }
        | Event::DiffChanged { .. } => {
            return None;
        }
    };
    Some(item)
}

fn serde_name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

fn pretty(arguments: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(arguments) {
        Ok(value @ serde_json::Value::Object(_)) => {
            serde_json::to_string_pretty(&value).unwrap_or_else(|_| arguments.into())
        }
        _ => arguments.to_string(),
    }
}

/// The display items of `records`, each with the turn it falls in, continuing from `turn`.
/// Returns the turn of the last record, for the next batch of a growing trajectory.
pub fn items(records: &[TrajectoryRecord], mut turn: u32) -> (Vec<Item>, u32) {
    let mut out = Vec::with_capacity(records.len());
    for record in records {
        if let Some(t) = record_turn(&record.event) {
            turn = t;
        }
        out.extend(item(record, turn));
    }
    (out, turn)
}

fn record_turn(event: &Event) -> Option<u32> {
    match event {
        Event::ModelRequest { turn, .. }
        | Event::ModelResponse { turn, .. }
        | Event::ToolCall { turn, .. }
        | Event::Observation { turn, .. }
        | Event::PolicyDecision { turn, .. }
        | Event::UserMessage { turn, .. } => Some(*turn),
        _ => None,
    }
}

/// Where the time of one turn went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct StepTime {
    /// The turn.
    pub turn: u32,
    /// The model call (with retries), milliseconds.
    pub model_ms: u64,
    /// The tools it ran, milliseconds.
    pub tool_ms: u64,
}

/// The timeline as an SVG: one stacked column per turn (model below, tools above), turns grouped
/// into at most `columns` columns. Only numbers go into it.
pub fn timeline_svg(steps: &[StepTime], columns: usize) -> String {
    use std::fmt::Write as _;
    if steps.is_empty() {
        return String::new();
    }
    let (width, height) = (900.0_f64, 120.0_f64);
    let group = steps.len().div_ceil(columns.max(1));
    let buckets: Vec<(u32, u32, u64, u64)> = steps
        .chunks(group)
        .map(|c| {
            let first = c.first().map_or(0, |s| s.turn);
            let last = c.last().map_or(0, |s| s.turn);
            (first, last, c.iter().map(|s| s.model_ms).sum(), c.iter().map(|s| s.tool_ms).sum())
        })
        .collect();
    let top = buckets.iter().map(|b| b.2 + b.3).max().unwrap_or(1).max(1) as f64;
    let w = width / buckets.len() as f64;
    let mut svg = format!(
        "<svg class=\"timeline\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"time per step\">"
    );
    for (i, (first, last, model, tool)) in buckets.iter().enumerate() {
        let x = i as f64 * w;
        let hm = *model as f64 / top * height;
        let ht = *tool as f64 / top * height;
        let turns = if first == last { format!("turn {first}") } else { format!("turns {first}–{last}") };
        let _ = write!(
            svg,
            "<g><title>{turns}: model {:.2} s, tools {:.2} s</title><rect class=\"model\" x=\"{x:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{hm:.2}\"/>\
<rect class=\"tool\" x=\"{x:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{ht:.2}\"/></g>",
            *model as f64 / 1e3,
            *tool as f64 / 1e3,
            height - hm,
            (w - 0.5).max(0.5),
            height - hm - ht,
            (w - 0.5).max(0.5),
        );
    }
    svg.push_str("</svg>");
    svg
}

/// One line of a unified diff, classified for colouring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffLine {
    /// `add`, `del`, `hunk`, `file` or `ctx`.
    pub class: &'static str,
    /// The line as it is.
    pub text: String,
}

/// The first `max_lines` lines of `patch`, classified (`+`/`-` lines, hunk and file headers).
pub fn diff_lines(patch: &str, max_lines: usize) -> Vec<DiffLine> {
    let mut in_header = false;
    patch
        .lines()
        .take(max_lines)
        .map(|line| {
            if line.starts_with("diff --git") {
                in_header = true;
            } else if line.starts_with("@@") {
                in_header = false;
                return DiffLine { class: "hunk", text: line.into() };
            }
            let class = if in_header {
                "file"
            } else if line.starts_with('+') {
                "add"
            } else if line.starts_with('-') {
                "del"
            } else {
                "ctx"
            };
            DiffLine { class, text: line.into() }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn line(event: serde_json::Value) -> String {
        format!("{event}\n")
    }

    #[test]
    fn a_growing_trajectory_is_read_by_whole_lines() {
        let first = line(serde_json::json!({"elapsed_ms": 1, "type": "notice", "message": "one"}));
        let torn = "{\"elapsed_ms\": 2, \"type\": \"noti";
        let (records, used) = parse_complete(format!("{first}{torn}").as_bytes());
        assert_eq!((records.len(), used), (1, first.len()));
        let unknown = line(serde_json::json!({"elapsed_ms": 3, "type": "from_the_future"}));
        let (records, _) = parse_complete(format!("{first}{unknown}{first}").as_bytes());
        assert_eq!(records.len(), 2, "unknown events are skipped");
    }

    #[test]
    fn the_outline_carries_turns_and_sums_time_per_step() {
        let records = crate::fixtures::run_records("r", 3, true);
        let text: String = records.iter().map(|r| format!("{}\n", serde_json::to_string(r).unwrap())).collect();
        let outline = outline(text.as_bytes());
        assert_eq!((outline.lines.len(), outline.last_turn, outline.finished), (records.len(), 3, true));
        assert_eq!(outline.lines.last().unwrap().2, 3, "run_finished falls in the last turn");
        assert_eq!(outline.steps[1], StepTime { turn: 2, model_ms: 180, tool_ms: 80 });
    }

    #[test]
    fn diffs_are_classified_line_by_line() {
        let patch = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+new\n same\n";
        let classes: Vec<&str> = diff_lines(patch, 100).iter().map(|l| l.class).collect();
        assert_eq!(classes, ["file", "file", "file", "hunk", "del", "add", "ctx"]);
        assert_eq!(diff_lines(patch, 2).len(), 2);
    }

    #[test]
    fn the_timeline_groups_turns_into_columns() {
        let steps: Vec<StepTime> = (1..=10).map(|t| StepTime { turn: t, model_ms: 100, tool_ms: 50 }).collect();
        let svg = timeline_svg(&steps, 4);
        assert_eq!(svg.matches("<g>").count(), 4, "{svg}");
        assert!(svg.contains("turns 1–3: model 0.30 s, tools 0.15 s"), "{svg}");
        assert!(timeline_svg(&[], 4).is_empty());
    }
}
