//! Issuances by keys and sessions: `AssumeRole` chains, same-second key-ID collisions, session and federation tokens, and `CreateAccessKey`.

use super::*;

impl Sim {
    pub(super) fn user_assume_role(&mut self) -> bool {
        let Some((a, u)) = self.random_user() else {
            return false;
        };
        let target = self.target_account(a);
        let role = self.ctx.index(HUMAN_ROLES.len());
        self.issue_assume_role(Caller::User(a, u), target, role, None, Kind::Chain, None)
    }

    pub(super) fn chain_assume_role(&mut self) -> bool {
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
    pub(super) fn issue_assume_role(
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
    pub(super) fn issue_assume_role_via(
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

    pub(super) fn collision(&mut self) -> bool {
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
    pub(super) fn user_token(&mut self, federated: bool) -> bool {
        let Some((a, u)) = self.random_user() else {
            return false;
        };
        self.user_token_as(a, u, federated, None)
    }

    /// `user_token` by user `u` of account `a`; with `fake`, a federated
    /// user of that name (an instance ID) and kind `fake_instance`.
    pub(super) fn user_token_as(
        &mut self,
        a: usize,
        u: usize,
        federated: bool,
        fake: Option<&str>,
    ) -> bool {
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

    pub(super) fn create_key(&mut self) -> bool {
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

    pub(super) fn create_key_with(&mut self, i: usize) -> bool {
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
