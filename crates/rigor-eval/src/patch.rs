//! Applying a patch to a worktree exactly as the official harness does.
//!
//! The patch is written to a file and tried with, in order, `git apply --verbose`,
//! `git apply --verbose --reject` and `patch --batch --fuzz=5 -p1 -i`; the first that exits 0
//! wins (like the official harness, a partial `--reject` attempt is not undone before the next).
//! The test patch goes in with [`apply_test_patch`]: the files it modifies are first checked out
//! from the base commit (undoing any change the prediction made to them), then `git apply -v`.
//! This module does not decide what to run afterwards.

use std::path::Path;

use rigor_testing::process::Cmd;

/// Printed in the log when every way of applying the patch failed (official marker).
pub const APPLY_PATCH_FAIL: &str = ">>>>> Patch Apply Failed";
/// Printed in the log when the patch applied (official marker).
pub const APPLY_PATCH_PASS: &str = ">>>>> Applied Patch";

/// The commands tried in order, as in the official harness.
pub const APPLY_COMMANDS: [&[&str]; 3] = [
    &["git", "apply", "--verbose"],
    &["git", "apply", "--verbose", "--reject"],
    &["patch", "--batch", "--fuzz=5", "-p1", "-i"],
];

/// The outcome of applying one patch.
#[derive(Debug, Clone)]
pub struct Applied {
    /// Whether some command applied it.
    pub ok: bool,
    /// The command that did (`git apply --verbose`, …).
    pub method: Option<String>,
    /// Everything the commands printed, with the official markers.
    pub log: String,
}

/// Applies `patch` (unified diff text) in `dir`, keeping a copy at `patch_file`.
pub async fn apply_patch(dir: &Path, patch: &str, patch_file: &Path) -> std::io::Result<Applied> {
    let mut text = patch.to_string();
    if !text.ends_with('\n') {
        text.push('\n'); // `git apply` rejects a patch whose last line has no newline ("corrupt patch")
    }
    std::fs::write(patch_file, &text)?;
    let file = patch_file.to_string_lossy().to_string();
    let mut log = String::new();
    for command in APPLY_COMMANDS {
        let mut args: Vec<&str> = command[1..].to_vec();
        args.push(&file);
        let done = Cmd::new(command[0], &args, dir).run().await?;
        let shown = format!("{} {}", command.join(" "), file);
        log.push_str(&format!("+ {shown}\n{}", done.output));
        if done.success() {
            log.push_str(&format!("{APPLY_PATCH_PASS} ({})\n", command.join(" ")));
            return Ok(Applied { ok: true, method: Some(command.join(" ")), log });
        }
        log.push_str(&format!("Failed to apply patch with: {}\n", command.join(" ")));
    }
    log.push_str(&format!("{APPLY_PATCH_FAIL}:\n"));
    Ok(Applied { ok: false, method: None, log })
}

/// Files a diff modifies that existed before it (`--- a/<path>` headers).
pub fn modified_files(diff: &str) -> Vec<String> {
    let mut files: Vec<String> = rigor_git::diff::parse(diff).into_iter().filter_map(|f| f.old_path).collect();
    files.dedup();
    files
}

/// Resets the files the test patch modifies to `base_commit`, then applies it with `git apply -v`.
pub async fn apply_test_patch(
    dir: &Path,
    base_commit: &str,
    test_patch: &str,
    patch_file: &Path,
) -> std::io::Result<Applied> {
    let mut log = String::new();
    let files = modified_files(test_patch);
    if !files.is_empty() {
        let mut args = vec!["checkout", base_commit, "--"];
        args.extend(files.iter().map(String::as_str));
        let done = Cmd::new("git", &args, dir).run().await?;
        log.push_str(&format!("+ git {}\n{}", args.join(" "), done.output));
    }
    let mut text = test_patch.to_string();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    std::fs::write(patch_file, &text)?;
    let file = patch_file.to_string_lossy().to_string();
    let done = Cmd::new("git", &["apply", "-v", &file], dir).run().await?;
    log.push_str(&format!("+ git apply -v {file}\n{}", done.output));
    Ok(Applied { ok: done.success(), method: Some("git apply -v".into()), log })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use rigor_testing::directives::touched_files;

    use super::*;

    const DIFF: &str = "diff --git a/tests/test_a.py b/tests/test_a.py\n--- a/tests/test_a.py\n+++ b/tests/test_a.py\n@@ -1 +1 @@\n-x\n+y\ndiff --git a/tests/new.py b/tests/new.py\nnew file mode 100644\n--- /dev/null\n+++ b/tests/new.py\n@@ -0,0 +1 @@\n+z\n";

    #[test]
    fn lists_modified_and_touched_files() {
        assert_eq!(modified_files(DIFF), vec!["tests/test_a.py"]);
        assert_eq!(touched_files(DIFF), vec!["tests/test_a.py", "tests/new.py"]);
    }
}
