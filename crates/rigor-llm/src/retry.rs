//! Retries shared by every provider.
//!
//! One call is a series of attempts. An attempt either succeeds, fails for good (the request
//! itself is wrong: 400, 401, 403, 404, 422), or fails in a way another attempt may fix (429,
//! 5xx, 529 overloaded, connect errors, timeouts, a stream cut before its terminal event). The
//! driver (`run`, crate-private) waits between attempts with exponential backoff and jitter, honours
//! `Retry-After`, and reports every retry through the sink as [`StreamEvent::Retry`].

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::{ProviderError, StreamEvent, StreamSink};

/// How often and how patiently a provider call is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first one included (at least 1 is always made).
    pub max_attempts: u32,
    /// Backoff after the first failure; it doubles after each further failure.
    pub initial_backoff: Duration,
    /// Cap on any single wait, `Retry-After` included.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 4, initial_backoff: Duration::from_secs(1), max_backoff: Duration::from_secs(30) }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based): `Retry-After` when the server gave one
    /// (capped at `max_backoff`), otherwise exponential backoff with jitter (between half and all
    /// of `initial_backoff * 2^(attempt-1)`, capped at `max_backoff`).
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max_backoff);
        }
        let exponent = attempt.saturating_sub(1).min(30);
        let base = self.initial_backoff.saturating_mul(1u32 << exponent).min(self.max_backoff);
        let half = base / 2;
        half + half.mul_f64(jitter())
    }
}

/// A random number in `[0, 1)`, good enough for spreading retries.
fn jitter() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// How one attempt failed.
#[derive(Debug)]
pub(crate) enum AttemptError {
    /// Another attempt may succeed.
    Retryable {
        /// What went wrong and what to do, in one line.
        reason: String,
        /// The server's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help.
    Fatal(ProviderError),
}

impl AttemptError {
    /// A retryable failure without `Retry-After`.
    pub(crate) fn retryable(reason: impl Into<String>) -> Self {
        AttemptError::Retryable { reason: reason.into(), retry_after: None }
    }

    /// A stream that ended (or broke) before its terminal event.
    pub(crate) fn cut(detail: impl std::fmt::Display) -> Self {
        Self::retryable(format!("the response stream ended before the final event ({detail}); the connection dropped"))
    }
}

/// Runs `attempt` until it succeeds, fails for good, or `policy.max_attempts` are used up.
/// Each attempt is bounded by `timeout` (connect plus the whole streamed body).
pub(crate) async fn run<T, F, Fut>(
    policy: &RetryPolicy,
    provider: &str,
    timeout: Duration,
    sink: StreamSink<'_>,
    mut attempt: F,
) -> Result<T, ProviderError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AttemptError>>,
{
    let max_attempts = policy.max_attempts.max(1);
    let mut made = 0;
    loop {
        made += 1;
        let outcome = match tokio::time::timeout(timeout, attempt()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(AttemptError::retryable(format!(
                "no complete response within {} (the request timeout); the server may be overloaded or the \
                 timeout too short for this model",
                human_duration(timeout)
            ))),
        };
        let (reason, retry_after) = match outcome {
            Ok(value) => return Ok(value),
            Err(AttemptError::Fatal(err)) => return Err(err),
            Err(AttemptError::Retryable { reason, retry_after }) => (reason, retry_after),
        };
        // Front ends report the retry from its event; this is only a diagnostic (RIGOR_LOG=debug).
        tracing::debug!(provider, attempt = made, %reason, "model call failed");
        if made >= max_attempts {
            return Err(ProviderError::RetriesExhausted {
                provider: provider.to_string(),
                attempts: made,
                last: format!("{reason}. Check that the endpoint is up and reachable, then run again"),
            });
        }
        let wait = policy.backoff(made, retry_after);
        sink(StreamEvent::Retry { attempt: made, wait, reason });
        tokio::time::sleep(wait).await;
    }
}

fn human_duration(d: Duration) -> String {
    if d.as_secs() >= 1 && d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Statuses worth another attempt: rate limits, server errors, Anthropic's 529 overloaded.
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT || status.is_server_error()
}

/// Which API-key variable to mention in authentication errors.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyHint {
    /// Environment variable holding the key, e.g. `OPENAI_API_KEY`.
    pub env_var: &'static str,
}

/// Classifies a non-success HTTP response.
pub(crate) fn classify_status(
    provider: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &str,
    key: KeyHint,
) -> AttemptError {
    let code = status.as_u16();
    if is_retryable_status(status) {
        let advice = match code {
            429 => "rate limited; rigor waits and retries, lower your request rate or raise your quota if it persists",
            529 => "the provider is overloaded; try again later",
            _ => "the server failed; try again later or check the server's logs",
        };
        return AttemptError::Retryable {
            reason: format!("HTTP {status}: {} ({advice})", one_line(body, 300)),
            retry_after: retry_after(headers),
        };
    }
    let advice = match code {
        401 => format!("check that {} (or the provider's api_key) holds a valid key", key.env_var),
        403 => format!("the key in {} is not allowed to use this model or endpoint", key.env_var),
        404 => "check base_url and the model name".to_string(),
        413 => "the request is too large for the model; condense the conversation".to_string(),
        400 | 422 => "the endpoint rejected the request; check the model name, max_tokens and the endpoint's \
                      compatibility"
            .to_string(),
        _ => "the endpoint refused the request".to_string(),
    };
    AttemptError::Fatal(ProviderError::Rejected {
        provider: provider.to_string(),
        status: code,
        body: format!("{} [{advice}]", truncate(body.trim(), 2000)),
    })
}

/// Classifies a transport error from reqwest (before or while reading the body).
pub(crate) fn classify_transport(err: &reqwest::Error, url: &str) -> AttemptError {
    let detail = error_chain(err);
    if err.is_connect() {
        AttemptError::retryable(format!(
            "cannot connect to {url}: {detail} (is the server running and is base_url right?)"
        ))
    } else if err.is_timeout() {
        AttemptError::retryable(format!("request to {url} timed out: {detail}"))
    } else if err.is_body() || err.is_decode() {
        AttemptError::cut(detail)
    } else {
        AttemptError::retryable(format!("request to {url} failed: {detail}"))
    }
}

/// The error and its sources, joined with `: `.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let part = inner.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = inner.source();
    }
    text
}

/// `Retry-After` as seconds or an HTTP-date.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)));
    }
    let when = parse_http_date(value)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_secs();
    Some(Duration::from_secs(when.saturating_sub(now)))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) into seconds since the Unix epoch.
pub(crate) fn parse_http_date(text: &str) -> Option<u64> {
    let rest = text.split_once(',').map(|(_, r)| r).unwrap_or(text);
    let parts: Vec<&str> = rest.split_whitespace().collect();
    let [day, month, year, time, ..] = parts.as_slice() else { return None };
    let day: u64 = day.parse().ok()?;
    let month = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        .iter()
        .position(|m| month.eq_ignore_ascii_case(m))? as u64
        + 1;
    let year: i64 = year.parse().ok()?;
    let mut hms = time.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + (h * 3600 + m * 60 + s) as i64).ok()
}

/// `text` cut to at most `max` bytes (on a character boundary), with a marker when cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} more bytes]", &text[..end], text.len() - end)
}

/// `text` on one line (whitespace runs collapsed), truncated.
pub(crate) fn one_line(text: &str, max: usize) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let joined = if joined.is_empty() { "(empty body)".to_string() } else { joined };
    truncate(&joined, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let policy = RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
        };
        for _ in 0..50 {
            let first = policy.backoff(1, None);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100), "{first:?}");
            let second = policy.backoff(2, None);
            assert!(second >= Duration::from_millis(100) && second <= Duration::from_millis(200), "{second:?}");
            assert!(policy.backoff(10, None) <= Duration::from_millis(350));
        }
        assert_eq!(policy.backoff(1, Some(Duration::from_secs(2))), Duration::from_millis(350));
        assert_eq!(policy.backoff(1, Some(Duration::from_millis(20))), Duration::from_millis(20));
        assert!(policy.backoff(40, None) <= Duration::from_millis(350));
    }

    #[test]
    fn http_dates_parse() {
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("Tue, 29 Feb 2028 12:00:00 GMT"), Some(1_835_438_400));
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(reqwest::header::RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        headers.insert(reqwest::header::RETRY_AFTER, "Thu, 01 Jan 1970 00:00:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn statuses_are_classified() {
        let key = KeyHint { env_var: "OPENAI_API_KEY" };
        let headers = HeaderMap::new();
        for code in [429u16, 500, 502, 503, 504, 529] {
            let status = StatusCode::from_u16(code).unwrap();
            assert!(matches!(classify_status("p", status, &headers, "x", key), AttemptError::Retryable { .. }));
        }
        for code in [400u16, 401, 403, 404, 422] {
            let status = StatusCode::from_u16(code).unwrap();
            assert!(matches!(classify_status("p", status, &headers, "x", key), AttemptError::Fatal(_)));
        }
        let AttemptError::Fatal(err) = classify_status("p", StatusCode::UNAUTHORIZED, &headers, "bad key", key) else {
            panic!("401 is fatal");
        };
        assert!(err.to_string().contains("OPENAI_API_KEY"), "{err}");
        let long = "x".repeat(5000);
        let AttemptError::Fatal(ProviderError::Rejected { body, .. }) =
            classify_status("p", StatusCode::BAD_REQUEST, &headers, &long, key)
        else {
            panic!("400 is fatal");
        };
        assert!(body.len() < 2200, "{}", body.len());
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h… [5 more bytes]");
        assert_eq!(one_line("a\n  b\tc", 100), "a b c");
    }
}
