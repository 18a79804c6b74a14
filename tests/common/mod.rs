//! Helpers for the rule tests: loading the Stratus Red Team records, running
//! an enricher over records, reading the raw (ordered) members of its output,
//! computing fingerprints independently, and building synthetic CloudTrail
//! records in the exact shapes the real files show.
#![allow(dead_code)]

use credlineage::{Config, Enricher};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

// ---------------------------------------------------------------------------
// Data files
// ---------------------------------------------------------------------------

/// `tests/data/stratus-red-team`.
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/stratus-red-team")
}

/// Every Stratus Red Team file name, sorted.
pub fn stratus_files() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(data_dir())
        .expect("tests/data/stratus-red-team")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    v.sort();
    v
}

/// The text of one file (`aws.persistence.sts-federation-token.json`, or just
/// `sts-federation-token` for short).
pub fn stratus_text(name: &str) -> String {
    let path = data_dir().join(resolve(name));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn resolve(name: &str) -> String {
    if name.ends_with(".json") {
        return name.to_string();
    }
    let hits: Vec<String> = stratus_files()
        .into_iter()
        .filter(|f| f.trim_end_matches(".json").ends_with(&format!(".{name}")))
        .collect();
    assert_eq!(hits.len(), 1, "stratus file {name:?}: {hits:?}");
    hits[0].clone()
}

/// The records of a file as raw bytes, exactly as in the file (pretty-printed),
/// in file order.
pub fn stratus_raw(name: &str) -> Vec<Vec<u8>> {
    let text = stratus_text(name);
    let raws: Vec<Box<RawValue>> = serde_json::from_str(&text).expect("JSON array");
    raws.into_iter()
        .map(|r| r.get().as_bytes().to_vec())
        .collect()
}

/// The records of a file, in file order.
pub fn stratus_unsorted(name: &str) -> Vec<Value> {
    serde_json::from_str(&stratus_text(name)).expect("JSON array")
}

/// The records of a file sorted by `eventTime` (stable: file order within a second).
pub fn stratus(name: &str) -> Vec<Value> {
    let mut v = stratus_unsorted(name);
    v.sort_by(|a, b| {
        a["eventTime"]
            .as_str()
            .unwrap_or("")
            .cmp(b["eventTime"].as_str().unwrap_or(""))
    });
    v
}

// ---------------------------------------------------------------------------
// Running the enricher
// ---------------------------------------------------------------------------

pub const NS: &str = "credlineage";

pub fn enricher() -> Enricher {
    Enricher::new(Config::default()).expect("default config")
}

pub fn enricher_with(cfg: Config) -> Enricher {
    Enricher::new(cfg).expect("config")
}

/// The record as compact bytes.
pub fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("serialize")
}

/// Parse one output record (must be valid JSON).
pub fn parse(out: &[u8]) -> Value {
    serde_json::from_slice(out).unwrap_or_else(|e| {
        panic!(
            "output is not valid JSON ({e}): {}",
            String::from_utf8_lossy(out)
        )
    })
}

/// The annotation object of one output record, under `ns`.
pub fn ann_in(out: &[u8], ns: &str) -> Value {
    let v = parse(out);
    let a = v
        .get(ns)
        .unwrap_or_else(|| panic!("no {ns:?} key in {}", String::from_utf8_lossy(out)));
    assert!(a.is_object(), "annotation is not an object: {a}");
    a.clone()
}

/// The annotation of one output record under the default namespace.
pub fn ann(out: &[u8]) -> Value {
    ann_in(out, NS)
}

/// Process one record and return its annotation.
pub fn step(e: &mut Enricher, rec: &Value) -> Value {
    ann(&e.process(&bytes(rec), None))
}

/// Run a fresh default enricher over `records` in order; the annotations.
pub fn run(records: &[Value]) -> Vec<Value> {
    run_with(Config::default(), records)
}

/// Run a fresh enricher with `cfg` over `records` in order; the annotations.
pub fn run_with(cfg: Config, records: &[Value]) -> Vec<Value> {
    let ns = cfg.namespace.clone();
    let mut e = enricher_with(cfg);
    records
        .iter()
        .map(|r| ann_in(&e.process(&bytes(r), None), &ns))
        .collect()
}

/// Batch (two-pass) mode: a first enricher records every credential set, the
/// second processes the same records with that lookahead; its annotations.
pub fn run_batch(records: &[Value]) -> Vec<Value> {
    let mut e1 = enricher();
    e1.record_lookahead();
    for r in records {
        e1.process(&bytes(r), None);
    }
    let l = e1.take_lookahead();
    let mut e2 = enricher();
    e2.use_lookahead(l);
    records.iter().map(|r| step(&mut e2, r)).collect()
}

/// `(ec2_cred_offhost, offhost_reason)` of each annotation (SPEC 3.5 tests).
pub fn offhost_flags(anns: &[Value]) -> Vec<(bool, Option<String>)> {
    anns.iter()
        .map(|a| {
            (
                a["ec2_cred_offhost"].as_bool().unwrap(),
                a.get("offhost_reason")
                    .and_then(|v| v.as_str())
                    .map(str::to_string),
            )
        })
        .collect()
}

/// Off-host for reason `r`.
pub fn reason(r: &str) -> (bool, Option<String>) {
    (true, Some(r.to_string()))
}

/// Not off-host, no reason.
pub const ON: (bool, Option<String>) = (false, None);

/// Batch mode as the CLI runs it (`--order time`): records sorted (stably)
/// by event time, issuances first within a second, two passes; annotations
/// in input order.
pub fn run_time_order(cfg: Config, records: &[Value]) -> Vec<Value> {
    let ns = cfg.namespace.clone();
    let raw: Vec<Vec<u8>> = records.iter().map(bytes).collect();
    let probe = enricher_with(cfg.clone());
    let mut last = i64::MIN;
    let keys: Vec<(i64, u8)> = raw
        .iter()
        .map(|r| {
            let (t, rank) = probe.peek_order(r);
            last = t.unwrap_or(last);
            (last, rank)
        })
        .collect();
    let mut order: Vec<usize> = (0..raw.len()).collect();
    order.sort_by_key(|&i| keys[i]);
    let mut e1 = enricher_with(cfg.clone());
    e1.record_lookahead();
    for &i in &order {
        e1.process(&raw[i], None);
    }
    let mut e2 = enricher_with(cfg);
    e2.use_lookahead(e1.take_lookahead());
    let mut out = vec![Value::Null; raw.len()];
    for &i in &order {
        out[i] = ann_in(&e2.process(&raw[i], None), &ns);
    }
    out
}

// ---------------------------------------------------------------------------
// Raw, ordered members (serde_json::Value sorts keys; this does not)
// ---------------------------------------------------------------------------

/// The top-level members of a JSON object, in document order, each with its
/// raw value text. Duplicate keys are all kept.
pub struct Members(pub Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Members, A::Error> {
                let mut v = Vec::new();
                while let Some(k) = m.next_key::<String>()? {
                    let val: Box<RawValue> = m.next_value()?;
                    v.push((k, val));
                }
                Ok(Members(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// Top-level members of `json` in order: (key, raw value text).
pub fn members(json: &[u8]) -> Vec<(String, String)> {
    let m: Members = serde_json::from_slice(json)
        .unwrap_or_else(|e| panic!("not a JSON object ({e}): {}", String::from_utf8_lossy(json)));
    m.0.into_iter()
        .map(|(k, v)| (k, v.get().to_string()))
        .collect()
}

/// Top-level keys of `json` in order.
pub fn keys(json: &[u8]) -> Vec<String> {
    members(json).into_iter().map(|(k, _)| k).collect()
}

/// The raw text of the (single) annotation member `ns` of an output record.
pub fn raw_annotation_in(out: &[u8], ns: &str) -> String {
    let found: Vec<String> = members(out)
        .into_iter()
        .filter(|(k, _)| k == ns)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {ns:?} member in {}",
        String::from_utf8_lossy(out)
    );
    found[0].clone()
}

pub fn raw_annotation(out: &[u8]) -> String {
    raw_annotation_in(out, NS)
}

/// The output must be the input's bytes up to its closing brace, then the
/// added member(s), then the closing brace: returns the added text (after
/// the separating comma).
pub fn added_text(input: &[u8], out: &[u8]) -> String {
    let close = input
        .iter()
        .rposition(|&c| c == b'}')
        .expect("input has a closing brace");
    assert!(
        out.starts_with(&input[..close]),
        "output does not start with the input minus its closing brace:\n in: {}\nout: {}",
        String::from_utf8_lossy(input),
        String::from_utf8_lossy(out)
    );
    assert_eq!(
        &out[out.len() - (input.len() - close)..],
        &input[close..],
        "output does not end with the input's closing brace"
    );
    let mid = &out[close..out.len() - (input.len() - close)];
    let non_empty = input[..close]
        .iter()
        .rev()
        .find(|c| !c.is_ascii_whitespace())
        .is_some_and(|&c| c != b'{');
    let mid = if non_empty {
        assert_eq!(mid.first(), Some(&b','), "added member not comma-separated");
        &mid[1..]
    } else {
        mid
    };
    String::from_utf8(mid.to_vec()).expect("utf-8")
}

// ---------------------------------------------------------------------------
// Independent fingerprints (the documented sf1 encoding, src/core/fingerprint.rs)
// ---------------------------------------------------------------------------

fn sf1(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(b"credlineage/sf1\0");
    h.update(parts.join("\0").as_bytes());
    format!("sf1_{}", hex::encode(&h.finalize()[..16]))
}

/// Fingerprint of a temporary credential set (key, session principal ARN, issue time).
pub fn fp_temp(key: &str, arn: &str, issued: i64) -> String {
    sf1(&["T", key, arn, &issued.to_string()])
}

/// Fingerprint of a long-term key (key, account).
pub fn fp_long(key: &str, account: &str) -> String {
    sf1(&["L", key, account])
}

/// `sf1_` + 32 lowercase hex digits.
pub fn is_fp(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        s.len() == 36
            && s.starts_with("sf1_")
            && s[4..]
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    })
}

// ---------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------

/// Unix seconds of an ISO-8601 instant.
pub fn t(iso: &str) -> i64 {
    credlineage::time::parse_iso(iso).unwrap_or_else(|| panic!("bad time {iso:?}"))
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn iso(secs: i64) -> String {
    credlineage::time::format_iso(secs)
}

/// The STS console spelling of an expiration, `Jul 30, 2024, 9:46:15 PM`.
pub fn console_time(secs: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(secs, 0)
        .expect("time")
        .format("%b %-d, %Y, %-I:%M:%S %p")
        .to_string()
}

/// The other console spelling, `Nov 29, 2018 4:31:59 AM` (no comma after the year).
pub fn console_time_no_comma(secs: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(secs, 0)
        .expect("time")
        .format("%b %-d, %Y %-I:%M:%S %p")
        .to_string()
}

/// The base instant of the synthetic scenarios.
pub const T0: &str = "2024-07-30T21:31:15Z";

pub fn t0() -> i64 {
    t(T0)
}

// ---------------------------------------------------------------------------
// Synthetic records, in the shapes of the real files
// ---------------------------------------------------------------------------

/// Account of the synthetic scenarios (as in ec2-get-password-data.json).
pub const ACCT: &str = "457448411975";

static SEQ: AtomicU64 = AtomicU64::new(1);

fn uuid() -> String {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("5c59eb79-6dac-405c-a4c4-{n:012x}")
}

/// A fake session token (never logged by credlineage; checked for leaks).
pub fn token_for(key: &str) -> String {
    format!(
        "IQoJb3JpZ2luX2VjEGYaCXVzLWVhc3QtMSJGMEQCIGWKgbykBmpvw3C2tHFJG2Z2EFmm8TFxSMzImeEIU{key}ZRAiB0qwHtoIdbFspr1VflqA8ScX+dd4rMEEsERlrKK7oVoiqrAghPEAEaDDc1MTM1MzA0MTMxMCIM5ByNCGn4qrkq0GCVKogC=="
    )
}

/// `userIdentity` of an IAM user calling with a long-term key.
pub fn iam_user(key: &str, user: &str) -> Value {
    json!({
        "accessKeyId": key,
        "accountId": ACCT,
        "arn": format!("arn:aws:iam::{ACCT}:user/{user}"),
        "principalId": "AIDAFSHDVNSWGFKZR06G",
        "type": "IAMUser",
        "userName": user
    })
}

/// `arn:aws:iam::ACCT:role/<role>`.
pub fn role_arn(role: &str) -> String {
    format!("arn:aws:iam::{ACCT}:role/{role}")
}

/// `arn:aws:sts::ACCT:assumed-role/<role>/<session>`.
pub fn session_arn(role: &str, session: &str) -> String {
    format!("arn:aws:sts::{ACCT}:assumed-role/{role}/{session}")
}

/// `userIdentity` of a call made with role credentials (AssumedRole).
pub fn assumed_role(key: &str, role: &str, session: &str, creation: &str) -> Value {
    json!({
        "accessKeyId": key,
        "accountId": ACCT,
        "arn": session_arn(role, session),
        "principalId": format!("AROAMLQ9F6KHQ07JKA0WY:{session}"),
        "sessionContext": {
            "attributes": {
                "creationDate": creation,
                "mfaAuthenticated": "false"
            },
            "sessionIssuer": {
                "accountId": ACCT,
                "arn": role_arn(role),
                "principalId": "AROAMLQ9F6KHQ07JKA0WY",
                "type": "Role",
                "userName": role
            },
            "webIdFederationData": {}
        },
        "type": "AssumedRole"
    })
}

/// `userIdentity` of EC2 instance-profile credentials (as in
/// ec2-steal-instance-credentials.json).
pub fn instance_role(key: &str, role: &str, instance: &str, creation: &str) -> Value {
    json!({
        "accessKeyId": key,
        "accountId": ACCT,
        "arn": session_arn(role, instance),
        "principalId": format!("AROALHCCSKSM395EGX3XN:{instance}"),
        "sessionContext": {
            "attributes": {
                "creationDate": creation,
                "mfaAuthenticated": "false"
            },
            "ec2RoleDelivery": "2.0",
            "sessionIssuer": {
                "accountId": ACCT,
                "arn": role_arn(role),
                "principalId": "AROALHCCSKSM395EGX3XN",
                "type": "Role",
                "userName": role
            },
            "webIdFederationData": {}
        },
        "type": "AssumedRole"
    })
}

/// `userIdentity` of an AWS service acting on its own (no key).
pub fn aws_service(invoked_by: &str) -> Value {
    json!({ "type": "AWSService", "invokedBy": invoked_by })
}

/// A successful API call record.
pub fn call(name: &str, source: &str, time: &str, ui: Value, ip: &str) -> Value {
    let acct = ui["accountId"].as_str().unwrap_or(ACCT).to_string();
    json!({
        "awsRegion": "us-east-1",
        "eventCategory": "Management",
        "eventID": uuid(),
        "eventName": name,
        "eventSource": source,
        "eventTime": time,
        "eventType": "AwsApiCall",
        "eventVersion": "1.08",
        "managementEvent": true,
        "readOnly": true,
        "recipientAccountId": acct,
        "requestID": uuid(),
        "requestParameters": null,
        "responseElements": null,
        "sourceIPAddress": ip,
        "tlsDetails": {
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": format!("{}.us-east-1.amazonaws.com", source.trim_end_matches(".amazonaws.com")),
            "tlsVersion": "TLSv1.3"
        },
        "userAgent": "stratus-red-team_5c59eb79-6dac-405c-a4c4-e19aec03c666",
        "userIdentity": ui
    })
}

/// `sts:GetCallerIdentity` (the usual first call with new credentials).
pub fn gci(time: &str, ui: Value, ip: &str) -> Value {
    call("GetCallerIdentity", "sts.amazonaws.com", time, ui, ip)
}

/// The `credentials` member of an STS response.
pub fn creds(key: &str, expiration: Option<&str>) -> Value {
    let mut c = json!({ "accessKeyId": key, "sessionToken": token_for(key) });
    if let Some(e) = expiration {
        c["expiration"] = json!(e);
    }
    c
}

/// A successful `sts:AssumeRole` (shape of ec2-get-password-data.json),
/// issuing `new_key` to `<role>/<session>`; expiration = time + 15 min.
pub fn assume_role(
    ui: Value,
    time: &str,
    role: &str,
    session: &str,
    new_key: &str,
    ip: &str,
) -> Value {
    let exp = console_time(t(time) + 900);
    assume_role_exp(ui, time, role, session, new_key, Some(&exp), ip)
}

/// Like [`assume_role`] with an explicit (or no) expiration spelling.
pub fn assume_role_exp(
    ui: Value,
    time: &str,
    role: &str,
    session: &str,
    new_key: &str,
    expiration: Option<&str>,
    ip: &str,
) -> Value {
    let mut r = call("AssumeRole", "sts.amazonaws.com", time, ui, ip);
    r["requestParameters"] = json!({
        "durationSeconds": 900,
        "roleArn": role_arn(role),
        "roleSessionName": session
    });
    r["resources"] = json!([{
        "ARN": role_arn(role),
        "accountId": ACCT,
        "type": "AWS::IAM::Role"
    }]);
    r["responseElements"] = json!({
        "assumedRoleUser": {
            "arn": session_arn(role, session),
            "assumedRoleId": format!("AROAMLQ9F6KHQ07JKA0WY:{session}")
        },
        "credentials": creds(new_key, expiration)
    });
    r
}

/// An `sts:AssumeRole` made by an AWS service for itself (EC2 instance
/// profile, Lambda execution role): no caller key, no `assumedRoleUser` in the
/// response, source and user agent are the service name.
pub fn service_assume_role(
    invoked_by: &str,
    time: &str,
    role: &str,
    session: &str,
    new_key: &str,
) -> Value {
    let exp = console_time(t(time) + 6 * 3600);
    let mut r = call(
        "AssumeRole",
        "sts.amazonaws.com",
        time,
        aws_service(invoked_by),
        invoked_by,
    );
    r["userAgent"] = json!(invoked_by);
    r["recipientAccountId"] = json!(ACCT);
    r["requestParameters"] = json!({
        "roleArn": role_arn(role),
        "roleSessionName": session
    });
    r["responseElements"] = json!({ "credentials": creds(new_key, Some(&exp)) });
    r["resources"] =
        json!([{ "ARN": role_arn(role), "accountId": ACCT, "type": "AWS::IAM::Role" }]);
    r["sharedEventID"] = json!(uuid());
    r.as_object_mut().unwrap().remove("tlsDetails");
    r
}

/// A failed STS call (`errorCode` set, `responseElements: null`), as in
/// ec2-get-password-data.json.
pub fn failed(mut r: Value) -> Value {
    r["errorCode"] = json!("AccessDenied");
    r["errorMessage"] = json!("User is not authorized to perform: sts:AssumeRole");
    r["responseElements"] = Value::Null;
    r
}

/// `iam:CreateAccessKey` (shape of iam-backdoor-user.json), creating `new_key` for `user`.
pub fn create_access_key(ui: Value, time: &str, user: &str, new_key: &str, ip: &str) -> Value {
    let mut r = call("CreateAccessKey", "iam.amazonaws.com", time, ui, ip);
    r["readOnly"] = json!(false);
    r["eventVersion"] = json!("1.09");
    r["requestParameters"] = json!({ "userName": user });
    r["responseElements"] = json!({
        "accessKey": {
            "accessKeyId": new_key,
            "createDate": console_time_no_comma(t(time)),
            "status": "Active",
            "userName": user
        }
    });
    r
}

// ---------------------------------------------------------------------------
// The built CLI
// ---------------------------------------------------------------------------

/// What one run of the `credlineage` binary printed, and its exit code.
pub struct CliOut {
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub code: i32,
}

/// Run the built `credlineage` with `args`, feeding `stdin` (or none).
pub fn cli(args: &[&str], stdin: Option<&[u8]>) -> CliOut {
    let mut c = Command::new(env!("CARGO_BIN_EXE_credlineage"));
    c.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    if let Some(i) = stdin {
        let mut si = child.stdin.take().unwrap();
        let data = i.to_vec();
        std::thread::spawn(move || si.write_all(&data));
    }
    let o = child.wait_with_output().unwrap();
    CliOut {
        stdout: o.stdout,
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        code: o.status.code().unwrap_or(-1),
    }
}
