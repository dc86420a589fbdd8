// Helpers for the extract_*_test.cpp files: sample reports, gzip/zip/MIME builders (zlib,
// libarchive's write API, hand-written MIME), and an Extracted wrapper around extract_reports.
#pragma once

#include <archive.h>
#include <archive_entry.h>
#include <glib.h>
#include <sys/resource.h>
#include <zlib.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mailreport/report/extract.hpp"

namespace mailreport::report::extract_test {

inline constexpr const char* kDmarcXml = R"(<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <report_metadata>
    <org_name>example.net</org_name>
    <email>dmarc@example.net</email>
    <report_id>r-1</report_id>
    <date_range><begin>1700000000</begin><end>1700086399</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>example.com</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><pct>100</pct>
  </policy_published>
  <record>
    <row><source_ip>192.0.2.1</source_ip><count>3</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated>
    </row>
    <identifiers><header_from>example.com</header_from></identifiers>
    <auth_results><dkim><domain>example.com</domain><result>pass</result></dkim>
      <spf><domain>example.com</domain><result>pass</result></spf></auth_results>
  </record>
  <record>
    <row><source_ip>198.51.100.9</source_ip><count>7</count>
      <policy_evaluated><disposition>none</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated>
    </row>
    <identifiers><header_from>example.com</header_from></identifiers>
    <auth_results><spf><domain>bad.example</domain><result>fail</result></spf></auth_results>
  </record>
</feedback>
)";

inline constexpr const char* kTlsJson = R"({
  "organization-name": "Company-X",
  "date-range": {"start-datetime": "2016-04-01T00:00:00Z", "end-datetime": "2016-04-01T23:59:59Z"},
  "contact-info": "sts-reporting@company-x.example",
  "report-id": "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
  "policies": [{
    "policy": {"policy-type": "sts", "policy-string": ["version: STSv1", "mode: testing"],
               "policy-domain": "company-y.example", "mx-host": ["*.mail.company-y.example"]},
    "summary": {"total-successful-session-count": 5326, "total-failure-session-count": 303},
    "failure-details": [{"result-type": "certificate-expired", "sending-mta-ip": "2001:db8:abcd:0012::1",
                         "receiving-mx-hostname": "mx1.mail.company-y.example", "failed-session-count": 100}]
  }]
})";

inline constexpr const char* kHeaders =
    "From: reporter@example.net\n"
    "To: dmarc@example.com\n"
    "Subject: Report Domain: example.com Submitter: example.net Report-ID: <r-1>\n"
    "Date: Mon, 1 Jan 2024 00:00:00 +0000\n"
    "Message-ID: <r-1@example.net>\n"
    "MIME-Version: 1.0\n";

inline constexpr const char* kArfMessage =
    R"(From: <abusedesk@example.com>
Date: Thu, 8 Mar 2005 17:40:36 EDT
Subject: FW: Earn money
To: <abuse@example.net>
Message-ID: <arf-1@example.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
     boundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
192.0.2.1 on Thu, 8 Mar 2005 14:00:00 EDT.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <somespammer@example.net>
Original-Rcpt-To: <user@example.com>
Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT
Source-IP: 192.0.2.1
Authentication-Results: mail.example.com; spf=fail smtp.mail=somespammer@example.com
Reported-Domain: example.net
Reported-Uri: http://example.net/earn_money.html

--part1_13d.2e68ed54_boundary
Content-Type: text/rfc822-headers

From: <somespammer@example.net>
To: <Undisclosed Recipients>
Subject: Earn money
Message-ID: 8787KJKJ3K4J3K4J3K4J3.mail@example.net
Date: Thu, 02 Sep 2004 12:31:03 -0500

--part1_13d.2e68ed54_boundary--
)";

// ---------------------------------------------------------------- builders

inline std::string deflate_with(z_stream& zs, std::string_view in, int flush) {
  std::string out;
  char buf[65536];
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  do {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    int rc = deflate(&zs, flush);
    if (rc == Z_STREAM_ERROR) throw std::runtime_error("deflate failed");
    out.append(buf, sizeof buf - zs.avail_out);
  } while (zs.avail_in > 0 || zs.avail_out == 0);
  return out;
}

inline std::string gzip(std::string_view data) {
  z_stream zs{};
  if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("deflateInit2");
  }
  std::string out = deflate_with(zs, data, Z_FINISH);
  deflateEnd(&zs);
  return out;
}

// A single-member gzip stream of `prefix` followed by `total` bytes of `fill`, built without
// holding the decompressed data or deflating all of it: after Z_FULL_FLUSH deflate starts
// afresh, so every identical 1 MiB chunk compresses to identical bytes, which are repeated.
inline std::string gzip_bomb(std::string_view prefix, char fill, std::uint64_t total) {
  z_stream zs{};
  if (deflateInit2(&zs, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("deflateInit2");
  }
  std::string out("\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03", 10);  // RFC 1952 §2.3
  out += deflate_with(zs, prefix, Z_FULL_FLUSH);
  const std::string chunk(1u << 20, fill);
  const std::string first = deflate_with(zs, chunk, Z_FULL_FLUSH);
  const std::string again = deflate_with(zs, chunk, Z_FULL_FLUSH);
  if (first != again) throw std::runtime_error("deflate output not repeatable");
  std::uint64_t chunks = total / chunk.size();
  uLong crc =
      crc32(0, reinterpret_cast<const Bytef*>(prefix.data()), static_cast<uInt>(prefix.size()));
  uLong chunk_crc =
      crc32(0, reinterpret_cast<const Bytef*>(chunk.data()), static_cast<uInt>(chunk.size()));
  for (std::uint64_t i = 0; i < chunks; ++i) {
    out += first;
    crc = crc32_combine(crc, chunk_crc, static_cast<z_off_t>(chunk.size()));
  }
  out += deflate_with(zs, std::string_view(), Z_FINISH);
  deflateEnd(&zs);
  std::uint64_t size = prefix.size() + chunks * chunk.size();
  for (int i = 0; i < 4; ++i) out += static_cast<char>((crc >> (8 * i)) & 0xff);
  for (int i = 0; i < 4; ++i) out += static_cast<char>((size >> (8 * i)) & 0xff);
  return out;
}

struct ArchiveWriter {
  archive* a = archive_write_new();
  std::string out;
  ArchiveWriter() {
    archive_write_set_format_zip(a);
    archive_write_set_options(a, "zip:compression-level=1");
    archive_write_set_bytes_in_last_block(a, 1);
    archive_write_open(a, this, nullptr, &ArchiveWriter::write, nullptr);
  }
  ~ArchiveWriter() { archive_write_free(a); }
  ArchiveWriter(const ArchiveWriter&) = delete;
  ArchiveWriter& operator=(const ArchiveWriter&) = delete;
  static la_ssize_t write(archive*, void* self, const void* buf, size_t n) {
    static_cast<ArchiveWriter*>(self)->out.append(static_cast<const char*>(buf), n);
    return static_cast<la_ssize_t>(n);
  }
  void begin(const std::string& name, std::int64_t size) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_size(e, size);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    if (archive_write_header(a, e) != ARCHIVE_OK) {
      std::string why = archive_error_string(a) ? archive_error_string(a) : "?";
      archive_entry_free(e);
      throw std::runtime_error("archive_write_header: " + why);
    }
    archive_entry_free(e);
  }
  void data(std::string_view d) {
    if (archive_write_data(a, d.data(), d.size()) < 0)
      throw std::runtime_error("archive_write_data");
  }
  std::string finish() {
    archive_write_close(a);
    return out;
  }
};

inline std::string make_zip(const std::vector<std::pair<std::string, std::string>>& entries) {
  ArchiveWriter w;
  for (const auto& [name, content] : entries) {
    w.begin(name, static_cast<std::int64_t>(content.size()));
    w.data(content);
  }
  return w.finish();
}

// libarchive refuses to write an entry without a name, which real reporters send (the
// mail-dmarc fixture). This removes the 1-byte name of the LAST entry of a zip written by
// make_zip: from its local header and its central directory record, fixing the sizes and the
// central directory offset (APPNOTE 4.3.7, 4.3.12, 4.3.16).
inline std::string unname_last_entry(std::string z) {
  auto u16 = [&](std::size_t at) {
    return static_cast<unsigned>(static_cast<unsigned char>(z[at])) |
           static_cast<unsigned>(static_cast<unsigned char>(z[at + 1])) << 8;
  };
  auto u32 = [&](std::size_t at) { return u16(at) | u16(at + 2) << 16; };
  auto put16 = [&](std::size_t at, unsigned v) {
    z[at] = static_cast<char>(v & 0xff);
    z[at + 1] = static_cast<char>((v >> 8) & 0xff);
  };
  auto put32 = [&](std::size_t at, unsigned v) {
    put16(at, v & 0xffff);
    put16(at + 2, v >> 16);
  };
  std::size_t eocd = z.rfind(std::string("PK\x05\x06", 4));
  if (eocd == std::string::npos) throw std::runtime_error("no end of central directory");
  unsigned cd_size = u32(eocd + 12), cd_off = u32(eocd + 16), count = u16(eocd + 10);
  std::size_t rec = cd_off;
  for (unsigned i = 1; i < count; ++i) rec += 46 + u16(rec + 28) + u16(rec + 30) + u16(rec + 32);
  if (u16(rec + 28) != 1) throw std::runtime_error("the last entry must have a 1-byte name");
  std::size_t local = u32(rec + 42);
  put16(rec + 28, 0);
  z.erase(rec + 46, 1);
  eocd -= 1;
  put32(eocd + 12, cd_size - 1);
  put16(local + 26, 0);
  z.erase(local + 30, 1);
  eocd -= 1;
  put32(eocd + 16, cd_off - 1);
  return z;
}

// One entry of `prefix` + `total` bytes of `fill`, written in 1 MiB chunks.
inline std::string make_zip_streamed(const std::string& name, std::string_view prefix, char fill,
                                     std::uint64_t total) {
  ArchiveWriter w;
  w.begin(name, static_cast<std::int64_t>(prefix.size() + total));
  w.data(prefix);
  const std::string chunk(1u << 20, fill);
  for (std::uint64_t done = 0; done < total; done += chunk.size()) w.data(chunk);
  return w.finish();
}

inline std::string base64(std::string_view data) {
  gchar* enc = g_base64_encode(reinterpret_cast<const guchar*>(data.data()), data.size());
  std::string flat(enc);
  g_free(enc);
  std::string out;
  for (std::size_t i = 0; i < flat.size(); i += 76) out += flat.substr(i, 76) + "\n";
  return out;
}

// A MIME body part; `body` must already be encoded with `cte`.
inline std::string part(const std::string& type, const std::string& filename,
                        const std::string& body, const std::string& cte = "base64") {
  std::string s = "Content-Type: " + type;
  if (!filename.empty()) s += "; name=\"" + filename + "\"";
  s += "\n";
  if (!filename.empty()) s += "Content-Disposition: attachment; filename=\"" + filename + "\"\n";
  s += "Content-Transfer-Encoding: " + cte + "\n\n" + body;
  if (s.back() != '\n') s += "\n";
  return s;
}

inline std::string mime_mixed(const std::vector<std::string>& parts) {
  static int counter = 0;
  std::string b = "=_mixed_" + std::to_string(++counter) + "_=";
  std::string s = std::string(kHeaders) + "Content-Type: multipart/mixed; boundary=\"" + b +
                  "\"\n\nThis is a multi-part message in MIME format.\n";
  for (const auto& p : parts) s += "--" + b + "\n" + p;
  s += "--" + b + "--\n";
  return s;
}

inline std::string dmarc_xml_with_records(int n) {
  std::string s =
      "<?xml version=\"1.0\"?>\n<feedback><report_metadata><org_name>big.example</org_name>"
      "<email>d@big.example</email><report_id>big-1</report_id><date_range><begin>1700000000"
      "</begin><end>1700086399</end></date_range></report_metadata><policy_published><domain>"
      "example.com</domain><p>none</p></policy_published>\n";
  for (int i = 0; i < n; ++i) {
    s += "<record><row><source_ip>10.0." + std::to_string(i / 250) + "." +
         std::to_string(i % 250 + 1) +
         "</source_ip><count>1</count><policy_evaluated><disposition>none</disposition><dkim>"
         "pass</dkim><spf>pass</spf></policy_evaluated></row><identifiers><header_from>"
         "example.com</header_from></identifiers><auth_results><spf><domain>example.com</domain>"
         "<result>pass</result></spf></auth_results></record>\n";
  }
  return s + "</feedback>\n";
}

inline std::string dsn_message() {
  std::string returned =
      mime_mixed({part("application/gzip", "our!report!1!2.xml.gz", base64(gzip(kDmarcXml)))});
  return "From: MAILER-DAEMON@mx.example.org\n"
         "To: dmarc-reports@example.net\n"
         "Subject: Undelivered Mail Returned to Sender\n"
         "Message-ID: <bounce-1@mx.example.org>\n"
         "MIME-Version: 1.0\n"
         "Content-Type: multipart/report; report-type=delivery-status; boundary=\"dsn-b\"\n\n"
         "--dsn-b\nContent-Type: text/plain\n\nYour message could not be delivered.\n"
         "--dsn-b\nContent-Type: message/delivery-status\n\n"
         "Reporting-MTA: dns; mx.example.org\n"
         "Arrival-Date: Mon, 1 Jan 2024 00:00:00 +0000\n\n"
         "Final-Recipient: rfc822; nobody@example.org\n"
         "Action: failed\n"
         "Status: 5.1.1\n"
         "Diagnostic-Code: smtp; 550 5.1.1 user unknown\n\n"
         "--dsn-b\nContent-Type: message/rfc822\n\n" +
         returned + "--dsn-b--\n";
}
inline const std::string kDsnMessage = dsn_message();

// ---------------------------------------------------------------- running

struct Extracted {
  CollectingSink sink;
  ExtractOutcome outcome;
  bool succeeded = false;
  ErrorCode code = ErrorCode::Invalid;
  std::string error;

  bool ok() const { return succeeded; }
  std::size_t count(ReportType t) {
    std::size_t n = 0;
    for (const auto& r : sink.reports()) n += type_of(r) == t ? 1 : 0;
    return n;
  }
  bool has_note(std::string_view s) const {
    for (const auto& n : outcome.notes) {
      if (n.find(s) != std::string::npos) return true;
    }
    return false;
  }
  std::string notes() const {
    std::string s = "notes:";
    for (const auto& n : outcome.notes) s += "\n  " + n;
    return s + "\n";
  }
};

inline Extracted extract(const Input& in, const ExtractLimits& limits = {}) {
  Extracted r;
  auto res = extract_reports(in, r.sink, limits);
  if (res) {
    r.succeeded = true;
    r.outcome = std::move(*res);
  } else {
    r.code = res.error().code;
    r.error = res.error().message;
  }
  return r;
}

inline long max_rss_kib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

class FailingSink final : public ReportSink {
 public:
  Status dmarc_begin(const DmarcHeader&) override { return fail(); }
  Status dmarc_record(DmarcRecord&&) override { return fail(); }
  Status dmarc_end(const DmarcHeader&, const std::vector<std::string>&) override { return fail(); }
  Status tls(TlsReport&&) override { return fail(); }
  Status arf(ArfReport&&) override { return fail(); }
  Status dsn(DsnReport&&) override { return fail(); }

 private:
  static Status fail() { return make_error(ErrorCode::Store, "disk full"); }
};

}  // namespace mailreport::report::extract_test
