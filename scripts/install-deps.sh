#!/usr/bin/env bash
# Installs, with apt-get, the Debian 12 packages mailreport needs to build (and, with --test,
# to run every test: clang for the fuzz targets, Postfix for the LMTP and milter integration
# tests, OpenDKIM and OpenDMARC (and libopendmarc's header) to compare verdicts with; debhelper,
# lintian, systemd (systemd-analyze), m4, ccache and python3 for the package test,
# tests/packaging/; chromium, nodejs and npm for the dashboard's browser test, tests/browser/).
# Does nothing for packages already installed.
set -euo pipefail

build_pkgs=(
  build-essential cmake ninja-build pkg-config
  libssl-dev libxml2-dev libgmime-3.0-dev libsqlite3-dev libpq-dev zlib1g-dev libarchive-dev
  nlohmann-json3-dev libtomlplusplus-dev libcli11-dev libsystemd-dev
  libmilter-dev libopendkim-dev libspf2-dev libpsl-dev libunbound-dev libcurl4-openssl-dev
  libmicrohttpd-dev
)
test_pkgs=(
  libgtest-dev libgmock-dev libbenchmark-dev clang libclang-rt-14-dev sqlite3 time
  postfix opendkim opendkim-tools opendmarc libopendmarc-dev postgresql
  debhelper lintian systemd m4 groff-base ccache python3
  chromium nodejs npm
)

want=("${build_pkgs[@]}")
if [[ "${1:-}" == "--test" ]]; then want+=("${test_pkgs[@]}"); fi

missing=()
for p in "${want[@]}"; do
  # npm: a Node.js from elsewhere (NodeSource's nodejs) brings its own, and conflicts with
  # Debian's npm package.
  if [[ $p == npm ]] && command -v npm >/dev/null; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then exit 0; fi

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root or install them" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Postfix must not ask questions nor start a system instance: the tests run their own.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
# Nor may the OpenDKIM/OpenDMARC packages start system daemons: the tests run their own.
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
