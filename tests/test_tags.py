"""Every AWS resource that takes tags carries the stack's tags (tenant, case, stack, managed-by)
and the case's own ``tags`` argument, applied once for the whole stack."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from components import CASES, get_case
from components.tagging import stack_tags, tagging
from sandbox.mocks import SandboxMocks, own_event_loop


def _build_tagged(case_name: str, extra: dict[str, str] | None = None, **more: Any) -> SandboxMocks:
    case = get_case(case_name)
    mocks = SandboxMocks()

    @pulumi.runtime.test
    def construct() -> pulumi.Output[Any]:
        args = case.parse_args({**case.example_args, "tags": extra or {}, **more})
        pulumi.runtime.register_stack_transformation(
            tagging(stack_tags(stack="acme.shop", case=case.name, extra=args.tags)))
        component = case.component(case.name, args, None)
        return pulumi.Output.all(*component.outputs().values())

    try:
        with own_event_loop():  # the mocks' root resource is made on the loop the build runs on
            pulumi.runtime.set_mocks(mocks, project="serverless-cases", stack="acme.shop", preview=False)
            construct()
    finally:  # the mocks' root stack outlives this test: later tests must not be tagged by it
        root = pulumi.runtime.get_root_resource()
        if root is not None:
            root._transformations = []
    return mocks


def _takes_tags(type_token: str) -> bool:
    module, _, name = type_token.removeprefix("aws:").partition(":")
    package = module.split("/")[0]
    cls = getattr(__import__(f"pulumi_aws.{'lambda_' if package == 'lambda' else package}", fromlist=[name]), name)
    return "tags" in cls._internal_init.__code__.co_varnames


@pytest.mark.parametrize("case_name", sorted(CASES))
def test_every_resource_that_takes_tags_carries_the_stacks_tags(case_name: str) -> None:
    mocks = _build_tagged(case_name, {"cost-center": "cc-42"})
    wanted = {"serverless-cases:stack": "acme.shop", "serverless-cases:case": case_name,
              "serverless-cases:tenant": "acme", "serverless-cases:managed-by": "serverless-cases",
              "cost-center": "cc-42"}
    taggable = [r for r in mocks.resources if r.type.startswith("aws:") and r.type != "aws:autoscaling/group:Group"
                and _takes_tags(r.type)]
    assert taggable
    for resource in taggable:
        assert wanted.items() <= (resource.inputs.get("tags") or {}).items(), resource.name


def test_a_resources_own_tags_are_kept() -> None:
    mocks = _build_tagged("microservices", {}, zone_delegated=True)
    zone = next(r for r in mocks.resources if r.type == "aws:route53/zone:Zone")
    assert zone.inputs["tags"]["serverless-cases:case"] == "microservices"
    assert zone.inputs["tags"]["serverless-cases:delegated"] == "true"


def test_tags_argument_is_validated() -> None:
    from components import ComponentArgsError

    with pytest.raises(ComponentArgsError) as err:
        get_case("todo-app").parse_args({"tags": {"aws:reserved": "x"}})
    assert "tags: 'aws:reserved' starts with the reserved prefix aws:" in err.value.problems


@pytest.mark.parametrize(("tags", "problem"), [
    ({"owner": "alice@example.com"}, "tags: the value of 'owner' has '@'"),  # DynamoDB's set has no '@'
    ({"cost-center": "R&D"}, "tags: the value of 'cost-center' has '&'"),  # nor IAM's, S3's
    ({"team (data)": "x"}, "tags: the key 'team (data)' has '()'"),
])
def test_a_tag_a_service_of_the_case_refuses_is_refused_by_name(tags: dict[str, str], problem: str) -> None:
    """The sandbox's IAM, S3 and DynamoDB tag rules; the argument check took any character."""
    from components import ComponentArgsError

    with pytest.raises(ComponentArgsError) as err:
        get_case("todo-app").parse_args({"tags": tags})
    assert [p for p in err.value.problems if p.startswith(problem)], err.value.problems


@pytest.mark.parametrize("case_name", ["todo-app", "blog"])
def test_tags_of_every_character_the_check_takes_deploy_in_the_sandbox(case_name: str) -> None:
    """Letters of any script, digits, spaces and + - = . _ : / pass the sandbox's tag rules on
    every resource (roles, buckets, tables)."""
    mocks = _build_tagged(case_name, {"équipe": "Données 2026", "path": "a/b:c=d+e-f_g.h"})
    tagged = [r for r in mocks.resources if (r.inputs.get("tags") or {}).get("équipe") == "Données 2026"]
    assert {"aws:iam/role:Role", "aws:s3/bucket:Bucket", "aws:dynamodb/table:Table"} <= {r.type for r in tagged}
