"""A test program that registers AWS resources exactly as configured, so the engine tests can
show each sandbox rule refusing what AWS refuses.

``serverless-cases:resources`` is a JSON list of ``{"name", "type", "inputs", "depends_on"}``.
Inputs are in the provider's wire format; a string ``${other.prop}`` is replaced by that
output of an earlier resource of the list, and ``depends_on`` names earlier resources.
"""

import json
import re
from typing import Any

import pulumi

REFERENCE = re.compile(r"\$\{([\w-]+)\.(\w+)\}")
registered: dict[str, pulumi.CustomResource] = {}


def referenced(value: Any) -> set[tuple[str, str]]:
    if isinstance(value, str):
        return set(REFERENCE.findall(value))
    if isinstance(value, dict):
        return set().union(*(referenced(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(referenced(v) for v in value)) if value else set()
    return set()


def resolve(value: Any) -> Any:
    refs = sorted(referenced(value))
    if not refs:
        return value
    outputs = [getattr(registered[name], prop) for name, prop in refs]

    def substitute(values: list[Any], item: Any = value) -> Any:
        found = dict(zip(refs, values, strict=True))
        if isinstance(item, str):
            return REFERENCE.sub(lambda m: str(found[(m.group(1), m.group(2))]), item)
        if isinstance(item, dict):
            return {k: substitute(values, v) for k, v in item.items()}
        if isinstance(item, list):
            return [substitute(values, v) for v in item]
        return item

    return pulumi.Output.all(*outputs).apply(substitute)


specs = json.loads(pulumi.Config("serverless-cases").require("resources"))
wanted: dict[str, set[str]] = {}
for spec in specs:
    for name, prop in referenced(spec.get("inputs", {})):
        wanted.setdefault(name, set()).add(prop)
for spec in specs:
    placeholders = {prop: None for prop in wanted.get(spec["name"], set()) if prop not in spec.get("inputs", {})}
    props = {**placeholders, **{k: resolve(v) for k, v in spec.get("inputs", {}).items()}}
    options = pulumi.ResourceOptions(depends_on=[registered[n] for n in spec.get("depends_on", [])])
    registered[spec["name"]] = pulumi.CustomResource(spec["type"], spec["name"], props, opts=options)
pulumi.export("ids", [resource.id for resource in registered.values()])
