//! Unit tests of the generator: determinism, counts, every kind, and records that agree with their truth (v1 and v1.1 shapes). Longer than the other modules: one test per property of the trail, kept together.

use super::*;
use std::collections::{HashMap, HashSet};

use serde_json::Value;

/// SPEC 3.6, test-only.
fn decode_account(key: &str) -> Option<String> {
    let fifth = *key.as_bytes().get(4)?;
    if !(b'Q'..=b'Z').contains(&fifth) && !(b'2'..=b'7').contains(&fifth) {
        return None;
    }
    let mut bits: u128 = 0;
    let mut n = 0;
    for c in key.get(4..)?.bytes() {
        let d = B32.iter().position(|&x| x == c)? as u128;
        bits = (bits << 5) | d;
        n += 5;
    }
    // First 48 bits of the decoded stream.
    let z = (bits >> (n - 48)) as u64;
    Some(format!("{:012}", (z & 0x7fff_ffff_ff80) >> 7))
}

fn cfg(seed: u64, records: usize) -> TrailConfig {
    TrailConfig {
        seed,
        records,
        ..TrailConfig::default()
    }
}

fn parse(line: &str) -> Value {
    serde_json::from_str(line).expect("generated line is JSON")
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str()
}

#[test]
fn decoder_matches_spec_vectors() {
    assert_eq!(
        decode_account("ASIAY34FZKBOKMUTVV7A").as_deref(),
        Some("609629065308")
    );
    assert_eq!(
        decode_account("ASIAQNZGKIQY56JQ7WML").as_deref(),
        Some("029608264753")
    );
    assert_eq!(
        decode_account("AKIASP2TPHJSQH3FJXYZ").as_deref(),
        Some("171436882533")
    );
    assert_eq!(decode_account("AKIAIOSFODNN7EXAMPLE"), None);
}

#[test]
fn key_id_roundtrips_through_spec_decoding() {
    let mut rng = Rng::with_seed(7);
    for account in [
        0u64,
        29_608_264_753,
        171_436_882_533,
        609_629_065_308,
        999_999_999_999,
    ] {
        for prefix in ["AKIA", "ASIA"] {
            let key = key_id_for_account(prefix, account, &mut rng);
            assert_eq!(key.len(), 20);
            assert!(key.starts_with(prefix));
            let fifth = key.as_bytes()[4];
            assert!((b'Q'..=b'Z').contains(&fifth) || (b'2'..=b'7').contains(&fifth));
            assert_eq!(decode_account(&key), Some(format!("{account:012}")));
        }
    }
}

#[test]
fn exact_count_and_no_panic_on_odd_configs() {
    let odd = [
        TrailConfig {
            records: 0,
            ..TrailConfig::default()
        },
        TrailConfig {
            records: 1,
            accounts: 0,
            ..TrailConfig::default()
        },
        TrailConfig {
            records: 777,
            start_time: i64::MIN,
            accounts: usize::MAX,
            disorder: u32::MAX,
            seed: u64::MAX,
            v11_shapes: false,
            redelivery: false,
        },
        TrailConfig {
            records: 500,
            start_time: i64::MAX,
            accounts: 1,
            disorder: 5,
            seed: 0,
            v11_shapes: false,
            redelivery: false,
        },
        TrailConfig {
            records: 3000,
            start_time: i64::MAX,
            accounts: 1,
            disorder: u32::MAX,
            seed: 0,
            v11_shapes: true,
            redelivery: true,
        },
        TrailConfig {
            records: 2000,
            start_time: i64::MIN,
            accounts: usize::MAX,
            disorder: 0,
            seed: 3,
            v11_shapes: true,
            redelivery: true,
        },
    ];
    for c in odd {
        let want = c.records;
        let t = trail(c);
        assert_eq!(t.len(), want);
        let lines: Vec<_> = t.collect();
        assert_eq!(lines.len(), want);
        for r in &lines {
            assert!(parse(&r.line).is_object());
        }
    }
}

#[test]
fn same_seed_same_bytes() {
    for (disorder, v11) in [(0, false), (30, false), (0, true), (30, true)] {
        let c = TrailConfig {
            disorder,
            v11_shapes: v11,
            redelivery: v11,
            ..cfg(42, 5000)
        };
        let a: Vec<_> = trail(c.clone()).collect();
        let b: Vec<_> = trail(c.clone()).collect();
        assert_eq!(a, b);
        let a: Vec<_> = trail(c.clone()).lines(300).collect();
        let b: Vec<_> = trail(c).lines(300).collect();
        assert_eq!(a, b);
    }
    let a: Vec<_> = trail(cfg(1, 200)).map(|r| r.line).collect();
    let b: Vec<_> = trail(cfg(2, 200)).map(|r| r.line).collect();
    assert_ne!(a, b);
}

#[test]
fn twenty_thousand_records_are_json_objects_with_every_kind() {
    every_kind(cfg(3, 20_000), &V1_KINDS);
    every_kind(
        TrailConfig {
            seed: 3,
            records: 20_000,
            ..TrailConfig::v11()
        },
        &KINDS,
    );
    // The v1 mix has none of the v1.1 kinds.
    for r in trail(cfg(4, 20_000)) {
        assert!(V1_KINDS.contains(&r.truth.kind), "{}", r.truth.kind);
        assert!(!r.truth.duplicate && !r.truth.late && !r.truth.lake_time);
    }
}

fn every_kind(c: TrailConfig, want: &[&str]) {
    let mut kinds: HashMap<&str, usize> = HashMap::new();
    let mut bytes = 0usize;
    for r in trail(c) {
        assert!(!r.line.contains('\n'));
        let v = parse(&r.line);
        assert!(v.is_object());
        for f in [
            "eventVersion",
            "eventTime",
            "eventSource",
            "eventName",
            "eventID",
        ] {
            assert!(v.get(f).is_some(), "{f} missing in {}", r.line);
        }
        *kinds.entry(r.truth.kind).or_default() += 1;
        bytes += r.line.len();
    }
    for k in want {
        assert!(kinds.contains_key(k), "kind {k} missing: {kinds:?}");
    }
    let avg = bytes / 20_000;
    assert!((800..=1500).contains(&avg), "average record size {avg}");
}

#[test]
fn event_time_order_and_bounded_disorder() {
    let sorted: Vec<_> = trail(cfg(5, 5000))
        .map(|r| s(&parse(&r.line), &["eventTime"]).map(str::to_string))
        .collect();
    assert!(sorted.windows(2).all(|w| w[0] <= w[1]));

    let d = 30;
    let times: Vec<i64> = trail(TrailConfig {
        disorder: d,
        ..cfg(5, 5000)
    })
    .map(|r| {
        let t = s(&parse(&r.line), &["eventTime"])
            .unwrap_or_default()
            .to_string();
        DateTime::parse_from_rfc3339(&t).map_or(0, |x| x.timestamp())
    })
    .collect();
    let mut max_seen = i64::MIN;
    let mut inversions = 0;
    for &t in &times {
        if t < max_seen {
            inversions += 1;
            assert!(max_seen - t <= i64::from(d), "{max_seen} then {t}");
        }
        max_seen = max_seen.max(t);
    }
    assert!(inversions > 0, "disorder produced no out-of-order record");
}

/// The records agree with their Truth, and with SPEC's rules.
#[test]
fn records_agree_with_truth() {
    // (key, arn) → (creationDate, root, depth) from the issuance.
    let mut issued: HashMap<(String, String), (String, Option<String>)> = HashMap::new();
    let mut instance_ip_first: HashMap<String, String> = HashMap::new();
    let mut user_ips: HashSet<String> = HashSet::new();
    let mut collided: HashMap<String, HashSet<String>> = HashMap::new();
    let mut collided_at: HashMap<String, String> = HashMap::new();
    let mut created_keys: HashSet<String> = HashSet::new();
    let mut offhost = 0;
    for r in trail(cfg(11, 20_000)) {
        let v = parse(&r.line);
        let t = &r.truth;
        let ui = &v["userIdentity"];
        let key = s(ui, &["accessKeyId"]);
        let ty = s(ui, &["type"]).unwrap_or_default();
        let time = s(&v, &["eventTime"]).unwrap_or_default().to_string();
        // Truth has a root exactly when the record carries a key.
        assert_eq!(key.is_some(), t.lineage_root.is_some(), "{}", r.line);
        assert_eq!(key.is_some(), t.lineage_depth.is_some());
        if let Some(k) = key {
            let acct = s(ui, &["accountId"]).unwrap_or_default();
            assert_eq!(decode_account(k).as_deref(), Some(acct), "{k}");
            if k.starts_with("AKIA") {
                assert_eq!(t.lineage_depth, Some(0));
                if t.kind != "created_key" || v["eventName"] != "CreateAccessKey" {
                    assert_eq!(t.lineage_root.as_deref(), Some(k));
                }
                if ty == "IAMUser" {
                    user_ips.insert(s(&v, &["sourceIPAddress"]).unwrap_or_default().into());
                }
            } else {
                let arn = s(ui, &["arn"]).unwrap_or_default().to_string();
                let created =
                    s(ui, &["sessionContext", "attributes", "creationDate"]).unwrap_or_default();
                let (when, _) = issued
                    .get(&(k.to_string(), arn.clone()))
                    .unwrap_or_else(|| panic!("no issuance for {k} {arn}"));
                assert_eq!(when, created);
                assert!(t.lineage_depth.unwrap_or(0) >= 1);
            }
        }
        if t.kind == "created_key" && v["eventName"] != "CreateAccessKey" {
            assert!(created_keys.contains(key.unwrap_or_default()));
        }
        // Issuances: remember what they created.
        let creds = &v["responseElements"]["credentials"];
        if let Some(new_key) = s(creds, &["accessKeyId"]) {
            assert!(
                s(creds, &["sessionToken"])
                    .unwrap_or_default()
                    .starts_with(TOKEN_PREFIX)
            );
            let arn = s(&v["responseElements"], &["assumedRoleUser", "arn"])
                .or_else(|| s(&v["responseElements"], &["federatedUser", "arn"]))
                .map(str::to_string)
                .or_else(|| {
                    let rp = &v["requestParameters"];
                    let role = s(rp, &["roleArn"])?;
                    let (acct, name) = role.strip_prefix("arn:aws:iam::")?.split_once(":role/")?;
                    Some(format!(
                        "arn:aws:sts::{acct}:assumed-role/{name}/{}",
                        s(rp, &["roleSessionName"])?
                    ))
                })
                .unwrap_or_else(|| s(ui, &["arn"]).unwrap_or_default().to_string());
            issued.insert((new_key.to_string(), arn.clone()), (time.clone(), None));
            if t.kind == "collision" {
                collided.entry(new_key.to_string()).or_default().insert(arn);
                let first = collided_at
                    .entry(new_key.to_string())
                    .or_insert(time.clone());
                assert_eq!(*first, time, "collision pair not in one second");
            }
            let used_collided = key.is_some_and(|k| collided.contains_key(k));
            assert_eq!(t.collision, used_collided || collided.contains_key(new_key));
            let exp = s(creds, &["expiration"]).unwrap_or_default();
            let exp = chrono::NaiveDateTime::parse_from_str(exp, "%b %-d, %Y, %-I:%M:%S %p")
                .expect("expiration format")
                .and_utc()
                .timestamp();
            let now = DateTime::parse_from_rfc3339(&time).map_or(0, |x| x.timestamp());
            assert!(
                (900..=3600).contains(&(exp - now)),
                "lifetime {}",
                exp - now
            );
            assert!(v.get("errorCode").is_none());
        }
        if let Some(k) = s(&v["responseElements"], &["accessKey", "accessKeyId"]) {
            created_keys.insert(k.to_string());
        }
        if t.kind == "failed_sts" {
            assert_eq!(v["errorCode"], "AccessDenied");
            assert!(v["responseElements"].is_null());
        }
        // EC2: first use on-host, off-host only from an IAM user's IP.
        if let Some(iid) = s(ui, &["principalId"]).and_then(|p| p.split_once(":i-")) {
            assert_eq!(s(ui, &["sessionContext", "ec2RoleDelivery"]), Some("2.0"));
            let ip = s(&v, &["sourceIPAddress"]).unwrap_or_default().to_string();
            let iid = iid.1.to_string();
            match t.kind {
                "ec2_onhost" => {
                    let first = instance_ip_first.entry(iid).or_insert(ip.clone());
                    assert_eq!(*first, ip);
                }
                "ec2_vpce" => {
                    assert!(ip.starts_with("10."));
                    assert!(v.get("vpcEndpointId").is_some());
                    assert!(instance_ip_first.contains_key(&iid));
                }
                "ec2_offhost" => {
                    offhost += 1;
                    assert!(t.offhost);
                    assert!(user_ips.contains(&ip), "attacker IP {ip} unseen");
                    assert_ne!(instance_ip_first.get(&iid), Some(&ip));
                }
                k => panic!("instance credential with kind {k}"),
            }
        } else {
            assert!(!t.offhost);
        }
        if v["responseElements"]["credentials"].is_null() {
            let used_collided = key.is_some_and(|k| collided.contains_key(k));
            assert_eq!(t.collision, used_collided, "{}", r.line);
        }
    }
    assert!(offhost > 0);
    assert!(!collided.is_empty());
    for (k, arns) in collided {
        assert_eq!(arns.len(), 2, "collision {k} must join two distinct ARNs");
    }
}

#[test]
fn pools_stay_bounded() {
    let mut t = trail(TrailConfig {
        disorder: 100_000,
        ..cfg(9, 150_000)
    });
    for _ in t.by_ref() {}
    let sim = &t.sim;
    assert!(sim.creds.len() <= CRED_CAP);
    assert!(sim.instances.len() <= INSTANCE_CAP);
    assert!(sim.fresh.len() <= FRESH_CAP);
    assert!(sim.out.len() < 16);
    assert!(t.heap.len() <= HEAP_CAP);
    assert!(
        sim.accounts
            .iter()
            .all(|a| a.users.len() == 6 && a.backdoors.len() <= BACKDOORS_PER_ACCOUNT)
    );
}

fn in_aws_v4(ip: &str) -> bool {
    let Ok(a) = ip.parse::<std::net::Ipv4Addr>() else {
        return false;
    };
    let a = u32::from(a);
    AWS_V4.iter().any(|(base, len)| {
        let mask = u32::MAX << (32 - len);
        a & mask == u32::from_be_bytes(*base)
    })
}

fn in_aws_v6(ip: &str) -> bool {
    let Ok(a) = ip.parse::<std::net::Ipv6Addr>() else {
        return false;
    };
    let a = u128::from(a);
    AWS_V6.iter().any(|(base, len)| {
        let mask = u128::MAX << (128 - len);
        a & mask == *base
    })
}

/// The v1.1 shapes are what their truth says (record by record).
#[test]
fn v11_records_agree_with_truth() {
    let c = TrailConfig {
        seed: 17,
        records: 30_000,
        redelivery: false,
        ..TrailConfig::v11()
    };
    let mut issued: HashSet<String> = HashSet::new();
    let mut launched: HashSet<String> = HashSet::new();
    // address -> identities (not instance credentials) that used it, first second
    let mut ident_ips: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut nat_user_ips: HashSet<String> = HashSet::new();
    let mut nat_instances: HashMap<String, HashSet<String>> = HashMap::new();
    let mut ssrf_ips: HashSet<String> = HashSet::new();
    let mut pending_parent: HashSet<String> = HashSet::new();
    let mut child_first = 0;
    let mut moved: HashMap<String, String> = HashMap::new();
    let mut own_ip: HashMap<String, String> = HashMap::new();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for r in trail(c) {
        let v = parse(&r.line);
        let t = &r.truth;
        *counts.entry(t.kind).or_default() += 1;
        let ui = &v["userIdentity"];
        let key = s(ui, &["accessKeyId"]).unwrap_or_default().to_string();
        let arn = s(ui, &["arn"]).unwrap_or_default().to_string();
        let ip = s(&v, &["sourceIPAddress"]).unwrap_or_default().to_string();
        let time = s(&v, &["eventTime"]).unwrap_or_default().to_string();
        assert_eq!(t.lake_time, time.contains(' '), "{time}");
        assert!(t.lake_time || time.ends_with('Z'));
        let time = time
            .replace(' ', "T")
            .get(..19)
            .unwrap_or_default()
            .to_string();
        let instance = s(ui, &["sessionContext", "ec2RoleDelivery"]).is_some();
        let session = arn.rsplit('/').next().unwrap_or_default().to_string();
        assert_eq!(instance, t.ec2_instance_id.is_some(), "{}", r.line);
        if let Some(id) = &t.ec2_instance_id {
            assert_eq!(*id, session);
            assert!(launched.contains(id));
        }
        if let Some(id) = s(
            &v["responseElements"]["instancesSet"]["items"][0],
            &["instanceId"],
        ) {
            launched.insert(id.to_string());
        }
        if !instance && !key.is_empty() && !ip.ends_with(".amazonaws.com") {
            ident_ips
                .entry(ip.clone())
                .or_default()
                .entry(arn.clone())
                .or_insert(time.clone());
        }
        if key.starts_with("ASIA") {
            if matches!(t.kind, "sso_unobserved" | "service_linked") {
                assert!(!issued.contains(&key));
            }
            if !issued.contains(&key) && t.kind != "same_second_chain" {
                let root = t.lineage_root.as_deref().unwrap_or_default();
                assert!(
                    root.starts_with("saml:AWSSSO/") || root.starts_with("service:"),
                    "{}",
                    r.line
                );
            }
        }
        if t.kind == "same_second_chain" && key.starts_with("ASIA") && !issued.contains(&key) {
            pending_parent.insert(key.clone());
        }
        if let Some(k) = s(&v["responseElements"]["credentials"], &["accessKeyId"]) {
            if pending_parent.remove(k) {
                assert!(matches!(t.kind, "same_second_chain" | "cross_account"));
                child_first += 1;
            }
            issued.insert(k.to_string());
        }
        match t.kind {
            "ec2_onhost" | "ec2_moved" | "ec2_nat" => {
                assert!(in_aws_v4(&ip), "{ip} not in AWS: {}", r.line);
                assert!(v.get("vpcEndpointId").is_none());
                if t.kind == "ec2_nat" {
                    nat_instances
                        .entry(ip.clone())
                        .or_default()
                        .insert(session.clone());
                }
                if t.kind == "ec2_moved" {
                    assert_ne!(own_ip.get(&session), Some(&ip), "move kept the address");
                    moved.insert(session.clone(), ip.clone());
                } else {
                    own_ip.insert(session.clone(), ip.clone());
                }
            }
            "ec2_ipv6" => assert!(in_aws_v6(&ip), "{ip}"),
            "ec2_vpce" => {
                assert!(ip.starts_with("10."));
                assert_eq!(v["vpcEndpointAccountId"], v["recipientAccountId"]);
            }
            "ec2_ssrf" => {
                assert!(ip.starts_with("203.0.113."));
                assert_eq!(t.offhost_reason, Some("outside_aws"));
                ssrf_ips.insert(ip.clone());
            }
            "ec2_offhost" => {
                let who = t.offhost_other_identity.clone().unwrap_or_default();
                assert!(who.ends_with(":user/ext-contractor"));
                let users = ident_ips.get(&ip).cloned().unwrap_or_default();
                let first = users
                    .get(&who)
                    .expect("attacker user used the address before");
                assert!(*first < time, "{first} not before {time}");
                assert_eq!(users.len(), 1, "{ip} used by {users:?}");
            }
            "ec2_pivot" => {
                assert!(instance && v["eventName"] == "AssumeRole");
                assert!(ip.starts_with("91."));
                assert!(!ident_ips.contains_key(&ip), "{ip} used before the pivot");
            }
            "pivot_session" => assert!(t.offhost_ancestor && !instance),
            "nat_user" => {
                nat_user_ips.insert(ip.clone());
            }
            "fake_instance" if !key.starts_with("AKIA") => {
                assert!(session.starts_with("i-0") && launched.contains(&session));
            }
            "sso_unobserved" | "sso" if key.starts_with("ASIA") => {
                assert_eq!(t.lineage_root, Some(format!("saml:AWSSSO/{session}")));
                assert!(arn.contains(":assumed-role/AWSReservedSSO_"));
            }
            "service_linked" => {
                let issuer = s(ui, &["sessionContext", "sessionIssuer", "arn"]).unwrap_or_default();
                let service = issuer.split('/').nth(2).unwrap_or_default();
                assert!(issuer.contains(":role/aws-service-role/"));
                assert_eq!(t.lineage_root, Some(format!("service:{service}/{session}")));
                assert_eq!(ip, service);
            }
            "ec2_eip_move" => {
                assert!(v["requestParameters"].get("publicIp").is_none());
                assert!(v["requestParameters"].get("allocationId").is_some());
            }
            _ => {}
        }
        assert!(
            !t.offhost_ancestor
                || t.kind == "pivot_session"
                || t.kind == "chain"
                || t.kind == "failed_sts",
            "{}",
            t.kind
        );
    }
    // SSRF addresses are never an identity's; NAT addresses are shared.
    for ip in &ssrf_ips {
        assert!(!ident_ips.contains_key(ip), "{ip}");
    }
    for (ip, ids) in &nat_instances {
        assert!(nat_user_ips.contains(ip), "{ip}");
        let _ = ids;
    }
    assert!(
        nat_instances.values().any(|ids| ids.len() >= 2),
        "{nat_instances:?}"
    );
    assert!(child_first > 0, "no chain written child first");
    assert!(!moved.is_empty());
    for k in KINDS {
        assert!(counts.get(k).copied().unwrap_or(0) > 0, "{k}: {counts:?}");
    }
}

/// Duplicates repeat an earlier line; late records come after later ones.
#[test]
fn redelivery_duplicates_and_delays() {
    let c = TrailConfig {
        seed: 23,
        records: 20_000,
        ..TrailConfig::v11()
    };
    let mut seen: HashSet<String> = HashSet::new();
    let (mut dups, mut late) = (0, 0);
    let mut max_time = String::new();
    for r in trail(c) {
        let v = parse(&r.line);
        let time = s(&v, &["eventTime"]).unwrap_or_default().replace(' ', "T");
        let time = time.get(..19).unwrap_or_default().to_string();
        if r.truth.duplicate {
            dups += 1;
            assert!(seen.contains(&r.line), "duplicate before its original");
        } else {
            assert!(
                seen.insert(r.line.clone()),
                "a line repeated without being a duplicate"
            );
        }
        if r.truth.late {
            late += 1;
            let behind = DateTime::parse_from_rfc3339(&format!("{max_time}Z"))
                .map_or(0, |m| m.timestamp())
                - DateTime::parse_from_rfc3339(&format!("{time}Z")).map_or(0, |m| m.timestamp());
            assert!((0..=900).contains(&behind), "{behind}");
        }
        if time > max_time {
            max_time = time;
        }
    }
    assert!(dups > 100 && late > 50, "{dups} {late}");
}

#[test]
fn cloudwatch_envelopes_hold_the_records() {
    let c = TrailConfig {
        seed: 29,
        records: 5_000,
        ..TrailConfig::v11()
    };
    let plain: Vec<_> = trail(c.clone()).collect();
    let mut n = 0;
    let mut envelopes = 0;
    for l in trail(c).lines(250) {
        let v = parse(&l.line);
        if v.get("messageType").is_some() {
            envelopes += 1;
            assert_eq!(v["messageType"], "DATA_MESSAGE");
            let events = v["logEvents"].as_array().expect("logEvents");
            assert_eq!(events.len(), l.truths.len());
            assert!((1..=5).contains(&events.len()));
            for e in events {
                assert_eq!(e["id"].as_str().map(str::len), Some(56));
                assert!(
                    e["timestamp"]
                        .as_i64()
                        .is_some_and(|t| t > 1_000_000_000_000)
                );
                assert_eq!(e["message"].as_str(), Some(plain[n].line.as_str()));
                n += 1;
            }
        } else {
            assert_eq!(l.line, plain[n].line);
            n += 1;
        }
    }
    assert_eq!(n, plain.len());
    assert!(envelopes > 100, "{envelopes}");
}

#[test]
fn kinds_are_distinct() {
    let set: HashSet<_> = KINDS.iter().collect();
    assert_eq!(set.len(), KINDS.len());
}
