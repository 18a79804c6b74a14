//! Shared helpers of the robustness tests (`tests/hostile.rs`, `tests/splice_prop.rs`):
//! an independent RFC 8259 grammar checker, byte-level checks of the splice
//! contract (SPEC 3), the annotation key order (SPEC Appendix A), and the
//! real records of `tests/data/stratus-red-team/`.
//!
//! Nothing here uses credlineage internals: everything is checked against the
//! bytes that come out of `Enricher::process`.
#![allow(dead_code)]

use credlineage::Outcome;
use serde_json::Value;
use serde_json::value::RawValue;
use std::ops::Range;
use std::path::PathBuf;

/// The default annotation key.
pub const NS: &str = "credlineage";

/// SPEC Appendix A: annotation keys, in this order.
pub const ANNOTATION_ORDER: [&str; 19] = [
    "v",
    "credential_type",
    "access_key_id",
    "key_account",
    "session_fingerprint",
    "lineage_root",
    "lineage_root_type",
    "lineage_depth",
    "lineage_complete",
    "parent_fingerprint",
    "is_key_collision",
    "collision_count",
    "ec2_cred_offhost",
    "ec2_instance_id",
    "offhost_reason",
    "offhost_other_identity",
    "offhost_ancestor",
    "issued",
    "created_by",
];
/// Extra fields SPEC 3.1 allows ("more fields are welcome"); they must come
/// after every Appendix A key.
pub const ANNOTATION_EXTRAS: [&str; 2] = ["used_after_expiration", "self_assume"];
/// The four fields that are always present.
pub const ANNOTATION_CORE: [&str; 4] = [
    "session_fingerprint",
    "lineage_root",
    "is_key_collision",
    "ec2_cred_offhost",
];
/// SPEC Appendix A: keys inside `issued`, in this order.
pub const ISSUED_ORDER: [&str; 6] = [
    "access_key_id",
    "session_fingerprint",
    "lineage_root",
    "lineage_depth",
    "expiration",
    "chained",
];

// ---------------------------------------------------------------------------
// An independent JSON grammar checker (RFC 8259), iterative (any depth).
// ---------------------------------------------------------------------------

/// One top-level member of a JSON object document.
#[derive(Debug, Clone)]
pub struct Member {
    /// Byte range of the key, quotes included.
    pub key: Range<usize>,
    /// Byte range of the value.
    pub value: Range<usize>,
}

/// What the checker found.
#[derive(Debug, Clone)]
pub struct Doc {
    /// The top-level value is an object.
    pub is_object: bool,
    /// Its members, in order (empty unless `is_object`).
    pub members: Vec<Member>,
    /// Byte offset of the top-level closing `}` (when `is_object`).
    pub close: usize,
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    i += 1;
    loop {
        let c = *b.get(i)?;
        match c {
            b'"' => return Some(i + 1),
            b'\\' => match *b.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                b'u' => {
                    let hex = b.get(i + 2..i + 6)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    i += 6;
                }
                _ => return None,
            },
            0..=0x1f => return None,
            _ => i += 1,
        }
    }
}

fn number_end(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |b: &[u8], mut i: usize| {
        let s = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i > s).then_some(i)
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(b, i)?,
        _ => return None,
    }
    if b.get(i) == Some(&b'.') {
        i = digits(b, i + 1)?;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        i = digits(b, i)?;
    }
    Some(i)
}

/// Check `b` against the RFC 8259 grammar. With `require_utf8`, the text must
/// also be UTF-8 (RFC 8259 8.1). Lone surrogate escapes (`\ud800`) are
/// grammatical and accepted. Returns `None` when `b` is not one JSON text.
pub fn rfc_json(b: &[u8], require_utf8: bool) -> Option<Doc> {
    if require_utf8 && std::str::from_utf8(b).is_err() {
        return None;
    }
    let mut i = ws(b, 0);
    let is_object = b.get(i) == Some(&b'{');
    let mut members = Vec::new();
    let mut close = 0;
    // Stack of open containers: b'{' or b'['.
    let mut stack: Vec<u8> = Vec::new();
    // Start of the value of the top-level member being read.
    let mut pending: Option<(Range<usize>, usize)> = None;
    // Read one key and its colon at `i`; leaves `i` on the value.
    let read_key =
        |i: &mut usize, depth: usize, pending: &mut Option<(Range<usize>, usize)>| -> Option<()> {
            let ks = *i;
            let ke = string_end(b, ks)?;
            *i = ws(b, ke);
            if b.get(*i) != Some(&b':') {
                return None;
            }
            *i = ws(b, *i + 1);
            if depth == 1 {
                *pending = Some((ks..ke, *i));
            }
            Some(())
        };
    'value: loop {
        // A value starts at i.
        match *b.get(i)? {
            b'{' => {
                stack.push(b'{');
                i = ws(b, i + 1);
                if b.get(i) == Some(&b'}') {
                    if stack.len() == 1 {
                        close = i;
                    }
                    stack.pop();
                    i += 1;
                } else {
                    read_key(&mut i, stack.len(), &mut pending)?;
                    continue 'value;
                }
            }
            b'[' => {
                stack.push(b'[');
                i = ws(b, i + 1);
                if b.get(i) == Some(&b']') {
                    stack.pop();
                    i += 1;
                } else {
                    continue 'value;
                }
            }
            b'"' => i = string_end(b, i)?,
            b'-' | b'0'..=b'9' => i = number_end(b, i)?,
            b't' if b[i..].starts_with(b"true") => i += 4,
            b'f' if b[i..].starts_with(b"false") => i += 5,
            b'n' if b[i..].starts_with(b"null") => i += 4,
            _ => return None,
        }
        // A value ended at i: record top-level members, then close containers.
        loop {
            if stack.len() == 1 && is_object {
                if let Some((key, vs)) = pending.take() {
                    members.push(Member { key, value: vs..i });
                }
            }
            i = ws(b, i);
            match stack.last() {
                None => {
                    return (i == b.len()).then_some(Doc {
                        is_object,
                        members: if is_object { members } else { Vec::new() },
                        close,
                    });
                }
                Some(b'{') => match b.get(i)? {
                    b',' => {
                        i = ws(b, i + 1);
                        read_key(&mut i, stack.len(), &mut pending)?;
                        continue 'value;
                    }
                    b'}' => {
                        if stack.len() == 1 {
                            close = i;
                        }
                        stack.pop();
                        i += 1;
                    }
                    _ => return None,
                },
                Some(_) => match b.get(i)? {
                    b',' => {
                        i = ws(b, i + 1);
                        continue 'value;
                    }
                    b']' => {
                        stack.pop();
                        i += 1;
                    }
                    _ => return None,
                },
            }
        }
    }
}

/// Decode a raw JSON string (quotes included); `None` when serde_json cannot
/// (a lone surrogate, invalid UTF-8).
pub fn decode_key(raw: &[u8]) -> Option<String> {
    serde_json::from_slice::<String>(raw).ok()
}

/// The top-level members of an object document as (decoded key, raw value).
pub fn members_of(b: &[u8]) -> Vec<(Option<String>, &[u8])> {
    let doc = rfc_json(b, false).expect("members_of: not JSON");
    assert!(doc.is_object, "members_of: not an object");
    doc.members
        .iter()
        .map(|m| (decode_key(&b[m.key.clone()]), &b[m.value.clone()]))
        .collect()
}

// ---------------------------------------------------------------------------
// The output contract.
// ---------------------------------------------------------------------------

/// Short description of an input for failure messages.
pub fn show(b: &[u8]) -> String {
    const MAX: usize = 400;
    let s = String::from_utf8_lossy(b);
    if s.len() > MAX {
        let mut cut = MAX;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{:?}… ({} bytes)", &s[..cut], b.len())
    } else {
        format!("{s:?}")
    }
}

/// Check SPEC Appendix A key order on the raw annotation text and that the
/// annotation is a well-formed object. Returns the annotation as a Value.
pub fn check_annotation_text(ann: &[u8]) -> Value {
    let v: Value = serde_json::from_slice(ann)
        .unwrap_or_else(|e| panic!("annotation is not valid JSON ({e}): {}", show(ann)));
    assert!(v.is_object(), "annotation not an object: {}", show(ann));
    let keys: Vec<String> = members_of(ann)
        .into_iter()
        .map(|(k, _)| k.expect("annotation key not decodable"))
        .collect();
    let mut last_rank = None;
    let mut seen_extra = false;
    for k in &keys {
        if let Some(r) = ANNOTATION_ORDER.iter().position(|a| a == k) {
            assert!(
                !seen_extra,
                "Appendix A key {k:?} after an extra key in {keys:?}"
            );
            assert!(
                last_rank.is_none_or(|l| r > l),
                "annotation keys out of Appendix A order (or duplicated): {keys:?}"
            );
            last_rank = Some(r);
        } else {
            assert!(
                ANNOTATION_EXTRAS.contains(&k.as_str()),
                "unknown annotation key {k:?} in {keys:?}"
            );
            seen_extra = true;
        }
    }
    for core in ANNOTATION_CORE {
        assert!(
            keys.iter().any(|k| k == core),
            "core field {core} missing: {keys:?}"
        );
    }
    assert_eq!(keys.first().map(String::as_str), Some("v"), "{keys:?}");
    assert_eq!(v["v"], 1);
    if let Some((_, raw)) = members_of(ann)
        .into_iter()
        .find(|(k, _)| k.as_deref() == Some("issued"))
    {
        let ik: Vec<String> = members_of(raw)
            .into_iter()
            .map(|(k, _)| k.unwrap())
            .collect();
        assert_eq!(ik, ISSUED_ORDER, "issued keys out of Appendix A order");
    }
    if let Some((_, raw)) = members_of(ann)
        .into_iter()
        .find(|(k, _)| k.as_deref() == Some("created_by"))
    {
        let ck: Vec<String> = members_of(raw)
            .into_iter()
            .map(|(k, _)| k.unwrap())
            .collect();
        assert_eq!(ck, ["session_fingerprint", "lineage_root"]);
    }
    v
}

/// `out` is `input` with one `credlineage` member spliced in (SPEC 3):
/// every other top-level member byte for byte and in order, any stale
/// `credlineage` member removed, the annotation last; when the input had no
/// `credlineage` member, the output starts with the input up to (excluding)
/// its final `}` and ends with the input from there. Returns the annotation.
pub fn check_splice(input: &[u8], out: &[u8]) -> Value {
    let din = rfc_json(input, false)
        .unwrap_or_else(|| panic!("check_splice: input not JSON: {}", show(input)));
    assert!(din.is_object);
    let dout = rfc_json(out, false).unwrap_or_else(|| {
        panic!(
            "annotated output is not valid JSON\n input: {}\noutput: {}",
            show(input),
            show(out)
        )
    });
    assert!(dout.is_object, "output not an object: {}", show(out));
    let is_own = |b: &[u8], m: &Member| decode_key(&b[m.key.clone()]).as_deref() == Some(NS);
    let kept: Vec<&[u8]> = din
        .members
        .iter()
        .filter(|m| !is_own(input, m))
        .map(|m| &input[m.key.start..m.value.end])
        .collect();
    let (last, rest) = dout
        .members
        .split_last()
        .unwrap_or_else(|| panic!("output has no members: {}", show(out)));
    assert!(
        is_own(out, last),
        "last member of the output is not {NS}: {}",
        show(out)
    );
    let out_rest: Vec<&[u8]> = rest
        .iter()
        .map(|m| &out[m.key.start..m.value.end])
        .collect();
    assert!(
        out_rest == kept,
        "members not preserved byte for byte\n input: {}\noutput: {}",
        show(input),
        show(out)
    );
    assert!(
        !rest.iter().any(|m| is_own(out, m)),
        "{NS} duplicated in output: {}",
        show(out)
    );
    if kept.len() == din.members.len() {
        let close = din.close;
        assert!(
            out.starts_with(&input[..close]),
            "output does not start with the input up to its final '}}'\n input: {}\noutput: {}",
            show(input),
            show(out)
        );
        assert!(
            out.ends_with(&input[close..]),
            "output does not end with the input's closing '}}' and what follows it"
        );
    }
    check_annotation_text(&out[last.value.clone()])
}

/// The invariants of SPEC 5 "Nothing lost" for one record.
///
/// * not JSON (grammar or UTF-8) or not an object → output == input, `Malformed`;
/// * a JSON object → `Annotated` with a correct splice, or passed through
///   unchanged (`PassedThrough`, or `Malformed` only when `lenient` and
///   serde_json itself cannot represent the input).
///
/// `lenient_utf8` tolerates the known bug where invalid UTF-8 inside a
/// string credlineage does not read goes undetected, so the object is
/// annotated or passed through as not CloudTrail (see `tests/hostile.rs`,
/// `bug_invalid_utf8_in_unread_string_is_annotated`). Returns the annotation
/// when there is one.
pub fn check_record(
    input: &[u8],
    out: &[u8],
    outcome: &Outcome,
    lenient: bool,
    lenient_utf8: bool,
) -> Option<Value> {
    assert!(!out.is_empty() || input.is_empty(), "empty output");
    match rfc_json(input, true) {
        None => {
            if lenient_utf8 {
                if let Some(d) = rfc_json(input, false) {
                    match outcome {
                        Outcome::Annotated if d.is_object => return Some(check_splice(input, out)),
                        Outcome::PassedThrough(_) if d.is_object => {
                            assert!(out == input, "passed-through object changed");
                            return None;
                        }
                        _ => {}
                    }
                }
            }
            assert!(
                out == input,
                "invalid JSON not passed through unchanged ({outcome:?})\n input: {}\noutput: {}",
                show(input),
                show(out)
            );
            assert!(
                matches!(outcome, Outcome::Malformed(_)),
                "invalid JSON not counted malformed: {outcome:?}: {}",
                show(input)
            );
            None
        }
        Some(d) if !d.is_object => {
            assert!(out == input, "non-object changed: {}", show(input));
            assert!(
                matches!(outcome, Outcome::Malformed(_)),
                "{outcome:?}: {}",
                show(input)
            );
            None
        }
        Some(_) => match outcome {
            Outcome::Annotated => Some(check_splice(input, out)),
            Outcome::PassedThrough(_) => {
                assert!(out == input, "passed-through object changed");
                None
            }
            Outcome::Malformed(e) => {
                assert!(out == input, "malformed object changed");
                assert!(
                    lenient && serde_json::from_slice::<Value>(input).is_err(),
                    "a valid JSON object was counted malformed ({e}): {}",
                    show(input)
                );
                None
            }
        },
    }
}

// ---------------------------------------------------------------------------
// Real records.
// ---------------------------------------------------------------------------

/// `tests/data/stratus-red-team/`.
pub fn stratus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/stratus-red-team")
}

/// One file of real records: (file name, each record's exact bytes as
/// pretty-printed in the file).
pub fn stratus_file(name: &str) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(stratus_dir().join(name)).expect("read stratus file");
    let recs: Vec<Box<RawValue>> = serde_json::from_slice(&bytes).expect("stratus file");
    recs.into_iter()
        .map(|r| r.get().as_bytes().to_vec())
        .collect()
}

/// Every stratus file, sorted by name.
pub fn stratus_all() -> Vec<(String, Vec<Vec<u8>>)> {
    let mut names: Vec<String> = std::fs::read_dir(stratus_dir())
        .expect("stratus dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert!(names.len() >= 30, "stratus data missing");
    names
        .into_iter()
        .map(|n| {
            let r = stratus_file(&n);
            (n, r)
        })
        .collect()
}

/// Compact (one-line) form of a record.
pub fn compact(rec: &[u8]) -> Vec<u8> {
    let v: Value = serde_json::from_slice(rec).unwrap();
    serde_json::to_vec(&v).unwrap()
}

/// A small deterministic PRNG (xorshift64*), so failures reproduce.
#[derive(Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next() % den < num
    }
}
