//! Helpers: write a small repository into a temporary directory and index it.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use rigor_graph::graph::ids;
use rigor_graph::{CodeGraph, EdgeKind, Index};

pub fn write(dir: &std::path::Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

pub fn graph_of(files: &[(&str, &str)]) -> (tempfile::TempDir, Arc<CodeGraph>) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), files);
    let mut index = Index::in_memory(dir.path());
    index.update().unwrap();
    let g = index.graph();
    (dir, g)
}

/// Entity node ids (classes, functions, methods), sorted.
pub fn entities(g: &CodeGraph) -> Vec<String> {
    let mut v: Vec<String> =
        g.nodes().iter().filter(|n| n.entity.is_some()).map(|n| format!("{} {}", n.kind.as_str(), n.id)).collect();
    v.sort();
    v
}

/// Edges of a kind as "from -> to", sorted.
pub fn edges(g: &CodeGraph, kind: EdgeKind) -> Vec<String> {
    let mut v: Vec<String> = g
        .edges()
        .into_iter()
        .filter(|(_, _, k)| *k == kind)
        .map(|(a, b, _)| format!("{} -> {}", g.node(a).id, g.node(b).id))
        .collect();
    v.sort();
    v
}

/// Unresolved references of a kind as "from: name", sorted.
pub fn unresolved(g: &CodeGraph, kind: EdgeKind) -> Vec<String> {
    let mut v: Vec<String> = g
        .unresolved()
        .iter()
        .filter(|u| u.kind == kind)
        .map(|u| format!("{}: {}", g.node(u.from).id, u.name))
        .collect();
    v.sort();
    v
}

pub fn dump(g: &CodeGraph) -> String {
    let mut s = String::new();
    for e in entities(g) {
        s.push_str(&format!("{e}\n"));
    }
    for k in [EdgeKind::Imports, EdgeKind::Invokes, EdgeKind::Inherits] {
        for e in edges(g, k) {
            s.push_str(&format!("{} {e}\n", k.as_str()));
        }
        for u in unresolved(g, k) {
            s.push_str(&format!("unresolved {} {u}\n", k.as_str()));
        }
    }
    let _ = ids(g, []);
    s
}

/// Sets the mtime of `path` (a file or a directory) to `secs_ago` seconds ago.
pub fn age(path: &std::path::Path, secs_ago: u64) {
    let when = std::time::SystemTime::now() - std::time::Duration::from_secs(secs_ago);
    std::fs::File::open(path).unwrap().set_modified(when).unwrap();
}

/// Ages every file and directory of `root` (but `.rigor`) by an hour, as in a checkout that was
/// not touched for a while.
pub fn age_tree(root: &std::path::Path) {
    for entry in ignore::WalkBuilder::new(root).hidden(false).build().flatten() {
        if !entry.path().components().any(|c| c.as_os_str() == ".rigor") {
            age(entry.path(), 3600);
        }
    }
}
