//! Batch mode's compact binary form of an annotation: `Annotation::pack` writes it while the rules run, `Annotation::unpack` reads it back when the output is written.

use super::{AccountId, Annotation, CreatedBy, CredentialType, Issued, OffhostReason, RootType};
use crate::fingerprint::Fingerprint;
use std::sync::Arc;

/// The variants of each enum in the order of their number in
/// [`Annotation::pack`].
const CREDENTIAL_TYPES: [CredentialType; 4] = [
    CredentialType::LongTerm,
    CredentialType::Temporary,
    CredentialType::None,
    CredentialType::Unknown,
];
const ROOT_TYPES: [RootType; 8] = [
    RootType::AccessKey,
    RootType::RootUser,
    RootType::IamUserSession,
    RootType::Ec2Instance,
    RootType::AwsService,
    RootType::Saml,
    RootType::WebIdentity,
    RootType::Unresolved,
];
const OFFHOST_REASONS: [OffhostReason; 4] = [
    OffhostReason::NewIpForInstance,
    OffhostReason::IpUsedByOtherIdentity,
    OffhostReason::OutsideAws,
    OffhostReason::ForeignVpcEndpoint,
];

fn index_of<T: PartialEq>(all: &[T], v: &T) -> u8 {
    all.iter().position(|x| x == v).unwrap_or(0) as u8
}

/// A cursor over a packed annotation.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Option<u8> {
        let c = *self.b.get(self.i)?;
        self.i += 1;
        Some(c)
    }
    fn varint(&mut self) -> Option<u64> {
        crate::record::get_varint(self.b, &mut self.i)
    }
    fn u32(&mut self) -> Option<u32> {
        u32::try_from(self.varint()?).ok()
    }
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.i..self.i.checked_add(n)?)?;
        self.i += n;
        Some(s)
    }
    fn str(&mut self) -> Option<&'a str> {
        let n = usize::try_from(self.varint()?).ok()?;
        std::str::from_utf8(self.bytes(n)?).ok()
    }
    fn fp(&mut self) -> Option<Fingerprint> {
        Some(Fingerprint(self.bytes(16)?.try_into().ok()?))
    }
    fn pick<T: Copy>(&mut self, all: &[T]) -> Option<T> {
        all.get(usize::from(self.byte()?)).copied()
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    crate::record::put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}
impl Annotation {
    /// A compact binary form of the annotation, read back by
    /// [`unpack`](Self::unpack): batch mode keeps each record's annotation
    /// so until the output is written (a third of the JSON's size). Not a
    /// stable format: it never outlives the run that wrote it.
    pub fn pack(&self, out: &mut Vec<u8>) {
        let bits = [
            self.access_key_id.is_some(),
            self.key_account.is_some(),
            self.session_fingerprint.is_some(),
            self.lineage_root.is_some(),
            self.lineage_root_type.is_some(),
            self.lineage_depth.is_some(),
            self.lineage_complete.is_some(),
            self.lineage_complete == Some(true),
            self.parent_fingerprint.is_some(),
            self.is_key_collision,
            self.collision_count.is_some(),
            self.ec2_cred_offhost,
            self.ec2_instance_id.is_some(),
            self.offhost_reason.is_some(),
            self.offhost_other_identity.is_some(),
            self.offhost_ancestor,
            self.issued.is_some(),
            self.created_by.is_some(),
            self.used_after_expiration,
            self.self_assume,
            self.issued.as_ref().is_some_and(|i| i.expiration.is_some()),
            self.issued.as_ref().is_some_and(|i| i.chained),
        ];
        let flags = bits
            .iter()
            .enumerate()
            .fold(0u64, |f, (i, &b)| f | (u64::from(b) << i));
        crate::record::put_varint(out, flags);
        out.push(index_of(&CREDENTIAL_TYPES, &self.credential_type));
        if let Some(k) = &self.access_key_id {
            put_str(out, k);
        }
        if let Some(a) = self.key_account {
            crate::record::put_varint(out, a.0);
        }
        if let Some(fp) = self.session_fingerprint {
            out.extend_from_slice(&fp.0);
        }
        if let Some(r) = &self.lineage_root {
            put_str(out, r);
        }
        if let Some(t) = self.lineage_root_type {
            out.push(index_of(&ROOT_TYPES, &t));
        }
        if let Some(d) = self.lineage_depth {
            crate::record::put_varint(out, u64::from(d));
        }
        if let Some(fp) = self.parent_fingerprint {
            out.extend_from_slice(&fp.0);
        }
        if let Some(c) = self.collision_count {
            crate::record::put_varint(out, u64::from(c));
        }
        if let Some(id) = &self.ec2_instance_id {
            put_str(out, id);
        }
        if let Some(r) = self.offhost_reason {
            out.push(index_of(&OFFHOST_REASONS, &r));
        }
        if let Some(w) = &self.offhost_other_identity {
            put_str(out, w);
        }
        if let Some(i) = &self.issued {
            put_str(out, &i.access_key_id);
            out.extend_from_slice(&i.session_fingerprint.0);
            put_str(out, &i.lineage_root);
            crate::record::put_varint(out, u64::from(i.lineage_depth));
            if let Some(e) = i.expiration {
                out.extend_from_slice(&e.to_le_bytes());
            }
        }
        if let Some(c) = &self.created_by {
            out.extend_from_slice(&c.session_fingerprint.0);
            put_str(out, &c.lineage_root);
        }
    }

    /// Read back what [`pack`](Self::pack) wrote (`None` when `b` is not that).
    pub fn unpack(b: &[u8]) -> Option<Annotation> {
        let mut c = Cursor { b, i: 0 };
        let flags = c.varint()?;
        let on = |i: u32| flags & (1 << i) != 0;
        let credential_type = c.pick(&CREDENTIAL_TYPES)?;
        let access_key_id = if on(0) {
            Some(c.str()?.to_string())
        } else {
            None
        };
        let key_account = if on(1) {
            Some(AccountId(c.varint()?))
        } else {
            None
        };
        let session_fingerprint = if on(2) { Some(c.fp()?) } else { None };
        let lineage_root = if on(3) {
            Some(Arc::from(c.str()?))
        } else {
            None
        };
        let lineage_root_type = if on(4) {
            Some(c.pick(&ROOT_TYPES)?)
        } else {
            None
        };
        let lineage_depth = if on(5) { Some(c.u32()?) } else { None };
        let lineage_complete = on(6).then_some(on(7));
        let parent_fingerprint = if on(8) { Some(c.fp()?) } else { None };
        let collision_count = if on(10) { Some(c.u32()?) } else { None };
        let ec2_instance_id = if on(12) {
            Some(c.str()?.to_string())
        } else {
            None
        };
        let offhost_reason = if on(13) {
            Some(c.pick(&OFFHOST_REASONS)?)
        } else {
            None
        };
        let offhost_other_identity = if on(14) {
            Some(Arc::from(c.str()?))
        } else {
            None
        };
        let issued = if on(16) {
            Some(Issued {
                access_key_id: c.str()?.to_string(),
                session_fingerprint: c.fp()?,
                lineage_root: Arc::from(c.str()?),
                lineage_depth: c.u32()?,
                expiration: if on(20) {
                    Some(i64::from_le_bytes(c.bytes(8)?.try_into().ok()?))
                } else {
                    None
                },
                chained: on(21),
            })
        } else {
            None
        };
        let created_by = if on(17) {
            Some(CreatedBy {
                session_fingerprint: c.fp()?,
                lineage_root: Arc::from(c.str()?),
            })
        } else {
            None
        };
        (c.i == b.len()).then_some(Annotation {
            credential_type,
            access_key_id,
            key_account,
            session_fingerprint,
            lineage_root,
            lineage_root_type,
            lineage_depth,
            lineage_complete,
            parent_fingerprint,
            is_key_collision: on(9),
            collision_count,
            ec2_cred_offhost: on(11),
            ec2_instance_id,
            offhost_reason,
            offhost_other_identity,
            offhost_ancestor: on(15),
            issued,
            created_by,
            used_after_expiration: on(18),
            self_assume: on(19),
        })
    }
}
