//! Keeping the conversation inside the model's context window.
//!
//! Prompt size is tracked in tokens: the provider's reported prompt tokens of the last turn, plus
//! an estimate (characters / 3.5) for the messages added since. When the prompt passes
//! [`CONDENSE_AT`] of the window, older turns are condensed in two stages:
//! 1. *observation masking*: long tool results older than the last [`KEEP_RECENT_TURNS`] turns
//!    are replaced by their first lines and a note (cheap, and keeps every action visible);
//! 2. *turn dropping*: if that is not enough, the oldest turns are removed whole and replaced by
//!    one message listing the actions they took, until the prompt is under [`CONDENSE_TO`].
//!
//! Kept always: the system message, the issue (first user message), the agent's first plan, and
//! the latest turns. A turn (an assistant message and the tool results answering it) is never
//! split, so every tool call keeps exactly one result.

use rigor_protocol::{Message, Role};

/// Condense when the prompt passes this fraction of the context window.
pub const CONDENSE_AT: f64 = 0.75;
/// Condense down to this fraction of the window.
pub const CONDENSE_TO: f64 = 0.5;
/// Turns at the end that are never condensed.
pub const KEEP_RECENT_TURNS: usize = 3;
const MASKED_OBSERVATION_CHARS: usize = 300;

/// Estimated tokens of some text (no tokenizer: about 3.5 characters per token for code and prose).
pub fn estimate_tokens(chars: usize) -> u64 {
    (chars as f64 / 3.5).ceil() as u64
}

/// Estimated tokens of a conversation.
pub fn estimate_messages(messages: &[Message]) -> u64 {
    messages.iter().map(|m| estimate_tokens(m.char_len()) + 4).sum()
}

/// Estimated tokens of the tool schemas sent with every request (natively, or as the text
/// action format's description in the system message: about as long).
pub fn estimate_tools(tools: &[rigor_protocol::ToolSpec]) -> u64 {
    tools.iter().map(|t| estimate_tokens(serde_json::to_string(t).map_or(0, |j| j.len()))).sum()
}

/// Tracks prompt size and condenses the conversation when it nears the window.
#[derive(Debug, Clone)]
pub struct ContextBudget {
    window: u64,
    /// (messages in the last request, prompt tokens the provider reported for it).
    last_reported: Option<(usize, u64)>,
}

/// What a condensation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condensation {
    /// Estimated tokens before.
    pub before: u64,
    /// Estimated tokens after.
    pub after: u64,
    /// Messages shortened or removed.
    pub affected: usize,
}

impl ContextBudget {
    /// A budget for a model with `window` tokens of context.
    pub fn new(window: u64) -> Self {
        Self { window: window.max(1024), last_reported: None }
    }

    /// Records the prompt tokens the provider reported for a request of `messages` messages.
    pub fn record(&mut self, messages: usize, prompt_tokens: u64) {
        if prompt_tokens > 0 {
            self.last_reported = Some((messages, prompt_tokens));
        }
    }

    /// Estimated prompt tokens of `messages`.
    pub fn estimate(&self, messages: &[Message]) -> u64 {
        self.estimate_with(messages, 0)
    }

    /// Estimated prompt tokens of everything sent: `messages` and tool schemas of
    /// `tool_tokens` (already in a reported count, so added only before the first report).
    pub fn estimate_with(&self, messages: &[Message], tool_tokens: u64) -> u64 {
        match self.last_reported {
            Some((n, tokens)) if n <= messages.len() => tokens + estimate_messages(&messages[n..]),
            _ => estimate_messages(messages) + tool_tokens,
        }
    }

    /// Condenses `messages` in place if they pass the threshold; returns what was done.
    pub fn condense_if_needed(&mut self, messages: &mut Vec<Message>) -> Option<Condensation> {
        let before = self.estimate(messages);
        if (before as f64) < self.window as f64 * CONDENSE_AT {
            return None;
        }
        let target = (self.window as f64 * CONDENSE_TO) as u64;
        let turns = turn_starts(messages);
        let protected_from = turns.len().saturating_sub(KEEP_RECENT_TURNS);
        let mut affected = 0;

        // Stage 1: mask old observations.
        let old_end = turns.get(protected_from).copied().unwrap_or(messages.len());
        for message in messages[..old_end].iter_mut().filter(|m| m.role == Role::Tool) {
            if message.content.len() > MASKED_OBSERVATION_CHARS {
                message.content = mask(&message.content);
                affected += 1;
            }
        }
        self.last_reported = None;

        // Stage 2: drop whole turns, oldest first (the first turn holds the plan and is kept).
        if estimate_messages(messages) > target && protected_from > 1 {
            let drop_from = turns[1];
            let mut drop_to = drop_from;
            let mut dropped = Vec::new();
            for &start in &turns[2..=protected_from] {
                dropped.extend(messages[drop_to..start].iter().cloned());
                drop_to = start;
                let remaining = estimate_messages(&messages[..drop_from])
                    + estimate_tokens(summarize(&dropped).len())
                    + estimate_messages(&messages[start..]);
                if remaining <= target {
                    break;
                }
            }
            affected += drop_to - drop_from;
            let summary = summarize(&dropped);
            messages.splice(drop_from..drop_to, [Message::user(summary)]);
        }
        Some(Condensation { before, after: estimate_messages(messages), affected })
    }
}

/// Indices of the assistant messages that start turns (after the system and issue messages).
fn turn_starts(messages: &[Message]) -> Vec<usize> {
    messages.iter().enumerate().filter(|(_, m)| m.role == Role::Assistant).map(|(i, _)| i).collect()
}

fn mask(content: &str) -> String {
    let head: String = content.chars().take(MASKED_OBSERVATION_CHARS).collect();
    let head = head.rsplit_once('\n').map(|(h, _)| h.to_string()).unwrap_or(head);
    format!(
        "{head}\n[observation condensed to save context: {} characters omitted; run the tool again if you need it]",
        content.len().saturating_sub(head.len())
    )
}

/// One line per action of the dropped turns.
fn summarize(dropped: &[Message]) -> String {
    let mut lines = vec!["[Earlier steps were condensed to fit the context window. Actions taken:]".to_string()];
    for message in dropped {
        for call in &message.tool_calls {
            let args: String = call.arguments.chars().take(160).collect();
            lines.push(format!("- {}({args})", call.name));
        }
        if message.role == Role::Tool && message.is_error {
            let first = message.content.lines().next().unwrap_or_default();
            lines.push(format!("  -> error: {}", first.chars().take(160).collect::<String>()));
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rigor_protocol::ToolCall;

    fn conversation(turns: usize, observation_chars: usize) -> Vec<Message> {
        let mut messages = vec![Message::system("sys"), Message::user("the issue")];
        for i in 0..turns {
            let call = ToolCall {
                id: format!("c{i}"),
                name: "bash".into(),
                arguments: format!("{{\"command\":\"step {i}\"}}"),
            };
            messages.push(Message::assistant(format!("plan {i}"), vec![call]));
            messages.push(Message::tool_result(format!("c{i}"), "x\n".repeat(observation_chars / 2), false));
        }
        messages
    }

    fn assert_pairs_intact(messages: &[Message]) {
        for (i, m) in messages.iter().enumerate() {
            for call in &m.tool_calls {
                assert_eq!(messages[i + 1].tool_call_id.as_deref(), Some(call.id.as_str()));
            }
        }
    }

    #[test]
    fn small_conversations_are_left_alone() {
        let mut budget = ContextBudget::new(100_000);
        let mut messages = conversation(5, 100);
        assert!(budget.condense_if_needed(&mut messages).is_none());
    }

    #[test]
    fn masking_comes_first_and_keeps_recent_turns_whole() {
        let mut budget = ContextBudget::new(8_000);
        let mut messages = conversation(8, 3_000);
        let before = messages.clone();
        let done = budget.condense_if_needed(&mut messages).unwrap();
        assert!(done.after < done.before);
        assert_eq!(messages[0], before[0]);
        assert_eq!(messages[1], before[1], "the issue is kept");
        assert_eq!(messages.last(), before.last(), "the latest observation is kept whole");
        assert!(messages.iter().any(|m| m.content.contains("observation condensed")));
        assert_pairs_intact(&messages);
    }

    #[test]
    fn turns_are_dropped_whole_when_masking_is_not_enough() {
        let mut budget = ContextBudget::new(4_000);
        let mut messages = conversation(60, 200);
        let done = budget.condense_if_needed(&mut messages).unwrap();
        assert!(done.after <= (4_000.0 * CONDENSE_TO) as u64, "{done:?}");
        assert_eq!(messages[2].content, "plan 0", "the first plan is kept");
        assert!(messages[4].content.contains("Actions taken"), "{}", messages[4].content);
        assert!(messages[4].content.contains("step 1"));
        assert_eq!(messages.last().unwrap().tool_call_id.as_deref(), Some("c59"));
        assert_pairs_intact(&messages);
    }

    #[test]
    fn reported_prompt_tokens_anchor_the_estimate() {
        let mut budget = ContextBudget::new(100_000);
        let messages = conversation(2, 70);
        budget.record(4, 1_000);
        assert_eq!(budget.estimate(&messages), 1_000 + estimate_messages(&messages[4..]));
    }
}
