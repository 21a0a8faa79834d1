//! Cutting long observations down to a budget while keeping what matters most.
//!
//! Command output usually carries its meaning at both ends: the head says what ran, the tail says
//! how it ended (the failing assertion, the compiler's last error). [`truncate_middle`] keeps both
//! and replaces the middle with a note that says how much was cut, so the model knows that text is
//! missing and can ask for it more narrowly.
//!
//! This module counts characters, not tokens, and knows nothing about which tool produced the text.

/// Share of the budget given to the head; the rest goes to the tail, where errors usually are.
const HEAD_SHARE: f64 = 0.4;

/// Returns `text` unchanged when it has at most `max_chars` characters; otherwise keeps about 40%
/// of the budget from the head and 60% from the tail, cut at line boundaries when a boundary is
/// near, with a note in the middle such as `[... 12,345 characters (210 lines) omitted ...]`.
///
/// The kept parts never exceed `max_chars` characters (the note comes on top) and every cut falls
/// on a `char` boundary.
pub fn truncate_middle(text: &str, max_chars: usize) -> String {
    let total_chars = text.chars().count();
    if total_chars <= max_chars {
        return text.to_string();
    }
    let head_chars = (max_chars as f64 * HEAD_SHARE) as usize;
    let tail_chars = max_chars - head_chars;

    let mut head_end = byte_index_of_char(text, head_chars);
    let mut tail_start = byte_index_of_char(text, total_chars - tail_chars);

    // Prefer line boundaries when one is in the second half of the head (or the first half of
    // the tail): whole lines read better than a line cut mid-word.
    if let Some(newline) = text[..head_end].rfind('\n')
        && newline + 1 >= head_end / 2
    {
        head_end = newline + 1;
    }
    let tail_len = text.len() - tail_start;
    if let Some(newline) = text[tail_start..].find('\n')
        && newline < tail_len / 2
    {
        tail_start += newline + 1;
    }

    let omitted = &text[head_end..tail_start];
    let omitted_chars = omitted.chars().count();
    let omitted_lines = omitted.matches('\n').count();
    let head = &text[..head_end];
    let tail = &text[tail_start..];
    let lead = if head.is_empty() || head.ends_with('\n') { "" } else { "\n" };
    let trail = if tail.is_empty() { "" } else { "\n" };
    format!(
        "{head}{lead}[... {} characters ({} lines) omitted ...]{trail}{tail}",
        group_thousands(omitted_chars),
        group_thousands(omitted_lines)
    )
}

/// Byte index of the `n`th character, or `text.len()` when there are fewer.
fn byte_index_of_char(text: &str, n: usize) -> usize {
    text.char_indices().nth(n).map_or(text.len(), |(i, _)| i)
}

/// `12345` → `12,345`.
pub fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_unchanged() {
        assert_eq!(truncate_middle("hello\nworld\n", 100), "hello\nworld\n");
        assert_eq!(truncate_middle("", 0), "");
    }

    #[test]
    fn long_text_keeps_head_and_tail_with_a_note() {
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        let out = truncate_middle(&text, 500);
        assert!(out.starts_with("line 0\nline 1\n"), "{out}");
        assert!(out.ends_with("line 999\n"), "{out}");
        assert!(out.contains("characters ("), "{out}");
        assert!(out.contains("lines) omitted ...]"), "{out}");
        // Cuts fall on line boundaries.
        for line in out.lines() {
            assert!(line.starts_with("line ") || line.starts_with("[..."), "bad line {line:?}");
        }
        // The tail gets the larger share.
        let note = out.find("[...").unwrap();
        assert!(note < out.len() - note);
    }

    #[test]
    fn note_counts_what_was_cut() {
        let text = "a".repeat(10_000);
        let out = truncate_middle(&text, 100);
        assert!(out.contains("[... 9,900 characters (0 lines) omitted ...]"), "{out}");
        assert_eq!(out.chars().filter(|c| *c == 'a').count(), 100);
    }

    #[test]
    fn multibyte_text_is_cut_on_char_boundaries() {
        let text = "é€😀".repeat(1000);
        let out = truncate_middle(&text, 101);
        assert!(out.contains("omitted"));
        assert_eq!(out.chars().filter(|c| !c.is_ascii()).count(), 101);
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1000), "1,000");
        assert_eq!(group_thousands(1234567), "1,234,567");
    }
}
