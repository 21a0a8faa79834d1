//! Python screening: parses code with tree-sitter-python and judges the calls that do what the
//! shell rules guard against: `os.remove`/`shutil.rmtree`/`Path.unlink` (deleting),
//! `open(..., "w")`/`shutil.copy`/`os.rename`/`Path.write_text` (writing), `os.system`/
//! `subprocess.*`/`os.exec*` (the command is screened by the shell rules), `socket` connections
//! and `requests`/`httpx`/`urllib` uploads (exfiltration), `exec`/`eval` of fetched code,
//! `os.fork` in an endless loop, `os.kill` of every process, `os.setuid`, and any string that
//! names a credential store.
//!
//! Only literal values are judged: paths built from unknown variables pass (the sandbox still
//! holds). Simple assignments of literals (`target = "/etc/passwd"`) are followed.

use std::cell::RefCell;
use std::collections::HashMap;

use tree_sitter::{Node, Parser};

use super::paths::Place;
use super::{Category, Finding, Policy, Verdict};

thread_local! {
    static PARSER: RefCell<Option<Parser>> = const { RefCell::new(None) };
}

fn parse(source: &str) -> Option<tree_sitter::Tree> {
    super::parse_with(&PARSER, &tree_sitter_python::LANGUAGE.into(), source)
}

/// Screens Python source code.
pub(crate) fn analyze(policy: &Policy, code: &str, depth: u32) -> Vec<Finding> {
    let Some(tree) = parse(code) else { return Vec::new() };
    let mut analyzer = Analyzer { policy, src: code, depth, findings: Vec::new(), names: HashMap::new() };
    analyzer.collect_assignments(tree.root_node());
    analyzer.walk(tree.root_node(), false);
    analyzer.findings
}

struct Analyzer<'a> {
    policy: &'a Policy,
    src: &'a str,
    depth: u32,
    findings: Vec<Finding>,
    /// Names bound to literal strings.
    names: HashMap<String, String>,
}

const NETWORK_UPLOADS: &[&str] = &[
    "requests.post",
    "requests.put",
    "requests.patch",
    "httpx.post",
    "httpx.put",
    "httpx.patch",
    "session.post",
    "s.post",
    "client.post",
];
const FETCH_CALLS: &[&str] =
    &["urlopen", "requests.get", "httpx.get", "urllib.request.urlopen", "urlretrieve", ".read"];

impl<'a> Analyzer<'a> {
    fn text(&self, node: Node) -> &'a str {
        node.utf8_text(self.src.as_bytes()).unwrap_or_default()
    }

    fn add(&mut self, verdict: Verdict, category: Category, rule: &'static str, reason: impl Into<String>) {
        self.findings.push(Finding::new(verdict, category, rule, reason));
    }

    fn collect_assignments(&mut self, node: Node) {
        if node.kind() == "assignment"
            && let (Some(left), Some(right)) = (node.child_by_field_name("left"), node.child_by_field_name("right"))
            && left.kind() == "identifier"
            && let Some(value) = self.literal(right)
        {
            self.names.insert(self.text(left).to_string(), value);
        }
        let mut cursor = node.walk();
        let children: Vec<Node> = node.children(&mut cursor).collect();
        for child in children {
            self.collect_assignments(child);
        }
    }

    /// The value of a string-valued expression when it is known statically.
    fn literal(&self, node: Node) -> Option<String> {
        match node.kind() {
            "string" => {
                let mut cursor = node.walk();
                let mut text = String::new();
                for child in node.children(&mut cursor) {
                    match child.kind() {
                        "string_start" if self.text(child).to_ascii_lowercase().contains('f') => return None,
                        "string_content" | "escape_sequence" => text.push_str(self.text(child)),
                        "interpolation" => return None,
                        _ => {}
                    }
                }
                Some(text)
            }
            "concatenated_string" => {
                let mut cursor = node.walk();
                let parts: Option<Vec<String>> = node.named_children(&mut cursor).map(|c| self.literal(c)).collect();
                parts.map(|p| p.concat())
            }
            "identifier" => self.names.get(self.text(node)).cloned(),
            "parenthesized_expression" => node.named_child(0).and_then(|c| self.literal(c)),
            "binary_operator" => {
                let op = node.child_by_field_name("operator").map(|o| self.text(o)).unwrap_or_default();
                let left = self.literal(node.child_by_field_name("left")?)?;
                let right = self.literal(node.child_by_field_name("right")?)?;
                match op {
                    "/" => Some(format!("{}/{}", left.trim_end_matches('/'), right)),
                    "+" => Some(format!("{left}{right}")),
                    _ => None,
                }
            }
            "call" => {
                let function = self.text(node.child_by_field_name("function")?);
                let args = node.child_by_field_name("arguments")?;
                let mut cursor = args.walk();
                let positional: Vec<Node> =
                    args.named_children(&mut cursor).filter(|a| a.kind() != "keyword_argument").collect();
                match function {
                    "Path.home" | "pathlib.Path.home" => Some("~".into()),
                    "os.path.expanduser" | "os.path.expandvars" | "os.path.abspath" | "os.path.realpath" | "str"
                    | "Path" | "pathlib.Path" | "os.fspath" | "PurePath" => {
                        positional.first().and_then(|a| self.literal(*a))
                    }
                    "os.path.join" => {
                        let parts: Option<Vec<String>> = positional.iter().map(|a| self.literal(*a)).collect();
                        parts.map(|p| {
                            p.into_iter().fold(String::new(), |acc, part| {
                                if acc.is_empty() || part.starts_with('/') {
                                    part
                                } else {
                                    format!("{}/{}", acc.trim_end_matches('/'), part)
                                }
                            })
                        })
                    }
                    "os.getenv" | "os.environ.get"
                        if positional.first().and_then(|a| self.literal(*a)).as_deref() == Some("HOME") =>
                    {
                        Some("~".into())
                    }
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn walk(&mut self, node: Node, in_endless_loop: bool) {
        let mut endless = in_endless_loop;
        match node.kind() {
            "call" => {
                self.call(node, in_endless_loop);
                self.credential_literal(node);
            }
            "string" | "binary_operator" => self.credential_literal(node),
            "while_statement" => {
                let condition = node.child_by_field_name("condition").map(|c| self.text(c).trim()).unwrap_or_default();
                if matches!(condition, "True" | "1" | "(True)" | "not False") {
                    endless = true;
                }
            }
            _ => {}
        }
        let mut cursor = node.walk();
        let children: Vec<Node> = node.children(&mut cursor).collect();
        for child in children {
            self.walk(child, endless);
        }
    }

    /// A path-valued expression that names a credential store.
    fn credential_literal(&mut self, node: Node) {
        if let Some(value) = self.literal(node)
            && (value.contains('/') || value.starts_with('~'))
            && value.len() < 4096
            && self.policy.is_credential(&value, self.policy.workspace())
            && !self.findings.iter().any(|f| f.category == Category::Credentials && f.reason.contains(&value))
        {
            self.add(
                Verdict::Deny,
                Category::Credentials,
                "credential-path",
                format!("the code names `{value}`, a credential store"),
            );
        }
    }

    fn positional<'t>(&self, call: Node<'t>) -> Vec<Node<'t>> {
        let Some(args) = call.child_by_field_name("arguments") else { return Vec::new() };
        let mut cursor = args.walk();
        args.named_children(&mut cursor).filter(|a| a.kind() != "keyword_argument").collect()
    }

    fn keyword<'t>(&self, call: Node<'t>, name: &str) -> Option<Node<'t>> {
        let args = call.child_by_field_name("arguments")?;
        let mut cursor = args.walk();
        let found = args.named_children(&mut cursor).find(|a| {
            a.kind() == "keyword_argument" && a.child_by_field_name("name").is_some_and(|n| self.text(n) == name)
        });
        found.and_then(|a| a.child_by_field_name("value"))
    }

    fn judge_path(&mut self, node: Option<Node>, what: &str, delete: bool) {
        let Some(node) = node else { return };
        let Some(path) = self.literal(node) else { return };
        let place = self.policy.place(&path, self.policy.workspace());
        let verb = if delete { "delete" } else { "write" };
        let (verdict, category, rule) = match place {
            Place::Workspace | Place::Scratch | Place::Unknown => return,
            Place::WorkspaceAncestor | Place::System | Place::Home => {
                (Verdict::Deny, Category::Destructive, "system-path")
            }
            Place::Persistence if !delete => (Verdict::Deny, Category::Persistence, "persistence-file"),
            Place::Persistence => (Verdict::Deny, Category::Destructive, "dotfile"),
            Place::Credential => (Verdict::Deny, Category::Credentials, "credential-path"),
            Place::RigorConfig => (Verdict::Deny, Category::SandboxEscape, "sandbox-config"),
            Place::Device => (Verdict::Deny, Category::Device, "device-write"),
            Place::Outside => (Verdict::Ask, Category::Destructive, "outside-workspace"),
        };
        self.add(verdict, category, rule, format!("`{what}` would {verb} `{path}`"));
    }

    fn shell(&mut self, command: &str) {
        let findings = super::shell::analyze(self.policy, command, self.depth + 1);
        self.findings.extend(findings);
    }

    /// The command a `subprocess`/`os.exec*` argument describes, as a shell line.
    fn command_line(&self, node: Node) -> Option<String> {
        match node.kind() {
            "list" | "tuple" => {
                let mut cursor = node.walk();
                let words: Vec<String> = node
                    .named_children(&mut cursor)
                    .map(|w| self.literal(w).unwrap_or_else(|| "$UNKNOWN".into()))
                    .collect();
                Some(words.iter().map(|w| shell_quote(w)).collect::<Vec<_>>().join(" "))
            }
            _ => self.literal(node),
        }
    }

    fn call(&mut self, node: Node, in_endless_loop: bool) {
        let Some(function) = node.child_by_field_name("function") else { return };
        let name = self.text(function).to_string();
        let short = name.rsplit('.').next().unwrap_or(&name).to_string();
        let args = self.positional(node);
        match name.as_str() {
            "os.remove" | "os.unlink" | "os.rmdir" | "os.removedirs" | "shutil.rmtree" | "remove" | "unlink"
            | "rmtree" => self.judge_path(args.first().copied(), &name, true),
            "open" | "io.open" | "codecs.open" => {
                let mode = args.get(1).copied().or_else(|| self.keyword(node, "mode")).and_then(|m| self.literal(m));
                if mode.is_some_and(|m| m.contains(['w', 'a', 'x', '+'])) {
                    self.judge_path(args.first().copied(), &name, false);
                }
            }
            "shutil.copy" | "shutil.copy2" | "shutil.copyfile" | "shutil.copytree" | "os.symlink" | "os.link" => {
                self.judge_path(args.get(1).copied(), &name, false)
            }
            "shutil.move" | "os.rename" | "os.replace" | "os.renames" => {
                self.judge_path(args.first().copied(), &name, true);
                self.judge_path(args.get(1).copied(), &name, false);
            }
            "os.chmod" | "os.lchmod" => {
                self.judge_path(args.first().copied(), &name, false);
                if let Some(mode) = args.get(1).map(|m| self.text(*m).to_ascii_lowercase())
                    && (mode.contains("s_isuid")
                        || mode.contains("s_isgid")
                        || parse_mode(&mode).is_some_and(|m| m & 0o6000 != 0))
                {
                    self.add(
                        Verdict::Deny,
                        Category::Privilege,
                        "setuid",
                        format!("`{name}` sets the setuid/setgid bit"),
                    );
                }
            }
            "os.chown" | "os.lchown" | "shutil.chown" => {
                self.judge_path(args.first().copied(), &name, false);
                if args.get(1).is_some_and(|u| self.text(*u) == "0" || self.literal(*u).as_deref() == Some("root")) {
                    self.add(
                        Verdict::Ask,
                        Category::Privilege,
                        "chown-root",
                        format!("`{name}` gives files to the superuser"),
                    );
                }
            }
            "os.setuid" | "os.setgid" | "os.seteuid" | "os.setegid" | "os.setreuid" | "os.setresuid"
            | "os.setresgid" => self.add(
                Verdict::Deny,
                Category::Privilege,
                "privilege-escalation",
                format!("`{name}` changes the process's user"),
            ),
            "os.unshare" | "os.setns" | "os.chroot" => self.add(
                Verdict::Deny,
                Category::SandboxEscape,
                "sandbox-tampering",
                format!("`{name}` changes namespaces or the root directory"),
            ),
            "os.system" | "os.popen" | "subprocess.getoutput" | "subprocess.getstatusoutput" | "commands.getoutput" => {
                if let Some(command) = args.first().and_then(|a| self.literal(*a)) {
                    self.shell(&command);
                }
            }
            "subprocess.run"
            | "subprocess.call"
            | "subprocess.check_call"
            | "subprocess.check_output"
            | "subprocess.Popen"
            | "Popen"
            | "run"
            | "check_call"
            | "check_output"
            | "pty.spawn"
            | "asyncio.create_subprocess_shell"
            | "asyncio.create_subprocess_exec" => {
                let command = match name.as_str() {
                    "asyncio.create_subprocess_exec" => {
                        let words: Vec<String> =
                            args.iter().map(|a| self.literal(*a).unwrap_or_else(|| "$UNKNOWN".into())).collect();
                        Some(words.iter().map(|w| shell_quote(w)).collect::<Vec<_>>().join(" "))
                    }
                    _ => args.first().or(self.keyword(node, "args").as_ref()).and_then(|a| self.command_line(*a)),
                };
                if let Some(command) = command {
                    self.shell(&command);
                }
            }
            n if n.starts_with("os.exec") || n.starts_with("os.spawn") || n.starts_with("os.posix_spawn") => {
                let list = args.iter().find(|a| matches!(a.kind(), "list" | "tuple")).copied();
                if let Some(command) = list.and_then(|l| self.command_line(l)) {
                    self.shell(&command);
                }
            }
            "os.kill" | "os.killpg" => {
                if args.first().is_some_and(|p| matches!(self.text(*p).replace(' ', "").as_str(), "-1" | "1")) {
                    self.add(
                        Verdict::Deny,
                        Category::ProcessKill,
                        "kill-all",
                        format!("`{name}` signals every process (or init)"),
                    );
                }
            }
            "os.fork" | "os.forkpty" | "fork" if in_endless_loop => self.add(
                Verdict::Deny,
                Category::ForkBomb,
                "fork-loop",
                format!("`{name}()` is called in an endless loop"),
            ),
            "exec" | "eval" | "compile" => {
                if args.first().is_some_and(|a| {
                    let t = self.text(*a);
                    FETCH_CALLS.iter().any(|f| t.contains(f))
                        && (t.contains("http") || t.contains("url") || t.contains("get("))
                }) {
                    self.add(
                        Verdict::Deny,
                        Category::DownloadExecute,
                        "fetch-and-run",
                        format!("`{name}` runs code fetched from the network"),
                    );
                }
            }
            "socket.create_connection" | "create_connection" => self.connection(node, &name, args.first().copied()),
            _ if short == "connect" || short == "connect_ex" || short == "sendto" => {
                let target = if short == "sendto" { args.get(1).copied() } else { args.first().copied() };
                self.connection(node, &name, target);
            }
            _ if short == "unlink"
                || short == "rmdir"
                || short == "write_text"
                || short == "write_bytes"
                || short == "touch"
                || short == "mkdir" =>
            {
                // `Path("...").unlink()`: the path is the receiver.
                if let Some(receiver) = function.child_by_field_name("object") {
                    self.judge_path(Some(receiver), &name, short == "unlink" || short == "rmdir");
                }
            }
            _ => {
                let upload = NETWORK_UPLOADS.contains(&name.as_str())
                    || (name.ends_with("urlopen") || name.ends_with("Request"))
                        && (args.len() >= 2 || self.keyword(node, "data").is_some());
                if upload {
                    let url = args.first().and_then(|a| self.literal(*a)).unwrap_or_default();
                    let host = if url.contains("://") { super::shell::host_of(&url) } else { None };
                    let host = host.unwrap_or_default();
                    let call_text = self.text(node);
                    if call_text.contains("environ") {
                        self.add(
                            Verdict::Deny,
                            Category::Exfiltration,
                            "secrets-to-network",
                            format!(
                                "`{name}` sends the environment to {}",
                                if host.is_empty() { "a server" } else { &host }
                            ),
                        );
                    } else if !is_local(&host) {
                        self.add(
                            Verdict::Ask,
                            Category::Exfiltration,
                            "upload",
                            format!("`{name}` sends data to {}", if host.is_empty() { "a server" } else { &host }),
                        );
                    }
                }
            }
        }
    }

    fn connection(&mut self, call: Node, name: &str, target: Option<Node>) {
        let Some(target) = target else { return };
        let host = match target.kind() {
            "tuple" => target.named_child(0).and_then(|h| self.literal(h)),
            _ => self.literal(target),
        };
        let host = host.unwrap_or_default();
        if is_local(&host) {
            return;
        }
        let whole = self.text(call.parent().unwrap_or(call));
        let verdict = if whole.contains("environ") { Verdict::Deny } else { Verdict::Ask };
        self.add(
            verdict,
            Category::Exfiltration,
            "raw-connection",
            format!("`{name}` opens a connection to {}", if host.is_empty() { "a host" } else { &host }),
        );
    }
}

/// A loopback host, or a Unix socket path.
fn is_local(host: &str) -> bool {
    super::is_loopback_host(host) || host.starts_with('/')
}

fn parse_mode(text: &str) -> Option<u32> {
    let t = text.trim();
    if let Some(oct) = t.strip_prefix("0o") {
        return u32::from_str_radix(oct, 8).ok();
    }
    t.parse().ok()
}

fn shell_quote(word: &str) -> String {
    if word.starts_with('$')
        || (!word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,~".contains(c)))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
