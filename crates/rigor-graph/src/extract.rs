//! Facts about one source file, read from its tree-sitter syntax tree.
//!
//! [`extract`] turns a file's text into [`FileFacts`]: its entities (classes and their kin,
//! functions, methods) with qualified names, line spans, signatures and docstrings; its imports
//! exactly as written; the calls and base-class references it makes, by name; and the term counts
//! used by lexical retrieval. Everything here is local to the file: resolving names across files
//! is the graph builder's job (`graph`), and nothing here touches the file system.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;

use rustc_hash::FxHashMap;

use serde::{Deserialize, Serialize};
use tree_sitter::{Node, Parser, TreeCursor};

use crate::lang::{KindSet, Lang, field_id, kind_name, parser_for};
use crate::tokenize::for_each_term_at;

/// What kind of code entity a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EntityKind {
    /// A class or its kin: struct, enum, trait, interface, impl, union, namespace, inline module.
    Class,
    /// A free function (or a function nested in another function).
    Function,
    /// A function defined in a class-like entity.
    Method,
}

/// A class, function or method defined in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    /// Name qualified within the file: `Class.method`, `outer.inner`, `ns.Type`.
    pub name: String,
    /// Class, function or method.
    pub kind: EntityKind,
    /// The language's word for it: `class`, `struct`, `enum`, `trait`, `interface`, `impl`,
    /// `module`, `namespace`, `function`, `method`, `constructor`.
    pub detail: String,
    /// Index of the enclosing entity in [`FileFacts::entities`].
    pub parent: Option<u32>,
    /// First line (1-based, decorators and attributes included).
    pub start_line: u32,
    /// Last line (1-based, inclusive).
    pub end_line: u32,
    /// The header up to the body, whitespace collapsed (`def union(self, *other_qs, all=False)`).
    pub signature: String,
    /// The first paragraph of the docstring or doc comment.
    pub doc: String,
    /// Distinct terms of the body (for functions and methods), for lexical retrieval: indices
    /// into the file's [`FileFacts::terms`], ascending.
    pub body_terms: Vec<u32>,
}

/// One imported name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedName {
    /// The name in the imported module (`default` for a JavaScript default import).
    pub name: String,
    /// The local name, when renamed.
    pub alias: Option<String>,
}

/// An import, include or `use`, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Import {
    /// The module as written: `django.db.models`, `..utils`, `crate::a::b`, `./x`, `"x.h"`,
    /// `<stdio.h>`, `github.com/a/b/pkg`, `java.util`, or `mod:name` for a Rust `mod name;`.
    pub module: String,
    /// Names imported from it (empty when the module itself is imported).
    pub names: Vec<ImportedName>,
    /// The local name of the module itself (`import numpy as np` → `np`; `import a.b` → `a.b`).
    pub alias: Option<String>,
    /// `from x import *`, `use x::*`, `import x.*`.
    pub wildcard: bool,
    /// 1-based line.
    pub line: u32,
}

/// A reference by name: a call or a base class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reference {
    /// The entity it occurs in (index into [`FileFacts::entities`]); `None` at file level.
    pub from: Option<u32>,
    /// The referenced name (`union`, `QuerySet`).
    pub name: String,
    /// What it is reached through, as written (`self`, `os.path`, `models`, `Foo`).
    pub qualifier: Option<String>,
    /// 1-based line.
    pub line: u32,
}

/// Everything extracted from one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileFacts {
    /// Entities in source order; parents come before children.
    pub entities: Vec<Entity>,
    /// Imports in source order.
    pub imports: Vec<Import>,
    /// Calls (and constructions) by name.
    pub calls: Vec<Reference>,
    /// Base classes, implemented traits and interfaces, embedded types (`from` is the class).
    pub bases: Vec<Reference>,
    /// Term counts of the whole text, sorted by term.
    pub terms: Vec<(String, u32)>,
    /// Number of lines.
    pub lines: u32,
}

/// Cap on the signature's length, in characters.
const MAX_SIGNATURE: usize = 200;
/// Cap on the docstring's length, in characters.
const MAX_DOC: usize = 300;
/// Cap on the distinct body terms kept per function.
const MAX_BODY_TERMS: usize = 300;

/// Extracts the facts of one file. A text that does not fully parse still yields what parses.
pub fn extract(lang: Lang, text: &str) -> FileFacts {
    extract_with(lang, text, walk_kinds(lang))
}

/// [`extract`], with the kinds to look at and to skip given.
fn extract_with(lang: Lang, text: &str, kinds: &'static WalkKinds) -> FileFacts {
    let facts = FileFacts { lines: line_count(text), ..FileFacts::default() };
    let mut ex = Extractor { lang, text, facts, kinds, index: HashMap::new(), ranges: Vec::new() };
    if let Some(tree) = with_parser(lang, |parser| parser.parse(text, None)).flatten() {
        ex.visit(tree.root_node(), None, &mut Vec::new());
    }
    ex.count_terms();
    ex.facts
}

/// Runs `f` with this thread's parser for `lang` (made on first use, then reused: a fresh parser
/// per file costs its allocations every time). `None` when the grammar cannot be loaded.
fn with_parser<T>(lang: Lang, f: impl FnOnce(&mut Parser) -> T) -> Option<T> {
    thread_local! {
        static PARSERS: RefCell<Vec<(Lang, Parser)>> = const { RefCell::new(Vec::new()) };
    }
    PARSERS.with(|cell| {
        let mut parsers = cell.borrow_mut();
        let at = match parsers.iter().position(|(l, _)| *l == lang) {
            Some(at) => at,
            None => {
                parsers.push((lang, parser_for(lang)?));
                parsers.len() - 1
            }
        };
        Some(f(&mut parsers[at].1))
    })
}

/// The node kinds that [`Extractor::definition`] or [`Extractor::reference`] act on, per
/// language: every other node is only walked through, without looking at its kind's name.
/// (Test `every_kind_acted_on_is_listed` checks the lists against the match arms.)
fn handled_kind_names(lang: Lang) -> &'static [&'static str] {
    match lang {
        Lang::Python => {
            &["class_definition", "function_definition", "call", "import_statement", "import_from_statement"]
        }
        Lang::Rust => &[
            "struct_item",
            "enum_item",
            "union_item",
            "trait_item",
            "impl_item",
            "mod_item",
            "function_item",
            "function_signature_item",
            "call_expression",
            "use_declaration",
        ],
        Lang::JavaScript | Lang::TypeScript | Lang::Tsx => &[
            "class_declaration",
            "abstract_class_declaration",
            "class",
            "interface_declaration",
            "enum_declaration",
            "internal_module",
            "module",
            "function_declaration",
            "generator_function_declaration",
            "method_definition",
            "variable_declarator",
            "public_field_definition",
            "field_definition",
            "call_expression",
            "new_expression",
            "import_statement",
            "export_statement",
        ],
        Lang::Go => &["function_declaration", "method_declaration", "type_spec", "call_expression", "import_spec"],
        Lang::Java => &[
            "class_declaration",
            "interface_declaration",
            "enum_declaration",
            "record_declaration",
            "annotation_type_declaration",
            "method_declaration",
            "constructor_declaration",
            "compact_constructor_declaration",
            "method_invocation",
            "object_creation_expression",
            "import_declaration",
        ],
        Lang::C | Lang::Cpp => &[
            "function_definition",
            "struct_specifier",
            "union_specifier",
            "enum_specifier",
            "class_specifier",
            "namespace_definition",
            "call_expression",
            "preproc_include",
        ],
    }
}

/// Node kinds whose subtrees hold nothing the extractor records (literals, comments), per
/// language: not walked into. Python's `string` is walked when it is an f-string (its
/// interpolations hold code).
fn opaque_kind_names(lang: Lang) -> &'static [&'static str] {
    match lang {
        Lang::Python => &["string", "comment"],
        Lang::Rust => &[
            "string_literal",
            "raw_string_literal",
            "line_comment",
            "block_comment",
            "attribute_item",
            "inner_attribute_item",
        ],
        Lang::JavaScript | Lang::TypeScript | Lang::Tsx => &["string", "comment", "regex"],
        Lang::Go => &["interpreted_string_literal", "raw_string_literal", "comment"],
        Lang::Java => &["string_literal", "line_comment", "block_comment"],
        Lang::C | Lang::Cpp => {
            &["string_literal", "raw_string_literal", "char_literal", "system_lib_string", "comment"]
        }
    }
}

/// What a walk of a tree looks at: the kinds acted on, and the kinds not walked into.
struct WalkKinds {
    handled: KindSet,
    opaque: KindSet,
}

/// [`handled_kind_names`] and [`opaque_kind_names`] as kind-id tables, made once per language.
fn walk_kinds(lang: Lang) -> &'static WalkKinds {
    static SETS: [OnceLock<WalkKinds>; 9] = [const { OnceLock::new() }; 9];
    SETS[lang as usize].get_or_init(|| WalkKinds {
        handled: KindSet::new(lang, handled_kind_names(lang)),
        opaque: KindSet::new(lang, opaque_kind_names(lang)),
    })
}

/// Number of lines, as `str::lines` counts them (a last line without a newline counts).
fn line_count(text: &str) -> u32 {
    let newlines = text.bytes().filter(|&b| b == b'\n').count();
    (newlines + usize::from(!text.is_empty() && !text.ends_with('\n'))) as u32
}

struct Extractor<'a> {
    lang: Lang,
    text: &'a str,
    facts: FileFacts,
    /// The kinds [`Extractor::definition`] and [`Extractor::reference`] look at, and those
    /// skipped whole.
    kinds: &'static WalkKinds,
    /// Qualified name → entity index, for merging (Rust `impl` blocks) and de-duplication.
    index: HashMap<String, u32>,
    /// Byte range of each function's body (entity index, start, end), in source order.
    ranges: Vec<(u32, usize, usize)>,
}

/// How a node defines an entity.
struct Def<'t> {
    name: String,
    kind: EntityKind,
    detail: &'static str,
    /// Node whose span is the entity's span (a decorated definition, an export).
    span: Node<'t>,
    /// Node where the entity starts (its first attribute), when earlier than `span`.
    first: Option<Node<'t>>,
    /// Node holding the header (signature) and body.
    node: Node<'t>,
    /// Where to continue the walk (the body), or the node itself.
    body: Option<Node<'t>>,
    /// Qualifier that overrides the lexical parent (Go receivers, C++ `Foo::bar`).
    owner: Option<String>,
}

impl<'a> Extractor<'a> {
    fn text_of(&self, node: Node<'_>) -> &'a str {
        self.text.get(node.byte_range()).unwrap_or_default()
    }

    /// The child of `node` in `field` (a field name of the language's grammar).
    fn child<'t>(&self, node: Node<'t>, field: &str) -> Option<Node<'t>> {
        node.child_by_field_id(field_id(self.lang, field)?.get())
    }

    fn field_text(&self, node: Node<'_>, field: &str) -> Option<&'a str> {
        self.child(node, field).map(|n| self.text_of(n))
    }

    fn line(node: Node<'_>) -> u32 {
        node.start_position().row as u32 + 1
    }

    /// Visits `node` and, unless it was handled whole, its named descendants. `cursors` holds
    /// one reusable cursor per depth (a cursor per node would allocate for every node).
    fn visit<'t>(&mut self, node: Node<'t>, parent: Option<u32>, cursors: &mut Vec<TreeCursor<'t>>) {
        if !self.kinds.handled.contains(node) {
            if !self.kinds.opaque.contains(node) || self.is_format_string(node) {
                self.visit_children(node, parent, cursors);
            }
            return;
        }
        if let Some(def) = self.definition(node, parent) {
            let idx = self.add_entity(&def, parent);
            self.after_definition(node, idx);
            let walk = def.body.unwrap_or(def.node);
            self.visit_children(walk, Some(idx), cursors);
            return;
        }
        if self.reference(node, parent) {
            return;
        }
        self.visit_children(node, parent, cursors);
    }

    /// Whether `node` is a Python f-string (or t-string): its prefix, before the quote, holds
    /// an `f` or `t`.
    fn is_format_string(&self, node: Node<'_>) -> bool {
        self.lang == Lang::Python
            && self
                .text
                .as_bytes()
                .get(node.start_byte()..)
                .unwrap_or_default()
                .iter()
                .take_while(|b| b.is_ascii_alphabetic())
                .any(|b| matches!(b.to_ascii_lowercase(), b'f' | b't'))
    }

    fn visit_children<'t>(&mut self, node: Node<'t>, parent: Option<u32>, cursors: &mut Vec<TreeCursor<'t>>) {
        let mut cursor = match cursors.pop() {
            Some(mut cursor) => {
                cursor.reset(node);
                cursor
            }
            None => node.walk(),
        };
        if cursor.goto_first_child() {
            loop {
                let child = cursor.node();
                // Most named nodes are leaves of kinds not handled: skipped without a visit.
                if child.is_named() && (child.child_count() > 0 || self.kinds.handled.contains(child)) {
                    self.visit(child, parent, cursors);
                }
                if !cursor.goto_next_sibling() {
                    break;
                }
            }
        }
        cursors.push(cursor);
    }

    fn add_entity(&mut self, def: &Def<'_>, lexical_parent: Option<u32>) -> u32 {
        let mut parent = lexical_parent;
        let mut prefix = parent.map(|p| self.facts.entities[p as usize].name.clone());
        if let Some(owner) = &def.owner {
            let owner_name = match &prefix {
                Some(p) => format!("{p}.{owner}"),
                None => owner.clone(),
            };
            match self.index.get(&owner_name) {
                Some(&i) => {
                    parent = Some(i);
                    prefix = Some(owner_name);
                }
                None => prefix = Some(owner_name),
            }
        }
        let mut name = match &prefix {
            Some(p) => format!("{p}.{}", def.name),
            None => def.name.clone(),
        };
        let parent_is_class = match parent {
            Some(p) => {
                let e = &self.facts.entities[p as usize];
                e.kind == EntityKind::Class && !matches!(e.detail.as_str(), "module" | "namespace")
            }
            None => def.owner.is_some(),
        };
        let kind = match def.kind {
            EntityKind::Function | EntityKind::Method if parent_is_class => EntityKind::Method,
            EntityKind::Method => EntityKind::Function,
            k => k,
        };
        let detail = match (kind, def.detail) {
            (EntityKind::Method, "function") => "method",
            (EntityKind::Function, "method") => "function",
            (_, d) => d,
        };
        let signature = self.signature(def);
        let doc = self.doc(def);
        let start_line = Self::line(def.first.unwrap_or(def.span));
        let end_line = def.span.end_position().row as u32 + 1;
        if let Some(&existing) = self.index.get(&name) {
            let e = &mut self.facts.entities[existing as usize];
            if kind == EntityKind::Class && e.kind == EntityKind::Class && (e.detail == "impl" || detail == "impl") {
                // A Rust `impl` merges into its type (either order).
                if e.detail == "impl" && detail != "impl" {
                    e.detail = detail.to_string();
                    e.signature = signature;
                    e.doc = doc;
                    e.start_line = start_line;
                    e.end_line = end_line;
                }
                return existing;
            }
            let mut n = 2;
            while self.index.contains_key(&format!("{name}#{n}")) {
                n += 1;
            }
            name = format!("{name}#{n}");
        }
        let idx = self.facts.entities.len() as u32;
        if kind != EntityKind::Class {
            let body = def.body.unwrap_or(def.node);
            self.ranges.push((idx, body.start_byte(), body.end_byte()));
        }
        self.index.insert(name.clone(), idx);
        self.facts.entities.push(Entity {
            name,
            kind,
            detail: detail.to_string(),
            parent,
            start_line,
            end_line,
            signature,
            doc,
            body_terms: Vec::new(),
        });
        idx
    }

    /// One pass over the text: term counts of the file, and distinct body terms of each function
    /// (a term belongs to the innermost function whose body holds it), as indices into the
    /// file's sorted term list.
    fn count_terms(&mut self) {
        /// A distinct term: occurrences, and the last function body it was added to.
        #[derive(Clone, Copy)]
        struct Seen {
            id: u32,
            count: u32,
        }
        const NO_BODY: u32 = u32::MAX;
        let mut terms: FxHashMap<Cow<'_, str>, Seen> = FxHashMap::default();
        let mut last_body: Vec<u32> = Vec::new();
        let mut body: Vec<Vec<u32>> = vec![Vec::new(); self.ranges.len()];
        let mut next = 0usize;
        let mut stack: Vec<(usize, usize)> = Vec::new(); // (range index, end)
        let ranges = &self.ranges;
        let text = self.text;
        for_each_term_at(text, |t, offset| {
            while stack.last().is_some_and(|&(_, end)| end <= offset) {
                stack.pop();
            }
            while next < ranges.len() && ranges[next].1 <= offset {
                let (_, start, end) = ranges[next];
                while stack.last().is_some_and(|&(_, e)| e <= start) {
                    stack.pop();
                }
                if end > offset {
                    stack.push((next, end));
                }
                next += 1;
            }
            // Terms are substrings of `text` when lowercasing left them unchanged: those are
            // kept by reference, the rest by value.
            let id = match terms.get_mut(t) {
                Some(seen) => {
                    seen.count += 1;
                    seen.id
                }
                None => {
                    let id = last_body.len() as u32;
                    let key = match text.get(offset..offset + t.len()).filter(|w| *w == t) {
                        Some(w) => Cow::Borrowed(w),
                        None => Cow::Owned(t.to_string()),
                    };
                    terms.insert(key, Seen { id, count: 1 });
                    id
                }
            };
            if id as usize == last_body.len() {
                last_body.push(NO_BODY);
            }
            if let Some(&(ri, _)) = stack.last() {
                let list = &mut body[ri];
                // The marker settles most repeats; a nested function in between needs the scan.
                if last_body[id as usize] != ri as u32 && list.len() < MAX_BODY_TERMS && !list.contains(&id) {
                    list.push(id);
                }
                last_body[id as usize] = ri as u32;
            }
        });
        let mut terms: Vec<(String, u32, u32)> =
            terms.into_iter().map(|(t, s)| (t.into_owned(), s.count, s.id)).collect();
        terms.sort_unstable();
        let mut rank = vec![0u32; terms.len()];
        for (i, (_, _, id)) in terms.iter().enumerate() {
            rank[*id as usize] = i as u32;
        }
        self.facts.terms = terms.into_iter().map(|(t, c, _)| (t, c)).collect();
        for (ri, ids) in body.into_iter().enumerate() {
            let mut v: Vec<u32> = ids.into_iter().map(|id| rank[id as usize]).collect();
            v.sort_unstable();
            self.facts.entities[self.ranges[ri].0 as usize].body_terms = v;
        }
    }

    fn signature(&self, def: &Def<'_>) -> String {
        let node = def.node;
        let end = match def.body {
            Some(b) if b.start_byte() > node.start_byte() => b.start_byte(),
            _ => node.end_byte(),
        };
        let raw = self.text.get(node.start_byte()..end).unwrap_or_default();
        let raw = if def.body.is_none() { raw.lines().next().unwrap_or_default() } else { raw };
        let mut sig = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        while sig.ends_with(':') || sig.ends_with('{') || sig.ends_with(' ') || sig.ends_with("=>") {
            sig.pop();
            if sig.ends_with('=') {
                sig.pop();
            }
        }
        truncate_chars(&sig, MAX_SIGNATURE)
    }

    fn doc(&self, def: &Def<'_>) -> String {
        let raw = if self.lang == Lang::Python {
            python_docstring(def.body, self.text)
        } else {
            self.leading_comment(def.span)
        };
        let paragraph = raw.split("\n\n").find(|p| !p.trim().is_empty()).unwrap_or_default();
        truncate_chars(&paragraph.split_whitespace().collect::<Vec<_>>().join(" "), MAX_DOC)
    }

    /// Comments directly above a node (doc comments, `/** */` blocks), attributes skipped.
    fn leading_comment(&self, node: Node<'_>) -> String {
        let mut lines = Vec::new();
        let mut cur = node;
        // An export/template wrapper carries the comment.
        if let Some(p) = node.parent()
            && matches!(p.kind(), "export_statement" | "template_declaration")
        {
            cur = p;
        }
        let mut expected_row = cur.start_position().row;
        while let Some(prev) = cur.prev_sibling() {
            let kind = prev.kind();
            if prev.end_position().row + 1 < expected_row {
                break;
            }
            if kind == "attribute_item" || kind == "decorator" || kind == "annotation" {
                cur = prev;
                expected_row = prev.start_position().row;
                continue;
            }
            if !kind.contains("comment") {
                break;
            }
            lines.push(self.text_of(prev));
            cur = prev;
            expected_row = prev.start_position().row;
        }
        lines.reverse();
        let mut out = String::new();
        for l in lines {
            for line in l.lines() {
                let t = line
                    .trim()
                    .trim_start_matches("///")
                    .trim_start_matches("//!")
                    .trim_start_matches("//")
                    .trim_start_matches("/**")
                    .trim_start_matches("/*")
                    .trim_end_matches("*/")
                    .trim_start_matches('*')
                    .trim();
                if t.is_empty() {
                    out.push_str("\n\n");
                } else {
                    out.push_str(t);
                    out.push('\n');
                }
            }
        }
        out.trim().to_string()
    }

    // ---- definitions per language ----

    fn definition<'t>(&self, node: Node<'t>, parent: Option<u32>) -> Option<Def<'t>> {
        let kind = kind_name(self.lang, node);
        let class = |name: String, detail: &'static str, body: Option<Node<'t>>| Def {
            name,
            kind: EntityKind::Class,
            detail,
            span: node,
            first: None,
            node,
            body,
            owner: None,
        };
        let func = |name: String, detail: &'static str, body: Option<Node<'t>>| Def {
            name,
            kind: EntityKind::Function,
            detail,
            span: node,
            first: None,
            node,
            body,
            owner: None,
        };
        let name = |field: &str| self.field_text(node, field).map(str::to_string);
        let body = || self.child(node, "body");
        match self.lang {
            Lang::Python => match kind {
                "class_definition" => Some(Def { span: decorated(node), ..class(name("name")?, "class", body()) }),
                "function_definition" => Some(Def { span: decorated(node), ..func(name("name")?, "function", body()) }),
                _ => None,
            },
            Lang::Rust => match kind {
                "struct_item" => Some(Def { first: Some(attributed(node)), ..class(name("name")?, "struct", body()) }),
                "enum_item" => Some(Def { first: Some(attributed(node)), ..class(name("name")?, "enum", body()) }),
                "union_item" => Some(Def { first: Some(attributed(node)), ..class(name("name")?, "union", body()) }),
                "trait_item" => Some(Def { first: Some(attributed(node)), ..class(name("name")?, "trait", body()) }),
                "impl_item" => {
                    let ty = strip_generics(self.field_text(node, "type")?);
                    Some(Def { first: Some(attributed(node)), ..class(ty, "impl", body()) })
                }
                "mod_item" if body().is_some() => {
                    Some(Def { first: Some(attributed(node)), ..class(name("name")?, "module", body()) })
                }
                "function_item" | "function_signature_item" => {
                    Some(Def { first: Some(attributed(node)), ..func(name("name")?, "function", body()) })
                }
                _ => None,
            },
            Lang::JavaScript | Lang::TypeScript | Lang::Tsx => match kind {
                "class_declaration" | "abstract_class_declaration" | "class" => {
                    Some(class(name("name")?, "class", body()))
                }
                "interface_declaration" => Some(class(name("name")?, "interface", body())),
                "enum_declaration" => Some(class(name("name")?, "enum", body())),
                "internal_module" | "module" if body().is_some() => Some(class(name("name")?, "namespace", body())),
                "function_declaration" | "generator_function_declaration" => {
                    Some(func(name("name")?, "function", body()))
                }
                "method_definition" => Some(func(name("name")?, "method", body())),
                "variable_declarator" | "public_field_definition" | "field_definition" => {
                    let value = self.child(node, "value")?;
                    if !matches!(value.kind(), "arrow_function" | "function_expression" | "function") {
                        return None;
                    }
                    let n = self.child(node, "name").or_else(|| self.child(node, "property"))?;
                    if !matches!(n.kind(), "identifier" | "property_identifier" | "private_property_identifier") {
                        return None;
                    }
                    let span = node.parent().filter(|p| p.kind() == "lexical_declaration").unwrap_or(node);
                    Some(Def {
                        span,
                        body: self.child(value, "body"),
                        ..func(self.text_of(n).to_string(), "function", None)
                    })
                }
                _ => None,
            },
            Lang::Go => match kind {
                "function_declaration" => Some(func(name("name")?, "function", body())),
                "method_declaration" => {
                    let receiver = self.child(node, "receiver")?;
                    let owner = go_receiver_type(receiver, self.text);
                    Some(Def { owner, ..func(name("name")?, "method", body()) })
                }
                "type_spec" => {
                    let ty = self.child(node, "type")?;
                    let detail = match ty.kind() {
                        "struct_type" => "struct",
                        "interface_type" => "interface",
                        _ => return None,
                    };
                    let span = node.parent().filter(|p| p.kind() == "type_declaration").unwrap_or(node);
                    Some(Def { span, body: Some(ty), ..class(name("name")?, detail, None) })
                }
                _ => None,
            },
            Lang::Java => match kind {
                "class_declaration" => Some(class(name("name")?, "class", body())),
                "interface_declaration" => Some(class(name("name")?, "interface", body())),
                "enum_declaration" => Some(class(name("name")?, "enum", body())),
                "record_declaration" => Some(class(name("name")?, "record", body())),
                "annotation_type_declaration" => Some(class(name("name")?, "annotation", body())),
                "method_declaration" => Some(func(name("name")?, "method", body())),
                "constructor_declaration" | "compact_constructor_declaration" => {
                    Some(func(name("name")?, "constructor", body()))
                }
                _ => None,
            },
            Lang::C | Lang::Cpp => match kind {
                "function_definition" => {
                    let declarator = self.child(node, "declarator")?;
                    let (owner, fname) = c_function_name(declarator, self.text)?;
                    let owner = owner.filter(|_| parent.is_none() || self.lang == Lang::Cpp);
                    Some(Def { owner, ..func(fname, "function", body()) })
                }
                "struct_specifier" | "union_specifier" | "enum_specifier" | "class_specifier" if body().is_some() => {
                    let detail = match kind {
                        "struct_specifier" => "struct",
                        "union_specifier" => "union",
                        "enum_specifier" => "enum",
                        _ => "class",
                    };
                    let n = match name("name") {
                        Some(n) => strip_generics(&n),
                        None => {
                            // `typedef struct { ... } Name;`
                            let td = node.parent().filter(|p| p.kind() == "type_definition")?;
                            self.field_text(td, "declarator")?.to_string()
                        }
                    };
                    let span = node.parent().filter(|p| p.kind() == "type_definition").unwrap_or(node);
                    Some(Def { span, ..class(n, detail, body()) })
                }
                "namespace_definition" => {
                    let n = name("name").unwrap_or_else(|| "(anonymous)".into()).replace("::", ".");
                    Some(class(n, "namespace", body()))
                }
                _ => None,
            },
        }
    }

    /// Base classes and the like, recorded once the class entity exists.
    fn after_definition(&mut self, node: Node<'_>, idx: u32) {
        let mut bases: Vec<(String, Option<String>, u32)> = Vec::new();
        let mut push = |text: &str, line: u32| {
            let t = strip_generics(text.trim().trim_start_matches('*').trim_start_matches('&'));
            if t.is_empty() {
                return;
            }
            let (qualifier, name) = split_qualified(&t);
            bases.push((name, qualifier, line));
        };
        match (self.lang, node.kind()) {
            (Lang::Python, "class_definition") => {
                if let Some(args) = self.child(node, "superclasses") {
                    let mut c = args.walk();
                    for arg in args.named_children(&mut c) {
                        if matches!(arg.kind(), "identifier" | "attribute") {
                            push(self.text_of(arg), Self::line(arg));
                        }
                    }
                }
            }
            (Lang::Rust, "impl_item") => {
                if let Some(t) = self.child(node, "trait") {
                    push(self.text_of(t), Self::line(t));
                }
            }
            (Lang::Rust, "trait_item") => {
                if let Some(b) = self.child(node, "bounds") {
                    for t in named_descendants(b, &["type_identifier", "scoped_type_identifier"]) {
                        push(self.text_of(t), Self::line(t));
                    }
                }
            }
            (Lang::JavaScript | Lang::TypeScript | Lang::Tsx, _) => {
                let mut c = node.walk();
                for child in node.named_children(&mut c) {
                    if matches!(child.kind(), "class_heritage" | "extends_type_clause") {
                        for t in named_descendants(
                            child,
                            &["identifier", "type_identifier", "member_expression", "nested_type_identifier"],
                        ) {
                            push(self.text_of(t), Self::line(t));
                        }
                    }
                }
            }
            (Lang::Go, "type_spec") => {
                if let Some(ty) = self.child(node, "type") {
                    let mut c = ty.walk();
                    for list in ty.named_children(&mut c) {
                        let mut c2 = list.walk();
                        for f in list.named_children(&mut c2) {
                            let embedded = match f.kind() {
                                "field_declaration" if self.child(f, "name").is_none() => self.child(f, "type"),
                                "type_elem" => f.named_child(0),
                                _ => None,
                            };
                            if let Some(t) = embedded {
                                push(self.text_of(t), Self::line(t));
                            }
                        }
                        if list.kind() == "type_elem"
                            && let Some(t) = list.named_child(0)
                        {
                            push(self.text_of(t), Self::line(t));
                        }
                    }
                }
            }
            (Lang::Java, _) => {
                for field in ["superclass", "interfaces"] {
                    if let Some(n) = self.child(node, field) {
                        for t in named_descendants(n, &["type_identifier", "scoped_type_identifier"]) {
                            push(self.text_of(t), Self::line(t));
                        }
                    }
                }
                let mut c = node.walk();
                for child in node.named_children(&mut c) {
                    if child.kind() == "extends_interfaces" {
                        for t in named_descendants(child, &["type_identifier", "scoped_type_identifier"]) {
                            push(self.text_of(t), Self::line(t));
                        }
                    }
                }
            }
            (Lang::Cpp, "class_specifier" | "struct_specifier") => {
                let mut c = node.walk();
                for child in node.named_children(&mut c) {
                    if child.kind() == "base_class_clause" {
                        for t in named_descendants(child, &["type_identifier", "qualified_identifier", "template_type"])
                        {
                            push(self.text_of(t), Self::line(t));
                        }
                    }
                }
            }
            _ => {}
        }
        for (name, qualifier, line) in bases {
            self.facts.bases.push(Reference { from: Some(idx), name, qualifier, line });
        }
    }

    // ---- calls and imports ----

    /// Records calls and imports; returns true when the node's subtree needs no further walk.
    fn reference(&mut self, node: Node<'_>, parent: Option<u32>) -> bool {
        let kind = kind_name(self.lang, node);
        // Most nodes are none of the kinds below: the line is computed only for those that are.
        let line = || Self::line(node);
        match self.lang {
            Lang::Python => match kind {
                "call" => {
                    if let Some(f) = self.child(node, "function") {
                        self.call_target(f, parent, line(), "attribute", "object", "attribute");
                    }
                }
                "import_statement" => {
                    let mut c = node.walk();
                    for child in node.named_children(&mut c) {
                        let (module, alias) = match child.kind() {
                            "dotted_name" => (self.text_of(child), None),
                            "aliased_import" => (
                                self.field_text(child, "name").unwrap_or_default(),
                                self.field_text(child, "alias").map(str::to_string),
                            ),
                            _ => continue,
                        };
                        let alias = alias.or_else(|| Some(module.to_string()));
                        self.import(module.to_string(), Vec::new(), alias, false, line());
                    }
                    return true;
                }
                "import_from_statement" => {
                    let module = self.field_text(node, "module_name").unwrap_or_default().to_string();
                    let mut names = Vec::new();
                    let mut wildcard = false;
                    let mut c = node.walk();
                    for child in node.children_by_field_name("name", &mut c) {
                        names.push(match child.kind() {
                            "aliased_import" => ImportedName {
                                name: self.field_text(child, "name").unwrap_or_default().to_string(),
                                alias: self.field_text(child, "alias").map(str::to_string),
                            },
                            _ => ImportedName { name: self.text_of(child).to_string(), alias: None },
                        });
                    }
                    let mut c = node.walk();
                    if node.named_children(&mut c).any(|n| n.kind() == "wildcard_import") {
                        wildcard = true;
                    }
                    self.import(module, names, None, wildcard, line());
                    return true;
                }
                _ => {}
            },
            Lang::Rust => match kind {
                "call_expression" => {
                    if let Some(f) = self.child(node, "function") {
                        let f = if f.kind() == "generic_function" { self.child(f, "function").unwrap_or(f) } else { f };
                        match f.kind() {
                            "scoped_identifier" => {
                                let q = self.field_text(f, "path").map(strip_generics);
                                let n = self.field_text(f, "name").unwrap_or_default().to_string();
                                self.call(parent, n, q, line());
                            }
                            _ => self.call_target(f, parent, line(), "field_expression", "value", "field"),
                        }
                    }
                }
                "use_declaration" => {
                    if let Some(arg) = self.child(node, "argument") {
                        self.rust_use(arg, "", line());
                    }
                    return true;
                }
                "mod_item" if self.child(node, "body").is_none() => {
                    if let Some(n) = self.field_text(node, "name") {
                        self.import(format!("mod:{n}"), Vec::new(), Some(n.to_string()), false, line());
                    }
                    return true;
                }
                _ => {}
            },
            Lang::JavaScript | Lang::TypeScript | Lang::Tsx => match kind {
                "call_expression" => {
                    if let Some(f) = self.child(node, "function") {
                        if f.kind() == "identifier" && self.text_of(f) == "require" {
                            if let Some(s) = self
                                .child(node, "arguments")
                                .and_then(|a| a.named_child(0))
                                .filter(|a| a.kind() == "string")
                            {
                                let module = unquote(self.text_of(s)).to_string();
                                // `const util = require('./util')` binds the module to `util`.
                                let alias = node
                                    .parent()
                                    .filter(|p| p.kind() == "variable_declarator")
                                    .and_then(|p| self.child(p, "name"))
                                    .filter(|n| n.kind() == "identifier")
                                    .map(|n| self.text_of(n).to_string());
                                self.import(module, Vec::new(), alias, false, line());
                            }
                        } else {
                            self.call_target(f, parent, line(), "member_expression", "object", "property");
                        }
                    }
                }
                "new_expression" => {
                    if let Some(f) = self.child(node, "constructor") {
                        self.call_target(f, parent, line(), "member_expression", "object", "property");
                    }
                }
                "import_statement" | "export_statement" => {
                    if let Some(source) = self.child(node, "source") {
                        let module = unquote(self.text_of(source)).to_string();
                        let mut names = Vec::new();
                        let mut alias = None;
                        for n in named_descendants(node, &["import_specifier", "export_specifier", "namespace_import"])
                        {
                            if n.kind() == "namespace_import" {
                                alias = n.named_child(0).map(|i| self.text_of(i).to_string());
                            } else if let Some(name) = self.field_text(n, "name") {
                                names.push(ImportedName {
                                    name: name.to_string(),
                                    alias: self.field_text(n, "alias").map(str::to_string),
                                });
                            }
                        }
                        let mut c = node.walk();
                        for child in node.named_children(&mut c) {
                            if child.kind() == "import_clause"
                                && let Some(default) = child.named_child(0).filter(|d| d.kind() == "identifier")
                            {
                                names.push(ImportedName {
                                    name: "default".into(),
                                    alias: Some(self.text_of(default).to_string()),
                                });
                            }
                        }
                        let wildcard = kind == "export_statement" && names.is_empty() && alias.is_none();
                        self.import(module, names, alias, wildcard, line());
                        return true;
                    }
                }
                _ => {}
            },
            Lang::Go => match kind {
                "call_expression" => {
                    if let Some(f) = self.child(node, "function") {
                        self.call_target(f, parent, line(), "selector_expression", "operand", "field");
                    }
                }
                "import_spec" => {
                    let path = unquote(self.field_text(node, "path").unwrap_or_default()).to_string();
                    let alias = self
                        .field_text(node, "name")
                        .map(str::to_string)
                        .or_else(|| path.rsplit('/').next().map(str::to_string));
                    let wildcard = alias.as_deref() == Some(".");
                    self.import(path, Vec::new(), alias, wildcard, Self::line(node));
                    return true;
                }
                _ => {}
            },
            Lang::Java => match kind {
                "method_invocation" => {
                    let name = self.field_text(node, "name").unwrap_or_default().to_string();
                    let q = self.field_text(node, "object").map(str::to_string);
                    self.call(parent, name, q, line());
                }
                "object_creation_expression" => {
                    if let Some(t) = self.field_text(node, "type") {
                        let (q, n) = split_qualified(&strip_generics(t));
                        self.call(parent, n, q, line());
                    }
                }
                "import_declaration" => {
                    let mut c = node.walk();
                    let wildcard = node.children(&mut c).any(|n| n.kind() == "asterisk");
                    let path = named_descendants(node, &["scoped_identifier", "identifier"])
                        .first()
                        .map(|n| self.text_of(*n).to_string())
                        .unwrap_or_default();
                    if wildcard {
                        self.import(path, Vec::new(), None, true, line());
                    } else if let Some((module, name)) = path.rsplit_once('.') {
                        let names = vec![ImportedName { name: name.to_string(), alias: None }];
                        self.import(module.to_string(), names, None, false, line());
                    }
                    return true;
                }
                _ => {}
            },
            Lang::C | Lang::Cpp => match kind {
                "call_expression" => {
                    if let Some(f) = self.child(node, "function") {
                        match f.kind() {
                            "qualified_identifier" => {
                                let (q, n) = split_qualified(&strip_generics(self.text_of(f)));
                                self.call(parent, n, q, line());
                            }
                            "template_function" => {
                                if let Some(n) = self.field_text(f, "name") {
                                    let (q, n) = split_qualified(n);
                                    self.call(parent, n, q, line());
                                }
                            }
                            _ => self.call_target(f, parent, line(), "field_expression", "argument", "field"),
                        }
                    }
                }
                "preproc_include" => {
                    if let Some(p) = self.field_text(node, "path") {
                        self.import(p.to_string(), Vec::new(), None, false, line());
                    }
                    return true;
                }
                _ => {}
            },
        }
        false
    }

    /// A call whose callee is an identifier or a member access `object.field`.
    fn call_target(&mut self, f: Node<'_>, parent: Option<u32>, line: u32, member: &str, object: &str, field: &str) {
        if f.kind() == member {
            let q = self.field_text(f, object).map(|s| s.split_whitespace().collect::<String>());
            if let Some(n) = self.field_text(f, field) {
                self.call(parent, n.to_string(), q, line);
            }
        } else if matches!(f.kind(), "identifier" | "field_identifier" | "type_identifier") {
            self.call(parent, self.text_of(f).to_string(), None, line);
        }
    }

    fn call(&mut self, from: Option<u32>, name: String, qualifier: Option<String>, line: u32) {
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            return;
        }
        let qualifier = qualifier.filter(|q| q.len() <= 120);
        self.facts.calls.push(Reference { from, name, qualifier, line });
    }

    fn import(&mut self, module: String, names: Vec<ImportedName>, alias: Option<String>, wildcard: bool, line: u32) {
        self.facts.imports.push(Import { module, names, alias, wildcard, line });
    }

    /// Flattens a Rust `use` tree into one import per leaf.
    fn rust_use(&mut self, node: Node<'_>, prefix: &str, line: u32) {
        let join = |a: &str, b: &str| {
            if a.is_empty() {
                b.to_string()
            } else if b.is_empty() {
                a.to_string()
            } else {
                format!("{a}::{b}")
            }
        };
        match node.kind() {
            "scoped_identifier" | "identifier" | "self" | "crate" | "super" => {
                let full = join(prefix, self.text_of(node));
                let (module, name) = full.rsplit_once("::").unwrap_or(("", full.as_str()));
                if name == "self" {
                    let (m, n) = module.rsplit_once("::").unwrap_or(("", module));
                    let names = vec![ImportedName { name: n.to_string(), alias: None }];
                    self.import(m.to_string(), names, None, false, line);
                } else {
                    let names = vec![ImportedName { name: name.to_string(), alias: None }];
                    self.import(module.to_string(), names, None, false, line);
                }
            }
            "use_as_clause" => {
                let path = join(prefix, self.field_text(node, "path").unwrap_or_default());
                let alias = self.field_text(node, "alias").map(str::to_string);
                let (module, name) = path.rsplit_once("::").unwrap_or(("", path.as_str()));
                let names = vec![ImportedName { name: name.to_string(), alias }];
                self.import(module.to_string(), names, None, false, line);
            }
            "scoped_use_list" => {
                let p = join(prefix, self.field_text(node, "path").unwrap_or_default());
                if let Some(list) = self.child(node, "list") {
                    self.rust_use(list, &p, line);
                }
            }
            "use_list" => {
                let mut c = node.walk();
                let children: Vec<Node<'_>> = node.named_children(&mut c).collect();
                for child in children {
                    self.rust_use(child, prefix, line);
                }
            }
            "use_wildcard" => {
                let path = node.named_child(0).map(|n| self.text_of(n)).unwrap_or_default();
                self.import(join(prefix, path), Vec::new(), None, true, line);
            }
            _ => {}
        }
    }
}

/// The decorated definition around a Python definition, or the node itself.
fn decorated(node: Node<'_>) -> Node<'_> {
    node.parent().filter(|p| p.kind() == "decorated_definition").unwrap_or(node)
}

/// The first attribute (`#[derive(..)]`, `#[test]`) directly above a Rust item, or the item.
fn attributed(node: Node<'_>) -> Node<'_> {
    let mut first = node;
    while let Some(prev) = first.prev_sibling() {
        if prev.kind() == "attribute_item" && prev.end_position().row + 1 >= first.start_position().row {
            first = prev;
        } else {
            break;
        }
    }
    first
}

/// The Python docstring: the first statement of the body, when it is a string.
fn python_docstring(body: Option<Node<'_>>, text: &str) -> String {
    let Some(body) = body else { return String::new() };
    let Some(first) = body.named_child(0) else { return String::new() };
    if first.kind() != "expression_statement" {
        return String::new();
    }
    let Some(s) = first.named_child(0).filter(|s| s.kind() == "string") else { return String::new() };
    let raw = text.get(s.byte_range()).unwrap_or_default();
    let raw = raw.trim_start_matches(['r', 'u', 'b', 'R', 'U', 'B']);
    raw.trim_matches('"').trim_matches('\'').trim().to_string()
}

fn go_receiver_type(receiver: Node<'_>, text: &str) -> Option<String> {
    let param = receiver.named_child(0)?;
    let ty = param.child_by_field_name("type")?;
    let t = text.get(ty.byte_range())?;
    Some(strip_generics(t.trim_start_matches('*')))
}

/// The (owner, name) of a C/C++ function declarator: `Foo::bar` → (Foo, bar).
fn c_function_name(declarator: Node<'_>, text: &str) -> Option<(Option<String>, String)> {
    let mut d = declarator;
    for _ in 0..8 {
        match d.kind() {
            "function_declarator" | "pointer_declarator" | "reference_declarator" | "parenthesized_declarator" => {
                d = d.child_by_field_name("declarator").or_else(|| d.named_child(0))?;
            }
            "identifier" | "field_identifier" | "destructor_name" | "operator_name" => {
                return Some((None, text.get(d.byte_range())?.to_string()));
            }
            "qualified_identifier" | "template_function" => {
                let full = strip_generics(text.get(d.byte_range())?);
                let (q, n) = split_qualified(&full);
                return Some((q.map(|q| q.replace("::", ".")), n));
            }
            _ => return None,
        }
    }
    None
}

/// `a.b.C` / `a::b::C` → (Some("a.b"), "C"); `C` → (None, "C").
fn split_qualified(text: &str) -> (Option<String>, String) {
    let t = text.trim();
    if let Some((q, n)) = t.rsplit_once("::") {
        return (Some(q.to_string()), n.to_string());
    }
    if let Some((q, n)) = t.rsplit_once('.') {
        return (Some(q.to_string()), n.to_string());
    }
    (None, t.to_string())
}

/// Removes generic arguments: `Foo<T>` → `Foo`, `Vec<Box<T>>` → `Vec`, `&'a mut Foo` → `Foo`.
fn strip_generics(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '<' | '[' => depth += 1,
            '>' | ']' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    let out = out.trim();
    let out = out.trim_start_matches('&').trim_start_matches("mut ").trim_start_matches("dyn ");
    out.split_whitespace().last().unwrap_or_default().to_string()
}

fn unquote(text: &str) -> &str {
    text.trim().trim_matches(|c| c == '"' || c == '\'' || c == '`')
}

fn truncate_chars(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max).collect();
    out.push('…');
    out
}

/// Named descendants of the given kinds (not descending into a match, nor into type arguments).
fn named_descendants<'t>(node: Node<'t>, kinds: &[&str]) -> Vec<Node<'t>> {
    let mut out = Vec::new();
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        let mut c = n.walk();
        let children: Vec<Node<'t>> = n.named_children(&mut c).collect();
        for child in children.into_iter().rev() {
            if kinds.contains(&child.kind()) {
                out.push(child);
            } else if !matches!(
                child.kind(),
                "type_arguments" | "type_parameters" | "arguments" | "template_argument_list"
            ) {
                stack.push(child);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sources that exercise every definition and reference the extractor knows, per language.
    const SAMPLES: &[(Lang, &str)] = &[
        (
            Lang::Python,
            "import os, sys as system\nfrom .models import (Model, Field as F)\nfrom x import *\n\n@decorator(arg())\nclass A(Base, mod.Mixin):\n    \"\"\"Doc.\"\"\"\n    x = f\"{call(1)}\"\n    def m(self, y=default()):\n        return self.other(len(y))[0].attr.go()\n\nasync def g():\n    lambda: h()\n    await k()\n",
        ),
        (
            Lang::Rust,
            "use std::{io, fmt::Write as _};\nmod inner;\nmod outer { pub fn f() {} }\n#[derive(Debug)]\npub struct S<T> { t: T }\nenum E { A }\nunion U { a: u8 }\ntrait Tr: Clone + fmt::Debug { fn req(&self); }\nimpl<T> Tr for S<T> { fn req(&self) { helper::<u8>(); self.t.m(); Vec::<u8>::new(); } }\nfn main() { let c = |x| g(x); c(1); }\n",
        ),
        (
            Lang::JavaScript,
            "import d, { a, b as c } from './m';\nimport * as ns from 'ns';\nexport * from './all';\nexport { e } from './e';\nconst u = require('./u');\nclass K extends Base { m() { return this.x.y(); } field = () => z(); }\nfunction* gen() { yield new Thing(); }\nconst arrow = (p) => { q(p); };\nlet fe = function () { r(); };\nconst tpl = `${tagged(1)}`;\n",
        ),
        (
            Lang::TypeScript,
            "import { T } from './t';\nexport interface I extends J<number> { id: number }\nexport enum Color { Red }\nnamespace N { export function f(): void { g(); } }\nabstract class A implements I { private h = (): void => k(); abstract m(): void; }\nexport class B extends A { m() { new C<T>(); } }\n",
        ),
        (
            Lang::Tsx,
            "import React from 'react';\nexport function App() { return <div onClick={() => go()}>{render()}</div>; }\n",
        ),
        (
            Lang::Go,
            "package p\nimport (\n  \"fmt\"\n  s \"strings\"\n  . \"math\"\n)\ntype T struct { Base; x int }\ntype I interface { Other; M() }\nfunc (t *T) M() { fmt.Println(s.ToUpper(\"a\")); helper() }\nfunc helper() {}\n",
        ),
        (
            Lang::Java,
            "package a;\nimport java.util.List;\nimport java.io.*;\n@interface Ann {}\nrecord R(int x) { R { check(); } }\nenum E { A }\ninterface I extends J, K {}\npublic class C extends B implements I { C() { super(); } void m() { List<String> l = new ArrayList<>(); l.add(x.y()); } }\n",
        ),
        (
            Lang::C,
            "#include <stdio.h>\n#include \"local.h\"\ntypedef struct { int a; } T;\nstruct S { int b; };\nunion U { int c; };\nenum E { A };\nint main(void) { printf(\"x\"); s->f(1); return g(); }\n",
        ),
        (
            Lang::Cpp,
            "#include <vector>\nnamespace n { class C : public B, private std::D<int> { void m() { std::sort(v.begin(), v.end()); f<int>(); obj.run(); } }; }\nnamespace { struct S {}; }\nvoid C::m2() { helper(); }\ntemplate <class T> T id(T t) { return t; }\n",
        ),
    ];

    /// The kind-id filter, the leaf skip and the opaque kinds change nothing: a walk that looks
    /// at every node extracts the same facts. A kind acted on but missing from
    /// `handled_kind_names`, or an opaque kind that holds something recorded, fails here.
    #[test]
    fn every_kind_acted_on_is_listed() {
        for (lang, text) in SAMPLES {
            let all = WalkKinds { handled: KindSet::all(*lang), opaque: KindSet::new(*lang, &[]) };
            let all: &'static WalkKinds = Box::leak(Box::new(all));
            let filtered = extract(*lang, text);
            assert_eq!(filtered, extract_with(*lang, text, all), "{lang:?}");
            assert!(!filtered.entities.is_empty() && !filtered.calls.is_empty(), "{lang:?}: {filtered:?}");
        }
    }

    /// Every listed kind exists in a grammar of its family (a misspelt name would never match;
    /// JavaScript shares TypeScript's list, C shares C++'s).
    #[test]
    fn every_listed_kind_is_in_its_grammar() {
        for (lang, _) in SAMPLES {
            let family: Vec<Lang> = SAMPLES.iter().map(|(l, _)| *l).filter(|l| l.family() == lang.family()).collect();
            for kind in handled_kind_names(*lang).iter().chain(opaque_kind_names(*lang)) {
                let known = family.iter().any(|l| l.grammar().id_for_node_kind(kind, true) != 0);
                assert!(known, "no grammar of {lang:?}'s family has a kind {kind}");
            }
        }
    }
}
