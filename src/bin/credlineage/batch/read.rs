//! Batch mode's first read of the input: records cut file by file, each one's facts and sort key made on worker threads, collected in input order into the sorter.

use super::*;

/// Read one file (or stdin) and give each record to `each(bytes, line)`.
/// NDJSON is read line by line, straight from the read buffer; any other
/// shape is read whole and cut by `input::split` (a damaged document and a
/// line over the cap are noted when `notes` is given). `caps`: the line and
/// document caps. The outer error is `each`'s, the inner one reading the
/// input.
pub(super) fn read_records(
    mut notes: Option<&mut Run>,
    caps: Caps,
    f: &Path,
    bytes_in: &mut u64,
    mut each: impl FnMut(&[u8], u64) -> io::Result<()>,
) -> io::Result<io::Result<()>> {
    let Caps {
        line: max_line,
        document: max_document,
    } = caps;
    let raw: Box<dyn Read> = if f.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        match File::open(f) {
            Ok(file) => Box::new(file),
            Err(e) => return Ok(Err(e)),
        }
    };
    let mut raw = BufReader::with_capacity(1 << 20, raw);
    let mut magic = Vec::with_capacity(2);
    while magic.len() < 2 {
        let buf = match raw.fill_buf() {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        if buf.is_empty() {
            break;
        }
        let take = buf.len().min(2 - magic.len());
        magic.extend_from_slice(buf.get(..take).unwrap_or_default());
        raw.consume(take);
    }
    let chained = io::Cursor::new(magic.clone()).chain(raw);
    let mut r: Box<dyn BufRead> = if magic == [0x1f, 0x8b] {
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::bufread::MultiGzDecoder::new(chained),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, chained))
    };
    // The head: through the second non-blank line and HEAD_BYTES past the
    // first non-blank byte (input::starts_ndjson), or the whole input.
    let mut head = Vec::new();
    let mut nonblank = 0;
    let mut first_at: Option<usize> = None;
    let mut eof = false;
    loop {
        let start = head.len();
        match crate::read_line_capped(&mut r, &mut head, max_document) {
            Ok((0, _)) => {
                eof = true;
                break;
            }
            Ok((_, false)) => {}
            Ok((_, true)) => return Ok(Err(crate::too_large(max_document))),
            Err(e) => return Ok(Err(e)),
        }
        let line = head.get(start..).unwrap_or_default();
        if let Some(p) = line.iter().position(|c| !c.is_ascii_whitespace()) {
            nonblank += 1;
            first_at.get_or_insert(start + p);
        }
        let past = first_at.map_or(0, |a| head.len() - a);
        if nonblank >= 2 && past >= credlineage::input::HEAD_BYTES {
            break;
        }
    }
    // A UTF-8 byte order mark is not part of the input.
    if head.starts_with(credlineage::input::BOM) {
        head.drain(..credlineage::input::BOM.len());
    }
    // Binary data is named once and nothing of it is read as records (as in
    // stream order).
    if crate::looks_binary(&head) {
        return Ok(Err(crate::not_text(magic == [0x1f, 0x8b])));
    }
    if !eof && !credlineage::input::starts_ndjson(&head) {
        if let Err(e) = crate::read_to_end_capped(&mut r, &mut head, max_document) {
            return Ok(Err(e));
        }
        eof = true;
    }
    if eof {
        *bytes_in += head.len() as u64;
        let split = credlineage::input::split(&head);
        for p in &split.pieces {
            each(&p.bytes, p.line)?;
        }
        if let Some(run) = notes.as_deref_mut() {
            for d in split.damaged_records.iter().chain(&split.damage) {
                note_damage(run, f, d);
            }
        }
        return Ok(Ok(()));
    }
    // NDJSON: line by line.
    let mut n = 0u64;
    let max_line = usize::try_from(max_line).unwrap_or(usize::MAX);
    let mut one = |notes: &mut Option<&mut Run>, line: &[u8], n: u64| -> io::Result<()> {
        let l = line.strip_suffix(b"\n").unwrap_or(line);
        if crate::trim_line(l).len() > max_line {
            if let Some(run) = notes.as_deref_mut() {
                crate::long_line(run, f, n);
            }
            return Ok(());
        }
        let mut pieces = Vec::new();
        credlineage::input::ndjson_line(l, n, &mut pieces);
        for p in &pieces {
            each(&p.bytes, p.line)?;
        }
        Ok(())
    };
    *bytes_in += head.len() as u64;
    let mut rest = head.as_slice();
    while !rest.is_empty() {
        let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(end);
        n += 1;
        one(&mut notes, line, n)?;
        rest = tail;
    }
    // Whole lines straight from the read buffer; a line that crosses the
    // buffer's end is gathered in `line`.
    let mut line = Vec::new();
    // A line that crosses the buffer's end and grows past the cap is
    // dropped up to its newline, never held (`--max-line-bytes`).
    let cap = max_line.saturating_add(2);
    let mut skipping = false;
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Ok(Err(e)),
        };
        if buf.is_empty() {
            if skipping {
                n += 1;
                if let Some(run) = notes.as_deref_mut() {
                    crate::long_line(run, f, n);
                }
            } else if !line.is_empty() {
                n += 1;
                one(&mut notes, &line, n)?;
            }
            return Ok(Ok(()));
        }
        let len = buf.len();
        *bytes_in += len as u64;
        let mut rest = buf;
        if skipping || !line.is_empty() {
            match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    let (a, b) = rest.split_at(i + 1);
                    n += 1;
                    if skipping {
                        if let Some(run) = notes.as_deref_mut() {
                            crate::long_line(run, f, n);
                        }
                        skipping = false;
                    } else {
                        line.extend_from_slice(a);
                        one(&mut notes, &line, n)?;
                    }
                    line.clear();
                    rest = b;
                }
                None => {
                    if !skipping {
                        line.extend_from_slice(rest);
                    }
                    rest = &[];
                }
            }
        }
        while let Some(i) = memchr::memchr(b'\n', rest) {
            let (a, b) = rest.split_at(i + 1);
            n += 1;
            one(&mut notes, a, n)?;
            rest = b;
        }
        if !skipping {
            line.extend_from_slice(rest);
        }
        if line.len() > cap {
            skipping = true;
            line.clear();
        }
        r.consume(len);
    }
}

/// The caps on what one read takes (`--max-line-bytes`,
/// `--max-document-bytes`).
#[derive(Clone, Copy)]
pub(super) struct Caps {
    line: u64,
    document: u64,
}

impl Caps {
    pub(super) fn of(run: &Run) -> Caps {
        Caps {
            line: run.max_line,
            document: run.max_document,
        }
    }
}

/// A chunk of records of one file on their way from the reader through a
/// worker (which adds each record's facts and sort key) to the collector
/// (which numbers them and puts their facts into the sorter).
#[derive(Default)]
pub(super) struct Chunk {
    file: u32,
    data: Vec<u8>,
    /// Each record's end in `data` and its line.
    recs: Vec<(usize, u64)>,
    /// Each record's sort key (`Enricher::peek_order`), filled by a worker.
    keys: Vec<(Option<i64>, u8)>,
    /// Each record's facts (`Enricher::facts`), one after the other, and
    /// each one's end: filled by a worker.
    facts: Vec<u8>,
    fends: Vec<usize>,
    /// On the last chunk of a file: whether the file was read to its end.
    end: Option<bool>,
}

impl Chunk {
    pub(super) fn reset(&mut self, file: u32) {
        self.file = file;
        self.data.clear();
        if self.data.capacity() < CHUNK {
            // The sorter took the last one's bytes over: a full-size buffer,
            // so filling it does not reallocate.
            self.data = Vec::with_capacity(CHUNK + (16 << 10));
        }
        self.recs.clear();
        self.keys.clear();
        self.facts.clear();
        self.fends.clear();
        self.end = None;
    }
}

/// What reading the input leaves: the input sorted (in memory or in runs),
/// the files that failed (their records are left out), each file's first
/// sequence number and the number of records.
pub(super) struct Sorted {
    pub(super) input: Sorter,
    pub(super) originals: Originals,
    pub(super) spill: Spill,
    pub(super) failed: Vec<bool>,
    pub(super) file_start: Vec<u64>,
    pub(super) records: u64,
}

/// A file's identity for the second read (`Reread`): its length and
/// modification time when first opened.
pub(super) type FileId = Option<(u64, Option<std::time::SystemTime>)>;

pub(super) fn file_id(f: &Path) -> FileId {
    std::fs::metadata(f)
        .ok()
        .filter(std::fs::Metadata::is_file)
        .map(|m| (m.len(), m.modified().ok()))
}

/// Read every file and sort its records' facts. Three stages overlap: this
/// thread reads and cuts records into chunks; workers read each record once
/// (`Enricher::facts`: its packed view and sort key; the costly part) in
/// parallel; a collector takes the chunks back in order, numbers the records
/// exactly as one thread would (sequence, the previous time for a record
/// without one, the roll-back of a file that fails part way), puts the
/// facts into the sorter, which spills, and keeps the records themselves
/// for the output while they fit ([`Originals`]).
pub(super) fn read_sorted(
    run: &mut Run,
    config: &Config,
    files: &[PathBuf],
    input: Sorter,
    spill: Spill,
    bytes_in: &mut u64,
    ids: &mut [FileId],
) -> io::Result<Sorted> {
    let in_limit = input.limit;
    // Files can be read a second time for the output when every one is a
    // regular file (a missing one fails and is left out anyway).
    let rereadable = files
        .iter()
        .all(|f| f.as_os_str() != "-" && std::fs::metadata(f).map_or(true, |m| m.is_file()));
    let total: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    let nfiles = files.len();
    // Capacity IN_FLIGHT: the reader never blocks sending, only waiting for
    // a free chunk (which fails once the collector is gone).
    let (work_tx, work_rx) = mpsc::sync_channel::<(u64, Chunk)>(IN_FLIGHT);
    let work_rx = std::sync::Mutex::new(work_rx);
    let (done_tx, done_rx) = mpsc::sync_channel::<(u64, Chunk)>(IN_FLIGHT);
    let (free_tx, free_rx) = mpsc::channel::<Chunk>();
    for _ in 0..IN_FLIGHT {
        let _ = free_tx.send(Chunk::default());
    }
    std::thread::scope(|sc| {
        for _ in 0..workers {
            let done_tx = done_tx.clone();
            let work_rx = &work_rx;
            let config = config.clone();
            sc.spawn(move || {
                let Ok(peek) = Enricher::new(config) else {
                    return;
                };
                let mut packer = credlineage::record::Packer::default();
                loop {
                    let msg = match work_rx.lock() {
                        Ok(g) => g.recv(),
                        Err(_) => return,
                    };
                    let Ok((i, mut c)) = msg else { return };
                    c.keys.clear();
                    c.fends.clear();
                    if c.facts.capacity() == 0 {
                        c.facts.reserve(FACTS_CHUNK);
                    }
                    let mut start = 0;
                    for &(end, _) in &c.recs {
                        let rec = c.data.get(start..end).unwrap_or_default();
                        c.keys.push(peek.facts(rec, &mut packer, &mut c.facts));
                        c.fends.push(c.facts.len());
                        start = end;
                    }
                    if done_tx.send((i, c)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        let collector = sc.spawn(move || -> io::Result<Sorted> {
            let mut input = input;
            let mut failed = vec![false; nfiles];
            let mut file_start = vec![0u64; nfiles];
            let mut pending = std::collections::BTreeMap::new();
            let mut next = 0u64;
            let (mut seq, mut last_time) = (0u64, i64::MIN);
            let (mut seq0, mut last0) = (0u64, i64::MIN);
            let mut cur: Option<u32> = None;
            // Files larger in all than the buffer are read again from the
            // start (not held in memory first).
            let mut originals = if rereadable && total > in_limit as u64 {
                Originals::Reread
            } else {
                Originals::Memory {
                    bufs: Vec::new(),
                    recs: Vec::new(),
                    bytes: 0,
                    file: 0,
                }
            };
            for (i, c) in done_rx {
                pending.insert(i, c);
                while let Some(mut c) = pending.remove(&next) {
                    next += 1;
                    if cur != Some(c.file) {
                        cur = Some(c.file);
                        if let Some(s) = file_start.get_mut(c.file as usize) {
                            *s = seq;
                        }
                        (seq0, last0) = (seq, last_time);
                        originals.begin_file();
                    }
                    let mut start = 0;
                    let file = c.file;
                    let items = c.recs.iter().zip(&c.keys).zip(&c.fends).map(
                        |((&(_, line), &(t, rank)), &end)| {
                            let t = t.unwrap_or(last_time);
                            last_time = t;
                            let m = Meta {
                                time: t,
                                rank,
                                file,
                                seq,
                                line,
                            };
                            seq += 1;
                            let s = start;
                            start = end;
                            (m, s, end)
                        },
                    );
                    let n = c.recs.len();
                    input.adopt(&mut c.facts, items, n, &spill)?;
                    originals.add(&mut c.data, &c.recs, &spill)?;
                    originals.fit(input.used(), in_limit, rereadable, &spill)?;
                    if c.end == Some(false) {
                        if let Some(x) = failed.get_mut(c.file as usize) {
                            *x = true;
                        }
                        (seq, last_time) = (seq0, last0);
                        originals.rollback(&spill)?;
                    }
                    if c.facts.capacity() < FACTS_CHUNK
                        && let Some(b) = input.pool.pop()
                    {
                        c.facts = b;
                    }
                    c.reset(0);
                    let _ = free_tx.send(c);
                }
            }
            input.finish(&spill, &failed)?;
            Ok(Sorted {
                input,
                originals: originals.done(&spill)?,
                spill,
                failed,
                file_start,
                records: seq,
            })
        });
        // This thread reads.
        let read = (|| -> io::Result<()> {
            let work_tx = work_tx;
            let mut idx = 0u64;
            let mut send = |c: Chunk| -> io::Result<()> {
                work_tx.send((idx, c)).map_err(|_| stopped())?;
                idx += 1;
                Ok(())
            };
            for (fi, f) in files.iter().enumerate() {
                let file = u32::try_from(fi).map_err(io::Error::other)?;
                let mut chunk = free_rx.recv().map_err(|_| stopped())?;
                chunk.reset(file);
                if let Some(id) = ids.get_mut(fi) {
                    *id = file_id(f);
                }
                let bytes0 = *bytes_in;
                let caps = Caps::of(run);
                let res = read_records(Some(&mut *run), caps, f, bytes_in, |bytes, line| {
                    chunk.data.extend_from_slice(bytes);
                    chunk.recs.push((chunk.data.len(), line));
                    if chunk.data.len() >= CHUNK {
                        let mut next = free_rx.recv().map_err(|_| stopped())?;
                        next.reset(file);
                        send(std::mem::replace(&mut chunk, next))?;
                    }
                    Ok(())
                })?;
                if let Err(e) = &res {
                    run.bad_file(f, e);
                    *bytes_in = bytes0;
                }
                chunk.end = Some(res.is_ok());
                send(chunk)?;
            }
            Ok(())
        })();
        let sorted = collector
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the sorting thread panicked")));
        // The collector's error (the spill directory) is the cause of a
        // stopped reader.
        let sorted = sorted?;
        read.map(|()| sorted)
    })
}
