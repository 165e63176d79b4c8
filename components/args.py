"""Typed component arguments: parsing from plain data, validation that reports every
problem at once, and the JSON Schema the catalog publishes.

Every ``<ClassName>Args`` is a frozen, keyword-only dataclass. Field types are checked by
pydantic (all type errors collected); each class adds its own rules in ``problems()``.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

import pydantic

from components import defaults


class ComponentArgsError(ValueError):
    """Invalid component arguments; ``problems`` lists every one of them."""

    def __init__(self, component: str, problems: list[str]) -> None:
        self.component = component
        self.problems = list(problems)
        listing = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid arguments for {component}:\n{listing}")


class ValidatedArgs(Protocol):
    def problems(self) -> list[str]: ...


A = TypeVar("A")


def component_args(cls: type[A]) -> type[A]:
    """Make ``cls`` a frozen, keyword-only dataclass whose parsing refuses unknown fields."""
    cls.__pydantic_config__ = pydantic.ConfigDict(extra="forbid")  # type: ignore[attr-defined]
    return dataclasses.dataclass(frozen=True, kw_only=True)(cls)


TAG_PUNCTUATION = "+-=._:/"
"""Besides letters, digits and spaces, what a tag may hold on every resource a case makes:
DynamoDB's documented set, the narrowest of the services the cases tag (IAM and S3 take '@' too)."""


def _tag_text_problem(text: str) -> str | None:
    """Why AWS would refuse ``text`` in a tag key or value, if it would."""
    refused = sorted({c for c in text if unicodedata.category(c)[0] not in "LNZ" and c not in TAG_PUNCTUATION})
    if refused:
        return f"has {''.join(refused)!r}: tags take letters, digits, spaces and {' '.join(TAG_PUNCTUATION)} only"
    return None


@dataclasses.dataclass(frozen=True, kw_only=True)
class CaseArgs:
    """What every case takes besides its own arguments."""

    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    """Tags for every resource of the stack that takes tags, beside the stack's own
    (``serverless-cases:stack``, ``:case``, ``:tenant``, ``:managed-by``)."""
    deletion_protection: bool = True
    """The case's tables and user pools refuse deletion, and its buckets keep their objects (AWS
    refuses to delete a bucket that holds any), so a destroy cannot lose their data by mistake: set
    false and update first (over REST, ``DELETE ...?delete_data=true`` does both)."""
    access_logs: bool = defaults.ACCESS_LOGS
    """Every request to the case's buckets (S3 server access logs) and distributions (CloudFront
    standard logs) is logged into one private log bucket per case, kept a year. Pennies a month
    idle; off only for throwaway stacks."""

    def tag_problems(self) -> list[str]:
        problems = []
        for key, value in self.tags.items():
            if key.lower().startswith("aws:"):
                problems.append(f"tags: {key!r} starts with the reserved prefix aws:")
            elif not 1 <= len(key) <= 128:
                problems.append(f"tags: {key!r} is not 1-128 characters long")
            elif (why := _tag_text_problem(key)) is not None:
                problems.append(f"tags: the key {key!r} {why}")
            if len(value) > 256:
                problems.append(f"tags: the value of {key!r} is longer than 256 characters")
            elif (why := _tag_text_problem(value)) is not None:
                problems.append(f"tags: the value of {key!r} {why}")
        if len(self.tags) > 40:
            problems.append("tags: at most 40 (AWS allows 50 a resource; the stack's own take the rest)")
        return problems


@dataclasses.dataclass(frozen=True, kw_only=True)
class UserPoolTierArgs:
    """For cases with a Cognito user pool."""

    user_pool_tier: str = defaults.USER_POOL_TIER
    """Cognito feature plan: PLUS (threat protection enforced), ESSENTIALS or LITE (none)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class CustomDomainArgs:
    """For cases with a CloudFront distribution."""

    domain_names: list[str] = dataclasses.field(default_factory=list)
    """Custom domain names for the distribution (with certificate_arn): TLS 1.2+ with SNI. Without
    them the distribution answers on its *.cloudfront.net name, where CloudFront accepts TLSv1."""
    certificate_arn: str | None = None
    """The ACM certificate (us-east-1) covering domain_names."""

    def domain_problems(self) -> list[str]:
        return defaults.custom_domain_problems(self.domain_names, self.certificate_arn)


@dataclasses.dataclass(frozen=True, kw_only=True)
class SharedHeadersArgs:
    """For cases with a CloudFront distribution."""

    response_headers_policy_id: str | None = None
    """A CloudFront response headers policy the account already has, for every distribution of the
    stack instead of one of its own: the ``security_headers_policy_id`` output of the account's
    ``account-baseline`` stack (made with ``cloudfront_security_headers``), one of yours, or one of
    AWS's managed ones. An account holds 20 response headers policies (a CloudFront quota), so
    past 20 stacks with a distribution the stacks share one."""

    def shared_headers_problems(self) -> list[str]:
        return defaults.cloudfront_policy_id_problems("response_headers_policy_id", self.response_headers_policy_id)


@dataclasses.dataclass(frozen=True, kw_only=True)
class WafArgs:
    """For cases with distributions or API stages."""

    enable_waf: bool = False
    """AWS WAF (managed common rules, a per-address rate limit) in front of the case's distributions
    and API stages: about $7 a month for each web ACL, idle or not, plus $0.60 per million requests."""


_VALIDATORS: dict[type, pydantic.TypeAdapter[Any]] = {}


def _adapter(cls: type[A]) -> pydantic.TypeAdapter[A]:
    """The validator of ``cls``, built once per process (building one costs tens of milliseconds)."""
    validator = _VALIDATORS.get(cls)
    if validator is None:
        validator = _VALIDATORS[cls] = pydantic.TypeAdapter(cls)
    return validator


def parse_args(cls: type[A], data: Mapping[str, Any] | None, *, component: str | None = None) -> A:
    """Build ``cls`` from plain data (stack config, a REST body), or raise one
    :class:`ComponentArgsError` naming every invalid field."""
    name = component or cls.__name__.removesuffix("Args")
    data = dict(data or {})
    problems = _type_problems(cls, data)
    if not problems:
        value = _adapter(cls).validate_python(data)
        check_args(value, component=name)
        return value
    # Report the semantic problems of the fields that did parse, too: every problem at once.
    bad = {p.split(":", 1)[0].split(".", 1)[0] for p in problems}
    rest = {k: v for k, v in data.items() if k not in bad}
    if not _type_problems(cls, rest):
        parsed = _adapter(cls).validate_python(rest)
        problems += [p for p in getattr(parsed, "problems", list)() if p.split(":", 1)[0] not in bad]
    raise ComponentArgsError(name, problems)


def _type_problems(cls: type, data: dict[str, Any]) -> list[str]:
    try:
        _adapter(cls).validate_python(data)
    except pydantic.ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(arguments)"
            unknown = err["type"] in ("extra_forbidden", "unexpected_keyword_argument")
            problems.append(f"{where}: {'unknown field' if unknown else err['msg']}")
        return problems
    return []


def check_args(args: Any, *, component: str) -> None:
    problems = args.problems() if hasattr(args, "problems") else []
    if problems:
        raise ComponentArgsError(component, problems)


def args_schema(cls: type) -> dict[str, Any]:
    """JSON Schema of an args dataclass, from the same type the component uses."""
    return _adapter(cls).json_schema()


def field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]
