"""A node's housekeeping goes on whatever one chore does: a chore that fails is tried again when
it is next due and the others keep their rounds; the runs role's chores wait until the node
executes runs, the lease's renewal does not."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from service.housekeeping import Chore, Housekeeper
from tests.service_harness import until

ROUND = 0.01


@pytest.fixture
def stopping() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


def test_a_failing_chore_stops_neither_its_next_rounds_nor_the_other_chores(stopping: threading.Event) -> None:
    failed: list[int] = []
    done: list[int] = []

    def fails() -> None:
        failed.append(1)
        raise RuntimeError("the database went away")

    keeper = Housekeeper([Chore("failing", 0.0, fails), Chore("working", 0.0, lambda: done.append(1))],
                         stopping=stopping, executing=lambda: True, round_seconds=ROUND)
    keeper.start()
    assert until(lambda: len(failed) >= 5 and len(done) >= 5, 10), (len(failed), len(done))
    assert keeper.alive()
    stopping.set()
    keeper.join(5)
    assert not keeper.alive()


def test_the_runs_roles_chores_wait_for_the_node_to_execute_runs_and_the_lease_does_not(
        stopping: threading.Event) -> None:
    executing = threading.Event()
    renewed: list[int] = []
    pruned: list[int] = []
    keeper = Housekeeper([Chore("renewing", 0.0, lambda: renewed.append(1), runs_role=False),
                          Chore("pruning", 0.0, lambda: pruned.append(1))],
                         stopping=stopping, executing=executing.is_set, round_seconds=ROUND)
    keeper.start()
    assert until(lambda: len(renewed) >= 5, 10)
    assert pruned == []
    executing.set()
    assert until(lambda: len(pruned) >= 1, 10)


def test_a_chore_comes_round_after_its_period_or_at_once_when_asked(stopping: threading.Event) -> None:
    rounds: list[str] = []
    keeper = Housekeeper([Chore("hourly", 3600.0, lambda: rounds.append("hourly")),
                          Chore("hourly, at once", 3600.0, lambda: rounds.append("at once"), at_once=True),
                          Chore("every round", 0.0, lambda: rounds.append("round"))],
                         stopping=stopping, executing=lambda: True, round_seconds=ROUND)
    keeper.start()
    assert until(lambda: rounds.count("round") >= 20, 10)
    assert rounds.count("at once") == 1 and "hourly" not in rounds
