"""Latency of rigor's code graph through MCP (one `rigor mcp` server, index in memory) against
one `rigor` CLI call per query, on one repository; and the server's RSS. Used by bench/mcp.sh.

Usage: mcp_client.py RIGOR REPO [N]
Talks newline-delimited JSON-RPC over the server's stdio directly (no SDK), so that what is
measured is rigor's answer, not a client library.
"""

import json
import os
import statistics
import subprocess
import sys
import time

QUERIES = [
    ("localize", {"issue": "QuerySet.union() ignores ordering of the combined queries", "top": 10}),
    ("localize", {"issue": "migrations autodetector crashes when a model field is renamed", "top": 10}),
    ("search_entity", {"query": "QuerySet.union"}),
    ("search_entity", {"query": "MigrationAutodetector"}),
]


class Server:
    def __init__(self, rigor, repo):
        self.proc = subprocess.Popen(
            [rigor, "mcp", "--repo", repo], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.next_id = 0
        self.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                    "clientInfo": {"name": "bench", "version": "0"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, message):
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def request(self, method, params):
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        for line in self.proc.stdout:
            message = json.loads(line)
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(message["error"])
                return message["result"]
        raise RuntimeError("the server closed its output")

    def call(self, tool, args):
        return self.request("tools/call", {"name": tool, "arguments": args})

    def rss_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def cli(rigor, repo, tool, args):
    if tool == "localize":
        command = [rigor, "localize", args["issue"], "--repo", repo, "--top", str(args["top"])]
    else:
        command = [rigor, "graph", "search", args["query"], "--repo", repo]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def main():
    rigor, repo = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    start = time.perf_counter()
    server = Server(rigor, repo)
    server.call("search_entity", {"query": "warm"})  # the first answer waits for the first indexing
    first = time.perf_counter() - start
    cli(rigor, repo, "localize", QUERIES[0][1])  # builds the persisted index the CLI reuses
    rows = []
    for tool, args in QUERIES:
        mcp, via_cli = [], []
        for _ in range(n):
            t = time.perf_counter()
            server.call(tool, args)
            mcp.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            cli(rigor, repo, tool, args)
            via_cli.append((time.perf_counter() - t) * 1000)
        label = f"{tool} {list(args.values())[0][:40]!r}"
        rows.append((label, statistics.median(mcp), statistics.median(via_cli)))
    rss = server.rss_mib()
    server.close()
    files = sum(1 for _ in os.popen(f"git -C {repo} ls-files '*.py'"))
    print(f"repository: {repo} ({files} Python files); {n} runs per query; medians")
    print(f"server start + first indexing: {first:.1f} s; server RSS after the queries: {rss:.0f} MiB")
    print(f"{'query':<60} {'MCP ms':>9} {'CLI ms':>9} {'CLI/MCP':>8}")
    for label, mcp_ms, cli_ms in rows:
        print(f"{label:<60} {mcp_ms:>9.1f} {cli_ms:>9.1f} {cli_ms / mcp_ms:>7.1f}x")


if __name__ == "__main__":
    main()
