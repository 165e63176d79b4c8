"""RestApi: an API Gateway REST API in front of Lambda functions, with a Cognito authorizer
on every method, access logs, throttling, tracing, and optional GET caching keyed by the
caller's identity so one user never receives another's cached response."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from components import defaults
from components.args import check_args
from components.function import Function
from components.waf import WebFirewall

TOKEN = "serverless-cases:api:RestApi"
AUTH_HEADER = "method.request.header.Authorization"
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


@dataclasses.dataclass(frozen=True)
class Route:
    method: str
    path: str
    function: Function


@dataclasses.dataclass(frozen=True, kw_only=True)
class RestApiArgs:
    routes: Sequence[Route]
    user_pool_arns: pulumi.Input[Sequence[pulumi.Input[str]]]
    """The Cognito user pools whose tokens the authorizer accepts (required: no open methods)."""
    cache_ttl_seconds: int = 0
    """Cache GET responses this long (0: no cache). The cache key always includes the caller's token."""
    throttle_rate: float = defaults.API_THROTTLE_RATE
    throttle_burst: int = defaults.API_THROTTLE_BURST
    stage_name: str = defaults.API_STAGE_NAME
    log_retention_days: int = defaults.LOG_RETENTION_DAYS
    firewall: WebFirewall | None = None
    """Put the stage behind this (regional) AWS WAF web ACL."""

    def problems(self) -> list[str]:
        problems = []
        if not self.routes:
            problems.append("routes: at least one route is needed")
        seen = set()
        for route in self.routes:
            if route.method not in _METHODS:
                problems.append(f"routes: method {route.method!r} is not one of {sorted(_METHODS)}")
            if not re.fullmatch(r"(/([A-Za-z0-9._-]+|\{[A-Za-z][A-Za-z0-9]*\}))+", route.path):
                problems.append(f"routes: path {route.path!r} is not a resource path like /items/{{itemId}}")
            if (route.method, route.path) in seen:
                problems.append(f"routes: {route.method} {route.path} appears twice")
            seen.add((route.method, route.path))
        if not 0 <= self.cache_ttl_seconds <= 3600:
            problems.append(f"cache_ttl_seconds: {self.cache_ttl_seconds} is outside 0..3600")
        if self.throttle_rate <= 0 or self.throttle_burst <= 0:
            problems.append("throttle_rate and throttle_burst must be positive")
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", self.stage_name):
            problems.append(f"stage_name: {self.stage_name!r} is not a valid stage name")
        problems += defaults.log_retention_problems(self.log_retention_days)
        return problems


def deployment_fingerprint(snapshot: dict) -> str:
    """A stable digest of everything a deployment snapshot holds."""
    routes = sorted(snapshot["routes"], key=lambda r: (r["path"], r["method"]))
    return hashlib.sha256(json.dumps({**snapshot, "routes": routes}, sort_keys=True).encode()).hexdigest()


def method_path(method: str, path: str) -> str:
    """API Gateway's method-settings path: resource path without the leading slash, '/' as '~1'."""
    return f"{path.lstrip('/').replace('/', '~1')}/{method}"


class RestApi(pulumi.ComponentResource):
    api: aws.apigateway.RestApi
    stage: aws.apigateway.Stage
    url: pulumi.Output[str]

    def __init__(self, name: str, args: RestApiArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(TOKEN, name, None, opts)
        check_args(args, component=TOKEN)
        child = pulumi.ResourceOptions(parent=self)
        caching = args.cache_ttl_seconds > 0

        self.api = aws.apigateway.RestApi(name, endpoint_configuration={"types": "REGIONAL"}, opts=child)
        self.authorizer = aws.apigateway.Authorizer(
            f"{name}-cognito", rest_api=self.api.id, type="COGNITO_USER_POOLS",
            provider_arns=args.user_pool_arns, identity_source=AUTH_HEADER, opts=child)

        resources: dict[str, aws.apigateway.Resource] = {}

        def resource_for(path: str) -> pulumi.Input[str]:
            parent_id: pulumi.Input[str] = self.api.root_resource_id
            prefix = ""
            for part in path.strip("/").split("/"):
                prefix += "/" + part
                if prefix not in resources:
                    slug = re.sub(r"[^a-z0-9]+", "-", prefix.lower()).strip("-")
                    resources[prefix] = aws.apigateway.Resource(
                        f"{name}-{slug}", rest_api=self.api.id, parent_id=parent_id, path_part=part, opts=child)
                parent_id = resources[prefix].id
            return parent_id

        wiring: list[pulumi.Resource] = []
        snapshot: list[pulumi.Output[dict]] = []  # what a deployment freezes, route by route
        permitted: set[str] = set()
        for route in args.routes:
            resource_id = resource_for(route.path)
            slug = re.sub(r"[^a-z0-9]+", "-", f"{route.method}{route.path}".lower()).strip("-")
            path_params = [f"method.request.path.{p}" for p in re.findall(r"\{([A-Za-z0-9]+)\}", route.path)]
            cached = caching and route.method == "GET"
            request_parameters = {p: True for p in path_params}
            if cached:
                request_parameters[AUTH_HEADER] = True
            method = aws.apigateway.Method(
                f"{name}-{slug}", rest_api=self.api.id, resource_id=resource_id, http_method=route.method,
                authorization="COGNITO_USER_POOLS", authorizer_id=self.authorizer.id,
                request_parameters=request_parameters or None, opts=child)
            integration = aws.apigateway.Integration(
                f"{name}-{slug}", rest_api=self.api.id, resource_id=resource_id, http_method=method.http_method,
                type="AWS_PROXY", integration_http_method="POST", uri=route.function.function.invoke_arn,
                cache_key_parameters=[AUTH_HEADER, *path_params] if cached else None, opts=child)
            wiring += [method, integration]
            snapshot.append(pulumi.Output.all(
                method=route.method, path=route.path, authorization="COGNITO_USER_POOLS",
                request_parameters=request_parameters, integration_type="AWS_PROXY",
                uri=route.function.function.invoke_arn,
                cache_key_parameters=[AUTH_HEADER, *path_params] if cached else []))
            fn_key = route.function.logical_name  # one permission per function
            if fn_key not in permitted:
                permitted.add(fn_key)
                route.function.allow_invoke(
                    f"{name}-invoke-{fn_key}", "apigateway.amazonaws.com",
                    self.api.execution_arn.apply(lambda arn: f"{arn}/*/*"))

        # A stage serves the snapshot its deployment froze: methods, authorizers, integrations,
        # request and cache key parameters. Any change to them must make a new deployment, or
        # the stage keeps serving the old API (for instance a cache without the caller's token
        # in its key) while stage settings change at once.
        fingerprint = pulumi.Output.all(
            routes=pulumi.Output.all(*snapshot), authorizer_type="COGNITO_USER_POOLS", identity_source=AUTH_HEADER,
            user_pools=args.user_pool_arns,
        ).apply(deployment_fingerprint)
        self.deployment = aws.apigateway.Deployment(
            f"{name}-deployment", rest_api=self.api.id, triggers={"snapshot": fingerprint},
            opts=pulumi.ResourceOptions(parent=self, depends_on=wiring))
        self.access_logs = aws.cloudwatch.LogGroup(
            f"{name}-access-logs", retention_in_days=args.log_retention_days, opts=child)
        self.stage = aws.apigateway.Stage(
            f"{name}-stage", rest_api=self.api.id, deployment=self.deployment.id, stage_name=args.stage_name,
            xray_tracing_enabled=True,
            access_log_settings={"destination_arn": self.access_logs.arn, "format": defaults.API_ACCESS_LOG_FORMAT},
            cache_cluster_enabled=caching, cache_cluster_size=defaults.API_CACHE_CLUSTER_SIZE if caching else None,
            opts=child)
        self.settings = aws.apigateway.MethodSettings(
            f"{name}-all-methods", rest_api=self.api.id, stage_name=self.stage.stage_name, method_path="*/*",
            settings={
                "metrics_enabled": True,
                "logging_level": defaults.API_EXECUTION_LOGGING_LEVEL,
                "data_trace_enabled": False,
                "throttling_rate_limit": args.throttle_rate,
                "throttling_burst_limit": args.throttle_burst,
                "caching_enabled": False,
                "require_authorization_for_cache_control": True,
                "unauthorized_cache_control_header_strategy": "FAIL_WITH_403",
            },
            opts=child)
        if caching:
            for route in args.routes:
                if route.method != "GET":
                    continue
                slug = re.sub(r"[^a-z0-9]+", "-", f"cache{route.path}".lower()).strip("-")
                aws.apigateway.MethodSettings(
                    f"{name}-{slug}", rest_api=self.api.id, stage_name=self.stage.stage_name,
                    method_path=method_path("GET", route.path),
                    settings={
                        "metrics_enabled": True,
                        "logging_level": defaults.API_EXECUTION_LOGGING_LEVEL,
                        "data_trace_enabled": False,
                        "throttling_rate_limit": args.throttle_rate,
                        "throttling_burst_limit": args.throttle_burst,
                        "caching_enabled": True,
                        "cache_ttl_in_seconds": args.cache_ttl_seconds,
                        "cache_data_encrypted": True,
                        "require_authorization_for_cache_control": True,
                        "unauthorized_cache_control_header_strategy": "FAIL_WITH_403",
                    },
                    opts=child)
        if args.firewall is not None:
            args.firewall.protect_stage(f"{name}-waf", self.stage.arn)
        self.url = self.stage.invoke_url
        self.register_outputs({"url": self.url})
