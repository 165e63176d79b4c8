"""Providers for a region other than the stack's (CloudFront's parts live in us-east-1).

An explicit provider reads none of the stack's ``aws:`` settings, so one made naively would
deploy as whoever runs the engine. These deploy as the stack's default provider does: the same
role chain (``aws:assumeRoles``, each service tenant's own role), in the region asked for.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

_KEYS = {"roleArn": "role_arn", "externalId": "external_id", "sessionName": "session_name",
         "duration": "duration", "policy": "policy", "policyArns": "policy_arns", "tags": "tags",
         "transitiveTagKeys": "transitive_tag_keys", "sourceIdentity": "source_identity"}


def assumed_roles() -> list[aws.ProviderAssumeRoleArgs] | None:
    """The stack's ``aws:assumeRoles``, as an explicit provider takes them."""
    chain: list[dict[str, Any]] | None = pulumi.Config("aws").get_object("assumeRoles")
    if not chain:
        return None
    return [aws.ProviderAssumeRoleArgs(**{_KEYS.get(k, k): v for k, v in role.items()}) for role in chain]


def provider_in(region: str, name: str, *, parent: pulumi.Resource) -> aws.Provider:
    return aws.Provider(name, region=region, assume_roles=assumed_roles(), opts=pulumi.ResourceOptions(parent=parent))
