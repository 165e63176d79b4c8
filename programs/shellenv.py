"""Print the shell exports that set up a terminal for one target (used by toolchain/env.sh)."""

from __future__ import annotations

import os
import shlex
import sys

from programs import settings, targets


def main(argv: list[str]) -> int:
    target, toolchain_bin = argv[0], argv[1]
    env = targets.engine_env(target, os.environ, toolchain_bin)
    env.update(settings.state_env(os.environ))
    for key in sorted(env):
        if os.environ.get(key) != env[key]:
            print(f"export {key}={shlex.quote(env[key])}")
    for key in sorted(set(os.environ) - set(env)):
        print(f"unset {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
