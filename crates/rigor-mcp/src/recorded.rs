//! The MCP servers of a recorded run, for its replay: the tools the run offered, answering with
//! the results recorded for them, in order. No server is started.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rigor_core::trajectory::TrajectoryRecord;
use rigor_protocol::{ActionOutcome, Event, ToolSpec};
use rigor_sandbox::{Action, McpApproval, McpCall};
use rigor_tools::{Contribution, PromptShape, Tool, ToolContext, ToolOutput, ToolSource};
use serde_json::Value;

use crate::client::{SEPARATOR, SOURCE_PREFIX};

type Answers = Arc<Mutex<HashMap<String, VecDeque<(String, bool)>>>>;

/// A recorded MCP source (`mcp:NAME` in `run_started`), serving its recorded results.
pub struct RecordedMcpSource {
    source_name: String,
    tools: Vec<ToolSpec>,
    answers: Answers,
}

impl RecordedMcpSource {
    /// The source `source_name` (`mcp:NAME`) of the run recorded in `records`.
    pub fn from_records(source_name: &str, records: &[TrajectoryRecord]) -> Self {
        let server = source_name.strip_prefix(SOURCE_PREFIX).unwrap_or(source_name);
        let prefix = format!("{server}{SEPARATOR}");
        let mut tools = Vec::new();
        let mut calls: HashMap<String, String> = HashMap::new();
        let mut refused: HashSet<String> = HashSet::new();
        let mut answers: HashMap<String, VecDeque<(String, bool)>> = HashMap::new();
        for record in records {
            match &record.event {
                Event::RunStarted { tools: offered, .. } => {
                    tools = offered.iter().filter(|t| t.name.starts_with(&prefix)).cloned().collect();
                }
                Event::ToolCall { call, .. } if call.name.starts_with(&prefix) => {
                    calls.insert(call.id.clone(), call.name.clone());
                }
                Event::PolicyDecision {
                    call_id, outcome: ActionOutcome::Refused | ActionOutcome::Rejected, ..
                } => {
                    refused.insert(call_id.clone());
                }
                Event::Observation { call_id, content, is_error, .. } if !refused.contains(call_id) => {
                    if let Some(name) = calls.get(call_id) {
                        answers.entry(name.clone()).or_default().push_back((content.clone(), *is_error));
                    }
                }
                _ => {}
            }
        }
        Self { source_name: source_name.to_string(), tools, answers: Arc::new(Mutex::new(answers)) }
    }

    /// The recorded MCP sources among `names`, read from the trajectory at `path`.
    pub fn all(names: &[String], path: &Path) -> Vec<Arc<dyn ToolSource>> {
        let mcp: Vec<&String> = names.iter().filter(|n| n.starts_with(SOURCE_PREFIX)).collect();
        if mcp.is_empty() {
            return Vec::new();
        }
        let records = rigor_core::trajectory::read_trajectory(path).unwrap_or_default();
        mcp.into_iter().map(|name| Arc::new(Self::from_records(name, &records)) as Arc<dyn ToolSource>).collect()
    }
}

impl ToolSource for RecordedMcpSource {
    fn name(&self) -> &str {
        &self.source_name
    }

    fn contribute(&self, _workspace: &Path, _issue: &str, _shape: &PromptShape) -> Contribution {
        let server = self.source_name.strip_prefix(SOURCE_PREFIX).unwrap_or(&self.source_name);
        let names: Vec<String> = self.tools.iter().map(|t| t.name.clone()).collect();
        Contribution {
            prompt_section: format!(
                "Tools of the MCP server `{server}` (called like any tool): {}.",
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            ),
            tools: self
                .tools
                .iter()
                .map(|spec| {
                    Box::new(RecordedTool { spec: spec.clone(), answers: Arc::clone(&self.answers) }) as Box<dyn Tool>
                })
                .collect(),
            ..Contribution::default()
        }
    }
}

struct RecordedTool {
    spec: ToolSpec,
    answers: Answers,
}

#[async_trait]
impl Tool for RecordedTool {
    fn spec(&self) -> ToolSpec {
        self.spec.clone()
    }

    fn action(&self, args: &Value) -> Option<Action> {
        // Screened as it was recorded: what ran then runs again (from the record).
        Some(Action::Mcp(McpCall {
            text: format!("{} {args}", self.spec.name),
            approval: McpApproval::Never,
            read_only: true,
        }))
    }

    async fn run(&self, _args: Value, _ctx: &ToolContext) -> ToolOutput {
        let next = self
            .answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&self.spec.name)
            .and_then(VecDeque::pop_front);
        match next {
            Some((content, false)) => ToolOutput::ok(content),
            Some((content, true)) => ToolOutput::error(content),
            None => ToolOutput::error(format!(
                "replay: no recorded result is left for `{}` (the replay diverged from the recording)",
                self.spec.name
            )),
        }
    }
}
