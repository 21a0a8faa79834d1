//! Running a repository's tests: processes, environments, test commands, log parsing.
//!
//! An [`spec::EnvSpec`] says how a project's environment is built and its tests are run (given by
//! a caller, or guessed from the project files by [`spec::detect`]); [`env::EnvCache`] builds and
//! caches the Python environment it names (the caller provides the sources through
//! [`env::Sources`]); [`directives`] turns a test patch into the test files to run;
//! [`runner::TestRunner`] runs a test command in a directory with an environment active, in the
//! sandbox, with a time limit, and returns the log; [`parsers`] reads a runner's log into
//! per-test [`parsers::TestStatus`]es. For a repository without a spec, [`project::Project`]
//! detects the runner (pytest, unittest, Django, cargo, go, jest, mocha, vitest), finds its Python
//! environment (or [`env::EnvCache::for_project`] builds one from its dependency files) and builds the command that runs exactly the chosen test ids, which
//! [`runner::TestRunner::run_ids`] runs and reads back by id. [`conda`] reads conda environment files as pip requirements. [`process`] is how every command of
//! the crate is spawned (a process group, killed whole on timeout).
//!
//! This crate knows nothing of datasets (SWE-bench rows, their clones and specs are
//! `rigor-eval`'s), of models or of the agent loop, and it never prints. It is shared by the
//! evaluation harness and the agent's own verification, so both run tests the same way.

pub mod conda;
pub mod directives;
pub mod env;
pub mod layer;
pub mod parsers;
pub mod process;
pub mod project;
pub mod runner;
pub mod spec;
