"""Typed service errors. Routes raise them; one handler renders them as
``{"error": "<Type>", "detail": ...}`` with their status code."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status_code = 500

    def __init__(self, detail: Any) -> None:
        super().__init__(str(detail))
        self.detail = detail

    @property
    def type(self) -> str:
        return type(self).__name__


class Unauthorized(ServiceError):
    status_code = 401


class Forbidden(ServiceError):
    status_code = 403


class StackNotFound(ServiceError):
    status_code = 404


class RunNotFound(ServiceError):
    status_code = 404


class UnknownCase(ServiceError):
    status_code = 404


class TenantNotFound(ServiceError):
    status_code = 404


class AwsIdentityNotSet(ServiceError):
    status_code = 404


class StackExists(ServiceError):
    status_code = 409


class DeletionProtected(ServiceError):
    status_code = 409


class StackBeingDeleted(ServiceError):
    status_code = 409


class AccountBaselineExists(ServiceError):
    status_code = 409


class AccountBaselineInUse(ServiceError):
    status_code = 409


class RunFinished(ServiceError):
    status_code = 409


class InvalidStackName(ServiceError):
    status_code = 422


class InvalidCursor(ServiceError):
    status_code = 422


class InvalidStackConfig(ServiceError):
    status_code = 422


class TargetChange(ServiceError):
    status_code = 422


class MissingCredentials(ServiceError):
    status_code = 422


class MissingAwsIdentity(ServiceError):
    status_code = 422


class InvalidPolicyConfig(ServiceError):
    status_code = 422


class PayloadTooLarge(ServiceError):
    status_code = 413


class ToolchainMissing(ServiceError):
    status_code = 503


class FleetSettingError(Exception):
    """A node's settings cannot work (for a fleet, or beside the nodes already on its database):
    the node stops at start with this message, which names the setting."""
