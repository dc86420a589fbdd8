#!/usr/bin/env bash
# Runs every fuzz target in BUILD_DIR/tests/fuzz for SECONDS each, seeded from the shared
# corpus (../shared/corpus, by kind) and the bundled samples. Seeds are copied into a
# temporary folder, never into the repository. Fails on the first crash, leak or timeout.
set -euo pipefail
build=$(cd "${1:?usage: run-all.sh BUILD_DIR [SECONDS]}" && pwd)
seconds=${2:-10}
root=$(cd "$(dirname "$0")/../.." && pwd)
corpus=${MAILREPORT_CORPUS:-$root/../shared/corpus}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

seed() {  # target kinds...
  local dir="$work/$1"
  shift
  mkdir -p "$dir"
  if [[ -f "$corpus/MANIFEST.tsv" ]]; then
    local kinds="|$*|"
    tail -n +2 "$corpus/MANIFEST.tsv" | while IFS=$'\t' read -r _ _ file kind _; do
      if [[ "$kinds" == *"|$kind|"* && -f "$corpus/$file" ]]; then
        # Seeds larger than 256 KiB slow libFuzzer down without adding coverage.
        [[ $(stat -c %s "$corpus/$file") -le 262144 ]] && cp "$corpus/$file" "$dir/$(md5sum <"$corpus/$file" | cut -c1-16)"
      fi
    done
  elif [[ "${CI:-}" == "true" ]]; then
    echo "run-all: $corpus/MANIFEST.tsv missing under CI=true" >&2
    exit 1
  else
    echo "run-all: no shared corpus at $corpus; seeding from samples/ only" >&2
  fi
  cp "$root"/samples/reports/*.eml "$dir/" 2>/dev/null || true
}

seed fuzz-dmarc-xml dmarc-agg-xml
seed fuzz-tlsrpt-json tlsrpt-json
seed fuzz-arf forensic-eml arf-abuse-eml
seed fuzz-dsn dsn-eml
seed fuzz-extract dmarc-agg-xml dmarc-agg-gz dmarc-agg-zip dmarc-agg-eml tlsrpt-gz tlsrpt-eml forensic-eml arf-abuse-eml other
seed fuzz-lmtp-session
seed fuzz-config
seed fuzz-authres
seed fuzz-dkim forensic-eml dmarc-agg-eml arf-abuse-eml
seed fuzz-spf
seed fuzz-dmarc-record
seed fuzz-tlsrpt-datagram
seed fuzz-tlsrpt-record
seed fuzz-dashboard-api
printf 'LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<dmarc@example.com>\r\nDATA\r\nSubject: x\r\n\r\n.\r\nQUIT\r\n' >"$work/fuzz-lmtp-session/dialogue"
cp "$root/conf/mailreport.toml" "$work/fuzz-config/" 2>/dev/null || true
# Authentication-Results values as Gmail, Microsoft 365 (no authserv-id) and OpenDKIM write them,
# and the grammar's corners (RFC 8601 §2.2).
printf 'mx.google.com;\r\n       dkim=pass header.i=@example.com header.s=20210112 header.b=PqBP51+l;\r\n       spf=pass (google.com: domain of a@example.com designates 192.0.2.1 as permitted sender) smtp.mailfrom=a@example.com;\r\n       dmarc=pass (p=QUARANTINE sp=QUARANTINE dis=NONE) header.from=example.com' >"$work/fuzz-authres/gmail"
printf 'spf=pass (sender IP is 192.0.2.9)\r\n smtp.helo=a.outbound.protection.outlook.com; outlook.com;\r\n dkim=none (message not signed) header.d=none;outlook.com; dmarc=pass\r\n action=none header.from=outlook.com;compauth=pass reason=100' >"$work/fuzz-authres/microsoft"
printf 'mail.example.org;\n\tdkim=fail reason="signature verification failed" (2048-bit key; unprotected) header.d=example.net header.i=@example.net header.b="PrsTNnuH";\n\tdkim-atps=neutral' >"$work/fuzz-authres/opendkim"
printf '(c (nested)) example.com 1; spf/1 = pass reason="a \\"b\\"" smtp . mailfrom = "john q"@example.net; none' >"$work/fuzz-authres/corners"

printf 'v=DMARC1; p=reject; sp=quarantine; np=reject; pct=50; adkim=s; aspf=r; fo=1:d:s; t=y; psd=n; rua=mailto:a@example.com!10m,mailto:b@example.net; ruf=mailto:f@example.com; ri=3600' >"$work/fuzz-dmarc-record/full"
printf 'v=DMARC1;p=none' >"$work/fuzz-dmarc-record/minimal"
# libtlsrpt datagrams as Postfix sends them (see tlsrpt_datagram.hpp).
printf '{"dpv": "1","d": "example.org","pr": "v=TLSRPTv1;rua=mailto:t@example.org","policies":[{"policy-type":2,"policy-domain": "example.org","policy-string":["version: STSv1","mode: enforce"],"mx-host":["*.example.org"],"failure-details":[{"c":205,"s": "192.0.2.1","n": "mx.example.org","h": "mx","r": "198.51.100.7","a": "x","f": "X509"}],"t":1,"f":1}]}' >"$work/fuzz-tlsrpt-datagram/sts"
printf '{"dpv": "1","d": "example.net","pr": "v=TLSRPTv1;rua=mailto:t@example.net","policies":[{"policy-type":9,"t":0,"f":0}]}' >"$work/fuzz-tlsrpt-datagram/none"
# TLSRPT records (RFC 8460 §3): several URIs, %-encoding, an extension field.
printf 'v=TLSRPTv1; rua=mailto:tlsrpt@example.net,https://r.example.net/v1; ext_1=x' >"$work/fuzz-tlsrpt-record/two"
printf 'v=TLSRPTv1;rua=mailto:tls%%21reports@example.com;' >"$work/fuzz-tlsrpt-record/encoded"
# SPF seeds: record NUL helo NUL mail-from NUL client-ip (see fuzz_spf.cpp).
printf 'v=spf1 ip4:192.0.2.0/24 include:inc.fz.example mx a:%%{d} -all\0mx.fz.example\0user@fz.example\0192.0.2.7' >"$work/fuzz-spf/include"
printf 'v=spf1 redirect=inc.fz.example exp=inc.fz.example\0helo.example\0\0' >"$work/fuzz-spf/redirect"
printf 'v=spf1 ip6:2001:db8::/32 ?exists:%%{ir}.%%{l1r+-}._spf.%%{d} ~all\0h\0a-b+c@fz.example\02001:db8::1' >"$work/fuzz-spf/macros"

# Dashboard requests: path, name=value query lines, then (after an empty line) the
# Authorization value (see fuzz_dashboard_api.cpp).
printf '/api/v1/reports\ntype=dmarc\ndomain=example.com\nfrom=2025-01-01\nto=1767225600\nresult=fail\nlimit=10\noffset=5' >"$work/fuzz-dashboard-api/reports"
printf '/api/v1/reports/1' >"$work/fuzz-dashboard-api/detail"
printf '/api/v1/reports/2/raw' >"$work/fuzz-dashboard-api/raw"
printf '/api/v1/timeseries/dmarc\nfrom=2024-02-29\nsource_ip=192.0.2.1\ndomain=example.org' >"$work/fuzz-dashboard-api/series"
printf '/api/v1/charts/dmarc.svg\nfrom=2024-01-01' >"$work/fuzz-dashboard-api/chart"
printf '/api/v1/outgoing\nlimit=500' >"$work/fuzz-dashboard-api/outgoing"
printf '/api/v1/summary\n\nBearer wrong' >"$work/fuzz-dashboard-api/token"

status=0
for bin in "$build"/tests/fuzz/fuzz-*; do
  [[ -x "$bin" && -f "$bin" ]] || continue
  name=$(basename "$bin")
  mkdir -p "$work/$name" "$work/$name.new"
  echo "-- $name: ${seconds}s"
  if ! (cd "$work" && "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 \
      -max_len=1048576 -print_final_stats=1 "$work/$name.new" "$work/$name" >"$work/$name.log" 2>&1); then
    echo "$name FAILED:" >&2
    tail -50 "$work/$name.log" >&2
    status=1
  else
    grep -E 'stat::number_of_executed_units|Done [0-9]+ runs' "$work/$name.log" | tail -2
  fi
done
exit $status
