//! The one enrichment thread: lines from every connection through the shared `Enricher`, directly or through the reorder window.
use super::*;

pub(super) fn lock_enricher(e: &Mutex<Enricher>) -> MutexGuard<'_, Enricher> {
    e.lock().unwrap_or_else(|p| p.into_inner())
}

/// The one enrichment thread. The enricher is locked only while an item is
/// processed, never while waiting on the output queue, so the main thread can
/// always take a snapshot at shutdown.
pub(super) fn enrich_loop(e: &Mutex<Enricher>, inq: &Queue<In>, outq: &Queue<Out>, sh: &Shared) {
    let mut bad = Vec::new();
    let mut reported = 0u64;
    while let Some(item) = inq.pop() {
        let (out, records) = match item {
            In::Lines { conn, first, bytes } => {
                let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 2);
                let mut records = 0u64;
                let mut g = lock_enricher(e);
                for (i, line) in bytes.split_inclusive(|&c| c == b'\n').enumerate() {
                    let n = enrich_line(&mut g, trim_line(line), &mut out, &mut bad);
                    records += n;
                    for (k, err) in bad.drain(..) {
                        reported += 1;
                        if reported <= MAX_REPORTED {
                            // Named by connection and line (from 1), and by
                            // position in the line when it held several records.
                            let of_line = if n > 1 {
                                format!("record {} of the line: ", k + 1)
                            } else {
                                String::new()
                            };
                            sh.log(format_args!(
                                "connection {conn}: line {}: {of_line}{} (passed on unchanged){}",
                                first + i as u64,
                                record_reason(&err),
                                if reported == MAX_REPORTED {
                                    "; further ones are only counted"
                                } else {
                                    ""
                                }
                            ));
                        }
                    }
                }
                drop(g);
                if out.is_empty() {
                    continue;
                }
                (
                    Out::Lines {
                        bytes: out,
                        records,
                    },
                    records,
                )
            }
            In::Long { bytes, end } => (Out::Long { bytes, end }, u64::from(end)),
        };
        let size = match &out {
            Out::Lines { bytes, .. } | Out::Long { bytes, .. } => bytes.len(),
        };
        if outq.push(0, out, size, Hold::No).is_err() {
            Counters::add(&sh.c.undelivered, records);
        }
    }
}

/// A record held by `serve`'s reorder window, and where it came from (for
/// the message when it cannot be read).
struct Held {
    bytes: Box<[u8]>,
    conn: u64,
    line: u64,
    /// Its position in its line (from 0), when the line held several.
    of_line: Option<u64>,
}

/// The enrichment thread with `--reorder-window`: every record of a line
/// goes to the window (keyed by `peek_order`, as batch mode sorts);
/// released records are enriched in time order. Records are released by the
/// watermark, the caps, and the wall clock (held at most the window), and
/// all of them, in time order, when the input queue closes. Oversized lines
/// are never held (never in memory whole): they are passed on at once, and
/// nothing is released by the clock while one streams, so its pieces stay
/// together.
pub(super) fn enrich_window(
    e: &Mutex<Enricher>,
    inq: &Queue<In>,
    outq: &Queue<Out>,
    sh: &Shared,
    limits: Window,
) {
    let mut w: Reorder<Held> = Reorder::new(limits);
    let t0 = Instant::now();
    let now = || u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut reported = 0u64;
    let mut in_long = false;
    let mut out = Vec::new();
    let mut records = 0u64;
    let publish = |w: &Reorder<Held>| {
        *sh.reorder.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((w.limits(), w.stats(), w.len()));
    };
    publish(&w);
    // Enrich one released record into `out`.
    let mut release = |g: &mut Enricher, h: Held, out: &mut Vec<u8>, records: &mut u64| {
        *records += 1;
        let o = g.process_into(&h.bytes, None, out);
        out.push(b'\n');
        if let Outcome::Malformed(err) = o {
            reported += 1;
            if reported <= MAX_REPORTED {
                sh.log(format_args!(
                    "connection {}: line {}: {}{} (passed on unchanged){}",
                    h.conn,
                    h.line,
                    h.of_line
                        .map_or(String::new(), |k| format!("record {} of the line: ", k + 1)),
                    record_reason(&err),
                    if reported == MAX_REPORTED {
                        "; further ones are only counted"
                    } else {
                        ""
                    }
                ));
            }
        }
    };
    let send = |out: &mut Vec<u8>, records: &mut u64| {
        if out.is_empty() {
            return;
        }
        let bytes = std::mem::take(out);
        let n = std::mem::take(records);
        let size = bytes.len();
        if outq
            .push(0, Out::Lines { bytes, records: n }, size, Hold::No)
            .is_err()
        {
            Counters::add(&sh.c.undelivered, n);
        }
    };
    loop {
        let popped = match w.next_deadline() {
            Some(d) if !in_long => inq.pop_until(t0 + Duration::from_millis(d)),
            _ => inq.pop().map_or(Popped::Closed, Popped::Item),
        };
        match popped {
            Popped::Closed => break,
            Popped::Timeout => {
                let mut g = lock_enricher(e);
                while let Some((h, _)) = w.pop_due(Some(now())) {
                    release(&mut g, h, &mut out, &mut records);
                }
                drop(g);
            }
            Popped::Item(In::Long { bytes, end }) => {
                in_long = !end;
                let size = bytes.len();
                if outq
                    .push(0, Out::Long { bytes, end }, size, Hold::No)
                    .is_err()
                {
                    Counters::add(&sh.c.undelivered, u64::from(end));
                }
            }
            Popped::Item(In::Lines { conn, first, bytes }) => {
                let mut g = lock_enricher(e);
                for (i, line) in bytes.split_inclusive(|&c| c == b'\n').enumerate() {
                    let line = trim_line(line);
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let line_no = first + i as u64;
                    let pieces = credlineage::input::unroll_line(line);
                    let one = [line];
                    let many: Vec<&[u8]>;
                    let recs: &[&[u8]] = match &pieces {
                        Some(p) => {
                            many = p.iter().map(|p| &*p.bytes).collect();
                            &many
                        }
                        None => &one,
                    };
                    for (k, r) in recs.iter().enumerate() {
                        let h = Held {
                            bytes: (*r).into(),
                            conn,
                            line: line_no,
                            of_line: (recs.len() > 1).then_some(k as u64),
                        };
                        let order = g.peek_order(r);
                        let t = now();
                        if let Pushed::Now(h, _) = w.push(order, h, r.len(), Some(t)) {
                            release(&mut g, h, &mut out, &mut records);
                        }
                        while let Some((h, _)) = w.pop_due(Some(t)) {
                            release(&mut g, h, &mut out, &mut records);
                        }
                    }
                }
                drop(g);
            }
        }
        send(&mut out, &mut records);
        publish(&w);
    }
    // The input is closed: everything held, in time order — unless the
    // shutdown deadline has passed (then it is counted as undelivered).
    let mut g = lock_enricher(e);
    while !w.is_empty() {
        if sh.aborted() {
            Counters::add(&sh.c.undelivered, w.len() as u64);
            break;
        }
        let mut n = 0;
        while let Some((h, _)) = w.pop_flush() {
            release(&mut g, h, &mut out, &mut records);
            n += 1;
            if n == 4096 {
                break;
            }
        }
        send(&mut out, &mut records);
    }
    drop(g);
    publish(&w);
}
