#!/usr/bin/env bash
# Scaffold quality: rigor vs mini-swe-agent on small real-library bugs. See bench/README.md.
# Usage: bench/scaffold.sh [--validate] [--bugs a,b] [--agents rigor,mini] [--model NAME] [--steps N] ...
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rigor/target}"
if ! command -v python3 >/dev/null 2>&1; then
    echo "[bench] error: python3 (3.9 or newer) is needed to run the benchmark" >&2
    exit 2
fi
# The Python driver starts the model server and the agents and stops them on exit, Ctrl-C or
# SIGTERM; exec so that signals reach it directly.
exec python3 "$here/scaffold.py" "$@"
