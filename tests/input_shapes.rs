//! The input shapes of SPEC 2 (v1.1), through the library and the built CLI in batch and stream order: CloudTrail Lake times, unreadable times, CloudWatch Logs envelopes and Firehose concatenations, CloudTrail-Digest files, damaged documents.

mod common;

use common::*;
use credlineage::input::split;
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};

const KEY: &str = "ASIAQXAMPLELAKETIME1";

fn out_lines(b: &[u8]) -> Vec<&[u8]> {
    b.split(|&c| c == b'\n').filter(|l| !l.is_empty()).collect()
}

fn gz(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Every way the CLI reads a file: batch (the default for files) and stream.
const ORDERS: [&[&str]; 2] = [&[], &["--order", "stream"]];

/// An AssumeRole issuing KEY, at `iso_time` but with `event_time` written in the record.
fn issuance(iso_time: &str, event_time: &str, session: &str) -> Value {
    let mut r = assume_role(
        iam_user("AKIAQXAMPLELAKEROOT1", "alice"),
        iso_time,
        "lake-role",
        session,
        KEY,
        "198.51.100.7",
    );
    r["eventTime"] = json!(event_time);
    r
}

// ---------------------------------------------------------------------------
// CloudTrail Lake times
// ---------------------------------------------------------------------------

/// Two issuances of the same key ID five months apart, with Lake times: they
/// were both read as 1970 and collided.
fn lake_pair() -> Vec<Value> {
    vec![
        issuance("2024-03-01T12:00:05Z", "2024-03-01 12:00:05.000", "first"),
        issuance("2024-08-01T12:00:05Z", "2024-08-01 12:00:05", "second"),
    ]
}

#[test]
fn lake_times_are_read_library() {
    let mut e = enricher();
    let anns: Vec<Value> = lake_pair().iter().map(|r| step(&mut e, r)).collect();
    assert_eq!(anns[0]["is_key_collision"], false, "{anns:?}");
    assert_eq!(anns[1]["is_key_collision"], false, "{anns:?}");
    assert_ne!(
        anns[0]["issued"]["session_fingerprint"],
        anns[1]["issued"]["session_fingerprint"]
    );
    // Five months ahead in one record: used for that record only; the clock
    // waits for a second record to confirm the jump (SPEC 2).
    assert_eq!(e.clock(), Some(t("2024-03-01T12:00:05Z")));
    assert_eq!(e.stats().bad_time, 0);
    assert_eq!(
        e.peek_time(&bytes(&lake_pair()[0])),
        Some(t("2024-03-01T12:00:05Z"))
    );
}

#[test]
fn lake_times_are_read_cli() {
    let dir = tempfile::tempdir().unwrap();
    let text: String = lake_pair()
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    let f = write(dir.path(), "lake.jsonl", text.as_bytes());
    let f = f.to_str().unwrap();
    for order in ORDERS {
        let mut args = vec!["enrich", f];
        args.extend_from_slice(order);
        let o = cli(&args, None);
        assert_eq!(o.code, 0, "{}", o.stderr);
        let l = out_lines(&o.stdout);
        assert_eq!(l.len(), 2);
        for line in l {
            assert_eq!(ann(line)["is_key_collision"], false, "{order:?}");
        }
        assert!(o.stderr.contains(" 0 with an unreadable"), "{}", o.stderr);
        let mut args = vec!["report", f];
        args.extend_from_slice(order);
        let o = cli(&args, None);
        assert_eq!(o.code, 0, "{}", o.stderr);
        let s = String::from_utf8_lossy(&o.stdout);
        assert!(!s.contains("1970"), "{s}");
        assert!(s.contains("2024-08-01"), "{s}");
    }
}

// ---------------------------------------------------------------------------
// Unreadable times
// ---------------------------------------------------------------------------

#[test]
fn an_unreadable_time_is_counted_and_never_moves_the_clock_to_1970() {
    let mut e = enricher();
    let mut bad = issuance("2024-08-01T12:00:05Z", "yesterday at noon", "s1");
    step(&mut e, &bad);
    assert_eq!(e.stats().bad_time, 1);
    assert_eq!(e.clock(), None, "an unreadable time set the clock");
    // No time at all: counted too.
    bad.as_object_mut().unwrap().remove("eventTime");
    step(&mut e, &bad);
    assert_eq!(e.stats().bad_time, 2);
    assert_eq!(e.clock(), None);
    // The host's time is a usable time.
    e.process(&bytes(&bad), Some(t("2024-08-01T00:00:00Z")));
    assert_eq!(e.stats().bad_time, 2);
    assert_eq!(e.clock(), Some(t("2024-08-01T00:00:00Z")));
    // An unreadable eventTime with a readable @timestamp: @timestamp is used, and it is counted.
    let mut r = issuance("2024-08-01T12:00:05Z", "2024-13-45T99:00:00Z", "s2");
    r["@timestamp"] = json!("2024-08-01T12:00:05.120Z");
    step(&mut e, &r);
    assert_eq!(e.stats().bad_time, 3);
    assert_eq!(e.clock(), Some(t("2024-08-01T12:00:05Z")));
    // Then the latest time seen is the fallback (arrival order): the clock stays.
    let mut r = issuance("2024-08-01T12:00:05Z", "soon", "s3");
    r.as_object_mut().unwrap().remove("@timestamp");
    step(&mut e, &r);
    assert_eq!(e.stats().bad_time, 4);
    assert_eq!(e.clock(), Some(t("2024-08-01T12:00:05Z")));
    assert_eq!(e.stats().records, 5);
}

#[test]
fn an_unreadable_time_is_summarised_and_report_never_says_1970() {
    let dir = tempfile::tempdir().unwrap();
    let mut recs = lake_pair();
    recs[0]["eventTime"] = json!("not a time");
    recs[1]["eventTime"] = json!("2024/08/01 12:00");
    let text: String = recs
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    let f = write(dir.path(), "bad.jsonl", text.as_bytes());
    let f = f.to_str().unwrap();
    for order in ORDERS {
        let mut args = vec!["enrich", f];
        args.extend_from_slice(order);
        let o = cli(&args, None);
        assert_eq!(o.code, 0, "{}", o.stderr);
        assert_eq!(out_lines(&o.stdout).len(), 2);
        assert!(
            o.stderr.contains(" 2 with an unreadable or missing time"),
            "{}",
            o.stderr
        );
        for fmt in ["text", "json"] {
            let mut args = vec!["report", f, "--format", fmt];
            args.extend_from_slice(order);
            let o = cli(&args, None);
            assert_eq!(o.code, 0, "{}", o.stderr);
            let s = String::from_utf8_lossy(&o.stdout);
            assert!(!s.contains("1970"), "{s}");
        }
    }
}

// ---------------------------------------------------------------------------
// CloudWatch Logs envelopes and Firehose
// ---------------------------------------------------------------------------

fn log_event(id: usize, message: &str) -> Value {
    json!({"id": format!("3781269786523189451{id:05}"), "timestamp": 1722513605000u64 + id as u64, "message": message})
}

fn envelope(kind: &str, events: Vec<Value>) -> String {
    serde_json::to_string(&json!({
        "messageType": kind,
        "owner": ACCT,
        "logGroup": "aws-cloudtrail-logs-457448411975",
        "logStream": "457448411975_CloudTrail_us-east-1",
        "subscriptionFilters": ["to-firehose"],
        "logEvents": events,
    }))
    .unwrap()
}

/// An issuance and a call with the issued key, as CloudWatch Logs delivers
/// them (two envelopes), a plain-text log event, and a CONTROL_MESSAGE.
struct Cw {
    data1: String,
    control: String,
    data2: String,
    records: Vec<Value>,
}

fn cw() -> Cw {
    let root = "AKIAQXAMPLECWROOTKEY";
    let issue = assume_role(
        iam_user(root, "bob"),
        "2024-08-01T12:00:05Z",
        "cw-role",
        "cw",
        "ASIAQXAMPLECWSESSION",
        "198.51.100.9",
    );
    let use_ = gci(
        "2024-08-01T12:00:09Z",
        assumed_role(
            "ASIAQXAMPLECWSESSION",
            "cw-role",
            "cw",
            "2024-08-01T12:00:05Z",
        ),
        "198.51.100.9",
    );
    let data1 = envelope(
        "DATA_MESSAGE",
        vec![
            log_event(1, &serde_json::to_string(&issue).unwrap()),
            log_event(2, "this is not a CloudTrail record"),
        ],
    );
    let control = envelope(
        "CONTROL_MESSAGE",
        vec![log_event(
            3,
            "CWL CONTROL MESSAGE: Checking health of destination Firehose.",
        )],
    );
    let data2 = envelope(
        "DATA_MESSAGE",
        vec![log_event(4, &serde_json::to_string(&use_).unwrap())],
    );
    Cw {
        data1,
        control,
        data2,
        records: vec![issue, use_],
    }
}

/// The four output lines: the issuance, the plain-text log event (passed
/// through as the log event object), the control message unchanged, the call.
fn check_cw(out: &[u8], c: &Cw, what: &str) {
    let l = out_lines(out);
    assert_eq!(l.len(), 4, "{what}: {}", String::from_utf8_lossy(out));
    for line in &l {
        parse(line);
    }
    let a0 = ann(l[0]);
    assert_eq!(
        a0["issued"]["access_key_id"], "ASIAQXAMPLECWSESSION",
        "{what}"
    );
    assert!(
        !added_text(&bytes(&c.records[0]), l[0]).is_empty(),
        "{what}"
    );
    let ev: Value = parse(l[1]);
    assert_eq!(ev["message"], "this is not a CloudTrail record", "{what}");
    assert!(ev.get(NS).is_none(), "{what}");
    assert_eq!(l[2], c.control.as_bytes(), "{what}");
    let a3 = ann(l[3]);
    assert_eq!(a3["lineage_root"], "AKIAQXAMPLECWROOTKEY", "{what}");
    assert_eq!(a3["lineage_depth"], 1, "{what}");
    assert_eq!(
        a3["session_fingerprint"], a0["issued"]["session_fingerprint"],
        "{what}"
    );
}

#[test]
fn cloudwatch_envelopes_library() {
    let c = cw();
    for doc in [
        format!("{}{}{}", c.data1, c.control, c.data2),
        format!("{}\n{}\n{}\n", c.data1, c.control, c.data2),
    ] {
        let s = split(doc.as_bytes());
        assert_eq!(s.damage, None);
        let mut e = enricher();
        let mut out = Vec::new();
        for p in &s.pieces {
            e.process_into(&p.bytes, None, &mut out);
            out.push(b'\n');
        }
        check_cw(&out, &c, "library");
        assert_eq!(e.stats().annotated, 2);
        assert_eq!(e.stats().passed_through, 2);
        assert_eq!(e.stats().malformed, 0);
    }
}

#[test]
fn cloudwatch_envelopes_and_firehose_files_cli() {
    let c = cw();
    let dir = tempfile::tempdir().unwrap();
    let firehose = format!("{}{}{}", c.data1, c.control, c.data2);
    let ndjson = format!("{}\n{}\n{}\n", c.data1, c.control, c.data2);
    let files = [
        write(dir.path(), "firehose.json", firehose.as_bytes()),
        write(dir.path(), "firehose.gz", &gz(firehose.as_bytes())),
        write(dir.path(), "subscription.jsonl", ndjson.as_bytes()),
    ];
    for f in &files {
        for order in ORDERS {
            let mut args = vec!["enrich", f.to_str().unwrap()];
            args.extend_from_slice(order);
            let o = cli(&args, None);
            assert_eq!(o.code, 0, "{}", o.stderr);
            check_cw(&o.stdout, &c, &format!("{} {order:?}", f.display()));
        }
    }
    // stdin, in both orders, plain and gzipped.
    for input in [
        firehose.as_bytes().to_vec(),
        gz(firehose.as_bytes()),
        ndjson.into_bytes(),
    ] {
        for order in ORDERS {
            let mut args = vec!["enrich", "-"];
            args.extend_from_slice(order);
            let o = cli(&args, Some(&input));
            assert_eq!(o.code, 0, "{}", o.stderr);
            check_cw(&o.stdout, &c, &format!("stdin {order:?}"));
        }
    }
    // A directory of Firehose objects (no `.json` suffix is needed inside a
    // named file; in a directory the usual suffixes apply).
    let d = dir.path().join("fh");
    write(
        &d,
        "2024/08/01/12/stream-1-2024-08-01-12-00-05.json.gz",
        &gz(firehose.as_bytes()),
    );
    let o = cli(&["enrich", d.to_str().unwrap()], None);
    assert_eq!(o.code, 0, "{}", o.stderr);
    check_cw(&o.stdout, &c, "directory");
    // report reads them too.
    let o = cli(
        &["report", "--format", "json", files[0].to_str().unwrap()],
        None,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["totals"]["annotated"], 2, "{r}");
}

// ---------------------------------------------------------------------------
// CloudTrail-Digest files
// ---------------------------------------------------------------------------

#[test]
fn digest_files_in_an_awslogs_tree_are_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("AWSLogs");
    let recs = cw().records;
    let s3 = serde_json::to_string(&json!({ "Records": recs })).unwrap();
    write(
        &root,
        &format!(
            "{ACCT}/CloudTrail/us-east-1/2024/08/01/{ACCT}_CloudTrail_us-east-1_20240801T1200Z_a1b2.json.gz"
        ),
        &gz(s3.as_bytes()),
    );
    let digest = serde_json::to_string(&json!({
        "awsAccountId": ACCT,
        "digestStartTime": "2024-08-01T11:00:00Z",
        "digestEndTime": "2024-08-01T12:00:00Z",
        "digestS3Bucket": "trail-bucket",
        "digestSignatureAlgorithm": "SHA256withRSA",
        "logFiles": [{"s3Bucket": "trail-bucket", "hashValue": "00ff", "hashAlgorithm": "SHA-256"}],
    }))
    .unwrap();
    write(
        &root,
        &format!(
            "{ACCT}/CloudTrail-Digest/us-east-1/2024/08/01/{ACCT}_CloudTrail-Digest_us-east-1_trail_us-east-1_20240801T120000Z.json.gz"
        ),
        &gz(digest.as_bytes()),
    );
    // Misplaced, but named as a digest.
    let loose = write(
        dir.path(),
        &format!("copies/{ACCT}_CloudTrail-Digest_us-east-1_trail_us-east-1_20240801T130000Z.json"),
        digest.as_bytes(),
    );
    let root_s = root.to_str().unwrap();
    for order in ORDERS {
        let mut args = vec!["enrich", root_s, loose.to_str().unwrap()];
        args.extend_from_slice(order);
        let o = cli(&args, None);
        assert_eq!(o.code, 0, "{}", o.stderr);
        let l = out_lines(&o.stdout);
        assert_eq!(l.len(), 2, "{}", String::from_utf8_lossy(&o.stdout));
        for line in l {
            ann(line);
        }
        assert!(
            o.stderr.contains("2 CloudTrail-Digest files skipped"),
            "{}",
            o.stderr
        );
        let mut args = vec!["report", root_s];
        args.extend_from_slice(order);
        let o = cli(&args, None);
        assert_eq!(o.code, 0, "{}", o.stderr);
        assert!(
            o.stderr.contains("1 CloudTrail-Digest file skipped"),
            "{}",
            o.stderr
        );
    }
}

// ---------------------------------------------------------------------------
// Damaged documents
// ---------------------------------------------------------------------------

/// The byte range of each element of a JSON array text, found by serde_json.
fn element_ends(text: &str) -> Vec<usize> {
    let raws: Vec<&serde_json::value::RawValue> = serde_json::from_str(text).unwrap();
    raws.iter()
        .map(|r| r.get().as_ptr() as usize - text.as_ptr() as usize + r.get().len())
        .collect()
}

fn line_col(doc: &[u8], at: usize) -> (usize, usize) {
    let before = &doc[..at];
    let line = 1 + before.iter().filter(|&&c| c == b'\n').count();
    let col = at
        - before
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, col)
}

/// The shapes of one Stratus file: as published (a pretty-printed array),
/// an S3 delivery file pretty-printed, and a compact one. With the end
/// offset of every record in each.
fn damaged_shapes(name: &str) -> Vec<(&'static str, String, Vec<usize>)> {
    let text = stratus_text(name);
    let pretty_s3 = format!("{{\n  \"Records\": {}\n}}\n", text.trim());
    let compact: Vec<String> = stratus_raw(name)
        .iter()
        .map(|r| String::from_utf8(credlineage::to_single_line(r).into_owned()).unwrap())
        .collect();
    let compact_s3 = format!("{{\"Records\":[{}]}}", compact.join(","));
    let shift = |ends: Vec<usize>, by: usize| ends.into_iter().map(|e| e + by).collect();
    let array_ends = element_ends(&text);
    let compact_ends = element_ends(&format!("[{}]", compact.join(",")));
    vec![
        ("pretty array", text.clone(), array_ends.clone()),
        (
            "pretty S3 file",
            pretty_s3,
            shift(array_ends, "{\n  \"Records\": ".len()),
        ),
        (
            "compact S3 file",
            compact_s3,
            shift(compact_ends, "{\"Records\":".len()),
        ),
    ]
}

#[test]
fn damaged_documents_give_complete_records_then_one_error() {
    let name = "ec2-steal-instance-credentials";
    let dir = tempfile::tempdir().unwrap();
    let mut cases = 0;
    for (shape, doc, ends) in damaged_shapes(name) {
        let ids: Vec<String> = stratus_unsorted(name)
            .iter()
            .map(|r| r["eventID"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ends.len(), ids.len());
        let n = doc.len();
        let mut damaged: Vec<(String, Vec<u8>, usize)> =
            [n / 10, n * 37 / 100, n / 2, n * 83 / 100, n - 2]
                .iter()
                .map(|&cut| {
                    (
                        format!("{shape} cut at {cut}"),
                        doc.as_bytes()[..cut].to_vec(),
                        cut,
                    )
                })
                .collect();
        // A bad byte before the end of the last record (the record is cut
        // short: its brackets never balance).
        let last = ends[ends.len() - 1] - 1;
        let mut bad = doc.as_bytes().to_vec();
        bad[last] = 0xff;
        damaged.push((format!("{shape} bad last bracket at {last}"), bad, last));
        for (what, bytes, at) in damaged {
            let complete: Vec<&String> = ids
                .iter()
                .zip(&ends)
                .filter(|(_, e)| **e <= at)
                .map(|(id, _)| id)
                .collect();
            // The library.
            let s = split(&bytes);
            assert_eq!(s.pieces.len(), complete.len(), "{what}");
            let d = s
                .damage
                .clone()
                .unwrap_or_else(|| panic!("{what}: no damage"));
            // At the damage, or just before it (an escape or a literal cut short).
            assert!(d.offset <= at && d.offset + 6 >= at, "{what}: {d:?}");
            let (line, col) = line_col(&bytes, d.offset);
            assert_eq!((d.line, d.column), (line as u64, col as u64), "{what}");
            // The CLI, plain and gzipped, batch and stream.
            for (suffix, content) in [("json", bytes.clone()), ("json.gz", gz(&bytes))] {
                let f = write(dir.path(), &format!("case{cases}.{suffix}"), &content);
                cases += 1;
                let fs = f.to_str().unwrap();
                for order in ORDERS {
                    let mut args = vec!["enrich", fs];
                    args.extend_from_slice(order);
                    let o = cli(&args, None);
                    let label = format!("{what} {suffix} {order:?}");
                    assert_eq!(o.code, 1, "{label}: {}", o.stderr);
                    let l = out_lines(&o.stdout);
                    assert_eq!(l.len(), complete.len(), "{label}: {}", o.stderr);
                    for (line, id) in l.iter().zip(&complete) {
                        let v = parse(line);
                        assert_eq!(v["eventID"].as_str(), Some(id.as_str()), "{label}");
                        assert!(v.get(NS).is_some(), "{label}");
                    }
                    let errors: Vec<&str> = o
                        .stderr
                        .lines()
                        .filter(|l| l.contains("damaged") || l.contains("invalid JSON"))
                        .collect();
                    assert_eq!(errors.len(), 1, "{label}: {}", o.stderr);
                    assert!(
                        errors[0].contains(&format!("{fs}:{line}:{col}: damaged JSON document")),
                        "{label}: {}",
                        o.stderr
                    );
                }
            }
        }
    }
    // One case on stdin, both orders.
    let (_, doc, ends) = damaged_shapes(name).remove(1);
    let cut = doc.len() / 2;
    let want = ends.iter().filter(|e| **e <= cut).count();
    for order in ORDERS {
        let mut args = vec!["enrich", "-"];
        args.extend_from_slice(order);
        let o = cli(&args, Some(&doc.as_bytes()[..cut]));
        assert_eq!(o.code, 1, "{}", o.stderr);
        assert_eq!(out_lines(&o.stdout).len(), want, "{}", o.stderr);
        assert!(o.stderr.contains("<stdin>:"), "{}", o.stderr);
    }
}

/// Run the CLI on `bytes` as a file (plain and gzipped, both orders) and
/// on stdin (both orders): the output lines and stderr of each.
fn every_way(dir: &Path, name: &str, bytes: &[u8]) -> Vec<(String, i32, Vec<Vec<u8>>, String)> {
    let mut runs = Vec::new();
    for (suffix, content) in [("json", bytes.to_vec()), ("json.gz", gz(bytes))] {
        let f = write(dir, &format!("{name}.{suffix}"), &content);
        let fs = f.to_str().unwrap();
        for order in ORDERS {
            let mut args = vec!["enrich", fs];
            args.extend_from_slice(order);
            let o = cli(&args, None);
            let l = out_lines(&o.stdout).iter().map(|l| l.to_vec()).collect();
            runs.push((format!("{name}.{suffix} {order:?}"), o.code, l, o.stderr));
        }
    }
    for order in ORDERS {
        let mut args = vec!["enrich", "-"];
        args.extend_from_slice(order);
        let o = cli(&args, Some(bytes));
        let l = out_lines(&o.stdout).iter().map(|l| l.to_vec()).collect();
        runs.push((format!("{name} on stdin {order:?}"), o.code, l, o.stderr));
    }
    runs
}

/// Issue 13: one bad byte inside one record of an N-record S3 file (pretty
/// or compact, or an array) lost every record after it; now it costs that
/// record only, which is passed through as its bytes and named once.
#[test]
fn one_bad_byte_in_one_record_costs_that_record_only() {
    let name = "ec2-steal-instance-credentials";
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<String> = stratus_unsorted(name)
        .iter()
        .map(|r| r["eventID"].as_str().unwrap().to_string())
        .collect();
    for (shape, doc, ends) in damaged_shapes(name) {
        let k = ends.len() / 2;
        // Inside a string of record k (20 bytes before its end is inside the
        // last value of every shape here), a NUL there, and a stray byte.
        let at = ends[k] - 20;
        let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
        for (what, byte) in [("0xff", 0xffu8), ("NUL", 0)] {
            let mut bad = doc.as_bytes().to_vec();
            bad[at] = byte;
            cases.push((what, bad));
        }
        for (what, bytes) in cases {
            let label = format!("{shape} {what} at {at}");
            // The library.
            let s = split(&bytes);
            assert_eq!(s.damage, None, "{label}");
            assert_eq!(s.pieces.len(), ids.len(), "{label}");
            assert_eq!(s.damaged_records.len(), 1, "{label}");
            let d = &s.damaged_records[0];
            assert_eq!(d.record, Some(k), "{label}");
            assert_eq!(d.offset, at, "{label}");
            let (line, col) = line_col(&bytes, at);
            assert_eq!((d.line, d.column), (line as u64, col as u64), "{label}");
            // The CLI.
            let file = format!("{}-{}", shape.replace(' ', "-"), what);
            for (run, code, lines, stderr) in every_way(dir.path(), &file, &bytes) {
                let label = format!("{label}: {run}");
                assert_eq!(code, 1, "{label}: {stderr}");
                assert_eq!(lines.len(), ids.len(), "{label}: {stderr}");
                for (i, (l, id)) in lines.iter().zip(&ids).enumerate() {
                    if i == k {
                        // Its bytes, not annotated (the record made one line).
                        assert!(serde_json::from_slice::<Value>(l).is_err(), "{label}");
                        assert!(!l.windows(NS.len()).any(|w| w == NS.as_bytes()), "{label}");
                        let between = &bytes[ends[k - 1]..ends[k]];
                        let from = between.iter().position(|&c| c == b'{').unwrap();
                        let raw = credlineage::to_single_line(&between[from..]);
                        assert_eq!(l.as_slice(), &*raw, "{label}");
                        continue;
                    }
                    let v = parse(l);
                    assert_eq!(v["eventID"].as_str(), Some(id.as_str()), "{label}");
                    assert!(v.get(NS).is_some(), "{label}");
                }
                let errors: Vec<&str> = stderr
                    .lines()
                    .filter(|l| l.contains("damaged") || l.contains("invalid JSON"))
                    .collect();
                assert_eq!(errors.len(), 1, "{label}: {stderr}");
                let src = if run.contains("stdin") {
                    "<stdin>".to_string()
                } else {
                    dir.path().join(&file).to_str().unwrap().to_string()
                };
                assert!(
                    errors[0].contains(&format!(
                        ":{line}:{col}: record {} of this file is damaged",
                        k + 1
                    )) && errors[0].contains(&src),
                    "{label}: {stderr}"
                );
            }
        }
    }
}

/// Issue 13: a UTF-8 byte order mark made an S3 file one un-annotated line
/// and an NDJSON file's first record un-annotated; a trailing NUL or stray
/// byte after a whole S3 file must keep every record (and name the bytes).
#[test]
fn a_byte_order_mark_and_trailing_bytes_lose_no_record() {
    let name = "ec2-steal-instance-credentials";
    let dir = tempfile::tempdir().unwrap();
    let n = stratus_unsorted(name).len();
    let (_, compact, _) = damaged_shapes(name).remove(2);
    let (_, pretty, _) = damaged_shapes(name).remove(1);
    let ndjson: String = stratus_raw(name)
        .iter()
        .map(|r| {
            format!(
                "{}\n",
                String::from_utf8_lossy(&credlineage::to_single_line(r))
            )
        })
        .collect();
    let bom = |d: &str| [&b"\xEF\xBB\xBF"[..], d.as_bytes()].concat();
    let mut cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("bom-compact", bom(&compact), false),
        ("bom-pretty", bom(&pretty), false),
        ("bom-ndjson", bom(&ndjson), false),
    ];
    for (what, tail) in [("nul", &b"\0"[..]), ("stray", b"x"), ("ff", b"\xff")] {
        cases.push((what, [compact.as_bytes(), tail].concat(), true));
    }
    for (what, bytes, trailing) in cases {
        assert_eq!(split(&bytes).pieces.len(), n, "{what}");
        assert_eq!(split(&bytes).damage.is_some(), trailing, "{what}");
        for (run, code, lines, stderr) in every_way(dir.path(), what, &bytes) {
            let label = format!("{what}: {run}");
            assert_eq!(lines.len(), n, "{label}: {stderr}");
            for l in &lines {
                assert!(parse(l).get(NS).is_some(), "{label}");
            }
            let errors = stderr.lines().filter(|l| l.contains("damaged")).count();
            assert_eq!(errors, usize::from(trailing), "{label}: {stderr}");
            assert_eq!(code, i32::from(trailing), "{label}: {stderr}");
        }
    }
}

#[test]
fn ndjson_files_are_still_read_line_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let recs = cw().records;
    let a = serde_json::to_string(&recs[0]).unwrap();
    let b = serde_json::to_string(&recs[1]).unwrap();
    // A broken first line (cut short), then records, then an invalid line.
    let text = format!("{}\n{a}\n{b}\nnot json\n", &a[..a.len() / 2]);
    let f = write(dir.path(), "broken.jsonl", text.as_bytes());
    for order in ORDERS {
        let mut args = vec!["enrich", f.to_str().unwrap()];
        args.extend_from_slice(order);
        let o = cli(&args, None);
        assert_eq!(o.code, 1, "{}", o.stderr);
        let l = out_lines(&o.stdout);
        assert_eq!(l.len(), 4);
        assert_eq!(l[0], &a.as_bytes()[..a.len() / 2]);
        ann(l[1]);
        ann(l[2]);
        assert_eq!(l[3], b"not json");
        assert!(!o.stderr.contains("damaged"), "{}", o.stderr);
    }
}
