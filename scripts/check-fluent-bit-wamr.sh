#!/usr/bin/env bash
# Manual check of the Fluent Bit module on WAMR, the runtime inside Fluent Bit:
# builds scripts/wamr-host (a host that calls the filter as Fluent Bit's
# flb_wasm.c does) against a WAMR source tree, e.g. lib/wasm-micro-runtime-*
# of a Fluent Bit checkout, and compares its output with the CLI's streaming
# output. Needs cmake and a C compiler. Not part of `cargo test`, which loads
# the module in wasmtime instead (tests/fluent_bit.rs).
#
#   scripts/check-fluent-bit-wamr.sh ~/src/fluent-bit/lib/wasm-micro-runtime-WAMR-2.4.1
set -euo pipefail
wamr="$(cd "${1:?usage: $0 WAMR_SOURCE_DIR}" && pwd)"
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
work="$target/wamr-check"
mkdir -p "$work"

cmake -S scripts/wamr-host -B "$work/build" -DWAMR_ROOT_DIR="$wamr" >"$work/cmake.log"
cmake --build "$work/build" -j 2 >"$work/build.log"
host="$work/build/flbhost"
scripts/build-fluent-bit.sh
cargo build --release --quiet
cli="$target/release/credlineage"
module=dist/credlineage-fluent-bit.wasm

"$cli" generate --records 20000 --seed 7 --disorder 30 -o "$work/generated.jsonl"
fail=0
for input in tests/fixtures/scenarios.jsonl tests/fixtures/stratus.jsonl "$work/generated.jsonl"; do
    name="$(basename "$input" .jsonl)"
    # 8192: Fluent Bit's default wasm_stack_size and wasm_heap_size.
    "$host" "$module" credlineage_filter 8192 8192 <"$input" >"$work/$name.wamr"
    "$cli" enrich <"$input" >"$work/$name.cli" 2>/dev/null
    if cmp -s "$work/$name.wamr" "$work/$name.cli"; then
        echo "ok    $name: $(wc -l <"$work/$name.wamr") records identical to \`credlineage enrich\` on stdin"
    else
        echo "FAIL  $name: differs from the CLI (see $work/$name.wamr)"
        fail=1
    fi
done

"$host" "$module" credlineage_filter 8192 8192 <tests/fixtures/hostile.jsonl >"$work/hostile.wamr"
if grep -q '<<SKIPPED' "$work/hostile.wamr" || [ "$(wc -l <"$work/hostile.wamr")" != "$(wc -l <tests/fixtures/hostile.jsonl)" ]; then
    echo "FAIL  hostile.jsonl: a record was dropped (see $work/hostile.wamr)"
    fail=1
else
    echo "ok    hostile.jsonl: one result per record, none dropped"
fi

# The smallest interpreter stack (wasm_stack_size) that drops nothing.
for stack in 2048 4096 6144 8192 16384; do
    if ! "$host" "$module" credlineage_filter "$stack" 8192 <tests/fixtures/scenarios.jsonl | grep -q '<<SKIPPED'; then
        echo "info  wasm_stack_size $stack is enough for scenarios.jsonl"
        break
    fi
done
exit "$fail"
