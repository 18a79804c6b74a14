//! The event-time reorder window (`--reorder-window`) through the built binary: `enrich` on stdin and on a document, and `serve` over real loopback sockets — the window gives a streaming pass in batch mode's order, loses nothing, and counts what it could not put in place.

use credlineage::{Config, Enricher};
use serde_json::Value;
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_credlineage");

mod serve_support;
use serve_support::{Server, WAIT};

struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
}

/// `credlineage <args>` with `stdin`.
fn cli(args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut si = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let w = thread::spawn(move || si.write_all(&data));
    let o = child.wait_with_output().unwrap();
    // A command refused at start does not read its input.
    let _ = w.join().unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: o.stdout,
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// `credlineage generate` (v1 shapes unless `extra` says otherwise).
fn generate(n: usize, disorder: u32, seed: u64, extra: &[&str]) -> Vec<u8> {
    let (n, d, s) = (n.to_string(), disorder.to_string(), seed.to_string());
    let mut args = vec!["generate", "-n", &n, "--disorder", &d, "--seed", &s];
    args.extend_from_slice(extra);
    let r = cli(&args, b"");
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout
}

fn lines(b: &[u8]) -> Vec<&[u8]> {
    b.split_inclusive(|&c| c == b'\n').collect()
}

/// The lines of an NDJSON trail in batch mode's order: event time (a record
/// without one takes the time of the line before it, as batch mode does),
/// then issuances first within a second, then arrival.
fn batch_order(input: &[u8]) -> Vec<u8> {
    let peek = Enricher::new(Config::default()).unwrap();
    let mut last = i64::MIN;
    type Keyed<'a> = ((i64, u8, usize), &'a [u8]);
    let mut keyed: Vec<Keyed<'_>> = lines(input)
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let (t, rank) = peek.peek_order(l.strip_suffix(b"\n").unwrap_or(l));
            let t = t.unwrap_or(last);
            last = t;
            ((t, rank, i), l)
        })
        .collect();
    keyed.sort_by_key(|x| x.0);
    keyed.into_iter().flat_map(|x| x.1.to_vec()).collect()
}

/// Each output line without its annotation, and the annotation: pairs the
/// outputs of two runs on the same records whatever their order.
fn by_record(out: &[u8]) -> Vec<(String, Value)> {
    let mut v: Vec<(String, Value)> = lines(out)
        .into_iter()
        .map(|l| match serde_json::from_slice::<Value>(l) {
            Ok(Value::Object(mut m)) => {
                let a = m.remove("credlineage").unwrap_or(Value::Null);
                (Value::Object(m).to_string(), a)
            }
            _ => (String::from_utf8_lossy(l).into_owned(), Value::Null),
        })
        .collect();
    v.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| a.1.to_string().cmp(&b.1.to_string()))
    });
    v
}

/// The number `… N <what>` in a summary line, e.g. `number(s, "late")`.
fn number(summary: &str, what: &str) -> u64 {
    let at = summary
        .find(&format!(" {what}"))
        .unwrap_or_else(|| panic!("{what:?} in {summary}"));
    summary[..at]
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{what:?} in {summary}"))
}

fn window_line(stderr: &str) -> &str {
    stderr
        .lines()
        .find(|l| l.contains("reorder window"))
        .unwrap_or_else(|| panic!("no reorder summary: {stderr}"))
}

/// How many records come out earlier in event time than one before them.
fn inversions(out: &[u8]) -> u64 {
    let peek = Enricher::new(Config::default()).unwrap();
    let mut newest = i64::MIN;
    let mut n = 0;
    for l in lines(out) {
        if let (Some(t), _) = peek.peek_order(l.strip_suffix(b"\n").unwrap_or(l)) {
            if t < newest {
                n += 1;
            }
            newest = newest.max(t);
        }
    }
    n
}

#[test]
fn a_disordered_stream_within_the_window_gives_a_streaming_pass_in_batch_order() {
    // Delivered up to 300 s out of order; a 5-minute window puts every
    // record in its place: the bytes are those of `--order stream` on the
    // same records sorted as batch mode sorts them.
    let input = generate(6000, 300, 11, &[]);
    let sorted = batch_order(&input);
    assert_ne!(sorted, input, "the trail must be out of order");
    let reference = cli(&["enrich", "-q", "-"], &sorted);
    let windowed = cli(&["enrich", "--reorder-window", "5m", "-"], &input);
    assert_eq!(windowed.code, 0, "{}", windowed.stderr);
    assert_eq!(lines(&windowed.stdout).len(), 6000);
    assert!(windowed.stdout == reference.stdout, "not batch order");
    let s = window_line(&windowed.stderr);
    assert_eq!(number(s, "late"), 0, "{s}");
    assert_eq!(number(s, "records held"), 6000, "{s}");
    assert_eq!(number(s, "by the caps"), 0, "{s}");
    assert!(number(s, "by the watermark") > 5000, "{s}");
    assert_eq!(inversions(&windowed.stdout), 0);
    // A window narrower than the disorder cannot do that: records come late.
    let narrow = cli(&["enrich", "--reorder-window", "1m", "-"], &input);
    let s = window_line(&narrow.stderr);
    assert!(number(s, "late") > 0, "{s}");
    // A late issuance may share its second with what was released: late,
    // but not earlier in time.
    assert!(inversions(&narrow.stdout) <= number(s, "late"));
    assert!(inversions(&narrow.stdout) > 0);
    assert_eq!(by_record(&narrow.stdout).len(), 6000);
}

#[test]
fn the_window_gives_batch_modes_annotations_apart_from_its_lookahead() {
    // Batch mode is a pass in the same order plus what a first pass over the
    // whole input learned (parents seen after their children, sets first
    // used later): no single pass over a stream can know that. On every
    // other record the window's annotation is batch mode's; plain streaming
    // of the disordered records is wrong far more often.
    let input = generate(6000, 300, 12, &[]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trail.jsonl");
    std::fs::write(&file, &input).unwrap();
    let batch = cli(&["enrich", "-q", file.to_str().unwrap()], b"");
    let windowed = cli(&["enrich", "-q", "--reorder-window", "5m", "-"], &input);
    let streamed = cli(&["enrich", "-q", "-"], &input);
    let lookahead_only = cli(&["enrich", "-q", "-"], &batch_order(&input));
    let (b, w, s, l) = (
        by_record(&batch.stdout),
        by_record(&windowed.stdout),
        by_record(&streamed.stdout),
        by_record(&lookahead_only.stdout),
    );
    assert_eq!(b.len(), 6000);
    let differ = |x: &[(String, Value)]| -> Vec<usize> {
        (0..b.len()).filter(|&i| x[i] != b[i]).collect::<Vec<_>>()
    };
    assert!(b.iter().zip(&w).all(|(x, y)| x.0 == y.0), "same records");
    let (dw, ds, dl) = (differ(&w), differ(&s), differ(&l));
    assert_eq!(
        dw, dl,
        "the window differs from batch mode only by its lookahead"
    );
    assert!(dw.len() * 100 < b.len(), "{} of {}", dw.len(), b.len());
    assert!(
        ds.len() > 5 * dw.len().max(1),
        "{} vs {}",
        ds.len(),
        dw.len()
    );
    // What the lookahead changes: lineage and collisions, nothing else.
    for &i in &dw {
        let (x, y) = (&b[i].1, &w[i].1);
        for (k, v) in x.as_object().unwrap() {
            if y.get(k) != Some(v) {
                assert!(
                    k.starts_with("lineage_")
                        || k == "issued"
                        || k == "is_key_collision"
                        || k == "collision_count",
                    "{k}: {v} vs {:?}",
                    y.get(k)
                );
            }
        }
    }
}

#[test]
fn every_record_comes_out_once_whatever_the_caps_late_records_and_junk() {
    // v1.1 shapes: duplicated and late deliveries (minutes after later
    // events). Junk between the records: not JSON, a non-CloudTrail object,
    // a blank line, an S3 delivery file on one line (two records).
    let trail = generate(3000, 120, 13, &["--shapes", "v1.1"]);
    let mut input = Vec::new();
    for (i, l) in lines(&trail).into_iter().enumerate() {
        input.extend_from_slice(l);
        match i % 500 {
            7 => input.extend_from_slice(b"not json at all\n"),
            8 => input.extend_from_slice(b"{\"hello\":\"world\"}\n"),
            9 => input.extend_from_slice(b"   \n"),
            10 => input.extend_from_slice(
                br#"{"Records":[{"eventVersion":"1.08","eventTime":"2024-08-01T00:00:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","userIdentity":{"type":"IAMUser","accessKeyId":"AKIAEXAMPLEEXAMPLE12","accountId":"111122223333"}},{"eventTime":"2024-08-01T00:00:01Z","eventSource":"s3.amazonaws.com","eventName":"ListBuckets"}]}"#,
            ),
            _ => {}
        }
        if i % 500 == 10 {
            input.push(b'\n');
        }
    }
    let plain = cli(&["enrich", "-"], &input);
    let expected = by_record(&plain.stdout)
        .into_iter()
        .map(|x| x.0)
        .collect::<Vec<_>>();
    for args in [
        &["--reorder-window", "2m"][..],
        &["--reorder-window", "15m", "--reorder-max-records", "40"],
        &["--reorder-window", "1h", "--reorder-max-bytes", "20K"],
        &["--reorder-window", "0"],
    ] {
        let mut a = vec!["enrich"];
        a.extend_from_slice(args);
        a.push("-");
        let r = cli(&a, &input);
        // The same exit status (the junk line is malformed: 1) and messages.
        assert_eq!(r.code, plain.code, "{args:?}: {}", r.stderr);
        assert_eq!(
            r.stderr.matches("not JSON").count() + r.stderr.matches("invalid JSON").count(),
            plain.stderr.matches("not JSON").count() + plain.stderr.matches("invalid JSON").count(),
            "{args:?}"
        );
        let got = by_record(&r.stdout)
            .into_iter()
            .map(|x| x.0)
            .collect::<Vec<_>>();
        assert_eq!(got.len(), expected.len(), "{args:?}");
        assert!(got == expected, "{args:?}: the same records, each once");
        let s = window_line(&r.stderr);
        let held = number(s, "records held");
        let released = number(s, "by the watermark")
            + number(s, "by the caps")
            + number(s, "by the wall clock")
            + number(s, "at the end");
        assert_eq!(held, released, "{args:?}: {s}");
        let late = number(s, "late");
        assert_eq!(
            held + late + number(s, "without a time passed on at once"),
            expected.len() as u64,
            "{s}"
        );
        // Out of event-time order: only the late records.
        assert!(inversions(&r.stdout) <= late, "{args:?}: {s}");
        assert!(late > 0, "{args:?}: the trail's late deliveries: {s}");
        if args.len() > 2 {
            assert!(number(s, "by the caps") > 0, "{args:?}: {s}");
            let peak = number(s, "at once");
            assert!(args[3] != "40" || peak <= 41, "{s}");
        }
    }
}

#[test]
fn a_document_on_the_command_line_is_reordered_too() {
    // An S3 delivery file is read whole and cut (the document path, not
    // NDJSON lines): the window takes its records the same way, and the
    // flag implies streaming order for files.
    let input = generate(800, 200, 14, &[]);
    let records: Vec<&str> = lines(&input)
        .into_iter()
        .map(|l| std::str::from_utf8(l).unwrap().trim_end())
        .collect();
    let doc = format!("{{\"Records\":[\n{}\n]}}\n", records.join(",\n"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("CloudTrail_us-east-1.json");
    std::fs::write(&file, doc).unwrap();
    let from_doc = cli(
        &["enrich", "--reorder-window", "5m", file.to_str().unwrap()],
        b"",
    );
    assert_eq!(from_doc.code, 0, "{}", from_doc.stderr);
    let from_lines = cli(&["enrich", "-q", "--reorder-window", "5m", "-"], &input);
    assert!(from_doc.stdout == from_lines.stdout);
    assert_eq!(number(window_line(&from_doc.stderr), "records held"), 800);
}

#[test]
fn bad_window_flags_are_refused() {
    let input = generate(10, 0, 1, &[]);
    let r = cli(
        &["enrich", "--order", "time", "--reorder-window", "5m", "-"],
        &input,
    );
    assert_eq!(r.code, 2);
    assert!(
        r.stderr
            .contains("--reorder-window applies to streaming order"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());
    for bad in [
        &["--reorder-window", "5 minutes"][..],
        &["--reorder-window", "-5m"],
        &["--reorder-window", "30d"],
        &["--reorder-max-records", "10"],
        &["--reorder-window", "5m", "--reorder-max-records", "0"],
    ] {
        let mut a = vec!["enrich"];
        a.extend_from_slice(bad);
        a.push("-");
        let r = cli(&a, &input);
        assert_eq!(r.code, 2, "{bad:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{bad:?}");
    }
    let help = cli(&["enrich", "--help"], b"");
    for flag in [
        "--reorder-window",
        "--reorder-max-records",
        "--reorder-max-bytes",
    ] {
        assert!(
            help.stdout
                .windows(flag.len())
                .any(|w| w == flag.as_bytes()),
            "{flag}"
        );
    }
    let help = cli(&["serve", "--help"], b"");
    assert!(String::from_utf8_lossy(&help.stdout).contains("--reorder-window"));
}

// ---------------------------------------------------------------------------
// serve
// ---------------------------------------------------------------------------

fn send(addr: SocketAddr, bytes: &[u8]) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s.write_all(bytes).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
}

#[test]
fn serve_reorders_what_several_connections_send_and_loses_nothing() {
    let input = generate(4000, 300, 15, &[]);
    let ls = lines(&input);
    // One connection: the bytes of `enrich --reorder-window` on stdin.
    let server = Server::start(&["--reorder-window", "5m"]);
    send(server.addr, &input);
    let until = Instant::now() + WAIT;
    // Records up to the window from the end stay held until the shutdown.
    while server.out_lines() < 3000 {
        assert!(Instant::now() < until, "only {} lines", server.out_lines());
        thread::sleep(Duration::from_millis(20));
    }
    let one = server.terminate();
    assert_eq!(one.code, 0, "{}", one.stderr);
    let cli_out = cli(&["enrich", "-q", "--reorder-window", "5m", "-"], &input);
    assert!(one.stdout == cli_out.stdout, "serve and enrich differ");
    let s = window_line(&one.stderr);
    assert!(number(s, "at the end") > 0 && number(s, "late") == 0, "{s}");

    // Four connections at once, each a quarter of the trail (every fourth
    // line, so each connection's records are as disordered as the trail):
    // every record out once, in time order apart from the late ones.
    let server = Server::start(&["--reorder-window", "5m"]);
    let addr = server.addr;
    let clients: Vec<_> = (0..4)
        .map(|k| {
            let part: Vec<u8> = ls
                .iter()
                .skip(k)
                .step_by(4)
                .flat_map(|l| l.to_vec())
                .collect();
            thread::spawn(move || send(addr, &part))
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let until = Instant::now() + WAIT;
    while server.stderr().matches("ended (closed)").count() < 4 {
        assert!(Instant::now() < until, "clients not done");
        thread::sleep(Duration::from_millis(20));
    }
    let many = server.terminate();
    assert_eq!(many.code, 0, "{}", many.stderr);
    let got: Vec<String> = by_record(&many.stdout).into_iter().map(|x| x.0).collect();
    let want: Vec<String> = by_record(&cli_out.stdout)
        .into_iter()
        .map(|x| x.0)
        .collect();
    assert!(got == want, "the same records, each once");
    let s = window_line(&many.stderr);
    assert!(inversions(&many.stdout) <= number(s, "late"), "{s}");
    assert!(many.stderr.contains("4000 records out"), "{}", many.stderr);
}

#[test]
fn serve_releases_held_records_by_the_wall_clock_on_a_quiet_stream() {
    // Two records a second apart in event time, then nothing: the event-time
    // watermark never passes them, but no record is held longer than the
    // window (here 2 s) by the clock either, so they come out while the
    // connection is still open, in time order.
    let rec = |t: &str, name: &str| {
        format!(
            "{{\"eventVersion\":\"1.08\",\"eventTime\":\"2024-08-01T10:00:{t}Z\",\"eventSource\":\"s3.amazonaws.com\",\"eventName\":\"{name}\",\"userIdentity\":{{\"type\":\"IAMUser\",\"accountId\":\"111122223333\",\"accessKeyId\":\"AKIAEXAMPLEEXAMPLE12\"}}}}\n"
        )
    };
    let swapped = format!("{}{}", rec("01", "ListBuckets"), rec("00", "GetObject"));
    let swapped = swapped.as_bytes();
    let server = Server::start(&["--reorder-window", "2s"]);
    let mut conn = TcpStream::connect_timeout(&server.addr, Duration::from_secs(10)).unwrap();
    conn.write_all(swapped).unwrap();
    let until = Instant::now() + WAIT;
    while server.out_lines() < 2 {
        assert!(
            Instant::now() < until,
            "held records not released on a quiet stream"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let out = server.stdout();
    assert_eq!(inversions(&out), 0);
    assert!(lines(&out)[0].windows(9).any(|w| w == b"GetObject"));
    drop(conn);
    let r = server.terminate();
    let s = window_line(&r.stderr);
    assert_eq!(number(s, "by the wall clock"), 2, "{s}");
    assert_eq!(number(s, "at the end"), 0, "{s}");
}
