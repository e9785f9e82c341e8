#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test suites.
#
#   .ci/postgres.sh start   installs PostgreSQL from Debian's packages if missing,
#                           starts a cluster on 127.0.0.1, creates a database, and
#                           prints `export CHATBASE_TEST_POSTGRES_URL=...` on stdout
#                           (use: eval "$(.ci/postgres.sh start)"); idempotent
#   .ci/postgres.sh url     prints that export line for a running cluster
#   .ci/postgres.sh stop    stops the cluster and removes its directory
#
# Settings (environment): CHATBASE_PG_PORT (default 55432), CHATBASE_PG_DIR
# (default /tmp/chatbase-pg-<port>). PostgreSQL refuses to run as root: as root
# the cluster belongs to the `postgres` user. Messages go to stderr.
set -euo pipefail

PORT="${CHATBASE_PG_PORT:-55432}"
DIR="${CHATBASE_PG_DIR:-/tmp/chatbase-pg-${PORT}}"
DATA="${DIR}/data"
DB=chatbase_test

log() { printf 'postgres.sh: %s\n' "$*" >&2; }

bindir() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  if [ -n "${dir}" ] && [ -x "${dir}/initdb" ]; then
    printf '%s\n' "${dir}"
  elif command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
  fi
}

install() {
  if [ -n "$(bindir)" ]; then
    return
  fi
  log "installing PostgreSQL from Debian's packages"
  if [ "$(id -u)" -ne 0 ]; then
    log "PostgreSQL is not installed and this is not root: install the postgresql package"
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
}

# Runs a PostgreSQL program as the cluster's owner.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

url() {
  printf 'export CHATBASE_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:%s/%s\n' "${PORT}" "${DB}"
}

running() {
  local bin
  bin="$(bindir)"
  [ -n "${bin}" ] && [ -f "${DATA}/PG_VERSION" ] && as_owner "${bin}/pg_ctl" -D "${DATA}" status >/dev/null 2>&1
}

start() {
  install
  local bin
  bin="$(bindir)"
  if running; then
    log "already running on 127.0.0.1:${PORT} (${DATA})"
    url
    return
  fi
  rm -rf "${DIR}"
  mkdir -p "${DIR}"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "${DIR}"
  fi
  log "initdb in ${DATA}"
  as_owner "${bin}/initdb" -D "${DATA}" -U postgres -A trust -E UTF8 --no-instructions >"${DIR}/initdb.log" 2>&1 \
    || { cat "${DIR}/initdb.log" >&2; exit 1; }
  log "starting on 127.0.0.1:${PORT}"
  # Durable settings as in production (fsync on): the suites test durability.
  # Every test opens its own database and pools: allow plenty of connections.
  as_owner "${bin}/pg_ctl" -D "${DATA}" -l "${DIR}/server.log" -w -t 60 \
    -o "-p ${PORT} -k ${DIR} -c listen_addresses=127.0.0.1 -c max_connections=400" start >&2 \
    || { cat "${DIR}/server.log" >&2; exit 1; }
  as_owner "${bin}/psql" -h 127.0.0.1 -p "${PORT}" -U postgres -d postgres -qAt \
    -c "CREATE DATABASE ${DB}" >&2
  url
}

stop() {
  local bin
  bin="$(bindir)"
  if running; then
    log "stopping the cluster in ${DATA}"
    as_owner "${bin}/pg_ctl" -D "${DATA}" -m fast -w stop >&2 || true
  fi
  rm -rf "${DIR}"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  url) url ;;
  *) log "usage: $0 [start|stop|url]"; exit 2 ;;
esac
