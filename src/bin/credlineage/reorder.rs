//! `--reorder-window` for `enrich` in streaming order and for `serve`: the flags, and the held record the CLI keeps in the library's [`credlineage::reorder::Reorder`] (docs/batch.md, docs/serve.md).

use super::batch;
use clap::Args;
use credlineage::reorder::{Limits, ReorderStats};
use std::path::{Path, PathBuf};

/// The reorder window's flags, shared by `enrich` and `serve`.
#[derive(Args, Clone)]
pub(crate) struct ReorderArgs {
    /// Hold records up to this much event time and write them in event-time
    /// order (ties: issuances first within a second, then arrival), as batch
    /// mode would process them: for input that cannot be read twice (stdin,
    /// `serve`). A duration: 15m, 900s, 1h (a bare number is seconds).
    /// Output is delayed by about the window. Off by default. With `enrich`
    /// it implies `--order stream`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub reorder_window: Option<i64>,
    /// With `--reorder-window`: most records held; beyond it the oldest are
    /// released early (counted; later records may then arrive late).
    #[arg(long, value_name = "N", default_value_t = 1_000_000, requires = "reorder_window", value_parser = clap::value_parser!(u64).range(1..))]
    pub reorder_max_records: u64,
    /// With `--reorder-window`: most bytes of records held (suffixes K, M, G;
    /// each record counts its size plus 64); beyond it the oldest are
    /// released early.
    #[arg(long, value_name = "BYTES", default_value = "256M", requires = "reorder_window", value_parser = batch::parse_bytes)]
    pub reorder_max_bytes: u64,
}

impl ReorderArgs {
    /// The window's limits, if it is on. `serve` adds a wall-clock bound.
    pub(crate) fn limits(&self) -> Option<Limits> {
        Some(Limits {
            window_secs: self.reorder_window?,
            max_records: usize::try_from(self.reorder_max_records).unwrap_or(usize::MAX),
            max_bytes: usize::try_from(self.reorder_max_bytes).unwrap_or(usize::MAX),
            max_hold_ms: None,
        })
    }
}

/// A duration: a number with an optional unit `s`, `m`, `h` or `d`
/// (seconds without one), or several (`1h30m`). At most 7 days.
pub(crate) fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?}: expected a duration such as 15m, 900s, 1h or 1h30m");
    let t = s.trim();
    if t.is_empty() {
        return Err(bad());
    }
    let mut total: i64 = 0;
    let mut rest = t;
    let mut first = true;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let (num, tail) = rest.split_at(digits);
        let n: i64 = num.parse().map_err(|_| bad())?;
        let (unit, tail) = match tail.bytes().next() {
            Some(b's') => (1, tail.get(1..).unwrap_or_default()),
            Some(b'm') => (60, tail.get(1..).unwrap_or_default()),
            Some(b'h') => (3600, tail.get(1..).unwrap_or_default()),
            Some(b'd') => (86_400, tail.get(1..).unwrap_or_default()),
            None if first => (1, tail),
            _ => return Err(bad()),
        };
        total = n
            .checked_mul(unit)
            .and_then(|x| total.checked_add(x))
            .ok_or_else(bad)?;
        rest = tail;
        first = false;
    }
    if total > 7 * 86_400 {
        return Err(format!("{s:?}: at most 7 days"));
    }
    Ok(total)
}

/// A duration in seconds as the flags take it (`15m`, `1h30m`, `45s`).
pub(crate) fn show_duration(secs: i64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// A record held by `enrich`'s window: its bytes and where it came from,
/// for the messages about it when it is released.
pub(crate) struct Held {
    pub bytes: Box<[u8]>,
    /// Index into [`Sources`].
    pub src: u32,
    pub line: u64,
    /// One-based position in its input.
    pub index: u64,
}

/// The inputs named by held records.
#[derive(Default)]
pub(crate) struct Sources(Vec<PathBuf>);

impl Sources {
    /// The index of `p`: the last one when it is the same input.
    pub(crate) fn id(&mut self, p: &Path) -> u32 {
        if self.0.last().is_none_or(|l| l != p) {
            self.0.push(p.to_path_buf());
        }
        u32::try_from(self.0.len().saturating_sub(1)).unwrap_or(u32::MAX)
    }
    pub(crate) fn get(&self, id: u32) -> &Path {
        self.0
            .get(id as usize)
            .map_or(Path::new("-"), PathBuf::as_path)
    }
}

/// One line on stderr: what the window did.
pub(crate) fn summary(prefix: &str, l: &Limits, s: &ReorderStats, held_now: usize) {
    eprintln!(
        "{prefix}reorder window {}: {} records held (at most {} at once, {:.1} MB), released {} by the watermark, {} by the caps ({} records / {:.0} MB), {} by the wall clock, {} at the end{}; {} late (arrived after their slot was released: processed on arrival, out of time order), {} without a time passed on at once",
        show_duration(l.window_secs),
        s.held,
        s.peak_records,
        s.peak_bytes as f64 / 1e6,
        s.by_watermark,
        s.by_cap,
        l.max_records,
        l.max_bytes as f64 / 1e6,
        s.by_age,
        s.by_flush,
        match held_now {
            0 => String::new(),
            n => format!(" ({n} still held, not delivered)"),
        },
        s.late,
        s.untimed,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("900"), Ok(900));
        assert_eq!(parse_duration("900s"), Ok(900));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        for bad in [
            "",
            "m",
            "15x",
            "15m3",
            "-5m",
            "1.5h",
            "8d",
            "99999999999999999999",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(show_duration(900), "15m");
        assert_eq!(show_duration(5400), "1h30m");
        assert_eq!(show_duration(0), "0s");
        assert_eq!(show_duration(61), "1m1s");
    }
}
