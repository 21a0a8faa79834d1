//! The graph tools as the agent calls them, through a `ToolBox`, and the syntax-checked editor.

mod common;
use common::write;

use std::sync::Arc;

use rigor_graph::{CodeIntel, SyntaxCheck};
use rigor_protocol::ToolCall;
use rigor_tools::{ToolBox, ToolContext, edit::EditTool};

fn call(name: &str, args: serde_json::Value) -> ToolCall {
    ToolCall { id: "c1".into(), name: name.into(), arguments: args.to_string() }
}

#[tokio::test(flavor = "multi_thread")]
async fn search_retrieve_and_traverse_see_the_agents_edits() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "app/config.py",
                "def parse_config(path):\n    \"\"\"Read settings.\"\"\"\n    return load(path)\n\n\ndef load(path):\n    return {}\n",
            ),
            ("app/main.py", "from app.config import parse_config\n\n\ndef main():\n    return parse_config('x')\n"),
        ],
    );
    let intel = CodeIntel::in_memory(dir.path());
    let mut tools = ToolBox::new(ToolContext::new(dir.path()));
    let (s, r, t) = intel.tools();
    tools.add(s);
    tools.add(r);
    tools.add(t);
    tools.add(EditTool::with_check(Arc::new(SyntaxCheck)));

    let out = tools.call(&call("search_entity", serde_json::json!({"query": "parse_config"}))).await;
    assert!(
        !out.is_error && out.content.contains("app/config.py:parse_config (function, lines 1-3)"),
        "{}",
        out.content
    );

    let out = tools.call(&call("retrieve_entity", serde_json::json!({"entity_ids": ["parse_config"]}))).await;
    assert!(out.content.contains("3      return load(path)"), "{}", out.content);
    assert!(out.content.contains("doc: Read settings."), "{}", out.content);

    let args = serde_json::json!({"start_entities": ["app/config.py:parse_config"], "direction": "upstream", "edge_types": ["invokes"]});
    let out = tools.call(&call("traverse_graph", args)).await;
    assert!(out.content.contains("<-invokes- app/main.py:main (function"), "{}", out.content);

    // A syntax-breaking edit is refused and the file is unchanged.
    let edit = serde_json::json!({"command": "str_replace", "path": "app/config.py", "old_str": "return {}", "new_str": "return {"});
    let out = tools.call(&call("edit", edit)).await;
    assert!(out.is_error && out.content.contains("syntax error"), "{}", out.content);
    assert!(std::fs::read_to_string(dir.path().join("app/config.py")).unwrap().contains("return {}"));

    // A good edit is kept, and the graph tools see it on the next call.
    let edit = serde_json::json!({"command": "str_replace", "path": "app/config.py", "old_str": "def load(path):", "new_str": "def load_settings(path):"});
    assert!(!tools.call(&call("edit", edit)).await.is_error);
    let out = tools.call(&call("search_entity", serde_json::json!({"query": "load_settings"}))).await;
    assert!(out.content.contains("app/config.py:load_settings"), "{}", out.content);

    let out = tools.call(&call("retrieve_entity", serde_json::json!({"entity_ids": ["nope.nothing"]}))).await;
    assert!(out.is_error && out.content.contains("search_entity"), "{}", out.content);
}

#[test]
fn a_compact_prompt_shows_the_code_the_issue_names_and_not_its_tests_or_common_names() {
    use rigor_tools::{PromptProfile, PromptShape, ToolSource};
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "durations.py",
                "UNITS = {\"h\": 3600}\n\n\ndef parse_duration(text):\n    total = 0\n    return total\n\n\ndef helper():\n    return 1\n",
            ),
            ("tests/test_durations.py", "def parse_duration(text):\n    return 'a fake'\n"),
            ("a.py", "def run():\n    pass\n"),
            ("b.py", "def run():\n    pass\n"),
            ("c.py", "def run():\n    pass\n"),
        ],
    );
    let issue = "`parse_duration(\"1h30m\")` returns 1800; `run()` is fine.";
    let compact = PromptShape { profile: PromptProfile::Compact, section_tokens: 400 };
    let section = rigor_graph::GraphSource.contribute(dir.path(), issue, &compact).prompt_section;
    assert!(section.contains("The code the issue names"), "{section}");
    assert!(section.contains("5      total = 0"), "{section}");
    // Not the helper it does not name, nor the test's fake, nor `run`, which three files define.
    assert!(!section.contains("return 1") && !section.contains("a fake"), "{section}");
    assert!(!section.contains("    pass"), "{section}");

    // The full prompt leaves it to the graph tools.
    let full = PromptShape { profile: PromptProfile::Full, section_tokens: 1500 };
    let section = rigor_graph::GraphSource.contribute(dir.path(), issue, &full).prompt_section;
    assert!(!section.contains("total = 0"), "{section}");
}

#[test]
fn the_issue_examples_run_from_the_workspace_and_print_what_each_call_gives() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "src/durations.py",
                "from units import SCALE\n\n\ndef parse_duration(text):\n    if not text:\n        raise ValueError('empty duration')\n    return len(text) * SCALE\n",
            ),
            // A `src/` layout imports its modules by their own names.
            ("src/units.py", "SCALE = 1\n"),
            ("tests/test_durations.py", "def helper(x):\n    return x\n"),
        ],
    );
    let issue = "`parse_duration(\"1h30m\")` returns `1800`, and `parse_duration(\"\")` fails; \
                 `helper(1)` is a test's, `len(x)` is not ours, `parse_duration(\"a\") + 1` is no single call.";
    let r = CodeIntel::in_memory(dir.path()).refresh().unwrap();
    let command = rigor_graph::tools::issue_examples(&r, dir.path(), issue).expect("examples");
    let out = std::process::Command::new("bash").arg("-c").arg(&command).current_dir("/").output().unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        printed,
        "parse_duration(\"1h30m\") -> 5\nparse_duration(\"\") raises ValueError: empty duration\n",
        "{command}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(rigor_graph::tools::issue_examples(&r, dir.path(), "`helper(1)` and `len(x)`").is_none());

    // An interpreter session, as users paste one: statements in order, in one namespace.
    let issue = "```python\n>>> import durations\n>>> durations.parse_duration('ab')\n10\n>>> def twice(x):\n...     return 2 * x\n...\n>>> twice(durations.parse_duration(''))\nTraceback ...\n```";
    let command = rigor_graph::tools::issue_examples(&r, dir.path(), issue).expect("examples");
    let out = std::process::Command::new("bash").arg("-c").arg(&command).current_dir("/").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "durations.parse_duration('ab') -> 2\ntwice(durations.parse_duration('')) raises ValueError: empty duration\n",
        "{command}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_drafts_of_a_compact_run_become_a_failing_test_and_a_fix_that_makes_it_pass() {
    use rigor_tools::{PromptProfile, PromptShape, ToolSource};
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[
            (
                "durations.py",
                "UNITS = {\"h\": 3600, \"m\": 60}\n\n\ndef parse_duration(text):\n    \"\"\"Seconds in `1h30m`.\"\"\"\n    total = 0\n    number = \"\"\n    for ch in text:\n        if ch.isdigit():\n            number += ch\n        else:\n            total = int(number) * UNITS[ch]\n            number = \"\"\n    return total\n",
            ),
            (
                "test_durations.py",
                "import unittest\n\nfrom durations import parse_duration\n\n\nclass T(unittest.TestCase):\n    def test_single(self):\n        self.assertEqual(parse_duration(\"2h\"), 7200)\n",
            ),
        ],
    );
    let issue = "`parse_duration(\"1h30m\")` returns `1800`, but it is `5400`.";
    let compact = PromptShape { profile: PromptProfile::Compact, section_tokens: 400 };
    let drafts = rigor_graph::GraphSource.contribute(dir.path(), issue, &compact).drafts;
    let [test, fix] = drafts.as_slice() else { panic!("{} drafts", drafts.len()) };
    assert!(test.what().contains("test_durations_issue.py"), "{}", test.what());
    let asked = test.prompt();
    assert!(asked.contains(issue) && asked.contains("from durations import parse_duration"), "{asked}");
    assert!(!asked.contains("total = 0") && !asked.contains("7200"), "only the issue and the tests' imports: {asked}");
    assert!(fix.prompt().contains("    total = int(number) * UNITS[ch]"), "{}", fix.prompt());

    // The replies a small model gives, put in place through the syntax-checked editor.
    let mut tools = ToolBox::new(ToolContext::new(dir.path()));
    tools.add(EditTool::with_check(Arc::new(SyntaxCheck)));
    let test_reply = "```python\nimport unittest\n\nfrom durations import parse_duration\n\nclass TestIssue(unittest.TestCase):\n    def test_compound(self):\n        self.assertEqual(parse_duration(\"1h30m\"), 5400)\n```\nThis test checks the issue.";
    let out = tools.call(&call("edit", test.edit(test_reply).unwrap())).await;
    assert!(!out.is_error, "{}", out.content);
    let unittest = || {
        let out = std::process::Command::new("python3")
            .args(["-m", "unittest", "test_durations_issue"])
            .current_dir(dir.path())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (passed, log) = unittest();
    assert!(!passed && log.contains("1800 != 5400"), "the reproduction fails on the original code: {log}");

    let fix_reply = "```python\nUNITS = {\"h\": 3600, \"m\": 60}\n\ndef parse_duration(text):\n    \"\"\"Seconds in `1h30m`.\"\"\"\n    total = 0\n    number = \"\"\n    for ch in text:\n        if ch.isdigit():\n            number += ch\n        else:\n            total += int(number) * UNITS[ch]\n            number = \"\"\n    return total\n```";
    let out = tools.call(&call("edit", fix.edit(fix_reply).unwrap())).await;
    assert!(!out.is_error, "{}", out.content);
    let (passed, log) = unittest();
    assert!(passed, "and passes with the fix: {log}");
    let module = std::fs::read_to_string(dir.path().join("durations.py")).unwrap();
    assert_eq!(module.matches("UNITS = ").count(), 1, "only the function was replaced: {module}");

    // The full profile leaves the conversation to a capable model.
    let full = PromptShape { profile: PromptProfile::Full, section_tokens: 1500 };
    assert!(rigor_graph::GraphSource.contribute(dir.path(), issue, &full).drafts.is_empty());
}

#[test]
fn a_draft_test_goes_beside_the_tests_named_after_the_module_and_a_long_function_gets_no_fix_draft() {
    use rigor_tools::{PromptProfile, PromptShape, ToolSource};
    let dir = tempfile::tempdir().unwrap();
    let long_body: String = (0..90).map(|i| format!("    x{i} = {i}\n")).collect();
    write(
        dir.path(),
        &[
            ("src/pkg/__init__.py", "from pkg.number import ordinal\n"),
            ("src/pkg/number.py", "def ordinal(n):\n    return str(n) + 'th'\n"),
            ("src/pkg/big.py", &format!("def crunch(n):\n{long_body}    return n\n")),
            // The tests import the package, not the module.
            ("tests/test_number.py", "import pkg\n\n\ndef test_one():\n    assert pkg.ordinal(1) == '1st'\n"),
            ("tests/test_big.py", "import pkg\n"),
        ],
    );
    let compact = PromptShape { profile: PromptProfile::Compact, section_tokens: 400 };
    let drafts = rigor_graph::GraphSource.contribute(dir.path(), "`pkg.ordinal(111)` gives '111st'", &compact).drafts;
    let whats: Vec<String> = drafts.iter().map(|d| d.what()).collect();
    assert_eq!(whats, ["a reproduction test (tests/test_number_issue.py)", "a fix of `ordinal` in src/pkg/number.py"]);
    let drafts = rigor_graph::GraphSource.contribute(dir.path(), "`crunch(1)` is slow", &compact).drafts;
    let whats: Vec<String> = drafts.iter().map(|d| d.what()).collect();
    assert_eq!(whats, ["a reproduction test (tests/test_big_issue.py)"], "no rewrite of a 92-line function");
}
