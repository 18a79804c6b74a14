//! Unit tests of the engine's private pieces: the streamed snapshot, instance-ID and address parsing, role ARNs, the sweep of expired sets and token redaction.

use super::lineage::assumed_role_arn;
use super::offhost::{is_instance_id, is_service_source, parse_ip, trailing_instance_id};
use super::redact::redact_tokens;
use super::{Enricher, SWEEP_MIN};
use crate::Config;
use crate::state::State;
use std::net::IpAddr;

/// The streamed snapshot is the format earlier builds wrote, byte for
/// byte (no format change), and reads back (from a slice and from a
/// reader) to a state that writes the same bytes; any byte changed or
/// cut is refused with the earlier messages.
#[test]
fn streamed_snapshots_are_the_copied_format() {
    let mut e = Enricher::new(Config::default()).unwrap();
    for r in crate::generate::trail_lines(5, 3000) {
        let _ = e.annotate(&r, None);
    }
    assert!(e.stats().state_bytes > 0);
    let streamed = e.snapshot();
    assert_eq!(streamed, e.state.snapshot_copied(&e.digest));
    // Written at an offset of a seekable sink: the digest lands in place.
    let mut c = std::io::Cursor::new(b"prefix".to_vec());
    c.set_position(6);
    e.write_snapshot(&mut c).unwrap();
    assert_eq!(&c.get_ref()[6..], &streamed[..]);
    // Read a few bytes at a time: every value is cut by a buffer's end
    // somewhere (a number, a key, an element), and read again whole.
    for chunk in [1, 2, 7, 64, 1000, 4096] {
        let st = State::restore_chunked(&streamed[..], &e.digest, 1, chunk).unwrap();
        assert_eq!(st.snapshot(&e.digest), streamed, "chunk {chunk}");
    }
    let mut back = Enricher::new(Config::default()).unwrap();
    back.restore_from(std::io::BufReader::new(&streamed[..]))
        .unwrap();
    assert_eq!(back.snapshot(), streamed);
    back.restore(&streamed).unwrap();
    assert_eq!(back.snapshot(), streamed);
    for cut in [streamed.len() - 1, streamed.len() / 2, 60] {
        let err = back.restore(&streamed[..cut]).unwrap_err().to_string();
        assert!(err.contains("checksum mismatch"), "{cut}: {err}");
    }
    let mut bad = streamed.clone();
    let at = bad.len() / 3;
    bad[at] ^= 0x20;
    let err = back.restore(&bad).unwrap_err().to_string();
    assert!(err.contains("checksum mismatch"), "{err}");
    assert_eq!(
        back.snapshot(),
        streamed,
        "a refused snapshot leaves the state"
    );
}

/// Reading the instance ID from the end agrees with the plain rule
/// (the text after the last separator, if it is an instance ID) on
/// strings built from the characters that matter.
#[test]
fn trailing_instance_id_is_the_plain_rule() {
    fn plain(s: &str, sep: char) -> Option<&str> {
        s.rsplit_once(sep)
            .map(|(_, id)| id)
            .filter(|id| is_instance_id(id))
    }
    let mut rng = fastrand::Rng::with_seed(3);
    let alphabet = ['i', '-', ':', '/', 'a', '0', 'Z', '_', 'é'];
    for n in 0..200_000 {
        let len = rng.usize(0..45);
        let mut s: String = (0..len).map(|_| *rng.choice(&alphabet).unwrap()).collect();
        if n % 2 == 0 {
            // Plant a near-instance-ID at the end.
            s.push(*rng.choice(&[':', '/']).unwrap());
            s.push_str("i-");
            s.extend((0..rng.usize(0..34)).map(|_| *rng.choice(&['a', '0', 'Z', '-']).unwrap()));
        }
        for sep in [':', '/'] {
            assert_eq!(
                trailing_instance_id(&s, sep as u8),
                plain(&s, sep),
                "{s:?} {sep}"
            );
        }
    }
    assert_eq!(
        trailing_instance_id("AROAEXAMPLE:i-0123456789abcdef0", b':'),
        Some("i-0123456789abcdef0")
    );
}

#[test]
fn ips() {
    assert_eq!(
        parse_ip("255.090.254.5"),
        Some(IpAddr::from([255, 90, 254, 5]))
    );
    assert_eq!(parse_ip("256.1.1.1"), None);
    assert_eq!(parse_ip("AWS Internal"), None);
    assert!(parse_ip("2001:db8::1").is_some());
    assert!(is_service_source("ec2.amazonaws.com"));
    assert!(is_service_source("AWS Internal"));
    assert!(!is_service_source("2001:db8::1"));
    assert!(!is_service_source("255.090.254.5"));
    for bad in [
        "",
        ".",
        "1.2.3",
        "1.2.3.4.",
        ".1.2.3",
        "1..2.3",
        "1.2.3.4.5",
        "1234.1.1.1",
    ] {
        assert_eq!(parse_ip(bad), None, "{bad:?}");
    }
    assert_eq!(parse_ip("::ffff:1.2.3.4").map(|i| i.is_ipv6()), Some(true));
}

/// The fast dotted-quad reader is the plain rule: std's parser, else
/// dotted decimal with leading zeros.
#[test]
fn parse_ip_is_the_plain_rule() {
    fn plain(s: &str) -> Option<IpAddr> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Some(ip);
        }
        let parts: Vec<&str> = s.split('.').collect();
        if parts.len() != 4 {
            return None;
        }
        let mut oct = [0u8; 4];
        for (o, p) in oct.iter_mut().zip(&parts) {
            if p.is_empty() || p.len() > 3 || !p.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            *o = p.parse().ok()?;
        }
        Some(IpAddr::from(oct))
    }
    let mut rng = fastrand::Rng::with_seed(7);
    let alphabet = ['0', '1', '2', '5', '9', '.', ':', 'a', ' '];
    for _ in 0..300_000 {
        let len = rng.usize(0..17);
        let s: String = (0..len).map(|_| *rng.choice(&alphabet).unwrap()).collect();
        assert_eq!(parse_ip(&s), plain(&s), "{s:?}");
    }
    for _ in 0..100_000 {
        let o: Vec<String> = (0..4)
            .map(|_| format!("{:0w$}", rng.u32(0..300), w = rng.usize(0..4)))
            .collect();
        let s = o.join(".");
        assert_eq!(parse_ip(&s), plain(&s), "{s:?}");
    }
}

#[test]
fn role_arns() {
    assert_eq!(
        assumed_role_arn("arn:aws:iam::123456789012:role/path/to/R", "s").as_deref(),
        Some("arn:aws:sts::123456789012:assumed-role/R/s")
    );
    assert_eq!(assumed_role_arn("garbage", "s"), None);
    assert!(is_instance_id("i-786a3A8B5C0d92eF4"));
    assert!(is_instance_id("i-0123456789abcdef0"));
    assert!(!is_instance_id("i-"));
    assert!(!is_instance_id("aws-go-sdk-1722375070115152000"));
}

#[test]
fn expired_sets_are_swept_even_behind_a_long_term_key() {
    let mut e = Enricher::new(Config::default()).unwrap();
    let ui = r#""userIdentity":{"type":"IAMUser","accountId":"1","arn":"arn:aws:iam::1:user/u","accessKeyId":"AKIAOLDKEY"}"#;
    let issue = format!(
        r#"{{"eventName":"AssumeRole","eventSource":"sts.amazonaws.com","eventTime":"2024-01-01T00:00:00Z",{ui},
            "requestParameters":{{"roleArn":"arn:aws:iam::1:role/r","roleSessionName":"s"}},
            "responseElements":{{"credentials":{{"accessKeyId":"ASIATEMP","expiration":"2024-01-01T01:00:00Z"}}}}}}"#
    );
    e.process(issue.as_bytes(), None);
    assert_eq!(e.stats().tracked_sets, 2);
    // The long-term key stays least recently used; hours later, unrelated
    // calls by another key push the clock on.
    let other = r#"{"eventName":"ListBuckets","eventSource":"s3.amazonaws.com","eventTime":"2024-01-01T05:00:00Z",
            "userIdentity":{"type":"IAMUser","accountId":"1","arn":"arn:aws:iam::1:user/v","accessKeyId":"AKIANEWKEY"}}"#;
    for _ in 0..SWEEP_MIN {
        e.process(other.as_bytes(), None);
    }
    let s = e.stats();
    assert_eq!(s.expired_purged, 1, "{s:?}");
    assert_eq!(s.tracked_sets, 2, "the two long-term keys remain: {s:?}");
}

#[test]
fn redaction() {
    let mut v = br#"{"a":{"sessionToken" : "IQoJ\"x"},"sessionToken":1}"#.to_vec();
    redact_tokens(&mut v, 0);
    assert_eq!(
        v,
        br#"{"a":{"sessionToken" : "<redacted>"},"sessionToken":1}"#.to_vec()
    );
}
