"""Secure defaults: every building block starts from these constants and small pure
functions, and nowhere else decides them.

A caller may override a default. An override that weakens security is reported with
:func:`warn_weakened`, which names the property, so it is never silent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pulumi

# -- logging and tracing -----------------------------------------------------------------------
LOG_RETENTION_DAYS = 365
LOG_RETENTION_PERIODS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                         3288, 3653)
"""The retention periods (days) CloudWatch Logs accepts (PutRetentionPolicy); never-expiring logs are not offered."""
TRACING_MODE = "Active"
ACCESS_LOGS = True  # every bucket and distribution of a case logs its requests into the case's log bucket
ACCESS_LOG_EXPIRY_DAYS = LOG_RETENTION_DAYS  # access log objects, then gone
CDN_LOG_FORMAT = "json"  # CloudFront standard logging (v2): one JSON object per request
CDN_LOG_REGION = "us-east-1"  # CloudFront's log delivery sources live there, whatever the stack's region


def log_retention_problems(days: int) -> list[str]:
    """A building block's ``log_retention_days`` problem: CloudWatch Logs refuses other periods."""
    if days in LOG_RETENTION_PERIODS:
        return []
    return [f"log_retention_days: {days} is not a period CloudWatch Logs keeps logs for "
            f"({', '.join(map(str, LOG_RETENTION_PERIODS))})"]


# -- Lambda -----------------------------------------------------------------------------------
LAMBDA_RUNTIME = "python3.12"
LAMBDA_ARCHITECTURE = "x86_64"
LAMBDA_MEMORY_MB = 256
LAMBDA_TIMEOUT_SECONDS = 10
LAMBDA_LOG_FORMAT = "JSON"
ASYNC_MAX_RETRIES = 2
ASYNC_MAX_EVENT_AGE_SECONDS = 3600

# -- stream sources (DynamoDB/Kinesis -> Lambda) ----------------------------------------------
STREAM_BATCH_SIZE = 10
STREAM_MAX_RETRIES = 3
STREAM_MAX_RECORD_AGE_SECONDS = 3600
STREAM_BISECT_ON_ERROR = True

# -- API Gateway ------------------------------------------------------------------------------
API_THROTTLE_RATE = 50.0
API_THROTTLE_BURST = 100
API_CACHE_TTL_SECONDS = 300
API_CACHE_CLUSTER_SIZE = "0.5"
API_STAGE_NAME = "v1"
API_EXECUTION_LOGGING_LEVEL = "ERROR"  # execution logs of failed requests; never request/response bodies
API_ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "sourceIp": "$context.identity.sourceIp",
        "caller": "$context.authorizer.claims.sub",
        "requestTime": "$context.requestTime",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "integrationLatency": "$context.integrationLatency",
    },
    separators=(",", ":"),
)

# -- storage ----------------------------------------------------------------------------------
BUCKET_SSE_ALGORITHM = "AES256"  # S3-managed keys: readable by CloudFront OAC without a KMS key policy
BUCKET_OBJECT_OWNERSHIP = "BucketOwnerEnforced"
DELETION_PROTECTION = True  # tables, user pools and buckets with objects: losing data takes an explicit choice
NONCURRENT_VERSION_EXPIRY_DAYS = 90  # old versions of overwritten or deleted objects, then gone
INCOMPLETE_UPLOAD_EXPIRY_DAYS = 7
TABLE_BILLING_MODE = "PAY_PER_REQUEST"
QUEUE_MESSAGE_RETENTION_SECONDS = 1_209_600  # 14 days, the maximum, for dead-letter queues
QUEUE_KMS_DATA_KEY_REUSE_SECONDS = 300  # SQS's default: fewer KMS calls, a data key lives 5 minutes
KMS_DELETION_WINDOW_DAYS = 30  # the longest: a key deleted by mistake can be restored for a month

# -- CDN --------------------------------------------------------------------------------------
CDN_VIEWER_PROTOCOL_POLICY = "redirect-to-https"
CDN_MINIMUM_TLS = "TLSv1.2_2021"  # with a custom domain's certificate (SNI)
# On the default *.cloudfront.net certificate CloudFront accepts TLSv1 whatever is asked, so
# that is what is stated: asking for more would be a false promise (and perpetual drift).
CDN_DEFAULT_CERTIFICATE_TLS = "TLSv1"
CDN_PRICE_CLASS = "PriceClass_100"
CDN_DEFAULT_ROOT_OBJECT = "index.html"
# AWS managed cache policy "CachingOptimized".
CDN_CACHING_OPTIMIZED_POLICY_ID = "658327ea-f89d-4fab-a63d-7e88639e58f6"
HSTS_MAX_AGE_SECONDS = 63_072_000

def bucket_lifecycle_rules(*, versioned: bool, expire_after_days: int | None = None) -> list[dict[str, Any]]:
    """Every bucket drops abandoned multipart uploads; a versioned one also expires old versions
    (versioning protects data; kept forever, old versions only cost); a bucket of logs expires
    its objects too."""
    rule: dict[str, Any] = {
        "id": "housekeeping", "status": "Enabled", "filter": {},
        "abort_incomplete_multipart_upload": {"days_after_initiation": INCOMPLETE_UPLOAD_EXPIRY_DAYS},
    }
    if versioned:
        rule["noncurrent_version_expiration"] = {"noncurrent_days": NONCURRENT_VERSION_EXPIRY_DAYS}
    if expire_after_days is not None:
        rule["expiration"] = {"days": expire_after_days}
    return [rule]


def viewer_certificate(certificate_arn: Any = None) -> dict[str, Any]:
    """A distribution's viewer certificate: a custom domain's ACM certificate (us-east-1) with
    SNI and TLS 1.2+, or, without one, the default certificate and the TLSv1 it really serves."""
    if certificate_arn is None:
        return {"cloudfront_default_certificate": True, "minimum_protocol_version": CDN_DEFAULT_CERTIFICATE_TLS}
    return {"acm_certificate_arn": certificate_arn, "ssl_support_method": "sni-only",
            "minimum_protocol_version": CDN_MINIMUM_TLS}


def custom_domain_problems(domain_names: Sequence[str], certificate_arn: str | None) -> list[str]:
    """``domain_names`` and ``certificate_arn`` (an ACM certificate in us-east-1) go together."""
    problems = []
    if bool(domain_names) != (certificate_arn is not None):
        problems.append("domain_names and certificate_arn go together")
    if certificate_arn is not None and not certificate_arn.startswith("arn:aws:acm:us-east-1:"):
        problems.append("certificate_arn: CloudFront needs an ACM certificate in us-east-1")
    for domain in domain_names:
        if not re.fullmatch(r"(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}", domain):
            problems.append(f"domain_names: {domain!r} is not a domain name")
    return problems


# -- WAF (optional: a web ACL bills ~$5 a month plus ~$1 per rule, idle or not) --------------------
WAF_RATE_LIMIT = 2000  # requests per address in 5 minutes
WAF_MANAGED_RULE_GROUP = "AWSManagedRulesCommonRuleSet"


# -- Cognito ----------------------------------------------------------------------------------
# Threat protection (advanced security, ENFORCED) exists only on the Plus feature plan; new
# pools default to Essentials, where asking for it fails with FeatureUnavailableInTierException.
USER_POOL_TIER = "PLUS"
USER_POOL_TIERS = ("LITE", "ESSENTIALS", "PLUS")
USER_POOL_THREAT_PROTECTION = "ENFORCED"


def user_pool_add_ons(tier: str) -> dict[str, str] | None:
    """Threat protection, enforced, where the tier offers it (Plus); none elsewhere."""
    return {"advanced_security_mode": USER_POOL_THREAT_PROTECTION} if tier == "PLUS" else None


# -- DAX and networking -----------------------------------------------------------------------
DAX_NODE_TYPE = "dax.t3.small"
DAX_REPLICATION_FACTOR = 3
DAX_TLS_PORT = 9111
VPC_CIDR = "10.20.0.0/16"
VPC_SUBNET_COUNT = 2


def warn_weakened(component: str, prop: str, value: object, default: object) -> None:
    """Say loudly that an override weakens a secure default."""
    pulumi.log.warn(
        f"{component}: {prop}={value!r} weakens the secure default ({default!r}); "
        "keep it only if you mean it"
    )


# -- IAM policy documents -------------------------------------------------------------------------
def policy_document(statements: Iterable[Mapping[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)}, sort_keys=True)


def allow(actions: Sequence[str], resources: Sequence[str], *, sid: str | None = None,
          condition: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One least-privilege Allow statement. Refuses a wildcard action on a wildcard resource."""
    if any(a == "*" for a in actions) and any(r == "*" for r in resources):
        raise ValueError("refusing an IAM statement that allows every action on every resource")
    statement: dict[str, Any] = {"Effect": "Allow", "Action": sorted(set(actions)), "Resource": list(resources)}
    if sid:
        statement["Sid"] = sid
    if condition:
        statement["Condition"] = dict(condition)
    return statement


def assume_role_policy(service: str, *, source_account: str | None = None) -> str:
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if source_account:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    return policy_document([statement])


def tls_only_statement(resources: Sequence[str]) -> dict[str, Any]:
    """Deny any request that does not use TLS (S3 buckets, SQS queues, SNS topics)."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "*",
        "Resource": list(resources),
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def service_principal_statement(service: str, actions: Sequence[str], resources: Sequence[str],
                                *, source_arn: str, source_account: str, sid: str) -> dict[str, Any]:
    """Allow one AWS service to act on a resource only for one source of this account."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": list(actions),
        "Resource": list(resources),
        "Condition": {
            "ArnEquals" if "*" not in source_arn else "ArnLike": {"aws:SourceArn": source_arn},
            "StringEquals": {"aws:SourceAccount": source_account},
        },
    }


def fanout_key_policy(*, account: str, bucket_arn: str, topic_arn_pattern: str) -> str:
    """The key policy of an S3 event fan-out key: the account administers it; S3 may use it only
    for the one bucket's events, SNS only for the fan-out topic's deliveries to its queue."""
    def service_use(service: str, source: str, sid: str) -> dict[str, Any]:
        return {"Sid": sid, "Effect": "Allow", "Principal": {"Service": service},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
                "Condition": {"ArnLike": {"aws:SourceArn": source}, "StringEquals": {"aws:SourceAccount": account}}}

    return policy_document([
        {"Sid": "AccountAdministers", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
         "Action": "kms:*", "Resource": "*"},
        service_use("s3.amazonaws.com", bucket_arn, "OnlyThisBucketsEvents"),
        service_use("sns.amazonaws.com", topic_arn_pattern, "OnlyTheFanoutTopic"),
    ])


S3_ACCESS_LOG_PREFIX = "s3"
CDN_ACCESS_LOG_PREFIX = "cloudfront"


def log_bucket_statements(bucket_arn: str, account: str) -> list[dict[str, Any]]:
    """Who may write into a log bucket, which has ACLs disabled (owner enforced), so delivery is
    granted by its policy: S3 server access logging (``logging.s3.amazonaws.com``) for this
    account's buckets, and CloudWatch's log delivery (``delivery.logs.amazonaws.com``, which
    carries CloudFront standard logging v2) for this account's delivery sources, each under its
    own prefix."""
    return [
        {"Sid": "S3ServerAccessLogs", "Effect": "Allow", "Principal": {"Service": "logging.s3.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": f"{bucket_arn}/{S3_ACCESS_LOG_PREFIX}/*",
         "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::*"}, "StringEquals": {"aws:SourceAccount": account}}},
        {"Sid": "CloudFrontStandardLogs", "Effect": "Allow", "Principal": {"Service": "delivery.logs.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": f"{bucket_arn}/{CDN_ACCESS_LOG_PREFIX}/*",
         "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:logs:{CDN_LOG_REGION}:{account}:delivery-source:*"},
                       "StringEquals": {"aws:SourceAccount": account, "s3:x-amz-acl": "bucket-owner-full-control"}}},
    ]


def lambda_basic_statements(log_group_arn: str) -> list[dict[str, Any]]:
    """What every function needs: write its own log group, send its traces."""
    return [
        allow(["logs:CreateLogStream", "logs:PutLogEvents"], [f"{log_group_arn}:*"], sid="OwnLogs"),
        # X-Ray has no resource-level permissions: the action list is what keeps this narrow.
        allow(["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"], sid="Tracing"),
    ]


API_GATEWAY_LOG_ACTIONS = ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogGroups",
                           "logs:DescribeLogStreams", "logs:PutLogEvents", "logs:GetLogEvents", "logs:FilterLogEvents")
"""What API Gateway does with the account's CloudWatch role: execution logs (groups it makes itself,
``API-Gateway-Execution-Logs_<api>/<stage>``) and access logs (groups the stacks make)."""


def api_gateway_logging_statements(partition: str, region: str, account: str) -> list[dict[str, Any]]:
    """The account's API Gateway CloudWatch role: write logs in this account and region only (AWS's
    managed policy for it allows every region and account's groups)."""
    return [allow(list(API_GATEWAY_LOG_ACTIONS), [f"arn:{partition}:logs:{region}:{account}:*"], sid="ApiGatewayLogs")]


def lambda_vpc_statements() -> list[dict[str, Any]]:
    # ENI management has no resource-level scoping for Create/Describe; actions are narrow.
    return [
        allow(
            ["ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface",
             "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"],
            ["*"],
            sid="VpcNetworkInterfaces",
        )
    ]


def public_access_block() -> dict[str, bool]:
    return {
        "block_public_acls": True,
        "block_public_policy": True,
        "ignore_public_acls": True,
        "restrict_public_buckets": True,
    }


_CLOUDFRONT_POLICY_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def cloudfront_policy_id_problems(field: str, policy_id: str | None) -> list[str]:
    """Why ``policy_id`` cannot name a CloudFront policy (their ids, AWS's managed ones and an
    account's own, are lowercase UUIDs)."""
    if policy_id is None or _CLOUDFRONT_POLICY_ID.fullmatch(policy_id):
        return []
    return [f"{field}: {policy_id!r} is not a CloudFront policy id (a UUID such as "
            f"{CDN_CACHING_OPTIMIZED_POLICY_ID})"]


def security_headers() -> dict[str, Any]:
    """CloudFront response-headers policy: HSTS, nosniff, frame denial, referrer policy, XSS."""
    return {
        "strict_transport_security": {
            "access_control_max_age_sec": HSTS_MAX_AGE_SECONDS,
            "include_subdomains": True,
            "preload": True,
            "override": True,
        },
        "content_type_options": {"override": True},
        "frame_options": {"frame_option": "DENY", "override": True},
        "referrer_policy": {"referrer_policy": "strict-origin-when-cross-origin", "override": True},
        "xss_protection": {"protection": True, "mode_block": True, "override": True},
    }
