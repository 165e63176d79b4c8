"""A secret never leaves a worker, however it is spelt in JSON, and scrubbing never breaks a line."""

from __future__ import annotations

import json
from typing import Any

import pytest

from service.worker import Scrubber, protocol_line

AWKWARD = ['wörd-ü-ß@secret.example', 'say "hi" quietly', 'C:\\secret\\path', "tab\there", "1234567", "null",
           "true-ish", "-0.25e3"]


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [*value.keys(), *(s for v in value.values() for s in _strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


@pytest.mark.parametrize("secret", AWKWARD)
def test_a_secret_is_scrubbed_from_every_string_before_serialising(secret: str) -> None:
    scrub = Scrubber([secret])
    payload = {"type": "diagnostic", "message": f"error: identity {secret} already exists", "sequence": 1234567,
               "nested": [{"detail": secret, secret: "as a key"}], "none": None, "flag": True}
    line = protocol_line("event", payload, scrub)
    decoded = json.loads(line)  # still one valid JSON document
    assert not [text for text in _strings(decoded) if secret in text]
    escaped = json.dumps(secret)[1:-1]
    if escaped != secret:
        assert escaped not in line  # nor in its escaped spelling
    event = decoded["event"]
    assert event["message"] == "error: identity [secret] already exists"
    assert event["sequence"] == 1234567 and event["none"] is None and event["flag"] is True  # numbers, null untouched
    assert event["nested"] == [{"detail": "[secret]", "[secret]": "as a key"}]


def test_scrubbing_the_json_text_instead_would_break_lines() -> None:
    """Why values are scrubbed before serialising (the worker scrubbed its JSON text before): a
    secret that looks like JSON syntax is replaced in the syntax."""
    scrub = Scrubber(["null", "1234567"])
    text = scrub(json.dumps({"event": {"message": "fine", "none": None, "sequence": 1234567}}))
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_a_secret_is_scrubbed_in_the_spellings_output_quotes_it_in() -> None:
    scrub = Scrubber(['rotated-"wörd"\\91c2@secret.example'])
    go_quoted = 'error: identity "rotated-\\"wörd\\"\\\\91c2@secret.example" exists'
    assert scrub(go_quoted) == 'error: identity "[secret]" exists'
    secret = 'rotated-"wörd"\\91c2@secret.example'
    python_repr = f"EmailIdentity {secret!r} already exists"  # as a Python plugin's message spells it
    assert scrub(python_repr) == "EmailIdentity '[secret]' already exists"
