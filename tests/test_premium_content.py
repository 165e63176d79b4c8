"""Case premium-content under Pulumi mocks: one test per guarantee."""

from __future__ import annotations

import json

import pytest

from components import get_case
from tests.mocks import Recorded, build, is_secret, reveal, statements


@pytest.fixture(scope="module")
def premium() -> Recorded:
    return build("premium-content")


def test_every_behaviour_requires_signed_urls_from_the_stack_key(premium: Recorded) -> None:
    group = premium.one("aws:cloudfront/keyGroup:KeyGroup")
    distribution = premium.one("aws:cloudfront/distribution:Distribution").inputs
    assert distribution["defaultCacheBehavior"]["trustedKeyGroups"] == [group.id]
    assert not distribution.get("orderedCacheBehaviors")
    key = premium.one("aws:cloudfront/publicKey:PublicKey")
    assert group.inputs["items"] == [key.id]
    pair = premium.one("pulumi-python:dynamic:Resource").outputs
    assert key.inputs["encodedKey"] == pair["public_key_pem"] and "BEGIN PUBLIC KEY" in pair["public_key_pem"]


def test_content_is_reached_only_through_cloudfront(premium: Recorded) -> None:
    distribution = premium.one("aws:cloudfront/distribution:Distribution")
    (origin,) = distribution.inputs["origins"]
    assert origin["originAccessControlId"] == premium.one("aws:cloudfront/originAccessControl:OriginAccessControl").id
    content = premium.named("premium-content-content-content", "aws:s3/bucket:Bucket")
    (policy,) = [p for p in premium.of_type("aws:s3/bucketPolicy:BucketPolicy") if p.inputs["bucket"] == content.id]
    (allow,) = [s for s in statements(policy) if s["Effect"] == "Allow"]
    assert allow["Condition"] == {"StringEquals": {"AWS:SourceArn": distribution.outputs["arn"]}}


def test_signing_key_is_in_secrets_manager_readable_only_by_the_signer_and_the_deployer(premium: Recorded) -> None:
    secret = premium.one("aws:secretsmanager/secret:Secret")
    version = premium.one("aws:secretsmanager/secretVersion:SecretVersion")
    assert is_secret(version.inputs["secretString"])  # encrypted in state
    stored = json.loads(reveal(version.inputs["secretString"]))
    assert stored["key_pair_id"] == premium.one("aws:cloudfront/publicKey:PublicKey").id
    assert "BEGIN PRIVATE KEY" in stored["private_key_pem"]
    (deny,) = statements(premium.one("aws:secretsmanager/secretPolicy:SecretPolicy"))
    signer_role = premium.named("premium-content-signer-role", "aws:iam/role:Role").outputs["arn"]
    assert deny["Effect"] == "Deny" and deny["Action"] == "secretsmanager:GetSecretValue"
    deployer = "arn:aws:iam::123456789012:user/sandbox"  # sts:GetCallerIdentity in the sandbox
    assert deny["Condition"] == {"ArnNotLike": {"aws:PrincipalArn": [signer_role, deployer]}}
    readers = [p.name for p in premium.of_type("aws:iam/rolePolicy:RolePolicy")
               if any("secretsmanager:GetSecretValue" in s["Action"] for s in statements(p))]
    assert readers == ["premium-content-signer-policy"]
    grant = next(s for s in statements(premium.named("premium-content-signer-policy")) if s["Sid"] == "ReadSigningKey")
    assert grant["Resource"] == [secret.outputs["arn"]]


def test_private_key_is_in_no_output(premium: Recorded) -> None:
    assert not [n for n in premium.output_names if "private" in n or "key_pem" in n]
    assert sorted(premium.output_names) == sorted(get_case("premium-content").outputs)


def test_both_apis_require_cognito(premium: Recorded) -> None:
    methods = premium.of_type("aws:apigateway/method:Method")
    assert len(methods) == 2 and all(m.inputs["authorization"] == "COGNITO_USER_POOLS" for m in methods)


def test_signer_uses_the_configured_expiry_and_registration_writes_only_members() -> None:
    short = build("premium-content", {"signed_url_expiry_seconds": 60})
    env = short.named("premium-content-signer", "aws:lambda/function:Function").inputs["environment"]["variables"]
    assert env["URL_EXPIRY_SECONDS"] == "60"
    table = short.one("aws:dynamodb/table:Table").outputs["arn"]
    (put,) = statements(short.named("premium-content-register-policy"))[2:]
    assert put["Action"] == ["dynamodb:PutItem"] and put["Resource"] == [table]


def test_key_rotation_is_configuration() -> None:
    rotated = build("premium-content", {"key_rotation": 1})
    assert rotated.one("pulumi-python:dynamic:Resource").inputs["rotation"] == 1


def test_a_deploying_role_session_is_admitted_as_its_role() -> None:
    from components.cases.premium_content import principal_arns

    session = "arn:aws:sts::123456789012:assumed-role/deployer/ci-1234"
    assert principal_arns(session) == ["arn:aws:iam::123456789012:role/deployer",
                                       "arn:aws:iam::123456789012:role/*/deployer"]
    assert principal_arns("arn:aws:iam::123456789012:user/ana") == ["arn:aws:iam::123456789012:user/ana"]


def test_premium_membership_is_granted_by_an_administrators_group(premium: Recorded) -> None:
    (group,) = premium.of_type("aws:cognito/userGroup:UserGroup")
    pool = premium.one("aws:cognito/userPool:UserPool")
    assert group.inputs["name"] == "premium-admins" and group.inputs["userPoolId"] == pool.id
    register = premium.named("premium-content-register", "aws:lambda/function:Function")
    assert register.inputs["environment"]["variables"]["ADMIN_GROUP"] == "premium-admins"
