//! The rigor agent: configuration, workspaces, the agent loop, context management, trajectories
//! and replay.
//!
//! Entry point: [`run::execute`] prepares a [`workspace::Workspace`], writes the run record under
//! `.rigor/runs/<run-id>/`, and drives [`agent::Agent`] until it ends. Every front end observes
//! a run through the [`events::Emitter`]; this crate never prints.
//!
//! This crate knows providers only through `rigor_llm::Provider` and tools only through
//! `rigor_tools::ToolBox`. It creates the run's `rigor_sandbox::Sandbox` and screens every
//! tool action with the policy ([`approval`]) but never spawns a model-chosen command itself.

pub mod agent;
pub mod approval;
pub mod config;
pub mod context;
pub mod conversation;
pub mod events;
pub mod export;
pub mod fsutil;
pub mod prompt;
pub mod redact;
pub mod replay;
pub mod run;
pub mod session;
pub mod trajectory;
pub mod workspace;
