//! Code intelligence for rigor: a code graph of the repository, its on-disk index, localization
//! of issue texts, a compact repository map, and graph tools for the agent.
//!
//! The pipeline: [`lang`] picks a tree-sitter grammar per file (Python, Rust, JavaScript,
//! TypeScript/TSX, Go, Java, C, C++); [`extract`] reads one file's entities, imports, calls and
//! base classes; [`store::Index`] keeps those facts per file under `.rigor/index/` and updates them
//! incrementally from content hashes; [`graph::CodeGraph`] links them into directory, file, class,
//! function and method nodes with `contains`, `imports`, `invokes` and `inherits` edges;
//! [`localize::Retriever`] ranks files, modules and functions for an issue (BM25, explicit
//! mentions, graph expansion); [`repomap`] outlines the repository within a token budget;
//! [`tools`] exposes `search_entity`, `retrieve_entity` and `traverse_graph` through
//! `rigor_tools::Tool`, and the editor's syntax check. (Measuring localization against
//! SWE-bench gold patches is `rigor_eval::localization`'s job: this crate knows no datasets.)
//!
//! This crate knows nothing about models, prompts or the agent loop, and never prints.

pub mod drafts;
pub mod extract;
pub mod graph;
pub mod lang;
pub mod localize;
pub mod repomap;
pub mod store;
pub mod tokenize;
pub mod tools;

pub use graph::{CodeGraph, EdgeKind, NodeKind};
pub use localize::{Level, Location, Retriever};
pub use store::Index;
pub use tools::{CodeIntel, GraphSource, SyntaxCheck};
