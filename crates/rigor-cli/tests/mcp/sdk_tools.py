"""The official MCP Python SDK calling the tools of `rigor mcp` that run code (run by tests/mcp.rs).

Usage: python sdk_tools.py MODE RIGOR_BINARY REPO [EXTRA...]
- run_tests: the related tests of a file, chosen ids, a client edit seen by the next run, bad ids
  and a directory without tests (MCP errors), the server still serving after them.
- check_patch: a fix with its reproduction is proven; a fix that breaks a related test is not and
  names the test; a patch that does not apply is an MCP error; progress notifications arrive.
- solve: rigor solves the issue (the scripted model behind `--model`); progress notifications
  arrive, the result has the patch and the proof. EXTRA: the model spec.
Prints OK at the end; any failure raises. The Rust test checks the checkout from outside.
"""

import asyncio
import difflib
import os
import pathlib
import subprocess
import sys
import tempfile

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
try:  # the SDK's 2.x name, then its 1.x name
    from mcp.shared.exceptions import MCPError as McpError
except ImportError:
    from mcp.shared.exceptions import McpError

FIX_OLD = "total = int(number) * UNITS[ch]"
FIX_NEW = "total += int(number) * UNITS[ch]"
REPRODUCTION = (
    "import unittest\n\nfrom durations import parse_duration\n\n\n"
    "class CompoundDurationTest(unittest.TestCase):\n"
    "    def test_compound(self):\n"
    "        self.assertEqual(parse_duration(\"1h30m\"), 5400)\n"
)


def field(obj, name: str):
    """A result field by its SDK 2.x (snake_case) or 1.x (camelCase) name."""
    if hasattr(obj, name):
        return getattr(obj, name)
    head, *rest = name.split("_")
    return getattr(obj, head + "".join(part.title() for part in rest))


def diff(repo: pathlib.Path, path: str, *replacements: tuple) -> str:
    """A `git diff`-style patch of `path` with each (old, new) replaced."""
    before = after = (repo / path).read_text()
    for old, new in replacements:
        assert old in after, (path, old)
        after = after.replace(old, new)
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{path}", f"b/{path}"
    )
    return f"diff --git a/{path} b/{path}\n" + "".join(lines)


async def error_of(session: ClientSession, name: str, args: dict) -> str:
    """The message of the MCP error (or tool error) a call gets; fails if it succeeds."""
    try:
        result = await session.call_tool(name, args)
    except McpError as err:
        return err.error.message
    assert field(result, "is_error"), (name, args, result)
    return " ".join(getattr(c, "text", "") for c in result.content)


def statuses(result) -> dict:
    assert not field(result, "is_error"), result
    return {t["id"]: t["status"] for t in field(result, "structured_content")["tests"]}


async def run_tests_checks(session: ClientSession, repo: pathlib.Path) -> None:
    tools = {t.name for t in (await session.list_tools()).tools}
    assert {"run_tests", "check_patch", "solve"} <= tools, tools

    # The related tests of a source file: the test module that imports it.
    result = await session.call_tool("run_tests", {"files": ["durations.py"]})
    found = statuses(result)
    assert found == {
        "test_durations.ParseDurationTest.test_single_units": "PASSED",
        "test_durations.ParseDurationTest.test_rejects_garbage": "PASSED",
        "test_durations.FormatDurationTest.test_format": "PASSED",
    }, found
    structured = field(result, "structured_content")
    assert structured["runner"] == "unittest" and structured["related_files"] == ["test_durations.py"], structured
    assert "3 passed, 0 failed" in result.content[0].text, result.content[0].text

    # The client breaks single units in its checkout: the next run sees the edit.
    source = repo / "durations.py"
    original = source.read_text()
    source.write_text(original.replace('"s": 1}', '"s": 2}'))
    chosen = ["test_durations.ParseDurationTest.test_single_units", "test_durations.FormatDurationTest.test_format"]
    result = await session.call_tool("run_tests", {"test_ids": chosen})
    found = statuses(result)
    assert found == {chosen[0]: "FAILED", chosen[1]: "PASSED"}, found
    assert "AssertionError" in result.content[0].text, result.content[0].text
    source.write_text(original)

    # Bad requests: errors a model can act on; the server goes on serving.
    message = await error_of(session, "run_tests", {"test_ids": ["test_nowhere.Nothing.test_x"]})
    assert "reported none of the tests" in message and "module.TestClass.test_name" in message, message
    message = await error_of(session, "run_tests", {"files": ["no_such_file.py"]})
    assert "no file `no_such_file.py`" in message, message
    message = await error_of(session, "run_tests", {})
    assert "give `test_ids`" in message, message
    result = await session.call_tool("run_tests", {"files": ["test_durations.py"]})
    assert len(statuses(result)) == 3, result


async def no_runner_checks(rigor: str) -> None:
    with tempfile.TemporaryDirectory() as empty:
        git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", empty]
        (pathlib.Path(empty) / "README.md").write_text("nothing to test\n")
        subprocess.run(git + ["init", "-q"], check=True)
        subprocess.run(git + ["add", "-A"], check=True)
        subprocess.run(git + ["commit", "-q", "-m", "init"], check=True)
        params = StdioServerParameters(command=rigor, args=["mcp", "--repo", empty], env=dict(os.environ))
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                message = await error_of(session, "run_tests", {"test_ids": ["test_x"]})
                assert "cannot run tests here" in message, message
                result = await session.call_tool("repo_map", {})
                assert not field(result, "is_error"), result


async def check_patch_checks(session: ClientSession, repo: pathlib.Path) -> None:
    issue = (repo / "ISSUE.md").read_text()
    fix = diff(repo, "durations.py", (FIX_OLD, FIX_NEW))
    reproduction = {"path": "test_compound.py", "content": REPRODUCTION}
    steps = []

    async def progress(value, total, message):
        steps.append(message)

    result = await session.call_tool(
        "check_patch", {"patch": fix, "reproduction": reproduction, "issue": issue}, progress_callback=progress
    )
    assert not field(result, "is_error"), result
    proof = field(result, "structured_content")
    assert proof["status"] == "proven", proof
    repro = proof["reproduction"]
    assert [t["status"] for t in repro["before"]] == ["FAILED"], repro
    assert [t["status"] for t in repro["after"]] == ["PASSED"], repro
    assert proof["regressions"]["broken"] == [] and len(proof["regressions"]["before"]) == 3, proof
    assert "proof: proven" in result.content[0].text, result.content[0].text
    assert any(s and s.startswith("proof reproduction_before: passed") for s in steps), steps

    # A fix that keeps compound durations right but breaks an existing test.
    both = diff(repo, "durations.py", (FIX_OLD, FIX_NEW), ('"s": 1}', '"s": 2}'))
    result = await session.call_tool("check_patch", {"patch": both, "reproduction": reproduction, "issue": issue})
    proof = field(result, "structured_content")
    assert proof["status"] == "unproven", proof
    assert "test_durations.ParseDurationTest.test_single_units" in proof["regressions"]["broken"], proof
    assert "breaks existing tests" in proof["evidence"], proof

    stale = fix.replace("-            total = int", "-            total = float")
    message = await error_of(session, "check_patch", {"patch": stale})
    assert "the patch does not apply" in message, message
    message = await error_of(session, "check_patch", {"patch": fix, "reproduction": {"path": "../x.py", "content": "x"}})
    assert "plain relative path" in message, message


async def solve_checks(session: ClientSession) -> None:
    steps = []

    async def progress(value, total, message):
        steps.append(message)

    result = await session.call_tool(
        "solve",
        {"issue": "parse_duration ignores all but the last part: parse_duration('1h30m') returns 1800, not 5400",
         "max_steps": 10},
        progress_callback=progress,
    )
    assert not field(result, "is_error"), result
    solved = field(result, "structured_content")
    assert solved["status"] == "submitted", solved
    assert FIX_NEW in solved["patch"] and "test_compound.py" in solved["patch"], solved["patch"]
    assert solved["proof"]["status"] == "proven", solved["proof"]
    assert any(s and s.startswith("run ") for s in steps), steps
    assert any(s and "turn 1" in s for s in steps), steps
    assert any(s and s.startswith("proof ") for s in steps), steps
    text = (await session.read_resource(solved["trajectory"])).contents[0].text
    assert '"type":"run_finished"' in text, text[-500:]


async def main() -> None:
    mode, rigor, repo = sys.argv[1], sys.argv[2], pathlib.Path(sys.argv[3])
    args = ["mcp", "--repo", str(repo)] + (["--model", sys.argv[4]] if len(sys.argv) > 4 else [])
    # The server gets the test's environment (the SDK passes only a few variables by default).
    params = StdioServerParameters(command=rigor, args=args, env=dict(os.environ))
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            if mode == "run_tests":
                await run_tests_checks(session, repo)
            elif mode == "check_patch":
                await check_patch_checks(session, repo)
            elif mode == "solve":
                await solve_checks(session)
            else:
                raise SystemExit(f"unknown mode {mode}")
    if mode == "run_tests":
        await no_runner_checks(rigor)
    print("OK")


if __name__ == "__main__":
    asyncio.run(main())
