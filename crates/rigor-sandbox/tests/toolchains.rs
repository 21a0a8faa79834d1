//! Toolchains stay usable inside the sandbox wherever the user keeps them: the locations named by
//! `CARGO_HOME`, `RUSTUP_HOME`, `PYENV_ROOT`, `GOPATH`, `VIRTUAL_ENV`, ... and the `PATH` entries that lie in a
//! hidden directory (the home directories) are readable, never writable, while the credentials
//! beside them stay unreadable and a `PATH` entry that is a whole home directory is left out (and
//! said so). Checked from outside: what the commands ran, read and wrote is looked at on the host.
//!
//! Its own test binary with a single test: the sandbox takes these locations from the process
//! environment, which the test sets (no other thread reads it meanwhile).
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of a test binary

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use rigor_sandbox::{Sandbox, SandboxSettings, SandboxSpec};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// An executable script at `path` that prints `says`.
fn tool(path: &Path, says: &str) {
    write(path, &format!("#!/bin/sh\necho {says}\n"));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Runs `script` with bash in a sandbox of `workspace` built from the current environment;
/// returns the sandbox's description and the command's output.
fn run(workspace: &Path, script: &str) -> (String, String) {
    let mut spec = SandboxSpec::new(workspace, SandboxSettings::default());
    spec.helper = Some(PathBuf::from(env!("CARGO_BIN_EXE_rigor-sandbox-exec")));
    let sandbox = Sandbox::new(spec).unwrap();
    let prepared = sandbox.command("/bin/bash", &["-c", script], workspace).unwrap();
    let mut command = prepared.command;
    let out = command.stdin(Stdio::null()).output().unwrap();
    drop(prepared.guard);
    let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (sandbox.describe(), output)
}

#[test]
fn configured_toolchains_are_runnable_read_only_and_their_credentials_stay_hidden() {
    let root = tempfile::Builder::new().prefix("rigor-toolchains-").tempdir_in("/var/tmp").unwrap();
    let home = root.path().join("home");
    let ws = root.path().join("workspace");
    std::fs::create_dir_all(&ws).unwrap();
    // A home with toolchains in unusual places, and credentials beside them.
    let cargo = home.join("toolchains/cargo");
    tool(&cargo.join("bin/cargo-fake"), "cargo-ran");
    write(&cargo.join("registry/index/entry"), "crate index\n");
    write(&cargo.join("credentials.toml"), "[registry]\ntoken = \"SECRET-CARGO\"\n");
    let rustup = home.join("toolchains/rustup");
    write(&rustup.join("toolchains/stable/lib/marker"), "rustup toolchain\n");
    let pyenv = home.join("python/pyenv");
    tool(&pyenv.join("shims/python-fake"), "pyenv-ran");
    let gopath = home.join("gowork");
    tool(&gopath.join("bin/go-fake"), "go-ran");
    write(&gopath.join("pkg/mod/example.com/m/go.mod"), "module example.com/m\n");
    write(&gopath.join("secret.env"), "SECRET-GOPATH\n");
    let tools = home.join("opt/tool");
    tool(&tools.join("bin/tool-fake"), "tool-ran");
    write(&tools.join("credentials.toml"), "SECRET-NEXT-TO-TOOL\n");
    write(&home.join(".npmrc"), "//registry.npmjs.org/:_authToken=SECRET-NPMRC\n");
    write(&home.join(".ssh/id_ed25519"), "SECRET-SSH\n");
    write(&home.join(".config/gh/hosts.yml"), "oauth_token: SECRET-GH\n");
    tool(&home.join(".config/tool-in-config"), "config-ran");
    // A real virtual environment in the home, with a module only it has: activated, its `python`
    // must start as the environment (a `bin/` alone starts the base interpreter without it).
    let venv = home.join("projects/app/.venv");
    let made = std::process::Command::new("/usr/bin/python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .status()
        .expect("Debian's python3 with venv (python3-venv)");
    assert!(made.success(), "python3 -m venv failed");
    let site = std::fs::read_dir(venv.join("lib")).unwrap().next().unwrap().unwrap().path().join("site-packages");
    write(&site.join("venv_marker.py"), "HERE = True\n");
    // A cargo home outside every hidden directory (visible anyway): its credentials are masked.
    let outside_cargo = root.path().join("cargo-elsewhere");
    tool(&outside_cargo.join("bin/cargo-elsewhere"), "elsewhere-ran");
    write(&outside_cargo.join("credentials.toml"), "SECRET-OUTSIDE-CARGO\n");

    // On PATH besides the toolchains: the home itself, the cargo home (it holds the registry
    // token) and `~/.config` (it holds `gh`'s): none of the three may become visible.
    let path = [
        venv.join("bin"),
        tools.join("bin"),
        home.clone(),
        cargo.join("bin"),
        pyenv.join("shims"),
        gopath.join("bin"),
        cargo.clone(),
        home.join(".config"),
    ]
    .iter()
    .map(|p| p.display().to_string())
    .chain(["/usr/local/bin", "/usr/bin", "/bin"].map(String::from))
    .collect::<Vec<_>>()
    .join(":");
    // SAFETY: the only test of this binary; no other thread reads or writes the environment.
    unsafe {
        std::env::set_var("HOME", &home);
        std::env::set_var("PATH", &path);
        std::env::set_var("CARGO_HOME", &cargo);
        std::env::set_var("RUSTUP_HOME", &rustup);
        std::env::set_var("PYENV_ROOT", &pyenv);
        std::env::set_var("GOPATH", &gopath);
        std::env::set_var("VIRTUAL_ENV", &venv);
    }
    let w = ws.display();
    let c = cargo.display();
    let h = home.display();
    let script = format!(
        "cargo-fake > {w}/ran-cargo; python-fake > {w}/ran-pyenv; go-fake > {w}/ran-go; tool-fake > {w}/ran-tool
         cat \"$RUSTUP_HOME/toolchains/stable/lib/marker\" \"$CARGO_HOME/registry/index/entry\" \
             \"$GOPATH/pkg/mod/example.com/m/go.mod\" > {w}/read-ok
         for f in \"$CARGO_HOME/credentials.toml\" {h}/opt/tool/credentials.toml {h}/.npmrc {h}/.ssh/id_ed25519 \
                  \"$GOPATH/secret.env\" {h}/.config/gh/hosts.yml; do cat \"$f\"; done > {w}/leaked 2>&1
         ls -a {h} > {w}/home-listing
         tool-in-config > {w}/ran-config 2>&1
         python -c 'import sys, venv_marker; print(sys.prefix)' > {w}/ran-venv 2>&1
         for d in \"$CARGO_HOME/bin\" \"$RUSTUP_HOME\" \"$PYENV_ROOT/shims\" {h}/opt/tool/bin \"$VIRTUAL_ENV\"; do
             echo planted > \"$d/planted\" && echo \"wrote $d\"; done
         true"
    );
    let (description, output) = run(&ws, &script);

    assert_eq!(read(&ws.join("ran-cargo")), "cargo-ran\n", "CARGO_HOME/bin on PATH runs: {output}");
    assert_eq!(read(&ws.join("ran-pyenv")), "pyenv-ran\n", "PYENV_ROOT's shims run: {output}");
    assert_eq!(read(&ws.join("ran-go")), "go-ran\n", "GOPATH/bin runs: {output}");
    assert_eq!(read(&ws.join("ran-tool")), "tool-ran\n", "a PATH entry in the home runs: {output}");
    assert_eq!(
        read(&ws.join("ran-venv")),
        format!("{}\n", venv.display()),
        "VIRTUAL_ENV's python runs as it: {output}"
    );
    assert_eq!(read(&ws.join("read-ok")), "rustup toolchain\ncrate index\nmodule example.com/m\n", "{output}");
    let leaked = read(&ws.join("leaked"));
    assert!(!leaked.contains("SECRET"), "credentials were readable: {leaked}");
    assert!(leaked.contains("No such file"), "{leaked}");
    let listing = read(&ws.join("home-listing"));
    assert!(!listing.contains(".npmrc") && !listing.contains(".ssh"), "the whole home is visible: {listing}");
    assert!(!output.contains("wrote "), "a toolchain directory was writable: {output}");
    for dir in [cargo.join("bin"), rustup.clone(), pyenv.join("shims"), tools.join("bin"), venv.clone()] {
        assert!(!dir.join("planted").exists(), "{} was written", dir.display());
    }
    assert!(!read(&ws.join("ran-config")).contains("config-ran"), "~/.config was visible");
    assert!(
        description.contains(&format!("PATH entry {h} (a home directory")),
        "the description says that the home on PATH was left out: {description}"
    );
    for (entry, credential) in [(c.to_string(), "credentials.toml"), (format!("{h}/.config"), ".config/gh")] {
        assert!(
            description.contains(&format!("PATH entry {entry} (it would expose the credentials"))
                && description.contains(credential),
            "the description says why {entry} was left out: {description}"
        );
    }

    // A cargo home outside the hidden directories is visible anyway; its credentials are not.
    // SAFETY: as above.
    unsafe {
        std::env::set_var("CARGO_HOME", &outside_cargo);
        std::env::set_var("PATH", format!("{}:/usr/bin:/bin", outside_cargo.join("bin").display()));
    }
    let (_, output) = run(&ws, "cargo-elsewhere; cat \"$CARGO_HOME/credentials.toml\"; true");
    assert!(output.contains("elsewhere-ran"), "{output}");
    assert!(!output.contains("SECRET"), "the cargo credentials were readable: {output}");
    assert_eq!(read(&outside_cargo.join("credentials.toml")), "SECRET-OUTSIDE-CARGO\n", "untouched on the host");
}
