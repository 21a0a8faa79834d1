//! `view`: a file with line numbers, or a directory listing.
//!
//! Files are shown `cat -n` style (right-aligned line numbers, a tab, the line), a range when one is
//! asked for, otherwise the first [`DEFAULT_LINES`] lines with a note of the total and how to see
//! more. The output is cut at a line boundary when it would exceed the observation budget, again
//! with a note saying where to continue, so a view never loses lines silently in the middle.
//! Binary files are refused. Directories are listed two levels deep, honouring `.gitignore` and
//! skipping `.git`.
//!
//! This tool only reads, and only inside the workspace ([`crate::confined`]): it runs on the host,
//! where the sandbox's hiding of the home directory does not apply, so `~/.ssh/id_rsa`,
//! `/proc/self/environ` or a symlink to them are refused; other files are read with `bash`, which
//! runs sandboxed. FIFOs and devices are refused without blocking.

use std::fmt::Write as _;
use std::path::Path;

use async_trait::async_trait;
use rigor_protocol::ToolSpec;
use serde_json::{Value, json};

use crate::confined::{Confined, ConfinedError, Kind};
use crate::truncate::group_thousands;
use crate::{Tool, ToolContext, ToolOutput, paths, required_str};

/// Lines shown when no range is given.
pub const DEFAULT_LINES: usize = 400;
/// Characters of one line shown before it is cut.
const MAX_LINE_CHARS: usize = 2_000;
/// Entries of a directory listing shown before it is cut.
const MAX_ENTRIES: usize = 1_000;
/// Bytes inspected for a NUL byte to decide that a file is binary.
const BINARY_PROBE_BYTES: usize = 8_192;

/// The `view` tool.
pub struct ViewTool;

#[async_trait]
impl Tool for ViewTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "view".into(),
            description:
                "Show a file with line numbers (optionally a line range), or list a directory two levels deep.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File or directory, relative to the workspace."},
                    "start_line": {"type": "integer", "description": "First line to show (1-based)."},
                    "end_line": {"type": "integer", "description": "Last line to show (inclusive; -1 = end of file)."}
                },
                "required": ["path"]
            }),
        }
    }

    async fn run(&self, args: Value, ctx: &ToolContext) -> ToolOutput {
        let shown = match required_str(&args, "path") {
            Ok(path) => path,
            Err(err) => return err,
        };
        let start = match optional_int(&args, "start_line") {
            Ok(v) => v,
            Err(err) => return err,
        };
        let end = match optional_int(&args, "end_line") {
            Ok(v) => v,
            Err(err) => return err,
        };
        let fs = match Confined::open(&ctx.workspace) {
            Ok(fs) => fs,
            Err(err) => {
                return ToolOutput::error(format!("the workspace {} cannot be opened: {err}", ctx.workspace.display()));
            }
        };
        let rel = match fs.relative(std::path::Path::new(shown)) {
            Ok(rel) => rel,
            Err(err) => return ToolOutput::error(err.explain(shown, fs.root())),
        };
        match fs.kind(&rel) {
            Ok(Kind::Dir) => {
                if start.is_some() || end.is_some() {
                    return ToolOutput::error(format!("`{shown}` is a directory; line ranges apply to files only"));
                }
                list_dir(&fs.root().join(&rel), ctx)
            }
            Ok(_) => match fs.read(&rel) {
                Ok(bytes) => view_file(&bytes, shown, start, end, ctx),
                Err(err) => ToolOutput::error(err.explain(shown, fs.root())),
            },
            Err(ConfinedError::Io(err)) if err.kind() == std::io::ErrorKind::NotFound => ToolOutput::error(format!(
                "`{shown}` does not exist (looked for {}). Use `search` to find files by content, or `view` a \
                 directory to see what is there.",
                fs.root().join(&rel).display()
            )),
            Err(err) => ToolOutput::error(err.explain(shown, fs.root())),
        }
    }
}

/// Reads an optional integer argument.
fn optional_int(args: &Value, key: &str) -> Result<Option<i64>, ToolOutput> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => match value.as_i64() {
            Some(n) => Ok(Some(n)),
            None => Err(ToolOutput::error(format!("`{key}` must be an integer, got {value}"))),
        },
    }
}

fn view_file(bytes: &[u8], shown: &str, start: Option<i64>, end: Option<i64>, ctx: &ToolContext) -> ToolOutput {
    if is_binary(bytes) {
        return ToolOutput::error(format!(
            "`{shown}` is a binary file ({} bytes); it cannot be shown as text. Inspect it with `bash` (e.g. `file`, \
             `xxd | head`) if you must.",
            group_thousands(bytes.len())
        ));
    }
    let text = String::from_utf8_lossy(bytes);
    if text.is_empty() {
        return ToolOutput::ok(format!("`{shown}` is empty"));
    }
    let lines: Vec<&str> = text.lines().collect();
    let total = lines.len();

    let first = match start {
        None => 1,
        Some(n) if n >= 1 && (n as usize) <= total => n as usize,
        Some(n) => {
            return ToolOutput::error(format!(
                "`start_line` {n} is out of range: `{shown}` has {} lines (valid: 1 to {total})",
                group_thousands(total)
            ));
        }
    };
    let last = match end {
        None if start.is_none() => total.min(DEFAULT_LINES),
        None | Some(-1) => total,
        Some(n) if n >= first as i64 => (n as usize).min(total),
        Some(n) => {
            return ToolOutput::error(format!(
                "`end_line` {n} is before `start_line` {first}; use -1 to read to the end of the file"
            ));
        }
    };

    let width = last.to_string().len();
    let mut out = String::new();
    let mut shown_last = first - 1;
    for (index, line) in lines.iter().enumerate().take(last).skip(first - 1) {
        let number = index + 1;
        let mut row = format!("{number:>width$}\t");
        if line.chars().count() > MAX_LINE_CHARS {
            row.extend(line.chars().take(MAX_LINE_CHARS));
            let _ = write!(row, " [... line cut at {} characters]", group_thousands(MAX_LINE_CHARS));
        } else {
            row.push_str(line);
        }
        row.push('\n');
        // Always show at least one line; then stop before the budget is exceeded.
        if shown_last >= first && out.len() + row.len() > ctx.max_output_chars {
            break;
        }
        out.push_str(&row);
        shown_last = number;
    }
    if shown_last < total {
        let _ = write!(
            out,
            "[showing lines {first}-{shown_last} of {}; call `view` with start_line={} to see more]",
            group_thousands(total),
            shown_last + 1
        );
    } else if first > 1 {
        let _ = write!(out, "[end of file: {} lines]", group_thousands(total));
    }
    ToolOutput::ok(out.trim_end_matches('\n').to_string())
}

/// A file is binary when its first bytes contain a NUL (the heuristic of git and grep).
fn is_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(BINARY_PROBE_BYTES)].contains(&0)
}

fn list_dir(dir: &Path, ctx: &ToolContext) -> ToolOutput {
    let walker = ignore::WalkBuilder::new(dir)
        .max_depth(Some(2))
        .hidden(false)
        .require_git(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(|entry| entry.file_name() != ".git")
        .build();
    let mut out = format!("{}/\n", paths::display(&ctx.workspace, dir).trim_end_matches('/'));
    let mut entries = 0usize;
    let mut more = 0usize;
    for entry in walker {
        let Ok(entry) = entry else { continue };
        let depth = entry.depth();
        if depth == 0 {
            continue;
        }
        if entries >= MAX_ENTRIES || out.len() > ctx.max_output_chars {
            more += 1;
            continue;
        }
        entries += 1;
        let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
        let name = entry.file_name().to_string_lossy();
        let _ = writeln!(out, "{}{name}{}", "  ".repeat(depth), if is_dir { "/" } else { "" });
    }
    if entries == 0 {
        out.push_str("  (empty)\n");
    }
    if more > 0 {
        let _ =
            writeln!(out, "[... {} more entries not shown; view a subdirectory to see them]", group_thousands(more));
    }
    ToolOutput::ok(out.trim_end_matches('\n').to_string())
}
