"""Secure defaults that hold in every case, checked under Pulumi mocks."""

from __future__ import annotations

import pytest

from components import CASES
from tests.mocks import Recorded, as_list, build, statements


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Recorded:
    return build(request.param)


def test_every_bucket_blocks_public_access(case: Recorded) -> None:
    buckets = {b.id for b in case.of_type("aws:s3/bucket:Bucket")}
    blocks = case.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert {b.inputs["bucket"] for b in blocks} == buckets
    for block in blocks:
        assert all(block.inputs[k] is True for k in
                   ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))


def test_every_bucket_is_encrypted_owner_enforced_and_versioned(case: Recorded) -> None:
    buckets = {b.id for b in case.of_type("aws:s3/bucket:Bucket")}
    sse = case.of_type("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert {s.inputs["bucket"] for s in sse} == buckets
    owners = case.of_type("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert {o.inputs["bucket"] for o in owners if o.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"} \
        == buckets
    versioned = case.of_type("aws:s3/bucketVersioning:BucketVersioning")
    assert {v.inputs["bucket"] for v in versioned if v.inputs["versioningConfiguration"]["status"] == "Enabled"} \
        == buckets


def test_every_bucket_refuses_insecure_transport(case: Recorded) -> None:
    buckets = {b.id: b.outputs["arn"] for b in case.of_type("aws:s3/bucket:Bucket")}
    policies = {p.inputs["bucket"]: p for p in case.of_type("aws:s3/bucketPolicy:BucketPolicy")}
    assert set(policies) == set(buckets)
    for bucket, arn in buckets.items():
        deny = next(s for s in statements(policies[bucket]) if s["Effect"] == "Deny")
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert deny["Resource"] == [arn, f"{arn}/*"]


def test_no_role_allows_every_action_on_every_resource(case: Recorded) -> None:
    for role_policy in case.of_type("aws:iam/rolePolicy:RolePolicy"):
        for statement in statements(role_policy):
            if statement["Effect"] == "Allow":
                actions, resources = as_list(statement["Action"]), as_list(statement["Resource"])
                assert not ("*" in actions and "*" in resources), role_policy.name
                assert all(not a.endswith(":*") for a in actions), (role_policy.name, actions)


def test_every_function_is_traced_logged_with_retention_and_owns_its_logs(case: Recorded) -> None:
    groups = {g.id: g for g in case.of_type("aws:cloudwatch/logGroup:LogGroup")}
    for fn in case.of_type("aws:lambda/function:Function"):
        assert fn.inputs["tracingConfig"]["mode"] == "Active"
        group = groups[fn.inputs["loggingConfig"]["logGroup"]]
        assert group.inputs["retentionInDays"] >= 365
        policy = case.named(f"{fn.name}-policy", "aws:iam/rolePolicy:RolePolicy")
        logs = next(s for s in statements(policy) if s.get("Sid") == "OwnLogs")
        assert logs["Resource"] == [f"{group.outputs['arn']}:*"]


def test_every_queue_is_encrypted(case: Recorded) -> None:
    for queue in case.of_type("aws:sqs/queue:Queue"):
        assert queue.inputs.get("sqsManagedSseEnabled") is True or queue.inputs.get("kmsMasterKeyId")


def test_every_resource_belongs_to_the_case_component(case: Recorded) -> None:
    (root,) = [u for u in case.urns if "pulumi:pulumi:Stack$serverless-cases:cases:" in u]
    others = [u for u in case.urns if u != root]
    assert others
    for urn in others:
        parent_type = urn.split("::")[2].rsplit("$", 1)[0]
        assert parent_type.startswith("serverless-cases:"), urn


def test_the_suite_sees_every_kind_of_resource_it_checks() -> None:
    """The checks above hold per case for what each case has; across the cases they must
    see real buckets, functions, role policies and queues (or they would check nothing)."""
    seen: set[str] = set()
    for name in CASES:
        seen |= {r.type for r in build(name).mocks.resources}
    assert {"aws:s3/bucket:Bucket", "aws:lambda/function:Function", "aws:iam/rolePolicy:RolePolicy",
            "aws:sqs/queue:Queue"} <= seen


def test_every_table_user_pool_and_bucket_refuses_deletion(case: Recorded) -> None:
    assert all(t.inputs["deletionProtectionEnabled"] is True for t in case.of_type("aws:dynamodb/table:Table"))
    assert all(p.inputs["deletionProtection"] == "ACTIVE" for p in case.of_type("aws:cognito/userPool:UserPool"))
    assert not any(b.inputs.get("forceDestroy") for b in case.of_type("aws:s3/bucket:Bucket"))  # AWS keeps their objects


@pytest.mark.parametrize("case_name", [n for n, c in sorted(CASES.items()) if c.protects_data])
def test_losing_data_takes_an_explicit_argument(case_name: str) -> None:
    open_ = build(case_name, {"deletion_protection": False})
    tables, pools = open_.of_type("aws:dynamodb/table:Table"), open_.of_type("aws:cognito/userPool:UserPool")
    buckets = open_.of_type("aws:s3/bucket:Bucket")
    assert tables or pools or buckets  # the case keeps data that the argument guards
    assert not any(t.inputs["deletionProtectionEnabled"] for t in tables)
    assert all(p.inputs["deletionProtection"] == "INACTIVE" for p in pools)
    assert all(b.inputs["forceDestroy"] is True for b in buckets)  # the provider empties them, then deletes them


def test_every_user_pool_enforces_threat_protection_on_the_tier_that_offers_it(case: Recorded) -> None:
    for pool in case.of_type("aws:cognito/userPool:UserPool"):
        assert pool.inputs["userPoolTier"] == "PLUS"
        assert pool.inputs["userPoolAddOns"] == {"advancedSecurityMode": "ENFORCED"}


def test_every_versioned_bucket_expires_old_versions_and_abandoned_uploads(case: Recorded) -> None:
    versioned = {v.inputs["bucket"] for v in case.of_type("aws:s3/bucketVersioning:BucketVersioning")
                 if v.inputs["versioningConfiguration"]["status"] == "Enabled"}
    lifecycles = {lc.inputs["bucket"]: lc.inputs["rules"] for lc in
                  case.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")}
    assert versioned <= set(lifecycles)
    for bucket in versioned:
        (rule,) = lifecycles[bucket]
        assert rule["status"] == "Enabled" and rule["noncurrentVersionExpiration"] == {"noncurrentDays": 90}
        assert rule["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 7}


def test_waf_is_off_unless_asked_for(case: Recorded) -> None:
    assert case.of_type("aws:wafv2/webAcl:WebAcl") == []


@pytest.mark.parametrize("case_name", ["todo-app", "blog", "microservices", "premium-content", "software-updates"])
def test_with_waf_every_distribution_and_api_stage_is_behind_managed_rules_and_a_rate_limit(case_name: str) -> None:
    rec = build(case_name, {"enable_waf": True, **({"zone_delegated": True} if case_name == "microservices" else {})})
    acls = {acl.inputs["scope"]: acl for acl in rec.of_type("aws:wafv2/webAcl:WebAcl")}
    for acl in acls.values():
        rules = {rule["name"]: rule for rule in acl.inputs["rules"]}
        assert rules["aws-common-rules"]["statement"]["managedRuleGroupStatement"] == {
            "vendorName": "AWS", "name": "AWSManagedRulesCommonRuleSet"}
        assert rules["rate-limit-per-address"]["action"] == {"block": {}}
        assert rules["rate-limit-per-address"]["statement"]["rateBasedStatement"]["limit"] == 2000
    distributions = rec.of_type("aws:cloudfront/distribution:Distribution")
    assert all(d.inputs["webAclId"] == acls["CLOUDFRONT"].outputs["arn"] for d in distributions)
    stages = {s.outputs["arn"] for s in rec.of_type("aws:apigateway/stage:Stage")}
    associated = {a.inputs["resourceArn"] for a in rec.of_type("aws:wafv2/webAclAssociation:WebAclAssociation")}
    assert associated == stages
    assert all(a.inputs["webAclArn"] == acls["REGIONAL"].outputs["arn"]
               for a in rec.of_type("aws:wafv2/webAclAssociation:WebAclAssociation"))
    assert set(acls) == {s for s, present in (("CLOUDFRONT", distributions), ("REGIONAL", stages)) if present}


def _log_bucket(case: Recorded) -> str | None:
    """The case's log bucket; None for a case with no bucket or distribution to log, which has none."""
    logs = [b for b in case.of_type("aws:s3/bucket:Bucket") if b.name.endswith("-access-logs")]
    if not case.of_type("aws:s3/bucket:Bucket") and not case.of_type("aws:cloudfront/distribution:Distribution"):
        assert not logs
        return None
    (log_bucket,) = logs
    return log_bucket.id


def test_every_bucket_logs_its_requests_into_the_cases_log_bucket(case: Recorded) -> None:
    log_bucket = _log_bucket(case)
    others = {b.id: b.name for b in case.of_type("aws:s3/bucket:Bucket") if b.id != log_bucket}
    logging = {g.inputs["bucket"]: g.inputs for g in case.of_type("aws:s3/bucketLogging:BucketLogging")}
    assert set(logging) == set(others)  # the log bucket itself does not log (no loop)
    for bucket, name in others.items():
        assert logging[bucket]["targetBucket"] == log_bucket
        assert logging[bucket]["targetPrefix"] == f"s3/{name}/"


def test_the_log_bucket_is_private_expiring_and_admits_only_this_accounts_log_delivery(case: Recorded) -> None:
    log_bucket = _log_bucket(case)
    if log_bucket is None:  # nothing to log (the account baseline)
        assert not case.of_type("aws:s3/bucketPolicy:BucketPolicy")
        return
    (lifecycle,) = [c for c in case.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
                    if c.inputs["bucket"] == log_bucket]
    assert lifecycle.inputs["rules"][0]["expiration"] == {"days": 365}
    (policy,) = [p for p in case.of_type("aws:s3/bucketPolicy:BucketPolicy") if p.inputs["bucket"] == log_bucket]
    allows = {s["Principal"]["Service"]: s for s in statements(policy) if s["Effect"] == "Allow"}
    assert set(allows) == {"logging.s3.amazonaws.com", "delivery.logs.amazonaws.com"}
    for statement in allows.values():
        assert statement["Action"] == "s3:PutObject"
        assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"
    assert allows["delivery.logs.amazonaws.com"]["Condition"]["ArnLike"]["aws:SourceArn"] == \
        "arn:aws:logs:us-east-1:123456789012:delivery-source:*"


def test_every_distribution_delivers_standard_logs_from_us_east_1_into_the_log_bucket(case: Recorded) -> None:
    distributions = {d.outputs["arn"] for d in case.of_type("aws:cloudfront/distribution:Distribution")}
    sources = {s.inputs["resourceArn"]: s for s in
               case.of_type("aws:cloudwatch/logDeliverySource:LogDeliverySource")}
    assert set(sources) == distributions
    log_bucket_arn = f"arn:aws:s3:::{_log_bucket(case)}" if distributions else None
    destinations = {d.outputs["arn"]: d for d in
                    case.of_type("aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination")}
    deliveries = case.of_type("aws:cloudwatch/logDelivery:LogDelivery")
    assert len(deliveries) == len(distributions)
    for delivery in deliveries:
        source = next(s for s in sources.values() if s.outputs["name"] == delivery.inputs["deliverySourceName"])
        assert source.outputs["arn"].startswith("arn:aws:logs:us-east-1:")  # made by a us-east-1 provider
        destination = destinations[delivery.inputs["deliveryDestinationArn"]]
        assert destination.inputs["deliveryDestinationConfiguration"]["destinationResourceArn"] == \
            f"{log_bucket_arn}/cloudfront"


@pytest.mark.parametrize("case_name", sorted(CASES))
def test_access_logs_can_be_turned_off(case_name: str) -> None:
    rec = build(case_name, {"access_logs": False})
    assert not [b for b in rec.of_type("aws:s3/bucket:Bucket") if b.name.endswith("-access-logs")]
    assert not rec.of_type("aws:s3/bucketLogging:BucketLogging")
    assert not rec.of_type("aws:cloudwatch/logDelivery:LogDelivery")
    assert "access_log_bucket" not in rec.output_names
