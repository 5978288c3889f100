#!/usr/bin/env bash
# Checks the direction of calls between the crate's top-level modules (see ARCHITECTURE.md):
# every `crate::<module>` reference in src/ (comments and unit-test files excluded) is an edge;
# the edges must form no cycle (tsort) and never point to a module of a higher layer.
# Prints the offending edges and exits 1 when the rule is broken.
set -euo pipefail
cd "$(dirname "$0")/.."

# Layer of each top-level module: a module may use its own layer (without cycles) or lower ones.
declare -A rank=(
  [util]=0 [aws]=0 [cache]=0 [metrics]=0
  [inventory]=1 [policy]=1
  [compliance]=2 [history]=2 [rules]=2 [suggest]=2 [cost]=2
  [store]=3
  [app]=4
  [service]=5 [report]=5
  [tools]=6
  [guard]=7
  [server]=8
  [cli]=9
)

edges=$(
  find src -name '*.rs' ! -name 'tests.rs' ! -path '*/tests/*' ! -name 'main.rs' ! -name 'lib.rs' |
    while read -r file; do
      rel=${file#src/}
      from=${rel%%/*}
      from=${from%.rs}
      # Drop comment lines, then list the modules named after `crate::`.
      # (`|| true`: a file that names no other module is not an error under pipefail.)
      { grep -vE '^\s*//' "$file" | grep -oE 'crate::[a-z_]+' || true; } | sed 's/crate:://' |
        sort -u | while read -r to; do
          if [ "$to" != "$from" ]; then echo "$from $to"; fi
        done
    done | sort -u
)

status=0
while read -r from to; do
  [ -n "$from" ] || continue
  rf=${rank[$from]:-}
  rt=${rank[$to]:-}
  if [ -z "$rf" ] || [ -z "$rt" ]; then
    echo "check_layers: module without a layer: $from -> $to (add it to scripts/check_layers.sh)"
    status=1
  elif [ "$rt" -gt "$rf" ]; then
    echo "check_layers: $from (layer $rf) uses $to (layer $rt), a higher layer"
    grep -rlE "crate::$to\b" "src/$from" "src/$from.rs" 2>/dev/null | sed 's/^/    in /' || true
    status=1
  fi
done <<<"$edges"

# tsort reports a cycle on stderr ("input contains a loop") and exits non-zero.
if ! loops=$(echo "$edges" | tsort 2>&1 >/dev/null); then
  echo "check_layers: a cycle between modules:"
  echo "$loops" | sed 's/^/    /'
  status=1
fi

[ "$status" -eq 0 ] && echo "check_layers: $(echo "$edges" | grep -c .) edges between modules, no cycle, none upward"
exit "$status"
