//! Batch mode: the first pass's lookahead (each set's liveness and lineage as the whole input shows it), the sort key, and the facts path — read each record once, learn and patch on its facts, write the output from the patch.

use super::Enricher;
use super::lineage::{Line, MAX_HOPS, STS_ISSUING};
use super::{Outcome, Shape, Unread, outcome};
use crate::Error;
use crate::annotation::Annotation;
use crate::fingerprint::Fingerprint;
use crate::record::{self, Event, Outer, Pack, Packer, Unpacker};
use crate::time::parse_iso;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// Sets seen by a first pass over the same records (batch mode): used to
/// mark collisions with sets whose first use comes later in time order, and
/// to give every event the lineage its set has once the whole input is known
/// (SPEC 3.2: parents observed after their children, same-second chains).
#[derive(Debug, Default, Clone)]
pub struct Lookahead {
    pub(super) by_key: HashMap<Arc<str>, Vec<(Fingerprint, i64, i64)>>,
    /// Each set's own lineage as the first pass last saw it; resolved
    /// through the parents by [`Enricher::take_lookahead`].
    pub(super) lineage: HashMap<Fingerprint, Line>,
}

impl Lookahead {
    /// Resolve every recorded set's lineage through its recorded parents.
    fn resolve(&mut self) {
        let mut done: HashMap<Fingerprint, Line> = HashMap::with_capacity(self.lineage.len());
        let mut fps: Vec<Fingerprint> = self.lineage.keys().copied().collect();
        fps.sort();
        for fp in fps {
            let mut path: Vec<Fingerprint> = Vec::new();
            let mut cur = fp;
            // Walk up to a resolved set, a set without a (known) parent, a loop or the hop limit.
            let mut base: Option<Line> = loop {
                if let Some(l) = done.get(&cur) {
                    break Some(l.clone());
                }
                let Some(l) = self.lineage.get(&cur) else {
                    break None;
                };
                path.push(cur);
                match l.parent {
                    Some(p)
                        if self.lineage.contains_key(&p)
                            && !path.contains(&p)
                            && path.len() < MAX_HOPS =>
                    {
                        cur = p
                    }
                    _ => break None,
                }
            };
            while let Some(f) = path.pop() {
                let Some(own) = self.lineage.get(&f) else {
                    continue;
                };
                let l = match &base {
                    Some(b) => own.under(b),
                    None => own.clone(),
                };
                done.insert(f, l.clone());
                base = Some(l);
            }
        }
        self.lineage = done;
    }
}

/// The kinds of [`Enricher::facts`]: an event to annotate, or why not.
const FACTS_EVENT: u8 = 0;
const FACTS_JSON: u8 = 1;
const FACTS_NOT_OBJECT: u8 = 2;
const FACTS_NOT_CLOUDTRAIL: u8 = 3;

/// Which event of a record the rules read (SPEC 2): the record itself when
/// it is a CloudTrail record, else its EventBridge `detail`, else the first
/// string field holding one; `None` when there is none.
fn choose<'o>(outer: &'o Outer<'_>) -> Option<Cow<'o, Event<'o>>> {
    if outer.event.is_cloudtrail() {
        return Some(Cow::Borrowed(&outer.event));
    }
    if outer.detail.is_cloudtrail() {
        return Some(Cow::Borrowed(&outer.detail));
    }
    outer
        .strings
        .iter()
        .find_map(|s| record::parse_inner(s))
        .map(Cow::Owned)
}

/// Batch mode's sort key of event `ev` of a record whose top level is
/// `outer` ([`Enricher::peek_order`]).
fn order_of(ev: &Event<'_>, outer: &Event<'_>) -> (Option<i64>, u8) {
    let time = |ev: &Event<'_>| {
        ev.event_time
            .get()
            .and_then(parse_iso)
            .or_else(|| ev.timestamp.get().and_then(parse_iso))
    };
    let issuing = ev.event_source.get() == Some("sts.amazonaws.com")
        && ev
            .event_name
            .get()
            .is_some_and(|n| STS_ISSUING.contains(&n))
        && ev.error_code.get().is_none();
    (time(ev).or_else(|| time(outer)), u8::from(!issuing))
}

impl Enricher {
    /// Batch mode, first pass: remember every credential set this enricher creates.
    pub fn record_lookahead(&mut self) {
        self.recorder = Some(Lookahead::default());
    }

    /// Batch mode: take what the first pass recorded, each set's lineage
    /// resolved through its parents as the whole input shows them.
    pub fn take_lookahead(&mut self) -> Lookahead {
        let mut l = self.recorder.take().unwrap_or_default();
        l.resolve();
        l
    }

    /// Batch mode, second pass: count collisions with sets the first pass saw.
    pub fn use_lookahead(&mut self, l: Lookahead) {
        self.lookahead = Some(l);
    }

    /// Batch mode, reading the input: read `record` once and append its
    /// **facts** to `out` — what the rules can see of it (its view, packed
    /// by [`record::Pack`], and where its annotation goes), or why it will
    /// be passed through. No state is touched. Returns what batch mode sorts
    /// it by ([`peek_order`](Self::peek_order)). Then
    /// [`patch_facts`](Self::patch_facts) on the facts, in the same order,
    /// does what [`process`](Self::process) would do to the record, and
    /// [`apply_patch`](Self::apply_patch) gives the same output bytes.
    pub fn facts(&self, record: &[u8], p: &mut Packer, out: &mut Vec<u8>) -> (Option<i64>, u8) {
        let mut outer = Outer::default();
        let kind = |out: &mut Vec<u8>, k: u8| {
            out.push(k);
            record::put_varint(out, record.len() as u64);
        };
        let shape = match self.read_record(record, &mut outer) {
            Ok(shape) => shape,
            Err(Unread::Json(reason)) => {
                kind(out, FACTS_JSON);
                out.extend_from_slice(reason.as_bytes());
                return (None, 1);
            }
            Err(Unread::NotObject) => {
                kind(out, FACTS_NOT_OBJECT);
                return (None, 1);
            }
            Err(Unread::NotCloudTrail) => {
                kind(out, FACTS_NOT_CLOUDTRAIL);
                return (None, 1);
            }
        };
        let Some(ev) = choose(&outer) else {
            kind(out, FACTS_NOT_CLOUDTRAIL);
            return (None, 1);
        };
        kind(out, FACTS_EVENT);
        out.push(u8::from(shape.has_own));
        record::put_varint(out, shape.close as u64);
        record::put_varint(out, shape.members as u64);
        p.clear();
        ev.pack(p);
        outer.event.timestamp.pack(p);
        p.finish(out);
        order_of(&ev, &outer.event)
    }

    /// Batch mode: [`annotate_shaped`](Self::annotate_shaped) on a record's
    /// [`facts`](Self::facts) — the same rules, the same counts, no JSON read.
    fn annotate_facts(
        &mut self,
        facts: &[u8],
        host_time: Option<i64>,
    ) -> Result<(Annotation, Shape), Error> {
        let index = self.stats.records;
        self.stats.records += 1;
        let mut i = 1;
        let len = record::get_varint(facts, &mut i);
        let unreadable = || {
            Unread::Json(
                "batch mode cannot read back the facts of this record (internal error)".into(),
            )
        };
        match (facts.first().copied(), len) {
            (Some(FACTS_EVENT), Some(_)) => {}
            (Some(FACTS_JSON), Some(_)) => {
                let reason = String::from_utf8_lossy(facts.get(i..).unwrap_or_default());
                return Err(self.not_annotated(index, Unread::Json(reason.into_owned())));
            }
            (Some(FACTS_NOT_OBJECT), Some(_)) => {
                return Err(self.not_annotated(index, Unread::NotObject));
            }
            (Some(FACTS_NOT_CLOUDTRAIL), Some(_)) => {
                return Err(self.not_annotated(index, Unread::NotCloudTrail));
            }
            _ => return Err(self.not_annotated(index, unreadable())),
        }
        let read = || -> Option<(Shape, Event<'_>, Event<'_>)> {
            let mut i = i;
            let has_own = match *facts.get(i)? {
                0 => false,
                1 => true,
                _ => return None,
            };
            i += 1;
            let close = usize::try_from(record::get_varint(facts, &mut i)?).ok()?;
            let members = usize::try_from(record::get_varint(facts, &mut i)?).ok()?;
            let mut u = Unpacker::new(facts.get(i..)?)?;
            let mut ev = Event::default();
            ev.unpack(&mut u)?;
            let mut outer = Event::default();
            outer.timestamp.unpack(&mut u)?;
            u.at_end().then_some(())?;
            Some((
                Shape {
                    has_own,
                    close,
                    members,
                },
                ev,
                outer,
            ))
        };
        let Some((shape, ev, outer)) = read() else {
            return Err(self.not_annotated(index, unreadable()));
        };
        Ok((self.annotate_chosen(&ev, &outer, host_time), shape))
    }

    /// Batch mode, first pass: [`annotate`](Self::annotate) on a record's
    /// [`facts`](Self::facts) (the state and the lookahead are what matter).
    pub fn learn_facts(&mut self, facts: &[u8]) {
        let _ = self.annotate_facts(facts, None);
    }

    /// Batch mode, second pass: the rules on a record's
    /// [`facts`](Self::facts), as [`process_into`](Self::process_into) on
    /// the record; appends to `patch` what [`apply_patch`](Self::apply_patch)
    /// needs to write the output from the record (its length, where the
    /// annotation goes and the annotation, [packed](Annotation::pack), or
    /// that it is passed through unchanged).
    pub fn patch_facts(&mut self, facts: &[u8], patch: &mut Vec<u8>) -> Outcome {
        let mut i = 1;
        let len = record::get_varint(facts, &mut i).unwrap_or(0);
        record::put_varint(patch, len);
        match self.annotate_facts(facts, None) {
            Ok((ann, shape)) => {
                patch.push(1 | (u8::from(shape.has_own) << 1));
                record::put_varint(patch, shape.close as u64);
                record::put_varint(patch, shape.members as u64);
                ann.pack(patch);
                Outcome::Annotated
            }
            Err(e) => {
                patch.push(0);
                outcome(e)
            }
        }
    }

    /// Batch mode, output: append to `out` the output of `record` that
    /// `patch` ([`patch_facts`](Self::patch_facts)) describes — the bytes
    /// [`process_into`](Self::process_into) would have written. `false`
    /// (nothing written) when `patch` was not made from this record (its
    /// length or shape differ).
    pub fn apply_patch(&self, record: &[u8], patch: &[u8], out: &mut Vec<u8>) -> bool {
        let mut i = 0;
        if record::get_varint(patch, &mut i) != Some(record.len() as u64) {
            return false;
        }
        let Some(&flags) = patch.get(i) else {
            return false;
        };
        i += 1;
        if flags & 1 == 0 {
            out.extend_from_slice(record);
            return true;
        }
        let (Some(close), Some(members)) = (
            record::get_varint(patch, &mut i).and_then(|v| usize::try_from(v).ok()),
            record::get_varint(patch, &mut i).and_then(|v| usize::try_from(v).ok()),
        ) else {
            return false;
        };
        let has_own = flags & 2 != 0;
        if !has_own && record.get(close) != Some(&b'}') {
            return false;
        }
        let Some(ann) = Annotation::unpack(patch.get(i..).unwrap_or_default()) else {
            return false;
        };
        let shape = Shape {
            has_own,
            close,
            members,
        };
        self.emit(record, shape, out, |o| self.write_annotation(&ann, o));
        true
    }

    /// The event time of a record (its `eventTime`, else `@timestamp`, in any
    /// accepted wrapper), without touching the state. For ordering batches.
    pub fn peek_time(&self, record: &[u8]) -> Option<i64> {
        self.peek_order(record).0
    }

    /// What batch mode sorts a record by: its event time ([`peek_time`](Self::peek_time))
    /// and then 0 for an STS issuance, 1 for anything else — so within one
    /// second an issuance comes before the calls made with what it issued,
    /// and the set's fingerprint comes from the issuance (SPEC 3.3).
    pub fn peek_order(&self, record: &[u8]) -> (Option<i64>, u8) {
        let Some(outer) = record::parse_outer(record, &self.top).ok().flatten() else {
            return (None, 1);
        };
        match choose(&outer) {
            Some(ev) => order_of(&ev, &outer.event),
            None => (None, 1),
        }
    }

    /// Batch first pass: remember the liveness and lineage of set `fp` as it is now.
    pub(super) fn record_set(&mut self, fp: Fingerprint) {
        let Some(r) = &mut self.recorder else { return };
        let Some(s) = self.state.sets.peek(&fp) else {
            return;
        };
        r.lineage.insert(fp, Line::of(s));
        let entry = (fp, s.start, s.live_until());
        let v = r.by_key.entry(Arc::from(s.key.as_str())).or_default();
        match v.iter_mut().find(|e| e.0 == fp) {
            Some(e) => *e = entry,
            None => {
                if v.len() >= crate::state::MAX_SETS_PER_KEY {
                    v.remove(0);
                }
                v.push(entry)
            }
        }
    }

    /// Batch first pass: a use of set `fp` extends its liveness (SPEC 3.4).
    pub(super) fn record_use(&mut self, fp: Fingerprint) {
        let Some(r) = &mut self.recorder else { return };
        let Some(s) = self.state.sets.peek(&fp) else {
            return;
        };
        let end = s.live_until();
        if let Some(e) = r
            .by_key
            .get_mut(s.key.as_str())
            .and_then(|v| v.iter_mut().find(|e| e.0 == fp))
        {
            e.2 = e.2.max(end);
        }
    }
}
