"""The official MCP Python SDK as a client of `rigor mcp` (run by tests/mcp.rs).

Usage: python sdk_client.py RIGOR_BINARY REPO
Lists the tools, localizes the fixture's issue, edits a file and sees the edit through
search_entity, sends bad requests (each gets an error, the server keeps serving), reads the
repository map resource, and finally writes a line that is not JSON to a fresh server and checks
that it still answers. Prints OK at the end; any failure raises.
"""

import asyncio
import json
import pathlib
import subprocess
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
try:  # the SDK's 2.x name, then its 1.x name
    from mcp.shared.exceptions import MCPError as McpError
except ImportError:
    from mcp.shared.exceptions import McpError


def field(obj, name: str):
    """A result field by its SDK 2.x (snake_case) or 1.x (camelCase) name."""
    if hasattr(obj, name):
        return getattr(obj, name)
    head, *rest = name.split("_")
    return getattr(obj, head + "".join(part.title() for part in rest))


async def session_checks(rigor: str, repo: pathlib.Path) -> None:
    params = StdioServerParameters(command=rigor, args=["mcp", "--repo", str(repo)])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = {t.name: t for t in (await session.list_tools()).tools}
            for name in ["localize", "search_entity", "retrieve_entity", "traverse_graph", "repo_map"]:
                assert name in tools, f"{name} not in {sorted(tools)}"
                assert field(tools[name], "input_schema").get("type") == "object", tools[name]

            issue = (repo / "ISSUE.md").read_text()
            result = await session.call_tool("localize", {"issue": issue, "level": "function", "top": 5})
            assert not field(result, "is_error"), result
            locations = field(result, "structured_content")["locations"]
            assert locations, result
            assert locations[0]["path"] == "durations.py", locations
            assert all("why" in loc and "score" in loc for loc in locations), locations
            assert "durations.py" in result.content[0].text, result.content

            result = await session.call_tool("search_entity", {"query": "brand_new_helper"})
            ids = [e["id"] for e in field(result, "structured_content")["entities"]]
            assert "durations.py:brand_new_helper" not in ids, ids

            # The client edits a file between two calls: the next answer sees it.
            source = repo / "durations.py"
            source.write_text(source.read_text() + "\n\ndef brand_new_helper(value):\n    return value\n")
            result = await session.call_tool("search_entity", {"query": "brand_new_helper"})
            ids = [e["id"] for e in field(result, "structured_content")["entities"]]
            assert "durations.py:brand_new_helper" in ids, result

            result = await session.call_tool("retrieve_entity", {"entity_ids": ["durations.py:brand_new_helper"]})
            assert "return value" in result.content[0].text, result

            # Bad requests: errors a model can act on, and the server goes on serving.
            for name, args, needle in [
                ("localize", {}, "missing required argument `issue`"),
                ("localize", {"issue": "x", "level": "galaxy"}, "unknown level"),
                ("no_such_tool", {}, "unknown tool"),
            ]:
                try:
                    result = await session.call_tool(name, args)
                    message = " ".join(getattr(c, "text", "") for c in result.content)
                    assert field(result, "is_error"), (name, result)
                except McpError as err:
                    message = err.error.message
                assert needle in message, (name, message)
            result = await session.call_tool("traverse_graph", {"start_entities": ["nowhere.py:nothing"]})
            assert field(result, "is_error") and "no entity" in result.content[0].text, result

            resources = await session.list_resources()
            uris = [str(r.uri) for r in resources.resources]
            assert "rigor://repo-map" in uris, uris
            text = (await session.read_resource("rigor://repo-map")).contents[0].text
            assert "durations.py" in text, text
            result = await session.call_tool("repo_map", {"budget_tokens": 500})
            assert "durations.py" in result.content[0].text, result


def malformed_line_checks(rigor: str, repo: pathlib.Path) -> None:
    server = subprocess.Popen(
        [rigor, "mcp", "--repo", str(repo)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
    }
    server.stdin.write("this is not JSON\n")
    server.stdin.write(json.dumps(initialize) + "\n")
    server.stdin.flush()
    for line in server.stdout:
        message = json.loads(line)
        if message.get("id") == 1:
            assert "result" in message, message
            break
    server.stdin.close()
    assert server.wait() == 0


def main() -> None:
    rigor, repo = sys.argv[1], pathlib.Path(sys.argv[2])
    asyncio.run(session_checks(rigor, repo))
    malformed_line_checks(rigor, repo)
    print("OK")


if __name__ == "__main__":
    main()
