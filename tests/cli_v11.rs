//! SPEC v1.1's rules through the built `credlineage` CLI, as a user runs it:
//! one trail file holding each finding of issue #10, enriched in batch mode
//! (the default for files), in `--order stream`, and from stdin; every mode
//! must give the library's annotations, and the values v1.1 asks for.

mod common;

use common::*;
use credlineage::Config;
use serde_json::{Value, json};

const AKIA_USER: &str = "AKIAWOGXN38MFN92ING5";
const IK: &str = "ASIAQ4PXEXAMPLEINST2";
const IROLE: &str = "web-instance-profile-role";
const IID: &str = "i-0a1b2c3d4e5f60718";
const OUTSIDE: &str = "198.51.100.77";
const AWS_NAT: &str = "52.4.0.20";

fn inst(offset: i64, ip: &str, vpce: bool) -> Value {
    let mut r = call(
        "DescribeTags",
        "ec2.amazonaws.com",
        &iso(t0() + offset),
        instance_role(IK, IROLE, IID, T0),
        ip,
    );
    if vpce {
        r["vpcEndpointId"] = json!("vpce-0f1e2d3c4b5a69788");
        r["vpcEndpointAccountId"] = json!(ACCT);
    }
    r
}

/// The trail, with what each record must say (index → check) in both orders.
fn trail() -> Vec<Value> {
    let (k1, k2) = ("ASIAQ4PXEXAMPLEPIVT1", "ASIAQ4PXEXAMPLECHNA2");
    let kc = "ASIAQ4PXEXAMPLECHNA1";
    let kl = "ASIAQ4PXEXAMPLELATE1";
    let late_issue = assume_role(
        iam_user(AKIA_USER, "christophe"),
        &iso(t0() + 100),
        "role-l",
        "late",
        kl,
        "203.0.113.10",
    );
    vec![
        // 0-1: an instance that talks to AWS only through its VPC endpoint.
        inst(0, "10.0.1.5", true),
        inst(10, "10.0.1.5", true),
        // 2: the thief's internet address.
        inst(20, OUTSIDE, false),
        // 3: ...pivots into a role from there; 4: the role is used.
        assume_role(
            instance_role(IK, IROLE, IID, T0),
            &iso(t0() + 30),
            "admin",
            "x",
            k1,
            OUTSIDE,
        ),
        gci(
            &iso(t0() + 40),
            assumed_role(k1, "admin", "x", &iso(t0() + 30)),
            "203.0.113.200",
        ),
        // 5-6: a NAT gateway inside AWS shared with a user's key.
        call(
            "ListBuckets",
            "s3.amazonaws.com",
            &iso(t0() + 50),
            iam_user(AKIA_USER, "christophe"),
            AWS_NAT,
        ),
        inst(60, AWS_NAT, false),
        // 7-8: a same-second chain, the child's issuance first.
        assume_role(
            assumed_role(kc, "role-a", "s1", &iso(t0() + 70)),
            &iso(t0() + 70),
            "role-b",
            "s2",
            k2,
            "203.0.113.10",
        ),
        assume_role(
            iam_user(AKIA_USER, "christophe"),
            &iso(t0() + 70),
            "role-a",
            "s1",
            kc,
            "203.0.113.10",
        ),
        // 9: a use of the chain's last credential.
        gci(
            &iso(t0() + 75),
            assumed_role(k2, "role-b", "s2", &iso(t0() + 70)),
            "203.0.113.10",
        ),
        // 10: a use before its late issuance (creationDate 1 s after it),
        // 11-12: the issuance delivered twice, 13: a later use.
        gci(
            &iso(t0() + 105),
            assumed_role(kl, "role-l", "late", &iso(t0() + 101)),
            "203.0.113.10",
        ),
        late_issue.clone(),
        late_issue,
        gci(
            &iso(t0() + 110),
            assumed_role(kl, "role-l", "late", &iso(t0() + 101)),
            "203.0.113.10",
        ),
    ]
}

fn anns(stdout: &[u8]) -> Vec<Value> {
    stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(ann)
        .collect()
}

fn check(a: &[Value], batch: bool) {
    let mode = if batch { "batch" } else { "stream" };
    assert_eq!(a.len(), 14, "{mode}");
    for i in [0, 1, 5, 6] {
        assert_eq!(a[i]["ec2_cred_offhost"], false, "{mode} {i}: {}", a[i]);
    }
    for i in [2, 3] {
        assert_eq!(
            a[i]["offhost_reason"], "outside_aws",
            "{mode} {i}: {}",
            a[i]
        );
    }
    assert_eq!(a[4]["offhost_ancestor"], true, "{mode}: {}", a[4]);
    assert_eq!(a[4]["ec2_cred_offhost"], false, "{mode}");
    assert_eq!(a[9]["lineage_root"], AKIA_USER, "{mode}: {}", a[9]);
    assert_eq!(a[9]["lineage_depth"], 2, "{mode}");
    if batch {
        assert_eq!(a[7]["lineage_root"], AKIA_USER, "{mode}: {}", a[7]);
        assert_eq!(a[7]["issued"]["lineage_depth"], 2, "{mode}");
        assert_eq!(a[10]["lineage_root"], AKIA_USER, "{mode}: {}", a[10]);
    }
    let fp = &a[10]["session_fingerprint"];
    for (i, x) in a.iter().enumerate().skip(10) {
        assert_eq!(x["is_key_collision"], false, "{mode} {i}: {x}");
    }
    assert_eq!(&a[11]["issued"]["session_fingerprint"], fp, "{mode}");
    assert_eq!(&a[12]["issued"]["session_fingerprint"], fp, "{mode}");
    assert_eq!(&a[13]["session_fingerprint"], fp, "{mode}");
    assert_eq!(a[13]["lineage_root"], AKIA_USER, "{mode}");
}

#[test]
fn v11_trail_through_the_cli_in_batch_stream_and_stdin() {
    let recs = trail();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trail.jsonl");
    let text: String = recs
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    std::fs::write(&path, &text).unwrap();
    let p = path.to_str().unwrap();

    let batch = cli(&["enrich", "--quiet", p], None);
    assert_eq!(batch.code, 0, "{}", batch.stderr);
    let b = anns(&batch.stdout);
    check(&b, true);
    assert_eq!(b, run_time_order(Config::default(), &recs));

    let stream = cli(&["enrich", "--quiet", "--order", "stream", p], None);
    assert_eq!(stream.code, 0, "{}", stream.stderr);
    let s = anns(&stream.stdout);
    check(&s, false);
    assert_eq!(s, run(&recs));

    let stdin = cli(&["enrich", "--quiet", "-"], Some(text.as_bytes()));
    assert_eq!(stdin.stdout, stream.stdout);

    // Turning the AWS ranges off gives the v1 trust on first use.
    let off = cli(
        &[
            "enrich",
            "--quiet",
            "--aws-ip-ranges",
            "off",
            "--order",
            "stream",
            p,
        ],
        None,
    );
    assert_eq!(off.code, 0, "{}", off.stderr);
    let o = anns(&off.stdout);
    assert_eq!(o[2]["ec2_cred_offhost"], false, "{}", o[2]);
}

/// `--trusted-account` excuses a central networking account's endpoint.
#[test]
fn trusted_account_flag() {
    let mut r = inst(0, "10.0.1.5", true);
    r["vpcEndpointAccountId"] = json!("999988887777");
    let line = serde_json::to_string(&r).unwrap() + "\n";
    let flagged = cli(&["enrich", "--quiet", "-"], Some(line.as_bytes()));
    assert_eq!(
        anns(&flagged.stdout)[0]["offhost_reason"],
        "foreign_vpc_endpoint"
    );
    let trusted = cli(
        &[
            "enrich",
            "--quiet",
            "--trusted-account",
            "999988887777",
            "-",
        ],
        Some(line.as_bytes()),
    );
    assert_eq!(anns(&trusted.stdout)[0]["ec2_cred_offhost"], false);
    let bad = cli(
        &["enrich", "--quiet", "--trusted-account", "central", "-"],
        Some(line.as_bytes()),
    );
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("12-digit"), "{}", bad.stderr);
}
