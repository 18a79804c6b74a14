//! A new user's first hour with the built `credlineage` (issue 13): state that could not be saved is refused at start, error messages with one prefix and a hint to act on, inputs that are skipped or not JSON said so, `--help` that matches what each command reads.

mod common;

use common::cli as run;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn out_lines(b: &[u8]) -> usize {
    b.split(|&c| c == b'\n').filter(|l| !l.is_empty()).count()
}

// ---------------------------------------------------------------------------
// 1. A state path that cannot be written is refused before any record is read
// ---------------------------------------------------------------------------

/// State paths the state could never be saved to: a missing directory, a
/// "directory" that is a file, a directory at the path itself.
fn unwritable_state_paths(dir: &Path) -> Vec<PathBuf> {
    let file = dir.join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let sub = dir.join("a-directory");
    std::fs::create_dir(&sub).unwrap();
    vec![
        dir.join("missing-dir").join("state.bin"),
        file.join("state.bin"),
        sub,
    ]
}

#[test]
fn enrich_refuses_an_unwritable_state_path_before_reading_anything() {
    let dir = tempfile::tempdir().unwrap();
    let input = std::fs::read(fixture("scenarios.jsonl")).unwrap();
    for state in unwritable_state_paths(dir.path()) {
        let s = state.to_str().unwrap();
        for args in [
            vec!["enrich", "--state", s, "-"],
            vec![
                "enrich",
                "--state",
                s,
                fixture("scenarios.jsonl").to_str().unwrap(),
            ],
        ] {
            let o = run(&args, Some(&input));
            assert_eq!(o.code, 2, "{args:?}: {}", o.stderr);
            assert!(
                o.stderr.contains(&format!("cannot save state to {s}: ")),
                "{args:?}: {}",
                o.stderr
            );
            assert!(o.stdout.is_empty(), "{args:?}: records were written");
            assert!(!o.stderr.contains("records:"), "{args:?}: {}", o.stderr);
        }
    }
    // The check leaves nothing behind, and a writable path still works.
    let state = dir.path().join("state.bin");
    let o = run(
        &["enrich", "--state", state.to_str().unwrap(), "-"],
        Some(&input),
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(state.is_file());
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["a-directory", "plain-file", "state.bin"]);
}

#[test]
fn report_only_reads_the_state_so_does_not_need_to_write_it() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("missing-dir").join("state.bin");
    let o = run(
        &[
            "report",
            "--state",
            state.to_str().unwrap(),
            fixture("scenarios.jsonl").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("40 records: 40 annotated"), "{text}");
    assert!(!state.exists());
}

// ---------------------------------------------------------------------------
// 2. One prefix per error
// ---------------------------------------------------------------------------

#[test]
fn configuration_and_snapshot_errors_have_one_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("badcfg.json");
    std::fs::write(&cfg, br#"{"bogus": 1}"#).unwrap();
    let o = run(
        &["enrich", "--config", cfg.to_str().unwrap(), "-"],
        Some(b""),
    );
    assert_eq!(o.code, 2, "{}", o.stderr);
    let want = format!(
        "credlineage: invalid configuration: {}: unknown field",
        cfg.display()
    );
    assert!(o.stderr.contains(&want), "{}", o.stderr);
    assert_eq!(
        o.stderr.matches("invalid configuration").count(),
        1,
        "{}",
        o.stderr
    );

    let ranges = dir.path().join("ranges.json");
    std::fs::write(&ranges, b"[1, 2]").unwrap();
    let o = run(
        &["enrich", "--aws-ip-ranges", ranges.to_str().unwrap(), "-"],
        Some(b""),
    );
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert_eq!(
        o.stderr.matches("invalid configuration").count(),
        1,
        "{}",
        o.stderr
    );

    let bad = dir.path().join("bad.bin");
    std::fs::write(&bad, b"junk").unwrap();
    for cmd in ["enrich", "report"] {
        let o = run(&[cmd, "--state", bad.to_str().unwrap(), "-"], Some(b""));
        assert_eq!(o.code, 2, "{cmd}: {}", o.stderr);
        let want = format!("credlineage: snapshot refused: {}: ", bad.display());
        assert!(o.stderr.contains(&want), "{cmd}: {}", o.stderr);
        assert_eq!(
            o.stderr.matches("snapshot refused").count(),
            1,
            "{}",
            o.stderr
        );
    }
}

// ---------------------------------------------------------------------------
// 4. A missing input fails before any report
// ---------------------------------------------------------------------------

#[test]
fn report_of_a_missing_or_unreadable_input_prints_no_report() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-file.json");
    let scen = fixture("scenarios.jsonl");
    for args in [
        vec!["report", missing.to_str().unwrap()],
        vec!["report", scen.to_str().unwrap(), missing.to_str().unwrap()],
        vec!["report", "--format", "json", missing.to_str().unwrap()],
    ] {
        let o = run(&args, None);
        assert_eq!(o.code, 1, "{args:?}: {}", o.stderr);
        assert!(o.stdout.is_empty(), "{args:?}: a report was printed");
        assert!(
            o.stderr.contains(&format!("{}: ", missing.display())),
            "{}",
            o.stderr
        );
        assert!(o.stderr.contains("no report"), "{}", o.stderr);
    }
    // Found unreadable only while reading (a corrupt gzip file): no report either.
    let bad = dir.path().join("bad.json.gz");
    std::fs::write(&bad, [0x1f, 0x8b, 8, 0, 1, 2, 3]).unwrap();
    let o = run(
        &["report", scen.to_str().unwrap(), bad.to_str().unwrap()],
        None,
    );
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stdout.is_empty(), "a partial report was printed");
    assert!(o.stderr.contains("bad.json.gz"), "{}", o.stderr);
}

// ---------------------------------------------------------------------------
// 5. What a directory gives, and what it skips, is said
// ---------------------------------------------------------------------------

#[test]
fn empty_or_unsupported_directories_and_skipped_files_are_said() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("notes.txt"), b"hello\n").unwrap();
    std::fs::write(other.join("trail.csv"), b"a,b\n").unwrap();
    for d in [&empty, &other] {
        for cmd in ["enrich", "report"] {
            let o = run(&[cmd, d.to_str().unwrap()], None);
            assert_eq!(o.code, 1, "{cmd} {}: {}", d.display(), o.stderr);
            assert!(
                o.stderr
                    .contains(&format!("{}: no input file in this directory", d.display())),
                "{}",
                o.stderr
            );
        }
    }
    // A directory with records and other files: the records are read, the
    // others counted, and named with -v.
    let mixed = dir.path().join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    let scen = std::fs::read(fixture("scenarios.jsonl")).unwrap();
    std::fs::write(mixed.join("trail.log"), &scen).unwrap();
    std::fs::write(mixed.join("README.txt"), b"hello\n").unwrap();
    std::fs::write(mixed.join("trail.json.bak"), &scen).unwrap();
    let o = run(&["enrich", mixed.to_str().unwrap()], None);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(out_lines(&o.stdout), 40, ".log files are read");
    assert!(
        o.stderr
            .contains("2 files in input directories skipped (read: *.json, *.jsonl, *.ndjson, *.log, each also .gz); -v names them"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("README.txt"), "{}", o.stderr);
    for cmd in ["enrich", "report"] {
        let o = run(&[cmd, "-v", mixed.to_str().unwrap()], None);
        assert_eq!(o.code, 0, "{}", o.stderr);
        for name in ["README.txt", "trail.json.bak"] {
            assert!(
                o.stderr
                    .contains(&format!("skipped {}", mixed.join(name).display())),
                "{cmd}: {}",
                o.stderr
            );
        }
    }
    // A file named on the command line is read whatever its name.
    let o = run(
        &["enrich", mixed.join("trail.json.bak").to_str().unwrap()],
        None,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(out_lines(&o.stdout), 40);
    // --help lists exactly what a directory gives.
    let o = run(&["enrich", "--help"], None);
    let help = String::from_utf8_lossy(&o.stdout);
    for s in [
        "*.json",
        "*.jsonl",
        "*.ndjson",
        "*.log",
        ".gz",
        "-v, --verbose",
    ] {
        assert!(help.contains(s), "enrich --help lacks {s}: {help}");
    }
}

// ---------------------------------------------------------------------------
// 6. Binary data is named once and not written as records
// ---------------------------------------------------------------------------

/// Deterministic "random" bytes (xorshift).
fn noise(n: usize, mut x: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn binary_input_is_named_once_and_nothing_of_it_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let scen = fixture("scenarios.jsonl");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &noise(5000, 99)).unwrap();
    let gz_noise = gz.finish().unwrap();
    for (name, bytes) in [
        ("random.json.gz", noise(1000, 7)),
        ("random.jsonl", noise(20_000, 11)),
        ("noise-in-gzip.json.gz", gz_noise),
    ] {
        let f = dir.path().join(name);
        std::fs::write(&f, &bytes).unwrap();
        for order in ["time", "stream"] {
            let o = run(
                &[
                    "enrich",
                    "--order",
                    order,
                    scen.to_str().unwrap(),
                    f.to_str().unwrap(),
                ],
                None,
            );
            assert_eq!(o.code, 1, "{name} {order}: {}", o.stderr);
            assert_eq!(out_lines(&o.stdout), 40, "{name} {order}: junk was written");
            let said: Vec<&str> = o.stderr.lines().filter(|l| l.contains(name)).collect();
            assert_eq!(said.len(), 1, "{name} {order}: {}", o.stderr);
            assert!(said[0].contains("binary data"), "{}", said[0]);
            assert!(
                o.stderr.contains("40 records: 40 annotated"),
                "{}",
                o.stderr
            );
        }
        let o = run(&["enrich", "-"], Some(&bytes));
        assert_eq!(o.code, 1, "{name} stdin: {}", o.stderr);
        assert!(o.stdout.is_empty(), "{name} stdin: junk was written");
        assert_eq!(o.stderr.matches("<stdin>").count(), 1, "{}", o.stderr);
    }
    // Text with a damaged byte is still text: its lines are read and named.
    let o = run(
        &["enrich", fixture("hostile.jsonl").to_str().unwrap()],
        None,
    );
    assert!(o.stderr.contains("invalid UTF-8"), "{}", o.stderr);
}

// ---------------------------------------------------------------------------
// 7. Pretty-printed JSON on stdin
// ---------------------------------------------------------------------------

#[test]
fn pretty_printed_json_on_stdin_is_read_whole_or_gets_one_hint() {
    let rec = serde_json::json!({
        "eventVersion": "1.08", "eventTime": "2024-08-01T12:00:00Z",
        "eventSource": "s3.amazonaws.com", "eventName": "ListBuckets",
        "sourceIPAddress": "198.51.100.7",
        "userIdentity": {"type": "IAMUser", "accessKeyId": "AKIAQXAMPLEROOTKEY01",
                         "arn": "arn:aws:iam::111122223333:user/alice", "accountId": "111122223333"}
    });
    let pretty = serde_json::to_string_pretty(&rec).unwrap();
    // A document from its first line on: read whole, as a file would be.
    let doc = format!("{pretty}\n{pretty}\n");
    let o = run(&["enrich", "-"], Some(doc.as_bytes()));
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(out_lines(&o.stdout), 2);
    assert!(!o.stderr.contains("hint"), "{}", o.stderr);
    // NDJSON first, then a pretty-printed record: each of its lines is
    // passed through and named, and one hint says how to pass a document.
    let mixed = format!("{}\n{pretty}\n", serde_json::to_string(&rec).unwrap());
    let o = run(&["enrich", "-"], Some(mixed.as_bytes()));
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert_eq!(o.stderr.matches("hint:").count(), 1, "{}", o.stderr);
    assert!(
        o.stderr.contains("<stdin> is read as NDJSON") && o.stderr.contains("jq -c"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains("<stdin>:2: record 2: invalid JSON"),
        "{}",
        o.stderr
    );
    // Not for an NDJSON line that is simply not JSON.
    let o = run(&["enrich", "-"], Some(b"not json at all\n"));
    assert!(!o.stderr.contains("hint:"), "{}", o.stderr);
}

// ---------------------------------------------------------------------------
// 8. Records are named by file, line and position in their file
// ---------------------------------------------------------------------------

#[test]
fn records_are_numbered_from_one_within_their_file() {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.jsonl");
    std::fs::copy(fixture("scenarios.jsonl"), &first).unwrap();
    let lines: Vec<String> = std::fs::read_to_string(fixture("scenarios.jsonl"))
        .unwrap()
        .lines()
        .take(3)
        .map(String::from)
        .collect();
    // One S3 delivery file on one line: its third record is not an object.
    let s3 = dir.path().join("second.json");
    std::fs::write(
        &s3,
        format!(
            r#"{{"Records":[{},{},42,{}]}}"#,
            lines[0], lines[1], lines[2]
        ),
    )
    .unwrap();
    // NDJSON: line 2 is not JSON.
    let nd = dir.path().join("third.jsonl");
    std::fs::write(&nd, format!("{}\nnot json\n{}\n", lines[0], lines[1])).unwrap();
    for order in ["time", "stream"] {
        let o = run(
            &[
                "enrich",
                "--order",
                order,
                first.to_str().unwrap(),
                s3.to_str().unwrap(),
                nd.to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(o.code, 1, "{}", o.stderr);
        assert!(
            o.stderr
                .contains(&format!("{}:1: record 3: not a JSON object", s3.display())),
            "{order}: {}",
            o.stderr
        );
        assert!(
            o.stderr
                .contains(&format!("{}:2: record 2: invalid JSON", nd.display())),
            "{order}: {}",
            o.stderr
        );
    }
    // On stdin too; a blank line is no record, a non-CloudTrail object is one.
    let o = run(&["enrich", "-"], Some(b"{}\n\n[1]\nnope\n"));
    assert!(
        o.stderr.contains("<stdin>:3: record 2: not a JSON object"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains("<stdin>:4: record 3: invalid JSON"),
        "{}",
        o.stderr
    );
}

// ---------------------------------------------------------------------------
// 9. `report --help` shows only what report uses
// ---------------------------------------------------------------------------

#[test]
fn report_help_lists_only_the_flags_report_uses() {
    let help =
        |cmd: &str| String::from_utf8_lossy(&run(&[cmd, "--help"], None).stdout).into_owned();
    let report = help("report");
    for flag in [
        "--redact-session-tokens",
        "--flatten",
        "--namespace",
        "--quiet",
    ] {
        assert!(
            !report.contains(flag),
            "report --help lists {flag}: {report}"
        );
    }
    for flag in [
        "--state",
        "--config",
        "--known-cidr",
        "--aws-ip-ranges",
        "--format",
        "--order",
        "--verbose",
    ] {
        assert!(
            report.contains(flag),
            "report --help lacks {flag}: {report}"
        );
    }
    for cmd in ["enrich", "serve"] {
        let h = help(cmd);
        for flag in [
            "--redact-session-tokens",
            "--flatten",
            "--namespace",
            "--state",
            "--config",
        ] {
            assert!(h.contains(flag), "{cmd} --help lacks {flag}: {h}");
        }
    }
    // A report flag that is not one is a usage error.
    let o = run(&["report", "--flatten", "x_", "-"], Some(b""));
    assert_eq!(o.code, 2, "{}", o.stderr);
}

// ---------------------------------------------------------------------------
// 10. The README's first screen, ports and sizes
// ---------------------------------------------------------------------------

fn repo_text(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The README's set-up is two commands: install and a first look at the
/// bundled trail (what the tool finds, not raw records), and every test.
#[test]
fn readme_starts_with_install_and_first_look_then_every_test() {
    let readme = repo_text("README.md");
    let block = readme
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .unwrap();
    let cmds: Vec<&str> = block.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(cmds.len(), 2, "{block}");
    assert!(
        cmds[0].starts_with(
            "cargo install --locked --path . && credlineage report tests/fixtures/scenarios.jsonl"
        ),
        "{}",
        cmds[0]
    );
    assert!(cmds[1].starts_with("./scripts/test.sh"), "{}", cmds[1]);
    assert!(repo_text(".ci/run").contains("./scripts/test.sh"));
    // Where the install lands is said.
    let first_screen: String = readme.lines().take(40).collect::<Vec<_>>().join("\n");
    assert!(first_screen.contains("~/.cargo/bin"), "{first_screen}");
    // The first look shows a collision, off-host EC2 use and a deep chain.
    let o = run(
        &["report", fixture("scenarios.jsonl").to_str().unwrap()],
        None,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let r = String::from_utf8_lossy(&o.stdout);
    assert!(r.contains("== Key-ID collisions: 1 key(s) =="), "{r}");
    assert!(r.contains("== Off-host EC2 credential use: 2 =="), "{r}");
    assert!(r.contains("depth 3"), "{r}");
}

/// Every `--listen` / `--forward` example (README, docs/serve.md, the Vector
/// configurations, `--help`) uses the same two ports, so copying one next to
/// the shipped configuration connects.
#[test]
fn serve_examples_use_the_ports_of_the_vector_configurations() {
    let mut texts: Vec<(String, String)> =
        ["README.md", "docs/serve.md", "pipelines/vector/README.md"]
            .iter()
            .map(|f| (f.to_string(), repo_text(f)))
            .collect();
    let vdir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/vector");
    for e in std::fs::read_dir(&vdir).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "yaml") {
            texts.push((
                e.path().display().to_string(),
                std::fs::read_to_string(e.path()).unwrap(),
            ));
        }
    }
    let help = run(&["--help"], None);
    texts.push((
        "--help".into(),
        String::from_utf8_lossy(&help.stdout).into_owned(),
    ));
    let mut seen = 0;
    for (name, text) in &texts {
        for (flag, want) in [
            ("--listen ", "127.0.0.1:9400"),
            ("--forward ", "127.0.0.1:9401"),
        ] {
            for (i, _) in text.match_indices(flag) {
                let addr: String = text[i + flag.len()..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '`' && *c != '|')
                    .collect();
                // Placeholders and the free-port examples are not ports to connect.
                if !addr.chars().any(|c| c.is_ascii_digit()) || addr.ends_with(":0") {
                    continue;
                }
                seen += 1;
                assert_eq!(addr, want, "{name}: {flag}{addr}");
            }
        }
        for (i, _) in text.match_indices("address: ") {
            let addr: String = text[i + 9..]
                .chars()
                .take_while(|c| !c.is_whitespace())
                .collect();
            if addr.starts_with("127.0.0.1:") {
                assert!(
                    addr == "127.0.0.1:9400" || addr == "127.0.0.1:9401",
                    "{name}: {addr}"
                );
            }
        }
    }
    assert!(seen >= 6, "too few examples found: {seen}");
}

/// Artifact sizes change with every build: the README and docs do not state
/// them by hand (scripts/build-all.sh writes dist/SIZES.md; BENCHMARKS.md
/// keeps measured ones). jco's need for `"type": "module"` is said in the
/// text, not only in a code comment.
#[test]
fn docs_state_no_hand_written_artifact_sizes_and_jco_needs_an_es_module() {
    for f in [
        "README.md",
        "docs/component.md",
        "docs/fluent-bit.md",
        "docs/javascript.md",
        "docs/serve.md",
    ] {
        let t = repo_text(f);
        for pat in [
            " KB)",
            " KB,",
            " B;",
            " B)",
            "| bytes |",
            "bytes**",
            "(last build",
        ] {
            assert!(!t.contains(pat), "{f} states a size ({pat:?})");
        }
    }
    let comp = repo_text("docs/component.md");
    let prose: String = comp.split("```").step_by(2).collect::<Vec<_>>().join("\n");
    assert!(
        prose.contains(r#"must say `"type": "module"`"#),
        "docs/component.md: jco's ES module requirement is not stated in the text"
    );
}
