//! Splitting input documents into records: NDJSON lines, JSON arrays and S3 delivery files (`{"Records": [...]}`); pure, no I/O.

use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// One record cut out of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece<'a> {
    /// The record's bytes, on one line (multi-line records are compacted:
    /// whitespace outside strings dropped, nothing else changed).
    pub bytes: Cow<'a, [u8]>,
    /// One-based line of the document where the record starts.
    pub line: u64,
}

#[derive(Deserialize)]
struct RecordsDoc<'a> {
    #[serde(rename = "Records", borrow)]
    records: Option<Vec<&'a RawValue>>,
}

fn is_ws(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r')
}

fn trim(b: &[u8]) -> &[u8] {
    let s = b.iter().position(|&c| !is_ws(c)).unwrap_or(b.len());
    let e = b.iter().rposition(|&c| !is_ws(c)).map_or(s, |p| p + 1);
    &b[s..e.max(s)]
}

fn line_of(doc: &[u8], sub: &[u8]) -> u64 {
    let off = (sub.as_ptr() as usize).saturating_sub(doc.as_ptr() as usize);
    1 + doc
        .get(..off.min(doc.len()))
        .map_or(0, |p| p.iter().filter(|&&c| c == b'\n').count() as u64)
}

/// Unroll a whole JSON document when it is an array or an S3 delivery file.
fn unroll<'a>(doc: &'a [u8], body: &'a [u8]) -> Option<Vec<Piece<'a>>> {
    let raws: Vec<&RawValue> = match body.first() {
        Some(b'[') => serde_json::from_slice(body).ok()?,
        Some(b'{')
            if body.starts_with(b"{\"Records\"")
                || body.windows(9).take(64).any(|w| w == b"\"Records\"") =>
        {
            serde_json::from_slice::<RecordsDoc>(body).ok()?.records?
        }
        _ => return None,
    };
    Some(
        raws.into_iter()
            .map(|r| Piece {
                bytes: crate::to_single_line(r.get().as_bytes()),
                line: line_of(doc, r.get().as_bytes()),
            })
            .collect(),
    )
}

/// Cut a document into records. A document that is one JSON array, or an S3
/// delivery file, gives one record per element; a document that is one JSON
/// value (even spread over several lines) gives one record; anything else is
/// read as NDJSON, one record per non-blank line (a line that is itself an S3
/// delivery file is unrolled). Invalid lines are kept as records so they can
/// be passed through.
pub fn split(doc: &[u8]) -> Vec<Piece<'_>> {
    let body = trim(doc);
    if body.is_empty() {
        return Vec::new();
    }
    if let Some(p) = unroll(doc, body) {
        return p;
    }
    if matches!(body.first(), Some(b'{'))
        && body.contains(&b'\n')
        && serde_json::from_slice::<&RawValue>(body).is_ok()
    {
        return vec![Piece {
            bytes: crate::to_single_line(body),
            line: line_of(doc, body),
        }];
    }
    let mut out = Vec::new();
    let mut from = 0;
    let ends = memchr::memchr_iter(b'\n', doc).chain(std::iter::once(doc.len()));
    for (i, end) in ends.enumerate() {
        let line = &doc[from..end];
        from = end + 1;
        let l = trim(line);
        if l.is_empty() {
            continue;
        }
        if l.starts_with(b"{\"Records\"") {
            if let Some(p) = unroll(doc, l) {
                out.extend(p);
                continue;
            }
        }
        let l = line.strip_suffix(b"\r").unwrap_or(line);
        out.push(Piece {
            bytes: Cow::Borrowed(l),
            line: i as u64 + 1,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(doc: &str) -> Vec<(String, u64)> {
        split(doc.as_bytes())
            .into_iter()
            .map(|p| (String::from_utf8_lossy(&p.bytes).into_owned(), p.line))
            .collect()
    }

    #[test]
    fn shapes() {
        assert_eq!(
            texts("{\"a\":1}\n\n{\"b\":2}\r\n"),
            vec![("{\"a\":1}".into(), 1), ("{\"b\":2}".into(), 3)]
        );
        assert_eq!(
            texts("{\"Records\":[{\"a\":1},\n {\"b\": 2}]}"),
            vec![("{\"a\":1}".into(), 1), ("{\"b\": 2}".into(), 2)]
        );
        assert_eq!(
            texts("[\n {\n  \"a\": 1\n }\n]"),
            vec![("{\"a\":1}".into(), 2)]
        );
        assert_eq!(texts("{\n\"a\": 1\n}"), vec![("{\"a\":1}".into(), 1)]);
        assert_eq!(
            texts("not json\n{\"a\":1}"),
            vec![("not json".into(), 1), ("{\"a\":1}".into(), 2)]
        );
        assert_eq!(
            texts("{\"Records\":[{\"a\":1}]}\n{\"b\":1}"),
            vec![("{\"a\":1}".into(), 1), ("{\"b\":1}".into(), 2)]
        );
        assert!(texts("  \n ").is_empty());
        assert_eq!(
            texts("[1,\"x\"]"),
            vec![("1".into(), 1), ("\"x\"".into(), 1)]
        );
        assert_eq!(
            texts("{\"Records\":5}"),
            vec![("{\"Records\":5}".into(), 1)]
        );
    }
}
