"""PrivateBucketCdn: a CloudFront distribution in front of a private bucket.

The bucket stays private (:class:`PrivateBucket`); CloudFront reaches it through origin
access control, and the bucket policy lets in only this distribution (``AWS:SourceArn``).
Viewers are redirected to HTTPS, responses carry security headers and are compressed.
An origin access identity (the older mechanism) is offered only for users who need it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from components import defaults
from components.access_logs import CaseLogs
from components.args import check_args
from components.storage import PrivateBucket, PrivateBucketArgs

TOKEN = "serverless-cases:cdn:PrivateBucketCdn"
ORIGIN_ID = "private-bucket"


@dataclasses.dataclass(frozen=True, kw_only=True)
class PrivateBucketCdnArgs:
    origin_access: str = "control"
    """``control`` (origin access control, recommended) or ``identity`` (legacy OAI)."""
    default_root_object: str = defaults.CDN_DEFAULT_ROOT_OBJECT
    price_class: str = defaults.CDN_PRICE_CLASS
    trusted_key_group_ids: Sequence[pulumi.Input[str]] = ()
    """Require CloudFront signed URLs/cookies from these key groups on every behaviour."""
    force_destroy: bool = False
    aliases: Sequence[str] = ()
    """Custom domain names (with ``certificate_arn``, an ACM certificate in us-east-1)."""
    certificate_arn: pulumi.Input[str] | None = None
    web_acl_arn: pulumi.Input[str] | None = None
    """An AWS WAF web ACL (scope CLOUDFRONT) in front of the distribution."""
    logs: CaseLogs | None = None
    """Where the distribution's standard logs and its bucket's server access logs go."""
    response_headers_policy_id: pulumi.Input[str] | None = None
    """An existing response headers policy (one shared by stacks of the account) instead of the
    distribution's own (:func:`security_headers_policy`)."""

    def problems(self) -> list[str]:
        problems = []
        if self.origin_access not in ("control", "identity"):
            problems.append(f"origin_access: {self.origin_access!r} is not 'control' or 'identity'")
        if bool(self.aliases) != (self.certificate_arn is not None):
            problems.append("aliases and certificate_arn go together")
        if self.price_class not in ("PriceClass_100", "PriceClass_200", "PriceClass_All"):
            problems.append(f"price_class: {self.price_class!r} is not a CloudFront price class")
        return problems


class PrivateBucketCdn(pulumi.ComponentResource):
    bucket: PrivateBucket
    distribution: aws.cloudfront.Distribution
    domain_name: pulumi.Output[str]
    url: pulumi.Output[str]

    def __init__(self, name: str, args: PrivateBucketCdnArgs | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        args = args or PrivateBucketCdnArgs()
        check_args(args, component=TOKEN)
        child = pulumi.ResourceOptions(parent=self)
        self.bucket = PrivateBucket(
            f"{name}-content", PrivateBucketArgs(defer_policy=True, force_destroy=args.force_destroy,
                                                 access_logs=args.logs.sink() if args.logs else None),
            opts=child)

        origin: dict[str, Any] = {"origin_id": ORIGIN_ID, "domain_name": self.bucket.regional_domain_name}
        self.origin_access_identity: aws.cloudfront.OriginAccessIdentity | None = None
        if args.origin_access == "control":
            self.origin_access_control = aws.cloudfront.OriginAccessControl(
                f"{name}-oac", origin_access_control_origin_type="s3", signing_behavior="always",
                signing_protocol="sigv4", description=f"{name}: CloudFront to its private bucket", opts=child)
            origin["origin_access_control_id"] = self.origin_access_control.id
        else:
            defaults.warn_weakened(name, "origin_access", "identity", "control")
            self.origin_access_identity = aws.cloudfront.OriginAccessIdentity(
                f"{name}-oai", comment=f"{name}: CloudFront to its private bucket", opts=child)
            origin["s3_origin_config"] = {
                "origin_access_identity": self.origin_access_identity.cloudfront_access_identity_path}

        self.headers = None if args.response_headers_policy_id is not None else \
            security_headers_policy(f"{name}-headers", parent=self)
        behaviour: dict[str, Any] = {
            "target_origin_id": ORIGIN_ID,
            "viewer_protocol_policy": defaults.CDN_VIEWER_PROTOCOL_POLICY,
            "allowed_methods": ["GET", "HEAD", "OPTIONS"],
            "cached_methods": ["GET", "HEAD"],
            "compress": True,
            "cache_policy_id": defaults.CDN_CACHING_OPTIMIZED_POLICY_ID,
            "response_headers_policy_id": headers_policy_id(self.headers, args.response_headers_policy_id),
        }
        if args.trusted_key_group_ids:
            behaviour["trusted_key_groups"] = list(args.trusted_key_group_ids)
        self.distribution = aws.cloudfront.Distribution(
            name,
            enabled=True,
            is_ipv6_enabled=True,
            comment=f"{name}: private bucket content",
            default_root_object=args.default_root_object,
            price_class=args.price_class,
            http_version="http2and3",
            origins=[origin],
            default_cache_behavior=behaviour,
            restrictions={"geo_restriction": {"restriction_type": "none"}},
            aliases=list(args.aliases) or None,
            viewer_certificate=defaults.viewer_certificate(args.certificate_arn),
            web_acl_id=args.web_acl_arn,
            opts=child,
        )
        self.bucket.apply_policy(self._reader_statements)
        self.logs = args.logs.log_distribution(f"{name}-logs", self.distribution) if args.logs else None
        self.domain_name = self.distribution.domain_name
        self.url = pulumi.Output.concat("https://", self.distribution.domain_name)
        self.register_outputs({"url": self.url, "bucket": self.bucket.name})

    def _reader_statements(self, bucket_arn: pulumi.Output[str]) -> pulumi.Output[list[dict[str, Any]]]:
        """Only this distribution may read the bucket's objects."""
        if self.origin_access_identity is not None:
            return pulumi.Output.all(bucket_arn, self.origin_access_identity.iam_arn).apply(lambda p: [{
                "Sid": "CloudFrontIdentityReads", "Effect": "Allow", "Principal": {"AWS": p[1]},
                "Action": "s3:GetObject", "Resource": f"{p[0]}/*"}])
        return pulumi.Output.all(bucket_arn, self.distribution.arn).apply(lambda p: [{
            "Sid": "CloudFrontDistributionReads",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": f"{p[0]}/*",
            "Condition": {"StringEquals": {"AWS:SourceArn": p[1]}},
        }])


def security_headers_policy(name: str, *, parent: pulumi.Resource) -> aws.cloudfront.ResponseHeadersPolicy:
    """The CloudFront response-headers policy every distribution uses (see ``defaults.security_headers``)."""
    return aws.cloudfront.ResponseHeadersPolicy(
        name, comment="Security headers", security_headers_config=defaults.security_headers(),
        opts=pulumi.ResourceOptions(parent=parent))


def headers_policy_id(own: aws.cloudfront.ResponseHeadersPolicy | None,
                      shared: pulumi.Input[str] | None) -> pulumi.Input[str]:
    """The response headers policy a distribution attaches: the shared one given, else its own."""
    if shared is not None:
        return shared
    assert own is not None
    return own.id
