//! The rules SPEC v1.1 changed, one test (or more) per finding of issue #10:
//! EC2 off-host use against AWS's address space, who an instance credential
//! is, lineage resolved after the fact, credential sets that never split,
//! per-kind liveness, one root per Identity Center user, service-linked
//! roles and the clock. Library level, streaming and batch (time order);
//! `tests/cli_v11.rs` runs the same shapes through the built CLI.

mod common;

use common::*;
use credlineage::Config;
use serde_json::{Value, json};

const AKIA_USER: &str = "AKIAWOGXN38MFN92ING5";
const USER: &str = "christophe";
const IK: &str = "ASIAQ4PXEXAMPLEINST2";
const IROLE: &str = "web-instance-profile-role";
const IID: &str = "i-0a1b2c3d4e5f60718";
const IID2: &str = "i-0fedcba9876543210";
/// Addresses inside AWS's published ranges (EC2, us-east-1: 52.4.0.0/14).
const AWS_NAT: &str = "52.4.0.20";
const AWS_B: &str = "52.4.0.21";
/// Outside AWS: a documentation range is public (SPEC 3.5).
const OUTSIDE: &str = "198.51.100.77";

fn user_arn(user: &str) -> String {
    format!("arn:aws:iam::{ACCT}:user/{user}")
}

fn inst_call_as(key: &str, instance: &str, offset: i64, ip: &str) -> Value {
    call(
        "DescribeTags",
        "ec2.amazonaws.com",
        &iso(t0() + offset),
        instance_role(key, IROLE, instance, T0),
        ip,
    )
}

fn inst_call(offset: i64, ip: &str) -> Value {
    inst_call_as(IK, IID, offset, ip)
}

fn user_call(offset: i64, ip: &str) -> Value {
    call(
        "ListBuckets",
        "s3.amazonaws.com",
        &iso(t0() + offset),
        iam_user(AKIA_USER, USER),
        ip,
    )
}

/// Both orders the CLI offers: streaming (input order) and batch (time order).
fn both(records: &[Value]) -> [Vec<Value>; 2] {
    [run(records), run_time_order(Config::default(), records)]
}

// =========================================================================
// SPEC 3.5: stolen EC2 credentials
// =========================================================================

/// An instance that reaches AWS only through its VPC endpoints never
/// "learns" a public address; the thief's internet address is flagged at once.
#[test]
fn vpc_endpoint_only_instance_then_internet_address_is_outside_aws() {
    let mut recs: Vec<Value> = (0..3)
        .map(|i| {
            let mut r = inst_call(i * 60, "10.0.1.5");
            r["vpcEndpointId"] = json!("vpce-0f1e2d3c4b5a69788");
            r["vpcEndpointAccountId"] = json!(ACCT);
            r
        })
        .collect();
    recs.push(inst_call(300, OUTSIDE));
    recs.push(inst_call(360, OUTSIDE));
    for a in both(&recs) {
        assert_eq!(
            offhost_flags(&a),
            vec![ON, ON, ON, reason("outside_aws"), reason("outside_aws")]
        );
        assert_eq!(a[3]["ec2_instance_id"], IID);
    }
}

/// Trust on first use never applies outside AWS: an address outside AWS is
/// off-host even as the first address the instance credentials are seen at.
#[test]
fn outside_aws_is_offhost_whatever_trust_on_first_use_learned() {
    let a = run(&[inst_call(0, OUTSIDE), inst_call(10, OUTSIDE)]);
    assert_eq!(
        offhost_flags(&a),
        vec![reason("outside_aws"), reason("outside_aws")]
    );
    // The same address with the AWS ranges turned off: v1 behaviour (trusted first use).
    let cfg = Config::from_json(br#"{"aws_ip_ranges":"off"}"#).unwrap();
    let a = run_with(
        cfg,
        &[
            inst_call(0, OUTSIDE),
            inst_call(10, OUTSIDE),
            inst_call(20, "198.51.100.78"),
        ],
    );
    assert_eq!(
        offhost_flags(&a),
        vec![ON, ON, reason("new_ip_for_instance")]
    );
}

/// A NAT gateway (an AWS address) shared by instances and a CI user's key
/// flags nobody: `ip_used_by_other_identity` applies only outside AWS.
#[test]
fn nat_gateway_inside_aws_shared_with_a_user_flags_nothing() {
    let recs = vec![
        user_call(0, AWS_NAT),
        inst_call(10, AWS_NAT),
        user_call(20, AWS_NAT),
        inst_call_as("ASIAQ4PXEXAMPLEINST3", IID2, 30, AWS_NAT),
        inst_call(40, AWS_NAT),
    ];
    for a in both(&recs) {
        assert_eq!(offhost_flags(&a), vec![ON; 5]);
        assert!(a.iter().all(|x| x.get("offhost_other_identity").is_none()));
    }
}

/// Outside AWS, the person who used the same address is named.
#[test]
fn outside_aws_address_of_a_user_names_the_other_identity() {
    let recs = vec![user_call(0, OUTSIDE), inst_call(10, OUTSIDE)];
    for a in both(&recs) {
        assert_eq!(offhost_flags(&a)[1], reason("ip_used_by_other_identity"));
        assert_eq!(a[1]["offhost_other_identity"], user_arn(USER));
    }
    // A role session rooted at the user's key counts as the user too.
    let recs = vec![
        assume_role(
            iam_user(AKIA_USER, USER),
            T0,
            "deploy",
            "ci-run",
            "ASIAQ4PXEXAMPLEDEPL1",
            OUTSIDE,
        ),
        inst_call(10, OUTSIDE),
    ];
    let a = run(&recs);
    assert_eq!(offhost_flags(&a)[1], reason("ip_used_by_other_identity"));
    assert_eq!(a[1]["offhost_other_identity"], user_arn(USER));
}

/// Trusted addresses are kept per scope (family × private / public): the
/// first address of each scope is learned; a second one is new.
#[test]
fn trust_on_first_use_per_scope_dual_stack() {
    let recs = vec![
        inst_call(0, "10.0.1.5"),
        inst_call(10, AWS_NAT),
        inst_call(20, "fd00:10::5"),
        inst_call(30, "2600:1f18:1234::5"),
        inst_call(40, "10.0.1.5"),
        inst_call(50, AWS_NAT),
        inst_call(60, "2600:1f18:1234::5"),
        inst_call(70, "fd00:10::6"),
        inst_call(80, "2600:1f18:1234::6"),
        inst_call(90, AWS_B),
    ];
    for a in both(&recs) {
        assert_eq!(
            offhost_flags(&a),
            vec![
                ON,
                ON,
                ON,
                ON,
                ON,
                ON,
                ON,
                reason("new_ip_for_instance"),
                reason("new_ip_for_instance"),
                reason("new_ip_for_instance")
            ]
        );
    }
}

fn associate(offset: i64, params: Value, assoc: Option<&str>) -> Value {
    let mut r = call(
        "AssociateAddress",
        "ec2.amazonaws.com",
        &iso(t0() + offset),
        iam_user(AKIA_USER, USER),
        "203.0.113.10",
    );
    r["readOnly"] = json!(false);
    r["requestParameters"] = params;
    r["responseElements"] = match assoc {
        Some(a) => json!({ "requestId": "0d2e0a39", "_return": true, "associationId": a }),
        None => json!({ "requestId": "0d2e0a39", "_return": true }),
    };
    r
}

/// An Elastic IP associated by `allocationId` names no address: the
/// instance's trusted public addresses are cleared and the next AWS address
/// is learned, not flagged. The same after `DisassociateAddress` by
/// association ID.
#[test]
fn elastic_ip_moves_by_allocation_id_are_learned() {
    let recs = vec![
        inst_call(0, AWS_NAT),
        associate(
            10,
            json!({ "instanceId": IID, "allocationId": "eipalloc-0123456789abcdef0" }),
            Some("eipassoc-0fedcba9876543210"),
        ),
        inst_call(20, AWS_B),
        inst_call(30, AWS_NAT),
    ];
    for a in both(&recs) {
        assert_eq!(
            offhost_flags(&a),
            vec![ON, ON, ON, reason("new_ip_for_instance")]
        );
    }
    // Control: without the association, the new AWS address is flagged.
    let a = run(&[inst_call(0, AWS_NAT), inst_call(20, AWS_B)]);
    assert_eq!(offhost_flags(&a)[1], reason("new_ip_for_instance"));
    // DisassociateAddress names only the association.
    let mut dis = call(
        "DisassociateAddress",
        "ec2.amazonaws.com",
        &iso(t0() + 40),
        iam_user(AKIA_USER, USER),
        "203.0.113.10",
    );
    dis["requestParameters"] = json!({ "associationId": "eipassoc-0fedcba9876543210" });
    let a = run(&[
        inst_call(0, AWS_NAT),
        associate(
            10,
            json!({ "instanceId": IID, "publicIp": AWS_B }),
            Some("eipassoc-0fedcba9876543210"),
        ),
        inst_call(20, AWS_B),
        dis,
        inst_call(50, "52.4.0.22"),
        inst_call(60, AWS_B),
    ]);
    assert_eq!(
        offhost_flags(&a),
        vec![ON, ON, ON, ON, ON, reason("new_ip_for_instance")]
    );
}

/// A dual-stack instance's first IPv6 address is learned, not flagged.
#[test]
fn dual_stack_first_ipv6_address_is_learned() {
    let a = run(&[
        inst_call(0, AWS_NAT),
        inst_call(10, "2600:1f18:1234::5"),
        inst_call(20, AWS_NAT),
        inst_call(30, "2600:1f18:1234::5"),
    ]);
    assert_eq!(offhost_flags(&a), vec![ON; 4]);
}

fn federated(key: &str, name: &str, creation: &str) -> Value {
    json!({
        "type": "FederatedUser",
        "principalId": format!("{ACCT}:{name}"),
        "arn": format!("arn:aws:sts::{ACCT}:federated-user/{name}"),
        "accountId": ACCT,
        "accessKeyId": key,
        "sessionContext": {
            "attributes": { "creationDate": creation, "mfaAuthenticated": "false" },
            "sessionIssuer": {
                "type": "IAMUser",
                "principalId": "AIDAFSHDVNSWGFKZR06G",
                "arn": user_arn(USER),
                "accountId": ACCT,
                "userName": USER
            }
        }
    })
}

/// A session named after a real instance is not that instance's credentials
/// when it is a federated user, an IAM user, or a role session whose
/// issuance by another caller was observed: it is never off-host and
/// neither spends nor poisons the instance's trust.
#[test]
fn sessions_named_like_an_instance_are_not_instance_credentials() {
    let fed = call(
        "DescribeTags",
        "ec2.amazonaws.com",
        &iso(t0() + 10),
        federated("ASIAQ4PXEXAMPLEFEDI1", IID, T0),
        "52.4.0.99",
    );
    let issued = assume_role(
        iam_user(AKIA_USER, USER),
        &iso(t0() + 20),
        IROLE,
        IID,
        "ASIAQ4PXEXAMPLEFAKE1",
        "203.0.113.10",
    );
    let fake = call(
        "DescribeTags",
        "ec2.amazonaws.com",
        &iso(t0() + 30),
        assumed_role("ASIAQ4PXEXAMPLEFAKE1", IROLE, IID, &iso(t0() + 20)),
        "52.4.0.98",
    );
    let recs = vec![
        fed,
        issued,
        fake,
        inst_call(40, AWS_NAT),
        inst_call(50, AWS_NAT),
    ];
    for a in both(&recs) {
        for i in [0, 2] {
            assert_eq!(a[i]["ec2_cred_offhost"], false, "{}", a[i]);
            assert!(a[i].get("ec2_instance_id").is_none(), "{}", a[i]);
            assert!(
                !a[i]["lineage_root"].as_str().unwrap().starts_with("ec2:"),
                "{}",
                a[i]
            );
        }
        assert_eq!(a[2]["lineage_root"], AKIA_USER);
        // The real instance still learns its own first address.
        assert_eq!(offhost_flags(&a[3..]), vec![ON, ON]);
        assert_eq!(a[3]["ec2_instance_id"], IID);
    }
}

/// Logs older than 2021 carry no `ec2RoleDelivery`: an `AssumedRole`
/// session named after an instance, issuance unobserved, still counts.
/// An observed issuance by `ec2.amazonaws.com` makes a set instance
/// credentials even without `ec2RoleDelivery`.
#[test]
fn instance_credentials_without_ec2_role_delivery() {
    let old = |offset: i64, ip: &str| {
        let mut ui = instance_role(IK, IROLE, IID, T0);
        ui["sessionContext"]
            .as_object_mut()
            .unwrap()
            .remove("ec2RoleDelivery");
        call(
            "DescribeTags",
            "ec2.amazonaws.com",
            &iso(t0() + offset),
            ui,
            ip,
        )
    };
    let a = run(&[old(0, OUTSIDE)]);
    assert_eq!(offhost_flags(&a), vec![reason("outside_aws")]);
    assert_eq!(a[0]["ec2_instance_id"], IID);
    let k = "ASIAQ4PXEXAMPLEISSU1";
    let mut ui = assumed_role(k, IROLE, IID, T0);
    ui["principalId"] = json!("AROALHCCSKSM395EGX3XN:other");
    let a = run(&[
        service_assume_role("ec2.amazonaws.com", T0, IROLE, IID, k),
        call(
            "DescribeTags",
            "ec2.amazonaws.com",
            &iso(t0() + 5),
            ui,
            OUTSIDE,
        ),
    ]);
    assert_eq!(a[1]["lineage_root"], format!("ec2:{IID}"));
    assert_eq!(offhost_flags(&a)[1], reason("outside_aws"));
}

fn vpce_call(offset: i64, ip: &str, endpoint_account: &str) -> Value {
    let mut r = inst_call(offset, ip);
    r["vpcEndpointId"] = json!("vpce-0f1e2d3c4b5a69788");
    r["vpcEndpointAccountId"] = json!(endpoint_account);
    r
}

/// Shared-VPC / central-endpoint organisations list their networking
/// account; operator CIDRs never excuse a foreign endpoint.
#[test]
fn trusted_vpc_endpoint_accounts_and_known_cidrs() {
    let recs = vec![vpce_call(0, "10.0.1.5", "999988887777")];
    assert_eq!(
        offhost_flags(&run(&recs)),
        vec![reason("foreign_vpc_endpoint")]
    );
    let cfg = Config::from_json(br#"{"trusted_vpc_endpoint_accounts":["999988887777"]}"#).unwrap();
    assert_eq!(offhost_flags(&run_with(cfg, &recs)), vec![ON]);
    let cfg = Config::from_json(br#"{"known_cidrs":["10.0.0.0/8"]}"#).unwrap();
    assert_eq!(
        offhost_flags(&run_with(cfg, &recs)),
        vec![reason("foreign_vpc_endpoint")]
    );
    // A known CIDR is trusted even outside AWS (a partner network).
    let cfg = Config::from_json(br#"{"known_cidrs":["198.51.100.0/24"]}"#).unwrap();
    assert_eq!(
        offhost_flags(&run_with(cfg, &[inst_call(0, OUTSIDE)])),
        vec![ON]
    );
    // A trusted account must be an account ID.
    let e = Config::from_json(br#"{"trusted_vpc_endpoint_accounts":["central"]}"#).unwrap_err();
    assert!(e.to_string().contains("12-digit"), "{e}");
}

/// Stolen instance credentials that `AssumeRole` from the thief's address
/// hand over a clean-looking credential: its calls, and those of every
/// credential it issues, carry `offhost_ancestor`.
#[test]
fn offhost_ancestor_follows_the_pivot() {
    let k1 = "ASIAQ4PXEXAMPLEPIVT1";
    let k2 = "ASIAQ4PXEXAMPLEPIVT2";
    let pivot = assume_role(
        instance_role(IK, IROLE, IID, T0),
        &iso(t0() + 10),
        "admin",
        "x",
        k1,
        OUTSIDE,
    );
    let use1 = gci(
        &iso(t0() + 20),
        assumed_role(k1, "admin", "x", &iso(t0() + 10)),
        "203.0.113.200",
    );
    let hop = assume_role(
        assumed_role(k1, "admin", "x", &iso(t0() + 10)),
        &iso(t0() + 30),
        "data",
        "y",
        k2,
        "203.0.113.200",
    );
    let use2 = gci(
        &iso(t0() + 40),
        assumed_role(k2, "data", "y", &iso(t0() + 30)),
        "203.0.113.200",
    );
    let clean = assume_role(
        instance_role(IK, IROLE, IID, T0),
        &iso(t0() + 50),
        "admin",
        "z",
        "ASIAQ4PXEXAMPLEPIVT3",
        "10.0.1.5",
    );
    let recs = vec![pivot, use1, hop, use2, clean];
    for a in both(&recs) {
        assert_eq!(offhost_flags(&a)[0], reason("outside_aws"));
        assert!(a[0].get("offhost_ancestor").is_none(), "{}", a[0]);
        for i in [1, 2, 3] {
            assert_eq!(a[i]["offhost_ancestor"], true, "record {i}: {}", a[i]);
            assert_eq!(a[i]["ec2_cred_offhost"], false, "record {i}");
            assert_eq!(a[i]["lineage_root"], format!("ec2:{IID}"), "record {i}");
        }
        assert_eq!(a[3]["lineage_depth"], 3);
        // The instance's own, on-host AssumeRole hands out no such mark.
        assert!(a[4].get("offhost_ancestor").is_none(), "{}", a[4]);
    }
}

// =========================================================================
// SPEC 3.2: lineage resolved when the parent is observed later
// =========================================================================

/// Three hops issued in the same second, the child's issuance first in the
/// input: batch mode gives every event the long-term root; streaming gives
/// it to every event after the parent arrived.
#[test]
fn same_second_chain_child_first() {
    let (k1, k2) = ("ASIAQ4PXEXAMPLECHNA1", "ASIAQ4PXEXAMPLECHNA2");
    let hop2 = assume_role(
        assumed_role(k1, "role-a", "s1", T0),
        T0,
        "role-b",
        "s2",
        k2,
        "203.0.113.10",
    );
    let hop1 = assume_role(
        iam_user(AKIA_USER, USER),
        T0,
        "role-a",
        "s1",
        k1,
        "203.0.113.10",
    );
    let use2 = gci(
        &iso(t0() + 5),
        assumed_role(k2, "role-b", "s2", T0),
        "203.0.113.10",
    );
    let recs = vec![hop2, hop1, use2];
    let batch = run_time_order(Config::default(), &recs);
    for (i, a) in batch.iter().enumerate() {
        assert_eq!(a["lineage_root"], AKIA_USER, "record {i}: {a}");
        assert_eq!(a["lineage_complete"], true, "record {i}");
    }
    assert_eq!(batch[0]["lineage_depth"], 1);
    assert_eq!(batch[0]["issued"]["lineage_root"], AKIA_USER);
    assert_eq!(batch[0]["issued"]["lineage_depth"], 2);
    assert_eq!(batch[2]["lineage_depth"], 2);
    // Streaming: the first event cannot be re-marked; later ones are resolved.
    let s = run(&recs);
    assert_eq!(s[0]["lineage_root"], format!("unresolved:{k1}"));
    assert_eq!(s[2]["lineage_root"], AKIA_USER);
    assert_eq!(s[2]["lineage_depth"], 2);
    assert_eq!(s[2]["lineage_complete"], true);
    // One set per credential either way (no split by the late parent).
    assert_eq!(
        s[2]["session_fingerprint"],
        s[0]["issued"]["session_fingerprint"]
    );
}

/// The role owner's copy of a cross-account `AssumeRole` (no caller key)
/// comes first: batch mode still gives it, and the credential, the caller's root.
#[test]
fn cross_account_owner_copy_first() {
    let k = "ASIAQ4PXEXAMPLEXACC1";
    let caller_copy = assume_role(
        iam_user(AKIA_USER, USER),
        T0,
        "shared",
        "s",
        k,
        "203.0.113.10",
    );
    let mut owner_copy = caller_copy.clone();
    owner_copy["userIdentity"] = json!({
        "type": "AWSAccount",
        "principalId": "AIDAFSHDVNSWGFKZR06G",
        "accountId": "111122223333"
    });
    owner_copy["recipientAccountId"] = json!("111122223333");
    let use1 = gci(
        &iso(t0() + 5),
        assumed_role(k, "shared", "s", T0),
        "203.0.113.10",
    );
    let recs = vec![owner_copy.clone(), caller_copy.clone(), use1.clone()];
    let a = run_time_order(Config::default(), &recs);
    assert_eq!(a[0]["issued"]["lineage_root"], AKIA_USER, "{}", a[0]);
    assert_eq!(a[1]["issued"]["lineage_root"], AKIA_USER);
    assert_eq!(a[2]["lineage_root"], AKIA_USER);
    assert_eq!(a[2]["lineage_depth"], 1);
    assert_eq!(a[2]["is_key_collision"], false);
    // The caller's own session issued in the same second, after: the owner's
    // copy (no caller) must not cut the child off from its parent.
    let kp = "ASIAQ4PXEXAMPLEXACC0";
    let mut caller_copy = caller_copy;
    caller_copy["userIdentity"] = assumed_role(kp, "hub", "p", T0);
    let parent = assume_role(
        iam_user(AKIA_USER, USER),
        T0,
        "hub",
        "p",
        kp,
        "203.0.113.10",
    );
    for recs in [
        vec![
            caller_copy.clone(),
            owner_copy.clone(),
            parent.clone(),
            use1.clone(),
        ],
        vec![
            owner_copy.clone(),
            caller_copy.clone(),
            use1.clone(),
            parent.clone(),
        ],
    ] {
        let a = run_time_order(Config::default(), &recs);
        for (i, x) in a.iter().enumerate() {
            assert_eq!(x["lineage_root"], AKIA_USER, "record {i}: {x}");
        }
        let s = run(&recs);
        assert_eq!(s.last().unwrap()["lineage_root"], AKIA_USER);
    }
}

// =========================================================================
// SPEC 3.3: credential sets never split
// =========================================================================

/// A call without `creationDate` then dated calls: one set, no collision.
#[test]
fn undated_call_then_dated_call_is_one_set() {
    let k = "ASIAQ4PXEXAMPLEUNDT1";
    let mut undated = assumed_role(k, "role-a", "alice", T0);
    undated["sessionContext"]["attributes"]
        .as_object_mut()
        .unwrap()
        .remove("creationDate");
    let recs = vec![
        gci(&iso(t0() + 5), undated.clone(), "203.0.113.10"),
        gci(
            &iso(t0() + 6),
            assumed_role(k, "role-a", "alice", T0),
            "203.0.113.10",
        ),
        gci(&iso(t0() + 7), undated, "203.0.113.10"),
    ];
    for a in both(&recs) {
        assert_eq!(a[0]["session_fingerprint"], a[1]["session_fingerprint"]);
        assert_eq!(a[1]["session_fingerprint"], a[2]["session_fingerprint"]);
        assert!(a.iter().all(|x| x["is_key_collision"] == false));
    }
}

/// A use seen before its late issuance, creationDate 1 s after the
/// issuance's eventTime, then a duplicated delivery of the issuance: one
/// set, no collision (streaming keeps the fingerprint of first sight).
#[test]
fn late_issuance_and_its_duplicate_make_one_set() {
    let k = "ASIAQ4PXEXAMPLELATE1";
    let issue = assume_role(
        iam_user(AKIA_USER, USER),
        T0,
        "role-a",
        "alice",
        k,
        "203.0.113.10",
    );
    let use1 = gci(
        &iso(t0() + 3),
        assumed_role(k, "role-a", "alice", &iso(t0() + 1)),
        "203.0.113.10",
    );
    let recs = vec![use1.clone(), issue.clone(), issue, use1];
    let a = run(&recs);
    for x in &a {
        assert_eq!(x["is_key_collision"], false, "{x}");
    }
    let fp = &a[0]["session_fingerprint"];
    assert_eq!(&a[1]["issued"]["session_fingerprint"], fp);
    assert_eq!(&a[2]["issued"]["session_fingerprint"], fp);
    assert_eq!(&a[3]["session_fingerprint"], fp);
    // The issuance's lineage reaches the set.
    assert_eq!(a[3]["lineage_root"], AKIA_USER);
    // Batch: the issuance sorts first and gives the fingerprint.
    let b = run_time_order(Config::default(), &recs);
    assert!(b.iter().all(|x| x["is_key_collision"] == false));
    assert_eq!(
        b[0]["session_fingerprint"],
        b[1]["issued"]["session_fingerprint"]
    );
    assert_eq!(b[0]["lineage_root"], AKIA_USER);
}

/// The same record delivered twice changes nothing.
#[test]
fn duplicated_delivery_changes_nothing() {
    let k = "ASIAQ4PXEXAMPLEDUPL1";
    let issue = assume_role(
        iam_user(AKIA_USER, USER),
        T0,
        "role-a",
        "alice",
        k,
        "203.0.113.10",
    );
    let use1 = gci(
        &iso(t0() + 1),
        assumed_role(k, "role-a", "alice", T0),
        "203.0.113.10",
    );
    let once = run(&[issue.clone(), use1.clone()]);
    let twice = run(&[issue.clone(), issue, use1.clone(), use1]);
    assert_eq!(twice[0], once[0]);
    assert_eq!(twice[1], once[0]);
    assert_eq!(twice[2], once[1]);
    assert_eq!(twice[3], once[1]);
}

// =========================================================================
// SPEC 3.4: liveness per kind
// =========================================================================

/// Unseen issuances: 6 h for instance credentials, 12 h for role sessions,
/// 36 h for federation tokens — and always until the last observed use.
#[test]
fn liveness_per_kind_without_observed_issuance() {
    // A 20-hour-old instance credential does not collide with a new role session.
    let role_session = |offset: i64| {
        gci(
            &iso(t0() + offset),
            assumed_role(IK, "ci-role", "build", &iso(t0() + offset)),
            "203.0.113.10",
        )
    };
    let a = run(&[inst_call(0, AWS_NAT), role_session(20 * 3600)]);
    assert_eq!(a[1]["is_key_collision"], false);
    let a = run(&[inst_call(0, AWS_NAT), role_session(5 * 3600)]);
    assert_eq!(a[1]["is_key_collision"], true);
    // Used at 19 h: live until then, whatever its kind allows.
    let a = run(&[
        inst_call(0, AWS_NAT),
        inst_call(19 * 3600, AWS_NAT),
        role_session(19 * 3600),
    ]);
    assert_eq!(a[2]["is_key_collision"], true);
    let a = run(&[
        inst_call(0, AWS_NAT),
        inst_call(19 * 3600, AWS_NAT),
        role_session(19 * 3600 + 60),
    ]);
    assert_eq!(a[2]["is_key_collision"], false);
    // A federation token lives 36 h.
    let fk = "ASIAQ4PXEXAMPLEFEDL1";
    let fed = |offset: i64, name: &str| {
        gci(
            &iso(t0() + offset),
            federated(fk, name, &iso(t0() + offset)),
            "203.0.113.10",
        )
    };
    let a = run(&[fed(0, "a"), fed(30 * 3600, "b")]);
    assert_eq!(a[1]["is_key_collision"], true);
    let a = run(&[fed(0, "a"), fed(37 * 3600, "b")]);
    assert_eq!(a[1]["is_key_collision"], false);
}

// =========================================================================
// SPEC 3.2: one root per Identity Center user; service-linked roles
// =========================================================================

/// The same person signs in through IAM Identity Center (observed) and,
/// another day, is seen only through her `AWSReservedSSO_…` session.
#[test]
fn identity_center_user_has_one_root() {
    let role = "AWSReservedSSO_AdministratorAccess_0123456789abcdef";
    let k1 = "ASIAQ4PXEXAMPLESSOA1";
    let mut sign_in = call(
        "AssumeRoleWithSAML",
        "sts.amazonaws.com",
        T0,
        json!({
            "type": "SAMLUser",
            "principalId": "SAMLHASH:alice@example.com",
            "userName": "alice@example.com",
            "identityProvider": "SAMLHASH"
        }),
        "203.0.113.10",
    );
    sign_in["requestParameters"] = json!({
        "roleArn": role_arn(role),
        "principalArn": format!("arn:aws:iam::{ACCT}:saml-provider/AWSSSO_0123abcd_DO_NOT_DELETE"),
        "durationSeconds": 3600
    });
    sign_in["responseElements"] = json!({
        "credentials": creds(k1, Some(&console_time(t0() + 3600))),
        "assumedRoleUser": {
            "assumedRoleId": "AROAEXAMPLE:alice@example.com",
            "arn": session_arn(role, "alice@example.com")
        },
        "subject": "alice@example.com"
    });
    let observed = run(&[
        sign_in,
        gci(
            &iso(t0() + 5),
            assumed_role(k1, role, "alice@example.com", T0),
            "203.0.113.10",
        ),
    ]);
    let unobserved = run(&[gci(
        &iso(t0() + 86400),
        assumed_role(
            "ASIAQ4PXEXAMPLESSOA2",
            role,
            "alice@example.com",
            &iso(t0() + 86000),
        ),
        "203.0.113.10",
    )]);
    let want = "saml:AWSSSO/alice@example.com";
    assert_eq!(observed[0]["lineage_root"], want);
    assert_eq!(observed[1]["lineage_root"], want);
    assert_eq!(unobserved[0]["lineage_root"], want);
    assert_eq!(unobserved[0]["lineage_root_type"], "saml");
    assert_eq!(unobserved[0]["lineage_complete"], true);
}

/// A service-linked role's session, issuance unobserved: the service is the root.
#[test]
fn service_linked_role_session_root() {
    let mut ui = assumed_role(
        "ASIAQ4PXEXAMPLESLRA1",
        "AWSServiceRoleForAutoScaling",
        "AutoScaling",
        T0,
    );
    ui["sessionContext"]["sessionIssuer"]["arn"] = json!(format!(
        "arn:aws:iam::{ACCT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
    ));
    let a = run(&[call(
        "DescribeInstances",
        "ec2.amazonaws.com",
        &iso(t0() + 5),
        ui,
        "autoscaling.amazonaws.com",
    )]);
    assert_eq!(
        a[0]["lineage_root"],
        "service:autoscaling.amazonaws.com/AutoScaling"
    );
    assert_eq!(a[0]["lineage_root_type"], "aws_service");
    assert_eq!(a[0]["lineage_complete"], true);
}

// =========================================================================
// SPEC 2: the clock
// =========================================================================

/// One record from 2099 (a forged or broken time) does not expire live
/// credentials; two in a row (a real gap in the trail) move the clock.
#[test]
fn one_far_future_record_does_not_move_the_clock() {
    let k = "ASIAQ4PXEXAMPLECLCK1";
    let cfg = Config {
        expired_grace_secs: 0,
        ..Config::default()
    };
    let mut e = enricher_with(cfg);
    step(
        &mut e,
        &assume_role(
            iam_user(AKIA_USER, USER),
            T0,
            "role-a",
            "alice",
            k,
            "203.0.113.10",
        ),
    );
    let future = user_call(0, "203.0.113.10");
    let mut future = future.clone();
    future["eventTime"] = json!("2099-01-01T00:00:00Z");
    let a = step(&mut e, &future);
    assert_eq!(a["lineage_root"], AKIA_USER);
    for i in 0..70_000 {
        // Enough records for a full sweep of expired state.
        let _ = i;
        step(&mut e, &user_call(1, "203.0.113.10"));
    }
    let a = step(
        &mut e,
        &gci(
            &iso(t0() + 60),
            assumed_role(k, "role-a", "alice", T0),
            "203.0.113.10",
        ),
    );
    assert_eq!(
        a["lineage_root"], AKIA_USER,
        "the set was expired by one record: {a}"
    );
    assert_eq!(e.clock(), Some(t0() + 60));
    // Two records in a row that far ahead: the clock follows.
    step(&mut e, &future);
    step(&mut e, &future);
    assert_eq!(e.clock(), Some(t("2099-01-01T00:00:00Z")));
}
