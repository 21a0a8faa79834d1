//! Proven patches: rigor, not the model, shows that a patch fixes the issue.
//!
//! - [`tests_in`]: test files and test functions by language convention, and what changed in a
//!   test file (added or changed tests: a reproduction; deleted, skipped or weakened tests: what
//!   the integrity guard refuses).
//! - [`failure`]: why a test failed, read from its runner's output, and whether that failure
//!   reproduces the issue (an assertion or the exception the issue names; never a broken test).
//! - [`prover`]: the [`prover::Prover`], a tool source whose `finish` check runs the proof in
//!   the sandbox (the runner and its environment come from `rigor_testing::project`, runs from
//!   `rigor_testing::runner`) and whose edit check guards existing tests.
//! - [`related`]: the existing tests related to a fix, by the code graph.
//! - [`proof`]: the proof record (`proof.json`) and its summary.
//! - [`candidates`]: several candidates cross-validated (each fix against every reproduction)
//!   and ranked.
//! - [`bouncer`]: the input bouncer, which abstains on an issue that is not actionable.
//!
//! This crate never prints.

pub mod bouncer;
pub mod candidates;
pub mod failure;
pub mod proof;
pub mod prover;
pub mod related;
pub mod tests_in;
