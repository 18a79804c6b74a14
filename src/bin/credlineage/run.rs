//! A run's tally and messages: counts, reorder window, progress bar, damage and skip notes, and the final summary.
use super::*;

pub(crate) struct Run {
    pub(crate) enricher: Enricher,
    /// Records and inputs that could not be read (exit status 1).
    pub(crate) bad_input: u64,
    /// Of those, whole inputs (a file, a directory) that could not be read.
    pub(crate) bad_files: u64,
    /// CloudTrail-Digest files skipped.
    pub(crate) digests: u64,
    /// Files of input directories that are not read (by their name).
    pub(crate) skipped: Vec<PathBuf>,
    pub(crate) quiet: bool,
    /// The NDJSON hint has been given (see [`Run::ndjson_hint`]).
    pub(crate) hinted: bool,
    /// `--max-line-bytes`, `--max-document-bytes`.
    pub(crate) max_line: u64,
    pub(crate) max_document: u64,
    /// Damaged records already named by [`note_damage`] (file, index in
    /// it): their malformed outcome is not named (or counted) again.
    pub(crate) told: std::collections::HashSet<(PathBuf, u64)>,
    /// `--reorder-window` (streaming order only).
    pub(crate) window: Option<Window>,
}

/// `enrich`'s reorder window: the held records and the inputs they name.
pub(crate) struct Window {
    pub(crate) w: credlineage::reorder::Reorder<reorder::Held>,
    pub(crate) sources: reorder::Sources,
}

impl Run {
    /// Offer one record of `src` to the reorder window; what it releases (the
    /// record itself when it is late or has no time) is enriched into `buf`.
    pub(crate) fn hold(
        &mut self,
        src: &Path,
        line: u64,
        index: u64,
        bytes: &[u8],
        buf: &mut Vec<u8>,
    ) {
        let Some(mut win) = self.window.take() else {
            return;
        };
        let held = reorder::Held {
            bytes: bytes.into(),
            src: win.sources.id(src),
            line,
            index,
        };
        let order = self.enricher.peek_order(bytes);
        if let credlineage::reorder::Pushed::Now(h, _) = win.w.push(order, held, bytes.len(), None)
        {
            self.release(&win.sources, h, buf);
        }
        while let Some((h, _)) = win.w.pop_due(None) {
            self.release(&win.sources, h, buf);
        }
        self.window = Some(win);
    }

    /// Release every held record, in time order (end of input).
    pub(crate) fn flush_window(&mut self, buf: &mut Vec<u8>) {
        let Some(mut win) = self.window.take() else {
            return;
        };
        while let Some((h, _)) = win.w.pop_flush() {
            self.release(&win.sources, h, buf);
        }
        self.window = Some(win);
    }

    /// Enrich a record released by the window into `buf`.
    fn release(&mut self, sources: &reorder::Sources, h: reorder::Held, buf: &mut Vec<u8>) {
        let src = sources.get(h.src);
        let o = self.enricher.process_into(&h.bytes, None, buf);
        if matches!(o, Outcome::Malformed(Error::InvalidJson { .. })) {
            self.ndjson_hint(src, &h.bytes);
        }
        self.note(src, h.line, o, h.index);
        buf.push(b'\n');
    }
}

impl Run {
    /// Count and name a record that could not be read: `src:line: record N:
    /// reason`, the line and N (the record's position in its file) both
    /// counted from 1 within that file.
    pub(crate) fn note(&mut self, src: &Path, line: u64, outcome: Outcome, index_in_file: u64) {
        if let Outcome::Malformed(e) = outcome {
            if !self.told.is_empty() && self.told.remove(&(src.to_path_buf(), index_in_file)) {
                return;
            }
            self.bad_input += 1;
            if !self.quiet {
                eprintln!(
                    "credlineage: {}:{line}: record {index_in_file}: {}",
                    source_name(src),
                    record_reason(&e)
                );
            }
        }
    }

    /// An input that could not be read at all: named once, counted.
    pub(crate) fn bad_file(&mut self, src: &Path, e: impl std::fmt::Display) {
        eprintln!("credlineage: {}: {e}", source_name(src));
        self.bad_input += 1;
        self.bad_files += 1;
    }

    /// Said once per run, when a line of an input read as NDJSON (stdin, or
    /// a file in `--order stream` whose first line is a whole record) is not
    /// JSON but looks like a piece of a pretty-printed document.
    pub(crate) fn ndjson_hint(&mut self, src: &Path, line: &[u8]) {
        if self.hinted || self.quiet {
            return;
        }
        let t = line.trim_ascii();
        let piece = matches!(t.first(), Some(b'{' | b'}' | b'[' | b']' | b'"'))
            || matches!(t.last(), Some(b',' | b'{' | b'['));
        if !piece {
            return;
        }
        self.hinted = true;
        let how = if src.as_os_str() == "-" {
            "give it as a file (a file is read whole), or make it one record per line with `jq -c`"
        } else {
            "read the file whole with `--order time` (the default for files), or make it one record per line with `jq -c`"
        };
        eprintln!(
            "credlineage: hint: {} is read as NDJSON, one whole record per line; for a pretty-printed (multi-line) JSON document, {how}",
            source_name(src)
        );
    }
}

/// What is wrong with a record, without the library's stream-wide `record N:`
/// (the CLI names records by file, line and position in the file).
pub(crate) fn record_reason(e: &Error) -> String {
    let s = e.to_string();
    match e.record_index() {
        Some(i) => s
            .strip_prefix(&format!("record {i}: "))
            .map_or_else(|| s.clone(), str::to_string),
        None => s,
    }
}

pub(crate) fn progress(total: Option<u64>, enabled: bool) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let pb = match total {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template(
                "{spinner} {prefix} [{elapsed_precise}] {bar:40} {human_pos}/{human_len} records (eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {human_pos} records")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    pb.set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
    pb
}

/// Say how many CloudTrail-Digest files were skipped, if any.
pub(crate) fn digest_note(n: u64) {
    if n > 0 {
        eprintln!(
            "credlineage: {n} CloudTrail-Digest file{} skipped (integrity digests, not events)",
            if n == 1 { "" } else { "s" }
        );
    }
}

/// Say how many files of the input directories were skipped for their name
/// (all of them with `verbose`).
pub(crate) fn skip_note(skipped: &[PathBuf], verbose: bool) {
    if skipped.is_empty() {
        return;
    }
    if verbose {
        for p in skipped {
            eprintln!(
                "credlineage: skipped {} (not an input file by its name)",
                p.display()
            );
        }
    }
    eprintln!(
        "credlineage: {} file{} in input directories skipped (read: {READ_SUFFIXES}){}",
        skipped.len(),
        if skipped.len() == 1 { "" } else { "s" },
        if verbose { "" } else { "; -v names them" }
    );
}

/// A damaged JSON document, or one damaged record of it: one error naming
/// the input, line and column (and the record, which is not named again).
pub(crate) fn note_damage(run: &mut Run, f: &Path, d: &credlineage::input::Damage) {
    if let Some(i) = d.record {
        run.told.insert((f.to_path_buf(), i as u64 + 1));
    }
    run.bad_input += 1;
    eprintln!("credlineage: {}", d.to_error(&source_name(f)));
}

pub(crate) fn summary(s: &Stats, secs: f64, bytes_in: u64) {
    let rate = if secs > 0.0 {
        s.records as f64 / secs
    } else {
        0.0
    };
    let mbs = if secs > 0.0 {
        bytes_in as f64 / secs / 1e6
    } else {
        0.0
    };
    eprintln!(
        "credlineage: {} records: {} annotated, {} passed through, {} malformed, {} with an unreadable or missing time | {} key collisions, {} off-host EC2 uses, {} issuances ({} chained) | {} tracked sets, {} evictions, {} expired | {:.2} s, {:.0} records/s, {:.1} MB/s",
        s.records,
        s.annotated,
        s.passed_through,
        s.malformed,
        s.bad_time,
        s.collisions,
        s.offhost,
        s.issuances,
        s.chained_issuances,
        s.tracked_sets,
        s.evictions,
        s.expired_purged,
        secs,
        rate,
        mbs
    );
}
