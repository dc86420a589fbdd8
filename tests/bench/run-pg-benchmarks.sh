#!/usr/bin/env bash
# Measures issue 8's figures in docs/benchmarks.md on a throwaway PostgreSQL server. Not part
# of the test suite (CI does not run it).
#   tests/bench/run-pg-benchmarks.sh [BUILD_DIR]          default: build/release
#
# The server: initdb into a fresh folder under /var/tmp (a disk, not tmpfs: fsync must cost what
# it costs), postgres on 127.0.0.1:$PG_PORT (default 55479; the clients connect over loopback
# TCP, as nodes connect over the network), run as user postgres when we are root. Production
# settings: fsync, synchronous_commit and full_page_writes on (the defaults), everything else
# default (shared_buffers 128MB, max_wal_size 1GB) but max_connections = 50. The script prints
# what the server says it runs with.
#
# 1. Recording evaluations (bench-evaluations-record, batches of 500 like the milter's
#    milter.batch-size default): 1 writer process, then $WRITERS (3) at once, each into a fresh
#    database, $MESSAGES (500000) messages per process, every process over the same 20,000
#    policy domains and their sources (overlapping: the nodes receive mail from the same
#    senders), each with its own traffic seed; each of N writers runs 1/N of the traffic per
#    simulated hour, so that the store sees the same hours and rows as from one writer
#    (DISJOINT=1: each writer its own 20,000 domains instead, no row in common). Prints
#    per process the messages/s (store time), p50/p99 batch latency and CPU µs/message (from
#    /usr/bin/time -v), and in total messages / wall clock and the server's CPU µs/message (all
#    its processes' user + system time from /proc, reaped backends included through the
#    postmaster's cutime/cstime), and what the writers' server processes were doing (sampled
#    from pg_stat_activity: CPU, waiting for the client, for a lock, for fsync). Then the same
#    on SQLite (synchronous=FULL): 1 process, and
#    $WRITERS processes on one file (SQLITE=0 skips it; PG=0 the PostgreSQL runs). RECORD=0
#    skips this part. DIAG=1 adds the PostgreSQL runs again with synchronous_commit = off (what
#    waiting for fsync costs), with $DIAG_MESSAGES messages per process.
# 2. The aggregate build (bench-aggregate-build --pg-url) of issue 5's data set (10M messages,
#    100k policy domains, 1M rows). The data: with AGG_SQLITE=PATH (a store made by
#    bench-aggregate-populate), a copy of that store is moved with `mailreport migrate --from
#    sqlite:... --to postgresql:...` (BUILD_DIR's, timed: rows/s) into database aggmig, which
#    becomes aggbase unless there is one; otherwise bench-aggregate-populate --pg-url fills
#    aggbase directly
#    ($AGG_POPULATE_ARGS are added to its arguments, e.g. a smaller --messages/--rows). Then ANALYZE, and
#    $AGG_RUNS (2) builds, each on a fresh copy (CREATE DATABASE ... TEMPLATE), under
#    /usr/bin/time -v, with the server's CPU time. AGG=0 skips this part.
# The load average is printed with each figure. BENCH_KEEP=1 keeps the folder (and stops the
# server); BENCH_DIR=DIR reuses it: the cluster in it is started again, and a database aggbase
# left there is built from as it is (fill it once, e.g. RECORD=0 AGG_RUNS=0 BENCH_KEEP=1, then
# time the builds later).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/release}
port=${PG_PORT:-55479}
messages=${MESSAGES:-500000}
writers=${WRITERS:-3}
domains=${DOMAINS:-20000}
per_hour=${PER_HOUR:-1000000}
agg_runs=${AGG_RUNS:-2}
bench=$build/tests/bench
work=${BENCH_DIR:-$(mktemp -d /var/tmp/mailreport-pgbench.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
chmod 755 "$work"
bin=$("$root/tests/support/pg-server.sh" bindir)
[[ -n "$bin" ]] || { echo "PostgreSQL server binaries not found" >&2; exit 1; }
data=$work/pgdata
url=postgresql://postgres@127.0.0.1:$port
hz=$(getconf CLK_TCK)

as_owner() {
  if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
stop_server() {
  [[ -d "$data" ]] && as_owner "$bin/pg_ctl" -D "$data" stop -m fast >/dev/null 2>&1 || true
  [[ -n "${BENCH_KEEP:-}" ]] || rm -rf "$work"
}
trap stop_server EXIT
psqlc() { psql -X -q -t -A -v ON_ERROR_STOP=1 "$url/${2:-postgres}" -c "$1"; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

# The server's CPU time in seconds: every process of the cluster (the postmaster's children
# alive now) plus what the postmaster has reaped (backends of closed connections).
server_cpu() {
  local pm
  sleep 1  # the backends of the connections just closed: exited and reaped
  pm=$(head -1 "$data/postmaster.pid")
  {
    awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pm/stat"
    for c in $(ps -o pid= --ppid "$pm"); do
      awk '{ print $14 + $15 }' "/proc/$c/stat" 2>/dev/null || true
    done
  } | awk -v hz="$hz" '{ t += $1 } END { printf "%.2f", t / hz }'
}

# From a /usr/bin/time -v log: user + system seconds, peak RSS in MB, wall seconds.
time_cpu() { awk -F': ' '/User time|System time/ { t += $2 } END { printf "%.2f", t }' "$1"; }
time_rss() { awk '/Maximum resident set size/ { printf "%.1f", $NF / 1024 }' "$1"; }
time_wall() {
  grep 'Elapsed (wall clock)' "$1" | awk '{print $NF}' |
    awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }'
}

cmake --build "$build" --target bench-evaluations-record bench-aggregate-build \
  bench-aggregate-populate >/dev/null

# --- the server -------------------------------------------------------------------------------
if [[ $(id -u) == 0 ]]; then chown postgres: "$work"; fi
if [[ ! -f "$data/PG_VERSION" ]]; then
  as_owner "$bin/initdb" -D "$data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 \
    >"$work/initdb.log" 2>&1 || { cat "$work/initdb.log" >&2; exit 1; }
fi
as_owner "$bin/pg_ctl" -D "$data" -l "$work/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $work -c max_connections=50" start >/dev/null
echo "PostgreSQL $(psqlc 'SHOW server_version') in $data on 127.0.0.1:$port;" \
  "$(psqlc "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name)
            FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes',
            'wal_sync_method', 'shared_buffers', 'max_wal_size', 'wal_level', 'checkpoint_timeout')")"
echo "commit $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet HEAD -- tests/bench common || echo ' (+ uncommitted changes)'), $(nproc) cores"

# --- 1. recording evaluations --------------------------------------------------------------------
# run_writers KIND N TARGET: N processes at once; TARGET is a PostgreSQL database name or a
# SQLite file. Prints one line per process and the total.
run_writers() {
  local kind=$1 n=$2 target=$3 i pids=() start_at cpu0 cpu1 ph
  ph=$((per_hour / n))
  [[ $kind == pg ]] && cpu0=$(server_cpu)
  start_at=$(date +%s.%N | awk '{ printf "%.3f", $1 + 2 }')
  local load0
  load0=$(load)
  for ((i = 0; i < n; i++)); do
    local store_arg
    if [[ $kind == pg ]]; then store_arg=(--pg-url "$url/$target"); else store_arg=(--db "$target"); fi
    /usr/bin/time -v -o "$work/w$i.time" "$bench/bench-evaluations-record" "${store_arg[@]}" \
      --messages "$messages" --domains "$domains" --per-hour "$ph" --batch 500 --writer "$i" \
      --start-at "$start_at" --domain-offset $((${DISJOINT:-0} != 0 ? i * domains : 0)) \
      >"$work/w$i.out" 2>"$work/w$i.err" &
    pids+=($!)
  done
  local sampler=
  if [[ $kind == pg ]]; then
    # What the writers' server processes wait for inside a transaction (state not idle),
    # sampled 4 times a second: CPU (no wait), Client:ClientRead (waiting for the client's
    # next statement: a round trip), Lock:transactionid (a row another writer's transaction
    # holds), IO:WALSync (fsync), LWLock:WALWrite ... (one psql session, \watch).
    # From the writers' start (after they opened the store): pg_sleep first.
    psql -X -q -t -A "$url/postgres" >"$work/waits.txt" 2>/dev/null <<EOF &
SELECT pg_sleep($(date +%s.%N | awk -v t="$start_at" '{ d = t - $1; print (d > 0 ? d : 0) }'));
SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity
  WHERE datname = '$target' AND backend_type = 'client backend'
  AND state <> 'idle' AND pid <> pg_backend_pid() \watch 0.25
EOF
    sampler=$!
  fi
  local rc=0
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  if [[ -n $sampler ]]; then kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true; fi
  if ((rc)); then cat "$work"/w*.err >&2; exit 1; fi
  [[ $kind == pg ]] && cpu1=$(server_cpu)
  local walls=() total_wall=0
  echo "$kind, $n writer(s), $messages messages each$( ((${DISJOINT:-0})) && echo ", each its own domains"), load before $load0, after $(load):"
  for ((i = 0; i < n; i++)); do
    local out=$work/w$i.out
    local rate p50 p99 wall cpu
    rate=$(sed -nE 's/.*: ([0-9]+) messages\/s recorded/\1/p' "$out")
    wall=$(sed -nE 's/.*\(wall ([0-9.]+) s\).*/\1/p' "$out")
    p50=$(sed -nE 's/.*p50 ([0-9.]+) ms.*/\1/p' "$out")
    p99=$(sed -nE 's/.*p99 ([0-9.]+) ms.*/\1/p' "$out")
    cpu=$(time_cpu "$work/w$i.time")
    echo "  writer $i: $rate messages/s (store time), loop wall $wall s, batch p50 $p50 ms p99 $p99 ms" \
      "($(sed -nE 's/.*per batch: ([0-9.]+) distinct rows, ([0-9.]+) .*/\1 rows + \2 intervals/p' "$out") per batch)," \
      "client CPU $cpu s = $(awk -v c="$cpu" -v m="$messages" 'BEGIN { printf "%.1f", c * 1e6 / m }') us/message," \
      "RSS $(time_rss "$work/w$i.time") MB; per tenth: $(sed -nE 's/.*per tenth of the run: //p' "$out")"
    total_wall=$(awk -v a="$total_wall" -v b="$wall" 'BEGIN { print (b > a ? b : a) }')
  done
  local total=$((messages * n))
  printf '  total: %d messages in %.2f s = %.0f messages/s' "$total" "$total_wall" \
    "$(awk -v m="$total" -v t="$total_wall" 'BEGIN { print m / t }')"
  if [[ $kind == pg ]]; then
    local rows
    rows=$(psqlc "SELECT count(*) FROM evaluations" "$target")
    printf '; server CPU %.2f s = %.1f us/message; rows %d (%.1f messages/row)' \
      "$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { print b - a }')" \
      "$(awk -v a="$cpu0" -v b="$cpu1" -v m="$total" 'BEGIN { print (b - a) * 1e6 / m }')" \
      "$rows" "$(awk -v m="$total" -v r="$rows" 'BEGIN { print m / r }')"
    printf '\n  server processes of the writers, sampled: %s' \
      "$(grep -v '^$' "$work/waits.txt" | sort | uniq -c | sort -rn | head -6 |
        awk '{ n[NR] = $1; w[NR] = $2; t += $1 } END { for (i = 1; i <= NR; i++) printf "%s %.0f%%  ", w[i], 100 * n[i] / t }')"
  else
    local rows
    rows=$(sqlite3 "$target" "SELECT count(*) FROM evaluations")
    printf '; rows %d (%.1f messages/row)' "$rows" "$(awk -v m="$total" -v r="$rows" 'BEGIN { print m / r }')"
  fi
  echo
}

if [[ ${RECORD:-1} != 0 ]]; then
  echo
  echo "== recording evaluations"
  if [[ ${PG:-1} != 0 ]]; then
    for n in 1 "$writers"; do
      psqlc "DROP DATABASE IF EXISTS rec$n"
      psqlc "CREATE DATABASE rec$n"
      run_writers pg "$n" "rec$n"
      psqlc "DROP DATABASE rec$n"
    done
  fi
  if [[ ${DIAG:-0} != 0 ]]; then
    local_messages=$messages
    messages=${DIAG_MESSAGES:-$messages}
    # What fsync costs: the same with synchronous_commit = off for these databases (commits
    # return before their WAL is flushed; nothing else changes).
    for n in 1 "$writers"; do
      psqlc "DROP DATABASE IF EXISTS nosync$n"
      psqlc "CREATE DATABASE nosync$n"
      psqlc "ALTER DATABASE nosync$n SET synchronous_commit = off"
      echo "(synchronous_commit = off)"
      run_writers pg "$n" "nosync$n"
      psqlc "DROP DATABASE nosync$n"
    done
    messages=$local_messages
  fi
  if [[ ${SQLITE:-1} != 0 ]]; then
    for n in 1 "$writers"; do
      db=$work/rec$n.db
      # Create the store (and its schema) before the writers race to open it.
      "$bench/bench-evaluations-record" --db "$db" --messages 0 >/dev/null 2>&1 || true
      run_writers sqlite "$n" "$db"
      rm -f "$db" "$db-wal" "$db-shm"
    done
  fi
fi

# --- 2. the aggregate build ----------------------------------------------------------------------
if [[ ${AGG:-1} != 0 ]]; then
  echo
  echo "== aggregate build: data"
  if [[ -n "${AGG_SQLITE:-}" ]]; then
    # `mailreport migrate` of a copy of the SQLite store, timed, into its own database.
    "$build/cli/mailreport" migrate --help >/dev/null 2>&1 ||
      { echo "no mailreport migrate in $build/cli/mailreport" >&2; exit 1; }
    psqlc "DROP DATABASE IF EXISTS aggmig"
    psqlc "CREATE DATABASE aggmig"
    cp "$AGG_SQLITE" "$work/agg.db"
    sync
    cpu0=$(server_cpu)
    echo "mailreport migrate of a copy of $AGG_SQLITE ($(du -m "$work/agg.db" | cut -f1) MB), load $(load)"
    /usr/bin/time -v -o "$work/migrate.time" "$build/cli/mailreport" migrate \
      --from "sqlite:$work/agg.db" --to "postgresql:$url/aggmig" >"$work/migrate.out" 2>&1 ||
      { cat "$work/migrate.out" "$work/migrate.time" >&2; exit 1; }
    cpu1=$(server_cpu)
    tail -n 20 "$work/migrate.out"
    rows=$(psqlc "SELECT sum(n_live_tup) FROM pg_stat_user_tables" aggmig)
    wall=$(time_wall "$work/migrate.time")
    echo "  migrate: wall $wall s, client CPU $(time_cpu "$work/migrate.time") s, peak RSS" \
      "$(time_rss "$work/migrate.time") MB, server CPU $(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }') s;" \
      "rows in all tables: $rows ($(awk -v r="$rows" -v t="$wall" 'BEGIN { printf "%.0f", r / t }') rows/s)," \
      "evaluations $(psqlc "SELECT count(*) FROM evaluations" aggmig); load $(load)"
    rm -f "$work/agg.db"*
  fi
  have_base=$(psqlc "SELECT count(*) FROM pg_database WHERE datname = 'aggbase'")
  if ((have_base)); then
    echo "aggbase is there already: built from as it is"
  elif [[ -n "${AGG_SQLITE:-}" ]]; then
    psqlc "ALTER DATABASE aggmig RENAME TO aggbase"
  else
    psqlc "CREATE DATABASE aggbase"
    cpu0=$(server_cpu)
    echo "bench-aggregate-populate --pg-url, load $(load)"
    /usr/bin/time -v -o "$work/populate.time" "$bench/bench-aggregate-populate" - \
      --pg-url "$url/aggbase" ${AGG_POPULATE_ARGS:-} 2>/dev/null
    echo "  populate: client CPU $(time_cpu "$work/populate.time") s, server CPU" \
      "$(awk -v a="$cpu0" -v b="$(server_cpu)" 'BEGIN { printf "%.2f", b - a }') s, load $(load)"
  fi
  psqlc "VACUUM ANALYZE" aggbase
  echo "  aggbase: $(psqlc "SELECT pg_size_pretty(pg_database_size('aggbase'))"), $(psqlc "SELECT count(*) FROM evaluations" aggbase) rows"
  echo "== aggregate build"
  for ((r = 1; r <= agg_runs; r++)); do
    psqlc "DROP DATABASE IF EXISTS aggrun$r"
    psqlc "CREATE DATABASE aggrun$r TEMPLATE aggbase STRATEGY FILE_COPY"
    psqlc "CHECKPOINT"
    sync
    load0=$(load)
    cpu0=$(server_cpu)
    # The day of the newest row, due (its end plus the builder's grace of 300 s), as the bench
    # computes it itself for SQLite (its query for the newest row, Store::list_evaluations,
    # fails on PostgreSQL without filters at the time of writing).
    now=$(psqlc "SELECT max(interval_begin) - max(interval_begin) % 86400 + 86400 + 300
                 FROM evaluations" "aggrun$r")
    /usr/bin/time -v -o "$work/build$r.time" "$bench/bench-aggregate-build" \
      --pg-url "$url/aggrun$r" --now "$now" >"$work/build$r.out" 2>&1 || { cat "$work/build$r.out" >&2; exit 1; }
    cpu1=$(server_cpu)
    cat "$work/build$r.out"
    echo "  run $r: wall $(time_wall "$work/build$r.time") s, client CPU $(time_cpu "$work/build$r.time") s," \
      "peak RSS $(time_rss "$work/build$r.time") MB, server CPU $(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.2f", b - a }') s," \
      "load before $load0, after $(load)"
    psqlc "DROP DATABASE aggrun$r"
  done
fi
