//! Run records on disk: `.rigor/runs/<run-id>/` holds `trajectory.jsonl` (every [`Event`], one
//! per line, flushed as it happens), `patch.diff` and `result.json`.
//!
//! The trajectory is appended and flushed event by event, so a crash or Ctrl-C loses nothing
//! that happened before it. Streamed text deltas are not written: the assembled message is.
//!
//! Every file is redacted: the trajectory receives events the [`crate::events::Emitter`] has
//! already redacted, and [`RunDir::write_result`] redacts `patch.diff` and `result.json` itself.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rigor_protocol::{Event, RunStatus, RunTotals};
use serde::{Deserialize, Serialize};

use crate::events::EventSink;
use crate::fsutil::write_atomic;
use crate::redact::Redactor;

/// One line of `trajectory.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrajectoryRecord {
    /// Milliseconds since the run started.
    pub elapsed_ms: u64,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}

/// `result.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// The run id.
    pub run_id: String,
    /// How the run ended.
    pub status: RunStatus,
    /// The agent's summary, abstention reason, or the error.
    pub summary: String,
    /// `provider:model`.
    pub model: String,
    /// Totals.
    pub totals: RunTotals,
    /// Path of `patch.diff`.
    pub patch_file: String,
    /// Whether the patch is empty.
    pub empty_patch: bool,
    /// For a `rigor replay`: the id of the recorded run it replayed (`rigor export` skips these).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_of: Option<String>,
}

/// The directory of one run.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// `.rigor/runs/<run-id>`.
    pub path: PathBuf,
}

impl RunDir {
    /// Creates `<repo_root>/.rigor/runs/<run_id>`; an `AlreadyExists` error when it exists.
    pub fn create(repo_root: &Path, run_id: &str) -> std::io::Result<Self> {
        let runs = repo_root.join(".rigor").join("runs");
        std::fs::create_dir_all(&runs)?;
        let path = runs.join(run_id);
        // Never reuse a run directory: its trajectory would be overwritten.
        std::fs::create_dir(&path)?;
        Ok(Self { path })
    }

    /// `trajectory.jsonl`.
    pub fn trajectory(&self) -> PathBuf {
        self.path.join("trajectory.jsonl")
    }

    /// `patch.diff`.
    pub fn patch(&self) -> PathBuf {
        self.path.join("patch.diff")
    }

    /// `result.json`.
    pub fn result(&self) -> PathBuf {
        self.path.join("result.json")
    }

    /// Writes `patch.diff` and `result.json`, both redacted with `redactor` (each through a
    /// temporary file and a rename, so a reader never sees half a file).
    ///
    /// These are records, like the trajectory: a secret in the patch (a key the agent wrote into
    /// a file) is replaced by `[REDACTED:<kind>]`, so a redacted `patch.diff` may no longer apply.
    /// The patch the run returns to its caller (`RunReport`, used by `--apply`) is not redacted:
    /// it is the agent's actual work, applied to the user's own checkout.
    pub fn write_result(&self, patch: &str, result: &RunResult, redactor: &Redactor) -> std::io::Result<()> {
        write_atomic(&self.patch(), redactor.redact(patch).as_bytes())?;
        let mut value = serde_json::to_value(result).map_err(std::io::Error::other)?;
        redactor.redact_json(&mut value);
        let json = serde_json::to_vec_pretty(&value).map_err(std::io::Error::other)?;
        write_atomic(&self.result(), &json)
    }
}

/// Copies of a text longer than this are cut in the record (the text itself is kept once).
pub const MAX_COPY_CHARS: usize = 64 * 1024;

/// `event` as it is recorded: every large text is kept once. A tool call's arguments are whole in
/// the turn's `model_response` (which replay feeds back), so the `tool_call` and
/// `policy_decision` copies are cut; the final patch is whole in `patch.diff`, so the copy in
/// `run_finished` is cut. A 3 MB command thus adds ~3 MB to the trajectory, not 9.
fn recorded_once(event: &Event) -> Event {
    let mut event = event.clone();
    match &mut event {
        Event::ToolCall { call, .. } => cut_copy(&mut call.arguments, "the model_response of this turn"),
        Event::PolicyDecision { action, .. } => cut_copy(action, "the model_response of this turn"),
        Event::RunFinished { patch, .. } => cut_copy(patch, "patch.diff"),
        _ => {}
    }
    event
}

fn cut_copy(text: &mut String, whole_in: &str) {
    if text.len() <= MAX_COPY_CHARS {
        return;
    }
    let mut head = MAX_COPY_CHARS / 2;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let cut = text.len() - head;
    text.truncate(head);
    text.push_str(&format!("\n[... {cut} more bytes not repeated in this record: the whole text is in {whole_in}]"));
}

/// An [`EventSink`] appending events to `trajectory.jsonl`.
pub struct TrajectoryWriter {
    file: File,
    started: Instant,
    path: PathBuf,
    failed: bool,
}

impl TrajectoryWriter {
    /// Creates (or truncates) the trajectory file.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        Ok(Self { file: File::create(path)?, started: Instant::now(), path: path.to_path_buf(), failed: false })
    }
}

impl EventSink for TrajectoryWriter {
    fn emit(&mut self, event: &Event) {
        if matches!(event, Event::TextDelta { .. } | Event::PrefillProgress { .. } | Event::DiffChanged { .. })
            || self.failed
        {
            return;
        }
        let record =
            TrajectoryRecord { elapsed_ms: self.started.elapsed().as_millis() as u64, event: recorded_once(event) };
        let written = serde_json::to_string(&record)
            .map_err(std::io::Error::other)
            .and_then(|line| writeln!(self.file, "{line}"))
            .and_then(|()| self.file.flush());
        if let Err(err) = written {
            // Keep running: the agent's work is in the workspace; say once that the record is incomplete.
            self.failed = true;
            tracing::error!(
                "cannot write trajectory {}: {err}; the rest of this run is not recorded",
                self.path.display()
            );
        }
    }
}

/// Reads a trajectory file. A truncated last line (a crash mid-write) is skipped; any other
/// malformed line is an error naming its line number.
pub fn read_trajectory(path: &Path) -> std::io::Result<Vec<TrajectoryRecord>> {
    let bytes = std::fs::read(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot open trajectory {}: {e}", path.display())))?;
    let bad = |line: usize, what: String| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is not a rigor trajectory: line {line} {what}", path.display()),
        )
    };
    let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    // A last line without its newline is one a crash cut short.
    let torn = !bytes.is_empty() && !bytes.ends_with(b"\n");
    let mut records = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let Ok(text) = std::str::from_utf8(line) else {
            return Err(bad(i + 1, "is not UTF-8 text".into()));
        };
        if text.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(text) {
            Ok(record) => records.push(record),
            // Tolerated only after real records: a file whose one line is garbage is not a trajectory.
            Err(_) if torn && i + 1 == lines.len() && !records.is_empty() => break,
            Err(e) => return Err(bad(i + 1, format!("is not a trajectory record ({e})"))),
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_input_is_recorded_once() {
        let big = "x".repeat(3 * MAX_COPY_CHARS);
        let call = rigor_protocol::ToolCall { id: "c".into(), name: "bash".into(), arguments: big.clone() };
        let Event::ToolCall { call: recorded, .. } = recorded_once(&Event::ToolCall { turn: 1, call }) else {
            panic!("not a tool call")
        };
        assert!(recorded.arguments.len() < MAX_COPY_CHARS + 200, "{}", recorded.arguments.len());
        assert!(recorded.arguments.contains("the whole text is in the model_response"));
        let finished = Event::RunFinished {
            status: RunStatus::Submitted,
            summary: String::new(),
            patch: big.clone(),
            totals: Default::default(),
        };
        let Event::RunFinished { patch, .. } = recorded_once(&finished) else { panic!("not run_finished") };
        assert!(patch.len() < MAX_COPY_CHARS + 200 && patch.contains("patch.diff"));
        let small = Event::Notice { message: "short".into() };
        assert_eq!(serde_json::to_string(&recorded_once(&small)).unwrap(), serde_json::to_string(&small).unwrap());
    }

    #[test]
    fn records_round_trip_and_a_torn_last_line_is_tolerated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let mut writer = TrajectoryWriter::create(&path).unwrap();
        writer.emit(&Event::Notice { message: "hello".into() });
        writer.emit(&Event::TextDelta { text: "not recorded".into() });
        writer.emit(&Event::Notice { message: "world".into() });
        drop(writer);
        let mut text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        text.push_str("{\"elapsed_ms\": 5, \"type\": \"noti");
        std::fs::write(&path, &text).unwrap();
        let records = read_trajectory(&path).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].event, Event::Notice { message: "world".into() });

        std::fs::write(&path, format!("garbage\n{text}")).unwrap();
        let err = read_trajectory(&path).unwrap_err().to_string();
        assert!(err.contains("line 1"), "{err}");

        // A file of garbage names the file and the first bad line, even on its last line.
        for garbage in [&b"garbage"[..], b"\xff\xfe binary", b"{\"a\": 1}\n"] {
            std::fs::write(&path, garbage).unwrap();
            let err = read_trajectory(&path).unwrap_err().to_string();
            assert!(err.contains(&path.display().to_string()) && err.contains("line 1"), "{err}");
        }
    }

    #[test]
    fn patch_and_result_are_written_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let run_dir = RunDir::create(dir.path(), "r1").unwrap();
        let redactor = Redactor::new([("DB_PASS".to_string(), "hunter2-hunter2".to_string())]);
        let patch = "--- a/.env\n+++ b/.env\n@@ -0,0 +1,2 @@\n+DB_PASS=hunter2-hunter2\n+OPENAI_API_KEY=sk-abcdefghijklmnopqrstuvwxyz\n";
        let result = RunResult {
            run_id: "r1".into(),
            status: RunStatus::Submitted,
            summary: "set the password to hunter2-hunter2".into(),
            model: "openai:gpt".into(),
            totals: RunTotals::default(),
            patch_file: run_dir.patch().display().to_string(),
            empty_patch: false,
            replay_of: None,
        };
        run_dir.write_result(patch, &result, &redactor).unwrap();
        let written_patch = std::fs::read_to_string(run_dir.patch()).unwrap();
        assert_eq!(
            written_patch,
            "--- a/.env\n+++ b/.env\n@@ -0,0 +1,2 @@\n+DB_PASS=[REDACTED:DB_PASS]\n+OPENAI_API_KEY=[REDACTED:api-key]\n"
        );
        let written: RunResult = serde_json::from_str(&std::fs::read_to_string(run_dir.result()).unwrap()).unwrap();
        assert_eq!(written.summary, "set the password to [REDACTED:DB_PASS]");
        assert_eq!(written.status, RunStatus::Submitted);
    }
}
