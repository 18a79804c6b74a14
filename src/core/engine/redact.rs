//! `redact_session_tokens`: replace every `sessionToken` string value in an output record with `"<redacted>"`, also inside records held as JSON strings.

/// Replace every `"sessionToken":"…"` string value in `out[start..]` with
/// `"<redacted>"`, also inside records held as JSON strings (where the same
/// text appears escaped: `\"sessionToken\":\"…\"`).
pub(super) fn redact_tokens(out: &mut Vec<u8>, start: usize) {
    redact_plain(out, start);
    redact_escaped(out, start);
}

fn redact_escaped(out: &mut Vec<u8>, start: usize) {
    const NEEDLE: &[u8] = br#"\"sessionToken\""#;
    let mut i = start;
    while let Some(pos) = out
        .get(i..)
        .and_then(|s| s.windows(NEEDLE.len()).position(|w| w == NEEDLE))
    {
        let mut j = i + pos + NEEDLE.len();
        while matches!(out.get(j), Some(b' ')) {
            j += 1;
        }
        if out.get(j) != Some(&b':') {
            i = j;
            continue;
        }
        j += 1;
        while matches!(out.get(j), Some(b' ')) {
            j += 1;
        }
        if out.get(j..j + 2) != Some(br#"\""#.as_slice()) {
            i = j;
            continue;
        }
        // The escaped value ends at the next `\"` (a token holds no backslash).
        let body = j + 2;
        let Some(len) = out
            .get(body..)
            .and_then(|s| s.windows(2).position(|w| w == br#"\""#))
        else {
            return;
        };
        let end = body + len + 2;
        out.splice(j..end, br#"\"<redacted>\""#.iter().copied());
        i = j + 14;
    }
}

fn redact_plain(out: &mut Vec<u8>, start: usize) {
    const NEEDLE: &[u8] = b"\"sessionToken\"";
    let mut i = start;
    while let Some(pos) = out
        .get(i..)
        .and_then(|s| s.windows(NEEDLE.len()).position(|w| w == NEEDLE))
    {
        let mut j = i + pos + NEEDLE.len();
        while matches!(out.get(j), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            j += 1;
        }
        if out.get(j) != Some(&b':') {
            i = j;
            continue;
        }
        j += 1;
        while matches!(out.get(j), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            j += 1;
        }
        if out.get(j) != Some(&b'"') {
            i = j;
            continue;
        }
        let mut k = j + 1;
        while let Some(&c) = out.get(k) {
            match c {
                b'\\' => k += 2,
                b'"' => break,
                _ => k += 1,
            }
        }
        let end = (k + 1).min(out.len());
        out.splice(j..end, b"\"<redacted>\"".iter().copied());
        i = j + 12;
    }
}
