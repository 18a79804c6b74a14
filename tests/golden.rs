//! Golden tests: run the built `credlineage` CLI on the fixture inputs and compare with the checked-in expected output.
//!
//! Regenerate after an intended change with `UPDATE_GOLDEN=1 cargo test --test golden`
//! and review the diff.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

struct Run {
    stdout: Vec<u8>,
    stderr: String,
    code: i32,
}

fn cli(args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_credlineage"));
    c.args(args).current_dir(fixtures());
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("run credlineage");
    if let Some(input) = stdin {
        let mut si = child.stdin.take().unwrap();
        si.write_all(input).unwrap();
    }
    let o = child.wait_with_output().unwrap();
    Run {
        stdout: o.stdout,
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        code: o.status.code().unwrap_or(-1),
    }
}

fn golden(name: &str, actual: &[u8]) {
    let path = fixtures().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if expected != actual {
        let e = String::from_utf8_lossy(&expected);
        let a = String::from_utf8_lossy(actual);
        for (i, (el, al)) in e.lines().zip(a.lines()).enumerate() {
            assert_eq!(el, al, "{name}: first difference at line {}", i + 1);
        }
        assert_eq!(
            e.lines().count(),
            a.lines().count(),
            "{name}: line counts differ"
        );
        panic!("{name}: output differs from the golden file");
    }
}

fn lines(b: &[u8]) -> usize {
    b.split(|&c| c == b'\n').filter(|l| !l.is_empty()).count()
}

#[test]
fn scenarios_time_order() {
    let r = cli(&["enrich", "scenarios.jsonl"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(lines(&r.stdout), 40);
    golden("scenarios.expected.jsonl", &r.stdout);
    assert!(r.stderr.contains("40 records"), "summary: {}", r.stderr);
}

#[test]
fn scenarios_streaming_on_stdin() {
    let input = std::fs::read(fixtures().join("scenarios.jsonl")).unwrap();
    let r = cli(&["enrich"], Some(&input));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(lines(&r.stdout), 40);
    golden("scenarios.stream.expected.jsonl", &r.stdout);
}

#[test]
fn stratus_red_team() {
    let r = cli(&["enrich", "stratus.jsonl"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(lines(&r.stdout), 310);
    golden("stratus.expected.jsonl", &r.stdout);
}

#[test]
fn s3_layout_directory_of_gzip_delivery_files() {
    let r = cli(&["enrich", "AWSLogs"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(lines(&r.stdout), 45);
    golden("awslogs.expected.jsonl", &r.stdout);
}

#[test]
fn hostile_lines_pass_through_and_are_named() {
    let r = cli(&["enrich", "hostile.jsonl"], None);
    assert_eq!(
        r.code, 1,
        "bad input must show in the exit status: {}",
        r.stderr
    );
    let input = std::fs::read(fixtures().join("hostile.jsonl")).unwrap();
    assert_eq!(lines(&r.stdout), lines(&input));
    assert!(
        r.stderr.contains("hostile.jsonl:1: record 1: invalid JSON"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("hostile.jsonl:3: record 3: not a JSON object"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("hostile.jsonl:19: record 19: invalid JSON: invalid UTF-8 at byte 42"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("19 records: 6 annotated, 5 passed through, 8 malformed"),
        "{}",
        r.stderr
    );
    golden("hostile.expected.jsonl", &r.stdout);
}
