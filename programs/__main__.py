"""The serverless-cases Pulumi program.

Stack config (namespace ``serverless-cases``):

- ``case``: which case to build (see ``components.catalog``),
- ``target``: ``sandbox`` or ``aws``, fixed when the stack is created,
- ``args``: the case's arguments as an object (optional; values set with
  ``pulumi config set --secret --path args.<field>`` stay encrypted in the stack file).

Everything is checked before the first resource is registered: an unknown case lists the
valid ones, invalid arguments list every invalid field, a changed target is refused.
"""

from __future__ import annotations

import os
import sys
import time
from typing import NoReturn

import pulumi

from components import ComponentArgsError, UnknownCaseError, get_case
from programs import targets

# The executor's exit code for "an actionable message was already shown": the engine then
# reports that message alone, without a second generic failure.
EXIT_AFTER_MESSAGE = 32


def fail(message: str) -> NoReturn:
    pulumi.log.error(message)
    sys.exit(EXIT_AFTER_MESSAGE)


def previous_target(attempts: int = 20, pause: float = 0.1) -> str | None:
    """The target this stack was last deployed with (its ``target`` output), if any.

    Reads the stack's own outputs through the engine. During an update the engine may be
    rewriting the checkpoint at that moment ("failed to load checkpoint"), so that error is
    retried briefly; any other failure stops the run (the check fails closed)."""
    name = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    for attempt in range(attempts):
        try:
            result = pulumi.runtime.invoke("pulumi:pulumi:readStackOutputs", {"name": name})
            break
        except Exception as exc:
            if "failed to load checkpoint" not in str(exc) or attempt == attempts - 1:
                fail(f"cannot read this stack's previous outputs to check its target: {exc}")
            time.sleep(pause)
    outputs = (result.value or {}).get("outputs") or {}
    value = outputs.get("target")
    return value if isinstance(value, str) else None


def main() -> None:
    config = pulumi.Config(targets.CONFIG_NAMESPACE)
    try:
        target = targets.check_target(config.require("target"))
        case = get_case(config.require("case"))
    except (targets.TargetError, UnknownCaseError) as exc:
        fail(str(exc))

    before = previous_target()
    if before is not None and before != target:
        fail(f"this stack was deployed to target {before!r}; its target cannot change to {target!r}. "
             "Create a new stack for the other target.")
    problem = targets.environment_problem(target, os.environ)
    if problem:
        fail(problem)

    try:
        args = case.parse_args(config.get_object("args") or {})
    except ComponentArgsError as exc:
        fail(str(exc))

    component = case.component(case.name, args, None)
    for key, value in component.outputs().items():
        pulumi.export(key, value)
    pulumi.export("case", case.name)
    pulumi.export("target", target)


main()
