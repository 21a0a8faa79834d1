#!/usr/bin/env bash
# Sandbox overhead: median latency of spawning `true` and `python3 -c pass` bare vs through
# rigor's sandbox (bubblewrap + Landlock + seccomp + rlimits + pids cgroup), and action-policy
# classification throughput on the policy table. Prints Markdown tables.
# Usage: bench/sandbox.sh [RUNS]        (default 200; needs bubblewrap and python3)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rigor/target}"
command -v bwrap >/dev/null || { echo "bench/sandbox.sh: install bubblewrap first (apt-get install bubblewrap)" >&2; exit 1; }
cargo build --release --quiet -p rigor-sandbox --example sandbox_bench
"$CARGO_TARGET_DIR/release/examples/sandbox_bench" "${1:-200}"
