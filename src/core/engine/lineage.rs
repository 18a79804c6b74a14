//! SPEC 3.2 lineage: a set's root, depth and parent resolved through the parents the state holds (`line_of`, `caller`), the roots of keyless identities, and the set an STS issuance creates (`issue`).

use super::Enricher;
use super::offhost::is_instance_id;
use crate::annotation::{CredentialType, Issued, RootType};
use crate::fingerprint::{self, Fingerprint};
use crate::record::Event;
use crate::state::{CredSet, INSTANCE, NOT_INSTANCE, OFFHOST_LINE, Root, SetInfo, State};
use crate::time::parse_expiration;
use smallvec::SmallVec;
use std::sync::Arc;

/// A credential set's lineage: root, depth, completeness, parent and marks.
#[derive(Debug, Clone)]
pub(super) struct Line {
    pub(super) root: Root,
    pub(super) depth: u32,
    pub(super) complete: bool,
    pub(super) parent: Option<Fingerprint>,
    pub(super) marks: u8,
}

impl Line {
    pub(super) fn of(s: &CredSet) -> Line {
        Line {
            root: s.root(),
            depth: s.depth,
            complete: s.complete(),
            parent: s.parent,
            marks: s.marks(),
        }
    }
    /// This set's lineage given its parent's (resolved) lineage.
    pub(super) fn under(&self, parent: &Line) -> Line {
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
pub(super) const MAX_HOPS: usize = 64;

/// The caller's credential set, as resolved for one call.
pub(super) struct Caller {
    pub(super) fp: Fingerprint,
    pub(super) root: Root,
    pub(super) depth: u32,
    pub(super) complete: bool,
    pub(super) parent: Option<Fingerprint>,
    pub(super) expires: i64,
    pub(super) expiration_observed: bool,
    /// [`INSTANCE`] / [`NOT_INSTANCE`] / [`OFFHOST_LINE`] bits of the set.
    pub(super) marks: u8,
}

/// The service of a service-linked role's session (SPEC 3.2): the issuer's
/// role path `role/aws-service-role/<service>/…`.
pub(super) fn service_linked_service<'e>(ev: &'e Event<'_>) -> Option<&'e str> {
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

/// `arn:aws:iam::ACCT:role/path/NAME` + session → `arn:aws:sts::ACCT:assumed-role/NAME/SESSION`.
pub(super) fn assumed_role_arn(role_arn: &str, session: &str) -> Option<String> {
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

pub(super) fn role_of_session_arn(arn: &str) -> Option<&str> {
    let res = arn.split(':').nth(5)?;
    let rest = res.strip_prefix("assumed-role/")?;
    rest.split('/').next()
}

pub(super) fn root(kind: RootType, id: String) -> Root {
    Root {
        kind,
        id: Arc::from(id),
    }
}

pub(super) const STS_ISSUING: [&str; 6] = [
    "AssumeRole",
    "AssumeRoleWithSAML",
    "AssumeRoleWithWebIdentity",
    "GetSessionToken",
    "GetFederationToken",
    "AssumeRoot",
];

impl Enricher {
    /// The lineage of set `fp` (SPEC 3.2): in batch mode as the whole input
    /// shows it; otherwise followed up through the parents the state still
    /// holds, so a parent observed or resolved after its children upgrades
    /// them. `None` when the set is not tracked.
    pub(super) fn line_of(&self, fp: Fingerprint) -> Option<Line> {
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
    pub(super) fn caller(&mut self, fp: Fingerprint) -> Option<Caller> {
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

    pub(super) fn state_root_type(&self, i: &Issued) -> Option<RootType> {
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

    /// Root of a keyless event's identity (console sign-in, SAML/web-identity users).
    pub(super) fn keyless_root(&self, ev: &Event<'_>) -> Option<Root> {
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
    pub(super) fn issue(
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
}
