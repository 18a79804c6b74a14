#!/usr/bin/env bash
# Build the Fluent Bit WASM filter and copy it to dist/credlineage-fluent-bit.wasm.
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip1 >/dev/null 2>&1 || true
cargo build --profile release-wasm --lib --target wasm32-wasip1 --no-default-features --features fluent-bit
target="${CARGO_TARGET_DIR:-target}"
mkdir -p dist
cp "$target/wasm32-wasip1/release-wasm/credlineage.wasm" dist/credlineage-fluent-bit.wasm
echo "dist/credlineage-fluent-bit.wasm: $(wc -c < dist/credlineage-fluent-bit.wasm) bytes"
