//! `credlineage report --format html`: the report as one self-contained page (lineage forest as collapsible trees with the findings marked, search, a timeline per root, sortable collision / off-host / live tables) that reaches no network and never reads a record's string as markup.
//!
//! The page is a fixed template (`html/`: CSS and a small vanilla
//! script, inline) plus the report's data as one JSON block. Every string
//! that comes from a record reaches the page only inside that block, where
//! `<`, `>` and `&` are written as JSON escapes (`\u003c`…), so nothing in it
//! can close the block or open a tag; the script puts strings into the
//! document as text (`textContent`, `createTextNode`), never as markup. A
//! Content-Security-Policy allows only the page's own script and style (by
//! their SHA-256) and no connection, image or frame from anywhere.
//!
//! Size: the block holds each credential once with bounded fields (at most
//! eight source IPs, as in the text report), so the file grows linearly with
//! the credentials. What the browser draws stays bounded whatever the trail:
//! roots are paged, an expanded credential shows its first children with a
//! "more" button, tables show their first rows, search opens the paths of
//! its first hits, a timeline draws its first lanes (limits in `report.js`).

use super::{Collision, Credential, Live, Offhost, ReportOut, Totals};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::{self, Write};

const CSS: &str = include_str!("html/report.css");
const JS: &str = include_str!("html/report.js");

/// One root, as the page's data holds it (short keys: the block is the bulk of the file).
#[derive(Serialize)]
struct Root<'a> {
    /// `lineage_root`
    n: &'a str,
    /// `lineage_root_type`
    t: Option<&'a str>,
    /// events, keyless events
    e: u64,
    kl: u64,
    fs: Option<&'a str>,
    ls: Option<&'a str>,
}

/// One credential, flattened: `r` its root, `p` its issuer (an earlier
/// entry) or -1. Entries are in tree order, parents before children.
#[derive(Serialize)]
struct Node<'a> {
    r: usize,
    p: i64,
    k: Option<&'a str>,
    f: &'a str,
    a: Option<&'a str>,
    ty: Option<&'a str>,
    d: Option<u64>,
    c: Option<bool>,
    /// The issuing STS call's name and time (from `issued_by`).
    by: Option<&'a str>,
    it: Option<&'a str>,
    x: Option<&'a str>,
    n: u64,
    fs: Option<&'a str>,
    ls: Option<&'a str>,
    ip: &'a [String],
    ipn: usize,
    o: u64,
    an: bool,
}

#[derive(Serialize)]
struct Data<'a> {
    totals: &'a Totals,
    live_at: Option<&'a str>,
    roots: Vec<Root<'a>>,
    creds: Vec<Node<'a>>,
    collisions: &'a [Collision],
    offhost: &'a [Offhost],
    live: &'a [Live],
}

/// `AssumeRole at 2024-08-01T12:00:05Z` → (`AssumeRole`, time). The event
/// name is the record's, so the split is on the last ` at `.
fn split_issued(by: &str) -> (&str, Option<&str>) {
    match by.rsplit_once(" at ") {
        Some((name, at)) if at.ends_with('Z') && !at.contains(' ') => (name, Some(at)),
        _ => (by, None),
    }
}

fn flatten<'a>(r: &'a ReportOut) -> Vec<Node<'a>> {
    let mut out = Vec::new();
    for (ri, root) in r.roots.iter().enumerate() {
        // Iterative pre-order, so a long chain cannot overflow the stack.
        let mut stack: Vec<(&Credential, i64)> =
            root.credentials.iter().rev().map(|c| (c, -1)).collect();
        while let Some((c, parent)) = stack.pop() {
            let me = out.len() as i64;
            let (by, it) = match c.issued_by.as_deref().map(split_issued) {
                Some((by, it)) => (Some(by), it),
                None => (None, None),
            };
            out.push(Node {
                r: ri,
                p: parent,
                k: c.access_key_id.as_deref(),
                f: &c.session_fingerprint,
                a: c.principal_arn.as_deref(),
                ty: c.credential_type.as_deref(),
                d: c.lineage_depth,
                c: c.lineage_complete,
                by,
                it,
                x: c.expiration.as_deref(),
                n: c.calls,
                fs: c.first_seen.as_deref(),
                ls: c.last_seen.as_deref(),
                ip: &c.source_ips,
                ipn: c.source_ip_count,
                o: c.offhost_calls,
                an: c.offhost_ancestor,
            });
            stack.extend(c.children.iter().rev().map(|k| (k, me)));
        }
    }
    out
}

/// Text for HTML content or a quoted attribute value.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Writes JSON so that it can sit inside `<script type="application/json">`:
/// `<`, `>` and `&` only occur inside JSON strings, where their `\u` escapes
/// mean the same to `JSON.parse`.
struct ScriptSafe<W>(W);

impl<W: Write> Write for ScriptSafe<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(i) = rest.iter().position(|b| matches!(b, b'<' | b'>' | b'&')) {
            let (plain, tail) = rest.split_at(i);
            self.0.write_all(plain)?;
            let (b, tail) = tail.split_first().unwrap_or((&b'&', &[]));
            self.0.write_all(match b {
                b'<' => b"\\u003c",
                b'>' => b"\\u003e",
                _ => b"\\u0026",
            })?;
            rest = tail;
        }
        self.0.write_all(rest)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut o = String::new();
    for ch in bytes.chunks(3) {
        let n = ch
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= ch.len() {
                o.push(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                o.push('=');
            }
        }
    }
    o
}

/// The CSP source of an inline script or style: `'sha256-…'`.
fn hash_source(text: &str) -> String {
    format!("'sha256-{}'", base64(&Sha256::digest(text.as_bytes())))
}

/// The report as one self-contained HTML page.
pub fn write_html(w: &mut dyn Write, r: &ReportOut) -> io::Result<()> {
    let t = &r.totals;
    let span = format!(
        "{} .. {}",
        t.first_event.as_deref().unwrap_or("?"),
        t.last_event.as_deref().unwrap_or("?")
    );
    write!(
        w,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src {}; style-src {}; img-src data:; base-uri 'none'; form-action 'none'\">\n\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
<title>credlineage report {}</title>\n<style>{CSS}</style></head>\n\
<body><header><h1>credlineage report</h1><p class=\"sub\" id=\"summary\">{} records ({} annotated), events {}; \
{} root(s), {} key-ID collision(s), {} off-host EC2 use(s), {} live credential(s)</p>\
<noscript><p>This page draws the lineage with its inline script; `credlineage report` prints the same as text.</p></noscript></header>\n\
<script type=\"application/json\" id=\"data\">",
        hash_source(JS),
        hash_source(CSS),
        esc(&span),
        t.records,
        t.annotated,
        esc(&span),
        r.roots.len(),
        r.collisions.len(),
        r.offhost.len(),
        r.live.len(),
    )?;
    let data = Data {
        totals: t,
        live_at: r.live_at.as_deref(),
        roots: r
            .roots
            .iter()
            .map(|x| Root {
                n: &x.lineage_root,
                t: x.lineage_root_type.as_deref(),
                e: x.events,
                kl: x.keyless_events,
                fs: x.first_seen.as_deref(),
                ls: x.last_seen.as_deref(),
            })
            .collect(),
        creds: flatten(r),
        collisions: &r.collisions,
        offhost: &r.offhost,
        live: &r.live,
    };
    serde_json::to_writer(ScriptSafe(&mut *w), &data).map_err(io::Error::other)?;
    writeln!(w, "</script>\n<script>{JS}</script>\n</body></html>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o, "{i}");
        }
    }

    #[test]
    fn script_safe_json_keeps_its_meaning() {
        let v = serde_json::json!({"a": "</script><img src=x onerror=alert(1)> & \u{2028}"});
        let mut out = Vec::new();
        serde_json::to_writer(ScriptSafe(&mut out), &v).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(
            !s.contains('<') && !s.contains('>') && !s.contains('&'),
            "{s}"
        );
        assert_eq!(serde_json::from_str::<serde_json::Value>(&s).unwrap(), v);
    }

    #[test]
    fn issued_by_splits_on_the_last_at() {
        assert_eq!(
            split_issued("AssumeRole at 2024-08-01T12:00:05Z"),
            ("AssumeRole", Some("2024-08-01T12:00:05Z"))
        );
        assert_eq!(
            split_issued("Odd at name at 2024-08-01T12:00:05Z"),
            ("Odd at name", Some("2024-08-01T12:00:05Z"))
        );
        assert_eq!(split_issued("AssumeRole"), ("AssumeRole", None));
        assert_eq!(
            esc("<a href='x'>&\""),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;"
        );
    }
}
