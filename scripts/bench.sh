#!/usr/bin/env bash
# Side-by-side benchmarks in ONE run (this machine is shared and noisy: compare
# the ratios within a run, not absolute times across runs). Prints markdown
# tables; BENCHMARKS.md records the latest output and how to read it.
#
#   scripts/bench.sh            # 100k-record comparison, WASM (wasmtime Cranelift and
#                               # Pulley, Node), scale to 1M, jq, RSS at 1M
#   FULL=1 scripts/bench.sh     # also the 10M-record scale point, RSS at 10M and
#                               # WASM linear memory over 1M records
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release --quiet --bin credlineage --example throughput --example state_memory
bin="$target/release/credlineage"
ex="$target/release/examples"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "## In-process, one core: enrichment against reading the same JSON"
"$ex/throughput" compare 100000
echo
echo "### Where the time of a record goes (same 100,000 records, cumulative phases)"
"$ex/throughput" phases 100000

echo
echo "## WASM: the builds in wasmtime (Cranelift, Pulley) and Node against native (same records, one run)"
# Targets the wasm artifacts need (scripts/test.sh adds them too). The JS row
# also needs node and the wasm-bindgen CLI; without them it is skipped.
for t in wasm32-wasip1 wasm32-wasip2 wasm32-unknown-unknown; do
  rustup target list --installed 2>/dev/null | grep -qx "$t" || rustup target add "$t"
done
mem=200000
if [ -n "${FULL:-}" ]; then mem=1000000; fi
# The bench builds the artifacts with the scripts' commands; their cargo
# output goes to a log, shown only if something fails.
if ! cargo bench --quiet --bench wasm -- --records 100000 --memory "$mem" 2>"$tmp/wasm.log"; then
  cat "$tmp/wasm.log" >&2
  exit 1
fi

echo
echo "## Scale: cost per record as the stream grows (one core)"
if [ -n "${FULL:-}" ]; then
  "$ex/throughput" scale 10000 100000 1000000 10000000
else
  "$ex/throughput" scale 10000 100000 1000000
fi

echo
echo "## Against jq adding a constant object to every record (same 100,000 records, one core each, best of 3 and 2 runs)"
"$bin" generate -n 100000 --seed 3 > "$tmp/trail.jsonl"
best() { # best wall time in seconds of N runs of a command reading the trail on stdin
  local n=$1; shift
  local b=""
  for _ in $(seq "$n"); do
    local t0 t1
    t0=$(date +%s.%N); "$@" < "$tmp/trail.jsonl" > /dev/null; t1=$(date +%s.%N)
    b=$(python3 -c "import sys; t=float(sys.argv[2])-float(sys.argv[1]); b=sys.argv[3]; print(t if not b else min(t, float(b)))" "$t0" "$t1" "$b")
  done
  echo "$b"
}
ours=$(best 3 "$bin" enrich -q)
if command -v jq >/dev/null; then
  theirs=$(best 2 jq -c '. + {"credlineage":{"v":1}}')
  python3 - "$ours" "$theirs" <<'PY'
import sys
ours, jq = map(float, sys.argv[1:])
print("| tool | records/s | time ratio |")
print("|---|---|---|")
print(f"| credlineage enrich (CLI, NDJSON on stdin, out to /dev/null) | {100000/ours:.0f} | 1 |")
print(f"| jq -c '. + {{...}}' | {100000/jq:.0f} | {jq/ours:.1f}x slower |")
PY
else
  echo "jq not installed (apt-get install jq): skipped"
fi

echo
echo "## Memory"
"$ex/state_memory" 1000000
for n in 1000000 ${FULL:+10000000}; do
  /usr/bin/time -f "peak RSS of enrich --order stream on $n generated records (piped): %M KiB" \
    "$bin" enrich --order stream -q < <("$bin" generate -n "$n" --seed 4) > /dev/null
done
