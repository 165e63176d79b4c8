"""The catalog of cases: one entry per reference architecture, naming its component, its
typed arguments (the single source of the argument schema) and its declared outputs."""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import pulumi

from components.args import args_schema, parse_args
from components.cases import account_baseline, big_data_ingestion, blog, microservices, premium_content, software_updates, todo_app


class UnknownCaseError(LookupError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown case {name!r}; valid cases: {', '.join(sorted(CASES))}")


class CaseComponent(Protocol):
    def outputs(self) -> dict[str, pulumi.Output[Any]]: ...


# A case's component class: (resource name, parsed args, options) -> component.
ComponentFactory = Callable[[str, Any, pulumi.ResourceOptions | None], CaseComponent]


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    description: str
    component: ComponentFactory
    args: type
    outputs: tuple[str, ...]
    """Outputs every stack of the case has (optional parts add more)."""
    example_args: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """Arguments that make a complete stack (the required ones, with example values)."""
    protects_data: bool = False
    """Whether ``deletion_protection`` guards something here (tables, user pools, buckets with objects)."""
    needs: tuple[str, ...] = ()
    """Cases a region of the account must have deployed first (``account-baseline`` for a REST API's
    logging): a stack of this case fails there until then."""

    def parse_args(self, data: Mapping[str, Any] | None) -> Any:
        return parse_args(self.args, data, component=self.name)

    def schema(self) -> dict[str, Any]:
        return args_schema(self.args)

    def build(self, resource_name: str, data: Mapping[str, Any] | None,
              opts: pulumi.ResourceOptions | None = None) -> CaseComponent:
        return self.component(resource_name, self.parse_args(data), opts)


BASELINE = "account-baseline"
"""The case an account's region needs once before the cases with a REST API."""

EXTRA_CASES_ENV = "SERVERLESS_CASES_EXTRA_CASES"
"""Modules (comma-separated) whose ``CASE`` joins the catalog: cases of your own, served and
deployed like the project's."""


def _extra_cases() -> list[Case]:
    cases = []
    for name in filter(None, (n.strip() for n in os.environ.get(EXTRA_CASES_ENV, "").split(","))):
        case = getattr(importlib.import_module(name), "CASE", None)
        if not isinstance(case, Case):
            raise ImportError(f"{EXTRA_CASES_ENV}: module {name} has no CASE (a components.catalog.Case)")
        cases.append(case)
    return cases


BUILT_IN: dict[str, Case] = {
    case.name: case
    for case in (
        Case("todo-app", todo_app.DESCRIPTION, todo_app.TodoApp, todo_app.TodoAppArgs,
             ("api_url", "user_pool_id", "client_id", "identity_pool_id", "bucket_name", "table_name",
              "dax_endpoint", "access_log_bucket"), protects_data=True, needs=(BASELINE,)),
        Case("blog", blog.DESCRIPTION, blog.Blog, blog.BlogArgs,
             ("site_url", "content_bucket", "upload_api_url", "upload_bucket", "thumbnails_bucket", "table_name",
              "table_stream_arn", "user_pool_id", "sender_identity", "access_log_bucket"),
             {"sender_email": "welcome@myblog.example"}, protects_data=True, needs=(BASELINE,)),
        Case("software-updates", software_updates.DESCRIPTION, software_updates.SoftwareUpdates,
             software_updates.SoftwareUpdatesArgs, ("distribution_domain", "origin_dns_name", "cached_path_patterns",
                                                     "access_log_bucket"), protects_data=True),
        Case("premium-content", premium_content.DESCRIPTION, premium_content.PremiumContent,
             premium_content.PremiumContentArgs,
             ("registration_url", "signed_url_api_url", "distribution_domain", "bucket_name", "key_group_id",
              "user_pool_id", "client_id", "access_log_bucket"), protects_data=True, needs=(BASELINE,)),
        Case("big-data-ingestion", big_data_ingestion.DESCRIPTION, big_data_ingestion.BigDataIngestion,
             big_data_ingestion.BigDataIngestionArgs,
             ("iot_topic", "stream_name", "delivery_stream_name", "ingestion_bucket", "reporting_bucket", "queue_url",
              "workgroup_name", "access_log_bucket"), protects_data=True),
        Case("microservices", microservices.DESCRIPTION, microservices.Microservices, microservices.MicroservicesArgs,
             ("zone_id", "name_servers", "service_urls"),
             {"zone_name": "example.net", "services": [
                 {"name": "orders", "kind": "api"},
                 {"name": "www", "kind": "static"},
                 {"name": "legacy", "kind": "endpoint", "addresses": ["192.0.2.10", "192.0.2.11"]}]},
             protects_data=True, needs=(BASELINE,)),
        Case(BASELINE, account_baseline.DESCRIPTION, account_baseline.AccountBaseline,
             account_baseline.AccountBaselineArgs, ("api_gateway_cloudwatch_role_arn",)),
    )
}
CASES: dict[str, Case] = dict(BUILT_IN)
for _extra in _extra_cases():
    if _extra.name in CASES:
        raise ImportError(f"{EXTRA_CASES_ENV}: a case named {_extra.name!r} exists already")
    CASES[_extra.name] = _extra


def needing(prerequisite: str) -> tuple[str, ...]:
    """The cases that need ``prerequisite`` deployed first in their account's region."""
    return tuple(sorted(name for name, case in CASES.items() if prerequisite in case.needs))


def get_case(name: str) -> Case:
    try:
        return CASES[name]
    except KeyError:
        raise UnknownCaseError(name) from None
