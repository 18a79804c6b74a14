//! The generator's static vocabulary: regions, role and user names, user agents, address pools (checked against AWS's published ranges), API mixes and pool caps.

pub(super) const REGIONS: &[&str] = &[
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-southeast-2",
    "ap-northeast-1",
];
pub(super) const HUMAN_ROLES: &[&str] = &[
    "OrganizationAccountAccessRole",
    "Admin",
    "ReadOnly",
    "DevOpsDeploy",
    "DataEngineer",
    "SecurityAudit",
    "BreakGlass",
    "ci-runner",
];
pub(super) const EC2_ROLES: &[&str] = &[
    "ec2-web-app-role",
    "ec2-batch-worker-role",
    "ec2-bastion-role",
];
pub(super) const FUNCTIONS: &[&str] = &[
    "orders-processor",
    "thumbnail-generator",
    "nightly-report",
    "slack-notifier",
    "etl-loader",
];
pub(super) const USER_NAMES: &[&str] = &[
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
pub(super) const ATTACKER_USER: &str = "ext-contractor";
pub(super) const HUMANS: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "oscar",
];
pub(super) const FED_NAMES: &[&str] = &[
    "deploy-broker",
    "contractor",
    "readonly-broker",
    "ci-federated",
    "support-session",
];
pub(super) const REPOS: &[&str] = &[
    "web-frontend",
    "payments-api",
    "infra-live",
    "data-pipeline",
];
pub(super) const USER_AGENTS: &[&str] = &[
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0-1014-aws exe/x86_64.ubuntu.22 prompt/off command/ec2.describe-instances",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1.79 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
    "aws-sdk-go-v2/1.32.3 os/linux lang/go#1.23.1 md/GOOS#linux md/GOARCH#amd64 api/sts#1.26.2",
    "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.42.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go/1.51.6 (go1.22.1; linux; amd64)",
    "aws-cli/2.15.30 Python/3.11.8 Darwin/23.4.0 exe/x86_64 prompt/off command/s3.ls",
];
pub(super) const ATTACKER_UA: &str =
    "aws-cli/1.32.69 Python/3.11.8 Linux/6.6.9-amd64 botocore/1.34.69";
pub(super) const EC2_UAS: &[&str] = &[
    "aws-sdk-java/2.25.13 Linux/5.10.215-203.850.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10 vendor/Amazon.com_Inc. md/internal exec-env/AWS_ECS_EC2 io/sync http/Apache cfg/retry-mode/legacy",
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.82-99.168.amzn2023.x86_64 exe/x86_64.amzn.2023 prompt/off command/s3.cp",
];
pub(super) const LAMBDA_UA: &str =
    "aws-sdk-nodejs/2.1354.0 linux/v18.19.0 exec-env/AWS_Lambda_nodejs18.x promise";
pub(super) const BROWSER_UA: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15";
pub(super) const MOBILE_UA: &str =
    "aws-sdk-js/3.540.0 ua/2.0 os/android#14 lang/js md/rn api/sts#3.540.0";
pub(super) const GITHUB_UA: &str = "aws-sdk-js/3.540.0 ua/2.0 os/linux#6.5.0-1017-azure lang/js md/nodejs#20.11.1 api/sts#3.540.0 configure-aws-credentials-for-github-actions";
pub(super) const GOOGLE: &str = "accounts.google.com";
pub(super) const GITHUB_OIDC: &str = "token.actions.githubusercontent.com";
pub(super) const TOKEN_PREFIX: &str = "IQoJb3JpZ2luX2Vj";
pub(super) const FED_POLICY: &str = "{\n\t\"Version\": \"2012-10-17\",\n\t\"Statement\": [\n\t\t{\"Effect\": \"Allow\", \"Action\": \"s3:GetObject\", \"Resource\": \"*\"}\n\t]\n}";

pub(super) const USER_NETS: &[u8] = &[24, 50, 68, 71, 73, 98, 99, 104];
pub(super) const GITHUB_NETS: &[u8] = &[4, 20, 40];
pub(super) const INSTANCE_NETS: &[u8] = &[3, 18, 34, 44, 52, 54];
pub(super) const LAMBDA_NETS: &[u8] = &[13, 15];
pub(super) const ATTACKER_NETS: &[u8] = &[45, 91, 185, 193];

// --- v1.1 address pools (checked against AWS's ip-ranges.json, syncToken
// 1787411825, 2026-08-22: see `/work/shared/data/aws-ip-ranges/`) ---

/// EC2 prefixes (`service: EC2`) of the AWS ranges: instances' public
/// addresses, NAT gateways and Elastic IPs. (first octets, prefix length)
pub(super) const AWS_V4: &[([u8; 4], u32)] = &[
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
pub(super) const AWS_V6: &[(u128, u32)] = &[
    (0x2600_1f18_0000_0000_0000_0000_0000_0000, 33),
    (0x2a05_d018_0000_0000_0000_0000_0000_0000, 35),
    (0x2600_1f14_0000_0000_0000_0000_0000_0000, 34),
];
/// `91.0.0.0/8`: no prefix of the AWS ranges inside; attackers' pivot
/// addresses, one per pivot.
pub(super) const PIVOT_NET: u8 = 91;
/// Outside AWS whatever the ranges file says (documentation ranges, SPEC
/// 3.5): the attacker user `ext-contractor` of account *k* (k < 508; beyond,
/// `193.0.0.0/8`, which holds no AWS prefix either).
pub(super) const DOC_NETS: [[u8; 3]; 2] = [[198, 51, 100], [192, 0, 2]];
/// `203.0.113.0/24`: SSRF attackers' addresses, never used by an identity.
pub(super) const SSRF_NET: [u8; 3] = [203, 0, 113];

/// IAM Identity Center permission sets (`AWSReservedSSO_<name>_<hash>` roles).
pub(super) const SSO_PERMISSION_SETS: &[&str] = &[
    "AdministratorAccess",
    "ReadOnlyAccess",
    "PowerUserAccess",
    "ViewOnlyAccess",
];
/// Service-linked roles: (role name, service of the role path, session name).
pub(super) const SERVICE_LINKED: &[(&str, &str, &str)] = &[
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
pub(super) const LAKE_PER_MILLE: u64 = 50;

pub(super) const STS: &str = "sts.amazonaws.com";
pub(super) const IAM: &str = "iam.amazonaws.com";
pub(super) const EC2: &str = "ec2.amazonaws.com";

/// Ordinary calls: (eventSource, eventName, readOnly).
pub(super) const APIS: &[(&str, &str, bool)] = &[
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
pub(super) const SERVICE_CALLS: &[(&str, &str, &str, &str)] = &[
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
pub(super) const MAX_ACCOUNTS: usize = 1000;
pub(super) const BACKDOORS_PER_ACCOUNT: usize = 2;
pub(super) const CRED_CAP: usize = 4096;
pub(super) const INSTANCE_CAP: usize = 1024;
pub(super) const INSTANCES_PER_ACCOUNT: usize = 4;
pub(super) const FRESH_CAP: usize = 64;
/// Share of steps (‰) given to the shapes only the v1.1 mix has.
pub(super) const V11_STEP_PER_MILLE: u64 = 150;
pub(super) const MAX_DEPTH: u32 = 4;
pub(super) const MAX_TS: i64 = 253_402_300_799;
