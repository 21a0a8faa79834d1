//! The input bouncer: is an issue actionable before any work is spent on it?
//!
//! An actionable issue says what is wrong (an observable behaviour: a value, an error, a
//! traceback), what is expected instead, and how to trigger it (the code, a command, a name to
//! look at). Each is looked for in the text; an issue with none of them and only words like
//! "doesn't work" or "please fix" is vague and abstained on, with the reasons, before the model is
//! called. Anything with at least one signal goes ahead: the output side (the proof) catches what
//! the text did not.

use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// What the model is asked when the text alone leaves it open (see [`Judgement::borderline`]).
pub const ASK_MODEL: &str = "You judge GitHub issues before an agent works on them. An issue is actionable when it \
shows an observable wrong behaviour (a value, an error, a crash), the expected behaviour, and a way to trigger it \
(code, a command, a function name). Reply with one line: `ACTIONABLE` or `VAGUE: <what is missing>`.";

/// The model's one-line verdict on an issue: `Some(reason)` when it says the issue is vague.
pub fn model_says_vague(reply: &str) -> Option<String> {
    let line = reply.trim().lines().find(|l| !l.trim().is_empty())?.trim().trim_matches('`');
    let rest = line.strip_prefix("VAGUE")?;
    let why = rest.trim_start_matches([':', ' ', '-']).trim();
    Some(format!(
        "the issue is not actionable (the model's judgement): {}",
        if why.is_empty() { "it lacks an observable behaviour, an expectation or a trigger" } else { why }
    ))
}

/// The bouncer's reading of an issue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Judgement {
    /// Whether work should start.
    pub actionable: bool,
    /// The signals found (`code`, `expected behaviour`, `observed behaviour`, `a way to trigger it`).
    pub signals: Vec<String>,
    /// Why it is not actionable (empty when it is).
    pub reason: String,
}

fn regex(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).unwrap_or_else(|e| panic!("bad pattern {pattern}: {e}")))
}

impl Judgement {
    /// Actionable by the text, but on fewer than three signals: worth the model's judgement.
    pub fn borderline(&self) -> bool {
        self.actionable && self.signals.len() < 3
    }
}

/// Judges `issue` (see the module documentation).
pub fn judge(issue: &str) -> Judgement {
    static CODE: OnceLock<Regex> = OnceLock::new();
    static EXPECTED: OnceLock<Regex> = OnceLock::new();
    static OBSERVED: OnceLock<Regex> = OnceLock::new();
    static TRIGGER: OnceLock<Regex> = OnceLock::new();
    let code = regex(
        &CODE,
        r"`[^`\n]+`|```|\b\w+\(\S*\)|\b[\w/]+\.(py|rs|go|js|ts|java|c|cpp|rb|toml|json|yaml)\b|\b[a-z]+_[a-z_]+\b|\b[a-z]+[A-Z]\w+\b",
    );
    let expected = regex(
        &EXPECTED,
        r"(?i)\b(expected|expect|should|instead of|ought to|supposed to|would like|must|correct (value|result|output) is)\b",
    );
    let observed = regex(
        &OBSERVED,
        r"(?i)\b(returns?|gives?|prints?|outputs?|raises?|throws?|crash(es)?|traceback|exception|error|panic(s|ked)?|fails?|got|shows?|hangs?)\b|\d",
    );
    let trigger = regex(&TRIGGER, r"(?i)\b(when|if|run(ning)?|call(ing)?|steps|reproduce|with|on|passing|given)\b");
    let mut signals = Vec::new();
    if code.is_match(issue) {
        signals.push("code".to_string());
    }
    if expected.is_match(issue) {
        signals.push("expected behaviour".into());
    }
    if observed.is_match(issue) {
        signals.push("observed behaviour".into());
    }
    if trigger.is_match(issue) && issue.split_whitespace().count() >= 6 {
        signals.push("a way to trigger it".into());
    }
    let words = issue.split_whitespace().count();
    // Vague: nothing concrete at all, or a handful of words with no code and no expectation.
    let vague = signals.is_empty()
        || (words < 12 && !signals.iter().any(|s| s == "code") && !signals.iter().any(|s| s == "expected behaviour"));
    let reason = if vague {
        format!(
            "the issue is not actionable: it shows no code, names no expected behaviour and gives no way to trigger \
             the problem ({words} word(s){}). Say what you ran, what happened and what you expected.",
            if signals.is_empty() { String::new() } else { format!("; found only: {}", signals.join(", ")) }
        )
    } else {
        String::new()
    };
    Judgement { actionable: !vague, signals, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vague_issues_are_not_actionable() {
        for issue in ["it doesn't work, please fix", "Broken.", "fix the bug", "something is wrong with the app, help"]
        {
            let j = judge(issue);
            assert!(!j.actionable, "{issue}: {j:?}");
            assert!(j.reason.contains("not actionable"));
        }
    }

    #[test]
    fn the_models_verdict_is_read_from_its_first_line() {
        assert!(model_says_vague("ACTIONABLE").is_none());
        assert!(model_says_vague("ACTIONABLE: it names parse()").is_none());
        let why = model_says_vague("`VAGUE: no expected value`\nmore").unwrap();
        assert!(why.ends_with("no expected value"), "{why}");
        assert!(model_says_vague("VAGUE").unwrap().contains("lacks"));
        assert!(model_says_vague("I think it is fine").is_none(), "anything else lets work start");
        assert!(judge("The export button crashes the app when the report has more than one page").borderline());
        assert!(!judge("`parse(\"1h\")` returns 60 instead of 3600 when called with hours").borderline());
    }

    #[test]
    fn concrete_issues_are_actionable() {
        let example = "# parse_duration ignores all but the last part\n\n`parse_duration(\"1h30m\")` returns `1800`, but 1 hour 30 minutes is `5400` seconds.";
        for issue in [
            example,
            "Calling Foo.bar() with an empty list raises IndexError instead of returning None",
            "json output should escape unicode: dumps('é') gives '\\u00e9' but ensure_ascii=False is expected",
            "The CLI crashes with a traceback when the config file is missing; it should print an error and exit 2.",
        ] {
            let j = judge(issue);
            assert!(j.actionable, "{issue}: {j:?}");
            assert!(j.reason.is_empty());
        }
    }
}
