//! Enricher configuration: output shape, state limits, off-host rules. Deserializable from JSON (CLI config file, WASM constructors).

use crate::Error;
use crate::aws_ranges::AwsRanges;
use ipnet::IpNet;
use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::sync::Arc;

/// How the enricher behaves. Every field has a default; a JSON config names
/// only what it changes (unknown keys are refused, so a typo is an error).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Name of the top-level key that holds the annotation object.
    pub namespace: String,
    /// When set, write the annotation fields as top-level keys with this
    /// prefix (`<prefix>session_fingerprint`, …) instead of one object.
    pub flatten_prefix: Option<String>,
    /// Top-level fields that may hold a whole CloudTrail record as a JSON
    /// string (what shippers without a JSON parser deliver).
    pub string_fields: Vec<String>,
    /// Cap on entries in each state table (credential sets, EC2 instances,
    /// source IPs, created keys). The least recently used entry is evicted first.
    pub max_entries: usize,
    /// Cap on the estimated bytes of all state tables together.
    pub max_bytes: usize,
    /// How long a `GetSessionToken` / `GetFederationToken` credential set
    /// (and any temporary credential of another or unknown kind) whose
    /// expiration was not observed counts as live after its issue time, in
    /// seconds (SPEC 3.4: 36 h, the longest such credentials live).
    pub session_ttl_secs: i64,
    /// The same for role sessions (`AssumedRole`; SPEC 3.4: 12 h).
    pub role_session_ttl_secs: i64,
    /// The same for EC2 instance-profile credentials (SPEC 3.4: 6 h).
    pub instance_ttl_secs: i64,
    /// A call whose session creation date is within this many seconds of an
    /// observed issuance (same key, same ARN) belongs to that issuance (SPEC 3.3: 2 s).
    pub match_tolerance_secs: i64,
    /// Expired credential sets are purged once they have been expired this long.
    pub expired_grace_secs: i64,
    /// Operator-known CIDRs (NAT gateways, VPC ranges): instance credentials
    /// used from these are never off-host (SPEC 3.5 step 3; a foreign VPC
    /// endpoint is still flagged).
    pub known_cidrs: Vec<IpNet>,
    /// Accounts whose VPC endpoints instance credentials may use without
    /// `foreign_vpc_endpoint` (a central networking account, shared VPCs):
    /// 12-digit account IDs (SPEC 3.5 step 2).
    pub trusted_vpc_endpoint_accounts: Vec<String>,
    /// The AWS address space (SPEC 3.5): instance credentials used from a
    /// public address outside it are off-host (`outside_aws`). JSON:
    /// `"builtin"` (the default, the snapshot built into the crate), `"off"`,
    /// or a list of CIDR prefixes (`[]` means `"off"`).
    pub aws_ip_ranges: AwsIpRanges,
    /// Flag instance credentials used from an IP that a non-instance identity
    /// (IAM user key, console session, SSO/SAML/web-identity user) used within
    /// `ip_retention_secs` (`ip_used_by_other_identity`).
    pub ip_used_by_other_identity: bool,
    /// How long an IP is remembered as used by a non-instance identity.
    pub ip_retention_secs: i64,
    /// Opt-in: replace `responseElements.credentials.sessionToken` in the
    /// passed-through record with `"<redacted>"`.
    pub redact_session_tokens: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            namespace: "credlineage".into(),
            flatten_prefix: None,
            string_fields: vec!["message".into(), "log".into()],
            max_entries: 1_000_000,
            max_bytes: 512 * 1024 * 1024,
            session_ttl_secs: 36 * 3600,
            role_session_ttl_secs: 12 * 3600,
            instance_ttl_secs: 6 * 3600,
            match_tolerance_secs: 2,
            expired_grace_secs: 3600,
            known_cidrs: Vec::new(),
            trusted_vpc_endpoint_accounts: Vec::new(),
            aws_ip_ranges: AwsIpRanges::Builtin,
            ip_used_by_other_identity: true,
            ip_retention_secs: 24 * 3600,
            redact_session_tokens: false,
        }
    }
}

impl Config {
    /// Parse a JSON configuration; missing keys take their defaults.
    pub fn from_json(bytes: &[u8]) -> Result<Config, Error> {
        // serde would also take a struct as a positional array (`[]` meaning
        // all defaults): a configuration is an object with named keys only.
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(Error::Config(
                "the configuration must be a JSON object".into(),
            ));
        }
        let c: Config = serde_json::from_slice(bytes).map_err(|e| Error::Config(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    /// Check the values make sense together.
    pub fn validate(&self) -> Result<(), Error> {
        if self.namespace.is_empty() && self.flatten_prefix.is_none() {
            return Err(Error::Config("namespace must not be empty".into()));
        }
        if self.max_entries == 0 {
            return Err(Error::Config("max_entries must be at least 1".into()));
        }
        if self.max_bytes < 4096 {
            return Err(Error::Config("max_bytes must be at least 4096".into()));
        }
        for (name, v) in [
            ("session_ttl_secs", self.session_ttl_secs),
            ("role_session_ttl_secs", self.role_session_ttl_secs),
            ("instance_ttl_secs", self.instance_ttl_secs),
            ("match_tolerance_secs", self.match_tolerance_secs),
            ("expired_grace_secs", self.expired_grace_secs),
            ("ip_retention_secs", self.ip_retention_secs),
        ] {
            if !(0..=10 * 365 * 86400).contains(&v) {
                return Err(Error::Config(format!(
                    "{name} must be between 0 and 10 years in seconds, got {v}"
                )));
            }
        }
        for a in &self.trusted_vpc_endpoint_accounts {
            if a.len() != 12 || !a.bytes().all(|c| c.is_ascii_digit()) {
                return Err(Error::Config(format!(
                    "trusted_vpc_endpoint_accounts: {a:?} is not a 12-digit AWS account ID"
                )));
            }
        }
        Ok(())
    }

    /// The AWS address space the `outside_aws` rule uses; `None` when it is off.
    pub fn aws_ranges(&self) -> Option<&AwsRanges> {
        self.aws_ip_ranges.ranges()
    }

    /// The settings that change what the state means; a snapshot taken under
    /// different values is refused.
    pub(crate) fn state_digest(&self) -> String {
        format!(
            "ttl={}/{}/{};tol={};ipother={};ipret={}",
            self.session_ttl_secs,
            self.role_session_ttl_secs,
            self.instance_ttl_secs,
            self.match_tolerance_secs,
            self.ip_used_by_other_identity,
            self.ip_retention_secs
        )
    }
}

/// Which AWS address space the `outside_aws` rule uses (SPEC 3.5).
///
/// In JSON: `"builtin"`, `"off"`, or a list of CIDR prefixes such as
/// `["3.0.0.0/15", "2600:1f00::/24"]` (the v1 form; an empty list is `"off"`,
/// as it was). A custom table is written back as the CIDR list of its
/// addresses, without its `syncToken` and date. Cloning shares the table.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum AwsIpRanges {
    /// The snapshot of AWS's ip-ranges.json built into the crate
    /// ([`AwsRanges::builtin`]).
    #[default]
    Builtin,
    /// No AWS address space: the `outside_aws` step is skipped (v1 behaviour).
    Off,
    /// The operator's table: a newer ip-ranges.json or a list of prefixes.
    Custom(Arc<AwsRanges>),
}

impl AwsIpRanges {
    /// The table in use, `None` when off.
    pub fn ranges(&self) -> Option<&AwsRanges> {
        match self {
            AwsIpRanges::Builtin => Some(AwsRanges::builtin()),
            AwsIpRanges::Off => None,
            AwsIpRanges::Custom(r) => Some(r),
        }
    }
}

impl From<AwsRanges> for AwsIpRanges {
    fn from(r: AwsRanges) -> Self {
        AwsIpRanges::Custom(Arc::new(r))
    }
}

impl Serialize for AwsIpRanges {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            AwsIpRanges::Builtin => s.serialize_str("builtin"),
            AwsIpRanges::Off => s.serialize_str("off"),
            AwsIpRanges::Custom(r) => {
                let cidrs = r.to_cidrs();
                let mut seq = s.serialize_seq(Some(cidrs.len()))?;
                for n in &cidrs {
                    seq.serialize_element(n)?;
                }
                seq.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for AwsIpRanges {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AwsIpRanges;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(r#""builtin", "off" or a list of CIDR prefixes"#)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AwsIpRanges, E> {
                match v {
                    "builtin" => Ok(AwsIpRanges::Builtin),
                    "off" => Ok(AwsIpRanges::Off),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AwsIpRanges, A::Error> {
                let mut nets = Vec::new();
                while let Some(n) = seq.next_element::<IpNet>()? {
                    nets.push(n);
                }
                Ok(if nets.is_empty() {
                    AwsIpRanges::Off
                } else {
                    AwsRanges::from_cidrs(&nets).into()
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// Read AWS's published `ip-ranges.json`: the same as
/// [`AwsRanges::from_ip_ranges_json`].
pub fn parse_aws_ip_ranges(bytes: &[u8]) -> Result<AwsRanges, Error> {
    AwsRanges::from_ip_ranges_json(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_defaults_and_typos() {
        let c = Config::from_json(br#"{"namespace":"cl","known_cidrs":["10.0.0.0/8"]}"#).unwrap();
        assert_eq!(c.namespace, "cl");
        assert_eq!(c.max_entries, 1_000_000);
        assert_eq!(c.known_cidrs.len(), 1);
        let e = Config::from_json(br#"{"namespcae":"cl"}"#).unwrap_err();
        assert!(e.to_string().contains("namespcae"), "{e}");
        assert!(Config::from_json(br#"{"max_entries":0}"#).is_err());
        // A positional array would fill the fields in declaration order.
        for not_object in [&b"[]"[..], b" [\"cl\"]", b"null", b"1", b""] {
            let e = Config::from_json(not_object).unwrap_err().to_string();
            assert!(e.contains("must be a JSON object"), "{e}");
        }
        assert_eq!(Config::from_json(b" \n{}").unwrap(), Config::default());
        assert!(Config::from_json(br#"{"session_ttl_secs":-1}"#).is_err());
    }

    #[test]
    fn ip_ranges() {
        let r = parse_aws_ip_ranges(
            br#"{"syncToken":"1","prefixes":[{"ip_prefix":"3.0.0.0/15","region":"x","service":"AMAZON"}],
                "ipv6_prefixes":[{"ipv6_prefix":"2600:1f00::/24"}]}"#,
        )
        .unwrap();
        assert_eq!((r.v4_ranges().len(), r.v6_ranges().len()), (1, 1));
        assert_eq!(r.sync_token(), Some("1"));
        assert!(parse_aws_ip_ranges(br#"{"prefixes":[{"ip_prefix":"nope"}]}"#).is_err());
    }

    #[test]
    fn aws_ip_ranges_setting() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        // The default is the built-in snapshot.
        let d = Config::default();
        assert_eq!(d.aws_ip_ranges, AwsIpRanges::Builtin);
        assert!(std::ptr::eq(d.aws_ranges().unwrap(), AwsRanges::builtin()));
        assert_eq!(
            Config::from_json(b"{}").unwrap().aws_ip_ranges,
            AwsIpRanges::Builtin
        );
        let c = Config::from_json(br#"{"aws_ip_ranges":"builtin"}"#).unwrap();
        assert_eq!(c.aws_ip_ranges, AwsIpRanges::Builtin);
        // Off, by word or (as in v1) by an empty list.
        for off in [
            &br#"{"aws_ip_ranges":"off"}"#[..],
            br#"{"aws_ip_ranges":[]}"#,
        ] {
            let c = Config::from_json(off).unwrap();
            assert_eq!(c.aws_ip_ranges, AwsIpRanges::Off);
            assert!(c.aws_ranges().is_none());
        }
        // A CIDR list, as in v1.
        let c =
            Config::from_json(br#"{"aws_ip_ranges":["3.0.0.0/15","3.2.0.0/15","2600:1f00::/24"]}"#)
                .unwrap();
        let r = c.aws_ranges().unwrap();
        assert_eq!((r.v4_ranges().len(), r.v6_ranges().len()), (1, 1));
        assert!(r.contains(ip("3.3.0.1")) && !r.contains(ip("3.5.141.7")));
        // Cloning shares the table.
        let c2 = c.clone();
        match (&c.aws_ip_ranges, &c2.aws_ip_ranges) {
            (AwsIpRanges::Custom(a), AwsIpRanges::Custom(b)) => assert!(Arc::ptr_eq(a, b)),
            other => panic!("{other:?}"),
        }
        assert_eq!(c, c2);
        // Round trips through JSON.
        for c in [
            Config::default(),
            Config::from_json(br#"{"aws_ip_ranges":"off"}"#).unwrap(),
            c,
        ] {
            let json = serde_json::to_vec(&c).unwrap();
            assert_eq!(
                Config::from_json(&json).unwrap(),
                c,
                "{}",
                String::from_utf8_lossy(&json)
            );
        }
        assert_eq!(
            serde_json::to_value(&c2).unwrap()["aws_ip_ranges"],
            serde_json::json!(["3.0.0.0/14", "2600:1f00::/24"])
        );
        // Anything else is an error that says what is expected.
        for bad in [
            &br#"{"aws_ip_ranges":"on"}"#[..],
            br#"{"aws_ip_ranges":"Builtin"}"#,
            br#"{"aws_ip_ranges":true}"#,
            br#"{"aws_ip_ranges":null}"#,
            br#"{"aws_ip_ranges":{"prefixes":[]}}"#,
        ] {
            let e = Config::from_json(bad).unwrap_err().to_string();
            assert!(
                e.contains(r#""builtin", "off" or a list of CIDR prefixes"#),
                "{e}"
            );
        }
        let e = Config::from_json(br#"{"aws_ip_ranges":["3.0.0.0/15","nope"]}"#).unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e}");
    }
}
