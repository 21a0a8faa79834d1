//! Synthetic records for tests and benchmarks: a run directory with a trajectory of any length
//! and an evaluation output of any size, written with the same types (and, for evaluations, the
//! same writers) rigor's runs and `rigor eval` use. Not used by the viewer itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rigor_core::trajectory::{RunResult, TrajectoryRecord};
use rigor_eval::record::InstanceResult;
use rigor_protocol::{
    ActionOutcome, Category, Event, FinishReason, Message, RunStatus, RunTotals, ToolCall, Usage, Verdict,
};

/// What a synthetic observation says when it carries markup: it must render inert.
pub const HOSTILE_OBSERVATION: &str = "<script>alert('observation')</script><img src=x onerror=alert(1)>";

/// The records of a run of `steps` turns (each a model response calling `bash`, a policy decision
/// and an observation; every tenth observation long), finished when `finished`.
pub fn run_records(run_id: &str, steps: u32, finished: bool) -> Vec<TrajectoryRecord> {
    let mut at = 0;
    let mut records = Vec::new();
    let mut push = |ms: u64, event: Event| {
        at += ms;
        records.push(TrajectoryRecord { elapsed_ms: at, event });
    };
    push(
        0,
        Event::RunStarted {
            schema_version: rigor_protocol::SCHEMA_VERSION,
            run_id: run_id.into(),
            repo: "/repo".into(),
            workspace: "/repo/.rigor/worktrees/x".into(),
            base_commit: "0123456789abcdef0123456789abcdef01234567".into(),
            model: "scripted:fixture".into(),
            issue: "parse_duration(\"1h30m\") returns 1800 instead of 5400".into(),
            system_prompt: String::new(),
            prompt: Default::default(),
            tools: Vec::new(),
            sources: Vec::new(),
            conversation: false,
            started_at: "2026-12-02T12:00:00Z".into(),
        },
    );
    for turn in 1..=steps {
        push(1, Event::ModelRequest { turn, messages: 2 * turn as usize, estimated_tokens: 500 + 40 * turn as u64 });
        let call_id = format!("call-{turn}");
        let command = format!("grep -n total durations.py # step {turn}");
        let call = ToolCall {
            id: call_id.clone(),
            name: "bash".into(),
            arguments: serde_json::json!({ "command": command }).to_string(),
        };
        push(
            120 + (turn as u64 % 7) * 30,
            Event::ModelResponse {
                turn,
                message: Message::assistant(format!("Step {turn}: looking at the accumulation."), vec![call]),
                usage: Usage { input_tokens: 500 + 40 * turn as u64, output_tokens: 30, cached_input_tokens: 0 },
                cost_usd: 0.0001,
                latency_ms: 120 + (turn as u64 % 7) * 30,
                finish_reason: FinishReason::ToolCalls,
            },
        );
        push(
            1,
            Event::PolicyDecision {
                turn,
                call_id: call_id.clone(),
                tool: "bash".into(),
                action: command,
                verdict: Verdict::Allow,
                category: Category::Benign,
                rule: "read-only".into(),
                reason: "reads files".into(),
                outcome: ActionOutcome::Run,
            },
        );
        let content = if turn % 10 == 0 {
            (0..60).map(|i| format!("{i}: total = int(number) * UNITS[ch]\n")).collect()
        } else if turn == 1 {
            HOSTILE_OBSERVATION.to_string()
        } else {
            format!("12:        total = int(number) * UNITS[ch]  # seen at step {turn}")
        };
        push(
            40 + (turn as u64 % 5) * 20,
            Event::Observation {
                turn,
                call_id,
                name: "bash".into(),
                content,
                is_error: false,
                duration_ms: 40 + (turn as u64 % 5) * 20,
            },
        );
    }
    if finished {
        push(
            1,
            Event::RunFinished {
                status: RunStatus::Submitted,
                summary: "Accumulate every part".into(),
                patch: String::new(),
                totals: totals(steps),
            },
        );
    }
    records
}

fn totals(steps: u32) -> RunTotals {
    RunTotals {
        steps,
        tool_calls: steps,
        usage: Usage { input_tokens: 600 * steps as u64, output_tokens: 30 * steps as u64, cached_input_tokens: 0 },
        cost_usd: 0.0001 * steps as f64,
        duration_ms: 250 * steps as u64,
    }
}

/// The patch of a synthetic run: the fix, and a line of markup that must render inert.
pub const PATCH: &str = "diff --git a/durations.py b/durations.py\n--- a/durations.py\n+++ b/durations.py\n@@ -10,3 +10,3 @@\n     for number, ch in parts:\n-        total = int(number) * UNITS[ch]\n+        total += int(number) * UNITS[ch]\n+# <script>alert('diff')</script>\n";

/// Writes a run of `steps` turns as `runs_dir/run_id` (with `patch.diff` and `result.json` when
/// `finished`); returns its directory.
pub fn write_run(runs_dir: &Path, run_id: &str, steps: u32, finished: bool) -> std::io::Result<PathBuf> {
    let dir = runs_dir.join(run_id);
    std::fs::create_dir_all(&dir)?;
    let mut text = String::new();
    for record in run_records(run_id, steps, finished) {
        text.push_str(&serde_json::to_string(&record).map_err(std::io::Error::other)?);
        text.push('\n');
    }
    std::fs::write(dir.join("trajectory.jsonl"), text)?;
    if finished {
        std::fs::write(dir.join("patch.diff"), PATCH)?;
        let result = RunResult {
            run_id: run_id.into(),
            status: RunStatus::Submitted,
            summary: "Accumulate every part".into(),
            model: "scripted:fixture".into(),
            totals: totals(steps),
            patch_file: dir.join("patch.diff").display().to_string(),
            empty_patch: false,
            replay_of: None,
        };
        std::fs::write(dir.join("result.json"), serde_json::to_vec_pretty(&result).map_err(std::io::Error::other)?)?;
    }
    Ok(dir)
}

/// Writes an evaluation `run_id` of `instances` instances over five repositories under `output`
/// (as `rigor eval` lays it out): instance `i` is resolved when `resolved(i)`, otherwise
/// unresolved. Returns the summary's resolved count.
pub fn write_eval(
    output: &Path,
    run_id: &str,
    model: &str,
    instances: usize,
    resolved: impl Fn(usize) -> bool,
) -> std::io::Result<usize> {
    let run_dir = output.join("logs").join("run_evaluation").join(run_id);
    let model_dir = run_dir.join(rigor_eval::dataset::model_dir_name(model));
    let mut results = Vec::with_capacity(instances);
    for i in 0..instances {
        let repo = format!("org{}/repo{}", i % 5, i % 5);
        let id = format!("org{}__repo{}-{i:05}", i % 5, i % 5);
        let status = if resolved(i) { "resolved" } else { "unresolved" };
        let result: InstanceResult = serde_json::from_value(serde_json::json!({
            "instance_id": id, "repo": repo, "model": model, "status": status,
            "message": if status == "resolved" { "" } else { "FAIL_TO_PASS test_compound failed" },
            "f2p_rate": if status == "resolved" { 1.0 } else { 0.0 }, "p2p_rate": 1.0,
            "timings": {"worktree": 0.1, "env": 0.5, "agent": 10.0 + (i % 17) as f64, "apply": 0.01,
                        "tests": 2.0 + (i % 11) as f64, "total": 13.0 + (i % 29) as f64},
            "agent": {"status": "submitted", "patch": PATCH, "error": null, "steps": 5 + i % 9,
                      "input_tokens": 4000 + i, "output_tokens": 300, "cost_usd": 0.01 + (i % 13) as f64 * 0.002,
                      "wall_secs": 10.0, "proof_status": null},
        }))
        .map_err(std::io::Error::other)?;
        let dir = model_dir.join(&id);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("patch.diff"), PATCH)?;
        std::fs::write(
            dir.join("test_output.txt"),
            format!("test_compound ... {}\n", if resolved(i) { "ok" } else { "FAIL" }),
        )?;
        rigor_eval::record::write_result(&dir, &result)?;
        results.push(result);
    }
    let ids: Vec<String> = results.iter().map(|r| r.instance_id.clone()).collect();
    let summary = rigor_eval::report::summarize(run_id, model, &ids, &ids, &results, &BTreeMap::new());
    rigor_eval::report::write_summary(output, &run_dir, &summary)?;
    Ok(summary.resolved_instances)
}
