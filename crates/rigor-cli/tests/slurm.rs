//! `rigor eval --executor slurm` on a real single-node Slurm (munged, slurmctld and slurmd started
//! by `scripts/slurm-local.sh`, which installs the Debian packages when missing): the same dataset
//! gives exactly the per-instance results of `--executor local`; an array task cancelled with
//! `scancel` is recorded with Slurm's state, reported by `--status`, and a resubmission evaluates
//! only what it lost, ending with the same results. The tests skip (saying why) only when Slurm
//! cannot be installed here. Synchronisation is on files and on Slurm's queue, never on time.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers of a test binary

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rigor_test_support::repo::{example, fixture_repo, git};
use serde_json::{Value, json};

const SPEC: &str =
    "repo = \"example/durations\"\n[defaults]\ntest_cmd = \"python -m unittest -v\"\nlog_parser = \"django\"\n";
const TEST_FILE: &str = "import unittest\n\nfrom durations import parse_duration\n\n\nclass CompoundTest(unittest.TestCase):\n    def test_compound(self):\n        self.assertEqual(parse_duration(\"1h30m\"), 5400)\n\n    def test_single(self):\n        self.assertEqual(parse_duration(\"45s\"), 45)\n";
const FIX: (&str, &str) = ("total = int(number) * UNITS[ch]", "total += int(number) * UNITS[ch]");

/// Starts (or finds) the local Slurm; `None` (after saying why) when it cannot be installed.
fn slurm() -> Option<()> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/slurm-local.sh");
    let out = Command::new("bash").arg(&script).output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    match out.status.code() {
        Some(0) => Some(()),
        Some(2) => {
            eprintln!("SKIPPED: no Slurm here and it cannot be installed: {said}");
            None
        }
        _ => panic!("the local Slurm did not start: {said}"),
    }
}

/// A dataset of the bundled example: one repository, several instances with different patches
/// (resolving, not resolving, not applying, empty), and optionally a gate instance whose test
/// waits for a file (`gate/GO`) after saying it started (`gate/STARTED`).
struct World {
    work: tempfile::TempDir,
    _repo: tempfile::TempDir,
    ids: Vec<String>,
}

impl World {
    fn new(gate: bool) -> Self {
        let repo = fixture_repo(&example("durations"));
        let base = git(repo.path(), &["rev-parse", "HEAD"]).trim().to_string();
        let work = tempfile::tempdir().unwrap();
        let gate_dir = work.path().join("gate");
        std::fs::create_dir_all(&gate_dir).unwrap();
        let diff = |files: &[(&str, &str)]| {
            for (path, text) in files {
                std::fs::write(repo.path().join(path), text).unwrap();
            }
            git(repo.path(), &["add", "-A"]);
            let d = git(repo.path(), &["diff", "--cached", "HEAD"]);
            git(repo.path(), &["reset", "-q", "--hard", "HEAD"]);
            d
        };
        let source = std::fs::read_to_string(repo.path().join("durations.py")).unwrap();
        let gold = diff(&[("durations.py", &source.replace(FIX.0, FIX.1))]);
        let wrong = diff(&[("durations.py", &source.replace("raise ValueError(\"empty duration\")", "return 0"))]);
        let test_patch = diff(&[("test_compound.py", TEST_FILE)]);
        let gate_test = format!(
            "import os, time, unittest\n\n\nclass GateTest(unittest.TestCase):\n    def test_gate(self):\n        \
             open({started:?}, 'w').close()\n        while not os.path.exists({go:?}):\n            time.sleep(0.05)\n",
            started = gate_dir.join("STARTED").display().to_string(),
            go = gate_dir.join("GO").display().to_string()
        );
        let gate_patch = diff(&[("test_compound.py", TEST_FILE), ("test_gate.py", &gate_test)]);

        let repos = work.path().join("repos");
        std::fs::create_dir_all(repos.join("example")).unwrap();
        std::os::unix::fs::symlink(repo.path(), repos.join("example/durations")).unwrap();
        std::fs::create_dir_all(work.path().join("specs")).unwrap();
        std::fs::write(work.path().join("specs/durations.toml"), SPEC).unwrap();
        let f2p = "[\"test_compound (test_compound.CompoundTest.test_compound)\"]";
        let p2p = "[\"test_single (test_compound.CompoundTest.test_single)\"]";
        let mut rows = Vec::new();
        let mut preds = Vec::new();
        let mut add = |id: &str, tests: &str, p2p: &str, patch: &str| {
            rows.push(json!({
                "instance_id": id, "repo": "example/durations", "base_commit": base, "patch": gold,
                "test_patch": tests, "version": "1.0", "problem_statement": "1h30m is 1800 s",
                "FAIL_TO_PASS": f2p, "PASS_TO_PASS": p2p,
            }));
            preds.push(json!({"instance_id": id, "model_name_or_path": "m", "model_patch": patch}));
        };
        if gate {
            let p2p_gate = "[\"test_single (test_compound.CompoundTest.test_single)\", \"test_gate (test_gate.GateTest.test_gate)\"]";
            add("example__durations-0", &gate_patch, p2p_gate, &gold);
        }
        add("example__durations-1", &test_patch, p2p, &gold);
        add("example__durations-2", &test_patch, p2p, &wrong);
        add(
            "example__durations-3",
            &test_patch,
            p2p,
            "diff --git a/nope.py b/nope.py\n--- a/nope.py\n+++ b/nope.py\n@@ -1 +1 @@\n-x\n+y\n",
        );
        add("example__durations-4", &test_patch, p2p, "");
        let lines = |v: &[Value]| v.iter().map(|r| format!("{r}\n")).collect::<String>();
        std::fs::write(work.path().join("tasks.jsonl"), lines(&rows)).unwrap();
        std::fs::write(work.path().join("preds.jsonl"), lines(&preds)).unwrap();
        let ids = rows.iter().map(|r| r["instance_id"].as_str().unwrap().to_string()).collect();
        World { work, _repo: repo, ids }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// `rigor eval` of the dataset with `extra` flags, in the world.
    fn eval(&self, run_id: &str, extra: &[&str]) -> Output {
        let env_cache = cache_dir().join("test-envs");
        Command::new(env!("CARGO_BIN_EXE_rigor"))
            .args(["eval", "--dataset", "tasks.jsonl", "--predictions", "preds.jsonl", "--repos", "repos"])
            .args(["--specs", "specs", "--output", "out", "--scratch", "scratch", "--run-id", run_id])
            .args(["--env-cache", env_cache.to_str().unwrap()])
            .args(extra)
            .current_dir(self.work.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    fn status(&self, run_id: &str) -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_rigor"))
            .args(["eval", "--run-id", run_id, "--output", "out", "--status", "--json"])
            .current_dir(self.work.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn record(&self, run_id: &str, id: &str) -> Value {
        let path = self.path("out").join(format!("logs/run_evaluation/{run_id}/m/{id}/rigor.json"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
            .unwrap()
    }

    /// What must be the same whichever executor ran the instance: the record without timings,
    /// times and whether this run built the environment, and the official report.
    fn verdicts(&self, run_id: &str) -> Vec<(Value, String)> {
        self.ids
            .iter()
            .map(|id| {
                let mut r = self.record(run_id, id);
                for key in ["timings", "finished_at", "env_built"] {
                    r.as_object_mut().unwrap().remove(key);
                }
                let report = self.path("out").join(format!("logs/run_evaluation/{run_id}/m/{id}/report.json"));
                (r, std::fs::read_to_string(report).unwrap_or_default())
            })
            .collect()
    }
}

fn cache_dir() -> PathBuf {
    std::env::var_os("RIGOR_CACHE")
        .map(Into::into)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/rigor"))
}

fn ok(out: &Output) -> String {
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "exit {:?}\n{stdout}\n{stderr}", out.status.code());
    format!("{stdout}{stderr}")
}

/// A run id new to this process and to the shared environment cache's neighbours.
fn run_id(tag: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{tag}{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst))
}

/// Slurm's queue entries (`jobid_task state`) of the jobs named after `run_id`.
fn queue(run_id: &str) -> Vec<String> {
    let out = Command::new("squeue").args(["-h", "-r", "-o", "%j %i %T"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with(&format!("rigor-{run_id} ")) || l.starts_with(&format!("rigor-{run_id}-finish ")))
        .map(|l| l.split_once(' ').unwrap().1.to_string())
        .collect()
}

/// Waits for `what` to hold, looking again each time Slurm or a file may have changed.
fn until(what: &str, mut check: impl FnMut() -> bool) {
    let mut looks = 0u64;
    while !check() {
        looks += 1;
        assert!(looks < 100_000, "never happened: {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn slurm_gives_exactly_the_results_of_the_local_executor() {
    if slurm().is_none() {
        return;
    }
    let world = World::new(false);
    let local = run_id("local");
    ok(&world.eval(&local, &["--workers", "2"]));
    let batch = run_id("slurm");
    let said = ok(&world
        .eval(&batch, &["--executor", "slurm", "--slurm-array-parallelism", "2", "--slurm-instances-per-task", "1"]));
    assert!(said.contains("submitted 4 instance(s) as Slurm job") && said.contains("(4 array task(s))"), "{said}");
    assert!(said.contains("resolved 1/4"), "{said}");
    let (l, s) = (world.verdicts(&local), world.verdicts(&batch));
    assert_eq!(l, s, "the executors disagree");
    let statuses: Vec<&str> = l.iter().map(|(r, _)| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["resolved", "unresolved", "patch_failed", "empty_patch"], "a dataset that tests the grading");
    // Every task ran on Slurm: its output file is there.
    let batch_dir = world.path("out").join(format!("logs/run_evaluation/{batch}/batch"));
    let outputs = std::fs::read_dir(&batch_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("slurm-"))
        .count();
    assert_eq!(outputs, 4, "one output per array task in {}", batch_dir.display());
    // `rigor report` reads the run as a local one.
    let out = Command::new(env!("CARGO_BIN_EXE_rigor"))
        .args(["report", &batch, "--output", "out"])
        .current_dir(world.work.path())
        .output()
        .unwrap();
    assert!(ok(&out).contains("Resolved 1 / 4"));
    // A second submission of the finished run submits nothing.
    let again = ok(&world.eval(&batch, &["--executor", "slurm"]));
    assert!(!again.contains("submitted"), "{again}");
    let status = world.status(&batch);
    assert_eq!(status["counts"], json!({"done": 4, "running": 0, "pending": 0, "failed": 0}), "{status}");
}

#[test]
fn a_cancelled_array_task_is_reported_recorded_and_resubmitted_alone() {
    if slurm().is_none() {
        return;
    }
    let world = World::new(true);
    // The gate's test passes at once when GO exists (the reference run).
    std::fs::write(world.path("gate/GO"), "").unwrap();
    let local = run_id("local");
    ok(&world.eval(&local, &["--sandbox", "off"]));
    std::fs::remove_file(world.path("gate/GO")).unwrap();
    std::fs::remove_file(world.path("gate/STARTED")).unwrap();

    // Detached, one task at a time: the gate (task 0) runs and blocks, the other four wait.
    let batch = run_id("cancel");
    let flags = [
        "--sandbox",
        "off",
        "--executor",
        "slurm",
        "--slurm-array-parallelism",
        "1",
        "--slurm-instances-per-task",
        "1",
    ];
    let said = ok(&world.eval(&batch, &[&flags[..], &["--no-wait"]].concat()));
    let job =
        said.split("as Slurm job ").nth(1).and_then(|s| s.split_whitespace().next()).expect("a job id").to_string();
    until("the gate instance started", || world.path("gate/STARTED").exists());
    let status = world.status(&batch);
    assert_eq!(status["counts"], json!({"done": 0, "running": 1, "pending": 4, "failed": 0}), "{status}");
    assert_eq!(status["instances"]["example__durations-0"]["phase"], "running");
    assert_eq!(status["jobs"][0]["active_tasks"], 5, "{status}");

    let cancel = Command::new("scancel").arg(format!("{job}_0")).output().unwrap();
    assert!(cancel.status.success(), "{}", String::from_utf8_lossy(&cancel.stderr));
    // The other tasks run, then the closing job records the lost instance and writes the summary.
    until("the array and its closing job ended", || queue(&batch).is_empty());
    let lost = world.record(&batch, "example__durations-0");
    assert_eq!(lost["status"], "interrupted", "{lost}");
    assert_eq!(lost["lost"]["state"], "CANCELLED", "{lost}");
    assert_eq!(lost["lost"]["job"], job.as_str());
    assert!(lost["message"].as_str().unwrap().contains(&format!("slurm task {job}_0 ended CANCELLED")), "{lost}");
    let status = world.status(&batch);
    assert_eq!(status["counts"], json!({"done": 4, "running": 0, "pending": 0, "failed": 1}), "{status}");
    assert!(status["instances"]["example__durations-0"]["reason"].as_str().unwrap().contains("CANCELLED"));
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(world.path(&format!("out/m.{batch}.json"))).unwrap()).unwrap();
    assert_eq!(summary["incomplete_ids"], json!(["example__durations-0"]), "{summary}");

    // Resubmitted, only the lost instance is evaluated, and the run ends as the local one did.
    std::fs::write(world.path("gate/GO"), "").unwrap();
    let said = ok(&world.eval(&batch, &flags));
    assert!(said.contains("submitted 1 instance(s) as Slurm job"), "{said}");
    assert!(said.contains("resolved 2/5"), "{said}");
    assert_eq!(world.verdicts(&local), world.verdicts(&batch), "the executors disagree");
    let status = world.status(&batch);
    assert_eq!(status["counts"], json!({"done": 5, "running": 0, "pending": 0, "failed": 0}), "{status}");
}
