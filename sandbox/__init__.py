"""The offline sandbox target: a provider plugin for the ``aws`` package that records
resources instead of calling AWS, and the Pulumi mocks that share its knowledge of AWS."""

from sandbox.synthesis import ACCOUNT_ID, DEFAULT_REGION

__all__ = ["ACCOUNT_ID", "DEFAULT_REGION"]
