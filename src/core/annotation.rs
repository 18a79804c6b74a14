//! The annotation credlineage adds to a record: a typed value and its fixed-order JSON encoding (SPEC 3 and Appendix A).

use crate::fingerprint::Fingerprint;
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::sync::Arc;

mod pack;

pub use crate::keyid::AccountId;

/// What kind of credential made the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialType {
    /// An `AKIA…` key.
    LongTerm,
    /// An `ASIA…` key.
    Temporary,
    /// No key: an AWS service, an unauthenticated STS call, a cross-account copy.
    None,
    /// A key with another prefix.
    Unknown,
}

impl CredentialType {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialType::LongTerm => "long_term",
            CredentialType::Temporary => "temporary",
            CredentialType::None => "none",
            CredentialType::Unknown => "unknown",
        }
    }
}

/// What the origin of a credential chain is (SPEC 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RootType {
    /// A long-term access key: root is the key ID.
    AccessKey,
    /// The account root user: `root:<account>`.
    RootUser,
    /// An IAM user's console or `GetSessionToken` session: `user:<ARN>`.
    IamUserSession,
    /// An EC2 instance profile: `ec2:<instance id>`.
    Ec2Instance,
    /// Another AWS service: `service:<invokedBy>/<session name>`.
    AwsService,
    /// `AssumeRoleWithSAML` (and IAM Identity Center): `saml:<provider>/<user>`.
    Saml,
    /// `AssumeRoleWithWebIdentity`: `web_identity:<provider>/<user>`.
    WebIdentity,
    /// The oldest ancestor was not observed: `unresolved:<key id>`.
    Unresolved,
}

impl RootType {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RootType::AccessKey => "access_key",
            RootType::RootUser => "root_user",
            RootType::IamUserSession => "iam_user_session",
            RootType::Ec2Instance => "ec2_instance",
            RootType::AwsService => "aws_service",
            RootType::Saml => "saml",
            RootType::WebIdentity => "web_identity",
            RootType::Unresolved => "unresolved",
        }
    }
}

/// Why instance credentials were judged off-host (SPEC 3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffhostReason {
    /// An AWS or private address that is not among the instance's trusted
    /// addresses of its scope (address family × private or public).
    NewIpForInstance,
    /// An address outside AWS that a non-instance identity used within the
    /// retention window.
    IpUsedByOtherIdentity,
    /// A public address outside AWS's published ranges.
    OutsideAws,
    /// The call came through a VPC endpoint of another account.
    ForeignVpcEndpoint,
}

impl OffhostReason {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OffhostReason::NewIpForInstance => "new_ip_for_instance",
            OffhostReason::IpUsedByOtherIdentity => "ip_used_by_other_identity",
            OffhostReason::OutsideAws => "outside_aws",
            OffhostReason::ForeignVpcEndpoint => "foreign_vpc_endpoint",
        }
    }
}

/// The credential an STS issuance event created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Issued {
    /// The new key ID.
    pub access_key_id: String,
    /// Fingerprint of the new credential set.
    pub session_fingerprint: Fingerprint,
    /// Root of the new credential.
    pub lineage_root: Arc<str>,
    /// Depth of the new credential.
    pub lineage_depth: u32,
    /// Expiration (unix seconds) when the response carried a readable one.
    pub expiration: Option<i64>,
    /// The caller itself used temporary credentials (role chaining / refresh).
    pub chained: bool,
}

/// The tracked credential that created the long-term key used by this call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedBy {
    /// Fingerprint of the creator's credential set.
    pub session_fingerprint: Fingerprint,
    /// Root of the creator's chain.
    pub lineage_root: Arc<str>,
}

/// Everything credlineage says about one CloudTrail record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    /// Kind of credential used.
    pub credential_type: CredentialType,
    /// The key used, when present.
    pub access_key_id: Option<String>,
    /// Account decoded from the key ID (SPEC 3.6).
    pub key_account: Option<AccountId>,
    /// Fingerprint of the credential set used; `None` when no key.
    pub session_fingerprint: Option<Fingerprint>,
    /// Origin of the chain (SPEC 3.2), shared with the state that holds it.
    pub lineage_root: Option<Arc<str>>,
    /// Kind of origin.
    pub lineage_root_type: Option<RootType>,
    /// STS issuance hops from the root.
    pub lineage_depth: Option<u32>,
    /// False when an ancestor was never observed.
    pub lineage_complete: Option<bool>,
    /// Fingerprint of the issuing credential, when known.
    pub parent_fingerprint: Option<Fingerprint>,
    /// The key ID belongs to two or more live credential sets now.
    pub is_key_collision: bool,
    /// How many, when more than one.
    pub collision_count: Option<u32>,
    /// Instance credentials used away from their instance.
    pub ec2_cred_offhost: bool,
    /// The instance, for instance-profile credentials.
    pub ec2_instance_id: Option<String>,
    /// Why off-host, when it is.
    pub offhost_reason: Option<OffhostReason>,
    /// With `ip_used_by_other_identity`: the ARN of the non-instance
    /// identity that used the same address (SPEC 3.1, v1.1).
    pub offhost_other_identity: Option<Arc<str>>,
    /// The credential used was issued, directly or further up its chain, by
    /// a call flagged `ec2_cred_offhost` (SPEC 3.1, v1.1).
    pub offhost_ancestor: bool,
    /// On STS issuance events: the credential created.
    pub issued: Option<Issued>,
    /// On calls with a long-term key created by a tracked credential.
    pub created_by: Option<CreatedBy>,
    /// Extra: the credential was used after its observed expiration.
    pub used_after_expiration: bool,
    /// Extra: an `AssumeRole` whose caller is a session of the very role it assumes.
    pub self_assume: bool,
}

/// Writes JSON members with a key prefix (empty for the nested object form).
pub(crate) struct MemberWriter<'o> {
    out: &'o mut Vec<u8>,
    prefix: &'o [u8],
    first: bool,
}

/// Append `s` as a JSON string (quoted, escaped).
pub(crate) fn push_json_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // The common case: nothing to escape, one copy.
    if crate::json::plain_run(bytes, 0) == bytes.len() {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &c) in bytes.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{c:04x}");
        } else {
            out.extend_from_slice(esc);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Append an account number as a quoted, zero-padded 12-digit string.
fn push_account(out: &mut Vec<u8>, a: u64) {
    let mut digits = itoa::Buffer::new();
    let d = digits.format(a).as_bytes();
    out.push(b'"');
    out.extend(std::iter::repeat_n(b'0', 12usize.saturating_sub(d.len())));
    out.extend_from_slice(d);
    out.push(b'"');
}

impl<'o> MemberWriter<'o> {
    pub(crate) fn new(out: &'o mut Vec<u8>, prefix: &'o [u8], first: bool) -> Self {
        MemberWriter { out, prefix, first }
    }
    #[inline(always)]
    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        if !self.prefix.is_empty() {
            self.out.extend_from_slice(self.prefix);
        }
        // Inlined with a literal `k`: a fixed-size copy, not a memcpy call.
        self.out.extend_from_slice(k.as_bytes());
        self.out.extend_from_slice(b"\":");
    }
    #[inline(always)]
    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        push_json_str(self.out, v);
    }
    /// A value known to need no escaping (the enum spellings).
    #[inline(always)]
    fn word(&mut self, k: &str, v: &'static str) {
        self.key(k);
        self.out.push(b'"');
        self.out.extend_from_slice(v.as_bytes());
        self.out.push(b'"');
    }
    #[inline(always)]
    fn opt_str(&mut self, k: &str, v: Option<&str>) {
        if let Some(v) = v {
            self.str(k, v);
        }
    }
    #[inline(always)]
    fn nullable_str(&mut self, k: &str, v: Option<&str>) {
        self.key(k);
        match v {
            Some(v) => push_json_str(self.out, v),
            None => self.out.extend_from_slice(b"null"),
        }
    }
    #[inline(always)]
    fn bool(&mut self, k: &str, v: bool) {
        self.key(k);
        self.out
            .extend_from_slice(if v { b"true" } else { b"false" });
    }
    #[inline(always)]
    fn num(&mut self, k: &str, v: u32) {
        self.key(k);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }
    #[inline(always)]
    fn fp(&mut self, k: &str, v: &Fingerprint) {
        self.key(k);
        self.out.extend_from_slice(b"\"sf1_");
        let mut buf = [0u8; 32];
        // 16 bytes always encode into exactly 32 hex digits.
        if hex::encode_to_slice(v.0, &mut buf).is_ok() {
            self.out.extend_from_slice(&buf);
        }
        self.out.push(b'"');
    }
    #[inline(always)]
    fn nullable_fp(&mut self, k: &str, v: Option<&Fingerprint>) {
        match v {
            Some(v) => self.fp(k, v),
            None => {
                self.key(k);
                self.out.extend_from_slice(b"null");
            }
        }
    }
    #[inline(always)]
    fn open(&mut self, k: &str) {
        self.key(k);
        self.out.push(b'{');
    }
}

impl Annotation {
    /// Write the members of the annotation in the fixed order of SPEC
    /// Appendix A. `prefix` goes before every top-level member name.
    pub(crate) fn write_members(&self, out: &mut Vec<u8>, prefix: &[u8], first: bool) {
        // One reservation for the whole annotation (its members are a few
        // hundred bytes); the pushes below then never reallocate.
        out.reserve(640 + 20 * prefix.len());
        let mut w = MemberWriter::new(out, prefix, first);
        w.key("v");
        w.out.push(b'1');
        w.word("credential_type", self.credential_type.as_str());
        w.opt_str("access_key_id", self.access_key_id.as_deref());
        if let Some(AccountId(a)) = self.key_account {
            w.key("key_account");
            push_account(w.out, a);
        }
        w.nullable_fp("session_fingerprint", self.session_fingerprint.as_ref());
        w.nullable_str("lineage_root", self.lineage_root.as_deref());
        if let Some(t) = self.lineage_root_type {
            w.word("lineage_root_type", t.as_str());
        }
        if let Some(d) = self.lineage_depth {
            w.num("lineage_depth", d);
        }
        if let Some(c) = self.lineage_complete {
            w.bool("lineage_complete", c);
        }
        if let Some(p) = &self.parent_fingerprint {
            w.fp("parent_fingerprint", p);
        }
        w.bool("is_key_collision", self.is_key_collision);
        if let Some(n) = self.collision_count {
            w.num("collision_count", n);
        }
        w.bool("ec2_cred_offhost", self.ec2_cred_offhost);
        w.opt_str("ec2_instance_id", self.ec2_instance_id.as_deref());
        if let Some(r) = self.offhost_reason {
            w.word("offhost_reason", r.as_str());
        }
        w.opt_str(
            "offhost_other_identity",
            self.offhost_other_identity.as_deref(),
        );
        if self.offhost_ancestor {
            w.bool("offhost_ancestor", true);
        }
        if let Some(i) = &self.issued {
            w.open("issued");
            let mut n = MemberWriter::new(w.out, b"", true);
            n.str("access_key_id", &i.access_key_id);
            n.fp("session_fingerprint", &i.session_fingerprint);
            n.str("lineage_root", &i.lineage_root);
            n.num("lineage_depth", i.lineage_depth);
            let exp = i.expiration.map(crate::time::format_iso);
            n.nullable_str("expiration", exp.as_deref());
            n.bool("chained", i.chained);
            w.out.push(b'}');
        }
        if let Some(c) = &self.created_by {
            w.open("created_by");
            let mut n = MemberWriter::new(w.out, b"", true);
            n.fp("session_fingerprint", &c.session_fingerprint);
            n.str("lineage_root", &c.lineage_root);
            w.out.push(b'}');
        }
        if self.used_after_expiration {
            w.bool("used_after_expiration", true);
        }
        if self.self_assume {
            w.bool("self_assume", true);
        }
    }

    /// The annotation as a JSON object, keys in the fixed order.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.push(b'{');
        self.write_members(&mut out, b"", true);
        out.push(b'}');
        out
    }
}

#[cfg(test)]
mod tests;
