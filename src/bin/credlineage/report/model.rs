//! The report's output: the credentials, roots, collisions, off-host uses and live sets it lists, as `--format json` writes them and the text and HTML views read them.

use super::*;

/// One credential set as the report shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Credential {
    pub session_fingerprint: String,
    pub access_key_id: Option<String>,
    /// The session principal's ARN, from its calls or from the issuance.
    pub principal_arn: Option<String>,
    pub credential_type: Option<String>,
    pub lineage_depth: Option<u64>,
    pub lineage_complete: Option<bool>,
    pub parent_fingerprint: Option<String>,
    /// The STS event that created it, when observed: `AssumeRole at <time>`.
    pub issued_by: Option<String>,
    pub expiration: Option<String>,
    /// Calls made with it.
    pub calls: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub source_ips: Vec<String>,
    /// Distinct source IPs (`source_ips` lists at most eight).
    pub source_ip_count: usize,
    /// Its calls marked `ec2_cred_offhost` (instance credentials used away from their instance).
    #[serde(skip_serializing_if = "is_zero")]
    pub offhost_calls: u64,
    /// Its calls were marked `offhost_ancestor`: it descends from an off-host use.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub offhost_ancestor: bool,
    /// Credentials it issued (role chaining), in order of first sight.
    pub children: Vec<Credential>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One origin and the tree of credentials that came from it.
#[derive(Debug, Clone, Serialize)]
pub struct RootEntry {
    pub lineage_root: String,
    pub lineage_root_type: Option<String>,
    /// Annotated events with this root (calls and keyless events).
    pub events: u64,
    /// Events with this root that carried no access key (console sign-in, SAML/web-identity issuance).
    pub keyless_events: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub credentials: Vec<Credential>,
}

/// One access key ID that was shared by live credential sets.
#[derive(Debug, Clone, Serialize)]
pub struct Collision {
    pub access_key_id: String,
    /// Events marked `is_key_collision` for this key.
    pub events: u64,
    /// The largest `collision_count` seen.
    pub max_collision_count: u64,
    /// Every credential set seen with this key ID.
    pub credentials: Vec<CollidingSet>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CollidingSet {
    pub session_fingerprint: String,
    pub principal_arn: Option<String>,
    pub lineage_root: Option<String>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
}

/// EC2 instance credentials used away from their instance, per instance, IP and reason.
#[derive(Debug, Clone, Serialize)]
pub struct Offhost {
    pub ec2_instance_id: String,
    pub source_ip: String,
    pub offhost_reason: String,
    pub events: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub session_fingerprints: Vec<String>,
    pub event_names: Vec<String>,
}

/// A temporary credential still live at the end of the trail.
#[derive(Debug, Clone, Serialize)]
pub struct Live {
    pub session_fingerprint: String,
    pub access_key_id: String,
    pub principal_arn: Option<String>,
    pub lineage_root: String,
    pub lineage_depth: u32,
    pub expires: String,
    /// `expires` is the observed expiration of its issuance (else issue time + the session TTL).
    pub expiration_observed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Totals {
    pub records: u64,
    pub annotated: u64,
    pub passed_through: u64,
    pub malformed: u64,
    pub first_event: Option<String>,
    pub last_event: Option<String>,
    pub key_collision_events: u64,
    pub offhost_events: u64,
    pub used_after_expiration_events: u64,
}

/// The whole report (`--format json` writes this object).
#[derive(Debug, Clone, Serialize)]
pub struct ReportOut {
    pub totals: Totals,
    pub roots: Vec<RootEntry>,
    pub collisions: Vec<Collision>,
    pub offhost: Vec<Offhost>,
    /// The end of the trail (the latest event time), at which `live` holds.
    pub live_at: Option<String>,
    pub live: Vec<Live>,
}
