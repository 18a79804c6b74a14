//! Batch mode (`--order time`) in bounded memory: each record's JSON read once into its packed facts, an external merge sort of the facts by (event time, rank, input position), both passes run on the facts, and each record's patch spliced into it on a second read, in input order (docs/batch.md).
//!
//! Records are read file by file (NDJSON line by line, so one file is never
//! held whole; any other shape, an S3 delivery file for one, is read whole
//! and cut by `input::split`); worker threads read each record once
//! (`Enricher::facts`: its view packed, its sort key) and a collector puts
//! the facts, in input order, into a buffer of at most a share of
//! `--batch-memory`. A full buffer's keys are sorted and the facts written
//! to the spill directory as a run. Pass 1 (learning every credential set)
//! and pass 2 (annotating, on its own thread) each merge the runs on a
//! further thread; pass 2's patches (the packed annotation and where it
//! goes) reach the output thread in input order, through a reorder buffer
//! or, for input far out of time order, a second sorter keyed by input
//! position; the output thread applies them to the records read again
//! (from memory when they fit, from the files, or from a copy in the spill
//! directory for stdin). When everything fits the buffers nothing is
//! written to disk and the result is the same bytes (the in-memory fast
//! path).

use credlineage::{Config, Enricher, Outcome};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IoSlice, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

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
                " (batch mode writes about half the input's size there, 1.5 times for \
                 stdin: free space, choose another directory with --spill-dir, or use \
                 --order stream)"
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
    dir: std::sync::OnceLock<tempfile::TempDir>,
    next: std::sync::atomic::AtomicU64,
}

impl Spill {
    fn new(base: Option<&Path>) -> Self {
        Spill {
            base: base.map_or_else(std::env::temp_dir, Path::to_path_buf),
            dir: std::sync::OnceLock::new(),
            next: std::sync::atomic::AtomicU64::new(0),
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
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = dir.path().join(format!("run-{n}"));
        let f = File::create(&p).map_err(|e| self.err(e))?;
        Ok((p, f))
    }
}

/// Records a reading chunk holds before it goes to a peeking worker.
const CHUNK: usize = 1 << 20;

/// The capacity of a chunk's facts buffer (the facts of a record are a
/// fraction of its bytes); the sorter keeps buffers of at least this size
/// for the next run.
const FACTS_CHUNK: usize = CHUNK / 2;

/// Chunks in flight between the reader, the workers and the collector.
const IN_FLIGHT: usize = 8;

/// Bytes of sorted records a merging thread hands over at once.
const BLOCK: usize = 1 << 20;

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

/// A buffered record: its key and where its bytes are (buffer, start, end).
#[derive(Clone, Copy)]
struct Ent {
    meta: Meta,
    buf: u32,
    start: u32,
    end: u32,
}

/// Whether the records of `file` are left out.
fn skipped(skip: &[bool], file: u32) -> bool {
    skip.get(file as usize).copied().unwrap_or(false)
}

/// Wrap an error of the spill directory `dir` so the command names it.
fn spill_err(dir: &Path, err: io::Error) -> io::Error {
    io::Error::new(
        err.kind(),
        SpillError {
            dir: dir.to_path_buf(),
            err,
        },
    )
}

/// A stage of the pipeline stopped because another one failed (its own
/// error is the one reported).
fn stopped() -> io::Error {
    io::Error::other(Stopped)
}

/// The error of [`stopped`].
#[derive(Debug)]
struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("batch pipeline stopped")
    }
}

impl std::error::Error for Stopped {}

fn is_stopped(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|r| r.is::<Stopped>())
}

/// An external sorter of records by (time, rank, seq): a buffer of at most
/// `limit` bytes, sorted and spilled as a run when full.
struct Sorter {
    /// The records' bytes: chunks taken over from the reader, or filled by
    /// [`push`](Self::push).
    bufs: Vec<Vec<u8>>,
    /// Bytes in `bufs`.
    bytes: usize,
    /// Emptied buffers of the last spill, used again (not freed and faulted
    /// in anew).
    pool: Vec<Vec<u8>>,
    ents: Vec<Ent>,
    limit: usize,
    runs: Vec<PathBuf>,
    /// Read buffer of each run while merging.
    read_buf: usize,
}

impl Sorter {
    fn new(limit: usize, read_buf: usize) -> Self {
        Sorter {
            bufs: Vec::new(),
            bytes: 0,
            pool: Vec::new(),
            ents: Vec::new(),
            limit: limit.max(1),
            runs: Vec::new(),
            read_buf,
        }
    }

    fn used(&self) -> usize {
        self.bytes + self.ents.len() * ENTRY_COST
    }

    /// The bytes of a buffered record.
    fn get(&self, e: &Ent) -> &[u8] {
        self.bufs
            .get(e.buf as usize)
            .and_then(|b| b.get(e.start as usize..e.end as usize))
            .unwrap_or_default()
    }

    /// Add one record (its bytes copied).
    fn push(&mut self, meta: Meta, bytes: &[u8], spill: &Spill) -> io::Result<()> {
        let cost = bytes.len() + ENTRY_COST;
        if !self.ents.is_empty() && self.used() + cost > self.limit {
            self.spill_buffer(spill)?;
        }
        let fits = self.bufs.last().is_some_and(|b| {
            b.capacity() - b.len() >= bytes.len() && b.len() + bytes.len() <= u32::MAX as usize
        });
        if !fits {
            // Buffers of 1 MiB (or the record), within the limit.
            let cap = bytes.len().max((1 << 20).min(self.limit));
            let b = match self.pool.pop() {
                Some(b) if b.capacity() >= cap => b,
                _ => Vec::with_capacity(cap),
            };
            // (A pooled buffer too small for this record is dropped.)
            self.bufs.push(b);
        }
        let buf = self.bufs.len() - 1;
        let Some(b) = self.bufs.last_mut() else {
            return Ok(());
        };
        let start = b.len();
        b.extend_from_slice(bytes);
        self.bytes += bytes.len();
        self.ents.push(Ent {
            meta,
            buf: u32::try_from(buf).map_err(io::Error::other)?,
            start: u32::try_from(start).map_err(io::Error::other)?,
            end: u32::try_from(b.len()).map_err(io::Error::other)?,
        });
        Ok(())
    }

    /// Take over a chunk of records (`items`: each one's key, start and end
    /// in `data`) without copying them (a mostly empty chunk, the end of a
    /// small file, is copied and left to its owner); spills first when they
    /// would not fit.
    fn adopt(
        &mut self,
        data: &mut Vec<u8>,
        items: impl Iterator<Item = (Meta, usize, usize)>,
        n: usize,
        spill: &Spill,
    ) -> io::Result<()> {
        if !self.ents.is_empty() && self.used() + data.capacity() + n * ENTRY_COST > self.limit {
            self.spill_buffer(spill)?;
        }
        let buf = u32::try_from(self.bufs.len()).map_err(io::Error::other)?;
        for (meta, start, end) in items {
            self.ents.push(Ent {
                meta,
                buf,
                start: u32::try_from(start).map_err(io::Error::other)?,
                end: u32::try_from(end).map_err(io::Error::other)?,
            });
        }
        let data = if data.capacity() > data.len() * 2 + (4 << 10) {
            data.to_vec()
        } else {
            std::mem::take(data)
        };
        self.bytes += data.capacity();
        self.bufs.push(data);
        Ok(())
    }

    /// Sort the buffer and write it out as a run.
    fn spill_buffer(&mut self, spill: &Spill) -> io::Result<()> {
        self.ents.sort_unstable_by_key(|e| e.meta.key());
        let (path, mut f) = spill.create()?;
        // Written straight from the buffers, 512 records a system call.
        let mut heads = Vec::with_capacity(512);
        for group in self.ents.chunks(512) {
            heads.clear();
            heads.extend(
                group
                    .iter()
                    .map(|e| header(&e.meta, (e.end - e.start) as usize)),
            );
            let mut slices = Vec::with_capacity(group.len() * 2);
            for (e, h) in group.iter().zip(&heads) {
                slices.push(IoSlice::new(h));
                slices.push(IoSlice::new(self.get(e)));
            }
            write_all_vectored(&mut f, &mut slices).map_err(|e| spill.err(e))?;
        }
        drop(f);
        self.runs.push(path);
        self.ents.clear();
        // Full-size buffers are kept for the next run; odd sizes (the ends
        // of small files, copied) are freed.
        for mut b in self.bufs.drain(..) {
            if b.capacity() >= FACTS_CHUNK {
                b.clear();
                self.pool.push(b);
            }
        }
        self.bytes = 0;
        Ok(())
    }

    /// Done adding: sort what is buffered, or, when runs were spilled,
    /// spill it too and merge the runs down to at most [`FAN_IN`].
    fn finish(&mut self, spill: &Spill, skip: &[bool]) -> io::Result<()> {
        if self.runs.is_empty() {
            self.ents.sort_unstable_by_key(|e| e.meta.key());
            return Ok(());
        }
        if !self.ents.is_empty() {
            self.spill_buffer(spill)?;
        }
        self.bufs = Vec::new();
        self.pool = Vec::new();
        self.ents = Vec::new();
        while self.runs.len() > FAN_IN {
            // Merge only as many as needed to get down to FAN_IN (all the
            // runs are about the same length), so little is rewritten.
            let n = (self.runs.len() - FAN_IN + 1).min(FAN_IN);
            let group: Vec<PathBuf> = self.runs.drain(..n).collect();
            let (path, f) = spill.create()?;
            let mut w = BufWriter::with_capacity(1 << 20, f);
            merge(&group, self.read_buf, skip, &spill.name(), |m, b| {
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

    /// Give `f` every record in key order (after [`finish`](Self::finish)),
    /// but those of the files marked in `skip`, to pull one at a time. Runs
    /// on disk are merged by a second thread, which hands the records over
    /// in blocks, so reading and merging overlap `f`'s work. Can be called
    /// again.
    fn stream<R>(
        &self,
        skip: &[bool],
        spill: &Spill,
        f: impl FnOnce(&mut Pull<'_>) -> io::Result<R>,
    ) -> io::Result<R> {
        if self.runs.is_empty() {
            return f(&mut Pull::Mem {
                s: self,
                skip,
                i: 0,
            });
        }
        let dir = spill.name();
        let runs = &self.runs;
        let read_buf = self.read_buf;
        std::thread::scope(|sc| {
            let (tx, rx) = mpsc::sync_channel::<Block>(4);
            let (back, back_rx) = mpsc::channel::<Block>();
            let merger = sc.spawn(move || -> io::Result<()> {
                let mut block = Block::default();
                merge(runs, read_buf, skip, &dir, |m, b| {
                    block.data.extend_from_slice(b);
                    block.items.push((*m, block.data.len()));
                    if block.data.len() >= BLOCK {
                        let mut next = back_rx.try_recv().unwrap_or_default();
                        next.data.clear();
                        next.items.clear();
                        tx.send(std::mem::replace(&mut block, next))
                            .map_err(|_| stopped())?;
                    }
                    Ok(())
                })?;
                if !block.items.is_empty() {
                    tx.send(block).map_err(|_| stopped())?;
                }
                Ok(())
            });
            let mut pull = Pull::Chan {
                rx,
                back,
                cur: Block::default(),
                i: 0,
            };
            let r = f(&mut pull);
            drop(pull);
            let merged = merger
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the merging thread panicked")));
            let v = r?;
            merged.map(|()| v)
        })
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

/// Merged records handed from the merging thread: their bytes one after
/// the other, and each one's key and end.
#[derive(Default)]
struct Block {
    data: Vec<u8>,
    items: Vec<(Meta, usize)>,
}

/// Sorted records, pulled one at a time ([`Sorter::stream`]).
enum Pull<'a> {
    /// The in-memory buffer (nothing was spilled).
    Mem {
        s: &'a Sorter,
        skip: &'a [bool],
        i: usize,
    },
    /// Blocks from the merging thread; used blocks go back to it.
    Chan {
        rx: mpsc::Receiver<Block>,
        back: mpsc::Sender<Block>,
        cur: Block,
        i: usize,
    },
}

impl Pull<'_> {
    /// The next record; `None` at the end (or when the merging thread
    /// failed: its error comes out of [`Sorter::stream`]).
    fn next(&mut self) -> Option<(Meta, &[u8])> {
        match self {
            Pull::Mem { s, skip, i } => loop {
                let e = s.ents.get(*i)?;
                *i += 1;
                if skipped(skip, e.meta.file) {
                    continue;
                }
                return Some((e.meta, s.get(e)));
            },
            Pull::Chan { rx, back, cur, i } => {
                while *i >= cur.items.len() {
                    let next = rx.recv().ok()?;
                    let used = std::mem::replace(cur, next);
                    let _ = back.send(used);
                    *i = 0;
                }
                let (m, end) = *cur.items.get(*i)?;
                let start = match i.checked_sub(1) {
                    Some(j) => cur.items.get(j).map_or(0, |x| x.1),
                    None => 0,
                };
                *i += 1;
                Some((m, cur.data.get(start..end).unwrap_or_default()))
            }
        }
    }
}

/// Run record: time i64, rank u8, file u32, seq u64, line u64, length u64
/// (little-endian), then the bytes.
const HEADER: usize = 8 + 1 + 4 + 8 + 8 + 8;

fn header(m: &Meta, len: usize) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[0..8].copy_from_slice(&m.time.to_le_bytes());
    h[8] = m.rank;
    h[9..13].copy_from_slice(&m.file.to_le_bytes());
    h[13..21].copy_from_slice(&m.seq.to_le_bytes());
    h[21..29].copy_from_slice(&m.line.to_le_bytes());
    h[29..37].copy_from_slice(&(len as u64).to_le_bytes());
    h
}

fn write_rec(w: &mut impl Write, m: &Meta, b: &[u8]) -> io::Result<()> {
    w.write_all(&header(m, b.len()))?;
    w.write_all(b)
}

/// Write every slice (`write_all` for vectored writes).
fn write_all_vectored(w: &mut impl Write, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !slices.is_empty() {
        match w.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Little-endian u64 at `i` of `b` (0 past its end).
fn u64_at(b: &[u8], i: usize) -> u64 {
    b.get(i..i + 8)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .map_or(0, u64::from_le_bytes)
}

/// One run being merged: a large read buffer and its current record, which
/// is handed out in place (no copy).
struct RunReader {
    f: File,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    rec: (usize, usize),
    meta: Meta,
}

impl RunReader {
    fn open(p: &Path, cap: usize) -> io::Result<Self> {
        Ok(RunReader {
            f: File::open(p)?,
            buf: vec![0; cap.max(HEADER)],
            pos: 0,
            end: 0,
            rec: (0, 0),
            meta: Meta::default(),
        })
    }

    /// Have at least `need` bytes buffered from `pos`; false at the end of
    /// the run before that.
    fn fill(&mut self, need: usize) -> io::Result<bool> {
        if self.end - self.pos >= need {
            return Ok(true);
        }
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        if need > self.buf.len() {
            self.buf.resize(need, 0);
        }
        while self.end < need {
            let n = match self
                .f
                .read(self.buf.get_mut(self.end..).unwrap_or_default())
            {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if n == 0 {
                return Ok(false);
            }
            self.end += n;
        }
        Ok(true)
    }

    /// Move to the next record; false at the end of the run.
    fn advance(&mut self) -> io::Result<bool> {
        self.pos = self.rec.1;
        let cut = || io::Error::new(io::ErrorKind::UnexpectedEof, "a run ends inside a record");
        if !self.fill(HEADER)? {
            if self.end > self.pos {
                return Err(cut());
            }
            return Ok(false);
        }
        let h = self
            .buf
            .get(self.pos..self.pos + HEADER)
            .unwrap_or_default();
        let file = h
            .get(9..13)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
            .map_or(0, u32::from_le_bytes);
        self.meta = Meta {
            time: u64_at(h, 0) as i64,
            rank: h.get(8).copied().unwrap_or(0),
            file,
            seq: u64_at(h, 13),
            line: u64_at(h, 21),
        };
        let len = usize::try_from(u64_at(h, 29)).map_err(io::Error::other)?;
        if !self.fill(HEADER + len)? {
            return Err(cut());
        }
        self.rec = (self.pos + HEADER, self.pos + HEADER + len);
        Ok(true)
    }

    fn bytes(&self) -> &[u8] {
        self.buf.get(self.rec.0..self.rec.1).unwrap_or_default()
    }
}

/// k-way merge of sorted runs by (time, rank, seq), skipping the records of
/// the files marked in `skip`; errors reading the runs name `dir`.
fn merge(
    runs: &[PathBuf],
    read_buf: usize,
    skip: &[bool],
    dir: &Path,
    mut each: impl FnMut(&Meta, &[u8]) -> io::Result<()>,
) -> io::Result<()> {
    let mut readers = Vec::with_capacity(runs.len());
    let mut heap = BinaryHeap::with_capacity(runs.len());
    for p in runs {
        let mut r = RunReader::open(p, read_buf).map_err(|e| spill_err(dir, e))?;
        if r.advance().map_err(|e| spill_err(dir, e))? {
            heap.push(Reverse((r.meta.key(), readers.len())));
        }
        readers.push(r);
    }
    while let Some(Reverse((_, i))) = heap.pop() {
        let Some(r) = readers.get_mut(i) else { break };
        if !skipped(skip, r.meta.file) {
            each(&r.meta, r.bytes())?;
        }
        if r.advance().map_err(|e| spill_err(dir, e))? {
            heap.push(Reverse((r.meta.key(), i)));
        }
    }
    Ok(())
}

/// How the budget is shared: the input sorter's buffer (5/8, while
/// reading), the output sorter's buffer (5/8 in pass 2, less what the input
/// still holds in memory when nothing was spilled), and each run's read
/// buffer while merging (at most 1/8 in all). The rest is left for the
/// enricher's state, the lookahead, the file being read (a non-NDJSON
/// document is read whole), the reading pipeline's chunks (a few MiB) and
/// the allocator.
fn shares(memory: u64) -> (usize, usize, usize) {
    let m = usize::try_from(memory).unwrap_or(usize::MAX);
    let sort = m / 8 * 5;
    let read_buf = (m / 4 / FAN_IN / 2).clamp(4 << 10, 1 << 20);
    (sort, sort, read_buf)
}

/// Read one file (or stdin) and give each record to `each(bytes, line)`.
/// NDJSON is read line by line, straight from the read buffer; any other
/// shape is read whole and cut by `input::split` (a damaged document and a
/// line over the cap are noted when `notes` is given). `caps`: the line and
/// document caps. The outer error is `each`'s, the inner one reading the
/// input.
fn read_records(
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
        match super::read_line_capped(&mut r, &mut head, max_document) {
            Ok((0, _)) => {
                eof = true;
                break;
            }
            Ok((_, false)) => {}
            Ok((_, true)) => return Ok(Err(super::too_large(max_document))),
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
    if super::looks_binary(&head) {
        return Ok(Err(super::not_text(magic == [0x1f, 0x8b])));
    }
    if !eof && !credlineage::input::starts_ndjson(&head) {
        if let Err(e) = super::read_to_end_capped(&mut r, &mut head, max_document) {
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
        if super::trim_line(l).len() > max_line {
            if let Some(run) = notes.as_deref_mut() {
                super::long_line(run, f, n);
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
                    super::long_line(run, f, n);
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
                            super::long_line(run, f, n);
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
struct Caps {
    line: u64,
    document: u64,
}

impl Caps {
    fn of(run: &Run) -> Caps {
        Caps {
            line: run.max_line,
            document: run.max_document,
        }
    }
}

/// What a batch run starts from: the configuration, the state file the
/// state was restored from (pass 1 starts from it too, read again) and the
/// memory budget.
pub struct Setup<'a> {
    pub config: &'a Config,
    pub state: Option<&'a Path>,
    pub budget: &'a Budget,
}

/// A chunk of records of one file on their way from the reader through a
/// worker (which adds each record's facts and sort key) to the collector
/// (which numbers them and puts their facts into the sorter).
#[derive(Default)]
struct Chunk {
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
    fn reset(&mut self, file: u32) {
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

/// The input records themselves, in input order, for the output at the end
/// (the sorter holds only their facts): kept in memory while they and the
/// sorter's buffer fit its share of the budget; past that, read again from
/// the files when every input is a regular file, else (stdin, a pipe)
/// copied to the spill directory as they are read.
enum Originals {
    /// In memory: the buffers taken over from the reading chunks, and each
    /// record's buffer, start and end.
    Memory {
        bufs: Vec<Vec<u8>>,
        recs: Vec<(u32, u32, u32)>,
        bytes: usize,
        /// The first record of the current file.
        file: usize,
    },
    /// The files are read a second time.
    Reread,
    /// Copied to `path` (each record's length, u64 little-endian, then its
    /// bytes); `len` bytes written so far, the current file's from `file`.
    Spool {
        w: BufWriter<File>,
        path: PathBuf,
        len: u64,
        file: u64,
    },
}

impl Originals {
    /// A new file begins: what [`rollback`](Self::rollback) goes back to.
    fn begin_file(&mut self) {
        match self {
            Originals::Memory { recs, file, .. } => *file = recs.len(),
            Originals::Reread => {}
            Originals::Spool { len, file, .. } => *file = *len,
        }
    }

    /// Forget the records of the file begun last (it failed part way).
    fn rollback(&mut self, spill: &Spill) -> io::Result<()> {
        match self {
            Originals::Memory { recs, file, .. } => recs.truncate(*file),
            Originals::Reread => {}
            Originals::Spool { w, len, file, .. } => {
                w.flush().map_err(|e| spill.err(e))?;
                let f = w.get_mut();
                f.set_len(*file).map_err(|e| spill.err(e))?;
                io::Seek::seek(f, io::SeekFrom::Start(*file)).map_err(|e| spill.err(e))?;
                *len = *file;
            }
        }
        Ok(())
    }

    /// Add the records of a chunk (`recs`: each one's end in `data`).
    fn add(&mut self, data: &mut Vec<u8>, recs: &[(usize, u64)], spill: &Spill) -> io::Result<()> {
        match self {
            Originals::Memory {
                bufs,
                recs: r,
                bytes,
                ..
            } => {
                let buf = u32::try_from(bufs.len()).map_err(io::Error::other)?;
                let mut start = 0;
                for &(end, _) in recs {
                    r.push((
                        buf,
                        u32::try_from(start).map_err(io::Error::other)?,
                        u32::try_from(end).map_err(io::Error::other)?,
                    ));
                    start = end;
                }
                // A mostly empty chunk (the end of a small file) is copied.
                let d = if data.capacity() > data.len() * 2 + (4 << 10) {
                    data.to_vec()
                } else {
                    std::mem::take(data)
                };
                *bytes += d.capacity() + recs.len() * 12;
                bufs.push(d);
            }
            Originals::Reread => {}
            Originals::Spool { w, len, .. } => {
                let mut start = 0;
                for &(end, _) in recs {
                    let b = data.get(start..end).unwrap_or_default();
                    w.write_all(&(b.len() as u64).to_le_bytes())
                        .and_then(|()| w.write_all(b))
                        .map_err(|e| spill.err(e))?;
                    *len += 8 + b.len() as u64;
                    start = end;
                }
            }
        }
        Ok(())
    }

    /// Leave memory when the records and the sorter's buffer (`sorter`
    /// bytes) no longer fit `limit`.
    fn fit(
        &mut self,
        sorter: usize,
        limit: usize,
        rereadable: bool,
        spill: &Spill,
    ) -> io::Result<()> {
        let Originals::Memory {
            bufs,
            recs,
            bytes,
            file: file_rec,
        } = self
        else {
            return Ok(());
        };
        if *bytes + sorter <= limit {
            return Ok(());
        }
        if rereadable {
            *self = Originals::Reread;
            return Ok(());
        }
        let (path, f) = spill.create()?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        let (mut len, mut file) = (0u64, 0u64);
        for (i, &(b, s, e)) in recs.iter().enumerate() {
            if i == *file_rec {
                file = len;
            }
            let r = bufs
                .get(b as usize)
                .and_then(|x| x.get(s as usize..e as usize))
                .unwrap_or_default();
            w.write_all(&(r.len() as u64).to_le_bytes())
                .and_then(|()| w.write_all(r))
                .map_err(|e| spill.err(e))?;
            len += 8 + r.len() as u64;
        }
        if *file_rec >= recs.len() {
            file = len;
        }
        *self = Originals::Spool { w, path, len, file };
        Ok(())
    }

    /// Done adding: the copy is flushed.
    fn done(mut self, spill: &Spill) -> io::Result<Self> {
        if let Originals::Spool { w, .. } = &mut self {
            w.flush().map_err(|e| spill.err(e))?;
        }
        Ok(self)
    }
}

impl Drop for Originals {
    fn drop(&mut self) {
        if let Originals::Spool { path, .. } = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// What reading the input leaves: the input sorted (in memory or in runs),
/// the files that failed (their records are left out), each file's first
/// sequence number and the number of records.
struct Sorted {
    input: Sorter,
    originals: Originals,
    spill: Spill,
    failed: Vec<bool>,
    file_start: Vec<u64>,
    records: u64,
}

/// A file's identity for the second read (`Reread`): its length and
/// modification time when first opened.
type FileId = Option<(u64, Option<std::time::SystemTime>)>;

fn file_id(f: &Path) -> FileId {
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
fn read_sorted(
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

/// Pass 2's patches on their way to the output thread, handed over in input
/// order (by sequence number) in blocks: a patch that comes ahead of its
/// turn waits in a reorder buffer of at most `limit` bytes; past that, it
/// and every later one go through an external sorter, merged and handed
/// over at the end.
struct Reorder {
    /// The sequence number handed over next.
    next: u64,
    /// The waiting patches: `pending[i]` is that of `next + i`.
    pending: std::collections::VecDeque<Option<Vec<u8>>>,
    bytes: usize,
    limit: usize,
    pool: Vec<Vec<u8>>,
    sorted: Option<Sorter>,
    block: Block,
    tx: mpsc::SyncSender<Block>,
    back: mpsc::Receiver<Block>,
}

/// What a waiting patch costs besides its bytes.
const SLOT: usize = std::mem::size_of::<Option<Vec<u8>>>();

impl Reorder {
    fn new(limit: usize, tx: mpsc::SyncSender<Block>, back: mpsc::Receiver<Block>) -> Self {
        Reorder {
            next: 0,
            pending: std::collections::VecDeque::new(),
            bytes: 0,
            limit,
            pool: Vec::new(),
            sorted: None,
            block: Block::default(),
            tx,
            back,
        }
    }

    /// Hand one patch over (into the current block).
    fn emit(&mut self, seq: u64, patch: &[u8]) -> io::Result<()> {
        self.block.data.extend_from_slice(patch);
        let m = Meta {
            seq,
            ..Meta::default()
        };
        self.block.items.push((m, self.block.data.len()));
        if self.block.data.len() >= BLOCK {
            self.send()?;
        }
        Ok(())
    }

    fn send(&mut self) -> io::Result<()> {
        let mut next = self.back.try_recv().unwrap_or_default();
        next.data.clear();
        next.items.clear();
        self.tx
            .send(std::mem::replace(&mut self.block, next))
            .map_err(|_| stopped())
    }

    /// The patch of record `seq`.
    fn add(&mut self, seq: u64, patch: &[u8], spill: &Spill, read_buf: usize) -> io::Result<()> {
        if let Some(s) = &mut self.sorted {
            let m = Meta {
                seq,
                ..Meta::default()
            };
            return s.push(m, patch, spill);
        }
        let Some(at) = seq
            .checked_sub(self.next)
            .and_then(|d| usize::try_from(d).ok())
        else {
            return Err(io::Error::other(
                "batch mode lost track of a record (internal error)",
            ));
        };
        if at == 0 {
            self.emit(seq, patch)?;
            self.next += 1;
            self.pending.pop_front();
            while let Some(Some(_)) = self.pending.front() {
                if let Some(Some(p)) = self.pending.pop_front() {
                    self.emit(self.next, &p)?;
                    self.bytes -= p.capacity();
                    self.pool.push(p);
                }
                self.next += 1;
            }
            return Ok(());
        }
        if at >= self.pending.len() {
            self.pending.resize(at + 1, None);
        }
        let mut v = self.pool.pop().unwrap_or_default();
        v.clear();
        v.extend_from_slice(patch);
        self.bytes += v.capacity();
        if let Some(slot) = self.pending.get_mut(at) {
            *slot = Some(v);
        }
        if self.bytes + self.pending.len() * SLOT > self.limit {
            // Too far out of order for the buffer: sort the rest.
            let mut s = Sorter::new(self.limit, read_buf);
            for (i, p) in self.pending.drain(..).enumerate() {
                if let Some(p) = p {
                    let m = Meta {
                        seq: self.next + i as u64,
                        ..Meta::default()
                    };
                    s.push(m, &p, spill)?;
                }
            }
            self.pool = Vec::new();
            self.bytes = 0;
            self.sorted = Some(s);
        }
        Ok(())
    }

    /// Pass 2 is done: hand over what waits.
    fn finish(mut self, spill: &Spill) -> io::Result<()> {
        if let Some(mut s) = self.sorted.take() {
            s.finish(spill, &[])?;
            s.stream(&[], spill, |p| {
                while let Some((m, b)) = p.next() {
                    self.emit(m.seq, b)?;
                }
                Ok(())
            })?;
        }
        if self.pending.iter().any(Option::is_some) {
            return Err(io::Error::other(
                "batch mode lost track of a record (internal error)",
            ));
        }
        if !self.block.items.is_empty() {
            self.send()?;
        }
        Ok(())
    }
}

/// Where the output's records come from, and how they are written.
struct Output<'a> {
    writer: &'a Enricher,
    originals: &'a Originals,
    files: &'a [PathBuf],
    failed: &'a [bool],
    ids: &'a [FileId],
    caps: Caps,
    spill: &'a Spill,
}

/// Records read again for the output: a chunk of one file's records (their
/// bytes one after the other, each one's end), or that the file changed.
#[derive(Default)]
struct Reread {
    file: usize,
    data: Vec<u8>,
    ends: Vec<usize>,
    changed: bool,
}

/// Read the files again (those that did not fail the first time) and send
/// their records in chunks; a file that is not what it was is sent as
/// `changed`, and ends the reading.
fn reread(
    o: &Output<'_>,
    tx: &mpsc::SyncSender<Reread>,
    free: &mpsc::Receiver<Reread>,
) -> io::Result<()> {
    let fresh = |file: usize| {
        let mut c = free.try_recv().unwrap_or_default();
        c.file = file;
        c.data.clear();
        c.ends.clear();
        c.changed = false;
        c
    };
    for (fi, f) in o.files.iter().enumerate() {
        if o.failed.get(fi).copied().unwrap_or(true) {
            continue;
        }
        let mut c = fresh(fi);
        if file_id(f) != o.ids.get(fi).copied().flatten() {
            c.changed = true;
            return tx.send(c).map_err(|_| stopped());
        }
        let mut sink = 0u64;
        let res = read_records(None, o.caps, f, &mut sink, |a, _| {
            c.data.extend_from_slice(a);
            c.ends.push(c.data.len());
            if c.data.len() >= CHUNK {
                let next = fresh(fi);
                tx.send(std::mem::replace(&mut c, next))
                    .map_err(|_| stopped())?;
            }
            Ok(())
        })?;
        c.changed = res.is_err();
        let stop = c.changed;
        tx.send(c).map_err(|_| stopped())?;
        if stop {
            return Ok(());
        }
    }
    Ok(())
}

/// Write the output: each record, in input order, with its patch (pulled
/// from `p`, in the same order) applied; in blocks of about 1 MiB.
fn write_output(out: &mut dyn Write, o: &Output<'_>, p: &mut Pull<'_>) -> io::Result<()> {
    let lost = || io::Error::other("batch mode lost track of a record (internal error)");
    let mut buf: Vec<u8> = Vec::with_capacity(BLOCK + (64 << 10));
    let mut emit = |out: &mut dyn Write, a: &[u8], patch: &[u8]| -> io::Result<bool> {
        if !o.writer.apply_patch(a, patch, &mut buf) {
            return Ok(false);
        }
        buf.push(b'\n');
        if buf.len() >= BLOCK {
            out.write_all(&buf)?;
            buf.clear();
        }
        Ok(true)
    };
    match o.originals {
        Originals::Memory { bufs, recs, .. } => {
            for &(b, s, e) in recs {
                let a = bufs
                    .get(b as usize)
                    .and_then(|x| x.get(s as usize..e as usize))
                    .ok_or_else(lost)?;
                let (_, pp) = p.next().ok_or_else(lost)?;
                if !emit(out, a, pp)? {
                    return Err(lost());
                }
            }
            if p.next().is_some() {
                return Err(lost());
            }
        }
        Originals::Spool { path, .. } => {
            let f = File::open(path).map_err(|e| o.spill.err(e))?;
            let mut r = BufReader::with_capacity(1 << 20, f);
            let mut a = Vec::new();
            let mut len = [0u8; 8];
            while let Some((_, pp)) = p.next() {
                r.read_exact(&mut len).map_err(|e| o.spill.err(e))?;
                let n = usize::try_from(u64::from_le_bytes(len)).map_err(io::Error::other)?;
                a.resize(n, 0);
                r.read_exact(&mut a).map_err(|e| o.spill.err(e))?;
                if !emit(out, &a, pp)? {
                    return Err(lost());
                }
            }
        }
        Originals::Reread => {
            // A second thread reads the files again (decompressing and
            // cutting documents) and hands their records over in chunks of
            // about 1 MiB, while this one applies the patches and writes.
            std::thread::scope(|sc| -> io::Result<()> {
                let (tx, rx) = mpsc::sync_channel::<Reread>(4);
                let (free_tx, free_rx) = mpsc::channel::<Reread>();
                let reader = sc.spawn(move || reread(o, &tx, &free_rx));
                let mut res = Ok(());
                for piece in &rx {
                    let file = o
                        .files
                        .get(piece.file)
                        .map_or(Path::new("-"), |f| f.as_path());
                    if piece.changed {
                        res = Err(changed(file));
                        break;
                    }
                    let mut start = 0;
                    for &end in &piece.ends {
                        let a = piece.data.get(start..end).unwrap_or_default();
                        start = end;
                        let ok = match p.next() {
                            Some((_, pp)) => emit(out, a, pp)?,
                            None => false,
                        };
                        if !ok {
                            res = Err(changed(file));
                            break;
                        }
                    }
                    if res.is_err() {
                        break;
                    }
                    let _ = free_tx.send(piece);
                }
                drop(rx);
                reader
                    .join()
                    .unwrap_or_else(|_| Err(io::Error::other("the reading thread panicked")))?;
                res?;
                if let (Some(_), Some(f)) = (p.next(), o.files.last()) {
                    return Err(changed(f));
                }
                Ok(())
            })?;
        }
    }
    out.write_all(&buf)
}

/// A file read twice (`Originals::Reread`) that did not give the same records
/// the second time.
#[derive(Debug)]
pub struct InputChanged {
    pub path: PathBuf,
}

impl std::fmt::Display for InputChanged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: changed while batch mode was reading it (a spilled batch reads its files twice; \
             keep them unchanged during the run, or use --order stream)",
            self.path.display()
        )
    }
}

impl std::error::Error for InputChanged {}

fn changed(f: &Path) -> io::Error {
    io::Error::other(InputChanged {
        path: f.to_path_buf(),
    })
}

/// Time order in bounded memory: see the module documentation. Errors of
/// the spill directory carry a [`SpillError`], a file that changed between
/// its two reads an [`InputChanged`]; any other is the output's.
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
    let mut ids: Vec<FileId> = vec![None; files.len()];
    let t0 = std::time::Instant::now();
    let tm = std::env::var_os("CREDLINEAGE_BATCH_TIMES").is_some();
    let lap = |what: &str| {
        if tm {
            let cpu = std::fs::read_to_string("/proc/self/stat")
                .ok()
                .and_then(|s| {
                    let f: Vec<&str> = s.rsplit(')').next()?.split_whitespace().collect();
                    Some(f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?)
                })
                .unwrap_or(0.0)
                / 100.0;
            eprintln!(
                "{what}: wall {:.2} cpu {cpu:.2}",
                t0.elapsed().as_secs_f64()
            );
        }
    };
    let Sorted {
        input,
        originals,
        spill,
        failed,
        file_start,
        records,
    } = read_sorted(
        run,
        config,
        files,
        Sorter::new(in_limit, read_buf),
        Spill::new(budget.spill_dir.as_deref()),
        bytes_in,
        &mut ids,
    )?;
    lap("read+sort");
    let pb = progress(Some(records), show);
    pb.set_prefix("pass 1/2 (learning credentials)");
    // Pass 1: learn every credential set, from the facts.
    let mut first = Enricher::new(config.clone()).map_err(io::Error::other)?;
    if let Some(s) = state {
        let f = BufReader::with_capacity(1 << 16, File::open(s)?);
        first.restore_from(f).map_err(io::Error::other)?;
    }
    first.record_lookahead();
    input.stream(&failed, &spill, |p| {
        let mut n = 0u64;
        while let Some((_, facts)) = p.next() {
            first.learn_facts(facts);
            n += 1;
            if n % 4096 == 0 {
                pb.inc(4096);
            }
        }
        Ok(())
    })?;
    lap("pass1");
    run.enricher.use_lookahead(first.take_lookahead());
    drop(first);
    pb.set_prefix("pass 2/2 (annotating)");
    pb.set_position(0);
    let held = match &originals {
        Originals::Memory { bytes, .. } if input.runs.is_empty() => input.used() + bytes,
        Originals::Memory { bytes, .. } => *bytes,
        _ if input.runs.is_empty() => input.used(),
        _ => 0,
    };
    let out_limit = out_limit.saturating_sub(held).max(out_limit / 5);
    let caps = Caps::of(run);
    // (`apply_patch` reads only the configuration: a fresh enricher.)
    let writer = Enricher::new(config.clone()).map_err(io::Error::other)?;
    // Pass 2 (a second thread) annotates from the facts; each record's
    // patch (its annotation and where it goes) is handed over in input
    // order to this thread, which writes the output as it comes: the
    // patches that arrive ahead of their turn wait in a reorder buffer
    // (the input is mostly in time order), and when that outgrows its
    // share of the budget, the rest goes through an external sort by input
    // position and is handed over after pass 2.
    std::thread::scope(|sc| -> io::Result<()> {
        let (tx, rx) = mpsc::sync_channel::<Block>(4);
        let (back, back_rx) = mpsc::channel::<Block>();
        let input = &input;
        let failed = &failed;
        let spill = &spill;
        let file_start = &file_start;
        let pb = &pb;
        let files_ = files;
        let pass2 = sc.spawn(move || -> io::Result<()> {
            let mut order = Reorder::new(out_limit, tx, back_rx);
            let mut patch = Vec::new();
            let mut n = 0u64;
            input.stream(failed, spill, |p| {
                while let Some((m, facts)) = p.next() {
                    patch.clear();
                    let outcome = run.enricher.patch_facts(facts, &mut patch);
                    if let Some(f) = files_.get(m.file as usize) {
                        let first = file_start.get(m.file as usize).copied().unwrap_or(0);
                        run.note(f, m.line, outcome, m.seq.saturating_sub(first) + 1);
                    } else if let Outcome::Malformed(_) = outcome {
                        run.bad_input += 1;
                    }
                    n += 1;
                    if n % 4096 == 0 {
                        pb.inc(4096);
                    }
                    order.add(m.seq, &patch, spill, read_buf)?;
                }
                Ok(())
            })?;
            order.finish(spill)
        });
        let mut p = Pull::Chan {
            rx,
            back,
            cur: Block::default(),
            i: 0,
        };
        let res = write_output(
            out,
            &Output {
                writer: &writer,
                originals: &originals,
                files,
                failed,
                ids: &ids,
                caps,
                spill,
            },
            &mut p,
        );
        drop(p);
        // The error of the stage that failed first: the other one stops.
        let annotated = pass2
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the annotating thread panicked")));
        match (annotated, res) {
            (Err(e), Err(r)) if is_stopped(&e) => Err(r),
            (Err(e), _) => Err(e),
            (Ok(()), r) => r,
        }
    })?;
    pb.finish_and_clear();
    lap("pass2+output");
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
