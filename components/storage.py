"""PrivateBucket: an S3 bucket nobody can reach publicly, encrypted, TLS-only, owned by the
bucket owner, versioned where data matters."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, cast

import pulumi
import pulumi_aws as aws

from components import defaults
from components.args import check_args

TOKEN = "serverless-cases:storage:PrivateBucket"


class AccessLogSink(Protocol):
    """Where a bucket's server access logs go (``components.access_logs.CaseLogs``)."""

    def log_bucket(self, bucket: PrivateBucket) -> None: ...


@dataclasses.dataclass(frozen=True, kw_only=True)
class PrivateBucketArgs:
    versioning: bool = True
    """Keep old object versions (on by default: the cases keep user data in buckets)."""
    force_destroy: bool = False
    """Let `destroy` delete a non-empty bucket (the AWS provider deletes every object version first).
    Off, AWS refuses to delete a bucket that holds objects (``BucketNotEmpty``): the cases set it from
    their ``deletion_protection``, so losing data takes an explicit choice."""
    transfer_acceleration: bool = False
    kms_key_arn: str | None = None
    """Encrypt with this KMS key instead of S3-managed keys."""
    defer_policy: bool = False
    """Leave the bucket policy to a later :meth:`PrivateBucket.apply_policy` call, for
    statements that name resources created after the bucket (a CDN distribution)."""
    expire_after_days: int | None = None
    """Delete objects this many days after they are written (buckets of logs)."""
    access_logs: AccessLogSink | None = None
    """Log every request to the bucket (S3 server access logging) there."""

    def problems(self) -> list[str]:
        if self.kms_key_arn is not None and not self.kms_key_arn.startswith("arn:"):
            return [f"kms_key_arn: {self.kms_key_arn!r} is not an ARN"]
        if self.expire_after_days is not None and self.expire_after_days < 1:
            return [f"expire_after_days: {self.expire_after_days} is not a positive number of days"]
        return []


class PrivateBucket(pulumi.ComponentResource):
    bucket: aws.s3.Bucket
    name: pulumi.Output[str]
    arn: pulumi.Output[str]
    regional_domain_name: pulumi.Output[str]

    def __init__(self, name: str, args: PrivateBucketArgs | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        self.logical_name = name
        args = args or PrivateBucketArgs()
        check_args(args, component=TOKEN)
        child = pulumi.ResourceOptions(parent=self)

        self.bucket = aws.s3.Bucket(name, force_destroy=args.force_destroy, opts=child)
        self.name = self.bucket.bucket
        self.arn = self.bucket.arn
        self.regional_domain_name = self.bucket.bucket_regional_domain_name

        self.public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access", bucket=self.bucket.id, **defaults.public_access_block(), opts=child)
        self.ownership = aws.s3.BucketOwnershipControls(
            f"{name}-ownership", bucket=self.bucket.id,
            rule={"object_ownership": defaults.BUCKET_OBJECT_OWNERSHIP}, opts=child)
        sse: dict[str, Any] = {"sse_algorithm": "aws:kms" if args.kms_key_arn else defaults.BUCKET_SSE_ALGORITHM}
        if args.kms_key_arn:
            sse["kms_master_key_id"] = args.kms_key_arn
        self.encryption = aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=self.bucket.id,
            rules=[{"apply_server_side_encryption_by_default": sse, "bucket_key_enabled": bool(args.kms_key_arn)}],
            opts=child)
        if args.versioning:
            self.versioning = aws.s3.BucketVersioning(
                f"{name}-versioning", bucket=self.bucket.id,
                versioning_configuration={"status": "Enabled"}, opts=child)
        else:
            defaults.warn_weakened(name, "versioning", False, True)
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=self.bucket.id,
            rules=cast(Any, defaults.bucket_lifecycle_rules(versioned=args.versioning,
                                                            expire_after_days=args.expire_after_days)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.versioning] if args.versioning else []))
        if args.transfer_acceleration:
            aws.s3.BucketAccelerateConfiguration(
                f"{name}-acceleration", bucket=self.bucket.id, status="Enabled", opts=child)

        self.policy: aws.s3.BucketPolicy | None = None
        if not args.defer_policy:
            self.apply_policy()
        if args.access_logs is not None:
            args.access_logs.log_bucket(self)

        self.register_outputs({"name": self.name, "arn": self.arn})

    def apply_policy(
        self,
        extra: Callable[[pulumi.Output[str]], pulumi.Input[Sequence[Mapping[str, Any]]]] | None = None,
    ) -> aws.s3.BucketPolicy:
        """Create the bucket policy: TLS-only, plus the statements ``extra(bucket_arn)`` gives."""
        if self.policy is not None:
            raise RuntimeError(f"{self.logical_name}: the bucket policy was already applied")
        added: pulumi.Input[Sequence[Mapping[str, Any]]] = extra(self.arn) if extra is not None else []
        document = pulumi.Output.all(self.arn, added).apply(
            lambda parts: defaults.policy_document(
                [defaults.tls_only_statement([parts[0], f"{parts[0]}/*"]), *(parts[1] or [])]))
        # The policy waits for the public-access block, so there is no window where the
        # bucket has a policy but no block.
        self.policy = aws.s3.BucketPolicy(
            f"{self.logical_name}-policy", bucket=self.bucket.id, policy=document,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.public_access_block, self.ownership]))
        return self.policy
