//! The code graph: directories, files, classes, functions and methods, and the edges between them.
//!
//! [`CodeGraph::build`] takes the per-file facts of a repository and links them: `contains`
//! (directory → directory/file, file → entity, class → method), `imports` (file → file, entity or
//! package directory), `invokes` (function, method, class or file → function, method or class) and
//! `inherits` (class → base class, implemented trait or interface, embedded type). Names are
//! resolved per language: imports to the repository's own files and entities (Python dotted and
//! relative modules, Rust `crate::`/`super::`/workspace crates/`mod` files, JS/TS relative
//! specifiers, Go packages under the `go.mod` module path, Java packages, C/C++ include paths),
//! calls through same-file definitions, class members (and their bases), imported names and
//! modules, the same package, and a repository-wide unique name as a last resort. What cannot be
//! resolved is kept in [`CodeGraph::unresolved`], never silently dropped.
//!
//! This module does no I/O and does not parse: it links facts produced by `extract`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rayon::prelude::*;
use serde::Serialize;

use crate::extract::{EntityKind, FileFacts, Reference};
use crate::lang::Lang;

/// The kind of a graph node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// A directory (the repository root is `.`).
    Directory,
    /// A source file.
    File,
    /// A class or its kin (struct, enum, trait, interface, impl, namespace, inline module).
    Class,
    /// A free function.
    Function,
    /// A method.
    Method,
}

impl NodeKind {
    /// The lowercase name (`file`, `class`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Directory => "directory",
            NodeKind::File => "file",
            NodeKind::Class => "class",
            NodeKind::Function => "function",
            NodeKind::Method => "method",
        }
    }

    /// Parses `directory`, `file`, `class`, `function`, `method`.
    pub fn parse(s: &str) -> Option<NodeKind> {
        Some(match s.trim() {
            "directory" | "dir" => NodeKind::Directory,
            "file" => NodeKind::File,
            "class" => NodeKind::Class,
            "function" => NodeKind::Function,
            "method" => NodeKind::Method,
            _ => return None,
        })
    }
}

/// The kind of an edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum EdgeKind {
    /// Structure: directory → file, file → entity, class → method.
    Contains,
    /// File → the file, entity or package it imports.
    Imports,
    /// Caller → callee.
    Invokes,
    /// Class → base class, implemented trait/interface, embedded type.
    Inherits,
}

impl EdgeKind {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Contains => "contains",
            EdgeKind::Imports => "imports",
            EdgeKind::Invokes => "invokes",
            EdgeKind::Inherits => "inherits",
        }
    }

    /// Parses `contains`, `imports`, `invokes`, `inherits`.
    pub fn parse(s: &str) -> Option<EdgeKind> {
        Some(match s.trim() {
            "contains" => EdgeKind::Contains,
            "imports" => EdgeKind::Imports,
            "invokes" | "calls" => EdgeKind::Invokes,
            "inherits" | "implements" => EdgeKind::Inherits,
            _ => return None,
        })
    }

    /// All kinds.
    pub const ALL: [EdgeKind; 4] = [EdgeKind::Contains, EdgeKind::Imports, EdgeKind::Invokes, EdgeKind::Inherits];
}

/// One source file given to the graph builder.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path relative to the repository root, with `/` separators.
    pub path: String,
    /// Its language.
    pub lang: Lang,
    /// What was extracted from it.
    pub facts: Arc<FileFacts>,
}

/// Facts about the repository beyond its source files: package manifests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepoMeta {
    /// Rust crates: (crate name with `-` as `_`, directory of its Cargo.toml).
    pub rust_crates: Vec<(String, String)>,
    /// Go modules: (module path from go.mod, directory of go.mod).
    pub go_modules: Vec<(String, String)>,
}

/// A node of the graph.
#[derive(Debug, Clone)]
pub struct GraphNode {
    /// `dir/sub`, `dir/file.py`, `dir/file.py:Class.method` (the root directory is `.`).
    pub id: String,
    /// Its kind.
    pub kind: NodeKind,
    /// Index of its file in [`CodeGraph::files`] (files and entities).
    pub file: Option<u32>,
    /// Index of its entity in the file's facts (entities only).
    pub entity: Option<u32>,
}

/// A name that could not be resolved to a node of the repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unresolved {
    /// The node it occurs in.
    pub from: u32,
    /// `imports`, `invokes` or `inherits`.
    pub kind: EdgeKind,
    /// The name as written (`os.path.join`, `numpy`, `Base`).
    pub name: String,
    /// 1-based line.
    pub line: u32,
}

/// The code graph of a repository.
#[derive(Debug, Default)]
pub struct CodeGraph {
    files: Vec<SourceFile>,
    nodes: Vec<GraphNode>,
    ids: HashMap<String, u32>,
    out: Vec<Vec<(u32, EdgeKind)>>,
    inc: Vec<Vec<(u32, EdgeKind)>>,
    unresolved: Vec<Unresolved>,
    /// Node of each file, by file index.
    file_nodes: Vec<u32>,
    /// First entity node of each file, by file index (entities are consecutive).
    entity_base: Vec<u32>,
}

impl CodeGraph {
    /// Builds and links the graph of `files` (any order; sorted by path here).
    pub fn build(mut files: Vec<SourceFile>, meta: &RepoMeta) -> CodeGraph {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        files.dedup_by(|a, b| a.path == b.path);
        let mut g = CodeGraph { files, ..CodeGraph::default() };
        g.add_structure();
        let edges_and_unresolved = Linker::new(&g, meta).link();
        for (from, to, kind) in edges_and_unresolved.0 {
            g.add_edge(from, to, kind);
        }
        g.unresolved = edges_and_unresolved.1;
        for list in g.out.iter_mut().chain(g.inc.iter_mut()) {
            list.sort_unstable();
            list.dedup();
        }
        g
    }

    fn add_node(&mut self, id: String, kind: NodeKind, file: Option<u32>, entity: Option<u32>) -> u32 {
        let idx = self.nodes.len() as u32;
        self.ids.insert(id.clone(), idx);
        self.nodes.push(GraphNode { id, kind, file, entity });
        self.out.push(Vec::new());
        self.inc.push(Vec::new());
        idx
    }

    fn add_edge(&mut self, from: u32, to: u32, kind: EdgeKind) {
        if from == to {
            return;
        }
        self.out[from as usize].push((to, kind));
        self.inc[to as usize].push((from, kind));
    }

    fn directory(&mut self, dir: &str) -> u32 {
        if let Some(&i) = self.ids.get(dir) {
            return i;
        }
        let idx = self.add_node(dir.to_string(), NodeKind::Directory, None, None);
        if dir != "." {
            let parent = dir.rsplit_once('/').map(|(p, _)| p).unwrap_or(".");
            let p = self.directory(parent);
            self.add_edge(p, idx, EdgeKind::Contains);
        }
        idx
    }

    fn add_structure(&mut self) {
        self.directory(".");
        for fi in 0..self.files.len() {
            let path = self.files[fi].path.clone();
            let dir = path.rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_else(|| ".".into());
            let d = self.directory(&dir);
            let f = self.add_node(path.clone(), NodeKind::File, Some(fi as u32), None);
            self.add_edge(d, f, EdgeKind::Contains);
            self.file_nodes.push(f);
            self.entity_base.push(self.nodes.len() as u32);
            let facts = Arc::clone(&self.files[fi].facts);
            for (ei, e) in facts.entities.iter().enumerate() {
                let kind = match e.kind {
                    EntityKind::Class => NodeKind::Class,
                    EntityKind::Function => NodeKind::Function,
                    EntityKind::Method => NodeKind::Method,
                };
                let n = self.add_node(format!("{path}:{}", e.name), kind, Some(fi as u32), Some(ei as u32));
                let parent = match e.parent {
                    Some(p) => self.entity_base[fi] + p,
                    None => f,
                };
                self.add_edge(parent, n, EdgeKind::Contains);
            }
        }
    }

    /// All nodes; a node's index is its handle.
    pub fn nodes(&self) -> &[GraphNode] {
        &self.nodes
    }

    /// The node with handle `idx`.
    pub fn node(&self, idx: u32) -> &GraphNode {
        &self.nodes[idx as usize]
    }

    /// The handle of the node with this id.
    pub fn lookup(&self, id: &str) -> Option<u32> {
        self.ids.get(id).copied()
    }

    /// The source files, sorted by path.
    pub fn files(&self) -> &[SourceFile] {
        &self.files
    }

    /// The node of file `fi`.
    pub fn file_node(&self, fi: u32) -> u32 {
        self.file_nodes[fi as usize]
    }

    /// Outgoing edges of a node: (target, kind).
    pub fn outgoing(&self, idx: u32) -> &[(u32, EdgeKind)] {
        &self.out[idx as usize]
    }

    /// Incoming edges of a node: (source, kind).
    pub fn incoming(&self, idx: u32) -> &[(u32, EdgeKind)] {
        &self.inc[idx as usize]
    }

    /// Every edge as (from, to, kind), sorted.
    pub fn edges(&self) -> Vec<(u32, u32, EdgeKind)> {
        let mut all: Vec<(u32, u32, EdgeKind)> = Vec::new();
        for (from, list) in self.out.iter().enumerate() {
            all.extend(list.iter().map(|&(to, k)| (from as u32, to, k)));
        }
        all
    }

    /// References that could not be resolved.
    pub fn unresolved(&self) -> &[Unresolved] {
        &self.unresolved
    }

    /// The entity facts of a node (classes, functions, methods).
    pub fn entity(&self, idx: u32) -> Option<&crate::extract::Entity> {
        let n = &self.nodes[idx as usize];
        Some(&self.files[n.file? as usize].facts.entities[n.entity? as usize])
    }

    /// The file path of a node (its own path for files and directories).
    pub fn path_of(&self, idx: u32) -> &str {
        let n = &self.nodes[idx as usize];
        match n.file {
            Some(f) => &self.files[f as usize].path,
            None => &n.id,
        }
    }

    /// The file index of a path.
    pub fn file_index(&self, path: &str) -> Option<u32> {
        self.files.binary_search_by(|f| f.path.as_str().cmp(path)).ok().map(|i| i as u32)
    }

    /// The nodes of the entities of file `fi`.
    pub fn entities_of(&self, fi: u32) -> std::ops::Range<u32> {
        let base = self.entity_base[fi as usize];
        base..base + self.files[fi as usize].facts.entities.len() as u32
    }

    /// The innermost entity of file `fi` whose span holds `line` (1-based).
    pub fn entity_at(&self, fi: u32, line: u32) -> Option<u32> {
        let facts = &self.files[fi as usize].facts;
        let mut best: Option<(u32, u32)> = None;
        for (i, e) in facts.entities.iter().enumerate() {
            if e.start_line <= line && line <= e.end_line {
                let size = e.end_line - e.start_line;
                if best.is_none_or(|(_, s)| size <= s) {
                    best = Some((i as u32, size));
                }
            }
        }
        best.map(|(i, _)| self.entity_base[fi as usize] + i)
    }

    /// The top-level entity (module level in LocAgent's terms) holding an entity node.
    pub fn top_level(&self, idx: u32) -> u32 {
        let mut cur = idx;
        loop {
            let n = &self.nodes[cur as usize];
            let (Some(f), Some(e)) = (n.file, n.entity) else { return cur };
            match self.files[f as usize].facts.entities[e as usize].parent {
                Some(p) => cur = self.entity_base[f as usize] + p,
                None => return cur,
            }
        }
    }

    /// Counts of nodes by kind and edges by kind.
    pub fn stats(&self) -> GraphStats {
        let mut s = GraphStats::default();
        for n in &self.nodes {
            match n.kind {
                NodeKind::Directory => s.directories += 1,
                NodeKind::File => s.files += 1,
                NodeKind::Class => s.classes += 1,
                NodeKind::Function => s.functions += 1,
                NodeKind::Method => s.methods += 1,
            }
        }
        for list in &self.out {
            for (_, k) in list {
                match k {
                    EdgeKind::Contains => s.contains += 1,
                    EdgeKind::Imports => s.imports += 1,
                    EdgeKind::Invokes => s.invokes += 1,
                    EdgeKind::Inherits => s.inherits += 1,
                }
            }
        }
        s.unresolved = self.unresolved.len();
        s
    }
}

/// Node and edge counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GraphStats {
    /// Directory nodes.
    pub directories: usize,
    /// File nodes.
    pub files: usize,
    /// Class nodes.
    pub classes: usize,
    /// Function nodes.
    pub functions: usize,
    /// Method nodes.
    pub methods: usize,
    /// `contains` edges.
    pub contains: usize,
    /// `imports` edges.
    pub imports: usize,
    /// `invokes` edges.
    pub invokes: usize,
    /// `inherits` edges.
    pub inherits: usize,
    /// Unresolved references.
    pub unresolved: usize,
}

// ---------------------------------------------------------------------------------------------
// Linking
// ---------------------------------------------------------------------------------------------

/// What a local name is bound to in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// A file, entity or directory node.
    Node(u32),
}

type Edges = Vec<(u32, u32, EdgeKind)>;

struct Linker<'g> {
    g: &'g CodeGraph,
    meta: &'g RepoMeta,
    /// Python/Java dotted module suffixes → file or directory nodes.
    dotted: HashMap<(u8, String), Vec<u32>>,
    /// File name → file nodes (for include and path suffix matching).
    by_file_name: HashMap<&'g str, Vec<u32>>,
    /// Simple entity name (last segment) per language family → entity nodes.
    by_simple_name: HashMap<(u8, &'g str), Vec<u32>>,
    /// Per file: local name → target.
    bindings: Vec<HashMap<String, Target>>,
    /// Per file: modules imported with a wildcard (or C includes).
    wildcards: Vec<Vec<u32>>,
    /// Per file: resolved import module nodes, by import index.
    import_modules: Vec<Vec<Option<u32>>>,
}

impl<'g> Linker<'g> {
    fn new(g: &'g CodeGraph, meta: &'g RepoMeta) -> Self {
        let mut dotted: HashMap<(u8, String), Vec<u32>> = HashMap::new();
        let mut by_file_name: HashMap<&str, Vec<u32>> = HashMap::new();
        let mut by_simple_name: HashMap<(u8, &str), Vec<u32>> = HashMap::new();
        for (fi, f) in g.files.iter().enumerate() {
            let node = g.file_nodes[fi];
            let name = f.path.rsplit('/').next().unwrap_or(&f.path);
            by_file_name.entry(name).or_default().push(node);
            let family = f.lang.family();
            if matches!(f.lang, Lang::Python | Lang::Java) {
                let stem = f.path.rsplit_once('.').map(|(s, _)| s).unwrap_or(&f.path);
                let stem = stem.strip_suffix("/__init__").unwrap_or(stem);
                let parts: Vec<&str> = stem.split('/').collect();
                for start in 0..parts.len() {
                    dotted.entry((family, parts[start..].join("."))).or_default().push(node);
                }
            }
            for e in g.entities_of(fi as u32) {
                if let Some(ent) = g.entity(e) {
                    let simple = ent.name.rsplit('.').next().unwrap_or(&ent.name);
                    let simple = simple.split('#').next().unwrap_or(simple);
                    by_simple_name.entry((family, simple)).or_default().push(e);
                }
            }
        }
        // Java packages and Go packages are directories.
        for (idx, n) in g.nodes.iter().enumerate() {
            if n.kind == NodeKind::Directory && n.id != "." {
                let parts: Vec<&str> = n.id.split('/').collect();
                for start in 0..parts.len() {
                    dotted.entry((Lang::Java.family(), parts[start..].join("."))).or_default().push(idx as u32);
                }
            }
        }
        for list in dotted.values_mut() {
            list.sort_by_key(|&n| (g.nodes[n as usize].id.len(), n));
        }
        let nfiles = g.files.len();
        Linker {
            g,
            meta,
            dotted,
            by_file_name,
            by_simple_name,
            bindings: vec![HashMap::new(); nfiles],
            wildcards: vec![Vec::new(); nfiles],
            import_modules: vec![Vec::new(); nfiles],
        }
    }

    fn link(mut self) -> (Edges, Vec<Unresolved>) {
        let g = self.g;
        let mut edges: Edges = Vec::new();
        let mut unresolved = Vec::new();
        // 1. Import modules.
        let modules: Vec<Vec<Option<u32>>> = (0..g.files.len())
            .into_par_iter()
            .map(|fi| {
                let f = &g.files[fi];
                f.facts.imports.iter().map(|imp| self.resolve_module(fi, &imp.module)).collect()
            })
            .collect();
        self.import_modules = modules;
        // 2. Bindings (twice, so that re-exports through another file's imports resolve).
        for _round in 0..2 {
            let computed: Vec<(HashMap<String, Target>, Vec<u32>)> =
                (0..g.files.len()).into_par_iter().map(|fi| self.bindings_of(fi)).collect();
            for (fi, (b, w)) in computed.into_iter().enumerate() {
                self.bindings[fi] = b;
                self.wildcards[fi] = w;
            }
        }
        // Import edges.
        for fi in 0..g.files.len() {
            let from = g.file_nodes[fi];
            for (ii, imp) in g.files[fi].facts.imports.iter().enumerate() {
                let module = self.import_modules[fi][ii];
                if imp.names.is_empty() || imp.wildcard {
                    match module {
                        Some(m) => edges.push((from, m, EdgeKind::Imports)),
                        None => unresolved.push(Unresolved {
                            from,
                            kind: EdgeKind::Imports,
                            name: imp.module.clone(),
                            line: imp.line,
                        }),
                    }
                    continue;
                }
                for name in &imp.names {
                    let local = name.alias.as_deref().unwrap_or(&name.name);
                    match self.bindings[fi].get(local) {
                        Some(Target::Node(t)) => edges.push((from, *t, EdgeKind::Imports)),
                        None => match module {
                            Some(m) => edges.push((from, m, EdgeKind::Imports)),
                            None => unresolved.push(Unresolved {
                                from,
                                kind: EdgeKind::Imports,
                                name: if g.files[fi].lang == Lang::Rust {
                                    join_module(&imp.module, &name.name)
                                } else {
                                    join_dotted(&imp.module, &name.name)
                                },
                                line: imp.line,
                            }),
                        },
                    }
                }
            }
        }
        // 3. Bases, then calls (calls through `self` look at resolved bases).
        let bases: Vec<(Edges, Vec<Unresolved>)> = (0..g.files.len())
            .into_par_iter()
            .map(|fi| self.resolve_refs(fi, &g.files[fi].facts.bases, EdgeKind::Inherits, &HashMap::new()))
            .collect();
        let mut base_map: HashMap<u32, Vec<u32>> = HashMap::new();
        for (e, u) in bases {
            for &(from, to, _) in &e {
                base_map.entry(from).or_default().push(to);
            }
            edges.extend(e);
            unresolved.extend(u);
        }
        let calls: Vec<(Edges, Vec<Unresolved>)> = (0..g.files.len())
            .into_par_iter()
            .map(|fi| self.resolve_refs(fi, &g.files[fi].facts.calls, EdgeKind::Invokes, &base_map))
            .collect();
        for (e, u) in calls {
            edges.extend(e);
            unresolved.extend(u);
        }
        (edges, unresolved)
    }

    // ---- modules ----

    fn file_path(&self, fi: usize) -> &'g str {
        &self.g.files[fi].path
    }

    fn dir_of(path: &str) -> &str {
        path.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
    }

    fn file_by_path(&self, path: &str) -> Option<u32> {
        let path = path.trim_start_matches("./");
        self.g.lookup(path).filter(|&n| self.g.nodes[n as usize].kind == NodeKind::File)
    }

    fn dir_by_path(&self, path: &str) -> Option<u32> {
        let path = if path.is_empty() { "." } else { path };
        self.g.lookup(path).filter(|&n| self.g.nodes[n as usize].kind == NodeKind::Directory)
    }

    /// The node a module specifier resolves to (a file, or a directory for packages).
    fn resolve_module(&self, fi: usize, module: &str) -> Option<u32> {
        let f = &self.g.files[fi];
        let path = self.file_path(fi);
        match f.lang {
            Lang::Python => self.python_module(path, module),
            Lang::Rust => self.rust_module(path, module).map(|(n, _)| n),
            Lang::JavaScript | Lang::TypeScript | Lang::Tsx => self.js_module(path, module),
            Lang::Go => self.go_package(module),
            Lang::Java => self.dotted_lookup(Lang::Java.family(), module),
            Lang::C | Lang::Cpp => self.include(path, module),
        }
    }

    fn dotted_lookup(&self, family: u8, dotted: &str) -> Option<u32> {
        self.dotted.get(&(family, dotted.to_string())).and_then(|v| v.first().copied())
    }

    fn python_module(&self, path: &str, module: &str) -> Option<u32> {
        let dots = module.chars().take_while(|&c| c == '.').count();
        if dots == 0 {
            return self.dotted_lookup(Lang::Python.family(), module);
        }
        let mut dir = Self::dir_of(path).to_string();
        for _ in 1..dots {
            dir = Self::dir_of(&dir).to_string();
        }
        let rest = module[dots..].replace('.', "/");
        let base = match (dir.is_empty(), rest.is_empty()) {
            (_, true) => dir.clone(),
            (true, false) => rest,
            (false, false) => format!("{dir}/{rest}"),
        };
        self.file_by_path(&format!("{base}.py"))
            .or_else(|| self.file_by_path(&format!("{base}/__init__.py")))
            .or_else(|| if base.is_empty() { None } else { self.dir_by_path(&base) })
    }

    fn js_module(&self, path: &str, module: &str) -> Option<u32> {
        let base = if module.starts_with('.') {
            normalize(&format!("{}/{module}", Self::dir_of(path)))?
        } else if module.starts_with('/') {
            module.trim_start_matches('/').to_string()
        } else {
            module.to_string()
        };
        let stripped = base
            .strip_suffix(".js")
            .or_else(|| base.strip_suffix(".jsx"))
            .or_else(|| base.strip_suffix(".mjs"))
            .unwrap_or(&base)
            .to_string();
        const EXTS: [&str; 7] = ["ts", "tsx", "js", "jsx", "mjs", "cjs", "d.ts"];
        if let Some(n) = self.file_by_path(&base) {
            return Some(n);
        }
        for b in [&base, &stripped] {
            for ext in EXTS {
                if let Some(n) = self.file_by_path(&format!("{b}.{ext}")) {
                    return Some(n);
                }
            }
            for ext in EXTS {
                if let Some(n) = self.file_by_path(&format!("{b}/index.{ext}")) {
                    return Some(n);
                }
            }
        }
        None
    }

    fn go_package(&self, import: &str) -> Option<u32> {
        for (module, dir) in &self.meta.go_modules {
            if let Some(rest) = import.strip_prefix(module.as_str()) {
                let rest = rest.trim_start_matches('/');
                let path = match (dir.is_empty() || dir == ".", rest.is_empty()) {
                    (true, _) => rest.to_string(),
                    (false, true) => dir.clone(),
                    (false, false) => format!("{dir}/{rest}"),
                };
                return self.dir_by_path(&path);
            }
        }
        None
    }

    fn include(&self, path: &str, include: &str) -> Option<u32> {
        let system = include.starts_with('<');
        let inc = include.trim_matches(|c| c == '"' || c == '<' || c == '>');
        if !system
            && let Some(n) = normalize(&format!("{}/{inc}", Self::dir_of(path))).and_then(|p| self.file_by_path(&p))
        {
            return Some(n);
        }
        let name = inc.rsplit('/').next().unwrap_or(inc);
        let candidates = self.by_file_name.get(name)?;
        let suffix = format!("/{inc}");
        candidates
            .iter()
            .copied()
            .filter(|&n| {
                let id = &self.g.nodes[n as usize].id;
                id == inc || id.ends_with(&suffix)
            })
            .min_by_key(|&n| self.g.nodes[n as usize].id.len())
    }

    /// Rust: the module directory of a file (where its child modules live).
    fn rust_module_dir(path: &str) -> String {
        let dir = Self::dir_of(path);
        let file = path.rsplit('/').next().unwrap_or(path);
        if matches!(file, "lib.rs" | "main.rs" | "mod.rs") {
            dir.to_string()
        } else {
            let stem = file.trim_end_matches(".rs");
            if dir.is_empty() { stem.to_string() } else { format!("{dir}/{stem}") }
        }
    }

    /// Rust: the crate source directory holding a file.
    fn rust_crate_src(&self, path: &str) -> String {
        let mut best: Option<&str> = None;
        for (_, dir) in &self.meta.rust_crates {
            let prefix = if dir.is_empty() || dir == "." { String::new() } else { format!("{dir}/") };
            if path.starts_with(&prefix) && best.is_none_or(|b| b.len() < dir.len()) {
                best = Some(dir);
            }
        }
        match best {
            Some(d) if d.is_empty() || d == "." => "src".into(),
            Some(d) => format!("{d}/src"),
            None => {
                // No manifest: the nearest ancestor named `src`, else the file's directory.
                let mut dir = Self::dir_of(path);
                loop {
                    if dir.ends_with("src") || dir.is_empty() {
                        return if dir.is_empty() { Self::dir_of(path).to_string() } else { dir.to_string() };
                    }
                    dir = Self::dir_of(dir);
                }
            }
        }
    }

    fn rust_mod_file(&self, dir: &str, name: &str) -> Option<(u32, String)> {
        let base = if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") };
        self.file_by_path(&format!("{base}.rs"))
            .or_else(|| self.file_by_path(&format!("{base}/mod.rs")))
            .map(|n| (n, base))
    }

    fn rust_crate_root_file(&self, src: &str) -> Option<u32> {
        self.file_by_path(&format!("{src}/lib.rs")).or_else(|| self.file_by_path(&format!("{src}/main.rs")))
    }

    /// Rust: resolves a module path to (module file, its module directory) as far as files go.
    fn rust_module(&self, path: &str, module: &str) -> Option<(u32, String)> {
        if let Some(name) = module.strip_prefix("mod:") {
            return self.rust_mod_file(&Self::rust_module_dir(path), name);
        }
        let segs: Vec<&str> = module.split("::").filter(|s| !s.is_empty()).collect();
        let first = *segs.first()?;
        let src = self.rust_crate_src(path);
        let (mut node, mut dir, rest) = match first {
            "crate" => (self.rust_crate_root_file(&src)?, src.clone(), &segs[1..]),
            "self" => (self.file_by_path(path)?, Self::rust_module_dir(path), &segs[1..]),
            "super" => {
                let mut dir = Self::rust_module_dir(path);
                let mut i = 0;
                while segs.get(i) == Some(&"super") {
                    dir = Self::dir_of(&dir).to_string();
                    i += 1;
                }
                let node = self
                    .file_by_path(&format!("{dir}.rs"))
                    .or_else(|| self.file_by_path(&format!("{dir}/mod.rs")))
                    .or_else(|| self.rust_crate_root_file(&dir))?;
                (node, dir, &segs[i..])
            }
            name => {
                if let Some((_, cdir)) = self.meta.rust_crates.iter().find(|(n, _)| n == name) {
                    let csrc = if cdir.is_empty() || cdir == "." { "src".to_string() } else { format!("{cdir}/src") };
                    (self.rust_crate_root_file(&csrc)?, csrc, &segs[1..])
                } else if let Some((n, d)) = self.rust_mod_file(&Self::rust_module_dir(path), name) {
                    (n, d, &segs[1..])
                } else if let Some((n, d)) = self.rust_mod_file(&src, name) {
                    (n, d, &segs[1..])
                } else {
                    return None;
                }
            }
        };
        for seg in rest {
            match self.rust_mod_file(&dir, seg) {
                Some((n, d)) => {
                    node = n;
                    dir = d;
                }
                None => break,
            }
        }
        Some((node, dir))
    }

    // ---- bindings ----

    /// A name defined in (or re-exported by) a module node.
    fn member_of_module(&self, module: u32, name: &str) -> Option<u32> {
        let m = &self.g.nodes[module as usize];
        match m.kind {
            NodeKind::File => {
                if let Some(n) = self.g.lookup(&format!("{}:{name}", m.id)) {
                    return Some(n);
                }
                let fi = m.file? as usize;
                self.bindings[fi].get(name).map(|Target::Node(n)| *n)
            }
            NodeKind::Directory => {
                // A package directory: the first file that defines `name` at top level.
                self.g.outgoing(module).iter().filter(|(_, k)| *k == EdgeKind::Contains).find_map(|&(child, _)| {
                    let c = &self.g.nodes[child as usize];
                    if c.kind == NodeKind::File { self.g.lookup(&format!("{}:{name}", c.id)) } else { None }
                })
            }
            _ => {
                let id = &m.id;
                self.g.lookup(&format!("{id}.{name}"))
            }
        }
    }

    fn bindings_of(&self, fi: usize) -> (HashMap<String, Target>, Vec<u32>) {
        let f = &self.g.files[fi];
        let mut b = HashMap::new();
        let mut wild = Vec::new();
        for (ii, imp) in f.facts.imports.iter().enumerate() {
            let module = self.import_modules[fi][ii];
            if imp.wildcard || (matches!(f.lang, Lang::C | Lang::Cpp)) {
                if let Some(m) = module {
                    wild.push(m);
                }
                continue;
            }
            if imp.names.is_empty() {
                if let (Some(m), Some(alias)) = (module, &imp.alias) {
                    b.insert(alias.clone(), Target::Node(m));
                    // `import a.b.c` also makes `a.b.c` usable as a qualifier: bind each prefix too.
                    if f.lang == Lang::Python && alias == &imp.module {
                        let mut prefix = String::new();
                        for part in imp.module.split('.') {
                            if !prefix.is_empty() {
                                prefix.push('.');
                            }
                            prefix.push_str(part);
                            if let Some(n) = self.python_module(&f.path, &prefix) {
                                b.entry(prefix.clone()).or_insert(Target::Node(n));
                            }
                        }
                    }
                }
                continue;
            }
            for name in &imp.names {
                let local = name.alias.clone().unwrap_or_else(|| name.name.clone());
                let target = match f.lang {
                    Lang::Python => self
                        .python_module(&f.path, &join_dotted(&imp.module, &name.name))
                        .or_else(|| module.and_then(|m| self.member_of_module(m, &name.name))),
                    Lang::Rust => {
                        let full = join_module(&imp.module, &name.name);
                        match self.rust_module(&f.path, &full) {
                            Some((n, _)) if module != Some(n) || imp.module.is_empty() => Some(n),
                            _ => module.and_then(|m| self.member_of_module(m, &name.name)),
                        }
                    }
                    _ if name.name == "default" => module.and_then(|m| self.default_export(m)),
                    Lang::Java => module
                        .and_then(|m| self.member_of_module(m, &name.name))
                        .or_else(|| self.dotted_lookup(Lang::Java.family(), &join_dotted(&imp.module, &name.name)))
                        .map(|n| self.class_in_file(n, &name.name)),
                    _ => module.and_then(|m| self.member_of_module(m, &name.name)),
                };
                if let Some(t) = target {
                    b.insert(local, Target::Node(t));
                }
            }
        }
        (b, wild)
    }

    /// A Java import names a file; the class of the same name inside it is the real target.
    fn class_in_file(&self, node: u32, name: &str) -> u32 {
        let n = &self.g.nodes[node as usize];
        if n.kind == NodeKind::File { self.g.lookup(&format!("{}:{name}", n.id)).unwrap_or(node) } else { node }
    }

    /// JS/TS default export: a top-level entity named like the file, else the first top-level one.
    fn default_export(&self, module: u32) -> Option<u32> {
        let m = &self.g.nodes[module as usize];
        let fi = m.file?;
        let stem = m.id.rsplit('/').next()?.split('.').next()?;
        self.g
            .lookup(&format!("{}:{stem}", m.id))
            .or_else(|| self.g.entities_of(fi).find(|&e| self.g.entity(e).is_some_and(|x| x.parent.is_none())))
    }

    // ---- references ----

    fn resolve_refs(
        &self,
        fi: usize,
        refs: &[Reference],
        kind: EdgeKind,
        bases: &HashMap<u32, Vec<u32>>,
    ) -> (Edges, Vec<Unresolved>) {
        let mut edges = Vec::new();
        let mut unresolved = Vec::new();
        let base = self.g.entity_base[fi];
        let file_node = self.g.file_nodes[fi];
        for r in refs {
            let from = r.from.map(|e| base + e).unwrap_or(file_node);
            match self.resolve_ref(fi, r, kind, bases) {
                Some(to) => edges.push((from, to, kind)),
                None => unresolved.push(Unresolved {
                    from,
                    kind,
                    name: match &r.qualifier {
                        Some(q) => format!("{q}.{}", r.name),
                        None => r.name.clone(),
                    },
                    line: r.line,
                }),
            }
        }
        edges.sort_unstable();
        edges.dedup();
        (edges, unresolved)
    }

    fn is_entity(&self, n: u32) -> bool {
        matches!(self.g.nodes[n as usize].kind, NodeKind::Class | NodeKind::Function | NodeKind::Method)
    }

    /// The class that encloses an entity (the entity itself if it is a class).
    fn enclosing_class(&self, fi: usize, entity: Option<u32>) -> Option<u32> {
        let facts = &self.g.files[fi].facts;
        let mut cur = entity;
        while let Some(e) = cur {
            let ent = &facts.entities[e as usize];
            if ent.kind == EntityKind::Class && !matches!(ent.detail.as_str(), "module" | "namespace") {
                return Some(self.g.entity_base[fi] + e);
            }
            cur = ent.parent;
        }
        None
    }

    /// A member `name` of class `class` or of its bases.
    fn member(&self, class: u32, name: &str, bases: &HashMap<u32, Vec<u32>>, depth: u32) -> Option<u32> {
        let id = &self.g.nodes[class as usize].id;
        if let Some(n) = self.g.lookup(&format!("{id}.{name}")) {
            return Some(n);
        }
        if depth >= 6 {
            return None;
        }
        bases.get(&class)?.iter().find_map(|&b| self.member(b, name, bases, depth + 1))
    }

    /// A bare name seen from file `fi` (local definitions, bindings, wildcard imports, package).
    fn bare_name(&self, fi: usize, from: Option<u32>, name: &str) -> Option<u32> {
        let f = &self.g.files[fi];
        let facts = &f.facts;
        // Nested scopes, innermost first: `outer.inner`, then `Class.member` for languages where
        // members are in scope without `self`.
        let mut cur = from;
        while let Some(e) = cur {
            let ent = &facts.entities[e as usize];
            let implicit_member = matches!(f.lang, Lang::Java | Lang::Cpp | Lang::TypeScript | Lang::Tsx)
                || ent.kind != EntityKind::Class;
            if implicit_member && let Some(n) = self.g.lookup(&format!("{}:{}.{name}", f.path, ent.name)) {
                return Some(n);
            }
            cur = ent.parent;
        }
        if let Some(n) = self.g.lookup(&format!("{}:{name}", f.path)) {
            return Some(n);
        }
        if let Some(Target::Node(n)) = self.bindings[fi].get(name) {
            return Some(*n);
        }
        for &m in &self.wildcards[fi] {
            if let Some(n) = self.member_of_module(m, name) {
                return Some(n);
            }
        }
        // Same package (Go, Java) or same directory (C): top-level names of sibling files.
        if matches!(f.lang, Lang::Go | Lang::Java | Lang::C | Lang::Cpp) {
            let dir = Self::dir_of(&f.path);
            if let Some(cands) = self.by_simple_name.get(&(f.lang.family(), name)) {
                for &c in cands {
                    let p = self.g.path_of(c);
                    if Self::dir_of(p) == dir && self.g.entity(c).is_some_and(|e| e.parent.is_none()) {
                        return Some(c);
                    }
                }
            }
        }
        None
    }

    /// A name unique in the repository (same language family), as a last resort.
    fn unique(&self, fi: usize, name: &str, want_class: bool, top_level: bool) -> Option<u32> {
        let family = self.g.files[fi].lang.family();
        let cands = self.by_simple_name.get(&(family, name))?;
        let mut found = None;
        for &c in cands {
            let n = &self.g.nodes[c as usize];
            if want_class && n.kind != NodeKind::Class {
                continue;
            }
            if top_level && self.g.entity(c).is_some_and(|e| e.parent.is_some()) {
                continue;
            }
            if !top_level && n.kind != NodeKind::Method {
                continue;
            }
            if found.is_some() {
                return None;
            }
            found = Some(c);
        }
        found
    }

    fn resolve_ref(&self, fi: usize, r: &Reference, kind: EdgeKind, bases: &HashMap<u32, Vec<u32>>) -> Option<u32> {
        let want_class = kind == EdgeKind::Inherits;
        let f = &self.g.files[fi];
        let accept = |n: u32| {
            let k = self.g.nodes[n as usize].kind;
            if want_class { k == NodeKind::Class } else { self.is_entity(n) }
        };
        let Some(q) = r.qualifier.as_deref() else {
            if let Some(n) = self.bare_name(fi, r.from, &r.name).filter(|&n| accept(n)) {
                return Some(n);
            }
            return self.unique(fi, &r.name, want_class, true);
        };
        // `self.x()`, `this.x()`, `Self::x()`, `super().x()`.
        let q_norm = q.trim_end_matches("()");
        if matches!(q_norm, "self" | "this" | "cls" | "Self" | "super" | "self.__class__") {
            let class = self.enclosing_class(fi, r.from)?;
            if q_norm == "super" {
                return bases.get(&class)?.iter().find_map(|&b| self.member(b, &r.name, bases, 0));
            }
            return self.member(class, &r.name, bases, 0).filter(|&n| accept(n));
        }
        // A bound module or class, possibly dotted: `np.linalg`, `models`, `Foo`, `crate::a::b`.
        let q_dotted = q.replace("::", ".");
        let mut target = None;
        if let Some(Target::Node(n)) = self.bindings[fi].get(q).or_else(|| self.bindings[fi].get(q_dotted.as_str())) {
            target = Some(*n);
        } else if f.lang == Lang::Rust
            && let Some((n, _)) = self.rust_module(&f.path, q)
            && q.contains("::")
        {
            target = Some(n);
        } else if let Some((head, tail)) = q_dotted.split_once('.')
            && let Some(Target::Node(n)) = self.bindings[fi].get(head)
        {
            // `models.sql.Query` through `models`.
            let mut cur = Some(*n);
            for part in tail.split('.') {
                cur = cur.and_then(|c| {
                    self.member_of_module(c, part).or_else(|| {
                        let id = &self.g.nodes[c as usize].id;
                        if f.lang == Lang::Python {
                            let stem = id.trim_end_matches(".py").trim_end_matches("/__init__");
                            self.file_by_path(&format!("{stem}/{part}.py"))
                                .or_else(|| self.file_by_path(&format!("{stem}/{part}/__init__.py")))
                        } else {
                            None
                        }
                    })
                });
            }
            target = cur;
        } else if let Some(n) =
            self.bare_name(fi, r.from, q).filter(|&n| self.g.nodes[n as usize].kind == NodeKind::Class)
        {
            target = Some(n);
        } else if !q.contains(['.', '(', '[', ':']) && q.chars().next().is_some_and(char::is_uppercase) {
            target = self.unique(fi, q, true, true);
        }
        if let Some(t) = target {
            let found = match self.g.nodes[t as usize].kind {
                NodeKind::Class => self.member(t, &r.name, bases, 0),
                _ => self.member_of_module(t, &r.name),
            };
            if let Some(n) = found.filter(|&n| accept(n)) {
                return Some(n);
            }
            if self.g.nodes[t as usize].kind != NodeKind::Class {
                return None;
            }
        }
        // An object of unknown type: a method name that is unique in the repository.
        if want_class { self.unique(fi, &r.name, true, true) } else { self.unique(fi, &r.name, false, false) }
    }
}

fn join_dotted(module: &str, name: &str) -> String {
    if module.is_empty() || module.ends_with('.') { format!("{module}{name}") } else { format!("{module}.{name}") }
}

fn join_module(module: &str, name: &str) -> String {
    if module.is_empty() {
        name.to_string()
    } else if module.contains("::") || !module.contains(['.', '/']) && !module.starts_with('"') {
        format!("{module}::{name}")
    } else {
        join_dotted(module, name)
    }
}

/// `a/./b/../c` → `a/c`; `None` when it climbs above the root.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// Ids of a set of nodes (for tests and debugging).
pub fn ids(g: &CodeGraph, nodes: impl IntoIterator<Item = u32>) -> Vec<String> {
    let set: HashSet<String> = nodes.into_iter().map(|n| g.node(n).id.clone()).collect();
    let mut v: Vec<String> = set.into_iter().collect();
    v.sort();
    v
}
