//! Why a test failed, read from its runner's output, and whether that failure reproduces an issue.
//!
//! A reproduction must fail *for the reason the issue describes*: an assertion, or an exception
//! the issue names (or any exception when the issue reports a crash without naming one). Errors
//! that mean the test itself is broken never count: it does not import, compile or parse, a name
//! in it is undefined, a fixture or the collection failed, or it ran out of time.

use std::sync::OnceLock;

use regex::Regex;
use rigor_testing::project::Runner;
use serde::{Deserialize, Serialize};

/// How one test failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Failure {
    /// An assertion failed (`AssertionError`, `assert_eq!`, `expect(…)`, `t.Errorf`).
    Assertion {
        /// The first line of the message.
        message: String,
    },
    /// An exception (or a panic that is not an assertion) escaped the test.
    Exception {
        /// Its type, e.g. `ValueError` (`panic` for a Rust panic).
        name: String,
        /// The first line of the message.
        message: String,
    },
    /// The test could not run: it does not import, parse or compile, a fixture failed, or the
    /// runner could not collect it.
    Broken {
        /// What the runner said.
        message: String,
    },
    /// It ran out of time.
    Timeout,
}

/// Exceptions that mean the test code itself is broken (unless the issue is about them).
const BROKEN_TEST: [&str; 6] =
    ["ImportError", "ModuleNotFoundError", "SyntaxError", "IndentationError", "NameError", "TabError"];

/// Words of an issue that report a crash without naming the exception.
const CRASH_WORDS: [&str; 8] = ["crash", "exception", "traceback", "raises", "error", "panic", "throws", "fails with"];

impl Failure {
    /// A short description for the proof and the model.
    pub fn describe(&self) -> String {
        match self {
            Failure::Assertion { message } => format!("AssertionError: {message}"),
            Failure::Exception { name, message } => format!("{name}: {message}"),
            Failure::Broken { message } => format!("the test could not run: {message}"),
            Failure::Timeout => "the test ran out of time".into(),
        }
    }

    /// `Ok` when this failure reproduces `issue`; otherwise why not, for the model.
    pub fn reproduces(&self, issue: &str) -> Result<(), String> {
        let named = |name: &str| {
            let short = name.rsplit('.').next().unwrap_or(name);
            issue.contains(short)
        };
        match self {
            Failure::Assertion { .. } => Ok(()),
            Failure::Exception { name, .. } if named(name) => Ok(()),
            Failure::Exception { name, .. } if BROKEN_TEST.contains(&name.as_str()) => Err(format!(
                "it fails with {name}, which means the test itself is broken (the issue does not mention {name}): \
                 fix the test so that it runs and checks the behaviour the issue describes"
            )),
            Failure::Exception { name, .. } => {
                let lower = issue.to_lowercase();
                if CRASH_WORDS.iter().any(|w| lower.contains(w)) {
                    Ok(())
                } else {
                    Err(format!(
                        "it fails with {name}, but the issue describes a wrong result, not an exception: assert \
                         the expected behaviour the issue states"
                    ))
                }
            }
            Failure::Broken { message } => Err(format!("the test could not run ({message}): fix the test itself")),
            Failure::Timeout => Err("the test ran out of time: a reproduction must finish quickly".into()),
        }
    }
}

/// How the test `id` failed in a log of `runner` (`None`: the log does not say). Go and the
/// JavaScript runners report failed expectations without a type: a failure there is an
/// assertion unless the log shows a panic.
pub fn failure_of(runner: Runner, log: &str, id: &str) -> Option<Failure> {
    match runner {
        Runner::Pytest => pytest_failure(log, id),
        Runner::Unittest | Runner::Django => unittest_failure(log, id),
        Runner::Cargo => cargo_failure(log, id),
        Runner::Go if log.contains("panic:") => {
            Some(Failure::Exception { name: "panic".into(), message: first_line(log.split("panic:").nth(1)?) })
        }
        Runner::Go | Runner::Jest | Runner::Mocha | Runner::Vitest => {
            Some(Failure::Assertion { message: format!("{id} failed") })
        }
    }
}

fn regex(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).unwrap_or_else(|e| panic!("bad pattern {pattern}: {e}")))
}

/// The first line of `text`, trimmed and cut to 200 characters.
fn first_line(text: &str) -> String {
    text.trim().lines().next().unwrap_or("").chars().take(200).collect()
}

/// An exception line of a Python traceback (`pkg.ValueError: message` or a bare name).
fn exception_line(line: &str) -> Option<(String, String)> {
    static EXC: OnceLock<Regex> = OnceLock::new();
    let re =
        regex(&EXC, r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Failure|Iteration))(?::\s*(.*))?$");
    let c = re.captures(line.trim())?;
    Some((c[1].to_string(), c.get(2).map_or(String::new(), |m| first_line(m.as_str()))))
}

fn python_failure(name: String, message: String) -> Failure {
    let short = name.rsplit('.').next().unwrap_or(&name).to_string();
    if short == "AssertionError" { Failure::Assertion { message } } else { Failure::Exception { name: short, message } }
}

/// How the test `name` failed in a unittest / Django runner log (`FAIL: name (…)` / `ERROR:`
/// blocks), or `None` when the log has no such block.
pub fn unittest_failure(log: &str, name: &str) -> Option<Failure> {
    let lines: Vec<&str> = log.lines().collect();
    let start = lines.iter().position(|l| {
        (l.starts_with("FAIL: ") || l.starts_with("ERROR: "))
            && l.split_whitespace().nth(1).is_some_and(|n| n == name || name.ends_with(&format!(".{n}")))
    })?;
    let block: Vec<&str> = lines[start + 1..]
        .iter()
        .skip_while(|l| l.starts_with("---") || l.trim().is_empty())
        .take_while(|l| !l.starts_with("=====") && !l.starts_with("-----"))
        .copied()
        .collect();
    if lines[start].starts_with("ERROR: ") && !block.iter().any(|l| l.starts_with("Traceback")) {
        return Some(Failure::Broken { message: first_line(&block.join("\n")) });
    }
    let (exc, message) = block.iter().rev().find_map(|l| exception_line(l))?;
    if lines[start].contains("(unittest.loader") || lines[start].contains("_FailedTest") {
        return Some(Failure::Broken { message: format!("{exc}: {message}") });
    }
    Some(python_failure(exc, message))
}

/// How the test `id` failed in a pytest log run with `-rA` (the short summary's
/// `FAILED id - Exc: message` / `ERROR id - …` lines), or `None`.
pub fn pytest_failure(log: &str, id: &str) -> Option<Failure> {
    for line in log.lines() {
        let Some((status, rest)) = line.split_once(' ') else { continue };
        let Some(tail) = rest.strip_prefix(id).filter(|t| t.is_empty() || t.starts_with(' ')) else { continue };
        let detail = tail.trim_start().strip_prefix("- ").unwrap_or("").trim();
        // The summary cuts the message to the terminal's width (or leaves it out): the test's
        // block of the report has it whole.
        let (exc, message) = pytest_block(log, id).unwrap_or_default();
        match status {
            "FAILED" if !exc.is_empty() => return Some(python_failure(exc, message)),
            "FAILED" => {
                return Some(match exception_line(detail) {
                    Some((exc, message)) => python_failure(exc, message),
                    None if detail.starts_with("assert") => Failure::Assertion { message: first_line(detail) },
                    None => Failure::Exception { name: "Failed".into(), message: first_line(detail) },
                });
            }
            "ERROR" if detail.is_empty() => return Some(Failure::Broken { message }),
            "ERROR" => return Some(Failure::Broken { message: first_line(detail) }),
            _ => {}
        }
    }
    if log.contains("ERROR collecting") || log.contains("errors during collection") {
        return Some(Failure::Broken { message: "pytest could not collect the tests".into() });
    }
    if let Some(line) = log.lines().find(|l| l.starts_with("ImportError while loading conftest")) {
        let cause = log.lines().find(|l| l.starts_with("E   ")).map(|l| l.trim_start_matches("E   ")).unwrap_or("");
        return Some(Failure::Broken { message: first_line(&format!("{line} {cause}")) });
    }
    None
}

/// The exception and message of `id`'s block in a pytest report (`____ Class.name ____` …
/// `E   message` … `path:line: ExceptionType`); the exception is empty when the block does not
/// end with one (a fixture error).
fn pytest_block(log: &str, id: &str) -> Option<(String, String)> {
    let title = id.split_once("::")?.1.replace("::", ".");
    let lines: Vec<&str> = log.lines().collect();
    let start = lines.iter().position(|l| {
        let t = l.trim_matches('_').trim();
        l.starts_with('_') && (t == title || t == format!("ERROR at setup of {title}"))
    })?;
    let block: Vec<&str> =
        lines[start + 1..].iter().take_while(|l| !l.starts_with("___") && !l.starts_with("===")).copied().collect();
    let message = block.iter().find_map(|l| l.strip_prefix("E ")).map(first_line).unwrap_or_default();
    let exc = block
        .iter()
        .rev()
        .find_map(|l| l.rsplit_once(": ").map(|(_, e)| e.trim()).filter(|e| exception_line(e).is_some()))
        .unwrap_or("");
    let message = match exception_line(&message) {
        Some((named, rest)) if named == exc => rest,
        _ => message,
    };
    Some((exc.to_string(), message))
}

/// How the test `name` failed in a `cargo test` log (`---- path::name stdout ----` then the
/// panic), or `None`. A build failure makes every test broken.
pub fn cargo_failure(log: &str, name: &str) -> Option<Failure> {
    if log.contains("error: could not compile") || log.lines().any(|l| l.starts_with("error[E")) {
        let first = log.lines().find(|l| l.starts_with("error")).unwrap_or("the code does not compile");
        return Some(Failure::Broken { message: first_line(first) });
    }
    let lines: Vec<&str> = log.lines().collect();
    let start = lines.iter().position(|l| {
        l.starts_with("---- ") && l.ends_with(" stdout ----") && {
            let reported = l.trim_start_matches("---- ").trim_end_matches(" stdout ----");
            reported == name || reported.rsplit("::").next() == Some(name)
        }
    })?;
    let panic_at = lines[start..].iter().position(|l| l.contains("panicked at"))? + start;
    let message = first_line(lines.get(panic_at + 1).copied().unwrap_or(""));
    if message.starts_with("assertion") {
        Some(Failure::Assertion { message })
    } else {
        Some(Failure::Exception { name: "panic".into(), message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNITTEST: &str = "test_compound (test_d.T.test_compound) ... FAIL\ntest_import (test_e.T.test_import) ... ERROR\n\n======================================================================\nERROR: test_import (test_e.T.test_import)\n----------------------------------------------------------------------\nTraceback (most recent call last):\n  File \"test_e.py\", line 5, in test_import\n    from durations import nothing\nImportError: cannot import name 'nothing' from 'durations'\n\n======================================================================\nFAIL: test_compound (test_d.T.test_compound)\n----------------------------------------------------------------------\nTraceback (most recent call last):\n  File \"test_d.py\", line 7, in test_compound\n    self.assertEqual(parse_duration(\"1h30m\"), 5400)\nAssertionError: 1800 != 5400\n\n----------------------------------------------------------------------\nRan 2 tests in 0.001s\n\nFAILED (failures=1, errors=1)\n";

    #[test]
    fn unittest_failures_are_read_from_their_blocks() {
        assert_eq!(
            unittest_failure(UNITTEST, "test_d.T.test_compound"),
            Some(Failure::Assertion { message: "1800 != 5400".into() })
        );
        let import = unittest_failure(UNITTEST, "test_e.T.test_import").unwrap();
        assert_eq!(
            import,
            Failure::Exception {
                name: "ImportError".into(),
                message: "cannot import name 'nothing' from 'durations'".into()
            }
        );
        assert!(import.reproduces("1h30m parses as 1800").is_err());
        assert!(unittest_failure(UNITTEST, "test_d.T.test_other").is_none());
    }

    #[test]
    fn pytest_summary_lines_name_the_exception() {
        let log = "=====\n\nFAILED tests/test_a.py::test_x - AssertionError: assert 0 == None\nFAILED tests/test_a.py::test_y - ValueError: bad unit 'h'\nERROR tests/test_a.py::test_z - fixture 'db' not found\nPASSED tests/test_a.py::test_w\n";
        assert!(matches!(pytest_failure(log, "tests/test_a.py::test_x"), Some(Failure::Assertion { .. })));
        assert_eq!(
            pytest_failure(log, "tests/test_a.py::test_y"),
            Some(Failure::Exception { name: "ValueError".into(), message: "bad unit 'h'".into() })
        );
        assert!(matches!(pytest_failure(log, "tests/test_a.py::test_z"), Some(Failure::Broken { .. })));
        assert!(pytest_failure(log, "tests/test_a.py::test_w").is_none());
        let conftest = "ImportError while loading conftest '/t/tests/conftest.py'.\nE   ModuleNotFoundError: No module named 'm'\n";
        let broken = pytest_failure(conftest, "tests/test_a.py::test_x");
        assert!(
            matches!(broken, Some(Failure::Broken { ref message }) if message.contains("No module named 'm'")),
            "{broken:?}"
        );
    }

    #[test]
    fn a_pytest_message_left_out_of_the_summary_is_read_from_the_report() {
        let log = "=== FAILURES ===\n___ TestD.test_compound_durations_of_hours_and_minutes ___\n\n    def test_x():\n>       assert p(\"1h30m\") == 5400\nE       AssertionError: assert 1800 == 5400\n\ntests/test_d.py:5: AssertionError\n___ ERROR at setup of test_f ___\nE       fixture 'db' not found\n=== short test summary info ===\nFAILED tests/test_d.py::TestD::test_compound_durations_of_hours_and_minutes\nERROR tests/test_d.py::test_f\n";
        let id = "tests/test_d.py::TestD::test_compound_durations_of_hours_and_minutes";
        assert_eq!(pytest_failure(log, id), Some(Failure::Assertion { message: "assert 1800 == 5400".into() }));
        assert_eq!(
            pytest_failure(log, "tests/test_d.py::test_f"),
            Some(Failure::Broken { message: "fixture 'db' not found".into() })
        );
        // An id is not a prefix of another.
        assert!(pytest_failure(log, "tests/test_d.py::TestD::test_compound").is_none());
    }

    #[test]
    fn cargo_panics_and_build_errors() {
        let log = "---- tests::parses stdout ----\n\nthread 'tests::parses' panicked at src/lib.rs:9:5:\nassertion `left == right` failed\n  left: 1\n right: 2\n---- tests::unwraps stdout ----\nthread 'tests::unwraps' panicked at src/lib.rs:12:5:\ncalled `Option::unwrap()` on a `None` value\n";
        assert!(matches!(cargo_failure(log, "parses"), Some(Failure::Assertion { .. })));
        assert!(matches!(cargo_failure(log, "unwraps"), Some(Failure::Exception { ref name, .. }) if name == "panic"));
        let broken = cargo_failure("error[E0425]: cannot find value `x`\nerror: could not compile `d`", "parses");
        assert!(matches!(broken, Some(Failure::Broken { .. })));
    }

    #[test]
    fn what_reproduces_an_issue() {
        let assertion = Failure::Assertion { message: "0 != None".into() };
        assert!(assertion.reproduces("empty input returns 0 instead of None").is_ok());
        let value = Failure::Exception { name: "ValueError".into(), message: "x".into() };
        assert!(value.reproduces("parse('') raises ValueError").is_ok(), "named");
        assert!(value.reproduces("it crashes on empty input").is_ok(), "a crash without a name");
        assert!(value.reproduces("1h30m gives 1800, expected 5400").is_err(), "a wrong value, not a crash");
        let name_error = Failure::Exception { name: "NameError".into(), message: "x".into() };
        assert!(name_error.reproduces("it crashes").is_err(), "a broken test even if the issue reports a crash");
        assert!(name_error.reproduces("NameError: name 'y' is not defined in parse").is_ok());
        assert!(Failure::Timeout.reproduces("slow").is_err());
        assert!(Failure::Broken { message: "fixture".into() }.reproduces("x").is_err());
    }
}
