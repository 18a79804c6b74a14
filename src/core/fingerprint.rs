//! Session fingerprints (`sf1_…`): a versioned SHA-256 encoding of what identifies one credential set (SPEC 3.3).
//!
//! Encoding, version 1 (all fields UTF-8, `\0` separated, no trailing separator):
//!
//! * temporary credential set: `credlineage/sf1\0T\0<access key id>\0<session principal ARN>\0<issue time, unix seconds, decimal, or `-` when unknown>`
//! * long-term key: `credlineage/sf1\0L\0<access key id>\0<account id>`
//!
//! The fingerprint is `sf1_` followed by the first 16 bytes of the SHA-256 of
//! that byte string, as 32 lowercase hex digits. No session token or secret is
//! ever part of the input.

use sha2::{Digest, Sha256};

/// A 128-bit fingerprint of one credential set.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Fingerprint(pub [u8; 16]);

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

impl std::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sf1_")?;
        f.write_str(&hex::encode(self.0))
    }
}

const DOMAIN: &[u8] = b"credlineage/sf1\0";

fn finish(h: Sha256) -> Fingerprint {
    let d = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    Fingerprint(out)
}

/// Fingerprint of a temporary credential set: key ID, session principal ARN, issue time.
/// An unknown issue time (a call with no `creationDate` and no observed
/// issuance) is encoded as `-`.
pub fn temporary(key: &str, arn: &str, issued: Option<i64>) -> Fingerprint {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update(b"T\0");
    h.update(key.as_bytes());
    h.update(b"\0");
    h.update(arn.as_bytes());
    h.update(b"\0");
    match issued {
        Some(t) => h.update(itoa::Buffer::new().format(t).as_bytes()),
        None => h.update(b"-"),
    }
    finish(h)
}

/// Fingerprint of a long-term key: key ID and account.
pub fn long_term(key: &str, account: &str) -> Fingerprint {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update(b"L\0");
    h.update(key.as_bytes());
    h.update(b"\0");
    h.update(account.as_bytes());
    finish(h)
}

/// A small direct-mapped memo of [`long_term`]: a long-term key calls again
/// and again, and its fingerprint never changes. Entries are compared
/// exactly (key and account), so a hit is always the right fingerprint;
/// fixed size, no allocation for 20-character key IDs and 12-digit accounts.
#[derive(Debug, Clone)]
pub(crate) struct LongTermMemo {
    slots: Vec<Option<(crate::keyid::KeyId, crate::keyid::KeyId, Fingerprint)>>,
}

const MEMO_SLOTS: usize = 256;

impl Default for LongTermMemo {
    fn default() -> Self {
        LongTermMemo {
            slots: vec![None; MEMO_SLOTS],
        }
    }
}

impl LongTermMemo {
    /// `long_term(key, account)`, computed at most once per slot occupancy.
    pub(crate) fn get(&mut self, key: &str, account: &str) -> Fingerprint {
        let i = (crate::keyid::key_hash(key) as usize) % MEMO_SLOTS;
        if let Some(Some((k, a, fp))) = self.slots.get(i) {
            if k.as_bytes() == key.as_bytes() && a.as_bytes() == account.as_bytes() {
                return *fp;
            }
        }
        let fp = long_term(key, account);
        if let Some(slot) = self.slots.get_mut(i) {
            *slot = Some((
                crate::keyid::KeyId::new(key),
                crate::keyid::KeyId::new(account),
                fp,
            ));
        }
        fp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_separation() {
        let a = temporary("ASIAX", "arn:aws:sts::1:assumed-role/r/s", Some(100));
        let b = temporary("ASIAX", "arn:aws:sts::1:assumed-role/r/t", Some(100));
        let c = temporary("ASIAX", "arn:aws:sts::1:assumed-role/r/s", Some(101));
        assert_ne!(a, b);
        assert_ne!(a, c);
        let s = a.to_string();
        assert!(s.starts_with("sf1_"));
        assert_eq!(s.len(), 36);
        assert!(
            s[4..]
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        // the memo gives the same answers, whatever collides in it
        let mut m = LongTermMemo::default();
        for i in 0..2000 {
            let (k, a) = (format!("AKIA{i:016}"), format!("{:012}", i % 7));
            assert_eq!(m.get(&k, &a), long_term(&k, &a));
            assert_eq!(m.get(&k, &a), long_term(&k, &a));
            assert_eq!(m.get(&k, "other"), long_term(&k, "other"));
        }
        // the separator keeps field boundaries: ("AB","C") != ("A","BC")
        assert_ne!(long_term("AB", "C"), long_term("A", "BC"));
        // pinned against an independent implementation (Python hashlib): the
        // encoding is a contract; changing it needs a new version prefix.
        assert_eq!(
            long_term("AKIA6V1GNZTT65XQH36M", "742491224508").to_string(),
            "sf1_a265f9f236c1c745cc68f20da2ffd236"
        );
        assert_eq!(
            temporary(
                "ASIASTJKC5GCM7ZE6LUP",
                "arn:aws:sts::742491224508:federated-user/stratus_red_team",
                Some(1732956197)
            )
            .to_string(),
            "sf1_5b1aa366c992b680857ed12b7d877126"
        );
    }
}
