"""Build a case under Pulumi mocks (answering from the sandbox synthesis) and look at what
it registered: inputs by type token, policies as documents, parentage by URN."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi

from components import get_case
from sandbox.mocks import RegisteredResource, SandboxMocks, build_case


@dataclass
class Recorded:
    mocks: SandboxMocks
    urns: list[str]
    output_names: list[str]

    def of_type(self, token: str) -> list[RegisteredResource]:
        return self.mocks.of_type(token)

    def named(self, name: str, token: str | None = None) -> RegisteredResource:
        """The AWS resource of that logical name (and type, where names are shared)."""
        (found,) = [r for r in self.mocks.resources
                    if r.name == name and r.type.startswith("aws:") and token in (None, r.type)]
        return found

    def one(self, token: str) -> RegisteredResource:
        (found,) = self.of_type(token)
        return found

    def by_id(self, rid: str) -> RegisteredResource:
        (found,) = [r for r in self.mocks.resources if r.id == rid]
        return found


SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


def is_secret(value: Any) -> bool:
    """Whether a recorded input arrived marked as a secret (kept encrypted in state)."""
    return isinstance(value, dict) and value.get("4dabf18193072939515e22adb298388d") == SECRET_SIG


def reveal(value: Any) -> Any:
    return value["value"] if is_secret(value) else value


def policy(resource: RegisteredResource, key: str = "policy") -> dict[str, Any]:
    return json.loads(resource.inputs[key])


def statements(resource: RegisteredResource, key: str = "policy") -> list[dict[str, Any]]:
    return policy(resource, key)["Statement"]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


_BUILT: dict[str, Recorded] = {}
def build(case_name: str, args: dict[str, Any] | None = None, config: dict[str, str] | None = None, *,
          fresh: bool = False) -> Recorded:
    """Build a case under mocks, with the stack's ``config`` (``{"aws:region": ...}``) if given.

    A build under mocks is deterministic, and the suite asks for the same one in many places
    (each case's defaults in its own tests and in every secure-default check): a process builds
    each (case, arguments, configuration) once, and every test asking for it reads that record.
    Read it; never change it. ``fresh`` builds again, for a test that watches the building itself
    (what the program logs or sends while it runs)."""
    key = json.dumps([case_name, args or {}, config or {}], sort_keys=True)
    if fresh or key not in _BUILT:
        _BUILT[key] = _build(case_name, args, config)
    return _BUILT[key]


def _build(case_name: str, args: dict[str, Any] | None, config: dict[str, str] | None) -> Recorded:
    case = get_case(case_name)
    mocks = SandboxMocks()
    names = build_case(case, {**case.example_args, **(args or {})}, mocks, config=config)
    monitor = pulumi.runtime.settings.get_monitor()
    return Recorded(mocks, list(monitor.get_registered_resources()), names)
