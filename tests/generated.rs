//! The engine against the synthetic generator's ground truth: lineage roots, depths, off-host use and collisions on a 20,000-record trail.

use credlineage::generate::{TrailConfig, trail};
use credlineage::{Config, Enricher};
use serde_json::Value;

fn annotations(cfg: TrailConfig) -> Vec<(Value, credlineage::generate::Truth)> {
    let mut e = Enricher::new(Config::default()).unwrap();
    trail(cfg)
        .map(|r| {
            let out = e.process(r.line.as_bytes(), None);
            let v: Value = serde_json::from_slice(&out).expect("valid JSON out");
            (v["credlineage"].clone(), r.truth)
        })
        .collect()
}

#[test]
fn lineage_matches_ground_truth_in_time_order() {
    let cfg = TrailConfig {
        seed: 42,
        records: 20_000,
        ..Default::default()
    };
    let mut checked = 0;
    let mut offhost_truth = 0;
    for (i, (a, truth)) in annotations(cfg).into_iter().enumerate() {
        assert!(a.is_object(), "record {i} not annotated");
        if let Some(root) = &truth.lineage_root {
            assert_eq!(
                a["lineage_root"],
                root.as_str(),
                "record {i} ({}): {a}",
                truth.kind
            );
            assert_eq!(
                a["lineage_depth"].as_u64(),
                truth.lineage_depth.map(u64::from),
                "record {i} ({}): {a}",
                truth.kind
            );
            checked += 1;
        }
        if truth.offhost {
            offhost_truth += 1;
            assert_eq!(
                a["ec2_cred_offhost"], true,
                "record {i} ({}): {a}",
                truth.kind
            );
        }
        if truth.kind == "ec2_onhost" || truth.kind == "ec2_vpce" {
            assert_eq!(
                a["ec2_cred_offhost"], false,
                "record {i} ({}): {a}",
                truth.kind
            );
        }
        if !truth.collision {
            assert_eq!(
                a["is_key_collision"], false,
                "record {i} ({}): {a}",
                truth.kind
            );
        }
        // Streaming cannot re-mark the first issuance of a colliding pair;
        // every other record of the pair must be marked.
        if truth.collision && a.get("issued").is_none() {
            assert_eq!(
                a["is_key_collision"], true,
                "record {i} ({}): {a}",
                truth.kind
            );
        }
    }
    assert!(checked > 15_000, "only {checked} records carried a key");
    assert!(offhost_truth > 0, "the trail has no off-host use to check");
}

#[test]
fn out_of_order_delivery_keeps_every_record_and_most_lineage() {
    let cfg = TrailConfig {
        seed: 7,
        records: 5_000,
        disorder: 30,
        ..Default::default()
    };
    let all = annotations(cfg);
    assert_eq!(all.len(), 5_000);
    assert!(all.iter().all(|(a, _)| a.is_object()));
}
