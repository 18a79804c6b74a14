#!/usr/bin/env bash
# Build the Fluent Bit WASM filter: dist/credlineage-fluent-bit.wasm (runs in
# any Fluent Bit >= 4.1, WAMR's fast interpreter) and, when Fluent Bit's AOT
# compiler is available, dist/credlineage-fluent-bit.aot (native code: several
# times faster, but tied to the WAMR version and CPU architecture of the
# wamrc that made it; docs/fluent-bit.md "AOT").
#
# The AOT compiler is looked up as $FLB_WAMRC, then `flb-wamrc`, then `wamrc`
# on PATH. Fluent Bit builds `flb-wamrc` with `-DFLB_WAMRC=On` (it is not in
# its packages). wamrc compiles for the build machine's CPU model by default,
# and an .aot using instructions another machine lacks would crash there, so
# this script asks for the architecture's baseline CPU instead (x86-64 /
# generic aarch64: measured as fast here). $WAMRC_FLAGS replaces those options
# (say `--target=aarch64 --cpu=generic` to compile for another machine).
set -euo pipefail
cd "$(dirname "$0")/.."
rustup target add wasm32-wasip1 >/dev/null 2>&1 || true
cargo build --profile release-wasm --lib --target wasm32-wasip1 --no-default-features --features fluent-bit
target="${CARGO_TARGET_DIR:-target}"
mkdir -p dist
cp "$target/wasm32-wasip1/release-wasm/credlineage.wasm" dist/credlineage-fluent-bit.wasm
echo "dist/credlineage-fluent-bit.wasm: $(wc -c < dist/credlineage-fluent-bit.wasm) bytes"

wamrc="${FLB_WAMRC:-}"
if [ -z "$wamrc" ]; then
  wamrc="$(command -v flb-wamrc || command -v wamrc || true)"
fi
rm -f dist/credlineage-fluent-bit.aot
if [ -z "$wamrc" ] || [ ! -x "$wamrc" ]; then
  echo "AOT: NOT built: no flb-wamrc or wamrc found (set FLB_WAMRC=/path/to/flb-wamrc)." >&2
  echo "AOT: Fluent Bit will run dist/credlineage-fluent-bit.wasm in its interpreter." >&2
  exit 0
fi
if [ -z "${WAMRC_FLAGS+set}" ]; then
  case "$(uname -m)" in
    x86_64) WAMRC_FLAGS="--target=x86_64 --cpu=x86-64" ;;
    aarch64 | arm64) WAMRC_FLAGS="--target=aarch64 --cpu=generic" ;;
    *) WAMRC_FLAGS="" ;;
  esac
fi
# shellcheck disable=SC2086 # WAMRC_FLAGS is a list of options
"$wamrc" $WAMRC_FLAGS -o dist/credlineage-fluent-bit.aot dist/credlineage-fluent-bit.wasm >/dev/null
echo "dist/credlineage-fluent-bit.aot: $(wc -c < dist/credlineage-fluent-bit.aot) bytes ($wamrc $WAMRC_FLAGS; use it only with the Fluent Bit whose WAMR version matches, on this CPU architecture)"
