"""Pulumi mocks for unit tests, answering from the same synthesis as the sandbox plugin.

Every resource a program registers is kept in :attr:`SandboxMocks.resources`, so tests can
assert on recorded inputs by type token and on parentage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from sandbox import synthesis


@dataclass(frozen=True)
class RegisteredResource:
    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    id: str


class SandboxMocks(pulumi.runtime.Mocks):
    def __init__(self, region: str = synthesis.DEFAULT_REGION) -> None:
        self.region = region
        self.resources: list[RegisteredResource] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        rid, outputs = synthesis.create(args.typ, args.name, dict(args.inputs), region=self.region)
        self.resources.append(RegisteredResource(args.typ, args.name, dict(args.inputs), outputs, rid))
        return rid, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        self.calls.append((args.token, dict(args.args)))
        if args.token == "pulumi:pulumi:readStackOutputs":
            return {"outputs": {}, "secretOutputNames": []}, []
        return synthesis.invoke(args.token, args.args, region=self.region), []

    def of_type(self, type_token: str) -> list[RegisteredResource]:
        return [r for r in self.resources if r.type == type_token]
