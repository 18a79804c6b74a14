//! Where batch mode keeps the input records for the output at the end: in memory while they fit, else read again from the files or spooled to the spill directory.

use super::*;

/// The input records themselves, in input order, for the output at the end
/// (the sorter holds only their facts): kept in memory while they and the
/// sorter's buffer fit its share of the budget; past that, read again from
/// the files when every input is a regular file, else (stdin, a pipe)
/// copied to the spill directory as they are read.
pub(super) enum Originals {
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
    pub(super) fn begin_file(&mut self) {
        match self {
            Originals::Memory { recs, file, .. } => *file = recs.len(),
            Originals::Reread => {}
            Originals::Spool { len, file, .. } => *file = *len,
        }
    }

    /// Forget the records of the file begun last (it failed part way).
    pub(super) fn rollback(&mut self, spill: &Spill) -> io::Result<()> {
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
    pub(super) fn add(
        &mut self,
        data: &mut Vec<u8>,
        recs: &[(usize, u64)],
        spill: &Spill,
    ) -> io::Result<()> {
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
    pub(super) fn fit(
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
    pub(super) fn done(mut self, spill: &Spill) -> io::Result<Self> {
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
