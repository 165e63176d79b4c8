"""Pulumi mocks for unit tests, answering from the same synthesis as the sandbox plugin.

Every resource a program registers is kept in :attr:`SandboxMocks.resources`, so tests can
assert on recorded inputs by type token and on parentage.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import dill
import pulumi

from sandbox import rules, synthesis
from sandbox.cloud import set_up_by_hand

DYNAMIC = "pulumi-python:dynamic:Resource"
AWS_PROVIDER = "pulumi:providers:aws"
PROVIDER_KEY = "__provider"  # where a dynamic resource carries its serialized provider


class AwsRefusalError(Exception):
    """What AWS would answer a resource the sandbox's rules refuse (``sandbox.rules``)."""


@dataclass(frozen=True)
class RegisteredResource:
    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    id: str


class SandboxMocks(pulumi.runtime.Mocks):
    """``account_set_up``: the account's API Gateway CloudWatch role is set (as by the
    ``account-baseline`` case), which a REST API stage with logging needs; a mocks test of one
    component takes its account as set up unless it says otherwise."""

    def __init__(self, region: str = synthesis.DEFAULT_REGION, *, account_set_up: bool = True) -> None:
        self.region = region
        self.existing = [set_up_by_hand(rules.DEFAULT_IDENTITY.account, region)] if account_set_up else []
        self.identity = rules.DEFAULT_IDENTITY
        self.resources: list[RegisteredResource] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.quota_limits = rules.quota_limits({})  # AWS's defaults: one account's stacks share them
        self._provider_regions: dict[str, str] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.typ == DYNAMIC:
            rid, outputs = self._create_dynamic(dict(args.inputs))
        else:
            region = self._region_of(args)
            refused = [reason for _, reason in synthesis.check(args.typ, dict(args.inputs))]
            refused += [str(error) for error in rules.call_violations(
                args.typ, {**args.inputs, "region": args.inputs.get("region") or region}, self)]
            if args.typ in rules.QUOTAS:
                exceeded = rules.quota_exceeded(args.typ, self.count_in_account(args.typ), self.quota_limits)
                refused += [str(exceeded)] if exceeded is not None else []
            if refused:
                raise AwsRefusalError(f"{args.typ} {args.name!r}: " + "; ".join(refused))
            try:
                rid, outputs = synthesis.create(args.typ, args.name, dict(args.inputs), region=region)
            except synthesis.AutonameTooLongError as exc:
                raise AwsRefusalError(f"{args.typ} {args.name!r}: {exc}") from None
            if args.typ == AWS_PROVIDER:
                self._provider_regions[rid] = str(args.inputs.get("region") or self.region)
        self.resources.append(RegisteredResource(args.typ, args.name, dict(args.inputs), outputs, rid))
        return rid, outputs

    def _region_of(self, args: pulumi.runtime.MockResourceArgs) -> str:
        """The region of the provider the resource was registered with (``urn::id``)."""
        provider_id = (args.provider or "").rsplit("::", 1)[-1]
        return self._provider_regions.get(provider_id, self.region)

    @staticmethod
    def _create_dynamic(inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Run a dynamic resource's own ``create``, as the engine would (it calls no cloud)."""
        serialized = inputs[PROVIDER_KEY]
        if isinstance(serialized, dict):  # the provider travels as a secret
            serialized = serialized["value"]
        # The program under test serialized it in this same process: not untrusted data.
        provider = dill.loads(base64.b64decode(serialized))  # noqa: S301
        props = {k: v for k, v in inputs.items() if k != PROVIDER_KEY}
        result = provider.create(props)
        return str(result.id), {**(result.outs or {}), PROVIDER_KEY: inputs[PROVIDER_KEY]}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        self.calls.append((args.token, dict(args.args)))
        if args.token == "pulumi:pulumi:readStackOutputs":
            return {"outputs": {}, "secretOutputNames": []}, []
        return synthesis.invoke(args.token, args.args, region=self.region), []

    def find(self, type_token: str, **outputs: Any) -> list[dict[str, Any]]:
        """The sandbox rules' view of what exists (``sandbox.rules.Cloud``): what was registered."""
        held = [r.outputs for r in self.of_type(type_token)] + [r.outputs for r in self.existing if r.type == type_token]
        return [held_outputs for held_outputs in held if all(held_outputs.get(k) == v for k, v in outputs.items())]

    def find_in_account(self, type_token: str, **outputs: Any) -> list[dict[str, Any]]:
        """Mocks model one account, whose every region is what was registered."""
        return self.find(type_token, **outputs)

    def count_in_account(self, type_token: str) -> int:
        """Mocks model one account: what was registered, and what it held before."""
        return len(self.of_type(type_token)) + sum(1 for r in self.existing if r.type == type_token)

    def other_accounts_holding(self, type_token: str, **outputs: Any) -> list[str]:
        """Mocks model one account."""
        return []

    def of_type(self, type_token: str) -> list[RegisteredResource]:
        return [r for r in self.resources if r.type == type_token]


@contextlib.contextmanager
def own_event_loop() -> Iterator[None]:
    """Run what the block builds under mocks on an event loop of its own, closed afterwards with
    its executor's threads and their loops (the mock monitor answers in those threads, each on a
    loop of its own). Left to itself the SDK makes these loops and leaves them open: the garbage
    collector then frees them, unclosed, at some later moment (a ResourceWarning in whatever runs
    then), and a process that forks must not keep the executor's threads."""
    thread_loops: list[asyncio.AbstractEventLoop] = []

    def thread_loop() -> None:  # the SDK finds it there (and makes none of its own)
        thread_loops.append(asyncio.new_event_loop())
        asyncio.set_event_loop(thread_loops[-1])

    loop = asyncio.new_event_loop()
    loop.set_default_executor(ThreadPoolExecutor(thread_name_prefix="mocks", initializer=thread_loop))
    asyncio.set_event_loop(loop)
    try:
        yield
    finally:
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
        for ended in thread_loops:  # their threads have ended
            ended.close()
        asyncio.set_event_loop(None)  # the SDK's next build makes a loop of its own


_positions = threading.Lock()
_positions_off: list[Any] = []  # the SDK's own function, while a block is in progress (one per block)


def _empty_stack() -> Any:
    from pulumi.runtime.proto import source_pb2

    return source_pb2.StackTrace()


@contextlib.contextmanager
def without_source_positions() -> Iterator[None]:
    """Register resources without the SDK's record of where each was declared.

    For every registration the SDK walks the Python stack (``traceback.extract_stack``, each
    frame's source line read, each file's path made a URI) to tell the engine where the resource
    was declared; mocks never read it, and it is about a fifth of a registration's time under
    mocks. The SDK has no setting for it: its one function that does it (pulumi 3.x,
    ``pulumi.runtime.resource._get_stack_trace``) answers an empty stack inside the block. Blocks
    may overlap (nested, or in threads): the SDK's function comes back when the last one ends."""
    from pulumi.runtime import resource as registration

    with _positions:
        if not _positions_off:
            walk = registration._get_stack_trace  # an AttributeError here: the pinned SDK moved it
            registration._get_stack_trace = _empty_stack
        else:
            walk = _positions_off[0]
        _positions_off.append(walk)
    try:
        yield
    finally:
        with _positions:
            _positions_off.pop()
            if not _positions_off:
                registration._get_stack_trace = walk


def build_case(case: Any, args: dict[str, Any], mocks: pulumi.runtime.Mocks, *, stack: str = "unit",
               config: dict[str, str] | None = None, logger: logging.Logger | None = None,
               source_positions: bool = False) -> list[str]:
    """Build ``case`` (a ``components.Case``) with ``args`` under ``mocks``, the stack's ``config``
    set, and wait for every output, on an event loop of its own; the names of the case's outputs.
    The resources are registered without their source positions unless ``source_positions``
    (:func:`without_source_positions`)."""
    names: list[str] = []

    @pulumi.runtime.test
    def construct() -> pulumi.Output[Any]:
        component = case.build(case.name, args)
        names.extend(component.outputs())
        return pulumi.Output.all(*component.outputs().values())

    positions = contextlib.nullcontext() if source_positions else without_source_positions()
    with own_event_loop(), positions:  # the mocks' root resource is made on the loop the build runs on
        pulumi.runtime.set_mocks(mocks, project="serverless-cases", stack=stack, preview=False, logger=logger)
        pulumi.runtime.set_all_config(dict(config or {}))
        construct()
    return names
