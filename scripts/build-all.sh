#!/usr/bin/env bash
# Build every artifact into dist/ with one command, and record their sizes:
#   dist/credlineage                    the CLI (enrich, generate, serve)
#   dist/credlineage-fluent-bit.wasm    Fluent Bit filter_wasm module (wasm32-wasip1)
#   dist/credlineage.component.wasm     WIT component credlineage:enricher (wasm32-wasip2)
#   dist/js/                            npm package for Node and the browser (wasm-bindgen)
# Needs rustup (it adds the wasm targets) and, for the JS package, the
# wasm-bindgen CLI (scripts/build-js.sh says how to install it).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"
mkdir -p dist
cargo build --release --bin credlineage
cp "$target/release/credlineage" dist/credlineage
./scripts/build-fluent-bit.sh
./scripts/build-component.sh
./scripts/build-js.sh
{
  echo "| artifact | bytes |"
  echo "|---|---|"
  for f in dist/credlineage dist/credlineage-fluent-bit.wasm dist/credlineage.component.wasm $(find dist/js -name '*.wasm' | sort); do
    echo "| $f | $(wc -c < "$f") |"
  done
} | tee dist/SIZES.md
