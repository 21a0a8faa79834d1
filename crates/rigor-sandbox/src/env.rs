//! The secret catalogue, and the environment a sandboxed command inherits.
//!
//! # The catalogue
//!
//! One catalogue says what a secret looks like, for both defences that need it: this module's
//! [`scrub`] (what a command inherits) and the run-record redactor in `rigor-core`
//! (`rigor_core::redact::Redactor`), which has no list of its own.
//!
//! - **Names** ([`is_secret_name`], case-insensitive): containing one of [`SECRET_NAME_PARTS`]
//!   (`KEY`, `TOKEN`, `SECRET`, `PASS` (so also `PASSWORD`, `PASSWD`, `PASSPHRASE`), `CRED` (so
//!   `CREDS`, `CREDENTIALS`), `AUTH` (but not as part of `AUTHOR`), `PRIVATE`, `COOKIE`, `SESSION`,
//!   `SESSID`, `DSN`, `JWT`, `BEARER`); ending in `PWD` (`DB_PWD`, `MYSQL_PWD`; not `PWD` or
//!   `OLDPWD`); starting with one of [`SECRET_NAME_PREFIXES`] (cloud and service namespaces:
//!   `AWS_`, `GITHUB_`, `OPENAI_`, ...); or one of [`SECRET_NAMES`] (`SSH_AUTH_SOCK`,
//!   `DATABASE_URL`, ...). [`NOT_SECRET_NAMES`] lists the few harmless names that match a rule.
//! - **Value formats** ([`SECRET_VALUE_PATTERNS`], regular expressions): PEM private keys, API keys
//!   (`sk-`, `sk_live_`), GitHub, GitLab, Slack, npm and Hugging Face tokens, AWS and Google keys,
//!   JSON Web Tokens, `Authorization:` header values and the password of a URL
//!   (`scheme://user:password@host`).
//! - **PEM bodies** ([`PEM_BODY_KIND`]): a private key shown without its `BEGIN`/`END` lines (a
//!   file viewed by line range, a hunk of a diff) is caught as a run of at least
//!   [`PEM_BODY_MIN_LINES`] consecutive lines that are each 40 to 120 characters of pure base64
//!   with both upper- and lower-case letters (that excludes hex digests such as a list of commit
//!   ids), optionally behind the line-number prefix of the `view` tool (`   12\t`), a diff marker
//!   (`+`, `-`, ` `) or indentation. The base64 line that ends such a run (the shorter last line
//!   of a key) goes with it. Lines are separated by real newlines or by the escaped `\n` of JSON
//!   text (tool-call arguments are recorded raw).
//! - **Random values** ([`looks_random`]): a heuristic for values nobody named as secret.
//!
//! [`redact_formats`] replaces every value format and PEM body in a text by
//! `[REDACTED:<kind>]`; [`looks_like_secret`] says whether a value contains one.
//!
//! # The sandbox environment: an allowlist
//!
//! A command does not get rigor's environment minus what looks secret: a denylist misses every
//! name nobody thought of (`DB_PASS` did). [`scrub`] passes only the variables ordinary
//! development tools need ([`is_allowed_name`]):
//!
//! - the session basics: `PATH`, `HOME`, `USER`, `LOGNAME`, `SHELL`, `TERM`, `LANG`, `LANGUAGE`,
//!   `LC_*`, `TZ`, `TMPDIR`, `COLUMNS`, `LINES`, and output switches (`CI`, `NO_COLOR`,
//!   `FORCE_COLOR`, `CLICOLOR`, `CLICOLOR_FORCE`, `SOURCE_DATE_EPOCH`);
//! - toolchain locations and settings: Python (`PYTHON*` except `PYTHONSTARTUP` and
//!   `PYTHONBREAKPOINT`, which run code of the host, and `PYTHONINSPECT`, which would leave the
//!   `python` tool's interpreter waiting for input; `VIRTUAL_ENV`, `CONDA_PREFIX`,
//!   `CONDA_DEFAULT_ENV`, `PYENV_ROOT`, `PYENV_VERSION`), Rust (`CARGO_HOME`, `CARGO_TARGET_DIR`,
//!   `CARGO_BUILD_JOBS`, `CARGO_INCREMENTAL`, `CARGO_TERM_COLOR`, `RUSTUP_HOME`,
//!   `RUSTUP_TOOLCHAIN`, `RUSTFLAGS`, `RUSTDOCFLAGS`, `RUST_BACKTRACE`, `RUST_LOG`; not the other
//!   `CARGO_*` names, which include registry tokens), Go (`GOPATH`, `GOROOT`, `GOFLAGS`,
//!   `GOCACHE`, `GOMODCACHE`, `GOPROXY`, `GOTOOLCHAIN`, `GO111MODULE`), Java (`JAVA_HOME`,
//!   `GRADLE_USER_HOME`), Node (`NODE_PATH`, `NODE_ENV`, `NVM_DIR`, `NVM_BIN`, `NVM_INC`,
//!   `VOLTA_HOME`; not `NPM_CONFIG_*`), C and C++ (`CC`, `CXX`, `CFLAGS`, `CXXFLAGS`, `CPPFLAGS`,
//!   `LDFLAGS`, `MAKEFLAGS`, `PKG_CONFIG_PATH`, `CMAKE_PREFIX_PATH`, `CPATH`, `LIBRARY_PATH`,
//!   `LD_LIBRARY_PATH`; not `LD_PRELOAD`);
//! - proxies and certificate bundles, needed with `--network` behind a proxy (`HTTP_PROXY`,
//!   `HTTPS_PROXY`, `NO_PROXY`, `ALL_PROXY` in either case, `SSL_CERT_FILE`, `SSL_CERT_DIR`,
//!   `REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE`, `NODE_EXTRA_CA_CERTS`) — a proxy URL with a password
//!   is dropped by the value check below;
//! - the git identity (`GIT_AUTHOR_NAME`, `GIT_AUTHOR_EMAIL`, `GIT_COMMITTER_NAME`,
//!   `GIT_COMMITTER_EMAIL`).
//!
//! Left out on purpose, among others: `PWD`/`OLDPWD` (rigor's directory, wrong inside), display
//! and agent sockets (`DISPLAY`, `WAYLAND_DISPLAY`, `XDG_RUNTIME_DIR`, `DBUS_SESSION_BUS_ADDRESS`,
//! `SSH_AUTH_SOCK`), `EDITOR`/`VISUAL` (an editor would wait for a terminal), and everything
//! rigor itself reads (`RIGOR_*`, the providers' `*_API_KEY` and `*_BASE_URL`).
//!
//! Of the allowed variables, those the catalogue still calls secret are dropped too: a secret
//! name ([`is_secret_name`], e.g. a `PYTHON_…_TOKEN`), a value that contains a credential format
//! ([`looks_like_secret`]), a `RIGOR_SANDBOX*` name, and the names a caller adds (rigor adds the
//! `api_key_env` of every configured provider and the sandbox's `secret_env`). The tools add a
//! few fixed variables of their own after scrubbing (`PAGER`, `TERM=dumb`, ...), and the
//! evaluation harness passes its activation environment explicitly.

use std::borrow::Cow;
use std::ffi::OsString;
use std::sync::LazyLock;

use regex::Regex;

/// Substrings of variable names that mark a secret (matched on the upper-cased name). `AUTH` does
/// not count inside `AUTHOR` (`GIT_AUTHOR_NAME` is not a secret).
pub const SECRET_NAME_PARTS: &[&str] = &[
    "KEY", "TOKEN", "SECRET", "PASS", "CRED", "AUTH", "PRIVATE", "COOKIE", "SESSION", "SESSID", "DSN", "JWT", "BEARER",
];

/// The suffix of secret names such as `DB_PWD` (but `PWD` and `OLDPWD` are directories).
pub const SECRET_NAME_SUFFIX: &str = "PWD";

/// Prefixes of variable names that belong to cloud or service credentials.
pub const SECRET_NAME_PREFIXES: &[&str] = &[
    "AWS_",
    "AZURE_",
    "ARM_",
    "GOOGLE_",
    "GCP_",
    "GCLOUD_",
    "CLOUDSDK_",
    "OPENAI_",
    "ANTHROPIC_",
    "HF_",
    "HUGGING",
    "GITHUB_",
    "GH_",
    "GITLAB_",
    "VAULT_",
    "DOCKER_",
    "NPM_CONFIG_",
    "TWINE_",
    "DIGITALOCEAN_",
    "HEROKU_",
    "STRIPE_",
    "SLACK_",
];

/// Whole names that give access to credentials or agents.
pub const SECRET_NAMES: &[&str] = &[
    "SSH_AUTH_SOCK",
    "SSH_AGENT_PID",
    "GPG_AGENT_INFO",
    "KUBECONFIG",
    "DATABASE_URL",
    "REDIS_URL",
    "MONGODB_URI",
    "NETRC",
];

/// Names that match a rule above but hold nothing secret.
pub const NOT_SECRET_NAMES: &[&str] = &[
    "PWD",
    "OLDPWD",
    "PYTHONHASHSEED",
    "KEYTIMEOUT",
    "DBUS_SESSION_BUS_ADDRESS",
    "DESKTOP_SESSION",
    "SESSION_MANAGER",
    "XDG_SESSION_CLASS",
    "XDG_SESSION_DESKTOP",
    "XDG_SESSION_ID",
    "XDG_SESSION_TYPE",
];

/// Whether a variable named `name` holds a secret, by the rules of the module documentation.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    if NOT_SECRET_NAMES.contains(&upper.as_str()) {
        return false;
    }
    let without_author = upper.replace("AUTHOR", "");
    SECRET_NAMES.contains(&upper.as_str())
        || SECRET_NAME_PREFIXES.iter().any(|p| upper.starts_with(p))
        || upper.ends_with(SECRET_NAME_SUFFIX)
        || SECRET_NAME_PARTS.iter().any(|p| without_author.contains(p))
}

/// Credential formats that are secret wherever they appear: (kind, regular expression). When a
/// pattern has a group named `secret`, only that group is replaced (the URL's scheme and user,
/// the header's name stay readable); otherwise the whole match is.
pub const SECRET_VALUE_PATTERNS: &[(&str, &str)] = &[
    ("private-key", r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----"),
    // A BEGIN line whose END is not in the text (a truncated view); the body is caught as a
    // PEM body.
    ("private-key", r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----"),
    ("url-credentials", r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:(?P<secret>[^\s/@][^\s/]*)@"),
    (
        "auth-header",
        r"(?i)\b(?:proxy-)?authorization\s*:\s*(?:bearer|basic|token|digest)\s+(?P<secret>[A-Za-z0-9._~+/=-]{8,})",
    ),
    ("api-key", r"\bsk-[A-Za-z0-9_-]{20,}"),
    ("stripe-key", r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"),
    ("github-token", r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{22,})"),
    ("gitlab-token", r"\bglpat-[A-Za-z0-9_-]{16,}"),
    ("npm-token", r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("aws-access-key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    ("aws-secret", r"(?i)aws_secret_access_key\s*[=:]\s*(?P<secret>[A-Za-z0-9/+=]{30,})"),
    ("slack-token", r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    ("google-api-key", r"\bAIza[0-9A-Za-z_-]{35}"),
    ("huggingface-token", r"\bhf_[A-Za-z0-9]{30,}"),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    // `.netrc` entries (`machine h login u password p`), whatever their layout.
    ("netrc-password", r"(?i)\b(?:machine|login|default)\b[^\n]*?\bpassword\s+(?P<secret>\S+)"),
    // A quoted literal assigned to a name that says it is a secret (`password = "…"`,
    // `"api_key": "…"`), as in config files and fixtures.
    (
        "secret-literal",
        r#"(?i)\b(?:password|passwd|secret|api_?key|access_?token|auth_?token)["']?\s*[=:]\s*["'](?P<secret>[^"'\s]{8,})["']"#,
    ),
];

/// The kind a PEM body is redacted as: `[REDACTED:private-key-body]`.
pub const PEM_BODY_KIND: &str = "private-key-body";

/// How many consecutive base64 lines make a PEM body.
pub const PEM_BODY_MIN_LINES: usize = 3;

/// One line of a PEM body: an optional prefix (indentation, the `view` tool's line number and
/// tab, a diff marker; a tab may be JSON-escaped) and the base64 text.
pub const PEM_BODY_LINE: &str =
    r"^(?P<prefix>(?:[ \t]|\\t)*(?:[0-9]+(?:\t|\\t))?[+\- ]?(?:[ \t]|\\t)*)(?P<body>[A-Za-z0-9+/]+={0,2})[ \t]*\r?$";

/// Lengths of a full PEM body line.
const PEM_LINE_LEN: std::ops::RangeInclusive<usize> = 40..=120;

/// The compiled [`SECRET_VALUE_PATTERNS`] (every one compiles: a unit test checks it).
pub fn secret_value_patterns() -> &'static [(&'static str, Regex)] {
    static COMPILED: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
        SECRET_VALUE_PATTERNS.iter().filter_map(|(kind, re)| Regex::new(re).ok().map(|re| (*kind, re))).collect()
    });
    &COMPILED
}

/// [`PEM_BODY_LINE`] and the line separator (both compile: a unit test checks it).
fn pem_regexes() -> Option<&'static (Regex, Regex)> {
    static REGEXES: LazyLock<Option<(Regex, Regex)>> =
        LazyLock::new(|| Some((Regex::new(PEM_BODY_LINE).ok()?, Regex::new(r"\n|\\r\\n|\\n").ok()?)));
    REGEXES.as_ref()
}

/// Whether `value` contains a credential format, a PEM body, or the start of a private key.
pub fn looks_like_secret(value: &str) -> bool {
    secret_value_patterns().iter().any(|(_, re)| re.is_match(value)) || !pem_body_ranges(value).is_empty()
}

/// `text` with every credential format ([`SECRET_VALUE_PATTERNS`]) and every PEM body replaced
/// by `[REDACTED:<kind>]`.
pub fn redact_formats(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for (kind, re) in secret_value_patterns() {
        if !re.is_match(&out) {
            continue;
        }
        let marker = format!("[REDACTED:{kind}]");
        let replaced = re
            .replace_all(&out, |caps: &regex::Captures<'_>| match (caps.get(0), caps.name("secret")) {
                (Some(whole), Some(secret)) => {
                    let start = secret.start() - whole.start();
                    let end = secret.end() - whole.start();
                    format!("{}{marker}{}", &whole.as_str()[..start], &whole.as_str()[end..])
                }
                _ => marker.clone(),
            })
            .into_owned();
        out = Cow::Owned(replaced);
    }
    let ranges = pem_body_ranges(&out);
    if ranges.is_empty() {
        return out;
    }
    let marker = format!("[REDACTED:{PEM_BODY_KIND}]");
    let mut redacted = String::with_capacity(out.len());
    let mut last = 0;
    for (start, end) in ranges {
        redacted.push_str(&out[last..start]);
        redacted.push_str(&marker);
        last = end;
    }
    redacted.push_str(&out[last..]);
    Cow::Owned(redacted)
}

/// Byte ranges of the base64 text of every PEM body line in `text`, in order.
fn pem_body_ranges(text: &str) -> Vec<(usize, usize)> {
    let Some((pem_line, line_separator)) = pem_regexes() else { return Vec::new() };
    // Lines as (start, end) byte offsets, split at real or JSON-escaped newlines.
    let mut lines = Vec::new();
    let mut start = 0;
    for sep in line_separator.find_iter(text) {
        lines.push((start, sep.start()));
        start = sep.end();
    }
    lines.push((start, text.len()));
    // The base64 body of each line, if the line is nothing else.
    let bodies: Vec<Option<(usize, usize)>> = lines
        .iter()
        .map(|&(s, e)| {
            pem_line.captures(&text[s..e]).and_then(|c| c.name("body")).map(|b| (s + b.start(), s + b.end()))
        })
        .collect();
    let full = |i: usize| {
        bodies[i].is_some_and(|(s, e)| {
            let body = &text[s..e];
            PEM_LINE_LEN.contains(&body.len())
                && body.bytes().any(|b| b.is_ascii_uppercase())
                && body.bytes().any(|b| b.is_ascii_lowercase())
        })
    };
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < bodies.len() {
        if !full(i) {
            i += 1;
            continue;
        }
        let run_start = i;
        while i < bodies.len() && full(i) {
            i += 1;
        }
        if i - run_start >= PEM_BODY_MIN_LINES {
            ranges.extend(bodies[run_start..i].iter().flatten().copied());
            // The shorter last line of the key.
            if let Some(Some((s, e))) = bodies.get(i)
                && (4..=*PEM_LINE_LEN.end()).contains(&(e - s))
            {
                ranges.push((*s, *e));
                i += 1;
            }
        }
    }
    ranges
}

/// The shortest value [`looks_random`] considers.
pub const RANDOM_MIN_LEN: usize = 12;

/// Whether `value` looks like a random token (a key nobody named as one): at least
/// [`RANDOM_MIN_LEN`] characters, no whitespace, not a path (`/`, `~`, `.` first) and not a URL
/// (`://`; a URL's password is a value format), at least three quarters ASCII letters and digits
/// (not a list such as `LS_COLORS`), and among those letters and digits frequent switches between
/// digit and letter or from lower to upper case (at least one pair in four: random base62 or hex
/// has about one in two, words, `CamelCase`, dates, versions and target triples far fewer) and
/// some variety (at least 2.5 bits of entropy per character).
pub fn looks_random(value: &str) -> bool {
    let v = value.trim();
    let total = v.chars().count();
    if total < RANDOM_MIN_LEN
        || v.chars().any(char::is_whitespace)
        || v.contains("://")
        || v.starts_with(['/', '~', '.'])
    {
        return false;
    }
    let alnum: Vec<u8> = v.bytes().filter(u8::is_ascii_alphanumeric).collect();
    if alnum.len() < RANDOM_MIN_LEN || alnum.len() * 4 < total * 3 {
        return false;
    }
    let switches = alnum
        .windows(2)
        .filter(|w| {
            w[0].is_ascii_digit() != w[1].is_ascii_digit() || (w[0].is_ascii_lowercase() && w[1].is_ascii_uppercase())
        })
        .count();
    if switches * 4 < alnum.len() - 1 {
        return false;
    }
    let mut counts = [0usize; 256];
    for &b in &alnum {
        counts[b as usize] += 1;
    }
    let n = alnum.len() as f64;
    let entropy: f64 = counts.iter().filter(|&&c| c > 0).map(|&c| -(c as f64 / n) * (c as f64 / n).log2()).sum();
    entropy >= 2.5
}

/// Names a sandboxed command inherits (see the module documentation).
pub const ALLOWED_NAMES: &[&str] = &[
    // Session basics.
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TERM",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TMPDIR",
    "COLUMNS",
    "LINES",
    "CI",
    "NO_COLOR",
    "FORCE_COLOR",
    "CLICOLOR",
    "CLICOLOR_FORCE",
    "SOURCE_DATE_EPOCH",
    // Python (plus `PYTHON*`, see ALLOWED_PREFIXES).
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "CONDA_DEFAULT_ENV",
    "PYENV_ROOT",
    "PYENV_VERSION",
    // Rust.
    "CARGO_HOME",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_JOBS",
    "CARGO_INCREMENTAL",
    "CARGO_TERM_COLOR",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "RUSTFLAGS",
    "RUSTDOCFLAGS",
    "RUST_BACKTRACE",
    "RUST_LOG",
    // Go.
    "GOPATH",
    "GOROOT",
    "GOFLAGS",
    "GOCACHE",
    "GOMODCACHE",
    "GOPROXY",
    "GOTOOLCHAIN",
    "GO111MODULE",
    // Java.
    "JAVA_HOME",
    "GRADLE_USER_HOME",
    // Node.
    "NODE_PATH",
    "NODE_ENV",
    "NVM_DIR",
    "NVM_BIN",
    "NVM_INC",
    "VOLTA_HOME",
    // C and C++.
    "CC",
    "CXX",
    "CFLAGS",
    "CXXFLAGS",
    "CPPFLAGS",
    "LDFLAGS",
    "MAKEFLAGS",
    "PKG_CONFIG_PATH",
    "CMAKE_PREFIX_PATH",
    "CPATH",
    "LIBRARY_PATH",
    "LD_LIBRARY_PATH",
    // Network (only reachable with `--network`).
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    // Git identity.
    "GIT_AUTHOR_NAME",
    "GIT_AUTHOR_EMAIL",
    "GIT_COMMITTER_NAME",
    "GIT_COMMITTER_EMAIL",
];

/// Name prefixes a sandboxed command inherits, minus [`NOT_ALLOWED_NAMES`].
pub const ALLOWED_PREFIXES: &[&str] = &["LC_", "PYTHON"];

/// Names under an allowed prefix that are not passed: they make Python run code of the host or
/// wait for input.
pub const NOT_ALLOWED_NAMES: &[&str] = &["PYTHONSTARTUP", "PYTHONBREAKPOINT", "PYTHONINSPECT"];

/// Whether a sandboxed command may inherit a variable named `name` (exact, case-sensitive: the
/// allowlist, before the secret checks of [`scrub`]).
pub fn is_allowed_name(name: &str) -> bool {
    ALLOWED_NAMES.contains(&name)
        || (ALLOWED_PREFIXES.iter().any(|p| name.starts_with(p)) && !NOT_ALLOWED_NAMES.contains(&name))
}

/// The environment a sandboxed command starts with: the allowed variables of `vars` ([`is_allowed_name`])
/// minus secret names, secret-looking values, `RIGOR_SANDBOX*` and the `extra` names
/// (case-insensitive), in the given order.
pub fn scrub<I>(vars: I, extra: &[String]) -> Vec<(OsString, OsString)>
where
    I: IntoIterator<Item = (OsString, OsString)>,
{
    vars.into_iter()
        .filter(|(name, value)| {
            let Some(name) = name.to_str() else { return false };
            is_allowed_name(name)
                && !is_secret_name(name)
                && !name.starts_with("RIGOR_SANDBOX")
                && !extra.iter().any(|e| e.eq_ignore_ascii_case(name))
                && !looks_like_secret(&value.to_string_lossy())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))).collect()
    }

    fn kept(input: &[(&str, &str)], extra: &[String]) -> Vec<String> {
        scrub(vars(input), extra).into_iter().map(|(k, _)| k.to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn only_allowed_variables_pass_and_secrets_among_them_are_removed() {
        let input = [
            ("PATH", "/usr/bin"),
            ("HOME", "/home/u"),
            ("LANG", "C.UTF-8"),
            ("LC_ALL", "C"),
            ("OPENAI_API_KEY", "sk-abc"),
            ("ANTHROPIC_BASE_URL", "http://x"),
            ("AWS_ACCESS_KEY_ID", "AKIA0123456789ABCDEF"),
            ("GITHUB_TOKEN", "x"),
            ("DB_PASS", "hunter2"),
            ("MY_APP_CONFIG", "harmless"),
            ("SSH_AUTH_SOCK", "/run/ssh.sock"),
            ("PWD", "/home/u/src"),
            ("LOCAL_LLM", "whatever"),
            ("PYTHONPATH", "/src"),
            ("PYTHONSTARTUP", "/home/u/.pythonrc"),
            ("PYTHON_KEYRING_TOKEN", "t"),
            ("VIRTUAL_ENV", "/venv"),
            ("RIGOR_SANDBOX_HELPER", "/bin/helper"),
            ("RIGOR_MODEL", "openai:gpt"),
            // Allowed names whose value is a credential.
            ("HTTPS_PROXY", "http://me:s3cret@proxy:3128"),
            ("RUSTFLAGS", "ghp_0123456789abcdefghij0123"),
            ("GOFLAGS", "-mod=mod"),
            ("NO_PROXY", "localhost"),
        ];
        assert_eq!(
            kept(&input, &[]),
            vec!["PATH", "HOME", "LANG", "LC_ALL", "PYTHONPATH", "VIRTUAL_ENV", "GOFLAGS", "NO_PROXY"]
        );
        // `extra` removes allowed names too, whatever their case.
        assert_eq!(kept(&input, &["pythonpath".into()]).iter().filter(|n| *n == "PYTHONPATH").count(), 0);
    }

    #[test]
    fn secret_names_follow_the_catalogue() {
        for name in [
            "DB_PASS",
            "db_password",
            "PGPASSWORD",
            "DB_PWD",
            "MYSQL_PWD",
            "SENTRY_DSN",
            "X_AUTH",
            "SSH_AUTH_SOCK",
            "APP_PRIVATE",
            "SERVICE_CREDS",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "SESSION_COOKIE",
            "FLASK_SESSION",
            "PHPSESSID",
            "CI_JOB_JWT",
            "AWS_REGION",
            "GITHUB_TOKEN",
            "KUBECONFIG",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in
            ["PWD", "OLDPWD", "PATH", "HOME", "GIT_AUTHOR_NAME", "DBUS_SESSION_BUS_ADDRESS", "PYTHONHASHSEED", "LANG"]
        {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn every_pattern_of_the_catalogue_compiles() {
        assert_eq!(secret_value_patterns().len(), SECRET_VALUE_PATTERNS.len());
        assert!(pem_regexes().is_some());
    }

    #[test]
    fn credential_formats_are_recognised() {
        assert!(looks_like_secret("sk-proj-0123456789abcdefghij"));
        assert!(looks_like_secret("AKIAIOSFODNN7EXAMPLE"));
        assert!(looks_like_secret("ghp_0123456789abcdefghij0123"));
        assert!(looks_like_secret("-----BEGIN OPENSSH PRIVATE KEY-----\nabc"));
        assert!(looks_like_secret("postgres://app:hunter2@db:5432/app"));
        assert!(!looks_like_secret("/usr/local/bin"));
        assert!(!looks_like_secret("sk-short"));
        assert!(!looks_like_secret("https://example.com/a:b@c"));
        assert!(!looks_like_secret("http://localhost:8080/path"));
    }

    #[test]
    fn formats_are_redacted_keeping_what_is_not_secret() {
        assert_eq!(
            redact_formats("url: postgres://app:p@ssw0rd@db:5432/app, redis://:hunter22@cache"),
            "url: postgres://app:[REDACTED:url-credentials]@db:5432/app, redis://:[REDACTED:url-credentials]@cache"
        );
        assert_eq!(
            redact_formats("curl -H 'Authorization: Bearer abc.def-0123456789'"),
            "curl -H 'Authorization: Bearer [REDACTED:auth-header]'"
        );
        assert_eq!(redact_formats("key sk-proj-abcdefghijklmnopqrstuvwx."), "key [REDACTED:api-key].");
        assert_eq!(redact_formats("nothing here: skip-this sk-short"), "nothing here: skip-this sk-short");
        assert_eq!(
            redact_formats("machine git.example.com login adv password ADVNETRC0a1b2c\n"),
            "machine git.example.com login adv password [REDACTED:netrc-password]\n"
        );
        assert_eq!(
            redact_formats("db = {\"password\": \"hunter2hunter2\"}; password = get_password()"),
            "db = {\"password\": \"[REDACTED:secret-literal]\"}; password = get_password()"
        );
        assert_eq!(redact_formats("the password is wrong"), "the password is wrong");
    }

    #[test]
    fn a_pem_body_with_longer_lines_is_redacted() {
        let long = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAABFwAAAAdzc2gtcnNhAAAAAwEAAQAAAQEAv";
        let text = format!("{long}\n{long}\n{long}\n");
        assert!(!redact_formats(&text).contains("b3Blbn"), "{}", redact_formats(&text));
    }

    /// A made-up base64 key body (64 characters a line, as in a PEM file) and its short last line.
    pub(crate) fn key_body() -> Vec<&'static str> {
        vec![
            "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
            "QyNTUxOQAAACDx9Yq2fJ3XkLmN0pQrStUvWxYz1a2b3c4d5e6f7g8h9iAAAAJgAbCdEfGh",
            "IjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOpQrStUvWxYz0123456789+/AbCd",
            "EfGhIjKlMnOpQrStUvWxYz0123456789AbCdEfGhIjKlMnOp==",
        ]
    }

    #[test]
    fn a_pem_body_without_its_armour_is_redacted_in_views_and_diffs() {
        let body = key_body();
        // As the view tool prints a line range.
        let view: String = body.iter().enumerate().map(|(i, l)| format!("{:>5}\t{l}\n", i + 12)).collect();
        let redacted = redact_formats(&view);
        assert_eq!(redacted.matches("[REDACTED:private-key-body]").count(), 4, "{redacted}");
        assert!(redacted.starts_with("   12\t[REDACTED:private-key-body]\n   13\t"), "{redacted}");
        assert!(!redacted.contains("AbCdEf"), "{redacted}");
        // As a diff hunk, and as JSON-escaped text (tool-call arguments).
        let diff: String = body.iter().map(|l| format!("+{l}\n")).collect();
        assert!(!redact_formats(&diff).contains("AbCdEf"));
        let escaped = body.join("\\n");
        assert!(!redact_formats(&escaped).contains("AbCdEf"));
        assert!(looks_like_secret(&body.join("\n")));
        // Two lines are not enough; nor are hex digests (no upper case) such as commit ids.
        let two = body[..2].join("\n");
        assert_eq!(redact_formats(&two), two);
        let commits = "9fceb02d0ae598e95dc970b74767f19372d61af8\n\
                       a94a8fe5ccb19ba61c4c0873d391e987982fbbd3\n\
                       da39a3ee5e6b4b0d3255bfef95601890afd80709\n";
        assert_eq!(redact_formats(commits), commits);
        let prose =
            "This is a sentence of ordinary prose that runs long\nand another line of it\nand one more line here\n";
        assert_eq!(redact_formats(prose), prose);
    }

    #[test]
    fn random_values_are_told_from_words_paths_and_urls() {
        for v in [
            "Zx8Kq2Lm9Vt4Rb7Nw1Yc6Hs3Jd5Fg0Pa/Qe+Ui",
            "9f86d081884c7d659a2feaa0c55ad015",
            "q8Zr3mK1vT0bXw7N",
            "f47ac10b-58cc-4372-a567-0e02b2c3d479",
        ] {
            assert!(looks_random(v), "{v}");
        }
        for v in [
            "/home/user/.cache/huggingface",
            "https://api.example.com/v1",
            "x86_64-unknown-linux-gnu",
            "HelloWorldExample",
            "2024-01-01T00:00:00Z",
            "1.2.3-beta.4+build.567",
            "rs=0:di=01;34:ln=01;36:mh=00:pi=40;33",
            "short1A",
            "aaaaaaaaaaaaaaaa",
            "a1a1a1a1a1a1a1a1",
            "unix:path=/run/user/1000/bus",
            "openai:gpt-4o-mini",
        ] {
            assert!(!looks_random(v), "{v}");
        }
    }
}
