"""The project's Python program (``Pulumi.yaml`` ``main: programs/``): runs :func:`programs.program.main`."""

import sys

import pulumi

from programs.program import ProgramError, main

# The executor's exit code for "an actionable message was already shown": the engine then
# reports that message alone, without a second generic failure.
EXIT_AFTER_MESSAGE = 32

try:
    main()
except ProgramError as exc:
    pulumi.log.error(str(exc))
    sys.exit(EXIT_AFTER_MESSAGE)
