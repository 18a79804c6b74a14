#!/usr/bin/env python3
"""Generate src/core/aws_ranges_data.rs, the built-in AWS IP-ranges table (SPEC 3.5).

Usage:
    python3 scripts/gen-aws-ranges.py IP_RANGES_JSON [-o src/core/aws_ranges_data.rs]

IP_RANGES_JSON is AWS's published ip-ranges.json (a snapshot is kept in the
shared data directory, data/aws-ip-ranges/README.md says where it came from).
Python 3 standard library only. The output is deterministic: the same input
gives the same bytes.

The prefixes of each address family are merged into sorted, disjoint ranges
(overlapping and adjacent prefixes become one range, even where the union is
not a single CIDR), then delta-encoded into one byte string that
`src/core/aws_ranges.rs` decodes once per process:

    table  = family(IPv4) family(IPv6)
    family = LEB128(count) range*
    range  = k:u8 LEB128(gap >> k) LEB128(size >> k)

where `gap` is the range's first address minus (the previous range's last
address + 1) (minus 0 for the first range), `size` is last - first + 1, and
`k` is the largest shift that drops only zero bits of both (at most 127).
Aligned IPv6 ranges (mostly /32../64) shrink to a few bytes each that way.
"""

import argparse
import ipaddress
import json
import sys


def merge(nets):
    """Sorted, disjoint, non-adjacent (first, last) ranges covering `nets`."""
    out = []
    for first, last in sorted(
        (int(n.network_address), int(n.broadcast_address)) for n in nets
    ):
        if out and first <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], last)
        else:
            out.append([first, last])
    return out


def leb128(x):
    b = bytearray()
    while True:
        byte = x & 0x7F
        x >>= 7
        if x:
            b.append(byte | 0x80)
        else:
            b.append(byte)
            return bytes(b)


def trailing_zeros(x):
    return (x & -x).bit_length() - 1 if x else 128


def encode_family(ranges, bits):
    out = bytearray(leb128(len(ranges)))
    nxt = 0
    for first, last in ranges:
        gap, size = first - nxt, last - first + 1
        if size >= 1 << bits:
            sys.exit("a prefix /0 covers the whole address family: refusing")
        k = min(trailing_zeros(gap), trailing_zeros(size), 127)
        out.append(k)
        out += leb128(gap >> k)
        out += leb128(size >> k)
        nxt = last + 1
    return bytes(out)


def rust_bytes(data, width=96):
    """A Rust byte-string literal, one continued line per `width` bytes of source."""
    lines, line = [], ""
    for byte in data:
        c = chr(byte)
        if c == '"' or c == "\\":
            s = "\\" + c
        elif 0x21 <= byte <= 0x7E:
            s = c
        else:
            s = "\\x%02x" % byte
        if len(line) + len(s) > width:
            lines.append(line)
            line = ""
        line += s
    lines.append(line)
    # A `\` at the end of a line skips the newline and the next line's indentation.
    return 'b"\\\n    ' + "\\\n    ".join(lines) + '"'


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ip_ranges_json")
    ap.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    a = ap.parse_args()

    with open(a.ip_ranges_json, "rb") as f:
        doc = json.load(f)
    sync_token = str(doc["syncToken"])
    create_date = str(doc["createDate"])
    v4 = [ipaddress.IPv4Network(p["ip_prefix"]) for p in doc.get("prefixes", [])]
    v6 = [ipaddress.IPv6Network(p["ipv6_prefix"]) for p in doc.get("ipv6_prefixes", [])]
    m4, m6 = merge(v4), merge(v6)
    c4 = len(list(ipaddress.collapse_addresses(v4)))
    c6 = len(list(ipaddress.collapse_addresses(v6)))
    data = encode_family(m4, 32) + encode_family(m6, 128)

    def esc(s):
        return s.replace("\\", "\\\\").replace('"', '\\"')

    src = f"""\
//! Generated: the built-in AWS IP-ranges table (SPEC 3.5), AWS ip-ranges.json syncToken {sync_token}, createDate {create_date}. Do not edit.
//!
//! Regenerate from a newer ip-ranges.json (and update data/aws-ip-ranges/README.md
//! and the counts in the `aws_ranges` tests):
//!
//! ```text
//! python3 scripts/gen-aws-ranges.py ip-ranges.json -o src/core/aws_ranges_data.rs
//! ```
//!
//! Input: {len(v4):,} IPv4 and {len(v6):,} IPv6 prefixes ({len(set(v4)):,} and {len(set(v6)):,} distinct).
//! Merged into {len(m4):,} IPv4 and {len(m6):,} IPv6 ranges (overlapping and adjacent
//! prefixes joined; the same addresses as {c4:,} and {c6:,} CIDR prefixes).
//! {len(data):,} bytes; the encoding is described in scripts/gen-aws-ranges.py.

/// `syncToken` of the ip-ranges.json this table was built from.
pub(crate) const SYNC_TOKEN: &str = "{esc(sync_token)}";
/// `createDate` of the ip-ranges.json this table was built from.
pub(crate) const CREATE_DATE: &str = "{esc(create_date)}";
/// Number of merged IPv4 ranges in [`RANGES`] (checked when decoding).
pub(crate) const V4_RANGES: usize = {len(m4)};
/// Number of merged IPv6 ranges in [`RANGES`] (checked when decoding).
pub(crate) const V6_RANGES: usize = {len(m6)};
/// The delta-encoded ranges: IPv4, then IPv6.
#[rustfmt::skip]
pub(crate) const RANGES: &[u8] = {rust_bytes(data)};
"""
    if a.output == "-":
        sys.stdout.write(src)
    else:
        with open(a.output, "w", newline="\n") as f:
            f.write(src)
    print(
        f"{a.ip_ranges_json}: syncToken {sync_token}, createDate {create_date}: "
        f"{len(v4)} IPv4 / {len(v6)} IPv6 prefixes -> {len(m4)} / {len(m6)} ranges "
        f"({c4} / {c6} collapsed CIDRs), {len(data)} bytes",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
