#!/usr/bin/env bash
# Harness fidelity on SWE-bench Verified: gold and no-op predictions on every Verified instance
# whose repository is cloned, graded by `rigor eval`, against the official verdicts (gold resolves
# every instance, a no-op patch none).
#
# Prints one table per repository (instances, set up, gold resolved, no-op resolved, empty
# resolved) and the reason of every gold failure:
#   spec          the environment or its per-instance install could not be built, or the tests ran
#                 and failed (a wrong or missing pin, a system package the official image has);
#   network       the tests needed the network (infra_failure network_unreachable);
#   missing data  the clone lacks files of the instance (a partial mirror);
#   flaky         failed once, resolved when run again (each gold failure is run a second time);
# and the mean per-instance overhead beyond the tests' own time (per-instance install included),
# from the second run (warm environments and uv cache).
#
# Needs: the dataset as JSONL ($DATASET, default ~/.cache/rigor/swe-bench-verified.jsonl; the
# SWE-bench repository's history has it as data/SWE-bench_Verified/test.parquet), clones under
# $REPOS (<owner>__<name>, e.g. the bare mirrors `fetch` makes). Environments are cached in
# $ENVS (default ~/.cache/rigor/envs); extra flags for `rigor eval` in $EVAL_ARGS (e.g.
# --network for requests, whose tests call httpbin.org).
# Usage: bash bench/fidelity.sh [instance-id,...]
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
source bench/common.sh
rigor_binary
DATASET="${DATASET:-$HOME/.cache/rigor/swe-bench-verified.jsonl}"
REPOS="${REPOS:-$HOME/.cache/rigor/repos}"
ENVS="${ENVS:-$HOME/.cache/rigor/envs}"
WORK="${WORK:-$HOME/.cache/rigor/bench-fidelity}"
WORKERS="${WORKERS:-2}"
rm -rf "$WORK/logs" "$WORK"/*.json
mkdir -p "$WORK"

IDS="${1:-$(cloned_instances "$DATASET" "$REPOS")}"
[ -n "$IDS" ] || { echo "no Verified instance has a clone under $REPOS" >&2; exit 1; }
echo "instances: $(echo "$IDS" | tr ',' '\n' | wc -l) (those with a clone under $REPOS)"

python3 - "$DATASET" "$IDS" "$WORK" <<'PY'
import json, sys
ids = set(sys.argv[2].split(","))
noop = "diff --git a/RIGOR_NOOP.txt b/RIGOR_NOOP.txt\nnew file mode 100644\n--- /dev/null\n+++ b/RIGOR_NOOP.txt\n@@ -0,0 +1 @@\n+noop\n"
with open(f"{sys.argv[3]}/noop.jsonl", "w") as n, open(f"{sys.argv[3]}/empty.jsonl", "w") as e:
    for line in open(sys.argv[1]):
        row = json.loads(line)
        if row["instance_id"] in ids:
            n.write(json.dumps({"instance_id": row["instance_id"], "model_name_or_path": "noop", "model_patch": noop}) + "\n")
            e.write(json.dumps({"instance_id": row["instance_id"], "model_name_or_path": "empty", "model_patch": ""}) + "\n")
PY

run() { # run-id, predictions, instance ids
  # shellcheck disable=SC2086
  "$RIGOR" eval --dataset "$DATASET" --repos "$REPOS" --output "$WORK" --env-cache "$ENVS" --run-id "$1" \
    --predictions "$2" --instance-ids "$3" --workers "$WORKERS" ${EVAL_ARGS:-} >"$WORK/$1.out" 2>&1 || true
}
run gold gold "$IDS"
run noop "$WORK/noop.jsonl" "$IDS"
run empty "$WORK/empty.jsonl" "$IDS"
# Every gold failure once more: a second failure is the verdict, a pass is a flaky test.
AGAIN=$(python3 - "$WORK" <<'PY'
import json, os, sys
d = os.path.join(sys.argv[1], "logs/run_evaluation/gold/gold")
print(",".join(i for i in sorted(os.listdir(d))
               if os.path.exists(os.path.join(d, i, "rigor.json"))
               and json.load(open(os.path.join(d, i, "rigor.json")))["status"] != "resolved"))
PY
)
[ -z "$AGAIN" ] || run gold-again gold "$AGAIN"
run warm gold "$IDS" # warm environments and uv cache: the overhead figure

python3 - "$WORK" "$DATASET" "$IDS" <<'PY'
import collections, json, os, statistics, sys
work, dataset, ids = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
repo_of = {}
for line in open(dataset):
    row = json.loads(line)
    repo_of[row["instance_id"]] = row["repo"]
def results(run, model):
    d = os.path.join(work, "logs/run_evaluation", run, model)
    out = {}
    for i in (sorted(os.listdir(d)) if os.path.isdir(d) else []):
        p = os.path.join(d, i, "rigor.json")
        if os.path.exists(p):
            out[i] = json.load(open(p))
    return out
gold, again, noop, empty, warm = (results("gold", "gold"), results("gold-again", "gold"), results("noop", "noop"),
                                  results("empty", "empty"), results("warm", "gold"))
def reason(r):
    if r.get("missing_files"):
        return "missing data", f"{len(r['missing_files'])} file(s) absent from the clone, e.g. {r['missing_files'][0]}"
    if r["status"] == "infra_failure":
        return ("network" if "network" in r["message"] else "infrastructure"), r["message"].split(":")[0]
    return "spec", f"{r['status']}: {r['message'].splitlines()[0] if r['message'] else ''}"
rows = collections.defaultdict(lambda: collections.Counter())
failures = []
for i in ids:
    repo = repo_of[i]
    g = gold.get(i)
    c = rows[repo]
    c["instances"] += 1
    if g is None:
        continue
    set_up = g["status"] not in ("env_failed", "error")
    c["set up"] += set_up
    resolved = g["status"] == "resolved"
    if not resolved and again.get(i, {}).get("status") == "resolved":
        failures.append((repo, i, "flaky", "resolved when run again"))
        resolved = True
    elif not resolved:
        kind, why = reason(g)
        failures.append((repo, i, kind, why))
    c["gold resolved"] += resolved
    c["no-op resolved"] += noop.get(i, {}).get("status") == "resolved"
    c["empty resolved"] += empty.get(i, {}).get("status") == "resolved"
print("\n## Gold, no-op and empty predictions per repository (SWE-bench Verified)\n")
print("| repository | instances | set up | gold resolved | gold rate (of set up) | no-op resolved | empty resolved |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
tot = collections.Counter()
for repo in sorted(rows):
    c = rows[repo]
    tot.update(c)
    rate = f"{100 * c['gold resolved'] / c['set up']:.1f}%" if c["set up"] else "–"
    print(f"| {repo} | {c['instances']} | {c['set up']} | {c['gold resolved']} | {rate} | {c['no-op resolved']} | {c['empty resolved']} |")
rate = f"{100 * tot['gold resolved'] / tot['set up']:.1f}%" if tot["set up"] else "–"
print(f"| **all** | {tot['instances']} | {tot['set up']} | {tot['gold resolved']} | {rate} | {tot['no-op resolved']} | {tot['empty resolved']} |")
print("\n## Gold failures\n")
print("| repository | instance | reason | detail |")
print("| --- | --- | --- | --- |")
for repo, i, kind, why in failures:
    print(f"| {repo} | {i} | {kind} | {why.replace('|', '/')[:160]} |")
over = [max(0.0, r["timings"]["total"] - r["timings"]["tests"] - r["timings"]["env"] - r["timings"].get("agent", 0.0))
        for r in warm.values() if r["timings"]["tests"] > 0]
inst = [r["timings"].get("install", 0.0) for r in warm.values() if r["timings"]["tests"] > 0]
if over:
    print(f"\nper-instance overhead beyond the tests (warm, per-instance install included): mean {statistics.mean(over):.2f} s, "
          f"median {statistics.median(over):.2f} s, max {max(over):.2f} s (target ≤ 1 s); per-instance install mean "
          f"{statistics.mean(inst):.2f} s")
PY
