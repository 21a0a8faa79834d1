#!/usr/bin/env python3
"""What rigor's first model request costs, by part, for the full and the compact prompt.

For each repository (the bundled example `examples/durations`, and a real project: the
`requests` 2.32.3 wheel from PyPI unpacked into a git repository) and each prompt profile, rigor
runs one turn against a loopback OpenAI-compatible server written here, which records the
request and answers "ok" (the run then ends on its one-step budget). Two wirings: native tool
calls (the schemas travel in `tools`) and the text action format (`text_actions = true`: the
tools are described at the end of the system message), as small local models are driven.

Parts: the system prompt's workflow and project instructions, the repository map, the tool
descriptions (text actions) or schemas (native), the issue. Tokens are estimated at 3.5
characters per token (rigor's own estimate); "rigor est." is the `model_request` event's
estimate, which counts everything sent, tool schemas included.

Usage: python3 bench/prompt_cost.py [--rigor PATH]   (default: $CARGO_TARGET_DIR/debug/rigor)
"""

import argparse
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CACHE = os.path.expanduser("~/.cache/rigor/bench/sdist")
REQUESTS_WHEEL = "requests-2.32.3-py3-none-any.whl"
REQUESTS_ISSUE = (
    "Session.get with stream=True and a (connect, read) timeout tuple: the read timeout is ignored "
    "when iter_content is used, so a stalled server hangs forever instead of raising ReadTimeout."
)

requests_seen = []


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        requests_seen.append(body)
        chunks = [
            {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "ok"}, "finish_reason": None}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
             "usage": {"prompt_tokens": 0, "completion_tokens": 1, "total_tokens": 1}},
        ]
        payload = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        data = payload.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def git_repo(src_dir, dest):
    shutil.copytree(src_dir, dest)
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.email=b@b", "-c", "user.name=b", "commit", "-qm", "base"]):
        subprocess.run(["git", *args], cwd=dest, check=True)
    return dest


def requests_repo(tmp):
    wheel = os.path.join(CACHE, REQUESTS_WHEEL)
    if not os.path.exists(wheel):
        os.makedirs(CACHE, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "requests==2.32.3", "-d", CACHE],
                       check=True)
    src = os.path.join(tmp, "requests-src")
    with zipfile.ZipFile(wheel) as z:
        z.extractall(src)
    shutil.rmtree(os.path.join(src, "requests-2.32.3.dist-info"), ignore_errors=True)
    return git_repo(src, os.path.join(tmp, "requests"))


def est(text):
    return round(len(text) / 3.5)


def split_system(system):
    """(workflow, map, tool text) of a system message."""
    tool_at = system.find("# How to act")
    tool_text = system[tool_at:] if tool_at >= 0 else ""
    rest = system[:tool_at] if tool_at >= 0 else system
    map_at = min([i for i in (rest.find("Repository map ("), rest.find("Files relevant to the issue")) if i >= 0],
                 default=-1)
    if map_at < 0:
        return rest, "", tool_text
    return rest[:map_at], rest[map_at:], tool_text


def measure(rigor, repo, issue, profile, text_actions, port, tmp):
    config_home = os.path.join(tmp, f"cfg-{profile}-{text_actions}")
    os.makedirs(os.path.join(config_home, "rigor"), exist_ok=True)
    with open(os.path.join(config_home, "rigor", "config.toml"), "w") as f:
        f.write(f"[providers.bench]\nbase_url = \"http://127.0.0.1:{port}/v1\"\n"
                f"text_actions = {'true' if text_actions else 'false'}\n")
    env = dict(os.environ, XDG_CONFIG_HOME=config_home)
    for key in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "RIGOR_MODEL"):
        env.pop(key, None)
    requests_seen.clear()
    out = subprocess.run(
        [rigor, "run", "--repo", repo, "--issue", issue, "--model", "bench:qwen2.5-coder-1.5b", "--prompt", profile,
         "--max-steps", "1", "--no-proof", "--bouncer", "off", "--json"],
        env=env, capture_output=True, text=True, timeout=900)
    estimate = next((json.loads(l)["estimated_tokens"] for l in out.stdout.splitlines()
                     if l.startswith("{") and json.loads(l).get("type") == "model_request"), None)
    if not requests_seen:
        sys.exit(f"rigor sent no request ({profile}):\n{out.stderr[-2000:]}")
    body = requests_seen[0]
    system = body["messages"][0]["content"]
    workflow, repo_map, tool_text = split_system(system)
    schemas = json.dumps(body.get("tools", [])) if body.get("tools") else ""
    issue_text = body["messages"][1]["content"]
    parts = {"system": est(workflow), "map": est(repo_map), "tools": est(tool_text) + est(schemas),
             "issue": est(issue_text)}
    parts["total"] = sum(parts.values())
    parts["rigor est."] = estimate
    parts["tools n"] = len(body.get("tools") or []) or tool_text.count("\n## ")
    return parts


def main():
    parser = argparse.ArgumentParser()
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/rigor/target"))
    parser.add_argument("--rigor", default=os.path.join(target, "debug", "rigor"))
    args = parser.parse_args()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    with tempfile.TemporaryDirectory() as tmp:
        example = git_repo(os.path.join(ROOT, "examples", "durations"), os.path.join(tmp, "durations"))
        with open(os.path.join(ROOT, "examples", "durations", "ISSUE.md")) as f:
            example_issue = f.read()
        repos = [("examples/durations", example, example_issue), ("requests 2.32.3", requests_repo(tmp), REQUESTS_ISSUE)]
        columns = ["system", "tools", "map", "issue", "total", "rigor est.", "tools n"]
        print("First request, estimated tokens by part (3.5 chars/token)\n")
        print(f"| repository | wiring | prompt | {' | '.join(columns)} |")
        print("|" + "---|" * (3 + len(columns)))
        for name, repo, issue in repos:
            for text_actions in (True, False):
                for profile in ("full", "compact"):
                    p = measure(args.rigor, repo, issue, profile, text_actions, port, tmp)
                    wiring = "text actions" if text_actions else "native tools"
                    print(f"| {name} | {wiring} | {profile} | " + " | ".join(str(p[c]) for c in columns) + " |",
                          flush=True)
    server.shutdown()


if __name__ == "__main__":
    main()
