// extract_reports: containers (gzip, zip, base64), MIME layouts, report dispatch, limits and
// broken input. Inputs are built here: zlib makes gzip, libarchive's write API makes zips in
// memory, MIME is written by hand.
#include "mailreport/report/extract.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <glib.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <zlib.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "extract_test_support.hpp"
#include "testsupport.hpp"

namespace mailreport::report {
namespace {

using namespace extract_test;

// ---------------------------------------------------------------- bare formats

TEST(Extract, BareXml) {
  Extracted r = extract(Input::from_memory(kDmarcXml));
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.sink.reports().size(), 1u);
  const auto& agg = std::get<DmarcAggregate>(r.sink.reports()[0]);
  EXPECT_EQ(agg.header.report_metadata.org_name, "example.net");
  EXPECT_EQ(agg.header.policy_published.domain, "example.com");
  ASSERT_EQ(agg.records.size(), 2u);
  EXPECT_EQ(agg.records[0].row.source_ip, "192.0.2.1");
  EXPECT_EQ(agg.records[1].row.count, 7u);
  EXPECT_EQ(r.outcome.reports, 1u);
}

TEST(Extract, BareXmlWithBomAndLeadingSpace) {
  Extracted r = extract(Input::from_memory("\xEF\xBB\xBF\r\n  " + std::string(kDmarcXml)));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.count(ReportType::DmarcAggregate), 1u);
}

TEST(Extract, BareJson) {
  Extracted r = extract(Input::from_memory(kTlsJson));
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.sink.reports().size(), 1u);
  const auto& tls = std::get<TlsReport>(r.sink.reports()[0]);
  EXPECT_EQ(tls.organization_name, "Company-X");
  ASSERT_EQ(tls.policies.size(), 1u);
  EXPECT_EQ(tls.policies[0].total_successful_session_count, 5326u);
}

TEST(Extract, EmptyInputIsNotAReport) {
  Extracted r = extract(Input::from_memory(""));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code, ErrorCode::NotAReport);
  EXPECT_NE(r.error.find("empty"), std::string::npos) << r.error;
}

TEST(Extract, PlainTextIsNotAReport) {
  Extracted r = extract(Input::from_memory("just some words\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code, ErrorCode::NotAReport);
  EXPECT_NE(r.error.find("unrecognised"), std::string::npos) << r.error;
}

// ---------------------------------------------------------------- gzip

TEST(Extract, Gzip) {
  Extracted r = extract(Input::from_memory(gzip(kDmarcXml)));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.count(ReportType::DmarcAggregate), 1u);
}

TEST(Extract, GzipWithTrailingBytes) {
  // Mimecast appends "\r\n" after the gzip stream.
  Extracted r = extract(Input::from_memory(gzip(kDmarcXml) + "\r\n"));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.count(ReportType::DmarcAggregate), 1u);
  EXPECT_TRUE(r.has_note("ignored bytes after the end")) << r.notes();
}

TEST(Extract, GzipConcatenatedMembers) {
  std::string xml = kDmarcXml;
  std::string data = gzip(xml.substr(0, 100)) + gzip(xml.substr(100));
  Extracted r = extract(Input::from_memory(data));
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.count(ReportType::DmarcAggregate), 1u);
  EXPECT_EQ(std::get<DmarcAggregate>(r.sink.reports()[0]).records.size(), 2u);
}

TEST(Extract, DoubleGzip) {
  Extracted r = extract(Input::from_memory(gzip(gzip(kDmarcXml))));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.count(ReportType::DmarcAggregate), 1u);
}

TEST(Extract, GzipJson) {
  Extracted r = extract(Input::from_memory(gzip(kTlsJson)));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.count(ReportType::TlsAggregate), 1u);
}

TEST(Extract, ZlibStreamInsideGzipMagicIsNotNeeded) {
  // A bare zlib stream has no gzip magic: not recognised at the top (reporters do not send it).
  Extracted r = extract(Input::from_memory(std::string("\x78\x9c\x03\x00\x00\x00\x00\x01", 8)));
  EXPECT_FALSE(r.ok());
}

TEST(Extract, InvalidGzipIsInvalid) {
  std::string bad = gzip(kDmarcXml);
  for (std::size_t i = 12; i < 40; ++i) bad[i] = static_cast<char>(0xff);
  Extracted r = extract(Input::from_memory(bad));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code, ErrorCode::Invalid);
  EXPECT_NE(r.error.find("gzip"), std::string::npos) << r.error;
}

TEST(Extract, TruncatedGzipSalvagesWhatWasThere) {
  std::string big = dmarc_xml_with_records(200);
  std::string gz = gzip(big);
  Extracted r = extract(Input::from_memory(gz.substr(0, gz.size() / 2)));
  // The DMARC parser salvages a report cut short; the gzip layer notes the truncation.
  EXPECT_TRUE(r.has_note("gzip: compressed data is truncated")) << r.notes() << r.error;
  if (r.ok()) {
    const auto& agg = std::get<DmarcAggregate>(r.sink.reports()[0]);
    EXPECT_GT(agg.records.size(), 0u);
    EXPECT_LT(agg.records.size(), 200u);
  }
}

TEST(Extract, NestingIsCapped) {
  std::string data = kDmarcXml;
  for (int i = 0; i < 10; ++i) data = gzip(data);
  Extracted r = extract(Input::from_memory(data));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code, ErrorCode::LimitExceeded);
  EXPECT_NE(r.error.find("nested deeper than 8"), std::string::npos) << r.error;
}

// ---------------------------------------------------------------- zip

TEST(Extract, ZipWithTwoEntriesOneWithoutName) {
  std::string zip =
      unname_last_entry(make_zip({{"a.xml", kDmarcXml}, {"_", dmarc_xml_with_records(3)}}));
  Extracted r = extract(Input::from_memory(zip));
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.count(ReportType::DmarcAggregate), 2u);
  EXPECT_EQ(std::get<DmarcAggregate>(r.sink.reports()[1]).records.size(), 3u);
}

TEST(Extract, ZipWithNonReportEntryAndGzipEntry) {
  std::string zip = make_zip({{"readme.txt", "hello\n"}, {"r.xml.gz", gzip(kDmarcXml)}});
  Extracted r = extract(Input::from_memory(zip));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.count(ReportType::DmarcAggregate), 1u);
}

TEST(Extract, ZipEntriesAreCappedByMaxParts) {
  std::vector<std::pair<std::string, std::string>> entries;
  for (int i = 0; i < 5; ++i) entries.emplace_back("r" + std::to_string(i) + ".xml", kDmarcXml);
  ExtractLimits limits;
  limits.max_parts = 3;
  Extracted r = extract(Input::from_memory(make_zip(entries)), limits);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.count(ReportType::DmarcAggregate), 3u);
  EXPECT_TRUE(r.has_note("more than 3 entries")) << r.notes();
}

TEST(Extract, BrokenZipIsInvalid) {
  std::string zip = make_zip({{"a.xml", kDmarcXml}});
  zip.resize(30);
  Extracted r = extract(Input::from_memory(zip));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.code, ErrorCode::LimitExceeded);
}

// ---------------------------------------------------------------- bombs

TEST(Extract, GzipBombStopsAtRatioQuicklyInBoundedMemory) {
  long rss_before = max_rss_kib();
  auto t0 = std::chrono::steady_clock::now();
  std::string bomb = gzip_bomb("<?xml version=\"1.0\"?>\n<feedback>", ' ', 1ull << 30);
  ASSERT_LT(bomb.size(), 4u << 20);
  Extracted r = extract(Input::from_memory(std::move(bomb)));
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code, ErrorCode::LimitExceeded);
  EXPECT_EQ(r.error, "gzip: compression ratio exceeds 200:1");
  EXPECT_LT(secs, 20.0);
  EXPECT_LT(max_rss_kib() - rss_before, 64 * 1024) << "memory grew while decompressing";
}

TEST(Extract, GzipBombStopsAtSizeCap) {
  ExtractLimits limits;
  limits.max_compression_ratio = 1e12;
  limits.max_decompressed_bytes = 8u << 20;
  Extracted r = extract(Input::from_memory(gzip_bomb("<feedback>", ' ', 1ull << 30)), limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code, ErrorCode::LimitExceeded);
  EXPECT_EQ(r.error, "gzip: decompressed size exceeds 8388608 bytes");
}

TEST(Extract, ZipBombStopsAtRatio) {
  long rss_before = max_rss_kib();
  std::string zip =
      make_zip_streamed("bomb.xml", "<?xml version=\"1.0\"?>\n<feedback>", ' ', 64u << 20);
  Extracted r = extract(Input::from_memory(std::move(zip)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code, ErrorCode::LimitExceeded);
  EXPECT_EQ(r.error, "zip: compression ratio exceeds 200:1");
  EXPECT_LT(max_rss_kib() - rss_before, 64 * 1024);
}

TEST(Extract, ZipBombStopsAtSizeCap) {
  ExtractLimits limits;
  limits.max_compression_ratio = 1e12;
  limits.max_decompressed_bytes = 4u << 20;
  std::string zip = make_zip_streamed("bomb.xml", "<feedback>", ' ', 64u << 20);
  Extracted r = extract(Input::from_memory(std::move(zip)), limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code, ErrorCode::LimitExceeded);
  EXPECT_EQ(r.error, "zip: decompressed size exceeds 4194304 bytes");
}

TEST(Extract, BombInAnAttachmentNextToAReportIsANote) {
  std::string msg = mime_mixed({
      part("application/gzip", "bomb.xml.gz", base64(gzip_bomb("<feedback>", ' ', 64u << 20))),
      part("application/gzip", "good.xml.gz", base64(gzip(kDmarcXml))),
  });
  Extracted r = extract(Input::from_memory(msg));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.count(ReportType::DmarcAggregate), 1u);
  EXPECT_TRUE(r.has_note("compression ratio exceeds")) << r.notes();
}

// ---------------------------------------------------------------- MIME

TEST(Extract, MultipartMixedWithGzipAttachment) {
  std::string msg = mime_mixed({
      part("text/plain", "", "This is an aggregate report.\n", "7bit"),
      part("application/gzip", "example.net!example.com!1700000000!1700086399.xml.gz",
           base64(gzip(kDmarcXml))),
  });
  Extracted r = extract(Input::from_memory(msg));
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.count(ReportType::DmarcAggregate), 1u);
  EXPECT_EQ(std::get<DmarcAggregate>(r.sink.reports()[0]).records.size(), 2u);
}

TEST(Extract, SinglePartZipMessage) {
  std::string msg = std::string(kHeaders) +
                    "Content-Type: application/zip; name=\"r.zip\"\n"
                    "Content-Transfer-Encoding: base64\n\n" +
                    base64(make_zip({{"r.xml", kDmarcXml}}));
  Extracted r = extract(Input::from_memory(msg));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.count(ReportType::DmarcAggregate), 1u);
}

TEST(Extract, OctetStreamAttachmentSniffed) {
  std::string msg = mime_mixed(
      {part("application/octet-stream", "amazonses.com!x!1!2.xml.gz", base64(gzip(kDmarcXml)))});
  Extracted r = extract(Input::from_memory(msg));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.count(ReportType::DmarcAggregate), 1u);
}

TEST(Extract, MislabelledTextPlainBase64Gzip) {
  std::string msg = std::string(kHeaders) +
                    "Content-Type: text/plain\n"
                    "Content-Transfer-Encoding: base64\n\n" +
                    base64(gzip(kDmarcXml));
  Extracted r = extract(Input::from_memory(msg));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.count(ReportType::DmarcAggregate), 1u);
}

TEST(Extract, QuotedPrintableXmlBody) {
  std::string xml = kDmarcXml;
  // Soft line breaks and =3D escapes, as a QP encoder would write them.
  std::string qp;
  for (char c : xml) {
    if (c == '=') {
      qp += "=3D";
    } else {
      qp += c;
    }
  }
  std::string msg = std::string(kHeaders) +
                    "Content-Type: text/xml\n"
                    "Content-Transfer-Encoding: quoted-printable\n\n" +
                    qp.substr(0, 50) + "=\n" + qp.substr(50);
  Extracted r = extract(Input::from_memory(msg));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.count(ReportType::DmarcAggregate), 1u);
}

TEST(Extract, TextPlainWithInlineFeedbackXml) {
  std::string msg = std::string(kHeaders) + "Content-Type: text/plain\n\n" + kDmarcXml;
  Extracted r = extract(Input::from_memory(msg));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.count(ReportType::DmarcAggregate), 1u);
}

TEST(Extract, MboxFromLineIsSkipped) {
  std::string msg = "From dmarc@example.net Mon Jan  1 00:00:00 2024\n" +
                    mime_mixed({part("application/gzip", "r.xml.gz", base64(gzip(kDmarcXml)))});
  Extracted r = extract(Input::from_memory(msg));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.count(ReportType::DmarcAggregate), 1u);
}

TEST(Extract, CrOnlyLineEndings) {
  std::string msg = mime_mixed({part("application/gzip", "r.xml.gz", base64(gzip(kDmarcXml)))});
  for (char& c : msg) {
    if (c == '\n') c = '\r';
  }
  Extracted r = extract(Input::from_memory(msg));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.count(ReportType::DmarcAggregate), 1u);
}

TEST(Extract, CrlfMessage) {
  std::string msg = mime_mixed({part("application/gzip", "r.xml.gz", base64(gzip(kDmarcXml)))});
  std::string crlf;
  for (char c : msg) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  Extracted r = extract(Input::from_memory(crlf));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.count(ReportType::DmarcAggregate), 1u);
}

TEST(Extract, MessageFromFileStreamsFromDisk) {
  test::TempDir dir;
  auto path = dir / "report.eml";
  std::ofstream(path, std::ios::binary)
      << "From x@y Mon Jan  1 00:00:00 2024\n"
      << mime_mixed({part("text/plain", "", "hello\n", "7bit"),
                     part("application/gzip", "a.xml.gz", base64(gzip(kDmarcXml))),
                     part("application/zip", "b.zip", base64(make_zip({{"b.xml", kDmarcXml}})))});
  auto input = Input::from_file(path);
  ASSERT_TRUE(input.ok());
  Extracted r = extract(*input);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.count(ReportType::DmarcAggregate), 2u);
}

TEST(Extract, GzipFromFile) {
  test::TempDir dir;
  auto path = dir / "r.xml.gz";
  std::ofstream(path, std::ios::binary) << gzip(kDmarcXml) << "\r\n";
  auto input = Input::from_file(path);
  ASSERT_TRUE(input.ok());
  Extracted r = extract(*input);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.count(ReportType::DmarcAggregate), 1u);
}

TEST(Extract, NoReportListsWhatWasLookedAt) {
  std::string msg = std::string(kHeaders) +
                    "Content-Type: multipart/alternative; boundary=\"b\"\n\n"
                    "--b\nContent-Type: text/plain\n\nhello\n"
                    "--b\nContent-Type: text/html\n\n<p>hello</p>\n--b--\n";
  Extracted r = extract(Input::from_memory(msg));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code, ErrorCode::NotAReport);
  EXPECT_EQ(r.error, "no report found: multipart/alternative with text/plain, text/html");
}

TEST(Extract, BrokenPartNextToAGoodOneIsANote) {
  std::string bad = gzip(kDmarcXml);
  for (std::size_t i = 12; i < 40; ++i) bad[i] = static_cast<char>(0xff);
  std::string msg = mime_mixed({
      part("application/gzip", "bad.xml.gz", base64(bad)),
      part("application/gzip", "good.xml.gz", base64(gzip(kDmarcXml))),
  });
  Extracted r = extract(Input::from_memory(msg));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.count(ReportType::DmarcAggregate), 1u);
  EXPECT_TRUE(r.has_note("bad.xml.gz")) << r.notes();
}

TEST(Extract, MissingClosingBoundary) {
  std::string msg = std::string(kHeaders) +
                    "Content-Type: multipart/mixed; boundary=\"b\"\n\n"
                    "--b\nContent-Type: text/plain\n\nhi\n"
                    "--b\nContent-Type: application/gzip; name=\"r.xml.gz\"\n"
                    "Content-Transfer-Encoding: base64\n\n" +
                    base64(gzip(kDmarcXml));  // no "--b--"
  Extracted r = extract(Input::from_memory(msg));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.count(ReportType::DmarcAggregate), 1u);
}

TEST(Extract, GarbageHeadersEndCleanly) {
  std::vector<std::string> inputs = {
      "Subject: x\nContent-Type: multipart/mixed\n\n--\n--\n",  // no boundary parameter
      "Subject: x\nContent-Type: ;;;===\nContent-Transfer-Encoding: base64\n\n!!!!\n",
      "X: y\n\0\0\0binary\xff\xfe\n",
      "Content-Type: multipart/report; boundary=q\n\n--q\nContent-Type: "
      "message/feedback-report\n\n--q\nContent-Type: message/delivery-status\n\n--q--\n",
      "Content-Type: application/gzip\nContent-Transfer-Encoding: base64\n\nH4sI====\n",
      "Content-Type: message/rfc822\n\nContent-Type: message/rfc822\n\nSubject: deep\n\nbody\n",
  };
  for (const auto& in : inputs) {
    Extracted r = extract(Input::from_memory(in));
    if (!r.ok()) {
      EXPECT_TRUE(r.code == ErrorCode::NotAReport || r.code == ErrorCode::Invalid)
          << r.error << " for " << in;
    }
  }
}

TEST(Extract, OverlongLines) {
  std::string line(4u << 20, 'x');
  std::string msg =
      std::string(kHeaders) + "X-Long: " + line + "\nContent-Type: text/plain\n\n" + line + "\n";
  Extracted r = extract(Input::from_memory(msg));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code, ErrorCode::NotAReport);
  // And an attachment after an overlong body line is still found.
  std::string msg2 = mime_mixed({part("text/plain", "", line + "\n", "7bit"),
                                 part("application/gzip", "r.xml.gz", base64(gzip(kDmarcXml)))});
  Extracted r2 = extract(Input::from_memory(msg2));
  ASSERT_TRUE(r2.ok()) << r2.error;
  EXPECT_EQ(r2.count(ReportType::DmarcAggregate), 1u);
}

TEST(Extract, ManyPartsAreCapped) {
  std::vector<std::string> parts;
  for (int i = 0; i < 20; ++i) parts.push_back(part("text/plain", "", "x\n", "7bit"));
  parts.push_back(part("application/gzip", "r.xml.gz", base64(gzip(kDmarcXml))));
  ExtractLimits limits;
  limits.max_parts = 10;
  Extracted r = extract(Input::from_memory(mime_mixed(parts)), limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code, ErrorCode::LimitExceeded);
  EXPECT_NE(r.error.find("more than 10 parts"), std::string::npos) << r.error;
}

TEST(Extract, DeepMimeNestingIsALimit) {
  std::string msg = std::string(kHeaders);
  for (int i = 0; i < 100; ++i) {
    msg += "Content-Type: multipart/mixed; boundary=\"b" + std::to_string(i) + "\"\n\n--b" +
           std::to_string(i) + "\n";
  }
  msg +=
      "Content-Type: application/gzip; name=\"r.xml.gz\"\nContent-Transfer-Encoding: base64\n\n" +
      base64(gzip(kDmarcXml));
  Extracted r = extract(Input::from_memory(msg));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code, ErrorCode::LimitExceeded);
  EXPECT_NE(r.error.find("nested too deep"), std::string::npos) << r.error;
}

// ---------------------------------------------------------------- ARF, DSN, TLS messages

TEST(Extract, ArfFeedbackReport) {
  Extracted r = extract(Input::from_memory(kArfMessage));
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.count(ReportType::Arf), 1u);
  const auto& arf = std::get<ArfReport>(r.sink.reports()[0]);
  EXPECT_EQ(arf.feedback_type, "abuse");
  EXPECT_EQ(arf.source_ip, "192.0.2.1");
  EXPECT_EQ(arf.original_message_type, "text/rfc822-headers");
  EXPECT_FALSE(arf.original_headers.empty());
}

TEST(Extract, ArfFeedbackPartSentAsBase64TextInMultipartMixed) {
  // NetEase via Outlook: multipart/mixed, the feedback report is text/plain "ATT00001", base64.
  std::string fields =
      "Feedback-Type: auth-failure\nUser-Agent: NtesDmarcReporter/1.0\nVersion: 1\n"
      "Auth-Failure: dmarc\nSource-IP: 198.51.100.7\nReported-Domain: example.com\n";
  std::string msg = mime_mixed({
      part("text/plain", "", "This is a DMARC failure report.\n", "7bit"),
      part("text/plain", "ATT00001", base64(fields)),
      part("message/rfc822", "", "From: a@example.com\nSubject: hi\nMessage-ID: <m@x>\n\nbody\n",
           "7bit"),
  });
  Extracted r = extract(Input::from_memory(msg));
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.count(ReportType::Arf), 1u);
  const auto& arf = std::get<ArfReport>(r.sink.reports()[0]);
  EXPECT_EQ(arf.feedback_type, "auth-failure");
  EXPECT_EQ(arf.auth_failure, "dmarc");
  EXPECT_EQ(arf.original_message_type, "message/rfc822");
}

TEST(Extract, DeliveryStatusNotification) {
  Extracted r = extract(Input::from_memory(kDsnMessage));
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.sink.reports().size(), 1u) << "the returned report must not be extracted";
  const auto& dsn = std::get<DsnReport>(r.sink.reports()[0]);
  ASSERT_EQ(dsn.recipients.size(), 1u);
  EXPECT_EQ(dsn.recipients[0].action, "failed");
  EXPECT_EQ(dsn.recipients[0].status, "5.1.1");
}

TEST(Extract, DsnWithBrokenBoundariesIsSalvagedFromText) {
  // The boundary lines do not match the declared boundary (seen in real Postfix bounces that
  // were edited): GMime finds no parts, the field groups are found in the text.
  std::string msg =
      "From: MAILER-DAEMON@mx.example.org\n"
      "Subject: Undelivered Mail Returned to Sender\n"
      "MIME-Version: 1.0\n"
      "Content-Type: multipart/report; report-type=delivery-status; boundary=\"declared\"\n\n"
      "--other\nContent-Type: text/plain\n\nI'm sorry.\n\n"
      "--other\nContent-Type: message/delivery-status\n\n"
      "Reporting-MTA: dns; mx.example.org\n"
      "Arrival-Date: Mon, 1 Jan 2024 00:00:00 +0000\n\n"
      "Final-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.1.1\n\n"
      "Final-Recipient: rfc822; b@example.org\nAction: delayed\nStatus: 4.4.1\n\n"
      "--other\nContent-Type: message/rfc822\n\nFrom: us@example.net\nSubject: x\n\nbody\n"
      "--other--\n";
  Extracted r = extract(Input::from_memory(msg));
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.count(ReportType::Dsn), 1u);
  const auto& dsn = std::get<DsnReport>(r.sink.reports()[0]);
  ASSERT_EQ(dsn.recipients.size(), 2u);
  EXPECT_EQ(dsn.recipients[1].action, "delayed");
  EXPECT_TRUE(r.has_note("broken multipart/report")) << r.notes();
}

TEST(Extract, XDeliveryStatusSpelling) {
  std::string msg =
      "From: MAILER-DAEMON@mx.example.org\nMIME-Version: 1.0\n"
      "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n"
      "--b\nContent-Type: text/plain\n\nbounce\n"
      "--b\nContent-Type: message/x-delivery-status\n\n"
      "Reporting-MTA: dns; mx.example.org\n\n"
      "Final-Recipient: rfc822; a@example.org\nAction: failed\nStatus: 5.0.0\n\n--b--\n";
  Extracted r = extract(Input::from_memory(msg));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.count(ReportType::Dsn), 1u);
}

TEST(Extract, Base64TextOfGzip) {
  // Mail::TLSRPT's fixture: the base64 text of a gzip'd report, with no MIME around it.
  Extracted r = extract(Input::from_memory(base64(gzip(kTlsJson))));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.count(ReportType::TlsAggregate), 1u);
}

TEST(Extract, TlsReportMessage) {
  std::string msg = std::string(kHeaders) +
                    "Content-Type: multipart/report; report-type=\"tlsrpt\"; boundary=\"t\"\n\n"
                    "--t\nContent-Type: text/plain\n\nThis is a TLS report.\n"
                    "--t\nContent-Type: application/tlsrpt+gzip\n"
                    "Content-Disposition: attachment; filename=\"x!example.com!1!2.json.gz\"\n"
                    "Content-Transfer-Encoding: base64\n\n" +
                    base64(gzip(kTlsJson)) + "--t--\n";
  Extracted r = extract(Input::from_memory(msg));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.count(ReportType::TlsAggregate), 1u);
}

TEST(Extract, ForwardedReportInsideMessageRfc822) {
  std::string inner = mime_mixed({part("application/gzip", "r.xml.gz", base64(gzip(kDmarcXml)))});
  std::string msg = mime_mixed(
      {part("text/plain", "", "FYI\n", "7bit"), part("message/rfc822", "", inner, "7bit")});
  Extracted r = extract(Input::from_memory(msg));
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.count(ReportType::DmarcAggregate), 1u);
}

// ---------------------------------------------------------------- sink errors

TEST(Extract, SinkFailureAborts) {
  FailingSink sink;
  auto r = extract_reports(Input::from_memory(kTlsJson), sink);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::Store);
}

}  // namespace
}  // namespace mailreport::report
