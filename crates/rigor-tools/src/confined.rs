//! File access confined to the workspace, without a window between check and use.
//!
//! The file tools run on the host, outside the sandbox, while the model's shell runs beside them
//! and can change the tree at any moment (swap a directory for a symlink with
//! `renameat2(RENAME_EXCHANGE)`). So a path is never checked and then opened: every open is one
//! `openat2(2)` relative to a descriptor of the workspace root with `RESOLVE_BENEATH |
//! RESOLVE_NO_MAGICLINKS`, which the kernel resolves atomically and refuses (`EXDEV`) the moment
//! any step would leave the root: `..` above it, an absolute symlink, a relative symlink that
//! climbs out, `/proc/self/root` tricks. Symlinks that stay inside are followed.
//!
//! Reads open with `O_NONBLOCK` and accept only regular files (a FIFO or a device never blocks
//! the loop) and are bounded. Writes go to a fresh temporary file in the target's directory
//! (opened the same way) and are renamed over the name relative to that directory's descriptor,
//! so they land exactly where the check said, keep the previous mode (without setuid/setgid), and a
//! reader never sees half a file.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};

/// Largest file the tools read (larger ones are refused with advice).
pub const MAX_READ_BYTES: u64 = 32 * 1024 * 1024;

/// Why a confined access failed.
#[derive(Debug)]
pub enum ConfinedError {
    /// The path leaves the workspace (lexically or through a symlink).
    Outside,
    /// The path exists but is not a regular file (a FIFO, socket, device or directory).
    NotAFile(&'static str),
    /// The file exceeds [`MAX_READ_BYTES`].
    TooLarge(u64),
    /// The path is one of the protected entries (see [`Confined::protect`]), or inside one.
    Protected,
    /// Any other error of the file system.
    Io(io::Error),
}

impl From<io::Error> for ConfinedError {
    fn from(err: io::Error) -> Self {
        if err.raw_os_error() == Some(libc::EXDEV) || err.raw_os_error() == Some(libc::ELOOP) {
            Self::Outside
        } else {
            Self::Io(err)
        }
    }
}

impl From<rustix::io::Errno> for ConfinedError {
    fn from(err: rustix::io::Errno) -> Self {
        io::Error::from(err).into()
    }
}

impl ConfinedError {
    /// A message for the model about `shown` under `root`.
    pub fn explain(&self, shown: &str, root: &Path) -> String {
        match self {
            Self::Outside => format!(
                "`{shown}` is outside the workspace {} (or reaches outside through a symlink); the file tools work \
                 only inside the workspace. Read other files with `bash` (sandboxed).",
                root.display()
            ),
            Self::NotAFile(kind) => format!("`{shown}` is a {kind}, not a regular file"),
            Self::Protected => format!(
                "`{shown}` is git's or rigor's metadata (`.git`, `.rigor`): it can be read, not changed, by the agent"
            ),
            Self::TooLarge(size) => format!(
                "`{shown}` is {size} bytes, more than the {MAX_READ_BYTES} the file tools read; inspect it with `bash` \
                 (`head`, `sed -n`, `grep`)"
            ),
            Self::Io(err) if err.kind() == io::ErrorKind::NotFound => format!("`{shown}` does not exist"),
            Self::Io(err) => format!("cannot access `{shown}`: {err}"),
        }
    }
}

/// What a path names inside the workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// Something else (FIFO, socket, device).
    Other(&'static str),
}

/// The workspace root, held open.
#[derive(Debug)]
pub struct Confined {
    root: OwnedFd,
    root_path: PathBuf,
    /// The root as given, made absolute and normalised.
    given: PathBuf,
    /// Real paths that may be read but never written or deleted.
    protected: Vec<PathBuf>,
}

const RESOLVE: ResolveFlags = ResolveFlags::BENEATH.union(ResolveFlags::NO_MAGICLINKS);
/// Attempts of an `openat2` that the kernel asks to retry (`EAGAIN`: a rename raced the lookup).
const RETRIES: usize = 64;

impl Confined {
    /// Opens the workspace root `root` (which must exist).
    pub fn open(root: &Path) -> io::Result<Self> {
        let root_path = root.canonicalize()?;
        let absolute = if root.is_absolute() { root.to_path_buf() } else { std::env::current_dir()?.join(root) };
        let given = rigor_sandbox::paths::normalize(&absolute);
        let fd = rustix::fs::open(&root_path, OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
        Ok(Self { root: fd, root_path, given, protected: Vec::new() })
    }

    /// The same root with the entries `names` of it (e.g. `.git`) read-only: writes and deletes
    /// of them or of anything inside them are refused, however the path reaches them (a symlink
    /// inside the workspace included: the check is on the real path of the opened directory).
    pub fn protect(mut self, names: &[&str]) -> Self {
        self.protected = names.iter().map(|name| self.root_path.join(name)).collect();
        self
    }

    /// Refuses a change of `name` in the opened directory `dir` when it is protected.
    fn check_writable(&self, dir: &OwnedFd, name: &Path) -> Result<(), ConfinedError> {
        if self.protected.is_empty() {
            return Ok(());
        }
        use std::os::fd::AsRawFd;
        let real = std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd())).map_err(ConfinedError::Io)?;
        let target = real.join(name);
        if self.protected.iter().any(|p| target.starts_with(p)) {
            return Err(ConfinedError::Protected);
        }
        Ok(())
    }

    /// The real path of the root.
    pub fn root(&self) -> &Path {
        &self.root_path
    }

    /// `path` (absolute, or relative to the root) as a path relative to the root, with `.` and
    /// `..` resolved lexically; [`ConfinedError::Outside`] if it climbs out. Absolute paths may
    /// name the root as it was given or as it really is.
    pub fn relative(&self, path: &Path) -> Result<PathBuf, ConfinedError> {
        let joined = if path.is_absolute() { path.to_path_buf() } else { self.given.join(path) };
        let normal = rigor_sandbox::paths::normalize(&joined);
        let rel = normal
            .strip_prefix(&self.given)
            .or_else(|_| normal.strip_prefix(&self.root_path))
            .map_err(|_| ConfinedError::Outside)?;
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(ConfinedError::Outside);
        }
        Ok(rel.to_path_buf())
    }

    fn open_at(&self, rel: &Path, flags: OFlags, mode: Mode) -> Result<OwnedFd, ConfinedError> {
        let rel = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
        let mut last = None;
        for _ in 0..RETRIES {
            match rustix::fs::openat2(self.root.as_fd(), rel, flags | OFlags::CLOEXEC, mode, RESOLVE) {
                Ok(fd) => return Ok(fd),
                Err(rustix::io::Errno::AGAIN) => last = Some(rustix::io::Errno::AGAIN),
                // Inside rigor's sandbox (seccomp answers `openat2` with ENOSYS), e.g. `rigor mcp`
                // run as a run's MCP server: one component at a time, following no symlink.
                Err(rustix::io::Errno::NOSYS) => return self.open_by_components(rel, flags, mode),
                Err(err) => return Err(err.into()),
            }
        }
        Err(last.unwrap_or(rustix::io::Errno::AGAIN).into())
    }

    /// `open_at` without `openat2`: each directory of `rel` opened with `O_NOFOLLOW` from the
    /// previous one, then the last component, also with `O_NOFOLLOW`. Stricter than
    /// `RESOLVE_BENEATH` (no symlink at all is followed); `..` is refused.
    fn open_by_components(&self, rel: &Path, flags: OFlags, mode: Mode) -> Result<OwnedFd, ConfinedError> {
        let parts: Vec<&std::ffi::OsStr> = rel
            .components()
            .filter(|c| !matches!(c, Component::CurDir))
            .map(|c| match c {
                Component::Normal(name) => Ok(name),
                _ => Err(ConfinedError::Outside),
            })
            .collect::<Result<_, _>>()?;
        let Some((last, dirs)) = parts.split_last() else {
            return Ok(rustix::fs::openat(self.root.as_fd(), ".", flags | OFlags::CLOEXEC, mode)?);
        };
        let mut dir: Option<OwnedFd> = None;
        for name in dirs {
            let at = dir.as_ref().map_or(self.root.as_fd(), |d| d.as_fd());
            let next = rustix::fs::openat(
                at,
                *name,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?;
            dir = Some(next);
        }
        let at = dir.as_ref().map_or(self.root.as_fd(), |d| d.as_fd());
        Ok(rustix::fs::openat(at, *last, flags | OFlags::NOFOLLOW | OFlags::CLOEXEC, mode)?)
    }

    /// What `rel` is, without following a final symlink out of the root.
    pub fn kind(&self, rel: &Path) -> Result<Kind, ConfinedError> {
        let fd = self.open_at(rel, OFlags::PATH, Mode::empty())?;
        Ok(kind_of(&rustix::fs::fstat(&fd)?))
    }

    /// Opens the regular file `rel` for reading (never blocks on a FIFO or device).
    pub fn open_file(&self, rel: &Path) -> Result<std::fs::File, ConfinedError> {
        self.open_regular(rel).map(|(file, _)| file)
    }

    /// [`Confined::open_file`], with the file's size from the same `fstat`. `O_NONBLOCK` stays
    /// set: it has no effect on a regular file.
    fn open_regular(&self, rel: &Path) -> Result<(std::fs::File, u64), ConfinedError> {
        let fd = self.open_at(rel, OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY, Mode::empty())?;
        let stat = rustix::fs::fstat(&fd)?;
        match kind_of(&stat) {
            Kind::File => Ok((std::fs::File::from(fd), u64::try_from(stat.st_size).unwrap_or(0))),
            Kind::Dir => Err(ConfinedError::NotAFile("directory")),
            Kind::Other(kind) => Err(ConfinedError::NotAFile(kind)),
        }
    }

    /// Reads the regular file `rel`, at most [`MAX_READ_BYTES`].
    pub fn read(&self, rel: &Path) -> Result<Vec<u8>, ConfinedError> {
        let (file, size) = self.open_regular(rel)?;
        if size > MAX_READ_BYTES {
            return Err(ConfinedError::TooLarge(size));
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        file.take(MAX_READ_BYTES + 1).read_to_end(&mut bytes).map_err(ConfinedError::Io)?;
        if bytes.len() as u64 > MAX_READ_BYTES {
            return Err(ConfinedError::TooLarge(bytes.len() as u64));
        }
        Ok(bytes)
    }

    /// Opens the directory holding `rel` (creating missing directories when `create`), and
    /// returns it with the final name.
    fn parent(&self, rel: &Path, create: bool) -> Result<(OwnedFd, PathBuf), ConfinedError> {
        let name = rel.file_name().ok_or(ConfinedError::NotAFile("directory"))?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        let dir_flags = OFlags::DIRECTORY | OFlags::RDONLY;
        match self.open_at(parent, dir_flags, Mode::empty()) {
            Ok(fd) => return Ok((fd, PathBuf::from(name))),
            Err(ConfinedError::Io(err)) if create && err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        // Create the missing directories one by one, each in the one before (opened beneath the root).
        let mut at = self.open_at(Path::new(""), dir_flags, Mode::empty())?;
        let mut prefix = PathBuf::new();
        for component in parent.components() {
            let Component::Normal(part) = component else { return Err(ConfinedError::Outside) };
            prefix.push(part);
            match rustix::fs::mkdirat(&at, part, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(err) => return Err(err.into()),
            }
            at = self.open_at(&prefix, dir_flags, Mode::empty())?;
        }
        Ok((at, PathBuf::from(name)))
    }

    /// Replaces (or creates) the file `rel` with `bytes`, atomically, keeping its mode. A final
    /// symlink is replaced, not followed; a directory is refused.
    pub fn write(&self, rel: &Path, bytes: &[u8]) -> Result<(), ConfinedError> {
        if self.protected.iter().any(|p| self.root_path.join(rel).starts_with(p)) {
            return Err(ConfinedError::Protected);
        }
        let (dir, name) = self.parent(rel, true)?;
        self.check_writable(&dir, &name)?;
        let mode = match rustix::fs::statat(&dir, &name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => match kind_of(&stat) {
                Kind::File => stat.st_mode & 0o777,
                Kind::Dir => return Err(ConfinedError::NotAFile("directory")),
                Kind::Other("symlink") => 0o644,
                Kind::Other(kind) => return Err(ConfinedError::NotAFile(kind)),
            },
            Err(rustix::io::Errno::NOENT) => 0o644,
            Err(err) => return Err(err.into()),
        };
        let tmp = temp_name(&name);
        let fd = rustix::fs::openat(
            &dir,
            &tmp,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        let result = (|| -> Result<(), ConfinedError> {
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))?;
            let mut file = std::fs::File::from(fd);
            file.write_all(bytes).map_err(ConfinedError::Io)?;
            rustix::fs::renameat(&dir, &tmp, &dir, &name)?;
            Ok(())
        })();
        if result.is_err() {
            let _ = rustix::fs::unlinkat(&dir, &tmp, AtFlags::empty());
        }
        result
    }

    /// Deletes the file `rel` (a symlink itself, never what it points to).
    pub fn remove(&self, rel: &Path) -> Result<(), ConfinedError> {
        let (dir, name) = self.parent(rel, false)?;
        self.check_writable(&dir, &name)?;
        rustix::fs::unlinkat(&dir, &name, AtFlags::empty())?;
        Ok(())
    }
}

fn kind_of(stat: &rustix::fs::Stat) -> Kind {
    match rustix::fs::FileType::from_raw_mode(stat.st_mode) {
        rustix::fs::FileType::RegularFile => Kind::File,
        rustix::fs::FileType::Directory => Kind::Dir,
        rustix::fs::FileType::Symlink => Kind::Other("symlink"),
        rustix::fs::FileType::Fifo => Kind::Other("FIFO"),
        rustix::fs::FileType::Socket => Kind::Other("socket"),
        rustix::fs::FileType::CharacterDevice | rustix::fs::FileType::BlockDevice => Kind::Other("device"),
        rustix::fs::FileType::Unknown => Kind::Other("special file"),
    }
}

fn temp_name(name: &Path) -> PathBuf {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    PathBuf::from(format!(".{}.rigor-{}", name.display(), &suffix[..8]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn world() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(ws.join("sub")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), "SECRET").unwrap();
        (dir, ws, outside)
    }

    #[test]
    fn reads_and_writes_stay_beneath_the_root() {
        let (_dir, ws, outside) = world();
        std::os::unix::fs::symlink(outside.join("secret"), ws.join("abs-link")).unwrap();
        std::os::unix::fs::symlink("../../outside", ws.join("sub/rel-dir")).unwrap();
        std::os::unix::fs::symlink("sub", ws.join("inside-link")).unwrap();
        let c = Confined::open(&ws).unwrap();
        for escape in ["abs-link", "sub/rel-dir/secret", "../outside/secret"] {
            assert!(matches!(c.read(Path::new(escape)), Err(ConfinedError::Outside)), "{escape}");
        }
        assert!(matches!(c.write(Path::new("sub/rel-dir/new"), b"x"), Err(ConfinedError::Outside)));
        assert!(!outside.join("new").exists());
        // Writing through a final symlink replaces the link, never its target.
        c.write(Path::new("abs-link"), b"mine").unwrap();
        assert_eq!(std::fs::read_to_string(outside.join("secret")).unwrap(), "SECRET");
        assert_eq!(std::fs::read_to_string(ws.join("abs-link")).unwrap(), "mine");
        // Symlinks that stay inside are followed; missing directories are created.
        c.write(Path::new("inside-link/a/b.txt"), b"deep").unwrap();
        assert_eq!(std::fs::read_to_string(ws.join("sub/a/b.txt")).unwrap(), "deep");
        assert_eq!(c.read(Path::new("sub/a/b.txt")).unwrap(), b"deep");
        assert!(matches!(c.relative(Path::new("/etc/passwd")), Err(ConfinedError::Outside)));
        assert!(matches!(c.relative(Path::new("sub/../../ws2")), Err(ConfinedError::Outside)));
        assert_eq!(c.relative(Path::new("sub/x/../y")).unwrap(), PathBuf::from("sub/y"));
        assert_eq!(c.relative(&ws.join("sub/z")).unwrap(), PathBuf::from("sub/z"));
    }

    #[test]
    fn protected_entries_are_read_only_however_they_are_reached() {
        let (_dir, ws, _outside) = world();
        std::fs::create_dir_all(ws.join(".git/hooks")).unwrap();
        std::fs::write(ws.join(".git/config"), "[core]\n").unwrap();
        std::os::unix::fs::symlink(".git", ws.join("g")).unwrap();
        let c = Confined::open(&ws).unwrap().protect(&[".git", ".rigor"]);
        for path in
            [".git/config", ".git/hooks/post-index-change", "g/config", "g/hooks/x", ".rigor/config.toml", ".git"]
        {
            assert!(matches!(c.write(Path::new(path), b"x"), Err(ConfinedError::Protected)), "{path}");
        }
        assert!(matches!(c.remove(Path::new("g/config")), Err(ConfinedError::Protected)));
        assert_eq!(std::fs::read_to_string(ws.join(".git/config")).unwrap(), "[core]\n");
        assert!(!ws.join(".git/hooks/x").exists() && !ws.join(".rigor").exists());
        assert_eq!(c.read(Path::new("g/config")).unwrap(), b"[core]\n", "reading stays allowed");
        c.write(Path::new("ordinary.txt"), b"ok").unwrap();
    }

    #[test]
    fn a_fifo_is_refused_without_blocking_and_modes_are_kept() {
        use std::os::unix::fs::PermissionsExt;
        let (_dir, ws, _outside) = world();
        let ok = std::process::Command::new("mkfifo").arg(ws.join("pipe")).status().unwrap().success();
        assert!(ok);
        let c = Confined::open(&ws).unwrap();
        assert!(matches!(c.read(Path::new("pipe")), Err(ConfinedError::NotAFile("FIFO"))));
        assert!(matches!(c.write(Path::new("pipe"), b"x"), Err(ConfinedError::NotAFile("FIFO"))));
        std::fs::write(ws.join("run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(ws.join("run.sh"), std::fs::Permissions::from_mode(0o6755)).unwrap();
        c.write(Path::new("run.sh"), b"#!/bin/sh\necho\n").unwrap();
        let mode = std::fs::metadata(ws.join("run.sh")).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o755, "executable kept, setuid/setgid dropped");
    }
}
