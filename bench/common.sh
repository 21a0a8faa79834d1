# Shared by the harness benchmarks (sourced): the rigor binary and the instances with a clone.

# Sets RIGOR to a release build of rigor, unless it is set already.
rigor_binary() {
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rigor/target}"
  if [ -z "${RIGOR:-}" ]; then
    cargo build --release -q -p rigor-cli
    RIGOR="$CARGO_TARGET_DIR/release/rigor"
  fi
}

# Prints, comma-separated, the instances of the dataset $1 whose repository has a clone under $2
# (<owner>__<name>, or with .git: a bare mirror).
cloned_instances() {
  python3 - "$1" "$2" <<'PY'
import json, os, sys
ids = []
for line in open(sys.argv[1]):
    row = json.loads(line)
    name = os.path.join(sys.argv[2], row["repo"].replace("/", "__"))
    if os.path.isdir(name) or os.path.isdir(name + ".git"):
        ids.append(row["instance_id"])
print(",".join(ids))
PY
}
