# Sourced by the benchmark scripts, from the repository root: `$RIGOR` is the rigor binary to
# measure (as given, or an optimised build of this checkout).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rigor/target}"
if [ -z "${RIGOR:-}" ]; then
  cargo build --release -q -p rigor-cli
  RIGOR="$CARGO_TARGET_DIR/release/rigor"
fi
