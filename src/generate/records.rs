//! Whole CloudTrail records: the common head and tail, ordinary calls with their parameters, and the STS / EC2 records that issue credentials or move addresses.

use super::*;

#[derive(Default)]
pub(super) struct Tail<'a> {
    pub(super) read_only: bool,
    pub(super) recipient: &'a str,
    /// `tlsDetails.clientProvidedHostHeader`; no `tlsDetails` when `None`.
    pub(super) host: Option<&'a str>,
    /// An IAM role resource: (ARN, accountId).
    pub(super) resource: Option<(&'a str, &'a str)>,
    pub(super) shared: Option<&'a str>,
    /// (vpcEndpointId, vpcEndpointAccountId).
    pub(super) vpce: Option<(&'a str, &'a str)>,
    pub(super) request_id: Option<&'a str>,
}

/// requestID … tlsDetails + `}`.
pub(super) fn finish(mut j: J, ctx: &mut Ctx, t: &Tail) -> String {
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

pub(super) fn host(source: &str, region: &str) -> String {
    if source == IAM {
        return IAM.to_string();
    }
    let svc = source.strip_suffix(".amazonaws.com").unwrap_or(source);
    format!("{svc}.{region}.amazonaws.com")
}

pub(super) fn region_for<'a>(source: &str, acct: &'a Account) -> &'a str {
    if source == IAM {
        "us-east-1"
    } else {
        acct.region
    }
}

/// An ordinary API call (Describe*/List*/Get*, a few writes, ~2% denied).
pub(super) fn call_line(
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

pub(super) fn write_params(j: &mut J, ctx: &mut Ctx, name: &str, acct: &Account) {
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

pub(super) fn write_credentials(j: &mut J, ctx: &mut Ctx, c: &Cred) {
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

pub(super) fn write_assumed_role_user(j: &mut J, c: &Cred) {
    j.obj("assumedRoleUser");
    j.str("assumedRoleId", &c.principal_id);
    j.str("arn", &c.arn);
    j.end();
}

/// Where an `AssumeRole` is written: the caller's copy or the role owner's.
#[derive(Clone, Copy)]
pub(super) struct IssueCtx<'a> {
    pub(super) caller_acct: &'a Account,
    pub(super) role_acct: &'a Account,
    pub(super) recipient: &'a str,
    pub(super) ip: &'a str,
    pub(super) ua: &'a str,
    pub(super) request_id: &'a str,
    pub(super) shared: Option<&'a str>,
    pub(super) dur: Option<u64>,
}

pub(super) fn assume_role_line(
    ctx: &mut Ctx,
    who: &Who,
    w: &IssueCtx,
    cred: &Cred,
    role: usize,
) -> String {
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

pub(super) fn run_instances_line(
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
pub(super) struct SignIn<'s> {
    pub(super) principal_id: &'s str,
    pub(super) user: &'s str,
    pub(super) provider: &'s str,
    pub(super) issuer: &'s str,
}

/// `AssociateAddress` of an Elastic IP to `instance_id`: naming the address
/// (`publicIp`), or in its VPC form (`allocationId`, no `publicIp`).
pub(super) fn associate_address_line(
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
