//! The proof as a record: `proof.json` beside a run's `patch.diff`, and the lines the CLI shows.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::failure::Failure;

/// Version of the `proof.json` layout (fields are only added within a version).
pub const PROOF_SCHEMA_VERSION: u32 = 1;

/// What a run delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ProofStatus {
    /// The reproduction failed on the original code for the reason, passes on the
    /// patched code, and no related test that passed before fails after.
    Proven,
    /// A patch without that evidence (the proof says what failed).
    #[default]
    Unproven,
    /// No patch: the issue is not actionable, or no trustworthy patch was found.
    Abstained,
}

impl ProofStatus {
    /// The name used in records and output.
    pub fn as_str(self) -> &'static str {
        match self {
            ProofStatus::Proven => "proven",
            ProofStatus::Unproven => "unproven",
            ProofStatus::Abstained => "abstained",
        }
    }

    /// The exit code of `rigor run` for this result: proven 0, abstained 3, unproven 6.
    pub fn exit_code(self) -> u8 {
        match self {
            ProofStatus::Proven => 0,
            ProofStatus::Abstained => 3,
            ProofStatus::Unproven => EXIT_UNPROVEN,
        }
    }
}

/// Files, added lines and removed lines of a unified diff.
pub fn diff_counts(patch: &str) -> (usize, usize, usize) {
    use rigor_git::diff::LineKind;
    let files = rigor_git::diff::parse(patch);
    let lines = files.iter().flat_map(|f| &f.hunks).flat_map(|h| &h.lines);
    let (added, removed) = lines.fold((0, 0), |(a, r), l| match l.kind {
        LineKind::Added => (a + 1, r),
        LineKind::Removed => (a, r + 1),
        LineKind::Context => (a, r),
    });
    (files.len(), added, removed)
}

/// Exit code of `rigor run` when the patch is unproven.
pub const EXIT_UNPROVEN: u8 = 6;

/// One test as run by the proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestResult {
    /// The runner's id of the test.
    pub id: String,
    /// `PASSED`, `FAILED`, `ERROR`, `SKIPPED`, `XFAIL`, or `MISSING` when the run did not report it.
    pub status: String,
    /// How it failed, when it did and the output says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

impl TestResult {
    /// Whether the test passed.
    pub fn passed(&self) -> bool {
        self.status == "PASSED" || self.status == "XFAIL"
    }
}

/// A file of the proof with its content hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashedFile {
    /// Path in the repository.
    pub path: String,
    /// SHA-256 of its content (hex).
    pub sha256: String,
}

/// The reproduction: tests the agent wrote that fail on the original code and pass on the fix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reproduction {
    /// The test files holding it.
    pub files: Vec<HashedFile>,
    /// Its tests on the original code.
    pub before: Vec<TestResult>,
    /// Its tests on the patched code.
    pub after: Vec<TestResult>,
    /// An excerpt of the original-code run's output.
    pub before_excerpt: String,
}

/// The related existing tests, run on the original and on the patched code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Regressions {
    /// The test files they come from.
    pub files: Vec<String>,
    /// Status by test id on the original code.
    pub before: BTreeMap<String, String>,
    /// Status by test id on the patched code.
    pub after: BTreeMap<String, String>,
    /// Passed before, not after: a regression.
    pub broken: Vec<String>,
    /// Already failing on the original code (reported, not held against the patch).
    pub failing_before: Vec<String>,
}

/// A command the proof ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandRecord {
    /// `original` or `patched`.
    pub code: String,
    /// The command line.
    pub command: String,
    /// Its exit code (`None`: killed or timed out).
    pub exit_code: Option<i32>,
    /// Seconds it took.
    pub secs: f64,
}

/// The evidence behind a delivered patch (`proof.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Proof {
    /// [`PROOF_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The verdict.
    pub status: ProofStatus,
    /// Why, in a sentence (what failed, for an unproven patch).
    pub reason: String,
    /// The reproduction, when one was found.
    pub reproduction: Option<Reproduction>,
    /// The related tests.
    pub regressions: Regressions,
    /// The fix: the patch without the test files.
    pub fix_patch: String,
    /// The tests the agent added or changed.
    pub test_patch: String,
    /// The runner and interpreter used.
    pub environment: String,
    /// Every command, in order.
    pub commands: Vec<CommandRecord>,
    /// Finish attempts the proof sent back to the agent before this one.
    pub rejections: u32,
    /// With several candidates: each one, and why this one was chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidates: Option<crate::candidates::Ranking>,
    /// Seconds spent proving.
    pub secs: f64,
}

impl Proof {
    /// Writes `proof.json` into `run_dir`.
    pub fn write(&self, run_dir: &Path) -> std::io::Result<std::path::PathBuf> {
        let path = run_dir.join("proof.json");
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// Reads a `proof.json`.
    pub fn read(path: &Path) -> Result<Proof, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{} is not a proof: {e}", path.display()))
    }

    /// The lines `rigor run` shows under `result: …`.
    pub fn summary_lines(&self) -> Vec<(String, String)> {
        let mut lines = Vec::new();
        if let Some(r) = &self.reproduction {
            let ids: Vec<&str> = r.before.iter().map(|t| t.id.as_str()).collect();
            let why = r.before.iter().find_map(|t| t.failure.as_ref()).map(Failure::describe).unwrap_or_default();
            let after = if r.after.iter().all(TestResult::passed) { "passes after" } else { "still fails after" };
            let before = if why.is_empty() { "failed before".to_string() } else { format!("failed before ({why})") };
            lines.push(("reproduction".into(), format!("{}   {before}, {after}", ids.join(", "))));
        }
        let g = &self.regressions;
        if !g.before.is_empty() {
            let passed = |m: &BTreeMap<String, String>| m.values().filter(|s| *s == "PASSED" || *s == "XFAIL").count();
            let mut line = format!(
                "{} related tests: {} passed before, {} passed after ({})",
                g.before.len(),
                passed(&g.before),
                passed(&g.after),
                g.files.join(", ")
            );
            if !g.broken.is_empty() {
                line.push_str(&format!("; broken: {}", g.broken.join(", ")));
            }
            lines.push(("regressions".into(), line));
        } else if self.reproduction.is_some() {
            lines.push(("regressions".into(), "no related existing tests found".into()));
        }
        if let Some(ranking) = self.candidates.as_ref().filter(|r| r.candidates.len() > 1) {
            lines.push(("candidates".into(), crate::candidates::summary_line(ranking)));
        }
        let (files, added, removed) = diff_counts(&self.fix_patch);
        lines.push((
            "diff".into(),
            format!("{files} file(s) changed, {added} insertion(s)(+), {removed} deletion(s)(-)"),
        ));
        lines
    }
}
