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

use crate::json::{self, Scanner};
use std::borrow::Cow;

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

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b.iter().position(|&c| !is_ws(c)).unwrap_or(b.len());
    let e = b.iter().rposition(|&c| !is_ws(c)).map_or(s, |p| p + 1);
    b.get(s..e.max(s)).unwrap_or_default()
}

#[cfg(test)]
thread_local! {
    /// Bytes examined to number lines: the work that used to be quadratic.
    static LINE_WORK: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Line numbers of increasing offsets, counted from the previous one.
struct LineCounter<'d> {
    doc: &'d [u8],
    off: usize,
    line: u64,
    /// Where the line of `off` starts, when known (it is, unless the last
    /// move was backwards).
    start: Option<usize>,
}

impl<'d> LineCounter<'d> {
    fn new(doc: &'d [u8]) -> Self {
        LineCounter {
            doc,
            off: 0,
            line: 1,
            start: Some(0),
        }
    }

    /// One-based line of byte `off` (cost: the distance from the previous call).
    fn at(&mut self, off: usize) -> u64 {
        let off = off.min(self.doc.len());
        let (from, to) = (self.off.min(off), self.off.max(off));
        let span = self.doc.get(from..to).unwrap_or_default();
        #[cfg(test)]
        LINE_WORK.with(|w| w.set(w.get() + span.len() as u64));
        let n = memchr::memchr_iter(b'\n', span).count() as u64;
        if off >= self.off {
            self.line += n;
            if let Some(p) = memchr::memrchr(b'\n', span) {
                self.start = Some(from + p + 1);
            }
        } else {
            self.line = self.line.saturating_sub(n);
            // Back within the same line: its start is unchanged.
            if n > 0 {
                self.start = None;
            }
        }
        self.off = off;
        self.line
    }

    /// One-based column (in bytes) of byte `off` (moving there as
    /// [`at`](Self::at) does): from the start of its line, tracked as lines
    /// are counted, so naming many damaged records of a one-line document
    /// does not scan back to its start each time.
    fn column(&mut self, off: usize) -> u64 {
        let off = off.min(self.doc.len());
        self.at(off);
        let start = match self.start {
            Some(s) => s,
            None => {
                let before = self.doc.get(..off).unwrap_or_default();
                let s = memchr::memrchr(b'\n', before).map_or(0, |p| p + 1);
                #[cfg(test)]
                LINE_WORK.with(|w| w.set(w.get() + (off - s) as u64));
                self.start = Some(s);
                s
            }
        };
        (off - start) as u64 + 1
    }
}

/// The longest prefix of `doc` that is UTF-8, as text.
fn utf8_prefix(doc: &[u8]) -> &str {
    match simdutf8::compat::from_utf8(doc) {
        Ok(t) => t,
        Err(e) => std::str::from_utf8(doc.get(..e.valid_up_to()).unwrap_or_default()).unwrap_or(""),
    }
}

/// `doc` as text for the scanner: itself when it is UTF-8, else a copy of
/// the same length whose invalid bytes are `0x01` (which JSON allows
/// nowhere, so the scanner stops at the same offsets).
fn scannable(doc: &[u8]) -> Cow<'_, str> {
    if let Ok(t) = simdutf8::basic::from_utf8(doc) {
        return Cow::Borrowed(t);
    }
    let mut out = Vec::with_capacity(doc.len());
    let mut rest = doc;
    loop {
        match simdutf8::compat::from_utf8(rest) {
            Ok(_) => {
                out.extend_from_slice(rest);
                break;
            }
            Err(e) => {
                let good = e.valid_up_to();
                let bad = e.error_len().unwrap_or(rest.len() - good);
                out.extend_from_slice(rest.get(..good).unwrap_or_default());
                out.resize(out.len() + bad, 0x01);
                rest = rest.get(good + bad..).unwrap_or_default();
            }
        }
    }
    Cow::Owned(String::from_utf8(out).unwrap_or_default())
}

/// The end (exclusive) of the damaged array element that starts at `from`,
/// found by counting brackets outside strings, if what follows it is `]` or
/// `,` and the start of a value. `None` when the element does not start with
/// a bracket, a string holds a raw line break (a lost quote), or the
/// brackets never balance: the damage is then not confined to the element.
/// Visits each byte of the element once.
fn element_end(b: &[u8], from: usize) -> Option<usize> {
    if !matches!(b.get(from), Some(b'{' | b'[')) {
        return None;
    }
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    let mut i = from;
    let end = loop {
        let c = *b.get(i)?;
        if in_str {
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            } else if c == b'\n' {
                return None;
            }
        } else {
            match c {
                b'"' => in_str = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        break i + 1;
                    }
                }
                _ => {}
            }
        }
        i += 1;
    };
    let next = |at: usize| {
        b.get(at..)
            .and_then(|r| r.iter().position(|&c| !is_ws(c)).map(|p| at + p))
    };
    let after = next(end)?;
    match b.get(after) {
        Some(b']') => Some(end),
        Some(b',') => match next(after + 1).and_then(|v| b.get(v)) {
            Some(b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => Some(end),
            _ => None,
        },
        _ => None,
    }
}

/// Reads the values of a document into pieces.
struct Reader<'a, 'o> {
    doc: &'a [u8],
    /// The scanner's text: `doc`, or its copy made UTF-8 (same offsets).
    text: &'o str,
    lines: LineCounter<'a>,
    out: &'o mut Vec<Piece<'a>>,
    damaged: Vec<Damage>,
}

impl<'a, 'o> Reader<'a, 'o> {
    /// The damage at offset `at` (the scanner's error `what`).
    fn damage(&mut self, at: usize, what: &str, record: Option<usize>) -> Damage {
        let reason = if self.doc.get(at) != self.text.as_bytes().get(at) {
            invalid_utf8(self.doc, at)
        } else {
            what.to_string()
        };
        Damage {
            line: self.lines.at(at),
            column: self.lines.column(at),
            offset: at,
            reason,
            record,
        }
    }

    /// One element of an array, the cursor on it: a record, or, when it is
    /// damaged but its brackets balance, a record of its bytes with its
    /// damage noted, the cursor after it.
    fn element(&mut self, sc: &mut Scanner<'o>) -> json::Result<bool> {
        let from = sc.pos();
        match sc.skip_value() {
            Ok(()) => self.piece(from, sc.pos()),
            Err(e) => {
                let Some(end) = element_end(self.text.as_bytes(), from) else {
                    return Err(e);
                };
                if e.at >= end {
                    return Err(e);
                }
                let d = self.damage(e.at, e.what, Some(self.out.len()));
                self.damaged.push(d);
                self.piece(from, end);
                sc.seek(end);
            }
        }
        Ok(true)
    }

    fn piece(&mut self, from: usize, to: usize) {
        let bytes = self.doc.get(from..to).unwrap_or_default();
        let line = self.lines.at(from);
        self.out.push(Piece {
            bytes: crate::to_single_line(bytes),
            line,
        });
    }

    /// Read the value at the cursor into pieces. Returns whether it was
    /// unrolled (an array, an S3 delivery file, a `DATA_MESSAGE`) rather
    /// than kept as one record. On an error, the records complete before it
    /// are already in `out`.
    fn value(&mut self, sc: &mut Scanner<'o>) -> json::Result<bool> {
        let start = sc.pos();
        match sc.peek() {
            Some(b'[') => {
                sc.array(|sc| self.element(sc))?;
                Ok(true)
            }
            Some(b'{') => self.object(sc, start),
            _ => {
                sc.skip_value()?;
                self.piece(start, sc.pos());
                Ok(false)
            }
        }
    }

    fn object(&mut self, sc: &mut Scanner<'o>, start: usize) -> json::Result<bool> {
        let mut records = false;
        let mut data_message: Option<bool> = None;
        let mut log_events = false;
        let mut events: Vec<Piece<'a>> = Vec::new();
        let r = sc.object(|sc, k| {
            if !records && sc.key_is(k, "Records") && sc.peek() == Some(b'[') {
                records = true;
                sc.array(|sc| self.element(sc))?;
                return Ok(true);
            }
            if sc.key_is(k, "messageType") && sc.peek() == Some(b'"') {
                let s = sc.string()?;
                data_message = Some(sc.decode(s).is_some_and(|t| t == "DATA_MESSAGE"));
                return Ok(true);
            }
            if !log_events && sc.key_is(k, "logEvents") && sc.peek() == Some(b'[') {
                log_events = true;
                sc.array(|sc| {
                    let p = self.log_event(sc)?;
                    events.push(p);
                    Ok(true)
                })?;
                return Ok(true);
            }
            Ok(false)
        });
        let unrolled_events = !records && data_message == Some(true) && log_events;
        if let Err(e) = r {
            // Log events complete before the damage count when the envelope
            // already said it is a DATA_MESSAGE.
            if !records && data_message == Some(true) {
                self.out.append(&mut events);
            }
            return Err(e);
        }
        if records {
            return Ok(true);
        }
        if unrolled_events {
            self.out.append(&mut events);
            return Ok(true);
        }
        self.piece(start, sc.pos());
        Ok(false)
    }

    /// One element of `logEvents`: its message when that is a JSON object,
    /// else the log event itself.
    fn log_event(&mut self, sc: &mut Scanner<'o>) -> json::Result<Piece<'a>> {
        let from = sc.pos();
        let mut message: Option<Cow<'o, str>> = None;
        if sc.peek() == Some(b'{') {
            sc.object(|sc, k| {
                if sc.key_is(k, "message") && sc.peek() == Some(b'"') {
                    let s = sc.string()?;
                    message = sc.decode(s);
                    return Ok(true);
                }
                Ok(false)
            })?;
        } else {
            sc.skip_value()?;
        }
        let line = self.lines.at(from);
        if let Some(m) = message.filter(|m| is_json_object(m)) {
            let bytes = match m {
                // The same bytes of `doc` (a valid message holds no byte
                // the scanner's copy changed).
                Cow::Borrowed(b) => {
                    let at = (b.as_ptr() as usize).wrapping_sub(self.text.as_ptr() as usize);
                    let same = self.doc.get(at..at + b.len()).unwrap_or_default();
                    crate::to_single_line(trim(same))
                }
                Cow::Owned(s) => Cow::Owned(crate::to_single_line(trim(s.as_bytes())).into_owned()),
            };
            return Ok(Piece { bytes, line });
        }
        let raw = self.doc.get(from..sc.pos()).unwrap_or_default();
        Ok(Piece {
            bytes: crate::to_single_line(raw),
            line,
        })
    }
}

fn is_json_object(text: &str) -> bool {
    let t = text.trim_start_matches([' ', '\t', '\n', '\r']);
    t.starts_with('{') && json::validate(t).is_ok()
}

/// What [`read_document`] found: whether any value was unrolled, the
/// damage that stopped it, the damage confined to one element each.
type Read = (bool, Option<Damage>, Vec<Damage>);

/// Read `doc` as a sequence of JSON values (one value is the usual case)
/// into `out`.
fn read_document<'a>(doc: &'a [u8], out: &mut Vec<Piece<'a>>) -> Read {
    let text = scannable(doc);
    let mut r = Reader {
        doc,
        text: &text,
        lines: LineCounter::new(doc),
        out,
        damaged: Vec::new(),
    };
    let mut sc = Scanner::new(&text);
    let mut unrolled = false;
    let err = loop {
        if sc.peek().is_none() {
            break None;
        }
        match r.value(&mut sc) {
            Ok(u) => unrolled |= u,
            Err(e) => break Some(e),
        }
    };
    let Some(e) = err else {
        return (unrolled, None, r.damaged);
    };
    let mut d = r.damage(e.at, e.what, None);
    if e.at >= doc.len() {
        d.reason = format!("{} (the document is cut short)", d.reason);
    }
    (unrolled, Some(d), r.damaged)
}

fn invalid_utf8(doc: &[u8], at: usize) -> String {
    match doc.get(at) {
        Some(b) => format!("invalid UTF-8 (byte 0x{b:02x})"),
        None => "invalid UTF-8".to_string(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(doc: &str) -> Vec<(String, u64)> {
        let s = split(doc.as_bytes());
        assert_eq!(s.damage, None, "{doc}");
        s.pieces
            .into_iter()
            .map(|p| (String::from_utf8_lossy(&p.bytes).into_owned(), p.line))
            .collect()
    }

    #[test]
    fn shapes() {
        assert_eq!(
            texts("{\"a\":1}\n\n{\"b\":2}\r\n"),
            vec![("{\"a\":1}".into(), 1), ("{\"b\":2}".into(), 3)]
        );
        assert_eq!(
            texts("{\"Records\":[{\"a\":1},\n {\"b\": 2}]}"),
            vec![("{\"a\":1}".into(), 1), ("{\"b\": 2}".into(), 2)]
        );
        assert_eq!(
            texts("[\n {\n  \"a\": 1\n }\n]"),
            vec![("{\"a\":1}".into(), 2)]
        );
        assert_eq!(texts("{\n\"a\": 1\n}"), vec![("{\"a\":1}".into(), 1)]);
        assert_eq!(
            texts("not json\n{\"a\":1}"),
            vec![("not json".into(), 1), ("{\"a\":1}".into(), 2)]
        );
        assert_eq!(
            texts("{\"Records\":[{\"a\":1}]}\n{\"b\":1}"),
            vec![("{\"a\":1}".into(), 1), ("{\"b\":1}".into(), 2)]
        );
        assert!(texts("  \n ").is_empty());
        assert_eq!(
            texts("[1,\"x\"]"),
            vec![("1".into(), 1), ("\"x\"".into(), 1)]
        );
        assert_eq!(
            texts("{\"Records\":5}"),
            vec![("{\"Records\":5}".into(), 1)]
        );
        // NDJSON whose first line is broken: still line by line.
        assert_eq!(
            texts("{\"a\":1,\"b\"\n{\"c\":2}\n"),
            vec![("{\"a\":1,\"b\"".into(), 1), ("{\"c\":2}".into(), 2)]
        );
        // One invalid line passes through.
        assert_eq!(texts("{oops"), vec![("{oops".into(), 1)]);
        // NDJSON of arrays: arrays are records.
        assert_eq!(
            texts("[1,2]\n[3]"),
            vec![("[1,2]".into(), 1), ("[3]".into(), 2)]
        );
    }

    #[test]
    fn lake_style_pretty_records_and_concatenations() {
        // Pretty-printed documents back to back.
        assert_eq!(
            texts("{\n \"a\": 1\n}\n{\n \"b\": 2\n}\n"),
            vec![("{\"a\":1}".into(), 1), ("{\"b\":2}".into(), 4)]
        );
        // Plain objects written back to back on one line (EventBridge through Firehose).
        assert_eq!(
            texts("{\"a\":1}{\"b\":2}"),
            vec![("{\"a\":1}".into(), 1), ("{\"b\":2}".into(), 1)]
        );
    }

    fn cw(events: &[&str], kind: &str) -> String {
        let ev: Vec<String> = events
            .iter()
            .enumerate()
            .map(|(i, m)| {
                format!(
                    "{{\"id\":\"{i}\",\"timestamp\":1722513605000,\"message\":{}}}",
                    serde_json::to_string(m).unwrap()
                )
            })
            .collect();
        format!(
            "{{\"messageType\":\"{kind}\",\"owner\":\"111122223333\",\"logGroup\":\"aws-cloudtrail-logs\",\"logStream\":\"111122223333_CloudTrail_us-east-1\",\"subscriptionFilters\":[\"f\"],\"logEvents\":[{}]}}",
            ev.join(",")
        )
    }

    #[test]
    fn cloudwatch_envelopes() {
        let doc = cw(
            &["{\"eventName\":\"A\"}", "{\"eventName\":\"B\"}"],
            "DATA_MESSAGE",
        );
        assert_eq!(
            texts(&doc),
            vec![
                ("{\"eventName\":\"A\"}".into(), 1),
                ("{\"eventName\":\"B\"}".into(), 1)
            ]
        );
        // A message that is not a JSON object: the log event itself.
        let doc = cw(&["START RequestId: 1", "{broken"], "DATA_MESSAGE");
        let got = texts(&doc);
        assert_eq!(got.len(), 2);
        for (t, _) in &got {
            let v: serde_json::Value = serde_json::from_str(t).unwrap();
            assert!(v["message"].is_string() && v["id"].is_string(), "{t}");
        }
        // CONTROL_MESSAGE passes through whole.
        let ctl = cw(
            &["CWL CONTROL MESSAGE: Checking health of destination"],
            "CONTROL_MESSAGE",
        );
        assert_eq!(texts(&ctl), vec![(ctl.clone(), 1)]);
        // Firehose: back to back, no separator, and on NDJSON lines too.
        let a = cw(&["{\"eventName\":\"A\"}"], "DATA_MESSAGE");
        let b = cw(
            &["{\"eventName\":\"B\"}", "{\"eventName\":\"C\"}"],
            "DATA_MESSAGE",
        );
        let names = |d: &str| -> Vec<String> { texts(d).into_iter().map(|(t, _)| t).collect() };
        let want: Vec<String> = ["A", "B", "C"]
            .iter()
            .map(|n| format!("{{\"eventName\":\"{n}\"}}"))
            .collect();
        assert_eq!(names(&format!("{a}{b}")), want);
        assert_eq!(names(&format!("{a}\n{b}\n")), want);
        let mut with_ctl = want.clone();
        with_ctl.insert(1, ctl.clone());
        assert_eq!(names(&format!("{a}{ctl}{b}")), with_ctl);
        // A message holding escapes and a pretty-printed record.
        let doc = cw(&["{\n  \"eventName\": \"A\\\"q\"\n}"], "DATA_MESSAGE");
        assert_eq!(names(&doc), vec!["{\"eventName\":\"A\\\"q\"}".to_string()]);
    }

    #[test]
    fn damaged_documents_give_complete_records_then_the_damage() {
        let doc = "{\n  \"Records\": [\n    {\"a\": 1},\n    {\"b\": 2},\n    {\"c\": ";
        let s = split(doc.as_bytes());
        let got: Vec<&[u8]> = s.pieces.iter().map(|p| &*p.bytes).collect();
        assert_eq!(got, vec![&b"{\"a\": 1}"[..], &b"{\"b\": 2}"[..]]);
        let d = s.damage.expect("damage");
        assert_eq!((d.line, d.column), (5, 11));
        assert!(d.reason.contains("cut short"), "{}", d.reason);
        // A bad byte.
        let mut doc = b"[{\"a\":1},\n{\"b\":\"x".to_vec();
        doc.push(0xff);
        doc.extend_from_slice(b"\"},{\"c\":3}]");
        let s = split(&doc);
        assert_eq!(s.pieces.len(), 3);
        assert_eq!(s.damage, None);
        let d = &s.damaged_records[0];
        assert_eq!((d.line, d.column, d.record), (2, 8, Some(1)));
        assert!(d.reason.contains("UTF-8"), "{}", d.reason);
        // Trailing garbage after a complete document.
        let s = split(b"{\n\"Records\":[{\"a\":1}]}\n]");
        assert_eq!(s.pieces.len(), 1);
        assert_eq!(s.damage.map(|d| (d.line, d.column)), Some((3, 1)));
        // A pretty-printed record cut short: nothing.
        let s = split(b"{\n  \"eventName\": \"A\",\n  \"eventSource\": ");
        assert!(s.pieces.is_empty());
        assert!(s.damage.is_some());
        // A compact S3 file cut short (one line).
        let s = split(b"{\"Records\":[{\"a\":1},{\"b\":2},{\"c\"");
        assert_eq!(s.pieces.len(), 2);
        assert_eq!(s.damage.map(|d| (d.line, d.column)), Some((1, 33)));
        // A CloudWatch envelope cut short: the complete log events.
        let doc = cw(
            &["{\"eventName\":\"A\"}", "{\"eventName\":\"B\"}"],
            "DATA_MESSAGE",
        );
        let s = split(&doc.as_bytes()[..doc.len() - 30]);
        assert_eq!(s.pieces.len(), 1);
        assert!(s.damage.is_some());
    }

    #[test]
    fn damage_inside_one_record_costs_that_record_only() {
        let r = |n: u32| format!("{{\"eventName\":\"E{n}\",\"k\":{{\"x\":[1,\"]}}\"]}}}}");
        let recs: Vec<String> = (0..5).map(r).collect();
        let compact = format!("{{\"Records\":[{}]}}", recs.join(","));
        let pretty = format!(
            "{{\n  \"Records\": [\n    {}\n  ]\n}}\n",
            recs.join(",\n    ")
        );
        let array = format!("[{}]", recs.join(",\n"));
        for doc in [compact, pretty, array] {
            let at = doc.find("E2").unwrap();
            // A bad byte, a NUL in a string, a stray byte between tokens, a
            // control byte: record 3 only.
            for (off, byte) in [(1, 0xffu8), (1, 0), (3, b'x'), (0, 0x07)] {
                let mut bad = doc.clone().into_bytes();
                bad[at + off] = byte;
                let s = split(&bad);
                assert_eq!(s.damage, None, "{doc} {byte}");
                assert_eq!(s.pieces.len(), 5, "{doc} {byte}");
                assert_eq!(s.damaged_records.len(), 1, "{doc} {byte}");
                let d = &s.damaged_records[0];
                assert_eq!(d.record, Some(2));
                assert_eq!(d.offset, at + off, "{doc} {byte}");
                // The damaged record is its own bytes, whole; the others are
                // the records as they were.
                assert!(s.pieces[2].bytes.starts_with(b"{\"eventName\""));
                assert!(s.pieces[2].bytes.ends_with(b"]}}"));
                for i in [0, 1, 3, 4] {
                    assert_eq!(&*s.pieces[i].bytes, recs[i].as_bytes());
                }
            }
            // Two damaged records: both kept, both named.
            let mut bad = doc.clone().into_bytes();
            bad[at + 1] = 0xff;
            bad[doc.find("E4").unwrap() + 1] = 0;
            let s = split(&bad);
            assert_eq!((s.pieces.len(), s.damaged_records.len()), (5, 2));
            assert_eq!(s.damage, None);
            // A lost quote unbalances the record: the damage is not
            // confined to it, so the records before it and one error.
            let mut bad = doc.clone().into_bytes();
            bad[at + 2] = b' ';
            let s = split(&bad);
            assert_eq!(s.pieces.len(), 2, "{doc}");
            assert!(s.damaged_records.is_empty());
            assert!(s.damage.is_some());
            // A lost bracket at the end of the last record: not confined.
            let end = doc.rfind("]}}").unwrap();
            let mut bad = doc.clone().into_bytes();
            bad[end + 2] = b' ';
            let s = split(&bad);
            assert!(s.damage.is_some() || s.damaged_records.len() == 1, "{doc}");
            assert!(s.pieces.len() >= 4, "{doc}");
        }
    }

    #[test]
    fn a_byte_order_mark_is_dropped() {
        let s = split(b"\xEF\xBB\xBF{\"Records\":[{\"a\":1},{\"b\":2}]}");
        assert_eq!(s.pieces.len(), 2);
        assert_eq!(s.damage, None);
        assert_eq!(
            texts("\u{feff}{\"a\":1}\n{\"b\":2}\n"),
            vec![("{\"a\":1}".into(), 1), ("{\"b\":2}".into(), 2)]
        );
        assert_eq!(
            texts("\u{feff}[\n{\"a\":1}\n]"),
            vec![("{\"a\":1}".into(), 2)]
        );
        assert!(starts_ndjson("\u{feff}{\"a\":1}\n".as_bytes()));
        let mut p = Vec::new();
        ndjson_line("\u{feff}{\"a\":1}".as_bytes(), 1, &mut p);
        assert_eq!(&*p[0].bytes, b"{\"a\":1}");
        // Offsets count the mark, columns do not.
        let s = split(b"\xEF\xBB\xBF{\"Records\":[{\"a\":1}]}\0");
        let d = s.damage.expect("damage");
        assert_eq!((d.offset, d.column), (24, 22));
        // Trailing bytes after a whole document: every record, then one error.
        for tail in [&b"\0"[..], b"x", b"\xff", b"]"] {
            let mut doc = b"{\"Records\":[\n{\"a\":1},{\"b\":2}]}".to_vec();
            doc.extend_from_slice(tail);
            let s = split(&doc);
            assert_eq!(s.pieces.len(), 2, "{tail:?}");
            assert_eq!(
                s.damage.map(|d| (d.line, d.column)),
                Some((2, 18)),
                "{tail:?}"
            );
        }
    }

    #[test]
    fn an_ndjson_line_that_is_damaged_passes_through_whole() {
        let doc = "{\"a\":1}\n{\"Records\":[{\"b\":1},{\"c\"\n";
        assert_eq!(
            texts(doc),
            vec![
                ("{\"a\":1}".into(), 1),
                ("{\"Records\":[{\"b\":1},{\"c\"".into(), 2)
            ]
        );
    }

    fn line_work<'a>(doc: &'a [u8]) -> (Split<'a>, u64) {
        LINE_WORK.with(|w| w.set(0));
        let s = split(doc);
        (s, LINE_WORK.with(|w| w.get()))
    }

    /// The work of numbering lines per record does not grow with the
    /// number of records (it was quadratic: every record counted from the
    /// start of the document), for every shape.
    /// A CloudWatch Logs `DATA_MESSAGE` holding `records` as its log events.
    fn cloudwatch_envelope(records: &[String]) -> String {
        let ev: Vec<String> = records
            .iter()
            .map(|m| {
                format!(
                    "{{\"id\":\"1\",\"timestamp\":1,\"message\":{}}}",
                    serde_json::to_string(m).unwrap()
                )
            })
            .collect();
        format!(
            "{{\"messageType\":\"DATA_MESSAGE\",\"logEvents\":[{}]}}",
            ev.join(",")
        )
    }

    #[test]
    fn line_numbering_is_linear() {
        let rec = |i: usize| {
            format!(
                "{{\"eventName\":\"GetCallerIdentity\",\"eventSource\":\"sts.amazonaws.com\",\"eventTime\":\"2024-08-01T12:00:05Z\",\"n\":{i}}}"
            )
        };
        type Shape = fn(&[String]) -> String;
        let shapes: [(&str, Shape); 6] = [
            ("compact S3", |r| {
                format!("{{\"Records\":[{}]}}", r.join(","))
            }),
            ("pretty S3", |r| {
                let pretty: Vec<String> =
                    r.iter().map(|x| x.replace(",\"", ",\n      \"")).collect();
                format!(
                    "{{\n  \"Records\": [\n    {}\n  ]\n}}\n",
                    pretty.join(",\n    ")
                )
            }),
            ("array", |r| format!("[\n{}\n]", r.join(",\n"))),
            ("S3 on NDJSON lines", |r| {
                r.chunks(100)
                    .map(|c| format!("{{\"Records\":[{}]}}\n", c.join(",")))
                    .collect()
            }),
            ("CloudWatch", |r| cloudwatch_envelope(r)),
            ("Firehose", |r| {
                r.chunks(50).map(cloudwatch_envelope).collect()
            }),
        ];
        for (name, shape) in shapes {
            let mut per_record = Vec::new();
            for n in [1_000usize, 16_000] {
                let recs: Vec<String> = (0..n).map(rec).collect();
                let doc = shape(&recs);
                let (s, work) = line_work(doc.as_bytes());
                assert_eq!(s.pieces.len(), n, "{name}");
                assert_eq!(s.damage, None, "{name}");
                per_record.push(work as f64 / n as f64);
            }
            assert!(
                per_record[1] <= 2.0 * per_record[0].max(1.0),
                "{name}: line-numbering work per record grew from {} to {} bytes",
                per_record[0],
                per_record[1]
            );
        }
    }

    /// Many damaged records in one document (compact: one line; pretty):
    /// naming each costs work proportional to its distance from the last,
    /// not to its offset (the column used to scan back to the line's start).
    #[test]
    fn naming_damaged_records_is_linear() {
        let rec = |i: usize| format!("{{\"eventName\":\"E\u{1}\",\"n\":{i}}}");
        for pretty in [false, true] {
            let mut per_record = Vec::new();
            for n in [1_000usize, 16_000] {
                let recs: Vec<String> = (0..n).map(rec).collect();
                let sep = if pretty { ",\n" } else { "," };
                let doc = format!("{{\"Records\":[{}]}}", recs.join(sep));
                let (s, work) = line_work(doc.as_bytes());
                assert_eq!(s.pieces.len(), n);
                assert_eq!(
                    s.damaged_records.len(),
                    n,
                    "every record has a control byte"
                );
                assert_eq!(s.damage, None);
                per_record.push(work as f64 / n as f64);
            }
            assert!(
                per_record[1] <= 2.0 * per_record[0].max(1.0),
                "pretty {pretty}: work per damaged record grew from {} to {} bytes",
                per_record[0],
                per_record[1]
            );
        }
    }

    /// Cut as batch mode's reader does: the head (through the second
    /// non-blank line and HEAD_BYTES past the first non-blank byte), then,
    /// when `starts_ndjson`, line by line, else the whole document.
    fn cut_streaming(doc: &[u8]) -> Split<'_> {
        let (mut end, mut nonblank, mut first) = (0, 0, None::<usize>);
        while end < doc.len() {
            let start = end;
            end = memchr::memchr(b'\n', &doc[start..]).map_or(doc.len(), |i| start + i + 1);
            if let Some(p) = doc[start..end]
                .iter()
                .position(|c| !c.is_ascii_whitespace())
            {
                nonblank += 1;
                first.get_or_insert(start + p);
            }
            if nonblank >= 2 && first.is_some_and(|a| end - a >= HEAD_BYTES) {
                break;
            }
        }
        if end >= doc.len() || !starts_ndjson(&doc[..end]) {
            return split(doc);
        }
        let mut pieces = Vec::new();
        for (i, line) in doc.split(|&c| c == b'\n').enumerate() {
            ndjson_line(line, i as u64 + 1, &mut pieces);
        }
        Split {
            pieces,
            damage: None,
            damaged_records: Vec::new(),
        }
    }

    #[test]
    fn the_head_decides_as_the_whole_document_does() {
        let long = format!("{{\"k\":\"{}\"}}", "x".repeat(5000));
        let docs = [
            "{\"a\":1}\n{\"b\":2}\n".to_string(),
            "\n\n  \n{\"a\":1,\"b\"\n{\"c\":2}\n{\"d\":3}".into(),
            "{\n\"a\": 1\n}\n{\n\"b\": 2\n}".into(),
            "{\n\n\"Records\": [{\"a\":1},\n{\"b\":2}]}".into(),
            "{\"Records\":[{\"a\":1}]}\n{\"b\":1}\n".into(),
            "[1,2]\n[3]\n".into(),
            "[\n{\"a\":1}\n]".into(),
            "not json\n{\"a\":1}".into(),
            format!("{long}\n{long}\n{long}\n"),
            format!("{}\n{{\"a\":1}}\n{{\"b\":2}}", " ".repeat(5000)),
            format!("{{\n{}\n\"Records\":[{{\"a\":1}}]}}\n", "\n".repeat(300)),
            "{\"a\":1}{\"b\":2}\n{\"c\":3}".into(),
            "{oops\n".into(),
            String::new(),
        ];
        for d in &docs {
            assert_eq!(cut_streaming(d.as_bytes()), split(d.as_bytes()), "{d:?}");
        }
    }
}
