//! Issuances with no caller key: SAML and web-identity sign-ins, service roles (Lambda), and failed STS calls.

use super::*;

impl Sim {
    pub(super) fn saml(&mut self) -> bool {
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
    pub(super) fn saml_sign_in_line(
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

    pub(super) fn web_identity(&mut self) -> bool {
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

    pub(super) fn service_issue(&mut self) -> bool {
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
    pub(super) fn service_assume_role(&mut self, cred: &Cred, role: usize, by: &str) -> String {
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

    pub(super) fn failed_sts(&mut self) -> bool {
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
}
