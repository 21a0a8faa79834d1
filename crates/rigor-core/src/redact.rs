//! Redaction of secrets from run records, so trajectories, `--json` output, `patch.diff`,
//! `result.json` and logs never carry an API key or a private key that showed up in an
//! observation or a model reply.
//!
//! What counts as a secret is decided by one catalogue, [`rigor_sandbox::env`], shared with the
//! sandbox's environment scrubbing; this module has no list of its own. Two sources:
//! - *known values* ([`Redactor::from_environment`]): values of this process's environment
//!   variables, and every value the configuration gives a tool source to keep secret (an MCP
//!   server's `env`, [`rigor_tools::ToolSource::secrets`], through [`Redactor::from_vars_and`]),
//!   replaced by `[REDACTED:<name>]`;
//! - *formats* ([`rigor_sandbox::env::redact_formats`]): credential formats, URL passwords and PEM
//!   private keys (also a key body shown without its `BEGIN`/`END` lines), replaced by
//!   `[REDACTED:<kind>]`.
//!
//! This does not change what the model sees during a run (that is the sandbox's job: a scrubbed
//! environment); it protects the records.

use std::sync::Arc;

use rigor_protocol::Event;
use rigor_sandbox::env::{RANDOM_MIN_LEN, is_allowed_name, is_secret_name, looks_random, redact_formats};
use serde_json::Value;

/// The shortest known value that is redacted: shorter ones would replace ordinary text.
const MIN_SECRET_LEN: usize = 8;

/// Replaces secrets in text and in events.
#[derive(Clone, Default)]
pub struct Redactor {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// (name, value), longest value first.
    values: Vec<(String, String)>,
}

impl Redactor {
    /// A redactor for the given known secrets (`(name, value)`; values shorter than 8 characters
    /// are ignored) plus the catalogue's formats.
    pub fn new(known: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut values: Vec<(String, String)> = Vec::new();
        for (name, value) in known {
            if value.trim().len() < MIN_SECRET_LEN {
                continue;
            }
            // In raw JSON text (tool-call arguments) a value with quotes or backslashes is escaped.
            if let Ok(quoted) = serde_json::to_string(&value) {
                let escaped = &quoted[1..quoted.len() - 1];
                if escaped != value {
                    values.push((name.clone(), escaped.to_string()));
                }
            }
            values.push((name, value));
        }
        // Longest first, so a secret that contains another is replaced whole.
        values.sort_by_key(|(_, value)| std::cmp::Reverse(value.len()));
        Self { inner: Arc::new(Inner { values }) }
    }

    /// A redactor for the secrets in this process's environment ([`Redactor::from_vars`]).
    pub fn from_environment() -> Self {
        Self::from_vars(std::env::vars())
    }

    /// A redactor for the secrets among `vars`, which are:
    /// - the value of every variable the catalogue calls secret by name
    ///   ([`is_secret_name`]: `*KEY*`, `*TOKEN*`, `*PASS*`, `*_PWD`, `AWS_*`, ...) with at least 8
    ///   characters, unless the value is an absolute path (`GOOGLE_APPLICATION_CREDENTIALS`,
    ///   `GITHUB_WORKSPACE`, `HF_HOME` name where something is; replacing them would garble every
    ///   path in the records, and the sandbox hides the home directory);
    /// - the value of every variable outside the sandbox's allowlist ([`is_allowed_name`]) with at
    ///   least 12 characters that looks random ([`looks_random`]: a token under a name nobody
    ///   foresaw). Paths, URLs, words, versions and lists are not redacted this way.
    ///
    /// Some harmless values are redacted too (an `AWS_REGION`, a container's hex host name):
    /// records lose a little, secrets do not leak.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        Self::from_vars_and(vars, [])
    }

    /// The secrets among `vars` ([`Redactor::from_vars`]) and every one of `configured`, whatever
    /// its name or look: values the configuration hands to a process rigor starts (an MCP
    /// server's `env`), which the user put there because the process needs them.
    pub fn from_vars_and(
        vars: impl IntoIterator<Item = (String, String)>,
        configured: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        let secret = |(name, value): &(String, String)| {
            let by_name = is_secret_name(name) && !value.trim().starts_with('/');
            let random = !is_allowed_name(name) && value.trim().len() >= RANDOM_MIN_LEN && looks_random(value);
            by_name || random
        };
        Self::new(vars.into_iter().filter(secret).chain(configured))
    }

    /// `text` with every secret replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (name, value) in &self.inner.values {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), &format!("[REDACTED:{name}]"));
            }
        }
        redact_formats(&out).into_owned()
    }

    /// `event` with every string in it redacted.
    ///
    /// Fails closed: the redacted event is rebuilt from its redacted JSON, and when that is not
    /// a valid event any more (a replacement hit a field with a fixed vocabulary, such as a run
    /// status equal to a known secret) or the event cannot be serialised at all, the result is a
    /// [`Event::Notice`] saying that an event was withheld and carrying the redacted JSON as
    /// text. A notice rather than an event of the original type, because any event type can
    /// fail and only a notice can carry arbitrary text; the record keeps what happened, redacted.
    /// The unredacted event is never returned unless redaction found nothing to change.
    pub fn redact_event(&self, event: Event) -> Event {
        let Ok(mut value) = serde_json::to_value(&event) else {
            return Event::Notice {
                message: "an event was withheld from the record: it could not be serialised".into(),
            };
        };
        if !self.redact_json(&mut value) {
            return event;
        }
        match serde_json::from_value::<Event>(value.clone()) {
            Ok(redacted) => redacted,
            Err(_) => {
                let kind = value.get("type").and_then(Value::as_str).unwrap_or("unknown").to_string();
                Event::Notice {
                    message: format!(
                        "an event ({kind}) was withheld from the record: its redacted form is not a valid event; \
                         redacted: {value}"
                    ),
                }
            }
        }
    }

    /// Redacts every string in `value` in place (object keys stay); returns whether anything
    /// changed.
    pub fn redact_json(&self, value: &mut Value) -> bool {
        match value {
            Value::String(s) => {
                let redacted = self.redact(s);
                let changed = redacted != *s;
                *s = redacted;
                changed
            }
            Value::Array(items) => items.iter_mut().fold(false, |acc, v| self.redact_json(v) | acc),
            Value::Object(map) => map.values_mut().fold(false, |acc, v| self.redact_json(v) | acc),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use rigor_protocol::{RunStatus, RunTotals};

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

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
    fn configured_values_are_redacted_whatever_their_name_or_look() {
        let r =
            Redactor::from_vars_and(vars(&[("HOME_PAGE", "plain words here")]), vars(&[("SITE", "plain words here")]));
        assert_eq!(r.redact("the value is plain words here"), "the value is [REDACTED:SITE]");
        assert_eq!(
            Redactor::from_vars(vars(&[("HOME_PAGE", "plain words here")])).redact("plain words here"),
            "plain words here"
        );
    }

    #[test]
    fn short_values_are_not_treated_as_secrets() {
        let r = Redactor::new([("TOKEN".to_string(), "1".to_string())]);
        assert_eq!(r.redact("version 1.0"), "version 1.0");
    }

    #[test]
    fn the_environment_is_read_with_the_sandbox_catalogue() {
        let r = Redactor::from_vars(vars(&[
            // Secret by name, whatever the value.
            ("DB_PASS", "correct horse battery"),
            ("MYSQL_PWD", "plainword"),
            ("SENTRY_DSN", "https://abc@o1.ingest.sentry.io/2"),
            ("PWD", "/work/main/crates"),
            ("GOOGLE_APPLICATION_CREDENTIALS", "/home/u/key.json"),
            // Unforeseen names: random values are secret, words and paths are not.
            ("MY_SERVICE_CONF", "q8Zr3mK1vT0bXw7Nc4Lp"),
            ("BUILD_TARGET", "x86_64-unknown-linux-gnu"),
            ("PROJECT_DIR", "/srv/project/checkout"),
            // Allowed in the sandbox: not treated as random.
            ("SOURCE_DATE_EPOCH", "17000000a0bC9dE8"),
        ]));
        let text = "pw=correct horse battery pwd=plainword dsn=https://abc@o1.ingest.sentry.io/2 \
                    tok=q8Zr3mK1vT0bXw7Nc4Lp target=x86_64-unknown-linux-gnu in /work/main/crates and \
                    /srv/project/checkout, /home/u/key.json, 17000000a0bC9dE8";
        assert_eq!(
            r.redact(text),
            "pw=[REDACTED:DB_PASS] pwd=[REDACTED:MYSQL_PWD] dsn=[REDACTED:SENTRY_DSN] \
             tok=[REDACTED:MY_SERVICE_CONF] target=x86_64-unknown-linux-gnu in /work/main/crates and \
             /srv/project/checkout, /home/u/key.json, 17000000a0bC9dE8"
        );
    }

    #[test]
    fn url_credentials_and_pem_bodies_are_redacted() {
        let r = Redactor::default();
        assert_eq!(
            r.redact("remote: https://bot:ghs0123abcXYZ@github.com/o/r.git"),
            "remote: https://bot:[REDACTED:url-credentials]@github.com/o/r.git"
        );
        let body = [
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj",
            "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu",
            "NMoSfm76oqFvAp8Gy0iz5sxjZmSnXyCdPEovGhLa0VzMaQ8s+CLOyS56YyCFGeJZ",
            "qgtzJ6GR3eqoYSW9b9UMvkBpZODSctWSNGj3P7jRFDO5VoTwCQAWbFnOjDfH5Ulg",
        ];
        // A key viewed by line range (no BEGIN/END line).
        let view: String = body.iter().enumerate().map(|(i, l)| format!("{:>6}\t{l}\n", i + 2)).collect();
        let redacted = r.redact(&view);
        assert!(!redacted.contains("MzEfYyji"), "{redacted}");
        assert!(redacted.starts_with("     2\t[REDACTED:private-key-body]\n"), "{redacted}");
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

    #[test]
    fn an_event_that_does_not_round_trip_is_withheld_not_emitted_unredacted() {
        // The secret equals a run status: redacting it makes the status invalid.
        let r = Redactor::new([("DB_PASS".to_string(), "submitted".to_string())]);
        let event = Event::RunFinished {
            status: RunStatus::Submitted,
            summary: "submitted with password submitted".into(),
            patch: String::new(),
            totals: RunTotals::default(),
        };
        let redacted = r.redact_event(event);
        let Event::Notice { message } = &redacted else { panic!("{redacted:?}") };
        assert!(message.contains("an event (run_finished) was withheld"), "{message}");
        assert!(message.contains("[REDACTED:DB_PASS]"), "{message}");
        assert!(!message.contains("submitted"), "{message}");
    }

    #[test]
    fn escaped_values_in_raw_json_are_redacted() {
        let r = Redactor::new([("APP_SECRET".to_string(), "pa\"ss\\word".to_string())]);
        let raw = serde_json::json!({"command": "login pa\"ss\\word"}).to_string();
        assert_eq!(r.redact(&raw), r#"{"command":"login [REDACTED:APP_SECRET]"}"#);
    }
}
