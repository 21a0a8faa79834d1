//! Which tests to run for a test patch: the test files it touches.
//!
//! As in the official SWE-bench harness: every file named by a `diff --git` header of the test patch, less
//! files with a non-test extension (json, png, csv, txt, md, jpg, jpeg, pkl, yml, yaml, toml);
//! for Django, dotted module names relative to `tests/` without `.py`. For Rust and Go specs the
//! whole suite runs (their directives are empty). This module does not run anything.

/// Extensions (suffixes) of files that are not tests, exactly as the official list (whose `csv`
/// has no dot).
pub const NON_TEST_EXTS: [&str; 11] =
    [".json", ".png", "csv", ".txt", ".md", ".jpg", ".jpeg", ".pkl", ".yml", ".yaml", ".toml"];

/// How directives are written for the test runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DirectiveStyle {
    /// Paths of the test files (pytest, sympy's bin/test, jest, mocha).
    #[default]
    Paths,
    /// Django's runner: `tests/a/b.py` → `a.b`.
    DjangoModules,
    /// Run the whole suite; no directives (cargo test, go test ./...).
    None,
}

/// Files a diff touches (`diff --git a/… b/<path>` headers), in order.
pub fn touched_files(diff: &str) -> Vec<String> {
    let mut files = Vec::new();
    for path in rigor_git::diff::parse(diff).into_iter().filter_map(|f| f.git_path) {
        if !files.contains(&path) {
            files.push(path);
        }
    }
    files
}

/// The test directives of `test_patch`.
pub fn test_directives(test_patch: &str, style: DirectiveStyle) -> Vec<String> {
    let files: Vec<String> =
        touched_files(test_patch).into_iter().filter(|f| !NON_TEST_EXTS.iter().any(|ext| f.ends_with(ext))).collect();
    match style {
        DirectiveStyle::Paths => files,
        DirectiveStyle::None => Vec::new(),
        DirectiveStyle::DjangoModules => files
            .into_iter()
            .map(|f| {
                let f = f.strip_suffix(".py").unwrap_or(&f);
                let f = f.strip_prefix("tests/").unwrap_or(f);
                f.replace('/', ".")
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = "diff --git a/tests/forms_tests/test_x.py b/tests/forms_tests/test_x.py\n--- a/tests/forms_tests/test_x.py\n+++ b/tests/forms_tests/test_x.py\ndiff --git a/tests/data/a.json b/tests/data/a.json\ndiff --git a/tests/data/b.csv b/tests/data/b.csv\ndiff --git a/src/conftest.py b/src/conftest.py\n";

    #[test]
    fn paths_drop_non_test_files() {
        assert_eq!(
            test_directives(PATCH, DirectiveStyle::Paths),
            vec!["tests/forms_tests/test_x.py", "src/conftest.py"]
        );
    }

    #[test]
    fn django_uses_dotted_modules_without_tests_prefix() {
        assert_eq!(test_directives(PATCH, DirectiveStyle::DjangoModules), vec!["forms_tests.test_x", "src.conftest"]);
    }
}
