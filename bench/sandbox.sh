#!/usr/bin/env bash
# Sandbox overhead: median latency of spawning `true`, `python3 -c pass` and the interpreter
# `python3` resolves to (`pyenv which python3` behind a pyenv shim) bare vs through rigor's
# sandbox (bubblewrap + Landlock + seccomp + rlimits + pids cgroup), `true` again with a pause
# before each spawn, the same commands in one persistent session, and action-policy
# classification throughput on the policy table. Prints Markdown tables and the load average.
# Usage: bench/sandbox.sh [RUNS]        (default 200; needs bubblewrap and python3)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rigor/target}"
command -v bwrap >/dev/null || { echo "bench/sandbox.sh: install bubblewrap first (apt-get install bubblewrap)" >&2; exit 1; }
cargo build --release --quiet -p rigor-sandbox --example sandbox_bench
"$CARGO_TARGET_DIR/release/examples/sandbox_bench" "${1:-200}"
