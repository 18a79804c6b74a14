//! Deterministic synthetic CloudTrail trail generator: realistic records whose credential lineage is known, for tests, property checks and benchmarks of the enrichment engine.
//!
//! [`trail`] streams exactly `records` CloudTrail records (one compact JSON
//! object per [`GeneratedRecord::line`]) together with a [`Truth`]: what the
//! generator knows about the credential each record used. Same
//! [`TrailConfig`] → byte-identical lines, on every target (only `u32`/`u64`
//! random draws, no platform-width dependence). Memory is bounded whatever
//! `records` is: the pools of live users, credentials and instances have fixed
//! caps and are recycled.
//!
//! # Scenario kinds (`Truth::kind`)
//!
//! An *issuance* event (AssumeRole*, GetSessionToken, GetFederationToken,
//! CreateAccessKey) carries the kind of what it issues; every other event the
//! kind of the credential it used. [`KINDS`] lists them all:
//!
//! | kind | records |
//! |---|---|
//! | `plain` | an IAM user's long-term `AKIA…` key, ordinary calls, from the user's stable IP |
//! | `chain` | `AssumeRole` by a user key or by a temporary credential (hops 1..=4), and calls made with the result |
//! | `session_token` | `GetSessionToken` by a user key, and calls (`type: IAMUser` with an `ASIA…` key, no `sessionIssuer`) |
//! | `federation` | `GetFederationToken` by a user key, and calls (`type: FederatedUser`) |
//! | `saml` | `AssumeRoleWithSAML` (`type: SAMLUser`, no key), and calls |
//! | `web_identity` | `AssumeRoleWithWebIdentity` (Google and GitHub Actions OIDC), and calls |
//! | `service` | `AssumeRole` by `AWSService` `lambda.amazonaws.com` (session = function name), and calls |
//! | `aws_service` | an AWS service's own call, no key (`cloudtrail.amazonaws.com`, `AWS Internal`, …) |
//! | `collision` | two `AssumeRole` issuances in the same second handing one `ASIA…` id to two sessions, and calls with either |
//! | `failed_sts` | `AssumeRole` with `errorCode: AccessDenied`, `responseElements: null` (issues nothing) |
//! | `created_key` | `CreateAccessKey` by a chained credential, and later calls with the new `AKIA…` key |
//! | `ec2_launch` | `RunInstances` / `AssociateAddress` by a user key |
//! | `ec2_issue` | instance-profile `AssumeRole` by `AWSService` `ec2.amazonaws.com` (no `assumedRoleUser`) |
//! | `ec2_onhost` | a call with instance credentials from the instance's own public IP |
//! | `ec2_vpce` | a call with instance credentials through a VPC endpoint (private `10.x` IP, `vpcEndpointId`) |
//! | `ec2_offhost` | a call with instance credentials from an attacker IP (`Truth::offhost`) |
//! | `cross_account` | the role owner's copy of a cross-account `AssumeRole` (`type: AWSAccount`, no key, `sharedEventID`) |
//!
//! # What the engine author must know
//!
//! - `Truth` describes the credential *used* by the record (`None` when the
//!   record carries no key: `AWSService`, `SAMLUser`, `WebIdentityUser`,
//!   `AWSAccount`). Roots: `AKIA…` (the user key, depth 0; a created key is its
//!   own root), `ec2:<instance id>`, `saml:<identityProvider>/<userName>`,
//!   `web_identity:<identityProvider>/<userName>`,
//!   `service:lambda.amazonaws.com/<function>`; each hop adds 1 to the depth.
//!   The credential an issuance event *creates* has the caller's root and
//!   depth + 1 (for key-less callers: the root above, depth 1).
//! - Every issued set's calls carry `sessionContext.attributes.creationDate`
//!   equal to the issuance `eventTime`, and the ARN rebuilt from
//!   `roleArn` + `roleSessionName` (`federatedUser.arn` for federation, the
//!   user ARN for session tokens). All key ids are unique except the
//!   deliberate collision pairs, whose two ARNs always differ.
//! - `Truth::collision` is the batch-mode answer: it is true on *both*
//!   issuances of a pair. A streaming engine cannot know it on the first
//!   issuance (the second one is not seen yet).
//! - Instance id: in the issuance `requestParameters.roleSessionName`; on calls
//!   in `principalId` (`AROA…:i-…`), the session part of `arn`, plus
//!   `sessionContext.ec2RoleDelivery: "2.0"`. `RunInstances` gives the private
//!   IP (`responseElements.instancesSet.items[].privateIpAddress`); about half
//!   the instances get an `AssociateAddress` (`requestParameters.publicIp`),
//!   the others are learned by trust-on-first-use: the first call of every
//!   instance credential set comes from the instance's public IP.
//! - Off-host rule: an off-host call comes from the IP of the instance
//!   account's first IAM user (`ext-contractor`, an attacker-range IP), who
//!   made a call from it within the hour before; so both
//!   `new_ip_for_instance` and `ip_used_by_other_identity` hold. Off-host use
//!   happens only more than `disorder` seconds after that instance's first
//!   use, so trust-on-first-use learns the right IP even out of order.
//!   IP ranges never overlap: users `24/50/68/71/73/98/99/104.x`, SAML and
//!   Google users the same, GitHub runners `4/20/40.x`, instances
//!   `3/18/34/44/52/54.x`, Lambda `13/15.x`, attackers `45/91/185/193.x`.
//!   VPC-endpoint calls carry `vpcEndpointId` and `vpcEndpointAccountId` (the
//!   instance's own account).
//! - With `disorder > 0` records are delivered up to `disorder` seconds out of
//!   `eventTime` order, so a call can precede its issuance; `Truth` is still
//!   the batch (time-ordered) answer.
//! - Session tokens start with `IQoJb3JpZ2luX2Vj`, so a test can check that
//!   none leaks into an annotation.
//! - `accounts` is clamped to `1..=1000`, `start_time` to `0..=253402300799`.
//! - `Truth` follows SPEC v1.1 (SAML roots are `saml:<provider name>/<user>`).
//!   For the v1 mix that is v1.1 *with the AWS ranges turned off*: its
//!   instance addresses are not chosen inside AWS's ranges.
//!
//! # SPEC v1.1 shapes (`TrailConfig::v11_shapes`, `redelivery`; CLI `--shapes v1.1`)
//!
//! Off by default, so the v1 mix stays byte for byte what it was. With them,
//! `Truth` is the answer under the default configuration (built-in AWS
//! ranges on), in batch (time-order) mode:
//!
//! | kind | records | truth |
//! |---|---|---|
//! | `ec2_vpce` | also every call of a VPC-endpoint-only instance (¼ of instances: no public address ever; `vpcEndpointAccountId` = own account) | not off-host |
//! | `ec2_ssrf` | stolen instance credentials from `203.0.113.x` (never an identity's address) | off-host, `outside_aws` |
//! | `ec2_offhost` | stolen instance credentials from the address of `ext-contractor` (`198.51.100.x` / `192.0.2.x`, one per account; that user called from it in an earlier second within the hour, and no other identity ever does) | off-host, `ip_used_by_other_identity`, `offhost_other_identity` = its user ARN |
//! | `ec2_nat` / `nat_user` | instances behind the account's NAT gateway (an EC2 address of the AWS ranges) and the CI user `ci-nat-runner` whose key calls from it | not off-host |
//! | `ec2_pivot` / `pivot_session` | `AssumeRole` with stolen instance credentials from a fresh `91.x` address (no AWS prefix there), then the new session's calls (and chains from it) from there, in later seconds | the `AssumeRole` off-host, `outside_aws`; the session's calls `offhost_ancestor`, not off-host |
//! | `ec2_eip_move` / `ec2_moved` | `AssociateAddress` by `allocationId` alone (in a second of its own), then on-host calls from the instance's new EC2 address | not off-host |
//! | `ec2_ipv6` | dual-stack instances' calls from their IPv6 address (EC2 IPv6 prefix); they also call over IPv4 | not off-host |
//! | `ec2_onhost` | instances' own addresses come from EC2 prefixes of the AWS ranges | not off-host |
//! | `fake_instance` | `GetFederationToken` / `AssumeRole` (half the time the instance's own role) by a user with the name of a running instance, and calls from the user's address (≥ 1 s after) | root the user's key, depth 1, no `ec2_instance_id`, not off-host |
//! | `sso` / `sso_unobserved` | Identity Center: `AssumeRoleWithSAML` via `AWSSSO_<id>_DO_NOT_DELETE` into `AWSReservedSSO_<set>_<hash>`, and sessions of those roles without any sign-in in the trail | root `saml:AWSSSO/<user>`, depth 1 (`lineage_complete` unasserted when unobserved) |
//! | `service_linked` | sessions of `role/aws-service-role/<service>/AWSServiceRoleFor…` roles, from the service, no issuance | root `service:<service>/<session>`, depth 1, complete |
//! | `same_second_chain` | 2-3 `AssumeRole` hops in one second, written child first | the caller's root and depth, as ever |
//!
//! About 5% of records carry a CloudTrail Lake `eventTime`
//! (`2024-08-01 12:00:05.000`, or without fraction; `Truth::lake_time`).
//! `redelivery`: 1% delivered twice (`Truth::duplicate` on the copy, up to
//! ten minutes later), 0.5% delivered 2-15 minutes late (`Truth::late`);
//! the truth is unchanged and a duplicate never makes a collision.
//! [`Trail::lines`] optionally wraps records in CloudWatch Logs subscription
//! messages (CLI `--cloudwatch-per-mille`).

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::fmt::Write as _;

use chrono::DateTime;
use fastrand::Rng;

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Exact number of records produced.
    pub records: usize,
    /// Unix seconds of the first event.
    pub start_time: i64,
    /// Number of AWS accounts (clamped to `1..=1000`).
    pub accounts: usize,
    /// Max seconds by which delivery order may differ from `eventTime` order
    /// (0 = sorted by time).
    pub disorder: u32,
    /// The SPEC v1.1 shapes (module docs, "SPEC v1.1 shapes"): addresses
    /// inside / outside AWS's published ranges, VPC-endpoint-only instances
    /// and their SSRF theft, NAT gateways shared with a CI user, pivots from
    /// stolen instance credentials, Elastic IP moves by allocation, dual
    /// stack, sessions named like an instance, IAM Identity Center,
    /// service-linked roles, same-second chains, CloudTrail Lake times.
    /// Off (the default): the v1 mix, byte for byte as before.
    pub v11_shapes: bool,
    /// CloudTrail's at-least-once delivery: about 1% of records delivered
    /// twice (the copy at a random distance later, `Truth::duplicate`) and
    /// 0.5% delivered 2 to 15 minutes late (`Truth::late`). Off by default.
    pub redelivery: bool,
}

impl Default for TrailConfig {
    fn default() -> Self {
        TrailConfig {
            seed: 1,
            records: 10_000,
            start_time: 1_722_500_000,
            accounts: 3,
            disorder: 0,
            v11_shapes: false,
            redelivery: false,
        }
    }
}

impl TrailConfig {
    /// Every v1.1 shape on (`v11_shapes` and `redelivery`), other fields as
    /// `Default`.
    pub fn v11() -> Self {
        TrailConfig {
            v11_shapes: true,
            redelivery: true,
            ..TrailConfig::default()
        }
    }
}

/// What the generator knows about the record it made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truth {
    /// Expected `lineage_root` of the credential used by this call (SPEC 3.2
    /// format), `None` when the record carries no key.
    pub lineage_root: Option<String>,
    /// Hops from the root (long-term key used directly = 0; a credential it
    /// issued = 1; …).
    pub lineage_depth: Option<u32>,
    /// Expected `lineage_complete`: `Some(true)` when every ancestor's
    /// issuance is in the trail or the root needs none (long-term keys,
    /// service-linked roles); `None` where SPEC leaves it open (sessions of
    /// Identity Center roles whose sign-in is not in the trail, and their
    /// descendants).
    pub lineage_complete: Option<bool>,
    /// This call used EC2 instance credentials from an address that is not
    /// the instance's (`ec2_cred_offhost`).
    pub offhost: bool,
    /// Expected `offhost_reason` when `offhost`. With `v11_shapes`, under the
    /// default configuration (built-in AWS ranges on); for the v1 mix, under
    /// SPEC v1.1 with the AWS ranges turned off (its instance addresses are
    /// not chosen inside AWS's ranges): `new_ip_for_instance`.
    pub offhost_reason: Option<&'static str>,
    /// Expected `offhost_other_identity` (with `ip_used_by_other_identity`).
    pub offhost_other_identity: Option<String>,
    /// Expected `offhost_ancestor`: the credential used was issued, directly
    /// or further up its chain, by a call flagged off-host.
    pub offhost_ancestor: bool,
    /// Expected `ec2_instance_id`: `Some` exactly on calls made with instance
    /// credentials (never on sessions merely *named* like an instance).
    pub ec2_instance_id: Option<String>,
    /// The access key ID used (or issued) is shared by two live sets
    /// generated in the same second.
    pub collision: bool,
    /// Scenario name, one of [`KINDS`].
    pub kind: &'static str,
    /// This line is the second delivery of an earlier record (`redelivery`);
    /// everything else in `Truth` is that record's.
    pub duplicate: bool,
    /// This record is delivered minutes after later events (`redelivery`).
    pub late: bool,
    /// `eventTime` is written in CloudTrail Lake's form
    /// (`2024-08-01 12:00:05.000`, or without the fraction).
    pub lake_time: bool,
}

/// One generated CloudTrail record and its truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedRecord {
    /// One compact JSON object, no newline.
    pub line: String,
    /// What the generator knows about it.
    pub truth: Truth,
}

/// Streaming iterator over a synthetic trail; yields exactly
/// `TrailConfig::records` items.
pub struct Trail {
    sim: Sim,
    remaining: usize,
    disorder: u32,
    redelivery: bool,
    order_rng: Rng,
    /// Which records are delivered twice or late: its own stream, so the
    /// same records are, whatever `disorder` is.
    redelivery_rng: Rng,
    heap: BinaryHeap<Delayed>,
    seq: u64,
}

/// The first `n` records of the default trail with this seed, as bytes (what
/// the benchmarks and tests feed the enricher).
pub fn trail_lines(seed: u64, n: usize) -> Vec<Vec<u8>> {
    trail(TrailConfig {
        seed,
        records: n,
        ..Default::default()
    })
    .map(|r| r.line.into_bytes())
    .collect()
}

/// Build the trail described by `cfg`.
pub fn trail(cfg: TrailConfig) -> Trail {
    Trail {
        sim: Sim::new(&cfg),
        remaining: cfg.records,
        disorder: cfg.disorder,
        redelivery: cfg.redelivery,
        order_rng: Rng::with_seed(cfg.seed ^ 0x6f72_6465_725f_726e),
        redelivery_rng: Rng::with_seed(cfg.seed ^ 0x7265_6465_6c69_7672),
        heap: BinaryHeap::new(),
        seq: 0,
    }
}

/// Encode an account id into a new-format access key id with the given 4-char
/// prefix ("AKIA"/"ASIA"), inverse of SPEC 3.6. Only the low 40 bits of
/// `account` fit (every 12-digit account does).
pub fn key_id_for_account(prefix: &str, account: u64, rng: &mut Rng) -> String {
    let low7 = rng.u8(..) & 0x7f;
    let tail = rng.u32(..);
    encode_key(prefix, account, low7, tail)
}

/// The scenario names of the v1 mix (`v11_shapes` off): the first
/// `V1_KINDS.len()` entries of [`KINDS`].
pub const V1_KINDS: [&str; Kind::V1] = {
    let mut out = [""; Kind::V1];
    let mut i = 0;
    while i < out.len() {
        out[i] = Kind::ALL[i].name();
        i += 1;
    }
    out
};

/// Every scenario name `Truth::kind` can take.
pub const KINDS: [&str; Kind::ALL.len()] = {
    let mut out = [""; Kind::ALL.len()];
    let mut i = 0;
    while i < out.len() {
        out[i] = Kind::ALL[i].name();
        i += 1;
    }
    out
};

impl Iterator for Trail {
    type Item = GeneratedRecord;

    fn next(&mut self) -> Option<GeneratedRecord> {
        if self.remaining == 0 {
            return None;
        }
        let rec = if self.disorder == 0 && !self.redelivery {
            self.pull().1
        } else {
            self.next_delayed()
        };
        self.remaining -= 1;
        Some(rec)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Trail {}

/// Records kept back at most, when delivery is out of order.
const HEAP_CAP: usize = 4096;

impl Trail {
    /// The next record in generation (eventTime) order.
    fn pull(&mut self) -> (i64, GeneratedRecord) {
        loop {
            if let Some(x) = self.sim.out.pop_front() {
                return x;
            }
            self.sim.step();
        }
    }

    /// Delivery order: each record gets a key `eventTime + [0, disorder]`;
    /// the smallest key leaves once no record still to come can have a
    /// smaller one (or the buffer is full). Either way no record is delivered
    /// more than `disorder` seconds behind one that follows it.
    fn next_delayed(&mut self) -> GeneratedRecord {
        loop {
            if self.sim.out.is_empty() {
                self.sim.step();
                continue;
            }
            let t_next = self.sim.out.front().map_or(i64::MAX, |x| x.0);
            let ready = self
                .heap
                .peek()
                .is_some_and(|top| top.key <= t_next || self.heap.len() >= HEAP_CAP);
            if ready && let Some(d) = self.heap.pop() {
                return d.rec;
            }
            let (t, mut rec) = self.pull();
            let jitter = self.order_rng.u64(..=u64::from(self.disorder));
            let mut key = t.saturating_add(i64::try_from(jitter).unwrap_or(i64::MAX));
            let mut copy = None;
            if self.redelivery {
                let r = self.redelivery_rng.u64(..1000);
                // An issuance is never held back minutes: near the end of a
                // trail of fixed length it could fall off the end while the
                // calls made with what it issued stay in, and their truth
                // (its root) would be wrong. Calls before their issuance
                // come from `disorder` and the rule tests.
                let issues = rec.line.contains(r#""credentials":{"accessKeyId""#);
                if r < LATE_PER_MILLE && !issues {
                    // Delivered minutes after later events.
                    let late = self.redelivery_rng.u64(120..=900);
                    key = key.max(t.saturating_add(i64::try_from(late).unwrap_or(0)));
                    rec.truth.late = true;
                } else if r < LATE_PER_MILLE + DUPLICATE_PER_MILLE {
                    // Delivered twice: the copy up to ten minutes later.
                    let later = self.redelivery_rng.u64(..=600);
                    let mut dup = rec.clone();
                    dup.truth.duplicate = true;
                    copy = Some((key.saturating_add(i64::try_from(later).unwrap_or(0)), dup));
                }
            }
            self.push_delayed(key, rec);
            if let Some((k, dup)) = copy {
                // After the original: same key, later sequence number.
                self.push_delayed(k, dup);
            }
        }
    }

    fn push_delayed(&mut self, key: i64, rec: GeneratedRecord) {
        self.seq = self.seq.wrapping_add(1);
        self.heap.push(Delayed {
            key,
            seq: self.seq,
            rec,
        });
    }

    /// The trail as output lines: each record on its own line, or — with
    /// `cloudwatch_per_mille` > 0 — that share of lines a CloudWatch Logs
    /// subscription message (`{"messageType":"DATA_MESSAGE",…,"logEvents":
    /// [{"id","timestamp","message":"<record JSON>"},…]}`) holding the next
    /// 1 to 5 records of the trail. An engine that unrolls the envelopes
    /// (SPEC 2, v1.1) writes one output line per record, in order, so the
    /// concatenated `truths` line up with its output. 0: exactly the lines of
    /// the trail, one per record.
    pub fn lines(self, cloudwatch_per_mille: u16) -> Lines {
        let seed = self.sim.seed;
        Lines {
            trail: self,
            per_mille: u64::from(cloudwatch_per_mille.min(1000)),
            rng: Rng::with_seed(seed ^ 0x6377_6c6f_6773_5f72),
        }
    }
}

/// One output line of [`Trail::lines`] and the truths of the records in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedLine {
    /// One compact JSON object, no newline.
    pub line: String,
    /// One per CloudTrail record in the line, in order.
    pub truths: Vec<Truth>,
}

/// Iterator of [`Trail::lines`].
pub struct Lines {
    trail: Trail,
    per_mille: u64,
    rng: Rng,
}

impl Iterator for Lines {
    type Item = GeneratedLine;

    fn next(&mut self) -> Option<GeneratedLine> {
        let first = self.trail.next()?;
        if self.per_mille == 0 || self.rng.u64(..1000) >= self.per_mille {
            return Some(GeneratedLine {
                line: first.line,
                truths: vec![first.truth],
            });
        }
        let n = self.rng.usize(1..=5);
        let mut recs = vec![first];
        while recs.len() < n {
            match self.trail.next() {
                Some(r) => recs.push(r),
                None => break,
            }
        }
        let line = cloudwatch_envelope(&mut self.rng, &recs);
        Some(GeneratedLine {
            line,
            truths: recs.into_iter().map(|r| r.truth).collect(),
        })
    }
}

/// Share of records delivered late / twice with `redelivery`.
const LATE_PER_MILLE: u64 = 5;
const DUPLICATE_PER_MILLE: u64 = 10;

/// A top-level string member of a generated record (no escapes in the
/// generator's values of these keys).
fn member<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\":\"");
    let start = line.find(&pat)? + pat.len();
    let len = line.get(start..)?.find('"')?;
    line.get(start..start + len)
}

/// Unix milliseconds of a generated record's `eventTime` (ISO or Lake form).
fn event_millis(line: &str) -> i64 {
    let Some(t) = member(line, "eventTime") else {
        return 0;
    };
    let parsed = chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%SZ")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f"));
    parsed.map_or(0, |d| d.and_utc().timestamp_millis())
}

/// CloudWatch Logs subscription data (what a subscription filter delivers,
/// after gunzip) for a CloudTrail log group holding `recs`.
fn cloudwatch_envelope(rng: &mut Rng, recs: &[GeneratedRecord]) -> String {
    let head = recs.first().map_or("", |r| r.line.as_str());
    let owner = member(head, "recipientAccountId").unwrap_or("000000000000");
    let region = member(head, "awsRegion").unwrap_or("us-east-1");
    let mut s = String::with_capacity(recs.iter().map(|r| r.line.len() + 160).sum::<usize>() + 400);
    s.push_str("{\"messageType\":\"DATA_MESSAGE\",\"owner\":");
    push_json_str(&mut s, owner);
    s.push_str(",\"logGroup\":");
    push_json_str(
        &mut s,
        &format!(
            "aws-cloudtrail-logs-{owner}-{:08x}",
            mix(rng.u64(..), 1) as u32
        ),
    );
    s.push_str(",\"logStream\":");
    push_json_str(&mut s, &format!("{owner}_CloudTrail_{region}"));
    s.push_str(",\"subscriptionFilters\":[\"cloudtrail-to-siem\"],\"logEvents\":[");
    for (i, r) in recs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let ms = event_millis(&r.line);
        // CloudWatch's event ids: 56 decimal digits.
        let _ = write!(
            s,
            "{{\"id\":\"{:019}{:019}{:018}\",\"timestamp\":{ms},\"message\":",
            rng.u64(..) % 10_000_000_000_000_000_000,
            rng.u64(..) % 10_000_000_000_000_000_000,
            rng.u64(..) % 1_000_000_000_000_000_000
        );
        push_json_str(&mut s, &r.line);
        s.push('}');
    }
    s.push_str("]}");
    s
}

struct Delayed {
    key: i64,
    seq: u64,
    rec: GeneratedRecord,
}

impl Ord for Delayed {
    // Reversed: BinaryHeap is a max-heap, we want the smallest (key, seq).
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .key
            .cmp(&self.key)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Delayed {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key && self.seq == other.seq
    }
}

impl Eq for Delayed {}

// ---------------------------------------------------------------------------
// Scenario kinds

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Plain,
    Chain,
    SessionToken,
    Federation,
    Saml,
    WebIdentity,
    Service,
    AwsService,
    Collision,
    FailedSts,
    CreatedKey,
    Ec2Launch,
    Ec2Issue,
    Ec2Onhost,
    Ec2Vpce,
    Ec2Offhost,
    CrossAccount,
    Ec2Ssrf,
    Ec2Nat,
    NatUser,
    Ec2Pivot,
    PivotSession,
    Ec2EipMove,
    Ec2Moved,
    Ec2Ipv6,
    FakeInstance,
    Sso,
    SsoUnobserved,
    ServiceLinked,
    SameSecondChain,
}

impl Kind {
    /// The kinds of the v1 mix, in [`KINDS`] order; the rest need `v11_shapes`.
    const V1: usize = 17;

    const ALL: [Kind; 30] = [
        Kind::Plain,
        Kind::Chain,
        Kind::SessionToken,
        Kind::Federation,
        Kind::Saml,
        Kind::WebIdentity,
        Kind::Service,
        Kind::AwsService,
        Kind::Collision,
        Kind::FailedSts,
        Kind::CreatedKey,
        Kind::Ec2Launch,
        Kind::Ec2Issue,
        Kind::Ec2Onhost,
        Kind::Ec2Vpce,
        Kind::Ec2Offhost,
        Kind::CrossAccount,
        Kind::Ec2Ssrf,
        Kind::Ec2Nat,
        Kind::NatUser,
        Kind::Ec2Pivot,
        Kind::PivotSession,
        Kind::Ec2EipMove,
        Kind::Ec2Moved,
        Kind::Ec2Ipv6,
        Kind::FakeInstance,
        Kind::Sso,
        Kind::SsoUnobserved,
        Kind::ServiceLinked,
        Kind::SameSecondChain,
    ];

    const fn name(self) -> &'static str {
        match self {
            Kind::Plain => "plain",
            Kind::Chain => "chain",
            Kind::SessionToken => "session_token",
            Kind::Federation => "federation",
            Kind::Saml => "saml",
            Kind::WebIdentity => "web_identity",
            Kind::Service => "service",
            Kind::AwsService => "aws_service",
            Kind::Collision => "collision",
            Kind::FailedSts => "failed_sts",
            Kind::CreatedKey => "created_key",
            Kind::Ec2Launch => "ec2_launch",
            Kind::Ec2Issue => "ec2_issue",
            Kind::Ec2Onhost => "ec2_onhost",
            Kind::Ec2Vpce => "ec2_vpce",
            Kind::Ec2Offhost => "ec2_offhost",
            Kind::CrossAccount => "cross_account",
            Kind::Ec2Ssrf => "ec2_ssrf",
            Kind::Ec2Nat => "ec2_nat",
            Kind::NatUser => "nat_user",
            Kind::Ec2Pivot => "ec2_pivot",
            Kind::PivotSession => "pivot_session",
            Kind::Ec2EipMove => "ec2_eip_move",
            Kind::Ec2Moved => "ec2_moved",
            Kind::Ec2Ipv6 => "ec2_ipv6",
            Kind::FakeInstance => "fake_instance",
            Kind::Sso => "sso",
            Kind::SsoUnobserved => "sso_unobserved",
            Kind::ServiceLinked => "service_linked",
            Kind::SameSecondChain => "same_second_chain",
        }
    }
}

// ---------------------------------------------------------------------------
// Static vocabulary

const REGIONS: &[&str] = &[
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-2",
    "ap-northeast-1",
];
const HUMAN_ROLES: &[&str] = &[
    "OrganizationAccountAccessRole",
    "Admin",
    "ReadOnly",
    "DevOpsDeploy",
    "DataEngineer",
    "SecurityAudit",
    "BreakGlass",
    "ci-runner",
];
const EC2_ROLES: &[&str] = &[
    "ec2-web-app-role",
    "ec2-batch-worker-role",
    "ec2-bastion-role",
];
const FUNCTIONS: &[&str] = &[
    "orders-processor",
    "thumbnail-generator",
    "nightly-report",
    "slack-notifier",
    "etl-loader",
];
const USER_NAMES: &[&str] = &[
    "christophe",
    "deploy-bot",
    "terraform",
    "jenkins",
    "backup-svc",
    "data-sync",
    "monitoring",
    "alice.admin",
    "bob.dev",
    "carol.ops",
];
const ATTACKER_USER: &str = "ext-contractor";
const HUMANS: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "oscar",
];
const FED_NAMES: &[&str] = &[
    "deploy-broker",
    "contractor",
    "readonly-broker",
    "ci-federated",
    "support-session",
];
const REPOS: &[&str] = &[
    "web-frontend",
    "payments-api",
    "infra-live",
    "data-pipeline",
];
const USER_AGENTS: &[&str] = &[
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0-1014-aws exe/x86_64.ubuntu.22 prompt/off command/ec2.describe-instances",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1.79 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
    "aws-sdk-go-v2/1.32.3 os/linux lang/go#1.23.1 md/GOOS#linux md/GOARCH#amd64 api/sts#1.26.2",
    "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.42.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go/1.51.6 (go1.22.1; linux; amd64)",
    "aws-cli/2.15.30 Python/3.11.8 Darwin/23.4.0 exe/x86_64 prompt/off command/s3.ls",
];
const ATTACKER_UA: &str = "aws-cli/1.32.69 Python/3.11.8 Linux/6.6.9-amd64 botocore/1.34.69";
const EC2_UAS: &[&str] = &[
    "aws-sdk-java/2.25.13 Linux/5.10.215-203.850.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10 vendor/Amazon.com_Inc. md/internal exec-env/AWS_ECS_EC2 io/sync http/Apache cfg/retry-mode/legacy",
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.82-99.168.amzn2023.x86_64 exe/x86_64.amzn.2023 prompt/off command/s3.cp",
];
const LAMBDA_UA: &str =
    "aws-sdk-nodejs/2.1354.0 linux/v18.19.0 exec-env/AWS_Lambda_nodejs18.x promise";
const BROWSER_UA: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15";
const MOBILE_UA: &str = "aws-sdk-js/3.540.0 ua/2.0 os/android#14 lang/js md/rn api/sts#3.540.0";
const GITHUB_UA: &str = "aws-sdk-js/3.540.0 ua/2.0 os/linux#6.5.0-1017-azure lang/js md/nodejs#20.11.1 api/sts#3.540.0 configure-aws-credentials-for-github-actions";
const GOOGLE: &str = "accounts.google.com";
const GITHUB_OIDC: &str = "token.actions.githubusercontent.com";
const TOKEN_PREFIX: &str = "IQoJb3JpZ2luX2Vj";
const FED_POLICY: &str = "{\n\t\"Version\": \"2012-10-17\",\n\t\"Statement\": [\n\t\t{\"Effect\": \"Allow\", \"Action\": \"s3:GetObject\", \"Resource\": \"*\"}\n\t]\n}";

const USER_NETS: &[u8] = &[24, 50, 68, 71, 73, 98, 99, 104];
const GITHUB_NETS: &[u8] = &[4, 20, 40];
const INSTANCE_NETS: &[u8] = &[3, 18, 34, 44, 52, 54];
const LAMBDA_NETS: &[u8] = &[13, 15];
const ATTACKER_NETS: &[u8] = &[45, 91, 185, 193];

// --- v1.1 address pools (checked against AWS's ip-ranges.json, syncToken
// 1787411825, 2026-08-22: see `/work/shared/data/aws-ip-ranges/`) ---

/// EC2 prefixes (`service: EC2`) of the AWS ranges: instances' public
/// addresses, NAT gateways and Elastic IPs. (first octets, prefix length)
const AWS_V4: &[([u8; 4], u32)] = &[
    ([3, 224, 0, 0], 12),
    ([34, 192, 0, 0], 12),
    ([44, 192, 0, 0], 11),
    ([54, 144, 0, 0], 14),
    ([52, 4, 0, 0], 14),
    ([18, 232, 0, 0], 14),
    ([35, 160, 0, 0], 13),
    ([52, 208, 0, 0], 13),
];
/// EC2 IPv6 prefixes of the AWS ranges (dual-stack instances).
const AWS_V6: &[(u128, u32)] = &[
    (0x2600_1f18_0000_0000_0000_0000_0000_0000, 33),
    (0x2a05_d018_0000_0000_0000_0000_0000_0000, 35),
    (0x2600_1f14_0000_0000_0000_0000_0000_0000, 34),
];
/// `91.0.0.0/8`: no prefix of the AWS ranges inside; attackers' pivot
/// addresses, one per pivot.
const PIVOT_NET: u8 = 91;
/// Outside AWS whatever the ranges file says (documentation ranges, SPEC
/// 3.5): the attacker user `ext-contractor` of account *k* (k < 508; beyond,
/// `193.0.0.0/8`, which holds no AWS prefix either).
const DOC_NETS: [[u8; 3]; 2] = [[198, 51, 100], [192, 0, 2]];
/// `203.0.113.0/24`: SSRF attackers' addresses, never used by an identity.
const SSRF_NET: [u8; 3] = [203, 0, 113];

/// IAM Identity Center permission sets (`AWSReservedSSO_<name>_<hash>` roles).
const SSO_PERMISSION_SETS: &[&str] = &[
    "AdministratorAccess",
    "ReadOnlyAccess",
    "PowerUserAccess",
    "ViewOnlyAccess",
];
/// Service-linked roles: (role name, service of the role path, session name).
const SERVICE_LINKED: &[(&str, &str, &str)] = &[
    (
        "AWSServiceRoleForAutoScaling",
        "autoscaling.amazonaws.com",
        "AutoScaling",
    ),
    (
        "AWSServiceRoleForElasticLoadBalancing",
        "elasticloadbalancing.amazonaws.com",
        "ElasticLoadBalancing",
    ),
    (
        "AWSServiceRoleForConfig",
        "config.amazonaws.com",
        "AWSConfig-Describe",
    ),
    (
        "AWSServiceRoleForAmazonGuardDuty",
        "guardduty.amazonaws.com",
        "AmazonGuardDuty",
    ),
];
/// Share of records (‰) whose `eventTime` is in CloudTrail Lake's form.
const LAKE_PER_MILLE: u64 = 50;

const STS: &str = "sts.amazonaws.com";
const IAM: &str = "iam.amazonaws.com";
const EC2: &str = "ec2.amazonaws.com";

/// Ordinary calls: (eventSource, eventName, readOnly).
const APIS: &[(&str, &str, bool)] = &[
    (EC2, "DescribeInstances", true),
    (EC2, "DescribeSecurityGroups", true),
    (EC2, "DescribeVolumes", true),
    (EC2, "DescribeRegions", true),
    (EC2, "CreateTags", false),
    (STS, "GetCallerIdentity", true),
    (IAM, "ListRoles", true),
    (IAM, "GetUser", true),
    (IAM, "ListAttachedRolePolicies", true),
    ("s3.amazonaws.com", "ListBuckets", true),
    ("s3.amazonaws.com", "GetBucketPolicy", true),
    ("ssm.amazonaws.com", "DescribeInstanceInformation", true),
    ("ssm.amazonaws.com", "GetParameter", true),
    ("secretsmanager.amazonaws.com", "GetSecretValue", true),
    ("lambda.amazonaws.com", "ListFunctions20150331", true),
    ("cloudtrail.amazonaws.com", "DescribeTrails", true),
    ("kms.amazonaws.com", "ListKeys", true),
    ("logs.amazonaws.com", "DescribeLogGroups", true),
    ("dynamodb.amazonaws.com", "DescribeTable", true),
];

/// AWS services' own calls: (invokedBy, sourceIPAddress, eventSource, eventName).
const SERVICE_CALLS: &[(&str, &str, &str, &str)] = &[
    (
        "cloudtrail.amazonaws.com",
        "cloudtrail.amazonaws.com",
        "kms.amazonaws.com",
        "GenerateDataKey",
    ),
    (
        "config.amazonaws.com",
        "config.amazonaws.com",
        "s3.amazonaws.com",
        "GetBucketAcl",
    ),
    (
        "ssm.amazonaws.com",
        "ssm.amazonaws.com",
        "kms.amazonaws.com",
        "Decrypt",
    ),
    (
        "access-analyzer.amazonaws.com",
        "AWS Internal",
        IAM,
        "GetRole",
    ),
];

// Pool caps: memory is bounded whatever the number of records.
const MAX_ACCOUNTS: usize = 1000;
const BACKDOORS_PER_ACCOUNT: usize = 2;
const CRED_CAP: usize = 4096;
const INSTANCE_CAP: usize = 1024;
const INSTANCES_PER_ACCOUNT: usize = 4;
const FRESH_CAP: usize = 64;
/// Share of steps (‰) given to the shapes only the v1.1 mix has.
const V11_STEP_PER_MILLE: u64 = 150;
const MAX_DEPTH: u32 = 4;
const MAX_TS: i64 = 253_402_300_799;

// ---------------------------------------------------------------------------
// State

struct Role {
    name: String,
    id: String,
    arn: String,
}

struct User {
    id: u64,
    name: String,
    principal_id: String,
    arn: String,
    key: String,
    ip: String,
    ua: &'static str,
    last_call: Option<i64>,
}

struct Account {
    id_str: String,
    region: &'static str,
    /// `HUMAN_ROLES`, then `EC2_ROLES`, then one per `FUNCTIONS`.
    roles: Vec<Role>,
    /// Fixed for the trail; index 0 is the attacker-IP user.
    users: Vec<User>,
    /// Users whose key a tracked credential created (`created_key`).
    backdoors: Vec<User>,
    vpce: String,
    name_qualifier: String,
    saml_provider: String,
    google_aud: String,
    salt: u64,
    /// What only the v1.1 shapes use.
    v11: Option<Box<AccountV11>>,
}

struct AccountV11 {
    /// `…:saml-provider/AWSSSO_<id>_DO_NOT_DELETE`.
    sso_provider: String,
    /// Index in `roles` of the first `AWSReservedSSO_…` role (one per
    /// `SSO_PERMISSION_SETS`), then of the first service-linked role.
    sso_roles: usize,
    slr_roles: usize,
    /// The NAT gateway's (AWS-owned) public address.
    nat_ip: String,
    /// A CI user whose long-term key calls from behind the NAT gateway.
    ci: User,
}

enum Ident {
    Role(usize),
    SessionToken,
    Federated,
}

struct IssuerUser {
    name: String,
    principal_id: String,
    arn: String,
}

struct Ec2 {
    private_ip: String,
    first_use: Option<i64>,
    net: Net,
    /// Dual stack: the instance's IPv6 address.
    ipv6: Option<String>,
    /// Its Elastic IP was moved by `allocationId` (v1.1).
    moved: bool,
}

/// How an instance reaches AWS (v1.1 shapes; `Public` in the v1 mix).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Net {
    /// Its own public address (an Elastic IP or learned on first use).
    Public,
    /// Only through the account's VPC endpoint: no public address at all.
    VpceOnly,
    /// Through the account's NAT gateway (shared with other instances and the CI user).
    Nat,
    /// Its own public IPv4 address and an IPv6 address.
    DualStack,
}

struct WebId {
    provider: String,
    aud: String,
    sub: String,
}

struct Cred {
    id: u64,
    kind: Kind,
    account: usize,
    key: String,
    ident: Ident,
    arn: String,
    principal_id: String,
    creation: String,
    expires: i64,
    root: String,
    depth: u32,
    ip: String,
    ua: &'static str,
    mfa: bool,
    collision: bool,
    used: bool,
    issuer_user: Option<Box<IssuerUser>>,
    ec2: Option<Box<Ec2>>,
    web: Option<Box<WebId>>,
    /// `Truth::lineage_complete` of its calls.
    complete: Option<bool>,
    /// Issued (directly or up the chain) by a call flagged off-host.
    ancestor: bool,
    /// `userIdentity.invokedBy` (service-linked role sessions).
    invoked_by: Option<&'static str>,
}

#[derive(Clone, Copy)]
enum Fresh {
    Cred(u64),
    Instance(u64),
    Backdoor(usize, u64),
}

#[derive(Clone, Copy)]
enum Caller {
    User(usize, usize),
    Cred(usize),
    /// An instance's credentials (`Sim::instances`), in an attacker's hands.
    Instance(usize),
}

/// Owned facts about a caller, so records can be written while state mutates.
struct CallerInfo {
    account: usize,
    root: String,
    depth: u32,
    ip: String,
    ua: &'static str,
    collision: bool,
    principal_id: String,
    arn: String,
    hint: String,
    complete: Option<bool>,
    ancestor: bool,
    instance: Option<String>,
}

impl CallerInfo {
    fn truth(&self, kind: Kind) -> Truth {
        let mut t = key_truth(&self.root, self.depth, kind, self.collision, false);
        t.lineage_complete = self.complete;
        t.offhost_ancestor = self.ancestor;
        t.ec2_instance_id.clone_from(&self.instance);
        t
    }
}

/// Random source, clock and the per-second `eventTime` cache.
struct Ctx {
    rng: Rng,
    now: i64,
    cached_sec: i64,
    cached_iso: String,
}

impl Ctx {
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.rng.u64(..n) }
    }

    fn index(&mut self, len: usize) -> usize {
        // The result is < len, so it fits back into usize.
        self.below(len as u64) as usize
    }

    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }

    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo.saturating_add(self.below(hi.saturating_sub(lo).saturating_add(1)))
    }

    fn pick(&mut self, items: &[&'static str]) -> &'static str {
        let i = self.index(items.len());
        items.get(i).copied().unwrap_or("")
    }

    fn now_iso(&mut self) -> &str {
        if self.cached_sec != self.now || self.cached_iso.is_empty() {
            self.cached_sec = self.now;
            self.cached_iso = iso(self.now);
        }
        &self.cached_iso
    }

    fn uuid(&mut self) -> String {
        let a = (self.rng.u64(..) & !0xf000) | 0x4000;
        let b = (self.rng.u64(..) & !(0xc000 << 48)) | (0x8000 << 48);
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }

    fn hex(&mut self, n: usize) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(n);
        let mut bits = 0u64;
        for i in 0..n {
            if i % 16 == 0 {
                bits = self.rng.u64(..);
            }
            s.push(char::from(HEX[(bits & 15) as usize]));
            bits >>= 4;
        }
        s
    }

    /// `prefix` + `n` base32 characters: IAM unique-id shape (AROA…, AIDA…).
    fn unique_id(&mut self, prefix: &str, n: usize) -> String {
        let mut s = String::with_capacity(prefix.len() + n);
        s.push_str(prefix);
        let mut bits = 0u64;
        for i in 0..n {
            if i % 12 == 0 {
                bits = self.rng.u64(..);
            }
            s.push(char::from(B32[(bits & 31) as usize]));
            bits >>= 5;
        }
        s
    }

    /// A fake session token (base64, the real `IQoJb3JpZ2luX2Vj` opening).
    fn token(&mut self) -> String {
        const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let n = 4 * self.between(80, 100) as usize;
        let mut s = String::with_capacity(TOKEN_PREFIX.len() + n);
        s.push_str(TOKEN_PREFIX);
        let mut bits = 0u64;
        for i in 0..n {
            if i % 10 == 0 {
                bits = self.rng.u64(..);
            }
            s.push(char::from(B64[(bits & 63) as usize]));
            bits >>= 6;
        }
        s
    }

    fn duration(&mut self) -> u64 {
        if self.chance(500) {
            3600
        } else {
            self.between(900, 3600)
        }
    }
}

struct Sim {
    ctx: Ctx,
    seed: u64,
    disorder: i64,
    accounts: Vec<Account>,
    creds: Vec<Cred>,
    instances: Vec<Cred>,
    fresh: VecDeque<Fresh>,
    out: VecDeque<(i64, GeneratedRecord)>,
    next_id: u64,
    key_counter: u32,
    /// `TrailConfig::v11_shapes`.
    v11: bool,
    pivots: u32,
}

impl Sim {
    fn new(cfg: &TrailConfig) -> Sim {
        let mut ctx = Ctx {
            rng: Rng::with_seed(cfg.seed),
            now: cfg.start_time.clamp(0, MAX_TS),
            cached_sec: i64::MIN,
            cached_iso: String::new(),
        };
        let n = cfg.accounts.clamp(1, MAX_ACCOUNTS);
        let mut ids: Vec<u64> = Vec::with_capacity(n);
        for _ in 0..n {
            let mut id = ctx.below(1_000_000_000_000);
            for _ in 0..64 {
                if !ids.contains(&id) {
                    break;
                }
                id = ctx.below(1_000_000_000_000);
            }
            ids.push(id);
        }
        let mut sim = Sim {
            ctx,
            seed: cfg.seed,
            disorder: i64::from(cfg.disorder),
            accounts: Vec::with_capacity(n),
            creds: Vec::new(),
            instances: Vec::new(),
            fresh: VecDeque::new(),
            out: VecDeque::new(),
            next_id: 0,
            key_counter: 0,
            v11: cfg.v11_shapes,
            pivots: 0,
        };
        for id in ids {
            let mut acct = sim.new_account(id);
            if sim.v11 {
                sim.add_v11(&mut acct, id);
            }
            sim.accounts.push(acct);
        }
        sim
    }

    /// The v1.1 parts of a new account (index `self.accounts.len()`).
    fn add_v11(&mut self, acct: &mut Account, id: u64) {
        let k = self.accounts.len();
        // The attacker user's address: outside AWS, unique per account.
        if let Some(u) = acct.users.first_mut() {
            u.ip = match DOC_NETS.get(k / 254) {
                Some([a, b, c]) => format!("{a}.{b}.{c}.{}", k % 254 + 1),
                None => format!("193.{}.{}.{}", (k >> 8) & 0xff, k & 0xff, 1 + k % 254),
            };
        }
        let sso_provider = format!(
            "arn:aws:iam::{}:saml-provider/AWSSSO_{}_DO_NOT_DELETE",
            acct.id_str,
            self.ctx.hex(16)
        );
        let sso_roles = acct.roles.len();
        for ps in SSO_PERMISSION_SETS {
            let name = format!("AWSReservedSSO_{ps}_{}", self.ctx.hex(16));
            // Identity Center outside us-east-1 puts its region in the path.
            let path = if acct.region == "us-east-1" {
                "aws-reserved/sso.amazonaws.com/".to_string()
            } else {
                format!("aws-reserved/sso.amazonaws.com/{}/", acct.region)
            };
            acct.roles.push(Role {
                id: self.ctx.unique_id("AROA", 17),
                arn: format!("arn:aws:iam::{}:role/{path}{name}", acct.id_str),
                name,
            });
        }
        let slr_roles = acct.roles.len();
        for (name, service, _) in SERVICE_LINKED {
            acct.roles.push(Role {
                id: self.ctx.unique_id("AROA", 17),
                arn: format!(
                    "arn:aws:iam::{}:role/aws-service-role/{service}/{name}",
                    acct.id_str
                ),
                name: (*name).to_string(),
            });
        }
        let nat_ip = aws_v4(self.ctx.rng.u64(..));
        let ci = self.new_user(
            acct,
            "ci-nat-runner".to_string(),
            nat_ip.clone(),
            EC2_UAS.first().copied().unwrap_or(""),
            id,
        );
        acct.v11 = Some(Box::new(AccountV11 {
            sso_provider,
            sso_roles,
            slr_roles,
            nat_ip,
            ci,
        }));
    }

    fn new_account(&mut self, id: u64) -> Account {
        let id_str = format!("{id:012}");
        let ctx = &mut self.ctx;
        let region = ctx.pick(REGIONS);
        let mut roles = Vec::new();
        let role_names = HUMAN_ROLES
            .iter()
            .chain(EC2_ROLES)
            .map(|r| (*r).to_string())
            .chain(FUNCTIONS.iter().map(|f| format!("lambda-{f}-role")));
        for name in role_names {
            roles.push(Role {
                id: ctx.unique_id("AROA", 17),
                arn: format!("arn:aws:iam::{id_str}:role/{name}"),
                name,
            });
        }
        let salt = ctx.rng.u64(..);
        let mut acct = Account {
            region,
            roles,
            users: Vec::new(),
            backdoors: Vec::new(),
            vpce: format!("vpce-{}", ctx.hex(17)),
            name_qualifier: {
                let mut q = ctx.unique_id("", 27);
                q.push('=');
                q
            },
            saml_provider: format!("arn:aws:iam::{id_str}:saml-provider/Okta"),
            google_aud: format!(
                "{}-{}.apps.googleusercontent.com",
                ctx.between(100_000_000_000, 999_999_999_999),
                ctx.hex(32)
            ),
            salt,
            id_str,
            v11: None,
        };
        let ip = ip_in(ATTACKER_NETS, ctx.rng.u64(..));
        let user = self.new_user(&acct, ATTACKER_USER.to_string(), ip, ATTACKER_UA, id);
        acct.users.push(user);
        let start = self.ctx.index(USER_NAMES.len());
        for k in 0..5 {
            let name = USER_NAMES
                .get((start + k) % USER_NAMES.len())
                .copied()
                .unwrap_or("user");
            let ip = ip_in(USER_NETS, self.ctx.rng.u64(..));
            let ua = self.ctx.pick(USER_AGENTS);
            let user = self.new_user(&acct, name.to_string(), ip, ua, id);
            acct.users.push(user);
        }
        acct
    }

    fn new_user(
        &mut self,
        acct: &Account,
        name: String,
        ip: String,
        ua: &'static str,
        account_id: u64,
    ) -> User {
        User {
            id: self.next_id(),
            principal_id: self.ctx.unique_id("AIDA", 17),
            arn: format!("arn:aws:iam::{}:user/{name}", acct.id_str),
            key: self.new_key("AKIA", account_id),
            name,
            ip,
            ua,
            last_call: None,
        }
    }

    fn next_id(&mut self) -> u64 {
        self.next_id = self.next_id.wrapping_add(1);
        self.next_id
    }

    /// A key id for `account`, unique among the first 2^32 keys of a trail.
    fn new_key(&mut self, prefix: &str, account: u64) -> String {
        self.key_counter = self.key_counter.wrapping_add(1);
        let low7 = self.ctx.rng.u8(..) & 0x7f;
        encode_key(
            prefix,
            account,
            low7,
            permute32(self.key_counter, self.seed),
        )
    }

    fn account_id(&self, a: usize) -> u64 {
        self.accounts
            .get(a)
            .and_then(|x| x.id_str.parse().ok())
            .unwrap_or(0)
    }

    fn emit(&mut self, mut line: String, mut truth: Truth) {
        if self.v11 && self.ctx.chance(LAKE_PER_MILLE) {
            let iso_time = member(&line, "eventTime").map(str::to_string);
            let secs = iso_time.as_deref().and_then(|t| {
                chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%SZ")
                    .ok()
                    .map(|d| d.and_utc().timestamp())
            });
            if let (Some(old), Some(secs)) = (iso_time, secs) {
                let pattern = if self.ctx.chance(750) {
                    "%Y-%m-%d %H:%M:%S.000"
                } else {
                    "%Y-%m-%d %H:%M:%S"
                };
                let lake = fmt_time(secs, pattern);
                line = line.replacen(
                    &format!("\"eventTime\":\"{old}\""),
                    &format!("\"eventTime\":\"{lake}\""),
                    1,
                );
                truth.lake_time = true;
            }
        }
        self.out
            .push_back((self.ctx.now, GeneratedRecord { line, truth }));
    }

    fn push_fresh(&mut self, f: Fresh) {
        if self.fresh.len() >= FRESH_CAP {
            self.fresh.pop_front();
        }
        self.fresh.push_back(f);
    }

    fn add_cred(&mut self, c: Cred) {
        if self.creds.len() >= CRED_CAP {
            let i = self.ctx.index(self.creds.len());
            self.creds.swap_remove(i);
        }
        self.push_fresh(Fresh::Cred(c.id));
        self.creds.push(c);
    }

    /// One scenario step: at least one record, then the clock moves on.
    fn step(&mut self) {
        let done = if self.v11 && self.ctx.chance(V11_STEP_PER_MILLE) {
            self.v11_step()
        } else if !self.fresh.is_empty() && self.ctx.chance(300) {
            self.use_fresh()
        } else {
            match self.ctx.below(1000) {
                0..280 => self.plain_call(),
                280..600 => self.cred_call(),
                600..760 => self.ec2_call(),
                760..800 => {
                    self.aws_service_call();
                    true
                }
                800..812 => self.user_assume_role(),
                812..820 => self.chain_assume_role(),
                820..824 => self.user_token(false),
                824..827 => self.user_token(true),
                827..831 => self.saml(),
                831..834 => self.web_identity(),
                834..838 => self.service_issue(),
                838..839 => self.collision(),
                839..852 => self.failed_sts(),
                852..862 => self.ec2_launch(),
                862..864 => self.create_key(),
                864..874 => self.backdoor_call(),
                _ => self.plain_call(),
            }
        };
        if !done && !self.plain_call() {
            self.aws_service_call();
        }
        let r = self.ctx.below(1000);
        let dt = if r < 280 {
            1
        } else if r < 300 {
            2 + self.ctx.below(4) as i64
        } else {
            0
        };
        self.ctx.now = self.ctx.now.saturating_add(dt);
    }

    fn use_fresh(&mut self) -> bool {
        match self.fresh.pop_front() {
            Some(Fresh::Cred(id)) => match self.creds.iter().position(|c| c.id == id) {
                Some(i) => self.cred_call_at(i),
                None => false,
            },
            Some(Fresh::Instance(id)) => match self.instances.iter().position(|c| c.id == id) {
                Some(i) => self.ec2_call_at(i),
                None => false,
            },
            Some(Fresh::Backdoor(a, id)) => {
                let pos = self
                    .accounts
                    .get(a)
                    .and_then(|x| x.backdoors.iter().position(|u| u.id == id));
                match pos {
                    Some(k) => self.backdoor_call_at(a, k),
                    None => false,
                }
            }
            None => false,
        }
    }

    fn random_user(&mut self) -> Option<(usize, usize)> {
        let a = self.ctx.index(self.accounts.len());
        let u = self.random_user_in(a)?;
        Some((a, u))
    }

    /// A user of account `a`. With the v1.1 shapes never the attacker user
    /// (index 0), so that its address is used by exactly one identity, the
    /// one `offhost_other_identity` names.
    fn random_user_in(&mut self, a: usize) -> Option<usize> {
        let n = self.accounts.get(a)?.users.len();
        if self.v11 {
            if n < 2 {
                return None;
            }
            return Some(1 + self.ctx.index(n - 1));
        }
        if n == 0 {
            return None;
        }
        Some(self.ctx.index(n))
    }

    /// The account holding the role: mostly the caller's, sometimes another.
    fn target_account(&mut self, a: usize) -> usize {
        if self.accounts.len() > 1 && self.ctx.chance(200) {
            self.ctx.index(self.accounts.len())
        } else {
            a
        }
    }

    fn caller_info(&self, c: Caller) -> Option<CallerInfo> {
        match c {
            Caller::User(a, u) => {
                let user = self.accounts.get(a)?.users.get(u)?;
                Some(CallerInfo {
                    account: a,
                    root: user.key.clone(),
                    depth: 0,
                    ip: user.ip.clone(),
                    ua: user.ua,
                    collision: false,
                    principal_id: user.principal_id.clone(),
                    arn: user.arn.clone(),
                    hint: user.name.clone(),
                    complete: Some(true),
                    ancestor: false,
                    instance: None,
                })
            }
            Caller::Cred(i) => self.creds.get(i).map(cred_info),
            Caller::Instance(i) => self.instances.get(i).map(cred_info),
        }
    }

    fn mark_used(&mut self, c: Caller) {
        let now = self.ctx.now;
        match c {
            Caller::User(a, u) => {
                if let Some(user) = self.accounts.get_mut(a).and_then(|x| x.users.get_mut(u)) {
                    user.last_call = Some(now);
                }
            }
            Caller::Cred(i) => {
                if let Some(c) = self.creds.get_mut(i) {
                    c.used = true;
                }
            }
            Caller::Instance(i) => {
                if let Some(c) = self.instances.get_mut(i) {
                    c.used = true;
                    if let Some(e) = c.ec2.as_mut() {
                        e.first_use.get_or_insert(now);
                    }
                }
            }
        }
    }

    fn session_name(&mut self, hint: &str) -> String {
        let ms = self
            .ctx
            .now
            .saturating_mul(1000)
            .saturating_add(self.ctx.below(1000) as i64);
        match self.ctx.below(4) {
            0 => format!("aws-go-sdk-{ms}{:06}", self.ctx.below(1_000_000)),
            1 => format!("botocore-session-{}", self.ctx.now),
            2 => format!("{hint}-{}", self.ctx.below(100_000)),
            _ => format!("terraform-{}", self.ctx.hex(8)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn role_cred(
        &mut self,
        kind: Kind,
        account: usize,
        role: usize,
        session: &str,
        root: String,
        depth: u32,
        ip: String,
        ua: &'static str,
        key: String,
        dur: u64,
    ) -> Cred {
        let (arn, principal_id) = match self.accounts.get(account) {
            Some(a) => {
                let (role_id, role_name) = a
                    .roles
                    .get(role)
                    .map_or(("", ""), |r| (r.id.as_str(), r.name.as_str()));
                (
                    format!(
                        "arn:aws:sts::{}:assumed-role/{role_name}/{session}",
                        a.id_str
                    ),
                    format!("{role_id}:{session}"),
                )
            }
            None => (String::new(), String::new()),
        };
        Cred {
            id: self.next_id(),
            kind,
            account,
            key,
            ident: Ident::Role(role),
            arn,
            principal_id,
            creation: iso(self.ctx.now),
            expires: self.ctx.now.saturating_add(dur as i64),
            root,
            depth,
            ip,
            ua,
            mfa: false,
            collision: kind == Kind::Collision,
            used: false,
            issuer_user: None,
            ec2: None,
            web: None,
            complete: Some(true),
            ancestor: false,
            invoked_by: None,
        }
    }

    // --- ordinary calls ----------------------------------------------------

    fn plain_call(&mut self) -> bool {
        match self.random_user() {
            Some((a, u)) => self.user_call(a, u),
            None => false,
        }
    }

    fn user_call(&mut self, a: usize, u: usize) -> bool {
        let Some(acct) = self.accounts.get(a) else {
            return false;
        };
        let Some(user) = acct.users.get(u) else {
            return false;
        };
        let line = call_line(
            &mut self.ctx,
            &Who::User(user),
            acct,
            &user.ip,
            user.ua,
            None,
        );
        let truth = key_truth(&user.key, 0, Kind::Plain, false, false);
        self.emit(line, truth);
        self.mark_used(Caller::User(a, u));
        true
    }

    fn backdoor_call(&mut self) -> bool {
        let a = self.ctx.index(self.accounts.len());
        let n = self.accounts.get(a).map_or(0, |x| x.backdoors.len());
        if n == 0 {
            return false;
        }
        let k = self.ctx.index(n);
        self.backdoor_call_at(a, k)
    }

    fn backdoor_call_at(&mut self, a: usize, k: usize) -> bool {
        let Some(acct) = self.accounts.get(a) else {
            return false;
        };
        let Some(user) = acct.backdoors.get(k) else {
            return false;
        };
        let line = call_line(
            &mut self.ctx,
            &Who::User(user),
            acct,
            &user.ip,
            user.ua,
            None,
        );
        let truth = key_truth(&user.key, 0, Kind::CreatedKey, false, false);
        self.emit(line, truth);
        true
    }

    fn cred_call(&mut self) -> bool {
        if self.creds.is_empty() {
            return false;
        }
        let i = self.ctx.index(self.creds.len());
        self.cred_call_at(i)
    }

    fn cred_call_at(&mut self, i: usize) -> bool {
        let Some(c) = self.creds.get(i) else {
            return false;
        };
        if self.ctx.now >= c.expires {
            self.creds.swap_remove(i);
            return false;
        }
        let Some(acct) = self.accounts.get(c.account) else {
            return false;
        };
        let line = call_line(&mut self.ctx, &Who::Cred(c), acct, &c.ip, c.ua, None);
        let truth = cred_info(c).truth(c.kind);
        self.emit(line, truth);
        self.mark_used(Caller::Cred(i));
        true
    }

    fn ec2_call(&mut self) -> bool {
        if self.instances.is_empty() {
            return false;
        }
        let i = self.ctx.index(self.instances.len());
        self.ec2_call_at(i)
    }

    fn ec2_call_at(&mut self, i: usize) -> bool {
        let now = self.ctx.now;
        let Some(inst) = self.instances.get(i) else {
            return false;
        };
        if now >= inst.expires {
            if self.ctx.chance(850) {
                return self.ec2_refresh(i);
            }
            self.instances.swap_remove(i);
            return false;
        }
        if self.v11 {
            return self.ec2_call_v11(i);
        }
        let first_use = inst.ec2.as_ref().and_then(|e| e.first_use);
        let r = self.ctx.below(1000);
        let kind = if !inst.used || r < 800 {
            Kind::Ec2Onhost
        } else if r < 960 {
            Kind::Ec2Vpce
        } else if first_use.is_some_and(|f| f.saturating_add(self.disorder) < now) {
            Kind::Ec2Offhost
        } else {
            Kind::Ec2Onhost
        };
        let account = inst.account;
        if kind == Kind::Ec2Offhost {
            // The attacker IP belongs to an IAM user: make sure it was seen recently.
            let recent = self
                .accounts
                .get(account)
                .and_then(|x| x.users.first())
                .and_then(|u| u.last_call)
                .is_some_and(|t| t.saturating_add(3600) > now);
            if !recent {
                self.user_call(account, 0);
            }
        }
        let Some(inst) = self.instances.get(i) else {
            return false;
        };
        let Some(acct) = self.accounts.get(account) else {
            return false;
        };
        let Some(ec2) = inst.ec2.as_deref() else {
            return false;
        };
        let line = match kind {
            Kind::Ec2Vpce => call_line(
                &mut self.ctx,
                &Who::Cred(inst),
                acct,
                &ec2.private_ip,
                inst.ua,
                Some((&acct.vpce, &acct.id_str)),
            ),
            Kind::Ec2Offhost => {
                let ip = acct.users.first().map_or("", |u| u.ip.as_str());
                call_line(&mut self.ctx, &Who::Cred(inst), acct, ip, ATTACKER_UA, None)
            }
            _ => call_line(
                &mut self.ctx,
                &Who::Cred(inst),
                acct,
                &inst.ip,
                inst.ua,
                None,
            ),
        };
        let mut truth = cred_info(inst).truth(kind);
        if kind == Kind::Ec2Offhost {
            // SPEC v1.1 with the AWS ranges turned off: step 5.
            truth.offhost = true;
            truth.offhost_reason = Some("new_ip_for_instance");
        }
        self.emit(line, truth);
        if let Some(inst) = self.instances.get_mut(i) {
            inst.used = true;
            if let Some(e) = inst.ec2.as_mut() {
                e.first_use.get_or_insert(now);
            }
        }
        true
    }

    fn aws_service_call(&mut self) {
        let a = self.ctx.index(self.accounts.len());
        let Some(acct) = self.accounts.get(a) else {
            return;
        };
        let i = self.ctx.index(SERVICE_CALLS.len());
        let Some(&(by, ip, source, name)) = SERVICE_CALLS.get(i) else {
            return;
        };
        let ctx = &mut self.ctx;
        let region = region_for(source, acct);
        let mut j = begin(ctx, &Who::Service(by), acct, source, name, region, ip, by);
        j.obj("requestParameters");
        match name {
            "GenerateDataKey" => {
                j.str(
                    "keyId",
                    &format!("arn:aws:kms:{region}:{}:alias/cloudtrail-logs", acct.id_str),
                );
                j.str("keySpec", "AES_256");
            }
            "Decrypt" => {
                j.str("encryptionAlgorithm", "SYMMETRIC_DEFAULT");
            }
            "GetBucketAcl" => {
                j.str("bucketName", &format!("{}-config-logs", acct.id_str));
                j.str("Host", "s3.amazonaws.com");
                j.str("acl", "");
            }
            _ => j.str("roleName", "AWSServiceRoleForAccessAnalyzer"),
        }
        j.end();
        j.raw("responseElements", "null");
        let line = finish(
            j,
            ctx,
            &Tail {
                read_only: true,
                recipient: &acct.id_str,
                host: None,
                ..Tail::default()
            },
        );
        let truth = none_truth(Kind::AwsService);
        self.emit(line, truth);
    }

    // --- issuance ----------------------------------------------------------

    fn user_assume_role(&mut self) -> bool {
        let Some((a, u)) = self.random_user() else {
            return false;
        };
        let target = self.target_account(a);
        let role = self.ctx.index(HUMAN_ROLES.len());
        self.issue_assume_role(Caller::User(a, u), target, role, None, Kind::Chain, None)
    }

    fn chain_assume_role(&mut self) -> bool {
        for _ in 0..4 {
            if self.creds.is_empty() {
                return false;
            }
            let i = self.ctx.index(self.creds.len());
            let Some(c) = self.creds.get(i) else {
                return false;
            };
            let eligible = c.depth < MAX_DEPTH
                && self.ctx.now < c.expires
                && matches!(
                    c.kind,
                    Kind::Chain
                        | Kind::SessionToken
                        | Kind::Saml
                        | Kind::WebIdentity
                        | Kind::Service
                        | Kind::Collision
                        | Kind::Sso
                        | Kind::SsoUnobserved
                        | Kind::PivotSession
                );
            if eligible {
                let account = c.account;
                let target = self.target_account(account);
                let role = self.ctx.index(HUMAN_ROLES.len());
                return self.issue_assume_role(
                    Caller::Cred(i),
                    target,
                    role,
                    None,
                    Kind::Chain,
                    None,
                );
            }
        }
        false
    }

    /// `AssumeRole` by a key-carrying caller; for a cross-account role also
    /// the role owner's copy.
    fn issue_assume_role(
        &mut self,
        caller: Caller,
        target: usize,
        role: usize,
        session: Option<String>,
        kind: Kind,
        key: Option<(String, u64)>,
    ) -> bool {
        self.issue_assume_role_via(caller, target, role, session, kind, key, None)
    }

    /// `issue_assume_role`, the call (and the new credential's later calls)
    /// made from `net` = (address, user agent) instead of the caller's own.
    #[allow(clippy::too_many_arguments)]
    fn issue_assume_role_via(
        &mut self,
        caller: Caller,
        target: usize,
        role: usize,
        session: Option<String>,
        kind: Kind,
        key: Option<(String, u64)>,
        net: Option<(String, &'static str)>,
    ) -> bool {
        let Some(mut info) = self.caller_info(caller) else {
            return false;
        };
        if let Some((ip, ua)) = net {
            info.ip = ip;
            info.ua = ua;
        }
        let session = session.unwrap_or_else(|| self.session_name(&info.hint));
        let (key, dur) = match key {
            Some(k) => k,
            None => {
                let acct_id = self.account_id(target);
                (self.new_key("ASIA", acct_id), self.ctx.duration())
            }
        };
        let mut cred = self.role_cred(
            kind,
            target,
            role,
            &session,
            info.root.clone(),
            info.depth.saturating_add(1),
            info.ip.clone(),
            info.ua,
            key,
            dur,
        );
        cred.complete = info.complete;
        cred.ancestor = info.ancestor;
        let cross = target != info.account;
        let request_id = self.ctx.uuid();
        let shared = cross.then(|| self.ctx.uuid());
        let (Some(caller_acct), Some(role_acct)) =
            (self.accounts.get(info.account), self.accounts.get(target))
        else {
            return false;
        };
        let Some(who) = who_of(&self.accounts, &self.creds, &self.instances, caller) else {
            return false;
        };
        let issue = IssueCtx {
            caller_acct,
            role_acct,
            recipient: &caller_acct.id_str,
            ip: &info.ip,
            ua: info.ua,
            request_id: &request_id,
            shared: shared.as_deref(),
            dur: Some(dur),
        };
        let line = assume_role_line(&mut self.ctx, &who, &issue, &cred, role);
        let copy = cross.then(|| {
            let who = Who::Account {
                principal_id: &info.principal_id,
                account: &caller_acct.id_str,
            };
            let issue = IssueCtx {
                recipient: &role_acct.id_str,
                ..issue
            };
            assume_role_line(&mut self.ctx, &who, &issue, &cred, role)
        });
        let mut truth = info.truth(kind);
        truth.collision = info.collision || cred.collision;
        self.emit(line, truth);
        if let Some(copy) = copy {
            let mut truth = none_truth(Kind::CrossAccount);
            truth.collision = cred.collision;
            self.emit(copy, truth);
        }
        self.mark_used(caller);
        self.add_cred(cred);
        true
    }

    fn collision(&mut self) -> bool {
        let Some((a, u1)) = self.random_user() else {
            return false;
        };
        let u2 = if self.v11 {
            self.random_user_in(a).unwrap_or(u1)
        } else {
            let n = self.accounts.get(a).map_or(0, |x| x.users.len());
            self.ctx.index(n)
        };
        let acct_id = self.account_id(a);
        let key = self.new_key("ASIA", acct_id);
        let dur = self.ctx.duration();
        let r1 = self.ctx.index(HUMAN_ROLES.len());
        let r2 = self.ctx.index(HUMAN_ROLES.len());
        let h1 = self.caller_info(Caller::User(a, u1)).map(|i| i.hint);
        let s1 = self.session_name(h1.as_deref().unwrap_or("session"));
        let mut s2 = self.session_name("session");
        if s2 == s1 {
            s2.push_str("-2");
        }
        let first = self.issue_assume_role(
            Caller::User(a, u1),
            a,
            r1,
            Some(s1),
            Kind::Collision,
            Some((key.clone(), dur)),
        );
        first
            && self.issue_assume_role(
                Caller::User(a, u2),
                a,
                r2,
                Some(s2),
                Kind::Collision,
                Some((key, dur)),
            )
    }

    /// `GetSessionToken` or `GetFederationToken` by a user key.
    fn user_token(&mut self, federated: bool) -> bool {
        let Some((a, u)) = self.random_user() else {
            return false;
        };
        self.user_token_as(a, u, federated, None)
    }

    /// `user_token` by user `u` of account `a`; with `fake`, a federated
    /// user of that name (an instance ID) and kind `fake_instance`.
    fn user_token_as(&mut self, a: usize, u: usize, federated: bool, fake: Option<&str>) -> bool {
        let acct_id = self.account_id(a);
        let key = self.new_key("ASIA", acct_id);
        let dur = self.ctx.duration();
        let mfa = !federated && self.ctx.chance(300);
        let base = self.ctx.pick(FED_NAMES);
        let mut fed_name = format!("{base}-{}", self.ctx.below(1000));
        if let Some(name) = fake {
            fed_name = name.to_string();
        }
        let with_policy = federated && self.ctx.chance(500);
        let id = self.next_id();
        let Some(acct) = self.accounts.get(a) else {
            return false;
        };
        let Some(user) = acct.users.get(u) else {
            return false;
        };
        let (kind, ident, name, arn, principal_id) = if federated {
            (
                if fake.is_some() {
                    Kind::FakeInstance
                } else {
                    Kind::Federation
                },
                Ident::Federated,
                "GetFederationToken",
                format!("arn:aws:sts::{}:federated-user/{fed_name}", acct.id_str),
                format!("{}:{fed_name}", acct.id_str),
            )
        } else {
            (
                Kind::SessionToken,
                Ident::SessionToken,
                "GetSessionToken",
                user.arn.clone(),
                user.principal_id.clone(),
            )
        };
        let cred = Cred {
            id,
            kind,
            account: a,
            key,
            ident,
            arn,
            principal_id,
            creation: iso(self.ctx.now),
            expires: self.ctx.now.saturating_add(dur as i64),
            root: user.key.clone(),
            depth: 1,
            ip: user.ip.clone(),
            ua: user.ua,
            mfa,
            collision: false,
            used: false,
            issuer_user: Some(Box::new(IssuerUser {
                name: user.name.clone(),
                principal_id: user.principal_id.clone(),
                arn: user.arn.clone(),
            })),
            ec2: None,
            web: None,
            complete: Some(true),
            ancestor: false,
            invoked_by: None,
        };
        let ctx = &mut self.ctx;
        let region = acct.region;
        let mut j = begin(
            ctx,
            &Who::User(user),
            acct,
            STS,
            name,
            region,
            &user.ip,
            user.ua,
        );
        j.obj("requestParameters");
        if federated {
            j.str("name", &fed_name);
        }
        j.num("durationSeconds", dur);
        if with_policy {
            j.str("policy", FED_POLICY);
        }
        if mfa {
            let serial = format!("arn:aws:iam::{}:mfa/{}", acct.id_str, user.name);
            j.str("serialNumber", &serial);
        }
        j.end();
        j.obj("responseElements");
        write_credentials(&mut j, ctx, &cred);
        if federated {
            j.obj("federatedUser");
            j.str("federatedUserId", &cred.principal_id);
            j.str("arn", &cred.arn);
            j.end();
            j.num("packedPolicySize", if with_policy { 6 } else { 0 });
        }
        j.end();
        let host = host(STS, region);
        let line = finish(
            j,
            ctx,
            &Tail {
                // As CloudTrail logs them.
                read_only: !federated,
                recipient: &acct.id_str,
                host: Some(&host),
                ..Tail::default()
            },
        );
        let truth = key_truth(&user.key, 0, kind, false, false);
        self.emit(line, truth);
        self.mark_used(Caller::User(a, u));
        self.add_cred(cred);
        true
    }

    fn saml(&mut self) -> bool {
        let a = self.ctx.index(self.accounts.len());
        let h = self.ctx.index(HUMANS.len());
        let role = self.ctx.index(HUMAN_ROLES.len());
        let acct_id = self.account_id(a);
        let key = self.new_key("ASIA", acct_id);
        let dur = self.ctx.duration();
        let Some(acct) = self.accounts.get(a) else {
            return false;
        };
        let email = format!("{}@example.com", HUMANS.get(h).copied().unwrap_or("user"));
        let ip = ip_in(USER_NETS, mix(acct.salt, h as u64));
        let provider = acct.saml_provider.clone();
        let principal_id = format!("{}:{email}", acct.name_qualifier);
        // SPEC v1.1: the provider's name, not its ARN (the records are as in v1).
        let provider_name = provider.rsplit('/').next().unwrap_or(&provider);
        let root = format!("saml:{provider_name}/{email}");
        let cred = self.role_cred(
            Kind::Saml,
            a,
            role,
            &email,
            root,
            1,
            ip,
            BROWSER_UA,
            key,
            dur,
        );
        self.saml_sign_in_line(
            Kind::Saml,
            a,
            role,
            &SignIn {
                principal_id: &principal_id,
                user: &email,
                provider: &provider,
                issuer: "http://www.okta.com/exk1a2b3c4d5e6f7g8h9",
            },
            cred,
            dur,
        )
    }

    /// The `AssumeRoleWithSAML` record of a sign-in into `role` (a plain
    /// SAML provider or IAM Identity Center) issuing `cred`.
    fn saml_sign_in_line(
        &mut self,
        kind: Kind,
        a: usize,
        role: usize,
        sign_in: &SignIn<'_>,
        cred: Cred,
        dur: u64,
    ) -> bool {
        let Some(acct) = self.accounts.get(a) else {
            return false;
        };
        let who = Who::Saml {
            principal_id: sign_in.principal_id,
            user_name: sign_in.user,
            provider: sign_in.provider,
        };
        let ctx = &mut self.ctx;
        let mut j = begin(
            ctx,
            &who,
            acct,
            STS,
            "AssumeRoleWithSAML",
            acct.region,
            &cred.ip,
            BROWSER_UA,
        );
        let role_arn = acct.roles.get(role).map_or("", |r| r.arn.as_str());
        j.obj("requestParameters");
        j.str("roleArn", role_arn);
        j.str("principalArn", sign_in.provider);
        j.num("durationSeconds", dur);
        j.end();
        j.obj("responseElements");
        write_credentials(&mut j, ctx, &cred);
        write_assumed_role_user(&mut j, &cred);
        j.str("subject", sign_in.user);
        j.str("subjectType", "persistent");
        j.str("issuer", sign_in.issuer);
        j.str("audience", "https://signin.aws.amazon.com/saml");
        j.str("nameQualifier", &acct.name_qualifier);
        j.end();
        let host = host(STS, acct.region);
        let line = finish(
            j,
            ctx,
            &Tail {
                read_only: true,
                recipient: &acct.id_str,
                host: Some(&host),
                resource: Some((role_arn, &acct.id_str)),
                ..Tail::default()
            },
        );
        self.emit(line, none_truth(kind));
        self.add_cred(cred);
        true
    }

    fn web_identity(&mut self) -> bool {
        let a = self.ctx.index(self.accounts.len());
        let role = self.ctx.index(HUMAN_ROLES.len());
        let acct_id = self.account_id(a);
        let key = self.new_key("ASIA", acct_id);
        let dur = self.ctx.duration();
        let github = self.ctx.chance(500);
        let n = self.ctx.below(16);
        let run = self.ctx.between(1_000_000_000, 9_999_999_999);
        let Some(acct) = self.accounts.get(a) else {
            return false;
        };
        let h = mix(acct.salt, 100 + n);
        let (provider, aud, sub, session, ip, ua) = if github {
            let repo = REPOS
                .get((h % REPOS.len() as u64) as usize)
                .copied()
                .unwrap_or("app");
            (
                format!("arn:aws:iam::{}:oidc-provider/{GITHUB_OIDC}", acct.id_str),
                "sts.amazonaws.com".to_string(),
                format!("repo:acme-corp/{repo}:ref:refs/heads/main"),
                format!("GitHubActions-{run}"),
                ip_in(GITHUB_NETS, mix(h, run)),
                GITHUB_UA,
            )
        } else {
            let sub = format!("1{:020}", h % 10_000_000_000_000_000_000);
            (
                GOOGLE.to_string(),
                acct.google_aud.clone(),
                sub,
                format!("app-session-{run}"),
                ip_in(USER_NETS, h),
                MOBILE_UA,
            )
        };
        let root = format!("web_identity:{provider}/{sub}");
        let principal_id = format!("{provider}:{aud}:{sub}");
        let mut cred = self.role_cred(
            Kind::WebIdentity,
            a,
            role,
            &session,
            root,
            1,
            ip,
            ua,
            key,
            dur,
        );
        cred.web = Some(Box::new(WebId {
            provider: provider.clone(),
            aud: aud.clone(),
            sub: sub.clone(),
        }));
        let Some(acct) = self.accounts.get(a) else {
            return false;
        };
        let who = Who::Web {
            principal_id: &principal_id,
            user_name: &sub,
            provider: &provider,
        };
        let ctx = &mut self.ctx;
        let mut j = begin(
            ctx,
            &who,
            acct,
            STS,
            "AssumeRoleWithWebIdentity",
            acct.region,
            &cred.ip,
            ua,
        );
        let role_arn = acct.roles.get(role).map_or("", |r| r.arn.as_str());
        j.obj("requestParameters");
        j.str("roleArn", role_arn);
        j.str("roleSessionName", &session);
        j.num("durationSeconds", dur);
        j.end();
        j.obj("responseElements");
        write_credentials(&mut j, ctx, &cred);
        j.str("subjectFromWebIdentityToken", &sub);
        write_assumed_role_user(&mut j, &cred);
        j.str("provider", &provider);
        j.str("audience", &aud);
        j.end();
        let host = host(STS, acct.region);
        let line = finish(
            j,
            ctx,
            &Tail {
                read_only: true,
                recipient: &acct.id_str,
                host: Some(&host),
                resource: Some((role_arn, &acct.id_str)),
                ..Tail::default()
            },
        );
        self.emit(line, none_truth(Kind::WebIdentity));
        self.add_cred(cred);
        true
    }

    fn service_issue(&mut self) -> bool {
        let a = self.ctx.index(self.accounts.len());
        let f = self.ctx.index(FUNCTIONS.len());
        let function = FUNCTIONS.get(f).copied().unwrap_or("function");
        let role = HUMAN_ROLES.len() + EC2_ROLES.len() + f;
        let acct_id = self.account_id(a);
        let key = self.new_key("ASIA", acct_id);
        let dur = self.ctx.duration();
        let Some(acct) = self.accounts.get(a) else {
            return false;
        };
        let ip = ip_in(LAMBDA_NETS, mix(acct.salt, 200 + f as u64));
        let root = format!("service:lambda.amazonaws.com/{function}");
        let cred = self.role_cred(
            Kind::Service,
            a,
            role,
            function,
            root,
            1,
            ip,
            LAMBDA_UA,
            key,
            dur,
        );
        let line = self.service_assume_role(&cred, role, "lambda.amazonaws.com");
        self.emit(line, none_truth(Kind::Service));
        self.add_cred(cred);
        true
    }

    /// `AssumeRole` by an AWS service for a role it runs (no `assumedRoleUser`).
    fn service_assume_role(&mut self, cred: &Cred, role: usize, by: &str) -> String {
        let Some(acct) = self.accounts.get(cred.account) else {
            return String::new();
        };
        let ctx = &mut self.ctx;
        let role_arn = acct.roles.get(role).map_or("", |r| r.arn.as_str());
        let session = cred.arn.rsplit('/').next().unwrap_or("");
        let mut j = begin(
            ctx,
            &Who::Service(by),
            acct,
            STS,
            "AssumeRole",
            acct.region,
            by,
            by,
        );
        j.obj("requestParameters");
        j.str("roleArn", role_arn);
        j.str("roleSessionName", session);
        j.end();
        j.obj("responseElements");
        write_credentials(&mut j, ctx, cred);
        j.end();
        let shared = ctx.uuid();
        finish(
            j,
            ctx,
            &Tail {
                read_only: true,
                recipient: &acct.id_str,
                resource: Some((role_arn, &acct.id_str)),
                shared: Some(&shared),
                ..Tail::default()
            },
        )
    }

    fn failed_sts(&mut self) -> bool {
        let caller = if !self.creds.is_empty() && self.ctx.chance(300) {
            let i = self.ctx.index(self.creds.len());
            match self.creds.get(i) {
                Some(c) if self.ctx.now < c.expires && c.kind != Kind::ServiceLinked => {
                    Caller::Cred(i)
                }
                _ => return false,
            }
        } else {
            match self.random_user() {
                Some((a, u)) => Caller::User(a, u),
                None => return false,
            }
        };
        let Some(info) = self.caller_info(caller) else {
            return false;
        };
        let target = self.target_account(info.account);
        let role = self.ctx.index(HUMAN_ROLES.len());
        let session = self.session_name(&info.hint);
        let with_params = self.ctx.chance(500);
        let (Some(acct), Some(role_acct)) =
            (self.accounts.get(info.account), self.accounts.get(target))
        else {
            return false;
        };
        let Some(who) = who_of(&self.accounts, &self.creds, &self.instances, caller) else {
            return false;
        };
        let role_arn = role_acct.roles.get(role).map_or("", |r| r.arn.as_str());
        let ctx = &mut self.ctx;
        let mut j = begin(
            ctx,
            &who,
            acct,
            STS,
            "AssumeRole",
            acct.region,
            &info.ip,
            info.ua,
        );
        j.str("errorCode", "AccessDenied");
        j.str(
            "errorMessage",
            &format!(
                "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                info.arn
            ),
        );
        if with_params {
            j.obj("requestParameters");
            j.str("roleArn", role_arn);
            j.str("roleSessionName", &session);
            j.end();
        } else {
            j.raw("requestParameters", "null");
        }
        j.raw("responseElements", "null");
        let host = host(STS, acct.region);
        let line = finish(
            j,
            ctx,
            &Tail {
                read_only: true,
                recipient: &acct.id_str,
                host: Some(&host),
                ..Tail::default()
            },
        );
        let truth = info.truth(Kind::FailedSts);
        self.emit(line, truth);
        self.mark_used(caller);
        true
    }

    // --- EC2 ---------------------------------------------------------------

    fn ec2_launch(&mut self) -> bool {
        let target = (self.accounts.len() * INSTANCES_PER_ACCOUNT).min(INSTANCE_CAP);
        if self.instances.len() >= target {
            if !self.ctx.chance(250) {
                return false;
            }
            // Terminate one to make room.
            let i = self.ctx.index(self.instances.len());
            self.instances.swap_remove(i);
        }
        let Some((a, u)) = self.random_user() else {
            return false;
        };
        let ec2_role = HUMAN_ROLES.len() + self.ctx.index(EC2_ROLES.len());
        let instance_id = format!("i-0{}", self.ctx.hex(16));
        let private_ip = format!(
            "10.{}.{}.{}",
            a % 256,
            self.ctx.below(256),
            self.ctx.between(4, 254)
        );
        let mut public_ip = ip_in(INSTANCE_NETS, self.ctx.rng.u64(..));
        let mut eip = self.ctx.chance(500);
        let mut net = Net::Public;
        let mut ipv6 = None;
        if self.v11 {
            public_ip = aws_v4(self.ctx.rng.u64(..));
            net = match self.ctx.below(1000) {
                0..250 => Net::VpceOnly,
                250..450 => Net::Nat,
                450..600 => Net::DualStack,
                _ => Net::Public,
            };
            match net {
                Net::VpceOnly => {
                    // No public address: its "own" address is the private one.
                    eip = false;
                    public_ip = private_ip.clone();
                }
                Net::Nat => {
                    eip = false;
                    if let Some(v) = self.accounts.get(a).and_then(|x| x.v11.as_ref()) {
                        public_ip = v.nat_ip.clone();
                    }
                }
                Net::DualStack => ipv6 = Some(aws_v6(self.ctx.rng.u64(..))),
                Net::Public => {}
            }
        }
        let Some(acct) = self.accounts.get(a) else {
            return false;
        };
        let Some(user) = acct.users.get(u) else {
            return false;
        };
        let ctx = &mut self.ctx;
        let line = run_instances_line(ctx, user, acct, ec2_role, &instance_id, &private_ip);
        let truth = key_truth(&user.key, 0, Kind::Ec2Launch, false, false);
        let eip_line =
            eip.then(|| associate_address_line(ctx, user, acct, &instance_id, Some(&public_ip)));
        self.emit(line, truth.clone());
        if let Some(l) = eip_line {
            self.ctx.now = self.ctx.now.saturating_add(1);
            self.emit(l, truth);
        }
        self.mark_used(Caller::User(a, u));
        // The instance boots, then EC2 fetches its role credentials.
        self.ctx.now = self.ctx.now.saturating_add(self.ctx.between(2, 20) as i64);
        let acct_id = self.account_id(a);
        let key = self.new_key("ASIA", acct_id);
        let dur = self.ctx.duration();
        let ua = self.ctx.pick(EC2_UAS);
        let root = format!("ec2:{instance_id}");
        let mut cred = self.role_cred(
            Kind::Ec2Issue,
            a,
            ec2_role,
            &instance_id,
            root,
            1,
            public_ip,
            ua,
            key,
            dur,
        );
        cred.ec2 = Some(Box::new(Ec2 {
            private_ip,
            first_use: None,
            net,
            ipv6,
            moved: false,
        }));
        let line = self.service_assume_role(&cred, ec2_role, EC2);
        self.emit(line, none_truth(Kind::Ec2Issue));
        if self.instances.len() >= INSTANCE_CAP {
            let i = self.ctx.index(self.instances.len());
            self.instances.swap_remove(i);
        }
        self.push_fresh(Fresh::Instance(cred.id));
        self.instances.push(cred);
        true
    }

    /// The instance's credentials expired: EC2 fetches a new set.
    fn ec2_refresh(&mut self, i: usize) -> bool {
        if i >= self.instances.len() {
            return false;
        }
        // Take the instance out while its issuance is written, then put it back.
        let mut cred = self.instances.swap_remove(i);
        let role = match cred.ident {
            Ident::Role(r) => r,
            _ => HUMAN_ROLES.len(),
        };
        let acct_id = self.account_id(cred.account);
        cred.key = self.new_key("ASIA", acct_id);
        cred.id = self.next_id();
        cred.creation = iso(self.ctx.now);
        cred.expires = self.ctx.now.saturating_add(self.ctx.duration() as i64);
        cred.used = false;
        let line = self.service_assume_role(&cred, role, EC2);
        self.emit(line, none_truth(Kind::Ec2Issue));
        self.push_fresh(Fresh::Instance(cred.id));
        self.instances.push(cred);
        true
    }

    // --- v1.1 shapes ----------------------------------------------------------

    /// One of the shapes only the v1.1 mix has.
    fn v11_step(&mut self) -> bool {
        match self.ctx.below(1000) {
            0..150 => self.ci_call(),
            150..250 => self.service_linked(),
            250..330 => self.sso_sign_in(),
            330..420 => self.sso_unobserved(),
            420..500 => self.fake_instance(),
            500..600 => self.same_second_chain(),
            _ => self.ec2_call(),
        }
    }

    /// The CI user's long-term key, from behind the account's NAT gateway.
    fn ci_call(&mut self) -> bool {
        let a = self.ctx.index(self.accounts.len());
        let Some(acct) = self.accounts.get(a) else {
            return false;
        };
        let Some(v) = acct.v11.as_deref() else {
            return false;
        };
        let user = &v.ci;
        let line = call_line(
            &mut self.ctx,
            &Who::User(user),
            acct,
            &user.ip,
            user.ua,
            None,
        );
        let truth = key_truth(&user.key, 0, Kind::NatUser, false, false);
        self.emit(line, truth);
        true
    }

    /// A call with instance credentials, v1.1 mix: by the way the instance
    /// reaches AWS, and now and then stolen (SSRF, the attacker user's
    /// address, a pivot through `AssumeRole`) or its Elastic IP moved.
    fn ec2_call_v11(&mut self, i: usize) -> bool {
        #[derive(Clone, Copy, PartialEq, Eq)]
        enum Act {
            Own,
            V6,
            Vpce,
            UserIp,
            Ssrf,
            Pivot,
            Move,
        }
        let now = self.ctx.now;
        let Some(inst) = self.instances.get(i) else {
            return false;
        };
        let Some(e) = inst.ec2.as_deref() else {
            return false;
        };
        let (net, used, dual) = (e.net, inst.used, e.ipv6.is_some());
        let theft = e
            .first_use
            .is_some_and(|f| f.saturating_add(self.disorder) < now);
        let account = inst.account;
        let r = self.ctx.below(1000);
        let act = if !used {
            Act::Own
        } else {
            match (net, r) {
                (Net::VpceOnly, 0..900) => Act::Vpce,
                (Net::VpceOnly, 900..960) => Act::Ssrf,
                (Net::VpceOnly, 960..990) => Act::Pivot,
                (Net::VpceOnly, _) => Act::Vpce,
                (_, 0..600) => Act::Own,
                (_, 600..720) if dual => Act::V6,
                (_, 600..720) => Act::Own,
                (_, 720..860) => Act::Vpce,
                (_, 860..910) => Act::UserIp,
                (_, 910..950) => Act::Ssrf,
                (_, 950..970) => Act::Pivot,
                (Net::Public | Net::DualStack, 970..990) => Act::Move,
                _ => Act::Own,
            }
        };
        let act = match act {
            Act::UserIp | Act::Ssrf | Act::Pivot if !theft => Act::Own,
            a => a,
        };
        let act = match (act, net) {
            (Act::Own, Net::VpceOnly) => Act::Vpce,
            (a, _) => a,
        };
        match act {
            Act::Move => return self.eip_move(i),
            Act::Pivot => return self.ec2_pivot(i),
            Act::UserIp => {
                // The address belongs to the attacker user: make sure it was
                // used, in an earlier second, within the hour.
                let recent = self
                    .accounts
                    .get(account)
                    .and_then(|x| x.users.first())
                    .and_then(|u| u.last_call)
                    .is_some_and(|t| t.saturating_add(3600) > now && t < now);
                if !recent {
                    self.user_call(account, 0);
                    self.ctx.now = self.ctx.now.saturating_add(1);
                }
            }
            _ => {}
        }
        let ssrf_ip = {
            let h = self.ctx.below(254);
            format!("{}.{}.{}.{}", SSRF_NET[0], SSRF_NET[1], SSRF_NET[2], h + 1)
        };
        let Some(inst) = self.instances.get(i) else {
            return false;
        };
        let Some(acct) = self.accounts.get(account) else {
            return false;
        };
        let Some(e) = inst.ec2.as_deref() else {
            return false;
        };
        let attacker = acct.users.first();
        let (ip, ua, vpce, kind) = match act {
            Act::Vpce => (
                e.private_ip.as_str(),
                inst.ua,
                Some((acct.vpce.as_str(), acct.id_str.as_str())),
                Kind::Ec2Vpce,
            ),
            Act::V6 => (
                e.ipv6.as_deref().unwrap_or(&inst.ip),
                inst.ua,
                None,
                Kind::Ec2Ipv6,
            ),
            Act::UserIp => (
                attacker.map_or("", |u| u.ip.as_str()),
                ATTACKER_UA,
                None,
                Kind::Ec2Offhost,
            ),
            Act::Ssrf => (ssrf_ip.as_str(), ATTACKER_UA, None, Kind::Ec2Ssrf),
            _ => {
                let kind = match net {
                    Net::Nat => Kind::Ec2Nat,
                    _ if e.moved => Kind::Ec2Moved,
                    _ => Kind::Ec2Onhost,
                };
                (inst.ip.as_str(), inst.ua, None, kind)
            }
        };
        let line = call_line(&mut self.ctx, &Who::Cred(inst), acct, ip, ua, vpce);
        let mut truth = cred_info(inst).truth(kind);
        match kind {
            Kind::Ec2Offhost => {
                truth.offhost = true;
                truth.offhost_reason = Some("ip_used_by_other_identity");
                truth.offhost_other_identity = attacker.map(|u| u.arn.clone());
            }
            Kind::Ec2Ssrf => {
                truth.offhost = true;
                truth.offhost_reason = Some("outside_aws");
            }
            _ => {}
        }
        self.emit(line, truth);
        self.mark_used(Caller::Instance(i));
        true
    }

    /// Stolen instance credentials call `AssumeRole` from the attacker's
    /// address (outside AWS, one per pivot); the new role session is the
    /// attacker's, used from there.
    fn ec2_pivot(&mut self, i: usize) -> bool {
        let Some(account) = self.instances.get(i).map(|c| c.account) else {
            return false;
        };
        self.pivots = self.pivots.wrapping_add(1);
        let p = permute32(self.pivots, self.seed) & 0x00ff_ffff;
        let ip = format!(
            "{PIVOT_NET}.{}.{}.{}",
            (p >> 16) & 0xff,
            (p >> 8) & 0xff,
            1 + (p & 0xff) % 254
        );
        let role = self.ctx.index(HUMAN_ROLES.len());
        let session = self.session_name("session");
        let start = self.out.len();
        let ok = self.issue_assume_role_via(
            Caller::Instance(i),
            account,
            role,
            Some(session),
            Kind::PivotSession,
            None,
            Some((ip, ATTACKER_UA)),
        );
        if !ok {
            return false;
        }
        if let Some((_, rec)) = self.out.get_mut(start) {
            rec.truth.kind = Kind::Ec2Pivot.name();
            rec.truth.offhost = true;
            rec.truth.offhost_reason = Some("outside_aws");
        }
        if let Some(c) = self.creds.last_mut() {
            c.ancestor = true;
        }
        // The session's calls (which make the address an identity's) come
        // in later seconds than the flagged call.
        self.ctx.now = self.ctx.now.saturating_add(1);
        true
    }

    /// `AssociateAddress` by `allocationId` alone (no `publicIp` anywhere in
    /// the record): the instance's public IPv4 address changes. In a second
    /// of its own, so no call from the old address sorts after it.
    fn eip_move(&mut self, i: usize) -> bool {
        let Some(account) = self.instances.get(i).map(|c| c.account) else {
            return false;
        };
        let Some(u) = self.random_user_in(account) else {
            return false;
        };
        let new_ip = aws_v4(self.ctx.rng.u64(..));
        self.ctx.now = self.ctx.now.saturating_add(1);
        let (Some(acct), Some(inst)) = (self.accounts.get(account), self.instances.get(i)) else {
            return false;
        };
        let Some(user) = acct.users.get(u) else {
            return false;
        };
        let iid = inst.root.strip_prefix("ec2:").unwrap_or("");
        let line = associate_address_line(&mut self.ctx, user, acct, iid, None);
        let truth = key_truth(&user.key, 0, Kind::Ec2EipMove, false, false);
        self.emit(line, truth);
        self.mark_used(Caller::User(account, u));
        self.ctx.now = self.ctx.now.saturating_add(1);
        if let Some(inst) = self.instances.get_mut(i) {
            inst.ip = new_ip;
            if let Some(e) = inst.ec2.as_mut() {
                e.moved = true;
            }
        }
        true
    }

    /// A user names a federated user or a role session after a running
    /// instance (`i-0…`), and uses it from its own address: never instance
    /// credentials (SPEC 3.5).
    fn fake_instance(&mut self) -> bool {
        if self.instances.is_empty() {
            return false;
        }
        let k = self.ctx.index(self.instances.len());
        let Some(inst) = self.instances.get(k) else {
            return false;
        };
        let a = inst.account;
        let iid = inst.root.strip_prefix("ec2:").unwrap_or("i-0").to_string();
        let inst_role = match inst.ident {
            Ident::Role(r) => r,
            _ => HUMAN_ROLES.len(),
        };
        let Some(u) = self.random_user_in(a) else {
            return false;
        };
        let ok = if self.ctx.chance(400) {
            self.user_token_as(a, u, true, Some(&iid))
        } else {
            // Half the time even the instance's own role: the same ARN.
            let role = if self.ctx.chance(500) {
                inst_role
            } else {
                self.ctx.index(HUMAN_ROLES.len())
            };
            self.issue_assume_role(
                Caller::User(a, u),
                a,
                role,
                Some(iid),
                Kind::FakeInstance,
                None,
            )
        };
        // Its calls come in later seconds than the issuance.
        self.ctx.now = self.ctx.now.saturating_add(1);
        ok
    }

    /// Two or three `AssumeRole` hops in one second, written child first.
    fn same_second_chain(&mut self) -> bool {
        let Some((a, u)) = self.random_user() else {
            return false;
        };
        let hops = self.ctx.between(2, 3);
        let start = self.out.len();
        let mut caller = Caller::User(a, u);
        let mut account = a;
        for _ in 0..hops {
            let target = self.target_account(account);
            let role = self.ctx.index(HUMAN_ROLES.len());
            if !self.issue_assume_role(caller, target, role, None, Kind::Chain, None) {
                break;
            }
            caller = Caller::Cred(self.creds.len().saturating_sub(1));
            account = target;
        }
        if self.out.len() <= start {
            return false;
        }
        let mut block: Vec<_> = self.out.drain(start..).collect();
        for (_, r) in &mut block {
            if r.truth.kind == Kind::Chain.name() {
                r.truth.kind = Kind::SameSecondChain.name();
            }
        }
        self.out.extend(block.into_iter().rev());
        true
    }

    /// An Identity Center sign-in: `AssumeRoleWithSAML` through the
    /// `AWSSSO_…_DO_NOT_DELETE` provider into an `AWSReservedSSO_…` role.
    fn sso_sign_in(&mut self) -> bool {
        let a = self.ctx.index(self.accounts.len());
        let h = self.ctx.index(HUMANS.len());
        let ps = self.ctx.index(SSO_PERMISSION_SETS.len());
        let acct_id = self.account_id(a);
        let key = self.new_key("ASIA", acct_id);
        let dur = self.ctx.duration();
        let assertion = self.ctx.unique_id("", 22);
        let Some(acct) = self.accounts.get(a) else {
            return false;
        };
        let Some(v) = acct.v11.as_deref() else {
            return false;
        };
        let role = v.sso_roles + ps;
        let user = HUMANS.get(h).copied().unwrap_or("user").to_string();
        let ip = ip_in(USER_NETS, mix(acct.salt, h as u64));
        let provider = v.sso_provider.clone();
        let principal_id = format!("{}:{user}", acct.name_qualifier);
        let root = format!("saml:AWSSSO/{user}");
        let issuer = format!(
            "https://portal.sso.{}.amazonaws.com/saml/assertion/{assertion}",
            acct.region
        );
        let cred = self.role_cred(Kind::Sso, a, role, &user, root, 1, ip, BROWSER_UA, key, dur);
        self.saml_sign_in_line(
            Kind::Sso,
            a,
            role,
            &SignIn {
                principal_id: &principal_id,
                user: &user,
                provider: &provider,
                issuer: &issuer,
            },
            cred,
            dur,
        )
    }

    /// A session of an `AWSReservedSSO_…` role whose sign-in is not in the
    /// trail (it happened before, or was logged elsewhere), and its call.
    fn sso_unobserved(&mut self) -> bool {
        let a = self.ctx.index(self.accounts.len());
        let h = self.ctx.index(HUMANS.len());
        let ps = self.ctx.index(SSO_PERMISSION_SETS.len());
        let back = self.ctx.between(60, 1800) as i64;
        let acct_id = self.account_id(a);
        let key = self.new_key("ASIA", acct_id);
        let Some(acct) = self.accounts.get(a) else {
            return false;
        };
        let Some(v) = acct.v11.as_deref() else {
            return false;
        };
        let role = v.sso_roles + ps;
        let user = HUMANS.get(h).copied().unwrap_or("user").to_string();
        let ip = ip_in(USER_NETS, mix(acct.salt, h as u64));
        let root = format!("saml:AWSSSO/{user}");
        let mut cred = self.role_cred(
            Kind::SsoUnobserved,
            a,
            role,
            &user,
            root,
            1,
            ip,
            BROWSER_UA,
            key,
            3600,
        );
        let issued = self.ctx.now.saturating_sub(back);
        cred.creation = iso(issued);
        cred.expires = issued.saturating_add(3600);
        cred.complete = None;
        self.add_cred(cred);
        let i = self.creds.len().saturating_sub(1);
        self.cred_call_at(i)
    }

    /// A session of a service-linked role (`role/aws-service-role/<service>/`),
    /// issued by the service itself (no issuance in the trail), and its call.
    fn service_linked(&mut self) -> bool {
        let a = self.ctx.index(self.accounts.len());
        let k = self.ctx.index(SERVICE_LINKED.len());
        let back = self.ctx.between(0, 600) as i64;
        let acct_id = self.account_id(a);
        let key = self.new_key("ASIA", acct_id);
        let Some(&(_, service, session)) = SERVICE_LINKED.get(k) else {
            return false;
        };
        let Some(v) = self.accounts.get(a).and_then(|x| x.v11.as_deref()) else {
            return false;
        };
        let role = v.slr_roles + k;
        let root = format!("service:{service}/{session}");
        let mut cred = self.role_cred(
            Kind::ServiceLinked,
            a,
            role,
            session,
            root,
            1,
            service.to_string(),
            service,
            key,
            3600,
        );
        let issued = self.ctx.now.saturating_sub(back);
        cred.creation = iso(issued);
        cred.expires = issued.saturating_add(3600);
        cred.invoked_by = Some(service);
        self.add_cred(cred);
        let i = self.creds.len().saturating_sub(1);
        self.cred_call_at(i)
    }

    // --- persistence -------------------------------------------------------

    fn create_key(&mut self) -> bool {
        for _ in 0..4 {
            if self.creds.is_empty() {
                return false;
            }
            let i = self.ctx.index(self.creds.len());
            let ok = self
                .creds
                .get(i)
                .is_some_and(|c| c.kind == Kind::Chain && !c.ancestor && self.ctx.now < c.expires);
            if ok {
                return self.create_key_with(i);
            }
        }
        false
    }

    fn create_key_with(&mut self, i: usize) -> bool {
        let Some(c) = self.creds.get(i) else {
            return false;
        };
        let (a, ip, ua) = (c.account, c.ip.clone(), c.ua);
        let acct_id = self.account_id(a);
        let name = format!("svc-backup-{}", self.ctx.hex(4));
        let user = User {
            id: self.next_id(),
            principal_id: self.ctx.unique_id("AIDA", 17),
            arn: self
                .accounts
                .get(a)
                .map(|x| format!("arn:aws:iam::{}:user/{name}", x.id_str))
                .unwrap_or_default(),
            key: self.new_key("AKIA", acct_id),
            name,
            ip,
            ua,
            last_call: None,
        };
        let (Some(acct), Some(c)) = (self.accounts.get(a), self.creds.get(i)) else {
            return false;
        };
        let ctx = &mut self.ctx;
        let mut j = begin(
            ctx,
            &Who::Cred(c),
            acct,
            IAM,
            "CreateAccessKey",
            "us-east-1",
            &c.ip,
            c.ua,
        );
        j.obj("requestParameters");
        j.str("userName", &user.name);
        j.end();
        j.obj("responseElements");
        j.obj("accessKey");
        j.str("userName", &user.name);
        j.str("accessKeyId", &user.key);
        j.str("status", "Active");
        j.str("createDate", &fmt_time(ctx.now, "%b %-d, %Y %-I:%M:%S %p"));
        j.end();
        j.end();
        let line = finish(
            j,
            ctx,
            &Tail {
                read_only: false,
                recipient: &acct.id_str,
                host: Some(IAM),
                ..Tail::default()
            },
        );
        let truth = cred_info(c).truth(Kind::CreatedKey);
        self.emit(line, truth);
        self.mark_used(Caller::Cred(i));
        let uid = user.id;
        let Some(acct) = self.accounts.get_mut(a) else {
            return false;
        };
        if acct.backdoors.len() >= BACKDOORS_PER_ACCOUNT {
            let k = self.ctx.index(acct.backdoors.len());
            if let Some(slot) = acct.backdoors.get_mut(k) {
                *slot = user;
            }
        } else {
            acct.backdoors.push(user);
        }
        self.push_fresh(Fresh::Backdoor(a, uid));
        true
    }
}

// ---------------------------------------------------------------------------
// Record writing

/// Minimal JSON object writer: compact, keys in call order, strings escaped.
struct J {
    s: String,
    comma: bool,
}

impl J {
    fn new() -> J {
        let mut s = String::with_capacity(1600);
        s.push('{');
        J { s, comma: false }
    }

    fn key(&mut self, k: &str) {
        if self.comma {
            self.s.push(',');
        }
        self.s.push('"');
        self.s.push_str(k);
        self.s.push_str("\":");
    }

    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        push_json_str(&mut self.s, v);
        self.comma = true;
    }

    fn raw(&mut self, k: &str, v: &str) {
        self.key(k);
        self.s.push_str(v);
        self.comma = true;
    }

    fn num(&mut self, k: &str, v: u64) {
        self.key(k);
        let _ = write!(self.s, "{v}");
        self.comma = true;
    }

    fn bool(&mut self, k: &str, v: bool) {
        self.raw(k, if v { "true" } else { "false" });
    }

    fn obj(&mut self, k: &str) {
        self.key(k);
        self.s.push('{');
        self.comma = false;
    }

    fn arr(&mut self, k: &str) {
        self.key(k);
        self.s.push('[');
        self.comma = false;
    }

    fn item_obj(&mut self) {
        if self.comma {
            self.s.push(',');
        }
        self.s.push('{');
        self.comma = false;
    }

    fn end(&mut self) {
        self.s.push('}');
        self.comma = true;
    }

    fn end_arr(&mut self) {
        self.s.push(']');
        self.comma = true;
    }

    fn finish(mut self) -> String {
        self.s.push('}');
        self.s
    }
}

fn push_json_str(out: &mut String, v: &str) {
    out.push('"');
    if v.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push_str(v);
    } else {
        for ch in v.chars() {
            match ch {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if u32::from(c) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", u32::from(c));
                }
                c => out.push(c),
            }
        }
    }
    out.push('"');
}

/// Who made the call, as `userIdentity` shows it.
enum Who<'a> {
    User(&'a User),
    Cred(&'a Cred),
    Service(&'a str),
    Saml {
        principal_id: &'a str,
        user_name: &'a str,
        provider: &'a str,
    },
    Web {
        principal_id: &'a str,
        user_name: &'a str,
        provider: &'a str,
    },
    /// The role owner's copy of a cross-account call.
    Account {
        principal_id: &'a str,
        account: &'a str,
    },
}

impl Who<'_> {
    fn arn(&self) -> &str {
        match self {
            Who::User(u) => &u.arn,
            Who::Cred(c) => &c.arn,
            _ => "",
        }
    }
}

/// The `userIdentity` of a key-carrying caller.
fn who_of<'a>(
    accounts: &'a [Account],
    creds: &'a [Cred],
    instances: &'a [Cred],
    c: Caller,
) -> Option<Who<'a>> {
    match c {
        Caller::User(a, u) => accounts.get(a)?.users.get(u).map(Who::User),
        Caller::Cred(i) => creds.get(i).map(Who::Cred),
        Caller::Instance(i) => instances.get(i).map(Who::Cred),
    }
}

/// The caller facts of a credential.
fn cred_info(c: &Cred) -> CallerInfo {
    CallerInfo {
        account: c.account,
        root: c.root.clone(),
        depth: c.depth,
        ip: c.ip.clone(),
        ua: c.ua,
        collision: c.collision,
        principal_id: c.principal_id.clone(),
        arn: c.arn.clone(),
        hint: c.arn.rsplit('/').next().unwrap_or("session").to_string(),
        complete: c.complete,
        ancestor: c.ancestor,
        instance: c
            .ec2
            .as_ref()
            .and_then(|_| c.root.strip_prefix("ec2:"))
            .map(str::to_string),
    }
}

fn write_identity(j: &mut J, who: &Who, acct: &Account) {
    j.obj("userIdentity");
    match who {
        Who::User(u) => {
            j.str("type", "IAMUser");
            j.str("principalId", &u.principal_id);
            j.str("arn", &u.arn);
            j.str("accountId", &acct.id_str);
            j.str("accessKeyId", &u.key);
            j.str("userName", &u.name);
        }
        Who::Cred(c) => write_cred_identity(j, c, acct),
        Who::Service(by) => {
            j.str("type", "AWSService");
            j.str("invokedBy", by);
        }
        Who::Saml {
            principal_id,
            user_name,
            provider,
        } => {
            j.str("type", "SAMLUser");
            j.str("principalId", principal_id);
            j.str("userName", user_name);
            j.str("identityProvider", provider);
        }
        Who::Web {
            principal_id,
            user_name,
            provider,
        } => {
            j.str("type", "WebIdentityUser");
            j.str("principalId", principal_id);
            j.str("userName", user_name);
            j.str("identityProvider", provider);
        }
        Who::Account {
            principal_id,
            account,
        } => {
            j.str("type", "AWSAccount");
            j.str("principalId", principal_id);
            j.str("accountId", account);
        }
    }
    j.end();
}

fn write_cred_identity(j: &mut J, c: &Cred, acct: &Account) {
    let ty = match c.ident {
        Ident::Role(_) => "AssumedRole",
        Ident::SessionToken => "IAMUser",
        Ident::Federated => "FederatedUser",
    };
    j.str("type", ty);
    j.str("principalId", &c.principal_id);
    j.str("arn", &c.arn);
    j.str("accountId", &acct.id_str);
    j.str("accessKeyId", &c.key);
    if let (Ident::SessionToken, Some(u)) = (&c.ident, &c.issuer_user) {
        j.str("userName", &u.name);
    }
    j.obj("sessionContext");
    match (&c.ident, &c.issuer_user) {
        (Ident::Role(r), _) => {
            if let Some(role) = acct.roles.get(*r) {
                j.obj("sessionIssuer");
                j.str("type", "Role");
                j.str("principalId", &role.id);
                j.str("arn", &role.arn);
                j.str("accountId", &acct.id_str);
                j.str("userName", &role.name);
                j.end();
            }
            j.obj("webIdFederationData");
            if let Some(w) = &c.web {
                j.str("federatedProvider", &w.provider);
                j.obj("attributes");
                let short = w.provider.rsplit('/').next().unwrap_or(&w.provider);
                j.str(&format!("{short}:aud"), &w.aud);
                j.str(&format!("{short}:sub"), &w.sub);
                j.end();
            }
            j.end();
        }
        (Ident::Federated, Some(u)) => {
            j.obj("sessionIssuer");
            j.str("type", "IAMUser");
            j.str("principalId", &u.principal_id);
            j.str("arn", &u.arn);
            j.str("accountId", &acct.id_str);
            j.str("userName", &u.name);
            j.end();
            j.obj("webIdFederationData");
            j.end();
        }
        _ => {}
    }
    j.obj("attributes");
    j.str("creationDate", &c.creation);
    j.str("mfaAuthenticated", if c.mfa { "true" } else { "false" });
    j.end();
    if c.ec2.is_some() {
        j.str("ec2RoleDelivery", "2.0");
    }
    j.end();
    if let Some(by) = c.invoked_by {
        j.str("invokedBy", by);
    }
}

/// `{` + eventVersion … userAgent, in CloudTrail's own key order.
#[allow(clippy::too_many_arguments)]
fn begin(
    ctx: &mut Ctx,
    who: &Who,
    acct: &Account,
    source: &str,
    name: &str,
    region: &str,
    ip: &str,
    ua: &str,
) -> J {
    let mut j = J::new();
    let version = if source == EC2 || source == IAM {
        "1.09"
    } else {
        "1.08"
    };
    j.str("eventVersion", version);
    write_identity(&mut j, who, acct);
    j.str("eventTime", ctx.now_iso());
    j.str("eventSource", source);
    j.str("eventName", name);
    j.str("awsRegion", region);
    j.str("sourceIPAddress", ip);
    j.str("userAgent", ua);
    j
}

#[derive(Default)]
struct Tail<'a> {
    read_only: bool,
    recipient: &'a str,
    /// `tlsDetails.clientProvidedHostHeader`; no `tlsDetails` when `None`.
    host: Option<&'a str>,
    /// An IAM role resource: (ARN, accountId).
    resource: Option<(&'a str, &'a str)>,
    shared: Option<&'a str>,
    /// (vpcEndpointId, vpcEndpointAccountId).
    vpce: Option<(&'a str, &'a str)>,
    request_id: Option<&'a str>,
}

/// requestID … tlsDetails + `}`.
fn finish(mut j: J, ctx: &mut Ctx, t: &Tail) -> String {
    match t.request_id {
        Some(r) => j.str("requestID", r),
        None => {
            let r = ctx.uuid();
            j.str("requestID", &r);
        }
    }
    let e = ctx.uuid();
    j.str("eventID", &e);
    j.bool("readOnly", t.read_only);
    if let Some((arn, account)) = t.resource {
        j.arr("resources");
        j.item_obj();
        j.str("accountId", account);
        j.str("type", "AWS::IAM::Role");
        j.str("ARN", arn);
        j.end();
        j.end_arr();
    }
    j.str("eventType", "AwsApiCall");
    j.bool("managementEvent", true);
    j.str("recipientAccountId", t.recipient);
    if let Some(s) = t.shared {
        j.str("sharedEventID", s);
    }
    if let Some((id, account)) = t.vpce {
        j.str("vpcEndpointId", id);
        j.str("vpcEndpointAccountId", account);
    }
    j.str("eventCategory", "Management");
    if let Some(h) = t.host {
        j.obj("tlsDetails");
        if ctx.chance(850) {
            j.str("tlsVersion", "TLSv1.3");
            j.str("cipherSuite", "TLS_AES_128_GCM_SHA256");
        } else {
            j.str("tlsVersion", "TLSv1.2");
            j.str("cipherSuite", "ECDHE-RSA-AES128-GCM-SHA256");
        }
        j.str("clientProvidedHostHeader", h);
        j.end();
    }
    j.finish()
}

fn host(source: &str, region: &str) -> String {
    if source == IAM {
        return IAM.to_string();
    }
    let svc = source.strip_suffix(".amazonaws.com").unwrap_or(source);
    format!("{svc}.{region}.amazonaws.com")
}

fn region_for<'a>(source: &str, acct: &'a Account) -> &'a str {
    if source == IAM {
        "us-east-1"
    } else {
        acct.region
    }
}

/// An ordinary API call (Describe*/List*/Get*, a few writes, ~2% denied).
fn call_line(
    ctx: &mut Ctx,
    who: &Who,
    acct: &Account,
    ip: &str,
    ua: &str,
    vpce: Option<(&str, &str)>,
) -> String {
    let i = ctx.index(APIS.len());
    let (source, name, read_only) =
        APIS.get(i)
            .copied()
            .unwrap_or((STS, "GetCallerIdentity", true));
    let region = region_for(source, acct);
    let mut j = begin(ctx, who, acct, source, name, region, ip, ua);
    let denied = read_only && name != "GetCallerIdentity" && ctx.chance(20);
    let svc = source.strip_suffix(".amazonaws.com").unwrap_or(source);
    if denied {
        let (code, prefix) = if source == EC2 {
            (
                "Client.UnauthorizedOperation",
                "You are not authorized to perform this operation. ",
            )
        } else {
            ("AccessDenied", "")
        };
        j.str("errorCode", code);
        j.str(
            "errorMessage",
            &format!(
                "{prefix}User: {} is not authorized to perform: {svc}:{name} on resource: * because no identity-based policy allows the {svc}:{name} action",
                who.arn()
            ),
        );
    }
    write_params(&mut j, ctx, name, acct);
    if name == "CreateTags" {
        j.obj("responseElements");
        let r = ctx.uuid();
        j.str("requestId", &r);
        j.bool("_return", true);
        j.end();
    } else {
        j.raw("responseElements", "null");
    }
    let host = host(source, region);
    finish(
        j,
        ctx,
        &Tail {
            read_only,
            recipient: &acct.id_str,
            host: Some(&host),
            vpce,
            ..Tail::default()
        },
    )
}

fn write_params(j: &mut J, ctx: &mut Ctx, name: &str, acct: &Account) {
    let null = matches!(
        name,
        "GetCallerIdentity" | "GetUser" | "ListRoles" | "ListFunctions20150331" | "ListKeys"
    );
    if null {
        j.raw("requestParameters", "null");
        return;
    }
    j.obj("requestParameters");
    match name {
        "DescribeInstances" => {
            j.raw("instancesSet", "{}");
            j.raw("filterSet", "{}");
        }
        "DescribeSecurityGroups" => {
            j.raw("securityGroupSet", "{}");
            j.raw("securityGroupIdSet", "{}");
            j.raw("filterSet", "{}");
        }
        "DescribeVolumes" => {
            j.raw("volumeSet", "{}");
            j.raw("filterSet", "{}");
        }
        "DescribeRegions" => j.raw("regionSet", "{}"),
        "CreateTags" => {
            j.obj("resourcesSet");
            j.arr("items");
            j.item_obj();
            let id = format!("i-0{}", ctx.hex(16));
            j.str("resourceId", &id);
            j.end();
            j.end_arr();
            j.end();
            j.obj("tagSet");
            j.arr("items");
            j.item_obj();
            j.str("key", "CostCenter");
            j.str("value", "platform");
            j.end();
            j.end_arr();
            j.end();
        }
        "ListAttachedRolePolicies" => {
            let role = ctx.pick(HUMAN_ROLES);
            j.str("roleName", role);
        }
        "ListBuckets" => j.str("Host", "s3.amazonaws.com"),
        "GetBucketPolicy" => {
            let bucket = format!("{}-app-logs", acct.id_str);
            j.str(
                "Host",
                &format!("{bucket}.s3.{}.amazonaws.com", acct.region),
            );
            j.str("bucketName", &bucket);
            j.str("policy", "");
        }
        "DescribeInstanceInformation" => j.num("maxResults", 50),
        "GetParameter" => {
            j.str("name", "/prod/app/db-host");
            j.bool("withDecryption", false);
        }
        "GetSecretValue" => j.str("secretId", "prod/app/api-key"),
        "DescribeTrails" => j.bool("includeShadowTrails", false),
        "DescribeLogGroups" => j.num("limit", 50),
        "DescribeTable" => j.str("tableName", "orders"),
        _ => {}
    }
    j.end();
}

fn write_credentials(j: &mut J, ctx: &mut Ctx, c: &Cred) {
    j.obj("credentials");
    j.str("accessKeyId", &c.key);
    let token = ctx.token();
    j.str("sessionToken", &token);
    j.str(
        "expiration",
        &fmt_time(c.expires, "%b %-d, %Y, %-I:%M:%S %p"),
    );
    j.end();
}

fn write_assumed_role_user(j: &mut J, c: &Cred) {
    j.obj("assumedRoleUser");
    j.str("assumedRoleId", &c.principal_id);
    j.str("arn", &c.arn);
    j.end();
}

/// Where an `AssumeRole` is written: the caller's copy or the role owner's.
#[derive(Clone, Copy)]
struct IssueCtx<'a> {
    caller_acct: &'a Account,
    role_acct: &'a Account,
    recipient: &'a str,
    ip: &'a str,
    ua: &'a str,
    request_id: &'a str,
    shared: Option<&'a str>,
    dur: Option<u64>,
}

fn assume_role_line(ctx: &mut Ctx, who: &Who, w: &IssueCtx, cred: &Cred, role: usize) -> String {
    let acct = w.caller_acct;
    let role_arn = w.role_acct.roles.get(role).map_or("", |r| r.arn.as_str());
    let session = cred.arn.rsplit('/').next().unwrap_or("");
    let mut j = begin(ctx, who, acct, STS, "AssumeRole", acct.region, w.ip, w.ua);
    j.obj("requestParameters");
    j.str("roleArn", role_arn);
    j.str("roleSessionName", session);
    if let Some(d) = w.dur {
        j.num("durationSeconds", d);
    }
    j.end();
    j.obj("responseElements");
    write_credentials(&mut j, ctx, cred);
    write_assumed_role_user(&mut j, cred);
    j.end();
    let host = host(STS, acct.region);
    finish(
        j,
        ctx,
        &Tail {
            read_only: true,
            recipient: w.recipient,
            host: Some(&host),
            resource: Some((role_arn, &w.role_acct.id_str)),
            shared: w.shared,
            request_id: Some(w.request_id),
            ..Tail::default()
        },
    )
}

fn run_instances_line(
    ctx: &mut Ctx,
    user: &User,
    acct: &Account,
    role: usize,
    instance_id: &str,
    private_ip: &str,
) -> String {
    let mut j = begin(
        ctx,
        &Who::User(user),
        acct,
        EC2,
        "RunInstances",
        acct.region,
        &user.ip,
        user.ua,
    );
    let image = format!("ami-0{}", ctx.hex(16));
    let subnet = format!("subnet-0{}", ctx.hex(16));
    let vpc = format!("vpc-0{}", ctx.hex(16));
    let role_name = acct.roles.get(role).map_or("", |r| r.name.as_str());
    let profile = format!("arn:aws:iam::{}:instance-profile/{role_name}", acct.id_str);
    j.obj("requestParameters");
    j.obj("instancesSet");
    j.arr("items");
    j.item_obj();
    j.str("imageId", &image);
    j.num("minCount", 1);
    j.num("maxCount", 1);
    j.end();
    j.end_arr();
    j.end();
    j.str("instanceType", "t3.medium");
    j.raw("blockDeviceMapping", "{}");
    j.obj("iamInstanceProfile");
    j.str("arn", &profile);
    j.end();
    j.str("subnetId", &subnet);
    j.bool("disableApiTermination", false);
    j.end();
    j.obj("responseElements");
    let req = ctx.uuid();
    j.str("requestId", &req);
    let reservation = format!("r-0{}", ctx.hex(16));
    j.str("reservationId", &reservation);
    j.str("ownerId", &acct.id_str);
    j.raw("groupSet", "{}");
    j.obj("instancesSet");
    j.arr("items");
    j.item_obj();
    j.str("instanceId", instance_id);
    j.str("imageId", &image);
    j.raw("instanceState", "{\"code\":0,\"name\":\"pending\"}");
    j.str(
        "privateDnsName",
        &format!("ip-{}.ec2.internal", private_ip.replace('.', "-")),
    );
    j.num("amiLaunchIndex", 0);
    j.str("instanceType", "t3.medium");
    let launch_ms = u64::try_from(ctx.now.saturating_mul(1000)).unwrap_or(0);
    j.num("launchTime", launch_ms);
    j.obj("placement");
    j.str("availabilityZone", &format!("{}a", acct.region));
    j.str("tenancy", "default");
    j.end();
    j.str("subnetId", &subnet);
    j.str("vpcId", &vpc);
    j.str("privateIpAddress", private_ip);
    j.obj("iamInstanceProfile");
    j.str("arn", &profile);
    let profile_id = ctx.unique_id("AIPA", 17);
    j.str("id", &profile_id);
    j.end();
    j.end();
    j.end_arr();
    j.end();
    j.end();
    let host = host(EC2, acct.region);
    finish(
        j,
        ctx,
        &Tail {
            read_only: false,
            recipient: &acct.id_str,
            host: Some(&host),
            ..Tail::default()
        },
    )
}

/// Who signs in through SAML, for [`Sim::saml_sign_in_line`].
struct SignIn<'s> {
    principal_id: &'s str,
    user: &'s str,
    provider: &'s str,
    issuer: &'s str,
}

/// `AssociateAddress` of an Elastic IP to `instance_id`: naming the address
/// (`publicIp`), or in its VPC form (`allocationId`, no `publicIp`).
fn associate_address_line(
    ctx: &mut Ctx,
    user: &User,
    acct: &Account,
    instance_id: &str,
    public_ip: Option<&str>,
) -> String {
    let mut j = begin(
        ctx,
        &Who::User(user),
        acct,
        EC2,
        "AssociateAddress",
        acct.region,
        &user.ip,
        user.ua,
    );
    j.obj("requestParameters");
    let alloc = format!("eipalloc-0{}", ctx.hex(16));
    match public_ip {
        Some(ip) => {
            j.str("instanceId", instance_id);
            j.str("publicIp", ip);
            j.str("allocationId", &alloc);
            j.bool("allowReassociation", false);
        }
        None => {
            j.str("allocationId", &alloc);
            j.str("instanceId", instance_id);
            j.bool("allowReassociation", true);
        }
    }
    j.end();
    j.obj("responseElements");
    let req = ctx.uuid();
    j.str("requestId", &req);
    j.bool("_return", true);
    let assoc = format!("eipassoc-0{}", ctx.hex(16));
    j.str("associationId", &assoc);
    j.end();
    let host = host(EC2, acct.region);
    finish(
        j,
        ctx,
        &Tail {
            read_only: false,
            recipient: &acct.id_str,
            host: Some(&host),
            ..Tail::default()
        },
    )
}

// ---------------------------------------------------------------------------
// Small helpers

fn key_truth(root: &str, depth: u32, kind: Kind, collision: bool, offhost: bool) -> Truth {
    Truth {
        lineage_root: Some(root.to_string()),
        lineage_depth: Some(depth),
        lineage_complete: Some(true),
        offhost,
        offhost_reason: None,
        offhost_other_identity: None,
        offhost_ancestor: false,
        ec2_instance_id: None,
        collision,
        kind: kind.name(),
        duplicate: false,
        late: false,
        lake_time: false,
    }
}

fn none_truth(kind: Kind) -> Truth {
    Truth {
        lineage_root: None,
        lineage_depth: None,
        lineage_complete: None,
        offhost: false,
        offhost_reason: None,
        offhost_other_identity: None,
        offhost_ancestor: false,
        ec2_instance_id: None,
        collision: false,
        kind: kind.name(),
        duplicate: false,
        late: false,
        lake_time: false,
    }
}

/// An address inside one of the EC2 prefixes `AWS_V4` (never `.0`/`.255`).
fn aws_v4(h: u64) -> String {
    let n = h.checked_rem(AWS_V4.len() as u64).unwrap_or(0) as usize;
    let (base, len) = AWS_V4.get(n).copied().unwrap_or(([3, 224, 0, 0], 12));
    let host_bits = 32 - len;
    let host = ((h >> 8) as u32) & ((1u32 << host_bits) - 1);
    let mut a = u32::from_be_bytes(base) | host;
    match a & 0xff {
        0 => a |= 1,
        255 => a -= 1,
        _ => {}
    }
    std::net::Ipv4Addr::from(a).to_string()
}

/// An address inside one of the EC2 IPv6 prefixes `AWS_V6`.
fn aws_v6(h: u64) -> String {
    let n = h.checked_rem(AWS_V6.len() as u64).unwrap_or(0) as usize;
    let (base, len) = AWS_V6.get(n).copied().unwrap_or((0x2600_1f18 << 96, 33));
    let low = u128::from(mix(h, 6)) << 64 | u128::from(mix(h, 7));
    let mask = (1u128 << (128 - len)) - 1;
    std::net::Ipv6Addr::from(base | (low & mask)).to_string()
}

fn fmt_time(t: i64, pattern: &str) -> String {
    DateTime::from_timestamp(t.clamp(0, MAX_TS), 0)
        .map(|d| d.format(pattern).to_string())
        .unwrap_or_default()
}

fn iso(t: i64) -> String {
    fmt_time(t, "%Y-%m-%dT%H:%M:%SZ")
}

/// An IPv4 address whose first octet comes from `nets`.
fn ip_in(nets: &[u8], h: u64) -> String {
    let n = h.checked_rem(nets.len() as u64).unwrap_or(0) as usize;
    let first = nets.get(n).copied().unwrap_or(198);
    format!(
        "{first}.{}.{}.{}",
        (h >> 8) & 0xff,
        (h >> 16) & 0xff,
        1 + (h >> 24) % 254
    )
}

/// SplitMix64 of two words: stable per-entity values without state.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A seeded bijection on u32, so distinct counters give distinct key tails.
fn permute32(x: u32, seed: u64) -> u32 {
    let mut v = x ^ (seed as u32);
    v = v.wrapping_mul(0x9e37_79b1);
    v ^= v >> 15;
    v = v.wrapping_mul(0x85eb_ca77);
    v ^= v >> 13;
    v ^ ((seed >> 32) as u32)
}

const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// prefix + base32(z as 6 bytes ‖ tail as 4 bytes), z = 1<<47 | account<<7 | low7.
fn encode_key(prefix: &str, account: u64, low7: u8, tail: u32) -> String {
    let z = (1u64 << 47) | ((account & ((1 << 40) - 1)) << 7) | u64::from(low7 & 0x7f);
    let v = (u128::from(z) << 32) | u128::from(tail);
    let mut s = String::with_capacity(prefix.len() + 16);
    s.push_str(prefix);
    for i in 0..16u32 {
        let idx = ((v >> (75 - 5 * i)) & 31) as usize;
        s.push(char::from(B32[idx]));
    }
    s
}

#[cfg(test)]
mod tests {
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
                    let created = s(ui, &["sessionContext", "attributes", "creationDate"])
                        .unwrap_or_default();
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
                        let (acct, name) =
                            role.strip_prefix("arn:aws:iam::")?.split_once(":role/")?;
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
                    let issuer =
                        s(ui, &["sessionContext", "sessionIssuer", "arn"]).unwrap_or_default();
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
                    - DateTime::parse_from_rfc3339(&format!("{time}Z"))
                        .map_or(0, |m| m.timestamp());
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
}
