//! Finding and opening inputs: directory walking and file selection by name, binary sniffing, gzip, and whole-document inputs.
use super::*;

/// Collect the input files: directories recursively (sorted), in argument
/// order. CloudTrail-Digest files (integrity digests, not events) are left
/// out and counted in `run.digests`; other files of a directory that are not
/// read (see [`is_log_file`]) in `run.skipped`. A directory that gives no
/// file to read is an input that could not be read: named, counted in
/// `run.bad_files`.
pub(crate) fn collect_files(paths: &[PathBuf], run: &mut Run) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() != "-" && is_digest(p) {
            run.digests += 1;
            continue;
        }
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            let mut found = Vec::new();
            let skipped_before = run.skipped.len();
            // Each directory is read once, however many links lead to it
            // (symlink loops): known by device and inode.
            let mut seen = std::collections::HashSet::new();
            while let Some(d) = stack.pop() {
                {
                    use std::os::unix::fs::MetadataExt;
                    if let Ok(m) = std::fs::metadata(&d) {
                        if !seen.insert((m.dev(), m.ino())) {
                            continue;
                        }
                    }
                }
                match std::fs::read_dir(&d) {
                    Ok(rd) => {
                        for e in rd.flatten() {
                            let path = e.path();
                            if path.is_dir() {
                                stack.push(path);
                            } else if is_digest(&path) {
                                run.digests += 1;
                            } else if is_log_file(&path) {
                                found.push(path);
                            } else {
                                run.skipped.push(path);
                            }
                        }
                    }
                    Err(e) => {
                        eprintln!("credlineage: {}: {e}", d.display());
                        run.bad_input += 1;
                        run.bad_files += 1;
                    }
                }
            }
            if found.is_empty() {
                eprintln!(
                    "credlineage: {}: no input file in this directory (read: {READ_SUFFIXES}; {} other file(s) skipped)",
                    p.display(),
                    run.skipped.len() - skipped_before
                );
                run.bad_input += 1;
                run.bad_files += 1;
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    run.skipped[..].sort();
    out
}

/// The names of the files read from a directory, for messages and `--help`.
pub(crate) const READ_SUFFIXES: &str = "*.json, *.jsonl, *.ndjson, *.log, each also .gz";

/// A CloudTrail-Digest file: under a `CloudTrail-Digest` directory
/// (`AWSLogs/<account>/CloudTrail-Digest/<region>/…`) or named
/// `…_CloudTrail-Digest_…`.
fn is_digest(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.contains("_CloudTrail-Digest_")
        || p.components().any(|c| c.as_os_str() == "CloudTrail-Digest")
}

/// A file of a directory that is read: see [`READ_SUFFIXES`].
fn is_log_file(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let name = name.strip_suffix(".gz").unwrap_or(name);
    [".json", ".jsonl", ".ndjson", ".log"]
        .iter()
        .any(|s| name.ends_with(s))
}

/// How much of an input [`looks_binary`] looks at.
const SNIFF: usize = 64 * 1024;

/// Binary data, not JSON text: more than one byte in ten of `head` is a
/// control character (other than tab, CR, LF, form feed) or not part of
/// valid UTF-8, and no line of it is a whole JSON object or array. JSON text
/// has no such bytes outside its strings' escapes, so a record with a
/// damaged byte or two is still text (read, and its damage named), and so is
/// NDJSON with junk lines between records (each passed through), while
/// random bytes, an archive or a UTF-16 file are not.
pub(crate) fn looks_binary(head: &[u8]) -> bool {
    let head = head.get(..SNIFF).unwrap_or(head);
    mostly_not_text(head)
        && !head.split(|&c| c == b'\n').any(|l| {
            let t = l.trim_ascii();
            matches!(t.first(), Some(b'{' | b'['))
                && std::str::from_utf8(t).is_ok_and(|t| credlineage::json::validate(t).is_ok())
        })
}

/// More than one byte in ten is a control character or not valid UTF-8.
fn mostly_not_text(head: &[u8]) -> bool {
    let mut bad = head
        .iter()
        .filter(|&&c| (c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r' | 0x0c)) || c == 0x7f)
        .count();
    let mut rest = head;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(_) => break,
            Err(e) => match e.error_len() {
                Some(n) => {
                    bad += n;
                    rest = rest.get(e.valid_up_to() + n..).unwrap_or_default();
                }
                // Cut in the middle of a character by the window.
                None => break,
            },
        }
    }
    bad * 10 > head.len()
}

/// The error for an input that is binary data: named once, nothing from it
/// written.
pub(crate) fn not_text(gzip: bool) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        if gzip {
            "gzip of binary data, not JSON text; skipped, nothing from it written"
        } else {
            "neither JSON text nor gzip (binary data); skipped, nothing from it written"
        },
    )
}

/// A record of a document cut by [`Doc::cut`]: where it is in the document,
/// or its bytes when cutting changed them (a pretty-printed record made one
/// line).
pub(crate) enum DocPiece {
    At(std::ops::Range<usize>, u64),
    Owned(Vec<u8>, u64),
}

/// A document read whole, owning its bytes (so it can be prepared on
/// another thread).
pub(crate) enum Doc {
    /// Cut into records by `input::split`.
    Cut(CutDoc),
    /// A one-line S3 delivery file (CloudTrail's own format), UTF-8: its
    /// records are read in place, each by the enricher alone
    /// (`input::InPlace`), not cut first.
    InPlace(String, credlineage::input::InPlace),
}

impl Doc {
    /// Ready to be enriched: in place when it is a one-line S3 delivery
    /// file, else cut by `input::split`.
    pub(crate) fn prepare(bytes: Vec<u8>) -> Doc {
        // The cheap checks first, UTF-8 only for a candidate.
        if bytes.trim_ascii_start().starts_with(b"{\"Records\"") {
            match String::from_utf8(bytes) {
                Ok(text) => match credlineage::input::InPlace::new(&text) {
                    Some(walk) => return Doc::InPlace(text, walk),
                    None => return Doc::Cut(CutDoc::cut(text.into_bytes())),
                },
                Err(e) => return Doc::Cut(CutDoc::cut(e.into_bytes())),
            }
        }
        Doc::Cut(CutDoc::cut(bytes))
    }
}

/// A document cut into records by `input::split`.
pub(crate) struct CutDoc {
    pub(crate) bytes: Vec<u8>,
    pub(crate) pieces: Vec<DocPiece>,
    pub(crate) damage: Option<credlineage::input::Damage>,
    pub(crate) damaged_records: Vec<credlineage::input::Damage>,
}

impl CutDoc {
    /// Cut `bytes` by `input::split`.
    pub(crate) fn cut(bytes: Vec<u8>) -> CutDoc {
        let split = credlineage::input::split(&bytes);
        let base = bytes.as_ptr() as usize;
        let pieces = split
            .pieces
            .into_iter()
            .map(|p| match p.bytes {
                std::borrow::Cow::Borrowed(b) => {
                    let at = (b.as_ptr() as usize).wrapping_sub(base);
                    if bytes
                        .get(at..at + b.len())
                        .is_some_and(|x| x.as_ptr() == b.as_ptr())
                    {
                        DocPiece::At(at..at + b.len(), p.line)
                    } else {
                        DocPiece::Owned(b.to_vec(), p.line)
                    }
                }
                std::borrow::Cow::Owned(v) => DocPiece::Owned(v, p.line),
            })
            .collect();
        let damage = split.damage;
        let damaged_records = split.damaged_records;
        CutDoc {
            bytes,
            pieces,
            damage,
            damaged_records,
        }
    }
}

/// One input, opened (and, for a document, read and cut) ahead of its turn.
pub(crate) enum Opened {
    /// NDJSON (or stdin's stream): read line by line in its turn; the first
    /// line is already read.
    Lines(Box<dyn BufRead + Send>, Vec<u8>),
    /// A document read whole and cut, with its size.
    Doc(Doc, u64),
    /// The input could not be read, or is binary.
    Failed(io::Error),
    /// To be opened in its turn (stdin).
    Later,
}

/// Open `f` (`-`: stdin) and tell NDJSON from a document, which is read
/// whole and cut by `input::split`. NDJSON is the first line being one
/// complete JSON object (not an S3 delivery file), or a first line that does
/// not start a JSON value at all; anything else (gzip, a JSON array, an S3
/// `{"Records": [...]}` file, a pretty-printed record, a Firehose
/// concatenation) is a document. `in_place`: a one-line S3 delivery file is
/// left whole for its records to be read in place ([`Doc::InPlace`]); else
/// (the reorder window holds each record's bytes) every document is cut.
pub(crate) fn open_input(f: &Path, max_document: u64, in_place: bool) -> Opened {
    let mut line = Vec::new();
    let mut r: Box<dyn BufRead + Send> = if f.as_os_str() == "-" {
        Box::new(io::BufReader::with_capacity(1 << 20, io::stdin()))
    } else {
        match std::fs::File::open(f) {
            Ok(file) => Box::new(io::BufReader::with_capacity(1 << 20, file)),
            Err(e) => return Opened::Failed(e),
        }
    };
    match r.fill_buf() {
        // Gzip is judged once decompressed; a first read of one byte may be
        // the start of its magic.
        Ok(head) if !head.starts_with(&[0x1f, 0x8b]) && head != [0x1f] && looks_binary(head) => {
            return Opened::Failed(not_text(false));
        }
        // A UTF-8 byte order mark is not part of the input.
        Ok(head) if head.starts_with(credlineage::input::BOM) => {
            r.consume(credlineage::input::BOM.len());
        }
        Ok(_) => {}
        Err(e) => return Opened::Failed(e),
    }
    // The first line may be a whole document (one-line S3 file, gzip).
    let first_cut = match read_line_capped(&mut r, &mut line, max_document) {
        Ok((_, cut)) => cut,
        Err(e) => return Opened::Failed(e),
    };
    if first_cut {
        return Opened::Failed(too_large(max_document));
    }
    let first = trim_line(&line);
    let start = first
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .and_then(|i| first.get(i..))
        .unwrap_or_default();
    let ndjson = match start.first() {
        Some(b'{') => {
            !start.windows(9).take(64).any(|w| w == b"\"Records\"")
                && std::str::from_utf8(start).is_ok_and(|t| credlineage::json::validate(t).is_ok())
        }
        // A document (an array), a blank first line, or gzip: read whole.
        Some(b'[') | None => false,
        Some(_) => !line.starts_with(&[0x1f, 0x8b]),
    };
    if ndjson {
        return Opened::Lines(r, line);
    }
    let doc = match read_to_end_capped(&mut r, &mut line, max_document) {
        Ok(()) if line.starts_with(&[0x1f, 0x8b]) => {
            // Room for a typical CloudTrail file's ~10x ratio up front (fewer
            // regrowths), and no second buffer: the bytes are already here.
            let guess = (line.len() as u64).saturating_mul(10).min(max_document);
            let mut doc = Vec::with_capacity(usize::try_from(guess).unwrap_or(0));
            let mut gz = flate2::bufread::MultiGzDecoder::new(&line[..]);
            match read_to_end_capped(&mut gz, &mut doc, max_document) {
                Ok(()) if looks_binary(&doc) => return Opened::Failed(not_text(true)),
                Ok(_) => doc,
                Err(e) => return Opened::Failed(e),
            }
        }
        Ok(_) => line,
        Err(e) => return Opened::Failed(e),
    };
    let n = doc.len() as u64;
    let doc = if in_place {
        Doc::prepare(doc)
    } else {
        Doc::Cut(CutDoc::cut(doc))
    };
    Opened::Doc(doc, n)
}

/// How an input is named in messages: its path, `<stdin>` for `-`.
pub(crate) fn source_name(p: &Path) -> String {
    if p.as_os_str() == "-" {
        "<stdin>".into()
    } else {
        p.display().to_string()
    }
}
