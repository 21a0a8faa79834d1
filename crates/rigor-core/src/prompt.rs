//! The prompts the agent starts from: the system message (workflow, rules, the repository's
//! AGENTS.md or CLAUDE.md) and the first user message (the issue).

use std::path::Path;

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

/// The project's instructions: `AGENTS.md`, else `CLAUDE.md`, from the workspace directory or
/// the repository root (the nearer wins).
pub fn project_instructions(workspace_dir: &Path, tree_root: &Path) -> Option<(String, String)> {
    for dir in [workspace_dir, tree_root] {
        for name in ["AGENTS.md", "CLAUDE.md"] {
            let path = dir.join(name);
            if let Ok(text) = std::fs::read_to_string(&path) {
                let mut text = text.trim().to_string();
                if text.len() > MAX_INSTRUCTIONS_CHARS {
                    let cut = (0..=MAX_INSTRUCTIONS_CHARS).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
                    text.truncate(cut);
                    text.push_str("\n[... instructions truncated ...]");
                }
                return Some((name.to_string(), text));
            }
        }
    }
    None
}

/// The system message.
pub fn system_prompt(workspace_dir: &Path, tree_root: &Path) -> String {
    let mut prompt = WORKFLOW.to_string();
    if let Some((name, text)) = project_instructions(workspace_dir, tree_root) {
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
}
