//! The languages rigor understands, their tree-sitter grammars, and syntax checking.
//!
//! A [`Lang`] is chosen from a file's extension. [`syntax_errors`] parses a text with the
//! language's grammar and lists where it does not parse (tree-sitter `ERROR` and `MISSING`
//! nodes); the editor's syntax check and the graph builder share these grammars. This module does
//! not extract entities (see `extract`) and does not read files.

use std::num::NonZeroU16;
use std::path::Path;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use tree_sitter::{Language, Node, Parser};

/// A language with a tree-sitter grammar in rigor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum Lang {
    /// Python (`.py`, `.pyi`).
    Python,
    /// Rust (`.rs`).
    Rust,
    /// JavaScript (`.js`, `.jsx`, `.mjs`, `.cjs`).
    JavaScript,
    /// TypeScript (`.ts`, `.mts`, `.cts`).
    TypeScript,
    /// TypeScript with JSX (`.tsx`).
    Tsx,
    /// Go (`.go`).
    Go,
    /// Java (`.java`).
    Java,
    /// C (`.c`, `.h`).
    C,
    /// C++ (`.cc`, `.cpp`, `.cxx`, `.hpp`, `.hh`, `.hxx`).
    Cpp,
}

impl Lang {
    /// The language of a path, from its extension.
    pub fn from_path(path: &Path) -> Option<Lang> {
        let ext = path.extension()?.to_str()?;
        Some(match ext {
            "py" | "pyi" => Lang::Python,
            "rs" => Lang::Rust,
            "js" | "jsx" | "mjs" | "cjs" => Lang::JavaScript,
            "ts" | "mts" | "cts" => Lang::TypeScript,
            "tsx" => Lang::Tsx,
            "go" => Lang::Go,
            "java" => Lang::Java,
            "c" | "h" => Lang::C,
            "cc" | "cpp" | "cxx" | "c++" | "hpp" | "hh" | "hxx" | "h++" | "ipp" => Lang::Cpp,
            _ => return None,
        })
    }

    /// The tree-sitter grammar.
    pub fn grammar(self) -> Language {
        match self {
            Lang::Python => tree_sitter_python::LANGUAGE.into(),
            Lang::Rust => tree_sitter_rust::LANGUAGE.into(),
            Lang::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Lang::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Lang::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Lang::Go => tree_sitter_go::LANGUAGE.into(),
            Lang::Java => tree_sitter_java::LANGUAGE.into(),
            Lang::C => tree_sitter_c::LANGUAGE.into(),
            Lang::Cpp => tree_sitter_cpp::LANGUAGE.into(),
        }
    }

    /// A short lowercase name (`python`, `rust`, `typescript`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Lang::Python => "python",
            Lang::Rust => "rust",
            Lang::JavaScript => "javascript",
            Lang::TypeScript => "typescript",
            Lang::Tsx => "tsx",
            Lang::Go => "go",
            Lang::Java => "java",
            Lang::C => "c",
            Lang::Cpp => "cpp",
        }
    }

    /// Whether two languages share a module namespace (JS and TS import each other; C and C++ too).
    pub fn family(self) -> u8 {
        match self {
            Lang::Python => 0,
            Lang::Rust => 1,
            Lang::JavaScript | Lang::TypeScript | Lang::Tsx => 2,
            Lang::Go => 3,
            Lang::Java => 4,
            Lang::C | Lang::Cpp => 5,
        }
    }
}

/// The kind of `node` (a node of a `lang` tree), as [`Node::kind`] gives it but from a table made
/// once per grammar: `Node::kind` measures and checks the grammar's C string on every call,
/// which shows when every node of a large repository is looked at.
pub fn kind_name<'t>(lang: Lang, node: Node<'t>) -> &'t str {
    static TABLES: [OnceLock<Vec<Box<str>>>; 9] = [const { OnceLock::new() }; 9];
    let table = TABLES[lang as usize].get_or_init(|| {
        let grammar = lang.grammar();
        (0..grammar.node_kind_count())
            .map(|id| grammar.node_kind_for_id(id as u16).unwrap_or_default().into())
            .collect()
    });
    match table.get(usize::from(node.kind_id())) {
        Some(kind) => kind,
        None => node.kind(),
    }
}

/// A grammar's field names, sorted, with their ids.
type FieldTable = Vec<(Box<str>, NonZeroU16)>;

/// The id of the field `name` in `lang`'s grammar, `None` when it has no such field: a binary
/// search of a table made once per grammar (tree-sitter's own lookup compares the name with the
/// grammar's field names one by one).
pub fn field_id(lang: Lang, name: &str) -> Option<NonZeroU16> {
    static TABLES: [OnceLock<FieldTable>; 9] = [const { OnceLock::new() }; 9];
    let table = TABLES[lang as usize].get_or_init(|| {
        let grammar = lang.grammar();
        let mut fields: FieldTable = (1..=grammar.field_count() as u16)
            .filter_map(|id| Some((grammar.field_name_for_id(id)?.into(), NonZeroU16::new(id)?)))
            .collect();
        fields.sort();
        fields
    });
    let at = table.binary_search_by(|(field, _)| (**field).cmp(name)).ok()?;
    Some(table[at].1)
}

/// A set of node kinds of one grammar, answered by one table lookup on the node's kind id (a
/// string comparison per node adds up over every node of a repository).
pub struct KindSet {
    member: Vec<bool>,
}

impl KindSet {
    /// The kinds of `lang` named `kinds` (every id with that name: a kind can have several).
    pub fn new(lang: Lang, kinds: &[&str]) -> KindSet {
        let grammar = lang.grammar();
        let member = (0..grammar.node_kind_count())
            .map(|id| grammar.node_kind_for_id(id as u16).is_some_and(|k| kinds.contains(&k)))
            .collect();
        KindSet { member }
    }

    /// Every kind of `lang`.
    pub fn all(lang: Lang) -> KindSet {
        KindSet { member: vec![true; lang.grammar().node_kind_count()] }
    }

    /// Whether `node` (of a tree of this set's language) is of one of the kinds.
    pub fn contains(&self, node: Node<'_>) -> bool {
        self.member.get(usize::from(node.kind_id())).copied().unwrap_or(false)
    }
}

/// A parser for `lang`, or `None` if the grammar's ABI is not accepted by the linked library.
pub fn parser_for(lang: Lang) -> Option<Parser> {
    let mut parser = Parser::new();
    parser.set_language(&lang.grammar()).ok()?;
    Some(parser)
}

/// Routes tree-sitter's own allocations (parse trees, parser stacks: many small blocks) to
/// mimalloc, which serves them markedly faster than the C library's `malloc` (about 8% of a cold
/// index of Django).
///
/// # Safety
/// Call it before any other tree-sitter call of the process, while no other thread exists (the
/// start of `main`), and at most once.
pub unsafe fn use_fast_allocator() {
    use std::ffi::c_void;
    unsafe extern "C" fn calloc(count: usize, size: usize) -> *mut c_void {
        match count.checked_mul(size) {
            // SAFETY: mimalloc's zeroing allocator, for a size that did not overflow.
            Some(total) => unsafe { libmimalloc_sys::mi_zalloc(total) },
            None => std::ptr::null_mut(),
        }
    }
    let allocator = tree_sitter::Allocator {
        malloc: libmimalloc_sys::mi_malloc,
        calloc,
        realloc: libmimalloc_sys::mi_realloc,
        free: libmimalloc_sys::mi_free,
    };
    // SAFETY: one allocator family (mimalloc); the caller guarantees the timing (see above).
    unsafe { tree_sitter::set_allocator(Some(allocator)) };
}

/// One place where a text does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in bytes).
    pub column: usize,
    /// What is wrong: `unexpected "…"` or `missing "…"`.
    pub message: String,
}

/// At most this many errors are collected.
const MAX_ERRORS: usize = 5;

/// The syntax errors of `text` in `lang` (empty when it parses cleanly).
pub fn syntax_errors(lang: Lang, text: &str) -> Vec<SyntaxError> {
    let Some(mut parser) = parser_for(lang) else { return Vec::new() };
    let Some(tree) = parser.parse(text, None) else { return Vec::new() };
    let root = tree.root_node();
    let mut errors = Vec::new();
    if root.has_error() {
        collect_errors(root, text, &mut errors);
    }
    if lang == Lang::Python {
        unexpected_indents(root, text, &mut errors);
    }
    errors
}

/// Python's "unexpected indent": a module-level statement that begins its line indented, which
/// tree-sitter's grammar accepts (it tracks indentation only inside blocks). Measured: a small
/// model rewrote a whole module indented by eight spaces, and the edit passed the check.
fn unexpected_indents(root: Node<'_>, text: &str, out: &mut Vec<SyntaxError>) {
    let mut cursor = root.walk();
    for statement in root.named_children(&mut cursor) {
        let pos = statement.start_position();
        let line_start = statement.start_byte() - pos.column;
        let begins_line = text.get(line_start..statement.start_byte()).is_some_and(|s| s.trim().is_empty());
        if out.len() >= MAX_ERRORS {
            return;
        }
        if pos.column > 0 && begins_line && statement.kind() != "comment" {
            out.push(SyntaxError { line: pos.row + 1, column: pos.column + 1, message: "unexpected indent".into() });
        }
    }
}

fn collect_errors(node: Node<'_>, text: &str, out: &mut Vec<SyntaxError>) {
    if out.len() >= MAX_ERRORS {
        return;
    }
    if node.is_missing() {
        let pos = node.start_position();
        out.push(SyntaxError {
            line: pos.row + 1,
            column: pos.column + 1,
            message: format!("missing `{}`", node.kind()),
        });
        return;
    }
    if node.is_error() {
        let pos = node.start_position();
        let snippet: String = text
            .get(node.byte_range())
            .unwrap_or_default()
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(40)
            .collect();
        out.push(SyntaxError { line: pos.row + 1, column: pos.column + 1, message: format!("unexpected `{snippet}`") });
        return;
    }
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        if child.has_error() || child.is_missing() {
            collect_errors(child, text, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_ids_are_the_grammars_own() {
        for lang in [
            Lang::Python,
            Lang::Rust,
            Lang::JavaScript,
            Lang::TypeScript,
            Lang::Tsx,
            Lang::Go,
            Lang::Java,
            Lang::C,
            Lang::Cpp,
        ] {
            let grammar = lang.grammar();
            for id in 1..=grammar.field_count() as u16 {
                let name = grammar.field_name_for_id(id).unwrap_or_default();
                assert_eq!(
                    field_id(lang, name).map(|f| f.get()),
                    grammar.field_id_for_name(name).map(|f| f.get()),
                    "{lang:?} {name}"
                );
            }
            assert_eq!(field_id(lang, "no_such_field"), None);
            assert_eq!(field_id(lang, ""), None);
        }
    }

    #[test]
    fn every_grammar_loads_and_parses_clean_code() {
        let samples = [
            (Lang::Python, "def f(x):\n    return x\n"),
            (Lang::Rust, "fn f(x: u8) -> u8 { x }\n"),
            (Lang::JavaScript, "function f(x) { return x; }\n"),
            (Lang::TypeScript, "function f(x: number): number { return x; }\n"),
            (Lang::Tsx, "const a = <div>{1}</div>;\n"),
            (Lang::Go, "package p\nfunc f(x int) int { return x }\n"),
            (Lang::Java, "class A { int f(int x) { return x; } }\n"),
            (Lang::C, "int f(int x) { return x; }\n"),
            (Lang::Cpp, "namespace n { int f(int x) { return x; } }\n"),
        ];
        for (lang, text) in samples {
            assert!(parser_for(lang).is_some(), "{lang:?}");
            assert_eq!(syntax_errors(lang, text), vec![], "{lang:?}");
        }
    }

    #[test]
    fn a_broken_text_reports_the_line() {
        let errors = syntax_errors(Lang::Python, "def f(x):\n    return (x\n\ndef g():\n    pass\n");
        assert!(!errors.is_empty());
        assert!(errors[0].line >= 2, "{errors:?}");
        assert!(!syntax_errors(Lang::Rust, "fn f( { }").is_empty());
    }

    #[test]
    fn an_indented_module_level_statement_is_an_error_as_in_python() {
        let indented = "\"\"\n        def f(x):\n            return x\n";
        let errors = syntax_errors(Lang::Python, indented);
        assert_eq!(errors, vec![SyntaxError { line: 2, column: 9, message: "unexpected indent".into() }]);
        // Statements after a semicolon, indented comments and continuation lines are fine.
        let fine = "x = 1; y = 2\n    # a comment\nz = (1,\n     2)\ndef g():\n    pass\n";
        assert_eq!(syntax_errors(Lang::Python, fine), vec![]);
    }

    #[test]
    fn languages_come_from_extensions() {
        assert_eq!(Lang::from_path(Path::new("a/b.tsx")), Some(Lang::Tsx));
        assert_eq!(Lang::from_path(Path::new("a/b.hpp")), Some(Lang::Cpp));
        assert_eq!(Lang::from_path(Path::new("README.md")), None);
    }
}
