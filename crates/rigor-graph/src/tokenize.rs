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

/// The stop words as integers (see [`pack`]), sorted: a lookup is a binary search of integers
/// rather than a string comparison with every stop word, for every term of every file.
const STOP_PACKED: [u64; STOP_WORDS.len()] = {
    let mut packed = [0u64; STOP_WORDS.len()];
    let mut i = 0;
    while i < packed.len() {
        packed[i] = pack(STOP_WORDS[i].as_bytes());
        i += 1;
    }
    // Insertion sort: const evaluation has no `sort`.
    let mut i = 1;
    while i < packed.len() {
        let mut j = i;
        while j > 0 && packed[j - 1] > packed[j] {
            let t = packed[j];
            packed[j] = packed[j - 1];
            packed[j - 1] = t;
            j -= 1;
        }
        i += 1;
    }
    packed
};

/// A word of at most 8 bytes as an integer, its bytes in order and zeros after them (terms hold
/// no NUL byte, so distinct words give distinct integers).
const fn pack(word: &[u8]) -> u64 {
    let mut packed = 0u64;
    let mut i = 0;
    while i < word.len() && i < 8 {
        packed |= (word[i] as u64) << (8 * i);
        i += 1;
    }
    packed
}

/// Words longer than this (in bytes) give no terms: generated names, hashes, base64.
const MAX_WORD: usize = 64;

fn is_stop(word: &str) -> bool {
    word.len() < 2 || (word.len() <= 8 && STOP_PACKED.binary_search(&pack(word.as_bytes())).is_ok())
}

/// Calls `f` with every term of `text` (identifiers and their parts, lowercased, stop words removed).
pub fn for_each_term(text: &str, mut f: impl FnMut(&str)) {
    for_each_term_at(text, |t, _| f(t));
}

/// Like [`for_each_term`], also giving the byte offset of the word each term comes from.
///
/// Words are maximal runs of alphanumeric characters and `_`. ASCII words (nearly all of source
/// code) take a byte-level path without allocation; a run holding any non-ASCII character goes
/// through the general path, which classifies characters by Unicode. Both give the same terms.
pub fn for_each_term_at(text: &str, mut f: impl FnMut(&str, usize)) {
    let bytes = text.as_bytes();
    let mut lower = String::new();
    let mut i = 0;
    while i < bytes.len() {
        if !is_word_byte(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        let mut ascii = true;
        while i < bytes.len() && is_word_byte(bytes[i]) {
            ascii &= bytes[i].is_ascii();
            i += 1;
        }
        if ascii {
            ascii_word_terms(&text[start..i], start, &mut lower, &mut f);
        } else {
            // Cut on a character boundary: `i` stops before an ASCII byte or at the end.
            unicode_terms(&text[start..i], start, &mut lower, &mut f);
        }
    }
}

/// ASCII word characters, plus every byte of a non-ASCII character (sorted out by Unicode later).
fn is_word_byte(b: u8) -> bool {
    /// The answer for every byte: a table lookup, as this runs for every byte of every file.
    const WORD_BYTES: [bool; 256] = {
        let mut table = [false; 256];
        let mut b = 0;
        while b < 256 {
            let c = b as u8;
            table[b] = c.is_ascii_alphanumeric() || c == b'_' || !c.is_ascii();
            b += 1;
        }
        table
    };
    WORD_BYTES[usize::from(b)]
}

/// `text` without leading and trailing `_`.
fn trim_underscores(text: &str) -> &str {
    let bytes = text.as_bytes();
    let start = bytes.iter().position(|&b| b != b'_').unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|&b| b != b'_').map_or(start, |last| last + 1);
    &text[start..end]
}

/// Terms of one ASCII word at byte offset `offset` of the text (`lower` is scratch space).
fn ascii_word_terms(word: &str, offset: usize, lower: &mut String, f: &mut impl FnMut(&str, usize)) {
    if word.len() > MAX_WORD {
        return;
    }
    lower.clear();
    lower.push_str(word);
    lower.make_ascii_lowercase();
    let lower = lower.as_str();
    let whole = trim_underscores(lower);
    if keep(whole) {
        f(whole, offset);
    }
    let base = word.as_ptr() as usize;
    split_identifier(word, |part| {
        if part.len() != word.len() {
            // ASCII lowercasing keeps byte offsets, so the part's lowercase is at the same place.
            let from = part.as_ptr() as usize - base;
            let part = &lower[from..from + part.len()];
            if keep(part) {
                f(part, offset);
            }
        }
    });
}

/// Terms of a run of word bytes holding non-ASCII characters, split and lowercased by Unicode.
fn unicode_terms(run: &str, base: usize, lower: &mut String, f: &mut impl FnMut(&str, usize)) {
    let run_start = run.as_ptr() as usize;
    for word in run.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
        if word.is_empty() || word.len() > MAX_WORD {
            continue;
        }
        let offset = base + (word.as_ptr() as usize - run_start);
        lower.clear();
        lower.extend(word.chars().flat_map(char::to_lowercase));
        let whole = trim_underscores(lower);
        if keep(whole) {
            f(whole, offset);
        }
        split_identifier(word, |part| {
            if part.len() != word.len() {
                lower.clear();
                lower.extend(part.chars().flat_map(char::to_lowercase));
                if keep(lower) {
                    f(lower, offset);
                }
            }
        });
    }
}

/// Whether a lowercased term is kept: not a stop word, not only digits.
fn keep(term: &str) -> bool {
    !is_stop(term) && !term.bytes().all(|b| b.is_ascii_digit())
}

/// All terms of `text`, in order, with repetitions.
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_term(text, |t| out.push(t.to_string()));
    out
}

/// Splits one identifier on `_` and case changes: `parseHTTPResponse2` → parse, HTTP, Response, 2.
/// One pass over the characters.
fn split_identifier(word: &str, mut f: impl FnMut(&str)) {
    // The current part: where it starts and its last character.
    let mut part: Option<(usize, char)> = None;
    let mut chars = word.char_indices().peekable();
    while let Some((pos, c)) = chars.next() {
        if c == '_' {
            if let Some((start, _)) = part.take() {
                f(&word[start..pos]);
            }
            continue;
        }
        let start = match part {
            None => pos,
            Some((start, prev)) => {
                // A `_` next ends the part, as the end of the word does: neither is lowercase.
                let next = chars.peek().map(|&(_, n)| n);
                let boundary = (c.is_uppercase() && prev.is_lowercase())
                    || (c.is_uppercase() && prev.is_uppercase() && next.is_some_and(char::is_lowercase))
                    || (c.is_ascii_digit() != prev.is_ascii_digit());
                if boundary {
                    f(&word[start..pos]);
                    pos
                } else {
                    start
                }
            }
        };
        part = Some((start, c));
    }
    if let Some((start, _)) = part {
        f(&word[start..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_are_found_and_nothing_else() {
        for word in STOP_WORDS {
            assert!(is_stop(word), "{word}");
        }
        for word in ["ab", "selfie", "functions", "function_", "thi", "nonee", "getx", "valu"] {
            assert!(!is_stop(word), "{word}");
        }
        assert!(STOP_WORDS.iter().all(|w| w.len() <= 8), "pack() holds 8 bytes");
    }

    fn parts(word: &str) -> Vec<String> {
        let mut out = Vec::new();
        split_identifier(word, |p| out.push(p.to_string()));
        out
    }

    #[test]
    fn identifiers_split_on_underscores_case_and_digits() {
        assert_eq!(parts("parseHTTPResponse2"), ["parse", "HTTP", "Response", "2"]);
        assert_eq!(parts("__init__"), ["init"]);
        assert_eq!(parts("a__b_"), ["a", "b"]);
        assert_eq!(parts("HTTPServer_getX"), ["HTTP", "Server", "get", "X"]);
        assert_eq!(parts("x86_64"), ["x", "86", "64"]);
        assert_eq!(parts("ABCdef"), ["AB", "Cdef"]);
        assert_eq!(parts("AB_Cd"), ["AB", "Cd"]);
        assert!(parts("_").is_empty());
        assert_eq!(parts("naïveSet_Ωmega"), ["naïve", "Set", "Ωmega"]);
    }

    #[test]
    fn identifiers_yield_whole_and_parts() {
        assert_eq!(terms("QuerySet.union_all"), vec!["queryset", "query", "set", "union_all", "union", "all"]);
        assert_eq!(terms("parseHTTPResponse"), vec!["parsehttpresponse", "parse", "http", "response"]);
        assert_eq!(terms("the value of x"), Vec::<String>::new());
        assert_eq!(terms("src/db/models.py"), vec!["src", "db", "models", "py"]);
    }

    fn general(text: &str) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        unicode_terms(text, 0, &mut String::new(), &mut |t: &str, o| out.push((t.to_string(), o)));
        out
    }

    fn fast(text: &str) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        for_each_term_at(text, |t, o| out.push((t.to_string(), o)));
        out
    }

    #[test]
    fn ascii_path_gives_the_same_terms_as_the_unicode_path() {
        let samples = [
            "QuerySet.union_all(parseHTTPResponse2, __init__, _private_, x86_64, HTTPServer, getX, ABCdef)",
            "café_au_lait naïveSet Straße—dash «quoted» 变量_name mixedÄscii αβγ_δ",
            "a_b __ ___x___ 123 4five six7 camelCase99Bottles ALLCAPS SHOUT_CASE_NAME",
            &"x".repeat(64),
            &"y".repeat(65),
            include_str!("extract.rs"),
            include_str!("localize.rs"),
        ];
        for text in samples {
            assert_eq!(fast(text), general(text), "on {:?}", &text[..text.len().min(60)]);
        }
    }
}
