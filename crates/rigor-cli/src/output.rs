//! Rendering run events for a person (streamed text, tool calls, a coloured diff) or for a
//! program (`--json`: one event per line). This is the only place rigor prints run output.
//! The human rendering passes everything the model, the tools and the provider produced through
//! [`terminal::escape`], so that none of it can move the cursor, erase or rewrite what is on the
//! terminal; the JSON rendering is escaped by JSON itself.

use std::io::{IsTerminal, Write};

use rigor_core::events::EventSink;
use rigor_protocol::{ActionOutcome, Event, ProofPhase, RunStatus, RunTotals, StepOutcome, Verdict};

use rigor_protocol::terminal::escape;

/// ANSI styling, disabled when stdout is not a terminal or `NO_COLOR` is set.
#[derive(Clone, Copy)]
pub struct Style {
    enabled: bool,
}

impl Style {
    /// Detects whether to colour stdout.
    pub fn detect() -> Self {
        Self { enabled: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.enabled { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_string() }
    }

    /// Dimmed text.
    pub fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }
    /// Bold text.
    pub fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }
    /// Red text.
    pub fn red(&self, text: &str) -> String {
        self.paint("31", text)
    }
    /// Green text.
    pub fn green(&self, text: &str) -> String {
        self.paint("32", text)
    }
    /// Yellow text.
    pub fn yellow(&self, text: &str) -> String {
        self.paint("33", text)
    }
    /// Cyan text.
    pub fn cyan(&self, text: &str) -> String {
        self.paint("36", text)
    }

    /// A unified diff with added lines green and removed lines red.
    pub fn diff(&self, patch: &str) -> String {
        patch
            .lines()
            .map(|line| {
                if line.starts_with("+++") || line.starts_with("---") {
                    self.bold(line)
                } else if line.starts_with('+') {
                    self.green(line)
                } else if line.starts_with('-') {
                    self.red(line)
                } else if line.starts_with("@@") {
                    self.cyan(line)
                } else {
                    line.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Observation lines shown to a person (the model sees the whole observation).
const SHOWN_OBSERVATION_LINES: usize = 12;

/// Human-readable rendering on stdout.
pub struct HumanOutput {
    style: Style,
    mid_text: bool,
}

impl HumanOutput {
    /// A printer with the given style.
    pub fn new(style: Style) -> Self {
        Self { style, mid_text: false }
    }

    fn end_text(&mut self, out: &mut impl Write) {
        if self.mid_text {
            let _ = writeln!(out);
            self.mid_text = false;
        }
    }
}

/// A one-line rendering of a tool call's arguments: the command, path or pattern when there is one.
fn brief_arguments(arguments: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(arguments).ok();
    let key_value = parsed.as_ref().and_then(|v| {
        ["command", "path", "pattern", "summary", "reason"]
            .iter()
            .find_map(|k| v.get(*k).and_then(|x| x.as_str()).map(|s| (*k, s.to_string())))
    });
    let text = match (key_value, parsed.as_ref().and_then(|v| v.get("path")).and_then(|p| p.as_str())) {
        (Some(("command", cmd)), Some(path)) => format!("{cmd} {path}"),
        (Some((_, value)), _) => value,
        (None, _) => arguments.to_string(),
    };
    let one_line = text.replace('\n', " ⏎ ");
    if one_line.chars().count() > 160 {
        format!("{}…", escape(&one_line.chars().take(160).collect::<String>()))
    } else {
        escape(&one_line)
    }
}

/// `12 steps · 34,567 tokens (30,000 in / 4,567 out) · $0.0123 · 41.2 s`.
pub fn totals_line(totals: &RunTotals) -> String {
    format!(
        "{} steps · {} tool calls · {} tokens ({} in / {} out) · ${:.4} · {:.1} s",
        totals.steps,
        totals.tool_calls,
        thousands(totals.usage.total()),
        thousands(totals.usage.input_tokens),
        thousands(totals.usage.output_tokens),
        totals.cost_usd,
        totals.duration_ms as f64 / 1000.0
    )
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl EventSink for HumanOutput {
    fn emit(&mut self, event: &Event) {
        self.render(event, &mut std::io::stdout().lock());
    }
}

impl HumanOutput {
    /// Writes `event` for a person to `out`.
    fn render(&mut self, event: &Event, out: &mut impl Write) {
        let s = self.style;
        match event {
            Event::TextDelta { text } => {
                let _ = write!(out, "{}", escape(text));
                self.mid_text = !text.ends_with('\n');
                let _ = out.flush();
                return;
            }
            Event::PrefillProgress { processed, total, elapsed_ms, .. } => {
                // One line, rewritten as the prompt is processed; ended when it is done.
                let rate = *processed as f64 / (*elapsed_ms as f64 / 1000.0).max(1e-3);
                let line = format!("prompt: {processed} / {total} tokens processed, {rate:.0} tok/s");
                let end = if processed >= total { "\n" } else { "" };
                let _ = write!(out, "\r{}{end}", s.dim(&line));
                self.mid_text = processed < total;
                let _ = out.flush();
                return;
            }
            _ => self.end_text(out),
        }
        let _ = match event {
            Event::RunStarted { run_id, model, workspace, .. } => {
                writeln!(
                    out,
                    "{} run {} · {}\n{}",
                    s.bold("rigor"),
                    escape(run_id),
                    escape(model),
                    s.dim(&format!("workspace: {}", escape(workspace)))
                )
            }
            Event::ModelResponse { turn, usage, cost_usd, latency_ms, .. } => writeln!(
                out,
                "{}",
                s.dim(&format!(
                    "── turn {turn} · {} in / {} out · ${cost_usd:.4} · {:.1} s",
                    thousands(usage.input_tokens),
                    thousands(usage.output_tokens),
                    *latency_ms as f64 / 1000.0
                ))
            ),
            Event::ToolCall { call, .. } => {
                writeln!(out, "{} {}", s.cyan(&format!("▶ {}", escape(&call.name))), brief_arguments(&call.arguments))
            }
            Event::Observation { content, is_error, duration_ms, .. } => {
                let lines: Vec<&str> = content.lines().collect();
                let mut shown =
                    escape(&lines.iter().take(SHOWN_OBSERVATION_LINES).copied().collect::<Vec<_>>().join("\n"));
                if lines.len() > SHOWN_OBSERVATION_LINES {
                    shown.push_str(&format!("\n… {} more lines", lines.len() - SHOWN_OBSERVATION_LINES));
                }
                let shown = if *is_error { s.red(&shown) } else { s.dim(&shown) };
                writeln!(out, "{shown}\n{}", s.dim(&format!("  ({} ms)", duration_ms)))
            }
            Event::Retry { attempt, wait_ms, reason } => writeln!(
                out,
                "{}",
                s.yellow(&format!(
                    "attempt {attempt} failed ({}); retrying in {:.1} s",
                    escape(reason),
                    *wait_ms as f64 / 1000.0
                ))
            ),
            Event::Condensed { before_tokens, after_tokens, messages_affected } => writeln!(
                out,
                "{}",
                s.dim(&format!(
                    "context condensed: ~{before_tokens} → ~{after_tokens} tokens ({messages_affected} messages)"
                ))
            ),
            Event::Notice { message } => writeln!(out, "{}", s.yellow(&escape(message))),
            Event::ProofStep { phase, outcome, detail, secs } => {
                let phase = match phase {
                    ProofPhase::Changes => "changes",
                    ProofPhase::ReproductionBefore => "reproduction on the original code",
                    ProofPhase::ReproductionAfter => "reproduction on the fix",
                    ProofPhase::Regressions => "related tests",
                };
                let mark = match outcome {
                    StepOutcome::Passed => s.green("ok"),
                    StepOutcome::Failed => s.red("failed"),
                    StepOutcome::Skipped => s.dim("skipped"),
                };
                writeln!(
                    out,
                    "  {} {phase}: {mark} {} {}",
                    s.dim("proof"),
                    escape(detail),
                    s.dim(&format!("({secs:.1}s)"))
                )
            }
            // `rigor replay` prints its own verdict for people; the event is for `--json`.
            Event::ReplayReport { .. } => Ok(()),
            // The terminal approver asks the question itself.
            Event::ApprovalRequested { .. } => Ok(()),
            Event::PolicyDecision { verdict, category, reason, outcome, .. } => match outcome {
                ActionOutcome::Run if *verdict == Verdict::Allow => Ok(()),
                ActionOutcome::Run | ActionOutcome::Approved => writeln!(
                    out,
                    "{}",
                    s.yellow(&escape(&format!("policy: {verdict} ({category}: {reason}) → {outcome}")))
                ),
                _ => writeln!(
                    out,
                    "{}",
                    s.red(&escape(&format!("policy: {verdict} ({category}: {reason}) → not run ({outcome})")))
                ),
            },
            Event::RunFinished { status, summary, patch, totals } => {
                let label = match status {
                    RunStatus::Submitted => s.green("submitted"),
                    RunStatus::Abstained | RunStatus::BudgetExhausted | RunStatus::Interrupted => {
                        s.yellow(status.as_str())
                    }
                    RunStatus::Error => s.red("error"),
                };
                let diff = if patch.trim().is_empty() { s.dim("(no changes)") } else { s.diff(&escape(patch)) };
                writeln!(
                    out,
                    "\n{} {label}\n{}\n\n{diff}\n\n{}",
                    s.bold("result:"),
                    escape(summary),
                    totals_line(totals)
                )
            }
            Event::UserMessage { content, .. } => {
                writeln!(out, "{}", s.dim(&format!("→ {}", escape(content.lines().next().unwrap_or_default()))))
            }
            Event::RequestFinished { status, summary, .. } => {
                writeln!(out, "{}", s.dim(&format!("request {}: {}", status.as_str(), escape(summary))))
            }
            Event::Undone { files, .. } => {
                writeln!(out, "{}", s.dim(&format!("undone: {}", escape(&files.join(", ")))))
            }
            Event::ModelRequest { .. }
            | Event::TextDelta { .. }
            | Event::PrefillProgress { .. }
            | Event::DiffChanged { .. } => Ok(()),
        };
    }
}

/// `--json`: every event as one JSON object per line on stdout.
pub struct JsonOutput;

impl EventSink for JsonOutput {
    fn emit(&mut self, event: &Event) {
        if let Ok(line) = serde_json::to_string(event) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_arguments_are_shown_briefly() {
        assert_eq!(brief_arguments(r#"{"command":"ls -la"}"#), "ls -la");
        assert_eq!(brief_arguments(r#"{"command":"str_replace","path":"a.py"}"#), "str_replace a.py");
        assert_eq!(brief_arguments("not json"), "not json");
        assert!(brief_arguments(&format!("{{\"command\":\"{}\"}}", "x".repeat(500))).ends_with('…'));
    }

    /// What a person sees for `events` (no colours).
    fn rendered(events: &[Event]) -> String {
        let mut printer = HumanOutput::new(Style { enabled: false });
        let mut out = Vec::new();
        for event in events {
            printer.render(event, &mut out);
        }
        String::from_utf8(out).unwrap()
    }

    const ATTACK: &str = "rm -rf ~/src # \r\x1b[2K\x1b[1Aecho hello";
    const ATTACK_SHOWN: &str = "rm -rf ~/src # \\r\\x1b[2K\\x1b[1Aecho hello";

    #[test]
    fn nothing_the_model_or_a_tool_produced_reaches_the_terminal_raw() {
        let call = rigor_protocol::ToolCall {
            id: "c1".into(),
            name: "bash\u{9b}2J".into(),
            arguments: serde_json::json!({ "command": ATTACK }).to_string(),
        };
        let events = [
            Event::TextDelta { text: "thinking \u{202e}txet\x1b]0;title\x07\n".into() },
            Event::ToolCall { turn: 1, call },
            Event::Observation {
                turn: 1,
                call_id: "c1".into(),
                name: "bash".into(),
                content: "line 1\n\x1b[31mred\x1b[0m\rover\u{200b}".into(),
                is_error: false,
                duration_ms: 3,
            },
            Event::PolicyDecision {
                turn: 1,
                call_id: "c1".into(),
                tool: "bash".into(),
                action: ATTACK.into(),
                verdict: Verdict::Ask,
                category: rigor_protocol::Category::Destructive,
                rule: "rm".into(),
                reason: format!("`{ATTACK}` deletes"),
                outcome: ActionOutcome::Approved,
            },
            Event::Retry { attempt: 1, wait_ms: 10, reason: "502 \x1b[2J".into() },
            Event::Notice { message: "note \x1b[1A".into() },
            Event::RunFinished {
                status: RunStatus::Submitted,
                summary: "done\x1b[1A\rfine".into(),
                patch: "+++ b/a.txt\n+evil\x1b[8m\n".into(),
                totals: RunTotals::default(),
            },
        ];
        let text = rendered(&events);
        assert!(!text.chars().any(rigor_protocol::terminal::is_unsafe), "{text:?}");
        for shown in [
            "thinking \\u{202e}txet\\x1b]0;title\\x07\n",
            &format!("▶ bash\\u{{9b}}2J {ATTACK_SHOWN}\n"),
            "\\x1b[31mred\\x1b[0m\\rover\\u{200b}",
            &format!("`{ATTACK_SHOWN}` deletes"),
            "502 \\x1b[2J",
            "note \\x1b[1A",
            "done\\x1b[1A\\rfine",
            "+evil\\x1b[8m",
        ] {
            assert!(text.contains(shown), "{shown:?} not in {text}");
        }
    }

    #[test]
    fn colours_are_still_rigors_own() {
        let mut printer = HumanOutput::new(Style { enabled: true });
        let mut out = Vec::new();
        printer.render(&Event::Notice { message: "a\x1b[0m".into() }, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), "\x1b[33ma\\x1b[0m\x1b[0m\n");
    }

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
