//! HTTP plumbing shared by the providers.

use std::net::IpAddr;

use crate::retry::{AttemptError, KeyHint, classify_status, classify_transport};
use crate::{ProviderConfig, ProviderError};

/// A client for `config`: bounded connect time, no proxy for loopback endpoints.
pub(crate) fn build_client(config: &ProviderConfig) -> Result<reqwest::Client, ProviderError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(config.request_timeout.min(std::time::Duration::from_secs(30)))
        .user_agent(concat!("rigor/", env!("CARGO_PKG_VERSION")));
    if is_loopback(&config.base_url) {
        builder = builder.no_proxy();
    }
    builder
        .build()
        .map_err(|err| ProviderError::Config(format!("cannot build an HTTP client for {}: {err}", config.base_url)))
}

/// Checks that `base_url` is an http(s) URL.
pub(crate) fn check_base_url(config: &ProviderConfig) -> Result<(), ProviderError> {
    let url = config.base_url.trim();
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(ProviderError::Config(format!(
            "provider `{}`: base_url `{}` must start with http:// or https:// (e.g. http://127.0.0.1:8080/v1)",
            config.name, config.base_url
        )))
    }
}

/// Fails early when the vendor's own endpoint (`official_host`) is configured without a key.
pub(crate) fn check_key(config: &ProviderConfig, official_host: &str, env_var: &str) -> Result<(), ProviderError> {
    let has_key = config.api_key.as_deref().is_some_and(|k| !k.trim().is_empty());
    if has_key || host(&config.base_url) != official_host {
        return Ok(());
    }
    Err(ProviderError::Config(format!(
        "provider `{}` needs an API key for {official_host}: set {env_var} (or api_key in the provider's config)",
        config.name
    )))
}

fn host(url: &str) -> String {
    let rest = url.trim().split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or("");
    authority.rsplit_once(':').map(|(h, _)| h).unwrap_or(authority).to_ascii_lowercase()
}

fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.rsplit_once(':').map(|(h, _)| h).unwrap_or(authority)
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Sends `request`; a non-success status becomes the matching [`AttemptError`].
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
    url: &str,
    provider: &str,
    key: KeyHint,
) -> Result<reqwest::Response, AttemptError> {
    let response = request.send().await.map_err(|err| classify_transport(&err, url))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let headers = response.headers().clone();
    let body = response.text().await.unwrap_or_default();
    Err(classify_status(provider, status, &headers, &body, key))
}

/// Whether the response is a plain JSON body (a server that ignored `stream: true`).
pub(crate) fn is_json(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("application/json"))
}

/// Reads a whole JSON body.
pub(crate) async fn read_json(response: reqwest::Response, url: &str) -> Result<serde_json::Value, AttemptError> {
    let text = response.text().await.map_err(|err| classify_transport(&err, url))?;
    serde_json::from_str(&text).map_err(|err| {
        AttemptError::retryable(format!(
            "the response from {url} is not valid JSON ({err}): {}",
            crate::retry::one_line(&text, 300)
        ))
    })
}

/// A configuration for unit tests.
#[cfg(test)]
pub(crate) fn test_config(kind: crate::ProviderKind) -> ProviderConfig {
    ProviderConfig {
        name: "test".into(),
        kind,
        base_url: "http://127.0.0.1:1/v1".into(),
        api_key: None,
        model: "gpt-4o".into(),
        context_window: 128_000,
        pricing: None,
        text_actions: false,
        retry: Default::default(),
        request_timeout: std::time::Duration::from_secs(5),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("http://127.0.0.1:8080/v1"));
        assert!(is_loopback("http://localhost:1234"));
        assert!(is_loopback("http://[::1]:80/v1"));
        assert!(!is_loopback("https://api.openai.com/v1"));
    }

    #[test]
    fn official_endpoints_need_a_key() {
        let mut config = test_config(crate::ProviderKind::OpenAi);
        config.base_url = "https://api.openai.com/v1".into();
        let err = check_key(&config, "api.openai.com", "OPENAI_API_KEY").unwrap_err();
        assert!(err.to_string().contains("set OPENAI_API_KEY"), "{err}");
        config.api_key = Some("sk-x".into());
        assert!(check_key(&config, "api.openai.com", "OPENAI_API_KEY").is_ok());
        config.api_key = None;
        config.base_url = "http://127.0.0.1:8080/v1".into();
        assert!(check_key(&config, "api.openai.com", "OPENAI_API_KEY").is_ok());
    }
}
