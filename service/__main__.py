"""`make run`: start the control plane.

The REST control plane is not built yet (it is the next issue). Until it lands this entry
point says so, and shows how to drive the same stacks with the plain `pulumi` CLI.
"""

import sys

MESSAGE = """\
serverless-cases: set-up is complete, but the REST control plane is not built yet.

Run a case directly with the Pulumi CLI on the offline sandbox target:

  . toolchain/env.sh sandbox
  pulumi stack init dev
  pulumi config set serverless-cases:target sandbox
  pulumi config set serverless-cases:case todo-app
  pulumi preview
  pulumi up --yes
  pulumi stack output
  pulumi destroy --yes

See README.md, "Run a case with the Pulumi CLI".
"""


def main() -> int:
    print(MESSAGE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
