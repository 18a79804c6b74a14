//! Property tests of the output splice (SPEC 3 "Output", Appendix A key order).
//!
//! For arbitrary JSON objects — arbitrary nesting, keys and strings with
//! escapes and non-ASCII, sometimes a stale `credlineage` member (possibly
//! twice, possibly with an escaped key), sometimes CloudTrail-like fields at
//! the top level, under `detail` (EventBridge) or as a JSON string under
//! `message`/`log` — serialized compact, pretty, or with random whitespace,
//! random member order and random escaping, `Enricher::process` must give:
//!
//! * valid JSON;
//! * exactly the parse-modify-serialize result: parse the input, remove
//!   `credlineage`, insert the annotation taken from the output — equal as
//!   `serde_json::Value`s (unchanged bytes when the object is not CloudTrail);
//! * every other member byte for byte, in order; and with no stale
//!   `credlineage` member, the input bytes up to its final `}` as a prefix;
//! * annotation keys in SPEC Appendix A order (checked on the raw text).

mod hostile_support;

use credlineage::{Config, Enricher, Outcome, to_single_line};
use hostile_support::{NS, Rng, check_splice, show};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Number, Value};

// ---------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------

fn nasty_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => proptest::char::range('a', 'z'),
        3 => select(vec![
            '"', '\\', '/', '{', '}', '[', ']', ',', ':', ' ', '\n', '\t', '\r', '\u{0}', '\u{8}',
            '\u{c}', '\u{1f}', '\u{7f}', 'é', 'Ä', '日', '🦀', '\u{2028}', '\u{2029}', '\u{feff}',
            '\u{202e}', '\u{fffd}', '\u{ffff}', '\u{10ffff}', '\u{d7ff}', '\u{e000}',
        ]),
        1 => any::<char>(),
    ]
}

fn nasty_string() -> impl Strategy<Value = String> {
    prop::collection::vec(nasty_char(), 0..14).prop_map(|v| v.into_iter().collect())
}

const INTERESTING_KEYS: [&str; 18] = [
    NS,
    "eventName",
    "eventSource",
    "userIdentity",
    "detail",
    "detail-type",
    "message",
    "log",
    "eventTime",
    "@timestamp",
    "accessKeyId",
    "arn",
    "type",
    "Records",
    "",
    "sessionToken",
    "credentials",
    "responseElements",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => nasty_string(),
        1 => select(INTERESTING_KEYS.to_vec()).prop_map(String::from),
    ]
}

fn leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| Value::Number(n.into())),
        any::<u64>().prop_map(|n| Value::Number(n.into())),
        any::<f64>()
            .prop_filter_map("finite", Number::from_f64)
            .prop_map(Value::Number),
        nasty_string().prop_map(Value::String),
        nasty_string().prop_map(Value::String),
    ]
    .boxed()
}

fn value() -> BoxedStrategy<Value> {
    leaf()
        .prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((key(), inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
        .boxed()
}

fn str_or(choices: &'static [&'static str]) -> BoxedStrategy<Value> {
    prop_oneof![
        4 => select(choices).prop_map(|s| Value::String(s.to_string())),
        1 => nasty_string().prop_map(Value::String),
        1 => leaf(),
    ]
    .boxed()
}

/// Like [`str_or`], nearly always one of `choices`.
fn str_mostly(choices: &'static [&'static str]) -> BoxedStrategy<Value> {
    prop_oneof![
        12 => select(choices).prop_map(|s| Value::String(s.to_string())),
        1 => nasty_string().prop_map(Value::String),
        1 => leaf(),
    ]
    .boxed()
}

/// CloudTrail-like top-level fields, each optional, each sometimes of the wrong type.
fn cloudtrail_fields() -> BoxedStrategy<Map<String, Value>> {
    let user_identity = (
        prop::option::of(str_or(&[
            "AKIA6V1GNZTT65XQH36M",
            "ASIASTJKC5GCM7ZE6LUP",
            "ASIAY34FZKBOKMUTVV7A",
            "AKIAIOSFODNN7EXAMPLE",
            "",
            "ASIA",
            "ABIA1234",
        ])),
        prop::option::of(str_or(&[
            "arn:aws:iam::742491224508:user/alice",
            "arn:aws:sts::742491224508:assumed-role/r/s",
            "arn:aws:sts::742491224508:assumed-role/r/i-0123456789abcdef0",
            "arn:aws:sts::742491224508:federated-user/bob",
        ])),
        prop::option::of(str_or(&[
            "IAMUser",
            "AssumedRole",
            "Root",
            "AWSService",
            "FederatedUser",
            "SAMLUser",
            "WebIdentityUser",
        ])),
        prop::option::of(str_or(&[
            "2024-11-30T08:43:17Z",
            "20131102T010628Z",
            "2024-02-30T08:43:17Z",
        ])),
    )
        .prop_map(|(key, arn, typ, created)| {
            let mut m = Map::new();
            if let Some(k) = key {
                m.insert("accessKeyId".into(), k);
            }
            if let Some(a) = arn {
                m.insert("arn".into(), a);
            }
            if let Some(t) = typ {
                m.insert("type".into(), t);
            }
            if let Some(c) = created {
                m.insert(
                    "sessionContext".into(),
                    serde_json::json!({"attributes": {"creationDate": c}}),
                );
            }
            Value::Object(m)
        })
        .boxed();
    let response = (
        prop::option::of(str_or(&[
            "ASIAQNZGKIQY56JQ7WML",
            "ASIASTJKC5GCM7ZE6LUP",
            "",
        ])),
        prop::option::of(str_or(&[
            "Nov 30, 2024, 8:43:17 PM",
            "Nov 29, 2018 4:31:59 AM",
            "2024-11-30T20:43:17Z",
        ])),
    )
        .prop_map(|(k, exp)| {
            let mut c = Map::new();
            if let Some(k) = k {
                c.insert("accessKeyId".into(), k);
            }
            if let Some(e) = exp {
                c.insert("expiration".into(), e);
            }
            c.insert(
                "sessionToken".into(),
                Value::String("IQoJb3JpZ2luX2VjEOH//////////wEaCXVz".into()),
            );
            serde_json::json!({"credentials": Value::Object(c),
                "assumedRoleUser": {"arn": "arn:aws:sts::742491224508:assumed-role/r/s"}})
        })
        .boxed();
    (
        prop::option::weighted(0.95, str_mostly(&[
            "AssumeRole",
            "GetCallerIdentity",
            "GetFederationToken",
            "CreateAccessKey",
            "RunInstances",
            "",
        ])),
        prop::option::weighted(0.95, str_mostly(&[
            "sts.amazonaws.com",
            "iam.amazonaws.com",
            "ec2.amazonaws.com",
            "s3.amazonaws.com",
        ])),
        prop::option::of(prop_oneof![4 => user_identity, 1 => leaf()]),
        prop::option::of(str_or(&[
            "2024-11-30T08:43:17Z",
            "2024-11-30T08:43:17.123Z",
            "2024-11-30T08:43:17+01:00",
            "not a time",
        ])),
        prop::option::of(prop_oneof![4 => response, 1 => leaf()]),
        prop::option::of(str_or(&["255.090.254.5", "ec2.amazonaws.com", "2001:db8::1"])),
        prop::option::of(prop_oneof![
            Just(serde_json::json!({"roleArn": "arn:aws:iam::742491224508:role/r", "roleSessionName": "s"})),
            leaf(),
        ]),
    )
        .prop_map(|(name, source, ui, time, re, ip, rp)| {
            let mut m = Map::new();
            for (k, v) in [
                ("eventName", name),
                ("eventSource", source),
                ("userIdentity", ui),
                ("eventTime", time),
                ("responseElements", re),
                ("sourceIPAddress", ip),
                ("requestParameters", rp),
            ] {
                if let Some(v) = v {
                    m.insert(k.into(), v);
                }
            }
            m
        })
        .boxed()
}

/// Where the CloudTrail-like fields go.
#[derive(Debug, Clone, Copy)]
enum Wrap {
    Top,
    Detail,
    Message,
    Log,
}

/// How the object is turned into bytes.
#[derive(Debug, Clone, Copy)]
enum Style {
    Compact,
    Pretty,
    Random,
}

#[derive(Debug, Clone)]
struct Case {
    base: Map<String, Value>,
    ct: Option<(Map<String, Value>, Wrap)>,
    own: Option<Value>,
    seed: u64,
}

fn case() -> BoxedStrategy<Case> {
    (
        prop::collection::vec((key(), value()), 0..8),
        prop::option::weighted(
            0.7,
            (
                cloudtrail_fields(),
                prop_oneof![
                    6 => Just(Wrap::Top),
                    1 => Just(Wrap::Detail),
                    1 => Just(Wrap::Message),
                    1 => Just(Wrap::Log),
                ],
            ),
        ),
        prop::option::weighted(0.35, value()),
        any::<u64>(),
    )
        .prop_map(|(base, ct, own, seed)| Case {
            base: base.into_iter().collect(),
            ct,
            own,
            seed: seed | 1,
        })
        .boxed()
}

impl Case {
    /// The object as a `Value` (what the input means).
    fn object(&self) -> Map<String, Value> {
        let mut m = self.base.clone();
        if let Some((ct, wrap)) = &self.ct {
            match wrap {
                Wrap::Top => m.extend(ct.clone()),
                Wrap::Detail => {
                    m.insert("detail-type".into(), "AWS API Call via CloudTrail".into());
                    m.insert("detail".into(), Value::Object(ct.clone()));
                }
                Wrap::Message | Wrap::Log => {
                    let k = if matches!(wrap, Wrap::Message) {
                        "message"
                    } else {
                        "log"
                    };
                    let text = serde_json::to_string(&Value::Object(ct.clone())).unwrap();
                    m.insert(k.into(), Value::String(text));
                }
            }
        }
        match &self.own {
            Some(v) => {
                m.insert(NS.into(), v.clone());
            }
            None => {
                m.remove(NS);
            }
        }
        m
    }
}

// ---------------------------------------------------------------------------
// A serializer with random whitespace, member order and escaping.
// ---------------------------------------------------------------------------

struct Writer {
    rng: Rng,
    out: Vec<u8>,
}

impl Writer {
    fn ws(&mut self) {
        const WS: [&[u8]; 6] = [b" ", b"\n", b"\t", b"\r\n  ", b"  ", b"\n\t \r"];
        if self.rng.chance(1, 3) {
            let w = WS[self.rng.below(WS.len())];
            self.out.extend_from_slice(w);
        }
    }

    fn string(&mut self, s: &str) {
        self.out.push(b'"');
        for c in s.chars() {
            let forced = matches!(c, '"' | '\\') || (c as u32) < 0x20;
            if forced || self.rng.chance(1, 5) {
                match (c, self.rng.below(2)) {
                    ('"', 0) => self.out.extend_from_slice(b"\\\""),
                    ('\\', 0) => self.out.extend_from_slice(b"\\\\"),
                    ('/', 0) => self.out.extend_from_slice(b"\\/"),
                    ('\n', 0) => self.out.extend_from_slice(b"\\n"),
                    ('\r', 0) => self.out.extend_from_slice(b"\\r"),
                    ('\t', 0) => self.out.extend_from_slice(b"\\t"),
                    ('\u{8}', 0) => self.out.extend_from_slice(b"\\b"),
                    ('\u{c}', 0) => self.out.extend_from_slice(b"\\f"),
                    _ => {
                        let mut buf = [0u16; 2];
                        for u in c.encode_utf16(&mut buf) {
                            let upper = self.rng.chance(1, 2);
                            let esc = if upper {
                                format!("\\u{:04X}", u)
                            } else {
                                format!("\\u{:04x}", u)
                            };
                            self.out.extend_from_slice(esc.as_bytes());
                        }
                    }
                }
            } else {
                let mut buf = [0u8; 4];
                self.out
                    .extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
        self.out.push(b'"');
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::Object(m) => {
                let members: Vec<(&String, &Value)> = m.iter().collect();
                self.members(&members, None);
            }
            Value::Array(a) => {
                self.out.push(b'[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    self.ws();
                    self.value(x);
                    self.ws();
                }
                if a.is_empty() {
                    self.ws();
                }
                self.out.push(b']');
            }
            Value::String(s) => self.string(s),
            other => self
                .out
                .extend_from_slice(&serde_json::to_vec(other).unwrap()),
        }
    }

    /// An object; members shuffled; `dup` = a member to write twice (earlier
    /// copy with another value; JSON "last wins" keeps the meaning).
    fn members(&mut self, members: &[(&String, &Value)], dup: Option<(&str, &Value)>) {
        let mut order: Vec<usize> = (0..members.len()).collect();
        for i in (1..order.len()).rev() {
            let j = self.rng.below(i + 1);
            order.swap(i, j);
        }
        let mut items: Vec<(String, Value)> = order
            .iter()
            .map(|&i| (members[i].0.clone(), members[i].1.clone()))
            .collect();
        if let Some((k, v)) = dup {
            // Insert the earlier duplicate before the real one.
            let real = items.iter().position(|(kk, _)| kk == k).unwrap_or(0);
            let at = self.rng.below(real + 1);
            items.insert(at, (k.to_string(), v.clone()));
        }
        self.out.push(b'{');
        for (i, (k, v)) in items.iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            self.ws();
            self.string(k);
            self.ws();
            self.out.push(b':');
            self.ws();
            self.value(v);
            self.ws();
        }
        if items.is_empty() {
            self.ws();
        }
        self.out.push(b'}');
    }
}

fn serialize(obj: &Map<String, Value>, style: Style, seed: u64, dup_own: bool) -> Vec<u8> {
    match style {
        Style::Compact => serde_json::to_vec(obj).unwrap(),
        Style::Pretty => serde_json::to_vec_pretty(obj).unwrap(),
        Style::Random => {
            let mut w = Writer {
                rng: Rng(seed),
                out: Vec::new(),
            };
            w.ws();
            let members: Vec<(&String, &Value)> = obj.iter().collect();
            let stale = Value::String("stale copy".into());
            let dup = (dup_own && obj.contains_key(NS)).then_some((NS, &stale));
            w.members(&members, dup);
            w.ws();
            w.out
        }
    }
}

// ---------------------------------------------------------------------------
// The expectation
// ---------------------------------------------------------------------------

fn nonempty_str(v: Option<&Value>) -> bool {
    v.and_then(Value::as_str).is_some_and(|s| !s.is_empty())
}

fn ct_fields(m: &Map<String, Value>) -> bool {
    nonempty_str(m.get("eventName")) && nonempty_str(m.get("eventSource"))
}

/// The event credlineage reads from an input object (SPEC 2), or `None`
/// when the object is not a CloudTrail record in any accepted wrapper.
fn event_of(top: &Map<String, Value>) -> Option<Map<String, Value>> {
    let mut view = top.clone();
    for k in [NS, "detail", "detail-type", "message", "log"] {
        view.remove(k);
    }
    if ct_fields(&view) {
        return Some(view);
    }
    if let Some(d) = top.get("detail").and_then(Value::as_object) {
        if ct_fields(d) {
            return Some(d.clone());
        }
    }
    // String fields holding a whole record (at most one of them is generated
    // as a CloudTrail record, so their order does not matter here).
    for k in ["log", "message"] {
        if let Some(s) = top.get(k).and_then(Value::as_str) {
            if let Ok(Value::Object(inner)) = serde_json::from_str::<Value>(s) {
                if ct_fields(&inner) {
                    return Some(inner);
                }
            }
        }
    }
    None
}

fn run_case(c: &Case, style: Style) -> Result<(), TestCaseError> {
    let obj = c.object();
    let input = serialize(&obj, style, c.seed, c.seed % 3 == 0);
    let had_own = obj.contains_key(NS);

    let mut e = Enricher::new(Config::default()).unwrap();
    let mut out = Vec::new();
    let outcome = e.process_into(&input, None, &mut out);
    // `process` is the same transform.
    let again = Enricher::new(Config::default())
        .unwrap()
        .process(&input, None);
    prop_assert!(again == out, "process != process_into");

    let vin: Value = serde_json::from_slice(&input).expect("generated input parses");
    let vout: Value = match serde_json::from_slice(&out) {
        Ok(v) => v,
        Err(err) => {
            return Err(TestCaseError::fail(format!(
                "output is not valid JSON ({err})\n input: {}\noutput: {}",
                show(&input),
                show(&out)
            )));
        }
    };
    let event = event_of(vin.as_object().unwrap());
    match outcome {
        Outcome::Annotated => {
            prop_assert!(
                event.is_some(),
                "annotated a non-CloudTrail object: {}",
                show(&input)
            );
            // Byte-level splice contract + Appendix A key order.
            let ann = check_splice(&input, &out);
            // Parse-modify-serialize equivalence.
            let mut expect = vin.as_object().unwrap().clone();
            expect.remove(NS);
            expect.insert(NS.into(), ann.clone());
            prop_assert_eq!(&Value::Object(expect), &vout);
            if !had_own {
                let close = input.iter().rposition(|&b| b == b'}').unwrap();
                prop_assert!(out.starts_with(&input[..close]));
            }
            // A little semantics: the key used and its kind.
            let ev = event.unwrap();
            let key = ev
                .get("userIdentity")
                .and_then(|u| u.get("accessKeyId"))
                .and_then(Value::as_str)
                .filter(|k| !k.is_empty());
            match key {
                Some(k) => {
                    prop_assert_eq!(ann["access_key_id"].as_str(), Some(k));
                    let kind = if k.starts_with("AKIA") {
                        "long_term"
                    } else if k.starts_with("ASIA") {
                        "temporary"
                    } else {
                        "unknown"
                    };
                    prop_assert_eq!(ann["credential_type"].as_str(), Some(kind));
                    prop_assert!(ann["session_fingerprint"].is_string());
                }
                None => {
                    prop_assert!(ann.get("access_key_id").is_none());
                    prop_assert_eq!(ann["credential_type"].as_str(), Some("none"));
                    prop_assert!(ann["session_fingerprint"].is_null());
                }
            }
        }
        Outcome::PassedThrough(_) => {
            prop_assert!(
                event.is_none(),
                "CloudTrail object passed through: {}",
                show(&input)
            );
            prop_assert!(out == input, "passed-through object changed");
        }
        Outcome::Malformed(err) => {
            return Err(TestCaseError::fail(format!(
                "valid object counted malformed ({err}): {}",
                show(&input)
            )));
        }
    }

    // to_single_line: same meaning, one line, and the same annotation.
    let line = to_single_line(&input);
    prop_assert!(!line.contains(&b'\n') && !line.contains(&b'\r'));
    let vline: Value = serde_json::from_slice(&line).expect("single line parses");
    prop_assert_eq!(&vline, &vin);
    let out_line = Enricher::new(Config::default())
        .unwrap()
        .process(&line, None);
    let vol: Value = serde_json::from_slice(&out_line).unwrap();
    prop_assert_eq!(vol.get(NS), vout.get(NS));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn splice_compact(c in case()) {
        run_case(&c, Style::Compact)?;
    }

    #[test]
    fn splice_pretty(c in case()) {
        run_case(&c, Style::Pretty)?;
    }

    #[test]
    fn splice_random_whitespace_order_and_escapes(c in case()) {
        run_case(&c, Style::Random)?;
    }
}

/// Hand-picked shapes the generator reaches only rarely.
#[test]
fn splice_edge_shapes() {
    let ct = r#""eventName":"GetCallerIdentity","eventSource":"sts.amazonaws.com""#;
    let cases: Vec<String> = vec![
        format!("{{{ct}}}"),
        format!("{{ {ct} }}"),
        format!("\n\t{{\n{ct}\n}}\n\n"),
        format!(r#"{{"credlineage":1,{ct}}}"#),
        format!(r#"{{{ct},"credlineage":1}}"#),
        format!(r#"{{"credlineage":{{"v":1}}, {ct} ,"credlineage":[1,{{"}}":"]"}}]}}"#),
        format!(r#"{{"cred\u006cineage":"x",{ct}}}"#),
        format!(r#"{{"\u0063redlineage":"x","credlineage":null,{ct},"\u0063\u0072edlineage":0}}"#),
        format!(r#"{{"credlineagex":1,"credlineag":2,{ct}}}"#),
        format!(r#"{{"a":"}}","b":"\"}}","c":"\\","d":{{"credlineage":1}},{ct}}}"#),
        format!(r#"{{{ct},"z":"\\\"}}\\"}}"#),
        format!(r#"{{{ct},"e":{{}},"f":[],"g":[{{}}],"h":-0.0e-0}}"#),
        format!("{{{ct},\"u\":\"\u{2028}\u{2029}\u{feff}🦀\"}}"),
        format!("{{\r\n  \"credlineage\" :\t{{ }} ,\r\n  {ct}\r\n}}\r\n"),
    ];
    for input in cases {
        let input = input.into_bytes();
        let mut e = Enricher::new(Config::default()).unwrap();
        let mut out = Vec::new();
        let oc = e.process_into(&input, None, &mut out);
        assert!(matches!(oc, Outcome::Annotated), "{oc:?}: {}", show(&input));
        let ann = check_splice(&input, &out);
        let vin: Value = serde_json::from_slice(&input).unwrap();
        let vout: Value = serde_json::from_slice(&out).unwrap();
        let mut expect = vin.as_object().unwrap().clone();
        expect.remove(NS);
        expect.insert(NS.into(), ann);
        assert_eq!(Value::Object(expect), vout, "{}", show(&input));
    }
}
