//! SPEC 3.3 credential sets and fingerprints: which tracked set a call or issuance belongs to (`find_set`), and the set a call's access key resolves to or creates (`resolve_caller`).

use super::Enricher;
use super::lineage::{Caller, role_of_session_arn, root, service_linked_service};
use super::offhost::{has_assumed_role, instance_creds};
use crate::annotation::RootType;
use crate::fingerprint::{self, Fingerprint};
use crate::keyid::{self, KeyKind};
use crate::record::Event;
use crate::state::{NOT_INSTANCE, SetInfo, State};
use crate::time::parse_iso;

impl Enricher {
    /// The credential set (SPEC 3.3) that a call or issuance of key `key` by
    /// principal `arn_hash` with issue time `issue` (a call's creationDate,
    /// an issuance's eventTime; `None` for a call without creationDate)
    /// belongs to, if it is tracked. Sets never split: a set with the same
    /// key and ARN issued within the tolerance is the same set, whichever
    /// record came first; a dated record completes a provisional (undated)
    /// set; an undated call belongs to the live set issued last. Ties break
    /// on the fingerprint, so the answer does not depend on the order the
    /// state was built or restored in.
    pub(super) fn find_set(
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
    pub(super) fn resolve_caller(
        &mut self,
        ev: &Event<'_>,
        key: &str,
        kind: KeyKind,
        t: i64,
    ) -> Caller {
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
}
