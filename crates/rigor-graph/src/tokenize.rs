//! Terms for lexical retrieval: identifiers split on camelCase, snake_case, digits and paths.
//!
//! `QuerySet.union_all` yields `queryset`, `query`, `set`, `union_all`, `union`, `all`: the whole
//! identifier (lowercased) and its parts, so that both "QuerySet" and "query set" match. Common
//! English and keyword stop words are dropped. No stemming and no knowledge of any language's syntax.

/// Words too common to carry signal in an issue or in code.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "can", "do", "does", "for", "from", "has", "have", "i",
    "if", "in", "into", "is", "it", "its", "not", "of", "on", "or", "so", "that", "the", "then", "there", "this", "to",
    "was", "we", "when", "which", "will", "with", "you", "self", "def", "fn", "let", "mut", "pub", "return", "var",
    "const", "function", "int", "void", "none", "null", "true", "false", "new", "this", "use", "import", "else",
    "elif", "while", "str", "string", "args", "kwargs", "cls", "value", "my", "me", "should", "would", "get",
];

fn is_stop(word: &str) -> bool {
    word.len() < 2 || STOP_WORDS.contains(&word)
}

/// Calls `f` with every term of `text` (identifiers and their parts, lowercased, stop words removed).
pub fn for_each_term(text: &str, mut f: impl FnMut(&str)) {
    for_each_term_at(text, |t, _| f(t));
}

/// Like [`for_each_term`], also giving the byte offset of the word each term comes from.
pub fn for_each_term_at(text: &str, mut f: impl FnMut(&str, usize)) {
    let mut lower = String::new();
    let base = text.as_ptr() as usize;
    for word in text.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
        if word.is_empty() || word.len() > 64 {
            continue;
        }
        let offset = word.as_ptr() as usize - base;
        let mut f = |t: &str| f(t, offset);
        lower.clear();
        if word.is_ascii() {
            lower.push_str(word);
            lower.make_ascii_lowercase();
        } else {
            lower.extend(word.chars().flat_map(char::to_lowercase));
        }
        let whole = lower.trim_matches('_');
        if !is_stop(whole) && !whole.bytes().all(|b| b.is_ascii_digit()) {
            f(whole);
        }
        split_identifier(word, |part| {
            if part.len() != word.len() {
                lower.clear();
                lower.extend(part.chars().flat_map(char::to_lowercase));
                if !is_stop(&lower) && !lower.bytes().all(|b| b.is_ascii_digit()) {
                    f(&lower);
                }
            }
        });
    }
}

/// All terms of `text`, in order, with repetitions.
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_term(text, |t| out.push(t.to_string()));
    out
}

/// Splits one identifier on `_` and case changes: `parseHTTPResponse2` → parse, HTTP, Response, 2.
fn split_identifier(word: &str, mut f: impl FnMut(&str)) {
    for piece in word.split('_').filter(|p| !p.is_empty()) {
        let chars: Vec<(usize, char)> = piece.char_indices().collect();
        let mut start = 0;
        for i in 1..chars.len() {
            let (pos, c) = chars[i];
            let prev = chars[i - 1].1;
            let next = chars.get(i + 1).map(|&(_, c)| c);
            let boundary = (c.is_uppercase() && prev.is_lowercase())
                || (c.is_uppercase() && prev.is_uppercase() && next.is_some_and(char::is_lowercase))
                || (c.is_ascii_digit() != prev.is_ascii_digit());
            if boundary {
                f(&piece[start..pos]);
                start = pos;
            }
        }
        f(&piece[start..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_yield_whole_and_parts() {
        assert_eq!(terms("QuerySet.union_all"), vec!["queryset", "query", "set", "union_all", "union", "all"]);
        assert_eq!(terms("parseHTTPResponse"), vec!["parsehttpresponse", "parse", "http", "response"]);
        assert_eq!(terms("the value of x"), Vec::<String>::new());
        assert_eq!(terms("src/db/models.py"), vec!["src", "db", "models", "py"]);
    }
}
