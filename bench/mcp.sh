#!/usr/bin/env bash
# Latency of localize and search_entity through `rigor mcp` (index in memory, refreshed
# incrementally) against one `rigor` CLI call per query, on Django's sdist, plus the server's RSS.
# Usage: bench/mcp.sh [RUNS]   (RIGOR=path/to/rigor to use a given binary)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/common.sh"
rigor_binary
cache="$HOME/.cache/rigor/bench"
repo="$cache/django-5.1.4"
if [ ! -d "$repo/.git" ]; then
  mkdir -p "$cache/sdist"
  [ -f "$cache/sdist/Django-5.1.4.tar.gz" ] ||
    pip download -q --no-deps --no-binary :all: django==5.1.4 -d "$cache/sdist"
  rm -rf "$repo" && tar --no-same-owner -xzf "$cache/sdist/Django-5.1.4.tar.gz" -C "$cache" && mv "$cache/Django-5.1.4" "$repo"
  git -C "$repo" init -q && git -C "$repo" add -A &&
    git -C "$repo" -c user.name=bench -c user.email=bench@rigor.invalid commit -qm sdist
fi
python3 "$here/mcp_client.py" "$RIGOR" "$repo" "${1:-10}"
