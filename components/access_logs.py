"""Access logs: one private bucket of logs per case, made on first use, into which every bucket of
the case writes its S3 server access logs and every distribution its CloudFront standard logs.

The log bucket is a :class:`PrivateBucket` (private, encrypted with S3-managed keys, ACLs
disabled, TLS only) whose objects expire. With ACLs disabled, CloudFront's legacy logging (which
writes through an ACL grant) cannot write to it, so distributions use standard logging v2:
a CloudWatch Logs delivery (source, destination, delivery, all in us-east-1) into the bucket.
S3 server access logs need a target with S3-managed keys in the source bucket's region: the
log bucket is in the stack's region and never uses KMS.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components import defaults
from components.naming import physical_name
from components.regions import provider_in
from components.storage import PrivateBucket, PrivateBucketArgs

TOKEN = "serverless-cases:logs:DistributionLogs"


class CaseLogs:
    """A case's access logging: its log bucket (made when the first bucket or distribution asks
    for it), or nothing when the case turned access logs off."""

    def __init__(self, name: str, *, enabled: bool, parent: pulumi.Resource,
                 us_east_1: aws.Provider | None = None, keep_data: bool = True) -> None:
        """``us_east_1``: a provider for that region the case already has (else one is made);
        ``keep_data``: the case's ``deletion_protection`` (the log bucket is deleted with its logs only
        without it)."""
        self.name, self.enabled, self.parent, self.keep_data = name, enabled, parent, keep_data
        self._bucket: PrivateBucket | None = None
        self._us_east_1 = us_east_1

    @property
    def bucket(self) -> PrivateBucket:
        if self._bucket is None:
            self._bucket = PrivateBucket(f"{self.name}-access-logs", PrivateBucketArgs(
                expire_after_days=defaults.ACCESS_LOG_EXPIRY_DAYS, defer_policy=True, force_destroy=not self.keep_data),
                opts=pulumi.ResourceOptions(parent=self.parent))
            account = aws.get_caller_identity_output().account_id
            self._bucket.apply_policy(lambda arn: pulumi.Output.all(arn, account).apply(
                lambda parts: defaults.log_bucket_statements(parts[0], parts[1])))
        return self._bucket

    def outputs(self) -> dict[str, pulumi.Output[str]]:
        """The case's ``access_log_bucket`` output, once the log bucket exists."""
        return {"access_log_bucket": self._bucket.name} if self._bucket is not None else {}

    def sink(self) -> CaseLogs | None:
        """What a :class:`PrivateBucketArgs` takes as ``access_logs``: this, or None when off."""
        return self if self.enabled else None

    def log_bucket(self, bucket: PrivateBucket) -> None:
        """S3 server access logging of ``bucket`` into the log bucket, under ``s3/<bucket>/``."""
        target = self.bucket
        aws.s3.BucketLogging(
            f"{bucket.logical_name}-access-logging", bucket=bucket.bucket.id, target_bucket=target.name,
            target_prefix=f"{defaults.S3_ACCESS_LOG_PREFIX}/{bucket.logical_name}/",
            opts=pulumi.ResourceOptions(parent=bucket, depends_on=[target.policy] if target.policy else []))

    def log_distribution(self, name: str, distribution: aws.cloudfront.Distribution) -> DistributionLogs | None:
        """CloudFront standard logging (v2) of ``distribution`` into the log bucket, or None when off."""
        if not self.enabled:
            return None
        if self._us_east_1 is None:
            self._us_east_1 = provider_in(defaults.CDN_LOG_REGION, f"{self.name}-logs-{defaults.CDN_LOG_REGION}",
                                          parent=self.parent)
        return DistributionLogs(name, distribution=distribution, bucket=self.bucket, provider=self._us_east_1,
                                opts=pulumi.ResourceOptions(parent=self.parent))


class DistributionLogs(pulumi.ComponentResource):
    """A CloudWatch Logs delivery of one distribution's access logs into a log bucket."""

    def __init__(self, name: str, *, distribution: aws.cloudfront.Distribution, bucket: PrivateBucket,
                 provider: aws.Provider, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        regional = pulumi.ResourceOptions(parent=self, provider=provider)
        self.source = aws.cloudwatch.LogDeliverySource(
            f"{name}-source", name=physical_name(f"{name}-source", max_length=60),
            log_type="ACCESS_LOGS", resource_arn=distribution.arn, opts=regional)
        self.destination = aws.cloudwatch.LogDeliveryDestination(
            f"{name}-destination", name=physical_name(f"{name}-destination", max_length=60),
            output_format=defaults.CDN_LOG_FORMAT,
            delivery_destination_configuration={"destination_resource_arn": pulumi.Output.concat(
                bucket.arn, f"/{defaults.CDN_ACCESS_LOG_PREFIX}")},
            opts=regional)
        self.delivery = aws.cloudwatch.LogDelivery(
            f"{name}-delivery", delivery_source_name=self.source.name, delivery_destination_arn=self.destination.arn,
            opts=pulumi.ResourceOptions(parent=self, provider=provider,
                                        depends_on=[bucket.policy] if bucket.policy else []))
        self.register_outputs({"delivery": self.delivery.id})
