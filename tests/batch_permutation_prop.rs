//! Property: batch output (the built CLI, `enrich --order time` on files) is byte-identical, record for record, under any permutation of the input records — generator disorder and random shuffles of a small v1.1 trail.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use common::cli;
use credlineage::generate::{TrailConfig, trail};
use proptest::prelude::*;

/// A few hundred records with every v1.1 shape, in time order.
fn base() -> &'static [String] {
    static B: OnceLock<Vec<String>> = OnceLock::new();
    B.get_or_init(|| {
        trail(TrailConfig {
            seed: 99,
            records: 400,
            accounts: 2,
            ..TrailConfig::v11()
        })
        .map(|r| r.line)
        .collect()
    })
}

fn write(path: &Path, lines: &[&str]) {
    let mut text = String::new();
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    std::fs::write(path, text).expect("write");
}

/// Enrich `files` in batch mode; the output line of each input line, keyed
/// by the input line (a record delivered twice must come out twice the
/// same, so each key holds every output of it).
fn enrich(files: &[&Path]) -> HashMap<String, Vec<String>> {
    let mut args = vec!["enrich", "--order", "time"];
    let names: Vec<String> = files
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    args.extend(names.iter().map(String::as_str));
    let out = cli(&args, None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let outs: Vec<String> = String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .map(str::to_string)
        .collect();
    let mut ins: Vec<String> = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).expect("read");
        ins.extend(text.lines().map(str::to_string));
    }
    assert_eq!(ins.len(), outs.len(), "one output line per input line");
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for (i, o) in ins.into_iter().zip(outs) {
        m.entry(i).or_default().push(o);
    }
    for v in m.values_mut() {
        v.sort();
    }
    m
}

/// The reference: the trail in time order, one file.
fn reference() -> &'static HashMap<String, Vec<String>> {
    static R: OnceLock<HashMap<String, Vec<String>>> = OnceLock::new();
    R.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("sorted.jsonl");
        let lines: Vec<&str> = base().iter().map(String::as_str).collect();
        write(&p, &lines);
        enrich(&[&p])
    })
}

fn assert_same(got: &HashMap<String, Vec<String>>) -> Result<(), TestCaseError> {
    assert_same_as(reference(), got)
}

fn assert_same_as(
    want: &HashMap<String, Vec<String>>,
    got: &HashMap<String, Vec<String>>,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), want.len());
    for (input, outs) in want {
        let g = got.get(input);
        prop_assert!(
            g == Some(outs),
            "record {}\n want {:?}\n got  {:?}",
            input.chars().take(300).collect::<String>(),
            outs,
            g
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        // A failure is a bug in the engine's batch mode, not a case to replay.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Any shuffle of the records, split over one to three files (files are
    /// read in name order, records sorted by event time across them).
    #[test]
    fn batch_output_is_the_same_under_any_permutation(
        perm in Just((0..400usize).collect::<Vec<_>>()).prop_shuffle(),
        files in 1usize..=3,
    ) {
        let lines: Vec<&str> = perm.iter().map(|&i| base()[i].as_str()).collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let chunk = lines.len().div_ceil(files);
        let paths: Vec<_> = lines
            .chunks(chunk)
            .enumerate()
            .map(|(k, c)| {
                let p = dir.path().join(format!("part-{k}.jsonl"));
                write(&p, c);
                p
            })
            .collect();
        let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
        assert_same(&enrich(&refs))?;
    }
}

/// The generator's own out-of-order delivery (`--disorder`): the records it
/// delivers, in its order and in another (sorted by their text).
#[test]
fn batch_output_is_the_same_under_generator_disorder() {
    for disorder in [5, 60, 600] {
        let lines: Vec<String> = trail(TrailConfig {
            seed: 99,
            records: 400,
            accounts: 2,
            disorder,
            ..TrailConfig::v11()
        })
        .map(|r| r.line)
        .collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let delivered = dir.path().join("delivered.jsonl");
        let mut refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        write(&delivered, &refs);
        refs.sort_unstable();
        let sorted = dir.path().join("sorted.jsonl");
        write(&sorted, &refs);
        let want = enrich(&[&sorted]);
        let got = enrich(&[&delivered]);
        if let Err(e) = assert_same_as(&want, &got) {
            panic!("disorder {disorder}: {e}");
        }
    }
}
