//! Splitting input documents into records: NDJSON lines, JSON arrays, S3 delivery files (`{"Records": [...]}`), CloudWatch Logs subscription envelopes and Firehose's concatenations of them; pure, no I/O, linear in the size of the document.
//!
//! Shapes, decided from the start of the document:
//!
//! - **NDJSON** (the first line is one complete JSON value, or it is broken
//!   but the next line is complete): one record per non-blank line, invalid
//!   lines included (they pass through unchanged). A line that is itself an
//!   S3 delivery file or a CloudWatch Logs `DATA_MESSAGE` is unrolled.
//! - **A document**: one JSON array, one S3 delivery file, one CloudWatch Logs
//!   envelope, one (pretty-printed) record, or several such values back to
//!   back (Firehose writes `}{` with no separator). Arrays give one record per
//!   element, S3 files one per element of `Records`, `DATA_MESSAGE` envelopes
//!   one per log event, anything else one record. A damaged document (cut
//!   short, a bad byte) gives every record complete before the damage and a
//!   [`Damage`]; no fragment of it is ever a record. Damage inside one
//!   element of an array (of `Records`, or of a top-level array) that leaves
//!   the element's brackets balanced (a bad byte, a NUL, a stray character)
//!   costs that element only: it is kept as a record of its own bytes (to
//!   be passed through, not annotated), its damage is listed in
//!   [`Split::damaged_records`], and the elements after it are read.
//!
//! A UTF-8 byte order mark at the start of a document (or of an NDJSON
//! document's first line) is not part of it: it is dropped.
//!
//! CloudWatch Logs log events: a `message` whose text is a JSON object is the
//! record; any other message (plain text, a JSON scalar, invalid JSON) gives
//! the log event object itself (`{"id":…,"timestamp":…,"message":"…"}`), so
//! nothing is lost and every output line of a valid envelope is valid JSON.
//!
//! Every offset is visited a bounded number of times: the JSON scanner is one
//! pass, and line numbers are counted incrementally from the previous record.

use crate::json::{self, Scanner, is_ws, skip_ws};
use std::borrow::Cow;

mod document;
mod in_place;
mod salvage;
#[cfg(test)]
mod tests;

pub use self::in_place::InPlace;
use self::{document::*, salvage::*};

/// One record cut out of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece<'a> {
    /// The record's bytes, on one line (multi-line records are compacted:
    /// whitespace outside strings dropped, nothing else changed).
    pub bytes: Cow<'a, [u8]>,
    /// One-based line of the document where the record starts.
    pub line: u64,
}

/// Where a document that is one JSON value (or a sequence of them) stops
/// being readable: the records before it were returned, nothing after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// One-based line of the first unreadable byte (or of the end, when the
    /// document is cut short).
    pub line: u64,
    /// One-based column of that byte, in bytes.
    pub column: u64,
    /// Byte offset of that byte in the document.
    pub offset: usize,
    /// What the JSON scanner expected or found.
    pub reason: String,
    /// When the damage is inside one element of an array and reading went
    /// on after it: the index of that element's record in
    /// [`Split::pieces`] (its bytes, passed through).
    pub record: Option<usize>,
}

impl Damage {
    /// The error naming the input (`source_name`), line and column.
    pub fn to_error(&self, source_name: &str) -> crate::Error {
        match self.record {
            Some(i) => crate::Error::DamagedRecord {
                source_name: source_name.to_string(),
                line: self.line,
                column: self.column,
                index: i as u64 + 1,
                reason: self.reason.clone(),
            },
            None => crate::Error::Damaged {
                source_name: source_name.to_string(),
                line: self.line,
                column: self.column,
                reason: self.reason.clone(),
            },
        }
    }
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.reason
        )
    }
}

/// The records of one document and, when it is a damaged JSON document, where.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Split<'a> {
    /// The records, in document order.
    pub pieces: Vec<Piece<'a>>,
    /// Set when the document is one JSON value (or a sequence of them) that
    /// could not be read to its end.
    pub damage: Option<Damage>,
    /// Damage confined to one array element each (see the module
    /// documentation), in document order; each names its record in
    /// `pieces`, which holds the element's bytes as they are.
    pub damaged_records: Vec<Damage>,
}

/// The UTF-8 byte order mark, dropped from the start of an input.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// `b` without a leading UTF-8 byte order mark.
pub fn strip_bom(b: &[u8]) -> &[u8] {
    b.strip_prefix(BOM).unwrap_or(b)
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b.iter().position(|&c| !is_ws(c)).unwrap_or(b.len());
    let e = b.iter().rposition(|&c| !is_ws(c)).map_or(s, |p| p + 1);
    b.get(s..e.max(s)).unwrap_or_default()
}

/// The first line of `b` (without `\r`), and the offset after its newline.
fn first_line(b: &[u8]) -> (&[u8], usize) {
    match memchr::memchr(b'\n', b) {
        Some(i) => (trim(b.get(..i).unwrap_or_default()), i + 1),
        None => (trim(b), b.len()),
    }
}

fn is_json(b: &[u8]) -> bool {
    simdutf8::basic::from_utf8(b).is_ok_and(|t| json::validate(t).is_ok())
}

/// Whether the object at the start of `body` starts with the key of an S3
/// delivery file (`Records`) or of a CloudWatch Logs envelope (in
/// CloudWatch's order, `messageType`; in sorted order, `logEvents`; …).
fn document_key_first(body: &[u8]) -> bool {
    let text = utf8_prefix(body.get(..body.len().min(HEAD_BYTES)).unwrap_or_default());
    let mut sc = Scanner::new(text);
    if sc.peek() != Some(b'{') {
        return false;
    }
    let mut found = false;
    let _ = sc.object(|sc, k| {
        found = ENVELOPE_KEYS.iter().any(|n| sc.key_is(k, n));
        // Stop after the first key.
        Err(json::ScanError {
            at: sc.pos(),
            what: "stop",
        })
    });
    found
}

/// Whether the line is one complete JSON value followed, on the same line,
/// by another object or array (values written back to back).
fn concatenated(line: &[u8]) -> bool {
    let text = utf8_prefix(line);
    let mut sc = Scanner::new(text);
    sc.skip_value().is_ok() && matches!(sc.peek(), Some(b'{' | b'['))
}

/// Whether `body` (trimmed, not empty) is read as one JSON document (or a
/// sequence of values) rather than as NDJSON.
fn is_document(body: &[u8]) -> bool {
    let (l1, next) = first_line(body);
    let more = !trim(body.get(next..).unwrap_or_default()).is_empty();
    match body.first() {
        Some(b'[') => !(more && is_json(l1)),
        Some(b'{') => {
            if is_json(l1) {
                return false;
            }
            if document_key_first(body) || concatenated(l1) {
                return true;
            }
            if !more {
                // One invalid line: NDJSON passes it through.
                return false;
            }
            // A broken first line followed by a complete one is NDJSON;
            // a pretty-printed value's second line is never complete JSON.
            let rest = body.get(next..).unwrap_or_default();
            let l2 = rest
                .split(|&c| c == b'\n')
                .map(trim)
                .find(|l| !l.is_empty())
                .unwrap_or_default();
            !is_json(l2)
        }
        _ => false,
    }
}

/// The first keys that start a document rather than a record.
const ENVELOPE_KEYS: [&str; 7] = [
    "Records",
    "messageType",
    "logEvents",
    "logGroup",
    "logStream",
    "owner",
    "subscriptionFilters",
];

/// Whether an NDJSON line may be an S3 delivery file or a CloudWatch Logs
/// envelope: one of their keys near its start.
fn unroll_candidate(l: &[u8]) -> bool {
    // Every NDJSON line comes through here: look at the first key only (a
    // few bytes), not at a window of the line. An S3 delivery file's only
    // key is `Records`; every key of a CloudWatch Logs subscription message
    // is one of its envelope keys, whatever the order its writer chose.
    const FIRST_KEYS: [&[u8]; 8] = [
        b"Records",
        b"messageType",
        b"logEvents",
        b"logGroup",
        b"logStream",
        b"subscriptionFilters",
        b"owner",
        b"policyLevel",
    ];
    let Some(rest) = l.strip_prefix(b"{") else {
        return false;
    };
    // A CloudTrail record's first key is almost always `eventVersion`: reject
    // on its first letter.
    if rest.starts_with(b"\"e") {
        return false;
    }
    let at = rest.iter().position(|&c| !is_ws(c)).unwrap_or(rest.len());
    let Some(key) = rest.get(at..).and_then(|r| r.strip_prefix(b"\"")) else {
        return false;
    };
    let Some(end) = key.iter().take(24).position(|&c| c == b'"' || c == b'\\') else {
        return false;
    };
    let key = key.get(..end).unwrap_or_default();
    FIRST_KEYS.contains(&key)
}

/// One NDJSON line (without its line ending) that is an S3 delivery file or a
/// CloudWatch Logs `DATA_MESSAGE` (or several back to back): its records,
/// all on line 1. `None` when the line is one record, to be taken as it is
/// (an invalid or damaged line included: NDJSON passes it through).
pub fn unroll_line(line: &[u8]) -> Option<Vec<Piece<'_>>> {
    // Every NDJSON line comes through here: decide on its first bytes.
    let start = line.iter().position(|&c| !is_ws(c)).unwrap_or(line.len());
    if !unroll_candidate(line.get(start..).unwrap_or_default()) {
        return None;
    }
    let l = trim(line);
    let mut out = Vec::new();
    match read_document(l, &mut out) {
        (true, None, damaged) if damaged.is_empty() => Some(out),
        _ => None,
    }
}

/// Cut a document into records (see the module documentation for the
/// shapes). Invalid NDJSON lines are kept as records so they can be passed
/// through; a damaged JSON document gives its complete records and a
/// [`Damage`], never a fragment.
pub fn split(doc: &[u8]) -> Split<'_> {
    let bom = doc.len() - strip_bom(doc).len();
    let doc = strip_bom(doc);
    let body = trim(doc);
    if body.is_empty() {
        return Split::default();
    }
    if is_document(body) {
        let mut pieces = Vec::new();
        let (_, mut damage, mut damaged_records) = read_document(doc, &mut pieces);
        // Offsets count from the input's first byte, the mark included
        // (columns do not: an editor does not show it).
        for d in damage.iter_mut().chain(damaged_records.iter_mut()) {
            d.offset += bom;
        }
        return Split {
            pieces,
            damage,
            damaged_records,
        };
    }
    let mut out = Vec::new();
    let mut from = 0;
    let ends = memchr::memchr_iter(b'\n', doc).chain(std::iter::once(doc.len()));
    for (i, end) in ends.enumerate() {
        let line = doc.get(from..end).unwrap_or_default();
        from = end + 1;
        ndjson_line(line, i as u64 + 1, &mut out);
    }
    Split {
        pieces: out,
        damage: None,
        damaged_records: Vec::new(),
    }
}

/// One line of an NDJSON document (without its `\n`), the `n`th, cut as
/// [`split`] cuts it into `out`: nothing when blank, the records of an S3
/// delivery file or CloudWatch Logs envelope written on one line, else the
/// line itself without a trailing `\r`. With [`starts_ndjson`], lets a
/// reader cut an NDJSON document line by line, without holding it whole.
pub fn ndjson_line<'a>(line: &'a [u8], n: u64, out: &mut Vec<Piece<'a>>) {
    let line = if n == 1 { strip_bom(line) } else { line };
    if trim(line).is_empty() {
        return;
    }
    if let Some(p) = unroll_line(line) {
        out.extend(p.into_iter().map(|p| Piece { line: n, ..p }));
        return;
    }
    let l = line.strip_suffix(b"\r").unwrap_or(line);
    out.push(Piece {
        bytes: Cow::Borrowed(l),
        line: n,
    });
}

/// How far past its first non-blank byte [`starts_ndjson`] needs to see a
/// document (the window in which the first key is looked for).
pub const HEAD_BYTES: usize = 4096;

/// Whether [`split`] reads a document as NDJSON (line by line, each line
/// through [`ndjson_line`]) rather than as one JSON document, decided from
/// its start: `head` must run from the document's first byte through the
/// end of its second non-blank line (its `\n` included) and at least
/// [`HEAD_BYTES`] past its first non-blank byte, or be the whole document.
/// The decision looks no further (see `is_document`: the first line,
/// whether more follows, the first key within 4096 bytes, the second
/// non-blank line).
pub fn starts_ndjson(head: &[u8]) -> bool {
    let body = trim(strip_bom(head));
    !body.is_empty() && !is_document(body)
}
