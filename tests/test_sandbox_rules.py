"""The sandbox refuses what AWS refuses: each rule of the catalogue (``sandbox/rules.py``) on a
compliant and a non-compliant resource, and each through the real engine, with AWS's own
error code, before anything is created."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest

from sandbox import rules, synthesis
from sandbox.cloud import Record, SandboxCloud
from sandbox.mocks import AwsRefusalError, SandboxMocks
from tests.engine import REPO, Workspace

RAW_RESOURCE = REPO / "tests" / "programs" / "raw_resource"

DISTRIBUTION_BASE = {"enabled": True, "origins": [{"originId": "o", "domainName": "o.example.com"}],
                     "defaultCacheBehavior": {"targetOriginId": "o", "viewerProtocolPolicy": "redirect-to-https",
                                              "allowedMethods": ["GET", "HEAD"], "cachedMethods": ["GET", "HEAD"]},
                     "restrictions": {"geoRestriction": {"restrictionType": "none"}},
                     "viewerCertificate": {"cloudfrontDefaultCertificate": True, "minimumProtocolVersion": "TLSv1"}}

FUNCTION_BASE = {"role": "arn:aws:iam::123456789012:role/made-elsewhere", "runtime": "python3.12",
                 "handler": "index.handler", "s3Bucket": "code-0a1b", "s3Key": "function.zip"}

ALIAS_BASE = {"zoneId": "Z0123456789ABCDEFGHIJ", "name": "www.example.net", "type": "A"}
CLOUDFRONT_ALIAS = {"name": "d111111abcdef8.cloudfront.net", "zoneId": "Z2FDTNDATAQYW2", "evaluateTargetHealth": False}

HEALTH_CHECK_BASE = {"type": "HTTP", "port": 80, "resourcePath": "/health", "failureThreshold": 3, "requestInterval": 30}

# (rule, type token, refused inputs, accepted inputs, AWS error code)
LAMBDA_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
TABLE_BASE = {"hashKey": "id", "attributes": [{"name": "id", "type": "S"}], "billingMode": "PAY_PER_REQUEST"}
CASES: list[tuple[rules.Rule, str, dict[str, Any], dict[str, Any], str]] = [
    (rules.bucket_names_follow_the_naming_rules, "aws:s3/bucket:Bucket",
     {"bucket": "Not_A_Bucket"}, {"bucket": "a-fine-bucket"}, "InvalidBucketName"),
    (rules.dax_cluster_names_are_short, "aws:dax/cluster:Cluster",
     {"clusterName": "a-name-much-longer-than-twenty", "nodeType": "dax.t3.small", "replicationFactor": 1,
      "iamRoleArn": "arn:aws:iam::123456789012:role/dax"},
     {"clusterName": "short-name", "nodeType": "dax.t3.small", "replicationFactor": 1,
      "iamRoleArn": "arn:aws:iam::123456789012:role/dax"}, "InvalidParameterValueException"),
    (rules.identity_pool_names_are_words_and_spaces, "aws:cognito/identityPool:IdentityPool",
     {"identityPoolName": "has-dashes"}, {"identityPoolName": "has_underscores"}, "InvalidParameterException"),
    (rules.threat_protection_needs_the_plus_tier, "aws:cognito/userPool:UserPool",
     {"userPoolAddOns": {"advancedSecurityMode": "ENFORCED"}},
     {"userPoolAddOns": {"advancedSecurityMode": "ENFORCED"}, "userPoolTier": "PLUS"},
     "FeatureUnavailableInTierException"),
    (rules.a_distribution_takes_only_a_global_web_acl, "aws:cloudfront/distribution:Distribution",
     {**DISTRIBUTION_BASE, "webAclId": "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/api/0a1b"},
     {**DISTRIBUTION_BASE, "webAclId": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/edge/0a1b"},
     "InvalidWebACLId"),
    (rules.transfer_acceleration_needs_a_bucket_name_without_dots,
     "aws:s3/bucketAccelerateConfiguration:BucketAccelerateConfiguration",
     {"bucket": "uploads.example.com", "status": "Enabled"}, {"bucket": "uploads-example-com", "status": "Enabled"},
     "InvalidRequest"),
    (rules.a_distribution_takes_only_a_us_east_1_certificate, "aws:cloudfront/distribution:Distribution",
     {**DISTRIBUTION_BASE, "aliases": ["www.example.com"], "viewerCertificate": {
         "acmCertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b", "sslSupportMethod": "sni-only",
         "minimumProtocolVersion": "TLSv1.2_2021"}},
     {**DISTRIBUTION_BASE, "aliases": ["www.example.com"], "viewerCertificate": {
         "acmCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/0a1b", "sslSupportMethod": "sni-only",
         "minimumProtocolVersion": "TLSv1.2_2021"}},
     "InvalidViewerCertificate"),
    (rules.a_function_sets_no_reserved_environment_variable, "aws:lambda/function:Function",
     {**FUNCTION_BASE, "environment": {"variables": {"TABLE_NAME": "todos", "AWS_REGION": "eu-west-1"}}},
     {**FUNCTION_BASE, "environment": {"variables": {"TABLE_NAME": "todos", "REGION": "eu-west-1"}}},
     "InvalidParameterValueException"),
    (rules.a_queue_mapping_batches_more_than_ten_only_with_a_window,
     "aws:lambda/eventSourceMapping:EventSourceMapping",
     {"functionName": "reporter", "eventSourceArn": "arn:aws:sqs:us-east-1:123456789012:objects", "batchSize": 100},
     {"functionName": "reporter", "eventSourceArn": "arn:aws:sqs:us-east-1:123456789012:objects", "batchSize": 100,
      "maximumBatchingWindowInSeconds": 5},
     "InvalidParameterValueException"),
    (rules.a_cloudfront_alias_evaluates_no_target_health, "aws:route53/record:Record",
     {**ALIAS_BASE, "aliases": [{**CLOUDFRONT_ALIAS, "evaluateTargetHealth": True}]},
     {**ALIAS_BASE, "aliases": [{**CLOUDFRONT_ALIAS, "evaluateTargetHealth": False}]},
     "InvalidChangeBatch"),
    (rules.a_cloudfront_alias_names_cloudfronts_zone, "aws:route53/record:Record",
     {**ALIAS_BASE, "aliases": [{**CLOUDFRONT_ALIAS, "zoneId": "Z1UJRXOUMOOFQ8"}]},
     {**ALIAS_BASE, "aliases": [CLOUDFRONT_ALIAS]},
     "InvalidChangeBatch"),
    (rules.health_checks_reach_only_public_addresses, "aws:route53/healthCheck:HealthCheck",
     {**HEALTH_CHECK_BASE, "ipAddress": "192.0.2.10"}, {**HEALTH_CHECK_BASE, "ipAddress": "44.192.0.10"},
     "InvalidInput"),
    (rules.topic_rule_names_are_words, "aws:iot/topicRule:TopicRule",
     {"name": "with-dash", "enabled": True, "sql": "SELECT * FROM 't'", "sqlVersion": "2016-03-23"},
     {"name": "with_underscore", "enabled": True, "sql": "SELECT * FROM 't'", "sqlVersion": "2016-03-23"},
     "InvalidRequestException"),
    (rules.log_groups_keep_logs_for_a_listed_period, "aws:cloudwatch/logGroup:LogGroup",
     {"retentionInDays": 10}, {"retentionInDays": 14}, "InvalidParameterException"),
    (rules.iam_tags_take_letters_digits_spaces_and_few_symbols, "aws:iam/role:Role",
     {"assumeRolePolicy": LAMBDA_TRUST, "tags": {"team": "data", "cost-center": "R&D"}},
     {"assumeRolePolicy": LAMBDA_TRUST, "tags": {"team": "data", "cost-center": "R+D", "owner": "alice@example.com"}},
     "ValidationError"),
    (rules.s3_tags_take_letters_digits_spaces_and_few_symbols, "aws:s3/bucket:Bucket",
     {"tags": {"project": "blog (2026)"}}, {"tags": {"project": "blog-2026", "owner": "alice@example.com"}},
     "InvalidTag"),
    (rules.dynamodb_tags_take_letters_digits_spaces_and_fewer_symbols, "aws:dynamodb/table:Table",
     {**TABLE_BASE, "tags": {"owner": "alice@example.com"}}, {**TABLE_BASE, "tags": {"owner": "alice.example.com"}},
     "ValidationException"),
]
IDS = [case[0].__name__ for case in CASES]


# (effect, type token, inputs whose value AWS changes, the value as read back, inputs it keeps)
DISTRIBUTION = {"enabled": True, "origins": [{"originId": "o", "domainName": "o.example.com"}],
                "defaultCacheBehavior": {"targetOriginId": "o", "viewerProtocolPolicy": "redirect-to-https",
                                         "allowedMethods": ["GET", "HEAD"], "cachedMethods": ["GET", "HEAD"]},
                "restrictions": {"geoRestriction": {"restrictionType": "none"}}}
EFFECTS = [
    (rules.default_certificate_serves_tls_v1, "aws:cloudfront/distribution:Distribution",
     {**DISTRIBUTION, "viewerCertificate": {"cloudfrontDefaultCertificate": True,
                                            "minimumProtocolVersion": "TLSv1.2_2021"}},
     {"cloudfrontDefaultCertificate": True, "minimumProtocolVersion": "TLSv1"},
     {**DISTRIBUTION, "viewerCertificate": {"cloudfrontDefaultCertificate": True, "minimumProtocolVersion": "TLSv1"}}),
]
EFFECT_IDS = [case[0].__name__ for case in EFFECTS]


def _topic_policy(admitted_bucket: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sns:Publish",
        "Resource": "${topic.arn}", "Condition": {"ArnEquals": {"aws:SourceArn": admitted_bucket}}}]})


def _fanout(key: str | None, admitted_bucket: str = "arn:aws:s3:::${bucket.bucket}") -> list[dict[str, Any]]:
    """A bucket whose events go to a topic: the resources, in the order they are created."""
    topic = {"kmsMasterKeyId": key} if key else {}
    return [
        {"name": "bucket", "type": "aws:s3/bucket:Bucket", "inputs": {}},
        {"name": "topic", "type": "aws:sns/topic:Topic", "inputs": topic},
        {"name": "policy", "type": "aws:sns/topicPolicy:TopicPolicy",
         "inputs": {"arn": "${topic.arn}", "policy": _topic_policy(admitted_bucket)}},
        {"name": "notification", "type": "aws:s3/bucketNotification:BucketNotification", "depends_on": ["policy"],
         "inputs": {"bucket": "${bucket.bucket}", "topics": [{"topicArn": "${topic.arn}",
                                                             "events": ["s3:ObjectCreated:*"]}]}},
    ]


def _fanout_twice(second_prefix: str) -> list[dict[str, Any]]:
    """A bucket whose new objects under ``uploads/`` go to a topic, and its puts under ``second_prefix`` too."""
    *made, notification = _fanout(None)
    topic = {"topicArn": "${topic.arn}"}
    return [*made, {**notification, "inputs": {"bucket": "${bucket.bucket}", "topics": [
        {**topic, "events": ["s3:ObjectCreated:*"], "filterPrefix": "uploads/"},
        {**topic, "events": ["s3:ObjectCreated:Put"], "filterPrefix": second_prefix}]}}]


# (rule, resources AWS refuses, resources it accepts, AWS error code); checked when the call is made
CALL_CASES = [
    (rules.s3_validates_notification_destinations, _fanout("alias/aws/sns"), _fanout(None), "InvalidArgument"),
    (rules.s3_validates_notification_destinations, _fanout(None, "arn:aws:s3:::another-bucket"), _fanout(None),
     "InvalidArgument"),
    (rules.s3_notification_targets_do_not_overlap, _fanout_twice("uploads/images/"), _fanout_twice("audit/"),
     "InvalidArgument"),
]


def _bucket_to_function(permitted_bucket: str | None) -> list[dict[str, Any]]:
    """A bucket whose events invoke a function, with S3's permission to invoke it for
    ``permitted_bucket`` (None: no permission at all)."""
    resources: list[dict[str, Any]] = [
        {"name": "bucket", "type": "aws:s3/bucket:Bucket", "inputs": {}},
        {"name": "function", "type": "aws:lambda/function:Function",
         "inputs": {"role": "arn:aws:iam::123456789012:role/thumbnails", "runtime": "python3.12",
                    "handler": "index.handler", "s3Bucket": "code-0a1b", "s3Key": "thumbnails.zip"}},
    ]
    waits = []
    if permitted_bucket is not None:
        resources.append({"name": "permission", "type": "aws:lambda/permission:Permission",
                          "inputs": {"action": "lambda:InvokeFunction", "function": "${function.name}",
                                     "principal": "s3.amazonaws.com", "sourceArn": permitted_bucket,
                                     "sourceAccount": rules.ACCOUNT_ID}})
        waits = ["permission"]
    resources.append({"name": "notification", "type": "aws:s3/bucketNotification:BucketNotification",
                      "depends_on": waits, "inputs": {"bucket": "${bucket.bucket}", "lambdaFunctions": [
                          {"lambdaFunctionArn": "${function.arn}", "events": ["s3:ObjectCreated:*"]}]}})
    return resources


CALL_CASES += [
    (rules.s3_validates_notification_destinations, _bucket_to_function(None),
     _bucket_to_function("arn:aws:s3:::${bucket.bucket}"), "InvalidArgument"),
    (rules.s3_validates_notification_destinations, _bucket_to_function("arn:aws:s3:::another-bucket"),
     _bucket_to_function("arn:aws:s3:::${bucket.bucket}"), "InvalidArgument"),
]


def _trust(service: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})


def _role_allowing(actions: list[str], resource: str, trusted: str = "lambda.amazonaws.com") -> list[dict[str, Any]]:
    """A role that ``trusted`` may assume and its policy, allowing ``actions`` on ``resource``."""
    return [
        {"name": "role", "type": "aws:iam/role:Role", "inputs": {"assumeRolePolicy": _trust(trusted)}},
        {"name": "policy", "type": "aws:iam/rolePolicy:RolePolicy",
         "inputs": {"role": "${role.name}", "policy": json.dumps({"Version": "2012-10-17", "Statement": [
             {"Effect": "Allow", "Action": actions, "Resource": resource}]})}},
    ]


def _function(**inputs: Any) -> dict[str, Any]:
    return {"name": "function", "type": "aws:lambda/function:Function", "depends_on": ["policy"],
            "inputs": {"role": "${role.arn}", "runtime": "python3.12", "handler": "index.handler",
                       "s3Bucket": "code-0a1b", "s3Key": "function.zip", **inputs}}


def _function_in_a_vpc(actions: list[str]) -> list[dict[str, Any]]:
    return [*_role_allowing(actions, "*"),
            _function(vpcConfig={"subnetIds": ["subnet-0a1b2c3d"], "securityGroupIds": ["sg-0a1b2c3d"]})]


def _function_with_dead_letters(actions: list[str]) -> list[dict[str, Any]]:
    return [{"name": "queue", "type": "aws:sqs/queue:Queue", "inputs": {}}, *_role_allowing(actions, "${queue.arn}"),
            _function(deadLetterConfig={"targetArn": "${queue.arn}"})]


def _function_trusting(service: str) -> list[dict[str, Any]]:
    return [*_role_allowing(["logs:CreateLogGroup"], "*", trusted=service), _function()]


def _topic_rule_trusting(service: str) -> list[dict[str, Any]]:
    return [{"name": "stream", "type": "aws:kinesis/stream:Stream", "inputs": {"shardCount": 1}},
            *_role_allowing(["kinesis:PutRecord"], "${stream.arn}", trusted=service),
            {"name": "rule", "type": "aws:iot/topicRule:TopicRule", "depends_on": ["policy"],
             "inputs": {"name": "readings", "enabled": True, "sql": "SELECT * FROM 'devices/+/readings'",
                        "sqlVersion": "2016-03-23", "kineses": [{"streamName": "${stream.name}",
                                                                 "roleArn": "${role.arn}"}]}}]


def _delivery_stream_trusting(service: str, actions: tuple[str, ...] = ("kinesis:DescribeStream",
                                                                        "kinesis:GetRecords")) -> list[dict[str, Any]]:
    """A delivery stream from a Kinesis stream whose role ``service`` may assume and may take ``actions`` on it."""
    return [{"name": "stream", "type": "aws:kinesis/stream:Stream", "inputs": {"shardCount": 1}},
            {"name": "bucket", "type": "aws:s3/bucket:Bucket", "inputs": {}},
            *_role_allowing(list(actions), "${stream.arn}", trusted=service),
            {"name": "delivery", "type": "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream",
             "depends_on": ["policy"],
             "inputs": {"destination": "extended_s3",
                        "kinesisSourceConfiguration": {"kinesisStreamArn": "${stream.arn}", "roleArn": "${role.arn}"},
                        "extendedS3Configuration": {"bucketArn": "${bucket.arn}", "roleArn": "${role.arn}"}}}]


def _dax_cluster_trusting(service: str) -> list[dict[str, Any]]:
    return [*_role_allowing(["dynamodb:GetItem"], "*", trusted=service),
            {"name": "cluster", "type": "aws:dax/cluster:Cluster", "depends_on": ["policy"],
             "inputs": {"clusterName": "posts", "nodeType": "dax.t3.small", "replicationFactor": 1,
                        "iamRoleArn": "${role.arn}"}}]


CALL_CASES += [
    (rules.firehose_can_assume_its_roles, _delivery_stream_trusting("lambda.amazonaws.com"),
     _delivery_stream_trusting("firehose.amazonaws.com"), "InvalidArgumentException"),
    (rules.dax_can_assume_the_clusters_role, _dax_cluster_trusting("lambda.amazonaws.com"),
     _dax_cluster_trusting("dax.amazonaws.com"), "InvalidParameterValueException"),
    (rules.lambda_can_assume_the_functions_role, _function_trusting("ec2.amazonaws.com"),
     _function_trusting("lambda.amazonaws.com"), "InvalidParameterValueException"),
    (rules.iot_can_assume_the_rule_actions_roles, _topic_rule_trusting("lambda.amazonaws.com"),
     _topic_rule_trusting("iot.amazonaws.com"), "InvalidRequestException"),
]


ENI = ["ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface"]
CALL_CASES += [
    (rules.a_function_needs_a_role_that_can_reach_its_network_and_dead_letters, _function_in_a_vpc(ENI[1:]),
     _function_in_a_vpc(ENI), "InvalidParameterValueException"),
    (rules.a_function_needs_a_role_that_can_reach_its_network_and_dead_letters,
     _function_with_dead_letters(["sqs:ReceiveMessage"]), _function_with_dead_letters(["sqs:SendMessage"]),
     "InvalidParameterValueException"),
]


POLLING = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]


def _queue_to_function(actions: list[str] | None = None, visibility_seconds: int | None = None,
                       timeout_seconds: int | None = None) -> list[dict[str, Any]]:
    """A queue with this visibility timeout polled by a function that may run this long, whose
    role's policy allows ``actions`` on the queue (by default the polling a mapping needs); AWS's
    defaults (30 s and 3 s) for what is not given."""
    queue = {} if visibility_seconds is None else {"visibilityTimeoutSeconds": visibility_seconds}
    function = {} if timeout_seconds is None else {"timeout": timeout_seconds}
    return [
        {"name": "queue", "type": "aws:sqs/queue:Queue", "inputs": queue},
        *_role_allowing(actions or POLLING, "${queue.arn}"), _function(**function),
        {"name": "mapping", "type": "aws:lambda/eventSourceMapping:EventSourceMapping", "depends_on": ["policy"],
         "inputs": {"functionName": "${function.arn}", "eventSourceArn": "${queue.arn}", "batchSize": 10}},
    ]


CALL_CASES += [
    (rules.a_queues_visibility_timeout_covers_the_function_timeout,
     _queue_to_function(timeout_seconds=60),
     _queue_to_function(visibility_seconds=360, timeout_seconds=60), "InvalidParameterValueException"),
    (rules.a_mapping_needs_a_role_that_can_read_its_source, _queue_to_function(["sqs:SendMessage"]),
     _queue_to_function(), "InvalidParameterValueException"),
]


def _validated_certificate(delegated: bool) -> list[dict[str, Any]]:
    zone: dict[str, Any] = {"name": "example.net"}
    if delegated:
        zone["tags"] = {rules.DELEGATED_TAG: "true"}
    return [
        {"name": "zone", "type": "aws:route53/zone:Zone", "inputs": zone},
        {"name": "cert", "type": "aws:acm/certificate:Certificate",
         "inputs": {"domainName": "orders.example.net", "validationMethod": "DNS"}},
        {"name": "record", "type": "aws:route53/record:Record",
         "inputs": {"zoneId": "${zone.zoneId}", "name": "_0a1b2c.orders.example.net.", "type": "CNAME",
                    "records": ["_x.acm-validations.aws."], "ttl": 60}},
        {"name": "validation", "type": "aws:acm/certificateValidation:CertificateValidation",
         "inputs": {"certificateArn": "${cert.arn}", "validationRecordFqdns": ["${record.fqdn}"]}},
    ]


CALL_CASES.append((rules.dns_validation_needs_a_delegated_zone, _validated_certificate(False),
                   _validated_certificate(True), "PENDING_VALIDATION"))


def _domain_on_certificate(validated: bool) -> list[dict[str, Any]]:
    """A regional domain name serving a certificate the stack requests, with or without waiting for its
    issue (its validation)."""
    made = _validated_certificate(True) if validated else _validated_certificate(True)[:2]
    return [*made, {"name": "domain", "type": "aws:apigateway/domainName:DomainName",
                    "depends_on": ["validation"] if validated else [],
                    "inputs": {"domainName": "orders.example.net", "regionalCertificateArn": "${cert.arn}",
                               "endpointConfiguration": {"types": "REGIONAL"}, "securityPolicy": "TLS_1_2"}}]


def _distribution_on_certificate(validated: bool) -> list[dict[str, Any]]:
    made = _validated_certificate(True) if validated else _validated_certificate(True)[:2]
    return [*made, {"name": "distribution", "type": "aws:cloudfront/distribution:Distribution",
                    "depends_on": ["validation"] if validated else [],
                    "inputs": {**DISTRIBUTION_BASE, "aliases": ["orders.example.net"], "viewerCertificate": {
                        "acmCertificateArn": "${cert.arn}", "sslSupportMethod": "sni-only",
                        "minimumProtocolVersion": "TLSv1.2_2021"}}}]


CALL_CASES += [
    (rules.a_certificate_serves_only_once_issued, _domain_on_certificate(False), _domain_on_certificate(True),
     "BadRequestException"),
    (rules.a_certificate_serves_only_once_issued, _distribution_on_certificate(False),
     _distribution_on_certificate(True), "InvalidViewerCertificate"),
]


def _legacy_logged_distribution(object_ownership: str) -> list[dict[str, Any]]:
    return [
        {"name": "logs", "type": "aws:s3/bucket:Bucket", "inputs": {}},
        {"name": "ownership", "type": "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
         "inputs": {"bucket": "${logs.bucket}", "rule": {"objectOwnership": object_ownership}}},
        {"name": "cdn", "type": "aws:cloudfront/distribution:Distribution", "depends_on": ["ownership"],
         "inputs": {**DISTRIBUTION_BASE, "loggingConfig": {"bucket": "${logs.bucketDomainName}"}}},
    ]


def _distribution_log_source(region: str) -> list[dict[str, Any]]:
    return [
        {"name": "cdn", "type": "aws:cloudfront/distribution:Distribution", "inputs": DISTRIBUTION_BASE},
        {"name": "source", "type": "aws:cloudwatch/logDeliverySource:LogDeliverySource",
         "inputs": {"name": "cdn-access-logs", "logType": "ACCESS_LOGS", "resourceArn": "${cdn.arn}",
                    "region": region}},
    ]


def _server_access_logging(target: str) -> list[dict[str, Any]]:
    return [
        {"name": "logs", "type": "aws:s3/bucket:Bucket", "inputs": {}},
        {"name": "data", "type": "aws:s3/bucket:Bucket", "inputs": {}},
        {"name": "logging", "type": "aws:s3/bucketLogging:BucketLogging",
         "inputs": {"bucket": "${data.bucket}", "targetBucket": target, "targetPrefix": "s3/data/"}},
    ]


CALL_CASES += [
    (rules.legacy_logging_needs_a_bucket_with_acls, _legacy_logged_distribution("BucketOwnerEnforced"),
     _legacy_logged_distribution("BucketOwnerPreferred"), "InvalidArgument"),
    (rules.cloudfront_log_sources_live_in_us_east_1, _distribution_log_source("eu-west-1"),
     _distribution_log_source("us-east-1"), "ValidationException"),
    (rules.server_access_logs_need_a_target_in_the_same_region, _server_access_logging("no-such-bucket-0a1b"),
     _server_access_logging("${logs.bucket}"), "InvalidTargetBucketForLogging"),
]
LISTENER = "arn:aws:elasticloadbalancing:us-east-1:{}:listener/app/updates/50dc6c495c0c9188/f2f7dc8efc522ab2"
CERTIFICATE = "arn:aws:acm:us-east-1:{}:certificate/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
OTHER_ACCOUNT = "210987654321"


def _listener_rule(account: str) -> list[dict[str, Any]]:
    return [{"name": "rule", "type": "aws:lb/listenerRule:ListenerRule",
             "inputs": {"listenerArn": LISTENER.format(account), "priority": 10,
                        "actions": [{"type": "fixed-response", "fixedResponse": {"contentType": "text/plain",
                                                                                 "statusCode": "403"}}],
                        "conditions": [{"pathPattern": {"values": ["/*"]}}]}}]


def _distribution_with_certificate(account: str) -> list[dict[str, Any]]:
    return [{"name": "cdn", "type": "aws:cloudfront/distribution:Distribution",
             "inputs": {**DISTRIBUTION_BASE, "aliases": ["updates.example.net"], "viewerCertificate": {
                 "acmCertificateArn": CERTIFICATE.format(account), "sslSupportMethod": "sni-only",
                 "minimumProtocolVersion": "TLSv1.2_2021"}}}]


CALL_CASES += [
    (rules.listener_rules_name_this_accounts_listener_and_target_groups, _listener_rule(OTHER_ACCOUNT),
     _listener_rule(rules.ACCOUNT_ID), "ListenerNotFound"),
    (rules.a_distribution_serves_this_accounts_certificate, _distribution_with_certificate(OTHER_ACCOUNT),
     _distribution_with_certificate(rules.ACCOUNT_ID), "InvalidViewerCertificate"),
]
def _key_administered_by(principal: str) -> dict[str, Any]:
    """A KMS key whose policy gives ``principal`` every KMS action, and S3 the use of the key."""
    return {"name": "key", "type": "aws:kms/key:Key", "inputs": {"policy": json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "kms:*", "Resource": "*"},
            {"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "kms:GenerateDataKey*",
             "Resource": "*"}]})}}


def _regional_domain(certificate_arn: str) -> dict[str, Any]:
    return {"name": "domain", "type": "aws:apigateway/domainName:DomainName",
            "inputs": {"domainName": "api.example.net", "regionalCertificateArn": certificate_arn,
                       "endpointConfiguration": {"types": "REGIONAL"}, "securityPolicy": "TLS_1_2"}}


def _api_gateway_settings(trusted: str) -> list[dict[str, Any]]:
    """The account's API Gateway settings naming a role that trusts ``trusted``."""
    return [{"name": "logs-role", "type": "aws:iam/role:Role", "inputs": {"assumeRolePolicy": _trust(trusted)}},
            {"name": "settings", "type": "aws:apigateway/account:Account",
             "inputs": {"cloudwatchRoleArn": "${logs-role.arn}"}}]


def _api_with_a_method(*, integrated: bool) -> list[dict[str, Any]]:
    """A REST API with a GET method on its root resource, integrated with a function or not yet."""
    resources = [{"name": "api", "type": "aws:apigateway/restApi:RestApi", "inputs": {"name": "api"}},
                 {"name": "method", "type": "aws:apigateway/method:Method",
                  "inputs": {"restApi": "${api.id}", "resourceId": "${api.rootResourceId}", "httpMethod": "GET",
                             "authorization": "NONE"}}]
    if integrated:
        resources.append({"name": "integration", "type": "aws:apigateway/integration:Integration",
                          "depends_on": ["method"],
                          "inputs": {"restApi": "${api.id}", "resourceId": "${api.rootResourceId}",
                                     "httpMethod": "GET", "type": "MOCK"}})
    return resources


def _deployed(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [*resources, {"name": "deployment", "type": "aws:apigateway/deployment:Deployment",
                         "depends_on": [r["name"] for r in resources if r["name"] != "api"],
                         "inputs": {"restApi": "${api.id}"}}]


def _logged_api(settings: bool, *, access_logs: bool = True, execution_logs: bool = False) -> list[dict[str, Any]]:
    """A REST API's stage with access logs (and method settings with execution logs), in an account
    whose API Gateway settings this stack sets first, or in a new one (``settings`` false)."""
    made = _api_gateway_settings("apigateway.amazonaws.com") if settings else []
    after = ["settings"] if settings else []
    stage: dict[str, Any] = {"restApi": "${api.id}", "deployment": "${deployment.id}", "stageName": "v1"}
    if access_logs:
        stage["accessLogSettings"] = {"destinationArn": "arn:aws:logs:us-east-1:123456789012:log-group:access",
                                      "format": "$context.requestId"}
    resources = [*made, *_api_with_a_method(integrated=True),
                 {"name": "deployment", "type": "aws:apigateway/deployment:Deployment",
                  "depends_on": ["method", "integration"], "inputs": {"restApi": "${api.id}"}},
                 {"name": "stage", "type": "aws:apigateway/stage:Stage", "depends_on": after, "inputs": stage}]
    if execution_logs:
        resources.append({"name": "all-methods", "type": "aws:apigateway/methodSettings:MethodSettings",
                          "depends_on": after, "inputs": {"restApi": "${api.id}", "stageName": "${stage.stageName}",
                                                          "methodPath": "*/*", "settings": {"loggingLevel": "ERROR"}}})
    return resources


CALL_CASES += [
    (rules.a_domain_name_takes_a_certificate_of_its_region_and_account,
     [_regional_domain("arn:aws:acm:eu-west-1:123456789012:certificate/0a1b")],
     [_regional_domain("arn:aws:acm:us-east-1:123456789012:certificate/0a1b")], "BadRequestException"),
    (rules.a_domain_name_takes_a_certificate_of_its_region_and_account,
     [_regional_domain(f"arn:aws:acm:us-east-1:{OTHER_ACCOUNT}:certificate/0a1b")],
     [_regional_domain("arn:aws:acm:us-east-1:123456789012:certificate/0a1b")], "BadRequestException"),
    (rules.a_key_policy_lets_its_account_change_it, [_key_administered_by("arn:aws:iam::123456789012:role/other")],
     [_key_administered_by("arn:aws:iam::123456789012:root")], "MalformedPolicyDocumentException"),
    (rules.firehose_needs_a_role_that_can_describe_its_kinesis_source,
     _delivery_stream_trusting("firehose.amazonaws.com", ("kinesis:GetRecords",)),
     _delivery_stream_trusting("firehose.amazonaws.com"), "InvalidArgumentException"),
    (rules.api_gateway_can_assume_the_accounts_cloudwatch_role, _api_gateway_settings("lambda.amazonaws.com"),
     _api_gateway_settings("apigateway.amazonaws.com"), "BadRequestException"),
    (rules.api_logging_needs_the_accounts_cloudwatch_role, _logged_api(False), _logged_api(True),
     "BadRequestException"),
    (rules.api_logging_needs_the_accounts_cloudwatch_role, _logged_api(False, access_logs=False, execution_logs=True),
     _logged_api(True, access_logs=False, execution_logs=True), "BadRequestException"),
]



def _offered_rule(type_token: str) -> rules.CallRule:
    """The catalogue's rule that ``type_token``'s service is reached only where AWS offers it."""
    (found,) = [c for c in rules.CALL_RULES[type_token] if c.__name__ == "a_service_is_reached_only_where_aws_offers_it"]
    return found


def _topic_rule_in(region: str) -> list[dict[str, Any]]:
    resources = _topic_rule_trusting("iot.amazonaws.com")
    resources[-1]["inputs"]["region"] = region
    return resources


CALL_CASES.append((_offered_rule("aws:iot/topicRule:TopicRule"), _topic_rule_in("af-south-1"),
                   _topic_rule_in("eu-west-1"), "RequestError"))

CALL_CASES += [
    (rules.a_deployment_needs_methods_with_integrations, _deployed(_api_with_a_method(integrated=True)[:1]),
     _deployed(_api_with_a_method(integrated=True)), "BadRequestException"),
    (rules.a_deployment_needs_methods_with_integrations, _deployed(_api_with_a_method(integrated=False)),
     _deployed(_api_with_a_method(integrated=True)), "BadRequestException"),
]

UNKNOWN_POLICY = "0d6e3f2a-5b1c-4e8d-9a7f-2c4b6d8e0f1a"


def _distribution_attaching(**policies: str) -> dict[str, Any]:
    """A distribution whose default cache behaviour attaches these policies (``responseHeadersPolicyId``...)."""
    return {"name": "distribution", "type": "aws:cloudfront/distribution:Distribution",
            "inputs": {**DISTRIBUTION_BASE, "defaultCacheBehavior": {
                **DISTRIBUTION_BASE["defaultCacheBehavior"], **policies}}}


HEADERS_POLICY = {"name": "headers", "type": "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy",
                  "inputs": {"securityHeadersConfig": {"contentTypeOptions": {"override": True}}}}
CALL_CASES += [
    (rules.a_distribution_attaches_policies_that_exist,
     [_distribution_attaching(responseHeadersPolicyId=UNKNOWN_POLICY)],
     [HEADERS_POLICY, _distribution_attaching(responseHeadersPolicyId="${headers.id}")], "NoSuchResponseHeadersPolicy"),
    (rules.a_distribution_attaches_policies_that_exist,
     [_distribution_attaching(cachePolicyId=UNKNOWN_POLICY)],
     [_distribution_attaching(cachePolicyId="658327ea-f89d-4fab-a63d-7e88639e58f6",  # AWS's CachingOptimized
                              responseHeadersPolicyId="67f7725c-6f97-4210-82d7-5512b31e9d03")],  # SecurityHeaders
     "NoSuchCachePolicy"),
]

CALL_IDS = ["aws-managed-key", "policy-admits-another-bucket", "overlapping-notification-filters",
            "function-without-s3-permission",
            "function-permits-another-bucket", "firehose-not-trusted", "dax-not-trusted", "lambda-not-trusted",
            "iot-not-trusted", "role-cannot-make-network-interfaces", "role-cannot-send-dead-letters",
            "visibility-shorter-than-the-function", "role-cannot-read-the-queue", "zone-not-delegated",
            "domain-on-a-pending-certificate", "distribution-on-a-pending-certificate",
            "legacy-logs-need-acls", "cloudfront-log-source-outside-us-east-1", "access-log-target-missing",
            "listener-of-another-account", "certificate-of-another-account", "api-gateway-not-trusted",
            "domain-certificate-of-another-region", "domain-certificate-of-another-account", "key-policy-locks-out",
            "firehose-role-cannot-describe-the-stream", "access-logs-in-a-new-account",
            "execution-logs-in-a-new-account", "iot-core-where-aws-offers-none",
            "deployment-of-an-api-without-methods", "deployment-of-a-method-without-integration",
            "response-headers-policy-that-does-not-exist", "cache-policy-that-does-not-exist"]

# (rule, what the owning account makes, the output naming it, what uses it, AWS error code): resources
# of one account are out of reach of another (each tenant of the service has its own account)
ACCOUNT_CASES = [
    (rules.records_go_in_this_accounts_zones, {"name": "zone", "type": "aws:route53/zone:Zone",
                                                "inputs": {"name": "example.net"}}, "zoneId",
     lambda zone: {"name": "record", "type": "aws:route53/record:Record",
                   "inputs": {"zoneId": zone, "name": "www.example.net", "type": "A", "ttl": 60,
                              "records": ["192.0.2.10"]}}, "NoSuchHostedZone"),
    (rules.security_groups_go_in_this_accounts_vpcs, {"name": "vpc", "type": "aws:ec2/vpc:Vpc",
                                                       "inputs": {"cidrBlock": "10.40.0.0/16"}}, "id",
     lambda vpc: {"name": "group", "type": "aws:ec2/securityGroup:SecurityGroup",
                  "inputs": {"vpcId": vpc, "description": "app"}}, "InvalidVpcID.NotFound"),
]


def _assume_role_in(workspace: Workspace, stack: str, account: str) -> None:
    workspace.pulumi("config", "set", "--path", "aws:assumeRoles[0].roleArn",
                     f"arn:aws:iam::{account}:role/serverless-cases-deployer", "--stack", stack)


@pytest.mark.engine
@pytest.mark.parametrize(("check", "owned", "output", "user", "code"), ACCOUNT_CASES,
                         ids=[c[0].__name__ for c in ACCOUNT_CASES])
def test_engine_refuses_a_resource_of_another_account(tmp_path: Path, pulumi_toolchain: str, check: Any,
                                                     owned: dict[str, Any], output: str, user: Any, code: str) -> None:
    workspace = Workspace(tmp_path, pulumi_toolchain, main=RAW_RESOURCE)
    workspace.pulumi("stack", "init", "owner")
    _assume_role_in(workspace, "owner", "111111111111")
    _configure(workspace, [owned])
    workspace.pulumi("up", "--yes")
    [record] = workspace.cloud_records("111111111111")  # made in the assumed role's account
    assert workspace.cloud_records() == []
    named = record.outputs[output]

    workspace.pulumi("stack", "init", "intruder")
    _assume_role_in(workspace, "intruder", "222222222222")
    _configure(workspace, [user(named)])
    refused = workspace.pulumi("up", "--yes", check=False)
    assert refused.returncode != 0 and code in refused.stdout + refused.stderr, refused.stdout[-3000:]
    assert workspace.cloud_records("222222222222") == []

    workspace.pulumi("stack", "select", "owner")
    _configure(workspace, [owned, user(named)])
    workspace.pulumi("up", "--yes")
    assert {r.type for r in workspace.cloud_records("111111111111")} == {owned["type"], user(named)["type"]}


@pytest.mark.engine
def test_engine_refuses_a_name_the_account_already_holds(tmp_path: Path, pulumi_toolchain: str) -> None:
    """SES keeps one identity per address in an account and region: a second stack making the
    same one is refused with SES's code, and is not told which stack holds it."""
    identity = {"name": "sender", "type": "aws:sesv2/emailIdentity:EmailIdentity",
                "inputs": {"emailIdentity": "welcome@myblog.example"}}
    workspace = Workspace(tmp_path, pulumi_toolchain, main=RAW_RESOURCE)
    workspace.pulumi("stack", "init", "first-blog")
    _configure(workspace, [identity])
    workspace.pulumi("up", "--yes")
    workspace.pulumi("stack", "init", "second-blog")
    _configure(workspace, [identity])
    refused = workspace.pulumi("up", "--yes", check=False)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "AlreadyExistsException: EmailIdentity 'welcome@myblog.example' already " \
        "exists in this account and region" in output, output[-3000:]
    assert "first-blog" not in output
    _configure(workspace, [{**identity, "inputs": {"emailIdentity": "hello@myblog.example"}}])
    workspace.pulumi("up", "--yes")
    assert len(workspace.cloud_records()) == 2


RESPONSE_HEADERS = "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy"


@pytest.mark.parametrize("type_token", list(rules.QUOTAS))
def test_an_account_quota_refuses_the_create_past_it(type_token: str) -> None:
    limits = rules.quota_limits({})
    quota = rules.QUOTAS[type_token]
    assert rules.quota_exceeded(type_token, quota.limit - 1, limits) is None
    refused = rules.quota_exceeded(type_token, quota.limit, limits)
    assert refused is not None and refused.code == quota.code and f": {quota.limit})" in refused.message
    raised = rules.quota_limits({rules.QUOTAS_ENV: json.dumps({type_token: quota.limit + 80})})
    assert rules.quota_exceeded(type_token, quota.limit, raised) is None


def test_an_account_quota_setting_that_cannot_work_is_refused_by_name() -> None:
    for raw in ("[20]", "{not json", json.dumps({"aws:s3/bucket:Bucket": 200}), json.dumps({RESPONSE_HEADERS: -1})):
        with pytest.raises(ValueError, match=rules.QUOTAS_ENV):
            rules.quota_limits({rules.QUOTAS_ENV: raw})


def test_an_account_quota_counts_every_region_of_the_account(tmp_path: Path) -> None:
    """CloudFront's resources are global: a policy made from eu-west-1 counts against the same
    quota as one made from us-east-1; another account's do not."""
    for region in ("us-east-1", "eu-west-1"):
        cloud = SandboxCloud(tmp_path, region=region)
        cloud.put(Record(RESPONSE_HEADERS, f"policy-{region}", f"urn:{region}", {}, {"id": f"policy-{region}"}))
    other = SandboxCloud(tmp_path, region="us-east-1", identity=rules.Identity.assuming(
        f"arn:aws:iam::{OTHER_ACCOUNT}:role/deployer"))
    other.put(Record(RESPONSE_HEADERS, "theirs", "urn:theirs", {}, {"id": "theirs"}))
    assert SandboxCloud(tmp_path, region="ap-south-1").count_in_account(RESPONSE_HEADERS) == 2
    assert other.count_in_account(RESPONSE_HEADERS) == 1


def test_mocks_refuse_the_create_past_an_account_quota() -> None:
    mocks = SandboxMocks()
    mocks.quota_limits = {**mocks.quota_limits, RESPONSE_HEADERS: 1}
    policy = {"securityHeadersConfig": {"contentTypeOptions": {"override": True}}}
    mocks.new_resource(pulumi.runtime.MockResourceArgs(typ=RESPONSE_HEADERS, name="first", inputs=policy))
    with pytest.raises(AwsRefusalError, match="TooManyResponseHeadersPolicies"):
        mocks.new_resource(pulumi.runtime.MockResourceArgs(typ=RESPONSE_HEADERS, name="second", inputs=policy))


@pytest.mark.engine
def test_engine_refuses_a_stack_past_the_accounts_quota(tmp_path: Path, pulumi_toolchain: str) -> None:
    """Stacks of one account share its quotas: with the account's response headers policies at
    a quota of 1, a second stack's policy is refused, and made once the quota is raised."""
    policy = {"name": "headers", "type": RESPONSE_HEADERS,
              "inputs": {"securityHeadersConfig": {"contentTypeOptions": {"override": True}}}}
    workspace = Workspace(tmp_path, pulumi_toolchain, main=RAW_RESOURCE)
    quota_of = {rules.QUOTAS_ENV: json.dumps({RESPONSE_HEADERS: 1})}
    workspace.pulumi("stack", "init", "first-site")
    _configure(workspace, [policy])
    workspace.pulumi("up", "--yes", **quota_of)
    workspace.pulumi("stack", "init", "second-site")
    _configure(workspace, [policy])
    refused = workspace.pulumi("up", "--yes", check=False, **quota_of)
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "TooManyResponseHeadersPolicies" in output, output[-3000:]
    assert len(workspace.cloud_records()) == 1
    workspace.pulumi("up", "--yes", **{rules.QUOTAS_ENV: json.dumps({RESPONSE_HEADERS: 2})})
    assert len(workspace.cloud_records()) == 2


def _guarded_secret(readers: list[str]) -> list[dict[str, Any]]:
    """A secret, its value, and a resource policy denying GetSecretValue to all but ``readers``."""
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "secretsmanager:GetSecretValue", "Resource": "*",
        "Condition": {"ArnNotLike": {"aws:PrincipalArn": readers}}}]})
    return [
        {"name": "secret", "type": "aws:secretsmanager/secret:Secret", "inputs": {}},
        {"name": "value", "type": "aws:secretsmanager/secretVersion:SecretVersion",
         "inputs": {"secretId": "${secret.arn}", "secretString": "s3cr3t"}},
        {"name": "policy", "type": "aws:secretsmanager/secretPolicy:SecretPolicy", "depends_on": ["value"],
         "inputs": {"secretArn": "${secret.arn}", "policy": policy}},
    ]


READ_CASES = [(rules.reading_a_secret_value_obeys_the_secret_policy,
               _guarded_secret(["arn:aws:iam::123456789012:role/signer"]),
               _guarded_secret(["arn:aws:iam::123456789012:role/signer", rules.CALLER_ARN]), "AccessDeniedException")]


@pytest.mark.engine
@pytest.mark.parametrize(("check", "refused", "accepted", "code"), READ_CASES, ids=["secret-policy-denies-the-deployer"])
def test_engine_refresh_fails_where_aws_denies_the_read(tmp_path: Path, pulumi_toolchain: str, check: Any,
                                                         refused: list[dict[str, Any]], accepted: list[dict[str, Any]],
                                                         code: str) -> None:
    workspace = _raw_stack(tmp_path, pulumi_toolchain)
    _configure(workspace, refused)
    workspace.pulumi("up", "--yes")  # the policy comes after the value: the read after creating it passes
    denied = workspace.pulumi("refresh", "--yes", check=False)
    assert denied.returncode != 0 and code in denied.stdout + denied.stderr, denied.stdout[-3000:]
    _configure(workspace, accepted)
    workspace.pulumi("up", "--yes")
    workspace.pulumi("refresh", "--yes", "--expect-no-changes")


@pytest.mark.engine
@pytest.mark.parametrize(("check", "refused", "accepted", "code"), CALL_CASES, ids=CALL_IDS)
def test_engine_refuses_at_the_call_what_aws_refuses(tmp_path: Path, pulumi_toolchain: str, check: Any,
                                                     refused: list[dict[str, Any]], accepted: list[dict[str, Any]],
                                                     code: str) -> None:
    workspace = _raw_stack(tmp_path, pulumi_toolchain)
    _configure(workspace, refused)
    failed = workspace.pulumi("up", "--yes", check=False)
    assert failed.returncode != 0 and code in failed.stdout + failed.stderr, failed.stdout[-3000:]
    assert refused[-1]["type"] not in {r.type for r in workspace.cloud_records()}
    workspace.pulumi("destroy", "--yes")
    _configure(workspace, accepted)
    workspace.pulumi("up", "--yes")
    assert accepted[-1]["type"] in {r.type for r in workspace.cloud_records()}


# (rule, resource type, its protected inputs, the same unprotected)
DELETE_CASES = [
    (rules.a_bucket_with_objects_is_not_deleted, "aws:s3/bucket:Bucket", {"forceDestroy": False},
     {"forceDestroy": True}, "BucketNotEmpty"),
    (rules.a_protected_table_is_not_deleted, "aws:dynamodb/table:Table",
     {"hashKey": "id", "attributes": [{"name": "id", "type": "S"}], "billingMode": "PAY_PER_REQUEST",
      "deletionProtectionEnabled": True}, {"deletionProtectionEnabled": False}, "ValidationException"),
    (rules.a_protected_user_pool_is_not_deleted, "aws:cognito/userPool:UserPool",
     {"deletionProtection": "ACTIVE"}, {"deletionProtection": "INACTIVE"}, "InvalidParameterException"),
]
DELETE_IDS = [case[0].__name__ for case in DELETE_CASES]


@pytest.mark.engine
@pytest.mark.parametrize(("check", "type_token", "protected", "unprotected", "code"), DELETE_CASES, ids=DELETE_IDS)
def test_engine_destroy_fails_on_a_protected_resource(tmp_path: Path, pulumi_toolchain: str, check: Any,
                                                      type_token: str, protected: dict[str, Any],
                                                      unprotected: dict[str, Any], code: str) -> None:
    workspace = _raw_stack(tmp_path, pulumi_toolchain)
    _configure(workspace, [{"name": "subject", "type": type_token, "inputs": protected}])
    workspace.pulumi("up", "--yes")
    workspace.use_buckets()  # a bucket holds what its users wrote
    refused = workspace.pulumi("destroy", "--yes", check=False)
    assert refused.returncode != 0 and code in refused.stdout + refused.stderr, refused.stdout[-3000:]
    assert [r.type for r in workspace.cloud_records()] == [type_token]
    _configure(workspace, [{"name": "subject", "type": type_token, "inputs": {**protected, **unprotected}}])
    workspace.pulumi("up", "--yes")
    workspace.pulumi("destroy", "--yes")
    assert workspace.cloud_records() == []


@pytest.mark.engine
def test_engine_keeps_a_policy_another_stacks_distribution_uses(tmp_path: Path, pulumi_toolchain: str) -> None:
    """Stacks share a response headers policy (CloudFront's are global, so across regions too):
    the stack that made it cannot delete it while another stack's distribution attaches it
    (ResponseHeadersPolicyInUse), and can once that distribution has let it go."""
    workspace = Workspace(tmp_path, pulumi_toolchain, main=RAW_RESOURCE)
    workspace.pulumi("stack", "init", "owner")
    _configure(workspace, [HEADERS_POLICY])
    workspace.pulumi("up", "--yes")
    [policy] = [r.id for r in workspace.cloud_records() if r.type == HEADERS_POLICY["type"]]
    workspace.pulumi("stack", "init", "user")
    workspace.pulumi("config", "set", "aws:region", "eu-west-1")
    _configure(workspace, [_distribution_attaching(responseHeadersPolicyId=policy)])
    workspace.pulumi("up", "--yes")
    refused = workspace.pulumi("destroy", "--yes", "--stack", "owner", check=False)
    assert refused.returncode != 0 and "ResponseHeadersPolicyInUse" in refused.stdout + refused.stderr, \
        refused.stdout[-3000:]
    assert HEADERS_POLICY["type"] in {r.type for r in workspace.cloud_records()}
    workspace.pulumi("destroy", "--yes", "--stack", "user")
    workspace.pulumi("destroy", "--yes", "--stack", "owner")
    assert workspace.cloud_records() == []


def test_a_cache_policy_in_use_is_not_deleted(tmp_path: Path) -> None:
    """The same rule for cache policies: judged on what the account holds, in every region."""
    token = "aws:cloudfront/cachePolicy:CachePolicy"
    SandboxCloud(tmp_path, region="us-east-1").put(Record(token, UNKNOWN_POLICY, "urn:owner", {}, {"id": UNKNOWN_POLICY}))
    distribution = _distribution_attaching(cachePolicyId=UNKNOWN_POLICY)
    user = SandboxCloud(tmp_path, region="ap-south-1")
    user.put(Record(distribution["type"], "E2ABCDEF", "urn:user", distribution["inputs"],
                    {**distribution["inputs"], "id": "E2ABCDEF"}))
    owner = SandboxCloud(tmp_path, region="us-east-1")
    [refused] = rules.delete_violations(token, {"id": UNKNOWN_POLICY}, owner)
    assert refused.code == "CachePolicyInUse"
    user.delete(distribution["type"], "E2ABCDEF")
    assert rules.delete_violations(token, {"id": UNKNOWN_POLICY}, owner) == []


def test_every_rule_and_effect_of_the_catalogue_is_tested_here() -> None:
    assert {c.__name__ for cs in rules.DELETE_RULES.values() for c in cs} == \
        {*DELETE_IDS, rules.a_policy_in_use_is_not_deleted.__name__}
    catalogued = {check.__name__ for checks in rules.RULES.values() for check in checks}
    assert catalogued == set(IDS)
    assert {c.__name__ for cs in rules.CALL_RULES.values() for c in cs} == \
        {case[0].__name__ for case in [*CALL_CASES, *READ_CASES, *ACCOUNT_CASES]}
    assert {c.__name__ for cs in rules.READ_RULES.values() for c in cs} == {case[0].__name__ for case in READ_CASES}
    assert {change.__name__ for changes in rules.EFFECTS.values() for change in changes} == set(EFFECT_IDS)


@pytest.mark.engine
@pytest.mark.parametrize(("change", "type_token", "changed", "read_back", "kept"), EFFECTS, ids=EFFECT_IDS)
def test_what_aws_really_keeps_is_drift_on_refresh(tmp_path: Path, pulumi_toolchain: str, change: Any,
                                                   type_token: str, changed: dict[str, Any], read_back: Any,
                                                   kept: dict[str, Any]) -> None:
    workspace = _raw_stack(tmp_path, pulumi_toolchain)
    _configure(workspace, [{"name": "subject", "type": type_token, "inputs": changed}])
    workspace.pulumi("up", "--yes")
    drift = workspace.pulumi("refresh", "--yes", "--expect-no-changes", check=False)
    assert drift.returncode != 0, "refresh saw no drift"
    [record] = workspace.cloud_records()
    assert record.outputs["viewerCertificate"] == read_back
    _configure(workspace, [{"name": "subject", "type": type_token, "inputs": kept}])
    workspace.pulumi("up", "--yes")
    workspace.pulumi("refresh", "--yes", "--expect-no-changes")


@pytest.mark.parametrize(("check", "type_token", "refused", "accepted", "code"), CASES, ids=IDS)
def test_rule_refuses_with_the_aws_error_code(check: rules.Rule, type_token: str, refused: dict[str, Any],
                                              accepted: dict[str, Any], code: str) -> None:
    error = check(refused)
    assert error is not None and error.code == code and error.message
    assert check(accepted) is None
    assert [e.code for e in rules.violations(type_token, refused)] == [code]
    assert rules.violations(type_token, accepted) == []


@pytest.mark.parametrize(("type_token", "without", "with_it"), [
    ("aws:iot/topicRule:TopicRule", "af-south-1", "eu-central-1"),
    ("aws:dax/subnetGroup:SubnetGroup", "me-south-1", "eu-west-1"),
    ("aws:dax/cluster:Cluster", "me-central-1", "eu-west-1"),
    ("aws:sesv2/emailIdentity:EmailIdentity", "ap-east-1", "ap-east-2"),
])
def test_a_service_is_refused_only_in_the_regions_aws_does_not_offer_it(tmp_path: Path, type_token: str, without: str,
                                                                          with_it: str) -> None:
    cloud = SandboxCloud(tmp_path, region=without)
    [error] = rules.call_violations(type_token, {"region": without}, cloud)
    assert error.code == "RequestError" and f"is not offered in {without}" in error.message
    assert without in rules.regions_without(rules.REGIONAL_SERVICES[type_token][0])
    assert rules.call_violations(type_token, {"region": with_it}, cloud) == []
    # Not judged: a region botocore does not know, and the other partitions' regions.
    for region in ("xx-future-1", "cn-north-1", "us-gov-west-1"):
        assert rules.call_violations(type_token, {"region": region}, cloud) == []


def test_a_value_not_known_yet_is_not_judged() -> None:
    assert rules.threat_protection_needs_the_plus_tier(
        {"userPoolAddOns": {"advancedSecurityMode": "ENFORCED"}, "userPoolTier": rules.UNKNOWN}) is None
    assert rules.bucket_names_follow_the_naming_rules({"bucket": rules.UNKNOWN}) is None


@pytest.mark.parametrize(("check", "type_token", "refused", "accepted", "code"), CASES[3:4], ids=IDS[3:4])
def test_mocks_refuse_what_the_rules_refuse(check: rules.Rule, type_token: str, refused: dict[str, Any],
                                            accepted: dict[str, Any], code: str) -> None:
    mocks = SandboxMocks()
    with pytest.raises(AwsRefusalError, match=code):
        mocks.new_resource(pulumi.runtime.MockResourceArgs(typ=type_token, name="subject", inputs=refused))
    mocks.new_resource(pulumi.runtime.MockResourceArgs(typ=type_token, name="subject", inputs=accepted))


@pytest.mark.engine
@pytest.mark.parametrize(("check", "type_token", "refused", "accepted", "code"), CASES, ids=IDS)
def test_engine_refuses_before_creating_anything(tmp_path: Path, pulumi_toolchain: str, check: rules.Rule,
                                                 type_token: str, refused: dict[str, Any], accepted: dict[str, Any],
                                                 code: str) -> None:
    workspace = _raw_stack(tmp_path, pulumi_toolchain)
    _configure(workspace, [{"name": "subject", "type": type_token, "inputs": refused}])
    refused_up = workspace.pulumi("up", "--yes", check=False)
    assert refused_up.returncode != 0
    assert code in refused_up.stdout + refused_up.stderr, refused_up.stdout[-3000:]
    assert workspace.cloud_records() == []
    _configure(workspace, [{"name": "subject", "type": type_token, "inputs": accepted}])
    workspace.pulumi("up", "--yes")
    assert [r.type for r in workspace.cloud_records()] == [type_token]


@pytest.mark.engine
def test_engine_refuses_an_autoname_past_the_names_limit(tmp_path: Path, pulumi_toolchain: str) -> None:
    """The AWS provider autonames <logical name>-<7 random> and never shortens the logical name: past
    the name's limit (32 for a target group) it refuses the resource at its check. The sandbox
    shortened it and accepted the resource."""
    workspace = _raw_stack(tmp_path, pulumi_toolchain)
    group = {"type": "aws:lb/targetGroup:TargetGroup", "inputs": {"port": 80, "protocol": "HTTP", "vpcId": "vpc-0a1b"}}
    _configure(workspace, [{"name": "software-updates-demo-servers", **group}])
    refused = workspace.pulumi("up", "--yes", check=False)
    assert refused.returncode != 0
    assert ("could not make instance of 'aws:lb/targetGroup:TargetGroup': name 'software-updates-demo-servers-' "
            "plus 7 random chars is longer than maximum length 32") in refused.stdout, refused.stdout[-3000:]
    assert workspace.cloud_records() == []
    _configure(workspace, [{"name": "software-updates-demo-tg", **group}])
    workspace.pulumi("up", "--yes")
    [record] = workspace.cloud_records()
    assert len(record.outputs["name"]) == 32 and record.outputs["name"].startswith("software-updates-demo-tg-")


def _raw_stack(tmp_path: Path, toolchain: str) -> Workspace:
    """A stack of the test program that registers resources exactly as configured, in a new account
    (API Gateway's settings not set up)."""
    workspace = Workspace(tmp_path, toolchain, main=RAW_RESOURCE, account_set_up=False)
    workspace.pulumi("stack", "init", "subject")
    return workspace


def _configure(workspace: Workspace, resources: list[dict[str, Any]]) -> None:
    """What the test program (tests/programs/raw_resource) registers."""
    workspace.pulumi("config", "set", "serverless-cases:resources", json.dumps(resources))


def test_a_type_the_sandbox_does_not_model_is_refused_loudly() -> None:
    from sandbox import synthesis

    [(_, reason)] = synthesis.check("aws:gamelift/fleet:Fleet", {})
    assert reason.startswith("NotImplemented: the sandbox does not model aws:gamelift/fleet:Fleet")
    with pytest.raises(AwsRefusalError, match="NotImplemented"):
        SandboxMocks().new_resource(pulumi.runtime.MockResourceArgs(typ="aws:gamelift/fleet:Fleet", name="x", inputs={}))


def test_the_readme_publishes_every_modelled_type_rule_and_effect() -> None:
    from sandbox import synthesis

    readme = (REPO / "README.md").read_text()
    assert rules.catalogue_markdown() in readme, "the README's catalogue differs from sandbox/rules.py"
    assert [t for t in synthesis.TYPES if f"`{t}`" not in readme] == [], "modelled types missing from the README"


def test_a_role_the_sandbox_does_not_hold_is_not_judged(tmp_path: Path) -> None:
    """A role made outside the sandbox's stacks (its policies unknown here) is given the benefit of
    the doubt, as an AWS managed policy is; a role the sandbox holds is judged."""
    cloud = SandboxCloud(tmp_path)
    elsewhere = "arn:aws:iam::123456789012:role/made-elsewhere"
    in_a_vpc = {"role": elsewhere, "vpcConfig": {"subnetIds": ["subnet-0a1b2c3d"]},
                "deadLetterConfig": {"targetArn": "arn:aws:sqs:us-east-1:123456789012:dead-letters"}}
    assert rules.a_function_needs_a_role_that_can_reach_its_network_and_dead_letters(in_a_vpc, cloud) is None
    assert rules.lambda_can_assume_the_functions_role(in_a_vpc, cloud) is None

    rid, role = synthesis.create("aws:iam/role:Role", "held", {"assumeRolePolicy": _trust("ec2.amazonaws.com")})
    cloud.put(Record(type="aws:iam/role:Role", id=rid, urn="urn:pulumi:test::held", inputs={}, outputs=role))
    held = {**in_a_vpc, "role": role["arn"]}
    refused = rules.a_function_needs_a_role_that_can_reach_its_network_and_dead_letters(held, cloud)
    assert refused is not None and refused.code == "InvalidParameterValueException"
    assert "CreateNetworkInterface on EC2" in refused.message
    assert rules.lambda_can_assume_the_functions_role(held, cloud) is not None
