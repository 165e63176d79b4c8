"""Secrets the stack generates for itself: a random token and an RSA key pair.

They are Pulumi dynamic resources: generated once at create, kept only as secret outputs
(encrypted in state by the stack's secrets provider), and replaced, so rotated, when their
``rotation`` number changes. Nothing here calls AWS, so they work the same on every target
and under mocks (:mod:`sandbox.mocks` runs ``create``).
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider


class _Rotating(ResourceProvider):
    """Replace when ``rotation`` (or the shape, e.g. key size) changes; never update."""

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in ("rotation", "bits") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=False)


class _TokenProvider(_Rotating):
    def create(self, props: dict[str, Any]) -> CreateResult:
        import secrets as random_source  # resolved in the provider process

        return CreateResult(id_=random_source.token_hex(8),
                            outs={**props, "value": random_source.token_urlsafe(32)})


class _KeyPairProvider(_Rotating):
    def create(self, props: dict[str, Any]) -> CreateResult:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=int(props["bits"]))
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        import secrets as random_source

        return CreateResult(id_=random_source.token_hex(8),
                            outs={**props, "public_key_pem": public, "private_key_pem": private})


class RandomToken(Resource):
    """A random URL-safe token (256 bits), secret."""

    value: pulumi.Output[str]

    def __init__(self, name: str, rotation: int = 0, opts: pulumi.ResourceOptions | None = None) -> None:
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["value"]))
        super().__init__(_TokenProvider(), name, {"rotation": rotation, "value": None}, opts)


class RsaKeyPair(Resource):
    """An RSA key pair: the private key is a secret output, the public key is not."""

    public_key_pem: pulumi.Output[str]
    private_key_pem: pulumi.Output[str]

    def __init__(self, name: str, rotation: int = 0, bits: int = 2048,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=["private_key_pem"]))
        super().__init__(_KeyPairProvider(), name,
                         {"rotation": rotation, "bits": bits, "public_key_pem": None, "private_key_pem": None}, opts)


__all__ = ["RandomToken", "RsaKeyPair"]
