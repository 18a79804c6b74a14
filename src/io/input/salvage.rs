//! What survives damage in a document: the UTF-8 prefix, a scannable copy of invalid UTF-8 at the same offsets, and the end of a damaged array element whose brackets balance.

use super::*;

/// The longest prefix of `doc` that is UTF-8, as text.
pub(super) fn utf8_prefix(doc: &[u8]) -> &str {
    match simdutf8::compat::from_utf8(doc) {
        Ok(t) => t,
        Err(e) => std::str::from_utf8(doc.get(..e.valid_up_to()).unwrap_or_default()).unwrap_or(""),
    }
}

/// `doc` as text for the scanner: itself when it is UTF-8, else a copy of
/// the same length whose invalid bytes are `0x01` (which JSON allows
/// nowhere, so the scanner stops at the same offsets).
pub(super) fn scannable(doc: &[u8]) -> Cow<'_, str> {
    if let Ok(t) = simdutf8::basic::from_utf8(doc) {
        return Cow::Borrowed(t);
    }
    let mut out = Vec::with_capacity(doc.len());
    let mut rest = doc;
    loop {
        match simdutf8::compat::from_utf8(rest) {
            Ok(_) => {
                out.extend_from_slice(rest);
                break;
            }
            Err(e) => {
                let good = e.valid_up_to();
                let bad = e.error_len().unwrap_or(rest.len() - good);
                out.extend_from_slice(rest.get(..good).unwrap_or_default());
                out.resize(out.len() + bad, 0x01);
                rest = rest.get(good + bad..).unwrap_or_default();
            }
        }
    }
    Cow::Owned(String::from_utf8(out).unwrap_or_default())
}

/// The end (exclusive) of the damaged array element that starts at `from`,
/// found by counting brackets outside strings, if what follows it is `]` or
/// `,` and the start of a value. `None` when the element does not start with
/// a bracket, a string holds a raw line break (a lost quote), or the
/// brackets never balance: the damage is then not confined to the element.
/// Visits each byte of the element once.
pub(super) fn element_end(b: &[u8], from: usize) -> Option<usize> {
    if !matches!(b.get(from), Some(b'{' | b'[')) {
        return None;
    }
    let (mut depth, mut in_str, mut esc) = (0usize, false, false);
    let mut i = from;
    let end = loop {
        let c = *b.get(i)?;
        if in_str {
            if esc {
                esc = false;
            } else if c == b'\\' {
                esc = true;
            } else if c == b'"' {
                in_str = false;
            } else if c == b'\n' {
                return None;
            }
        } else {
            match c {
                b'"' => in_str = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        break i + 1;
                    }
                }
                _ => {}
            }
        }
        i += 1;
    };
    let next = |at: usize| {
        b.get(at..)
            .and_then(|r| r.iter().position(|&c| !is_ws(c)).map(|p| at + p))
    };
    let after = next(end)?;
    match b.get(after) {
        Some(b']') => Some(end),
        Some(b',') => match next(after + 1).and_then(|v| b.get(v)) {
            Some(b'{' | b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => Some(end),
            _ => None,
        },
        _ => None,
    }
}

pub(super) fn invalid_utf8(doc: &[u8], at: usize) -> String {
    match doc.get(at) {
        Some(b) => format!("invalid UTF-8 (byte 0x{b:02x})"),
        None => "invalid UTF-8".to_string(),
    }
}
