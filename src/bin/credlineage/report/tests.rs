//! Unit tests of the report's aggregation: issuer loops listed under their root, and the lineage tree built from annotated lines.

use super::*;
use credlineage::{Config, Enricher};

/// An annotated line as `enrich` writes it.
fn line(key: &str, fp: &str, parent: Option<&str>, issued: Option<(&str, &str)>) -> Vec<u8> {
    let mut a = serde_json::json!({
        "v": 1, "credential_type": "temporary", "access_key_id": key,
        "session_fingerprint": fp, "lineage_root": "unresolved:ASIALOOP0000000000A",
        "lineage_root_type": "unresolved", "lineage_depth": 1, "lineage_complete": false,
        "is_key_collision": false, "ec2_cred_offhost": false
    });
    if let Some(p) = parent {
        a["parent_fingerprint"] = p.into();
    }
    if let Some((k, f)) = issued {
        a["issued"] = serde_json::json!({"access_key_id": k, "session_fingerprint": f,
            "lineage_root": "unresolved:ASIALOOP0000000000A", "lineage_depth": 2,
            "expiration": null, "chained": true});
    }
    serde_json::json!({"eventName": "AssumeRole", "eventSource": "sts.amazonaws.com",
        "eventTime": "2024-08-01T12:00:00Z", "credlineage": a})
    .to_string()
    .into_bytes()
}

#[test]
fn credentials_that_issue_each_other_are_still_listed() {
    let mut r = Report::new("credlineage", None, &[]);
    // A issued B and B issued A: neither has a top to hang from.
    r.add(&line(
        "ASIALOOP0000000000A",
        "sf1_a",
        Some("sf1_b"),
        Some(("ASIALOOP0000000000B", "sf1_b")),
    ));
    r.add(&line(
        "ASIALOOP0000000000B",
        "sf1_b",
        Some("sf1_a"),
        Some(("ASIALOOP0000000000A", "sf1_a")),
    ));
    let out = r.finish(&Enricher::new(Config::default()).unwrap());
    let mut seen = Vec::new();
    let mut stack: Vec<&Credential> = out.roots.iter().flat_map(|r| &r.credentials).collect();
    while let Some(c) = stack.pop() {
        seen.push(c.session_fingerprint.clone());
        stack.extend(&c.children);
    }
    seen.sort();
    assert_eq!(seen, ["sf1_a", "sf1_b"], "{out:#?}");
    let mut text = Vec::new();
    write_text(&mut text, &out).unwrap();
    assert!(
        String::from_utf8(text)
            .unwrap()
            .contains("ASIALOOP0000000000B")
    );
}
