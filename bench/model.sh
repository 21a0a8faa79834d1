#!/usr/bin/env bash
# Embedded model benchmark: rigor's engine vs llama.cpp on the same GGUF, prompts and thread
# count, run interleaved (rigor, llama.cpp, rigor, llama.cpp, ...) so that a shared machine's
# load hits both alike. Prints a Markdown table. See bench/README.md.
# Usage: bench/model.sh [--model smollm2|qwen2.5-coder-1.5b] [--threads N] [--gen N] [--rounds N]
#                       [--contexts 1,3,8] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rigor/target}"
MODEL=smollm2; THREADS=2; GEN=128; BUILD=1; ROUNDS=2; CONTEXTS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --model) MODEL="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --gen) GEN="$2"; shift 2 ;;
    --rounds) ROUNDS="$2"; shift 2 ;;
    --contexts) CONTEXTS="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
# Prompt sizes (thousands of tokens): the small model's prompt processing at 1k; the coder
# model's at the sizes of an agent's first turn and of a long session.
if [ -z "$CONTEXTS" ]; then
  case "$MODEL" in smollm2) CONTEXTS=1 ;; *) CONTEXTS=1,3,8 ;; esac
fi
VENV="${RIGOR_BENCH_LLAMACPP_VENV:-$HOME/.cache/rigor/bench/llamacpp}"
if [ "$BUILD" = 1 ]; then
  cargo build --release --quiet -p rigor-model --example model_bench
fi
BENCH_BIN="$CARGO_TARGET_DIR/release/examples/model_bench"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null; then
  echo "bench: building llama.cpp through PyPI llama-cpp-python into $VENV (slow, once)" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet llama-cpp-python
fi
WORK="$(mktemp -d)"; trap 'rm -rf "$WORK"' EXIT
python3 bench/model_inputs.py "$WORK"
TURNS=("$WORK"/turn*.txt)
PROMPTS="$(echo "$CONTEXTS" | tr ',' '\n' | sed "s|.*|$WORK/prompt&k.txt|" | paste -sd,)"
# Resolves (and fetches, when absent) the catalogue model first, so that both engines read one file.
FILE="$("$BENCH_BIN" "$MODEL" --path)"
RESULTS=()
for round in $(seq 1 "$ROUNDS"); do
  echo "bench: round $round/$ROUNDS: rigor (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  "$BENCH_BIN" "$FILE" "$THREADS" "$PROMPTS" "$GEN" "${TURNS[@]}" > "$WORK/rigor$round.json"
  python3 bench/model_report.py --load "$WORK/rigor$round.json"
  echo "bench: round $round/$ROUNDS: llama.cpp (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  "$VENV/bin/python" bench/model_llamacpp.py "$FILE" "$THREADS" "$PROMPTS" "$GEN" "${TURNS[@]}" > "$WORK/llamacpp$round.json"
  python3 bench/model_report.py --load "$WORK/llamacpp$round.json"
  RESULTS+=("$WORK/rigor$round.json" "$WORK/llamacpp$round.json")
done
python3 bench/model_report.py "${RESULTS[@]}"
