//! The prompts the agent starts from: the system message (workflow, rules, the repository's
//! AGENTS.md or CLAUDE.md) and the first user message (the issue), in the run's
//! [`PromptProfile`]: `Full` for capable models, `Compact` for small local ones (a short
//! workflow, shorter project instructions, a repository map scaled to the context window). One
//! code path builds both; only the texts and budgets differ.

use std::path::Path;

pub use rigor_protocol::PromptProfile;

/// Project instructions larger than this are cut (they are sent on every turn).
const MAX_INSTRUCTIONS_CHARS: usize = 8_000;

const WORKFLOW: &str = "\
You are rigor, an autonomous software engineer. You fix an issue in a repository and prove the fix.

Work in this order:
1. Localize: find the code the issue is about (search, view). Read before you edit.
2. Reproduce: write or run a test that fails on the current code for the reason the issue describes.
3. Patch: make the smallest change that fixes the cause, in the style of the surrounding code.
4. Verify: run the reproduction and the repository's related tests; all must pass.
5. Finish with a summary of the change and the evidence, or abstain with a reason if the issue is too \
vague or you cannot produce a fix you trust.

Rules:
- Act only through the tools; call one or more tools in every reply.
- Paths are relative to the workspace root, which is the shell's starting directory.
- Do not ask the user questions: nobody will answer. Decide, and say why in your summary.
- Keep commands non-interactive and bounded (no editors, pagers or servers that never exit).
- Do not commit, push, or change git configuration: your diff is collected from the workspace.";

/// Project instructions in a compact prompt are cut to this.
const MAX_COMPACT_INSTRUCTIONS_CHARS: usize = 1_500;

const COMPACT_WORKFLOW: &str = "\
You are rigor. Fix the issue in this repository.
1. Find the code: view the file the issue names, or grep for it.
2. Edit it with the smallest change that fixes the cause.
3. Run a command that shows the fix works (a test or a python -c check).
4. Call finish with a one-line summary.
Paths are relative to the repository root. Nobody answers questions. Do not commit.";

/// The system prompt's section for a conversation (`rigor chat`): it lifts the workflow's rules
/// that assume nobody answers.
pub const CONVERSATION: &str = "\
This is a conversation with the user at a terminal: each user message is a request. Work a request \
with the tools. When it is done, or when it needs no change (a question, a plan to discuss), reply in \
plain text without calling a tool: that reply ends the request, and the user answers it. You may ask \
the user a question that way. The user can undo your last request's changes; you are told when.";

/// Token budget of the repository map for `profile` and a model with `window` tokens of
/// context: a full prompt spends up to 1,500 tokens (1/16 of the window), a compact one up to
/// 400 (1/40), so that a small model's first turn stays short to prefill.
pub fn map_tokens(profile: PromptProfile, window: u64) -> usize {
    let window = window as usize;
    match profile {
        PromptProfile::Full => (window / 16).clamp(300, 1_500),
        PromptProfile::Compact => (window / 40).clamp(150, 400),
    }
}

/// The project's instructions: `AGENTS.md`, else `CLAUDE.md`, from the workspace directory or
/// the repository root (the nearer wins).
pub fn project_instructions(workspace_dir: &Path, tree_root: &Path) -> Option<(String, String)> {
    instructions_within(workspace_dir, tree_root, MAX_INSTRUCTIONS_CHARS)
}

fn instructions_within(workspace_dir: &Path, tree_root: &Path, max_chars: usize) -> Option<(String, String)> {
    for dir in [workspace_dir, tree_root] {
        for name in ["AGENTS.md", "CLAUDE.md"] {
            let path = dir.join(name);
            if let Ok(text) = std::fs::read_to_string(&path) {
                let mut text = text.trim().to_string();
                if text.len() > max_chars {
                    let cut = (0..=max_chars).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
                    text.truncate(cut);
                    text.push_str("\n[... instructions truncated ...]");
                }
                return Some((name.to_string(), text));
            }
        }
    }
    None
}

/// The system message (the full profile).
pub fn system_prompt(workspace_dir: &Path, tree_root: &Path) -> String {
    system_prompt_for(PromptProfile::Full, workspace_dir, tree_root)
}

/// The system message of `profile`.
pub fn system_prompt_for(profile: PromptProfile, workspace_dir: &Path, tree_root: &Path) -> String {
    let (workflow, max_chars) = match profile {
        PromptProfile::Full => (WORKFLOW, MAX_INSTRUCTIONS_CHARS),
        PromptProfile::Compact => (COMPACT_WORKFLOW, MAX_COMPACT_INSTRUCTIONS_CHARS),
    };
    let mut prompt = workflow.to_string();
    if let Some((name, text)) = instructions_within(workspace_dir, tree_root, max_chars) {
        prompt.push_str(&format!("\n\nProject instructions from {name}:\n{text}"));
    }
    prompt
}

/// The system message with the tool sources' prompt sections appended (empty ones left out).
pub fn with_sections(system: String, sections: &[String]) -> String {
    sections.iter().filter(|s| !s.trim().is_empty()).fold(system, |prompt, section| format!("{prompt}\n\n{section}"))
}

/// The first user message.
pub fn issue_prompt(issue: &str) -> String {
    issue_prompt_for(PromptProfile::Full, issue)
}

/// The first user message of `profile`.
pub fn issue_prompt_for(profile: PromptProfile, issue: &str) -> String {
    if profile == PromptProfile::Compact {
        return format!("<issue>\n{}\n</issue>", issue.trim());
    }
    format!("Fix this issue in the repository.\n\n<issue>\n{}\n</issue>", issue.trim())
}

/// Sent when the model replied without calling a tool.
pub const NO_ACTION_NUDGE: &str = "Your reply called no tool. Continue the work by calling a tool; when the issue \
is fixed and verified call `finish`, or call `abstain` with a reason.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_md_wins_over_claude_md_and_the_nearer_directory_wins() {
        let root = tempfile::tempdir().unwrap();
        let sub = root.path().join("pkg");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(root.path().join("AGENTS.md"), "root agents").unwrap();
        std::fs::write(sub.join("CLAUDE.md"), "sub claude").unwrap();
        assert_eq!(project_instructions(&sub, root.path()).unwrap().1, "sub claude");
        std::fs::write(sub.join("AGENTS.md"), "sub agents").unwrap();
        assert!(system_prompt(&sub, root.path()).ends_with("Project instructions from AGENTS.md:\nsub agents"));
        assert!(project_instructions(root.path(), root.path()).is_some());
    }

    #[test]
    fn a_compact_prompt_is_short_and_cuts_long_instructions() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("AGENTS.md"), "x".repeat(5_000)).unwrap();
        let full = system_prompt_for(PromptProfile::Full, root.path(), root.path());
        let compact = system_prompt_for(PromptProfile::Compact, root.path(), root.path());
        assert!(compact.len() * 2 < full.len(), "{} vs {}", compact.len(), full.len());
        assert!(compact.contains("[... instructions truncated ...]"));
        assert!(!full.contains("[... instructions truncated ...]"));
        assert!(issue_prompt_for(PromptProfile::Compact, " bug ").ends_with("<issue>\nbug\n</issue>"));
    }

    #[test]
    fn the_map_budget_scales_with_the_context_window() {
        assert_eq!(map_tokens(PromptProfile::Full, 128_000), 1_500);
        assert_eq!(map_tokens(PromptProfile::Full, 8_192), 512);
        assert_eq!(map_tokens(PromptProfile::Compact, 32_768), 400);
        assert_eq!(map_tokens(PromptProfile::Compact, 8_192), 204);
        assert_eq!(map_tokens(PromptProfile::Compact, 2_048), 150);
    }
}
