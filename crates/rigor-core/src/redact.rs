//! Redaction of secrets from run events, so trajectories, `--json` output and logs never carry
//! an API key or a private key that showed up in an observation or a model reply.
//!
//! Two sources of secrets:
//! - *known values*: the values of this process's environment variables whose names say they
//!   hold a secret (`*KEY*`, `*TOKEN*`, `*SECRET*`, `*PASSWORD*`, `*CREDENTIAL*`; at least 8
//!   characters), which covers the provider keys rigor itself holds;
//! - *patterns* of well-known credential formats ([`PATTERNS`]).
//!
//! Each match is replaced by `[REDACTED:<kind>]`. This does not change what the model sees
//! during a run (that is the sandbox's job: a scrubbed environment); it protects the records.

use std::sync::Arc;

use regex::Regex;
use rigor_protocol::Event;
use serde_json::Value;

/// Credential formats that are redacted wherever they appear: (kind, regular expression).
pub const PATTERNS: &[(&str, &str)] = &[
    ("private-key", r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"),
    ("api-key", r"\bsk-[A-Za-z0-9_-]{20,}"),
    ("github-token", r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,})"),
    ("aws-access-key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("aws-secret", r"(?i)aws_secret_access_key\s*[=:]\s*[A-Za-z0-9/+=]{30,}"),
    ("slack-token", r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    ("google-api-key", r"\bAIza[0-9A-Za-z_-]{35}"),
    ("huggingface-token", r"\bhf_[A-Za-z0-9]{30,}"),
];

/// Environment variable names whose values are treated as secrets.
const SECRET_NAME_HINTS: &[&str] = &["KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL"];
const MIN_SECRET_LEN: usize = 8;

/// Replaces secrets in text and in events.
#[derive(Clone, Default)]
pub struct Redactor {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    values: Vec<(String, String)>,
    patterns: Vec<(String, Regex)>,
}

impl Redactor {
    /// A redactor for the given known secrets (`(name, value)`) plus the standard patterns.
    pub fn new(known: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut values: Vec<(String, String)> =
            known.into_iter().filter(|(_, value)| value.trim().len() >= MIN_SECRET_LEN).collect();
        // Longest first, so a secret that contains another is replaced whole.
        values.sort_by_key(|(_, value)| std::cmp::Reverse(value.len()));
        let patterns =
            PATTERNS.iter().filter_map(|(kind, re)| Regex::new(re).ok().map(|r| (kind.to_string(), r))).collect();
        Self { inner: Arc::new(Inner { values, patterns }) }
    }

    /// A redactor for the secrets in this process's environment.
    pub fn from_environment() -> Self {
        Self::new(std::env::vars().filter(|(name, _)| {
            let upper = name.to_ascii_uppercase();
            SECRET_NAME_HINTS.iter().any(|hint| upper.contains(hint))
        }))
    }

    /// `text` with every secret replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (name, value) in &self.inner.values {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), &format!("[REDACTED:{name}]"));
            }
        }
        for (kind, re) in &self.inner.patterns {
            if re.is_match(&out) {
                out = re.replace_all(&out, format!("[REDACTED:{kind}]").as_str()).into_owned();
            }
        }
        out
    }

    /// `event` with every string in it redacted.
    pub fn redact_event(&self, event: Event) -> Event {
        let Ok(mut value) = serde_json::to_value(&event) else { return event };
        if !self.redact_value(&mut value) {
            return event;
        }
        serde_json::from_value(value).unwrap_or(event)
    }

    /// Redacts strings in place; returns whether anything changed.
    fn redact_value(&self, value: &mut Value) -> bool {
        match value {
            Value::String(s) => {
                let redacted = self.redact(s);
                let changed = redacted != *s;
                *s = redacted;
                changed
            }
            Value::Array(items) => items.iter_mut().fold(false, |acc, v| self.redact_value(v) | acc),
            Value::Object(map) => map.values_mut().fold(false, |acc, v| self.redact_value(v) | acc),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_and_credential_patterns_are_redacted() {
        let r = Redactor::new([("MY_API_KEY".to_string(), "hunter2-secret-value".to_string())]);
        assert_eq!(r.redact("key=hunter2-secret-value;"), "key=[REDACTED:MY_API_KEY];");
        let text = "OPENAI=sk-proj-abcdefghijklmnopqrstuvwx and AKIAABCDEFGHIJKLMNOP";
        assert_eq!(r.redact(text), "OPENAI=[REDACTED:api-key] and [REDACTED:aws-access-key]");
        let pem = "a\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1r\n-----END OPENSSH PRIVATE KEY-----\nz";
        assert_eq!(r.redact(pem), "a\n[REDACTED:private-key]\nz");
        assert_eq!(r.redact("nothing secret: skip-this sk-short"), "nothing secret: skip-this sk-short");
    }

    #[test]
    fn short_values_are_not_treated_as_secrets() {
        let r = Redactor::new([("TOKEN".to_string(), "1".to_string())]);
        assert_eq!(r.redact("version 1.0"), "version 1.0");
    }

    #[test]
    fn events_are_redacted_deeply() {
        let r = Redactor::new([("GH_TOKEN".to_string(), "tok-0123456789".to_string())]);
        let event = Event::Observation {
            turn: 1,
            call_id: "c".into(),
            name: "bash".into(),
            content: "env: GH_TOKEN=tok-0123456789".into(),
            is_error: false,
            duration_ms: 3,
        };
        match r.redact_event(event) {
            Event::Observation { content, .. } => assert_eq!(content, "env: GH_TOKEN=[REDACTED:GH_TOKEN]"),
            other => panic!("{other:?}"),
        }
    }
}
