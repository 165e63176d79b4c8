"""A worker's preload leaves nothing for a run to import: the module list follows the cases."""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import threading
import warnings

from programs.targets import REPO_ROOT
from tests.mocks import build

# In a fresh interpreter: which pulumi_aws modules did building every case load that the
# preload had not? pulumi_aws modules are lazy: one is loaded once it is no longer lazy.
PROBE = """
import json, sys, types
from programs import program
def loaded():
    return {n.split('.')[1] for n, m in list(sys.modules.items())
            if n.startswith('pulumi_aws.') and n.count('.') == 1 and type(m) is types.ModuleType}
program.preload(warm=False)  # the module list alone
preloaded = loaded()
from components import CASES
from tests.mocks import build
for name in CASES:
    build(name)
print(json.dumps({"preloaded": sorted(preloaded), "missed": sorted(loaded() - preloaded)}))
"""


def test_preload_loads_every_aws_module_a_case_uses() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300, check=True)
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["missed"] == [], f"add them to programs.program.AWS_MODULES: {found['missed']}"
    assert {"s3", "lambda_", "cloudfront", "dynamodb"} <= set(found["preloaded"])


# In a fresh interpreter: after the fork server's preload, does a case's program still work out
# anything per class (pulumi's property types, the argument validator)? And did the warm-up leave
# anything of its mocks behind: settings, configuration, a root resource, threads, no event loop?
WARM_PROBE = """
import asyncio, json, threading
import pulumi
from pulumi import _types
from programs import program
from components import args
program.preload()
left = {"threads": [t.name for t in threading.enumerate()],
        "monitor": repr(pulumi.runtime.settings.SETTINGS.monitor),
        "root": repr(pulumi.runtime.settings.get_root_resource()),
        "config": dict(pulumi.runtime.config.CONFIG.get())}
loop = asyncio.get_event_loop()
left["loop_usable"] = not loop.is_closed()
types_before, adapters_before = _types._types_from_py_properties.cache_info().misses, len(args._VALIDATORS)
from tests.mocks import build
for name in ("software-updates", "blog"):
    build(name)
print(json.dumps({**left, "type_misses": _types._types_from_py_properties.cache_info().misses - types_before,
                  "adapter_misses": len(args._VALIDATORS) - adapters_before}))
"""


def test_a_runs_program_finds_every_cases_per_class_work_done_and_no_trace_of_the_warm_up() -> None:
    done = subprocess.run([sys.executable, "-c", WARM_PROBE], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300, check=True)
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["type_misses"] == 0, "a run still resolves some resource class's property types itself"
    assert found["adapter_misses"] == 0, "a run still builds its case's argument validator"
    assert found["threads"] == ["MainThread"], "a fork server must not fork with other threads alive"
    assert found["monitor"] == "None" and found["root"] == "None" and found["config"] == {}
    assert found["loop_usable"]


def test_a_build_under_mocks_leaves_no_event_loop_open_and_no_thread_behind() -> None:
    # The SDK makes a loop for the build and one for each thread its mock monitor answers in; left
    # open, the collector frees them during whatever runs later, with a ResourceWarning there.
    threads = set(threading.enumerate())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build("software-updates", fresh=True)
        left = set(threading.enumerate()) - threads
        asyncio.run(asyncio.sleep(0))  # as a later test would: the thread's loop is replaced
        gc.collect()
    assert left == set(), f"threads left by the build: {left}"
    unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert unclosed == []
