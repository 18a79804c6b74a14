#!/usr/bin/env bash
# Build the wasm-bindgen JavaScript package (Node and browser) into dist/js, ready for `npm pack`.
#
# Env: CARGO_TARGET_DIR (default: target), DIST_DIR (default: dist; the
# package goes to $DIST_DIR/js). Needs the wasm-bindgen CLI of exactly the
# version of the wasm-bindgen crate in Cargo.lock:
#   cargo install wasm-bindgen-cli --version <that version>
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir="${CARGO_TARGET_DIR:-target}"
out="${DIST_DIR:-dist}/js"

want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }') || true
if [ "$have" != "$want" ]; then
  echo "error: wasm-bindgen CLI ${have:-not found}, the crate needs $want:" >&2
  echo "  cargo install wasm-bindgen-cli --version $want" >&2
  exit 1
fi
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi

cargo build --profile release-wasm --lib --target wasm32-unknown-unknown \
  --no-default-features --features js
wasm="$target_dir/wasm32-unknown-unknown/release-wasm/credlineage.wasm"

rm -rf "$out"
wasm-bindgen --target nodejs --out-dir "$out/pkg/node" "$wasm"
wasm-bindgen --target web --out-dir "$out/pkg/web" "$wasm"
# wasm-bindgen writes CommonJS for Node and an ES module for the web: pin
# each directory's module type so the top-level "type" cannot misread them.
echo '{ "type": "commonjs" }' >"$out/pkg/node/package.json"
echo '{ "type": "module" }' >"$out/pkg/web/package.json"

version=$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)
cat >"$out/package.json" <<JSON
{
  "name": "credlineage",
  "version": "$version",
  "description": "Stateful streaming enrichment of AWS CloudTrail: session fingerprints, credential lineage roots, key-ID collisions and off-host EC2 credential use (WebAssembly).",
  "license": "Apache-2.0",
  "keywords": ["cloudtrail", "aws", "security", "siem", "wasm"],
  "type": "module",
  "main": "./pkg/node/credlineage.js",
  "browser": "./pkg/web/credlineage.js",
  "types": "./pkg/web/credlineage.d.ts",
  "exports": {
    ".": {
      "node": {
        "types": "./pkg/node/credlineage.d.ts",
        "default": "./pkg/node/credlineage.js"
      },
      "browser": {
        "types": "./pkg/web/credlineage.d.ts",
        "default": "./pkg/web/credlineage.js"
      },
      "default": {
        "types": "./pkg/web/credlineage.d.ts",
        "default": "./pkg/web/credlineage.js"
      }
    },
    "./web": {
      "types": "./pkg/web/credlineage.d.ts",
      "default": "./pkg/web/credlineage.js"
    },
    "./credlineage_bg.wasm": "./pkg/web/credlineage_bg.wasm",
    "./package.json": "./package.json"
  },
  "files": ["pkg/", "README.md"],
  "engines": { "node": ">=18" }
}
JSON
cat >"$out/README.md" <<'MD'
# credlineage

Stateful streaming enrichment of AWS CloudTrail records, compiled to
WebAssembly: each record comes back as the same bytes with one added
`credlineage` key (session fingerprint, credential lineage root, key-ID
collision, EC2 credentials used off-host). One `Enricher` per stream; feed
records in arrival order.

```js
// Node (CommonJS or ESM): ready on import.
import { Enricher } from "credlineage";
const e = new Enricher();               // or new Enricher('{"namespace":"cl"}'); throws on a bad config
const out = e.processString(line);      // string in, string out; never throws
const bytes = e.process(u8);            // Uint8Array in, Uint8Array out
const snap = e.snapshot();              // Uint8Array; e.restore(snap) throws if refused
console.log(JSON.parse(e.stats()));
e.free();
```

```js
// Browser (ES module): initialise the wasm first.
import init, { Enricher } from "credlineage/web";
await init();
const e = new Enricher();
```

Also `processAt(bytes, hostTimeSecs)` and `processStringAt(string, hostTimeSecs)`
for records without `eventTime`. Full documentation: `docs/javascript.md` of the
credlineage Rust crate.
MD
echo "$out: $(wc -c <"$out/pkg/node/credlineage_bg.wasm") bytes of wasm (node), $(wc -c <"$out/pkg/web/credlineage_bg.wasm") (web)"
