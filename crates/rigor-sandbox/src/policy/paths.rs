//! Where a path named in a command points: the workspace, the scratch area, a system location,
//! the user's credentials or dotfiles, or elsewhere. Paths are expanded (`~`, `$HOME`),
//! resolved against the current directory, normalised lexically, and, when they lie in the
//! workspace, resolved through existing symlinks, so that a link planted in the workspace
//! pointing outside is judged by its target. This module only reads link targets; it never
//! changes anything.

use std::path::{Path, PathBuf};

use super::Policy;
use crate::paths::normalize;

/// Where a path points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Place {
    /// Inside the workspace (after resolving symlinks).
    Workspace,
    /// `/tmp` (the sandbox's scratch tmpfs), `/dev/null`, `/dev/stdout`, ...: free to write.
    Scratch,
    /// An ancestor of the workspace (deleting it destroys the work and more).
    WorkspaceAncestor,
    /// A system location (`/`, `/etc`, `/usr`, ...).
    System,
    /// The home directory itself.
    Home,
    /// A shell start-up file, cron or systemd location, authorized_keys: persistence targets.
    Persistence,
    /// A credential store (`~/.ssh`, `~/.aws`, `.netrc`, `/etc/shadow`, ...).
    Credential,
    /// rigor's own configuration or sandbox settings.
    RigorConfig,
    /// A raw device (`/dev/sda`, `/dev/mem`, ...).
    Device,
    /// Anywhere else outside the workspace.
    Outside,
    /// Cannot be known statically (`$DIR/x` with an unknown variable).
    Unknown,
}

/// Directories whose contents are the system.
const SYSTEM_DIRS: &[&str] = &[
    "/bin",
    "/boot",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/sbin",
    "/usr",
    "/sys",
    "/proc",
    "/var/lib",
    "/var/spool",
    "/var/log",
    "/var/cache",
    "/snap",
];

/// Top-level directories whose removal is always catastrophic.
const TOP_LEVEL: &[&str] = &["/", "/home", "/root", "/var", "/opt", "/srv", "/mnt", "/media", "/run", "/dev"];

/// Credential files and directories, relative to the home directory.
const HOME_CREDENTIALS: &[&str] = &[
    ".ssh",
    ".aws",
    ".azure",
    ".gnupg",
    ".netrc",
    ".git-credentials",
    ".docker/config.json",
    ".kube",
    ".config/gh",
    ".config/gcloud",
    ".config/hub",
    ".npmrc",
    ".pypirc",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".password-store",
    ".vault-token",
    ".local/share/keyrings",
    ".bash_history",
    ".zsh_history",
    ".python_history",
    ".mozilla",
    ".config/google-chrome",
    ".config/chromium",
];

/// System credential files.
const SYSTEM_CREDENTIALS: &[&str] = &["/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/etc/ssh", "/root"];

/// Persistence locations relative to the home directory.
const HOME_PERSISTENCE: &[&str] = &[
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".profile",
    ".zshrc",
    ".zprofile",
    ".zshenv",
    ".zlogin",
    ".config/fish",
    ".config/systemd",
    ".config/autostart",
    ".ssh/authorized_keys",
    ".ssh/rc",
    ".xinitrc",
    ".xprofile",
    ".pam_environment",
];

/// System persistence locations.
const SYSTEM_PERSISTENCE: &[&str] = &[
    "/etc/cron.d",
    "/etc/crontab",
    "/etc/cron.daily",
    "/etc/cron.hourly",
    "/etc/cron.weekly",
    "/etc/cron.monthly",
    "/var/spool/cron",
    "/etc/systemd",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/etc/init.d",
    "/etc/rc.local",
    "/etc/profile",
    "/etc/profile.d",
    "/etc/bash.bashrc",
    "/etc/environment",
    "/etc/ld.so.preload",
    "/etc/xdg/autostart",
];

/// Device files that are harmless to write.
const HARMLESS_DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/stdout",
    "/dev/stderr",
    "/dev/stdin",
    "/dev/tty",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

/// `path` with its deepest existing ancestor resolved through symlinks (as given when that fails).
fn resolve_links(path: &Path) -> PathBuf {
    crate::paths::resolve_links(path).unwrap_or_else(|_| path.to_path_buf())
}

fn under(path: &Path, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|p| path.starts_with(p))
}

impl Policy {
    /// Expands `~` and `$HOME` at the start of `word` and makes it absolute against `cwd`;
    /// `None` when it cannot be known (an unknown variable before any literal directory).
    pub(crate) fn expand(&self, word: &str, cwd: &Path) -> Option<PathBuf> {
        let home = self.home.as_deref();
        let text = if word == "~" || word.starts_with("~/") {
            match home {
                Some(h) => format!("{}{}", h.display(), &word[1..]),
                None => return None,
            }
        } else {
            word.to_string()
        };
        let text = match home {
            Some(h) => text.replace("${HOME}", &h.display().to_string()).replace("$HOME", &h.display().to_string()),
            None => text,
        };
        // An unknown variable: judge by the literal directory before it, if any.
        let literal = match text.find('$') {
            Some(0) => return None,
            Some(i) => {
                let prefix = &text[..i];
                match prefix.rfind('/') {
                    Some(slash) => prefix[..=slash].to_string(),
                    None => return None,
                }
            }
            None => text,
        };
        let path = Path::new(&literal);
        Some(normalize(&if path.is_absolute() { path.to_path_buf() } else { cwd.join(path) }))
    }

    /// Where `word` (a path as written in a command) points, from `cwd`.
    pub(crate) fn place(&self, word: &str, cwd: &Path) -> Place {
        let Some(path) = self.expand(word, cwd) else { return Place::Unknown };
        // Globs: judge the directory they expand in.
        let path = if path.file_name().is_some_and(|n| n.to_string_lossy().contains(['*', '?', '['])) {
            path.parent().map(Path::to_path_buf).unwrap_or(path)
        } else {
            path
        };
        let real = if path.starts_with(&self.workspace) { resolve_links(&path) } else { path.clone() };
        self.place_of(&real)
    }

    fn place_of(&self, path: &Path) -> Place {
        let ws = &self.workspace;
        if path.components().any(|c| c.as_os_str() == ".rigor") && path.ends_with("config.toml") {
            return Place::RigorConfig;
        }
        if path.starts_with(ws) {
            return Place::Workspace;
        }
        if ws.starts_with(path) {
            return Place::WorkspaceAncestor;
        }
        if let Some(home) = &self.home {
            if path == home {
                return Place::Home;
            }
            if let Ok(rel) = path.strip_prefix(home) {
                if HOME_CREDENTIALS.iter().any(|c| rel.starts_with(c)) && !rel.starts_with(".ssh/authorized_keys") {
                    return Place::Credential;
                }
                if HOME_PERSISTENCE.iter().any(|c| rel.starts_with(c)) {
                    return Place::Persistence;
                }
                if rel.starts_with(".config/rigor") || rel.starts_with(".rigor") {
                    return Place::RigorConfig;
                }
            }
        }
        if path.starts_with("/dev") {
            if under(path, HARMLESS_DEVICES) || path.starts_with("/dev/fd") || path.starts_with("/dev/shm") {
                return Place::Scratch;
            }
            if path == Path::new("/dev") {
                return Place::System;
            }
            return Place::Device;
        }
        if path.starts_with("/proc/sys") || path.starts_with("/sys") {
            return Place::RigorConfig;
        }
        if path.to_string_lossy().contains("/proc/") && path.to_string_lossy().ends_with("/environ") {
            return Place::Credential;
        }
        if under(path, SYSTEM_CREDENTIALS) {
            return Place::Credential;
        }
        if under(path, SYSTEM_PERSISTENCE) {
            return Place::Persistence;
        }
        if TOP_LEVEL.iter().any(|t| path == Path::new(t)) {
            return Place::System;
        }
        if path.starts_with("/tmp") {
            return Place::Scratch;
        }
        if under(path, SYSTEM_DIRS) {
            return Place::System;
        }
        Place::Outside
    }

    /// Whether `word` names a credential: a credential place, or a private-key file name
    /// outside the workspace.
    pub(crate) fn is_credential(&self, word: &str, cwd: &Path) -> bool {
        match self.place(word, cwd) {
            Place::Credential => true,
            Place::Workspace | Place::Scratch => false,
            _ => {
                let name = Path::new(word).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                name.starts_with("id_rsa") || name.starts_with("id_ed25519") || name.starts_with("id_ecdsa")
            }
        }
    }
}
