//! What an access key ID says by itself — its kind (`AKIA`/`ASIA`) and, for new-format IDs, the AWS account (SPEC 3.6) — and how the state stores and hashes one.

use serde::{Deserialize, Serialize};

/// A 12-digit AWS account ID decoded from an access key ID (SPEC 3.6): kept
/// as its number, written zero-padded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountId(pub u64);

impl std::fmt::Display for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:012}", self.0)
    }
}

impl Serialize for AccountId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        s.parse()
            .map(AccountId)
            .map_err(|_| serde::de::Error::custom("an account ID is 12 digits"))
    }
}

/// The kind of credential an access key ID belongs to, from its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// `AKIA…`: an IAM user's or the root user's long-term key.
    LongTerm,
    /// `ASIA…`: temporary credentials issued by STS or an AWS service.
    Temporary,
    /// Any other prefix.
    Unknown,
}

/// Classify an access key ID by its 4-character prefix.
pub fn kind(key: &str) -> KeyKind {
    match key.get(..4) {
        Some("AKIA") => KeyKind::LongTerm,
        Some("ASIA") => KeyKind::Temporary,
        _ => KeyKind::Unknown,
    }
}

/// Base32 (RFC 4648 alphabet) digit values; 0xff marks bytes outside it.
const B32: [u8; 256] = {
    let mut t = [0xff; 256];
    let mut i = 0;
    while i < 26 {
        t[b'A' as usize + i] = i as u8;
        i += 1;
    }
    let mut d = 0;
    while d < 6 {
        t[b'2' as usize + d] = 26 + d as u8;
        d += 1;
    }
    t
};

fn b32(c: u8) -> Option<u64> {
    match B32[usize::from(c)] {
        0xff => None,
        v => Some(u64::from(v)),
    }
}

/// Decode the account ID from a new-format access key ID (5th character in
/// `Q–Z` or `2–7`), zero-padded to 12 digits. Older IDs (`AKIAI…`, `AKIAJ…`)
/// and IDs with characters outside base32 are not decodable.
pub fn account(key: &str) -> Option<String> {
    account_id(key).map(|a| a.to_string())
}

/// [`account`] as a number.
pub fn account_id(key: &str) -> Option<AccountId> {
    let b = key.as_bytes();
    let first = *b.get(4)?;
    if !(matches!(first, b'Q'..=b'Z' | b'2'..=b'7')) {
        return None;
    }
    // 6 bytes = 48 bits need 10 base32 characters (50 bits); every character of
    // the ID's tail must still be base32 for the ID to be well formed.
    let tail = b.get(4..)?;
    if tail.len() < 10 || tail.iter().any(|&c| b32(c).is_none()) {
        return None;
    }
    let mut bits: u64 = 0;
    for &c in tail.get(..10)? {
        bits = (bits << 5) | b32(c)?;
    }
    let z = bits >> 2; // 50 bits read, keep the first 48
    let acct = (z & 0x7fff_ffff_ff80) >> 7;
    Some(AccountId(acct))
}

/// An access key ID, stored inline when short (all real IDs are 20 characters).
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum KeyId {
    Inline { len: u8, buf: [u8; 22] },
    Heap(Box<str>),
}

impl KeyId {
    pub fn new(s: &str) -> KeyId {
        let b = s.as_bytes();
        if b.len() <= 22 {
            let mut buf = [0u8; 22];
            buf[..b.len()].copy_from_slice(b);
            KeyId::Inline {
                len: b.len() as u8,
                buf,
            }
        } else {
            KeyId::Heap(s.into())
        }
    }
    /// The key's bytes (what the hot paths compare and hash: no UTF-8 re-check).
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            KeyId::Inline { len, buf } => buf.get(..usize::from(*len)).unwrap_or(&[]),
            KeyId::Heap(s) => s.as_bytes(),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            // Built from a &str cut at its own length: always valid UTF-8.
            KeyId::Inline { len, buf } => {
                std::str::from_utf8(&buf[..usize::from(*len)]).unwrap_or("")
            }
            KeyId::Heap(s) => s,
        }
    }
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            KeyId::Inline { .. } => 0,
            KeyId::Heap(s) => s.len() + 16,
        }
    }
}

impl std::fmt::Debug for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
        Ok(KeyId::new(&s))
    }
}

/// A portable 64-bit hash of a key ID, for the key index.
pub(crate) fn key_hash(key: &str) -> u64 {
    key_hash_bytes(key.as_bytes())
}

/// [`key_hash`] of a key's bytes.
pub(crate) fn key_hash_bytes(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_table_is_the_alphabet() {
        for c in 0..=255u8 {
            let want = match c {
                b'A'..=b'Z' => Some(u64::from(c - b'A')),
                b'2'..=b'7' => Some(u64::from(c - b'2') + 26),
                _ => None,
            };
            assert_eq!(b32(c), want, "{c:#x}");
        }
    }

    #[test]
    fn spec_vectors() {
        assert_eq!(
            account("ASIAY34FZKBOKMUTVV7A").as_deref(),
            Some("609629065308")
        );
        assert_eq!(
            account("ASIAQNZGKIQY56JQ7WML").as_deref(),
            Some("029608264753")
        );
        assert_eq!(
            account("AKIASP2TPHJSQH3FJXYZ").as_deref(),
            Some("171436882533")
        );
        assert_eq!(
            account("ASIASTJKC5GCM7ZE6LUP").as_deref(),
            Some("178866284932")
        );
    }

    #[test]
    fn not_decodable() {
        assert_eq!(account("AKIAIOSFODNN7EXAMPLE"), None);
        assert_eq!(account("AKIAJ7EXAMPLEKEYIDXX"), None);
        assert_eq!(account("AKIA6V1GNZTT65XQH36M"), None); // '1' is not base32
        assert_eq!(account("ASIA"), None);
        assert_eq!(account(""), None);
        assert_eq!(account("ASIAQ"), None);
        assert_eq!(account("ASIAÄÄÄÄÄÄÄÄÄÄ"), None);
    }

    #[test]
    fn kinds() {
        assert_eq!(kind("AKIAX"), KeyKind::LongTerm);
        assert_eq!(kind("ASIAX"), KeyKind::Temporary);
        assert_eq!(kind("ABIA"), KeyKind::Unknown);
        assert_eq!(kind("é"), KeyKind::Unknown);
    }
}
