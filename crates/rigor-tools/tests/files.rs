//! The file tools (`view`, `edit`, `search`) and the tool box, as the model experiences them.

// Helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;

use rigor_protocol::ToolCall;
use rigor_tools::edit::EditTool;
use rigor_tools::search::SearchTool;
use rigor_tools::view::ViewTool;
use rigor_tools::{Stop, Tool, ToolBox, ToolContext, ToolOutput};
use serde_json::{Value, json};

fn workspace() -> (tempfile::TempDir, ToolContext) {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ToolContext::new(dir.path());
    (dir, ctx)
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn read(root: &Path, rel: &str) -> String {
    fs::read_to_string(root.join(rel)).unwrap()
}

async fn run(tool: &impl Tool, ctx: &ToolContext, args: Value) -> ToolOutput {
    tool.run(args, ctx).await
}

fn numbered(n: usize) -> String {
    (1..=n).map(|i| format!("line {i}\n")).collect()
}

// ---------------------------------------------------------------- view

#[tokio::test]
async fn view_shows_numbered_lines_and_ranges() {
    let (dir, ctx) = workspace();
    write(dir.path(), "a.txt", &numbered(12));
    let out = run(&ViewTool, &ctx, json!({"path": "a.txt"})).await;
    assert!(!out.is_error);
    assert!(out.content.starts_with(" 1\tline 1\n 2\tline 2\n"), "{}", out.content);
    assert!(out.content.ends_with("12\tline 12"), "{}", out.content);

    let out = run(&ViewTool, &ctx, json!({"path": "a.txt", "start_line": 3, "end_line": 4})).await;
    assert!(out.content.starts_with("3\tline 3\n4\tline 4\n[showing lines 3-4 of 12;"), "{}", out.content);

    let out = run(&ViewTool, &ctx, json!({"path": "a.txt", "start_line": 11, "end_line": -1})).await;
    assert!(out.content.starts_with("11\tline 11\n12\tline 12"), "{}", out.content);

    let out = run(&ViewTool, &ctx, json!({"path": "a.txt", "start_line": 13})).await;
    assert!(out.is_error && out.content.contains("has 12 lines"), "{}", out.content);
}

#[tokio::test]
async fn view_caps_long_files_and_says_how_to_see_more() {
    let (dir, ctx) = workspace();
    write(dir.path(), "long.txt", &numbered(1000));
    let ctx = ToolContext { max_output_chars: 100_000, ..ctx };
    let out = run(&ViewTool, &ctx, json!({"path": "long.txt"})).await;
    assert!(out.content.contains("400\tline 400\n"), "{}", out.content);
    assert!(!out.content.contains("line 401"));
    assert!(out.content.ends_with("[showing lines 1-400 of 1,000; call `view` with start_line=401 to see more]"));

    // A small observation budget cuts at a line boundary, with the same kind of note.
    let small = ToolContext { max_output_chars: 200, ..ctx };
    let out = run(&ViewTool, &small, json!({"path": "long.txt"})).await;
    assert!(out.content.len() < 300, "{}", out.content);
    assert!(out.content.contains("to see more]"), "{}", out.content);
}

#[tokio::test]
async fn view_lists_directories_two_levels_respecting_gitignore() {
    let (dir, ctx) = workspace();
    write(dir.path(), ".gitignore", "target/\n*.log\n");
    write(dir.path(), "src/lib.rs", "");
    write(dir.path(), "src/deep/er/x.rs", "");
    write(dir.path(), "target/debug/junk", "");
    write(dir.path(), "run.log", "");
    write(dir.path(), ".git/HEAD", "ref: refs/heads/main\n");
    write(dir.path(), "README.md", "");
    let out = run(&ViewTool, &ctx, json!({"path": "."})).await;
    assert!(!out.is_error, "{}", out.content);
    assert_eq!(out.content, "./\n  .gitignore\n  README.md\n  src/\n    deep/\n    lib.rs");
}

#[tokio::test]
async fn view_refuses_binary_files_and_explains_missing_paths() {
    let (dir, ctx) = workspace();
    fs::write(dir.path().join("blob.bin"), [0u8, 159, 146, 150, 0, 1]).unwrap();
    let out = run(&ViewTool, &ctx, json!({"path": "blob.bin"})).await;
    assert!(out.is_error && out.content.contains("binary"), "{}", out.content);

    let out = run(&ViewTool, &ctx, json!({"path": "nope/missing.py"})).await;
    assert!(out.is_error);
    assert!(out.content.contains("nope/missing.py") && out.content.contains("search"), "{}", out.content);
}

// ---------------------------------------------------------------- edit

#[tokio::test]
async fn str_replace_needs_exactly_one_match() {
    let (dir, ctx) = workspace();
    let edit = EditTool::default();
    write(dir.path(), "m.py", "def f():\n    return 1\n\ndef g():\n    return 1\n");

    let out = run(
        &edit,
        &ctx,
        json!({"command": "str_replace", "path": "m.py", "old_str": "return 1", "new_str": "return 2"}),
    )
    .await;
    assert!(out.is_error);
    assert!(out.content.contains("occurs 2 times") && out.content.contains("lines 2, 5"), "{}", out.content);

    let out =
        run(&edit, &ctx, json!({"command": "str_replace", "path": "m.py", "old_str": "return 3", "new_str": "x"}))
            .await;
    assert!(out.is_error && out.content.contains("does not occur"), "{}", out.content);
    assert!(!out.content.contains("made already"), "{}", out.content);
    // The same edit sent again once made: its `new_str` is in the file.
    let out = run(
        &edit,
        &ctx,
        json!({"command": "str_replace", "path": "m.py", "old_str": "return 3", "new_str": "return 1"}),
    )
    .await;
    assert!(
        out.is_error && out.content.contains("This edit was made already: `new_str` is in the file at line 2"),
        "{}",
        out.content
    );

    let out = run(
        &edit,
        &ctx,
        json!({"command": "str_replace", "path": "m.py", "old_str": "def g():\n    return 1", "new_str": "def g():\n    return 2"}),
    )
    .await;
    assert!(!out.is_error, "{}", out.content);
    assert!(out.content.contains("5\t    return 2"), "snippet shows the change: {}", out.content);
    assert_eq!(read(dir.path(), "m.py"), "def f():\n    return 1\n\ndef g():\n    return 2\n");
}

#[tokio::test]
async fn an_old_str_missing_its_base_indentation_is_matched_and_new_str_indented_alike() {
    let (dir, ctx) = workspace();
    let source =
        "def f(text):\n    for ch in text:\n        if ch:\n            total = 1\n\n        x = 2\n    return total\n";
    write(dir.path(), "r.py", source);
    let edit = EditTool::default();
    // Copied from the block without its 8 leading spaces, a blank line inside included.
    let old = "if ch:\n    total = 1\n\nx = 2";
    let new = "if ch:\n    total += 1\n\nx = 2";
    let out = run(&edit, &ctx, json!({"command": "str_replace", "path": "r.py", "old_str": old, "new_str": new})).await;
    assert!(!out.is_error, "{}", out.content);
    assert!(
        out.content.contains("matched lines 3-6 with each line indented by 8 more character(s)"),
        "{}",
        out.content
    );
    assert_eq!(read(dir.path(), "r.py"), source.replace("total = 1", "total += 1"));
    // Where the shifted lines occur twice, nothing is guessed.
    let twice = "def a():\n    if c:\n        y = 1\ndef b():\n    if c:\n        y = 1\n";
    write(dir.path(), "twice.py", twice);
    let old = "if c:\n    y = 1";
    let out =
        run(&edit, &ctx, json!({"command": "str_replace", "path": "twice.py", "old_str": old, "new_str": "pass"}))
            .await;
    assert!(out.is_error && out.content.contains("does not occur"), "{}", out.content);
    assert_eq!(read(dir.path(), "twice.py"), twice);
}

#[tokio::test]
async fn str_replace_hints_at_whitespace_only_differences() {
    let (dir, ctx) = workspace();
    let edit = EditTool::default();
    write(dir.path(), "m.py", "class A:\n    def f(self):\n        return  1\n");
    let out = run(
        &edit,
        &ctx,
        json!({"command": "str_replace", "path": "m.py", "old_str": "def f(self):\n  return 1", "new_str": "x"}),
    )
    .await;
    assert!(out.is_error);
    assert!(out.content.contains("Ignoring whitespace, it matches lines 2-3"), "{}", out.content);
}

#[tokio::test]
async fn edits_keep_crlf_line_endings_and_the_trailing_newline_state() {
    let (dir, ctx) = workspace();
    let edit = EditTool::default();
    write(dir.path(), "w.txt", "one\r\ntwo\r\nthree\r\n");
    let out = run(
        &edit,
        &ctx,
        json!({"command": "str_replace", "path": "w.txt", "old_str": "two\nthree\n", "new_str": "2\n3"}),
    )
    .await;
    assert!(!out.is_error, "{}", out.content);
    assert_eq!(read(dir.path(), "w.txt"), "one\r\n2\r\n3\r\n");

    write(dir.path(), "n.txt", "a\nb");
    let out = run(&edit, &ctx, json!({"command": "insert", "path": "n.txt", "insert_line": 2, "new_str": "c"})).await;
    assert!(!out.is_error, "{}", out.content);
    assert_eq!(read(dir.path(), "n.txt"), "a\nb\nc");
}

#[tokio::test]
async fn insert_adds_lines_after_the_given_line() {
    let (dir, ctx) = workspace();
    let edit = EditTool::default();
    write(dir.path(), "f.txt", "a\nb\n");
    let out = run(&edit, &ctx, json!({"command": "insert", "path": "f.txt", "insert_line": 0, "new_str": "top"})).await;
    assert!(!out.is_error, "{}", out.content);
    assert!(out.content.contains("1\ttop"), "{}", out.content);
    run(&edit, &ctx, json!({"command": "insert", "path": "f.txt", "insert_line": 2, "new_str": "mid1\nmid2\n"})).await;
    run(&edit, &ctx, json!({"command": "insert", "path": "f.txt", "insert_line": 5, "new_str": "end"})).await;
    assert_eq!(read(dir.path(), "f.txt"), "top\na\nmid1\nmid2\nb\nend\n");
    let out = run(&edit, &ctx, json!({"command": "insert", "path": "f.txt", "insert_line": 99, "new_str": "x"})).await;
    assert!(out.is_error && out.content.contains("out of range"), "{}", out.content);
}

#[tokio::test]
async fn create_makes_new_files_and_rewrites_existing_ones_whole() {
    let (dir, ctx) = workspace();
    let edit = EditTool::default();
    let out = run(&edit, &ctx, json!({"command": "create", "path": "pkg/new.py", "file_text": "x = 1\n"})).await;
    assert!(!out.is_error, "{}", out.content);
    assert_eq!(read(dir.path(), "pkg/new.py"), "x = 1\n");

    write(dir.path(), "empty.py", "");
    let out = run(&edit, &ctx, json!({"command": "create", "path": "empty.py", "file_text": "z = 3\n"})).await;
    assert!(!out.is_error, "an empty file may be filled: {}", out.content);
    assert_eq!(read(dir.path(), "empty.py"), "z = 3\n");

    // A whole-file rewrite (what a small model writes): the changed lines are named and shown,
    // the file's CRLF endings and its final newline are kept, and `undo` brings the old text back.
    let old = "a = 1\r\nb = 2\r\nc = 3\r\nd = 4\r\n";
    write(dir.path(), "m.py", old);
    let out =
        run(&edit, &ctx, json!({"command": "create", "path": "m.py", "file_text": "a = 1\nb = 20\nc = 3\nd = 4"}))
            .await;
    assert!(!out.is_error, "{}", out.content);
    assert!(out.content.contains("rewrote `m.py` (changed lines 2-2, now lines 2-2)"), "{}", out.content);
    assert!(out.content.contains("2\tb = 20"), "{}", out.content);
    assert_eq!(read(dir.path(), "m.py"), "a = 1\r\nb = 20\r\nc = 3\r\nd = 4\r\n");
    let out = run(
        &edit,
        &ctx,
        json!({"command": "create", "path": "m.py", "file_text": "a = 1\nb = 20\nx\ny\nc = 3\nd = 4\n"}),
    )
    .await;
    assert!(out.content.contains("(inserted lines 3-4)"), "{}", out.content);
    let out = run(&edit, &ctx, json!({"command": "create", "path": "m.py", "file_text": "a = 1\nd = 4\n"})).await;
    assert!(out.content.contains("(removed lines 2-5)"), "{}", out.content);
    for _ in 0..3 {
        assert!(!run(&edit, &ctx, json!({"command": "undo", "path": "m.py"})).await.is_error);
    }
    assert_eq!(read(dir.path(), "m.py"), old);

    // Sending the file back unchanged changes nothing, and says so.
    let out =
        run(&edit, &ctx, json!({"command": "create", "path": "m.py", "file_text": "a = 1\nb = 2\nc = 3\nd = 4\n"}))
            .await;
    assert!(out.is_error && out.content.contains("identical"), "{}", out.content);

    // A file too long to resend whole is left to `str_replace`.
    let long: String = (0..401).map(|i| format!("v{i} = {i}\n")).collect();
    write(dir.path(), "long.py", &long);
    let out = run(&edit, &ctx, json!({"command": "create", "path": "long.py", "file_text": "v = 0\n"})).await;
    assert!(out.is_error && out.content.contains("too long to rewrite whole"), "{}", out.content);
    assert_eq!(read(dir.path(), "long.py"), long);
}

#[tokio::test]
async fn an_unknown_command_is_named_before_a_missing_path() {
    let (_dir, ctx) = workspace();
    let edit = EditTool::default();
    // A small model sent `finish` as an edit command, without a path.
    let out = run(&edit, &ctx, json!({"command": "finish", "summary": "fixed"})).await;
    assert!(out.is_error, "{}", out.content);
    assert!(
        out.content.contains("unknown edit command `finish`; use one of: str_replace, insert, create, undo"),
        "{}",
        out.content
    );
    assert!(out.content.contains("`finish` is a tool of its own"), "{}", out.content);
    let out = run(&edit, &ctx, json!({"command": "replace", "path": "x.py"})).await;
    assert!(out.is_error && !out.content.contains("tool of its own"), "{}", out.content);
    assert!(!out.content.contains("`bash` tool"), "{}", out.content);
    // Asked to run the tests, the editor points at the shell.
    let out = run(&edit, &ctx, json!({"command": "run", "path": "test_x.py"})).await;
    assert!(out.is_error && out.content.contains("run the tests or a check with the `bash` tool"), "{}", out.content);
}

#[tokio::test]
async fn undo_reverts_edits_one_by_one_and_deletes_created_files() {
    let (dir, ctx) = workspace();
    let edit = EditTool::default();
    run(&edit, &ctx, json!({"command": "create", "path": "u.txt", "file_text": "v1\n"})).await;
    run(&edit, &ctx, json!({"command": "str_replace", "path": "u.txt", "old_str": "v1", "new_str": "v2"})).await;
    run(&edit, &ctx, json!({"command": "str_replace", "path": "u.txt", "old_str": "v2", "new_str": "v3"})).await;
    assert_eq!(read(dir.path(), "u.txt"), "v3\n");

    let out = run(&edit, &ctx, json!({"command": "undo", "path": "u.txt"})).await;
    assert!(!out.is_error, "{}", out.content);
    assert_eq!(read(dir.path(), "u.txt"), "v2\n");
    run(&edit, &ctx, json!({"command": "undo", "path": "u.txt"})).await;
    assert_eq!(read(dir.path(), "u.txt"), "v1\n");
    let out = run(&edit, &ctx, json!({"command": "undo", "path": "u.txt"})).await;
    assert!(out.content.contains("deleted"), "{}", out.content);
    assert!(!dir.path().join("u.txt").exists());
    let out = run(&edit, &ctx, json!({"command": "undo", "path": "u.txt"})).await;
    assert!(out.is_error && out.content.contains("no edit"), "{}", out.content);
}

#[tokio::test]
async fn edits_outside_the_workspace_are_refused() {
    let outer = tempfile::tempdir().unwrap();
    let ws = outer.path().join("ws");
    fs::create_dir(&ws).unwrap();
    write(outer.path(), "secret.txt", "keep\n");
    std::os::unix::fs::symlink(outer.path(), ws.join("link")).unwrap();
    let ctx = ToolContext::new(&ws);
    let edit = EditTool::default();

    let outside = outer.path().join("abs.txt");
    for path in ["../x.txt", "sub/../../x.txt", outside.to_str().unwrap(), "link/secret.txt", "link/new.txt"] {
        let out = run(&edit, &ctx, json!({"command": "create", "path": path, "file_text": "pwned\n"})).await;
        assert!(out.is_error && out.content.contains("outside the workspace"), "{path}: {}", out.content);
    }
    let out = run(
        &edit,
        &ctx,
        json!({"command": "str_replace", "path": "link/secret.txt", "old_str": "keep", "new_str": "x"}),
    )
    .await;
    assert!(out.is_error && out.content.contains("outside the workspace"), "{}", out.content);
    assert_eq!(read(outer.path(), "secret.txt"), "keep\n");
    assert!(!outer.path().join("x.txt").exists() && !outside.exists());
}

#[tokio::test]
async fn an_edit_check_can_veto_an_edit() {
    struct NoTabs;
    impl rigor_tools::edit::EditCheck for NoTabs {
        fn check(&self, _path: &Path, _before: Option<&str>, after: &str) -> Result<(), String> {
            if after.contains('\t') { Err("tabs are not allowed".into()) } else { Ok(()) }
        }
    }
    let (dir, ctx) = workspace();
    let edit = EditTool::with_check(std::sync::Arc::new(NoTabs));
    write(dir.path(), "c.txt", "a\n");
    let out =
        run(&edit, &ctx, json!({"command": "str_replace", "path": "c.txt", "old_str": "a", "new_str": "\ta"})).await;
    assert!(out.is_error && out.content.contains("tabs are not allowed"), "{}", out.content);
    assert_eq!(read(dir.path(), "c.txt"), "a\n");
}

// ---------------------------------------------------------------- search

fn search_fixture(root: &Path) {
    write(root, ".gitignore", "build/\n");
    write(root, "src/app.py", "import os\n\ndef handler():\n    return os.getcwd()\n");
    write(root, "src/util.rs", "fn handler() {}\n");
    write(root, "build/gen.py", "def handler(): pass\n");
    write(root, ".hidden/h.py", "def handler(): pass\n");
    fs::write(root.join("src/data.bin"), b"handler\0\0\0binary").unwrap();
}

#[tokio::test]
async fn search_finds_matches_respecting_gitignore_and_skipping_binaries() {
    let (dir, ctx) = workspace();
    search_fixture(dir.path());
    let out = run(&SearchTool, &ctx, json!({"pattern": "handler"})).await;
    assert!(!out.is_error, "{}", out.content);
    assert_eq!(out.content, "src/app.py:3: def handler():\nsrc/util.rs:1: fn handler() {}");
}

#[tokio::test]
async fn search_filters_by_glob_path_and_case() {
    let (dir, ctx) = workspace();
    search_fixture(dir.path());
    let out = run(&SearchTool, &ctx, json!({"pattern": "handler", "glob": "*.rs"})).await;
    assert_eq!(out.content, "src/util.rs:1: fn handler() {}");
    let out =
        run(&SearchTool, &ctx, json!({"pattern": "HANDLER", "path": "src/app.py", "case_insensitive": true})).await;
    assert_eq!(out.content, "src/app.py:3: def handler():");
    let out = run(&SearchTool, &ctx, json!({"pattern": "HANDLER"})).await;
    assert!(!out.is_error && out.content.starts_with("no matches for `HANDLER`"), "{}", out.content);
}

#[tokio::test]
async fn search_reports_bad_regexes_and_caps_results() {
    let (dir, ctx) = workspace();
    write(dir.path(), "many.txt", &numbered(250));
    let out = run(&SearchTool, &ctx, json!({"pattern": "line (\\d+"})).await;
    assert!(out.is_error && out.content.contains("invalid regex"), "{}", out.content);

    let out = run(&SearchTool, &ctx, json!({"pattern": "^line"})).await;
    assert_eq!(out.content.lines().count(), 101, "{}", out.content);
    assert!(
        out.content
            .ends_with("[showing 100 of 250 matches; narrow the pattern, `path` or `glob`, or raise `max_results`]")
    );
    let out = run(&SearchTool, &ctx, json!({"pattern": "^line", "max_results": 3})).await;
    assert!(
        out.content.starts_with("many.txt:1: line 1\nmany.txt:2: line 2\nmany.txt:3: line 3\n[showing 3 of 250"),
        "{}",
        out.content
    );
}

// ---------------------------------------------------------------- tool box

fn call(name: &str, arguments: &str) -> ToolCall {
    ToolCall { id: "call-1".into(), name: name.into(), arguments: arguments.into() }
}

#[tokio::test]
async fn the_tool_box_reports_unknown_tools_and_malformed_arguments() {
    let (_dir, ctx) = workspace();
    let tools = ToolBox::standard(ctx);
    let names: Vec<String> = tools.specs().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["bash", "python", "view", "edit", "search", "finish", "abstain"]);

    let out = tools.call(&call("grep", "{}")).await;
    assert!(out.is_error && out.content.contains("unknown tool `grep`"), "{}", out.content);
    assert!(out.content.contains("bash, python, view, edit, search, finish, abstain"), "{}", out.content);

    let out = tools.call(&call("view", "{\"path\": ")).await;
    assert!(out.is_error && out.content.contains("not valid JSON"), "{}", out.content);

    let out = tools.call(&call("view", "{}")).await;
    assert!(out.is_error && out.content.contains("`path`"), "{}", out.content);
}

#[tokio::test]
async fn finish_and_abstain_stop_the_run() {
    let (_dir, ctx) = workspace();
    let tools = ToolBox::standard(ctx);
    let out = tools.call(&call("finish", r#"{"summary": "fixed"}"#)).await;
    assert_eq!(out.stop, Some(Stop::Finish { summary: "fixed".into() }));
    let out = tools.call(&call("abstain", r#"{"reason": "too vague"}"#)).await;
    assert_eq!(out.stop, Some(Stop::Abstain { reason: "too vague".into() }));
    let out = tools.call(&call("finish", "{}")).await;
    assert!(out.is_error && out.stop.is_none());
}

#[test]
fn tool_descriptions_are_concise() {
    let tools = ToolBox::standard(ToolContext::new("."));
    for spec in tools.specs() {
        assert!(spec.description.len() <= 220, "{}: {} chars", spec.name, spec.description.len());
    }
}

// ---------------------------------------------------------------- confinement (host-side attacks)

/// A workspace inside a temporary directory that also holds an `outside` directory with a secret.
fn world() -> (tempfile::TempDir, ToolContext, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().join("ws");
    let outside = dir.path().join("outside");
    fs::create_dir_all(&ws).unwrap();
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("id_rsa"), "CANARY-PRIVATE-KEY\n").unwrap();
    let ctx = ToolContext::new(&ws);
    (dir, ctx, outside)
}

#[tokio::test]
async fn view_and_search_read_nothing_outside_the_workspace() {
    let (_dir, ctx, outside) = world();
    std::os::unix::fs::symlink(outside.join("id_rsa"), ctx.workspace.join("key")).unwrap();
    std::os::unix::fs::symlink(&outside, ctx.workspace.join("out")).unwrap();
    let key = outside.join("id_rsa").display().to_string();
    let proc_root = format!("/proc/self/root{key}");
    for path in [key.as_str(), "../outside/id_rsa", "key", "out/id_rsa", proc_root.as_str(), "/proc/self/environ"] {
        let out = run(&ViewTool, &ctx, json!({"path": path})).await;
        assert!(out.is_error && !out.content.contains("CANARY"), "view {path}: {}", out.content);
    }
    for path in [outside.display().to_string(), "..".into(), "out".into(), "/".into()] {
        let out = run(&SearchTool, &ctx, json!({"pattern": "CANARY", "path": path})).await;
        assert!(!out.content.contains("CANARY-PRIVATE"), "search {path}: {}", out.content);
    }
}

#[tokio::test]
async fn a_fifo_does_not_block_view_or_edit() {
    let (_dir, ctx, _outside) = world();
    assert!(std::process::Command::new("mkfifo").arg(ctx.workspace.join("pipe")).status().unwrap().success());
    let out = run(&ViewTool, &ctx, json!({"path": "pipe"})).await;
    assert!(out.is_error && out.content.contains("FIFO"), "{}", out.content);
    let out = run(
        &EditTool::default(),
        &ctx,
        json!({"command": "str_replace", "path": "pipe", "old_str": "a", "new_str": "b"}),
    )
    .await;
    assert!(out.is_error, "{}", out.content);
    let out = run(&SearchTool, &ctx, json!({"pattern": "x"})).await;
    assert!(!out.is_error, "{}", out.content);
}

#[tokio::test]
async fn edits_racing_a_directory_symlink_swap_never_land_outside() {
    use rustix::fs::{RenameFlags, renameat_with};
    let (_dir, ctx, outside) = world();
    let ws = ctx.workspace.clone();
    fs::create_dir_all(ws.join("d")).unwrap();
    std::os::unix::fs::symlink(&outside, ws.join("swap")).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (stop, ws) = (stop.clone(), ws.clone());
        std::thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = renameat_with(
                    rustix::fs::CWD,
                    ws.join("d"),
                    rustix::fs::CWD,
                    ws.join("swap"),
                    RenameFlags::EXCHANGE,
                );
                swaps += 1;
            }
            swaps
        })
    };
    let editor = EditTool::default();
    for i in 0..300 {
        let _ =
            run(&editor, &ctx, json!({"command": "create", "path": format!("d/f{i}.txt"), "file_text": "x\n"})).await;
        let _ =
            run(&editor, &ctx, json!({"command": "create", "path": "d/id_rsa", "file_text": "overwritten\n"})).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(swaps > 0);
    let leaked: Vec<String> =
        fs::read_dir(&outside).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(leaked, vec!["id_rsa".to_string()], "files written outside the workspace");
    assert_eq!(fs::read_to_string(outside.join("id_rsa")).unwrap(), "CANARY-PRIVATE-KEY\n");
}

#[tokio::test]
async fn a_read_only_sandbox_stops_the_editor() {
    let (_dir, mut ctx, _outside) = world();
    let settings = rigor_sandbox::SandboxSettings { mode: rigor_sandbox::SandboxMode::ReadOnly, ..Default::default() };
    match rigor_sandbox::Sandbox::new(rigor_sandbox::SandboxSpec::new(&ctx.workspace, settings)) {
        Ok(sandbox) => ctx.sandbox = std::sync::Arc::new(sandbox),
        Err(err) => panic!("the sandbox is needed for this test (install bubblewrap): {err}"),
    }
    let out = run(&EditTool::default(), &ctx, json!({"command": "create", "path": "new.txt", "file_text": "x"})).await;
    assert!(out.is_error && out.content.contains("read-only"), "{}", out.content);
    assert!(!ctx.workspace.join("new.txt").exists());
}
