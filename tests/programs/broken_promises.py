"""A case that breaks the project's promises on purpose (a public bucket, an unencrypted queue,
an IAM policy allowing everything), so tests can show the policy pack stopping it through the
service: the service loads it with ``SERVERLESS_CASES_EXTRA_CASES=tests.programs.broken_promises``."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from components.args import CaseArgs, component_args
from components.catalog import Case

POLICIES_BROKEN = ("s3-buckets-block-public-access", "queues-and-topics-encrypted",
                   "iam-no-wildcard-action-on-wildcard-resource")


@component_args
class BrokenPromisesArgs(CaseArgs):
    pass


class BrokenPromises(pulumi.ComponentResource):
    def __init__(self, name: str, args: BrokenPromisesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("serverless-cases-tests:BrokenPromises", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.bucket = aws.s3.Bucket(f"{name}-open", opts=child)
        self.queue = aws.sqs.Queue(f"{name}-plain", sqs_managed_sse_enabled=False, opts=child)
        role = aws.iam.Role(f"{name}-role", assume_role_policy=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                    "Action": "sts:AssumeRole"}]}), opts=child)
        aws.iam.RolePolicy(f"{name}-admin", role=role.id, policy=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}), opts=child)
        self.register_outputs({})

    def outputs(self) -> dict[str, pulumi.Output[Any]]:
        return {"bucket": self.bucket.bucket}


CASE = Case("broken-promises", "Breaks the project's promises on purpose (tests only).", BrokenPromises,
            BrokenPromisesArgs, ("bucket",))
