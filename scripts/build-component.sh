#!/usr/bin/env bash
# Build the WIT component `credlineage:enricher` (wasm32-wasip2) into dist/credlineage.component.wasm.
#
# Env: CARGO_TARGET_DIR (default: target), DIST_DIR (default: dist).
# Profile `release-wasm` (fat LTO, one codegen unit, panic=abort): the
# smallest and fastest module; the core is panic-free, so abort never fires.
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"
dist="${DIST_DIR:-dist}"

if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi

cargo build --profile release-wasm --lib --target wasm32-wasip2 \
  --no-default-features --features component

mkdir -p "$dist"
cp "$target_dir/wasm32-wasip2/release-wasm/credlineage.wasm" "$dist/credlineage.component.wasm"
echo "$dist/credlineage.component.wasm: $(wc -c <"$dist/credlineage.component.wasm") bytes"
