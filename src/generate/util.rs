//! Small helpers: truths, address and time formatting, hashing and key-ID encoding.

use super::*;

pub(super) fn key_truth(
    root: &str,
    depth: u32,
    kind: Kind,
    collision: bool,
    offhost: bool,
) -> Truth {
    Truth {
        lineage_root: Some(root.to_string()),
        lineage_depth: Some(depth),
        lineage_complete: Some(true),
        offhost,
        offhost_reason: None,
        offhost_other_identity: None,
        offhost_ancestor: false,
        ec2_instance_id: None,
        collision,
        kind: kind.name(),
        duplicate: false,
        late: false,
        lake_time: false,
    }
}

pub(super) fn none_truth(kind: Kind) -> Truth {
    Truth {
        lineage_root: None,
        lineage_depth: None,
        lineage_complete: None,
        offhost: false,
        offhost_reason: None,
        offhost_other_identity: None,
        offhost_ancestor: false,
        ec2_instance_id: None,
        collision: false,
        kind: kind.name(),
        duplicate: false,
        late: false,
        lake_time: false,
    }
}

/// An address inside one of the EC2 prefixes `AWS_V4` (never `.0`/`.255`).
pub(super) fn aws_v4(h: u64) -> String {
    let n = h.checked_rem(AWS_V4.len() as u64).unwrap_or(0) as usize;
    let (base, len) = AWS_V4.get(n).copied().unwrap_or(([3, 224, 0, 0], 12));
    let host_bits = 32 - len;
    let host = ((h >> 8) as u32) & ((1u32 << host_bits) - 1);
    let mut a = u32::from_be_bytes(base) | host;
    match a & 0xff {
        0 => a |= 1,
        255 => a -= 1,
        _ => {}
    }
    std::net::Ipv4Addr::from(a).to_string()
}

/// An address inside one of the EC2 IPv6 prefixes `AWS_V6`.
pub(super) fn aws_v6(h: u64) -> String {
    let n = h.checked_rem(AWS_V6.len() as u64).unwrap_or(0) as usize;
    let (base, len) = AWS_V6.get(n).copied().unwrap_or((0x2600_1f18 << 96, 33));
    let low = u128::from(mix(h, 6)) << 64 | u128::from(mix(h, 7));
    let mask = (1u128 << (128 - len)) - 1;
    std::net::Ipv6Addr::from(base | (low & mask)).to_string()
}

pub(super) fn fmt_time(t: i64, pattern: &str) -> String {
    DateTime::from_timestamp(t.clamp(0, MAX_TS), 0)
        .map(|d| d.format(pattern).to_string())
        .unwrap_or_default()
}

pub(super) fn iso(t: i64) -> String {
    fmt_time(t, "%Y-%m-%dT%H:%M:%SZ")
}

/// An IPv4 address whose first octet comes from `nets`.
pub(super) fn ip_in(nets: &[u8], h: u64) -> String {
    let n = h.checked_rem(nets.len() as u64).unwrap_or(0) as usize;
    let first = nets.get(n).copied().unwrap_or(198);
    format!(
        "{first}.{}.{}.{}",
        (h >> 8) & 0xff,
        (h >> 16) & 0xff,
        1 + (h >> 24) % 254
    )
}

/// SplitMix64 of two words: stable per-entity values without state.
pub(super) fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A seeded bijection on u32, so distinct counters give distinct key tails.
pub(super) fn permute32(x: u32, seed: u64) -> u32 {
    let mut v = x ^ (seed as u32);
    v = v.wrapping_mul(0x9e37_79b1);
    v ^= v >> 15;
    v = v.wrapping_mul(0x85eb_ca77);
    v ^= v >> 13;
    v ^ ((seed >> 32) as u32)
}

pub(super) const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// prefix + base32(z as 6 bytes ‖ tail as 4 bytes), z = 1<<47 | account<<7 | low7.
pub(super) fn encode_key(prefix: &str, account: u64, low7: u8, tail: u32) -> String {
    let z = (1u64 << 47) | ((account & ((1 << 40) - 1)) << 7) | u64::from(low7 & 0x7f);
    let v = (u128::from(z) << 32) | u128::from(tail);
    let mut s = String::with_capacity(prefix.len() + 16);
    s.push_str(prefix);
    for i in 0..16u32 {
        let idx = ((v >> (75 - 5 * i)) & 31) as usize;
        s.push(char::from(B32[idx]));
    }
    s
}
