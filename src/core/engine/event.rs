//! One event through the rules in order: its time and the clock (SPEC 2), the caller's set and lineage, off-host, STS issuance, created keys, EC2 addresses and the collision count, into its annotation.

use super::Enricher;
use super::MAX_CLOCK_JUMP;
use super::lineage::STS_ISSUING;
use super::offhost::instance_creds;
use crate::annotation::{Annotation, CreatedBy, CredentialType};
use crate::keyid::{self, KeyKind};
use crate::record::Event;
use crate::state::{Creator, OFFHOST_LINE};
use crate::time::parse_iso;

/// The time of a record processed before any record gave a time (its own
/// time unreadable or absent, no host time): earlier than every real event
/// (1901-12-13), so it cannot expire, outlive or collide with dated
/// credentials. It never moves the clock, so nothing prints it.
const UNDATED: i64 = i32::MIN as i64;

impl Enricher {
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

    pub(super) fn annotate_event(
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
}
