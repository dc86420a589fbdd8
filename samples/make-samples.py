#!/usr/bin/env python3
"""Writes the sample reports that `mailreport demo` delivers (samples/reports/*.eml).

They were written for mailreport (nothing is copied from elsewhere) and use only documentation
names and addresses (RFC 2606 domains, RFC 5737 / RFC 3849 addresses). The output is
committed; run this script again only to change the samples. Deterministic: no clock, no
randomness, fixed MIME boundaries and gzip mtime 0.
"""
import base64, gzip, io, json, os, zipfile

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reports")
DAY = 86400
BEGIN = 1767225600  # 2026-01-01T00:00:00Z


def gz(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as f:
        f.write(data)
    return buf.getvalue()


def b64(data: bytes) -> str:
    s = base64.b64encode(data).decode()
    return "\n".join(s[i:i + 76] for i in range(0, len(s), 76))


def dmarc_xml(org, email, rid, begin, domain, records, rfc9990=False):
    ns = ' xmlns="urn:ietf:params:xml:ns:dmarc-2.0"' if rfc9990 else ""
    pol = (f"<domain>{domain}</domain><adkim>r</adkim><aspf>r</aspf><p>quarantine</p>"
           f"<sp>quarantine</sp>")
    pol += "<np>reject</np><testing>n</testing><discovery_method>treewalk</discovery_method>" if rfc9990 \
        else "<pct>100</pct><fo>1</fo>"
    out = [f'<?xml version="1.0" encoding="UTF-8"?>\n<feedback{ns}>',
           "  <version>1.0</version>",
           f"  <report_metadata><org_name>{org}</org_name><email>{email}</email>"
           f"<report_id>{rid}</report_id><date_range><begin>{begin}</begin>"
           f"<end>{begin + DAY - 1}</end></date_range></report_metadata>",
           f"  <policy_published>{pol}</policy_published>"]
    for ip, count, disp, dkim, spf, hfrom, dkim_res, spf_res in records:
        dk = "".join(f"<dkim><domain>{d}</domain><selector>{s}</selector><result>{r}</result></dkim>"
                     for d, s, r in dkim_res)
        out.append(
            f"  <record><row><source_ip>{ip}</source_ip><count>{count}</count>"
            f"<policy_evaluated><disposition>{disp}</disposition><dkim>{dkim}</dkim><spf>{spf}</spf>"
            f"</policy_evaluated></row><identifiers><header_from>{hfrom}</header_from>"
            f"<envelope_from>{hfrom}</envelope_from></identifiers><auth_results>{dk}"
            f"<spf><domain>{spf_res[0]}</domain><scope>mfrom</scope><result>{spf_res[1]}</result></spf>"
            f"</auth_results></record>")
    out.append("</feedback>\n")
    return "\n".join(out).encode()


def headers(frm, to, subject, msgid, date, ctype, extra=""):
    return (f"Return-Path: <{frm}>\nFrom: {frm}\nTo: {to}\nSubject: {subject}\n"
            f"Date: {date}\nMessage-ID: <{msgid}>\nMIME-Version: 1.0\n{extra}"
            f"Content-Type: {ctype}\n")


def write(name, text):
    with open(os.path.join(OUT, name), "w", newline="\n") as f:
        f.write(text)


def main():
    os.makedirs(OUT, exist_ok=True)
    good = [("192.0.2.10", 1840, "none", "pass", "pass", "example.com",
             [("example.com", "mail2026", "pass")], ("example.com", "pass")),
            ("192.0.2.11", 622, "none", "pass", "fail", "example.com",
             [("example.com", "mail2026", "pass")], ("bounce.example.net", "pass")),
            ("2001:db8::25", 37, "none", "pass", "pass", "example.com",
             [("example.com", "mail2026", "pass"), ("esp.example.net", "s1", "pass")], ("example.com", "pass")),
            ("203.0.113.66", 12, "quarantine", "fail", "fail", "example.com",
             [("example.com", "mail2026", "fail")], ("example.com", "softfail"))]
    # 1. A mailbox provider's daily report, gzip attachment (RFC 7489 format).
    xml = dmarc_xml("Mailbox Provider Example", "noreply-dmarc@provider.example", "2026010100.pm.1",
                    BEGIN, "example.com", good)
    fn = f"provider.example!example.com!{BEGIN}!{BEGIN + DAY - 1}!2026010100pm1.xml.gz"
    write("01-dmarc-aggregate-gzip.eml",
          headers("noreply-dmarc@provider.example", "dmarc@example.com",
                  "Report Domain: example.com Submitter: provider.example Report-ID: <2026010100.pm.1>",
                  "dmarc-2026010100.pm.1@provider.example", "Fri, 02 Jan 2026 03:12:00 +0000",
                  'multipart/mixed; boundary="=_mr_sample_1"') +
          "\n--=_mr_sample_1\nContent-Type: text/plain; charset=us-ascii\n\n"
          "This is an aggregate report from provider.example.\n\n"
          f'--=_mr_sample_1\nContent-Type: application/gzip; name="{fn}"\n'
          f'Content-Transfer-Encoding: base64\nContent-Disposition: attachment; filename="{fn}"\n\n'
          f"{b64(gz(xml))}\n--=_mr_sample_1--\n")
    # 2. An RFC 9990 report, zip attachment, from a second reporter.
    recs = [("198.51.100.7", 410, "none", "pass", "pass", "example.com",
             [("example.com", "mail2026", "pass")], ("example.com", "pass")),
            ("198.51.100.99", 55, "reject", "fail", "fail", "example.com",
             [], ("spoof.example.org", "fail"))]
    xml = dmarc_xml("Large ISP Example", "dmarc-reports@isp.example", "isp-7781-20260101",
                    BEGIN, "example.com", recs, rfc9990=True)
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo(f"isp.example!example.com!{BEGIN}!{BEGIN + DAY - 1}.xml", (2026, 1, 2, 0, 0, 0))
        z.writestr(info, xml)
    write("02-dmarc-aggregate-zip.eml",
          headers("dmarc-reports@isp.example", "dmarc@example.com",
                  "Report Domain: example.com Submitter: isp.example Report-ID: <isp-7781-20260101>",
                  "isp-7781-20260101@isp.example", "Fri, 02 Jan 2026 06:40:00 +0000",
                  f'application/zip; name="isp.example!example.com!{BEGIN}!{BEGIN + DAY - 1}.zip"',
                  "Content-Transfer-Encoding: base64\n") + "\n" + b64(zbuf.getvalue()) + "\n")
    # 3. The next day from the first reporter, plain XML, for example.net.
    recs = [("192.0.2.10", 96, "none", "pass", "pass", "example.net",
             [("example.net", "k1", "pass")], ("example.net", "pass")),
            ("203.0.113.5", 4, "none", "fail", "fail", "example.net",
             [("example.net", "k1", "fail")], ("example.net", "fail"))]
    xml = dmarc_xml("Mailbox Provider Example", "noreply-dmarc@provider.example", "2026010200.pm.7",
                    BEGIN + DAY, "example.net", recs)
    write("03-dmarc-aggregate-xml.eml",
          headers("noreply-dmarc@provider.example", "dmarc@example.net",
                  "Report Domain: example.net Submitter: provider.example Report-ID: <2026010200.pm.7>",
                  "dmarc-2026010200.pm.7@provider.example", "Sat, 03 Jan 2026 03:12:00 +0000",
                  'multipart/mixed; boundary="=_mr_sample_3"') +
          "\n--=_mr_sample_3\nContent-Type: text/plain\n\nAggregate report attached.\n\n"
          '--=_mr_sample_3\nContent-Type: text/xml; name="report.xml"\n'
          "Content-Disposition: attachment; filename=\"report.xml\"\n\n" + xml.decode() +
          "\n--=_mr_sample_3--\n")
    # 4. A TLS report (RFC 8460) with one STS policy and failures.
    tls = {"organization-name": "Mailbox Provider Example",
           "date-range": {"start-datetime": "2026-01-01T00:00:00Z", "end-datetime": "2026-01-01T23:59:59Z"},
           "contact-info": "tlsrpt@provider.example", "report-id": "2026-01-01T00:00:00Z_example.com",
           "policies": [{"policy": {"policy-type": "sts",
                                    "policy-string": ["version: STSv1", "mode: enforce",
                                                      "mx: mx1.example.com", "max_age: 86400"],
                                    "policy-domain": "example.com", "mx-host": ["mx1.example.com"]},
                         "summary": {"total-successful-session-count": 5210,
                                     "total-failure-session-count": 14},
                         "failure-details": [
                             {"result-type": "certificate-expired", "sending-mta-ip": "192.0.2.10",
                              "receiving-mx-hostname": "mx1.example.com", "receiving-ip": "198.51.100.25",
                              "failed-session-count": 11},
                             {"result-type": "starttls-not-supported", "sending-mta-ip": "192.0.2.11",
                              "receiving-mx-hostname": "mx1.example.com", "receiving-ip": "198.51.100.25",
                              "failed-session-count": 3}]}]}
    body = json.dumps(tls, indent=2).encode()
    write("04-tls-report.eml",
          headers("tlsrpt@provider.example", "tlsrpt@example.com",
                  "Report Domain: example.com Submitter: provider.example Report-ID: <2026-01-01T00:00:00Z_example.com@provider.example>",
                  "tlsrpt-20260101-example.com@provider.example", "Fri, 02 Jan 2026 01:00:00 +0000",
                  'multipart/report; report-type="tlsrpt"; boundary="=_mr_sample_4"',
                  "TLS-Report-Domain: example.com\nTLS-Report-Submitter: provider.example\n") +
          "\n--=_mr_sample_4\nContent-Type: text/plain\n\nThis is an aggregate TLS report from provider.example.\n\n"
          '--=_mr_sample_4\nContent-Type: application/tlsrpt+gzip\nContent-Transfer-Encoding: base64\n'
          'Content-Disposition: attachment; filename="provider.example!example.com!1767225600!1767311999!1.json.gz"\n\n'
          + b64(gz(body)) + "\n--=_mr_sample_4--\n")
    # 5. A DMARC failure report (RFC 6591 / RFC 9991).
    write("05-arf-dmarc-failure.eml",
          headers("dmarc-failures@isp.example", "dmarc@example.com",
                  "DMARC failure report for example.com", "ruf-5521@isp.example",
                  "Fri, 02 Jan 2026 09:30:00 +0000",
                  'multipart/report; report-type=feedback-report; boundary="=_mr_sample_5"') +
          "\n--=_mr_sample_5\nContent-Type: text/plain\n\n"
          "A message claiming to be from example.com failed DMARC authentication.\n\n"
          "--=_mr_sample_5\nContent-Type: message/feedback-report\n\n"
          "Feedback-Type: auth-failure\nUser-Agent: ExampleISP-Reporter/2.1\nVersion: 1\n"
          "Original-Mail-From: <billing@example.com>\nOriginal-Rcpt-To: <customer@isp.example>\n"
          "Arrival-Date: Fri, 02 Jan 2026 09:29:41 +0000\nSource-IP: 198.51.100.99\n"
          "Reported-Domain: example.com\nAuth-Failure: dmarc\nDelivery-Result: reject\n"
          "Authentication-Results: mx.isp.example; dmarc=fail (p=quarantine) header.from=example.com;\n"
          " spf=fail smtp.mailfrom=spoof.example.org; dkim=none\nIdentity-Alignment: none\n\n"
          "--=_mr_sample_5\nContent-Type: text/rfc822-headers\n\n"
          "From: Example Billing <billing@example.com>\nTo: customer@isp.example\n"
          "Subject: Your invoice is overdue\nDate: Fri, 02 Jan 2026 09:29:40 +0000\n"
          "Message-ID: <fake-77@spoof.example.org>\n\n--=_mr_sample_5--\n")
    # 6. An abuse complaint (feedback loop) about a message sent from our network.
    write("06-arf-abuse.eml",
          headers("fbl@isp.example", "abuse@example.com", "Abuse report", "fbl-10021@isp.example",
                  "Sat, 03 Jan 2026 12:00:00 +0000",
                  'multipart/report; report-type=feedback-report; boundary="=_mr_sample_6"') +
          "\n--=_mr_sample_6\nContent-Type: text/plain\n\nA user of isp.example marked this message as spam.\n\n"
          "--=_mr_sample_6\nContent-Type: message/feedback-report\n\n"
          "Feedback-Type: abuse\nUser-Agent: ExampleISP-FBL/1.0\nVersion: 1\n"
          "Original-Mail-From: <news@example.com>\nArrival-Date: Sat, 03 Jan 2026 11:58:02 +0000\n"
          "Source-IP: 192.0.2.10\nReported-Domain: example.com\nIncidents: 1\n\n"
          "--=_mr_sample_6\nContent-Type: message/rfc822\n\n"
          "From: Example News <news@example.com>\nTo: reader@isp.example\nSubject: January offers\n"
          "Date: Sat, 03 Jan 2026 11:58:00 +0000\nMessage-ID: <news-2026-01@example.com>\n\n"
          "Our January offers...\n\n--=_mr_sample_6--\n")
    # 7. A bounce (RFC 3464 DSN) for one of our own outgoing reports.
    write("07-dsn-bounce.eml",
          headers("MAILER-DAEMON@mx.example.com", "postmaster@example.com",
                  "Undelivered Mail Returned to Sender", "20260103.DSN1@mx.example.com",
                  "Sat, 03 Jan 2026 04:00:05 +0000",
                  'multipart/report; report-type=delivery-status; boundary="=_mr_sample_7"',
                  "Auto-Submitted: auto-replied\n").replace("Return-Path: <MAILER-DAEMON@mx.example.com>", "Return-Path: <>") +
          "\n--=_mr_sample_7\nContent-Type: text/plain\n\nThe mail system could not deliver your message.\n\n"
          "--=_mr_sample_7\nContent-Type: message/delivery-status\n\n"
          "Reporting-MTA: dns; mx.example.com\nX-Postfix-Queue-ID: 4ZK0Q12abc\n"
          "Arrival-Date: Sat, 03 Jan 2026 04:00:01 +0000\n\n"
          "Final-Recipient: rfc822; dmarc@gone.example.org\nOriginal-Recipient: rfc822;dmarc@gone.example.org\n"
          "Action: failed\nStatus: 5.1.1\nRemote-MTA: dns; mx.gone.example.org\n"
          "Diagnostic-Code: smtp; 550 5.1.1 <dmarc@gone.example.org>: Recipient address rejected\n\n"
          "--=_mr_sample_7\nContent-Type: text/rfc822-headers\n\n"
          "From: DMARC Reports <noreply-dmarc@example.com>\nTo: dmarc@gone.example.org\n"
          "Subject: Report Domain: gone.example.org Submitter: mx.example.com Report-ID: <r-1@example.com>\n"
          "Message-ID: <r-1@example.com>\n\n--=_mr_sample_7--\n")
    # 8. Not a report: kept raw with the reason, never lost.
    write("08-not-a-report.eml",
          headers("someone@example.org", "dmarc@example.com", "Question about your DMARC policy",
                  "question-1@example.org", "Sun, 04 Jan 2026 10:00:00 +0000", "text/plain; charset=utf-8") +
          "\nHello, could you tell me who handles DMARC for example.com?\n")


if __name__ == "__main__":
    main()
