"""The project's policy pack: each policy of ``secure_defaults`` handed to the engine through
pulumi-policy (run by the language host with the pack's own virtualenv)."""

from collections.abc import Callable
from typing import Any

import secure_defaults as catalogue
from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

LEVELS = {catalogue.MANDATORY: EnforcementLevel.MANDATORY, catalogue.ADVISORY: EnforcementLevel.ADVISORY}


def _resource_validation(policy: catalogue.Policy) -> Callable[[ResourceValidationArgs, Any], None]:
    assert policy.check is not None

    def validate(args: ResourceValidationArgs, report_violation: Any) -> None:
        if policy.types and args.resource_type not in policy.types:
            return
        for message in policy.check(catalogue.Resource(args.resource_type, args.urn, args.props)):
            report_violation(message)

    return validate


def _stack_validation(policy: catalogue.Policy) -> Callable[[StackValidationArgs, Any], None]:
    assert policy.check_stack is not None

    def validate(args: StackValidationArgs, report_violation: Any) -> None:
        resources = [catalogue.Resource(r.resource_type, r.urn, r.props) for r in args.resources]
        for urn, message in policy.check_stack(resources):
            report_violation(message, urn)

    return validate


def _policies() -> list[Any]:
    made: list[Any] = []
    for policy in catalogue.POLICIES:
        level = LEVELS[policy.level]
        if policy.check is not None:
            made.append(ResourceValidationPolicy(name=policy.name, description=policy.description,
                                                 enforcement_level=level, validate=_resource_validation(policy)))
        else:
            made.append(StackValidationPolicy(name=policy.name, description=policy.description,
                                              enforcement_level=level, validate=_stack_validation(policy)))
    return made


PolicyPack(name=catalogue.PACK_NAME, policies=_policies())
