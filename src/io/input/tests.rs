//! Unit tests of input splitting: every shape, damage salvage, CloudWatch Logs envelopes, byte order marks, and linear work (line numbering, naming damaged records).

use super::*;

fn texts(doc: &str) -> Vec<(String, u64)> {
    let s = split(doc.as_bytes());
    assert_eq!(s.damage, None, "{doc}");
    s.pieces
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
    // NDJSON whose first line is broken: still line by line.
    assert_eq!(
        texts("{\"a\":1,\"b\"\n{\"c\":2}\n"),
        vec![("{\"a\":1,\"b\"".into(), 1), ("{\"c\":2}".into(), 2)]
    );
    // One invalid line passes through.
    assert_eq!(texts("{oops"), vec![("{oops".into(), 1)]);
    // NDJSON of arrays: arrays are records.
    assert_eq!(
        texts("[1,2]\n[3]"),
        vec![("[1,2]".into(), 1), ("[3]".into(), 2)]
    );
}

#[test]
fn lake_style_pretty_records_and_concatenations() {
    // Pretty-printed documents back to back.
    assert_eq!(
        texts("{\n \"a\": 1\n}\n{\n \"b\": 2\n}\n"),
        vec![("{\"a\":1}".into(), 1), ("{\"b\":2}".into(), 4)]
    );
    // Plain objects written back to back on one line (EventBridge through Firehose).
    assert_eq!(
        texts("{\"a\":1}{\"b\":2}"),
        vec![("{\"a\":1}".into(), 1), ("{\"b\":2}".into(), 1)]
    );
}

fn cw(events: &[&str], kind: &str) -> String {
    let ev: Vec<String> = events
        .iter()
        .enumerate()
        .map(|(i, m)| {
            format!(
                "{{\"id\":\"{i}\",\"timestamp\":1722513605000,\"message\":{}}}",
                serde_json::to_string(m).unwrap()
            )
        })
        .collect();
    format!(
        "{{\"messageType\":\"{kind}\",\"owner\":\"111122223333\",\"logGroup\":\"aws-cloudtrail-logs\",\"logStream\":\"111122223333_CloudTrail_us-east-1\",\"subscriptionFilters\":[\"f\"],\"logEvents\":[{}]}}",
        ev.join(",")
    )
}

#[test]
fn cloudwatch_envelopes() {
    let doc = cw(
        &["{\"eventName\":\"A\"}", "{\"eventName\":\"B\"}"],
        "DATA_MESSAGE",
    );
    assert_eq!(
        texts(&doc),
        vec![
            ("{\"eventName\":\"A\"}".into(), 1),
            ("{\"eventName\":\"B\"}".into(), 1)
        ]
    );
    // A message that is not a JSON object: the log event itself.
    let doc = cw(&["START RequestId: 1", "{broken"], "DATA_MESSAGE");
    let got = texts(&doc);
    assert_eq!(got.len(), 2);
    for (t, _) in &got {
        let v: serde_json::Value = serde_json::from_str(t).unwrap();
        assert!(v["message"].is_string() && v["id"].is_string(), "{t}");
    }
    // CONTROL_MESSAGE passes through whole.
    let ctl = cw(
        &["CWL CONTROL MESSAGE: Checking health of destination"],
        "CONTROL_MESSAGE",
    );
    assert_eq!(texts(&ctl), vec![(ctl.clone(), 1)]);
    // Firehose: back to back, no separator, and on NDJSON lines too.
    let a = cw(&["{\"eventName\":\"A\"}"], "DATA_MESSAGE");
    let b = cw(
        &["{\"eventName\":\"B\"}", "{\"eventName\":\"C\"}"],
        "DATA_MESSAGE",
    );
    let names = |d: &str| -> Vec<String> { texts(d).into_iter().map(|(t, _)| t).collect() };
    let want: Vec<String> = ["A", "B", "C"]
        .iter()
        .map(|n| format!("{{\"eventName\":\"{n}\"}}"))
        .collect();
    assert_eq!(names(&format!("{a}{b}")), want);
    assert_eq!(names(&format!("{a}\n{b}\n")), want);
    let mut with_ctl = want.clone();
    with_ctl.insert(1, ctl.clone());
    assert_eq!(names(&format!("{a}{ctl}{b}")), with_ctl);
    // A message holding escapes and a pretty-printed record.
    let doc = cw(&["{\n  \"eventName\": \"A\\\"q\"\n}"], "DATA_MESSAGE");
    assert_eq!(names(&doc), vec!["{\"eventName\":\"A\\\"q\"}".to_string()]);
}

#[test]
fn damaged_documents_give_complete_records_then_the_damage() {
    let doc = "{\n  \"Records\": [\n    {\"a\": 1},\n    {\"b\": 2},\n    {\"c\": ";
    let s = split(doc.as_bytes());
    let got: Vec<&[u8]> = s.pieces.iter().map(|p| &*p.bytes).collect();
    assert_eq!(got, vec![&b"{\"a\": 1}"[..], &b"{\"b\": 2}"[..]]);
    let d = s.damage.expect("damage");
    assert_eq!((d.line, d.column), (5, 11));
    assert!(d.reason.contains("cut short"), "{}", d.reason);
    // A bad byte.
    let mut doc = b"[{\"a\":1},\n{\"b\":\"x".to_vec();
    doc.push(0xff);
    doc.extend_from_slice(b"\"},{\"c\":3}]");
    let s = split(&doc);
    assert_eq!(s.pieces.len(), 3);
    assert_eq!(s.damage, None);
    let d = &s.damaged_records[0];
    assert_eq!((d.line, d.column, d.record), (2, 8, Some(1)));
    assert!(d.reason.contains("UTF-8"), "{}", d.reason);
    // Trailing garbage after a complete document.
    let s = split(b"{\n\"Records\":[{\"a\":1}]}\n]");
    assert_eq!(s.pieces.len(), 1);
    assert_eq!(s.damage.map(|d| (d.line, d.column)), Some((3, 1)));
    // A pretty-printed record cut short: nothing.
    let s = split(b"{\n  \"eventName\": \"A\",\n  \"eventSource\": ");
    assert!(s.pieces.is_empty());
    assert!(s.damage.is_some());
    // A compact S3 file cut short (one line).
    let s = split(b"{\"Records\":[{\"a\":1},{\"b\":2},{\"c\"");
    assert_eq!(s.pieces.len(), 2);
    assert_eq!(s.damage.map(|d| (d.line, d.column)), Some((1, 33)));
    // A CloudWatch envelope cut short: the complete log events.
    let doc = cw(
        &["{\"eventName\":\"A\"}", "{\"eventName\":\"B\"}"],
        "DATA_MESSAGE",
    );
    let s = split(&doc.as_bytes()[..doc.len() - 30]);
    assert_eq!(s.pieces.len(), 1);
    assert!(s.damage.is_some());
}

#[test]
fn damage_inside_one_record_costs_that_record_only() {
    let r = |n: u32| format!("{{\"eventName\":\"E{n}\",\"k\":{{\"x\":[1,\"]}}\"]}}}}");
    let recs: Vec<String> = (0..5).map(r).collect();
    let compact = format!("{{\"Records\":[{}]}}", recs.join(","));
    let pretty = format!(
        "{{\n  \"Records\": [\n    {}\n  ]\n}}\n",
        recs.join(",\n    ")
    );
    let array = format!("[{}]", recs.join(",\n"));
    for doc in [compact, pretty, array] {
        let at = doc.find("E2").unwrap();
        // A bad byte, a NUL in a string, a stray byte between tokens, a
        // control byte: record 3 only.
        for (off, byte) in [(1, 0xffu8), (1, 0), (3, b'x'), (0, 0x07)] {
            let mut bad = doc.clone().into_bytes();
            bad[at + off] = byte;
            let s = split(&bad);
            assert_eq!(s.damage, None, "{doc} {byte}");
            assert_eq!(s.pieces.len(), 5, "{doc} {byte}");
            assert_eq!(s.damaged_records.len(), 1, "{doc} {byte}");
            let d = &s.damaged_records[0];
            assert_eq!(d.record, Some(2));
            assert_eq!(d.offset, at + off, "{doc} {byte}");
            // The damaged record is its own bytes, whole; the others are
            // the records as they were.
            assert!(s.pieces[2].bytes.starts_with(b"{\"eventName\""));
            assert!(s.pieces[2].bytes.ends_with(b"]}}"));
            for i in [0, 1, 3, 4] {
                assert_eq!(&*s.pieces[i].bytes, recs[i].as_bytes());
            }
        }
        // Two damaged records: both kept, both named.
        let mut bad = doc.clone().into_bytes();
        bad[at + 1] = 0xff;
        bad[doc.find("E4").unwrap() + 1] = 0;
        let s = split(&bad);
        assert_eq!((s.pieces.len(), s.damaged_records.len()), (5, 2));
        assert_eq!(s.damage, None);
        // A lost quote unbalances the record: the damage is not
        // confined to it, so the records before it and one error.
        let mut bad = doc.clone().into_bytes();
        bad[at + 2] = b' ';
        let s = split(&bad);
        assert_eq!(s.pieces.len(), 2, "{doc}");
        assert!(s.damaged_records.is_empty());
        assert!(s.damage.is_some());
        // A lost bracket at the end of the last record: not confined.
        let end = doc.rfind("]}}").unwrap();
        let mut bad = doc.clone().into_bytes();
        bad[end + 2] = b' ';
        let s = split(&bad);
        assert!(s.damage.is_some() || s.damaged_records.len() == 1, "{doc}");
        assert!(s.pieces.len() >= 4, "{doc}");
    }
}

#[test]
fn a_byte_order_mark_is_dropped() {
    let s = split(b"\xEF\xBB\xBF{\"Records\":[{\"a\":1},{\"b\":2}]}");
    assert_eq!(s.pieces.len(), 2);
    assert_eq!(s.damage, None);
    assert_eq!(
        texts("\u{feff}{\"a\":1}\n{\"b\":2}\n"),
        vec![("{\"a\":1}".into(), 1), ("{\"b\":2}".into(), 2)]
    );
    assert_eq!(
        texts("\u{feff}[\n{\"a\":1}\n]"),
        vec![("{\"a\":1}".into(), 2)]
    );
    assert!(starts_ndjson("\u{feff}{\"a\":1}\n".as_bytes()));
    let mut p = Vec::new();
    ndjson_line("\u{feff}{\"a\":1}".as_bytes(), 1, &mut p);
    assert_eq!(&*p[0].bytes, b"{\"a\":1}");
    // Offsets count the mark, columns do not.
    let s = split(b"\xEF\xBB\xBF{\"Records\":[{\"a\":1}]}\0");
    let d = s.damage.expect("damage");
    assert_eq!((d.offset, d.column), (24, 22));
    // Trailing bytes after a whole document: every record, then one error.
    for tail in [&b"\0"[..], b"x", b"\xff", b"]"] {
        let mut doc = b"{\"Records\":[\n{\"a\":1},{\"b\":2}]}".to_vec();
        doc.extend_from_slice(tail);
        let s = split(&doc);
        assert_eq!(s.pieces.len(), 2, "{tail:?}");
        assert_eq!(
            s.damage.map(|d| (d.line, d.column)),
            Some((2, 18)),
            "{tail:?}"
        );
    }
}

#[test]
fn an_ndjson_line_that_is_damaged_passes_through_whole() {
    let doc = "{\"a\":1}\n{\"Records\":[{\"b\":1},{\"c\"\n";
    assert_eq!(
        texts(doc),
        vec![
            ("{\"a\":1}".into(), 1),
            ("{\"Records\":[{\"b\":1},{\"c\"".into(), 2)
        ]
    );
}

fn line_work<'a>(doc: &'a [u8]) -> (Split<'a>, u64) {
    LINE_WORK.with(|w| w.set(0));
    let s = split(doc);
    (s, LINE_WORK.with(|w| w.get()))
}

/// The work of numbering lines per record does not grow with the
/// number of records (it was quadratic: every record counted from the
/// start of the document), for every shape.
/// A CloudWatch Logs `DATA_MESSAGE` holding `records` as its log events.
fn cloudwatch_envelope(records: &[String]) -> String {
    let ev: Vec<String> = records
        .iter()
        .map(|m| {
            format!(
                "{{\"id\":\"1\",\"timestamp\":1,\"message\":{}}}",
                serde_json::to_string(m).unwrap()
            )
        })
        .collect();
    format!(
        "{{\"messageType\":\"DATA_MESSAGE\",\"logEvents\":[{}]}}",
        ev.join(",")
    )
}

#[test]
fn line_numbering_is_linear() {
    let rec = |i: usize| {
        format!(
            "{{\"eventName\":\"GetCallerIdentity\",\"eventSource\":\"sts.amazonaws.com\",\"eventTime\":\"2024-08-01T12:00:05Z\",\"n\":{i}}}"
        )
    };
    type Shape = fn(&[String]) -> String;
    let shapes: [(&str, Shape); 6] = [
        ("compact S3", |r| {
            format!("{{\"Records\":[{}]}}", r.join(","))
        }),
        ("pretty S3", |r| {
            let pretty: Vec<String> = r.iter().map(|x| x.replace(",\"", ",\n      \"")).collect();
            format!(
                "{{\n  \"Records\": [\n    {}\n  ]\n}}\n",
                pretty.join(",\n    ")
            )
        }),
        ("array", |r| format!("[\n{}\n]", r.join(",\n"))),
        ("S3 on NDJSON lines", |r| {
            r.chunks(100)
                .map(|c| format!("{{\"Records\":[{}]}}\n", c.join(",")))
                .collect()
        }),
        ("CloudWatch", |r| cloudwatch_envelope(r)),
        ("Firehose", |r| {
            r.chunks(50).map(cloudwatch_envelope).collect()
        }),
    ];
    for (name, shape) in shapes {
        let mut per_record = Vec::new();
        for n in [1_000usize, 16_000] {
            let recs: Vec<String> = (0..n).map(rec).collect();
            let doc = shape(&recs);
            let (s, work) = line_work(doc.as_bytes());
            assert_eq!(s.pieces.len(), n, "{name}");
            assert_eq!(s.damage, None, "{name}");
            per_record.push(work as f64 / n as f64);
        }
        assert!(
            per_record[1] <= 2.0 * per_record[0].max(1.0),
            "{name}: line-numbering work per record grew from {} to {} bytes",
            per_record[0],
            per_record[1]
        );
    }
}

/// Many damaged records in one document (compact: one line; pretty):
/// naming each costs work proportional to its distance from the last,
/// not to its offset (the column used to scan back to the line's start).
#[test]
fn naming_damaged_records_is_linear() {
    let rec = |i: usize| format!("{{\"eventName\":\"E\u{1}\",\"n\":{i}}}");
    for pretty in [false, true] {
        let mut per_record = Vec::new();
        for n in [1_000usize, 16_000] {
            let recs: Vec<String> = (0..n).map(rec).collect();
            let sep = if pretty { ",\n" } else { "," };
            let doc = format!("{{\"Records\":[{}]}}", recs.join(sep));
            let (s, work) = line_work(doc.as_bytes());
            assert_eq!(s.pieces.len(), n);
            assert_eq!(
                s.damaged_records.len(),
                n,
                "every record has a control byte"
            );
            assert_eq!(s.damage, None);
            per_record.push(work as f64 / n as f64);
        }
        assert!(
            per_record[1] <= 2.0 * per_record[0].max(1.0),
            "pretty {pretty}: work per damaged record grew from {} to {} bytes",
            per_record[0],
            per_record[1]
        );
    }
}

/// Cut as batch mode's reader does: the head (through the second
/// non-blank line and HEAD_BYTES past the first non-blank byte), then,
/// when `starts_ndjson`, line by line, else the whole document.
fn cut_streaming(doc: &[u8]) -> Split<'_> {
    let (mut end, mut nonblank, mut first) = (0, 0, None::<usize>);
    while end < doc.len() {
        let start = end;
        end = memchr::memchr(b'\n', &doc[start..]).map_or(doc.len(), |i| start + i + 1);
        if let Some(p) = doc[start..end]
            .iter()
            .position(|c| !c.is_ascii_whitespace())
        {
            nonblank += 1;
            first.get_or_insert(start + p);
        }
        if nonblank >= 2 && first.is_some_and(|a| end - a >= HEAD_BYTES) {
            break;
        }
    }
    if end >= doc.len() || !starts_ndjson(&doc[..end]) {
        return split(doc);
    }
    let mut pieces = Vec::new();
    for (i, line) in doc.split(|&c| c == b'\n').enumerate() {
        ndjson_line(line, i as u64 + 1, &mut pieces);
    }
    Split {
        pieces,
        damage: None,
        damaged_records: Vec::new(),
    }
}

#[test]
fn the_head_decides_as_the_whole_document_does() {
    let long = format!("{{\"k\":\"{}\"}}", "x".repeat(5000));
    let docs = [
        "{\"a\":1}\n{\"b\":2}\n".to_string(),
        "\n\n  \n{\"a\":1,\"b\"\n{\"c\":2}\n{\"d\":3}".into(),
        "{\n\"a\": 1\n}\n{\n\"b\": 2\n}".into(),
        "{\n\n\"Records\": [{\"a\":1},\n{\"b\":2}]}".into(),
        "{\"Records\":[{\"a\":1}]}\n{\"b\":1}\n".into(),
        "[1,2]\n[3]\n".into(),
        "[\n{\"a\":1}\n]".into(),
        "not json\n{\"a\":1}".into(),
        format!("{long}\n{long}\n{long}\n"),
        format!("{}\n{{\"a\":1}}\n{{\"b\":2}}", " ".repeat(5000)),
        format!("{{\n{}\n\"Records\":[{{\"a\":1}}]}}\n", "\n".repeat(300)),
        "{\"a\":1}{\"b\":2}\n{\"c\":3}".into(),
        "{oops\n".into(),
        String::new(),
    ];
    for d in &docs {
        assert_eq!(cut_streaming(d.as_bytes()), split(d.as_bytes()), "{d:?}");
    }
}
