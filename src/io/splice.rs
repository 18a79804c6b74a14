//! Byte-level output assembly: the input record's bytes, minus any stale copy of our own key(s), plus the annotation spliced before the closing brace.
//!
//! Only called on input that `crate::json` has already validated as one JSON
//! object, so the scanner here can stay small; it still never indexes out of
//! bounds, whatever it is given.

use crate::json::skip_ws;

/// The byte span of one top-level member: `key_start` is the opening quote of
/// its key, `value_end` is one past the last byte of its value.
#[derive(Debug, Clone, Copy)]
struct Member {
    key_start: usize,
    value_end: usize,
    own: bool,
}

/// Index one past the closing quote of the string starting at `i` (a quote).
fn skip_string(b: &[u8], mut i: usize) -> usize {
    i += 1;
    while let Some(&c) = b.get(i) {
        match c {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// Index one past the value starting at `i`.
fn skip_value(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(b'"') => skip_string(b, i),
        Some(b'{') | Some(b'[') => {
            let mut depth = 0usize;
            let mut j = i;
            while let Some(&c) = b.get(j) {
                match c {
                    b'"' => {
                        j = skip_string(b, j);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            b.len()
        }
        _ => {
            let mut j = i;
            while let Some(c) = b.get(j) {
                if matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                    break;
                }
                j += 1;
            }
            j
        }
    }
}

/// Scan the top-level members of a validated JSON object.
fn members(b: &[u8], is_own: &dyn Fn(&str) -> bool) -> Vec<Member> {
    let mut out = Vec::new();
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return out;
    }
    i += 1;
    loop {
        i = skip_ws(b, i);
        match b.get(i) {
            Some(b'"') => {}
            _ => return out,
        }
        let key_start = i;
        let key_end = skip_string(b, i);
        let own = b
            .get(key_start..key_end)
            .and_then(|raw| serde_json::from_slice::<String>(raw).ok())
            .is_some_and(|k| is_own(&k));
        i = skip_ws(b, key_end);
        if b.get(i) != Some(&b':') {
            return out;
        }
        i = skip_ws(b, i + 1);
        let value_end = skip_value(b, i);
        out.push(Member {
            key_start,
            value_end,
            own,
        });
        i = skip_ws(b, value_end);
        match b.get(i) {
            Some(b',') => i += 1,
            _ => return out,
        }
    }
}

/// Copy `record` into `out` without its top-level members whose key satisfies
/// `is_own`, leaving every other byte as it was. Returns whether any member remains.
fn copy_without_own(record: &[u8], is_own: &dyn Fn(&str) -> bool, out: &mut Vec<u8>) -> bool {
    let ms = members(record, is_own);
    let Some(first_kept) = ms.iter().position(|m| !m.own) else {
        // Nothing kept: `{` … `}` with the members cut out.
        match (ms.first(), ms.last()) {
            (Some(f), Some(l)) => {
                out.extend_from_slice(record.get(..f.key_start).unwrap_or_default());
                out.extend_from_slice(record.get(l.value_end..).unwrap_or_default());
            }
            _ => out.extend_from_slice(record),
        }
        return false;
    };
    let mut cuts: Vec<(usize, usize)> = Vec::new();
    if first_kept > 0 {
        cuts.push((ms[0].key_start, ms[first_kept].key_start));
    }
    for idx in first_kept + 1..ms.len() {
        if ms[idx].own {
            cuts.push((ms[idx - 1].value_end, ms[idx].value_end));
        }
    }
    let mut pos = 0;
    for (a, b) in cuts {
        out.extend_from_slice(record.get(pos..a).unwrap_or_default());
        pos = b;
    }
    out.extend_from_slice(record.get(pos..).unwrap_or_default());
    true
}

/// Write `record` (a validated JSON object whose closing brace is at byte
/// `close`, with `members` top-level members) with the members produced by
/// `write_members` added as its last members. Members whose key satisfies
/// `is_own` are removed first when `has_own` says there are any.
pub(crate) fn splice(
    record: &[u8],
    close: usize,
    members: usize,
    has_own: bool,
    is_own: &dyn Fn(&str) -> bool,
    out: &mut Vec<u8>,
    write_members: &dyn Fn(&mut Vec<u8>, bool),
) {
    if !has_own {
        // The common case: no rescan, no copy but the output itself.
        if record.get(close) == Some(&b'}') {
            out.extend_from_slice(&record[..close]);
            write_members(out, members == 0);
            out.extend_from_slice(&record[close..]);
        } else {
            out.extend_from_slice(record);
        }
        return;
    }
    let start = out.len();
    let non_empty = copy_without_own(record, is_own, out);
    // Remove trailing whitespace after the closing brace, then the brace itself.
    let body_end = out[start..]
        .iter()
        .rposition(|&c| c == b'}')
        .map(|p| start + p);
    let Some(close) = body_end else {
        // Not an object after all: leave the input as it was.
        out.truncate(start);
        out.extend_from_slice(record);
        return;
    };
    let tail: Vec<u8> = out[close..].to_vec();
    out.truncate(close);
    write_members(out, !non_empty);
    out.extend_from_slice(&tail);
}

/// Turn a multi-line record into one line by dropping whitespace outside
/// strings (raw line breaks can only be insignificant whitespace in valid JSON).
pub fn to_single_line(record: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if memchr::memchr2(b'\n', b'\r', record).is_none() {
        return std::borrow::Cow::Borrowed(record);
    }
    let mut out = Vec::with_capacity(record.len());
    let mut i = 0;
    while let Some(&c) = record.get(i) {
        match c {
            b'"' => {
                let e = skip_string(record, i);
                out.extend_from_slice(record.get(i..e).unwrap_or_default());
                i = e;
                continue;
            }
            b' ' | b'\t' | b'\n' | b'\r' => {}
            _ => out.push(c),
        }
        i += 1;
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(rec: &str, own: &[&str]) -> String {
        let own: Vec<String> = own.iter().map(|s| s.to_string()).collect();
        let is_own = |k: &str| own.iter().any(|o| o == k);
        let mut out = Vec::new();
        let has = !own.is_empty();
        // Where the scanner would put the closing brace and member count.
        // The tests name at most one own key.
        let keys = crate::record::TopKeys::new(
            &[],
            crate::record::OwnKeys::Nested(own.first().cloned().unwrap_or_default()),
        );
        let (close, members) = match crate::record::parse_outer(rec.as_bytes(), &keys) {
            Ok(Some(o)) => (o.close, o.members),
            _ => (rec.len(), 0),
        };
        splice(
            rec.as_bytes(),
            close,
            members,
            has,
            &is_own,
            &mut out,
            &|o, first| {
                if !first {
                    o.push(b',');
                }
                o.extend_from_slice(br#""x":1"#);
            },
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn appends() {
        assert_eq!(run(r#"{"a":1}"#, &[]), r#"{"a":1,"x":1}"#);
        assert_eq!(run(r#"{"a":1} "#, &[]), r#"{"a":1,"x":1} "#);
        assert_eq!(run(r#"{ }"#, &[]), r#"{ "x":1}"#);
        assert_eq!(run(r#"{"a":"}"}"#, &[]), r#"{"a":"}","x":1}"#);
    }

    #[test]
    fn replaces_own() {
        assert_eq!(run(r#"{"x":0,"a":1}"#, &["x"]), r#"{"a":1,"x":1}"#);
        assert_eq!(
            run(r#"{"a":1, "x":{"y":"}"} ,"b":2}"#, &["x"]),
            r#"{"a":1 ,"b":2,"x":1}"#
        );
        assert_eq!(run(r#"{"x":0,"x":[1]}"#, &["x"]), r#"{"x":1}"#);
        assert_eq!(run(r#"{"a":1,"x":0,"x":2}"#, &["x"]), r#"{"a":1,"x":1}"#);
        assert_eq!(run(r#"{"\u0078":0,"a":1}"#, &["x"]), r#"{"a":1,"x":1}"#);
    }

    #[test]
    fn single_line() {
        assert_eq!(
            to_single_line(b"{\n  \"a\": \"b c\",\n  \"d\": [1, 2]\n}").as_ref(),
            br#"{"a":"b c","d":[1,2]}"#
        );
        assert_eq!(to_single_line(br#"{"a": 1}"#).as_ref(), br#"{"a": 1}"#);
    }

    #[test]
    fn garbage_never_panics() {
        for g in [
            "", "}", "{", "{\"", "{\"a\"", "{\"a\":", "\"\\", "{\"a\":[", "x}",
        ] {
            let _ = run(g, &["a"]);
            let _ = run(g, &[]);
            let _ = to_single_line(g.as_bytes());
        }
    }
}
