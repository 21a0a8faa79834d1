#!/usr/bin/env python3
"""Code graph benchmark: rigor's index, incremental update, localize and regex search, side by side
with Universal Ctags (cold indexing) and ripgrep (regex search), on real code bases from the
package registries. Prints a Markdown table per repository.

Sources (downloaded once into ~/.cache/rigor/bench/src, never committed):
  - Django 5.1.4, the PyPI source distribution (pip download --no-deps --no-binary :all:)
  - tokio 1.54.1, the crates.io source (copied from ~/.cargo/registry, or `cargo download`-free
    fallback: any crates.io unpacked source given with --rust DIR)
  - effect 3.12.0, the npm package (npm pack): TypeScript sources plus its built JS and .d.ts

Usage: bench/graph.py [--rigor-bin PATH] [--probe-bin PATH] [--runs N] [--json FILE] [--no-build]
"""

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HOME = os.path.expanduser("~")
BENCH = os.path.join(HOME, ".cache", "rigor", "bench", "src")
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(HOME, ".cache", "rigor", "target"))
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Per code base: (name, directory, file to edit for the incremental pass, issue text, regex).
ISSUES = {
    "django": (
        "django/db/models/query.py",
        "QuerySet.union() drops the ordering of the combined queryset when one of the querysets is empty; "
        "order_by() after union raises DatabaseError: ORDER BY term does not match any column in the result set.",
        r"def \w+_queryset\(",
    ),
    "tokio": (
        "src/sync/mpsc/bounded.rs",
        "Sender::send_timeout on a bounded mpsc channel returns Elapsed even though the receiver is waiting; "
        "the permit acquired from the semaphore is dropped without notifying the receiver.",
        r"fn poll_\w+\(",
    ),
    "effect": (
        "src/Effect.ts",
        "Effect.retry with a Schedule that recurs forever does not interrupt when the fiber is interrupted; "
        "the retry loop ignores the interruption signal from Fiber.interrupt.",
        r"export const \w+Effect\b",
    ),
}


def run(cmd, cwd=None, stdout=subprocess.DEVNULL):
    """Runs a command; returns (seconds, max RSS in MiB, stdout text or None)."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=cwd, stdout=stdout, stderr=subprocess.PIPE)
    out = p.stdout.read() if stdout == subprocess.PIPE else None
    err = p.stderr.read()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}): {err.decode(errors='replace')[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024.0, (out.decode(errors="replace") if out is not None else None), err.decode(
        errors="replace"
    )


def dir_bytes(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, f))
            except OSError:
                pass
    return total


def fetch_sources(args):
    os.makedirs(BENCH, exist_ok=True)
    repos = []
    django = os.path.join(BENCH, "Django-5.1.4")
    if not os.path.isdir(django):
        subprocess.run(
            ["pip", "download", "--no-deps", "--no-binary", ":all:", "django==5.1.4", "-d", BENCH], check=True
        )
        subprocess.run(["tar", "xzf", "Django-5.1.4.tar.gz"], cwd=BENCH, check=True)
    repos.append(("django", django))
    tokio = args.rust or os.path.join(BENCH, "tokio-1.54.1")
    if not os.path.isdir(tokio):
        found = glob.glob(os.path.join(HOME, ".cargo", "registry", "src", "*", "tokio-1.54.1"))
        if not found:
            sys.exit("tokio 1.54.1 sources not found: run `cargo fetch` in the workspace, or pass --rust DIR")
        shutil.copytree(found[0], tokio)
    repos.append(("tokio", tokio))
    effect = os.path.join(BENCH, "effect-3.12.0")
    if not os.path.isdir(effect):
        subprocess.run(["npm", "pack", "effect@3.12.0", "--silent"], cwd=BENCH, check=True)
        os.makedirs(effect)
        subprocess.run(["tar", "xzf", "../effect-3.12.0.tgz", "--strip-components=1"], cwd=effect, check=True)
    repos.append(("effect", effect))
    return repos


def pct(values, p):
    values = sorted(values)
    return values[round((len(values) - 1) * p)]


def bench_repo(name, path, args):
    edit_file, issue, pattern = ISSUES[name]
    rigor = args.rigor_bin
    index_dir = os.path.join(path, ".rigor", "index")
    r = {"repo": name}

    # Cold index (best of N, each from an empty index) vs ctags -R.
    colds, rss = [], []
    for _ in range(args.runs):
        shutil.rmtree(index_dir, ignore_errors=True)
        t, m, out, _ = run([rigor, "index", "--repo", path, "--json"], stdout=subprocess.PIPE)
        colds.append(t)
        rss.append(m)
    _, link_rss, out, _ = run([rigor, "index", "--repo", path, "--json", "--stats"], stdout=subprocess.PIPE)
    stats = json.loads(out)
    r["link_ms"] = stats["link_ms"]
    r["link_rss_mib"] = link_rss
    r["files"] = stats["update"]["files"]
    r["graph"] = stats["graph"]
    r["cold_s"] = min(colds)
    r["cold_rss_mib"] = max(rss)
    r["index_mib"] = dir_bytes(index_dir) / 2**20
    ctags_times, ctags_rss = [], []
    tags = os.path.join(BENCH, f"{name}.tags")
    for _ in range(args.runs):
        t, m, _, _ = run(["ctags", "-R", "-f", tags, "--exclude=.rigor", path])
        ctags_times.append(t)
        ctags_rss.append(m)
    r["ctags_s"] = min(ctags_times)
    r["ctags_rss_mib"] = max(ctags_rss)
    r["ctags_mib"] = os.path.getsize(tags) / 2**20

    # Incremental: edit one file (append a function), re-index; then restore and re-index.
    target = os.path.join(path, edit_file)
    with open(target, encoding="utf-8") as f:
        original = f.read()
    extra = {
        "django": "\n\ndef rigor_bench_probe(x):\n    return x\n",
        "tokio": "\n#[allow(dead_code)]\nfn rigor_bench_probe(x: u8) -> u8 {\n    x\n}\n",
        "effect": "\nexport const rigorBenchProbe = (x: number): number => x\n",
    }[name]
    incs, inc_internal = [], []
    try:
        for i in range(args.runs):
            with open(target, "w", encoding="utf-8") as f:
                f.write(original + extra * (i + 1))
            t, _, out, _ = run([rigor, "index", "--repo", path, "--json"], stdout=subprocess.PIPE)
            s = json.loads(out)
            assert s["update"]["changed"] == 1, s
            incs.append(t)
            inc_internal.append(s["update"]["elapsed_ms"])
    finally:
        with open(target, "w", encoding="utf-8") as f:
            f.write(original)
    run([rigor, "index", "--repo", path, "--json"], stdout=subprocess.PIPE)
    r["incremental_update_ms"] = statistics.median(inc_internal)
    r["incremental_process_ms"] = statistics.median(incs) * 1000

    # Localize: in-process query latency (index loaded once) and one whole CLI call.
    _, _, _, err = run([rigor, "localize", "--repo", path, "--repeat", "50", issue])
    line = [l for l in err.splitlines() if "localize latency" in l][-1]
    r["localize_p50_ms"] = float(line.split("p50 ")[1].split(" ms")[0])
    r["localize_p95_ms"] = float(line.split("p95 ")[1].split(" ms")[0])
    t, m, out, _ = run([rigor, "localize", "--repo", path, "--top", "5", issue], stdout=subprocess.PIPE)
    r["localize_cli_ms"] = t * 1000
    r["localize_cli_rss_mib"] = m
    r["localize_top"] = [l.split()[-1] for l in out.splitlines()[:3]]

    # Regex search: rigor's search tool (the agent's) vs ripgrep, same pattern, all matches.
    rg_t, rs_t = [], []
    for _ in range(args.runs + 2):
        t, _, out_rg, _ = run(["rg", "-n", "--no-heading", pattern, path], stdout=subprocess.PIPE)
        rg_t.append(t)
        t, _, out_rs, _ = run([args.probe_bin, "search", path, pattern], stdout=subprocess.PIPE)
        rs_t.append(t)
    r["rg_ms"] = statistics.median(rg_t) * 1000
    r["search_ms"] = statistics.median(rs_t) * 1000
    r["rg_matches"] = len([l for l in out_rg.splitlines() if l.strip()])
    r["search_matches"] = len([l for l in out_rs.splitlines() if ":" in l and not l.startswith("[")])
    return r


def table(results):
    lines = [
        "| repository | files | rigor cold index | ctags -R | incremental (update / process) | index size (rigor / tags) "
        "| peak RSS (index / ctags) | localize p50 / p95 (in-process) | localize CLI | regex: rigor search / rg |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        # link: resolving names into the graph, done in memory when the index is used
    ]
    for r in results:
        lines.append(
            f"| {r['repo']} | {r['files']:,} | {r['cold_s']:.2f} s | {r['ctags_s']:.2f} s "
            f"| {r['incremental_update_ms']:.0f} ms / {r['incremental_process_ms']:.0f} ms "
            f"| {r['index_mib']:.1f} / {r['ctags_mib']:.1f} MiB | {r['cold_rss_mib']:.0f} / {r['ctags_rss_mib']:.0f} MiB "
            f"| {r['localize_p50_ms']:.1f} / {r['localize_p95_ms']:.1f} ms | {r['localize_cli_ms']:.0f} ms "
            f"| {r['search_ms']:.0f} / {r['rg_ms']:.0f} ms ({r['search_ms'] / max(r['rg_ms'], 1e-9):.2f}x) |"
        )
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rigor-bin", default=os.path.join(TARGET, "release", "rigor"))
    ap.add_argument("--probe-bin", default=os.path.join(TARGET, "release", "examples", "graph_probe"))
    ap.add_argument("--rust", help="a crates.io source directory to use instead of tokio 1.54.1")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", help="also write the raw figures here")
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    for tool in ("ctags", "rg"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found: apt-get install universal-ctags ripgrep")
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "rigor-cli", "--bin", "rigor"], cwd=ROOT, check=True)
        subprocess.run(
            ["cargo", "build", "--release", "-p", "rigor-graph", "--example", "graph_probe"], cwd=ROOT, check=True
        )
    results = []
    for name, path in fetch_sources(args):
        print(f"benchmarking {name} ({path}) ...", file=sys.stderr)
        results.append(bench_repo(name, path, args))
    print(f"nproc {os.cpu_count()}, best of {args.runs} for cold passes, medians otherwise\n")
    print(table(results))
    for r in results:
        g = r["graph"]
        print(
            f"\n{r['repo']}: {g['classes']:,} classes, {g['functions']:,} functions, {g['methods']:,} methods; "
            f"{g['imports']:,} imports, {g['invokes']:,} invokes, {g['inherits']:,} inherits edges; "
            f"{g['unresolved']:,} unresolved; linking the graph {r['link_ms']:.0f} ms. regex matches rigor {r['search_matches']} / rg {r['rg_matches']}. "
            f"localize top 3: {', '.join(r['localize_top'])}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
