//! An instance ready for its tests, and how a test patch's tests run in it.
//!
//! [`Prepared`] is what every later step of an instance's evaluation works with once its worktree
//! is at the base commit and its environment is ready: the instance, its spec and log parser, the
//! environment, the worktree, its log directory and the [`TestRunner`]. The agent works in it,
//! the patch grading and the SWT grading run tests in it. [`Prepared::run_tests`] writes the
//! official `eval.sh` ([`eval_script`]: the test files reset, the test patch applied, the test
//! command between the output markers, the test files reset again) and runs it through the
//! runner, in the sandbox. This module does not grade the log.

use std::path::Path;

use rigor_testing::directives::test_directives;
use rigor_testing::env::Environment;
use rigor_testing::parsers::LogParser;
use rigor_testing::runner::{TestCommand, TestRun, TestRunner};
use rigor_testing::spec::EnvSpec;

use crate::dataset::Instance;
use crate::grading::{END_TEST_OUTPUT, START_TEST_OUTPUT, TEST_EXIT_CODE, TESTS_TIMEOUT};
use crate::patch::modified_files;
use crate::repos::Worktree;

/// An instance with its worktree and environment ready (see the module documentation).
#[derive(Clone, Copy)]
pub struct Prepared<'a> {
    /// The instance.
    pub instance: &'a Instance,
    /// Its environment spec.
    pub spec: &'a EnvSpec,
    /// The parser of its test logs.
    pub parser: LogParser,
    /// Its environment.
    pub env: &'a Environment,
    /// Its worktree (at the base commit until a patch is applied).
    pub worktree: &'a Worktree,
    /// Its log directory.
    pub dir: &'a Path,
    /// How its tests run: the evaluation's time limit and sandbox.
    pub runner: &'a TestRunner,
}

impl Prepared<'_> {
    /// Writes `eval.sh` for `test_patch` as `dir/script_name` and runs it in the worktree with the
    /// environment active for `spec` (the instance's, or a variant of it, e.g. under coverage).
    /// Writable to it are the worktree, its private git directory (the script checks test files
    /// out) and the log directory (coverage data). A run past the time limit gets the official
    /// timeout marker in its log.
    pub async fn run_tests(&self, test_patch: &str, spec: &EnvSpec, script_name: &str) -> Result<TestRun, String> {
        let directives = test_directives(test_patch, spec.directives);
        let script = eval_script(&self.worktree.dir, &self.instance.base_commit, test_patch, spec, &directives);
        let script_path = self.dir.join(script_name);
        std::fs::write(&script_path, &script).map_err(|e| format!("cannot write {}: {e}", script_path.display()))?;
        let command = TestCommand::script(&script_path, &self.worktree.dir)
            .in_environment(self.env, spec)
            .git_writable()
            .writable(self.dir);
        let mut run = self.runner.run(&command).await?;
        if run.timed_out {
            run.log.push_str(&format!("\n{TESTS_TIMEOUT} after {}s\n", self.runner.timeout.as_secs()));
        }
        Ok(run)
    }
}

/// The test part of an evaluation, as a bash script (the official layout, with rigor's paths).
pub fn eval_script(
    worktree: &Path,
    base_commit: &str,
    test_patch: &str,
    spec: &EnvSpec,
    directives: &[String],
) -> String {
    let files = modified_files(test_patch);
    let quoted: Vec<String> = files.iter().map(|f| shell_quote(f)).collect();
    let mut s = String::from("#!/bin/bash\nset -uxo pipefail\n");
    s.push_str(&format!("cd {}\n", shell_quote(&worktree.display().to_string())));
    for line in &spec.eval_commands {
        s.push_str(line);
        s.push('\n');
    }
    if !quoted.is_empty() {
        s.push_str(&format!("git checkout {base_commit} {}\n", quoted.join(" ")));
    }
    let mut body = test_patch.to_string();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    s.push_str(&format!(
        "git apply -v - <<'EOF_RIGOR_114329324912'\n{body}EOF_RIGOR_114329324912\n[ $? -eq 0 ] || echo '>>>>> Test Patch Apply Failed'\n"
    ));
    let tests: Vec<String> = directives.iter().map(|d| shell_quote(d)).collect();
    s.push_str(&format!(
        ": '{START_TEST_OUTPUT}'\n{} {}\nRIGOR_TEST_EXIT_CODE=$?\n: '{END_TEST_OUTPUT}'\n",
        spec.test_cmd,
        tests.join(" ")
    ));
    s.push_str(&format!("echo \"{TEST_EXIT_CODE}: $RIGOR_TEST_EXIT_CODE\"\n"));
    if !quoted.is_empty() {
        s.push_str(&format!("git checkout {base_commit} {}\n", quoted.join(" ")));
    }
    s
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=+@,".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
