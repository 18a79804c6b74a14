//! Batch mode reads each record's JSON once: `Enricher::facts` keeps what the rules can see, and `patch_facts` + `apply_patch` on those facts must give, record for record, the bytes, the outcome and the counters that `process_into` gives on the record itself — on generated trails (v1.1 shapes, disorder, redelivery), the Stratus Red Team records, every wrapper, stale own keys, escapes, duplicates and malformed input, under several configurations.

mod common;

use credlineage::generate::{TrailConfig, trail};
use credlineage::record::Packer;
use credlineage::{Config, Enricher, Outcome};
use serde_json::{Value, json};

/// Records of every shape the reader accepts, and some it does not.
fn corpus() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = trail(TrailConfig {
        seed: 11,
        records: 6000,
        disorder: 600,
        v11_shapes: true,
        redelivery: true,
        ..Default::default()
    })
    .map(|r| r.line.into_bytes())
    .collect();
    for f in common::stratus_files() {
        v.extend(common::stratus_raw(&f));
    }
    let base: Vec<Value> = v
        .iter()
        .take(3000)
        .map(|b| serde_json::from_slice(b).unwrap())
        .collect();
    for (i, r) in base.iter().enumerate() {
        let text = serde_json::to_string(r).unwrap();
        match i % 12 {
            // EventBridge envelope, with and without the record's own time.
            0 => v.push(common::bytes(&json!({
                "detail-type": "AWS API Call via CloudTrail",
                "@timestamp": "2024-08-01T09:00:00Z",
                "detail": r,
            }))),
            1 => {
                let mut d = r.clone();
                d.as_object_mut().unwrap().remove("eventTime");
                v.push(common::bytes(&json!({
                    "@timestamp": "2024-08-01T09:00:00Z",
                    "eventTime": "2024-08-01T09:00:01Z",
                    "detail": d,
                })));
            }
            // A record held as a string (a log shipper's `message`).
            2 => v.push(common::bytes(
                &json!({"message": text, "@timestamp": "2024-08-01T09:00:00Z"}),
            )),
            3 => v.push(common::bytes(
                &json!({"log": "not a record", "message": text}),
            )),
            // Stale copies of our own key, in both forms.
            4 => {
                let mut o = r.clone();
                o["credlineage"] = json!({"v": 0});
                o["cl_lineage_root"] = json!("x");
                v.push(common::bytes(&o));
            }
            // Pretty-printed, escaped and duplicated members.
            5 => v.push(serde_json::to_vec_pretty(r).unwrap()),
            6 => {
                let t = text
                    .replacen("\"eventName\"", "\"event\\u004eame\"", 1)
                    .replacen('{', "{\"eventSource\":\"dup.amazonaws.com\",", 1);
                v.push(t.into_bytes());
            }
            // Broken: cut short, invalid UTF-8, not an object, no event.
            7 => v.push(text.as_bytes()[..text.len() / 2].to_vec()),
            8 => {
                let mut b = text.clone().into_bytes();
                b.insert(b.len() / 3, 0xff);
                v.push(b);
            }
            9 => v.push(b"[1,2,3]".to_vec()),
            10 => v.push(br#"{"hello":"world","eventName":"X"}"#.to_vec()),
            // No time at all.
            _ => {
                let mut o = r.clone();
                o.as_object_mut().unwrap().remove("eventTime");
                v.push(common::bytes(&o));
            }
        }
    }
    v.push(b"{}".to_vec());
    v.push(b"".to_vec());
    v
}

fn kind(o: &Outcome) -> String {
    match o {
        Outcome::Annotated => "annotated".into(),
        Outcome::PassedThrough(e) => format!("passed: {e}"),
        Outcome::Malformed(e) => format!("malformed: {e}"),
    }
}

/// Both ways over `records` in the given order, with a first pass of each
/// kind (lookahead) as batch mode runs them.
fn same_both_ways(cfg: Config, records: &[Vec<u8>]) {
    let probe = Enricher::new(cfg.clone()).unwrap();
    let mut packer = Packer::default();
    let facts: Vec<Vec<u8>> = records
        .iter()
        .map(|r| {
            let mut f = Vec::new();
            let key = probe.facts(r, &mut packer, &mut f);
            assert_eq!(key, probe.peek_order(r), "sort key of {r:?}");
            f
        })
        .collect();
    // Pass 1 both ways: the lookahead must be the same.
    let mut p1 = Enricher::new(cfg.clone()).unwrap();
    p1.record_lookahead();
    let mut f1 = Enricher::new(cfg.clone()).unwrap();
    f1.record_lookahead();
    for (r, f) in records.iter().zip(&facts) {
        let _ = p1.annotate(r, None);
        f1.learn_facts(f);
    }
    assert_eq!(format!("{:?}", p1.stats()), format!("{:?}", f1.stats()));
    let mut by_process = Enricher::new(cfg.clone()).unwrap();
    by_process.use_lookahead(p1.take_lookahead());
    let mut by_facts = Enricher::new(cfg.clone()).unwrap();
    by_facts.use_lookahead(f1.take_lookahead());
    let writer = Enricher::new(cfg).unwrap();
    let (mut a, mut patch, mut b) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (r, f)) in records.iter().zip(&facts).enumerate() {
        a.clear();
        patch.clear();
        b.clear();
        let oa = by_process.process_into(r, None, &mut a);
        let ob = by_facts.patch_facts(f, &mut patch);
        assert_eq!(kind(&oa), kind(&ob), "record {i}");
        assert!(writer.apply_patch(r, &patch, &mut b), "record {i}");
        assert!(
            a == b,
            "record {i}:\n{}\n{}",
            String::from_utf8_lossy(&a),
            String::from_utf8_lossy(&b)
        );
    }
    assert_eq!(
        format!("{:?}", by_process.stats()),
        format!("{:?}", by_facts.stats())
    );
    assert_eq!(by_process.tracked_sets(), by_facts.tracked_sets());
}

#[test]
fn facts_give_the_bytes_of_the_records_in_arrival_order() {
    let recs = corpus();
    same_both_ways(Config::default(), &recs);
}

#[test]
fn facts_give_the_bytes_of_the_records_in_time_order_and_other_configurations() {
    let mut recs = corpus();
    // Batch mode's order: by event time, issuances first.
    let probe = Enricher::new(Config::default()).unwrap();
    let mut last = i64::MIN;
    let mut keyed: Vec<((i64, u8), Vec<u8>)> = recs
        .drain(..)
        .map(|r| {
            let (t, rank) = probe.peek_order(&r);
            last = t.unwrap_or(last);
            ((last, rank), r)
        })
        .collect();
    keyed.sort_by_key(|k| k.0);
    let recs: Vec<Vec<u8>> = keyed.into_iter().map(|k| k.1).collect();
    same_both_ways(Config::default(), &recs);
    same_both_ways(
        Config {
            flatten_prefix: Some("cl_".into()),
            redact_session_tokens: true,
            ..Config::default()
        },
        &recs,
    );
    same_both_ways(
        Config {
            namespace: "x\"y".into(),
            string_fields: vec!["log".into()],
            max_entries: 500,
            ..Config::default()
        },
        &recs,
    );
}

#[test]
fn a_patch_is_refused_for_another_record() {
    let e = Enricher::new(Config::default()).unwrap();
    let mut e2 = Enricher::new(Config::default()).unwrap();
    let r = common::bytes(
        &json!({"eventName":"ListBuckets","eventSource":"s3.amazonaws.com",
        "eventTime":"2024-08-01T12:00:00Z","userIdentity":{"type":"IAMUser","accessKeyId":"AKIAIOSFODNN7EXAMPLE"}}),
    );
    let (mut f, mut patch, mut out) = (Vec::new(), Vec::new(), Vec::new());
    e.facts(&r, &mut Packer::default(), &mut f);
    assert!(matches!(e2.patch_facts(&f, &mut patch), Outcome::Annotated));
    let mut other = r.clone();
    other.push(b' ');
    assert!(!e.apply_patch(&other, &patch, &mut out));
    assert!(!e.apply_patch(&r, &patch[..patch.len() - 1], &mut out));
    assert!(out.is_empty());
    // Facts that are not facts: counted as malformed, never a panic.
    assert!(matches!(
        e2.patch_facts(&[0, 5, 9, 9], &mut patch),
        Outcome::Malformed(_)
    ));
}
