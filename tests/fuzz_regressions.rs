//! Replays the fuzz targets' inputs on the stable toolchain: every file under `fuzz/regressions/<target>/` (inputs a fuzzer found or that are worth keeping) and the fixtures the corpora are seeded from, through the same invariant checks the `cargo fuzz` targets run (`fuzz/invariants.rs`).

#[path = "hostile_support/mod.rs"]
mod hostile_support;
#[path = "../fuzz/invariants.rs"]
mod invariants;

use credlineage::{Enricher, Outcome};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep"));
    v.sort();
    v
}

fn fixtures() -> Vec<(PathBuf, Vec<u8>)> {
    files(&root().join("tests/fixtures"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

fn regressions(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    files(&root().join("fuzz/regressions").join(target))
        .into_iter()
        .map(|p| {
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect()
}

#[test]
fn record_target_inputs() {
    let mut e = Enricher::new(invariants::small_config()).unwrap();
    let mut n = 0;
    for (_, doc) in fixtures() {
        for line in doc.split(|&c| c == b'\n') {
            invariants::one_record(&mut e, line, None);
            invariants::one_record(&mut e, line, Some(1_700_000_000));
            n += 1;
        }
    }
    for (p, data) in regressions("record") {
        eprintln!("record regression {}", p.display());
        invariants::one_record(&mut e, &data, None);
        invariants::one_record(&mut e, &data, Some(1_700_000_000));
        n += 1;
    }
    assert!(n > 100, "too few inputs replayed: {n}");
}

#[test]
fn stream_target_inputs() {
    for (_, doc) in fixtures() {
        for sel in [0u8, 1] {
            let mut data = vec![sel];
            data.extend_from_slice(&doc);
            invariants::stream(&data);
        }
    }
    for (p, data) in regressions("stream") {
        eprintln!("stream regression {}", p.display());
        invariants::stream(&data);
    }
}

#[test]
fn snapshot_target_inputs() {
    let seed = std::fs::read(root().join("tests/fixtures/scenarios.jsonl")).unwrap();
    // Valid snapshots and every truncation and a bit flip of each byte of one.
    let mut e = Enricher::new(invariants::small_config()).unwrap();
    for line in seed.split(|&c| c == b'\n') {
        e.process(line, None);
    }
    let snap = e.snapshot();
    invariants::snapshot(&snap, &seed);
    for cut in (0..snap.len()).step_by(7) {
        invariants::snapshot(&snap[..cut], &seed);
    }
    for i in 0..snap.len() {
        let mut m = snap.clone();
        m[i] ^= 1 << (i % 8);
        invariants::snapshot(&m, &seed);
    }
    for (p, data) in regressions("snapshot") {
        eprintln!("snapshot regression {}", p.display());
        invariants::snapshot(&data, &seed);
    }
}

/// The checks can fail: a record that loses a member is caught.
#[test]
fn the_invariants_catch_a_lost_member() {
    let input = br#"{"eventName":"ListBuckets","eventSource":"s3.amazonaws.com","a":1}"#;
    let mut e = Enricher::new(invariants::small_config()).unwrap();
    let out = e.process(input, None);
    let broken = String::from_utf8(out).unwrap().replace(r#","a":1"#, "");
    let caught = std::panic::catch_unwind(|| {
        hostile_support::check_record(input, broken.as_bytes(), &Outcome::Annotated, false, false)
    });
    assert!(caught.is_err(), "a dropped member went unnoticed");
}

/// The `document` target: each fixture's first lines as a one-line S3
/// delivery file (as `fuzz/seed.sh` seeds it), the same cut short at every
/// 97th byte, and the inputs kept under `fuzz/regressions/document/`.
#[test]
fn document_target_inputs() {
    let mut n = 0;
    for (_, text) in fixtures() {
        let lines: Vec<&[u8]> = text
            .split(|&c| c == b'\n')
            .filter(|l| !l.is_empty())
            .take(8)
            .collect();
        let doc = [b"{\"Records\":[".as_slice(), &lines.join(&b","[..]), b"]}"].concat();
        invariants::document(&doc);
        for cut in (0..doc.len()).step_by(97) {
            invariants::document(&doc[..cut]);
            n += 1;
        }
    }
    for (p, data) in regressions("document") {
        eprintln!("document regression {}", p.display());
        invariants::document(&data);
        n += 1;
    }
    assert!(n > 20, "only {n} document inputs");
}
