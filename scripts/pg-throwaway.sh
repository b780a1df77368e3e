#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL cluster for the test suite.
#   scripts/pg-throwaway.sh start DIR PORT   → prints the connection URL on stdout
#   scripts/pg-throwaway.sh stop DIR
# As root, the server runs as the `postgres` user on a directory that user owns (initdb refuses
# to run as root).
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bin" ] || { echo "pg-throwaway: PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
cmd=${1:?start|stop}; dir=${2:?data directory}
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case "$cmd" in
  start)
    port=${3:?port}
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$dir"; fi
    if [ ! -f "$dir/PG_VERSION" ]; then
      as_pg "$bin/initdb" -D "$dir" -U keel --auth=trust --no-sync -E UTF8 >/dev/null
    fi
    # Durability off: this cluster only ever holds test databases and dies with the run.
    as_pg "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400" \
      start >/dev/null
    echo "postgres://keel@127.0.0.1:$port/postgres"
    ;;
  stop)
    if [ -f "$dir/postmaster.pid" ]; then
      pid=$(head -n 1 "$dir/postmaster.pid")
      as_pg "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
    fi
    ;;
  *) echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
