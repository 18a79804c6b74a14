//! An event-time reorder window for inputs that cannot be re-read (a live stream, stdin): records are held up to a window of event time and released in time order, bounded by record and byte caps — pure, no I/O, no clock (the host passes wall-clock times in).
//!
//! Batch mode sorts a whole input by `(event time, rank, input position)`
//! ([`Enricher::peek_order`](crate::Enricher::peek_order) gives the first
//! two). A stream cannot be sorted whole; [`Reorder`] sorts it within a
//! window instead, by the same key:
//!
//! * **Watermark.** A held record is released once the newest event time seen
//!   is more than the window past its own. A record that arrives at most the
//!   window behind the newest record seen before it is therefore always put
//!   in its place; the released records come out in key order.
//! * **Caps.** Past `max_records` held records or `max_bytes` held bytes, the
//!   smallest keys are released early ([`Release::Cap`]).
//! * **Wall clock.** With [`Limits::max_hold_ms`], a record that has been held
//!   that long (by the host's clock, passed to [`Reorder::push`] and
//!   [`Reorder::pop_due`]) is released, with every held record that sorts
//!   before it, so a quiet stream does not hold records for ever.
//! * **Flush.** [`Reorder::pop_flush`] releases everything, in key order (the
//!   end of the input, a shutdown).
//! * **Late records.** A record whose key sorts before one already released
//!   cannot be put in its place: [`Reorder::push`] hands it back at once
//!   ([`Direct::Late`]) to be processed on arrival, and counts it.
//! * **Records without a time** (not JSON, not CloudTrail, no readable time)
//!   take the time of the record that arrived just before them, as batch
//!   mode does, and are held and released with it; before any record with a
//!   time, or when that slot has been released already, they are handed back
//!   at once ([`Direct::Untimed`]). None is held longer than a dated record.
//!
//! Nothing is ever dropped: every pushed item comes back exactly once, from
//! `push`, `pop_due` or `pop_flush`.
//!
//! ```
//! use credlineage::reorder::{Limits, Pushed, Release, Reorder};
//!
//! let mut w = Reorder::new(Limits { window_secs: 60, ..Limits::default() });
//! for (t, name) in [(100, "b"), (90, "a"), (200, "c")] {
//!     assert!(matches!(w.push((Some(t), 1), name, 1, None), Pushed::Held));
//! }
//! // 200 is more than 60 s past 100 and 90: both are released, in time order.
//! assert_eq!(w.pop_due(None), Some(("a", Release::Watermark)));
//! assert_eq!(w.pop_due(None), Some(("b", Release::Watermark)));
//! assert_eq!(w.pop_due(None), None);
//! assert_eq!(w.pop_flush(), Some(("c", Release::Flush)));
//! ```

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

/// Accounting overhead of one held record, added to its size for the byte
/// cap (the heap entry, the host's own bookkeeping).
pub const ENTRY_OVERHEAD: usize = 64;

/// What bounds a [`Reorder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The window of event time, in seconds (negative is taken as 0).
    pub window_secs: i64,
    /// Most records held; beyond it the oldest (smallest key) is released.
    pub max_records: usize,
    /// Most bytes held (each record's size plus [`ENTRY_OVERHEAD`]).
    pub max_bytes: usize,
    /// Longest a record is held by the host's clock, in milliseconds; `None`:
    /// no wall-clock bound (the output then depends only on the input).
    pub max_hold_ms: Option<u64>,
}

impl Default for Limits {
    /// A 15-minute window (CloudTrail delivers most events within 15
    /// minutes), at most 1,000,000 records or 256 MiB, no wall-clock bound.
    fn default() -> Self {
        Limits {
            window_secs: 15 * 60,
            max_records: 1_000_000,
            max_bytes: 256 << 20,
            max_hold_ms: None,
        }
    }
}

/// Why a held record was released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// The newest event time seen is more than the window past it.
    Watermark,
    /// The record or byte cap forced it out early.
    Cap,
    /// It (or a record that sorts after it) was held for `max_hold_ms`.
    Age,
    /// End of input or shutdown.
    Flush,
}

/// Why a record was not held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direct {
    /// Its key sorts before a record already released: processed on arrival,
    /// out of time order.
    Late,
    /// No time of its own, and nothing to keep it in place after (no dated
    /// record yet, or its predecessor's slot already released).
    Untimed,
}

/// What [`Reorder::push`] did with a record.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed<T> {
    /// Held; it comes back from [`Reorder::pop_due`] or [`Reorder::pop_flush`].
    Held,
    /// Not held: process it now.
    Now(T, Direct),
}

/// Counters of a [`Reorder`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReorderStats {
    /// Records that were held.
    pub held: u64,
    /// Of those, released by the watermark, by a cap, by the wall clock, and
    /// at the end (the rest are still held).
    pub by_watermark: u64,
    pub by_cap: u64,
    pub by_age: u64,
    pub by_flush: u64,
    /// Records with a time that arrived after their slot was released.
    pub late: u64,
    /// Records without a time handed back at once ([`Direct::Untimed`]).
    pub untimed: u64,
    /// Most records and bytes held at once.
    pub peak_records: u64,
    pub peak_bytes: u64,
}

/// The sort key: event time, rank (0 for an STS issuance), arrival number —
/// batch mode's key.
type Key = (i64, u8, u64);

struct Entry<T> {
    key: Key,
    size: usize,
    item: T,
}

// A min-heap by key: `BinaryHeap` is a max-heap, so the order is reversed.
impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.cmp(&self.key)
    }
}

/// The reorder window. `T` is whatever the host needs to process a record
/// later (its bytes, where it came from).
pub struct Reorder<T> {
    limits: Limits,
    heap: BinaryHeap<Entry<T>>,
    /// With `max_hold_ms`: arrival time and key of held records, in arrival
    /// order; entries already released (key not after `front`) are stale.
    arrivals: VecDeque<(u64, Key)>,
    /// The newest event time seen (the watermark's base).
    newest: Option<i64>,
    /// A dated record more than a day past `newest`, not yet confirmed by
    /// the next dated record (the engine's clock rule, SPEC 2).
    pending_jump: Option<i64>,
    /// The time of the record that arrived last (its own or the one it took).
    last_time: Option<i64>,
    /// The key of the last record released from the window.
    front: Option<Key>,
    seq: u64,
    bytes: usize,
    /// An age release in progress: release up to this key.
    aging: Option<Key>,
    stats: ReorderStats,
}

impl<T> Reorder<T> {
    pub fn new(limits: Limits) -> Self {
        Reorder {
            limits: Limits {
                window_secs: limits.window_secs.max(0),
                ..limits
            },
            heap: BinaryHeap::new(),
            arrivals: VecDeque::new(),
            newest: None,
            pending_jump: None,
            last_time: None,
            front: None,
            seq: 0,
            bytes: 0,
            aging: None,
            stats: ReorderStats::default(),
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Records held now.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Bytes held now (sizes plus [`ENTRY_OVERHEAD`] each).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn stats(&self) -> ReorderStats {
        self.stats
    }

    /// Offer a record: `order` is its [`peek_order`](crate::Enricher::peek_order)
    /// (event time, rank), `size` what it counts against the byte cap, `now_ms`
    /// the host's clock (needed only with `max_hold_ms`). Then call
    /// [`pop_due`](Self::pop_due) until it returns `None`: a push may make
    /// records due (a newer time, a cap).
    pub fn push(
        &mut self,
        order: (Option<i64>, u8),
        item: T,
        size: usize,
        now_ms: Option<u64>,
    ) -> Pushed<T> {
        let (own, rank) = order;
        let seq = self.seq;
        self.seq += 1;
        let Some(time) = own.or(self.last_time) else {
            // Nothing dated yet: batch mode would sort it before everything.
            self.stats.untimed += 1;
            return Pushed::Now(item, Direct::Untimed);
        };
        self.last_time = Some(time);
        let key = (time, rank, seq);
        if self.front.is_some_and(|f| key < f) {
            if own.is_some() {
                self.stats.late += 1;
                return Pushed::Now(item, Direct::Late);
            }
            self.stats.untimed += 1;
            return Pushed::Now(item, Direct::Untimed);
        }
        if own.is_some() {
            self.advance(time);
        }
        let size = size.saturating_add(ENTRY_OVERHEAD);
        self.bytes = self.bytes.saturating_add(size);
        self.heap.push(Entry { key, size, item });
        self.stats.held += 1;
        self.stats.peak_records = self.stats.peak_records.max(self.heap.len() as u64);
        self.stats.peak_bytes = self.stats.peak_bytes.max(self.bytes as u64);
        if self.limits.max_hold_ms.is_some() {
            self.arrivals.push_back((now_ms.unwrap_or(0), key));
            // Keep the arrival list in proportion to what is held.
            if self.arrivals.len() > 2 * self.heap.len() + 1024 {
                let front = self.front;
                self.arrivals.retain(|(_, k)| front.is_none_or(|f| *k > f));
            }
        }
        Pushed::Held
    }

    /// Move the watermark's base to `time` — unless `time` is more than a
    /// day past it: then only when the dated record before was that far
    /// ahead too, as the engine's clock moves (one forged or skewed
    /// timestamp cannot release the whole window and make the records after
    /// it late).
    fn advance(&mut self, time: i64) {
        match self.newest {
            Some(n) if time > n.saturating_add(crate::engine::MAX_CLOCK_JUMP) => {
                match self.pending_jump.take() {
                    Some(p) => self.newest = Some(p.min(time)),
                    None => self.pending_jump = Some(time),
                }
            }
            _ => {
                self.newest = Some(self.newest.map_or(time, |n| n.max(time)));
                self.pending_jump = None;
            }
        }
    }

    /// The next record due, if any: by the watermark, a cap, or (with
    /// `max_hold_ms` and `now_ms`) the wall clock. Records come out in key
    /// order.
    pub fn pop_due(&mut self, now_ms: Option<u64>) -> Option<(T, Release)> {
        let top = self.heap.peek()?.key;
        let why = if self
            .newest
            .is_some_and(|n| top.0 < n.saturating_sub(self.limits.window_secs))
        {
            Release::Watermark
        } else if self.heap.len() > self.limits.max_records || self.bytes > self.limits.max_bytes {
            Release::Cap
        } else if self.aging.is_some_and(|a| top <= a) || self.start_aging(top, now_ms) {
            Release::Age
        } else {
            return None;
        };
        self.pop(why)
    }

    /// Whether the longest-held record has been held `max_hold_ms` at
    /// `now_ms`: if so, release up to its key.
    fn start_aging(&mut self, top: Key, now_ms: Option<u64>) -> bool {
        let (Some(hold), Some(now)) = (self.limits.max_hold_ms, now_ms) else {
            return false;
        };
        self.drop_stale();
        match self.arrivals.front() {
            Some(&(at, key)) if now.saturating_sub(at) >= hold => {
                self.aging = Some(key);
                top <= key
            }
            _ => false,
        }
    }

    /// Forget arrivals already released.
    fn drop_stale(&mut self) {
        while let Some(&(_, k)) = self.arrivals.front() {
            if self.front.is_some_and(|f| k <= f) {
                self.arrivals.pop_front();
            } else {
                break;
            }
        }
    }

    /// When (by the host's clock) the next record falls due by age, if
    /// `max_hold_ms` is set and something is held: the host may wait until
    /// then for more input.
    pub fn next_deadline(&mut self) -> Option<u64> {
        let hold = self.limits.max_hold_ms?;
        self.drop_stale();
        self.arrivals
            .front()
            .map(|&(at, _)| at.saturating_add(hold))
    }

    /// The next held record in key order, whatever is due (end of input).
    pub fn pop_flush(&mut self) -> Option<(T, Release)> {
        self.pop(Release::Flush)
    }

    fn pop(&mut self, why: Release) -> Option<(T, Release)> {
        let e = self.heap.pop()?;
        self.bytes = self.bytes.saturating_sub(e.size);
        self.front = Some(self.front.map_or(e.key, |f| f.max(e.key)));
        if self.aging.is_some_and(|a| e.key >= a) {
            self.aging = None;
        }
        let n = match why {
            Release::Watermark => &mut self.stats.by_watermark,
            Release::Cap => &mut self.stats.by_cap,
            Release::Age => &mut self.stats.by_age,
            Release::Flush => &mut self.stats.by_flush,
        };
        *n += 1;
        if self.heap.is_empty() {
            self.arrivals.clear();
        }
        Some((e.item, why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim(window: i64) -> Limits {
        Limits {
            window_secs: window,
            max_records: usize::MAX,
            max_bytes: usize::MAX,
            max_hold_ms: None,
        }
    }

    /// Push every `(time, rank, name)`, draining what falls due after each;
    /// then flush. Returns the names with why each came out.
    fn run<'a>(
        w: &mut Reorder<&'a str>,
        recs: &[(Option<i64>, u8, &'a str)],
    ) -> Vec<(&'a str, String)> {
        let mut out = Vec::new();
        for &(t, r, n) in recs {
            if let Pushed::Now(x, d) = w.push((t, r), n, 10, None) {
                out.push((x, format!("{d:?}")));
            }
            while let Some((x, why)) = w.pop_due(None) {
                out.push((x, format!("{why:?}")));
            }
        }
        while let Some((x, why)) = w.pop_flush() {
            out.push((x, format!("{why:?}")));
        }
        out
    }

    fn names<'a>(v: &[(&'a str, String)]) -> Vec<&'a str> {
        v.iter().map(|x| x.0).collect()
    }

    #[test]
    fn watermark_releases_in_time_order_once_past_the_window() {
        let mut w = Reorder::new(lim(10));
        let out = run(
            &mut w,
            &[
                (Some(100), 1, "a100"),
                (Some(95), 1, "b95"),
                (Some(105), 1, "c105"),
                (Some(110), 1, "d110"),
                // 110 - 10 = 100: 95 is due; 111 - 10 = 101: 100 is due.
                (Some(111), 1, "e111"),
            ],
        );
        assert_eq!(
            out,
            vec![
                ("b95", "Watermark".to_string()),
                ("a100", "Watermark".to_string()),
                ("c105", "Flush".to_string()),
                ("d110", "Flush".to_string()),
                ("e111", "Flush".to_string()),
            ]
        );
        let s = w.stats();
        assert_eq!((s.held, s.by_watermark, s.by_flush, s.late), (5, 2, 3, 0));
        assert_eq!(s.peak_records, 4);
    }

    #[test]
    fn one_far_future_record_does_not_release_the_window() {
        let day = crate::engine::MAX_CLOCK_JUMP;
        let mut w = Reorder::new(lim(600));
        let out = run(
            &mut w,
            &[
                (Some(1000), 1, "a"),
                (Some(1000 + 10 * day), 1, "forged"),
                (Some(900), 1, "b"),
                (Some(1100), 1, "c"),
            ],
        );
        // The forged record alone moves nothing: b still sorts into place.
        assert_eq!(names(&out), vec!["b", "a", "c", "forged"]);
        assert_eq!(w.stats().late, 0);
        // Two in a row that far ahead: the trail really moved on.
        let mut w = Reorder::new(lim(600));
        let out = run(
            &mut w,
            &[
                (Some(1000), 1, "a"),
                (Some(1000 + 10 * day), 1, "x"),
                (Some(1000 + 10 * day + 1), 1, "y"),
                (Some(900), 1, "late"),
            ],
        );
        assert_eq!(names(&out), vec!["a", "late", "x", "y"]);
        assert_eq!((w.stats().by_watermark, w.stats().late), (1, 1));
    }

    #[test]
    fn exactly_the_window_behind_is_still_in_place() {
        // The strict rule: a record exactly `window` behind the newest is
        // held, so a record arriving that far behind is never late.
        let mut w = Reorder::new(lim(10));
        let out = run(
            &mut w,
            &[
                (Some(100), 1, "x100"),
                (Some(110), 1, "y110"),
                (Some(100), 1, "z100"),
            ],
        );
        assert_eq!(names(&out), vec!["x100", "z100", "y110"]);
        assert_eq!(w.stats().late, 0);
    }

    #[test]
    fn ties_sort_issuances_first_then_arrival() {
        let mut w = Reorder::new(lim(0));
        let out = run(
            &mut w,
            &[
                (Some(50), 1, "call1"),
                (Some(50), 1, "call2"),
                (Some(50), 0, "issue"),
                (Some(50), 1, "call3"),
            ],
        );
        assert_eq!(names(&out), vec!["issue", "call1", "call2", "call3"]);
    }

    #[test]
    fn late_records_come_back_at_once_and_are_counted() {
        let mut w = Reorder::new(lim(5));
        let out = run(
            &mut w,
            &[
                (Some(10), 1, "a10"),
                (Some(20), 1, "b20"), // releases a10
                (Some(9), 1, "late9"),
                (Some(10), 0, "late_issue10"), // sorts before a10: late too
                (Some(10), 1, "same10"),       // after a10 by arrival: in place
                (Some(16), 1, "c16"),
            ],
        );
        assert_eq!(
            out,
            vec![
                ("a10", "Watermark".to_string()),
                ("late9", "Late".to_string()),
                ("late_issue10", "Late".to_string()),
                ("same10", "Watermark".to_string()),
                ("c16", "Flush".to_string()),
                ("b20", "Flush".to_string()),
            ]
        );
        let s = w.stats();
        assert_eq!((s.late, s.held), (2, 4));
    }

    #[test]
    fn untimed_records_follow_their_predecessor() {
        let mut w = Reorder::new(lim(5));
        let out = run(
            &mut w,
            &[
                (None, 1, "junk0"), // nothing dated yet
                (Some(30), 1, "a30"),
                (None, 1, "junk_after_a30"),
                (Some(20), 1, "b20"),
                (None, 1, "junk_after_b20"),
                (Some(40), 1, "c40"), // releases 20 and 30 and their followers
                (Some(10), 1, "late10"),
                (None, 1, "junk_after_late10"), // its slot (10) is gone
            ],
        );
        assert_eq!(
            names(&out),
            vec![
                "junk0",
                "b20",
                "junk_after_b20",
                "a30",
                "junk_after_a30",
                "late10",
                "junk_after_late10",
                "c40"
            ]
        );
        let s = w.stats();
        assert_eq!((s.untimed, s.late, s.held), (2, 1, 5));
    }

    #[test]
    fn caps_force_the_oldest_out() {
        let mut w = Reorder::new(Limits {
            max_records: 2,
            ..lim(1000)
        });
        let out = run(
            &mut w,
            &[
                (Some(5), 1, "a5"),
                (Some(3), 1, "b3"),
                (Some(4), 1, "c4"),
                (Some(1), 1, "d1"),
            ],
        );
        // c4 makes three: b3 (the smallest) goes; d1 then sorts before it: late.
        assert_eq!(
            out,
            vec![
                ("b3", "Cap".to_string()),
                ("d1", "Late".to_string()),
                ("c4", "Flush".to_string()),
                ("a5", "Flush".to_string()),
            ]
        );
        let mut w = Reorder::new(Limits {
            max_bytes: 3 * (10 + ENTRY_OVERHEAD),
            ..lim(1000)
        });
        let recs: Vec<_> = (0..10).map(|i| (Some(100 - i), 1, "r")).collect();
        run(&mut w, &recs);
        let s = w.stats();
        // The fourth record (97, the smallest) is forced out at once; every
        // later one sorts before it: late.
        assert_eq!((s.by_cap, s.by_flush, s.late, s.peak_records), (1, 3, 6, 4));
        assert!(w.is_empty() && w.bytes() == 0);
    }

    #[test]
    fn extreme_times_and_limits_neither_overflow_nor_lose_records() {
        let mut w = Reorder::new(Limits {
            window_secs: i64::MAX,
            max_records: 0,
            max_bytes: 0,
            max_hold_ms: Some(u64::MAX),
        });
        let out = run(
            &mut w,
            &[
                (Some(i64::MAX), 1, "max"),
                (Some(i64::MIN), 1, "min"),
                (None, 0, "none"),
            ],
        );
        // Caps of 0: every record is released as soon as it is held.
        assert_eq!(names(&out), vec!["max", "min", "none"]);
        assert_eq!(w.stats().late, 1);
        let mut w = Reorder::new(lim(-5));
        assert_eq!(w.limits().window_secs, 0);
        let out = run(
            &mut w,
            &[(Some(i64::MIN), 1, "a"), (Some(i64::MAX), 1, "b")],
        );
        assert_eq!(names(&out), vec!["a", "b"]);
        // Behind the last released (i64::MAX): late, whatever its size.
        assert_eq!(
            w.push((Some(0), 1), "c", usize::MAX, Some(u64::MAX)),
            Pushed::Now("c", Direct::Late)
        );
        assert_eq!(w.next_deadline(), None);
        assert_eq!(w.pop_flush(), None);
    }

    #[test]
    fn the_wall_clock_bounds_how_long_a_record_is_held() {
        let mut w = Reorder::new(Limits {
            max_hold_ms: Some(1000),
            ..lim(600)
        });
        assert_eq!(w.push((Some(100), 1), "a", 1, Some(0)), Pushed::Held);
        assert_eq!(w.push((Some(90), 1), "b", 1, Some(500)), Pushed::Held);
        assert_eq!(w.push((Some(95), 1), "c", 1, Some(700)), Pushed::Held);
        assert_eq!(w.next_deadline(), Some(1000));
        assert_eq!(w.pop_due(Some(999)), None);
        // "a" has waited 1 s: it goes, and b and c, which sort before it.
        assert_eq!(w.pop_due(Some(1000)), Some(("b", Release::Age)));
        assert_eq!(w.pop_due(Some(1000)), Some(("c", Release::Age)));
        assert_eq!(w.pop_due(Some(1000)), Some(("a", Release::Age)));
        assert_eq!(w.pop_due(Some(1000)), None);
        assert_eq!(w.next_deadline(), None);
        // Something that sorts after an aged record stays until its own time.
        assert_eq!(w.push((Some(200), 1), "d", 1, Some(1100)), Pushed::Held);
        assert_eq!(w.push((Some(150), 1), "e", 1, Some(1900)), Pushed::Held);
        assert_eq!(w.pop_due(Some(2100)), Some(("e", Release::Age)));
        assert_eq!(w.pop_due(Some(2100)), Some(("d", Release::Age)));
        assert_eq!(w.push((Some(300), 1), "f", 1, Some(2200)), Pushed::Held);
        assert_eq!(w.push((Some(310), 1), "g", 1, Some(2900)), Pushed::Held);
        assert_eq!(w.pop_due(Some(3200)), Some(("f", Release::Age)));
        assert_eq!(w.pop_due(Some(3200)), None);
        assert_eq!(w.next_deadline(), Some(3900));
        assert_eq!(w.stats().by_age, 6);
    }

    #[test]
    fn nothing_is_lost_and_output_is_sorted_apart_from_late_records() {
        // A pseudo-random trail: every record comes back exactly once, the
        // released ones in key order, and with a window as wide as the
        // disorder none is late and the output is the sorted input.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for (window, cap) in [(30, usize::MAX), (30, 50), (5, usize::MAX)] {
            let mut w = Reorder::new(Limits {
                max_records: cap,
                ..lim(window)
            });
            let mut keyed: Vec<(i64, i64, u8, u64)> = (0..2000u64)
                .map(|i| {
                    let t = i as i64 / 4 + rnd(31) as i64;
                    // Delivered by time + [0, 30]: at most 30 s behind a
                    // record delivered before it.
                    (t + rnd(31) as i64, t, rnd(2) as u8, i)
                })
                .collect();
            keyed.sort_unstable();
            let keyed: Vec<(i64, u8, u64)> = keyed.iter().map(|x| (x.1, x.2, x.3)).collect();
            let mut out: Vec<((i64, u8, u64), bool)> = Vec::new();
            for (arrival, &(t, r, _)) in keyed.iter().enumerate() {
                let k = (t, r, arrival as u64);
                if let Pushed::Now(k, _) = w.push((Some(t), r), k, 100, None) {
                    out.push((k, true));
                }
                while let Some((k, _)) = w.pop_due(None) {
                    out.push((k, false));
                }
            }
            while let Some((k, _)) = w.pop_flush() {
                out.push((k, false));
            }
            assert_eq!(out.len(), 2000);
            let mut all: Vec<_> = out.iter().map(|x| x.0.2).collect();
            all.sort_unstable();
            assert!(all.iter().copied().eq(0..2000));
            let released: Vec<_> = out.iter().filter(|x| !x.1).map(|x| x.0).collect();
            assert!(released.windows(2).all(|p| p[0] < p[1]));
            let s = w.stats();
            assert_eq!(s.late, out.iter().filter(|x| x.1).count() as u64);
            assert_eq!(s.held, s.by_watermark + s.by_cap + s.by_flush);
            if window == 30 && cap == usize::MAX {
                assert_eq!(s.late, 0);
                let mut sorted: Vec<_> = out.iter().map(|x| x.0).collect();
                sorted.sort_unstable();
                assert_eq!(out.iter().map(|x| x.0).collect::<Vec<_>>(), sorted);
            } else {
                assert!(
                    s.late > 0,
                    "window {window} cap {cap}: the test must reach late records"
                );
            }
            assert!(s.peak_records <= (cap as u64).saturating_add(1));
        }
    }
}
