"""Each invalid argument of each case is reported by name, and every problem at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from components import CASES, ComponentArgsError, get_case
from sandbox.mocks import SandboxMocks, build_case

INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("todo-app", {"cache_ttl_seconds": 4000}, "cache_ttl_seconds: 4000 is outside 0..3600"),
    ("todo-app", {"cache_ttl_seconds": "soon"}, "cache_ttl_seconds: Input should be a valid integer, unable to parse string as an integer"),
    ("todo-app", {"dax_node_type": "cache.t3.small"}, "node_type: 'cache.t3.small' is not a DAX node type"),
    ("todo-app", {"dax_replication_factor": 11}, "replication_factor: 11 is outside 1..10"),
    ("todo-app", {"vpc_id": "vpc-1"}, "vpc_id and subnet_ids go together"),
    ("todo-app", {"mfa": "SOMETIMES"}, "mfa: 'SOMETIMES' is not OFF, OPTIONAL or ON"),
    ("todo-app", {"colour": "blue"}, "colour: unknown field"),
    ("todo-app", {"user_pool_tier": "GOLD"}, "user_pool_tier: 'GOLD' is not one of LITE, ESSENTIALS, PLUS"),
    ("blog", {"user_pool_tier": "GOLD"}, "user_pool_tier: 'GOLD' is not one of LITE, ESSENTIALS, PLUS"),
    ("premium-content", {"user_pool_tier": "GOLD"}, "user_pool_tier: 'GOLD' is not one of LITE, ESSENTIALS, PLUS"),
    ("blog", {"domain_names": ["blog.example.com"]}, "domain_names and certificate_arn go together"),
    ("premium-content", {"domain_names": ["Not A Domain"], "certificate_arn": "arn:aws:acm:us-east-1:1:certificate/x"},
     "domain_names: 'Not A Domain' is not a domain name"),
    ("software-updates", {"domain_names": ["dl.example.com"], "certificate_arn": "arn:aws:acm:eu-west-1:1:certificate/x"},
     "certificate_arn: CloudFront needs an ACM certificate in us-east-1"),
    ("microservices", {"user_pool_tier": "GOLD"}, "user_pool_tier: 'GOLD' is not one of LITE, ESSENTIALS, PLUS"),
    ("blog", {"sender_email": "not-an-address"}, "sender_email: 'not-an-address' is not an email address"),
    ("blog", {"sender_email": None}, "sender_email: Input should be a valid string"),
    ("blog", {"replica_regions": ["mars-north-1x"]}, "replica_regions: ['mars-north-1x'] are not AWS region names"),
    ("blog", {"replica_regions": ["eu-west-1", "eu-west-1"]}, "replica_regions: duplicate regions"),
    ("blog", {"thumbnail_size": "huge"}, "thumbnail_size: 'huge' is not WIDTHxHEIGHT within 16..2000"),
    ("blog", {"thumbnail_size": "5000x10"}, "thumbnail_size: '5000x10' is not WIDTHxHEIGHT within 16..2000"),
    ("blog", {"upload_url_expiry_seconds": 86400}, "upload_url_expiry_seconds: 86400 is outside 60..3600"),
    ("blog", {"origin_access": "public"}, "origin_access: 'public' is not 'control' or 'identity'"),
    ("blog", {"dax_replication_factor": 0}, "replication_factor: 0 is outside 1..10"),
    ("software-updates", {"listener_arn": "arn:aws:elasticloadbalancing:x"},
     "an existing load balancer needs all of load_balancer_dns_name, listener_arn, target_group_arn"),
    ("software-updates", {"cached_paths": []}, "cached_paths: at least one path pattern"),
    ("software-updates", {"cached_paths": ["updates/*"]},
     "cached_paths: 'updates/*' is not a CloudFront path pattern starting with '/'"),
    ("software-updates", {"cached_paths": ["/a/*", "/a/*"]}, "cached_paths: duplicate patterns"),
    ("software-updates", {"cache_ttl_seconds": 5}, "cache_ttl_seconds: 5 is outside 60..31536000"),
    ("premium-content", {"signed_url_expiry_seconds": 5}, "signed_url_expiry_seconds: 5 is outside 30..3600"),
    ("premium-content", {"key_rotation": -1}, "key_rotation: must not be negative"),
    ("premium-content", {"price_class": "PriceClass_Cheap"}, "price_class: 'PriceClass_Cheap' is not a CloudFront price class"),
    ("big-data-ingestion", {"topic": "a'b"}, "topic: \"a'b\" is not an MQTT topic filter"),
    ("big-data-ingestion", {"buffer_seconds": 1000}, "buffer_seconds: 1000 is outside 0..900"),
    ("big-data-ingestion", {"buffer_megabytes": 0}, "buffer_megabytes: 0 is outside 1..128"),
    ("big-data-ingestion", {"bytes_scanned_cutoff": 5}, "bytes_scanned_cutoff: 5 is below Athena's minimum of 10 MB"),
    ("big-data-ingestion", {"retention_hours": 1}, "retention_hours: 1 is outside 24..8760"),
    ("microservices", {"services": [{"name": "api", "kind": "api"}, {"name": "api", "kind": "static"}]},
     "services: the name 'api' is used more than once"),
    ("microservices", {"services": [{"name": "Bad_Name", "kind": "api"}]},
     "services.Bad_Name: 'Bad_Name' is not a DNS label (a-z, 0-9, '-', at most 63)"),
    ("microservices", {"domain": "other.org"}, "domain: 'other.org' does not belong to the zone 'example.net'"),
    ("microservices", {"zone_name": "not a domain"}, "zone_name: 'not a domain' is not a domain name"),
    ("microservices", {"services": []}, "services: at least one service"),
    ("microservices", {"services": [{"name": "x", "kind": "queue"}]}, "services.x: kind 'queue' is not api, static or endpoint"),
    ("microservices", {"services": [{"name": "x", "kind": "endpoint", "addresses": ["300.1.1.1"]}]},
     "services.x: '300.1.1.1' is not an IPv4 address"),
    ("microservices", {"services": [{"name": "x", "kind": "endpoint", "addresses": ["192.0.2.1"], "routing": "failover"}]},
     "services.x: failover routing needs exactly two addresses (primary, secondary)"),
    ("microservices", {"services": [{"name": "x", "kind": "endpoint", "addresses": ["44.192.0.10", "192.0.2.1"],
                                     "routing": "failover"}]},
     "services.x: failover routing health-checks each address, and Route 53 reaches only public ones: 192.0.2.1 is "
     "private, reserved or for documentation (use public addresses, or simple routing)"),
    ("microservices", {"services": [{"name": "a-service-name-of-25-char", "kind": "api"}]},
     "services.a-service-name-of-25-char: the name has 25 characters, at most 24 (the AWS names of the service's "
     "resources are made from it, and have length limits)"),
    ("microservices", {"services": [{"name": "x", "kind": "endpoint"}]},
     "services.x: an endpoint has either addresses or a load balancer"),
    ("microservices", {"services": [{"name": "x", "kind": "api", "colour": "red"}]}, "services.0.colour: unknown field"),
    ("software-updates", {"origin_protocol": "match-viewer"},
     "origin_protocol: 'match-viewer' is not 'http-only' or 'https-only'"),
]


@pytest.mark.parametrize(("case_name", "args", "problem"), INVALID)
def test_invalid_argument_is_reported_by_name(case_name: str, args: dict[str, Any], problem: str) -> None:
    case = get_case(case_name)
    with pytest.raises(ComponentArgsError) as err:
        case.parse_args({**case.example_args, **args})
    assert problem in err.value.problems


def test_missing_required_argument_is_reported() -> None:
    with pytest.raises(ComponentArgsError) as err:
        get_case("blog").parse_args({})
    assert "sender_email: Field required" in err.value.problems


@pytest.mark.parametrize("case_name", sorted(CASES))
def test_example_arguments_are_valid(case_name: str) -> None:
    case = get_case(case_name)
    assert case.parse_args(case.example_args) is not None


@pytest.mark.parametrize("case_name", sorted(CASES))
def test_argument_schema_is_published_from_the_typed_arguments(case_name: str) -> None:
    schema = get_case(case_name).schema()
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {f for f in get_case(case_name).args.__dataclass_fields__}


REPO_ROOT = Path(__file__).resolve().parents[1]


def _catalog_with(extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from components import CASES; print(sorted(CASES))"],
                          env={**os.environ, "SERVERLESS_CASES_EXTRA_CASES": extra}, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)


def test_cases_of_your_own_join_the_catalog_by_setting() -> None:
    loaded = _catalog_with("tests.programs.broken_promises")
    assert loaded.returncode == 0 and "'broken-promises'" in loaded.stdout, loaded.stderr
    refused = _catalog_with("json")
    assert refused.returncode != 0
    assert "SERVERLESS_CASES_EXTRA_CASES: module json has no CASE" in refused.stderr


# (case, arguments, a region where AWS does not offer a service the case needs, that service)
MISSING_SERVICE = [
    ("big-data-ingestion", {}, "af-south-1", "IoT Core"),
    ("blog", {}, "ap-east-1", "SES"),
    ("todo-app", {}, "me-south-1", "DynamoDB Accelerator (DAX)"),
    ("blog", {"enable_dax": True}, "me-central-1", "DynamoDB Accelerator (DAX)"),
]


@pytest.mark.parametrize(("case_name", "args", "region", "service"), MISSING_SERVICE,
                         ids=[f"{c}-{r}" for c, _, r, _ in MISSING_SERVICE])
def test_a_region_without_a_service_the_case_needs_is_refused_before_anything_is_made(
        case_name: str, args: dict[str, Any], region: str, service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """There the AWS provider's first call to the service fails midway through the stack (the
    sandbox's catalogue rule ``a_service_is_reached_only_where_aws_offers_it``); the case says so
    at its construction, whether the region comes from ``aws:region`` or the environment."""
    case = get_case(case_name)
    for config in ({"aws:region": region}, {}):
        monkeypatch.setenv("AWS_REGION", region if not config else "us-east-1")
        mocks = SandboxMocks()
        with pytest.raises(ComponentArgsError) as refused:
            build_case(case, {**case.example_args, **args}, mocks, config=config)
        assert f"region: {service} is not offered in {region}" in str(refused.value)
        assert not [r for r in mocks.resources if r.type.startswith("aws:") and r.type != "aws:apigateway/account:Account"]
    monkeypatch.setenv("AWS_REGION", region)
    build_case(case, {**case.example_args, **args}, SandboxMocks(), config={"aws:region": "eu-west-1"})


def test_a_region_botocore_does_not_know_is_not_judged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    case = get_case("big-data-ingestion")
    for region in ("xx-future-1", "cn-north-1"):  # unknown; another partition's
        build_case(case, dict(case.example_args), SandboxMocks(), config={"aws:region": region})


@pytest.mark.parametrize("building_block", ["function", "rest-api"])
def test_a_log_retention_cloudwatch_does_not_offer_is_refused_by_name(building_block: str) -> None:
    """CloudWatch Logs keeps logs for listed periods only (the sandbox's
    ``log_groups_keep_logs_for_a_listed_period``); the building blocks accepted any number of days."""
    from components.function import FunctionArgs
    from components.rest_api import RestApiArgs, Route

    def args(days: int) -> Any:
        if building_block == "function":
            return FunctionArgs(handler_module="todo_api", log_retention_days=days)
        return RestApiArgs(routes=[Route("GET", "/items", function=None)], user_pool_arns=[],  # type: ignore[arg-type]
                           log_retention_days=days)

    assert [p for p in args(10).problems() if p.startswith("log_retention_days")] == [
        "log_retention_days: 10 is not a period CloudWatch Logs keeps logs for (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, "
        "180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)"]
    assert not [p for p in args(14).problems() if p.startswith("log_retention_days")]
    assert [p for p in args(0).problems() if p.startswith("log_retention_days")]  # never expiring: not offered
