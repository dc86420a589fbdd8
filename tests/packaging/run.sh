#!/usr/bin/env bash
# The Debian package, end to end on this machine (scripts/test.sh step 4; runs alone too):
#   1. build: copy the tree (tracked and new files, no build directories) to WORK/src, put
#      packaging/debian at debian/, dpkg-buildpackage -us -uc -b (the .deb files land in WORK);
#   2. lintian on the .changes: fails on any E: or W:;
#   3. install it with apt-get; check the user, the group, the directories, the conffile;
#   4. the man pages (check-man.sh) and the units (systemd-analyze verify);
#   5. start mailreport-lmtp, mailreport-milter (and mailreport serve when the build has it);
#      the dashboard answers on 127.0.0.1:8470 with the token postinst made
#      exactly as their units' ExecStart says, as
#      the units' User=, with NOTIFY_SOCKET (they must send READY=1); the machine has no
#      systemd as PID 1, so the directories systemd would make (RuntimeDirectory) are made here;
#   6. a private Postfix (tests/integration/postfix-instance.sh) configured with
#      packaging/postfix/main.cf and transport, smtpd/cleanup/lmtp chrooted in its queue
#      directory, with the package's socket directory mounted at QUEUE/mailreport as it sits in
#      /var/spool/postfix: a message sent over SMTP arrives with our Authentication-Results, and
#      a DMARC aggregate report sent to dmarc@reports.test goes through the transport map to
#      mailreport-lmtp and shows in `mailreport list dmarc`; SIGHUP (ExecReload) reloads;
#   7. stop everything; start each daemon by hand as root: it must switch to mailreport;
#      apt-get purge; nothing of the package is left (files, directories,
#      user, group, unit symlinks);
#   8. the Sendmail .mc snippet expands with Sendmail's cf macros (sendmail-m4.sh).
# Must run as root, with the package not installed. DNS answers come from dns.local-data; no
# network but loopback (and apt for sendmail-cf in step 8, cached in WORK).
# Usage: run.sh [WORK]   (default build/pkg)   MAILREPORT_PKG_REUSE=1 skips step 1 if WORK
# holds a .deb already (for working on the later steps).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(realpath -m "${1:-$root/build/pkg}")
[[ $(id -u) -eq 0 ]] || { echo "packaging test: must run as root" >&2; exit 1; }

t0=$SECONDS
step() { echo "== packaging: $* ($((SECONDS - t0))s)"; }
fail() {
  echo "packaging test FAILED: $*" >&2
  exit 1
}

# Everything started here is stopped on exit, whatever happens.
tmp=$(mktemp -d /tmp/mailreport-pkg.XXXXXX)
chmod 0755 "$tmp"
pids=()
installed=0
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  if [[ -f $tmp/pf/etc/main.cf ]]; then bash "$root/tests/integration/postfix-instance.sh" stop "$tmp/pf" || true; fi
  if mountpoint -q "$tmp/pf/queue/mailreport" 2>/dev/null; then umount "$tmp/pf/queue/mailreport" || true; fi
  # A failed run leaves the machine as it found it: without the package.
  if ((installed)); then
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q mailreport >/dev/null 2>&1 || true
  fi
  if [[ ${MAILREPORT_PKG_KEEP:-0} != 1 ]]; then rm -rf "$tmp"; fi
}
trap cleanup EXIT

# --- 1. build -------------------------------------------------------------------------------
mkdir -p "$work"
if [[ ${MAILREPORT_PKG_REUSE:-0} == 1 ]] && compgen -G "$work/mailreport_*.deb" >/dev/null; then
  step "1. reusing $(basename "$(ls "$work"/mailreport_*.deb | head -1)")"
else
  step "1. dpkg-buildpackage -us -uc -b in $work/src"
  rm -rf "$work/src" "$work"/mailreport_* "$work"/mailreport-dbgsym_*
  mkdir -p "$work/src"
  (cd "$root" && git ls-files -z -co --exclude-standard |
    tar --null --ignore-failed-read -T - -cf - 2>/dev/null) | tar -xf - -C "$work/src"
  cp -r "$work/src/packaging/debian" "$work/src/debian"
  # ccache (when installed) keeps the compiler's output across runs in WORK/ccache: the copy
  # is always at the same path, so its hashes match from one run to the next.
  build_path=$PATH
  if [[ -d /usr/lib/ccache ]]; then
    build_path=/usr/lib/ccache:$PATH
    export CCACHE_DIR=$work/ccache CCACHE_MAXSIZE=2G
  fi
  (cd "$work/src" && PATH=$build_path DEB_BUILD_OPTIONS="parallel=$(nproc) nocheck" \
    dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1) ||
    { tail -40 "$work/build.log"; fail "dpkg-buildpackage (log: $work/build.log)"; }
fi
deb=$(ls "$work"/mailreport_*.deb | head -1)
changes=$(ls "$work"/mailreport_*.changes | head -1)

# --- 2. lintian -----------------------------------------------------------------------------
step "2. lintian"
lintian --fail-on error,warning "$changes" >"$tmp/lintian.log" 2>&1 || true
cat "$tmp/lintian.log"
if grep -qE '^[EW]: ' "$tmp/lintian.log"; then fail "lintian reported errors or warnings"; fi

# --- 3. install -----------------------------------------------------------------------------
step "3. apt-get install $(basename "$deb")"
if dpkg-query -W -f='${Status}' mailreport 2>/dev/null | grep -q installed; then
  fail "mailreport is installed already; purge it first (apt-get purge mailreport)"
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$deb" >"$tmp/apt.log" 2>&1 ||
  { cat "$tmp/apt.log"; fail "apt-get install"; }
installed=1
getent passwd mailreport >/dev/null || fail "no mailreport user"
[[ $(getent passwd mailreport | cut -d: -f7) == /usr/sbin/nologin ]] || fail "mailreport has a login shell"
getent group mailreport >/dev/null || fail "no mailreport group"
if getent passwd postfix >/dev/null; then
  id -nG postfix | tr ' ' '\n' | grep -qx mailreport || fail "postfix is not in the mailreport group"
fi
for spec in /var/lib/mailreport:700 /var/spool/postfix/mailreport:750; do
  d=${spec%:*}
  [[ $(stat -c '%U:%G %a' "$d") == "mailreport:mailreport ${spec#*:}" ]] || fail "$d: $(stat -c '%U:%G %a' "$d")"
done
dpkg-query -W -f='${Conffiles}\n' mailreport | grep -q ' /etc/mailreport/mailreport.toml ' ||
  fail "/etc/mailreport/mailreport.toml is not a conffile"
mailreport --config /etc/mailreport/mailreport.toml check-config >/dev/null ||
  fail "the shipped configuration does not pass check-config"

# --- 4. man pages and units ----------------------------------------------------------------
step "4. man pages, systemd-analyze verify"
bash "$root/tests/packaging/check-man.sh" /usr/bin/mailreport
for page in mailreport.1 mailreport-lmtp.8 mailreport-milter.8 mailreport.toml.5; do
  man -w "${page%.*}" >/dev/null 2>&1 || [[ -e /usr/share/man/man${page##*.}/$page.gz ]] ||
    fail "man page $page not installed"
done
units=(/lib/systemd/system/mailreport-lmtp.service /lib/systemd/system/mailreport-milter.service
  /lib/systemd/system/mailreport.service)
for u in "${units[@]}"; do [[ -f $u ]] || fail "$u not installed"; done
# --man=no: man(1) inside systemd-analyze's check is not what is tested here (step 4 does it).
verify=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "${units[@]}" 2>&1 || echo "exit status $?")
[[ -z $verify ]] || fail "systemd-analyze verify: $verify"
for u in "${units[@]}"; do
  for want in Type=notify "ExecReload=/bin/kill -HUP \$MAINPID" User=mailreport ProtectSystem=strict \
    PrivateTmp=yes NoNewPrivileges=yes CapabilityBoundingSet= RuntimeDirectory=mailreport \
    StateDirectory=mailreport ReadWritePaths=-/var/spool/postfix/mailreport; do
    grep -qxF "$want" "$u" || fail "$(basename "$u") lacks $want"
  done
done
[[ -L /etc/systemd/system/multi-user.target.wants/mailreport-milter.service ]] ||
  fail "mailreport-milter.service is not enabled"
[[ -L /etc/systemd/system/multi-user.target.wants/mailreport-lmtp.service ]] ||
  fail "mailreport-lmtp.service is not enabled"
[[ -L /etc/systemd/system/multi-user.target.wants/mailreport.service ]] ||
  fail "mailreport.service (mailreport serve) is not enabled"

# --- 5. the daemons, as their units start them ----------------------------------------------
step "5. start the daemons as their units say"
# The test's settings, as an administrator would make them: no DNS upstream (local data for
# sender.test), evaluate loopback clients too, a fixed authserv-id.
conf=/etc/mailreport/mailreport.toml
sed -i \
  -e 's|^#local-only = false$|local-only = true|' \
  -e 's|^#trusted-networks = .*$|trusted-networks = []|' \
  -e 's|^#authserv-id = .*$|authserv-id = "mx.test"|' \
  -e 's|^#local-data = \[\]$|local-data = ["sender.test. 300 IN TXT \\"v=spf1 ip4:127.0.0.1 -all\\"", "_dmarc.sender.test. 300 IN TXT \\"v=DMARC1; p=none; rua=mailto:dmarc@reports.test\\"", "_dmarc.reports.test. 300 IN TXT \\"v=DMARC1; p=none\\""]|' \
  -e 's|^#local-nxdomain = \[\]$|local-nxdomain = ["test."]|' \
  "$conf"
mailreport --config "$conf" check-config >"$tmp/check-config.log" 2>&1 ||
  { cat "$tmp/check-config.log"; fail "the test configuration does not pass check-config"; }

unit_value() {  # unit key: the value of key= in the unit's [Service] section
  sed -n "s/^$2=//p" "$1" | head -1
}
# What systemd does before ExecStart: RuntimeDirectory= and StateDirectory= (owned by User=).
install -d -o mailreport -g mailreport -m 0750 /run/mailreport
install -d -o mailreport -g mailreport -m 0700 /var/lib/mailreport

# A listener for sd_notify datagrams: one line per message in $tmp/notify-NAME.log.
notify_listener() {  # name
  python3 - "$tmp/notify-$1.sock" "$tmp/notify-$1.log" <<'PY' &
import os, socket, sys
path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
with open(log, "a", buffering=1) as f:
    while True:
        f.write(s.recv(4096).decode().replace("\n", " ") + "\n")
PY
  pids+=($!)
  for _ in $(seq 50); do [[ -S $tmp/notify-$1.sock ]] && return 0; sleep 0.1; done
  fail "notify listener for $1 did not start"
}
wait_for() {  # seconds description command...
  local secs=$1 what=$2 i
  shift 2
  for ((i = 0; i < secs * 10; i++)); do
    if "$@"; then return 0; fi
    sleep 0.1
  done
  fail "timed out waiting for $what"
}
declare -A daemon_pid
start_unit() {  # unit-name
  local unit=/lib/systemd/system/$1.service user exec
  user=$(unit_value "$unit" User)
  exec=$(unit_value "$unit" ExecStart)
  [[ -n $user && -n $exec ]] || fail "$1: no User= or ExecStart="
  notify_listener "$1"
  echo "   $1: as $user: $exec"
  umask_value=$(unit_value "$unit" UMask)
  # shellcheck disable=SC2086  # ExecStart is split on spaces, as systemd does here.
  (umask "${umask_value:-0022}" && NOTIFY_SOCKET=$tmp/notify-$1.sock exec setpriv --reuid="$user" \
    --regid="$user" --init-groups --inh-caps=-all --bounding-set=-all --no-new-privs -- $exec) \
    >"$tmp/$1.log" 2>&1 &
  daemon_pid[$1]=$!
  pids+=($!)
  wait_for 30 "READY=1 from $1" grep -q '^READY=1' "$tmp/notify-$1.log" ||
    { cat "$tmp/$1.log"; fail "$1 did not start"; }
}
start_unit mailreport-lmtp
start_unit mailreport-milter
[[ -S /var/spool/postfix/mailreport/lmtp.sock && -S /var/spool/postfix/mailreport/milter.sock ]] ||
  fail "the sockets are not in /var/spool/postfix/mailreport"
for s in lmtp milter; do
  [[ $(stat -c '%G %a' /var/spool/postfix/mailreport/$s.sock) == "mailreport 660" ]] ||
    fail "$s.sock: $(stat -c '%U:%G %a' /var/spool/postfix/mailreport/$s.sock)"
done
start_unit mailreport
# The dashboard of mailreport serve: on 127.0.0.1:8470 with the token postinst made.
token_file=/etc/mailreport/dashboard.token
[[ $(stat -c '%U:%G %a' "$token_file") == "root:mailreport 640" ]] ||
  fail "$token_file: $(stat -c '%U:%G %a' "$token_file")"
dashboard_up() {
  python3 -c 'import urllib.request; urllib.request.urlopen("http://127.0.0.1:8470/healthz", timeout=2)' \
    2>/dev/null
}
wait_for 30 "the dashboard on 127.0.0.1:8470" dashboard_up
python3 - "$token_file" <<'PY' || fail "the dashboard does not answer as it should"
import json, sys, urllib.error, urllib.request
token = open(sys.argv[1]).read().strip()
url = "http://127.0.0.1:8470/api/v1/summary"
try:
    urllib.request.urlopen(url, timeout=5)
    sys.exit("answered without the token")
except urllib.error.HTTPError as e:
    if e.code != 401:
        sys.exit(f"without the token: {e.code}, not 401")
req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
summary = json.load(urllib.request.urlopen(req, timeout=5))
if "reports" not in summary:
    sys.exit(f"summary without reports: {summary}")
PY
echo "   dashboard: 127.0.0.1:8470 answers with the token from $token_file, 401 without"

# --- 6. Postfix from the snippets -----------------------------------------------------------
step "6. Postfix with packaging/postfix: a message in, a report in"
smtp_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
pf=$tmp/pf
bash "$root/tests/integration/postfix-instance.sh" create "$pf" "$smtp_port" 1 >/dev/null
# The package's socket directory, where Postfix's chroot sees it: QUEUE/mailreport.
mkdir -p "$pf/queue/mailreport"
mount --bind /var/spool/postfix/mailreport "$pf/queue/mailreport"
# main.cf: every setting of the snippet, the transport map at the instance's path.
while IFS= read -r line; do
  [[ $line =~ ^[a-z_]+\ = ]] || continue
  postconf -c "$pf/etc" -e "${line//\/etc\/postfix\//$pf/etc/}"
done <"$root/packaging/postfix/main.cf"
# A Maildir to deliver the test message to (virtual(8), as nobody).
mkdir -p "$pf/mail"
chown nobody:nogroup "$pf/mail"
postconf -c "$pf/etc" -e "virtual_mailbox_domains = inbox.test" "virtual_mailbox_base = $pf/mail" \
  "virtual_mailbox_maps = texthash:$pf/etc/vmailbox" "virtual_uid_maps = static:$(id -u nobody)" \
  "virtual_gid_maps = static:$(id -g nobody)" "relay_domains = reports.test"
echo "user@inbox.test user/" >"$pf/etc/vmailbox"
echo "virtual   unix  -       n       n       -       -       virtual" >>"$pf/etc/master.cf"
# smtpd, cleanup (non_smtpd_milters) and lmtp chrooted in the queue directory, as Debian's
# master.cf has them.
sed -i -E 's/^(127\.0\.0\.1:[0-9]+ inet +n +- +)n/\1y/; s/^(cleanup +unix +n +- +)n/\1y/; s/^(lmtp +unix +- +- +)n/\1y/' "$pf/etc/master.cf"
grep -cE ' y +- ' "$pf/etc/master.cf" | grep -qx 3 || fail "could not set the chroot column in master.cf"
# Chrooted daemons read these inside the chroot (Debian's postfix init script copies them).
mkdir -p "$pf/queue/etc"
cp /etc/services /etc/resolv.conf /etc/hosts /etc/nsswitch.conf /etc/localtime "$pf/queue/etc/" 2>/dev/null || true
# transport: the snippet with the test's domain, plus a discard for bounces to the senders.
sed 's/example\.com/reports.test/g' "$root/packaging/postfix/transport" >"$pf/etc/transport"
echo "sender.test discard:test sender" >>"$pf/etc/transport"
postmap -c "$pf/etc" "$pf/etc/transport"
bash "$root/tests/integration/postfix-instance.sh" start "$pf" >/dev/null 2>&1 ||
  { postfix -c "$pf/etc" check; fail "Postfix did not start"; }

smtp_send() {  # from to file
  python3 - "$smtp_port" "$1" "$2" "$3" <<'PY'
import smtplib, sys
port, sender, rcpt, path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
with smtplib.SMTP("127.0.0.1", port, local_hostname="client.sender.test", timeout=30) as s:
    s.sendmail(sender, [rcpt], open(path, "rb").read())
PY
}
cat >"$tmp/msg.eml" <<EOF
From: Alice <alice@sender.test>
To: user@inbox.test
Subject: packaging test
Date: $(date -R)
Message-ID: <pkg-$$@sender.test>

Hello through mailreport-milter.
EOF
smtp_send alice@sender.test user@inbox.test "$tmp/msg.eml" || fail "SMTP to Postfix"
delivered() { compgen -G "$pf/mail/user/new/*" >/dev/null; }
wait_for 60 "the message in the Maildir" delivered ||
  { tail -30 "$pf/maillog"; fail "the message did not arrive"; }
msg=$(cat "$pf"/mail/user/new/*)
# The header section, folded lines joined (RFC 5322 §2.2.3).
headers=$(sed '/^\r\?$/q' <<<"$msg" | awk '/^[ \t]/ { sub(/^[ \t]+/, " "); printf "%s", $0; next }
  NR > 1 { print "" } { printf "%s", $0 } END { print "" }')
ar=$(grep -i '^Authentication-Results: mx.test;' <<<"$headers" || true)
[[ -n $ar ]] || { echo "$msg" | head -20; tail -20 "$pf/maillog"; fail "no Authentication-Results of ours"; }
grep -q 'spf=pass' <<<"$ar" && grep -q 'dmarc=pass' <<<"$ar" ||
  fail "unexpected verdicts: $ar"
echo "   arrived with: $ar"

# A DMARC aggregate report through the transport map to mailreport-lmtp.
sample=$(grep -l -i 'dmarc' "$root"/samples/reports/*.eml | head -1)
[[ -n $sample ]] || fail "no DMARC sample report in samples/reports"
smtp_send alice@sender.test dmarc@reports.test "$sample" || fail "SMTP of the report"
as_mailreport() { setpriv --reuid=mailreport --regid=mailreport --init-groups -- "$@"; }
stored() { as_mailreport mailreport list dmarc --json 2>/dev/null | grep -q '"'; }
wait_for 60 "the report in the store" stored ||
  { tail -30 "$pf/maillog"; cat "$tmp/mailreport-lmtp.log"; fail "the report was not stored"; }
grep -q 'relay=mailreport/lmtp.sock\|relay=.*lmtp.sock' "$pf/maillog" || fail "the report did not go through lmtp:unix"
echo "   stored: $(as_mailreport mailreport list dmarc | head -3 | tr '\n' ' ')"
# The store is the mailreport user's alone (StateDirectoryMode=0700, UMask=0077).
[[ $(stat -c '%a' /var/lib/mailreport) == 700 ]] || fail "/var/lib/mailreport is $(stat -c '%a' /var/lib/mailreport)"
if setpriv --reuid=postfix --regid=postfix --init-groups -- test -r /var/lib/mailreport/mailreport.db; then
  fail "the postfix user can read the store"
fi
evaluated() { as_mailreport mailreport list evaluations --domain sender.test 2>/dev/null | grep -q sender.test; }
wait_for 30 "the milter's evaluation in the store" evaluated || fail "no evaluation recorded"

# ExecReload: SIGHUP to the main PID; the milter reloads and says READY=1 again.
kill -HUP "${daemon_pid[mailreport-milter]}"
wait_for 20 "RELOADING=1 from the milter" grep -q '^RELOADING=1' "$tmp/notify-mailreport-milter.log"
wait_for 20 "the milter's reload" grep -q 'configuration reloaded' "$tmp/mailreport-milter.log"
[[ $(grep -c '^READY=1' "$tmp/notify-mailreport-milter.log") -ge 2 ]] || fail "no READY=1 after the reload"

# --- 7. stop and purge ----------------------------------------------------------------------
step "7. stop, apt-get purge, nothing left"
bash "$root/tests/integration/postfix-instance.sh" stop "$pf"
umount "$pf/queue/mailreport"
for name in "${!daemon_pid[@]}"; do
  kill -TERM "${daemon_pid[$name]}"
  rc=0
  wait "${daemon_pid[$name]}" || rc=$?
  [[ $rc -eq 0 ]] || { cat "$tmp/$name.log"; fail "$name exited with $rc after SIGTERM"; }
  grep -q '^STOPPING=1' "$tmp/notify-$name.log" || fail "$name did not send STOPPING=1"
done
# Started by hand as root (debugging in the foreground), each daemon opens its socket and
# switches to the user of the Debian configuration itself.
mr_uid=$(id -u mailreport)
for name in "${!daemon_pid[@]}"; do
  exec_line=$(unit_value "/lib/systemd/system/$name.service" ExecStart)
  # shellcheck disable=SC2086
  $exec_line >"$tmp/$name-root.log" 2>&1 &
  pid=$!
  pids+=($pid)
  wait_for 30 "$name started as root to serve" grep -qE 'ready|sending the outbox' "$tmp/$name-root.log"
  uids=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$pid/status")
  [[ $uids == "$mr_uid $mr_uid $mr_uid $mr_uid" ]] || fail "$name started as root runs with uids $uids"
  kill -TERM "$pid"
  rc=0
  wait "$pid" || rc=$?
  [[ $rc -eq 0 ]] || { cat "$tmp/$name-root.log"; fail "$name (started as root) exited with $rc"; }
done
echo "   started as root, ${!daemon_pid[*]} switched to mailreport (uid $mr_uid)"
files=$(dpkg -L mailreport | grep -vE '^/(\.|usr|etc|lib|var|var/lib|var/spool|var/spool/postfix|usr/share/doc)?$' || true)
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q mailreport >"$tmp/purge.log" 2>&1 ||
  { cat "$tmp/purge.log"; fail "apt-get purge"; }
installed=0
left=()
for f in /etc/mailreport /var/lib/mailreport /var/spool/postfix/mailreport /run/mailreport \
  /etc/systemd/system/multi-user.target.wants/mailreport-lmtp.service \
  /etc/systemd/system/multi-user.target.wants/mailreport-milter.service \
  /var/lib/systemd/deb-systemd-helper-enabled/mailreport-lmtp.service.dsh-also \
  /var/lib/systemd/deb-systemd-helper-enabled/mailreport-milter.service.dsh-also; do
  [[ -e $f || -L $f ]] && left+=("$f")
done
while IFS= read -r f; do
  [[ -n $f && ( -e $f || -L $f ) && ! -d $f ]] && left+=("$f")
done <<<"$files"
getent passwd mailreport >/dev/null && left+=("user mailreport")
getent group mailreport >/dev/null && left+=("group mailreport")
dpkg-query -W -f='${Status}' mailreport 2>/dev/null | grep -qv 'not-installed' && left+=("dpkg status: $(dpkg-query -W -f='${Status}' mailreport)")
((${#left[@]} == 0)) || fail "left behind after purge: ${left[*]}"

# --- 8. Sendmail ----------------------------------------------------------------------------
step "8. Sendmail .mc snippet through m4"
bash "$root/tests/packaging/sendmail-m4.sh" "$work"

step "passed"
