//! Robustness against hostile input (SPEC 5: "Nothing lost", "Bounded
//! memory", "No secrets out", "Deterministic", "Restartable").
//!
//! A CloudTrail log line is attacker controlled. Every test here feeds
//! `Enricher` input it should survive and checks, per record:
//!
//! * exactly one record out per record in, and no panic;
//! * input that is not JSON (RFC 8259 grammar, UTF-8) or not an object comes
//!   out unchanged and is counted malformed;
//! * a JSON object comes out as valid JSON: either unchanged (not CloudTrail)
//!   or with one `credlineage` member spliced in (every other member byte for
//!   byte, annotation keys in Appendix A order).
//!
//! Tests marked `#[ignore = "BUG: …"]` fail today; each documents one defect
//! in `src/` precisely (see the comment above it). Run them with
//! `cargo test --test hostile -- --ignored`.
//!
//! Runtime: the flood uses 200 000 records against 10 000 sets in debug
//! builds and 10 000 000 against 100 000 sets in release builds (`cargo test
//! --release --test hostile`, ~30 s); a 1 000 000-record variant in debug is
//! `flood_one_million_debug` (ignored, ~4 min).

mod hostile_support;

use credlineage::{Config, Enricher, Error, Outcome, to_single_line};
use hostile_support::{
    Rng, check_record, check_splice, compact, rfc_json, show, stratus_all, stratus_file,
};
use serde_json::{Value, json};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

// ---------------------------------------------------------------------------
// A counting allocator: live heap bytes allocated by the current thread, to
// measure what an `Enricher` really holds (SPEC 5 "Bounded memory").
// ---------------------------------------------------------------------------

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    let _ = LIVE.try_with(|c| c.set(c.get() + delta));
}

/// Live heap bytes allocated (and not freed) by this thread.
fn live_bytes() -> isize {
    LIVE.with(Cell::get)
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            count(l.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            count(l.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) };
        count(-(l.size() as isize));
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            count(new as isize - l.size() as isize);
        }
        q
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn enricher() -> Enricher {
    Enricher::new(Config::default()).unwrap()
}

/// Process one record, turning a panic into a failure that shows the input.
fn run(e: &mut Enricher, input: &[u8], host_time: Option<i64>) -> (Vec<u8>, Outcome) {
    let mut out = Vec::new();
    let r = catch_unwind(AssertUnwindSafe(|| {
        let oc = e.process_into(input, host_time, &mut out);
        (out, oc)
    }));
    match r {
        Ok(x) => x,
        Err(_) => panic!("credlineage panicked on input {}", show(input)),
    }
}

/// Process and check the per-record invariants strictly. Returns the annotation.
fn step(e: &mut Enricher, input: &[u8]) -> Option<Value> {
    let before = e.stats();
    let (out, oc) = run(e, input, None);
    let after = e.stats();
    assert_eq!(after.records, before.records + 1, "record not counted");
    match &oc {
        Outcome::Annotated => assert_eq!(after.annotated, before.annotated + 1),
        Outcome::PassedThrough(_) => {
            assert_eq!(after.passed_through, before.passed_through + 1)
        }
        Outcome::Malformed(_) => assert_eq!(after.malformed, before.malformed + 1),
    }
    check_record(input, &out, &oc, false, false)
}

/// Like [`step`] but tolerating the two documented decoder bugs (so that the
/// tests which are not about them keep running).
fn step_lenient(e: &mut Enricher, input: &[u8]) -> (Option<Value>, Outcome) {
    let (out, oc) = run(e, input, None);
    let ann = check_record(input, &out, &oc, true, true);
    (ann, oc)
}

fn kind(oc: &Outcome) -> &'static str {
    match oc {
        Outcome::Annotated => "annotated",
        Outcome::PassedThrough(_) => "passed_through",
        Outcome::Malformed(_) => "malformed",
    }
}

const T0: &str = "2024-08-02T08:30:00Z";

/// A realistic chained AssumeRole issuance by a long-term key, in the shape of
/// `aws.defense-evasion.organizations-leave.json`.
fn assume_role(key_out: &str, session: &str, time: &str, ip: &str) -> Value {
    json!({
        "awsRegion": "us-east-1",
        "eventCategory": "Management",
        "eventID": "099bfd30-232c-4dff-9998-3821921063ca",
        "eventName": "AssumeRole",
        "eventSource": "sts.amazonaws.com",
        "eventTime": time,
        "eventType": "AwsApiCall",
        "eventVersion": "1.08",
        "managementEvent": true,
        "readOnly": true,
        "recipientAccountId": "307578594326",
        "requestID": "4ddeba69-b9da-48b8-833a-c4d75f10111e",
        "requestParameters": {
            "durationSeconds": 900,
            "roleArn": "arn:aws:iam::307578594326:role/stratus-red-team-leave-org-role",
            "roleSessionName": session
        },
        "resources": [{
            "ARN": "arn:aws:iam::307578594326:role/stratus-red-team-leave-org-role",
            "accountId": "307578594326",
            "type": "AWS::IAM::Role"
        }],
        "responseElements": {
            "assumedRoleUser": {
                "arn": format!("arn:aws:sts::307578594326:assumed-role/stratus-red-team-leave-org-role/{session}"),
                "assumedRoleId": format!("AROAHKPEEQ9BHUOX4D93T:{session}")
            },
            "credentials": {
                "accessKeyId": key_out,
                "expiration": "Aug 2, 2024, 8:45:00 AM",
                "sessionToken": "IQoJb3JpZ2luX2VjEKH//////////wEaCXVzLWVhc3QtMSJIMEYCIQDpLWjFwlZiDhOSv0Wy5mFb"
            }
        },
        "sourceIPAddress": ip,
        "tlsDetails": {"cipherSuite": "TLS_AES_128_GCM_SHA256", "tlsVersion": "TLSv1.3"},
        "userAgent": "stratus-red-team_fd969928-3c0d-4feb-bd56-34f9aee3e6eb",
        "userIdentity": {
            "accessKeyId": "AKIADVISM0T50G52IF0D",
            "accountId": "307578594326",
            "arn": "arn:aws:iam::307578594326:user/christophe",
            "principalId": "AIDA7YYMW5FLWE3HGTNZ",
            "type": "IAMUser",
            "userName": "christophe"
        }
    })
}

/// A call made with the credentials `assume_role` issued.
fn role_call(key: &str, session: &str, created: &str, time: &str) -> Value {
    json!({
        "eventName": "DescribeOrganization",
        "eventSource": "organizations.amazonaws.com",
        "eventTime": time,
        "eventVersion": "1.09",
        "recipientAccountId": "307578594326",
        "requestParameters": null,
        "responseElements": null,
        "sourceIPAddress": "252.5.222.230",
        "userAgent": "stratus-red-team_fd969928-3c0d-4feb-bd56-34f9aee3e6eb",
        "userIdentity": {
            "accessKeyId": key,
            "accountId": "307578594326",
            "arn": format!("arn:aws:sts::307578594326:assumed-role/stratus-red-team-leave-org-role/{session}"),
            "principalId": format!("AROAHKPEEQ9BHUOX4D93T:{session}"),
            "sessionContext": {
                "attributes": {"creationDate": created, "mfaAuthenticated": "false"},
                "sessionIssuer": {
                    "accountId": "307578594326",
                    "arn": "arn:aws:iam::307578594326:role/stratus-red-team-leave-org-role",
                    "principalId": "AROAHKPEEQ9BHUOX4D93T",
                    "type": "Role",
                    "userName": "stratus-red-team-leave-org-role"
                }
            },
            "type": "AssumedRole"
        }
    })
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// A scenario that makes every field credlineage reads matter: issuance,
/// chaining, federation, key creation, EC2 instance credentials (TOFU,
/// RunInstances, AssociateAddress, VPC endpoints), service, SAML and web
/// identity issuance, EventBridge and string wrappers, `@timestamp`, a failed
/// call and GetSessionToken.
fn scenario() -> Vec<Value> {
    let inst = "i-0123456789abcdef0";
    let ec2_call = |key: &str, ip: &str, time: &str| {
        json!({
            "eventName": "GetCallerIdentity", "eventSource": "sts.amazonaws.com", "eventTime": time,
            "recipientAccountId": "017622104382", "requestParameters": null, "responseElements": null,
            "sourceIPAddress": ip, "userAgent": "aws-cli/2",
            "userIdentity": {
                "accessKeyId": key, "accountId": "017622104382",
                "arn": format!("arn:aws:sts::017622104382:assumed-role/ec2-role/{inst}"),
                "principalId": format!("AROALHCCSKSM395EGX3XN:{inst}"),
                "sessionContext": {
                    "attributes": {"creationDate": "2024-08-02T08:20:52Z", "mfaAuthenticated": "false"},
                    "ec2RoleDelivery": "2.0",
                    "sessionIssuer": {"accountId": "017622104382", "arn": "arn:aws:iam::017622104382:role/ec2-role",
                        "principalId": "AROALHCCSKSM395EGX3XN", "type": "Role", "userName": "ec2-role"}
                },
                "type": "AssumedRole"
            }
        })
    };
    let mut chained = assume_role(
        "ASIAMOWPWQJ1QHWCWJXJ",
        "chained-session",
        "2024-08-02T08:30:05Z",
        "252.5.222.230",
    );
    chained["userIdentity"] =
        role_call("ASIA36EV31F1RB3OA8IG", "first-session", T0, T0)["userIdentity"].clone();
    chained["responseElements"]
        .as_object_mut()
        .unwrap()
        .remove("assumedRoleUser");
    chained["responseElements"]["credentials"]["expiration"] = json!("2024-08-02T09:30:05Z");
    let mut vpce = ec2_call("ASIAP5CT9NN8EYVU1FXV", "10.0.0.9", "2024-08-02T08:31:40Z");
    vpce["vpcEndpointId"] = json!("vpce-0123456789abcdef0");
    vpce["vpcEndpointAccountId"] = json!("999999999999");
    let saml_call = json!({
        "eventName": "ListBuckets", "eventSource": "s3.amazonaws.com", "eventTime": "2024-08-02T08:33:00Z",
        "sourceIPAddress": "198.51.100.7",
        "userIdentity": {
            "type": "AssumedRole", "accessKeyId": "ASIAQNZGKIQY56JQ7WML", "accountId": "029608264753",
            "arn": "arn:aws:sts::029608264753:assumed-role/AWSReservedSSO_Admin_0123/alice@example.com",
            "principalId": "AROAEXAMPLE:alice@example.com",
            "sessionContext": {"attributes": {"creationDate": "2024-08-02T08:32:00Z"},
                "sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::029608264753:role/AWSReservedSSO_Admin_0123"}}
        }
    });
    vec![
        // 0: long-term key issues ASIA36EV…
        assume_role("ASIA36EV31F1RB3OA8IG", "first-session", T0, "252.5.222.230"),
        // 1: a failed call with it (errorCode is read)
        {
            let mut c = role_call(
                "ASIA36EV31F1RB3OA8IG",
                "first-session",
                T0,
                "2024-08-02T08:30:01Z",
            );
            c["errorCode"] = json!("AccessDenied");
            c
        },
        // 2: role chaining: ASIA36EV… issues ASIAMOWP… (ARN rebuilt from roleArn + roleSessionName)
        chained,
        // 3: a call with the chained key, creationDate in basic ISO form
        role_call(
            "ASIAMOWPWQJ1QHWCWJXJ",
            "chained-session",
            "20240802T083005Z",
            "2024-08-02T08:30:06Z",
        ),
        // 4: GetFederationToken by a long-term key
        json!({
            "eventName": "GetFederationToken", "eventSource": "sts.amazonaws.com", "eventTime": "2024-08-02T08:30:10Z",
            "recipientAccountId": "742491224508",
            "requestParameters": {"name": "stratus_red_team", "policy": "{\"Version\":\"2012-10-17\"}"},
            "responseElements": {
                "credentials": {"accessKeyId": "ASIASTJKC5GCM7ZE6LUP", "expiration": "Nov 30, 2024, 8:43:17 PM",
                    "sessionToken": "IQoJb3JpZ2luX2VjEOH//////////wEaCXVzLWVhc3QtMSJIMEYCIQDzpomGZAmk"},
                "federatedUser": {"arn": "arn:aws:sts::742491224508:federated-user/stratus_red_team",
                    "federatedUserId": "742491224508:stratus_red_team"},
                "packedPolicySize": 4
            },
            "sourceIPAddress": "255.090.254.5",
            "userIdentity": {"accessKeyId": "AKIA6V1GNZTT65XQH36M", "accountId": "742491224508",
                "arn": "arn:aws:iam::742491224508:user/federation-user", "principalId": "AIDAN7SEM6PEVTNQR8M4",
                "type": "IAMUser", "userName": "federation-user"}
        }),
        // 5: a call as the federated user
        json!({
            "eventName": "GetCallerIdentity", "eventSource": "sts.amazonaws.com", "eventTime": "2024-08-02T08:30:11Z",
            "recipientAccountId": "742491224508", "requestParameters": null, "responseElements": null,
            "sourceIPAddress": "255.090.254.5",
            "userIdentity": {"accessKeyId": "ASIASTJKC5GCM7ZE6LUP", "accountId": "742491224508",
                "arn": "arn:aws:sts::742491224508:federated-user/stratus_red_team",
                "principalId": "742491224508:stratus_red_team",
                "sessionContext": {"attributes": {"creationDate": "2024-08-02T08:30:10Z", "mfaAuthenticated": "false"},
                    "sessionIssuer": {"accountId": "742491224508", "arn": "arn:aws:iam::742491224508:user/federation-user",
                        "type": "IAMUser", "userName": "federation-user"}},
                "type": "FederatedUser"}
        }),
        // 6: the chained credential creates a long-term key (persistence)
        json!({
            "eventName": "CreateAccessKey", "eventSource": "iam.amazonaws.com", "eventTime": "2024-08-02T08:30:20Z",
            "recipientAccountId": "307578594326",
            "requestParameters": {"userName": "backdoor"},
            "responseElements": {"accessKey": {"accessKeyId": "AKIASP2TPHJSQH3FJXYZ", "createDate": "Aug 2, 2024 8:30:20 AM",
                "status": "Active", "userName": "backdoor"}},
            "sourceIPAddress": "252.5.222.230",
            "userIdentity": role_call("ASIAMOWPWQJ1QHWCWJXJ", "chained-session", "2024-08-02T08:30:05Z", T0)["userIdentity"].clone()
        }),
        // 7: the new key is used (created_by)
        json!({
            "eventName": "ListUsers", "eventSource": "iam.amazonaws.com", "eventTime": "2024-08-02T08:30:30Z",
            "sourceIPAddress": "203.0.113.9",
            "userIdentity": {"accessKeyId": "AKIASP2TPHJSQH3FJXYZ", "accountId": "307578594326",
                "arn": "arn:aws:iam::307578594326:user/backdoor", "principalId": "AIDAEXAMPLE", "type": "IAMUser", "userName": "backdoor"}
        }),
        // 8: RunInstances teaches the instance's IPs
        json!({
            "eventName": "RunInstances", "eventSource": "ec2.amazonaws.com", "eventTime": "2024-08-02T08:30:40Z",
            "sourceIPAddress": "252.5.222.230",
            "requestParameters": {"instancesSet": {"items": [{"imageId": "ami-1", "minCount": 1, "maxCount": 1}]}},
            "responseElements": {"instancesSet": {"items": [{
                "instanceId": inst, "privateIpAddress": "10.0.0.5", "ipAddress": "3.3.3.3",
                "networkInterfaceSet": {"items": [{"privateIpAddress": "10.0.0.5", "association": {"publicIp": "3.3.3.3"}}]}
            }]}},
            "userIdentity": {"accessKeyId": "AKIADVISM0T50G52IF0D", "accountId": "307578594326",
                "arn": "arn:aws:iam::307578594326:user/christophe", "type": "IAMUser", "userName": "christophe"}
        }),
        // 9: AssociateAddress
        json!({
            "eventName": "AssociateAddress", "eventSource": "ec2.amazonaws.com", "eventTime": "2024-08-02T08:30:50Z",
            "sourceIPAddress": "252.5.222.230",
            "requestParameters": {"instanceId": inst, "publicIp": "3.3.3.4"},
            "responseElements": {"_return": true},
            "userIdentity": {"accessKeyId": "AKIADVISM0T50G52IF0D", "accountId": "307578594326",
                "arn": "arn:aws:iam::307578594326:user/christophe", "type": "IAMUser", "userName": "christophe"}
        }),
        // 10: instance credentials used from the instance
        ec2_call("ASIAP5CT9NN8EYVU1FXV", "3.3.3.3", "2024-08-02T08:31:00Z"),
        // 11: … and from the IAM user's IP (off-host)
        ec2_call(
            "ASIAP5CT9NN8EYVU1FXV",
            "252.5.222.230",
            "2024-08-02T08:31:30Z",
        ),
        // 12: through a VPC endpoint of another account
        vpce,
        // 13: a service issues instance credentials
        json!({
            "eventName": "AssumeRole", "eventSource": "sts.amazonaws.com", "eventTime": "2024-08-02T08:31:50Z",
            "sourceIPAddress": "ec2.amazonaws.com",
            "requestParameters": {"roleArn": "arn:aws:iam::017622104382:role/ec2-role", "roleSessionName": inst},
            "responseElements": {"credentials": {"accessKeyId": "ASIAY34FZKBOKMUTVV7A", "expiration": "2024-08-02T14:31:50Z",
                "sessionToken": "IQoJb3JpZ2luX2VjEPH//////////wEaCXVz"}},
            "userIdentity": {"type": "AWSService", "invokedBy": "ec2.amazonaws.com"}
        }),
        // 14: AssumeRoleWithSAML
        json!({
            "eventName": "AssumeRoleWithSAML", "eventSource": "sts.amazonaws.com", "eventTime": "2024-08-02T08:32:00Z",
            "recipientAccountId": "029608264753", "sourceIPAddress": "198.51.100.7",
            "requestParameters": {"principalArn": "arn:aws:iam::029608264753:saml-provider/Okta",
                "roleArn": "arn:aws:iam::029608264753:role/AWSReservedSSO_Admin_0123", "roleSessionName": "alice@example.com"},
            "responseElements": {
                "credentials": {"accessKeyId": "ASIAQNZGKIQY56JQ7WML", "expiration": "Sep 14, 2024, 7:01:26 AM",
                    "sessionToken": "IQoJb3JpZ2luX2VjEKH//////////wEaCXVzLWVh"},
                "assumedRoleUser": {"arn": "arn:aws:sts::029608264753:assumed-role/AWSReservedSSO_Admin_0123/alice@example.com"},
                "subject": "alice@example.com", "subjectType": "persistent"
            },
            "userIdentity": {"type": "SAMLUser", "principalId": "Okta:alice@example.com", "userName": "alice@example.com",
                "identityProvider": "arn:aws:iam::029608264753:saml-provider/Okta"}
        }),
        // 15: AssumeRoleWithWebIdentity
        json!({
            "eventName": "AssumeRoleWithWebIdentity", "eventSource": "sts.amazonaws.com", "eventTime": "2024-08-02T08:32:10Z",
            "sourceIPAddress": "198.51.100.8",
            "requestParameters": {"roleArn": "arn:aws:iam::029608264753:role/gh", "roleSessionName": "gha"},
            "responseElements": {
                "credentials": {"accessKeyId": "ASIAQNZGKIQY56JQ7WMM", "expiration": "Nov 29, 2024 4:31:59 AM"},
                "assumedRoleUser": {"arn": "arn:aws:sts::029608264753:assumed-role/gh/gha"},
                "provider": "token.actions.githubusercontent.com",
                "subjectFromWebIdentityToken": "repo:org/repo:ref:refs/heads/main"
            },
            "userIdentity": {"type": "WebIdentityUser", "userName": "repo:org/repo:ref:refs/heads/main",
                "identityProvider": "token.actions.githubusercontent.com"}
        }),
        // 16: EventBridge envelope
        json!({
            "version": "0", "id": "e1", "detail-type": "AWS API Call via CloudTrail", "source": "aws.s3",
            "time": "2024-08-02T08:33:00Z", "region": "us-east-1",
            "detail": saml_call
        }),
        // 17: a record held as a JSON string (shippers without a JSON parser)
        json!({
            "@timestamp": "2024-08-02T08:33:30Z",
            "message": serde_json::to_string(&role_call("ASIA36EV31F1RB3OA8IG", "first-session", T0, "2024-08-02T08:33:30Z")).unwrap()
        }),
        // 18: no eventTime, only @timestamp; console sign-in by root
        json!({
            "eventName": "ConsoleLogin", "eventSource": "signin.amazonaws.com", "@timestamp": "2024-08-02T08:34:00Z",
            "sourceIPAddress": "198.51.100.9", "errorCode": null,
            "responseElements": {"ConsoleLogin": "Success"},
            "userIdentity": {"type": "Root", "accountId": "307578594326", "arn": "arn:aws:iam::307578594326:root", "principalId": "307578594326"}
        }),
        // 19: a failed AssumeRole issues nothing
        {
            let mut f = assume_role(
                "ASIAFAILEDFAILEDFAIL",
                "failed",
                "2024-08-02T08:34:10Z",
                "252.5.222.230",
            );
            f["errorCode"] = json!("AccessDenied");
            f["responseElements"] = Value::Null;
            f
        },
        // 20: GetSessionToken
        json!({
            "eventName": "GetSessionToken", "eventSource": "sts.amazonaws.com", "eventTime": "2024-08-02T08:34:20Z",
            "sourceIPAddress": "252.5.222.230",
            "requestParameters": {"durationSeconds": 3600},
            "responseElements": {"credentials": {"accessKeyId": "ASIAGETSESSIONTOKEN1", "expiration": "Aug 2, 2024, 9:34:20 AM",
                "sessionToken": "IQoJb3JpZ2luX2VjEJH//////////wEaCXVz"}},
            "userIdentity": {"accessKeyId": "AKIADVISM0T50G52IF0D", "accountId": "307578594326",
                "arn": "arn:aws:iam::307578594326:user/christophe", "type": "IAMUser", "userName": "christophe"}
        }),
    ]
}

/// The annotation of `out` for an `input` that has no `credlineage` member:
/// the cheap form of `check_splice` (prefix, suffix, one member), for the
/// records of a stream that are not under test.
fn quick_annotation(input: &[u8], out: &[u8], oc: &Outcome) -> Option<Value> {
    if !matches!(oc, Outcome::Annotated) {
        assert!(out == input, "{oc:?} but changed: {}", show(input));
        return None;
    }
    let close = input.iter().rposition(|&c| c == b'}').unwrap();
    assert!(out.starts_with(&input[..close]) && out.ends_with(&input[close..]));
    let mid = &out[close..out.len() - (input.len() - close)];
    let mid = mid.strip_prefix(b",").unwrap_or(mid);
    let ann = mid
        .strip_prefix(b"\"credlineage\":")
        .unwrap_or_else(|| panic!("no annotation member: {}", show(out)));
    Some(serde_json::from_slice(ann).expect("annotation parses"))
}

/// Process a stream; full checks on record `r`, cheap ones after it, none
/// before it (its records are the same as in the baseline). Returns (outcome
/// kind, annotation) for records `r..`.
fn run_tail(records: &[Vec<u8>], r: usize) -> Vec<(&'static str, Option<Value>)> {
    let mut e = enricher();
    let mut res = Vec::new();
    for (i, rec) in records.iter().enumerate() {
        let (out, oc) = run(&mut e, rec, None);
        if i == r {
            res.push((kind(&oc), check_record(rec, &out, &oc, true, true)));
        } else if i > r {
            res.push((kind(&oc), quick_annotation(rec, &out, &oc)));
        }
    }
    res
}

/// Process a whole stream with the strict per-record checks; returns each
/// record's (outcome kind, annotation).
fn run_stream(records: &[Vec<u8>]) -> Vec<(&'static str, Option<Value>)> {
    let mut e = enricher();
    records
        .iter()
        .map(|r| {
            let (out, oc) = run(&mut e, r, None);
            let ann = check_record(r, &out, &oc, true, true);
            (kind(&oc), ann)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// 1. Not JSON, not objects, empty
// ---------------------------------------------------------------------------

#[test]
fn invalid_json_passes_through_unchanged() {
    let ct = r#""eventName":"AssumeRole","eventSource":"sts.amazonaws.com""#;
    let cases: Vec<Vec<u8>> = [
        "{".to_string(),
        "}".to_string(),
        "{{}}".to_string(),
        format!("{{{ct}"),
        format!("{{{ct},}}"),
        format!("{{{ct}}}}}"),
        format!("{{{ct}}} {{{ct}}}"),
        format!("{{{ct}}}\n{{{ct}}}"),
        format!("{{{ct}}}x"),
        format!("{{{ct},\"a\":}}"),
        format!("{{{ct},\"a\" 1}}"),
        format!("{{{ct},'a':1}}"),
        format!("{{{ct},a:1}}"),
        format!("{{{ct},\"a\":01}}"),
        format!("{{{ct},\"a\":1.}}"),
        format!("{{{ct},\"a\":.5}}"),
        format!("{{{ct},\"a\":+1}}"),
        format!("{{{ct},\"a\":NaN}}"),
        format!("{{{ct},\"a\":Infinity}}"),
        format!("{{{ct},\"a\":tru}}"),
        format!("{{{ct},\"a\":nul}}"),
        format!("{{{ct},\"a\":\"\\x\"}}"),
        format!("{{{ct},\"a\":\"\\u12\"}}"),
        format!("{{{ct},\"a\":\"\\u12G4\"}}"),
        format!("{{{ct},\"a\":\"raw\nnewline\"}}"),
        format!("{{{ct},\"a\":\"raw\ttab\"}}"),
        format!("{{{ct},\"a\":[1,2}}"),
        format!("{{{ct},\"a\":[1,2,]}}"),
        format!("{{{ct},\"a\":{{\"b\":1]}}"),
        format!("{{{ct} /* comment */}}"),
        format!("{{{ct},\"userIdentity\":{{\"accessKeyId\":\"ASIA}}}}"),
        "{\"eventName\":\"AssumeRole\",\"eventSource\":sts.amazonaws.com}".to_string(),
        "\u{feff}{\"eventName\":\"X\",\"eventSource\":\"s\"}".to_string(),
        "[1,2".to_string(),
        "\"unterminated".to_string(),
        "nul".to_string(),
        "-".to_string(),
        "1 2".to_string(),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect();
    let mut e = enricher();
    for (i, c) in cases.iter().enumerate() {
        assert!(
            rfc_json(c, true).is_none(),
            "case {i} is valid JSON: {}",
            show(c)
        );
        let (out, oc) = run(&mut e, c, None);
        assert_eq!(out, *c, "case {i} changed");
        match &oc {
            Outcome::Malformed(Error::InvalidJson { index, reason }) => {
                assert_eq!(*index, i as u64, "error names the wrong record");
                assert!(!reason.is_empty());
            }
            other => panic!("case {i} {}: {other:?}", show(c)),
        }
    }
    let s = e.stats();
    assert_eq!(s.records, cases.len() as u64);
    assert_eq!(s.malformed, cases.len() as u64);
    assert_eq!(s.annotated + s.passed_through, 0);
    assert_eq!(s.tracked_sets, 0, "invalid input changed the state");
}

#[test]
fn non_objects_pass_through_unchanged() {
    let rec = r#"{"eventName":"AssumeRole","eventSource":"sts.amazonaws.com"}"#;
    let cases: Vec<String> = vec![
        "[]".into(),
        "[1,2,3]".into(),
        format!("[{rec}]"),
        format!("  [ {rec} , {rec} ]\n"),
        r#""a string""#.into(),
        serde_json::to_string(rec).unwrap(),
        "0".into(),
        "-0.5e10".into(),
        "12345678901234567890123".into(),
        "null".into(),
        "true".into(),
        "false".into(),
        " \n null \t".into(),
    ];
    let mut e = enricher();
    for c in &cases {
        let (out, oc) = run(&mut e, c.as_bytes(), None);
        assert_eq!(out, c.as_bytes(), "{c}");
        assert!(
            matches!(oc, Outcome::Malformed(Error::NotObject { .. })),
            "{c}: {oc:?}"
        );
    }
    assert_eq!(e.stats().malformed, cases.len() as u64);
}

#[test]
fn empty_and_whitespace_only_input() {
    let mut e = enricher();
    for c in [
        &b""[..],
        b" ",
        b"\n",
        b"\r\n",
        b"\t \t\r\n  ",
        b"\x0b",
        b"\x00",
    ] {
        let (out, oc) = run(&mut e, c, None);
        assert_eq!(out, c);
        assert!(matches!(oc, Outcome::Malformed(_)), "{c:?}: {oc:?}");
    }
    assert_eq!(e.stats().records, 7);
    assert_eq!(e.stats().malformed, 7);
}

#[test]
fn not_cloudtrail_objects_pass_through_unchanged() {
    let cases = [
        "{}",
        " { } ",
        r#"{"a":1}"#,
        r#"{"eventName":"AssumeRole"}"#,
        r#"{"eventSource":"sts.amazonaws.com"}"#,
        r#"{"eventName":"","eventSource":"sts.amazonaws.com"}"#,
        r#"{"eventName":1,"eventSource":"sts.amazonaws.com"}"#,
        r#"{"eventName":"X","eventSource":null}"#,
        r#"{"Records":[{"eventName":"X","eventSource":"s"}]}"#,
        r#"{"detail":"{\"eventName\":\"X\",\"eventSource\":\"s\"}"}"#,
        r#"{"message":"{\"eventName\":\"X\"}"}"#,
        r#"{"message":"{\"eventName\":\"X\",\"eventSource\":\"s\"} trailing"}"#,
        r#"{"credlineage":{"v":1},"a":1}"#,
    ];
    let mut e = enricher();
    for c in cases {
        let (out, oc) = run(&mut e, c.as_bytes(), None);
        assert_eq!(out, c.as_bytes(), "{c}");
        assert!(
            matches!(oc, Outcome::PassedThrough(Error::NotCloudTrail { .. })),
            "{c}: {oc:?}"
        );
    }
    assert_eq!(e.stats().passed_through, cases.len() as u64);
}

// ---------------------------------------------------------------------------
// 2. Truncated lines
// ---------------------------------------------------------------------------

#[test]
fn every_prefix_of_real_records_passes_through_unchanged() {
    let mut records: Vec<Vec<u8>> = Vec::new();
    for f in [
        "aws.persistence.sts-federation-token.json",
        "aws.defense-evasion.organizations-leave.json",
    ] {
        records.extend(stratus_file(f));
    }
    records.extend(
        stratus_file("aws.credential-access.ec2-steal-instance-credentials.json")
            .into_iter()
            .take(3),
    );
    let compacts: Vec<Vec<u8>> = records.iter().map(|r| compact(r)).collect();
    records.extend(compacts);
    let mut e = enricher();
    let mut n = 0u64;
    for rec in &records {
        for len in 0..rec.len() {
            let p = &rec[..len];
            let (out, oc) = run(&mut e, p, None);
            n += 1;
            // A prefix of a record that ends in whitespace + `}` could only be
            // valid if it were the whole record; none is.
            assert!(out == p, "truncated record changed at len {len}");
            let Outcome::Malformed(err) = &oc else {
                panic!("prefix of len {len} not malformed: {oc:?}: {}", show(p));
            };
            // The error must not leak the record's content (tokens).
            assert!(!err.to_string().contains("IQoJ"), "{err}");
        }
        // …and the whole record is annotated.
        let (out, oc) = run(&mut e, rec, None);
        assert!(matches!(oc, Outcome::Annotated));
        check_splice(rec, &out);
    }
    let s = e.stats();
    assert_eq!(s.malformed, n);
    assert_eq!(s.records, n + records.len() as u64);
}

// ---------------------------------------------------------------------------
// 3. Huge records
// ---------------------------------------------------------------------------

/// The annotation `rec` gets from a fresh enricher.
fn annotation_alone(rec: &[u8]) -> Value {
    let mut e = enricher();
    step(&mut e, rec).expect("annotated")
}

#[test]
fn ten_megabyte_string_field() {
    let base = assume_role("ASIA36EV31F1RB3OA8IG", "s", T0, "252.5.222.230");
    let expected = annotation_alone(&bytes(&base));
    // 10 MB of text with quotes, backslashes, braces and non-ASCII in it.
    let chunk = "a\"b\\c}{][,:é🦀\n\u{1}";
    let huge: String = chunk.repeat(10 * 1024 * 1024 / chunk.len() + 1);
    let mut v = base.clone();
    v["requestParameters"]["policy"] = json!(huge);
    let rec = bytes(&v);
    assert!(rec.len() > 10 * 1024 * 1024);
    let mut e = enricher();
    let t = Instant::now();
    let ann = step(&mut e, &rec).expect("annotated");
    assert_eq!(
        ann, expected,
        "a huge unrelated field changed the annotation"
    );
    eprintln!("10 MB string record: {:?}", t.elapsed());

    // The same size in a field credlineage reads (the caller's ARN): still one
    // valid record out.
    let mut v = role_call("ASIA36EV31F1RB3OA8IG", "s", T0, T0);
    v["userIdentity"]["type"] = json!("IAMUser");
    v["userIdentity"]["arn"] = json!(huge);
    let rec = bytes(&v);
    let ann = step(&mut e, &rec).expect("annotated");
    assert!(
        ann["lineage_root"]
            .as_str()
            .is_some_and(|r| r.len() > 10 * 1024 * 1024)
    );
}

#[test]
fn ten_megabyte_array_and_100k_elements_in_request_parameters() {
    let base = assume_role("ASIA36EV31F1RB3OA8IG", "s", T0, "252.5.222.230");
    let expected = annotation_alone(&bytes(&base));
    let mut e = enricher();

    // requestParameters with a 100 000-element array member.
    let mut v = base.clone();
    let items: Vec<Value> = (0..100_000)
        .map(|i| json!({"roleArn": format!("arn:aws:iam::1:role/r{i}"), "n": i}))
        .collect();
    v["requestParameters"]["items"] = Value::Array(items);
    let rec = bytes(&v);
    assert_eq!(
        step(&mut e, &rec).expect("annotated")["issued"],
        expected["issued"]
    );

    // requestParameters *being* a 100 000-element array (wrong type: absent).
    let mut v = base.clone();
    v["requestParameters"] = Value::Array((0..100_000).map(|i| json!(i)).collect());
    let rec = bytes(&v);
    let ann = step(&mut e, &rec).expect("annotated");
    assert_eq!(ann["lineage_root"], expected["lineage_root"]);

    // A 10 MB top-level array of numbers.
    let mut v = base.clone();
    v["zzz"] = Value::Array((0..1_500_000u64).map(|i| json!(i * 7919)).collect());
    let rec = bytes(&v);
    assert!(rec.len() > 10 * 1024 * 1024);
    let mut e2 = enricher();
    assert_eq!(step(&mut e2, &rec).expect("annotated"), expected);

    // RunInstances with 100 000 instances (credlineage keeps a bounded number).
    let items: Vec<Value> = (0..100_000)
        .map(|i| json!({"instanceId": format!("i-{i:017x}"), "privateIpAddress": format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255)}))
        .collect();
    let run_instances = json!({
        "eventName": "RunInstances", "eventSource": "ec2.amazonaws.com", "eventTime": T0,
        "responseElements": {"instancesSet": {"items": items}},
        "userIdentity": {"type": "IAMUser", "accessKeyId": "AKIADVISM0T50G52IF0D", "accountId": "307578594326"}
    });
    let rec = bytes(&run_instances);
    let before = live_bytes();
    let mut e3 = enricher();
    step(&mut e3, &rec).expect("annotated");
    let held = live_bytes() - before;
    assert!(
        held < 2 * 1024 * 1024,
        "one RunInstances record made the enricher hold {held} bytes"
    );
}

// ---------------------------------------------------------------------------
// 4. Deep nesting
// ---------------------------------------------------------------------------

/// Nesting deeper than serde_json's recursion limit (128), in fields
/// credlineage skips and in fields it reads. serde_json skips ignored values
/// iteratively, so credlineage reads these records at any depth: they are
/// valid JSON and are annotated exactly as without the deep member (no stack
/// overflow, no lost record). Passing them through unchanged and counted
/// malformed would also satisfy SPEC 5; what must not happen is a crash, a
/// lost record or invalid output.
#[test]
fn nesting_deeper_than_the_recursion_limit() {
    let base = assume_role("ASIA36EV31F1RB3OA8IG", "s", T0, "252.5.222.230");
    let expected = annotation_alone(&bytes(&base));
    for depth in [127usize, 128, 129, 200, 100_000] {
        let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        let mixed = format!(
            "{}null{}",
            "[{\"a\":".repeat(depth / 2),
            "}]".repeat(depth / 2)
        );
        for deep in [&arrays, &objects, &mixed] {
            // (member path, does the annotation stay the same?)
            let places: [(&[&str], bool); 7] = [
                (&["zzz"], true),
                (&["requestParameters", "policy"], true),
                (&["requestParameters", "roleSessionName"], false),
                (&["userIdentity", "sessionContext"], true),
                (&["responseElements", "credentials", "sessionToken"], true),
                (&["tlsDetails"], true),
                (&["detail"], true),
            ];
            for (path, same) in places {
                let mut v = base.clone();
                let mut cur = &mut v;
                for p in &path[..path.len() - 1] {
                    cur = &mut cur[*p];
                }
                cur[path[path.len() - 1]] = json!("@@DEEP@@");
                let rec = String::from_utf8(bytes(&v))
                    .unwrap()
                    .replacen("\"@@DEEP@@\"", deep, 1)
                    .into_bytes();
                let mut e = enricher();
                let (out, oc) = run(&mut e, &rec, None);
                let ann = check_record(&rec, &out, &oc, true, false);
                match (&oc, ann) {
                    (Outcome::Annotated, Some(ann)) => {
                        if same {
                            assert_eq!(ann, expected, "depth {depth} at {path:?}");
                        }
                    }
                    (Outcome::Malformed(_), None) => assert_eq!(out, rec),
                    (other, _) => panic!("depth {depth} at {path:?}: {other:?}"),
                }
            }
        }
        // As the whole record: not an object / not CloudTrail, unchanged.
        let mut e = enricher();
        for whole in [&arrays, &objects] {
            let (out, oc) = run(&mut e, whole.as_bytes(), None);
            assert_eq!(out, whole.as_bytes());
            assert!(!matches!(oc, Outcome::Annotated));
        }
    }
}

// ---------------------------------------------------------------------------
// 5. Duplicate keys
// ---------------------------------------------------------------------------

#[test]
fn duplicate_keys_last_one_wins_like_serde_json() {
    let ui_long = r#"{"type":"IAMUser","accessKeyId":"AKIADVISM0T50G52IF0D","accountId":"307578594326","arn":"arn:aws:iam::307578594326:user/christophe"}"#;
    let ui_temp = r#"{"type":"AssumedRole","accessKeyId":"ASIA36EV31F1RB3OA8IG","accountId":"307578594326","arn":"arn:aws:sts::307578594326:assumed-role/r/s","sessionContext":{"attributes":{"creationDate":"2024-08-02T08:30:00Z"}}}"#;
    let cases = [
        format!(
            r#"{{"eventName":"AssumeRole","eventName":"GetCallerIdentity","eventSource":"sts.amazonaws.com","eventTime":"{T0}","userIdentity":{ui_long}}}"#
        ),
        format!(
            r#"{{"eventName":"GetCallerIdentity","eventSource":"sts.amazonaws.com","eventTime":"{T0}","userIdentity":{ui_long},"userIdentity":{ui_temp}}}"#
        ),
        format!(
            r#"{{"eventName":"GetCallerIdentity","eventSource":"sts.amazonaws.com","eventTime":"{T0}","userIdentity":{ui_temp},"userIdentity":{ui_long}}}"#
        ),
        format!(
            r#"{{"eventName":"GetCallerIdentity","eventSource":"sts.amazonaws.com","eventTime":"{T0}","userIdentity":{ui_long},"userIdentity":null}}"#
        ),
        r#"{"eventName":"GetCallerIdentity","eventSource":"sts.amazonaws.com","userIdentity":{"accessKeyId":"AKIADVISM0T50G52IF0D","accessKeyId":"ASIA36EV31F1RB3OA8IG"}}"#.to_string(),
        format!(
            r#"{{"credlineage":1,"eventName":"GetCallerIdentity","credlineage":{{"v":1}},"eventSource":"sts.amazonaws.com","credlineage":[],"userIdentity":{ui_long}}}"#
        ),
        format!(
            r#"{{"eventName":"GetCallerIdentity","eventSource":"sts.amazonaws.com","eventSource":7,"userIdentity":{ui_long}}}"#
        ),
        format!(
            r#"{{"eventTime":"2030-01-01T00:00:00Z","eventName":"GetCallerIdentity","eventSource":"sts.amazonaws.com","eventTime":"{T0}","userIdentity":{ui_long}}}"#
        ),
    ];
    for c in &cases {
        let rec = c.as_bytes();
        // serde_json's own reading (last wins) is the reference.
        let v: Value = serde_json::from_slice(rec).unwrap();
        let mut e = enricher();
        let ann = step(&mut e, rec);
        let is_ct = v["eventName"].is_string() && v["eventSource"].is_string();
        assert_eq!(ann.is_some(), is_ct, "{c}");
        if let Some(ann) = ann {
            assert_eq!(
                ann.get("access_key_id"),
                v["userIdentity"].get("accessKeyId"),
                "{c}"
            );
            // Same annotation as the de-duplicated record.
            let dedup = bytes(&v);
            let mut e2 = enricher();
            assert_eq!(step(&mut e2, &dedup).unwrap(), ann, "{c}");
        }
    }
}

// ---------------------------------------------------------------------------
// 6. Invalid UTF-8, NUL bytes, lone surrogates
// ---------------------------------------------------------------------------

fn with_raw(v: &Value, path: &[&str], raw: &[u8]) -> Vec<u8> {
    let mut v = v.clone();
    let mut cur = &mut v;
    for p in &path[..path.len() - 1] {
        cur = &mut cur[*p];
    }
    cur[path[path.len() - 1]] = json!("@@RAW@@");
    let b = bytes(&v);
    let pos = b
        .windows(9)
        .position(|w| w == b"\"@@RAW@@\"")
        .expect("placeholder");
    let mut out = b[..pos].to_vec();
    out.extend_from_slice(raw);
    out.extend_from_slice(&b[pos + 9..]);
    out
}

const BAD_UTF8: [&[u8]; 7] = [
    b"\"\xff\"",
    b"\"a\xfe\xffb\"",
    b"\"\xc0\xaf\"",         // overlong '/'
    b"\"\xed\xa0\x80\"",     // a surrogate encoded in UTF-8
    b"\"\xe2\x82\"",         // truncated sequence
    b"\"\xf4\x90\x80\x80\"", // above U+10FFFF
    b"\"\x80\"",             // lone continuation byte
];

#[test]
fn invalid_utf8_in_read_fields_keys_and_structure_passes_through() {
    let base = assume_role("ASIA36EV31F1RB3OA8IG", "s", T0, "252.5.222.230");
    let mut e = enricher();
    for bad in BAD_UTF8 {
        for path in [
            &["userIdentity", "arn"][..],
            &["userIdentity", "accessKeyId"],
            &["requestParameters", "roleSessionName"],
            &["responseElements", "credentials", "accessKeyId"],
            &["eventTime"],
            &["eventName"],
        ] {
            let rec = with_raw(&base, path, bad);
            let (out, oc) = run(&mut e, &rec, None);
            assert_eq!(out, rec, "{path:?} {bad:?}");
            assert!(matches!(oc, Outcome::Malformed(_)), "{path:?}: {oc:?}");
        }
        // In a key.
        let mut key = b"\"k".to_vec();
        key.extend_from_slice(&bad[1..bad.len() - 1]);
        key.extend_from_slice(b"\":1,");
        let mut rec = b"{".to_vec();
        rec.extend_from_slice(&key);
        rec.extend_from_slice(&bytes(&base)[1..]);
        let (out, oc) = run(&mut e, &rec, None);
        assert_eq!(out, rec);
        assert!(matches!(oc, Outcome::Malformed(_)));
    }
    // Outside strings.
    let mut rec = bytes(&base);
    rec.insert(1, 0xff);
    let (out, oc) = run(&mut e, &rec, None);
    assert_eq!(out, rec);
    assert!(matches!(oc, Outcome::Malformed(_)));
    assert_eq!(e.stats().annotated, 0);
    assert_eq!(e.stats().tracked_sets, 0);
}

// BUG (src/core/record.rs, parse_outer via serde_json IgnoredAny): invalid UTF-8
// inside a string credlineage does not read is not detected. serde_json's
// `from_slice` skips ignored strings without validating UTF-8, so
// `{"eventName":"X","eventSource":"s","userAgent":"\xff"}` (raw byte 0xff) is
// annotated (Outcome::Annotated, stats.annotated += 1) and the output carries
// the invalid byte, whereas SPEC 5 says invalid JSON (RFC 8259 8.1 requires
// UTF-8) passes through unchanged and counted malformed — as it is when the
// same byte sits in a field credlineage reads (e.g. userIdentity.arn).
#[test]

fn bug_invalid_utf8_in_unread_string_is_annotated() {
    let base = assume_role("ASIA36EV31F1RB3OA8IG", "s", T0, "252.5.222.230");
    let minimal: &[u8] = b"{\"eventName\":\"X\",\"eventSource\":\"s\",\"userAgent\":\"\xff\"}";
    let mut e = enricher();
    let (out, oc) = run(&mut e, minimal, None);
    assert!(
        matches!(oc, Outcome::Malformed(_)) && out == minimal,
        "minimal case: {oc:?}, output {}",
        show(&out)
    );
    for bad in BAD_UTF8 {
        for path in [
            &["userAgent"][..],
            &["requestParameters", "policy"],
            &["tlsDetails", "cipherSuite"],
        ] {
            let rec = with_raw(&base, path, bad);
            step(&mut e, &rec);
        }
    }
}

#[test]
fn nul_bytes() {
    let base = assume_role("ASIA36EV31F1RB3OA8IG", "s", T0, "252.5.222.230");
    let mut e = enricher();
    // Raw NUL: invalid JSON wherever it is.
    for path in [&["userAgent"][..], &["userIdentity", "arn"], &["eventName"]] {
        let rec = with_raw(&base, path, b"\"a\x00b\"");
        let (out, oc) = run(&mut e, &rec, None);
        assert_eq!(out, rec);
        assert!(matches!(oc, Outcome::Malformed(_)));
    }
    let mut rec = bytes(&base);
    rec.push(0);
    assert_eq!(run(&mut e, &rec, None).0, rec);
    // Escaped NUL (`\u0000`) is valid: the annotation must escape it again.
    for path in [
        &["userIdentity", "accessKeyId"][..],
        &["userIdentity", "arn"],
        &["responseElements", "credentials", "accessKeyId"],
        &["requestParameters", "roleSessionName"],
    ] {
        let rec = with_raw(&base, path, br#""ASIA\u0000NUL\u0000""#);
        let (out, oc) = run(&mut e, &rec, None);
        let ann = check_record(&rec, &out, &oc, false, false);
        assert!(ann.is_some(), "{path:?}");
        assert!(!out.contains(&0), "raw NUL in output");
    }
    let mut e2 = enricher();
    let rec = with_raw(
        &base,
        &["responseElements", "credentials", "accessKeyId"],
        br#""ASIA\u0000X""#,
    );
    let ann = step(&mut e2, &rec).unwrap();
    assert_eq!(ann["issued"]["access_key_id"], "ASIA\u{0}X");
}

const LONE_SURROGATES: [&str; 5] = [
    r#""\ud800""#,
    r#""\udfff""#,
    r#""\ud800\u0041""#,
    r#""\udc00\ud800""#,
    r#""x\uDBFFy""#,
];

/// Lone surrogate escapes are grammatical JSON (RFC 8259 8.2 leaves their
/// meaning open). Wherever they are, the record comes out once, unchanged or
/// correctly annotated.
#[test]
fn lone_surrogates_anywhere() {
    let base = assume_role("ASIA36EV31F1RB3OA8IG", "s", T0, "252.5.222.230");
    let mut e = enricher();
    for s in LONE_SURROGATES {
        for path in [
            &["userAgent"][..],
            &["requestParameters", "policy"],
            &["userIdentity", "arn"],
            &["userIdentity", "accessKeyId"],
            &["requestParameters", "roleSessionName"],
            &["responseElements", "credentials", "accessKeyId"],
            &["responseElements", "credentials", "sessionToken"],
            &["eventTime"],
        ] {
            let rec = with_raw(&base, path, s.as_bytes());
            step_lenient(&mut e, &rec);
        }
        // As a key.
        let rec = format!(
            r#"{{{s}:1,{}"#,
            &String::from_utf8(bytes(&base)).unwrap()[1..]
        );
        step_lenient(&mut e, rec.as_bytes());
    }
}

// BUG (src/core/record.rs, `S` / lenient_struct deserializers): the lenient view
// is not lenient for values serde_json refuses to decode. A lone surrogate
// escape (`"\ud800"`) or an out-of-range number (`1e400`) — both valid JSON
// grammar — in ANY field credlineage reads makes `parse_outer` fail, so the
// whole record is counted malformed and passed through without annotation
// (and, for an issuance, the credential is never tracked). The same value in
// a field credlineage does not read is accepted and annotated, and a value of
// the wrong JSON type in a read field reads as absent (record.rs docs).
// Minimal input:
//   {"eventName":"CreateAccessKey","eventSource":"iam.amazonaws.com",
//    "requestParameters":{"userName":"\ud800"},
//    "userIdentity":{"type":"IAMUser","accessKeyId":"AKIAIOSFODNN7EXAMPLE"}}
// expected: Annotated (userName read as absent or decoded lossily);
// actual:   Malformed(InvalidJson "unexpected end of hex escape"), unchanged.
#[test]

fn bug_undecodable_value_in_read_field_drops_annotation() {
    let minimal = br#"{"eventName":"CreateAccessKey","eventSource":"iam.amazonaws.com","requestParameters":{"userName":"\ud800"},"userIdentity":{"type":"IAMUser","accessKeyId":"AKIAIOSFODNN7EXAMPLE"}}"#;
    let mut e = enricher();
    let (_, oc) = run(&mut e, minimal, None);
    assert!(matches!(oc, Outcome::Annotated), "minimal case: {oc:?}");

    let base = assume_role("ASIA36EV31F1RB3OA8IG", "s", T0, "252.5.222.230");
    for raw in [r#""\ud800""#, "1e400", "-1e400"] {
        for path in [
            &["requestParameters", "roleSessionName"][..],
            &["responseElements", "credentials", "expiration"],
            &["userIdentity", "userName"],
        ] {
            let rec = with_raw(&base, path, raw.as_bytes());
            let mut e = enricher();
            let (_, oc) = run(&mut e, &rec, None);
            assert!(
                matches!(oc, Outcome::Annotated),
                "{raw} at {path:?}: {oc:?}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// 7. Every field credlineage reads: escapes, odd strings, wrong types, null
// ---------------------------------------------------------------------------

/// Where credlineage reads (src/core/record.rs): dotted key paths of an event,
/// array indices left out. An EventBridge `detail` holds the same paths.
const READ_PATHS: [&str; 63] = [
    "eventName",
    "eventSource",
    "eventTime",
    "@timestamp",
    "errorCode",
    "sourceIPAddress",
    "vpcEndpointId",
    "vpcEndpointAccountId",
    "recipientAccountId",
    "detail",
    "detail-type",
    "message",
    "log",
    "userIdentity",
    "userIdentity.type",
    "userIdentity.principalId",
    "userIdentity.arn",
    "userIdentity.accountId",
    "userIdentity.accessKeyId",
    "userIdentity.userName",
    "userIdentity.invokedBy",
    "userIdentity.identityProvider",
    "userIdentity.sessionContext",
    "userIdentity.sessionContext.attributes",
    "userIdentity.sessionContext.attributes.creationDate",
    "userIdentity.sessionContext.ec2RoleDelivery",
    "userIdentity.sessionContext.sessionIssuer",
    "userIdentity.sessionContext.sessionIssuer.arn",
    "userIdentity.sessionContext.sessionIssuer.type",
    "userIdentity.sessionContext.sessionIssuer.userName",
    "requestParameters",
    "requestParameters.roleArn",
    "requestParameters.roleSessionName",
    "requestParameters.name",
    "requestParameters.principalArn",
    "requestParameters.instanceId",
    "requestParameters.publicIp",
    "responseElements",
    "responseElements.credentials",
    "responseElements.credentials.accessKeyId",
    "responseElements.credentials.expiration",
    "responseElements.credentials.sessionToken",
    "responseElements.assumedRoleUser",
    "responseElements.assumedRoleUser.arn",
    "responseElements.federatedUser",
    "responseElements.federatedUser.arn",
    "responseElements.subject",
    "responseElements.subjectFromWebIdentityToken",
    "responseElements.provider",
    "responseElements.accessKey",
    "responseElements.accessKey.accessKeyId",
    "responseElements.instancesSet",
    "responseElements.instancesSet.items",
    "responseElements.instancesSet.items.instanceId",
    "responseElements.instancesSet.items.networkInterfaceSet.items.association.publicIp",
    "responseElements.instancesSet.items.privateIpAddress",
    "responseElements.instancesSet.items.ipAddress",
    "responseElements.instancesSet.items.networkInterfaceSet",
    "responseElements.instancesSet.items.networkInterfaceSet.items",
    "responseElements.instancesSet.items.networkInterfaceSet.items.privateIpAddress",
    "responseElements.instancesSet.items.networkInterfaceSet.items.association",
    "requestParameters.userName",
    "responseElements.accessKey.userName",
];

/// Whether credlineage reads the member at `path`.
fn is_read(path: &[Seg]) -> bool {
    let mut keys: Vec<&str> = path
        .iter()
        .filter_map(|s| match s {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Idx(_) => None,
        })
        .collect();
    if keys.len() > 1 && keys[0] == "detail" {
        keys.remove(0);
    }
    let dotted = keys.join(".");
    READ_PATHS.contains(&dotted.as_str())
}

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Idx(usize),
}

/// Every path (to a member or array element) in `v`.
fn paths(v: &Value, prefix: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                prefix.push(Seg::Key(k.clone()));
                out.push(prefix.clone());
                paths(x, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                prefix.push(Seg::Idx(i));
                out.push(prefix.clone());
                paths(x, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn get<'v>(v: &'v Value, path: &[Seg]) -> &'v Value {
    let mut cur = v;
    for s in path {
        cur = match s {
            Seg::Key(k) => &cur[k.as_str()],
            Seg::Idx(i) => &cur[*i],
        };
    }
    cur
}

fn get_mut<'v>(v: &'v mut Value, path: &[Seg]) -> &'v mut Value {
    let mut cur = v;
    for s in path {
        cur = match s {
            Seg::Key(k) => &mut cur[k.as_str()],
            Seg::Idx(i) => &mut cur[*i],
        };
    }
    cur
}

fn last_key(path: &[Seg]) -> Option<&str> {
    match path.last() {
        Some(Seg::Key(k)) => Some(k),
        _ => None,
    }
}

/// Serialize `v` with the value at `path` replaced by the raw bytes `raw`.
fn replace_value(v: &Value, path: &[Seg], raw: &[u8]) -> Vec<u8> {
    const PH: &str = "\u{1}@@PH@@\u{1}";
    let mut v = v.clone();
    *get_mut(&mut v, path) = json!(PH);
    let b = bytes(&v);
    let needle = serde_json::to_vec(PH).unwrap();
    let pos = b.windows(needle.len()).position(|w| w == needle).unwrap();
    let mut out = b[..pos].to_vec();
    out.extend_from_slice(raw);
    out.extend_from_slice(&b[pos + needle.len()..]);
    out
}

/// Serialize `v` with the key of the member at `path` written as `raw_key`.
fn replace_key(v: &Value, path: &[Seg], raw_key: &[u8]) -> Vec<u8> {
    const PH: &str = "\u{1}@@PK@@\u{1}";
    let mut v = v.clone();
    let (parent, k) = (&path[..path.len() - 1], last_key(path).unwrap());
    let obj = get_mut(&mut v, parent).as_object_mut().unwrap();
    // Keep the member order: rebuild the map with the renamed key.
    let old = std::mem::take(obj);
    for (kk, x) in old {
        if kk == k {
            obj.insert(PH.to_string(), x);
        } else {
            obj.insert(kk, x);
        }
    }
    let b = bytes(&v);
    let needle = serde_json::to_vec(PH).unwrap();
    let pos = b.windows(needle.len()).position(|w| w == needle).unwrap();
    let mut out = b[..pos].to_vec();
    out.extend_from_slice(raw_key);
    out.extend_from_slice(&b[pos + needle.len()..]);
    out
}

/// `s` as a JSON string with every character `\u`-escaped.
fn escape_all(s: &str) -> Vec<u8> {
    let mut out = b"\"".to_vec();
    for c in s.chars() {
        let mut buf = [0u16; 2];
        for u in c.encode_utf16(&mut buf) {
            out.extend_from_slice(format!("\\u{u:04X}").as_bytes());
        }
    }
    out.push(b'"');
    out
}

fn remove_at(v: &Value, path: &[Seg]) -> Value {
    let mut v = v.clone();
    let k = last_key(path).unwrap();
    get_mut(&mut v, &path[..path.len() - 1])
        .as_object_mut()
        .unwrap()
        .remove(k);
    v
}

/// Read keys whose value credlineage reads as an object (or, for `items`, an array).
const OBJECT_KEYS: [&str; 15] = [
    "userIdentity",
    "requestParameters",
    "responseElements",
    "detail",
    "sessionContext",
    "attributes",
    "sessionIssuer",
    "credentials",
    "assumedRoleUser",
    "federatedUser",
    "accessKey",
    "instancesSet",
    "networkInterfaceSet",
    "association",
    "items",
];

/// The (record index, path) pairs of the scenario whose key credlineage reads.
fn read_paths(sc: &[Value]) -> Vec<(usize, Vec<Seg>)> {
    let mut out = Vec::new();
    for (r, rec) in sc.iter().enumerate() {
        let mut ps = Vec::new();
        paths(rec, &mut Vec::new(), &mut ps);
        for p in ps {
            if last_key(&p).is_some() && is_read(&p) {
                out.push((r, p));
            }
        }
    }
    out
}

/// The scenario's bytes with record `r` replaced by `rec`.
fn stream_with(sc: &[Vec<u8>], r: usize, rec: Vec<u8>) -> Vec<Vec<u8>> {
    let mut s = sc.to_vec();
    s[r] = rec;
    s
}

#[test]
fn scenario_baseline_is_rich() {
    // Guard: the scenario really exercises the rules the field tests rely on.
    let sc = scenario();
    let res = run_stream(&sc.iter().map(bytes).collect::<Vec<_>>());
    let anns: Vec<&Value> = res.iter().filter_map(|(_, a)| a.as_ref()).collect();
    assert_eq!(anns.len(), sc.len(), "every scenario record is CloudTrail");
    let any = |f: &dyn Fn(&Value) -> bool| anns.iter().any(|a| f(a));
    assert!(any(&|a| a
        .get("issued")
        .is_some_and(|i| i["chained"] == true)));
    assert!(any(&|a| a.get("created_by").is_some()));
    assert!(any(&|a| a["ec2_cred_offhost"] == true));
    assert!(any(&|a| a.get("parent_fingerprint").is_some()));
    assert!(any(&|a| a["lineage_root_type"] == "saml"));
    assert!(any(&|a| a["lineage_root_type"] == "web_identity"));
    assert!(any(&|a| a["lineage_root_type"] == "root_user"));
    assert!(any(&|a| a["lineage_root_type"] == "ec2_instance"));
    assert!(any(&|a| a["lineage_depth"] == 2));
    assert!(read_paths(&sc).len() > 150);
}

/// Escaping a string or a key differently never changes what credlineage
/// reads: every `\u`-escaped variant gives the same annotations.
#[test]
fn escaped_strings_and_keys_in_every_read_field_mean_the_same() {
    let sc = scenario();
    let sc_bytes: Vec<Vec<u8>> = sc.iter().map(bytes).collect();
    let baseline = run_stream(&sc.iter().map(bytes).collect::<Vec<_>>());
    let mut runs = 0;
    for (r, path) in read_paths(&sc) {
        let mut variants = vec![replace_key(
            &sc[r],
            &path,
            &escape_all(last_key(&path).unwrap()),
        )];
        if let Some(s) = get(&sc[r], &path).as_str() {
            variants.push(replace_value(&sc[r], &path, &escape_all(s)));
            // `\/` for `/`, and raw non-escapes around.
            let slashes = serde_json::to_string(s).unwrap().replace('/', "\\/");
            variants.push(replace_value(&sc[r], &path, slashes.as_bytes()));
        }
        for rec in variants {
            runs += 1;
            let res = run_tail(&stream_with(&sc_bytes, r, rec.clone()), r);
            assert!(
                res[..] == baseline[r..],
                "record {r} path {path:?}: escaping changed the annotations\n{}",
                show(&rec)
            );
        }
    }
    assert!(runs > 300);
}

/// Numbers, objects, arrays, booleans, `null` and `""` where a string
/// belongs; `null`, strings, numbers and arrays where an object belongs — in
/// every field credlineage reads. Each reads as absent (src/core/record.rs): the
/// whole stream's annotations equal those with the member removed.
#[test]
fn wrong_types_and_null_in_every_read_field_read_as_absent() {
    let sc = scenario();
    let sc_bytes: Vec<Vec<u8>> = sc.iter().map(bytes).collect();
    let wrong: [&str; 13] = [
        "null",
        "0",
        "-1.5e300",
        "18446744073709551616",
        "true",
        "false",
        "{}",
        r#"{"accessKeyId":"ASIA36EV31F1RB3OA8IG","arn":"x"}"#,
        "[]",
        r#"["AKIA6V1GNZTT65XQH36M"]"#,
        r#"[{"accessKeyId":"ASIAX","instanceId":"i-0123456789abcdef0"}]"#,
        r#""""#,
        r#""not an object""#,
    ];
    let mut runs = 0;
    for (r, path) in read_paths(&sc) {
        let key = last_key(&path).unwrap();
        let is_object_field = OBJECT_KEYS.contains(&key);
        let absent = run_tail(
            &sc.iter()
                .enumerate()
                .map(|(i, v)| {
                    if i == r {
                        bytes(&remove_at(v, &path))
                    } else {
                        bytes(v)
                    }
                })
                .collect::<Vec<_>>(),
            r,
        );
        for w in wrong {
            let wv: Value = serde_json::from_str(w).unwrap();
            // What reads as absent (src/core/record.rs): `null` and `""` anywhere;
            // any non-string where a string belongs (but `ec2RoleDelivery`
            // is "present" for any non-null, non-empty value); any
            // non-object where an object belongs, and `{}` / `[]` there.
            let equivalent = match &wv {
                Value::Null => true,
                Value::String(s) if s.is_empty() => true,
                Value::String(_) => is_object_field,
                Value::Object(m) if is_object_field => m.is_empty(),
                Value::Array(a) if is_object_field => a.is_empty(),
                _ if is_object_field => true,
                _ => key != "ec2RoleDelivery",
            };
            let rec = replace_value(&sc[r], &path, w.as_bytes());
            runs += 1;
            let res = run_tail(&stream_with(&sc_bytes, r, rec.clone()), r);
            if equivalent {
                assert!(
                    res == absent,
                    "record {r}: {w} at {path:?} does not read as absent\n{}\n got: {:?}\nwant: {:?}",
                    show(&rec),
                    res.first(),
                    absent.first()
                );
            }
        }
    }
    assert!(runs > 1000);
}

/// Odd but valid strings in every field credlineage reads: non-ASCII,
/// control characters, JSON-looking text, extreme times, huge values. One
/// valid record out per record in, and the rest of the stream survives.
#[test]
fn odd_strings_in_every_read_field() {
    let sc = scenario();
    let sc_bytes: Vec<Vec<u8>> = sc.iter().map(bytes).collect();
    let long_key = format!("ASIA{}", "Q".repeat(4_096));
    let odd: Vec<Value> = vec![
        json!("ÄSIA日本語🦀\u{202e}\u{2028}\u{feff}"),
        json!("\u{0}\u{1}\u{1f}\u{7f}"),
        json!("\"\\/\u{8}\u{c}\n\r\t"),
        json!("\"},\"credlineage\":{\"v\":2}}"),
        json!(" "),
        json!("ASIA"),
        json!(long_key),
        json!("i-0123456789abcdef0"),
        json!("1.2.3.4.5"),
        json!("+262143-12-31T23:59:59Z"),
        json!("-262144-01-01T00:00:00Z"),
        json!("Feb 30, 2024, 13:61:61 PM"),
        json!("arn:aws:sts::1:assumed-role/AWSReservedSSO_x/"),
        json!(":::::::"),
    ];
    let mut runs = 0;
    for (r, path) in read_paths(&sc) {
        for o in &odd {
            let mut v = sc[r].clone();
            *get_mut(&mut v, &path) = o.clone();
            runs += 1;
            let stream = stream_with(&sc_bytes, r, bytes(&v));
            // Full checks on the odd record (well-formed output, escapes in
            // the annotation); the records after it are still annotated.
            let res = run_tail(&stream, r);
            assert_eq!(res.len(), sc.len() - r);
            for (i, (k, _)) in res.iter().enumerate().skip(1) {
                assert_eq!(
                    *k,
                    "annotated",
                    "record {} after odd {o} at {r}/{path:?}",
                    r + i
                );
            }
        }
    }
    assert!(runs > 1000);
}

/// Invalid bytes in every read field: that record passes through unchanged,
/// counted malformed, and changes nothing else — the rest of the stream is
/// annotated exactly as if it had never arrived.
#[test]
fn invalid_value_in_every_read_field_leaves_the_stream_intact() {
    let sc = scenario();
    let sc_bytes: Vec<Vec<u8>> = sc.iter().map(bytes).collect();
    // (Invalid UTF-8 is left out: where credlineage reads it is detected, but
    // see bug_invalid_utf8_in_unread_string_is_annotated.)
    let raws: [&[u8]; 4] = [b"\"a\x00b\"", b"\"\\x\"", b"01", b"[1,}"];
    // For each record: the stream's annotations as if it had never arrived.
    let expect_by_r: Vec<Vec<(&str, Option<Value>)>> = (0..sc.len())
        .map(|r| {
            let without: Vec<Vec<u8>> = sc
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != r)
                .map(|(_, v)| bytes(v))
                .collect();
            let mut expect = vec![("malformed", None)];
            expect.extend(run_stream(&without).split_off(r));
            expect
        })
        .collect();
    for (r, path) in read_paths(&sc) {
        let expect = &expect_by_r[r];
        for raw in raws {
            let rec = replace_value(&sc[r], &path, raw);
            let res = run_tail(&stream_with(&sc_bytes, r, rec.clone()), r);
            assert!(res == *expect, "record {r} path {path:?}: {}", show(&rec));
        }
    }
}

// ---------------------------------------------------------------------------
// 8. Random-bytes fuzzing of real records
// ---------------------------------------------------------------------------

fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    const STRUCT: &[u8] = b"{}[]\",:\\ \n0-.eE+tfnu\x00\xff\xc3\xa9";
    let mut v = seed.to_vec();
    let n = if rng.chance(1, 2) {
        1
    } else {
        1 + rng.below(4)
    };
    for _ in 0..n {
        let len = v.len().max(1);
        match rng.below(9) {
            0 => {
                // bit flip
                if !v.is_empty() {
                    let i = rng.below(v.len());
                    v[i] ^= 1 << rng.below(8);
                }
            }
            1 => {
                if !v.is_empty() {
                    v.remove(rng.below(v.len()));
                }
            }
            2 => {
                let b = (rng.next() & 0xff) as u8;
                v.insert(rng.below(len), b);
            }
            3 => {
                let b = STRUCT[rng.below(STRUCT.len())];
                v.insert(rng.below(len), b);
            }
            4 => {
                // delete a range
                let a = rng.below(len);
                let b = (a + rng.below(64)).min(v.len());
                if a < b {
                    v.drain(a..b);
                }
            }
            5 => {
                // duplicate a range
                let a = rng.below(len);
                let b = (a + rng.below(64)).min(v.len());
                if a < b {
                    let piece = v[a..b].to_vec();
                    let at = rng.below(v.len());
                    v.splice(at..at, piece);
                }
            }
            6 => {
                // splice in a piece of another record
                let a = rng.below(other.len().max(1));
                let b = (a + rng.below(200)).min(other.len());
                let at = rng.below(len);
                v.splice(at..at, other[a..b].iter().copied());
            }
            7 => v.truncate(rng.below(len)),
            _ => {
                // replace a byte with a structural one
                if !v.is_empty() {
                    let i = rng.below(v.len());
                    v[i] = STRUCT[rng.below(STRUCT.len())];
                }
            }
        }
    }
    v
}

#[test]
fn fuzz_mutations_of_real_records() {
    let mut seeds: Vec<Vec<u8>> = Vec::new();
    for (_, recs) in stratus_all() {
        for r in recs {
            seeds.push(compact(&r));
            seeds.push(r);
        }
    }
    seeds.extend(scenario().iter().map(bytes));
    let mut rng = Rng(0x5eed_f00d_cafe_d00d);
    let mut e = enricher();
    let (mut annotated, mut malformed, mut passed, mut utf8_tolerated) = (0, 0, 0, 0);
    const N: usize = 20_000;
    for i in 0..N {
        let seed = &seeds[rng.below(seeds.len())];
        let other = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, seed, other);
        let before = e.stats().records;
        let (out, oc) = run(&mut e, &input, None);
        assert_eq!(e.stats().records, before + 1);
        if !matches!(oc, Outcome::Malformed(_)) && rfc_json(&input, true).is_none() {
            utf8_tolerated += 1;
        }
        check_record(&input, &out, &oc, true, true);
        match oc {
            Outcome::Annotated => annotated += 1,
            Outcome::Malformed(_) => malformed += 1,
            Outcome::PassedThrough(_) => passed += 1,
        }
        // to_single_line never panics and keeps the meaning.
        let line = catch_unwind(|| to_single_line(&input).into_owned())
            .unwrap_or_else(|_| panic!("to_single_line panicked on {}", show(&input)));
        if let Ok(v) = serde_json::from_slice::<Value>(&input) {
            assert_eq!(serde_json::from_slice::<Value>(&line).ok(), Some(v));
        }
        // The state stays restorable.
        if i % 2_000 == 1_999 {
            let snap = e.snapshot();
            e.restore(&snap).expect("own snapshot refused");
            assert!(e.snapshot() == snap);
            assert!(e.stats().state_bytes <= Config::default().max_bytes as u64);
        }
    }
    eprintln!(
        "fuzz: {N} inputs, {annotated} annotated, {passed} passed through, {malformed} malformed, \
         {utf8_tolerated} not counted malformed despite invalid UTF-8 \
         (bug_invalid_utf8_in_unread_string_is_annotated)"
    );
    assert_eq!(e.stats().records, N as u64);
    assert!(
        annotated > 1_000 && malformed > 1_000,
        "mutations too mild or too wild"
    );
}

// ---------------------------------------------------------------------------
// 9. Flood: bounded memory
// ---------------------------------------------------------------------------

const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A distinct, well-formed temporary key ID for each `i`.
fn asia(i: u64) -> String {
    let mut s = String::from("ASIA");
    let i = u128::from(i);
    for k in (0..16).rev() {
        s.push(B32[((i >> (5 * k)) & 31) as usize] as char);
    }
    s
}

/// Unix seconds to `YYYY-MM-DDTHH:MM:SSZ` and to the console spelling
/// (`Aug 2, 2024, 8:45:00 AM`) CloudTrail uses for `expiration`.
fn times(t: i64) -> (String, String) {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Civil from days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, mi, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (h12, ampm) = match h {
        0 => (12, "AM"),
        1..=11 => (h, "AM"),
        12 => (12, "PM"),
        _ => (h - 12, "PM"),
    };
    (
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
        format!(
            "{} {d}, {y}, {h12}:{mi:02}:{s:02} {ampm}",
            MON[(m - 1) as usize]
        ),
    )
}

/// An AssumeRole issuance in the real shape (as `assume_role`), built with
/// `format!` for speed.
fn flood_record(i: u64, t: i64) -> String {
    let (time, _) = times(t);
    let (_, exp) = times(t + 900);
    let key = asia(i);
    let ip = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    format!(
        r#"{{"awsRegion":"us-east-1","eventCategory":"Management","eventID":"099bfd30-232c-4dff-9998-{i:012}","eventName":"AssumeRole","eventSource":"sts.amazonaws.com","eventTime":"{time}","eventType":"AwsApiCall","eventVersion":"1.08","managementEvent":true,"readOnly":true,"recipientAccountId":"307578594326","requestID":"4ddeba69-b9da-48b8-833a-c4d75f10111e","requestParameters":{{"durationSeconds":900,"roleArn":"arn:aws:iam::307578594326:role/stratus-red-team-leave-org-role","roleSessionName":"aws-go-sdk-{i}"}},"resources":[{{"ARN":"arn:aws:iam::307578594326:role/stratus-red-team-leave-org-role","accountId":"307578594326","type":"AWS::IAM::Role"}}],"responseElements":{{"assumedRoleUser":{{"arn":"arn:aws:sts::307578594326:assumed-role/stratus-red-team-leave-org-role/aws-go-sdk-{i}","assumedRoleId":"AROAHKPEEQ9BHUOX4D93T:aws-go-sdk-{i}"}},"credentials":{{"accessKeyId":"{key}","expiration":"{exp}","sessionToken":"IQoJb3JpZ2luX2VjEKH//////////wEaCXVzLWVhc3QtMSJIMEYCIQDpLWjFwlZiDhOSv0Wy5mFb{i}"}}}},"sourceIPAddress":"{ip}","tlsDetails":{{"cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"sts.us-east-1.amazonaws.com","tlsVersion":"TLSv1.3"}},"userAgent":"stratus-red-team_fd969928-3c0d-4feb-bd56-34f9aee3e6eb","userIdentity":{{"accessKeyId":"AKIADVISM0T50G52IF0D","accountId":"307578594326","arn":"arn:aws:iam::307578594326:user/christophe","principalId":"AIDA7YYMW5FLWE3HGTNZ","type":"IAMUser","userName":"christophe"}}}}"#
    )
}

/// A call made with the key `flood_record(i, issued_at)` issued.
fn flood_call(i: u64, issued_at: i64, t: i64) -> Vec<u8> {
    let (created, _) = times(issued_at);
    let (time, _) = times(t);
    bytes(&role_call(
        &asia(i),
        &format!("aws-go-sdk-{i}"),
        &created,
        &time,
    ))
}

/// `n` issuances of distinct temporary keys against a cap of `max_entries`
/// sets (and `max_bytes`): the caps hold at every point, real heap stays
/// flat once the caps are reached, every eviction is counted, and the newest
/// credentials still resolve correctly.
fn flood(n: u64, max_entries: usize, max_bytes: usize) {
    #[allow(non_snake_case)]
    let (MAX_ENTRIES, MAX_BYTES) = (max_entries, max_bytes);
    let t0 = 1_722_587_400i64; // 2024-08-02T08:30:00Z
    let at = |i: u64| t0 + (i / 50) as i64;
    let cfg = Config {
        max_entries: MAX_ENTRIES,
        max_bytes: MAX_BYTES,
        ..Config::default()
    };
    let heap0 = live_bytes();
    let mut e = Enricher::new(cfg).unwrap();
    let watch = [n - 1, n - 2, n - 500, n - 1000];
    let mut issued: Vec<(u64, Value)> = Vec::new();
    let mut akia_fp: Option<Value> = None;
    let started = Instant::now();
    let mut out = Vec::with_capacity(4096);
    // Heap once the caps have long been reached, to check it stays flat.
    let mut heap_plateau: Option<isize> = None;
    let mut heap_max_after = 0isize;
    for i in 0..n {
        if i == n / 10 {
            heap_plateau = Some(live_bytes() - heap0);
        } else if i > n / 10 && i % 50_000 == 0 {
            heap_max_after = heap_max_after.max(live_bytes() - heap0);
        }
        let rec = flood_record(i, at(i));
        out.clear();
        let oc = e.process_into(rec.as_bytes(), None, &mut out);
        assert!(matches!(oc, Outcome::Annotated), "record {i}: {oc:?}");
        // Cheap per-record check: the input up to its final `}`, then ours.
        let close = rec.len() - 1;
        assert!(out.len() > rec.len() && out[..close] == rec.as_bytes()[..close]);
        assert!(out.ends_with(b"}}}"));
        if i % 997 == 0 || watch.contains(&i) {
            let ann = check_splice(rec.as_bytes(), &out);
            assert_eq!(ann["issued"]["access_key_id"], asia(i).as_str());
            assert_eq!(ann["issued"]["lineage_root"], "AKIADVISM0T50G52IF0D");
            assert_eq!(ann["is_key_collision"], false);
            match &akia_fp {
                None => akia_fp = Some(ann["session_fingerprint"].clone()),
                Some(fp) => assert_eq!(&ann["session_fingerprint"], fp),
            }
            if watch.contains(&i) {
                issued.push((i, ann["issued"].clone()));
            }
        }
        if i % 1000 == 0 {
            let s = e.stats();
            assert!(s.tracked_sets <= MAX_ENTRIES as u64, "{s:?}");
            assert!(s.state_bytes <= MAX_BYTES as u64, "{s:?}");
        }
    }
    let elapsed = started.elapsed();
    let s = e.stats();
    let heap = live_bytes() - heap0;
    eprintln!("flood {n}: {elapsed:?}, {s:?}, enricher heap {heap} bytes");
    assert_eq!(s.records, n);
    assert_eq!(s.annotated, n);
    assert_eq!(s.issuances, n);
    assert!(s.tracked_sets <= MAX_ENTRIES as u64);
    assert!(s.state_bytes <= MAX_BYTES as u64);
    assert!(s.evictions >= n - MAX_ENTRIES as u64, "{s:?}");
    // Real memory: the estimate may be off, but not by an order of magnitude.
    assert!(
        heap < 4 * MAX_BYTES as isize,
        "enricher holds {heap} bytes of heap with max_bytes = {MAX_BYTES}"
    );
    // Flat: from 10% of the stream on, the heap does not grow (10% slack
    // for hash-table and allocator rounding).
    let plateau = heap_plateau.expect("sampled");
    eprintln!("heap at 10%: {plateau} bytes, largest later: {heap_max_after} bytes");
    assert!(
        heap_max_after <= plateau + plateau / 10,
        "heap grew from {plateau} to {heap_max_after} bytes after the caps were reached"
    );

    // Recently issued credentials are still tracked: their calls get the
    // right root, depth, parent and fingerprint.
    let akia_fp = akia_fp.unwrap();
    let t_end = at(n) + 10;
    for (i, iss) in &issued {
        let call = flood_call(*i, at(*i), t_end);
        let ann = step(&mut e, &call).expect("annotated");
        assert_eq!(ann["lineage_root"], "AKIADVISM0T50G52IF0D", "key {i}");
        assert_eq!(ann["lineage_root_type"], "access_key");
        assert_eq!(ann["lineage_depth"], 1);
        assert_eq!(ann["lineage_complete"], true);
        assert_eq!(ann["parent_fingerprint"], akia_fp, "key {i}");
        assert_eq!(
            ann["session_fingerprint"], iss["session_fingerprint"],
            "key {i}"
        );
        assert_eq!(ann["is_key_collision"], false);
    }
    // The first credential was evicted long ago: its lineage is unresolved
    // (SPEC 3.2), not wrong.
    let ann = step(&mut e, &flood_call(0, at(0), t_end)).unwrap();
    assert_eq!(ann["lineage_complete"], false);
    assert_eq!(ann["lineage_root"], format!("unresolved:{}", asia(0)));
}

#[test]
fn flood_of_new_temporary_keys_stays_bounded() {
    if cfg!(debug_assertions) {
        // 200k records against 10k sets in debug builds (~35 s).
        flood(200_000, 10_000, 1 << 20);
    } else {
        // Issue 4: 10M records, each issuing a new key, against 100k sets
        // (~30 s in a release build).
        flood(10_000_000, 100_000, 32 << 20);
    }
}

#[test]
#[ignore = "long: the 1 000 000-record flood in a debug build (~4 min); run with --ignored"]
fn flood_one_million_debug() {
    flood(1_000_000, 10_000, 1 << 20);
}

// BUG (src/core/state.rs, `cost_set`): the byte estimate of a credential set
// counts its key string but not its `root.id` string, which holds
// `user:<ARN>`, `service:<invokedBy>/<session>`, `saml:<provider>/<user>` or
// `web_identity:…` copied from the record — unbounded, attacker-chosen
// text. `max_bytes` therefore does not bound memory: 300 calls with distinct
// temporary keys by `IAMUser` identities whose ARN is 64 KiB each leave
// ~19 MiB of root strings in an enricher configured with max_bytes = 1 MiB,
// while stats().state_bytes reports ~68 KB and nothing is evicted
// (measured: 19.8 MB of heap; the snapshot is 19.8 MB too).
// Expected: the enricher's heap stays within a small multiple of max_bytes.
#[test]

fn bug_state_bytes_ignore_root_strings() {
    const MAX_BYTES: usize = 1 << 20;
    let cfg = Config {
        max_bytes: MAX_BYTES,
        ..Config::default()
    };
    let heap0 = live_bytes();
    let mut e = Enricher::new(cfg).unwrap();
    let pad = "x".repeat(64 * 1024);
    for i in 0..300u64 {
        let rec = json!({
            "eventName": "ListBuckets", "eventSource": "s3.amazonaws.com", "eventTime": T0,
            "userIdentity": {"type": "IAMUser", "accessKeyId": asia(i),
                "arn": format!("arn:aws:iam::307578594326:user/{pad}{i}")}
        });
        step(&mut e, &bytes(&rec)).unwrap();
    }
    let heap = live_bytes() - heap0;
    let s = e.stats();
    let snap = e.snapshot().len();
    eprintln!("state_bytes {} heap {heap} snapshot {snap}", s.state_bytes);
    assert!(s.state_bytes <= MAX_BYTES as u64);
    assert!(
        heap < 4 * MAX_BYTES as isize,
        "enricher holds {heap} bytes of heap with max_bytes = {MAX_BYTES} (state_bytes says {})",
        s.state_bytes
    );
}

// BUG (src/core/engine/collisions.rs, `live_count` — and `find_temp`, `State::unindex`):
// the sets that share one access key ID are scanned linearly on every record
// that uses or issues that key, and `live_count` de-duplicates them with
// `Vec::contains`, i.e. O(n²) per record for n sets under one key ID. n is
// bounded only by max_entries (default 1 000 000), and key IDs in a log line
// are attacker controlled: a few thousand issuance records of one key ID with
// distinct session names make every further record of that key cost
// millions of comparisons (debug build: the first 500 such records take
// 0.4 s, the 500 after 2 500 sets take 18.5 s). Expected: a per-record cost
// independent of n (or n bounded by a small per-key cap).
#[test]

fn bug_sets_sharing_one_key_are_quadratic() {
    let mut e = enricher();
    let t0 = 1_722_587_400i64;
    let mut batch = |from: u64, to: u64| {
        let start = Instant::now();
        for i in from..to {
            let (time, _) = times(t0 + i as i64 * 3);
            let mut v = assume_role(
                "ASIASAMEKEYSAMEKEY00",
                &format!("s{i}"),
                &time,
                "252.5.222.230",
            );
            v["responseElements"]["credentials"]["expiration"] = json!("2024-08-05T00:00:00Z");
            e.process(&bytes(&v), None);
        }
        start.elapsed()
    };
    let first = batch(0, 500);
    batch(500, 2_500);
    let last = batch(2_500, 3_000);
    eprintln!("first 500: {first:?}, 500 after 2500 sets: {last:?}");
    assert!(
        last < first * 5,
        "per-record cost grows with the number of sets sharing a key: {first:?} -> {last:?}"
    );
}

// ---------------------------------------------------------------------------
// 10. Snapshots
// ---------------------------------------------------------------------------

const MAGIC: &[u8] = b"CREDLINEAGE-STATE\n";

fn small_state() -> (Enricher, Vec<u8>) {
    let mut e = enricher();
    for r in stratus_file("aws.persistence.sts-federation-token.json") {
        step(&mut e, &r);
    }
    let snap = e.snapshot();
    assert!(snap.starts_with(MAGIC));
    (e, snap)
}

/// A record whose annotation depends on the state of `small_state`.
fn probe() -> Vec<u8> {
    stratus_file("aws.persistence.sts-federation-token.json")
        .pop()
        .unwrap()
}

fn refused(e: &mut Enricher, bytes: &[u8], expect_any: &[&str]) -> String {
    let before = e.snapshot();
    let stats = e.stats();
    let err = match e.restore(bytes) {
        Ok(()) => panic!("snapshot accepted: {}", show(bytes)),
        Err(err) => err,
    };
    assert!(matches!(err, Error::Snapshot(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with("snapshot refused: "), "{msg}");
    assert!(
        expect_any.iter().any(|x| msg.contains(x)),
        "unclear message {msg:?}, expected one of {expect_any:?}"
    );
    assert!(!msg.contains("IQoJ"));
    assert!(e.snapshot() == before, "state changed by a refused restore");
    assert_eq!(e.stats(), stats);
    msg
}

/// After refused restores, the enricher behaves exactly like one that never tried.
fn assert_unchanged(e: &mut Enricher) {
    let (mut never, _) = small_state();
    let p = probe();
    assert_eq!(e.process(&p, None), never.process(&p, None));
    let call = bytes(&role_call("ASIA36EV31F1RB3OA8IG", "x", T0, T0));
    assert_eq!(e.process(&call, None), never.process(&call, None));
    assert!(e.snapshot() == never.snapshot());
}

#[test]
fn snapshot_truncated_at_every_length_is_refused() {
    let (mut e, snap) = small_state();
    assert!(snap.len() < 4096, "small snapshot is {} bytes", snap.len());
    for len in 0..snap.len() {
        refused(
            &mut e,
            &snap[..len],
            &["bad magic", "truncated", "checksum"],
        );
    }
    assert_unchanged(&mut e);
}

#[test]
fn snapshot_with_any_single_bit_flipped_is_refused() {
    let (mut e, snap) = small_state();
    let mut flipped = snap.clone();
    for i in 0..snap.len() {
        for bit in 0..8 {
            flipped[i] ^= 1 << bit;
            refused(
                &mut e,
                &flipped,
                &["bad magic", "version", "checksum", "corrupt"],
            );
            flipped[i] ^= 1 << bit;
        }
    }
    assert_unchanged(&mut e);
}

#[test]
fn snapshot_wrong_magic_future_version_other_config_are_refused() {
    let (mut e, snap) = small_state();
    let body = &snap[MAGIC.len()..];
    // Wrong magic.
    for bad in [
        b"".to_vec(),
        b"{}".to_vec(),
        b"\x1f\x8b\x08\x00".to_vec(),
        [b"CREDLINEAGE-STATE\r\n", body].concat(),
        [b"credlineage-state\n", body].concat(),
        [b"CREDLINEAGE-STATE", body].concat(),
        body.to_vec(),
        snap[MAGIC.len() + 4 + 32..].to_vec(),
    ] {
        refused(&mut e, &bad, &["bad magic"]);
    }
    // Future (and past) versions: the 4 little-endian bytes after the magic.
    // Version 1 is the format before SPEC v1.1 (refused, not misread).
    for v in [0u32, 1, 3, 255, 256, u32::MAX] {
        let mut s = snap.clone();
        s[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&v.to_le_bytes());
        let msg = refused(&mut e, &s, &["version"]);
        assert!(msg.contains(&format!("version {v}")), "{msg}");
    }
    // Taken under another configuration.
    let others = [
        Config {
            session_ttl_secs: 3600,
            ..Config::default()
        },
        Config {
            role_session_ttl_secs: 3600,
            ..Config::default()
        },
        Config {
            instance_ttl_secs: 3600,
            ..Config::default()
        },
        Config {
            match_tolerance_secs: 5,
            ..Config::default()
        },
        Config {
            ip_used_by_other_identity: false,
            ..Config::default()
        },
        Config {
            ip_retention_secs: 60,
            ..Config::default()
        },
    ];
    for cfg in others {
        let mut other = Enricher::new(cfg).unwrap();
        for r in stratus_file("aws.persistence.sts-federation-token.json") {
            other.process(&r, None);
        }
        refused(&mut e, &other.snapshot(), &["different configuration"]);
        // …and the other way round.
        let before = other.snapshot();
        assert!(other.restore(&snap).is_err());
        assert!(other.snapshot() == before);
    }
    assert_unchanged(&mut e);
}

/// Re-seal a snapshot body with a correct checksum (an attacker who can write
/// the state file can do this too): semantic garbage is still refused or
/// loaded within the caps, never a panic.
fn reseal(body: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&credlineage::state::SNAPSHOT_VERSION.to_le_bytes());
    out.extend_from_slice(&Sha256::digest(body));
    out.extend_from_slice(body);
    out
}

#[test]
fn snapshot_with_valid_checksum_but_bad_body() {
    let (mut e, snap) = small_state();
    let body: Value = serde_json::from_slice(&snap[MAGIC.len() + 36..]).unwrap();
    assert!(
        reseal(&snap[MAGIC.len() + 36..]) == snap,
        "reseal reproduces the format"
    );
    let mut bad_bodies: Vec<Value> = Vec::new();
    let mut b = body.clone();
    b["unknown"] = json!(1);
    bad_bodies.push(b);
    let mut b = body.clone();
    b.as_object_mut().unwrap().remove("sets");
    bad_bodies.push(b);
    let mut b = body.clone();
    b["sets"] = json!("nope");
    bad_bodies.push(b);
    let mut b = body.clone();
    let first = b["sets"][0].clone();
    b["sets"].as_array_mut().unwrap().push(first);
    bad_bodies.push(b);
    let mut b = body.clone();
    b["clock"] = json!(1e300);
    bad_bodies.push(b);
    for b in &bad_bodies {
        refused(&mut e, &reseal(&bytes(b)), &["corrupt"]);
    }
    refused(&mut e, &reseal(b"not json"), &["corrupt"]);
    refused(&mut e, &reseal(b""), &["corrupt"]);
    assert_unchanged(&mut e);
}

#[test]
fn snapshot_bigger_than_the_caps_is_loaded_within_them() {
    let mut big = enricher();
    for i in 0..2_000u64 {
        big.process(flood_record(i, 1_722_587_400 + i as i64).as_bytes(), None);
    }
    let snap = big.snapshot();
    let cfg = Config {
        max_entries: 100,
        max_bytes: 16 * 1024,
        ..Config::default()
    };
    let mut small = Enricher::new(cfg).unwrap();
    small.restore(&snap).unwrap();
    let s = small.stats();
    assert!(s.tracked_sets <= 100, "{s:?}");
    assert!(s.state_bytes <= 16 * 1024, "{s:?}");
    assert!(s.evictions >= 1_900, "{s:?}");
    // The most recent credential survived the trim (LRU order is kept).
    let last = 1_999u64;
    let call = flood_call(last, 1_722_587_400 + last as i64, 1_722_587_400 + 3_000);
    let ann = step(&mut small, &call).unwrap();
    assert_eq!(ann["lineage_root"], "AKIADVISM0T50G52IF0D");
}

/// Restartable: a stream cut anywhere, snapshot, restore into a fresh
/// enricher, continue — the same bytes as without the restart.
#[test]
fn restart_anywhere_gives_the_same_output() {
    let mut stream: Vec<Vec<u8>> = Vec::new();
    for (_, recs) in stratus_all() {
        stream.extend(recs);
    }
    stream.extend(scenario().iter().map(bytes));
    let mut straight = enricher();
    let expect: Vec<Vec<u8>> = stream.iter().map(|r| straight.process(r, None)).collect();
    for cut in (0..stream.len()).step_by(7) {
        let mut a = enricher();
        for r in &stream[..cut] {
            a.process(r, None);
        }
        let snap = a.snapshot();
        let mut b = enricher();
        b.restore(&snap).unwrap();
        assert!(b.snapshot() == snap, "snapshot not stable across restore");
        for (i, r) in stream.iter().enumerate().skip(cut) {
            let out = b.process(r, None);
            assert!(
                out == expect[i],
                "cut at {cut}: record {i} differs after restart"
            );
        }
    }
}

// BUG (src/core/state/snapshot.rs `State::restore` + src/core/engine/sets.rs `find_temp`, now `find_set`): the order
// of fingerprints in the `by_key` index is hidden state that snapshots do
// not keep. `find_temp` keeps the FIRST of equally good candidates in
// `by_key` order (insertion order), but `restore` rebuilds `by_key` in LRU
// order. Two sets of one key ID and ARN issued at 08:30:00 and 08:30:04, the
// first used again at 08:30:05, then a call with creationDate 08:30:02 (2 s
// from both): without a restart it gets the fingerprint of the 08:30:00 set,
// after snapshot + restore (byte-identical snapshots!) that of the 08:30:04
// set. SPEC 5 "Deterministic"/"Restartable": same input → same output.
#[test]

fn bug_restore_changes_tie_break_between_sets() {
    let key = "ASIAKEYKEYKEYKEY0001";
    let before: Vec<Vec<u8>> = vec![
        bytes(&assume_role(
            key,
            "s",
            "2024-08-02T08:30:00Z",
            "252.5.222.230",
        )),
        bytes(&assume_role(
            key,
            "s",
            "2024-08-02T08:30:04Z",
            "252.5.222.230",
        )),
        bytes(&role_call(
            key,
            "s",
            "2024-08-02T08:30:00Z",
            "2024-08-02T08:30:05Z",
        )),
    ];
    let after = bytes(&role_call(
        key,
        "s",
        "2024-08-02T08:30:02Z",
        "2024-08-02T08:30:06Z",
    ));
    let mut a = enricher();
    for r in &before {
        a.process(r, None);
    }
    let snap = a.snapshot();
    let mut b = enricher();
    b.restore(&snap).unwrap();
    assert!(b.snapshot() == snap);
    let oa = a.process(&after, None);
    let ob = b.process(&after, None);
    let fa = check_splice(&after, &oa)["session_fingerprint"].clone();
    let fb = check_splice(&after, &ob)["session_fingerprint"].clone();
    assert_eq!(fa, fb, "same stream, different fingerprint after a restart");
}

// ---------------------------------------------------------------------------
// 11. Determinism
// ---------------------------------------------------------------------------

fn determinism_stream() -> Vec<Vec<u8>> {
    let mut stream: Vec<Vec<u8>> = Vec::new();
    for (_, recs) in stratus_all() {
        for r in recs {
            stream.push(compact(&r));
            stream.push(r);
        }
    }
    stream.extend(scenario().iter().map(bytes));
    // Collisions, chains and evictions.
    for i in 0..300u64 {
        stream.push(flood_record(i % 40, 1_722_587_400 + i as i64).into_bytes());
        stream.push(flood_call(
            i % 40,
            1_722_587_400 + (i % 40) as i64,
            1_722_587_400 + i as i64 + 1,
        ));
    }
    let mut rng = Rng(42);
    let seeds = stream.clone();
    for _ in 0..500 {
        let a = &seeds[rng.below(seeds.len())];
        let b = &seeds[rng.below(seeds.len())];
        stream.push(mutate(&mut rng, a, b));
    }
    stream
}

fn outputs(e: &mut Enricher, stream: &[Vec<u8>]) -> Vec<Vec<u8>> {
    stream
        .iter()
        .map(|r| e.process(r, Some(1_722_587_400)))
        .collect()
}

#[test]
fn same_input_same_output_bytes() {
    let stream = determinism_stream();
    for cfg in [
        Config::default(),
        Config {
            max_entries: 8,
            max_bytes: 4096,
            ..Config::default()
        },
    ] {
        let a = outputs(&mut Enricher::new(cfg.clone()).unwrap(), &stream);
        let b = outputs(&mut Enricher::new(cfg.clone()).unwrap(), &stream);
        assert!(a == b, "two fresh enrichers differ");
        // process_into appends exactly what process returns.
        let mut e = Enricher::new(cfg.clone()).unwrap();
        let mut all = Vec::new();
        for r in &stream {
            e.process_into(r, Some(1_722_587_400), &mut all);
        }
        assert!(all == a.concat());
    }
}

#[test]
fn hash_seed_never_changes_output_or_snapshots() {
    let stream = determinism_stream();
    for cfg in [
        Config::default(),
        Config {
            max_entries: 8,
            max_bytes: 4096,
            ..Config::default()
        },
    ] {
        let mut reference = Enricher::new(cfg.clone()).unwrap();
        let expect = outputs(&mut reference, &stream);
        let snap = reference.snapshot();
        for seed in [
            0u64,
            1,
            0x5eed,
            0xdead_beef,
            u64::MAX,
            0x8000_0000_0000_0000,
        ] {
            let mut e = Enricher::new(cfg.clone()).unwrap();
            e.set_hash_seed(seed);
            let got = outputs(&mut e, &stream);
            for (i, (g, x)) in got.iter().zip(&expect).enumerate() {
                assert!(g == x, "seed {seed:#x}: record {i} differs");
            }
            assert!(e.snapshot() == snap, "seed {seed:#x}: snapshot differs");
            assert_eq!(e.stats(), reference.stats());
        }
    }
}

// ---------------------------------------------------------------------------
// 12. No secrets out
// ---------------------------------------------------------------------------

fn tokens_in(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "sessionToken" {
                    if let Some(s) = x.as_str() {
                        out.push(s.to_string());
                    }
                }
                tokens_in(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| tokens_in(x, out)),
        _ => {}
    }
}

#[test]
fn session_tokens_never_leave_in_annotations_or_snapshots() {
    let mut stream: Vec<Vec<u8>> = Vec::new();
    for (_, recs) in stratus_all() {
        stream.extend(recs);
    }
    stream.extend(scenario().iter().map(bytes));
    let mut tokens = Vec::new();
    for r in &stream {
        tokens_in(&serde_json::from_slice(r).unwrap(), &mut tokens);
    }
    assert!(tokens.len() >= 10, "found {} tokens", tokens.len());
    assert!(
        tokens
            .iter()
            .any(|t| t.starts_with("IQoJb3JpZ2luX2Vj") && t.len() > 300)
    );
    // Also tokens placed where credlineage might be tempted to look: in the
    // message wrapper and the EventBridge detail.
    let wrapped: Vec<Vec<u8>> = stream
        .iter()
        .filter(|r| r.windows(11).any(|w| w == b"IQoJb3JpZ2l"))
        .flat_map(|r| {
            let v: Value = serde_json::from_slice(r).unwrap();
            [
                bytes(&json!({"message": String::from_utf8(r.clone()).unwrap()})),
                bytes(&json!({"detail-type": "AWS API Call via CloudTrail", "detail": v})),
            ]
        })
        .collect();
    stream.extend(wrapped);

    for redact in [false, true] {
        let cfg = Config {
            redact_session_tokens: redact,
            ..Config::default()
        };
        let mut e = Enricher::new(cfg).unwrap();
        for r in &stream {
            let (out, oc) = run(&mut e, r, None);
            if !redact {
                check_record(r, &out, &oc, false, false);
            }
            if !matches!(oc, Outcome::Annotated) {
                continue;
            }
            // What credlineage added: the last member of the output.
            let doc = rfc_json(&out, true).expect("valid output");
            let ann = &out[doc.members.last().unwrap().value.clone()];
            let text = String::from_utf8_lossy(ann);
            assert!(
                !text.contains("IQoJb3JpZ2luX2Vj"),
                "token prefix in annotation: {text}"
            );
            let whole = String::from_utf8_lossy(&out);
            // Records held as JSON strings (`message`) are checked separately
            // (bug_redaction_misses_string_wrapped_records).
            let string_wrapped = r.starts_with(b"{\"message\"");
            for t in &tokens {
                assert!(!text.contains(t.as_str()));
                if redact && !string_wrapped {
                    assert!(
                        !whole.contains(t.as_str()),
                        "redact_session_tokens left a token in the record"
                    );
                }
            }
        }
        let snap = e.snapshot();
        let snap_text = String::from_utf8_lossy(&snap);
        assert!(!snap_text.contains("IQoJ"), "token in snapshot");
        for t in &tokens {
            for w in t.as_bytes().windows(24).step_by(24) {
                assert!(
                    !snap.windows(24).any(|s| s == w),
                    "a 24-byte piece of a session token is in the snapshot"
                );
            }
        }
    }
}

// BUG (src/core/engine/redact.rs `redact_tokens`): with `redact_session_tokens: true`,
// a record delivered as a JSON string under a configured string field
// (`message`, `log` — SPEC 2, what shippers without a JSON parser deliver)
// keeps its session token: `redact_tokens` only looks for the raw bytes
// `"sessionToken"`, which inside a JSON string are written
// `\"sessionToken\"`. The record is annotated (credlineage read the inner
// record) but the opt-in redaction silently does nothing. Minimal input:
//   {"message":"{\"eventName\":\"AssumeRole\",\"eventSource\":\"sts.amazonaws.com\",
//     \"responseElements\":{\"credentials\":{\"accessKeyId\":\"ASIAX\",\"sessionToken\":\"IQoJSECRET\"}}}"}
// expected: no `IQoJSECRET` in the output; actual: unchanged token.
#[test]

fn bug_redaction_misses_string_wrapped_records() {
    let inner = json!({"eventName": "AssumeRole", "eventSource": "sts.amazonaws.com",
        "responseElements": {"credentials": {"accessKeyId": "ASIAX", "sessionToken": "IQoJSECRET"}}});
    let rec = bytes(&json!({"message": serde_json::to_string(&inner).unwrap()}));
    let cfg = Config {
        redact_session_tokens: true,
        ..Config::default()
    };
    let mut e = Enricher::new(cfg).unwrap();
    let (out, oc) = run(&mut e, &rec, None);
    assert!(matches!(oc, Outcome::Annotated));
    assert!(
        !String::from_utf8_lossy(&out).contains("IQoJSECRET"),
        "token left in a string-wrapped record: {}",
        show(&out)
    );
}

// ---------------------------------------------------------------------------
// 13. Host time
// ---------------------------------------------------------------------------

#[test]
fn ordinary_host_times_for_records_without_time() {
    let sc = scenario();
    for ht in [
        None,
        Some(0),
        Some(-1),
        Some(1_722_587_400),
        Some(4_102_444_800),
        Some(1_722_587_400_000),
    ] {
        let mut e = enricher();
        for v in &sc {
            let mut v = v.clone();
            if let Some(o) = v.as_object_mut() {
                o.remove("eventTime");
                o.remove("@timestamp");
            }
            let rec = bytes(&v);
            let (out, oc) = run(&mut e, &rec, ht);
            check_record(&rec, &out, &oc, false, false);
        }
    }
}

// BUG (src/core/engine/sets.rs `find_temp`, now `find_set`, lines `let d = (c - i).abs();` and
// `-start`): unchecked i64 arithmetic on times. `issue()` stores the event
// time — the host-supplied `host_time` when the record has no eventTime — as
// the set's issue time; a later call with the same key and ARN then computes
// `creationDate - issued` or `-issued`, which overflows for extreme host
// times and panics in debug builds ("attempt to subtract with overflow",
// "attempt to negate with overflow"; release builds silently wrap and may
// match the wrong set). SPEC 5: nothing panics on any input. Minimal:
//   e.process(AssumeRole issuing ASIAEXAMPLE1 without eventTime, Some(i64::MIN));
//   e.process(call with ASIAEXAMPLE1, same ARN, no creationDate, Some(0)) → panic (negate)
//   (with creationDate "2024-01-01T00:00:00Z" instead → panic (subtract)).
#[test]

fn bug_extreme_host_time_overflows() {
    let issue = br#"{"eventName":"AssumeRole","eventSource":"sts.amazonaws.com","userIdentity":{"type":"IAMUser","accessKeyId":"AKIAEXAMPLE","arn":"arn:aws:iam::111111111111:user/a","accountId":"111111111111"},"requestParameters":{"roleArn":"arn:aws:iam::111111111111:role/r","roleSessionName":"s"},"responseElements":{"credentials":{"accessKeyId":"ASIAEXAMPLE1"}}}"#;
    let call_no_created = br#"{"eventName":"GetCallerIdentity","eventSource":"sts.amazonaws.com","userIdentity":{"type":"AssumedRole","accessKeyId":"ASIAEXAMPLE1","arn":"arn:aws:sts::111111111111:assumed-role/r/s"}}"#;
    let call_created = |c: &str| {
        format!(
            r#"{{"eventName":"GetCallerIdentity","eventSource":"sts.amazonaws.com","userIdentity":{{"type":"AssumedRole","accessKeyId":"ASIAEXAMPLE1","arn":"arn:aws:sts::111111111111:assumed-role/r/s","sessionContext":{{"attributes":{{"creationDate":"{c}"}}}}}}}}"#
        )
        .into_bytes()
    };
    let calls: Vec<Vec<u8>> = vec![
        call_no_created.to_vec(),
        call_created("2024-01-01T00:00:00Z"),
        call_created("0001-01-01T00:00:00Z"),
        call_created("9999-12-31T23:59:59Z"),
    ];
    for ht in [i64::MIN, i64::MIN + 1, i64::MAX - 1, i64::MAX] {
        for call in &calls {
            let mut e = enricher();
            let (out, oc) = run(&mut e, issue, Some(ht));
            check_record(issue, &out, &oc, false, false);
            let (out, oc) = run(&mut e, call, Some(0));
            check_record(call, &out, &oc, false, false);
        }
    }
}

// ---------------------------------------------------------------------------
// 14. Noticed in passing (lineage rules, not robustness)
// ---------------------------------------------------------------------------

// SPEC 3.3 (v1.1) "Sets never split": an issuance whose key ID and ARN match
// a set issued within ±2 s *is* that set, whichever came first — so a
// duplicated delivery never makes a phantom collision. (Under v1 this was a
// finding: two issuances 2 s apart were two sets.) Two issuances of one key to
// one ARN within the tolerance are indistinguishable (README, Limits).
#[test]

fn second_issuance_within_tolerance_is_the_same_set() {
    let key = "ASIAKEYKEYKEYKEY0001";
    let mut e = enricher();
    let a = step(
        &mut e,
        &bytes(&assume_role(
            key,
            "s",
            "2024-08-02T08:30:00Z",
            "252.5.222.230",
        )),
    )
    .unwrap();
    let mut second = assume_role(key, "s", "2024-08-02T08:30:02Z", "252.5.222.230");
    second["userIdentity"]["accessKeyId"] = json!("AKIA6V1GNZTT65XQH36M");
    let b = step(&mut e, &bytes(&second)).unwrap();
    assert_eq!(
        a["issued"]["session_fingerprint"], b["issued"]["session_fingerprint"],
        "two issuances 2 s apart are one set"
    );
    assert_eq!(b["is_key_collision"], false);
    // 3 s apart: two sets sharing a key ID, a collision.
    let mut third = assume_role(key, "s", "2024-08-02T08:30:05Z", "252.5.222.230");
    third["userIdentity"]["accessKeyId"] = json!("AKIA6V1GNZTT65XQH36M");
    let c = step(&mut e, &bytes(&third)).unwrap();
    assert_ne!(
        a["issued"]["session_fingerprint"],
        c["issued"]["session_fingerprint"]
    );
    assert_eq!(c["is_key_collision"], true);
}
