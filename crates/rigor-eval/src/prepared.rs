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
use rigor_testing::process::shell_quote;
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
    /// The commit its worktree starts from: the base commit, or the commit of what the
    /// per-instance install's setup commands changed on top of it.
    pub start: &'a str,
    /// Its log directory.
    pub dir: &'a Path,
    /// How its tests run: the evaluation's time limit and sandbox.
    pub runner: &'a TestRunner,
    /// The dataset row's own `eval_script`, when it runs the instance's tests instead of
    /// rigor's (see [`dataset_script`]).
    pub official: Option<&'a str>,
}

impl Prepared<'_> {
    /// Writes `eval.sh` for `test_patch` as `dir/script_name` and runs it in the worktree with the
    /// environment active for `spec` (the instance's, or a variant of it, e.g. under coverage).
    /// Writable to it are the worktree, its private git directory (the script checks test files
    /// out) and the log directory (coverage data). A run past the time limit gets the official
    /// timeout marker in its log.
    pub async fn run_tests(&self, test_patch: &str, spec: &EnvSpec, script_name: &str) -> Result<TestRun, String> {
        let directives = test_directives(test_patch, spec.directives);
        let script = match self.official.filter(|_| test_patch == self.instance.test_patch) {
            Some(official) => dataset_script(official, &self.worktree.dir),
            None => eval_script(&self.worktree.dir, self.start, test_patch, spec, &directives),
        };
        // tox-current-env's fake environment, made to start this environment's interpreter.
        self.env
            .prepare_tox_current_env(&script, &self.worktree.dir)
            .map_err(|e| format!("cannot prepare tox --current-env in {}: {e}", self.worktree.dir.display()))?;
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

/// Lines of an official `eval_script` that only make sense in its container: conda, global git
/// configuration, informational git output, locale generation.
fn container_only(line: &str) -> bool {
    let line = line.trim();
    [
        "source /opt/miniconda3",
        "conda activate",
        "git config --global",
        "git status",
        "git show",
        "git -c core.fileMode=false diff",
    ]
    .iter()
    .any(|p| line.starts_with(p))
        || line.contains("locale-gen")
}

/// The install commands of an official `eval_script`: what it runs between its informational
/// `git diff` and the first reset of the test files (e.g. `python -m pip install -e .`).
pub fn dataset_installs(script: &str) -> Vec<String> {
    let lines: Vec<&str> = script.lines().collect();
    let Some(from) = lines.iter().position(|l| l.starts_with("git -c core.fileMode=false diff")) else {
        return Vec::new();
    };
    lines[from + 1..]
        .iter()
        .take_while(|l| !["git checkout", "git apply", "rm -f"].iter().any(|p| l.starts_with(p)))
        .filter(|l| !l.trim().is_empty() && !container_only(l))
        .map(|l| l.to_string())
        .collect()
}

/// An official `eval_script` adapted to run in `worktree` with rigor's environment active: its
/// container-only lines dropped (conda, global git configuration, locale generation), `/testbed`
/// replaced by the worktree, `en_US.UTF-8` by `C.UTF-8` (the locale a machine has), its install
/// commands dropped (rigor ran them as the per-instance install before the patch), and the test
/// command's exit code reported after the output markers. The test patch's here-document is
/// kept byte for byte.
pub fn dataset_script(script: &str, worktree: &Path) -> String {
    let installs = dataset_installs(script);
    let place = shell_quote(&worktree.display().to_string());
    let mut out = String::new();
    let mut heredoc: Option<String> = None;
    let mut after_start = false;
    for line in script.lines() {
        if let Some(end) = &heredoc {
            out.push_str(line);
            out.push('\n');
            if line == end {
                heredoc = None;
            }
            continue;
        }
        if let Some((_, tail)) = line.split_once("<<'") {
            heredoc = tail.split('\'').next().map(str::to_owned);
        }
        if container_only(line) || installs.iter().any(|i| i == line) {
            continue;
        }
        let line = line.replace("/testbed", &place).replace("en_US.UTF-8", "C.UTF-8");
        out.push_str(&line);
        out.push('\n');
        if after_start {
            out.push_str("RIGOR_TEST_EXIT_CODE=$?\n");
            after_start = false;
        }
        if line.trim() == format!(": '{START_TEST_OUTPUT}'") {
            after_start = true;
        }
        if line.trim() == format!(": '{END_TEST_OUTPUT}'") {
            out.push_str(&format!("echo \"{TEST_EXIT_CODE}: ${{RIGOR_TEST_EXIT_CODE:-}}\"\n"));
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of a published SWE-bench Verified `eval_script` (astropy-12907's, shortened).
    const OFFICIAL: &str = "#!/bin/bash\nset -uxo pipefail\nsource /opt/miniconda3/bin/activate\nconda activate testbed\n\
cd /testbed\ngit config --global --add safe.directory /testbed\ncd /testbed\ngit status\ngit show\n\
git -c core.fileMode=false diff d16b\nsource /opt/miniconda3/bin/activate\nconda activate testbed\n\
python -m pip install -e .[test] --verbose\ngit checkout d16b a/t.py\ngit apply -v - <<'EOF_114329324912'\n\
--- a/a/t.py\n+++ b/a/t.py\n+# cd /testbed; conda activate testbed\nEOF_114329324912\n\
: '>>>>> Start Test Output'\npytest -rA a/t.py\n: '>>>>> End Test Output'\ngit checkout d16b a/t.py\n";

    #[test]
    fn an_official_eval_script_runs_in_the_worktree_without_conda_and_without_its_install() {
        assert_eq!(dataset_installs(OFFICIAL), ["python -m pip install -e .[test] --verbose"]);
        let script = dataset_script(OFFICIAL, Path::new("/w/my tree"));
        assert!(script.contains("cd '/w/my tree'\n"), "{script}");
        for gone in ["\nconda activate testbed\n", "git config --global", "git status", "pip install", "/testbed\n"] {
            assert!(!script.contains(gone), "{gone:?} left in:\n{script}");
        }
        assert!(
            script.contains("+# cd /testbed; conda activate testbed\nEOF_114329324912\n"),
            "the test patch is kept byte for byte"
        );
        assert!(script.contains("pytest -rA a/t.py\nRIGOR_TEST_EXIT_CODE=$?\n"), "{script}");
        assert!(
            script.contains(": '>>>>> End Test Output'\necho \">>>>> Test Exit Code: ${RIGOR_TEST_EXIT_CODE:-}\"\n"),
            "{script}"
        );
        assert!(script.ends_with("git checkout d16b a/t.py\n"));
    }
}
