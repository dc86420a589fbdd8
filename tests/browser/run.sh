#!/usr/bin/env bash
# The dashboard in a real browser (ctest: browser.dashboard, label integration):
#   1. a temporary directory with a configuration: SQLite store there, the dashboard on a free
#      loopback port (another one if serve cannot bind it) with a token, nothing sent anywhere (aggregate sending off, local DNS only,
#      no TLS-RPT socket);
#   2. `mailreport import` of the bundled sample reports (samples/reports/) and the test data
#      (tests/data/: ARF, DSN, TLS-RPT): DMARC, TLS, ARF and DSN reports in the store;
#   3. `mailreport serve` in the background, until /healthz answers;
#   4. `node dashboard.mjs` (headless Chromium through playwright-core);
#   5. serve is stopped (SIGTERM) whatever happened.
# The screenshots go to ARTIFACT_DIR (dashboard.png, dashboard-dmarc.png, ...).
#
# Usage: run.sh MAILREPORT_BINARY ARTIFACT_DIR
# Without Chromium (/usr/bin/chromium, or $CHROMIUM), node or tests/browser/node_modules
# (npm ci --prefix tests/browser) the test is skipped (exit 77), but fails under CI=true.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [[ $# -ne 2 ]]; then
  echo "usage: $0 MAILREPORT_BINARY ARTIFACT_DIR" >&2
  exit 2
fi
bin=$1
artifacts=$2

skip() {
  if [[ "${CI:-}" == "true" ]]; then
    echo "browser test: FAIL (CI=true, cannot skip): $*" >&2
    exit 1
  fi
  echo "browser test: SKIP: $*"
  exit 77
}

chromium=${CHROMIUM:-/usr/bin/chromium}
[[ -x "$chromium" ]] || skip "no Chromium at $chromium (apt-get install chromium)"
command -v node >/dev/null || skip "no node (apt-get install nodejs)"
[[ -f "$here/node_modules/playwright-core/package.json" ]] ||
  skip "playwright-core is not installed: run npm ci --prefix tests/browser"
[[ -x "$bin" ]] || { echo "browser test: no mailreport binary at $bin" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mailreport-browser.XXXXXX")
serve_pid=""
cleanup() {
  if [[ -n "$serve_pid" ]] && kill -0 "$serve_pid" 2>/dev/null; then
    kill -TERM "$serve_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')

write_config() {  # port
  cat >"$tmp/mailreport.toml" <<EOF
[report]
domain = "ours.example"
submitter = "mx.ours.example"
submit.sendmail-path = "/bin/false"
dmarc.aggregate.send = false
tls.aggregate.send = false

[store]
path = "$tmp/mailreport.db"

[tlsrpt]
listen = ""

[dns]
local-only = true

[dashboard]
listen = "127.0.0.1:$1"
token = "$token"
EOF
}

mr() { "$bin" -c "$tmp/mailreport.toml" "$@"; }

echo "== import the sample reports"
write_config 8470
mr import "$root/samples/reports" "$root/tests/data/arf/dmarc-failure.eml" \
  "$root/tests/data/dsn/postfix-two-recipients.eml" "$root/tests/data/tlsrpt/quirks.json"

# Starts serve on a free loopback port and waits until the API answers with our token (so an
# answer from another program that took the port meanwhile does not count). The kernel picks
# the port, which is free again before serve binds it: when another test takes it in
# between, serve exits (an address set in the file is fatal when taken) and we try another.
start_serve() {  # attempt
  local port
  port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
  write_config "$port"
  url="http://127.0.0.1:$port"
  echo "== mailreport serve on 127.0.0.1:$port (attempt $1)"
  mr serve >"$tmp/serve.log" 2>&1 &
  serve_pid=$!
  for _ in $(seq 100); do
    if node -e "fetch('$url/api/v1/summary',{headers:{authorization:'Bearer $token'}}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"; then
      return 0
    fi
    if ! kill -0 "$serve_pid" 2>/dev/null; then
      wait "$serve_pid" 2>/dev/null || true
      serve_pid=""
      echo "browser test: mailreport serve exited:" >&2
      cat "$tmp/serve.log" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "browser test: $url/api/v1/summary did not answer within 20 s" >&2
  cat "$tmp/serve.log" >&2
  exit 1
}
url=""
for attempt in 1 2 3; do
  if start_serve "$attempt"; then break; fi
  [[ $attempt -eq 3 ]] && exit 1
done

echo "== the dashboard in Chromium ($("$chromium" --version 2>/dev/null | tail -1))"
mkdir -p "$artifacts"
rc=0
DASHBOARD_TOKEN=$token CHROMIUM=$chromium node "$here/dashboard.mjs" "$url" \
  "$artifacts/dashboard.png" || rc=$?
if [[ $rc -ne 0 ]]; then
  echo "== serve's log"
  cat "$tmp/serve.log"
fi
exit $rc
