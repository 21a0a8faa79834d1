//! The proving ground: a SWE-bench-compatible evaluation harness that needs no Docker.
//!
//! Given a dataset of task instances (SWE-bench JSONL) and predictions (patches, or an agent that
//! produces them), [`harness::Evaluation`] evaluates every instance: a fresh git worktree at the
//! instance's `base_commit` from a local clone ([`repos`]), a cached Python virtual environment
//! built from a shipped spec ([`spec`]; the cache is [`testing::env`]), the patch and the test
//! patch applied exactly as the official harness does ([`patch`]), the test files of the test
//! patch run in the sandbox ([`testing::directives`], [`testing::runner`]), the log parsed
//! ([`testing::parsers`]) and graded ([`grading`]). Results land in the official layout
//! `logs/run_evaluation/<run_id>/<model>/<instance_id>/` and a summary `<model>.<run_id>.json`
//! ([`report`]). [`swt`] grades generated tests (SWT-bench), [`agent`] produces patches by running
//! rigor itself or an external agent command. [`localization`] measures the code graph's
//! localization (Acc@k) on the same rows and clones.
//!
//! This crate never prints: progress reaches front ends through [`harness::Progress`] callbacks.
//! It never fetches anything from the internet at evaluation time (environment builds use the
//! configured package index, once per environment, and are cached).

pub mod agent;
pub mod dataset;
pub mod grading;
pub mod harness;
pub mod localization;
pub mod patch;
pub mod report;
pub mod repos;
pub mod spec;
pub mod swt;

/// The test-running crate the harness is built on, whose types its API uses
/// (`rigor_testing::env::EnvCache` in [`harness::Evaluation`], ...).
pub use rigor_testing as testing;
