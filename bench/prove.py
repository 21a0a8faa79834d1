#!/usr/bin/env python3
"""The cost of proving: the same scripted run with the proof (rigor's default) and without
(`--no-proof`), side by side, on the bundled example and on SWE-bench Lite dev instances.

The model is `scripted-server` (crates/rigor-test-support): every run makes the same tool calls,
so the difference is what rigor adds: the proof's exports, test runs and checks. On a dev instance
the script applies the instance's test patch (the reproduction) and its gold patch, then calls
`finish`; the instance's environment comes from `rigor eval --predictions gold` (built once, cached),
and also shows the gold patch resolves there.

Usage: bench/prove.sh [--runs N] [--repos DIR] [--instances ID,ID,...] [--no-build]
Prints a table per case: wall time (median of N), the prompt tokens rigor estimated, model turns,
the proof's status and its own time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT.parent / "shared" / "data" / "swe-bench-lite-dev.jsonl"
EXAMPLE = ROOT / "examples" / "durations"
REPRODUCTION = (
    "import unittest\n\nfrom durations import parse_duration\n\n\n"
    "class CompoundDurationTest(unittest.TestCase):\n    def test_compound(self):\n"
    "        self.assertEqual(parse_duration(\"1h30m\"), 5400)\n"
)


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def call(name: str, args: dict) -> dict:
    return {"reply": {"tool_calls": [{"name": name, "arguments": json.dumps(args)}]}}


def heredoc_apply(patch: str) -> str:
    return f"git apply --whitespace=nowarn - <<'RIGOR_BENCH_EOF'\n{patch}RIGOR_BENCH_EOF"


def example_script() -> list[dict]:
    return [
        call("search", {"pattern": "def parse_duration"}),
        call("view", {"path": "durations.py"}),
        call("edit", {"command": "create", "path": "test_compound.py", "file_text": REPRODUCTION}),
        call("edit", {"command": "str_replace", "path": "durations.py",
                      "old_str": "total = int(number) * UNITS[ch]", "new_str": "total += int(number) * UNITS[ch]"}),
        call("bash", {"command": "python3 -m unittest 2>&1 | tail -1"}),
        call("finish", {"summary": "accumulate every part"}),
    ]


def instance_script(row: dict) -> list[dict]:
    return [
        call("bash", {"command": heredoc_apply(row["test_patch"])}),
        call("bash", {"command": heredoc_apply(row["patch"])}),
        call("finish", {"summary": "the gold fix, with the dataset's tests as the reproduction"}),
    ]


class Server:
    """A scripted-server process serving one script."""

    def __init__(self, binary: Path, script: list[dict], work: Path):
        path = work / "script.json"
        path.write_text(json.dumps(script))
        self.proc = subprocess.Popen([str(binary), "--flavor", "openai", "--script", str(path)],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.url = self.proc.stdout.readline().strip()

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def one_run(rigor: Path, server_bin: Path, script: list[dict], repo: Path, proof: bool, env: dict) -> dict:
    with tempfile.TemporaryDirectory(prefix="rigor-bench-") as tmp:
        work = Path(tmp)
        server = Server(server_bin, script, work)
        try:
            (work / "config" / "rigor").mkdir(parents=True)
            (work / "config" / "rigor" / "config.toml").write_text(
                f'[providers.scripted]\nkind = "openai"\nbase_url = "{server.url}"\n')
            args = [str(rigor), "run", "--repo", str(repo), "--issue-file", str(work / "issue.md"),
                    "--model", "scripted:bench", "--json", "--bouncer", "off", "--max-steps", str(len(script) + 1)]
            (work / "issue.md").write_text(env.pop("RIGOR_BENCH_ISSUE", "fix it"))
            if not proof:
                args.append("--no-proof")
            run_env = {**os.environ, "XDG_CONFIG_HOME": str(work / "config"), "NO_COLOR": "1", **env}
            import time
            started = time.monotonic()
            done = subprocess.run(args, capture_output=True, text=True, env=run_env)
            wall = time.monotonic() - started
        finally:
            server.stop()
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    tokens = sum(e.get("estimated_tokens", 0) for e in events if e.get("type") == "model_request")
    turns = sum(1 for e in events if e.get("type") == "model_request")
    last = events[-1] if events else {}
    status = last.get("proof", {}).get("status", "-") if last.get("type") == "proof" else "-"
    proof_secs = last.get("proof", {}).get("secs", 0.0) if last.get("type") == "proof" else 0.0
    return {"wall": wall, "tokens": tokens, "turns": turns, "proof": status, "proof_secs": proof_secs,
            "exit": done.returncode, "stderr": done.stderr[-400:]}


def table(name: str, rows: dict[str, list[dict]]) -> None:
    print(f"\n{name}")
    print(f"| mode | runs | wall median (s) | wall min (s) | prompt tokens | turns | proof | proof time (s) | exit |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for mode, runs in rows.items():
        walls = [r["wall"] for r in runs]
        last = runs[-1]
        print(f"| {mode} | {len(runs)} | {statistics.median(walls):.2f} | {min(walls):.2f} | {last['tokens']} | "
              f"{last['turns']} | {last['proof']} | {statistics.median(r['proof_secs'] for r in runs):.2f} | "
              f"{last['exit']} |")
    base, proven = rows.get("plain"), rows.get("proven")
    if base and proven:
        extra = statistics.median(r["wall"] for r in proven) - statistics.median(r["wall"] for r in base)
        print(f"proving adds {extra:.2f} s of wall time "
              f"and {proven[-1]['tokens'] - base[-1]['tokens']} prompt tokens over {base[-1]['turns']} turns")


def compare(rigor: Path, server_bin: Path, script: list[dict], repo: Path, runs: int, env: dict) -> dict:
    rows: dict[str, list[dict]] = {"plain": [], "proven": []}
    for _ in range(runs):
        for mode in ("plain", "proven"):
            result = one_run(rigor, server_bin, script, repo, mode == "proven", dict(env))
            if result["exit"] not in (0, 6):
                log(f"{mode} run exited {result['exit']}: {result['stderr']}")
            rows[mode].append(result)
    return rows


def instance_env(rigor: Path, row: dict, repos: Path, work: Path) -> Path | None:
    """Builds (or finds) the instance's environment with a gold evaluation; returns its venv."""
    dataset = work / f"{row['instance_id']}.jsonl"
    dataset.write_text(json.dumps(row) + "\n")
    out = work / "eval"
    run_id = f"bench-prove-{row['instance_id']}"
    done = subprocess.run([str(rigor), "eval", "--dataset", str(dataset), "--predictions", "gold", "--repos", str(repos),
                           "--run-id", run_id, "--output", str(out)], capture_output=True, text=True)
    log(f"{row['instance_id']}: gold evaluation: {done.stdout.strip().splitlines()[0] if done.stdout else done.stderr[-300:]}")
    records = list(out.glob(f"logs/run_evaluation/{run_id}/*/{row['instance_id']}/rigor.json"))
    if not records:
        return None
    key = json.loads(records[0].read_text()).get("env_key")
    cache = Path(os.environ.get("RIGOR_CACHE", Path.home() / ".cache" / "rigor"))
    venv = cache / "envs" / str(key) / "venv"
    return venv if (venv / "bin" / "python").exists() else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--repos", help="directory of clones (owner__name or owner/name), for dev instances")
    parser.add_argument("--instances", default="marshmallow-code__marshmallow-1359,marshmallow-code__marshmallow-1343,pylint-dev__astroid-1268")
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "rigor" / "target"))
    if not args.no_build:
        log("building rigor and scripted-server (debug, as the tests use them) ...")
        subprocess.run(["cargo", "build", "-q", "-p", "rigor-cli", "-p", "rigor-test-support"], cwd=ROOT, check=True)
    rigor, server_bin = target / "debug" / "rigor", target / "debug" / "scripted-server"

    with tempfile.TemporaryDirectory(prefix="rigor-bench-prove-") as tmp:
        work = Path(tmp)
        repo = work / "durations"
        shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("__pycache__"))
        git("init", "-q", cwd=repo)
        git("-c", "user.name=b", "-c", "user.email=b@b", "add", "-A", cwd=repo)
        git("-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "example", cwd=repo)
        issue = (EXAMPLE / "ISSUE.md").read_text()
        table("bundled example (unittest)", compare(rigor, server_bin, example_script(), repo, args.runs,
                                                    {"RIGOR_BENCH_ISSUE": issue}))
        if not args.repos:
            log("no --repos: dev-set instances skipped")
            return 0
        rows = {json.loads(l)["instance_id"]: json.loads(l) for l in DATASET.read_text().splitlines() if l.strip()}
        for instance_id in args.instances.split(","):
            row = rows[instance_id]
            venv = instance_env(rigor, row, Path(args.repos), work)
            if venv is None:
                log(f"{instance_id}: no environment, skipped")
                continue
            flat = row["repo"].replace("/", "__")
            clone = next(p for p in [Path(args.repos) / flat, Path(args.repos) / row["repo"]] if p.exists())
            tree = work / f"tree-{instance_id}"
            git("worktree", "add", "-q", "--detach", str(tree), row["base_commit"], cwd=clone)
            try:
                env = {"VIRTUAL_ENV": str(venv), "RIGOR_BENCH_ISSUE": row["problem_statement"]}
                table(f"{instance_id} (gold patch, the dataset's tests as the reproduction)",
                      compare(rigor, server_bin, instance_script(row), tree, args.runs, env))
            finally:
                git("worktree", "remove", "--force", str(tree), cwd=clone)
    return 0


if __name__ == "__main__":
    sys.exit(main())
