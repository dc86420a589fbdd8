#!/bin/sh
# A throwaway PostgreSQL server for the tests (issue 8): the ctest fixture `pg` (tests
# pg-server-start / pg-server-stop) and the test binaries' private server (pg_server.cpp) both
# start and stop it here.
#
#   pg-server.sh start DIR PORT [OWNER_PID]   initdb into DIR/data (-A trust, superuser
#                                             "postgres"), postgres on 127.0.0.1:PORT and a
#                                             unix socket in DIR, fsync off; prints the
#                                             maintenance URL. With OWNER_PID, a watchdog
#                                             stops the server and removes DIR once that
#                                             process has ended (a test binary that crashed).
#   pg-server.sh stop DIR                     pg_ctl stop -m immediate, then removes DIR.
#   pg-server.sh bindir                       prints the server binaries' directory.
#
# The binaries: $MAILREPORT_PG_BINDIR, else the newest /usr/lib/postgresql/<version>/bin. The
# server refuses to run as root: as root it runs as user postgres (runuser), DIR owned by it.
# When the binaries are missing, `start` says so and exits 0 (the tests that need the server
# then skip), or 1 under CI=true, where the server is required.
# Not done: authentication (trust, loopback only), anything but a fresh cluster.
set -eu

bindir() {
  if [ -n "${MAILREPORT_PG_BINDIR:-}" ]; then
    [ -x "$MAILREPORT_PG_BINDIR/initdb" ] && echo "$MAILREPORT_PG_BINDIR"
    return 0
  fi
  for v in $(ls /usr/lib/postgresql 2>/dev/null | sort -rV); do
    if [ -x "/usr/lib/postgresql/$v/bin/initdb" ] && [ -x "/usr/lib/postgresql/$v/bin/pg_ctl" ]; then
      echo "/usr/lib/postgresql/$v/bin"
      return 0
    fi
  done
}

# Runs a server binary as the user that owns the cluster.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

usage() {
  echo "usage: $0 start DIR PORT [OWNER_PID] | stop DIR | bindir" >&2
  exit 2
}

cmd=${1:-}
case "$cmd" in
  bindir)
    bindir
    ;;

  start)
    [ $# -ge 3 ] || usage
    dir=$2
    port=$3
    owner=${4:-}
    bin=$(bindir)
    if [ -z "$bin" ]; then
      echo "PostgreSQL server binaries not found: apt-get install postgresql" >&2
      if [ "${CI:-}" = true ]; then exit 1; fi
      echo "(the tests that need PostgreSQL skip; under CI=true this is a failure)" >&2
      exit 0
    fi
    # A cluster left by an interrupted run: stop it and start afresh.
    if [ -d "$dir/data" ]; then
      as_owner "$bin/pg_ctl" -D "$dir/data" stop -m immediate >/dev/null 2>&1 || true
      rm -rf "$dir"
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ "$(id -u)" = 0 ]; then
      chown postgres: "$dir"
      # Every parent must be searchable by postgres for it to reach its data directory.
      if ! runuser -u postgres -- test -x "$dir"; then
        echo "user postgres cannot reach $dir (a parent directory is not searchable)" >&2
        exit 1
      fi
    fi
    as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 \
      --no-sync >"$dir/initdb.log" 2>&1 || {
      cat "$dir/initdb.log" >&2
      exit 1
    }
    # Tuned for tests: nothing here needs to survive a crash; many test processes connect at
    # once under ctest -j.
    # The unix socket (DIR/.s.PGSQL.PORT) only where its path fits in sockaddr_un.
    sockdir=$dir
    if [ ${#dir} -gt 80 ]; then sockdir="''"; fi
    if ! as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $sockdir -c fsync=off \
          -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 \
          -c shared_buffers=32MB" start >/dev/null; then
      tail -n 20 "$dir/server.log" >&2 || true
      echo "PostgreSQL did not start on 127.0.0.1:$port (port in use? choose another with" \
        "-DMAILREPORT_TEST_PG_PORT=...)" >&2
      exit 1
    fi
    if [ -n "$owner" ]; then
      # Detached, its output away from the caller's pipes (ctest waits for them to close).
      (
        while kill -0 "$owner" 2>/dev/null; do sleep 1; done
        if [ -d "$dir/data" ]; then
          as_owner "$bin/pg_ctl" -D "$dir/data" stop -m immediate >/dev/null 2>&1 || true
          rm -rf "$dir"
        fi
      ) </dev/null >/dev/null 2>&1 &
    fi
    echo "postgresql://postgres@127.0.0.1:$port/postgres"
    ;;

  stop)
    [ $# -ge 2 ] || usage
    dir=$2
    bin=$(bindir)
    if [ -d "$dir/data" ] && [ -n "$bin" ]; then
      as_owner "$bin/pg_ctl" -D "$dir/data" stop -m immediate >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;

  *)
    usage
    ;;
esac
