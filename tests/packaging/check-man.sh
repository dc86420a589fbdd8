#!/usr/bin/env bash
# Checks the man pages in packaging/man (part of tests/packaging/run.sh; runs alone too):
#   - mailreport.toml.5 is what packaging/man/gen-toml-man.py makes of conf/mailreport.toml now;
#   - every key of conf/mailreport.toml ("#key = value" under "[section]", and the keys of
#     tables documented in comments) is in that page as "section.key" (the generator's parsing
#     is not trusted to do this on its own);
#   - every page formats without a groff/man warning;
#   - with a mailreport binary (argument 1), every sub-command of `mailreport --help` is
#     described in mailreport.1.
# Usage: check-man.sh [MAILREPORT_BINARY]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
man_dir=$root/packaging/man
conf=$root/conf/mailreport.toml
fail=0
problem() {
  echo "check-man: $*" >&2
  fail=1
}

# 1. The generated page is up to date.
if ! diff -u "$man_dir/mailreport.toml.5" <(python3 "$man_dir/gen-toml-man.py" "$conf") >/dev/null; then
  problem "packaging/man/mailreport.toml.5 is out of date: run" \
    "python3 packaging/man/gen-toml-man.py conf/mailreport.toml > packaging/man/mailreport.toml.5"
fi

# 2. Every key of the documented configuration is in the page (roff escapes '-' as '\-').
page_text=$(sed 's/\\-/-/g' "$man_dir/mailreport.toml.5")
# Tables documented only in comments ('# [signature."<id>"] - ...') list their keys as
# '# key (required)' or '# key (default: ...)'.
keys=$(awk '/^\[[a-z.]+\]$/ { s = substr($0, 2, length($0) - 2); table = 0 }
            /^# \[[a-z]+\."<id>"\] / { s = $2; gsub(/[][]/, "", s); table = 1 }
            /^# Sections reserved/ { table = 0 }
            !table && /^#?[a-z][a-z0-9-]* = / { k = $1; sub(/^#/, "", k); print s "." k }
            table && /^# [a-z][a-z0-9-]* \((required|default: .*)\)$/ { print s "." $2 }' "$conf")
nkeys=0
while read -r key; do
  nkeys=$((nkeys + 1))
  grep -qxF ".B $key" <<<"$page_text" || problem "key $key of conf/mailreport.toml is not in mailreport.toml(5)"
done <<<"$keys"
((nkeys > 0)) || problem "no keys found in $conf"

# 3. No formatting warnings.
for page in "$man_dir"/*.[1-8]; do
  warnings=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null || true)
  [[ -z $warnings ]] || problem "$(basename "$page"): $warnings"
done

# 4. Every command of the program is in mailreport(1).
if [[ -n ${1:-} ]]; then
  commands=$("$1" --help | awk '/^Subcommands:/ { on = 1; next } on && /^  [a-z]/ { print $1 }')
  [[ -n $commands ]] || problem "$1 --help lists no commands"
  for c in $commands; do
    grep -qE "^\.(B|BI|BR) \"?${c//-/\\\\-}( |\"|$)" "$man_dir/mailreport.1" ||
      problem "command '$c' of $1 is not described in mailreport(1)"
  done
fi

if ((fail)); then exit 1; fi
echo "check-man: $nkeys keys in mailreport.toml(5), pages format cleanly${1:+, every command of $1 in mailreport(1)}"
