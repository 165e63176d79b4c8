"""Case todo-app under Pulumi mocks: one test per guarantee."""

from __future__ import annotations

import json

import pytest

from components import get_case
from components.identity import IDENTITY_SUB
from components.rest_api import AUTH_HEADER
from tests.mocks import Recorded, as_list, build, policy, statements

OWN_PREFIX = f"private/{IDENTITY_SUB}/"


@pytest.fixture(scope="module")
def todo() -> Recorded:
    return build("todo-app")


def test_user_role_reaches_only_own_prefix(todo: Recorded) -> None:
    bucket = todo.named("todo-app-files").outputs["arn"]
    granted = statements(todo.named("todo-app-own-folder"))
    objects = next(s for s in granted if s["Sid"] == "OwnFolderObjects")
    assert sorted(objects["Action"]) == ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"]
    assert objects["Resource"] == [f"{bucket}/{OWN_PREFIX}*"]
    listing = next(s for s in granted if s["Sid"] == "OwnFolderListing")
    assert listing["Action"] == ["s3:ListBucket"] and listing["Resource"] == [bucket]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": [OWN_PREFIX, f"{OWN_PREFIX}*"]}}
    assert len(granted) == 2  # nothing else


def test_identity_role_trusts_only_authenticated_users_of_its_pool(todo: Recorded) -> None:
    pool = todo.one("aws:cognito/identityPool:IdentityPool")
    (trust,) = statements(todo.named("todo-app-auth-authenticated"), "assumeRolePolicy")
    assert trust["Principal"] == {"Federated": "cognito-identity.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert trust["Condition"]["StringEquals"] == {"cognito-identity.amazonaws.com:aud": pool.id}
    assert trust["Condition"]["ForAnyValue:StringLike"] == {"cognito-identity.amazonaws.com:amr": "authenticated"}
    assert pool.inputs["allowUnauthenticatedIdentities"] is False
    attachment = todo.one("aws:cognito/identityPoolRoleAttachment:IdentityPoolRoleAttachment")
    assert set(attachment.inputs["roles"]) == {"authenticated"}


def test_every_method_requires_the_cognito_authorizer(todo: Recorded) -> None:
    authorizer = todo.one("aws:apigateway/authorizer:Authorizer")
    assert authorizer.inputs["type"] == "COGNITO_USER_POOLS"
    assert authorizer.inputs["providerArns"] == [todo.one("aws:cognito/userPool:UserPool").outputs["arn"]]
    methods = todo.of_type("aws:apigateway/method:Method")
    assert {m.inputs["httpMethod"] for m in methods} == {"GET", "POST", "PUT", "DELETE"}
    for method in methods:
        assert method.inputs["authorization"] == "COGNITO_USER_POOLS"
        assert method.inputs["authorizerId"] == authorizer.id


def test_cache_is_keyed_by_caller(todo: Recorded) -> None:
    stage = todo.one("aws:apigateway/stage:Stage")
    assert stage.inputs["cacheClusterEnabled"] is True
    gets = [i for i in todo.of_type("aws:apigateway/integration:Integration") if i.inputs["httpMethod"] == "GET"]
    assert len(gets) == 2
    for integration in gets:
        assert AUTH_HEADER in integration.inputs["cacheKeyParameters"]
    for method in todo.of_type("aws:apigateway/method:Method"):
        if method.inputs["httpMethod"] == "GET":
            assert method.inputs["requestParameters"][AUTH_HEADER] is True
    cached = [m for m in todo.of_type("aws:apigateway/methodSettings:MethodSettings")
              if m.inputs["settings"].get("cachingEnabled")]
    assert sorted(m.inputs["methodPath"] for m in cached) == ["todos/GET", "todos~1{todoId}/GET"]
    for setting in cached:
        assert setting.inputs["settings"]["cacheTtlInSeconds"] == 300
        assert setting.inputs["settings"]["cacheDataEncrypted"] is True
        assert setting.inputs["settings"]["requireAuthorizationForCacheControl"] is True


def test_cache_ttl_is_configurable_and_zero_turns_it_off() -> None:
    short = build("todo-app", {"cache_ttl_seconds": 30})
    ttls = {m.inputs["settings"].get("cacheTtlInSeconds") for m in
            short.of_type("aws:apigateway/methodSettings:MethodSettings") if m.inputs["settings"].get("cachingEnabled")}
    assert ttls == {30}
    off = build("todo-app", {"cache_ttl_seconds": 0})
    assert off.one("aws:apigateway/stage:Stage").inputs["cacheClusterEnabled"] is False
    assert not [m for m in off.of_type("aws:apigateway/methodSettings:MethodSettings")
                if m.inputs["settings"].get("cachingEnabled")]


def test_stage_has_access_logs_tracing_and_throttling(todo: Recorded) -> None:
    stage = todo.one("aws:apigateway/stage:Stage")
    assert stage.inputs["xrayTracingEnabled"] is True
    logs = todo.by_id(stage.inputs["accessLogSettings"]["destinationArn"].rsplit(":", 1)[-1])
    assert logs.inputs["retentionInDays"] == 365
    assert json.loads(stage.inputs["accessLogSettings"]["format"])["caller"] == "$context.authorizer.claims.sub"
    everything = next(m for m in todo.of_type("aws:apigateway/methodSettings:MethodSettings")
                      if m.inputs["methodPath"] == "*/*")
    assert everything.inputs["settings"]["throttlingRateLimit"] > 0
    assert everything.inputs["settings"]["throttlingBurstLimit"] > 0


def test_todo_table_is_keyed_by_user_and_todo(todo: Recorded) -> None:
    table = todo.one("aws:dynamodb/table:Table")
    assert (table.inputs["hashKey"], table.inputs["rangeKey"]) == ("userId", "todoId")
    assert table.inputs["billingMode"] == "PAY_PER_REQUEST"
    assert table.inputs["serverSideEncryption"]["enabled"] is True
    assert table.inputs["pointInTimeRecovery"]["enabled"] is True


def test_function_reads_through_dax_from_private_subnets(todo: Recorded) -> None:
    fn = todo.named("todo-app-api", "aws:lambda/function:Function")
    cluster = todo.one("aws:dax/cluster:Cluster")
    assert fn.inputs["environment"]["variables"]["DAX_ENDPOINT"] == cluster.outputs["configurationEndpoint"]
    clients = todo.named("todo-app-dax-clients")
    assert fn.inputs["vpcConfig"]["securityGroupIds"] == [clients.id]
    subnets = {s.id for s in todo.of_type("aws:ec2/subnet:Subnet")}
    assert set(fn.inputs["vpcConfig"]["subnetIds"]) == subnets
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in todo.of_type("aws:ec2/subnet:Subnet"))
    actions = {a for s in statements(todo.named("todo-app-api-policy")) for a in as_list(s["Action"])}
    assert {"dax:GetItem", "dax:Query", "dax:PutItem"} <= actions


def test_dax_is_encrypted_and_reached_only_by_its_clients_over_tls(todo: Recorded) -> None:
    cluster = todo.one("aws:dax/cluster:Cluster")
    assert cluster.inputs["serverSideEncryption"]["enabled"] is True
    assert cluster.inputs["clusterEndpointEncryptionType"] == "TLS"
    (ingress,) = todo.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert ingress.inputs["referencedSecurityGroupId"] == todo.named("todo-app-dax-clients").id
    assert ingress.inputs["fromPort"] == ingress.inputs["toPort"] == 9111
    assert "cidrIpv4" not in ingress.inputs
    assert cluster.inputs["securityGroupIds"] == [todo.named("todo-app-dax-cluster").id]


def test_private_network_has_no_internet_path(todo: Recorded) -> None:
    types = {r.type for r in todo.mocks.resources}
    assert not types & {"aws:ec2/internetGateway:InternetGateway", "aws:ec2/natGateway:NatGateway",
                        "aws:ec2/route:Route"}
    (endpoint,) = todo.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    assert endpoint.inputs["serviceName"] == "com.amazonaws.us-east-1.dynamodb"
    assert endpoint.inputs["vpcEndpointType"] == "Gateway"


def test_existing_vpc_is_used_instead_of_a_new_one() -> None:
    given = build("todo-app", {"vpc_id": "vpc-0123", "subnet_ids": ["subnet-a", "subnet-b"]})
    assert not given.of_type("aws:ec2/vpc:Vpc")
    assert given.one("aws:dax/subnetGroup:SubnetGroup").inputs["subnetIds"] == ["subnet-a", "subnet-b"]


def test_api_role_reaches_only_its_table_and_cluster(todo: Recorded) -> None:
    table = todo.one("aws:dynamodb/table:Table").outputs["arn"]
    cluster = todo.one("aws:dax/cluster:Cluster").outputs["arn"]
    for statement in statements(todo.named("todo-app-api-policy")):
        if statement["Sid"] == "OwnTable":
            assert statement["Resource"] == [table, f"{table}/index/*"]
        if statement["Sid"] == "OwnDaxCluster":
            assert statement["Resource"] == [cluster]
    assert policy(todo.named("todo-app-api-policy"))["Version"] == "2012-10-17"


def test_component_exposes_exactly_the_declared_outputs(todo: Recorded) -> None:
    assert sorted(todo.output_names) == sorted(get_case("todo-app").outputs)


def test_a_cheaper_user_pool_tier_drops_threat_protection_instead_of_failing() -> None:
    """Threat protection exists only on Plus: on Essentials AWS would refuse it."""
    pool = build("todo-app", {"user_pool_tier": "ESSENTIALS"}).one("aws:cognito/userPool:UserPool")
    assert pool.inputs["userPoolTier"] == "ESSENTIALS" and not pool.inputs.get("userPoolAddOns")


def test_turning_the_cache_on_makes_a_new_deployment_snapshot() -> None:
    """A stage serves its deployment's frozen snapshot: the cache key (the caller's token) must
    reach it together with the stage's cache settings, never after them."""
    def trigger(ttl: int) -> str:
        return str(build("todo-app", {"cache_ttl_seconds": ttl}).one("aws:apigateway/deployment:Deployment")
                   .inputs["triggers"]["snapshot"])

    assert trigger(0) != trigger(300)
    assert trigger(300) == trigger(60)  # the TTL is a stage setting, not part of the snapshot


def test_every_stage_logs_errors_and_sends_metrics() -> None:
    todo = build("todo-app")
    for setting in todo.of_type("aws:apigateway/methodSettings:MethodSettings"):
        assert setting.inputs["settings"]["loggingLevel"] == "ERROR"
        assert setting.inputs["settings"]["metricsEnabled"] is True
        assert setting.inputs["settings"]["dataTraceEnabled"] is False
