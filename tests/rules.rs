//! Integration tests of the behaviour contract (SPEC sections 2, 3, 5 and
//! Appendix A), one or more per rule, on real Stratus Red Team records where
//! the shape exists and on synthetic records built in those exact shapes
//! where it does not (see `tests/common/mod.rs`).

mod common;

use common::*;
use credlineage::{Config, Enricher, Error};
use serde_json::{Value, json};

// Keys of the synthetic scenarios. Long-term keys are the real (anonymized)
// ones of ec2-get-password-data.json / iam-backdoor-user.json.
const AKIA_USER: &str = "AKIAWOGXN38MFN92ING5";
const USER: &str = "christophe";
const IP_USER: &str = "200.249.253.51";

// =========================================================================
// 1. Appendix A: the worked example (sts-federation-token.json)
// =========================================================================

const FED_KEY: &str = "AKIA6V1GNZTT65XQH36M";
const FED_TEMP: &str = "ASIASTJKC5GCM7ZE6LUP";
const FED_ACCT: &str = "742491224508";
const FED_ARN: &str = "arn:aws:sts::742491224508:federated-user/stratus_red_team";
/// sf1_A of Appendix A (also pinned in src/core/fingerprint.rs against Python hashlib).
const FED_A: &str = "sf1_a265f9f236c1c745cc68f20da2ffd236";
/// sf1_B of Appendix A.
const FED_B: &str = "sf1_5b1aa366c992b680857ed12b7d877126";

fn appendix_a_expected() -> (String, String) {
    let first = format!(
        concat!(
            r#"{{"v":1,"credential_type":"long_term","access_key_id":"{k}","#,
            r#""session_fingerprint":"{a}","lineage_root":"{k}","#,
            r#""lineage_root_type":"access_key","lineage_depth":0,"lineage_complete":true,"#,
            r#""is_key_collision":false,"ec2_cred_offhost":false,"#,
            r#""issued":{{"access_key_id":"{tk}","session_fingerprint":"{b}","#,
            r#""lineage_root":"{k}","lineage_depth":1,"#,
            r#""expiration":"2024-11-30T20:43:17Z","chained":false}}}}"#
        ),
        k = FED_KEY,
        a = FED_A,
        b = FED_B,
        tk = FED_TEMP
    );
    let second = format!(
        concat!(
            r#"{{"v":1,"credential_type":"temporary","access_key_id":"{tk}","#,
            r#""key_account":"178866284932","session_fingerprint":"{b}","#,
            r#""lineage_root":"{k}","lineage_root_type":"access_key","#,
            r#""lineage_depth":1,"lineage_complete":true,"parent_fingerprint":"{a}","#,
            r#""is_key_collision":false,"ec2_cred_offhost":false}}"#
        ),
        k = FED_KEY,
        a = FED_A,
        b = FED_B,
        tk = FED_TEMP
    );
    (first, second)
}

#[test]
fn appendix_a_fingerprints_follow_the_documented_encoding() {
    assert_eq!(fp_long(FED_KEY, FED_ACCT), FED_A);
    assert_eq!(fp_temp(FED_TEMP, FED_ARN, t("2024-11-30T08:43:17Z")), FED_B);
}

#[test]
fn appendix_a_worked_example_exact_bytes() {
    let raws = stratus_raw("sts-federation-token");
    assert_eq!(raws.len(), 2);
    let (exp1, exp2) = appendix_a_expected();
    let mut e = enricher();
    let out1 = e.process(&raws[0], None);
    let out2 = e.process(&raws[1], None);
    // Output = the input bytes (pretty-printed as in the file) up to the
    // closing brace, then exactly one added member, then the closing brace.
    assert_eq!(
        added_text(&raws[0], &out1),
        format!("\"credlineage\":{exp1}")
    );
    assert_eq!(
        added_text(&raws[1], &out2),
        format!("\"credlineage\":{exp2}")
    );
    assert_eq!(raw_annotation(&out1), exp1);
    assert_eq!(raw_annotation(&out2), exp2);
}

#[test]
fn appendix_a_single_line_input_gives_the_same_annotation() {
    let raws = stratus_raw("sts-federation-token");
    let (exp1, exp2) = appendix_a_expected();
    let mut e = enricher();
    let l1 = credlineage::to_single_line(&raws[0]).into_owned();
    let l2 = credlineage::to_single_line(&raws[1]).into_owned();
    assert!(!l1.contains(&b'\n'));
    let out1 = e.process(&l1, None);
    let out2 = e.process(&l2, None);
    let mut want1 = l1[..l1.len() - 1].to_vec();
    want1.extend_from_slice(format!(",\"credlineage\":{exp1}}}").as_bytes());
    let mut want2 = l2[..l2.len() - 1].to_vec();
    want2.extend_from_slice(format!(",\"credlineage\":{exp2}}}").as_bytes());
    assert_eq!(
        String::from_utf8(out1).unwrap(),
        String::from_utf8(want1).unwrap()
    );
    assert_eq!(
        String::from_utf8(out2).unwrap(),
        String::from_utf8(want2).unwrap()
    );
}

#[test]
fn appendix_a_key_order_and_equal_letters() {
    let raws = stratus_raw("sts-federation-token");
    let mut e = enricher();
    let out1 = e.process(&raws[0], None);
    let out2 = e.process(&raws[1], None);
    let a1 = raw_annotation(&out1);
    let a2 = raw_annotation(&out2);
    assert_eq!(
        keys(a1.as_bytes()),
        [
            "v",
            "credential_type",
            "access_key_id",
            "session_fingerprint",
            "lineage_root",
            "lineage_root_type",
            "lineage_depth",
            "lineage_complete",
            "is_key_collision",
            "ec2_cred_offhost",
            "issued"
        ]
    );
    let issued = members(a1.as_bytes())
        .into_iter()
        .find(|(k, _)| k == "issued")
        .unwrap()
        .1;
    assert_eq!(
        keys(issued.as_bytes()),
        [
            "access_key_id",
            "session_fingerprint",
            "lineage_root",
            "lineage_depth",
            "expiration",
            "chained"
        ]
    );
    assert_eq!(
        keys(a2.as_bytes()),
        [
            "v",
            "credential_type",
            "access_key_id",
            "key_account",
            "session_fingerprint",
            "lineage_root",
            "lineage_root_type",
            "lineage_depth",
            "lineage_complete",
            "parent_fingerprint",
            "is_key_collision",
            "ec2_cred_offhost"
        ]
    );
    // The letters of Appendix A: A on the issuer and as parent; B issued and used.
    let v1 = ann(&out1);
    let v2 = ann(&out2);
    assert_eq!(v1["session_fingerprint"], v2["parent_fingerprint"]);
    assert_eq!(
        v1["issued"]["session_fingerprint"],
        v2["session_fingerprint"]
    );
    assert_ne!(v1["session_fingerprint"], v2["session_fingerprint"]);
    // The annotation is the last member; every original member keeps its place.
    let mut want = keys(&raws[1]);
    want.push("credlineage".into());
    assert_eq!(keys(&out2), want);
}

#[test]
fn appendix_a_typed_api_agrees() {
    let raws = stratus_raw("sts-federation-token");
    let mut e = enricher();
    let (a1, own1) = e.annotate(&raws[0], None).expect("CloudTrail record");
    let (a2, own2) = e.annotate(&raws[1], None).expect("CloudTrail record");
    assert!(!own1 && !own2);
    let (exp1, exp2) = appendix_a_expected();
    assert_eq!(String::from_utf8(a1.to_json()).unwrap(), exp1);
    assert_eq!(String::from_utf8(a2.to_json()).unwrap(), exp2);
    let st = e.stats();
    assert_eq!((st.records, st.annotated, st.issuances), (2, 2, 1));
}

// =========================================================================
// 2. Fingerprints (SPEC 3.3)
// =========================================================================

#[test]
fn fingerprint_is_sf1_and_issuance_matches_every_later_call() {
    // ec2-get-password-data.json: two AssumeRole issuances in one second, then
    // 30 calls with the second key (creationDate = the issuance's eventTime).
    let recs = stratus("ec2-get-password-data");
    let anns = run(&recs);
    let issued: Vec<&Value> = anns.iter().filter_map(|a| a.get("issued")).collect();
    assert_eq!(issued.len(), 2, "two successful AssumeRole");
    let used_key = "ASIANQQHHS551LWULIWD";
    let issuance = issued
        .iter()
        .find(|i| i["access_key_id"] == used_key)
        .expect("issuance of the used key");
    let arn = "arn:aws:sts::457448411975:assumed-role/stratus-red-team-ec2-get-password-data-role/aws-go-sdk-1722375070115152000";
    assert_eq!(
        issuance["session_fingerprint"],
        fp_temp(used_key, arn, t("2024-07-30T21:31:15Z"))
    );
    let mut calls = 0;
    for (r, a) in recs.iter().zip(&anns) {
        if r["userIdentity"]["accessKeyId"] == used_key {
            calls += 1;
            assert!(is_fp(&a["session_fingerprint"]), "{a}");
            assert_eq!(a["session_fingerprint"], issuance["session_fingerprint"]);
            assert_eq!(a["lineage_root"], "AKIAWOGXN38MFN92ING5");
            assert_eq!(a["lineage_depth"], 1);
            assert_eq!(a["lineage_complete"], true);
        }
        for f in ["session_fingerprint", "parent_fingerprint"] {
            if let Some(v) = a.get(f).filter(|v| !v.is_null()) {
                assert!(is_fp(v), "{f} = {v}");
            }
        }
    }
    assert_eq!(calls, 30);
}

#[test]
fn same_second_same_session_name_different_keys_differ() {
    let recs = stratus("ec2-get-password-data");
    let anns = run(&recs);
    let issued: Vec<&Value> = anns.iter().filter_map(|a| a.get("issued")).collect();
    assert_eq!(issued.len(), 2);
    assert_ne!(issued[0]["access_key_id"], issued[1]["access_key_id"]);
    assert_ne!(
        issued[0]["session_fingerprint"],
        issued[1]["session_fingerprint"]
    );
    for i in &issued {
        assert!(is_fp(&i["session_fingerprint"]));
        assert_eq!(i["lineage_root"], "AKIAWOGXN38MFN92ING5");
        assert_eq!(i["lineage_depth"], 1);
        assert_eq!(i["expiration"], "2024-07-30T21:46:15Z");
    }
    // Same ARN, same second, different keys: not a collision of either key.
    assert!(anns.iter().all(|a| a["is_key_collision"] == false));
}

#[test]
fn issuance_in_real_data_matches_call_in_the_same_second() {
    // organizations-leave.json: AssumeRole at 08:30:00, call at 08:30:00.
    let recs = stratus("organizations-leave");
    let anns = run(&recs);
    let issuance = anns
        .iter()
        .filter_map(|a| a.get("issued"))
        .find(|i| i["access_key_id"] == "ASIA36EV31F1RB3OA8IG")
        .expect("issuance");
    let (r, a) = recs
        .iter()
        .zip(&anns)
        .find(|(r, _)| r["eventName"] == "LeaveOrganization")
        .unwrap();
    assert!(
        r["errorCode"].is_string(),
        "the call itself failed; its key was still used"
    );
    assert_eq!(a["session_fingerprint"], issuance["session_fingerprint"]);
    assert_eq!(a["lineage_root"], "AKIADVISM0T50G52IF0D");
    assert_eq!(a["lineage_depth"], 1);
}

fn tolerance_case(offset: i64) -> (Value, Value) {
    let k = "ASIAQ4PXEXAMPLE0TOL1";
    let issue = assume_role(iam_user(AKIA_USER, USER), T0, "deploy", "ci", k, IP_USER);
    let created = iso(t0() + offset);
    let use_ = gci(
        &iso(t0() + 60),
        assumed_role(k, "deploy", "ci", &created),
        IP_USER,
    );
    let anns = run(&[issue, use_]);
    (anns[0].clone(), anns[1].clone())
}

#[test]
fn creation_date_within_two_seconds_matches_the_issuance() {
    for off in [-2, -1, 0, 1, 2] {
        let (i, c) = tolerance_case(off);
        assert_eq!(
            c["session_fingerprint"], i["issued"]["session_fingerprint"],
            "offset {off}"
        );
        assert_eq!(c["lineage_root"], AKIA_USER, "offset {off}");
        assert_eq!(c["lineage_complete"], true, "offset {off}");
        assert_eq!(
            c["parent_fingerprint"], i["session_fingerprint"],
            "offset {off}"
        );
        assert_eq!(c["is_key_collision"], false, "offset {off}");
    }
}

#[test]
fn creation_date_three_seconds_away_is_another_set() {
    for off in [3, -3] {
        let (i, c) = tolerance_case(off);
        let k = "ASIAQ4PXEXAMPLE0TOL1";
        assert_ne!(c["session_fingerprint"], i["issued"]["session_fingerprint"]);
        assert_eq!(
            c["session_fingerprint"],
            fp_temp(k, &session_arn("deploy", "ci"), t0() + off)
        );
        assert_eq!(c["lineage_root"], format!("unresolved:{k}"));
        assert_eq!(c["lineage_root_type"], "unresolved");
        assert_eq!(c["lineage_complete"], false);
        assert!(c.get("parent_fingerprint").is_none());
        // It is a second credential set with the same key ID, live now.
        assert_eq!(c["is_key_collision"], true);
        assert_eq!(c["collision_count"], 2);
    }
}

#[test]
fn basic_iso_creation_date_matches() {
    let k = "ASIAQ4PXEXAMPLEBASIC";
    let issue = assume_role(
        iam_user(AKIA_USER, USER),
        "2013-11-02T01:06:28Z",
        "deploy",
        "ci",
        k,
        IP_USER,
    );
    let use_ = gci(
        "2013-11-02T01:07:00Z",
        assumed_role(k, "deploy", "ci", "20131102T010628Z"),
        IP_USER,
    );
    let anns = run(&[issue, use_]);
    assert_eq!(
        anns[1]["session_fingerprint"],
        fp_temp(k, &session_arn("deploy", "ci"), t("2013-11-02T01:06:28Z"))
    );
    assert_eq!(
        anns[1]["session_fingerprint"],
        anns[0]["issued"]["session_fingerprint"]
    );
    assert_eq!(anns[1]["lineage_root"], AKIA_USER);
}

#[test]
fn no_key_no_fingerprint_console_login() {
    let recs = stratus("console-login-without-mfa");
    let out = enricher().process(&bytes(&recs[0]), None);
    let a = ann(&out);
    assert_eq!(a["credential_type"], "none");
    assert_eq!(a["session_fingerprint"], Value::Null);
    assert!(a.get("access_key_id").is_none());
    assert!(a.get("key_account").is_none());
    assert_eq!(a["is_key_collision"], false);
    assert_eq!(a["ec2_cred_offhost"], false);
    // The four core fields are always present, even when null.
    let k = keys(raw_annotation(&out).as_bytes());
    for f in [
        "session_fingerprint",
        "lineage_root",
        "is_key_collision",
        "ec2_cred_offhost",
    ] {
        assert!(k.iter().any(|x| x == f), "{f} missing: {k:?}");
    }
    // The console sign-in of an IAM user: the origin is that user.
    assert_eq!(
        a["lineage_root"],
        "user:arn:aws:iam::562283505220:user/stratus-red-team-nmfalu-jfzdtsvchl"
    );
    assert_eq!(a["lineage_root_type"], "iam_user_session");
}

#[test]
fn no_key_no_fingerprint_aws_service_call() {
    let mut r = call(
        "Decrypt",
        "kms.amazonaws.com",
        T0,
        aws_service("cloudtrail.amazonaws.com"),
        "cloudtrail.amazonaws.com",
    );
    r["userAgent"] = json!("cloudtrail.amazonaws.com");
    r["recipientAccountId"] = json!(ACCT);
    let out = enricher().process(&bytes(&r), None);
    assert_eq!(
        raw_annotation(&out),
        r#"{"v":1,"credential_type":"none","session_fingerprint":null,"lineage_root":null,"is_key_collision":false,"ec2_cred_offhost":false}"#
    );
}

// =========================================================================
// 3. lineage_root formats (SPEC 3.2)
// =========================================================================

#[test]
fn root_long_term_key() {
    let a = &run(&[gci(T0, iam_user(AKIA_USER, USER), IP_USER)])[0];
    assert_eq!(a["credential_type"], "long_term");
    assert_eq!(a["lineage_root"], AKIA_USER);
    assert_eq!(a["lineage_root_type"], "access_key");
    assert_eq!(a["lineage_depth"], 0);
    assert_eq!(a["lineage_complete"], true);
    assert_eq!(a["session_fingerprint"], fp_long(AKIA_USER, ACCT));
    assert!(a.get("parent_fingerprint").is_none());
}

fn root_identity(key: &str, creation: Option<&str>) -> Value {
    let mut ui = json!({
        "accessKeyId": key,
        "accountId": ACCT,
        "arn": format!("arn:aws:iam::{ACCT}:root"),
        "principalId": ACCT,
        "type": "Root"
    });
    if let Some(c) = creation {
        ui["sessionContext"] = json!({
            "attributes": { "creationDate": c, "mfaAuthenticated": "true" },
            "sessionIssuer": {},
            "webIdFederationData": {}
        });
    }
    ui
}

#[test]
fn root_user_access_key() {
    let a = &run(&[call(
        "ListUsers",
        "iam.amazonaws.com",
        T0,
        root_identity("AKIAR7ISFR69YWROPYAN", None),
        IP_USER,
    )])[0];
    assert_eq!(a["credential_type"], "long_term");
    assert_eq!(a["lineage_root"], format!("root:{ACCT}"));
    assert_eq!(a["lineage_root_type"], "root_user");
    assert_eq!(a["lineage_depth"], 0);
    assert_eq!(a["lineage_complete"], true);
}

#[test]
fn root_user_console_session() {
    let a = &run(&[call(
        "DescribeInstances",
        "ec2.amazonaws.com",
        T0,
        root_identity("ASIAR7ISFR69CONSOLE1", Some("2024-07-30T21:00:00Z")),
        IP_USER,
    )])[0];
    assert_eq!(a["credential_type"], "temporary");
    assert_eq!(a["lineage_root"], format!("root:{ACCT}"));
    assert_eq!(a["lineage_root_type"], "root_user");
    assert_eq!(a["lineage_complete"], true);
    assert_eq!(a["lineage_depth"], 1);
}

/// IAM user console / GetSessionToken session: AWS logs type IAMUser, an ASIA
/// key and a sessionContext with attributes but no sessionIssuer.
fn user_session(key: &str, creation: &str) -> Value {
    let mut ui = iam_user(key, USER);
    ui["sessionContext"] = json!({
        "attributes": { "creationDate": creation, "mfaAuthenticated": "false" }
    });
    ui
}

#[test]
fn root_iam_user_session_without_observed_issuance() {
    let a = &run(&[call(
        "ListBuckets",
        "s3.amazonaws.com",
        T0,
        user_session("ASIAWOGXN38MCONSOLE", "2024-07-30T20:00:00Z"),
        IP_USER,
    )])[0];
    assert_eq!(
        a["lineage_root"],
        format!("user:arn:aws:iam::{ACCT}:user/{USER}")
    );
    assert_eq!(a["lineage_root_type"], "iam_user_session");
    assert_eq!(a["lineage_complete"], true);
    assert_eq!(a["lineage_depth"], 1);
}

#[test]
fn root_get_session_token_observed_inherits_the_caller_root() {
    let k = "ASIAWOGXN38MSESSION1";
    let mut gst = call(
        "GetSessionToken",
        "sts.amazonaws.com",
        T0,
        iam_user(AKIA_USER, USER),
        IP_USER,
    );
    gst["requestParameters"] = json!({ "durationSeconds": 3600 });
    gst["responseElements"] = json!({
        "credentials": creds(k, Some(&console_time(t0() + 3600)))
    });
    let use_ = call(
        "ListBuckets",
        "s3.amazonaws.com",
        &iso(t0() + 30),
        user_session(k, T0),
        IP_USER,
    );
    let anns = run(&[gst, use_]);
    let i = &anns[0]["issued"];
    assert_eq!(i["access_key_id"], k);
    assert_eq!(i["lineage_root"], AKIA_USER);
    assert_eq!(i["lineage_depth"], 1);
    assert_eq!(i["chained"], false);
    assert_eq!(i["expiration"], iso(t0() + 3600));
    assert_eq!(
        i["session_fingerprint"],
        fp_temp(k, &format!("arn:aws:iam::{ACCT}:user/{USER}"), t0())
    );
    let a = &anns[1];
    assert_eq!(a["session_fingerprint"], i["session_fingerprint"]);
    assert_eq!(a["lineage_root"], AKIA_USER);
    assert_eq!(a["lineage_root_type"], "access_key");
    assert_eq!(a["lineage_depth"], 1);
    assert_eq!(a["parent_fingerprint"], fp_long(AKIA_USER, ACCT));
}

#[test]
fn root_ec2_instance_from_real_data() {
    let recs = stratus("ec2-steal-instance-credentials");
    let anns = run(&recs);
    let mut n = 0;
    for (r, a) in recs.iter().zip(&anns) {
        if r["userIdentity"]["type"] == "AssumedRole" {
            n += 1;
            assert_eq!(a["lineage_root"], "ec2:i-786a3A8B5C0d92eF4");
            assert_eq!(a["lineage_root_type"], "ec2_instance");
            assert_eq!(a["lineage_complete"], true);
            assert_eq!(a["lineage_depth"], 1);
            assert_eq!(a["ec2_instance_id"], "i-786a3A8B5C0d92eF4");
            assert_eq!(
                a["session_fingerprint"],
                fp_temp(
                    "ASIAP5CT9NN8EYVU1FXV",
                    "arn:aws:sts::017622104382:assumed-role/stratus-red-team-ec2-steal-credentials-role/i-786a3A8B5C0d92eF4",
                    t("2024-08-02T08:20:52Z")
                )
            );
        } else {
            assert_eq!(a["lineage_root"], "AKIAAM80VXLJF8NPK4VC");
            assert!(a.get("ec2_instance_id").is_none());
        }
    }
    assert_eq!(n, 2);
}

#[test]
fn root_ec2_instance_from_observed_service_issuance() {
    let inst = "i-0a1b2c3d4e5f60718";
    let k = "ASIAQ4PXEXAMPLEINST1";
    let role = "web-instance-profile-role";
    let issue = service_assume_role("ec2.amazonaws.com", T0, role, inst, k);
    assert!(issue["responseElements"].get("assumedRoleUser").is_none());
    let use_ = call(
        "DescribeTags",
        "ec2.amazonaws.com",
        &iso(t0() + 120),
        instance_role(k, role, inst, T0),
        "10.0.1.5",
    );
    let anns = run(&[issue, use_]);
    let i = &anns[0]["issued"];
    assert_eq!(anns[0]["credential_type"], "none");
    assert_eq!(anns[0]["session_fingerprint"], Value::Null);
    assert_eq!(i["lineage_root"], format!("ec2:{inst}"));
    assert_eq!(i["lineage_depth"], 1);
    assert_eq!(i["chained"], false);
    // The ARN is rebuilt from roleArn + roleSessionName.
    assert_eq!(
        i["session_fingerprint"],
        fp_temp(k, &session_arn(role, inst), t0())
    );
    let a = &anns[1];
    assert_eq!(a["session_fingerprint"], i["session_fingerprint"]);
    assert_eq!(a["lineage_root"], format!("ec2:{inst}"));
    assert_eq!(a["lineage_root_type"], "ec2_instance");
    assert_eq!(a["lineage_depth"], 1);
    assert_eq!(a["lineage_complete"], true);
    assert_eq!(a["ec2_instance_id"], inst);
    assert_eq!(a["ec2_cred_offhost"], false);
}

#[test]
fn root_aws_service_lambda() {
    let k = "ASIAQ4PXEXAMPLELMBD1";
    let role = "orders-fn-role";
    let issue = service_assume_role("lambda.amazonaws.com", T0, role, "orders-fn", k);
    let use_ = call(
        "PutItem",
        "dynamodb.amazonaws.com",
        &iso(t0() + 2),
        assumed_role(k, role, "orders-fn", T0),
        "3.80.12.14",
    );
    let anns = run(&[issue, use_]);
    assert_eq!(
        anns[0]["issued"]["lineage_root"],
        "service:lambda.amazonaws.com/orders-fn"
    );
    assert_eq!(anns[0]["lineage_root_type"], "aws_service");
    let a = &anns[1];
    assert_eq!(a["lineage_root"], "service:lambda.amazonaws.com/orders-fn");
    assert_eq!(a["lineage_root_type"], "aws_service");
    assert_eq!(a["lineage_depth"], 1);
    assert_eq!(a["lineage_complete"], true);
    assert_eq!(
        a["session_fingerprint"],
        anns[0]["issued"]["session_fingerprint"]
    );
    assert!(a.get("ec2_instance_id").is_none());
}

/// AssumeRoleWithSAML, in the shape AWS documents for CloudTrail.
fn saml_issue(time: &str, role: &str, session: &str, key: &str) -> Value {
    let ui = json!({
        "type": "SAMLUser",
        "principalId": "SAMPLE_NameQualifier:alice@example.com",
        "userName": "alice@example.com",
        "identityProvider": "bdGOnTesTRdHSjndlQxWA7JQpE5A="
    });
    let mut r = call(
        "AssumeRoleWithSAML",
        "sts.amazonaws.com",
        time,
        ui,
        "198.51.100.20",
    );
    r["recipientAccountId"] = json!(ACCT);
    r["requestParameters"] = json!({
        "sAMLAssertionID": "_c0046cEXAMPLEb9d4b8eEXAMPLE2619aEXAMPLE",
        "roleSessionName": session,
        "roleArn": role_arn(role),
        "principalArn": format!("arn:aws:iam::{ACCT}:saml-provider/Shibboleth"),
        "durationSeconds": 3600
    });
    r["responseElements"] = json!({
        "subjectType": "transient",
        "issuer": "https://server.example.com/idp/shibboleth",
        "credentials": creds(key, Some(&console_time(t(time) + 3600))),
        "nameQualifier": "bdGOnTesTRdHSjndlQxWA7JQpE5A=",
        "assumedRoleUser": {
            "assumedRoleId": format!("AROAD35QRSTUVWEXAMPLE:{session}"),
            "arn": session_arn(role, session)
        },
        "subject": "alice@example.com",
        "audience": "https://signin.aws.amazon.com/saml",
        "packedPolicySize": 1
    });
    r
}

/// AssumeRoleWithWebIdentity, in the shape AWS documents for CloudTrail.
fn web_identity_issue(time: &str, role: &str, session: &str, key: &str) -> Value {
    let ui = json!({
        "type": "WebIdentityUser",
        "principalId": "accounts.google.com:1234.apps.googleusercontent.com:108800000000000000001",
        "userName": "108800000000000000001",
        "identityProvider": "accounts.google.com"
    });
    let mut r = call(
        "AssumeRoleWithWebIdentity",
        "sts.amazonaws.com",
        time,
        ui,
        "198.51.100.21",
    );
    r["recipientAccountId"] = json!(ACCT);
    r["requestParameters"] = json!({
        "durationSeconds": 3600,
        "roleArn": role_arn(role),
        "roleSessionName": session
    });
    r["responseElements"] = json!({
        "provider": "accounts.google.com",
        "subjectFromWebIdentityToken": "108800000000000000001",
        "audience": "1234.apps.googleusercontent.com",
        "credentials": creds(key, Some(&console_time(t(time) + 3600))),
        "assumedRoleUser": {
            "assumedRoleId": format!("AROACQRSTUVWRAOEXAMPLE:{session}"),
            "arn": session_arn(role, session)
        }
    });
    r
}

#[test]
fn root_saml_and_later_calls_inherit_it() {
    let k = "ASIAQ4PXEXAMPLESAML1";
    let role = "SAMLTestRoleShibboleth";
    // SPEC 3.2 (v1.1): the last path segment of the provider's ARN.
    let want = "saml:Shibboleth/alice@example.com";
    let anns = run(&[
        saml_issue(T0, role, "alice", k),
        call(
            "ListBuckets",
            "s3.amazonaws.com",
            &iso(t0() + 5),
            assumed_role(k, role, "alice", T0),
            "198.51.100.20",
        ),
        assume_role(
            assumed_role(k, role, "alice", T0),
            &iso(t0() + 10),
            "next-role",
            "alice-next",
            "ASIAQ4PXEXAMPLESAML2",
            "198.51.100.20",
        ),
        gci(
            &iso(t0() + 12),
            assumed_role(
                "ASIAQ4PXEXAMPLESAML2",
                "next-role",
                "alice-next",
                &iso(t0() + 10),
            ),
            "198.51.100.20",
        ),
    ]);
    assert_eq!(anns[0]["credential_type"], "none");
    assert_eq!(anns[0]["lineage_root"], want);
    assert_eq!(anns[0]["lineage_root_type"], "saml");
    assert_eq!(anns[0]["issued"]["lineage_root"], want);
    assert_eq!(anns[0]["issued"]["lineage_depth"], 1);
    for (i, depth) in [(1, 1), (2, 1), (3, 2)] {
        assert_eq!(anns[i]["lineage_root"], want, "record {i}");
        assert_eq!(anns[i]["lineage_root_type"], "saml", "record {i}");
        assert_eq!(anns[i]["lineage_depth"], depth, "record {i}");
        assert_eq!(anns[i]["lineage_complete"], true, "record {i}");
    }
    assert_eq!(
        anns[1]["session_fingerprint"],
        anns[0]["issued"]["session_fingerprint"]
    );
    assert_eq!(
        anns[3]["parent_fingerprint"],
        anns[1]["session_fingerprint"]
    );
}

#[test]
fn root_web_identity_and_later_calls_inherit_it() {
    let k = "ASIAQ4PXEXAMPLEWEB01";
    let role = "FederatedWebIdentityRole";
    let want = "web_identity:accounts.google.com/108800000000000000001";
    let anns = run(&[
        web_identity_issue(T0, role, "app-session", k),
        call(
            "GetObject",
            "s3.amazonaws.com",
            &iso(t0() + 5),
            assumed_role(k, role, "app-session", T0),
            "198.51.100.21",
        ),
    ]);
    assert_eq!(anns[0]["lineage_root"], want);
    assert_eq!(anns[0]["lineage_root_type"], "web_identity");
    assert_eq!(anns[0]["issued"]["lineage_root"], want);
    assert_eq!(anns[1]["lineage_root"], want);
    assert_eq!(anns[1]["lineage_root_type"], "web_identity");
    assert_eq!(anns[1]["lineage_depth"], 1);
    assert_eq!(anns[1]["lineage_complete"], true);
    assert_eq!(
        anns[1]["session_fingerprint"],
        anns[0]["issued"]["session_fingerprint"]
    );
}

#[test]
fn root_unresolved_and_its_child() {
    let k1 = "ASIAQ4PXEXAMPLEUNRS1";
    let k2 = "ASIAQ4PXEXAMPLEUNRS2";
    let anns = run(&[
        gci(
            T0,
            assumed_role(k1, "ops", "bob", "2024-07-30T21:00:00Z"),
            IP_USER,
        ),
        assume_role(
            assumed_role(k1, "ops", "bob", "2024-07-30T21:00:00Z"),
            &iso(t0() + 10),
            "admin",
            "bob-admin",
            k2,
            IP_USER,
        ),
        gci(
            &iso(t0() + 20),
            assumed_role(k2, "admin", "bob-admin", &iso(t0() + 10)),
            IP_USER,
        ),
    ]);
    let a = &anns[0];
    assert_eq!(a["lineage_root"], format!("unresolved:{k1}"));
    assert_eq!(a["lineage_root_type"], "unresolved");
    assert_eq!(a["lineage_complete"], false);
    assert_eq!(a["lineage_depth"], 1);
    assert_eq!(
        a["session_fingerprint"],
        fp_temp(k1, &session_arn("ops", "bob"), t("2024-07-30T21:00:00Z"))
    );
    assert_eq!(anns[1]["session_fingerprint"], a["session_fingerprint"]);
    let i = &anns[1]["issued"];
    assert_eq!(i["lineage_root"], format!("unresolved:{k1}"));
    assert_eq!(i["lineage_depth"], 2);
    assert_eq!(i["chained"], true);
    let c = &anns[2];
    assert_eq!(c["lineage_root"], format!("unresolved:{k1}"));
    assert_eq!(c["lineage_root_type"], "unresolved");
    assert_eq!(c["lineage_depth"], 2);
    assert_eq!(c["lineage_complete"], false);
    assert_eq!(c["parent_fingerprint"], a["session_fingerprint"]);
}

// =========================================================================
// 4. Chains
// =========================================================================

#[test]
fn chain_of_three_hops_keeps_the_long_term_root() {
    let (k1, k2, k3) = (
        "ASIAQ4PXEXAMPLECHN01",
        "ASIAQ4PXEXAMPLECHN02",
        "ASIAQ4PXEXAMPLECHN03",
    );
    let (t1, t2, t3) = (T0.to_string(), iso(t0() + 10), iso(t0() + 20));
    let ui1 = assumed_role(k1, "stage1", "s1", &t1);
    let ui2 = assumed_role(k2, "stage2", "s2", &t2);
    let ui3 = assumed_role(k3, "stage3", "s3", &t3);
    let recs = vec![
        assume_role(iam_user(AKIA_USER, USER), &t1, "stage1", "s1", k1, IP_USER),
        gci(&iso(t0() + 5), ui1.clone(), IP_USER),
        assume_role(ui1, &t2, "stage2", "s2", k2, IP_USER),
        assume_role(ui2.clone(), &t3, "stage3", "s3", k3, IP_USER),
        gci(&iso(t0() + 25), ui2, IP_USER),
        gci(&iso(t0() + 30), ui3, IP_USER),
    ];
    let a = run(&recs);
    let fp0 = fp_long(AKIA_USER, ACCT);
    let fp1 = fp_temp(k1, &session_arn("stage1", "s1"), t0());
    let fp2 = fp_temp(k2, &session_arn("stage2", "s2"), t0() + 10);
    let fp3 = fp_temp(k3, &session_arn("stage3", "s3"), t0() + 20);
    // Every event of the chain carries the original long-term root.
    for (i, x) in a.iter().enumerate() {
        assert_eq!(x["lineage_root"], AKIA_USER, "record {i}");
        assert_eq!(x["lineage_root_type"], "access_key", "record {i}");
        assert_eq!(x["lineage_complete"], true, "record {i}");
    }
    let depth_fp_parent: [(u32, &str, Option<&str>); 6] = [
        (0, &fp0, None),
        (1, &fp1, Some(&fp0)),
        (1, &fp1, Some(&fp0)),
        (2, &fp2, Some(&fp1)),
        (2, &fp2, Some(&fp1)),
        (3, &fp3, Some(&fp2)),
    ];
    for (i, (d, fp, parent)) in depth_fp_parent.iter().enumerate() {
        assert_eq!(a[i]["lineage_depth"], *d, "record {i}");
        assert_eq!(a[i]["session_fingerprint"], *fp, "record {i}");
        match parent {
            Some(p) => assert_eq!(a[i]["parent_fingerprint"], *p, "record {i}"),
            None => assert!(a[i].get("parent_fingerprint").is_none(), "record {i}"),
        }
    }
    // The issuance events.
    let issued = |i: usize| a[i]["issued"].clone();
    assert_eq!(issued(0)["lineage_depth"], 1);
    assert_eq!(issued(0)["chained"], false);
    assert_eq!(issued(0)["session_fingerprint"], fp1);
    assert_eq!(issued(2)["lineage_depth"], 2);
    assert_eq!(issued(2)["chained"], true);
    assert_eq!(issued(2)["session_fingerprint"], fp2);
    assert_eq!(issued(2)["lineage_root"], AKIA_USER);
    assert_eq!(issued(3)["lineage_depth"], 3);
    assert_eq!(issued(3)["chained"], true);
    assert_eq!(issued(3)["session_fingerprint"], fp3);
    assert_eq!(issued(3)["lineage_root"], AKIA_USER);
    for i in [1, 4, 5] {
        assert!(a[i].get("issued").is_none());
    }
}

// =========================================================================
// 5. Persistence through a new access key
// =========================================================================

#[test]
fn created_key_records_its_creator() {
    let (k1, k2) = ("ASIAQ4PXEXAMPLEPRS01", "ASIAQ4PXEXAMPLEPRS02");
    let new_key = "AKIAL80DWDVKKM0UXEER"; // from iam-backdoor-user.json
    let ui1 = assumed_role(k1, "stage1", "s1", T0);
    let ui2 = assumed_role(k2, "stage2", "s2", &iso(t0() + 10));
    let backdoor = "stratus-red-team-backdoor-u-user";
    let recs = vec![
        assume_role(iam_user(AKIA_USER, USER), T0, "stage1", "s1", k1, IP_USER),
        assume_role(ui1, &iso(t0() + 10), "stage2", "s2", k2, IP_USER),
        create_access_key(ui2, &iso(t0() + 20), backdoor, new_key, IP_USER),
        call(
            "ListUsers",
            "iam.amazonaws.com",
            &iso(t0() + 3600),
            iam_user(new_key, backdoor),
            "203.0.113.66",
        ),
        call(
            "ListBuckets",
            "s3.amazonaws.com",
            &iso(t0() + 7200),
            iam_user(new_key, backdoor),
            "203.0.113.66",
        ),
    ];
    let a = run(&recs);
    let fp2 = fp_temp(k2, &session_arn("stage2", "s2"), t0() + 10);
    assert_eq!(a[2]["session_fingerprint"], fp2);
    assert_eq!(a[2]["lineage_depth"], 2);
    assert!(a[2].get("created_by").is_none());
    for x in &a[3..] {
        assert_eq!(x["credential_type"], "long_term");
        assert_eq!(x["lineage_root"], new_key);
        assert_eq!(x["lineage_root_type"], "access_key");
        assert_eq!(x["lineage_depth"], 0);
        assert_eq!(
            x["created_by"],
            json!({ "session_fingerprint": fp2, "lineage_root": AKIA_USER })
        );
    }
    // created_by is the last member, with its two members in order.
    let mut e = enricher();
    let mut last = Vec::new();
    for r in &recs {
        last = e.process(&bytes(r), None);
    }
    let raw = raw_annotation(&last);
    assert!(
        raw.ends_with(&format!(
            r#""created_by":{{"session_fingerprint":"{fp2}","lineage_root":"{AKIA_USER}"}}}}"#
        )),
        "{raw}"
    );
}

#[test]
fn real_create_access_key_then_use() {
    // iam-backdoor-user.json: CreateAccessKey by a long-term key.
    let mut recs = stratus("iam-backdoor-user");
    let creator = recs[0]["userIdentity"]["accessKeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let acct = recs[0]["userIdentity"]["accountId"]
        .as_str()
        .unwrap()
        .to_string();
    let mut use_ = call(
        "GetCallerIdentity",
        "sts.amazonaws.com",
        "2024-07-30T22:00:00Z",
        iam_user("AKIAL80DWDVKKM0UXEER", "stratus-red-team-backdoor-u-user"),
        "203.0.113.66",
    );
    use_["userIdentity"]["accountId"] = json!(acct);
    recs.push(use_);
    let a = run(&recs);
    assert_eq!(a[1]["lineage_root"], "AKIAL80DWDVKKM0UXEER");
    assert_eq!(
        a[1]["created_by"],
        json!({ "session_fingerprint": fp_long(&creator, &acct), "lineage_root": creator })
    );
}

#[test]
fn failed_create_access_key_records_nothing() {
    let new_key = "AKIAL80DWDVKKM0UXEER";
    let mut cak = create_access_key(iam_user(AKIA_USER, USER), T0, "u2", new_key, IP_USER);
    cak["errorCode"] = json!("LimitExceeded");
    let a = run(&[
        cak,
        call(
            "ListUsers",
            "iam.amazonaws.com",
            &iso(t0() + 60),
            iam_user(new_key, "u2"),
            IP_USER,
        ),
    ]);
    assert!(a[1].get("created_by").is_none());
}

// =========================================================================
// 6. Collisions (SPEC 3.4)
// =========================================================================

const CK: &str = "ASIAQ4PXEXAMPLECOLL1";

/// Two AssumeRole in the same second hand CK to two different role sessions,
/// then each session calls twice.
fn same_second_collision() -> Vec<Value> {
    let ta = assumed_role(CK, "role-a", "alice", T0);
    let tb = assumed_role(CK, "role-b", "bob", T0);
    vec![
        assume_role(
            iam_user(AKIA_USER, USER),
            T0,
            "role-a",
            "alice",
            CK,
            IP_USER,
        ),
        assume_role(
            iam_user("AKIAR7ISFR69YWROPYAN", "bob"),
            T0,
            "role-b",
            "bob",
            CK,
            "198.51.100.7",
        ),
        gci(&iso(t0() + 1), ta.clone(), IP_USER),
        gci(&iso(t0() + 2), tb.clone(), "198.51.100.7"),
        call(
            "ListBuckets",
            "s3.amazonaws.com",
            &iso(t0() + 60),
            ta,
            IP_USER,
        ),
        call(
            "ListBuckets",
            "s3.amazonaws.com",
            &iso(t0() + 61),
            tb,
            "198.51.100.7",
        ),
    ]
}

#[test]
fn collision_same_key_two_sessions_same_second_streaming() {
    let a = run(&same_second_collision());
    let fpa = fp_temp(CK, &session_arn("role-a", "alice"), t0());
    let fpb = fp_temp(CK, &session_arn("role-b", "bob"), t0());
    assert_ne!(fpa, fpb);
    assert_eq!(a[0]["issued"]["session_fingerprint"], fpa);
    assert_eq!(a[1]["issued"]["session_fingerprint"], fpb);
    // Streaming: the first issuance was emitted before the second set existed.
    assert_eq!(a[0]["is_key_collision"], false);
    assert!(a[0].get("collision_count").is_none());
    for (i, x) in a.iter().enumerate().skip(1) {
        assert_eq!(x["is_key_collision"], true, "record {i}");
        assert_eq!(x["collision_count"], 2, "record {i}");
    }
    // Each call still carries its own set and its own root.
    for (i, fp, root) in [
        (2, &fpa, AKIA_USER),
        (3, &fpb, "AKIAR7ISFR69YWROPYAN"),
        (4, &fpa, AKIA_USER),
        (5, &fpb, "AKIAR7ISFR69YWROPYAN"),
    ] {
        assert_eq!(a[i]["session_fingerprint"], *fp, "record {i}");
        assert_eq!(a[i]["lineage_root"], root, "record {i}");
    }
}

#[test]
fn collision_same_key_two_sessions_same_second_batch_marks_both_issuances() {
    let a = run_batch(&same_second_collision());
    for (i, x) in a.iter().enumerate() {
        assert_eq!(x["is_key_collision"], true, "record {i}");
        assert_eq!(x["collision_count"], 2, "record {i}");
    }
}

#[test]
fn collision_key_order_in_raw_annotation() {
    let mut e = enricher();
    let mut outs = Vec::new();
    for r in same_second_collision() {
        outs.push(e.process(&bytes(&r), None));
    }
    let raw = raw_annotation(&outs[3]);
    assert!(
        raw.contains(r#""is_key_collision":true,"collision_count":2,"ec2_cred_offhost":false"#),
        "{raw}"
    );
}

#[test]
fn no_collision_for_a_single_session() {
    let ta = assumed_role(CK, "role-a", "alice", T0);
    let a = run(&[
        assume_role(
            iam_user(AKIA_USER, USER),
            T0,
            "role-a",
            "alice",
            CK,
            IP_USER,
        ),
        gci(&iso(t0() + 1), ta.clone(), IP_USER),
        call(
            "ListBuckets",
            "s3.amazonaws.com",
            &iso(t0() + 600),
            ta,
            IP_USER,
        ),
    ]);
    for x in &a {
        assert_eq!(x["is_key_collision"], false);
        assert!(x.get("collision_count").is_none());
    }
}

#[test]
fn no_collision_when_reissued_after_observed_expiration() {
    // First set: 15 min (expiration observed). Same key to another session 20 min later.
    let t1 = iso(t0() + 1200);
    let a = run(&[
        assume_role(
            iam_user(AKIA_USER, USER),
            T0,
            "role-a",
            "alice",
            CK,
            IP_USER,
        ),
        gci(
            &iso(t0() + 1),
            assumed_role(CK, "role-a", "alice", T0),
            IP_USER,
        ),
        assume_role(iam_user(AKIA_USER, USER), &t1, "role-b", "bob", CK, IP_USER),
        gci(
            &iso(t0() + 1201),
            assumed_role(CK, "role-b", "bob", &t1),
            IP_USER,
        ),
    ]);
    for (i, x) in a.iter().enumerate() {
        assert_eq!(x["is_key_collision"], false, "record {i}");
        assert!(x.get("collision_count").is_none(), "record {i}");
    }
    assert_eq!(
        a[3]["session_fingerprint"],
        a[2]["issued"]["session_fingerprint"]
    );
}

#[test]
fn collision_when_reissued_before_observed_expiration() {
    // Same as above but 10 min later: the first set is still live.
    let t1 = iso(t0() + 600);
    let a = run(&[
        assume_role(
            iam_user(AKIA_USER, USER),
            T0,
            "role-a",
            "alice",
            CK,
            IP_USER,
        ),
        assume_role(iam_user(AKIA_USER, USER), &t1, "role-b", "bob", CK, IP_USER),
    ]);
    assert_eq!(a[1]["is_key_collision"], true);
    assert_eq!(a[1]["collision_count"], 2);
}

/// Two sets with CK, issuances unseen, the second `gap` seconds after the first.
fn unseen_sets(gap: i64) -> Vec<Value> {
    let t1 = iso(t0() + gap);
    vec![
        gci(
            &iso(t0() + 5),
            assumed_role(CK, "role-a", "alice", T0),
            IP_USER,
        ),
        gci(
            &iso(t0() + gap + 5),
            assumed_role(CK, "role-b", "bob", &t1),
            IP_USER,
        ),
    ]
}

/// SPEC 3.4 (v1.1): a role session whose issuance was not seen lives 12 h.
#[test]
fn liveness_is_12h_for_an_unseen_role_session() {
    let a = run(&unseen_sets(11 * 3600));
    assert_eq!(a[1]["is_key_collision"], true);
    assert_eq!(a[1]["collision_count"], 2);
    let a = run(&unseen_sets(13 * 3600));
    assert_eq!(a[1]["is_key_collision"], false);
    assert!(a[1].get("collision_count").is_none());
}

/// SPEC 3.4 (v1.1): an `AssumeRole` issuance without a readable expiration lives 12 h.
#[test]
fn liveness_is_12h_for_a_role_issuance_without_expiration() {
    let case = |gap: i64| {
        let t1 = iso(t0() + gap);
        run(&[
            assume_role_exp(
                iam_user(AKIA_USER, USER),
                T0,
                "role-a",
                "alice",
                CK,
                None,
                IP_USER,
            ),
            assume_role_exp(
                iam_user(AKIA_USER, USER),
                &t1,
                "role-b",
                "bob",
                CK,
                None,
                IP_USER,
            ),
        ])
    };
    let a = case(11 * 3600);
    assert_eq!(a[0]["issued"]["expiration"], Value::Null);
    assert_eq!(a[1]["is_key_collision"], true);
    assert_eq!(a[1]["collision_count"], 2);
    let a = case(13 * 3600);
    assert_eq!(a[1]["is_key_collision"], false);
}

#[test]
fn same_key_same_arn_same_second_is_one_set_documented_limit() {
    // SPEC 3.4: "Two issuances of the same key to the same ARN in the same
    // second are indistinguishable." Their fingerprint inputs (key, ARN,
    // second) are identical, so credlineage sees ONE set: no collision. This
    // is the documented limit, not a detection.
    let ta = assumed_role(CK, "role-a", "alice", T0);
    let a = run(&[
        assume_role(
            iam_user(AKIA_USER, USER),
            T0,
            "role-a",
            "alice",
            CK,
            IP_USER,
        ),
        assume_role(
            iam_user(AKIA_USER, USER),
            T0,
            "role-a",
            "alice",
            CK,
            "198.51.100.7",
        ),
        gci(&iso(t0() + 1), ta.clone(), IP_USER),
        gci(&iso(t0() + 2), ta, "198.51.100.7"),
    ]);
    let fp = fp_temp(CK, &session_arn("role-a", "alice"), t0());
    assert_eq!(a[0]["issued"]["session_fingerprint"], fp);
    assert_eq!(a[1]["issued"]["session_fingerprint"], fp);
    for (i, x) in a.iter().enumerate() {
        assert_eq!(x["is_key_collision"], false, "record {i}");
        assert!(x.get("collision_count").is_none(), "record {i}");
    }
    assert_eq!(a[2]["session_fingerprint"], fp);
    assert_eq!(a[3]["session_fingerprint"], fp);
}

#[test]
fn streaming_cannot_remark_batch_lookahead_can() {
    // Set A (issuance unseen, created T0) is used at T0+10 and T0+20; set B
    // (same key, another session, created T0+5) is first used at T0+100.
    let ta = assumed_role(CK, "role-a", "alice", T0);
    let tb = assumed_role(CK, "role-b", "bob", &iso(t0() + 5));
    let recs = vec![
        gci(&iso(t0() + 10), ta.clone(), IP_USER),
        call(
            "ListBuckets",
            "s3.amazonaws.com",
            &iso(t0() + 20),
            ta.clone(),
            IP_USER,
        ),
        gci(&iso(t0() + 100), tb, "198.51.100.7"),
        call(
            "ListBuckets",
            "s3.amazonaws.com",
            &iso(t0() + 110),
            ta,
            IP_USER,
        ),
    ];
    let s = run(&recs);
    assert_eq!(s[0]["is_key_collision"], false);
    assert_eq!(s[1]["is_key_collision"], false);
    assert_eq!(s[2]["is_key_collision"], true);
    assert_eq!(s[3]["is_key_collision"], true);
    let b = run_batch(&recs);
    for (i, x) in b.iter().enumerate() {
        assert_eq!(x["is_key_collision"], true, "record {i}");
        assert_eq!(x["collision_count"], 2, "record {i}");
    }
    // The batch pass changes nothing else.
    for (x, y) in s.iter().zip(&b) {
        assert_eq!(x["session_fingerprint"], y["session_fingerprint"]);
        assert_eq!(x["lineage_root"], y["lineage_root"]);
    }
}

#[test]
fn batch_lookahead_does_not_mark_sets_that_never_overlap() {
    // B starts after A's observed expiration: batch mode must not mark A.
    let t1 = iso(t0() + 1200);
    let recs = vec![
        assume_role(
            iam_user(AKIA_USER, USER),
            T0,
            "role-a",
            "alice",
            CK,
            IP_USER,
        ),
        gci(
            &iso(t0() + 1),
            assumed_role(CK, "role-a", "alice", T0),
            IP_USER,
        ),
        assume_role(iam_user(AKIA_USER, USER), &t1, "role-b", "bob", CK, IP_USER),
        gci(
            &iso(t0() + 1201),
            assumed_role(CK, "role-b", "bob", &t1),
            IP_USER,
        ),
    ];
    for (i, x) in run_batch(&recs).iter().enumerate() {
        assert_eq!(x["is_key_collision"], false, "record {i}");
    }
}

// =========================================================================
// 7. EC2 credentials used off-host (SPEC 3.5)
// =========================================================================

const INST: &str = "i-786a3A8B5C0d92eF4";

/// The Stratus theft ran from an EC2 address (18.236.253.47 is in AWS's
/// published ranges): SPEC 3.5 (v1.1) trusts an AWS address on first use and
/// `ip_used_by_other_identity` applies only outside AWS, so nothing is
/// flagged — the price v1.1 pays for not flagging NAT gateways shared with
/// users (README, Decisions).
#[test]
fn offhost_real_data_from_an_aws_address_is_trusted_on_first_use() {
    let recs = stratus("ec2-steal-instance-credentials");
    let anns = run(&recs);
    let mut n = 0;
    for (r, a) in recs.iter().zip(&anns) {
        assert_eq!(a["ec2_cred_offhost"], false, "{a}");
        assert!(a.get("offhost_reason").is_none());
        if r["userIdentity"]["type"] == "AssumedRole" {
            n += 1;
            assert_eq!(a["ec2_instance_id"], INST);
        } else {
            assert!(a.get("ec2_instance_id").is_none());
        }
    }
    assert_eq!(n, 2);
}

/// The same real records, the thief's address moved outside AWS: the
/// instance credentials are off-host, and the IAM user who used that
/// address is named (SPEC 3.5 step 4, v1.1 `offhost_other_identity`).
#[test]
fn offhost_real_data_ip_used_by_other_identity() {
    let mut recs = stratus("ec2-steal-instance-credentials");
    for r in &mut recs {
        r["sourceIPAddress"] = json!("198.51.100.77");
    }
    let anns = run(&recs);
    let mut n = 0;
    for (r, a) in recs.iter().zip(&anns) {
        if r["userIdentity"]["type"] == "AssumedRole" {
            n += 1;
            assert_eq!(a["ec2_cred_offhost"], true, "{a}");
            assert_eq!(a["offhost_reason"], "ip_used_by_other_identity");
            assert_eq!(
                a["offhost_other_identity"],
                "arn:aws:iam::017622104382:user/christophe"
            );
            assert_eq!(a["ec2_instance_id"], INST);
        } else {
            assert_eq!(a["ec2_cred_offhost"], false);
            assert!(a.get("offhost_reason").is_none());
            assert!(a.get("ec2_instance_id").is_none());
        }
    }
    assert_eq!(n, 2);
    // Raw key order of the off-host members.
    let mut e = enricher();
    let mut last = Vec::new();
    for r in &recs {
        last = e.process(&bytes(r), None);
    }
    let raw = raw_annotation(&last);
    assert!(
        raw.ends_with(&format!(
            r#""is_key_collision":false,"ec2_cred_offhost":true,"ec2_instance_id":"{INST}","offhost_reason":"ip_used_by_other_identity","offhost_other_identity":"arn:aws:iam::017622104382:user/christophe"}}"#
        )),
        "{raw}"
    );
    assert_eq!(e.stats().offhost, 2);
}

#[test]
fn offhost_other_identity_rule_can_be_switched_off() {
    let mut recs = stratus("ec2-steal-instance-credentials");
    for r in &mut recs {
        r["sourceIPAddress"] = json!("198.51.100.77");
    }
    let cfg = Config {
        ip_used_by_other_identity: false,
        ..Config::default()
    };
    for (r, a) in recs.iter().zip(run_with(cfg, &recs)) {
        if r["userIdentity"]["type"] == "AssumedRole" {
            assert_eq!(a["ec2_instance_id"], INST);
            assert_eq!(a["offhost_reason"], "outside_aws", "{r}");
            assert!(a.get("offhost_other_identity").is_none());
        } else {
            assert_eq!(a["ec2_cred_offhost"], false, "{r}");
        }
    }
}

#[test]
fn offhost_known_cidr_is_never_offhost() {
    let recs = stratus("ec2-steal-instance-credentials");
    let cfg = Config {
        known_cidrs: vec!["18.236.0.0/16".parse().unwrap()],
        ..Config::default()
    };
    for a in run_with(cfg, &recs) {
        assert_eq!(a["ec2_cred_offhost"], false, "{a}");
    }
}

const IK: &str = "ASIAQ4PXEXAMPLEINST2";
const IROLE: &str = "web-instance-profile-role";
const IID: &str = "i-0a1b2c3d4e5f60718";

fn inst_call(offset: i64, ip: &str) -> Value {
    call(
        "DescribeTags",
        "ec2.amazonaws.com",
        &iso(t0() + offset),
        instance_role(IK, IROLE, IID, "2024-07-30T20:00:00Z"),
        ip,
    )
}

/// SPEC 3.5 step 5: a second address in a scope that already has a trusted
/// one; step 4: a public address outside AWS whatever was learned.
#[test]
fn offhost_new_ip_for_instance() {
    let a = run(&[
        inst_call(0, "10.0.1.5"),
        inst_call(10, "10.0.1.5"),
        inst_call(20, "10.0.7.7"),
        inst_call(25, "198.51.100.99"),
        inst_call(30, "10.0.1.5"),
    ]);
    assert_eq!(
        offhost_flags(&a),
        vec![
            ON,
            ON,
            reason("new_ip_for_instance"),
            reason("outside_aws"),
            ON
        ]
    );
    assert!(a.iter().all(|x| x["ec2_instance_id"] == IID));
}

#[test]
fn offhost_outside_aws() {
    let cfg = || Config {
        aws_ip_ranges: credlineage::AwsRanges::from_cidrs(&[
            "3.0.0.0/8".parse().unwrap(),
            "2600:1f00::/24".parse().unwrap(),
        ])
        .into(),
        ..Config::default()
    };
    let a = run_with(cfg(), &[inst_call(0, "198.51.100.99")]);
    assert_eq!(offhost_flags(&a), vec![reason("outside_aws")]);
    let a = run_with(
        cfg(),
        &[inst_call(0, "3.80.12.14"), inst_call(5, "3.80.12.14")],
    );
    assert_eq!(offhost_flags(&a), vec![ON, ON]);
    let a = run_with(cfg(), &[inst_call(0, "2600:1f00::1")]);
    assert_eq!(offhost_flags(&a), vec![ON]);
}

fn vpce_call(offset: i64, ip: &str, endpoint_account: &str) -> Value {
    let mut r = inst_call(offset, ip);
    r["vpcEndpointId"] = json!("vpce-0f1e2d3c4b5a69788");
    r["vpcEndpointAccountId"] = json!(endpoint_account);
    r
}

#[test]
fn offhost_foreign_vpc_endpoint() {
    let a = run(&[
        inst_call(0, "10.0.1.5"),
        vpce_call(10, "10.0.1.5", "999988887777"),
    ]);
    assert_eq!(offhost_flags(&a), vec![ON, reason("foreign_vpc_endpoint")]);
}

#[test]
fn offhost_own_vpc_endpoint_is_not_offhost() {
    // A private address never seen for the instance, but through a VPC
    // endpoint of the instance's own account: not off-host.
    let a = run(&[inst_call(0, "10.0.1.5"), vpce_call(10, "10.9.9.9", ACCT)]);
    assert_eq!(offhost_flags(&a), vec![ON, ON]);
}

#[test]
fn offhost_service_sources_are_not_offhost() {
    let a = run(&[
        // A person uses "AWS Internal" too: it must not count as their IP.
        call(
            "ListBuckets",
            "s3.amazonaws.com",
            T0,
            iam_user(AKIA_USER, USER),
            "AWS Internal",
        ),
        inst_call(0, "10.0.1.5"),
        inst_call(10, "AWS Internal"),
        inst_call(20, "ec2.amazonaws.com"),
        inst_call(30, "10.0.1.5"),
    ]);
    assert_eq!(offhost_flags(&a), vec![ON, ON, ON, ON, ON]);
}

#[test]
fn offhost_first_use_is_trusted_then_other_identity_counts_later() {
    // TOFU at 10.0.1.5; later a person uses 203.0.113.50 and then the
    // instance credentials show up there.
    let a = run(&[
        inst_call(0, "10.0.1.5"),
        call(
            "ListBuckets",
            "s3.amazonaws.com",
            &iso(t0() + 5),
            iam_user(AKIA_USER, USER),
            "203.0.113.50",
        ),
        inst_call(10, "203.0.113.50"),
    ]);
    assert_eq!(offhost_flags(&a)[2], reason("ip_used_by_other_identity"));
    assert_eq!(
        a[2]["offhost_other_identity"],
        format!("arn:aws:iam::{ACCT}:user/{USER}")
    );
}

#[test]
fn offhost_other_identity_forgotten_after_retention() {
    let cfg = Config {
        ip_retention_secs: 3600,
        ..Config::default()
    };
    let a = run_with(
        cfg,
        &[
            call(
                "ListBuckets",
                "s3.amazonaws.com",
                T0,
                iam_user(AKIA_USER, USER),
                "203.0.113.50",
            ),
            inst_call(7200, "203.0.113.50"),
        ],
    );
    // Outside AWS all the same, but nobody else is remembered there any more.
    assert_eq!(offhost_flags(&a), vec![ON, reason("outside_aws")]);
    assert!(a[1].get("offhost_other_identity").is_none());
}

fn run_instances(offset: i64) -> Value {
    let mut r = call(
        "RunInstances",
        "ec2.amazonaws.com",
        &iso(t0() + offset),
        iam_user(AKIA_USER, USER),
        "203.0.113.10",
    );
    r["readOnly"] = json!(false);
    r["eventVersion"] = json!("1.09");
    r["requestParameters"] = json!({
        "instanceType": "t3.micro",
        "instancesSet": { "items": [{ "imageId": "ami-0aCBbfd13bdb1d1E4", "maxCount": 1, "minCount": 1 }] },
        "subnetId": "subnet-0e540f0c7ffb48ae9"
    });
    r["responseElements"] = json!({
        "requestId": "b663854b-4ebf-4be3-8de0-9c5471904762",
        "reservationId": "r-0123456789abcdef0",
        "ownerId": ACCT,
        "groupSet": {},
        "instancesSet": {
            "items": [{
                "instanceId": IID,
                "imageId": "ami-0aCBbfd13bdb1d1E4",
                "instanceState": { "code": 0, "name": "pending" },
                "privateDnsName": "ip-10-0-1-5.ec2.internal",
                "privateIpAddress": "10.0.1.5",
                "subnetId": "subnet-0e540f0c7ffb48ae9",
                "networkInterfaceSet": {
                    "items": [{
                        "networkInterfaceId": "eni-0123456789abcdef0",
                        "privateIpAddress": "10.0.1.5",
                        "association": {
                            "publicIp": "54.210.7.8",
                            "publicDnsName": "ec2-54-210-7-8.compute-1.amazonaws.com",
                            "ipOwnerId": "amazon"
                        }
                    }]
                }
            }]
        }
    });
    r
}

#[test]
fn offhost_run_instances_makes_ips_known() {
    // Control: without RunInstances, the first address of each scope is learned.
    let a = run(&[inst_call(10, "10.0.9.9"), inst_call(20, "10.0.1.5")]);
    assert_eq!(offhost_flags(&a), vec![ON, reason("new_ip_for_instance")]);
    // With RunInstances: its private and public addresses are trusted, so
    // another address of either scope is new for the instance.
    let a = run(&[
        run_instances(0),
        inst_call(10, "10.0.1.5"),
        inst_call(20, "54.210.7.8"),
        inst_call(30, "10.0.9.9"),
        inst_call(40, "54.210.9.9"),
        inst_call(50, "198.51.100.99"),
    ]);
    assert_eq!(
        offhost_flags(&a),
        vec![
            ON,
            ON,
            ON,
            reason("new_ip_for_instance"),
            reason("new_ip_for_instance"),
            reason("outside_aws")
        ]
    );
    // The public IP is known even before any use (no trust-on-first-use needed).
    let a = run(&[
        run_instances(0),
        inst_call(10, "54.210.7.8"),
        inst_call(20, "10.0.1.5"),
    ]);
    assert_eq!(offhost_flags(&a), vec![ON, ON, ON]);
}

#[test]
fn offhost_failed_run_instances_teaches_nothing() {
    let mut ri = run_instances(0);
    ri["errorCode"] = json!("Client.UnauthorizedOperation");
    let a = run(&[ri, inst_call(10, "10.0.9.9"), inst_call(20, "10.0.1.5")]);
    assert_eq!(
        offhost_flags(&a),
        vec![ON, ON, reason("new_ip_for_instance")]
    );
}

#[test]
fn offhost_associate_address_makes_ip_known() {
    let mut aa = call(
        "AssociateAddress",
        "ec2.amazonaws.com",
        &iso(t0() + 15),
        iam_user(AKIA_USER, USER),
        "203.0.113.10",
    );
    aa["readOnly"] = json!(false);
    aa["requestParameters"] =
        json!({ "instanceId": IID, "publicIp": "52.4.5.6", "allowReassociation": false });
    aa["responseElements"] = json!({
        "requestId": "0d2e0a39-9e43-4f4e-8f7e-1c1f6b0a8e1d",
        "_return": true,
        "associationId": "eipassoc-0fedcba9876543210"
    });
    // The instance had learned its first public AWS address; the Elastic IP
    // replaces it as the trusted public address.
    let a = run(&[
        inst_call(5, "52.4.0.9"),
        aa.clone(),
        inst_call(20, "52.4.5.6"),
        inst_call(30, "52.4.0.9"),
    ]);
    assert_eq!(
        offhost_flags(&a),
        vec![ON, ON, ON, reason("new_ip_for_instance")]
    );
    // Control: without AssociateAddress.
    let a = run(&[inst_call(5, "52.4.0.9"), inst_call(20, "52.4.5.6")]);
    assert_eq!(offhost_flags(&a)[1], reason("new_ip_for_instance"));
}

#[test]
fn non_instance_credentials_are_never_offhost() {
    let a = run(&[
        call(
            "ListBuckets",
            "s3.amazonaws.com",
            T0,
            iam_user(AKIA_USER, USER),
            "203.0.113.50",
        ),
        gci(
            &iso(t0() + 5),
            assumed_role(CK, "role-a", "alice", T0),
            "203.0.113.50",
        ),
        gci(
            &iso(t0() + 10),
            assumed_role(CK, "role-a", "alice", T0),
            "198.51.100.1",
        ),
    ]);
    for x in &a {
        assert_eq!(x["ec2_cred_offhost"], false);
        assert!(x.get("ec2_instance_id").is_none());
    }
}

// =========================================================================
// 8. key_account (SPEC 3.6)
// =========================================================================

#[test]
fn key_account_vectors() {
    for (key, acct) in [
        ("ASIAY34FZKBOKMUTVV7A", Some("609629065308")),
        ("ASIAQNZGKIQY56JQ7WML", Some("029608264753")),
        ("AKIASP2TPHJSQH3FJXYZ", Some("171436882533")),
        ("AKIA6V1GNZTT65XQH36M", None),
        ("AKIAIOSFODNN7EXAMPLE", None),
    ] {
        let ui = if key.starts_with("ASIA") {
            assumed_role(key, "r", "s", T0)
        } else {
            iam_user(key, USER)
        };
        let out = enricher().process(&bytes(&gci(T0, ui, IP_USER)), None);
        let a = ann(&out);
        let raw = raw_annotation(&out);
        match acct {
            Some(acct) => {
                assert_eq!(a["key_account"], acct, "{key}");
                assert!(
                    raw.contains(&format!(
                        r#""access_key_id":"{key}","key_account":"{acct}","session_fingerprint""#
                    )),
                    "{raw}"
                );
            }
            None => {
                assert!(a.get("key_account").is_none(), "{key}: {raw}");
                assert!(!raw.contains("key_account"), "{raw}");
            }
        }
    }
}

// =========================================================================
// 9. Input shapes (SPEC 2)
// =========================================================================

fn fed_records() -> Vec<Value> {
    stratus("sts-federation-token")
}

#[test]
fn eventbridge_envelope_is_annotated_at_top_level() {
    let (exp1, exp2) = appendix_a_expected();
    let mut e = enricher();
    for (rec, want) in fed_records().into_iter().zip([exp1, exp2]) {
        let env = json!({
            "version": "0",
            "id": "8a7b6c5d-4e3f-2a1b-0c9d-8e7f6a5b4c3d",
            "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.sts",
            "account": FED_ACCT,
            "time": rec["eventTime"],
            "region": "us-east-1",
            "resources": [],
            "detail": rec
        });
        let input = bytes(&env);
        let out = e.process(&input, None);
        assert_eq!(added_text(&input, &out), format!("\"credlineage\":{want}"));
        let v = parse(&out);
        assert!(v["detail"].get("credlineage").is_none());
        assert_eq!(v["detail"], env["detail"]);
    }
}

#[test]
fn record_as_json_string_under_message_and_log() {
    let (exp1, exp2) = appendix_a_expected();
    for field in ["message", "log"] {
        let mut e = enricher();
        for (rec, want) in fed_records().iter().zip([&exp1, &exp2]) {
            let mut text = String::from_utf8(bytes(rec)).unwrap();
            if field == "log" {
                text.push('\n'); // docker json-file / tail lines keep the newline
            }
            let wrapper = json!({
                "@timestamp": "2024-11-30T08:43:20.000Z",
                field: text,
                "stream": "stdout",
                "host": "collector-1"
            });
            let input = bytes(&wrapper);
            let out = e.process(&input, None);
            assert_eq!(
                added_text(&input, &out),
                format!("\"credlineage\":{want}"),
                "{field}"
            );
            assert_eq!(parse(&out)[field], json!(text));
        }
    }
}

#[test]
fn string_field_that_is_not_a_record_passes_through_unchanged() {
    let mut e = enricher();
    let input = br#"{"message":"GET /healthz 200","host":"web-1"}"#;
    assert_eq!(e.process(input, None), input.to_vec());
    let st = e.stats();
    assert_eq!((st.records, st.annotated, st.passed_through), (1, 0, 1));
}

/// An AssumeRole whose time comes from somewhere else than `eventTime`.
fn issuance_without_event_time() -> Value {
    let mut r = assume_role(iam_user(AKIA_USER, USER), T0, "deploy", "ci", CK, IP_USER);
    r.as_object_mut().unwrap().remove("eventTime");
    r
}

#[test]
fn at_timestamp_is_used_when_event_time_is_missing() {
    let when = t0() + 3600;
    let mut r = issuance_without_event_time();
    r["@timestamp"] = json!(format!("{}.123Z", iso(when).trim_end_matches('Z')));
    let a = &run(&[r])[0];
    assert_eq!(
        a["issued"]["session_fingerprint"],
        fp_temp(CK, &session_arn("deploy", "ci"), when)
    );
    // Outer @timestamp around a record held as a string.
    let inner = String::from_utf8(bytes(&issuance_without_event_time())).unwrap();
    let w = json!({ "@timestamp": iso(when), "message": inner });
    let a = &run(&[w])[0];
    assert_eq!(
        a["issued"]["session_fingerprint"],
        fp_temp(CK, &session_arn("deploy", "ci"), when)
    );
}

#[test]
fn host_time_is_used_when_both_are_missing() {
    let when = t0() + 7200;
    let mut e = enricher();
    let out = e.process(&bytes(&issuance_without_event_time()), Some(when));
    assert_eq!(
        ann(&out)["issued"]["session_fingerprint"],
        fp_temp(CK, &session_arn("deploy", "ci"), when)
    );
    // eventTime wins over host time.
    let r = assume_role(iam_user(AKIA_USER, USER), T0, "deploy", "ci2", CK, IP_USER);
    let out = e.process(&bytes(&r), Some(when));
    assert_eq!(
        ann(&out)["issued"]["session_fingerprint"],
        fp_temp(CK, &session_arn("deploy", "ci2"), t0())
    );
}

#[test]
fn arrival_order_when_no_time_at_all() {
    // No eventTime, no @timestamp, no host time: the latest time seen so far.
    let mut e = enricher();
    step(
        &mut e,
        &gci(&iso(t0() + 42), iam_user(AKIA_USER, USER), IP_USER),
    );
    let a = step(&mut e, &issuance_without_event_time());
    assert_eq!(
        a["issued"]["session_fingerprint"],
        fp_temp(CK, &session_arn("deploy", "ci"), t0() + 42)
    );
}

#[test]
fn both_expiration_spellings() {
    for (time, spelling, want) in [
        (
            "2020-09-14T06:01:26Z",
            "Sep 14, 2020, 7:01:26 AM",
            "2020-09-14T07:01:26Z",
        ),
        (
            "2018-11-29T03:31:59Z",
            "Nov 29, 2018 4:31:59 AM",
            "2018-11-29T04:31:59Z",
        ),
        (
            "2024-07-30T21:31:15Z",
            "Jul 30, 2024, 9:46:15 PM",
            "2024-07-30T21:46:15Z",
        ),
        (
            "2024-07-30T00:31:15Z",
            "Jul 30, 2024 12:46:15 AM",
            "2024-07-30T00:46:15Z",
        ),
        (
            "2024-07-30T21:31:15Z",
            "2024-07-30T21:46:15Z",
            "2024-07-30T21:46:15Z",
        ),
    ] {
        let r = assume_role_exp(
            iam_user(AKIA_USER, USER),
            time,
            "deploy",
            "ci",
            CK,
            Some(spelling),
            IP_USER,
        );
        let a = &run(&[r])[0];
        assert_eq!(a["issued"]["expiration"], want, "{spelling}");
    }
}

#[test]
fn expiration_is_used_for_liveness_in_the_no_comma_spelling() {
    // 15-minute credentials, expiration spelled "Nov 29, 2018 4:46:59 AM":
    // re-issued 20 minutes later → the first set has expired, no collision.
    let t1 = "2018-11-29T04:31:59Z";
    let t2 = "2018-11-29T04:51:59Z";
    let a = run(&[
        assume_role_exp(
            iam_user(AKIA_USER, USER),
            t1,
            "role-a",
            "alice",
            CK,
            Some("Nov 29, 2018 4:46:59 AM"),
            IP_USER,
        ),
        assume_role_exp(
            iam_user(AKIA_USER, USER),
            t2,
            "role-b",
            "bob",
            CK,
            Some("Nov 29, 2018 5:06:59 AM"),
            IP_USER,
        ),
    ]);
    assert_eq!(a[1]["is_key_collision"], false);
}

#[test]
fn access_key_id_absent_or_empty() {
    for variant in ["absent", "empty"] {
        let mut ui = assumed_role(CK, "role-a", "alice", T0);
        match variant {
            "absent" => {
                ui.as_object_mut().unwrap().remove("accessKeyId");
            }
            _ => ui["accessKeyId"] = json!(""),
        }
        let out = enricher().process(&bytes(&gci(T0, ui, IP_USER)), None);
        let a = ann(&out);
        assert_eq!(a["credential_type"], "none", "{variant}");
        assert_eq!(a["session_fingerprint"], Value::Null, "{variant}");
        assert!(a.get("access_key_id").is_none(), "{variant}");
        assert!(a.get("key_account").is_none(), "{variant}");
        assert_eq!(a["is_key_collision"], false);
    }
}

#[test]
fn session_token_absent_or_redacted_still_issues() {
    let base = assume_role(iam_user(AKIA_USER, USER), T0, "deploy", "ci", CK, IP_USER);
    let want = run(std::slice::from_ref(&base))[0]["issued"].clone();
    assert_eq!(want["access_key_id"], CK);
    let mut absent = base.clone();
    absent["responseElements"]["credentials"]
        .as_object_mut()
        .unwrap()
        .remove("sessionToken");
    let mut redacted = base.clone();
    redacted["responseElements"]["credentials"]["sessionToken"] =
        json!("HIDDEN_DUE_TO_SECURITY_REASONS");
    let mut null = base;
    null["responseElements"]["credentials"]["sessionToken"] = Value::Null;
    for r in [absent, redacted, null] {
        assert_eq!(run(&[r])[0]["issued"], want);
    }
}

#[test]
fn response_elements_null_issues_nothing_but_annotates() {
    let mut r = assume_role(iam_user(AKIA_USER, USER), T0, "deploy", "ci", CK, IP_USER);
    r["responseElements"] = Value::Null;
    let a = run(&[
        r,
        gci(
            &iso(t0() + 5),
            assumed_role(CK, "deploy", "ci", T0),
            IP_USER,
        ),
    ]);
    assert!(a[0].get("issued").is_none());
    assert_eq!(a[0]["lineage_root"], AKIA_USER);
    assert_eq!(a[1]["lineage_root"], format!("unresolved:{CK}"));
}

#[test]
fn failed_sts_calls_issue_nothing() {
    // Real: the failed AssumeRole calls of ec2-get-password-data.json.
    let recs = stratus("ec2-get-password-data");
    let anns = run(&recs);
    for (r, a) in recs.iter().zip(&anns) {
        if r["eventSource"] == "sts.amazonaws.com" && r["errorCode"].is_string() {
            assert!(a.get("issued").is_none(), "{a}");
            assert_eq!(a["lineage_root"], "AKIAWOGXN38MFN92ING5");
        }
    }
    // Synthetic: errorCode set even though the response carries credentials.
    for name in ["AssumeRole", "GetSessionToken", "GetFederationToken"] {
        let mut r = assume_role(iam_user(AKIA_USER, USER), T0, "deploy", "ci", CK, IP_USER);
        r["eventName"] = json!(name);
        r["errorCode"] = json!("AccessDenied");
        r["errorMessage"] = json!("denied");
        let a = run(&[
            r,
            gci(
                &iso(t0() + 5),
                assumed_role(CK, "deploy", "ci", T0),
                IP_USER,
            ),
        ]);
        assert!(a[0].get("issued").is_none(), "{name}");
        assert_eq!(a[1]["lineage_root"], format!("unresolved:{CK}"), "{name}");
        // And the helper's shape (responseElements null).
        let r = failed(assume_role(
            iam_user(AKIA_USER, USER),
            T0,
            "deploy",
            "ci",
            CK,
            IP_USER,
        ));
        assert!(run(&[r])[0].get("issued").is_none());
    }
}

#[test]
fn records_not_sorted_by_time() {
    // ec2-launch-unusual-instances.json in file order: the call made with the
    // new key (11:30:23) comes BEFORE the AssumeRole that issued it (11:30:22).
    let recs = stratus_unsorted("ec2-launch-unusual-instances");
    assert_eq!(recs[0]["eventName"], "RunInstances");
    let key = "ASIA9F6MXE9HSYOXYQOS";
    let arn = "arn:aws:sts::900138736586:assumed-role/stratus-red-team-ec2lui-role-idtzskbvtd/aws-go-sdk-1722511821294449000";
    let fp = fp_temp(key, arn, t("2024-08-01T11:30:22Z"));
    let mut e = enricher();
    let anns: Vec<Value> = recs.iter().map(|r| step(&mut e, r)).collect();
    // Streaming: the early call cannot know its root yet, but its set is the same.
    assert_eq!(anns[0]["session_fingerprint"], fp);
    assert_eq!(anns[0]["lineage_root"], format!("unresolved:{key}"));
    let issuance = anns
        .iter()
        .find(|a| a["issued"]["access_key_id"] == key)
        .expect("issuance");
    assert_eq!(issuance["issued"]["session_fingerprint"], fp);
    // One set, not a collision with itself.
    assert!(anns.iter().all(|a| a["is_key_collision"] == false));
    // A later call with the same credentials now resolves to the real root.
    let mut later = recs[0].clone();
    later["eventTime"] = json!("2024-08-01T11:31:00Z");
    later["eventName"] = json!("DescribeInstances");
    later.as_object_mut().unwrap().remove("errorCode");
    later.as_object_mut().unwrap().remove("errorMessage");
    let a = step(&mut e, &later);
    assert_eq!(a["session_fingerprint"], fp);
    assert_eq!(a["lineage_root"], "AKIAR7ISFR69YWROPYAN");
    assert_eq!(a["lineage_depth"], 1);
    assert_eq!(a["lineage_complete"], true);
    // Sorted (what the CLI's batch mode does): exact lineage for every record.
    let sorted = stratus("ec2-launch-unusual-instances");
    for (r, a) in sorted.iter().zip(run(&sorted)) {
        if r["userIdentity"]["accessKeyId"] == key {
            assert_eq!(a["lineage_root"], "AKIAR7ISFR69YWROPYAN");
            assert_eq!(a["session_fingerprint"], fp);
        }
    }
}

#[test]
fn invalid_source_ip_is_tolerated() {
    // 255.090.254.5 (anonymized, leading zero) is what the real files hold.
    let recs = stratus("sts-federation-token");
    assert_eq!(recs[0]["sourceIPAddress"], "255.090.254.5");
    // Read as 255.90.254.5: a public address outside AWS (SPEC 3.5).
    let a = run(&[inst_call(0, "255.090.254.5"), inst_call(5, "255.090.254.5")]);
    assert_eq!(
        offhost_flags(&a),
        vec![reason("outside_aws"), reason("outside_aws")]
    );
    // With the AWS ranges off, trust on first use takes it (v1 behaviour).
    let cfg = Config::from_json(br#"{"aws_ip_ranges":"off"}"#).unwrap();
    let a = run_with(
        cfg,
        &[inst_call(0, "255.090.254.5"), inst_call(5, "255.090.254.5")],
    );
    assert_eq!(offhost_flags(&a), vec![ON, ON]);
}

// =========================================================================
// 10. Output contract (SPEC 3)
// =========================================================================

fn count_members(out: &[u8], key: &str) -> usize {
    members(out).iter().filter(|(k, _)| k == key).count()
}

/// The GetFederationToken record with extra top-level members spliced in.
fn with_members(before: &[(&str, Value)], after: &[(&str, Value)]) -> Vec<u8> {
    let rec = &fed_records()[0];
    let mut s = String::from("{");
    let mut first = true;
    let mut push = |s: &mut String, k: &str, v: &Value| {
        if !std::mem::take(&mut first) {
            s.push(',');
        }
        s.push_str(&serde_json::to_string(k).unwrap());
        s.push(':');
        s.push_str(&serde_json::to_string(v).unwrap());
    };
    for (k, v) in before {
        push(&mut s, k, v);
    }
    for (k, v) in rec.as_object().unwrap() {
        push(&mut s, k, v);
    }
    for (k, v) in after {
        push(&mut s, k, v);
    }
    s.push('}');
    s.into_bytes()
}

#[test]
fn existing_key_is_replaced_never_duplicated() {
    let forged = json!({ "lineage_root": "forged", "is_key_collision": true });
    let (exp1, _) = appendix_a_expected();
    let cases: Vec<Vec<u8>> = vec![
        with_members(&[("credlineage", forged.clone())], &[]),
        with_members(&[], &[("credlineage", forged.clone())]),
        with_members(
            &[("credlineage", json!("x"))],
            &[("credlineage", forged.clone())],
        ),
        with_members(
            &[("a", json!(1)), ("credlineage", json!(null))],
            &[("z", json!(2))],
        ),
    ];
    for input in cases {
        let out = enricher().process(&input, None);
        assert_eq!(
            count_members(&out, "credlineage"),
            1,
            "{}",
            String::from_utf8_lossy(&out)
        );
        assert_eq!(raw_annotation(&out), exp1);
        // Every other member unchanged, in order.
        let want: Vec<(String, String)> = members(&input)
            .into_iter()
            .filter(|(k, _)| k != "credlineage")
            .collect();
        let got: Vec<(String, String)> = members(&out)
            .into_iter()
            .filter(|(k, _)| k != "credlineage")
            .collect();
        assert_eq!(got, want);
        assert_eq!(keys(&out).last().unwrap(), "credlineage");
    }
}

#[test]
fn existing_key_typed_api_reports_it() {
    let input = with_members(&[("credlineage", json!({}))], &[]);
    let (_, has_own) = enricher().annotate(&input, None).unwrap();
    assert!(has_own);
}

#[test]
fn existing_key_alone_passes_through_unchanged() {
    // An object whose only member is our key is not a CloudTrail record: it
    // passes through byte for byte (still one key, never two).
    for input in [
        &br#"{"credlineage":{"lineage_root":"forged"}}"#[..],
        br#"{ "credlineage" : 1 }"#,
    ] {
        let mut e = enricher();
        let out = e.process(input, None);
        assert_eq!(out, input.to_vec());
        assert_eq!(e.stats().passed_through, 1);
    }
}

#[test]
fn existing_key_next_to_a_wrapped_record_is_replaced() {
    // The record's only other member is the JSON string holding the record.
    let inner = String::from_utf8(bytes(&fed_records()[0])).unwrap();
    let (exp1, _) = appendix_a_expected();
    for input in [
        serde_json::to_vec(&json!({ "credlineage": {"stale": true}, "message": inner })).unwrap(),
        format!(
            r#"{{"message":{},"credlineage":"stale"}}"#,
            serde_json::to_string(&inner).unwrap()
        )
        .into_bytes(),
    ] {
        let out = enricher().process(&input, None);
        assert_eq!(count_members(&out, "credlineage"), 1);
        assert_eq!(raw_annotation(&out), exp1);
        assert_eq!(keys(&out), ["message", "credlineage"]);
    }
}

const APPENDIX_KEYS: [&str; 17] = [
    "v",
    "credential_type",
    "access_key_id",
    "key_account",
    "session_fingerprint",
    "lineage_root",
    "lineage_root_type",
    "lineage_depth",
    "lineage_complete",
    "parent_fingerprint",
    "is_key_collision",
    "collision_count",
    "ec2_cred_offhost",
    "ec2_instance_id",
    "offhost_reason",
    "issued",
    "created_by",
];

#[test]
fn flatten_mode_writes_prefixed_top_level_keys() {
    let cfg = Config {
        flatten_prefix: Some("cl_".into()),
        ..Config::default()
    };
    let mut e = enricher_with(cfg);
    let raws = stratus_raw("sts-federation-token");
    let out1 = e.process(&raws[0], None);
    let out2 = e.process(&raws[1], None);
    for (raw, out) in [(&raws[0], &out1), (&raws[1], &out2)] {
        let v = parse(out);
        assert!(v.get("credlineage").is_none());
        let added: Vec<String> = keys(out).into_iter().skip(keys(raw).len()).collect();
        assert!(added.iter().all(|k| k.starts_with("cl_")), "{added:?}");
        // In the Appendix A order.
        let order: Vec<usize> = added
            .iter()
            .map(|k| {
                APPENDIX_KEYS
                    .iter()
                    .position(|a| *a == &k[3..])
                    .unwrap_or_else(|| panic!("unknown key {k}"))
            })
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{added:?}");
    }
    let v2 = parse(&out2);
    assert_eq!(v2["cl_v"], 1);
    assert_eq!(v2["cl_session_fingerprint"], FED_B);
    assert_eq!(v2["cl_parent_fingerprint"], FED_A);
    assert_eq!(v2["cl_lineage_root"], FED_KEY);
    assert_eq!(v2["cl_key_account"], "178866284932");
    assert_eq!(v2["cl_is_key_collision"], false);
    assert_eq!(v2["cl_ec2_cred_offhost"], false);
    let v1 = parse(&out1);
    assert_eq!(v1["cl_issued"]["session_fingerprint"], FED_B);
    assert_eq!(v1["cl_issued"]["expiration"], "2024-11-30T20:43:17Z");
    // Exact added text of the second record.
    let (_, exp2) = appendix_a_expected();
    let inner = &exp2[1..exp2.len() - 1];
    let prefixed = inner
        .split(",\"")
        .map(|m| m.trim_start_matches('"').to_string())
        .map(|m| format!("\"cl_{m}"))
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(added_text(&raws[1], &out2), prefixed);
}

#[test]
fn flatten_mode_replaces_its_own_keys_only() {
    let cfg = Config {
        flatten_prefix: Some("cl_".into()),
        ..Config::default()
    };
    let input = with_members(
        &[
            ("cl_lineage_root", json!("forged")),
            ("cl_note", json!("keep me")),
        ],
        &[("cl_is_key_collision", json!(true))],
    );
    let out = enricher_with(cfg).process(&input, None);
    assert_eq!(count_members(&out, "cl_lineage_root"), 1);
    assert_eq!(count_members(&out, "cl_is_key_collision"), 1);
    assert_eq!(count_members(&out, "cl_note"), 1);
    let v = parse(&out);
    assert_eq!(v["cl_lineage_root"], FED_KEY);
    assert_eq!(v["cl_is_key_collision"], false);
    assert_eq!(v["cl_note"], "keep me");
}

#[test]
fn custom_namespace() {
    let cfg = Config {
        namespace: "lineage".into(),
        ..Config::default()
    };
    // A pre-existing "credlineage" member is not ours under this config: kept.
    let input = with_members(&[("credlineage", json!("someone else's"))], &[]);
    let out = enricher_with(cfg).process(&input, None);
    let (exp1, _) = appendix_a_expected();
    assert_eq!(added_text(&input, &out), format!("\"lineage\":{exp1}"));
    assert_eq!(parse(&out)["credlineage"], "someone else's");
}

#[test]
fn redact_session_tokens_in_passed_through_record() {
    let cfg = Config {
        redact_session_tokens: true,
        ..Config::default()
    };
    let raws = stratus_raw("sts-federation-token");
    let original: Value = serde_json::from_slice(&raws[0]).unwrap();
    let token = original["responseElements"]["credentials"]["sessionToken"]
        .as_str()
        .unwrap()
        .to_string();
    let mut e = enricher_with(cfg);
    let out = e.process(&raws[0], None);
    assert!(!String::from_utf8_lossy(&out).contains(&token));
    let mut v = parse(&out);
    assert_eq!(
        v["responseElements"]["credentials"]["sessionToken"],
        "<redacted>"
    );
    // Nothing else changed; the annotation is the normal one.
    let (exp1, _) = appendix_a_expected();
    assert_eq!(raw_annotation(&out), exp1);
    v.as_object_mut().unwrap().remove("credlineage");
    let mut want = original.clone();
    want["responseElements"]["credentials"]["sessionToken"] = json!("<redacted>");
    assert_eq!(v, want);
    // Off by default.
    let out = enricher().process(&raws[0], None);
    assert!(String::from_utf8_lossy(&out).contains(&token));
}

#[test]
fn redact_session_tokens_in_eventbridge_detail() {
    let cfg = Config {
        redact_session_tokens: true,
        ..Config::default()
    };
    let rec = fed_records()[0].clone();
    let token = rec["responseElements"]["credentials"]["sessionToken"]
        .as_str()
        .unwrap()
        .to_string();
    let env =
        json!({ "detail-type": "AWS API Call via CloudTrail", "source": "aws.sts", "detail": rec });
    let out = enricher_with(cfg).process(&bytes(&env), None);
    assert!(!String::from_utf8_lossy(&out).contains(&token));
    assert_eq!(
        parse(&out)["detail"]["responseElements"]["credentials"]["sessionToken"],
        "<redacted>"
    );
}

#[test]
fn redact_session_tokens_in_record_held_as_string() {
    let cfg = Config {
        redact_session_tokens: true,
        ..Config::default()
    };
    let rec = fed_records()[0].clone();
    let token = rec["responseElements"]["credentials"]["sessionToken"]
        .as_str()
        .unwrap()
        .to_string();
    let inner = String::from_utf8(bytes(&rec)).unwrap();
    let w = json!({ "message": inner });
    let out = enricher_with(cfg).process(&bytes(&w), None);
    let v = parse(&out);
    assert_eq!(v["credlineage"]["issued"]["access_key_id"], FED_TEMP);
    assert!(
        !String::from_utf8_lossy(&out).contains(&token),
        "session token still in the passed-through record"
    );
}

/// Every string value under a `sessionToken` key, anywhere.
fn tokens(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "sessionToken" {
                    if let Some(s) = x.as_str() {
                        out.push(s.to_string());
                    }
                }
                tokens(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| tokens(x, out)),
        _ => {}
    }
}

fn assert_no_token(haystack: &[u8], toks: &[String], what: &str) {
    let h = String::from_utf8_lossy(haystack);
    for tok in toks {
        // Also no long fragment of it.
        for w in tok.as_bytes().chunks(24).filter(|c| c.len() == 24) {
            let w = std::str::from_utf8(w).unwrap();
            assert!(
                !h.contains(w),
                "{what} contains a session token fragment {w:?}"
            );
        }
    }
}

#[test]
fn no_session_token_in_anything_credlineage_adds() {
    let flat = Config {
        flatten_prefix: Some("cl_".into()),
        ..Config::default()
    };
    let mut all_tokens = 0;
    for file in stratus_files() {
        let raws = stratus_raw(&file);
        let mut toks = Vec::new();
        for r in &raws {
            tokens(&serde_json::from_slice(r).unwrap(), &mut toks);
        }
        all_tokens += toks.len();
        for cfg in [Config::default(), flat.clone()] {
            let mut e = enricher_with(cfg);
            for r in &raws {
                let out = e.process(r, None);
                assert_no_token(added_text(r, &out).as_bytes(), &toks, &file);
                let (a, _) = e.annotate(r, None).unwrap();
                assert_no_token(&a.to_json(), &toks, &file);
            }
            assert_no_token(&e.snapshot(), &toks, &format!("{file} snapshot"));
            assert_no_token(format!("{:?}", e.stats()).as_bytes(), &toks, &file);
        }
    }
    assert_eq!(all_tokens, 9, "the real files hold 9 session tokens");
    // Synthetic: a chain with tokens everywhere.
    let recs = same_second_collision();
    let mut toks = Vec::new();
    for r in &recs {
        tokens(r, &mut toks);
    }
    assert_eq!(toks.len(), 2);
    let mut e = enricher();
    for r in &recs {
        let input = bytes(r);
        let out = e.process(&input, None);
        assert_no_token(added_text(&input, &out).as_bytes(), &toks, "synthetic");
    }
    assert_no_token(&e.snapshot(), &toks, "synthetic snapshot");
}

#[test]
fn output_is_deterministic() {
    let recs = stratus("ec2-steal-instance-credentials");
    let go = || {
        let mut e = enricher();
        recs.iter()
            .map(|r| e.process(&bytes(r), None))
            .collect::<Vec<_>>()
    };
    assert_eq!(go(), go());
    // The hash seed never changes the output.
    let mut e = enricher();
    e.set_hash_seed(0xdead_beef);
    let seeded: Vec<Vec<u8>> = recs.iter().map(|r| e.process(&bytes(r), None)).collect();
    assert_eq!(seeded, go());
}

// =========================================================================
// 11. Snapshot / restore (SPEC 5)
// =========================================================================

/// An enricher that has seen AKIA → AssumeRole(key) at T0.
fn with_chain(key: &str, session: &str) -> Enricher {
    let mut e = enricher();
    step(
        &mut e,
        &assume_role(
            iam_user(AKIA_USER, USER),
            T0,
            "deploy",
            session,
            key,
            IP_USER,
        ),
    );
    e
}

fn use_of(key: &str, session: &str) -> Value {
    gci(
        &iso(t0() + 60),
        assumed_role(key, "deploy", session, T0),
        IP_USER,
    )
}

#[test]
fn snapshot_carries_the_state_across() {
    let src = with_chain("ASIAQ4PXEXAMPLESNAP1", "snap");
    let snap = src.snapshot();
    let mut dst = enricher();
    dst.restore(&snap).expect("restore");
    let a = step(&mut dst, &use_of("ASIAQ4PXEXAMPLESNAP1", "snap"));
    assert_eq!(a["lineage_root"], AKIA_USER);
    assert_eq!(a["lineage_complete"], true);
    assert_eq!(a["parent_fingerprint"], fp_long(AKIA_USER, ACCT));
    assert_eq!(
        a["session_fingerprint"],
        fp_temp("ASIAQ4PXEXAMPLESNAP1", &session_arn("deploy", "snap"), t0())
    );
    // A restored snapshot snapshots to the same bytes.
    let mut again = enricher();
    again.restore(&snap).unwrap();
    assert_eq!(again.snapshot(), snap);
}

#[test]
fn snapshot_carries_created_keys_and_instance_ips() {
    let mut src = enricher();
    for r in [
        create_access_key(
            iam_user(AKIA_USER, USER),
            T0,
            "u2",
            "AKIAL80DWDVKKM0UXEER",
            IP_USER,
        ),
        inst_call(0, "10.0.1.5"),
    ] {
        step(&mut src, &r);
    }
    let mut dst = enricher();
    dst.restore(&src.snapshot()).unwrap();
    let a = step(
        &mut dst,
        &call(
            "ListUsers",
            "iam.amazonaws.com",
            &iso(t0() + 60),
            iam_user("AKIAL80DWDVKKM0UXEER", "u2"),
            "203.0.113.66",
        ),
    );
    assert_eq!(a["created_by"]["lineage_root"], AKIA_USER);
    // The trusted private address came through the snapshot.
    let a = step(&mut dst, &inst_call(70, "10.0.9.9"));
    assert_eq!(a["offhost_reason"], "new_ip_for_instance");
}

fn assert_refused(bad: &[u8], needle: &str) {
    // The target has its own lineage; a refused restore must leave it as is.
    let mut dst = with_chain("ASIAQ4PXEXAMPLETGT01", "target");
    let before = dst.snapshot();
    let stats_before = dst.stats();
    let err = dst.restore(bad).expect_err("must be refused");
    assert!(matches!(err, Error::Snapshot(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with("snapshot refused: "), "{msg}");
    assert!(
        msg.to_lowercase().contains(needle),
        "{msg:?} should mention {needle:?}"
    );
    assert_eq!(
        dst.snapshot(),
        before,
        "state changed by a refused snapshot"
    );
    assert_eq!(dst.stats(), stats_before);
    // Still resolves what it knew; nothing of the refused snapshot was loaded.
    let a = step(&mut dst, &use_of("ASIAQ4PXEXAMPLETGT01", "target"));
    assert_eq!(a["lineage_root"], AKIA_USER);
    let a = step(&mut dst, &use_of("ASIAQ4PXEXAMPLESNAP1", "snap"));
    assert_eq!(a["lineage_root"], "unresolved:ASIAQ4PXEXAMPLESNAP1");
}

fn good_snapshot() -> Vec<u8> {
    with_chain("ASIAQ4PXEXAMPLESNAP1", "snap").snapshot()
}

#[test]
fn snapshot_truncated_is_refused() {
    let s = good_snapshot();
    for cut in [0, 5, 18, 20, 30, s.len() / 2, s.len() - 1] {
        let needle = if cut < 18 { "magic" } else { "" };
        assert_refused(&s[..cut], needle);
    }
    assert_refused(&s[..s.len() - 1], "corrupt");
    assert_refused(&s[..30], "truncated");
}

#[test]
fn snapshot_bit_flipped_is_refused() {
    let s = good_snapshot();
    // Flip one bit at a time across the checksum and the body.
    for pos in [22, 30, 53, 54, 60, s.len() / 2, s.len() - 2, s.len() - 1] {
        let mut b = s.clone();
        b[pos] ^= 0x01;
        assert_refused(&b, "corrupt");
    }
}

#[test]
fn snapshot_wrong_magic_is_refused() {
    let mut s = good_snapshot();
    s[0] ^= 0x20;
    assert_refused(&s, "magic");
    assert_refused(b"{\"sets\":[]}", "magic");
    assert_refused(b"", "magic");
}

#[test]
fn snapshot_future_version_is_refused() {
    let s = good_snapshot();
    // Header: a magic line, then the format version as a little-endian u32.
    let nl = s.iter().position(|&c| c == b'\n').unwrap() + 1;
    assert_eq!(
        u32::from_le_bytes(s[nl..nl + 4].try_into().unwrap()),
        credlineage::state::SNAPSHOT_VERSION
    );
    let mut b = s.clone();
    b[nl..nl + 4].copy_from_slice(&(credlineage::state::SNAPSHOT_VERSION + 1).to_le_bytes());
    assert_refused(&b, "version");
}

#[test]
fn snapshot_from_another_config_is_refused() {
    let mut src = enricher_with(Config {
        session_ttl_secs: 3600,
        ..Config::default()
    });
    step(
        &mut src,
        &assume_role(
            iam_user(AKIA_USER, USER),
            T0,
            "deploy",
            "snap",
            "ASIAQ4PXEXAMPLESNAP1",
            IP_USER,
        ),
    );
    assert_refused(&src.snapshot(), "configuration");
    // And the other way round.
    let s = good_snapshot();
    let mut dst = enricher_with(Config {
        session_ttl_secs: 3600,
        ..Config::default()
    });
    let err = dst.restore(&s).unwrap_err();
    assert!(err.to_string().contains("configuration"), "{err}");
}

#[test]
fn snapshot_output_only_config_may_differ() {
    // Namespace and flattening do not change what the state means.
    let s = good_snapshot();
    let mut dst = enricher_with(Config {
        namespace: "lineage".into(),
        ..Config::default()
    });
    dst.restore(&s).expect("output-only settings do not matter");
    let a = ann_in(
        &dst.process(&bytes(&use_of("ASIAQ4PXEXAMPLESNAP1", "snap")), None),
        "lineage",
    );
    assert_eq!(a["lineage_root"], AKIA_USER);
}

// =========================================================================
// 12. Every Stratus Red Team file: nothing lost, nothing changed
// =========================================================================

#[test]
fn every_file_every_record_one_valid_output_members_unchanged() {
    let mut total = 0;
    for file in stratus_files() {
        let raws = stratus_raw(&file);
        assert!(!raws.is_empty(), "{file}");
        for single_line in [false, true] {
            let mut e = enricher();
            for (i, raw) in raws.iter().enumerate() {
                let input = if single_line {
                    credlineage::to_single_line(raw).into_owned()
                } else {
                    raw.clone()
                };
                let out = e.process(&input, None);
                let added = added_text(&input, &out);
                assert!(
                    added.starts_with("\"credlineage\":{"),
                    "{file}#{i}: {added}"
                );
                let mut v = parse(&out);
                let a = v
                    .as_object_mut()
                    .unwrap()
                    .remove("credlineage")
                    .unwrap_or_else(|| panic!("{file}#{i}: no annotation"));
                let orig: Value = serde_json::from_slice(&input).unwrap();
                assert_eq!(v, orig, "{file}#{i}: original members changed");
                assert_eq!(a["v"], 1, "{file}#{i}");
                for f in ["session_fingerprint", "lineage_root"] {
                    assert!(a[f].is_null() || a[f].is_string(), "{file}#{i}: {f}");
                }
                for f in ["is_key_collision", "ec2_cred_offhost"] {
                    assert!(a[f].is_boolean(), "{file}#{i}: {f}");
                }
                let key = orig["userIdentity"]["accessKeyId"].as_str().unwrap_or("");
                if key.is_empty() {
                    assert_eq!(a["session_fingerprint"], Value::Null, "{file}#{i}");
                } else {
                    assert!(is_fp(&a["session_fingerprint"]), "{file}#{i}");
                    assert_eq!(a["access_key_id"], key, "{file}#{i}");
                    assert!(a["lineage_root"].is_string(), "{file}#{i}");
                }
                if single_line {
                    assert!(
                        !out.contains(&b'\n'),
                        "{file}#{i}: NDJSON output is one line"
                    );
                }
                total += 1;
            }
            let st = e.stats();
            assert_eq!(st.records, raws.len() as u64, "{file}");
            assert_eq!(st.annotated, raws.len() as u64, "{file}");
            assert_eq!(st.passed_through + st.malformed, 0, "{file}");
        }
    }
    assert_eq!(total, 2 * 310);
}

#[test]
fn every_file_sorted_by_time_observed_issuances_are_used_consistently() {
    // Across all files, in time order: every call made with a key whose
    // issuance was observed carries that issuance's fingerprint and root.
    for file in stratus_files() {
        let recs = stratus(&file);
        let anns = run(&recs);
        let mut issued: std::collections::HashMap<String, Value> = Default::default();
        for (r, a) in recs.iter().zip(&anns) {
            if let Some(k) = r["userIdentity"]["accessKeyId"].as_str() {
                if let Some(i) = issued.get(k) {
                    assert_eq!(a["session_fingerprint"], i["session_fingerprint"], "{file}");
                    assert_eq!(a["lineage_root"], i["lineage_root"], "{file}");
                    assert_eq!(a["lineage_depth"], i["lineage_depth"], "{file}");
                    assert_eq!(a["lineage_complete"], true, "{file}");
                }
            }
            if let Some(i) = a.get("issued") {
                issued.insert(i["access_key_id"].as_str().unwrap().to_string(), i.clone());
            }
        }
    }
}

// =========================================================================
// 13. More real-world shapes, extra fields
// =========================================================================

/// A cross-account AssumeRole is logged twice (same eventTime, same
/// responseElements, `sharedEventID`): once in the caller's account with the
/// caller's key, once in the role owner's account as `AWSAccount` with no key
/// (SPEC 3.1: credential_type none for a "cross-account copy").
fn cross_account_copies(k: &str) -> (Value, Value) {
    let caller_copy = assume_role(iam_user(AKIA_USER, USER), T0, "xacct", "ci", k, IP_USER);
    let mut role_copy = caller_copy.clone();
    role_copy["userIdentity"] = json!({
        "type": "AWSAccount",
        "principalId": "AIDAFSHDVNSWGFKZR06G",
        "accountId": "111122223333"
    });
    role_copy["recipientAccountId"] = json!(ACCT);
    role_copy["sharedEventID"] = json!("0b1ee1e5-7d6b-4a3b-9a39-3f1e6bdc0c11");
    (caller_copy, role_copy)
}

fn assert_resolved_to_caller(a: &Value) {
    assert_eq!(a["lineage_root"], AKIA_USER, "{a}");
    assert_eq!(a["lineage_root_type"], "access_key");
    assert_eq!(a["lineage_complete"], true);
    assert_eq!(a["lineage_depth"], 1);
    assert_eq!(a["parent_fingerprint"], fp_long(AKIA_USER, ACCT));
}

#[test]
fn cross_account_copy_first_then_caller_copy() {
    let k = "ASIAQ4PXEXAMPLEXACC1";
    let (caller_copy, role_copy) = cross_account_copies(k);
    let use_ = gci(&iso(t0() + 60), assumed_role(k, "xacct", "ci", T0), IP_USER);
    let a = run(&[role_copy, caller_copy, use_]);
    assert_eq!(a[0]["credential_type"], "none");
    assert_eq!(a[0]["session_fingerprint"], Value::Null);
    assert_eq!(
        a[0]["issued"]["session_fingerprint"],
        a[1]["issued"]["session_fingerprint"]
    );
    assert_resolved_to_caller(&a[2]);
    assert_eq!(a[2]["is_key_collision"], false);
}

#[test]
fn cross_account_caller_copy_first_then_copy() {
    let k = "ASIAQ4PXEXAMPLEXACC1";
    let (caller_copy, role_copy) = cross_account_copies(k);
    let use_ = gci(&iso(t0() + 60), assumed_role(k, "xacct", "ci", T0), IP_USER);
    let a = run(&[caller_copy, role_copy, use_]);
    assert_eq!(a[0]["issued"]["lineage_root"], AKIA_USER);
    assert_eq!(
        a[1]["issued"]["session_fingerprint"],
        a[0]["issued"]["session_fingerprint"]
    );
    // The later call made with the credential must still resolve to the
    // caller's long-term key that was observed issuing it.
    assert_resolved_to_caller(&a[2]);
    // And the second copy must not claim a different root for the same set.
    assert_eq!(a[1]["issued"]["lineage_root"], AKIA_USER);
}

#[test]
fn duplicate_delivery_of_an_issuance_changes_nothing() {
    // CloudTrail may deliver an event twice: same set, no collision.
    let k = "ASIAQ4PXEXAMPLEDUPL1";
    let issue = assume_role(iam_user(AKIA_USER, USER), T0, "deploy", "ci", k, IP_USER);
    let use_ = gci(
        &iso(t0() + 60),
        assumed_role(k, "deploy", "ci", T0),
        IP_USER,
    );
    let a = run(&[issue.clone(), issue, use_]);
    assert_eq!(a[0], a[1]);
    assert_resolved_to_caller(&a[2]);
    assert_eq!(a[2]["is_key_collision"], false);
}

#[test]
fn ec2_instance_identity_credentials() {
    // aws:ec2-instance identity role credentials.
    let inst = "i-0123456789abcdef0";
    let ui = json!({
        "type": "AssumedRole",
        "principalId": format!("{ACCT}:aws:ec2-instance:{inst}"),
        "arn": format!("arn:aws:sts::{ACCT}:assumed-role/aws:ec2-instance/{inst}"),
        "accountId": ACCT,
        "accessKeyId": "ASIAQ4PXEXAMPLEIDNT1",
        "sessionContext": {
            "sessionIssuer": {},
            "attributes": { "creationDate": "2024-07-30T20:00:00Z", "mfaAuthenticated": "false" },
            "ec2RoleDelivery": "2.0"
        }
    });
    let a = &run(&[gci(T0, ui, "10.0.1.5")])[0];
    assert_eq!(a["lineage_root"], format!("ec2:{inst}"));
    assert_eq!(a["lineage_root_type"], "ec2_instance");
    assert_eq!(a["ec2_instance_id"], inst);
}

#[test]
fn web_identity_without_user_name_uses_the_subject() {
    let k = "ASIAQ4PXEXAMPLEWEB02";
    let mut r = web_identity_issue(T0, "FederatedWebIdentityRole", "app", k);
    r["userIdentity"]
        .as_object_mut()
        .unwrap()
        .remove("userName");
    let a = &run(&[r])[0];
    assert_eq!(
        a["issued"]["lineage_root"],
        "web_identity:accounts.google.com/108800000000000000001"
    );
}

#[test]
fn saml_identity_provider_falls_back_to_principal_arn() {
    let k = "ASIAQ4PXEXAMPLESAML3";
    let mut r = saml_issue(T0, "SAMLTestRoleShibboleth", "alice", k);
    r["userIdentity"]
        .as_object_mut()
        .unwrap()
        .remove("identityProvider");
    let a = &run(&[r])[0];
    assert_eq!(
        a["issued"]["lineage_root"],
        "saml:Shibboleth/alice@example.com"
    );
}

#[test]
fn extra_field_used_after_expiration() {
    // 15-minute credentials (expiration observed) used 20 minutes later.
    let k = "ASIAQ4PXEXAMPLEEXPD1";
    let ui = assumed_role(k, "deploy", "ci", T0);
    let mut e = enricher();
    step(
        &mut e,
        &assume_role(iam_user(AKIA_USER, USER), T0, "deploy", "ci", k, IP_USER),
    );
    let in_time = e.process(&bytes(&gci(&iso(t0() + 600), ui.clone(), IP_USER)), None);
    let late = e.process(&bytes(&gci(&iso(t0() + 1200), ui, IP_USER)), None);
    assert!(ann(&in_time).get("used_after_expiration").is_none());
    let a = ann(&late);
    assert_eq!(a["used_after_expiration"], true);
    assert_eq!(a["lineage_root"], AKIA_USER);
    assert_eq!(a["is_key_collision"], false);
    assert_eq!(
        keys(raw_annotation(&late).as_bytes()).last().unwrap(),
        "used_after_expiration"
    );
}

#[test]
fn extra_field_self_assume() {
    // A role session assuming its own role (self-refresh loop).
    let (k1, k2) = ("ASIAQ4PXEXAMPLESELF1", "ASIAQ4PXEXAMPLESELF2");
    let a = run(&[
        assume_role(iam_user(AKIA_USER, USER), T0, "loop", "s1", k1, IP_USER),
        assume_role(
            assumed_role(k1, "loop", "s1", T0),
            &iso(t0() + 60),
            "loop",
            "s2",
            k2,
            IP_USER,
        ),
        assume_role(
            assumed_role(k2, "loop", "s2", &iso(t0() + 60)),
            &iso(t0() + 120),
            "other",
            "s3",
            "ASIAQ4PXEXAMPLESELF3",
            IP_USER,
        ),
    ]);
    assert!(a[0].get("self_assume").is_none());
    assert_eq!(a[1]["self_assume"], true);
    assert_eq!(a[1]["issued"]["lineage_root"], AKIA_USER);
    assert_eq!(a[1]["issued"]["chained"], true);
    assert!(a[2].get("self_assume").is_none());
}

#[test]
fn existing_key_in_pretty_printed_record_is_replaced() {
    let raw = String::from_utf8(stratus_raw("sts-federation-token")[0].clone()).unwrap();
    let (exp1, _) = appendix_a_expected();
    let open = raw.find('{').unwrap();
    let close = raw.rfind('}').unwrap();
    let stale = "\"credlineage\": {\n         \"lineage_root\": \"forged\",\n         \"x\": \"}\"\n      }";
    let first = format!("{}\n      {stale},{}", &raw[..=open], &raw[open + 1..]);
    let last = format!(
        "{},\n      {stale}\n   {}",
        raw[..close].trim_end(),
        &raw[close..]
    );
    for input in [first, last] {
        let out = enricher().process(input.as_bytes(), None);
        assert_eq!(count_members(&out, "credlineage"), 1);
        assert_eq!(raw_annotation(&out), exp1);
        let mut v = parse(&out);
        v.as_object_mut().unwrap().remove("credlineage");
        assert_eq!(v, serde_json::from_str::<Value>(&raw).unwrap());
    }
}
