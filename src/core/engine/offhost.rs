//! SPEC 3.5 EC2 credentials used off-host: which calls used instance credentials, the instance addresses learned from EC2's records and by trust on first use, address scopes and parsing, and public addresses other identities used.

use super::Enricher;
use crate::annotation::{CredentialType, OffhostReason, RootType};
use crate::record::Event;
use crate::state::{INSTANCE, NOT_INSTANCE, Scope};
use smallvec::SmallVec;
use std::net::IpAddr;
use std::sync::Arc;

pub(super) fn is_instance_id(s: &str) -> bool {
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
pub(super) fn instance_creds<'e>(ev: &'e Event<'_>, marks: u8) -> Option<Option<&'e str>> {
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

/// The text after the last `sep` of `s` when it is an instance ID
/// ([`is_instance_id`]). An instance ID has at most 32 bytes and no
/// separator, so only the last 33 bytes can hold the separator that
/// matters: one `memrchr` over them (this runs on every record, and is
/// almost always no).
pub(super) fn trailing_instance_id(s: &str, sep: u8) -> Option<&str> {
    let b = s.as_bytes();
    let from = b.len().saturating_sub(33);
    let at = from + memchr::memrchr(sep, b.get(from..)?)?;
    // `sep` is ASCII, so the byte after it starts a character.
    let id = s.get(at + 1..)?;
    is_instance_id(id).then_some(id)
}

/// Whether `arn` contains `:assumed-role/` (checked at each `:`).
pub(super) fn has_assumed_role(arn: &str) -> bool {
    let b = arn.as_bytes();
    memchr::memchr_iter(b':', b).any(|i| {
        b.get(i + 1..)
            .is_some_and(|r| r.starts_with(b"assumed-role/"))
    })
}

/// A source that is an AWS service name or `AWS Internal` rather than an address.
pub(super) fn is_service_source(src: &str) -> bool {
    src.bytes().any(|c| c.is_ascii_alphabetic()) && !src.contains(':')
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

/// Parse an address strictly (std), or a dotted quad with leading zeros.
pub(super) fn parse_ip(s: &str) -> Option<IpAddr> {
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

impl Enricher {
    /// SPEC 3.5 step 4: remember a public address that a non-instance
    /// identity (IAM user key, console, SSO / SAML / web-identity user) used,
    /// and who that was. Only addresses outside AWS are ever looked up; the
    /// AWS ranges are consulted then, not on every call here (this runs on
    /// most records).
    pub(super) fn note_other_identity(
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

    /// What EC2's own records say about instance addresses (SPEC 3.5 step 5).
    pub(super) fn learn_instance_ips(&mut self, ev: &Event<'_>, name: &str) {
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
    pub(super) fn offhost(
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
