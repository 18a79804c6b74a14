//! Run files written and read past the page cache: on Linux, batch mode's sorted runs are written and read with `O_DIRECT` in aligned blocks, so moving them costs a copy into our own buffer instead of the kernel's page-cache copy (BENCHMARKS.md: on this machine a buffered write of the 10M-record trail's 3.9 GB of runs cost 9.4 s of system CPU, more than any other stage, and reading them back once evicted as much again). Each run is written once and read once per pass, so the cache gains nothing from holding it. Elsewhere, where a file system refuses `O_DIRECT`, or after the system refuses one direct write or read (`EINVAL`), the same file is written or read buffered from the same offset.

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The alignment `O_DIRECT` needs of the buffer's address, each transfer's
/// length and the file offset: the logical block size, at most 4096 on the
/// devices Linux supports for it.
pub(super) const ALIGN: usize = 4096;

/// Bytes gathered before each write.
const BLOCK: usize = 1 << 20;

/// A run file being written: whole aligned blocks with `O_DIRECT`, the
/// last one padded and the file then cut to its length by
/// [`finish`](RunFile::finish), which must be called (dropping a `RunFile`
/// loses what is still buffered).
pub(super) struct RunFile {
    f: File,
    direct: bool,
    path: PathBuf,
    /// `BLOCK + ALIGN` bytes, the block starting at `at` (aligned).
    buf: Vec<u8>,
    at: usize,
    /// Bytes of the block filled.
    len: usize,
    /// Bytes written to the file before the block.
    written: u64,
}

impl RunFile {
    /// Create (or truncate) `path` for writing.
    pub(super) fn create(path: &Path) -> io::Result<RunFile> {
        Self::create_with(path, true)
    }

    /// [`create`](Self::create), trying `O_DIRECT` only when `direct` (the
    /// tests write both ways).
    pub(super) fn create_with(path: &Path, direct: bool) -> io::Result<RunFile> {
        let mut opts = OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        let (f, direct) = open(&opts, path, direct)?;
        let buf = vec![0u8; BLOCK + ALIGN];
        let at = buf.as_ptr().align_offset(ALIGN).min(ALIGN);
        Ok(RunFile {
            f,
            direct,
            path: path.to_path_buf(),
            buf,
            at,
            len: 0,
            written: 0,
        })
    }

    /// Write the block out: `padded` bytes of it (a multiple of [`ALIGN`]
    /// when direct), of which `len` count.
    fn flush_block(&mut self, padded: usize) -> io::Result<()> {
        let block = self.buf.get(self.at..self.at + padded).unwrap_or_default();
        match self.f.write_all(block) {
            Ok(()) => {}
            // A device or file system with other alignment rules than
            // announced: go on buffered, from the same offset.
            Err(e) if self.direct && e.raw_os_error() == Some(EINVAL) => {
                self.f = reopen(OpenOptions::new().write(true), &self.path, self.written)?;
                self.direct = false;
                let block = self
                    .buf
                    .get(self.at..self.at + self.len)
                    .unwrap_or_default();
                self.f.write_all(block)?;
            }
            Err(e) => return Err(e),
        }
        self.written += self.len as u64;
        self.len = 0;
        Ok(())
    }

    /// Write what is buffered and cut the file to the bytes written (the
    /// last direct block was padded).
    pub(super) fn finish(mut self) -> io::Result<()> {
        if self.len > 0 {
            let padded = if self.direct {
                self.len.div_ceil(ALIGN) * ALIGN
            } else {
                self.len
            };
            // The padding: zeros, cut off below.
            if let Some(pad) = self.buf.get_mut(self.at + self.len..self.at + padded) {
                pad.fill(0);
            }
            self.flush_block(padded)?;
        }
        if self.direct {
            self.f.set_len(self.written)?;
        }
        Ok(())
    }
}

impl Write for RunFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = BLOCK - self.len;
        let n = data.len().min(room);
        if let (Some(dst), Some(src)) = (
            self.buf.get_mut(self.at + self.len..self.at + self.len + n),
            data.get(..n),
        ) {
            dst.copy_from_slice(src);
        }
        self.len += n;
        if self.len == BLOCK {
            self.flush_block(BLOCK)?;
        }
        Ok(n)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let mut total = 0;
        for b in bufs {
            let n = self.write(b)?;
            total += n;
            if n < b.len() {
                break;
            }
        }
        Ok(total)
    }

    /// Nothing: only whole blocks are written before [`RunFile::finish`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A run file being read: with `O_DIRECT` into the caller's aligned
/// buffer (whole blocks at aligned offsets), else, or after a short or
/// refused direct read, buffered from the same offset.
pub(super) struct RunRead {
    f: File,
    direct: bool,
    /// Bytes read so far (the file offset).
    at: u64,
    path: PathBuf,
}

impl RunRead {
    /// Open `path`, trying `O_DIRECT` only when `direct`.
    pub(super) fn open(path: &Path, direct: bool) -> io::Result<RunRead> {
        let (f, direct) = open(OpenOptions::new().read(true), path, direct)?;
        Ok(RunRead {
            f,
            direct,
            at: 0,
            path: path.to_path_buf(),
        })
    }

    /// Read into `dst` (aligned, a multiple of [`ALIGN`] long, when direct).
    pub(super) fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        // A direct read needs an aligned offset: after a short read (only
        // at the end of the file, on the file systems that allow O_DIRECT)
        // go on buffered.
        if self.direct && self.at % ALIGN as u64 != 0 {
            self.buffered()?;
        }
        let n = match self.f.read(dst) {
            Err(e) if self.direct && e.raw_os_error() == Some(EINVAL) => {
                self.buffered()?;
                self.f.read(dst)?
            }
            r => r?,
        };
        self.at += n as u64;
        Ok(n)
    }

    fn buffered(&mut self) -> io::Result<()> {
        self.f = reopen(OpenOptions::new().read(true), &self.path, self.at)?;
        self.direct = false;
        Ok(())
    }
}

/// `EINVAL`: what Linux answers to a direct transfer it cannot align.
const EINVAL: i32 = 22;

/// Open `path` with `opts`, plus `O_DIRECT` when `direct` and the system
/// and file system allow it; says whether it did.
fn open(opts: &OpenOptions, path: &Path, direct: bool) -> io::Result<(File, bool)> {
    #[cfg(target_os = "linux")]
    if direct {
        use std::os::unix::fs::OpenOptionsExt;
        if let Ok(f) = opts.clone().custom_flags(libc::O_DIRECT).open(path) {
            return Ok((f, true));
        }
    }
    let _ = direct;
    Ok((opts.open(path)?, false))
}

/// Open `path` again with `opts`, without `O_DIRECT`, at offset `at`.
fn reopen(opts: &OpenOptions, path: &Path, at: u64) -> io::Result<File> {
    let mut f = opts.open(path)?;
    f.seek(io::SeekFrom::Start(at))?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the sizes of the writes, the file holds exactly the bytes
    /// written: blocks, a padded last block cut back, nothing, one byte.
    #[test]
    fn holds_exactly_what_was_written() {
        for direct in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            for total in [
                0usize,
                1,
                ALIGN - 1,
                ALIGN,
                ALIGN + 1,
                BLOCK - 1,
                BLOCK,
                BLOCK + 7,
                3 * BLOCK + 4099,
            ] {
                let data: Vec<u8> = (0..total).map(|i| (i * 31 % 251) as u8).collect();
                let p = dir.path().join(format!("run-{total}"));
                let mut w = RunFile::create_with(&p, direct).unwrap();
                // Odd-sized pieces, some vectored.
                let mut rest = &data[..];
                let mut k = 1usize;
                while !rest.is_empty() {
                    let n = (k * 977 % 70_001).min(rest.len());
                    let (a, b) = rest.split_at(n);
                    let (a1, a2) = a.split_at(a.len() / 2);
                    let mut slices = [IoSlice::new(a1), IoSlice::new(a2)];
                    crate::batch::write_all_vectored(&mut w, &mut slices).unwrap();
                    rest = b;
                    k += 1;
                }
                w.finish().unwrap();
                let mut got = Vec::new();
                File::open(&p).unwrap().read_to_end(&mut got).unwrap();
                assert!(
                    got == data,
                    "{total} bytes (direct: {direct}): the file differs"
                );
            }
        }
    }
}
