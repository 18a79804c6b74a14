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
mod tests;
