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

mod originals;
mod output;
mod read;
mod runfile;
mod sort;
#[cfg(test)]
mod tests;

use self::{
    originals::*,
    output::*,
    read::*,
    runfile::{ALIGN, RunFile, RunRead},
    sort::*,
};

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

    /// A new sorted run, written past the page cache where it can be
    /// ([`RunFile`]).
    fn create_run(&self) -> io::Result<(PathBuf, RunFile)> {
        let p = self.next_path()?;
        let w = RunFile::create(&p).map_err(|e| self.err(e))?;
        Ok((p, w))
    }

    /// A new file.
    fn create(&self) -> io::Result<(PathBuf, File)> {
        let p = self.next_path()?;
        let f = File::create(&p).map_err(|e| self.err(e))?;
        Ok((p, f))
    }

    /// The path of the next file, the directory created at the first.
    fn next_path(&self) -> io::Result<PathBuf> {
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
        Ok(dir.path().join(format!("run-{n}")))
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

/// What a batch run starts from: the configuration, the state file the
/// state was restored from (pass 1 starts from it too, read again) and the
/// memory budget.
pub struct Setup<'a> {
    pub config: &'a Config,
    pub state: Option<&'a Path>,
    pub budget: &'a Budget,
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
