//! Shell screening: parses a command line with tree-sitter-bash and judges every simple command,
//! redirection, pipeline, function and loop in it.
//!
//! Wrappers (`sudo`, `env`, `nohup`, `timeout`, `xargs`, `exec`, ...) are looked through; the
//! strings given to `sh -c`, `bash -c` and `eval`, and heredocs or here-strings fed to a shell,
//! are parsed recursively (to a fixed depth); code given to Python (`python -c`, a heredoc) goes
//! to the Python screen. `cd` within one command line moves the directory relative paths are
//! judged from. This module decides nothing on its own: it returns findings to
//! [`super::Policy`].

use std::cell::RefCell;
use std::path::PathBuf;

use tree_sitter::{Node, Parser};

use super::paths::Place;
use super::{Category, Finding, Policy, Verdict};

/// How deep `sh -c "sh -c '...'"` nesting is followed.
pub(crate) const MAX_DEPTH: u32 = 4;

thread_local! {
    static PARSER: RefCell<Option<Parser>> = const { RefCell::new(None) };
}

fn parse(source: &str) -> Option<tree_sitter::Tree> {
    super::parse_with(&PARSER, &tree_sitter_bash::LANGUAGE.into(), source)
}

/// Screens `source` (a shell command line or script).
pub(crate) fn analyze(policy: &Policy, source: &str, depth: u32) -> Vec<Finding> {
    let mut analyzer = Analyzer {
        policy,
        src: source,
        depth,
        cwd: policy.workspace.clone(),
        findings: Vec::new(),
        downloaded: Vec::new(),
    };
    if depth > MAX_DEPTH {
        return vec![Finding::new(
            Verdict::Ask,
            Category::SandboxEscape,
            "nesting-too-deep",
            "the command nests shells more deeply than the policy follows",
        )];
    }
    if let Some(tree) = parse(source) {
        analyzer.walk(tree.root_node());
    }
    analyzer.textual_fork_bomb();
    analyzer.findings
}

/// Programs that run a shell script from their arguments or stdin.
const SHELLS: &[&str] = &["sh", "bash", "zsh", "dash", "ksh", "mksh", "fish", "busybox"];
/// Interpreters that run code from stdin when given no script.
const INTERPRETERS: &[&str] = &["python", "python2", "python3", "pypy", "pypy3", "perl", "ruby", "node", "php", "lua"];
/// Programs that fetch from the network.
const FETCHERS: &[&str] = &["curl", "wget", "fetch", "aria2c", "http", "https", "xh"];
/// Programs that send data over the network.
const NET_SINKS: &[&str] = &[
    "curl", "wget", "nc", "ncat", "netcat", "socat", "telnet", "ssh", "scp", "sftp", "ftp", "tftp", "openssl", "http",
    "https", "xh", "rsync",
];
/// Programs that print the environment.
const ENV_DUMPERS: &[&str] = &["env", "printenv", "set", "export", "declare", "compgen"];

/// A word of a command, as bash would see it once quotes are removed.
#[derive(Debug, Clone)]
struct Word {
    text: String,
    /// Contains an expansion or substitution whose value is unknown.
    dynamic: bool,
}

struct Analyzer<'a> {
    policy: &'a Policy,
    src: &'a str,
    depth: u32,
    cwd: PathBuf,
    findings: Vec<Finding>,
    /// Files written by `curl -o` / `wget -O` earlier in the command line.
    downloaded: Vec<PathBuf>,
}

fn basename(program: &str) -> &str {
    program.rsplit('/').next().unwrap_or(program)
}

fn is_python(name: &str) -> bool {
    name.starts_with("python") || name.starts_with("pypy")
}

fn is_flag(arg: &str) -> bool {
    arg.starts_with('-') && arg.len() > 1
}

/// The host a URL or `host:port`/`user@host:path` argument names. The user part is taken off
/// the authority only (`http://evil.example/x@localhost` names `evil.example`).
pub(super) fn host_of(arg: &str) -> Option<String> {
    let rest = match arg.split_once("://") {
        Some((_, rest)) => rest,
        None if arg.contains('.') || arg.contains(':') || arg == "localhost" => arg,
        None => return None,
    };
    let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, r)| r);
    let host = if let Some(stripped) = authority.strip_prefix('[') {
        stripped.split(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    (!host.is_empty() && !host.starts_with('-')).then(|| host.to_ascii_lowercase())
}

fn is_local_host(host: &str) -> bool {
    super::is_loopback_host(host)
}

impl<'a> Analyzer<'a> {
    fn text(&self, node: Node) -> &'a str {
        node.utf8_text(self.src.as_bytes()).unwrap_or_default()
    }

    fn add(&mut self, verdict: Verdict, category: Category, rule: &'static str, reason: impl Into<String>) {
        self.findings.push(Finding::new(verdict, category, rule, reason));
    }

    fn walk(&mut self, node: Node) {
        match node.kind() {
            "command" => self.command(node),
            "file_redirect" => self.file_redirect(node),
            "redirected_statement" => self.redirected_statement(node),
            "pipeline" => self.pipeline(node),
            "function_definition" => self.function(node),
            "while_statement" | "for_statement" | "c_style_for_statement" => self.loop_statement(node),
            _ => {}
        }
        let mut cursor = node.walk();
        let children: Vec<Node> = node.children(&mut cursor).collect();
        for child in children {
            self.walk(child);
        }
    }

    /// The unquoted text of a word node.
    fn word(&self, node: Node) -> Word {
        match node.kind() {
            "raw_string" => {
                let t = self.text(node);
                Word { text: t.trim_start_matches('\'').trim_end_matches('\'').to_string(), dynamic: false }
            }
            "ansi_c_string" => {
                let t = self.text(node);
                Word { text: t.trim_start_matches("$'").trim_end_matches('\'').to_string(), dynamic: false }
            }
            "string" => {
                let mut text = String::new();
                let mut dynamic = false;
                let mut cursor = node.walk();
                for child in node.children(&mut cursor) {
                    match child.kind() {
                        "\"" => {}
                        "string_content" => text.push_str(&unescape(self.text(child))),
                        _ => {
                            let w = self.word(child);
                            dynamic |= w.dynamic;
                            text.push_str(&w.text);
                        }
                    }
                }
                Word { text, dynamic }
            }
            "concatenation" => {
                let mut text = String::new();
                let mut dynamic = false;
                let mut cursor = node.walk();
                for child in node.children(&mut cursor) {
                    let w = self.word(child);
                    dynamic |= w.dynamic;
                    text.push_str(&w.text);
                }
                Word { text, dynamic }
            }
            "simple_expansion" | "expansion" => {
                let raw = self.text(node);
                let name = raw.trim_start_matches('$').trim_start_matches('{').trim_end_matches('}');
                if name == "HOME" {
                    return Word { text: "$HOME".into(), dynamic: false };
                }
                Word { text: raw.to_string(), dynamic: true }
            }
            "command_substitution" | "process_substitution" | "arithmetic_expansion" => {
                Word { text: self.text(node).to_string(), dynamic: true }
            }
            _ => Word { text: unescape(self.text(node)), dynamic: false },
        }
    }

    /// The words of a `command` node: name first, then arguments (redirections excluded).
    fn argv(&self, node: Node) -> Vec<Word> {
        let mut words = Vec::new();
        if let Some(name) = node.child_by_field_name("name") {
            let inner = name.named_child(0).unwrap_or(name);
            words.push(self.word(inner));
        }
        let mut cursor = node.walk();
        for arg in node.children_by_field_name("argument", &mut cursor) {
            words.push(self.word(arg));
        }
        words
    }

    fn command(&mut self, node: Node) {
        let words = self.argv(node);
        if words.is_empty() {
            return;
        }
        let fetch_substitution = subtree_runs(node, self.src, FETCHERS);
        let mut argv: Vec<String> = words.iter().map(|w| w.text.clone()).collect();
        argv[0] = basename(&argv[0]).to_string();
        let before = self.findings.len();
        let argv = self.unwrap(argv);
        if argv.is_empty() {
            return;
        }
        self.classify(&argv, fetch_substitution);
        self.apply_user_rule(&argv, before);
    }

    /// A user rule decides the command it matches: it may tighten anything and loosen the
    /// built-in `ask` to `allow`, but never a built-in `deny`.
    fn apply_user_rule(&mut self, argv: &[String], since: usize) {
        let Some(rule) = self.policy.user_rule(argv) else { return };
        let reason = rule.reason.clone().unwrap_or_else(|| {
            format!("`{}` is set to {} by the user's configuration", rule.prefix.join(" "), rule.decision.as_str())
        });
        if rule.decision == Verdict::Allow {
            let kept: Vec<Finding> = self.findings.drain(since..).filter(|f| f.verdict == Verdict::Deny).collect();
            self.findings.extend(kept);
        } else {
            self.add(rule.decision, Category::UserRule, "user-rule", reason);
        }
    }

    /// Strips wrappers (`sudo`, `env`, `nohup`, `timeout`, `xargs`, ...) and returns the command
    /// they run.
    fn unwrap(&mut self, mut argv: Vec<String>) -> Vec<String> {
        loop {
            let Some(first) = argv.first().map(|a| basename(a).to_string()) else { return argv };
            let skip = match first.as_str() {
                "sudo" | "doas" | "pkexec" | "su" | "runuser" | "sg" => {
                    self.add(
                        Verdict::Deny,
                        Category::Privilege,
                        "privilege-escalation",
                        format!("`{first}` runs a command as another user"),
                    );
                    if first == "su" || first == "runuser" {
                        // `su -c CMD`: screen the command too.
                        if let Some(i) = argv.iter().position(|a| a == "-c")
                            && let Some(cmd) = argv.get(i + 1).cloned()
                        {
                            self.nested_shell(&cmd);
                        }
                        return Vec::new();
                    }
                    1 + argv[1..].iter().take_while(|a| is_flag(a)).count()
                }
                "env" => {
                    1 + argv[1..].iter().take_while(|a| is_flag(a) || (a.contains('=') && !a.starts_with('='))).count()
                }
                "nohup" | "exec" | "command" | "builtin" | "time" | "nice" | "ionice" | "setsid" | "stdbuf"
                | "chronic" | "unbuffer" | "caffeinate" | "taskset" | "xargs" | "parallel" | "watch" | "flock" => {
                    let mut i = 1;
                    while i < argv.len() && is_flag(&argv[i]) {
                        // Flags with a separate value.
                        if matches!(argv[i].as_str(), "-n" | "-c" | "-I" | "-P" | "-L" | "-d" | "-E" | "-s") {
                            i += 1;
                        }
                        i += 1;
                    }
                    if first == "taskset" || first == "flock" {
                        i += 1;
                    }
                    i
                }
                "timeout" => {
                    let flags = argv[1..].iter().take_while(|a| is_flag(a)).count();
                    2 + flags
                }
                _ => return argv,
            };
            if skip >= argv.len() {
                // A wrapper alone (`env`, `time`): judge it as itself.
                return argv;
            }
            argv.drain(..skip);
            argv[0] = basename(&argv[0]).to_string();
        }
    }

    fn nested_shell(&mut self, command: &str) {
        let findings = analyze(self.policy, command, self.depth + 1);
        self.findings.extend(findings);
    }

    fn nested_python(&mut self, code: &str) {
        let findings = super::python::analyze(self.policy, code, self.depth + 1);
        self.findings.extend(findings);
    }

    /// Judges writing (or deleting, when `delete`) the path `word`.
    fn write_target(&mut self, word: &str, what: &str, delete: bool) {
        let place = self.policy.place(word, &self.cwd);
        self.judge_write(place, word, what, delete);
    }

    fn judge_write(&mut self, place: Place, word: &str, what: &str, delete: bool) {
        let verb = if delete { "delete" } else { "write" };
        match place {
            Place::Workspace | Place::Scratch | Place::Unknown => {}
            Place::WorkspaceAncestor => self.add(
                Verdict::Deny,
                Category::Destructive,
                "workspace-ancestor",
                format!("`{what}` would {verb} `{word}`, which is the workspace or contains it"),
            ),
            Place::System | Place::Home => self.add(
                Verdict::Deny,
                Category::Destructive,
                "system-path",
                format!("`{what}` would {verb} `{word}`, a system location or the home directory"),
            ),
            Place::Persistence if !delete => self.add(
                Verdict::Deny,
                Category::Persistence,
                "persistence-file",
                format!("`{what}` would modify `{word}`, which runs code at login, on a schedule or on connection"),
            ),
            Place::Persistence => self.add(
                Verdict::Deny,
                Category::Destructive,
                "dotfile",
                format!("`{what}` would delete `{word}`, a start-up file of the user"),
            ),
            Place::Credential => self.add(
                Verdict::Deny,
                Category::Credentials,
                "credential-path",
                format!("`{what}` touches `{word}`, a credential store"),
            ),
            Place::RigorConfig => self.add(
                Verdict::Deny,
                Category::SandboxEscape,
                "sandbox-config",
                format!("`{what}` would change `{word}`, which configures rigor, its sandbox or the kernel"),
            ),
            Place::Device => self.add(
                Verdict::Deny,
                Category::Device,
                "device-write",
                format!("`{what}` would write the device `{word}`"),
            ),
            Place::Outside => self.add(
                Verdict::Ask,
                Category::Destructive,
                "outside-workspace",
                format!("`{what}` would {verb} `{word}`, outside the workspace"),
            ),
        }
    }

    fn classify(&mut self, argv: &[String], fetch_substitution: bool) {
        let name = argv[0].as_str();
        let args = &argv[1..];
        let operands: Vec<&str> = operands(args);

        // Any mention of a credential store, whatever the program.
        for arg in args {
            let candidate = arg.trim_start_matches('@').trim_start_matches("if=").trim_start_matches("--file=");
            if (candidate.contains('/') || candidate.starts_with('~') || candidate.starts_with('.'))
                && self.policy.is_credential(candidate, &self.cwd)
            {
                self.add(
                    Verdict::Deny,
                    Category::Credentials,
                    "credential-path",
                    format!("`{name}` would access `{arg}`, a credential store"),
                );
            }
        }
        if self.downloaded.iter().any(|d| self.policy.expand(name, &self.cwd).as_deref() == Some(d.as_path())) {
            self.add(
                Verdict::Deny,
                Category::DownloadExecute,
                "run-downloaded-file",
                format!("`{name}` was just downloaded and would be executed"),
            );
        }

        match name {
            "cd" | "pushd" => {
                let target = operands.first().copied().unwrap_or("~");
                if let Some(dir) = self.policy.expand(target, &self.cwd) {
                    self.cwd = dir;
                }
            }
            "rm" | "rmdir" | "unlink" | "shred" | "srm" | "wipe" => {
                if args.iter().any(|a| a == "--no-preserve-root") {
                    self.add(
                        Verdict::Deny,
                        Category::Destructive,
                        "no-preserve-root",
                        "`--no-preserve-root` disables the protection of `/`",
                    );
                }
                for target in &operands {
                    self.write_target(target, name, true);
                }
            }
            "find" => {
                let deletes = args.iter().any(|a| a == "-delete")
                    || args.windows(2).any(|w| {
                        matches!(w[0].as_str(), "-exec" | "-execdir" | "-ok")
                            && matches!(basename(&w[1]), "rm" | "shred" | "unlink" | "mv")
                    });
                if deletes {
                    let roots: Vec<&String> =
                        args.iter().take_while(|a| !a.starts_with('-') && *a != "(" && *a != "!").collect();
                    if roots.is_empty() {
                        let cwd = self.cwd.display().to_string();
                        self.write_target(&cwd, "find -delete", true);
                    }
                    for root in roots {
                        self.write_target(root, "find -delete", true);
                    }
                }
                if let Some(i) = args.iter().position(|a| a == "-exec" || a == "-execdir") {
                    let inner: Vec<String> =
                        args[i + 1..].iter().take_while(|a| *a != ";" && *a != "+" && *a != "\\;").cloned().collect();
                    if !inner.is_empty() && inner[0] != "rm" {
                        let inner = self.unwrap(inner);
                        if !inner.is_empty() {
                            self.classify(&inner, false);
                        }
                    }
                }
            }
            "mv" => {
                for target in &operands {
                    self.write_target(target, name, true);
                }
            }
            "cp" | "install" | "rsync" | "ln" => self.copy_like(name, args, &operands),
            "tee" | "touch" | "mkdir" | "truncate" | "mkfifo" | "mknod" => {
                for target in &operands {
                    if name == "truncate" && target.chars().all(|c| c.is_ascii_digit() || "KMGkmg+-<>".contains(c)) {
                        continue;
                    }
                    self.write_target(target, name, false);
                }
            }
            "sed" | "perl" if args.iter().any(|a| a.starts_with("-i") || a == "--in-place" || a.starts_with("-pi")) => {
                let explicit_script = args.iter().any(|a| a == "-e" || a == "-f");
                let files = if explicit_script { &operands[..] } else { operands.get(1..).unwrap_or_default() };
                for target in files {
                    self.write_target(target, name, false);
                }
            }
            "chmod" => self.chmod(args, &operands),
            "chown" | "chgrp" | "chattr" => {
                let owner = operands.first().copied().unwrap_or_default();
                for target in operands.iter().skip(1) {
                    self.write_target(target, name, false);
                }
                if name != "chattr" && (owner.starts_with("root") || owner.starts_with("0:") || owner == "0") {
                    self.add(
                        Verdict::Ask,
                        Category::Privilege,
                        "chown-root",
                        format!("`{name} {owner}` gives files to the superuser"),
                    );
                }
            }
            "dd" => {
                for arg in args {
                    if let Some(out) = arg.strip_prefix("of=") {
                        self.write_target(out, "dd", false);
                    }
                }
            }
            "curl" | "wget" | "http" | "https" | "xh" | "aria2c" | "fetch" => self.http_client(name, args),
            "nc" | "ncat" | "netcat" | "socat" | "telnet" | "openssl" | "ftp" | "tftp" => {
                let listening = args.iter().any(|a| a == "-l" || a == "-lp" || a == "--listen" || a.starts_with("-l"));
                let remote =
                    args.iter().filter_map(|a| host_of(a).or_else(|| bare_host(a))).find(|h| !is_local_host(h));
                if name == "openssl" && !args.iter().any(|a| a == "s_client") {
                    return;
                }
                if let Some(host) = remote.filter(|_| !listening) {
                    self.add(
                        Verdict::Ask,
                        Category::Exfiltration,
                        "raw-connection",
                        format!("`{name}` opens a raw connection to {host}, which can carry any data out"),
                    );
                }
            }
            "ssh" | "scp" | "sftp" => {
                let remote = operands.iter().find_map(|a| {
                    if name == "ssh" {
                        host_of(a).or_else(|| bare_host(a))
                    } else {
                        a.split_once(':').map(|(h, _)| h.to_string())
                    }
                });
                match remote {
                    Some(host) if is_local_host(host.rsplit('@').next().unwrap_or(&host)) => {}
                    Some(host) => self.add(
                        Verdict::Ask,
                        Category::Exfiltration,
                        "remote-copy",
                        format!("`{name}` connects to {host}, which can carry data out"),
                    ),
                    None if name == "ssh" && !operands.is_empty() => self.add(
                        Verdict::Ask,
                        Category::Exfiltration,
                        "remote-copy",
                        format!("`{name}` connects to another host"),
                    ),
                    None => {}
                }
            }
            "git" => self.git(args),
            "crontab" if !(args.len() == 1 && args[0] == "-l") => {
                self.add(Verdict::Deny, Category::Persistence, "crontab", "`crontab` schedules commands to run later")
            }
            "at" | "batch" => self.add(
                Verdict::Deny,
                Category::Persistence,
                "at-job",
                format!("`{name}` schedules commands to run later"),
            ),
            "systemctl" | "service" | "update-rc.d" | "chkconfig" | "launchctl" | "loginctl" => {
                self.services(name, args)
            }
            "reboot" | "shutdown" | "halt" | "poweroff" | "telinit" | "init" | "killall5" => self.add(
                Verdict::Deny,
                Category::ProcessKill,
                "stop-machine",
                format!("`{name}` stops or restarts the machine or every process"),
            ),
            "kill" => self.kill(args),
            "killall" | "pkill" | "skill" | "slay" => self.add(
                Verdict::Ask,
                Category::ProcessKill,
                "kill-by-name",
                format!("`{name}` signals processes by name, which may include processes rigor did not start"),
            ),
            "unshare" | "nsenter" | "bwrap" | "firejail" | "chroot" | "capsh" | "setenforce" | "aa-teardown"
            | "aa-disable" | "aa-complain" | "apparmor_parser" | "iptables" | "ip6tables" | "nft" | "ufw" | "prctl"
            | "insmod" | "rmmod" | "modprobe" | "kexec" => self.add(
                Verdict::Deny,
                Category::SandboxEscape,
                "sandbox-tampering",
                format!("`{name}` changes namespaces, security modules, firewall or the kernel"),
            ),
            "sysctl" if args.iter().any(|a| a == "-w" || a.contains('=') || a == "-p" || a == "--load") => {
                self.add(Verdict::Deny, Category::SandboxEscape, "sysctl-write", "`sysctl` changes kernel settings")
            }
            "docker" | "podman" | "nerdctl" | "lxc" | "ctr" | "kubectl" => {
                let privileged = args.iter().any(|a| {
                    a == "--privileged"
                        || a.starts_with("--pid=host")
                        || a.starts_with("--net=host")
                        || a.starts_with("--network=host")
                        || a.starts_with("/:")
                        || a.starts_with("--cap-add")
                }) || args.windows(2).any(|w| w[0] == "-v" && w[1].starts_with("/:"));
                if privileged {
                    self.add(
                        Verdict::Deny,
                        Category::SandboxEscape,
                        "privileged-container",
                        format!("`{name}` with host access escapes the sandbox"),
                    );
                } else if args.first().is_some_and(|a| {
                    !matches!(a.as_str(), "ps" | "images" | "version" | "--version" | "info" | "logs" | "inspect")
                }) {
                    self.add(
                        Verdict::Ask,
                        Category::SandboxEscape,
                        "container",
                        format!("`{name}` runs containers outside rigor's sandbox"),
                    );
                }
            }
            "setcap" | "usermod" | "useradd" | "userdel" | "groupadd" | "groupmod" | "groupdel" | "passwd"
            | "chpasswd" | "visudo" | "adduser" | "deluser" | "newgrp" | "gpasswd" | "chsh" | "chage" | "vipw" => self
                .add(
                    Verdict::Deny,
                    Category::Privilege,
                    "account-change",
                    format!("`{name}` changes accounts, passwords or capabilities"),
                ),
            "mount" | "umount" | "swapon" | "swapoff" | "fdisk" | "sfdisk" | "gdisk" | "cfdisk" | "sgdisk"
            | "parted" | "wipefs" | "hdparm" | "blkdiscard" | "losetup" | "cryptsetup" | "mkswap" | "mke2fs"
            | "tune2fs" | "debugfs" | "e2fsck" | "mdadm" | "dmsetup" | "zpool" | "lvremove" | "vgremove"
            | "pvremove" | "badblocks" => self.add(
                Verdict::Deny,
                Category::Device,
                "disk-tool",
                format!("`{name}` operates on disks, partitions or file systems"),
            ),
            n if n.starts_with("mkfs") || n.starts_with("fsck.") => self.add(
                Verdict::Deny,
                Category::Device,
                "disk-tool",
                format!("`{name}` creates or repairs file systems on devices"),
            ),
            "eval" => {
                let code = args.join(" ");
                if fetch_substitution {
                    self.fetch_executed(name);
                }
                self.nested_shell(&code);
            }
            "source" | "." => {
                if fetch_substitution {
                    self.fetch_executed(name);
                }
                if let Some(script) = operands.first() {
                    self.run_script(name, script);
                }
            }
            n if SHELLS.contains(&n) => {
                if let Some(i) = args
                    .iter()
                    .position(|a| a == "-c" || (a.starts_with('-') && !a.starts_with("--") && a.ends_with('c')))
                {
                    if fetch_substitution {
                        self.fetch_executed(name);
                    }
                    if let Some(code) = args.get(i + 1) {
                        self.nested_shell(code);
                    }
                } else if let Some(script) = operands.first() {
                    if fetch_substitution {
                        self.fetch_executed(name);
                    }
                    self.run_script(name, script);
                }
            }
            n if is_python(n) => {
                if let Some(i) = args.iter().position(|a| a == "-c") {
                    if fetch_substitution {
                        self.fetch_executed(name);
                    }
                    if let Some(code) = args.get(i + 1) {
                        self.nested_python(code);
                    }
                } else if let Some(script) = operands.first() {
                    self.run_script(name, script);
                }
            }
            "perl" | "ruby" | "node" | "php" | "lua" => {
                if let Some(i) = args.iter().position(|a| matches!(a.as_str(), "-e" | "-E" | "-r" | "--eval")) {
                    if fetch_substitution {
                        self.fetch_executed(name);
                    }
                    if let Some(code) = args.get(i + 1) {
                        self.foreign_code(name, code);
                    }
                }
            }
            _ => {}
        }
    }

    fn fetch_executed(&mut self, name: &str) {
        self.add(
            Verdict::Deny,
            Category::DownloadExecute,
            "fetch-and-run",
            format!("`{name}` would run code fetched from the network"),
        );
    }

    fn run_script(&mut self, name: &str, script: &str) {
        if let Some(path) = self.policy.expand(script, &self.cwd)
            && self.downloaded.contains(&path)
        {
            self.add(
                Verdict::Deny,
                Category::DownloadExecute,
                "run-downloaded-file",
                format!("`{name} {script}` runs a file that was just downloaded"),
            );
        }
    }

    /// Code for perl/ruby/node/php: only the obvious (fork loops, credential paths, shell-outs).
    fn foreign_code(&mut self, name: &str, code: &str) {
        let lower = code.to_ascii_lowercase();
        if lower.contains("fork") && (lower.contains("while") || lower.contains("loop") || lower.contains("for")) {
            self.add(Verdict::Deny, Category::ForkBomb, "fork-loop", format!("`{name}` code forks in a loop"));
        }
        for token in code.split(|c: char| c.is_whitespace() || "'\"(),;`".contains(c)) {
            if (token.contains('/') || token.starts_with('~')) && self.policy.is_credential(token, &self.cwd) {
                self.add(
                    Verdict::Deny,
                    Category::Credentials,
                    "credential-path",
                    format!("`{name}` code accesses `{token}`, a credential store"),
                );
            }
        }
        for shell_out in ["system(", "exec(", "`"] {
            if let Some(start) = code.find(shell_out) {
                let inner: String = code[start + shell_out.len()..]
                    .trim_start_matches(['"', '\''])
                    .chars()
                    .take_while(|c| !matches!(c, '"' | '\'' | '`' | ')'))
                    .collect();
                if !inner.trim().is_empty() {
                    self.nested_shell(&inner);
                }
            }
        }
    }

    fn copy_like(&mut self, name: &str, args: &[String], operands: &[&str]) {
        if name == "rsync" && operands.iter().any(|a| a.contains(':') && !a.starts_with('/')) {
            self.add(
                Verdict::Ask,
                Category::Exfiltration,
                "remote-copy",
                "`rsync` to a remote host can carry data out",
            );
            return;
        }
        let symbolic = args
            .iter()
            .any(|a| a == "-s" || a == "--symbolic" || (a.starts_with('-') && !a.starts_with("--") && a.contains('s')));
        if name == "ln"
            && symbolic
            && let Some(target) = operands.first()
        {
            // Links to system programs (`ln -s /usr/bin/python3 python`) are ordinary; links to
            // `/etc`, `/`, credentials, dotfiles or elsewhere outside the workspace are not.
            let place = self.policy.place(target, &self.cwd);
            let system_program = place == Place::System && !target.starts_with("/etc") && *target != "/";
            let risky = matches!(
                place,
                Place::Credential | Place::Persistence | Place::RigorConfig | Place::Home | Place::WorkspaceAncestor
            ) || (place == Place::Outside || place == Place::System) && operands.len() >= 2;
            if risky && !system_program {
                let verdict =
                    if matches!(place, Place::Credential | Place::RigorConfig) { Verdict::Deny } else { Verdict::Ask };
                let category = if place == Place::Credential { Category::Credentials } else { Category::Destructive };
                self.add(
                    verdict,
                    category,
                    "symlink-outside",
                    format!("`ln -s {target}` plants a link to a location outside the workspace"),
                );
            }
        }
        let target_dir = args.windows(2).find(|w| w[0] == "-t" || w[0] == "--target-directory").map(|w| w[1].clone());
        match target_dir {
            Some(dir) => self.write_target(&dir, name, false),
            None => {
                if operands.len() >= 2
                    && let Some(dest) = operands.last()
                {
                    self.write_target(dest, name, false);
                }
            }
        }
    }

    fn chmod(&mut self, args: &[String], operands: &[&str]) {
        let Some(mode) = operands.first() else { return };
        let setuid = mode.contains('s') && (mode.contains('+') || mode.contains('='))
            || (mode.len() == 4
                && mode.chars().all(|c| c.is_ascii_digit())
                && matches!(mode.as_bytes()[0], b'2' | b'4' | b'6' | b'7'));
        if setuid {
            self.add(
                Verdict::Deny,
                Category::Privilege,
                "setuid",
                format!("`chmod {mode}` sets the setuid/setgid bit"),
            );
        }
        let _ = args;
        for target in operands.iter().skip(1) {
            self.write_target(target, "chmod", false);
        }
    }

    fn http_client(&mut self, name: &str, args: &[String]) {
        const CURL_VALUE_FLAGS: &[&str] = &[
            "-o",
            "--output",
            "-d",
            "--data",
            "--data-raw",
            "--data-binary",
            "--data-urlencode",
            "--data-ascii",
            "-F",
            "--form",
            "--form-string",
            "-T",
            "--upload-file",
            "-H",
            "--header",
            "-X",
            "--request",
            "-u",
            "--user",
            "-A",
            "--user-agent",
            "-e",
            "--referer",
            "-b",
            "--cookie",
            "-c",
            "--cookie-jar",
            "-K",
            "--config",
            "-x",
            "--proxy",
            "--json",
            "-w",
            "--write-out",
            "-m",
            "--max-time",
            "--connect-timeout",
            "-r",
            "--range",
            "--retry",
            "-O",
            "--output-document",
            "--post-data",
            "--post-file",
            "--body-data",
            "--body-file",
            "--method",
            "-P",
            "--directory-prefix",
            "--header",
            "-U",
            "--user-agent",
        ];
        const UPLOAD_FLAGS: &[&str] = &[
            "-d",
            "--data",
            "--data-raw",
            "--data-binary",
            "--data-urlencode",
            "--data-ascii",
            "-F",
            "--form",
            "--form-string",
            "-T",
            "--upload-file",
            "--json",
            "--post-data",
            "--post-file",
            "--body-data",
            "--body-file",
        ];
        let mut upload = false;
        let mut hosts = Vec::new();
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
                _ => (arg.as_str(), None),
            };
            if flag.starts_with('-') && flag.len() > 1 {
                let value = if CURL_VALUE_FLAGS.contains(&flag)
                    && (name != "wget" || flag != "-O" || inline.is_some() || i + 1 < args.len())
                {
                    if name == "curl" && flag == "-O" {
                        None
                    } else if inline.is_some() {
                        inline
                    } else {
                        i += 1;
                        args.get(i).cloned()
                    }
                } else {
                    None
                };
                if UPLOAD_FLAGS.contains(&flag) {
                    upload = true;
                }
                if matches!(flag, "-X" | "--request" | "--method")
                    && value
                        .as_deref()
                        .is_some_and(|m| matches!(m.to_ascii_uppercase().as_str(), "POST" | "PUT" | "PATCH"))
                {
                    upload = true;
                }
                if matches!(flag, "-o" | "--output" | "-O" | "--output-document")
                    && let Some(file) = value
                    && file != "-"
                    && let Some(path) = self.policy.expand(&file, &self.cwd)
                {
                    self.write_target(&file, name, false);
                    self.downloaded.push(path);
                }
            } else if let Some(host) = host_of(arg).or_else(|| bare_host(arg)) {
                hosts.push(host);
                if (name == "wget" || args.iter().any(|a| a == "-O" || a == "--remote-name"))
                    && let Some(file) = arg.rsplit('/').next().filter(|f| !f.is_empty() && !f.contains(':'))
                    && let Some(path) = self.policy.expand(file, &self.cwd)
                {
                    self.downloaded.push(path);
                }
            }
            i += 1;
        }
        if upload && let Some(host) = hosts.iter().find(|h| !is_local_host(h)) {
            self.add(Verdict::Ask, Category::Exfiltration, "upload", format!("`{name}` sends data to {host}"));
        }
    }

    fn git(&mut self, args: &[String]) {
        let mut i = 0;
        while i < args.len() && args[i].starts_with('-') {
            if args[i] == "-C" || args[i] == "-c" {
                i += 1;
            }
            i += 1;
        }
        let Some(sub) = args.get(i) else { return };
        let rest = &args[i + 1..];
        match sub.as_str() {
            "push" | "send-email" | "request-pull" => self.add(
                Verdict::Ask,
                Category::Exfiltration,
                "git-push",
                format!("`git {sub}` sends the repository's contents to a remote"),
            ),
            "config" if rest.iter().any(|a| a == "--global" || a == "--system") => self.add(
                Verdict::Ask,
                Category::Persistence,
                "git-global-config",
                "`git config --global` changes the user's git configuration outside the workspace",
            ),
            "credential" | "credential-store" | "credential-cache" => self.add(
                Verdict::Deny,
                Category::Credentials,
                "git-credential",
                "`git credential` reads stored credentials",
            ),
            _ => {}
        }
    }

    fn services(&mut self, name: &str, args: &[String]) {
        let sub = args.iter().find(|a| !a.starts_with('-')).map(String::as_str).unwrap_or_default();
        let harmless = matches!(
            sub,
            "status"
                | "show"
                | "cat"
                | "is-active"
                | "is-enabled"
                | "is-failed"
                | "list-units"
                | "list-unit-files"
                | "list-timers"
                | "help"
                | ""
        );
        if harmless && name != "update-rc.d" && name != "chkconfig" {
            return;
        }
        if matches!(sub, "poweroff" | "reboot" | "halt" | "kexec" | "suspend" | "hibernate" | "kill" | "stop") {
            self.add(
                Verdict::Deny,
                Category::ProcessKill,
                "service-stop",
                format!("`{name} {sub}` stops services or the machine"),
            );
        } else {
            self.add(
                Verdict::Deny,
                Category::Persistence,
                "service-install",
                format!("`{name} {sub}` installs, enables or starts services"),
            );
        }
    }

    fn kill(&mut self, args: &[String]) {
        let mut targets: Vec<&str> = Vec::new();
        let mut i = 0;
        let mut signal_seen = false;
        while i < args.len() {
            let a = args[i].as_str();
            if a == "-s" || a == "-n" {
                i += 2;
                signal_seen = true;
                continue;
            }
            if a == "-l" || a == "-L" {
                return;
            }
            if a.starts_with('-') && !signal_seen && a != "-1"
                || (a.starts_with('-') && !signal_seen && args.len() > i + 1)
            {
                signal_seen = true;
                i += 1;
                continue;
            }
            targets.push(a);
            i += 1;
        }
        if let Some(t) = targets.iter().find(|t| matches!(**t, "-1" | "1")) {
            self.add(
                Verdict::Deny,
                Category::ProcessKill,
                "kill-all",
                format!("`kill {t}` signals every process (or init), not just the command's own"),
            );
        }
    }

    fn file_redirect(&mut self, node: Node) {
        let mut operator = String::new();
        let mut cursor = node.walk();
        for child in node.children(&mut cursor) {
            if !child.is_named() {
                operator = self.text(child).to_string();
            }
        }
        let Some(dest) = node.child_by_field_name("destination") else { return };
        let word = self.word(dest);
        let target = word.text.as_str();
        if target.starts_with("/dev/tcp/") || target.starts_with("/dev/udp/") {
            let host = target.split('/').nth(3).unwrap_or_default().to_string();
            if !is_local_host(&host) {
                self.add(
                    Verdict::Ask,
                    Category::Exfiltration,
                    "dev-tcp",
                    format!("the redirection to `{target}` opens a connection to {host}"),
                );
            }
            return;
        }
        if (operator == ">&" || operator == "<&") && target.chars().all(|c| c.is_ascii_digit() || c == '-') {
            return;
        }
        if operator.contains('>') {
            self.write_target(target, &format!("{operator} {target}"), false);
        } else if self.policy.is_credential(target, &self.cwd) {
            self.add(
                Verdict::Deny,
                Category::Credentials,
                "credential-path",
                format!("the redirection reads `{target}`, a credential store"),
            );
        }
    }

    fn redirected_statement(&mut self, node: Node) {
        let Some(body) = node.child_by_field_name("body") else { return };
        let Some(command) = first_command(body) else { return };
        let words = self.argv(command);
        let argv = self.unwrap(
            words
                .iter()
                .map(|w| basename(&w.text).to_string())
                .take(1)
                .chain(words.iter().skip(1).map(|w| w.text.clone()))
                .collect(),
        );
        let Some(name) = argv.first().cloned() else { return };
        let feeds_code = SHELLS.contains(&name.as_str()) && !argv.iter().any(|a| a == "-c")
            || is_python(&name) && !argv.iter().any(|a| a == "-c") && argv.get(1).is_none_or(|a| a == "-");
        if !feeds_code {
            return;
        }
        let mut cursor = node.walk();
        for redirect in node.children_by_field_name("redirect", &mut cursor) {
            let text = match redirect.kind() {
                "heredoc_redirect" => {
                    let mut c = redirect.walk();
                    redirect
                        .children(&mut c)
                        .filter(|n| n.kind() == "heredoc_body")
                        .map(|n| self.text(n).to_string())
                        .collect::<Vec<_>>()
                        .join("\n")
                }
                "herestring_redirect" => redirect.named_child(0).map(|n| self.word(n).text).unwrap_or_default(),
                _ => continue,
            };
            if is_python(&name) {
                self.nested_python(&text);
            } else {
                self.nested_shell(&text);
            }
        }
    }

    fn pipeline(&mut self, node: Node) {
        let mut cursor = node.walk();
        let stages: Vec<Node> = node.named_children(&mut cursor).collect();
        let mut fetched = false;
        let mut secret = false;
        let mut data = false;
        for stage in stages {
            let Some(command) = first_command(stage) else { continue };
            let words = self.argv(command);
            let raw: Vec<String> = words.iter().map(|w| w.text.clone()).collect();
            if raw.is_empty() {
                continue;
            }
            let mut argv = raw.clone();
            argv[0] = basename(&argv[0]).to_string();
            let saved = self.findings.len();
            let argv = self.unwrap(argv);
            self.findings.truncate(saved);
            let Some(name) = argv.first().map(String::as_str) else { continue };
            let operands = operands(&argv[1..]);
            let interp_stdin = (SHELLS.contains(&name)
                && !argv.iter().any(|a| a == "-c")
                && (operands.is_empty() || operands[0] == "-" || argv.iter().any(|a| a == "-s")))
                || (INTERPRETERS.iter().any(|i| name.starts_with(i))
                    && !argv.iter().any(|a| a == "-c" || a == "-e")
                    && (operands.is_empty() || operands[0] == "-"));
            if fetched && interp_stdin {
                self.add(
                    Verdict::Deny,
                    Category::DownloadExecute,
                    "pipe-to-shell",
                    format!("output fetched from the network is piped into `{name}`"),
                );
            }
            if NET_SINKS.contains(&name) && (secret || data) {
                let host = argv[1..].iter().filter_map(|a| host_of(a).or_else(|| bare_host(a))).next();
                let local = host.as_deref().is_some_and(is_local_host);
                if secret {
                    self.add(
                        Verdict::Deny,
                        Category::Exfiltration,
                        "secrets-to-network",
                        format!("the environment or a credential is piped into `{name}`"),
                    );
                } else if !local {
                    self.add(
                        Verdict::Ask,
                        Category::Exfiltration,
                        "pipe-to-network",
                        format!(
                            "data is piped into `{name}`, which sends it to {}",
                            host.unwrap_or_else(|| "another host".into())
                        ),
                    );
                }
            }
            let dumps_env =
                ENV_DUMPERS.contains(&name) && operands.is_empty() || argv.iter().any(|a| a.contains("environ"));
            let reads_secret =
                argv[1..].iter().any(|a| self.policy.is_credential(a.trim_start_matches('@'), &self.cwd));
            secret |= dumps_env || reads_secret;
            fetched |= FETCHERS.contains(&name);
            data = true;
        }
    }

    fn function(&mut self, node: Node) {
        let Some(name) = node.child_by_field_name("name").map(|n| self.text(n).to_string()) else { return };
        let Some(body) = node.child_by_field_name("body") else { return };
        let body_text = self.text(body);
        let calls_itself = count_commands_named(body, self.src, &name) > 0;
        if calls_itself && has_background(body_text) {
            self.add(
                Verdict::Deny,
                Category::ForkBomb,
                "fork-bomb",
                format!("the function `{name}` starts copies of itself in the background without bound"),
            );
        }
    }

    fn loop_statement(&mut self, node: Node) {
        let text = self.text(node);
        let infinite = node.kind() == "c_style_for_statement" && text.replace(' ', "").contains("(;;)")
            || node.child_by_field_name("condition").is_some_and(|c| {
                let t = self.text(c).trim().trim_end_matches(';').trim();
                matches!(t, "true" | ":" | "[ 1 ]" | "((1))" | "[[ 1 ]]")
            });
        if let Some(body) = node.child_by_field_name("body")
            && infinite
            && has_background(self.text(body))
        {
            self.add(
                Verdict::Deny,
                Category::ForkBomb,
                "background-loop",
                "an endless loop starts background processes without bound",
            );
        }
    }

    /// The classic `:(){ :|:& };:` even where the grammar does not parse it.
    fn textual_fork_bomb(&mut self) {
        let squeezed: String = self.src.chars().filter(|c| !c.is_whitespace()).collect();
        let mut search = 0;
        while let Some(pos) = squeezed[search..].find("(){") {
            let at = search + pos;
            let name: String = squeezed[..at]
                .chars()
                .rev()
                .take_while(|c| !matches!(c, ';' | '&' | '|' | '(' | ')' | '{' | '}'))
                .collect();
            let name: String = name.chars().rev().collect();
            let body = &squeezed[at + 3..];
            if !name.is_empty()
                && (body.starts_with(&format!("{name}|{name}&")) || body.starts_with(&format!("{name}&{name}&")))
            {
                if !self.findings.iter().any(|f| f.category == Category::ForkBomb) {
                    self.add(Verdict::Deny, Category::ForkBomb, "fork-bomb", format!("`{name}` is a fork bomb"));
                }
                return;
            }
            search = at + 3;
        }
    }
}

/// Arguments that are not flags (everything after `--` counts).
fn operands(args: &[String]) -> Vec<&str> {
    let mut out = Vec::new();
    let mut after_dashes = false;
    for a in args {
        if after_dashes {
            out.push(a.as_str());
        } else if a == "--" {
            after_dashes = true;
        } else if !is_flag(a) {
            out.push(a.as_str());
        }
    }
    out
}

/// `host` in `host port` forms (nc, telnet): a word with a dot or a known local name.
fn bare_host(arg: &str) -> Option<String> {
    if arg.starts_with('-') || arg.contains('/') || arg.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let looks_like_host = arg == "localhost"
        || (arg.contains('.') && arg.chars().all(|c| c.is_ascii_alphanumeric() || ".-_:".contains(c)));
    looks_like_host.then(|| arg.split(':').next().unwrap_or(arg).to_ascii_lowercase())
}

/// Whether `text` sends a command to the background (`cmd &`, not `&&`, `>&`, `&>`).
fn has_background(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| {
        b == b'&'
            && bytes.get(i + 1).is_none_or(|n| !matches!(n, b'&' | b'>'))
            && (i == 0 || !matches!(bytes[i - 1], b'&' | b'>' | b'<' | b'|'))
    })
}

/// The first `command` node at or below `node`.
fn first_command(node: Node) -> Option<Node> {
    if node.kind() == "command" {
        return Some(node);
    }
    let mut cursor = node.walk();
    let children: Vec<Node> = node.named_children(&mut cursor).collect();
    children.into_iter().find_map(first_command)
}

fn count_commands_named(node: Node, src: &str, name: &str) -> usize {
    let mut count = 0;
    if node.kind() == "command"
        && let Some(n) = node.child_by_field_name("name")
        && n.utf8_text(src.as_bytes()).is_ok_and(|t| t == name)
    {
        count += 1;
    }
    let mut cursor = node.walk();
    let children: Vec<Node> = node.children(&mut cursor).collect();
    count + children.into_iter().map(|c| count_commands_named(c, src, name)).sum::<usize>()
}

/// Whether a command substitution or process substitution in the words of `node` runs one of
/// `programs`.
fn subtree_runs(node: Node, src: &str, programs: &[&str]) -> bool {
    let mut cursor = node.walk();
    let children: Vec<Node> = node.children(&mut cursor).collect();
    children.into_iter().any(|child| match child.kind() {
        "command_substitution" | "process_substitution" => contains_program(child, src, programs),
        "string" | "concatenation" => subtree_runs(child, src, programs),
        _ => false,
    })
}

fn contains_program(node: Node, src: &str, programs: &[&str]) -> bool {
    if node.kind() == "command"
        && let Some(n) = node.child_by_field_name("name")
        && n.utf8_text(src.as_bytes()).is_ok_and(|t| programs.contains(&basename(t)))
    {
        return true;
    }
    let mut cursor = node.walk();
    let children: Vec<Node> = node.children(&mut cursor).collect();
    children.into_iter().any(|c| contains_program(c, src, programs))
}

/// Removes backslash escapes (`\"` → `"`, `\ ` → ` `).
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next()
                && next != '\n'
            {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_extracted() {
        assert_eq!(host_of("https://evil.example.com/x").as_deref(), Some("evil.example.com"));
        assert_eq!(host_of("http://127.0.0.1:8000/health").as_deref(), Some("127.0.0.1"));
        assert_eq!(host_of("user@host.org:/tmp").as_deref(), Some("host.org"));
        assert_eq!(host_of("http://evil.example.com/x@127.0.0.1/").as_deref(), Some("evil.example.com"));
        assert_eq!(host_of("http://127.0.0.1@evil.example.com/").as_deref(), Some("evil.example.com"));
        assert_eq!(host_of("http://[::1]:8000/x").as_deref(), Some("::1"));
        assert_eq!(host_of("http://127.0.0.1.example.invalid/").as_deref(), Some("127.0.0.1.example.invalid"));
        assert!(!is_local_host("127.0.0.1.example.invalid") && !is_local_host("127.evil.com"));
        assert!(!is_local_host("localhost.example.com") && !is_local_host("127.1"));
        for local in ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "::ffff:127.0.0.1", "localhost", "app.localhost"] {
            assert!(is_local_host(local), "{local}");
        }
        assert_eq!(bare_host("10.0.0.2").as_deref(), Some("10.0.0.2"));
        assert_eq!(bare_host("4444"), None);
        assert!(has_background("f | f &"));
        assert!(!has_background("a && b 2>&1"));
    }
}
