//! The external sorter of batch mode: a bounded buffer of packed facts sorted and spilled as runs, the run file format and its reader, and the k-way merge of runs by (time, rank, input position).

use super::*;

/// An external sorter of records by (time, rank, seq): a buffer of at most
/// `limit` bytes, sorted and spilled as a run when full.
pub(super) struct Sorter {
    /// The records' bytes: chunks taken over from the reader, or filled by
    /// [`push`](Self::push).
    bufs: Vec<Vec<u8>>,
    /// Bytes in `bufs`.
    bytes: usize,
    /// Emptied buffers of the last spill, used again (not freed and faulted
    /// in anew).
    pub(super) pool: Vec<Vec<u8>>,
    ents: Vec<Ent>,
    pub(super) limit: usize,
    pub(super) runs: Vec<PathBuf>,
    /// Read buffer of each run while merging.
    read_buf: usize,
}

impl Sorter {
    pub(super) fn new(limit: usize, read_buf: usize) -> Self {
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

    pub(super) fn used(&self) -> usize {
        self.bytes + self.ents.len() * ENTRY_COST
    }

    /// The bytes of a buffered record.
    pub(super) fn get(&self, e: &Ent) -> &[u8] {
        self.bufs
            .get(e.buf as usize)
            .and_then(|b| b.get(e.start as usize..e.end as usize))
            .unwrap_or_default()
    }

    /// Add one record (its bytes copied).
    pub(super) fn push(&mut self, meta: Meta, bytes: &[u8], spill: &Spill) -> io::Result<()> {
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
    pub(super) fn adopt(
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
    pub(super) fn spill_buffer(&mut self, spill: &Spill) -> io::Result<()> {
        self.ents.sort_unstable_by_key(|e| e.meta.key());
        let (path, mut f) = spill.create_run()?;
        // Gathered straight from the buffers into the run's blocks.
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
        f.finish().map_err(|e| spill.err(e))?;
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
    pub(super) fn finish(&mut self, spill: &Spill, skip: &[bool]) -> io::Result<()> {
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
            let (path, mut w) = spill.create_run()?;
            merge(&group, self.read_buf, skip, &spill.name(), |m, b| {
                write_rec(&mut w, m, b)
            })?;
            w.finish().map_err(|e| spill.err(e))?;
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
    pub(super) fn stream<R>(
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
pub(super) struct Block {
    pub(super) data: Vec<u8>,
    pub(super) items: Vec<(Meta, usize)>,
}

/// Sorted records, pulled one at a time ([`Sorter::stream`]).
pub(super) enum Pull<'a> {
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
    pub(super) fn next(&mut self) -> Option<(Meta, &[u8])> {
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
pub(super) const HEADER: usize = 8 + 1 + 4 + 8 + 8 + 8;

pub(super) fn header(m: &Meta, len: usize) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[0..8].copy_from_slice(&m.time.to_le_bytes());
    h[8] = m.rank;
    h[9..13].copy_from_slice(&m.file.to_le_bytes());
    h[13..21].copy_from_slice(&m.seq.to_le_bytes());
    h[21..29].copy_from_slice(&m.line.to_le_bytes());
    h[29..37].copy_from_slice(&(len as u64).to_le_bytes());
    h
}

pub(super) fn write_rec(w: &mut impl Write, m: &Meta, b: &[u8]) -> io::Result<()> {
    w.write_all(&header(m, b.len()))?;
    w.write_all(b)
}

/// Write every slice (`write_all` for vectored writes).
pub(super) fn write_all_vectored(
    w: &mut impl Write,
    mut slices: &mut [IoSlice<'_>],
) -> io::Result<()> {
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
pub(super) fn u64_at(b: &[u8], i: usize) -> u64 {
    b.get(i..i + 8)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .map_or(0, u64::from_le_bytes)
}

/// One run being merged: a large read buffer and its current record, which
/// is handed out in place (no copy). Read past the page cache where the
/// system allows ([`RunRead`]): the runs are written that way too, and
/// each is read once per pass.
pub(super) struct RunReader {
    f: RunRead,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    rec: (usize, usize),
    pub(super) meta: Meta,
}

impl RunReader {
    pub(super) fn open(p: &Path, cap: usize) -> io::Result<Self> {
        Self::open_with(p, cap, true)
    }

    /// [`open`](Self::open), trying `O_DIRECT` only when `direct` (the
    /// tests read both ways).
    pub(super) fn open_with(p: &Path, cap: usize, direct: bool) -> io::Result<Self> {
        Ok(RunReader {
            f: RunRead::open(p, direct)?,
            buf: vec![0; cap.max(HEADER) + 2 * ALIGN],
            pos: 0,
            end: 0,
            rec: (0, 0),
            meta: Meta::default(),
        })
    }

    /// Have at least `need` bytes buffered from `pos`; false at the end of
    /// the run before that.
    pub(super) fn fill(&mut self, need: usize) -> io::Result<bool> {
        if self.end - self.pos >= need {
            return Ok(true);
        }
        // What is left moves to just before an aligned offset, where the
        // next read lands (direct reads need aligned addresses); into a
        // larger buffer (aligned anew) when a record does not fit.
        let left = self.end - self.pos;
        let pad = (ALIGN - left % ALIGN) % ALIGN;
        let base = self.buf.as_ptr().align_offset(ALIGN).min(ALIGN);
        if base + pad + need + ALIGN <= self.buf.len() {
            let to = base + pad;
            self.buf.copy_within(self.pos..self.end, to);
            self.pos = to;
        } else {
            let mut b = vec![0; need + 4 * ALIGN];
            let to = b.as_ptr().align_offset(ALIGN).min(ALIGN) + pad;
            if let (Some(dst), Some(src)) =
                (b.get_mut(to..to + left), self.buf.get(self.pos..self.end))
            {
                dst.copy_from_slice(src);
            }
            self.buf = b;
            self.pos = to;
        }
        self.end = self.pos + left;
        while self.end - self.pos < need {
            // Whole aligned blocks (the end of the file may come short).
            let room = (self.buf.len() - self.end) / ALIGN * ALIGN;
            let dst = self
                .buf
                .get_mut(self.end..self.end + room)
                .unwrap_or_default();
            let n = match self.f.read(dst) {
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
    pub(super) fn advance(&mut self) -> io::Result<bool> {
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

    pub(super) fn bytes(&self) -> &[u8] {
        self.buf.get(self.rec.0..self.rec.1).unwrap_or_default()
    }
}

/// k-way merge of sorted runs by (time, rank, seq), skipping the records of
/// the files marked in `skip`; errors reading the runs name `dir`.
pub(super) fn merge(
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
