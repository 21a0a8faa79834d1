//! Tests in source files: which files are test files, the test functions a file defines, and what
//! changed between two versions of a test file (tests added or changed: a reproduction; tests
//! deleted, skipped or stripped of assertions: a change the integrity guard refuses).
//!
//! Read from the text with per-language patterns (Python, Rust, Go, JavaScript/TypeScript): a
//! test is a function the runner collects (`def test_*`, `#[test] fn`, `func TestX(t *testing.T)`,
//! `it("…")` / `test("…")`). A test's *region* runs from its definition to the next test or the
//! end of the file; a test whose region differs between the versions changed.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::Regex;
use rigor_testing::project::Runner;
use serde::{Deserialize, Serialize};

/// Whether `path` (relative, `/`-separated) is a test file by the conventions of its language.
pub fn is_test_file(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let in_test_dir = path.split('/').rev().skip(1).any(|d| d == "tests" || d == "test" || d == "__tests__");
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext {
        "py" => name.starts_with("test_") || name.ends_with("_test.py") || (in_test_dir && name != "__init__.py"),
        "rs" => in_test_dir,
        "go" => name.ends_with("_test.go"),
        "js" | "jsx" | "ts" | "tsx" | "mjs" | "cjs" => {
            name.contains(".test.") || name.contains(".spec.") || path.split('/').any(|d| d == "__tests__")
        }
        _ => false,
    }
}

/// Whether `content` (the file at `path`) holds an inline test module (Rust's
/// `#[cfg(test)] mod tests { … }` in a source file): its tests count like a test file's, and the
/// rest of the file is code.
pub fn has_inline_tests(path: &str, content: &str) -> bool {
    path.ends_with(".rs") && !is_test_file(path) && inline_test_module(content).is_some()
}

/// The line range of the first `#[cfg(test)]` module of `content` (its attribute to its closing
/// brace).
fn inline_test_module(content: &str) -> Option<std::ops::Range<usize>> {
    let lines: Vec<&str> = content.lines().collect();
    let start = lines.iter().position(|l| l.trim() == "#[cfg(test)]")?;
    let open = (start + 1..lines.len()).find(|&i| lines[i].contains("mod ") && lines[i].contains('{'))?;
    let mut depth = 0usize;
    for (i, line) in lines.iter().enumerate().skip(open) {
        let code = line.split("//").next().unwrap_or("");
        depth += code.matches('{').count();
        depth = depth.saturating_sub(code.matches('}').count());
        if depth == 0 {
            return Some(start..i + 1);
        }
    }
    None
}

/// The original file with its inline test module replaced by `patched`'s (added at the end when
/// it had none): the original code with the new tests, for running a reproduction written inside a
/// source file. `None` when `patched` has no inline test module.
pub fn with_tests_of(original: &str, patched: &str) -> Option<String> {
    let new = inline_test_module(patched)?;
    let patched_lines: Vec<&str> = patched.lines().collect();
    let module = patched_lines[new].join("\n");
    let lines: Vec<&str> = original.lines().collect();
    let mut out = match inline_test_module(original) {
        Some(old) => [&lines[..old.start], &[module.as_str()], &lines[old.end..]].concat().join("\n"),
        None => format!("{}\n\n{module}", original.trim_end()),
    };
    out.push('\n');
    Some(out)
}

/// One test function of a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestFn {
    /// The enclosing class (Python `class TestX:` / `unittest.TestCase`), if any.
    pub class: Option<String>,
    /// The function (or, for JavaScript, the test's title).
    pub name: String,
    /// 1-based line of its definition.
    pub line: usize,
}

impl TestFn {
    /// `Class.name` or `name`.
    pub fn qualified(&self) -> String {
        match &self.class {
            Some(class) => format!("{class}.{}", self.name),
            None => self.name.clone(),
        }
    }
}

fn regex(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).unwrap_or_else(|e| panic!("bad pattern {pattern}: {e}")))
}

/// The tests `content` (the file at `path`) defines, in order.
pub fn test_functions(path: &str, content: &str) -> Vec<TestFn> {
    static PY_DEF: OnceLock<Regex> = OnceLock::new();
    static PY_CLASS: OnceLock<Regex> = OnceLock::new();
    static RS_FN: OnceLock<Regex> = OnceLock::new();
    static RS_MOD: OnceLock<Regex> = OnceLock::new();
    static GO_FN: OnceLock<Regex> = OnceLock::new();
    static JS_TEST: OnceLock<Regex> = OnceLock::new();
    let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    let mut found = Vec::new();
    match ext {
        "py" => {
            let def = regex(&PY_DEF, r"^(\s*)(?:async\s+)?def\s+(test\w*)\s*\(");
            let class_re = regex(&PY_CLASS, r"^class\s+(\w+)");
            let mut class: Option<String> = None;
            // Inside a triple-quoted string (whose lines are not code).
            let mut in_string = false;
            for (i, line) in content.lines().enumerate() {
                let quotes = line.matches("\"\"\"").count() + line.matches("\'\'\'").count();
                let was_in_string = in_string;
                in_string ^= quotes % 2 == 1;
                if was_in_string {
                    continue;
                }
                if let Some(c) = class_re.captures(line) {
                    class = Some(c[1].to_string());
                    continue;
                }
                // A top-level function ends the class.
                if line.starts_with("def ") || line.starts_with("async def ") {
                    class = None;
                }
                if let Some(c) = def.captures(line) {
                    let indented = !c[1].is_empty();
                    found.push(TestFn {
                        class: if indented { class.clone() } else { None },
                        name: c[2].to_string(),
                        line: i + 1,
                    });
                }
            }
        }
        "rs" => {
            let f = regex(&RS_FN, r"^\s*(?:pub\s+)?(?:async\s+)?fn\s+(\w+)");
            let m = regex(&RS_MOD, r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*\{");
            // The inline modules a line is in (name, brace depth where it opened): cargo names a
            // test by its module path.
            let (mut modules, mut depth): (Vec<(String, usize)>, usize) = (Vec::new(), 0);
            let mut attribute = false;
            for (i, line) in content.lines().enumerate() {
                let t = line.trim();
                if let Some(c) = m.captures(line) {
                    modules.push((c[1].to_string(), depth));
                }
                if t.starts_with("#[test]") || (t.starts_with("#[") && t.contains("::test")) {
                    attribute = true;
                } else if let Some(c) = f.captures(line) {
                    if attribute {
                        let path: Vec<&str> = modules.iter().map(|(name, _)| name.as_str()).collect();
                        let class = (!path.is_empty()).then(|| path.join("::"));
                        found.push(TestFn { class, name: c[1].to_string(), line: i + 1 });
                    }
                    attribute = false;
                }
                let code = t.split("//").next().unwrap_or("");
                depth += code.matches('{').count();
                depth = depth.saturating_sub(code.matches('}').count());
                while modules.last().is_some_and(|(_, opened)| depth <= *opened) {
                    modules.pop();
                }
            }
        }
        "go" => {
            let f = regex(&GO_FN, r"^func\s+(Test\w*)\s*\(\s*\w+\s+\*testing\.T\s*\)");
            for (i, line) in content.lines().enumerate() {
                if let Some(c) = f.captures(line) {
                    found.push(TestFn { class: None, name: c[1].to_string(), line: i + 1 });
                }
            }
        }
        "js" | "jsx" | "ts" | "tsx" | "mjs" | "cjs" => {
            let t = regex(&JS_TEST, r#"\b(?:it|test)(?:\.only)?\(\s*(?:'([^']*)'|"([^"]*)"|`([^`]*)`)"#);
            for (i, line) in content.lines().enumerate() {
                if let Some(c) = t.captures(line) {
                    let name = c.get(1).or(c.get(2)).or(c.get(3)).map_or("", |m| m.as_str());
                    found.push(TestFn { class: None, name: name.to_string(), line: i + 1 });
                }
            }
        }
        _ => {}
    }
    found
}

/// How `runner` names `test` of the file at `path` (relative to the project root), in the form
/// `rigor_testing::project::Project::command` takes.
pub fn test_id(runner: Runner, path: &str, test: &TestFn) -> String {
    match runner {
        Runner::Pytest => match &test.class {
            Some(class) => format!("{path}::{class}::{}", test.name),
            None => format!("{path}::{}", test.name),
        },
        Runner::Unittest | Runner::Django => {
            // Django's runner takes labels relative to its `tests/` directory.
            let rel = if runner == Runner::Django { path.strip_prefix("tests/").unwrap_or(path) } else { path };
            format!("{}.{}", rel.trim_end_matches(".py").replace('/', "."), test.qualified())
        }
        // cargo prints (and `--exact` matches) the module path within the test's crate.
        Runner::Cargo => match &test.class {
            Some(modules) => format!("{modules}::{}", test.name),
            None => test.name.clone(),
        },
        Runner::Go | Runner::Jest | Runner::Mocha | Runner::Vitest => test.name.clone(),
    }
}

/// Each test's region (its decorators or attributes, its definition, up to the next test's), by
/// qualified name.
fn regions(path: &str, content: &str) -> BTreeMap<String, String> {
    let lines: Vec<&str> = content.lines().collect();
    let tests = test_functions(path, content);
    // A region starts at the decorators (`@…`) or attributes (`#[…]`) right above the definition.
    let start = |test: &TestFn| {
        let mut at = test.line - 1;
        while at > 0 && matches!(lines[at - 1].trim_start().get(..2), Some(p) if p.starts_with('@') || p == "#[") {
            at -= 1;
        }
        at
    };
    let indent = |line: &str| line.len() - line.trim_start().len();
    let mut out = BTreeMap::new();
    for (i, test) in tests.iter().enumerate() {
        let mut end = tests.get(i + 1).map_or(lines.len(), start);
        if path.ends_with(".py") {
            // A Python function ends where a line is indented no deeper than its `def`.
            let def_indent = indent(lines[test.line - 1]);
            let body_end = lines[test.line..]
                .iter()
                .position(|l| !l.trim().is_empty() && indent(l) <= def_indent && !l.trim_start().starts_with(')'))
                .map_or(lines.len(), |k| test.line + k);
            end = end.min(body_end);
        }
        // Blank and comment lines at the end belong to what follows (a comment above the next test).
        while end > test.line
            && matches!(lines[end - 1].trim_start().chars().next(), None | Some('#'))
            && !lines[end - 1].trim_start().starts_with("#[")
        {
            end -= 1;
        }
        out.insert(test.qualified(), lines[start(test)..end].join("\n"));
    }
    out
}

/// Lines that skip or expect failure of a test, by language convention.
fn skip_markers(text: &str) -> usize {
    const MARKERS: [&str; 14] = [
        "@pytest.mark.skip",
        "@pytest.mark.xfail",
        "pytest.skip(",
        "pytest.xfail(",
        "@unittest.skip",
        "@unittest.expectedFailure",
        "self.skipTest(",
        "#[ignore",
        "t.Skip(",
        "it.skip(",
        "test.skip(",
        "describe.skip(",
        "xit(",
        ".todo(",
    ];
    text.lines().filter(|l| MARKERS.iter().any(|m| l.contains(m))).count()
}

/// Assertion lines of a test's region.
fn assertions(text: &str) -> usize {
    const ASSERTS: [&str; 8] =
        ["assert", "expect(", "t.Error", "t.Fatal", "self.fail(", "pytest.raises", "raises(", "panic!("];
    text.lines().filter(|l| ASSERTS.iter().any(|a| l.contains(a))).count()
}

/// What changed in one test file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestChanges {
    /// Tests new in the file or whose code changed: candidate reproductions.
    pub added_or_changed: Vec<TestFn>,
    /// Why the change is refused (deleted tests, new skips, fewer assertions); empty: allowed.
    pub violations: Vec<String>,
}

/// Compares two versions of the test file at `path` (`before` is `None` for a new file).
pub fn compare(path: &str, before: Option<&str>, after: &str) -> TestChanges {
    let after_tests = test_functions(path, after);
    let after_regions = regions(path, after);
    let Some(before) = before else {
        return TestChanges { added_or_changed: after_tests, violations: Vec::new() };
    };
    let before_regions = regions(path, before);
    let mut changes = TestChanges::default();
    for test in &after_tests {
        let key = test.qualified();
        if before_regions.get(&key) != after_regions.get(&key) {
            changes.added_or_changed.push(test.clone());
        }
    }
    for (name, region) in &before_regions {
        match after_regions.get(name) {
            None => changes.violations.push(format!("{path}: deletes the existing test `{name}`")),
            Some(now) if skip_markers(now) > skip_markers(region) => {
                changes.violations.push(format!("{path}: skips or expects failure of the existing test `{name}`"))
            }
            Some(now) if assertions(now) < assertions(region) => changes.violations.push(format!(
                "{path}: removes {} assertion(s) from the existing test `{name}`",
                assertions(region) - assertions(now)
            )),
            Some(_) => {}
        }
    }
    // A skip at module or class level (outside every test's region) skips them all.
    let outside = |text: &str, regions: &BTreeMap<String, String>| {
        skip_markers(text).saturating_sub(regions.values().map(|r| skip_markers(r)).sum())
    };
    if outside(after, &after_regions) > outside(before, &before_regions) {
        changes.violations.push(format!("{path}: adds a skip that applies to existing tests"));
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "import unittest\n\nclass DurationTest(unittest.TestCase):\n    def test_seconds(self):\n        self.assertEqual(parse('45s'), 45)\n        self.assertEqual(parse('1s'), 1)\n\n    def test_minutes(self):\n        self.assertEqual(parse('2m'), 120)\n";

    #[test]
    fn an_inline_test_module_moves_onto_the_original_code() {
        let original = "pub fn add(a: i32, b: i32) -> i32 {\n    a - b\n}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn zero() {\n        assert_eq!(super::add(0, 0), 0);\n    }\n}\n";
        let patched = original.replace("a - b", "a + b").replace(
            "    fn zero() {",
            "    fn two() {\n        assert_eq!(super::add(1, 1), 2);\n    }\n\n    #[test]\n    fn zero() {",
        );
        assert!(has_inline_tests("src/lib.rs", &patched) && !has_inline_tests("tests/it.rs", &patched));
        let spliced = with_tests_of(original, &patched).unwrap();
        assert!(spliced.contains("a - b"), "the original code: {spliced}");
        assert!(spliced.contains("fn two()") && spliced.contains("fn zero()"), "the new tests: {spliced}");
        let names: Vec<String> =
            compare("src/lib.rs", Some(original), &patched).added_or_changed.iter().map(TestFn::qualified).collect();
        assert_eq!(names, ["tests.two"]);
        let bare = "pub fn add(a: i32, b: i32) -> i32 {\n    a - b\n}\n";
        assert!(with_tests_of(bare, &patched).unwrap().ends_with("}\n}\n"), "appended when the original had none");
    }

    #[test]
    fn ids_per_runner() {
        let test = TestFn { class: Some("CompoundTest".into()), name: "test_compound".into(), line: 3 };
        assert_eq!(test_id(Runner::Unittest, "tests/test_d.py", &test), "tests.test_d.CompoundTest.test_compound");
        assert_eq!(test_id(Runner::Django, "tests/forms/test_d.py", &test), "forms.test_d.CompoundTest.test_compound");
        assert_eq!(test_id(Runner::Pytest, "tests/test_d.py", &test), "tests/test_d.py::CompoundTest::test_compound");
        let rust = TestFn { class: Some("compound".into()), ..test.clone() };
        assert_eq!(test_id(Runner::Cargo, "tests/it.rs", &rust), "compound::test_compound");
        assert_eq!(test_id(Runner::Cargo, "tests/it.rs", &TestFn { class: None, ..test }), "test_compound");
    }

    #[test]
    fn test_files_by_convention() {
        for path in ["tests/test_x.py", "pkg/x_test.py", "test_x.py", "tests/helpers.py", "tests/it.rs", "a_test.go"] {
            assert!(is_test_file(path), "{path}");
        }
        for path in ["src/x.py", "tests/__init__.py", "src/lib.rs", "a.go", "src/app.js", "setup.py"] {
            assert!(!is_test_file(path), "{path}");
        }
        assert!(is_test_file("web/__tests__/app.js") && is_test_file("src/app.test.ts"));
    }

    #[test]
    fn python_tests_know_their_class_and_line() {
        let tests = test_functions("test_d.py", BEFORE);
        let names: Vec<String> = tests.iter().map(TestFn::qualified).collect();
        assert_eq!(names, ["DurationTest.test_seconds", "DurationTest.test_minutes"]);
        assert_eq!(tests[1].line, 8);
        let free = test_functions(
            "test_f.py",
            "def test_a():\n    assert 1\n\nclass X:\n    pass\n\ndef test_b():\n    pass\n",
        );
        assert_eq!(free.iter().map(TestFn::qualified).collect::<Vec<_>>(), ["test_a", "test_b"]);
    }

    #[test]
    fn rust_go_and_js_tests() {
        let rs = "#[test]\nfn adds() {}\n\nfn helper() {}\n#[tokio::test]\nasync fn waits() {}\n";
        let nested = "mod a {\n    mod b {\n        #[test]\n        fn deep() {}\n    }\n    #[test]\n    fn shallow() {}\n}\n#[test]\nfn top() {}\n";
        let paths: Vec<String> = test_functions("tests/t.rs", nested).iter().map(TestFn::qualified).collect();
        assert_eq!(paths, ["a::b.deep", "a.shallow", "top"]);
        assert_eq!(
            test_functions("tests/t.rs", rs).iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["adds", "waits"]
        );
        let go = "func TestParse(t *testing.T) {\n}\nfunc helper() {}\n";
        assert_eq!(test_functions("p_test.go", go)[0].name, "TestParse");
        let js = "describe('d', () => {\n  it('parses 1h', () => {});\n  test(\"rounds\", () => {});\n});\n";
        assert_eq!(
            test_functions("a.test.js", js).iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["parses 1h", "rounds"]
        );
    }

    #[test]
    fn an_added_test_is_a_candidate_and_nothing_is_refused() {
        let after = format!("{BEFORE}\n    def test_compound(self):\n        self.assertEqual(parse('1h30m'), 5400)\n");
        let changes = compare("test_d.py", Some(BEFORE), &after);
        assert_eq!(
            changes.added_or_changed.iter().map(TestFn::qualified).collect::<Vec<_>>(),
            ["DurationTest.test_compound"]
        );
        assert!(changes.violations.is_empty(), "{:?}", changes.violations);
        // A test added after the last one of a class does not change it.
        let two_classes = "class A(unittest.TestCase):\n    def test_a(self):\n        x = '''\ndef not_a_test():\n'''\n        assert x\n\nclass B:\n    def test_b(self):\n        assert 1\n";
        let added =
            two_classes.replace("\nclass B:", "\n    @staticmethod\n    def test_new():\n        assert 2\n\nclass B:");
        let c = compare("test_c.py", Some(two_classes), &added);
        assert_eq!(c.added_or_changed.iter().map(TestFn::qualified).collect::<Vec<_>>(), ["A.test_new"]);
        let commented = format!(
            "{BEFORE}\n    # Regression test for #12\n    def test_compound(self):\n        self.assertEqual(parse('1h30m'), 5400)\n"
        );
        let changes = compare("test_d.py", Some(BEFORE), &commented);
        assert_eq!(changes.added_or_changed.len(), 1, "a comment above the new test does not change the one before");
        let new_file = compare("test_new.py", None, BEFORE);
        assert_eq!(new_file.added_or_changed.len(), 2);
    }

    #[test]
    fn deleting_skipping_or_weakening_an_existing_test_is_refused() {
        let deleted = BEFORE.replace("    def test_minutes(self):\n        self.assertEqual(parse('2m'), 120)\n", "");
        let v = compare("test_d.py", Some(BEFORE), &deleted).violations;
        assert_eq!(v, ["test_d.py: deletes the existing test `DurationTest.test_minutes`"]);
        let skipped = BEFORE.replace("    def test_minutes", "    @unittest.skip('flaky')\n    def test_minutes");
        let v = compare("test_d.py", Some(BEFORE), &skipped).violations;
        assert!(v.len() == 1 && v[0].contains("skips") && v[0].contains("test_minutes"), "{v:?}");
        let first = BEFORE.replace("    def test_seconds", "    @unittest.skip('flaky')\n    def test_seconds");
        let v = compare("test_d.py", Some(BEFORE), &first).violations;
        assert_eq!(v, ["test_d.py: skips or expects failure of the existing test `DurationTest.test_seconds`"]);
        let weakened = BEFORE.replace("        self.assertEqual(parse('1s'), 1)\n", "");
        let v = compare("test_d.py", Some(BEFORE), &weakened).violations;
        assert!(v.len() == 1 && v[0].contains("removes 1 assertion"), "{v:?}");
        let class_skip = BEFORE.replace("class DurationTest", "@unittest.skip('x')\nclass DurationTest");
        let v = compare("test_d.py", Some(BEFORE), &class_skip).violations;
        assert!(v.iter().any(|v| v.contains("applies to existing tests")), "{v:?}");
        // Changing an assertion's value is not refused.
        let changed = BEFORE.replace("parse('2m'), 120", "parse('2m'), 121");
        let c = compare("test_d.py", Some(BEFORE), &changed);
        assert!(c.violations.is_empty());
        assert_eq!(c.added_or_changed[0].name, "test_minutes");
    }
}
