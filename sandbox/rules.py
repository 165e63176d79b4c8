"""The AWS rules the sandbox enforces, in one catalogue.

Each rule is a small function registered for one resource type. Its docstring states the
AWS behaviour it models; it returns the error AWS would answer with (AWS's own error code
and message) or ``None``. The provider runs them when the engine checks a resource's inputs,
so a stack that breaks a rule fails in ``preview`` and ``up`` before anything is created,
as it would fail on AWS when the API call is made. After moto's habit: model what AWS
returns, not what is convenient.

What the sandbox does *not* model is listed in the README (Sandbox: what it models).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's marker for a value not known yet


@dataclass(frozen=True)
class AwsError:
    """What AWS answers when it refuses a request."""

    code: str
    message: str
    property: str = ""

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


Inputs = Mapping[str, Any]
Rule = Callable[[Inputs], AwsError | None]

Effect = Callable[[dict[str, Any]], dict[str, Any]]

RULES: dict[str, list[Rule]] = {}
EFFECTS: dict[str, list[Effect]] = {}


def rule(type_token: str) -> Callable[[Rule], Rule]:
    """Register a rule for a resource type (its Pulumi type token)."""

    def register(check: Rule) -> Rule:
        RULES.setdefault(type_token, []).append(check)
        return check

    return register


def effect(type_token: str) -> Callable[[Effect], Effect]:
    """Register what AWS makes of an accepted request: the values it really stores and
    serves, which a later read (``pulumi refresh``) returns."""

    def register(change: Effect) -> Effect:
        EFFECTS.setdefault(type_token, []).append(change)
        return change

    return register


def effective(type_token: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    """The properties as AWS keeps them, after every effect of this type."""
    result = dict(properties)
    for change in EFFECTS.get(type_token, []):
        result = change(result)
    return result


def violations(type_token: str, inputs: Inputs) -> list[AwsError]:
    """Every rule of this type that the inputs break."""
    return [error for check in RULES.get(type_token, []) if (error := check(inputs)) is not None]


def _known(value: Any) -> bool:
    return value is not None and value != UNKNOWN


# -- S3 --------------------------------------------------------------------------------------------
@rule("aws:s3/bucket:Bucket")
def bucket_names_follow_the_naming_rules(inputs: Inputs) -> AwsError | None:
    """CreateBucket: a bucket name is 3-63 characters of lowercase letters, digits, '.' and '-',
    beginning and ending with a letter or digit; otherwise ``InvalidBucketName``."""
    name = inputs.get("bucket")
    if isinstance(name, str) and _known(name) and not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", name):
        return AwsError("InvalidBucketName", "The specified bucket is not valid.", "bucket")
    return None


# -- DAX -------------------------------------------------------------------------------------------
@rule("aws:dax/cluster:Cluster")
def dax_cluster_names_are_short(inputs: Inputs) -> AwsError | None:
    """CreateCluster: a DAX cluster name is 1-20 characters, a letter first, then lowercase letters,
    digits or '-'; otherwise ``InvalidParameterValueException``."""
    name = inputs.get("clusterName")
    if isinstance(name, str) and _known(name) and not re.fullmatch(r"[a-z][a-z0-9-]{0,19}", name):
        return AwsError("InvalidParameterValueException",
                        f"Cluster name {name!r} is invalid: at most 20 lowercase letters, digits or '-', "
                        "starting with a letter", "clusterName")
    return None


# -- Cognito ---------------------------------------------------------------------------------------
@rule("aws:cognito/identityPool:IdentityPool")
def identity_pool_names_are_words_and_spaces(inputs: Inputs) -> AwsError | None:
    """CreateIdentityPool: ``IdentityPoolName`` matches ``[\\w ]+`` (1-128 characters); otherwise
    ``InvalidParameterException``."""
    name = inputs.get("identityPoolName")
    if isinstance(name, str) and _known(name) and not re.fullmatch(r"[\w ]{1,128}", name):
        return AwsError("InvalidParameterException",
                        f"1 validation error detected: Value '{name}' at 'identityPoolName' failed to satisfy "
                        "constraint: Member must satisfy regular expression pattern: [\\w ]+", "identityPoolName")
    return None


@rule("aws:cognito/userPool:UserPool")
def threat_protection_needs_the_plus_tier(inputs: Inputs) -> AwsError | None:
    """CreateUserPool/UpdateUserPool: threat protection (``UserPoolAddOns.AdvancedSecurityMode``
    ``AUDIT`` or ``ENFORCED``) is a feature of the Plus plan. A pool that does not say
    ``UserPoolTier: PLUS`` gets the default tier (Essentials) and the request fails with
    ``FeatureUnavailableInTierException``."""
    mode = (inputs.get("userPoolAddOns") or {}).get("advancedSecurityMode")
    tier = inputs.get("userPoolTier") or "ESSENTIALS"
    if mode in ("AUDIT", "ENFORCED") and _known(tier) and tier != "PLUS":
        return AwsError("FeatureUnavailableInTierException",
                        f"Threat Protection is not available in the {tier} tier. Upgrade to the PLUS tier "
                        "to use this feature.", "userPoolAddOns")
    return None


# -- IoT -------------------------------------------------------------------------------------------
@rule("aws:iot/topicRule:TopicRule")
def topic_rule_names_are_words(inputs: Inputs) -> AwsError | None:
    """CreateTopicRule: a rule name matches ``^[a-zA-Z0-9_]+$``; otherwise ``InvalidRequestException``."""
    name = inputs.get("name")
    if isinstance(name, str) and _known(name) and not re.fullmatch(r"[A-Za-z0-9_]+", name):
        return AwsError("InvalidRequestException", f"Rule name {name!r} must match ^[a-zA-Z0-9_]+$", "name")
    return None


# -- CloudFront ------------------------------------------------------------------------------------
@effect("aws:cloudfront/distribution:Distribution")
def default_certificate_serves_tls_v1(properties: dict[str, Any]) -> dict[str, Any]:
    """With the default ``*.cloudfront.net`` certificate (``CloudFrontDefaultCertificate: true``)
    CloudFront ignores ``MinimumProtocolVersion`` and accepts TLSv1: the distribution reads back
    ``TLSv1``, so a stack that asked for more sees drift on every refresh."""
    certificate = properties.get("viewerCertificate")
    if isinstance(certificate, dict) and certificate.get("cloudfrontDefaultCertificate") is True:
        return {**properties, "viewerCertificate": {**certificate, "minimumProtocolVersion": "TLSv1"}}
    return properties
