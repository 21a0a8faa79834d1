//! The existing tests related to a fix, by the code graph of the original code: test files that
//! import, call or subclass what the fix changes (the changed entity, its top-level entity, or
//! the changed file itself), and by name: the test modules of the changed files and the test
//! files that import them ([`related_tests`]). The prover and `rigor mcp`'s `run_tests` use both.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rigor_graph::store::Index;
use rigor_testing::project::Project;

use crate::tests_in::{is_test_file, test_functions, test_id};

/// Test files of `original` (relative paths) whose code uses what `fix_patch` changes. Empty when
/// the tree cannot be indexed.
pub fn graph_related(original: &Path, fix_patch: &str) -> Vec<String> {
    related_to_lines(original, rigor_git::diff::original_lines(fix_patch))
}

/// Test files of `root` (relative paths) whose code uses the files `files` (relative paths) or
/// anything in them. Empty when the tree cannot be indexed.
pub fn graph_related_files(root: &Path, files: &[String]) -> Vec<String> {
    related_to_lines(root, files.iter().map(|f| (f.clone(), None)).collect())
}

/// Test files using what is at these (path, original line) places; a `None` line is the file.
fn related_to_lines(original: &Path, lines: Vec<(String, Option<u32>)>) -> Vec<String> {
    let mut index = Index::in_memory(original);
    if index.update().is_err() {
        return Vec::new();
    }
    let g = index.graph();
    let mut changed = BTreeSet::new();
    for (path, line) in lines {
        let Some(fi) = g.file_index(&path) else { continue };
        changed.insert(g.file_node(fi));
        if let Some(entity) = line.and_then(|l| g.entity_at(fi, l)) {
            changed.insert(entity);
            changed.insert(g.top_level(entity));
        }
    }
    let mut files = BTreeSet::new();
    for node in changed {
        for (user, _) in g.incoming(node) {
            let path = g.path_of(*user);
            if is_test_file(path) {
                files.insert(path.to_string());
            }
        }
    }
    files.into_iter().collect()
}

/// The existing test files related to the changed code files (their test modules by name, test
/// files that import them, and `by_graph`: those the code graph shows using what changed; every
/// test file with `every_file`), and their tests' ids (the reproduction's excluded).
pub fn related_tests(
    original: &Path,
    changed: &[String],
    project: &Project,
    exclude: &[String],
    (every_file, by_graph): (bool, &[String]),
) -> (Vec<String>, Vec<String>) {
    // The changed modules' names, and their package's when it is a subpackage (astroid/nodes/
    // as_string.py: `as_string` and `nodes`; a top-level package would relate every test).
    let is_package = |dir: &Path| original.join(dir).join("__init__.py").is_file();
    let mut stems: Vec<String> = Vec::new();
    for path in changed.iter().filter(|p| !is_test_file(p) && p.ends_with(".py")) {
        let path = Path::new(path);
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if stem != "__init__" && stem != "setup" {
            stems.push(stem);
        }
        if let Some(parent) = path.parent().filter(|p| is_package(p))
            && parent.parent().is_some_and(|g| !g.as_os_str().is_empty() && is_package(g))
            && let Some(name) = parent.file_name()
        {
            stems.push(name.to_string_lossy().into_owned());
        }
    }
    stems.sort();
    stems.dedup();
    if stems.is_empty() && !every_file && by_graph.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let mut files = Vec::new();
    let mut ids = Vec::new();
    for path in test_files_under(original) {
        let Ok(text) = std::fs::read_to_string(original.join(&path)) else { continue };
        let name = Path::new(&path).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let related = every_file
            || by_graph.contains(&path)
            || stems.iter().any(|stem| {
                name == format!("test_{stem}")
                    || name == format!("{stem}_test")
                    || name.ends_with(&format!("_{stem}"))
                    || text.lines().any(|l| {
                        let l = l.trim_start();
                        (l.starts_with("import ") || l.starts_with("from "))
                            && l.split(|c: char| !c.is_alphanumeric() && c != '_').any(|word| word == stem)
                    })
            });
        if !related {
            continue;
        }
        let tests: Vec<String> = test_functions(&path, &text)
            .iter()
            .map(|t| test_id(project.runner, &path, t))
            .filter(|id| !exclude.contains(id))
            .collect();
        if !tests.is_empty() {
            files.push(path);
            ids.extend(tests);
        }
    }
    (files, ids)
}

/// Test files under `root` (relative paths), skipping hidden and vendored directories.
pub fn test_files_under(root: &Path) -> Vec<String> {
    const SKIP: [&str; 5] = ["node_modules", "target", "venv", "build", "dist"];
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(root.join(&rel)) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let child = rel.join(&name);
            match entry.file_type() {
                Ok(t) if t.is_dir() && !name.starts_with('.') && !SKIP.contains(&name.as_str()) => stack.push(child),
                Ok(t) if t.is_file() && is_test_file(&child.to_string_lossy()) => {
                    out.push(child.to_string_lossy().into_owned())
                }
                _ => {}
            }
            if out.len() >= 5_000 {
                return out;
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use rigor_testing::project::Runner;

    use super::*;

    #[test]
    fn a_test_file_calling_the_changed_function_is_related_one_that_does_not_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("pkg/__init__.py", "");
        write("pkg/core.py", "def parse(text):\n    return len(text)\n\n\ndef other():\n    return 1\n");
        // Named after nothing the fix touches, but calls the changed function.
        write("tests/test_cli.py", "from pkg.core import parse\n\n\ndef test_cli():\n    assert parse('a') == 1\n");
        write("tests/test_misc.py", "import json\n\n\ndef test_misc():\n    assert json\n");
        let fix = "diff --git a/pkg/core.py b/pkg/core.py\n--- a/pkg/core.py\n+++ b/pkg/core.py\n@@ -1,2 +1,2 @@\n def parse(text):\n-    return len(text)\n+    return len(text.strip())\n";
        assert_eq!(graph_related(dir.path(), fix), ["tests/test_cli.py"]);
    }

    #[test]
    fn related_tests_are_the_changed_modules_tests_or_with_the_full_suite_every_test() {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("durations.py", "");
        write("tests/test_durations.py", "from durations import parse\n\ndef test_a():\n    assert parse\n");
        write("tests/test_other.py", "import json\n\ndef test_b():\n    assert json\n");
        let project = Project { root: dir.path().into(), runner: Runner::Pytest, python: None, entry: None };
        let changed = vec!["durations.py".to_string()];
        let (files, ids) = related_tests(dir.path(), &changed, &project, &[], (false, &[]));
        assert_eq!(
            (files, ids),
            (vec!["tests/test_durations.py".to_string()], vec!["tests/test_durations.py::test_a".to_string()])
        );
        let (files, ids) = related_tests(dir.path(), &changed, &project, &[], (true, &[]));
        assert_eq!(files.len(), 2);
        assert!(ids.contains(&"tests/test_other.py::test_b".to_string()), "{ids:?}");
    }
}
