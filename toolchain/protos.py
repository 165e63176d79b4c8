"""Pulumi's generated gRPC modules, without the rest of the Pulumi SDK.

A plugin of ours (the sandbox provider, the language host) needs a few of the SDK's generated
protobuf modules. Imported the usual way, they bring the SDK's package initialisation with them,
which imports the whole SDK and every other generated module: about 0.2 s of CPU and 14 MB in
each plugin process, and a run starts three such processes. ``load`` imports the named modules
from the SDK's files under hollow parent packages, then takes the hollow parents out of
``sys.modules`` again, so that a later ``import pulumi`` in the same process gets the real SDK.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_PACKAGE = "pulumi.runtime.proto"


def load(*names: str) -> tuple[ModuleType, ...]:
    """The modules ``pulumi.runtime.proto.<name>`` for ``names``, e.g. ``load("provider_pb2")``."""
    if _PACKAGE in sys.modules:  # the SDK is here already: nothing to spare
        return tuple(importlib.import_module(f"{_PACKAGE}.{name}") for name in names)
    sdk = importlib.util.find_spec("pulumi")  # a top-level spec: found, not executed
    if sdk is None or not sdk.submodule_search_locations:
        raise ImportError("the Pulumi SDK (pulumi) is not installed")
    root = Path(next(iter(sdk.submodule_search_locations)))
    hollow = []
    for name, folder in (("pulumi", root), ("pulumi.runtime", root / "runtime"), (_PACKAGE, root / "runtime" / "proto")):
        if name not in sys.modules:
            spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
            spec.submodule_search_locations = [str(folder)]
            sys.modules[name] = importlib.util.module_from_spec(spec)
            hollow.append(name)
    try:
        return tuple(importlib.import_module(f"{_PACKAGE}.{name}") for name in names)
    finally:
        for name in hollow:
            del sys.modules[name]
