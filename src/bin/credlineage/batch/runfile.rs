//! Run files written past the page cache: on Linux, batch mode's sorted runs are written with `O_DIRECT` in aligned blocks, so writing them costs a copy into our own buffer instead of the kernel's page-cache copy (BENCHMARKS.md: on this machine a buffered write of the 10M-record trail's 3.9 GB of runs cost 9.4 s of system CPU, more than any other stage). Elsewhere, or where the file system refuses `O_DIRECT` (tmpfs), an ordinary buffered file.
//!
//! The runs are read back with ordinary buffered reads (the kernel reads
//! ahead; what was written directly is not in the page cache, so nothing is
//! read stale). Only writing goes direct.

use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::path::Path;

/// The alignment `O_DIRECT` needs of the buffer's address, each write's
/// length and the file offset: the logical block size, at most 4096 on the
/// devices Linux supports for it.
const ALIGN: usize = 4096;

/// Bytes gathered before each write.
const BLOCK: usize = 1 << 20;

/// A run file being written: whole aligned blocks with `O_DIRECT`, the
/// last one padded and the file then cut to its length by
/// [`finish`](RunFile::finish), which must be called (dropping a `RunFile`
/// loses what is still buffered).
pub(super) struct RunFile {
    f: File,
    direct: bool,
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
        let (f, direct) = open(path, direct)?;
        let buf = vec![0u8; BLOCK + ALIGN];
        let at = buf.as_ptr().align_offset(ALIGN).min(ALIGN);
        Ok(RunFile {
            f,
            direct,
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
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path_of(&self.f)?)?;
                std::io::Seek::seek(&mut f, io::SeekFrom::Start(self.written))?;
                self.f = f;
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

/// `EINVAL`: what Linux answers to a direct write it cannot align.
const EINVAL: i32 = 22;

/// Open for writing, with `O_DIRECT` where the system and file system
/// allow it.
fn open(path: &Path, direct: bool) -> io::Result<(File, bool)> {
    #[cfg(target_os = "linux")]
    if direct {
        use std::os::unix::fs::OpenOptionsExt;
        if let Ok(f) = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
        {
            return Ok((f, true));
        }
    }
    let _ = direct;
    Ok((File::create(path)?, false))
}

/// The path of an open file, to open it again without `O_DIRECT`.
fn path_of(f: &File) -> io::Result<std::path::PathBuf> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        std::fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd()))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = f;
        Err(io::Error::other("reopen"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

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
