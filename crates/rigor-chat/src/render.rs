//! Draws an [`App`] on a ratatui frame: the conversation on the left, the session's diff on the
//! right (all of the screen after `/diff`), the input line and a hint below. Every text that
//! rigor did not write itself (the model's, the tools', the commands') is shown with its control
//! characters escaped ([`rigor_protocol::terminal::escape`]): a reply or an observation cannot
//! move the cursor, retitle the window or disguise a held command.

use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use rigor_protocol::{RunStatus, terminal};
use unicode_width::UnicodeWidthChar;

use crate::app::{App, COLLAPSED_LINES, Entry, Phase};

/// Draws `app` on `frame`.
pub fn draw(app: &App, frame: &mut Frame) {
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Min(3), Constraint::Length(3), Constraint::Length(1)])
        .split(frame.area());
    let (conversation, diff) = if app.diff_only {
        (None, rows[0])
    } else {
        let columns = Layout::default()
            .direction(Direction::Horizontal)
            .constraints([Constraint::Percentage(60), Constraint::Percentage(40)])
            .split(rows[0]);
        (Some(columns[0]), columns[1])
    };
    if let Some(area) = conversation {
        draw_conversation(app, frame, area);
    }
    draw_diff(app, frame, diff);
    draw_input(app, frame, rows[1]);
    let hint = Paragraph::new(Line::from(Span::styled(app.hint(), Style::default().fg(Color::DarkGray))));
    frame.render_widget(hint, rows[2]);
}

fn draw_conversation(app: &App, frame: &mut Frame, area: Rect) {
    let title = match app.phase {
        Phase::Busy => format!(" rigor chat · {} · working ", terminal::escape(&app.model)),
        _ => format!(" rigor chat · {} ", terminal::escape(&app.model)),
    };
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    let mut lines = Vec::new();
    for entry in &app.entries {
        entry_lines(entry, &mut lines);
    }
    if let Some(approval) = &app.approval {
        let warn = Style::default().fg(Color::Yellow).add_modifier(Modifier::BOLD);
        lines.push(Line::from(Span::styled(format!("⚠ held: {}", terminal::escape(&approval.reason)), warn)));
        for line in terminal::escape(&approval.action).lines() {
            lines.push(Line::from(Span::styled(format!("    {line}"), warn)));
        }
        lines.push(Line::from(Span::styled(format!("  {}", app.hint()), warn)));
    }
    let wrapped = wrap(lines, inner.width as usize);
    let visible = inner.height as usize;
    let bottom = wrapped.len().saturating_sub(app.scroll);
    let top = bottom.saturating_sub(visible);
    let shown: Vec<Line> = wrapped[top..bottom].to_vec();
    frame.render_widget(Paragraph::new(shown).block(block), area);
}

/// The lines of one conversation entry.
fn entry_lines(entry: &Entry, lines: &mut Vec<Line<'static>>) {
    let dim = Style::default().fg(Color::DarkGray);
    match entry {
        Entry::User(text) => {
            lines.push(Line::from(""));
            for (i, line) in shown(text).lines().enumerate() {
                let lead = if i == 0 { "› " } else { "  " };
                lines.push(Line::from(Span::styled(
                    format!("{lead}{line}"),
                    Style::default().add_modifier(Modifier::BOLD),
                )));
            }
        }
        Entry::Assistant(text) => {
            for line in shown(text).lines() {
                lines.push(Line::from(line.to_string()));
            }
        }
        Entry::Tool { name, arguments } => {
            let style = Style::default().fg(Color::Cyan);
            lines.push(Line::from(Span::styled(format!("▸ {} {}", shown(name), call_summary(arguments)), style)));
        }
        Entry::Observation { content, is_error } => {
            let style = if *is_error { Style::default().fg(Color::Red) } else { dim };
            let text = shown(content);
            let all: Vec<&str> = text.lines().collect();
            for line in all.iter().take(COLLAPSED_LINES) {
                lines.push(Line::from(Span::styled(format!("  │ {line}"), style)));
            }
            if all.len() > COLLAPSED_LINES {
                let more = format!("  │ … {} more lines", all.len() - COLLAPSED_LINES);
                lines.push(Line::from(Span::styled(more, dim)));
            }
        }
        Entry::Notice(text) => {
            for line in shown(text).lines() {
                lines.push(Line::from(Span::styled(format!("· {line}"), Style::default().fg(Color::Yellow))));
            }
        }
        Entry::Done { status, summary } => {
            let (label, color) = match status {
                RunStatus::Submitted => ("done", Color::Green),
                RunStatus::Abstained => ("declined", Color::Yellow),
                RunStatus::Interrupted => ("interrupted", Color::Yellow),
                RunStatus::BudgetExhausted => ("budget exhausted", Color::Yellow),
                RunStatus::Error => ("error", Color::Red),
            };
            let first = shown(summary).lines().next().unwrap_or_default().to_string();
            let text = if first.is_empty() { format!("✓ {label}") } else { format!("✓ {label}: {first}") };
            lines.push(Line::from(Span::styled(text, Style::default().fg(color))));
        }
    }
}

/// A tool call's arguments in one line: a command or path as it is, other JSON compacted.
fn call_summary(arguments: &str) -> String {
    let parsed: Option<serde_json::Map<String, serde_json::Value>> = serde_json::from_str(arguments).ok();
    let text = match parsed {
        Some(map) => {
            let key =
                ["command", "code", "path", "pattern", "summary", "reason"].into_iter().find(|k| map.contains_key(*k));
            match key.and_then(|k| map.get(k)).and_then(|v| v.as_str()) {
                Some(main) => main.to_string(),
                None => serde_json::Value::Object(map).to_string(),
            }
        }
        None => arguments.to_string(),
    };
    let line = shown(&text).lines().next().unwrap_or_default().to_string();
    if shown(&text).lines().count() > 1 { format!("{line} …") } else { line }
}

fn draw_diff(app: &App, frame: &mut Frame, area: Rect) {
    let block = Block::default().borders(Borders::ALL).title(" diff ");
    let inner = block.inner(area);
    let lines: Vec<Line> = if app.diff.trim().is_empty() {
        vec![Line::from(Span::styled("(no changes yet)", Style::default().fg(Color::DarkGray)))]
    } else {
        shown(&app.diff)
            .lines()
            .map(|line| {
                let style = if line.starts_with("+++") || line.starts_with("---") || line.starts_with("diff --git") {
                    Style::default().add_modifier(Modifier::BOLD)
                } else if line.starts_with('+') {
                    Style::default().fg(Color::Green)
                } else if line.starts_with('-') {
                    Style::default().fg(Color::Red)
                } else if line.starts_with("@@") {
                    Style::default().fg(Color::Cyan)
                } else {
                    Style::default()
                };
                Line::from(Span::styled(line.to_string(), style))
            })
            .filter(|line| !line.spans.iter().any(|s| s.content.starts_with("index ")))
            .collect()
    };
    let wrapped = wrap(lines, inner.width as usize);
    let shown_lines: Vec<Line> = wrapped.into_iter().take(inner.height as usize).collect();
    frame.render_widget(Paragraph::new(shown_lines).block(block), area);
}

fn draw_input(app: &App, frame: &mut Frame, area: Rect) {
    let title = if app.phase == Phase::Busy { " message (joins before the next turn) " } else { " request " };
    let block = Block::default().borders(Borders::ALL).title(title);
    let text = format!("› {}", terminal::escape(&app.input));
    let width = area.width.saturating_sub(2) as usize;
    // Keep the end of a long input in view.
    let skip = text.chars().count().saturating_sub(width.saturating_sub(1));
    let visible: String = text.chars().skip(skip).collect();
    let cursor_x = area.x + 1 + visible.chars().count() as u16;
    frame.render_widget(Paragraph::new(visible).block(block), area);
    if app.approval.is_none() && !app.confirm_apply {
        frame.set_cursor_position((cursor_x.min(area.x + area.width.saturating_sub(2)), area.y + 1));
    }
}

/// `text` escaped for the terminal, tabs as spaces.
fn shown(text: &str) -> String {
    terminal::escape(text).replace('\t', "    ")
}

/// Breaks lines wider than `width` columns into several (by character width), keeping styles.
fn wrap(lines: Vec<Line<'static>>, width: usize) -> Vec<Line<'static>> {
    if width == 0 {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(lines.len());
    for line in lines {
        if line.width() <= width {
            out.push(line);
            continue;
        }
        let mut current: Vec<Span<'static>> = Vec::new();
        let mut used = 0;
        for span in line.spans {
            let mut piece = String::new();
            for c in span.content.chars() {
                let w = c.width().unwrap_or(0);
                if used + w > width {
                    current.push(Span::styled(std::mem::take(&mut piece), span.style));
                    out.push(Line::from(std::mem::take(&mut current)));
                    used = 0;
                }
                piece.push(c);
                used += w;
            }
            if !piece.is_empty() {
                current.push(Span::styled(piece, span.style));
            }
        }
        if !current.is_empty() {
            out.push(Line::from(current));
        }
    }
    out
}
