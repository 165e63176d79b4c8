"""A list's cursor is opaque: one the service did not give is a 422 with a reason, never a 5xx."""

from __future__ import annotations

import pytest

from service import pages
from service.errors import InvalidCursor


def test_a_cursor_round_trips() -> None:
    assert pages.decode(pages.encode(["2026-12-01T00:00:00+00:00", "run-1"]), 2) == \
        ["2026-12-01T00:00:00+00:00", "run-1"]
    assert pages.decode(None, 1) is None


@pytest.mark.parametrize("cursor", ["not-a-cursor", "%%%", pages.encode(["a"]), pages.encode([1, 2]),
                                    pages.encode(["a", "b", "c"])])
def test_a_cursor_the_service_did_not_give_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        pages.decode(cursor, 2)


def test_a_cursor_holding_no_time_is_refused() -> None:
    key = pages.decode(pages.encode(["not a time", "run-1"]), 2)
    assert key is not None
    with pytest.raises(InvalidCursor):
        pages.moment(key[0])
