//! Drafts for a small model ([`rigor_tools::Draft`]): a reproduction test and a fix of the Python
//! function the issue names, each asked for in a short request of its own, the way Agentless
//! asks for a repair, and put in place with the `edit` tool.
//!
//! Measured on the bundled example with Qwen2.5-Coder-1.5B at temperature 0: asked for the whole
//! fixed function with the issue and the function in front of it, it wrote the right fix; asked for
//! a test with the function's docstring in view, it asserted a value of the docstring's own example
//! it had computed wrongly (`1d2h3m4s` = 93600), and with only the issue and the test file's imports
//! it asserted exactly the issue's values. So the test prompt shows the issue and how the existing
//! tests import the code, and the fix prompt the issue and the function.

use std::path::Path;
use std::sync::Arc;

use rigor_tools::Draft;
use serde_json::{Value, json};

use crate::extract::EntityKind;
use crate::graph::EdgeKind;
use crate::lang::{Lang, parser_for};
use crate::localize::{Retriever, is_test_path};
use crate::tools::named_entities;

/// Lines of the existing test file a test prompt shows at most (its imports).
const MAX_HEADER_LINES: usize = 20;
/// The output limit of a test draft: a test of the issue's examples is short; at the limit, a
/// small model enumerating cases (measured: `ordinal(1)` … `ordinal(67)`) is cut off, and its
/// complete statements are kept.
const TEST_OUTPUT_TOKENS: u32 = 512;
/// The output limit of a fix draft: the function's own size (about three characters a token)
/// and room for a change, at most this.
const MAX_FIX_OUTPUT_TOKENS: u32 = 1024;

/// Lines of a function a fix draft rewrites at most: a longer one would not fit a small model's
/// reply (its output limit), and a small model rewriting it whole changes more than the issue.
const MAX_FIX_LINES: usize = 80;

/// The drafts for `issue` in `root`: when the issue names a Python function or method (the first
/// that [`named_entities`] gives), a reproduction test beside the existing tests of its module
/// (when there are any), then a fix of it (when it has at most [`MAX_FIX_LINES`] lines). Empty
/// otherwise.
pub fn drafts(r: &Retriever, root: &Path, issue: &str) -> Vec<Arc<dyn Draft>> {
    let g = r.graph();
    let Some(&n) = named_entities(r, issue).first() else { return Vec::new() };
    let (Some(entity), path) = (g.entity(n), g.path_of(n).to_string()) else { return Vec::new() };
    if Lang::from_path(Path::new(&path)) != Some(Lang::Python) {
        return Vec::new();
    }
    let Ok(confined) = rigor_tools::confined::Confined::open(root) else { return Vec::new() };
    let read = |p: &str| confined.read(Path::new(p)).ok().map(|b| String::from_utf8_lossy(&b).into_owned());
    let Some(text) = read(&path) else { return Vec::new() };
    let lines: Vec<&str> = text.lines().collect();
    let (start, end) = (entity.start_line as usize, entity.end_line as usize);
    if start == 0 || end > lines.len() || start > end {
        return Vec::new();
    }
    let original = lines[start - 1..end].join("\n");
    let mut out: Vec<Arc<dyn Draft>> = Vec::new();
    if let Some(test) = tests_of(r, &path).and_then(|t| Some((read(&t)?, t))) {
        let (test_text, test_path) = test;
        out.push(Arc::new(TestDraft::new(issue, &path, &test_path, &test_text)));
    }
    if end + 1 - start > MAX_FIX_LINES {
        return out;
    }
    let kind = if entity.kind == EntityKind::Method { "method" } else { "function" };
    out.push(Arc::new(FixDraft { issue: issue.trim().to_string(), path, name: entity.name.clone(), kind, original }));
    out
}

/// The test file of `module`: one that imports from it, else one named after it
/// (`test_number.py` for `number.py`, when the tests import the package), the shortest path first.
fn tests_of(r: &Retriever, module: &str) -> Option<String> {
    let g = r.graph();
    let tests: Vec<(usize, &str)> = g
        .files()
        .iter()
        .enumerate()
        .filter(|(_, f)| f.lang == Lang::Python && f.path != module && is_test_path(&f.path))
        .map(|(fi, f)| (fi, f.path.as_str()))
        .collect();
    let importing = |&&(fi, _): &&(usize, &str)| {
        let file = g.file_node(fi as u32);
        g.outgoing(file).iter().any(|&(t, k)| k == EdgeKind::Imports && g.path_of(t) == module)
    };
    let stem = Path::new(module).file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let named = |&&(_, path): &&(usize, &str)| {
        let file = Path::new(path).file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        file == format!("test_{stem}") || file == format!("{stem}_test")
    };
    let shortest = |found: Vec<&str>| found.into_iter().min_by_key(|p| (p.len(), *p)).map(str::to_string);
    shortest(tests.iter().filter(importing).map(|&(_, p)| p).collect())
        .or_else(|| shortest(tests.iter().filter(named).map(|&(_, p)| p).collect()))
}

/// A reproduction test: a new test file beside the existing tests.
struct TestDraft {
    prompt: String,
    path: String,
}

impl TestDraft {
    fn new(issue: &str, module: &str, tests: &str, test_text: &str) -> TestDraft {
        let header: Vec<&str> = test_text
            .lines()
            .take_while(|l| !(l.starts_with("class ") || l.starts_with("def ") || l.starts_with('@')))
            .take(MAX_HEADER_LINES)
            .collect();
        let header = header.join("\n");
        let style = if header.contains("unittest") { "one unittest test" } else { "one pytest test function" };
        let prompt = format!(
            "An issue was reported:\n\n{}\n\nThe existing tests in {tests} begin with:\n\n```python\n{}\n```\n\nWrite \
             a new test file in one ```python block: {style} that fails because of the issue and passes once it is \
             fixed. Assert the examples the issue gives, with the expected values exactly as the issue writes them.",
            issue.trim(),
            header.trim()
        );
        let stem = Path::new(module).file_stem().and_then(|s| s.to_str()).unwrap_or("module");
        let dir = tests.rsplit_once('/').map(|(d, _)| format!("{d}/")).unwrap_or_default();
        TestDraft { prompt, path: format!("{dir}test_{stem}_issue.py") }
    }
}

impl Draft for TestDraft {
    fn what(&self) -> String {
        format!("a reproduction test ({})", self.path)
    }

    fn prompt(&self) -> String {
        self.prompt.clone()
    }

    fn output_tokens(&self) -> u32 {
        TEST_OUTPUT_TOKENS
    }

    fn fixes(&self) -> bool {
        false
    }

    fn edit(&self, reply: &str) -> Result<Value, String> {
        let code = python_blocks(reply)
            .into_iter()
            .find_map(|b| complete_tests(&b))
            .ok_or("the reply has no ```python block with a test function that parses")?;
        Ok(json!({ "command": "create", "path": self.path, "file_text": format!("{}\n", code.trim_end()) }))
    }
}

/// A fix: the whole function or method rewritten.
struct FixDraft {
    issue: String,
    path: String,
    /// Qualified within the file: `Version.next_version`.
    name: String,
    kind: &'static str,
    /// Its lines as they are in the file, decorators included.
    original: String,
}

impl FixDraft {
    fn short_name(&self) -> &str {
        self.name.rsplit('.').next().unwrap_or(&self.name)
    }
}

impl Draft for FixDraft {
    fn what(&self) -> String {
        format!("a fix of `{}` in {}", self.name, self.path)
    }

    fn prompt(&self) -> String {
        format!(
            "An issue was reported:\n\n{}\n\nThis is the {} `{}`, from {}:\n\n```python\n{}\n```\n\nWrite the whole \
             fixed {} in one ```python block. Change only what the issue needs.",
            self.issue,
            self.kind,
            self.name,
            self.path,
            dedent(&self.original, indent_of(&self.original).len()),
            self.kind
        )
    }

    fn output_tokens(&self) -> u32 {
        (self.original.len() as u32 / 3 + 200).min(MAX_FIX_OUTPUT_TOKENS)
    }

    fn fixes(&self) -> bool {
        true
    }

    fn edit(&self, reply: &str) -> Result<Value, String> {
        let name = self.short_name();
        let function = python_blocks(reply)
            .into_iter()
            .find_map(|b| function_in(&b, name))
            .ok_or_else(|| format!("the reply has no ```python block that defines `{name}`"))?;
        let indent = indent_of(&self.original);
        let mut new = indented(&function, indent);
        // A reply that leaves out the decorators keeps the original's.
        let decorators: Vec<&str> = self.original.lines().take_while(|l| l.trim_start().starts_with('@')).collect();
        if !decorators.is_empty() && !new.trim_start().starts_with('@') {
            new = format!("{}\n{new}", decorators.join("\n"));
        }
        if new.trim_end() == self.original.trim_end() {
            return Err(format!("the reply's `{name}` is the code as it is"));
        }
        Ok(json!({ "command": "str_replace", "path": self.path, "old_str": self.original, "new_str": new }))
    }
}

/// The bodies of the reply's fenced blocks labelled Python or not labelled at all; an unclosed
/// block runs to the end of the reply. A block closes at a bare ``` line indented no deeper than
/// its opening fence (plus the three spaces Markdown allows), so the ```pycon example of a
/// docstring inside the code stays part of it.
fn python_blocks(reply: &str) -> Vec<String> {
    struct Open<'a> {
        python: bool,
        indent: usize,
        body: Vec<&'a str>,
    }
    let mut blocks = Vec::new();
    let mut current: Option<Open<'_>> = None;
    for line in reply.lines() {
        let indent = line.len() - line.trim_start().len();
        let fence = line.trim_start().strip_prefix("```");
        match (&mut current, fence) {
            (None, Some(info)) => {
                let label = info.trim().to_ascii_lowercase();
                let python = matches!(label.as_str(), "" | "python" | "python3" | "py");
                current = Some(Open { python, indent, body: Vec::new() });
            }
            (Some(open), Some(rest)) if rest.trim_matches('`').trim().is_empty() && indent <= open.indent + 3 => {
                if let Some(Open { python: true, body, .. }) = current.take() {
                    blocks.push(body.join("\n"));
                }
            }
            (Some(open), _) => open.body.push(line),
            (None, None) => {}
        }
    }
    if let Some(Open { python: true, body, .. }) = current {
        blocks.push(body.join("\n"));
    }
    blocks
}

/// `code` when it parses and has a test function, else its longest start that does and asserts
/// something in a test (a reply cut off at the output limit ends in the middle of a statement).
fn complete_tests(code: &str) -> Option<String> {
    let lines: Vec<&str> = code.lines().collect();
    (1..=lines.len()).rev().map(|n| lines[..n].join("\n")).find(|start| {
        let test_at = start.find("def test");
        test_at.is_some_and(|at| start.len() == code.len() || start[at..].contains("assert")) && parses(start)
    })
}

/// Whether `code` is Python without a syntax error.
fn parses(code: &str) -> bool {
    crate::lang::syntax_errors(Lang::Python, code).is_empty()
}

/// The text of the definition of `name` in `code` (the outermost one, decorators included), its
/// first line's indentation removed from every line; `None` when `code` does not parse or has none.
fn function_in(code: &str, name: &str) -> Option<String> {
    if !parses(code) {
        return None;
    }
    let mut parser = parser_for(Lang::Python)?;
    let tree = parser.parse(code, None)?;
    let mut stack = vec![tree.root_node()];
    let mut found = None;
    while let Some(node) = stack.pop() {
        if node.kind() == "function_definition"
            && node.child_by_field_name("name").and_then(|n| n.utf8_text(code.as_bytes()).ok()) == Some(name)
        {
            let outer = node.parent().filter(|p| p.kind() == "decorated_definition").unwrap_or(node);
            if found.is_none_or(|f: tree_sitter::Node| outer.start_byte() < f.start_byte()) {
                found = Some(outer);
            }
            continue;
        }
        let mut cursor = node.walk();
        stack.extend(node.children(&mut cursor));
    }
    let node = found?;
    let line_start = code[..node.start_byte()].rfind('\n').map_or(0, |i| i + 1);
    let text = &code[line_start..node.end_byte()];
    Some(dedent(text, node.start_position().column))
}

/// The leading whitespace of the first line of `text`.
fn indent_of(text: &str) -> &str {
    let first = text.lines().next().unwrap_or("");
    &first[..first.len() - first.trim_start().len()]
}

/// `text` with up to `width` leading whitespace characters removed from each line.
fn dedent(text: &str, width: usize) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(|l| {
            let strip = l.len() - l.trim_start().len();
            &l[strip.min(width)..]
        })
        .collect();
    lines.join("\n")
}

/// `text` with `indent` put before each non-blank line.
fn indented(text: &str, indent: &str) -> String {
    let lines: Vec<String> =
        text.lines().map(|l| if l.trim().is_empty() { String::new() } else { format!("{indent}{l}") }).collect();
    lines.join("\n").trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_is_taken_from_the_reply_without_what_surrounds_it() {
        let reply = "Here it is:\n\n```python\nimport unittest\n\nUNITS = {}\n\ndef parse(text):\n    return \
                     text + 1\n\nclass T(unittest.TestCase):\n    def test(self):\n        pass\n```\nDone.";
        let [block] = python_blocks(reply).try_into().unwrap();
        assert_eq!(function_in(&block, "parse").unwrap(), "def parse(text):\n    return text + 1");
        assert_eq!(function_in(&block, "missing"), None);
        assert_eq!(function_in("def parse(:\n", "parse"), None, "a reply that does not parse gives nothing");
        // A docstring's own fenced example does not end the block.
        let reply = "```python\ndef f():\n    \"\"\"Doc.\n\n    ```pycon\n    >>> f()\n    1\n    ```\n    \"\"\"\n    return 1\n```\n";
        let [block] = python_blocks(reply).try_into().unwrap();
        assert!(function_in(&block, "f").unwrap().ends_with("    ```\n    \"\"\"\n    return 1"), "{block}");
    }

    #[test]
    fn a_method_is_indented_as_the_original_and_keeps_its_decorators() {
        let fix = FixDraft {
            issue: "x".into(),
            path: "m.py".into(),
            name: "V.next".into(),
            kind: "method",
            original: "    @staticmethod\n    def next(v):\n        return v".into(),
        };
        assert!(fix.prompt().contains("```python\n@staticmethod\ndef next(v):\n    return v\n```"), "{}", fix.prompt());
        let edit = fix.edit("```python\nclass V:\n    def next(v):\n        return v + 1\n```").unwrap();
        assert_eq!(edit["old_str"], "    @staticmethod\n    def next(v):\n        return v");
        assert_eq!(edit["new_str"], "    @staticmethod\n    def next(v):\n        return v + 1");
        let unchanged = fix.edit("```python\ndef next(v):\n    return v\n```").unwrap_err();
        assert!(unchanged.contains("as it is"), "{unchanged}");
    }

    #[test]
    fn a_test_reply_becomes_a_new_file_beside_the_existing_tests() {
        let draft = TestDraft::new(
            "`f(2)` returns 3, expected 4",
            "src/pkg/mod.py",
            "tests/test_mod.py",
            "import pytest\n\nfrom pkg.mod import f\n\n\ndef test_one():\n    assert f(1) == 2\n",
        );
        assert_eq!(draft.path, "tests/test_mod_issue.py");
        assert!(draft.prompt().contains("from pkg.mod import f\n```"), "{}", draft.prompt());
        assert!(draft.prompt().contains("one pytest test function"));
        assert!(!draft.prompt().contains("test_one"), "the existing tests' bodies are left out");
        let edit =
            draft.edit("```python\nfrom pkg.mod import f\n\ndef test_issue():\n    assert f(2) == 4\n```").unwrap();
        assert_eq!(edit["command"], "create");
        assert_eq!(edit["file_text"], "from pkg.mod import f\n\ndef test_issue():\n    assert f(2) == 4\n");
        assert!(draft.edit("no code here").is_err());
        // A reply cut off at the output limit keeps its complete statements.
        let cut = "```python\nfrom pkg.mod import f\n\ndef test_issue():\n    assert f(2) == 4\n    assert f(3) == 6\n    assert";
        assert_eq!(
            draft.edit(cut).unwrap()["file_text"],
            "from pkg.mod import f\n\ndef test_issue():\n    assert f(2) == 4\n    assert f(3) == 6\n"
        );
        assert!(draft.edit("```python\ndef test_issue():\n    x = (").is_err(), "nothing asserted: no test");
    }
}
