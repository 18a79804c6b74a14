//! How generated records are delivered: out of `eventTime` order within `disorder`, redelivered twice or late, and wrapped in CloudWatch Logs subscription messages.

use super::*;

impl Iterator for Trail {
    type Item = GeneratedRecord;

    fn next(&mut self) -> Option<GeneratedRecord> {
        if self.remaining == 0 {
            return None;
        }
        let rec = if self.disorder == 0 && !self.redelivery {
            self.pull().1
        } else {
            self.next_delayed()
        };
        self.remaining -= 1;
        Some(rec)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Trail {}

/// Records kept back at most, when delivery is out of order.
pub(super) const HEAP_CAP: usize = 4096;

impl Trail {
    /// The next record in generation (eventTime) order.
    pub(super) fn pull(&mut self) -> (i64, GeneratedRecord) {
        loop {
            if let Some(x) = self.sim.out.pop_front() {
                return x;
            }
            self.sim.step();
        }
    }

    /// Delivery order: each record gets a key `eventTime + [0, disorder]`;
    /// the smallest key leaves once no record still to come can have a
    /// smaller one (or the buffer is full). Either way no record is delivered
    /// more than `disorder` seconds behind one that follows it.
    pub(super) fn next_delayed(&mut self) -> GeneratedRecord {
        loop {
            if self.sim.out.is_empty() {
                self.sim.step();
                continue;
            }
            let t_next = self.sim.out.front().map_or(i64::MAX, |x| x.0);
            let ready = self
                .heap
                .peek()
                .is_some_and(|top| top.key <= t_next || self.heap.len() >= HEAP_CAP);
            if ready && let Some(d) = self.heap.pop() {
                return d.rec;
            }
            let (t, mut rec) = self.pull();
            let jitter = self.order_rng.u64(..=u64::from(self.disorder));
            let mut key = t.saturating_add(i64::try_from(jitter).unwrap_or(i64::MAX));
            let mut copy = None;
            if self.redelivery {
                let r = self.redelivery_rng.u64(..1000);
                // An issuance is never held back minutes: near the end of a
                // trail of fixed length it could fall off the end while the
                // calls made with what it issued stay in, and their truth
                // (its root) would be wrong. Calls before their issuance
                // come from `disorder` and the rule tests.
                let issues = rec.line.contains(r#""credentials":{"accessKeyId""#);
                if r < LATE_PER_MILLE && !issues {
                    // Delivered minutes after later events.
                    let late = self.redelivery_rng.u64(120..=900);
                    key = key.max(t.saturating_add(i64::try_from(late).unwrap_or(0)));
                    rec.truth.late = true;
                } else if r < LATE_PER_MILLE + DUPLICATE_PER_MILLE {
                    // Delivered twice: the copy up to ten minutes later.
                    let later = self.redelivery_rng.u64(..=600);
                    let mut dup = rec.clone();
                    dup.truth.duplicate = true;
                    copy = Some((key.saturating_add(i64::try_from(later).unwrap_or(0)), dup));
                }
            }
            self.push_delayed(key, rec);
            if let Some((k, dup)) = copy {
                // After the original: same key, later sequence number.
                self.push_delayed(k, dup);
            }
        }
    }

    pub(super) fn push_delayed(&mut self, key: i64, rec: GeneratedRecord) {
        self.seq = self.seq.wrapping_add(1);
        self.heap.push(Delayed {
            key,
            seq: self.seq,
            rec,
        });
    }

    /// The trail as output lines: each record on its own line, or — with
    /// `cloudwatch_per_mille` > 0 — that share of lines a CloudWatch Logs
    /// subscription message (`{"messageType":"DATA_MESSAGE",…,"logEvents":
    /// [{"id","timestamp","message":"<record JSON>"},…]}`) holding the next
    /// 1 to 5 records of the trail. An engine that unrolls the envelopes
    /// (SPEC 2, v1.1) writes one output line per record, in order, so the
    /// concatenated `truths` line up with its output. 0: exactly the lines of
    /// the trail, one per record.
    pub fn lines(self, cloudwatch_per_mille: u16) -> Lines {
        let seed = self.sim.seed;
        Lines {
            trail: self,
            per_mille: u64::from(cloudwatch_per_mille.min(1000)),
            rng: Rng::with_seed(seed ^ 0x6377_6c6f_6773_5f72),
        }
    }
}

/// One output line of [`Trail::lines`] and the truths of the records in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedLine {
    /// One compact JSON object, no newline.
    pub line: String,
    /// One per CloudTrail record in the line, in order.
    pub truths: Vec<Truth>,
}

/// Iterator of [`Trail::lines`].
pub struct Lines {
    trail: Trail,
    per_mille: u64,
    rng: Rng,
}

impl Iterator for Lines {
    type Item = GeneratedLine;

    fn next(&mut self) -> Option<GeneratedLine> {
        let first = self.trail.next()?;
        if self.per_mille == 0 || self.rng.u64(..1000) >= self.per_mille {
            return Some(GeneratedLine {
                line: first.line,
                truths: vec![first.truth],
            });
        }
        let n = self.rng.usize(1..=5);
        let mut recs = vec![first];
        while recs.len() < n {
            match self.trail.next() {
                Some(r) => recs.push(r),
                None => break,
            }
        }
        let line = cloudwatch_envelope(&mut self.rng, &recs);
        Some(GeneratedLine {
            line,
            truths: recs.into_iter().map(|r| r.truth).collect(),
        })
    }
}

/// Share of records delivered late / twice with `redelivery`.
pub(super) const LATE_PER_MILLE: u64 = 5;
pub(super) const DUPLICATE_PER_MILLE: u64 = 10;

/// A top-level string member of a generated record (no escapes in the
/// generator's values of these keys).
pub(super) fn member<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":\"");
    let start = line.find(&pat)? + pat.len();
    let len = line.get(start..)?.find('"')?;
    line.get(start..start + len)
}

/// Unix milliseconds of a generated record's `eventTime` (ISO or Lake form).
pub(super) fn event_millis(line: &str) -> i64 {
    let Some(t) = member(line, "eventTime") else {
        return 0;
    };
    let parsed = chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%SZ")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f"));
    parsed.map_or(0, |d| d.and_utc().timestamp_millis())
}

/// CloudWatch Logs subscription data (what a subscription filter delivers,
/// after gunzip) for a CloudTrail log group holding `recs`.
pub(super) fn cloudwatch_envelope(rng: &mut Rng, recs: &[GeneratedRecord]) -> String {
    let head = recs.first().map_or("", |r| r.line.as_str());
    let owner = member(head, "recipientAccountId").unwrap_or("000000000000");
    let region = member(head, "awsRegion").unwrap_or("us-east-1");
    let mut s = String::with_capacity(recs.iter().map(|r| r.line.len() + 160).sum::<usize>() + 400);
    s.push_str("{\"messageType\":\"DATA_MESSAGE\",\"owner\":");
    push_json_str(&mut s, owner);
    s.push_str(",\"logGroup\":");
    push_json_str(
        &mut s,
        &format!(
            "aws-cloudtrail-logs-{owner}-{:08x}",
            mix(rng.u64(..), 1) as u32
        ),
    );
    s.push_str(",\"logStream\":");
    push_json_str(&mut s, &format!("{owner}_CloudTrail_{region}"));
    s.push_str(",\"subscriptionFilters\":[\"cloudtrail-to-siem\"],\"logEvents\":[");
    for (i, r) in recs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let ms = event_millis(&r.line);
        // CloudWatch's event ids: 56 decimal digits.
        let _ = write!(
            s,
            "{{\"id\":\"{:019}{:019}{:018}\",\"timestamp\":{ms},\"message\":",
            rng.u64(..) % 10_000_000_000_000_000_000,
            rng.u64(..) % 10_000_000_000_000_000_000,
            rng.u64(..) % 1_000_000_000_000_000_000
        );
        push_json_str(&mut s, &r.line);
        s.push('}');
    }
    s.push_str("]}");
    s
}

pub(super) struct Delayed {
    pub(super) key: i64,
    pub(super) seq: u64,
    pub(super) rec: GeneratedRecord,
}

impl Ord for Delayed {
    // Reversed: BinaryHeap is a max-heap, we want the smallest (key, seq).
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .key
            .cmp(&self.key)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Delayed {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.seq == other.seq
    }
}

impl Eq for Delayed {}
