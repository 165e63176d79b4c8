"""The serverless-cases Pulumi program: :func:`main`.

It runs two ways: as the project's Python program (``programs/__main__.py``, through the
language host: ``pulumi up`` directly), and inline in the service's workers (the Automation
API's own language server), where :func:`preload` has done the imports before the run.

Stack config (namespace ``serverless-cases``):

- ``case``: which case to build (see ``components.catalog``),
- ``target``: ``sandbox`` or ``aws``, fixed when the stack is created,
- ``args``: the case's arguments as an object (optional),
- ``secretArgs``: more arguments, kept encrypted in the stack config (optional; set with
  ``pulumi config set --secret serverless-cases:secretArgs '{"field": "value"}'``).

Everything is checked before the first resource is registered: an unknown case lists the
valid ones, invalid arguments list every invalid field, a changed target is refused.
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

import pulumi

from components import CASES, ComponentArgsError, UnknownCaseError, get_case
from components.tagging import stack_tags, tagging
from programs import targets

# The pulumi_aws modules the cases use. pulumi_aws loads a module's generated classes on its
# first use (about a second of CPU for these); a worker waiting for a run loads them ahead.
AWS_MODULES = ("acm", "apigateway", "athena", "autoscaling", "cloudfront", "cloudwatch", "cognito", "dax",
               "dynamodb", "ec2", "glue", "iam", "iot", "kinesis", "kms", "lambda_", "lb", "route53", "s3",
               "secretsmanager", "sesv2", "sns", "sqs", "ssm", "vpc", "wafv2")


LOG = logging.getLogger(__name__)
_WARM_UP_LOG = logging.getLogger(f"{__name__}.warm_up")
_WARM_UP_LOG.propagate = False  # the cases' warnings under mocks concern no stack
_WARM_UP_LOG.addHandler(logging.NullHandler())


class ProgramError(pulumi.RunError):
    """A problem the program reports as one clear message (no traceback), before any resource."""


def fail(message: str) -> NoReturn:
    raise ProgramError(message)


def preload(warm: bool = True) -> None:
    """Import what a run of any case needs, so that a run spends no time on it; with ``warm``,
    also build every case once under mocks (:func:`warm_up`)."""
    for name in AWS_MODULES:
        module = importlib.import_module(f"pulumi_aws.{name}")
        getattr(module, "__all__", None)  # a lazy module loads on its first attribute use
    if warm:
        warm_up()


def warm_up() -> None:
    """Build every case once under mocks, so what the SDK and the argument checks work out once
    per class is done before a run: pulumi's input and output types of each resource class
    (type hints resolved on first use, then cached), each case's argument validator, the modules
    those import lazily. A run's program did this work for itself on every run.

    Each case is built in a context of its own (the SDK keeps its settings, configuration and root
    resource in context variables, so nothing of the mocks reaches a run), on an event loop of its
    own, closed afterwards with its executor's threads (build_case): a fork server must not fork
    with threads alive."""
    from sandbox.mocks import SandboxMocks, build_case  # the sandbox's synthesis answers like the cloud

    try:
        for case in CASES.values():
            try:
                contextvars.copy_context().run(build_case, case, dict(case.example_args), SandboxMocks(),
                                               stack="warm-up", logger=_WARM_UP_LOG,
                                               source_positions=True)  # as a run registers
            except Exception as exc:  # a warm-up is an optimisation: a case that fails here fails in its run
                LOG.warning("warming up case %s failed: %s", case.name, exc)
    finally:
        asyncio.set_event_loop_policy(None)  # as before: the next get_event_loop() makes a loop


CHECKPOINT_BEING_WRITTEN = ("failed to load checkpoint", "unknown stack")
"""How the engine answers a read of the stack's outputs while it writes the stack's checkpoint.
"failed to load checkpoint": a checkpoint read as it was replaced. "unknown stack": the file
backend finds a stack's checkpoint by listing the files named after it, and a listing that meets
the temporary file of a write in progress (``<stack>.json.gz.<n>.tmp``, renamed away before it
is looked at) fails; the backend then looks for an uncompressed checkpoint that a compressed
state does not have. A program runs inside an update of its stack, so the stack exists."""


def previous_target(attempts: int = 20, pause: float = 0.1) -> str | None:
    """The target this stack was last deployed with (its ``target`` output), if any.

    Reads the stack's own outputs through the engine. During an update the engine may be
    rewriting the checkpoint at that moment (:data:`CHECKPOINT_BEING_WRITTEN`), so those errors
    are retried briefly; any other failure stops the run (the check fails closed)."""
    name = f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}"
    for attempt in range(attempts):
        try:
            result = pulumi.runtime.invoke("pulumi:pulumi:readStackOutputs", {"name": name})
            break
        except Exception as exc:
            if not any(error in str(exc) for error in CHECKPOINT_BEING_WRITTEN) or attempt == attempts - 1:
                fail(f"cannot read this stack's previous outputs to check its target: {exc}")
            time.sleep(pause)
    outputs = (result.value or {}).get("outputs") or {}
    value = outputs.get("target")
    return value if isinstance(value, str) else None


def secrets_marker(values: Iterable[Any]) -> pulumi.ResourceTransform:
    """A transform that marks secret every resource property whose value contains one of
    ``values`` (the secret arguments), so state and outputs keep them encrypted."""
    needles = [str(v) for v in values if str(v)]
    contains = _contains_any(needles)

    def mark(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult:
        props = {key: _secret_if(value, contains) for key, value in args.props.items()}
        return pulumi.ResourceTransformResult(props, args.opts)

    return mark


def _secret_if(value: Any, contains: Callable[[Any], bool]) -> pulumi.Output[Any]:
    return pulumi.Output.from_input(value).apply(lambda v: pulumi.Output.secret(v) if contains(v) else v)


def _contains_any(needles: list[str]) -> Callable[[Any], bool]:
    def contains(value: Any) -> bool:
        if isinstance(value, str):
            return any(n in value for n in needles)
        if isinstance(value, dict):
            return any(contains(v) for v in value.values())
        if isinstance(value, list | tuple):
            return any(contains(v) for v in value)
        return value is not None and not isinstance(value, bool | int | float) and contains(str(value))

    return contains


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

    secret_args = config.get_object("secretArgs") or {}
    try:
        args = case.parse_args({**(config.get_object("args") or {}), **secret_args})
    except ComponentArgsError as exc:
        fail(str(exc))
    if secret_args:
        pulumi.runtime.register_resource_transform(secrets_marker(secret_args.values()))
    pulumi.runtime.register_stack_transformation(
        tagging(stack_tags(stack=pulumi.get_stack(), case=case.name, extra=args.tags)))

    try:  # what only the stack can tell (its region) is checked as the case is built
        component = case.component(case.name, args, None)
    except ComponentArgsError as exc:
        fail(str(exc))
    contains = _contains_any([str(v) for v in secret_args.values() if str(v)])
    for key, value in component.outputs().items():
        pulumi.export(key, _secret_if(value, contains) if secret_args else value)
    pulumi.export("case", case.name)
    pulumi.export("target", target)

