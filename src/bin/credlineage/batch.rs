//! Batch mode (`--order time`) in bounded memory: an external merge sort of the records by (event time, rank, input position), two merged passes over the sorted runs, and a second external sort of the outputs back into input order (docs/batch.md).
//!
//! Records are read file by file (NDJSON line by line, so one file is never
//! held whole; any other shape, an S3 delivery file for one, is read whole
//! and cut by `input::split`, as today), and collected in a buffer of at most
//! a share of `--batch-memory`. A full buffer is sorted and written to the
//! spill directory as a run. Pass 1 (learning every credential set) and
//! pass 2 (annotating) each merge the runs; pass 2's outputs go through a
//! second sorter keyed by input position, merged into the output at the end.
//! When everything fits the buffers nothing is written to disk and the
//! result is the same bytes (the in-memory fast path).

use credlineage::{Config, Enricher, Outcome};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::{Run, note_damage, progress};

/// Default `--batch-memory`: 512 MiB.
pub const DEFAULT_MEMORY: u64 = 512 << 20;

/// Most runs merged at once; more are first merged into longer runs.
const FAN_IN: usize = 64;

/// Bytes a buffered record costs besides its own bytes (its entry).
const ENTRY_COST: usize = std::mem::size_of::<Ent>();

/// `--batch-memory` and `--spill-dir`.
#[derive(Clone, Debug)]
pub struct Budget {
    /// The memory budget in bytes.
    pub memory: u64,
    /// Where runs are written (in a fresh temporary directory inside it);
    /// `None`: the system's temporary directory.
    pub spill_dir: Option<PathBuf>,
    /// `--max-line-bytes`, `--max-document-bytes` (see the flags).
    pub max_line: u64,
    pub max_document: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            memory: DEFAULT_MEMORY,
            spill_dir: None,
            max_line: 16 << 20,
            max_document: 1 << 30,
        }
    }
}

/// Parse a byte count: digits with an optional suffix K, M, G or T (powers
/// of 1024; `KB`, `KiB`, `k` … accepted alike).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}`: expected a number of bytes, e.g. 512M"))?;
    let shift = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(format!("`{s}`: unknown suffix (use K, M, G or T)")),
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("`{s}`: too large"))
}

/// An error writing or reading the spill directory (a full disk, most
/// often): carried inside an `io::Error` so the command can name the
/// directory instead of the output.
#[derive(Debug)]
pub struct SpillError {
    pub dir: PathBuf,
    pub err: io::Error,
}

impl SpillError {
    /// What went wrong, with a hint when the disk is full.
    pub fn reason(&self) -> String {
        let full = self.err.kind() == io::ErrorKind::StorageFull
            || self.err.kind() == io::ErrorKind::QuotaExceeded
            || self.err.raw_os_error() == Some(28);
        format!(
            "{}{}",
            self.err,
            if full {
                " (batch mode writes about twice the input there: free space, \
                 choose another directory with --spill-dir, or use --order stream)"
            } else {
                ""
            }
        )
    }
}

impl std::fmt::Display for SpillError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "spill directory {}: {}",
            self.dir.display(),
            self.reason()
        )
    }
}

impl std::error::Error for SpillError {}

/// The spill directory, created at the first spill, removed (with every
/// run in it) when dropped: on success and on every error path.
struct Spill {
    base: PathBuf,
    dir: std::cell::OnceCell<tempfile::TempDir>,
    next: std::cell::Cell<u64>,
}

impl Spill {
    fn new(base: Option<&Path>) -> Self {
        Spill {
            base: base.map_or_else(std::env::temp_dir, Path::to_path_buf),
            dir: std::cell::OnceCell::new(),
            next: std::cell::Cell::new(0),
        }
    }

    /// The directory named in errors.
    fn name(&self) -> PathBuf {
        self.dir
            .get()
            .map_or_else(|| self.base.clone(), |d| d.path().to_path_buf())
    }

    fn err(&self, err: io::Error) -> io::Error {
        io::Error::new(
            err.kind(),
            SpillError {
                dir: self.name(),
                err,
            },
        )
    }

    /// A new run file.
    fn create(&self) -> io::Result<(PathBuf, File)> {
        let dir = match self.dir.get() {
            Some(d) => d,
            None => {
                let d = tempfile::Builder::new()
                    .prefix("credlineage-batch-")
                    .tempdir_in(&self.base)
                    .map_err(|e| self.err(e))?;
                self.dir.get_or_init(|| d)
            }
        };
        let n = self.next.get();
        self.next.set(n + 1);
        let p = dir.path().join(format!("run-{n}"));
        let f = File::create(&p).map_err(|e| self.err(e))?;
        Ok((p, f))
    }
}

/// A buffered record: where its bytes are in the buffer, and its key.
#[derive(Clone, Copy)]
struct Ent {
    time: i64,
    rank: u8,
    file: u32,
    seq: u64,
    line: u64,
    off: usize,
    len: usize,
}

impl Ent {
    fn key(&self) -> (i64, u8, u64) {
        (self.time, self.rank, self.seq)
    }
}

/// What a sorted record carries besides its bytes.
#[derive(Clone, Copy, Default)]
struct Meta {
    time: i64,
    rank: u8,
    file: u32,
    seq: u64,
    line: u64,
}

impl Meta {
    fn key(&self) -> (i64, u8, u64) {
        (self.time, self.rank, self.seq)
    }
}

/// An external sorter of records by (time, rank, seq): a buffer of at most
/// `limit` bytes, sorted and spilled as a run when full.
struct Sorter {
    data: Vec<u8>,
    ents: Vec<Ent>,
    limit: usize,
    runs: Vec<PathBuf>,
    /// Read buffer of each run while merging.
    read_buf: usize,
    count: u64,
}

impl Sorter {
    fn new(limit: usize, read_buf: usize) -> Self {
        Sorter {
            data: Vec::new(),
            ents: Vec::new(),
            limit: limit.max(1),
            runs: Vec::new(),
            read_buf,
            count: 0,
        }
    }

    fn used(&self) -> usize {
        self.data.len() + self.ents.len() * ENTRY_COST
    }

    fn push(&mut self, m: Meta, bytes: &[u8], spill: &Spill) -> io::Result<()> {
        let cost = bytes.len() + ENTRY_COST;
        if !self.ents.is_empty() && self.used() + cost > self.limit {
            self.spill_buffer(spill)?;
        }
        // Grow within the limit (no doubling past it).
        let need = self.data.len() + bytes.len();
        if need > self.data.capacity() {
            let cap = (self.data.capacity() * 2)
                .max(need)
                .min(self.limit.max(need));
            self.data.reserve_exact(cap - self.data.len());
        }
        let off = self.data.len();
        self.data.extend_from_slice(bytes);
        self.ents.push(Ent {
            time: m.time,
            rank: m.rank,
            file: m.file,
            seq: m.seq,
            line: m.line,
            off,
            len: bytes.len(),
        });
        self.count += 1;
        Ok(())
    }

    /// Sort the buffer and write it out as a run.
    fn spill_buffer(&mut self, spill: &Spill) -> io::Result<()> {
        self.ents.sort_unstable_by_key(Ent::key);
        let (path, f) = spill.create()?;
        let mut w = BufWriter::with_capacity(1 << 18, f);
        let write = |w: &mut BufWriter<File>| -> io::Result<()> {
            for e in &self.ents {
                let m = Meta {
                    time: e.time,
                    rank: e.rank,
                    file: e.file,
                    seq: e.seq,
                    line: e.line,
                };
                let b = self.data.get(e.off..e.off + e.len).unwrap_or_default();
                write_rec(w, &m, b)?;
            }
            w.flush()
        };
        write(&mut w).map_err(|e| spill.err(e))?;
        drop(w);
        self.runs.push(path);
        self.ents.clear();
        self.data.clear();
        Ok(())
    }

    /// Done adding: sort what is buffered, or, when runs were spilled,
    /// spill it too and merge the runs down to at most [`FAN_IN`].
    fn finish(&mut self, spill: &Spill, skip: &[bool]) -> io::Result<()> {
        if self.runs.is_empty() {
            self.ents.sort_unstable_by_key(Ent::key);
            return Ok(());
        }
        if !self.ents.is_empty() {
            self.spill_buffer(spill)?;
        }
        self.data = Vec::new();
        self.ents = Vec::new();
        while self.runs.len() > FAN_IN {
            // Merge only as many as needed to get down to FAN_IN (all the
            // runs are about the same length), so little is rewritten.
            let n = (self.runs.len() - FAN_IN + 1).min(FAN_IN);
            let group: Vec<PathBuf> = self.runs.drain(..n).collect();
            let (path, f) = spill.create()?;
            let mut w = BufWriter::with_capacity(1 << 18, f);
            merge(&group, self.read_buf, skip, spill, |m, b| {
                write_rec(&mut w, m, b)
            })?;
            w.flush().map_err(|e| spill.err(e))?;
            drop(w);
            for p in &group {
                let _ = std::fs::remove_file(p);
            }
            self.runs.push(path);
        }
        Ok(())
    }

    /// Every record in key order (after [`finish`](Self::finish)), but those
    /// of the files marked in `skip`. Can be called again.
    fn for_each(
        &self,
        skip: &[bool],
        spill: &Spill,
        mut each: impl FnMut(&Meta, &[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        if self.runs.is_empty() {
            for e in &self.ents {
                if skip.get(e.file as usize).copied().unwrap_or(false) {
                    continue;
                }
                let m = Meta {
                    time: e.time,
                    rank: e.rank,
                    file: e.file,
                    seq: e.seq,
                    line: e.line,
                };
                each(&m, self.data.get(e.off..e.off + e.len).unwrap_or_default())?;
            }
            return Ok(());
        }
        merge(&self.runs, self.read_buf, skip, spill, each)
    }
}

impl Drop for Sorter {
    /// Runs are removed as soon as they are no longer needed (the spill
    /// directory goes when the run ends, whatever happens).
    fn drop(&mut self) {
        for p in &self.runs {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Run record: time i64, rank u8, file u32, seq u64, line u64, length u64
/// (little-endian), then the bytes.
const HEADER: usize = 8 + 1 + 4 + 8 + 8 + 8;

fn write_rec(w: &mut impl Write, m: &Meta, b: &[u8]) -> io::Result<()> {
    let mut h = [0u8; HEADER];
    h[0..8].copy_from_slice(&m.time.to_le_bytes());
    h[8] = m.rank;
    h[9..13].copy_from_slice(&m.file.to_le_bytes());
    h[13..21].copy_from_slice(&m.seq.to_le_bytes());
    h[21..29].copy_from_slice(&m.line.to_le_bytes());
    h[29..37].copy_from_slice(&(b.len() as u64).to_le_bytes());
    w.write_all(&h)?;
    w.write_all(b)
}

/// One run being merged: its next record.
struct RunReader {
    r: BufReader<File>,
    meta: Meta,
    bytes: Vec<u8>,
}

impl RunReader {
    /// Read the next record; false at the end of the run.
    fn advance(&mut self) -> io::Result<bool> {
        let mut h = [0u8; HEADER];
        // End of run: no byte of a header.
        let mut got = 0;
        while got < HEADER {
            let n = self.r.read(h.get_mut(got..).unwrap_or_default())?;
            if n == 0 {
                break;
            }
            got += n;
        }
        if got == 0 {
            return Ok(false);
        }
        if got < HEADER {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "a run ends inside a record",
            ));
        }
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(h.get(i..i + 8).unwrap_or(&[0; 8]));
            u64::from_le_bytes(a)
        };
        let mut f4 = [0u8; 4];
        f4.copy_from_slice(h.get(9..13).unwrap_or(&[0; 4]));
        self.meta = Meta {
            time: u64_at(0) as i64,
            rank: h[8],
            file: u32::from_le_bytes(f4),
            seq: u64_at(13),
            line: u64_at(21),
        };
        let len = usize::try_from(u64_at(29)).map_err(io::Error::other)?;
        self.bytes.clear();
        self.bytes.resize(len, 0);
        self.r.read_exact(&mut self.bytes)?;
        Ok(true)
    }
}

/// k-way merge of sorted runs by (time, rank, seq), skipping the records of
/// the files marked in `skip`.
fn merge(
    runs: &[PathBuf],
    read_buf: usize,
    skip: &[bool],
    spill: &Spill,
    mut each: impl FnMut(&Meta, &[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut readers = Vec::with_capacity(runs.len());
    let mut heap = BinaryHeap::with_capacity(runs.len());
    for p in runs {
        let f = File::open(p).map_err(|e| spill.err(e))?;
        let mut r = RunReader {
            r: BufReader::with_capacity(read_buf, f),
            meta: Meta::default(),
            bytes: Vec::new(),
        };
        if r.advance().map_err(|e| spill.err(e))? {
            heap.push(Reverse((r.meta.key(), readers.len())));
        }
        readers.push(r);
    }
    while let Some(Reverse((_, i))) = heap.pop() {
        let Some(r) = readers.get_mut(i) else { break };
        if !skip.get(r.meta.file as usize).copied().unwrap_or(false) {
            each(&r.meta, &r.bytes)?;
        }
        if r.advance().map_err(|e| spill.err(e))? {
            heap.push(Reverse((r.meta.key(), i)));
        }
    }
    Ok(())
}

/// How the budget is shared: the input sorter's buffer, the output sorter's
/// buffer, and each run's read buffer while merging. The rest (a quarter and
/// more) is left for the enricher's state, the lookahead, the file being
/// read (a non-NDJSON document is read whole) and the allocator.
fn shares(memory: u64) -> (usize, usize, usize) {
    let m = usize::try_from(memory).unwrap_or(usize::MAX);
    let sort = m / 8 * 3;
    let read_buf = (m / 4 / FAN_IN / 2).clamp(4 << 10, 1 << 20);
    (sort, sort, read_buf)
}

/// Read one file (or stdin) and give each record to `each(bytes, line)`.
/// NDJSON is read line by line; any other shape is read whole and cut by
/// `input::split` (a damaged document is noted). The outer error is
/// `each`'s (the spill directory), the inner one reading the input.
fn read_records(
    run: &mut Run,
    f: &Path,
    bytes_in: &mut u64,
    mut each: impl FnMut(&Run, &[u8], u64) -> io::Result<()>,
) -> io::Result<io::Result<()>> {
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
            flate2::read::MultiGzDecoder::new(chained),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 16, chained))
    };
    // The head: through the second non-blank line and HEAD_BYTES past the
    // first non-blank byte (input::starts_ndjson), or the whole input.
    let mut head = Vec::new();
    let mut nonblank = 0;
    let mut first_at: Option<usize> = None;
    let mut eof = false;
    loop {
        let start = head.len();
        match super::read_line_capped(&mut r, &mut head, run.max_document) {
            Ok((0, _)) => {
                eof = true;
                break;
            }
            Ok((_, false)) => {}
            Ok((_, true)) => return Ok(Err(super::too_large(run.max_document))),
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
    // Binary data is named once and nothing of it is read as records (as in
    // stream order).
    if super::looks_binary(&head) {
        return Ok(Err(super::not_text(magic == [0x1f, 0x8b])));
    }
    if !eof && !credlineage::input::starts_ndjson(&head) {
        if let Err(e) = super::read_to_end_capped(&mut r, &mut head, run.max_document) {
            return Ok(Err(e));
        }
        eof = true;
    }
    if eof {
        *bytes_in += head.len() as u64;
        let split = credlineage::input::split(&head);
        for p in &split.pieces {
            each(run, &p.bytes, p.line)?;
        }
        if let Some(d) = &split.damage {
            note_damage(run, f, d);
        }
        return Ok(Ok(()));
    }
    // NDJSON: line by line.
    let mut n = 0u64;
    let max_line = usize::try_from(run.max_line).unwrap_or(usize::MAX);
    let mut one = |run: &mut Run, line: &[u8], n: u64| -> io::Result<()> {
        let l = line.strip_suffix(b"\n").unwrap_or(line);
        if super::trim_line(l).len() > max_line {
            super::long_line(run, f, n);
            return Ok(());
        }
        let mut pieces = Vec::new();
        credlineage::input::ndjson_line(l, n, &mut pieces);
        for p in &pieces {
            each(run, &p.bytes, p.line)?;
        }
        Ok(())
    };
    *bytes_in += head.len() as u64;
    let mut rest = head.as_slice();
    while !rest.is_empty() {
        let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
        let (line, tail) = rest.split_at(end);
        n += 1;
        one(run, line, n)?;
        rest = tail;
    }
    let mut line = Vec::new();
    loop {
        line.clear();
        match super::read_line_capped(&mut r, &mut line, run.max_line.saturating_add(2)) {
            Ok((0, _)) => return Ok(Ok(())),
            Ok((k, cut)) => {
                *bytes_in += k;
                n += 1;
                if cut {
                    super::long_line(run, f, n);
                    continue;
                }
            }
            Err(e) => return Ok(Err(e)),
        }
        one(run, &line, n)?;
    }
}

/// What a batch run starts from: the configuration, the snapshot the state
/// was restored from (pass 1 starts from it too) and the memory budget.
pub struct Setup<'a> {
    pub config: &'a Config,
    pub state: Option<&'a [u8]>,
    pub budget: &'a Budget,
}

/// Time order in bounded memory: see the module documentation. Errors of
/// the spill directory carry a [`SpillError`]; any other is the output's.
pub fn batch(
    run: &mut Run,
    setup: Setup<'_>,
    files: &[PathBuf],
    out: &mut dyn Write,
    show: bool,
    bytes_in: &mut u64,
) -> io::Result<()> {
    let Setup {
        config,
        state,
        budget,
    } = setup;
    let (in_limit, out_limit, read_buf) = shares(budget.memory);
    let spill = Spill::new(budget.spill_dir.as_deref());
    let mut input = Sorter::new(in_limit, read_buf);
    // Files that could not be read to their end: their records are left
    // out, as when a file could not be read at all.
    let mut failed = vec![false; files.len()];
    let mut seq = 0u64;
    // The first sequence number of each file: messages number a record
    // from 1 within its file.
    let mut file_start = vec![0u64; files.len()];
    let mut last_time = i64::MIN;
    for (fi, f) in files.iter().enumerate() {
        let (seq0, last0, bytes0) = (seq, last_time, *bytes_in);
        if let Some(s) = file_start.get_mut(fi) {
            *s = seq0;
        }
        let file = u32::try_from(fi).map_err(io::Error::other)?;
        let res = read_records(run, f, bytes_in, |run, bytes, line| {
            let (t, rank) = run.enricher.peek_order(bytes);
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
            input.push(m, bytes, &spill)
        })?;
        if let Err(e) = res {
            run.bad_file(f, e);
            if let Some(x) = failed.get_mut(fi) {
                *x = true;
            }
            seq = seq0;
            last_time = last0;
            *bytes_in = bytes0;
        }
    }
    input.finish(&spill, &failed)?;
    let pb = progress(Some(seq), show);
    pb.set_prefix("pass 1/2 (learning credentials)");
    // Pass 1: learn every credential set.
    let mut first = Enricher::new(config.clone()).map_err(io::Error::other)?;
    if let Some(s) = state {
        first.restore(s).map_err(io::Error::other)?;
    }
    first.record_lookahead();
    input.for_each(&failed, &spill, |_, bytes| {
        let _ = first.annotate(bytes, None);
        pb.inc(1);
        Ok(())
    })?;
    run.enricher.use_lookahead(first.take_lookahead());
    drop(first);
    pb.set_prefix("pass 2/2 (annotating)");
    pb.set_position(0);
    // Pass 2: annotate; the outputs are sorted back into input order.
    let mut outs = Sorter::new(out_limit, read_buf);
    let mut o = Vec::new();
    input.for_each(&failed, &spill, |m, bytes| {
        o.clear();
        let outcome = run.enricher.process_into(bytes, None, &mut o);
        if let Some(f) = files.get(m.file as usize) {
            let first = file_start.get(m.file as usize).copied().unwrap_or(0);
            run.note(f, m.line, outcome, m.seq.saturating_sub(first) + 1);
        } else if let Outcome::Malformed(_) = outcome {
            run.bad_input += 1;
        }
        pb.inc(1);
        let key = Meta {
            time: 0,
            rank: 0,
            file: 0,
            seq: m.seq,
            line: 0,
        };
        outs.push(key, &o, &spill)
    })?;
    pb.finish_and_clear();
    drop(input);
    outs.finish(&spill, &[])?;
    outs.for_each(&[], &spill, |_, bytes| {
        out.write_all(bytes)?;
        out.write_all(b"\n")
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts() {
        assert_eq!(parse_bytes("64K"), Ok(64 << 10));
        assert_eq!(parse_bytes("512M"), Ok(512 << 20));
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("2g"), Ok(2 << 30));
        assert_eq!(parse_bytes("1000"), Ok(1000));
        assert!(parse_bytes("12X").is_err());
        assert!(parse_bytes("M").is_err());
        assert!(parse_bytes("99999999999T").is_err());
    }
}
