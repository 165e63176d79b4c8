"""A case built under mocks registers its resources without the SDK's source positions (mocks
never read them), and the process gets them back afterwards, whatever the build did: the fork
server builds every case under mocks before it forks the runs' programs, whose registrations keep
theirs."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest
from pulumi.runtime import resource as registration

from components import get_case
from sandbox.mocks import SandboxMocks, build_case, without_source_positions


class Noting(SandboxMocks):
    """Mocks that note, for each AWS resource registered, whether the SDK walked the stack for it,
    and fail at the first one when asked."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.fail = fail
        self.walked: list[bool] = []
        self.walk = registration._get_stack_trace

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.typ.startswith("aws:"):
            if self.fail:
                raise RuntimeError("the build fails here")
            self.walked.append(registration._get_stack_trace is self.walk)
        return super().new_resource(args)


def frames_now() -> int:
    return len(registration._get_stack_trace().frames)


def declared_here() -> int:
    """The frames the SDK records for a resource declared in this test (three __init__ calls deep)."""

    class Resource:
        def __init__(self) -> None:
            self.frames = Inner().frames

    class Inner:
        def __init__(self) -> None:
            self.frames = Innermost().frames

    class Innermost:
        def __init__(self) -> None:
            self.frames = frames_now()

    return Resource().frames


def test_a_build_under_mocks_registers_no_source_positions_and_gives_them_back() -> None:
    case = get_case("software-updates")
    assert declared_here() > 0, "the SDK records where a resource is declared"
    mocks = Noting()
    build_case(case, dict(case.example_args), mocks)
    assert mocks.walked and not any(mocks.walked)
    assert registration._get_stack_trace is mocks.walk and declared_here() > 0


def test_source_positions_come_back_after_a_build_that_fails() -> None:
    case = get_case("software-updates")
    walk = registration._get_stack_trace
    with pytest.raises(Exception, match="the build fails here"):
        build_case(case, dict(case.example_args), Noting(fail=True))
    assert registration._get_stack_trace is walk and declared_here() > 0


def test_a_build_asked_for_source_positions_keeps_them() -> None:
    case = get_case("software-updates")
    mocks = Noting()
    build_case(case, dict(case.example_args), mocks, source_positions=True)
    assert mocks.walked and all(mocks.walked)


def test_overlapping_builds_give_the_sdk_its_own_function_back_when_the_last_ends() -> None:
    walk = registration._get_stack_trace
    first, second = without_source_positions(), without_source_positions()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first to start ends first, as two threads' builds may
    assert registration._get_stack_trace is not walk, "a block still in progress keeps them off"
    second.__exit__(None, None, None)
    assert registration._get_stack_trace is walk and declared_here() > 0
