//! Batch mode's output: pass 2's patches put back in input order (reorder buffer or a second sorter), the records read again, and each patch spliced into its record.

use super::*;

/// Pass 2's patches on their way to the output thread, handed over in input
/// order (by sequence number) in blocks: a patch that comes ahead of its
/// turn waits in a reorder buffer of at most `limit` bytes; past that, it
/// and every later one go through an external sorter, merged and handed
/// over at the end.
pub(super) struct Reorder {
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
pub(super) const SLOT: usize = std::mem::size_of::<Option<Vec<u8>>>();

impl Reorder {
    pub(super) fn new(
        limit: usize,
        tx: mpsc::SyncSender<Block>,
        back: mpsc::Receiver<Block>,
    ) -> Self {
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
    pub(super) fn emit(&mut self, seq: u64, patch: &[u8]) -> io::Result<()> {
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

    pub(super) fn send(&mut self) -> io::Result<()> {
        let mut next = self.back.try_recv().unwrap_or_default();
        next.data.clear();
        next.items.clear();
        self.tx
            .send(std::mem::replace(&mut self.block, next))
            .map_err(|_| stopped())
    }

    /// The patch of record `seq`.
    pub(super) fn add(
        &mut self,
        seq: u64,
        patch: &[u8],
        spill: &Spill,
        read_buf: usize,
    ) -> io::Result<()> {
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
    pub(super) fn finish(mut self, spill: &Spill) -> io::Result<()> {
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
pub(super) struct Output<'a> {
    pub(super) writer: &'a Enricher,
    pub(super) originals: &'a Originals,
    pub(super) files: &'a [PathBuf],
    pub(super) failed: &'a [bool],
    pub(super) ids: &'a [FileId],
    pub(super) caps: Caps,
    pub(super) spill: &'a Spill,
}

/// Records read again for the output: a chunk of one file's records (their
/// bytes one after the other, each one's end), or that the file changed.
#[derive(Default)]
pub(super) struct Reread {
    file: usize,
    data: Vec<u8>,
    ends: Vec<usize>,
    changed: bool,
}

/// Read the files again (those that did not fail the first time) and send
/// their records in chunks; a file that is not what it was is sent as
/// `changed`, and ends the reading.
pub(super) fn reread(
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
pub(super) fn write_output(
    out: &mut dyn Write,
    o: &Output<'_>,
    p: &mut Pull<'_>,
) -> io::Result<()> {
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
