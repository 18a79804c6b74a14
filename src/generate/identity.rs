//! Who made a call, written as CloudTrail's `userIdentity`: users, sessions, services and their `sessionContext`.

use super::*;

/// Who made the call, as `userIdentity` shows it.
pub(super) enum Who<'a> {
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
    pub(super) fn arn(&self) -> &str {
        match self {
            Who::User(u) => &u.arn,
            Who::Cred(c) => &c.arn,
            _ => "",
        }
    }
}

/// The `userIdentity` of a key-carrying caller.
pub(super) fn who_of<'a>(
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
pub(super) fn cred_info(c: &Cred) -> CallerInfo {
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

pub(super) fn write_identity(j: &mut J, who: &Who, acct: &Account) {
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

pub(super) fn write_cred_identity(j: &mut J, c: &Cred, acct: &Account) {
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
pub(super) fn begin(
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
