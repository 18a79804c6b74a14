//! Reading opened inputs: line cutting with size caps, oversized lines passed on unchanged, and each line or document through the enricher.
use super::*;

/// One input in streaming order, as [`open_input`] opened it. NDJSON is read
/// line by line, so memory does not grow with the input and each line is
/// written as soon as it is read; a document's records were cut already,
/// which gives the same records either way.
pub(crate) fn stream_file(
    run: &mut Run,
    f: &Path,
    opened: Opened,
    out: &mut dyn Write,
    buf: &mut Vec<u8>,
    pb: &ProgressBar,
    bytes_in: &mut u64,
) -> io::Result<io::Result<()>> {
    let (mut r, line) = match opened {
        Opened::Failed(e) => return Ok(Err(e)),
        Opened::Doc(doc, n) => {
            *bytes_in += n;
            return process_doc(run, f, doc, out, buf, pb).map(Ok);
        }
        Opened::Lines(r, line) => (r, line),
        Opened::Later => match open_input(f, run.max_document, run.window.is_none()) {
            Opened::Lines(r, line) => (r, line),
            other => return stream_file(run, f, other, out, buf, pb, bytes_in),
        },
    };
    *bytes_in += line.len() as u64;
    let max_line = usize::try_from(run.max_line).unwrap_or(usize::MAX);
    let mut lines = Lines::new(run, f, pb, buf);
    if trim_line(&line).len() > max_line {
        lines.too_long();
    } else {
        lines.line(trim_line(&line));
    }
    // Written now: on a live stream the next line may be a long time coming.
    lines.write(out)?;
    let res = for_each_line(&mut r, max_line, |l| match l {
        Piece::Line(l) => {
            lines.line(l);
            Ok(())
        }
        Piece::TooLong => {
            lines.too_long();
            Ok(())
        }
        Piece::Read => lines.write(out).map_err(|e| io::Error::other(Written(e))),
    });
    match res {
        Ok(n) => {
            *bytes_in += n;
            Ok(Ok(()))
        }
        // Writing failed: the outer error; reading the file: the inner one.
        Err(e) => match e.downcast::<Written>() {
            Ok(Written(e)) => Err(e),
            Err(e) => Ok(Err(e)),
        },
    }
}

/// An output error, told apart from the input errors of the same loop.
#[derive(Debug)]
struct Written(io::Error);

impl std::fmt::Display for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Written {}

/// What [`for_each_line`] hands on.
enum Piece<'a> {
    /// A line, without its line ending.
    Line(&'a [u8]),
    /// A line longer than the cap: not kept.
    TooLong,
    /// A buffer-full has been read.
    Read,
}

/// Calls `each(Piece::Line(line))` for every line of `r`, without its line
/// ending, straight from the reader's buffer (a line is copied only when it
/// spans two reads), `each(Piece::TooLong)` instead for a line longer than
/// `cap` (never held whole), and `each(Piece::Read)` after each buffer-full:
/// before the next read, which may block on a live stream, so that is when
/// output is written. Returns the number of bytes read.
fn for_each_line<R: BufRead>(
    r: &mut R,
    cap: usize,
    mut each: impl FnMut(Piece<'_>) -> io::Result<()>,
) -> io::Result<u64> {
    let mut carry = Vec::new();
    // Inside a line over the cap: drop bytes up to its end.
    let mut skipping = false;
    let mut total = 0u64;
    let line = |l: &[u8], each: &mut dyn FnMut(Piece<'_>) -> io::Result<()>| {
        let l = trim_line(l);
        if l.len() > cap {
            each(Piece::TooLong)
        } else {
            each(Piece::Line(l))
        }
    };
    loop {
        let avail = r.fill_buf()?;
        if avail.is_empty() {
            if skipping {
                each(Piece::TooLong)?;
            } else if !carry.is_empty() {
                line(&carry, &mut each)?;
            }
            return each(Piece::Read).map(|()| total);
        }
        let len = avail.len();
        total += len as u64;
        let mut rest = avail;
        if skipping || !carry.is_empty() {
            match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    if skipping {
                        each(Piece::TooLong)?;
                    } else {
                        carry.extend_from_slice(&rest[..i]);
                        line(&carry, &mut each)?;
                    }
                    skipping = false;
                    carry.clear();
                    rest = &rest[i + 1..];
                }
                None if skipping => rest = &[],
                None => rest = carry_all(&mut carry, rest),
            }
        }
        while let Some(i) = memchr::memchr(b'\n', rest) {
            line(&rest[..i], &mut each)?;
            rest = &rest[i + 1..];
        }
        carry_all(&mut carry, rest);
        // `cap + 1`: a trailing `\r` is not part of the line.
        if carry.len() > cap.saturating_add(1) {
            carry = Vec::new();
            skipping = true;
        }
        r.consume(len);
        each(Piece::Read)?;
    }
}

/// Keep an unfinished line for the next read.
fn carry_all<'b>(carry: &mut Vec<u8>, rest: &[u8]) -> &'b [u8] {
    carry.extend_from_slice(rest);
    &[]
}

/// The NDJSON lines of one input, enriched into one output buffer that is
/// written out after each read.
struct Lines<'r> {
    run: &'r mut Run,
    file: &'r Path,
    pb: &'r ProgressBar,
    buf: &'r mut Vec<u8>,
    bad: Vec<(u64, Error)>,
    /// Lines read so far.
    n: u64,
    /// Records read so far (a line may hold several, or none).
    records: u64,
}

impl<'r> Lines<'r> {
    fn new(run: &'r mut Run, file: &'r Path, pb: &'r ProgressBar, buf: &'r mut Vec<u8>) -> Self {
        buf.clear();
        Lines {
            run,
            file,
            pb,
            buf,
            bad: Vec::new(),
            n: 0,
            records: 0,
        }
    }

    /// Enrich one line (without its line ending) into the buffer.
    fn line(&mut self, line: &[u8]) {
        self.n += 1;
        if self.run.window.is_some() {
            let n = self.hold(line);
            self.records += n;
            self.pb.inc(n);
            return;
        }
        let records = enrich_line(&mut self.run.enricher, line, self.buf, &mut self.bad);
        for (i, e) in self.bad.drain(..) {
            if matches!(e, Error::InvalidJson { .. }) {
                self.run.ndjson_hint(self.file, line);
            }
            let index = self.records + i + 1;
            self.run
                .note(self.file, self.n, Outcome::Malformed(e), index);
        }
        self.records += records;
        self.pb.inc(records);
    }

    /// With `--reorder-window`: the line's records (as [`enrich_line`] cuts
    /// them) go to the window; what it releases is enriched into the buffer.
    fn hold(&mut self, line: &[u8]) -> u64 {
        if line.iter().all(u8::is_ascii_whitespace) {
            return 0;
        }
        match credlineage::input::unroll_line(line) {
            Some(pieces) => {
                for (i, p) in pieces.iter().enumerate() {
                    let index = self.records + i as u64 + 1;
                    self.run.hold(self.file, self.n, index, &p.bytes, self.buf);
                }
                pieces.len() as u64
            }
            None => {
                self.run
                    .hold(self.file, self.n, self.records + 1, line, self.buf);
                1
            }
        }
    }

    /// A line over `--max-line-bytes`, skipped.
    fn too_long(&mut self) {
        self.n += 1;
        long_line(self.run, self.file, self.n);
    }

    /// Write what is buffered and flush it (the input is idle or done).
    fn write(&mut self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(self.buf)?;
        self.buf.clear();
        out.flush()
    }
}

/// Enrich one line of an NDJSON stream (without its newline) into `out`: one
/// output line, ending in `\n`, per record — several when the line is an S3
/// delivery file (`{"Records": [...]}`) or a CloudWatch Logs `DATA_MESSAGE`,
/// none when it is blank. The errors of
/// records that could not be read (passed through unchanged) are pushed to
/// `malformed`, each with the record's position in the line (from 0). Returns the number of records written. `enrich` on stdin and
/// `serve` both use it, so they give the same bytes.
pub(crate) fn enrich_line(
    e: &mut Enricher,
    line: &[u8],
    out: &mut Vec<u8>,
    malformed: &mut Vec<(u64, Error)>,
) -> u64 {
    if line.iter().all(u8::is_ascii_whitespace) {
        return 0;
    }
    let mut one = |i: usize, bytes: &[u8]| {
        if let Outcome::Malformed(err) = e.process_into(bytes, None, out) {
            malformed.push((i as u64, err));
        }
        out.push(b'\n');
    };
    if let Some(pieces) = credlineage::input::unroll_line(line) {
        for (i, p) in pieces.iter().enumerate() {
            one(i, &p.bytes);
        }
        return pieces.len() as u64;
    }
    one(0, line);
    1
}

/// `read_until(b'\n')` that keeps at most `cap` bytes of a line: the rest
/// of a longer line is read and dropped. Returns the bytes read (0 at the
/// end) and whether the line was cut.
pub(crate) fn read_line_capped<R: BufRead + ?Sized>(
    r: &mut R,
    buf: &mut Vec<u8>,
    cap: u64,
) -> io::Result<(u64, bool)> {
    let cap = usize::try_from(cap).unwrap_or(usize::MAX);
    let mut total = 0u64;
    let mut cut = false;
    loop {
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok((total, cut));
        }
        let (take, done) = match memchr::memchr(b'\n', avail) {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        let room = cap.saturating_sub(buf.len());
        if !cut && take <= room {
            buf.extend_from_slice(avail.get(..take).unwrap_or_default());
        } else {
            cut = true;
        }
        r.consume(take);
        total += take as u64;
        if done {
            return Ok((total, cut));
        }
    }
}

/// `read_to_end` that refuses to hold more than `cap` bytes in `buf`.
pub(crate) fn read_to_end_capped<R: Read + ?Sized>(
    r: &mut R,
    buf: &mut Vec<u8>,
    cap: u64,
) -> io::Result<()> {
    let left = cap.saturating_sub(buf.len() as u64);
    r.take(left.saturating_add(1)).read_to_end(buf)?;
    if buf.len() as u64 > cap {
        buf.clear();
        buf.shrink_to_fit();
        return Err(too_large(cap));
    }
    Ok(())
}

pub(crate) fn too_large(cap: u64) -> io::Error {
    io::Error::other(format!(
        "larger than --max-document-bytes ({cap} bytes, counted decompressed); skipped, nothing from it written"
    ))
}

/// A line over `--max-line-bytes`: named, counted, skipped.
pub(crate) fn long_line(run: &mut Run, f: &Path, line: u64) {
    run.bad_input += 1;
    if !run.quiet {
        eprintln!(
            "credlineage: {}:{line}: longer than --max-line-bytes ({} bytes); skipped, nothing of it written",
            source_name(f),
            run.max_line
        );
    }
}

pub(crate) fn trim_line(l: &[u8]) -> &[u8] {
    let l = l.strip_suffix(b"\n").unwrap_or(l);
    l.strip_suffix(b"\r").unwrap_or(l)
}

fn process_doc(
    run: &mut Run,
    f: &Path,
    doc: Doc,
    out: &mut dyn Write,
    buf: &mut Vec<u8>,
    pb: &ProgressBar,
) -> io::Result<()> {
    let (text, mut walk) = match doc {
        // (`open_input` cuts every document when the reorder window is on.)
        Doc::Cut(cut) => return process_cut(run, f, &cut, 0, out, buf, pb),
        Doc::InPlace(text, walk) => (text, walk),
    };
    // Each record read once, by the enricher, where it lies (one line: all
    // on line 1).
    let mut done = 0u64;
    while let Some(rest) = walk.next(&text) {
        buf.clear();
        let Some((o, len)) = run.enricher.process_prefix_into(rest, None, buf) else {
            break;
        };
        walk.advance(len);
        done += 1;
        run.note(f, 1, o, done);
        buf.push(b'\n');
        out.write_all(buf)?;
    }
    pb.inc(done);
    if walk.finished() {
        return Ok(());
    }
    // Damage, or a shape the walk does not follow: the document as
    // `input::split` cuts it, from its first record not done (the records
    // before it are the same).
    let cut = CutDoc::cut(text.into_bytes());
    let skip = usize::try_from(done).unwrap_or(usize::MAX);
    process_cut(run, f, &cut, skip, out, buf, pb)
}

/// The records of a cut document from its record number `skip` (from 0):
/// the ones before were written already.
fn process_cut(
    run: &mut Run,
    f: &Path,
    doc: &CutDoc,
    skip: usize,
    out: &mut dyn Write,
    buf: &mut Vec<u8>,
    pb: &ProgressBar,
) -> io::Result<()> {
    for d in &doc.damaged_records {
        if d.record.is_none_or(|r| r >= skip) {
            note_damage(run, f, d);
        }
    }
    for (i, piece) in doc.pieces.iter().enumerate().skip(skip) {
        let (bytes, line) = match piece {
            DocPiece::At(r, line) => (doc.bytes.get(r.clone()).unwrap_or_default(), *line),
            DocPiece::Owned(b, line) => (b.as_slice(), *line),
        };
        if run.window.is_some() {
            buf.clear();
            run.hold(f, line, i as u64 + 1, bytes, buf);
            out.write_all(buf)?;
            continue;
        }
        buf.clear();
        let o = run.enricher.process_into(bytes, None, buf);
        run.note(f, line, o, i as u64 + 1);
        buf.push(b'\n');
        out.write_all(buf)?;
    }
    pb.inc(doc.pieces.len().saturating_sub(skip) as u64);
    if let Some(d) = &doc.damage {
        note_damage(run, f, d);
    }
    Ok(())
}
