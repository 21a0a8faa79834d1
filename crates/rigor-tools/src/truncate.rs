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
    let (head_chars, tail_chars) = split_budget(max_chars);
    let head_end = cut_head(text, head_chars);
    let tail_start = cut_tail(text, tail_chars).max(head_end);
    let omitted = &text[head_end..tail_start];
    join(&text[..head_end], omitted.chars().count(), omitted.matches('\n').count(), &text[tail_start..])
}

/// Like [`truncate_middle`] for a text whose middle is already gone: `head`, then `gap_chars`
/// characters (`gap_lines` lines) that were dropped, then `tail`. The note counts the gap too.
pub fn truncate_with_gap(head: &str, gap_chars: usize, gap_lines: usize, tail: &str, max_chars: usize) -> String {
    if gap_chars == 0 {
        return truncate_middle(&format!("{head}{tail}"), max_chars);
    }
    let (head_chars, tail_chars) = split_budget(max_chars);
    let head_end = cut_head(head, head_chars);
    let tail_start = cut_tail(tail, tail_chars);
    let (head_rest, tail_front) = (&head[head_end..], &tail[..tail_start]);
    join(
        &head[..head_end],
        head_rest.chars().count() + gap_chars + tail_front.chars().count(),
        head_rest.matches('\n').count() + gap_lines + tail_front.matches('\n').count(),
        &tail[tail_start..],
    )
}

/// Characters for the head and for the tail.
fn split_budget(max_chars: usize) -> (usize, usize) {
    let head = (max_chars as f64 * HEAD_SHARE) as usize;
    (head, max_chars - head)
}

/// Byte index ending the first `chars` characters of `text`, moved back to a line boundary when
/// one is in the second half of that stretch (whole lines read better than a line cut mid-word).
fn cut_head(text: &str, chars: usize) -> usize {
    let end = byte_index_of_char(text, chars);
    match text[..end].rfind('\n') {
        Some(newline) if newline + 1 >= end / 2 => newline + 1,
        _ => end,
    }
}

/// Byte index starting the last `chars` characters of `text`, moved forward to a line boundary
/// when one is in the first half of that stretch.
fn cut_tail(text: &str, chars: usize) -> usize {
    let total = text.chars().count();
    let start = byte_index_of_char(text, total.saturating_sub(chars));
    let len = text.len() - start;
    match text[start..].find('\n') {
        Some(newline) if newline < len / 2 => start + newline + 1,
        _ => start,
    }
}

/// `head`, the note, `tail`.
fn join(head: &str, omitted_chars: usize, omitted_lines: usize, tail: &str) -> String {
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
        let text = "x".repeat(10_000);
        let out = truncate_middle(&text, 100);
        assert!(out.contains("[... 9,900 characters (0 lines) omitted ...]"), "{out}");
        assert_eq!(out.chars().filter(|c| *c == 'x').count(), 100);
    }

    #[test]
    fn multibyte_text_is_cut_on_char_boundaries() {
        let text = "é€😀".repeat(1000);
        let out = truncate_middle(&text, 101);
        assert!(out.contains("omitted"));
        assert_eq!(out.chars().filter(|c| !c.is_ascii()).count(), 101);
    }

    #[test]
    fn a_known_gap_is_counted_in_the_note() {
        let head: String = (0..100).map(|i| format!("h{i}\n")).collect();
        let tail: String = (0..100).map(|i| format!("t{i}\n")).collect();
        let out = truncate_with_gap(&head, 1_000_000, 5_000, &tail, 100);
        assert!(out.starts_with("h0\n"), "{out}");
        assert!(out.ends_with("t99\n"), "{out}");
        assert!(out.contains(",0") || out.contains("1,00"), "{out}");
        assert!(out.contains("lines) omitted"), "{out}");
        let plain = truncate_with_gap("abc", 0, 0, "def", 100);
        assert_eq!(plain, "abcdef");
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(999), "999");
        assert_eq!(group_thousands(1000), "1,000");
        assert_eq!(group_thousands(1234567), "1,234,567");
    }
}
