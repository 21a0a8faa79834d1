//! The repository map: a compact outline of files and entity signatures, sized to a token budget.
//!
//! Files are ordered by relevance to an issue when one is given (the localizer's file scores),
//! then by importance (how often the file's entities are called, imported or inherited from),
//! and each file lists its classes, functions and methods by signature, indented by nesting.
//! Files are added whole until the budget (estimated at four characters per token) is spent; the
//! remaining files are summarised by count. This module does not read files.

use std::collections::HashMap;
use std::fmt::Write as _;

use crate::graph::{CodeGraph, EdgeKind};
use crate::localize::{Retriever, is_test_path};

/// Characters per token, for budgeting.
const CHARS_PER_TOKEN: usize = 4;
/// Entities listed per file at most.
const MAX_ENTITIES_PER_FILE: usize = 40;

/// A map of the repository in at most `budget_tokens` (estimated), most relevant files first.
pub fn repo_map(retriever: &Retriever, issue: Option<&str>, budget_tokens: usize) -> String {
    outline(retriever, issue, budget_tokens, 0.0)
}

/// Share of the best file's relevance a file needs to be in a [`relevant_map`].
const RELEVANT_SHARE: f32 = 0.25;

/// A map of only the files relevant to `issue` (relevance at least a quarter of the best file's;
/// with no relevant file, as [`repo_map`]), in at most `budget_tokens`: for a small model's
/// prompt, where an unrelated module's outline costs more than it helps.
pub fn relevant_map(retriever: &Retriever, issue: &str, budget_tokens: usize) -> String {
    outline(retriever, Some(issue), budget_tokens, RELEVANT_SHARE)
}

fn outline(retriever: &Retriever, issue: Option<&str>, budget_tokens: usize, min_share: f32) -> String {
    let g = retriever.graph();
    let budget = budget_tokens.saturating_mul(CHARS_PER_TOKEN);
    let importance = importance(g);
    let relevance: HashMap<u32, f32> = match issue {
        Some(text) if !text.trim().is_empty() => retriever.scores(text).files,
        _ => HashMap::new(),
    };
    let mut order: Vec<u32> = (0..g.files().len() as u32).collect();
    let key = |fi: &u32| {
        let rel = relevance.get(fi).copied().unwrap_or(0.0);
        let imp = importance.get(fi).copied().unwrap_or(0.0);
        let test = if is_test_path(&g.files()[*fi as usize].path) { 0.5 } else { 1.0 };
        (rel * 10.0 + imp) * test
    };
    order.sort_by(|a, b| key(b).total_cmp(&key(a)).then(a.cmp(b)));
    let best = relevance.values().copied().fold(0.0_f32, f32::max);
    if min_share > 0.0 && best > 0.0 {
        order.retain(|fi| relevance.get(fi).copied().unwrap_or(0.0) >= best * min_share);
    }
    let mut out = String::new();
    let mut shown = 0;
    for &fi in &order {
        let block = file_block(g, fi);
        if out.len() + block.len() > budget {
            if out.len() + 80 > budget {
                break;
            }
            continue;
        }
        out.push_str(&block);
        shown += 1;
    }
    let rest = g.files().len() - shown;
    if rest > 0 {
        let _ = writeln!(out, "... and {rest} more file(s) not shown");
    }
    out
}

/// One file's outline.
fn file_block(g: &CodeGraph, fi: u32) -> String {
    let f = &g.files()[fi as usize];
    let mut s = format!("{}\n", f.path);
    let mut listed = 0;
    for (i, e) in f.facts.entities.iter().enumerate() {
        if listed >= MAX_ENTITIES_PER_FILE {
            let _ = writeln!(s, "  ... {} more", f.facts.entities.len() - i);
            break;
        }
        let mut depth = 1;
        let mut p = e.parent;
        while let Some(pi) = p {
            depth += 1;
            p = f.facts.entities[pi as usize].parent;
        }
        if depth > 3 {
            continue;
        }
        let sig = if e.signature.is_empty() { e.name.as_str() } else { e.signature.as_str() };
        let _ = writeln!(s, "{}{sig}  [{}]", "  ".repeat(depth), e.start_line);
        listed += 1;
    }
    s
}

/// Per file: how much the rest of the repository refers to it (incoming non-structural edges).
fn importance(g: &CodeGraph) -> HashMap<u32, f32> {
    let mut m: HashMap<u32, f32> = HashMap::new();
    for (fi, _) in g.files().iter().enumerate() {
        let fi = fi as u32;
        let mut count = 0usize;
        let file_node = g.file_node(fi);
        for n in std::iter::once(file_node).chain(g.entities_of(fi)) {
            count += g
                .incoming(n)
                .iter()
                .filter(|(src, k)| *k != EdgeKind::Contains && g.node(*src).file != Some(fi))
                .count();
        }
        m.insert(fi, (1.0 + count as f32).ln());
    }
    m
}
