//! `search`: a gitignore-aware regex search over the workspace, ripgrep style.
//!
//! The walk honours `.gitignore` (also outside a git repository), skips hidden files and `.git`,
//! and runs in parallel (`ignore::WalkBuilder::build_parallel`) while the regex is compiled; the
//! files are then searched on every core with `grep-searcher` (binary files skipped) using a
//! `grep-regex` matcher. Results are `path:line: text`
//! relative to the workspace, sorted by path and line, long lines cut, and capped at `max_results`
//! with a note saying how many more matched.
//!
//! The search is confined to the workspace ([`crate::confined`]): the root must lie inside it,
//! symlinks are not followed by the walk, and each file is opened beneath the workspace root, so a
//! file swapped for a symlink to `~/.ssh/id_rsa` mid-search is refused, and a FIFO never blocks.
//!
//! This tool matches lines only (no multi-line patterns) and does not rank results; structure-aware
//! lookups (definitions, references) belong to the code-graph tools.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use grep_regex::RegexMatcherBuilder;
use grep_searcher::{BinaryDetection, SearcherBuilder, sinks::Lossy};
use ignore::WalkState;
use ignore::overrides::OverrideBuilder;
use rigor_protocol::ToolSpec;
use serde_json::{Value, json};

use crate::confined::Confined;
use crate::truncate::{group_thousands, truncate_middle};
use crate::{Tool, ToolContext, ToolOutput, paths, required_str};

/// Results shown when `max_results` is not given.
pub const DEFAULT_MAX_RESULTS: usize = 100;
/// Characters of a matching line shown before it is cut.
const MAX_LINE_CHARS: usize = 300;
/// Matches remembered (for sorting) beyond those shown; past this they are only counted.
const MAX_STORED: usize = 10_000;
/// Matches counted before the walk stops early; the note then says "more than".
const MAX_COUNTED: usize = 100_000;
/// Files larger than this are skipped (generated data, logs).
const MAX_FILE_BYTES: u64 = 20 * 1024 * 1024;

/// The `search` tool.
pub struct SearchTool;

#[async_trait]
impl Tool for SearchTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "search".into(),
            description: "Regex search of file contents (gitignore-aware, hidden files skipped); prints \
                          `path:line: text`."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "description": "Regular expression (Rust regex syntax)."},
                    "path": {"type": "string", "description": "File or directory to search (default: the workspace)."},
                    "glob": {"type": "string", "description": "Only files matching this glob, e.g. \"*.py\"."},
                    "case_insensitive": {"type": "boolean"},
                    "max_results": {"type": "integer", "description": "Default 100."}
                },
                "required": ["pattern"]
            }),
        }
    }

    async fn run(&self, args: Value, ctx: &ToolContext) -> ToolOutput {
        let request = match Request::parse(&args, ctx) {
            Ok(request) => request,
            Err(err) => return err,
        };
        let workspace = ctx.workspace.clone();
        let max_chars = ctx.max_output_chars;
        match tokio::task::spawn_blocking(move || request.execute(&workspace, max_chars)).await {
            Ok(output) => output,
            Err(err) => ToolOutput::error(format!("search failed: {err}")),
        }
    }
}

/// A validated search.
struct Request {
    pattern: String,
    root: PathBuf,
    shown_root: String,
    glob: Option<String>,
    case_insensitive: bool,
    max_results: usize,
    /// The workspace, through which every file is opened.
    fs: Confined,
}

/// One matching line.
struct Hit {
    path: String,
    line: u64,
    text: String,
}

impl Request {
    fn parse(args: &Value, ctx: &ToolContext) -> Result<Self, ToolOutput> {
        let pattern = required_str(args, "pattern")?.to_string();
        let shown_root = args.get("path").and_then(Value::as_str).unwrap_or(".").to_string();
        let fs = Confined::open(&ctx.workspace).map_err(|err| {
            ToolOutput::error(format!("the workspace {} cannot be opened: {err}", ctx.workspace.display()))
        })?;
        let rel = fs
            .relative(Path::new(&shown_root))
            .map_err(|err| ToolOutput::error(err.explain(&shown_root, fs.root())))?;
        if let Err(err) = fs.kind(&rel) {
            return Err(ToolOutput::error(format!(
                "{}; search the whole workspace by leaving out `path`",
                err.explain(&shown_root, fs.root())
            )));
        }
        let root = fs.root().join(&rel);
        let glob = args.get("glob").and_then(Value::as_str).filter(|g| !g.trim().is_empty()).map(str::to_string);
        let case_insensitive = args.get("case_insensitive").and_then(Value::as_bool).unwrap_or(false);
        let max_results = match args.get("max_results") {
            None | Some(Value::Null) => DEFAULT_MAX_RESULTS,
            Some(value) => match value.as_u64() {
                Some(n) if n > 0 => n as usize,
                _ => return Err(ToolOutput::error(format!("`max_results` must be a positive integer, got {value}"))),
            },
        };
        Ok(Self { pattern, root, shown_root, glob, case_insensitive, max_results, fs })
    }

    fn execute(&self, workspace: &Path, max_chars: usize) -> ToolOutput {
        let mut builder = ignore::WalkBuilder::new(&self.root);
        builder
            .hidden(true)
            .require_git(false)
            .max_filesize(Some(MAX_FILE_BYTES))
            .filter_entry(|entry| entry.file_name() != ".git");
        if let Some(glob) = &self.glob {
            let mut overrides = OverrideBuilder::new(&self.root);
            let built = overrides.add(glob).and_then(|o| o.build());
            match built {
                Ok(overrides) => {
                    builder.overrides(overrides);
                }
                Err(err) => return ToolOutput::error(format!("invalid glob `{glob}`: {err}")),
            }
        }
        // The matcher is compiled while the tree is walked: grep-regex builds a full DFA where it
        // can, milliseconds for a Unicode class such as `\w`, as long as a walk of a small tree.
        // A regex that does not compile stops the walk.
        let invalid = AtomicBool::new(false);
        let (matcher, files) = std::thread::scope(|scope| {
            let compiling = scope.spawn(|| {
                let built = RegexMatcherBuilder::new()
                    .case_insensitive(self.case_insensitive)
                    .line_terminator(Some(b'\n'))
                    .build(&self.pattern);
                invalid.store(built.is_err(), Ordering::Relaxed);
                built
            });
            let files = list_files(&builder, &invalid);
            (compiling.join(), files)
        });
        let matcher = match matcher {
            Ok(Ok(matcher)) => matcher,
            Ok(Err(err)) => return ToolOutput::error(format!("invalid regex `{}`: {err}", self.pattern)),
            Err(_) => return ToolOutput::error(format!("compiling the regex `{}` failed", self.pattern)),
        };

        let hits: Mutex<Vec<Hit>> = Mutex::new(Vec::new());
        let counted = AtomicUsize::new(0);
        let next = AtomicUsize::new(0);
        let threads = std::thread::available_parallelism().map_or(1, usize::from).min(files.len().max(1));
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    let mut searcher =
                        SearcherBuilder::new().binary_detection(BinaryDetection::quit(0)).line_number(true).build();
                    while counted.load(Ordering::Relaxed) < MAX_COUNTED {
                        let Some(path) = files.get(next.fetch_add(1, Ordering::Relaxed)) else { break };
                        let shown = paths::display(workspace, path);
                        let mut found = Vec::new();
                        let Ok(rel) = path.strip_prefix(self.fs.root()) else { continue };
                        let Ok(file) = self.fs.open_file(rel) else { continue };
                        let _ = searcher.search_file(
                            &matcher,
                            &file,
                            Lossy(|line, text| {
                                found.push(Hit { path: shown.clone(), line, text: cut_line(text) });
                                Ok(true)
                            }),
                        );
                        if found.is_empty() {
                            continue;
                        }
                        counted.fetch_add(found.len(), Ordering::Relaxed);
                        let mut hits = hits.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                        let room = MAX_STORED.saturating_sub(hits.len());
                        hits.extend(found.into_iter().take(room));
                    }
                });
            }
        });

        let mut hits = hits.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
        let total = counted.into_inner();
        if hits.is_empty() {
            let glob = self.glob.as_ref().map(|g| format!(" (files matching `{g}`)")).unwrap_or_default();
            return ToolOutput::ok(format!("no matches for `{}` in `{}`{glob}", self.pattern, self.shown_root));
        }
        hits.sort_by(|a, b| a.path.cmp(&b.path).then(a.line.cmp(&b.line)));
        let mut out = String::new();
        for hit in hits.iter().take(self.max_results) {
            let _ = writeln!(out, "{}:{}: {}", hit.path, hit.line, hit.text);
        }
        let shown = hits.len().min(self.max_results);
        if total > shown {
            let more = if total >= MAX_COUNTED { "more than " } else { "" };
            let _ = writeln!(
                out,
                "[showing {shown} of {more}{} matches; narrow the pattern, `path` or `glob`, or raise `max_results`]",
                group_thousands(total)
            );
        }
        ToolOutput::ok(truncate_middle(out.trim_end_matches('\n'), max_chars))
    }
}

/// The files under the walk's root, found by a parallel walk (cut short once `stop` is set).
fn list_files(builder: &ignore::WalkBuilder, stop: &AtomicBool) -> Vec<PathBuf> {
    let files: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    builder.build_parallel().run(|| {
        let files = &files;
        Box::new(move |entry| {
            if stop.load(Ordering::Relaxed) {
                return WalkState::Quit;
            }
            if let Ok(entry) = entry
                && entry.file_type().is_some_and(|t| t.is_file())
            {
                files.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(entry.into_path());
            }
            WalkState::Continue
        })
    });
    files.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A matching line without its terminator, cut to [`MAX_LINE_CHARS`].
fn cut_line(text: &str) -> String {
    let text = text.trim_end_matches(['\n', '\r']);
    if text.chars().count() <= MAX_LINE_CHARS {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(MAX_LINE_CHARS).collect();
    cut.push_str(" [...]");
    cut
}
