//! Unit tests of the JSON scanner: the block paths against a bytewise search, agreement with serde_json and from_utf8, deep nesting without recursion, string decoding and error positions.

use super::*;

/// The block paths (SSE2 on x86-64, SWAR) find the same byte as a plain
/// byte-by-byte search, from every start offset, on texts where every
/// byte value (special, plain ASCII, non-ASCII) turns up at every
/// position of a block.
#[test]
fn plain_run_matches_bytewise() {
    let reference = |b: &[u8], j: usize| {
        (j..b.len())
            .find(|&i| b[i] == b'"' || b[i] == b'\\' || b[i] < 0x20)
            .unwrap_or(b.len())
    };
    let reference_high = |b: &[u8], j: usize| {
        (j..b.len())
            .find(|&i| b[i] == b'"' || b[i] == b'\\' || b[i] < 0x20 || b[i] >= 0x80)
            .unwrap_or(b.len())
    };
    let mut rng = fastrand::Rng::with_seed(7);
    for round in 0..3000 {
        let len = rng.usize(0..80);
        let b: Vec<u8> = (0..len)
            .map(|_| match rng.u8(0..10) {
                0 => *rng.choice(&[b'"', b'\\', 0, 0x1f, b'\n']).unwrap(),
                1 => rng.u8(0x80..=0xff),
                2 => rng.u8(..),
                _ => rng.u8(0x20..0x7f),
            })
            .collect();
        for j in 0..=len {
            assert_eq!(
                plain_run(&b, j),
                reference(&b, j),
                "round {round} at {j}: {b:?}"
            );
            assert_eq!(
                plain_run_swar::<false>(&b, j),
                reference(&b, j),
                "round {round} at {j}"
            );
            assert_eq!(
                string_run(&b, j),
                reference_high(&b, j),
                "round {round} at {j}: {b:?}"
            );
            assert_eq!(
                plain_run_swar::<true>(&b, j),
                reference_high(&b, j),
                "round {round} at {j}"
            );
        }
    }
    // Every byte value at every position of a 16-byte block, alone in plain text.
    for pos in 0..40 {
        for v in 0..=255u8 {
            let mut b = vec![b'a'; 40];
            b[pos] = v;
            assert_eq!(plain_run(&b, 0), reference(&b, 0), "byte {v:#x} at {pos}");
            assert_eq!(
                string_run(&b, 0),
                reference_high(&b, 0),
                "byte {v:#x} at {pos}"
            );
        }
    }
}

fn ok(t: &str) -> bool {
    validate(t).is_ok()
}

#[test]
fn agrees_with_serde_json_on_small_cases() {
    let cases = [
        "0",
        "-0",
        "01",
        "1.",
        "1.5e",
        "1.5e+3",
        "-",
        "1e400",
        "[1,]",
        "[,1]",
        "[]",
        "{}",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{1:1}",
        "{\"a\":1}x",
        " {\"a\" : [ true , false , null ] } ",
        "\"\\u12\"",
        "\"\\u12g4\"",
        "\"\\ud800\"",
        "\"\\x\"",
        "\"a\tb\"",
        "\"a\\tb\"",
        "tru",
        "nul",
        "nulll",
        "[1 2]",
        "\"abcdefghijklmnopq\\\"rstuvwxyz\"",
        "\"abcdefghijklmnopqrstuvwxyz",
        "",
        "   ",
        "[[[[]]]]",
        "[[[[]]]",
        "{\"a\":{\"b\":{}}}",
        "{\"a\":{\"b\":{}}",
        "\u{7f}",
        "\"\u{1f}\"",
        "\"é日本\"",
    ];
    for c in cases {
        let serde = serde_json::from_str::<serde::de::IgnoredAny>(c).is_ok();
        assert_eq!(ok(c), serde, "{c:?}");
    }
}

/// Bytes: the scanner's own UTF-8 check agrees with `core::str::from_utf8`
/// plus a JSON validation, on strings of random bytes (every lead byte,
/// cut-short, overlong and surrogate sequences turn up) and around them.
#[test]
fn bytes_agree_with_from_utf8_then_json() {
    let mut rng = fastrand::Rng::with_seed(11);
    let pieces: [&[u8]; 12] = [
        b"a",
        b"\\n",
        "é".as_bytes(),
        "日本".as_bytes(),
        "😀".as_bytes(),
        b"\xc0\x80",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"\xe0\x80\xaf",
        b"\xf0\x8f\xbf\xbf",
        b" ",
        b"\"",
    ];
    for round in 0..20_000 {
        let mut b = b"{\"k\":[\"".to_vec();
        for _ in 0..rng.usize(0..12) {
            match rng.u8(0..4) {
                0 => b.push(rng.u8(..)),
                1 => b.push(rng.u8(0x80..)),
                _ => b.extend_from_slice(pieces[rng.usize(0..pieces.len())]),
            }
        }
        b.extend_from_slice(if round % 7 == 0 { b"\"]}\xc3" } else { b"\"]}" });
        let reference = std::str::from_utf8(&b)
            .is_ok_and(|t| serde_json::from_str::<serde::de::IgnoredAny>(t).is_ok());
        assert_eq!(validate_bytes(&b).is_ok(), reference, "{b:?}");
        if let Ok(t) = std::str::from_utf8(&b) {
            assert_eq!(validate(t).is_ok(), reference, "{b:?}");
        }
    }
    // Every 1-4 byte sequence the checker can be given as a string, against core.
    for c0 in 0x80..=0xffu8 {
        for c1 in 0x70..=0xc8u8 {
            for tail in [
                &b""[..],
                b"\x80",
                b"\xbf\x80",
                b"\xbf",
                b"a",
                b"\x80\x80\x80",
            ] {
                let mut s = vec![c0, c1];
                s.extend_from_slice(tail);
                let mut b = b"\"".to_vec();
                b.extend_from_slice(&s);
                b.push(b'"');
                let ok = std::str::from_utf8(&s).is_ok() && !s.contains(&b'"');
                assert_eq!(validate_bytes(&b).is_ok(), ok, "{s:x?}");
            }
        }
    }
}

#[test]
fn deep_nesting_is_read_without_recursion() {
    let d = 200_000;
    let t = format!("{}null{}", "[{\"a\":".repeat(d), "}]".repeat(d));
    assert!(ok(&t));
    assert!(!ok(&t[..t.len() - 1]));
}

#[test]
fn strings_decode_borrowed_or_owned() {
    let mut s = Scanner::new(r#""plain" "a\u0041" "\ud800""#);
    let a = s.string().unwrap();
    assert!(matches!(s.decode(a), Some(Cow::Borrowed("plain"))));
    s.ws();
    let b = s.string().unwrap();
    assert_eq!(s.decode(b).as_deref(), Some("aA"));
    s.ws();
    let c = s.string().unwrap();
    assert_eq!(s.decode(c), None);
}

#[test]
fn error_positions() {
    let e = validate("{\"a\":tru}").unwrap_err();
    assert_eq!(e.to_string(), "invalid literal at byte 5");
}
