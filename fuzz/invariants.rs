//! The checks every fuzz target runs on each input, shared with the stable-toolchain replay test `tests/fuzz_regressions.rs`.
//!
//! Each function panics with a clear message when an invariant breaks; the
//! record-level checks are `tests/hostile_support::check_record` (an
//! independent RFC 8259 checker and the byte-level splice contract), so a
//! fuzz finding and a hostile-input test fail the same way.

#![allow(dead_code)]

use crate::hostile_support::check_record;
use credlineage::{Config, Enricher};

/// Small caps, so eviction and sweeping run within a short fuzz input.
pub fn small_config() -> Config {
    Config {
        max_entries: 64,
        max_bytes: 64 << 10,
        ..Config::default()
    }
}

/// A configuration picked by one input byte: the default, or with
/// session-token redaction (which rewrites bytes of the record).
pub fn config_for(selector: u8) -> Config {
    let mut c = small_config();
    if selector & 1 == 1 {
        c.redact_session_tokens = true;
    }
    c
}

/// One record through `e`: exactly one record out, unchanged unless it is a
/// JSON object, and then valid JSON with every input member kept byte for
/// byte and the annotation last (SPEC 5 "Nothing lost").
pub fn one_record(e: &mut Enricher, input: &[u8], host_time: Option<i64>) {
    let mut out = Vec::new();
    let outcome = e.process_into(input, host_time, &mut out);
    if e.config().redact_session_tokens {
        // Redaction rewrites token values: only the JSON-level checks hold.
        match &outcome {
            credlineage::Outcome::Annotated => {
                assert!(
                    serde_json::from_slice::<serde_json::Value>(&out).is_ok()
                        || serde_json::from_slice::<serde_json::Value>(input).is_err(),
                    "redacted output is not JSON while the input was"
                );
            }
            _ => assert_eq!(out, input, "record not annotated was changed"),
        }
        return;
    }
    check_record(input, &out, &outcome, false, false);
}

/// A newline-separated stream through one enricher, then a snapshot that
/// must restore into a fresh enricher and snapshot again byte for byte.
pub fn stream(data: &[u8]) {
    let (sel, body) = match data.split_first() {
        Some((s, b)) => (*s, b),
        None => (0, data),
    };
    let mut e = Enricher::new(config_for(sel)).expect("valid config");
    for (i, line) in body.split(|&c| c == b'\n').enumerate() {
        let host = (i % 3 == 0).then_some(1_700_000_000 + i as i64);
        one_record(&mut e, line, host);
    }
    let snap = e.snapshot();
    let mut f = Enricher::new(config_for(sel)).expect("valid config");
    f.restore(&snap)
        .unwrap_or_else(|err| panic!("own snapshot refused: {err}"));
    assert!(
        f.snapshot() == snap,
        "snapshot -> restore -> snapshot changed the bytes"
    );
}

/// Arbitrary bytes as a snapshot into an enricher that already holds state
/// (`seed_records`): refused with the state untouched, or accepted and then
/// stable under another round trip.
pub fn snapshot(data: &[u8], seed_records: &[u8]) {
    let mut e = Enricher::new(small_config()).expect("valid config");
    for line in seed_records.split(|&c| c == b'\n') {
        e.process(line, None);
    }
    let before = e.snapshot();
    match e.restore(data) {
        Err(err) => {
            assert!(!err.to_string().is_empty(), "empty error message");
            assert!(
                e.snapshot() == before,
                "a refused snapshot changed the state ({err})"
            );
        }
        Ok(()) => {
            let once = e.snapshot();
            let mut f = Enricher::new(small_config()).expect("valid config");
            f.restore(&once)
                .unwrap_or_else(|err| panic!("re-snapshot of an accepted one refused: {err}"));
            assert!(f.snapshot() == once, "accepted snapshot not stable");
        }
    }
    // Whatever happened, the enricher still works.
    one_record(
        &mut e,
        seed_records.split(|&c| c == b'\n').next().unwrap_or(b"{}"),
        None,
    );
}

/// A document read as the CLI reads a one-line S3 delivery file: in place
/// (`input::InPlace` + `Enricher::process_prefix_into`) while the walk and
/// the enricher agree, then the rest of `input::split`'s pieces. Must give
/// exactly what `split` + `process_into` on every piece gives (bytes, each
/// outcome, the counters), leave nothing written or counted when the
/// enricher refuses an element, and `split`'s first pieces must be the
/// walked elements byte for byte. Returns how many records were read in
/// place (`None`: not a one-line S3 delivery file, not walked).
pub fn document(doc: &[u8]) -> Option<usize> {
    let (got, walked) = document_in_place(doc);
    let want = document_by_split(doc);
    assert!(
        got == want,
        "in place and split differ on {:?}:\n{got:?}\n{want:?}",
        String::from_utf8_lossy(doc)
    );
    walked
}

/// Output bytes, each outcome, the counters.
type Read = (Vec<u8>, Vec<String>, credlineage::Stats);

fn document_by_split(doc: &[u8]) -> Read {
    let mut e = Enricher::new(small_config()).expect("valid config");
    let mut out = Vec::new();
    let mut outcomes = Vec::new();
    for p in credlineage::input::split(doc).pieces {
        outcomes.push(format!("{:?}", e.process_into(&p.bytes, None, &mut out)));
        out.push(b'\n');
    }
    (out, outcomes, e.stats())
}

fn document_in_place(doc: &[u8]) -> (Read, Option<usize>) {
    let Some((text, mut walk)) = std::str::from_utf8(doc)
        .ok()
        .and_then(|t| Some((t, credlineage::input::InPlace::new(t)?)))
    else {
        return (document_by_split(doc), None);
    };
    let mut e = Enricher::new(small_config()).expect("valid config");
    let mut out = Vec::new();
    let mut outcomes = Vec::new();
    let mut walked: Vec<&[u8]> = Vec::new();
    while let Some(rest) = walk.next(text) {
        let (before, mark) = (e.stats(), out.len());
        let Some((o, len)) = e.process_prefix_into(rest, None, &mut out) else {
            assert_eq!(out.len(), mark, "a refused element wrote something");
            assert!(e.stats() == before, "a refused element was counted");
            break;
        };
        walked.push(rest.as_bytes().get(..len).expect("length within the text"));
        walk.advance(len);
        outcomes.push(format!("{o:?}"));
        out.push(b'\n');
    }
    let n = walked.len();
    let pieces = credlineage::input::split(doc).pieces;
    assert!(
        pieces.len() >= n,
        "split gave fewer records than the walk read"
    );
    for (i, (p, w)) in pieces.iter().zip(&walked).enumerate() {
        assert!(&*p.bytes == *w, "record {i}: split and the walk differ");
    }
    if walk.finished() {
        assert_eq!(pieces.len(), n, "a finished walk read every record");
    } else {
        for p in pieces.get(n..).unwrap_or_default() {
            outcomes.push(format!("{:?}", e.process_into(&p.bytes, None, &mut out)));
            out.push(b'\n');
        }
    }
    ((out, outcomes, e.stats()), Some(n))
}
