//! Localization: rank the files, modules and functions an issue text is about.
//!
//! Three signals, fused: (1) BM25 over entities (qualified name split into terms, signature,
//! docstring, body terms) and over files (path and content terms); (2) explicit mentions in the
//! issue: file paths, traceback frames (`File "x.py", line N, in f`, `src/x.rs:12:5`,
//! `at f (x.js:1:2)`), dotted names (`QuerySet.union`), identifiers in backticks, CamelCase and
//! snake_case words that name entities; (3) graph expansion from the best seeds along invokes
//! (both ways), contains and inherits edges, with decay per hop. Test files are down-weighted
//! (less so when named in the issue): fixes rarely live in tests. No model and no embeddings: this stage must stand on its own.
//!
//! A [`Retriever`] is built once per graph (the BM25 postings) and answers queries in
//! milliseconds. It does not read files and knows nothing of the agent.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use regex::Regex;
use serde::Serialize;

use crate::graph::{CodeGraph, EdgeKind, NodeKind};
use crate::tokenize::for_each_term;

/// The granularity of a ranking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Files.
    File,
    /// Top-level entities (a class with its methods, or a free function).
    Module,
    /// Functions and methods.
    Function,
}

impl Level {
    /// Parses `file`, `module`, `function`.
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "file" => Level::File,
            "module" | "class" => Level::Module,
            "function" | "method" => Level::Function,
            _ => return None,
        })
    }
}

/// One ranked location.
#[derive(Debug, Clone, Serialize)]
pub struct Location {
    /// Node id: `path`, or `path:Class.method`.
    pub id: String,
    /// Node kind.
    pub kind: NodeKind,
    /// File path.
    pub path: String,
    /// First line (entities; 1 for files).
    pub start_line: u32,
    /// Last line.
    pub end_line: u32,
    /// Fused score (higher is better; comparable within one query only).
    pub score: f32,
    /// Signature of an entity (empty for files).
    pub signature: String,
}

/// A BM25 index over a set of documents.
#[derive(Debug, Default)]
struct Bm25 {
    postings: HashMap<String, Vec<(u32, u32)>>,
    doc_len: Vec<u32>,
    avg_len: f32,
}

const K1: f32 = 1.2;
const B: f32 = 0.75;

impl Bm25 {
    fn add(&mut self, doc: u32, terms: &HashMap<String, u32>) {
        let mut len = 0;
        for (t, &c) in terms {
            len += c;
            match self.postings.get_mut(t.as_str()) {
                Some(p) => p.push((doc, c)),
                None => {
                    self.postings.insert(t.clone(), vec![(doc, c)]);
                }
            }
        }
        if self.doc_len.len() <= doc as usize {
            self.doc_len.resize(doc as usize + 1, 0);
        }
        self.doc_len[doc as usize] = len;
    }

    fn finish(&mut self) {
        let n = self.doc_len.iter().filter(|&&l| l > 0).count().max(1);
        self.avg_len = self.doc_len.iter().map(|&l| l as f32).sum::<f32>() / n as f32;
    }

    /// Scores of documents for weighted query terms.
    fn score(&self, query: &[(String, f32)]) -> HashMap<u32, f32> {
        let n = self.doc_len.len().max(1) as f32;
        let mut acc: HashMap<u32, f32> = HashMap::new();
        for (term, w) in query {
            let Some(list) = self.postings.get(term) else { continue };
            let df = list.len() as f32;
            let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
            for &(doc, tf) in list {
                let tf = tf as f32;
                let len = self.doc_len[doc as usize] as f32;
                let s = idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / self.avg_len.max(1.0)));
                *acc.entry(doc).or_default() += w * s;
            }
        }
        acc
    }
}

/// Lexical and structural retrieval over one code graph.
#[derive(Debug)]
pub struct Retriever {
    graph: Arc<CodeGraph>,
    entities: Bm25,
    files: Bm25,
    /// Simple entity name → entity nodes.
    names: HashMap<String, Vec<u32>>,
    /// Lowercased simple name → entity nodes.
    names_lower: HashMap<String, Vec<u32>>,
}

/// Whether a path looks like a test file or lives in a test directory.
pub fn is_test_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    let file = lower.rsplit('/').next().unwrap_or(&lower);
    lower.split('/').any(|p| matches!(p, "test" | "tests" | "testing" | "__tests__" | "spec" | "testdata"))
        || file.starts_with("test_")
        || file.contains("_test.")
        || file.contains(".test.")
        || file.contains(".spec.")
        || file.starts_with("tests.")
        || file.ends_with("test.java")
        || file.ends_with("tests.java")
}

impl Retriever {
    /// Builds the lexical indexes of `graph`.
    pub fn new(graph: Arc<CodeGraph>) -> Retriever {
        let mut entities = Bm25::default();
        let mut files = Bm25::default();
        let mut names: HashMap<String, Vec<u32>> = HashMap::new();
        let mut names_lower: HashMap<String, Vec<u32>> = HashMap::new();
        let mut counts: HashMap<String, u32> = HashMap::new();
        for (fi, f) in graph.files().iter().enumerate() {
            counts.clear();
            for (t, c) in &f.facts.terms {
                counts.insert(t.clone(), *c);
            }
            for_each_term(&f.path, |t| *counts.entry(t.to_string()).or_default() += 3);
            files.add(fi as u32, &counts);
            for e in graph.entities_of(fi as u32) {
                let Some(ent) = graph.entity(e) else { continue };
                counts.clear();
                let mut add = |t: &str, w: u32| *counts.entry(t.to_string()).or_default() += w;
                for_each_term(&ent.name, |t| add(t, 3));
                for_each_term(&ent.signature, |t| add(t, 1));
                for_each_term(&ent.doc, |t| add(t, 1));
                for &t in &ent.body_terms {
                    if let Some((term, _)) = f.facts.terms.get(t as usize) {
                        add(term, 1);
                    }
                }
                let stem = f.path.rsplit('/').next().unwrap_or(&f.path);
                for_each_term(stem.split('.').next().unwrap_or(stem), |t| add(t, 1));
                entities.add(e, &counts);
                let simple = ent.name.rsplit('.').next().unwrap_or(&ent.name);
                let simple = simple.split('#').next().unwrap_or(simple);
                names.entry(simple.to_string()).or_default().push(e);
                names_lower.entry(simple.to_lowercase()).or_default().push(e);
            }
        }
        entities.finish();
        files.finish();
        Retriever { graph, entities, files, names, names_lower }
    }

    /// The graph this retriever ranks.
    pub fn graph(&self) -> &Arc<CodeGraph> {
        &self.graph
    }

    /// Entities whose simple name is `name` (exact, then case-insensitive).
    pub fn by_name(&self, name: &str) -> Vec<u32> {
        match self.names.get(name) {
            Some(v) => v.clone(),
            None => self.names_lower.get(&name.to_lowercase()).cloned().unwrap_or_default(),
        }
    }

    /// Entities ranked by BM25 for free text (the `search_entity` tool's fallback).
    pub fn search_entities(&self, text: &str, limit: usize) -> Vec<(u32, f32)> {
        let q = query_terms(text);
        let mut scored: Vec<(u32, f32)> = self.entities.score(&q).into_iter().collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(limit);
        scored
    }

    /// Ranks locations for an issue text at `level`; at most `top` results.
    pub fn localize(&self, issue: &str, level: Level, top: usize) -> Vec<Location> {
        let scores = self.scores(issue);
        let g = &self.graph;
        let mut ranked: Vec<(u32, f32)> = match level {
            Level::File => scores.files.iter().map(|(&f, &s)| (g.file_node(f), s)).collect(),
            Level::Module => {
                let mut m: HashMap<u32, f32> = HashMap::new();
                for (&e, &s) in &scores.entities {
                    let t = g.top_level(e);
                    let v = m.entry(t).or_default();
                    *v = v.max(s);
                }
                m.into_iter().collect()
            }
            Level::Function => scores
                .entities
                .iter()
                .filter(|&(&e, _)| matches!(g.node(e).kind, NodeKind::Function | NodeKind::Method))
                .map(|(&e, &s)| (e, s))
                .collect(),
        };
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(g.node(a.0).id.cmp(&g.node(b.0).id)));
        ranked.truncate(top);
        ranked.into_iter().map(|(n, s)| self.location(n, s)).collect()
    }

    /// A location record for a node.
    pub fn location(&self, n: u32, score: f32) -> Location {
        let g = &self.graph;
        let node = g.node(n);
        let entity = g.entity(n);
        let lines = node.file.map(|f| g.files()[f as usize].facts.lines).unwrap_or(0);
        Location {
            id: node.id.clone(),
            kind: node.kind,
            path: g.path_of(n).to_string(),
            start_line: entity.map(|e| e.start_line).unwrap_or(1),
            end_line: entity.map(|e| e.end_line).unwrap_or(lines),
            score,
            signature: entity.map(|e| e.signature.clone()).unwrap_or_default(),
        }
    }

    /// Fused scores of files (by file index) and entities (by node) for an issue text.
    pub fn scores(&self, issue: &str) -> Scores {
        let g = &self.graph;
        let q = query_terms(issue);
        let mentions = Mentions::extract(issue);

        // 1. Lexical.
        let ent_raw = self.entities.score(&q);
        let file_raw = self.files.score(&q);
        let ent_max = ent_raw.values().copied().fold(0.0f32, f32::max).max(1e-6);
        let file_max = file_raw.values().copied().fold(0.0f32, f32::max).max(1e-6);
        let mut ent: HashMap<u32, f32> = ent_raw.into_iter().map(|(e, s)| (e, s / ent_max)).collect();
        let mut files: HashMap<u32, f32> = file_raw.into_iter().map(|(f, s)| (f, 0.8 * s / file_max)).collect();

        // 2. Mentions.
        let mut named_files: HashSet<u32> = HashSet::new();
        for (mi, (path, line, func)) in mentions.locations.iter().enumerate() {
            let later = 1.0 + 0.1 * mi as f32 / mentions.locations.len().max(1) as f32;
            for fi in self.files_matching(path) {
                named_files.insert(fi);
                *files.entry(fi).or_default() += 1.5 * later;
                if let Some(line) = line
                    && let Some(e) = g.entity_at(fi, *line)
                {
                    *ent.entry(e).or_default() += 2.0 * later;
                }
                if let Some(func) = func {
                    for e in g.entities_of(fi) {
                        if g.entity(e).is_some_and(|x| x.name.rsplit('.').next() == Some(func.as_str())) {
                            *ent.entry(e).or_default() += 1.5 * later;
                        }
                    }
                }
            }
        }
        for dotted in &mentions.dotted {
            // `QuerySet.union`: entities whose qualified name ends with it; `django.db.models.query`:
            // a module path.
            let parts: Vec<&str> = dotted.split('.').collect();
            let Some(last) = parts.last() else { continue };
            let suffix = format!(".{dotted}");
            for e in self.by_name(last) {
                let name = g.entity(e).map(|x| x.name.as_str()).unwrap_or_default();
                let full = format!(".{}", g.node(e).id.replace([':', '/'], "."));
                if name == *dotted || full.ends_with(&suffix) {
                    *ent.entry(e).or_default() += 1.5;
                } else if parts.len() >= 2
                    && let Some(owner) = parts.get(parts.len() - 2)
                    && name.split('.').any(|p| p == *owner)
                {
                    *ent.entry(e).or_default() += 0.8;
                }
            }
            let as_path = parts.join("/");
            for ext in [".py", "/__init__.py", ".rs", ".go", ".java", ".ts", ".js"] {
                for fi in self.files_matching(&format!("{as_path}{ext}")) {
                    named_files.insert(fi);
                    *files.entry(fi).or_default() += 1.0;
                }
            }
        }
        for ident in &mentions.identifiers {
            let cands = self.by_name(ident);
            if cands.is_empty() || cands.len() > 50 {
                continue;
            }
            let w = 0.8 / (cands.len() as f32).sqrt();
            for e in cands {
                *ent.entry(e).or_default() += w;
            }
        }

        // 3. Graph expansion from the best seeds.
        let mut seeds: Vec<(u32, f32)> = ent.iter().map(|(&e, &s)| (e, s)).collect();
        seeds.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        seeds.truncate(20);
        let mut expansion: HashMap<u32, f32> = HashMap::new();
        for &(seed, s) in &seeds {
            let mut frontier = vec![seed];
            let mut seen: HashSet<u32> = HashSet::from([seed]);
            let mut decay = 0.5;
            for _hop in 0..2 {
                let mut next = Vec::new();
                for &n in &frontier {
                    let neighbours = g.outgoing(n).iter().chain(g.incoming(n).iter());
                    for &(m, kind) in neighbours {
                        if kind == EdgeKind::Imports || !is_entity(g, m) || !seen.insert(m) {
                            continue;
                        }
                        let v = expansion.entry(m).or_default();
                        *v = v.max(decay * s * 0.5);
                        next.push(m);
                    }
                }
                frontier = next;
                decay *= 0.5;
                if frontier.len() > 200 {
                    break;
                }
            }
        }
        for (e, x) in expansion {
            *ent.entry(e).or_default() += x;
        }

        // 4. Fuse into files, down-weight tests.
        let mut best_in_file: HashMap<u32, f32> = HashMap::new();
        for (&e, &s) in &ent {
            if let Some(f) = g.node(e).file {
                let v = best_in_file.entry(f).or_default();
                *v = v.max(s);
            }
        }
        for (f, s) in best_in_file {
            *files.entry(f).or_default() += 0.7 * s;
        }
        let penalty = |fi: u32| match (is_test_path(&g.files()[fi as usize].path), named_files.contains(&fi)) {
            (false, _) => 1.0,
            (true, false) => 0.4,
            (true, true) => 0.6,
        };
        for (fi, s) in files.iter_mut() {
            *s *= penalty(*fi);
        }
        for (e, s) in ent.iter_mut() {
            if let Some(f) = g.node(*e).file {
                *s *= penalty(f);
                // An entity is also as good as a share of its file.
                *s += 0.15 * files.get(&f).copied().unwrap_or(0.0);
            }
        }
        Scores { files, entities: ent }
    }

    /// Files whose path ends with `mention` at a component boundary.
    fn files_matching(&self, mention: &str) -> Vec<u32> {
        let mention = mention.trim_start_matches("./").trim_start_matches('/');
        if mention.is_empty() {
            return Vec::new();
        }
        let suffix = format!("/{mention}");
        let mut out: Vec<u32> = Vec::new();
        for (fi, f) in self.graph.files().iter().enumerate() {
            if f.path == mention || f.path.ends_with(&suffix) {
                out.push(fi as u32);
            }
        }
        if out.is_empty() {
            // An absolute path from a traceback (`/usr/lib/.../site-packages/pkg/x.py`): try shorter
            // suffixes, down to two components.
            let parts: Vec<&str> = mention.split('/').collect();
            for start in 1..parts.len().saturating_sub(1) {
                let tail = parts[start..].join("/");
                let suffix = format!("/{tail}");
                for (fi, f) in self.graph.files().iter().enumerate() {
                    if f.path == tail || f.path.ends_with(&suffix) {
                        out.push(fi as u32);
                    }
                }
                if !out.is_empty() {
                    break;
                }
            }
        }
        out
    }
}

fn is_entity(g: &CodeGraph, n: u32) -> bool {
    matches!(g.node(n).kind, NodeKind::Class | NodeKind::Function | NodeKind::Method)
}

/// Fused scores for one query.
#[derive(Debug, Default)]
pub struct Scores {
    /// By file index.
    pub files: HashMap<u32, f32>,
    /// By entity node.
    pub entities: HashMap<u32, f32>,
}

/// Query terms with weights (log-scaled repetitions).
fn query_terms(text: &str) -> Vec<(String, f32)> {
    let mut counts: HashMap<String, u32> = HashMap::new();
    for_each_term(text, |t| *counts.entry(t.to_string()).or_default() += 1);
    let mut v: Vec<(String, f32)> = counts.into_iter().map(|(t, c)| (t, 1.0 + (c as f32).ln())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Explicit mentions of code in an issue text.
#[derive(Debug, Default, PartialEq)]
pub struct Mentions {
    /// (path, line, function) from paths and traceback frames.
    pub locations: Vec<(String, Option<u32>, Option<String>)>,
    /// Dotted names: `QuerySet.union`, `django.db.models.query`.
    pub dotted: Vec<String>,
    /// Identifiers from backticks, CamelCase and snake_case words, calls `f()`.
    pub identifiers: Vec<String>,
}

fn regexes() -> &'static [Regex; 6] {
    static RE: OnceLock<[Regex; 6]> = OnceLock::new();
    RE.get_or_init(|| {
        let compile = |s: &str| Regex::new(s).unwrap_or_else(|_| Regex::new("$^").unwrap_or_else(|_| unreachable!()));
        [
            // Python traceback frame.
            compile(r#"File "([^"]+)", line (\d+)(?:, in ([A-Za-z_][\w]*))?"#),
            // path:line[:col] and JS stack frames `at f (path:1:2)`.
            compile(r"(?:at ([\w$.<>]+) \()?((?:[\w.\-]+/)*[\w.\-]+\.(?:py|rs|js|jsx|mjs|cjs|ts|tsx|go|java|c|h|cc|cpp|cxx|hpp|hh)):(\d+)"),
            // A file path.
            compile(r"(?:^|[\s`'(\[])((?:[\w.\-]+/)*[\w\-]+\.(?:py|rs|js|jsx|mjs|cjs|ts|tsx|go|java|c|h|cc|cpp|cxx|hpp|hh))\b"),
            // Dotted or `::` names.
            compile(r"\b([A-Za-z_]\w*(?:(?:\.|::)[A-Za-z_]\w*)+)\b"),
            // Backticked code.
            compile(r"`([^`\n]{1,120})`"),
            // CamelCase, snake_case words and calls.
            compile(r"\b([A-Z][a-z0-9]+[A-Z]\w*|[a-z][a-z0-9]*_[a-z0-9_]+|[A-Za-z_]\w*(?:\(\)))"),
        ]
    })
}

/// The spans of code in backticks in `text` (one line, at most 120 characters each).
pub(crate) fn code_spans(text: &str) -> impl Iterator<Item = &str> {
    let [_, _, _, _, backtick, _] = regexes();
    backtick.captures_iter(text).filter_map(|c| c.get(1)).map(|m| m.as_str())
}

impl Mentions {
    /// Finds the mentions in `text`.
    pub fn extract(text: &str) -> Mentions {
        let [frame, path_line, path, dotted, backtick, ident] = regexes();
        let mut m = Mentions::default();
        let mut seen_paths: HashSet<String> = HashSet::new();
        for c in frame.captures_iter(text) {
            let p = c.get(1).map(|x| x.as_str().to_string()).unwrap_or_default();
            let line = c.get(2).and_then(|x| x.as_str().parse().ok());
            let func = c.get(3).map(|x| x.as_str().to_string()).filter(|f| f != "<module>");
            seen_paths.insert(p.clone());
            m.locations.push((p, line, func));
        }
        for c in path_line.captures_iter(text) {
            let p = c.get(2).map(|x| x.as_str().to_string()).unwrap_or_default();
            if seen_paths.contains(&p) {
                continue;
            }
            let func = c.get(1).map(|x| x.as_str().rsplit('.').next().unwrap_or_default().to_string());
            let line = c.get(3).and_then(|x| x.as_str().parse().ok());
            seen_paths.insert(p.clone());
            m.locations.push((p, line, func));
        }
        for c in path.captures_iter(text) {
            let p = c.get(1).map(|x| x.as_str().to_string()).unwrap_or_default();
            if seen_paths.insert(p.clone()) {
                m.locations.push((p, None, None));
            }
        }
        let mut seen: HashSet<String> = HashSet::new();
        let file_like = |s: &str| {
            s.rsplit('.').next().is_some_and(|ext| {
                matches!(
                    ext,
                    "py" | "rs" | "js" | "ts" | "tsx" | "go" | "java" | "c" | "h" | "cpp" | "hpp" | "txt" | "md"
                )
            })
        };
        for c in dotted.captures_iter(text) {
            let d = c[1].replace("::", ".");
            if !file_like(&d) && d.len() <= 120 && seen.insert(d.clone()) {
                m.dotted.push(d);
            }
        }
        let mut idents: Vec<String> = Vec::new();
        for c in backtick.captures_iter(text) {
            for word in c[1].split(|ch: char| !(ch.is_alphanumeric() || ch == '_')) {
                if word.len() >= 3 && !word.chars().all(|ch| ch.is_ascii_digit()) {
                    idents.push(word.to_string());
                }
            }
        }
        for c in ident.captures_iter(text) {
            idents.push(c[1].trim_end_matches("()").to_string());
        }
        let mut seen_ident: HashSet<String> = HashSet::new();
        for i in idents {
            if seen_ident.insert(i.clone()) {
                m.identifiers.push(i);
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_cover_frames_paths_dotted_names_and_backticks() {
        let text = "Traceback (most recent call last):\n  File \"/venv/lib/pkg/db/query.py\", line 42, in union\n\
                    The `QuerySet.union()` call in pkg/db/query.py breaks; see parse_config and HttpRequest. \
                    panicked at src/lib.rs:12:5";
        let m = Mentions::extract(text);
        assert_eq!(m.locations[0], ("/venv/lib/pkg/db/query.py".into(), Some(42), Some("union".into())));
        assert!(m.locations.iter().any(|l| l.0 == "src/lib.rs" && l.1 == Some(12)));
        assert!(m.locations.iter().any(|l| l.0 == "pkg/db/query.py" && l.1.is_none()));
        assert!(m.dotted.contains(&"QuerySet.union".to_string()));
        assert!(m.identifiers.contains(&"QuerySet".to_string()));
        assert!(m.identifiers.contains(&"parse_config".to_string()));
        assert!(m.identifiers.contains(&"HttpRequest".to_string()));
    }

    #[test]
    fn test_paths_are_recognised() {
        assert!(is_test_path("tests/test_x.py"));
        assert!(is_test_path("src/foo.test.ts"));
        assert!(is_test_path("pkg/x_test.go"));
        assert!(!is_test_path("src/testing_utils_impl.rs") || is_test_path("src/testing/x.rs"));
        assert!(!is_test_path("django/db/models/query.py"));
    }
}
