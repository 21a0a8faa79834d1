#!/usr/bin/env bash
# The cost of proving: scripted runs with and without the proof, side by side. See bench/README.md.
# Usage: bench/prove.sh [--runs N] [--repos DIR] [--instances ID,...] [--no-build]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rigor/target}"
command -v python3 >/dev/null 2>&1 || { echo "[bench] error: python3 is needed" >&2; exit 2; }
exec python3 "$here/prove.py" "$@"
