//! Environment scrubbing: which variables a sandboxed command inherits.
//!
//! A command gets rigor's environment minus every variable that looks like a credential, by
//! name or by value. Names are matched case-insensitively against these patterns:
//!
//! - containing `KEY`, `TOKEN`, `SECRET`, `PASSWORD`, `PASSWD`, `PASSPHRASE`, `CREDENTIAL`,
//!   `AUTH`, `PRIVATE`, `COOKIE`, `SESSION`, `DSN`;
//! - starting with `AWS_`, `AZURE_`, `ARM_`, `GOOGLE_`, `GCP_`, `GCLOUD_`, `CLOUDSDK_`, `OPENAI_`,
//!   `ANTHROPIC_`, `HF_`, `HUGGING`, `GITHUB_`, `GH_`, `GITLAB_`, `VAULT_`, `DOCKER_`, `NPM_CONFIG_`,
//!   `TWINE_`, `DIGITALOCEAN_`, `HEROKU_`, `STRIPE_`, `SLACK_`;
//! - exactly `SSH_AUTH_SOCK`, `SSH_AGENT_PID`, `GPG_AGENT_INFO`, `KUBECONFIG`, `DATABASE_URL`,
//!   `REDIS_URL`, `MONGODB_URI`, `NETRC`;
//! - and the names a caller adds (rigor adds the `api_key_env` of every configured provider).
//!
//! Values are checked too: a value that starts like a well-known credential (`sk-`, `ghp_`,
//! `github_pat_`, `glpat-`, `xox[bpas]-`, `AKIA`/`ASIA` keys, `hf_`, `AIza`, a PEM private key)
//! removes its variable whatever its name. This module does not redact output: the trajectory
//! redactor in `rigor-core` does that.

use std::ffi::OsString;

/// Substrings of variable names that mark a secret.
const SECRET_NAME_PARTS: &[&str] = &[
    "KEY",
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "CREDENTIAL",
    "AUTH",
    "PRIVATE",
    "COOKIE",
    "SESSION",
    "DSN",
];

/// Prefixes of variable names that belong to cloud or service credentials.
const SECRET_NAME_PREFIXES: &[&str] = &[
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
const SECRET_NAMES: &[&str] = &[
    "SSH_AUTH_SOCK",
    "SSH_AGENT_PID",
    "GPG_AGENT_INFO",
    "KUBECONFIG",
    "DATABASE_URL",
    "REDIS_URL",
    "MONGODB_URI",
    "NETRC",
];

/// Names that match a pattern above but are harmless and needed by ordinary tools.
const KEEP_NAMES: &[&str] = &["XAUTHORITY_UNUSED", "PYTHONHASHSEED", "KEYTIMEOUT"];

/// Whether a variable named `name` is treated as a secret.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    if KEEP_NAMES.contains(&upper.as_str()) {
        return false;
    }
    SECRET_NAMES.contains(&upper.as_str())
        || SECRET_NAME_PREFIXES.iter().any(|p| upper.starts_with(p))
        || SECRET_NAME_PARTS.iter().any(|p| upper.contains(p))
}

/// Whether `value` looks like a well-known credential format.
pub fn looks_like_secret(value: &str) -> bool {
    let v = value.trim();
    let prefixed = ["sk-", "sk_live_", "rk_live_", "ghp_", "gho_", "ghs_", "ghu_", "github_pat_", "glpat-", "hf_"]
        .iter()
        .any(|p| v.starts_with(p) && v.len() >= p.len() + 16);
    let slack = ["xoxb-", "xoxp-", "xoxa-", "xoxs-"].iter().any(|p| v.starts_with(p));
    let aws = (v.starts_with("AKIA") || v.starts_with("ASIA"))
        && v.len() == 20
        && v.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    let google = v.starts_with("AIza") && v.len() >= 35;
    let pem = v.contains("-----BEGIN") && v.contains("PRIVATE KEY");
    prefixed || slack || aws || google || pem
}

/// The environment a sandboxed command starts with: `vars` minus secrets and minus `extra`
/// names, in the given order.
pub fn scrub<I>(vars: I, extra: &[String]) -> Vec<(OsString, OsString)>
where
    I: IntoIterator<Item = (OsString, OsString)>,
{
    vars.into_iter()
        .filter(|(name, value)| {
            let name = name.to_string_lossy();
            let removed = is_secret_name(&name)
                || extra.iter().any(|e| e.eq_ignore_ascii_case(&name))
                || looks_like_secret(&value.to_string_lossy())
                || name.starts_with("RIGOR_SANDBOX");
            !removed
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(k, v)| (OsString::from(k), OsString::from(v))).collect()
    }

    #[test]
    fn secrets_are_removed_by_name_by_value_and_on_request() {
        let input = vars(&[
            ("PATH", "/usr/bin"),
            ("HOME", "/home/u"),
            ("LANG", "C.UTF-8"),
            ("OPENAI_API_KEY", "sk-abc"),
            ("ANTHROPIC_BASE_URL", "http://x"),
            ("AWS_ACCESS_KEY_ID", "AKIA0123456789ABCDEF"),
            ("GITHUB_TOKEN", "x"),
            ("db_password", "hunter2"),
            ("SSH_AUTH_SOCK", "/run/ssh.sock"),
            ("INNOCENT", "ghp_0123456789abcdefghij0123"),
            ("LOCAL_LLM", "whatever"),
            ("PYTHONPATH", "/src"),
            ("VIRTUAL_ENV", "/venv"),
        ]);
        let kept: Vec<String> =
            scrub(input, &["local_llm".into()]).into_iter().map(|(k, _)| k.to_string_lossy().into_owned()).collect();
        assert_eq!(kept, vec!["PATH", "HOME", "LANG", "PYTHONPATH", "VIRTUAL_ENV"]);
    }

    #[test]
    fn credential_formats_are_recognised() {
        assert!(looks_like_secret("sk-proj-0123456789abcdefghij"));
        assert!(looks_like_secret("AKIAIOSFODNN7EXAMPLE"));
        assert!(looks_like_secret("-----BEGIN OPENSSH PRIVATE KEY-----\nabc"));
        assert!(!looks_like_secret("/usr/local/bin"));
        assert!(!looks_like_secret("sk-short"));
    }
}
