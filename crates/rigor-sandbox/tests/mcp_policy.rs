//! The policy's verdict on calls of configured MCP servers' tools follows the server's `approval`.

use rigor_sandbox::{Action, McpApproval, McpCall, Policy, Verdict};

fn verdict(approval: McpApproval, read_only: bool) -> Verdict {
    let call = McpCall { text: "server__tool {}".into(), approval, read_only };
    Policy::new("/tmp", None).check(&Action::Mcp(call)).verdict
}

#[test]
fn mcp_calls_are_screened_by_the_servers_approval() {
    assert_eq!(verdict(McpApproval::Never, false), Verdict::Allow);
    assert_eq!(verdict(McpApproval::OnRisk, true), Verdict::Allow);
    assert_eq!(verdict(McpApproval::OnRisk, false), Verdict::Ask);
    assert_eq!(verdict(McpApproval::Always, true), Verdict::Ask);
}
