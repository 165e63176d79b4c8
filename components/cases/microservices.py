"""Case microservices: services freely composed from serverless parts, each reached at
``<service>.<domain>`` through Route 53.

Kinds: ``api`` (API Gateway + Lambda + DynamoDB behind a regional custom domain with an ACM
certificate validated through the zone), ``static`` (a private bucket behind CloudFront,
with a certificate in us-east-1), ``endpoint`` (records pointing at IP addresses, or an
alias to an existing load balancer). Endpoints may use weighted or failover routing with
Route 53 health checks.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from components.access_logs import CaseLogs
from components.args import CaseArgs, SharedHeadersArgs, UserPoolTierArgs, WafArgs, check_args, component_args
from components.cdn import PrivateBucketCdn, PrivateBucketCdnArgs
from components.function import Function, FunctionArgs
from components.identity import UserDirectory, UserDirectoryArgs
from components.regions import provider_in
from components.rest_api import RestApi, RestApiArgs, Route
from components.table import Table, TableArgs
from components.waf import CaseFirewalls

TOKEN = "serverless-cases:cases:Microservices"
# Marks a zone its owner has delegated (a statement for people and for the sandbox, which then
# lets ACM validate certificates through it: see sandbox/rules.py).
DELEGATED_TAG = "serverless-cases:delegated"
SERVICE_TOKEN = "serverless-cases:cases:Microservice"
DESCRIPTION = (
    "Microservices: services composed from serverless parts (api: API Gateway + Lambda + DynamoDB; static: private "
    "S3 + CloudFront; endpoint: IP addresses or a load balancer), each reached at <service>.<domain> through Route 53."
)
CLOUDFRONT_ZONE_ID = "Z2FDTNDATAQYW2"
MAX_SERVICE_NAME = 24
"""The AWS provider autonames resources ``<logical name>-<7 random>``, refusing a name past its limit:
the longest made from a service's name is its function's invoke permission (``microservices-<name>-api-
invoke-microservices-<name>-fn``, within 100 characters), then its bucket's (within 63)."""
HEALTH_CHECKED = ("weighted", "failover")
"""Routings whose records carry a Route 53 health check of each address."""
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_DOMAIN = re.compile(r"([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")


@component_args
class ServiceSpec:
    name: str
    """A DNS label: the service is reached at ``<name>.<domain>``."""
    kind: str
    """``api``, ``static`` or ``endpoint``."""
    addresses: list[str] = dataclasses.field(default_factory=list)
    """``endpoint``: IPv4 addresses the name resolves to."""
    load_balancer_dns_name: str | None = None
    """``endpoint``: an existing load balancer to alias instead (with load_balancer_zone_id)."""
    load_balancer_zone_id: str | None = None
    routing: str = "simple"
    """``endpoint`` with addresses: ``simple``, ``weighted`` (health-checked, equal weights) or
    ``failover`` (the first address is primary, the second secondary, both health-checked).
    Route 53 health-checks public addresses only."""
    health_check_path: str = "/health"


@component_args
class MicroservicesArgs(CaseArgs, UserPoolTierArgs, SharedHeadersArgs, WafArgs):
    zone_name: str
    """The hosted zone's domain (created unless zone_id names an existing zone)."""
    services: list[ServiceSpec]
    zone_id: str | None = None
    domain: str | None = None
    """Where services live (default: zone_name); must be the zone's domain or below it."""
    zone_delegated: bool = False
    """The created zone is delegated (the domain's registrar or parent zone lists its
    name_servers). Until it is, ACM cannot validate certificates through it, so api and static
    services answer on their AWS names only; deploy, delegate, then set this to get
    ``<service>.<domain>`` with validated certificates. An existing zone (zone_id) counts as delegated."""

    def problems(self) -> list[str]:
        problems = self.tag_problems()
        problems += self.shared_headers_problems()
        problems += UserDirectoryArgs(tier=self.user_pool_tier).problems()
        if not _DOMAIN.fullmatch(self.zone_name):
            problems.append(f"zone_name: {self.zone_name!r} is not a domain name")
        domain = self.domain or self.zone_name
        if self.domain is not None and not (domain == self.zone_name or domain.endswith("." + self.zone_name)):
            problems.append(f"domain: {domain!r} does not belong to the zone {self.zone_name!r}")
        if not self.services:
            problems.append("services: at least one service")
        names = [s.name for s in self.services]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"services: the name {dup!r} is used more than once")
        for s in self.services:
            problems += _service_problems(s)
        return problems


def _service_problems(s: ServiceSpec) -> list[str]:
    where = f"services.{s.name}"
    problems = []
    if not _LABEL.fullmatch(s.name):
        problems.append(f"{where}: {s.name!r} is not a DNS label (a-z, 0-9, '-', at most 63)")
    elif len(s.name) > MAX_SERVICE_NAME:
        problems.append(f"{where}: the name has {len(s.name)} characters, at most {MAX_SERVICE_NAME} (the AWS names "
                        "of the service's resources are made from it, and have length limits)")
    if s.kind not in ("api", "static", "endpoint"):
        problems.append(f"{where}: kind {s.kind!r} is not api, static or endpoint")
    if s.kind != "endpoint" and (s.addresses or s.load_balancer_dns_name):
        problems.append(f"{where}: addresses and load balancers are for endpoint services")
    if s.kind == "endpoint":
        if bool(s.addresses) == bool(s.load_balancer_dns_name):
            problems.append(f"{where}: an endpoint has either addresses or a load balancer")
        if bool(s.load_balancer_dns_name) != bool(s.load_balancer_zone_id):
            problems.append(f"{where}: load_balancer_dns_name and load_balancer_zone_id go together")
        for address in s.addresses:
            try:
                ip = ipaddress.IPv4Address(address)
            except ValueError:
                problems.append(f"{where}: {address!r} is not an IPv4 address")
                continue
            if s.routing in HEALTH_CHECKED and (not ip.is_global or ip.is_multicast):
                problems.append(f"{where}: {s.routing} routing health-checks each address, and Route 53 reaches only "
                                f"public ones: {address} is private, reserved or for documentation (use public "
                                "addresses, or simple routing)")
    if s.routing not in ("simple", "weighted", "failover"):
        problems.append(f"{where}: routing {s.routing!r} is not simple, weighted or failover")
    elif s.routing == "weighted" and len(s.addresses) < 2:
        problems.append(f"{where}: weighted routing needs at least two addresses")
    elif s.routing == "failover" and len(s.addresses) != 2:
        problems.append(f"{where}: failover routing needs exactly two addresses (primary, secondary)")
    if not s.health_check_path.startswith("/"):
        problems.append(f"{where}: health_check_path must start with '/'")
    return problems


def validated_certificate(name: str, fqdn: str, zone_id: pulumi.Input[str], parent: pulumi.Resource,
                          provider: aws.Provider | None = None) -> aws.acm.CertificateValidation:
    """An ACM certificate for ``fqdn``, validated by a DNS record in the zone."""
    opts = pulumi.ResourceOptions(parent=parent, provider=provider)
    certificate = aws.acm.Certificate(f"{name}-cert", domain_name=fqdn, validation_method="DNS", opts=opts)
    option = certificate.domain_validation_options[0]
    record = aws.route53.Record(
        f"{name}-cert-validation", zone_id=zone_id, name=option.resource_record_name, type=option.resource_record_type,
        records=[option.resource_record_value], ttl=60, allow_overwrite=True, opts=pulumi.ResourceOptions(parent=parent))
    return aws.acm.CertificateValidation(f"{name}-cert", certificate_arn=certificate.arn,
                                         validation_record_fqdns=[record.fqdn], opts=opts)


class Microservice(pulumi.ComponentResource):
    url: pulumi.Output[str]

    def __init__(self, name: str, spec: ServiceSpec, fqdn: str, zone_id: pulumi.Input[str],
                 users: UserDirectory, edge: aws.Provider, firewalls: CaseFirewalls, logs: CaseLogs, *, custom_domain: bool = True,
                 protect_data: bool = True, response_headers_policy_id: str | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(SERVICE_TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.url = pulumi.Output.from_input(f"https://{fqdn}")
        if not custom_domain and spec.kind in ("api", "static"):
            pulumi.log.warn(f"{name}: served on its AWS name until the zone is delegated: delegate {fqdn}'s domain to "
                            "the name_servers output, then set zone_delegated=true for its custom domain", self)
        if spec.kind == "api":
            table = Table(f"{name}-items", TableArgs(hash_key="userId", range_key="todoId",
                                                            deletion_protection=protect_data), opts=child)
            function = Function(f"{name}-fn", FunctionArgs(
                handler_module="todo_api", environment={"TABLE_NAME": table.name},
                statements=table.statements(write=True)), opts=child)
            api = RestApi(f"{name}-api", RestApiArgs(
                routes=[Route(m, p, function) for m, p in (("GET", "/items"), ("POST", "/items"),
                                                           ("GET", "/items/{todoId}"), ("PUT", "/items/{todoId}"),
                                                           ("DELETE", "/items/{todoId}"))],
                user_pool_arns=[users.user_pool.arn], firewall=firewalls.for_api_stages()), opts=child)
            if not custom_domain:
                self.url = api.url
                self.register_outputs({"url": self.url})
                return
            certificate = validated_certificate(name, fqdn, zone_id, self)
            domain = aws.apigateway.DomainName(
                f"{name}-domain", domain_name=fqdn, regional_certificate_arn=certificate.certificate_arn,
                endpoint_configuration={"types": "REGIONAL"}, security_policy="TLS_1_2", opts=child)
            aws.apigateway.BasePathMapping(f"{name}-mapping", rest_api=api.api.id, stage_name=api.stage.stage_name,
                                           domain_name=domain.domain_name, opts=child)
            self._alias(name, fqdn, zone_id, domain.regional_domain_name, domain.regional_zone_id)
        elif spec.kind == "static" and not custom_domain:
            self.url = PrivateBucketCdn(f"{name}-site", PrivateBucketCdnArgs(
                web_acl_arn=firewalls.for_distributions(), logs=logs, force_destroy=not protect_data,
                response_headers_policy_id=response_headers_policy_id), opts=child).url
        elif spec.kind == "static":
            certificate = validated_certificate(name, fqdn, zone_id, self, provider=edge)
            cdn = PrivateBucketCdn(f"{name}-site", PrivateBucketCdnArgs(
                aliases=[fqdn], certificate_arn=certificate.certificate_arn,
                web_acl_arn=firewalls.for_distributions(), logs=logs, force_destroy=not protect_data,
                response_headers_policy_id=response_headers_policy_id), opts=child)
            # Route 53 refuses target health on an alias to CloudFront (InvalidChangeBatch).
            self._alias(name, fqdn, zone_id, cdn.domain_name, CLOUDFRONT_ZONE_ID, evaluate_target_health=False)
        elif spec.load_balancer_dns_name:
            assert spec.load_balancer_zone_id is not None
            self._alias(name, fqdn, zone_id, spec.load_balancer_dns_name, spec.load_balancer_zone_id)
            self.url = pulumi.Output.from_input(f"http://{fqdn}")
        else:
            self._address_records(name, spec, fqdn, zone_id)
            self.url = pulumi.Output.from_input(f"http://{fqdn}")
        self.register_outputs({"url": self.url})

    def _alias(self, name: str, fqdn: str, zone_id: pulumi.Input[str], target: pulumi.Input[str],
               target_zone: pulumi.Input[str], evaluate_target_health: bool = True) -> None:
        aws.route53.Record(f"{name}-alias", zone_id=zone_id, name=fqdn, type="A",
                           aliases=[{"name": target, "zone_id": target_zone,
                                     "evaluate_target_health": evaluate_target_health}],
                           opts=pulumi.ResourceOptions(parent=self))

    def _address_records(self, name: str, spec: ServiceSpec, fqdn: str, zone_id: pulumi.Input[str]) -> None:
        child = pulumi.ResourceOptions(parent=self)
        if spec.routing == "simple":
            aws.route53.Record(f"{name}-a", zone_id=zone_id, name=fqdn, type="A", ttl=60, records=spec.addresses,
                               opts=child)
            return
        for i, address in enumerate(spec.addresses):
            check = aws.route53.HealthCheck(
                f"{name}-health-{i}", type="HTTP", ip_address=address, port=80, resource_path=spec.health_check_path,
                failure_threshold=3, request_interval=30, opts=child)
            routing: dict[str, Any]
            if spec.routing == "weighted":
                routing = {"weighted_routing_policies": [{"weight": 100}]}
            else:
                routing = {"failover_routing_policies": [{"type": "PRIMARY" if i == 0 else "SECONDARY"}]}
            aws.route53.Record(f"{name}-a-{i}", zone_id=zone_id, name=fqdn, type="A", ttl=60, records=[address],
                               set_identifier=f"{spec.name}-{i}", health_check_id=check.id, **routing, opts=child)


class Microservices(pulumi.ComponentResource):
    def __init__(self, name: str, args: MicroservicesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        check_args(args, component=TOKEN)
        child = pulumi.ResourceOptions(parent=self)
        domain = args.domain or args.zone_name
        if args.zone_id is None:
            zone = aws.route53.Zone(f"{name}-zone", name=args.zone_name, force_destroy=False,
                                    tags={DELEGATED_TAG: "true"} if args.zone_delegated else None, opts=child)
            self.zone_id: pulumi.Output[str] = zone.zone_id
            self.name_servers: pulumi.Output[Sequence[str]] = zone.name_servers
        else:
            existing = aws.route53.get_zone_output(zone_id=args.zone_id)
            self.zone_id, self.name_servers = pulumi.Output.from_input(args.zone_id), existing.name_servers
        self.users = UserDirectory(f"{name}-auth", UserDirectoryArgs(tier=args.user_pool_tier,
                                                                               deletion_protection=args.deletion_protection), opts=child)
        edge = provider_in("us-east-1", f"{name}-us-east-1", parent=self)
        firewalls = CaseFirewalls(name, enabled=args.enable_waf, parent=self)
        self.logs = CaseLogs(name, enabled=args.access_logs, parent=self, us_east_1=edge,
                             keep_data=args.deletion_protection)
        self.services = {
            spec.name: Microservice(f"{name}-{spec.name}", spec, f"{spec.name}.{domain}", self.zone_id, self.users,
                                    edge, firewalls, self.logs, custom_domain=args.zone_id is not None or args.zone_delegated,
                                    protect_data=args.deletion_protection,
                                    response_headers_policy_id=args.response_headers_policy_id, opts=child)
            for spec in args.services
        }
        self.register_outputs(self.outputs())

    def outputs(self) -> dict[str, pulumi.Output[Any]]:
        urls = pulumi.Output.all(**{n: s.url for n, s in self.services.items()})
        return {"zone_id": self.zone_id, "name_servers": self.name_servers, "service_urls": urls,
                **self.logs.outputs()}
