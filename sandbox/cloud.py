"""The sandbox's stand-in for AWS's own records: one JSON file per live resource.

The provider writes a record on create and update, reads it on refresh and removes it on
delete, so a refresh sees what "the cloud" holds: edit or delete a record and the next
refresh reports drift, exactly as a change made in the AWS console would.

Location: ``$SANDBOX_CLOUD_DIR``, else ``$XDG_DATA_HOME/serverless-cases/sandbox-cloud``.
Writes are atomic (temporary file + rename), so a killed run never leaves half a record.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def default_dir() -> Path:
    explicit = os.environ.get("SANDBOX_CLOUD_DIR")
    if explicit:
        return Path(explicit)
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "serverless-cases" / "sandbox-cloud"


class ResourceExistsError(Exception):
    """A resource with the same identity already exists (AWS's AlreadyExists errors)."""


@dataclass(frozen=True)
class Record:
    type: str
    id: str
    urn: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]


class SandboxCloud:
    def __init__(self, root: Path | None = None, region: str = "us-east-1") -> None:
        self.root = (root or default_dir()) / region
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, type_token: str, rid: str) -> Path:
        kind = type_token.replace(":", "_").replace("/", "_")
        return self.root / kind / (hashlib.sha256(rid.encode()).hexdigest()[:32] + ".json")

    def get(self, type_token: str, rid: str) -> Record | None:
        path = self._path(type_token, rid)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        return Record(**data)

    def put(self, record: Record, *, must_be_new: bool = False) -> None:
        path = self._path(record.type, record.id)
        if must_be_new and path.exists():
            existing = self.get(record.type, record.id)
            if existing is not None and existing.urn != record.urn:
                raise ResourceExistsError(f"{record.type} {record.id!r} already exists (owned by {existing.urn})")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "w") as handle:
            json.dump(record.__dict__, handle, sort_keys=True)
        os.replace(tmp, path)

    def delete(self, type_token: str, rid: str) -> None:
        self._path(type_token, rid).unlink(missing_ok=True)

    def find(self, type_token: str, **outputs: Any) -> list[dict[str, Any]]:
        """The outputs of the live resources of a type whose outputs have these values."""
        kind = type_token.replace(":", "_").replace("/", "_")
        found = []
        for path in sorted((self.root / kind).glob("*.json")):
            record = Record(**json.loads(path.read_text()))
            if all(record.outputs.get(k) == v for k, v in outputs.items()):
                found.append(record.outputs)
        return found

    def records(self) -> Iterator[Record]:
        for path in sorted(self.root.glob("*/*.json")):
            yield Record(**json.loads(path.read_text()))
