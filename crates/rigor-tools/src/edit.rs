//! `edit`: exact string replacement, line insertion, file creation, and undo.
//!
//! Edits are anchored on text the model has seen, not on line numbers it may misremember:
//! `str_replace` needs exactly one occurrence of `old_str`, and when there is none or several it
//! says so precisely (whitespace-insensitive near misses, the lines of each occurrence) so that the
//! next attempt succeeds. `create` on an existing file rewrites it whole (small models write whole
//! files far more reliably than exact replacements) and says which lines changed; an identical
//! rewrite, or one of a file too long to resend, is refused. Every edit pushes the previous
//! content onto a per-path in-memory history, which `undo` pops. Files keep their line endings
//! (CRLF files stay CRLF) and their trailing-newline state. After each edit a numbered snippet of
//! the changed region is shown so the model can check the result without another `view`.
//!
//! Reads and writes are confined to the workspace by [`crate::confined`]: every open is resolved
//! by the kernel beneath the workspace root, so neither `../x`, an absolute path, nor a symlink
//! (even one swapped in while the edit runs) reaches outside; writes replace the file atomically.
//! Under `--sandbox read-only` nothing is written; `.git` and `.rigor` are never written (as in the
//! sandbox, where they are bound read-only).
//!
//! Syntax checking is not done here: an [`EditCheck`] (the tree-sitter checker, later) can be
//! plugged in with [`EditTool::with_check`] (or several with [`EditTool::with_checks`]) and may veto an edit before it is written. The history
//! is not persisted and only knows edits made through this tool (not changes made with `bash`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rigor_protocol::ToolSpec;
use serde_json::{Value, json};

use crate::confined::{Confined, ConfinedError};
use crate::truncate::group_thousands;
use crate::{Tool, ToolContext, ToolOutput, required_str};

/// Lines of context shown around a changed region.
/// Said after every edit that was kept. It names the next step, running something: it used to
/// end "`undo` reverts it", and a small model read that as an instruction (measured on the
/// bundled example: Qwen2.5-Coder-1.5B undid each of its five edits at once, twice in a row).
const CHECK_IT: &str = "Check it: run the issue's example or the tests.";

const CONTEXT_LINES: usize = 4;
/// The edit commands.
const COMMANDS: [&str; 4] = ["str_replace", "insert", "create", "undo"];
/// Longest existing file `create` rewrites whole: longer ones would cost the model more output
/// than an exact replacement, and invite a shortened copy.
const MAX_REWRITE_LINES: usize = 400;
/// Occurrences whose line numbers are listed when `old_str` is ambiguous.
const MAX_LISTED_MATCHES: usize = 20;

/// A veto on edits, consulted before an edit is written (e.g. "the edit introduces a syntax error").
pub trait EditCheck: Send + Sync {
    /// Inspects a proposed edit of `path` from `before` (`None` for a new file) to `after`.
    /// `Err(message)` rejects it; the message is shown to the model and the file is left unchanged.
    fn check(&self, path: &Path, before: Option<&str>, after: &str) -> Result<(), String>;
}

/// Earlier contents of one file, newest last; `None` means the file did not exist.
type History = Vec<Option<Vec<u8>>>;

/// The `edit` tool.
#[derive(Default)]
pub struct EditTool {
    history: Mutex<HashMap<PathBuf, History>>,
    checks: Vec<Arc<dyn EditCheck>>,
}

impl EditTool {
    /// An edit tool that asks `check` before keeping any edit.
    pub fn with_check(check: Arc<dyn EditCheck>) -> Self {
        Self::with_checks(vec![check])
    }

    /// An edit tool that asks every one of `checks` (in order) before keeping any edit.
    pub fn with_checks(checks: Vec<Arc<dyn EditCheck>>) -> Self {
        Self { history: Mutex::default(), checks }
    }

    fn push_history(&self, path: &Path, previous: Option<Vec<u8>>) {
        let mut history = self.history.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        history.entry(path.to_path_buf()).or_default().push(previous);
    }

    fn pop_history(&self, path: &Path) -> Option<Option<Vec<u8>>> {
        let mut history = self.history.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        history.get_mut(path).and_then(Vec::pop)
    }

    /// Runs the check (if any) and writes `after`, recording `before` for undo.
    fn commit(&self, file: &Target, before: Option<&[u8]>, after: &str) -> Result<(), ToolOutput> {
        let shown = file.shown;
        for check in &self.checks {
            let before_text = before.map(String::from_utf8_lossy);
            check.check(&file.rel, before_text.as_deref(), after).map_err(|msg| {
                ToolOutput::error(format!("edit of `{shown}` rejected, the file is unchanged: {msg}"))
            })?;
        }
        file.fs.write(&file.rel, after.as_bytes()).map_err(|err| file.error("cannot write", &err))?;
        self.push_history(&file.rel, before.map(<[u8]>::to_vec));
        Ok(())
    }

    fn str_replace(&self, file: &Target, args: &Value) -> Result<ToolOutput, ToolOutput> {
        let shown = file.shown;
        let old = required_str(args, "old_str")?;
        let new = required_str(args, "new_str")?;
        let (bytes, text_file) = read_text(file)?;
        let (target, file) = (file, text_file);
        if old.is_empty() {
            return Err(ToolOutput::error(
                "`old_str` is empty; give the exact text to replace (or use `insert` to add lines)",
            ));
        }
        let old = file.to_lf(old);
        let new = file.to_lf(new);
        if old == new {
            return Err(ToolOutput::error("`old_str` and `new_str` are identical; nothing to change"));
        }
        let text = &file.text;
        let positions: Vec<usize> = text.match_indices(old.as_str()).map(|(i, _)| i).collect();
        let pos = match positions.as_slice() {
            [pos] => *pos,
            [] => match reindented(text, &old, &new) {
                Some((result, indent, first, last)) => {
                    self.commit(target, Some(&bytes), &file.restore(&result))?;
                    return Ok(ToolOutput::ok(format!(
                        "edited `{shown}`: `old_str` matched lines {first}-{last} with each line indented by {} more \
                         character(s), so `new_str` was indented the same way:\n{}\n{CHECK_IT}",
                        indent.len(),
                        snippet(&result, first, first + new.trim_end_matches('\n').matches('\n').count())
                    )));
                }
                None => return Err(no_match(text, &old, &new, shown)),
            },
            many => {
                let lines: Vec<String> =
                    many.iter().take(MAX_LISTED_MATCHES).map(|&p| line_of(text, p).to_string()).collect();
                let more = if many.len() > MAX_LISTED_MATCHES { ", ..." } else { "" };
                return Err(ToolOutput::error(format!(
                    "`old_str` occurs {} times in `{shown}` (at lines {}{more}); include more surrounding lines so \
                     that it matches exactly once",
                    many.len(),
                    lines.join(", ")
                )));
            }
        };
        let mut result = String::with_capacity(text.len() + new.len());
        result.push_str(&text[..pos]);
        result.push_str(&new);
        result.push_str(&text[pos + old.len()..]);
        if text.ends_with('\n') && !result.is_empty() && !result.ends_with('\n') {
            result.push('\n');
        }
        let first = line_of(&result, pos);
        let last = first + new.matches('\n').count();
        self.commit(target, Some(&bytes), &file.restore(&result))?;
        Ok(ToolOutput::ok(format!("edited `{shown}`:\n{}\n{CHECK_IT}", snippet(&result, first, last))))
    }

    fn insert(&self, file: &Target, args: &Value) -> Result<ToolOutput, ToolOutput> {
        let shown = file.shown;
        let new = required_str(args, "new_str")?;
        let after_line = match args.get("insert_line").and_then(Value::as_i64) {
            Some(n) if n >= 0 => n as usize,
            _ => {
                return Err(ToolOutput::error(
                    "`insert` needs `insert_line`: a line number >= 0 after which to insert (0 = top of file)",
                ));
            }
        };
        let (bytes, text_file) = read_text(file)?;
        let (target, file) = (file, text_file);
        let text = &file.text;
        let line_count = text.lines().count();
        if after_line > line_count {
            return Err(ToolOutput::error(format!(
                "`insert_line` {after_line} is out of range: `{shown}` has {line_count} lines (valid: 0 to {line_count})"
            )));
        }
        let mut block = file.to_lf(new);
        if !block.ends_with('\n') {
            block.push('\n');
        }
        let inserted_lines = block.matches('\n').count();
        let mut result = String::with_capacity(text.len() + block.len() + 1);
        if after_line == line_count && !text.is_empty() && !text.ends_with('\n') {
            // The last line has no newline: keep it that way after the inserted block.
            result.push_str(text);
            result.push('\n');
            result.push_str(block.trim_end_matches('\n'));
        } else {
            let offset: usize = text.split_inclusive('\n').take(after_line).map(str::len).sum();
            result.push_str(&text[..offset]);
            result.push_str(&block);
            result.push_str(&text[offset..]);
        }
        self.commit(target, Some(&bytes), &file.restore(&result))?;
        Ok(ToolOutput::ok(format!(
            "inserted {inserted_lines} line(s) into `{shown}` after line {after_line}:\n{}\n{CHECK_IT}",
            snippet(&result, after_line + 1, after_line + inserted_lines)
        )))
    }

    fn create(&self, target: &Target, args: &Value) -> Result<ToolOutput, ToolOutput> {
        let shown = target.shown;
        let text = required_str(args, "file_text")?;
        let previous = match target.fs.read(&target.rel) {
            Ok(bytes) if !bytes.is_empty() => return self.rewrite(target, bytes, text),
            Ok(_) => Some(Vec::new()),
            Err(ConfinedError::Io(err)) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(ConfinedError::NotAFile("symlink")) => None,
            Err(err) => return Err(target.error("cannot create", &err)),
        };
        self.commit(target, previous.as_deref(), text)?;
        Ok(ToolOutput::ok(format!("created `{shown}` ({} lines)", group_thousands(text.lines().count()))))
    }

    /// `create` on an existing file (`bytes`): replaces it with `text` whole, in the file's line
    /// endings, and shows the changed lines.
    fn rewrite(&self, target: &Target, bytes: Vec<u8>, text: &str) -> Result<ToolOutput, ToolOutput> {
        let shown = target.shown;
        let file = TextFile::decode(&bytes, shown)?;
        let old_lines = file.text.lines().count();
        if old_lines > MAX_REWRITE_LINES {
            return Err(ToolOutput::error(format!(
                "`{shown}` already exists and has {} lines: too long to rewrite whole with `create` (at most \
                 {MAX_REWRITE_LINES}). Change the lines that need it with `str_replace` (view them first).",
                group_thousands(old_lines)
            )));
        }
        let mut new = file.to_lf(text);
        if file.text.ends_with('\n') && !new.is_empty() && !new.ends_with('\n') {
            new.push('\n');
        }
        let Some((first, last_old, last_new)) = changed_lines(&file.text, &new) else {
            return Err(ToolOutput::error(format!(
                "the new text of `{shown}` is identical to the file; nothing to change. Write the file with the fix \
                 in it."
            )));
        };
        self.commit(target, Some(&bytes), &file.restore(&new))?;
        let change = if last_old < first {
            format!("inserted lines {first}-{last_new}")
        } else if last_new < first {
            format!("removed lines {first}-{last_old}")
        } else {
            format!("changed lines {first}-{last_old}, now lines {first}-{last_new}")
        };
        Ok(ToolOutput::ok(format!(
            "rewrote `{shown}` ({change}):\n{}\n{CHECK_IT}",
            snippet(&new, first, last_new.max(first))
        )))
    }

    fn undo(&self, target: &Target) -> Result<ToolOutput, ToolOutput> {
        let shown = target.shown;
        let Some(previous) = self.pop_history(&target.rel) else {
            return Err(ToolOutput::error(format!(
                "there is no edit of `{shown}` to undo (only edits made with this tool in this run can be undone)"
            )));
        };
        match previous {
            None => {
                target
                    .fs
                    .remove(&target.rel)
                    .map_err(|err| target.error("cannot delete (to undo its creation)", &err))?;
                Ok(ToolOutput::ok(format!("undid the creation of `{shown}`: the file is deleted")))
            }
            Some(bytes) => {
                target.fs.write(&target.rel, &bytes).map_err(|err| target.error("cannot restore", &err))?;
                let lines = String::from_utf8_lossy(&bytes).lines().count();
                Ok(ToolOutput::ok(format!(
                    "restored `{shown}` to its content before the last edit ({} lines)",
                    group_thousands(lines)
                )))
            }
        }
    }
}

/// The file an edit is about: the confined workspace, the path inside it, and the path as the
/// model wrote it.
struct Target<'a> {
    fs: &'a Confined,
    rel: PathBuf,
    shown: &'a str,
}

impl Target<'_> {
    fn error(&self, what: &str, err: &ConfinedError) -> ToolOutput {
        match err {
            ConfinedError::Io(io) if io.kind() != std::io::ErrorKind::NotFound => {
                ToolOutput::error(format!("{what} `{}`: {io}", self.shown))
            }
            other => ToolOutput::error(other.explain(self.shown, self.fs.root())),
        }
    }
}

#[async_trait]
impl Tool for EditTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "edit".into(),
            description: "Edit files: `str_replace` (old_str must match exactly once), `insert` (new_str after line \
                          insert_line, 0 = top), `create` (a new file, or a whole file rewritten), `undo` (revert the file's last edit)."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "command": {"type": "string", "enum": COMMANDS},
                    "path": {"type": "string", "description": "File path, relative to the workspace."},
                    "old_str": {"type": "string", "description": "str_replace: exact text to replace."},
                    "new_str": {"type": "string", "description": "str_replace: replacement; insert: text to insert."},
                    "insert_line": {"type": "integer", "description": "insert: line after which to insert."},
                    "file_text": {"type": "string", "description": "create: the whole content of the file."}
                },
                "required": ["command", "path"],
                // The text action format shows this as the edit's example. Measured on the bundled
                // example with Qwen2.5-Coder-1.5B: with `{"command": "<command>", ...}` it wrote
                // `"command": "bash"` and a whole new file in every edit; with a concrete
                // replacement it sent that replacement, verbatim, nine times. Placeholders that say
                // what goes where, with the command spelled out, leave it nothing to copy blindly.
                "examples": [{
                    "command": "str_replace",
                    "path": "<file you viewed>",
                    "old_str": "<lines copied exactly from the file>",
                    "new_str": "<the lines to put instead>"
                }]
            }),
        }
    }

    async fn run(&self, args: Value, ctx: &ToolContext) -> ToolOutput {
        let result = (|| {
            let command = required_str(&args, "command")?;
            if !COMMANDS.contains(&command) {
                let other_tool = ["finish", "abstain", "bash", "python", "view", "search"].contains(&command);
                // A small model told to check its edit asks the editor to run the tests
                // (measured: Qwen2.5-Coder-1.5B sent `{"command": "run", "path": "test_x.py"}`).
                let runs = ["run", "test", "tests", "execute", "exec", "check", "verify"].contains(&command);
                let advice = if other_tool {
                    format!(". `{command}` is a tool of its own: call it, not `edit`.")
                } else if runs {
                    ". The editor only changes files: run the tests or a check with the `bash` tool.".to_string()
                } else {
                    String::new()
                };
                return Err(ToolOutput::error(format!(
                    "unknown edit command `{command}`; use one of: {}{advice}",
                    COMMANDS.join(", ")
                )));
            }
            let shown = required_str(&args, "path")?;
            if ctx.sandbox.mode() == rigor_sandbox::SandboxMode::ReadOnly {
                return Err(ToolOutput::error(
                    "the workspace is read-only in this run (`--sandbox read-only`): files cannot be edited",
                ));
            }
            let fs = Confined::open(&ctx.workspace)
                .map_err(|err| {
                    ToolOutput::error(format!("the workspace {} cannot be opened: {err}", ctx.workspace.display()))
                })?
                .protect(&[".git", ".rigor"]);
            let rel = fs.relative(Path::new(shown)).map_err(|err| ToolOutput::error(err.explain(shown, fs.root())))?;
            let target = Target { fs: &fs, rel, shown };
            match command {
                "str_replace" => self.str_replace(&target, &args),
                "insert" => self.insert(&target, &args),
                "create" => self.create(&target, &args),
                _ => self.undo(&target),
            }
        })();
        result.unwrap_or_else(|err| err)
    }
}

/// A text file's content with `\n` line endings, and how to write it back.
struct TextFile {
    text: String,
    crlf: bool,
}

impl TextFile {
    fn new(raw: String) -> Self {
        let crlf_count = raw.matches("\r\n").count();
        // Only files that use CRLF throughout are converted; mixed files are edited byte for byte.
        if crlf_count > 0 && crlf_count == raw.matches('\n').count() {
            Self { text: raw.replace("\r\n", "\n"), crlf: true }
        } else {
            Self { text: raw, crlf: false }
        }
    }

    /// The text file `bytes` (of `shown`), or the error for one that is not UTF-8.
    fn decode(bytes: &[u8], shown: &str) -> Result<Self, ToolOutput> {
        let raw = String::from_utf8(bytes.to_vec()).map_err(|_| {
            ToolOutput::error(format!("`{shown}` is not UTF-8 text; it cannot be edited with this tool"))
        })?;
        Ok(Self::new(raw))
    }

    /// Model-supplied text in the working form (`\n` endings).
    fn to_lf(&self, text: &str) -> String {
        if self.crlf { text.replace("\r\n", "\n") } else { text.to_string() }
    }

    /// The working form back in the file's line endings.
    fn restore(&self, text: &str) -> String {
        if self.crlf { text.replace('\n', "\r\n") } else { text.to_string() }
    }
}

/// Reads an existing UTF-8 file for editing.
fn read_text(target: &Target) -> Result<(Vec<u8>, TextFile), ToolOutput> {
    let shown = target.shown;
    let bytes = match target.fs.read(&target.rel) {
        Ok(bytes) => bytes,
        Err(ConfinedError::Io(err)) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(ToolOutput::error(format!(
                "`{shown}` does not exist; use the `create` command to make a new file"
            )));
        }
        Err(err) => return Err(target.error("cannot read", &err)),
    };
    let file = TextFile::decode(&bytes, shown)?;
    Ok((bytes, file))
}

/// Where `new` differs from `old`, by whole lines: the first changed line (1-based) and the last
/// changed line of each (below `first` when lines were only inserted or only removed); `None` when
/// they are identical.
fn changed_lines(old: &str, new: &str) -> Option<(usize, usize, usize)> {
    if old == new {
        return None;
    }
    let (old, new): (Vec<&str>, Vec<&str>) = (old.split_inclusive('\n').collect(), new.split_inclusive('\n').collect());
    let prefix = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let room = old.len().min(new.len()) - prefix;
    let suffix = old.iter().rev().zip(new.iter().rev()).take(room).take_while(|(a, b)| a == b).count();
    Some((prefix + 1, old.len() - suffix, new.len() - suffix))
}

/// `str_replace` for an `old` whose lines all occur, in order and exactly once, in `text` with the
/// same extra indentation in front of every non-blank one (a model that copied a nested block
/// without its base indentation; aider recovers the same way): `text` with those lines replaced by
/// `new`'s, each non-blank one given that indentation; with the indentation and the 1-based range
/// of the lines replaced.
fn reindented(text: &str, old: &str, new: &str) -> Option<(String, String, usize, usize)> {
    let wanted: Vec<&str> = old.trim_end_matches('\n').split('\n').collect();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let content = |line: &str| line.trim_end_matches('\n').trim_end_matches('\r').to_string();
    let first_line = wanted.first().filter(|l| !l.trim().is_empty())?;
    let matches: Vec<(usize, String)> = (0..(lines.len() + 1).saturating_sub(wanted.len()))
        .filter_map(|i| {
            let head = content(lines[i]);
            let indent = head.strip_suffix(first_line)?.to_string();
            if indent.is_empty() || !indent.chars().all(|c| c == ' ' || c == '\t') {
                return None;
            }
            let fits = wanted.iter().zip(&lines[i..]).all(|(want, have)| {
                let have = content(have);
                if want.trim().is_empty() { have.trim().is_empty() } else { have == format!("{indent}{want}") }
            });
            fits.then_some((i, indent))
        })
        .collect();
    let [(at, indent)] = matches.as_slice() else { return None };
    let mut result: String = lines[..*at].concat();
    for line in new.trim_end_matches('\n').split('\n') {
        if !line.trim().is_empty() {
            result.push_str(indent);
        }
        result.push_str(line);
        result.push('\n');
    }
    let after = &lines[at + wanted.len()..];
    if after.is_empty() && !text.ends_with('\n') {
        result.pop();
    }
    result.push_str(&after.concat());
    Some((result, indent.clone(), at + 1, at + wanted.len()))
}

/// The 1-based line number of byte offset `pos`.
fn line_of(text: &str, pos: usize) -> usize {
    text[..pos].matches('\n').count() + 1
}

/// Lines `first..=last` of `text` (1-based) with [`CONTEXT_LINES`] of context, numbered.
fn snippet(text: &str, first: usize, last: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return "(the file is now empty)".to_string();
    }
    let from = first.saturating_sub(CONTEXT_LINES).max(1);
    let to = (last.max(first) + CONTEXT_LINES).min(lines.len());
    let width = to.to_string().len();
    let mut out = String::new();
    for number in from..=to {
        let _ = writeln!(out, "{number:>width$}\t{}", lines[number - 1]);
    }
    out.trim_end_matches('\n').to_string()
}

/// The error for an `old_str` that does not occur, with a hint when it nearly does.
fn no_match(text: &str, old: &str, new: &str, shown: &str) -> ToolOutput {
    let mut message = format!("`old_str` does not occur in `{shown}`; nothing was changed.");
    // The same edit sent again after it was made (measured: Qwen2.5-Coder-1.5B resent its kept
    // edit five times, copying `old_str` from the original code in its prompt).
    let made = (!new.trim().is_empty()).then(|| text.find(new)).flatten();
    if let Some(at) = made {
        let _ = write!(
            message,
            " This edit was made already: `new_str` is in the file at line {}. To change that code further, \
             take `old_str` from the file as it is now.",
            line_of(text, at)
        );
        return ToolOutput::error(message);
    }
    match whitespace_insensitive_match(text, old) {
        Some((first, last)) if first == last => {
            let _ = write!(
                message,
                " Ignoring whitespace, it matches line {first}: the indentation or spacing differs. View that line \
                 and copy it exactly."
            );
        }
        Some((first, last)) => {
            let _ = write!(
                message,
                " Ignoring whitespace, it matches lines {first}-{last}: the indentation or spacing differs. View \
                 those lines and copy them exactly."
            );
        }
        None => message.push_str(" View the file and copy the text to replace exactly, including indentation."),
    }
    ToolOutput::error(message)
}

/// Collapses runs of whitespace to one space and trims.
fn squash(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first line range where `old` matches `text` once whitespace is normalised.
fn whitespace_insensitive_match(text: &str, old: &str) -> Option<(usize, usize)> {
    let wanted: Vec<String> = old.lines().map(squash).collect();
    let start = wanted.iter().position(|l| !l.is_empty())?;
    let end = wanted.iter().rposition(|l| !l.is_empty())?;
    let wanted = &wanted[start..=end];
    let have: Vec<String> = text.lines().map(squash).collect();
    if let [only] = wanted {
        return have.iter().position(|line| line.contains(only.as_str())).map(|i| (i + 1, i + 1));
    }
    let k = wanted.len();
    (0..(have.len() + 1).saturating_sub(k))
        .find(|&i| {
            let window = &have[i..i + k];
            window[0].ends_with(wanted[0].as_str())
                && window[k - 1].starts_with(wanted[k - 1].as_str())
                && window[1..k - 1] == wanted[1..k - 1]
        })
        .map(|i| (i + 1, i + k))
}
