//! `credlineage report` as a user runs it: the lineage tree, collisions, off-host use and live credentials it shows for the bundled trail and real Stratus records, in text and JSON, and what it must never print.

mod common;

use common::{cli as run, data_dir};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `report --format json` over `args`, parsed.
fn json_report(args: &[&str]) -> Value {
    let mut all = vec!["report", "--format", "json"];
    all.extend_from_slice(args);
    let o = run(&all, None);
    assert_eq!(o.code, 0, "{}", o.stderr);
    serde_json::from_slice(&o.stdout).unwrap()
}

/// The fingerprints of every `enrich` output record, in order.
fn enrich_fingerprints(args: &[&str]) -> Vec<Value> {
    let mut all = vec!["enrich", "-q"];
    all.extend_from_slice(args);
    let o = run(&all, None);
    assert_eq!(o.code, 0, "{}", o.stderr);
    o.stdout
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice::<Value>(l).unwrap()["credlineage"]["session_fingerprint"]
                .clone()
        })
        .collect()
}

fn root<'v>(r: &'v Value, name: &str) -> &'v Value {
    r["roots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["lineage_root"] == name)
        .unwrap_or_else(|| panic!("no root {name} in {r:#}"))
}

/// Every credential in a root's tree, parents before children.
fn all_credentials(root: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = root["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .collect();
    while let Some(c) = stack.pop() {
        out.push(c);
        stack.extend(c["children"].as_array().unwrap().iter().rev());
    }
    out
}

#[test]
fn federation_token_pair_is_one_tree_under_the_long_term_key() {
    let file = data_dir().join("aws.persistence.sts-federation-token.json");
    let r = json_report(&[path_str(&file)]);
    assert_eq!(r["totals"]["records"], 2);
    assert_eq!(r["roots"].as_array().unwrap().len(), 1);
    let root = root(&r, "AKIA6V1GNZTT65XQH36M");
    assert_eq!(root["lineage_root_type"], "access_key");
    assert_eq!(root["events"], 2);
    let key = &root["credentials"][0];
    assert_eq!(key["access_key_id"], "AKIA6V1GNZTT65XQH36M");
    assert_eq!(key["lineage_depth"], 0);
    let child = &key["children"][0];
    assert_eq!(child["access_key_id"], "ASIASTJKC5GCM7ZE6LUP");
    assert_eq!(child["lineage_depth"], 1);
    assert_eq!(child["parent_fingerprint"], key["session_fingerprint"]);
    assert_eq!(child["expiration"], "2024-11-30T20:43:17Z");
    assert_eq!(
        child["principal_arn"],
        "arn:aws:sts::742491224508:federated-user/stratus_red_team"
    );
    assert!(
        child["issued_by"]
            .as_str()
            .unwrap()
            .starts_with("GetFederationToken at 2024-11-30T08:43:17Z")
    );
    // The fingerprints are the ones `enrich` writes on the same records.
    let fps = enrich_fingerprints(&[path_str(&file)]);
    assert!(fps.contains(&key["session_fingerprint"]), "{fps:?}");
    assert!(fps.contains(&child["session_fingerprint"]), "{fps:?}");
    // The federated credential is still live at the end of the trail.
    assert_eq!(r["live"].as_array().unwrap().len(), 1);
    assert_eq!(r["live"][0]["access_key_id"], "ASIASTJKC5GCM7ZE6LUP");
    assert_eq!(r["live"][0]["expiration_observed"], true);
    assert_eq!(r["live_at"], "2024-11-30T08:43:18Z");
}

#[test]
fn bundled_trail_shows_the_chain_the_collision_and_the_offhost_use() {
    let r = json_report(&[path_str(&fixture("scenarios.jsonl"))]);
    assert_eq!(r["totals"]["records"], 40);
    assert_eq!(r["totals"]["annotated"], 40);

    // A stolen key building a three-hop role chain: each hop under the one that issued it.
    let alice = root(&r, "AKIAQXAMPLEROOTKEY01");
    let mut c = &alice["credentials"][0];
    assert_eq!(c["access_key_id"], "AKIAQXAMPLEROOTKEY01");
    for (depth, key) in [
        (1, "ASIAQXAMPLECHAIN0001"),
        (2, "ASIAQXAMPLECHAIN0002"),
        (3, "ASIAQXAMPLECHAIN0003"),
    ] {
        let next = c["children"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["access_key_id"] == key)
            .unwrap_or_else(|| panic!("{key} not under {}", c["access_key_id"]));
        assert_eq!(next["lineage_depth"], depth);
        assert_eq!(next["parent_fingerprint"], c["session_fingerprint"]);
        c = next;
    }

    // One key ID, three credential sets (two of them live at once).
    let coll = r["collisions"].as_array().unwrap();
    assert_eq!(coll.len(), 1, "{coll:#?}");
    assert_eq!(coll[0]["access_key_id"], "ASIAQXAMPLECOLLIDE01");
    assert_eq!(coll[0]["max_collision_count"], 2);
    let sets = coll[0]["credentials"].as_array().unwrap();
    assert_eq!(sets.len(), 3);
    let roots: std::collections::BTreeSet<&str> = sets
        .iter()
        .map(|s| s["lineage_root"].as_str().unwrap())
        .collect();
    assert_eq!(
        roots,
        ["AKIAQXAMPLEBOBKEY001", "AKIAQXAMPLECAROLKEY1"].into()
    );

    // Instance credentials used off their instance, per IP and reason.
    let off = r["offhost"].as_array().unwrap();
    let reasons: Vec<(&str, &str)> = off
        .iter()
        .map(|o| {
            (
                o["source_ip"].as_str().unwrap(),
                o["offhost_reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        reasons.contains(&("45.33.32.156", "outside_aws")),
        "{reasons:?}"
    );
    assert!(
        off.iter()
            .all(|o| o["ec2_instance_id"] == "i-0abc1234def567890")
    );
    assert_eq!(
        r["totals"]["offhost_events"],
        off.iter()
            .map(|o| o["events"].as_u64().unwrap())
            .sum::<u64>()
    );

    // Live at the end: only temporary sets whose liveness covers the last event.
    let at = r["live_at"].as_str().unwrap();
    for l in r["live"].as_array().unwrap() {
        assert!(
            l["access_key_id"].as_str().unwrap().starts_with("ASIA"),
            "{l}"
        );
        assert!(l["expires"].as_str().unwrap() >= at, "{l}");
    }
    // The first chain expired at 13:00, before the trail's last event.
    assert!(
        !r["live"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["access_key_id"] == "ASIAQXAMPLECHAIN0001")
    );
}

#[test]
fn text_report_has_every_section_and_nests_the_chain() {
    let o = run(&["report", path_str(&fixture("scenarios.jsonl"))], None);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let t = String::from_utf8(o.stdout).unwrap();
    for heading in [
        "== Lineage: ",
        "== Key-ID collisions: 1 key(s) ==",
        "== Off-host EC2 credential use: ",
        "== Temporary credentials live at ",
    ] {
        assert!(t.contains(heading), "{heading} missing in\n{t}");
    }
    // Each hop is indented one step further than the one that issued it.
    let indent = |key: &str| {
        let line = t
            .lines()
            .find(|l| l.contains(key) && l.contains("sf1_"))
            .unwrap_or_else(|| panic!("{key} missing in\n{t}"));
        line.len() - line.trim_start().len()
    };
    let depths: Vec<usize> = [
        "AKIAQXAMPLEROOTKEY01",
        "ASIAQXAMPLECHAIN0001",
        "ASIAQXAMPLECHAIN0002",
        "ASIAQXAMPLECHAIN0003",
    ]
    .iter()
    .map(|k| indent(k))
    .collect();
    assert!(depths.windows(2).all(|w| w[0] < w[1]), "{depths:?}\n{t}");
}

#[test]
fn report_prints_no_session_token_or_secret() {
    let trail = std::fs::read_to_string(fixture("scenarios.jsonl")).unwrap();
    let token = "IQoJb3JpZ2luX2VjEXAMPLEFAKETOKEN";
    assert!(trail.contains(token), "the fixture carries session tokens");
    for format in ["text", "json"] {
        let o = run(
            &[
                "report",
                "--format",
                format,
                path_str(&fixture("scenarios.jsonl")),
            ],
            None,
        );
        assert_eq!(o.code, 0);
        let out = String::from_utf8(o.stdout).unwrap();
        assert!(
            !out.contains(token),
            "{format} report leaks a session token"
        );
        assert!(!out.contains("sessionToken") && !out.contains("secretAccessKey"));
    }
}

#[test]
fn stdin_file_and_flattened_annotations_give_the_same_report() {
    let path = fixture("scenarios.jsonl");
    let file = json_report(&["--order", "stream", path_str(&path)]);
    let bytes = std::fs::read(&path).unwrap();
    let o = run(&["report", "--format", "json", "-"], Some(&bytes));
    assert_eq!(o.code, 0, "{}", o.stderr);
    let stdin: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(file, stdin);
    // The report reads the annotation wherever the configuration puts it
    // (`--flatten` and `--namespace` are `enrich`'s and `serve`'s flags; a
    // configuration file may still set them).
    let dir = tempfile::tempdir().unwrap();
    for (name, cfg) in [
        ("flat.json", r#"{"flatten_prefix": "cl_"}"#),
        ("named.json", r#"{"namespace": "lineage"}"#),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, cfg).unwrap();
        let got = json_report(&[
            "--order",
            "stream",
            "--config",
            path_str(&p),
            path_str(&path),
        ]);
        assert_eq!(file, got, "{cfg}");
    }
}

#[test]
fn eventbridge_and_string_wrapped_records_give_the_same_report() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        std::fs::read_to_string(data_dir().join("aws.persistence.sts-federation-token.json"))
            .unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let records: Vec<Value> = match &doc {
        Value::Array(a) => a.clone(),
        Value::Object(o) if o.contains_key("Records") => o["Records"].as_array().unwrap().clone(),
        other => vec![other.clone()],
    };
    let write = |name: &str, wrap: &dyn Fn(&Value) -> Value| {
        let p = dir.path().join(name);
        let lines: Vec<String> = records.iter().map(|r| wrap(r).to_string()).collect();
        std::fs::write(&p, lines.join("\n") + "\n").unwrap();
        p
    };
    let plain = write("plain.jsonl", &|r| r.clone());
    let eventbridge = write("eventbridge.jsonl", &|r| {
        serde_json::json!({"version": "0", "detail-type": "AWS API Call via CloudTrail",
                           "source": "aws.sts", "time": r["eventTime"], "detail": r})
    });
    let message = write(
        "message.jsonl",
        &|r| serde_json::json!({"@timestamp": r["eventTime"], "message": r.to_string()}),
    );
    let base = json_report(&["--order", "stream", path_str(&plain)]);
    assert_eq!(base["roots"][0]["lineage_root"], "AKIA6V1GNZTT65XQH36M");
    for wrapped in [&eventbridge, &message] {
        let r = json_report(&["--order", "stream", path_str(wrapped)]);
        assert_eq!(r["roots"], base["roots"], "{}", wrapped.display());
        assert_eq!(r["live"], base["live"], "{}", wrapped.display());
    }
}

#[test]
fn hostile_lines_are_counted_and_nothing_breaks() {
    let o = run(
        &[
            "report",
            "--format",
            "json",
            path_str(&fixture("hostile.jsonl")),
        ],
        None,
    );
    // Unreadable records are named on stderr and make the exit code 1, as in `enrich`.
    assert!(o.code == 0 || o.code == 1, "{}", o.stderr);
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let t = &r["totals"];
    let lines = std::fs::read(fixture("hostile.jsonl"))
        .unwrap()
        .split(|&c| c == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .count() as u64;
    assert_eq!(
        t["annotated"].as_u64().unwrap()
            + t["passed_through"].as_u64().unwrap()
            + t["malformed"].as_u64().unwrap(),
        t["records"].as_u64().unwrap()
    );
    assert!(t["records"].as_u64().unwrap() >= lines);
    // Random bytes on stdin: not a crash, and not a report that reads as an
    // empty trail: the input is named as binary data and no report is printed
    // (issue 13).
    let junk: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let o = run(&["report", "-"], Some(&junk));
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stdout.is_empty());
    assert!(
        o.stderr.contains("<stdin>: neither JSON text nor gzip"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("no report"), "{}", o.stderr);
}

#[test]
fn state_from_an_earlier_run_is_read_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.bin");
    let trail = std::fs::read_to_string(fixture("scenarios.jsonl")).unwrap();
    let lines: Vec<&str> = trail.lines().collect();
    let (first, second) = lines.split_at(2);
    let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    std::fs::write(&a, first.join("\n") + "\n").unwrap();
    std::fs::write(&b, second.join("\n") + "\n").unwrap();
    // Day one: the long-term key assumes the first role (line 2).
    let o = run(
        &["enrich", "-q", "--state", path_str(&state), path_str(&a)],
        None,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let saved = std::fs::read(&state).unwrap();
    // Day two's report knows the chain started on day one.
    let r = json_report(&["--state", path_str(&state), path_str(&b)]);
    let alice = root(&r, "AKIAQXAMPLEROOTKEY01");
    let hop1 = all_credentials(alice)
        .into_iter()
        .find(|c| c["access_key_id"] == "ASIAQXAMPLECHAIN0001")
        .expect("hop 1 under the long-term key's root");
    assert_eq!(hop1["lineage_depth"], 1);
    assert!(alice["events"].as_u64().unwrap() > 0);
    assert_eq!(
        std::fs::read(&state).unwrap(),
        saved,
        "report must not write the state"
    );
}

#[test]
fn help_lists_report() {
    let o = run(&["--help"], None);
    assert!(String::from_utf8_lossy(&o.stdout).contains("report"));
    let o = run(&["report", "--help"], None);
    let s = String::from_utf8_lossy(&o.stdout);
    for flag in ["--format", "--order", "--state", "--output"] {
        assert!(s.contains(flag), "{flag} missing in\n{s}");
    }
}
