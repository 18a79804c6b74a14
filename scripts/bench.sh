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
echo "## Against jq adding a constant object to every record (same 30,000 records, one core each)"
"$bin" generate -n 30000 --seed 3 > "$tmp/trail.jsonl"
t0=$(date +%s.%N); "$bin" enrich -q < "$tmp/trail.jsonl" > /dev/null; t1=$(date +%s.%N)
if command -v jq >/dev/null; then
  jq -c '. + {"credlineage":{"v":1}}' < "$tmp/trail.jsonl" > /dev/null; t2=$(date +%s.%N)
  python3 - "$t0" "$t1" "$t2" <<'PY'
import sys
t0, t1, t2 = map(float, sys.argv[1:])
ours, jq = t1 - t0, t2 - t1
print("| tool | records/s | time ratio |")
print("|---|---|---|")
print(f"| credlineage enrich (CLI, NDJSON on stdin, out to /dev/null) | {30000/ours:.0f} | 1 |")
print(f"| jq -c '. + {{...}}' | {30000/jq:.0f} | {jq/ours:.1f}x slower |")
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
