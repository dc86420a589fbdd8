#!/usr/bin/env bash
# Quick start, command 1: installs what is missing, builds mailreport, and runs the main job
# on the embedded default — `mailreport demo`: the LMTP receiver on loopback with SQLite in
# ./.state/demo, the bundled sample reports delivered over LMTP, a summary of what was stored,
# then serving until Ctrl-C. Extra arguments go to `mailreport demo`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMAILREPORT_TESTS=OFF -DMAILREPORT_BENCH=OFF >/dev/null
cmake --build build/release --target mailreport mailreport-lmtp
exec build/release/cli/mailreport demo --state-dir "$root/.state/demo" "$@"
