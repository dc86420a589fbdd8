#!/usr/bin/env bash
# Expands packaging/sendmail/mailreport.mc with Sendmail's own cf macros (m4), as
# sendmailconfig would inside a full sendmail.mc, and checks the sendmail.cf lines it must
# give: the milter with its socket, F=T and timeouts, the mailertable map, and the
# "mailreport" LMTP mailer. sendmail-cf conflicts with postfix, so it is not installed: its
# .deb is fetched with apt-get download (cached in WORK) and unpacked into a temporary
# directory. Sendmail itself is not run here; packaging/sendmail/README has the manual check.
# Usage: sendmail-m4.sh [WORK]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(realpath -m "${1:-$root/build/pkg}")
mc=$root/packaging/sendmail/mailreport.mc
fail() {
  echo "sendmail-m4: FAILED: $*" >&2
  exit 1
}
command -v m4 >/dev/null || fail "m4 is not installed (scripts/install-deps.sh --test)"

mkdir -p "$work/sendmail-cf"
if ! compgen -G "$work/sendmail-cf/sendmail-cf_*.deb" >/dev/null; then
  # apt's sandbox user must be able to write where it downloads.
  chmod 0777 "$work/sendmail-cf"
  (cd "$work/sendmail-cf" && apt-get download -q sendmail-cf >/dev/null 2>&1) ||
    fail "apt-get download sendmail-cf"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg -x "$(ls "$work"/sendmail-cf/sendmail-cf_*.deb | head -1)" "$tmp/root"
cf=$tmp/root/usr/share/sendmail/cf
[[ -f $cf/m4/cf.m4 ]] || fail "no cf.m4 in sendmail-cf"

# A minimal sendmail.mc with the snippet where its comments say: the milter and FEATURE lines
# before the MAILER() lines, the MAILER_DEFINITIONS block at the end. OSTYPE(linux), not
# debian: ostype/debian.m4 includes files from the installed /usr/share/sendmail.
{
  echo "include(\`$cf/m4/cf.m4')dnl"
  echo "OSTYPE(\`linux')dnl"
  echo "DOMAIN(\`generic')dnl"
  sed '/^MAILER_DEFINITIONS/,$d' "$mc"
  echo "MAILER(\`local')dnl"
  echo "MAILER(\`smtp')dnl"
  sed -n '/^MAILER_DEFINITIONS/,$p' "$mc"
} >"$tmp/sendmail.mc"
m4 -D_CF_DIR_="$cf/" "$tmp/sendmail.mc" >"$tmp/sendmail.cf" 2>"$tmp/m4.err" || {
  cat "$tmp/m4.err"
  fail "m4"
}
[[ ! -s $tmp/m4.err ]] || { cat "$tmp/m4.err"; fail "m4 printed warnings"; }

expect() {  # description extended-regex
  grep -qE "$2" "$tmp/sendmail.cf" || fail "sendmail.cf lacks $1 (/$2/)"
}
expect "the milter list" '^O InputMailFilters=mailreport$'
expect "the milter (socket, F=T, timeouts)" \
  '^Xmailreport, S=unix:/var/spool/postfix/mailreport/milter\.sock, F=T, T=C:30s;S:30s;R:2m;E:5m$'
expect "the mailertable map" '^Kmailertable hash /etc/mail/mailertable$'
expect "the LMTP mailer (F=...z, [IPC])" '^Mmailreport,[[:space:]]+P=\[IPC\], F=[A-Za-z]*z[A-Za-z]*,'
expect "the LMTP mailer's socket" 'A=FILE /var/spool/postfix/mailreport/lmtp\.sock$'
grep -q '^Mmailreport' "$tmp/sendmail.cf" && [[ $(grep -c '^Mmailreport' "$tmp/sendmail.cf") -eq 1 ]] ||
  fail "the mailreport mailer is defined more than once"
# The mailertable entry names that mailer.
grep -qE '^reports\.example\.com[[:space:]]+mailreport:' "$root/packaging/sendmail/mailertable" ||
  fail "packaging/sendmail/mailertable does not route to the mailreport mailer"
echo "sendmail-m4: mailreport.mc expands with sendmail-cf $(ls "$work"/sendmail-cf/ | sed -n 's/sendmail-cf_\(.*\)_all.deb/\1/p'): milter, mailertable, LMTP mailer"
