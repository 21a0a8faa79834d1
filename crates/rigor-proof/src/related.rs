//! The existing tests related to a fix, by the code graph of the original code: test files that
//! import, call or subclass what the fix changes (the changed entity, its top-level entity, or
//! the changed file itself). The prover adds the test modules of the changed files by name.

use std::collections::BTreeSet;
use std::path::Path;

use rigor_graph::store::Index;

use crate::tests_in::is_test_file;

/// Test files of `original` (relative paths) whose code uses what `fix_patch` changes. Empty when
/// the tree cannot be indexed.
pub fn graph_related(original: &Path, fix_patch: &str) -> Vec<String> {
    let mut index = Index::in_memory(original);
    if index.update().is_err() {
        return Vec::new();
    }
    let g = index.graph();
    let mut changed = BTreeSet::new();
    for (path, line) in rigor_git::diff::original_lines(fix_patch) {
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

#[cfg(test)]
mod tests {
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
}
