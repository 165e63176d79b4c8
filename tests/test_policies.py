"""The secure defaults as a policy pack: each policy on a compliant and a violating resource (its
function called directly), its configuration refused when it would lower a promise, and the
engine stopping a program that breaks promises (plain CLI here; every case passes every
mandatory policy in tests/test_engine_lifecycle.py; the REST API in tests/test_service_policy.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from policies import secure_defaults as pack
from policies.secure_defaults import Resource
from tests.engine import REPO, Workspace

ALLOW_ALL = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]})
ALLOW_SOME = json.dumps({"Version": "2012-10-17",
                         "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}]})
TLS_ONLY = json.dumps({"Statement": [{"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*",
                                      "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:objects"
STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/users/stream/2026-01-01T00:00:00.000"


def r(type_token: str, **props: Any) -> Resource:
    return Resource(type_token, f"urn:pulumi:s::p::{type_token}::{props.get('name', 'x')}", props)


BUCKET = r("aws:s3/bucket:Bucket", bucket="data", arn="arn:aws:s3:::data")


def bucket_with(setting: str, **props: Any) -> list[Resource]:
    return [BUCKET, r(setting, bucket="data", **props)]


FUNCTION = dict(name="fn", arn="arn:aws:lambda:us-east-1:123456789012:function:fn", tracingConfig={"mode": "Active"})
S3_INVOKES = r("aws:lambda/permission:Permission", function="fn", principal="s3.amazonaws.com")
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
S3_ORIGIN = {"originId": "content", "domainName": "data.s3.us-east-1.amazonaws.com"}


def distribution(**props: Any) -> Resource:
    return r(DISTRIBUTION, arn="arn:aws:cloudfront::123456789012:distribution/E1",
             defaultCacheBehavior={"viewerProtocolPolicy": "redirect-to-https"}, origins=[S3_ORIGIN], **props)


STAGE = dict(stageName="v1", arn="arn:aws:apigateway:us-east-1::/restapis/a1/stages/v1", xrayTracingEnabled=True,
             accessLogSettings={"destinationArn": "arn:aws:logs:us-east-1:123456789012:log-group:api"})

# policy -> (compliant resources, violating resources)
EXAMPLES: dict[str, tuple[list[Resource], list[Resource]]] = {
    "s3-buckets-block-public-access": (
        bucket_with("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", blockPublicAcls=True,
                    blockPublicPolicy=True, ignorePublicAcls=True, restrictPublicBuckets=True),
        bucket_with("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", blockPublicAcls=True,
                    blockPublicPolicy=False, ignorePublicAcls=True, restrictPublicBuckets=True)),
    "s3-buckets-encrypted-at-rest": (
        bucket_with("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                    rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]),
        [BUCKET]),
    "s3-buckets-acls-disabled": (
        bucket_with("aws:s3/bucketOwnershipControls:BucketOwnershipControls",
                    rule={"objectOwnership": "BucketOwnerEnforced"}),
        bucket_with("aws:s3/bucketOwnershipControls:BucketOwnershipControls", rule={"objectOwnership": "ObjectWriter"})),
    "s3-buckets-tls-only": (
        bucket_with("aws:s3/bucketPolicy:BucketPolicy", policy=TLS_ONLY),
        bucket_with("aws:s3/bucketPolicy:BucketPolicy", policy=ALLOW_SOME)),
    "s3-versioned-buckets-expire-old-versions": (
        [*bucket_with("aws:s3/bucketVersioning:BucketVersioning", versioningConfiguration={"status": "Enabled"}),
         r("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", bucket="data",
           rules=[{"noncurrentVersionExpiration": {"noncurrentDays": 90}}])],
        bucket_with("aws:s3/bucketVersioning:BucketVersioning", versioningConfiguration={"status": "Enabled"})),
    "s3-buckets-log-access": (
        bucket_with("aws:s3/bucketLogging:BucketLogging", targetBucket="logs"),
        [BUCKET]),
    "iam-no-wildcard-action-on-wildcard-resource": (
        [r("aws:iam/rolePolicy:RolePolicy", policy=ALLOW_SOME)],
        [r("aws:iam/rolePolicy:RolePolicy", policy=ALLOW_ALL)]),
    "log-groups-have-retention": (
        [r("aws:cloudwatch/logGroup:LogGroup", retentionInDays=365)],
        [r("aws:cloudwatch/logGroup:LogGroup")]),
    "functions-are-traced": (
        [r("aws:lambda/function:Function", **FUNCTION)],
        [r("aws:lambda/function:Function", **{**FUNCTION, "tracingConfig": {"mode": "PassThrough"}})]),
    "api-stages-trace-and-log": (
        [r("aws:apigateway/stage:Stage", **STAGE)],
        [r("aws:apigateway/stage:Stage", **{**STAGE, "xrayTracingEnabled": False})]),
    "async-sources-keep-failures": (
        [r("aws:lambda/function:Function", **FUNCTION, deadLetterConfig={"targetArn": QUEUE_ARN}), S3_INVOKES,
         r("aws:lambda/eventSourceMapping:EventSourceMapping", eventSourceArn=STREAM_ARN,
           destinationConfig={"onFailure": {"destinationArn": QUEUE_ARN}})],
        [r("aws:lambda/function:Function", **FUNCTION), S3_INVOKES]),
    "dynamodb-tables-point-in-time-recovery": (
        [r("aws:dynamodb/table:Table", pointInTimeRecovery={"enabled": True})],
        [r("aws:dynamodb/table:Table", pointInTimeRecovery={"enabled": False})]),
    "dynamodb-tables-deletion-protection": (
        [r("aws:dynamodb/table:Table", deletionProtectionEnabled=True)],
        [r("aws:dynamodb/table:Table", deletionProtectionEnabled=False)]),
    "cognito-user-pools-deletion-protection": (
        [r("aws:cognito/userPool:UserPool", deletionProtection="ACTIVE")],
        [r("aws:cognito/userPool:UserPool", deletionProtection="INACTIVE")]),
    "cognito-threat-protection": (
        [r("aws:cognito/userPool:UserPool", userPoolAddOns={"advancedSecurityMode": "ENFORCED"})],
        [r("aws:cognito/userPool:UserPool", userPoolAddOns={"advancedSecurityMode": "OFF"})]),
    "queues-and-topics-encrypted": (
        [r("aws:sqs/queue:Queue", sqsManagedSseEnabled=True), r("aws:sns/topic:Topic", kmsMasterKeyId="arn:k")],
        [r("aws:sqs/queue:Queue", sqsManagedSseEnabled=False)]),
    "kinesis-streams-encrypted": (
        [r("aws:kinesis/stream:Stream", encryptionType="KMS")],
        [r("aws:kinesis/stream:Stream", encryptionType="NONE")]),
    "customer-managed-keys": (
        [r("aws:sns/topic:Topic", kmsMasterKeyId="arn:aws:kms:us-east-1:123456789012:key/0a1b")],
        [r("aws:sns/topic:Topic", kmsMasterKeyId="alias/aws/sns")]),
    "cloudfront-viewers-use-https": (
        [distribution()],
        [distribution(orderedCacheBehaviors=[{"pathPattern": "/old/*", "viewerProtocolPolicy": "allow-all"}])]),
    "cloudfront-s3-origins-use-origin-access": (
        [r(DISTRIBUTION, origins=[{**S3_ORIGIN, "originAccessControlId": "E2"}])],
        [r(DISTRIBUTION, origins=[S3_ORIGIN])]),
    "cloudfront-s3-origins-use-origin-access-control": (
        [r(DISTRIBUTION, origins=[{**S3_ORIGIN, "originAccessControlId": "E2"}])],
        [r(DISTRIBUTION, origins=[{**S3_ORIGIN, "s3OriginConfig": {"originAccessIdentity": "origin-access/E3"}}])]),
    "waf-protects-distributions": (
        [distribution(webAclId="arn:aws:wafv2:us-east-1:123456789012:global/webacl/edge/0a1b")],
        [distribution()]),
    "waf-protects-api-stages": (
        [r("aws:apigateway/stage:Stage", **STAGE),
         r("aws:wafv2/webAclAssociation:WebAclAssociation", resourceArn=STAGE["arn"])],
        [r("aws:apigateway/stage:Stage", **STAGE)]),
    "cloudfront-standard-logs": (
        [distribution(), r("aws:cloudwatch/logDeliverySource:LogDeliverySource",
                           resourceArn="arn:aws:cloudfront::123456789012:distribution/E1")],
        [distribution()]),
}


def violations(policy: pack.Policy, resources: list[Resource]) -> list[str]:
    if policy.check_stack is not None:
        return [message for _urn, message in policy.check_stack(resources)]
    assert policy.check is not None
    return [m for resource in resources if resource.type in policy.types for m in policy.check(resource)]


def test_every_policy_has_a_compliant_and_a_violating_example() -> None:
    assert set(EXAMPLES) == set(pack.by_name())


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_policy_passes_the_compliant_and_reports_the_violating(name: str) -> None:
    policy = pack.by_name()[name]
    compliant, violating = EXAMPLES[name]
    assert violations(policy, compliant) == []
    found = violations(policy, violating)
    assert found and all(isinstance(message, str) and message for message in found)


def test_a_stack_violation_names_the_offending_resource() -> None:
    policy = pack.by_name()["s3-buckets-encrypted-at-rest"]
    assert policy.check_stack is not None
    assert list(policy.check_stack([BUCKET])) == [(BUCKET.urn, "bucket data has no default encryption")]


def test_the_promises_are_mandatory_and_the_optional_hardening_advisory() -> None:
    levels = {p.name: p.level for p in pack.POLICIES}
    for promise in ("s3-buckets-block-public-access", "s3-buckets-encrypted-at-rest", "s3-buckets-tls-only",
                    "iam-no-wildcard-action-on-wildcard-resource", "log-groups-have-retention", "functions-are-traced",
                    "async-sources-keep-failures", "dynamodb-tables-point-in-time-recovery",
                    "dynamodb-tables-deletion-protection", "cloudfront-s3-origins-use-origin-access"):
        assert levels[promise] == pack.MANDATORY, promise
    for hardening in ("waf-protects-distributions", "waf-protects-api-stages", "customer-managed-keys",
                      "cognito-threat-protection", "s3-buckets-log-access"):
        assert levels[hardening] == pack.ADVISORY, hardening


def test_a_configuration_may_raise_or_disable_advisory_policies_only() -> None:
    assert pack.config_problems({"waf-protects-distributions": "mandatory",
                                 "customer-managed-keys": {"enforcementLevel": "disabled"}}) == []
    assert pack.effective_levels({"waf-protects-distributions": "mandatory"})["waf-protects-distributions"] == \
        pack.MANDATORY
    problems = pack.config_problems({"s3-buckets-tls-only": "disabled", "no-such-policy": "advisory",
                                     "customer-managed-keys": "sometimes",
                                     "functions-are-traced": {"enforcementLevel": "advisory"}})
    assert problems[0] == "s3-buckets-tls-only: a mandatory policy of the project cannot be made disabled"
    assert problems[1].startswith("no-such-policy: no such policy (known: ")
    assert problems[2] == "customer-managed-keys: 'sometimes' is not an enforcement level (advisory, mandatory, disabled)"
    assert problems[3] == "functions-are-traced: a mandatory policy of the project cannot be made advisory"


BROKEN_PROMISES = [
    {"name": "open", "type": "aws:s3/bucket:Bucket", "inputs": {}},
    {"name": "plain", "type": "aws:sqs/queue:Queue", "inputs": {"sqsManagedSseEnabled": False}},
    {"name": "role", "type": "aws:iam/role:Role", "inputs": {"assumeRolePolicy": "{}"}},
    {"name": "admin", "type": "aws:iam/rolePolicy:RolePolicy", "inputs": {"role": "${role.id}", "policy": ALLOW_ALL}},
]


@pytest.mark.engine
@pytest.mark.parametrize("command", ["preview", "up"])
def test_the_engine_stops_a_program_that_breaks_promises(tmp_path: Path, pulumi_toolchain: str, command: str) -> None:
    workspace = Workspace(tmp_path, pulumi_toolchain, main=REPO / "tests" / "programs" / "raw_resource")
    workspace.pulumi("stack", "init", "broken")
    workspace.pulumi("config", "set", "serverless-cases:resources", json.dumps(BROKEN_PROMISES))
    args = ["--yes"] if command == "up" else []  # `up` previews first: stopped there, before any change
    stopped = workspace.pulumi(command, *args, "--policy-pack", str(REPO / "policies"), check=False)
    said = stopped.stdout + stopped.stderr
    assert stopped.returncode != 0, said[-3000:]
    for policy in ("s3-buckets-block-public-access", "s3-buckets-encrypted-at-rest", "s3-buckets-tls-only",
                   "queues-and-topics-encrypted", "iam-no-wildcard-action-on-wildcard-resource"):
        assert f"[mandatory]  {policy}" in said, policy
    assert workspace.cloud_records() == []  # nothing was created


def test_the_readme_publishes_every_policy() -> None:
    assert pack.catalogue_markdown() in (REPO / "README.md").read_text(), "the README's policy table differs"


def test_a_pack_path_no_folder_can_have_is_a_problem_not_an_error() -> None:
    from service.policy import TenantPolicy

    problems = TenantPolicy(packs=["/pack\x00with-nul", "/" + "x" * 5000]).problems()
    assert len(problems) == 2 and all("holds no PulumiPolicy.yaml" in p for p in problems)
