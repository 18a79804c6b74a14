#!/usr/bin/env bash
# Build the "append floor" filter: a Fluent Bit WASM filter that does no work
# but add a constant 374-byte `credlineage` member (the average size of the
# annotation over `credlineage generate -n 100000`) before each record's
# closing brace. Run beside the empty filter and credlineage in one
# `perf.py` run, it measures what the host alone pays for the larger record it
# gets back (parsing the returned JSON into msgpack, writing it out): the
# throughput no filter that writes SPEC's annotation can exceed.
# BENCHMARKS.md "Fluent Bit: the append floor" has the command and figures.
#
# usage: scripts/fluent-bit-floor.sh OUT_DIR
#   -> OUT_DIR/append_floor.wasm, and OUT_DIR/append_floor.aot when $FLB_WAMRC
#      names Fluent Bit's AOT compiler (same options as build-fluent-bit.sh).
# Function name for perf.py: append_floor. The filter is a measuring fixture,
# built in a temporary directory: it is not part of the credlineage crate.
set -euo pipefail
out="$(mkdir -p "${1:?usage: $0 OUT_DIR}" && cd "$1" && pwd)"
src="$(mktemp -d)"
trap 'rm -rf "$src"' EXIT
mkdir -p "$src/src"
cat > "$src/Cargo.toml" <<'TOML'
[package]
name = "append-floor"
version = "0.1.0"
edition = "2021"
[lib]
crate-type = ["cdylib"]
[profile.release]
opt-level = 3
lto = true
panic = "abort"
[workspace]
TOML
cat > "$src/src/lib.rs" <<'RUST'
// Appends a constant annotation of average size; the record is otherwise returned as is.
const ANN: &[u8] = br#","credlineage":{"v":1,"credential_type":"temporary","access_key_id":"ASIAZR6U3J54BFIQDOEO","key_account":"657039511416","session_fingerprint":"sf1_c64107cb4c3fb3998b730a3ad62d63f5","lineage_root":"service:lambda.amazonaws.com/thumbnail-generator","lineage_root_type":"aws_service","lineage_depth":1,"lineage_complete":true,"is_key_collision":false,"ec2_cred_offhost":false}}"#;
static mut BUF: Vec<u8> = Vec::new();
#[no_mangle]
pub extern "C" fn append_floor(_tag: *const u8, _tl: u32, _s: u32, _ns: u32, rec: *const u8, len: u32) -> *const u8 {
    // SAFETY: the host passes a record of `len` bytes in linear memory; BUF is only used here.
    unsafe {
        let r = std::slice::from_raw_parts(rec, len as usize);
        let b = &mut *std::ptr::addr_of_mut!(BUF);
        b.clear();
        match r.iter().rposition(|&c| c == b'}') {
            Some(end) => { b.extend_from_slice(&r[..end]); b.extend_from_slice(ANN); }
            None => b.extend_from_slice(r),
        }
        b.push(0);
        b.as_ptr()
    }
}
RUST
rustup target add wasm32-wasip1 >/dev/null 2>&1 || true
(cd "$src" && RUSTFLAGS="-C link-arg=--export=malloc -C link-arg=--export=free" \
  CARGO_TARGET_DIR="$src/target" cargo build --quiet --release --target wasm32-wasip1)
cp "$src/target/wasm32-wasip1/release/append_floor.wasm" "$out/append_floor.wasm"
echo "$out/append_floor.wasm"
if [ -n "${FLB_WAMRC:-}" ]; then
  case "$(uname -m)" in
    x86_64) flags="--target=x86_64 --cpu=x86-64" ;;
    aarch64 | arm64) flags="--target=aarch64 --cpu=generic" ;;
    *) flags="" ;;
  esac
  # shellcheck disable=SC2086 # a list of options
  "$FLB_WAMRC" ${WAMRC_FLAGS:-$flags} -o "$out/append_floor.aot" "$out/append_floor.wasm" >/dev/null
  echo "$out/append_floor.aot"
fi
