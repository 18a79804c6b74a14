//! Reading an S3 delivery file's records in place (`input::InPlace` +
//! `Enricher::process_prefix_into`, what the CLI does with a one-line
//! `{"Records":[…]}` file) gives exactly what cutting it with `input::split`
//! and enriching each piece with `process_into` gives — the bytes, every
//! outcome, the counters — on real records in documents with random
//! whitespace, damaged by random edits (bad bytes, brackets, commas, quotes,
//! line breaks, truncation, keys or values after `Records`). And the claim
//! the fallback rests on: wherever the walk stops, `split`'s first records
//! are the ones it read, byte for byte. The checks are the `document` fuzz
//! target's (`fuzz/invariants.rs`).

#[path = "hostile_support/mod.rs"]
mod hostile_support;
#[path = "../fuzz/invariants.rs"]
mod invariants;

use credlineage::Enricher;
use credlineage::input::InPlace;
use invariants::document as in_place;
use proptest::prelude::*;
use proptest::sample::select;

/// Compact records: the scenario fixture's lines (v1.1 shapes, every root
/// kind) and a few hand-made odd elements.
fn records() -> Vec<Vec<u8>> {
    let text = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenarios.jsonl"),
    )
    .unwrap();
    let mut v: Vec<Vec<u8>> = text
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .take(40)
        .map(<[u8]>::to_vec)
        .collect();
    for odd in [
        &b"1"[..],
        b"\"a string\"",
        b"[1,{\"a\":2}]",
        b"null",
        b"{}",
        b"{\"eventVersion\":\"1.08\",\"note\":\"caf\xc3\xa9 \\u00e9 \\\" \\\\\"}",
        b"-0.5e+3",
    ] {
        v.push(odd.to_vec());
    }
    v
}

fn ws() -> impl Strategy<Value = &'static str> {
    prop_oneof![6 => Just(""), 2 => Just(" "), 1 => Just("\t"), 1 => Just("  \t ")]
}

/// A one-line S3 delivery file of some of `records()`, with random
/// whitespace between the tokens.
fn document() -> impl Strategy<Value = Vec<u8>> {
    let n = records().len();
    (
        proptest::collection::vec((0..n, ws(), ws()), 0..6),
        ws(),
        ws(),
        ws(),
        ws(),
        prop_oneof![4 => Just(""), 1 => Just("\n"), 1 => Just("\r\n")],
    )
        .prop_map(|(picks, w1, w2, w3, w4, end)| {
            let recs = records();
            let mut d = Vec::new();
            d.extend_from_slice(w1.as_bytes());
            d.extend_from_slice(b"{\"Records\"");
            d.extend_from_slice(w2.as_bytes());
            d.extend_from_slice(b":");
            d.extend_from_slice(w3.as_bytes());
            d.extend_from_slice(b"[");
            for (i, (r, a, b)) in picks.iter().enumerate() {
                if i > 0 {
                    d.extend_from_slice(a.as_bytes());
                    d.push(b',');
                }
                d.extend_from_slice(b.as_bytes());
                d.extend_from_slice(&recs[*r]);
            }
            d.extend_from_slice(w4.as_bytes());
            d.extend_from_slice(b"]}");
            d.extend_from_slice(end.as_bytes());
            d
        })
}

/// One edit of a document.
#[derive(Debug, Clone)]
enum Edit {
    Replace(f64, u8),
    Insert(f64, u8),
    Delete(f64),
    Truncate(f64),
    Append(&'static [u8]),
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte = select(vec![
        b',', b']', b'[', b'}', b'{', b'"', b'\\', b':', b' ', b'\n', b'\r', b'x', b'1', b'0',
        0xff, 0xc3, 0x00, 0x1f,
    ]);
    prop_oneof![
        3 => (0.0..1.0f64, byte.clone()).prop_map(|(p, b)| Edit::Replace(p, b)),
        3 => (0.0..1.0f64, byte).prop_map(|(p, b)| Edit::Insert(p, b)),
        2 => (0.0..1.0f64).prop_map(Edit::Delete),
        1 => (0.0..1.0f64).prop_map(Edit::Truncate),
        1 => select(vec![
            &b",\"x\":1}"[..],
            b"{\"Records\":[]}",
            b"{\"Records\":[{}]}",
            b"  ",
            b"\n{\"a\":1}\n",
            b"]",
            b"}",
            b"x",
        ])
        .prop_map(Edit::Append),
    ]
}

fn apply(mut d: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let at = |p: f64, len: usize| ((p * len as f64) as usize).min(len.saturating_sub(1));
        match *e {
            Edit::Replace(p, b) if !d.is_empty() => {
                let i = at(p, d.len());
                d[i] = b;
            }
            Edit::Insert(p, b) => {
                let i = at(p, d.len() + 1);
                d.insert(i, b);
            }
            Edit::Delete(p) if !d.is_empty() => {
                let i = at(p, d.len());
                d.remove(i);
            }
            Edit::Truncate(p) => {
                let i = at(p, d.len() + 1);
                d.truncate(i);
            }
            Edit::Append(s) => {
                // Before the trailing line break, if any.
                let keep = d
                    .iter()
                    .rposition(|&c| c != b'\n' && c != b'\r')
                    .map_or(0, |p| p + 1);
                let tail = d.split_off(keep);
                d.extend_from_slice(s);
                d.extend_from_slice(&tail);
            }
            _ => {}
        }
    }
    d
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn in_place_equals_split_then_process(
        doc in document(),
        edits in proptest::collection::vec(edit(), 0..3),
    ) {
        // Panics (with the document) when the two ways differ.
        in_place(&apply(doc, &edits));
    }
}

/// Hand-picked documents: each takes the path named, and gives `split`'s
/// result.
#[test]
fn in_place_paths() {
    let recs = records();
    let (a, b) = (
        String::from_utf8(recs[0].clone()).unwrap(),
        String::from_utf8(recs[1].clone()).unwrap(),
    );
    // (document, records read in place: None = not walked at all, finished)
    let cases: Vec<(String, Option<usize>, bool)> = vec![
        (format!("{{\"Records\":[{a},{b}]}}"), Some(2), true),
        (
            format!(" {{ \"Records\" : [ {a} , {b} ] }} \n"),
            Some(2),
            true,
        ),
        ("{\"Records\":[]}".into(), Some(0), true),
        ("{\"Records\":[1,\"s\",null,[2]]}".into(), Some(4), true),
        // Damage in the second record: the first read in place, the rest
        // as split cuts it (the damaged record passed through, named).
        (
            format!("{{\"Records\":[{a},{}x]}}", &b[..b.len() - 1]),
            Some(1),
            false,
        ),
        // Cut short.
        (
            format!("{{\"Records\":[{a},{}", &b[..b.len() / 2]),
            Some(1),
            false,
        ),
        // A trailing comma, a key after Records, a second document.
        (format!("{{\"Records\":[{a},]}}"), Some(1), false),
        (format!("{{\"Records\":[{a}],\"x\":1}}"), Some(1), false),
        (
            format!("{{\"Records\":[{a}]}}{{\"Records\":[{b}]}}"),
            Some(1),
            false,
        ),
        (format!("{{\"Records\":[{a}]}} x"), Some(1), false),
        // Not walked: pretty, escaped key, another first key, a BOM.
        (format!("{{\n\"Records\":[{a}]}}"), None, false),
        (format!("{{\"Rec\\u006frds\":[{a}]}}"), None, false),
        (format!("{{\"x\":1,\"Records\":[{a}]}}"), None, false),
        (format!("\u{feff}{{\"Records\":[{a}]}}"), None, false),
    ];
    for (doc, walked, finished) in cases {
        assert_eq!(in_place(doc.as_bytes()), walked, "{doc}");
        if let Some(w) = InPlace::new(&doc) {
            let mut w = w;
            let mut e = Enricher::new(invariants::small_config()).unwrap();
            let mut out = Vec::new();
            while let Some(rest) = w.next(&doc) {
                match e.process_prefix_into(rest, None, &mut out) {
                    Some((_, len)) => w.advance(len),
                    None => break,
                }
            }
            assert_eq!(w.finished(), finished, "{doc}");
        }
    }
}
