#!/usr/bin/env bash
# Makes sure a PostgreSQL server for the many-nodes tests and for trying a fleet on one machine
# is running, and prints its URL (libpq form: postgresql://user@host:port/postgres).
#
#   1. PostgreSQL 15 server binaries: the machine's, else Debian's `postgresql` package (apt-get).
#   2. A cluster of its own in the cache (/var/tmp as root; outside the work tree), owned by the `postgres` user
#      when run as root (initdb refuses root), listening on 127.0.0.1:$SERVERLESS_CASES_PG_PORT only,
#      trust authentication (loopback, tests only: never a production setup).
#   3. Started if it is not running; a running one is reused.
set -euo pipefail

port=${SERVERLESS_CASES_PG_PORT:-54329}
cache_root=${SERVERLESS_CASES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/serverless-cases}
# As root the cluster belongs to `postgres`, which cannot enter root's home: it lives in /var/tmp then.
if [ "$(id -u)" = 0 ]; then cluster=/var/tmp/serverless-cases/postgres-$port; else cluster="$cache_root/postgres-$port"; fi

log() { printf 'postgres: %s\n' "$*" >&2; }
die() { printf 'postgres: error: %s\n' "$*" >&2; exit 1; }

find_bin() {
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/postgres" ] && [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  done
  return 1
}

if ! bin=$(find_bin); then
  log "no PostgreSQL server binaries: installing Debian's postgresql package"
  command -v apt-get >/dev/null || die "no PostgreSQL server and no apt-get: install PostgreSQL 15 or newer"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 || {
    apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2; } \
    || die "apt-get could not install postgresql"
  bin=$(find_bin) || die "postgresql was installed but its server binaries were not found"
fi

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ ! -s "$cluster/PG_VERSION" ]; then
  log "creating a cluster in $cluster"
  rm -rf "$cluster"
  mkdir -p "$cluster"
  [ "$(id -u)" = 0 ] && chown postgres: "$cluster"
  as_owner "$bin/initdb" -D "$cluster" -U postgres --auth=trust -E UTF8 --no-instructions >/dev/null
fi

if ! as_owner "$bin/pg_ctl" -D "$cluster" status >/dev/null 2>&1; then
  log "starting it on 127.0.0.1:$port"
  as_owner "$bin/pg_ctl" -D "$cluster" -l "$cluster/server.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $port -k /tmp -c max_connections=400 -c fsync=off" >/dev/null \
    || { tail -20 "$cluster/server.log" >&2; die "the server did not start"; }
fi
"$bin/pg_isready" -h 127.0.0.1 -p "$port" -t 30 >/dev/null || die "the server does not answer on port $port"
echo "postgresql://postgres@127.0.0.1:$port/postgres"
