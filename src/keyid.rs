//! What an access key ID says by itself: its kind (`AKIA`/`ASIA`) and, for new-format IDs, the AWS account (SPEC 3.6).

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
pub fn account_id(key: &str) -> Option<crate::annotation::AccountId> {
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
    Some(crate::annotation::AccountId(acct))
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
