//! Test support for rigor: scripted model servers and fixture repositories.
//!
//! [`server::ScriptedServer`] is a real HTTP server on 127.0.0.1 (axum) that speaks the
//! OpenAI Chat Completions or Anthropic Messages wire format, with real SSE framing, and answers
//! each request with the next step of a script (a reply, an HTTP error, a cut stream, a delay).
//! [`repo`] copies a fixture directory into a temporary git repository.

pub mod fixtures;
pub mod repo;
pub mod server;
pub mod tools;
