#!/usr/bin/env bash
# rigor view: time to first paint of a run page with a 2,000-step trajectory (in headless
# chromium, from the Paint Timing API, when chromium and chromedriver are installed), the
# server's time to first byte and page size, and the memory of `rigor view` serving a
# 2,300-instance evaluation (after its page, a sorted page and a filtered page were served).
# Prints a Markdown table. Usage: bench/view.sh [STEPS] [INSTANCES]   (defaults 2000 2300)
# RIGOR=path/to/rigor uses that binary (default: a release build).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
STEPS="${1:-2000}"
INSTANCES="${2:-2300}"
rigor_binary
PROFILE_DIR="$(dirname "$RIGOR")"
if [ "$(basename "$PROFILE_DIR")" = release ]; then
  cargo build --release -q --workspace --example view_fixtures
else
  cargo build -q --workspace --example view_fixtures
fi
FIXTURES="$PROFILE_DIR/examples/view_fixtures"
WORK="$(mktemp -d)"
trap 'kill $VIEW_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
mkdir -p "$WORK/repo/.rigor/runs"
"$FIXTURES" run "$WORK/repo/.rigor/runs" long-run "$STEPS"
"$FIXTURES" eval "$WORK/repo" big-eval "$INSTANCES"
"$RIGOR" view "$WORK/repo" --port 0 > "$WORK/view.out" &
VIEW_PID=$!
until grep -q "http://127.0.0.1:" "$WORK/view.out" 2>/dev/null; do
  kill -0 $VIEW_PID || { echo "rigor view did not start" >&2; exit 1; }
  sleep 0.1
done
URL="$(grep -o 'http://127.0.0.1:[0-9]*/' "$WORK/view.out")"
python3 bench/view.py "$URL" "$VIEW_PID" "$STEPS" "$INSTANCES" "$(du -sb "$WORK/repo/.rigor/runs/long-run/trajectory.jsonl" | cut -f1)"
echo
echo "binary: $RIGOR; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
