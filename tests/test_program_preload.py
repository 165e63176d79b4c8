"""A worker's preload leaves nothing for a run to import: the module list follows the cases."""

from __future__ import annotations

import json
import subprocess
import sys

from programs.targets import REPO_ROOT

# In a fresh interpreter: which pulumi_aws modules did building every case load that the
# preload had not? pulumi_aws modules are lazy: one is loaded once it is no longer lazy.
PROBE = """
import json, sys, types
from programs import program
def loaded():
    return {n.split('.')[1] for n, m in list(sys.modules.items())
            if n.startswith('pulumi_aws.') and n.count('.') == 1 and type(m) is types.ModuleType}
program.preload()
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
