"""Entry point of the sandbox provider plugin: ``python -m sandbox``."""

import sys

from sandbox.provider import serve

sys.exit(serve())
