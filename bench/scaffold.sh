#!/usr/bin/env bash
# Scaffold quality: rigor vs mini-swe-agent on small real-library bugs. See bench/README.md.
# Usage: bench/scaffold.sh [--validate] [--bugs a,b] [--agents rigor,mini] [--model NAME] [--steps N]
#        [--timeout SECS] [--rigor-bin PATH | --no-build] [--json FILE] ...
# Without --rigor-bin, $RIGOR or --no-build, rigor is built (release) first, as the other harness
# benches do; --validate needs no rigor.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rigor/target}"
if ! command -v python3 >/dev/null 2>&1; then
    echo "[bench] error: python3 (3.9 or newer) is needed to run the benchmark" >&2
    exit 2
fi
build=1
args=()
for arg in "$@"; do
    case "$arg" in
        --no-build) build=0; continue ;;
        --validate|--rigor-bin|--rigor-bin=*|-h|--help) build=0 ;;
    esac
    args+=("$arg")
done
if [ "$build" = 1 ] && [ -z "${RIGOR:-}" ]; then
    # shellcheck source=bench/common.sh
    . "$here/common.sh"
    echo "[bench] building rigor (release, CARGO_TARGET_DIR=$CARGO_TARGET_DIR) ..." >&2
    rigor_binary
fi
[ -n "${RIGOR:-}" ] && export RIGOR
# The Python driver starts the model server and the agents and stops them on exit, Ctrl-C or
# SIGTERM; exec so that signals reach it directly.
exec python3 "$here/scaffold.py" ${args[@]+"${args[@]}"}
