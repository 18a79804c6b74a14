//! `credlineage report`: what the enrichment found, for a person — the lineage tree of every root, key-ID collisions, off-host EC2 credential use and the credentials still live at the end of the trail.
//!
//! The report runs the same enrichment as `enrich` (same inputs, same order,
//! same configuration) and reads the annotated records it writes, so it shows
//! exactly what a SIEM would see; the credentials still live at the end come
//! from the enricher's state. Like the annotations, it holds key IDs,
//! principal ARNs, fingerprints and source IPs, never a session token or
//! secret (it reads no field that holds one).

use credlineage::time::{format_iso, parse_iso};
use credlineage::{Enricher, TrackedSet};
use serde::Serialize;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{self, Write};

mod command;
mod html;
mod model;
mod text;

pub(crate) use command::{ReportArgs, report};
pub use html::write_html;
pub use model::*;
pub use text::write_text;

/// How many source IPs a report line lists (the count is always given).
const MAX_IPS: usize = 8;

/// What is collected about one fingerprint while reading.
#[derive(Default)]
struct Node {
    order: usize,
    key: Option<String>,
    arn: Option<String>,
    credential_type: Option<String>,
    root: Option<String>,
    root_type: Option<String>,
    depth: Option<u64>,
    complete: Option<bool>,
    parent: Option<String>,
    issued_by: Option<String>,
    expiration: Option<String>,
    calls: u64,
    first: Option<i64>,
    last: Option<i64>,
    ips: BTreeSet<String>,
    offhost_calls: u64,
    ancestor: bool,
}

#[derive(Default)]
struct RootAgg {
    order: usize,
    kind: Option<String>,
    events: u64,
    keyless: u64,
    first: Option<i64>,
    last: Option<i64>,
}

#[derive(Default)]
struct CollisionAgg {
    events: u64,
    max_count: u64,
}

#[derive(Default)]
struct OffhostAgg {
    order: usize,
    events: u64,
    first: Option<i64>,
    last: Option<i64>,
    fps: BTreeSet<String>,
    names: BTreeSet<String>,
}

/// Reads annotated records (one per line) and collects the report.
pub struct Report {
    /// Where the annotation is: `Ok(namespace)` or `Err(flatten prefix)`.
    place: Result<String, String>,
    string_fields: Vec<String>,
    nodes: HashMap<String, Node>,
    roots: HashMap<String, RootAgg>,
    collisions: BTreeMap<String, CollisionAgg>,
    offhost: HashMap<(String, String, String), OffhostAgg>,
    first: Option<i64>,
    last: Option<i64>,
    collision_events: u64,
    offhost_events: u64,
    expired_use: u64,
    partial: Vec<u8>,
}

fn span(first: &mut Option<i64>, last: &mut Option<i64>, t: Option<i64>) {
    if let Some(t) = t {
        *first = Some(first.map_or(t, |f| f.min(t)));
        *last = Some(last.map_or(t, |l| l.max(t)));
    }
}

fn iso(t: Option<i64>) -> Option<String> {
    t.map(format_iso)
}

fn text(v: &Value, path: &[&str]) -> Option<String> {
    let mut v = v;
    for p in path {
        v = v.get(p)?;
    }
    v.as_str().filter(|s| !s.is_empty()).map(str::to_string)
}

impl Report {
    /// A report reading the annotation under `namespace`, or flattened with `prefix`.
    pub fn new(namespace: &str, flatten_prefix: Option<&str>, string_fields: &[String]) -> Report {
        Report {
            place: match flatten_prefix {
                Some(p) => Err(p.to_string()),
                None => Ok(namespace.to_string()),
            },
            string_fields: string_fields.to_vec(),
            nodes: HashMap::new(),
            roots: HashMap::new(),
            collisions: BTreeMap::new(),
            offhost: HashMap::new(),
            first: None,
            last: None,
            collision_events: 0,
            offhost_events: 0,
            expired_use: 0,
            partial: Vec::new(),
        }
    }

    /// The annotation of an output record, as an object.
    fn annotation(&self, rec: &Map<String, Value>) -> Option<Map<String, Value>> {
        match &self.place {
            Ok(ns) => rec.get(ns)?.as_object().cloned(),
            Err(prefix) => {
                let m: Map<String, Value> = rec
                    .iter()
                    .filter_map(|(k, v)| {
                        Some((k.strip_prefix(prefix.as_str())?.to_string(), v.clone()))
                    })
                    .collect();
                (!m.is_empty()).then_some(m)
            }
        }
    }

    /// The CloudTrail event inside an output record (itself, its EventBridge
    /// `detail`, or the record held as a string in a configured field).
    fn event<'r>(&self, rec: &'r Value) -> Cow<'r, Value> {
        if rec.get("eventName").is_some() {
            return Cow::Borrowed(rec);
        }
        if let Some(d) = rec.get("detail").filter(|d| d.get("eventName").is_some()) {
            return Cow::Borrowed(d);
        }
        for f in &self.string_fields {
            if let Some(inner) = rec
                .get(f)
                .and_then(Value::as_str)
                .and_then(|s| serde_json::from_str::<Value>(s).ok())
                .filter(|v| v.get("eventName").is_some())
            {
                return Cow::Owned(inner);
            }
        }
        Cow::Borrowed(rec)
    }

    fn node(&mut self, fp: &str) -> &mut Node {
        let order = self.nodes.len();
        self.nodes.entry(fp.to_string()).or_insert_with(|| Node {
            order,
            ..Node::default()
        })
    }

    /// Take one output record (one line of `enrich`'s output).
    pub fn add(&mut self, line: &[u8]) {
        let Ok(v) = serde_json::from_slice::<Value>(line) else {
            return;
        };
        let Some(a) = v.as_object().and_then(|rec| self.annotation(rec)) else {
            return;
        };
        let ev = self.event(&v);
        let t = ev
            .get("eventTime")
            .and_then(Value::as_str)
            .and_then(parse_iso)
            .or_else(|| {
                ev.get("@timestamp")
                    .and_then(Value::as_str)
                    .and_then(parse_iso)
            });
        span(&mut self.first, &mut self.last, t);
        let s = |k: &str| a.get(k).and_then(Value::as_str).map(str::to_string);
        let b = |k: &str| a.get(k).and_then(Value::as_bool);
        let fp = s("session_fingerprint");
        let root = s("lineage_root");
        let ip = text(&ev, &["sourceIPAddress"]);
        let name = text(&ev, &["eventName"]);
        if let Some(r) = &root {
            let order = self.roots.len();
            let agg = self.roots.entry(r.clone()).or_insert_with(|| RootAgg {
                order,
                ..RootAgg::default()
            });
            if agg.kind.is_none() {
                agg.kind = s("lineage_root_type");
            }
            agg.events += 1;
            if fp.is_none() {
                agg.keyless += 1;
            }
            span(&mut agg.first, &mut agg.last, t);
        }
        if let Some(f) = &fp {
            let arn = text(&ev, &["userIdentity", "arn"]);
            let n = self.node(f);
            n.key = n.key.take().or(s("access_key_id"));
            n.arn = n.arn.take().or(arn);
            n.credential_type = n.credential_type.take().or(s("credential_type"));
            n.root = n.root.take().or(root.clone());
            n.root_type = n.root_type.take().or(s("lineage_root_type"));
            n.depth = n.depth.or(a.get("lineage_depth").and_then(Value::as_u64));
            n.complete = n.complete.or(b("lineage_complete"));
            n.parent = n.parent.take().or(s("parent_fingerprint"));
            n.calls += 1;
            span(&mut n.first, &mut n.last, t);
            if let Some(ip) = &ip {
                n.ips.insert(ip.clone());
            }
            if b("ec2_cred_offhost") == Some(true) {
                n.offhost_calls += 1;
            }
            n.ancestor |= b("offhost_ancestor") == Some(true);
        }
        if let Some(iss) = a.get("issued").and_then(Value::as_object) {
            let gs = |k: &str| iss.get(k).and_then(Value::as_str).map(str::to_string);
            if let Some(child) = gs("session_fingerprint") {
                let re = ev.get("responseElements").cloned().unwrap_or(Value::Null);
                let arn = text(&re, &["assumedRoleUser", "arn"])
                    .or_else(|| text(&re, &["federatedUser", "arn"]))
                    .or_else(|| {
                        (name.as_deref() == Some("GetSessionToken"))
                            .then(|| text(&ev, &["userIdentity", "arn"]))
                            .flatten()
                    });
                let by = name.clone().map(|n| match iso(t) {
                    Some(at) => format!("{n} at {at}"),
                    None => n,
                });
                let n = self.node(&child);
                n.key = n.key.take().or(gs("access_key_id"));
                n.arn = n.arn.take().or(arn);
                n.credential_type = n.credential_type.take().or(Some("temporary".into()));
                n.root = n.root.take().or(gs("lineage_root"));
                n.depth = n.depth.or(iss.get("lineage_depth").and_then(Value::as_u64));
                n.parent = n.parent.take().or(fp.clone());
                n.issued_by = n.issued_by.take().or(by);
                n.expiration = n.expiration.take().or(gs("expiration"));
                // Issued by an off-host call (or by one of its descendants):
                // the engine marks its calls `offhost_ancestor`; so is it, used or not.
                n.ancestor |=
                    b("ec2_cred_offhost") == Some(true) || b("offhost_ancestor") == Some(true);
                span(&mut n.first, &mut n.last, t);
            }
        }
        if b("is_key_collision") == Some(true) {
            self.collision_events += 1;
            let count = a
                .get("collision_count")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            // The key that collided: the one used, or on an issuance event the one issued.
            let mut keys: Vec<String> = s("access_key_id").into_iter().collect();
            if let Some(k) = a
                .get("issued")
                .and_then(|i| i.get("access_key_id"))
                .and_then(Value::as_str)
            {
                keys.push(k.to_string());
            }
            for k in keys {
                let c = self.collisions.entry(k).or_default();
                c.events += 1;
                c.max_count = c.max_count.max(count);
            }
        }
        if b("used_after_expiration") == Some(true) {
            self.expired_use += 1;
        }
        if b("ec2_cred_offhost") == Some(true) {
            self.offhost_events += 1;
            let id = s("ec2_instance_id").unwrap_or_default();
            let reason = s("offhost_reason").unwrap_or_default();
            let order = self.offhost.len();
            let o = self
                .offhost
                .entry((id, ip.clone().unwrap_or_default(), reason))
                .or_insert_with(|| OffhostAgg {
                    order,
                    ..OffhostAgg::default()
                });
            o.events += 1;
            span(&mut o.first, &mut o.last, t);
            if let Some(f) = &fp {
                o.fps.insert(f.clone());
            }
            if let Some(n) = &name {
                o.names.insert(n.clone());
            }
        }
    }

    fn credential(&self, fp: &str, n: &Node) -> Credential {
        Credential {
            session_fingerprint: fp.to_string(),
            access_key_id: n.key.clone(),
            principal_arn: n.arn.clone(),
            credential_type: n.credential_type.clone(),
            lineage_depth: n.depth,
            lineage_complete: n.complete,
            parent_fingerprint: n.parent.clone(),
            issued_by: n.issued_by.clone(),
            expiration: n.expiration.clone(),
            calls: n.calls,
            first_seen: iso(n.first),
            last_seen: iso(n.last),
            source_ips: n.ips.iter().take(MAX_IPS).cloned().collect(),
            source_ip_count: n.ips.len(),
            offhost_calls: n.offhost_calls,
            offhost_ancestor: n.ancestor,
            children: Vec::new(),
        }
    }

    /// The credential `top` with everything it issued below it. Built
    /// bottom-up without recursion; a parent cycle (impossible in real data)
    /// is cut where it closes, and each credential is placed once.
    fn tree<'n>(
        &'n self,
        top: &'n str,
        children: &HashMap<&'n str, Vec<&'n str>>,
        placed: &mut HashSet<&'n str>,
    ) -> Option<Credential> {
        let node = |fp: &str| self.nodes.get(fp).map(|n| self.credential(fp, n));
        if !placed.insert(top) {
            return None;
        }
        let mut stack: Vec<(&str, Credential, usize)> = vec![(top, node(top)?, 0)];
        loop {
            let (fp, _, next) = stack.last_mut()?;
            let kids = children.get(*fp).map(Vec::as_slice).unwrap_or(&[]);
            if let Some(k) = kids.get(*next).copied() {
                *next += 1;
                if let Some(c) = node(k).filter(|_| placed.insert(k)) {
                    stack.push((k, c, 0));
                }
                continue;
            }
            let (_, done, _) = stack.pop()?;
            match stack.last_mut() {
                Some((_, parent, _)) => parent.children.push(done),
                None => return Some(done),
            }
        }
    }

    /// The report, with the live credentials taken from the enricher's state.
    pub fn finish(self, e: &Enricher) -> ReportOut {
        let stats = e.stats();
        // The credential trees: children under their parent, the rest under their root.
        let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut tops: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut order: Vec<(&String, &Node)> = self.nodes.iter().collect();
        order.sort_by_key(|(_, n)| n.order);
        for (fp, n) in &order {
            match n
                .parent
                .as_deref()
                .filter(|p| self.nodes.contains_key(*p) && *p != fp.as_str())
            {
                Some(p) => children.entry(p).or_default().push(fp),
                None => tops
                    .entry(n.root.as_deref().unwrap_or("(no root)"))
                    .or_default()
                    .push(fp),
            }
        }
        let mut placed: HashSet<&str> = HashSet::new();
        let mut root_names: Vec<(&String, &RootAgg)> = self.roots.iter().collect();
        root_names.sort_by_key(|(_, r)| r.order);
        let mut roots = Vec::new();
        for (name, agg) in root_names {
            let credentials = tops
                .get(name.as_str())
                .into_iter()
                .flatten()
                .filter_map(|fp| self.tree(fp, &children, &mut placed))
                .collect();
            roots.push(RootEntry {
                lineage_root: name.clone(),
                lineage_root_type: agg.kind.clone(),
                events: agg.events,
                keyless_events: agg.keyless,
                first_seen: iso(agg.first),
                last_seen: iso(agg.last),
                credentials,
            });
        }
        // What is not placed yet hangs under its root, in the order first
        // seen: credentials only ever seen as issued (their root made no call
        // itself), and issuer loops (each issued by another one of the loop:
        // only crafted records do that), so nothing read is left out.
        let mut extra: Vec<(&str, RootAgg, Vec<Credential>)> = Vec::new();
        for (fp, n) in &order {
            if placed.contains(fp.as_str()) {
                continue;
            }
            let Some(tree) = self.tree(fp, &children, &mut placed) else {
                continue;
            };
            let name = n.root.as_deref().unwrap_or("(no root)");
            if let Some(r) = roots.iter_mut().find(|r| r.lineage_root == name) {
                r.credentials.push(tree);
                continue;
            }
            let i = match extra.iter().position(|e| e.0 == name) {
                Some(i) => i,
                None => {
                    let agg = RootAgg {
                        kind: n.root_type.clone(),
                        ..RootAgg::default()
                    };
                    extra.push((name, agg, Vec::new()));
                    extra.len() - 1
                }
            };
            if let Some((_, agg, trees)) = extra.get_mut(i) {
                span(&mut agg.first, &mut agg.last, n.first);
                span(&mut agg.first, &mut agg.last, n.last);
                trees.push(tree);
            }
        }
        roots.extend(extra.into_iter().map(|(name, agg, credentials)| RootEntry {
            lineage_root: name.to_string(),
            lineage_root_type: agg.kind,
            events: 0,
            keyless_events: 0,
            first_seen: iso(agg.first),
            last_seen: iso(agg.last),
            credentials,
        }));

        // An issuance event marked as a collision names two keys (the one
        // used and the one issued): a key is listed when two or more sets
        // are known for it, here or in the state (restored with `--state`).
        let tracked = e.tracked_sets();
        let mut by_key: HashMap<&str, Vec<(&String, &Node)>> = HashMap::new();
        for (fp, n) in &order {
            if let Some(k) = &n.key {
                by_key.entry(k).or_default().push((fp, n));
            }
        }
        let mut sets_per_key: HashMap<&str, HashSet<String>> = HashMap::new();
        for (k, v) in &by_key {
            sets_per_key
                .entry(k)
                .or_default()
                .extend(v.iter().map(|(fp, _)| (*fp).clone()));
        }
        for t in &tracked {
            sets_per_key
                .entry(&t.access_key_id)
                .or_default()
                .insert(t.session_fingerprint.to_string());
        }
        let collisions = self
            .collisions
            .iter()
            .filter(|(k, _)| sets_per_key.get(k.as_str()).is_some_and(|s| s.len() > 1))
            .map(|(k, c)| {
                let mut sets = by_key.get(k.as_str()).cloned().unwrap_or_default();
                sets.sort_by_key(|(_, n)| (n.first, n.order));
                Collision {
                    access_key_id: k.clone(),
                    events: c.events,
                    max_collision_count: c.max_count,
                    credentials: sets
                        .into_iter()
                        .map(|(fp, n)| CollidingSet {
                            session_fingerprint: fp.clone(),
                            principal_arn: n.arn.clone(),
                            lineage_root: n.root.clone(),
                            first_seen: iso(n.first),
                            last_seen: iso(n.last),
                        })
                        .collect(),
                }
            })
            .collect();

        let mut off: Vec<(&(String, String, String), &OffhostAgg)> = self.offhost.iter().collect();
        off.sort_by_key(|(_, o)| o.order);
        let offhost = off
            .into_iter()
            .map(|((id, ip, reason), o)| Offhost {
                ec2_instance_id: id.clone(),
                source_ip: ip.clone(),
                offhost_reason: reason.clone(),
                events: o.events,
                first_seen: iso(o.first),
                last_seen: iso(o.last),
                session_fingerprints: o.fps.iter().cloned().collect(),
                event_names: o.names.iter().cloned().collect(),
            })
            .collect();

        let clock = e.clock();
        let mut live: Vec<Live> = match clock {
            Some(now) => tracked
                .into_iter()
                .filter(|s| s.expires != i64::MAX && s.start <= now && now <= s.expires)
                .map(|s: TrackedSet| {
                    let fp = s.session_fingerprint.to_string();
                    Live {
                        principal_arn: self.nodes.get(&fp).and_then(|n| n.arn.clone()),
                        session_fingerprint: fp,
                        access_key_id: s.access_key_id,
                        lineage_root: s.lineage_root.to_string(),
                        lineage_depth: s.lineage_depth,
                        expires: format_iso(s.expires),
                        expiration_observed: s.expiration_observed,
                    }
                })
                .collect(),
            None => Vec::new(),
        };
        live.sort_by(|a, b| {
            (&a.expires, &a.session_fingerprint).cmp(&(&b.expires, &b.session_fingerprint))
        });

        ReportOut {
            totals: Totals {
                records: stats.records,
                annotated: stats.annotated,
                passed_through: stats.passed_through,
                malformed: stats.malformed,
                first_event: iso(self.first),
                last_event: iso(self.last),
                key_collision_events: self.collision_events,
                offhost_events: self.offhost_events,
                used_after_expiration_events: self.expired_use,
            },
            roots,
            collisions,
            offhost,
            live_at: iso(clock),
            live,
        }
    }
}

/// `enrich`'s output goes here instead of to a file: complete lines are fed
/// to the report.
impl Write for Report {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(nl) = memchr::memchr(b'\n', rest) {
            let (line, tail) = rest.split_at(nl);
            if self.partial.is_empty() {
                self.add(line);
            } else {
                let mut whole = std::mem::take(&mut self.partial);
                whole.extend_from_slice(line);
                self.add(&whole);
            }
            rest = tail.get(1..).unwrap_or_default();
        }
        self.partial.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.partial.is_empty() {
            let whole = std::mem::take(&mut self.partial);
            self.add(&whole);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
