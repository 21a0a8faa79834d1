//! The on-disk index under `.rigor/index/` and its incremental update.
//!
//! The index is a SQLite database (`index.sqlite`) with one row per source file: path, language,
//! content hash, size, modification time, and the file's extracted facts (postcard-encoded).
//! [`Index::update`] finds the source files, compares each file's size and mtime with its row,
//! hashes only the files whose stat changed, and re-extracts only those whose hash changed; rows
//! of deleted files are removed. Re-indexing after editing one file therefore parses one file and
//! writes one row. The graph is linked in memory from the rows (`graph`).
//!
//! What is indexed: source files of the known languages under the root, as git would see them
//! (ignore files obeyed), but build and environment directories ([`SKIP_DIRS`]), vendored
//! third-party code ([`VENDOR_DIRS`]), minified JavaScript and files over [`MAX_FILE_BYTES`].
//!
//! Finding the files: a full walk (gitignore-aware) records the modification time of every
//! directory it entered and the stat of every file that decides what is indexed without being
//! indexed (ignore files, package manifests, files skipped for their size, the package marker a
//! skipped vendor directory lacks). The next update stats those and the indexed files only; if
//! every directory and watched file is as recorded, no file can have appeared or disappeared
//! (that changes its directory's mtime), so no directory is read. Anything else falls back to the
//! full walk. A stat younger than [`RACY_NS`] at scan time is not trusted (a change within the
//! file system's timestamp granularity would leave it equal), as git does with racily clean
//! entries: such a file is hashed again next time, such a directory forces the next walk.
//!
//! Safety: an update holds an exclusive lock on `.rigor/index/lock` (a second `rigor index`
//! waits), and all row changes of an update are one SQLite transaction (WAL mode; the first
//! build of a new file goes through a rollback journal, which writes each page once): a crash
//! mid-write leaves the previous committed index, never a half-written one (SQLite's journal is the
//! write-then-rename of a database). A database with another schema version is rebuilt.
//!
//! This module knows nothing of retrieval, the agent, or printing.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, UNIX_EPOCH};

use rayon::prelude::*;
use rusqlite::{Connection, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::extract::{FileFacts, extract};
use crate::graph::{CodeGraph, RepoMeta, SourceFile};
use crate::lang::Lang;

/// Bump when the facts format or extraction changes: older databases are rebuilt.
const SCHEMA_VERSION: i64 = 5;
/// Files larger than this are not indexed (generated or minified code).
const MAX_FILE_BYTES: u64 = 1_000_000;
/// How recent a stat may be before it is not trusted to reveal the next change (see the module
/// documentation): coarser than any file system's timestamp granularity in use (FAT's 2 s).
const RACY_NS: i64 = 2_000_000_000;
/// Directories never indexed, even without a `.gitignore`.
const SKIP_DIRS: &[&str] = &[".git", ".rigor", "node_modules", "__pycache__", ".venv", "venv", ".tox", "target"];
/// Directories of vendored third-party code (GitHub linguist's convention): copies of other
/// projects (Go modules, bundled JavaScript libraries, C dependencies), not the repository's own
/// code, so not indexed (still found by regex search). A directory of these names that is a
/// Python package (`__init__.py`) is the project's own (an app may well be called `vendors`).
const VENDOR_DIRS: &[&str] = &["vendor", "vendors", "third_party", "third-party", "thirdparty"];
/// The file whose appearance makes a vendor directory the project's own (see [`VENDOR_DIRS`]).
const PACKAGE_MARKER: &str = "__init__.py";

/// Errors of the index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// File system error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// Database error.
    #[error("index database {path}: {source}. Delete the directory .rigor/index to rebuild it.")]
    Db {
        /// The database file.
        path: String,
        /// The error.
        source: rusqlite::Error,
    },
}

/// What is known about one indexed file.
#[derive(Debug, Clone)]
pub struct FileRecord {
    /// Language.
    pub lang: Lang,
    /// First 16 bytes of the SHA-256 of the content.
    pub hash: [u8; 16],
    /// Size in bytes.
    pub size: u64,
    /// Modification time in nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Extracted facts.
    pub facts: Arc<FileFacts>,
}

/// What an update did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UpdateStats {
    /// Source files in the index after the update.
    pub files: usize,
    /// Files parsed because they are new.
    pub added: usize,
    /// Files parsed because their content changed.
    pub changed: usize,
    /// Rows removed because the file is gone.
    pub removed: usize,
    /// Files whose stat changed but whose content did not.
    pub touched: usize,
    /// Whether the directory tree was walked (otherwise only recorded stats were checked).
    pub walked: bool,
    /// Wall time in milliseconds.
    pub elapsed_ms: f64,
}

/// The index of one repository: per-file facts, kept in memory and (optionally) on disk.
pub struct Index {
    root: PathBuf,
    dir: Option<PathBuf>,
    records: BTreeMap<String, FileRecord>,
    meta: RepoMeta,
    scan: Scan,
    graph: Mutex<Option<Arc<CodeGraph>>>,
}

/// What the last full walk saw besides the indexed files: enough to tell, by `stat` alone,
/// that another walk would find the same files. Empty when the next update must walk.
#[derive(Debug, Clone, Default, PartialEq)]
struct Scan {
    /// Every directory entered (relative path, `""` for the root) and its mtime.
    dirs: Vec<(String, i64)>,
    /// Files that decide what is indexed (ignore files, manifests, oversized sources; relative
    /// or absolute paths) with their stat; [`ABSENT`] when the file did not exist.
    watched: Vec<(String, Stat)>,
}

impl Scan {
    /// The package manifests among the watched files (relative paths, sorted).
    fn manifests(&self) -> impl Iterator<Item = &str> {
        self.watched
            .iter()
            .map(|(path, _)| path.as_str())
            .filter(|path| !path.starts_with('/') && is_manifest(path.rsplit('/').next().unwrap_or(path)))
    }
}

/// Size and mtime of a file, or [`ABSENT`].
type Stat = (u64, i64);
/// The stat of a watched file that does not exist.
const ABSENT: Stat = (0, -1);
/// A directory or file mtime recorded as never equal to a real one.
const UNTRUSTED: i64 = i64::MIN;

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").field("root", &self.root).field("files", &self.records.len()).finish()
    }
}

/// The index directory of a repository: `<root>/.rigor/index`.
pub fn index_dir(root: &Path) -> PathBuf {
    root.join(".rigor").join("index")
}

impl Index {
    /// An index of `root` kept only in memory (the agent's workspace: nothing is written there).
    pub fn in_memory(root: impl Into<PathBuf>) -> Index {
        Index {
            root: root.into(),
            dir: None,
            records: BTreeMap::new(),
            meta: RepoMeta::default(),
            scan: Scan::default(),
            graph: Mutex::default(),
        }
    }

    /// Opens the persisted index of `root` (`.rigor/index`), loading what is stored; call
    /// [`Index::update`] to bring it up to date.
    pub fn open(root: impl Into<PathBuf>) -> Result<Index, IndexError> {
        let root = root.into();
        let dir = index_dir(&root);
        let mut index = Index { dir: Some(dir), ..Index::in_memory(root) };
        index.load()?;
        Ok(index)
    }

    /// The repository root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The indexed files.
    pub fn records(&self) -> &BTreeMap<String, FileRecord> {
        &self.records
    }

    fn db_path(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join("index.sqlite"))
    }

    fn db_err(&self, source: rusqlite::Error) -> IndexError {
        IndexError::Db { path: self.db_path().map(|p| p.display().to_string()).unwrap_or_default(), source }
    }

    fn connect(&self) -> Result<Option<Connection>, IndexError> {
        let Some(path) = self.db_path() else { return Ok(None) };
        if let Some(dir) = &self.dir {
            std::fs::create_dir_all(dir)
                .map_err(|source| IndexError::Io { context: format!("cannot create {}", dir.display()), source })?;
            // The index is machine state, never part of the user's repository or of a patch.
            let ignore = dir.join(".gitignore");
            if !ignore.exists() {
                let _ = std::fs::write(&ignore, "*\n");
            }
        }
        let fresh = !path.exists();
        let conn = Connection::open(&path).map_err(|e| self.db_err(e))?;
        conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(|e| self.db_err(e))?;
        // A new index is written once, through a rollback journal (a crash leaves the empty
        // file); the log of WAL mode, which writes every page twice (log, then checkpoint),
        // serves the small updates that follow.
        let journal = if fresh { "DELETE" } else { "WAL" };
        conn.pragma_update(None, "journal_mode", journal).map_err(|e| self.db_err(e))?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(|e| self.db_err(e))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| self.db_err(e))?;
        if version != SCHEMA_VERSION {
            conn.execute_batch(
                "DROP TABLE IF EXISTS files;
                 DROP TABLE IF EXISTS scan;
                 CREATE TABLE files (path TEXT PRIMARY KEY, lang TEXT NOT NULL, hash BLOB NOT NULL,
                     size INTEGER NOT NULL, mtime INTEGER NOT NULL, facts BLOB NOT NULL);
                 CREATE TABLE scan (path TEXT NOT NULL, dir INTEGER NOT NULL, size INTEGER NOT NULL,
                     mtime INTEGER NOT NULL);",
            )
            .map_err(|e| self.db_err(e))?;
            conn.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(|e| self.db_err(e))?;
        }
        Ok(Some(conn))
    }

    fn load(&mut self) -> Result<(), IndexError> {
        let Some(path) = self.db_path() else { return Ok(()) };
        if !path.exists() {
            return Ok(());
        }
        let Some(conn) = self.connect()? else { return Ok(()) };
        let mut stmt =
            conn.prepare("SELECT path, lang, hash, size, mtime, facts FROM files").map_err(|e| self.db_err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, Vec<u8>>(5)?,
                ))
            })
            .map_err(|e| self.db_err(e))?;
        let mut raw = Vec::new();
        for row in rows {
            raw.push(row.map_err(|e| self.db_err(e))?);
        }
        let decoded: Vec<(String, FileRecord)> = raw
            .into_par_iter()
            .filter_map(|(path, lang, hash, size, mtime, facts)| {
                let lang = Lang::from_path(Path::new(&path)).filter(|l| l.name() == lang)?;
                let facts: FileFacts = postcard::from_bytes(&facts).ok()?;
                let hash: [u8; 16] = hash.try_into().ok()?;
                Some((path, FileRecord { lang, hash, size: size as u64, mtime_ns: mtime, facts: Arc::new(facts) }))
            })
            .collect();
        self.records = decoded.into_iter().collect();
        self.scan = Self::load_scan(&conn).map_err(|e| self.db_err(e))?;
        // Not stored: read again from the manifests the last walk found.
        self.meta = repo_meta(&self.root, self.scan.manifests());
        tracing::debug!(files = self.records.len(), dirs = self.scan.dirs.len(), "index loaded");
        Ok(())
    }

    fn load_scan(conn: &Connection) -> rusqlite::Result<Scan> {
        let mut scan = Scan::default();
        let mut stmt = conn.prepare("SELECT path, dir, size, mtime FROM scan")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
        })?;
        for row in rows {
            let (path, dir, size, mtime) = row?;
            if dir {
                scan.dirs.push((path, mtime));
            } else {
                scan.watched.push((path, (size as u64, mtime)));
            }
        }
        Ok(scan)
    }

    /// The source files, found from the recorded scan by stat alone, or `None` when a directory
    /// or watched file changed (or nothing is recorded) and the tree must be walked.
    fn rescan(&self) -> Option<Vec<Found>> {
        if self.scan.dirs.is_empty() {
            return None;
        }
        let root = &self.root;
        let dirs_same = self.scan.dirs.par_iter().all(|(dir, mtime)| {
            *mtime != UNTRUSTED
                && std::fs::symlink_metadata(root.join(dir)).is_ok_and(|m| m.is_dir() && mtime_ns(&m) == *mtime)
        });
        if !dirs_same || !self.scan.watched.par_iter().all(|(path, stat)| *stat == watched_stat(&root.join(path))) {
            return None;
        }
        let found: Option<Vec<Found>> = self
            .records
            .par_iter()
            .map(|(path, rec)| {
                let meta = std::fs::symlink_metadata(root.join(path)).ok().filter(|m| m.is_file())?;
                (meta.len() <= MAX_FILE_BYTES).then(|| (path.clone(), rec.lang, meta.len(), mtime_ns(&meta)))
            })
            .collect();
        found
    }

    /// Brings the index up to date with the files under the root. Only new and changed files are
    /// parsed; only their rows (and those of deleted files) are written.
    pub fn update(&mut self) -> Result<UpdateStats, IndexError> {
        let start = Instant::now();
        // Rows are written from the files' current content, so a concurrent update that committed
        // while we waited for the lock is harmless: we at most re-write the same rows.
        let _lock = self.lock()?;
        let mut stats = UpdateStats::default();
        let (found, meta, scan) = match self.rescan() {
            // The manifests are watched: unchanged, so is what they declare.
            Some(found) => (found, self.meta.clone(), None),
            None => {
                let (found, meta, scan) = walk(&self.root);
                stats.walked = true;
                (found, meta, Some(scan))
            }
        };
        tracing::debug!(
            files = found.len(),
            walked = stats.walked,
            ms = start.elapsed().as_secs_f64() * 1000.0,
            "found"
        );
        // Decide per file: unchanged (stat equal), or needs reading.
        let to_read: Vec<&Found> = found
            .iter()
            .filter(|(path, _, size, mtime)| {
                self.records.get(path).is_none_or(|r| r.size != *size || r.mtime_ns != *mtime)
            })
            .collect();
        let present: std::collections::HashSet<&str> = found.iter().map(|(p, ..)| p.as_str()).collect();
        let removed: Vec<String> = self.records.keys().filter(|p| !present.contains(p.as_str())).cloned().collect();
        let nothing_to_write =
            to_read.is_empty() && removed.is_empty() && scan.as_ref().is_none_or(|s| *s == self.scan);
        let mut conn = match nothing_to_write && self.db_path().is_some_and(|p| p.exists()) {
            true => None,
            false => self.connect()?,
        };
        let tx = conn.as_mut().map(Connection::transaction).transpose().map_err(|e| self.db_err(e))?;
        // Files are read, hashed, parsed and encoded in parallel while this thread writes the
        // rows that are ready, in the one transaction of the update.
        // Files are opened beneath the root (the agent's shell may swap a file or a directory
        // for a symlink or a FIFO while the index is refreshed): nothing outside is ever read.
        let confined = rigor_tools::confined::Confined::open(&self.root).ok();
        let root = &confined;
        let records = &self.records;
        let to_read_count = to_read.len();
        let mut read: Vec<Row> = Vec::with_capacity(to_read_count);
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Row>(64);
        std::thread::scope(|scope| {
            scope.spawn(move || {
                to_read.par_iter().for_each_with(sender, |sender, file| {
                    if let Some(row) = read_one(root, records, file) {
                        let _ = sender.send(row);
                    }
                });
            });
            for mut row in receiver {
                distrust_recent(&mut row.1);
                if let Some(tx) = &tx {
                    self.write_row(tx, &row)?;
                }
                read.push(row);
            }
            Ok::<(), IndexError>(())
        })?;
        // A file that could not be read is not in the index, and a rescan would not look for it.
        let scan = scan.map(|scan| if read.len() < to_read_count { Scan::default() } else { scan });
        for (path, _, blob) in &read {
            match (blob.is_some(), self.records.contains_key(path)) {
                (true, true) => stats.changed += 1,
                (true, false) => stats.added += 1,
                (false, _) => stats.touched += 1,
            }
        }
        stats.removed = removed.len();
        tracing::debug!(read = to_read_count, ms = start.elapsed().as_secs_f64() * 1000.0, "extracted");
        if let Some(tx) = tx {
            self.finish_write(tx, &removed, scan.as_ref().filter(|scan| **scan != self.scan))?;
        }
        tracing::debug!(ms = start.elapsed().as_secs_f64() * 1000.0, "persisted");
        let dirty = !read.is_empty() || !removed.is_empty() || self.meta != meta;
        for path in &removed {
            self.records.remove(path);
        }
        for (path, rec, _) in read {
            self.records.insert(path, rec);
        }
        self.meta = meta;
        if let Some(scan) = scan {
            self.scan = scan;
        }
        if dirty && let Ok(mut g) = self.graph.lock() {
            *g = None;
        }
        stats.files = self.records.len();
        stats.elapsed_ms = start.elapsed().as_secs_f64() * 1000.0;
        Ok(stats)
    }

    fn lock(&self) -> Result<Option<File>, IndexError> {
        let Some(dir) = &self.dir else { return Ok(None) };
        std::fs::create_dir_all(dir)
            .map_err(|source| IndexError::Io { context: format!("cannot create {}", dir.display()), source })?;
        let path = dir.join("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| IndexError::Io { context: format!("cannot open {}", path.display()), source })?;
        file.lock().map_err(|source| IndexError::Io { context: format!("cannot lock {}", path.display()), source })?;
        Ok(Some(file))
    }

    /// Writes one row: the encoded facts of a parsed file, or only the new stat of a touched one.
    fn write_row(&self, tx: &rusqlite::Transaction<'_>, (path, rec, blob): &Row) -> Result<(), IndexError> {
        match blob {
            Some(blob) => tx
                .prepare_cached(
                    "INSERT INTO files (path, lang, hash, size, mtime, facts) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT(path) DO UPDATE SET lang = ?2, hash = ?3, size = ?4, mtime = ?5, facts = ?6",
                )
                .and_then(|mut upsert| {
                    upsert.execute(params![path, rec.lang.name(), &rec.hash[..], rec.size as i64, rec.mtime_ns, blob])
                }),
            None => tx
                .prepare_cached("UPDATE files SET size = ?2, mtime = ?3 WHERE path = ?1")
                .and_then(|mut touch| touch.execute(params![path, rec.size as i64, rec.mtime_ns])),
        }
        .map(drop)
        .map_err(|e| self.db_err(e))
    }

    /// Deletes the rows of `removed`, replaces the recorded scan when given, and commits.
    fn finish_write(
        &self,
        tx: rusqlite::Transaction<'_>,
        removed: &[String],
        scan: Option<&Scan>,
    ) -> Result<(), IndexError> {
        {
            let mut delete = tx.prepare_cached("DELETE FROM files WHERE path = ?1").map_err(|e| self.db_err(e))?;
            for path in removed {
                delete.execute(params![path]).map_err(|e| self.db_err(e))?;
            }
            if let Some(scan) = scan {
                tx.execute("DELETE FROM scan", []).map_err(|e| self.db_err(e))?;
                let mut insert = tx
                    .prepare_cached("INSERT INTO scan (path, dir, size, mtime) VALUES (?1, ?2, ?3, ?4)")
                    .map_err(|e| self.db_err(e))?;
                for (path, mtime) in &scan.dirs {
                    insert.execute(params![path, true, 0, mtime]).map_err(|e| self.db_err(e))?;
                }
                for (path, (size, mtime)) in &scan.watched {
                    insert.execute(params![path, false, *size as i64, mtime]).map_err(|e| self.db_err(e))?;
                }
            }
        }
        tx.commit().map_err(|e| self.db_err(e))
    }

    /// The linked code graph of the indexed files (built on first use after an update).
    pub fn graph(&self) -> Arc<CodeGraph> {
        let mut guard = self.graph.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(g) = guard.as_ref() {
            return Arc::clone(g);
        }
        let files: Vec<SourceFile> = self
            .records
            .iter()
            .map(|(path, r)| SourceFile { path: path.clone(), lang: r.lang, facts: Arc::clone(&r.facts) })
            .collect();
        let start = Instant::now();
        let g = Arc::new(CodeGraph::build(files, &self.meta));
        tracing::debug!(ms = start.elapsed().as_secs_f64() * 1000.0, "graph linked");
        *guard = Some(Arc::clone(&g));
        g
    }

    /// Size of the on-disk index in bytes (database and its WAL).
    pub fn disk_bytes(&self) -> u64 {
        let Some(dir) = &self.dir else { return 0 };
        std::fs::read_dir(dir)
            .map(|entries| entries.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
            .unwrap_or(0)
    }
}

/// Modification time in nanoseconds since the epoch (0 when unknown).
fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

/// The stat of a watched file, [`ABSENT`] when there is none.
fn watched_stat(path: &Path) -> Stat {
    std::fs::metadata(path).map(|m| (m.len(), mtime_ns(&m))).unwrap_or(ABSENT)
}

/// Now, in nanoseconds since the epoch, less [`RACY_NS`]: stats younger than this are not trusted.
fn racy_limit() -> i64 {
    let now = std::time::SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0);
    now - RACY_NS
}

/// Marks the stat of a file changed too recently to be trusted, so that the next update hashes
/// it again (see the module documentation).
fn distrust_recent(rec: &mut FileRecord) {
    if rec.mtime_ns > racy_limit() {
        rec.mtime_ns = UNTRUSTED;
    }
}

/// A source file found by a walk or rescan: path, language, size, mtime.
type Found = (String, Lang, u64, i64);

/// A file read by an update: its record, and its encoded facts when it was parsed (`None` when
/// only its stat changed).
type Row = (String, FileRecord, Option<Vec<u8>>);

/// Reads, hashes and (if its content changed) parses and encodes one file; `None` when it cannot
/// be read.
fn read_one(
    root: &Option<rigor_tools::confined::Confined>,
    records: &BTreeMap<String, FileRecord>,
    file: &Found,
) -> Option<Row> {
    let (path, lang, size, mtime) = file;
    let bytes = root.as_ref()?.read(Path::new(path)).ok()?;
    let digest = Sha256::digest(&bytes);
    let mut hash = [0u8; 16];
    hash.copy_from_slice(&digest[..16]);
    if let Some(old) = records.get(path)
        && old.hash == hash
    {
        let rec = FileRecord { size: *size, mtime_ns: *mtime, ..old.clone() };
        return Some((path.clone(), rec, None));
    }
    // `from_utf8` validates faster than the lossy decoder, which only non-UTF-8 files need.
    let text = match std::str::from_utf8(&bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(&bytes),
    };
    let facts = extract(*lang, &text);
    let blob = postcard::to_stdvec(&facts).unwrap_or_default();
    let rec = FileRecord { lang: *lang, hash, size: *size, mtime_ns: *mtime, facts: Arc::new(facts) };
    Some((path.clone(), rec, Some(blob)))
}

/// Ignore files outside the walked tree that the walk obeys: those of the root's parents, the
/// repository's `info/exclude`, and git's global excludes and configuration.
fn outside_ignore_files(root: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = Vec::new();
    for dir in root.ancestors().skip(1) {
        files.push(dir.join(".gitignore"));
        files.push(dir.join(".ignore"));
    }
    files.push(root.join(".git/info/exclude"));
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    if let Some(config) = config {
        files.push(config.join("git/ignore"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        files.push(PathBuf::from(home).join(".gitconfig"));
    }
    files
}

/// Source files under `root` (path, language, size, mtime), the package manifests' facts, and
/// what a later [`Index::rescan`] needs to tell that nothing was added or removed.
fn walk(root: &Path) -> (Vec<Found>, RepoMeta, Scan) {
    let found: Mutex<Vec<Found>> = Mutex::default();
    let manifests: Mutex<Vec<String>> = Mutex::default();
    let scan: Mutex<Scan> = Mutex::default();
    // Vendor directories left out, by path: watched for the package marker appearing.
    let vendored: Arc<Mutex<Vec<PathBuf>>> = Arc::default();
    let skipped = Arc::clone(&vendored);
    let walker = ignore::WalkBuilder::new(root)
        .hidden(true)
        .require_git(false)
        .threads(2)
        .filter_entry(move |e| {
            if !e.file_type().is_some_and(|t| t.is_dir()) {
                return true;
            }
            let Some(name) = e.file_name().to_str() else { return true };
            if SKIP_DIRS.contains(&name) {
                return false;
            }
            if VENDOR_DIRS.contains(&name) {
                let marker = e.path().join(PACKAGE_MARKER);
                if !marker.exists() {
                    skipped.lock().unwrap_or_else(|p| p.into_inner()).push(marker);
                    return false;
                }
            }
            true
        })
        .build_parallel();
    walker.run(|| {
        let found = &found;
        let manifests = &manifests;
        let scan = &scan;
        Box::new(move |entry| {
            let Ok(entry) = entry else { return ignore::WalkState::Continue };
            let path = entry.path();
            let Ok(rel) = path.strip_prefix(root) else { return ignore::WalkState::Continue };
            let Some(rel) = rel.to_str().map(|s| s.replace('\\', "/")) else { return ignore::WalkState::Continue };
            if entry.file_type().is_some_and(|t| t.is_dir()) {
                let Ok(meta) = entry.metadata() else { return ignore::WalkState::Continue };
                let ignores: Vec<(String, Stat)> = [".gitignore", ".ignore"]
                    .iter()
                    .filter_map(|name| {
                        let stat = watched_stat(&path.join(name));
                        let rel = if rel.is_empty() { name.to_string() } else { format!("{rel}/{name}") };
                        (stat != ABSENT).then_some((rel, stat))
                    })
                    .collect();
                let mut scan = scan.lock().unwrap_or_else(|p| p.into_inner());
                scan.dirs.push((rel, mtime_ns(&meta)));
                scan.watched.extend(ignores);
                return ignore::WalkState::Continue;
            }
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                return ignore::WalkState::Continue;
            }
            let name = entry.file_name().to_str().unwrap_or_default();
            let manifest = is_manifest(name);
            let lang = Lang::from_path(path).filter(|_| !name.ends_with(".min.js"));
            if !manifest && lang.is_none() {
                return ignore::WalkState::Continue;
            }
            let Ok(meta) = entry.metadata() else { return ignore::WalkState::Continue };
            let stat = (meta.len(), mtime_ns(&meta));
            if manifest {
                manifests.lock().unwrap_or_else(|p| p.into_inner()).push(rel.clone());
                scan.lock().unwrap_or_else(|p| p.into_inner()).watched.push((rel.clone(), stat));
            }
            let Some(lang) = lang else { return ignore::WalkState::Continue };
            if meta.len() > MAX_FILE_BYTES {
                // Indexed again if it shrinks: watched, since that leaves its directory unchanged.
                scan.lock().unwrap_or_else(|p| p.into_inner()).watched.push((rel, stat));
                return ignore::WalkState::Continue;
            }
            found.lock().unwrap_or_else(|p| p.into_inner()).push((rel, lang, stat.0, stat.1));
            ignore::WalkState::Continue
        })
    });
    let mut found = found.into_inner().unwrap_or_else(|p| p.into_inner());
    found.sort();
    let mut manifests = manifests.into_inner().unwrap_or_else(|p| p.into_inner());
    manifests.sort();
    let meta = repo_meta(root, manifests.iter().map(String::as_str));
    let mut scan = scan.into_inner().unwrap_or_else(|p| p.into_inner());
    for marker in vendored.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        if let Some(rel) = marker.strip_prefix(root).ok().and_then(Path::to_str) {
            scan.watched.push((rel.replace('\\', "/"), ABSENT));
        }
    }
    for file in outside_ignore_files(root) {
        scan.watched.push((file.to_string_lossy().into_owned(), watched_stat(&file)));
    }
    // Stats taken within the racy window cannot reveal a change made in the same tick.
    let limit = racy_limit();
    for mtime in scan.dirs.iter_mut().map(|(_, m)| m).chain(scan.watched.iter_mut().map(|(_, (_, m))| m)) {
        if *mtime > limit {
            *mtime = UNTRUSTED;
        }
    }
    scan.dirs.sort();
    scan.watched.sort();
    (found, meta, scan)
}

/// Whether a file name is a package manifest that names a module namespace.
fn is_manifest(name: &str) -> bool {
    name == "Cargo.toml" || name == "go.mod"
}

/// The crates and Go modules declared by the manifests at `manifests` (relative paths, sorted).
fn repo_meta<'m>(root: &Path, manifests: impl Iterator<Item = &'m str>) -> RepoMeta {
    let mut meta = RepoMeta::default();
    for m in manifests {
        let Ok(text) = std::fs::read_to_string(root.join(m)) else { continue };
        let dir = m.rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default();
        if m.ends_with("Cargo.toml") {
            if let Some(name) = cargo_package_name(&text) {
                meta.rust_crates.push((name.replace('-', "_"), dir));
            }
        } else if let Some(module) = text.lines().find_map(|l| l.trim().strip_prefix("module ")) {
            meta.go_modules.push((module.trim().trim_matches('"').to_string(), dir));
        }
    }
    meta
}

/// The `name` of the `[package]` table of a Cargo.toml.
fn cargo_package_name(text: &str) -> Option<String> {
    let mut in_package = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
            continue;
        }
        if in_package
            && let Some(rest) = line.strip_prefix("name")
            && let Some(value) = rest.trim_start().strip_prefix('=')
        {
            return Some(value.trim().trim_matches('"').to_string());
        }
    }
    None
}

/// Counts of records per language (for `rigor index` output).
pub fn language_counts(index: &Index) -> Vec<(&'static str, usize)> {
    let mut counts: HashMap<&'static str, usize> = HashMap::new();
    for r in index.records().values() {
        *counts.entry(r.lang.name()).or_default() += 1;
    }
    let mut v: Vec<(&'static str, usize)> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v
}
