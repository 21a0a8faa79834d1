//! The on-disk index under `.rigor/index/` and its incremental update.
//!
//! The index is a SQLite database (`index.sqlite`) with one row per source file: path, language,
//! content hash, size, modification time, and the file's extracted facts (postcard-encoded).
//! [`Index::update`] walks the repository (gitignore-aware), compares each file's size and mtime
//! with its row, hashes only the files whose stat changed, and re-extracts only those whose hash
//! changed; rows of deleted files are removed. Re-indexing after editing one file therefore
//! parses one file and writes one row. The graph is linked in memory from the rows (`graph`).
//!
//! Safety: an update holds an exclusive lock on `.rigor/index/lock` (a second `rigor index`
//! waits), and all row changes of an update are one SQLite transaction in WAL mode: a crash
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
const SCHEMA_VERSION: i64 = 3;
/// Files larger than this are not indexed (generated or minified code).
const MAX_FILE_BYTES: u64 = 1_000_000;
/// Directories never indexed, even without a `.gitignore`.
const SKIP_DIRS: &[&str] = &[".git", ".rigor", "node_modules", "__pycache__", ".venv", "venv", ".tox", "target"];

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
    /// Wall time in milliseconds.
    pub elapsed_ms: f64,
}

/// The index of one repository: per-file facts, kept in memory and (optionally) on disk.
pub struct Index {
    root: PathBuf,
    dir: Option<PathBuf>,
    records: BTreeMap<String, FileRecord>,
    meta: RepoMeta,
    graph: Mutex<Option<Arc<CodeGraph>>>,
}

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
        let conn = Connection::open(&path).map_err(|e| self.db_err(e))?;
        conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(|e| self.db_err(e))?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| self.db_err(e))?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(|e| self.db_err(e))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(|e| self.db_err(e))?;
        if version != SCHEMA_VERSION {
            conn.execute_batch(
                "DROP TABLE IF EXISTS files;
                 CREATE TABLE files (path TEXT PRIMARY KEY, lang TEXT NOT NULL, hash BLOB NOT NULL,
                     size INTEGER NOT NULL, mtime INTEGER NOT NULL, facts BLOB NOT NULL);",
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
        tracing::debug!(files = self.records.len(), "index loaded");
        Ok(())
    }

    /// Brings the index up to date with the files under the root. Only new and changed files are
    /// parsed; only their rows (and those of deleted files) are written.
    pub fn update(&mut self) -> Result<UpdateStats, IndexError> {
        let start = Instant::now();
        // Rows are written from the files' current content, so a concurrent update that committed
        // while we waited for the lock is harmless: we at most re-write the same rows.
        let _lock = self.lock()?;
        let (found, meta) = walk(&self.root);
        tracing::debug!(files = found.len(), ms = start.elapsed().as_secs_f64() * 1000.0, "walked");
        let mut stats = UpdateStats::default();
        // Decide per file: unchanged (stat equal), or needs reading.
        let to_read: Vec<&(String, Lang, u64, i64)> = found
            .iter()
            .filter(|(path, _, size, mtime)| {
                self.records.get(path).is_none_or(|r| r.size != *size || r.mtime_ns != *mtime)
            })
            .collect();
        let root = &self.root;
        let records = &self.records;
        let read: Vec<(String, Option<FileRecord>, bool)> = to_read
            .par_iter()
            .filter_map(|(path, lang, size, mtime)| {
                let bytes = std::fs::read(root.join(path)).ok()?;
                let digest = Sha256::digest(&bytes);
                let mut hash = [0u8; 16];
                hash.copy_from_slice(&digest[..16]);
                if let Some(old) = records.get(path)
                    && old.hash == hash
                {
                    let rec = FileRecord { size: *size, mtime_ns: *mtime, ..old.clone() };
                    return Some((path.clone(), Some(rec), false));
                }
                let text = String::from_utf8_lossy(&bytes);
                let facts = extract(*lang, &text);
                let rec = FileRecord { lang: *lang, hash, size: *size, mtime_ns: *mtime, facts: Arc::new(facts) };
                Some((path.clone(), Some(rec), true))
            })
            .collect();
        let present: std::collections::HashSet<&str> = found.iter().map(|(p, ..)| p.as_str()).collect();
        let removed: Vec<String> = self.records.keys().filter(|p| !present.contains(p.as_str())).cloned().collect();
        let mut writes: Vec<(String, FileRecord, bool)> = Vec::new();
        for (path, rec, parsed) in read {
            let Some(rec) = rec else { continue };
            if parsed {
                if self.records.contains_key(&path) {
                    stats.changed += 1;
                } else {
                    stats.added += 1;
                }
            } else {
                stats.touched += 1;
            }
            writes.push((path, rec, parsed));
        }
        stats.removed = removed.len();
        tracing::debug!(read = to_read.len(), ms = start.elapsed().as_secs_f64() * 1000.0, "extracted");
        self.persist(&writes, &removed)?;
        tracing::debug!(ms = start.elapsed().as_secs_f64() * 1000.0, "persisted");
        let dirty = !writes.is_empty() || !removed.is_empty() || self.meta != meta;
        for path in &removed {
            self.records.remove(path);
        }
        for (path, rec, _) in writes {
            self.records.insert(path, rec);
        }
        self.meta = meta;
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

    fn persist(&self, writes: &[(String, FileRecord, bool)], removed: &[String]) -> Result<(), IndexError> {
        if writes.is_empty() && removed.is_empty() && self.db_path().is_some_and(|p| p.exists()) {
            return Ok(());
        }
        let Some(mut conn) = self.connect()? else { return Ok(()) };
        let tx = conn.transaction().map_err(|e| self.db_err(e))?;
        {
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO files (path, lang, hash, size, mtime, facts) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT(path) DO UPDATE SET lang = ?2, hash = ?3, size = ?4, mtime = ?5, facts = ?6",
                )
                .map_err(|e| self.db_err(e))?;
            let mut touch = tx
                .prepare_cached("UPDATE files SET size = ?2, mtime = ?3 WHERE path = ?1")
                .map_err(|e| self.db_err(e))?;
            for (path, rec, parsed) in writes {
                if *parsed {
                    let blob = postcard::to_stdvec(rec.facts.as_ref()).unwrap_or_default();
                    upsert
                        .execute(params![path, rec.lang.name(), &rec.hash[..], rec.size as i64, rec.mtime_ns, blob])
                        .map_err(|e| self.db_err(e))?;
                } else {
                    touch.execute(params![path, rec.size as i64, rec.mtime_ns]).map_err(|e| self.db_err(e))?;
                }
            }
            let mut delete = tx.prepare_cached("DELETE FROM files WHERE path = ?1").map_err(|e| self.db_err(e))?;
            for path in removed {
                delete.execute(params![path]).map_err(|e| self.db_err(e))?;
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

/// Source files under `root` (path, language, size, mtime), and the package manifests' facts.
fn walk(root: &Path) -> (Vec<(String, Lang, u64, i64)>, RepoMeta) {
    let found: Mutex<Vec<(String, Lang, u64, i64)>> = Mutex::default();
    let manifests: Mutex<Vec<String>> = Mutex::default();
    let walker = ignore::WalkBuilder::new(root)
        .hidden(true)
        .require_git(false)
        .threads(2)
        .filter_entry(|e| {
            !(e.file_type().is_some_and(|t| t.is_dir())
                && e.file_name().to_str().is_some_and(|n| SKIP_DIRS.contains(&n)))
        })
        .build_parallel();
    walker.run(|| {
        let found = &found;
        let manifests = &manifests;
        Box::new(move |entry| {
            let Ok(entry) = entry else { return ignore::WalkState::Continue };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                return ignore::WalkState::Continue;
            }
            let path = entry.path();
            let Ok(rel) = path.strip_prefix(root) else { return ignore::WalkState::Continue };
            let Some(rel) = rel.to_str().map(|s| s.replace('\\', "/")) else { return ignore::WalkState::Continue };
            let name = entry.file_name().to_str().unwrap_or_default();
            if name == "Cargo.toml" || name == "go.mod" {
                manifests.lock().unwrap_or_else(|p| p.into_inner()).push(rel.clone());
            }
            let Some(lang) = Lang::from_path(path) else { return ignore::WalkState::Continue };
            if name.ends_with(".min.js") {
                return ignore::WalkState::Continue;
            }
            let Ok(meta) = entry.metadata() else { return ignore::WalkState::Continue };
            if meta.len() > MAX_FILE_BYTES {
                return ignore::WalkState::Continue;
            }
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_nanos() as i64)
                .unwrap_or(0);
            found.lock().unwrap_or_else(|p| p.into_inner()).push((rel, lang, meta.len(), mtime));
            ignore::WalkState::Continue
        })
    });
    let mut found = found.into_inner().unwrap_or_else(|p| p.into_inner());
    found.sort();
    let mut manifests = manifests.into_inner().unwrap_or_else(|p| p.into_inner());
    manifests.sort();
    let mut meta = RepoMeta::default();
    for m in manifests {
        let Ok(text) = std::fs::read_to_string(root.join(&m)) else { continue };
        let dir = m.rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default();
        if m.ends_with("Cargo.toml") {
            if let Some(name) = cargo_package_name(&text) {
                meta.rust_crates.push((name.replace('-', "_"), dir));
            }
        } else if let Some(module) = text.lines().find_map(|l| l.trim().strip_prefix("module ")) {
            meta.go_modules.push((module.trim().trim_matches('"').to_string(), dir));
        }
    }
    (found, meta)
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
