//! Reader threads: one per client connection, cutting its byte stream into batches of whole lines (oversized lines passed on in pieces).
use super::*;
use credlineage::input::{BOM, strip_bom};

/// The line cutter of one connection.
struct Lines<'a> {
    conn: u64,
    q: &'a Queue<In>,
    sh: &'a Shared,
    max_line: usize,
    /// The start of a line whose newline has not arrived (never more than `max_line` bytes).
    pending: Vec<u8>,
    /// Inside an oversized line: its pieces go straight through.
    long: bool,
    /// Whole lines not yet pushed.
    batch: Vec<u8>,
    batch_first: u64,
    /// One-based number of the line being read.
    line_no: u64,
    /// The connection's first bytes while they may still be a UTF-8 byte
    /// order mark (dropped, as from a file: docs/serve.md); `None` once
    /// decided.
    head: Option<Vec<u8>>,
}

/// The queue was closed (the enrichment thread is gone).
struct Closed;

impl Lines<'_> {
    fn push(&self, item: In, size: usize, hold: Hold) -> Result<(), Closed> {
        self.q.push(self.conn, item, size, hold).map_err(|item| {
            let lost = match item {
                In::Lines { bytes, .. } => count_lines(&bytes),
                In::Long { end, .. } => u64::from(end),
            };
            Counters::add(&self.sh.c.undelivered, lost);
            Closed
        })
    }

    fn flush(&mut self) -> Result<(), Closed> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let bytes = std::mem::take(&mut self.batch);
        let size = bytes.len();
        let item = In::Lines {
            conn: self.conn,
            first: self.batch_first,
            bytes,
        };
        self.push(item, size, Hold::No)
    }

    fn push_long(&mut self, bytes: Vec<u8>, end: bool) -> Result<(), Closed> {
        let size = bytes.len();
        let hold = if end { Hold::Release } else { Hold::Keep };
        self.push(In::Long { bytes, end }, size, hold)?;
        self.long = !end;
        if end {
            self.line_no += 1;
        }
        Ok(())
    }

    /// Cut `data` into lines, after a leading byte order mark is dropped.
    fn feed(&mut self, data: &[u8]) -> Result<(), Closed> {
        let Some(mut head) = self.head.take() else {
            return self.cut(data);
        };
        head.extend_from_slice(data);
        if head.len() < BOM.len() && BOM.starts_with(&head) {
            self.head = Some(head);
            return Ok(());
        }
        self.cut(strip_bom(&head))
    }

    /// Cut `data` into lines.
    fn cut(&mut self, mut data: &[u8]) -> Result<(), Closed> {
        while !data.is_empty() {
            let nl = data.iter().position(|&c| c == b'\n');
            let take = nl.map_or(data.len(), |i| i + 1);
            let (piece, rest) = data.split_at(take);
            data = rest;
            if self.long {
                self.push_long(piece.to_vec(), nl.is_some())?;
                continue;
            }
            let len = self.pending.len() + nl.unwrap_or(piece.len());
            if len > self.max_line {
                // Too long to enrich: pass it on unchanged, in pieces, holding
                // the queue so no other line lands between them.
                self.flush()?;
                let mut first = std::mem::take(&mut self.pending);
                first.extend_from_slice(piece);
                Counters::add(&self.sh.c.oversized, 1);
                Counters::add(&self.sh.c.lines_in, 1);
                self.sh.log(format_args!(
                    "connection {}: line {} is longer than --max-line-bytes ({}): passed on unchanged, not enriched",
                    self.conn, self.line_no, self.max_line
                ));
                self.push_long(first, nl.is_some())?;
                continue;
            }
            if nl.is_none() {
                self.pending.extend_from_slice(piece);
                continue;
            }
            if self.batch.is_empty() {
                self.batch_first = self.line_no;
                if self.pending.is_empty() {
                    self.batch.extend_from_slice(piece);
                } else {
                    self.batch = std::mem::take(&mut self.pending);
                    self.batch.extend_from_slice(piece);
                }
            } else {
                self.batch.extend_from_slice(&self.pending);
                self.batch.extend_from_slice(piece);
                self.pending.clear();
            }
            if self.pending.capacity() > 4 * READ_CHUNK {
                self.pending = Vec::new();
            }
            self.line_no += 1;
            Counters::add(&self.sh.c.lines_in, 1);
            if self.batch.len() >= BATCH {
                self.flush()?;
            }
        }
        self.flush()
    }

    /// The connection ends: an unterminated last line is passed on as a line.
    fn finish(&mut self, why: &str) -> Result<(), Closed> {
        // A stream of one or two bytes that began like a byte order mark.
        if let Some(head) = self.head.take() {
            self.cut(&head)?;
        }
        if self.long {
            self.sh.log(format_args!(
                "connection {}: {why} inside an oversized line; it is ended there",
                self.conn
            ));
            return self.push_long(b"\n".to_vec(), true);
        }
        if !self.pending.is_empty() {
            if why != "closed" {
                self.sh.log(format_args!(
                    "connection {}: {why} with an unterminated line of {} bytes; passed on as it is",
                    self.conn,
                    self.pending.len()
                ));
            }
            let mut last = std::mem::take(&mut self.pending);
            last.push(b'\n');
            if self.batch.is_empty() {
                self.batch_first = self.line_no;
            }
            self.batch.extend_from_slice(&last);
            self.line_no += 1;
            Counters::add(&self.sh.c.lines_in, 1);
        }
        self.flush()
    }
}

pub(super) fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[allow(clippy::too_many_arguments)]
pub(super) fn reader(
    conn: u64,
    mut s: TcpStream,
    q: &Queue<In>,
    sh: &Shared,
    slot: &Slot,
    max_line: usize,
    idle: Duration,
    line_timeout: Duration,
) {
    if let Err(e) = s.set_read_timeout(Some(POLL)) {
        sh.log(format_args!("connection {conn}: {e}"));
        return;
    }
    let mut lines = Lines {
        conn,
        q,
        sh,
        max_line,
        pending: Vec::new(),
        long: false,
        batch: Vec::new(),
        batch_first: 1,
        line_no: 1,
        head: Some(Vec::new()),
    };
    let mut buf = vec![0u8; READ_CHUNK];
    let mut last_data = Instant::now();
    let mut drain_from: Option<Instant> = None;
    // When the line now arriving began (None between lines).
    let mut line_since: Option<Instant> = None;
    let why: String = loop {
        if slot.evict.load(Ordering::Relaxed) {
            Counters::add(&sh.c.cut_off, 1);
            break "idle, its slot given to a waiting connection".into();
        }
        if line_since.is_some_and(|t| t.elapsed() >= line_timeout) {
            Counters::add(&sh.c.cut_off, 1);
            break "line not complete within --line-timeout".into();
        }
        if drain_from.is_none() && sh.stopping() {
            drain_from = Some(Instant::now());
        }
        if drain_from.is_some() && sh.read_deadline.get().is_some_and(|d| Instant::now() >= *d) {
            break "shutdown".into();
        }
        match s.read(&mut buf) {
            Ok(0) => break "closed".into(),
            Ok(n) => {
                last_data = Instant::now();
                Counters::add(&sh.c.bytes_in, n as u64);
                slot.busy.store(true, Ordering::Relaxed);
                let fed = lines.feed(buf.get(..n).unwrap_or_default());
                slot.touch();
                slot.busy.store(false, Ordering::Relaxed);
                if fed.is_err() {
                    return;
                }
                if lines.pending.is_empty() && !lines.long {
                    line_since = None;
                } else if line_since.is_none() {
                    line_since = Some(last_data);
                }
            }
            Err(e) if is_timeout(&e) => {
                if let Some(d) = drain_from {
                    if last_data.max(d).elapsed() >= DRAIN_IDLE {
                        break "shutdown".into();
                    }
                }
                if lines.long && last_data.elapsed() >= LONG_LINE_IDLE {
                    Counters::add(&sh.c.cut_off, 1);
                    break "idle inside an oversized line".into();
                }
                if drain_from.is_none() && slot.idle() >= idle {
                    Counters::add(&sh.c.cut_off, 1);
                    break "idle for --idle-timeout".into();
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break e.to_string(),
        }
    };
    let _ = lines.finish(&why);
    let _ = s.shutdown(Shutdown::Both);
    sh.log(format_args!(
        "connection {conn} ended ({why}) after {} lines",
        lines.line_no - 1
    ));
}
