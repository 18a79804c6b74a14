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

mod calls;
mod delivery;
mod ec2;
mod federated;
mod identity;
mod json;
mod kinds;
mod records;
mod sim;
mod sts;
#[cfg(test)]
mod tests;
mod util;
mod v11;
mod vocab;

pub use self::delivery::{GeneratedLine, Lines};
use self::{delivery::*, identity::*, json::*, kinds::*, records::*, util::*, vocab::*};

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
