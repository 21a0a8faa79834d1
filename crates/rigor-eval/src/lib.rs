//! The proving ground: a SWE-bench-compatible evaluation harness that needs no Docker.
//!
//! Given a dataset of task instances (SWE-bench JSONL) and predictions (patches, or an agent that
//! produces them), [`harness::Evaluation`] evaluates every instance: a fresh git worktree at the
//! instance's `base_commit` from a local clone ([`repos`]), a cached Python virtual environment
//! built from a shipped spec ([`spec`]; the cache is [`testing::env`]), the patch and the test
//! patch applied exactly as the official harness does ([`patch`]), the test files of the test
//! patch run in the sandbox (`eval.sh` of a [`prepared::Prepared`] instance, through
//! [`testing::runner`]), the log parsed ([`testing::parsers`]) and graded ([`grading`]). Results
//! land in the official layout `logs/run_evaluation/<run_id>/<model>/<instance_id>/` ([`record`]:
//! `rigor.json`, `report.json`, `run_instance.log`) and a summary `<model>.<run_id>.json`
//! ([`report`]). [`swt`] grades generated tests (SWT-bench), [`agent`] produces patches by running
//! rigor itself (proving them, through `rigor_proof`, when the front end's wiring gives a prover)
//! or an external agent command. [`localization`] measures the code graph's
//! localization (Acc@k) on the same rows and clones.
//!
//! [`executor`] decides where the harness runs: in this process, or as the tasks of a batch
//! scheduler's array job ([`slurm`]), all writing the same records.
//!
//! The modules depend on each other in one direction: [`harness`] drives [`agent`], [`swt`] and
//! the grading of patches, all of which work on a [`prepared::Prepared`] instance and write
//! [`record`]s; [`report`] reads the records. Nothing imports [`harness`] but [`executor`], the
//! layer above it; a batch engine ([`slurm`]) knows only the executor's seam.
//!
//! This crate never prints: progress reaches front ends through [`harness::Progress`] callbacks.
//! It never fetches anything from the internet at evaluation time (environment builds use the
//! configured package index, once per environment, and are cached).

pub mod agent;
pub mod dataset;
pub mod executor;
pub mod grading;
pub mod harness;
pub mod localization;
pub mod patch;
pub mod prepared;
pub mod record;
pub mod report;
pub mod repos;
pub mod slurm;
pub mod spec;
pub mod swt;

/// The test-running crate the harness is built on, whose types its API uses
/// (`rigor_testing::env::EnvCache` in [`harness::Evaluation`], ...).
pub use rigor_testing as testing;

#[cfg(test)]
mod tests {
    /// Each module's source (what it imports is read from the code before its tests, comments
    /// left out).
    const MODULES: [(&str, &str); 14] = [
        ("agent", include_str!("agent.rs")),
        ("dataset", include_str!("dataset.rs")),
        ("executor", include_str!("executor.rs")),
        ("grading", include_str!("grading.rs")),
        ("harness", include_str!("harness.rs")),
        ("localization", include_str!("localization.rs")),
        ("patch", include_str!("patch.rs")),
        ("prepared", include_str!("prepared.rs")),
        ("record", include_str!("record.rs")),
        ("report", include_str!("report.rs")),
        ("repos", include_str!("repos.rs")),
        ("slurm", include_str!("slurm.rs")),
        ("spec", include_str!("spec.rs")),
        ("swt", include_str!("swt.rs")),
    ];

    fn imports(module: &str) -> Vec<&'static str> {
        let (_, text) = MODULES.iter().find(|(name, _)| *name == module).copied().unwrap_or_default();
        let code: Vec<&str> = text
            .split("#[cfg(test)]")
            .next()
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect();
        let uses = |name: &str| code.iter().any(|l| l.contains(&format!("crate::{name}")));
        MODULES.iter().map(|(name, _)| *name).filter(|name| uses(name)).collect()
    }

    #[test]
    fn no_module_imports_the_harness_and_the_records_import_no_evaluation_step() {
        for (name, _) in MODULES {
            // The executor is the layer above the harness: it decides where the harness runs.
            if name != "harness" && name != "executor" {
                assert!(!imports(name).contains(&"harness"), "{name} imports the harness");
            }
        }
        let records = imports("record");
        for step in ["harness", "swt", "report", "prepared"] {
            assert!(!records.contains(&step), "record imports {step}: {records:?}");
        }
        assert!(imports("swt").contains(&"record"), "the check does not see imports");
        // A batch engine knows nothing of instances or evaluations.
        assert_eq!(imports("slurm"), ["executor"], "slurm imports more than the executor's seam");
    }
}
