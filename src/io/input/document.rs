//! Reading a JSON document's values into records in one scanner pass: arrays, S3 delivery files' `Records`, CloudWatch Logs envelopes' log events, with line numbers counted incrementally.

use super::*;

#[cfg(test)]
thread_local! {
    /// Bytes examined to number lines: the work that used to be quadratic.
    pub(super) static LINE_WORK: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Line numbers of increasing offsets, counted from the previous one.
pub(super) struct LineCounter<'d> {
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

/// Reads the values of a document into pieces.
pub(super) struct Reader<'a, 'o> {
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

pub(super) fn is_json_object(text: &str) -> bool {
    let t = text.trim_start_matches([' ', '\t', '\n', '\r']);
    t.starts_with('{') && json::validate(t).is_ok()
}

/// What [`read_document`] found: whether any value was unrolled, the
/// damage that stopped it, the damage confined to one element each.
pub(super) type Read = (bool, Option<Damage>, Vec<Damage>);

/// Read `doc` as a sequence of JSON values (one value is the usual case)
/// into `out`.
pub(super) fn read_document<'a>(doc: &'a [u8], out: &mut Vec<Piece<'a>>) -> Read {
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
