#!/usr/bin/env bash
# Build two Fluent Bit WASM filters (one module, two functions) that measure
# what no version of credlineage can go below, and about what a lean reader
# costs in the same host:
#
# - `append_floor` does no work but add a constant 374-byte `credlineage`
#   member (a real annotation of the average size over
#   `credlineage generate -n 100000`) before each record's closing brace:
#   what the host alone pays for the longer record it gets back (parsing the
#   returned JSON into msgpack, writing it out).
# - `scan_floor` first walks the record as a lean reader would: no
#   validation (it trusts the host's JSON), strings and skipped values a
#   word at a time, down to the string members credlineage reads (inside
#   `userIdentity`, `responseElements` and their objects), then appends the
#   same annotation. No state, no rules, no unescaping, no UTF-8 check.
#
# Run beside the empty filter and credlineage (scripts/fluent-bit-rounds.py);
# BENCHMARKS.md "Fluent Bit: the floors under issue 12's targets" has the
# commands and figures.
#
# usage: scripts/fluent-bit-floor.sh OUT_DIR
#   -> OUT_DIR/{append_floor,scan_floor}.wasm, and .aot of both when
#      $FLB_WAMRC names Fluent Bit's AOT compiler (same options as
#      build-fluent-bit.sh). Both files hold the same module; each is named
#      for the function to call in it, as perf.py labels pipelines by file name.
# The filters are measuring fixtures built in a temporary directory: they are
# not part of the credlineage crate.
set -euo pipefail
out="$(mkdir -p "${1:?usage: $0 OUT_DIR}" && cd "$1" && pwd)"
src="$(mktemp -d)"
trap 'rm -rf "$src"' EXIT
mkdir -p "$src/src"
cat > "$src/Cargo.toml" <<'TOML'
[package]
name = "floor"
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
//! Measuring fixtures for Fluent Bit's `filter_wasm` (see scripts/fluent-bit-floor.sh).
const ANN: &[u8] = br#","credlineage":{"v":1,"credential_type":"temporary","access_key_id":"ASIAZR6U3J54BFIQDOEO","key_account":"657039511416","session_fingerprint":"sf1_c64107cb4c3fb3998b730a3ad62d63f5","lineage_root":"service:lambda.amazonaws.com/thumbnail-generator","lineage_root_type":"aws_service","lineage_depth":1,"lineage_complete":true,"is_key_collision":false,"ec2_cred_offhost":false}}"#;
static mut BUF: Vec<u8> = Vec::new();

/// The record of `len` bytes at `rec`, and the output buffer.
fn io<'a>(rec: *const u8, len: u32) -> (&'a [u8], &'a mut Vec<u8>) {
    // SAFETY: the host passes a record of `len` bytes in linear memory; BUF is only used here.
    unsafe { (std::slice::from_raw_parts(rec, len as usize), &mut *std::ptr::addr_of_mut!(BUF)) }
}

/// The record up to its last `}` (the first `end` bytes), then ANN, NUL-terminated.
fn append(r: &[u8], end: usize, b: &mut Vec<u8>) -> *const u8 {
    b.clear();
    match r[..end.min(r.len())].iter().rposition(|&c| c == b'}') {
        Some(close) => { b.extend_from_slice(&r[..close]); b.extend_from_slice(ANN); }
        None => b.extend_from_slice(r),
    }
    b.push(0);
    b.as_ptr()
}

#[no_mangle]
pub extern "C" fn append_floor(_tag: u32, _tl: u32, _s: u32, _ns: u32, rec: *const u8, len: u32) -> *const u8 {
    let (r, b) = io(rec, len);
    append(r, r.len(), b)
}

#[no_mangle]
pub extern "C" fn scan_floor(_tag: u32, _tl: u32, _s: u32, _ns: u32, rec: *const u8, len: u32) -> *const u8 {
    let (r, b) = io(rec, len);
    let mut found = 0;
    let s = ws(r, 0);
    let end = if r.get(s) == Some(&b'{') { object(r, s, &mut found) } else { 0 };
    if found == 0 { b.clear(); b.extend_from_slice(r); b.push(0); return b.as_ptr(); }
    append(r, end, b)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;
/// High bit set in each byte of `x` equal to `c` (exact for the lowest).
fn has(x: u64, c: u8) -> u64 { let y = x ^ (ONES * c as u64); y.wrapping_sub(ONES) & !y & HIGHS }
fn word(b: &[u8], i: usize) -> Option<u64> { b.get(i..i + 8).map(|s| u64::from_le_bytes(s.try_into().unwrap())) }
fn ws(b: &[u8], mut i: usize) -> usize { while matches!(b.get(i), Some(b' ' | b'\n' | b'\r' | b'\t')) { i += 1 } i }

/// The index of the closing quote of the string whose content starts at `i`.
fn str_end(b: &[u8], mut i: usize) -> usize {
    loop {
        while let Some(x) = word(b, i) {
            let m = has(x, b'"') | has(x, b'\\');
            if m != 0 { i += (m.trailing_zeros() / 8) as usize; break; }
            i += 8;
        }
        match b.get(i) {
            None => return b.len(),
            Some(b'"') => return i,
            Some(b'\\') => i += 2,
            Some(_) => i += 1,
        }
    }
}

/// The index just past the array or object that opens at `i`.
fn skip_container(b: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    loop {
        while let Some(x) = word(b, i) {
            let m = has(x, b'"') | has(x, b'{') | has(x, b'}') | has(x, b'[') | has(x, b']');
            if m != 0 { i += (m.trailing_zeros() / 8) as usize; break; }
            i += 8;
        }
        match b.get(i) {
            None => return b.len(),
            Some(b'"') => i = str_end(b, i + 1) + 1,
            Some(b'{' | b'[') => { depth += 1; i += 1 }
            Some(b'}' | b']') => { depth = depth.saturating_sub(1); i += 1; if depth == 0 { return i } }
            Some(_) => i += 1,
        }
    }
}

/// String members credlineage reads, and the objects it reads them in.
const WANT: [&[u8]; 22] = [b"eventTime", b"eventSource", b"eventName", b"awsRegion", b"sourceIPAddress", b"userAgent",
    b"recipientAccountId", b"vpcEndpointId", b"eventType", b"eventID", b"type", b"principalId", b"arn", b"accountId",
    b"accessKeyId", b"userName", b"creationDate", b"mfaAuthenticated", b"sourceIdentity", b"ec2RoleDelivery", b"invokedBy", b"identityProvider"];
const DESCEND: [&[u8]; 6] = [b"userIdentity", b"sessionContext", b"sessionIssuer", b"attributes", b"responseElements", b"credentials"];

/// Walk the object that opens at `i`, counting the wanted members; the index past it.
fn object(b: &[u8], mut i: usize, found: &mut usize) -> usize {
    i += 1;
    loop {
        i = ws(b, i);
        match b.get(i) {
            Some(b'"') => {}
            Some(b',') => i = ws(b, i + 1),
            Some(b'}') => return i + 1,
            _ => return b.len(),
        }
        if b.get(i) != Some(&b'"') { return b.len() }
        let ke = str_end(b, i + 1);
        let key = b.get(i + 1..ke).unwrap_or_default();
        i = ws(b, ke + 1);
        if b.get(i) == Some(&b':') { i = ws(b, i + 1) }
        match b.get(i) {
            Some(b'"') => {
                i = str_end(b, i + 1) + 1;
                if WANT.contains(&key) { *found += 1 }
            }
            Some(b'{') if DESCEND.contains(&key) => i = object(b, i, found),
            Some(b'{' | b'[') => i = skip_container(b, i),
            Some(_) => while let Some(&c) = b.get(i) { if c == b',' || c == b'}' { break } i += 1 },
            None => return b.len(),
        }
    }
}
RUST
rustup target add wasm32-wasip1 >/dev/null 2>&1 || true
(cd "$src" && RUSTFLAGS="-C link-arg=--export=malloc -C link-arg=--export=free" \
  CARGO_TARGET_DIR="$src/target" cargo build --quiet --release --target wasm32-wasip1)
for f in append_floor scan_floor; do
  cp "$src/target/wasm32-wasip1/release/floor.wasm" "$out/$f.wasm"
done
echo "$out/append_floor.wasm $out/scan_floor.wasm"
if [ -n "${FLB_WAMRC:-}" ]; then
  case "$(uname -m)" in
    x86_64) flags="--target=x86_64 --cpu=x86-64" ;;
    aarch64 | arm64) flags="--target=aarch64 --cpu=generic" ;;
    *) flags="" ;;
  esac
  # shellcheck disable=SC2086 # a list of options
  "$FLB_WAMRC" ${WAMRC_FLAGS:-$flags} -o "$out/append_floor.aot" "$out/append_floor.wasm" >/dev/null
  cp "$out/append_floor.aot" "$out/scan_floor.aot"
  echo "$out/append_floor.aot $out/scan_floor.aot"
fi
