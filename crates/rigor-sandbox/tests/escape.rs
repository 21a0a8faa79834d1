//! Real escape attempts from inside the sandbox. Each attempt's effect is checked from outside,
//! on the host, after the attempt; where it makes sense a control run without the sandbox shows
//! that the same attempt does succeed unconfined (so the test proves something).
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of a test binary

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use rigor_sandbox::{Sandbox, SandboxMode, SandboxSettings, SandboxSpec, SessionGuard};

/// A directory on the host outside the workspace, /tmp and the home directory (visible, read-only
/// inside the sandbox).
fn host_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("rigor-escape-").tempdir_in("/var/tmp").unwrap()
}

struct Fixture {
    workspace: tempfile::TempDir,
    outside: tempfile::TempDir,
    home: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let workspace = host_dir();
        let outside = host_dir();
        let home = outside.path().join("home");
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        std::fs::write(home.join(".ssh/id_rsa"), "FAKE-PRIVATE-KEY-0xC0FFEE\n").unwrap();
        std::fs::write(outside.path().join("precious.txt"), "keep me\n").unwrap();
        Self { workspace, outside, home }
    }

    fn sandbox(&self, settings: SandboxSettings) -> Sandbox {
        let mut spec = SandboxSpec::new(self.workspace.path(), settings);
        spec.home = Some(self.home.clone());
        spec.helper = Some(PathBuf::from(env!("CARGO_BIN_EXE_rigor-sandbox-exec")));
        Sandbox::new(spec).unwrap()
    }
}

struct Outcome {
    code: Option<i32>,
    output: String,
}

/// Runs `script` with bash in the sandbox, killing it after `limit`.
fn run_with(sandbox: &Sandbox, cwd: &Path, script: &str, limit: Duration) -> (Outcome, SessionGuard) {
    let prepared = sandbox.command("bash", &["-c", script], cwd).unwrap();
    let (mut command, guard) = (prepared.command, prepared.guard);
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        let mut err = String::new();
        let _ = stderr.read_to_string(&mut err);
        text + &err
    });
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // The reader finishes once every process holding the pipes is gone.
    let output = if code.is_none() {
        drop(guard);
        return (Outcome { code, output: reader.join().unwrap() }, SessionGuard::default());
    } else {
        reader.join().unwrap()
    };
    (Outcome { code, output }, guard)
}

fn run(sandbox: &Sandbox, cwd: &Path, script: &str) -> Outcome {
    run_with(sandbox, cwd, script, Duration::from_secs(30)).0
}

fn confined() -> SandboxSettings {
    SandboxSettings::default()
}

#[test]
fn the_probe_reports_every_layer() {
    let f = Fixture::new();
    let sandbox = f.sandbox(confined());
    let layers = sandbox.layers();
    assert!(layers.namespaces && layers.seccomp, "{layers:?}");
    assert_eq!(layers.landlock.as_deref(), Some("fully_enforced"), "{layers:?}");
    assert!(sandbox.describe().contains("Landlock fully enforced"), "{}", sandbox.describe());
}

#[test]
fn ordinary_work_still_works() {
    let f = Fixture::new();
    let sandbox = f.sandbox(confined());
    let out = run(
        &sandbox,
        f.workspace.path(),
        "echo data > made.txt && mkdir -p build && python3 -c 'import sys; print(sys.version_info[0])' \
         && echo scratch > /tmp/s && cat /tmp/s && ls /usr/bin/env && echo HOME=$HOME",
    );
    assert_eq!(out.code, Some(0), "{}", out.output);
    assert!(out.output.contains("3\nscratch\n/usr/bin/env\n"), "{}", out.output);
    assert_eq!(std::fs::read_to_string(f.workspace.path().join("made.txt")).unwrap(), "data\n");
}

#[test]
fn writing_outside_the_workspace_fails() {
    let f = Fixture::new();
    let target = f.outside.path().join("planted.txt");
    let script = format!("echo pwned > {0}; touch {0}.2; cp /etc/hostname {0}.3", target.display());
    let out = run(&f.sandbox(confined()), f.workspace.path(), &script);
    assert!(out.output.contains("Read-only file system"), "{}", out.output);
    for suffix in ["", ".2", ".3"] {
        assert!(!Path::new(&format!("{}{suffix}", target.display())).exists(), "{suffix} was written on the host");
    }
    // Control: unconfined, the same command writes the file.
    run(&Sandbox::unconfined(), f.workspace.path(), &script);
    assert!(target.exists());
}

#[test]
fn deleting_outside_the_workspace_fails() {
    let f = Fixture::new();
    let precious = f.outside.path().join("precious.txt");
    let script = format!("rm -f {0}; rm -rf {1}", precious.display(), f.outside.path().display());
    let out = run(&f.sandbox(confined()), f.workspace.path(), &script);
    assert!(out.output.contains("Read-only file system"), "{}", out.output);
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me\n");
}

#[test]
fn a_planted_secret_in_the_home_directory_cannot_be_read() {
    let f = Fixture::new();
    let key = f.home.join(".ssh/id_rsa");
    let script = format!("cat {0}; cat $HOME/.ssh/id_rsa; ls -la $HOME; cat ~/.ssh/id_rsa", key.display());
    let out = run(&f.sandbox(confined()), f.workspace.path(), &script);
    assert!(!out.output.contains("FAKE-PRIVATE-KEY"), "{}", out.output);
    assert!(out.output.contains("No such file or directory"), "{}", out.output);
    let control = run(&Sandbox::unconfined(), f.workspace.path(), &format!("cat {}", key.display()));
    assert!(control.output.contains("FAKE-PRIVATE-KEY"));
}

#[test]
fn a_symlink_planted_in_the_workspace_does_not_lead_outside() {
    let f = Fixture::new();
    std::os::unix::fs::symlink(f.outside.path(), f.workspace.path().join("out")).unwrap();
    std::os::unix::fs::symlink(f.home.join(".ssh"), f.workspace.path().join("keys")).unwrap();
    let out = run(
        &f.sandbox(confined()),
        f.workspace.path(),
        "echo pwned > out/via-link.txt; rm -f out/precious.txt; cat keys/id_rsa",
    );
    assert!(!f.outside.path().join("via-link.txt").exists(), "{}", out.output);
    assert!(f.outside.path().join("precious.txt").exists(), "{}", out.output);
    assert!(!out.output.contains("FAKE-PRIVATE-KEY"), "{}", out.output);
}

#[test]
fn a_tcp_listener_on_the_host_loopback_is_unreachable() {
    let f = Fixture::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!(
        "echo exfil > /dev/tcp/127.0.0.1/{port}; python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), 2)\""
    );
    let out = run(&f.sandbox(confined()), f.workspace.path(), &script);
    assert_ne!(out.code, Some(0), "{}", out.output);
    std::thread::sleep(Duration::from_millis(200));
    assert!(listener.accept().is_err(), "a connection reached the host: {}", out.output);
    // Control: unconfined, it connects.
    run(&Sandbox::unconfined(), f.workspace.path(), &format!("echo hi > /dev/tcp/127.0.0.1/{port}"));
    std::thread::sleep(Duration::from_millis(200));
    assert!(listener.accept().is_ok());
}

#[test]
fn a_process_outside_cannot_be_killed() {
    let f = Fixture::new();
    let mut victim = std::process::Command::new("sleep").arg("60").spawn().unwrap();
    let pid = victim.id();
    let out = run(&f.sandbox(confined()), f.workspace.path(), &format!("kill -9 {pid}; kill -9 -1; pkill sleep; true"));
    std::thread::sleep(Duration::from_millis(200));
    assert!(victim.try_wait().unwrap().is_none(), "the host process was killed: {}", out.output);
    victim.kill().unwrap();
    victim.wait().unwrap();
}

#[test]
fn a_fork_bomb_is_contained_and_killed() {
    const LIMIT: u32 = 64;
    let f = Fixture::new();
    let settings = SandboxSettings { max_processes: LIMIT, ..confined() };
    let sandbox = f.sandbox(settings);
    // Without a limit the bomb would take the host down: that is a failure, not a skip.
    assert!(
        sandbox.layers().process_limit.is_some(),
        "no process limit available (root without a writable pids cgroup): a fork bomb is not contained"
    );
    // The bomb runs in the background while the script counts the processes of the sandbox's PID
    // namespace for 3 s with builtins only (no fork needed), printing each new maximum (so a
    // count is there however slowly a loaded machine runs the script before the kill), then
    // waits to be killed.
    let script = r#":(){ :|:& };:
        max=0; end=$((SECONDS + 3))
        while ((SECONDS < end)); do
            n=0; for p in /proc/[0-9]*; do n=$((n + 1)); done
            ((n > max)) && { max=$n; echo "max=$max"; }
        done
        wait"#;
    let started = Instant::now();
    let (outcome, guard) = run_with(&sandbox, f.workspace.path(), script, Duration::from_secs(8));
    drop(guard);
    assert!(started.elapsed() < Duration::from_secs(30), "the bomb was not killed at the time limit");
    let max: u32 = outcome
        .output
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("max="))
        .unwrap_or_else(|| panic!("no count in the output: {}", outcome.output))
        .parse()
        .unwrap();
    // It hit the limit (fork failed with EAGAIN) and never got past it.
    assert!(
        outcome.output.contains("Resource temporarily unavailable"),
        "the bomb never hit a limit: {}",
        outcome.output
    );
    // A listing of /proc is not a snapshot: while the bomb forks and dies, one pass can see a
    // process that has exited and its successor, so the count may pass the limit by a few. Twice
    // the limit still tells a contained bomb from an unlimited one (which reaches thousands).
    assert!(max > 1 && max <= 2 * LIMIT, "{max} processes seen, limit {LIMIT}");
    // The host is fine: it can still start processes, and nothing of the bomb survived.
    let status = std::process::Command::new("true").status().unwrap();
    assert!(status.success());
    let out = run(&sandbox, f.workspace.path(), "echo alive");
    assert!(out.output.contains("alive"), "{}", out.output);
}

#[test]
fn processes_are_limited_while_running() {
    let f = Fixture::new();
    let sandbox = f.sandbox(SandboxSettings { max_processes: 32, ..confined() });
    if sandbox.layers().process_limit.is_none() {
        return;
    }
    let out = run(&sandbox, f.workspace.path(), "for i in $(seq 1 100); do sleep 5 & done 2>&1 | tail -1; echo done");
    assert!(out.output.contains("fork") || out.output.contains("Resource temporarily unavailable"), "{}", out.output);
}

#[test]
fn filling_the_scratch_beyond_its_limit_fails() {
    let f = Fixture::new();
    let sandbox = f.sandbox(SandboxSettings { scratch_mb: 16, max_file_mb: 8, ..confined() });
    let out = run(
        &sandbox,
        f.workspace.path(),
        "head -c 64M /dev/zero > /tmp/fill; echo tmp=$?; du -m /tmp/fill | cut -f1; head -c 32M /dev/zero > big.bin; echo ws=$?",
    );
    assert!(out.output.contains("No space left on device") || out.output.contains("File size limit"), "{}", out.output);
    assert!(!Path::new("/tmp/fill").exists() || std::fs::metadata("/tmp/fill").unwrap().len() < 1);
    // The workspace file is capped by the file-size limit, seen from the host.
    let size = std::fs::metadata(f.workspace.path().join("big.bin")).map(|m| m.len()).unwrap_or(0);
    assert!(size <= 8 * 1024 * 1024, "big.bin is {size} bytes: {}", out.output);
}

#[test]
fn allocating_beyond_the_memory_limit_fails() {
    let f = Fixture::new();
    let sandbox = f.sandbox(SandboxSettings { memory_mb: 512, ..confined() });
    let out = run(
        &sandbox,
        f.workspace.path(),
        "python3 -c 'b = bytearray(2 * 1024**3); print(\"allocated\")'; echo status=$?",
    );
    assert!(out.output.contains("MemoryError"), "{}", out.output);
    assert!(!out.output.contains("allocated"), "{}", out.output);
}

#[test]
fn namespaces_and_mounts_cannot_be_changed_from_inside() {
    let f = Fixture::new();
    let out = run(
        &f.sandbox(confined()),
        f.workspace.path(),
        "unshare -U true; echo unshare=$?; mount -t tmpfs none /mnt; echo mount=$?; bwrap --bind / / true; echo bwrap=$?",
    );
    assert!(out.output.contains("unshare=1"), "{}", out.output);
    assert!(!out.output.contains("mount=0"), "{}", out.output);
    assert!(!out.output.contains("bwrap=0"), "{}", out.output);
}

#[test]
fn read_only_mode_keeps_the_workspace_unchanged() {
    let f = Fixture::new();
    std::fs::write(f.workspace.path().join("src.py"), "x = 1\n").unwrap();
    let sandbox = f.sandbox(SandboxSettings { mode: SandboxMode::ReadOnly, ..confined() });
    let out = run(&sandbox, f.workspace.path(), "cat src.py; echo y > src.py; echo scratch > /tmp/ok && cat /tmp/ok");
    assert!(out.output.contains("x = 1") && out.output.contains("scratch"), "{}", out.output);
    assert_eq!(std::fs::read_to_string(f.workspace.path().join("src.py")).unwrap(), "x = 1\n");
}

#[test]
fn the_git_metadata_of_a_worktree_is_readable_but_not_writable() {
    let repo = host_dir();
    let git = |args: &[&str], dir: &Path| {
        let out = std::process::Command::new("git").args(args).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    git(&["init", "-q"], repo.path());
    std::fs::write(repo.path().join("a.txt"), "a\n").unwrap();
    git(&["add", "."], repo.path());
    git(&["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "init"], repo.path());
    let ws = repo.path().join(".rigor/worktrees/w1");
    git(&["worktree", "add", "-q", "--detach", ws.to_str().unwrap()], repo.path());
    let mut spec = SandboxSpec::new(&ws, confined());
    spec.helper = Some(PathBuf::from(env!("CARGO_BIN_EXE_rigor-sandbox-exec")));
    let sandbox = Sandbox::new(spec).unwrap();
    let head = repo.path().join(".git/HEAD");
    let out = run(
        &sandbox,
        &ws,
        &format!("git log --oneline | wc -l; echo x > a.txt; git diff --stat; echo bad > {}", head.display()),
    );
    assert!(out.output.starts_with("1\n"), "{}", out.output);
    assert!(out.output.contains("1 file changed"), "{}", out.output);
    assert!(std::fs::read_to_string(head).unwrap().starts_with("ref:"));
}

/// Every entry under `dir` (not following symlinks) whose mode has the setuid or setgid bit.
fn setid_files(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.permissions().mode() & 0o6000 != 0 {
            found.push(format!("{} ({:o})", path.display(), meta.permissions().mode()));
        }
        if meta.is_dir() {
            found.extend(setid_files(&path));
        }
    }
    found
}

#[test]
fn no_setuid_or_setgid_file_can_be_left_in_the_workspace() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let f = Fixture::new();
    let script = "for n in a b c d e g; do cp /bin/true $n; done; cp /bin/true ok; mkdir sub; cp /bin/true sub/s
        chmod 4755 a; echo chmod=$?
        chmod u+s b; echo u+s=$?
        chmod g+s c; echo g+s=$?
        m=4755; chmod $m g; echo var=$?
        python3 -c \"import os; os.chmod('d', 0o4755)\"; echo py=$?
        python3 -c \"import os; os.close(os.open('made', os.O_CREAT | os.O_WRONLY, 0o6755))\"; echo pyopen=$?
        python3 -c \"import os; os.mknod('node', 0o104755)\"; echo pymknod=$?
        install -m 4755 /bin/true installed; echo install=$?
        install -m 2755 -d setgid-dir; echo installdir=$?
        chmod -R u+s sub; echo recursive=$?
        python3 -c \"import io, tarfile; t = tarfile.open('s.tar', 'w'); i = tarfile.TarInfo('from-tar'); i.mode = 0o4755; t.addfile(i, io.BytesIO()); t.close()\"
        tar xpf s.tar; echo tar=$?
        cp -p /usr/bin/su /usr/bin/passwd . 2>/dev/null; cp -a /usr/bin/su su-a 2>/dev/null
        mknod null c 1 3; echo mknod=$?
        chmod 755 ok; echo ok=$?
        chmod u+x,go-w e; echo plain=$?
        mkfifo fifo; echo fifo=$?
        python3 -c \"import os; os.close(os.open('plain', os.O_CREAT | os.O_WRONLY, 0o644))\"; echo pyplain=$?";
    let out = run(&f.sandbox(confined()), f.workspace.path(), script);
    // From the host: no setuid/setgid file or directory, no device node; ordinary modes applied.
    let found = setid_files(f.workspace.path());
    assert!(found.is_empty(), "setuid/setgid files in the workspace: {found:?}\n{}", out.output);
    for refused in ["chmod=", "u+s=", "g+s=", "var=", "py=", "pyopen=", "pymknod=", "install=", "tar=", "mknod="] {
        assert!(!out.output.contains(&format!("{refused}0")), "{refused} succeeded: {}", out.output);
    }
    assert!(out.output.contains("Operation not permitted"), "{}", out.output);
    for allowed in ["ok=0", "plain=0", "fifo=0", "pyplain=0"] {
        assert!(out.output.contains(allowed), "{allowed}: {}", out.output);
    }
    let mode = |name: &str| std::fs::symlink_metadata(f.workspace.path().join(name)).unwrap();
    assert_eq!(mode("ok").permissions().mode() & 0o7777, 0o755);
    assert!(mode("fifo").file_type().is_fifo());
    assert!(std::fs::symlink_metadata(f.workspace.path().join("null")).is_err());
    // Control: unconfined, the same chmod sets the bit.
    let control = f.outside.path().join("control");
    std::fs::write(&control, "").unwrap();
    run(&Sandbox::unconfined(), f.outside.path(), "chmod 4755 control");
    assert_eq!(std::fs::metadata(&control).unwrap().permissions().mode() & 0o7777, 0o4755);
}

#[test]
fn the_description_says_that_network_on_shares_the_host_loopback() {
    let f = Fixture::new();
    let on = f.sandbox(SandboxSettings { network: true, ..confined() }).describe();
    assert!(on.contains("share the host's network") && on.contains("loopback"), "{on}");
    let off = f.sandbox(confined()).describe();
    assert!(off.contains("network off"), "{off}");
}
