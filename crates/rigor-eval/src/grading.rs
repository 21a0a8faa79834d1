//! Grading a test log against an instance's `FAIL_TO_PASS` and `PASS_TO_PASS`, as SWE-bench does.
//!
//! [`Grading::V4`] reproduces SWE-bench 4.1: a test passes when its status is PASSED or XFAIL and
//! fails when it is FAILED, ERROR or missing from the log (a SKIPPED test is neither and is left
//! out of both lists); the F2P and P2P rates count an empty denominator as 1; resolved means both
//! rates are 1. Repositories graded "fail only" (their parsers only see failures) count every test
//! not reported FAILED as a success. [`Grading::V5`] applies the later fixes: a skipped F2P test is
//! a failure, a skipped P2P test is kept (not a regression), truncated parametrised ids match by
//! prefix when unambiguous, and a log that claims no failure while the test command exited
//! non-zero is not trusted.
//!
//! Legitimate differences from the official verdict are listed in the crate README section of
//! ARCHITECTURE.md (environment resolution, missing large files of a partial mirror). This module
//! reads logs only; it runs nothing.

use serde::{Deserialize, Serialize};

use rigor_testing::parsers::{LogParser, StatusMap, TestStatus};

/// Marker before the test output (official).
pub const START_TEST_OUTPUT: &str = ">>>>> Start Test Output";
/// Marker after the test output (official).
pub const END_TEST_OUTPUT: &str = ">>>>> End Test Output";
/// Marker of the test command's exit code (official, v5).
pub const TEST_EXIT_CODE: &str = ">>>>> Test Exit Code";
/// Marker of a reset failure (official).
pub const RESET_FAILED: &str = ">>>>> Reset Failed";
/// Marker of a test run that errored (official).
pub const TESTS_ERROR: &str = ">>>>> Tests Errored";
/// Marker of a test run that timed out (official).
pub const TESTS_TIMEOUT: &str = ">>>>> Tests Timed Out";

/// Repositories whose parsers record failures only (official list).
pub const FAIL_ONLY_REPOS: [&str; 6] = [
    "chartjs/Chart.js",
    "processing/p5.js",
    "markedjs/marked",
    "bpmn-io/bpmn-js",
    "openlayers/openlayers",
    "eslint/eslint",
];

/// Which SWE-bench grading rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Grading {
    /// SWE-bench 4.1.
    #[default]
    V4,
    /// SWE-bench 5 fixes.
    V5,
}

impl std::str::FromStr for Grading {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "v4" | "4" | "v4.1" => Ok(Grading::V4),
            "v5" | "5" => Ok(Grading::V5),
            _ => Err(format!("unknown grading {s:?}: use v4 or v5")),
        }
    }
}

/// How tests count (official `eval_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum EvalType {
    /// Passes and failures both reported.
    #[default]
    PassAndFail,
    /// Only failures reported: anything not FAILED counts as a success.
    FailOnly,
}

impl EvalType {
    /// The eval type of an instance: its own field, else the fail-only repos rule.
    pub fn of(repo: &str, field: Option<&str>) -> EvalType {
        match field {
            Some("fail_only") => EvalType::FailOnly,
            Some("pass_and_fail") => EvalType::PassAndFail,
            _ if FAIL_ONLY_REPOS.contains(&repo) => EvalType::FailOnly,
            _ => EvalType::PassAndFail,
        }
    }
}

/// Successes and failures of one list of tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcomes {
    /// Tests that behaved as expected.
    pub success: Vec<String>,
    /// Tests that did not.
    pub failure: Vec<String>,
}

impl Outcomes {
    /// Successes over graded tests; 1 when nothing was graded (official).
    pub fn rate(&self) -> f64 {
        let total = self.success.len() + self.failure.len();
        if total == 0 { 1.0 } else { self.success.len() as f64 / total as f64 }
    }
}

/// The official `tests_status` object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestsStatus {
    /// `FAIL_TO_PASS` outcomes.
    #[serde(rename = "FAIL_TO_PASS")]
    pub fail_to_pass: Outcomes,
    /// `PASS_TO_PASS` outcomes.
    #[serde(rename = "PASS_TO_PASS")]
    pub pass_to_pass: Outcomes,
    /// Always empty here (the official report carries it).
    #[serde(rename = "FAIL_TO_FAIL")]
    pub fail_to_fail: Outcomes,
    /// Always empty here (the official report carries it).
    #[serde(rename = "PASS_TO_FAIL")]
    pub pass_to_fail: Outcomes,
}

/// Official resolution levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Resolution {
    /// Both rates 1.
    #[serde(rename = "RESOLVED_FULL")]
    Full,
    /// F2P strictly between 0 and 1, P2P 1.
    #[serde(rename = "RESOLVED_PARTIAL")]
    Partial,
    /// Otherwise.
    #[serde(rename = "RESOLVED_NO")]
    No,
}

impl TestsStatus {
    /// The resolution level.
    pub fn resolution(&self) -> Resolution {
        let (f2p, p2p) = (self.fail_to_pass.rate(), self.pass_to_pass.rate());
        if f2p == 1.0 && p2p == 1.0 {
            Resolution::Full
        } else if f2p > 0.0 && f2p < 1.0 && p2p == 1.0 {
            Resolution::Partial
        } else {
            Resolution::No
        }
    }
}

/// The status-map key for `case`: exact, or (v5) a unique-outcome prefix match of a truncated
/// parametrised id.
fn resolve<'a>(case: &'a str, map: &'a StatusMap, grading: Grading) -> Option<&'a TestStatus> {
    if let Some(status) = map.get(case) {
        return Some(status);
    }
    if grading == Grading::V5 && case.matches('[').count() > case.matches(']').count() {
        let matches: Vec<&TestStatus> = map.iter().filter(|(k, _)| k.starts_with(case)).map(|(_, v)| v).collect();
        let passing = |s: &TestStatus| matches!(s, TestStatus::Passed | TestStatus::Xfail);
        if let Some(first) = matches.first()
            && matches.iter().all(|s| passing(s) == passing(first))
        {
            return Some(first);
        }
    }
    None
}

/// Grades one list: `maintained` selects P2P semantics (under v5 a skip is kept).
fn grade_list(tests: &[String], map: &StatusMap, eval_type: EvalType, grading: Grading, maintained: bool) -> Outcomes {
    let mut out = Outcomes::default();
    for case in tests {
        let status = resolve(case, map, grading).copied();
        let (success, failure) = match eval_type {
            EvalType::FailOnly => (status != Some(TestStatus::Failed), status == Some(TestStatus::Failed)),
            EvalType::PassAndFail => {
                let passed = matches!(status, Some(TestStatus::Passed | TestStatus::Xfail));
                let skipped = status == Some(TestStatus::Skipped);
                let failed = matches!(status, None | Some(TestStatus::Failed | TestStatus::Error));
                match grading {
                    Grading::V4 => (passed, failed),
                    Grading::V5 if maintained => (passed || skipped, failed),
                    Grading::V5 => (passed, failed || skipped),
                }
            }
        };
        if success {
            out.success.push(case.clone());
        } else if failure {
            out.failure.push(case.clone());
        }
    }
    out
}

/// Grades a status map against the instance's lists.
pub fn grade(
    map: &StatusMap,
    fail_to_pass: &[String],
    pass_to_pass: &[String],
    eval_type: EvalType,
    grading: Grading,
) -> TestsStatus {
    TestsStatus {
        fail_to_pass: grade_list(fail_to_pass, map, eval_type, grading, false),
        pass_to_pass: grade_list(pass_to_pass, map, eval_type, grading, true),
        ..Default::default()
    }
}

/// Reads a whole evaluation log as `get_logs_eval` does: `None` when the log shows a failed
/// reset, errored or timed-out tests, lacks the output markers, or (v5) reports no failure while
/// the test command exited non-zero, or parsed nothing with no sign of a run.
pub fn status_map_of_log(log: &str, parser: LogParser, grading: Grading) -> Option<StatusMap> {
    if [crate::patch::APPLY_PATCH_FAIL, RESET_FAILED, TESTS_ERROR, TESTS_TIMEOUT].iter().any(|m| log.contains(m)) {
        return None;
    }
    let (_, after) = log.split_once(START_TEST_OUTPUT)?;
    let (section, _) = after.split_once(END_TEST_OUTPUT)?;
    let mut map = parser.parse(section);
    if map.is_empty() {
        map = parser.parse(log);
    }
    if grading == Grading::V5 {
        let code = log
            .split_once(TEST_EXIT_CODE)
            .and_then(|(_, rest)| rest.trim_start_matches([':', ' ']).split_whitespace().next()?.parse::<i32>().ok());
        let no_failure = !map.values().any(|s| matches!(s, TestStatus::Failed | TestStatus::Error));
        if code.is_some_and(|c| c != 0) && !map.is_empty() && no_failure {
            return None;
        }
    }
    Some(map)
}

/// Why a test run failed for reasons of the machine, not of the patch (SWE-bench 5's
/// environment-tier infrastructure failures, plus the network errors of tests that need it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InfraReason {
    /// A test needed the network (a name lookup or a connection failed).
    NetworkUnreachable,
    /// The machine ran out of memory.
    OutOfMemory,
    /// A test needed a display or a browser.
    DisplayUnavailable,
}

impl InfraReason {
    /// The name used in reports (SWE-bench 5's).
    pub fn as_str(self) -> &'static str {
        match self {
            InfraReason::NetworkUnreachable => "network_unreachable",
            InfraReason::OutOfMemory => "out_of_memory",
            InfraReason::DisplayUnavailable => "display_unavailable",
        }
    }

    /// What to do about it.
    pub fn remedy(self) -> &'static str {
        match self {
            InfraReason::NetworkUnreachable => {
                "the tests need the network, which test runs do not have: rerun with --network (the official \
                 harness's containers have it)"
            }
            InfraReason::OutOfMemory => "the tests ran out of memory: rerun with fewer --workers",
            InfraReason::DisplayUnavailable => "the tests need a display, which test runs do not have",
        }
    }
}

impl std::fmt::Display for InfraReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Signatures in a test log, first match wins.
const INFRA_SIGNATURES: [(InfraReason, &str); 12] = [
    (InfraReason::NetworkUnreachable, "Temporary failure in name resolution"),
    (InfraReason::NetworkUnreachable, "Could not resolve host"),
    (InfraReason::NetworkUnreachable, "Name or service not known"),
    (InfraReason::NetworkUnreachable, "Network is unreachable"),
    (InfraReason::NetworkUnreachable, "Failed to establish a new connection"),
    (InfraReason::NetworkUnreachable, "No address associated with hostname"),
    (InfraReason::OutOfMemory, "Cannot allocate memory"),
    (InfraReason::OutOfMemory, "MemoryError"),
    (InfraReason::OutOfMemory, "OutOfMemoryError"),
    (InfraReason::DisplayUnavailable, "cannot open display"),
    (InfraReason::DisplayUnavailable, "Missing X server"),
    (InfraReason::DisplayUnavailable, "unable to open X display"),
];

/// The infrastructure failure a test log shows, if any (read only for instances the grading
/// did not resolve: a resolved instance's log may mention anything).
pub fn infrastructure_failure(log: &str) -> Option<InfraReason> {
    INFRA_SIGNATURES.iter().find(|(_, needle)| log.contains(needle)).map(|(reason, _)| *reason)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn map(entries: &[(&str, TestStatus)]) -> StatusMap {
        entries.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn resolved_needs_all_f2p_and_p2p_with_missing_counting_as_failure() {
        let m = map(&[("a", TestStatus::Passed), ("b", TestStatus::Xfail)]);
        let full = grade(&m, &names(&["a"]), &names(&["b"]), EvalType::PassAndFail, Grading::V4);
        assert_eq!(full.resolution(), Resolution::Full);
        let missing = grade(&m, &names(&["a"]), &names(&["b", "c"]), EvalType::PassAndFail, Grading::V4);
        assert_eq!(missing.pass_to_pass.failure, names(&["c"]));
        assert_eq!(missing.resolution(), Resolution::No);
        let partial = grade(&m, &names(&["a", "z"]), &[], EvalType::PassAndFail, Grading::V4);
        assert_eq!(partial.resolution(), Resolution::Partial);
        assert_eq!(grade(&m, &[], &[], EvalType::PassAndFail, Grading::V4).resolution(), Resolution::Full);
    }

    #[test]
    fn skipped_f2p_resolves_under_v4_but_not_v5() {
        let m = map(&[("a", TestStatus::Skipped), ("p", TestStatus::Skipped)]);
        let v4 = grade(&m, &names(&["a"]), &names(&["p"]), EvalType::PassAndFail, Grading::V4);
        assert_eq!(v4.resolution(), Resolution::Full, "v4 leaves skipped tests out of both lists");
        let v5 = grade(&m, &names(&["a"]), &names(&["p"]), EvalType::PassAndFail, Grading::V5);
        assert_eq!(v5.fail_to_pass.failure, names(&["a"]));
        assert_eq!(v5.pass_to_pass.success, names(&["p"]));
    }

    #[test]
    fn fail_only_counts_anything_but_failed_as_success() {
        let m = map(&[("a", TestStatus::Failed)]);
        let s = grade(&m, &names(&["b"]), &names(&["a"]), EvalType::of("markedjs/marked", None), Grading::V4);
        assert_eq!(s.fail_to_pass.success, names(&["b"]));
        assert_eq!(s.pass_to_pass.failure, names(&["a"]));
    }

    #[test]
    fn truncated_parametrised_ids_match_by_prefix_under_v5() {
        let m = map(&[("t.py::test[log(photon s)]", TestStatus::Passed)]);
        let v5 = grade(&m, &names(&["t.py::test[log(photon"]), &[], EvalType::PassAndFail, Grading::V5);
        assert_eq!(v5.resolution(), Resolution::Full);
        let v4 = grade(&m, &names(&["t.py::test[log(photon"]), &[], EvalType::PassAndFail, Grading::V4);
        assert_eq!(v4.resolution(), Resolution::No);
    }

    #[test]
    fn network_errors_are_infrastructure_failures() {
        let log = "E   requests.exceptions.ConnectionError: HTTPConnectionPool(host='httpbin.org', port=80): Max \
                   retries exceeded (Caused by NewConnectionError('<urllib3.connection.HTTPConnection>: Failed to \
                   establish a new connection: [Errno -3] Temporary failure in name resolution'))";
        assert_eq!(infrastructure_failure(log), Some(InfraReason::NetworkUnreachable));
        assert!(InfraReason::NetworkUnreachable.remedy().contains("--network"));
        assert_eq!(infrastructure_failure("FAILED t.py::test_x - AssertionError: assert 1 == 2"), None);
    }

    #[test]
    fn log_markers_and_exit_code() {
        let log = format!("x\n{START_TEST_OUTPUT}\nPASSED a\n{END_TEST_OUTPUT}\n{TEST_EXIT_CODE}: 1\n");
        assert_eq!(status_map_of_log(&log, LogParser::Pytest, Grading::V4).unwrap().len(), 1);
        assert!(status_map_of_log(&log, LogParser::Pytest, Grading::V5).is_none());
        assert!(status_map_of_log("PASSED a\n", LogParser::Pytest, Grading::V4).is_none());
        let timed_out = format!("{START_TEST_OUTPUT}\nPASSED a\n{END_TEST_OUTPUT}\n{TESTS_TIMEOUT}\n");
        assert!(status_map_of_log(&timed_out, LogParser::Pytest, Grading::V4).is_none());
    }
}
