#!/usr/bin/env bash
# Benchmark of the evaluation harness (`rigor eval`) on the SWE-bench Lite dev instances.
#
# Prints three tables:
#   1. harness overhead per instance beyond the tests' own run time, warm environment cache;
#   2. environment build time, uv vs pip, for the same spec (fresh environment caches; the package
#      download caches of both tools are warm, so this measures resolution + install);
#   3. wall time of the whole gold run with --workers 1 vs 2 (warm environments);
# and checks that gold patches resolve and a no-op patch resolves nothing.
#
# Needs: clones of the dev repositories under $REPOS (default ~/.cache/rigor/repos, layout
# <owner>__<name>), e.g. `git clone <mirror> ~/.cache/rigor/repos/sqlfluff__sqlfluff`.
# Usage: bash bench/eval.sh [instance-id,...]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/rigor-binary.sh
DATASET="${DATASET:-../shared/data/swe-bench-lite-dev.jsonl}"
REPOS="${REPOS:-$HOME/.cache/rigor/repos}"
WORK="${WORK:-$HOME/.cache/rigor/bench-eval}"
rm -rf "$WORK/logs" "$WORK"/*.json
mkdir -p "$WORK"

# Only instances whose repository is cloned.
IDS="${1:-$(python3 - "$DATASET" "$REPOS" <<'PY'
import json, os, sys
ids = []
for line in open(sys.argv[1]):
    row = json.loads(line)
    if os.path.isdir(os.path.join(sys.argv[2], row["repo"].replace("/", "__"))):
        ids.append(row["instance_id"])
print(",".join(ids))
PY
)}"
N=$(echo "$IDS" | tr ',' '\n' | wc -l)
echo "instances: $N (those with a clone under $REPOS)"

run() { # run-id, extra args...
  local id=$1; shift
  local start end
  start=$(date +%s.%N)
  "$RIGOR" eval --dataset "$DATASET" --repos "$REPOS" --output "$WORK" --run-id "$id" --instance-ids "$IDS" "$@" >"$WORK/$id.out" 2>&1
  end=$(date +%s.%N)
  python3 -c "print(f'{$end - $start:.1f}')"
}

# Warm-up: builds (or finds) every environment.
run warm --predictions gold --workers 2 >/dev/null

W1=$(run w1 --predictions gold --workers 1)
W2=$(run w2 --predictions gold --workers 2)

python3 - "$DATASET" "$IDS" > "$WORK/noop.jsonl" <<'PY'
import json, sys
ids = set(sys.argv[2].split(","))
for line in open(sys.argv[1]):
    row = json.loads(line)
    if row["instance_id"] in ids:
        patch = "diff --git a/RIGOR_NOOP.txt b/RIGOR_NOOP.txt\nnew file mode 100644\n--- /dev/null\n+++ b/RIGOR_NOOP.txt\n@@ -0,0 +1 @@\n+noop\n"
        print(json.dumps({"instance_id": row["instance_id"], "model_name_or_path": "noop", "model_patch": patch}))
PY
run noop --predictions "$WORK/noop.jsonl" --workers 2 >/dev/null

# uv vs pip: the same spec built from scratch in fresh caches.
ENV_ID="${ENV_ID:-marshmallow-code__marshmallow-1359}"
for inst in uv pip; do
  rm -rf "$WORK/envs-$inst"
  "$RIGOR" eval --dataset "$DATASET" --repos "$REPOS" --output "$WORK" --run-id "build-$inst" --instance-ids "$ENV_ID" \
    --predictions gold --installer "$inst" --env-cache "$WORK/envs-$inst" >"$WORK/build-$inst.out" 2>&1
done

python3 - "$WORK" "$W1" "$W2" "$ENV_ID" <<'PY'
import json, os, sys, statistics
work, w1, w2, env_id = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
def results(run, model="gold"):
    d = os.path.join(work, "logs/run_evaluation", run, model)
    out = {}
    for i in sorted(os.listdir(d)):
        p = os.path.join(d, i, "rigor.json")
        if os.path.exists(p):
            out[i] = json.load(open(p))
    return out
r1 = results("w1")
print("\n## 1. Harness overhead per instance (warm environments, --workers 1)\n")
print("| instance | status | tests s | total s | overhead s |")
print("| --- | --- | ---: | ---: | ---: |")
over = []
for i, r in r1.items():
    t = r["timings"]
    o = max(0.0, t["total"] - t["tests"] - t["env"] - t["agent"])
    over.append(o)
    print(f"| {i} | {r['status']} | {t['tests']:.2f} | {t['total']:.2f} | {o:.2f} |")
print(f"\nmean overhead {statistics.mean(over):.2f} s, median {statistics.median(over):.2f} s, max {max(over):.2f} s (target ≤ 1 s)")
print("\n## 2. Environment build, same spec (%s)\n" % env_id)
print("| installer | build s | status |")
print("| --- | ---: | --- |")
for inst in ["uv", "pip"]:
    r = results(f"build-{inst}")[env_id]
    print(f"| {inst} | {r['timings']['env']:.1f} | {r['status']} |")
print("\n## 3. Whole gold run, warm environments\n")
print("| workers | wall s | resolved |")
print("| ---: | ---: | ---: |")
s1 = json.load(open(os.path.join(work, "gold.w1.json")))
s2 = json.load(open(os.path.join(work, "gold.w2.json")))
print(f"| 1 | {w1:.1f} | {s1['resolved_instances']}/{s1['total_instances']} |")
print(f"| 2 | {w2:.1f} | {s2['resolved_instances']}/{s2['total_instances']} |")
print(f"\nspeed-up {w1 / w2:.2f}x")
noop = json.load(open(os.path.join(work, "noop.noop.json")))
print(f"\nno-op patch: resolved {noop['resolved_instances']}/{noop['total_instances']} (must be 0)")
unresolved = [i for i, r in r1.items() if r["status"] != "resolved"]
for i in unresolved:
    print(f"gold not resolved: {i}: {r1[i]['message']}")
PY
