"""Case blog (MyBlog.com): static site on a private bucket behind CloudFront; users in a
DynamoDB global table read through DAX; a welcome email for each new user (stream ->
Lambda -> SES); image uploads through pre-signed URLs, thumbnailed by a Lambda into a
separate bucket, optionally fanned out to SNS/SQS."""

from __future__ import annotations

import dataclasses
import re

import pulumi
import pulumi_aws as aws

from components import defaults, regions
from components.access_logs import CaseLogs
from components.args import (
    CaseArgs,
    ComponentArgsError,
    CustomDomainArgs,
    SharedHeadersArgs,
    UserPoolTierArgs,
    WafArgs,
    check_args,
    component_args,
)
from components.cdn import PrivateBucketCdn, PrivateBucketCdnArgs
from components.dax import DaxCluster, DaxClusterArgs, require_dax
from components.events import BucketEvents, BucketEventsArgs, StreamSubscription, StreamSubscriptionArgs
from components.function import Function, FunctionArgs
from components.identity import UserDirectory, UserDirectoryArgs
from components.packaging import lambda_layer
from components.rest_api import RestApi, RestApiArgs, Route
from components.storage import PrivateBucket, PrivateBucketArgs
from components.table import Table, TableArgs
from components.waf import CaseFirewalls

TOKEN = "serverless-cases:cases:Blog"
# Only members of this Cognito group (added by an administrator) may upload images.
AUTHOR_GROUP = "authors"
DESCRIPTION = (
    "MyBlog.com: static content on a private S3 bucket behind CloudFront (origin access control); users in a "
    "DynamoDB global table read through DAX; welcome email (DynamoDB stream -> Lambda -> SES); thumbnails "
    "(pre-signed upload URLs, optional transfer acceleration, S3 event -> Lambda -> thumbnail bucket, "
    "optional fan-out to SNS/SQS)."
)
PILLOW = "pillow==12.2.0"
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
_REGION = re.compile(r"[a-z]{2}(-gov)?-[a-z]+-\d")
SENDER_IDENTITIES = ("create", "existing")


@component_args
class BlogArgs(CaseArgs, UserPoolTierArgs, CustomDomainArgs, SharedHeadersArgs, WafArgs):
    sender_email: str
    """The address welcome emails come from."""
    sender_identity: str = "create"
    """``create``: the stack makes the address's SES identity (SES mails the address a link to
    verify it). ``existing``: an identity the account already has in the stack's region, the
    address's own or its domain's, made outside the stack: SES keeps one identity per address or
    domain in an account and region, so a second stack that tries to make it is refused
    (``AlreadyExistsException``)."""
    replica_regions: list[str] = dataclasses.field(default_factory=lambda: ["us-west-2"])
    """Regions the users table is replicated to (a global table); empty for a single region."""
    thumbnail_size: str = "200x200"
    upload_url_expiry_seconds: int = 300
    transfer_acceleration: bool = False
    fanout_topic: bool = False
    """Publish upload events to an SNS topic (the thumbnail function subscribes to it)."""
    fanout_queue: bool = False
    """Also deliver upload events to an SQS queue (through the topic)."""
    origin_access: str = "control"
    """How CloudFront reads the content bucket: 'control' (OAC) or 'identity' (legacy OAI)."""
    enable_dax: bool = False
    """A DAX cluster in front of the users table, for readers you add (its endpoint is the
    ``dax_endpoint`` output). Off by default: the blog's own functions do not read through it, and
    its nodes bill every hour (3 x dax.t3.small is roughly $90 a month)."""
    dax_node_type: str = defaults.DAX_NODE_TYPE
    dax_replication_factor: int = defaults.DAX_REPLICATION_FACTOR

    def problems(self) -> list[str]:
        problems = self.tag_problems()
        problems += self.domain_problems()
        problems += self.shared_headers_problems()
        problems += UserDirectoryArgs(tier=self.user_pool_tier).problems()
        if not _EMAIL.fullmatch(self.sender_email):
            problems.append(f"sender_email: {self.sender_email!r} is not an email address")
        if self.sender_identity not in SENDER_IDENTITIES:
            problems.append(f"sender_identity: {self.sender_identity!r} is not one of {', '.join(SENDER_IDENTITIES)}")
        bad = [r for r in self.replica_regions if not _REGION.fullmatch(r)]
        if bad:
            problems.append(f"replica_regions: {bad} are not AWS region names")
        if len(set(self.replica_regions)) != len(self.replica_regions):
            problems.append("replica_regions: duplicate regions")
        size = re.fullmatch(r"(\d+)x(\d+)", self.thumbnail_size)
        if not size or not all(16 <= int(v) <= 2000 for v in size.groups()):
            problems.append(f"thumbnail_size: {self.thumbnail_size!r} is not WIDTHxHEIGHT within 16..2000")
        if not 60 <= self.upload_url_expiry_seconds <= 3600:
            problems.append(f"upload_url_expiry_seconds: {self.upload_url_expiry_seconds} is outside 60..3600")
        problems += PrivateBucketCdnArgs(origin_access=self.origin_access).problems()
        problems += DaxClusterArgs(table_arns=[], node_type=self.dax_node_type,
                                   replication_factor=self.dax_replication_factor).problems()
        return problems


class Blog(pulumi.ComponentResource):
    def __init__(self, name: str, args: BlogArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        check_args(args, component=TOKEN)
        region = regions.stack_region()
        if region and region in args.replica_regions:
            raise ComponentArgsError(TOKEN, [f"replica_regions: {region} is the stack's own region"])
        regions.require_service(TOKEN, "email", "SES", "the welcome email is sent through it")
        if args.enable_dax:
            require_dax(TOKEN)
        child = pulumi.ResourceOptions(parent=self)
        firewalls = CaseFirewalls(name, enabled=args.enable_waf, parent=self)
        self.logs = CaseLogs(name, enabled=args.access_logs, parent=self, keep_data=args.deletion_protection)
        erasable = not args.deletion_protection

        # Static content.
        self.site = PrivateBucketCdn(f"{name}-site", PrivateBucketCdnArgs(
            origin_access=args.origin_access, aliases=args.domain_names, certificate_arn=args.certificate_arn,
            web_acl_arn=firewalls.for_distributions(), logs=self.logs, force_destroy=erasable,
            response_headers_policy_id=args.response_headers_policy_id), opts=child)

        # Users: a global table (optionally fronted by DAX), with a welcome email for each new user.
        self.users_table = Table(
            f"{name}-users", TableArgs(hash_key="userId", stream=True, replica_regions=args.replica_regions,
                                       deletion_protection=args.deletion_protection),
            opts=child)
        self.dax = DaxCluster(
            f"{name}-dax", DaxClusterArgs(table_arns=[self.users_table.arn], node_type=args.dax_node_type,
                                          replication_factor=args.dax_replication_factor), opts=child) \
            if args.enable_dax else None
        self.sender: aws.sesv2.EmailIdentity | None = None
        self.sender_identity: pulumi.Output[str] = pulumi.Output.from_input(args.sender_email)
        sender_arns: pulumi.Output[list[str]]
        if args.sender_identity == "create":
            self.sender = aws.sesv2.EmailIdentity(f"{name}-sender", email_identity=args.sender_email, opts=child)
            self.sender_identity = self.sender.email_identity
            sender_arns = self.sender.arn.apply(lambda arn: [arn])
        else:  # SES authorises a send against the address's identity, or its domain's
            sender_arns = pulumi.Output.all(aws.get_partition_output().partition, aws.get_region_output().region,
                                            aws.get_caller_identity_output().account_id).apply(
                lambda p: [f"arn:{p[0]}:ses:{p[1]}:{p[2]}:identity/{identity}"
                           for identity in (args.sender_email, args.sender_email.rsplit("@", 1)[1])])
        self.welcome = Function(
            f"{name}-welcome",
            FunctionArgs(
                handler_module="welcome_email",
                environment={"SENDER": args.sender_email},
                statements=sender_arns.apply(lambda arns: [defaults.allow(
                    ["ses:SendEmail"], arns, sid="SendFromSenderOnly",
                    condition={"StringEquals": {"ses:FromAddress": args.sender_email}})]),
            ),
            opts=child)
        self.welcome_stream = StreamSubscription(
            f"{name}-new-users",
            StreamSubscriptionArgs(function=self.welcome, stream_arn=self.users_table.stream_arn,
                                   event_names=["INSERT"]),
            opts=child)

        # Thumbnails: pre-signed uploads -> S3 event -> thumbnail function -> separate bucket.
        self.users = UserDirectory(
            f"{name}-authors", UserDirectoryArgs(tier=args.user_pool_tier, groups=(AUTHOR_GROUP,),
                                                 deletion_protection=args.deletion_protection), opts=child)
        self.uploads = PrivateBucket(
            f"{name}-uploads", PrivateBucketArgs(transfer_acceleration=args.transfer_acceleration,
                                                  access_logs=self.logs.sink(), force_destroy=erasable), opts=child)
        self.thumbnails = PrivateBucket(f"{name}-thumbnails", PrivateBucketArgs(
            access_logs=self.logs.sink(), force_destroy=erasable), opts=child)
        self.presign = Function(
            f"{name}-presign",
            FunctionArgs(
                handler_module="presign_upload",
                environment={"UPLOAD_BUCKET": self.uploads.name,
                             "URL_EXPIRY_SECONDS": str(args.upload_url_expiry_seconds),
                             "USE_ACCELERATE": "true" if args.transfer_acceleration else "false",
                             "AUTHOR_GROUP": AUTHOR_GROUP},
                statements=self.uploads.arn.apply(lambda arn: [
                    defaults.allow(["s3:PutObject"], [f"{arn}/uploads/*"], sid="PutUploadsOnly")]),
            ),
            opts=child)
        self.upload_api = RestApi(
            f"{name}-upload-api",
            RestApiArgs(routes=[Route("POST", "/uploads", self.presign)], user_pool_arns=[self.users.user_pool.arn],
                        firewall=firewalls.for_api_stages()),
            opts=child)
        self.pillow = lambda_layer(f"{name}-pillow", [PILLOW], parent=self)
        self.thumbnailer = Function(
            f"{name}-thumbnailer",
            FunctionArgs(
                handler_module="thumbnail",
                asynchronous=True,
                memory_mb=1024,
                timeout_seconds=60,
                layers=[self.pillow.arn],
                environment={"THUMBNAIL_BUCKET": self.thumbnails.name, "THUMBNAIL_SIZE": args.thumbnail_size},
                statements=pulumi.Output.all(self.uploads.arn, self.thumbnails.arn).apply(lambda arns: [
                    defaults.allow(["s3:GetObject"], [f"{arns[0]}/uploads/*"], sid="ReadUploads"),
                    defaults.allow(["s3:PutObject"], [f"{arns[1]}/thumbnails/*"], sid="WriteThumbnails"),
                ]),
            ),
            opts=child)
        self.upload_events = BucketEvents(
            f"{name}-upload-events",
            BucketEventsArgs(bucket=self.uploads, function=self.thumbnailer, prefix="uploads/",
                             topic=args.fanout_topic, queue=args.fanout_queue),
            opts=child)
        self.register_outputs(self.outputs())

    def outputs(self) -> dict[str, pulumi.Output]:
        out = {
            "site_url": self.site.url,
            "content_bucket": self.site.bucket.name,
            "upload_api_url": self.upload_api.url,
            "upload_bucket": self.uploads.name,
            "thumbnails_bucket": self.thumbnails.name,
            "table_name": self.users_table.name,
            "table_stream_arn": self.users_table.stream_arn,
            "user_pool_id": self.users.user_pool.id,
            "sender_identity": self.sender_identity,
        }
        out.update(self.logs.outputs())
        if self.dax is not None:
            out["dax_endpoint"] = self.dax.endpoint
        if self.upload_events.topic is not None:
            out["topic_arn"] = self.upload_events.topic.arn
        if self.upload_events.queue is not None:
            out["queue_arn"] = self.upload_events.queue.arn
        return out
