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

mod evict;
mod snapshot;
#[cfg(test)]
mod tests;

pub use self::snapshot::SNAPSHOT_VERSION;

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

    /// A portable 64-bit hash of an ARN.
    pub fn arn_hash(arn: &str) -> u64 {
        xxhash_rust::xxh3::xxh3_64(arn.as_bytes())
    }
}
