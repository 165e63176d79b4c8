"""Table: a DynamoDB table billed on demand, encrypted, with point-in-time recovery."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from components import defaults
from components.args import check_args

TOKEN = "serverless-cases:storage:Table"


@dataclasses.dataclass(frozen=True, kw_only=True)
class TableArgs:
    hash_key: str
    range_key: str | None = None
    stream: bool = False
    """Turn on a NEW_AND_OLD_IMAGES stream (stream consumers; global tables need it)."""
    replica_regions: Sequence[str] = ()
    """Make it a global table (version 2019.11.21) replicated to these regions."""
    point_in_time_recovery: bool = True
    deletion_protection: bool = defaults.DELETION_PROTECTION
    """Refuse deletion (on by default: turn it off, update, then destroy to lose the data)."""
    kms_key_arn: str | None = None

    def problems(self) -> list[str]:
        problems = []
        if self.range_key is not None and self.range_key == self.hash_key:
            problems.append("range_key: must differ from hash_key")
        if self.replica_regions and not self.stream:
            problems.append("replica_regions: a global table needs stream=True")
        if len(set(self.replica_regions)) != len(self.replica_regions):
            problems.append("replica_regions: duplicate regions")
        return problems


class Table(pulumi.ComponentResource):
    table: aws.dynamodb.Table
    name: pulumi.Output[str]
    arn: pulumi.Output[str]
    stream_arn: pulumi.Output[str]

    def __init__(self, name: str, args: TableArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        check_args(args, component=TOKEN)
        if not args.point_in_time_recovery:
            defaults.warn_weakened(name, "point_in_time_recovery", False, True)
        if not args.deletion_protection:
            defaults.warn_weakened(name, "deletion_protection", False, True)
        attributes = [{"name": args.hash_key, "type": "S"}]
        if args.range_key:
            attributes.append({"name": args.range_key, "type": "S"})
        sse: dict[str, object] = {"enabled": True}
        if args.kms_key_arn:
            sse["kms_key_arn"] = args.kms_key_arn
        self.table = aws.dynamodb.Table(
            name,
            billing_mode=defaults.TABLE_BILLING_MODE,
            hash_key=args.hash_key,
            range_key=args.range_key,
            attributes=attributes,
            server_side_encryption=sse,
            point_in_time_recovery={"enabled": args.point_in_time_recovery},
            deletion_protection_enabled=args.deletion_protection,
            stream_enabled=args.stream or None,
            stream_view_type="NEW_AND_OLD_IMAGES" if args.stream else None,
            replicas=[{"region_name": r, "point_in_time_recovery": args.point_in_time_recovery,
                       "propagate_tags": True} for r in args.replica_regions] or None,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.name = self.table.name
        self.arn = self.table.arn
        self.stream_arn = self.table.stream_arn
        self.register_outputs({"name": self.name, "arn": self.arn})

    def statements(self, *, write: bool = False) -> pulumi.Output[list[dict]]:
        """IAM statements for reading (and writing) this table and its indexes only."""
        actions = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem"]
        if write:
            actions += ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"]
        return self.arn.apply(lambda arn: [defaults.allow(actions, [arn, f"{arn}/index/*"], sid="OwnTable")])
