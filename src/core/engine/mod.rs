//! The `Enricher`: reads one record's bytes, applies the lineage, collision and off-host rules of SPEC 3 to its state, and writes the record back with the annotation.
//!
//! `mod.rs` holds the `Enricher` type, its public API and the per-record entry points (read, count, write back); each rule has its own module: `lineage` (SPEC 3.2), `sets` (3.3), `collisions` (3.4), `offhost` (3.5), with `event` applying them in order to one event, `batch` the two-pass batch mode and `redact` the session-token redaction.

mod batch;
mod collisions;
mod event;
mod lineage;
mod offhost;
mod redact;
mod sets;
#[cfg(test)]
mod tests;

pub use batch::Lookahead;

use crate::annotation::{Annotation, RootType};
use crate::fingerprint::{self, Fingerprint};
use crate::record::{self, Event, Outer, OwnKeys, TopKeys};
use crate::splice;
use crate::state::{State, Stats};
use crate::{Config, Error};
use lineage::Line;
use redact::redact_tokens;
use std::sync::Arc;

/// What happened to one record.
#[derive(Debug)]
pub enum Outcome {
    /// A CloudTrail record, annotated.
    Annotated,
    /// A JSON object that is not a CloudTrail record: passed through unchanged.
    PassedThrough(Error),
    /// Not a JSON object (or not readable): passed through unchanged.
    Malformed(Error),
}

/// One credential set the state tracks now, as [`Enricher::tracked_sets`]
/// lists it (for reports: `credlineage report`). Nothing secret: the set is
/// known by its key ID and fingerprint only.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct TrackedSet {
    /// The set's fingerprint (`session_fingerprint` of the calls made with it).
    pub session_fingerprint: Fingerprint,
    /// Its access key ID.
    pub access_key_id: String,
    /// The origin of its chain (SPEC 3.2).
    pub lineage_root: Arc<str>,
    /// The kind of origin.
    pub lineage_root_type: RootType,
    /// STS issuance hops from the root.
    pub lineage_depth: u32,
    /// False when an ancestor was never observed.
    pub lineage_complete: bool,
    /// The set that issued it, when observed.
    pub parent_fingerprint: Option<Fingerprint>,
    /// Issue time (unix seconds) when known: from the issuance event or a
    /// call's `creationDate`.
    pub issued: Option<i64>,
    /// Start of liveness: the issue time, else the first time it was seen.
    pub start: i64,
    /// End of liveness (unix seconds, SPEC 3.4): the observed expiration,
    /// else the issue time plus the longest lifetime of the set's kind —
    /// and at least its last observed use; `i64::MAX` for long-term keys.
    pub expires: i64,
    /// `expires` is the expiration of an observed issuance.
    pub expiration_observed: bool,
    /// The issuance event itself was observed.
    pub issuance_observed: bool,
}

/// Where the annotation goes in a record just read.
#[derive(Debug, Clone, Copy)]
struct Shape {
    /// The record holds stale copies of credlineage's own key(s).
    has_own: bool,
    /// Byte offset of the closing `}`.
    close: usize,
    /// Number of top-level members.
    members: usize,
}

impl Shape {
    /// Where the annotation of the object read into `outer` goes.
    #[inline(always)]
    fn of(outer: &Outer<'_>) -> Shape {
        Shape {
            has_own: outer.own_keys > 0,
            close: outer.close,
            members: outer.members,
        }
    }
}

/// The stateful enrichment transform. Bytes in, bytes out; no I/O.
///
/// ```
/// use credlineage::{Config, Enricher};
/// let mut e = Enricher::new(Config::default()).unwrap();
/// let rec = br#"{"eventName":"ListBuckets","eventSource":"s3.amazonaws.com","eventTime":"2024-08-01T12:00:00Z",
///   "userIdentity":{"type":"IAMUser","accountId":"111122223333","arn":"arn:aws:iam::111122223333:user/alice","accessKeyId":"AKIAIOSFODNN7EXAMPLE"}}"#;
/// let out = e.process(rec, None);
/// let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
/// assert_eq!(v["credlineage"]["lineage_root"], "AKIAIOSFODNN7EXAMPLE");
/// ```
pub struct Enricher {
    config: Config,
    state: State,
    stats: Stats,
    digest: String,
    hash_seed: u64,
    /// Escaped flatten prefix (or empty).
    prefix: Vec<u8>,
    /// The top-level keys that need special treatment, for the reader.
    top: TopKeys,
    /// Fingerprints of long-term keys seen recently.
    long_term: fingerprint::LongTermMemo,
    lookahead: Option<Lookahead>,
    recorder: Option<Lookahead>,
    /// Record count at which the next full sweep of expired state runs.
    next_sweep: u64,
    /// An event time more than [`MAX_CLOCK_JUMP`] ahead of the clock, seen on
    /// the record before: the next such record confirms the jump (SPEC 2).
    pending_jump: Option<i64>,
}

/// One record cannot move the clock further ahead than this by itself (SPEC 2).
pub(crate) const MAX_CLOCK_JUMP: i64 = 24 * 3600;

/// A full sweep of expired state runs at most once per this many records
/// (or per as many records as there are tracked sets, whichever is more).
const SWEEP_MIN: u64 = 65_536;

/// Why a record is not annotated (before it is counted).
enum Unread {
    /// Not JSON (or not UTF-8): the reason.
    Json(String),
    /// JSON, but not an object.
    NotObject,
    /// An object, but no CloudTrail record in it.
    NotCloudTrail,
}

/// The outcome of a record that is not annotated.
fn outcome(e: Error) -> Outcome {
    match e {
        Error::NotCloudTrail { .. } => Outcome::PassedThrough(e),
        e => Outcome::Malformed(e),
    }
}

/// Annotation member names, for replacing them in flattened mode.
const OWN_FIELDS: [&str; 21] = [
    "v",
    "credential_type",
    "access_key_id",
    "key_account",
    "session_fingerprint",
    "lineage_root",
    "lineage_root_type",
    "lineage_depth",
    "lineage_complete",
    "parent_fingerprint",
    "is_key_collision",
    "collision_count",
    "ec2_cred_offhost",
    "ec2_instance_id",
    "offhost_reason",
    "offhost_other_identity",
    "offhost_ancestor",
    "issued",
    "created_by",
    "used_after_expiration",
    "self_assume",
];

impl Enricher {
    /// A new enricher with empty state.
    pub fn new(config: Config) -> Result<Enricher, Error> {
        config.validate()?;
        let digest = config.state_digest();
        let prefix = match &config.flatten_prefix {
            Some(p) => {
                let mut v = Vec::new();
                crate::annotation::push_json_str(&mut v, p);
                v[1..v.len() - 1].to_vec()
            }
            None => Vec::new(),
        };
        let own = match &config.flatten_prefix {
            None => OwnKeys::Nested(config.namespace.clone()),
            Some(p) => OwnKeys::Flat {
                prefix: p.clone(),
                fields: &OWN_FIELDS,
            },
        };
        let top = TopKeys::new(&config.string_fields, own);
        Ok(Enricher {
            top,
            long_term: Default::default(),
            state: State::new(0x5eed),
            stats: Stats::default(),
            digest,
            hash_seed: 0x5eed,
            prefix,
            config,
            lookahead: None,
            recorder: None,
            next_sweep: SWEEP_MIN,
            pending_jump: None,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.tracked_sets = self.state.sets.len() as u64;
        s.state_bytes = self.state.total_bytes() as u64;
        s
    }

    /// Seed the internal hash tables (HashDoS resistance); call before the
    /// first record. Output never depends on it.
    pub fn set_hash_seed(&mut self, seed: u64) {
        self.hash_seed = seed;
        self.state = State::new(seed);
    }

    /// Save the whole state (versioned, checksummed; no secrets).
    pub fn snapshot(&self) -> Vec<u8> {
        self.state.snapshot(&self.digest)
    }

    /// Write the snapshot [`snapshot`](Self::snapshot) returns into `w`,
    /// streamed from the state: no copy of it and no buffer of the whole
    /// snapshot (give a buffered writer; the digest is written last, at
    /// its place in the header, hence `Seek`).
    pub fn write_snapshot<W: std::io::Write + std::io::Seek>(&self, w: W) -> std::io::Result<()> {
        self.state.write_snapshot(&self.digest, w)
    }

    /// Replace the state with a snapshot. A corrupt, foreign or
    /// differently-configured snapshot is refused and the state is unchanged.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.restore_from(bytes)
    }

    /// [`restore`](Self::restore) from a reader, streamed: the new state is
    /// built as the snapshot is read (give a buffered reader), without a
    /// copy of the file or a decoded copy of it; the old state is kept until
    /// the snapshot is accepted.
    pub fn restore_from<R: std::io::Read>(&mut self, r: R) -> Result<(), Error> {
        let mut st = State::restore_from(r, &self.digest, self.hash_seed)?;
        self.stats.evictions += st.enforce_caps(self.config.max_entries, self.config.max_bytes);
        self.state = st;
        Ok(())
    }

    fn is_own_key(&self, k: &str) -> bool {
        self.top.is_own(k)
    }

    /// The credential sets tracked now, in fingerprint order (deterministic).
    pub fn tracked_sets(&self) -> Vec<TrackedSet> {
        let mut v: Vec<TrackedSet> = self
            .state
            .sets
            .iter()
            .map(|(fp, s)| {
                let l = self.line_of(*fp).unwrap_or_else(|| Line::of(s));
                TrackedSet {
                    session_fingerprint: *fp,
                    access_key_id: s.key.as_str().to_string(),
                    lineage_root: l.root.id,
                    lineage_root_type: l.root.kind,
                    lineage_depth: l.depth,
                    lineage_complete: l.complete,
                    parent_fingerprint: s.parent,
                    issued: s.issued(),
                    start: s.start,
                    expires: s.live_until(),
                    expiration_observed: s.expiration_observed(),
                    issuance_observed: s.issuance_observed(),
                }
            })
            .collect();
        v.sort_by_key(|t| t.session_fingerprint);
        v
    }

    /// The latest event time seen (unix seconds), `None` before the first record.
    pub fn clock(&self) -> Option<i64> {
        (self.state.clock != i64::MIN).then_some(self.state.clock)
    }

    /// Enrich one record: always returns exactly one record. `host_time` is
    /// the time the host attached (unix seconds), used when the record has no
    /// `eventTime` or `@timestamp`.
    pub fn process(&mut self, record: &[u8], host_time: Option<i64>) -> Vec<u8> {
        let mut out = Vec::with_capacity(record.len() + 512);
        self.process_into(record, host_time, &mut out);
        out
    }

    /// Like [`process`](Self::process), appending to `out`.
    pub fn process_into(
        &mut self,
        record: &[u8],
        host_time: Option<i64>,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let res = self.annotate_shaped(record, host_time);
        self.write_result(record, res, out)
    }

    /// [`process_into`](Self::process_into) for a host that reads the
    /// elements of a document in place (the CLI's S3 delivery files, whose
    /// `Records` it does not cut first): enrich the JSON value that starts
    /// at the first byte of `text` and may be followed by anything, and
    /// return its outcome and its length `len`. What is written, counted
    /// and learned is exactly what `process_into(&text[..len])` does. The
    /// text is UTF-8 already (the host checked the document once), so it is
    /// not checked again.
    ///
    /// `None` — nothing written, nothing counted, no state changed — when
    /// `text` does not start with a complete, valid JSON value (damage, a
    /// document cut short, whitespace first): the host then cuts the
    /// document another way (`input::split`), which says where and why.
    pub fn process_prefix_into(
        &mut self,
        text: &str,
        host_time: Option<i64>,
        out: &mut Vec<u8>,
    ) -> Option<(Outcome, usize)> {
        if text
            .as_bytes()
            .first()
            .is_none_or(|&c| crate::json::is_ws(c))
        {
            return None;
        }
        let mut outer = Outer::default();
        let (object, len) = record::parse_outer_prefix(text, &self.top, &mut outer).ok()?;
        let record = text.as_bytes().get(..len)?;
        let index = self.stats.records;
        self.stats.records += 1;
        let res = if object {
            let shape = Shape::of(&outer);
            self.annotate_outer(index, &outer, host_time)
                .map(|ann| (ann, shape))
        } else {
            Err(self.not_annotated(index, Unread::NotObject))
        };
        Some((self.write_result(record, res, out), len))
    }

    /// The output of a record read by [`annotate_shaped`](Self::annotate_shaped):
    /// annotated, or passed through unchanged.
    #[inline(always)]
    fn write_result(
        &self,
        record: &[u8],
        res: Result<(Annotation, Shape), Error>,
        out: &mut Vec<u8>,
    ) -> Outcome {
        match res {
            Ok((ann, shape)) => {
                self.emit(record, shape, out, |o| self.write_annotation(&ann, o));
                Outcome::Annotated
            }
            Err(e) => {
                out.extend_from_slice(record);
                outcome(e)
            }
        }
    }

    /// The output of an annotated record: `record` with the annotation
    /// (`write` appends it, without a leading comma) spliced in where
    /// `shape` says, any stale copy of our own keys dropped, session tokens
    /// redacted when configured.
    #[inline]
    fn emit(&self, record: &[u8], shape: Shape, out: &mut Vec<u8>, write: impl Fn(&mut Vec<u8>)) {
        let start = out.len();
        splice::splice(
            record,
            shape.close,
            shape.members,
            shape.has_own,
            &|k| self.is_own_key(k),
            out,
            &|o, first| {
                if !first {
                    o.push(b',');
                }
                write(o);
            },
        );
        if self.config.redact_session_tokens {
            redact_tokens(out, start);
        }
    }

    /// The annotation as the output's member(s): `"ns":{…}`, or the
    /// flattened members.
    #[inline]
    fn write_annotation(&self, ann: &Annotation, o: &mut Vec<u8>) {
        if self.config.flatten_prefix.is_some() {
            ann.write_members(o, &self.prefix, true);
        } else {
            crate::annotation::push_json_str(o, &self.config.namespace);
            o.extend_from_slice(b":{");
            ann.write_members(o, b"", true);
            o.push(b'}');
        }
    }

    /// The typed API: read one record, update the state and return its
    /// annotation (plus whether the record already holds our key), or why it is
    /// passed through. Counts the record either way.
    pub fn annotate(
        &mut self,
        record: &[u8],
        host_time: Option<i64>,
    ) -> Result<(Annotation, bool), Error> {
        self.annotate_shaped(record, host_time)
            .map(|(a, shape)| (a, shape.has_own))
    }

    /// [`annotate`](Self::annotate), also returning where the output goes.
    fn annotate_shaped(
        &mut self,
        record: &[u8],
        host_time: Option<i64>,
    ) -> Result<(Annotation, Shape), Error> {
        let index = self.stats.records;
        self.stats.records += 1;
        let mut outer = Outer::default();
        let shape = match self.read_record(record, &mut outer) {
            Ok(shape) => shape,
            Err(u) => return Err(self.not_annotated(index, u)),
        };
        self.annotate_outer(index, &outer, host_time)
            .map(|ann| (ann, shape))
    }

    /// Apply the rules to the record (number `index`) whose top level is
    /// `outer`: to the event it holds, chosen among the record itself, an
    /// EventBridge `detail` and a record in a string field.
    #[inline(always)]
    fn annotate_outer(
        &mut self,
        index: u64,
        outer: &Outer<'_>,
        host_time: Option<i64>,
    ) -> Result<Annotation, Error> {
        // The same choice as `choose` (batch.rs), written out here: a shared
        // callback version measured ~1% slower streaming (ab-cli 0.986-0.988
        // against 0.996 for a build against itself), and this is the hot path.
        Ok(if outer.event.is_cloudtrail() {
            self.annotate_chosen(&outer.event, &outer.event, host_time)
        } else if outer.detail.is_cloudtrail() {
            self.annotate_chosen(&outer.detail, &outer.event, host_time)
        } else {
            match outer.strings.iter().find_map(|s| record::parse_inner(s)) {
                Some(inner) => self.annotate_chosen(&inner, &outer.event, host_time),
                None => return Err(self.not_annotated(index, Unread::NotCloudTrail)),
            }
        })
    }

    /// Read one record's view into `outer` (no state touched).
    #[inline]
    fn read_record<'r>(&self, record: &'r [u8], outer: &mut Outer<'r>) -> Result<Shape, Unread> {
        // JSON text is UTF-8 (RFC 8259), and an annotated record must come
        // out as valid JSON: the scanner checks UTF-8 in the same pass as the
        // grammar (only strings may hold non-ASCII bytes). Invalid UTF-8 is
        // reported as such wherever it is, as when it was checked first.
        match record::parse_outer_into(record, &self.top, outer) {
            Err(e) => Err(Unread::Json(match std::str::from_utf8(record) {
                Err(u) => format!("invalid UTF-8 at byte {}", u.valid_up_to()),
                Ok(_) => e.to_string(),
            })),
            Ok(false) => Err(Unread::NotObject),
            Ok(true) => Ok(Shape::of(outer)),
        }
    }

    /// Count record `index`, which is not annotated, and say why.
    fn not_annotated(&mut self, index: u64, u: Unread) -> Error {
        match u {
            Unread::Json(reason) => {
                self.stats.malformed += 1;
                Error::InvalidJson { index, reason }
            }
            Unread::NotObject => {
                self.stats.malformed += 1;
                Error::NotObject { index }
            }
            Unread::NotCloudTrail => {
                self.stats.passed_through += 1;
                Error::NotCloudTrail { index }
            }
        }
    }

    /// Apply the rules to the event `ev` of a record (`outer` is the record's
    /// top level, for its `@timestamp`), and keep the state within bounds.
    fn annotate_chosen(
        &mut self,
        ev: &Event<'_>,
        outer: &Event<'_>,
        host_time: Option<i64>,
    ) -> Annotation {
        let ann = self.annotate_event(ev, outer, host_time);
        self.stats.annotated += 1;
        if ann.is_key_collision {
            self.stats.collisions += 1;
        }
        if ann.ec2_cred_offhost {
            self.stats.offhost += 1;
        }
        self.stats.evictions += self
            .state
            .enforce_caps(self.config.max_entries, self.config.max_bytes);
        self.stats.expired_purged += self.state.purge(
            self.config.expired_grace_secs,
            self.config.ip_retention_secs,
        );
        if self.stats.records >= self.next_sweep {
            self.stats.expired_purged += self.state.sweep(
                self.config.expired_grace_secs,
                self.config.ip_retention_secs,
            );
            self.next_sweep = self.stats.records + (self.state.sets.len() as u64).max(SWEEP_MIN);
        }
        ann
    }
}
