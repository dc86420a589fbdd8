#!/usr/bin/env bash
# Measures the figures in docs/benchmarks.md. Not part of the test suite (CI does not run it).
#   tests/bench/run-benchmarks.sh [BUILD_DIR] [SIZES_MB...]     default: build/release 100 1024
# 1. Ingest: a generated DMARC aggregate report of each size (uncompressed XML) is imported
#    into a fresh SQLite store with `mailreport import`, pinned to one core; throughput is
#    size / elapsed, memory is the peak RSS from /usr/bin/time -v. CPU MB/s is size / (user +
#    system CPU time): the figure that survives a machine busy with other work.
# 2. LMTP: bench-lmtp delivers small reports over loopback with 8 concurrent clients.
# 3. Milter: bench-milter sends DKIM-signed messages through the milter protocol (unix socket
#    and loopback TCP, 1/4/16 connections) to the no-op libmilter filter (the floor) and to
#    mailreport-milter verifying everything and in trusted upstream mode, taking turns over
#    MILTER_ROUNDS rounds (default 5) and reporting medians; beside them the no-op filter
#    that replies at every step. (`--filters ...,opendkim` adds OpenDKIM, by hand.)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/release}
shift || true
sizes=("$@")
((${#sizes[@]})) || sizes=(100 1024)
work=${BENCH_DIR:-$(mktemp -d /var/tmp/mailreport-bench.XXXXXX)}
mkdir -p "$work"
trap '[[ -n "${BENCH_KEEP:-}" ]] || rm -rf "$work"' EXIT
cmake --build "$build" --target mailreport bench-gen-dmarc bench-lmtp bench-milter noop-milter \
  mailreport-milter >/dev/null

echo "| input | records | elapsed (s) | MB/s | CPU (s) | CPU MB/s | peak RSS (MB) |"
echo "|---|---|---|---|---|---|---|"
for mb in "${sizes[@]}"; do
  xml="$work/agg-${mb}mb.xml"
  records=$("$build/tests/bench/bench-gen-dmarc" --mb "$mb" --out "$xml" --report-id "bench-$mb" 2>&1 |
    sed -E 's/.* ([0-9]+) records.*/\1/')
  bytes=$(stat -c %s "$xml")
  state="$work/state-$mb"
  mkdir -p "$state"
  printf '[store]\npath = "%s/mailreport.db"\n' "$state" >"$state/mailreport.toml"
  sync
  # Read the input once so the first run is not a disk benchmark.
  cat "$xml" >/dev/null
  taskset -c 0 /usr/bin/time -v "$build/cli/mailreport" -c "$state/mailreport.toml" import "$xml" \
    >"$state/out.txt" 2>"$state/time.txt"
  elapsed=$(grep 'Elapsed (wall clock)' "$state/time.txt" | awk '{print $NF}' |
    awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss_kb=$(grep 'Maximum resident set size' "$state/time.txt" | awk '{print $NF}')
  cpu=$(awk -F': ' '/User time|System time/ { t += $2 } END { printf "%.2f", t }' "$state/time.txt")
  mbps=$(awk -v b="$bytes" -v t="$elapsed" 'BEGIN { printf "%.1f", b / 1048576 / t }')
  cpu_mbps=$(awk -v b="$bytes" -v t="$cpu" 'BEGIN { printf "%.1f", b / 1048576 / t }')
  echo "| ${mb} MB ($bytes bytes) | $records | $elapsed | $mbps | $cpu | $cpu_mbps | $((rss_kb / 1024)) |"
  grep -q "imported 1" "$state/out.txt" || { echo "import did not store the report:" >&2; cat "$state/out.txt" "$state/time.txt" >&2; exit 1; }
  rm -f "$xml"
  rm -rf "$state"
done

echo
[[ -n "${BENCH_INGEST_ONLY:-}" ]] && exit 0
"$build/tests/bench/bench-lmtp" --benchmark_counters_tabular=true

echo
"$build/tests/bench/bench-milter" --messages "${MILTER_MESSAGES:-5000}" --rounds "${MILTER_ROUNDS:-5}" \
  --filters noop,full,trusted,noop-replies
