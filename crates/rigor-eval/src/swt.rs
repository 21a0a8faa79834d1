//! SWT-bench mode: grading generated tests instead of patches ([1] in the research notes).
//!
//! The prediction is a test patch. For each instance it is applied to the original code and run
//! ("before"), then the gold patch is applied and the same tests run again ("after"), under
//! coverage.py when the test command is pytest. Reported: whether the test patch applies (W),
//! the tests that go fail→pass, fail→fail, pass→pass and pass→fail, success S (at least one
//! fail→pass test and no test failing after the fix), and the change coverage ΔC: the share of
//! the gold patch's executable added lines that the generated tests execute. (SWT-bench also
//! counts removed lines against the original code; rigor counts added lines of the fixed code
//! only.) This module does not decide what a prediction is: the harness calls it with the
//! [`Prepared`] instance; its figures are recorded as a [`SwtResult`] in the instance's record.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rigor_testing::env::{Environment, rigor_cache_dir};
use rigor_testing::parsers::{LogParser, StatusMap, TestStatus};
use rigor_testing::process::Cmd;
use rigor_testing::runner::TestRun;

use crate::grading::{self, Grading};
use crate::prepared::Prepared;
use crate::record::{InstanceLog, InstanceResult, InstanceStatus, SwtResult};

/// Grades a generated test patch (see the module docs) under `grading`'s rules of log reading.
pub(crate) async fn grade_tests(
    at: &Prepared<'_>,
    grading: Grading,
    test_patch: &str,
    log: &mut InstanceLog,
    result: &mut InstanceResult,
) -> Result<(), String> {
    let Prepared { instance, spec, parser, env, worktree, dir, .. } = *at;
    std::fs::write(dir.join("patch.diff"), test_patch).map_err(|e| e.to_string())?;
    let check_file = dir.join("tests.diff");
    std::fs::write(&check_file, ensure_newline(test_patch)).map_err(|e| e.to_string())?;
    let check = Cmd::new("git", &["apply", "--check", &check_file.to_string_lossy()], &worktree.dir)
        .run()
        .await
        .map_err(|e| e.to_string())?;
    let mut swt = SwtResult { applied: check.success(), ..Default::default() };
    if !swt.applied {
        log.text(&check.output);
        result.status = InstanceStatus::PatchFailed;
        result.message = "the generated tests do not apply to the original code".into();
        result.swt = Some(swt);
        return Ok(());
    }
    let before = at.run_tests(test_patch, spec, "eval_before.sh").await?;
    result.timings.tests += before.elapsed.as_secs_f64();
    let t = Instant::now();
    let gold = crate::patch::apply_patch(&worktree.dir, &instance.patch, &dir.join("gold.diff"))
        .await
        .map_err(|e| e.to_string())?;
    result.timings.apply += t.elapsed().as_secs_f64();
    if !gold.ok {
        return Err("the gold patch does not apply".into());
    }
    // "after" runs under coverage when the runner is pytest and coverage.py can be had.
    let coverage = if spec.test_cmd.trim_start().starts_with("pytest") { coverage_dir(env).await } else { None };
    let data_file = dir.join(".coverage");
    let mut after_spec = spec.clone();
    if let Some(cov) = &coverage {
        after_spec.test_cmd =
            format!("python -m coverage run --data-file={} -m {}", data_file.display(), spec.test_cmd.trim_start());
        let path = env.test_env(spec, &worktree.dir).into_iter().find(|(k, _)| k == "PYTHONPATH").map(|(_, v)| v);
        after_spec.env.insert("PYTHONPATH".into(), format!("{}:{}", path.unwrap_or_default(), cov.display()));
    }
    let after = at.run_tests(test_patch, &after_spec, "eval_after.sh").await?;
    result.timings.tests += after.elapsed.as_secs_f64();
    let mut text = format!("=== before the fix ===\n{}\n=== after the fix ===\n{}", before.log, after.log);
    if before.timed_out || after.timed_out {
        text.push_str("\n(timed out)\n");
    }
    std::fs::write(dir.join("test_output.txt"), text).map_err(|e| e.to_string())?;
    if before.timed_out || after.timed_out {
        result.status = InstanceStatus::Timeout;
        result.swt = Some(swt);
        return Ok(());
    }
    let (b, a) = (status_map(&before, parser, grading), status_map(&after, parser, grading));
    let names: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
    for name in names {
        let (was, is) = (passing(b.get(name)), passing(a.get(name)));
        let bucket = match (was, is) {
            (false, true) => &mut swt.fail_to_pass,
            (false, false) => &mut swt.fail_to_fail,
            (true, true) => &mut swt.pass_to_pass,
            (true, false) => &mut swt.pass_to_fail,
        };
        bucket.push(name.clone());
    }
    swt.success = !swt.fail_to_pass.is_empty() && swt.fail_to_fail.is_empty() && swt.pass_to_fail.is_empty();
    if let Some(cov) = &coverage {
        swt.change_coverage = change_coverage(env, cov, &data_file, &worktree.dir, &instance.patch, dir).await;
    }
    result.status = if swt.success { InstanceStatus::Resolved } else { InstanceStatus::Unresolved };
    result.swt = Some(swt);
    Ok(())
}

/// The status map of a test run's log, or an empty map when it is unusable.
fn status_map(run: &TestRun, parser: LogParser, grading: Grading) -> StatusMap {
    grading::status_map_of_log(&run.log, parser, grading).unwrap_or_default()
}

/// Whether a status counts as passing.
fn passing(status: Option<&TestStatus>) -> bool {
    status.is_some_and(|s| s.passes())
}

fn ensure_newline(text: &str) -> String {
    if text.ends_with('\n') { text.to_string() } else { format!("{text}\n") }
}

/// A directory holding coverage.py for the environment's Python (installed once, cached).
async fn coverage_dir(env: &Environment) -> Option<PathBuf> {
    let venv = env.venv.as_ref()?;
    let python = venv.join("bin/python");
    let version = env.python.as_deref().unwrap_or("py").split('.').take(2).collect::<Vec<_>>().join(".");
    let target = rigor_cache_dir().join("tools").join(format!("coverage-py{version}"));
    if target.join("coverage").is_dir() {
        return Some(target);
    }
    let parent = target.parent()?.to_path_buf();
    std::fs::create_dir_all(&parent).ok()?;
    let staging = parent.join(format!(".coverage-py{version}-{}", std::process::id()));
    let done = Cmd::new(
        &python.to_string_lossy(),
        &["-m", "pip", "install", "-q", "--target", &staging.to_string_lossy(), "coverage"],
        &parent,
    )
    .run()
    .await
    .ok()?;
    if !done.success() {
        let _ = std::fs::remove_dir_all(&staging);
        return None;
    }
    let _ = std::fs::rename(&staging, &target);
    let _ = std::fs::remove_dir_all(&staging);
    target.join("coverage").is_dir().then_some(target)
}

/// Added line numbers (in the new file) per file of a unified diff.
pub fn added_lines(diff: &str) -> BTreeMap<String, BTreeSet<u64>> {
    let mut out: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for file in rigor_git::diff::parse(diff) {
        let Some(path) = file.new_path else { continue };
        for line in file.hunks.iter().flat_map(|h| &h.lines) {
            if line.kind == rigor_git::diff::LineKind::Added {
                out.entry(path.clone()).or_default().insert(u64::from(line.new));
            }
        }
    }
    out
}

async fn change_coverage(
    env: &Environment,
    cov: &Path,
    data: &Path,
    worktree: &Path,
    gold: &str,
    dir: &Path,
) -> Option<f64> {
    let python = env.venv.as_ref()?.join("bin/python");
    let json = dir.join("coverage.json");
    let done = Cmd::new(
        &python.to_string_lossy(),
        &["-m", "coverage", "json", &format!("--data-file={}", data.display()), "-o", &json.to_string_lossy()],
        worktree,
    )
    .env("PYTHONPATH", cov.display().to_string())
    .run()
    .await
    .ok()?;
    if !done.success() {
        return None;
    }
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).ok()?).ok()?;
    let files = report.get("files")?.as_object()?;
    let lines = |v: &serde_json::Value, key: &str| -> BTreeSet<u64> {
        v.get(key).and_then(|l| l.as_array()).map(|a| a.iter().filter_map(|x| x.as_u64()).collect()).unwrap_or_default()
    };
    let (mut executable, mut covered) = (0usize, 0usize);
    for (path, added) in added_lines(gold) {
        let entry = files.get(&path).or_else(|| files.iter().find(|(k, _)| k.ends_with(&path)).map(|(_, v)| v));
        let Some(entry) = entry else {
            continue;
        };
        let (run, missing) = (lines(entry, "executed_lines"), lines(entry, "missing_lines"));
        for l in added {
            if run.contains(&l) {
                executable += 1;
                covered += 1;
            } else if missing.contains(&l) {
                executable += 1;
            }
        }
    }
    (executable > 0).then(|| covered as f64 / executable as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_lines_follow_hunk_numbers() {
        let diff = "--- a/m.py\n+++ b/m.py\n@@ -1,3 +1,4 @@\n a\n-b\n+B\n+C\n c\n@@ -10,2 +11,2 @@\n x\n+y\n";
        let lines = added_lines(diff);
        assert_eq!(lines["m.py"].iter().copied().collect::<Vec<_>>(), vec![2, 3, 12]);
    }
}
