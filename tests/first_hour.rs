//! A new user's first hour with the built `credlineage` (issue 13): state that could not be saved is refused at start, error messages with one prefix and a hint to act on, inputs that are skipped or not JSON said so, `--help` that matches what each command reads.

mod common;

use common::cli as run;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[allow(dead_code)]
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
