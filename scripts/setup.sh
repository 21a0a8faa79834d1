#!/usr/bin/env bash
# Installs rigor and what it needs, then runs it on the bundled example (a real bug).
# Usage: bash scripts/setup.sh            (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rigor/target}"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need git || ! need python3; then
  if need apt-get; then
    echo "rigor setup: installing git and python3 with apt-get"
    sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -q && $sudo_cmd apt-get install -y -q git python3
  else
    echo "rigor setup: please install git and python3" >&2; exit 1
  fi
fi
need cargo || { echo "rigor setup: please install Rust (https://rustup.rs)" >&2; exit 1; }

echo "rigor setup: building and installing the rigor binary (cargo install)"
cargo install --locked --path crates/rigor-cli --root "${RIGOR_INSTALL_ROOT:-$HOME/.local}" --quiet
RIGOR="${RIGOR_INSTALL_ROOT:-$HOME/.local}/bin/rigor"
"$RIGOR" --version

if [ -z "${RIGOR_MODEL:-}${OPENAI_API_KEY:-}${OPENAI_BASE_URL:-}${ANTHROPIC_API_KEY:-}" ] && \
   ! grep -qs '^model' "${XDG_CONFIG_HOME:-$HOME/.config}/rigor/config.toml"; then
  cat >&2 <<'MSG'
rigor setup: rigor is installed, but no model is configured yet, so the demo run is skipped.
Set one of: OPENAI_API_KEY, ANTHROPIC_API_KEY, or OPENAI_BASE_URL=http://127.0.0.1:PORT/v1 (a local
vLLM / llama.cpp / Ollama server), then run this script again.
MSG
  exit 2
fi

echo "rigor setup: running rigor on examples/durations (a real bug in a small Python module)"
exec "$RIGOR" run --repo examples/durations --issue-file examples/durations/ISSUE.md
