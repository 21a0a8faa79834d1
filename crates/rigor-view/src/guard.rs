//! The viewer's defences, each independent of the pages: only loopback `Host` names are served
//! (a page of another site that rebinds its DNS name to 127.0.0.1 gets nothing), every response
//! carries a strict Content-Security-Policy and no-sniff headers, and a path taken from a URL is
//! confined to the directory it names ([`confine`]: no `..`, no absolute path, no symlink out).
//!
//! Trajectory content is written by the model, and by whoever wrote the files the model read: it
//! is rendered escaped (the templates autoescape everything), and the policy forbids inline
//! scripts, so that even a rendering mistake would not run one.

use std::path::{Component, Path, PathBuf};

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The Content-Security-Policy of every response: scripts and styles only from the viewer's own
/// embedded assets, no inline script, no framing, nothing fetched from another origin.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Whether a `Host` header names this machine's loopback interface (`localhost`, `127.0.0.1`,
/// `[::1]`, with or without a port).
pub fn is_loopback_host(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        // `[::1]:8080` or `localhost:8080`; a bare `[::1]` has its colons inside the brackets.
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !name.is_empty() => name,
        _ => host,
    };
    matches!(name.to_ascii_lowercase().as_str(), "localhost" | "127.0.0.1" | "[::1]")
}

/// Middleware: refuses a request whose `Host` is not a loopback name (DNS rebinding) and adds the
/// security headers to every response.
pub async fn loopback_only(request: Request, next: Next) -> Response {
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    let mut response = if is_loopback_host(host) {
        next.run(request).await
    } else {
        (
            StatusCode::MISDIRECTED_REQUEST,
            "rigor view answers only to localhost, 127.0.0.1 and [::1] (Host header refused)\n",
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

/// Why a path from a URL is not served.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfineError {
    /// `..`, an absolute path, an empty or hidden component.
    #[error("{0:?} is not a plain relative path")]
    NotRelative(String),
    /// Missing, or (through a symlink) outside the served directory.
    #[error("{0:?} is not a file under the served directory")]
    Outside(String),
}

/// `relative` resolved under `root` (which must be canonical): only plain relative components
/// (no `..`, no `.`-prefixed name, no absolute path), and the resolved path (symlinks followed)
/// must still lie under `root`.
pub fn confine(root: &Path, relative: &str) -> Result<PathBuf, ConfineError> {
    let not_relative = || ConfineError::NotRelative(relative.to_string());
    if relative.is_empty() || relative.contains('\0') || relative.contains('\\') {
        return Err(not_relative());
    }
    let mut joined = root.to_path_buf();
    for component in Path::new(relative).components() {
        match component {
            Component::Normal(name) if !name.to_string_lossy().starts_with('.') => joined.push(name),
            _ => return Err(not_relative()),
        }
    }
    let resolved = joined.canonicalize().map_err(|_| ConfineError::Outside(relative.to_string()))?;
    if resolved.starts_with(root) { Ok(resolved) } else { Err(ConfineError::Outside(relative.to_string())) }
}

/// A name taken from a URL that must be one directory entry (a run id, an instance id).
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\', '\0'])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_loopback_host_names_are_accepted() {
        for host in ["localhost", "localhost:8080", "127.0.0.1:1", "[::1]:9", "[::1]", "LOCALHOST:80"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "",
            "evil.example",
            "evil.example:8080",
            "127.0.0.1.evil.example",
            "localhost.evil.example:80",
            "127.0.0.2",
            "0.0.0.0:80",
            "[::2]:80",
            "localhost:80:80",
            "localhost:abc",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn paths_from_urls_stay_under_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("run")).unwrap();
        std::fs::write(root.join("run/patch.diff"), "x").unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("run/escape")).unwrap();
        std::os::unix::fs::symlink("patch.diff", root.join("run/inside")).unwrap();
        let root = root.canonicalize().unwrap();

        assert_eq!(confine(&root, "run/patch.diff").unwrap(), root.join("run/patch.diff"));
        assert_eq!(confine(&root, "run/inside").unwrap(), root.join("run/patch.diff"), "a symlink inside is fine");
        for bad in ["../secret", "run/../../secret", "/etc/passwd", "", "run/.git/config", "run\\x", "./run"] {
            assert!(matches!(confine(&root, bad), Err(ConfineError::NotRelative(_))), "{bad}");
        }
        assert_eq!(confine(&root, "run/escape"), Err(ConfineError::Outside("run/escape".into())));
        assert_eq!(confine(&root, "run/missing"), Err(ConfineError::Outside("run/missing".into())));
        assert!(is_plain_name("20261202-120000-ab12") && !is_plain_name("..") && !is_plain_name("a/b"));
    }
}
