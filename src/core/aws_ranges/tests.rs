//! Unit tests of the AWS address space: the built-in table against the published ranges, CIDR lists, and look-ups at range edges for IPv4 and IPv6.

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn cidrs(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

#[test]
fn builtin_counts_and_metadata() {
    let b = AwsRanges::builtin();
    assert!(
        std::ptr::eq(b, AwsRanges::builtin()),
        "decoded once, shared"
    );
    // What scripts/gen-aws-ranges.py reports for syncToken 1787411825:
    // 10,668 IPv4 / 6,160 IPv6 prefixes merged into 933 / 1,931 ranges.
    // The data README's 1,753 / 2,107 count *CIDR prefixes* after joining
    // adjacent ones (Python's `ipaddress.collapse_addresses`); a range
    // here may join prefixes whose union is no single CIDR (3.64.0.0 to
    // 3.99.255.255), hence fewer entries for the same addresses.
    assert_eq!(b.v4_ranges().len(), 933);
    assert_eq!(b.v6_ranges().len(), 1931);
    let cidrs = b.to_cidrs();
    assert_eq!(
        cidrs.iter().filter(|n| matches!(n, IpNet::V4(_))).count(),
        1753
    );
    assert_eq!(
        cidrs.iter().filter(|n| matches!(n, IpNet::V6(_))).count(),
        2107
    );
    assert_eq!(b.sync_token(), Some("1787411825"));
    assert_eq!(b.create_date(), Some("2026-08-22-15-17-05"));
    assert_eq!(AwsRanges::BUILTIN_SYNC_TOKEN, "1787411825");
    assert_eq!(AwsRanges::BUILTIN_CREATE_DATE, "2026-08-22-15-17-05");
    // Sorted, disjoint and not adjacent.
    assert!(
        b.v4.windows(2)
            .all(|w| w[0].0 <= w[0].1 && w[0].1 + 1 < w[1].0)
    );
    assert!(
        b.v6.windows(2)
            .all(|w| w[0].0 <= w[0].1 && w[0].1 + 1 < w[1].0)
    );
    // Round trip through CIDRs.
    assert_eq!(AwsRanges::from_cidrs(&cidrs).v4, b.v4);
    assert_eq!(AwsRanges::from_cidrs(&cidrs).v6, b.v6);
}

#[test]
fn builtin_inside_and_outside() {
    let b = AwsRanges::builtin();
    for a in [
        "3.5.141.7",          // EC2 ap-northeast-2 3.5.140.0/22
        "35.180.1.1",         // EC2 eu-west-3 35.180.0.0/16
        "3.80.12.14",         // in the merged 3.64.0.0 - 3.99.255.255
        "52.95.110.1",        // AMAZON
        "2406:daba:f000::1",  // EC2 2406:daba:f000::/40
        "2600:1f18::1",       // EC2 us-east-1
        "2a01:578:0:7300::1", // a /128
        "::ffff:3.5.141.7",   // IPv4-mapped
    ] {
        assert!(b.contains(ip(a)), "{a} should be AWS");
    }
    for a in [
        "8.8.8.8",
        "1.1.1.1",
        "203.0.113.5",
        "198.51.100.99",
        "192.0.2.1",
        "10.0.1.5",
        "0.0.0.0",
        "255.255.255.255",
        "2001:4860:4860::8888",
        "2606:4700:4700::1111",
        "2001:db8::1",
        "2a01:578:0:7300::2",
        "::",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "::ffff:8.8.8.8",
    ] {
        assert!(!b.contains(ip(a)), "{a} should not be AWS");
    }
}

#[test]
fn builtin_merged_range_boundaries() {
    let b = AwsRanges::builtin();
    // 3.64.0.0 - 3.99.255.255 is one merged range (no single CIDR).
    assert!(b.v4_ranges().contains(&(
        u32::from(Ipv4Addr::new(3, 64, 0, 0)),
        u32::from(Ipv4Addr::new(3, 99, 255, 255))
    )));
    assert!(!b.contains(ip("3.63.255.255")));
    assert!(b.contains(ip("3.64.0.0")));
    assert!(b.contains(ip("3.99.255.255")));
    assert!(!b.contains(ip("3.100.0.0")));
    // 2400:6500:0:9::1 - ::4, built from prefixes longer than /64.
    assert!(!b.contains(ip("2400:6500:0:9::")));
    assert!(b.contains(ip("2400:6500:0:9::1")));
    assert!(b.contains(ip("2400:6500:0:9::4")));
    assert!(!b.contains(ip("2400:6500:0:9::5")));
    // The first and last IPv4 ranges.
    assert!(!b.contains(ip("1.178.0.255")));
    assert!(b.contains(ip("1.178.1.0")));
    assert!(b.contains(ip("216.244.63.255")));
    assert!(!b.contains(ip("216.244.64.0")));
}

#[test]
fn from_cidrs_merges_and_finds() {
    let r = AwsRanges::from_cidrs(&cidrs(&[
        "10.0.2.0/24",
        "10.0.0.0/24",
        "10.0.1.0/24",   // adjacent to both: one range 10.0.0.0 - 10.0.2.255
        "10.0.1.128/25", // inside
        "10.0.4.0/24",
        "0.0.0.0/32",
        "255.255.255.255/32",
        "2600:1f00::/24",
        "2600:1f00:1::/48",
        "2600:2001::/32", // not adjacent: 2600:1f00::/24 ends at 2600:1fff:ffff:…
        "::/128",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128",
    ]));
    assert_eq!(r.v4_ranges().len(), 4);
    assert_eq!(r.v6_ranges().len(), 4);
    assert_eq!(r.sync_token(), None);
    for a in [
        "10.0.0.0",
        "10.0.1.200",
        "10.0.2.255",
        "10.0.4.9",
        "0.0.0.0",
        "255.255.255.255",
    ] {
        assert!(r.contains(ip(a)), "{a}");
    }
    for a in [
        "10.0.3.0",
        "9.255.255.255",
        "10.0.5.0",
        "0.0.0.1",
        "255.255.255.254",
    ] {
        assert!(!r.contains(ip(a)), "{a}");
    }
    assert!(r.contains(ip("2600:1f00::1")));
    assert!(r.contains(ip("2600:1fff:ffff::1")));
    assert!(!r.contains(ip("2600:2000::")));
    assert!(r.contains(ip("2600:2001::5")));
    assert!(r.contains(ip("::")));
    assert!(r.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
    assert!(!r.contains(ip("::1")));
    // Whole families, overlapping at the top.
    let all = AwsRanges::from_cidrs(&cidrs(&["0.0.0.0/0", "255.0.0.0/8", "::/0", "ff00::/8"]));
    assert_eq!(all.v4_ranges(), &[(0, u32::MAX)]);
    assert_eq!(all.v6_ranges(), &[(0, u128::MAX)]);
    assert!(all.contains(ip("8.8.8.8")) && all.contains(ip("2001:db8::1")));
    let none = AwsRanges::from_cidrs(&[]);
    assert!(none.is_empty() && !none.contains(ip("3.5.141.7")));
}

#[test]
fn heapsort_sorts() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for n in [0, 1, 2, 3, 7, 64, 1000] {
        let mut v: Vec<(u128, u128)> = (0..n)
            .map(|_| {
                x = x.rotate_left(13).wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ 0x94d0;
                (u128::from(x % 97), u128::from(x >> 60))
            })
            .collect();
        let mut want = v.clone();
        want.sort();
        heapsort(&mut v);
        assert_eq!(v, want, "{n}");
    }
}

#[test]
fn ip_ranges_json() {
    let r = AwsRanges::from_ip_ranges_json(
        br#"{"syncToken":"42","createDate":"2026-01-02-03-04-05",
            "prefixes":[{"ip_prefix":"3.0.0.0/15","region":"x","service":"AMAZON"},{"ip_prefix":"3.2.0.0/15"}],
            "ipv6_prefixes":[{"ipv6_prefix":"2600:1f00::/24","service":"EC2"}]}"#,
    )
    .unwrap();
    assert_eq!(r.v4_ranges().len(), 1);
    assert_eq!(r.v6_ranges().len(), 1);
    assert_eq!(r.sync_token(), Some("42"));
    assert_eq!(r.create_date(), Some("2026-01-02-03-04-05"));
    assert!(r.contains(ip("3.3.255.255")) && !r.contains(ip("3.4.0.0")));
    assert!(r.contains(ip("2600:1f00::1")));
    // No metadata is fine; one family is enough.
    let r = AwsRanges::from_ip_ranges_json(br#"{"prefixes":[{"ip_prefix":"3.0.0.0/8"}]}"#).unwrap();
    assert_eq!(r.sync_token(), None);
}

#[test]
fn ip_ranges_json_errors() {
    for (bad, says) in [
        (&br#"{"prefixes":[{"ip_prefix":"nope"}]}"#[..], "\"nope\""),
        (
            br#"{"prefixes":[{"ip_prefix":"3.0.0.0/33"}]}"#,
            "3.0.0.0/33",
        ),
        (br#"{"prefixes":[{"ip_prefix":"2600::/24"}]}"#, "not IPv4"),
        (
            br#"{"ipv6_prefixes":[{"ipv6_prefix":"3.0.0.0/8"}]}"#,
            "not IPv6",
        ),
        (
            br#"{"prefixes":[{"ipv6_prefix":"2600::/24"}]}"#,
            "ip_prefix",
        ),
        (
            br#"{"syncToken":"1","prefixes":[],"ipv6_prefixes":[]}"#,
            "no prefixes",
        ),
        (b"{}", "no prefixes"),
        (b"[1]", "AWS ip-ranges file"),
        (b"{\"prefixes\":", "EOF"),
        (b"", "EOF"),
    ] {
        let e = AwsRanges::from_ip_ranges_json(bad).unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e:?}");
        let m = e.to_string();
        assert!(
            m.starts_with("invalid configuration: AWS ip-ranges file: "),
            "{m}"
        );
        assert!(m.contains(says), "{m} lacks {says}");
    }
}

#[test]
fn non_public_addresses() {
    for a in [
        "10.0.0.1",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "100.64.0.1",
        "100.127.255.255",
        "127.0.0.1",
        "169.254.169.254",
        "0.0.0.0",
        "::",
        "::1",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "febf::1",
        "::ffff:10.1.2.3",
        "::ffff:100.64.0.1",
    ] {
        assert!(is_non_public(ip(a)), "{a} is not public");
    }
    for a in [
        "192.0.2.1",
        "198.51.100.99",
        "203.0.113.5",
        "8.8.8.8",
        "3.5.141.7",
        "100.63.255.255",
        "100.128.0.0",
        "172.32.0.1",
        "172.15.255.255",
        "169.253.0.1",
        "255.255.255.255",
        "224.0.0.1",
        "2001:db8::1",
        "2600:1f18::1",
        "fec0::1",
        "fbff::1",
        "ff02::1",
        "::ffff:8.8.8.8",
        "::8.8.8.8",
    ] {
        assert!(!is_non_public(ip(a)), "{a} is public");
    }
}

#[test]
fn decode_refuses_malformed_tables() {
    assert!(decode(data::RANGES).is_some());
    // Truncated anywhere, or with a trailing byte.
    for n in [0, 1, 2, data::RANGES.len() / 2, data::RANGES.len() - 1] {
        assert!(decode(&data::RANGES[..n]).is_none(), "{n}");
    }
    let mut longer = data::RANGES.to_vec();
    longer.push(0);
    assert!(decode(&longer).is_none());
    // LEB128 overflow and shifts that lose bits.
    let mut b: &[u8] = &[0xff; 20];
    assert_eq!(leb128(&mut b), None);
    let mut b: &[u8] = &[
        0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
        0x80, 0x80, 0x80, 0x03,
    ];
    assert_eq!(leb128(&mut b), Some(3 << 126));
    let mut b: &[u8] = &[
        0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
        0x80, 0x80, 0x80, 0x04,
    ];
    assert_eq!(leb128(&mut b), None);
    assert_eq!(shl(1, 127), Some(1 << 127));
    assert_eq!(shl(2, 127), None);
    assert_eq!(shl(0, 255), Some(0));
    // An IPv4 range past 255.255.255.255; a zero-size range.
    let mut b: &[u8] = &[1, 0, 0x80, 0x80, 0x80, 0x80, 0x10, 1];
    assert_eq!(decode_family(&mut b, u128::from(u32::MAX)), None);
    let mut b: &[u8] = &[1, 0, 5, 0];
    assert_eq!(decode_family(&mut b, u128::from(u32::MAX)), None);
    let mut b: &[u8] = &[2, 8, 1, 1, 8, 1, 2];
    assert_eq!(
        decode_family(&mut b, u128::from(u32::MAX)),
        Some(vec![(256, 511), (768, 1279)])
    );
}
