//! The graph as tools for the agent, and the editor's syntax check.
//!
//! [`CodeIntel`] owns an index of the workspace and a retriever, refreshed incrementally before
//! every query so that the agent's own edits are visible. Three tools (LocAgent's interface):
//! `search_entity` (names, qualified names, paths, or free text → entities), `retrieve_entity`
//! (entity ids → their code with line numbers) and `traverse_graph` (from entities, along chosen
//! edge kinds, up or down, to a depth → an indented tree). The same renderers back `rigor graph`.
//! [`SyntaxCheck`] rejects an edit that turns a file that parses into one that does not.
//! [`GraphSource`] offers all of it to a run as a [`rigor_tools::ToolSource`]: the three tools,
//! the repository map as a prompt section, and the syntax check.
//!
//! Tools return observations, never errors; nothing here prints.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rigor_protocol::ToolSpec;
use rigor_tools::edit::EditCheck;
use rigor_tools::{Contribution, PromptProfile, PromptShape, Tool, ToolContext, ToolOutput, ToolSource};
use serde_json::{Value, json};

use crate::graph::{CodeGraph, EdgeKind, NodeKind};
use crate::lang::{Lang, syntax_errors};
use crate::localize::Retriever;
use crate::store::{Index, IndexError};

/// Code intelligence over one directory: index, graph and retriever, refreshed on demand.
pub struct CodeIntel {
    index: Mutex<Index>,
    retriever: Mutex<Option<Arc<Retriever>>>,
}

impl std::fmt::Debug for CodeIntel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeIntel").finish_non_exhaustive()
    }
}

impl CodeIntel {
    /// Code intelligence over `root`, kept in memory only (nothing is written under `root`).
    pub fn in_memory(root: impl Into<PathBuf>) -> Arc<CodeIntel> {
        Arc::new(CodeIntel { index: Mutex::new(Index::in_memory(root)), retriever: Mutex::default() })
    }

    /// Code intelligence backed by the persisted index of `root` (`.rigor/index`).
    pub fn persistent(root: impl Into<PathBuf>) -> Result<Arc<CodeIntel>, IndexError> {
        Ok(Arc::new(CodeIntel { index: Mutex::new(Index::open(root)?), retriever: Mutex::default() }))
    }

    /// Updates the index from disk and returns a retriever over the current graph.
    pub fn refresh(&self) -> Result<Arc<Retriever>, IndexError> {
        let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        index.update()?;
        let graph = index.graph();
        let mut slot = self.retriever.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = slot.as_ref()
            && Arc::ptr_eq(r.graph(), &graph)
        {
            return Ok(Arc::clone(r));
        }
        let start = std::time::Instant::now();
        let r = Arc::new(Retriever::new(graph));
        tracing::debug!(ms = start.elapsed().as_secs_f64() * 1000.0, "retriever built");
        *slot = Some(Arc::clone(&r));
        Ok(r)
    }

    /// The root directory.
    pub fn root(&self) -> PathBuf {
        self.index.lock().unwrap_or_else(|p| p.into_inner()).root().to_path_buf()
    }

    /// The three agent tools over this code intelligence.
    pub fn tools(self: &Arc<Self>) -> (SearchEntityTool, RetrieveEntityTool, TraverseGraphTool) {
        (SearchEntityTool(Arc::clone(self)), RetrieveEntityTool(Arc::clone(self)), TraverseGraphTool(Arc::clone(self)))
    }
}

/// Finds the node an id refers to: an exact id, a path, `Class.method`, or a unique suffix.
pub fn resolve_entity(r: &Retriever, query: &str) -> Result<u32, String> {
    let g = r.graph();
    let q = query.trim().trim_end_matches("()").trim_start_matches("./");
    if let Some(n) = g.lookup(q) {
        return Ok(n);
    }
    let dotted = q.replace("::", ".");
    let (path_part, name_part) = match dotted.split_once(':') {
        Some((p, n)) => (Some(p), n.to_string()),
        None => (None, dotted.clone()),
    };
    let last = name_part.rsplit('.').next().unwrap_or(&name_part);
    let mut cands: Vec<u32> = r
        .by_name(last)
        .into_iter()
        .filter(|&e| {
            let name = g.entity(e).map(|x| x.name.as_str()).unwrap_or_default();
            let name_ok = name == name_part || name.ends_with(&format!(".{name_part}"));
            let path_ok = path_part.is_none_or(|p| g.path_of(e).ends_with(p));
            name_ok && path_ok
        })
        .collect();
    if cands.is_empty() && path_part.is_none() {
        cands = g
            .files()
            .iter()
            .enumerate()
            .filter(|(_, f)| f.path.ends_with(&format!("/{q}")))
            .map(|(fi, _)| g.file_node(fi as u32))
            .collect();
    }
    match cands.as_slice() {
        [one] => Ok(*one),
        [] => Err(format!("no entity `{query}`; use search_entity to find its id (`path:Class.method`)")),
        many => {
            let list: Vec<String> = many.iter().take(10).map(|&n| g.node(n).id.clone()).collect();
            Err(format!("`{query}` is ambiguous; one of: {}", list.join(", ")))
        }
    }
}

fn describe(g: &CodeGraph, n: u32) -> String {
    let node = g.node(n);
    match g.entity(n) {
        Some(e) => format!("{} ({}, lines {}-{})", node.id, e.detail, e.start_line, e.end_line),
        None => format!("{} ({})", node.id, node.kind.as_str()),
    }
}

/// `search_entity`: entities for each keyword (exact names first), then free-text matches.
pub fn render_search(r: &Retriever, query: &str, limit: usize) -> String {
    let g = r.graph();
    let mut out = String::new();
    let mut shown: HashSet<u32> = HashSet::new();
    for kw in query.split([',', ' ', '\n']).map(str::trim).filter(|k| !k.is_empty()) {
        let mut exact: Vec<u32> = Vec::new();
        if let Ok(n) = resolve_entity(r, kw) {
            exact.push(n);
        } else {
            let last = kw.rsplit(['.', ':']).next().unwrap_or(kw);
            exact.extend(r.by_name(last).into_iter().take(limit));
        }
        exact.retain(|n| shown.insert(*n));
        if exact.is_empty() {
            continue;
        }
        let _ = writeln!(out, "Matches for `{kw}`:");
        for n in exact.into_iter().take(limit) {
            let _ = writeln!(out, "  {}", describe(g, n));
            if let Some(e) = g.entity(n).filter(|e| !e.signature.is_empty()) {
                let _ = writeln!(out, "      {}", e.signature);
            }
        }
    }
    let related: Vec<(u32, f32)> =
        r.search_entities(query, limit * 2).into_iter().filter(|(n, _)| !shown.contains(n)).take(limit).collect();
    if !related.is_empty() {
        let _ = writeln!(out, "Related entities (lexical match):");
        for (n, _) in related {
            let _ = writeln!(out, "  {}", describe(g, n));
        }
    }
    if out.is_empty() { format!("no entity matches `{query}`") } else { out }
}

/// `retrieve_entity`: the code of an entity (or the start of a file) with line numbers.
pub fn render_entity(r: &Retriever, root: &Path, id: &str, max_lines: usize) -> Result<String, String> {
    let g = r.graph();
    let n = resolve_entity(r, id)?;
    let node = g.node(n);
    if node.kind == NodeKind::Directory {
        let mut out = format!("{} (directory)\n", node.id);
        for &(c, k) in g.outgoing(n) {
            if k == EdgeKind::Contains {
                let _ = writeln!(out, "  {}", g.node(c).id);
            }
        }
        return Ok(out);
    }
    let path = g.path_of(n);
    // Opened beneath the workspace: the file may have been swapped for a symlink or a FIFO since
    // the index was refreshed.
    let confined =
        rigor_tools::confined::Confined::open(root).map_err(|e| format!("cannot open the workspace: {e}"))?;
    let bytes = confined.read(Path::new(path)).map_err(|e| e.explain(path, confined.root()))?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (start, end) = match g.entity(n) {
        Some(e) => (e.start_line as usize, e.end_line as usize),
        None => (1, text.lines().count()),
    };
    let mut out = format!("{}\n", describe(g, n));
    if let Some(e) = g.entity(n).filter(|e| !e.doc.is_empty()) {
        let _ = writeln!(out, "doc: {}", e.doc);
    }
    let width = end.to_string().len();
    for (i, line) in text.lines().enumerate().skip(start.saturating_sub(1)).take(end + 1 - start) {
        if i + 1 - start >= max_lines {
            let _ = writeln!(out, "[... {} more lines; view {path} for the rest ...]", end - i);
            break;
        }
        let _ = writeln!(out, "{:>width$}  {line}", i + 1);
    }
    Ok(out)
}

/// Functions and methods a compact prompt shows the code of, at most.
const MAX_NAMED_ENTITIES: usize = 3;
/// Lines shown of each named function or method.
const MAX_NAMED_LINES: usize = 60;
/// A name shared by more entities than this says too little to show any of them.
const MAX_NAME_MATCHES: usize = 2;

/// The code of the functions and methods that `issue` names exactly (a dotted name, a word in
/// backticks, a call, a snake_case or CamelCase word), with line numbers, in the order they are
/// named, within `budget_tokens` (four characters a token): for a small model's first prompt,
/// which then has the lines to change in front of it instead of guessing them (measured on the
/// bundled example: Qwen2.5-Coder-1.5B's edits of a function it had not viewed missed the file's
/// text). Functions in test files, names that more than [`MAX_NAME_MATCHES`] entities share, and
/// entities inside one already shown are left out. Empty when the issue names none.
pub fn named_code(r: &Retriever, root: &Path, issue: &str, budget_tokens: usize) -> String {
    let budget = budget_tokens.saturating_mul(4);
    let mut out = String::new();
    for n in named_entities(r, issue) {
        let Ok(block) = render_entity(r, root, &r.graph().node(n).id, MAX_NAMED_LINES) else { continue };
        if out.len() + block.len() <= budget {
            out.push_str(&block);
        }
    }
    out
}

/// The functions and methods that `issue` names exactly, in the order it names them, at most
/// [`MAX_NAMED_ENTITIES`] (see [`named_code`]).
pub fn named_entities(r: &Retriever, issue: &str) -> Vec<u32> {
    let g = r.graph();
    let mentions = crate::localize::Mentions::extract(issue);
    let mut shown: Vec<u32> = Vec::new();
    for name in mentions.dotted.iter().chain(&mentions.identifiers) {
        let last = name.rsplit('.').next().unwrap_or(name);
        let named: Vec<u32> = r
            .by_name(last)
            .into_iter()
            .filter(|&n| {
                g.entity(n).is_some_and(|e| {
                    // `parse` names a function `parse` or a method `Parser.parse`; `Parser.parse`
                    // names only that method.
                    let matches = if name.contains('.') {
                        e.name == *name || e.name.ends_with(&format!(".{name}"))
                    } else {
                        e.name.rsplit('.').next() == Some(last)
                    };
                    e.kind != crate::extract::EntityKind::Class && matches
                }) && !crate::localize::is_test_path(g.path_of(n))
            })
            .collect();
        if named.is_empty() || named.len() > MAX_NAME_MATCHES {
            continue;
        }
        for n in named {
            let inside_shown = shown.iter().any(|&s| {
                g.path_of(s) == g.path_of(n)
                    && g.entity(s)
                        .zip(g.entity(n))
                        .is_some_and(|(a, b)| a.start_line <= b.start_line && b.end_line <= a.end_line)
            });
            if inside_shown || shown.contains(&n) {
                continue;
            }
            if shown.len() >= MAX_NAMED_ENTITIES {
                return shown;
            }
            shown.push(n);
        }
    }
    shown
}

/// Examples an example run makes at most.
const MAX_EXAMPLES: usize = 6;
/// Statements of the issue's interpreter session an example run makes at most.
const MAX_SESSION_STATEMENTS: usize = 12;

/// A shell command that runs the examples `issue` gives, from the root of `workspace`, and
/// prints what each returns or raises; `None` when it gives none. An example is a span in
/// backticks that is one call of a top-level Python function defined under that exact name
/// outside the tests (`parse_duration("1h30m")`), imported from its module, or a statement of
/// an interpreter session the issue shows (`>>> humanize.ordinal(111)`), run in order in one
/// namespace (a `src/` or `lib/` layout's directory is put on the path). A small model rarely runs
/// anything on its own (measured on the bundled example: Qwen2.5-Coder-1.5B never did in 15
/// steps); the loop runs these for it, before its first turn and after each edit it keeps.
pub fn issue_examples(r: &Retriever, workspace: &Path, issue: &str) -> Option<String> {
    let g = r.graph();
    let is_python = |path: &str| g.file_index(path).is_some_and(|fi| g.files()[fi as usize].lang == Lang::Python);
    // One session: the imports the inline calls need, the calls, then the issue's own session.
    let mut statements: Vec<String> = Vec::new();
    let mut calls = 0;
    let mut roots: Vec<&str> = Vec::new();
    for text in crate::localize::code_spans(issue).map(str::trim) {
        let Some((name, _)) = single_call(text) else { continue };
        let defined: Vec<u32> = r
            .by_name(name)
            .into_iter()
            .filter(|&n| {
                g.entity(n).is_some_and(|e| e.name == name && e.kind == crate::extract::EntityKind::Function)
                    && is_python(g.path_of(n))
                    && !crate::localize::is_test_path(g.path_of(n))
            })
            .collect();
        let [n] = defined.as_slice() else { continue };
        if calls >= MAX_EXAMPLES || statements.iter().any(|s| s == text) {
            continue;
        }
        let (root, module) = python_module(g.path_of(*n));
        let import = format!("from {module} import {name}");
        if !statements.contains(&import) {
            statements.insert(statements.len() - calls, import);
        }
        if !root.is_empty() && !roots.contains(&root) {
            roots.push(root);
        }
        statements.push(text.to_string());
        calls += 1;
    }
    let session = doctest_statements(issue);
    if !session.is_empty() {
        // The session imports the package by its own name: a `src/` or `lib/` layout's directory
        // goes on the path.
        for root in ["src", "lib"] {
            let prefix = format!("{root}/");
            if g.files().iter().any(|f| f.lang == Lang::Python && f.path.starts_with(&prefix)) && !roots.contains(&root)
            {
                roots.push(root);
            }
        }
    }
    statements.extend(session);
    if statements.is_empty() {
        return None;
    }
    // Statement by statement in one namespace: what an expression gives is printed, as the
    // interpreter would; a statement that fails says so and the session goes on.
    let quote = |text: &str| serde_json::to_string(text).unwrap_or_default();
    let path: Vec<String> = std::iter::once("").chain(roots).map(quote).collect();
    let statements: Vec<String> = statements.iter().map(|s| quote(s)).collect();
    let script = format!(
        "import sys\nsys.path[:0] = [{}]\nnamespace = {{}}\nfor source in [{}]:\n    try:\n        try:\n            \
         code = compile(source, \"<issue>\", \"eval\")\n        except SyntaxError:\n            exec(compile(source, \
         \"<issue>\", \"exec\"), namespace)\n            continue\n        print(source, \"->\", repr(eval(code, \
         namespace)))\n    except Exception as error:\n        print(source, \"raises\", type(error).__name__ + \":\", \
         error)\n",
        path.join(", "),
        statements.join(", ")
    );
    let dir = workspace.display().to_string().replace('\'', r"'\''");
    Some(format!("(cd '{dir}' && python3 - <<'RIGOR_EXAMPLES'\n{script}RIGOR_EXAMPLES\n)"))
}

/// Statements of an interpreter session the issue shows (`>>> ` lines, with their `... `
/// continuation lines), at most [`MAX_SESSION_STATEMENTS`].
fn doctest_statements(issue: &str) -> Vec<String> {
    let mut statements: Vec<String> = Vec::new();
    for line in issue.lines() {
        let line = line.trim_start();
        if let Some(statement) = line.strip_prefix(">>> ") {
            if statements.len() >= MAX_SESSION_STATEMENTS {
                break;
            }
            statements.push(statement.trim_end().to_string());
        } else if let Some(more) = line.strip_prefix("... ").or_else(|| (line == "...").then_some(""))
            && let Some(last) = statements.last_mut()
        {
            last.push('\n');
            last.push_str(more.trim_end());
        }
    }
    statements.retain(|s| !s.trim().is_empty());
    statements
}

/// `text` as one call `name(arguments)` of a plain name, parentheses balanced outside strings.
fn single_call(text: &str) -> Option<(&str, &str)> {
    let open = text.find('(')?;
    let name = &text[..open];
    let plain = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !plain || !text.ends_with(')') {
        return None;
    }
    let (mut depth, mut quote, mut escaped) = (0i32, None::<char>, false);
    for (at, c) in text.char_indices().skip(open) {
        match (quote, c) {
            (Some(_), _) if escaped => escaped = false,
            (Some(_), '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => {
                depth -= 1;
                if depth == 0 && at + 1 != text.len() {
                    return None;
                }
            }
            _ => {}
        }
    }
    (depth == 0 && quote.is_none()).then(|| (name, &text[open + 1..text.len() - 1]))
}

/// The directory to put on `sys.path` (empty: the root) and the dotted module of a Python file.
fn python_module(path: &str) -> (&str, String) {
    let (root, inner) = match path.split_once('/') {
        Some((first @ ("src" | "lib"), rest)) => (first, rest),
        _ => ("", path),
    };
    let stem = inner.trim_end_matches(".pyi").trim_end_matches(".py");
    let module = stem.strip_suffix("/__init__").unwrap_or(stem).replace('/', ".");
    (root, module)
}

/// Which way to traverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Along outgoing edges (callees, contents, bases, imports).
    Down,
    /// Along incoming edges (callers, containers, subclasses, importers).
    Up,
    /// Both.
    Both,
}

impl Direction {
    /// Parses `down`/`downstream`, `up`/`upstream`, `both`.
    pub fn parse(s: &str) -> Option<Direction> {
        Some(match s {
            "down" | "downstream" | "out" | "outgoing" => Direction::Down,
            "up" | "upstream" | "in" | "incoming" => Direction::Up,
            "both" => Direction::Both,
            _ => return None,
        })
    }
}

/// Cap on the nodes a traversal prints.
const MAX_TRAVERSAL_NODES: usize = 150;

/// `traverse_graph`: an indented tree from `start` along `edges`, up to `depth` hops.
pub fn render_traversal(
    r: &Retriever,
    start: &str,
    direction: Direction,
    depth: usize,
    edges: &[EdgeKind],
    kinds: &[NodeKind],
) -> Result<String, String> {
    let g = r.graph();
    let n = resolve_entity(r, start)?;
    let mut out = format!("{}\n", describe(g, n));
    let mut seen: HashSet<u32> = HashSet::from([n]);
    let mut count = 0;
    walk_tree(g, n, direction, depth, edges, kinds, 1, &mut seen, &mut count, &mut out);
    if count >= MAX_TRAVERSAL_NODES {
        let _ = writeln!(out, "[... stopped after {MAX_TRAVERSAL_NODES} nodes; narrow edge_types or depth ...]");
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn walk_tree(
    g: &CodeGraph,
    n: u32,
    direction: Direction,
    depth: usize,
    edges: &[EdgeKind],
    kinds: &[NodeKind],
    level: usize,
    seen: &mut HashSet<u32>,
    count: &mut usize,
    out: &mut String,
) {
    if level > depth {
        return;
    }
    let mut steps: Vec<(u32, EdgeKind, bool)> = Vec::new();
    if direction != Direction::Up {
        steps.extend(g.outgoing(n).iter().map(|&(m, k)| (m, k, true)));
    }
    if direction != Direction::Down {
        steps.extend(g.incoming(n).iter().map(|&(m, k)| (m, k, false)));
    }
    for (m, k, down) in steps {
        if *count >= MAX_TRAVERSAL_NODES {
            return;
        }
        if !edges.contains(&k) || (!kinds.is_empty() && !kinds.contains(&g.node(m).kind)) {
            continue;
        }
        *count += 1;
        let arrow = if down { format!("-{}->", k.as_str()) } else { format!("<-{}-", k.as_str()) };
        let fresh = seen.insert(m);
        let _ = writeln!(out, "{}{arrow} {}{}", "  ".repeat(level), describe(g, m), if fresh { "" } else { " (seen)" });
        if fresh {
            walk_tree(g, m, direction, depth, edges, kinds, level + 1, seen, count, out);
        }
    }
}

fn string_list(args: &Value, keys: &[&str]) -> Vec<String> {
    for key in keys {
        match args.get(*key) {
            Some(Value::Array(a)) => return a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            Some(Value::String(s)) => {
                return s.split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect();
            }
            _ => {}
        }
    }
    Vec::new()
}

fn refreshed(intel: &CodeIntel) -> Result<Arc<Retriever>, ToolOutput> {
    intel.refresh().map_err(|e| ToolOutput::error(format!("the code graph is unavailable: {e}")))
}

fn cut(text: String, ctx: &ToolContext) -> String {
    if text.len() <= ctx.max_output_chars {
        return text;
    }
    let mut end = ctx.max_output_chars;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n[... output truncated; ask for fewer entities ...]", &text[..end])
}

/// `search_entity`.
pub struct SearchEntityTool(Arc<CodeIntel>);

#[async_trait]
impl Tool for SearchEntityTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "search_entity".into(),
            description: "Find classes, functions, methods and files in the code graph by name (`union`, \
                          `QuerySet.union`, `path/to/file.py`) or by keywords. Returns entity ids \
                          (`path:Class.method`) with line spans and signatures."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "Names or keywords, separated by spaces or commas."},
                    "limit": {"type": "integer", "description": "Results per keyword (default 10)."}
                },
                "required": ["query"]
            }),
        }
    }

    async fn run(&self, args: Value, ctx: &ToolContext) -> ToolOutput {
        let query = match rigor_tools::required_str(&args, "query") {
            Ok(q) => q.to_string(),
            Err(e) => return e,
        };
        let limit = args.get("limit").and_then(Value::as_u64).unwrap_or(10).clamp(1, 50) as usize;
        let intel = Arc::clone(&self.0);
        let result =
            tokio::task::spawn_blocking(move || refreshed(&intel).map(|r| render_search(&r, &query, limit))).await;
        match result {
            Ok(Ok(text)) => ToolOutput::ok(cut(text, ctx)),
            Ok(Err(e)) => e,
            Err(e) => ToolOutput::error(format!("search_entity failed: {e}")),
        }
    }
}

/// `retrieve_entity`.
pub struct RetrieveEntityTool(Arc<CodeIntel>);

#[async_trait]
impl Tool for RetrieveEntityTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "retrieve_entity".into(),
            description: "Show the code of entities by id (`path:Class.method`, `Class.method`, or a file path), \
                          with line numbers."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "entity_ids": {"type": "array", "items": {"type": "string"}, "description": "Entity ids."}
                },
                "required": ["entity_ids"]
            }),
        }
    }

    async fn run(&self, args: Value, ctx: &ToolContext) -> ToolOutput {
        let ids = string_list(&args, &["entity_ids", "entity_id", "ids"]);
        if ids.is_empty() {
            return ToolOutput::error("missing `entity_ids`: a list of entity ids such as `pkg/mod.py:Class.method`");
        }
        let intel = Arc::clone(&self.0);
        let root = ctx.workspace.clone();
        let result = tokio::task::spawn_blocking(move || {
            let r = refreshed(&intel)?;
            let mut out = String::new();
            let mut failed = 0;
            for id in &ids {
                match render_entity(&r, &root, id, 300) {
                    Ok(text) => out.push_str(&text),
                    Err(e) => {
                        failed += 1;
                        out.push_str(&e);
                        out.push('\n');
                    }
                }
                out.push('\n');
            }
            Ok::<_, ToolOutput>((out, failed == ids.len()))
        })
        .await;
        match result {
            Ok(Ok((text, all_failed))) => {
                let text = cut(text, ctx);
                if all_failed { ToolOutput::error(text) } else { ToolOutput::ok(text) }
            }
            Ok(Err(e)) => e,
            Err(e) => ToolOutput::error(format!("retrieve_entity failed: {e}")),
        }
    }
}

/// `traverse_graph`.
pub struct TraverseGraphTool(Arc<CodeIntel>);

#[async_trait]
impl Tool for TraverseGraphTool {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "traverse_graph".into(),
            description: "Walk the code graph from entities: callers/callees (invokes), imports, inherits, \
                          contains. `direction`: downstream (what it uses), upstream (what uses it) or both."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "start_entities": {"type": "array", "items": {"type": "string"}, "description": "Entity ids to start from."},
                    "direction": {"type": "string", "enum": ["downstream", "upstream", "both"], "description": "Default downstream."},
                    "depth": {"type": "integer", "description": "Hops (default 2, at most 5)."},
                    "edge_types": {"type": "array", "items": {"type": "string", "enum": ["contains", "imports", "invokes", "inherits"]}, "description": "Default: all."},
                    "entity_types": {"type": "array", "items": {"type": "string", "enum": ["directory", "file", "class", "function", "method"]}, "description": "Only show these kinds (default: all)."}
                },
                "required": ["start_entities"]
            }),
        }
    }

    async fn run(&self, args: Value, ctx: &ToolContext) -> ToolOutput {
        let starts = string_list(&args, &["start_entities", "start_entity", "entity_ids"]);
        if starts.is_empty() {
            return ToolOutput::error("missing `start_entities`: a list of entity ids to start from");
        }
        let dir_text = args.get("direction").and_then(Value::as_str).unwrap_or("downstream");
        let Some(direction) = Direction::parse(dir_text) else {
            return ToolOutput::error(format!("unknown direction `{dir_text}`: use downstream, upstream or both"));
        };
        let depth = args.get("depth").and_then(Value::as_u64).unwrap_or(2).clamp(1, 5) as usize;
        let edge_names = string_list(&args, &["edge_types"]);
        let mut edges = Vec::new();
        for e in &edge_names {
            match EdgeKind::parse(e) {
                Some(k) => edges.push(k),
                None => {
                    return ToolOutput::error(format!(
                        "unknown edge type `{e}`: use contains, imports, invokes, inherits"
                    ));
                }
            }
        }
        if edges.is_empty() {
            edges = EdgeKind::ALL.to_vec();
        }
        let mut kinds = Vec::new();
        for k in string_list(&args, &["entity_types"]) {
            match NodeKind::parse(&k) {
                Some(k) => kinds.push(k),
                None => return ToolOutput::error(format!("unknown entity type `{k}`")),
            }
        }
        let intel = Arc::clone(&self.0);
        let result = tokio::task::spawn_blocking(move || {
            let r = refreshed(&intel)?;
            let mut out = String::new();
            let mut ok = false;
            for s in &starts {
                match render_traversal(&r, s, direction, depth, &edges, &kinds) {
                    Ok(t) => {
                        ok = true;
                        out.push_str(&t);
                    }
                    Err(e) => {
                        out.push_str(&e);
                        out.push('\n');
                    }
                }
            }
            Ok::<_, ToolOutput>((out, ok))
        })
        .await;
        match result {
            Ok(Ok((text, ok))) => {
                let text = cut(text, ctx);
                if ok { ToolOutput::ok(text) } else { ToolOutput::error(text) }
            }
            Ok(Err(e)) => e,
            Err(e) => ToolOutput::error(format!("traverse_graph failed: {e}")),
        }
    }
}

/// The editor's syntax check: an edit may not turn a file that parses into one that does not.
#[derive(Debug, Default, Clone, Copy)]
pub struct SyntaxCheck;

impl EditCheck for SyntaxCheck {
    fn check(&self, path: &Path, before: Option<&str>, after: &str) -> Result<(), String> {
        let Some(lang) = Lang::from_path(path) else { return Ok(()) };
        if before.is_some_and(|b| !syntax_errors(lang, b).is_empty()) {
            return Ok(()); // it did not parse before: not this edit's fault
        }
        let errors = syntax_errors(lang, after);
        if errors.is_empty() {
            return Ok(());
        }
        let list: Vec<String> =
            errors.iter().map(|e| format!("line {}, column {}: {}", e.line, e.column, e.message)).collect();
        Err(format!(
            "it would introduce {} syntax error(s) ({}): {}. Fix the edit (balanced brackets, indentation, \
             complete statements) and try again.",
            lang.name(),
            if errors.len() >= 5 { "first 5".to_string() } else { errors.len().to_string() },
            list.join("; ")
        ))
    }
}

/// Token budget of the repository map in a full prompt (`rigor-core` scales the budget of a
/// run to its model's context window, at most this).
pub const REPO_MAP_TOKENS: usize = 1500;

/// The code graph as a source of a run's tools: `search_entity`, `retrieve_entity` and
/// `traverse_graph` over an in-memory index of the workspace (nothing is written into it), the
/// repository map (files most relevant to the issue first) as a prompt section, and
/// [`SyntaxCheck`] for the editor.
pub struct GraphSource;

impl ToolSource for GraphSource {
    fn name(&self) -> &str {
        "code-graph"
    }

    fn contribute(&self, workspace: &Path, issue: &str, shape: &PromptShape) -> Contribution {
        let intel = CodeIntel::in_memory(workspace);
        let compact = shape.profile == PromptProfile::Compact;
        // A compact prompt also shows the code the issue names, in a budget of its own; the loop
        // runs the issue's examples for it and asks the model for the drafts first.
        let (map, code, examples, drafts) = match intel.refresh() {
            Ok(r) if r.graph().files().is_empty() => Default::default(),
            Ok(r) if compact => (
                crate::repomap::relevant_map(&r, issue, shape.section_tokens),
                named_code(&r, workspace, issue, shape.section_tokens),
                issue_examples(&r, workspace, issue),
                crate::drafts::drafts(&r, workspace, issue),
            ),
            Ok(r) => (crate::repomap::repo_map(&r, Some(issue), shape.section_tokens), String::new(), None, Vec::new()),
            Err(err) => {
                tracing::warn!("no repository map: {err}");
                Default::default()
            }
        };
        let prompt_section = if map.trim().is_empty() {
            String::new()
        } else if compact {
            let mut section = format!("Files relevant to the issue (signatures and their line):\n{}", map.trim_end());
            if !code.is_empty() {
                section.push_str(&format!("\n\n{}\n{}", rigor_tools::SHOWN_CODE_HEADING, code.trim_end()));
            }
            section
        } else {
            format!(
                "Repository map (files most relevant to the issue first; entity signatures with their first line; \
                 explore with search_entity, retrieve_entity and traverse_graph):\n{}",
                map.trim_end()
            )
        };
        let (search_entity, retrieve_entity, traverse_graph) = intel.tools();
        // A compact prompt offers a small model the shell, not three more tools to choose from.
        let tools: Vec<Box<dyn Tool>> = if compact {
            Vec::new()
        } else {
            vec![Box::new(search_entity), Box::new(retrieve_entity), Box::new(traverse_graph)]
        };
        Contribution {
            tools,
            prompt_section,
            edit_check: Some(Arc::new(SyntaxCheck)),
            finish_check: None,
            examples,
            drafts,
        }
    }
}
