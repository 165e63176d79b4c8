"""The sandbox's stand-in for AWS's own records: one JSON file per live resource.

The provider writes a record on create and update, reads it on refresh and removes it on
delete, so a refresh sees what "the cloud" holds: edit or delete a record and the next
refresh reports drift, exactly as a change made in the AWS console would.

Location: ``$SANDBOX_CLOUD_DIR``, else ``$XDG_DATA_HOME/serverless-cases/sandbox-cloud``; in it one
folder per region for the sandbox's own account, and ``accounts/<account id>/<region>`` for each
account a provider assumes a role in (each tenant of the service has its own).
Writes are atomic (temporary file + rename), so a killed run never leaves half a record.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox import rules
from sandbox.rules import API_GATEWAY_SETTINGS, DEFAULT_IDENTITY, OBJECT, Identity


def default_dir() -> Path:
    explicit = os.environ.get("SANDBOX_CLOUD_DIR")
    if explicit:
        return Path(explicit)
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "serverless-cases" / "sandbox-cloud"


BY_HAND = "urn:pulumi:set-up-by-hand::"
"""How the records of :func:`set_up_by_hand` are named: no stack's URN."""


def set_up_by_hand(account: str, region: str) -> Record:
    """An account's API Gateway settings as its administrator may have made them by hand (console or
    CLI) before any stack: the CloudWatch Logs role of the region, which the ``account-baseline``
    case sets otherwise. For tests that take an account as set up; the role is not one the sandbox
    holds (made outside its stacks), so the rules do not judge it."""
    role = f"arn:aws:iam::{account}:role/api-gateway-cloudwatch-set-up-by-hand"
    return Record(API_GATEWAY_SETTINGS, "api-gateway-account",
                  f"{BY_HAND}account::{API_GATEWAY_SETTINGS}::api-gateway",
                  {"cloudwatchRoleArn": role}, {"id": "api-gateway-account", "cloudwatchRoleArn": role,
                                                 "region": region})


class ResourceExistsError(Exception):
    """A resource with the same identity already exists (AWS's AlreadyExists errors)."""


@dataclass(frozen=True)
class Record:
    type: str
    id: str
    urn: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]


def _find_in(folder: Path, type_token: str, outputs: dict[str, Any]) -> list[dict[str, Any]]:
    kind = type_token.replace(":", "_").replace("/", "_")
    found = []
    for path in sorted((folder / kind).glob("*.json")):
        record = Record(**json.loads(path.read_text()))
        if all(record.outputs.get(k) == v for k, v in outputs.items()):
            found.append(record.outputs)
    return found


class SandboxCloud:
    """One account's resources in one region (``sandbox.rules.Cloud``)."""

    def __init__(self, root: Path | None = None, region: str = "us-east-1",
                 identity: Identity = DEFAULT_IDENTITY) -> None:
        self.base, self.region, self.identity = root or default_dir(), region, identity
        self.root = self._account_dir(identity.account)
        self.root.mkdir(parents=True, exist_ok=True)

    def _account_dir(self, account: str) -> Path:
        if account == DEFAULT_IDENTITY.account:
            return self.base / self.region
        return self.base / "accounts" / account / self.region

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
                raise ResourceExistsError(str(rules.already_exists(record.type, record.id)))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "w") as handle:
            json.dump(record.__dict__, handle, sort_keys=True)
        os.replace(tmp, path)

    def set_up_by_hand(self) -> None:
        """Give this account and region the settings of :func:`set_up_by_hand`."""
        self.put(set_up_by_hand(self.identity.account, self.region))

    def put_object(self, bucket: str, key: str) -> None:
        """An object written into ``bucket`` (by a user of the stack, or by S3's and CloudFront's logging)."""
        self.put(Record(OBJECT, f"{bucket}/{key}", f"urn:pulumi:written::object::{OBJECT}::{key}",
                        {"bucket": bucket, "key": key}, {"id": f"{bucket}/{key}", "bucket": bucket, "key": key}))

    def empty(self, bucket: str) -> None:
        """Delete every object of ``bucket`` (what the AWS provider does before deleting a bucket with
        ``forceDestroy``)."""
        for found in self.find(OBJECT, bucket=bucket):
            self.delete(OBJECT, str(found["id"]))

    def delete(self, type_token: str, rid: str) -> None:
        self._path(type_token, rid).unlink(missing_ok=True)

    def find(self, type_token: str, **outputs: Any) -> list[dict[str, Any]]:
        """The outputs of the live resources of a type whose outputs have these values."""
        return _find_in(self.root, type_token, outputs)

    def _account_folder(self) -> Path:
        account = self.identity.account
        return self.base / "accounts" / account if account != DEFAULT_IDENTITY.account else self.base

    def _regions(self) -> list[Path]:
        """The folders of this account's regions."""
        return [region for region in sorted(self._account_folder().iterdir())
                if region.is_dir() and region.name != "accounts"]

    @contextlib.contextmanager
    def quota_lock(self) -> Iterator[None]:
        """Held while a create that counts against one of the account's quotas is counted, judged
        and recorded, by every process of every stack of the account (AWS counts atomically: two
        runs racing for the last place of a quota must not both get it)."""
        with (self._account_folder() / ".quota.lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def count_in_account(self, type_token: str) -> int:
        """How many live resources of the type this account holds, in every region (what an
        account quota counts: CloudFront's resources are global, whichever region made them)."""
        kind = type_token.replace(":", "_").replace("/", "_")
        return sum(len(list((region / kind).glob("*.json"))) for region in self._regions())

    def find_in_account(self, type_token: str, **outputs: Any) -> list[dict[str, Any]]:
        """Like :meth:`find`, in every region of this account (CloudFront's resources are global)."""
        return [found for region in self._regions() for found in _find_in(region, type_token, outputs)]

    def other_accounts_holding(self, type_token: str, **outputs: Any) -> list[str]:
        """The other accounts with a live resource of that type and these outputs, in this region."""
        accounts = [DEFAULT_IDENTITY.account, *(p.name for p in sorted((self.base / "accounts").glob("*")))]
        holding = []
        for account in accounts:
            if account != self.identity.account and _find_in(self._account_dir(account), type_token, outputs):
                holding.append(account)
        return holding

    def records(self) -> Iterator[Record]:
        for path in sorted(self.root.glob("*/*.json")):
            yield Record(**json.loads(path.read_text()))
