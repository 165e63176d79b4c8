# Source this file to run the plain `pulumi` CLI on this project:
#
#   . toolchain/env.sh            # sandbox target (offline), local file backend
#   . toolchain/env.sh aws        # the real AWS provider with your credentials
#
# It puts the pinned Pulumi CLI first on PATH, adds the sandbox provider plugin only for
# the sandbox target, and points the CLI at the project's local state backend and
# passphrase file unless you have chosen your own (PULUMI_BACKEND_URL,
# PULUMI_CONFIG_PASSPHRASE[_FILE]).
_sc_target=${1:-sandbox}
_sc_root=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)
case "$_sc_target" in sandbox|aws) ;; *) echo "env.sh: unknown target '$_sc_target' (sandbox or aws)" >&2; return 1 2>/dev/null || exit 1;; esac
_sc_bin=$("$_sc_root/toolchain/ensure-pulumi.sh") || { echo "env.sh: no Pulumi toolchain" >&2; return 1 2>/dev/null || exit 1; }
eval "$("$_sc_root/.venv/bin/python" -m programs.shellenv "$_sc_target" "$_sc_bin")"
unset _sc_target _sc_root _sc_bin
