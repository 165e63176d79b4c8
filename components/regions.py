"""Regions: providers for a region other than the stack's (CloudFront's parts live in us-east-1),
and whether AWS offers a service in the stack's region.

An explicit provider reads none of the stack's ``aws:`` settings, so one made naively would
deploy as whoever runs the engine. These deploy as the stack's default provider does: the same
role chain (``aws:assumeRoles``, each service tenant's own role), in the region asked for.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from components.args import ComponentArgsError

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


def stack_region() -> str | None:
    """The region the stack deploys in, as the AWS provider finds it: the ``aws:region`` setting,
    else the AWS SDK's environment variables; None when only a profile could say."""
    return pulumi.Config("aws").get("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


@functools.cache
def _endpoints() -> dict[str, Any]:
    """AWS's commercial partition in botocore's endpoint data (pinned with boto3): its regions and
    each service's regional endpoints. Read as a file (importing botocore takes a quarter second)."""
    spec = importlib.util.find_spec("botocore")
    assert spec is not None and spec.submodule_search_locations
    data = json.loads((Path(spec.submodule_search_locations[0]) / "data" / "endpoints.json").read_text())
    return next(p for p in data["partitions"] if p["partition"] == "aws")


def require_service(component: str, service: str, label: str, why: str) -> None:
    """Refuse (:class:`ComponentArgsError`, before anything is created) to build in a region of
    AWS's commercial partition where ``service`` (its endpoint prefix) has no endpoint: there the
    AWS provider's first call to it fails midway through the stack. A region botocore does not
    know, or one of another partition, is not judged."""
    region = stack_region()
    if region is None:
        return
    partition = _endpoints()
    if region in partition["regions"] and region not in partition["services"].get(service, {}).get("endpoints", {}):
        offered = sorted(set(partition["services"].get(service, {}).get("endpoints", {})) & set(partition["regions"]))
        raise ComponentArgsError(component, [
            f"region: {label} is not offered in {region} ({why}); deploy in one of {', '.join(offered)}"])
