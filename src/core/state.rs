//! The enricher's bounded memory: credential sets, EC2 instances, source IPs and created keys, each an LRU table under shared entry and byte caps, plus versioned snapshots.

use crate::Error;
use crate::annotation::RootType;
use crate::fingerprint::Fingerprint;
use crate::keyid::{KeyId, key_hash, key_hash_bytes};
use ahash::RandomState;
use lru::LruCache;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use smallvec::SmallVec;
use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::IpAddr;
use std::sync::Arc;

/// The origin of a chain: its kind and its `lineage_root` string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Root {
    pub kind: RootType,
    pub id: Arc<str>,
}

/// Everything known about a credential set, in the convenient wide form the
/// rules build; stored compactly as a [`CredSet`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SetInfo {
    pub key: String,
    pub arn_hash: u64,
    /// Issue time; `None` when neither an issuance nor a creationDate was seen.
    pub issued: Option<i64>,
    /// First time the set was seen (liveness start when `issued` is unknown).
    pub first_seen: i64,
    /// End of liveness.
    pub expires: i64,
    pub expiration_observed: bool,
    pub issuance_observed: bool,
    pub root: Root,
    pub depth: u32,
    pub complete: bool,
    pub parent: Option<Fingerprint>,
    /// What the set is known to be (instance credentials or not) and whether
    /// it descends from an off-host call: [`INSTANCE`], [`NOT_INSTANCE`],
    /// [`OFFHOST_LINE`] bits.
    pub marks: u8,
}

const ISSUED_KNOWN: u8 = 1;
const EXPIRATION_OBSERVED: u8 = 2;
const ISSUANCE_OBSERVED: u8 = 4;
const COMPLETE: u8 = 8;
/// The set's issuance by `ec2.amazonaws.com` was observed: instance credentials.
pub(crate) const INSTANCE: u8 = 16;
/// The set's issuance by another caller was observed: never instance credentials.
pub(crate) const NOT_INSTANCE: u8 = 32;
/// The set, or an ancestor of it, was issued by a call flagged off-host.
pub(crate) const OFFHOST_LINE: u8 = 64;
/// The bits of `marks` a set carries in its flags.
const MARKS: u8 = INSTANCE | NOT_INSTANCE | OFFHOST_LINE;

/// One credential set (SPEC 3.3), packed: it is the unit of state, and a
/// million of them must fit in 256 MB.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CredSet {
    pub key: KeyId,
    /// xxh3 of the session principal ARN (portable across builds).
    pub arn_hash: u64,
    /// Issue time when known, else the first time the set was seen.
    pub start: i64,
    /// End of liveness from the issuance (observed expiration, else the
    /// longest lifetime of its kind).
    pub expires: i64,
    /// The latest observed use: the set is live at least until then (SPEC 3.4).
    pub last_use: i64,
    pub root_id: Arc<str>,
    pub parent: Option<Fingerprint>,
    pub depth: u32,
    pub root_kind: RootType,
    flags: u8,
}

impl From<SetInfo> for CredSet {
    fn from(i: SetInfo) -> CredSet {
        let mut flags = i.marks & MARKS;
        for (on, bit) in [
            (i.issued.is_some(), ISSUED_KNOWN),
            (i.expiration_observed, EXPIRATION_OBSERVED),
            (i.issuance_observed, ISSUANCE_OBSERVED),
            (i.complete, COMPLETE),
        ] {
            if on {
                flags |= bit;
            }
        }
        CredSet {
            key: KeyId::new(&i.key),
            arn_hash: i.arn_hash,
            start: i.issued.unwrap_or(i.first_seen),
            expires: i.expires,
            last_use: i.first_seen,
            root_id: i.root.id,
            parent: i.parent,
            depth: i.depth,
            root_kind: i.root.kind,
            flags,
        }
    }
}

impl CredSet {
    pub fn issued(&self) -> Option<i64> {
        (self.flags & ISSUED_KNOWN != 0).then_some(self.start)
    }
    pub fn expiration_observed(&self) -> bool {
        self.flags & EXPIRATION_OBSERVED != 0
    }
    pub fn issuance_observed(&self) -> bool {
        self.flags & ISSUANCE_OBSERVED != 0
    }
    pub fn complete(&self) -> bool {
        self.flags & COMPLETE != 0
    }
    /// The [`INSTANCE`] / [`NOT_INSTANCE`] / [`OFFHOST_LINE`] bits.
    pub fn marks(&self) -> u8 {
        self.flags & MARKS
    }
    /// Add mark bits.
    pub fn mark(&mut self, bits: u8) {
        self.flags |= bits & MARKS;
    }
    /// Remove mark bits.
    pub fn unmark(&mut self, bits: u8) {
        self.flags &= !(bits & MARKS);
    }
    /// The issuance was observed now, with (`true`) or without a readable expiration.
    pub fn set_observed(&mut self, expiration: bool) {
        self.flags |= ISSUANCE_OBSERVED;
        if expiration {
            self.flags |= EXPIRATION_OBSERVED;
        } else {
            self.flags &= !EXPIRATION_OBSERVED;
        }
    }
    /// Replace the lineage (after its issuance or an ancestor was resolved).
    pub fn set_lineage(&mut self, root: &Root, depth: u32, complete: bool) {
        if !Arc::ptr_eq(&self.root_id, &root.id) {
            self.root_id = root.id.clone();
        }
        self.root_kind = root.kind;
        self.depth = depth;
        if complete {
            self.flags |= COMPLETE;
        } else {
            self.flags &= !COMPLETE;
        }
    }
    /// Learn the issue time of a set first seen without one (SPEC 3.3: a
    /// provisional set completed by a dated call).
    pub fn set_issued(&mut self, t: i64) {
        if self.flags & ISSUED_KNOWN == 0 {
            self.flags |= ISSUED_KNOWN;
            self.start = t;
        }
    }
    /// End of liveness: the issuance's end or the last use, whichever is later.
    pub fn live_until(&self) -> i64 {
        self.expires.max(self.last_use)
    }
    pub fn root(&self) -> Root {
        Root {
            kind: self.root_kind,
            id: self.root_id.clone(),
        }
    }
    /// Live at `t` (SPEC 3.4), with the issuance matching tolerance at the start.
    pub fn live_at(&self, t: i64, tol: i64) -> bool {
        self.start.saturating_sub(tol) <= t && t <= self.live_until()
    }
}

/// The tracked credential that created a long-term key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Creator {
    pub fp: Fingerprint,
    pub root: Arc<str>,
}

/// What is known about one EC2 instance's network location.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InstanceInfo {
    /// Trusted addresses in canonical text form, each with its scope
    /// (SPEC 3.5 step 5: learned on first use, or set by `RunInstances` /
    /// `AssociateAddress`).
    pub ips: Vec<(Scope, IpAddr)>,
}

/// The scope of a trusted address (SPEC 3.5 step 5): address family ×
/// private or public.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Scope {
    V4Private,
    V4Public,
    V6Private,
    V6Public,
}

impl Scope {
    pub fn is_public(self) -> bool {
        matches!(self, Scope::V4Public | Scope::V6Public)
    }
}

/// The last use of an address by a non-instance identity, and who that was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct OtherUse {
    pub last: i64,
    /// The identity's ARN (or, without one, its lineage root).
    pub who: Arc<str>,
}

/// At most this many known IPs are kept per instance (oldest dropped).
pub(crate) const MAX_IPS_PER_INSTANCE: usize = 16;

/// At most this many credential sets share one key ID; a further one evicts
/// the oldest of them. Real collisions involve two or three sets; the cap
/// keeps the per-record work bounded when forged records pile sets onto one ID.
pub const MAX_SETS_PER_KEY: usize = 32;

/// Fixed per-entry overhead estimate of an LRU node plus hash slot.
const NODE: usize = 64;

/// Estimated bytes of one `CredSet` value: its size on a 64-bit target, as a
/// constant so the estimate (and so the byte cap's evictions, and so the
/// output) is the same on 32-bit WASM as natively (SPEC 5, deterministic).
const CRED_SET: usize = 96;

pub(crate) fn cost_set(s: &CredSet) -> usize {
    // LRU node (fingerprint, set, links) + its LRU map slot + its key-index
    // slot, with hash-table slack; calibrated against measured RSS
    // (`cargo run --release --example state_memory`: ~233 B per set).
    // The root string is often shared between sets (an Arc) but can be long
    // text from the record (`user:<ARN>`): count it every time, to stay an
    // upper bound.
    NODE + CRED_SET + s.key.heap_bytes() + s.root_id.len() + 80
}
fn cost_instance(id: &str, i: &InstanceInfo) -> usize {
    NODE + id.len() + 32 + i.ips.len() * 20
}
fn cost_ip(u: &OtherUse) -> usize {
    NODE + 17 + 40 + u.who.len()
}
fn cost_assoc(id: &str, inst: &str) -> usize {
    NODE + id.len() + inst.len() + 32
}
fn cost_created(key: &str, c: &Creator) -> usize {
    NODE + key.len() + 48 + c.root.len()
}

/// Counters exposed to operators.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Records seen.
    pub records: u64,
    /// CloudTrail records annotated.
    pub annotated: u64,
    /// Valid JSON objects that are not CloudTrail records, passed through unchanged.
    pub passed_through: u64,
    /// Invalid JSON, non-objects and unreadable records, passed through unchanged.
    pub malformed: u64,
    /// Records marked `is_key_collision`.
    pub collisions: u64,
    /// Records marked `ec2_cred_offhost`.
    pub offhost: u64,
    /// STS issuance events observed (credentials created).
    pub issuances: u64,
    /// Of those, issued by temporary credentials (role chaining / refresh).
    pub chained_issuances: u64,
    /// State entries evicted by the entry or byte cap.
    pub evictions: u64,
    /// Credential sets purged after expiring.
    pub expired_purged: u64,
    /// Credential sets tracked now.
    pub tracked_sets: u64,
    /// Estimated bytes of state now.
    pub state_bytes: u64,
    /// CloudTrail records whose time could not be read (an `eventTime` or
    /// `@timestamp` that is not a time) or that had none at all: a fallback
    /// time was used (SPEC 2).
    pub bad_time: u64,
}

pub(crate) type Lru<K, V> = LruCache<K, V, RandomState>;

/// All tables.
pub(crate) struct State {
    pub sets: Lru<Fingerprint, CredSet>,
    /// xxh3(key ID) → the sets using that key ID (almost always one).
    pub by_key: HashMap<u64, SmallVec<[Fingerprint; 1]>, RandomState>,
    pub instances: Lru<Arc<str>, InstanceInfo>,
    /// Address outside AWS → its last use by a non-instance identity.
    pub ip_other: Lru<IpAddr, OtherUse>,
    pub created: Lru<Arc<str>, Creator>,
    /// Elastic IP association ID → instance (for `DisassociateAddress`,
    /// which names only the association).
    pub associations: Lru<Box<str>, Arc<str>>,
    pub bytes: [usize; 5],
    /// The latest event time seen (a monotone clock for purging).
    pub clock: i64,
}

fn lru<K: std::hash::Hash + Eq, V>(h: &RandomState) -> Lru<K, V> {
    LruCache::unbounded_with_hasher(h.clone())
}

impl State {
    pub fn new(hash_seed: u64) -> State {
        let h = RandomState::with_seeds(
            hash_seed,
            0x243f_6a88_85a3_08d3,
            0x1319_8a2e_0370_7344,
            0xa409_3822_299f_31d0,
        );
        State {
            sets: lru(&h),
            by_key: HashMap::with_hasher(h.clone()),
            instances: lru(&h),
            ip_other: lru(&h),
            created: lru(&h),
            associations: lru(&h),
            bytes: [0; 5],
            clock: i64::MIN,
        }
    }

    pub fn total_bytes(&self) -> usize {
        self.bytes.iter().sum()
    }

    /// Insert a new credential set (not yet present); returns how many sets were evicted to
    /// respect [`MAX_SETS_PER_KEY`].
    pub fn insert_set(&mut self, fp: Fingerprint, s: SetInfo) -> u64 {
        let s = CredSet::from(s);
        let mut evicted = 0;
        while self
            .by_key
            .get(&key_hash_bytes(s.key.as_bytes()))
            .is_some_and(|v| v.len() >= MAX_SETS_PER_KEY)
        {
            let oldest = {
                let mut same: Vec<(i64, Fingerprint)> = self
                    .sets_of(s.key.as_str())
                    .filter(|(f, _)| *f != fp)
                    .map(|(f, c)| (c.start, f))
                    .collect();
                if same.len() < MAX_SETS_PER_KEY {
                    break;
                }
                same.sort();
                same[0].1
            };
            if let Some(old) = self.sets.pop(&oldest) {
                self.bytes[0] = self.bytes[0].saturating_sub(cost_set(&old));
                self.unindex(&old.key, oldest, false);
                evicted += 1;
            } else {
                break;
            }
        }
        self.insert_packed(fp, s);
        evicted
    }

    fn insert_packed(&mut self, fp: Fingerprint, s: CredSet) {
        self.bytes[0] += cost_set(&s);
        self.by_key
            .entry(key_hash_bytes(s.key.as_bytes()))
            .or_default()
            .push(fp);
        if let Some((_, old)) = self.sets.push(fp, s) {
            // Same fingerprint replaced: undo its accounting (index already holds fp).
            self.bytes[0] = self.bytes[0].saturating_sub(cost_set(&old));
            self.unindex(&old.key, fp, true);
        }
    }

    /// The sets that use key ID `key`.
    pub fn sets_of<'s>(
        &'s self,
        key: &'s str,
    ) -> impl Iterator<Item = (Fingerprint, &'s CredSet)> + 's {
        self.by_key
            .get(&key_hash(key))
            .into_iter()
            .flatten()
            .filter_map(move |fp| {
                self.sets
                    .peek(fp)
                    .filter(|s| s.key.as_bytes() == key.as_bytes())
                    .map(|s| (*fp, s))
            })
    }

    /// Drop `fp` from the key index (`keep_one` keeps one occurrence).
    fn unindex(&mut self, key: &KeyId, fp: Fingerprint, keep_one: bool) {
        let h = key_hash_bytes(key.as_bytes());
        if let Some(v) = self.by_key.get_mut(&h) {
            if let Some(p) = v.iter().position(|f| *f == fp) {
                if !keep_one || v.iter().filter(|f| **f == fp).count() > 1 {
                    v.swap_remove(p);
                }
            }
            if v.is_empty() {
                self.by_key.remove(&h);
            }
        }
    }

    fn pop_set(&mut self) -> bool {
        match self.sets.pop_lru() {
            Some((fp, s)) => {
                self.bytes[0] = self.bytes[0].saturating_sub(cost_set(&s));
                self.unindex(&s.key, fp, false);
                true
            }
            None => false,
        }
    }

    pub fn touch_instance(&mut self, id: &str) -> &mut InstanceInfo {
        if !self.instances.contains(id) {
            let info = InstanceInfo::default();
            self.bytes[1] += cost_instance(id, &info);
            self.instances.push(Arc::from(id), info);
        }
        // Present now (just checked or inserted); fall back to a fresh entry otherwise.
        self.instances
            .get_or_insert_mut(Arc::from(id), InstanceInfo::default)
    }

    /// Change instance `id`'s trusted addresses with `f`, keeping the byte
    /// accounting right.
    fn with_instance<R>(&mut self, id: &str, f: impl FnOnce(&mut InstanceInfo) -> R) -> R {
        let before = self
            .instances
            .peek(id)
            .map(|i| cost_instance(id, i))
            .unwrap_or(0);
        let info = self.touch_instance(id);
        let r = f(info);
        let after = cost_instance(id, info);
        let base = if before == 0 {
            cost_instance(id, &InstanceInfo::default())
        } else {
            before
        };
        self.bytes[1] = self.bytes[1].saturating_sub(base) + after;
        r
    }

    /// Trust `ip` (canonical text) for instance `id` in `scope`. With
    /// `replace`, it becomes the only trusted address of its scope (an
    /// address AWS says the instance has now); otherwise it is added.
    pub fn trust_instance_ip(&mut self, id: &str, scope: Scope, ip: IpAddr, replace: bool) {
        self.with_instance(id, |info| {
            if replace {
                info.ips.retain(|(s, _)| *s != scope);
            }
            if !info.ips.iter().any(|(_, k)| *k == ip) {
                if info.ips.len() >= MAX_IPS_PER_INSTANCE {
                    info.ips.remove(0);
                }
                info.ips.push((scope, ip));
            }
        })
    }

    /// Forget instance `id`'s trusted public addresses (its Elastic IP moved).
    pub fn clear_public_ips(&mut self, id: &str) {
        if self.instances.contains(id) {
            self.with_instance(id, |info| info.ips.retain(|(s, _)| !s.is_public()));
        }
    }

    /// Remember which instance an Elastic IP association belongs to.
    pub fn note_association(&mut self, assoc: &str, instance: &str) {
        let inst: Arc<str> = Arc::from(instance);
        let cost = cost_assoc(assoc, instance);
        if let Some((k, old)) = self.associations.push(assoc.into(), inst) {
            self.bytes[4] = self.bytes[4].saturating_sub(cost_assoc(&k, &old));
        }
        self.bytes[4] += cost;
    }

    /// Take the instance of an association that is being removed.
    pub fn take_association(&mut self, assoc: &str) -> Option<Arc<str>> {
        let inst = self.associations.pop(assoc)?;
        self.bytes[4] = self.bytes[4].saturating_sub(cost_assoc(assoc, &inst));
        Some(inst)
    }

    /// A non-instance identity `who` used address `ip` (outside AWS) at `t`.
    pub fn note_ip_other(&mut self, ip: IpAddr, t: i64, who: &str) {
        if let Some(v) = self.ip_other.get_mut(&ip) {
            if t >= v.last {
                let old = cost_ip(v);
                v.last = t;
                if *v.who != *who {
                    v.who = Arc::from(who);
                }
                let new = cost_ip(v);
                self.bytes[2] = self.bytes[2].saturating_sub(old) + new;
            }
            return;
        }
        let u = OtherUse {
            last: t,
            who: Arc::from(who),
        };
        self.bytes[2] += cost_ip(&u);
        self.ip_other.push(ip, u);
    }

    pub fn note_created(&mut self, key: &str, c: Creator) {
        let cost = cost_created(key, &c);
        if let Some((_, old)) = self.created.push(Arc::from(key), c) {
            self.bytes[3] = self.bytes[3].saturating_sub(cost_created(key, &old));
        }
        self.bytes[3] += cost;
    }

    /// Enforce the caps; returns how many entries were evicted.
    pub fn enforce_caps(&mut self, max_entries: usize, max_bytes: usize) -> u64 {
        let mut n = 0;
        while self.sets.len() > max_entries && self.pop_set() {
            n += 1;
        }
        while self.instances.len() > max_entries {
            if let Some((id, i)) = self.instances.pop_lru() {
                self.bytes[1] = self.bytes[1].saturating_sub(cost_instance(&id, &i));
                n += 1;
            }
        }
        while self.ip_other.len() > max_entries {
            if let Some((_, u)) = self.ip_other.pop_lru() {
                self.bytes[2] = self.bytes[2].saturating_sub(cost_ip(&u));
                n += 1;
            }
        }
        while self.associations.len() > max_entries {
            if let Some((a, i)) = self.associations.pop_lru() {
                self.bytes[4] = self.bytes[4].saturating_sub(cost_assoc(&a, &i));
                n += 1;
            }
        }
        while self.created.len() > max_entries {
            if let Some((k, c)) = self.created.pop_lru() {
                self.bytes[3] = self.bytes[3].saturating_sub(cost_created(&k, &c));
                n += 1;
            }
        }
        while self.total_bytes() > max_bytes {
            // Evict from the table that holds the most bytes.
            let biggest = (0..5).max_by_key(|&i| self.bytes[i]).unwrap_or(0);
            let evicted = match biggest {
                0 => self.pop_set(),
                1 => match self.instances.pop_lru() {
                    Some((id, i)) => {
                        self.bytes[1] = self.bytes[1].saturating_sub(cost_instance(&id, &i));
                        true
                    }
                    None => false,
                },
                2 => match self.ip_other.pop_lru() {
                    Some((_, u)) => {
                        self.bytes[2] = self.bytes[2].saturating_sub(cost_ip(&u));
                        true
                    }
                    None => false,
                },
                4 => match self.associations.pop_lru() {
                    Some((a, i)) => {
                        self.bytes[4] = self.bytes[4].saturating_sub(cost_assoc(&a, &i));
                        true
                    }
                    None => false,
                },
                _ => match self.created.pop_lru() {
                    Some((k, c)) => {
                        self.bytes[3] = self.bytes[3].saturating_sub(cost_created(&k, &c));
                        true
                    }
                    None => false,
                },
            };
            if !evicted {
                // Accounting drift with an empty table: reset it and stop.
                self.bytes[biggest] = 0;
                if self.total_bytes() <= max_bytes {
                    break;
                }
                continue;
            }
            n += 1;
        }
        n
    }

    /// Purge a bounded number of expired sets and stale IPs from the LRU ends.
    pub fn purge(&mut self, grace: i64, ip_retention: i64) -> u64 {
        let now = self.clock;
        let mut purged = 0;
        for _ in 0..8 {
            match self.sets.peek_lru() {
                Some((_, s)) if s.live_until().saturating_add(grace) < now => {
                    self.pop_set();
                    purged += 1;
                }
                _ => break,
            }
        }
        for _ in 0..8 {
            match self.ip_other.peek_lru() {
                Some((_, u)) if u.last.saturating_add(ip_retention) < now => {
                    if let Some((_, u)) = self.ip_other.pop_lru() {
                        self.bytes[2] = self.bytes[2].saturating_sub(cost_ip(&u));
                    }
                }
                _ => break,
            }
        }
        purged
    }

    /// Remove every expired set and stale IP (a full pass; the caller runs it
    /// rarely enough that its cost per record stays constant). Needed because
    /// long-term keys never expire and can sit at the LRU end, where
    /// [`purge`](Self::purge) stops.
    pub fn sweep(&mut self, grace: i64, ip_retention: i64) -> u64 {
        let now = self.clock;
        let expired: Vec<Fingerprint> = self
            .sets
            .iter()
            .filter(|(_, s)| s.live_until().saturating_add(grace) < now)
            .map(|(fp, _)| *fp)
            .collect();
        for fp in &expired {
            if let Some(s) = self.sets.pop(fp) {
                self.bytes[0] = self.bytes[0].saturating_sub(cost_set(&s));
                self.unindex(&s.key, *fp, false);
            }
        }
        let stale: Vec<IpAddr> = self
            .ip_other
            .iter()
            .filter(|(_, u)| u.last.saturating_add(ip_retention) < now)
            .map(|(ip, _)| *ip)
            .collect();
        for ip in stale {
            if let Some(u) = self.ip_other.pop(&ip) {
                self.bytes[2] = self.bytes[2].saturating_sub(cost_ip(&u));
            }
        }
        expired.len() as u64
    }

    /// Serialize everything, least recently used first.
    pub fn snapshot(&self, config_digest: &str) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        // Writing plain data into a Vec cannot fail.
        let _ = self.write_snapshot(config_digest, &mut out);
        out.into_inner()
    }

    /// Write the snapshot [`snapshot`](Self::snapshot) returns into `w`,
    /// streamed from the tables (no copy of them, no buffer of the whole
    /// snapshot): the header with a zero digest, the body (hashed as it
    /// is written), then the digest in its place. `w` should be buffered.
    pub fn write_snapshot<W: Write + Seek>(&self, config_digest: &str, mut w: W) -> io::Result<()> {
        let start = w.stream_position()?;
        w.write_all(MAGIC)?;
        w.write_all(&SNAPSHOT_VERSION.to_le_bytes())?;
        w.write_all(&[0u8; 32])?;
        let view = SnapshotView {
            config_digest,
            clock: self.clock,
            sets: Rev(&self.sets),
            instances: Rev(&self.instances),
            ip_other: Rev(&self.ip_other),
            created: Rev(&self.created),
            associations: Rev(&self.associations),
        };
        // Hashed a buffer at a time (serde_json writes a few bytes per call).
        let mut body = io::BufWriter::with_capacity(
            1 << 16,
            Hashing {
                inner: &mut w,
                hash: Sha256::new(),
            },
        );
        serde_json::to_writer(&mut body, &view).map_err(io::Error::other)?;
        let digest = body
            .into_inner()
            .map_err(|e| e.into_error())?
            .hash
            .finalize();
        let end = w.stream_position()?;
        w.seek(SeekFrom::Start(start + DIGEST_AT))?;
        w.write_all(&digest)?;
        w.seek(SeekFrom::Start(end))?;
        w.flush()
    }

    /// Build a complete new state from a snapshot read from `r`, or refuse
    /// it: streamed, the tables built as the body is read (no copy of the
    /// file, no decoded copy of the body). The digest covers every byte
    /// after the header; it is checked once the body is read, and a body
    /// that cannot be read is read to its end first, so a truncated or
    /// modified snapshot is named as such.
    pub fn restore_from<R: Read>(
        r: R,
        config_digest: &str,
        hash_seed: u64,
    ) -> Result<State, Error> {
        State::restore_chunked(r, config_digest, hash_seed, CHUNK)
    }

    /// [`restore_from`](Self::restore_from), reading `chunk` bytes at a time.
    pub(crate) fn restore_chunked<R: Read>(
        mut r: R,
        config_digest: &str,
        hash_seed: u64,
        chunk: usize,
    ) -> Result<State, Error> {
        let mut head = [0u8; DIGEST_AT as usize + 32];
        let n = read_up_to(&mut r, &mut head)
            .map_err(|e| Error::Snapshot(format!("cannot read: {e}")))?;
        let head = head.get(..n).unwrap_or_default();
        if head.len() < MAGIC.len() && MAGIC.starts_with(head) {
            return Err(Error::Snapshot(
                "truncated header (bad magic: too short to be a credlineage snapshot)".into(),
            ));
        }
        let rest = head.strip_prefix(MAGIC).ok_or_else(|| {
            Error::Snapshot("not a credlineage state snapshot (bad magic)".into())
        })?;
        let (ver, rest) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| Error::Snapshot("truncated header".into()))?;
        let ver = u32::from_le_bytes(*ver);
        if ver != SNAPSHOT_VERSION {
            return Err(Error::Snapshot(format!(
                "snapshot format version {ver} is not supported (this build reads version {SNAPSHOT_VERSION})"
            )));
        }
        let digest: [u8; 32] = rest
            .try_into()
            .map_err(|_| Error::Snapshot("truncated header".into()))?;
        // Hashed as it is read: every byte of the body, to its end.
        let mut body = Chunks::new(
            Hashing {
                inner: r,
                hash: Sha256::new(),
            },
            chunk,
        );
        let mut st = State::new(hash_seed);
        let mut found = Found::default();
        let parsed = read_body(&mut body, &mut st, &mut found);
        // What is left (after an error) still goes through the digest.
        let drained = io::copy(&mut body.r, &mut io::sink());
        if drained.is_ok() && body.r.hash.finalize().as_slice() != digest {
            return Err(Error::Snapshot(
                "corrupt: checksum mismatch (truncated or modified)".into(),
            ));
        }
        drained.map_err(|e| Error::Snapshot(format!("cannot read: {e}")))?;
        parsed.map_err(|e| Error::Snapshot(format!("corrupt body: {e}")))?;
        let got = found.config_digest.unwrap_or_default();
        if got != config_digest {
            return Err(Error::Snapshot(format!(
                "taken with a different configuration ({got}), this enricher has ({config_digest})"
            )));
        }
        Ok(st)
    }

    /// A portable 64-bit hash of an ARN.
    pub fn arn_hash(arn: &str) -> u64 {
        xxhash_rust::xxh3::xxh3_64(arn.as_bytes())
    }
}

const MAGIC: &[u8] = b"CREDLINEAGE-STATE\n";
/// Where the body's digest is in a snapshot: after the magic and the version.
const DIGEST_AT: u64 = MAGIC.len() as u64 + 4;

/// Read until `buf` is full or the input ends; the bytes read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(buf.get_mut(n..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A reader or writer that hashes the bytes passing through it.
struct Hashing<T> {
    inner: T,
    hash: Sha256,
}

impl<T: Write> Write for Hashing<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<T: Read> Read for Hashing<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(buf.get(..n).unwrap_or_default());
        Ok(n)
    }
}

/// A table serialized in place, least recently used first.
struct Rev<'a, K: std::hash::Hash + Eq, V>(&'a Lru<K, V>);

impl<K: Serialize + std::hash::Hash + Eq, V: Serialize> Serialize for Rev<'_, K, V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().rev())
    }
}

/// The snapshot body as written: [`SnapshotBody`]'s fields, in its order,
/// borrowed from the state (the same JSON, byte for byte).
#[derive(Serialize)]
struct SnapshotView<'a> {
    config_digest: &'a str,
    clock: i64,
    sets: Rev<'a, Fingerprint, CredSet>,
    instances: Rev<'a, Arc<str>, InstanceInfo>,
    ip_other: Rev<'a, IpAddr, OtherUse>,
    created: Rev<'a, Arc<str>, Creator>,
    associations: Rev<'a, Box<str>, Arc<str>>,
}

/// The fields of a body read so far.
#[derive(Default)]
struct Found {
    config_digest: Option<String>,
    fields: u8,
}

/// The fields of a snapshot body, in the order they are written.
const FIELDS: [&str; 7] = [
    "config_digest",
    "clock",
    "sets",
    "instances",
    "ip_other",
    "created",
    "associations",
];

/// A snapshot body read a buffer at a time: each value (a table's element,
/// a key, a scalar) is parsed from the buffer by serde_json as a slice;
/// one cut by the end of the buffer is parsed again once more is read.
struct Chunks<R> {
    r: R,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    chunk: usize,
}

/// Bytes read at a time (the buffer grows for a longer value).
const CHUNK: usize = 1 << 20;

impl<R: Read> Chunks<R> {
    fn new(r: R, chunk: usize) -> Self {
        Chunks {
            r,
            buf: Vec::new(),
            pos: 0,
            eof: false,
            chunk: chunk.max(1),
        }
    }

    /// Read more after what is not consumed; false at the end of the input.
    fn fill(&mut self) -> Result<bool, String> {
        if self.eof {
            return Ok(false);
        }
        self.buf.drain(..self.pos.min(self.buf.len()));
        self.pos = 0;
        let have = self.buf.len();
        let want = have + self.chunk.max(have);
        self.buf.resize(want, 0);
        let mut n = have;
        while n < want {
            match self.r.read(self.buf.get_mut(n..).unwrap_or_default()) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("cannot read: {e}")),
            }
        }
        self.buf.truncate(n);
        Ok(n > have)
    }

    /// The next byte that is not whitespace, not consumed.
    fn peek(&mut self) -> Result<Option<u8>, String> {
        loop {
            while let Some(&c) = self.buf.get(self.pos) {
                if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                    return Ok(Some(c));
                }
                self.pos += 1;
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// Consume `c`, the next byte that is not whitespace.
    fn expect(&mut self, c: u8) -> Result<(), String> {
        match self.peek()? {
            Some(x) if x == c => {
                self.pos += 1;
                Ok(())
            }
            Some(x) => Err(format!(
                "expected '{}', found '{}'",
                c as char,
                x.escape_ascii()
            )),
            None => Err(format!("expected '{}', found the end", c as char)),
        }
    }

    /// Parse the next value as a `T`.
    fn value<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, String> {
        loop {
            self.peek()?;
            let rest = self.buf.get(self.pos..).unwrap_or_default();
            let mut it = serde_json::Deserializer::from_slice(rest).into_iter::<T>();
            let got = it.next();
            let used = it.byte_offset();
            match got {
                // A value that ends at the end of the buffer may go on (a
                // number): read more first.
                Some(Ok(v)) if used < rest.len() || self.eof => {
                    self.pos += used;
                    return Ok(v);
                }
                Some(Ok(_)) => {}
                Some(Err(e)) if !e.is_eof() || self.eof => return Err(e.to_string()),
                Some(Err(_)) | None if self.eof => return Err("unexpected end".into()),
                Some(Err(_)) | None => {}
            }
            if !self.fill()? {
                self.eof = true;
            }
        }
    }

    /// A table: `[` elements separated by `,` `]`, each given to `each`.
    fn table<T: serde::de::DeserializeOwned>(
        &mut self,
        mut each: impl FnMut(T) -> Result<(), String>,
    ) -> Result<(), String> {
        self.expect(b'[')?;
        if self.peek()? == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            each(self.value()?)?;
            match self.peek()? {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err("expected ',' or ']' in a table".into()),
            }
        }
    }
}

/// Read a snapshot body into `st`, table by table, element by element.
fn read_body<R: Read>(b: &mut Chunks<R>, st: &mut State, found: &mut Found) -> Result<(), String> {
    b.expect(b'{')?;
    let mut more = b.peek()? != Some(b'}');
    if !more {
        b.pos += 1;
    }
    while more {
        let k: String = b.value()?;
        b.expect(b':')?;
        let Some(bit) = FIELDS.iter().position(|f| *f == k) else {
            return Err(format!("unknown field `{k}`"));
        };
        let bit = 1u8 << bit;
        if found.fields & bit != 0 {
            return Err(format!("duplicate field `{k}`"));
        }
        found.fields |= bit;
        match k.as_str() {
            "config_digest" => found.config_digest = Some(b.value()?),
            "clock" => st.clock = b.value()?,
            "sets" => b.table(|(fp, s): (Fingerprint, CredSet)| {
                if st.sets.contains(&fp) {
                    return Err(format!("duplicate set {fp}"));
                }
                st.insert_packed(fp, s);
                Ok(())
            })?,
            "instances" => b.table(|(id, info): (Arc<str>, InstanceInfo)| {
                st.bytes[1] += cost_instance(&id, &info);
                st.instances.push(id, info);
                Ok(())
            })?,
            "ip_other" => b.table(|(ip, u): (IpAddr, OtherUse)| {
                st.bytes[2] += cost_ip(&u);
                st.ip_other.push(ip, u);
                Ok(())
            })?,
            "created" => b.table(|(k, c): (Arc<str>, Creator)| {
                st.note_created(&k, c);
                Ok(())
            })?,
            _ => b.table(|(a, i): (Box<str>, Arc<str>)| {
                st.note_association(&a, &i);
                Ok(())
            })?,
        }
        match b.peek()? {
            Some(b',') => {}
            Some(b'}') => more = false,
            _ => return Err("expected ',' or '}'".into()),
        }
        b.pos += 1;
    }
    if let Some(c) = b.peek()? {
        return Err(format!("trailing characters ('{}')", c.escape_ascii()));
    }
    if let Some((_, missing)) = FIELDS
        .iter()
        .enumerate()
        .find(|(i, _)| found.fields & (1 << i) == 0)
    {
        return Err(format!("missing field `{missing}`"));
    }
    Ok(())
}

/// Version of the snapshot format this build writes and reads.
/// Version 2 (SPEC v1.1): trusted addresses per scope, who used an address
/// outside AWS, Elastic IP associations, per-set marks and last use.
pub const SNAPSHOT_VERSION: u32 = 2;

/// The snapshot body as earlier builds wrote it (a copy of every table):
/// the tests check that the streamed body is the same JSON.
#[cfg(test)]
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotBody {
    config_digest: String,
    clock: i64,
    sets: Vec<(Fingerprint, CredSet)>,
    instances: Vec<(Arc<str>, InstanceInfo)>,
    ip_other: Vec<(IpAddr, OtherUse)>,
    created: Vec<(Arc<str>, Creator)>,
    associations: Vec<(Box<str>, Arc<str>)>,
}

#[cfg(test)]
impl State {
    /// The snapshot as earlier builds made it: the tables copied into a
    /// [`SnapshotBody`], serialized into a buffer, then the header.
    pub fn snapshot_copied(&self, config_digest: &str) -> Vec<u8> {
        fn rev<K: Clone + std::hash::Hash + Eq, V: Clone>(t: &Lru<K, V>) -> Vec<(K, V)> {
            t.iter()
                .rev()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }
        let body = SnapshotBody {
            config_digest: config_digest.to_string(),
            clock: self.clock,
            sets: rev(&self.sets),
            instances: rev(&self.instances),
            ip_other: rev(&self.ip_other),
            created: rev(&self.created),
            associations: rev(&self.associations),
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        out.extend_from_slice(&Sha256::digest(&json));
        out.extend_from_slice(&json);
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cred_set_size_constant_matches_64_bit_layout() {
        #[cfg(target_pointer_width = "64")]
        assert_eq!(std::mem::size_of::<super::CredSet>(), super::CRED_SET);
    }
}
