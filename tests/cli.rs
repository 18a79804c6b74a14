//! End-to-end tests of the `credlineage` command as a user runs it: state files, stdin, gzip, config, bad inputs, the generator.

mod common;

use common::cli as run;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn annotations(b: &[u8]) -> Vec<serde_json::Value> {
    b.split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice::<serde_json::Value>(l).unwrap()["credlineage"].clone())
        .collect()
}

#[test]
fn help_names_the_commands_and_flags() {
    let o = run(&["--help"], None);
    assert_eq!(o.code, 0);
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(s.contains("enrich") && s.contains("generate"), "{s}");
    let o = run(&["enrich", "--help"], None);
    let s = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--state",
        "--order",
        "--config",
        "--known-cidr",
        "--aws-ip-ranges",
        "--output",
    ] {
        assert!(s.contains(flag), "enrich --help lacks {flag}: {s}");
    }
}

#[test]
fn state_file_carries_lineage_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let lines: Vec<String> = std::fs::read_to_string(fixture("scenarios.jsonl"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let (a, b) = (lines[..6].join("\n"), lines[6..9].join("\n"));
    let state = dir.path().join("state.bin");
    let s = state.to_str().unwrap();
    let o = run(&["enrich", "--state", s, "-"], Some(a.as_bytes()));
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(state.exists());
    let o = run(&["enrich", "--state", s, "-"], Some(b.as_bytes()));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let ann = annotations(&o.stdout);
    // The new long-term key, created by the depth-2 session of the first run.
    assert_eq!(ann[2]["lineage_root"], "AKIAQXAMPLEBACKDOOR1");
    assert_eq!(ann[2]["created_by"]["lineage_root"], "AKIAQXAMPLEROOTKEY01");
    // The chain built in the first run continues.
    assert_eq!(ann[1]["lineage_depth"], 3);
    // Saved atomically: no temporary file left; no token inside.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let bytes = std::fs::read(&state).unwrap();
    assert!(!bytes.windows(16).any(|w| w == b"IQoJb3JpZ2luX2Vj"));
}

#[test]
fn corrupt_state_file_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.bin");
    std::fs::write(&state, b"CREDLINEAGE-STATE\nnot really").unwrap();
    let o = run(
        &["enrich", "--state", state.to_str().unwrap(), "-"],
        Some(b"{}\n"),
    );
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("snapshot refused"), "{}", o.stderr);
    assert_eq!(
        std::fs::read(&state).unwrap(),
        b"CREDLINEAGE-STATE\nnot really"
    );
}

#[test]
fn gzip_on_stdin_and_output_file() {
    let gz = std::fs::read(
        fixture("AWSLogs/017622104382/CloudTrail/us-east-1/2024/08/02/017622104382_CloudTrail_us-east-1_20240802T0825Z_steal.json.gz"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    let o = run(&["enrich", "-o", out.to_str().unwrap()], Some(&gz));
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.is_empty());
    assert_eq!(annotations(&std::fs::read(out).unwrap()).len(), 25);
}

#[test]
fn unreadable_file_is_named_and_the_run_goes_on() {
    let o = run(
        &[
            "enrich",
            "/nonexistent/trail.json",
            fixture("scenarios.jsonl").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("/nonexistent/trail.json"), "{}", o.stderr);
    assert_eq!(annotations(&o.stdout).len(), 40);
    let o = run(
        &["enrich", "--order", "stream", "/nonexistent/x.json.gz"],
        None,
    );
    assert_eq!(o.code, 1);
    // A corrupt gzip file: named, skipped.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json.gz");
    std::fs::write(&bad, [0x1f, 0x8b, 8, 0, 1, 2, 3]).unwrap();
    let o = run(&["enrich", bad.to_str().unwrap()], None);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("bad.json.gz"), "{}", o.stderr);
}

#[test]
fn config_file_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.json");
    std::fs::write(
        &cfg,
        br#"{"namespace":"cl","known_cidrs":["45.33.32.0/24"]}"#,
    )
    .unwrap();
    let o = run(
        &[
            "enrich",
            "--config",
            cfg.to_str().unwrap(),
            fixture("scenarios.jsonl").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let first: serde_json::Value =
        serde_json::from_slice(o.stdout.split(|&c| c == b'\n').next().unwrap()).unwrap();
    assert!(first.get("credlineage").is_none());
    assert_eq!(first["cl"]["v"], 1);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        !text.contains("new_ip_for_instance"),
        "45.33.32.156 is a known CIDR now"
    );
    // Flatten via flag.
    let o = run(
        &[
            "enrich",
            "--flatten",
            "cl_",
            fixture("scenarios.jsonl").to_str().unwrap(),
        ],
        None,
    );
    let first: serde_json::Value =
        serde_json::from_slice(o.stdout.split(|&c| c == b'\n').next().unwrap()).unwrap();
    assert_eq!(first["cl_lineage_root"], "AKIAQXAMPLEROOTKEY01");
    // A typo in the config is an error, not a silent default.
    std::fs::write(&cfg, br#"{"namespcae":"cl"}"#).unwrap();
    let o = run(
        &["enrich", "--config", cfg.to_str().unwrap(), "-"],
        Some(b""),
    );
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("namespcae"), "{}", o.stderr);
}

#[test]
fn aws_ip_ranges_file_enables_outside_aws() {
    let dir = tempfile::tempdir().unwrap();
    let ranges = dir.path().join("ip-ranges.json");
    std::fs::write(&ranges, br#"{"prefixes":[{"ip_prefix":"54.200.0.0/16"},{"ip_prefix":"3.5.0.0/16"}],"ipv6_prefixes":[]}"#).unwrap();
    let o = run(
        &[
            "enrich",
            "--aws-ip-ranges",
            ranges.to_str().unwrap(),
            fixture("scenarios.jsonl").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let a = annotations(&o.stdout);
    assert_eq!(a[20]["offhost_reason"], "outside_aws", "{}", a[20]);
    assert_eq!(a[17]["ec2_cred_offhost"], false);
}

#[test]
fn aws_ip_ranges_builtin_by_default_off_or_replaced() {
    let o = run(&["enrich", "--help"], None);
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("built-in snapshot 1787411825, 2026-08-22-15-17-05"),
        "{s}"
    );
    let scenarios = fixture("scenarios.jsonl");
    let scenarios = scenarios.to_str().unwrap();
    // Record 21: instance credentials from 45.33.32.156, public and not AWS's.
    let reason = |args: &[&str]| {
        let o = run(args, None);
        assert_eq!(o.code, 0, "{}", o.stderr);
        annotations(&o.stdout)[20]["offhost_reason"].clone()
    };
    assert_eq!(reason(&["enrich", scenarios]), "outside_aws");
    assert_eq!(
        reason(&["enrich", "--aws-ip-ranges", "builtin", scenarios]),
        "outside_aws"
    );
    assert_eq!(
        reason(&["enrich", "--aws-ip-ranges", "off", scenarios]),
        "new_ip_for_instance"
    );
    // The flag overrides the configuration file.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.json");
    std::fs::write(&cfg, br#"{"aws_ip_ranges":"off"}"#).unwrap();
    let cfg = cfg.to_str().unwrap();
    assert_eq!(
        reason(&["enrich", "--config", cfg, scenarios]),
        "new_ip_for_instance"
    );
    assert_eq!(
        reason(&[
            "enrich",
            "--config",
            cfg,
            "--aws-ip-ranges",
            "builtin",
            scenarios
        ]),
        "outside_aws"
    );
    // A file without prefixes would put every public address outside AWS.
    let empty = dir.path().join("ip-ranges.json");
    std::fs::write(
        &empty,
        br#"{"syncToken":"1","prefixes":[],"ipv6_prefixes":[]}"#,
    )
    .unwrap();
    let o = run(
        &["enrich", "--aws-ip-ranges", empty.to_str().unwrap(), "-"],
        Some(b""),
    );
    assert_eq!(o.code, 2);
    assert!(
        o.stderr
            .contains("ip-ranges.json: AWS ip-ranges file: no prefixes"),
        "{}",
        o.stderr
    );
}

#[test]
fn generate_is_deterministic_and_enrichable() {
    let a = run(&["generate", "-n", "2000", "--seed", "9"], None);
    let b = run(&["generate", "-n", "2000", "--seed", "9"], None);
    let c = run(&["generate", "-n", "2000", "--seed", "10"], None);
    assert_eq!(a.code, 0);
    assert_eq!(a.stdout, b.stdout);
    assert_ne!(a.stdout, c.stdout);
    let o = run(&["enrich"], Some(&a.stdout));
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(annotations(&o.stdout).len(), 2000);
    assert!(
        o.stderr.contains("2000 records: 2000 annotated"),
        "{}",
        o.stderr
    );
}

#[test]
fn stream_and_time_order_agree_on_sorted_input_except_lookahead() {
    let trail = run(&["generate", "-n", "3000", "--seed", "3"], None);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("trail.jsonl");
    std::fs::write(&f, &trail.stdout).unwrap();
    let t = run(&["enrich", f.to_str().unwrap()], None);
    let s = run(&["enrich", "--order", "stream", f.to_str().unwrap()], None);
    let (ta, sa) = (annotations(&t.stdout), annotations(&s.stdout));
    assert_eq!(ta.len(), sa.len());
    for (x, y) in ta.iter().zip(&sa) {
        assert_eq!(x["lineage_root"], y["lineage_root"]);
        assert_eq!(x["session_fingerprint"], y["session_fingerprint"]);
    }
}

/// The non-empty lines of an NDJSON text.
fn non_empty_lines(text: &[u8]) -> Vec<&[u8]> {
    text.split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .collect()
}

/// `--order stream` on a file reads NDJSON line by line (memory does not
/// grow with the file) and gives exactly what the same bytes give on stdin,
/// blank lines, S3 delivery lines, CRLF and unreadable lines included; files
/// that are not NDJSON (a multi-line S3 file, an array) are read whole and
/// unrolled.
#[test]
fn stream_order_on_files_equals_stdin() {
    let stratus = std::fs::read(fixture("stratus.jsonl")).unwrap();
    let lines = non_empty_lines(&stratus);
    let mut mixed = Vec::new();
    for (i, l) in lines.iter().take(40).enumerate() {
        mixed.extend_from_slice(l);
        mixed.extend_from_slice(if i % 7 == 3 { b"\r\n" } else { b"\n" });
        if i == 5 {
            mixed.extend_from_slice(b"\n  \nnot json at all\n");
            mixed.extend_from_slice(b"{\"Records\":[");
            mixed.extend_from_slice(lines[0]);
            mixed.extend_from_slice(b",");
            mixed.extend_from_slice(lines[1]);
            mixed.extend_from_slice(b"]}\n");
        }
    }
    let s3 = [
        b"{\"Records\":[".as_slice(),
        lines[2],
        b",\n",
        lines[3],
        b"]}",
    ]
    .concat();
    let array = [b"[".as_slice(), lines[4], b",", lines[5], b"]\n"].concat();
    let dir = tempfile::tempdir().unwrap();
    for (name, doc) in [
        ("mixed.jsonl", &mixed),
        ("s3.json", &s3),
        ("array.json", &array),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, doc).unwrap();
        let from_file = run(&["enrich", "--order", "stream", p.to_str().unwrap()], None);
        if name != "mixed.jsonl" {
            // Read whole and unrolled: two annotated records.
            let a = annotations(&from_file.stdout);
            assert_eq!(a.len(), 2, "{name}");
            assert!(a.iter().all(|x| x["v"] == 1), "{name}");
            continue;
        }
        let from_stdin = run(&["enrich", "--order", "stream", "-"], Some(doc));
        assert!(
            from_file.stdout == from_stdin.stdout,
            "{name}: file and stdin differ"
        );
        // The unreadable line is named by its line number (line 9).
        assert!(from_file.stderr.contains(":9:"), "{}", from_file.stderr);
        assert_eq!(from_file.code, 1);
    }
}

/// Lines are enriched straight from the read buffer: a record longer than
/// the 1 MiB buffer (it spans several reads), CRLF endings and a last line
/// without a newline come out exactly as the library enriches each record.
#[test]
fn stdin_lines_spanning_reads_equal_the_library() {
    let stratus = std::fs::read(fixture("stratus.jsonl")).unwrap();
    let lines = &non_empty_lines(&stratus)[..30];
    // A 2.5 MB record: the first one with a huge extra member before its end.
    let big = [
        &lines[0][..lines[0].len() - 1],
        b",\"padding\":\"",
        "x".repeat(2_500_000).as_bytes(),
        b"\"}",
    ]
    .concat();
    let mut records: Vec<&[u8]> = lines.to_vec();
    records.insert(10, &big);
    let mut input = Vec::new();
    for (i, r) in records.iter().enumerate() {
        input.extend_from_slice(r);
        if i + 1 < records.len() {
            input.extend_from_slice(if i % 4 == 1 { b"\r\n" } else { b"\n" });
        }
    }
    let mut e = credlineage::Enricher::new(credlineage::Config::default()).unwrap();
    let mut want = Vec::new();
    for r in &records {
        want.extend_from_slice(&e.process(r, None));
        want.push(b'\n');
    }
    let got = run(&["enrich", "-"], Some(&input));
    assert_eq!(got.code, 0, "{}", got.stderr);
    assert_eq!(got.stdout.len(), want.len());
    assert!(
        got.stdout == want,
        "stdin output differs from the library's"
    );
    assert_eq!(annotations(&got.stdout).len(), records.len());
}

/// Hostile stdin: random bytes (NUL, `\r`, control and non-UTF-8 bytes),
/// truncated records, blank lines and real records, cut by the line reader
/// wherever its reads end. Every non-blank line comes out exactly once,
/// byte for byte what the library makes of it (annotated, or passed
/// through unchanged).
#[test]
fn stdin_hostile_lines_each_come_out_once() {
    let stratus = std::fs::read(fixture("stratus.jsonl")).unwrap();
    let real = non_empty_lines(&stratus);
    let mut rng = fastrand::Rng::with_seed(11);
    let mut lines: Vec<Vec<u8>> = vec![real[0].to_vec()];
    for _ in 0..600 {
        let r = real[rng.usize(..real.len())];
        lines.push(match rng.u8(0..6) {
            0 => (0..rng.usize(0..3000))
                .map(|_| rng.u8(..))
                .filter(|&b| b != b'\n')
                .collect(),
            1 => r[..rng.usize(..r.len())].to_vec(),
            2 => b" \t\r".to_vec(),
            3 => [r, b"\r"].concat(),
            _ => r.to_vec(),
        });
    }
    let input: Vec<u8> = lines.join(&b'\n');
    let mut e = credlineage::Enricher::new(credlineage::Config::default()).unwrap();
    let mut want = Vec::new();
    for l in &lines {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        if l.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        want.extend_from_slice(&e.process(l, None));
        want.push(b'\n');
    }
    let got = run(&["enrich", "-"], Some(&input));
    assert!(
        got.stdout == want,
        "stdin output differs from the library's"
    );
    assert_eq!(got.code, 1, "malformed lines are reported");
}

/// Issue 13: a gzip bomb is refused at --max-document-bytes (counted
/// decompressed) in both orders, and the files after it are still read.
#[test]
fn a_gzip_bomb_is_skipped_at_the_document_cap() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let bomb = dir.path().join("a-bomb.json.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let chunk = vec![b' '; 1 << 20];
    for _ in 0..32 {
        gz.write_all(&chunk).unwrap();
    }
    gz.write_all(b"[]").unwrap();
    std::fs::write(&bomb, gz.finish().unwrap()).unwrap();
    let good = dir.path().join("b-good.jsonl");
    std::fs::copy(fixture("scenarios.jsonl"), &good).unwrap();
    for order in ["stream", "time"] {
        let o = run(
            &[
                "enrich",
                "--order",
                order,
                "--max-document-bytes",
                "4M",
                bomb.to_str().unwrap(),
                good.to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(o.code, 1, "{order}: {}", o.stderr);
        assert!(
            o.stderr.contains("larger than --max-document-bytes"),
            "{}",
            o.stderr
        );
        assert_eq!(
            o.stdout
                .split(|&c| c == b'\n')
                .filter(|l| !l.is_empty())
                .count(),
            40
        );
    }
}

/// Issue 13: a line over --max-line-bytes is named, counted and skipped,
/// never held whole; the lines after it are enriched (stdin and files,
/// both orders).
#[test]
fn a_line_over_the_line_cap_is_skipped_and_reading_goes_on() {
    let mut input = vec![b'a'; 3 << 20];
    input.push(b'\n');
    input.extend(std::fs::read(fixture("scenarios.jsonl")).unwrap());
    let o = run(&["enrich", "--max-line-bytes", "64K", "-"], Some(&input));
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(
        o.stderr.contains("<stdin>:1: longer than --max-line-bytes"),
        "{}",
        o.stderr
    );
    assert_eq!(annotations(&o.stdout).len(), 40);
    // The long line second, in a file read in both orders.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("t.jsonl");
    let fx = std::fs::read(fixture("scenarios.jsonl")).unwrap();
    let first = fx.split_inclusive(|&c| c == b'\n').next().unwrap().to_vec();
    let mut data = first.clone();
    data.extend(vec![b'b'; 3 << 20]);
    data.push(b'\n');
    data.extend(&fx[first.len()..]);
    std::fs::write(&f, &data).unwrap();
    for order in ["stream", "time"] {
        let o = run(
            &[
                "enrich",
                "--order",
                order,
                "--max-line-bytes",
                "64K",
                f.to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(o.code, 1, "{order}: {}", o.stderr);
        assert!(
            o.stderr.contains(":2: longer than --max-line-bytes"),
            "{order}: {}",
            o.stderr
        );
        assert_eq!(annotations(&o.stdout).len(), 40, "{order}");
    }
}

/// Issue 13: symlink loops in an input directory: each directory is read
/// once (one loop gave every record 41 times; two loops ran exponentially).
#[test]
fn symlink_loops_in_an_input_directory_are_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("trail");
    std::fs::create_dir_all(root.join("a/b")).unwrap();
    std::fs::copy(fixture("scenarios.jsonl"), root.join("a/b/t.jsonl")).unwrap();
    std::os::unix::fs::symlink("..", root.join("a/b/up")).unwrap();
    std::os::unix::fs::symlink("../..", root.join("a/b/upup")).unwrap();
    std::os::unix::fs::symlink(".", root.join("a/self")).unwrap();
    let t0 = std::time::Instant::now();
    let o = run(&["enrich", "--quiet", root.to_str().unwrap()], None);
    assert!(t0.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(annotations(&o.stdout).len(), 40);
}

/// Issue 13: a FIFO or a device as the state file is refused, not read
/// (it hung or was read whole); a symlinked state path updates its target.
#[test]
fn state_file_type_is_checked_and_a_symlink_is_followed() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let fx = fixture("scenarios.jsonl");
    for bad in [fifo.to_str().unwrap(), "/dev/zero"] {
        let t0 = std::time::Instant::now();
        let o = run(&["enrich", "--state", bad, fx.to_str().unwrap()], None);
        assert!(t0.elapsed() < std::time::Duration::from_secs(10));
        assert_eq!(o.code, 2, "{bad}: {}", o.stderr);
        assert!(o.stderr.contains("not a regular file"), "{}", o.stderr);
    }
    let real = dir.path().join("real.bin");
    let link = dir.path().join("link.bin");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let o = run(
        &[
            "enrich",
            "--quiet",
            "--state",
            link.to_str().unwrap(),
            fx.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(std::fs::metadata(&real).unwrap().len() > 0);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp."))
        .collect();
    assert!(left.is_empty());
}

/// Issue 13: each crash during a save left an orphan temporary file beside
/// the state file (up to 313 MB). They are removed at start and before each
/// save — only ours (`.<name>.tmp.<letters or digits>`), only regular files,
/// only when unmodified for 15 minutes (a live save keeps writing its own).
#[test]
fn stale_temporary_state_files_are_removed_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let state = d.join("state.bin");
    let fx = fixture("scenarios.jsonl");
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let aged = |p: &Path| {
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
    };
    // Stale: ours, old (the current random form and an older version's PID form).
    let stale = [
        d.join(".state.bin.tmp.Ab3xYz"),
        d.join(".state.bin.tmp.4242"),
    ];
    for p in &stale {
        std::fs::write(p, vec![0u8; 4096]).unwrap();
        aged(p);
    }
    // Kept: a fresh one (a live save), another file's, names not ours, a
    // symlink and a directory of our pattern (never followed or removed).
    let victim = d.join("victim");
    std::fs::write(&victim, b"keep me").unwrap();
    aged(&victim);
    let kept = [
        d.join(".state.bin.tmp.Fresh1"),
        d.join(".other.bin.tmp.Ab3xYz"),
        d.join(".state.bin.tmp.has-dash"),
        d.join("state.bin.tmp.Ab3xYz"),
        d.join(".state.bin.tmp."),
    ];
    for (i, p) in kept.iter().enumerate() {
        std::fs::write(p, b"x").unwrap();
        if i > 0 {
            aged(p);
        }
    }
    let link = d.join(".state.bin.tmp.Link01");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let sub = d.join(".state.bin.tmp.Dir001");
    std::fs::create_dir(&sub).unwrap();
    let o = run(
        &[
            "enrich",
            "--quiet",
            "--state",
            state.to_str().unwrap(),
            fx.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stderr.contains("removed 2 stale temporary state files"),
        "{}",
        o.stderr
    );
    for p in &stale {
        assert!(!p.exists(), "{} left", p.display());
    }
    for p in kept.iter().chain([&victim, &sub]) {
        assert!(p.exists(), "{} removed", p.display());
    }
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
    assert!(std::fs::metadata(&state).unwrap().len() > 0);
}
