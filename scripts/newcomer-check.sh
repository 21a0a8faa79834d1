#!/usr/bin/env bash
# The first hour of a new user, scripted: a fresh clone and a fresh HOME, the README's two commands,
# then the bad inputs a newcomer typically tries, each with the message and exit code it must give.
#
# Usage: bash scripts/newcomer-check.sh [REPO]      (REPO: what to clone, default this checkout)
#        RIGOR_NEWCOMER_QUICK=1 bash scripts/newcomer-check.sh
#            skips the two README commands and checks the bad inputs against target/debug/rigor of
#            this checkout (build it first with `cargo build -p rigor-cli`).
# The toolchain stays where it is (RUSTUP_HOME and CARGO_HOME keep pointing at yours: a newcomer has
# Rust installed); everything else starts empty. Takes ~30 minutes on 2 cores without QUICK.
set -uo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
repo="${1:-$here}"
work="$(mktemp -d /var/tmp/rigor-newcomer-XXXXXX)"
failures=0
pass() { echo "  ok    $1"; }
fail() { echo "  FAIL  $1"; failures=$((failures + 1)); }

# expect NAME CODE PATTERN -- COMMAND...: runs COMMAND, checks its exit code and that its output
# (stdout and stderr) matches the extended regex PATTERN.
expect() {
  local name="$1" code="$2" pattern="$3"; shift 4
  local out status
  out="$("$@" 2>&1)"; status=$?
  if [ "$status" -ne "$code" ]; then
    fail "$name: exit $status, expected $code; output: $(printf '%s' "$out" | tail -3)"
  elif [ -n "$pattern" ] && ! printf '%s' "$out" | grep -Eqi -- "$pattern"; then
    fail "$name: output does not match /$pattern/: $(printf '%s' "$out" | tail -3)"
  else
    pass "$name"
  fi
}

export RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}"
export PATH="$CARGO_HOME/bin:$PATH"
export HOME="$work/home" XDG_CONFIG_HOME="$work/home/.config" XDG_CACHE_HOME="$work/home/.cache"
unset CARGO_TARGET_DIR RIGOR_MODEL OPENAI_API_KEY ANTHROPIC_API_KEY OPENAI_BASE_URL RIGOR_MODELS_DIR
mkdir -p "$HOME"
echo "newcomer check in $work (HOME=$HOME)"

if [ -z "${RIGOR_NEWCOMER_QUICK:-}" ]; then
  git clone -q "$repo" "$work/rigor" || { echo "cannot clone $repo" >&2; exit 1; }
  cd "$work/rigor"
  echo "command 1: bash scripts/setup.sh"
  start=$(date +%s)
  expect "set-up (command 1)" 0 "rigor setup: done" -- bash scripts/setup.sh
  echo "    $(( $(date +%s) - start )) s"
  echo "command 2: cargo test --workspace --locked"
  start=$(date +%s)
  expect "tests (command 2)" 0 "test result: ok" -- cargo test --workspace --locked
  echo "    $(( $(date +%s) - start )) s, $(du -sh target 2>/dev/null | cut -f1) in ./target"
  rigor="$HOME/.local/bin/rigor"
  expect "rigor doctor after set-up" 0 "rigor can run here" -- "$rigor" doctor
else
  cd "$here"
  rigor="$here/target/debug/rigor"
  [ -x "$rigor" ] || rigor="${RIGOR_BIN:-}"
fi
[ -x "$rigor" ] || { echo "no rigor binary at $rigor" >&2; exit 1; }

echo "bad inputs ($rigor)"
sample="$work/sample"
mkdir -p "$sample" && (cd "$sample" && git init -q && git -c user.email=n@n -c user.name=n commit -q --allow-empty -m init)
expect "--help says what rigor is" 0 "issue" -- "$rigor" --help
expect "run --help shows defaults" 0 "default" -- "$rigor" run --help
expect "a usage error exits 2" 2 "" -- "$rigor" run --nonsense-flag
expect "--max-steps 0 is refused" 2 "max-steps" -- "$rigor" run --repo "$sample" --issue x --max-steps 0
expect "index of a missing directory" 1 "not exist|no such" -- "$rigor" index --repo "$work/nonexistent"
[ ! -e "$work/nonexistent" ] && pass "index of a missing directory creates nothing" || fail "index created $work/nonexistent"
expect "local: model that is a directory" 1 "directory" -- "$rigor" run --repo "$sample" --issue x --model "local:$work"
expect "a bare model name suggests its provider" 1 "openai:gpt-4o" -- "$rigor" run --repo "$sample" --issue x --model gpt-4o
printf 'not a trajectory\n{"x":\n' > "$work/garbage.jsonl"
expect "replay of a garbage file names it" 1 "garbage.jsonl" -- "$rigor" replay "$work/garbage.jsonl"
printf '{"instance_id": 1}\nnot json\n' > "$work/bad.jsonl"
expect "eval with no valid row fails" 1 "" -- "$rigor" eval --dataset "$work/bad.jsonl" --predictions "$work/bad.jsonl" --repos "$work" --output "$work/eval-out"

rm -rf "$work"
if [ "$failures" -ne 0 ]; then
  echo "newcomer check: $failures failure(s)"
  exit 1
fi
echo "newcomer check: all passed"
