"""Tags shared by every resource of a stack that takes tags: who owns it (tenant), what it is
(case, stack) and what manages it, plus the case's own ``tags`` argument. Applied once for the
whole stack by a stack transformation, so no building block can forget them and cost
allocation and ownership work on AWS."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

PREFIX = "serverless-cases:"
MANAGED_BY = "serverless-cases"
# Resources whose `tags` input is not a map (an Auto Scaling group's tags are a list of
# {key, value, propagate_at_launch}); they keep their own.
LIST_TAGGED = frozenset({"aws:autoscaling/group:Group"})


def stack_tags(*, stack: str, case: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The tags of a stack. A service stack is named ``<tenant>.<name>``: its tenant is tagged too."""
    tags = {f"{PREFIX}stack": stack, f"{PREFIX}case": case, f"{PREFIX}managed-by": MANAGED_BY}
    if "." in stack:
        tags[f"{PREFIX}tenant"] = stack.split(".", 1)[0]
    return {**tags, **(extra or {})}


def tagging(tags: Mapping[str, str]) -> Any:
    """A stack transformation adding ``tags`` to every AWS resource that takes a tag map; a
    resource's own tags win over the stack's."""

    def tag(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        if not args.type_.startswith("aws:") or args.type_ in LIST_TAGGED or "tags" not in args.props:
            return None
        own = args.props.get("tags")
        merged: Any = {**tags, **own} if isinstance(own, Mapping) else \
            pulumi.Output.from_input(own).apply(lambda o: {**tags, **(o or {})})
        return pulumi.ResourceTransformationResult({**args.props, "tags": merged}, args.opts)

    return tag
