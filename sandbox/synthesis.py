"""What AWS would answer: ids, autonames and computed attributes for the resource types
the cases use, plus the invokes the components call.

This is the single source of that knowledge. The sandbox provider plugin
(:mod:`sandbox.provider`) and the Pulumi mocks of the unit tests (:mod:`sandbox.mocks`)
both call it, so a component sees the same ARNs, names and endpoints under mocks, under
the sandbox engine run, and (in shape) on AWS.

Everything here is deterministic: ids and suffixes are derived from the resource's type,
logical name and inputs (and the engine's random seed when the engine gives one), never
from the clock or a random generator.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox import rules

ACCOUNT_ID = rules.ACCOUNT_ID
DEFAULT_REGION = "us-east-1"
PARTITION = "aws"
UNKNOWN = rules.UNKNOWN  # the engine's marker for unknown values
DEFAULTS_KEY = "__defaults"  # where autonamed properties are recorded, as the AWS provider does

Props = dict[str, Any]


def _digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


def _alnum(seed: str, length: int, alphabet: str = string.ascii_lowercase + string.digits) -> str:
    value = int(_digest(seed), 16)
    out = []
    for _ in range(length):
        value, rem = divmod(value, len(alphabet))
        out.append(alphabet[rem])
    return "".join(out)


def _uuid(seed: str) -> str:
    h = _digest(seed)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


@dataclass(frozen=True)
class Context:
    """What a synthesizer may look at."""

    type: str
    name: str  # the logical (URN) name
    inputs: Mapping[str, Any]
    region: str
    account: str = ACCOUNT_ID
    scope: str = ""
    """What makes this resource unique beyond its type and name (the provider passes the URN)."""

    @property
    def seed(self) -> str:
        return _digest(self.type, self.name, self.scope)

    def get(self, key: str, default: Any = None) -> Any:
        value = self.inputs.get(key, default)
        return default if value == UNKNOWN else value

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{PARTITION}:{service}:{self.region if region else ''}:"
            f"{self.account if account else ''}:{resource}"
        )


Synth = Callable[[Context, str], Props]  # (context, id) -> computed attributes


@dataclass(frozen=True)
class TypeSpec:
    """How one resource type is named, identified and described by AWS."""

    name_property: str | None = None  # autonamed when not given
    name_max: int = 63
    name_lower: bool = False
    id_of: Callable[[Context], str] | None = None  # default: the name property
    computed: Synth = lambda ctx, rid: {}
    replace_on: frozenset[str] = field(default_factory=frozenset)
    settings: bool = False
    """Settings of the account and region, not a resource: a create overwrites what is set (by hand or
    by another stack), as AWS's update of them does."""


def _prefixed(prefix: str, length: int = 17) -> Callable[[Context], str]:
    return lambda ctx: f"{prefix}{_alnum(ctx.seed, length, '0123456789abcdef')}"


def _random_id(length: int = 10) -> Callable[[Context], str]:
    return lambda ctx: _alnum(ctx.seed, length)


def _uuid_id(ctx: Context) -> str:
    return _uuid(ctx.seed)


def _cloudfront_id(ctx: Context) -> str:
    return "E" + _alnum(ctx.seed, 13, string.ascii_uppercase + string.digits)


def _s3_bucket(ctx: Context, rid: str) -> Props:
    return {
        "arn": f"arn:{PARTITION}:s3:::{rid}",
        "bucketDomainName": f"{rid}.s3.amazonaws.com",
        "bucketRegionalDomainName": f"{rid}.s3.{ctx.region}.amazonaws.com",
        "bucketRegion": ctx.region,
        "region": ctx.region,
        "hostedZoneId": "Z3AQBSTGFYJSTF",
    }


def _table(ctx: Context, rid: str) -> Props:
    arn = ctx.arn("dynamodb", f"table/{rid}")
    out: Props = {"arn": arn}
    if ctx.get("streamEnabled"):
        label = "2026-01-01T00:00:00.000"
        out |= {"streamArn": f"{arn}/stream/{label}", "streamLabel": label}
    return out


def _function(ctx: Context, rid: str) -> Props:
    arn = ctx.arn("lambda", f"function:{rid}")
    invoke = f"arn:{PARTITION}:apigateway:{ctx.region}:lambda:path/2015-03-31/functions/{arn}/invocations"
    return {
        "arn": arn,
        "invokeArn": invoke,
        "qualifiedArn": f"{arn}:$LATEST",
        "qualifiedInvokeArn": invoke.replace(arn, f"{arn}:$LATEST"),
        "version": "$LATEST",
        "lastModified": "2026-01-01T00:00:00.000+0000",
        "sourceCodeSize": 1024,
    }


def _role(ctx: Context, rid: str) -> Props:
    path = ctx.get("path") or "/"
    return {
        "arn": f"arn:{PARTITION}:iam::{ctx.account}:role{path}{rid}",
        "uniqueId": "AROA" + _alnum(ctx.seed, 17, string.ascii_uppercase + string.digits),
        "createDate": "2026-01-01T00:00:00Z",
    }


def _rest_api(ctx: Context, rid: str) -> Props:
    return {
        "arn": f"arn:{PARTITION}:apigateway:{ctx.region}::/restapis/{rid}",
        "executionArn": ctx.arn("execute-api", rid),
        "rootResourceId": _alnum(ctx.seed + "root", 10),
        "createdDate": "2026-01-01T00:00:00Z",
    }


def _stage(ctx: Context, rid: str) -> Props:
    api, stage = ctx.get("restApi", "api"), ctx.get("stageName", "stage")
    return {
        "arn": f"arn:{PARTITION}:apigateway:{ctx.region}::/restapis/{api}/stages/{stage}",
        "executionArn": ctx.arn("execute-api", f"{api}/{stage}"),
        "invokeUrl": f"https://{api}.execute-api.{ctx.region}.amazonaws.com/{stage}",
    }


def _user_pool(ctx: Context, rid: str) -> Props:
    return {
        "arn": ctx.arn("cognito-idp", f"userpool/{rid}"),
        "endpoint": f"cognito-idp.{ctx.region}.amazonaws.com/{rid}",
        "creationDate": "2026-01-01T00:00:00Z",
        "lastModifiedDate": "2026-01-01T00:00:00Z",
        "estimatedNumberOfUsers": 0,
    }


def _dax_cluster(ctx: Context, rid: str) -> Props:
    tls = ctx.get("clusterEndpointEncryptionType") == "TLS"
    address = f"{rid}.{_alnum(ctx.seed, 6)}.dax-clusters.{ctx.region}.amazonaws.com"
    port = 9111 if tls else 8111
    scheme = "daxs" if tls else "dax"
    nodes = int(ctx.get("replicationFactor") or 1)
    return {
        "arn": ctx.arn("dax", f"cache/{rid}"),
        "clusterAddress": address,
        "port": port,
        "configurationEndpoint": f"{scheme}://{address}:{port}" if tls else f"{address}:{port}",
        "nodes": [
            {"id": f"{rid}-{chr(97 + i)}", "address": f"{rid}-{chr(97 + i)}.{address}", "port": port,
             "availabilityZone": f"{ctx.region}{chr(97 + i % 3)}"}
            for i in range(nodes)
        ],
    }


def _distribution(ctx: Context, rid: str) -> Props:
    return {
        "arn": f"arn:{PARTITION}:cloudfront::{ctx.account}:distribution/{rid}",
        "domainName": f"d{_alnum(ctx.seed, 13)}.cloudfront.net",
        "hostedZoneId": "Z2FDTNDATAQYW2",
        "status": "Deployed",
        "etag": "E" + _alnum(ctx.seed + "etag", 13, string.ascii_uppercase + string.digits),
        "callerReference": f"terraform-{_alnum(ctx.seed, 20, '0123456789')}",
        "lastModifiedTime": "2026-01-01 00:00:00 +0000 UTC",
        "inProgressValidationBatches": 0,
    }


def _etag(ctx: Context, rid: str) -> Props:
    return {"etag": "E" + _alnum(ctx.seed + "etag", 13, string.ascii_uppercase + string.digits)}


def _queue(ctx: Context, rid: str) -> Props:
    name = ctx.get("name")
    return {"arn": ctx.arn("sqs", name), "url": rid}


def _vpc(ctx: Context, rid: str) -> Props:
    return {
        "arn": ctx.arn("ec2", f"vpc/{rid}"),
        "ownerId": ctx.account,
        "defaultSecurityGroupId": _prefixed("sg-")(ctx),
        "mainRouteTableId": _prefixed("rtb-")(ctx),
        "defaultRouteTableId": _prefixed("rtb-")(ctx),
        "defaultNetworkAclId": _prefixed("acl-")(ctx),
        "dhcpOptionsId": _prefixed("dopt-")(ctx),
    }


def _ec2_arn(kind: str) -> Synth:
    return lambda ctx, rid: {"arn": ctx.arn("ec2", f"{kind}/{rid}"), "ownerId": ctx.account}


def _vpc_endpoint(ctx: Context, rid: str) -> Props:
    out = _ec2_arn("vpc-endpoint")(ctx, rid) | {"state": "available"}
    if ctx.get("vpcEndpointType", "Gateway") == "Gateway":
        out["prefixListId"] = "pl-" + _alnum(ctx.seed, 8, "0123456789abcdef")
    else:
        service = str(ctx.get("serviceName", "")).rsplit(".", 1)[-1]
        out["dnsEntries"] = [{"dnsName": f"{rid}.{service}.{ctx.region}.vpce.amazonaws.com",
                              "hostedZoneId": "Z7HUB22UULQXV"}]
        out["networkInterfaceIds"] = [_prefixed("eni-")(ctx)]
    return out


def _simple_arn(service: str, kind: str, *, region: bool = True) -> Synth:
    return lambda ctx, rid: {"arn": ctx.arn(service, f"{kind}{rid}", region=region)}


def _name_id(prop: str) -> Callable[[Context], str]:
    return lambda ctx: str(ctx.get(prop))


def _bucket_sub_id(ctx: Context) -> str:
    return str(ctx.get("bucket"))


_S3_SUB = TypeSpec(id_of=_bucket_sub_id, replace_on=frozenset({"bucket", "expectedBucketOwner"}))

TYPES: dict[str, TypeSpec] = {
    # storage
    "aws:s3/bucket:Bucket": TypeSpec(
        name_property="bucket", name_lower=True, computed=_s3_bucket,
        replace_on=frozenset({"bucket", "bucketPrefix", "objectLockEnabled"})),
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": _S3_SUB,
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": _S3_SUB,
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": _S3_SUB,
    "aws:s3/bucketVersioning:BucketVersioning": _S3_SUB,
    "aws:s3/bucketPolicy:BucketPolicy": _S3_SUB,
    "aws:s3/bucketNotification:BucketNotification": _S3_SUB,
    "aws:s3/bucketAccelerateConfiguration:BucketAccelerateConfiguration": _S3_SUB,
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": _S3_SUB,
    "aws:s3/bucketCorsConfiguration:BucketCorsConfiguration": _S3_SUB,
    "aws:s3/bucketLogging:BucketLogging": _S3_SUB,
    "aws:dynamodb/table:Table": TypeSpec(
        name_property="name", name_max=255, computed=_table,
        replace_on=frozenset({"name", "hashKey", "rangeKey", "localSecondaryIndexes"})),
    # compute
    "aws:lambda/function:Function": TypeSpec(
        name_property="name", name_max=64, computed=_function, replace_on=frozenset({"name", "packageType"})),
    "aws:lambda/permission:Permission": TypeSpec(
        name_property="statementId", name_max=100, id_of=_name_id("statementId"),
        replace_on=frozenset({"action", "function", "principal", "sourceArn", "sourceAccount", "statementId"})),
    "aws:lambda/eventSourceMapping:EventSourceMapping": TypeSpec(
        id_of=_uuid_id,
        computed=lambda ctx, rid: {"uuid": rid, "state": "Enabled", "lastModified": "2026-01-01T00:00:00Z",
                                   "functionArn": ctx.arn("lambda", f"function:{ctx.get('functionName')}"),
                                   "arn": ctx.arn("lambda", f"event-source-mapping:{rid}")},
        replace_on=frozenset({"eventSourceArn", "startingPosition"})),
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": TypeSpec(
        id_of=_name_id("functionName"), replace_on=frozenset({"functionName", "qualifier"})),
    "aws:lambda/layerVersion:LayerVersion": TypeSpec(
        id_of=lambda ctx: ctx.arn("lambda", f"layer:{ctx.get('layerName')}:1"),
        computed=lambda ctx, rid: {"arn": rid, "layerArn": rid.rsplit(":", 1)[0], "version": "1"},
        replace_on=frozenset({"layerName", "code", "sourceCodeHash", "compatibleRuntimes"})),
    "aws:cloudwatch/logStream:LogStream": TypeSpec(
        name_property="name", name_max=512,
        computed=lambda ctx, rid: {"arn": ctx.arn("logs", f"log-group:{ctx.get('logGroupName')}:log-stream:{rid}")},
        replace_on=frozenset({"name", "logGroupName"})),
    "aws:cloudwatch/logDeliverySource:LogDeliverySource": TypeSpec(
        name_property="name", name_max=60,
        computed=lambda ctx, rid: {"arn": ctx.arn("logs", f"delivery-source:{rid}")},
        replace_on=frozenset({"name", "logType", "resourceArn"})),
    "aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination": TypeSpec(
        name_property="name", name_max=60,
        computed=lambda ctx, rid: {"arn": ctx.arn("logs", f"delivery-destination:{rid}"),
                                   "deliveryDestinationType": "S3"},
        replace_on=frozenset({"name"})),
    "aws:cloudwatch/logDelivery:LogDelivery": TypeSpec(
        id_of=_random_id(16), computed=lambda ctx, rid: {"arn": ctx.arn("logs", f"delivery:{rid}")},
        replace_on=frozenset({"deliverySourceName", "deliveryDestinationArn"})),
    "aws:cloudwatch/logGroup:LogGroup": TypeSpec(
        name_property="name", name_max=512,
        computed=lambda ctx, rid: {"arn": ctx.arn("logs", f"log-group:{rid}")},
        replace_on=frozenset({"name", "namePrefix", "logGroupClass"})),
    # identity
    "aws:iam/role:Role": TypeSpec(
        name_property="name", name_max=64, computed=_role, replace_on=frozenset({"name", "namePrefix", "path"})),
    "aws:iam/rolePolicy:RolePolicy": TypeSpec(
        name_property="name", name_max=128, id_of=lambda ctx: f"{ctx.get('role')}:{ctx.get('name')}",
        replace_on=frozenset({"name", "namePrefix", "role"})),
    "aws:iam/policy:Policy": TypeSpec(
        name_property="name", name_max=128,
        id_of=lambda ctx: f"arn:{PARTITION}:iam::{ctx.account}:policy/{ctx.get('name')}",
        computed=lambda ctx, rid: {"arn": rid, "policyId": "ANPA" + _alnum(ctx.seed, 17, string.ascii_uppercase)},
        replace_on=frozenset({"name", "namePrefix", "path"})),
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": TypeSpec(
        id_of=lambda ctx: f"{ctx.get('role')}-{_alnum(ctx.seed, 8)}", replace_on=frozenset({"role", "policyArn"})),
    "aws:cognito/userPool:UserPool": TypeSpec(
        name_property="name", name_max=128, id_of=lambda ctx: f"{ctx.region}_{_alnum(ctx.seed, 9, string.ascii_letters + string.digits)}",
        computed=_user_pool, replace_on=frozenset({"aliasAttributes", "usernameAttributes"})),
    "aws:cognito/userGroup:UserGroup": TypeSpec(
        id_of=lambda ctx: f"{ctx.get('userPoolId')}/{ctx.get('name')}", replace_on=frozenset({"name", "userPoolId"})),
    "aws:cognito/userPoolClient:UserPoolClient": TypeSpec(
        name_property="name", name_max=128, id_of=_random_id(26), replace_on=frozenset({"userPoolId", "generateSecret"})),
    "aws:cognito/identityPool:IdentityPool": TypeSpec(
        id_of=lambda ctx: f"{ctx.region}:{_uuid(ctx.seed)}",
        computed=lambda ctx, rid: {"arn": ctx.arn("cognito-identity", f"identitypool/{rid}")},
        replace_on=frozenset({"developerProviderName"})),
    "aws:cognito/identityPoolRoleAttachment:IdentityPoolRoleAttachment": TypeSpec(
        id_of=_name_id("identityPoolId"), replace_on=frozenset({"identityPoolId"})),
    # api gateway
    "aws:apigateway/restApi:RestApi": TypeSpec(name_property="name", name_max=1024, id_of=_random_id(10), computed=_rest_api),
    "aws:apigateway/resource:Resource": TypeSpec(
        id_of=_random_id(6), computed=lambda ctx, rid: {"path": "/" + str(ctx.get("pathPart", ""))},
        replace_on=frozenset({"restApi"})),
    "aws:apigateway/method:Method": TypeSpec(
        id_of=lambda ctx: f"agm-{ctx.get('restApi')}-{ctx.get('resourceId')}-{ctx.get('httpMethod')}",
        replace_on=frozenset({"restApi", "resourceId", "httpMethod"})),
    "aws:apigateway/integration:Integration": TypeSpec(
        id_of=lambda ctx: f"agi-{ctx.get('restApi')}-{ctx.get('resourceId')}-{ctx.get('httpMethod')}",
        replace_on=frozenset({"restApi", "resourceId", "httpMethod"})),
    "aws:apigateway/methodResponse:MethodResponse": TypeSpec(
        id_of=lambda ctx: f"agmr-{ctx.get('restApi')}-{ctx.get('resourceId')}-{ctx.get('httpMethod')}-{ctx.get('statusCode')}",
        replace_on=frozenset({"restApi", "resourceId", "httpMethod", "statusCode"})),
    "aws:apigateway/authorizer:Authorizer": TypeSpec(
        id_of=_random_id(6),
        computed=lambda ctx, rid: {"arn": f"arn:{PARTITION}:apigateway:{ctx.region}::/restapis/{ctx.get('restApi')}/authorizers/{rid}"},
        replace_on=frozenset({"restApi"})),
    "aws:apigateway/deployment:Deployment": TypeSpec(
        id_of=_random_id(6),
        computed=lambda ctx, rid: {"createdDate": "2026-01-01T00:00:00Z"},
        replace_on=frozenset({"restApi", "triggers"})),
    "aws:apigateway/stage:Stage": TypeSpec(
        id_of=lambda ctx: f"ags-{ctx.get('restApi')}-{ctx.get('stageName')}", computed=_stage,
        replace_on=frozenset({"restApi", "stageName"})),
    "aws:apigateway/methodSettings:MethodSettings": TypeSpec(
        id_of=lambda ctx: f"{ctx.get('restApi')}-{ctx.get('stageName')}-{ctx.get('methodPath')}",
        replace_on=frozenset({"restApi", "stageName", "methodPath"})),
    "aws:apigateway/account:Account": TypeSpec(id_of=lambda ctx: "api-gateway-account", settings=True),
    # networking
    "aws:ec2/vpc:Vpc": TypeSpec(id_of=_prefixed("vpc-"), computed=_vpc, replace_on=frozenset({"cidrBlock", "instanceTenancy"})),
    "aws:ec2/subnet:Subnet": TypeSpec(
        id_of=_prefixed("subnet-"), computed=_ec2_arn("subnet"),
        replace_on=frozenset({"vpcId", "cidrBlock", "availabilityZone", "availabilityZoneId"})),
    "aws:ec2/routeTable:RouteTable": TypeSpec(id_of=_prefixed("rtb-"), computed=_ec2_arn("route-table"), replace_on=frozenset({"vpcId"})),
    "aws:ec2/routeTableAssociation:RouteTableAssociation": TypeSpec(
        id_of=_prefixed("rtbassoc-"), replace_on=frozenset({"subnetId", "gatewayId"})),
    "aws:ec2/securityGroup:SecurityGroup": TypeSpec(
        name_property="name", name_max=255, id_of=_prefixed("sg-"), computed=_ec2_arn("security-group"),
        replace_on=frozenset({"name", "namePrefix", "vpcId", "description"})),
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": TypeSpec(
        id_of=_prefixed("sgr-"), computed=_ec2_arn("security-group-rule"), replace_on=frozenset({"securityGroupId"})),
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": TypeSpec(
        id_of=_prefixed("sgr-"), computed=_ec2_arn("security-group-rule"), replace_on=frozenset({"securityGroupId"})),
    "aws:ec2/vpcEndpoint:VpcEndpoint": TypeSpec(
        id_of=_prefixed("vpce-"), computed=_vpc_endpoint,
        replace_on=frozenset({"vpcId", "serviceName", "vpcEndpointType"})),
    # dax
    "aws:dax/cluster:Cluster": TypeSpec(
        id_of=_name_id("clusterName"), computed=_dax_cluster,
        replace_on=frozenset({"clusterName", "nodeType", "serverSideEncryption", "subnetGroupName",
                              "iamRoleArn", "availabilityZones", "clusterEndpointEncryptionType"})),
    "aws:dax/subnetGroup:SubnetGroup": TypeSpec(name_property="name", name_max=255, name_lower=True, replace_on=frozenset({"name"})),
    "aws:dax/parameterGroup:ParameterGroup": TypeSpec(name_property="name", name_max=255, name_lower=True, replace_on=frozenset({"name"})),
    # edge
    "aws:wafv2/webAcl:WebAcl": TypeSpec(
        name_property="name", name_max=128,
        id_of=lambda ctx: _uuid(ctx.seed),
        computed=lambda ctx, rid: {
            "arn": f"arn:{PARTITION}:wafv2:{ctx.region}:{ctx.account}:"
                   f"{'global' if ctx.get('scope') == 'CLOUDFRONT' else 'regional'}/webacl/{ctx.get('name')}/{rid}",
            "capacity": 702, "lockToken": _uuid(ctx.seed + "lock")},
        replace_on=frozenset({"name", "scope"})),
    "aws:wafv2/webAclAssociation:WebAclAssociation": TypeSpec(
        id_of=lambda ctx: f"{ctx.get('webAclArn')},{ctx.get('resourceArn')}",
        replace_on=frozenset({"webAclArn", "resourceArn"})),
    "aws:cloudfront/vpcOrigin:VpcOrigin": TypeSpec(
        id_of=lambda ctx: "vo_" + _alnum(ctx.seed, 22, string.ascii_letters + string.digits),
        computed=lambda ctx, rid: {"arn": f"arn:{PARTITION}:cloudfront::{ctx.account}:vpcorigin/{rid}", "etag": "E1"}),
    "aws:cloudfront/distribution:Distribution": TypeSpec(id_of=_cloudfront_id, computed=_distribution),
    "aws:cloudfront/originAccessControl:OriginAccessControl": TypeSpec(
        name_property="name", name_max=64, id_of=_cloudfront_id, computed=_etag),
    "aws:cloudfront/originAccessIdentity:OriginAccessIdentity": TypeSpec(
        id_of=_cloudfront_id,
        computed=lambda ctx, rid: _etag(ctx, rid) | {
            "iamArn": f"arn:{PARTITION}:iam::cloudfront:user/CloudFront Origin Access Identity {rid}",
            "cloudfrontAccessIdentityPath": f"origin-access-identity/cloudfront/{rid}",
            "s3CanonicalUserId": _digest(ctx.seed, "canonical")[:64]}),
    "aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy": TypeSpec(
        name_property="name", name_max=128, id_of=_uuid_id, computed=_etag),
    "aws:cloudfront/cachePolicy:CachePolicy": TypeSpec(name_property="name", name_max=128, id_of=_uuid_id, computed=_etag),
    "aws:cloudfront/publicKey:PublicKey": TypeSpec(
        name_property="name", name_max=128, id_of=lambda ctx: "K" + _alnum(ctx.seed, 13, string.ascii_uppercase + string.digits),
        computed=_etag, replace_on=frozenset({"encodedKey", "name"})),
    "aws:cloudfront/keyGroup:KeyGroup": TypeSpec(name_property="name", name_max=128, id_of=_uuid_id, computed=_etag),
    # messaging
    "aws:kms/key:Key": TypeSpec(
        id_of=_uuid_id, computed=lambda ctx, rid: {"arn": ctx.arn("kms", f"key/{rid}"), "keyId": rid},
        replace_on=frozenset({"customerMasterKeySpec", "keyUsage", "customKeyStoreId", "multiRegion"})),
    "aws:sqs/queue:Queue": TypeSpec(
        name_property="name", name_max=80,
        id_of=lambda ctx: f"https://sqs.{ctx.region}.amazonaws.com/{ctx.account}/{ctx.get('name')}",
        computed=_queue, replace_on=frozenset({"name", "namePrefix", "fifoQueue"})),
    "aws:sqs/queuePolicy:QueuePolicy": TypeSpec(id_of=_name_id("queueUrl"), replace_on=frozenset({"queueUrl"})),
    "aws:sns/topic:Topic": TypeSpec(
        name_property="name", name_max=256,
        id_of=lambda ctx: ctx.arn("sns", str(ctx.get("name"))),
        computed=lambda ctx, rid: {"arn": rid, "owner": ctx.account},
        replace_on=frozenset({"name", "namePrefix", "fifoTopic"})),
    "aws:sns/topicPolicy:TopicPolicy": TypeSpec(id_of=_name_id("arn"), replace_on=frozenset({"arn"})),
    "aws:sns/topicSubscription:TopicSubscription": TypeSpec(
        id_of=lambda ctx: f"{ctx.get('topic')}:{_uuid(ctx.seed)}", computed=lambda ctx, rid: {"arn": rid},
        replace_on=frozenset({"topic", "protocol", "endpoint"})),
    # dns and certificates
    "aws:route53/zone:Zone": TypeSpec(
        id_of=lambda ctx: "Z" + _alnum(ctx.seed, 20, string.ascii_uppercase + string.digits),
        computed=lambda ctx, rid: {
            "zoneId": rid, "arn": f"arn:{PARTITION}:route53:::hostedzone/{rid}",
            "nameServers": [f"ns-{100 + i}.awsdns-{10 + i}.{tld}" for i, tld in enumerate(("com", "net", "org", "co.uk"))],
            "primaryNameServer": "ns-100.awsdns-10.com"},
        replace_on=frozenset({"name", "delegationSetId"})),
    "aws:route53/record:Record": TypeSpec(
        id_of=lambda ctx: "_".join(str(p) for p in (ctx.get("zoneId"), ctx.get("name"), ctx.get("type"),
                                                     ctx.get("setIdentifier")) if p),
        computed=lambda ctx, rid: {"fqdn": str(ctx.get("name", "")).rstrip(".")},
        replace_on=frozenset({"zoneId", "name", "type", "setIdentifier"})),
    "aws:route53/healthCheck:HealthCheck": TypeSpec(
        id_of=_uuid_id, computed=lambda ctx, rid: {"arn": f"arn:{PARTITION}:route53:::healthcheck/{rid}"}),
    "aws:acm/certificate:Certificate": TypeSpec(
        id_of=lambda ctx: ctx.arn("acm", f"certificate/{_uuid(ctx.seed)}"),
        computed=lambda ctx, rid: {"arn": rid, "status": "ISSUED", "domainValidationOptions": [
            {"domainName": d, "resourceRecordName": f"_{_alnum(ctx.seed + d, 32, '0123456789abcdef')}.{d}.",
             "resourceRecordType": "CNAME",
             "resourceRecordValue": f"_{_alnum(d + ctx.seed, 32, '0123456789abcdef')}.acm-validations.aws."}
            for d in [ctx.get("domainName"), *(ctx.get("subjectAlternativeNames") or [])] if d]},
        replace_on=frozenset({"domainName", "subjectAlternativeNames", "validationMethod"})),
    "aws:acm/certificateValidation:CertificateValidation": TypeSpec(
        id_of=_name_id("certificateArn"), replace_on=frozenset({"certificateArn", "validationRecordFqdns"})),
    "aws:apigateway/domainName:DomainName": TypeSpec(
        id_of=_name_id("domainName"),
        computed=lambda ctx, rid: {
            "arn": f"arn:{PARTITION}:apigateway:{ctx.region}::/domainnames/{rid}",
            "regionalDomainName": f"d-{_alnum(ctx.seed, 10)}.execute-api.{ctx.region}.amazonaws.com",
            "regionalZoneId": "Z1UJRXOUMOOFQ8"},
        replace_on=frozenset({"domainName"})),
    "aws:apigateway/basePathMapping:BasePathMapping": TypeSpec(
        id_of=lambda ctx: f"{ctx.get('domainName')}/{ctx.get('basePath') or ''}",
        replace_on=frozenset({"domainName"})),
    # secrets
    "aws:secretsmanager/secret:Secret": TypeSpec(
        name_property="name", name_max=512,
        id_of=lambda ctx: ctx.arn("secretsmanager", f"secret:{ctx.get('name')}-{_alnum(ctx.seed, 6, string.ascii_letters)}"),
        computed=lambda ctx, rid: {"arn": rid}, replace_on=frozenset({"name", "namePrefix"})),
    "aws:secretsmanager/secretPolicy:SecretPolicy": TypeSpec(id_of=_name_id("secretArn"), replace_on=frozenset({"secretArn"})),
    "aws:secretsmanager/secretVersion:SecretVersion": TypeSpec(
        id_of=lambda ctx: f"{ctx.get('secretId')}|{_uuid(ctx.seed)}",
        computed=lambda ctx, rid: {"arn": str(ctx.get("secretId")), "versionId": rid.split("|")[-1],
                                   "versionStages": ["AWSCURRENT"]},
        replace_on=frozenset({"secretId", "secretString", "secretBinary"})),
    # compute behind load balancers
    "aws:ec2/launchTemplate:LaunchTemplate": TypeSpec(
        name_property="name", name_max=128, id_of=_prefixed("lt-"),
        computed=lambda ctx, rid: {"arn": ctx.arn("ec2", f"launch-template/{rid}"), "latestVersion": 1,
                                   "defaultVersion": 1}),
    "aws:autoscaling/group:Group": TypeSpec(
        name_property="name", name_max=255,
        computed=lambda ctx, rid: {"arn": ctx.arn("autoscaling", f"autoScalingGroup:{_uuid(ctx.seed)}:"
                                                                 f"autoScalingGroupName/{rid}")},
        replace_on=frozenset({"name", "namePrefix"})),
    "aws:lb/loadBalancer:LoadBalancer": TypeSpec(
        name_property="name", name_max=32,
        id_of=lambda ctx: ctx.arn("elasticloadbalancing", f"loadbalancer/app/{ctx.get('name')}/{_alnum(ctx.seed, 16, '0123456789abcdef')}"),
        computed=lambda ctx, rid: {"arn": rid, "arnSuffix": rid.split("loadbalancer/", 1)[-1],
                                   "dnsName": f"{ctx.get('name')}-{_alnum(ctx.seed, 10, '0123456789')}.{ctx.region}.elb.amazonaws.com",
                                   "zoneId": "Z35SXDOTRQ7X7K"},
        replace_on=frozenset({"name", "namePrefix", "internal", "loadBalancerType"})),
    "aws:lb/targetGroup:TargetGroup": TypeSpec(
        name_property="name", name_max=32,
        id_of=lambda ctx: ctx.arn("elasticloadbalancing", f"targetgroup/{ctx.get('name')}/{_alnum(ctx.seed, 16, '0123456789abcdef')}"),
        computed=lambda ctx, rid: {"arn": rid, "arnSuffix": rid.split(":", 5)[-1]},
        replace_on=frozenset({"name", "namePrefix", "port", "protocol", "vpcId", "targetType"})),
    "aws:lb/listener:Listener": TypeSpec(
        id_of=lambda ctx: ctx.arn("elasticloadbalancing", f"listener/app/{_alnum(ctx.seed, 16, '0123456789abcdef')}"),
        computed=lambda ctx, rid: {"arn": rid}, replace_on=frozenset({"loadBalancerArn"})),
    "aws:lb/listenerRule:ListenerRule": TypeSpec(
        id_of=lambda ctx: ctx.arn("elasticloadbalancing", f"listener-rule/app/{_alnum(ctx.seed, 16, '0123456789abcdef')}"),
        computed=lambda ctx, rid: {"arn": rid}, replace_on=frozenset({"listenerArn"})),
    "aws:ec2/internetGateway:InternetGateway": TypeSpec(id_of=_prefixed("igw-"), computed=_ec2_arn("internet-gateway")),
    "aws:ec2/route:Route": TypeSpec(
        id_of=lambda ctx: f"r-{ctx.get('routeTableId')}{_alnum(ctx.seed, 10, '0123456789')}",
        replace_on=frozenset({"routeTableId", "destinationCidrBlock"})),
    # streaming and analytics
    "aws:kinesis/stream:Stream": TypeSpec(
        name_property="name", name_max=128, id_of=lambda ctx: ctx.arn("kinesis", f"stream/{ctx.get('name')}"),
        computed=lambda ctx, rid: {"arn": rid}, replace_on=frozenset({"name"})),
    "aws:kinesis/firehoseDeliveryStream:FirehoseDeliveryStream": TypeSpec(
        name_property="name", name_max=64, id_of=lambda ctx: ctx.arn("firehose", f"deliverystream/{ctx.get('name')}"),
        computed=lambda ctx, rid: {"arn": rid, "versionId": "1"},
        replace_on=frozenset({"name", "destination", "kinesisSourceConfiguration"})),
    "aws:iot/topicRule:TopicRule": TypeSpec(
        id_of=_name_id("name"), computed=lambda ctx, rid: {"arn": ctx.arn("iot", f"rule/{rid}")},
        replace_on=frozenset({"name"})),
    "aws:glue/catalogDatabase:CatalogDatabase": TypeSpec(
        name_property="name", name_max=255, name_lower=True,
        id_of=lambda ctx: f"{ctx.account}:{ctx.get('name')}",
        computed=lambda ctx, rid: {"arn": ctx.arn("glue", f"database/{ctx.get('name')}"), "catalogId": ctx.account},
        replace_on=frozenset({"name", "catalogId"})),
    "aws:glue/catalogTable:CatalogTable": TypeSpec(
        name_property="name", name_max=255, name_lower=True,
        id_of=lambda ctx: f"{ctx.account}:{ctx.get('databaseName')}:{ctx.get('name')}",
        computed=lambda ctx, rid: {"arn": ctx.arn("glue", f"table/{ctx.get('databaseName')}/{ctx.get('name')}"),
                                   "catalogId": ctx.account},
        replace_on=frozenset({"name", "databaseName", "catalogId"})),
    "aws:athena/workgroup:Workgroup": TypeSpec(
        name_property="name", name_max=128, id_of=_name_id("name"),
        computed=lambda ctx, rid: {"arn": ctx.arn("athena", f"workgroup/{rid}")}, replace_on=frozenset({"name"})),
    "aws:sesv2/emailIdentity:EmailIdentity": TypeSpec(
        id_of=_name_id("emailIdentity"),
        computed=lambda ctx, rid: {"arn": ctx.arn("ses", f"identity/{rid}"), "identityType":
                                   "EMAIL_ADDRESS" if "@" in rid else "DOMAIN", "verifiedForSendingStatus": False},
        replace_on=frozenset({"emailIdentity"})),
}

# Properties that carry the random suffix when a name is generated.
_SUFFIX_LEN = 7


def spec_for(type_token: str) -> TypeSpec:
    return TYPES.get(type_token, TypeSpec())


class AutonameTooLongError(ValueError):
    """The AWS provider makes an autoname as ``<logical name>-<7 random>`` and never shortens the
    logical name: when that passes the name's length limit, it refuses the resource at its check,
    before anything reaches AWS (the message is the Pulumi bridge's)."""

    def __init__(self, type_token: str, prop: str, prefix: str, maximum: int) -> None:
        self.property = prop
        super().__init__(f"could not make instance of '{type_token}': name '{prefix}' plus {_SUFFIX_LEN} random "
                         f"chars is longer than maximum length {maximum}")


def autoname(type_token: str, logical_name: str, inputs: Props, *, seed: bytes | str = b"",
             olds: Mapping[str, Any] | None = None) -> Props:
    """Fill the type's name property when the caller left it out, as the AWS provider does:
    ``<logical name>-<7 hex>``, kept stable across updates by reusing the old autoname;
    :class:`AutonameTooLongError` when that would pass the type's length limit."""
    spec = spec_for(type_token)
    prop = spec.name_property
    result = dict(inputs)
    if prop is None or result.get(prop) not in (None, ""):
        return result
    old_defaults = (olds or {}).get(DEFAULTS_KEY) or []
    if olds and prop in old_defaults and olds.get(prop):
        name = olds[prop]
    else:
        suffix = _digest(type_token, logical_name, seed.hex() if isinstance(seed, bytes) else seed)[:_SUFFIX_LEN]
        base = logical_name.lower() if spec.name_lower else logical_name
        base = re.sub(r"[^A-Za-z0-9-]", "-", base) if spec.name_lower else base
        if len(base) + 1 + _SUFFIX_LEN > spec.name_max:
            raise AutonameTooLongError(type_token, prop, f"{base}-", spec.name_max)
        name = f"{base}-{suffix}"
    result[prop] = name
    result[DEFAULTS_KEY] = sorted({*result.get(DEFAULTS_KEY, []), prop})
    return result


def check(type_token: str, inputs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Why AWS would refuse the inputs: ``[(property, "<AWS error code>: <AWS message>")]``, from
    the catalogue of rules (:mod:`sandbox.rules`). An AWS type the sandbox does not model is
    refused loudly rather than accepted with no behaviour."""
    if type_token.startswith("aws:") and type_token not in TYPES:
        return [("", f"NotImplemented: the sandbox does not model {type_token} (the README lists what it models)")]
    return [(error.property, str(error)) for error in rules.violations(type_token, inputs)]


def resource_id(type_token: str, logical_name: str, inputs: Mapping[str, Any], region: str, scope: str = "",
                account: str = ACCOUNT_ID) -> str:
    spec = spec_for(type_token)
    ctx = Context(type_token, logical_name, inputs, region, account, scope=scope)
    if spec.id_of is not None:
        return spec.id_of(ctx)
    if spec.name_property is not None:
        return str(ctx.get(spec.name_property))
    kind = type_token.rsplit(":", 1)[-1].lower()
    return f"{kind}-{_alnum(ctx.seed, 12)}"


def outputs(type_token: str, logical_name: str, inputs: Mapping[str, Any], rid: str, region: str,
            scope: str = "", account: str = ACCOUNT_ID) -> Props:
    """Inputs plus what AWS computes for the resource with id ``rid``."""
    ctx = Context(type_token, logical_name, inputs, region, account, scope=scope)
    out = {k: v for k, v in inputs.items() if k != DEFAULTS_KEY}
    for key, value in spec_for(type_token).computed(ctx, rid).items():
        out.setdefault(key, value)
    out["id"] = rid
    if type_token.startswith("aws:") and "tags" in out:
        out.setdefault("tagsAll", out["tags"])
    return out


def unknown_if_derived(value: Any) -> Any:
    """Replace every value computed from an unknown input with the unknown marker."""
    if isinstance(value, str):
        return UNKNOWN if UNKNOWN in value else value
    if isinstance(value, list):
        return [unknown_if_derived(v) for v in value]
    if isinstance(value, dict):
        return {k: unknown_if_derived(v) for k, v in value.items()}
    return value


def create(type_token: str, logical_name: str, inputs: Props, *, region: str = DEFAULT_REGION) -> tuple[str, Props]:
    """Id and outputs for a new resource; names are filled in first when the caller left them out."""
    named = autoname(type_token, logical_name, inputs)
    rid = resource_id(type_token, logical_name, named, region)
    return rid, outputs(type_token, logical_name, named, rid, region)


def replacement_properties(type_token: str) -> frozenset[str]:
    return spec_for(type_token).replace_on


def is_settings(type_token: str) -> bool:
    return spec_for(type_token).settings


# -- invokes ---------------------------------------------------------------------------------
def invoke(token: str, args: Mapping[str, Any], *, region: str = DEFAULT_REGION,
           identity: rules.Identity = rules.DEFAULT_IDENTITY) -> Props:
    """The result of a data-source call, or KeyError for one the sandbox does not model."""
    account = identity.account
    if token == "aws:index/getCallerIdentity:getCallerIdentity":
        return {"accountId": account, "arn": identity.caller_arn,
                "userId": "AIDASANDBOXUSER00000", "id": account}
    if token == "aws:index/getRegion:getRegion":
        name = args.get("region") or args.get("name") or region
        return {"name": name, "region": name, "id": name, "endpoint": f"ec2.{name}.amazonaws.com",
                "description": name}
    if token == "aws:index/getPartition:getPartition":
        return {"partition": PARTITION, "dnsSuffix": "amazonaws.com", "id": PARTITION,
                "reverseDnsPrefix": "com.amazonaws"}
    if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
        names = [f"{region}{z}" for z in "abc"]
        return {"names": names, "zoneIds": [f"use1-az{i}" for i in (1, 2, 4)], "id": region,
                "groupNames": [region]}
    if token == "aws:route53/getZone:getZone":
        zone_id = str(args.get("zoneId") or "Z" + _digest(str(args.get("name")))[:20].upper())
        return {"zoneId": zone_id, "id": zone_id, "name": str(args.get("name") or "existing.example.com"),
                "nameServers": [f"ns-{i}.awsdns-{i}.com" for i in (1, 2, 3, 4)], "privateZone": False,
                "arn": f"arn:{PARTITION}:route53:::hostedzone/{zone_id}"}
    if token == "aws:ssm/getParameter:getParameter":
        name = str(args.get("name", ""))
        value = "ami-0" + _digest(name)[:16] if "ami" in name else f"sandbox-value-of-{name}"
        return {"name": name, "value": value, "insecureValue": value, "type": "String", "version": 1,
                "arn": f"arn:{PARTITION}:ssm:{region}:{account}:parameter{name}", "id": name}
    if token == "aws:ec2/getManagedPrefixList:getManagedPrefixList":
        name = str(args.get("name", ""))
        return {"id": "pl-" + _digest(name)[:8], "name": name, "addressFamily": "IPv4", "maxEntries": 60,
                "arn": f"arn:{PARTITION}:ec2:{region}:aws:prefix-list/pl-{_digest(name)[:8]}", "entries": []}
    raise KeyError(token)
