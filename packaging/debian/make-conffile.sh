#!/bin/sh
# Writes the Debian /etc/mailreport/mailreport.toml: conf/mailreport.toml (every key with its
# default, commented out) with the settings of the Debian package uncommented:
#   - the daemons (and mailreport serve) switch to the "mailreport" user when started as root
#     (systemd starts them as that user already);
#   - their sockets sit in /var/spool/postfix/mailreport, inside the chroot of Debian's Postfix
#     (smtpd, lmtp and smtp run chrooted in /var/spool/postfix), group mailreport, mode 0660;
#     the postfix user is in the mailreport group (postinst). That holds for the TLS result
#     collector of mailreport serve too (tlsrpt.listen; Postfix's smtp_tlsrpt_socket_name =
#     mailreport/tlsrpt.sock);
#   - mailreport serve submits its reports over SMTP to 127.0.0.1:25 (report.submit.method):
#     sendmail(1) needs privileges its hardened unit does not give (Postfix's postdrop is
#     setgid and writes to /var/spool/postfix/maildrop; NoNewPrivileges, ProtectSystem=strict);
#   - the dashboard's bearer token is read from /etc/mailreport/dashboard.token, which postinst
#     makes (random, root:mailreport, mode 0640) when it is missing.
# Usage: make-conffile.sh conf/mailreport.toml OUT
set -eu
in=$1
out=$2
mkdir -p "$(dirname "$out")"
sed \
  -e 's|^#unix-socket = "/run/mailreport/lmtp.sock"$|unix-socket = "/var/spool/postfix/mailreport/lmtp.sock"|' \
  -e 's|^#unix-socket-group = ""$|unix-socket-group = "mailreport"|' \
  -e 's|^#socket = "unix:/run/mailreport/milter.sock"$|socket = "unix:/var/spool/postfix/mailreport/milter.sock"|' \
  -e 's|^#socket-group = ""$|socket-group = "mailreport"|' \
  -e 's|^#listen = "/run/mailreport/tlsrpt.sock"$|listen = "/var/spool/postfix/mailreport/tlsrpt.sock"|' \
  -e 's|^#user = ""$|user = "mailreport"|' \
  -e 's|^#method = "sendmail"$|method = "smtp"|' \
  -e 's|^#token-file = ""$|token-file = "/etc/mailreport/dashboard.token"|' \
  -e '1a\
#\
# Debian: the package uncomments the lines that differ from the built-in\
# defaults (user, sockets in /var/spool/postfix/mailreport so that Postfix\
# reaches them from its chroot, reports submitted over SMTP). See\
# /usr/share/doc/mailreport/README.Debian.' \
  "$in" >"$out.tmp"
# Every substitution above must have matched (conf/mailreport.toml may have changed): each
# setting once, socket-group in both sections that have it (milter, tlsrpt), and user in every
# section that has it (lmtp, milter, serve).
if [ "$(grep -cxF 'socket-group = "mailreport"' "$out.tmp")" -ne 2 ]; then
  echo "make-conffile.sh: socket-group is not set in [milter] and [tlsrpt] of $out" >&2
  rm -f "$out.tmp"
  exit 1
fi
for want in 'unix-socket = "/var/spool/postfix/mailreport/lmtp.sock"' \
  'unix-socket-group = "mailreport"' 'socket = "unix:/var/spool/postfix/mailreport/milter.sock"' \
  'listen = "/var/spool/postfix/mailreport/tlsrpt.sock"' 'method = "smtp"' \
  'token-file = "/etc/mailreport/dashboard.token"'; do
  if [ "$(grep -cxF "$want" "$out.tmp")" -ne 1 ]; then
    echo "make-conffile.sh: '$want' is not set once in $out; conf/mailreport.toml changed?" >&2
    rm -f "$out.tmp"
    exit 1
  fi
done
users=$(grep -cxF 'user = "mailreport"' "$out.tmp" || true)
if [ "$users" -lt 2 ] || [ "$(grep -c '^#user = ' "$out.tmp" || true)" -ne 0 ]; then
  echo "make-conffile.sh: user is not set in every section of $out" >&2
  rm -f "$out.tmp"
  exit 1
fi
mv "$out.tmp" "$out"
