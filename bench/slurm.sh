#!/usr/bin/env bash
# Benchmark of `rigor eval --executor slurm` against `--executor local` on this machine, through a
# real single-node Slurm (scripts/slurm-local.sh): the SWE-bench Lite dev instances, gold
# predictions, warm environment cache.
#
# Prints:
#   1. wall time of the whole gold run: local with --workers 2, and Slurm with 2 CPUs (two array
#      tasks at once, one instance at a time each), for the default slicing and one instance per
#      task; Slurm's overhead per instance, measured as slot time not spent in an instance
#      ((slots × wall − Σ instance time) / instances) beyond the local run's (target ≤ 1 s);
#   2. whether both executors give the same verdict on every instance;
#   3. the dry-run submission plan for the 23 dev instances and for 2,294 instances (SWE-bench's
#      size; the rows are made up with its repositories' proportions, as its test split is not
#      here), with per-task wall-time estimates from the timings recorded by the runs above.
#
# Repositories: bare git directories under $MIRRORS (default /work/.mirror/<owner>+<name>/repo, as
# `fetch` leaves them) are linked as $WORK/repos/<owner>__<name>; instances whose repository is
# absent are left out (and named). Needs root (the Slurm daemons).
# Usage: bash bench/slurm.sh [instance-id,...]   (the timed runs; default: every instance with a
#        mirror; RIGOR=path/to/rigor to use a built binary; WARM=0 skips the warm-up run)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/common.sh
source bench/common.sh
rigor_binary
DATASET="$(realpath "${DATASET:-../shared/data/swe-bench-lite-dev.jsonl}")"
MIRRORS="${MIRRORS:-/work/.mirror}"
WORK="${WORK:-$HOME/.cache/rigor/bench-slurm}"
bash scripts/slurm-local.sh
rm -rf "$WORK/logs" "$WORK"/*.json "$WORK/scratch"
mkdir -p "$WORK/repos"
cd "$WORK"

ALL_IDS=$(python3 - "$DATASET" "$MIRRORS" <<'PY'
import json, os, sys
ids, missing = [], set()
for line in open(sys.argv[1]):
    row = json.loads(line)
    src = os.path.join(sys.argv[2], row["repo"].replace("/", "+"), "repo")
    dst = os.path.join("repos", row["repo"].replace("/", "__"))
    if os.path.isdir(src):
        if not os.path.lexists(dst):
            os.symlink(src, dst)
        ids.append(row["instance_id"])
    else:
        missing.add(row["repo"])
for repo in sorted(missing):
    print(f"no mirror of {repo}: its instances are left out", file=sys.stderr)
print(",".join(ids))
PY
)
IDS="${1:-$ALL_IDS}"
N=$(echo "$IDS" | tr ',' '\n' | wc -l)
echo "instances timed: $N of $(echo "$ALL_IDS" | tr ',' '\n' | wc -l) with a mirror"

run() { # run-id, extra args... → wall seconds
  local id=$1; shift
  local start end
  start=$(date +%s.%N)
  "$RIGOR" eval --dataset "$DATASET" --repos repos --output . --run-id "$id" --instance-ids "$IDS" \
    --predictions gold "$@" >"$id.out" 2>&1
  end=$(date +%s.%N)
  python3 -c "print(f'{$end - $start:.1f}')"
}

# Warm-up: builds (or finds) every environment, and records the timings the plans use.
[ "${WARM:-1}" = 0 ] || run warm --workers 2 >/dev/null
LOCAL=$(run local --workers 2)
SLURM=$(run slurm --executor slurm --slurm-array-parallelism 2 --slurm-cpus-per-task 1 --workers 1)
SLURM1=$(run slurm1 --executor slurm --slurm-array-parallelism 2 --slurm-cpus-per-task 1 --workers 1 --slurm-instances-per-task 1)

# 2,294 made-up rows in the proportions of SWE-bench's test split.
python3 - > full.jsonl <<'PY'
import json
split = {"django/django": 850, "sympy/sympy": 386, "scikit-learn/scikit-learn": 229, "sphinx-doc/sphinx": 187,
         "matplotlib/matplotlib": 184, "pytest-dev/pytest": 119, "pydata/xarray": 110, "astropy/astropy": 95,
         "pylint-dev/pylint": 57, "psf/requests": 44, "mwaskom/seaborn": 22, "pallets/flask": 11}
for repo, n in split.items():
    for i in range(n):
        print(json.dumps({"instance_id": f"{repo.replace('/', '__')}-{i}", "repo": repo, "base_commit": "0" * 40,
                          "patch": "-", "test_patch": "-", "version": "1.0", "problem_statement": "-",
                          "FAIL_TO_PASS": "[]", "PASS_TO_PASS": "[]"}))
PY
"$RIGOR" eval --dataset "$DATASET" --repos repos --output . --run-id plan-dev --instance-ids "$ALL_IDS" --predictions gold \
  --executor slurm --slurm-array-parallelism 2 --dry-run > plan-dev.txt
"$RIGOR" eval --dataset full.jsonl --repos repos --output . --run-id plan-full --predictions gold \
  --executor slurm --slurm-partition cpu --slurm-array-parallelism 64 --slurm-cpus-per-task 1 --dry-run > plan-full.txt

python3 - "$LOCAL" "$SLURM" "$SLURM1" "$N" <<'PY'
import json, os, sys
local, slurm, slurm1, n = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
def results(run):
    d = os.path.join("logs/run_evaluation", run, "gold")
    return {i: json.load(open(os.path.join(d, i, "rigor.json"))) for i in sorted(os.listdir(d))
            if os.path.exists(os.path.join(d, i, "rigor.json"))}
def tasks(run):
    d = os.path.join("logs/run_evaluation", run, "batch")
    return sum(len(json.load(open(os.path.join(d, f)))["slices"]) for f in os.listdir(d) if f.startswith("submission-"))
rows = [("local --workers 2", "local", local, "-"), ("slurm, 2 CPUs, default slicing", "slurm", slurm, tasks("slurm")),
        ("slurm, 2 CPUs, 1 instance/task", "slurm1", slurm1, tasks("slurm1"))]
print("\n## 1. Whole gold run, warm environments, 2 CPUs\n")
print("| executor | array tasks | wall s | Σ instance s | resolved | idle slot s / instance | Slurm overhead s / instance |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
base = None
for name, run, wall, ntasks in rows:
    r = results(run)
    busy = sum(x["timings"]["total"] for x in r.values())
    idle = (2 * wall - busy) / n
    if base is None:
        base = idle
    resolved = sum(x["status"] == "resolved" for x in r.values())
    over = "-" if run == "local" else f"{idle - base:.2f}"
    print(f"| {name} | {ntasks} | {wall:.1f} | {busy:.1f} | {resolved}/{len(r)} | {idle:.2f} | {over} |")
print(f"\nwall time added by Slurm: {slurm - local:+.1f} s (default slicing), {slurm1 - local:+.1f} s (1 instance/task); "
      f"per instance {(slurm - local) / n:+.2f} s and {(slurm1 - local) / n:+.2f} s (target ≤ 1 s)")
print("\n## 2. Same verdicts\n")
l = results("local")
for run in ["slurm", "slurm1"]:
    s = results(run)
    same = [i for i in l if i in s and (l[i]["status"], l[i].get("tests_status")) == (s[i]["status"], s[i].get("tests_status"))]
    print(f"{run}: {len(same)}/{len(l)} instances with the same status and test outcomes as local")
    for i in sorted(set(l) - set(same)):
        print(f"  differs: {i}: local {l[i]['status']}, {run} {s.get(i, {}).get('status')}")
PY
echo
echo "## 3. Dry-run plans"
echo
echo "### the dev instances with a mirror, 2 at once"
cat plan-dev.txt
echo
echo "### 2,294 instances (made-up rows, SWE-bench's repository proportions), 64 at once"
cat plan-full.txt
