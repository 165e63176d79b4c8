"""Case software-updates under Pulumi mocks: one test per guarantee."""

from __future__ import annotations

import pytest

from components import get_case
from components.cases.software_updates import CACHING_DISABLED, ORIGIN_HEADER
from tests.mocks import Recorded, build

EXISTING = {"load_balancer_dns_name": "updates-123.us-east-1.elb.amazonaws.com",
            "listener_arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/updates/1/2",
            "target_group_arn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/servers/3"}


@pytest.fixture(scope="module")
def demo() -> Recorded:
    return build("software-updates")


@pytest.fixture(scope="module")
def existing() -> Recorded:
    return build("software-updates", EXISTING)


def _distribution(rec: Recorded) -> dict:
    return rec.one("aws:cloudfront/distribution:Distribution").inputs


def test_update_paths_are_cached_long_and_compressed(demo: Recorded) -> None:
    policy = demo.one("aws:cloudfront/cachePolicy:CachePolicy")
    assert policy.inputs["defaultTtl"] == 86_400 and policy.inputs["minTtl"] == 0
    keys = policy.inputs["parametersInCacheKeyAndForwardedToOrigin"]
    assert keys["enableAcceptEncodingGzip"] and keys["enableAcceptEncodingBrotli"]
    (behaviour,) = _distribution(demo)["orderedCacheBehaviors"]
    assert behaviour["pathPattern"] == "/updates/*" and behaviour["compress"] is True
    assert behaviour["cachePolicyId"] == policy.id


def test_everything_else_passes_through_uncached_and_read_only(demo: Recorded) -> None:
    default = _distribution(demo)["defaultCacheBehavior"]
    assert default["cachePolicyId"] == CACHING_DISABLED
    assert default["allowedMethods"] == ["GET", "HEAD", "OPTIONS"]


def test_write_methods_reach_the_origin_only_when_asked_for() -> None:
    writes = build("software-updates", {"forward_all_methods": True})
    assert "POST" in _distribution(writes)["defaultCacheBehavior"]["allowedMethods"]


def test_viewers_are_redirected_to_https(demo: Recorded) -> None:
    distribution = _distribution(demo)
    assert distribution["defaultCacheBehavior"]["viewerProtocolPolicy"] == "redirect-to-https"
    assert all(b["viewerProtocolPolicy"] == "redirect-to-https" for b in distribution["orderedCacheBehaviors"])


def test_origin_admits_only_requests_carrying_cloudfronts_secret(demo: Recorded) -> None:
    secret = demo.one("pulumi-python:dynamic:Resource").outputs["value"]
    assert len(secret) >= 40
    (origin,) = _distribution(demo)["origins"]
    assert origin["customHeaders"] == [{"name": ORIGIN_HEADER, "value": secret}]
    listener = demo.one("aws:lb/listener:Listener")
    assert listener.inputs["defaultActions"][0]["fixedResponse"]["statusCode"] == "403"
    (rule,) = demo.of_type("aws:lb/listenerRule:ListenerRule")
    assert rule.inputs["conditions"] == [{"httpHeader": {"httpHeaderName": ORIGIN_HEADER, "values": [secret]}}]
    assert rule.inputs["actions"][0]["type"] == "forward"


def test_demo_origin_is_internal_and_reached_through_a_cloudfront_vpc_origin(demo: Recorded) -> None:
    """Update files and the secret origin header never cross the internet to the origin."""
    balancer = demo.one("aws:lb/loadBalancer:LoadBalancer")
    assert balancer.inputs["internal"] is True
    vpc_origin = demo.one("aws:cloudfront/vpcOrigin:VpcOrigin")
    assert vpc_origin.inputs["vpcOriginEndpointConfig"]["arn"] == balancer.outputs["arn"]
    (origin,) = _distribution(demo)["origins"]
    assert origin["vpcOriginConfig"] == {"vpcOriginId": vpc_origin.id} and "customOriginConfig" not in origin
    assert not demo.of_type("aws:ec2/route:Route")  # no subnet routes to the internet
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in demo.of_type("aws:ec2/subnet:Subnet"))
    rules = {r.name: r.inputs for r in demo.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")}
    assert rules["software-updates-demo-alb-from-cloudfront"]["cidrIpv4"] == "10.30.0.0/16"
    servers = rules["software-updates-demo-servers-from-alb"]
    assert servers["referencedSecurityGroupId"] == demo.named("software-updates-demo-alb",
                                                                "aws:ec2/securityGroup:SecurityGroup").id


def test_demo_servers_use_imdsv2_encrypted_disks_and_scale(demo: Recorded) -> None:
    template = demo.one("aws:ec2/launchTemplate:LaunchTemplate").inputs
    assert template["metadataOptions"]["httpTokens"] == "required"
    assert template["blockDeviceMappings"][0]["ebs"]["encrypted"] == "true"
    group = demo.one("aws:autoscaling/group:Group").inputs
    assert (group["minSize"], group["maxSize"]) == (2, 4) and group["healthCheckType"] == "ELB"


def test_existing_load_balancer_is_fronted_without_new_servers(existing: Recorded) -> None:
    assert not existing.of_type("aws:autoscaling/group:Group") and not existing.of_type("aws:lb/loadBalancer:LoadBalancer")
    (origin,) = _distribution(existing)["origins"]
    assert origin["domainName"] == EXISTING["load_balancer_dns_name"]
    assert origin["customOriginConfig"]["originProtocolPolicy"] == "https-only"
    assert origin["customOriginConfig"]["originSslProtocols"] == ["TLSv1.2"]
    rules = {r.inputs["priority"]: r.inputs for r in existing.of_type("aws:lb/listenerRule:ListenerRule")}
    assert rules[10]["actions"][0]["targetGroupArn"] == EXISTING["target_group_arn"]
    assert rules[50_000]["actions"][0]["fixedResponse"]["statusCode"] == "403"
    assert {r["listenerArn"] for r in rules.values()} == {EXISTING["listener_arn"]}


def test_cached_paths_are_configurable(existing: Recorded) -> None:
    custom = build("software-updates", {**EXISTING, "cached_paths": ["/updates/*", "/releases/*.zip"]})
    assert [b["pathPattern"] for b in _distribution(custom)["orderedCacheBehaviors"]] == ["/updates/*", "/releases/*.zip"]


def test_outputs_are_the_declared_ones(demo: Recorded) -> None:
    assert sorted(demo.output_names) == sorted(get_case("software-updates").outputs)


def test_each_stacks_vpc_origin_is_named_apart() -> None:
    """Every stack of a case names its component alike (the case's name): the demonstration
    origin's VPC origin was named software-updates-demo-origin in every stack of an account."""
    from sandbox.mocks import SandboxMocks, build_case

    case = get_case("software-updates")
    names = set()
    for stack in ("acme.updates", "globex.updates"):
        mocks = SandboxMocks()
        build_case(case, dict(case.example_args), mocks, stack=stack)
        (vpc_origin,) = mocks.of_type("aws:cloudfront/vpcOrigin:VpcOrigin")
        names.add(vpc_origin.inputs["vpcOriginEndpointConfig"]["name"])
    assert len(names) == 2 and all(n.startswith("software-updates-demo-origin-") for n in names), names
