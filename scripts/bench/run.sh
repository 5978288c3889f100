#!/usr/bin/env bash
# Whole-process benchmarks of the release binary (not part of CI): cold start, tool latency over
# HTTP, memory, and a full AWS scan against moto. Builds with `cargo build --release`, runs every
# benchmark and prints one Markdown table on stdout (progress goes to stderr).
# See scripts/bench/README.md. Needs .venv (made by ./scripts/test.sh).
#
# Knobs (environment): BENCH_COLD_RUNS (20), BENCH_HTTP_CALLS (200), BENCH_INVENTORY_SIZE (100000),
# BENCH_AWS_RESOURCES (1000), BENCH_AWS_RUNS (5), BENCH_HISTORY_DAYS (400), BENCH_KEEP_WORK=1
# keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
bench=scripts/bench
py=.venv/bin/python
bin=target/release/tagwarden
started=$(date +%s)

cold_runs=${BENCH_COLD_RUNS:-20}
http_calls=${BENCH_HTTP_CALLS:-200}
inventory_size=${BENCH_INVENTORY_SIZE:-100000}
aws_resources=${BENCH_AWS_RESOURCES:-1000}
aws_runs=${BENCH_AWS_RUNS:-5}
history_days=${BENCH_HISTORY_DAYS:-400}

if [ ! -x "$py" ] || ! "$py" -c 'import moto, boto3' 2>/dev/null; then
  echo "error: .venv with moto and boto3 is missing: run ./scripts/test.sh once first" >&2
  exit 1
fi
if [ -s "$bench/requirements.txt" ]; then  # extra tools for the benchmarks only, if any
  "$py" -m pip install --quiet --disable-pip-version-check -r "$bench/requirements.txt"
fi
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in scripts/bench

work=$(mktemp -d "${TMPDIR:-/tmp}/tagwarden-bench.XXXXXX")
export BENCH_WORK="$work"  # server logs and the servers' audit database go here
child=""
cleanup() {
  # The Python steps kill their own children on SIGTERM (and the children die with them).
  if [ -n "$child" ]; then kill "$child" 2>/dev/null || true; wait "$child" 2>/dev/null || true; fi
  if [ "${BENCH_KEEP_WORK:-0}" = 1 ]; then
    echo "work directory kept: $work" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs one step in the background and waits, so a signal reaches the trap at once.
step() {
  echo "==> $1" >&2
  shift
  "$@" &
  child=$!
  wait "$child"
  child=""
}

step "cargo build --release" cargo build --release
load=$(cut -d" " -f1-3 /proc/loadavg)  # other work on the machine skews every figure
step "(a) cold start" "$py" "$bench/cold_start.py" "$bin" "$work/cold_start.json" "$cold_runs"
step "(b) HTTP latency, demo estate" \
  "$py" "$bench/http_latency.py" "$bin" "$work/http_demo.json" demo "$http_calls" -- --demo
step "inventory file of $inventory_size resources" \
  "$bin" demo export --size "$inventory_size" --out "$work/inventory.json"
step "(b, c) HTTP latency and memory, $inventory_size resources" \
  "$py" "$bench/http_latency.py" "$bin" "$work/http_inventory.json" inventory "$http_calls" \
  -- --inventory "$work/inventory.json"
step "(b') HTTP latency, $inventory_size resources, a new question each call (answer cache misses)" \
  env DISTINCT=1 "$py" "$bench/http_latency.py" "$bin" "$work/http_inventory_distinct.json" \
  inventory_distinct "$http_calls" -- --inventory "$work/inventory.json"
step "(c) check --inventory, max RSS" \
  "$py" "$bench/check_inventory.py" "$bin" "$work/inventory.json" "$work/check_inventory.json"
step "(d) AWS scan against moto, $aws_resources resources" \
  "$py" "$bench/aws_scan.py" "$bin" "$work/aws_scan.json" "$aws_resources" "$aws_runs"

step "(e) get_violation_history over $history_days daily snapshots" \
  "$py" "$bench/history_latency.py" "$bin" "$work/history.json" "$history_days" "$http_calls"

elapsed=$(($(date +%s) - started))
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then commit="$commit+uncommitted changes"; fi
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
context="$("$bin" --version) (git $commit), release build; ${cpu:-unknown CPU}, $(nproc) cores,\
 load average at start ${load}; $(uname -sr); $(date -u +%Y-%m-%dT%H:%MZ); whole run ${elapsed} s."
"$py" "$bench/report.py" "$work" "$context"
