//! Screening of tool actions before they run: the action policy's verdict, the approval mode,
//! and, when a person must decide, the [`Approver`] the front end provides.
//!
//! The agent loop asks [`ActionScreen::screen`] about every call whose tool declares an action
//! (`bash` commands, Python code). Denied actions never run; `ask` becomes a question to the
//! approver (in a terminal) or, when nobody can answer (headless, `--approval never`), a refusal
//! that tells the model why. This module does not print or read the terminal: the CLI implements
//! [`Approver`].

use std::sync::Arc;

use async_trait::async_trait;
use rigor_sandbox::{Action, ApprovalMode, Decision, Policy, Resolution, Verdict};

/// A question for the user: may this action run?
#[derive(Debug, Clone)]
pub struct ApprovalRequest {
    /// The tool call whose action this is.
    pub call_id: String,
    /// The tool that would run it.
    pub tool: String,
    /// The action (command line or code).
    pub action: Action,
    /// The policy's decision (verdict, category, reason).
    pub decision: Decision,
}

/// Answers approval requests: implemented by front ends that can ask a person.
#[async_trait]
pub trait Approver: Send + Sync {
    /// Whether the action may run.
    async fn approve(&self, request: &ApprovalRequest) -> bool;
}

pub use rigor_protocol::ActionOutcome as Outcome;

/// The result of screening one action.
#[derive(Debug, Clone)]
pub struct Screened {
    /// The policy's decision.
    pub decision: Decision,
    /// What became of the action.
    pub outcome: Outcome,
    /// For actions that do not run: the observation for the model.
    pub message: String,
}

/// The policy, the approval mode and the approver of a run.
#[derive(Clone)]
pub struct ActionScreen {
    policy: Policy,
    mode: ApprovalMode,
    approver: Option<Arc<dyn Approver>>,
}

impl ActionScreen {
    /// A screen with `policy` and `mode`; `approver` is whoever can answer `ask` (none when
    /// headless).
    pub fn new(policy: Policy, mode: ApprovalMode, approver: Option<Arc<dyn Approver>>) -> Self {
        Self { policy, mode, approver }
    }

    /// Whether every action is refused: approval mode `always` with nobody to ask.
    pub fn refuses_everything(&self) -> bool {
        self.mode == ApprovalMode::Always && self.approver.is_none()
    }

    /// Classifies `action` and settles it: run, ask the approver, or refuse with a message.
    pub async fn screen(&self, call_id: &str, tool: &str, action: &Action) -> Screened {
        let decision = self.policy.check(action);
        let resolution = self.mode.resolve(decision.verdict, self.approver.is_some());
        let (outcome, message) = match (resolution, &self.approver) {
            (Resolution::Run, _) => (Outcome::Run, String::new()),
            (Resolution::AskUser, Some(approver)) => {
                let request = ApprovalRequest {
                    call_id: call_id.to_string(),
                    tool: tool.to_string(),
                    action: action.clone(),
                    decision: decision.clone(),
                };
                if approver.approve(&request).await {
                    (Outcome::Approved, String::new())
                } else {
                    let why = if decision.verdict == Verdict::Allow {
                        String::new()
                    } else {
                        format!(" ({}: {})", decision.category.as_str(), decision.reason)
                    };
                    (
                        Outcome::Rejected,
                        format!(
                            "not run: the user declined this command{why}. Do not retry it; choose another way or \
                             explain what you need in your final answer."
                        ),
                    )
                }
            }
            (_, _) if decision.verdict == Verdict::Deny => (Outcome::Refused, decision.refusal_message()),
            (_, _) if decision.verdict == Verdict::Allow => (
                Outcome::Refused,
                format!(
                    "not run: approval mode `{}` needs the user's approval for every command, and nobody can be \
                     asked in this run (no terminal, or --json). No command will run; explain in your final answer what you \
                     would run and why.",
                    self.mode.as_str()
                ),
            ),
            (_, _) => (
                Outcome::Refused,
                format!(
                    "not run: rigor's action policy holds this command for the user's approval ({}: {}), and \
                     approval mode `{}` lets nobody approve it in this run{}. {}",
                    decision.category.as_str(),
                    decision.reason,
                    self.mode.as_str(),
                    if self.approver.is_none() { " (no terminal to ask)" } else { "" },
                    if decision.advice.is_empty() { "Choose another way." } else { decision.advice.as_str() }
                ),
            ),
        };
        Screened { decision, outcome, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(bool);

    #[async_trait]
    impl Approver for Fixed {
        async fn approve(&self, _request: &ApprovalRequest) -> bool {
            self.0
        }
    }

    fn policy() -> Policy {
        Policy::new(std::env::temp_dir(), Some("/home/u".into()))
    }

    #[tokio::test]
    async fn headless_never_refuses_ask_with_an_explanation() {
        let screen = ActionScreen::new(policy(), ApprovalMode::Never, None);
        let s = screen.screen("c", "bash", &Action::Shell("git push origin main".into())).await;
        assert_eq!(s.outcome, Outcome::Refused);
        assert!(s.message.contains("approval mode `never`") && s.message.contains("git push"), "{}", s.message);
        let s = screen.screen("c", "bash", &Action::Shell("ls".into())).await;
        assert_eq!(s.outcome, Outcome::Run);
    }

    #[tokio::test]
    async fn headless_always_refuses_every_command() {
        let screen = ActionScreen::new(policy(), ApprovalMode::Always, None);
        assert!(screen.refuses_everything());
        let s = screen.screen("c", "bash", &Action::Shell("ls".into())).await;
        assert_eq!(s.outcome, Outcome::Refused);
        assert!(s.message.contains("approval mode `always`") && s.message.contains("nobody"), "{}", s.message);
        let s = screen.screen("c", "python", &Action::Python("print(1)".into())).await;
        assert_eq!(s.outcome, Outcome::Refused);
    }

    #[tokio::test]
    async fn on_risk_asks_the_approver_and_deny_never_asks() {
        let yes = ActionScreen::new(policy(), ApprovalMode::OnRisk, Some(Arc::new(Fixed(true))));
        assert_eq!(yes.screen("c", "bash", &Action::Shell("git push".into())).await.outcome, Outcome::Approved);
        assert_eq!(yes.screen("c", "bash", &Action::Shell("rm -rf ~".into())).await.outcome, Outcome::Refused);
        let no = ActionScreen::new(policy(), ApprovalMode::Always, Some(Arc::new(Fixed(false))));
        let s = no.screen("c", "bash", &Action::Shell("ls".into())).await;
        assert_eq!(s.outcome, Outcome::Rejected);
        assert!(s.message.contains("declined"), "{}", s.message);
    }
}
