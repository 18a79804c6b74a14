#!/usr/bin/env bash
# The reorder window's cost on stdin: `enrich -` without and with
# `--reorder-window`, alternating over ROUNDS rounds on the same generated
# trail (delivered up to 15 minutes out of order); each keeps its best round.
# Usage: scripts/bench-reorder.sh [RECORDS] [ROUNDS]   (default 1000000 5)
set -euo pipefail
n=${1:-1000000}
rounds=${2:-5}
bin=${CARGO_TARGET_DIR:-target}/release/credlineage
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$bin" generate -n "$n" --disorder 900 --seed 5 -o "$dir/trail.jsonl"
echo "records: $n, $(stat -c %s "$dir/trail.jsonl") bytes, delivered up to 900 s out of order"
declare -A best_wall best_cpu best_rss
run() { # name, args...
  local name=$1; shift
  /usr/bin/time -f '%e %U %S %M' -o "$dir/t" "$bin" enrich -q "$@" - < "$dir/trail.jsonl" > /dev/null
  read -r wall user sys rss < "$dir/t"
  local cpu
  cpu=$(echo "$user + $sys" | bc)
  if [ -z "${best_wall[$name]:-}" ] || [ "$(echo "$wall < ${best_wall[$name]}" | bc)" = 1 ]; then best_wall[$name]=$wall; fi
  if [ -z "${best_cpu[$name]:-}" ] || [ "$(echo "$cpu < ${best_cpu[$name]}" | bc)" = 1 ]; then best_cpu[$name]=$cpu; fi
  best_rss[$name]=$rss
}
for _ in $(seq "$rounds"); do
  run stream
  run window-15m --reorder-window 15m
  run window-1h --reorder-window 1h
done
printf '%-12s %8s %8s %10s %10s\n' path wall_s cpu_s rss_MB cpu_ratio
for name in stream window-15m window-1h; do
  printf '%-12s %8s %8s %10s %10s\n' "$name" "${best_wall[$name]}" "${best_cpu[$name]}" \
    "$(echo "${best_rss[$name]} / 1024" | bc)" "$(echo "scale=2; ${best_cpu[$name]} / ${best_cpu[stream]}" | bc)"
done
"$bin" enrich --reorder-window 15m - < "$dir/trail.jsonl" 2>&1 > /dev/null | grep 'reorder window'
