"""Secret argument values of queued runs, sealed in the database until their run starts.

A run's secret arguments wait in its row (``Run.sealed_secrets``) from its acceptance to its start,
possibly on another node: they are sealed with a key derived from the fleet's passphrase (Fernet),
so every node of the fleet can open them and the database alone cannot. A value that does not open
(the passphrase changed in between) is :class:`cryptography.fernet.InvalidToken`, which the run's
start reports as a typed error.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

__all__ = ["InvalidToken", "SecretBox"]


class SecretBox:
    """Seals secret argument values of queued runs (Fernet, key derived from the passphrase)."""

    def __init__(self, key_material: bytes) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"serverless-cases/runs\0" + key_material)
                                                       .digest()))

    def seal(self, values: dict[str, Any]) -> str | None:
        return self._fernet.encrypt(json.dumps(values).encode()).decode() if values else None

    def open(self, sealed: str | None) -> dict[str, Any]:
        return json.loads(self._fernet.decrypt(sealed.encode())) if sealed else {}
