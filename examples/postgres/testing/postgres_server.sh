#!/usr/bin/env bash
# A throwaway PostgreSQL 15 for tests: initdb in a fresh short directory under /tmp, the server
# listening only on a unix socket in that directory (no TCP), password (scram-sha-256) logins
# only, one superuser with a random password. Run as root (CI), initdb and postgres run as
# `nobody` (initdb refuses root) in a directory nobody owns; otherwise as the caller.
#
#   postgres_server.sh start            starts a server; prints its settings as KEY=VALUE lines
#   postgres_server.sh stop DIR         stops it (immediate) and removes DIR
#   postgres_server.sh run CMD [ARG]... starts a server, runs CMD with the settings in its
#                                       environment, stops the server, exits with CMD's status
#
# The settings (printed by start, exported by run):
#   BULWARK_PG_DIR       the server's directory (data, log, socket), removed by stop
#   BULWARK_PG_HOST      the socket directory (libpq's host)
#   BULWARK_PG_PORT      the port in the socket's name
#   BULWARK_PG_USER      the superuser
#   BULWARK_PG_PASSWORD  its password
#   BULWARK_PG_DATABASE  the database to connect to
#   BULWARK_PG_URL       a libpq URI with all of the above (the password percent-free: [A-Za-z0-9])
#
# The server is ready when start returns: pg_ctl -w waits until it accepts connections (the
# -t bound is only a hang guard). BULWARK_PG_BINDIR overrides /usr/lib/postgresql/15/bin.
set -euo pipefail

BINDIR="${BULWARK_PG_BINDIR:-/usr/lib/postgresql/15/bin}"
SUPERUSER="bulwark_root"
DATABASE="postgres"
PORT=5432
# Hang guard for start and stop (seconds); a healthy server starts in well under a second.
WAIT_SECONDS=120

die() {
  echo "postgres_server.sh: $*" >&2
  exit 1
}

# Runs its arguments as the server's user: nobody when we are root, else ourselves.
as_server_user() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd / && setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@")
  else
    "$@"
  fi
}

start() {
  [ -x "$BINDIR/initdb" ] || die "no $BINDIR/initdb: install postgresql-15 (tools/setup)"
  local dir password
  # /tmp, not $TEST_TMPDIR: a socket path must fit in 107 bytes, and nobody must reach it.
  dir="$(mktemp -d /tmp/bwpgXXXXXX)"
  password="$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')"
  password="${password:0:24}"
  [ "${#password}" -ge 16 ] || die "could not make a random password"
  printf '%s' "$password" >"$dir/pwfile"
  if [ "$(id -u)" -eq 0 ] && ! chown -R nobody:nogroup "$dir" 2>/dev/null; then
    rm -rf "$dir"
    die "cannot give $dir to nobody (Bazel's linux-sandbox maps only root: tag the test no-sandbox)"
  fi
  chmod 700 "$dir"
  if ! as_server_user "$BINDIR/initdb" -D "$dir/data" -U "$SUPERUSER" --pwfile="$dir/pwfile" \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C --no-sync \
    --no-instructions >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    rm -rf "$dir"
    die "initdb failed (log above)"
  fi
  rm -f "$dir/pwfile"
  # No TCP at all; the socket in $dir; durability off (a test database).
  if ! as_server_user "$BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t "$WAIT_SECONDS" \
    -o "-c listen_addresses='' -c unix_socket_directories='$dir' -p $PORT -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >"$dir/pg_ctl.log" 2>&1; then
    cat "$dir/pg_ctl.log" "$dir/server.log" >&2 || true
    stop "$dir"
    die "the server did not start (logs above)"
  fi
  echo "BULWARK_PG_DIR=$dir"
  echo "BULWARK_PG_HOST=$dir"
  echo "BULWARK_PG_PORT=$PORT"
  echo "BULWARK_PG_USER=$SUPERUSER"
  echo "BULWARK_PG_PASSWORD=$password"
  echo "BULWARK_PG_DATABASE=$DATABASE"
  echo "BULWARK_PG_URL=postgresql://$SUPERUSER:$password@/$DATABASE?host=$dir&port=$PORT"
}

stop() {
  local dir="$1"
  case "$dir" in
    /tmp/bwpg*) ;;
    *) die "stop: $dir is not a directory this script made" ;;
  esac
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_server_user "$BINDIR/pg_ctl" -D "$dir/data" -m immediate -w -t "$WAIT_SECONDS" stop \
      >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

run() {
  local settings dir status
  settings="$(start)"
  dir="$(printf '%s\n' "$settings" | sed -n 's/^BULWARK_PG_DIR=//p')"
  trap 'stop "$dir"' EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT
  while IFS= read -r line; do
    export "${line?}"
  done <<<"$settings"
  status=0
  "$@" || status=$?
  exit "$status"
}

case "${1:-}" in
  start)
    start
    ;;
  stop)
    [ $# -eq 2 ] || die "usage: postgres_server.sh stop DIR"
    stop "$2"
    ;;
  run)
    shift
    [ $# -ge 1 ] || die "usage: postgres_server.sh run CMD [ARG]..."
    run "$@"
    ;;
  *)
    die "usage: postgres_server.sh start | stop DIR | run CMD [ARG]..."
    ;;
esac
