//! The engine against the synthetic generator's ground truth: lineage roots, depths, off-host use, collisions and the SPEC v1.1 shapes, in streaming (library) and batch (built CLI) order, on trails of 20,000 records.

mod common;

use std::collections::HashMap;
use std::sync::OnceLock;

use common::cli;
use credlineage::generate::{GeneratedLine, TrailConfig, Truth, trail};
use credlineage::{Config, Enricher};
use serde_json::Value;

/// A v1.1 trail: every new shape on.
fn v11(seed: u64, records: usize, disorder: u32) -> TrailConfig {
    TrailConfig {
        seed,
        records,
        disorder,
        ..TrailConfig::v11()
    }
}

/// Streaming: one default enricher over the trail in delivery order.
fn annotations(cfg: TrailConfig) -> Vec<(String, Value, Truth)> {
    let mut e = Enricher::new(Config::default()).unwrap();
    trail(cfg)
        .map(|r| {
            let out = e.process(r.line.as_bytes(), None);
            let v: Value = serde_json::from_slice(&out).expect("valid JSON out");
            (r.line, v["credlineage"].clone(), r.truth)
        })
        .collect()
}

/// Batch: the built CLI's `enrich --order time` over the lines written to a
/// file; the annotation of every output line, with the truths in order (an
/// envelope line yields one output line per record it holds).
fn batch_lines(lines: &[GeneratedLine]) -> Vec<(Value, Truth)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("trail.jsonl");
    let mut text = String::new();
    for l in lines {
        text.push_str(&l.line);
        text.push('\n');
    }
    std::fs::write(&path, text).expect("write trail");
    let path = path.to_string_lossy().into_owned();
    let out = cli(&["enrich", "--order", "time", &path], None);
    let truths: Vec<Truth> = lines.iter().flat_map(|l| l.truths.clone()).collect();
    let outs: Vec<&[u8]> = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        outs.len(),
        truths.len(),
        "one output line per CloudTrail record (exit {}, stderr: {})",
        out.code,
        out.stderr
    );
    outs.into_iter()
        .zip(truths)
        .map(|(o, t)| {
            let v: Value = serde_json::from_slice(o).expect("valid JSON out");
            (v["credlineage"].clone(), t)
        })
        .collect()
}

/// The 20,000-record v1.1 trail (disorder 30 s, duplicated and late
/// deliveries), enriched once by the CLI in batch mode; with each record's line.
/// Records at the end of a generated trail whose truth may rely on an
/// issuance cut off by the trail's length (30 s of disorder is ~80 records).
const TAIL: usize = 300;

fn batch() -> &'static [(String, Value, Truth)] {
    static B: OnceLock<Vec<(String, Value, Truth)>> = OnceLock::new();
    B.get_or_init(|| {
        let lines: Vec<GeneratedLine> = trail(v11(42, 20_000, 30)).lines(0).collect();
        let texts: Vec<String> = lines.iter().map(|l| l.line.clone()).collect();
        let mut v: Vec<_> = batch_lines(&lines)
            .into_iter()
            .zip(texts)
            .map(|((a, t), l)| (l, a, t))
            .collect();
        // The trail is cut at a record count: in its last seconds an
        // issuance that `--disorder` (or a same-second chain written child
        // first) puts after the cut is missing, while the truth of the calls
        // made with it assumes it was seen. Every record is enriched; the
        // last ones are not judged.
        v.truncate(v.len().saturating_sub(TAIL));
        v
    })
}

/// The records of `kind` in the batch run; at least `min` of them.
fn of_kind(kind: &str, min: usize) -> Vec<&'static (String, Value, Truth)> {
    let v: Vec<_> = batch().iter().filter(|(_, _, t)| t.kind == kind).collect();
    assert!(
        v.len() >= min,
        "only {} records of kind {kind} in the trail",
        v.len()
    );
    v
}

fn ctx(t: &Truth, a: &Value, line: &str) -> String {
    let line: String = line.chars().take(600).collect();
    format!(
        "kind {} truth {t:?}\n annotation {a}\n record {line}",
        t.kind
    )
}

/// Root, depth and (where the truth knows it) completeness.
fn check_lineage(a: &Value, t: &Truth, line: &str) {
    let Some(root) = &t.lineage_root else {
        return;
    };
    assert_eq!(a["lineage_root"], root.as_str(), "{}", ctx(t, a, line));
    assert_eq!(
        a["lineage_depth"].as_u64(),
        t.lineage_depth.map(u64::from),
        "{}",
        ctx(t, a, line)
    );
    if let Some(c) = t.lineage_complete {
        assert_eq!(a["lineage_complete"], c, "{}", ctx(t, a, line));
    }
}

/// ec2_cred_offhost, offhost_reason, offhost_other_identity, offhost_ancestor
/// and ec2_instance_id exactly as the truth says.
fn check_offhost(a: &Value, t: &Truth, line: &str) {
    let c = || ctx(t, a, line);
    assert_eq!(a["ec2_cred_offhost"], t.offhost, "{}", c());
    if t.offhost {
        if let Some(r) = t.offhost_reason {
            assert_eq!(a["offhost_reason"], r, "{}", c());
        }
        match &t.offhost_other_identity {
            Some(arn) => assert_eq!(a["offhost_other_identity"], arn.as_str(), "{}", c()),
            None => assert!(a.get("offhost_other_identity").is_none(), "{}", c()),
        }
    } else {
        assert!(a.get("offhost_reason").is_none(), "{}", c());
    }
    if t.offhost_ancestor {
        assert_eq!(a["offhost_ancestor"], true, "{}", c());
    } else {
        assert!(
            a.get("offhost_ancestor").is_none_or(|v| v == false),
            "{}",
            c()
        );
    }
    match &t.ec2_instance_id {
        Some(id) => assert_eq!(a["ec2_instance_id"], id.as_str(), "{}", c()),
        None => assert!(a.get("ec2_instance_id").is_none(), "{}", c()),
    }
}

// ---------------------------------------------------------------------------
// Streaming

/// The v1.1 trail in time order (no redelivery), one record at a time:
/// everything the truth says, except the lineage of same-second chain
/// issuances written child first (their parent is not seen yet).
#[test]
fn lineage_matches_ground_truth_in_time_order() {
    let cfg = TrailConfig {
        redelivery: false,
        ..v11(42, 20_000, 0)
    };
    let mut checked = 0;
    let mut offhost_truth = 0;
    for (line, a, t) in annotations(cfg) {
        assert!(a.is_object(), "not annotated: {line}");
        if t.kind != "same_second_chain" && t.lineage_root.is_some() {
            check_lineage(&a, &t, &line);
            checked += 1;
        }
        offhost_truth += usize::from(t.offhost);
        check_offhost(&a, &t, &line);
        if !t.collision {
            assert_eq!(a["is_key_collision"], false, "{}", ctx(&t, &a, &line));
        }
        // Streaming cannot re-mark the first issuance of a colliding pair;
        // every other record of the pair must be marked.
        if t.collision && a.get("issued").is_none() {
            assert_eq!(a["is_key_collision"], true, "{}", ctx(&t, &a, &line));
        }
    }
    assert!(checked > 15_000, "only {checked} records carried a key");
    assert!(offhost_truth > 0, "the trail has no off-host use to check");
}

/// The v1 mix (what `generate` writes by default) still resolves: roots,
/// depths, collisions; every off-host truth flagged. (Its instance addresses
/// are not chosen inside AWS's ranges, so on-host calls are not checked here.)
#[test]
fn v1_mix_lineage_matches_ground_truth_in_time_order() {
    let cfg = TrailConfig {
        seed: 42,
        records: 20_000,
        ..Default::default()
    };
    for (line, a, t) in annotations(cfg) {
        check_lineage(&a, &t, &line);
        if t.offhost {
            assert_eq!(a["ec2_cred_offhost"], true, "{}", ctx(&t, &a, &line));
        }
        if !t.collision {
            assert_eq!(a["is_key_collision"], false, "{}", ctx(&t, &a, &line));
        }
    }
}

#[test]
fn out_of_order_delivery_keeps_every_record_and_most_lineage() {
    let all = annotations(v11(7, 5_000, 30));
    assert_eq!(all.len(), 5_000);
    assert!(all.iter().all(|(_, a, _)| a.is_object()));
    let keyed = all.iter().filter(|(_, _, t)| t.lineage_root.is_some());
    let (n, right) = keyed.fold((0, 0), |(n, r), (_, a, t)| {
        (
            n + 1,
            r + usize::from(t.lineage_root.as_deref() == a["lineage_root"].as_str()),
        )
    });
    assert!(right * 100 >= n * 90, "only {right} of {n} roots right");
}

// ---------------------------------------------------------------------------
// Batch (the built CLI, time order), v1.1 shapes

#[test]
fn batch_lineage_matches_ground_truth() {
    let mut checked = 0;
    for (line, a, t) in batch() {
        assert!(a.is_object(), "not annotated: {line}");
        if t.lineage_root.is_some() {
            check_lineage(a, t, line);
            checked += 1;
        }
    }
    assert!(checked > 15_000, "only {checked} records carried a key");
}

#[test]
fn batch_offhost_and_instance_ids_match_ground_truth() {
    for (line, a, t) in batch() {
        check_offhost(a, t, line);
    }
}

/// Batch knows both issuances of a pair; duplicates never make a collision.
#[test]
fn batch_collisions_only_where_true() {
    let mut pairs = 0;
    for (line, a, t) in batch() {
        assert_eq!(a["is_key_collision"], t.collision, "{}", ctx(t, a, line));
        pairs += usize::from(t.collision);
    }
    assert!(pairs > 0, "no collision in the trail");
}

#[test]
fn vpc_endpoint_only_instance_ssrf_is_outside_aws() {
    for (line, a, t) in of_kind("ec2_vpce", 50) {
        assert_eq!(a["ec2_cred_offhost"], false, "{}", ctx(t, a, line));
    }
    for (line, a, t) in of_kind("ec2_ssrf", 3) {
        assert_eq!(a["ec2_cred_offhost"], true, "{}", ctx(t, a, line));
        assert_eq!(a["offhost_reason"], "outside_aws", "{}", ctx(t, a, line));
    }
}

#[test]
fn nat_gateway_shared_with_ci_user_is_not_offhost() {
    of_kind("nat_user", 20);
    for (line, a, t) in of_kind("ec2_nat", 50) {
        assert_eq!(a["ec2_cred_offhost"], false, "{}", ctx(t, a, line));
    }
}

#[test]
fn stolen_credentials_from_a_user_address_name_the_user() {
    for (line, a, t) in of_kind("ec2_offhost", 3) {
        assert_eq!(a["ec2_cred_offhost"], true, "{}", ctx(t, a, line));
        assert_eq!(
            a["offhost_reason"],
            "ip_used_by_other_identity",
            "{}",
            ctx(t, a, line)
        );
        let who = t.offhost_other_identity.as_deref().unwrap_or_default();
        assert!(who.ends_with(":user/ext-contractor"), "{who}");
        assert_eq!(a["offhost_other_identity"], who, "{}", ctx(t, a, line));
    }
}

#[test]
fn pivot_through_assume_role_marks_the_descendants() {
    for (line, a, t) in of_kind("ec2_pivot", 2) {
        assert_eq!(a["ec2_cred_offhost"], true, "{}", ctx(t, a, line));
        assert_eq!(a["offhost_reason"], "outside_aws", "{}", ctx(t, a, line));
    }
    for (line, a, t) in of_kind("pivot_session", 3) {
        assert!(t.offhost_ancestor);
        assert_eq!(a["offhost_ancestor"], true, "{}", ctx(t, a, line));
        assert_eq!(a["ec2_cred_offhost"], false, "{}", ctx(t, a, line));
        check_lineage(a, t, line);
    }
}

#[test]
fn elastic_ip_moves_and_dual_stack_are_learned_not_flagged() {
    of_kind("ec2_eip_move", 1);
    for kind in ["ec2_moved", "ec2_ipv6", "ec2_onhost"] {
        for (line, a, t) in of_kind(kind, 5) {
            assert_eq!(a["ec2_cred_offhost"], false, "{}", ctx(t, a, line));
        }
    }
}

#[test]
fn sessions_named_like_instances_are_not_instance_credentials() {
    let recs = of_kind("fake_instance", 10);
    let mut named = 0;
    for (line, a, t) in recs {
        let v: Value = serde_json::from_str(line).expect("JSON");
        let arn = v["userIdentity"]["arn"].as_str().unwrap_or_default();
        named += usize::from(arn.rsplit('/').next().is_some_and(|s| s.starts_with("i-0")));
        assert_eq!(a["ec2_cred_offhost"], false, "{}", ctx(t, a, line));
        assert!(a.get("ec2_instance_id").is_none(), "{}", ctx(t, a, line));
        check_lineage(a, t, line);
    }
    assert!(
        named > 0,
        "no call made as a session named like an instance"
    );
}

#[test]
fn identity_center_user_has_one_root_whether_or_not_sign_in_was_seen() {
    let mut roots: HashMap<&str, usize> = HashMap::new();
    for kind in ["sso", "sso_unobserved"] {
        for (line, a, t) in of_kind(kind, 10) {
            if let Some(root) = t.lineage_root.as_deref() {
                assert!(root.starts_with("saml:AWSSSO/"), "{root}");
                *roots.entry(root).or_default() += 1;
                check_lineage(a, t, line);
            }
        }
    }
    assert!(!roots.is_empty());
}

#[test]
fn service_linked_role_sessions_are_complete_service_roots() {
    for (line, a, t) in of_kind("service_linked", 10) {
        let root = t.lineage_root.as_deref().unwrap_or_default();
        assert!(root.starts_with("service:"), "{root}");
        check_lineage(a, t, line);
        assert_eq!(a["lineage_complete"], true, "{}", ctx(t, a, line));
    }
}

/// A duplicate is annotated as its first delivery; late records resolve.
#[test]
fn duplicated_and_late_deliveries_change_nothing() {
    let mut first: HashMap<&str, &Value> = HashMap::new();
    let (mut dups, mut late) = (0, 0);
    for (line, a, t) in batch() {
        if t.duplicate {
            dups += 1;
            let orig = first.get(line.as_str()).copied().unwrap_or(&Value::Null);
            for f in [
                "session_fingerprint",
                "lineage_root",
                "lineage_depth",
                "is_key_collision",
                "ec2_cred_offhost",
                "issued",
            ] {
                assert_eq!(a.get(f), orig.get(f), "{f}: {}", ctx(t, a, line));
            }
        } else {
            first.entry(line.as_str()).or_insert(a);
        }
        if t.late {
            late += 1;
            check_lineage(a, t, line);
        }
    }
    assert!(dups > 50 && late > 20, "{dups} duplicates, {late} late");
}

#[test]
fn same_second_chains_written_child_first_resolve_in_batch() {
    for (line, a, t) in of_kind("same_second_chain", 20) {
        check_lineage(a, t, line);
    }
}

#[test]
fn cloudtrail_lake_times_are_read() {
    let lake: Vec<_> = batch().iter().filter(|(_, _, t)| t.lake_time).collect();
    assert!(lake.len() > 300, "{} Lake times", lake.len());
    for (line, a, t) in lake {
        assert!(a.is_object(), "{line}");
        check_lineage(a, t, line);
        assert_eq!(a["is_key_collision"], t.collision, "{}", ctx(t, a, line));
    }
}

/// CloudWatch Logs subscription envelopes: one output line per record inside.
#[test]
fn cloudwatch_envelopes_unroll_to_one_annotated_line_per_record() {
    let lines: Vec<GeneratedLine> = trail(v11(5, 3_000, 0)).lines(200).collect();
    assert!(lines.len() < 3_000, "no envelope");
    let all = batch_lines(&lines);
    assert_eq!(all.len(), 3_000);
    for (a, t) in &all {
        assert!(a.is_object(), "{t:?}");
        check_lineage(a, t, "(in an envelope)");
    }
}
