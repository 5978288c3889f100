#!/usr/bin/env bash
# Issue 17's million-resource figures, measured on the release binary as a user runs it:
#   - `check --format json` on a 1,000,000-resource Tagging API file (target ≤ 3 s, ≤ 500 MB)
#   - `check --snapshot` into an empty store, then again (storing ≤ 3 s, history.db ≤ 100 MB)
#   - `serve --http`: one forced rescan, then four at once (four under 2× the RSS of one)
# Prints one line per figure; not part of CI (timings depend on the machine).
#
# Usage: scripts/bench/million.sh [RESOURCES]     (default 1000000; needs /usr/bin/time and
# the project's .venv for the rescan measurement: ./scripts/test.sh makes it)
set -euo pipefail
cd "$(dirname "$0")/../.."
size="${1:-1000000}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cargo build --release --locked >&2
bin=target/release/tagwarden
"$bin" demo export --size "$size" --out "$work/inventory.json" >&2
echo "inventory: $size resources, $(stat -c %s "$work/inventory.json") bytes"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# Wall seconds and peak RSS (KB) of one command, output discarded.
measure() {
  /usr/bin/time -f "%e s, peak RSS %M KB" "$@" > /dev/null 2> "$work/time.err" || {
    cat "$work/time.err" >&2
    exit 1
  }
  tail -1 "$work/time.err"
}

for run in 1 2 3; do
  echo "check --format json, run $run: $(measure "$bin" check --inventory "$work/inventory.json" --format json)"
done

mkdir "$work/data"
for which in first second; do
  figure="$(measure "$bin" check --inventory "$work/inventory.json" --format json \
    --snapshot --data-dir "$work/data")"
  echo "check --snapshot, $which snapshot: $figure; history.db $(stat -c %s "$work/data/history.db") bytes"
done

if [ -x .venv/bin/python ]; then
  .venv/bin/python scripts/bench/concurrent_rescans.py "$bin" "$work/rescans.json" \
    -- --inventory "$work/inventory.json" >&2
  echo "serve --http, forced rescans: $(tr -d '\n ' < "$work/rescans.json")"
else
  echo "serve --http, forced rescans: skipped (no .venv: run ./scripts/test.sh once)"
fi
