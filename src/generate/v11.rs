//! The remaining SPEC v1.1 shapes: users named like instances, same-second chains, IAM Identity Center sessions and service-linked roles.

use super::*;

impl Sim {
    /// A user names a federated user or a role session after a running
    /// instance (`i-0…`), and uses it from its own address: never instance
    /// credentials (SPEC 3.5).
    pub(super) fn fake_instance(&mut self) -> bool {
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
    pub(super) fn same_second_chain(&mut self) -> bool {
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
    pub(super) fn sso_sign_in(&mut self) -> bool {
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
    pub(super) fn sso_unobserved(&mut self) -> bool {
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
    pub(super) fn service_linked(&mut self) -> bool {
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
}
