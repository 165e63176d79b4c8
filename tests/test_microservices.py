"""Case microservices under Pulumi mocks: one test per guarantee."""

from __future__ import annotations

import pytest

from components import get_case
from components.cases.microservices import MAX_SERVICE_NAME
from tests.mocks import Recorded, build

# Public addresses: Route 53 health-checks only those (the sandbox sends them nothing).
PUBLIC = ["44.192.0.10", "44.192.0.11", "44.192.0.12"]


@pytest.fixture(scope="module")
def micro() -> Recorded:
    """The created zone, delegated: TLS services get custom domains with validated certificates."""
    return build("microservices", {"zone_delegated": True, "services": [
        {"name": "orders", "kind": "api"}, {"name": "www", "kind": "static"},
        {"name": "legacy", "kind": "endpoint", "addresses": PUBLIC[:2], "routing": "failover"}]})


def test_until_the_created_zone_is_delegated_tls_services_use_their_aws_names() -> None:
    """ACM cannot validate through a zone nobody delegates to: no certificate is asked for (up would
    wait 75 minutes and fail)."""
    fresh = build("microservices")
    assert fresh.of_type("aws:acm/certificate:Certificate") == []
    assert fresh.of_type("aws:apigateway/domainName:DomainName") == []
    assert "aliases" not in fresh.one("aws:cloudfront/distribution:Distribution").inputs
    assert not fresh.one("aws:route53/zone:Zone").inputs.get("tags")
    assert records(fresh, "orders.example.net") == [] and records(fresh, "www.example.net") == []
    assert records(fresh, "legacy.example.net")  # plain DNS services need no certificate


def test_a_delegated_zone_is_marked_so(micro: Recorded) -> None:
    assert micro.one("aws:route53/zone:Zone").inputs["tags"] == {"serverless-cases:delegated": "true"}


def records(rec: Recorded, name: str) -> list[dict]:
    return [r.inputs for r in rec.of_type("aws:route53/record:Record") if r.inputs["name"] == name]


def test_a_zone_is_created_for_the_domain(micro: Recorded) -> None:
    zone = micro.one("aws:route53/zone:Zone")
    assert zone.inputs["name"] == "example.net"
    assert {r["zoneId"] for r in (x.inputs for x in micro.of_type("aws:route53/record:Record"))} == {zone.outputs["zoneId"]}


def test_api_service_has_a_regional_custom_domain_with_a_validated_certificate(micro: Recorded) -> None:
    certificate = next(c for c in micro.of_type("aws:acm/certificate:Certificate")
                       if c.inputs["domainName"] == "orders.example.net")
    validation = next(v for v in micro.of_type("aws:acm/certificateValidation:CertificateValidation")
                      if v.inputs["certificateArn"] == certificate.outputs["arn"])
    option = certificate.outputs["domainValidationOptions"][0]
    (record,) = records(micro, option["resourceRecordName"])
    assert record["records"] == [option["resourceRecordValue"]] and validation.inputs["validationRecordFqdns"]
    domain = micro.one("aws:apigateway/domainName:DomainName")
    assert domain.inputs["domainName"] == "orders.example.net"
    assert domain.inputs["securityPolicy"] == "TLS_1_2" and domain.inputs["endpointConfiguration"]["types"] == "REGIONAL"
    assert domain.inputs["regionalCertificateArn"] == certificate.outputs["arn"]
    (alias,) = records(micro, "orders.example.net")
    assert alias["aliases"][0]["name"] == domain.outputs["regionalDomainName"]
    methods = micro.of_type("aws:apigateway/method:Method")
    assert methods and all(m.inputs["authorization"] == "COGNITO_USER_POOLS" for m in methods)


def test_static_service_is_a_private_bucket_behind_cloudfront_with_an_edge_certificate(micro: Recorded) -> None:
    distribution = micro.one("aws:cloudfront/distribution:Distribution")
    assert distribution.inputs["aliases"] == ["www.example.net"]
    certificate = next(c for c in micro.of_type("aws:acm/certificate:Certificate")
                       if c.inputs["domainName"] == "www.example.net")
    assert distribution.inputs["viewerCertificate"]["acmCertificateArn"] == certificate.outputs["arn"]
    provider = micro.one("pulumi:providers:aws")
    assert provider.inputs["region"] == "us-east-1"
    (alias,) = records(micro, "www.example.net")  # Route 53 evaluates no CloudFront target's health
    assert alias["aliases"][0] == {"name": distribution.outputs["domainName"], "zoneId": "Z2FDTNDATAQYW2",
                                   "evaluateTargetHealth": False}


def test_failover_endpoint_is_health_checked(micro: Recorded) -> None:
    legacy = sorted(records(micro, "legacy.example.net"), key=lambda r: r["setIdentifier"])
    assert [r["records"] for r in legacy] == [[PUBLIC[0]], [PUBLIC[1]]]
    assert [r["failoverRoutingPolicies"][0]["type"] for r in legacy] == ["PRIMARY", "SECONDARY"]
    checks = {c.id: c.inputs for c in micro.of_type("aws:route53/healthCheck:HealthCheck")}
    assert [checks[r["healthCheckId"]]["ipAddress"] for r in legacy] == PUBLIC[:2]
    assert all(c["resourcePath"] == "/health" for c in checks.values())


def test_weighted_and_simple_endpoints_and_load_balancer_aliases() -> None:
    rec = build("microservices", {"services": [
        {"name": "a", "kind": "endpoint", "addresses": PUBLIC[1:], "routing": "weighted"},
        {"name": "b", "kind": "endpoint", "addresses": ["192.0.2.3"]},
        {"name": "c", "kind": "endpoint", "load_balancer_dns_name": "lb-1.us-east-1.elb.amazonaws.com",
         "load_balancer_zone_id": "Z35SXDOTRQ7X7K"}]})
    weighted = records(rec, "a.example.net")
    assert len(weighted) == 2 and all(r["weightedRoutingPolicies"] == [{"weight": 100}] for r in weighted)
    assert all(r["healthCheckId"] for r in weighted)
    (simple,) = records(rec, "b.example.net")
    assert simple["records"] == ["192.0.2.3"] and "healthCheckId" not in simple
    (alias,) = records(rec, "c.example.net")
    assert alias["aliases"][0]["name"] == "lb-1.us-east-1.elb.amazonaws.com"


def test_existing_zone_is_used_and_services_may_live_below_the_zone() -> None:
    rec = build("microservices", {"zone_id": "Z123EXISTING", "domain": "svc.example.net",
                                  "services": [{"name": "b", "kind": "endpoint", "addresses": ["192.0.2.3"]}]})
    assert not rec.of_type("aws:route53/zone:Zone")
    (record,) = records(rec, "b.svc.example.net")
    assert record["zoneId"] == "Z123EXISTING"


def test_outputs_list_each_services_url(micro: Recorded) -> None:
    # The log bucket is made for the static service: a stack of endpoints alone has none.
    assert sorted(micro.output_names) == sorted([*get_case("microservices").outputs, "access_log_bucket"])


def test_a_stack_of_endpoints_alone_has_no_log_bucket() -> None:
    rec = build("microservices", {"zone_name": "example.net",
                                  "services": [{"name": "b", "kind": "endpoint", "addresses": ["192.0.2.3"]}]})
    assert not rec.of_type("aws:s3/bucket:Bucket")
    assert sorted(rec.output_names) == sorted(get_case("microservices").outputs)


@pytest.mark.parametrize("kind", ["api", "static"])
def test_the_longest_service_name_accepted_makes_names_the_aws_provider_accepts(kind: str) -> None:
    """The provider autonames <logical name>-<7 random> and refuses a name past its limit (the
    sandbox does too): a service named as long as the arguments allow still builds, custom domain and all."""
    name = "s" * MAX_SERVICE_NAME
    rec = build("microservices", {"zone_delegated": True, "services": [{"name": name, "kind": kind}]})
    assert records(rec, f"{name}.example.net")
