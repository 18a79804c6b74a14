//! The `Enricher`: reads one record's bytes, applies the lineage, collision and off-host rules of SPEC 3 to its state, and writes the record back with the annotation.

use crate::annotation::{Annotation, CreatedBy, CredentialType, Issued, OffhostReason, RootType};
use crate::fingerprint::{self, Fingerprint};
use crate::keyid::{self, KeyKind};
use crate::record::{self, Event, Outer, OwnKeys, Pack, Packer, TopKeys, Unpacker};
use crate::splice;
use crate::state::{
    Creator, CredSet, INSTANCE, NOT_INSTANCE, OFFHOST_LINE, Root, Scope, SetInfo, State, Stats,
};
use crate::time::{parse_expiration, parse_iso};
use crate::{Config, Error};
use smallvec::SmallVec;
use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
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

/// Sets seen by a first pass over the same records (batch mode): used to
/// mark collisions with sets whose first use comes later in time order, and
/// to give every event the lineage its set has once the whole input is known
/// (SPEC 3.2: parents observed after their children, same-second chains).
#[derive(Debug, Default, Clone)]
pub struct Lookahead {
    by_key: HashMap<Arc<str>, Vec<(Fingerprint, i64, i64)>>,
    /// Each set's own lineage as the first pass last saw it; resolved
    /// through the parents by [`Enricher::take_lookahead`].
    lineage: HashMap<Fingerprint, Line>,
}

/// A credential set's lineage: root, depth, completeness, parent and marks.
#[derive(Debug, Clone)]
struct Line {
    root: Root,
    depth: u32,
    complete: bool,
    parent: Option<Fingerprint>,
    marks: u8,
}

impl Line {
    fn of(s: &CredSet) -> Line {
        Line {
            root: s.root(),
            depth: s.depth,
            complete: s.complete(),
            parent: s.parent,
            marks: s.marks(),
        }
    }
    /// This set's lineage given its parent's (resolved) lineage.
    fn under(&self, parent: &Line) -> Line {
        Line {
            root: parent.root.clone(),
            depth: parent.depth.saturating_add(1),
            complete: parent.complete,
            parent: self.parent,
            marks: self.marks | (parent.marks & OFFHOST_LINE),
        }
    }
}

/// A chain is followed at most this many hops up (real chains are a few
/// hops; crafted records can build loops or very long chains).
const MAX_HOPS: usize = 64;

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

/// The caller's credential set, as resolved for one call.
struct Caller {
    fp: Fingerprint,
    root: Root,
    depth: u32,
    complete: bool,
    parent: Option<Fingerprint>,
    expires: i64,
    expiration_observed: bool,
    /// [`INSTANCE`] / [`NOT_INSTANCE`] / [`OFFHOST_LINE`] bits of the set.
    marks: u8,
}

fn is_instance_id(s: &str) -> bool {
    s.len() >= 10
        && s.len() <= 32
        && s.starts_with("i-")
        && s.as_bytes()[2..].iter().all(|c| c.is_ascii_alphanumeric())
}

/// The instance ID an `AssumedRole` session names: its ARN's session name,
/// else the end of its `principalId` (`AROA…:i-…`).
fn session_instance_id<'e>(ev: &'e Event<'_>) -> Option<&'e str> {
    let ui = &ev.user_identity;
    if let Some(arn) = ui.arn.get() {
        if let Some(id) = trailing_instance_id(arn, b'/') {
            if has_assumed_role(arn) {
                return Some(id);
            }
        }
    }
    ui.principal_id
        .get()
        .and_then(|p| trailing_instance_id(p, b':'))
}

/// Whether a call was made with EC2 instance-profile credentials, and the
/// instance (SPEC 3.5): `sessionContext.ec2RoleDelivery`, or the set's
/// observed issuance by `ec2.amazonaws.com` (`marks`), or — only when neither
/// is available — an `AssumedRole` session named after an instance. A
/// federated user, an IAM user or a set issued by anyone else never is.
fn instance_creds<'e>(ev: &'e Event<'_>, marks: u8) -> Option<Option<&'e str>> {
    let ui = &ev.user_identity;
    let kind = ui.kind.get();
    if matches!(kind, Some("FederatedUser" | "IAMUser" | "Root")) || marks & NOT_INSTANCE != 0 {
        return None;
    }
    if ui.session_context.ec2_role_delivery.0 || marks & INSTANCE != 0 {
        return Some(session_instance_id(ev));
    }
    if matches!(kind, None | Some("AssumedRole")) {
        if let Some(id) = session_instance_id(ev) {
            return Some(Some(id));
        }
    }
    None
}

/// The service of a service-linked role's session (SPEC 3.2): the issuer's
/// role path `role/aws-service-role/<service>/…`.
fn service_linked_service<'e>(ev: &'e Event<'_>) -> Option<&'e str> {
    let issuer = ev.user_identity.session_context.session_issuer.arn.get()?;
    let res = issuer.splitn(6, ':').nth(5)?;
    let rest = res.strip_prefix("role/aws-service-role/")?;
    let (service, _) = rest.split_once('/')?;
    (!service.is_empty()).then_some(service)
}

/// `<provider name>` of a SAML root (SPEC 3.2): the last path segment of the
/// provider's ARN; IAM Identity Center's `AWSSSO_<id>_DO_NOT_DELETE` is `AWSSSO`.
fn saml_provider_name(p: &str) -> &str {
    let name = p.rsplit('/').next().unwrap_or(p);
    if name.starts_with("AWSSSO_") && name.ends_with("_DO_NOT_DELETE") {
        "AWSSSO"
    } else {
        name
    }
}

/// The text after the last `sep` of `s` when it is an instance ID
/// ([`is_instance_id`]). An instance ID has at most 32 bytes and no
/// separator, so only the last 33 bytes can hold the separator that
/// matters: one `memrchr` over them (this runs on every record, and is
/// almost always no).
fn trailing_instance_id(s: &str, sep: u8) -> Option<&str> {
    let b = s.as_bytes();
    let from = b.len().saturating_sub(33);
    let at = from + memchr::memrchr(sep, b.get(from..)?)?;
    // `sep` is ASCII, so the byte after it starts a character.
    let id = s.get(at + 1..)?;
    is_instance_id(id).then_some(id)
}

/// Whether `arn` contains `:assumed-role/` (checked at each `:`).
fn has_assumed_role(arn: &str) -> bool {
    let b = arn.as_bytes();
    memchr::memchr_iter(b':', b).any(|i| {
        b.get(i + 1..)
            .is_some_and(|r| r.starts_with(b"assumed-role/"))
    })
}

/// `arn:aws:iam::ACCT:role/path/NAME` + session → `arn:aws:sts::ACCT:assumed-role/NAME/SESSION`.
fn assumed_role_arn(role_arn: &str, session: &str) -> Option<String> {
    let mut parts = role_arn.splitn(6, ':');
    let (_arn, partition, _svc, _region, acct, res) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let name = res.strip_prefix("role/")?.rsplit('/').next()?;
    Some(format!(
        "arn:{partition}:sts::{acct}:assumed-role/{name}/{session}"
    ))
}

fn role_of_session_arn(arn: &str) -> Option<&str> {
    let res = arn.split(':').nth(5)?;
    let rest = res.strip_prefix("assumed-role/")?;
    rest.split('/').next()
}

/// A source that is an AWS service name or `AWS Internal` rather than an address.
fn is_service_source(src: &str) -> bool {
    src.bytes().any(|c| c.is_ascii_alphabetic()) && !src.contains(':')
}

fn root(kind: RootType, id: String) -> Root {
    Root {
        kind,
        id: Arc::from(id),
    }
}

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

const STS_ISSUING: [&str; 6] = [
    "AssumeRole",
    "AssumeRoleWithSAML",
    "AssumeRoleWithWebIdentity",
    "GetSessionToken",
    "GetFederationToken",
    "AssumeRoot",
];

/// The time of a record processed before any record gave a time (its own
/// time unreadable or absent, no host time): earlier than every real event
/// (1901-12-13), so it cannot expire, outlive or collide with dated
/// credentials. It never moves the clock, so nothing prints it.
const UNDATED: i64 = i32::MIN as i64;

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
        match self.annotate_shaped(record, host_time) {
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
        // The same choice as `choose`, without moving the view.
        let ann = if outer.event.is_cloudtrail() {
            self.annotate_chosen(&outer.event, &outer.event, host_time)
        } else if outer.detail.is_cloudtrail() {
            self.annotate_chosen(&outer.detail, &outer.event, host_time)
        } else {
            match outer.strings.iter().find_map(|s| record::parse_inner(s)) {
                Some(inner) => self.annotate_chosen(&inner, &outer.event, host_time),
                None => return Err(self.not_annotated(index, Unread::NotCloudTrail)),
            }
        };
        Ok((ann, shape))
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
            Ok(true) => Ok(Shape {
                has_own: outer.own_keys > 0,
                close: outer.close,
                members: outer.members,
            }),
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

    /// The record's time (SPEC 2): `eventTime`, else `@timestamp`, else the
    /// host's time, else arrival order: the clock (the latest time seen).
    /// Counts a bad time when a time the record holds cannot be read, or when
    /// it has none at all. `None` only when nothing gave a time yet: the
    /// record is then placed before every dated one and must not move the clock.
    fn event_time(
        &mut self,
        ev: &Event<'_>,
        outer: &Event<'_>,
        host_time: Option<i64>,
    ) -> Option<i64> {
        let own = [&ev.event_time, &ev.timestamp, &outer.timestamp];
        let mut unreadable = false;
        let mut found = None;
        for f in own {
            if let Some(s) = f.get() {
                match parse_iso(s) {
                    Some(t) => {
                        found = Some(t);
                        break;
                    }
                    None => unreadable = true,
                }
            }
        }
        if unreadable || (found.is_none() && host_time.is_none()) {
            self.stats.bad_time += 1;
        }
        found
            .or(host_time)
            .or((self.state.clock != i64::MIN).then_some(self.state.clock))
    }

    /// Move the clock (the latest event time seen) to `t` — unless `t` is
    /// more than [`MAX_CLOCK_JUMP`] ahead of it: then only when the record
    /// just before was that far ahead too (SPEC 2: one forged or broken
    /// timestamp cannot expire live credentials); the record's own
    /// annotation uses `t` either way.
    fn advance_clock(&mut self, t: i64) {
        let clock = self.state.clock;
        if clock == i64::MIN || t <= clock.saturating_add(MAX_CLOCK_JUMP) {
            self.state.clock = clock.max(t);
            self.pending_jump = None;
            return;
        }
        match self.pending_jump {
            Some(p) => {
                // Two records in a row that far ahead: the trail really moved on.
                self.state.clock = p.min(t);
                self.pending_jump = None;
            }
            None => self.pending_jump = Some(t),
        }
    }

    /// Batch first pass: remember the liveness and lineage of set `fp` as it is now.
    fn record_set(&mut self, fp: Fingerprint) {
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
    fn record_use(&mut self, fp: Fingerprint) {
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

    /// The lineage of set `fp` (SPEC 3.2): in batch mode as the whole input
    /// shows it; otherwise followed up through the parents the state still
    /// holds, so a parent observed or resolved after its children upgrades
    /// them. `None` when the set is not tracked.
    fn line_of(&self, fp: Fingerprint) -> Option<Line> {
        if let Some(l) = self.lookahead.as_ref().and_then(|l| l.lineage.get(&fp)) {
            return Some(l.clone());
        }
        let s = self.state.sets.peek(&fp)?;
        let mut chain: SmallVec<[&CredSet; 4]> = SmallVec::new();
        chain.push(s);
        let mut seen: SmallVec<[Fingerprint; 4]> = SmallVec::new();
        seen.push(fp);
        let mut cur = s;
        while let Some(p) = cur.parent {
            if seen.contains(&p) || chain.len() >= MAX_HOPS {
                break;
            }
            let Some(ps) = self.state.sets.peek(&p) else {
                break;
            };
            seen.push(p);
            chain.push(ps);
            cur = ps;
        }
        let mut line = Line::of(chain.pop()?);
        while let Some(c) = chain.pop() {
            line = Line::of(c).under(&line);
        }
        Some(line)
    }

    /// The caller of set `fp` with its resolved lineage; the resolved lineage
    /// is also written back to the set, so it outlives an evicted parent.
    fn caller(&mut self, fp: Fingerprint) -> Option<Caller> {
        if self.lookahead.is_none() {
            // The common case: a set without a parent is its own lineage
            // (one look-up, no walk).
            let s = self.state.sets.get(&fp)?;
            if s.parent.is_none() {
                return Some(Caller {
                    fp,
                    root: s.root(),
                    depth: s.depth,
                    complete: s.complete(),
                    parent: None,
                    expires: s.expires,
                    expiration_observed: s.expiration_observed(),
                    marks: s.marks(),
                });
            }
        }
        let line = self.line_of(fp)?;
        let s = self.state.sets.get_mut(&fp)?;
        // `set_lineage` shares the root string when it is already the same.
        s.set_lineage(&line.root, line.depth, line.complete);
        s.mark(line.marks & OFFHOST_LINE);
        Some(Caller {
            fp,
            root: line.root,
            depth: line.depth,
            complete: line.complete,
            // In batch mode, the parent the whole input shows.
            parent: line.parent.or(s.parent),
            expires: s.expires,
            expiration_observed: s.expiration_observed(),
            marks: s.marks() | line.marks,
        })
    }

    /// Number of distinct live sets that use `key` at `t`.
    fn live_count(&self, key: &str, t: i64) -> u32 {
        let tol = self.config.match_tolerance_secs;
        let mut seen: SmallVec<[Fingerprint; 4]> = SmallVec::new();
        for (fp, s) in self.state.sets_of(key) {
            if s.live_at(t, tol) && !seen.contains(&fp) {
                seen.push(fp);
            }
        }
        if let Some(v) = self.lookahead.as_ref().and_then(|l| l.by_key.get(key)) {
            for (fp, start, end) in v {
                if start.saturating_sub(tol) <= t && t <= *end && !seen.contains(fp) {
                    seen.push(*fp);
                }
            }
        }
        u32::try_from(seen.len()).unwrap_or(u32::MAX)
    }

    /// The credential set (SPEC 3.3) that a call or issuance of key `key` by
    /// principal `arn_hash` with issue time `issue` (a call's creationDate,
    /// an issuance's eventTime; `None` for a call without creationDate)
    /// belongs to, if it is tracked. Sets never split: a set with the same
    /// key and ARN issued within the tolerance is the same set, whichever
    /// record came first; a dated record completes a provisional (undated)
    /// set; an undated call belongs to the live set issued last. Ties break
    /// on the fingerprint, so the answer does not depend on the order the
    /// state was built or restored in.
    fn find_set(
        &self,
        key: &str,
        arn_hash: u64,
        issue: Option<i64>,
        t: i64,
    ) -> Option<Fingerprint> {
        use std::cmp::Reverse;
        let tol = self.config.match_tolerance_secs;
        let mut dated: Option<(u64, Fingerprint)> = None;
        // Candidates ranked by (live, start, reverse fingerprint): highest wins.
        let mut undated: Option<(i64, Reverse<Fingerprint>)> = None;
        let mut latest: Option<(bool, i64, Reverse<Fingerprint>)> = None;
        for (fp, s) in self.state.sets_of(key) {
            if s.arn_hash != arn_hash {
                continue;
            }
            match (issue, s.issued()) {
                (Some(c), Some(i)) => {
                    let d = c.abs_diff(i);
                    if d <= tol.unsigned_abs() && dated.is_none_or(|b| (d, fp) < b) {
                        dated = Some((d, fp));
                    }
                }
                (Some(_), None) => {
                    let k = (s.start, Reverse(fp));
                    if s.live_at(t, tol) && undated.is_none_or(|b| k > b) {
                        undated = Some(k);
                    }
                }
                (None, _) => {
                    let k = (s.live_at(t, tol), s.start, Reverse(fp));
                    if s.start <= t.saturating_add(tol) && latest.is_none_or(|b| k > b) {
                        latest = Some(k);
                    }
                }
            }
        }
        dated
            .map(|(_, fp)| fp)
            .or(undated.map(|(_, Reverse(fp))| fp))
            .or(latest.map(|(_, _, Reverse(fp))| fp))
    }

    /// Resolve (and create when new) the credential set the call was made with.
    fn resolve_caller(&mut self, ev: &Event<'_>, key: &str, kind: KeyKind, t: i64) -> Caller {
        let ui = &ev.user_identity;
        let created = ui
            .session_context
            .attributes
            .creation_date
            .get()
            .and_then(parse_iso);
        let temporary = match kind {
            KeyKind::Temporary => true,
            KeyKind::LongTerm => false,
            KeyKind::Unknown => created.is_some(),
        };
        let account: std::borrow::Cow<'_, str> =
            match ui.account_id.get().or(ev.recipient_account_id.get()) {
                Some(a) => a.into(),
                None => keyid::account(key).unwrap_or_default().into(),
            };
        let ui_type = ui.kind.get().unwrap_or("");
        if !temporary {
            let fp = self.long_term.get(key, &account);
            if let Some(c) = self.caller(fp) {
                return c;
            }
            let r = if ui_type == "Root" {
                root(RootType::RootUser, format!("root:{account}"))
            } else {
                root(RootType::AccessKey, key.to_string())
            };
            let s = SetInfo {
                key: key.to_string(),
                arn_hash: State::arn_hash(ui.arn.get().unwrap_or("")),
                issued: None,
                first_seen: t,
                expires: i64::MAX,
                expiration_observed: false,
                issuance_observed: false,
                root: r.clone(),
                depth: 0,
                complete: true,
                parent: None,
                marks: NOT_INSTANCE,
            };
            self.stats.evictions += self.state.insert_set(fp, s);
            self.record_set(fp);
            return Caller {
                fp,
                root: r,
                depth: 0,
                complete: true,
                parent: None,
                expires: i64::MAX,
                expiration_observed: false,
                marks: NOT_INSTANCE,
            };
        }
        let arn = ui.arn.get().unwrap_or("");
        let arn_hash = State::arn_hash(arn);
        if let Some(fp) = self.find_set(key, arn_hash, created, t) {
            if let Some(s) = self.state.sets.get_mut(&fp) {
                if let Some(c) = created {
                    s.set_issued(c);
                }
                s.last_use = s.last_use.max(t);
                self.record_use(fp);
                if let Some(c) = self.caller(fp) {
                    return c;
                }
            }
        }
        // First sight of this set, issuance not observed: the root from the identity itself.
        let instance = instance_creds(ev, 0);
        let (r, depth, complete) = if let Some(id) = instance.flatten() {
            (root(RootType::Ec2Instance, format!("ec2:{id}")), 1, true)
        } else if ui_type == "Root" {
            (root(RootType::RootUser, format!("root:{account}")), 1, true)
        } else if ui_type == "IAMUser" && !arn.is_empty() {
            (
                root(RootType::IamUserSession, format!("user:{arn}")),
                1,
                true,
            )
        } else if let (true, Some(issuer)) = (
            ui_type == "FederatedUser",
            ui.session_context.session_issuer.arn.get(),
        ) {
            (
                root(RootType::IamUserSession, format!("user:{issuer}")),
                1,
                true,
            )
        } else if let (Some(service), Some(session)) = (
            service_linked_service(ev),
            has_assumed_role(arn)
                .then(|| arn.rsplit('/').next())
                .flatten(),
        ) {
            // Sessions of a service-linked role are issued by the service itself.
            (
                root(RootType::AwsService, format!("service:{service}/{session}")),
                1,
                true,
            )
        } else if let Some(user) = role_of_session_arn(arn)
            .filter(|r| r.starts_with("AWSReservedSSO_"))
            .and_then(|_| arn.rsplit('/').next())
        {
            (root(RootType::Saml, format!("saml:AWSSSO/{user}")), 1, true)
        } else {
            (
                root(RootType::Unresolved, format!("unresolved:{key}")),
                1,
                false,
            )
        };
        // SPEC 3.4: the longest lifetime this kind of credential allows.
        let ttl = if instance.is_some() {
            self.config.instance_ttl_secs
        } else if ui_type == "AssumedRole" {
            self.config.role_session_ttl_secs
        } else {
            self.config.session_ttl_secs
        };
        let fp = fingerprint::temporary(key, arn, created);
        let s = SetInfo {
            key: key.to_string(),
            arn_hash,
            issued: created,
            first_seen: t,
            expires: created.unwrap_or(t).saturating_add(ttl),
            expiration_observed: false,
            issuance_observed: false,
            root: r.clone(),
            depth,
            complete,
            parent: None,
            marks: 0,
        };
        let expires = s.expires;
        self.stats.evictions += self.state.insert_set(fp, s);
        self.record_set(fp);
        if let Some(c) = self.caller(fp) {
            return c;
        }
        Caller {
            fp,
            root: r,
            depth,
            complete,
            parent: None,
            expires,
            expiration_observed: false,
            marks: 0,
        }
    }

    fn annotate_event(
        &mut self,
        ev: &Event<'_>,
        outer: &Event<'_>,
        host_time: Option<i64>,
    ) -> Annotation {
        // No time yet anywhere: before every dated record (nothing it
        // creates is live later), and the clock stays unset.
        let t = match self.event_time(ev, outer, host_time) {
            Some(t) => {
                self.advance_clock(t);
                t
            }
            None => UNDATED,
        };
        let ui = &ev.user_identity;
        let key = ui.access_key_id.get();
        let kind = key.map(keyid::kind);
        let credential_type = match kind {
            None => CredentialType::None,
            Some(KeyKind::LongTerm) => CredentialType::LongTerm,
            Some(KeyKind::Temporary) => CredentialType::Temporary,
            Some(KeyKind::Unknown) => CredentialType::Unknown,
        };
        let mut ann = Annotation {
            credential_type,
            access_key_id: key.map(str::to_string),
            key_account: key.and_then(keyid::account_id),
            session_fingerprint: None,
            lineage_root: None,
            lineage_root_type: None,
            lineage_depth: None,
            lineage_complete: None,
            parent_fingerprint: None,
            is_key_collision: false,
            collision_count: None,
            ec2_cred_offhost: false,
            ec2_instance_id: None,
            offhost_reason: None,
            offhost_other_identity: None,
            offhost_ancestor: false,
            issued: None,
            created_by: None,
            used_after_expiration: false,
            self_assume: false,
        };
        let caller = match (key, kind) {
            (Some(k), Some(kind)) => Some(self.resolve_caller(ev, k, kind, t)),
            _ => None,
        };
        let mut max_count = 0;
        if let (Some(c), Some(k)) = (&caller, key) {
            ann.session_fingerprint = Some(c.fp);
            ann.lineage_root = Some(c.root.id.clone());
            ann.lineage_root_type = Some(c.root.kind);
            ann.lineage_depth = Some(c.depth);
            ann.lineage_complete = Some(c.complete);
            ann.parent_fingerprint = c.parent;
            ann.offhost_ancestor = c.marks & OFFHOST_LINE != 0;
            ann.used_after_expiration = c.expiration_observed && t > c.expires;
            max_count = self.live_count(k, t);
            if kind == Some(KeyKind::LongTerm) {
                if let Some(cr) = self.state.created.get(k) {
                    ann.created_by = Some(CreatedBy {
                        session_fingerprint: cr.fp,
                        lineage_root: cr.root.clone(),
                    });
                }
            }
        } else if let Some(r) = self.keyless_root(ev) {
            ann.lineage_root = Some(r.id.clone());
            ann.lineage_root_type = Some(r.kind);
            ann.lineage_depth = Some(0);
            ann.lineage_complete = Some(true);
        }

        // Off-host EC2 credentials (SPEC 3.5), before the issuance rules: a
        // credential issued by an off-host call carries `offhost_ancestor`.
        let src = ev.source_ip.get().map(str::trim).filter(|s| !s.is_empty());
        let instance = match &caller {
            Some(c) if credential_type != CredentialType::LongTerm => instance_creds(ev, c.marks),
            _ => None,
        };
        if let Some(id) = instance {
            ann.ec2_instance_id = id.map(str::to_string);
            if let Some(src) = src {
                if let Some((reason, who)) = self.offhost(ev, id, src, t) {
                    ann.ec2_cred_offhost = true;
                    ann.offhost_reason = Some(reason);
                    ann.offhost_other_identity = who;
                }
            }
        } else if let Some(src) = src {
            self.note_other_identity(ev, src, ann.lineage_root_type, credential_type, t);
        }

        let failed = ev.error_code.get().is_some();
        let source = ev.event_source.get().unwrap_or("");
        let name = ev.event_name.get().unwrap_or("");
        if !failed {
            if source == "sts.amazonaws.com" && STS_ISSUING.contains(&name) {
                let offhost_line = ann.ec2_cred_offhost || ann.offhost_ancestor;
                if let Some(issued) =
                    self.issue(ev, name, caller.as_ref(), credential_type, t, offhost_line)
                {
                    max_count = max_count.max(self.live_count(&issued.access_key_id, t));
                    if caller.is_none() && ann.lineage_root.is_none() {
                        // A keyless issuance (SAML, web identity): the identity is the root.
                        ann.lineage_root = Some(issued.lineage_root.clone());
                        ann.lineage_root_type = self.state_root_type(&issued);
                        ann.lineage_depth = Some(0);
                        ann.lineage_complete =
                            Some(!issued.lineage_root.starts_with("unresolved:"));
                    }
                    ann.issued = Some(issued);
                }
                if name == "AssumeRole" {
                    let rp = ev.request_parameters();
                    let role = rp.role_arn.get();
                    let issuer = ui.session_context.session_issuer.arn.get();
                    ann.self_assume = role.is_some()
                        && role == issuer
                        && credential_type != CredentialType::LongTerm;
                }
            } else if source == "iam.amazonaws.com" && name == "CreateAccessKey" {
                if let (Some(newk), Some(c)) = (
                    ev.response_elements().access_key.access_key_id.get(),
                    &caller,
                ) {
                    self.state.note_created(
                        newk,
                        Creator {
                            fp: c.fp,
                            root: c.root.id.clone(),
                        },
                    );
                }
            } else if source == "ec2.amazonaws.com" {
                self.learn_instance_ips(ev, name);
            }
        }
        if max_count > 1 {
            ann.is_key_collision = true;
            ann.collision_count = Some(max_count);
        }
        ann
    }

    /// SPEC 3.5 step 4: remember a public address that a non-instance
    /// identity (IAM user key, console, SSO / SAML / web-identity user) used,
    /// and who that was. Only addresses outside AWS are ever looked up; the
    /// AWS ranges are consulted then, not on every call here (this runs on
    /// most records).
    fn note_other_identity(
        &mut self,
        ev: &Event<'_>,
        src: &str,
        rt: Option<RootType>,
        ct: CredentialType,
        t: i64,
    ) {
        if !self.config.ip_used_by_other_identity
            || is_service_source(src)
            || !self.is_person_identity(ev, rt, ct)
        {
            return;
        }
        if self.config.aws_ranges().is_none() {
            return;
        }
        let Some(ip) = parse_ip(src) else { return };
        if crate::aws_ranges::is_non_public(ip)
            || self.config.known_cidrs.iter().any(|n| n.contains(&ip))
        {
            return;
        }
        let ui = &ev.user_identity;
        let who = ui
            .arn
            .get()
            .or(ui.principal_id.get())
            .or(ui.access_key_id.get())
            .unwrap_or("");
        if !who.is_empty() {
            self.state.note_ip_other(ip, t, who);
        }
    }

    fn state_root_type(&self, i: &Issued) -> Option<RootType> {
        let p = i.lineage_root.split(':').next().unwrap_or("");
        Some(match p {
            "saml" => RootType::Saml,
            "web_identity" => RootType::WebIdentity,
            "ec2" => RootType::Ec2Instance,
            "service" => RootType::AwsService,
            "root" => RootType::RootUser,
            "user" => RootType::IamUserSession,
            "unresolved" => RootType::Unresolved,
            _ => RootType::AccessKey,
        })
    }

    /// A non-instance identity of a person or their keys (SPEC 3.5).
    fn is_person_identity(&self, ev: &Event<'_>, rt: Option<RootType>, ct: CredentialType) -> bool {
        if ct == CredentialType::LongTerm {
            return true;
        }
        if matches!(
            ev.user_identity.kind.get(),
            Some("IAMUser" | "Root" | "SAMLUser" | "WebIdentityUser")
        ) {
            return true;
        }
        matches!(
            rt,
            Some(
                RootType::AccessKey
                    | RootType::RootUser
                    | RootType::IamUserSession
                    | RootType::Saml
                    | RootType::WebIdentity
            )
        )
    }

    /// Root of a keyless event's identity (console sign-in, SAML/web-identity users).
    fn keyless_root(&self, ev: &Event<'_>) -> Option<Root> {
        let ui = &ev.user_identity;
        let acct = ui
            .account_id
            .get()
            .or(ev.recipient_account_id.get())
            .unwrap_or("");
        match ui.kind.get()? {
            "Root" => Some(root(RootType::RootUser, format!("root:{acct}"))),
            "IAMUser" => ui
                .arn
                .get()
                .map(|a| root(RootType::IamUserSession, format!("user:{a}"))),
            "SAMLUser" => {
                let (rp, re) = (ev.request_parameters(), ev.response_elements());
                let p = rp.principal_arn.get().or(ui.identity_provider.get())?;
                let p = saml_provider_name(p);
                let u = ui.user_name.get().or(re.subject.get())?;
                Some(root(RootType::Saml, format!("saml:{p}/{u}")))
            }
            "WebIdentityUser" => {
                let re = ev.response_elements();
                let p = ui.identity_provider.get().or(re.provider.get())?;
                let u = ui
                    .user_name
                    .get()
                    .or(re.subject_from_web_identity_token.get())?;
                Some(root(RootType::WebIdentity, format!("web_identity:{p}/{u}")))
            }
            _ => None,
        }
    }

    /// Record the credential an STS issuance event created; returns the `issued` block.
    /// `offhost_line`: the issuing call was flagged off-host, or its own
    /// credential descends from such a call.
    fn issue(
        &mut self,
        ev: &Event<'_>,
        name: &str,
        caller: Option<&Caller>,
        caller_type: CredentialType,
        t: i64,
        offhost_line: bool,
    ) -> Option<Issued> {
        let re = ev.response_elements();
        let creds = &re.credentials;
        let new_key = creds.access_key_id.get()?;
        let ui = &ev.user_identity;
        let rp = ev.request_parameters();
        let rp = &rp;
        let acct = ui
            .account_id
            .get()
            .or(ev.recipient_account_id.get())
            .unwrap_or("");
        let arn: String = match name {
            "GetFederationToken" => re
                .federated_user
                .arn
                .get()
                .map(str::to_string)
                .or_else(|| {
                    rp.name
                        .get()
                        .map(|n| format!("arn:aws:sts::{acct}:federated-user/{n}"))
                })
                .unwrap_or_default(),
            "GetSessionToken" => ui.arn.get().unwrap_or("").to_string(),
            // Calls with AssumeRoot credentials carry the member account's root ARN.
            "AssumeRoot" => rp
                .target_principal
                .get()
                .map(|a| format!("arn:aws:iam::{a}:root"))
                .unwrap_or_default(),
            _ => re
                .assumed_role_user
                .arn
                .get()
                .map(str::to_string)
                .or_else(|| assumed_role_arn(rp.role_arn.get()?, rp.role_session_name.get()?))
                .unwrap_or_default(),
        };
        let expiration = creds.expiration.get().and_then(parse_expiration);
        let session = rp.role_session_name.get().unwrap_or("");
        let by_ec2 = ui.kind.get() == Some("AWSService")
            && ui.invoked_by.get() == Some("ec2.amazonaws.com")
            && is_instance_id(session);
        let (r, depth, complete, parent, chained) = if let Some(c) = caller {
            (
                c.root.clone(),
                c.depth.saturating_add(1),
                c.complete,
                Some(c.fp),
                caller_type == CredentialType::Temporary
                    || (caller_type == CredentialType::Unknown && c.depth > 0),
            )
        } else {
            let r = match (name, ui.kind.get()) {
                ("AssumeRoleWithSAML", _) | (_, Some("SAMLUser")) => {
                    self.keyless_root(ev).filter(|r| r.kind == RootType::Saml)
                }
                ("AssumeRoleWithWebIdentity", _) | (_, Some("WebIdentityUser")) => self
                    .keyless_root(ev)
                    .filter(|r| r.kind == RootType::WebIdentity),
                (_, Some("AWSService")) => {
                    let by = ui.invoked_by.get().unwrap_or("unknown");
                    if by_ec2 {
                        Some(root(RootType::Ec2Instance, format!("ec2:{session}")))
                    } else {
                        Some(root(
                            RootType::AwsService,
                            format!("service:{by}/{session}"),
                        ))
                    }
                }
                _ => None,
            };
            match r {
                Some(r) => (r, 1, true, None, false),
                None => (
                    root(RootType::Unresolved, format!("unresolved:{new_key}")),
                    1,
                    false,
                    None,
                    false,
                ),
            }
        };
        // SPEC 3.4: without an observed expiration, the longest lifetime of the kind.
        let ttl = if by_ec2 {
            self.config.instance_ttl_secs
        } else if matches!(name, "GetSessionToken" | "GetFederationToken") {
            self.config.session_ttl_secs
        } else {
            self.config.role_session_ttl_secs
        };
        let expires = expiration.unwrap_or(t.saturating_add(ttl));
        let mut marks = if by_ec2 { INSTANCE } else { NOT_INSTANCE };
        if offhost_line {
            marks |= OFFHOST_LINE;
        }
        let arn_hash = State::arn_hash(&arn);
        // Sets never split (SPEC 3.3): calls that arrived before their
        // issuance, or an earlier copy of this issuance, made the set already.
        let fp = match self.find_set(new_key, arn_hash, Some(t), t) {
            Some(fp) => fp,
            None => fingerprint::temporary(new_key, &arn, Some(t)),
        };
        match self.state.sets.get_mut(&fp) {
            Some(existing) => {
                existing.set_issued(t);
                existing.last_use = existing.last_use.max(t);
                // A second copy of an issuance already observed (the role
                // owner's cross-account copy, a duplicate delivery) that
                // knows less about the caller — no caller at all, or a less
                // complete lineage — must not overwrite what the first taught.
                let keep = existing.issuance_observed()
                    && ((existing.parent.is_some() && parent.is_none())
                        || (existing.complete() && !complete));
                if !keep {
                    existing.set_lineage(&r, depth, complete);
                    existing.parent = parent;
                    existing.expires = expires;
                    existing.set_observed(expiration.is_some());
                    // Who issued it decides what it is (instance credentials
                    // or not); a copy that knows less changes nothing.
                    existing.unmark(INSTANCE | NOT_INSTANCE);
                    existing.mark(marks);
                }
            }
            None => {
                let s = SetInfo {
                    key: new_key.to_string(),
                    arn_hash,
                    issued: Some(t),
                    first_seen: t,
                    expires,
                    expiration_observed: expiration.is_some(),
                    issuance_observed: true,
                    root: r,
                    depth,
                    complete,
                    parent,
                    marks,
                };
                self.stats.evictions += self.state.insert_set(fp, s);
            }
        }
        self.record_set(fp);
        self.stats.issuances += 1;
        if chained {
            self.stats.chained_issuances += 1;
        }
        let line = self.line_of(fp)?;
        Some(Issued {
            access_key_id: new_key.to_string(),
            session_fingerprint: fp,
            lineage_root: line.root.id,
            lineage_depth: line.depth,
            expiration,
            chained,
        })
    }

    /// What EC2's own records say about instance addresses (SPEC 3.5 step 5).
    fn learn_instance_ips(&mut self, ev: &Event<'_>, name: &str) {
        match name {
            "RunInstances" => {
                let re = ev.response_elements();
                for inst in &re.instances_set.items.0 {
                    let Some(id) = inst.instance_id.get().filter(|i| is_instance_id(i)) else {
                        continue;
                    };
                    let mut ips: SmallVec<[&str; 4]> = SmallVec::new();
                    ips.extend(inst.private_ip_address.get());
                    ips.extend(inst.ip_address.get());
                    for ni in &inst.network_interface_set.items.0 {
                        ips.extend(ni.private_ip_address.get());
                        ips.extend(ni.association.public_ip.get());
                    }
                    for ip in ips.into_iter().filter_map(parse_ip) {
                        self.state.trust_instance_ip(id, scope(ip), ip, false);
                    }
                }
            }
            "AssociateAddress" => {
                let rp = ev.request_parameters();
                let Some(id) = rp.instance_id.get().filter(|i| is_instance_id(i)) else {
                    return;
                };
                if let Some(assoc) = ev.response_elements().association_id.get() {
                    self.state.note_association(assoc, id);
                }
                match rp.public_ip.get().and_then(parse_ip) {
                    // The address AWS now routes to the instance.
                    Some(ip) => self.state.trust_instance_ip(id, scope(ip), ip, true),
                    // The VPC form (by allocationId): the address is not in the
                    // record, so the next AWS address is learned, not flagged.
                    None => self.state.clear_public_ips(id),
                }
            }
            "DisassociateAddress" => {
                let rp = ev.request_parameters();
                if rp.public_ip.get().is_some() {
                    // The EC2-Classic form names the address, not the instance.
                    return;
                }
                let inst = match rp.instance_id.get() {
                    Some(id) => Some(Arc::from(id)),
                    None => rp
                        .association_id
                        .get()
                        .and_then(|a| self.state.take_association(a)),
                };
                if let Some(id) = inst {
                    self.state.clear_public_ips(&id);
                }
            }
            _ => {}
        }
    }

    /// SPEC 3.5 for one call made with instance credentials (`id`, when the
    /// instance is known) from `src`: the reason it is off-host, and with
    /// `ip_used_by_other_identity` who else used the address.
    fn offhost(
        &mut self,
        ev: &Event<'_>,
        id: Option<&str>,
        src: &str,
        t: i64,
    ) -> Option<(OffhostReason, Option<Arc<str>>)> {
        // 1. An AWS service name or `AWS Internal`.
        if is_service_source(src) {
            return None;
        }
        // 2. A VPC endpoint: of the credential's own account or a trusted one.
        if ev.vpc_endpoint_id.get().is_some() {
            let cred_acct = ev
                .user_identity
                .account_id
                .get()
                .or(ev.recipient_account_id.get());
            return match (ev.vpc_endpoint_account_id.get(), cred_acct) {
                (Some(ep), Some(acct))
                    if ep != acct
                        && !self
                            .config
                            .trusted_vpc_endpoint_accounts
                            .iter()
                            .any(|a| a == ep) =>
                {
                    Some((OffhostReason::ForeignVpcEndpoint, None))
                }
                _ => None,
            };
        }
        // Not an address (nor a service name): nothing to judge or learn.
        let ip = parse_ip(src)?;
        // 3. An operator-configured CIDR.
        if self.config.known_cidrs.iter().any(|n| n.contains(&ip)) {
            return None;
        }
        let sc = scope(ip);
        // 4. Outside AWS: off-host whatever trust on first use learned.
        if let Some(ranges) = self.config.aws_ranges() {
            if sc.is_public() && !ranges.contains(ip) {
                let other = self
                    .config
                    .ip_used_by_other_identity
                    .then(|| self.state.ip_other.peek(&ip))
                    .flatten()
                    .filter(|u| u.last.saturating_add(self.config.ip_retention_secs) >= t)
                    .map(|u| u.who.clone());
                return Some(match other {
                    Some(who) => (OffhostReason::IpUsedByOtherIdentity, Some(who)),
                    None => (OffhostReason::OutsideAws, None),
                });
            }
        }
        // 5. Inside AWS, or private: trust on first use per instance and scope.
        let id = id?;
        let (known, scope_has_trusted) = match self.state.instances.get(id) {
            Some(i) => (
                i.ips.iter().any(|(_, k)| *k == ip),
                i.ips.iter().any(|(s, _)| *s == sc),
            ),
            None => (false, false),
        };
        if known {
            return None;
        }
        if scope_has_trusted {
            return Some((OffhostReason::NewIpForInstance, None));
        }
        self.state.trust_instance_ip(id, sc, ip, false);
        None
    }
}

/// The scope of an address for trust on first use (SPEC 3.5 step 5).
fn scope(ip: IpAddr) -> Scope {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (ip.is_ipv4(), crate::aws_ranges::is_non_public(ip)) {
        (true, true) => Scope::V4Private,
        (true, false) => Scope::V4Public,
        (false, true) => Scope::V6Private,
        (false, false) => Scope::V6Public,
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

/// Parse an address strictly (std), or a dotted quad with leading zeros.
fn parse_ip(s: &str) -> Option<IpAddr> {
    // The common case first, in one pass and without std's general parser
    // (this runs on most records): a dotted quad, leading zeros read as
    // decimal. Any other character can only be part of an IPv6 address.
    let v6 = || s.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    let mut oct = [0u8; 4];
    let (mut n, mut digits, mut v) = (0usize, 0u32, 0u32);
    let mut bad = false;
    for &c in s.as_bytes() {
        if c.is_ascii_digit() {
            bad |= digits == 3;
            v = v * 10 + u32::from(c - b'0');
            digits += 1;
        } else if c == b'.' {
            bad |= digits == 0 || n == 3 || v > 255;
            if let Some(o) = oct.get_mut(n) {
                *o = v as u8;
            }
            n += 1;
            (digits, v) = (0, 0);
        } else {
            return v6();
        }
        if bad {
            // Still scan for a non-IPv4 character (an IPv6 address).
            return if s.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
                None
            } else {
                v6()
            };
        }
    }
    if n != 3 || digits == 0 || v > 255 {
        return None;
    }
    oct[3] = v as u8;
    Some(IpAddr::from(oct))
}

/// Replace every `"sessionToken":"…"` string value in `out[start..]` with
/// `"<redacted>"`, also inside records held as JSON strings (where the same
/// text appears escaped: `\"sessionToken\":\"…\"`).
fn redact_tokens(out: &mut Vec<u8>, start: usize) {
    redact_plain(out, start);
    redact_escaped(out, start);
}

fn redact_escaped(out: &mut Vec<u8>, start: usize) {
    const NEEDLE: &[u8] = br#"\"sessionToken\""#;
    let mut i = start;
    while let Some(pos) = out
        .get(i..)
        .and_then(|s| s.windows(NEEDLE.len()).position(|w| w == NEEDLE))
    {
        let mut j = i + pos + NEEDLE.len();
        while matches!(out.get(j), Some(b' ')) {
            j += 1;
        }
        if out.get(j) != Some(&b':') {
            i = j;
            continue;
        }
        j += 1;
        while matches!(out.get(j), Some(b' ')) {
            j += 1;
        }
        if out.get(j..j + 2) != Some(br#"\""#.as_slice()) {
            i = j;
            continue;
        }
        // The escaped value ends at the next `\"` (a token holds no backslash).
        let body = j + 2;
        let Some(len) = out
            .get(body..)
            .and_then(|s| s.windows(2).position(|w| w == br#"\""#))
        else {
            return;
        };
        let end = body + len + 2;
        out.splice(j..end, br#"\"<redacted>\""#.iter().copied());
        i = j + 14;
    }
}

fn redact_plain(out: &mut Vec<u8>, start: usize) {
    const NEEDLE: &[u8] = b"\"sessionToken\"";
    let mut i = start;
    while let Some(pos) = out
        .get(i..)
        .and_then(|s| s.windows(NEEDLE.len()).position(|w| w == NEEDLE))
    {
        let mut j = i + pos + NEEDLE.len();
        while matches!(out.get(j), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            j += 1;
        }
        if out.get(j) != Some(&b':') {
            i = j;
            continue;
        }
        j += 1;
        while matches!(out.get(j), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            j += 1;
        }
        if out.get(j) != Some(&b'"') {
            i = j;
            continue;
        }
        let mut k = j + 1;
        while let Some(&c) = out.get(k) {
            match c {
                b'\\' => k += 2,
                b'"' => break,
                _ => k += 1,
            }
        }
        let end = (k + 1).min(out.len());
        out.splice(j..end, b"\"<redacted>\"".iter().copied());
        i = j + 12;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The streamed snapshot is the format earlier builds wrote, byte for
    /// byte (no format change), and reads back (from a slice and from a
    /// reader) to a state that writes the same bytes; any byte changed or
    /// cut is refused with the earlier messages.
    #[test]
    fn streamed_snapshots_are_the_copied_format() {
        let mut e = Enricher::new(Config::default()).unwrap();
        for r in crate::generate::trail_lines(5, 3000) {
            let _ = e.annotate(&r, None);
        }
        assert!(e.stats().state_bytes > 0);
        let streamed = e.snapshot();
        assert_eq!(streamed, e.state.snapshot_copied(&e.digest));
        // Written at an offset of a seekable sink: the digest lands in place.
        let mut c = std::io::Cursor::new(b"prefix".to_vec());
        c.set_position(6);
        e.write_snapshot(&mut c).unwrap();
        assert_eq!(&c.get_ref()[6..], &streamed[..]);
        // Read a few bytes at a time: every value is cut by a buffer's end
        // somewhere (a number, a key, an element), and read again whole.
        for chunk in [1, 2, 7, 64, 1000, 4096] {
            let st = State::restore_chunked(&streamed[..], &e.digest, 1, chunk).unwrap();
            assert_eq!(st.snapshot(&e.digest), streamed, "chunk {chunk}");
        }
        let mut back = Enricher::new(Config::default()).unwrap();
        back.restore_from(std::io::BufReader::new(&streamed[..]))
            .unwrap();
        assert_eq!(back.snapshot(), streamed);
        back.restore(&streamed).unwrap();
        assert_eq!(back.snapshot(), streamed);
        for cut in [streamed.len() - 1, streamed.len() / 2, 60] {
            let err = back.restore(&streamed[..cut]).unwrap_err().to_string();
            assert!(err.contains("checksum mismatch"), "{cut}: {err}");
        }
        let mut bad = streamed.clone();
        let at = bad.len() / 3;
        bad[at] ^= 0x20;
        let err = back.restore(&bad).unwrap_err().to_string();
        assert!(err.contains("checksum mismatch"), "{err}");
        assert_eq!(
            back.snapshot(),
            streamed,
            "a refused snapshot leaves the state"
        );
    }

    /// Reading the instance ID from the end agrees with the plain rule
    /// (the text after the last separator, if it is an instance ID) on
    /// strings built from the characters that matter.
    #[test]
    fn trailing_instance_id_is_the_plain_rule() {
        fn plain(s: &str, sep: char) -> Option<&str> {
            s.rsplit_once(sep)
                .map(|(_, id)| id)
                .filter(|id| is_instance_id(id))
        }
        let mut rng = fastrand::Rng::with_seed(3);
        let alphabet = ['i', '-', ':', '/', 'a', '0', 'Z', '_', 'é'];
        for n in 0..200_000 {
            let len = rng.usize(0..45);
            let mut s: String = (0..len).map(|_| *rng.choice(&alphabet).unwrap()).collect();
            if n % 2 == 0 {
                // Plant a near-instance-ID at the end.
                s.push(*rng.choice(&[':', '/']).unwrap());
                s.push_str("i-");
                s.extend(
                    (0..rng.usize(0..34)).map(|_| *rng.choice(&['a', '0', 'Z', '-']).unwrap()),
                );
            }
            for sep in [':', '/'] {
                assert_eq!(
                    trailing_instance_id(&s, sep as u8),
                    plain(&s, sep),
                    "{s:?} {sep}"
                );
            }
        }
        assert_eq!(
            trailing_instance_id("AROAEXAMPLE:i-0123456789abcdef0", b':'),
            Some("i-0123456789abcdef0")
        );
    }

    #[test]
    fn ips() {
        assert_eq!(
            parse_ip("255.090.254.5"),
            Some(IpAddr::from([255, 90, 254, 5]))
        );
        assert_eq!(parse_ip("256.1.1.1"), None);
        assert_eq!(parse_ip("AWS Internal"), None);
        assert!(parse_ip("2001:db8::1").is_some());
        assert!(is_service_source("ec2.amazonaws.com"));
        assert!(is_service_source("AWS Internal"));
        assert!(!is_service_source("2001:db8::1"));
        assert!(!is_service_source("255.090.254.5"));
        for bad in [
            "",
            ".",
            "1.2.3",
            "1.2.3.4.",
            ".1.2.3",
            "1..2.3",
            "1.2.3.4.5",
            "1234.1.1.1",
        ] {
            assert_eq!(parse_ip(bad), None, "{bad:?}");
        }
        assert_eq!(parse_ip("::ffff:1.2.3.4").map(|i| i.is_ipv6()), Some(true));
    }

    /// The fast dotted-quad reader is the plain rule: std's parser, else
    /// dotted decimal with leading zeros.
    #[test]
    fn parse_ip_is_the_plain_rule() {
        fn plain(s: &str) -> Option<IpAddr> {
            if let Ok(ip) = s.parse::<IpAddr>() {
                return Some(ip);
            }
            let parts: Vec<&str> = s.split('.').collect();
            if parts.len() != 4 {
                return None;
            }
            let mut oct = [0u8; 4];
            for (o, p) in oct.iter_mut().zip(&parts) {
                if p.is_empty() || p.len() > 3 || !p.bytes().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                *o = p.parse().ok()?;
            }
            Some(IpAddr::from(oct))
        }
        let mut rng = fastrand::Rng::with_seed(7);
        let alphabet = ['0', '1', '2', '5', '9', '.', ':', 'a', ' '];
        for _ in 0..300_000 {
            let len = rng.usize(0..17);
            let s: String = (0..len).map(|_| *rng.choice(&alphabet).unwrap()).collect();
            assert_eq!(parse_ip(&s), plain(&s), "{s:?}");
        }
        for _ in 0..100_000 {
            let o: Vec<String> = (0..4)
                .map(|_| format!("{:0w$}", rng.u32(0..300), w = rng.usize(0..4)))
                .collect();
            let s = o.join(".");
            assert_eq!(parse_ip(&s), plain(&s), "{s:?}");
        }
    }

    #[test]
    fn role_arns() {
        assert_eq!(
            assumed_role_arn("arn:aws:iam::123456789012:role/path/to/R", "s").as_deref(),
            Some("arn:aws:sts::123456789012:assumed-role/R/s")
        );
        assert_eq!(assumed_role_arn("garbage", "s"), None);
        assert!(is_instance_id("i-786a3A8B5C0d92eF4"));
        assert!(is_instance_id("i-0123456789abcdef0"));
        assert!(!is_instance_id("i-"));
        assert!(!is_instance_id("aws-go-sdk-1722375070115152000"));
    }

    #[test]
    fn expired_sets_are_swept_even_behind_a_long_term_key() {
        let mut e = Enricher::new(Config::default()).unwrap();
        let ui = r#""userIdentity":{"type":"IAMUser","accountId":"1","arn":"arn:aws:iam::1:user/u","accessKeyId":"AKIAOLDKEY"}"#;
        let issue = format!(
            r#"{{"eventName":"AssumeRole","eventSource":"sts.amazonaws.com","eventTime":"2024-01-01T00:00:00Z",{ui},
            "requestParameters":{{"roleArn":"arn:aws:iam::1:role/r","roleSessionName":"s"}},
            "responseElements":{{"credentials":{{"accessKeyId":"ASIATEMP","expiration":"2024-01-01T01:00:00Z"}}}}}}"#
        );
        e.process(issue.as_bytes(), None);
        assert_eq!(e.stats().tracked_sets, 2);
        // The long-term key stays least recently used; hours later, unrelated
        // calls by another key push the clock on.
        let other = r#"{"eventName":"ListBuckets","eventSource":"s3.amazonaws.com","eventTime":"2024-01-01T05:00:00Z",
            "userIdentity":{"type":"IAMUser","accountId":"1","arn":"arn:aws:iam::1:user/v","accessKeyId":"AKIANEWKEY"}}"#;
        for _ in 0..SWEEP_MIN {
            e.process(other.as_bytes(), None);
        }
        let s = e.stats();
        assert_eq!(s.expired_purged, 1, "{s:?}");
        assert_eq!(s.tracked_sets, 2, "the two long-term keys remain: {s:?}");
    }

    #[test]
    fn redaction() {
        let mut v = br#"{"a":{"sessionToken" : "IQoJ\"x"},"sessionToken":1}"#.to_vec();
        redact_tokens(&mut v, 0);
        assert_eq!(
            v,
            br#"{"a":{"sessionToken" : "<redacted>"},"sessionToken":1}"#.to_vec()
        );
    }
}
