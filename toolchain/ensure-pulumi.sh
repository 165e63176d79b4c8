#!/usr/bin/env bash
# Makes sure a Pulumi CLI and a Python language host are available, and prints the
# directory that holds them (to be put first on PATH).
#
#   1. A `pulumi` of at least PULUMI_VERSION already on PATH is used as it is.
#   2. Otherwise the pinned CLI is built from Go modules into a cache outside the work
#      tree, keyed by version, so every clone of the project reuses it.
#   3. Neither a suitable `pulumi` nor Go: fail at once, saying how to install Pulumi.
#
# The Python language host is the project's own (toolchain/language_host.py), run by a
# small virtualenv in the same cache; it drives `pulumi-language-python-exec`, which is
# taken from the pinned sdk/v3 Go module. See README "Toolchain" for why.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=toolchain/versions.env
. "$here/versions.env"

cache_root=${SERVERLESS_CASES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/serverless-cases}
dest="$cache_root/pulumi-v$PULUMI_VERSION"
bin="$dest/bin"

log() { printf 'toolchain: %s\n' "$*" >&2; }
die() { printf 'toolchain: error: %s\n' "$*" >&2; exit 1; }

version_ge() { # version_ge A B: A >= B (dotted numeric)
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

python_for_host=${PYTHON:-python3}

install_python_pieces() { # $1: bin dir, $2: the sdk/v3 module's python/ folder
  local target=$1 sdk_python=$2 exec_src="$2/cmd"
  # The dynamic-provider plugin, beside `pulumi` where the engine finds bundled plugins.
  install -m 0755 "$sdk_python/dist/pulumi-resource-pulumi-python" "$target/pulumi-resource-pulumi-python"
  if [ ! -x "$dest/langhost-venv/bin/python" ] || ! "$dest/langhost-venv/bin/python" -c "import pulumi, grpc" 2>/dev/null; then
    log "creating the language host's virtualenv"
    rm -rf "$dest/langhost-venv"
    "$python_for_host" -m venv "$dest/langhost-venv"
    "$dest/langhost-venv/bin/pip" install --quiet --disable-pip-version-check "pulumi==$PULUMI_PYTHON_SDK_VERSION"
  fi
  install -m 0755 "$exec_src/pulumi-language-python-exec" "$target/pulumi-language-python-exec"
  install -m 0644 "$here/language_host.py" "$dest/language_host.py"
  install -m 0644 "$here/engine_watchdog.py" "$dest/engine_watchdog.py"
  install -m 0644 "$here/protos.py" "$dest/protos.py"
  install -m 0644 "$here/preload.py" "$dest/preload.py"
  # The preloader's stand-in (toolchain/gomod/standin), built in a copy of the toolchain's module.
  local standin_work
  standin_work=$(mktemp -d)
  cp "$here/gomod/go.mod" "$here/gomod/go.sum" "$standin_work/"
  cp -r "$here/gomod/standin" "$standin_work/standin"
  (cd "$standin_work" && go build -trimpath -mod=mod -ldflags "-s -w" -o "$dest/preload-stand-in.tmp" ./standin) \
    || { rm -rf "$standin_work"; die "could not build the preloader's stand-in (toolchain/gomod/standin)"; }
  rm -rf "$standin_work"
  mv "$dest/preload-stand-in.tmp" "$dest/preload-stand-in"
  cat > "$target/pulumi-language-python.tmp" <<EOF
#!/bin/sh
# serverless-cases Python language host (see toolchain/language_host.py); the service names
# its preloaded stand-in for the interpreter (see toolchain/preload.py)
exec "\${SERVERLESS_CASES_LANGHOST_PYTHON:-$dest/langhost-venv/bin/python}" "$dest/language_host.py" "\$@"
EOF
  chmod 0755 "$target/pulumi-language-python.tmp"
  mv "$target/pulumi-language-python.tmp" "$target/pulumi-language-python"
}

# 1. A suitable pulumi on PATH (not our own cache entry).
if [ -z "${SERVERLESS_CASES_FORCE_BUILD:-}" ] && command -v pulumi >/dev/null 2>&1; then
  found=$(command -v pulumi)
  found_dir=$(cd "$(dirname "$found")" && pwd)
  if [ "$found_dir" != "$bin" ]; then
    have=$(pulumi version 2>/dev/null | sed 's/^v//')
    if [ -n "$have" ] && version_ge "${have%%-*}" "$PULUMI_VERSION"; then
      if [ -x "$found_dir/pulumi-language-python" ]; then
        log "using pulumi $have from $found_dir"
        echo "$found_dir"
        exit 0
      fi
      log "pulumi $have on PATH has no Python language host beside it; using the cached toolchain"
    fi
  fi
fi

# 2. The cached build, if complete.
# The stamp names the content of the Python pieces: changing them reinstalls them (no rebuild).
pieces=$(cat "$here/language_host.py" "$here/engine_watchdog.py" "$here/protos.py" "$here/preload.py" "$here/gomod/standin/main.go" "$here/versions.env" | sha256sum | cut -c1-12)
stamp="$dest/.complete-$pieces"
have_cli() { [ -x "$bin/pulumi" ] && [ "$("$bin/pulumi" version 2>/dev/null)" = "v$PULUMI_VERSION" ]; }
sdk_python_dir() {
  (cd "$here/gomod" && go mod download github.com/pulumi/pulumi/sdk/v3 \
    && echo "$(go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)/python")
}
if [ -f "$stamp" ] && have_cli && [ -x "$bin/pulumi-language-python" ] && [ -x "$bin/pulumi-resource-pulumi-python" ]; then
  echo "$bin"
  exit 0
fi

# 3. Build it.
command -v go >/dev/null 2>&1 || die "no pulumi >= $PULUMI_VERSION on PATH and no Go toolchain to build one.
Install Pulumi (https://www.pulumi.com/docs/install/) or Go >= 1.26, then run make again."

mkdir -p "$bin"
lock="$dest/.build.lock"
exec 9>"$lock"
flock 9  # concurrent clones wait for one build instead of racing
if [ -f "$stamp" ] && have_cli; then echo "$bin"; exit 0; fi

# The CLI is there but Python pieces are missing or older: install them, no rebuild.
if have_cli; then
  install_python_pieces "$bin" "$(sdk_python_dir)"
  touch "$stamp"
  echo "$bin"
  exit 0
fi

started=$(date +%s)
log "building pulumi v$PULUMI_VERSION from Go modules into $dest (first time only)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$here/gomod/go.mod" "$here/gomod/go.sum" "$here/gomod/tools.go" "$work/"
(
  cd "$work"
  go build -trimpath -mod=mod \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
    -o "$bin/pulumi.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
  mv "$bin/pulumi.tmp" "$bin/pulumi"
)
# The exec script and the dynamic-provider plugin ship inside the sdk/v3 module (python/).
install_python_pieces "$bin" "$(sdk_python_dir)"
touch "$stamp"
log "built in $(( $(date +%s) - started ))s"
echo "$bin"
