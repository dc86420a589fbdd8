#!/usr/bin/env bash
# A private, throw-away Postfix instance for the LMTP integration test (postfix_lmtp_test.cpp).
# Everything lives under DIR: config (DIR/etc: main.cf, master.cf, transport), queue
# (DIR/queue), data (DIR/data) and the log (DIR/maillog, written by postlogd; Postfix >= 3.4).
# It never reads or writes /etc/postfix, and never talks to a system instance.
#
#   postfix-instance.sh create DIR SMTP_PORT LMTP_PORT   write the configuration
#   postfix-instance.sh start DIR                        postfix check + postfix start
#   postfix-instance.sh stop DIR                         postfix stop, then kill what is left
#
# The instance accepts mail over SMTP on 127.0.0.1:SMTP_PORT for the relay domain
# reports.test and hands every reports.test recipient to lmtp:inet:127.0.0.1:LMTP_PORT.
# Bounces go to the sender; senders in sender.test are discarded so that nothing ever leaves
# the machine (default_transport is the error transport, and DNS is never used).
# Must run as root (Postfix's master and postlogd need it). Try it by hand:
#   bash postfix-instance.sh create /tmp/pf 2525 2424 && bash postfix-instance.sh start /tmp/pf
#   swaks --server 127.0.0.1:2525 --to dmarc@reports.test ...; tail /tmp/pf/maillog
#   bash postfix-instance.sh stop /tmp/pf
set -euo pipefail

postfix=${POSTFIX:-/usr/sbin/postfix}

die() {
  echo "postfix-instance: $*" >&2
  exit 1
}

# Every process of this instance has MAIL_CONFIG=DIR/etc in its environment (the postfix
# command sets it and import_environment passes it on to master and its children).
instance_pids() {
  local conf=$1 env pid
  for env in /proc/[0-9]*/environ; do
    pid=${env#/proc/}
    pid=${pid%/environ}
    [[ $pid == "$$" ]] && continue
    if { tr '\0' '\n' <"$env"; } 2>/dev/null | grep -qxF "MAIL_CONFIG=$conf"; then
      echo "$pid"
    fi
  done
}

create() {
  local dir=$1 smtp_port=$2 lmtp_port=$3
  [[ $dir == /* ]] || die "DIR must be absolute: $dir"
  [[ $smtp_port =~ ^[0-9]+$ && $lmtp_port =~ ^[0-9]+$ ]] || die "ports must be numbers"
  mkdir -p "$dir/etc" "$dir/queue"
  # Postfix's daemons run as mail_owner and must reach the config and queue directories.
  chmod 0755 "$dir" "$dir/etc" "$dir/queue"

  cat >"$dir/etc/main.cf" <<EOF
# Private test instance (tests/integration/postfix-instance.sh). Not for production.
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.test
mydomain = mx.test
myorigin = mx.test
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = reports.test
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
transport_maps = texthash:$dir/etc/transport
default_transport = error:5.7.1 outbound mail is disabled in this test instance
relay_transport = error:5.7.1 relay is disabled in this test instance
alias_maps =
alias_database =
local_recipient_maps =
# No DNS, no reverse lookups: the test runs without network.
smtpd_peername_lookup = no
smtp_dns_support_level = disabled
lmtp_dns_support_level = disabled
disable_dns_lookups = yes
# Deliver at once and retry fast; one message per LMTP transaction keeps the log simple.
queue_run_delay = 5s
minimal_backoff_time = 5s
maximal_backoff_time = 10s
lmtp_destination_recipient_limit = 10
smtpd_banner = \$myhostname ESMTP test instance
biff = no
# Logging to a file through postlogd (Postfix >= 3.4); the file must sit under a prefix.
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
EOF

  # No chroot anywhere (column 5 = n): the queue directory is a temporary directory.
  cat >"$dir/etc/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$smtp_port inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF

  cat >"$dir/etc/transport" <<EOF
# Every reports.test mailbox goes to mailreport-lmtp, which accepts only the report
# mailboxes (report.analysis.addresses) and answers 550 5.1.1 for the others.
reports.test    lmtp:inet:127.0.0.1:$lmtp_port
# Bounces to the test senders are thrown away.
sender.test     discard:test sender
EOF
}

start() {
  local dir=$1
  [[ -f $dir/etc/main.cf ]] || die "no instance in $dir (run create first)"
  # An empty log file owned by root; postlogd appends to it.
  : >>"$dir/maillog"
  "$postfix" -c "$dir/etc" check
  "$postfix" -c "$dir/etc" start
}

stop() {
  local dir=$1 pids i
  [[ -f $dir/etc/main.cf ]] || exit 0
  "$postfix" -c "$dir/etc" stop 2>/dev/null || true
  # postfix stop waits up to 5 s for the master; kill whatever of this instance is left.
  for i in 1 2 3 4 5 6 7 8 9 10; do
    pids=$(instance_pids "$dir/etc")
    [[ -z $pids ]] && return 0
    if ((i == 1)); then
      # shellcheck disable=SC2086
      kill -TERM $pids 2>/dev/null || true
    elif ((i == 6)); then
      # shellcheck disable=SC2086
      kill -KILL $pids 2>/dev/null || true
    fi
    sleep 0.5
  done
  die "processes of the instance in $dir are still running: $(instance_pids "$dir/etc" | tr '\n' ' ')"
}

case "${1:-}" in
  create) (($# == 4)) || die "usage: $0 create DIR SMTP_PORT LMTP_PORT"; create "$2" "$3" "$4" ;;
  start) (($# == 2)) || die "usage: $0 start DIR"; start "$2" ;;
  stop) (($# == 2)) || die "usage: $0 stop DIR"; stop "$2" ;;
  *) die "usage: $0 create DIR SMTP_PORT LMTP_PORT | start DIR | stop DIR" ;;
esac
