# PostgreSQL + PostGIS on loopback for the benchmarks' side-by-side runs. Source this file, then:
#   pg_start DIR PORT   installs (Debian packages) if needed, initialises DIR, starts the server
#   pg_sql ARGS...      runs psql against it as the postgres user
#   pg_stop             stops it (also registered by pg_start to run on exit)
# Everything listens on 127.0.0.1 only.

pg_install() {
  if ! ls /usr/lib/postgresql/*/lib/postgis-3.so >/dev/null 2>&1; then
    echo "== installing postgresql + postgis (Debian packages)"
    local sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq postgresql postgresql-postgis >/dev/null
  fi
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
}

pg_start() {
  PG_DIR=$1
  PG_PORT=$2
  pg_install
  id postgres >/dev/null 2>&1 || useradd -r postgres
  mkdir -p "$PG_DIR" && chown postgres "$PG_DIR" && chmod 755 "$(dirname "$PG_DIR")"
  su postgres -c "$PG_BIN/initdb -D $PG_DIR/data -A trust -U postgres" >/dev/null
  su postgres -c "$PG_BIN/pg_ctl -D $PG_DIR/data -o '-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c shared_buffers=1GB -c max_parallel_workers_per_gather=0 -c max_connections=200' -l $PG_DIR/log start -w" >/dev/null
  psql_version=$("$PG_BIN/psql" --version)
}

pg_sql() {
  su postgres -c "$PG_BIN/psql -h 127.0.0.1 -p $PG_PORT -U postgres -qAt $*"
}

pg_bench() {
  su postgres -c "$PG_BIN/pgbench -h 127.0.0.1 -p $PG_PORT -U postgres $*"
}

pg_stop() {
  [ -n "${PG_DIR:-}" ] && su postgres -c "$PG_BIN/pg_ctl -D $PG_DIR/data stop -m fast" >/dev/null 2>&1 || true
}
