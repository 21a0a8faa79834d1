//! MCP both ways.
//!
//! - [`server::RigorServer`] is `rigor mcp`: the code graph of a repository (`localize`,
//!   `search_entity`, `retrieve_entity`, `traverse_graph`, `repo_map`) and the records of its runs,
//!   served over stdio to any MCP client, the index kept in memory and refreshed before each answer;
//!   `run_tests` and `check_patch` ([`checks`]) run tests and rigor's proof in a scratch worktree,
//!   sandboxed; `solve` ([`solve`]) is a whole rigor run, wired by the front end's [`Solver`].
//! - [`client::McpSource`] makes a configured MCP server (`[mcp.servers.NAME]`) a
//!   [`rigor_tools::ToolSource`]: its tools join a run as `NAME__tool`, screened, time-limited,
//!   recorded; [`recorded::RecordedMcpSource`] serves the recorded results when the run is replayed.
//!
//! Never prints (the server's stdout is the protocol).

pub mod checks;
pub mod client;
pub mod recorded;
pub mod server;
pub mod solve;

pub use client::{McpSource, tool_name};
pub use recorded::RecordedMcpSource;
pub use server::RigorServer;
pub use solve::{SolveRequest, Solved, Solver};
