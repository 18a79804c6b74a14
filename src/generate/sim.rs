//! The simulation loop: accounts, users and credential pools, one step per record, and the bookkeeping shared by every scenario.

use super::*;

impl Sim {
    pub(super) fn new(cfg: &TrailConfig) -> Sim {
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
    pub(super) fn add_v11(&mut self, acct: &mut Account, id: u64) {
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

    pub(super) fn new_account(&mut self, id: u64) -> Account {
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

    pub(super) fn new_user(
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

    pub(super) fn next_id(&mut self) -> u64 {
        self.next_id = self.next_id.wrapping_add(1);
        self.next_id
    }

    /// A key id for `account`, unique among the first 2^32 keys of a trail.
    pub(super) fn new_key(&mut self, prefix: &str, account: u64) -> String {
        self.key_counter = self.key_counter.wrapping_add(1);
        let low7 = self.ctx.rng.u8(..) & 0x7f;
        encode_key(
            prefix,
            account,
            low7,
            permute32(self.key_counter, self.seed),
        )
    }

    pub(super) fn account_id(&self, a: usize) -> u64 {
        self.accounts
            .get(a)
            .and_then(|x| x.id_str.parse().ok())
            .unwrap_or(0)
    }

    pub(super) fn emit(&mut self, mut line: String, mut truth: Truth) {
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

    pub(super) fn push_fresh(&mut self, f: Fresh) {
        if self.fresh.len() >= FRESH_CAP {
            self.fresh.pop_front();
        }
        self.fresh.push_back(f);
    }

    pub(super) fn add_cred(&mut self, c: Cred) {
        if self.creds.len() >= CRED_CAP {
            let i = self.ctx.index(self.creds.len());
            self.creds.swap_remove(i);
        }
        self.push_fresh(Fresh::Cred(c.id));
        self.creds.push(c);
    }

    /// One scenario step: at least one record, then the clock moves on.
    pub(super) fn step(&mut self) {
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

    pub(super) fn use_fresh(&mut self) -> bool {
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

    pub(super) fn random_user(&mut self) -> Option<(usize, usize)> {
        let a = self.ctx.index(self.accounts.len());
        let u = self.random_user_in(a)?;
        Some((a, u))
    }

    /// A user of account `a`. With the v1.1 shapes never the attacker user
    /// (index 0), so that its address is used by exactly one identity, the
    /// one `offhost_other_identity` names.
    pub(super) fn random_user_in(&mut self, a: usize) -> Option<usize> {
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
    pub(super) fn target_account(&mut self, a: usize) -> usize {
        if self.accounts.len() > 1 && self.ctx.chance(200) {
            self.ctx.index(self.accounts.len())
        } else {
            a
        }
    }

    pub(super) fn caller_info(&self, c: Caller) -> Option<CallerInfo> {
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

    pub(super) fn mark_used(&mut self, c: Caller) {
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

    pub(super) fn session_name(&mut self, hint: &str) -> String {
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
    pub(super) fn role_cred(
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
}
