"""The AWS rules the sandbox enforces, in one catalogue.

Each rule is a small function registered for one resource type. Its docstring states the
AWS behaviour it models; it returns the error AWS would answer with (AWS's own error code
and message) or ``None``. The provider runs them when the engine checks a resource's inputs,
so a stack that breaks a rule fails in ``preview`` and ``up`` before anything is created,
as it would fail on AWS when the API call is made. After moto's habit: model what AWS
returns, not what is convenient.

What the sandbox does *not* model is listed in the README (Sandbox: what it models).
"""

from __future__ import annotations

import fnmatch
import functools
import importlib.util
import ipaddress
import json
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's marker for a value not known yet
API_GATEWAY_SETTINGS = "aws:apigateway/account:Account"
"""API Gateway's settings of an account and region (one per region: a create overwrites them)."""
OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
"""An object in a bucket, as users and AWS services write them (never a stack's resource here)."""
ACCOUNT_ID = "123456789012"
CALLER_ARN = f"arn:aws:iam::{ACCOUNT_ID}:user/sandbox"
"""Who deploys in the sandbox when the provider assumes no role (``sts:GetCallerIdentity``)."""
_ROLE_ARN = re.compile(r"arn:(aws[\w-]*):iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]+)")


@dataclass(frozen=True)
class Identity:
    """Who makes the calls, in which account: the sandbox's own user, or the role the provider
    assumes (its ``assumeRoles`` setting), whose account is then the one resources are made in."""

    account: str = ACCOUNT_ID
    caller_arn: str = CALLER_ARN
    """What ``sts:GetCallerIdentity`` answers (an assumed role's session ARN)."""
    principal_arn: str = CALLER_ARN
    """What policies see as ``aws:PrincipalArn`` (for an assumed role, the role's ARN)."""

    @classmethod
    def assuming(cls, role_arn: str, session_name: str = "sandbox") -> Identity:
        matched = _ROLE_ARN.fullmatch(role_arn)
        if matched is None:
            raise ValueError(f"{role_arn!r} is not an IAM role ARN")
        partition, account, role = matched.groups()
        return cls(account, f"arn:{partition}:sts::{account}:assumed-role/{role}/{session_name}", role_arn)


DEFAULT_IDENTITY = Identity()


@dataclass(frozen=True)
class AwsError:
    """What AWS answers when it refuses a request."""

    code: str
    message: str
    property: str = ""

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


Inputs = Mapping[str, Any]
Rule = Callable[[Inputs], AwsError | None]

Effect = Callable[[dict[str, Any]], dict[str, Any]]


class Cloud(Protocol):
    """What exists already, as a rule checked at the API call sees it, and who is calling."""

    identity: Identity

    def find(self, type_token: str, **outputs: Any) -> list[dict[str, Any]]:
        """The outputs of this account's live resources of a type whose outputs have these values."""
        ...

    def other_accounts_holding(self, type_token: str, **outputs: Any) -> list[str]:
        """The other accounts that have such a resource (which this account cannot see)."""
        ...

    def count_in_account(self, type_token: str) -> int:
        """How many live resources of the type this account holds, in every region."""
        ...

    def find_in_account(self, type_token: str, **outputs: Any) -> list[dict[str, Any]]:
        """Like ``find``, in every region of the account (for CloudFront's global resources)."""
        ...


CallRule = Callable[[Inputs, Cloud], AwsError | None]

RULES: dict[str, list[Rule]] = {}
"""Checked on a resource's inputs alone, when the engine checks them (preview and up)."""
CALL_RULES: dict[str, list[CallRule]] = {}
"""Checked when the create or update call is made, against the resources that exist then (so
the order of creation matters, as on AWS)."""
READ_RULES: dict[str, list[CallRule]] = {}
"""Checked when the provider reads the resource (``pulumi refresh``, and the read the provider
makes after each create and update), given what exists then."""
DELETE_RULES: dict[str, list[CallRule]] = {}
"""Checked when the delete call is made, on the resource as AWS keeps it."""
EFFECTS: dict[str, list[Effect]] = {}
"""What AWS makes of an accepted request: the values it really keeps, which a later read returns."""

F = TypeVar("F", bound=Callable[..., Any])


def _registrar(registry: dict[str, list[Any]]) -> Callable[[str], Callable[[F], F]]:
    def for_type(type_token: str) -> Callable[[F], F]:
        """Register the decorated function for a resource type (its Pulumi type token)."""

        def register(function: F) -> F:
            registry.setdefault(type_token, []).append(function)
            return function

        return register

    return for_type


rule = _registrar(RULES)
rule_at_call = _registrar(CALL_RULES)
rule_at_read = _registrar(READ_RULES)
rule_at_delete = _registrar(DELETE_RULES)
effect = _registrar(EFFECTS)


def read_violations(type_token: str, state: Inputs, cloud: Cloud) -> list[AwsError]:
    return [error for check in READ_RULES.get(type_token, []) if (error := check(state, cloud)) is not None]


def delete_violations(type_token: str, state: Inputs, cloud: Cloud) -> list[AwsError]:
    return [error for check in DELETE_RULES.get(type_token, []) if (error := check(state, cloud)) is not None]


def call_violations(type_token: str, inputs: Inputs, cloud: Cloud) -> list[AwsError]:
    """Every rule checked at the call that the inputs break, given what exists."""
    return [error for check in CALL_RULES.get(type_token, []) if (error := check(inputs, cloud)) is not None]


def effective(type_token: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    """The properties as AWS keeps them, after every effect of this type."""
    result = dict(properties)
    for change in EFFECTS.get(type_token, []):
        result = change(result)
    return result


def violations(type_token: str, inputs: Inputs) -> list[AwsError]:
    """Every rule of this type that the inputs break."""
    return [error for check in RULES.get(type_token, []) if (error := check(inputs)) is not None]


def _known(value: Any) -> bool:
    return value is not None and value != UNKNOWN


def _misnamed(inputs: Inputs, prop: str, pattern: str) -> str | None:
    """The value of ``prop`` when it is known and does not match ``pattern`` (else None)."""
    name = inputs.get(prop)
    return name if isinstance(name, str) and _known(name) and not re.fullmatch(pattern, name) else None


# -- S3 --------------------------------------------------------------------------------------------
@rule("aws:s3/bucket:Bucket")
def bucket_names_follow_the_naming_rules(inputs: Inputs) -> AwsError | None:
    """CreateBucket: a bucket name is 3-63 characters of lowercase letters, digits, '.' and '-',
    beginning and ending with a letter or digit; otherwise ``InvalidBucketName``."""
    if _misnamed(inputs, "bucket", r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"):
        return AwsError("InvalidBucketName", "The specified bucket is not valid.", "bucket")
    return None


@rule("aws:s3/bucketAccelerateConfiguration:BucketAccelerateConfiguration")
def transfer_acceleration_needs_a_bucket_name_without_dots(inputs: Inputs) -> AwsError | None:
    """PutBucketAccelerateConfiguration: Transfer Acceleration is not supported for a bucket whose
    name has a period; enabling it fails with ``InvalidRequest: S3 Transfer Acceleration is not
    supported for buckets with periods (.) in their names``."""
    bucket = inputs.get("bucket")
    if _known(bucket) and isinstance(bucket, str) and "." in bucket and inputs.get("status") == "Enabled":
        return AwsError("InvalidRequest", "S3 Transfer Acceleration is not supported for buckets with periods (.) "
                        "in their names", "bucket")
    return None


def _events_overlap(first: Sequence[Any], second: Sequence[Any]) -> bool:
    """Whether two lists of S3 event types share one (``s3:ObjectCreated:*`` covers ``s3:ObjectCreated:Put``)."""
    def covers(a: str, b: str) -> bool:
        return a == b or (a.endswith(":*") and b.startswith(a[:-1])) or (b.endswith(":*") and a.startswith(b[:-1]))

    return any(covers(str(a), str(b)) for a in first for b in second)


@rule_at_call("aws:s3/bucketNotification:BucketNotification")
def s3_notification_targets_do_not_overlap(inputs: Inputs, cloud: Cloud) -> AwsError | None:
    """PutBucketNotificationConfiguration: two destinations (functions, queues, topics) of one bucket
    may not take a common event type for overlapping key filters (a prefix of the other's prefix and a
    suffix of the other's suffix, an empty filter overlapping every one): AWS refuses the configuration
    with ``InvalidArgument`` rather than choose. Fan out through one topic instead."""
    targets = [t for kind in ("lambdaFunctions", "queues", "topics") for t in _as_list(inputs.get(kind) or [])
               if isinstance(t, Mapping)]
    for i, first in enumerate(targets):
        for second in targets[i + 1:]:
            prefixes = [str(t.get("filterPrefix") or "") for t in (first, second)]
            suffixes = [str(t.get("filterSuffix") or "") for t in (first, second)]
            if _events_overlap(_as_list(first.get("events") or []), _as_list(second.get("events") or [])) \
                    and (prefixes[0].startswith(prefixes[1]) or prefixes[1].startswith(prefixes[0])) \
                    and (suffixes[0].endswith(suffixes[1]) or suffixes[1].endswith(suffixes[0])):
                return AwsError("InvalidArgument", "Configuration is ambiguously defined. Cannot have overlapping "
                                "suffixes in two rules if the prefixes are overlapping for the same event type.",
                                "lambdaFunctions")
    return None


AWS_MANAGED_KEYS = frozenset({"alias/aws/sns", "alias/aws/sqs"})


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements(policy: Any) -> list[Mapping[str, Any]]:
    document = json.loads(policy) if isinstance(policy, str) else policy or {}
    return [s for s in _as_list(document.get("Statement", [])) if isinstance(s, Mapping)]


def _admits_service(policy: Any, service: str, actions: Sequence[str], source_arn: str | None) -> bool:
    """Whether a resource or key policy allows ``service`` one of ``actions`` for ``source_arn``
    (a statement without a source condition admits every source)."""
    for statement in _statements(policy):
        principal = statement.get("Principal")
        services = _as_list(principal.get("Service", [])) if isinstance(principal, Mapping) else []
        allowed = _as_list(statement.get("Action", []))
        if statement.get("Effect") != "Allow" or service not in services:
            continue
        if not any(fnmatch.fnmatchcase(wanted, granted) for wanted in actions for granted in allowed):
            continue
        sources = [v for test, values in (statement.get("Condition") or {}).items()
                   if test in ("ArnEquals", "ArnLike", "StringEquals", "StringLike")
                   for key, v in values.items() if key.lower() == "aws:sourcearn"]
        if source_arn is None or not sources or any(fnmatch.fnmatchcase(source_arn, pattern)
                                                     for value in sources for pattern in _as_list(value)):
            return True
    return False


def _destination_accepts(cloud: Cloud, kind: str, arn: str, bucket_arn: str) -> bool:
    """An SNS topic or SQS queue S3 may deliver this bucket's events to: its policy admits S3 for
    this bucket, and its key (if any) is one whose key policy S3 can use."""
    topic = kind == "topic"
    found = cloud.find("aws:sns/topic:Topic" if topic else "aws:sqs/queue:Queue", arn=arn)
    if not found:
        return False
    key = found[0].get("kmsMasterKeyId")
    if key in AWS_MANAGED_KEYS:
        return False  # an AWS managed key's policy cannot admit s3.amazonaws.com
    if key:
        keys = cloud.find("aws:kms/key:Key", arn=key) or cloud.find("aws:kms/key:Key", keyId=key)
        if keys and not _admits_service(keys[0].get("policy"), "s3.amazonaws.com", ["kms:GenerateDataKey"],
                                        bucket_arn):
            return False
    policies = cloud.find("aws:sns/topicPolicy:TopicPolicy", arn=arn) if topic else \
        cloud.find("aws:sqs/queuePolicy:QueuePolicy", queueUrl=found[0].get("url"))
    action = "sns:Publish" if topic else "sqs:SendMessage"
    return any(_admits_service(p.get("policy"), "s3.amazonaws.com", [action], bucket_arn) for p in policies)


def _lambda_function(cloud: Cloud, reference: str) -> tuple[dict[str, Any] | None, str | None]:
    """The function a name or an ARN (qualified or not) names, and the qualifier (None if none)."""
    parts = reference.split(":")
    if not reference.startswith("arn:"):
        found = cloud.find("aws:lambda/function:Function", name=reference)
        return (found[0] if found else None), None
    found = cloud.find("aws:lambda/function:Function", arn=":".join(parts[:7]))
    return (found[0] if found else None), (parts[7] if len(parts) > 7 else None)


def _function_invocable(cloud: Cloud, arn: str, bucket_arn: str) -> bool:
    """A Lambda function S3 may invoke for this bucket: it exists, and a permission of its (by
    name or ARN, the same qualifier) lets ``s3.amazonaws.com`` invoke it from this bucket (a
    ``sourceArn`` pattern that matches it, or none) of this account (a ``sourceAccount`` that is
    this account's, or none)."""
    function, qualifier = _lambda_function(cloud, arn)
    if function is None:
        return False
    names = {function.get("name"), function.get("arn")}
    for permission in cloud.find("aws:lambda/permission:Permission"):
        source_arn, source_account = permission.get("sourceArn"), permission.get("sourceAccount")
        if (permission.get("function") in names and permission.get("qualifier") == qualifier
                and permission.get("principal") == "s3.amazonaws.com"
                and permission.get("action") in ("lambda:InvokeFunction", "lambda:*")
                and (not source_arn or fnmatch.fnmatchcase(bucket_arn, str(source_arn)))
                and (not source_account or source_account == cloud.identity.account)):
            return True
    return False


@rule_at_call("aws:s3/bucketNotification:BucketNotification")
def s3_validates_notification_destinations(inputs: Inputs, cloud: Cloud) -> AwsError | None:
    """PutBucketNotificationConfiguration: S3 checks every destination it is given. It sends a
    test message to each SNS topic and SQS queue: a destination whose policy does not let
    ``s3.amazonaws.com`` publish (or send) for this bucket, or that is encrypted with an AWS
    managed key (``alias/aws/sns``, ``alias/aws/sqs``: their key policies cannot admit S3) or a
    key whose policy does not admit S3, is refused; and a Lambda function is refused unless a
    permission of the function lets ``s3.amazonaws.com`` invoke it for this bucket. One refused
    destination fails the whole call with ``InvalidArgument: Unable to validate the following
    destination configurations``. The policies and permissions must therefore exist before the
    notification is put."""
    bucket_arn = f"arn:aws:s3:::{inputs.get('bucket')}"
    failed = [(target.get("topicArn"), "topics") for target in inputs.get("topics") or []
              if not _destination_accepts(cloud, "topic", str(target.get("topicArn")), bucket_arn)]
    failed += [(target.get("queueArn"), "queues") for target in inputs.get("queues") or []
               if not _destination_accepts(cloud, "queue", str(target.get("queueArn")), bucket_arn)]
    failed += [(target.get("lambdaFunctionArn"), "lambdaFunctions") for target in inputs.get("lambdaFunctions") or []
               if not _function_invocable(cloud, str(target.get("lambdaFunctionArn")), bucket_arn)]
    if failed:
        return AwsError("InvalidArgument", "Unable to validate the following destination configurations: "
                        + ", ".join(str(arn) for arn, _ in failed), failed[0][1])
    return None


# -- roles given to a service -------------------------------------------------------------------
def _action_matches(granted: Any, action: str) -> bool:
    return any(fnmatch.fnmatchcase(action.lower(), str(pattern).lower()) for pattern in _as_list(granted))


def _untrusting_roles(cloud: Cloud, role_arns: Sequence[Any], service: str) -> list[str]:
    """The roles of this account among ``role_arns`` whose trust policy does not let ``service``
    call ``sts:AssumeRole`` (a role the sandbox does not hold is not judged). The AWS provider
    retries these refusals while IAM propagates a new role, so only a role that never admits the
    service fails on AWS; the sandbox, whose roles are there at once, refuses it at the call."""
    refused = []
    for arn in (str(a) for a in role_arns if a):
        for role in cloud.find("aws:iam/role:Role", arn=arn):
            if not any(statement.get("Effect") == "Allow" and _action_matches(statement.get("Action"), "sts:AssumeRole")
                       and isinstance(statement.get("Principal"), Mapping)
                       and service in _as_list(statement["Principal"].get("Service", []))
                       for statement in _statements(role.get("assumeRolePolicy"))):
                refused.append(arn)
    return refused


@rule_at_call("aws:lambda/function:Function")
def lambda_can_assume_the_functions_role(inputs: Inputs, cloud: Cloud) -> AwsError | None:
    """CreateFunction: Lambda assumes the execution role as the function is made; a role whose
    trust policy does not admit ``lambda.amazonaws.com`` fails it with
    ``InvalidParameterValueException: The role defined for the function cannot be assumed by Lambda.``"""
    if _untrusting_roles(cloud, [inputs.get("role")], "lambda.amazonaws.com"):
        return AwsError("InvalidParameterValueException", "The role defined for the function cannot be assumed by "
                        "Lambda.", "role")
    return None


@rule_at_call("aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream")
def firehose_can_assume_its_roles(inputs: Inputs, cloud: Cloud) -> AwsError | None:
    """CreateDeliveryStream: Firehose assumes the roles of its source and destination as the
    stream is made; one whose trust policy does not admit ``firehose.amazonaws.com`` fails it with
    ``InvalidArgumentException: Firehose is unable to assume role``."""
    roles = [(inputs.get(key) or {}).get("roleArn") for key in
             ("kinesisSourceConfiguration", "extendedS3Configuration", "s3Configuration")]
    refused = _untrusting_roles(cloud, roles, "firehose.amazonaws.com")
    if refused:
        return AwsError("InvalidArgumentException", f"Firehose is unable to assume role {refused[0]}. Please check "
                        "the role provided.", "kinesisSourceConfiguration")
    return None


@rule_at_call("aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream")
def firehose_needs_a_role_that_can_describe_its_kinesis_source(inputs: Inputs, cloud: Cloud) -> AwsError | None:
    """CreateDeliveryStream from a Kinesis data stream: Firehose describes the stream with the source's
    role as the delivery stream is made; a role that may not ``kinesis:DescribeStream`` it is refused
    with ``InvalidArgumentException`` (the AWS provider retries that while IAM propagates, so a policy
    that comes only after the delivery stream fails it; the sandbox checks at the call)."""
    source = inputs.get("kinesisSourceConfiguration")
    role = source.get("roleArn") if isinstance(source, Mapping) else None
    stream = source.get("kinesisStreamArn") if isinstance(source, Mapping) else None
    if not (isinstance(role, str) and isinstance(stream, str) and _known(role) and _known(stream)):
        return None
    if _role_may(cloud, role, "kinesis:DescribeStream", stream) is False:
        return AwsError("InvalidArgumentException", f"Role {role} is not authorized to perform: kinesis:DescribeStream "
                        f"on resource {stream}.", "kinesisSourceConfiguration")
    return None


@rule_at_call("aws:iot/topicRule:TopicRule")
def iot_can_assume_the_rule_actions_roles(inputs: Inputs, cloud: Cloud) -> AwsError | None:
    """CreateTopicRule: IoT checks that it can assume the role of each action (Kinesis, Firehose,
    SQS...) and of the error action; one whose trust policy does not admit ``iot.amazonaws.com``
    fails the call with ``InvalidRequestException: iot.amazonaws.com is unable to perform:
    sts:AssumeRole``."""
    actions = [a for value in inputs.values() if isinstance(value, list) for a in value if isinstance(a, Mapping)]
    actions += [a for a in (inputs.get("errorAction") or {}).values() if isinstance(a, Mapping)]
    roles = [action.get("roleArn") for action in actions]
    refused = _untrusting_roles(cloud, roles, "iot.amazonaws.com")
    if refused:
        return AwsError("InvalidRequestException", "iot.amazonaws.com is unable to perform: sts:AssumeRole on "
                        f"resource: {refused[0]}", "sql")
    return None


@rule_at_call("aws:dax/cluster:Cluster")
def dax_can_assume_the_clusters_role(inputs: Inputs, cloud: Cloud) -> AwsError | None:
    """CreateCluster: DAX assumes the cluster's role to reach DynamoDB; one whose trust policy
    does not admit ``dax.amazonaws.com`` fails the call with ``InvalidParameterValueException``."""
    refused = _untrusting_roles(cloud, [inputs.get("iamRoleArn")], "dax.amazonaws.com")
    if refused:
        return AwsError("InvalidParameterValueException", f"No permission to assume role: {refused[0]}",
                        "iamRoleArn")
    return None


@rule_at_call(API_GATEWAY_SETTINGS)
def api_gateway_can_assume_the_accounts_cloudwatch_role(inputs: Inputs, cloud: Cloud) -> AwsError | None:
    """UpdateAccount: API Gateway assumes the CloudWatch role it is given for the account's logs; a
    role whose trust policy does not admit ``apigateway.amazonaws.com`` is refused with
    ``BadRequestException``."""
    refused = _untrusting_roles(cloud, [inputs.get("cloudwatchRoleArn")], "apigateway.amazonaws.com")
    if refused:
        return AwsError("BadRequestException", "The role ARN does not have required permissions set to API Gateway: "
                        f"{refused[0]}", "cloudwatchRoleArn")
    return None


# -- API Gateway's account settings ---------------------------------------------------------------
@rule_at_call("aws:apigateway/deployment:Deployment")
def a_deployment_needs_methods_with_integrations(inputs: Inputs, cloud: Cloud) -> AwsError | None:
    """CreateDeployment freezes the API as it is: an API with no method yet is refused (``The REST
    API doesn't contain any methods``), and so is one with a method whose integration is not made
    yet (``No integration defined for method``), both ``BadRequestException``. A deployment must
    come after every method and integration it serves."""
    api = inputs.get("restApi")
    if not isinstance(api, str) or not _known(api):
        return None
    methods = cloud.find("aws:apigateway/method:Method", restApi=api)
    if not methods:
        return AwsError("BadRequestException", "The REST API doesn't contain any methods", "restApi")
    for method in methods:
        if not cloud.find("aws:apigateway/integration:Integration", restApi=api, resourceId=method.get("resourceId"),
                          httpMethod=method.get("httpMethod")):
            return AwsError("BadRequestException", "No integration defined for method", "restApi")
    return None


_LOGGING_LEVELS = ("INFO", "ERROR")


@rule_at_call("aws:apigateway/stage:Stage")
@rule_at_call("aws:apigateway/methodSettings:MethodSettings")
def api_logging_needs_the_accounts_cloudwatch_role(inputs: Inputs, cloud: Cloud) -> AwsError | None:
    """CreateStage/UpdateStage with access logs, and method settings with execution logs (level
    ``INFO`` or ``ERROR``), need the CloudWatch role of the account's API Gateway settings in that
    region (UpdateAccount, once per account and region: the `account-baseline` case); until it is
    set they are refused with ``BadRequestException``. A new account has none."""
    settings = inputs.get("settings")
    level = settings.get("loggingLevel") if isinstance(settings, Mapping) else None
    prop = "accessLogSettings" if inputs.get("accessLogSettings") else "settings" if level in _LOGGING_LEVELS else ""
    if not prop or any(account.get("cloudwatchRoleArn") for account in cloud.find(API_GATEWAY_SETTINGS)):
        return None
    return AwsError("BadRequestException", "CloudWatch Logs role ARN must be set in account settings to enable "
                    "logging", prop)


# -- Lambda --------------------------------------------------------------------------------------
def _role_may(cloud: Cloud, role_arn: str, action: str, resource: str | None) -> bool | None:
    """Whether the role's policies (inline, and customer managed ones attached to it) allow
    ``action`` on ``resource`` (None: on some resource) with no explicit Deny; None for a role the
    sandbox does not hold or one with an AWS managed policy attached (the sandbox does not know
    their statements, so it does not refuse)."""
    roles = cloud.find("aws:iam/role:Role", arn=role_arn)
    if not roles:
        return None
    name = roles[0].get("name")
    documents = [p.get("policy") for p in cloud.find("aws:iam/rolePolicy:RolePolicy", role=name)]
    for attached in cloud.find("aws:iam/rolePolicyAttachment:RolePolicyAttachment", role=name):
        policy_arn = str(attached.get("policyArn"))
        if ":iam::aws:policy/" in policy_arn:
            return None
        documents += [p.get("policy") for p in cloud.find("aws:iam/policy:Policy", arn=policy_arn)]
    allowed = False
    for statement in (s for document in documents for s in _statements(document)):
        if "Action" not in statement or "Resource" not in statement:
            continue  # NotAction / NotResource: not modelled, grants nothing here
        if _action_matches(statement["Action"], action) and (resource is None or any(
                fnmatch.fnmatchcase(resource, str(pattern)) for pattern in _as_list(statement["Resource"]))):
            if statement.get("Effect") == "Deny":
                return False
            allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


_NETWORK_INTERFACES = ("CreateNetworkInterface", "DescribeNetworkInterfaces", "DeleteNetworkInterface")


def _denied_to_the_role(cloud: Cloud, role: str, target: str) -> str | None:
    """The action Lambda cannot call with the role to send to ``target`` (an SQS queue or SNS
    topic ARN), as AWS names it in its refusal; None when it can."""
    kind = target.split(":")[2] if target.count(":") >= 5 else ""
    action = {"sqs": "SendMessage", "sns": "Publish"}.get(kind)
    if action and _role_may(cloud, role, f"{kind}:{action}", target) is False:
        return f"The provided execution role does not have permissions to call {action} on {kind.upper()}"
    return None


@rule_at_call("aws:lambda/function:Function")
def a_function_needs_a_role_that_can_reach_its_network_and_dead_letters(inputs: Inputs,
                                                                         cloud: Cloud) -> AwsError | None:
    """CreateFunction/UpdateFunctionConfiguration: a function in a VPC is refused unless its
    execution role may ``ec2:CreateNetworkInterface``, ``ec2:DescribeNetworkInterfaces`` and
    ``ec2:DeleteNetworkInterface`` (Lambda makes the function's network interfaces with the role,
    before any code runs), and one with a dead-letter target unless the role may send to it (SQS
    ``SendMessage``, SNS ``Publish``): ``InvalidParameterValueException: The provided execution
    role does not have permissions to call CreateNetworkInterface on EC2``. The role's policy must
    therefore exist before the function (the AWS provider retries while IAM propagates; the
    sandbox checks at the call)."""
    role = str(inputs.get("role"))
    if ((inputs.get("vpcConfig") or {}).get("subnetIds")):
        for action in _NETWORK_INTERFACES:
            if _role_may(cloud, role, f"ec2:{action}", None) is False:
                return AwsError("InvalidParameterValueException", "The provided execution role does not have "
                                f"permissions to call {action} on EC2", "vpcConfig")
    denied = _denied_to_the_role(cloud, role, str((inputs.get("deadLetterConfig") or {}).get("targetArn") or ""))
    return AwsError("InvalidParameterValueException", denied, "deadLetterConfig") if denied else None


_POLLED = {"sqs": ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes"),
           "dynamodb": ("GetRecords", "GetShardIterator", "DescribeStream", "ListStreams"),
           "kinesis": ("GetRecords", "GetShardIterator", "DescribeStream", "ListStreams")}


@rule_at_call("aws:lambda/eventSourceMapping:EventSourceMapping")
def a_mapping_needs_a_role_that_can_read_its_source(inputs: Inputs, cloud: Cloud) -> AwsError | None:
    """CreateEventSourceMapping: Lambda checks that the function's execution role can read the
    source (SQS: ``ReceiveMessage``, ``DeleteMessage``, ``GetQueueAttributes``; a DynamoDB or
    Kinesis stream: ``GetRecords``, ``GetShardIterator``, ``DescribeStream``, ``ListStreams``) and
    send to its on-failure destination (SQS ``SendMessage``, SNS ``Publish``); otherwise
    ``InvalidParameterValueException`` (``The provided execution role does not have permissions to
    call ReceiveMessage on SQS``, ``Cannot access stream ... Please ensure the role can perform the
    GetRecords, GetShardIterator, DescribeStream, and ListStreams Actions on your stream in IAM``).
    The AWS provider retries that refusal for five minutes while IAM propagates, so the role's
    policy must exist by then; the sandbox, which does not wait, checks at the call: the policy
    comes first (the mapping depends on it)."""
    function, _ = _lambda_function(cloud, str(inputs.get("functionName")))
    if function is None:
        return None  # no such function: not this rule's refusal
    role = str(function.get("role"))
    source = str(inputs.get("eventSourceArn") or "")
    service = source.split(":")[2] if source.count(":") >= 5 else ""
    for action in _POLLED.get(service, ()):
        if _role_may(cloud, role, f"{service}:{action}", source) is False:
            message = (f"The provided execution role does not have permissions to call {action} on SQS"
                       if service == "sqs" else
                       f"Cannot access stream {source}. Please ensure the role can perform the GetRecords, "
                       "GetShardIterator, DescribeStream, and ListStreams Actions on your stream in IAM.")
            return AwsError("InvalidParameterValueException", message, "eventSourceArn")
    destination = ((inputs.get("destinationConfig") or {}).get("onFailure") or {}).get("destinationArn")
    denied = _denied_to_the_role(cloud, role, str(destination or ""))
    return AwsError("InvalidParameterValueException", denied, "destinationConfig") if denied else None


SQS_DEFAULT_VISIBILITY_SECONDS = 30
LAMBDA_DEFAULT_TIMEOUT_SECONDS = 3


@rule_at_call("aws:lambda/eventSourceMapping:EventSourceMapping")
def a_queues_visibility_timeout_covers_the_function_timeout(inputs: Inputs, cloud: Cloud) -> AwsError | None:
    """CreateEventSourceMapping from an SQS queue: the queue's visibility timeout (30 s unless set)
    must be at least the function's timeout (3 s unless set), or a message would show again while
    a function still works on it: ``InvalidParameterValueException: Queue visibility timeout: 30
    seconds is less than Function timeout: 60 seconds``."""
    queues = cloud.find("aws:sqs/queue:Queue", arn=inputs.get("eventSourceArn"))
    function, _ = _lambda_function(cloud, str(inputs.get("functionName")))
    if not queues or function is None:
        return None
    visibility = int(queues[0].get("visibilityTimeoutSeconds") or SQS_DEFAULT_VISIBILITY_SECONDS)
    timeout = int(function.get("timeout") or LAMBDA_DEFAULT_TIMEOUT_SECONDS)
    if visibility < timeout:
        return AwsError("InvalidParameterValueException", f"Queue visibility timeout: {visibility} seconds is less "
                        f"than Function timeout: {timeout} seconds", "eventSourceArn")
    return None


@rule("aws:lambda/eventSourceMapping:EventSourceMapping")
def a_queue_mapping_batches_more_than_ten_only_with_a_window(inputs: Inputs) -> AwsError | None:
    """CreateEventSourceMapping/UpdateEventSourceMapping from an SQS queue: a batch size above 10
    needs a batching window (``MaximumBatchingWindowInSeconds`` above 0), or the request is refused
    with ``InvalidParameterValueException``."""
    source = inputs.get("eventSourceArn")
    size, window = inputs.get("batchSize"), inputs.get("maximumBatchingWindowInSeconds") or 0
    if isinstance(source, str) and source.startswith("arn:aws:sqs:") and isinstance(size, int | float) \
            and size > 10 and isinstance(window, int | float) and window <= 0:
        return AwsError("InvalidParameterValueException", "Maximum batch window in seconds must be greater than 0 if "
                        "maximum batch size is greater than 10", "batchSize")
    return None


# -- ACM and Route 53 --------------------------------------------------------------------------
DELEGATED_TAG = "serverless-cases:delegated"
"""A zone tagged so is one its owner has delegated; the sandbox cannot see the parent zone."""


@rule_at_call("aws:acm/certificateValidation:CertificateValidation")
def dns_validation_needs_a_delegated_zone(inputs: Inputs, cloud: Cloud) -> AwsError | None:
    """ACM validates a certificate by resolving its CNAME records through public DNS. Records put
    in a hosted zone that the domain is not delegated to (one just created by the same stack) are
    never seen: the provider waits 75 minutes and fails with a timeout in ``PENDING_VALIDATION``.
    The sandbox fails at once with that error unless the zone is marked delegated."""
    for fqdn in inputs.get("validationRecordFqdns") or []:
        for record in cloud.find("aws:route53/record:Record", fqdn=str(fqdn).rstrip(".")):
            for zone in cloud.find("aws:route53/zone:Zone", zoneId=record.get("zoneId")):
                if (zone.get("tags") or {}).get(DELEGATED_TAG) != "true":
                    return AwsError(
                        "PENDING_VALIDATION",
                        f"waiting for ACM Certificate ({inputs.get('certificateArn')}) to be issued: timeout while "
                        "waiting for state to become 'ISSUED' (last state: 'PENDING_VALIDATION', timeout: 1h15m0s): "
                        f"its validation record is in hosted zone {zone.get('zoneId')}, which {zone.get('name')} is "
                        "not delegated to", "validationRecordFqdns")
    return None


def _not_yet_issued(cloud: Cloud, arn: Any) -> bool:
    """A DNS-validated certificate of this account and region that no validation of has completed
    (one the sandbox does not hold, imported or made outside its stacks, is not judged)."""
    if not isinstance(arn, str) or not _known(arn):
        return False
    held = cloud.find("aws:acm/certificate:Certificate", arn=arn)
    return bool(held) and held[0].get("validationMethod", "DNS") == "DNS" and \
        not cloud.find("aws:acm/certificateValidation:CertificateValidation", certificateArn=arn)


@rule_at_call("aws:cloudfront/distribution:Distribution")
@rule_at_call("aws:apigateway/domainName:DomainName")
def a_certificate_serves_only_once_issued(inputs: Inputs, cloud: Cloud) -> AwsError | None:
    """ACM issues a DNS-validated certificate minutes after its validation records resolve; until then
    it is ``PENDING_VALIDATION`` and CreateDistribution refuses it (``InvalidViewerCertificate``), as
    does CreateDomainName (``BadRequestException``). A stack must wait for the issue (a certificate
    validation) before using a certificate it requests; the sandbox takes one as issued once a
    validation of it has completed."""
    viewer = inputs.get("viewerCertificate")
    if isinstance(viewer, Mapping) and _not_yet_issued(cloud, viewer.get("acmCertificateArn")):
        return AwsError("InvalidViewerCertificate", "The specified SSL certificate doesn't exist, isn't in us-east-1 "
                        "region, isn't valid, or doesn't include a valid certificate chain.", "viewerCertificate")
    for prop in ("regionalCertificateArn", "certificateArn"):
        if _not_yet_issued(cloud, inputs.get(prop)):
            return AwsError("BadRequestException", f"Certificate {inputs.get(prop)} in account "
                            f"{cloud.identity.account} not yet issued", prop)
    return None


@rule("aws:route53/healthCheck:HealthCheck")
def health_checks_reach_only_public_addresses(inputs: Inputs) -> AwsError | None:
    """CreateHealthCheck: Route 53's checkers probe from the internet and cannot check an endpoint
    whose IP address is local, private, non-routable or multicast (the special-use ranges of RFC
    5735, 6598 and 5156: 10/8, 100.64/10, 127/8, 169.254/16, 172.16/12, 192.168/16, the
    documentation ranges 192.0.2/24, 198.51.100/24, 203.0.113/24...); such an ``IPAddress`` is
    refused with ``InvalidInput``."""
    address = inputs.get("ipAddress")
    if not isinstance(address, str) or not _known(address):
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return AwsError("InvalidInput", f"Invalid parameter : IPAddress {address!r} is not an IP address", "ipAddress")
    if not ip.is_global or ip.is_multicast:
        return AwsError("InvalidInput", f"Invalid parameter : IPAddress {address} is in a local, private, non-routable "
                        "or multicast range, which Route 53 health checks cannot reach", "ipAddress")
    return None


CLOUDFRONT_HOSTED_ZONE = "Z2FDTNDATAQYW2"
"""The hosted zone every alias to a CloudFront distribution names (``AliasTarget.HostedZoneId``)."""


def _aliases(inputs: Inputs) -> list[Mapping[str, Any]]:
    return [alias for alias in inputs.get("aliases") or [] if isinstance(alias, Mapping)]


def _to_cloudfront(alias: Mapping[str, Any]) -> bool:
    name = alias.get("name")
    return alias.get("zoneId") == CLOUDFRONT_HOSTED_ZONE or \
        (isinstance(name, str) and _known(name) and name.rstrip(".").lower().endswith(".cloudfront.net"))


@rule("aws:route53/record:Record")
def a_cloudfront_alias_evaluates_no_target_health(inputs: Inputs) -> AwsError | None:
    """ChangeResourceRecordSets: an alias to a CloudFront distribution cannot evaluate its target's
    health (``EvaluateTargetHealth`` true is refused with ``InvalidChangeBatch``); CloudFront's
    availability is its own. Aliases to load balancers and API Gateway domains may."""
    for alias in _aliases(inputs):
        if _to_cloudfront(alias) and alias.get("evaluateTargetHealth") is True:
            return AwsError("InvalidChangeBatch", f"[Tried to create an alias that targets {alias.get('name')}, type "
                            f"{inputs.get('type')} in zone {alias.get('zoneId')}, but EvaluateTargetHealth cannot be "
                            "true when the alias target is a CloudFront distribution]", "aliases")
    return None


@rule("aws:route53/record:Record")
def a_cloudfront_alias_names_cloudfronts_zone(inputs: Inputs) -> AwsError | None:
    """ChangeResourceRecordSets: an alias names its target's own hosted zone; a ``*.cloudfront.net``
    target in any zone but CloudFront's (``Z2FDTNDATAQYW2``) is refused with ``InvalidChangeBatch``
    (the alias target name does not lie within the target zone)."""
    for alias in _aliases(inputs):
        zone = alias.get("zoneId")
        if _to_cloudfront(alias) and _known(zone) and zone != CLOUDFRONT_HOSTED_ZONE:
            return AwsError("InvalidChangeBatch", f"[Tried to create an alias that targets {alias.get('name')}, type "
                            f"{inputs.get('type')} in zone {zone}, but the alias target name does not lie within the "
                            "target zone]", "aliases")
    return None


# -- Secrets Manager ---------------------------------------------------------------------------
def _denied_by_resource_policy(policy: Any, action: str, principal_arn: str) -> bool:
    """Whether an explicit Deny of a resource policy applies to ``principal_arn`` for ``action``
    (conditions on ``aws:PrincipalArn`` evaluated; a Deny with another condition is not judged)."""
    for statement in _statements(policy):
        if statement.get("Effect") != "Deny":
            continue
        if not any(fnmatch.fnmatchcase(action, granted) for granted in _as_list(statement.get("Action", []))):
            continue
        principal = statement.get("Principal")
        if principal != "*" and principal_arn not in _as_list((principal or {}).get("AWS", [])):
            continue
        applies = True
        for test, values in (statement.get("Condition") or {}).items():
            for key, value in values.items():
                if key.lower() != "aws:principalarn":
                    applies = False  # not modelled: never assume a deny the sandbox cannot evaluate
                elif test in ("StringNotEquals", "ArnNotEquals"):
                    applies &= principal_arn not in _as_list(value)
                elif test in ("StringNotLike", "ArnNotLike"):
                    applies &= not any(fnmatch.fnmatchcase(principal_arn, v) for v in _as_list(value))
                elif test in ("StringEquals", "ArnEquals"):
                    applies &= principal_arn in _as_list(value)
                elif test in ("StringLike", "ArnLike"):
                    applies &= any(fnmatch.fnmatchcase(principal_arn, v) for v in _as_list(value))
                else:
                    applies = False
        if applies:
            return True
    return False


@rule_at_read("aws:secretsmanager/secretVersion:SecretVersion")
@rule_at_call("aws:secretsmanager/secretVersion:SecretVersion")
def reading_a_secret_value_obeys_the_secret_policy(state: Inputs, cloud: Cloud) -> AwsError | None:
    """GetSecretValue, which the provider calls to read a secret version (on refresh, and right
    after it creates or updates one), is evaluated against the secret's resource policy: an
    explicit Deny that applies to the deploying identity fails it with ``AccessDeniedException``.
    A policy that lets only a function read the secret therefore breaks every refresh (and the
    service's crash recovery) unless it also admits whoever deploys the stack."""
    secret = state.get("secretId")
    if not _known(secret):
        return None
    policies = cloud.find("aws:secretsmanager/secretPolicy:SecretPolicy", secretArn=secret)
    caller = cloud.identity
    if any(_denied_by_resource_policy(p.get("policy"), "secretsmanager:GetSecretValue", caller.principal_arn)
           for p in policies):
        return AwsError("AccessDeniedException",
                        f"User: {caller.caller_arn} is not authorized to perform: secretsmanager:GetSecretValue on resource: "
                        f"{secret} with an explicit deny in a resource-based policy", "secretId")
    return None


# -- deletion protection ------------------------------------------------------------------------
@rule_at_delete("aws:s3/bucket:Bucket")
def a_bucket_with_objects_is_not_deleted(state: Inputs, cloud: Cloud) -> AwsError | None:
    """DeleteBucket on a bucket that holds objects (or object versions) fails with ``BucketNotEmpty``.
    The AWS provider empties the bucket first (every version) only when ``forceDestroy`` is set, which
    the cases set when their ``deletion_protection`` is off. A stack's buckets fill as it is used
    (uploads, access logs), so a used stack's destroy fails until then."""
    if state.get("forceDestroy") or not cloud.find(OBJECT, bucket=state.get("bucket")):
        return None
    return AwsError("BucketNotEmpty", "The bucket you tried to delete is not empty. You must delete all versions in "
                    "the bucket.", "bucket")


@rule_at_delete("aws:dynamodb/table:Table")
def a_protected_table_is_not_deleted(state: Inputs, cloud: Cloud) -> AwsError | None:
    """DeleteTable on a table with ``DeletionProtectionEnabled`` fails with ``ValidationException``:
    protection must be turned off (an update) before the table can be deleted."""
    if state.get("deletionProtectionEnabled") is True:
        return AwsError("ValidationException", "Resource cannot be deleted as it is currently protected against "
                        "deletion. Disable deletion protection first.", "deletionProtectionEnabled")
    return None


@rule_at_delete("aws:cognito/userPool:UserPool")
def a_protected_user_pool_is_not_deleted(state: Inputs, cloud: Cloud) -> AwsError | None:
    """DeleteUserPool on a pool with ``DeletionProtection: ACTIVE`` fails with
    ``InvalidParameterException`` until protection is made ``INACTIVE``."""
    if state.get("deletionProtection") == "ACTIVE":
        return AwsError("InvalidParameterException", "The user pool cannot be deleted because deletion protection "
                        "is activated. Deletion protection must be inactivated first.", "deletionProtection")
    return None


# -- DAX -------------------------------------------------------------------------------------------
LAMBDA_RESERVED_VARIABLES = frozenset({
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR"})


@rule("aws:lambda/function:Function")
def a_function_sets_no_reserved_environment_variable(inputs: Inputs) -> AwsError | None:
    """CreateFunction/UpdateFunctionConfiguration: the runtime sets its reserved variables itself
    (``AWS_REGION``, ``AWS_LAMBDA_FUNCTION_NAME``, the credentials, ``_HANDLER``...); a function whose
    environment sets one is refused with ``InvalidParameterValueException``."""
    environment = inputs.get("environment")
    variables = environment.get("variables") if isinstance(environment, Mapping) else None
    reserved = sorted(set(variables) & LAMBDA_RESERVED_VARIABLES) if isinstance(variables, Mapping) else []
    if reserved:
        return AwsError("InvalidParameterValueException", "Lambda was unable to configure your environment variables "
                        "because the environment variables you have provided contains reserved keys that are "
                        f"currently not supported for modification. Reserved keys used in this request: "
                        f"{', '.join(reserved)}", "environment")
    return None


@rule("aws:dax/cluster:Cluster")
def dax_cluster_names_are_short(inputs: Inputs) -> AwsError | None:
    """CreateCluster: a DAX cluster name is 1-20 characters, a letter first, then lowercase letters,
    digits or '-'; otherwise ``InvalidParameterValueException``."""
    if name := _misnamed(inputs, "clusterName", r"[a-z][a-z0-9-]{0,19}"):
        return AwsError("InvalidParameterValueException",
                        f"Cluster name {name!r} is invalid: at most 20 lowercase letters, digits or '-', "
                        "starting with a letter", "clusterName")
    return None


# -- Tags ------------------------------------------------------------------------------------------
def _tag_text_refused(text: str, punctuation: str) -> bool:
    """Whether ``text`` holds a character other than a letter, digit, space (Unicode's L, N and Z
    categories) or one of ``punctuation``."""
    return any(unicodedata.category(c)[0] not in "LNZ" and c not in punctuation for c in text)


def _refused_tag(inputs: Inputs, punctuation: str) -> tuple[int, str, str] | None:
    """The first tag (its position, ``key`` or ``value``, the text) a service taking ``punctuation``
    refuses; keys are 1-128 characters, values at most 256."""
    tags = inputs.get("tags")
    if not isinstance(tags, Mapping):
        return None
    for position, (key, value) in enumerate(tags.items(), start=1):
        for part, text, longest in (("key", key, 128), ("value", value, 256)):
            if isinstance(text, str) and _known(text) and \
                    (_tag_text_refused(text, punctuation) or len(text) > longest or (part == "key" and not text)):
                return position, part, text
    return None


@rule("aws:iam/role:Role")
def iam_tags_take_letters_digits_spaces_and_few_symbols(inputs: Inputs) -> AwsError | None:
    """CreateRole/TagRole: a tag key (1-128 characters) and value (at most 256) match
    ``[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*``; a tag with any other character (``&``, ``,``, ``'``,
    brackets...) is refused with ``ValidationError``. Every case makes IAM roles, so a stack's
    tags must fit."""
    refused = _refused_tag(inputs, "_.:/=+-@")
    if refused is None:
        return None
    position, part, text = refused
    return AwsError("ValidationError", f"1 validation error detected: Value '{text}' at 'tags.{position}.member."
                    f"{part}' failed to satisfy constraint: Member must satisfy regular expression pattern: "
                    "[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*", "tags")


@rule("aws:s3/bucket:Bucket")
def s3_tags_take_letters_digits_spaces_and_few_symbols(inputs: Inputs) -> AwsError | None:
    """PutBucketTagging (the AWS provider tags a bucket after making it): a tag of letters, digits,
    spaces and ``+ - = . _ : / @`` only; any other character is refused with ``InvalidTag``."""
    refused = _refused_tag(inputs, "_.:/=+-@")
    if refused is None:
        return None
    _, part, _ = refused
    return AwsError("InvalidTag", f"The Tag{part.capitalize()} you have provided is invalid", "tags")


@rule("aws:dynamodb/table:Table")
def dynamodb_tags_take_letters_digits_spaces_and_fewer_symbols(inputs: Inputs) -> AwsError | None:
    """CreateTable/TagResource: DynamoDB's tags take letters, digits, spaces and ``+ - = . _ : /``
    only (its documented set has no ``@``, which IAM's and S3's have); any other character is
    refused with ``ValidationException``."""
    refused = _refused_tag(inputs, "_.:/=+-")
    if refused is None:
        return None
    _, part, text = refused
    return AwsError("ValidationException", f"The Tag {part.capitalize()} provided is invalid {text}", "tags")


# -- CloudWatch Logs -------------------------------------------------------------------------------
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                      3288, 3653)


@rule("aws:cloudwatch/logGroup:LogGroup")
def log_groups_keep_logs_for_a_listed_period(inputs: Inputs) -> AwsError | None:
    """PutRetentionPolicy: a log group keeps its events for one of CloudWatch Logs' periods (1, 3,
    5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or
    3653 days; the AWS provider sends none for 0, never expire); any other number is refused with
    ``InvalidParameterException``."""
    days = inputs.get("retentionInDays")
    if not isinstance(days, int | float) or isinstance(days, bool) or days == 0 or days in LOG_RETENTION_DAYS:
        return None
    return AwsError("InvalidParameterException", f"1 validation error detected: Value '{days:g}' at "
                    "'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set: "
                    f"[{', '.join(map(str, LOG_RETENTION_DAYS))}]", "retentionInDays")


# -- Cognito ---------------------------------------------------------------------------------------
@rule("aws:cognito/identityPool:IdentityPool")
def identity_pool_names_are_words_and_spaces(inputs: Inputs) -> AwsError | None:
    """CreateIdentityPool: ``IdentityPoolName`` matches ``[\\w ]+`` (1-128 characters); otherwise
    ``InvalidParameterException``."""
    if name := _misnamed(inputs, "identityPoolName", r"[\w ]{1,128}"):
        return AwsError("InvalidParameterException",
                        f"1 validation error detected: Value '{name}' at 'identityPoolName' failed to satisfy "
                        "constraint: Member must satisfy regular expression pattern: [\\w ]+", "identityPoolName")
    return None


@rule("aws:cognito/userPool:UserPool")
def threat_protection_needs_the_plus_tier(inputs: Inputs) -> AwsError | None:
    """CreateUserPool/UpdateUserPool: threat protection (``UserPoolAddOns.AdvancedSecurityMode``
    ``AUDIT`` or ``ENFORCED``) is a feature of the Plus plan. A pool that does not say
    ``UserPoolTier: PLUS`` gets the default tier (Essentials) and the request fails with
    ``FeatureUnavailableInTierException``."""
    mode = (inputs.get("userPoolAddOns") or {}).get("advancedSecurityMode")
    tier = inputs.get("userPoolTier") or "ESSENTIALS"
    if mode in ("AUDIT", "ENFORCED") and _known(tier) and tier != "PLUS":
        return AwsError("FeatureUnavailableInTierException",
                        f"Threat Protection is not available in the {tier} tier. Upgrade to the PLUS tier "
                        "to use this feature.", "userPoolAddOns")
    return None


# -- IoT -------------------------------------------------------------------------------------------
@rule("aws:iot/topicRule:TopicRule")
def topic_rule_names_are_words(inputs: Inputs) -> AwsError | None:
    """CreateTopicRule: a rule name matches ``^[a-zA-Z0-9_]+$``; otherwise ``InvalidRequestException``."""
    if name := _misnamed(inputs, "name", r"[A-Za-z0-9_]+"):
        return AwsError("InvalidRequestException", f"Rule name {name!r} must match ^[a-zA-Z0-9_]+$", "name")
    return None


# -- CloudFront ------------------------------------------------------------------------------------
@rule("aws:cloudfront/distribution:Distribution")
def a_distribution_takes_only_a_global_web_acl(inputs: Inputs) -> AwsError | None:
    """CreateDistribution/UpdateDistribution: ``WebACLId`` must name a WAFv2 web ACL of scope
    ``CLOUDFRONT`` (ARN ``arn:aws:wafv2:us-east-1:<account>:global/webacl/...``); a regional web ACL,
    or one made in another region, fails with ``InvalidWebACLId``."""
    acl = inputs.get("webAclId")
    if isinstance(acl, str) and _known(acl) and acl.startswith("arn:") and \
            not re.fullmatch(r"arn:aws[\w-]*:wafv2:us-east-1:\d{12}:global/webacl/.+", acl):
        return AwsError("InvalidWebACLId", "Web ACL is not accessible by the requester.", "webAclId")
    return None


_CERTIFICATE_ARN = re.compile(r"arn:aws[\w-]*:acm:([\w-]+):(\d{12}):certificate/.+")
"""An ACM certificate's ARN: (region, account)."""


@rule("aws:cloudfront/distribution:Distribution")
def a_distribution_takes_only_a_us_east_1_certificate(inputs: Inputs) -> AwsError | None:
    """CreateDistribution/UpdateDistribution: an ACM certificate for the distribution's aliases must
    be one of US East (N. Virginia), whatever the stack's region; one of another region fails with
    ``InvalidViewerCertificate``."""
    certificate = inputs.get("viewerCertificate")
    arn = certificate.get("acmCertificateArn") if isinstance(certificate, Mapping) else None
    matched = _CERTIFICATE_ARN.fullmatch(arn) if isinstance(arn, str) and _known(arn) else None
    if _known(arn) and (matched is None or matched.group(1) != "us-east-1"):
        return AwsError("InvalidViewerCertificate", "The specified SSL certificate doesn't exist, isn't in us-east-1 "
                        "region, isn't valid, or doesn't include a valid certificate chain.", "viewerCertificate")
    return None


@rule_at_call("aws:cloudfront/distribution:Distribution")
def legacy_logging_needs_a_bucket_with_acls(inputs: Inputs, cloud: Cloud) -> AwsError | None:
    """Standard logging (legacy), the distribution's ``Logging`` setting, writes log files through
    an ACL grant to the ``awslogsdelivery`` account: a bucket whose object ownership is
    ``BucketOwnerEnforced`` (ACLs disabled, the secure default) is refused with ``InvalidArgument``.
    Standard logging v2 (a CloudWatch Logs delivery) has no such need."""
    logging = inputs.get("loggingConfig")
    target = logging.get("bucket") if isinstance(logging, Mapping) else None
    if not isinstance(target, str) or not _known(target):
        return None
    bucket = target.split(".s3.", 1)[0].removesuffix(".s3.amazonaws.com")
    for controls in cloud.find("aws:s3/bucketOwnershipControls:BucketOwnershipControls", bucket=bucket):
        if (controls.get("rule") or {}).get("objectOwnership") == "BucketOwnerEnforced":
            return AwsError("InvalidArgument", "The S3 bucket that you specified for CloudFront logs does not "
                            f"enable ACL access: {target}", "loggingConfig")
    return None


@rule_at_call("aws:cloudwatch/logDeliverySource:LogDeliverySource")
def cloudfront_log_sources_live_in_us_east_1(inputs: Inputs, cloud: Cloud) -> AwsError | None:
    """PutDeliverySource for a CloudFront distribution (standard logging v2) is accepted only in
    US East (N. Virginia), where CloudFront's logs are vended; elsewhere CloudWatch Logs answers
    ``ValidationException``."""
    arn = str(inputs.get("resourceArn") or "")
    if arn.startswith("arn:aws:cloudfront:") and inputs.get("region") != "us-east-1":
        return AwsError("ValidationException", f"Resource {arn} of service cloudfront can only be a delivery "
                        "source in us-east-1", "resourceArn")
    return None


@rule_at_call("aws:s3/bucketLogging:BucketLogging")
def server_access_logs_need_a_target_in_the_same_region(inputs: Inputs, cloud: Cloud) -> AwsError | None:
    """PutBucketLogging: the target bucket must exist, in the source bucket's region and account.
    A target S3 cannot find there is refused with ``InvalidTargetBucketForLogging`` (one in another
    region with ``CrossLocationLoggingProhibitted``)."""
    target = inputs.get("targetBucket")
    if isinstance(target, str) and _known(target) and not cloud.find("aws:s3/bucket:Bucket", bucket=target):
        return AwsError("InvalidTargetBucketForLogging",
                        f"The target bucket for logging does not exist: {target} (in {inputs.get('region')})",
                        "targetBucket")
    return None


# -- accounts: what one account cannot see of another ------------------------------------------
_ARN_ACCOUNT = re.compile(r"arn:aws[\w-]*:[\w-]+:[\w-]*:(\d{12}):.+")


def _of_another_account(value: Any, cloud: Cloud) -> bool:
    matched = _ARN_ACCOUNT.fullmatch(value) if isinstance(value, str) else None
    return matched is not None and matched.group(1) != cloud.identity.account


@rule_at_call("aws:lb/listenerRule:ListenerRule")
def listener_rules_name_this_accounts_listener_and_target_groups(inputs: Inputs, cloud: Cloud) -> AwsError | None:
    """CreateRule: a listener or target group of another account is not found from this one
    (``ListenerNotFound``, ``TargetGroupNotFound``): a stack cannot change a load balancer it
    does not own."""
    if _of_another_account(inputs.get("listenerArn"), cloud):
        return AwsError("ListenerNotFound", "One or more listeners not found", "listenerArn")
    for action in inputs.get("actions") or []:
        if isinstance(action, Mapping) and _of_another_account(action.get("targetGroupArn"), cloud):
            return AwsError("TargetGroupNotFound", f"One or more target groups not found: "
                            f"{action.get('targetGroupArn')}", "actions")
    return None


@rule_at_call("aws:route53/record:Record")
def records_go_in_this_accounts_zones(inputs: Inputs, cloud: Cloud) -> AwsError | None:
    """ChangeResourceRecordSets on a hosted zone of another account fails with
    ``NoSuchHostedZone``: a stack cannot write records into a zone it does not own."""
    zone = inputs.get("zoneId")
    if _known(zone) and not cloud.find("aws:route53/zone:Zone", zoneId=zone) and \
            cloud.other_accounts_holding("aws:route53/zone:Zone", zoneId=zone):
        return AwsError("NoSuchHostedZone", f"No hosted zone found with ID: {zone}", "zoneId")
    return None


@rule_at_call("aws:ec2/securityGroup:SecurityGroup")
def security_groups_go_in_this_accounts_vpcs(inputs: Inputs, cloud: Cloud) -> AwsError | None:
    """CreateSecurityGroup in a VPC of another account (not shared with this one) fails with
    ``InvalidVpcID.NotFound``."""
    vpc = inputs.get("vpcId")
    if _known(vpc) and not cloud.find("aws:ec2/vpc:Vpc", id=vpc) and \
            cloud.other_accounts_holding("aws:ec2/vpc:Vpc", id=vpc):
        return AwsError("InvalidVpcID.NotFound", f"The vpc ID '{vpc}' does not exist", "vpcId")
    return None


@rule_at_call("aws:cloudfront/distribution:Distribution")
def a_distribution_serves_this_accounts_certificate(inputs: Inputs, cloud: Cloud) -> AwsError | None:
    """CreateDistribution with an ACM certificate of another account fails with
    ``InvalidViewerCertificate``: CloudFront uses only the distribution owner's certificates."""
    certificate = inputs.get("viewerCertificate")
    if isinstance(certificate, Mapping) and _of_another_account(certificate.get("acmCertificateArn"), cloud):
        return AwsError("InvalidViewerCertificate", "The specified SSL certificate doesn't exist, isn't in us-east-1 "
                        "region, isn't valid, or doesn't include a valid certificate chain.", "viewerCertificate")
    return None


@rule_at_call("aws:apigateway/domainName:DomainName")
def a_domain_name_takes_a_certificate_of_its_region_and_account(inputs: Inputs, cloud: Cloud) -> AwsError | None:
    """CreateDomainName: a regional domain's certificate (``regionalCertificateArn``) must be an ACM
    certificate of the API's region, an edge-optimized one's (``certificateArn``) of us-east-1, and
    either of the account making the domain; otherwise ``BadRequestException``."""
    for prop, region in (("regionalCertificateArn", inputs.get("region")), ("certificateArn", "us-east-1")):
        arn = inputs.get(prop)
        matched = _CERTIFICATE_ARN.fullmatch(arn) if isinstance(arn, str) and _known(arn) else None
        if matched is None:
            continue
        if matched.group(1) != region:
            return AwsError("BadRequestException", f"Invalid certificate ARN: {arn}. Certificate must be in "
                            f"'{region}'.", prop)
        if matched.group(2) != cloud.identity.account:
            return AwsError("BadRequestException", "The certificate provided must be owned by the account creating "
                            "the domain", prop)
    return None


@rule_at_call("aws:kms/key:Key")
def a_key_policy_lets_its_account_change_it(inputs: Inputs, cloud: Cloud) -> AwsError | None:
    """CreateKey/PutKeyPolicy run the policy lockout safety check: a key policy that does not allow the
    caller (or its account) ``kms:PutKeyPolicy`` would leave nobody able to change it, and is refused
    with ``MalformedPolicyDocumentException`` unless ``BypassPolicyLockoutSafetyCheck`` is set. A key
    without a policy gets AWS's default one, which gives the account every KMS action."""
    policy = inputs.get("policy")
    if not isinstance(policy, str) or not policy or not _known(policy) or inputs.get("bypassPolicyLockoutSafetyCheck"):
        return None
    account = cloud.identity.account
    callers = {"*", account, f"arn:aws:iam::{account}:root", cloud.identity.caller_arn, cloud.identity.principal_arn}
    for statement in _statements(policy):
        principal = statement.get("Principal")
        named = principal.get("AWS", []) if isinstance(principal, Mapping) else principal
        if statement.get("Effect") == "Allow" and _action_matches(statement.get("Action"), "kms:PutKeyPolicy") \
                and callers & {str(p) for p in _as_list(named)}:
            return None
    return AwsError("MalformedPolicyDocumentException", "The new key policy will not allow you to update the key "
                    "policy in the future.", "policy")


# -- CloudFront's policies -------------------------------------------------------------------------
RESPONSE_HEADERS_POLICY = "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy"
CACHE_POLICY = "aws:cloudfront/cachePolicy:CachePolicy"
MANAGED_RESPONSE_HEADERS_POLICIES = frozenset({
    "e61eb60c-9c35-4d20-a928-2b84e02af89c",  # CORS-and-SecurityHeadersPolicy
    "5cc3b908-e619-4b99-88e5-2cf7f45965bd",  # CORS-With-Preflight
    "eaab4381-ed33-4a86-88ca-d9558dc6cd63",  # CORS-with-preflight-and-SecurityHeadersPolicy
    "67f7725c-6f97-4210-82d7-5512b31e9d03",  # SecurityHeadersPolicy
    "60669652-455b-4ae9-85a4-c4c02393f86c",  # SimpleCORS
})
MANAGED_CACHE_POLICIES = frozenset({
    "2e54312d-136d-493c-8eb9-b001f22f67d2",  # Amplify
    "4135ea2d-6df8-44a3-9df3-4b5a84be39ad",  # CachingDisabled
    "658327ea-f89d-4fab-a63d-7e88639e58f6",  # CachingOptimized
    "b2884449-e4de-46a7-ac36-70bc7f1ddd6d",  # CachingOptimizedForUncompressedObjects
    "08627262-05a9-4f76-9ded-b50ca2e3a84f",  # Elemental-MediaPackage
    "83da9c7e-98b4-4e11-a168-04f0df8e2c65",  # UseOriginCacheControlHeaders
    "4cc15a8a-d715-48a4-82b8-cc0b614638fe",  # UseOriginCacheControlHeaders-QueryStrings
})
"""AWS's managed policies (CloudFront Developer Guide, "Use managed ... policies"): every account
may attach them, and they count against no quota."""
_POLICY_REFERENCES = (
    ("responseHeadersPolicyId", RESPONSE_HEADERS_POLICY, MANAGED_RESPONSE_HEADERS_POLICIES,
     "NoSuchResponseHeadersPolicy", "The response headers policy does not exist."),
    ("cachePolicyId", CACHE_POLICY, MANAGED_CACHE_POLICIES, "NoSuchCachePolicy", "The cache policy does not exist."),
)


def _cache_behaviours(inputs: Inputs) -> list[Mapping[str, Any]]:
    default = inputs.get("defaultCacheBehavior")
    ordered = inputs.get("orderedCacheBehaviors")
    behaviours = [default] if isinstance(default, Mapping) else []
    return behaviours + [b for b in (ordered if isinstance(ordered, list) else []) if isinstance(b, Mapping)]


@rule_at_call("aws:cloudfront/distribution:Distribution")
def a_distribution_attaches_policies_that_exist(inputs: Inputs, cloud: Cloud) -> AwsError | None:
    """CreateDistribution/UpdateDistribution: a cache behaviour's response headers policy and cache
    policy must be one of AWS's managed policies or one the account holds (CloudFront's policies are
    global: one made from any region serves every distribution of the account); another id is
    refused with ``NoSuchResponseHeadersPolicy`` or ``NoSuchCachePolicy``."""
    for behaviour in _cache_behaviours(inputs):
        for prop, type_token, managed, code, message in _POLICY_REFERENCES:
            policy = behaviour.get(prop)
            if isinstance(policy, str) and policy and _known(policy) and policy not in managed \
                    and not cloud.find_in_account(type_token, id=policy):
                return AwsError(code, message, prop)
    return None


@rule_at_delete(RESPONSE_HEADERS_POLICY)
@rule_at_delete(CACHE_POLICY)
def a_policy_in_use_is_not_deleted(state: Inputs, cloud: Cloud) -> AwsError | None:
    """DeleteResponseHeadersPolicy/DeleteCachePolicy: a policy attached to a cache behaviour of any
    of the account's distributions is refused with ``ResponseHeadersPolicyInUse`` or
    ``CachePolicyInUse`` until every distribution using it has let it go (the stack that shares its
    policy with other stacks keeps it while they live)."""
    policy = state.get("id")
    for prop, type_token, _, _, _ in _POLICY_REFERENCES:
        if not cloud.find(type_token, id=policy):
            continue
        for distribution in cloud.find_in_account("aws:cloudfront/distribution:Distribution"):
            if any(b.get(prop) == policy for b in _cache_behaviours(distribution)):
                if type_token == RESPONSE_HEADERS_POLICY:
                    return AwsError("ResponseHeadersPolicyInUse", "Cannot delete the response headers policy "
                                    "because it is attached to one or more cache behaviors in a CloudFront "
                                    "distribution.", "id")
                return AwsError("CachePolicyInUse", "Cannot delete the cache policy because it is attached to one "
                                "or more cache behaviors.", "id")
    return None


# -- Names already taken ---------------------------------------------------------------------------
ALREADY_EXISTS = {
    "aws:iam/role:Role": "EntityAlreadyExists",
    "aws:dynamodb/table:Table": "ResourceInUseException",
    "aws:lambda/function:Function": "ResourceConflictException",
    "aws:cloudwatch/logGroup:LogGroup": "ResourceAlreadyExistsException",
    "aws:sesv2/emailIdentity:EmailIdentity": "AlreadyExistsException",
}
"""The code AWS answers with when a create names a resource the account already has in the region
(another stack's, or one made by hand); ``AlreadyExists`` for the other types."""


def already_exists(type_token: str, rid: str) -> AwsError:
    """The refusal of a create whose name (id) the account already holds; it names no other stack."""
    return AwsError(ALREADY_EXISTS.get(type_token, "AlreadyExists"),
                    f"{type_token.rsplit(':', 1)[-1]} {rid!r} already exists in this account and region")


# -- Account quotas ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Quota:
    """How many resources of a type one account may hold (CloudFront's are global: every region
    counts), and what AWS answers the create past it."""

    limit: int
    what: str
    code: str
    message: str


QUOTAS: dict[str, Quota] = {
    "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy": Quota(
        20, "custom response headers policies", "TooManyResponseHeadersPolicies",
        "You have reached the maximum number of response headers policies for this Amazon Web Services account."),
    "aws:cloudfront/cachePolicy:CachePolicy": Quota(
        20, "custom cache policies", "TooManyCachePolicies",
        "You have reached the maximum number of cache policies for this Amazon Web Services account."),
    "aws:cloudfront/keyGroup:KeyGroup": Quota(
        10, "key groups", "TooManyKeyGroups",
        "You have reached the maximum number of key groups for this Amazon Web Services account."),
    "aws:cloudfront/publicKey:PublicKey": Quota(
        10, "public keys", "TooManyPublicKeys",
        "The maximum number of public keys for field-level encryption have been created. To create a new public "
        "key, delete one of the existing keys."),
    "aws:cloudfront/vpcOrigin:VpcOrigin": Quota(25, "VPC origins", "EntityLimitExceeded", "The entity limit has been exceeded."),
    "aws:cloudfront/originAccessControl:OriginAccessControl": Quota(
        100, "origin access controls", "TooManyOriginAccessControls",
        "The number of origin access controls in your Amazon Web Services account exceeds the maximum allowed."),
    "aws:cloudfront/originAccessIdentity:OriginAccessIdentity": Quota(
        100, "origin access identities", "TooManyCloudFrontOriginAccessIdentities",
        "Processing your request would cause you to exceed the maximum number of origin access identities allowed."),
    "aws:cloudfront/distribution:Distribution": Quota(
        500, "distributions", "TooManyDistributions",
        "Processing your request would cause you to exceed the maximum number of distributions allowed."),
}
"""CloudFront's default quotas per account (its Developer Guide, Quotas), which stacks of one
account share: every distribution of the cases takes a response headers policy of the 20, every
premium-content stack a key group and a public key of the 10. AWS raises them on request."""
QUOTAS_ENV = "SANDBOX_QUOTAS"
"""JSON object {type token: limit}: the quotas the account was raised to (or, for a drill, lowered)."""


def quota_limits(env: Mapping[str, str]) -> dict[str, int]:
    """Each quota's limit, with the account's own from ``SANDBOX_QUOTAS`` in ``env``."""
    limits = {type_token: quota.limit for type_token, quota in QUOTAS.items()}
    raw = env.get(QUOTAS_ENV) or "{}"
    try:
        given = json.loads(raw)
    except ValueError:
        raise ValueError(f"{QUOTAS_ENV} is not a JSON object of type token to limit: {raw!r}") from None
    if not isinstance(given, dict) or not all(t in QUOTAS and isinstance(v, int) and v >= 0 for t, v in given.items()):
        raise ValueError(f"{QUOTAS_ENV} names a type without a quota or a limit that is not a count: {raw!r}; "
                         f"the types with one: {', '.join(QUOTAS)}")
    return {**limits, **given}


def quota_exceeded(type_token: str, held: int, limits: Mapping[str, int]) -> AwsError | None:
    """The refusal of a create when the account already holds ``held`` resources of the type."""
    quota = QUOTAS.get(type_token)
    if quota is None or held < limits[type_token]:
        return None
    return AwsError(quota.code, f"{quota.message} (this account's quota of {quota.what}: {limits[type_token]})")


# -- Where AWS offers a service ---------------------------------------------------------------------
REGIONAL_SERVICES = {
    "aws:iot/topicRule:TopicRule": ("iot", "IoT Core"),
    "aws:dax/subnetGroup:SubnetGroup": ("dax", "DynamoDB Accelerator (DAX)"),
    "aws:dax/cluster:Cluster": ("dax", "DynamoDB Accelerator (DAX)"),
    "aws:sesv2/emailIdentity:EmailIdentity": ("email", "SES"),
}
"""The types the cases use of services AWS does not offer in every region: the endpoint prefix
(botocore's name for the service's regional endpoints) and the service's name."""


@functools.cache
def _endpoint_data() -> dict[str, Any]:
    """botocore's endpoint data (``botocore/data/endpoints.json``, pinned with boto3): each
    partition's regions, and the regions in which each service has an endpoint. Read as a file:
    importing botocore would cost a provider's start a quarter of a second."""
    spec = importlib.util.find_spec("botocore")
    assert spec is not None and spec.submodule_search_locations
    return json.loads((Path(spec.submodule_search_locations[0]) / "data" / "endpoints.json").read_text())


def regions_without(service: str) -> list[str]:
    """The regions of AWS's commercial partition (``aws``) in which ``service`` (an endpoint
    prefix) has no endpoint, as botocore knows them. The other partitions (China, GovCloud, the
    isolated regions) are not judged: botocore's data for them is not kept as completely."""
    partition = next(p for p in _endpoint_data()["partitions"] if p["partition"] == "aws")
    endpoints = partition["services"].get(service, {}).get("endpoints", {})
    return sorted(region for region in partition["regions"] if region not in endpoints)


def _offered_only_in_its_regions(service: str, label: str) -> CallRule:
    def a_service_is_reached_only_where_aws_offers_it(inputs: Inputs, cloud: Cloud) -> AwsError | None:
        region = inputs.get("region")
        if isinstance(region, str) and region in regions_without(service):
            host = f"{service}.{region}.amazonaws.com"
            return AwsError("RequestError", f"send request failed: dial tcp: lookup {host}: no such host "
                            f"({label} is not offered in {region})", "region")
        return None

    a_service_is_reached_only_where_aws_offers_it.__doc__ = (
        f"{label} is not offered in every region: in a region that botocore's endpoint data lists "
        f"without it ({', '.join(regions_without(service))}), its endpoint `{service}.<region>.amazonaws.com` "
        "does not resolve, and the AWS provider's call fails (`RequestError`, no such host) once the "
        "stack's earlier resources are made. Only the commercial partition's regions are judged (not "
        "China, GovCloud or the isolated regions), and no region botocore does not know.")
    return a_service_is_reached_only_where_aws_offers_it


for _type_token, (_service, _label) in REGIONAL_SERVICES.items():
    rule_at_call(_type_token)(_offered_only_in_its_regions(_service, _label))


# -- CloudFront: what AWS keeps --------------------------------------------------------------------
@effect("aws:cloudfront/distribution:Distribution")
def default_certificate_serves_tls_v1(properties: dict[str, Any]) -> dict[str, Any]:
    """With the default ``*.cloudfront.net`` certificate (``CloudFrontDefaultCertificate: true``)
    CloudFront ignores ``MinimumProtocolVersion`` and accepts TLSv1: the distribution reads back
    ``TLSv1``, so a stack that asked for more sees drift on every refresh."""
    certificate = properties.get("viewerCertificate")
    if isinstance(certificate, dict) and certificate.get("cloudfrontDefaultCertificate") is True:
        return {**properties, "viewerCertificate": {**certificate, "minimumProtocolVersion": "TLSv1"}}
    return properties


def catalogue_markdown() -> str:
    """The catalogue as the README publishes it (a test keeps the two equal)."""
    rows = ["| rule | resource type | checked | what AWS does |", "| --- | --- | --- | --- |"]
    for when, registry in (("inputs", RULES), ("at the call", CALL_RULES), ("on read", READ_RULES),
                           ("on delete", DELETE_RULES), ("effect, on read", EFFECTS)):
        for type_token, functions in registry.items():
            for function in functions:
                doc = " ".join((function.__doc__ or "").split()).replace("``", "`").replace("|", "\\|")
                rows.append(f"| `{function.__name__}` | `{type_token}` | {when} | {doc} |")
    for type_token, quota in QUOTAS.items():
        rows.append(f"| `account_quota` | `{type_token}` | on create | One account holds at most {quota.limit} "
                    f"{quota.what} by default (raised on request; `{QUOTAS_ENV}` gives the sandbox's account its "
                    f"own); the next create is refused with `{quota.code}`. |")
    return "\n".join(rows) + "\n"
