#!/usr/bin/env bash
# Embedded model benchmark: rigor's candle engine vs llama.cpp on the same GGUF (SmolLM2-135M
# Q4_1), prompt and thread count. Prints a Markdown table. See bench/README.md.
# Usage: bench/model.sh [--threads N] [--gen N] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rigor/target}"
THREADS=2; GEN=128; BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) THREADS="$2"; shift 2 ;;
    --gen) GEN="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
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
"$BENCH_BIN" smollm2 "$THREADS" "$WORK/prompt.txt" "$GEN" "${TURNS[@]}" > "$WORK/rigor.json"
MODEL="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["model"])' "$WORK/rigor.json")"
"$VENV/bin/python" bench/model_llamacpp.py "$MODEL" "$THREADS" "$WORK/prompt.txt" "$GEN" "${TURNS[@]}" > "$WORK/llamacpp.json"
python3 bench/model_report.py "$WORK/rigor.json" "$WORK/llamacpp.json"
