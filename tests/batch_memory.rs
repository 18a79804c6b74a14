//! Batch mode in bounded memory (docs/batch.md): with a tiny `--batch-memory` the sorted runs spill to disk and are merged, and the output, the messages and the report are the same bytes as the in-memory fast path; the spill directory is left empty on success and on failure.

mod common;

use common::cli as run;
use std::path::{Path, PathBuf};

/// A budget far below the inputs: hundreds of runs, merged in two levels.
const TINY: &str = "64K";

fn generated(dir: &Path) -> PathBuf {
    let p = dir.join("trail.jsonl");
    let o = run(
        &[
            "generate",
            "-n",
            "20000",
            "--seed",
            "5",
            "--disorder",
            "600",
            "--shapes",
            "v1.1",
            "-o",
            p.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    p
}

fn gz(b: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// The trail as S3 delivery files of 250 records in an `AWSLogs/` tree,
/// every other file gzipped, one day directory per file's first record.
fn awslogs_tree(trail: &Path, root: &Path) {
    let text = std::fs::read_to_string(trail).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for (k, chunk) in lines.chunks(250).enumerate() {
        let recs: Vec<serde_json::Value> = chunk
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let t = recs[0]["eventTime"]
            .as_str()
            .unwrap_or("2024-01-01T00:00:00Z");
        let acct = recs[0]["recipientAccountId"]
            .as_str()
            .unwrap_or("111122223333");
        let dir = root.join(format!(
            "AWSLogs/{acct}/CloudTrail/us-east-1/{}/{}/{}",
            &t[0..4],
            &t[5..7],
            &t[8..10]
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let body = serde_json::to_vec(&serde_json::json!({ "Records": recs })).unwrap();
        let name = format!("{acct}_CloudTrail_us-east-1_{k:06}.json");
        if k % 2 == 1 {
            std::fs::write(dir.join(name + ".gz"), gz(&body)).unwrap();
        } else {
            std::fs::write(dir.join(name), body).unwrap();
        }
    }
}

/// stderr without the summary's timing.
fn messages(stderr: &str) -> String {
    stderr
        .lines()
        .map(|l| l.split(" | ").take(3).collect::<Vec<_>>().join(" | "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

/// `enrich` (or `report`) with the default budget (in memory) and with a
/// tiny one (spilled): the same stdout, stderr and exit code; the spill
/// directory empty afterwards.
fn same_both_ways(cmd: &[&str], spill: &Path) -> Vec<u8> {
    let reference = run(cmd, None);
    let mut args = cmd.to_vec();
    args.extend([
        "--batch-memory",
        TINY,
        "--spill-dir",
        spill.to_str().unwrap(),
    ]);
    let small = run(&args, None);
    assert_eq!(small.code, reference.code, "{}", small.stderr);
    assert_eq!(messages(&small.stderr), messages(&reference.stderr));
    assert!(
        small.stdout == reference.stdout,
        "{cmd:?}: spilled output differs from the in-memory output"
    );
    assert!(empty(spill), "spill directory left behind");
    reference.stdout
}

#[test]
fn spilled_batch_equals_in_memory_on_ndjson_s3_files_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let spill = tempfile::tempdir().unwrap();
    let trail = generated(dir.path());
    let t = trail.to_str().unwrap();
    let out = same_both_ways(&["enrich", "-q", t], spill.path());
    assert_eq!(out.iter().filter(|&&c| c == b'\n').count(), 20000);
    // The fast path never touches the spill directory; the tiny budget does.
    let missing = dir.path().join("no/such/dir");
    let m = missing.to_str().unwrap();
    let o = run(&["enrich", "-q", t, "--spill-dir", m], None);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stdout, out);
    let o = run(
        &["enrich", "-q", t, "--spill-dir", m, "--batch-memory", TINY],
        None,
    );
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("spill directory") && o.stderr.contains("no/such/dir"),
        "{}",
        o.stderr
    );
    // The same records as S3 delivery files, plain and gzipped.
    let tree = dir.path().join("tree");
    awslogs_tree(&trail, &tree);
    let tr = tree.to_str().unwrap();
    let out = same_both_ways(&["enrich", "-q", tr], spill.path());
    assert_eq!(out.iter().filter(|&&c| c == b'\n').count(), 20000);
    same_both_ways(&["report", tr, "--format", "json"], spill.path());
    same_both_ways(&["report", t], spill.path());
}

#[test]
fn spilled_batch_keeps_messages_and_skips_files_that_fail_midway() {
    let dir = tempfile::tempdir().unwrap();
    let spill = tempfile::tempdir().unwrap();
    let trail = generated(dir.path());
    let text = std::fs::read_to_string(&trail).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mix = dir.path().join("mix");
    std::fs::create_dir(&mix).unwrap();
    // NDJSON with junk, blank and CRLF lines and records without a time.
    let mut a = String::new();
    for (i, l) in lines[..3000].iter().enumerate() {
        if i % 97 == 0 {
            a.push_str("not json\n");
        }
        if i % 89 == 0 {
            a.push('\n');
        }
        if i % 83 == 0 {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("eventTime");
            a.push_str(&format!("{v}\n"));
            continue;
        }
        a.push_str(l);
        a.push_str(if i % 7 == 0 { "\r\n" } else { "\n" });
    }
    std::fs::write(mix.join("a.jsonl"), a).unwrap();
    // S3 delivery files written one per line.
    let b: Vec<String> = lines[3000..6000]
        .chunks(50)
        .map(|c| format!("{{\"Records\":[{}]}}", c.join(",")))
        .collect();
    std::fs::write(mix.join("b.jsonl"), b.join("\n\n")).unwrap();
    // A damaged S3 file: its complete records, then one error.
    let d = format!("{{\"Records\":[{}]}}", lines[7000..8000].join(",\n"));
    std::fs::write(mix.join("d.json"), &d[..d.len() * 2 / 3]).unwrap();
    // A gzipped NDJSON file cut short: an error after some records were
    // read (and spilled); none of its records may come out.
    let e = gz((lines[8000..12000].join("\n") + "\n").as_bytes());
    std::fs::write(mix.join("e.jsonl.gz"), &e[..e.len() * 3 / 4]).unwrap();
    std::fs::write(
        mix.join("f.jsonl.gz"),
        gz((lines[12000..20000].join("\n") + "\n").as_bytes()),
    )
    .unwrap();
    // A broken first line after blank lines, then NDJSON.
    std::fs::write(
        mix.join("g.jsonl"),
        format!("\n\n  \n{{\"a\":1,\"b\"\n{}\n", lines[100..300].join("\n")),
    )
    .unwrap();
    // A pretty-printed array and a Firehose concatenation.
    let arr: Vec<serde_json::Value> = lines[6000..7000]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    std::fs::write(
        mix.join("c.json"),
        serde_json::to_string_pretty(&arr).unwrap(),
    )
    .unwrap();
    std::fs::write(mix.join("h.json"), lines[300..500].concat()).unwrap();
    let m = mix.to_str().unwrap();
    let out = same_both_ways(&["enrich", m, "/nonexistent/x.json"], spill.path());
    let o = run(&["enrich", "-q", m], None);
    assert_eq!(o.code, 1);
    assert_eq!(o.stdout, out);
    assert!(o.stderr.contains("e.jsonl.gz"), "{}", o.stderr);
}

#[test]
fn spill_directory_is_removed_when_the_output_fails() {
    let dir = tempfile::tempdir().unwrap();
    let spill = tempfile::tempdir().unwrap();
    let trail = generated(dir.path());
    if !Path::new("/dev/full").exists() {
        return;
    }
    let o = run(
        &[
            "enrich",
            "-q",
            trail.to_str().unwrap(),
            "-o",
            "/dev/full",
            "--batch-memory",
            TINY,
            "--spill-dir",
            spill.path().to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("/dev/full"), "{}", o.stderr);
    assert!(empty(spill.path()), "spill directory left behind");
}

#[test]
fn batch_memory_takes_suffixes_and_refuses_nonsense() {
    let o = run(&["enrich", "--batch-memory", "12X", "-"], Some(b""));
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("12X"), "{}", o.stderr);
    let o = run(
        &["enrich", "--batch-memory", "1G", "--order", "time", "-"],
        Some(b"{\"a\":1}\n"),
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = run(&["enrich", "--help"], None);
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("--batch-memory") && s.contains("--spill-dir"),
        "{s}"
    );
}

/// Input that cannot be read twice (stdin) is copied to the spill directory
/// past the budget, and a file that fails part way after that copy began is
/// taken back out of it: the same bytes as in memory, and as the same
/// records given as files.
#[test]
fn spilled_batch_copies_stdin_and_takes_back_a_file_that_fails() {
    let dir = tempfile::tempdir().unwrap();
    let spill = tempfile::tempdir().unwrap();
    let trail = generated(dir.path());
    let text = std::fs::read_to_string(&trail).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let stdin = lines[..8000].join("\n") + "\n";
    let cut = gz((lines[8000..14000].join("\n") + "\n").as_bytes());
    let cut_path = dir.path().join("cut.jsonl.gz");
    std::fs::write(&cut_path, &cut[..cut.len() * 3 / 4]).unwrap();
    let rest = dir.path().join("rest.jsonl");
    std::fs::write(&rest, lines[14000..].join("\n") + "\n").unwrap();
    let first = dir.path().join("first.jsonl");
    std::fs::write(&first, &stdin).unwrap();
    let (c, r) = (cut_path.to_str().unwrap(), rest.to_str().unwrap());
    let sp = spill.path().to_str().unwrap();
    // The same records as files (read twice) …
    let files = run(&["enrich", first.to_str().unwrap(), c, r], None);
    assert_eq!(files.code, 1, "{}", files.stderr);
    // … and with the first of them on stdin, in memory and spilled.
    for budget in ["512M", TINY, "1M", "24M"] {
        let o = run(
            &[
                "enrich",
                "--order",
                "time",
                "-",
                c,
                r,
                "--batch-memory",
                budget,
                "--spill-dir",
                sp,
            ],
            Some(stdin.as_bytes()),
        );
        assert_eq!(o.code, 1, "{budget}: {}", o.stderr);
        assert!(o.stderr.contains("cut.jsonl.gz"), "{}", o.stderr);
        assert!(o.stdout == files.stdout, "{budget}: output differs");
        assert!(empty(spill.path()), "spill directory left behind");
    }
    // A cut-short file read after stdin's copy began, then more of stdin's
    // kind: rolled back inside the copy.
    let o = run(
        &[
            "enrich",
            "--order",
            "time",
            r,
            "-",
            c,
            "--batch-memory",
            TINY,
            "--spill-dir",
            sp,
        ],
        Some(stdin.as_bytes()),
    );
    let f = run(&["enrich", r, first.to_str().unwrap(), c], None);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stdout == f.stdout, "output differs");
    assert!(empty(spill.path()), "spill directory left behind");
}
