//! Reading unified diffs (`git diff`, `diff -u`): the files a diff changes and, for each hunk, its
//! line ranges and the number of every line it shows. Pure text; nothing here runs git.
//!
//! Lenient as git is: an empty line inside a hunk is a context line (whitespace-damaged diffs),
//! `\ No newline at end of file` is skipped, and lines after a hunk's counts run out still count
//! while they look like hunk lines. A `--- `/`+++ ` line is a file header, not a removed or added
//! line, unless the current hunk still expects such a line (a removed `-- comment`).

/// One file of a diff.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileDiff {
    /// The `b/` path of the `diff --git a/… b/…` header, if there is one (split at the first ` b/`).
    pub git_path: Option<String>,
    /// The `--- ` path without its `a/` prefix and timestamp; `None` for `/dev/null` (a new file)
    /// or without that header.
    pub old_path: Option<String>,
    /// The `+++ ` path without its `b/` prefix and timestamp; `None` for `/dev/null` (a deleted
    /// file) or without that header.
    pub new_path: Option<String>,
    /// The hunks, in order.
    pub hunks: Vec<Hunk>,
}

/// One `@@ -old_start,old_len +new_start,new_len @@` hunk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hunk {
    /// First line of the original range (0 when empty or unreadable).
    pub old_start: u32,
    /// Lines of the original range (1 when the header omits it).
    pub old_len: u32,
    /// First line of the new range (0 when empty or unreadable).
    pub new_start: u32,
    /// Lines of the new range (1 when the header omits it).
    pub new_len: u32,
    /// The lines of the hunk, in order.
    pub lines: Vec<HunkLine>,
}

/// What a hunk line does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// Kept (` ` or an empty line).
    Context,
    /// Only in the original (`-`).
    Removed,
    /// Only in the new file (`+`).
    Added,
}

/// One line of a hunk with its positions: `old` is its number in the original file (for an added
/// line: the number of the original line it is inserted before), `new` its number in the new file
/// (for a removed line: the number of the new line that follows the removal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HunkLine {
    /// Context, removed or added.
    pub kind: LineKind,
    /// Position in the original file.
    pub old: u32,
    /// Position in the new file.
    pub new: u32,
}

/// The files of `diff`, in order.
pub fn parse(diff: &str) -> Vec<FileDiff> {
    let mut files: Vec<FileDiff> = Vec::new();
    // Whether the current file has had its `---` / `+++` header.
    let (mut seen_old, mut seen_new) = (false, false);
    // Inside a hunk: the lines still expected (old, new) and the next line numbers (old, new).
    let mut in_hunk = false;
    let (mut left, mut next) = ((0u32, 0u32), (0u32, 0u32));
    for line in diff.lines() {
        if in_hunk {
            let kind = match line.as_bytes().first() {
                None | Some(b' ') => Some(LineKind::Context),
                Some(b'-') if !line.starts_with("--- ") || left.0 > 0 => Some(LineKind::Removed),
                Some(b'+') if !line.starts_with("+++ ") || left.1 > 0 => Some(LineKind::Added),
                Some(b'\\') => continue,
                _ => None,
            };
            if let Some(kind) = kind
                && let Some(hunk) = files.last_mut().and_then(|f| f.hunks.last_mut())
            {
                hunk.lines.push(HunkLine { kind, old: next.0, new: next.1 });
                if kind != LineKind::Added {
                    (next.0, left.0) = (next.0 + 1, left.0.saturating_sub(1));
                }
                if kind != LineKind::Removed {
                    (next.1, left.1) = (next.1 + 1, left.1.saturating_sub(1));
                }
                continue;
            }
            in_hunk = false;
        }
        if let Some(rest) = line.strip_prefix("diff --git ") {
            let git_path = rest.strip_prefix("a/").and_then(|r| r.find(" b/").map(|p| r[p + 3..].to_string()));
            files.push(FileDiff { git_path, ..FileDiff::default() });
            (seen_old, seen_new) = (false, false);
        } else if let Some(rest) = line.strip_prefix("--- ") {
            if files.last().is_none_or(|f| seen_old || seen_new || !f.hunks.is_empty()) {
                files.push(FileDiff::default());
                seen_new = false;
            }
            seen_old = true;
            if let Some(f) = files.last_mut() {
                f.old_path = header_path(rest, "a/");
            }
        } else if let Some(rest) = line.strip_prefix("+++ ") {
            if files.last().is_none_or(|f| seen_new || !f.hunks.is_empty()) {
                files.push(FileDiff::default());
                seen_old = false;
            }
            seen_new = true;
            if let Some(f) = files.last_mut() {
                f.new_path = header_path(rest, "b/");
            }
        } else if let Some(rest) = line.strip_prefix("@@ -") {
            let hunk = hunk_header(rest);
            (left, next) = ((hunk.old_len, hunk.new_len), (hunk.old_start, hunk.new_start));
            if files.is_empty() {
                files.push(FileDiff::default());
            }
            if let Some(f) = files.last_mut() {
                f.hunks.push(hunk);
                in_hunk = true;
            }
        }
    }
    files
}

/// The path of a `---`/`+++` header: up to a tab (a timestamp follows), without `prefix`;
/// `None` for `/dev/null`.
fn header_path(rest: &str, prefix: &str) -> Option<String> {
    let path = rest.split('\t').next().unwrap_or(rest).trim_end();
    (path != "/dev/null").then(|| path.strip_prefix(prefix).unwrap_or(path).to_string())
}

/// `a,b +c,d @@ …` after `@@ -`.
fn hunk_header(rest: &str) -> Hunk {
    let range = |s: Option<&str>| -> (u32, u32) {
        let Some(s) = s else { return (0, 0) };
        let (start, len) = s.split_once(',').unwrap_or((s, "1"));
        (start.parse().unwrap_or(0), len.parse().unwrap_or(1))
    };
    let mut parts = rest.split(' ');
    let (old_start, old_len) = range(parts.next());
    let (new_start, new_len) = range(parts.next().and_then(|p| p.strip_prefix('+')));
    Hunk { old_start, old_len, new_start, new_len, lines: Vec::new() }
}

/// The lines of the original files a diff changes, as (path, line) pairs (an insertion counts as
/// the line before it), and the files it creates (line `None`).
pub fn original_lines(patch: &str) -> Vec<(String, Option<u32>)> {
    let mut out = Vec::new();
    for file in parse(patch) {
        let Some(path) = file.old_path else {
            out.extend(file.new_path.map(|p| (p, None)));
            continue;
        };
        for line in file.hunks.iter().flat_map(|h| &h.lines) {
            match line.kind {
                LineKind::Removed => out.push((path.clone(), Some(line.old))),
                // An insertion belongs to the entity around the line before it.
                LineKind::Added => out.push((path.clone(), Some(line.old.saturating_sub(1).max(1)))),
                LineKind::Context => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(h: &Hunk) -> Vec<(LineKind, u32, u32)> {
        h.lines.iter().map(|l| (l.kind, l.old, l.new)).collect()
    }

    #[test]
    fn original_lines_map_removals_and_insertions_to_original_lines() {
        let patch = "diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -3,4 +3,5 @@\n ctx3\n-old4\n+new4\n ctx5\n+added\n ctx6\n--- /dev/null\n+++ b/new.py\n@@ -0,0 +1 @@\n+x\n";
        assert_eq!(
            original_lines(patch),
            vec![("x.py".into(), Some(4)), ("x.py".into(), Some(4)), ("x.py".into(), Some(5)), ("new.py".into(), None),]
        );
    }

    #[test]
    fn files_hunks_and_line_numbers() {
        let diff = "diff --git a/x.py b/x.py\nindex 1..2 100644\n--- a/x.py\n+++ b/x.py\n@@ -3,3 +3,4 @@ def f():\n ctx3\n-old4\n+new4\n+added\n ctx5\n\\ No newline at end of file\ndiff --git a/new.py b/new.py\nnew file mode 100644\n--- /dev/null\n+++ b/new.py\n@@ -0,0 +1 @@\n+x\n";
        let files = parse(diff);
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].git_path.as_deref(), Some("x.py"));
        assert_eq!((files[0].old_path.as_deref(), files[0].new_path.as_deref()), (Some("x.py"), Some("x.py")));
        let h = &files[0].hunks[0];
        assert_eq!((h.old_start, h.old_len, h.new_start, h.new_len), (3, 3, 3, 4));
        use LineKind::*;
        assert_eq!(kinds(h), vec![(Context, 3, 3), (Removed, 4, 4), (Added, 5, 4), (Added, 5, 5), (Context, 5, 6)]);
        assert_eq!((files[1].old_path.as_deref(), files[1].new_path.as_deref()), (None, Some("new.py")));
        let h = &files[1].hunks[0];
        assert_eq!((h.old_start, h.old_len, h.new_start, h.new_len), (0, 0, 1, 1));
        assert_eq!(kinds(h), vec![(Added, 0, 1)]);
    }

    #[test]
    fn plain_unified_diffs_timestamps_and_header_like_lines() {
        // No `diff --git` lines; a timestamp after a tab; a removed `-- comment` line, which looks
        // like a `---` header but is expected by the hunk; an empty context line.
        let diff = "--- a/q.sql\t2020-01-01\n+++ b/q.sql\t2020-01-02\n@@ -1,3 +1,2 @@\n--- comment\n select 1;\n\n--- a/r.py\n+++ b/r.py\n@@ -5 +5 @@\n-a\n+b\n";
        let files = parse(diff);
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].old_path.as_deref(), Some("q.sql"));
        assert_eq!(files[0].new_path.as_deref(), Some("q.sql"));
        use LineKind::*;
        assert_eq!(kinds(&files[0].hunks[0]), vec![(Removed, 1, 1), (Context, 2, 1), (Context, 3, 2)]);
        assert_eq!(files[1].git_path, None);
        assert_eq!(files[1].old_path.as_deref(), Some("r.py"));
        let h = &files[1].hunks[0];
        assert_eq!((h.old_start, h.old_len, h.new_start, h.new_len), (5, 1, 5, 1));
        assert_eq!(kinds(h), vec![(Removed, 5, 5), (Added, 6, 5)]);
    }

    #[test]
    fn headers_without_hunks_and_deleted_files() {
        let diff = "diff --git a/img.png b/img.png\nBinary files differ\ndiff --git a/gone.py b/gone.py\ndeleted file mode 100644\n--- a/gone.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-x\n";
        let files = parse(diff);
        assert_eq!(files.len(), 2);
        assert_eq!(files[0], FileDiff { git_path: Some("img.png".into()), ..FileDiff::default() });
        assert_eq!((files[1].old_path.as_deref(), files[1].new_path.as_deref()), (Some("gone.py"), None));
        assert_eq!(files[1].hunks[0].lines.len(), 1);
    }
}
