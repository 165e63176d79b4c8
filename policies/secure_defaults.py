"""The project's secure defaults as policies: what "secure by default" promises, checked by the
engine on every preview and update.

Plain Python with no dependency, so the service validates pack configuration against it and
tests call each check directly; ``__main__.py`` hands the same checks to the engine through
pulumi-policy. A check takes a resource (type, URN, properties in the engine's camelCase form)
and yields a message for each violation; a stack check takes every resource of the stack and
yields ``(urn, message)``.

**Mandatory** policies are promises the components keep whatever their arguments: a stack
that breaks one is stopped. **Advisory** ones are hardening a case leaves to an argument (WAF,
customer-managed keys, the Cognito tier, access logs...): reported, never blocking, unless a
pack configuration raises them to mandatory.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MANDATORY = "mandatory"
ADVISORY = "advisory"
DISABLED = "disabled"
LEVELS = (ADVISORY, MANDATORY, DISABLED)
PACK_NAME = "serverless-cases-secure-defaults"


@dataclass(frozen=True)
class Resource:
    type: str
    urn: str
    props: Mapping[str, Any]


ResourceCheck = Callable[[Resource], Iterable[str]]
StackCheck = Callable[[Sequence[Resource]], Iterable[tuple[str, str]]]


@dataclass(frozen=True)
class Policy:
    name: str
    description: str
    level: str
    types: tuple[str, ...] = ()
    """The resource types a resource check applies to."""
    check: ResourceCheck | None = None
    check_stack: StackCheck | None = None


POLICIES: list[Policy] = []


def _policy(name: str, description: str, level: str, *types: str) -> Callable[[ResourceCheck], ResourceCheck]:
    def register(check: ResourceCheck) -> ResourceCheck:
        POLICIES.append(Policy(name, description, level, types, check=check))
        return check
    return register


def _stack_policy(name: str, description: str, level: str) -> Callable[[StackCheck], StackCheck]:
    def register(check: StackCheck) -> StackCheck:
        POLICIES.append(Policy(name, description, level, check_stack=check))
        return check
    return register


def by_name() -> dict[str, Policy]:
    return {p.name: p for p in POLICIES}


def _get(value: Any, *path: str | int) -> Any:
    for key in path:
        if isinstance(key, int):
            if not isinstance(value, Sequence) or isinstance(value, str) or len(value) <= key:
                return None
            value = value[key]
        else:
            if not isinstance(value, Mapping):
                return None
            value = value.get(key)
    return value


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, Sequence) and not isinstance(value, str):
        return list(value)
    return [value]


def _statements(document: Any) -> list[Mapping[str, Any]]:
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return []
    return [s for s in _list(_get(document, "Statement")) if isinstance(s, Mapping)]


def _of_type(resources: Sequence[Resource], type_token: str) -> list[Resource]:
    return [r for r in resources if r.type == type_token]


BUCKET = "aws:s3/bucket:Bucket"


def _buckets_without(resources: Sequence[Resource], setting: str, good: Callable[[Resource], bool],
                     what: str) -> Iterator[tuple[str, str]]:
    """Every bucket that no ``setting`` resource of the stack configures as ``good``."""
    covered = {r.props.get("bucket") for r in _of_type(resources, setting) if good(r)}
    for bucket in _of_type(resources, BUCKET):
        if bucket.props.get("bucket") not in covered:
            yield bucket.urn, f"bucket {bucket.props.get('bucket')} {what}"


# -- S3 ------------------------------------------------------------------------------------------
@_stack_policy("s3-buckets-block-public-access",
               "Every bucket blocks public ACLs and policies (all four public access block settings).", MANDATORY)
def buckets_block_public_access(resources: Sequence[Resource]) -> Iterator[tuple[str, str]]:
    keys = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    return _buckets_without(resources, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
                            lambda r: all(r.props.get(k) is True for k in keys), "has no full public access block")


@_stack_policy("s3-buckets-encrypted-at-rest", "Every bucket encrypts new objects by default.", MANDATORY)
def buckets_encrypted(resources: Sequence[Resource]) -> Iterator[tuple[str, str]]:
    setting = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    return _buckets_without(
        resources, setting,
        lambda r: any(_get(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm") for rule in
                      _list(r.props.get("rules"))), "has no default encryption")


@_stack_policy("s3-buckets-acls-disabled", "Every bucket's objects belong to the bucket owner (ACLs disabled).",
               MANDATORY)
def buckets_owner_enforced(resources: Sequence[Resource]) -> Iterator[tuple[str, str]]:
    return _buckets_without(resources, "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
                            lambda r: _get(r.props, "rule", "objectOwnership") == "BucketOwnerEnforced",
                            "does not enforce bucket-owner object ownership")


def _denies_plain_http(policy: Any) -> bool:
    return any(s.get("Effect") == "Deny" and _get(s, "Condition", "Bool", "aws:SecureTransport") in ("false", False)
               for s in _statements(policy))


@_stack_policy("s3-buckets-tls-only", "Every bucket's policy denies requests that do not use TLS.", MANDATORY)
def buckets_tls_only(resources: Sequence[Resource]) -> Iterator[tuple[str, str]]:
    return _buckets_without(resources, "aws:s3/bucketPolicy:BucketPolicy",
                            lambda r: _denies_plain_http(r.props.get("policy")), "does not deny plain HTTP")


@_stack_policy("s3-versioned-buckets-expire-old-versions",
               "Every versioned bucket expires noncurrent versions (kept forever, they only cost).", ADVISORY)
def versions_expire(resources: Sequence[Resource]) -> Iterator[tuple[str, str]]:
    versioned = {r.props.get("bucket") for r in _of_type(resources, "aws:s3/bucketVersioning:BucketVersioning")
                 if _get(r.props, "versioningConfiguration", "status") == "Enabled"}
    expiring = {r.props.get("bucket") for r in
                _of_type(resources, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
                if any(_get(rule, "noncurrentVersionExpiration") for rule in _list(r.props.get("rules")))}
    for bucket in _of_type(resources, BUCKET):
        name = bucket.props.get("bucket")
        if name in versioned and name not in expiring:
            yield bucket.urn, f"bucket {name} keeps noncurrent versions forever"


@_stack_policy("s3-buckets-log-access", "Every bucket but a log bucket writes server access logs.", ADVISORY)
def buckets_log_access(resources: Sequence[Resource]) -> Iterator[tuple[str, str]]:
    logging = _of_type(resources, "aws:s3/bucketLogging:BucketLogging")
    targets = {r.props.get("targetBucket") for r in logging}
    logged = {r.props.get("bucket") for r in logging}
    for bucket in _of_type(resources, BUCKET):
        name = bucket.props.get("bucket")
        if name not in logged and name not in targets:
            yield bucket.urn, f"bucket {name} writes no access logs (the case's access_logs argument)"


# -- IAM -----------------------------------------------------------------------------------------
@_policy("iam-no-wildcard-action-on-wildcard-resource",
         "No IAM policy allows every action on every resource.", MANDATORY,
         "aws:iam/rolePolicy:RolePolicy", "aws:iam/policy:Policy", "aws:iam/role:Role")
def no_star_on_star(resource: Resource) -> Iterator[str]:
    documents = [resource.props.get("policy")]
    documents += [_get(inline, "policy") for inline in _list(resource.props.get("inlinePolicies"))]
    for document in documents:
        for statement in _statements(document):
            actions = _list(statement.get("Action"))
            if statement.get("Effect") == "Allow" and ("*" in actions or "*:*" in actions) and \
                    "*" in _list(statement.get("Resource")):
                yield "allows every action (*) on every resource (*)"


# -- logs and tracing ----------------------------------------------------------------------------
@_policy("log-groups-have-retention", "Every log group expires its events.", MANDATORY,
         "aws:cloudwatch/logGroup:LogGroup")
def log_retention(resource: Resource) -> Iterator[str]:
    if not resource.props.get("retentionInDays"):
        yield "keeps its log events forever (no retentionInDays)"


@_policy("functions-are-traced", "Every Lambda function sends X-Ray traces (tracing mode Active).", MANDATORY,
         "aws:lambda/function:Function")
def functions_traced(resource: Resource) -> Iterator[str]:
    if _get(resource.props, "tracingConfig", "mode") != "Active":
        yield "is not traced (tracingConfig.mode is not Active)"


@_policy("api-stages-trace-and-log", "Every API Gateway stage is traced and writes access logs.", MANDATORY,
         "aws:apigateway/stage:Stage")
def stages_trace_and_log(resource: Resource) -> Iterator[str]:
    if resource.props.get("xrayTracingEnabled") is not True:
        yield "is not traced (xrayTracingEnabled)"
    if not _get(resource.props, "accessLogSettings", "destinationArn"):
        yield "writes no access logs"


# -- asynchronous sources ------------------------------------------------------------------------
ASYNC_INVOKERS = ("s3.amazonaws.com", "sns.amazonaws.com", "events.amazonaws.com", "iot.amazonaws.com",
                  "logs.amazonaws.com", "ses.amazonaws.com")


@_stack_policy("async-sources-keep-failures",
               "Every asynchronous source keeps what it could not deliver: a function invoked asynchronously "
               "has a dead-letter queue or an on-failure destination, a stream mapping an on-failure "
               "destination, a queue feeding a function a dead-letter queue.", MANDATORY)
def failures_are_kept(resources: Sequence[Resource]) -> Iterator[tuple[str, str]]:
    functions = _of_type(resources, "aws:lambda/function:Function")
    async_invoked = {r.props.get("function") for r in _of_type(resources, "aws:lambda/permission:Permission")
                     if r.props.get("principal") in ASYNC_INVOKERS}
    with_destination = {r.props.get("functionName") for r in
                        _of_type(resources, "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig")
                        if _get(r.props, "destinationConfig", "onFailure", "destination")}
    for function in functions:
        names = {function.props.get("name"), function.props.get("arn")}
        if names & async_invoked and not _get(function.props, "deadLetterConfig", "targetArn") and \
                not names & with_destination:
            yield function.urn, f"function {function.props.get('name')} is invoked asynchronously and keeps no " \
                                "failed events (no dead-letter queue, no on-failure destination)"
    for mapping in _of_type(resources, "aws:lambda/eventSourceMapping:EventSourceMapping"):
        source = str(mapping.props.get("eventSourceArn") or "")
        if source.startswith(("arn:aws:dynamodb:", "arn:aws:kinesis:")) and \
                not _get(mapping.props, "destinationConfig", "onFailure", "destinationArn"):
            yield mapping.urn, f"the mapping from {source} has no on-failure destination"
        elif source.startswith("arn:aws:sqs:"):
            queue = [q for q in _of_type(resources, "aws:sqs/queue:Queue") if q.props.get("arn") == source]
            if queue and not queue[0].props.get("redrivePolicy"):
                yield mapping.urn, f"the queue {source} feeding a function has no dead-letter queue"


# -- data ----------------------------------------------------------------------------------------
@_policy("dynamodb-tables-point-in-time-recovery", "Every table keeps point-in-time recovery on.", MANDATORY,
         "aws:dynamodb/table:Table")
def tables_recoverable(resource: Resource) -> Iterator[str]:
    if _get(resource.props, "pointInTimeRecovery", "enabled") is not True:
        yield "has no point-in-time recovery"


@_policy("dynamodb-tables-deletion-protection", "Every table refuses deletion (losing data takes an explicit "
         "destroy with delete_data).", MANDATORY, "aws:dynamodb/table:Table")
def tables_protected(resource: Resource) -> Iterator[str]:
    if resource.props.get("deletionProtectionEnabled") is not True:
        yield "can be deleted (deletionProtectionEnabled is not true)"


@_policy("cognito-user-pools-deletion-protection", "Every user pool refuses deletion.", MANDATORY,
         "aws:cognito/userPool:UserPool")
def pools_protected(resource: Resource) -> Iterator[str]:
    if resource.props.get("deletionProtection") != "ACTIVE":
        yield "can be deleted (deletionProtection is not ACTIVE)"


@_policy("cognito-threat-protection", "Every user pool enforces threat protection (the Plus tier).", ADVISORY,
         "aws:cognito/userPool:UserPool")
def pools_threat_protected(resource: Resource) -> Iterator[str]:
    if _get(resource.props, "userPoolAddOns", "advancedSecurityMode") != "ENFORCED":
        yield "does not enforce threat protection (user_pool_tier below PLUS)"


@_policy("queues-and-topics-encrypted", "Every queue and topic is encrypted at rest.", MANDATORY,
         "aws:sqs/queue:Queue", "aws:sns/topic:Topic")
def messages_encrypted(resource: Resource) -> Iterator[str]:
    if not resource.props.get("kmsMasterKeyId") and resource.props.get("sqsManagedSseEnabled") is not True:
        yield "is not encrypted at rest"


@_policy("kinesis-streams-encrypted", "Every Kinesis stream is encrypted with KMS.", MANDATORY,
         "aws:kinesis/stream:Stream")
def streams_encrypted(resource: Resource) -> Iterator[str]:
    if resource.props.get("encryptionType") != "KMS":
        yield "is not encrypted (encryptionType is not KMS)"


@_policy("customer-managed-keys", "Queues, topics and tables use customer-managed KMS keys (rotated, with key "
         "policies of their own) rather than AWS-owned or AWS-managed ones.", ADVISORY,
         "aws:sqs/queue:Queue", "aws:sns/topic:Topic", "aws:dynamodb/table:Table")
def customer_managed_keys(resource: Resource) -> Iterator[str]:
    key = resource.props.get("kmsMasterKeyId") or _get(resource.props, "serverSideEncryption", "kmsKeyArn")
    if not key or str(key).startswith("alias/aws/"):
        yield "is encrypted with an AWS-owned or AWS-managed key"


# -- edge ----------------------------------------------------------------------------------------
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"


def _behaviours(resource: Resource) -> list[Any]:
    return [resource.props.get("defaultCacheBehavior"), *_list(resource.props.get("orderedCacheBehaviors"))]


def _s3_origins(resource: Resource) -> list[Any]:
    return [o for o in _list(resource.props.get("origins"))
            if ".s3." in str(_get(o, "domainName") or "") or _get(o, "s3OriginConfig")]


@_policy("cloudfront-viewers-use-https", "Every distribution behaviour redirects viewers to HTTPS (or accepts "
         "only HTTPS).", MANDATORY, DISTRIBUTION)
def viewers_use_https(resource: Resource) -> Iterator[str]:
    for behaviour in _behaviours(resource):
        if _get(behaviour, "viewerProtocolPolicy") not in ("redirect-to-https", "https-only"):
            yield f"behaviour {_get(behaviour, 'pathPattern') or 'default'} serves plain HTTP"


@_policy("cloudfront-s3-origins-use-origin-access", "Every S3 origin is reached only through CloudFront's origin "
         "access (control, or the legacy identity), so its bucket stays private.", MANDATORY, DISTRIBUTION)
def s3_origins_private(resource: Resource) -> Iterator[str]:
    for origin in _s3_origins(resource):
        if not _get(origin, "originAccessControlId") and not _get(origin, "s3OriginConfig", "originAccessIdentity"):
            yield f"origin {_get(origin, 'originId')} reaches its bucket without origin access"


@_policy("cloudfront-s3-origins-use-origin-access-control", "S3 origins use origin access control, not the "
         "legacy origin access identity.", ADVISORY, DISTRIBUTION)
def s3_origins_oac(resource: Resource) -> Iterator[str]:
    for origin in _s3_origins(resource):
        if not _get(origin, "originAccessControlId"):
            yield f"origin {_get(origin, 'originId')} uses a legacy origin access identity"


@_policy("waf-protects-distributions", "Every distribution is behind an AWS WAF web ACL (the case's enable_waf "
         "argument).", ADVISORY, DISTRIBUTION)
def distributions_behind_waf(resource: Resource) -> Iterator[str]:
    if not resource.props.get("webAclId"):
        yield "has no web ACL"


@_stack_policy("waf-protects-api-stages", "Every API Gateway stage is behind an AWS WAF web ACL (the case's "
               "enable_waf argument).", ADVISORY)
def stages_behind_waf(resources: Sequence[Resource]) -> Iterator[tuple[str, str]]:
    associated = {str(r.props.get("resourceArn")) for r in
                  _of_type(resources, "aws:wafv2/webAclAssociation:WebAclAssociation")}
    for stage in _of_type(resources, "aws:apigateway/stage:Stage"):
        if stage.props.get("arn") not in associated:
            yield stage.urn, f"stage {stage.props.get('stageName')} has no web ACL"


@_stack_policy("cloudfront-standard-logs", "Every distribution delivers its standard logs (the case's access_logs "
               "argument).", ADVISORY)
def distributions_log(resources: Sequence[Resource]) -> Iterator[tuple[str, str]]:
    sources = {r.props.get("resourceArn") for r in
               _of_type(resources, "aws:cloudwatch/logDeliverySource:LogDeliverySource")}
    for distribution in _of_type(resources, DISTRIBUTION):
        if distribution.props.get("arn") not in sources:
            yield distribution.urn, "the distribution delivers no standard logs"


def catalogue_markdown() -> str:
    """The policies as the README publishes them (a test keeps the two equal)."""
    rows = ["| policy | level | checks |", "| --- | --- | --- |"]
    for policy in POLICIES:
        scope = ", ".join(f"`{t}`" for t in policy.types) if policy.types else "the whole stack"
        rows.append(f"| `{policy.name}` | {policy.level} | {policy.description} ({scope}) |")
    return "\n".join(rows) + "\n"


# -- configuration -------------------------------------------------------------------------------
def config_problems(config: Mapping[str, Any]) -> list[str]:
    """Why a pack configuration (``{policy: level}`` or ``{policy: {"enforcementLevel": level}}``)
    cannot be applied: an unknown policy, an invalid level, or a mandatory policy lowered."""
    known = by_name()
    problems = []
    for name, value in config.items():
        level = value.get("enforcementLevel") if isinstance(value, Mapping) else value
        if name == "all":
            problems.append("all: the project's pack is configured policy by policy")
            continue
        if name not in known:
            problems.append(f"{name}: no such policy (known: {', '.join(sorted(known))})")
            continue
        if isinstance(value, Mapping) and set(value) - {"enforcementLevel"}:
            problems.append(f"{name}: only enforcementLevel can be set, not {sorted(set(value) - {'enforcementLevel'})}")
        if level not in LEVELS:
            problems.append(f"{name}: {level!r} is not an enforcement level ({', '.join(LEVELS)})")
        elif known[name].level == MANDATORY and level != MANDATORY:
            problems.append(f"{name}: a mandatory policy of the project cannot be made {level}")
    return problems


def effective_levels(config: Mapping[str, Any]) -> dict[str, str]:
    """Each policy's enforcement level under a (valid) configuration."""
    levels = {p.name: p.level for p in POLICIES}
    for name, value in config.items():
        levels[name] = str(value.get("enforcementLevel") if isinstance(value, Mapping) else value)
    return levels
